"""`gansweep sweep` end to end with real Ray, a real MLflow store and a real Optuna
study; then export, train on the exported config, and bad input refused up front."""

import json
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest
import yaml
from typer.testing import CliRunner

from gansweep.dashboards.data import sweep_study
from gansweep.platform.cli import app

GANSWEEP = [sys.executable, "-m", "gansweep.platform.cli"]
TINY = ["--set", "steps=200", "--set", "eval_every=100", "--set", "eval_samples=500"]


def gansweep(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": ""}  # never join a cluster someone left running
    return subprocess.run(
        [*GANSWEEP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def finished_sweep(tmp_path_factory):
    """One real 4-trial sweep whose top 2 configs are replicated on 2 fresh seeds, shared
    by the checks below (it takes ~60 s)."""
    cwd = tmp_path_factory.mktemp("sweep")
    proc = gansweep(
        "sweep", "--name", "e2e", "--num-samples", "4", "--max-concurrent", "2",
        "--scheduler", "fifo", "--seed", "1", "--replicate-top", "2", "--seeds", "2", *TINY,
        cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((cwd / "sweeps" / "e2e" / "gansweep.json").read_text())
    return cwd, proc, manifest


def runs_of(manifest, role: str = "trial") -> tuple:
    """(parent runs, runs of `role`) of the sweep's experiment."""
    mlflow.set_tracking_uri(manifest["tracking_uri"])
    runs = mlflow.search_runs([manifest["experiment_id"]], output_format="list")
    parents = [r for r in runs if r.data.tags.get("gansweep.role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("gansweep.role") == role]
    return parents, children


def test_the_experiment_has_one_parent_and_one_child_per_trial(finished_sweep):
    _, _, manifest = finished_sweep
    parents, children = runs_of(manifest)
    assert [p.info.run_id for p in parents] == [manifest["parent_run_id"]]
    assert parents[0].info.status == "FINISHED"
    assert len(children) == 4
    assert len({c.data.tags["gansweep.trial_id"] for c in children}) == 4
    for child in children:
        assert child.data.tags["mlflow.parentRunId"] == manifest["parent_run_id"]
        assert child.info.status == "FINISHED"
        # Every TrialConfig field is a param, under its own name.
        from gansweep.trainables.config import TrialConfig

        assert set(TrialConfig.model_fields) <= child.data.params.keys()
        assert child.info.run_name.startswith(child.data.tags["combination"] + "-")
        assert child.data.tags["loss"] == child.data.params["loss"]
        assert child.data.tags["gansweep.sweep"] == "e2e"


def test_child_runs_hold_metrics_per_evaluation_and_artifacts(finished_sweep):
    _, _, manifest = finished_sweep
    client = mlflow.MlflowClient(manifest["tracking_uri"])
    for child in runs_of(manifest)[1]:
        history = client.get_metric_history(child.info.run_id, "distance")
        assert sorted(m.step for m in history) == [100, 200]
        assert {"modes_captured", "high_quality", "loss_d"} <= child.data.metrics.keys()
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"samples.png", "generator.pt"} <= artifacts


def test_parent_run_holds_the_space_leaderboard_and_best_config(finished_sweep):
    _, _, manifest = finished_sweep
    client = mlflow.MlflowClient(manifest["tracking_uri"])
    artifacts = {a.path for a in client.list_artifacts(manifest["parent_run_id"])}
    assert {"space.yaml", "leaderboard.csv", "best.yaml", "gansweep.json"} <= artifacts
    assert "report.html" in artifacts  # the sweep writes its report at the end
    params = client.get_run(manifest["parent_run_id"]).data.params
    assert params["num_samples"] == "4" and params["sampler"] == "tpe"


def test_the_optuna_study_has_every_trial(finished_sweep):
    cwd, _, manifest = finished_sweep
    study = sweep_study(cwd / "sweeps", "e2e")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    assert all("loss" in t.params for t in study.trials)
    assert study.metric_names == ["distance"]  # optuna-dashboard names the objective


def test_the_leaderboard_is_printed_with_where_things_are(finished_sweep):
    _, proc, _ = finished_sweep
    assert "leaderboard (top 4 of 4 trials, min)" in proc.stdout
    assert "held on every fresh seed rank first, by their worst seed" in proc.stdout
    assert "best config:" in proc.stdout and "gansweep ui" in proc.stdout


def test_the_top_configs_are_replicated_on_fresh_seeds(finished_sweep):
    """K x N replica runs under the parent, each tagged with the trial it replicates and
    its seed; the seeds are not the one that selected the configs."""
    cwd, _, manifest = finished_sweep
    _, trials = runs_of(manifest)
    _, replicas = runs_of(manifest, "replica")
    assert len(replicas) == 2 * 2
    by_trial = {t.data.tags["gansweep.trial_id"]: t for t in trials}
    sources = {r.data.tags["replica_of"] for r in replicas}
    assert len(sources) == 2 and sources <= by_trial.keys()
    for replica in replicas:
        source = by_trial[replica.data.tags["replica_of"]]
        assert replica.data.tags["mlflow.parentRunId"] == manifest["parent_run_id"]
        assert replica.data.tags["seed"] == replica.data.params["seed"]
        assert replica.data.params["seed"] in ("1", "2")  # the trials trained with seed 0
        differing = {k for k, v in replica.data.params.items() if source.data.params[k] != v}
        assert differing == {"seed"}
        assert replica.data.tags["gansweep.status"] == "finished"
        assert replica.data.metrics["step"] == 200
    saved = json.loads((cwd / "sweeps" / "e2e" / "gansweep.json").read_text())
    assert saved["replication"]["seeds"] == [1, 2] and saved["replication"]["status"] == "finished"


def test_the_replicas_ran_inside_the_search_s_tune_experiment(finished_sweep):
    """Under FIFO the replicas join the search's experiment (platform/backfill.py): its
    4 trials, then the 4 replicas, each trained to its full budget; no second experiment."""
    from ray.tune import ExperimentAnalysis

    from gansweep.records.run_format import REPLICA_KEY

    cwd, _, manifest = finished_sweep
    trials = ExperimentAnalysis(manifest["sweep_dir"]).trials
    replicas = [t for t in trials if REPLICA_KEY in t.config]
    assert len(trials) == 8 and len(replicas) == 4
    assert {(t.config[REPLICA_KEY], t.config["seed"]) for t in replicas} == {
        (trial_id, seed)
        for trial_id in manifest["replication"]["trial_ids"]
        for seed in manifest["replication"]["seeds"]
    }
    assert all(t.status == "TERMINATED" and t.last_result["step"] == 200 for t in replicas)
    assert not (cwd / "sweeps" / "e2e" / "replicas").exists()


def test_tune_logs_each_trial_s_results_as_json_only_and_each_names_its_run(finished_sweep):
    """Tune's CSV and TensorBoard copies of the results are off
    (tune_callbacks.json_results_only: they cost the driver a write per result); its
    result.json, which tune_mends reads, is kept. Every result names the trial's MLflow
    run; the last says the trial ended it."""
    from gansweep.records.run_format import RESULT_RUN_ENDED, RESULT_RUN_ID

    _, _, manifest = finished_sweep
    _, runs = runs_of(manifest)
    run_ids = {r.data.tags["gansweep.trial_id"]: r.info.run_id for r in runs}
    folders = [p.parent for p in Path(manifest["sweep_dir"]).glob("*/result.json")]
    assert len(folders) == 8  # 4 trials and their 4 replicas
    for folder in folders:
        assert not (folder / "progress.csv").exists()
        assert not list(folder.glob("events.out.tfevents*"))
        results = [json.loads(line) for line in (folder / "result.json").read_text().splitlines()]
        assert [r[RESULT_RUN_ENDED] for r in results] == [False, True]  # steps 100, 200
        assert len({r[RESULT_RUN_ID] for r in results}) == 1
        trial_id = results[0]["trial_id"]
        if trial_id in run_ids:  # a trial's own run (replicas have runs of their role)
            assert results[0][RESULT_RUN_ID] == run_ids[trial_id]


def test_export_writes_the_robust_champion_with_the_spread_its_runs_hold(finished_sweep):
    cwd, _, manifest = finished_sweep
    proc = gansweep("export", "e2e", "-o", "exported.yaml", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    exported = yaml.safe_load((cwd / "exported.yaml").read_text())
    provenance = exported["_provenance"]
    assert provenance["sweep"] == "e2e" and provenance["metric"] == "distance"

    # The stated rule, applied by hand to what MLflow holds: the worst seed, then the mean.
    _, replicas = runs_of(manifest, "replica")
    seeds: dict[str, list] = {}
    for replica in replicas:
        seeds.setdefault(replica.data.tags["replica_of"], []).append(replica.data.metrics)
    worst = {t: max(m["distance"] for m in ms) for t, ms in seeds.items()}
    mean = {t: sum(m["distance"] for m in ms) / len(ms) for t, ms in seeds.items()}
    champion = min(seeds, key=lambda t: (worst[t], mean[t]))
    assert provenance["trial_id"] == champion
    spread = provenance["replicated"]
    assert spread["seeds"] == 2 and spread["diverged_or_failed"] == 0
    values = [m["distance"] for m in seeds[champion]]
    assert spread["distance"]["worst"] == pytest.approx(max(values))
    assert spread["distance"]["mean"] == pytest.approx(sum(values) / 2)
    assert spread["distance"]["sd"] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    modes = [m["modes_captured"] for m in seeds[champion]]
    assert spread["modes_captured"]["worst"] == min(modes)
    assert spread["high_quality"]["mean"] == pytest.approx(
        sum(m["high_quality"] for m in seeds[champion]) / 2
    )
    _, trials = runs_of(manifest)
    source = next(t for t in trials if t.data.tags["gansweep.trial_id"] == champion)
    assert provenance["mlflow_run_id"] == source.info.run_id
    assert provenance["value"] == pytest.approx(source.data.metrics["distance"])
    assert exported["loss"] == source.data.params["loss"] and exported["seed"] == 0
    # The champion's newest Tune checkpoint, as Tune's own analysis of the experiment has it.
    from ray.tune import ExperimentAnalysis

    tune_trial = next(
        t for t in ExperimentAnalysis(str(cwd / "sweeps" / "e2e")).trials if t.trial_id == champion
    )
    assert provenance["checkpoint"] == str(tune_trial.checkpoint.path)

    proc = gansweep(
        "train", "exported.yaml", "--set", "steps=20", "--set", "eval_every=10",
        "--out", "retrained", cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads((cwd / "retrained" / "metrics.json").read_text())["step"] == 20


def test_export_can_register_the_generator_as_champion(finished_sweep):
    cwd, _, manifest = finished_sweep
    proc = gansweep("export", "e2e", "-o", "b.yaml", "--register", "ring8-gen", cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    client = mlflow.MlflowClient(manifest["tracking_uri"])
    version = client.get_model_version_by_alias("ring8-gen", "champion")
    exported = yaml.safe_load((cwd / "b.yaml").read_text())
    assert version.run_id == exported["_provenance"]["mlflow_run_id"]

    # The registered version is a pyfunc model that draws samples (more in
    # test_champion_model.py).
    import pandas as pd

    mlflow.set_tracking_uri(manifest["tracking_uri"])
    model = mlflow.pyfunc.load_model("models:/ring8-gen@champion")
    assert model.predict(pd.DataFrame({"num_samples": [5], "seed": [0]})).shape == (5, 2)
    assert version.tags["gansweep.sweep"] == "e2e" and "gansweep.distance.worst" in version.tags


# ------------------------------------------------------------------------ bad input


def test_an_existing_sweep_name_is_refused(finished_sweep):
    cwd, _, _ = finished_sweep
    proc = gansweep("sweep", "--name", "e2e", cwd=cwd, timeout=60)
    assert proc.returncode == 2
    assert "sweep 'e2e' already exists" in proc.stderr and "gansweep resume e2e" in proc.stderr


def test_a_warm_start_runs_an_earlier_sweep_s_top_configs_first(finished_sweep):
    """--warm-start SWEEP: the new study's first trials are the earlier leaderboard's top
    configs, in rank order; then the sampler proposes its own."""
    from gansweep.platform.warm_start import plan
    from gansweep.search_spaces import load_space

    cwd, _, _ = finished_sweep
    proc = gansweep(
        "sweep", "--name", "warm", "--num-samples", "3", "--scheduler", "fifo",
        "--replicate-top", "0", "--warm-start", "e2e", "--warm-start-top", "2", *TINY, cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "warm start: 2 configs go first: sweep 'e2e', rank 1; sweep 'e2e', rank 2" in (
        proc.stdout
    )
    quick = load_space("quick")
    earlier = plan(quick, ["e2e"], str(cwd / "sweeps"), top=2)
    assert [w.origin for w in earlier] == ["sweep 'e2e', rank 1", "sweep 'e2e', rank 2"]
    expected = [w.params for w in earlier]
    trials = sorted(sweep_study(cwd / "sweeps", "warm").trials, key=lambda t: t.number)
    assert [t.params for t in trials[:2]] == expected
    assert trials[2].params not in expected
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 3


def test_spaces_lists_the_built_in_spaces():
    from gansweep.search_spaces import BUILTIN_SPACES, load_space

    result = CliRunner().invoke(app, ["spaces"])
    assert result.exit_code == 0
    for name in BUILTIN_SPACES:
        assert f"{name:<12} {load_space(name).description}" in result.stdout


def test_a_diverging_trial_is_a_bad_finite_result_and_the_sweep_goes_on(tmp_path):
    """An absurd learning rate makes every trial diverge: each ends tagged `diverged` with
    a finite value for Optuna, the sweep completes, and export says there is no winner."""
    (tmp_path / "explode.yaml").write_text(
        "description: diverges\n"
        "fixed: {loss: wgan, optimizer: sgd, steps: 100, eval_every: 50, eval_samples: 200}\n"
        "params:\n  lr_g: {choice: [10.0]}\n  lr_d: {choice: [10.0]}\n"
    )
    proc = gansweep(
        "sweep", "--space", "explode.yaml", "--name", "boom", "--num-samples", "2",
        "--scheduler", "fifo", "--replicate-top", "0", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "sweeps" / "boom" / "gansweep.json").read_text())
    _, children = runs_of(manifest)
    assert [c.data.tags["gansweep.status"] for c in children] == ["diverged", "diverged"]
    assert all(c.data.metrics["diverged"] == 1.0 for c in children)
    study = sweep_study(tmp_path / "sweeps", "boom")
    from gansweep.trainables.metrics import DIVERGED_DISTANCE

    assert [t.value for t in study.trials] == [DIVERGED_DISTANCE, DIVERGED_DISTANCE]
    export = gansweep("export", "boom", cwd=tmp_path)
    assert export.returncode == 2 and "no trial with a finite 'distance'" in export.stderr
