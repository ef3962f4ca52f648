"""DCGAN (Radford 2016) G and D for square images of 8, 16, 32 or 64 pixels.

Channels are `width` at the image's resolution and double each time the resolution halves,
capped at MAX_MULT * width (DCGAN's ngf * 8), so G and D are mirror images of each other:

    G: z -> linear -> (c, 4, 4) -> [ConvTranspose 4/2/1, x2 each] -> (width, S, S) -> 3x3 -> C
    D: C -> 3x3 -> (width, S, S) -> [Conv 4/2/1, /2 each] -> (c, 4, 4) -> flatten -> heads
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gansweep.trainables.models.spec import ModelSpec
from gansweep.trainables.regularizers import maybe_spectral, norm_layer

# The square image sizes the conv families (dcgan, resnet) build: x2 steps from 4x4.
IMAGE_SIZES = (8, 16, 32, 64)
MAX_MULT = 8  # 64x64 with width 64: 512 channels at 4x4 instead of 1024 (~2.5x fewer params)


def image_geometry(spec: ModelSpec, sizes: tuple[int, ...] = IMAGE_SIZES) -> tuple[int, int]:
    """(C, H, W) -> (C, number of x2 steps between 4x4 and H x W); rejects other shapes."""
    if len(spec.data_shape) != 3 or spec.data_shape[1] != spec.data_shape[2]:
        raise ValueError(f"expected square images (C, S, S), got data_shape {spec.data_shape}")
    channels, size, _ = spec.data_shape
    if size not in sizes:
        raise ValueError(f"image size {size} not supported; valid: {', '.join(map(str, sizes))}")
    return channels, int(math.log2(size // 4))


def channels_at(width: int, steps_from_top: int) -> int:
    """Channels of the feature map `steps_from_top` halvings below the full resolution."""
    return width * min(2**steps_from_top, MAX_MULT)


class DCGANGenerator(nn.Module):
    """z [B, z_dim] (+ labels [B]) -> images [B, C, S, S] in [-1, 1]."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        out_channels, steps = image_geometry(spec)
        self.embed = nn.Embedding(spec.num_classes, spec.z_dim) if spec.num_classes else None
        in_dim = spec.z_dim * (2 if self.embed is not None else 1)
        self.top = channels_at(spec.width, steps)
        # Batch norm removes a per-channel bias, so layers it follows carry none (as DCGAN).
        bias = spec.g_norm != "batch"
        self.project = nn.Linear(in_dim, self.top * 16, bias=bias)
        layers: list[nn.Module] = [norm_layer(spec.g_norm, self.top, True), nn.ReLU()]
        ch = self.top
        for step in reversed(range(steps)):
            nxt = channels_at(spec.width, step)
            layers += [
                nn.ConvTranspose2d(ch, nxt, 4, stride=2, padding=1, bias=bias),
                norm_layer(spec.g_norm, nxt, True),
                nn.ReLU(),
            ]
            ch = nxt
        # A 3x3 conv at full resolution, not the last upsampling, makes the pixels: it
        # blends neighbouring outputs of the strided transpose and damps checkerboards.
        layers += [nn.Conv2d(ch, out_channels, 3, padding=1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(self.project(z).view(-1, self.top, 4, 4))


class DCGANDiscriminator(nn.Module):
    """images [B, C, S, S] -> (logits [B], class_logits [B, num_classes] | None)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        in_channels, steps = image_geometry(spec)
        kind = spec.d_norm
        bias = kind != "batch"
        # No norm on the layer that sees pixels: DCGAN found batch norm there made samples
        # oscillate and training unstable.
        layers: list[nn.Module] = [
            maybe_spectral(nn.Conv2d(in_channels, spec.width, 3, padding=1), kind),
            nn.LeakyReLU(0.2),
        ]
        ch = spec.width
        for step in range(1, steps + 1):
            nxt = channels_at(spec.width, step)
            layers += [
                maybe_spectral(nn.Conv2d(ch, nxt, 4, stride=2, padding=1, bias=bias), kind),
                norm_layer(kind, nxt, True),
                nn.LeakyReLU(0.2),
            ]
            ch = nxt
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.adv = maybe_spectral(nn.Linear(ch * 16, 1), kind)
        self.cls = (
            maybe_spectral(nn.Linear(ch * 16, spec.num_classes), kind) if spec.num_classes else None
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        h = self.features(x)
        return self.adv(h).squeeze(1), None if self.cls is None else self.cls(h)
