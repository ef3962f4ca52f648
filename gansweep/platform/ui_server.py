"""`gansweep ui`: the MLflow UI as a child process this one supervises, so that Ctrl-C
or SIGTERM stops the server and every worker it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import typer

from gansweep.records.store import redact, resolve_tracking_uri


def serve(command: list[str], grace_s: float = 5.0, env: dict[str, str] | None = None) -> int:
    """Run a server (in environment `env`, None: ours) until it exits, or until this
    process gets SIGTERM or Ctrl-C: then stop the server's whole process group. MLflow's
    server starts its own workers (uvicorn, gunicorn); stopping only the child it started
    leaves them holding the port."""
    # Its own session, hence its own process group: killpg reaches the workers, and a
    # Ctrl-C in the terminal reaches only us, so the stop happens once, here.
    process = subprocess.Popen(command, start_new_session=True, env=env)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # one way out for both signals

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        _stop_group(process, grace_s)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the group, then SIGKILL to whatever is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the group is gone already
            return
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; its workers may still be shutting down in the group.
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


# `mlflow ui` (mlflow server) reads --backend-store-uri from this variable when the option
# is not given (its click option's envvar); its workers get the URI the same way.
BACKEND_STORE_URI_VAR = "MLFLOW_BACKEND_STORE_URI"


def mlflow_ui(uri: str, host: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command that serves the MLflow UI of the store at `uri`, and its environment.

    The URI travels in the environment, not in argv: any user of the machine reads a
    command line (`ps`, /proc/PID/cmdline), only its owner the environment. A URI with a
    secret is refused before this (resolve_tracking_uri); this keeps the store's name,
    user and database off the process list as well."""
    command = [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port)]
    return command, {**os.environ, BACKEND_STORE_URI_VAR: uri}


def serve_ui(tracking_uri: str | None, host: str, port: int) -> int:
    """Serve the MLflow UI of the store the sweeps use until stopped; its exit code. A
    store that is a server already is not served twice. Raises TrackingError."""
    uri = resolve_tracking_uri(tracking_uri)  # refuses a URI with a secret
    if uri.startswith(("http://", "https://")):
        typer.echo(f"that store is already served: open {redact(uri)}")
        return 0
    typer.echo(f"MLflow UI for {redact(uri)} at http://{host}:{port} (Ctrl-C stops it)")
    command, env = mlflow_ui(uri, host, port)
    return serve(command, env=env)
