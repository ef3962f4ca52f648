"""`gansweep status NAME` and `gansweep ls`, read from the manifest and MLflow only: on a
finished sweep, on one still running, and on one whose driver died (then it says so and
prints the resume command). Sweeps made by tests/dashboards/synthetic_sweep.py: real
records, no Ray, no training."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gansweep.platform.cli import app
from gansweep.records.leaderboard import standings
from gansweep.records.progress import this_driver
from gansweep.records.run_format import TrialIdentity
from gansweep.records.write import TrialRun
from gansweep.trainables.config import TrialConfig

_spec = importlib.util.spec_from_file_location(
    "synthetic_sweep", Path(__file__).parents[1] / "dashboards" / "synthetic_sweep.py"
)
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


def cli(*args: str):
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    """Two sweeps: one finished (12 trials, the top 2 replicated on 2 seeds) and one
    running with two trials in flight."""
    root = tmp_path_factory.mktemp("status")
    synthetic.make_sweep(root, 12, name="done", replicate_top=2, seeds=2, failed=0.0)
    running = synthetic.make_sweep(root, 5, name="live", status="running", failed=0.0)
    running.options["num_samples"] = 10
    running.driver = this_driver()  # this process: alive
    running.save()
    for trial_id in ("aaaa0001", "aaaa0002"):  # in flight: one evaluation, no outcome yet
        cfg = TrialConfig(dataset="ring8", steps=1500, eval_every=500)
        run = TrialRun(
            TrialIdentity(running.records, trial_id, cfg.combination, None), cfg.model_dump()
        )
        run.log_evaluation({"distance": 0.05, "step": 500.0, "diverged": 0.0}, 500, [])
    return root / "sweeps", running


def test_status_of_a_finished_sweep(storage):
    folder, _ = storage
    code, out = cli("status", "done", "--storage", str(folder), "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["state"] == "finished" and shown["phase"] == "done"
    assert shown["planned"] == 12 and shown["done"] == 12 and shown["running"] == 0
    assert shown["replicas_planned"] == 4 and shown["replicas_done"] == 4
    assert shown["resume"] == "" and shown["eta_s"] is None
    from gansweep.records.manifest import Manifest

    champion = standings(Manifest.load(folder, "done")).champion
    assert shown["best"]["trial_id"] == champion["trial_id"]
    assert shown["best"]["value"] == pytest.approx(champion["distance"])
    assert shown["rows"][0]["rank"] == 1  # the best trials, best first

    code, text = cli("status", "done", "--storage", str(folder))
    assert code == 0 and "done: finished" in text and "trials 12 done / 0 running" in text
    assert champion["trial_id"] in text


def test_status_of_a_running_sweep_shows_the_trials_in_flight(storage):
    folder, _ = storage
    shown = json.loads(cli("status", "live", "--storage", str(folder), "--json")[1])
    assert shown["state"] == "running" and shown["note"] == ""
    assert (shown["done"], shown["running"], shown["pending"]) == (5, 2, 3)
    assert shown["eta_s"] is not None and shown["eta_s"] > 0
    in_flight = [r for r in shown["rows"] if r["status"] == "running"]
    assert {r["name"].rsplit("-", 1)[1] for r in in_flight} == {"aaaa0001", "aaaa0002"}
    assert all((r["step"], r["steps"]) == (500, 1500) for r in in_flight)


def test_status_after_the_driver_died_says_so_and_how_to_resume(storage):
    folder, running = storage
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    running.driver = f"{this_driver().rsplit(':', 1)[0]}:{dead.pid}"
    running.save()
    try:
        code, text = cli("status", "live", "--storage", str(folder))
        assert code == 0
        assert "live: interrupted (its driver" in text and "died" in text
        assert f"gansweep resume live --storage {folder}" in text
        shown = json.loads(cli("status", "live", "--storage", str(folder), "--json")[1])
        assert shown["state"] == "interrupted" and shown["running"] == 0
        assert {r["status"] for r in shown["rows"] if r["step"] == 500} >= {"interrupted"}
    finally:
        running.driver = this_driver()
        running.save()


def test_ls_lists_every_sweep_with_its_state(storage):
    folder, _ = storage
    code, out = cli("ls", "--storage", str(folder), "--json")
    assert code == 0, out
    listed = {s["name"]: s for s in json.loads(out)}
    assert set(listed) == {"done", "live"}
    assert listed["done"]["state"] == "finished" and listed["live"]["state"] == "running"
    assert (listed["live"]["done"], listed["live"]["planned"]) == (5, 10)
    code, text = cli("ls", "--storage", str(folder))
    assert code == 0
    assert "done" in text and "12/12" in text and "5/10" in text
    assert listed["done"]["best"]["combination"] in text


def test_ls_of_an_empty_folder(tmp_path):
    code, out = cli("ls", "--storage", str(tmp_path))
    assert code == 0 and "no sweeps in" in out


def test_replicas_started_inside_the_search_show_in_its_phase(tmp_path):
    """Under ASHA a config's replicas start while the search's last trials run
    (platform/backfill.py): the sweep has no replication plan yet, but replicas run."""
    live = synthetic.make_sweep(tmp_path, 4, name="both", status="running", failed=0.0)
    live.options.update(num_samples=4, replicate_top=1, seeds=2)
    live.driver = this_driver()
    live.save()
    folder = str(tmp_path / "sweeps")
    assert json.loads(cli("status", "both", "--storage", folder, "--json")[1])["phase"] == "search"

    best = standings(live).trials.iloc[0]
    cfg = TrialConfig(dataset="ring8", steps=1500, eval_every=500, seed=1)
    replica = TrialIdentity(live.records, "cccc0001", cfg.combination, str(best["trial_id"]))
    TrialRun(replica, cfg.model_dump()).log_evaluation(
        {"distance": 0.05, "step": 500.0, "diverged": 0.0}, 500, []
    )
    shown = json.loads(cli("status", "both", "--storage", folder, "--json")[1])
    assert shown["phase"] == "search + replication"
    assert (shown["replicas_planned"], shown["replicas_done"]) == (2, 0)
