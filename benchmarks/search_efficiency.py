"""TPE + ASHA against random search + FIFO, at equal trial budget, judged by the champion
each finds after replication on fresh seeds.

Each method runs a real sweep through gansweep.platform (Ray Tune, OptunaSearch, MLflow,
checkpoints, replication) over a built-in space (default `quick`) on each data set, once
per sampler seed: the search (`--budget` trials), then the top `--top` configs retrained
on `--replicas` fresh seeds, as `gansweep sweep --replicate-top K --seeds N` does. The
champion is the leaderboard's first row (records/ranking.py: replicated configs by their
worst seed, then their mean).

Figures per sweep (one JSON line each):
- champion_worst / champion_mean: the champion's `distance` over its fresh seeds, its
  worst seed and its mean (lower is better), and its modes and high-quality share;
- search_steps: generator steps the search spent (the sum over trials of their last
  reported step; ASHA stops poor trials early), replication_steps: the replicas' steps
  (the same for both methods);
- wall_s: the sweep's wall time, replication included.
Then one summary line per method and data set: medians and the spread (min, max) over
seeds; and one comparison line per data set: how TPE + ASHA's champion compares with
random search's, and the share of random search's steps it spent. The goal the issue
sets: random search's champion quality with at most half its steps (a quarter is the
stretch goal). The methods alternate (which runs first swaps with each seed) so machine
noise hits both alike; the figures are reported as measured, whichever way they go.

    python benchmarks/search_efficiency.py [--datasets ring8,grid25] [--budget 32]
        [--seeds 0,1,2,3,4] [--top 3] [--replicas 3]

On a recorded landscape instead (benchmarks/landscape/compare.py): every method at
budgets 16, 32 and 64 on 50 sampler seeds, in simulated sweeps that run the platform's
own searcher, scheduler and ranking, with cost in training core-seconds from the table;
`--levers` adds the variants of the default method that were measured:

    python benchmarks/search_efficiency.py --replay benchmarks/landscape/ring8_landscape.csv
        [--budgets 16,32,64] [--replay-seeds 50] [--methods all] [--levers] [--concurrent 4]
        [--warm-start SWEEP_FOLDER|CONFIG_FILE --warm-start-top 3]   # for METHOD/warm-start
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import _sweep_runs as runs

from gansweep.platform.options import WARM_START_TOP
from gansweep.platform.samplers import startup_trials

METHODS = {
    "tpe+asha": dict(sampler="tpe", scheduler="asha"),
    "random+fifo": dict(sampler="random", scheduler="fifo"),
}
# The protocol of the project's baseline (docs/results.md): steps per trial per data set.
STEPS = {"ring8": 3000, "grid25": 5000}


def sweep_figures(done: runs.SweepRun) -> dict[str, Any]:
    champion = done.standings.champion
    search_steps = sum(runs.last_result(t).get("step", 0) or 0 for t in done.trials)
    replicas = done.standings.replicas
    # What a user pays: each trial's training core-seconds (1 CPU per trial), not steps.
    core_s = sum(runs.last_result(t).get("train_seconds", 0) or 0 for t in done.trials)
    figures: dict[str, Any] = {
        "search_core_s": round(core_s, 1),
        "search_steps": int(search_steps),
        "replication_steps": int(replicas["step"].fillna(0).sum()) if len(replicas) else 0,
        "trials": len(done.trials),
        "trials_full": sum(
            (runs.last_result(t).get("step") or 0) >= t["planned_steps"] for t in done.trials
        ),
        "wall_s": round(done.wall_s, 1),
    }
    if champion is None or not champion["replicated"]:
        return {**figures, "champion": None}
    return {
        **figures,
        "champion": champion["combination"],
        "champion_worst": round(float(champion["distance_worst"]), 4),
        "champion_mean": round(float(champion["distance_mean"]), 4),
        "champion_modes_mean": round(float(champion["modes_captured_mean"]), 2),
        "champion_modes_worst": float(champion["modes_captured_worst"]),
        "champion_hq_mean": round(float(champion["high_quality_mean"]), 3),
        "champion_hq_worst": round(float(champion["high_quality_worst"]), 3),
        "champion_config": {
            k: v
            for k, v in next(
                t["config"] for t in done.trials if t["trial_id"] == champion["trial_id"]
            ).items()
            if k not in done.fixed
        },
    }


def spread(values: list[float]) -> dict[str, float]:
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ring8,grid25")
    parser.add_argument("--budget", type=int, default=32, help="trials per search")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated sampler seeds")
    parser.add_argument("--top", type=int, default=3, help="configs replicated")
    parser.add_argument("--replicas", type=int, default=3, help="fresh seeds per config")
    parser.add_argument("--space", default="quick")
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs given to Ray")
    parser.add_argument("--steps", type=int, default=None, help="override STEPS")
    parser.add_argument("--replay", metavar="TABLE", help="compare on a recorded landscape")
    parser.add_argument("--budgets", default="16,32,64", help="(--replay) trials per sweep")
    parser.add_argument("--replay-seeds", type=int, default=50, help="(--replay) sampler seeds")
    parser.add_argument("--methods", default="all", help="(--replay) comma-separated, or all")
    parser.add_argument("--levers", action="store_true", help="(--replay) + the default's variants")
    parser.add_argument("--concurrent", type=int, default=4, help="(--replay) trials in flight")
    parser.add_argument("--jobs", type=int, default=None, help="(--replay) processes")
    parser.add_argument(
        "--warm-start", metavar="SWEEP_FOLDER|CONFIG_FILE",
        help="(--replay) the source of the METHOD/warm-start methods",
    )  # fmt: skip
    parser.add_argument(
        "--warm-start-top", type=int, default=WARM_START_TOP, help="(--replay) configs from it"
    )  # fmt: skip
    args = parser.parse_args()
    if args.replay:
        sys.path.insert(0, str(Path(__file__).resolve().parent / "landscape"))
        import compare

        compare.run(**compare.parse(args), emit=runs.json_lines())
        return
    seeds = [int(s) for s in args.seeds.split(",")]
    emit = runs.json_lines()
    runs.init_ray(num_cpus=args.cpus)

    with tempfile.TemporaryDirectory(prefix="gansweep-bench-") as tmp:
        for dataset in args.datasets.split(","):
            steps = args.steps or STEPS[dataset]
            per_method: dict[str, list[dict[str, Any]]] = {name: [] for name in METHODS}
            for i, seed in enumerate(seeds):
                order = list(METHODS) if i % 2 == 0 else list(reversed(METHODS))
                for method in order:
                    done = runs.run_sweep(
                        Path(tmp),
                        label=f"search-{dataset}",
                        space=args.space,
                        num_samples=args.budget,
                        max_concurrent=args.max_concurrent,
                        seed=seed,
                        overrides=[f"dataset={dataset}", f"steps={steps}"],
                        replicate_top=args.top,
                        seeds=args.replicas,
                        **METHODS[method],
                    )
                    figures = sweep_figures(done)
                    per_method[method].append(figures)
                    emit(
                        {
                            "benchmark": "search_efficiency",
                            "dataset": dataset,
                            "method": method,
                            "seed": seed,
                            "budget": args.budget,
                            "steps": steps,
                            "tpe_model_trials": max(0, args.budget - startup_trials(args.budget)),
                            **figures,
                        }
                    )
            summaries = {}
            for method, figures in per_method.items():
                judged = [f for f in figures if f["champion"] is not None]
                summaries[method] = summary = {
                    "benchmark": "search_efficiency",
                    "summary": True,
                    "dataset": dataset,
                    "method": method,
                    "seeds": seeds,
                    "budget": args.budget,
                    "steps": steps,
                    "space": args.space,
                    "champion_worst": spread([f["champion_worst"] for f in judged]),
                    "champion_mean": spread([f["champion_mean"] for f in judged]),
                    "champion_modes_mean": spread([f["champion_modes_mean"] for f in judged]),
                    "champion_hq_mean": spread([f["champion_hq_mean"] for f in judged]),
                    "search_steps": spread([f["search_steps"] for f in figures]),
                    "search_core_s": spread([f["search_core_s"] for f in figures]),
                    "wall_s": spread([f["wall_s"] for f in figures]),
                }
                emit(summary)
            tpe, rnd = summaries["tpe+asha"], summaries["random+fifo"]
            ratio = tpe["search_steps"]["median"] / rnd["search_steps"]["median"]
            core_ratio = tpe["search_core_s"]["median"] / rnd["search_core_s"]["median"]
            emit(
                {
                    "benchmark": "search_efficiency",
                    "comparison": True,
                    "dataset": dataset,
                    "steps_share_of_random": round(ratio, 3),
                    "core_s_share_of_random": round(core_ratio, 3),
                    "champion_worst_tpe_minus_random": round(
                        tpe["champion_worst"]["median"] - rnd["champion_worst"]["median"], 4
                    ),
                    "reaches_random_quality": tpe["champion_worst"]["median"]
                    <= rnd["champion_worst"]["median"],
                    "target_half_the_steps": ratio <= 0.5,
                    "goal_a_quarter": ratio <= 0.25,
                }
            )


if __name__ == "__main__":
    main()
