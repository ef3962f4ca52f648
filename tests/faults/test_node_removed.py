"""Fault injection on a multi-node Ray cluster (Ray's own test cluster: a head and two
worker nodes, each a raylet of its own on this machine): a node that runs a trial is
removed mid-sweep."""

from __future__ import annotations

import time

import pytest
from faultkit import (
    check_trial_run,
    children_by_trial,
    latest_checkpoints,
    load_manifest,
    planned_steps,
    progress_steps,
    sweep_args,
    tail,
    trial_folders,
    tune_trials,
    wait_for,
)

NODE_TAG = "ray.node_id"  # set by each attempt of a trial at its start


@pytest.mark.slow
def test_a_trial_on_a_removed_node_continues_on_the_remaining_one(ray_cluster, sweeps, tmp_path):
    """Fault: a worker node of the cluster is removed (its raylet and the trial worker on
    it end) while a trial runs there, after that trial's first checkpoint.
    Must survive: Tune retries the trial from its checkpoint on the remaining node
    (--max-failures 3), the other trial is untouched, the sweep ends with exit code 0,
    every trial reaches its planned steps, and each keeps one MLflow child run whose
    metric history has every evaluation step exactly once; the moved trial's run names
    the node it finished on."""
    cluster, workers = ray_cluster
    name, samples, steps, eval_every = "nodes", 2, 1500, 250
    planned = planned_steps(steps, eval_every)
    sweep_dir = tmp_path / "sweeps" / name
    started = time.monotonic()
    proc = sweeps.start(
        *sweep_args(name, steps, eval_every, "--num-samples", str(samples)),
        "--max-concurrent", "2", "--max-failures", "3", "--address", cluster.address,
        log="sweep.log", env={"RAY_ADDRESS": cluster.address},
    )  # fmt: skip

    victim: dict[str, str] = {}

    def a_checkpointed_trial_midway_on_a_node() -> bool:
        # Midway: checkpointed, two evaluations or more from its end, so it cannot finish
        # between this check and the removal.
        manifest = load_manifest(tmp_path, name)
        if manifest is None:
            return False
        try:
            grouped = children_by_trial(manifest)
        except Exception:  # the store is busy right now: ask again later
            return False
        for trial_id, index in latest_checkpoints(sweep_dir).items():
            runs = grouped.get(trial_id, [])
            if index <= len(planned) - 3 and len(runs) == 1 and NODE_TAG in runs[0].data.tags:
                victim.update(trial_id=trial_id, node_id=runs[0].data.tags[NODE_TAG])
                return True
        return False

    wait_for("a checkpointed trial midway", a_checkpointed_trial_midway_on_a_node, proc, 300)
    [removed] = [w for w in workers if w.node_id == victim["node_id"]]
    [remaining] = [w for w in workers if w is not removed]
    cluster.remove_node(removed)
    print(
        f"\nremoved node {removed.node_id[:12]} running trial {victim['trial_id']} after "
        f"{time.monotonic() - started:.1f} s (its latest checkpoints: "
        f"{latest_checkpoints(sweep_dir)})"
    )

    assert sweeps.wait(proc, 600) == 0, tail(proc)
    print(f"sweep took {time.monotonic() - started:.1f} s")

    manifest = load_manifest(tmp_path, name)
    trials = {t.trial_id: t for t in tune_trials(sweep_dir)}
    assert len(trials) == samples and victim["trial_id"] in trials
    assert [t.status for t in trials.values()] == ["TERMINATED"] * samples
    assert [t.last_result["step"] for t in trials.values()] == [steps] * samples
    # The moved trial failed once (its node went away) and the other never did.
    failures = {tid: t.num_failures for tid, t in trials.items()}
    assert failures == {tid: int(tid == victim["trial_id"]) for tid in trials}
    # Continued from its checkpoint, not restarted: Tune saw every step once, in order.
    for trial_id in trials:
        assert progress_steps(trial_folders(sweep_dir)[trial_id]) == planned, trial_id

    grouped = children_by_trial(manifest)
    assert sorted(grouped) == sorted(trials)
    for trial_id in trials:
        check_trial_run(manifest, grouped[trial_id], planned)
    # The retried attempt ran on the remaining node and said so on the run.
    [moved] = grouped[victim["trial_id"]]
    assert moved.data.tags[NODE_TAG] == remaining.node_id != removed.node_id
