"""Every metric of the registry reaches every reader: a sweep ranked by any METRICS entry
(and by a metric registered only for this test, as a plugin would add one) ranks by it,
and every metric the trials report has its column in the leaderboard, leaderboard.csv,
the report and (the sweep's own) export's provenance. Also a champion replicated on one
seed (no sd) exports its spread as recorded."""

import dataclasses
import io
import math
import re

import pandas as pd
import pytest
import yaml
from synthetic_sweep import make_sweep
from typer.testing import CliRunner

from gansweep.dashboards import write_report
from gansweep.platform.cli import app
from gansweep.platform.export import export_best
from gansweep.records.leaderboard import standings
from gansweep.records.manifest import Manifest
from gansweep.records.read import trials_frame
from gansweep.trainables.metric_registry import METRICS, MetricSpec

TEST_METRIC = "test_sharpness"  # registered by the fixture below, for this module only


def ranked_by(tmp_path, metric: str, mode: str, seeds: int) -> Manifest:
    manifest = make_sweep(tmp_path, 8, replicate_top=2, seeds=seeds, diverged=0.0, failed=0.0)
    manifest.options = {**manifest.options, "metric": metric, "mode": mode}
    manifest.save()
    return manifest


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


# ------------------------------------- every metric, one registered by the test too
# (last in the module: METRICS holds the test's metric until the module ends)


@pytest.fixture(scope="module")
def every_metric_sweep(tmp_path_factory):
    """8 trials whose runs report every metric of METRICS, TEST_METRIC among them; the top
    2 replicated on 2 seeds. METRICS holds TEST_METRIC until the module's tests end."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(METRICS, TEST_METRIC, MetricSpec("max", ("vector",), "a test's metric"))
        root = tmp_path_factory.mktemp("any-metric")
        yield make_sweep(root, 8, replicate_top=2, seeds=2, diverged=0.0, failed=0.0,
                         all_metrics=True)  # fmt: skip


def leaderboard_header(page: str) -> list[str]:
    section = page[page.index('<section id="leaderboard">') : page.index("</thead>")]
    return re.findall(r"<th>(.*?)</th>", section)


@pytest.mark.parametrize("metric", [*METRICS, TEST_METRIC])
def test_every_metric_ranks_and_reaches_every_reader(every_metric_sweep, metric, tmp_path):
    spec = METRICS[metric]
    manifest = dataclasses.replace(
        every_metric_sweep, options={**every_metric_sweep.options, "metric": metric,
                                     "mode": spec.mode},
    )  # fmt: skip
    ranked = standings(manifest)
    board = ranked.board
    assert board.columns.is_unique, board.columns[board.columns.duplicated()].tolist()
    assert set(METRICS) <= set(board.columns)  # the sweep's own, and every other one
    # Ranked by it, in its direction: the unreplicated trials at full budget, best first.
    unreplicated = board[(board["rank"] > 0) & ~board["replicated"]]
    full = unreplicated[unreplicated["step"] >= unreplicated["planned_steps"]][metric]
    assert list(full) == sorted(full, reverse=spec.mode == "max")
    champion = ranked.champion
    assert champion["held"]

    csv = pd.read_csv(io.StringIO(board.to_csv(index=False)))  # leaderboard.csv, as written
    for name in METRICS:
        assert csv[name].to_numpy() == pytest.approx(board[name].to_numpy(float)), name

    page = write_report(manifest, tmp_path / "report.html", log_to_mlflow=False).read_text()
    better = "lower" if spec.mode == "min" else "higher"
    header = leaderboard_header(page)
    assert f"{metric} ({better} is better)" in header
    assert set(METRICS) - {metric} <= set(header)
    assert f"<b>{champion[metric]:.4g}</b>" in page

    best_yaml, provenance = export_best(manifest, tmp_path / "best.yaml")
    saved = yaml.safe_load(best_yaml.read_text())["_provenance"]
    for shown in (provenance, saved):
        assert shown["metric"] == metric and shown["mode"] == spec.mode
        assert shown["value"] == pytest.approx(champion[metric])
        spread = shown["replicated"]
        assert spread["seeds"] == spread["seeds_planned"] == 2
        assert spread[metric]["worst"] == pytest.approx(champion[f"{metric}_worst"])
        assert list(spread).count(metric) == 1  # summarized once, under its name
