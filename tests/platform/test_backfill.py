"""Replicas started inside the search (platform/backfill.py): the searcher that hands them
out once their config is certain, the ASHA that never stops them, and when it applies."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher

from gansweep.platform import backfill
from gansweep.platform.replica_plan import certain_top
from gansweep.platform.tune_schedulers import ReplicaSafeASHA
from gansweep.records import ranking
from gansweep.records.run_format import REPLICA_KEY
from gansweep.search_spaces.validate import parse_space


class CountingSearch(Searcher):
    """A search searcher that proposes {"n": 1}, {"n": 2}, ... and records what it hears."""

    def __init__(self) -> None:
        super().__init__(metric="distance", mode="min")
        self.given = 0
        self.heard: list[str] = []  # trial ids of on_trial_result and on_trial_complete

    def suggest(self, trial_id: str) -> dict[str, Any]:
        self.given += 1
        return {"n": self.given}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.heard.append(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        self.heard.append(trial_id)

    def save(self, checkpoint_path: str) -> None:
        Path(checkpoint_path).write_text(json.dumps({"given": self.given, "heard": self.heard}))

    def restore(self, checkpoint_path: str) -> None:
        state = json.loads(Path(checkpoint_path).read_text())
        self.given, self.heard = state["given"], state["heard"]


class ScriptedRecords(backfill.SearchThenReplicas):
    """SearchThenReplicas with the sweep's records replaced by `results` (trial id ->
    metric, for the trials that ended): the real rule (certain_top) decides."""

    results: dict[str, float]

    def _certain_replicas(self) -> list[dict[str, Any]]:
        rows = [
            (t, ranking.FINISHED if t in self.results else ranking.RUNNING, self.results.get(t))
            for t in self.results.keys() | self.live
        ]
        frame = pd.DataFrame(rows, columns=["trial_id", "status", "value"]).fillna(math.nan)
        frame = frame.assign(step=100, planned_steps=100, diverged=False, start=0)
        certain = certain_top(ranking.rank_trials(frame, "min"), self.top, self.live)
        handed = set(self.replicas.values())
        return [
            {"n": 0, REPLICA_KEY: t, "seed": s}
            for t in certain
            for s in self.seeds
            if (t, s) not in handed
        ]


def scripted(results: dict[str, float]) -> ScriptedRecords:
    searcher = ScriptedRecords(CountingSearch(), 3, manifest=None, top=2, seeds=[1, 2])  # type: ignore[arg-type]
    searcher.results = results
    return searcher


def test_replicas_start_once_certain_and_the_search_never_hears_of_them(tmp_path):
    results: dict[str, float] = {}
    searcher = scripted(results)
    assert [searcher.suggest(t) for t in ("s1", "s2", "s3")] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert searcher.suggest("r0") is None  # 3 trials undecided, top 2: nothing certain

    results["s1"] = 0.5
    searcher.on_trial_complete("s1", {"distance": 0.5})
    assert searcher.suggest("r0") is None  # s2 and s3 may both end above s1
    results["s2"] = 0.3
    searcher.on_trial_complete("s2", {"distance": 0.3})
    # s3 alone can push only one of them out: s2, the best, is certain; its seeds go out.
    first = searcher.suggest("r1"), searcher.suggest("r2")
    assert [(c[REPLICA_KEY], c["seed"]) for c in first] == [("s2", 1), ("s2", 2)]
    assert searcher.suggest("r3") is None  # s1 waits for s3
    searcher.on_trial_result("r1", {"distance": 0.2})
    searcher.on_trial_complete("r1", {"distance": 0.2})

    # The driver dies here; Tune restores the searcher from its last save.
    path = str(tmp_path / "searcher-state.pkl")
    searcher.save(path)
    restored = scripted(results)
    restored.restore(path)
    assert restored.search.given == 3 and restored.live == {"s3"}

    results["s3"] = 0.4
    restored.on_trial_complete("s3", {"distance": 0.4})
    last = restored.suggest("r4"), restored.suggest("r5")
    assert [(c[REPLICA_KEY], c["seed"]) for c in last] == [("s3", 1), ("s3", 2)]
    assert restored.suggest("r6") == Searcher.FINISHED  # s2's seeds are not handed out twice
    assert restored.search.heard == ["s1", "s2", "s3"]  # never a replica's id


def test_a_search_that_ends_early_goes_on_to_its_replicas():
    """A grid smaller than the budget finishes first: the replicas still follow."""

    class ShortGrid(CountingSearch):
        def suggest(self, trial_id: str) -> dict[str, Any] | str:  # type: ignore[override]
            return Searcher.FINISHED if self.given == 1 else super().suggest(trial_id)

    results: dict[str, float] = {}
    searcher = ScriptedRecords(ShortGrid(), 3, manifest=None, top=2, seeds=[1])  # type: ignore[arg-type]
    searcher.results = results
    assert searcher.suggest("s1") == {"n": 1}
    assert searcher.suggest("s2") is None  # the grid ended; s1 still runs
    results["s1"] = 0.1
    searcher.on_trial_complete("s1", {"distance": 0.1})
    replica = searcher.suggest("r1")
    assert replica is not None and replica[REPLICA_KEY] == "s1"
    assert searcher.suggest("r2") == Searcher.FINISHED


def trial(trial_id: str, replica_of: str | None = None) -> Any:
    config = {"lr": 0.1} if replica_of is None else {"lr": 0.1, REPLICA_KEY: replica_of}
    return SimpleNamespace(trial_id=trial_id, config=config)


def test_asha_stops_a_poor_search_trial_but_never_a_replica():
    asha = ReplicaSafeASHA(time_attr="step", max_t=900, grace_period=100, reduction_factor=3)
    asha.set_search_properties("distance", "min")
    search = [trial(f"s{i}") for i in range(3)]
    replica = trial("r", replica_of="s0")
    for t in [*search, replica]:
        asha.on_trial_add(None, t)
    decisions = [
        asha.on_trial_result(None, t, {"step": 100, "distance": d})
        for t, d in zip(search, [0.1, 0.2, 0.3], strict=True)
    ]
    assert decisions[-1] == TrialScheduler.STOP  # the worst of 3 at the first rung
    worst = asha.on_trial_result(None, replica, {"step": 100, "distance": 9.9})
    assert worst == TrialScheduler.CONTINUE
    poor = trial("s3")
    asha.on_trial_add(None, poor)
    assert asha.on_trial_result(None, poor, {"step": 100, "distance": 9.9}) == TrialScheduler.STOP
    asha.on_trial_complete(None, replica, {"step": 900, "distance": 9.9})
    asha.on_trial_remove(None, trial("r2", replica_of="s0"))  # never added: no KeyError
    assert set(asha._trial_info) == {t.trial_id for t in [*search, poor]}


SPACE = "params:\n  loss: {choice: [ns, hinge]}\n"


@pytest.mark.parametrize(
    "scheduler, top, budget, space, expected",
    [
        ("asha", 3, None, SPACE, True),
        ("fifo", 1, None, SPACE, True),
        ("hyperband", 3, None, SPACE, False),  # its brackets would pause replicas
        ("pbt", 3, None, SPACE, False),  # its trials exploit each other
        ("asha", 0, None, SPACE, False),  # no replication asked
        ("asha", 3, 600.0, SPACE, False),  # the budget ends replicas too
        ("asha", 3, None, SPACE + "  seed: {choice: [0, 1]}\n", False),  # seeds not known
    ],
)
def test_when_replicas_start_inside_the_search(scheduler, top, budget, space, expected):
    assert backfill.applies(scheduler, top, budget, parse_space(space)) is expected


def test_the_fresh_seeds_follow_the_seed_the_search_trains_with():
    assert backfill.replica_seeds(parse_space(SPACE), 3) == [1, 2, 3]
    fixed = parse_space("fixed:\n  seed: 7\n" + SPACE)
    assert backfill.replica_seeds(fixed, 2) == [8, 9]
