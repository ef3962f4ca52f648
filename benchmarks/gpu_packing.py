"""Throughput of dcgan trials on digits packed 1, 2 and 4 to one GPU (1, 0.5 and 0.25 GPU
per trial) against one trial alone.

For each fraction f a real sweep runs through gansweep.platform.sweep (Ray Tune,
OptunaSearch, MLflow, checkpoints, FIFO) with gpus_per_trial=f and 1/f trials, all at
once (max_concurrent = num_samples = 1/f), every trial the same fixed config on `cuda`.
Ray is given one GPU, so the trials share that one.

A trial's steps per second is taken over its window from its first evaluation to its
last, on the wall clock (the MLflow metric timestamps the trial takes right after each
evaluate(); see _sweep_runs), so its start-up is left out; Tune's time_total_s window is
printed beside it. The aggregate throughput of a fraction is the sum of its trials'
steps per second, meaningful as far as the windows overlap: each fraction's line also
gives `overlap` (the time all trials were inside their windows over the time any was)
and the span throughput (all window steps over first window start to last window end).
`speedup` is the aggregate over the one-trial figure. Target: 4 trials at 0.25 GPU give
>= 3x the throughput of one trial per GPU.

Before the sweeps the digits feature net and real-data statistics (the image metrics'
yardstick, trained once on the CPU and cached) are built in this process, so no trial
spends its first evaluation training it, or races the others to.

Without a GPU (torch.cuda.is_available() False) it prints one JSON line saying so and
exits 0. --dry-run-cpu runs the same code on the CPU for checking the logic: no GPU,
device=cpu, and f of the --cpus CPUs per trial instead of f of the GPU.

    python benchmarks/gpu_packing.py [--fractions 1,0.5,0.25] [--steps 3000]
    python benchmarks/gpu_packing.py --dry-run-cpu --steps 40 --eval-every 20 --width 8 \
        --batch-size 16 --eval-samples 100
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import _sweep_runs as runs
import torch

from gansweep.trainables.engine import GANTrainer


def warm_metric_cache(fixed: dict) -> None:
    """Train/load the cached feature net and real statistics once, here, on the CPU."""
    trainer = GANTrainer({**fixed, "loss": "ns", "device": "cpu", "steps": 1})
    trainer.train_step()
    trainer.evaluate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fractions", default="1,0.5,0.25", help="GPU per trial")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=1000)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--eval-samples", type=int, default=2500)
    parser.add_argument("--cpus-per-trial", type=float, default=1.0, help="with a GPU")
    parser.add_argument(
        "--dry-run-cpu", action="store_true", help="no GPU: the same code, CPUs shared"
    )
    parser.add_argument("--cpus", type=int, default=2, help="CPUs shared out by --dry-run-cpu")
    args = parser.parse_args()
    emit = runs.json_lines()
    if not args.dry_run_cpu and not torch.cuda.is_available():
        emit(
            {
                "benchmark": "gpu_packing",
                "skipped": True,
                "reason": "no CUDA GPU visible (torch.cuda.is_available() is False); "
                "--dry-run-cpu checks the logic on the CPU",
            }
        )
        return

    # Largest first, so the one-trial figure exists when the packed ones are compared to it.
    fractions = sorted((float(f) for f in args.fractions.split(",")), reverse=True)
    fixed = dict(
        dataset="digits",
        architecture="dcgan",
        width=args.width,
        batch_size=args.batch_size,
        steps=args.steps,
        eval_every=args.eval_every,
        eval_samples=args.eval_samples,
        device="cpu" if args.dry_run_cpu else "cuda",
    )
    warm_metric_cache(fixed)
    num_cpus = args.cpus if args.dry_run_cpu else os.cpu_count()
    runs.init_ray(num_cpus=num_cpus, num_gpus=0 if args.dry_run_cpu else 1)

    single = None
    with tempfile.TemporaryDirectory(prefix="gansweep-bench-") as tmp:
        tmp = Path(tmp)
        space = runs.write_space(tmp, fixed)
        for fraction in fractions:
            count = round(1 / fraction)
            if args.dry_run_cpu:
                cpus, gpus = fraction * args.cpus, 0.0
            else:
                cpus, gpus = args.cpus_per_trial, fraction
            if count * cpus > num_cpus:
                raise SystemExit(f"{count} trials x {cpus} CPUs do not fit in {num_cpus} CPUs")
            done = runs.run_sweep(
                tmp,
                label=f"packing{count}",
                space=str(space),
                num_samples=count,
                max_concurrent=count,
                cpus_per_trial=cpus,
                gpus_per_trial=gpus,
                scheduler="fifo",
                sampler="random",
            )
            windows = []
            for trial in done.trials:
                wall = runs.window(trial["results"], "wall_time")
                tune = runs.window(trial["results"], "time_total_s")
                last = runs.last_result(trial)
                windows.append(wall)
                emit(
                    {
                        "benchmark": "gpu_packing",
                        "fraction": fraction,
                        "trial_id": trial["trial_id"],
                        "status": trial["status"],
                        "final_step": last.get("step"),
                        "planned_steps": trial["planned_steps"],
                        "steps_per_s": None if wall is None else round(wall["steps_per_s"], 1),
                        "steps_per_s_tune": None if tune is None else round(tune["steps_per_s"], 1),
                        "window_steps": None if wall is None else wall["steps"],
                        "distance": last.get("distance"),
                    }
                )
            timed = [w for w in windows if w is not None]
            figures = {"aggregate_steps_per_s": None, "overlap": None, "span_steps_per_s": None}
            if len(timed) == count:
                first, last_end = min(w["start"] for w in timed), max(w["end"] for w in timed)
                common = min(w["end"] for w in timed) - max(w["start"] for w in timed)
                aggregate = sum(w["steps_per_s"] for w in timed)
                figures = {
                    "aggregate_steps_per_s": round(aggregate, 1),
                    "overlap": round(max(0.0, common) / (last_end - first), 3),
                    "span_steps_per_s": round(
                        sum(w["steps"] for w in timed) / (last_end - first), 1
                    ),
                }
                if count == 1:
                    single = aggregate
            emit(
                {
                    "benchmark": "gpu_packing",
                    "summary": True,
                    "fraction": fraction,
                    "trials": count,
                    "trials_timed": len(timed),
                    "per_trial_steps_per_s": [round(w["steps_per_s"], 1) for w in timed],
                    **figures,
                    "single_steps_per_s": None if single is None else round(single, 1),
                    "speedup": None
                    if single is None or figures["aggregate_steps_per_s"] is None
                    else round(figures["aggregate_steps_per_s"] / single, 3),
                    "target_speedup_at_0.25": 3.0,
                    "sweep_wall_s": round(done.wall_s, 1),
                    "cpus_per_trial": cpus,
                    "gpus_per_trial": gpus,
                    "dry_run_cpu": args.dry_run_cpu,
                    "config": fixed,
                }
            )


if __name__ == "__main__":
    main()
