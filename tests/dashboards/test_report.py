"""The sweep report: generated from a real small sweep, from synthetic ones (empty, all
diverged, mixed; a real MLflow store and a real Optuna study, no Ray), and opened in
headless Chromium (slow)."""

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient
from synthetic_sweep import SPACE, make_sweep

from gansweep.dashboards import REPORT_FILE, SECTIONS, ReportError, gather, write_report
from gansweep.dashboards.stats import best_of_k, best_so_far
from gansweep.records.manifest import Manifest
from gansweep.search_spaces import parse_space

GANSWEEP = [sys.executable, "-m", "gansweep.platform.cli"]
TINY = ["--set", "steps=200", "--set", "eval_every=100", "--set", "eval_samples=500"]
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="module")
def real_sweep(tmp_path_factory) -> Manifest:
    """One real 4-trial sweep (Ray, MLflow, Optuna; ~40 s), shared by the tests below."""
    cwd = tmp_path_factory.mktemp("sweep")
    env = {**os.environ, "RAY_ADDRESS": ""}  # never join a cluster someone left running
    proc = subprocess.run(
        [*GANSWEEP, "sweep", "--name", "s", "--num-samples", "4", "--max-concurrent", "2",
         "--scheduler", "fifo", "--seed", "1", "--replicate-top", "0", *TINY],
        cwd=cwd, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return Manifest.load(cwd / "sweeps", "s")


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory) -> Path:
    """An MLflow SQLite file with its tables made once: creating them takes seconds."""
    db = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()
    return db


@pytest.fixture
def synthetic(tmp_path, empty_store):
    """make(n_trials, **make_sweep options) -> the manifest of a synthetic sweep."""

    def make(n_trials: int, **options) -> Manifest:
        shutil.copy(empty_store, tmp_path / "mlflow.db")
        return make_sweep(tmp_path, n_trials, **options)

    return make


def child_runs(manifest: Manifest, role: str = "trial") -> list:
    return MlflowClient(manifest.tracking_uri).search_runs(
        [manifest.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{manifest.parent_run_id}' and "
        f"tags.`gansweep.role` = '{role}'",
    )


def chart_count(page: str) -> int:
    declared = int(re.search(r'name="gansweep-charts" content="(\d+)"', page).group(1))
    assert page.count('class="plotly-graph-div"') == declared
    return declared


def assert_every_section_and_trial(page: str, manifest: Manifest) -> None:
    for anchor, title in SECTIONS:
        assert f'<section id="{anchor}">\n<h2>{title}</h2>' in page
    for run in child_runs(manifest):
        assert run.info.run_id in page
        assert run.data.tags["combination"] in page
        assert run.info.run_name in page


def assert_offline(page: str) -> None:
    """Nothing is fetched: no script, style or image from anywhere but the page."""
    assert not re.search(r'<script[^>]+src=|<link[^>]+href=|<img[^>]+src="(?!data:)', page)


# ------------------------------------------------------------------ a real sweep


def test_a_real_sweep_gets_every_section_every_trial_and_an_mlflow_artifact(real_sweep):
    path = write_report(real_sweep)
    assert path == Path(real_sweep.sweep_dir) / REPORT_FILE
    page = path.read_text()
    assert_every_section_and_trial(page, real_sweep)
    assert_offline(page)

    runs = child_runs(real_sweep)
    finite = [r for r in runs if not r.data.metrics.get("diverged")]
    best = min(finite, key=lambda r: r.data.metrics["distance"])
    assert f"<b>{best.data.metrics['distance']:.4g}</b>" in page  # the leaderboard's first
    # Leaderboard thumbnails + the gallery: every trial's samples.png is in the page.
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', page)) == 2 * len(finite)
    # Landscape, heat map, stability, curves, parallel coordinates, two budget curves; four
    # trials are too few for importances, and that is said instead.
    assert chart_count(page) == 7
    assert "Parameter importances need at least 10 completed trials" in page
    assert page.count("Plotly.newPlot") == 7 and page.count("plotly.js v") == 1

    artifacts = MlflowClient(real_sweep.tracking_uri).list_artifacts(real_sweep.parent_run_id)
    assert REPORT_FILE in {a.path for a in artifacts}


def test_out_and_no_mlflow_write_only_the_file(real_sweep, tmp_path):
    client = MlflowClient(real_sweep.tracking_uri)
    before = {a.path for a in client.list_artifacts(real_sweep.parent_run_id)}
    path = write_report(real_sweep, tmp_path / "deep" / "mine.html", log_to_mlflow=False)
    assert path == tmp_path / "deep" / "mine.html" and path.stat().st_size > 0
    assert {a.path for a in client.list_artifacts(real_sweep.parent_run_id)} == before


# -------------------------------------------------------------- synthetic sweeps


@pytest.mark.parametrize("study", ["empty study", "no study file"])
def test_an_empty_sweep_says_so_in_every_section(synthetic, study):
    manifest = synthetic(0, status="running")
    if study == "no study file":  # the driver died before Optuna made its file
        manifest.study_path.unlink()
    page = write_report(manifest).read_text()
    assert_every_section_and_trial(page, manifest)
    assert "0 trials (none)" in page and "No trial has been recorded in MLflow yet." in page
    assert "The sweep is <b>running</b>" in page
    assert chart_count(page) == 0 and "plotly.js v" not in page  # no charts: no plotly.js
    if study == "no study file":
        assert "the sweep has no Optuna study yet" in page
        assert not manifest.study_path.exists()  # reading made none
        assert page.count('<p class="empty">') == len(SECTIONS)
    else:  # importances and parallel coordinates each say why they are missing
        assert page.count('<p class="empty">') == len(SECTIONS) + 1


def test_an_all_diverged_sweep_says_so_and_still_lists_every_trial(synthetic):
    manifest = synthetic(6, diverged=1.0)
    page = write_report(manifest).read_text()
    assert_every_section_and_trial(page, manifest)
    assert "No trial has a finite result: all 6 that reported diverged." in page
    assert "All 6 trials that reported diverged" in page  # the landscape
    assert "None of the 6 trials has a result at its full budget yet" in page  # the budget
    assert page.count(">diverged</span>") == 6  # the table of all trials
    assert "Every completed trial diverged: there is nothing to explain." in page
    assert chart_count(page) == 1  # the stability bars: 100% diverged for each loss


def test_a_mixed_sweep_has_importances_seed_spread_and_escaped_strings(synthetic):
    manifest = synthetic(30, diverged=0.15, failed=0.1, status="running", replicate_top=3)
    client = MlflowClient(manifest.tracking_uri)
    victim = child_runs(manifest)[0].info.run_id
    client.set_tag(victim, "combination", "<script>alert(1)</script>")
    # A trial still training: no outcome tag, no metric yet.
    running = client.create_run(
        manifest.experiment_id, run_name="ns-adam-running",
        tags={"mlflow.parentRunId": manifest.parent_run_id, "gansweep.role": "trial",
              "combination": "ns-adam", "loss": "ns"},
    )  # fmt: skip
    page = write_report(manifest).read_text()

    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert running.info.run_id in page and ">running</span>" in page
    assert "Parameter importances (Optuna, PED-ANOVA)" in page
    assert "The top configs retrained on fresh seeds [1, 2, 3]" in page
    replicas = child_runs(manifest, "replica")
    assert len(replicas) == 3 * 3 and all(r.info.run_name in page for r in replicas)
    # landscape, heat map, stability, seeds, curves, importances, parallel, two budgets
    assert chart_count(page) == 9
    data = gather(manifest)
    assert len(data.trials) == 31 and set(data.trials["run_id"]) <= set(re.findall(
        r"<code>([0-9a-f]{32})</code>", page))  # fmt: skip


def section(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start : page.index("</section>", start)]


def axis_rows(text: str) -> dict[str, str]:
    """axis -> its row of the "Which axes mattered" table, as text."""
    rows = re.findall(r"<tr><td>([a-z_]+)[^<]*</td>(.*?)</tr>", text)
    return {axis: re.sub(r"<[^>]+>", "", cells) for axis, cells in rows}


def test_which_axes_mattered_names_every_axis_and_says_clear_for_the_one_built_to_matter(
    synthetic,
):
    # Spectral norm divides the distance by 4; the optimizer does nothing (synthetic_sweep).
    manifest = synthetic(40, replicate_top=3, stopped_early=0.0, diverged=0.05, spectral=0.25)
    page = write_report(manifest, log_to_mlflow=False).read_text()
    text = section(page, "axes")
    rows = axis_rows(text)
    assert list(rows) == [p.name for p in parse_space(SPACE).params]
    assert rows["d_norm"].index("spectral:") < rows["d_norm"].index("none:")  # the winner
    assert rows["d_norm"].endswith("clear") and "within the noise" not in rows["d_norm"]
    assert rows["optimizer"].endswith("within the noise")
    data = gather(manifest)
    full = int((data.trials["status"] == "finished").sum())
    assert full >= 5 and f"from the {full} trials that reached their full budget" in text
    assert "The best replicated config varies by" in text
    assert "(3 bins of equal count)" in text  # lr_g, lr_d and penalty_weight are ranges


def test_which_axes_mattered_uses_every_ended_trial_when_few_reached_their_budget(synthetic):
    manifest = synthetic(8, stopped_early=1.0, diverged=0.0, failed=0.0)
    text = section(write_report(manifest, log_to_mlflow=False).read_text(), "axes")
    assert "from all 8 ended trials, those stopped early included" in text
    assert "only 0 reached their full budget" in text
    assert len(axis_rows(text)) == len(parse_space(SPACE).params)
    assert "no config was retrained on at least two fresh seeds" in text


def test_the_wide_tables_scroll_sideways_inside_the_page(synthetic):
    """The leaderboard (replication columns, every metric, run ids) was cut off at 1,400 px:
    it and the table of seeds sit in a box that scrolls sideways (the browser test below
    checks the page itself no longer overflows)."""
    manifest = synthetic(8, replicate_top=2, seeds=2, diverged=0.0, failed=0.0, all_metrics=True)
    page = write_report(manifest, log_to_mlflow=False).read_text()
    assert re.search(r"\.wide \{[^}]*overflow-x: auto;", page)
    assert page.count('<table class="board">') == 2  # the leaderboard and the seeds
    assert page.count('<div class="wide"><table class="board">') == 2
    leaderboard = page[page.index('<section id="leaderboard">') :]
    assert leaderboard.index('<div class="wide"><table class="board">') < leaderboard.index(
        "</section>"
    )


def test_a_missing_tracking_store_is_an_error_and_creates_nothing(tmp_path):
    manifest = Manifest(
        name="x", sweep_dir=str(tmp_path / "x"), tracking_uri=f"sqlite:///{tmp_path}/no.db",
        experiment_id="1", parent_run_id="0" * 32, study_name="x", space="quick",
        space_source="",
    )  # fmt: skip
    with pytest.raises(ReportError, match="does not exist"):
        write_report(manifest)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------- the budget statistics


def brute_force_best_of_k(values: list[float], k: int, q: float) -> float:
    """The q-quantile of min over every k-subset (NaN = never best)."""
    bests = sorted(
        min((v for v in subset if not np.isnan(v)), default=np.inf)
        for subset in itertools.combinations(values, k)
    )
    value = bests[int(np.ceil(q * len(bests))) - 1]
    return np.nan if np.isinf(value) else value


@pytest.mark.parametrize("q", [0.25, 0.5, 0.75])
def test_best_of_k_is_the_exact_order_statistic(q):
    values = [3.0, 1.0, np.nan, 2.0, 5.0, np.nan, 4.0]
    got = best_of_k(np.array(values), lower=True, quantiles=(q,))[0]
    want = [brute_force_best_of_k(values, k, q) for k in range(1, len(values) + 1)]
    assert got == pytest.approx(want, nan_ok=True)
    # Higher is better: the same statistic of the negated values.
    flipped = best_of_k(-np.array(values), lower=False, quantiles=(q,))[0]
    assert flipped == pytest.approx(-np.array(want), nan_ok=True)


def test_best_so_far_skips_missing_results():
    got = best_so_far(np.array([np.nan, 3.0, np.nan, 4.0, 1.0]), lower=True)
    assert got == pytest.approx([np.nan, 3.0, 3.0, 3.0, 1.0], nan_ok=True)
    got = best_so_far(np.array([2.0, np.nan, 5.0]), lower=False)
    assert got == pytest.approx([2.0, 2.0, 5.0])


# ----------------------------------------------------------- in a real browser


def open_in_chromium(page: Path, screenshot: Path) -> tuple[list, int, int, list, int]:
    """Open the page from disk in headless Chromium; returns (console errors, chart divs,
    charts with an SVG, resources fetched over the network, pixels the page is wider than
    the 1,400 px window) and saves a screenshot."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)  # with the driver's path: no selenium-manager
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        "--window-size=1400,1000", f"--user-data-dir={tempfile.mkdtemp(prefix='chromium-')}",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.get(page.as_uri())
        charts = len(driver.find_elements(By.CSS_SELECTOR, ".plotly-graph-div"))
        rendered = "return document.querySelectorAll('.plotly-graph-div .main-svg').length"
        drawn = "return [...document.querySelectorAll('.plotly-graph-div')].filter(d => d.querySelector('.main-svg')).length"  # noqa: E501
        try:
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(drawn) == charts)
        except Exception:
            pass  # the assertion below reports how many were drawn
        drawn_charts = driver.execute_script(drawn)
        assert driver.execute_script(rendered) >= drawn_charts
        fetched = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
            ".filter(n => !n.startsWith('data:') && !n.startsWith('file:'))"
        )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        # Wider than the window: something is cut off or needs the whole page scrolled.
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth"
        )
        height = driver.execute_script("return document.body.scrollHeight")
        driver.set_window_size(1400, min(height + 80, 16000))
        time.sleep(0.5)  # let responsive charts re-layout at the new size
        driver.save_screenshot(str(screenshot))
    finally:
        driver.quit()
    return errors, charts, drawn_charts, fetched, overflow


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["real", "mixed", "diverged", "empty"])
def test_the_report_renders_in_chromium_without_errors(kind, request, synthetic, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium chromium-driver)")
    if kind == "real":
        manifest = request.getfixturevalue("real_sweep")
    else:
        shares = {
            "mixed": {"replicate_top": 3, "all_metrics": True},  # the widest leaderboard
            "diverged": {"diverged": 1.0},
            "empty": {},
        }[kind]
        manifest = synthetic(0 if kind == "empty" else 30, **shares)
    page = write_report(manifest, tmp_path / "report.html", log_to_mlflow=False)
    expected = chart_count(page.read_text())

    screenshot = tmp_path / f"report-{kind}.png"
    errors, charts, drawn, fetched, overflow = open_in_chromium(page, screenshot)
    assert errors == []
    assert fetched == []
    assert overflow <= 0
    assert charts == expected and drawn == expected
    assert screenshot.stat().st_size > 10_000
    print(json.dumps({"kind": kind, "charts": charts, "screenshot": str(screenshot)}))
