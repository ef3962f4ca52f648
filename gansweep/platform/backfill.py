"""Replicas started inside the search: the slots the search's last trials leave idle train
the replicas of configs already certain to be in the top K.

A search of N trials on S slots ends with its last trials running alone: once Optuna has
proposed its N configs, a slot that frees up has nothing to start, and the replication
could only begin after the slowest trial ended (then in a second Tune experiment, with
new trial processes). Measured on the issue's benchmark (16 trials, 2 slots, 3000 steps)
that idle end cost the search 0.12 of its efficiency (docs/results.md, third and fourth
passes). Ray Tune runs one experiment at a time per driver, so the replicas join the
search's experiment: after Optuna's budget this searcher hands out replicas of the
configs whose place in the top K the trials still running cannot take
(replica_plan.certain_top), the longest first, and finishes when the search has ended
and every certain replica was handed out. The last replica may still end alone. What it
did not hand out (a config whose records could not be read, or that a trial lost with a
killed driver kept undecided) replicate.run trains afterwards, as before.

Only under a scheduler whose registry entry allows it (``replicas_inside``: ASHA and
FIFO; HyperBand pauses trials in brackets it fills from every trial, and PBT's trials
exploit each other, so under both a replica would not train its fixed config for its
full budget). Not with --time-budget, which ends the experiment, replicas
and all. Not when the space searches `seed`: the fresh seeds must be known before the
last trial ends (replica_plan.fresh_seeds of the one seed every trial trains with).
ASHA never stops a replica (tune_schedulers.ReplicaSafeASHA); Optuna never hears of one.
"""

from __future__ import annotations

import logging
import pickle
import tempfile
from pathlib import Path
from typing import Any

from ray.tune.search import Searcher

from gansweep.platform.replica_plan import certain_top, fresh_seeds, replica_configs
from gansweep.platform.schedulers import SCHEDULERS
from gansweep.records.leaderboard import standings
from gansweep.records.manifest import Manifest
from gansweep.records.run_format import REPLICA_KEY
from gansweep.search_spaces import SearchSpace
from gansweep.search_spaces.space import DEFAULTS

log = logging.getLogger(__name__)


def applies(
    scheduler: str, replicate_top: int, time_budget: float | None, space: SearchSpace
) -> bool:
    """Whether the sweep starts its replicas inside the search (see the module's note)."""
    searched = {param.name for param in space.params}
    return (
        replicate_top > 0
        and SCHEDULERS[scheduler].replicas_inside
        and time_budget is None
        and "seed" not in searched
    )


def replica_seeds(space: SearchSpace, seeds: int) -> list[int]:
    """The fresh seeds of the replicas: replicate.plan's, from the one seed every trial of
    the search trains with."""
    return fresh_seeds({int({**DEFAULTS, **space.fixed}["seed"])}, seeds)


class SearchThenReplicas(Searcher):
    """Hands out `search_trials` configs of the `search` searcher, then replicas.

    A replica of a trial is handed out once the trial is certain to be among the `top`
    (the search trials not ended yet can no longer push it out), on each of `seeds`.
    Between the two, and while replicas wait for a config to become certain, it returns
    None (Tune asks again later); it finishes when no search trial is left running and
    every certain replica was handed out.

    Its state (the search searcher's, the search trials not ended, the replicas handed
    out) is saved with the experiment, so a resumed sweep hands out no replica twice.
    """

    def __init__(
        self, search: Searcher, search_trials: int, manifest: Manifest, top: int, seeds: list[int]
    ) -> None:
        super().__init__(metric=search.metric, mode=search.mode)
        # Not `.searcher`: Tune's SearchGenerator restores a chain of `.searcher` wrappers
        # with set_state() each; this one restores itself and its search in restore().
        self.search = search
        self.search_trials = search_trials
        self.manifest = manifest
        self.top = top
        self.seeds = list(seeds)
        self.asked = 0  # search configs handed out
        self.live: set[str] = set()  # search trials not ended
        self.replicas: dict[str, tuple[str, int]] = {}  # Tune trial id -> (trial, seed)
        self._waiting: list[dict[str, Any]] = []  # certain replicas not handed out yet
        self._stale = True  # a search trial ended since _waiting was made

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        accepted = self.search.set_search_properties(metric, mode, config, **spec)
        self._metric, self._mode = self.search.metric, self.search.mode
        return accepted

    # Searcher.FINISHED is a string, which Ray's own annotation of suggest leaves out.
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]
        if self.asked < self.search_trials:
            config = self.search.suggest(trial_id)
            if config is None:
                return None
            if config != Searcher.FINISHED:  # (a grid may end before the budget)
                self.asked += 1
                self.live.add(trial_id)
                return config
            self.asked = self.search_trials
        replica = self._next_replica()
        if replica is not None:
            self.replicas[trial_id] = (replica[REPLICA_KEY], replica["seed"])
            return replica
        return None if self.live else Searcher.FINISHED

    def _next_replica(self) -> dict[str, Any] | None:
        if self._stale:
            self._stale = False
            try:
                self._waiting = self._certain_replicas()
            except Exception as err:  # replicate.run trains what is not handed out here
                log.warning("could not read which configs to replicate yet: %s", err)
                self._waiting = []
        return self._waiting.pop(0) if self._waiting else None

    def _certain_replicas(self) -> list[dict[str, Any]]:
        """The replicas of the certain configs not handed out yet, the longest first."""
        trials = standings(self.manifest).trials
        certain = certain_top(trials, self.top, self.live)
        by_id = trials.set_index("trial_id")
        handed = set(self.replicas.values())
        return replica_configs(self.manifest.tracking_uri, by_id, certain, self.seeds, handed)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if trial_id not in self.replicas:
            self.search.on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        if trial_id in self.replicas:
            return  # nothing to learn: a replica's config was chosen already
        self.search.on_trial_complete(trial_id, result=result, error=error)
        self.live.discard(trial_id)
        self._stale = True

    # Tune moves the one file save() writes into the experiment folder: the search
    # searcher's own file travels inside it.
    def save(self, checkpoint_path: str) -> None:
        self.search.save(checkpoint_path)
        state = {
            "search": Path(checkpoint_path).read_bytes(),
            "asked": self.asked,
            "live": sorted(self.live),
            "replicas": self.replicas,
        }
        Path(checkpoint_path).write_bytes(pickle.dumps(state))

    def restore(self, checkpoint_path: str) -> None:
        # The experiment's own file, written by save() above for this user's sweep.
        state = pickle.loads(Path(checkpoint_path).read_bytes())
        with tempfile.TemporaryDirectory() as folder:
            inner = Path(folder) / "search-state.pkl"
            inner.write_bytes(state["search"])
            self.search.restore(str(inner))
        self.asked, self.live = state["asked"], set(state["live"])
        self.replicas = dict(state["replicas"])
        self._waiting, self._stale = [], True
