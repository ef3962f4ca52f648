"""The one rule for how a trial ended and how trials rank (gansweep.records.ranking), on
hand-made tables whose right order is known."""

import math

import pandas as pd
import pytest

from gansweep.records import ranking
from gansweep.records.leaderboard import rank_runs
from gansweep.records.manifest import Manifest, Replication


def trials(*rows) -> pd.DataFrame:
    """rows of (trial_id, status, value, step, planned_steps, diverged)."""
    frame = pd.DataFrame(
        rows, columns=["trial_id", "status", "value", "step", "planned_steps", "diverged"]
    )
    frame["start"] = range(len(frame))
    return frame


@pytest.mark.parametrize(
    ("step", "planned", "diverged", "failed", "expected"),
    [
        (3000, 3000, False, False, "finished"),
        (500, 3000, False, False, "stopped_early"),
        (500, 3000, True, False, "diverged"),
        (3000, 3000, False, True, "failed"),
    ],
)
def test_how_a_trial_ended(step, planned, diverged, failed, expected):
    assert ranking.trial_outcome(step, planned, diverged, failed) == expected


@pytest.mark.parametrize(
    ("tag", "run_status", "sweep_running", "expected"),
    [
        ("stopped_early", "FINISHED", False, "stopped_early"),
        (None, "RUNNING", True, "running"),
        (None, "RUNNING", False, "interrupted"),
        (None, "FAILED", False, "failed"),
        ("", "FINISHED", False, "finished"),
    ],
)
def test_the_status_read_back_from_a_run(tag, run_status, sweep_running, expected):
    assert ranking.recorded_status(tag, run_status, sweep_running) == expected


def test_a_trial_stopped_early_never_outranks_one_at_full_budget():
    table = trials(
        ("early-great", "stopped_early", 0.01, 500, 3000, False),
        ("full-poor", "finished", 0.90, 3000, 3000, False),
        ("full-good", "finished", 0.20, 3000, 3000, False),
        ("mid", "stopped_early", 0.50, 1500, 3000, False),
        ("mid-better", "stopped_early", 0.40, 1500, 3000, False),
    )
    ranked = ranking.rank_trials(table, "min")
    assert list(ranked["trial_id"]) == ["full-good", "full-poor", "mid-better", "mid",
                                        "early-great"]  # fmt: skip
    assert list(ranked["rank"]) == [1, 2, 3, 4, 5]


def test_diverged_failed_and_silent_trials_are_not_ranked():
    table = trials(
        ("diverged", "diverged", 1e6, 500, 3000, True),
        ("failed", "failed", math.nan, 0, 3000, False),
        ("ok", "finished", 0.5, 3000, 3000, False),
        ("silent", "running", math.nan, 0, 3000, False),
        ("flagged", "finished", 0.1, 3000, 3000, True),  # diverged at its last evaluation
    )
    ranked = ranking.rank_trials(table, "min")
    assert list(ranked["trial_id"]) == ["ok", "diverged", "failed", "silent", "flagged"]
    assert list(ranked["rank"]) == [1, 0, 0, 0, 0]


def test_higher_is_better_ranks_the_largest_first():
    table = trials(
        ("a", "finished", 6.0, 3000, 3000, False),
        ("b", "finished", 8.0, 3000, 3000, False),
        ("c", "stopped_early", 9.0, 1000, 3000, False),
    )
    assert list(ranking.rank_trials(table, "max")["trial_id"]) == ["b", "a", "c"]


def replicas(*rows) -> pd.DataFrame:
    """rows of (replica_of, seed, status, value, modes_captured, high_quality)."""
    frame = pd.DataFrame(
        rows,
        columns=["replica_of", "seed", "status", "value", "modes_captured", "high_quality"],
    )
    frame["diverged"] = frame["status"] == "diverged"
    frame["start"] = range(len(frame))
    return frame


def test_replicated_configs_rank_by_their_worst_seed_then_their_mean():
    table = replicas(
        ("steady", 1, "finished", 0.30, 8, 0.90), ("steady", 2, "finished", 0.32, 8, 0.88),
        ("lucky", 1, "finished", 0.05, 8, 0.99), ("lucky", 2, "finished", 0.60, 5, 0.40),
        ("twin", 1, "finished", 0.29, 8, 0.80), ("twin", 2, "finished", 0.32, 7, 0.70),
    )  # fmt: skip
    summary = ranking.replica_summary(table, "min", seeds_planned=2)
    assert list(summary["replica_of"]) == ["twin", "steady", "lucky"]
    steady = summary.set_index("replica_of").loc["steady"]
    assert steady["mean"] == pytest.approx(0.31)
    assert steady["sd"] == pytest.approx(0.02 / math.sqrt(2))
    assert steady["worst"] == pytest.approx(0.32)
    assert steady["modes_captured_worst"] == 8 and steady["high_quality_worst"] == 0.88
    assert steady["high_quality_mean"] == pytest.approx(0.89)
    assert list(summary["robust_rank"]) == [1, 2, 3]


def test_a_seed_that_diverged_makes_the_worst_the_worst_possible():
    table = replicas(
        ("fragile", 1, "finished", 0.01, 8, 0.99), ("fragile", 2, "diverged", 1e6, 0, 0.0),
        ("plain", 1, "finished", 0.50, 8, 0.50), ("plain", 2, "finished", 0.55, 8, 0.50),
    )  # fmt: skip
    summary = ranking.replica_summary(table, "min", seeds_planned=2).set_index("replica_of")
    assert list(summary.index) == ["plain", "fragile"]
    fragile = summary.loc["fragile"]
    assert fragile["broken"] == 1 and fragile["worst"] == math.inf
    assert fragile["mean"] == pytest.approx(0.01)  # over the seeds that gave a result
    assert fragile["modes_captured_worst"] == 0.0  # what a diverged run reports


def test_a_config_still_being_replicated_ranks_after_the_complete_ones():
    table = replicas(
        ("partial", 1, "finished", 0.01, 8, 0.99), ("partial", 2, "running", math.nan, 0, 0),
        ("done", 1, "finished", 0.50, 8, 0.50), ("done", 2, "finished", 0.55, 8, 0.50),
    )  # fmt: skip
    summary = ranking.replica_summary(table, "min", seeds_planned=2)
    assert list(summary["replica_of"]) == ["done", "partial"]
    assert list(summary["complete"]) == [True, False] and list(summary["seeds"]) == [2, 1]


def sweep_runs(*rows) -> pd.DataFrame:
    """rows of (role, trial_id, replica_of, status, value, step, planned_steps, seed): a
    trials_frame of a sweep's trials and replicas."""
    runs = pd.DataFrame(
        rows,
        columns=["role", "trial_id", "replica_of", "status", "value", "step",
                 "planned_steps", "seed"],
    )  # fmt: skip
    runs["diverged"] = runs["status"] == "diverged"
    runs["start"] = range(len(runs))
    for column in ("run_id", "combination", "seconds"):
        runs[column] = runs["trial_id"]
    return runs


def test_the_leaderboard_puts_replicated_configs_first_and_numbers_ranked_rows():
    runs = sweep_runs(
        # role, trial_id, replica_of, status, value, step, planned, seed
        ("trial", "t1", "", "finished", 0.10, 300, 300, "0"),
        ("trial", "t2", "", "finished", 0.20, 300, 300, "0"),
        ("trial", "t3", "", "stopped_early", 0.05, 100, 300, "0"),
        ("trial", "t4", "", "diverged", 1e6, 100, 300, "0"),
        ("replica", "r1", "t1", "finished", 0.40, 300, 300, "1"),
        ("replica", "r2", "t2", "finished", 0.30, 300, 300, "1"),
    )  # fmt: skip
    standings = rank_runs(runs, "distance", "min", seeds_planned=1)
    board = standings.board
    # t2 holds better on its fresh seed than t1 does: it is the champion.
    assert list(board["trial_id"]) == ["t2", "t1", "t3", "t4"]
    assert list(board["rank"]) == [1, 2, 3, 0]
    assert list(board["replicated"]) == [True, True, False, False]
    assert board.loc[0, "distance_worst"] == pytest.approx(0.30)
    assert standings.champion["trial_id"] == "t2"


def test_a_seed_retrained_after_its_replica_was_lost_counts_once():
    table = replicas(
        ("c", 1, "failed", math.nan, 0, 0.0),  # lost with a killed driver
        ("c", 1, "finished", 0.20, 8, 0.90),  # the same seed, retrained on resume
        ("c", 2, "finished", 0.30, 8, 0.80),
    )
    table["start"] = [0, 5, 1]
    summary = ranking.replica_summary(table, "min", seeds_planned=2).iloc[0]
    assert summary["seeds"] == 2 and summary["broken"] == 0 and summary["complete"]
    assert summary["worst"] == pytest.approx(0.30) and summary["mean"] == pytest.approx(0.25)


def test_a_replicated_config_that_diverged_on_a_fresh_seed_ranks_after_the_others():
    runs = sweep_runs(
        ("trial", "t1", "", "finished", 0.10, 300, 300, "0"),
        ("trial", "t2", "", "finished", 0.20, 300, 300, "0"),
        ("trial", "t3", "", "finished", 0.30, 300, 300, "0"),
        ("replica", "r1", "t1", "diverged", 1e6, 100, 300, "1"),  # t1 does not hold
        ("replica", "r2", "t2", "finished", 0.25, 300, 300, "1"),
    )  # fmt: skip
    board = rank_runs(runs, "distance", "min", seeds_planned=1).board
    assert list(board["trial_id"]) == ["t2", "t3", "t1"]
    assert list(board["rank"]) == [1, 2, 3]


def test_configs_still_being_replicated_keep_their_trial_order():
    """Partial replication decides nothing: B's one good seed does not lift it above A."""
    runs = sweep_runs(
        ("trial", "A", "", "finished", 0.10, 300, 300, "0"),
        ("trial", "B", "", "finished", 0.20, 300, 300, "0"),
        ("replica", "a1", "A", "finished", 0.40, 300, 300, "1"),
        ("replica", "b1", "B", "finished", 0.15, 300, 300, "1"),
    )  # fmt: skip
    board = rank_runs(runs, "distance", "min", seeds_planned=3).board
    assert list(board["trial_id"]) == ["A", "B"]


def test_a_replica_metric_no_run_reports_is_unknown_not_zero():
    """An image sweep has no modes: its replicated configs show no mode figures."""
    table = replicas(("c", 1, "finished", 20.0, 0, 0), ("c", 2, "finished", 25.0, 0, 0))
    table = table.drop(columns=["modes_captured", "high_quality"])
    summary = ranking.replica_summary(table, "min", seeds_planned=2).iloc[0]
    assert summary["worst"] == 25.0
    assert all(math.isnan(summary[f"modes_captured_{s}"]) for s in ("mean", "sd", "worst"))


# ------------------------------------------------ a board frozen mid-replication


def manifest_in(phase: str) -> Manifest:
    """A sweep's manifest (no store behind it) that asked for the top 3 configs on 3 fresh
    seeds, in the phase named."""
    manifest = Manifest(
        name="m", sweep_dir="/nowhere/m", tracking_uri="sqlite:///nowhere.db", experiment_id="1",
        parent_run_id="0" * 32, study_name="m", space="quick", space_source="",
        options={"replicate_top": 3, "seeds": 3},
    )  # fmt: skip
    if phase != "search + replication":  # replicas started inside the search: no plan yet
        status = "running" if phase == "replication" else "interrupted"  # --time-budget
        manifest.replication = Replication(3, [7, 8, 9], ["fin", "mid", "early"], status)
    return manifest


@pytest.mark.parametrize("phase", ["search + replication", "replication", "replication cut short"])
def test_mid_replication_no_config_outranks_a_better_one_for_having_replicas(phase):
    """Issue 21: the live view showed a trial stopped at step 500 (1.393) as the best while a
    finished one stood at 0.077: its first replicas were in, the others' not yet."""
    runs = sweep_runs(
        # role, trial_id, replica_of, status, value, step, planned, seed
        ("trial", "fin", "", "finished", 0.077, 3000, 3000, "0"),
        ("trial", "mid", "", "finished", 0.20, 3000, 3000, "0"),
        ("trial", "early", "", "stopped_early", 1.393, 500, 3000, "0"),
        ("trial", "other", "", "finished", 0.30, 3000, 3000, "0"),
        ("replica", "e7", "early", "finished", 0.90, 3000, 3000, "7"),
        ("replica", "e8", "early", "finished", 0.95, 3000, 3000, "8"),
        ("replica", "m7", "mid", "finished", 0.25, 3000, 3000, "7"),
        ("replica", "f7", "fin", "running", math.nan, 0, 3000, "7"),
    )  # fmt: skip
    manifest = manifest_in(phase)
    assert manifest.seeds_planned == 3
    ranked = rank_runs(runs, "distance", "min", manifest.seeds_planned)
    board = ranked.board
    assert list(board["trial_id"]) == ["fin", "mid", "other", "early"]  # the trial order
    assert list(board["rank"]) == [1, 2, 3, 4]
    assert not board["held"].any() and ranked.champion["trial_id"] == "fin"
    assert list(board["replicated"]) == [True, True, False, True]


def test_with_no_replication_plan_known_no_config_counts_as_replicated():
    """The bug behind issue 21: before the plan is fixed the board was told 0 seeds were
    planned, and every config with a replica, even one still running, counted as held."""
    runs = sweep_runs(
        ("trial", "A", "", "finished", 0.10, 300, 300, "0"),
        ("trial", "B", "", "stopped_early", 0.90, 100, 300, "0"),
        ("replica", "b1", "B", "finished", 0.50, 300, 300, "1"),
    )  # fmt: skip
    standings = rank_runs(runs, "distance", "min", seeds_planned=0)
    assert list(standings.board["trial_id"]) == ["A", "B"]
    assert not standings.configs["complete"].any()


def test_a_config_replicated_first_does_not_pass_a_better_one_still_replicating():
    """Replicas start longest first, not best first: C's seeds ending before A's says
    nothing about A. Held configs reorder among themselves by their worst seed (C before
    B), below A; once A's seeds are in the board is today's: held configs first."""
    rows = [
        ("trial", "A", "", "finished", 0.10, 300, 300, "0"),
        ("trial", "B", "", "finished", 0.20, 300, 300, "0"),
        ("trial", "C", "", "finished", 0.30, 300, 300, "0"),
        ("trial", "D", "", "finished", 0.40, 300, 300, "0"),
        ("replica", "a1", "A", "finished", 0.45, 300, 300, "1"),
        *(("replica", f"b{s}", "B", "finished", 0.5, 300, 300, str(s)) for s in (1, 2)),
        *(("replica", f"c{s}", "C", "finished", 0.35, 300, 300, str(s)) for s in (1, 2)),
    ]  # fmt: skip
    board = rank_runs(sweep_runs(*rows), "distance", "min", seeds_planned=2).board
    assert list(board["trial_id"]) == ["A", "C", "B", "D"]
    assert list(board["held"]) == [False, True, True, False]
    rows.append(("replica", "a2", "A", "finished", 0.40, 300, 300, "2"))
    board = rank_runs(sweep_runs(*rows), "distance", "min", seeds_planned=2).board
    assert list(board["trial_id"]) == ["C", "A", "B", "D"]  # worst seeds 0.35, 0.45, 0.5
    assert list(board["rank"]) == [1, 2, 3, 4] and board["held"].sum() == 3


def test_a_held_config_never_passes_a_trial_that_beats_them_all_and_was_not_replicated():
    """E.g. a better trial of a resumed search: the replicated ones stand where the best of
    them stands, not above it."""
    runs = sweep_runs(
        ("trial", "A", "", "finished", 0.20, 300, 300, "0"),
        ("trial", "new", "", "finished", 0.05, 300, 300, "0"),
        ("replica", "a1", "A", "finished", 0.30, 300, 300, "1"),
    )  # fmt: skip
    board = rank_runs(runs, "distance", "min", seeds_planned=1).board
    assert list(board["trial_id"]) == ["new", "A"] and list(board["held"]) == [False, True]


@pytest.mark.parametrize(
    ("options", "replication", "expected"),
    [
        ({"replicate_top": 3, "seeds": 2}, None, 2),  # search + replication (backfill)
        ({"replicate_top": 0, "seeds": 3}, None, 0),  # no replication asked for
        ({}, None, 0),  # a manifest that says nothing
        ({"replicate_top": 3, "seeds": 2}, Replication(3, [5, 6, 7, 8], ["t"]), 4),  # fixed
    ],
)
def test_the_planned_seeds_come_from_the_plan_else_the_options(options, replication, expected):
    manifest = manifest_in("search + replication")
    manifest.options, manifest.replication = options, replication
    assert manifest.seeds_planned == expected


def test_the_rule_printed_under_the_leaderboard_says_what_rank_board_does():
    for words in ("held on every fresh seed rank first, by their worst seed", "never above a trial",
                  "all its planned seeds", "full budget first", "diverged or failed"):  # fmt: skip
        assert words in ranking.RULE
