"""The report's sections about results: the header, the leaderboard, the sample gallery
and the table of every trial."""

from __future__ import annotations

import math

from gansweep.dashboards.data import GALLERY, TOP_TRIALS, SweepData
from gansweep.dashboards.widgets import (
    Charts,
    better,
    esc,
    fmt,
    fmt_seconds,
    fmt_steps,
    png_uri,
    run_link,
    scrolling,
    sentence,
)
from gansweep.records.ranking import RULE
from gansweep.records.read import extra_metrics
from gansweep.records.store import redact
from gansweep.records.study_store import study_location


def section_header(data: SweepData, sections: tuple[tuple[str, str], ...]) -> str:
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
        best = data.standings.board.iloc[0]
        state = (
            f"Champion: <b>{esc(best.combination)}</b> (trial {esc(best.trial_id)}), "
            f"<b>{esc(data.metric)} = {fmt(best[data.metric])}</b> at step {fmt(best.step)}"
        )
        if best.replicated:
            state += (
                f"; over {int(best.seeds)} fresh seeds: mean "
                f"{fmt(best[f'{data.metric}_mean'])}, worst {fmt(best[f'{data.metric}_worst'])}"
            )
        state += "."
    running = ""
    if m.status != "finished":
        running = (
            f'<p class="note">The sweep is <b>{esc(m.status)}</b>: this page shows what was '
            "recorded so far.</p>"
        )
    nav = " · ".join(f'<a href="#{a}">{esc(t)}</a>' for a, t in sections)
    return f"""<header>
<h1>Sweep {esc(m.name)}</h1>
<p>{len(trials)} trials ({status_line or "none"}). Metric <code>{esc(data.metric)}</code>,
{better(data)}. {state}</p>
{running}
<p class="meta">space <code>{esc(m.space)}</code> · started {esc(m.created)} ·
MLflow {esc(redact(m.tracking_uri))}, experiment {esc(m.experiment_id)}, parent run
<code>{esc(m.parent_run_id)}</code> · Optuna study {esc(study_location(m))} ·
report of {esc(data.generated)}</p>
<nav>{nav}</nav>
</header>"""


def section_leaderboard(data: SweepData, charts: Charts) -> str:
    board = data.standings.board
    shown = board[board["rank"] > 0].head(TOP_TRIALS)
    if shown.empty:
        return sentence(
            "No trial has a finite result yet, so there is nothing to rank."
            + (" Every trial that reported diverged." if data.trials["diverged"].any() else "")
        )
    metric = data.metric
    replicated = bool(board["replicated"].any())
    # Every metric of the registry the trials report; one that is the sweep's metric under
    # another name (`distance` is mmd on mixtures, fd on images) would repeat its column.
    extras = [m for m in extra_metrics(metric) if m in shown and not shown[m].equals(shown[metric])]
    head = ["#", "samples", "combination", f"{metric} ({better(data)})", *extras]
    if replicated:
        head += ["seeds", f"{metric} mean ± sd", "worst seed", "modes (worst)", "hq (worst)"]
    head += ["steps", "wall time", "status", "run", "MLflow run id"]
    rows = []
    for r in shown.to_dict("records"):
        png = data.samples.get(r["run_id"])
        image = f'<img class="thumb" src="{png_uri(png)}" alt="samples">' if png else "–"
        cells = [str(r["rank"]), image, esc(r["combination"]), f"<b>{fmt(r[metric])}</b>"]
        cells += [fmt(r[m]) for m in extras]
        if replicated and r["replicated"]:
            cells += [
                f"{int(r['seeds'])} / {int(r['seeds_planned'])}",
                f"{fmt(r[f'{metric}_mean'])} ± {fmt(r[f'{metric}_sd'], 2)}",
                f"<b>{fmt(r[f'{metric}_worst'])}</b>",
                fmt(r.get("modes_captured_worst", math.nan)),
                fmt(r.get("high_quality_worst", math.nan)),
            ]
        elif replicated:
            cells += ["–"] * 5
        cells += [
            fmt_steps(r["step"], r["planned_steps"]), fmt_seconds(r["seconds"]), esc(r["status"]),
            esc(r["run_name"]), run_link(data, r["run_id"]),
        ]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = (
        f'<table class="board"><thead><tr>{"".join(f"<th>{esc(h)}</th>" for h in head)}'
        f"</tr></thead>\n<tbody>{''.join(rows)}</tbody></table>"
    )
    return f"""<p>The top {len(shown)} of {len(data.ranked)} trials with a finite result; each
trial's last sample picture. The rule: {esc(RULE)}.</p>
{scrolling(table)}"""


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
