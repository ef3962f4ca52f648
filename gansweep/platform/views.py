"""What the commands print: the leaderboard, where a sweep's files are, the sweep's
header, the list of sweeps and an export's summary. Tables are rich tables; a log file
or a pipe gets the whole table, not one squeezed into 80 columns."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from gansweep.records.manifest import BEST_FILE, Manifest
from gansweep.records.ranking import RULE
from gansweep.records.store import redact
from gansweep.records.study_store import study_location

if TYPE_CHECKING:
    from gansweep.platform.sweep_input import PreparedSweep
    from gansweep.records.leaderboard import Standings
    from gansweep.records.progress import SweepProgress


def console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160)


def fmt(value: float) -> str:
    return "–" if value != value else f"{value:.4g}"  # NaN: no value


def _g(value: float | None, spec: str) -> str:
    """A number of the exported spread; None is "no value" (one seed has no sd)."""
    return "n/a" if value is None else format(value, spec)


def print_leaderboard(ranked: Standings, top: int = 10) -> None:
    board, metric = ranked.board, ranked.metric
    if board.empty or board["rank"].iloc[0] == 0:
        typer.echo("no trial reported a finite result")
        return
    shown = board[board["rank"] > 0].head(top)
    replicated = bool(board["replicated"].any())
    view = Table(title=f"leaderboard (top {len(shown)} of {len(board)} trials, {ranked.mode})")
    columns = ["rank", "combination", metric, "step", "status"]
    if replicated:
        columns += ["seeds", f"{metric} mean ± sd", "worst seed", "modes (worst)", "hq (worst)"]
    for column in [*columns, "trial_id"]:
        view.add_column(column, justify="left" if column in ("combination", "status") else "right")
    for row in shown.to_dict("records"):
        cells = [str(row["rank"]), row["combination"], fmt(row[metric]), str(int(row["step"]))]
        cells.append(row["status"])
        if replicated and row["replicated"]:
            cells += [
                f"{int(row['seeds'])}/{int(row['seeds_planned'])}",
                f"{fmt(row[f'{metric}_mean'])} ± {fmt(row[f'{metric}_sd'])}",
                fmt(row[f"{metric}_worst"]),
                fmt(row.get("modes_captured_worst", float("nan"))),
                fmt(row.get("high_quality_worst", float("nan"))),
            ]
        elif replicated:
            cells += ["–"] * 5
        view.add_row(*cells, row["trial_id"])
    console().print(view)
    if replicated:
        typer.echo(RULE)


def print_where(manifest: Manifest) -> None:
    folder = Path(manifest.sweep_dir)
    best = folder / BEST_FILE
    if best.exists():
        typer.echo(f"best config:      {best}  (retrain: gansweep train {best})")
    if (folder / "report.html").exists():
        typer.echo(f"report:           {folder / 'report.html'}")
    typer.echo(f"sweep folder:     {folder}")
    uri = redact(manifest.tracking_uri)  # the manifest holds none; shown lines never do
    typer.echo(f"MLflow:           experiment {manifest.name!r} in {uri}")
    typer.echo(f"                  open it: gansweep ui --tracking-uri {uri}")
    typer.echo(f"Optuna study:     optuna-dashboard {study_location(manifest)}")


def print_outcome(ranked: Standings, manifest: Manifest) -> None:
    """The end of `sweep`, `resume` and `replicate`: the board, then where things are."""
    print_leaderboard(ranked)
    print_where(manifest)


def sweep_header(prepared: PreparedSweep) -> str:
    """What the sweep will run, in the numbers it will run with (after prepare's changes)."""
    chosen = prepared.options
    replication = (
        f", then the top {chosen.replicate_top} on {chosen.seeds} fresh seeds"
        if chosen.replicate_top
        else ""
    )
    header = (
        f"sweep {prepared.name!r}: space {prepared.space.name!r}, {chosen.num_samples} trials, "
        f"{chosen.max_concurrent} at a time, sampler {chosen.sampler}, scheduler "
        f"{chosen.scheduler}, {chosen.metric} ({chosen.mode}){replication}"
    )
    return "\n".join([header, *(f"  note: {note}" for note in prepared.notes)])


def print_sweeps(folder: Path, found: list[SweepProgress]) -> None:
    """`gansweep ls`: one row per sweep."""
    if not found:
        typer.echo(f"no sweeps in {folder.resolve()}")
        return
    view = Table(title=f"sweeps in {folder.resolve()}", title_justify="left")
    for column in ("name", "state", "trials", "best", "combination", "started"):
        view.add_column(column, justify="right" if column in ("trials", "best") else "left")
    for p in found:
        best = p.best or {}
        value = f"{p.metric} {fmt(best['value'])}" if best else "–"
        state = p.state + (" (driver died)" if p.resume and p.note else "")
        view.add_row(
            p.name, state, f"{p.done}/{p.planned}", value, best.get("combination", "–"), p.created
        )
    console().print(view)


def print_export(path: Path, provenance: dict[str, Any]) -> None:
    """What `gansweep export` wrote, and the champion's spread over its fresh seeds."""
    typer.echo(
        f"wrote {path}: trial {provenance['trial_id']}, {provenance['metric']} = "
        f"{provenance['value']:.6g} (MLflow run {provenance['mlflow_run_id']})"
    )
    if "replicated" in provenance:
        replicated = provenance["replicated"]
        mean, sd, worst = (replicated[provenance["metric"]][k] for k in ("mean", "sd", "worst"))
        typer.echo(
            f"  over {replicated['seeds']} of {replicated['seeds_planned']} fresh seeds "
            f"({replicated['diverged_or_failed']} diverged or failed): mean {_g(mean, '.6g')}"
            f", sd {_g(sd, '.3g')}, worst {_g(worst, '.6g')}"
        )


def print_spaces() -> None:
    """`gansweep spaces`: each built-in space, what it is for and what it searches."""
    from gansweep.search_spaces import BUILTIN_SPACES, load_space  # deferred: imports torch

    for space_name in BUILTIN_SPACES:
        space = load_space(space_name)
        axes = ", ".join(p.name for p in space.params)
        typer.echo(f"{space_name:<12} {space.description}")
        typer.echo(f"{'':<12} searches: {axes}")


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def print_registered(name: str, version: str) -> None:
    typer.echo(f"registered model {name!r} version {version} with alias 'champion'")
    typer.echo(f"  load it: mlflow.pyfunc.load_model('models:/{name}@champion')")
