"""Which replicas a sweep trains, in which order, and when a config is sure to be
replicated: the rules shared by the replication after the search (replicate.py) and the
replicas started inside the search (backfill.py). Functions of the ranked records; only
replica_configs reads MLflow (each trial's config, once)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from gansweep.records import ranking
from gansweep.records.leaderboard import run_config
from gansweep.records.run_format import REPLICA_KEY


def fresh_seeds(used: set[int], count: int) -> list[int]:
    """`count` seeds that no trial of the sweep trained with: the ones after the largest
    used, so a config is never judged on the seed that selected it."""
    first = max(used, default=-1) + 1
    return list(range(first, first + count))


def replica_configs(
    tracking_uri: str,
    trials: pd.DataFrame,
    trial_ids: list[str],
    seeds: list[int],
    skip: set[tuple[str, int]],
) -> list[dict[str, Any]]:
    """One complete Tune config per (trial, seed) not in `skip`, the longest first: the
    config the trial's run trained with (at its end, read once per trial), on the seed,
    marked as a replica of the trial. `trials` is indexed by trial_id, with
    trials_frame's columns."""
    configs = []
    for trial_id in trial_ids:
        wanted = [seed for seed in seeds if (trial_id, seed) not in skip]
        if wanted:
            base = run_config(tracking_uri, trials.loc[trial_id, "run_id"]).model_dump()
            configs += [{**base, "seed": seed, REPLICA_KEY: trial_id} for seed in wanted]
    return longest_first(configs, expected_seconds(trials.loc[trial_ids]))


def certain_top(trials: pd.DataFrame, top: int, undecided: Iterable[str]) -> list[str]:
    """The trials sure to be among the `top` best whatever the trials not ended yet do,
    best first.

    `trials` is ranked best first (ranking.rank_trials); `undecided` names trials that may
    still change their result (running, or about to run again), besides the trials whose
    records have no outcome yet. A trial that ended keeps its place among the ended ones,
    and each undecided trial can end above it at most once: the ended trial ranked i-th
    among the ended ranks at worst (i + the number undecided) in the end. So the first
    `top - undecided` ended ones are certain."""
    undecided = set(undecided) | set(trials.loc[~trials["status"].isin(ranking.ENDED), "trial_id"])
    ended = trials[
        (trials["rank"] > 0)
        & trials["status"].isin(ranking.ENDED)
        & ~trials["trial_id"].isin(undecided)
    ]
    return list(ended["trial_id"].head(max(0, top - len(undecided))))


def expected_seconds(trials: pd.DataFrame) -> dict[str, float]:
    """trial_id -> the seconds one replica of it should take: the trial's own seconds per
    step, which the trial ran on the same machines, times its planned steps (a trial
    stopped early trained fewer). Indexed by trial_id, with trials_frame's columns."""
    per_step = trials["seconds"] / trials["step"].clip(lower=1)
    return (per_step * trials["planned_steps"]).fillna(0.0).to_dict()


def longest_first(configs: list[dict[str, Any]], seconds: dict[str, float]) -> list[dict[str, Any]]:
    """The replicas in the order Tune should start them: the longest first (LPT).

    Replicas run a few at a time and the slots take the next one as they free up. Started
    best first, the seeds of a slow config ranked last (on ring8 a gradient penalty with
    3 D steps per G step takes over 3x a plain config's time) ran at the end, one of them
    alone while the other slots had nothing left to start; started longest first, the
    replicas left for the end are the short ones, so the slots end close together. Stable:
    replicas of equal length keep the best first."""
    return sorted(configs, key=lambda config: -seconds.get(config[REPLICA_KEY], 0.0))
