"""Ray Tune's schedulers as the sweeps need them: ASHA that leaves replicas alone, and
Ray's synchronous HyperBand mended where it hangs a sweep. The registry that picks one
by name (``--scheduler``) is schedulers.py."""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, TrialScheduler

from gansweep.records.run_format import REPLICA_KEY


def is_replica(trial: Trial) -> bool:
    return REPLICA_KEY in trial.config


class ReplicaSafeASHA(ASHAScheduler):
    """ASHA over the search's trials only: a replica started inside the search
    (backfill.py) trains its full budget, and its results fill no rung."""

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        if not is_replica(trial):
            super().on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        if is_replica(trial):
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        if not is_replica(trial):
            super().on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        if not is_replica(trial):
            super().on_trial_remove(tune_controller, trial)


class MendedHyperBand(HyperBandScheduler):
    """Ray's synchronous HyperBand without the two ways its Ray 2.60 code leaves a trial
    PAUSED for good, which hangs the sweep (nothing resumes it, nothing stops it):

    - A bracket that finishes stops its PAUSED trials (`_Bracket.cleanup_full`) but not
      one Tune is still saving on its way to PAUSED. Most likely how the HyperBand sweep
      of test_tune_glue.py hung once inside the full test suite.
    - A trial that leaves a bracket early (a GAN that diverges ends its trainable) gets
      the bracket processed only if it is not finished and was never halved
      (`is_being_processed` is never reset). Otherwise the trials that waited for it at
      the milestone wait for ever.

    Here a bracket is processed whenever its live trials all wait at the milestone, and
    a finished bracket stops every trial that waits, saving or paused.
    tests/platform/test_schedulers.py replays both cases."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Stopping a trial calls back on_trial_remove: a bracket is processed once at a time.
        self._processing = False

    def _process_bracket(self, tune_controller: Any, bracket: Any) -> str:
        was_processing, self._processing = self._processing, True
        try:
            if bracket.finished():  # every live trial is at max_t
                for trial in bracket.current_trials():
                    if trial.status == Trial.PAUSED or trial.is_saving:
                        tune_controller.stop_trial(trial)
                return TrialScheduler.STOP  # for the trial whose result this is, if any
            return super()._process_bracket(tune_controller, bracket)
        finally:
            self._processing = was_processing

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        bracket, _ = self._trial_info[trial]
        bracket.cleanup_trial(trial)
        # Outside a result, no live trial runs at the milestone: Tune pauses such a trial
        # in the same step that handles its result, so the others all wait there.
        if not self._processing and bracket.current_trials() and bracket.cur_iter_done():
            self._process_bracket(tune_controller, bracket)
