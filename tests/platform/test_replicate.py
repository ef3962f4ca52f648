"""The replication's order: the longest replicas first, from each trial's own speed."""

from __future__ import annotations

import math

import pandas as pd

from gansweep.platform.replicate import expected_seconds, longest_first
from gansweep.trainables.trainable import REPLICA_KEY


def _trials(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """(trial_id, seconds, step, planned_steps) rows, as trials_frame has them."""
    frame = pd.DataFrame(rows, columns=["trial_id", "seconds", "step", "planned_steps"])
    return frame.set_index("trial_id")


def test_a_replica_takes_the_trial_s_seconds_per_step_times_its_planned_steps():
    seconds = expected_seconds(
        _trials(
            [
                ("full", 30.0, 3000, 3000),
                ("stopped", 10.0, 500, 3000),  # stopped at the first rung: 6x its time
                ("never_reported", math.nan, math.nan, 3000),
            ]
        )
    )
    assert seconds == {"full": 30.0, "stopped": 60.0, "never_reported": 0.0}


def test_the_slow_config_ranked_last_starts_first_and_ties_keep_the_best_first():
    best, second, slow = "t_best", "t_second", "t_slow"  # the ranking's order
    configs = [{REPLICA_KEY: t, "seed": s} for t in (best, second, slow) for s in (1, 2)]
    ordered = longest_first(configs, {best: 20.0, second: 20.0, slow: 60.0})
    assert [(c[REPLICA_KEY], c["seed"]) for c in ordered] == [
        (slow, 1), (slow, 2), (best, 1), (best, 2), (second, 1), (second, 2),
    ]  # fmt: skip


def test_longest_first_ends_the_slots_together():
    """2 slots, 3 configs x 3 seeds (60 s, 25 s, 25 s a replica, the slow one ranked last):
    list scheduling in the ranking's order ends with a slow replica alone for 60 s;
    longest first ends the two slots less than one short replica apart."""

    def makespan_and_idle(durations: list[float], slots: int = 2) -> tuple[float, float]:
        free = [0.0] * slots
        for seconds in durations:  # each replica goes to the first slot that frees up
            free[free.index(min(free))] += seconds
        return max(free), slots * max(free) - sum(durations)

    lengths = {"a": 25.0, "b": 25.0, "slow": 60.0}
    configs = [{REPLICA_KEY: t, "seed": s} for t in ("a", "b", "slow") for s in (1, 2, 3)]
    ranked = [lengths[c[REPLICA_KEY]] for c in configs]
    lpt = [lengths[c[REPLICA_KEY]] for c in longest_first(configs, lengths)]
    assert makespan_and_idle(ranked) == (195.0, 60.0)  # the third slow replica alone
    assert makespan_and_idle(lpt) == (170.0, 10.0)  # 10 s < one 25 s replica
