"""Writing the records is idempotent under retries, against a real MLflow SQLite store: a
run whose creation answer was lost is found, not created twice; a run that lost its
params gets them on the retry; an evaluation logged twice is recorded once."""

import pytest
from mlflow import MlflowClient

from gansweep.records import read
from gansweep.records.run_format import SweepRecords, TrialIdentity
from gansweep.records.write import TrialRun, start_sweep_run
from gansweep.trainables.config import TrialConfig


@pytest.fixture
def sweep(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id, parent = start_sweep_run(uri, "s", {"num_samples": 1}, None)
    return uri, experiment_id, parent


def open_run(sweep, trial_id="t1", replica_of=None, run_id=None) -> TrialRun:
    cfg = TrialConfig()
    who = TrialIdentity(SweepRecords(*sweep, "s"), trial_id, cfg.combination, replica_of)
    return TrialRun(who, cfg.model_dump(), run_id)


def test_a_lost_answer_to_create_run_does_not_make_a_second_run(sweep, monkeypatch):
    """The store created the run but the answer never came back (a dropped connection):
    the retry finds the run by its trial-id tag instead of creating another."""
    original = MlflowClient.create_run
    calls = []

    def create_then_fail(self, *args, **kwargs):
        calls.append(1)
        run = original(self, *args, **kwargs)
        if len(calls) == 1:
            raise ConnectionError("connection reset by peer")
        return run

    monkeypatch.setattr(MlflowClient, "create_run", create_then_fail)
    run = open_run(sweep)
    uri, experiment_id, parent = sweep
    runs = read.child_runs(uri, experiment_id, parent)
    assert len(calls) == 1 and [r.info.run_id for r in runs] == [run.run_id]
    assert set(TrialConfig.model_fields) <= runs[0].data.params.keys()


def test_a_run_that_died_before_its_params_gets_them_on_the_retry(sweep):
    uri, experiment_id, parent = sweep
    cfg = TrialConfig(loss="hinge")
    died = MlflowClient(uri).create_run(
        experiment_id,
        tags={"mlflow.parentRunId": parent, "gansweep.role": "trial", "gansweep.trial_id": "t1"},
    )
    who = TrialIdentity(SweepRecords(uri, experiment_id, parent), "t1", cfg.combination)
    retried = TrialRun(who, cfg.model_dump())
    assert retried.run_id == died.info.run_id
    params = MlflowClient(uri).get_run(died.info.run_id).data.params
    assert params["loss"] == "hinge" and set(TrialConfig.model_fields) <= params.keys()


def test_an_evaluation_logged_again_after_a_retry_is_recorded_once(sweep):
    first = open_run(sweep)
    first.log_evaluation({"distance": 0.5, "step": 100.0}, 100, [])
    again = open_run(sweep, run_id=first.run_id)  # the retried trial, from its checkpoint
    again.log_evaluation({"distance": 0.5, "step": 100.0}, 100, [])
    again.log_evaluation({"distance": 0.4, "step": 200.0}, 200, [])
    uri = sweep[0]
    history = MlflowClient(uri).get_metric_history(first.run_id, "distance")
    assert sorted((m.step, m.value) for m in history) == [(100, 0.5), (200, 0.4)]


def test_a_replica_run_carries_what_it_replicates_and_its_seed(sweep):
    run = open_run(sweep, trial_id="r1", replica_of="t9")
    tags = MlflowClient(sweep[0]).get_run(run.run_id).data.tags
    assert (tags["gansweep.role"], tags["replica_of"], tags["seed"]) == ("replica", "t9", "0")
