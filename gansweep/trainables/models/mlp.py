"""Fully connected G and D: the networks of the 2-D mixture benchmarks (and of the
original GAN paper on flattened images). Three hidden layers of `width` units each."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gansweep.trainables.models.spec import ModelSpec
from gansweep.trainables.regularizers import maybe_spectral, norm_layer

HIDDEN_LAYERS = 3


class MLPGenerator(nn.Module):
    """z [B, z_dim] (+ labels [B]) -> x [B, *data_shape]; tanh only for image data."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.data_shape = spec.data_shape
        self.embed = nn.Embedding(spec.num_classes, spec.z_dim) if spec.num_classes else None
        in_dim = spec.z_dim * (2 if self.embed is not None else 1)
        layers: list[nn.Module] = []
        for _ in range(HIDDEN_LAYERS):
            layers += [nn.Linear(in_dim, spec.width), norm_layer(spec.g_norm, spec.width, False)]
            layers.append(nn.ReLU())
            in_dim = spec.width
        layers.append(nn.Linear(in_dim, math.prod(spec.data_shape)))
        # Images live in [-1, 1]; 2-D points are unbounded (grid25 reaches +-4).
        if len(spec.data_shape) == 3:
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        if self.embed is not None:
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z).view(-1, *self.data_shape)


class MLPDiscriminator(nn.Module):
    """x [B, *data_shape] -> (logits [B], class_logits [B, num_classes] | None)."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        in_dim = math.prod(spec.data_shape)
        layers: list[nn.Module] = []
        for _ in range(HIDDEN_LAYERS):
            layers.append(maybe_spectral(nn.Linear(in_dim, spec.width), spec.d_norm))
            layers += [norm_layer(spec.d_norm, spec.width, False), nn.LeakyReLU(0.2)]
            in_dim = spec.width
        self.features = nn.Sequential(*layers)
        self.adv = maybe_spectral(nn.Linear(in_dim, 1), spec.d_norm)
        self.cls = None
        if spec.num_classes:
            self.cls = maybe_spectral(nn.Linear(in_dim, spec.num_classes), spec.d_norm)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        h = self.features(x.flatten(1))
        return self.adv(h).squeeze(1), None if self.cls is None else self.cls(h)
