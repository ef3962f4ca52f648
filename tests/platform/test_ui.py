"""`gansweep ui` stops the MLflow server it started, workers included, when it is told
to: after SIGTERM (a service manager, `kill`) or Ctrl-C the port is free again. The
server serves the store it was given, whose URI is on none of its command lines."""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow  # the MLflow server takes 10-60 s to start on shared cores

SERVER_START_DEADLINE = 240.0
STOP_DEADLINE = 10.0  # the bound: the port is free within 10 s of the signal


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def bindable(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def descendants(pid: int) -> set[int]:
    """Every process below `pid` (from /proc: no extra dependency)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def cmdline(pid: int) -> str:
    """What `ps` shows every user of the machine for `pid`."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_ui_stops_its_server_group(tmp_path, sig):
    port = free_port()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    command = [sys.executable, "-m", "gansweep.platform.cli", "ui", "--tracking-uri", uri]
    ui = subprocess.Popen(
        [*command, "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # so the test can clean up whatever happens
    )
    server: set[int] = set()
    try:
        deadline = time.monotonic() + SERVER_START_DEADLINE
        while not listening(port):
            assert ui.poll() is None, f"gansweep ui exited early with {ui.returncode}"
            assert time.monotonic() < deadline, "the MLflow server never listened"
            time.sleep(0.5)
        server = descendants(ui.pid)
        assert server, "gansweep ui runs its server as a child process"
        # It serves the store asked for, handed over in its environment (not argv):
        # MLflow made that file, not its default ./mlflow.db.
        assert (tmp_path / "mlflow.db").is_file()
        assert not [p for p in server if str(tmp_path) in cmdline(p)], "the URI is in argv"

        os.kill(ui.pid, sig)  # gansweep alone: its server is in a session of its own
        signalled = time.monotonic()
        while not bindable(port) and time.monotonic() - signalled < STOP_DEADLINE:
            time.sleep(0.2)
        assert bindable(port), f"port {port} still taken {STOP_DEADLINE} s after {sig.name}"
        assert ui.wait(timeout=STOP_DEADLINE) == 130
        assert not [pid for pid in server if alive(pid)], "server processes left running"
    finally:
        for pid in {ui.pid, *server}:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        ui.wait(timeout=30)
