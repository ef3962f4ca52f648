"""A mend of Ray Tune 2.60's controller (pyproject.toml bounds ray to 2.60.x; the tests
in tests/platform/test_tune_mends.py fail loudly when the code it mends changes).

When a trial's worker dies while the trial has two tasks in flight on it (a restore and
its first train step after a resume, say), Ray reports the actor's death once per task.
The first report recovers the trial: it goes back to PENDING, to restart from its last
checkpoint on a new actor. The second one reaches TuneController._trial_task_failure
for a trial that is PENDING already, which the controller ends as ERROR, whatever
--max-failures allows (its _on_error passes failures of an actor it has already cleaned
up on to the trial). benchmarks/soak.py found it: one of 648 trials ended ERROR after
one worker kill.

The mend ignores such a second report: an actor's death (RayActorError) reported for a
trial that is PENDING, i.e. already recovering from it. A trial whose new actor fails to
start is not affected: the controller sets it RUNNING before it reports that failure.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from ray.exceptions import RayActorError
from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial

log = logging.getLogger(__name__)


def ignoring_stale_actor_deaths(report: Callable[..., Any]) -> Callable[..., Any]:
    """TuneController._trial_task_failure, without the second report of one death."""
    if getattr(report, "mended", False):
        return report

    @functools.wraps(report)
    def mended(controller: Any, trial: Trial, exception: Exception) -> Any:
        if trial.status == Trial.PENDING and isinstance(exception, RayActorError):
            log.info("trial %s: its old actor's death reported again; it recovers", trial)
            return None
        return report(controller, trial, exception)

    mended.mended = True  # type: ignore[attr-defined]
    return mended


def mend_tune() -> None:
    """Apply the mend (once; safe to call again)."""
    TuneController._trial_task_failure = ignoring_stale_actor_deaths(  # type: ignore[method-assign]
        TuneController._trial_task_failure
    )
