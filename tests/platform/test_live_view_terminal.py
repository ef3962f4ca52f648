"""A real sweep in a real (pseudo-)terminal: the live view and the leaderboard are all
that reaches the screen; Ray's, Tune's and MLflow's own output goes to driver.log."""

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from gansweep.platform.live_view import LOG_FILE

ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07]*\x07|[@-Z\\-_])")

# What Tune, Ray and MLflow print themselves: Tune's status and config tables, its
# "Trial ... completed" lines, the workers' output forwarded with a "(pid=...)" prefix,
# the workers' checkpoint lines, and log records.
LIBRARY_LINES = re.compile(
    r"Trial status|Trial \S+ (completed|started|finished)|Checkpoint successfully created"
    r"|\((\w+ )?pid=|\bINFO\b|\bWARNING\b|╭",
)


def _run_in_a_terminal(command: list[str], cwd, env, timeout: float) -> tuple[int, str]:
    """Run `command` with a pseudo-terminal of 160x40 as its stdin, stdout and stderr;
    return its exit code and everything the terminal received."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    proc = subprocess.Popen(
        command, cwd=cwd, env=env, stdin=slave, stdout=slave, stderr=slave,
        start_new_session=True, close_fds=True,
    )  # fmt: skip
    os.close(slave)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        # Until the command ends and, after it, until the terminal has nothing more (a
        # process Ray started could keep the terminal open: do not wait for it).
        while True:
            done = proc.poll() is not None
            ready, _, _ = select.select([master], [], [], 0.5 if done else 1.0)
            if not ready:
                if done:
                    break
                assert time.monotonic() < deadline, received.decode(errors="replace")[-3000:]
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every end of the terminal is closed
                break
            if not chunk:
                break
            received += chunk
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        proc.wait()
        os.close(master)
    text = ANSI.sub("", received.decode(errors="replace")).replace("\r", "")
    return proc.returncode, text


@pytest.mark.slow  # a real sweep, 45-65 s; test_live_view.py guards the cause in the fast suite
def test_in_a_terminal_only_the_view_and_the_leaderboard_reach_the_screen(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": "", "TERM": "xterm-256color"}
    for sized in ("COLUMNS", "LINES"):  # the terminal's own size, as in tmux
        env.pop(sized, None)
    command = [
        sys.executable, "-m", "gansweep.platform.cli", "sweep", "--name", "pty",
        "--space", "quick", "--num-samples", "2", "--max-concurrent", "2",
        "--scheduler", "fifo", "--replicate-top", "0",
        "--set", "steps=100", "--set", "eval_every=50", "--set", "eval_samples=200",
        "--storage", str(tmp_path / "sweeps"),
        "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
    ]  # fmt: skip
    code, screen = _run_in_a_terminal(command, tmp_path, env, timeout=240)
    assert code == 0, screen[-3000:]
    leaked = [line for line in screen.splitlines() if LIBRARY_LINES.search(line)]
    assert not leaked, "\n".join(leaked[:40])
    assert "running and best trials" in screen  # the live view
    assert "trials 2 done / 0 running / 0 pending of 2" in screen
    assert "leaderboard (top" in screen and "best config:" in screen
    assert "Traceback" not in screen
    log = (tmp_path / "sweeps" / "pty" / LOG_FILE).read_text()
    assert "Trial status" in log  # Tune's progress reporter wrote there
