"""The replication's plan: the longest replicas first, from each trial's own speed, and
which configs are certain to be replicated while trials still run."""

from __future__ import annotations

import math
import random

import pandas as pd

from gansweep.platform.replica_plan import certain_top, expected_seconds, longest_first
from gansweep.records import ranking
from gansweep.records.run_format import REPLICA_KEY


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


def _ranked(rows: list[tuple[str, str, float, int]], planned: int = 3000) -> pd.DataFrame:
    """(trial_id, status, value, step) rows in start order, ranked best first."""
    frame = pd.DataFrame(rows, columns=["trial_id", "status", "value", "step"])
    frame = frame.assign(planned_steps=planned, diverged=False, start=range(len(rows)))
    return ranking.rank_trials(frame, "min")


def test_with_r_trials_undecided_the_first_top_minus_r_ended_ones_are_certain():
    trials = _ranked(
        [
            ("a", ranking.FINISHED, 0.5, 3000),
            ("b", ranking.FINISHED, 0.2, 3000),
            ("c", ranking.STOPPED_EARLY, 0.1, 500),  # at a smaller budget: after a and b
            ("d", ranking.RUNNING, 0.05, 1000),  # may end first: it is undecided
            ("e", ranking.DIVERGED, math.nan, 800),  # ended, unranked: takes no place
            ("f", ranking.FINISHED, 0.3, 3000),  # Tune runs it again after a resume
        ]
    )
    assert certain_top(trials, 3, undecided={"f"}) == ["b"]  # 3 - (d, f)
    assert certain_top(trials, 4, undecided={"f"}) == ["b", "a"]
    assert certain_top(trials, 2, undecided={"f"}) == []
    assert certain_top(trials, 3, undecided=set()) == ["b", "f"]  # 3 - d
    done = trials.assign(status=trials["status"].replace(ranking.RUNNING, ranking.FINISHED))
    assert certain_top(done, 3, undecided=set()) == list(done["trial_id"][:3])


def test_a_certain_trial_stays_in_the_top_whatever_the_undecided_trials_do():
    """Random sweeps stopped midway: every trial certain then is in the final top K."""
    rng = random.Random(0)
    for _ in range(500):
        count, top = rng.randint(1, 12), rng.randint(1, 5)

        def outcome() -> tuple[str, float, int]:
            status = rng.choice([ranking.FINISHED, ranking.STOPPED_EARLY, ranking.DIVERGED])
            step = {ranking.FINISHED: 3000, ranking.STOPPED_EARLY: rng.choice([500, 1500])}
            value = math.nan if status == ranking.DIVERGED else rng.choice([0.1, 0.2, 0.3])
            return status, value, step.get(status, 700)

        final = [(f"t{i}", *outcome()) for i in range(count)]
        undecided = {t for t, *_ in final if rng.random() < 0.4}
        midway = [
            (t, ranking.RUNNING, rng.random(), 500) if t in undecided else (t, s, v, step)
            for t, s, v, step in final
        ]
        # A resumed trial: its records say it ended, but Tune runs it again.
        rerun = {t for t, s, *_ in midway if s != ranking.RUNNING and rng.random() < 0.1}
        certain = certain_top(_ranked(midway), top, undecided=rerun)
        best = _ranked(final)
        assert set(certain) <= set(best[best["rank"] > 0]["trial_id"].head(top))
