"""Shared by the sweep benchmarks: run one real sweep through gansweep.platform.sweep
(prepare + run: Ray Tune, Optuna, MLflow, checkpoints) into a folder, and read back what
every trial reported.

Two clocks are read for each evaluation of a trial:
- ``time_total_s``, Tune's: the sum of the time spent inside the trainable's train()
  calls. The function trainable reports synchronously: after each tune.report the trial's
  thread waits until the driver asks for the next result, and that wait is *not* counted.
- ``wall_time``, the MLflow metric timestamp (ms) the trial itself takes right after
  evaluate() and before logging, artifacts, checkpoint and report: plain wall-clock time
  in the trial's process, waits included.

Not a benchmark itself (the leading underscore); the scripts beside it import it.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gansweep.platform import sweep
from gansweep.platform.sweep_input import SweepOptions, prepare
from gansweep.records import read, run_format
from gansweep.records.leaderboard import Standings
from gansweep.records.manifest import Manifest

_names = itertools.count()
_RUN_ID = uuid.uuid4().hex[:6]


def json_lines() -> Callable[[dict[str, Any]], None]:
    """Keep stdout for the figures: from here on everything else written to file
    descriptor 1 (Tune's progress tables, Ray's and the workers' logs, which inherit the
    descriptor) goes to stderr. Returns ``emit(record)``, which prints one JSON line on
    the real stdout."""
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def emit(record: dict[str, Any]) -> None:
        out.write(json.dumps(record) + "\n")
        out.flush()

    return emit


def init_ray(num_cpus: float, num_gpus: float | None = None) -> None:
    """Start local Ray once for every sweep of a script; sweep.run then skips its own
    init (it only initializes when Ray is not up yet)."""
    import ray

    ray.init(
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        include_dashboard=False,
        logging_level=logging.WARNING,
    )


def write_space(folder: Path, fixed: dict[str, Any], name: str = "bench") -> Path:
    """A search space file that pins one config: the loader needs at least one param, so
    the default loss is a one-value choice (every trial gets the same config)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    space = {
        "description": "benchmark: one fixed config",
        "fixed": fixed,
        "params": {"loss": {"choice": ["ns"]}},
    }
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


@dataclass
class SweepRun:
    """One finished sweep: its manifest, driver wall time, one dict per trial of the
    search, and the standings (the leaderboard, replicated configs included)."""

    manifest: Manifest
    wall_s: float  # prepare() not included: from run() called to run() returned
    trials: list[dict[str, Any]]
    fixed: dict[str, Any]  # the space's fixed values with the --set overrides
    standings: Standings


def run_sweep(workdir: Path, label: str = "bench", **options: Any) -> SweepRun:
    """Run one sweep with SweepOptions(**options); its folder and MLflow store go under
    ``workdir`` (one SQLite file shared by every sweep of the script)."""
    options.setdefault("name", f"{label}-{_RUN_ID}-{next(_names)}")
    options.setdefault("storage", str(workdir / "sweeps"))
    options.setdefault("tracking_uri", f"sqlite:///{workdir / 'mlflow.db'}")
    options.setdefault("replicate_top", 0)
    prepared = prepare(SweepOptions(**options))
    start = time.perf_counter()
    ranked = sweep.run(prepared)
    wall = time.perf_counter() - start
    manifest = Manifest.load(options["storage"], prepared.name)
    return SweepRun(manifest, wall, trial_results(manifest), dict(prepared.space.fixed), ranked)


def _plain(value: Any) -> Any:
    """numpy / pandas scalars -> Python numbers (JSON-ready); NaN -> None."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def trial_results(manifest: Manifest) -> list[dict[str, Any]]:
    """Per trial of the search (not its replicas, which may share its Tune experiment):
    trial_id, status, config, planned_steps, ``results`` (every report, in order, with
    Tune's time_total_s and the MLflow wall_time of its evaluation) and the trial's MLflow
    run start/end (seconds since the epoch)."""
    from mlflow import MlflowClient
    from ray.tune import ExperimentAnalysis

    from gansweep.records.run_format import REPLICA_KEY
    from gansweep.trainables.config import TrialConfig

    analysis = ExperimentAnalysis(manifest.sweep_dir)
    frames = analysis.trial_dataframes
    client = MlflowClient(manifest.tracking_uri)
    runs = {
        run.data.tags.get(run_format.TAG_TRIAL_ID): run
        for run in read.child_runs(
            manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id
        )
    }
    trials = []
    for trial in analysis.trials:
        if REPLICA_KEY in trial.config:
            continue
        frame = frames.get(trial.trial_id)
        results = []
        if frame is not None and not frame.empty:
            columns = [c for c in frame.columns if not c.startswith("config/")]
            results = [
                {k: _plain(v) for k, v in row.items()} for row in frame[columns].to_dict("records")
            ]
        run = runs.get(trial.trial_id)
        wall_of_step: dict[int, float] = {}
        if run is not None:
            for metric in client.get_metric_history(run.info.run_id, "distance"):
                wall_of_step[int(metric.step)] = metric.timestamp / 1000
        for result in results:
            result["wall_time"] = wall_of_step.get(int(result.get("step") or -1))
        trials.append(
            {
                "trial_id": trial.trial_id,
                "status": trial.status,
                "config": dict(trial.config),
                "planned_steps": TrialConfig.from_dict(trial.config).steps,
                "results": results,
                "run_start": None if run is None else run.info.start_time / 1000,
                "run_end": None
                if run is None or run.info.end_time is None
                else run.info.end_time / 1000,
            }
        )
    return trials


def window(results: list[dict[str, Any]], clock: str) -> dict[str, float] | None:
    """Steps per second from a trial's first report to its last, on one clock
    (``time_total_s`` or ``wall_time``): (step_last - step_first) / (t_last - t_first).
    None with fewer than two reports."""
    timed = [r for r in results if r.get(clock) is not None and r.get("step") is not None]
    if len(timed) < 2:
        return None
    first, last = timed[0], timed[-1]
    steps = last["step"] - first["step"]
    seconds = last[clock] - first[clock]
    return {
        "steps": steps,
        "seconds": seconds,
        "start": first[clock],
        "end": last[clock],
        "steps_per_s": steps / seconds if seconds > 0 else math.nan,
    }


def last_result(trial: dict[str, Any]) -> dict[str, Any]:
    return trial["results"][-1] if trial["results"] else {}
