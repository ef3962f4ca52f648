"""The contract of axis_effects: per axis and value, the marginal median with a bootstrap
interval, and whether each axis's winner is clear of its runner-up."""

import math

import numpy as np
import pandas as pd
import pytest

from gansweep.dashboards.axis_effects import AXIS_COLUMNS, VALUE_COLUMNS, axis_effects
from gansweep.search_spaces import parse_space

SPACE = parse_space(
    """
fixed: {dataset: ring8}
params:
  loss: {choice: [ns, wgan, hinge]}
  optimizer: {choice: [adam, rmsprop]}
  penalty: {choice: [none, gp]}
  penalty_weight: {loguniform: [0.1, 10.0], when: {penalty: [gp]}}
  lr_g: {loguniform: [1.0e-4, 3.0e-3]}
"""
)
EFFECT = {"ns": 0.5, "wgan": 1.5, "hinge": 1.0}  # loss matters; nothing else does


def sweep(n: int = 90, seed: int = 0) -> pd.DataFrame:
    """n trials: the loss sets the distance (noise 10 %), the optimizer does not; the
    penalty weight exists only where there is a penalty (else the default 10.0)."""
    rng = np.random.default_rng(seed)
    loss = np.array(["ns", "wgan", "hinge"])[np.arange(n) % 3]
    penalty = rng.choice(["none", "gp"], n)
    table = pd.DataFrame(
        {
            "loss": loss,
            "optimizer": rng.choice(["adam", "rmsprop"], n),
            "penalty": penalty,
            "penalty_weight": np.where(penalty == "gp", np.exp(rng.uniform(-2.3, 2.3, n)), 10.0),
            "lr_g": np.exp(rng.uniform(np.log(1e-4), np.log(3e-3), n)),
        }
    )
    table["distance"] = [EFFECT[x] for x in loss] * np.exp(rng.normal(0, 0.1, n))
    return table


def row(effects, axis):
    return effects.axes.set_index("axis").loc[axis]


def test_the_axis_that_matters_is_clear_and_the_one_that_does_not_is_not():
    table = sweep()
    effects = axis_effects(table, SPACE, "distance")
    assert list(effects.values.columns) == VALUE_COLUMNS
    assert list(effects.axes.columns) == AXIS_COLUMNS
    assert list(effects.axes["axis"]) == ["loss", "optimizer", "penalty", "penalty_weight", "lr_g"]

    loss = row(effects, "loss")
    assert (loss["winner"], loss["runner_up"], loss["clear"]) == ("ns", "hinge", True)
    ns = table.loc[table["loss"] == "ns", "distance"]
    assert loss["winner_median"] == pytest.approx(ns.median())
    assert loss["winner_low"] <= ns.median() <= loss["winner_high"]
    assert loss["winner_high"] < loss["runner_up_low"]
    assert not row(effects, "optimizer")["clear"]

    by_value = effects.values.set_index(["axis", "value"])
    assert list(by_value.loc["loss"].index) == ["ns", "wgan", "hinge"]  # the space's order
    assert by_value.loc[("loss", "wgan"), "count"] == 30
    assert by_value.loc[("loss", "wgan"), "best"] == pytest.approx(
        table.loc[table["loss"] == "wgan", "distance"].min()
    )


def test_higher_is_better_mirrors_lower_is_better():
    table = sweep()
    lower = axis_effects(table, SPACE, "distance")
    higher = axis_effects(table.assign(distance=-table["distance"]), SPACE, "distance", False)
    assert row(higher, "loss")["winner"] == "ns" and row(higher, "loss")["clear"]
    for column in ("median", "best"):
        assert higher.values[column].to_numpy() == pytest.approx(-lower.values[column])
    assert higher.values["low"].to_numpy() == pytest.approx(-lower.values["high"])
    assert (higher.values["low"] <= higher.values["median"]).all()
    assert (higher.values["median"] <= higher.values["high"]).all()


def test_a_conditional_axis_counts_only_the_rows_where_it_is_active():
    table = sweep()
    effects = axis_effects(table, SPACE, "distance")
    active = int((table["penalty"] == "gp").sum())
    assert 0 < active < len(table)
    assert row(effects, "penalty_weight")["count"] == active
    weights = effects.values[effects.values["axis"] == "penalty_weight"]
    assert weights["count"].sum() == active
    # The inactive rows hold the default 10.0; none of them may land in the top bin.
    top = weights["value"].iloc[-1]
    assert float(top.split("–")[1]) == pytest.approx(
        float(f"{table.loc[table['penalty'] == 'gp', 'penalty_weight'].max():.3g}")
    )


def test_a_continuous_axis_is_binned_in_three_quantile_bins_and_a_few_valued_one_is_not():
    table = sweep()
    effects = axis_effects(table, SPACE, "distance")
    lr = effects.values[effects.values["axis"] == "lr_g"]
    assert row(effects, "lr_g")["binned"] and not row(effects, "loss")["binned"]
    assert list(lr["count"]) == [30, 30, 30]
    ends = [tuple(float(x) for x in label.split("–")) for label in lr["value"]]
    assert ends[0][0] == pytest.approx(float(f"{table['lr_g'].min():.3g}"))
    assert ends[-1][1] == pytest.approx(float(f"{table['lr_g'].max():.3g}"))
    assert ends[0][1] < ends[1][0] and ends[1][1] < ends[2][0]  # low to high, disjoint
    # Three numeric values are kept as they are, not binned.
    few = table.assign(lr_g=np.array([1e-4, 5e-4, 1e-3])[np.arange(len(table)) % 3])
    levels = axis_effects(few, SPACE, "distance").values
    assert sorted(levels.loc[levels["axis"] == "lr_g", "value"]) == [1e-4, 5e-4, 1e-3]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_results_count_as_the_worst(bad):
    table = sweep()
    # Two thirds of the ns trials diverge: ns, the best loss on its finite results, loses.
    ns = np.flatnonzero(table["loss"] == "ns")
    table.loc[ns[: 2 * len(ns) // 3], "distance"] = bad
    effects = axis_effects(table, SPACE, "distance")
    loss = row(effects, "loss")
    assert loss["winner"] == "hinge" and loss["runner_up"] == "wgan"
    values = effects.values.set_index(["axis", "value"])
    assert values.loc[("loss", "ns"), "count"] == len(ns)
    assert values.loc[("loss", "ns"), "median"] == math.inf
    assert math.isfinite(values.loc[("loss", "ns"), "best"])
    assert not effects.values[["median", "low", "high"]].isna().any().any()
    # Higher is better: the worst is -inf.
    flipped = axis_effects(table.assign(distance=-table["distance"]), SPACE, "distance", False)
    assert flipped.values.set_index(["axis", "value"]).loc[("loss", "ns"), "median"] == -math.inf


def test_it_is_deterministic_for_a_seed_and_the_seed_moves_the_interval():
    table = sweep(n=30)
    first = axis_effects(table, SPACE, "distance", seed=3)
    again = axis_effects(table, SPACE, "distance", seed=3)
    pd.testing.assert_frame_equal(first.values, again.values)
    pd.testing.assert_frame_equal(first.axes, again.axes)
    other = axis_effects(table, SPACE, "distance", seed=4)
    assert not np.allclose(first.values["low"], other.values["low"])
    pd.testing.assert_series_equal(first.values["median"], other.values["median"])


def test_an_axis_with_one_value_has_no_runner_up_and_a_missing_column_is_named():
    table = sweep().assign(optimizer="adam")
    optimizer = row(axis_effects(table, SPACE, "distance"), "optimizer")
    assert optimizer["winner"] == "adam" and pd.isna(optimizer["runner_up"])
    assert not optimizer["clear"] and math.isnan(optimizer["runner_up_median"])
    with pytest.raises(ValueError, match="no column 'lr_g'"):
        axis_effects(table.drop(columns="lr_g"), SPACE, "distance")


def test_an_empty_table_gives_one_row_per_axis_and_no_values():
    empty = sweep().iloc[:0]
    effects = axis_effects(empty, SPACE, "distance")
    assert effects.values.empty
    assert list(effects.axes["count"]) == [0] * 5
    assert effects.axes["winner"].isna().all()


def test_a_winner_seen_in_fewer_than_three_rows_is_never_clear():
    table = sweep()
    # Keep two ns trials: ns still wins by far, but two rows say nothing of the noise.
    table = table.drop(index=np.flatnonzero(table["loss"] == "ns")[2:])
    loss = row(axis_effects(table, SPACE, "distance"), "loss")
    assert loss["winner"] == "ns" and loss["winner_high"] < loss["runner_up_low"]
    assert not loss["clear"]
    # A third ns trial makes it clear.
    three = sweep().drop(index=np.flatnonzero(sweep()["loss"] == "ns")[3:])
    assert row(axis_effects(three, SPACE, "distance"), "loss")["clear"]
