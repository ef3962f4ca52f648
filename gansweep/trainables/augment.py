"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020).

The same policy is applied to real and generated images before D sees them, with fresh
random draws for each batch. Every operation is differentiable w.r.t. the images, so G's
gradient flows through it: D cannot tell the augmentation apart from the data, and G is
not taught to produce augmented images.

Each function maps images x [B, C, H, W] to [B, C, H, W], drawing its randomness from
the given generator (the engine's, so augmented runs resume exactly). ``translation``,
``scale`` and ``rotation`` are the seed's "crop, scale, rotate" of generated images.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor


def _rand(x: Tensor, generator: torch.Generator, *shape: int) -> Tensor:
    """U[0, 1) draws of the given shape, on x's device and dtype (drawn on the
    generator's device, which is x's: no copy between host and GPU)."""
    return torch.rand(shape, generator=generator, device=generator.device).to(dtype=x.dtype)


def _warp(x: Tensor, theta: Tensor) -> Tensor:
    """Apply per-sample affine maps theta [B, 2, 3] (output -> input coords); zeros outside."""
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def _affine(scale: Tensor, angle: Tensor, shift: Tensor) -> Tensor:
    """theta [B, 2, 3] from per-sample scale [B], angle [B] (radians), shift [B, 2]."""
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    row0 = torch.stack([cos, -sin, shift[:, 0]], dim=1)
    row1 = torch.stack([sin, cos, shift[:, 1]], dim=1)
    return torch.stack([row0, row1], dim=1)


def translation(x: Tensor, generator: torch.Generator, ratio: float = 0.125) -> Tensor:
    """Shift by up to ratio * size pixels in each direction, filling with zeros."""
    b, _, h, w = x.shape
    # Whole-pixel shifts, as in DiffAugment; in normalized coords one pixel is 2 / size.
    max_px = torch.tensor([w * ratio, h * ratio], device=x.device, dtype=x.dtype)
    px = torch.round((_rand(x, generator, b, 2) * 2 - 1) * max_px)
    shift = px * torch.tensor([2 / w, 2 / h], device=x.device, dtype=x.dtype)
    ones = torch.ones(b, device=x.device, dtype=x.dtype)
    return _warp(x, _affine(ones, torch.zeros_like(ones), shift))


def scale(x: Tensor, generator: torch.Generator, spread: float = 0.2) -> Tensor:
    """Zoom in or out by a factor in [1 - spread, 1 + spread] about the center."""
    b = x.shape[0]
    factor = 1 + (_rand(x, generator, b) * 2 - 1) * spread
    zeros = torch.zeros(b, device=x.device, dtype=x.dtype)
    return _warp(x, _affine(factor, zeros, torch.zeros(b, 2, device=x.device, dtype=x.dtype)))


def rotation(x: Tensor, generator: torch.Generator, max_degrees: float = 15.0) -> Tensor:
    """Rotate by an angle in [-max_degrees, max_degrees] about the center."""
    b = x.shape[0]
    angle = (_rand(x, generator, b) * 2 - 1) * math.radians(max_degrees)
    ones = torch.ones(b, device=x.device, dtype=x.dtype)
    return _warp(x, _affine(ones, angle, torch.zeros(b, 2, device=x.device, dtype=x.dtype)))


def flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror left-right with probability 1/2 per sample."""
    do_flip = _rand(x, generator, x.shape[0]).view(-1, 1, 1, 1) < 0.5
    return torch.where(do_flip, x.flip(3), x)


def cutout(x: Tensor, generator: torch.Generator, ratio: float = 0.5) -> Tensor:
    """Zero a square of side ratio * size at a random place (DiffAugment's cutout)."""
    b, _, h, w = x.shape
    ch, cw = max(1, int(h * ratio)), max(1, int(w * ratio))
    # Centers anywhere in the image; the square may hang over the border.
    top = (_rand(x, generator, b) * h).floor().view(b, 1, 1) - ch // 2
    left = (_rand(x, generator, b) * w).floor().view(b, 1, 1) - cw // 2
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def color(x: Tensor, generator: torch.Generator) -> Tensor:
    """Random brightness (+-0.5), saturation (x0..2) and contrast (x0.5..1.5)."""
    b = x.shape[0]
    x = x + (_rand(x, generator, b, 1, 1, 1) - 0.5)
    if x.shape[1] > 1:  # saturation is meaningless for grey images
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * (_rand(x, generator, b, 1, 1, 1) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, generator, b, 1, 1, 1) + 0.5) + mean


AUGMENTATIONS: dict[str, Callable[[Tensor, torch.Generator], Tensor]] = {
    "translation": translation,
    "cutout": cutout,
    "color": color,
    "flip": flip,
    "rotation": rotation,
    "scale": scale,
}


def augment(x: Tensor, policy: tuple[str, ...], generator: torch.Generator) -> Tensor:
    """Apply the named augmentations in order; an empty policy returns x unchanged."""
    for name in policy:
        x = AUGMENTATIONS[name](x, generator)
    return x
