"""The incremental read of a sweep's runs (records/run_cache.py), against a real MLflow
SQLite store: after every change a sweep makes to its runs (new runs, runs ending, a
retried trial running again, a lost stub deleted), the cached read equals a full read,
and it asks MLflow only for the runs that changed."""

import json
import time

import pandas as pd
import pytest
from mlflow import MlflowClient

from gansweep.records import read, run_cache
from gansweep.records.run_format import SweepRecords, TrialIdentity
from gansweep.records.write import TrialRun, discard_run, start_sweep_run
from gansweep.trainables.config import TrialConfig


@pytest.fixture
def sweep(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment_id, parent = start_sweep_run(uri, "s", {"num_samples": 8}, None)
    return uri, experiment_id, parent


def open_run(sweep, trial_id: str) -> TrialRun:
    cfg = TrialConfig()
    who = TrialIdentity(SweepRecords(*sweep, "s"), trial_id, cfg.combination)
    run = TrialRun(who, cfg.model_dump())
    run.log_evaluation({"distance": 0.5, "step": 100.0}, 100, [])
    return run


def full(sweep) -> pd.DataFrame:
    return read.runs_frame(read.child_runs(*sweep))


def same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Equal as tables: the same runs, columns and values, in any order."""
    a, b = (f.sort_values("run_id").reset_index(drop=True) for f in (a, b))
    pd.testing.assert_frame_equal(a[sorted(a.columns)], b[sorted(b.columns)], check_dtype=False)


class Counted:
    """A search that counts the runs each read fetched from MLflow."""

    def __init__(self, sweep):
        self.search = read._searcher(sweep[0], sweep[1])
        self.fetched = 0

    def __call__(self, query: str, view_type: int):
        runs = self.search(query, view_type)
        self.fetched += len(runs)
        return runs


def cached(sweep, cache, counted=None) -> pd.DataFrame:
    search = counted or Counted(sweep)
    rows = run_cache.read_rows(search, read._parent_filter(sweep[2]), sweep[2], cache)
    return pd.DataFrame(rows)


def test_the_cached_read_follows_every_change_a_sweep_makes_to_its_runs(sweep, tmp_path):
    cache = tmp_path / run_cache.CACHE_FILE
    runs = {f"t{i}": open_run(sweep, f"t{i}") for i in range(6)}
    for i in range(4):
        runs[f"t{i}"].finish("finished")
    same(cached(sweep, cache), full(sweep))  # the first read: every run, the cache made
    assert {row["tags.gansweep.trial_id"] for row in json.loads(cache.read_text())["rows"]} == {
        "t0",
        "t1",
        "t2",
        "t3",
    }  # fmt: skip  (only the ended runs are kept)

    runs["t4"].finish("stopped")  # a run ends
    runs["t6"] = open_run(sweep, "t6")  # a run starts
    runs["t1"] = TrialRun(  # Ray retries trial t1: its run runs again
        TrialIdentity(SweepRecords(*sweep, "s"), "t1", TrialConfig().combination),
        TrialConfig().model_dump(),
    )
    discard_run(sweep[0], runs["t5"].run_id)  # a lost stub, deleted on resume
    MlflowClient(sweep[0]).delete_run(runs["t3"].run_id)  # deleted in the UI, once cached
    after = cached(sweep, cache)
    same(after, full(sweep))
    assert set(after["tags.gansweep.trial_id"]) == {"t0", "t1", "t2", "t4", "t6"}
    assert after.set_index("tags.gansweep.trial_id").loc["t1", "status"] == "RUNNING"

    runs["t1"].finish("finished")
    same(cached(sweep, cache), full(sweep))


def test_an_old_end_is_not_read_again(sweep, tmp_path, monkeypatch):
    """Past the slack, a run that ended is served from the cache, not fetched."""
    cache = tmp_path / run_cache.CACHE_FILE
    for i in range(5):
        open_run(sweep, f"t{i}").finish("finished")
        time.sleep(0.01)  # one newest end
    cached(sweep, cache)
    monkeypatch.setattr(run_cache, "SLACK_MS", 0)  # the newest end, no slack
    open_run(sweep, "t9")
    counted = Counted(sweep)
    frame = cached(sweep, cache, counted)
    same(frame, full(sweep))
    assert len(frame) == 6 and counted.fetched == 2  # t9 (running) and the newest end


@pytest.mark.parametrize(
    "content", ["not json", '{"format": 1, "parent_run_id": "other", "rows": []}']
)
def test_an_unreadable_or_foreign_cache_means_one_full_read(sweep, tmp_path, content):
    cache = tmp_path / run_cache.CACHE_FILE
    for i in range(3):
        open_run(sweep, f"t{i}").finish("finished")
    cache.write_text(content)
    same(cached(sweep, cache), full(sweep))
    assert json.loads(cache.read_text())["parent_run_id"] == sweep[2]  # rebuilt


def test_a_sweep_folder_not_on_this_host_still_reads_every_run_and_makes_none(sweep, tmp_path):
    for i in range(2):
        open_run(sweep, f"t{i}").finish("finished")
    cache = tmp_path / "no" / "such" / "folder" / run_cache.CACHE_FILE
    same(cached(sweep, cache), full(sweep))
    assert not (tmp_path / "no").exists()


def test_the_histories_of_ended_runs_are_read_once(tmp_path):
    """A run's history is fetched while it runs, once when it has ended, and again when
    a retry made it end again (another end time) or another metric is asked for."""
    cache = tmp_path / run_cache.HISTORIES_FILE
    fetched: list[str] = []

    def fetch(run_id: str) -> list[tuple[int, float]]:
        fetched.append(run_id)
        return [(100, 0.5), (200, 0.25)] if run_id == "a" else [(100, 1.0)]

    def read(ends, metric="distance"):
        fetched.clear()
        return run_cache.read_histories(fetch, ends, metric, cache)

    assert read({"a": 1000, "b": None}) == {"a": [(100, 0.5), (200, 0.25)], "b": [(100, 1.0)]}
    assert fetched == ["a", "b"]
    assert read({"a": 1000, "b": None})["a"] == [(100, 0.5), (200, 0.25)]
    assert fetched == ["b"]  # b still runs
    read({"a": 1000, "b": 3000})
    assert fetched == ["b"]
    read({"a": 1000, "b": 3000})
    assert fetched == []
    read({"a": 2000, "b": 3000})  # a was retried and ended again
    assert fetched == ["a"]
    read({"a": 2000, "b": 3000}, metric="high_quality")
    assert fetched == ["a", "b"]
