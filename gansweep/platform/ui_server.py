"""`gansweep ui`: the MLflow UI as a child process this one supervises, so that Ctrl-C
or SIGTERM stops the server and every worker it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import typer


def serve(command: list[str], grace_s: float = 5.0) -> int:
    """Run a server until it exits, or until this process gets SIGTERM or Ctrl-C: then stop
    the server's whole process group. MLflow's server starts its own workers (uvicorn,
    gunicorn); stopping only the child it started leaves them holding the port."""
    # Its own session, hence its own process group: killpg reaches the workers, and a
    # Ctrl-C in the terminal reaches only us, so the stop happens once, here.
    process = subprocess.Popen(command, start_new_session=True)

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


def mlflow_ui(uri: str, host: str, port: int) -> list[str]:
    """The command that serves the MLflow UI of the store at `uri`."""
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    return [*command, "--host", host, "--port", str(port)]


def serve_ui(tracking_uri: str | None, host: str, port: int) -> int:
    """Serve the MLflow UI of the store the sweeps use until stopped; its exit code. A
    store that is a server already is not served twice. Raises TrackingError."""
    from gansweep.records.store import resolve_tracking_uri  # deferred: MLflow

    uri = resolve_tracking_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        typer.echo(f"that store is already served: open {uri}")
        return 0
    typer.echo(f"MLflow UI for {uri} at http://{host}:{port} (Ctrl-C stops it)")
    return serve(mlflow_ui(uri, host, port))
