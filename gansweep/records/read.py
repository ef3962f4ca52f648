"""Reading a sweep's records back: the one paged query for its runs, and the tidy table
of trials that the leaderboard, the report and export are built from."""

from __future__ import annotations

import math
import time
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run, ViewType

from gansweep.records import ranking, run_cache
from gansweep.records.run_format import (
    AXES,
    PARENT_TAG,
    RUN_ROLES,
    TAG_COMBINATION,
    TAG_REPLICA_OF,
    TAG_ROLE,
    TAG_STATUS,
    TAG_TRIAL_ID,
)
from gansweep.records.store import with_retries
from gansweep.trainables.metric_registry import METRICS


def extra_metrics(metric: str) -> tuple[str, ...]:
    """The metrics worth a column of the trials table besides the sweep's own `metric`
    (the `value` column), where the trials report them: every metric of the registry.
    Read when called, not at import, so a metric registered later (by a plugin's
    trainable, or a test) gets its column in every reader too."""
    return tuple(name for name in METRICS if name != metric)


def child_runs(
    uri: str, experiment_id: str, parent_run_id: str, roles: tuple[str, ...] = RUN_ROLES
) -> list[Run]:
    """Every run of one sweep with one of `roles` (trial, replica), page by page: one
    search returns at most 1,000 runs, and large sweeps have more."""
    runs = _searcher(uri, experiment_id)(_parent_filter(parent_run_id), ViewType.ACTIVE_ONLY)
    # MLflow's filter has no IN for tags: the roles are picked here.
    return [run for run in runs if run.data.tags.get(TAG_ROLE) in roles]


def sweep_runs_frame(
    uri: str,
    experiment_id: str,
    parent_run_id: str,
    cache: Path | None,
    roles: tuple[str, ...] = RUN_ROLES,
) -> pd.DataFrame:
    """runs_frame of child_runs, read incrementally with a cache file (run_cache.py;
    None: every run, each time)."""
    search = _searcher(uri, experiment_id)
    rows = run_cache.read_rows(search, _parent_filter(parent_run_id), parent_run_id, cache)
    return pd.DataFrame([row for row in rows if row.get(f"tags.{TAG_ROLE}") in roles])


def _parent_filter(parent_run_id: str) -> str:
    return f"tags.`{PARENT_TAG}` = '{parent_run_id}'"


def _searcher(uri: str, experiment_id: str) -> run_cache.Search:
    """search(filter, view_type): every matching run of the experiment, all pages."""
    client = MlflowClient(uri)

    def search(query: str, view_type: int) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = with_retries(
                partial(
                    client.search_runs,
                    [experiment_id], filter_string=query, run_view_type=view_type,
                    max_results=1000, page_token=token,
                    # oldest first: runs created while paging land after the pages read
                    order_by=["attributes.start_time ASC"],
                )
            )  # fmt: skip
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    return search


def find_trial_run(uri: str, experiment_id: str, parent_run_id: str, trial_id: str) -> str | None:
    """The run id of a trial's (or replica's) run in one sweep, or None before it exists."""
    query = f"tags.`{PARENT_TAG}` = '{parent_run_id}' and tags.`{TAG_TRIAL_ID}` = '{trial_id}'"
    runs = with_retries(lambda: MlflowClient(uri).search_runs([experiment_id], filter_string=query))
    return runs[0].info.run_id if runs else None


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """Runs in the layout of ``mlflow.search_runs`` (pandas): run_id, status, start_time,
    end_time, artifact_uri, ``metrics.*``, ``params.*``, ``tags.*``.

    Built from child_runs (bound to one tracking URI, all pages) rather than
    ``mlflow.search_runs`` itself, which reads the process-wide tracking URI.
    """
    return pd.DataFrame([run_cache.run_row(run) for run in runs])


def _column(frame: pd.DataFrame, name: str, default: Any = None) -> pd.Series:
    if name in frame:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)


def _numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_column(frame, name, math.nan), errors="coerce").astype(float)


TRIAL_COLUMNS = [
    "run_id", "run_name", "role", "trial_id", "replica_of", "combination", *AXES, "status",
    "value", "step", "planned_steps", "seconds", "seed", "start", "diverged", "reported",
    "dataset", "artifact_uri",
]  # fmt: skip


def trials_frame(runs: pd.DataFrame, metric: str, sweep_running: bool) -> pd.DataFrame:
    """One tidy row per run (trial or replica), in start order: the TRIAL_COLUMNS, where
    `value` is the metric's last value and `status` follows ranking.recorded_status, then
    the extra_metrics the runs report."""
    if runs.empty:
        return pd.DataFrame(columns=TRIAL_COLUMNS)
    now_ms = time.time() * 1000
    out = pd.DataFrame(index=runs.index)
    out["run_id"] = runs["run_id"]
    out["artifact_uri"] = runs["artifact_uri"]
    out["run_name"] = _column(runs, "tags.mlflow.runName", "").fillna("")
    out["role"] = _column(runs, f"tags.{TAG_ROLE}", "").fillna("")
    out["trial_id"] = _column(runs, f"tags.{TAG_TRIAL_ID}", "").fillna("")
    out["replica_of"] = _column(runs, f"tags.{TAG_REPLICA_OF}", "").fillna("")
    out["combination"] = _column(runs, f"tags.{TAG_COMBINATION}", "?").fillna("?")
    for axis in AXES:
        out[axis] = _column(runs, f"tags.{axis}", "?").fillna("?").replace("", "?")
    tags = _column(runs, f"tags.{TAG_STATUS}")
    out["status"] = [
        ranking.recorded_status(tag, status, sweep_running)
        for status, tag in zip(runs["status"], tags, strict=True)
    ]
    out["value"] = _numeric(runs, f"metrics.{metric}")
    out["step"] = _numeric(runs, "metrics.step")
    out["planned_steps"] = _numeric(runs, "params.steps")
    end = pd.to_numeric(runs["end_time"], errors="coerce").fillna(now_ms)
    out["seconds"] = (end - pd.to_numeric(runs["start_time"], errors="coerce")) / 1000
    out["seed"] = _column(runs, "params.seed", "").fillna("")
    out["start"] = pd.to_numeric(runs["start_time"], errors="coerce")
    out["dataset"] = _column(runs, "params.dataset", "").fillna("")
    out["diverged"] = (_numeric(runs, "metrics.diverged").fillna(0) >= 0.5) | (
        out["status"] == ranking.DIVERGED
    )
    # A run that diverged but was closed as finished (or stopped) diverged.
    closed = out["status"].isin([ranking.FINISHED, ranking.STOPPED_EARLY])
    out.loc[out["diverged"] & closed, "status"] = ranking.DIVERGED
    out["reported"] = out["value"].notna()
    for name in extra_metrics(metric):
        if f"metrics.{name}" in runs:
            out[name] = _numeric(runs, f"metrics.{name}")
    out = out.sort_values("start", kind="stable").reset_index(drop=True)
    return out[[*TRIAL_COLUMNS, *(c for c in out if c not in TRIAL_COLUMNS)]]


def metric_histories(
    uri: str, ends: dict[str, int | None], metric: str, cache: Path | None = None
) -> dict[str, pd.DataFrame]:
    """run_id -> DataFrame(step, value) of the metric at every evaluation, for each run of
    `ends` (run_id -> its end time, None while it runs); with `cache`, the histories of
    runs that ended are kept there (run_cache.read_histories)."""
    client = MlflowClient(uri)

    def fetch(run_id: str) -> list[tuple[int, float]]:
        history = with_retries(partial(client.get_metric_history, run_id, metric))
        return sorted((m.step, m.value) for m in history)

    points = run_cache.read_histories(fetch, ends, metric, cache)
    return {
        run_id: pd.DataFrame(run_points, columns=["step", "value"])
        for run_id, run_points in points.items()
    }
