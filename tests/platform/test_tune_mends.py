"""The mends of Ray Tune's controller (platform/tune_mends.py): an actor's death reported
for a recovering trial recovers it again instead of ending it; a trial whose checkpoint
was deleted resumes from the newest one left; and the Ray code they mend is still as it
was."""

import inspect
import json
import shutil
from pathlib import Path

import pytest
from ray.exceptions import ActorDiedError
from ray.tune.execution import tune_controller
from ray.tune.experiment import Trial

from gansweep.platform.tune_mends import mend_tune, newest_checkpoint, recovering_pending_trials


class Controller:
    """Stands in for TuneController: what the mend touches, and a record of what reaches
    its failure handler (the trial's status then)."""

    def __init__(self):
        self.failures = []
        self._resetting_trials = set()
        self._staged_trials = set()

    def _unstage_trial_with_resources(self, trial):
        self._staged_trials.remove(trial)

    def _set_trial_status(self, trial, status):
        trial.set_status(status)

    def _trial_task_failure(self, trial, exception):
        self.failures.append((trial.trial_id, trial.status, type(exception).__name__))


@pytest.fixture
def ray_local():
    import sys

    import ray
    from ray import cloudpickle

    # Ray's workers cannot import this test module: its functions travel by value.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture
def trials():
    return Trial("__fake", stub=True, trial_id="a"), Trial("__fake", stub=True, trial_id="b")


def test_an_actor_death_reported_for_a_recovering_trial_recovers_it_again(trials):
    """A PENDING trial (recovering, staged for a reused actor) hears of an actor's death:
    it reaches the handler RUNNING, unstaged and no longer resetting, so Ray recovers it
    instead of ending it. Every other failure passes as it came."""
    a, b = trials
    controller = Controller()
    mended = recovering_pending_trials(Controller._trial_task_failure)
    a.set_status(Trial.PENDING)
    controller._staged_trials.add(a)
    controller._resetting_trials.add(a)
    mended(controller, a, ActorDiedError())
    assert controller._staged_trials == set() and controller._resetting_trials == set()
    b.set_status(Trial.PENDING)
    mended(controller, b, ValueError("a task's own error"))  # not a death: as it came
    b.set_status(Trial.RUNNING)
    mended(controller, b, ActorDiedError())  # a running trial's death: as it came
    assert controller.failures == [
        ("a", Trial.RUNNING, "ActorDiedError"),
        ("b", Trial.PENDING, "ValueError"),
        ("b", Trial.RUNNING, "ActorDiedError"),
    ]


def test_the_mend_is_applied_once():
    mend_tune()
    once = tune_controller.TuneController._trial_task_failure
    mend_tune()
    assert tune_controller.TuneController._trial_task_failure is once
    assert once.mended


def test_the_ray_code_it_mends_is_unchanged():
    """If a Ray release stops passing failures of cleaned-up actors on, or recovers a
    trial differently, the mend may be needless or wrong: look again."""
    source = inspect.getsource(tune_controller.TuneController._schedule_trial_task)
    assert "if tracked_actor not in self._actor_to_trial:" in source
    assert "on_error(trial, exception)" in source
    failure = inspect.getsource(tune_controller.TuneController._process_trial_failure)
    assert "trial.status == Trial.RUNNING and trial.should_recover()" in failure
    assert "elif trial.status in {Trial.RUNNING, Trial.PENDING}:" in failure
    # The treatment the mend copies, for a pending trial whose new actor died:
    actor_failed = inspect.getsource(tune_controller.TuneController._actor_failed)
    assert "self._set_trial_status(trial, Trial.RUNNING)" in actor_failed
    assert "self._unstage_trial_with_resources(trial)" in actor_failed
    assert "self._trial_task_failure(trial, exception=exception)" in actor_failed
    reuse = inspect.getsource(tune_controller.TuneController._maybe_reuse_cached_actor)
    assert "if trial in self._resetting_trials:" in reuse


def counting(config):
    """Reports iterations with a checkpoint each, on from its checkpoint's; fails once
    after its third, when the file config["fail"] exists (and removes it)."""
    import os
    import tempfile

    from ray import tune

    start = 0
    if (checkpoint := tune.get_checkpoint()) is not None:
        with checkpoint.as_directory() as folder:
            start = int(open(os.path.join(folder, "i")).read())
    for i in range(start + 1, 6):
        if i == 4 and os.path.exists(config["fail"]):
            os.remove(config["fail"])
            raise RuntimeError("the first attempt fails here")
        with tempfile.TemporaryDirectory() as folder:
            open(os.path.join(folder, "i"), "w").write(str(i))
            tune.report({"i": i}, checkpoint=tune.Checkpoint.from_directory(folder))


def test_a_trial_whose_checkpoint_was_deleted_resumes_from_the_newest_one_left(tmp_path, ray_local):
    """The trial's saved state names a checkpoint that Tune deleted before the driver
    died: resumed, it restores from the newest checkpoint on disk and finishes, instead
    of failing every restore."""
    from ray import tune

    mend_tune()
    (tmp_path / "fail").touch()
    tuner = tune.Tuner(
        counting,
        param_space={"fail": str(tmp_path / "fail")},
        run_config=tune.RunConfig(
            name="x", storage_path=str(tmp_path), verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        ),
    )  # fmt: skip
    [first] = tuner.fit()
    assert first.error is not None and first.metrics["i"] == 3
    trial_dir = Path(first.path)
    kept = sorted(p.name for p in trial_dir.glob("checkpoint_*"))
    assert kept == ["checkpoint_000001", "checkpoint_000002"]
    shutil.rmtree(trial_dir / kept[-1])  # the one the state names: gone

    assert newest_checkpoint(trial_dir).metrics["training_iteration"] == 2
    resumed = tune.Tuner.restore(str(tmp_path / "x"), counting, resume_errored=True)
    [again] = resumed.fit()
    assert again.error is None and again.metrics["i"] == 5
    iterations = [json.loads(line)["i"] for line in (trial_dir / "result.json").open()]
    assert iterations == [1, 2, 3, 3, 4, 5]  # on from the second checkpoint
    kept = sorted(p.name for p in trial_dir.glob("checkpoint_*"))
    assert kept == ["checkpoint_000004", "checkpoint_000005"]  # older ones deleted, once
