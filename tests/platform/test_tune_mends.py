"""The mend of Ray Tune's controller (platform/tune_mends.py): a second report of one
actor's death no longer ends a recovering trial as ERROR; every other failure still
reaches the controller; and the Ray code it mends is still as it was."""

import inspect

import pytest
from ray.exceptions import ActorDiedError, RayActorError
from ray.tune.execution import tune_controller
from ray.tune.experiment import Trial

from gansweep.platform.tune_mends import each_death_once, mend_tune


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
