"""The mend of Ray Tune's controller (platform/tune_mends.py): a second report of one
actor's death no longer ends a recovering trial as ERROR; every other failure still
reaches the controller; and the Ray code it mends is still as it was."""

import inspect
import json
import shutil
from pathlib import Path

import pytest
from ray.exceptions import ActorDiedError, RayActorError
from ray.tune.execution import tune_controller
from ray.tune.experiment import Trial

from gansweep.platform.tune_mends import each_death_once, mend_tune, newest_checkpoint


class Controller:
    """Stands in for TuneController: records what reaches its failure handler."""

    def __init__(self):
        self.failures = []

    def _trial_task_failure(self, trial, exception):
        self.failures.append((trial.trial_id, type(exception).__name__))


def death(actor_id):
    error = ActorDiedError()
    error.actor_id = actor_id
    return error


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


def test_each_death_reaches_a_trial_once_and_every_other_failure_passes(trials):
    a, b = trials
    controller = Controller()
    mended = each_death_once(Controller._trial_task_failure)
    mended(controller, a, death("actor1"))  # the restore task's report: recovers a
    mended(controller, a, death("actor1"))  # the train task's, of the same death: dropped
    mended(controller, a, death("actor2"))  # a's new actor dies too: a new death
    mended(controller, b, death("actor1"))  # (never in practice; still not a's)
    mended(controller, a, ValueError("a task's own error"))
    mended(controller, a, RayActorError())  # no actor id: cannot tell, so it passes
    mended(controller, a, RayActorError())
    assert controller.failures == [
        ("a", "ActorDiedError"),
        ("a", "ActorDiedError"),
        ("b", "ActorDiedError"),
        ("a", "ValueError"),
        ("a", "RayActorError"),
        ("a", "RayActorError"),
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
    actor_failed = inspect.getsource(tune_controller.TuneController._actor_failed)
    assert "self._trial_task_failure(trial, exception=exception)" in actor_failed


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
