"""The driver's callback that closes trial runs (tune_callbacks.CloseTrialRuns), against a
real SQLite store: a trial whose last result says it ended its run costs no tracking
call, and one that names its run is closed by that name, with no search."""

import logging
from types import SimpleNamespace

from mlflow import MlflowClient

from gansweep.platform.tune_callbacks import CloseTrialRuns
from gansweep.records import ranking
from gansweep.records.run_format import (
    RESULT_RUN_ENDED,
    RESULT_RUN_ID,
    TAG_STATUS,
    SweepRecords,
    TrialIdentity,
)
from gansweep.records.write import TrialRun, start_sweep_run

# A store no MLflow client opens: any tracking call made to it fails at once, and the
# callback says so in a warning.
NOWHERE = "nowhere:///store"


def open_run(tmp_path, trial_id):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id, parent = start_sweep_run(uri, "s", {}, None)
    records = SweepRecords(uri, experiment_id, parent, "s")
    run = TrialRun(TrialIdentity(records, trial_id, "ns-adam"), {"lr_g": 0.001})
    return records, run


def callback(uri, records):
    manifest = SimpleNamespace(
        tracking_uri=uri, experiment_id=records.experiment_id, parent_run_id=records.parent_run_id
    )
    return CloseTrialRuns(manifest)


def test_a_trial_that_ended_its_own_run_costs_no_tracking_call(tmp_path, caplog):
    records, run = open_run(tmp_path, "t1")
    run.finish(ranking.FINISHED)
    trial = SimpleNamespace(
        trial_id="t1", last_result={"step": 300, RESULT_RUN_ID: run.run_id, RESULT_RUN_ENDED: True}
    )
    with caplog.at_level(logging.WARNING):
        callback(NOWHERE, records)._close(trial, ranking.FINISHED, "FINISHED")
    assert "could not close" not in caplog.text  # no call was made to the store nowhere

    # The same trial without the flag does call the store (the check above can fail).
    trial.last_result = {"step": 300, RESULT_RUN_ID: run.run_id}
    with caplog.at_level(logging.WARNING):
        callback(NOWHERE, records)._close(trial, ranking.FINISHED, "FINISHED")
    assert "could not close" in caplog.text


def test_a_stopped_trial_is_closed_by_the_run_its_results_name(tmp_path):
    records, run = open_run(tmp_path, "t2")
    # A trial id no run carries: found by a search, the run would stay open.
    result = {"step": 100, RESULT_RUN_ID: run.run_id, RESULT_RUN_ENDED: False}
    trial = SimpleNamespace(trial_id="not-t2", last_result=result)
    callback(records.tracking_uri, records)._close(trial, ranking.STOPPED_EARLY, "FINISHED")
    closed = MlflowClient(records.tracking_uri).get_run(run.run_id)
    assert closed.info.status == "FINISHED"
    assert closed.data.tags[TAG_STATUS] == ranking.STOPPED_EARLY


def test_a_trial_with_no_result_is_found_by_its_trial_id(tmp_path):
    records, run = open_run(tmp_path, "t3")
    trial = SimpleNamespace(trial_id="t3", last_result={})  # failed before its first report
    callback(records.tracking_uri, records)._close(trial, ranking.FAILED, "FAILED")
    closed = MlflowClient(records.tracking_uri).get_run(run.run_id)
    assert closed.info.status == "FAILED"
    assert closed.data.tags[TAG_STATUS] == ranking.FAILED
