"""Packing (PacGAN, Lin et al. 2018): D judges m samples at once, concatenated along the
feature (vectors) or channel (images) dimension, all real or all generated.

A pack of m samples drawn from a generator that has dropped modes looks unlike a pack of
m real samples far more often than one sample does, so D can penalize mode collapse that
it cannot see one sample at a time. The networks do not change: D is built for data of
m times the channels (``packed_spec``), and the engine reshapes every batch D sees, real
or generated, into B / m packs of m consecutive samples (``pack``). So every
architecture, loss and penalty works with it, and G is untouched: it is trained on B
samples, drawn as B / m packs, and evaluated on single samples.

The gradient penalties act on packs, as in the PacGAN authors' code: an interpolate is
drawn between a packed real batch and a packed generated one (one mixing weight per
pack), and the gradient norm is that of D's output with respect to the whole pack.

pac = 1 changes nothing: ``pack`` returns its input and ``packed_spec`` its spec.
"""

from __future__ import annotations

from dataclasses import replace

from torch import Tensor

from gansweep.trainables.models import ModelSpec


def packed_shape(data_shape: tuple[int, ...], pac: int) -> tuple[int, ...]:
    """One pack's shape: (d,) -> (pac * d,); (C, H, W) -> (pac * C, H, W)."""
    return (pac * data_shape[0], *data_shape[1:])


def packed_spec(spec: ModelSpec, pac: int) -> ModelSpec:
    """The spec D is built from: packs as its samples, and (AC-GAN) a class head with
    pac x num_classes outputs, each sample's class logits in the place of its pack."""
    if pac == 1:
        return spec
    return replace(
        spec, data_shape=packed_shape(spec.data_shape, pac), num_classes=spec.num_classes * pac
    )


def pack(x: Tensor, pac: int) -> Tensor:
    """[B, d] -> [B / pac, pac * d]; [B, C, H, W] -> [B / pac, pac * C, H, W].

    Pack j holds samples j * pac, ..., j * pac + pac - 1, concatenated in that order
    (a reshape of the contiguous batch: no copy). B must be a multiple of pac, as the
    config checks for batch_size.
    """
    if pac == 1:
        return x
    return x.reshape(x.shape[0] // pac, pac * x.shape[1], *x.shape[2:])


def unpack_class_logits(class_logits: Tensor, pac: int) -> Tensor:
    """D's class head on packs, [B / pac, pac * K], -> each sample's logits [B, K], in
    the order ``pack`` put the samples in."""
    if pac == 1:
        return class_logits
    return class_logits.reshape(class_logits.shape[0] * pac, class_logits.shape[1] // pac)
