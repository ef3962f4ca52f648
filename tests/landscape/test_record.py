"""record.py's table, read back from a real sweep's MLflow runs: the sweep here replays a
synthetic landscape (a real GAN grid takes hours), through the same platform and records
as the recording's grid sweeps, so the table it gives must hold the same rows."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import record
from synthetic import synthetic_table

from gansweep.trainables.config import TrialConfig

FIXED = {"penalty": "gp", "penalty_weight": 1.0, "n_critic": 1, "lr_g": 1e-3, "lr_d": 2e-3}


def replayed_grid_sweep(tmp_path, losses: list[str]) -> tuple[pd.DataFrame, Path, dict]:
    """A grid + FIFO sweep over `losses` through the CLI, as record.py runs a seed's,
    replaying a synthetic table: (that table, the work folder, the sweep's environment)."""
    source = synthetic_table(seeds=(0,))
    path = tmp_path / "source.csv"
    source.to_csv(path, index=False)
    work = tmp_path / "work"
    work.mkdir()
    space = tmp_path / "space.yaml"
    space.write_text(
        record.SPACE.read_text().split("params:")[0] + f"params:\n  loss: {{choice: {losses}}}\n"
    )
    sets = [x for k, v in FIXED.items() for x in ("--set", f"{k}={v}")]
    env = {**os.environ, "RAY_ADDRESS": "", "GANSWEEP_REPLAY_TABLE": str(path)}
    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--space", str(space),
         "--name", record.sweep_name(0), "--sampler", "grid", "--scheduler", "fifo",
         "--replicate-top", "0", "--num-samples", str(len(losses)),
         "--storage", str(work / "sweeps"), "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}",
         "--trainable", f"{record.HERE / 'replay.py'}:replay", *sets],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return source, work, env


def test_the_table_of_a_recorded_grid_sweep_holds_its_runs_row_for_row(tmp_path):
    source, work, _ = replayed_grid_sweep(tmp_path, ["ns", "wgan", "hinge"])

    table, wall = record.table(work, (0, 1))  # seed 1: not recorded yet, left out
    assert list(wall) == [0] and wall[0] > 0
    fields = list(TrialConfig.model_fields)
    assert list(table.columns[: len(fields) + 1]) == [*fields, "step"]
    assert len(table) == 3 * 3 and set(table["loss"]) == {"ns", "wgan", "hinge"}
    want = source[
        (source[list(FIXED)] == pd.Series(FIXED)).all(axis=1) & source["loss"].isin(table["loss"])
    ]
    key = ["loss", "step"]
    got, want = table.sort_values(key), want.sort_values(key)
    for column in ["distance", "high_quality", "train_seconds", "diverged"]:
        assert list(got[column]) == pytest.approx(list(want[column]), rel=1e-12), column
    for field in fields:
        assert list(got[field].astype(str)) == list(want[field].astype(str)), field


def test_record_run_continues_an_interrupted_seed_with_resume(tmp_path, monkeypatch):
    """`record.py run` on a seed whose sweep was interrupted resumes it (resume reads the
    tracking URI from the manifest: it once passed --tracking-uri, which resume refuses)."""
    from gansweep.records import Manifest

    _, work, env = replayed_grid_sweep(tmp_path, ["ns", "wgan"])
    manifest = Manifest.load(work / "sweeps", record.sweep_name(0))
    manifest.status = "interrupted"  # as a stopped recording leaves it
    manifest.save()

    for key, value in env.items():
        monkeypatch.setenv(key, value)
    record.record(work, (0,), 2)  # raises CalledProcessError if resume refuses
    assert Manifest.load(work / "sweeps", record.sweep_name(0)).status == "finished"
    table, _ = record.table(work, (0,))
    assert len(table) == 2 * 3  # the same two trials, three evaluations each, no more
