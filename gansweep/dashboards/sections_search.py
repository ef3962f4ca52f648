"""The report's sections about the search itself: learning curves, which parameters
mattered (Optuna), and how the best result grows with the budget."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import optuna
import optuna.visualization as ov
import plotly.graph_objects as go

from gansweep.dashboards.data import TOP_TRIALS, SweepData
from gansweep.dashboards.stats import best_of_k, best_so_far
from gansweep.dashboards.widgets import Charts, esc, sentence
from gansweep.records import ranking
from gansweep.trainables.metric_registry import DIVERGED_DISTANCE

# PED-ANOVA (Optuna's default importance evaluator) compares the best 10% of the trials
# with all of them: below 10 completed trials that best set is one or two trials.
MIN_IMPORTANCE_TRIALS = 10


def section_curves(data: SweepData, charts: Charts) -> str:
    ranked = data.ranked.head(TOP_TRIALS)
    found = [(r, data.curves.get(r.run_id)) for r in ranked.itertuples()]
    curves = [(r, c) for r, c in found if c is not None and not c.empty]
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


def _completed_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def _finite_values(completed: list[optuna.trial.FrozenTrial]) -> list[float]:
    return [
        t.value for t in completed
        if t.value is not None and math.isfinite(t.value) and abs(t.value) < DIVERGED_DISTANCE
    ]  # fmt: skip


def _why_no_importances(completed: list[optuna.trial.FrozenTrial]) -> str | None:
    """Why the study's trials cannot be ranked by importance (HTML), or None if they can."""
    if completed and not _finite_values(completed):
        return "Every completed trial diverged: there is nothing to explain."
    if len(completed) < MIN_IMPORTANCE_TRIALS:
        return (
            f"Parameter importances need at least {MIN_IMPORTANCE_TRIALS} completed trials "
            f"(PED-ANOVA compares the best 10% with the rest); the study has {len(completed)}."
        )
    if len({t.value for t in completed}) < 2:
        return "Every completed trial has the same value: nothing to explain."
    return None


def param_importances(data: SweepData) -> tuple[dict[str, float] | None, str]:
    """(param -> Optuna's PED-ANOVA importance, summing to 1; or None, why not as HTML):
    the figures section_importance draws, for other sections to quote."""
    study = data.study
    if study is None:
        return None, f"No parameter importances: {esc(data.study_note)}"
    why = _why_no_importances(_completed_trials(study))
    if why is not None:
        return None, why
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # section_importance shows Optuna's warnings
        try:
            return optuna.importance.get_param_importances(study), ""
        except Exception as err:  # e.g. too few trials for the evaluator
            return None, f"Optuna could not rank the parameters: {esc(err)}"


def section_importance(data: SweepData, charts: Charts) -> str:
    study = data.study
    if study is None:
        return sentence(f"No parameter importances: {esc(data.study_note)}")
    completed = _completed_trials(study)
    finite = _finite_values(completed)
    parts = []
    why = _why_no_importances(completed)
    if why is not None:
        parts.append(sentence(why))
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


def section_budget(data: SweepData, charts: Charts) -> str:
    trials = data.trials.sort_values("start", kind="stable")
    if not trials["reported"].any():
        return sentence("No trial has reported a result yet: no budget curve.")
    lower = data.lower_is_better
    # Only results at the full budget compete (ranking.py): a trial stopped early, or
    # not yet at its planned steps, is budget spent that never wins.
    values = np.where(trials["status"] == ranking.FINISHED, trials["value"], np.nan)
    values = values.astype(float)
    if np.isnan(values).all():
        return sentence(
            f"None of the {len(trials)} trials has a result at its full budget yet (each "
            "diverged, failed, was stopped early or is still running): no budget curve."
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
        "bootstrap), at equal budget: trials that diverged, failed or were stopped early "
        "count as spent budget that never wins.</p>" + charts(fig, 440) + charts(fig2, 380)
    )
