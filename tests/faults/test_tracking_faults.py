"""Fault injection on the tracking side, with real processes: the MLflow tracking server
goes away for a while during a sweep, and many trials write to the embedded SQLite store
at once."""

from __future__ import annotations

import time

import pytest
from faultkit import (
    check_trial_run,
    children_by_trial,
    load_manifest,
    metric_steps,
    optuna_trials,
    planned_steps,
    progress_steps,
    sweep_args,
    tail,
    trial_folders,
    tune_trials,
    wait_for,
)
from mlflow import MlflowClient

OUTAGE_S = 20.0


@pytest.mark.slow
def test_metrics_logged_while_the_tracking_server_is_down_arrive_once_it_is_back(
    mlflow_server, sweeps, tmp_path
):
    """Fault: the MLflow tracking server (a real `mlflow server`, SQLite store, proxied
    artifacts) is SIGKILLed after a trial's first metrics arrived, stays down for 20 s
    plus its restart time, and comes back on the same port with the same store.
    Must survive: the sweep ends with exit code 0, its trial reaches its planned steps,
    and its one MLflow child run has every evaluation step exactly once, including the
    ones evaluated while the server was down (their metric timestamps say when).

    How: the trial's next log_batch waits inside MLflow's own HTTP retries (urllib3,
    MLFLOW_HTTP_REQUEST_MAX_RETRIES = 7 with back-off factor 2: about 4 minutes) until the
    server answers again, so training pauses at that evaluation and nothing is buffered.
    A longer outage makes the call raise; tracking.with_retries tries it 4 more times, and
    then the trial fails visibly and Tune retries it from its checkpoint, where the steps
    its run already has are skipped."""
    name, steps, eval_every = "outage", 2000, 200
    planned = planned_steps(steps, eval_every)
    sweep_dir = tmp_path / "sweeps" / name
    print(f"\nmlflow server up in {mlflow_server.start():.1f} s at {mlflow_server.uri}")
    started = time.monotonic()
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", "1"),
        "--tracking-uri", mlflow_server.uri, "--max-failures", "2", log="sweep.log",
    )  # fmt: skip

    logged_before: list[int] = []

    def first_metrics() -> bool:
        manifest = load_manifest(tmp_path, name)
        if manifest is None:
            return False
        try:
            runs = [run for runs in children_by_trial(manifest).values() for run in runs]
        except Exception:  # the server is busy: ask again
            return False
        if runs and "distance" in runs[0].data.metrics:
            logged_before[:] = metric_steps(manifest, runs[0].info.run_id)
            return True
        return False

    wait_for("first metrics on the server", first_metrics, proc, 300)
    mlflow_server.stop()
    down_ms = int(time.time() * 1000)
    print(f"server killed after {time.monotonic() - started:.1f} s; logged: {logged_before}")
    assert logged_before[-1] < steps  # the trial still has evaluations to log

    deadline = time.monotonic() + OUTAGE_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the sweep ended while the server was down\n{tail(proc)}"
        time.sleep(0.5)
    seen_down = progress_steps(next(iter(trial_folders(sweep_dir).values())))
    print(f"Tune's progress while the server was down: {seen_down}")
    boot = mlflow_server.start()
    up_ms = int(time.time() * 1000)
    print(f"server back after {(up_ms - down_ms) / 1000:.1f} s (restart took {boot:.1f} s)")

    assert sweeps.wait(proc, 600) == 0, tail(proc)
    print(f"sweep took {time.monotonic() - started:.1f} s")

    manifest = load_manifest(tmp_path, name)
    assert manifest.tracking_uri == mlflow_server.uri
    [trial] = tune_trials(sweep_dir)
    assert trial.status == "TERMINATED"
    assert trial.last_result["step"] == steps
    print(f"trial failures (retries from a checkpoint): {trial.num_failures}")
    grouped = children_by_trial(manifest)
    assert sorted(grouped) == [trial.trial_id]
    check_trial_run(manifest, grouped[trial.trial_id], planned)
    # Every metric of every evaluation arrived once, not only the distance.
    [run] = grouped[trial.trial_id]
    for key in run.data.metrics:
        assert metric_steps(manifest, run.info.run_id, key) == planned, key
    # The outage did hit an evaluation: its metrics were stamped while the server was down.
    client = MlflowClient(manifest.tracking_uri)
    history = client.get_metric_history(run.info.run_id, "distance")
    during = sorted(m.step for m in history if down_ms <= m.timestamp <= up_ms)
    print(f"steps evaluated while the server was down: {during}")
    assert during and during[0] > logged_before[-1], (during, logged_before)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"samples.png", "generator.pt"} <= artifacts


@pytest.mark.slow
def test_eight_concurrent_trials_share_the_sqlite_store_without_lock_errors(sweeps, tmp_path):
    """Fault: 8 trials at once (0.25 CPU each) write metrics batches and artifacts to the
    embedded SQLite store (sqlite:///mlflow.db), while the driver reads and writes it too.
    Must survive: no "database is locked" failure anywhere in the output (a lock that a
    retry got past is printed as a warning and counted, not a failure), the sweep ends
    with exit code 0, and every trial's one child run is FINISHED with every metric at
    every evaluation step exactly once, and its artifacts."""
    name, samples, steps, eval_every = "crowd", 8, 300, 50
    planned = planned_steps(steps, eval_every)
    sweep_dir = tmp_path / "sweeps" / name
    started = time.monotonic()
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", str(samples)),
        "--max-concurrent", str(samples), "--cpus-per-trial", "0.25", log="sweep.log",
    )  # fmt: skip
    assert sweeps.wait(proc, 900) == 0, tail(proc)
    print(f"\nsweep took {time.monotonic() - started:.1f} s")
    # A lock that with_retries got past says so in one warning line ("retrying in");
    # any other mention of it is a failure (a traceback, an errored trial).
    locked = [
        line
        for line in proc.log.read_text(errors="replace").splitlines()
        if "database is locked" in line.lower()
    ]
    retried = [line for line in locked if "retrying in" in line]
    print(f"'database is locked': {len(retried)} retried, {len(locked) - len(retried)} failed")
    assert [line for line in locked if line not in retried] == [], tail(proc, 200)

    manifest = load_manifest(tmp_path, name)
    assert manifest.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    trials = tune_trials(sweep_dir)
    assert [t.status for t in trials] == ["TERMINATED"] * samples
    assert [t.last_result["step"] for t in trials] == [steps] * samples
    grouped = children_by_trial(manifest)
    assert sorted(grouped) == sorted(t.trial_id for t in trials)
    client = MlflowClient(manifest.tracking_uri)
    for trial in trials:
        check_trial_run(manifest, grouped[trial.trial_id], planned)
        [run] = grouped[trial.trial_id]
        for key in run.data.metrics:
            assert metric_steps(manifest, run.info.run_id, key) == planned, (trial, key)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"samples.png", "generator.pt"} <= artifacts, trial
    # They really wrote at the same time: every run started before any of them ended.
    runs = [runs[0] for runs in grouped.values()]
    assert max(r.info.start_time for r in runs) < min(r.info.end_time for r in runs)
    assert [t.state.name for t in optuna_trials(manifest)] == ["COMPLETE"] * samples
