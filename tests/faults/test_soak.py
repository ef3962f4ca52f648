"""The short soak (benchmarks/soak.py --short): a 48-trial grid sweep of replay trials on
an `mlflow server` over a real PostgreSQL, its driver SIGKILLed twice and resumed, the
MLflow server and PostgreSQL restarted, trial workers SIGKILLed; nothing lost, nothing
twice, and the leaderboard of a sweep without faults. The bugs it found are mended
(docs/results.md, "A soak that loses nothing"); it runs in CI's slow suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from local_stack import postgres_bin_dir

pytestmark = [pytest.mark.slow, pytest.mark.soak]

SOAK = Path(__file__).parents[2] / "benchmarks" / "soak.py"


def test_the_short_soak_loses_nothing_and_ends_with_the_clean_board(tmp_path):
    if postgres_bin_dir() is None and not os.environ.get("GANSWEEP_REQUIRE_POSTGRES"):
        pytest.skip("PostgreSQL's server programs are not installed here")
    done = subprocess.run(
        [sys.executable, str(SOAK), "--short", "--folder", str(tmp_path / "soak")],
        capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    faults = result["faults"]
    assert faults["driver_kill"] == 2 and faults["mlflow_restart"] == 1, faults
    assert faults["postgres_restart"] == 1 and faults.get("worker_kill", 0) >= 1, faults
    assert result["trials"] == result["planned"] == 48
    assert (result["lost"], result["duplicates"], result["missing_metrics"]) == (0, 0, 0)
    assert result["board_equal"] is True
