"""Steps per second of one trial inside the full platform against the engine alone.

Platform: a real one-trial sweep through gansweep.platform.sweep (prepare + run): Ray
Tune with OptunaSearch and the FIFO scheduler, the trial's MLflow child run (metrics,
samples.png and generator.pt at every evaluation), a checkpoint at every evaluation
persisted by Tune. Engine: GANTrainer.train_step in a plain loop with the same config and
the same evaluation cadence (trainer.evaluate() every eval_every steps and after the
last), since evaluating is part of a trial's work on both sides. Torch threads are
pinned alike: Ray sets OMP_NUM_THREADS to the trial's CPUs, the engine side calls
torch.set_num_threads with the same number.

The measured window runs from the first evaluation to the last, so it leaves out the
trial's start-up (Ray actor, imports, building the trainer, creating the MLflow run) and
the sweep's set-up and finalize, which are reported separately:
- wall (headline): the MLflow metric timestamps the trial takes right after each
  evaluate(), against time.time() right after each evaluate() in the engine loop. Both
  windows hold steps first_eval+1..last and the evaluations after the first; the
  platform's also holds the logging, artifacts, checkpoint and report of every
  evaluation but the last, and the trial's waits for the driver between reports.
- tune: time_total_s of the first and last results. Tune counts only the time inside
  train() calls, so this leaves out the waits between reports (see _sweep_runs).

Target: the platform keeps at least 90% of the engine's steps per second (wall window).

Platform and engine runs alternate (the first side swaps each round) so machine noise
hits both alike; figures are medians over rounds. On a busy machine the side that runs
first in a round has come out faster more often than not: an even --rounds balances
the two orders. Prints one JSON line per round and a summary line.

    python benchmarks/platform_overhead.py [--rounds 3] [--steps 3000] [--eval-every 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import _sweep_runs as runs
import torch

from gansweep.trainables.config import TrialConfig
from gansweep.trainables.engine import GANTrainer

TARGET = 0.90


def engine_run(config: dict) -> dict:
    """The trainable's loop without Ray or MLflow: train, evaluate every eval_every."""
    start = time.perf_counter()
    cfg = TrialConfig.from_dict(config)
    trainer = GANTrainer(cfg)
    results = []
    while not trainer.done:
        trainer.train_step()
        if trainer.step % cfg.eval_every and not trainer.done:
            continue
        metrics = trainer.evaluate()
        results.append({"step": metrics["step"], "wall_time": time.time()})
    return {"results": results, "total_s": time.perf_counter() - start}


def trial_threads(cpus: float) -> int:
    """torch.get_num_threads() in a Ray worker given `cpus` CPUs, as a trial gets."""
    import ray

    @ray.remote(num_cpus=cpus)
    def threads() -> int:
        import torch

        return torch.get_num_threads()

    return ray.get(threads.remote())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--dataset", default="ring8")
    parser.add_argument("--architecture", default="mlp")
    parser.add_argument("--threads", type=int, default=1, help="torch threads = trial CPUs")
    args = parser.parse_args()
    emit = runs.json_lines()
    torch.set_num_threads(args.threads)

    fixed = dict(
        dataset=args.dataset,
        architecture=args.architecture,
        steps=args.steps,
        eval_every=args.eval_every,
        eval_samples=2500,
    )
    config = {**fixed, "loss": "ns"}  # what the space's one-value choice gives
    runs.init_ray(num_cpus=2 * args.threads)
    threads_in_trial = trial_threads(args.threads)
    rates = {"platform_wall": [], "platform_tune": [], "engine": []}
    ratios_wall, ratios_tune, extra = [], [], {"sweep_wall_s": [], "engine_total_s": []}
    with tempfile.TemporaryDirectory(prefix="gansweep-bench-") as tmp:
        tmp = Path(tmp)
        space = runs.write_space(tmp, fixed)
        for round_ in range(args.rounds):
            figures = {}
            for side in ("platform", "engine") if round_ % 2 == 0 else ("engine", "platform"):
                if side == "platform":
                    done = runs.run_sweep(
                        tmp,
                        label="overhead",
                        space=str(space),
                        num_samples=1,
                        max_concurrent=1,
                        cpus_per_trial=args.threads,
                        scheduler="fifo",
                        sampler="random",
                    )
                    (trial,) = done.trials
                    wall = runs.window(trial["results"], "wall_time")
                    tune = runs.window(trial["results"], "time_total_s")
                    last = runs.last_result(trial)
                    figures["platform"] = dict(
                        wall=wall["steps_per_s"],
                        tune=tune["steps_per_s"],
                        window_steps=wall["steps"],
                        sweep_wall_s=done.wall_s,
                        trial_run_s=trial["run_end"] - trial["run_start"],
                        trial_time_total_s=last.get("time_total_s"),
                        # Start-up that time_total_s holds before the first report
                        # (trainer, MLflow run, first eval_every steps and evaluation).
                        first_report_time_total_s=trial["results"][0]["time_total_s"],
                        status=trial["status"],
                        reports=len(trial["results"]),
                        final_step=last.get("step"),
                    )
                else:
                    engine = engine_run(config)
                    win = runs.window(engine["results"], "wall_time")
                    figures["engine"] = dict(
                        wall=win["steps_per_s"],
                        window_steps=win["steps"],
                        total_s=engine["total_s"],
                    )
            platform, engine = figures["platform"], figures["engine"]
            rates["platform_wall"].append(platform["wall"])
            rates["platform_tune"].append(platform["tune"])
            rates["engine"].append(engine["wall"])
            ratios_wall.append(platform["wall"] / engine["wall"])
            ratios_tune.append(platform["tune"] / engine["wall"])
            extra["sweep_wall_s"].append(platform["sweep_wall_s"])
            extra["engine_total_s"].append(engine["total_s"])
            emit(
                {
                    "benchmark": "platform_overhead",
                    "round": round_,
                    "first": "platform" if round_ % 2 == 0 else "engine",
                    "platform_steps_per_s_wall": round(platform["wall"], 1),
                    "platform_steps_per_s_tune": round(platform["tune"], 1),
                    "engine_steps_per_s": round(engine["wall"], 1),
                    "ratio_wall": round(ratios_wall[-1], 3),
                    "ratio_tune": round(ratios_tune[-1], 3),
                    "window_steps": platform["window_steps"],
                    "sweep_wall_s": round(platform["sweep_wall_s"], 2),
                    "trial_mlflow_run_s": round(platform["trial_run_s"], 2),
                    "trial_time_total_s": round(platform["trial_time_total_s"], 2),
                    "trial_first_report_time_total_s": round(
                        platform["first_report_time_total_s"], 2
                    ),
                    "engine_total_s": round(engine["total_s"], 2),
                    "trial_status": platform["status"],
                    "trial_reports": platform["reports"],
                    "trial_final_step": platform["final_step"],
                }
            )
    median = statistics.median
    emit(
        {
            "benchmark": "platform_overhead",
            "summary": True,
            "case": f"{args.architecture}-{args.dataset}",
            "platform_steps_per_s_wall": round(median(rates["platform_wall"]), 1),
            "platform_steps_per_s_tune": round(median(rates["platform_tune"]), 1),
            "engine_steps_per_s": round(median(rates["engine"]), 1),
            "ratio_wall_median": round(median(ratios_wall), 3),
            "ratio_wall_min": round(min(ratios_wall), 3),
            "ratio_wall_max": round(max(ratios_wall), 3),
            "ratio_tune_median": round(median(ratios_tune), 3),
            "sweep_wall_s_median": round(median(extra["sweep_wall_s"]), 2),
            "engine_total_s_median": round(median(extra["engine_total_s"]), 2),
            "target": TARGET,
            "meets_target": median(ratios_wall) >= TARGET,
            "rounds": args.rounds,
            "steps": args.steps,
            "eval_every": args.eval_every,
            "threads": args.threads,
            "torch_threads_in_ray_worker": threads_in_trial,
        }
    )


if __name__ == "__main__":
    main()
