"""Every sampler a sweep can name drives a built-in space through real Optuna studies."""

import optuna
import pytest

from gansweep.platform.sweep import SAMPLERS, SweepOptions, prepare, startup_trials
from gansweep.search_spaces import load_space


@pytest.mark.parametrize("name", sorted(set(SAMPLERS) - {"grid"}))
def test_every_sampler_proposes_valid_configs(name):
    space = load_space("seed_paper")
    study = optuna.create_study(sampler=SAMPLERS[name](0, 8))
    for _ in range(6):
        trial = study.ask()
        config = space.sample_config(trial)
        study.tell(trial, float(config.lr_g))


def test_grid_visits_every_combination_of_a_discrete_space(tmp_path):
    path = tmp_path / "grid.yaml"
    path.write_text("params:\n  loss: {choice: [ns, hinge]}\n  n_critic: {int: [1, 3]}\n")
    space = load_space(path)
    study = optuna.create_study(sampler=SAMPLERS["grid"](0, 6))
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


def test_a_grid_sweep_runs_each_combination_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "grid.yaml"
    path.write_text("params:\n  loss: {choice: [ns, hinge]}\n")
    prepared = prepare(SweepOptions(space=str(path), sampler="grid", num_samples=10))
    assert prepared.options.num_samples == 2


@pytest.mark.parametrize(("budget", "startup"), [(4, 2), (8, 2), (20, 5), (100, 10)])
def test_model_based_samplers_start_modelling_within_the_budget(budget, startup):
    assert startup_trials(budget) == startup
    assert SAMPLERS["tpe"](0, budget)._n_startup_trials == startup
