"""A sweep on a multi-node Ray cluster (Ray's own test cluster: a head and two worker
nodes as separate raylets on this machine) places trials on more than one node."""

import pytest

from gansweep.platform import sweep as sweeps
from gansweep.platform.sweep_input import SweepOptions, prepare
from gansweep.records.manifest import Manifest


@pytest.fixture
def cluster():
    import ray
    from ray.cluster_utils import Cluster

    # The head takes no trials, so two concurrent 1-CPU trials need both worker nodes.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, workers
    ray.shutdown()
    cluster.shutdown()


@pytest.mark.slow
def test_a_sweep_spreads_trials_over_the_worker_nodes(cluster, tmp_path, monkeypatch):
    import ray

    cluster, workers = cluster
    monkeypatch.chdir(tmp_path)
    options = SweepOptions(
        name="multinode",
        num_samples=4,
        max_concurrent=2,
        scheduler="fifo",
        overrides=["steps=200", "eval_every=100", "eval_samples=500"],
        address=cluster.address,
        replicate_top=0,
    )
    prepared = prepare(options)
    ray.init(address=cluster.address)
    table = sweeps.run(prepared).board
    manifest = Manifest.load(tmp_path / "sweeps", "multinode")
    assert len(table) == 4 and (table["step"] == 200).all()
    assert manifest.status == "finished"

    # Each trial tags its run with the Ray node it ran on (the last attempt's node).
    import mlflow

    runs = mlflow.MlflowClient(manifest.tracking_uri).search_runs([manifest.experiment_id])
    nodes = {r.data.tags["ray.node_id"] for r in runs if "ray.node_id" in r.data.tags}
    assert nodes == {w.node_id for w in workers}, nodes
