"""Writing a sweep's records: its parent run (on the driver) and one run per trial or
replica (from inside the trial). The names are in run_format.py.

Every call is retried (store.with_retries); the calls that are not safe to repeat are
made so: a run is looked up by its trial-id tag before it is created, so a retry after a
lost answer, or a retried trial, never creates a second run; params missing from a run
(the trial died between creating its run and logging them) are logged when it is
continued; a metric step the run already has is not logged again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from gansweep.records.read import find_trial_run
from gansweep.records.run_format import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    ROLE_SWEEP,
    TAG_CONFIG,
    TAG_PERTURBATION,
    TAG_ROLE,
    TAG_STATUS,
    TAG_SWEEP,
    TrialIdentity,
    as_param,
)
from gansweep.records.store import TrackingError, artifact_location_for, sqlite_path, with_retries

log = logging.getLogger(__name__)

# ------------------------------------------------------------------ the sweep (driver)


def check_experiment_usable(uri: str, sweep_name: str) -> None:
    """Raise TrackingError if the sweep's experiment name belongs to a deleted experiment:
    MLflow keeps the name and refuses new runs in it, so the sweep could not start."""
    if (db := sqlite_path(uri)) is not None and not db.exists():
        return  # a new store: no experiment at all (and reading would create the file)
    found = with_retries(lambda: MlflowClient(uri).get_experiment_by_name(sweep_name))
    if found is not None and found.lifecycle_stage == "deleted":
        raise TrackingError(
            f"MLflow experiment {sweep_name!r} was deleted, and MLflow keeps its name: "
            f"restore it (`mlflow experiments restore --experiment-id "
            f"{found.experiment_id}`), remove it for good (`mlflow gc`), or choose another "
            "--name"
        )


def start_sweep_run(
    uri: str, sweep_name: str, options: dict[str, Any], space_file: Path | None
) -> tuple[str, str]:
    """Create (or reuse) the sweep's experiment and start its parent run.

    Returns (experiment_id, parent_run_id).
    """
    client = MlflowClient(uri)
    experiment = with_retries(lambda: client.get_experiment_by_name(sweep_name))
    if experiment is None:
        experiment_id = client.create_experiment(
            sweep_name, artifact_location=artifact_location_for(uri, sweep_name)
        )
    else:
        experiment_id = experiment.experiment_id
    with_retries(
        lambda: client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
    )
    # Not retried: a second parent run is worse than a sweep that fails to start (nothing
    # else exists yet, so the user simply runs the command again).
    run = client.create_run(
        experiment_id, run_name=sweep_name, tags={TAG_ROLE: ROLE_SWEEP, TAG_SWEEP: sweep_name}
    )
    try:
        params = [Param(k, as_param(v)) for k, v in sorted(options.items())]
        with_retries(lambda: client.log_batch(run.info.run_id, params=params))
        if space_file is not None:
            with_retries(lambda: client.log_artifact(run.info.run_id, str(space_file)))
    except BaseException:
        discard_run(uri, run.info.run_id)  # a failed start leaves no parent run behind
        raise
    return experiment_id, run.info.run_id


def discard_run(uri: str, run_id: str) -> None:
    """Delete a run that stands for nothing: the parent run of a sweep that failed to
    start, or the stub of a trial lost with a killed driver (the resumed search runs
    another in its place). MLflow's delete is soft: the run leaves every search and the
    UI's list, and stays in "deleted runs" until `mlflow gc`. Best effort: the store may be
    what failed; then the run stays, and is said to."""
    client = MlflowClient(uri)
    try:
        with_retries(lambda: client.set_terminated(run_id, "KILLED"), attempts=2)
        with_retries(lambda: client.delete_run(run_id), attempts=2)
    except Exception as err:
        log.warning("could not delete MLflow run %s (%s): delete it in the UI", run_id, err)


def log_sweep_artifacts(uri: str, parent_run_id: str, paths: Iterable[Path]) -> None:
    client = MlflowClient(uri)
    for path in paths:
        with_retries(partial(client.log_artifact, parent_run_id, str(path)))


def finish_sweep_run(uri: str, parent_run_id: str, status: str = "FINISHED") -> None:
    with_retries(lambda: MlflowClient(uri).set_terminated(parent_run_id, status))


def reopen_run(uri: str, run_id: str) -> None:
    """Mark a run RUNNING again (a resumed sweep continues its parent run)."""
    with_retries(lambda: MlflowClient(uri).update_run(run_id, status="RUNNING"))


# ------------------------------------------------------------------- a trial's run


class TrialRun:
    """The run of one trial or replica; created on first use, continued after a retry."""

    def __init__(self, who: TrialIdentity, params: dict[str, Any], run_id: str | None = None):
        sweep = who.sweep
        self.client = MlflowClient(sweep.tracking_uri)
        tags = who.tags(params)

        def find_or_create() -> str:
            found = run_id or find_trial_run(
                sweep.tracking_uri, sweep.experiment_id, sweep.parent_run_id, who.trial_id
            )
            if found is not None:
                return found
            run = self.client.create_run(sweep.experiment_id, run_name=who.run_name, tags=tags)
            return run.info.run_id

        self.run_id: str = with_retries(find_or_create)
        run = with_retries(lambda: self.client.get_run(self.run_id))
        missing = [Param(k, as_param(v)) for k, v in params.items() if k not in run.data.params]
        if missing:
            with_retries(lambda: self.client.log_batch(self.run_id, params=missing))
        if run.info.status != "RUNNING":  # a retried trial: running again, no outcome yet
            with_retries(lambda: self.client.update_run(self.run_id, status="RUNNING"))
            self.set_tags({TAG_STATUS: ""})
        history = with_retries(lambda: self.client.get_metric_history(self.run_id, "step"))
        self.logged_steps = {m.step for m in history}

    def log_evaluation(self, metrics: dict[str, float], step: int, files: Iterable[Path]) -> None:
        """One evaluation's metrics in a single batch, then its artifacts; a step the run
        already has (logged before a crash) is skipped, so history has no duplicates."""
        if step in self.logged_steps:
            return
        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items()]
        with_retries(lambda: self.client.log_batch(self.run_id, metrics=batch))
        self.logged_steps.add(step)
        for path in files:
            with_retries(partial(self.client.log_artifact, self.run_id, str(path)))

    def record_perturbation(
        self, who: TrialIdentity, step: int, donor: str, donor_config: dict, config: dict
    ) -> None:
        """PBT restarted this trial from `donor`'s checkpoint at `step` with `config` (the
        donor's config, perturbed): tag the event (what changed against the donor's
        config), the config it trains with now, and its axes and combination."""
        changed = {
            k: [donor_config.get(k), v] for k, v in config.items() if donor_config.get(k) != v
        }
        event = json.dumps({"from_trial": donor, "changed": changed}, sort_keys=True)
        self.set_tags(
            {
                **who.tags(config),
                f"{TAG_PERTURBATION}{step}": event,
                TAG_CONFIG: json.dumps(config, sort_keys=True),
            }
        )

    def set_tags(self, tags: dict[str, str]) -> None:
        batch = [RunTag(k, v) for k, v in tags.items()]
        with_retries(lambda: self.client.log_batch(self.run_id, tags=batch))

    def finish(self, status: str, run_status: str = "FINISHED") -> None:
        self.set_tags({TAG_STATUS: status})
        with_retries(lambda: self.client.set_terminated(self.run_id, run_status))


def end_trial_run(uri: str, run_id: str, status: str, run_status: str) -> None:
    """Close a trial's run from the driver (a trial stopped by the scheduler, failed, or
    lost with a killed driver); a run that already ended is left as it is."""
    client = MlflowClient(uri)
    run = with_retries(lambda: client.get_run(run_id))
    if run.info.status != "RUNNING":
        return
    with_retries(lambda: client.log_batch(run_id, tags=[RunTag(TAG_STATUS, status)]))
    with_retries(lambda: client.set_terminated(run_id, run_status))
