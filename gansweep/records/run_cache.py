"""An incremental read of a sweep's runs: every reader (the live view, `ls`, `status`,
`export`, the report) used to read all of a sweep's runs from MLflow, each time. At 2,000
runs that read was most of a command's 5-14 s and, in the driver, 21 % of its CPU (the
live view's polls; docs/results.md, "The driver at scale").

A run that ended does not change any more, with two exceptions this module knows of: a
trial Ray retries runs again under the same run (records/write.TrialRun), and a lost
trial's stub is deleted on resume (write.discard_run). So the ended runs are kept in
``runs_cache.json`` in the sweep folder, and each read asks MLflow only for
- the runs running now (a retried trial among them: its RUNNING row replaces the cached
  one);
- the runs that ended since the newest end time in the cache, less SLACK_MS;
- the sweep's deleted runs (a few lost stubs), which leave the cache.

The slack covers the time between a run's end time (stamped by the client that ended it:
a trial worker or the driver) and its commit, and clocks that differ between the
cluster's hosts: a run whose end is stamped more than SLACK_MS before the newest end
already read is missed until the cache is rebuilt (delete the file). A run's own end is
stamped when the call that ends it is made (retries stamp again), so one request's
latency and the hosts' clock skew must stay under a minute.

The cache is a convenience, never the record: a missing, unreadable or foreign file
(another parent run) means one full read, and a folder that cannot be written (a
reader without write access) means a full read each time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.entities import Run, ViewType

from gansweep.files import atomic_write_text

log = logging.getLogger(__name__)

CACHE_FILE = "runs_cache.json"
FORMAT = 1
SLACK_MS = 60_000

# What one search of MLflow returns: every run matching a filter, all pages.
Search = Callable[[str, int], list[Run]]


def run_row(run: Run) -> dict[str, Any]:
    """One run as a row of read.runs_frame: run_id, status, artifact_uri, start_time,
    end_time, ``metrics.*``, ``params.*``, ``tags.*``."""
    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "status": run.info.status,
        "artifact_uri": run.info.artifact_uri,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
    }
    row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
    row.update({f"params.{k}": v for k, v in run.data.params.items()})
    row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
    return row


def _ended(row: dict[str, Any]) -> bool:
    return row["status"] != "RUNNING" and row.get("end_time") is not None


def _ends(rows: dict[str, dict[str, Any]]) -> dict[str, int]:
    """run_id -> end time of the ended runs: what the cache file holds, in short."""
    return {run_id: row["end_time"] for run_id, row in rows.items() if _ended(row)}


def _read_cache(path: Path, key: str, made_for: str, data: str) -> Any:
    """The `data` entry of a cache file written by _write_cache for `made_for` (its `key`
    entry), or None: no file, an unreadable one, or one made for something else."""
    try:
        saved = json.loads(path.read_text())
        if saved.get("format") != FORMAT or saved.get(key) != made_for:
            return None
        return saved[data]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_cache(path: Path, content: dict[str, Any]) -> None:
    """Best effort: a reader may not own the sweep folder, or read a manifest whose
    folder is on another host (no folder is made); the next read then reads it all."""
    if not path.parent.is_dir():
        return
    try:
        atomic_write_text(path, json.dumps({"format": FORMAT, **content}))
    except OSError as err:
        log.debug("could not write %s (%s): the next read reads it all", path, err)


def load(path: Path, parent_run_id: str) -> dict[str, dict[str, Any]] | None:
    """run_id -> row of the ended runs cached for this parent run; None when there is
    no usable cache."""
    rows = _read_cache(path, "parent_run_id", parent_run_id, "rows")
    try:
        return None if rows is None else {row["run_id"]: row for row in rows}
    except (KeyError, TypeError):
        return None


def save(path: Path, parent_run_id: str, rows: dict[str, dict[str, Any]]) -> None:
    """Keep the ended runs."""
    ended = [row for row in rows.values() if _ended(row)]
    _write_cache(path, {"parent_run_id": parent_run_id, "rows": ended})


def read_rows(
    search: Search, parent_filter: str, parent_run_id: str, cache: Path | None
) -> list[dict[str, Any]]:
    """Every run matching `parent_filter` (an MLflow filter on the parent tag) as rows,
    in start order. `search(filter, view_type)` returns every matching run, all pages.
    With `cache`, read incrementally (the module's docstring says how)."""
    active, deleted_only = ViewType.ACTIVE_ONLY, ViewType.DELETED_ONLY
    cached = load(cache, parent_run_id) if cache is not None else None
    if cached is None:
        rows = {run.info.run_id: run_row(run) for run in search(parent_filter, active)}
    else:
        # Running first: a run that ends between the two reads is then in the second.
        running = search(f"{parent_filter} and attributes.status = 'RUNNING'", active)
        ends = _ends(cached).values()
        since = max(ends) - SLACK_MS if ends else 0
        ended = search(f"{parent_filter} and attributes.end_time >= {since}", active)
        deleted = search(parent_filter, deleted_only)
        rows = dict(cached)
        for run in [*running, *ended]:
            rows[run.info.run_id] = run_row(run)
        for run in deleted:
            rows.pop(run.info.run_id, None)
    if cache is not None and _ends(rows) != _ends(cached or {}):  # no change: no write
        save(cache, parent_run_id, rows)
    return sorted(rows.values(), key=lambda row: (row["start_time"] or 0, row["run_id"]))


# ----------------------------------------------------------------- metric histories

# The report draws each trial's curve and compares trials at the first rung: one
# history per ranked trial, one MLflow call each (3.4 s of the report at 2,000 trials).
# The history of a run that ended is kept here, keyed by the run's end time: a retried
# run that ends again has another, and is read again.
HISTORIES_FILE = "histories_cache.json"

# One call: a run's (step, value) points of one metric.
FetchHistory = Callable[[str], list[tuple[int, float]]]


def read_histories(
    fetch: FetchHistory, ends: dict[str, int | None], metric: str, cache: Path | None
) -> dict[str, list[tuple[int, float]]]:
    """run_id -> the `metric`'s points, for each run of `ends` (run_id -> its end time,
    None while it runs), read from `cache` where the run ended as it was cached."""
    saved = _read_cache(cache, "metric", metric, "runs") if cache is not None else None
    kept: dict[str, Any] = saved if isinstance(saved, dict) else {}
    out: dict[str, list[tuple[int, float]]] = {}
    fetched = False
    for run_id, end in ends.items():
        entry = kept.get(run_id)
        if end is not None and isinstance(entry, dict) and entry.get("end") == end:
            out[run_id] = [(int(s), float(v)) for s, v in entry["points"]]
            continue
        out[run_id] = fetch(run_id)
        fetched = True
        if end is not None:
            kept[run_id] = {"end": end, "points": out[run_id]}
    if cache is not None and fetched:
        _write_cache(cache, {"metric": metric, "runs": kept})
    return out
