"""The life of a sweep: start it (folder, MLflow parent run, manifest), run the search on
Ray Tune, replicate its top configs on fresh seeds, finalize it (leaderboard, best
config, report), and resume it after the driver died.

Input is checked in sweep_input.py before anything here runs; the Ray Tune glue is in
tune_glue.py; the records (MLflow runs, manifest, ranking) in gansweep.records.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ray import tune
from ray.tune import ExperimentAnalysis

from gansweep.dashboards import write_report
from gansweep.files import atomic_write_text
from gansweep.platform import replicate
from gansweep.platform.export import ExportError, export_best
from gansweep.platform.sweep_input import PreparedSweep, SweepOptions, check_ray_address
from gansweep.platform.tune_glue import build_tuner, fit, init_ray, mark_interrupted
from gansweep.profiling import Profile
from gansweep.records import ranking
from gansweep.records.driver_lock import LOCK_FILE
from gansweep.records.leaderboard import Standings, standings
from gansweep.records.manifest import (
    LEADERBOARD_FILE,
    LOG_FILE,
    MANIFEST_FILE,
    SPACE_FILE,
    Manifest,
    SweepNotFoundError,
)
from gansweep.records.progress import this_driver
from gansweep.records.read import child_runs
from gansweep.records.run_format import TAG_TRIAL_ID
from gansweep.records.store import check_tracking_store
from gansweep.records.write import (
    discard_run,
    end_trial_run,
    finish_sweep_run,
    log_sweep_artifacts,
    reopen_run,
    start_sweep_run,
)
from gansweep.search_spaces import SearchSpace
from gansweep.search_spaces.validate import parse_space
from gansweep.trainables.config import parse_overrides

log = logging.getLogger(__name__)


def start(prepared: PreparedSweep) -> Manifest:
    """Create the sweep's folder, MLflow experiment + parent run, and manifest."""
    options = prepared.options
    # The CLI may have made the folder already, for the driver's log (prepare refused a
    # folder that existed before).
    prepared.sweep_dir.mkdir(parents=True, exist_ok=True)
    space_file = prepared.sweep_dir / SPACE_FILE
    space_file.write_text(prepared.space.source)
    recorded = {k: v for k, v in dataclasses.asdict(options).items() if k != "tracking_uri"}
    recorded["overrides"] = " ".join(options.overrides)
    recorded["warm_start"] = " ".join(options.warm_start)
    experiment_id, parent_run_id = start_sweep_run(
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
        driver=this_driver(),
    )
    manifest.save()
    return manifest


def run(prepared: PreparedSweep) -> Standings:
    """Start the sweep and run it to the end: search, replication, finalize. The caller
    holds the sweep's lock (driver_lock.claim_new)."""
    clock = Profile("driver")
    try:
        manifest, tuner = _start(prepared, clock)
    except BaseException:
        _undo_start(prepared)
        raise
    with clock.phase("search"):
        fit(manifest, tuner)
    ranked = _replicate_and_finalize(manifest, clock)
    clock.write(cpu_s=time.process_time())  # the driver's own CPU time, all threads
    return ranked


def _start(prepared: PreparedSweep, clock: Profile) -> tuple[Manifest, tune.Tuner]:
    """Everything before the first trial: the records, Ray, the tuner."""

    # The records are set up on a thread while Ray starts on this one (ray.init installs
    # signal handlers: the main thread's job). Each takes 2-4 s, Ray's mostly waiting for
    # its processes to come up: together they took their sum.
    def start_timed() -> Manifest:
        with clock.phase("start"):
            return start(prepared)

    with ThreadPoolExecutor(1, thread_name_prefix="gansweep-start") as pool:
        started = pool.submit(start_timed)
        with clock.phase("ray_init"):  # until both are done
            init_ray(prepared.options.address)
            manifest = started.result()
    with clock.phase("search"):
        _, tuner = build_tuner(
            manifest, prepared.space, prepared.options, warm_start=prepared.warm_start
        )
    return manifest, tuner


# What a failed start leaves in the sweep folder: the driver's log, which says why, and
# the lock, which the caller releases. A new `gansweep sweep` with the name accepts that.
KEPT_AFTER_FAILED_START = (LOG_FILE, LOCK_FILE)


def _undo_start(prepared: PreparedSweep) -> None:
    """A sweep that failed (or was stopped) before its first trial: delete its parent run
    and its files, so that the name is free for a retry. No trial ran, so nothing is lost;
    a half-started sweep would be one that `resume` cannot continue (it has no Tune
    experiment) and a new `sweep` could not take (its name is used)."""
    folder = prepared.sweep_dir
    try:
        manifest = Manifest.load(folder.parent, prepared.name)
    except SweepNotFoundError:
        manifest = None
    if manifest is not None:
        discard_run(manifest.tracking_uri, manifest.parent_run_id)
    for path in folder.iterdir():
        if path.name in KEPT_AFTER_FAILED_START or path.name.startswith(f".{LOCK_FILE}."):
            continue  # (the second: the lock's heartbeat, being written)
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    log.warning("sweep %s did not start: its name is free for another try", prepared.name)


def _replicate_and_finalize(manifest: Manifest, clock: Profile | None = None) -> Standings:
    """The replication the sweep asked for (or the one `gansweep replicate` started and a
    killed driver left unfinished), then finalize."""
    options = SweepOptions(**manifest.options)
    asked = manifest.replication
    top, seeds = (asked.top, len(asked.seeds)) if asked else (options.replicate_top, options.seeds)
    clock = clock or Profile("driver")
    if top > 0:
        with clock.phase("replicate"):
            _close_open_trial_runs(manifest)  # the ranking must not wait for lost trials
            try:
                replicate.run(manifest, top, seeds, options)
            except replicate.NothingToReplicate as err:
                log.warning("%s", err)
    with clock.phase("finalize"):
        return finalize(manifest, clock)


def _close_open_trial_runs(manifest: Manifest) -> None:
    """Close every trial or replica run still open once Tune is done with it: a run of a
    trial Tune does not know is deleted (_discard_lost_runs); a trial Tune stopped when
    --time-budget ran out gets no callback (Tune ends the experiment without
    on_trial_complete): it ended like any trial, by its steps.
    Call it only while no Tune experiment of the sweep runs."""
    known = _discard_lost_runs(manifest)
    uri = manifest.tracking_uri
    for run in child_runs(uri, manifest.experiment_id, manifest.parent_run_id):
        if run.info.status != "RUNNING" or run.data.tags.get(TAG_TRIAL_ID) not in known:
            continue
        metrics = run.data.metrics
        outcome = ranking.trial_outcome(
            metrics.get("step", 0.0),
            float(run.data.params.get("steps") or "inf"),
            metrics.get("diverged", 0.0) >= 0.5,
        )
        end_trial_run(uri, run.info.run_id, outcome, "FINISHED")


def _discard_lost_runs(manifest: Manifest) -> set[str]:
    """Delete the open runs of trials lost with a killed driver; the trial ids Tune knows.

    A trial that Tune started after its last save of the experiment's state is unknown to
    the experiment a resume restores: it never runs again under its Tune trial id (its
    Optuna trial goes back to the study's queue on restore, and the next new Tune trial
    runs it). Its MLflow run is a stub that would count one trial too many, so it goes (a
    soft delete: MLflow's "deleted runs" keep it). Call it only while no Tune experiment
    of the sweep runs."""
    known = {trial.trial_id for trial in ExperimentAnalysis(manifest.sweep_dir).trials}
    if tune.Tuner.can_restore(str(manifest.replicas_dir)):  # Tune has saved its state
        known |= {t.trial_id for t in ExperimentAnalysis(str(manifest.replicas_dir)).trials}
    uri = manifest.tracking_uri
    for run in child_runs(uri, manifest.experiment_id, manifest.parent_run_id):
        if run.info.status == "RUNNING" and run.data.tags.get(TAG_TRIAL_ID) not in known:
            name = run.info.run_name
            log.warning("deleting the MLflow run of trial %s, lost with the driver", name)
            discard_run(uri, run.info.run_id)
    return known


def finalize(manifest: Manifest, clock: Profile | None = None) -> Standings:
    """Leaderboard, best config and report into the sweep folder and the parent run."""
    clock = clock or Profile("driver")
    _close_open_trial_runs(manifest)
    manifest.status = "finished"
    manifest.save()
    ranked = standings(manifest)
    folder = Path(manifest.sweep_dir)
    atomic_write_text(folder / LEADERBOARD_FILE, ranked.board.to_csv(index=False))
    artifacts = [folder / LEADERBOARD_FILE, folder / MANIFEST_FILE]
    try:
        best_file, _ = export_best(manifest, ranked=ranked)
        artifacts.append(best_file)
    except ExportError as err:
        log.warning("%s", err)
    try:
        with clock.phase("report"):
            artifacts.append(write_report(manifest, log_to_mlflow=False))
    except Exception as err:  # a report must never fail a finished sweep
        log.warning("could not write the report: %s", err)
    log_sweep_artifacts(manifest.tracking_uri, manifest.parent_run_id, artifacts)
    finish_sweep_run(manifest.tracking_uri, manifest.parent_run_id)
    return ranked


def space_of(manifest: Manifest) -> SearchSpace:
    """The sweep's space as it was when the sweep started (with its --set values)."""
    space = parse_space(
        manifest.space_source, name=Path(manifest.space).stem, origin=manifest.space
    )
    overrides = parse_overrides(manifest.options.get("overrides", []))
    return dataclasses.replace(space, fixed={**space.fixed, **overrides})


def resume(manifest: Manifest, address: str | None = None) -> Standings:
    """Continue an interrupted sweep where it stopped: the search (the same Tune
    experiment with its searcher state and unfinished trials, the same Optuna study), then
    the replication, under the same MLflow parent run."""
    options = SweepOptions(**manifest.options)
    check_tracking_store(manifest.tracking_uri, must_exist=True)
    init_ray(address or options.address)
    reopen_run(manifest.tracking_uri, manifest.parent_run_id)
    manifest.status = "running"
    manifest.driver = this_driver()
    manifest.save()
    try:
        if manifest.replication is None:  # the search had not ended
            trainable, _ = build_tuner(manifest, space_of(manifest), options)
            tuner = tune.Tuner.restore(
                manifest.sweep_dir, trainable=trainable, resume_unfinished=True, resume_errored=True
            )
            _discard_lost_runs(manifest)  # before the view and the ranking count them
            fit(manifest, tuner)
        return _replicate_and_finalize(manifest)
    except BaseException:
        mark_interrupted(manifest)
        raise


def replicate_top(manifest: Manifest, top: int, seeds: int, address: str | None) -> Standings:
    """`gansweep replicate`: retrain the top configs of a finished sweep on fresh seeds,
    under its MLflow parent run, then rank again. Bad input raises before Ray starts."""
    options = SweepOptions(**manifest.options)
    check_ray_address(address)
    check_tracking_store(manifest.tracking_uri, must_exist=True)
    replicate.check_request(manifest, top, seeds)
    init_ray(address or options.address)
    reopen_run(manifest.tracking_uri, manifest.parent_run_id)
    replicate.run(manifest, top, seeds, options)
    return finalize(manifest)
