"""A sweep ranked by any metric its trials report: the leaderboard, the report and
`export` work for every one of them, and a champion replicated on one seed (no sd) or
with a mode metric as the sweep's metric exports its spread as recorded."""

import math

import pytest
import yaml
from synthetic_sweep import make_sweep
from typer.testing import CliRunner

from gansweep.dashboards import write_report
from gansweep.platform.cli import app
from gansweep.platform.export import export_best
from gansweep.records.leaderboard import standings
from gansweep.records.manifest import Manifest


def ranked_by(tmp_path, metric: str, mode: str, seeds: int) -> Manifest:
    manifest = make_sweep(tmp_path, 8, replicate_top=2, seeds=seeds, diverged=0.0, failed=0.0)
    manifest.options = {**manifest.options, "metric": metric, "mode": mode}
    manifest.save()
    return manifest


@pytest.mark.parametrize(
    ("metric", "mode"), [("mmd", "min"), ("modes_captured", "max"), ("high_quality", "max")]
)
def test_every_reported_metric_ranks_exports_and_reports(tmp_path, metric, mode):
    manifest = ranked_by(tmp_path, metric, mode, seeds=2)
    board = standings(manifest).board
    assert board.columns.is_unique, board.columns[board.columns.duplicated()].tolist()
    best = board.iloc[0]
    _, provenance = export_best(manifest)
    assert provenance["metric"] == metric and provenance["value"] == pytest.approx(best[metric])
    spread = provenance["replicated"]
    worst = best[f"{metric}_worst"]
    assert spread[metric]["worst"] == pytest.approx(worst)
    assert spread["seeds"] == spread["seeds_planned"] == 2
    # the sweep's own metric is summarized once, under its name
    assert list(spread).count(metric) == 1
    assert write_report(manifest, log_to_mlflow=False).is_file()


def test_a_champion_replicated_on_one_seed_exports_with_no_sd(tmp_path):
    manifest = ranked_by(tmp_path, "distance", "min", seeds=1)
    storage = str(tmp_path / "sweeps")
    result = CliRunner().invoke(app, ["export", manifest.name, "--storage", storage])
    assert result.exit_code == 0, result.output
    assert "over 1 of 1 fresh seeds (0 diverged or failed)" in result.output
    assert "sd n/a" in result.output
    saved = yaml.safe_load((tmp_path / "sweeps" / manifest.name / "best.yaml").read_text())
    spread = saved["_provenance"]["replicated"]["distance"]
    assert spread["sd"] is None and math.isfinite(spread["worst"])
    assert spread["mean"] == pytest.approx(spread["worst"])  # one seed: its value


def test_the_trials_table_has_a_column_for_every_metric_of_the_registry():
    """Every METRICS entry a run reports gets its column (a new metric needs no list)."""
    import pandas as pd

    from gansweep.records.read import trials_frame
    from gansweep.trainables.metric_registry import METRICS

    runs = pd.DataFrame(
        [
            {
                "run_id": "r1", "artifact_uri": "", "status": "FINISHED", "start_time": 1000,
                "end_time": 2000, "params.steps": "100", "metrics.step": 100.0,
                **{f"metrics.{name}": float(i) for i, name in enumerate(METRICS)},
            }
        ]
    )  # fmt: skip
    table = trials_frame(runs, "distance", sweep_running=False)
    assert table.loc[0, "value"] == 0.0  # distance, the sweep's metric
    for i, name in enumerate(METRICS):
        if name != "distance":
            assert table.loc[0, name] == float(i), name
