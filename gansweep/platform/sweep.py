"""Build and run a sweep: a Ray Tune Tuner whose trials are GANTrainer runs, proposed by
Optuna (OptunaSearch over a search space's define-by-run function), stopped early by a
scheduler, recorded in MLflow; and resume one that was interrupted.

Everything that can be wrong with the input is checked in ``prepare`` before anything is
created: no Ray cluster is started, no MLflow run and no sweep folder exist until then.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import optuna
import pandas as pd

from gansweep.platform import tracking
from gansweep.platform.manifest import MANIFEST_FILE, Manifest, check_sweep_name
from gansweep.search_spaces import SearchSpace, SearchSpaceError, load_space
from gansweep.trainables.config import ConfigError, TrialConfig, parse_overrides
from gansweep.trainables.metrics import PRIMARY_METRIC, PRIMARY_MODE

log = logging.getLogger(__name__)


def startup_trials(num_samples: int) -> int:
    """Random trials before a model-based sampler starts modelling: Optuna's default of 10
    would make every sweep of 10 trials or fewer a random search. A quarter of the
    budget, at least 2, at most Optuna's 10."""
    return max(2, min(10, num_samples // 4))


SAMPLERS: dict[str, Callable[[int | None, int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed, n: optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=startup_trials(n)
    ),
    "random": lambda seed, n: optuna.samplers.RandomSampler(seed=seed),
    "gp": lambda seed, n: optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(n)),
    "cmaes": lambda seed, n: optuna.samplers.CmaEsSampler(seed=seed),
    # Every combination once; Optuna's brute force handles conditional parameters.
    "grid": lambda seed, n: optuna.samplers.BruteForceSampler(seed=seed),
}
SCHEDULERS = ("asha", "hyperband", "fifo")
MODES = ("min", "max")


class SweepInputError(ValueError):
    """Bad sweep input; the CLI turns it into exit code 2."""


@dataclass
class SweepOptions:
    """Everything `gansweep sweep` takes; recorded in the manifest and the parent run."""

    space: str = "quick"
    name: str | None = None
    num_samples: int = 8
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    sampler: str = "tpe"
    scheduler: str = "asha"
    metric: str = PRIMARY_METRIC
    mode: str = PRIMARY_MODE
    time_budget: float | None = None  # seconds
    seed: int | None = 0
    overrides: list[str] = field(default_factory=list)
    storage: str = "sweeps"
    address: str | None = None
    tracking_uri: str | None = None
    max_failures: int = 2


@dataclass
class PreparedSweep:
    options: SweepOptions
    name: str
    space: SearchSpace
    sweep_dir: Path
    tracking_uri: str


def _check_positive(name: str, value: float, allow_zero: bool = False) -> None:
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


def prepare(options: SweepOptions) -> PreparedSweep:
    """Validate everything; create nothing."""
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
    space = dataclasses.replace(space, fixed={**space.fixed, **overrides})

    if options.sampler not in SAMPLERS:
        raise SweepInputError(f"unknown sampler {options.sampler!r}; valid: {', '.join(SAMPLERS)}")
    if options.sampler == "grid" and not space.is_discrete:
        continuous = [p.name for p in space.params if p.kind in ("uniform", "loguniform")]
        raise SweepInputError(
            f"sampler 'grid' needs a space of choice/int parameters only; space "
            f"{space.name!r} has continuous ones: {', '.join(continuous)}"
        )
    if options.sampler == "grid" and options.num_samples > space.grid_size():
        # Past the last combination the brute-force sampler would repeat them.
        log.warning(
            "space %r has %d combinations: running %d trials, not %d",
            space.name, space.grid_size(), space.grid_size(), options.num_samples,
        )  # fmt: skip
        options = dataclasses.replace(options, num_samples=space.grid_size())
    if options.scheduler not in SCHEDULERS:
        raise SweepInputError(
            f"unknown scheduler {options.scheduler!r}; valid: {', '.join(SCHEDULERS)}"
        )
    if options.mode not in MODES:
        raise SweepInputError(f"unknown mode {options.mode!r}; valid: {', '.join(MODES)}")
    if not options.metric.strip():
        raise SweepInputError("--metric must name a reported metric, e.g. distance")
    _check_positive("num_samples", options.num_samples)
    _check_positive("max_concurrent", options.max_concurrent)
    _check_positive("cpus_per_trial", options.cpus_per_trial)
    _check_positive("gpus_per_trial", options.gpus_per_trial, allow_zero=True)
    _check_positive("max_failures", options.max_failures, allow_zero=True)
    if options.time_budget is not None:
        _check_positive("time_budget", options.time_budget)
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
    if sweep_dir.exists():
        raise SweepInputError(
            f"sweep {name!r} already exists in {sweep_dir.parent}: continue it with "
            f"`gansweep resume {name}` or choose another --name"
        )
    try:
        uri = tracking.resolve_tracking_uri(options.tracking_uri)
        tracking.check_tracking_store(uri)
    except tracking.TrackingError as err:
        raise SweepInputError(str(err)) from None
    check_ray_address(options.address or os.environ.get("RAY_ADDRESS"))
    return PreparedSweep(options, name, space, sweep_dir, uri)


# ------------------------------------------------------------------- Ray Tune glue


def _init_ray(address: str | None) -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=address, logging_level=logging.WARNING, include_dashboard=False)


def _scheduler(name: str, steps: int, eval_every: int):
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler

    # Time is counted in generator steps (the reported "step"), so rungs fall on
    # evaluations whatever the wall-clock speed of a trial.
    if name == "asha":
        return ASHAScheduler(
            time_attr="step", max_t=steps, grace_period=min(eval_every, steps), reduction_factor=3
        )
    if name == "hyperband":
        return HyperBandScheduler(time_attr="step", max_t=steps, reduction_factor=3)
    return FIFOScheduler()


def _close_trial_runs_callback(manifest: Manifest):
    """A Tune callback on the driver that closes the MLflow run of a trial the scheduler
    stopped (its function never returns) or that failed for good."""
    from ray import tune

    from gansweep.platform.export import run_id_of_trial, trial_outcome

    class CloseTrialRuns(tune.Callback):
        def _close(self, trial, status: str, run_status: str) -> None:
            try:
                run_id = run_id_of_trial(manifest, trial.trial_id)
                if run_id is not None:
                    tracking.end_trial_run(manifest.tracking_uri, run_id, status, run_status)
            except Exception as err:  # bookkeeping must never stop the sweep
                log.warning("could not close the MLflow run of %s: %s", trial, err)

        def on_trial_complete(self, iteration, trials, trial, **info):
            planned = TrialConfig.from_dict(trial.config).steps
            self._close(trial, trial_outcome(trial.last_result or {}, planned), "FINISHED")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._close(trial, "failed", "FAILED")

    return CloseTrialRuns()


def _resumable_optuna_search(**kwargs):
    """OptunaSearch whose restore reconciles its saved state with the study.

    Tune saves the searcher with its experiment state, every 10 s or more, while the study
    in optuna.db is always current; after the driver dies the two disagree:
    - a trial the study saw finish after the last save is resumed by Tune (from an older
      checkpoint): it counts as completed, so its results are not reported again (Optuna
      refuses to update a finished trial, and the resumed sweep would end with an error);
    - a trial asked for after the last save is unknown to the restored Tune experiment,
      which asks for a new one in its place: nothing will ever finish it, so it is FAIL.
    """
    from ray.tune.search.optuna import OptunaSearch

    class ResumableOptunaSearch(OptunaSearch):
        def restore(self, checkpoint_path: str) -> None:
            super().restore(checkpoint_path)
            study = self._ot_study
            finished = {t.number for t in study.get_trials(deepcopy=False) if t.state.is_finished()}
            known = set()
            for trial_id, ot_trial in self._ot_trials.items():
                known.add(ot_trial.number)
                if ot_trial.number in finished:
                    self._completed_trials.add(trial_id)
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            for trial in running:
                if trial.number not in known:
                    log.warning("Optuna trial %d was lost with the driver: FAIL", trial.number)
                    study.tell(trial.number, state=optuna.trial.TrialState.FAIL)

    return ResumableOptunaSearch(**kwargs)


def _build_tuner(manifest: Manifest, space: SearchSpace, options: SweepOptions):
    from ray import tune

    from gansweep.trainables.trainable import SweepContext, train_gan, trial_run_name

    context = SweepContext(
        manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id, manifest.name
    )
    trainable = tune.with_resources(
        tune.with_parameters(train_gan, context=context),
        {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial},
    )
    base = TrialConfig.from_dict(space.fixed)
    searcher = _resumable_optuna_search(
        space=space.define,
        metric=options.metric,
        mode=options.mode,
        sampler=SAMPLERS[options.sampler](options.seed, options.num_samples),
        study_name=manifest.study_name,
        storage=optuna.storages.RDBStorage(manifest.study_storage),
    )
    name_of = lambda trial: trial_run_name(trial.config, trial.trial_id)  # noqa: E731
    tune_config = tune.TuneConfig(
        metric=options.metric,
        mode=options.mode,
        search_alg=searcher,
        scheduler=_scheduler(options.scheduler, base.steps, base.eval_every),
        num_samples=options.num_samples,
        max_concurrent_trials=options.max_concurrent,
        time_budget_s=options.time_budget,
        trial_name_creator=name_of,
        trial_dirname_creator=name_of,
    )
    run_config = tune.RunConfig(
        name=manifest.name,
        storage_path=str(Path(manifest.sweep_dir).parent),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
        failure_config=tune.FailureConfig(max_failures=options.max_failures),
        callbacks=[_close_trial_runs_callback(manifest)],
        verbose=1,
    )
    return trainable, tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


# ------------------------------------------------------------------ the sweep itself


def start(prepared: PreparedSweep) -> Manifest:
    """Create the sweep's folder, MLflow experiment + parent run, and manifest."""
    options = prepared.options
    prepared.sweep_dir.mkdir(parents=True)
    space_file = prepared.sweep_dir / "space.yaml"
    space_file.write_text(prepared.space.source)
    recorded = {k: v for k, v in dataclasses.asdict(options).items() if k not in ("tracking_uri",)}
    recorded["overrides"] = " ".join(options.overrides)
    experiment_id, parent_run_id = tracking.start_sweep_run(
        prepared.tracking_uri, prepared.name, recorded, space_file
    )
    manifest = Manifest(
        name=prepared.name,
        sweep_dir=str(prepared.sweep_dir),
        tracking_uri=prepared.tracking_uri,
        experiment_id=experiment_id,
        parent_run_id=parent_run_id,
        study_name=prepared.name,
        space=options.space,
        space_source=prepared.space.source,
        options=dataclasses.asdict(options),
        created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    manifest.save()
    return manifest


def run(prepared: PreparedSweep) -> Manifest:
    """Start the sweep and run it to the end."""
    manifest = start(prepared)
    _init_ray(prepared.options.address)
    _, tuner = _build_tuner(manifest, prepared.space, prepared.options)
    _fit(manifest, tuner)
    return manifest


def _fit(manifest: Manifest, tuner) -> None:
    try:
        tuner.fit()
    except KeyboardInterrupt:
        manifest.status = "interrupted"
        manifest.save()
        raise
    finalize(manifest)


def _close_lost_trial_runs(manifest: Manifest) -> None:
    """A trial asked for after Tune's last snapshot of the experiment is lost with a killed
    driver: the resumed experiment never runs it again (its Optuna trial is marked FAIL on
    restore), so nothing else would ever close its child run."""
    from ray.tune import ExperimentAnalysis

    known = {trial.trial_id for trial in ExperimentAnalysis(manifest.sweep_dir).trials}
    uri = manifest.tracking_uri
    for run in tracking.child_runs(uri, manifest.experiment_id, manifest.parent_run_id):
        if run.info.status == "RUNNING" and run.data.tags.get(tracking.TAG_TRIAL_ID) not in known:
            log.warning("closing the MLflow run of lost trial %s", run.info.run_name)
            tracking.end_trial_run(uri, run.info.run_id, "failed", "FAILED")


def finalize(manifest: Manifest) -> pd.DataFrame:
    """Leaderboard and best config into the sweep folder and the parent run; close it."""
    from gansweep.platform.export import LEADERBOARD_FILE, ExportError, export_best, leaderboard

    _close_lost_trial_runs(manifest)
    table = leaderboard(manifest)
    folder = Path(manifest.sweep_dir)
    table.drop(columns=["config"], errors="ignore").to_csv(folder / LEADERBOARD_FILE, index=False)
    artifacts = [folder / LEADERBOARD_FILE, folder / MANIFEST_FILE]
    try:
        best_file, _ = export_best(manifest, table=table)
        artifacts.append(best_file)
    except ExportError as err:
        log.warning("%s", err)
    manifest.status = "finished"
    manifest.save()
    try:
        from gansweep.dashboards import write_report

        artifacts.append(write_report(manifest, log_to_mlflow=False))
    except Exception as err:  # a report must never fail a finished sweep
        log.warning("could not write the report: %s", err)
    tracking.log_sweep_artifacts(manifest.tracking_uri, manifest.parent_run_id, artifacts)
    tracking.finish_sweep_run(manifest.tracking_uri, manifest.parent_run_id)
    return table


def space_of(manifest: Manifest) -> SearchSpace:
    """The sweep's space as it was when the sweep started (with its --set values)."""
    from gansweep.search_spaces.loader import parse_space

    space = parse_space(
        manifest.space_source, name=Path(manifest.space).stem, origin=manifest.space
    )
    overrides = parse_overrides(manifest.options.get("overrides", []))
    return dataclasses.replace(space, fixed={**space.fixed, **overrides})


def resume(manifest: Manifest, address: str | None = None) -> Manifest:
    """Continue an interrupted sweep: the same Tune experiment (searcher state, unfinished
    trials from their checkpoints), the same Optuna study, the same MLflow parent run."""
    from ray import tune

    options = SweepOptions(**manifest.options)
    tracking.check_tracking_store(manifest.tracking_uri)
    _init_ray(address or options.address)
    trainable, _ = _build_tuner(manifest, space_of(manifest), options)
    tuner = tune.Tuner.restore(
        manifest.sweep_dir, trainable=trainable, resume_unfinished=True, resume_errored=True
    )
    tracking.reopen_run(manifest.tracking_uri, manifest.parent_run_id)
    manifest.status = "running"
    manifest.save()
    _fit(manifest, tuner)
    return manifest
