"""The sweep's Optuna study file: the journal of new sweeps, with the repair a resumed
driver makes of a torn last line, and the SQLite file older sweeps keep."""

import json
from pathlib import Path

import optuna
import pytest

from gansweep.records.manifest import LEGACY_STUDY_FILE, STUDY_FILE, Manifest
from gansweep.records.study_store import open_study_file, repair_journal, study_location


def a_study(path: Path, trials: int) -> None:
    study = optuna.create_study(study_name="s", storage=open_study_file(path, writer=True))
    for i in range(trials):
        study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), float(i))


def test_a_torn_last_line_is_cut_and_the_study_reads_and_writes_on(tmp_path):
    path = tmp_path / "optuna.log"
    a_study(path, 3)
    whole = path.read_bytes()
    torn = b'{"op_code":4,"worker_id":"x-1","study_id":0,"datetime_start":"20'
    with open(path, "ab") as f:
        f.write(torn)
    assert repair_journal(path) == len(torn)
    assert path.read_bytes() == whole
    study = optuna.load_study(study_name="s", storage=open_study_file(path, writer=True))
    study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 9.0)
    again = optuna.load_study(study_name="s", storage=open_study_file(path))
    assert [t.value for t in again.trials] == [0.0, 1.0, 2.0, 9.0]


def test_the_repair_says_how_much_it_cut_and_leaves_a_whole_journal_alone(tmp_path):
    path = tmp_path / "optuna.log"
    a_study(path, 2)
    whole = path.read_bytes()
    assert repair_journal(path) == 0 and path.read_bytes() == whole
    torn = b'{"op_code":4,"wor'
    path.write_bytes(whole + torn)
    assert repair_journal(path) == len(torn)
    assert path.read_bytes() == whole
    path.write_bytes(torn)  # nothing but half a line: the driver died in its first append
    assert repair_journal(path) == len(torn) and path.read_bytes() == b""
    assert repair_journal(tmp_path / "none.log") == 0  # no journal yet: nothing to do


def test_without_the_repair_the_next_append_is_buried_in_the_torn_line(tmp_path):
    """Why the resumed driver repairs: the next line appended joins the torn one, and
    Optuna cannot read it: the trial it just created is lost to it, and ask() fails."""
    path = tmp_path / "optuna.log"
    a_study(path, 1)
    with open(path, "ab") as f:
        f.write(b'{"op_code":4,"wor')
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    study = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(backend))
    with pytest.raises(AttributeError):  # _last_created_trial_id_by_this_process
        study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})


def test_a_lock_left_by_a_killed_driver_is_removed(tmp_path):
    """Optuna's symlink lock, left by a driver killed mid-append, would hold every
    append of the resumed driver for its 30 s grace period."""
    path = tmp_path / "optuna.log"
    a_study(path, 1)
    lock = Path(f"{path}.lock")
    lock.symlink_to(path)
    repair_journal(path)
    assert not lock.is_symlink() and not lock.exists()


def manifest_json(tmp_path: Path, **extra) -> str:
    values = {
        "name": "s", "sweep_dir": str(tmp_path), "tracking_uri": "sqlite:///x.db",
        "experiment_id": "1", "parent_run_id": "p", "study_name": "s", "space": "quick",
        "space_source": "", **extra,
    }  # fmt: skip
    return json.dumps(values)


def test_new_sweeps_keep_a_journal_and_older_manifests_their_sqlite_study(tmp_path):
    new = Manifest.from_json(manifest_json(tmp_path, study_file=STUDY_FILE))
    old = Manifest.from_json(manifest_json(tmp_path))  # written before the field existed
    assert new.study_path == tmp_path / "optuna.log"
    assert old.study_path == tmp_path / LEGACY_STUDY_FILE
    assert study_location(new) == str(tmp_path / "optuna.log")
    assert study_location(old) == f"sqlite:///{tmp_path / 'optuna.db'}"
    assert isinstance(open_study_file(old.study_path), optuna.storages.RDBStorage)
    assert isinstance(open_study_file(new.study_path), optuna.storages.JournalStorage)
