"""The report's Optuna study is read once (dashboards/data.StudySnapshot): Optuna's plots
ask for every trial many times, and each full read of a journal deep-copies them all."""

import optuna
import optuna.visualization as ov

from gansweep.dashboards.data import StudySnapshot
from gansweep.records.study_store import open_study_file


def test_a_snapshot_reads_the_trials_once_and_gives_what_the_study_holds(tmp_path, monkeypatch):
    storage = open_study_file(tmp_path / "optuna.log", writer=True)
    study = optuna.create_study(study_name="s", storage=storage)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) + t.suggest_int("n", 1, 3), n_trials=12)
    study.enqueue_trial({"x": 0.5, "n": 2})  # a WAITING trial

    reads = []
    all_trials = type(storage).get_all_trials

    def counted(self, *args, **kwargs):
        reads.append(1)
        return all_trials(self, *args, **kwargs)

    monkeypatch.setattr(type(storage), "get_all_trials", counted)
    snapshot = StudySnapshot("s", storage)
    ov.plot_param_importances(snapshot)
    ov.plot_parallel_coordinate(snapshot)
    assert len(reads) == 1  # Optuna's plots asked many times; the storage was read once
    plain = optuna.load_study(study_name="s", storage=storage)
    assert [t.number for t in snapshot.trials] == [t.number for t in plain.trials]
    complete = (optuna.trial.TrialState.COMPLETE,)
    assert snapshot.get_trials(states=complete) == plain.get_trials(states=complete)
    assert len(snapshot.get_trials(states=complete)) == 12 and len(snapshot.trials) == 13
    assert snapshot.best_value == plain.best_value
