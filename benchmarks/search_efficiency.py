"""TPE + ASHA against random search + FIFO on ring8, with the same trial budget.

Each method runs a real sweep through gansweep.platform.sweep (Ray Tune, OptunaSearch,
MLflow, checkpoints) over a built-in space (default `quick`: ns/wgan/hinge x GP x
Adam/RMSprop x learning rates on ring8, 1,500 steps a trial), once per seed. The seed is
the sampler's (SweepOptions.seed); every trial trains with the config's own seed.

Figures per sweep:
- best_distance: the lowest `distance` among the trials' last reports (what the
  leaderboard ranks by; an ASHA-stopped trial counts with its last report), and
  best_distance_full: the lowest among trials that ran all their planned steps;
- total_steps: training steps spent, the sum over trials of their last reported `step`
  (ASHA stops bad trials early, so it spends fewer);
- wall_s: the sweep's wall time, run() called to run() returned.
- lane_use: the trials' summed time_total_s over wall_s x max_concurrent, the share of
  the sweep's trial slots spent inside trials (the rest: trial start-up and teardown,
  the driver's set-up and finalize).
Then one summary line per method with medians over seeds. The methods alternate (which
runs first swaps with each seed) so machine noise hits both alike. No target: figures
are reported as measured, whichever way they go.

TPE proposes its first trials at random (the platform's `startup_trials(budget)`: a
quarter of the budget, at least 2, at most 10); `tpe_model_trials` in the lines says how
many trials TPE's model chose. With small budgets the comparison mostly measures ASHA
against FIFO; give a larger --budget (e.g. 24) to compare the samplers too.

    python benchmarks/search_efficiency.py [--budget 8] [--seeds 0,1] [--steps 1500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import _sweep_runs as runs

from gansweep.platform.sweep import startup_trials
from gansweep.trainables.metrics import PRIMARY_METRIC

METHODS = {
    "tpe+asha": dict(sampler="tpe", scheduler="asha"),
    "random+fifo": dict(sampler="random", scheduler="fifo"),
}


def sweep_figures(done: runs.SweepRun) -> dict:
    last = [(trial, runs.last_result(trial)) for trial in done.trials]
    reported = [(t, r) for t, r in last if r.get(PRIMARY_METRIC) is not None]
    full = [(t, r) for t, r in reported if r.get("step", 0) >= t["planned_steps"]]
    best_trial, best = min(reported, key=lambda tr: tr[1][PRIMARY_METRIC])
    return {
        "best_distance": round(best[PRIMARY_METRIC], 4),
        "best_distance_full": round(min(r[PRIMARY_METRIC] for _, r in full), 4) if full else None,
        "best_step": best.get("step"),
        "best_modes_captured": best.get("modes_captured"),
        "best_high_quality": best.get("high_quality"),
        "best_config": {k: v for k, v in best_trial["config"].items() if k not in done.fixed},
        "total_steps": int(sum(r.get("step", 0) for _, r in last)),
        "trials": len(done.trials),
        "trials_full": len(full),
        "trials_diverged": sum(bool(r.get("diverged")) for _, r in reported),
        "wall_s": round(done.wall_s, 1),
        "lane_use": round(
            sum(r.get("time_total_s", 0) for _, r in last)
            / (done.wall_s * done.manifest.options["max_concurrent"]),
            3,
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=8, help="trials per sweep")
    parser.add_argument("--seeds", default="0,1", help="comma-separated sampler seeds")
    parser.add_argument("--steps", type=int, default=1500, help="planned steps per trial")
    parser.add_argument("--space", default="quick")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to Ray")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    tpe_model_trials = max(0, args.budget - startup_trials(args.budget))
    emit = runs.json_lines()
    runs.init_ray(num_cpus=args.cpus)

    per_method: dict[str, list[dict]] = {name: [] for name in METHODS}
    with tempfile.TemporaryDirectory(prefix="gansweep-bench-") as tmp:
        for i, seed in enumerate(seeds):
            order = list(METHODS) if i % 2 == 0 else list(reversed(METHODS))
            for method in order:
                done = runs.run_sweep(
                    Path(tmp),
                    label="search",
                    space=args.space,
                    num_samples=args.budget,
                    max_concurrent=args.max_concurrent,
                    seed=seed,
                    overrides=[f"steps={args.steps}"],
                    **METHODS[method],
                )
                figures = sweep_figures(done)
                per_method[method].append(figures)
                emit(
                    {
                        "benchmark": "search_efficiency",
                        "method": method,
                        "seed": seed,
                        "budget": args.budget,
                        "steps": args.steps,
                        "tpe_model_trials": tpe_model_trials,
                        **figures,
                    }
                )

    median = statistics.median
    for method, figures in per_method.items():
        full = [f["best_distance_full"] for f in figures if f["best_distance_full"] is not None]
        emit(
            {
                "benchmark": "search_efficiency",
                "summary": True,
                "method": method,
                "seeds": seeds,
                "budget": args.budget,
                "steps": args.steps,
                "space": args.space,
                "best_distance_median": round(median(f["best_distance"] for f in figures), 4),
                "best_distance_full_median": round(median(full), 4) if full else None,
                "total_steps_median": median(f["total_steps"] for f in figures),
                "wall_s_median": round(median(f["wall_s"] for f in figures), 1),
                "lane_use_median": round(median(f["lane_use"] for f in figures), 3),
                "tpe_model_trials": tpe_model_trials,
                "best_distance_per_seed": [f["best_distance"] for f in figures],
                "total_steps_per_seed": [f["total_steps"] for f in figures],
            }
        )


if __name__ == "__main__":
    main()
