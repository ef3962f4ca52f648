"""Shared test set-up."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The test networks are tiny: extra intra-op threads only add synchronization, and
    where the cores are busy OpenMP's barriers made the suite ~15x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Feature nets and data caches go to one temporary folder for the whole session."""
    monkeypatch.setenv("GANSWEEP_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))
