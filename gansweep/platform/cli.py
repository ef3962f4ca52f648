"""The `gansweep` command line: each command parses, calls one module, prints its views.
Exit codes: 0 done; 2 bad input (a message names the bad value and the valid ones,
nothing is launched or written); 1 an unexpected failure. Commands import torch, Ray and
MLflow inside their bodies (seconds each): `--help` or a refused input waits for none.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from gansweep.platform import cli_options as o
from gansweep.platform import views
from gansweep.platform.options import DEFAULTS as D
from gansweep.platform.process_exit import run_then_exit
from gansweep.records.manifest import MANIFEST_FILE, Manifest, SweepNotFoundError
from gansweep.records.store import TrackingError

app = typer.Typer(
    name="gansweep",
    help="Large GAN studies: sweeps on Ray Tune, guided by Optuna, recorded in MLflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

BAD_INPUT = 2


@contextmanager
def resumable(name: str, sweep_dir: Path | None = None) -> Iterator[None]:
    """Ctrl-C stops a sweep cleanly: it is marked interrupted, and the way on is shown.
    One stopped before it started (no manifest in `sweep_dir`) has nothing to resume."""
    try:
        yield
    except KeyboardInterrupt:
        if sweep_dir is not None and not (sweep_dir / MANIFEST_FILE).exists():
            typer.secho(f"interrupted before sweep {name!r} started", err=True, fg="yellow")
        else:
            way_on = f"continue it with `gansweep resume {name}`"
            typer.secho(f"interrupted: sweep {name!r} is saved; {way_on}", err=True, fg="yellow")
        raise typer.Exit(130) from None


@contextmanager
def _driving(manifest: Manifest, force: bool) -> Iterator[None]:
    """Hold the sweep's lock for the block: one driver per sweep (records/driver_lock.py).
    Another live driver means exit 2, naming it."""
    from gansweep.records.driver_lock import DriverLock, DriverLockError

    with refused(DriverLockError):
        lock = DriverLock(manifest.sweep_dir).acquire(force)
    with lock:
        yield


class BadInput(ValueError):
    """Bad input found by the CLI itself."""


@contextmanager
def refused(*errors: type[Exception]) -> Iterator[None]:
    """Bad input: any of `errors` raised inside ends the command with its message, code 2."""
    caught: tuple[type[Exception], ...] = (BadInput, *errors)
    try:
        yield
    except caught as err:
        typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
        raise typer.Exit(BAD_INPUT) from None


def _load_manifest(name: str, storage: str) -> Manifest:
    # TrackingError: a manifest that records a URI with a secret (Manifest refuses it).
    with refused(SweepNotFoundError, TrackingError):
        return Manifest.load(storage, name)


@app.command()
def train(
    config: o.ConfigFile = None,
    overrides: o.FieldOverrides = [],  # noqa: B006 - typer copies it
    out: o.Out = None,
    force: o.Force = False,
    threads: o.Threads = None,
) -> None:
    """Train one GAN and write metrics.json, samples.png, trial.pt and generator.pt."""
    from gansweep.platform import train_one  # deferred: torch takes seconds

    with refused(train_one.TrainInputError):
        prepared = train_one.prepare(config, overrides, out, threads, force)
    train_one.print_start(prepared)
    train_one.print_result(prepared, train_one.train(prepared))


@app.command()
def sweep(
    space: o.Space = D.space,
    name: o.Name = None,
    num_samples: o.NumSamples = D.num_samples,
    max_concurrent: o.MaxConcurrent = D.max_concurrent,
    cpus_per_trial: o.CpusPerTrial = D.cpus_per_trial,
    gpus_per_trial: o.GpusPerTrial = D.gpus_per_trial,
    sampler: o.Sampler = D.sampler,
    scheduler: o.Scheduler = D.scheduler,
    trainable: o.Trainable = D.trainable,
    metric: o.Metric = D.metric,
    mode: o.Mode = None,
    time_budget: o.TimeBudget = None,
    seed: o.SamplerSeed = D.seed,
    overrides: o.SpaceOverrides = [],  # noqa: B006 - typer copies it
    storage: o.Storage = D.storage,
    address: o.Address = None,
    tracking_uri: o.TrackingUri = None,
    max_failures: o.MaxFailures = D.max_failures,
    replicate_top: o.ReplicateTop = D.replicate_top,
    seeds: o.Seeds = D.seeds,
    warm_start: o.WarmStart = [],  # noqa: B006 - typer copies it
    warm_start_top: o.WarmStartTop = D.warm_start_top,
    verbose: o.Verbose = False,
) -> None:
    """Run a sweep: Ray Tune trials proposed by Optuna, recorded in MLflow."""
    chosen = dict(locals())  # the parameters, before the imports below add names
    from gansweep.platform import sweep as sweeps  # deferred: Ray, MLflow take seconds
    from gansweep.platform.live_view import watching
    from gansweep.platform.sweep_input import SweepInputError, SweepOptions, prepare
    from gansweep.records.driver_lock import DriverLockError, claim_new

    # Every parameter but --verbose is the SweepOptions field of the same name.
    with refused(SweepInputError):
        prepared = prepare(SweepOptions(**{k: v for k, v in chosen.items() if k != "verbose"}))
    with refused(DriverLockError):
        lock = claim_new(prepared.sweep_dir)
    typer.echo(views.sweep_header(prepared))
    with lock, resumable(prepared.name, prepared.sweep_dir):
        with watching(storage, prepared.name, prepared.sweep_dir, verbose):
            ranked = sweeps.run(prepared)
    views.print_outcome(ranked, _load_manifest(prepared.name, storage))


@app.command()
def resume(
    name: str = typer.Argument(..., help="The sweep to continue."),
    storage: o.Storage = D.storage,
    address: o.Address = None,
    force: o.TakeOver = False,
    verbose: o.Verbose = False,
) -> None:
    """Continue an interrupted sweep: same searcher, trials, replication, MLflow parent run."""
    manifest = _load_manifest(name, storage)  # first: a refused one waits for no import
    from gansweep.platform import sweep as sweeps  # deferred: Ray, MLflow take seconds
    from gansweep.platform.live_view import watching
    from gansweep.platform.sweep_input import SweepInputError, check_ray_address

    with refused(SweepInputError, TrackingError):
        check_ray_address(address)
    with _driving(manifest, force), refused(SweepInputError, TrackingError):
        manifest = _load_manifest(name, storage)  # as the last driver left it
        with resumable(name), watching(storage, name, Path(manifest.sweep_dir), verbose):
            ranked = sweeps.resume(manifest, address)
    views.print_outcome(ranked, manifest)


@app.command()
def replicate(
    name: str = typer.Argument(..., help="The finished sweep whose top configs to retrain."),
    top: o.Top = 5,
    seeds: o.Seeds = 5,
    storage: o.Storage = D.storage,
    address: o.Address = None,
    force: o.TakeOver = False,
) -> None:
    """Retrain the top configs of a sweep on fresh seeds; rank them by their worst seed."""
    manifest = _load_manifest(name, storage)  # first: a refused one waits for no import
    from gansweep.platform import sweep as sweeps  # deferred: Ray takes seconds
    from gansweep.platform.replicate import ReplicationInputError
    from gansweep.platform.sweep_input import SweepInputError

    with _driving(manifest, force):
        manifest = _load_manifest(name, storage)  # as the last driver left it
        typer.echo(f"replicating the top {top} configs of sweep {name!r} on {seeds} fresh seeds")
        with refused(SweepInputError, TrackingError, ReplicationInputError), resumable(name):
            ranked = sweeps.replicate_top(manifest, top, seeds, address)
    views.print_outcome(ranked, manifest)


@app.command()
def export(
    name: str = typer.Argument(..., help="The sweep whose champion to export."),
    output: o.ExportFile = None,
    register: o.Register = None,
    storage: o.Storage = D.storage,
    force: o.TakeOver = False,
) -> None:
    """Write the champion's full config as YAML (`gansweep train` retrains it)."""
    manifest = _load_manifest(name, storage)  # first: a refused one waits for no import
    from gansweep.platform.export import ExportError, export_best, register_champion  # deferred
    from gansweep.records.store import check_tracking_store

    with refused(ExportError, TrackingError):
        check_tracking_store(manifest.tracking_uri, must_exist=True)
        path, provenance = export_best(manifest, output)
    views.print_export(path, provenance)
    if register:  # a model version is written: not beside a driver that may change the champion
        with _driving(manifest, force):
            registered = register_champion(manifest, provenance, register)
        views.print_registered(register, registered)


@app.command()
def report(
    name: str = typer.Argument(..., help="The sweep to report on."),
    output: o.ReportFile = None,
    no_mlflow: o.NoMlflow = False,
    storage: o.Storage = D.storage,
) -> None:
    """Write the sweep's HTML report (opens from disk, offline) and log it to MLflow."""
    manifest = _load_manifest(name, storage)  # first: a refused one waits for no import
    from gansweep.dashboards import ReportError, write_report  # deferred

    with refused(ReportError):
        path = write_report(manifest, output, log_to_mlflow=not no_mlflow)
    typer.echo(f"wrote {path}")


@app.command()
def status(
    name: str = typer.Argument(..., help="The sweep to show."),
    storage: o.Storage = D.storage,
    as_json: o.AsJson = False,
) -> None:
    """Where a sweep stands (running, finished, or interrupted: then how to resume it)."""
    manifest = _load_manifest(name, storage)  # first: a refused one waits for no import
    from gansweep.platform.live_view import render  # deferred: MLflow takes seconds
    from gansweep.records.progress import progress

    now = progress(manifest)
    views.print_json(now.to_json()) if as_json else views.console().print(render(now))


@app.command(name="ls")
def list_sweeps(storage: o.Storage = D.storage, as_json: o.AsJson = False) -> None:
    """Every sweep in the storage folder: its state, trials done, best result."""
    from gansweep.records.manifest import list_sweeps as names

    folder = Path(storage).expanduser()
    with refused(TrackingError):  # a manifest that records a URI with a secret
        if not folder.is_dir():
            raise BadInput(f"storage folder {str(folder)!r} does not exist (give --storage FOLDER)")
        manifests = [Manifest.load(folder, name) for name in names(folder)]
    from gansweep.records.progress import progress  # deferred: MLflow takes seconds

    found = [progress(manifest) for manifest in manifests]
    if as_json:
        return views.print_json([p.to_json() for p in found])
    views.print_sweeps(folder, found)


@app.command()
def spaces() -> None:
    """List the built-in search spaces."""
    views.print_spaces()


@app.command()
def ui(tracking_uri: o.TrackingUri = None, host: o.Host = "127.0.0.1", port: o.Port = 5000) -> None:
    """Start the MLflow UI on the tracking store the sweeps use."""
    from gansweep.platform.ui_server import serve_ui  # deferred: MLflow takes seconds

    with refused(TrackingError):
        raise typer.Exit(serve_ui(tracking_uri, host, port))


def main() -> None:
    """The console script (process_exit.run_then_exit says why it exits as it does)."""
    run_then_exit(app)


if __name__ == "__main__":  # pragma: no cover - the console script calls main
    main()
