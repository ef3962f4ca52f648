"""What `gansweep sweep` takes, and checking all of it before anything is created: no Ray
cluster is started, no MLflow run and no sweep folder exist until ``prepare`` returns."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from gansweep.platform.options import MODES, SweepOptions
from gansweep.platform.samplers import SAMPLERS
from gansweep.platform.schedulers import SCHEDULERS
from gansweep.platform.trainable_registry import (
    TrainableError,
    canonical,
    load_trainable,
)
from gansweep.platform.warm_start import WarmStart, WarmStartError, describe, plan
from gansweep.records.manifest import MANIFEST_FILE, check_sweep_name
from gansweep.records.store import (
    TrackingError,
    check_tracking_store,
    resolve_tracking_uri,
    sqlite_path,
)
from gansweep.records.write import check_experiment_usable
from gansweep.search_spaces import SearchSpace, SearchSpaceError, load_space
from gansweep.trainables.config import ConfigError, TrialConfig, parse_overrides
from gansweep.trainables.data import DATASETS, DataUnavailableError, load_dataset
from gansweep.trainables.image_metrics import InceptionWeightsError, check_inception_weights
from gansweep.trainables.metric_registry import (
    METRICS,
    NOT_TARGETS,
    MetricSpec,
    reported_metrics,
)

# Trials in flight that write into one SQLite file (the embedded default) before its
# writes slow down: measured by benchmarks/sqlite_writers.py (docs/results.md, "The driver
# at scale"). Each trial writing an evaluation a second, the p99 of one write was
# 0.1-0.2 s at 8 writers, 0.35 s at 32, 0.75 s at 64, 1.7 s at 96 and 3.8 s at 128
# (medians of 2-3 runs): the file takes about 60 writes/s at most, and from 64 writers
# on every trial waits on the others. Past it, `sweep` says to use an MLflow server.
SQLITE_WRITERS_MAX = 32


class SweepInputError(ValueError):
    """Bad sweep input; the CLI turns it into exit code 2."""


@dataclass
class PreparedSweep:
    options: SweepOptions  # with mode resolved and num_samples fitted to a grid
    name: str
    space: SearchSpace  # with the --set values merged into its fixed values
    sweep_dir: Path
    tracking_uri: str
    # What prepare changed in the options, said once in the sweep's header.
    notes: list[str] = field(default_factory=list)
    # The configs the search runs first (--warm-start), enqueued when its study is new.
    warm_start: list[WarmStart] = field(default_factory=list)


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise SweepInputError(f"--{name.replace('_', '-')} must be {bound}, got {value}")


def check_ray_address(address: str | None, timeout: float = 5.0) -> None:
    """An unreachable cluster fails in seconds with a clear message, not after Ray's
    own minutes of retries."""
    if not address or address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise SweepInputError(f"cluster address {address!r} is not host:port or ray://host:port")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as err:
        raise SweepInputError(f"Ray cluster at {address} does not answer: {err}") from None


def space_metrics(space: SearchSpace, labelled: bool = True) -> dict[str, MetricSpec]:
    """The metrics that every trial of the space reports (Tune checks each result for
    the sweep's metric, so one trial without it would fail the sweep); labelled: whether
    every data set of the space has labels (check_data says)."""
    kinds = {DATASETS[name].kind for name in space.possible_values("dataset")}
    conditional = all(space.possible_values("conditional"))
    inception = all(v is not None for v in space.possible_values("inception_weights"))
    metrics = [reported_metrics(kind, conditional, inception, labelled) for kind in kinds]
    return {name: spec for name, spec in metrics[0].items() if all(name in m for m in metrics)}


def resolve_mode(space: SearchSpace, metric: str, mode: str | None, labelled: bool = True) -> str:
    """The optimization direction of `metric`, checked against what the trials report."""
    valid = space_metrics(space, labelled)
    listed = ", ".join(f"{n} ({s.mode})" for n, s in valid.items())
    if metric not in valid:
        if metric in NOT_TARGETS:
            why = "is reported but ranks nothing (it says little about the samples)"
        elif metric in METRICS:
            why = f"is not reported by every trial of space {space.name!r}"
        else:
            why = "is not a metric that trials report"
        raise SweepInputError(f"--metric {metric!r} {why}; valid: {listed}")
    own = valid[metric].mode
    if mode is None:
        return own
    if mode not in MODES:
        raise SweepInputError(f"unknown mode {mode!r}; valid: {', '.join(MODES)}")
    if mode != own:
        better = "lower" if own == "min" else "higher"
        raise SweepInputError(
            f"--mode {mode} does not fit --metric {metric}: {better} is better, so its mode "
            f"is {own} (or leave --mode out)"
        )
    return mode


def check_data(space: SearchSpace) -> bool:
    """Open every data set the space can train on, as its trials will (every image file
    decoded, labels where conditional=true may be sampled), and check the Inception
    weights: a problem stops the sweep here, not in every trial after its first steps.
    Loaded sets stay in this process's cache; trials load their own copy.

    Returns whether every image data set of the space has labels (classes)."""
    labelled = True
    need_labels = None
    if True in space.possible_values("conditional"):
        need_labels = f"conditional=true (which space {space.name!r} can sample)"
    image_size = space.possible_values("image_size")[0]  # any size opens every file
    for dataset in space.possible_values("dataset"):
        for data_path in space.possible_values("data_path"):
            try:
                data = load_dataset(dataset, data_path, image_size, need_labels)
            except DataUnavailableError as err:
                raise SweepInputError(str(err)) from None
            labelled = labelled and (data.kind != "image" or data.labelled)
    for weights in space.possible_values("inception_weights"):
        if weights is not None:
            try:
                check_inception_weights(weights)
            except InceptionWeightsError as err:
                raise SweepInputError(str(err)) from None
    return labelled


def prepare(options: SweepOptions) -> PreparedSweep:
    """Validate everything; create nothing."""
    try:  # first: check_data may download a data set, and a URI with a secret is refused
        uri = resolve_tracking_uri(options.tracking_uri)
    except TrackingError as err:
        raise SweepInputError(str(err)) from None
    try:
        space = load_space(options.space)
    except SearchSpaceError as err:
        raise SweepInputError(str(err)) from None
    try:
        overrides = parse_overrides(options.overrides)
    except ConfigError as err:
        raise SweepInputError(str(err)) from None
    searched = {p.name for p in space.params}
    clash = sorted(searched & overrides.keys())
    if clash:
        raise SweepInputError(
            f"--set {', '.join(clash)}: searched by space {space.name!r}; --set only "
            f"overrides its fixed values ({', '.join(space.fixed) or 'none'}) or adds fields"
        )
    try:
        TrialConfig.from_dict({**space.fixed, **overrides})
    except ConfigError as err:
        raise SweepInputError(f"fixed values with --set do not validate: {err}") from None
    fixed = {**space.fixed, **overrides}
    for key in ("data_path", "inception_weights"):
        if fixed.get(key):  # trials run in folders of their own: a relative path breaks
            fixed[key] = str(Path(fixed[key]).expanduser().absolute())
    space = dataclasses.replace(space, fixed=fixed)
    labelled = check_data(space)

    try:
        load_trainable(options.trainable)
    except TrainableError as err:
        raise SweepInputError(str(err)) from None
    options = dataclasses.replace(options, trainable=canonical(options.trainable))
    for kind, chosen, registry in (
        ("sampler", options.sampler, SAMPLERS),
        ("scheduler", options.scheduler, SCHEDULERS),
    ):
        if chosen not in registry:
            valid = ", ".join(registry)
            raise SweepInputError(f"unknown {kind} {chosen!r}; valid: {valid}")
        need = registry[chosen].check(space)
        if need is not None:
            raise SweepInputError(f"{kind} {chosen!r} needs {need}")
    mode = resolve_mode(space, options.metric, options.mode, labelled)
    check_positive("num_samples", options.num_samples)
    check_positive("max_concurrent", options.max_concurrent)
    check_positive("cpus_per_trial", options.cpus_per_trial)
    check_positive("gpus_per_trial", options.gpus_per_trial, allow_zero=True)
    check_positive("max_failures", options.max_failures, allow_zero=True)
    check_positive("replicate_top", options.replicate_top, allow_zero=True)
    check_positive("seeds", options.seeds, allow_zero=options.replicate_top == 0)
    check_positive("warm_start_top", options.warm_start_top)
    if options.time_budget is not None:
        check_positive("time_budget", options.time_budget)
    if options.warm_start and options.sampler == "grid":
        raise SweepInputError(
            "--warm-start with --sampler grid: the grid runs every config anyway; "
            f"warm starts work with {', '.join(s for s in SAMPLERS if s != 'grid')}"
        )
    if options.warm_start and SCHEDULERS[options.scheduler].population is not None:
        raise SweepInputError(
            f"--warm-start with --scheduler {options.scheduler}: its population is its own; "
            "warm starts work with "
            + ", ".join(n for n, s in SCHEDULERS.items() if s.population is None)
        )
    if options.storage.startswith(("s3://", "gs://", "hdfs://")):
        raise SweepInputError(
            f"--storage {options.storage!r}: object stores are not supported yet; use a "
            "folder (a shared file system path on clusters)"
        )

    name = options.name or f"{space.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    try:
        check_sweep_name(name)
    except ValueError as err:
        raise SweepInputError(str(err)) from None
    sweep_dir = Path(options.storage).expanduser().resolve() / name
    # A folder without a manifest is what a failed start leaves (its driver.log): the
    # name is free again. The claim itself is atomic, later (driver_lock.claim_new).
    if (sweep_dir / MANIFEST_FILE).exists():
        raise SweepInputError(
            f"sweep {name!r} already exists in {sweep_dir.parent}: continue it with "
            f"`gansweep resume {name}` or choose another --name"
        )
    try:  # after the cheap checks: it may wait on a server
        check_tracking_store(uri)
        check_experiment_usable(uri, name)
    except TrackingError as err:
        raise SweepInputError(str(err)) from None
    check_ray_address(options.address or os.environ.get("RAY_ADDRESS"))

    options = dataclasses.replace(options, mode=mode)
    notes = []
    warm_start: list[WarmStart] = []
    if options.warm_start:  # after the store's check: an earlier sweep is read from it
        try:
            warm_start = plan(space, options.warm_start, options.storage, options.warm_start_top)
        except WarmStartError as err:
            raise SweepInputError(str(err)) from None
        notes.append(describe(warm_start))
    if options.sampler == "grid" and options.num_samples > space.grid_size():
        # Past the last combination the brute-force sampler would repeat them.
        notes.append(
            f"space {space.name!r} has {space.grid_size()} combinations: running "
            f"{space.grid_size()} trials, not {options.num_samples}"
        )
        options = dataclasses.replace(options, num_samples=space.grid_size())
    if sqlite_path(uri) is not None and options.max_concurrent > SQLITE_WRITERS_MAX:
        notes.append(
            f"warning: {options.max_concurrent} trials at once write into one SQLite file; "
            f"past {SQLITE_WRITERS_MAX} its writes slow down, and every trial waits on them. "
            "For more in flight, run an MLflow server on PostgreSQL "
            "(gansweep/platform/deploy/) and pass --tracking-uri http://HOST:PORT"
        )
    return PreparedSweep(options, name, space, sweep_dir, uri, notes, warm_start)
