"""The sweep report: one self-contained HTML page (plotly.js inline, images as data URIs)
that opens from disk with no server and no internet.

Sections follow the questions the large GAN studies ask (Lucic et al. 2018, Kurach et
al. 2019): which trials won; how each loss, penalty, normalization and optimizer fares
over the whole search (the "landscape"); how often each loss breaks; which parameters
mattered; and how the best result grows with budget ("best score for budget k").

Every section is always present; where the data for a chart does not exist yet (no
finished trial, all diverged, too few trials for importances) it says so in a sentence.
"""

from __future__ import annotations

import base64
import html
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from gansweep.dashboards.data import EXTRA_METRICS, GALLERY, TOP_TRIALS, SweepData, gather
from gansweep.platform import tracking
from gansweep.platform.manifest import Manifest
from gansweep.trainables.metrics import DIVERGED_DISTANCE

REPORT_FILE = "report.html"
# (anchor, heading) of every section, in page order.
SECTIONS = (
    ("leaderboard", "Leaderboard"),
    ("landscape", "The landscape"),
    ("stability", "Stability"),
    ("curves", "Learning curves"),
    ("importance", "What mattered"),
    ("budget", "Budget"),
    ("samples", "Samples"),
    ("trials", "All trials"),
)
# PED-ANOVA (Optuna's default importance evaluator) compares the best 10% of the trials
# with all of them: below 10 completed trials that best set is one or two trials.
MIN_IMPORTANCE_TRIALS = 10
SEED_GROUPS = 30  # configurations drawn in the spread-over-seeds chart, at most
AXIS_TITLES = {"loss": "loss", "penalty": "penalty", "d_norm": "D normalization",
               "optimizer": "optimizer"}  # fmt: skip
STATUS_COLORS = {
    "finished": "#2ca02c", "stopped_early": "#ff7f0e", "diverged": "#d62728",
    "failed": "#7f7f7f", "running": "#1f77b4", "interrupted": "#9467bd",
}  # fmt: skip
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def write_report(manifest: Manifest, out: Path | None = None, log_to_mlflow: bool = True) -> Path:
    """Write the sweep's report (default ``<sweep_dir>/report.html``) and, unless told
    not to, log it as an artifact of the sweep's MLflow parent run. Returns its path.

    Raises gansweep.dashboards.ReportError if the tracking store cannot be read.
    """
    data = gather(manifest)
    page = render(data)
    out = Path(out) if out is not None else Path(manifest.sweep_dir) / REPORT_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, out)  # a reader never sees half a page
    if log_to_mlflow:
        tracking.log_sweep_artifacts(manifest.tracking_uri, manifest.parent_run_id, [out])
    return out


# ---------------------------------------------------------------------------- helpers


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def fmt_seconds(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 120:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def fmt_steps(step: float, planned: float) -> str:
    done = "–" if not math.isfinite(step) else f"{int(step):,}"
    return done if not math.isfinite(planned) else f"{done} / {int(planned):,}"


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def sentence(text: str) -> str:
    """A chart's stand-in when its data does not exist (yet); `text` is already HTML."""
    return f'<p class="empty">{text}</p>'


class Charts:
    """Turns figures into <div>s; plotly.js itself is embedded once, in the page head."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: go.Figure, height: int = 420) -> str:
        self.count += 1
        fig.update_layout(
            height=height, template="plotly_white", margin=dict(l=60, r=30, t=60, b=50)
        )
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config=PLOTLY_CONFIG,
            div_id=f"chart-{self.count}",
            default_height=f"{height}px",
        )
        return f'<div class="chart">{div}</div>'


def run_link(data: SweepData, run_id: str) -> str:
    """The run id, linked to the MLflow UI where the store is a server."""
    uri = data.manifest.tracking_uri
    code = f"<code>{esc(run_id)}</code>"
    if uri.startswith(("http://", "https://")):
        href = f"{uri.rstrip('/')}/#/experiments/{data.manifest.experiment_id}/runs/{run_id}"
        return f'<a href="{esc(href)}">{code}</a>'
    return code


def better(data: SweepData) -> str:
    return "lower is better" if data.lower_is_better else "higher is better"


def worst_position(data: SweepData, values: pd.Series) -> float:
    """Where to draw diverged trials: just beyond the worst finite value."""
    low, high = float(values.min()), float(values.max())
    pad = 0.08 * (high - low) or 0.08 * abs(high) or 0.1
    return high + pad if data.lower_is_better else low - pad


def hover(frame: pd.DataFrame, data: SweepData) -> list[str]:
    return [
        f"{esc(r.run_name)}<br>{esc(r.status)}, step {fmt(r.step)}<br>"
        f"{esc(data.metric)} {fmt(r.value) if not r.diverged else 'diverged'}"
        for r in frame.itertuples()
    ]


# ------------------------------------------------------------------------- sections


def section_header(data: SweepData) -> str:
    m, trials = data.manifest, data.trials
    counts = trials["status"].value_counts()
    status_line = ", ".join(f"{n} {esc(s.replace('_', ' '))}" for s, n in counts.items())
    ranked = data.ranked
    if trials.empty:
        state = "No trial has been recorded in MLflow yet."
    elif ranked.empty:
        reported = int(trials["reported"].sum())
        if reported and trials.loc[trials["reported"], "diverged"].all():
            state = f"No trial has a finite result: all {reported} that reported diverged."
        else:
            state = "No trial has reported a finite result yet."
    else:
        best = ranked.iloc[0]
        state = (
            f"Best: <b>{esc(data.metric)} = {fmt(best.value)}</b> by "
            f"<b>{esc(best.combination)}</b> (run {esc(best.run_name)})."
        )
    running = ""
    if m.status != "finished":
        running = (
            f'<p class="note">The sweep is <b>{esc(m.status)}</b>: this page shows what was '
            "recorded so far.</p>"
        )
    nav = " · ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in SECTIONS)
    return f"""<header>
<h1>Sweep {esc(m.name)}</h1>
<p>{len(trials)} trials ({status_line or "none"}). Metric <code>{esc(data.metric)}</code>,
{better(data)}. {state}</p>
{running}
<p class="meta">space <code>{esc(m.space)}</code> · started {esc(m.created)} ·
MLflow {esc(m.tracking_uri)}, experiment {esc(m.experiment_id)}, parent run
<code>{esc(m.parent_run_id)}</code> · Optuna study {esc(m.study_storage)} ·
report of {esc(data.generated)}</p>
<nav>{nav}</nav>
</header>"""


def section_leaderboard(data: SweepData, charts: Charts) -> str:
    ranked = data.ranked.head(TOP_TRIALS)
    if ranked.empty:
        return sentence(
            "No trial has a finite result yet, so there is nothing to rank."
            + (" Every trial that reported diverged." if data.trials["diverged"].any() else "")
        )
    extras = [m for m in EXTRA_METRICS if m in ranked and m != data.metric]
    head = ["#", "samples", "combination", f"{data.metric} ({better(data)})", *extras]
    head += ["steps", "wall time", "status", "run", "MLflow run id"]
    rows = []
    for r in ranked.itertuples():
        png = data.samples.get(r.run_id)
        image = f'<img class="thumb" src="{png_uri(png)}" alt="samples">' if png else "–"
        cells = [str(r.rank), image, esc(r.combination), f"<b>{fmt(r.value)}</b>"]
        cells += [fmt(getattr(r, m)) for m in extras]
        cells += [
            fmt_steps(r.step, r.planned_steps), fmt_seconds(r.seconds), esc(r.status),
            esc(r.run_name), run_link(data, r.run_id),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    n = len(data.ranked)
    caption = f"The top {len(ranked)} of {n} trials with a finite result"
    return f"""<p>{caption}; each trial's last sample picture.</p>
<table class="board"><thead><tr>{"".join(f"<th>{esc(h)}</th>" for h in head)}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>"""


def section_landscape(data: SweepData, charts: Charts) -> str:
    reported = data.trials[data.trials["reported"]]
    finite = data.ranked
    if reported.empty:
        return sentence("No trial has reported a result yet.")
    if finite.empty:
        return sentence(
            f"All {len(reported)} trials that reported diverged: there is no finite "
            f"{esc(data.metric)} to compare (see Stability)."
        )
    diverged = reported[reported["diverged"]]
    top = worst_position(data, finite["value"])
    fig = make_subplots(
        rows=1, cols=len(tracking.AXES), shared_yaxes=True,
        subplot_titles=[AXIS_TITLES[a] for a in tracking.AXES], horizontal_spacing=0.03,
    )  # fmt: skip
    for col, axis in enumerate(tracking.AXES, start=1):
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
    fig.update_yaxes(title_text=f"final {data.metric}", row=1, col=1)
    fig.update_layout(
        title=f"Final {data.metric} of every trial, per axis ({better(data)})",
        legend=dict(orientation="h", y=-0.15),
    )
    return (
        "<p>Every trial's final result, grouped by each axis of the study (Kurach et al. "
        "2019); hover a point for its run.</p>" + charts(fig, 460) + heat_map(data, charts)
    )


def heat_map(data: SweepData, charts: Charts) -> str:
    reported = data.trials[data.trials["reported"]]
    losses = sorted(reported["loss"].unique())
    penalties = sorted(reported["penalty"].unique())
    stats = {"best": [], "median": []}
    texts = {"best": [], "median": []}
    for loss in losses:
        for name in stats:
            stats[name].append([])
            texts[name].append([])
        for penalty in penalties:
            cell = reported[(reported["loss"] == loss) & (reported["penalty"] == penalty)]
            values = cell.loc[~cell["diverged"], "value"]
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
        title="Loss × penalty: best and median result of the trials with a finite result",
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
        + seed_spread(data, charts)
    )


def seed_spread(data: SweepData, charts: Charts) -> str:
    ranked = data.ranked
    groups = [g for _, g in ranked.groupby("config_key", sort=False) if g["seed"].nunique() > 1]
    n_groups = len(groups)

    def median(group: pd.DataFrame) -> float:  # for sorting: best first
        return group["value"].median() * (1 if data.lower_is_better else -1)

    groups = sorted(groups, key=median)[:SEED_GROUPS]
    if not groups:
        return sentence(
            "No configuration has a finite result for more than one seed, so the spread over "
            "seeds is not known. Lucic et al. (2018) found it can be as large as the "
            "differences between losses: rerun the best configuration with other seeds "
            "(<code>gansweep train best.yaml --set seed=1</code>)."
        )
    fig = go.Figure()
    for i, group in enumerate(groups, start=1):
        label = f"#{i} {group['combination'].iloc[0]}"
        fig.add_trace(
            go.Box(
                y=group["value"], name=label, boxpoints="all", jitter=0.4, pointpos=0,
                hovertext=[f"seed {esc(s)}<br>{esc(n)}" for s, n in
                           zip(group["seed"], group["run_name"], strict=True)],
                hoverinfo="y+text",
            )
        )  # fmt: skip
    fig.update_layout(
        title=f"Spread of the final {data.metric} over seeds (same configuration)",
        yaxis_title=data.metric, showlegend=False,
    )  # fmt: skip
    shown = f"the {len(groups)} best of them" if n_groups > len(groups) else "all of them"
    return (
        f"<p>{n_groups} configurations were run with several seeds ({shown}, best median "
        "first; seeds that diverged are left out here and counted above).</p>" + charts(fig, 440)
    )


def section_curves(data: SweepData, charts: Charts) -> str:
    ranked = data.ranked.head(TOP_TRIALS)
    curves = [(r, data.curves.get(r.run_id)) for r in ranked.itertuples()]
    curves = [(r, c) for r, c in curves if c is not None and not c.empty]
    if not curves:
        return sentence("No trial has a finite result yet: there are no learning curves.")
    fig = go.Figure()
    for r, curve in curves:
        fig.add_trace(
            go.Scatter(
                x=curve["step"], y=curve["value"], mode="lines+markers",
                name=f"#{r.rank} {r.run_name}",
                hovertemplate="step %{x}<br>" + esc(data.metric) + " %{y:.4g}<extra>"
                + esc(r.run_name) + "</extra>",
            )
        )  # fmt: skip
    fig.update_layout(
        title=f"{data.metric} against training steps, top {len(curves)} trials",
        xaxis_title="generator steps", yaxis_title=data.metric,
    )  # fmt: skip
    return charts(fig, 440)


def _completed_trials(study) -> list:
    import optuna

    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def section_importance(data: SweepData, charts: Charts) -> str:
    import optuna.visualization as ov

    study = data.study
    if study is None:
        return sentence(f"No parameter importances: {esc(data.study_note)}")
    completed = _completed_trials(study)
    finite = [
        t.value for t in completed
        if t.value is not None and math.isfinite(t.value) and abs(t.value) < DIVERGED_DISTANCE
    ]  # fmt: skip
    parts = []
    if completed and not finite:
        parts.append(sentence("Every completed trial diverged: there is nothing to explain."))
    elif len(completed) < MIN_IMPORTANCE_TRIALS:
        parts.append(
            sentence(
                f"Parameter importances need at least {MIN_IMPORTANCE_TRIALS} completed trials "
                f"(PED-ANOVA compares the best 10% with the rest); the study has "
                f"{len(completed)}."
            )
        )
    elif len({t.value for t in completed}) < 2:
        parts.append(sentence("Every completed trial has the same value: nothing to explain."))
    else:
        notes: list[str] = []
        fig = _optuna_figure(lambda: ov.plot_param_importances(study), notes)
        if fig is None or not any(len(t.x or ()) for t in fig.data):
            parts.append(sentence(f"Optuna could not rank the parameters: {esc('; '.join(notes))}"))
        else:
            fig.update_layout(title="Parameter importances (Optuna, PED-ANOVA)")
            parts.append(
                "<p>How much each searched parameter decides whether a trial lands in the best "
                "10% (Optuna's PED-ANOVA; conditional parameters count where they apply).</p>"
                + charts(fig, 120 + 40 * len(fig.data[0].y or ()))
                + "".join(f'<p class="note">Optuna: {esc(n)}</p>' for n in notes)
            )
    if len(completed) < 2 or not finite:
        why = "fewer than 2 completed trials" if len(completed) < 2 else "no finite result"
        parts.append(sentence(f"No parallel-coordinates plot: the study has {why}."))
    else:
        worst = max(finite) if data.lower_is_better else min(finite)

        def clipped(trial) -> float:  # diverged trials' 1e6 would squash the color scale
            return worst if abs(trial.value) >= DIVERGED_DISTANCE else trial.value

        notes = []
        fig = _optuna_figure(
            lambda: ov.plot_parallel_coordinate(study, target=clipped, target_name=data.metric),
            notes,
        )
        if fig is None:
            parts.append(sentence(f"No parallel-coordinates plot: {esc('; '.join(notes))}"))
        else:
            fig.update_layout(title="Parallel coordinates of the completed Optuna trials")
            parts.append(
                "<p>Every completed trial as a line through its parameters, colored by its "
                f"{esc(data.metric)} (diverged trials at the worst finite value).</p>"
                + charts(fig, 460)
            )
    return "".join(parts)


def _optuna_figure(make: Callable[[], go.Figure], notes: list[str]) -> go.Figure | None:
    """Run an optuna.visualization function; its warnings go to `notes`, an error makes
    it None (with the error in `notes`)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fig = make()
        except Exception as err:  # e.g. too few trials for the evaluator
            notes.append(str(err))
            fig = None
    notes.extend(dict.fromkeys(str(w.message) for w in caught if "experimental" not in
                               str(w.message)))  # fmt: skip
    return fig


def best_so_far(values: np.ndarray, lower: bool) -> np.ndarray:
    """Running best of `values` (NaN = no finite result, counted but never best)."""
    filled = np.where(np.isnan(values), np.inf if lower else -np.inf, values)
    running = np.minimum.accumulate(filled) if lower else np.maximum.accumulate(filled)
    return np.where(np.isinf(running), np.nan, running)


def best_of_k(values: np.ndarray, lower: bool, quantiles=(0.25, 0.5, 0.75)) -> np.ndarray:
    """Quantiles of the best result among k trials drawn at random (without replacement)
    from these, for k = 1..n: the "best score for budget k" of Lucic et al. (2018),
    computed exactly instead of by bootstrap. NaN values (diverged) are never best; a
    quantile that falls on them is NaN. Returns an array [len(quantiles), n]."""
    n = len(values)
    order = np.sort(np.where(np.isnan(values), np.inf, values if lower else -values))
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n + 1)))])
    result = np.full((len(quantiles), n), np.nan)
    for k in range(1, n + 1):
        # P(every one of the k draws ranks below position i) = C(n - i, k) / C(n, k)
        a = n - np.arange(1, n + 1)
        log_c = np.where(a >= k, log_fact[np.maximum(a, 0)] - log_fact[np.maximum(a - k, 0)],
                         -np.inf)  # fmt: skip
        log_c -= log_fact[n] - log_fact[n - k]
        cdf = 1.0 - np.exp(log_c)  # P(best of k is at position <= i)
        for q, quantile in enumerate(quantiles):
            value = order[min(int(np.searchsorted(cdf, quantile - 1e-12)), n - 1)]
            result[q, k - 1] = value if np.isfinite(value) else np.nan
    return result if lower else -result


def section_budget(data: SweepData, charts: Charts) -> str:
    trials = data.trials.sort_values("start", kind="stable")
    if not trials["reported"].any():
        return sentence("No trial has reported a result yet: no budget curve.")
    lower = data.lower_is_better
    values = np.where(trials["rank"] > 0, trials["value"], np.nan).astype(float)
    if np.isnan(values).all():
        return sentence(
            f"All {len(trials)} trials diverged or failed: the best result is still unknown "
            "whatever the budget."
        )
    k = np.arange(1, len(trials) + 1)
    observed = best_so_far(values, lower)
    fig = go.Figure()
    quartiles = best_of_k(values, lower)
    fig.add_trace(go.Scatter(x=k, y=quartiles[2], mode="lines", line=dict(width=0),
                             showlegend=False, hoverinfo="skip"))  # fmt: skip
    fig.add_trace(
        go.Scatter(
            x=k, y=quartiles[0], mode="lines", line=dict(width=0), fill="tonexty",
            fillcolor="rgba(31,119,180,0.15)", name="25–75% of the best of k random trials",
            hoverinfo="skip",
        )
    )  # fmt: skip
    fig.add_trace(go.Scatter(x=k, y=quartiles[1], mode="lines", line=dict(color="#1f77b4"),
                             name="median best of k random trials (all losses)"))  # fmt: skip
    losses = sorted(trials["loss"].unique())
    if len(losses) > 1:
        for loss in losses:
            mine = values[(trials["loss"] == loss).to_numpy()]
            if np.isnan(mine).all():
                continue
            fig.add_trace(
                go.Scatter(
                    x=np.arange(1, len(mine) + 1), y=best_of_k(mine, lower, (0.5,))[0],
                    mode="lines", line=dict(dash="dot"), name=f"median best of k: {loss}",
                )
            )  # fmt: skip
    mode = "lines+markers" if len(trials) <= 50 else "lines"
    fig.add_trace(
        go.Scatter(
            x=k,
            y=observed,
            mode=mode,
            line=dict(shape="hv", color="black"),
            name="this sweep, in the order run",
        )  # fmt: skip
    )
    fig.update_layout(
        title=f"Best {data.metric} for a budget of k trials",
        xaxis=dict(title="trials (k)", type="log" if len(trials) > 20 else "linear"),
        yaxis_title=f"best {data.metric}",
    )  # fmt: skip
    steps = np.cumsum(trials["step"].fillna(0).to_numpy())
    fig2 = go.Figure(
        go.Scatter(
            x=steps, y=observed, mode=mode, line=dict(shape="hv"),
            customdata=trials["run_name"], name="best so far",
            hovertemplate="%{x:,} steps<br>best %{y:.4g}<extra>%{customdata}</extra>",
        )
    )  # fmt: skip
    fig2.update_layout(
        title=f"Best {data.metric} against the training steps spent (all trials, in start order)",
        xaxis_title="generator steps, summed over trials", yaxis_title=f"best {data.metric}",
    )  # fmt: skip
    return (
        "<p>The best result as a function of the budget. The curves of k random trials are "
        "exact order statistics of this sweep's results (the estimate Lucic et al. 2018 "
        "bootstrap); diverged and failed trials count as spent budget that never wins.</p>"
        + charts(fig, 440)
        + charts(fig2, 380)
    )


def section_samples(data: SweepData, charts: Charts) -> str:
    ranked = data.ranked
    shown = [r for r in ranked.itertuples() if r.run_id in data.samples]
    if not shown:
        return sentence("No trial with a finite result has a sample picture yet.")
    if data.data_kind == "mixture":
        intro = (
            "2-D data: 2,500 generated points (blue) over the true modes (red crosses; the "
            "circles mark 3σ, the high-quality zone)."
        )
    else:
        intro = "Image data: a grid of generated images (the EMA generator where used)."
    figures = [
        f'<figure><img src="{png_uri(data.samples[r.run_id])}" alt="samples of '
        f'{esc(r.run_name)}"><figcaption>#{r.rank} <b>{esc(r.combination)}</b> · '
        f"{esc(data.metric)} {fmt(r.value)} · step {fmt(r.step)}<br><small>"
        f"{esc(r.run_name)}</small></figcaption></figure>"
        for r in shown
    ]
    return (
        f"<p>{intro} The top {min(TOP_TRIALS, len(ranked))} trials, then the best trial of "
        f"each other combination ({GALLERY} pictures at most), best first.</p>"
        f'<div class="gallery">{"".join(figures)}</div>'
    )


def section_trials(data: SweepData, charts: Charts) -> str:
    trials = data.trials
    if trials.empty:
        return sentence("No trial has been recorded in MLflow yet.")
    head = ["rank", "run", "combination", "status", data.metric, "steps", "wall time", "seed",
            "trial id", "MLflow run id"]  # fmt: skip
    rows = []
    for r in trials.itertuples():
        value = "diverged" if r.diverged else fmt(r.value)
        cells = [
            str(r.rank) if r.rank else "–", esc(r.run_name), esc(r.combination),
            f'<span class="s-{esc(r.status)}">{esc(r.status)}</span>', value,
            fmt_steps(r.step, r.planned_steps), fmt_seconds(r.seconds), esc(r.seed),
            esc(r.trial_id), run_link(data, r.run_id),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"""<details open><summary>{len(trials)} trials, best first</summary>
<table class="all"><thead><tr>{"".join(f"<th>{esc(h)}</th>" for h in head)}</tr></thead>
<tbody>{"".join(rows)}</tbody></table></details>"""


RENDERERS = {
    "leaderboard": section_leaderboard,
    "landscape": section_landscape,
    "stability": section_stability,
    "curves": section_curves,
    "importance": section_importance,
    "budget": section_budget,
    "samples": section_samples,
    "trials": section_trials,
}

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1280px; padding: 0 24px 48px; color: #222; }
header { border-bottom: 1px solid #ddd; margin-bottom: 8px; }
h1 { margin: 24px 0 8px; } h2 { margin-top: 36px; border-bottom: 1px solid #eee; }
.meta { color: #666; font-size: 12px; } nav a { margin: 0 2px; }
.note { color: #8a6d3b; background: #fcf8e3; padding: 6px 10px; border-radius: 4px; }
.empty { color: #555; background: #f5f5f5; padding: 10px 14px; border-left: 4px solid #bbb; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: left;
         vertical-align: middle; }
th { background: #fafafa; position: sticky; top: 0; }
img.thumb { width: 96px; height: auto; display: block; }
.chart { margin: 12px 0; border: 1px solid #eee; border-radius: 4px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
           gap: 12px; }
.gallery figure { margin: 0; border: 1px solid #eee; padding: 6px; }
.gallery img { width: 100%; height: auto; }
figcaption { font-size: 12px; }
.s-diverged { color: #d62728; } .s-failed { color: #7f7f7f; }
.s-stopped_early { color: #ff7f0e; } .s-finished { color: #2ca02c; }
code { font-size: 12px; }
"""


def render(data: SweepData) -> str:
    """The whole page as one string."""
    from plotly.offline import get_plotlyjs

    charts = Charts()
    body = [section_header(data)]
    for anchor, title in SECTIONS:
        content = RENDERERS[anchor](data, charts)
        body.append(f'<section id="{anchor}">\n<h2>{esc(title)}</h2>\n{content}\n</section>')
    # plotly.js once, inline, so the page works from disk with no network at all.
    script = f'<script type="text/javascript">{get_plotlyjs()}</script>' if charts.count else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="gansweep-charts" content="{charts.count}">
<title>gansweep report: {esc(data.manifest.name)}</title>
<style>{STYLE}</style>
{script}
</head>
<body>
{chr(10).join(body)}
</body>
</html>
"""
