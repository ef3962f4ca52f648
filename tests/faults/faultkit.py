"""Helpers of the fault-injection tests: real processes, killed for real, and readers of
what a sweep left behind (its Tune experiment, Optuna study and MLflow runs).

conftest.py registers this file as the module ``faultkit`` (pytest runs in importlib mode,
which puts no test folder on sys.path) and builds its fixtures from it.

Every process a test starts runs in a session of its own (start_new_session): a sweep's
whole local Ray cluster (GCS, raylet, dashboard, workers) or an MLflow server with its
uvicorn and job workers shares that session id, so a test can kill all of it at once,
as a reboot does, and the fixtures kill whatever is left at the end, passed or failed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from local_stack import kill_session, session_processes
from mlflow import MlflowClient

from gansweep.records import read, run_format
from gansweep.records.manifest import Manifest
from gansweep.records.study_store import open_study_storage

GANSWEEP = [sys.executable, "-m", "gansweep.platform.cli"]
MLFLOW = str(Path(sys.executable).with_name("mlflow"))
# Trials of a Ray Tune function trainable run in an actor with one of these process titles.
TRIAL_WORKER_TITLES = ("ray::ImplicitFunc", "ray::_Inner")


# ----------------------------------------------------------------- processes


def trial_workers(proc: subprocess.Popen) -> list[tuple[int, str]]:
    """The Ray worker processes of `proc`'s session that run a trial right now."""
    return [(pid, a) for pid, a in session_processes(proc.pid) if a.startswith(TRIAL_WORKER_TITLES)]


def tail(proc: subprocess.Popen, lines: int = 60) -> str:
    text = proc.log.read_text(errors="replace").splitlines()
    return "\n".join([f"--- last {lines} lines of {proc.log.name}:", *text[-lines:]])


def wait_for(what: str, check: Callable[[], bool], proc: subprocess.Popen, timeout: float) -> None:
    """Poll `check` until it holds; fail clearly on timeout or if `proc` exits first."""
    deadline = time.monotonic() + timeout
    while not check():
        if proc.poll() is not None:
            pytest.fail(f"exited ({proc.returncode}) before {what}\n{tail(proc)}")
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} after {timeout:.0f} s\n{tail(proc)}")
        time.sleep(0.5)


class Sweeps:
    """Starts `gansweep` commands in `cwd`, each in a new session, and kills every
    process of those sessions on close()."""

    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.started: list[subprocess.Popen] = []
        # A new local Ray cluster per command, never an unrelated one started on this
        # machine with `ray start` (which ray.init() would otherwise join).
        self.env = {**os.environ, "RAY_ADDRESS": "local", "RAY_USAGE_STATS_ENABLED": "0"}

    def start(self, *args: str, log: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        if args[0] in ("sweep", "resume"):  # Ray's, Tune's and the trials' lines into `log`
            args = (*args, "--verbose")  # too (else driver.log): the checks read them there
        with (self.cwd / log).open("w") as out:
            proc = subprocess.Popen(
                [*GANSWEEP, *args], cwd=self.cwd, env={**self.env, **(env or {})}, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        proc.log = self.cwd / log
        self.started.append(proc)
        return proc

    def wait(self, proc: subprocess.Popen, timeout: float) -> int:
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{proc.args[3:]} still running after {timeout:.0f} s\n{tail(proc)}")

    def close(self) -> None:
        for proc in self.started:
            kill_session(proc.pid)
            proc.wait()


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MlflowServer:
    """A real `mlflow server` on a loopback port, with a SQLite store and proxied
    artifacts in `root`; stop() kills its whole session (uvicorn and its workers), a
    later start() serves the same store on the same port again."""

    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.env = {
            **os.environ,
            # The GenAI job runner (huey consumers) is not needed to track runs and
            # doubles the server's start-up time on a busy machine.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }

    def start(self, timeout: float = 180.0) -> float:
        """Start the server and wait until /health answers; returns the seconds it took."""
        import requests

        assert self.proc is None, "already running"
        self.starts += 1
        log = self.root / f"mlflow-server-{self.starts}.log"
        started = time.monotonic()
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [
                    MLFLOW, "server", "--host", "127.0.0.1", "--port", str(self.port),
                    "--workers", "1",
                    "--backend-store-uri", f"sqlite:///{self.root / 's.db'}",
                    "--artifacts-destination", str(self.root / "a"), "--serve-artifacts",
                ],
                cwd=self.root, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        self.proc.log = log

        def healthy() -> bool:
            try:
                return requests.get(f"{self.uri}/health", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(f"answer from {self.uri}/health", healthy, self.proc, timeout)
        return time.monotonic() - started

    def stop(self) -> None:
        """SIGKILL the server and everything it started: a crash, not a shutdown."""
        if self.proc is not None:
            kill_session(self.proc.pid)
            self.proc.wait()
            self.proc = None


# ------------------------------------------------------------ what a sweep left


def planned_steps(steps: int, eval_every: int) -> list[int]:
    """The steps at which a trial of `steps` steps evaluates (and checkpoints)."""
    return [eval_every * k for k in range(1, steps // eval_every + 1)]


def sweep_args(name: str, steps: int, eval_every: int, *extra: str) -> list[str]:
    """A FIFO sweep without replication unless `extra` asks for it."""
    replication = [] if "--replicate-top" in extra else ["--replicate-top", "0"]
    return [
        "sweep", "--name", name, "--scheduler", "fifo",
        "--set", f"steps={steps}", "--set", f"eval_every={eval_every}", *replication, *extra,
    ]  # fmt: skip


def trial_folders(sweep_dir: Path) -> dict[str, Path]:
    """Tune trial folders (``<combination>-<trial id>``) by trial id."""
    if not sweep_dir.is_dir():
        return {}
    return {
        p.name.rsplit("-", 1)[1]: p
        for p in sweep_dir.iterdir()
        if p.is_dir() and (p / "params.json").exists()
    }


def latest_checkpoints(sweep_dir: Path) -> dict[str, int]:
    """The index of each trial's newest persisted checkpoint (checkpoint_000002: 2), by
    trial id, for trials that have one."""
    latest = {}
    for tid, folder in trial_folders(sweep_dir).items():
        indices = [int(p.name.split("_")[1]) for p in folder.glob("checkpoint_*")]
        if indices:
            latest[tid] = max(indices)
    return latest


def load_manifest(cwd: Path, name: str) -> Manifest | None:
    try:
        return Manifest.load(cwd / "sweeps", name)
    except LookupError:
        return None


def children_by_trial(manifest: Manifest) -> dict[str, list]:
    """The sweep's MLflow child runs grouped by their gansweep.trial_id tag."""
    runs = read.child_runs(manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id)
    grouped: dict[str, list] = {}
    for run in runs:
        grouped.setdefault(run.data.tags[run_format.TAG_TRIAL_ID], []).append(run)
    return grouped


def finished_trials(manifest: Manifest | None) -> set[str]:
    """Trial ids whose MLflow child run the trial itself closed as finished."""
    if manifest is None:
        return set()
    try:
        grouped = children_by_trial(manifest)
    except Exception:  # the driver holds the SQLite write lock right now: ask again later
        return set()
    return {
        tid
        for tid, runs in grouped.items()
        if any(r.data.tags.get(run_format.TAG_STATUS) == "finished" for r in runs)
    }


def metric_steps(manifest: Manifest, run_id: str, key: str = "distance") -> list[int]:
    """The steps of a metric's history, sorted; a step logged twice appears twice."""
    client = MlflowClient(manifest.tracking_uri)
    return sorted(m.step for m in client.get_metric_history(run_id, key))


def distance_steps(manifest: Manifest, run_id: str) -> list[int]:
    return metric_steps(manifest, run_id, "distance")


def tune_trials(sweep_dir: Path) -> list:
    from ray.tune import ExperimentAnalysis

    return ExperimentAnalysis(str(sweep_dir)).trials


def optuna_trials(manifest: Manifest) -> list:
    import optuna

    study = optuna.load_study(study_name=manifest.study_name, storage=open_study_storage(manifest))
    return study.get_trials(deepcopy=False)


def progress_steps(folder: Path) -> list[int]:
    """The steps Tune recorded for a trial, in the order the driver received them."""
    if not (folder / "result.json").is_file():
        return []
    with (folder / "result.json").open() as f:  # Tune's JSON log: one line per result
        return [int(json.loads(line)["step"]) for line in f]


def check_trial_run(manifest: Manifest, runs: list, planned: list[int]) -> None:
    """Exactly one child run, closed as finished, with every evaluation step once."""
    assert len(runs) == 1, [r.info.run_id for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.tags[run_format.TAG_STATUS] == "finished"
    assert distance_steps(manifest, run.info.run_id) == planned
