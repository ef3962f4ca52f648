"""Network families and the ARCHITECTURES registry.

Every family provides a generator and a discriminator built from one ``ModelSpec``:

    G(z [B, z_dim], labels [B] long | None) -> x [B, *data_shape]   (tanh for images)
    D(x [B, *data_shape]) -> (logits [B], class_logits [B, num_classes] | None)

``class_logits`` is the auxiliary classifier head of AC-GAN, present only when
``num_classes > 0``; then G also takes labels (a learned embedding joined to z).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from gansweep.trainables.models.dcgan import IMAGE_SIZES, DCGANDiscriminator, DCGANGenerator
from gansweep.trainables.models.mlp import MLPDiscriminator, MLPGenerator
from gansweep.trainables.models.resnet import ResNetDiscriminator, ResNetGenerator
from gansweep.trainables.models.spec import ModelSpec

__all__ = ["ARCHITECTURES", "Architecture", "ModelSpec"]


@dataclass(frozen=True)
class Architecture:
    """A generator/discriminator pair and the data it can model."""

    generator: Callable[[ModelSpec], nn.Module]
    discriminator: Callable[[ModelSpec], nn.Module]
    kinds: tuple[str, ...]  # data kinds: "vector", "image"
    image_sizes: tuple[int, ...] | None = None  # square image sizes; None: any shape


ARCHITECTURES: dict[str, Architecture] = {
    "mlp": Architecture(MLPGenerator, MLPDiscriminator, kinds=("vector", "image")),
    "dcgan": Architecture(DCGANGenerator, DCGANDiscriminator, ("image",), IMAGE_SIZES),
    "resnet": Architecture(ResNetGenerator, ResNetDiscriminator, ("image",), IMAGE_SIZES),
}
