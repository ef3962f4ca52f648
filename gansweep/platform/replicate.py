"""Seed replication (Lucic et al. 2018, their phase 3): retrain the top configs of a sweep
on fresh seeds, recorded as replica runs under the same MLflow parent run. Under ASHA or
FIFO most replicas run inside the search's own Tune experiment, started as soon as their
config is certain to be in the top (backfill.py); what is left, and every replica under
the other schedulers or `gansweep replicate`, runs here as Ray Tune trials of a second
Tune experiment inside the sweep folder (``<sweep>/replicas``).

A config that won on the seed that selected it has been picked for its luck as much as
for its merit; on fresh seeds it shows what a user retraining it will get. The
leaderboard then ranks replicated configs by their worst seed (records/ranking.py).
"""

from __future__ import annotations

from typing import Any

from ray import tune

from gansweep.platform import replica_plan
from gansweep.platform.sweep_input import SweepOptions
from gansweep.platform.tune_glue import build_replica_tuner, fit
from gansweep.records import ranking
from gansweep.records.leaderboard import standings
from gansweep.records.manifest import Manifest, Replication


class ReplicationInputError(ValueError):
    """A replication that cannot be run as asked (the CLI exits 2)."""


class NothingToReplicate(RuntimeError):
    """No trial of the sweep has a result to replicate."""


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
    return Replication(
        top=top, seeds=replica_plan.fresh_seeds(used, seeds), trial_ids=list(best["trial_id"])
    )


def replica_configs(manifest: Manifest, replication: Replication) -> list[dict[str, Any]]:
    """One complete Tune config per (trial, seed) that has no finished replica yet, the
    longest first (see replica_plan.longest_first). (A replication whose Tune experiment
    was never saved, its driver killed in its first seconds, starts again without redoing
    finished seeds.)"""
    ranked = standings(manifest)
    replicas = ranked.replicas
    ended = replicas[replicas["status"].isin([ranking.FINISHED, ranking.DIVERGED])]
    done = {(t, int(s)) for t, s in zip(ended["replica_of"], ended["seed"], strict=True)}
    return replica_plan.replica_configs(
        manifest.tracking_uri,
        ranked.trials.set_index("trial_id"),
        replication.trial_ids,
        replication.seeds,
        skip=done,
    )


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
    tuner: tune.Tuner | None
    if tune.Tuner.can_restore(str(manifest.replicas_dir)):  # continue its own experiment
        trainable, _ = build_replica_tuner(manifest, [], options)
        tuner = tune.Tuner.restore(
            str(manifest.replicas_dir),
            trainable=trainable,
            resume_unfinished=True,
            resume_errored=True,
        )
    else:
        configs = replica_configs(manifest, replication)
        # With the replicas started inside the search (backfill.py), usually none is left.
        tuner = build_replica_tuner(manifest, configs, options)[1] if configs else None
    if tuner is not None:
        fit(manifest, tuner)
    replication.status = "finished"
    manifest.save()
    return replication
