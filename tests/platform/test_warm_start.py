"""--warm-start (platform/warm_start.py): an earlier study's configs projected onto a
space, enqueued in a new study and proposed first by the sweep's own searcher. The
end-to-end case, an earlier sweep as the source, is in test_sweep.py."""

import optuna
import pytest
import yaml

from gansweep.platform.options import SweepOptions
from gansweep.platform.tune_glue import optuna_searcher
from gansweep.platform.warm_start import WarmStartError, enqueue, plan
from gansweep.search_spaces import load_space
from gansweep.search_spaces.space import Param
from gansweep.trainables.config import TrialConfig

# The best config of the recorded ring8 landscape (docs/results.md).
BEST = {"loss": "hinge", "penalty": "gp", "penalty_weight": 1.0, "n_critic": 3,
        "lr_g": 2e-3, "lr_d": 1e-3}  # fmt: skip


def config_file(folder, name, **values):
    path = folder / name
    path.write_text(yaml.safe_dump(TrialConfig.from_dict(values).model_dump()))
    return str(path)


@pytest.mark.parametrize(
    ("param", "inside", "outside"),
    [
        (Param("loss", "choice", choices=("ns", "hinge")), ["ns", "hinge"], ["wgan", None, 1]),
        (Param("lr_g", "uniform", low=0.1, high=0.5), [0.1, 0.3, 0.5], [0.6, "0.3", True]),
        (Param("lr_d", "loguniform", low=1e-4, high=1e-2), [1e-4, 1e-2], [1e-5, None]),
        (Param("n_critic", "int", low=1, high=5, step=2), [1, 3, 5], [2, 6, 3.5, False]),
    ],
)
def test_a_param_holds_exactly_the_values_its_distribution_can_sample(param, inside, outside):
    assert all(param.contains(v) for v in inside)
    assert not any(param.contains(v) for v in outside)


def test_a_config_is_projected_onto_the_params_the_space_searches():
    space = load_space("quick")
    params, left_out = space.params_of({**TrialConfig().model_dump(), **BEST, "weight_clip": 0.02})
    # weight_clip is searched only for wgan without a penalty: not active here.
    assert params == BEST and left_out == []

    far = {**TrialConfig().model_dump(), **BEST, "loss": "wgan", "penalty": "none",
           "lr_g": 1e-2, "weight_clip": 0.02}  # fmt: skip
    params, left_out = space.params_of(far)
    assert left_out == ["lr_g"]  # outside [5e-4, 3e-3]: the sampler picks it
    assert params == {"loss": "wgan", "penalty": "none", "weight_clip": 0.02, "n_critic": 3,
                      "lr_d": 1e-3}  # fmt: skip


def test_the_enqueued_configs_are_proposed_first_in_order_then_the_sampler_goes_on(tmp_path):
    space = load_space("quick")
    first = config_file(tmp_path, "best.yaml", **BEST)
    second = config_file(tmp_path, "other.yaml", **{**BEST, "loss": "ns", "lr_d": 2e-3})
    # The same config twice is enqueued once.
    planned = plan(space, [first, second, first], storage=str(tmp_path), top=3)
    assert [w.params["loss"] for w in planned] == ["hinge", "ns"]

    options = SweepOptions(num_samples=8, seed=0, mode="min")
    searcher = optuna_searcher(space, options)
    study = searcher._ot_study
    assert enqueue(study, planned) == 2
    proposed = [searcher.suggest(f"t{i}") for i in range(3)]
    assert {k: proposed[0][k] for k in BEST} == BEST
    assert {k: proposed[1][k] for k in BEST} == {**BEST, "loss": "ns", "lr_d": 2e-3}
    assert {k: proposed[2].get(k) for k in BEST} not in (planned[0].params, planned[1].params)
    # A study with trials (a resumed sweep) gets nothing again.
    assert enqueue(study, planned) == 0
    assert len(study.get_trials(states=(optuna.trial.TrialState.WAITING,))) == 0


def test_a_source_that_gives_the_space_nothing_is_refused(tmp_path):
    (tmp_path / "two_losses.yaml").write_text("params:\n  loss: {choice: [ns, wgan]}\n")
    space = load_space(str(tmp_path / "two_losses.yaml"))
    hinge = config_file(tmp_path, "hinge.yaml", loss="hinge")
    with pytest.raises(WarmStartError, match="none of its configs has a value that space"):
        plan(space, [hinge], storage=str(tmp_path), top=3)
    with pytest.raises(WarmStartError, match="neither a config file nor a sweep"):
        plan(space, ["ghost"], storage=str(tmp_path), top=3)
