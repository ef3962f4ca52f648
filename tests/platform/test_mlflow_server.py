"""Sweeps against a real `mlflow server` process on loopback, as on a cluster: the server
keeps runs in its own SQLite file and artifacts in its own folder (proxied with
--serve-artifacts), and the Ray storage is a separate folder standing in for the shared
file system. Then the same server with basic auth: no credentials fail fast, credentials
from MLFLOW_TRACKING_USERNAME/PASSWORD work, and the password is written down nowhere."""

import base64
import inspect
import json
import os
import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mlflow
import mlflow.server
import pytest
from local_stack import MlflowServer, StackError
from mlflow import MlflowClient

from gansweep.platform import sweep as sweep_module

pytestmark = pytest.mark.slow

GANSWEEP = [sys.executable, "-m", "gansweep.platform.cli"]
TINY = ["--set", "steps=200", "--set", "eval_every=100", "--set", "eval_samples=500"]
CREDENTIAL_VARIABLES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
SWEEP_TIMEOUT = 1200.0
# The sweep attaches the HTML report to its parent run once finalize writes one.
REPORT_IN_SWEEP = "write_report" in inspect.getsource(sweep_module)
PARENT_ARTIFACTS = {"space.yaml", "leaderboard.csv", "best.yaml", "gansweep.json"} | (
    {"report.html"} if REPORT_IN_SWEEP else set()
)
LOCAL_STORE_NAMES = ("mlflow.db", "mlartifacts", "mlruns")


@dataclass
class Server:
    url: str
    artifacts: Path  # the server's --artifacts-destination


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without MLflow credentials or a Ray address, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in CREDENTIAL_VARIABLES}
    env.pop("MLFLOW_TRACKING_URI", None)
    return {**env, "RAY_ADDRESS": "", **extra}  # never join a cluster someone left running


def start_server(request, root: Path, *extra: str, env: dict[str, str] | None = None) -> Server:
    """A real `mlflow server` on 127.0.0.1 keeping runs in SQLite, stopped by a finalizer
    whatever happens."""
    server = MlflowServer(
        f"sqlite:///{root / 'server.db'}", root, extra_args=extra, env=env or clean_env()
    )
    request.addfinalizer(server.stop)
    try:
        server.start()
    except StackError as error:
        pytest.fail(str(error))
    return Server(server.url, server.artifacts)


def gansweep(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*GANSWEEP, *args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=SWEEP_TIMEOUT,
    )  # fmt: skip


def sweep_args(name: str, server: Server, storage: Path, trials: int) -> list[str]:
    return [
        "sweep", "--name", name, "--tracking-uri", server.url, "--storage", str(storage),
        "--num-samples", str(trials), "--max-concurrent", "2", "--scheduler", "fifo",
        "--seed", "3", "--replicate-top", "0", *TINY,
    ]  # fmt: skip


def assert_nothing_tracked_locally(*folders: Path) -> None:
    for folder in folders:
        for name in LOCAL_STORE_NAMES:
            assert not list(folder.rglob(name)), f"a local MLflow store {name} in {folder}"


def all_runs(client: MlflowClient) -> list:
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, max_results=1000)


# ------------------------------------------------------------- A: a plain tracking server


@pytest.fixture(scope="module")
def server(request, tmp_path_factory) -> Server:
    return start_server(request, tmp_path_factory.mktemp("server"))


def test_a_sweep_sends_everything_to_the_tracking_server(server, tmp_path_factory):
    cwd, storage = tmp_path_factory.mktemp("driver"), tmp_path_factory.mktemp("shared") / "sweeps"
    proc = gansweep(*sweep_args("served", server, storage, 2), cwd=cwd, env=clean_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    # The sweep folder (Tune experiment, study, manifest) is on the "shared" storage ...
    sweep_dir = storage / "served"
    manifest = json.loads((sweep_dir / "gansweep.json").read_text())
    assert manifest["tracking_uri"] == server.url and manifest["status"] == "finished"
    assert (sweep_dir / "optuna.log").is_file() and (sweep_dir / "best.yaml").is_file()
    # ... and nothing went to a local MLflow store, beside the driver or the trials.
    assert_nothing_tracked_locally(cwd, storage)

    client = MlflowClient(server.url)
    runs = client.search_runs([manifest["experiment_id"]])
    parents = [r for r in runs if r.data.tags.get("gansweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("gansweep.role") == "trial"]
    assert [p.info.run_id for p in parents] == [manifest["parent_run_id"]]
    assert len(children) == 2 and parents[0].info.status == "FINISHED"

    from gansweep.trainables.engine import load_generator

    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == manifest["parent_run_id"]
        assert child.info.status == "FINISHED"
        assert child.info.artifact_uri.startswith("mlflow-artifacts:")  # proxied by the server
        history = client.get_metric_history(child.info.run_id, "distance")
        assert sorted(m.step for m in history) == [100, 200]
        assert {"modes_captured", "high_quality", "loss_d"} <= child.data.metrics.keys()
        assert {a.path for a in client.list_artifacts(child.info.run_id)} >= {
            "samples.png", "generator.pt",
        }  # fmt: skip
        local = Path(mlflow.artifacts.download_artifacts(
            run_id=child.info.run_id, dst_path=str(cwd / "dl" / child.info.run_id),
            tracking_uri=server.url,
        ))  # fmt: skip
        assert (local / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        import torch

        generator = load_generator(local / "generator.pt")
        assert generator(torch.randn(5, int(child.data.params["z_dim"]))).shape == (5, 2)

    parent_artifacts = {a.path for a in client.list_artifacts(manifest["parent_run_id"])}
    assert parent_artifacts >= PARENT_ARTIFACTS
    # The files really are in the server's artifact folder, not somewhere the driver chose.
    for name, count in (("samples.png", 2), ("generator.pt", 2), ("leaderboard.csv", 1)):
        assert len(list(server.artifacts.rglob(name))) == count, name


# ------------------------------------------------------------------ B: basic auth


@dataclass
class AuthServer(Server):
    user: str
    password: str
    admin_password: str


@pytest.fixture(scope="module")
def auth_server(request, tmp_path_factory) -> AuthServer:
    """The server behind `--app-name basic-auth`, with a user for the sweeps."""
    root = tmp_path_factory.mktemp("auth-server")
    admin_password = f"admin-{secrets.token_urlsafe(16)}"
    (root / "basic_auth.ini").write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {admin_password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = clean_env(
        MLFLOW_AUTH_CONFIG_PATH=str(root / "basic_auth.ini"),
        MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),  # basic auth's CSRF key
    )
    for name in ("MLFLOW_AUTH_ADMIN_USERNAME", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        env.pop(name, None)
    server = start_server(request, root, "--app-name", "basic-auth", env=env)

    user, password = "sweeper", f"sweep-{secrets.token_urlsafe(16)}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        patch.setenv("MLFLOW_TRACKING_PASSWORD", admin_password)
        mlflow.server.get_app_client("basic-auth", tracking_uri=server.url).create_user(
            user, password
        )
    return AuthServer(server.url, server.artifacts, user, password, admin_password)


@pytest.mark.parametrize(
    ("credentials", "message"),
    [
        ({}, "needs credentials (authentication required): set MLFLOW_TRACKING_USERNAME and "
             "MLFLOW_TRACKING_PASSWORD"),
        ({"MLFLOW_TRACKING_USERNAME": "sweeper", "MLFLOW_TRACKING_PASSWORD": "not-the-password"},
         "rejected the credentials of user 'sweeper'"),
    ],
)  # fmt: skip
def test_without_valid_credentials_a_sweep_fails_fast(auth_server, tmp_path, credentials, message):
    storage = tmp_path / "shared" / "sweeps"
    proc = gansweep(
        *sweep_args("refused", auth_server, storage, 1), cwd=tmp_path, env=clean_env(**credentials)
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output[-3000:]
    assert f"error: MLflow tracking server {auth_server.url} {message}" in proc.stderr
    assert "Traceback" not in output and "not-the-password" not in output
    # Refused by the checks before anything starts: no sweep announced, no Ray, no folder.
    assert "sweep 'refused'" not in proc.stdout
    assert not storage.exists()
    assert_nothing_tracked_locally(tmp_path)


def test_with_credentials_a_sweep_runs_and_the_password_is_written_nowhere(
    auth_server, tmp_path_factory
):
    cwd, storage = tmp_path_factory.mktemp("driver"), tmp_path_factory.mktemp("shared") / "sweeps"
    credentials = {
        "MLFLOW_TRACKING_USERNAME": auth_server.user,
        "MLFLOW_TRACKING_PASSWORD": auth_server.password,
    }
    proc = gansweep(
        *sweep_args("guarded", auth_server, storage, 1), cwd=cwd, env=clean_env(**credentials)
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sweep_dir = storage / "guarded"
    manifest = json.loads((sweep_dir / "gansweep.json").read_text())
    assert manifest["status"] == "finished"

    # Reading the sweep back needs the credentials too: without them, a clear refusal.
    export = gansweep("export", "guarded", "--storage", str(storage), cwd=cwd, env=clean_env())
    assert export.returncode == 2 and "needs credentials" in export.stderr
    assert "Traceback" not in export.stderr

    with pytest.MonkeyPatch.context() as patch:
        for name, value in credentials.items():
            patch.setenv(name, value)
        client = MlflowClient(auth_server.url)
        runs = all_runs(client)
        mine = [r for r in runs if r.info.experiment_id == manifest["experiment_id"]]
        roles = sorted(r.data.tags.get("gansweep.role") for r in mine)
        assert roles == ["sweep", "trial"]
        assert all(r.info.status == "FINISHED" for r in mine)
        downloads = cwd / "downloaded"
        for run in runs:
            mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, dst_path=str(downloads / run.info.run_id),
                tracking_uri=auth_server.url,
            )  # fmt: skip
    assert {p.name for p in downloads.rglob("*")} >= {"samples.png", "generator.pt"}

    secrets_ = {
        auth_server.password,
        auth_server.admin_password,
        base64.b64encode(f"{auth_server.user}:{auth_server.password}".encode()).decode(),
    }
    for secret in secrets_:
        for run in runs:
            written = {**run.data.params, **run.data.tags}
            assert not [k for k, v in written.items() if secret in v], run.info.run_name
        assert secret not in (sweep_dir / "gansweep.json").read_text()
        assert secret not in proc.stdout + proc.stderr
        for folder in (downloads, auth_server.artifacts, storage, cwd):
            leaked = [
                path for path in folder.rglob("*")
                if path.is_file() and secret.encode() in path.read_bytes()
            ]  # fmt: skip
            assert leaked == [], f"the password is in {leaked}"
