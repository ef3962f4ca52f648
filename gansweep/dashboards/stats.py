"""The statistics of the report, pure functions of arrays: the best result so far, and the
"best score for budget k" of Lucic et al. (2018), computed exactly."""

from __future__ import annotations

import numpy as np


def best_so_far(values: np.ndarray, lower: bool) -> np.ndarray:
    """Running best of `values` (NaN = no finite result, counted but never best)."""
    filled = np.where(np.isnan(values), np.inf if lower else -np.inf, values)
    running = np.minimum.accumulate(filled) if lower else np.maximum.accumulate(filled)
    return np.where(np.isinf(running), np.nan, running)


def best_of_k(values: np.ndarray, lower: bool, quantiles=(0.25, 0.5, 0.75)) -> np.ndarray:
    """Quantiles of the best result among k trials drawn at random (without replacement)
    from these, for k = 1..n: the "best score for budget k" of Lucic et al. (2018),
    computed exactly instead of by bootstrap. NaN values (diverged) are never best; a
    quantile that falls on them is NaN. Returns an array [len(quantiles), n]."""
    n = len(values)
    order = np.sort(np.where(np.isnan(values), np.inf, values if lower else -values))
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    result = np.full((len(quantiles), n), np.nan)
    for k in range(1, n + 1):
        # P(every one of the k draws ranks below position i) = C(n - i, k) / C(n, k)
        a = n - np.arange(1, n + 1)
        log_c = np.where(a >= k, log_fact[np.maximum(a, 0)] - log_fact[np.maximum(a - k, 0)],
                         -np.inf)  # fmt: skip
        log_c -= log_fact[n] - log_fact[n - k]
        cdf = 1.0 - np.exp(log_c)  # P(best of k is at position <= i)
        for q, quantile in enumerate(quantiles):
            value = order[min(int(np.searchsorted(cdf, quantile - 1e-12)), n - 1)]
            result[q, k - 1] = value if np.isfinite(value) else np.nan
    return result if lower else -result
