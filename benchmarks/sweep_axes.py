"""Which axes mattered in finished sweeps, as text: the figures of the report's section
"Which axes mattered" (the same functions, on the same trials), one markdown table per
sweep, for docs/results.md.

    python benchmarks/sweep_axes.py STORAGE NAME [STORAGE NAME ...]

Per searched axis: Optuna's importance (PED-ANOVA, the study's completed trials), the
winning value and the runner-up, each with its marginal median of the sweep's metric and
a bootstrap 95 % interval of that median, and the verdict (clear: the two intervals do
not overlap). The trials are the report's (gansweep.dashboards.sections_axes): those
that reached their full budget when at least 5 did, else every ended trial.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from gansweep.dashboards.data import gather
from gansweep.dashboards.sections_axes import effects_of, verdict
from gansweep.dashboards.sections_search import param_importances
from gansweep.records.manifest import Manifest


def _number(value: float) -> str:
    """As the report writes a median or an interval end (inf: half the trials diverged)."""
    return "diverged" if math.isinf(value) else f"{value:.3g}"


def _cell(row: dict[str, Any], role: str) -> str:
    value = row[role]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):  # an unbinned numeric axis: a few distinct values
        value = f"{value:.3g}"
    median, low, high = (_number(row[f"{role}_{k}"]) for k in ("median", "low", "high"))
    return f"{value}: {median} [{low}, {high}]"


def table(storage: str, name: str) -> str:
    """The markdown table of one sweep, under a line saying which trials it uses."""
    data = gather(Manifest.load(storage, name))
    if data.space is None:
        return f"{name}: {data.space_note}"
    found = effects_of(data, data.space)
    if found is None:
        return f"{name}: no trial has ended with a result yet"
    effects, which = found
    importances, why = param_importances(data)
    lines = [
        f"{name}: {data.metric} ({'lower' if data.lower_is_better else 'higher'} is better), "
        f"from {which}" + ("" if importances is not None else f"; no importances: {why}"),
        "",
        "| axis | importance | winner: median [95 %] | runner-up: median [95 %] | verdict |",
        "| --- | --- | --- | --- | --- |",
    ]
    axes = effects.axes.to_dict("records")
    share = importances or {}
    for row in sorted(axes, key=lambda r: -share.get(r["axis"], 0.0)):
        said = verdict(row)  # the report's words
        said = f"**{said}**" if said == "clear" else said
        importance = "–" if importances is None else f"{share.get(row['axis'], 0.0):.3f}"
        lines.append(
            f"| {row['axis']} | {importance} | {_cell(row, 'winner')} "
            f"| {_cell(row, 'runner_up')} | {said} |"
        )
    return "\n".join(lines)


def main() -> None:
    pairs = sys.argv[1:]
    if not pairs or len(pairs) % 2:
        sys.exit("usage: python benchmarks/sweep_axes.py STORAGE NAME [STORAGE NAME ...]")
    for storage, name in zip(pairs[::2], pairs[1::2], strict=True):
        print(table(storage, name), end="\n\n", flush=True)


if __name__ == "__main__":
    main()
