"""The leaderboard of a sweep, read from its MLflow records and ranked by the one rule in
ranking.py: what the console prints, ``leaderboard.csv`` holds, the report shows and
``export`` takes the champion from. Reading only MLflow, it works while a sweep runs and
after its driver died."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow import MlflowClient

from gansweep.records import ranking, run_cache
from gansweep.records.manifest import Manifest
from gansweep.records.read import sweep_runs_frame, trials_frame
from gansweep.records.run_format import ROLE_REPLICA, ROLE_TRIAL, TAG_CONFIG
from gansweep.records.store import with_retries

if TYPE_CHECKING:
    from gansweep.trainables.config import TrialConfig

# The leaderboard's columns besides the replication ones, in order.
BOARD_COLUMNS = ["rank", "trial_id", "combination", "status", "step", "planned_steps", "seconds"]


@dataclass
class Standings:
    """Everything ranked about one sweep."""

    metric: str
    mode: str
    trials: pd.DataFrame  # the sweep's trials, best first (ranking.rank_trials)
    replicas: pd.DataFrame  # one row per replica run, in start order
    configs: pd.DataFrame  # one row per replicated config, best first (replica_summary)
    board: pd.DataFrame  # the leaderboard: one row per trial, the champion first

    @property
    def champion(self) -> pd.Series | None:
        """The board's first row, if it is ranked."""
        board = self.board
        return board.iloc[0] if not board.empty and board["rank"].iloc[0] > 0 else None


def standings(manifest: Manifest) -> Standings:
    """Read the sweep's runs once and rank them."""
    return standings_and_runs(manifest)[0]


def standings_and_runs(manifest: Manifest) -> tuple[Standings, pd.DataFrame]:
    """The standings, and the runs they were ranked from (read.runs_frame: every param,
    metric and tag), for a reader that needs more of each run than the standings keep.
    Read incrementally: the sweep folder keeps the runs that ended (run_cache.py)."""
    cache = Path(manifest.sweep_dir) / run_cache.CACHE_FILE
    runs = sweep_runs_frame(
        manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id, cache
    )
    ranked = rank_runs(
        trials_frame(runs, manifest.metric, manifest.status == "running"),
        manifest.metric,
        manifest.mode,
        manifest.seeds_planned,
    )
    return ranked, runs


def rank_runs(frame: pd.DataFrame, metric: str, mode: str, seeds_planned: int) -> Standings:
    """Standings from a trials_frame of a sweep's runs (trials and replicas)."""
    trials = ranking.rank_trials(frame[frame["role"] == ROLE_TRIAL], mode)
    replicas = frame[frame["role"] == ROLE_REPLICA].reset_index(drop=True)
    configs = ranking.replica_summary(replicas, mode, seeds_planned, metric)
    return Standings(metric, mode, trials, replicas, configs, _board(trials, configs, metric))


def _board(trials: pd.DataFrame, configs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The leaderboard: the trials with their replicated config's summary, in the order
    and with the ranks of ranking.rank_board."""
    board = trials.rename(columns={"value": metric})
    board["trial_rank"] = board["rank"]
    renamed = {c: f"{metric}_{c}" for c in ("mean", "sd", "worst")}
    board = board.merge(
        configs.rename(columns={"replica_of": "trial_id", **renamed}), on="trial_id", how="left"
    )
    board = ranking.rank_board(board)
    board["replicated"] = board["robust_rank"].notna()
    board["held"] = board.pop("held")  # after `replicated`, as leaderboard.csv has it
    first = [*BOARD_COLUMNS[:3], metric, *BOARD_COLUMNS[3:]]
    if not configs.empty:
        first += ["seeds", "broken", *renamed.values()]
        first += [c for c in configs if c.startswith(tuple(ranking.REPLICA_METRICS))]
    return board[[*first, *(c for c in board if c not in first)]]


def config_from_params(params: dict[str, str]) -> TrialConfig:
    """A run's TrialConfig from its MLflow params (strings; None was written as "")."""
    # Deferred: the trial schema loads torch, which `ls` and `status` never need.
    from gansweep.trainables.config import TrialConfig

    fields = TrialConfig.model_fields
    values: dict[str, Any] = {k: (None if v == "" else v) for k, v in params.items() if k in fields}
    return TrialConfig.from_dict(values)


def run_config(uri: str, run_id: str) -> TrialConfig:
    """The TrialConfig a run trained with (at its end: PBT may have changed it, see
    run_format.TAG_CONFIG)."""
    run = with_retries(lambda: MlflowClient(uri).get_run(run_id))
    if TAG_CONFIG in run.data.tags:
        from gansweep.trainables.config import TrialConfig  # deferred, as above

        return TrialConfig.from_dict(json.loads(run.data.tags[TAG_CONFIG]))
    return config_from_params(run.data.params)
