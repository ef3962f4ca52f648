"""The `gansweep` command line.

Exit codes: 0 done; 2 bad input (a message names the bad value and the valid ones,
nothing is launched or written); 1 an unexpected failure.

The commands import torch, Ray and MLflow inside their bodies: each takes seconds to
import, and `gansweep --help` or a refused input should not wait for them.
"""

from __future__ import annotations

import atexit
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from gansweep.files import atomic_write_bytes, atomic_write_text
from gansweep.platform.trainable_registry import DEFAULT_TRAINABLE, TRAINABLES
from gansweep.platform.trainable_registry import FORMS as TRAINABLE_FORMS
from gansweep.records.manifest import BEST_FILE, Manifest, SweepNotFoundError
from gansweep.records.ranking import RULE

if TYPE_CHECKING:
    from gansweep.platform.sweep_input import PreparedSweep
    from gansweep.records.leaderboard import Standings

app = typer.Typer(
    name="gansweep",
    help="Large GAN studies: sweeps on Ray Tune, guided by Optuna, recorded in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BAD_INPUT = 2


@app.callback()
def _root() -> None:
    """Large GAN studies: sweeps on Ray Tune, guided by Optuna, recorded in MLflow."""


@contextmanager
def resumable(name: str) -> Iterator[None]:
    """Ctrl-C stops a sweep cleanly: it is marked interrupted, and the way on is shown."""
    try:
        yield
    except KeyboardInterrupt:
        typer.secho(
            f"interrupted: sweep {name!r} is saved; continue it with `gansweep resume {name}`",
            err=True, fg=typer.colors.YELLOW,
        )  # fmt: skip
        raise typer.Exit(130) from None


def fail(message: str) -> typer.Exit:
    """Print an error for bad input and return the exit to raise (code 2)."""
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(BAD_INPUT)


@app.command()
def train(
    config: Path | None = typer.Argument(
        None, help="YAML file of TrialConfig fields (omit for the defaults).", show_default=False
    ),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a field: --set key=value (repeatable)."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Output folder.",
        show_default="runs/<dataset>-<combination>-<time>",
    ),
    threads: int | None = typer.Option(
        None,
        "--threads",
        min=1,
        help="Torch's CPU threads.",
        show_default="1 for 2-D data and images up to 16 px, else up to 4",
    ),
) -> None:
    """Train one GAN and write metrics.json, samples.png, checkpoint.pt and generator.pt."""
    import torch  # deferred (see the module docstring), like the engine below

    from gansweep.records.run_format import GENERATOR_FILE
    from gansweep.trainables.config import ConfigError, read_config
    from gansweep.trainables.data import DataUnavailableError
    from gansweep.trainables.engine import GANTrainer, default_threads
    from gansweep.trainables.image_metrics import InceptionWeightsError
    from gansweep.trainables.samples import save_samples

    try:
        cfg = read_config(config, overrides)
        # Loads and checks the data and the weights: every problem before the first step.
        trainer = GANTrainer(cfg, threads=threads)
    except (ConfigError, DataUnavailableError, InceptionWeightsError) as err:
        raise fail(str(err)) from None
    except RuntimeError as err:  # e.g. device cuda requested where none is visible
        raise fail(str(err)) from None

    if threads is None:  # what fits the model, known once the data is loaded
        torch.set_num_threads(default_threads(trainer.data.shape))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = out or Path("runs") / f"{cfg.dataset}-{cfg.combination}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "history.jsonl").unlink(missing_ok=True)
    where = f"{trainer.device}, {torch.get_num_threads()} threads"
    typer.echo(f"training {cfg.combination} on {cfg.dataset} ({where}) -> {out}")

    def save(state: dict, name: str) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        atomic_write_bytes(out / name, buffer.getvalue())

    def checkpoint() -> None:  # at every evaluation: a crash loses one interval at most
        save(trainer.state_dict(), "checkpoint.pt")
        save(trainer.generator_state_dict(), GENERATOR_FILE)  # what load_generator reads

    history: list[dict[str, float]] = []
    started = time.perf_counter()
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("steps", total=cfg.steps, status="")
        for metrics in trainer.evaluations(lambda step: progress.update(task, completed=step)):
            metrics["seconds"] = time.perf_counter() - started
            history.append(metrics)
            with (out / "history.jsonl").open("a") as f:
                f.write(json.dumps(metrics) + "\n")
            checkpoint()
            progress.update(task, status=f"distance {metrics['distance']:.4g}")

    final = history[-1]
    final["steps_per_second"] = trainer.step / final["seconds"]
    atomic_write_text(out / "metrics.json", json.dumps(final, indent=2))
    save_samples(trainer, out / "samples.png")
    for key, value in final.items():
        typer.echo(f"  {key:<26} {value:.6g}")
    if trainer.diverged:
        typer.secho(f"diverged at step {trainer.step}", fg=typer.colors.YELLOW)
    written = ", ".join(str(out / n) for n in ("metrics.json", "samples.png", "checkpoint.pt"))
    typer.echo(f"wrote {written}, {out / GENERATOR_FILE}")
    typer.echo(f"sample from it: load_generator({str(out / GENERATOR_FILE)!r}), see the README")


# ---------------------------------------------------------------------- sweeps

STORAGE_HELP = "Folder that holds the sweeps (a shared file system path on clusters)."
TRACKING_HELP = "MLflow tracking URI."
TRACKING_DEFAULT = "sqlite:///mlflow.db in this folder"
VERBOSE_HELP = "Show Ray's, Tune's and MLflow's own output here (else: driver.log in the sweep)."
JSON_HELP = "Print JSON, for scripts."


def _fmt(value: float) -> str:
    return "–" if value != value else f"{value:.4g}"  # NaN: no value


def _print_leaderboard(ranked: Standings, top: int = 10) -> None:
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
        cells = [str(row["rank"]), row["combination"], _fmt(row[metric]), str(int(row["step"]))]
        cells.append(row["status"])
        if replicated and row["replicated"]:
            cells += [
                f"{int(row['seeds'])}/{int(row['seeds_planned'])}",
                f"{_fmt(row[f'{metric}_mean'])} ± {_fmt(row[f'{metric}_sd'])}",
                _fmt(row[f"{metric}_worst"]),
                _fmt(row.get("modes_captured_worst", float("nan"))),
                _fmt(row.get("high_quality_worst", float("nan"))),
            ]
        elif replicated:
            cells += ["–"] * 5
        view.add_row(*cells, row["trial_id"])
    # A log file or a pipe gets the whole table, not one squeezed into 80 columns.
    Console(width=None if sys.stdout.isatty() else 160).print(view)
    if replicated:
        typer.echo(RULE)


def _print_where(manifest: Manifest) -> None:
    folder = Path(manifest.sweep_dir)
    best = folder / BEST_FILE
    if best.exists():
        typer.echo(f"best config:      {best}  (retrain: gansweep train {best})")
    if (folder / "report.html").exists():
        typer.echo(f"report:           {folder / 'report.html'}")
    typer.echo(f"sweep folder:     {folder}")
    typer.echo(f"MLflow:           experiment {manifest.name!r} in {manifest.tracking_uri}")
    typer.echo(f"                  open it: gansweep ui --tracking-uri {manifest.tracking_uri}")
    typer.echo(f"Optuna study:     optuna-dashboard {manifest.study_storage}")


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


@app.command()
def sweep(
    space: str = typer.Option("quick", "--space", help="Built-in space name or YAML path."),
    name: str | None = typer.Option(
        None, "--name", help="Sweep name.", show_default="<space>-<time>"
    ),
    num_samples: int = typer.Option(8, "--num-samples", help="Trials to run."),
    max_concurrent: int = typer.Option(2, "--max-concurrent", help="Trials at once."),
    cpus_per_trial: float = typer.Option(1.0, "--cpus-per-trial"),
    gpus_per_trial: float = typer.Option(
        0.0, "--gpus-per-trial", help="Fractional packs trials on a GPU (0.25: four)."
    ),
    sampler: str = typer.Option("tpe", "--sampler", help="tpe | random | gp | cmaes | grid."),
    scheduler: str = typer.Option("asha", "--scheduler", help="asha | hyperband | fifo | pbt."),
    trainable: str = typer.Option(
        DEFAULT_TRAINABLE, "--trainable", help=f"{' | '.join(TRAINABLES)}, or {TRAINABLE_FORMS}."
    ),
    metric: str = typer.Option("distance", "--metric", help="Metric to optimize."),
    mode: str | None = typer.Option(
        None, "--mode", help="min | max.", show_default="the metric's own direction"
    ),
    time_budget: float | None = typer.Option(
        None, "--time-budget", help="Stop the search (running trials too) after this many seconds."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the Optuna sampler."),
    overrides: list[str] = typer.Option(
        [], "--set", help="Override a fixed value of the space: --set key=value."
    ),
    storage: str = typer.Option("sweeps", "--storage", help=STORAGE_HELP),
    address: str | None = typer.Option(
        None,
        "--address",
        help="Ray cluster address (RAY_ADDRESS works too).",
        show_default="local",
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help=TRACKING_HELP, show_default=TRACKING_DEFAULT
    ),
    max_failures: int = typer.Option(2, "--max-failures", help="Retries of a failed trial."),
    replicate_top: int = typer.Option(
        3, "--replicate-top", help="At the end, retrain the top K configs on fresh seeds (0: off)."
    ),
    seeds: int = typer.Option(3, "--seeds", help="Fresh seeds per replicated config."),
    verbose: bool = typer.Option(False, "--verbose", help=VERBOSE_HELP),
) -> None:
    """Run a sweep: Ray Tune trials proposed by Optuna, recorded in MLflow."""
    from gansweep.platform import sweep as sweeps  # deferred: Ray, MLflow take seconds
    from gansweep.platform.live_view import watching
    from gansweep.platform.sweep_input import SweepInputError, SweepOptions, prepare

    options = SweepOptions(
        space=space, name=name, num_samples=num_samples, max_concurrent=max_concurrent,
        cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial, sampler=sampler,
        scheduler=scheduler, trainable=trainable, metric=metric, mode=mode,
        time_budget=time_budget, seed=seed, overrides=overrides, storage=storage,
        address=address, tracking_uri=tracking_uri,
        max_failures=max_failures, replicate_top=replicate_top, seeds=seeds,
    )  # fmt: skip
    try:
        prepared = prepare(options)
    except SweepInputError as err:
        raise fail(str(err)) from None
    typer.echo(sweep_header(prepared))
    with resumable(prepared.name), watching(storage, prepared.name, prepared.sweep_dir, verbose):
        ranked = sweeps.run(prepared)
    _print_leaderboard(ranked)
    _print_where(_load_manifest(prepared.name, storage))


def _g(value: float | None, spec: str) -> str:
    """A number of the exported spread; None is "no value" (one seed has no sd)."""
    return "n/a" if value is None else format(value, spec)


def _load_manifest(name: str, storage: str) -> Manifest:
    try:
        return Manifest.load(storage, name)
    except SweepNotFoundError as err:
        raise fail(str(err)) from None


@app.command()
def resume(
    name: str = typer.Argument(..., help="The sweep to continue."),
    storage: str = typer.Option("sweeps", "--storage", help=STORAGE_HELP),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address."),
    verbose: bool = typer.Option(False, "--verbose", help=VERBOSE_HELP),
) -> None:
    """Continue an interrupted sweep: same searcher, trials, replication, MLflow parent run."""
    from gansweep.platform import sweep as sweeps  # deferred: Ray, MLflow take seconds
    from gansweep.platform.live_view import watching
    from gansweep.platform.sweep_input import SweepInputError, check_ray_address
    from gansweep.records.store import TrackingError

    manifest = _load_manifest(name, storage)
    try:
        check_ray_address(address)
        with resumable(name), watching(storage, name, Path(manifest.sweep_dir), verbose):
            ranked = sweeps.resume(manifest, address)
    except (SweepInputError, TrackingError) as err:
        raise fail(str(err)) from None
    _print_leaderboard(ranked)
    _print_where(manifest)


@app.command()
def replicate(
    name: str = typer.Argument(..., help="The finished sweep whose top configs to retrain."),
    top: int = typer.Option(5, "--top", help="How many of the top configs."),
    seeds: int = typer.Option(5, "--seeds", help="Fresh seeds per config."),
    storage: str = typer.Option("sweeps", "--storage", help=STORAGE_HELP),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address."),
) -> None:
    """Retrain the top configs of a sweep on fresh seeds; rank them by their worst seed."""
    from gansweep.platform import replicate as replication  # deferred: Ray takes seconds
    from gansweep.platform import sweep as sweeps
    from gansweep.platform.sweep_input import SweepInputError, SweepOptions, check_ray_address
    from gansweep.records.store import TrackingError, check_tracking_store

    manifest = _load_manifest(name, storage)
    options = SweepOptions(**manifest.options)
    try:
        check_ray_address(address)
        check_tracking_store(manifest.tracking_uri, must_exist=True)
        replication.check_request(manifest, top, seeds)
    except (SweepInputError, TrackingError, replication.ReplicationInputError) as err:
        raise fail(str(err)) from None
    typer.echo(f"replicating the top {top} configs of sweep {name!r} on {seeds} fresh seeds")
    sweeps.init_ray(address or options.address)
    sweeps.reopen_run(manifest.tracking_uri, manifest.parent_run_id)
    with resumable(name):
        replication.run(manifest, top, seeds, options)
    _print_leaderboard(sweeps.finalize(manifest))
    _print_where(manifest)


@app.command()
def export(
    name: str = typer.Argument(..., help="The sweep whose champion to export."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="YAML file.", show_default="best.yaml in the sweep folder"
    ),
    register: str | None = typer.Option(
        None, "--register", help="Also register the best generator (a pyfunc model) as this name."
    ),
    storage: str = typer.Option("sweeps", "--storage", help=STORAGE_HELP),
) -> None:
    """Write the champion's full config as YAML (`gansweep train` retrains it)."""
    from gansweep.platform.export import ExportError, export_best, register_champion  # deferred
    from gansweep.records.store import TrackingError, check_tracking_store

    manifest = _load_manifest(name, storage)
    try:
        check_tracking_store(manifest.tracking_uri, must_exist=True)
        path, provenance = export_best(manifest, output)
    except (ExportError, TrackingError) as err:
        raise fail(str(err)) from None
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
    if register:
        version = register_champion(manifest, provenance, register)
        typer.echo(f"registered model {register!r} version {version} with alias 'champion'")
        typer.echo(f"  load it: mlflow.pyfunc.load_model('models:/{register}@champion')")


@app.command()
def report(
    name: str = typer.Argument(..., help="The sweep to report on."),
    output: Path | None = typer.Option(
        None, "-o", "--output", help="HTML file.", show_default="report.html in the sweep folder"
    ),
    no_mlflow: bool = typer.Option(
        False, "--no-mlflow", help="Do not log the page to the sweep's MLflow parent run."
    ),
    storage: str = typer.Option("sweeps", "--storage", help=STORAGE_HELP),
) -> None:
    """Write the sweep's HTML report (opens from disk, offline) and log it to MLflow."""
    from gansweep.dashboards import ReportError, write_report  # deferred

    manifest = _load_manifest(name, storage)
    try:
        path = write_report(manifest, output, log_to_mlflow=not no_mlflow)
    except ReportError as err:
        raise fail(str(err)) from None
    typer.echo(f"wrote {path}")


@app.command()
def status(
    name: str = typer.Argument(..., help="The sweep to show."),
    storage: str = typer.Option("sweeps", "--storage", help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Where a sweep stands (running, finished, or interrupted: then how to resume it)."""
    from gansweep.platform.live_view import render  # deferred: MLflow takes seconds
    from gansweep.records.progress import progress

    now = progress(_load_manifest(name, storage))
    if as_json:
        typer.echo(json.dumps(now.to_json(), indent=2))
        return
    Console(width=None if sys.stdout.isatty() else 160).print(render(now))


@app.command(name="ls")
def list_sweeps(
    storage: str = typer.Option("sweeps", "--storage", help=STORAGE_HELP),
    as_json: bool = typer.Option(False, "--json", help=JSON_HELP),
) -> None:
    """Every sweep in the storage folder: its state, trials done, best result."""
    from gansweep.records.manifest import list_sweeps as names  # deferred, like MLflow below
    from gansweep.records.progress import progress

    folder = Path(storage).expanduser()
    if not folder.is_dir():
        raise fail(f"storage folder {str(folder)!r} does not exist (give --storage FOLDER)")
    found = [progress(Manifest.load(folder, name)) for name in names(folder)]
    if as_json:
        typer.echo(json.dumps([p.to_json() for p in found], indent=2))
        return
    if not found:
        typer.echo(f"no sweeps in {folder.resolve()}")
        return
    view = Table(title=f"sweeps in {folder.resolve()}", title_justify="left")
    for column in ("name", "state", "trials", "best", "combination", "started"):
        view.add_column(column, justify="right" if column in ("trials", "best") else "left")
    for p in found:
        best = p.best or {}
        value = f"{p.metric} {_fmt(best['value'])}" if best else "–"
        state = p.state + (" (driver died)" if p.resume and p.note else "")
        view.add_row(
            p.name, state, f"{p.done}/{p.planned}", value, best.get("combination", "–"), p.created
        )
    Console(width=None if sys.stdout.isatty() else 160).print(view)


@app.command()
def spaces() -> None:
    """List the built-in search spaces."""
    from gansweep.search_spaces import BUILTIN_SPACES, load_space  # deferred: imports torch

    for space_name in BUILTIN_SPACES:
        space = load_space(space_name)
        axes = ", ".join(p.name for p in space.params)
        typer.echo(f"{space_name:<12} {space.description}")
        typer.echo(f"{'':<12} searches: {axes}")


@app.command()
def ui(
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help=TRACKING_HELP, show_default=TRACKING_DEFAULT
    ),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(5000, "--port"),
) -> None:
    """Start the MLflow UI on the tracking store the sweeps use."""
    from gansweep.records.store import TrackingError, resolve_tracking_uri  # deferred: MLflow

    try:
        uri = resolve_tracking_uri(tracking_uri)
    except TrackingError as err:
        raise fail(str(err)) from None
    if uri.startswith(("http://", "https://")):
        typer.echo(f"that store is already served: open {uri}")
        return
    typer.echo(f"MLflow UI for {uri} at http://{host}:{port} (Ctrl-C stops it)")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri]
    raise typer.Exit(serve([*command, "--host", host, "--port", str(port)]))


def serve(command: list[str], grace_s: float = 5.0) -> int:
    """Run a server until it exits, or until this process gets SIGTERM or Ctrl-C: then stop
    the server's whole process group. MLflow's server starts its own workers (uvicorn,
    gunicorn); stopping only the child it started leaves them holding the port."""
    # Its own session, hence its own process group: killpg reaches the workers, and a
    # Ctrl-C in the terminal reaches only us, so the stop happens once, here.
    process = subprocess.Popen(command, start_new_session=True)

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # one way out for both signals

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return process.wait()
    except KeyboardInterrupt:
        _stop_group(process, grace_s)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_group(process: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM to the group, then SIGKILL to whatever is left after `grace_s`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:  # the group is gone already
            return
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
        # The leader is gone; its workers may still be shutting down in the group.
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def main() -> None:
    """The console script: run the command, then leave without the interpreter's teardown.

    After a command, Python spends 1.2-2.3 s (measured) freeing the modules of torch, Ray
    and MLflow, which a user waits for and nothing needs. Everything a command writes is
    written by then: thread pools are stopped, the threads that are not daemons joined
    and the exit handlers (MLflow's, Ray's and logging's flushes among them) run, as in
    a normal exit; then the process ends. An unexpected exception still ends the normal
    way, with its traceback.
    """
    try:
        app()
        code: int | str | None = 0
    except SystemExit as done:  # typer ends every command with one
        code = done.code
    # The interpreter's own first steps at exit, in its order: stop the thread pools
    # (their workers are not daemons: joined before they are told to stop, they wait
    # forever), join the threads that are not daemons, run the exit handlers.
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    if isinstance(code, str):  # what sys.exit("message") does
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":  # pragma: no cover - the console script calls main
    main()
