"""The GAN trainable (``--trainable gan``): thin glue around GANTrainer, run by Ray Tune
in each trial's process.

Build the trainer from the trial's config, restore it if Tune hands back a checkpoint,
then consume the engine's evaluations: log each to the trial's MLflow run (through the
records layer) and report it to Tune with a checkpoint (trainables/checkpoint.py). It
sits in the platform, above the engine and the records, which import neither Ray nor
each other's glue.

A replica (a top config retrained on a fresh seed) is a trial whose config carries
REPLICA_KEY, the id of the trial it replicates.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import ray
import torch
from pyarrow.fs import FileSelector, FileType
from ray import tune

from gansweep.profiling import Profile
from gansweep.records.ranking import trial_outcome
from gansweep.records.run_format import (
    GENERATOR_FILE,
    REPLICA_KEY,
    RESULT_RUN_ENDED,
    RESULT_RUN_ID,
    SAMPLES_FILE,
    TAG_DEVICE,
    TAG_NODE,
    SweepRecords,
    TrialIdentity,
)
from gansweep.records.write import TrialRun
from gansweep.trainables.checkpoint import (
    CheckpointError,
    costed_evaluations,
    load_trial_checkpoint,
    save_trial_checkpoint,
)
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.metric_registry import TRAIN_CPU_SECONDS, TRAIN_SECONDS
from gansweep.trainables.samples import save_samples


def restore_checkpoint(checkpoint: tune.Checkpoint) -> dict[str, Any]:
    """The state in Tune's latest checkpoint, or, if that one cannot be read (a truncated
    or corrupted file), in the newest earlier checkpoint of the same trial that can.

    Raises CheckpointError naming every file tried when none can be read: the trial then
    fails visibly instead of silently starting over.
    """
    errors = []
    candidates = [checkpoint]
    parent, name = checkpoint.path.rsplit("/", 1)
    filesystem = checkpoint.filesystem
    assert filesystem is not None, "Tune's checkpoints carry their file system"
    listing = filesystem.get_file_info(FileSelector(parent))
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
    candidates += [tune.Checkpoint(p, filesystem) for p in older]
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


def restore_trainer(
    trainer: GANTrainer, saved: dict[str, Any], trial_id: str
) -> tuple[str | None, str]:
    """Load a trial checkpoint into `trainer`, with the trainer's own config (its
    learning rates win over the saved optimizer state). Returns (the MLflow run to
    continue, the trial the checkpoint came from): a checkpoint of another trial (PBT's
    exploit) leaves the run None, since this trial keeps its own run."""
    trainer.load_state_dict(saved["trainer"])
    donor = saved.get("trial_id") or trial_id
    return (saved["mlflow_run_id"] if donor == trial_id else None), donor


def split_config(config: dict[str, Any]) -> tuple[TrialConfig, str | None]:
    """A Tune config -> (the TrialConfig, the trial id it replicates or None)."""
    values = {k: v for k, v in config.items() if k != REPLICA_KEY}
    return TrialConfig.from_dict(values), config.get(REPLICA_KEY)


def trial_run_name(config: dict[str, Any], trial_id: str) -> str:
    """``<combination>-<trial id>``, the name of the trial in Tune and in MLflow."""
    return f"{split_config(config)[0].combination}-{trial_id}"


def train_gan(config: dict[str, Any], context: SweepRecords) -> None:
    """Train one GAN as a Ray Tune trial (wrap with tune.with_parameters(context=...))."""
    clock = Profile("trial")
    with clock.phase("build"):
        cfg, replica_of = split_config(config)
        # Torch's threads = the trial's CPUs (a fraction of one: 1), so trials packed on a
        # machine do not oversubscribe its cores.
        cpus = ray.get_runtime_context().get_assigned_resources().get("CPU", 1.0)
        trainer = GANTrainer(cfg, threads=max(1, int(cpus)))
        trial_id = tune.get_context().get_trial_id()
        run_id, donor = None, None
        spent = {TRAIN_SECONDS: 0.0, TRAIN_CPU_SECONDS: 0.0}  # before this attempt
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            saved = restore_checkpoint(checkpoint)
            run_id, donor = restore_trainer(trainer, saved, trial_id)
            spent = {k: float(saved["metrics"].get(k, 0.0)) for k in spent}
    first_step = trainer.step  # a restored trial trains only the steps after this

    def record_profile() -> None:
        """Cumulative, written before each report: Tune may stop the trial inside one."""
        phases, cpu = dict(clock.phases), dict(clock.cpu)
        engine = trainer.timings
        for ours, its in ((phases, engine.phases), (cpu, engine.cpu)):
            ours["metrics"] = its.get("evaluate", 0.0)
            # The engine's loop: its steps and evaluate().
            ours["train"] = ours.pop("train+evaluate", 0.0) - ours["metrics"]
        clock.write(
            phases=phases,
            cpu=cpu,
            trial_id=trial_id,
            first_step=first_step,
            steps=trainer.step,
            config=config,
            torch_threads=torch.get_num_threads(),
        )

    with clock.phase("mlflow"):
        who = TrialIdentity(context, trial_id, cfg.combination, replica_of)
        run = TrialRun(who, cfg.model_dump(), run_id)
        if donor is not None and donor != trial_id:
            donor_config = saved["trainer"]["config"]
            run.record_perturbation(who, trainer.step, donor, donor_config, cfg.model_dump())
        # Where this attempt runs: on a cluster, the first thing to know about a failure.
        run.set_tags(
            {TAG_NODE: ray.get_runtime_context().get_node_id(), TAG_DEVICE: str(trainer.device)}
        )
    ended = False
    with tempfile.TemporaryDirectory(prefix="gansweep-") as scratch_dir:
        scratch = Path(scratch_dir)
        for metrics in costed_evaluations(trainer, clock, spent):
            with clock.phase("generator_file"):
                generator = scratch / GENERATOR_FILE
                torch.save(trainer.generator_state_dict(), generator)
            with clock.phase("picture"):
                samples = save_samples(trainer, scratch / SAMPLES_FILE)
            with clock.phase("mlflow"):
                run.log_evaluation(metrics, trainer.step, [samples, generator])
            with clock.phase("checkpoint"):
                folder = Path(tempfile.mkdtemp(dir=scratch))
                save_trial_checkpoint(folder, trainer, run.run_id, metrics, trial_id)
            # The last evaluation: the run is ended before the report, which says so, and
            # the driver has nothing to close (a trial killed in between is retried from
            # its previous checkpoint, and the retry opens the run again).
            ended = trainer.diverged or trainer.step >= cfg.steps
            if ended:
                with clock.phase("mlflow"):
                    run.finish(trial_outcome(trainer.step, cfg.steps, trainer.diverged))
            record_profile()
            # Returns after Tune has persisted the checkpoint; a scheduler that stops the
            # trial ends it here (the driver then closes its MLflow run).
            with clock.phase("report"):
                result = {**metrics, RESULT_RUN_ID: run.run_id, RESULT_RUN_ENDED: ended}
                tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
                shutil.rmtree(folder)  # Tune has its own copy now
    if not ended:  # restored at its last step: nothing left to evaluate or report
        with clock.phase("mlflow"):
            run.finish(trial_outcome(trainer.step, cfg.steps, trainer.diverged))
        record_profile()
