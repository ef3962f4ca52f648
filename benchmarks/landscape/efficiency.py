"""Search efficiency on a recorded landscape: each method's simulated sweeps (simulate.py)
over many sampler seeds, judged against random search + FIFO in compute, not steps.

Per method and budget (trials per sweep), over the sampler seeds:
- the target: the median, over random + FIFO's seeds, of its final champion's true
  quality (true_quality: the config's mean `distance` over its recorded seeds);
- cost_to_target (a seed): the core-seconds trained until the running champion's true
  quality first reaches the target (inf if it never does);
- cost_ratio: the median over seeds of cost_to_target, divided by random + FIFO's median
  total cost; cost_ratio_ci: its bootstrap 95 % interval (the method's seeds and random's,
  resampled apart, the target and the denominator recomputed each time);
- win_rate: the share of seeds whose final champion is at least as good as random +
  FIFO's final champion on the same sampler seed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from simulate import Trace


@dataclass
class Runs:
    """One method at one budget: per sampler seed, its trace read through the true
    quality (lower is better) of each champion."""

    costs: list[np.ndarray]  # per seed: core-seconds after each result
    quality: list[np.ndarray]  # per seed: the running champion's true quality then
    total: np.ndarray  # per seed: the sweep's total core-seconds
    final: np.ndarray  # per seed: the final champion's true quality
    final_worst: np.ndarray  # per seed: the final champion's worst recorded seed

    @classmethod
    def of(cls, traces: Sequence[Trace], mean: dict[int, float], worst: dict[int, float]) -> Runs:
        quality = [np.array([mean.get(c, math.inf) for c in t.champions]) for t in traces]
        return cls(
            costs=[np.asarray(t.costs, dtype=float) for t in traces],
            quality=quality,
            total=np.array([t.total_cost for t in traces]),
            final=np.array([q[-1] if len(q) else math.inf for q in quality]),
            final_worst=np.array(
                [worst.get(t.champions[-1], math.inf) if t.champions else math.inf for t in traces]
            ),
        )


def cost_to_target(costs: np.ndarray, quality: np.ndarray, target: float) -> float:
    """Core-seconds until the champion's quality is first at or below target (inf: never)."""
    reached = np.flatnonzero(quality <= target)
    return float(costs[reached[0]]) if len(reached) else math.inf


def cost_ratio(method: Runs, baseline: Runs, pick: np.ndarray, base_pick: np.ndarray) -> float:
    """cost_ratio on the seeds `pick` of the method and `base_pick` of the baseline (index
    arrays: all seeds once, or a bootstrap resample)."""
    target = float(np.median(baseline.final[base_pick]))
    spent = [cost_to_target(method.costs[i], method.quality[i], target) for i in pick]
    return float(np.median(spent)) / float(np.median(baseline.total[base_pick]))


def summary(method: Runs, baseline: Runs, draws: int = 1000, seed: int = 0) -> dict[str, object]:
    """The figures of one method against the baseline (both on the same sampler seeds)."""
    n, m = len(method.total), len(baseline.total)
    ratio = cost_ratio(method, baseline, np.arange(n), np.arange(m))
    rng = np.random.default_rng(seed)
    boot = [
        cost_ratio(method, baseline, rng.integers(0, n, n), rng.integers(0, m, m))
        for _ in range(draws)
    ]
    # "nearest": no interpolation between a ratio and inf (a resample where over half
    # of the seeds never reach the target), which would give NaN.
    low, high = np.percentile(boot, [2.5, 97.5], method="nearest")
    paired = min(n, m)
    return {
        "cost_ratio": _finite(ratio),
        "cost_ratio_ci": [_finite(low), _finite(high)],
        "win_rate": round(float(np.mean(method.final[:paired] <= baseline.final[:paired])), 3),
        "target": round(float(np.median(baseline.final)), 5),
        "reach_rate": round(
            float(
                np.mean(
                    [
                        cost_to_target(c, q, float(np.median(baseline.final))) < math.inf
                        for c, q in zip(method.costs, method.quality, strict=True)
                    ]
                )
            ),
            3,
        ),
        "champion_mean_median": round(float(np.median(method.final)), 5),
        "champion_worst_median": round(float(np.median(method.final_worst)), 5),
        "cost_median_core_s": round(float(np.median(method.total)), 1),
    }


def _finite(x: float) -> float | str:
    """JSON has no infinity: a ratio never reached is written "inf"."""
    return round(float(x), 4) if math.isfinite(x) else "inf"
