"""The cluster's record stack for real: PostgreSQL and an `mlflow server` on it, on
loopback (benchmarks/local_stack.py), with the password in PGPASSWORD as
platform/deploy/mlflow-compose.yaml gives it, never in a URI.

A sweep of 8 trials writing at once into that server is SIGKILLed (the driver and its
local Ray) right after its trials start, then resumed to the end: every trial must be
recorded exactly once in MLflow, Optuna and the leaderboard. Plus local_stack's own
checks: a PostgreSQL that starts, refuses a client without the password, keeps its data
over a restart and leaves no process behind.

Real processes only. Skipped where PostgreSQL's server programs are missing, except
where GANSWEEP_REQUIRE_POSTGRES is set (.ci/run sets it after installing them).
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from local_stack import (
    MISSING_POSTGRES,
    MlflowServer,
    Postgres,
    postgres_bin_dir,
    processes_in,
    record_stack,
)
from mlflow import MlflowClient

from gansweep.records import run_format
from gansweep.records.manifest import Manifest
from gansweep.records.study_store import open_study_storage

if postgres_bin_dir() is None:
    if os.environ.get("GANSWEEP_REQUIRE_POSTGRES"):
        raise RuntimeError(f"GANSWEEP_REQUIRE_POSTGRES is set but {MISSING_POSTGRES}")
    pytest.skip(MISSING_POSTGRES, allow_module_level=True)

GANSWEEP = [sys.executable, "-m", "gansweep.platform.cli"]
TINY = ["--set", "steps=200", "--set", "eval_every=100", "--set", "eval_samples=500"]
PLANNED_STEPS = [100, 200]
TRIALS = 8
SWEEP_TIMEOUT = 1200.0  # seconds, each of the sweep and the resume
# Every trial's run has these at every evaluation (the mixture data's metrics and the loop's).
TRIAL_METRICS = {"distance", "modes_captured", "high_quality", "loss_d", "loss_g", "step"}


# ------------------------------------------------------------------ local_stack itself


def test_postgres_starts_asks_for_its_password_survives_a_restart_and_leaves_nothing():
    password = secrets.token_urlsafe(16)
    with Postgres(password=password) as database:
        assert database.uri == f"postgresql://gansweep@127.0.0.1:{database.port}/gansweep"
        assert database.env == {"PGPASSWORD": password}
        with pytest.raises(psycopg2.OperationalError, match="no password supplied"):
            psycopg2.connect(database.uri)
        with psycopg2.connect(database.uri, password=password) as connection:
            connection.cursor().execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
        connection.close()
        first_pid, folder = database.pid, database.folder
        assert first_pid is not None and folder is not None
        # The postmaster and its backends (checkpointer, writers...), all found by stop().
        assert first_pid in database.processes() and len(database.processes()) > 1
        if os.geteuid() == 0:  # initdb refuses root: the server runs as another user
            assert os.stat(f"/proc/{first_pid}").st_uid != 0

        database.restart()
        assert database.pid != first_pid
        assert first_pid not in database.processes()
        with psycopg2.connect(database.uri, password=password) as connection:
            cursor = connection.cursor()
            cursor.execute("SELECT x FROM kept")
            assert cursor.fetchall() == [(7,)]
        connection.close()
    assert processes_in(folder) == []
    assert not folder.exists()


# ------------------------------------------------------- the stack under a real sweep


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[tuple[Postgres, MlflowServer]]:
    """PostgreSQL with a password and an MLflow server on it with two workers (writes
    arrive at both, as at a cluster's server with several)."""
    folder = tmp_path_factory.mktemp("record-stack")
    with record_stack(folder, workers=2, password=secrets.token_urlsafe(16)) as started:
        yield started


def driver_env() -> dict[str, str]:
    """This environment without a tracking URI, credentials or a Ray cluster to join."""
    dropped = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("PG")}
    return {**env, "RAY_ADDRESS": "local", "RAY_USAGE_STATS_ENABLED": "0"}


def start_gansweep(*args: str, cwd: Path, log: Path) -> subprocess.Popen:
    """`gansweep ...` in a session of its own: its local Ray cluster shares it, so the
    driver and everything of its Ray can be killed at once."""
    with log.open("w") as out:
        return subprocess.Popen(
            [*GANSWEEP, *args, "--verbose"], cwd=cwd, env=driver_env(), stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


def session_members(sid: int) -> dict[int, int]:
    """Live processes of session `sid` (zombies excluded): their process group by pid."""
    members = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid pgrp session ...: comm may hold spaces.
            state, _, group, session = stat.read_text().rsplit(")", 1)[1].split()[:4]
        except (OSError, ValueError):
            continue
        if int(session) == sid and state != "Z":
            members[int(stat.parent.name)] = int(group)
    return members


def kill_the_driver(proc: subprocess.Popen) -> None:
    """SIGKILL the driver's process group (the driver and its local Ray), then anything
    else of its session, until nothing of it is left: a power cut, no clean-up runs."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:  # ended already, with its group
        pass
    proc.wait()
    outside = [pid for pid, group in session_members(proc.pid).items() if group != proc.pid]
    if outside:  # Ray put them in groups of their own: SIGKILLed below all the same
        print(f"processes {outside} of the driver's session were outside its group")
    deadline = time.monotonic() + 30
    while left := session_members(proc.pid):
        assert time.monotonic() < deadline, f"processes {left} survived SIGKILL"
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.2)


def tail(log: Path, lines: int = 80) -> str:
    return "\n".join([f"--- the end of {log}:", *log.read_text().splitlines()[-lines:]])


def describe(runs: list) -> str:
    """Every run's name, trial id, MLflow status and gansweep status, one a line."""
    return "\n".join(
        f"  {r.info.run_name} {r.info.run_id} trial_id={r.data.tags.get(run_format.TAG_TRIAL_ID)}"
        f" role={r.data.tags.get(run_format.TAG_ROLE)} {r.info.status}"
        f" gansweep.status={r.data.tags.get(run_format.TAG_STATUS)}"
        for r in runs
    )


def child_runs(client: MlflowClient, manifest: Manifest) -> list:
    return client.search_runs(
        [manifest.experiment_id],
        filter_string=f"tags.`{run_format.PARENT_TAG}` = '{manifest.parent_run_id}'",
        max_results=1000,
    )


@pytest.mark.slow
def test_a_killed_sweep_of_8_concurrent_writers_resumes_into_postgres(stack, tmp_path, request):
    """8 trials at once (a quarter of a CPU each) write into the PostgreSQL-backed server;
    the driver dies with its Ray right after the first trial's run appears; `gansweep
    resume` ends the sweep. Every trial is recorded once, finished, with its metrics."""
    _, server = stack
    name, storage = "pg", tmp_path / "sweeps"
    args = [
        "sweep", "--name", name, "--tracking-uri", server.url, "--storage", str(storage),
        "--space", "quick", "--num-samples", str(TRIALS), "--max-concurrent", str(TRIALS),
        "--cpus-per-trial", "0.25", "--scheduler", "fifo", "--seed", "11",
        "--replicate-top", "0", *TINY,
    ]  # fmt: skip
    started = time.monotonic()
    sweep_log = tmp_path / "sweep.log"
    proc = start_gansweep(*args, cwd=tmp_path, log=sweep_log)
    request.addfinalizer(lambda: kill_the_driver(proc))  # whatever happens below
    client = MlflowClient(server.url)

    # Poll the server, as anyone watching the sweep would, for its first running trial.
    running: list = []
    while not running:
        assert proc.poll() is None, f"the sweep ended ({proc.returncode})\n{tail(sweep_log)}"
        assert time.monotonic() - started < SWEEP_TIMEOUT, f"no trial ran\n{tail(sweep_log)}"
        time.sleep(0.5)
        if (storage / name / "gansweep.json").is_file():
            runs = child_runs(client, Manifest.load(storage, name))
            running = [r for r in runs if r.info.status == "RUNNING"]
    kill_the_driver(proc)
    killed_at = time.monotonic() - started
    manifest = Manifest.load(storage, name)
    print(f"\nkilled the driver {killed_at:.1f} s after the start; its runs then:")
    print(describe(child_runs(client, manifest)))

    resume_log = tmp_path / "resume.log"
    resume = start_gansweep("resume", name, "--storage", str(storage), cwd=tmp_path, log=resume_log)
    request.addfinalizer(lambda: kill_the_driver(resume))
    try:
        code = resume.wait(SWEEP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail(f"resume still running after {SWEEP_TIMEOUT:.0f} s\n{tail(resume_log)}")
    assert code == 0, tail(resume_log)
    print(f"resume took {time.monotonic() - started - killed_at:.1f} s more")

    manifest = Manifest.load(storage, name)
    assert manifest.tracking_uri == server.url and manifest.status == "finished"
    parent = client.get_run(manifest.parent_run_id)
    assert parent.info.status == "FINISHED"

    # MLflow: 8 trial runs under the parent, one per trial id, each finished with every
    # evaluation logged once.
    runs = child_runs(client, manifest)
    print("after the resume:\n" + describe(runs))
    trial_ids = [r.data.tags.get(run_format.TAG_TRIAL_ID) for r in runs]
    assert len(runs) == TRIALS, describe(runs)
    assert len(set(trial_ids)) == TRIALS, describe(runs)
    assert {r.data.tags[run_format.TAG_ROLE] for r in runs} == {run_format.ROLE_TRIAL}
    assert [(r.info.status, r.data.tags.get(run_format.TAG_STATUS)) for r in runs] == [
        ("FINISHED", "finished")
    ] * TRIALS, describe(runs)
    for run in runs:
        assert TRIAL_METRICS <= run.data.metrics.keys(), run.info.run_name
        history = client.get_metric_history(run.info.run_id, "distance")
        assert sorted(m.step for m in history) == PLANNED_STEPS, run.info.run_name

    # Optuna: 8 trials, none left RUNNING by the killed driver.
    import optuna

    study = optuna.load_study(study_name=manifest.study_name, storage=open_study_storage(manifest))
    states = [t.state.name for t in study.get_trials(deepcopy=False)]
    assert len(states) == TRIALS and "RUNNING" not in states, states

    # The standings: one row per trial.
    with (Path(manifest.sweep_dir) / "leaderboard.csv").open() as board:
        rows = list(csv.DictReader(board))
    assert len(rows) == TRIALS, json.dumps(rows, indent=1)[:3000]
    print(f"the test took {time.monotonic() - started:.1f} s")


@pytest.mark.slow
def test_the_server_keeps_its_runs_over_a_database_and_a_server_restart(stack):
    """PostgreSQL restarts under the running server (the server reconnects), then the
    server itself restarts on the same port: the runs written before are all there."""
    database, server = stack
    client = MlflowClient(server.url)
    experiment = client.create_experiment(f"restarts-{secrets.token_hex(4)}")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "before", 1.0, step=1)

    database.restart()
    client.log_metric(run.info.run_id, "after_database", 2.0, step=2)
    url = server.url
    server.restart()
    assert server.url == url
    client.log_metric(run.info.run_id, "after_server", 3.0, step=3)
    client.set_terminated(run.info.run_id)

    kept = MlflowClient(url).get_run(run.info.run_id)
    assert kept.data.metrics == {"before": 1.0, "after_database": 2.0, "after_server": 3.0}
    assert kept.info.status == "FINISHED"
