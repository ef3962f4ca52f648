"""Gather what a report shows: the sweep's standings (its trials ranked by the one rule
in gansweep.records, its replicated configs), every trial's MLflow params, the learning
curves and sample images of the trials worth showing, the Optuna study and the search
space.

Only MLflow and the Optuna study are read, never the Ray Tune experiment, so a sweep that
is still running, or whose driver died, gets a report of what was recorded so far.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
import time
from collections.abc import Container, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from mlflow.artifacts import download_artifacts

from gansweep.records import run_cache
from gansweep.records.leaderboard import Standings, standings_and_runs
from gansweep.records.manifest import Manifest
from gansweep.records.read import metric_histories
from gansweep.records.run_format import SAMPLES_FILE
from gansweep.records.store import TrackingError, check_tracking_store, scrub
from gansweep.records.study_store import open_study_storage
from gansweep.search_spaces import SearchSpace, SearchSpaceError, parse_space

log = logging.getLogger(__name__)

TOP_TRIALS = 10  # the leaderboard's rows, and the learning curves drawn
GALLERY = 24  # sample pictures at most: the top trials, then the best of other combinations
MIXTURE_METRIC = "modes_captured"  # only 2-D mixture trials report it


class ReportError(RuntimeError):
    """The sweep's records cannot be read (tracking store missing or not answering)."""


@dataclass
class SweepData:
    """Everything a report is rendered from."""

    manifest: Manifest
    standings: Standings
    # run_id -> DataFrame(step, value): the metric at every evaluation, for every trial
    curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    samples: dict[str, bytes] = field(default_factory=dict)  # run_id -> PNG
    study: optuna.Study | None = None
    study_note: str = ""  # why there is no study
    # run_id, then one column per TrialConfig field as MLflow holds it (strings; the
    # TrialConfig default where a conditional param was not sampled): every run's params
    params: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["run_id"]))
    space: SearchSpace | None = None  # the space the sweep searched, from its manifest
    space_note: str = ""  # why there is no space
    generated: str = ""

    @property
    def metric(self) -> str:
        return self.standings.metric

    @property
    def mode(self) -> str:
        return self.standings.mode

    @functools.cached_property
    def trials(self) -> pd.DataFrame:
        """The sweep's trials (replicas are not trials) in the leaderboard's order, with
        its ranks, so every section numbers a trial as the leaderboard does."""
        board = self.standings.board
        order = {trial_id: i for i, trial_id in enumerate(board["trial_id"])}
        rank = dict(zip(board["trial_id"], board["rank"], strict=True))
        trials = self.standings.trials
        trials = trials.assign(rank=trials["trial_id"].map(rank).astype(int))
        return trials.sort_values("trial_id", key=lambda ids: ids.map(order)).reset_index(drop=True)

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

    def value_at(self, run_id: str, step: float) -> float:
        """A trial's metric at `step` (NaN where it did not report at that step)."""
        curve = self.curves.get(run_id)
        if curve is None or curve.empty:
            return float("nan")
        hit = curve.loc[curve["step"] == step, "value"]
        return float(hit.iloc[-1]) if len(hit) else float("nan")

    def equal_budget(self) -> tuple[float, pd.DataFrame]:
        """(S, ranked trials with `value` replaced by their metric at step S), where S is
        the largest step every ranked trial reached: the budget at which all of them can
        be compared fairly (with ASHA, its first rung). S is NaN without ranked trials."""
        ranked = self.ranked
        if ranked.empty:
            return float("nan"), ranked
        budget = float(ranked["step"].min())
        values = [self.value_at(r, budget) for r in ranked["run_id"]]
        return budget, ranked.assign(value=values)


# ------------------------------------------------------------------------ MLflow runs


def sample_images(trials: pd.DataFrame, run_ids: list[str]) -> dict[str, bytes]:
    """run_id -> the PNG bytes of the run's last samples.png (runs without one are left
    out: a trial that failed before its first evaluation has none)."""
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
def _no_progress_bars() -> Iterator[None]:
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


class StudySnapshot(optuna.Study):
    """A study whose trials are read once, when it is opened: every section of the report
    sees the same trials, and Optuna's plots, which ask for every trial again and again,
    each time deep-copied (15 times, 4.7 s of the report at 2,000 trials), get the one
    list. For reading only: the trials are shared, never copied, so nothing may change
    them (asking or telling goes to the storage as in any study)."""

    def __init__(self, study_name: str, storage: optuna.storages.BaseStorage) -> None:
        super().__init__(study_name=study_name, storage=storage)
        self._snapshot = super().get_trials(deepcopy=False)

    def get_trials(
        self,
        deepcopy: bool = True,
        states: Container[optuna.trial.TrialState] | None = None,
    ) -> list[optuna.trial.FrozenTrial]:
        if states is None:
            return list(self._snapshot)
        return [t for t in self._snapshot if t.state in states]


def sweep_study(storage: str | Path, name: str) -> optuna.Study:
    """The Optuna study of sweep `name` in `storage`, as read now (a StudySnapshot: a
    user's notebook, the tests); LookupError when it has none yet."""
    study, why = load_study(Manifest.load(storage, name))
    if study is None:
        raise LookupError(why)
    return study


def load_study(manifest: Manifest) -> tuple[optuna.Study | None, str]:
    """The sweep's Optuna study as read now (a StudySnapshot), or (None, why not)."""
    path = manifest.study_path
    if not path.is_file():  # opening a missing study file would create it
        return None, f"the sweep has no Optuna study yet ({path} does not exist)."
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return StudySnapshot(manifest.study_name, open_study_storage(manifest)), ""
    except Exception as err:  # an unknown study name, a database being created, ...
        return None, f"the Optuna study {manifest.study_name!r} cannot be read: {err}"


# ------------------------------------------------------------------------ the space


def load_space_of(manifest: Manifest) -> tuple[SearchSpace | None, str]:
    """The space the sweep searched, from the YAML text its manifest keeps, or (None, why
    not). (The platform's sweep.space_of also applies the --set values to the fixed ones;
    the report needs only the searched params, which --set does not change.)"""
    if not manifest.space_source.strip():
        return None, f"the sweep's manifest does not hold its search space ({manifest.space!r})."
    try:
        return parse_space(manifest.space_source, name=manifest.space, origin=manifest.space), ""
    except SearchSpaceError as err:  # a space written by an older version of gansweep
        return None, f"the sweep's search space no longer loads: {err}"


# --------------------------------------------------------------------------- gather


def run_params(runs: pd.DataFrame) -> pd.DataFrame:
    """run_id and one column per param (MLflow's strings) of a read.runs_frame."""
    prefix = "params."
    columns = ["run_id", *(c for c in runs if c.startswith(prefix))]
    return runs.reindex(columns=columns).rename(columns=lambda c: c.removeprefix(prefix))


def gallery_run_ids(trials: pd.DataFrame) -> list[str]:
    """The runs whose samples the report shows: the top trials, then the best trial of
    every other combination."""
    ranked = trials[trials["rank"] > 0]
    top = list(ranked["run_id"].head(TOP_TRIALS))
    best_each = list(ranked.drop_duplicates("combination")["run_id"])
    return (top + [r for r in best_each if r not in top])[:GALLERY]


def _end(value: Any) -> int | None:
    """A run's end time in ms, None while it runs (pandas reads a missing one as NaN)."""
    return None if value is None or pd.isna(value) else int(value)


def gather(manifest: Manifest) -> SweepData:
    """Read everything the report shows from MLflow and the Optuna study."""
    try:
        check_tracking_store(manifest.tracking_uri, must_exist=True)
        ranked, runs = standings_and_runs(manifest)
    except TrackingError as err:
        raise ReportError(str(err)) from None
    except Exception as err:
        uri = manifest.tracking_uri  # SQLAlchemy's errors can quote it: scrub hides secrets
        raise ReportError(
            scrub(f"cannot read the runs of sweep {manifest.name!r} from {uri}: {err}", uri)
        ) from None
    study, note = load_study(manifest)
    space, space_note = load_space_of(manifest)
    data = SweepData(
        manifest=manifest, standings=ranked, study=study, study_note=note, params=run_params(runs),
        space=space, space_note=space_note,
    )  # fmt: skip
    trials = data.trials
    shown = list(trials.loc[trials["rank"] > 0, "run_id"])
    end_of = dict(zip(runs["run_id"], runs["end_time"], strict=True)) if len(runs) else {}
    ends = {run_id: _end(end_of.get(run_id)) for run_id in shown}
    cache = Path(manifest.sweep_dir) / run_cache.HISTORIES_FILE
    data.curves = metric_histories(manifest.tracking_uri, ends, ranked.metric, cache)
    data.samples = sample_images(trials, gallery_run_ids(trials))
    data.generated = time.strftime("%Y-%m-%d %H:%M:%S %z")
    return data
