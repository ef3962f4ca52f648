"""The report's sections about the study as a whole: the landscape of every axis at equal
budget, how each loss ended (stability), and how well the winners hold on fresh seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gansweep.dashboards.data import SweepData
from gansweep.dashboards.widgets import (
    AXIS_TITLES,
    STATUS_COLORS,
    Charts,
    better,
    esc,
    fmt,
    hover,
    scrolling,
    sentence,
    worst_position,
)
from gansweep.records import ranking
from gansweep.records.run_format import AXES


def section_landscape(data: SweepData, charts: Charts) -> str:
    reported = data.trials[data.trials["reported"]]
    budget, finite = data.equal_budget()
    if reported.empty:
        return sentence("No trial has reported a result yet.")
    if finite.empty:
        return sentence(
            f"All {len(reported)} trials that reported diverged: there is no finite "
            f"{esc(data.metric)} to compare (see Stability)."
        )
    diverged = reported[reported["diverged"]]
    finite = finite[finite["value"].notna()]
    top = worst_position(data, finite["value"])
    fig = make_subplots(
        rows=1, cols=len(AXES), shared_yaxes=True,
        subplot_titles=[AXIS_TITLES[a] for a in AXES], horizontal_spacing=0.03,
    )  # fmt: skip
    for col, axis in enumerate(AXES, start=1):
        categories = sorted(reported[axis].unique())
        fig.add_trace(
            go.Box(
                x=finite[axis], y=finite["value"], boxpoints="all", jitter=0.5, pointpos=0,
                hovertext=hover(finite, data), hoverinfo="text", hoveron="points",
                marker=dict(size=6, opacity=0.7, color="#1f77b4"), line=dict(color="#1f77b4"),
                fillcolor="rgba(31,119,180,0.15)", name="finite result", showlegend=col == 1,
                legendgroup="finite",
            ),
            row=1, col=col,
        )  # fmt: skip
        if not diverged.empty:
            fig.add_trace(
                go.Scatter(
                    x=diverged[axis], y=[top] * len(diverged), mode="markers",
                    marker=dict(symbol="x", size=9, color=STATUS_COLORS["diverged"]),
                    hovertext=hover(diverged, data), hoverinfo="text",
                    name="diverged (drawn beyond the worst)", showlegend=col == 1,
                    legendgroup="diverged",
                ),
                row=1, col=col,
            )  # fmt: skip
        fig.update_xaxes(categoryorder="array", categoryarray=categories, row=1, col=col)
    fig.update_yaxes(title_text=f"{data.metric} at step {budget:,.0f}", row=1, col=1)
    fig.update_layout(
        title=f"{data.metric} of every trial at step {budget:,.0f}, per axis ({better(data)})",
        legend=dict(orientation="h", y=-0.15),
    )
    return (
        f"<p>Every trial's result at step {budget:,.0f}, the budget all of them reached, "
        "grouped by each axis of the study (Kurach et al. 2019): combinations are compared "
        "at equal budget, so a trial the scheduler kept longer does not look better for "
        "that alone. Hover a point for its run.</p>"
        + charts(fig, 460)
        + heat_map(data, finite, budget, charts)
    )


def heat_map(data: SweepData, finite: pd.DataFrame, budget: float, charts: Charts) -> str:
    """Best and median result per loss x penalty, at the equal budget of the landscape."""
    reported = data.trials[data.trials["reported"]]
    at_budget = dict(zip(finite["run_id"], finite["value"], strict=True))
    losses = sorted(reported["loss"].unique())
    penalties = sorted(reported["penalty"].unique())
    # per statistic, one row per loss of one cell per penalty (None: no finite result)
    stats: dict[str, list[list[float | None]]] = {"best": [], "median": []}
    texts: dict[str, list[list[str]]] = {"best": [], "median": []}
    for loss in losses:
        for name in stats:
            stats[name].append([])
            texts[name].append([])
        for penalty in penalties:
            cell = reported[(reported["loss"] == loss) & (reported["penalty"] == penalty)]
            values = pd.to_numeric(cell["run_id"].map(at_budget), errors="coerce").dropna()
            n, bad = len(cell), int(cell["diverged"].sum())
            best = (values.min() if data.lower_is_better else values.max()) if len(values) else None
            for name, value in (("best", best), ("median", values.median())):
                ok = value is not None and len(values) > 0
                stats[name][-1].append(value if ok else None)
                label = f"{fmt(value, 3)}<br>n={n}" if ok else ("" if not n else f"{n} diverged")
                if ok and bad:
                    label += f", {bad} div."
                texts[name][-1].append(label)
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=[f"best {data.metric}", f"median {data.metric}"],
        horizontal_spacing=0.12,
    )  # fmt: skip
    for col, name in enumerate(("best", "median"), start=1):
        fig.add_trace(
            go.Heatmap(
                z=stats[name], x=penalties, y=losses, text=texts[name],
                texttemplate="%{text}", coloraxis="coloraxis", xgap=2, ygap=2,
                hovertemplate="loss %{y}, penalty %{x}<br>%{text}<extra></extra>",
            ),
            row=1, col=col,
        )  # fmt: skip
        fig.update_xaxes(title_text="penalty", type="category", row=1, col=col)
        fig.update_yaxes(title_text="loss", type="category", row=1, col=col)
    fig.update_layout(
        title=f"Loss × penalty: best and median {data.metric} at step {budget:,.0f}",
        coloraxis=dict(colorscale="RdYlGn", reversescale=data.lower_is_better,
                       colorbar=dict(title=data.metric)),
    )  # fmt: skip
    return charts(fig, 120 + 60 * max(len(losses), 3))


def section_stability(data: SweepData, charts: Charts) -> str:
    trials = data.trials
    if trials.empty:
        return sentence("No trial has been recorded yet.")
    losses = sorted(trials["loss"].unique())
    fig = go.Figure()
    for status in (s for s in STATUS_COLORS if (trials["status"] == s).any()):
        counts = [int(((trials["loss"] == loss) & (trials["status"] == status)).sum())
                  for loss in losses]  # fmt: skip
        totals = [int((trials["loss"] == loss).sum()) for loss in losses]
        fig.add_trace(
            go.Bar(
                x=losses, y=[c / t for c, t in zip(counts, totals, strict=True)],
                name=status.replace("_", " "), marker_color=STATUS_COLORS[status],
                text=[str(c) if c else "" for c in counts], textposition="inside",
                customdata=np.array([counts, totals]).T,
                hovertemplate="%{x}: %{customdata[0]} of %{customdata[1]} trials<extra>"
                + status + "</extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        barmode="stack", title="How the trials of each loss ended (share; count inside)",
        yaxis=dict(title="share of trials", tickformat=".0%", range=[0, 1]),
        xaxis=dict(title="loss", type="category"),
    )  # fmt: skip
    unstable = trials["status"].isin(["diverged", "stopped_early"])
    share = ", ".join(
        f"{esc(loss)} {unstable[trials['loss'] == loss].mean():.0%}" for loss in losses
    )
    return (
        f"<p>Share of trials that diverged or were stopped early, per loss: {share}.</p>"
        + charts(fig, 400)
    )


def section_seeds(data: SweepData, charts: Charts) -> str:
    """One box per replicated config: its metric on each fresh seed."""
    configs, replicas = data.standings.configs, data.standings.replicas
    metric = data.metric
    if configs.empty:
        return sentence(
            "No configuration was retrained on fresh seeds, so how well the winners hold "
            "is not known: Lucic et al. (2018) found the spread over seeds as large as the "
            "differences between losses. Retrain the top configs with "
            f"<code>gansweep replicate {esc(data.manifest.name)} --top 5 --seeds 5</code>."
        )
    replication = data.manifest.replication
    # gansweep replicate records its plan in the manifest before it starts any replica
    assert replication is not None, "replicated configs without a replication plan"
    trials = data.trials.set_index("trial_id")
    replicas = ranking.counted_replicas(replicas)  # the seeds the table counts
    broken = replicas["broken"]
    extra = [name for name in ranking.REPLICA_METRICS if name != metric]
    finite = replicas[~broken & replicas["value"].notna()]
    top = worst_position(data, finite["value"]) if not finite.empty else 1.0
    fig = go.Figure()
    rows = []
    for config in configs.itertuples():
        source = trials.loc[config.replica_of] if config.replica_of in trials.index else None
        label = f"#{config.robust_rank} " + (
            source["combination"] if source is not None else config.replica_of
        )
        mine = replicas["replica_of"] == config.replica_of
        good = replicas[mine & ~broken & replicas["value"].notna()]
        bad = replicas[mine & broken]
        fig.add_trace(
            go.Box(
                y=good["value"], name=label, boxpoints="all", jitter=0.4, pointpos=0,
                hovertext=[f"seed {esc(s)}<br>{esc(n)}" for s, n in
                           zip(good["seed"], good["run_name"], strict=True)],
                hoverinfo="y+text", marker_color="#1f77b4", showlegend=False,
            )
        )  # fmt: skip
        if not bad.empty:
            fig.add_trace(
                go.Scatter(
                    x=[label] * len(bad), y=[top] * len(bad), mode="markers", showlegend=False,
                    marker=dict(symbol="x", size=9, color=STATUS_COLORS["diverged"]),
                    hovertext=[f"seed {esc(s)} {esc(st)}" for s, st in
                               zip(bad["seed"], bad["status"], strict=True)],
                    hoverinfo="text",
                )
            )  # fmt: skip
        if source is not None and pd.notna(source["value"]):
            fig.add_trace(
                go.Scatter(
                    x=[label], y=[source["value"]], mode="markers", showlegend=False,
                    marker=dict(symbol="star", size=11, color="#ff7f0e"),
                    hovertext=[f"the selecting trial (seed {esc(source['seed'])})"],
                    hoverinfo="y+text",
                )
            )  # fmt: skip
        cells = [
            label, f"{config.seeds} / {config.seeds_planned}", str(config.broken),
            f"{fmt(config.mean)} ± {fmt(config.sd, 2)}", f"<b>{fmt(config.worst)}</b>",
        ]  # fmt: skip
        for name in extra:
            mean, worst = getattr(config, f"{name}_mean"), getattr(config, f"{name}_worst")
            cells.append(f"{fmt(mean, 3)} (worst {fmt(worst, 3)})")
        rows.append("<tr>" + "".join(f"<td>{esc(c) if i == 0 else c}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")  # fmt: skip
    fig.update_layout(
        title=f"{metric} of each replicated config on its fresh seeds ({better(data)})",
        yaxis_title=metric,
    )
    head = ["config", "seeds", "diverged/failed", f"{metric} mean ± sd", "worst seed"]
    head += [f"{name} mean (worst)" for name in extra]
    return (
        f"<p>The top configs retrained on fresh seeds {esc(replication.seeds)} "
        "(boxes), next to the result of the trial that selected them (star): the gap is "
        "how much of its win was the seed. Ranked by the worst seed, then the mean.</p>"
        + charts(fig, 440)
        + scrolling(
            '<table class="board"><thead><tr>'
            + "".join(f"<th>{esc(h)}</th>" for h in head)
            + f"</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )
    )
