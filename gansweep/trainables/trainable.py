"""The Ray Tune function trainable: thin glue around GANTrainer.

Build the trainer from the trial's config, restore it if Tune hands back a checkpoint,
then loop: train, and at every evaluation log to the trial's MLflow child run and report
to Tune with a checkpoint. The only module under trainables/ that imports Ray or MLflow.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
import torch
from ray import tune

from gansweep.platform.tracking import TrialRun
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.samples import save_samples

CHECKPOINT_FILE = "trial.pt"


class CheckpointError(RuntimeError):
    """A checkpoint file that cannot be read back (truncated, corrupted, foreign)."""


@dataclass(frozen=True)
class SweepContext:
    """What every trial of a sweep needs to know besides its own config."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_name: str = ""


def save_trial_checkpoint(folder: Path, trainer: GANTrainer, run_id: str, metrics: dict) -> None:
    """The trainer's full state plus the MLflow run id and the metrics just reported."""
    state = {"trainer": trainer.state_dict(), "mlflow_run_id": run_id, "metrics": metrics}
    torch.save(state, folder / CHECKPOINT_FILE)


def load_trial_checkpoint(folder: Path) -> dict[str, Any]:
    """Read a trial checkpoint with weights_only=True: tensors and plain data, no code."""
    path = folder / CHECKPOINT_FILE
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, pickle refused by weights_only, missing file
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err


def restore_checkpoint(checkpoint: tune.Checkpoint) -> dict[str, Any]:
    """The state in Tune's latest checkpoint, or, if that one cannot be read (a truncated
    or corrupted file), in the newest earlier checkpoint of the same trial that can.

    Raises CheckpointError naming every file tried when none can be read: the trial then
    fails visibly instead of silently starting over.
    """
    from pyarrow.fs import FileSelector, FileType

    errors = []
    candidates = [checkpoint]
    parent, name = checkpoint.path.rsplit("/", 1)
    listing = checkpoint.filesystem.get_file_info(FileSelector(parent))
    older = sorted(
        (
            i.path
            for i in listing
            if i.type == FileType.Directory
            and i.base_name.startswith("checkpoint_")
            and i.base_name < name
        ),
        reverse=True,
    )
    candidates += [tune.Checkpoint(p, checkpoint.filesystem) for p in older]
    for candidate in candidates:
        with candidate.as_directory() as folder:
            try:
                state = load_trial_checkpoint(Path(folder))
            except CheckpointError as err:
                errors.append(str(err))
                continue
        if errors:
            warnings.warn(f"fell back to {candidate.path}: {'; '.join(errors)}", stacklevel=2)
        return state
    raise CheckpointError("no readable checkpoint: " + "; ".join(errors))


def trial_run_name(config: dict[str, Any], trial_id: str) -> str:
    """``<combination>-<trial id>``, the name of the trial in Tune and in MLflow."""
    return f"{TrialConfig.from_dict(config).combination}-{trial_id}"


def train_gan(config: dict[str, Any], context: SweepContext) -> None:
    """Train one GAN as a Ray Tune trial (wrap with tune.with_parameters(context=...))."""
    cfg = TrialConfig.from_dict(config)
    trainer = GANTrainer(cfg)
    trial_id = tune.get_context().get_trial_id()

    run_id = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        saved = restore_checkpoint(checkpoint)
        trainer.load_state_dict(saved["trainer"])  # re-applies the configured lr
        run_id = saved["mlflow_run_id"]

    run = TrialRun(
        context.tracking_uri,
        context.experiment_id,
        context.parent_run_id,
        trial_id=trial_id,
        run_name=trial_run_name(config, trial_id),
        params=cfg.model_dump(),
        run_id=run_id,
        sweep_name=context.sweep_name,
    )
    # Where this attempt runs: on a cluster, the first thing to know about a failure.
    run.set_tags({"ray.node_id": ray.get_runtime_context().get_node_id()})
    with tempfile.TemporaryDirectory(prefix="gansweep-") as scratch:
        scratch = Path(scratch)
        while not trainer.done:
            trainer.train_step()
            if trainer.step % cfg.eval_every and not trainer.done:
                continue
            metrics = trainer.evaluate()
            generator = scratch / "generator.pt"
            torch.save(trainer.generator_state_dict(), generator)
            samples = save_samples(trainer, scratch / "samples.png")
            run.log_evaluation(metrics, trainer.step, [samples, generator])

            folder = Path(tempfile.mkdtemp(dir=scratch))
            save_trial_checkpoint(folder, trainer, run.run_id, metrics)
            # Returns after Tune has persisted the checkpoint; a scheduler that stops the
            # trial ends it here (the driver then closes its MLflow run).
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
            shutil.rmtree(folder)  # Tune has its own copy now
    run.finish("diverged" if trainer.diverged else "finished")
