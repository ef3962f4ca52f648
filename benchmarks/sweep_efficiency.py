"""The share of a sweep's time that trains GANs: what a whole `gansweep sweep` command
costs against the engine alone doing the same training.

Each round runs the real command (`gansweep sweep ...` as a subprocess, with
GANSWEEP_PROFILE set so the driver and every trial write where their time went, see
gansweep/profiling.py), then replays the same training without the platform: for every
trial, GANTrainer built from the trial's config runs train_step() for the steps the trial
trained, in worker processes with the trial's torch threads, as many at a time as the
sweep ran (same machine, same process conditions, right after the sweep).

    ideal            = sum of the replays' training times / the cores the sweep used
    efficiency       = ideal / (last trial's end - first trial's start): what every trial
                       pays (actor start-up, evaluations, logging, checkpoints, the driver)
    efficiency_total = ideal / the command's wall time: plus the one-time costs (Python
                       and imports, Ray's start, the MLflow set-up, the report)

Besides: `efficiency_without_idle_end` (the window less the slot-seconds idle after the
last trial started, when the sweep had nothing left to start: a diagnostic of the
platform's own overhead, not the target), the CPU share of training inside the trials,
the driver's CPU per phase, a fixed reference job's speed before and after each round
(the machine's drift), and under `phases` the search's and the replication's figures
each on its own window. Under ASHA and FIFO the replicas start inside the search, so the
two windows overlap: then `phases` keeps only each one's window and trials, and
`overlap_s`.

The command is the one a user runs with these settings: its default replication (the
top 3 configs on 3 fresh seeds) included. `--replicate-top 0` measures the search alone,
whose last trials run alone at its end with nothing left to start (replicas are
full-budget trials, the platform's cheapest case per step; the search alone is the
harsher figure).

Evaluations count as overhead here: the metrics are needed, but they are not training,
and their cost is one of the levers. Prints one JSON line per round with the breakdown
(seconds summed over trials), then a summary line with the medians over rounds.

Targets: efficiency >= 0.85, efficiency_total >= 0.70 (goal 0.95 / 0.85).

--baseline DIR (a checkout of another gansweep version, e.g. `git worktree add DIR
<commit>`) runs that version's command too, alternating with this one in every round
(the first side swaps each round), so a before/after comparison sees the same machine.
Both sides' replays use this checkout's engine: CPU training is bit-identical across the
versions compared here, so the work is the same.

    python benchmarks/sweep_efficiency.py [--rounds 3] [--space quick] [--num-samples 16]
        [--max-concurrent 2] [--steps 3000] [--replicate-top 3] [--keep DIR]
        [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gansweep.platform.options import DEFAULTS
from gansweep.records.run_format import REPLICA_KEY

TARGETS = {"efficiency": 0.85, "efficiency_total": 0.70}
# Phases of a trial, in the order they happen (gansweep/platform/trial.py).
TRIAL_PHASES = [
    "build", "mlflow", "train", "metrics", "generator_file", "picture", "checkpoint", "report",
]  # fmt: skip
DRIVER_PHASES = ["start", "ray_init", "search", "replicate", "finalize", "report"]


def run_command(
    workdir: Path, args: argparse.Namespace, name: str, code: Path | None
) -> tuple[float, Path, Path]:
    """Run `gansweep sweep` once, with the gansweep package of `code` if given (it goes
    first on PYTHONPATH, which Ray's local workers inherit); returns (wall seconds,
    profile file, its output file)."""
    profile = workdir / f"{name}.profile.jsonl"
    output = workdir / f"{name}.out"
    # `python -m`, not the console script: installed for this checkout, it may name an
    # entry point the baseline does not have. Each version runs its own __main__.
    command = [
        sys.executable, "-m", "gansweep.platform.cli", "sweep",
        "--space", args.space,
        "--num-samples", str(args.num_samples),
        "--max-concurrent", str(args.max_concurrent),
        "--set", f"steps={args.steps}",
        "--replicate-top", str(args.replicate_top),
        "--name", name,
        "--storage", str(workdir / "sweeps"),
        "--tracking-uri", f"sqlite:///{workdir / 'mlflow.db'}",
    ]  # fmt: skip
    env = dict(os.environ, GANSWEEP_PROFILE=str(profile))
    if code is not None:
        env["PYTHONPATH"] = str(code)
    began = time.time()
    with output.open("w") as out:
        # In the work folder: `python -m` puts the current folder first on sys.path, and
        # a checkout's own folder there would shadow the baseline's PYTHONPATH.
        subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir, check=True
        )
    return time.time() - began, profile, output


def read_profile(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the driver's record, the last record of every trial attempt)."""
    driver, trials = None, {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record["who"] == "driver":
            driver = record
        else:  # cumulative records: the latest of each attempt (pid + start) wins
            trials[(record["trial_id"], record["pid"], record["start"])] = record
    assert driver is not None, f"{path} has no driver record: did the sweep finish?"
    return driver, list(trials.values())


def replay(job: tuple[dict[str, Any], int, int]) -> float:
    """Seconds the engine alone takes for a trial's training steps (a worker process)."""
    import torch

    from gansweep.platform.trial import split_config
    from gansweep.trainables.config import TrialConfig
    from gansweep.trainables.engine import GANTrainer

    config, steps, threads = job
    torch.set_num_threads(threads)
    cfg, _ = split_config(config)
    trainer = GANTrainer(TrialConfig.from_dict({**cfg.model_dump(), "steps": 10**9}))
    began = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return time.perf_counter() - began


def replay_seconds(trials: list[dict[str, Any]], concurrent: int, threads: int) -> list[float]:
    """The engine-alone seconds of every trial's training, in the order of `trials`."""
    jobs = [(t["config"], t["steps"] - t["first_step"], threads) for t in trials]
    # Longest first, so the pool's last job is short and the cores stay busy.
    order = sorted(range(len(jobs)), key=lambda i: -jobs[i][1])
    with multiprocessing.get_context("spawn").Pool(concurrent) as pool:
        times = pool.map(replay, [jobs[i] for i in order], chunksize=1)
    seconds = [0.0] * len(jobs)
    for i, took in zip(order, times, strict=True):
        seconds[i] = took
    return seconds


def idle_after_last_start(trials: list[dict[str, Any]], slots: int) -> float:
    """Slot-seconds idle after the last trial started: the sweep had nothing left to
    start, so no overhead of the platform explains them (the last trials running alone).
    """
    begin, end = max(t["start"] for t in trials), max(t["end"] for t in trials)
    running = sum(min(t["end"], end) - max(t["start"], begin) for t in trials if t["end"] > begin)
    return slots * (end - begin) - running


# A fixed job timed before each sweep and after its replays, 2 at a time: these shared
# machines change speed by 10 % from one minute to the next, and the replays run minutes
# after the sweep. A round whose reference moved much is a noisy round.
REFERENCE = (
    {"dataset": "ring8", "architecture": "mlp", "loss": "ns", "penalty": "gp",
     "penalty_weight": 1.0, "n_critic": 1, "optimizer": "adam", "lr_g": 1e-3, "lr_d": 1e-3},
    600,
)  # fmt: skip


def reference_speed(concurrent: int) -> float:
    """Steps per second of REFERENCE, `concurrent` copies at a time (median copy)."""
    config, steps = REFERENCE
    with multiprocessing.get_context("spawn").Pool(concurrent) as pool:
        times = pool.map(replay, [(config, steps, 1)] * concurrent, chunksize=1)
    return steps / statistics.median(times)


def phase_figures(trials: list[dict[str, Any]], seconds: list[float], slots: int) -> dict:
    """One phase's trials (the search's, or the replication's) on their own: from its
    first trial's start to its last trial's end."""
    window = max(t["end"] for t in trials) - min(t["start"] for t in trials)
    ideal = sum(seconds) / slots
    alone = idle_after_last_start(trials, slots)
    return {
        "trials": len(trials),
        "efficiency": round(ideal / window, 3),
        "efficiency_without_idle_end": round(ideal / (window - alone / slots), 3),
        "ideal_s": round(ideal, 1),
        "window_s": round(window, 1),
        "slot_idle_at_the_end": round(alone, 2),
    }


def one_round(
    workdir: Path, args: argparse.Namespace, index: int, side: str, code: Path | None
) -> dict[str, Any]:
    reference_before = reference_speed(args.max_concurrent)
    launched = time.time()
    wall, profile, output = run_command(workdir, args, f"eff-{side}-{index}", code)
    driver, trials = read_profile(profile)
    first = min(t["start"] for t in trials)
    last = max(t["end"] for t in trials)
    window = last - first
    threads = 1  # the sweep's default --cpus-per-trial; Ray sets OMP_NUM_THREADS from it
    seconds = replay_seconds(trials, args.max_concurrent, threads)
    ideal = sum(seconds) / (args.max_concurrent * threads)
    reference_after = reference_speed(args.max_concurrent)
    # The search's trials and the replication's (a replica's config names the trial it
    # replicates), each phase on its own; with --replicate-top 0 the search is all.
    chosen = {
        phase: [i for i, t in enumerate(trials) if (REPLICA_KEY in t["config"]) == is_replica]
        for phase, is_replica in [("search", False), ("replication", True)]
    }
    phases: dict[str, dict[str, Any]] = {
        phase: phase_figures(
            [trials[i] for i in indices],
            [seconds[i] for i in indices],
            args.max_concurrent * threads,
        )
        for phase, indices in chosen.items()
        if indices
    }
    if len(phases) == 2:
        # Replicas started inside the search (gansweep/platform/backfill.py) share its
        # window: a phase's figure would count the other's training as idle, so only the
        # windows are kept, with their overlap.
        search_end = max(trials[i]["end"] for i in chosen["search"])
        overlap = search_end - min(trials[i]["start"] for i in chosen["replication"])
        if overlap > 0:
            for figures in phases.values():
                for key in ("efficiency", "efficiency_without_idle_end", "slot_idle_at_the_end"):
                    del figures[key]
            phases["overlap_s"] = round(overlap, 1)  # type: ignore[assignment]

    inside = sum(t["end"] - t["start"] for t in trials)
    trial_phases = {p: round(sum(t["phases"].get(p, 0.0) for t in trials), 2) for p in TRIAL_PHASES}
    accounted = sum(trial_phases.values())
    alone = idle_after_last_start(trials, args.max_concurrent)
    # Slots idle between one trial's end and the next one's start on the same slot:
    # actor start-up, the driver's scheduling, Ray's bookkeeping.
    between = args.max_concurrent * window - inside - alone
    train_cpu = sum(t.get("cpu", {}).get("train", 0.0) for t in trials)
    return {
        "round": index,
        "code": side,
        "efficiency": round(ideal / window, 3),
        "efficiency_total": round(ideal / wall, 3),
        # A diagnostic, not the target: the window less the end where slots were idle
        # because the sweep had nothing left to start (the platform's own overhead).
        "efficiency_without_idle_end": round(ideal / (window - alone / args.max_concurrent), 3),
        "ideal_s": round(ideal, 1),
        "trials_window_s": round(window, 1),
        "command_wall_s": round(wall, 1),
        # REFERENCE's steps/s before the sweep and after the replays: equal on a steady
        # machine.
        "reference_steps_per_s": [round(reference_before, 1), round(reference_after, 1)],
        "trials": len(trials),
        "steps_trained": sum(t["steps"] - t["first_step"] for t in trials),
        "output_lines": len(output.read_text().splitlines()),
        "before_first_trial_s": round(first - launched, 1),
        "after_last_trial_s": round(launched + wall - last, 1),
        "driver": {
            "python_and_imports": round(driver["start"] - launched, 2),
            **{p: round(driver["phases"].get(p, 0.0), 2) for p in DRIVER_PHASES},
            "exit": round(launched + wall - driver["end"], 2),
        },
        # CPU seconds of the driver's process (all its threads) in each phase.
        "driver_cpu": {p: round(v, 2) for p, v in driver.get("cpu", {}).items()},
        # Training's CPU time over its wall time inside the trials: below 1, other
        # processes (the driver, Ray's) held the core.
        "train_cpu_share": round(train_cpu / max(trial_phases["train"], 1e-9), 3),
        "trials_sum": {
            **trial_phases,
            "other_inside_trial": round(inside - accounted, 2),
            "between_trials": round(between, 2),
            "slot_idle_at_the_end": round(alone, 2),
        },
        "between_trials_per_trial_s": round(between / len(trials), 2),
        "phases": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--space", default="quick")
    parser.add_argument("--num-samples", type=int, default=16)
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument(
        "--replicate-top",
        type=int,
        default=DEFAULTS.replicate_top,
        help="the configs replicated on fresh seeds, as `gansweep sweep` (default: the "
        "command's own default); 0 measures the search alone",
    )
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with")
    args = parser.parse_args()

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="gansweep-efficiency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    sides: list[tuple[str, Path | None]] = [("current", None)]
    if args.baseline is not None:
        sides.append(("baseline", args.baseline.resolve()))
    rounds: dict[str, list[dict[str, Any]]] = {side: [] for side, _ in sides}
    for index in range(args.rounds):
        order = sides if index % 2 else list(reversed(sides))
        for side, code in order:
            record = one_round(workdir, args, index, side, code)
            rounds[side].append(record)
            print(json.dumps(record), flush=True)
    for side, records in rounds.items():
        summary: dict[str, Any] = {"summary": side, "rounds": args.rounds}
        for key in ["efficiency", "efficiency_total", "efficiency_without_idle_end",
                    "command_wall_s", "trials_window_s"]:  # fmt: skip
            summary[key + "_median"] = statistics.median(r[key] for r in records)
        for phase in ["search", "replication"]:
            if all("efficiency" in r["phases"].get(phase, {}) for r in records):
                efficiencies = [r["phases"][phase]["efficiency"] for r in records]
                summary[f"{phase}_efficiency_median"] = statistics.median(efficiencies)
        summary["targets"] = TARGETS
        summary["workdir"] = str(workdir)
        print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
