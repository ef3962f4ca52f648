"""benchmarks/driver_scale.py: its checks and figures on made-up records (fast), and its
quick mode (200 replay trials, 32 in flight, on a 4-node Ray test cluster, SQLite) run
as a user runs it (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import driver_scale as ds
import pytest

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "driver_scale.py"


def test_lost_and_duplicate_runs_are_counted():
    runs = [
        ds.RunRecord("a", "FINISHED", "finished"),
        ds.RunRecord("b", "FINISHED", "stopped_early"),
        ds.RunRecord("b", "FINISHED", "finished"),  # a second run of trial b
        ds.RunRecord("c", "RUNNING", ""),  # never ended: lost
        ds.RunRecord("d", "FAILED", "failed"),
    ]
    # 5 planned: a, b, d ended; c is open and e has no run at all.
    assert ds.lost_and_duplicates(runs, trials=5) == {
        "runs": 5, "lost": 2, "duplicates": 1, "failed": 1,
    }  # fmt: skip
    clean = [ds.RunRecord(t, "FINISHED", "finished") for t in "abc"]
    assert ds.lost_and_duplicates(clean, trials=3) == {
        "runs": 3, "lost": 0, "duplicates": 0, "failed": 0,
    }  # fmt: skip


def test_trials_in_flight_are_read_from_the_runs_start_and_end():
    # Two runs over 0..10 s, a third over 5..10 s: 3 at most, 2.5 on average.
    runs = [
        ds.RunRecord("a", "FINISHED", "finished", 0, 10_000),
        ds.RunRecord("b", "FINISHED", "finished", 0, 10_000),
        ds.RunRecord("c", "FINISHED", "finished", 5_000, 10_000),
    ]
    assert ds.runs_in_flight(runs) == {"in_flight_max": 3, "in_flight_mean": 2.5}


def test_suggest_latency_and_driver_cpu_are_read_around_each_mark():
    # 300 suggests, one a second; suggest n takes n ms, half of it on its CPU, a quarter
    # waiting for a core; the driver's CPU clock runs at 0.5 s per second: 0.5 CPU s per
    # trial everywhere.
    calls = [
        {"call": "suggest", "n": n, "end": 1000.0 + n, "wall_s": n / 1000,
         "cpu_s": n / 2000, "queue_s": n / 4000}
        for n in range(1, 301)
    ]  # fmt: skip
    clock = [(1000.0 + t, 0.5 * t) for t in range(0, 302)]
    figures = ds.suggest_figures(calls, trials=300)
    assert figures["suggests"] == 300
    assert figures["suggest_p50_ms"] == pytest.approx(150.5)
    # Trial 100's window is suggests 51..150; the last's, 201..300.
    assert figures["suggest_ms_at"]["100"] == {
        "p50": 100.5, "p99": pytest.approx(149.01),
        "cpu_p50": 50.25, "cpu_p99": pytest.approx(74.505, abs=0.01),
        "queue_p50": pytest.approx(25.125, abs=0.01),
        "queue_p99": pytest.approx(37.2525, abs=0.01), "n": 100,
    }  # fmt: skip
    calls[99].pop("queue_s")  # a call with no run-queue figure (not on Linux) is left out
    assert ds.suggest_figures(calls, trials=300)["suggest_ms_at"]["100"]["n"] == 100
    assert figures["suggest_ms_at"]["300"]["p50"] == pytest.approx(250.5)
    assert ds.driver_cpu_at(calls, clock, trials=300) == {"100": 0.5, "300": 0.5}
    # Past the first in_flight suggests, one suggest a second is 60 completions a minute.
    assert ds.steady_rate(calls, in_flight=32) == pytest.approx(60.0)


def test_retries_are_told_apart_by_who_logged_them(tmp_path):
    log = tmp_path / "driver.log"
    log.write_text(
        "tracking call failed (OperationalError: database is locked); retrying in 0.5 s\n"
        "\x1b[36m(replay pid=13157)\x1b[0m tracking call failed (MlflowException: ...); retrying\n"
        "(replay pid=13158) tracking call failed (MlflowException: ...); retrying\n"
        "a line about something else\n"
    )
    assert ds.retries(log) == {"retries_driver": 1, "retries_trials": 2}


def test_a_trial_takes_a_fraction_of_a_node_that_fits_the_trials_in_flight():
    # 32 in flight on 3 worker nodes: 11 per node, 4 CPUs each.
    assert ds.cpus_per_trial(32, nodes=4, node_cpus=4) == pytest.approx(0.3636)
    assert 11 * ds.cpus_per_trial(32, nodes=4, node_cpus=4) <= 4


def access(port: int, request: str, code: str) -> str:
    """A line of uvicorn's access log, as `mlflow server` writes it."""
    return f'2026/12/04 03:20:25 INFO:     127.0.0.1:{port} - "{request} HTTP/1.1" {code}\n'


def test_the_mlflow_servers_access_log_is_counted(tmp_path):
    log = tmp_path / "server.log"
    before = access(1, "POST /api/2.0/mlflow/runs/create", "200 OK")
    during = (
        access(2, "POST /api/2.0/mlflow/runs/log-batch", "200 OK")
        + access(3, "GET /api/2.0/mlflow/runs/get?run_id=x", "404 Not Found")
        + "2026/12/04 03:20:27 WARNING: something else\n"
        + access(4, "POST /api/2.0/mlflow/runs/log-batch", "503 Service Unavailable")
    )
    log.write_text(before + during)
    calls = ds.server_calls(log, len(before), len(before) + len(during), seconds=2.0)
    assert calls == {
        "mlflow_calls": 3, "mlflow_calls_per_s": 1.5, "mlflow_errors": 1,
        "mlflow_4xx": {"runs/get 404": 1},
        "mlflow_calls_by_endpoint": {"runs/log-batch": 2, "runs/get": 1},
    }  # fmt: skip


@pytest.mark.slow
def test_the_quick_run_prints_every_figure_and_loses_no_run(tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--folder", str(tmp_path / "scale")],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    result = json.loads(lines[0])
    assert set(ds.KEYS) <= set(result), set(ds.KEYS) - set(result)
    assert (result["store"], result["trials"], result["in_flight"]) == ("sqlite", 200, 32)
    assert result["runs"] == 200 and result["study_trials"] == 200
    assert (result["lost"], result["duplicates"], result["study_unfinished"]) == (0, 0, 0)
    # 32 are asked for. The most seen at once (from the runs' start and end times) can
    # fall short on a busy machine, where 1.7-s replay trials end before the driver starts
    # the next ones (30 beside two training processes): half is the floor of a working run.
    assert result["suggests"] == 200 and result["in_flight_max"] >= 16
    for key in ("completions_per_min", "driver_cpu_s_per_trial", "suggest_p99_ms"):
        assert result[key] > 0, key
    for key in ("ls_s", "status_s", "export_s", "report_s"):
        assert result[key] is not None, f"`gansweep {key[:-2]}` failed: see commands.log"
