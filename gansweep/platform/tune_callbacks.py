"""The driver-side callbacks of a sweep's Tune experiments: the one that closes the
MLflow run of a trial that never closed its own, and the choice of Tune's result logs.
Both run on Tune's loop, where every file write and tracking call delays every trial's
next start."""

from __future__ import annotations

import logging
import os
from typing import Any

from ray import tune
from ray.tune.experiment import Trial
from ray.tune.logger import JsonLoggerCallback

from gansweep.platform.trial import split_config
from gansweep.records import ranking
from gansweep.records.manifest import Manifest
from gansweep.records.read import find_trial_run
from gansweep.records.run_format import RESULT_RUN_ENDED, RESULT_RUN_ID
from gansweep.records.write import end_trial_run

log = logging.getLogger(__name__)


class CloseTrialRuns(tune.Callback):
    """A Tune callback on the driver that closes the MLflow run of a trial the scheduler
    stopped (its function never returns) or that failed for good.

    It runs on Tune's loop, so each tracking call here delays every trial's next start:
    a trial whose last result says it ended its run itself costs no call, and one that
    names its run needs no search for it (run_format.RESULT_RUN_ENDED, RESULT_RUN_ID)."""

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest

    def _close(self, trial: Trial, status: str, run_status: str) -> None:
        m = self.manifest
        result = trial.last_result or {}
        if result.get(RESULT_RUN_ENDED):
            return
        try:
            run_id = result.get(RESULT_RUN_ID) or find_trial_run(
                m.tracking_uri, m.experiment_id, m.parent_run_id, trial.trial_id
            )
            if run_id is not None:
                end_trial_run(m.tracking_uri, run_id, status, run_status)
        except Exception as err:  # bookkeeping must never stop the sweep
            log.warning("could not close the MLflow run of %s: %s", trial, err)

    def on_trial_complete(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        result = trial.last_result or {}
        planned = split_config(trial.config)[0].steps
        outcome = ranking.trial_outcome(
            result.get("step", 0), planned, bool(result.get("diverged"))
        )
        self._close(trial, outcome, "FINISHED")

    def on_trial_error(self, iteration: int, trials: list, trial: Trial, **info: Any) -> None:
        self._close(trial, ranking.FAILED, "FAILED")


def json_results_only(tuner: tune.Tuner) -> None:
    """Of Tune's three logs of each trial's results, keep the JSON one (result.json:
    tune_mends reads it): the CSV and TensorBoard copies cost the driver's loop a file
    write per result, and the TensorBoard one an fsync (5 % of the driver's time at 2,000
    trials). Here rather than in the RunConfig, so that a sweep started before resumes
    with it too (Tuner.restore brings back the run config the sweep started with)."""
    run_config = tuner._local_tuner.get_run_config()  # type: ignore[union-attr]
    if not any(isinstance(c, JsonLoggerCallback) for c in run_config.callbacks or []):
        run_config.callbacks = [*(run_config.callbacks or []), JsonLoggerCallback()]
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # no CSV, no TensorBoard
