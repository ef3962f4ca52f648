"""Fixtures of the fault-injection tests. Each test runs in its own tmp_path as working
directory, and every process it starts (sweeps, MLflow servers, Ray test clusters) is
killed at its end, passed or failed.

The helpers live in faultkit.py. pytest runs in importlib mode, which puts no test folder
on sys.path, so this file loads faultkit.py by path and registers it as the module
``faultkit``; conftest files are imported before the test modules of their folder, which
can then ``import faultkit``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest


def _load_faultkit():
    if "faultkit" in sys.modules:
        return sys.modules["faultkit"]
    path = Path(__file__).with_name("faultkit.py")
    spec = importlib.util.spec_from_file_location("faultkit", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["faultkit"] = module
    spec.loader.exec_module(module)
    return module


faultkit = _load_faultkit()


@pytest.fixture
def sweeps(tmp_path, monkeypatch) -> Iterator[faultkit.Sweeps]:
    """Starts `gansweep` subprocesses in tmp_path (also the test's cwd)."""
    monkeypatch.chdir(tmp_path)
    launcher = faultkit.Sweeps(tmp_path)
    yield launcher
    launcher.close()


@pytest.fixture
def mlflow_server(tmp_path) -> Iterator[faultkit.MlflowServer]:
    """A real MLflow tracking server (not started yet: call .start())."""
    root = tmp_path / "mlflow-server"
    root.mkdir()
    server = faultkit.MlflowServer(root)
    yield server
    server.stop()


@pytest.fixture
def ray_cluster():
    """Ray's multi-node test cluster: a head that takes no trials and two 1-CPU worker
    nodes, each a raylet of its own on this machine. This process does not connect to it;
    sweeps join it with --address."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        yield cluster, workers
    finally:
        cluster.shutdown()
