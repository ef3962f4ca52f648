"""Everything MLflow: the sweep's parent run on the driver, one nested child run per trial
(created and continued from inside the trial), and their artifacts.

Naming, so MLflow's compare views work across runs of every sweep:
- experiment: the sweep name (reused by later sweeps of the same name);
- parent run: the sweep name; params are the sweep options, tag ``gansweep.role=sweep``;
- child run: ``<combination>-<trial id>`` (e.g. ``wgan-gp-adam-3f2a_00001``), nested under
  the parent; params are every TrialConfig field under its own name; tags
  ``gansweep.trial_id``, ``gansweep.role=trial`` and the combination axes (``loss``,
  ``penalty``, ``d_norm``, ``optimizer``, ``combination``); metrics per evaluation step;
  artifacts ``samples.png`` and ``generator.pt``, rewritten at every evaluation so an
  early-stopped trial still has its last ones.

A trial finds its child run by the run id saved in its checkpoint or, before its first
checkpoint, by its trial-id tag, so a retried trial never creates a second run; metric
steps that the run already has are not logged again.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

T = TypeVar("T")
log = logging.getLogger(__name__)

TAG_ROLE = "gansweep.role"
TAG_SWEEP = "gansweep.sweep"
TAG_TRIAL_ID = "gansweep.trial_id"
TAG_STATUS = "gansweep.status"  # finished | stopped_early | diverged | failed
PARENT_TAG = "mlflow.parentRunId"
AXES = ("loss", "penalty", "d_norm", "optimizer")
DEFAULT_DB = "mlflow.db"


class TrackingError(RuntimeError):
    """The tracking store cannot be used (bad URI, server not answering, no credentials)."""


# ---------------------------------------------------------------------- the store


def resolve_tracking_uri(uri: str | None) -> str:
    """The tracking URI every process of the sweep uses, made independent of their cwd.

    None means ``sqlite:///mlflow.db`` in the working directory. A relative SQLite path is
    made absolute here on the driver: Ray runs each trial in its own folder.
    """
    uri = uri or f"sqlite:///{DEFAULT_DB}"
    scheme = urlparse(uri).scheme
    if scheme == "sqlite":
        path = uri.removeprefix("sqlite:///")
        if path.startswith("/"):  # sqlite:////abs/path.db
            return uri
        return f"sqlite:///{(Path.cwd() / path).resolve()}"
    if scheme in ("http", "https", "postgresql", "mysql", "databricks"):
        return uri
    raise TrackingError(
        f"tracking URI {uri!r} is not supported; use sqlite:///FILE.db (the default, "
        f"sqlite:///{DEFAULT_DB}), an http(s):// MLflow server, or a database URI "
        "(postgresql://...). The ./mlruns file store is deprecated in MLflow 3."
    )


def artifact_location_for(uri: str, experiment_name: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a SQLite file, absolute, so trials
    in other folders find it; a server decides for itself (None)."""
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        return (db.parent / "mlartifacts" / experiment_name).as_uri()
    return None


def check_tracking_store(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, before any trial or run exists, if the store does not answer or refuses us.

    Credentials come from the environment only (MLflow's standard variables, or PGPASSWORD
    for a database): a URI is recorded in the manifest and printed, so one that carries a
    password is refused rather than written down.
    """
    parsed = urlparse(uri)
    if parsed.password:
        where = (
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
            if parsed.scheme in ("http", "https")
            else "the environment (e.g. PGPASSWORD for postgresql)"
        )
        shown = parsed._replace(netloc=parsed.netloc.rsplit("@", 1)[1]).geturl()
        raise TrackingError(
            f"tracking URI {shown} carries a password: put the credentials in {where} "
            "instead; the URI is recorded in the sweep manifest"
        )
    if parsed.scheme in ("http", "https"):
        import requests

        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
        except requests.RequestException as err:
            raise TrackingError(f"MLflow tracking server {uri} does not answer: {err}") from None
        if response.status_code != 200:
            raise TrackingError(
                f"MLflow tracking server {uri} answered /health with {response.status_code}"
            )
    if uri.startswith("sqlite:///"):
        db = Path(uri.removeprefix("sqlite:///"))
        if not db.exists():  # created by the first run; checking must not create it
            if not db.parent.is_dir():
                raise TrackingError(f"folder {db.parent} of tracking store {uri} does not exist")
            return
    try:
        MlflowClient(uri).search_experiments(max_results=1)
    except Exception as err:  # auth errors, bad databases, ...: all mean "cannot log there"
        raise TrackingError(_store_refusal(uri, err)) from None


def _store_refusal(uri: str, err: Exception) -> str:
    """Why the store refused us, in words that say what to do (no traceback, no secret)."""
    code = getattr(err, "error_code", None)
    if code == "UNAUTHENTICATED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        if user and os.environ.get("MLFLOW_TRACKING_PASSWORD"):
            return (
                f"MLflow tracking server {uri} rejected the credentials of user {user!r} "
                "(authentication failed): check MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD"
            )
        return (
            f"MLflow tracking server {uri} needs credentials (authentication required): set "
            "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD in the environment"
        )
    if code == "PERMISSION_DENIED":
        user = os.environ.get("MLFLOW_TRACKING_USERNAME", "anonymous")
        return (
            f"MLflow tracking server {uri} denies user {user!r} access to experiments: ask its "
            "administrator for permission"
        )
    return f"cannot use MLflow tracking store {uri}: {err}"


def with_retries(action: Callable[[], T], attempts: int = 5, first_wait: float = 0.5) -> T:
    """Run a tracking call, retrying transient failures (a busy SQLite file, a server
    restarting) with exponential back-off; the last failure is raised."""
    for attempt in range(attempts):
        try:
            return action()
        except Exception as err:
            if attempt == attempts - 1:
                raise
            wait = first_wait * 2**attempt
            # Said out loud: a store that keeps failing should be noticed before it fails
            # a trial. One line (SQLAlchemy errors carry the whole statement).
            reason = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
            log.warning(
                "tracking call failed (%s); retrying in %.1f s, retry %d of %d",
                reason, wait, attempt + 1, attempts - 1,
            )  # fmt: skip
            time.sleep(wait)
    raise AssertionError("unreachable")


def _as_param(value: Any) -> str:
    return "" if value is None else str(value)


# ------------------------------------------------------------------ the sweep (driver)


def start_sweep_run(
    uri: str, sweep_name: str, options: dict[str, Any], space_file: Path | None
) -> tuple[str, str]:
    """Create (or reuse) the sweep's experiment and start its parent run.

    Returns (experiment_id, parent_run_id).
    """
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(sweep_name)
    if experiment is None:
        experiment_id = client.create_experiment(
            sweep_name, artifact_location=artifact_location_for(uri, sweep_name)
        )
    else:
        experiment_id = experiment.experiment_id
    # Opens the experiment in the UI's "Model training" view, not the GenAI one.
    client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")
    run = client.create_run(
        experiment_id,
        run_name=sweep_name,
        tags={TAG_ROLE: "sweep", TAG_SWEEP: sweep_name},
    )
    params = [Param(k, _as_param(v)) for k, v in sorted(options.items())]
    client.log_batch(run.info.run_id, params=params)
    if space_file is not None:
        client.log_artifact(run.info.run_id, str(space_file))
    return experiment_id, run.info.run_id


def log_sweep_artifacts(uri: str, parent_run_id: str, paths: Iterable[Path]) -> None:
    client = MlflowClient(uri)
    for path in paths:
        with_retries(lambda p=path: client.log_artifact(parent_run_id, str(p)))


def finish_sweep_run(uri: str, parent_run_id: str, status: str = "FINISHED") -> None:
    with_retries(lambda: MlflowClient(uri).set_terminated(parent_run_id, status))


def reopen_run(uri: str, run_id: str) -> None:
    """Mark a run RUNNING again (a resumed sweep continues its parent run)."""
    with_retries(lambda: MlflowClient(uri).update_run(run_id, status="RUNNING"))


def child_runs(uri: str, experiment_id: str, parent_run_id: str) -> list:
    """Every trial run of one sweep (mlflow Run objects), page by page: one search returns
    at most 1,000 runs, and large sweeps have more."""
    client = MlflowClient(uri)
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TAG_ROLE}` = 'trial'"
    runs, token = [], None
    while True:
        page = with_retries(
            lambda t=token: client.search_runs(
                [experiment_id], filter_string=query, max_results=1000, page_token=t
            )
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def find_trial_run(uri: str, experiment_id: str, parent_run_id: str, trial_id: str) -> str | None:
    """The run id of a trial's child run in one sweep, or None before it exists."""
    runs = with_retries(
        lambda: MlflowClient(uri).search_runs(
            [experiment_id],
            filter_string=(
                f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TAG_TRIAL_ID}` = '{trial_id}'"
            ),
        )
    )
    return runs[0].info.run_id if runs else None


# ------------------------------------------------------------------- a trial's run


class TrialRun:
    """The child run of one trial; created on first use, continued after a retry."""

    def __init__(
        self,
        uri: str,
        experiment_id: str,
        parent_run_id: str,
        trial_id: str,
        run_name: str,
        params: dict[str, Any],
        run_id: str | None = None,
        sweep_name: str = "",
    ):
        self.client = MlflowClient(uri)
        self.run_id = run_id or find_trial_run(uri, experiment_id, parent_run_id, trial_id)
        if self.run_id is None:
            tags = {
                PARENT_TAG: parent_run_id,
                TAG_ROLE: "trial",
                TAG_TRIAL_ID: trial_id,
                TAG_SWEEP: sweep_name,
                "combination": run_name.rsplit("-", 1)[0],
                **{axis: _as_param(params.get(axis)) for axis in AXES},
            }
            run = with_retries(
                lambda: self.client.create_run(experiment_id, run_name=run_name, tags=tags)
            )
            self.run_id = run.info.run_id
            batch = [Param(k, _as_param(v)) for k, v in params.items()]
            with_retries(lambda: self.client.log_batch(self.run_id, params=batch))
        else:
            with_retries(lambda: self.client.update_run(self.run_id, status="RUNNING"))
        self.logged_steps = self._logged_steps()

    def _logged_steps(self) -> set[int]:
        history = with_retries(lambda: self.client.get_metric_history(self.run_id, "distance"))
        return {m.step for m in history}

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
            with_retries(lambda p=path: self.client.log_artifact(self.run_id, str(p)))

    def set_tags(self, tags: dict[str, str]) -> None:
        batch = [RunTag(k, v) for k, v in tags.items()]
        with_retries(lambda: self.client.log_batch(self.run_id, tags=batch))

    def finish(self, status: str, run_status: str = "FINISHED") -> None:
        tags = [RunTag(TAG_STATUS, status)]
        with_retries(lambda: self.client.log_batch(self.run_id, tags=tags))
        with_retries(lambda: self.client.set_terminated(self.run_id, run_status))


def end_trial_run(uri: str, run_id: str, status: str, run_status: str) -> None:
    """Close a child run from the driver (a trial stopped by the scheduler or failed)."""
    client = MlflowClient(uri)
    run = client.get_run(run_id)
    if run.info.status != "RUNNING":
        return
    client.log_batch(run_id, tags=[RunTag(TAG_STATUS, status)])
    client.set_terminated(run_id, run_status)
