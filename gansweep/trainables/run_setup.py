"""How a run is set up before it trains, from its config and the shape of its data: the
device, torch's threads, what the networks are built from, and its seeds. Pure functions
(but for what the machine has): GANTrainer builds a run with them, load_generator a
generator alone."""

from __future__ import annotations

import os

import numpy as np
import torch

from gansweep.trainables.config import TrialConfig
from gansweep.trainables.models import ModelSpec


def resolve_device(name: str) -> torch.device:
    """'auto' is the GPU when one is visible (Ray hides GPUs a trial was not given)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but no CUDA device is visible")
    return torch.device(name)


SMALL_IMAGE = 16  # pixels a side: up to this, a network's step is too small to split


def default_threads(data_shape: tuple[int, ...]) -> int:
    """Torch's intra-op threads for a run that was not told how many CPUs it has.

    Small steps (2-D points, images up to 16 pixels) gain little from threads and, beside
    any other busy process, torch's default of one thread per core collapses: on 2 cores
    beside 2 busy processes a DCGAN on 8-pixel digits kept 0.59 of its solo speed with
    1 thread and 0.17-0.22 with 2, which were 13-53 % faster alone (two runs of
    benchmarks/engine_overhead.py --under-load). Larger images have convolutions worth
    splitting (32 pixels: 2 threads 1.9x as fast alone): up to 4 threads, no more than the
    cores this process may run on.
    """
    if len(data_shape) < 3 or data_shape[-1] <= SMALL_IMAGE:
        return 1
    return max(1, min(4, len(os.sched_getaffinity(0))))


def model_spec(cfg: TrialConfig, data_shape: tuple[int, ...], num_classes: int) -> ModelSpec:
    """What the network families need from a config and the data it trains on."""
    return ModelSpec(
        data_shape=data_shape,
        z_dim=cfg.z_dim,
        width=cfg.width,
        num_classes=num_classes,
        g_norm=cfg.g_norm,
        d_norm=cfg.d_norm,
    )


def run_seeds(seed: int) -> tuple[int, int, int]:
    """Independent seeds for initialization, training draws and evaluation draws."""
    init, train, evaluation = np.random.SeedSequence(seed).generate_state(3)
    return int(init), int(train), int(evaluation)
