"""The committed landscape table: its shape, and rows that `gansweep train` reproduces
from the table alone (the engine is deterministic per seed on CPU)."""

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from recorded_platform import SAME_AS_RECORDED, WHY_NOT
from replay import TABLE, Landscape

from gansweep.search_spaces import load_space
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.metric_registry import TRAIN_SECONDS

SPACE = TABLE.with_name("ring8_space.yaml")
QUALITY = ["distance", "mmd", "modes_captured", "high_quality", "reverse_kl", "loss_d", "loss_g"]


@pytest.fixture(scope="module")
def landscape() -> Landscape:
    return Landscape(pd.read_csv(TABLE))


def test_the_table_holds_every_config_of_its_space_with_every_field(landscape):
    frame = landscape.frame
    assert landscape.fields == list(TrialConfig.model_fields)
    assert frame["config_id"].nunique() == load_space(str(SPACE)).grid_size() == 216
    for _, runs in frame.groupby("config_id"):
        assert set(runs["seed"]) <= {0, 1, 2} and 0 in set(runs["seed"])
    assert set(frame["step"]) == {500, 1000, 1500}
    assert (frame.groupby(["config_id", "seed"])["step"].count() <= 3).all()
    assert {*QUALITY, TRAIN_SECONDS, "diverged"} <= set(landscape.metrics)
    assert (frame[TRAIN_SECONDS] > 0).all()


def retrain_matches(landscape: Landscape, row: pd.Series, tmp_path) -> None:
    config = {f: (None if pd.isna(row[f]) else row[f]) for f in landscape.fields}
    config = {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}
    (tmp_path / "row.yaml").write_text(yaml.safe_dump(config))
    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "train", str(tmp_path / "row.yaml"),
         "--threads", "1", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    history = [json.loads(line) for line in (tmp_path / "run" / "history.jsonl").open()]
    recorded = landscape.frame[landscape.frame["trial_id"] == row["trial_id"]].sort_values("step")
    assert [h["step"] for h in history] == list(recorded["step"].astype(float))
    for got, (_, want) in zip(history, recorded.iterrows(), strict=True):
        for name in QUALITY:
            assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name


@pytest.mark.skipif(not SAME_AS_RECORDED, reason=WHY_NOT)
def test_a_row_retrained_with_gansweep_train_reproduces_its_metrics(landscape, tmp_path):
    # A cheap config (one D step per G step) on the last seed recorded.
    frame = landscape.frame
    runs = frame[(frame["n_critic"] == 1) & (frame["seed"] == frame["seed"].max())]
    retrain_matches(landscape, runs.sort_values("trial_id").iloc[0], tmp_path)


@pytest.mark.slow
@pytest.mark.skipif(not SAME_AS_RECORDED, reason=WHY_NOT)
@pytest.mark.parametrize("pick", range(4))
def test_more_rows_retrained_reproduce_their_metrics(landscape, tmp_path, pick):
    """Rows drawn at random (a fixed draw): each seed, both D step ratios, any outcome."""
    runs = landscape.frame.drop_duplicates("trial_id").sample(4, random_state=7)
    retrain_matches(landscape, runs.iloc[pick], tmp_path)
