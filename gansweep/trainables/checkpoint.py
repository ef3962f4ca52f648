"""A run's checkpoint: one file, ``trial.pt``, written by every trial at every evaluation
and by `gansweep train`. It holds the trainer's whole state (GANTrainer.state_dict: both
networks, both optimizers and their learning-rate schedules, the EMA of G, the step, the
random state), the metrics just reported, the MLflow run it belongs to and the trial
that wrote it (PBT hands one trial's checkpoint to another). Read back with
weights_only=True: tensors and plain data, never code."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from gansweep.profiling import Profile
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.metric_registry import TRAIN_CPU_SECONDS, TRAIN_SECONDS

CHECKPOINT_FILE = "trial.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read back (truncated, corrupted, foreign)."""


def save_trial_checkpoint(
    folder: Path, trainer: GANTrainer, run_id: str, metrics: dict, trial_id: str = ""
) -> None:
    """Write `folder`/trial.pt through a temporary file and a rename: a process that dies
    mid-write leaves the previous checkpoint whole. (No fsync: a trial writes one at every
    evaluation into a folder Tune then copies, and that copy is what a restore reads.)"""
    state = {"trainer": trainer.state_dict(), "mlflow_run_id": run_id, "metrics": metrics}
    state["trial_id"] = trial_id
    path = Path(folder) / CHECKPOINT_FILE
    partial = path.with_name(f".{CHECKPOINT_FILE}.{os.getpid()}.tmp")
    torch.save(state, partial)
    os.replace(partial, path)


def load_trial_checkpoint(folder: Path) -> dict[str, Any]:
    """Read `folder`/trial.pt with weights_only=True: tensors and plain data, no code."""
    path = Path(folder) / CHECKPOINT_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle refused by weights_only, missing file
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err


def costed_evaluations(
    trainer: GANTrainer, clock: Profile, spent: dict[str, float], on_step: Any = None
) -> Iterator[dict[str, float]]:
    """The engine's loop (GANTrainer.evaluations), each evaluation with the training
    seconds spent so far added, wall (TRAIN_SECONDS) and CPU (TRAIN_CPU_SECONDS): `spent`
    before this attempt (a restored run's), plus the time inside the loop, which `clock`
    counts as its phase "train+evaluate". What a run costs, for benchmarks that count
    compute rather than steps."""
    evaluations = trainer.evaluations(on_step)
    while True:
        with clock.phase("train+evaluate"):  # a generator: timed one next() at a time
            metrics = next(evaluations, None)
        if metrics is None:
            return
        metrics[TRAIN_SECONDS] = spent.get(TRAIN_SECONDS, 0.0) + clock.phases["train+evaluate"]
        metrics[TRAIN_CPU_SECONDS] = spent.get(TRAIN_CPU_SECONDS, 0.0) + clock.cpu["train+evaluate"]
        yield metrics
