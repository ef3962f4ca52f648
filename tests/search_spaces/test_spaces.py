"""Search spaces: every built-in space samples valid configs; bad spaces fail with clear errors."""

import optuna
import pytest

from gansweep.search_spaces import (
    BUILTIN_SPACES,
    Param,
    SearchSpace,
    SearchSpaceError,
    load_space,
    parse_space,
)
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.losses import LOSSES

optuna.logging.set_verbosity(optuna.logging.WARNING)

SAMPLES = 200


def new_study(seed: int = 0) -> optuna.Study:
    return optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))


def condition_holds(param: Param, config: TrialConfig) -> bool:
    return all(getattr(config, key) in allowed for key, allowed in param.when.items())


# ------------------------------------------------------------------------ built-in spaces


def test_the_builtin_spaces_are_found():
    assert {"quick", "seed_paper", "landscape", "digits"} <= set(BUILTIN_SPACES)


@pytest.mark.parametrize("name", sorted(BUILTIN_SPACES))
def test_builtin_space_samples_valid_configs(name):
    space = load_space(name)
    assert space.name == name
    assert space.description and "\n" not in space.description
    assert space.source == BUILTIN_SPACES[name].read_text()
    study = new_study()
    seen: dict[str, set] = {p.name: set() for p in space.params}
    for _ in range(SAMPLES):
        trial = study.ask()
        config = space.sample_config(trial)
        for key, value in space.fixed.items():
            assert getattr(config, key) == value
        for param in space.params:
            # sampled exactly when its condition holds; otherwise the TrialConfig default
            assert (param.name in trial.params) == condition_holds(param, config), param.name
            if param.name in trial.params:
                value = trial.params[param.name]
                assert getattr(config, param.name) == value
                seen[param.name].add(value)
                if param.kind == "choice":
                    assert value in param.choices
                else:
                    assert param.low <= value <= param.high
            else:
                assert getattr(config, param.name) == TrialConfig.model_fields[param.name].default
        study.tell(trial, 0.0)
    # 200 random samples reach every choice of every param
    for param in space.params:
        assert seen[param.name], f"{param.name} never sampled"
        if param.kind == "choice":
            assert seen[param.name] == set(param.choices)


def test_landscape_conditions():
    space = load_space("landscape")
    study = new_study(seed=1)
    for _ in range(SAMPLES):
        trial = study.ask()
        space.define(trial)
        params = trial.params
        assert ("beta1" in params) == ("beta2" in params) == (params["optimizer"] == "adam")
        assert ("momentum" in params) == (params["optimizer"] == "sgd")
        # A gradient penalty is never sampled with batch norm in D (wrong per-sample
        # gradients through the batch statistics); then the penalty stays none.
        assert ("penalty" in params) == (params["d_norm"] != "batch")
        penalty = params.get("penalty", "none")
        assert ("penalty_weight" in params) == (penalty != "none")
        assert params["n_critic"] in range(1, 6)
        study.tell(trial, 0.0)


def test_define_returns_the_fixed_values_and_sample_merges_them():
    space = load_space("quick")
    trial = new_study().ask()
    returned = space.define(trial)
    assert returned == space.fixed
    assert returned is not space.fixed  # callers may mutate what they get
    assert {"loss", "penalty", "n_critic", "lr_g", "lr_d"} <= set(trial.params)


def test_a_step_int_param_and_a_fixed_key_condition(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(
        "fixed: {dataset: digits, architecture: dcgan}\n"
        "params:\n"
        "  n_critic: {int: [1, 7], step: 3}\n"
        "  augment: {choice: [none, translation], when: {dataset: [digits]}}\n"
        "  lr_g: {loguniform: [1e-4, 1e-2]}\n"  # PyYAML alone would read these as text
    )
    space = load_space(path)
    assert space.name == "mine"
    assert space.params[2].low == pytest.approx(1e-4)
    study = new_study()
    critics = set()
    for _ in range(50):
        trial = study.ask()
        config = space.sample_config(trial)
        critics.add(config.n_critic)
        assert "augment" in trial.params
        study.tell(trial, 0.0)
    assert critics == {1, 4, 7}


# ------------------------------------------------------------------------- discrete spaces


@pytest.mark.parametrize(
    ("params", "discrete"),
    [
        ("loss: {choice: [ns, wgan]}\n  n_critic: {int: [1, 5]}", True),
        ("loss: {choice: [ns, wgan]}", True),
        ("loss: {choice: [ns, wgan]}\n  lr_g: {loguniform: [1.0e-4, 1.0e-3]}", False),
        ("beta1: {uniform: [0.0, 0.5]}", False),
    ],
)
def test_is_discrete(params, discrete):
    assert parse_space(f"params:\n  {params}\n").is_discrete is discrete


def test_builtin_spaces_are_continuous():
    assert not any(load_space(name).is_discrete for name in BUILTIN_SPACES)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_grid_search_visits_every_combination_once():
    space = parse_space(
        "params:\n"
        "  loss: {choice: [ns, wgan]}\n"
        "  penalty: {choice: [none, gp]}\n"
        "  penalty_weight: {choice: [1.0, 10.0], when: {penalty: [gp]}}\n"
        "  n_critic: {int: [1, 5], step: 2}\n"
    )
    assert space.is_discrete
    # (ns|wgan) x (none + gp x 2 weights) x n_critic in {1, 3, 5}
    assert space.grid_size() == 2 * 3 * 3
    study = optuna.create_study(sampler=optuna.samplers.BruteForceSampler(seed=0))
    seen = set()
    for i in range(space.grid_size()):
        trial = study.ask()
        seen.add(tuple(sorted(space.sample(trial).items())))
        if i < space.grid_size() - 1:
            # (telling the last one makes the sampler call study.stop(), which raises
            # outside study.optimize: an ask/tell driver such as Ray's must allow for it)
            study.tell(trial, 0.0)
    assert len(seen) == 18


def test_grid_size_refuses_a_continuous_space():
    with pytest.raises(SearchSpaceError, match="not discrete \\(continuous: lr_g\\)"):
        parse_space("params:\n  lr_g: {uniform: [0.001, 0.01]}\n").grid_size()


# ----------------------------------------------------------------------------- bad spaces

VALID_LOSSES = ", ".join(LOSSES)

BAD_SPACES = {
    "malformed YAML": ("params: {loss: [ns\n", "not valid YAML"),
    "top level is a list": ("- loss\n- lr_g\n", "a search space is a mapping with keys"),
    "empty file": ("", "got an empty file"),
    "unknown top-level key": (
        "parms:\n  loss: {choice: [ns]}\n",
        "bad.yaml:1: parms: unknown top-level key; valid: description, fixed, params",
    ),
    "no params": ("fixed: {steps: 10}\n", "params: a search space needs a mapping of at least"),
    "unknown parameter": (
        "params:\n  lr: {loguniform: [1.0e-4, 1.0e-3]}\n",
        "bad.yaml:2: params.lr: unknown parameter; valid: dataset, data_path",
    ),
    "unknown fixed key": (
        "fixed:\n  stepz: 100\nparams:\n  loss: {choice: [ns]}\n",
        "bad.yaml:2: fixed.stepz: unknown TrialConfig field; valid: dataset",
    ),
    "fixed value refused": (
        "fixed:\n  steps: 0\nparams:\n  loss: {choice: [ns]}\n",
        "bad.yaml:2: fixed.steps: Input should be greater than or equal to 1 (got 0)",
    ),
    "fixed values clash": (
        "fixed: {dataset: ring8, architecture: dcgan}\nparams:\n  loss: {choice: [ns]}\n",
        "bad.yaml:1: fixed: values do not validate together: config: architecture 'dcgan' "
        "does not take vector data (dataset 'ring8'); valid: mlp",
    ),
    "both fixed and param": (
        "fixed: {loss: ns}\nparams:\n  loss: {choice: [ns, wgan]}\n",
        "params.loss: is also a fixed key",
    ),
    "two kinds": (
        "params:\n  lr_g: {uniform: [0.1, 0.2], loguniform: [0.1, 0.2]}\n",
        "params.lr_g: needs exactly one of choice, uniform, loguniform, int "
        "(got uniform, loguniform)",
    ),
    "no kind": (
        "params:\n  lr_g: {range: [0.1, 0.2]}\n",
        "params.lr_g.range: unknown key; valid: choice, uniform, loguniform, int, step, when",
    ),
    "empty choice": (
        "params:\n  loss: {choice: []}\n",
        "params.loss.choice: needs a non-empty list of values, e.g. ['ns']",
    ),
    "unknown choice": (
        "params:\n  loss:\n    choice:\n      - ns\n      - wgan-gp\n",
        f"bad.yaml:5: params.loss.choice.1: unknown loss 'wgan-gp'; valid: {VALID_LOSSES}",
    ),
    "inverted range": (
        "params:\n  lr_g: {loguniform: [3.0e-3, 1.0e-4]}\n",
        "bad.yaml:2: params.lr_g.loguniform: empty or inverted range: low 0.003 must be < "
        "high 0.0001",
    ),
    "empty range": (
        "params:\n  beta1: {uniform: [0.5, 0.5]}\n",
        "params.beta1.uniform: empty or inverted range",
    ),
    "loguniform from zero": (
        "params:\n  weight_decay_d: {loguniform: [0.0, 1.0e-3]}\n",
        "params.weight_decay_d.loguniform: loguniform needs low > 0 (got 0.0)",
    ),
    "endpoint refused": (
        "params:\n  beta1: {uniform: [0.0, 1.0]}\n",
        "params.beta1.uniform: Input should be less than 1 (got 1.0)",
    ),
    "negative learning rate": (
        "params:\n  lr_g: {uniform: [-1.0, 1.0]}\n",
        "params.lr_g.uniform: Input should be greater than 0 (got -1.0)",
    ),
    "int range of floats": (
        "params:\n  n_critic: {int: [1, 5.5]}\n",
        "params.n_critic.int: int bounds must be integers (got [1, 5.5])",
    ),
    "float range on an int field": (
        "params:\n  n_critic: {uniform: [1, 5]}\n",
        "params.n_critic.uniform: n_critic takes int values, not floats; use int or choice",
    ),
    "zero step": (
        "params:\n  n_critic: {int: [1, 5], step: 0}\n",
        "params.n_critic.step: step must be a positive integer (got 0)",
    ),
    "step does not divide the range": (
        "params:\n  n_critic: {int: [1, 6], step: 2}\n",
        "params.n_critic.step: high - low = 5 is not a multiple of step 2; e.g. [1, 5]",
    ),
    "step on a float": (
        "params:\n  beta1: {uniform: [0.0, 0.5], step: 0.1}\n",
        "params.beta1.step: step is for int params, not uniform",
    ),
    "condition on a later param": (
        "params:\n  beta1: {uniform: [0.0, 0.9], when: {optimizer: [adam]}}\n"
        "  optimizer: {choice: [adam, sgd]}\n",
        "bad.yaml:2: params.beta1.when.optimizer: optimizer is defined below this param; "
        "move it above; a condition may name: none",
    ),
    "condition on a field that is neither fixed nor sampled": (
        "params:\n  loss: {choice: [ns]}\n"
        "  beta1: {uniform: [0.0, 0.9], when: {optimizer: [adam]}}\n",
        "params.beta1.when.optimizer: optimizer is not a fixed key or a param defined above "
        "this one; a condition may name: loss",
    ),
    "condition on an unknown key": (
        "fixed: {steps: 100}\nparams:\n  loss: {choice: [ns]}\n"
        "  beta1: {uniform: [0.0, 0.9], when: {optimiser: [adam]}}\n",
        "params.beta1.when.optimiser: unknown key; a condition may name: steps, loss",
    ),
    "impossible condition value": (
        "params:\n  optimizer: {choice: [adam, rmsprop]}\n"
        "  beta1: {uniform: [0.0, 0.9], when: {optimizer: [adamw]}}\n",
        "params.beta1.when.optimizer: 'adamw' is not a possible value of optimizer; "
        "possible: 'adam', 'rmsprop'",
    ),
    "condition value not the fixed value": (
        "fixed: {dataset: ring8}\nparams:\n  loss: {choice: [ns], when: {dataset: [digits]}}\n",
        "params.loss.when.dataset: 'digits' is not a possible value of dataset; "
        "possible: 'ring8' (fixed)",
    ),
    "values that clash when combined": (
        "params:\n  architecture: {choice: [mlp, dcgan]}\n",
        "params: sampled values do not validate together (architecture='dcgan'): config: "
        "architecture 'dcgan' does not take vector data (dataset 'ring8'); valid: mlp",
    ),
    "pac that does not divide the batch": (
        "fixed: {batch_size: 256}\nparams:\n  pac: {choice: [1, 3]}\n",
        "params: sampled values do not validate together (pac=3): config: pac 3 does not "
        "divide batch_size 256 (D judges packs of pac samples); valid pac for this "
        "batch_size: 1, 2, 4, or a batch_size that is a multiple of 3",
    ),
    "pac out of range": (
        "params:\n  pac: {int: [1, 5]}\n",
        "bad.yaml:2: params.pac.int: Input should be less than or equal to 4 (got 5)",
    ),
    "unknown schedule": (
        "params:\n  lr_schedule: {choice: [constant, step]}\n",
        "params.lr_schedule.choice.1: unknown lr_schedule 'step'; valid: constant, linear, cosine",
    ),
    "floor above the base rate": (
        "params:\n  lr_floor: {uniform: [0.0, 1.5]}\n",
        "params.lr_floor.uniform: Input should be less than or equal to 1 (got 1.5)",
    ),
    "description on two lines": (
        "description: |\n  one\n  two\nparams:\n  loss: {choice: [ns]}\n",
        "bad.yaml:1: description: must be one line of text",
    ),
    "duplicate key": (
        "params:\n  loss: {choice: [ns]}\n  loss: {choice: [wgan]}\n",
        "bad.yaml:3: params.loss: key given twice",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SPACES))
def test_bad_space_is_refused_with_a_clear_message(case, tmp_path):
    text, fragment = BAD_SPACES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SearchSpaceError) as info:
        load_space(path)
    assert fragment in str(info.value)


def test_every_problem_is_reported_at_once():
    with pytest.raises(SearchSpaceError) as info:
        parse_space(
            "params:\n  loss: {choice: [ns, nope]}\n  lr_g: {loguniform: [0.1, 0.01]}\n",
            origin="two.yaml",
        )
    assert info.value.problems == [
        f"two.yaml:2: params.loss.choice.1: unknown loss 'nope'; valid: {VALID_LOSSES} "
        "(got 'nope')",
        "two.yaml:3: params.lr_g.loguniform: empty or inverted range: low 0.1 must be < high 0.01",
    ]


def test_unknown_space_name_lists_the_builtin_spaces():
    with pytest.raises(SearchSpaceError) as info:
        load_space("quik")
    assert f"built-in: {', '.join(BUILTIN_SPACES)}" in str(info.value)


# --------------------------------------------------------------------------- Ray's searcher


def test_define_works_as_the_space_of_rays_optuna_search():
    """OptunaSearch with a callable space sets up its study in __init__ when metric and mode
    are given, so suggest() needs neither set_search_properties nor a running Ray."""
    ray = pytest.importorskip("ray")
    optuna_search = pytest.importorskip("ray.tune.search.optuna")
    space = load_space("landscape")
    searcher = optuna_search.OptunaSearch(
        space=space.define,
        metric="distance",
        mode="min",
        sampler=optuna.samplers.RandomSampler(seed=0),
    )
    for i in range(5):
        config = searcher.suggest(f"trial_{i}")
        for key, value in space.fixed.items():
            assert config[key] == value
        assert {"loss", "penalty", "d_norm", "optimizer", "lr_g", "lr_d", "n_critic"} <= set(config)
        assert ("beta1" in config) == (config["optimizer"] == "adam")
        TrialConfig(**config)
    assert not ray.is_initialized()  # suggest() ran on the driver alone


def test_searchspace_is_a_frozen_value():
    space = load_space("quick")
    assert isinstance(space, SearchSpace)
    with pytest.raises(AttributeError):
        space.name = "other"  # type: ignore[misc]


PACKED_AND_SCHEDULED = """
fixed: {batch_size: 240, steps: 1000}
params:
  pac: {int: [1, 4]}
  lr_schedule: {choice: [constant, linear, cosine]}
  lr_floor: {uniform: [0.0, 0.2], when: {lr_schedule: [linear, cosine]}}
  lr_warmup: {int: [0, 200], step: 100}
"""


def test_packing_and_schedules_are_searchable_axes():
    """Every value of the new axes samples, the floor only where a schedule decays, and
    the configs differing in a chosen axis have different combination names."""
    space = parse_space(PACKED_AND_SCHEDULED)
    study = new_study()
    seen: dict[str, set] = {"pac": set(), "lr_schedule": set(), "lr_warmup": set()}
    names: dict[tuple, str] = {}
    for _ in range(SAMPLES):
        trial = study.ask()
        config = space.sample_config(trial)
        for key in seen:
            seen[key].add(getattr(config, key))
        assert ("lr_floor" in trial.params) == (config.lr_schedule != "constant")
        names[(config.pac, config.lr_schedule, config.lr_warmup)] = config.combination
        study.tell(trial, 0.0)
    assert seen == {"pac": {1, 2, 3, 4}, "lr_schedule": {"constant", "linear", "cosine"},
                    "lr_warmup": {0, 100, 200}}  # fmt: skip
    assert len(set(names.values())) == len(names) == 4 * 3 * 3


def test_a_space_that_could_sample_a_penalty_through_batch_norm_is_refused():
    text = "params:\n  d_norm: {choice: [batch, layer]}\n  penalty: {choice: [gp, r1]}\n"
    with pytest.raises(SearchSpaceError, match="with d_norm='batch' gives wrong per-sample"):
        parse_space(text)
    # Conditioned on the normalization, as the landscape space does, it loads.
    guarded = text.replace("{choice: [gp, r1]}", "{choice: [gp, r1], when: {d_norm: [layer]}}")
    assert [p.name for p in parse_space(guarded).params] == ["d_norm", "penalty"]
