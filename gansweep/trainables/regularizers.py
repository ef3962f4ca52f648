"""Regularization of the two networks: gradient penalties, weight clipping, normalization
layers, and the exponential moving average (EMA) of G's weights.

L2 weight decay lives in the optimizers (per network); augmentation of D's inputs lives in
augment.py. A penalty takes a *critic* -- D's adversarial output as a function of its
input, x [B, ...] -> logits [B] -- so it does not care about D's auxiliary head.

Penalties are computed on the un-augmented inputs: they constrain D's gradient field
around the data, which is the quantity their papers analyse.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

Critic = Callable[[Tensor], Tensor]


def _per_sample_shape(x: Tensor) -> tuple[int, ...]:
    """[B, ...] -> (B, 1, 1, ...): broadcasts one scalar per sample over x."""
    return (x.shape[0],) + (1,) * (x.ndim - 1)


def _uniform_like_batch(x: Tensor, generator: torch.Generator) -> Tensor:
    """One U[0, 1) draw per sample, shaped to broadcast over x."""
    u = torch.rand(x.shape[0], generator=generator, device=generator.device)
    return u.view(_per_sample_shape(x))


def input_gradient_norm(critic: Critic, x: Tensor) -> Tensor:
    """||grad_x D(x)||_2 per sample: x [B, ...] -> [B], differentiable w.r.t. D's weights.

    Summing the outputs before differentiating gives each sample's own gradient, because
    sample i's logit depends only on x_i (true for every D here except with batch norm).
    """
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    return grad.flatten(1).norm(2, dim=1)


def gradient_penalty(
    critic: Critic, real: Tensor, fake: Tensor, generator: torch.Generator
) -> Tensor:
    """WGAN-GP (Gulrajani 2017): E[(||grad D(x_hat)||_2 - 1)^2], two-sided.

    x_hat = eps * real + (1 - eps) * fake with eps ~ U[0, 1] per sample.
    real, fake: [B, ...] -> [].
    """
    eps = _uniform_like_batch(real, generator)
    x_hat = eps * real.detach() + (1 - eps) * fake.detach()
    return (input_gradient_norm(critic, x_hat) - 1).pow(2).mean()


def r1_penalty(critic: Critic, real: Tensor, fake: Tensor, generator: torch.Generator) -> Tensor:
    """R1 (Mescheder 2018): 1/2 E[||grad D(x)||_2^2] on real data only.

    With penalty_weight = gamma this is the paper's gamma/2 * E||grad||^2.
    real: [B, ...] -> []; fake and generator are unused.
    """
    return 0.5 * input_gradient_norm(critic, real).pow(2).mean()


def dragan_penalty(
    critic: Critic, real: Tensor, fake: Tensor, generator: torch.Generator
) -> Tensor:
    """DRAGAN (Kodali 2017): E[(||grad D(x_hat)||_2 - 1)^2] around the real data.

    x_hat = x + alpha * delta with delta = 0.5 * std(x) * u, u ~ U[0, 1] per coordinate
    and alpha ~ U[0, 1] per sample, as in the authors' code. real: [B, ...] -> [].
    """
    real = real.detach()
    u = torch.rand(real.shape, generator=generator, device=generator.device)
    delta = 0.5 * real.std() * u
    x_hat = real + _uniform_like_batch(real, generator) * delta
    return (input_gradient_norm(critic, x_hat) - 1).pow(2).mean()


PENALTIES: dict[str, Callable[[Critic, Tensor, Tensor, torch.Generator], Tensor]] = {
    "gp": gradient_penalty,
    "r1": r1_penalty,
    "dragan": dragan_penalty,
}


@torch.no_grad()
def clip_weights_(module: nn.Module, clip: float) -> None:
    """Clamp every parameter of module to [-clip, clip] in place (WGAN, Arjovsky 2017)."""
    for p in module.parameters():
        p.clamp_(-clip, clip)


# ------------------------------------------------------------------ normalization

G_NORMS = ("none", "batch", "layer")
D_NORMS = ("none", "batch", "layer", "spectral")


def norm_layer(kind: str, features: int, spatial: bool) -> nn.Module:
    """The normalization layer placed after a linear/conv layer with `features` outputs.

    Layer norm on feature maps is GroupNorm with one group: it normalizes over (C, H, W)
    per sample. Spectral norm is not a layer (it reparametrizes weights), so it gives
    Identity here and is applied by `maybe_spectral`.
    """
    if kind == "batch":
        return nn.BatchNorm2d(features) if spatial else nn.BatchNorm1d(features)
    if kind == "layer":
        return nn.GroupNorm(1, features) if spatial else nn.LayerNorm(features)
    if kind in ("none", "spectral"):
        return nn.Identity()
    raise ValueError(f"unknown normalization {kind!r}; valid: {', '.join(D_NORMS)}")


def maybe_spectral(layer: nn.Module, kind: str) -> nn.Module:
    """Wrap a linear/conv layer in spectral normalization (Miyato 2018) when kind says so."""
    return spectral_norm(layer) if kind == "spectral" else layer


# ------------------------------------------------------------------------------ EMA


def ema_decay_at(step: int, decay: float, start: int) -> float:
    """The EMA decay used at `step`: 0 (G_ema is a copy of G) before `start`, then
    min(decay, (1 + t) / (10 + t)) with t = step - start.

    With a fixed decay of 0.999 from step 0, G_ema at the first evaluation is mostly the
    random initial weights, and an EMA trial looks far worse than the same trial without
    EMA at the scheduler's first rung. So the engine starts averaging at the first
    evaluation (that one sees G itself), and the decay ramps up from there as in
    TensorFlow's ExponentialMovingAverage with num_updates: an average over roughly the
    last t / 10 steps until it reaches `decay`.
    """
    if step < start:
        return 0.0
    t = step - start
    return min(decay, (1.0 + t) / (10.0 + t))


@torch.no_grad()
def ema_update_(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for parameters; buffers are copied.

    Copying buffers keeps batch-norm statistics in step with the live generator.
    """
    for e_param, p in zip(ema.parameters(), model.parameters(), strict=True):
        e_param.lerp_(p, 1.0 - decay)
    for e_buf, b in zip(ema.buffers(), model.buffers(), strict=True):
        e_buf.copy_(b)
