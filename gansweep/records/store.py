"""Which MLflow tracking store a sweep records into, whether it can be used, and retrying
the calls to it. The run format itself is in run_format.py; writing and reading runs in
write.py and read.py."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import requests
from mlflow import MlflowClient

T = TypeVar("T")
log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
# MLflow error codes that the same call will get again: retrying only delays the error.
FINAL_ERRORS = (
    "INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "RESOURCE_ALREADY_EXISTS",
    "UNAUTHENTICATED", "PERMISSION_DENIED",
)  # fmt: skip


class TrackingError(RuntimeError):
    """The tracking store cannot be used (bad URI, server not answering, no credentials)."""


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


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI; None for other stores."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def artifact_location_for(uri: str, experiment_name: str) -> str | None:
    """Where a new experiment keeps artifacts: beside a SQLite file, absolute, so trials
    in other folders find it; a server decides for itself (None)."""
    db = sqlite_path(uri)
    return None if db is None else (db.parent / "mlartifacts" / experiment_name).as_uri()


def check_tracking_store(uri: str, timeout: float = 5.0, must_exist: bool = False) -> None:
    """Fail fast, before any trial or run exists, if the store does not answer or refuses us.

    Checking never creates a store: a SQLite file that does not exist yet is fine for a
    new sweep (the first run creates it) and an error where records are to be read
    (`must_exist`). Credentials come from the environment only (MLflow's standard
    variables, or PGPASSWORD for a database): a URI is recorded in the manifest and
    printed, so one that carries a password is refused rather than written down.
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
        try:
            response = requests.get(uri.rstrip("/") + "/health", timeout=timeout)
        except requests.RequestException as err:
            raise TrackingError(f"MLflow tracking server {uri} does not answer: {err}") from None
        if response.status_code != 200:
            raise TrackingError(
                f"MLflow tracking server {uri} answered /health with {response.status_code}"
            )
    db = sqlite_path(uri)
    if db is not None and not db.exists():
        if must_exist:
            raise TrackingError(f"tracking store {uri} does not exist")
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
    restarting) with exponential back-off; the last failure is raised.

    Only for calls that are safe to repeat: reading, setting tags, logging a batch of
    params or metrics. Creating a run is not: see write.TrialRun, which looks first.
    """
    for attempt in range(attempts):
        try:
            return action()
        except Exception as err:
            if attempt == attempts - 1 or getattr(err, "error_code", None) in FINAL_ERRORS:
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
