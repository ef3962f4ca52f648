"""A sweep frozen mid-replication, read back from a real MLflow store (synthetic_sweep: no
Ray, no training): the leaderboard and "best so far" (status, ls, the live view) follow
one rule, and neither puts a config first for the replicas it has (issue 21)."""

import dataclasses

import pytest
from mlflow import MlflowClient
from synthetic_sweep import make_sweep

from gansweep.records.leaderboard import standings
from gansweep.records.manifest import Replication
from gansweep.records.progress import progress
from gansweep.records.read import child_runs


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """10 trials; the top 2 by the trial rule are being replicated on 3 seeds inside the
    search (no plan fixed yet): the second one's seeds are all in, the best one's not."""
    root = tmp_path_factory.mktemp("mid")
    manifest = make_sweep(root, 10, replicate_top=2, seeds=3, diverged=0.0, failed=0.0,
                          status="running")  # fmt: skip
    best, second = manifest.replication.trial_ids
    manifest.replication = None
    manifest.options = {**manifest.options, "replicate_top": 2, "seeds": 3}
    manifest.save()
    client = MlflowClient(manifest.tracking_uri)
    for run in child_runs(manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id):
        if run.data.tags.get("replica_of") == best:  # not started yet
            client.delete_run(run.info.run_id)
    return manifest, best, second


def test_the_board_and_best_so_far_keep_the_better_config_first(frozen):
    manifest, best, second = frozen
    ranked = standings(manifest)
    board = ranked.board.set_index("trial_id")
    assert board.loc[second, "held"] and board.loc[second, "seeds"] == 3
    assert not board.loc[best, "replicated"]
    assert ranked.champion["trial_id"] == best
    shown = progress(manifest)
    assert shown.phase == "search + replication" and shown.replicas_planned == 6
    assert shown.best["trial_id"] == best
    assert [row.rank for row in shown.rows[:2]] == [1, 2]


def test_a_replication_cut_short_keeps_the_better_unfinished_config_first(frozen):
    """The same records once --time-budget ended the replication with the plan fixed: the
    best config never got its seeds; the second, held on all 3, does not pass it."""
    manifest, best, second = frozen
    cut = Replication(2, [1, 2, 3], [best, second], status="interrupted")
    ranked = standings(dataclasses.replace(manifest, status="finished", replication=cut))
    assert list(ranked.board["trial_id"][:2]) == [best, second]
    assert list(ranked.board["held"][:2]) == [False, True]
