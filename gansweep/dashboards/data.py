"""Gather what a report shows: the sweep's MLflow child runs as one pandas frame (one row
per trial), the learning curves and sample images of the trials worth showing, and the
Optuna study.

Only MLflow and the Optuna study are read, never the Ray Tune experiment, so a sweep that
is still running, or whose driver died, gets a report of what was recorded so far.
"""

from __future__ import annotations

import json
import logging
import math
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient

from gansweep.platform import tracking
from gansweep.platform.manifest import STUDY_FILE, Manifest
from gansweep.trainables.metrics import DIVERGED_DISTANCE

log = logging.getLogger(__name__)

TOP_TRIALS = 10  # the leaderboard's rows, and the learning curves drawn
GALLERY = 24  # sample pictures at most: the top trials, then the best of other combinations
SAMPLES_FILE = "samples.png"
STATUSES = ("finished", "stopped_early", "diverged", "failed", "running", "interrupted")
# Other metrics worth a leaderboard column, when the trials report them.
EXTRA_METRICS = (
    "modes_captured", "high_quality", "reverse_kl",  # 2-D mixtures
    "fd", "classifier_score", "precision", "recall", "density", "coverage",  # images
)  # fmt: skip
MIXTURE_METRIC = "modes_captured"  # only 2-D mixture trials report it
NOT_CONFIG = ("seed",)  # params that do not make a different configuration


class ReportError(RuntimeError):
    """The sweep's records cannot be read (tracking store missing or not answering)."""


@dataclass
class SweepData:
    """Everything a report is rendered from."""

    manifest: Manifest
    metric: str
    mode: str  # min | max
    # One row per child run, best first: run_id, run_name, trial_id, combination, the
    # axes, status, value (the metric's last value), step, planned_steps, seconds, seed,
    # start, diverged, reported, rank (1.. for ranked trials), config_key, and the
    # EXTRA_METRICS that exist.
    trials: pd.DataFrame
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)  # run_id -> step, value
    samples: dict[str, bytes] = field(default_factory=dict)  # run_id -> PNG
    study: object | None = None  # optuna.Study
    study_note: str = ""  # why there is no study
    generated: str = ""

    @property
    def lower_is_better(self) -> bool:
        return self.mode == "min"

    @property
    def ranked(self) -> pd.DataFrame:
        """Trials with a finite result, best first."""
        return self.trials[self.trials["rank"] > 0]

    @property
    def data_kind(self) -> str:
        """mixture (2-D points), images, or unknown (no trial reported yet)."""
        if MIXTURE_METRIC in self.trials:
            return "mixture"
        return "images" if "fd" in self.trials else "unknown"


# ------------------------------------------------------------------------ MLflow runs


def _check_store(uri: str) -> None:
    """A missing SQLite file must not be created by merely reading it."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise ReportError(f"tracking store {uri} does not exist")
    try:
        tracking.check_tracking_store(uri)
    except tracking.TrackingError as err:
        raise ReportError(str(err)) from None


def runs_frame(manifest: Manifest) -> pd.DataFrame:
    """The sweep's child runs in the layout of ``mlflow.search_runs`` (pandas): run_id,
    status, start_time, end_time, ``metrics.*``, ``params.*``, ``tags.*``.

    Built from ``tracking.child_runs`` (bound to the manifest's tracking URI, all pages)
    rather than ``mlflow.search_runs`` itself, which reads the process-wide tracking URI.
    """
    rows = []
    for run in tracking.child_runs(
        manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id
    ):
        row = {
            "run_id": run.info.run_id,
            "status": run.info.status,
            "artifact_uri": run.info.artifact_uri,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
        }
        row.update({f"metrics.{k}": v for k, v in run.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in run.data.params.items()})
        row.update({f"tags.{k}": v for k, v in run.data.tags.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def _column(frame: pd.DataFrame, name: str, default=None) -> pd.Series:
    if name in frame:
        return frame[name]
    return pd.Series([default] * len(frame), index=frame.index, dtype=object)


def _numeric(frame: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_column(frame, name, math.nan), errors="coerce").astype(float)


def _status(row_status: str, tag: object, sweep_status: str) -> str:
    if isinstance(tag, str) and tag:
        return tag
    if row_status == "RUNNING":  # no outcome yet: still training, or its driver died
        return "running" if sweep_status == "running" else "interrupted"
    if row_status in ("FAILED", "KILLED"):
        return "failed"
    return "finished"


def trials_frame(runs: pd.DataFrame, manifest: Manifest, metric: str, mode: str) -> pd.DataFrame:
    """One tidy row per trial (see SweepData.trials), best first."""
    columns = [
        "run_id", "run_name", "trial_id", "combination", *tracking.AXES, "status", "value",
        "step", "planned_steps", "seconds", "seed", "start", "diverged", "reported", "rank",
        "config_key", "dataset", "artifact_uri",
    ]  # fmt: skip
    if runs.empty:
        return pd.DataFrame(columns=columns)
    now_ms = time.time() * 1000
    out = pd.DataFrame(index=runs.index)
    out["run_id"] = runs["run_id"]
    out["artifact_uri"] = runs["artifact_uri"]
    out["run_name"] = _column(runs, "tags.mlflow.runName", "").fillna("")
    out["trial_id"] = _column(runs, f"tags.{tracking.TAG_TRIAL_ID}", "").fillna("")
    out["combination"] = _column(runs, "tags.combination", "?").fillna("?")
    for axis in tracking.AXES:
        out[axis] = _column(runs, f"tags.{axis}", "?").fillna("?").replace("", "?")
    out["status"] = [
        _status(s, t, manifest.status)
        for s, t in zip(runs["status"], _column(runs, f"tags.{tracking.TAG_STATUS}"), strict=True)
    ]
    out["value"] = _numeric(runs, f"metrics.{metric}")
    out["step"] = _numeric(runs, "metrics.step")
    out["planned_steps"] = _numeric(runs, "params.steps")
    end = pd.to_numeric(runs["end_time"], errors="coerce").fillna(now_ms)
    out["seconds"] = (end - pd.to_numeric(runs["start_time"], errors="coerce")) / 1000
    out["seed"] = _column(runs, "params.seed", "").fillna("")
    out["start"] = pd.to_numeric(runs["start_time"], errors="coerce")
    out["dataset"] = _column(runs, "params.dataset", "").fillna("")
    diverged_metric = _numeric(runs, "metrics.diverged").fillna(0) >= 0.5
    out["diverged"] = diverged_metric | (out["status"] == "diverged")
    out.loc[out["diverged"] & out["status"].isin(["finished", "stopped_early"]), "status"] = (
        "diverged"
    )
    # A diverged run reports a finite stand-in (1e6), worse than any real value.
    out["reported"] = out["value"].notna()
    finite = out["reported"] & ~out["diverged"] & np.isfinite(out["value"])
    finite &= out["value"].abs() < DIVERGED_DISTANCE
    params = sorted(c for c in runs if c.startswith("params."))
    config = runs[[c for c in params if c.removeprefix("params.") not in NOT_CONFIG]]
    out["config_key"] = [
        json.dumps(row, sort_keys=True, default=str)
        for row in config.astype(object).where(config.notna(), None).to_dict("records")
    ]
    for name in EXTRA_METRICS:
        if f"metrics.{name}" in runs:
            out[name] = _numeric(runs, f"metrics.{name}")

    # Best first; unranked trials after them, in the order they started.
    out["_key"] = np.where(finite, out["value"] if mode == "min" else -out["value"], np.inf)
    out = out.sort_values(["_key", "start"], kind="stable").drop(columns="_key")
    out["rank"] = 0
    out.loc[finite, "rank"] = np.arange(1, int(finite.sum()) + 1)
    return out.reset_index(drop=True)[[*columns, *(c for c in out if c not in columns)]]


def metric_histories(manifest: Manifest, run_ids: list[str], metric: str) -> dict:
    """run_id -> DataFrame(step, value) of the metric at every evaluation."""
    client = MlflowClient(manifest.tracking_uri)
    curves = {}
    for run_id in run_ids:
        history = tracking.with_retries(lambda r=run_id: client.get_metric_history(r, metric))
        points = sorted((m.step, m.value) for m in history)
        curves[run_id] = pd.DataFrame(points, columns=["step", "value"])
    return curves


def sample_images(trials: pd.DataFrame, run_ids: list[str]) -> dict[str, bytes]:
    """run_id -> the PNG bytes of the run's last samples.png (runs without one are left
    out: a trial that failed before its first evaluation has none)."""
    from mlflow.artifacts import download_artifacts

    where = dict(zip(trials["run_id"], trials["artifact_uri"], strict=True))
    images = {}
    with tempfile.TemporaryDirectory(prefix="gansweep-report-") as scratch, _no_progress_bars():
        for i, run_id in enumerate(run_ids):
            folder = Path(scratch) / str(i)
            folder.mkdir()
            try:  # from the run's artifact URI, known already: no lookup of the run
                path = download_artifacts(
                    artifact_uri=f"{where[run_id].rstrip('/')}/{SAMPLES_FILE}",
                    dst_path=str(folder),
                )
                images[run_id] = Path(path).read_bytes()
            except Exception as err:  # missing artifact, unreachable artifact store, ...
                log.info("no %s for run %s: %s", SAMPLES_FILE, run_id, err)
    return images


@contextmanager
def _no_progress_bars():
    """MLflow draws a progress bar per download; a report downloads dozens."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


# ----------------------------------------------------------------------- Optuna study


def load_study(manifest: Manifest):
    """The sweep's Optuna study, or (None, why not)."""
    import optuna

    path = Path(manifest.sweep_dir) / STUDY_FILE
    if not path.is_file():  # opening a missing SQLite file would create it
        return None, f"the sweep has no Optuna study yet ({path} does not exist)."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.load_study(study_name=manifest.study_name, storage=manifest.study_storage), ""
    except Exception as err:  # an unknown study name, a database being created, ...
        return None, f"the Optuna study {manifest.study_name!r} cannot be read: {err}"


# --------------------------------------------------------------------------- gather


def gallery_run_ids(trials: pd.DataFrame) -> list[str]:
    """The runs whose samples the report shows: the top trials, then the best trial of
    every other combination."""
    ranked = trials[trials["rank"] > 0]
    top = list(ranked["run_id"].head(TOP_TRIALS))
    best_each = list(ranked.drop_duplicates("combination")["run_id"])
    return (top + [r for r in best_each if r not in top])[:GALLERY]


def gather(manifest: Manifest) -> SweepData:
    """Read everything the report shows from MLflow and the Optuna study."""
    _check_store(manifest.tracking_uri)
    metric = manifest.options.get("metric") or "distance"
    mode = manifest.options.get("mode") or "min"
    try:
        runs = runs_frame(manifest)
    except Exception as err:
        raise ReportError(
            f"cannot read the runs of sweep {manifest.name!r} from {manifest.tracking_uri}: {err}"
        ) from None
    trials = trials_frame(runs, manifest, metric, mode)
    ranked = trials[trials["rank"] > 0]
    study, note = load_study(manifest)
    return SweepData(
        manifest=manifest,
        metric=metric,
        mode=mode,
        trials=trials,
        curves=metric_histories(manifest, list(ranked["run_id"].head(TOP_TRIALS)), metric),
        samples=sample_images(trials, gallery_run_ids(trials)),
        study=study,
        study_note=note,
        generated=time.strftime("%Y-%m-%d %H:%M:%S %z"),
    )
