"""The report's section "Which axes mattered": per searched axis, Optuna's importance, the
winning value and the runner-up with the bootstrap intervals of their marginal medians
(axis_effects.py), and whether the winner is clear of the noise; then one sentence that
sets the seed-to-seed spread of the best replicated config against the gap on the most
important axis."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from gansweep.dashboards.axis_effects import AxisEffects, axis_effects
from gansweep.dashboards.data import SweepData
from gansweep.dashboards.sections_search import param_importances
from gansweep.dashboards.widgets import Charts, esc, fmt, scrolling, sentence
from gansweep.records import ranking
from gansweep.records.run_format import as_param
from gansweep.search_spaces import SearchSpace

# Below this many trials at their full budget the marginals use every ended trial: a
# median of one or two trials per value says nothing.
MIN_FULL_BUDGET = 5


def marginal_trials(data: SweepData) -> tuple[pd.DataFrame, str]:
    """(the trials the marginals are computed on, one phrase saying which). A diverged
    trial counts in both cases, with no value (axis_effects counts it as the worst): it
    never recovers at any budget, and leaving it out would favour the values that diverge."""
    trials = data.trials
    full = int((trials["status"] == ranking.FINISHED).sum())
    diverged = trials["status"] == ranking.DIVERGED
    if full >= MIN_FULL_BUDGET:
        used = trials[(trials["status"] == ranking.FINISHED) | diverged]
        which = f"the {full} trials that reached their full budget"
    else:
        ended = trials["status"].isin([ranking.FINISHED, ranking.STOPPED_EARLY]) | diverged
        used = trials[ended]
        which = (
            f"all {int(ended.sum() - diverged.sum())} ended trials, those stopped early "
            f"included at the budget they reached (only {full} reached their full budget, "
            f"fewer than {MIN_FULL_BUDGET})"
        )
    if diverged.any():
        which += f", and the {int(diverged.sum())} that diverged, as the worst result"
    return used.assign(value=used["value"].where(~used["diverged"])), which


def searched_values(trials: pd.DataFrame, params: pd.DataFrame, space: SearchSpace) -> pd.DataFrame:
    """`trials` (run_id, value) with one column per param of `space`, turned from MLflow's
    strings back into the values the space searched (a choice by how it is written, a
    range param as a number)."""
    table = trials[["run_id", "value"]].merge(params, on="run_id", how="left")
    for param in space.params:
        raw = table[param.name] if param.name in table else pd.Series(None, index=table.index)
        if param.kind == "choice":
            written = {as_param(choice): choice for choice in param.choices}
            table[param.name] = raw.map(lambda v, w=written: w.get(v))  # unknown: no value
        else:
            table[param.name] = pd.to_numeric(raw, errors="coerce")
    return table


def effects_of(data: SweepData, space: SearchSpace) -> tuple[AxisEffects, str] | None:
    """(the section's axis effects, one phrase saying which trials they come from); None
    when no trial has ended with a result. Also benchmarks/sweep_axes.py's."""
    used, which = marginal_trials(data)
    if used.empty:
        return None
    table = searched_values(used, data.params, space)
    return axis_effects(table, space, "value", data.lower_is_better), which


def _cell(effects_row: Any, role: str) -> str:
    value = effects_row[role]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    low, high = effects_row[f"{role}_low"], effects_row[f"{role}_high"]
    return (
        f"<b>{esc(value)}</b>: {_number(effects_row[f'{role}_median'])} "
        f"[{_number(low)}, {_number(high)}]"
    )


def _number(value: float) -> str:
    return "diverged" if math.isinf(value) else fmt(value)


def verdict(row: Any) -> str:
    """An axis's verdict in words (a row of AxisEffects.axes)."""
    if row["levels"] == 0:
        return "not searched in these trials"
    if row["levels"] == 1:
        return "one value only"
    return "clear" if row["clear"] else "within the noise"


def section_axes(data: SweepData, charts: Charts) -> str:
    space = data.space
    if space is None:
        return sentence(f"Which axes mattered cannot be said: {esc(data.space_note)}")
    if not space.params:
        return sentence("The sweep's search space searches no parameter.")
    found = effects_of(data, space)
    if found is None:
        return sentence(
            "No trial has ended with a result yet: there is no marginal median to compare."
        )
    effects, which = found
    importances, why = param_importances(data)
    rows = []
    for row in effects.axes.to_dict("records"):
        share = "–" if importances is None else fmt(importances.get(row["axis"], 0.0), 2)
        binned = " (3 bins of equal count)" if row["binned"] else ""
        rows.append(
            f"<tr><td>{esc(row['axis'])}{binned}</td><td>{share}</td>"
            f"<td>{_cell(row, 'winner')}</td><td>{_cell(row, 'runner_up')}</td>"
            f"<td>{verdict(row)}</td></tr>"
        )
    head = ["axis", "importance (Optuna)", "winner: median [95 % interval]",
            "runner-up: median [95 % interval]", "verdict"]  # fmt: skip
    note = "" if importances is not None else f'<p class="note">Importance: {why}</p>'
    return (
        f"<p>Per searched axis, the marginal median of {esc(data.metric)} over the trials "
        f"with each value ({'lower' if data.lower_is_better else 'higher'} is better), with "
        f"a bootstrap 95 % interval of that median; from {esc(which)}. A winner is "
        "<b>clear</b> where its interval does not overlap the runner-up's; else the "
        "difference is <b>within the noise</b> of these trials. Conditional axes count only "
        "the trials where they were searched.</p>"
        + scrolling(
            '<table class="axes"><thead><tr>'
            + "".join(f"<th>{esc(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
        + note
        + f"<p>{seed_sentence(data, effects, importances)}</p>"
    )


def seed_sentence(
    data: SweepData, effects: AxisEffects, importances: dict[str, float] | None
) -> str:
    """The best replicated config's spread over fresh seeds against the gap between the
    winner and the runner-up on the most important axis (HTML)."""
    compared = effects.axes[effects.axes["levels"] > 1]
    finite = compared[["winner_median", "runner_up_median"]].abs().lt(math.inf).all(axis=1)
    compared = compared[finite]
    if compared.empty:
        return "No axis has two values with a finite median: no gap to set against the seeds."
    gaps = (compared["runner_up_median"] - compared["winner_median"]).abs()
    if importances:
        key = compared["axis"].map(lambda a: importances.get(a, 0.0))
        axis = compared.loc[key.idxmax()]
        how = "the most important axis (Optuna)"
    else:
        axis = compared.loc[gaps.idxmax()]
        how = "the axis with the largest gap (no importances)"
    gap = float(gaps[axis.name])
    configs = data.standings.configs
    named = f"On <b>{esc(axis['axis'])}</b>, {how}, {esc(axis['winner'])} beats " + (
        f"{esc(axis['runner_up'])} by {fmt(gap, 3)} in median {esc(data.metric)}"
    )
    spread = configs["sd"].dropna() if not configs.empty else configs
    if configs.empty or spread.empty:
        return (
            f"{named}; no config was retrained on at least two fresh seeds, so how that gap "
            "compares with the spread over seeds is not known."
        )
    best = configs.loc[spread.index[0]]
    sd = float(best["sd"])
    verdict = (
        "larger than the seed spread: the axis's effect shows above the seeds"
        if gap > sd
        else "no larger than the seed spread: one seed can undo it"
    )
    return (
        f"{named}. The best replicated config varies by {fmt(sd, 3)} (standard deviation "
        f"over its {int(best['seeds'])} fresh seeds): the gap is {verdict}."
    )
