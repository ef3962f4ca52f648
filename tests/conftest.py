"""Shared test set-up."""

import signal

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


@pytest.fixture(autouse=True, scope="session")
def _ctrl_c_reaches_the_commands_started():
    """Tests send SIGINT to the commands they start, as a terminal's Ctrl-C does. A shell
    starts a background job (`make test-slow &`) with SIGINT ignored, its children inherit
    that and Python keeps an inherited SIG_IGN: the Ctrl-C tests of `sweep` and `ui` then
    failed, their command never seeing the signal. With a handler here, the children
    start with SIGINT at its default."""
    inherited = signal.getsignal(signal.SIGINT)
    if inherited == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)
