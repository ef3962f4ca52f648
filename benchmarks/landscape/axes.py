"""What the recorded landscape says about each axis of its space.

    python benchmarks/landscape/axes.py [TABLE]

For every axis of the space and each of its values, over the configs with that value
(a conditional axis: among the configs where it was searched): how many, the median and
the best true quality (the config's `distance` at full budget, averaged over its
recorded seeds) with a bootstrap 95 % interval of the median
(gansweep.dashboards.axis_effects), the share that keep all 8 modes on every recorded
seed, and the mean training core-seconds (CPU) of one trial. One JSON line per (axis,
value); then one per axis (its winner, runner-up, and whether the winner is clear: the
two intervals do not overlap); then Optuna's importances (PED-ANOVA) on a study of every
config with its true quality; then the 5 best configs.
"""

from __future__ import annotations

import json
import sys

import optuna
import pandas as pd
from optuna.distributions import CategoricalDistribution
from replay import TABLE, Landscape, plain

from gansweep.dashboards.axis_effects import axis_effects
from gansweep.search_spaces import SearchSpace, load_space

SPACE = TABLE.with_name("ring8_space.yaml")


def per_config(landscape: Landscape) -> pd.DataFrame:
    """One row per config: its searched fields, true quality, modes on its worst seed,
    mean core-seconds per trial, and how many seeds were recorded."""
    frame = landscape.frame
    last = frame.sort_values("step").groupby(["config_id", "seed"]).tail(1)
    fields = [f for f in landscape.fields if f != "seed"]
    searched = [f for f in fields if frame[f].nunique(dropna=False) > 1]
    grouped = last.groupby("config_id")
    out = grouped[searched].first()
    out["combination"] = grouped["combination"].first()
    out["distance"] = grouped["distance"].mean()
    out["worst_modes"] = grouped["modes_captured"].min()
    out["high_quality"] = grouped["high_quality"].mean()
    out["core_s"] = grouped["train_cpu_seconds"].mean()
    out["seeds"] = grouped.size()
    out.attrs["searched"] = searched
    return out


def rounded(value: float) -> float | None:
    """4 decimals; None for NaN (an axis with one value has no runner-up), as JSON has no NaN."""
    return plain(round(float(value), 4))


def importances(configs: pd.DataFrame, space: SearchSpace) -> dict[str, float]:
    """Optuna's PED-ANOVA importances on a study holding every config once, with its true
    quality as its value: what a sweep's report shows, for the whole landscape."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # stdout is the JSON lines only
    study = optuna.create_study(direction="minimize")
    for _, row in configs.iterrows():
        # Only the params active in this config, as Optuna's define-by-run records them;
        # the landscape's space is all `choice`, so each is one CategoricalDistribution.
        active = [p for p in space.params if p.active(row)]
        study.add_trial(
            optuna.trial.create_trial(
                params={p.name: plain(row[p.name]) for p in active},
                distributions={p.name: CategoricalDistribution(p.choices) for p in active},
                value=float(row["distance"]),
            )
        )
    evaluator = optuna.importance.PedAnovaImportanceEvaluator()
    return optuna.importance.get_param_importances(study, evaluator=evaluator)


def main() -> None:
    table = sys.argv[1] if len(sys.argv) > 1 else TABLE
    configs = per_config(Landscape.read(table))
    space = load_space(str(SPACE))
    effects = axis_effects(configs, space, "distance", lower_is_better=True)
    values = effects.values.set_index(["axis", "value"])
    for param in space.params:
        # A conditional axis counts only the configs where it was searched (a config
        # without a penalty keeps the default penalty_weight, which it never used).
        active = configs[[param.active(row) for _, row in configs.iterrows()]]
        for value, group in active.groupby(param.name, dropna=False):
            axis = param.name
            mine = values.loc[(axis, plain(value))]
            assert mine["count"] == len(group), (axis, value)  # the same configs
            print(
                json.dumps(
                    {
                        "axis": axis,
                        "value": plain(value),
                        "configs": len(group),
                        "distance_median": round(float(group["distance"].median()), 4),
                        "distance_median_95": [rounded(mine["low"]), rounded(mine["high"])],
                        "distance_best": round(float(group["distance"].min()), 4),
                        "all_modes_share": round(float((group["worst_modes"] >= 8).mean()), 3),
                        "core_s_mean": round(float(group["core_s"].mean()), 1),
                    }
                )
            )
    for axis in effects.axes.itertuples():
        print(
            json.dumps(
                {
                    "axis": axis.axis,
                    "winner": plain(axis.winner),
                    "winner_median_95": [rounded(axis.winner_low), rounded(axis.winner_high)],
                    "runner_up": plain(axis.runner_up),
                    "runner_up_median_95": [
                        rounded(axis.runner_up_low),
                        rounded(axis.runner_up_high),
                    ],
                    "clear": bool(axis.clear),
                }
            )
        )
    ranked = importances(configs, space)
    print(json.dumps({"importance_ped_anova": {k: round(v, 3) for k, v in ranked.items()}}))
    best = configs.sort_values("distance").head(5)
    for config_id, row in best.iterrows():
        print(json.dumps({"best": int(config_id), **{k: plain(v) for k, v in row.items()}}))


if __name__ == "__main__":
    main()
