"""ResNet G and D in the style of SNGAN (Miyato 2018) for square images of 8..64 pixels.

Every feature map has `width` channels (SNGAN uses 128 in G and D for CIFAR-10); one
block per doubling or halving of resolution keeps the cost small:

    G: z -> linear -> (width, 4, 4) -> [UpBlock, x2 each] -> norm-ReLU-conv3x3-tanh -> C
    D: C -> OptimizedBlock /2 -> [DownBlock, /2 each] -> (width, 4, 4) -> Block
         -> ReLU -> sum over H, W -> heads

Blocks are pre-activation (norm-ReLU-conv). D takes its normalization from d_norm too:
SNGAN has none but spectral norm, the WGAN-GP ResNets (Gulrajani 2017) use layer norm.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from gansweep.trainables.models.dcgan import image_geometry
from gansweep.trainables.models.spec import ModelSpec
from gansweep.trainables.regularizers import maybe_spectral, norm_layer


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class UpBlock(nn.Module):
    """[B, ch, H, W] -> [B, ch, 2H, 2W]: norm-ReLU-up-conv3x3-norm-ReLU-conv3x3 + up-conv1x1."""

    def __init__(self, ch: int, norm: str):
        super().__init__()
        self.norm1, self.conv1 = norm_layer(norm, ch, True), nn.Conv2d(ch, ch, 3, padding=1)
        self.norm2, self.conv2 = norm_layer(norm, ch, True), nn.Conv2d(ch, ch, 3, padding=1)
        self.shortcut = nn.Conv2d(ch, ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv1(_up(F.relu(self.norm1(x))))
        h = self.conv2(F.relu(self.norm2(h)))
        return h + self.shortcut(_up(x))


class DownBlock(nn.Module):
    """[B, in_ch, H, W] -> [B, ch, H/2, W/2] (or H, W when not down): pre-activation block.

    `optimized` is SNGAN's first block, which sees pixels: no norm-ReLU before its first
    conv (that would clip the image), and its shortcut pools before the 1x1 conv, which
    costs 4x less on the largest map and is the same linear map.
    """

    def __init__(self, in_ch: int, ch: int, norm: str, down: bool = True, optimized: bool = False):
        super().__init__()
        self.down, self.optimized = down, optimized
        self.norm1 = nn.Identity() if optimized else norm_layer(norm, in_ch, True)
        self.conv1 = maybe_spectral(nn.Conv2d(in_ch, ch, 3, padding=1), norm)
        self.norm2 = norm_layer(norm, ch, True)
        self.conv2 = maybe_spectral(nn.Conv2d(ch, ch, 3, padding=1), norm)
        # As SNGAN: a learned shortcut wherever the shape changes, identity elsewhere.
        learned = down or in_ch != ch
        self.shortcut = maybe_spectral(nn.Conv2d(in_ch, ch, 1), norm) if learned else nn.Identity()

    def _pool(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x, 2) if self.down else x

    def forward(self, x: Tensor) -> Tensor:
        h = x if self.optimized else F.relu(self.norm1(x))
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        sc = self.shortcut(self._pool(x)) if self.optimized else self._pool(self.shortcut(x))
        return self._pool(h) + sc


class ResNetGenerator(nn.Module):
    """z [B, z_dim] (+ labels [B]) -> images [B, C, S, S] in [-1, 1]."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        out_channels, steps = image_geometry(spec)
        self.width = spec.width
        self.embed = nn.Embedding(spec.num_classes, spec.z_dim) if spec.num_classes else None
        in_dim = spec.z_dim * (2 if self.embed is not None else 1)
        self.project = nn.Linear(in_dim, spec.width * 16)
        self.blocks = nn.Sequential(*(UpBlock(spec.width, spec.g_norm) for _ in range(steps)))
        self.out = nn.Sequential(
            norm_layer(spec.g_norm, spec.width, True),
            nn.ReLU(),
            nn.Conv2d(spec.width, out_channels, 3, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.out(self.blocks(self.project(z).view(-1, self.width, 4, 4)))


class ResNetDiscriminator(nn.Module):
    """images [B, C, S, S] -> (logits [B], class_logits [B, num_classes] | None)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        in_channels, steps = image_geometry(spec)
        w, kind = spec.width, spec.d_norm
        blocks = [DownBlock(in_channels, w, kind, optimized=True)]
        blocks += [DownBlock(w, w, kind) for _ in range(steps - 1)]
        # One block at 4x4 without pooling (SNGAN ends with two at its coarsest scale): it
        # gives an 8x8 D two blocks, as deep as the generator it judges.
        blocks.append(DownBlock(w, w, kind, down=False))
        self.blocks = nn.Sequential(*blocks)
        self.adv = maybe_spectral(nn.Linear(w, 1), kind)
        self.cls = (
            maybe_spectral(nn.Linear(w, spec.num_classes), kind) if spec.num_classes else None
        )

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        # Global sum pooling, as SNGAN's code (a mean would only rescale the heads).
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return self.adv(h).squeeze(1), None if self.cls is None else self.cls(h)
