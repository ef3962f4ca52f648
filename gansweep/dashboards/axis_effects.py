"""Which axes of a search mattered: per axis (a searched parameter) and value, the
marginal median of the metric over the trials with that value, with a bootstrap interval,
and per axis whether its winning value beats the runner-up beyond the noise. Pure: a
table and a space in, two tables out.

Input, ``table``: one row per trial (or per config), with a column named after every
param of the space and a numeric metric column. Non-finite metric values (a diverged
trial's NaN or inf) count as the worst possible result (see _scores).

Output, ``AxisEffects``:

- ``values``: one row per (axis, value): ``axis``, ``value`` (the param's value, or for a
  binned axis its range as a string, "0.0001–0.0004"), ``count``, ``median``, ``best``,
  ``low`` and ``high`` (the bootstrap 95 % interval of the median). Axes in the space's
  order; values in their natural order (a choice's order in the space, bins low to high).
- ``axes``: one row per axis: ``axis``, ``count`` (rows where the axis is active),
  ``levels``, ``binned``, ``winner`` (the value with the best median) with
  ``winner_median``, ``winner_low``, ``winner_high``, the same four for ``runner_up``
  (None/NaN where the axis has one value), and ``clear``: the winner's interval does not
  overlap the runner-up's, and each of the two has at least MIN_CLEAR_COUNT rows.

Medians, bests and interval ends are in the metric's own units; -inf or inf where half or
more of a value's trials had no finite result (lower or higher better respectively).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from gansweep.search_spaces.space import DEFAULTS, SearchSpace

RESAMPLES = 2_000
LEVEL = 0.95
BINS = 3  # quantile bins of a many-valued numeric axis: low, middle, high
MAX_LEVELS = 6  # a numeric axis with more distinct values than this is binned
# A clear winner needs this many rows on both sides: the bootstrap interval of one row's
# median is that row's value, a point that overlaps nothing and says nothing of the noise.
MIN_CLEAR_COUNT = 3

VALUE_COLUMNS = ["axis", "value", "count", "median", "best", "low", "high"]
AXIS_COLUMNS = [
    "axis", "count", "levels", "binned",
    "winner", "winner_median", "winner_low", "winner_high",
    "runner_up", "runner_up_median", "runner_up_low", "runner_up_high", "clear",
]  # fmt: skip


@dataclass(frozen=True)
class AxisEffects:
    """What axis_effects returns: the per-value and the per-axis tables (module docstring)."""

    values: pd.DataFrame
    axes: pd.DataFrame


def axis_effects(
    table: pd.DataFrame,
    space: SearchSpace,
    metric: str,
    lower_is_better: bool = True,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> AxisEffects:
    """The marginal effect of every param of `space` on `metric` over the rows of `table`
    (module docstring). Deterministic for a given `seed`."""
    missing = [p.name for p in space.params if p.name not in table]
    if metric not in table:
        missing.append(metric)
    if missing:
        raise ValueError(
            f"the table has no column {', '.join(map(repr, missing))} "
            f"(it has {', '.join(map(str, table.columns))})"
        )
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, not {resamples}")
    rng = np.random.default_rng(seed)
    scores = _scores(table[metric], lower_is_better)
    # What each `when` condition reads: the row's value, else the space's fixed value, else
    # the TrialConfig default (a row of a table holds only the searched columns).
    context = {**DEFAULTS, **space.fixed}
    value_rows: list[dict[str, Any]] = []
    axis_rows: list[dict[str, Any]] = []
    for param in space.params:
        active = np.array(
            [param.active({**context, **row}) for row in table.to_dict("records")], dtype=bool
        )
        column = table.loc[active, param.name]
        known = column.notna().to_numpy()  # an active row without a value tells nothing
        column, axis_scores = column[known], scores[active][known]
        labels, binned = _levels(column, param.choices)
        rows = []
        for label in labels.cat.categories:
            mine = axis_scores[(labels == label).to_numpy()]
            if not len(mine):
                continue
            low, high = _interval(mine, resamples, rng)
            rows.append(
                {"axis": param.name, "value": _plain(label), "count": len(mine),
                 "median": float(np.median(mine)), "best": float(mine.min()),
                 "low": low, "high": high}
            )  # fmt: skip
        axis_rows.append(_verdict(param.name, rows, int(len(column)), binned))
        value_rows += rows
    values = pd.DataFrame(value_rows, columns=VALUE_COLUMNS)
    axes = pd.DataFrame(axis_rows, columns=AXIS_COLUMNS)
    if not lower_is_better:  # back from scores (lower is better) to the metric's units
        values = _negated(values, [("median", None), ("best", None), ("low", "high")])
        axes = _negated(
            axes, [("winner_median", None), ("winner_low", "winner_high"),
                   ("runner_up_median", None), ("runner_up_low", "runner_up_high")],
        )  # fmt: skip
    return AxisEffects(values=values, axes=axes)


def _negated(frame: pd.DataFrame, columns: list[tuple[str, str | None]]) -> pd.DataFrame:
    """`frame` with each column negated; a (low, high) pair also swaps places, as the
    ends of an interval do when the sign flips."""
    out = frame.copy()
    for first, second in columns:
        if second is None:
            out[first] = -frame[first]
        else:
            out[first], out[second] = -frame[second], -frame[first]
    return out


def _scores(metric: pd.Series, lower_is_better: bool) -> np.ndarray:
    """The metric as a score where lower is better, every non-finite value at +inf.

    Diverged trials count as the worst result rather than being dropped: dropping them
    would make a value that diverges half the time look as good as its survivors (the
    survivorship bias of a learning rate that is too high). A median is robust to a
    minority of worst results and becomes inf only where half or more of a value's trials
    gave nothing, which is then what it should say.
    """
    values = pd.to_numeric(metric, errors="coerce").to_numpy(dtype=float)
    scores = values if lower_is_better else -values
    return np.where(np.isfinite(scores), scores, np.inf)


def _levels(column: pd.Series, choices: tuple[Any, ...]) -> tuple[pd.Series, bool]:
    """(the level of every row as an ordered categorical, whether the axis was binned).

    A numeric axis with more than MAX_LEVELS distinct values (a continuous param, e.g. a
    loguniform learning rate, where almost every trial has its own value) is cut into
    BINS quantile bins labelled by the range of the values in them; any other axis keeps
    its values, in the order of the space's choices where it has them."""
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric and column.nunique() > MAX_LEVELS:
        bins = pd.qcut(column.astype(float), BINS, labels=False, duplicates="drop")
        ranges = column.groupby(bins).agg(["min", "max"])
        names = {b: f"{_short(r['min'])}–{_short(r['max'])}" for b, r in ranges.iterrows()}
        labels = bins.map(names)
        return pd.Series(
            pd.Categorical(labels, categories=list(names.values()), ordered=True),
            index=column.index,
        ), True
    seen = list(pd.unique(column))
    order = [c for c in choices if c in seen] + sorted(
        (v for v in seen if v not in choices), key=lambda v: (str(type(v)), v)
    )
    levels = pd.Categorical(column, categories=order, ordered=True)
    return pd.Series(levels, index=column.index), False


def _interval(scores: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """The bootstrap percentile interval (LEVEL) of the median of `scores`."""
    draws = rng.integers(0, len(scores), size=(resamples, len(scores)))
    medians = np.median(scores[draws], axis=1)
    tail = (1 - LEVEL) / 2
    # inverted_cdf picks order statistics, never interpolates: no inf - inf = NaN.
    low, high = np.quantile(medians, [tail, 1 - tail], method="inverted_cdf")
    return float(low), float(high)


def _verdict(axis: str, rows: list[dict[str, Any]], count: int, binned: bool) -> dict[str, Any]:
    """The axis's row: its winner (best median), runner-up, and whether the winner is clear."""
    ranked = sorted(rows, key=lambda r: r["median"])  # stable: ties keep the space's order
    out: dict[str, Any] = {"axis": axis, "count": count, "levels": len(rows), "binned": binned}
    for role, row in (("winner", ranked[0] if ranked else None),
                      ("runner_up", ranked[1] if len(ranked) > 1 else None)):  # fmt: skip
        out[role] = row["value"] if row else None
        for key in ("median", "low", "high"):
            out[f"{role}_{key}"] = row[key] if row else float("nan")
    # Clear: the two intervals do not overlap (a conservative test of the difference).
    out["clear"] = (
        len(ranked) > 1
        and min(ranked[0]["count"], ranked[1]["count"]) >= MIN_CLEAR_COUNT
        and bool(out["winner_high"] < out["runner_up_low"])
    )
    return out


def _short(value: float) -> str:
    return f"{value:.3g}"


def _plain(value: Hashable) -> Any:
    """A level as the plain Python value a config holds (numpy scalars unwrapped)."""
    return value.item() if isinstance(value, np.generic) else value
