"""Seed replication (Lucic et al. 2018, their phase 3): retrain the top configs of a sweep
on fresh seeds, as Ray Tune trials of a second Tune experiment inside the sweep folder
(``<sweep>/replicas``), recorded as replica runs under the same MLflow parent run.

A config that won on the seed that selected it has been picked for its luck as much as
for its merit; on fresh seeds it shows what a user retraining it will get. The
leaderboard then ranks replicated configs by their worst seed (records/ranking.py).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from ray import tune

from gansweep.platform.sweep_input import SweepOptions
from gansweep.platform.tune_glue import build_replica_tuner, fit
from gansweep.records import ranking
from gansweep.records.leaderboard import run_config, standings
from gansweep.records.manifest import Manifest, Replication
from gansweep.trainables.trainable import REPLICA_KEY


class ReplicationInputError(ValueError):
    """A replication that cannot be run as asked (the CLI exits 2)."""


class NothingToReplicate(RuntimeError):
    """No trial of the sweep has a result to replicate."""


def fresh_seeds(used: set[int], count: int) -> list[int]:
    """`count` seeds that no trial of the sweep trained with: the ones after the largest
    used, so a config is never judged on the seed that selected it."""
    first = max(used, default=-1) + 1
    return list(range(first, first + count))


def plan(manifest: Manifest, top: int, seeds: int) -> Replication:
    """Which trials to replicate (the top ones by the trial ranking rule) on which seeds."""
    ranked = standings(manifest).trials
    best = ranked[ranked["rank"] > 0].head(top)
    if best.empty:
        raise NothingToReplicate(
            f"sweep {manifest.name!r} has no trial with a finite {manifest.metric!r} to "
            "replicate (none reported, or all diverged)"
        )
    used = {int(s) for s in ranked["seed"] if str(s).lstrip("-").isdigit()}
    return Replication(top=top, seeds=fresh_seeds(used, seeds), trial_ids=list(best["trial_id"]))


def replica_configs(manifest: Manifest, replication: Replication) -> list[dict[str, Any]]:
    """One complete Tune config per (trial, seed) that has no finished replica yet, the
    longest first (see longest_first). (A replication whose Tune experiment was never
    saved, its driver killed in its first seconds, starts again without redoing finished
    seeds.)"""
    ranked = standings(manifest)
    trials = ranked.trials.set_index("trial_id")
    replicas = ranked.replicas
    ended = replicas[replicas["status"].isin([ranking.FINISHED, ranking.DIVERGED])]
    done = set(zip(ended["replica_of"], ended["seed"].astype(str), strict=True))
    configs = []
    for trial_id in replication.trial_ids:
        base = run_config(manifest.tracking_uri, trials.loc[trial_id, "run_id"]).model_dump()
        configs += [
            {**base, "seed": seed, REPLICA_KEY: trial_id}
            for seed in replication.seeds
            if (trial_id, str(seed)) not in done
        ]
    return longest_first(configs, expected_seconds(trials.loc[replication.trial_ids]))


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


def check_request(manifest: Manifest, top: int, seeds: int) -> None:
    """Refuse what cannot be run, before anything starts."""
    if top <= 0 or seeds <= 0:
        raise ReplicationInputError(f"--top and --seeds must be > 0, got {top} and {seeds}")
    done = manifest.replication
    if done is not None and (done.top, len(done.seeds)) != (top, seeds):
        raise ReplicationInputError(
            f"sweep {manifest.name!r} is already replicated with --top {done.top} --seeds "
            f"{len(done.seeds)} (status {done.status}); run that again to continue it"
        )
    if done is None and manifest.status != "finished":
        raise ReplicationInputError(
            f"sweep {manifest.name!r} is {manifest.status}: finish its search first "
            f"(`gansweep resume {manifest.name}`), then replicate it"
        )
    if done is None:
        try:
            plan(manifest, top, seeds)
        except NothingToReplicate as err:
            raise ReplicationInputError(str(err)) from None


def run(manifest: Manifest, top: int, seeds: int, options: SweepOptions) -> Replication:
    """Replicate (or continue replicating) the sweep's top configs; Ray must be up."""
    replication = manifest.replication
    if replication is not None and replication.status == "finished":
        return replication
    if replication is None:
        replication = manifest.replication = plan(manifest, top, seeds)
    replication.status = manifest.status = "running"
    manifest.save()
    if tune.Tuner.can_restore(str(manifest.replicas_dir)):  # continue its own experiment
        trainable, _ = build_replica_tuner(manifest, [], options)
        tuner = tune.Tuner.restore(
            str(manifest.replicas_dir),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
        )
    else:
        _, tuner = build_replica_tuner(manifest, replica_configs(manifest, replication), options)
    fit(manifest, tuner)
    replication.status = "finished"
    manifest.save()
    return replication
