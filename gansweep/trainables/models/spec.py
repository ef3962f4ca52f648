"""ModelSpec: everything a network family needs to know to build G and D."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    data_shape: tuple[int, ...]  # one sample: (2,) for 2-D points, (C, H, W) for images
    z_dim: int
    width: int  # hidden units (mlp) or base channel count (conv nets)
    num_classes: int = 0  # > 0: conditional G and an auxiliary classifier head on D
    g_norm: str = "none"  # none | batch | layer
    d_norm: str = "none"  # none | batch | layer | spectral
