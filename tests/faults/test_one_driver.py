"""One driver per sweep, through the real CLI on replay sweeps (fast trials that are real
Tune trials with real MLflow runs): two `resume`s at once, a driver SIGKILLed right after
its trials started, and a sweep whose start failed, tried again under the same name."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from faultkit import kill_session, load_manifest, tail, wait_for
from mlflow import MlflowClient
from typer.testing import CliRunner

from gansweep.platform import cli
from gansweep.platform import sweep as sweep_module
from gansweep.records import standings
from gansweep.records.driver_lock import LOCK_FILE
from gansweep.records.read import child_runs
from gansweep.records.run_format import TAG_TRIAL_ID

pytestmark = pytest.mark.slow

LANDSCAPE = Path(__file__).parents[2] / "benchmarks" / "landscape"
# A tenth of the recorded time: a trial takes 1-4 s, so a kill finds trials in flight.
SLOW = {"GANSWEEP_REPLAY_SPEED": "0.1"}


def replay_sweep(name: str, samples: int) -> list[str]:
    return [
        "sweep", "--space", str(LANDSCAPE / "ring8_space.yaml"), "--name", name,
        "--trainable", f"{LANDSCAPE / 'replay.py'}:replay", "--num-samples", str(samples),
        "--max-concurrent", "2", "--replicate-top", "0",
    ]  # fmt: skip


def running_runs(cwd: Path, name: str) -> int:
    manifest = load_manifest(cwd, name)
    if manifest is None:
        return 0
    runs = child_runs(manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id)
    return sum(run.info.status == "RUNNING" for run in runs)


def check_every_trial_once(cwd: Path, name: str, samples: int) -> None:
    """The sweep finished with exactly the trials asked for: one run each, none failed."""
    manifest = load_manifest(cwd, name)
    assert manifest is not None and manifest.status == "finished"
    trials = standings(manifest).trials
    assert len(trials) == samples, trials[["trial_id", "status"]]
    assert trials["trial_id"].is_unique
    assert set(trials["status"]) <= {"finished", "stopped_early"}, trials["status"]
    assert not (Path(manifest.sweep_dir) / LOCK_FILE).exists()  # released at the end


def test_of_two_resumes_at_once_one_is_refused_and_nothing_is_duplicated(sweeps, tmp_path):
    name, samples = "two-resumes", 10
    proc = sweeps.start(*replay_sweep(name, samples), log="sweep.log", env=SLOW)
    wait_for("a running trial", lambda: running_runs(tmp_path, name) >= 1, proc, 300)
    os.kill(proc.pid, signal.SIGINT)
    assert sweeps.wait(proc, 120) == 130, tail(proc)

    first = sweeps.start("resume", name, log="resume1.log", env=SLOW)
    second = sweeps.start("resume", name, log="resume2.log", env=SLOW)
    codes = sorted([sweeps.wait(first, 300), sweeps.wait(second, 300)])
    assert codes == [0, 2], (tail(first), tail(second))
    refused = first if first.returncode == 2 else second
    said = refused.log.read_text()
    assert "is being driven by" in said and "gansweep resume" in said, said
    check_every_trial_once(tmp_path, name, samples)


def test_a_driver_killed_right_after_its_trials_started_leaves_no_stub_run(sweeps, tmp_path):
    name, samples = "killed", 8
    proc = sweeps.start(*replay_sweep(name, samples), log="sweep.log", env=SLOW)
    wait_for("running trials", lambda: running_runs(tmp_path, name) >= 2, proc, 300)
    kill_session(proc.pid)  # the driver, its Ray and the trials, at once
    proc.wait()

    status = sweeps.start("status", name, log="status.log")
    assert sweeps.wait(status, 120) == 0, tail(status)
    assert "died" in status.log.read_text()  # the lock's pid is gone: not "running"

    # No --force: a driver on this host whose pid is gone is dead for sure.
    resumed = sweeps.start("resume", name, log="resume.log", env=SLOW)
    assert sweeps.wait(resumed, 300) == 0, tail(resumed)
    check_every_trial_once(tmp_path, name, samples)
    manifest = load_manifest(tmp_path, name)
    client = MlflowClient(manifest.tracking_uri)
    # Stubs of trials lost with the driver are deleted, not left to count as failed.
    listed = client.search_runs([manifest.experiment_id], run_view_type=3)  # ViewType.ALL
    deleted = [r for r in listed if r.info.lifecycle_stage == "deleted"]
    assert len(listed) - len(deleted) == samples + 1  # the trials and the parent run
    counted = set(standings(manifest).trials["trial_id"])
    for run in deleted:
        assert run.info.status == "KILLED"
        assert run.data.tags[TAG_TRIAL_ID] not in counted


def test_a_deleted_experiment_of_the_name_is_refused_before_anything_starts(sweeps, tmp_path):
    """MLflow keeps the name of a deleted experiment and refuses runs in it (a user who
    deleted an old sweep's experiment in the UI): exit 2, nothing created."""
    name = "deleted"
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client.delete_experiment(client.create_experiment(name))
    refused = sweeps.start(*replay_sweep(name, 4), log="refused.log")
    assert sweeps.wait(refused, 120) == 2, tail(refused)
    assert "was deleted" in refused.log.read_text() and "mlflow experiments restore" in tail(
        refused
    )
    assert not (tmp_path / "sweeps" / name).exists()


def test_a_failed_start_leaves_the_name_free_for_a_retry(sweeps, tmp_path, monkeypatch):
    """Ray fails to start after the sweep's records were made (the fault is injected: a
    real one is a cluster that dies between the address check and ray.init). The parent
    run and the files go; the retry under the same name runs to the end."""
    name, samples = "retried", 4

    def ray_fails(address):
        raise RuntimeError("Ray could not start")

    monkeypatch.setattr(sweep_module, "init_ray", ray_fails)
    result = CliRunner().invoke(cli.app, [*replay_sweep(name, samples), "--verbose"])
    assert result.exit_code == 1 and "Ray could not start" in str(result.exception)
    folder = tmp_path / "sweeps" / name
    assert {p.name for p in folder.iterdir()} <= {"driver.log"}  # (--verbose: no log)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(name)
    assert client.search_runs([experiment.experiment_id]) == []  # the parent run went too

    retried = sweeps.start(*replay_sweep(name, samples), log="retried.log")
    assert sweeps.wait(retried, 300) == 0, tail(retried)
    check_every_trial_once(tmp_path, name, samples)
