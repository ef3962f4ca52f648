"""Two mends of Ray Tune 2.60's controller (pyproject.toml bounds ray to 2.60.x; the tests
in tests/platform/test_tune_mends.py fail loudly when the code they mend changes). Both
were found by benchmarks/soak.py.

1. One worker's death, reported twice. When a trial's worker dies while the trial has
more than one task in flight on it, Ray reports the actor's death once per task:
TuneController._schedule_trial_task's _on_error passes on the failure of an actor it has
already cleaned up. The first report recovers the trial: it goes back to PENDING, to
restart from its last checkpoint on a new (or a reused) actor. A later report reaches
_process_trial_failure for a trial that is PENDING, which ends it as ERROR, whatever
--max-failures allows: one of 648 trials was lost this way after one worker kill.

The mend treats an actor's death reported for a PENDING trial as Ray's own
_actor_failed treats the death of a pending trial's new actor: the trial is unstaged
and set RUNNING first, so that _process_trial_failure recovers it once more (stopping
the actor it was about to get, and counting one more failure against --max-failures)
instead of ending it. Two mends that dropped such a report instead were tried, and each
left a trial PENDING for good in a full soak: the report's handling stops the actor
the trial was about to get, and the recovery needs that.

2. A restore from a deleted checkpoint. Tune deletes a trial's older checkpoints as new
ones arrive (CheckpointConfig.num_to_keep), and forces a save of the experiment state
only afterwards. A driver killed in between leaves a state whose trial points at a
checkpoint that is gone: on resume every restore of it fails ("does not exist on storage
anymore") until --max-failures ends the trial as ERROR. The mend points such a trial at
its newest checkpoint still on disk, with that checkpoint's result from the trial's
result.json (Tune restores the trial's iteration count from it), or at none, to start
over, when none is left.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray import tune
from ray.exceptions import RayActorError
from ray.train._internal.session import _TrainingResult
from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial

log = logging.getLogger(__name__)


def recovering_pending_trials(report: Callable[..., Any]) -> Callable[..., Any]:
    """TuneController._trial_task_failure, recovering a PENDING trial from an actor's
    death instead of ending it."""
    if getattr(report, "mended", False):
        return report

    @functools.wraps(report)
    def mended(controller: Any, trial: Trial, exception: Exception) -> Any:
        if trial.status == Trial.PENDING and isinstance(exception, RayActorError):
            log.warning("trial %s: an actor's death reported while it recovers: again", trial)
            controller._resetting_trials.discard(trial)  # a reused actor's reset is moot
            if trial in controller._staged_trials:
                controller._unstage_trial_with_resources(trial)
            controller._set_trial_status(trial, Trial.RUNNING)
        return report(controller, trial, exception)

    mended.mended = True  # type: ignore[attr-defined]
    return mended


def newest_checkpoint(trial_dir: Path) -> _TrainingResult | None:
    """The newest checkpoint left in a trial's folder, with the result Tune reported it
    with (a line of result.json naming it in checkpoint_dir_name); None if none is left."""
    newest = None
    results = trial_dir / "result.json"
    lines = results.read_text().splitlines() if results.exists() else []
    for line in lines:
        try:
            result = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the kill
            continue
        name = result.get("checkpoint_dir_name")
        if name and (trial_dir / name).is_dir():
            newest = result
    if newest is None:
        return None
    folder = trial_dir / newest["checkpoint_dir_name"]
    return _TrainingResult(tune.Checkpoint.from_directory(str(folder)), newest)


def _on_local_disk(result: _TrainingResult) -> bool | None:
    """Whether a result's checkpoint is on this machine's disk; None: not a local one."""
    checkpoint = result.checkpoint
    fs = checkpoint.filesystem if checkpoint else None
    if checkpoint is None or fs is None or fs.type_name != "local":
        return None
    return Path(checkpoint.path).is_dir()


def restore_from_what_is_left(trial: Trial) -> None:
    """Point a restored trial whose latest checkpoint was deleted at the newest one left,
    and forget its deleted older ones (Tune would fail to delete them again, and skip
    the bookkeeping after that)."""
    manager = trial.run_metadata.checkpoint_manager
    if manager is None or trial.status == Trial.TERMINATED or trial.path is None:
        return  # (resume restores ERROR trials too)
    kept = manager._checkpoint_results
    manager._checkpoint_results = [r for r in kept if _on_local_disk(r) is not False]
    latest = manager.latest_checkpoint_result
    if latest is None or _on_local_disk(latest) is not False:
        return  # there, or on a remote store this mend does not read
    replacement = newest_checkpoint(Path(trial.path))
    left = replacement.checkpoint if replacement else None
    log.warning(
        "trial %s: its checkpoint %s was deleted before Tune saved its state; "
        "it restores from %s",
        trial, Path(latest.checkpoint.path).name if latest.checkpoint else "?",
        Path(left.path).name if left else "the start",
    )  # fmt: skip
    if replacement is not None and left is not None:
        known = [
            r
            for r in manager._checkpoint_results
            if r.checkpoint and r.checkpoint.path == left.path
        ]
        if known:  # one object per folder: Tune deletes each once
            replacement = known[-1]
        else:
            manager._checkpoint_results.append(replacement)
    manager._latest_checkpoint_result = replacement


def restoring_from_what_is_left(restore: Callable[..., Any]) -> Callable[..., Any]:
    """TuneController._restore_trials, each trial then pointed at a checkpoint that is
    there."""
    if getattr(restore, "mended", False):
        return restore

    @functools.wraps(restore)
    def mended(controller: Any, experiment_state: dict) -> list[Trial]:
        trials = restore(controller, experiment_state)
        for trial in trials:
            restore_from_what_is_left(trial)
        return trials

    mended.mended = True  # type: ignore[attr-defined]
    return mended


def mend_tune() -> None:
    """Apply the mends (once; safe to call again)."""
    TuneController._trial_task_failure = recovering_pending_trials(  # type: ignore[method-assign]
        TuneController._trial_task_failure
    )
    TuneController._restore_trials = restoring_from_what_is_left(  # type: ignore[method-assign]
        TuneController._restore_trials
    )
