"""Every sampler a sweep can name drives a built-in space through real Optuna studies; the
grid sampler runs each combination once in a real sweep; the model-based samplers start
modelling within the budget."""

import json
import os
import subprocess
import sys

import mlflow
import optuna
import pytest

from gansweep.platform.samplers import SAMPLERS, startup_trials
from gansweep.platform.sweep_input import SweepOptions, prepare
from gansweep.platform.views import sweep_header
from gansweep.search_spaces import load_space


@pytest.mark.parametrize("name", sorted(set(SAMPLERS) - {"grid"}))
def test_every_sampler_proposes_configs_inside_the_space(name):
    space = load_space("seed_paper")
    study = optuna.create_study(sampler=SAMPLERS[name].build(0, 8))
    for _ in range(6):
        trial = study.ask()
        config = space.sample_config(trial)
        for param in space.params:
            value = getattr(config, param.name)
            if not param.active({**config.model_dump()}):
                continue
            if param.kind == "choice":
                assert value in param.choices, (param.name, value)
            else:
                assert param.low <= value <= param.high, (param.name, value)
        study.tell(trial, float(config.lr_g))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 6


def test_grid_visits_every_combination_of_a_discrete_space(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("params:\n  loss: {choice: [ns, hinge]}\n  n_critic: {int: [1, 3]}\n")
    space = load_space(path)
    study = optuna.create_study(sampler=SAMPLERS["grid"].build(0, 6))
    seen = set()
    for i in range(space.grid_size()):
        trial = study.ask()
        config = space.sample_config(trial)
        seen.add((config.loss, config.n_critic))
        if i < space.grid_size() - 1:
            study.tell(trial, 0.0)
        else:  # the sampler stops the study after the last combination; Ray logs this
            with pytest.raises(RuntimeError, match="Study.stop"):
                study.tell(trial, 0.0)
    assert seen == {(loss, n) for loss in ("ns", "hinge") for n in (1, 2, 3)}


def test_a_grid_sweep_asked_for_more_trials_than_combinations_runs_each_once(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text(
        "fixed: {steps: 40, eval_every: 20, eval_samples: 200}\n"
        "params:\n  loss: {choice: [ns, hinge]}\n  optimizer: {choice: [adam, rmsprop]}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--space", str(path),
         "--name", "g", "--sampler", "grid", "--num-samples", "10", "--scheduler", "fifo",
         "--replicate-top", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=400,
        env={**os.environ, "RAY_ADDRESS": ""},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    # The header and its note agree on how many trials run.
    assert "sweep 'g': space 'grid', 4 trials" in proc.stdout
    assert "note: space 'grid' has 4 combinations: running 4 trials, not 10" in proc.stdout
    manifest = json.loads((tmp_path / "sweeps" / "g" / "gansweep.json").read_text())
    runs = mlflow.MlflowClient(manifest["tracking_uri"]).search_runs(
        [manifest["experiment_id"]], filter_string="tags.`gansweep.role` = 'trial'"
    )
    combinations = sorted((r.data.params["loss"], r.data.params["optimizer"]) for r in runs)
    assert combinations == [("hinge", "adam"), ("hinge", "rmsprop"), ("ns", "adam"),
                            ("ns", "rmsprop")]  # fmt: skip


def test_prepare_fits_a_grid_sweep_to_its_combinations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "grid.yaml"
    path.write_text("params:\n  loss: {choice: [ns, hinge]}\n")
    prepared = prepare(SweepOptions(space=str(path), sampler="grid", num_samples=10))
    assert prepared.options.num_samples == 2
    header = sweep_header(prepared)
    assert "space 'grid', 2 trials" in header
    assert header.endswith("note: space 'grid' has 2 combinations: running 2 trials, not 10")
    exact = SweepOptions(space=str(path), sampler="grid", num_samples=2)
    assert "note" not in sweep_header(prepare(exact))


def _proposals(sampler: optuna.samplers.BaseSampler, n: int) -> list[tuple[float, float]]:
    study = optuna.create_study(sampler=sampler)
    points = []
    for _ in range(n):
        trial = study.ask()
        x, y = trial.suggest_float("x", 0, 1), trial.suggest_float("y", 0, 1)
        study.tell(trial, (x - 0.3) ** 2 + (y - 0.7) ** 2)
        points.append((x, y))
    return points


@pytest.mark.parametrize("name", ["tpe", "gp"])
@pytest.mark.parametrize(("budget", "startup"), [(8, 2), (20, 5)])
def test_model_based_samplers_start_modelling_after_a_quarter_of_the_budget(name, budget, startup):
    """Before modelling, TPE and GP propose what Optuna's random sampler with the same
    seed proposes; the first proposal after that comes from the model."""
    random = _proposals(optuna.samplers.RandomSampler(seed=0), startup + 1)
    modelled = _proposals(SAMPLERS[name].build(0, budget), startup + 1)
    assert modelled[:startup] == random[:startup]
    assert modelled[startup] != random[startup]
    assert startup_trials(budget) == startup
