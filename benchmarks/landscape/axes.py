"""What the recorded landscape says about each axis of its space.

    python benchmarks/landscape/axes.py [TABLE]

For every axis of the space and each of its values, over the configs with that value
(a conditional axis: among the configs where it was searched): how many, the median and
the best true quality (the config's `distance` at full budget, averaged over its
recorded seeds), the share that keep all 8 modes on every recorded seed, and the mean
training core-seconds (CPU) of one trial. One JSON line per (axis, value); then the 5
best configs.
"""

from __future__ import annotations

import json
import sys

import pandas as pd
from replay import TABLE, Landscape, plain

from gansweep.search_spaces import load_space

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


def main() -> None:
    table = sys.argv[1] if len(sys.argv) > 1 else TABLE
    configs = per_config(Landscape.read(table))
    space = load_space(str(SPACE))
    for param in space.params:
        # A conditional axis counts only the configs where it was searched (a config
        # without a penalty keeps the default penalty_weight, which it never used).
        active = configs[[param.active(row) for _, row in configs.iterrows()]]
        for value, group in active.groupby(param.name, dropna=False):
            axis = param.name
            print(
                json.dumps(
                    {
                        "axis": axis,
                        "value": plain(value),
                        "configs": len(group),
                        "distance_median": round(float(group["distance"].median()), 4),
                        "distance_best": round(float(group["distance"].min()), 4),
                        "all_modes_share": round(float((group["worst_modes"] >= 8).mean()), 3),
                        "core_s_mean": round(float(group["core_s"].mean()), 1),
                    }
                )
            )
    best = configs.sort_values("distance").head(5)
    for config_id, row in best.iterrows():
        print(json.dumps({"best": int(config_id), **{k: plain(v) for k, v in row.items()}}))


if __name__ == "__main__":
    main()
