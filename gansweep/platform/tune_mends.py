"""A mend of Ray Tune 2.60's controller (pyproject.toml bounds ray to 2.60.x; the tests
in tests/platform/test_tune_mends.py fail loudly when the code it mends changes).

When a trial's worker dies while the trial has more than one task in flight on it, Ray
reports the actor's death once per task: TuneController._schedule_trial_task's
_on_error passes on the failure of an actor it has already cleaned up. The first report
recovers the trial: it goes back to PENDING, to restart from its last checkpoint on a
new actor. A later report of the same death reaches _process_trial_failure for a trial
that is recovering already, which ends it as ERROR, whatever --max-failures allows.
benchmarks/soak.py found it: one of 648 trials ended ERROR after one worker kill.

The mend lets each actor's death reach a trial once: a RayActorError whose actor id was
already reported for that trial is logged and dropped. Every other failure passes as
Ray sends it, so a trial whose new actor dies (a new id) fails and recovers as usual.
(An earlier mend dropped any actor death reported for a PENDING trial; a soak then left
one trial PENDING for good. This one keys on the dead actor itself.)
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


def each_death_once(report: Callable[..., Any]) -> Callable[..., Any]:
    """TuneController._trial_task_failure, without repeated reports of one death."""
    if getattr(report, "mended", False):
        return report

    @functools.wraps(report)
    def mended(controller: Any, trial: Trial, exception: Exception) -> Any:
        actor_id = getattr(exception, "actor_id", None)
        if isinstance(exception, RayActorError) and actor_id:
            # Kept on the controller: it lives as long as the experiment it runs.
            seen = controller.__dict__.setdefault("_gansweep_deaths", set())
            if (trial.trial_id, actor_id) in seen:
                log.info("trial %s: the death of actor %s reported again", trial, actor_id)
                return None
            seen.add((trial.trial_id, actor_id))
        return report(controller, trial, exception)

    mended.mended = True  # type: ignore[attr-defined]
    return mended


def mend_tune() -> None:
    """Apply the mend (once; safe to call again)."""
    TuneController._trial_task_failure = each_death_once(  # type: ignore[method-assign]
        TuneController._trial_task_failure
    )
