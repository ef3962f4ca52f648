"""Adversarial losses as pure functions, and the LOSSES registry.

Every function takes the discriminator's raw outputs ("logits", no sigmoid applied),
one scalar per sample, and returns a scalar loss to *minimize*:

    d_loss(real_logits [B], fake_logits [B]) -> []    the discriminator's loss
    g_loss(fake_logits [B], real_logits [B]) -> []    the generator's loss

Only the relativistic loss reads ``real_logits`` in ``g_loss``; the others ignore it, and
the engine skips computing it for them (``g_needs_real``).

The cross-entropy losses use softplus, the numerically stable form of the log-sigmoid
terms:  -log(sigmoid(x)) = softplus(-x)  and  -log(1 - sigmoid(x)) = softplus(x).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


def cross_entropy_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """-E[log D(x)] - E[log(1 - D(G(z)))]: D classifies real as 1 and fake as 0.

    real_logits, fake_logits: [B] -> []. Shared by `minimax` and `ns` (Goodfellow 2014).
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def minimax_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """E[log(1 - D(G(z)))]: the original, saturating generator loss.

    fake_logits: [B] -> []. Its gradient vanishes when D confidently rejects the fakes.
    """
    return -F.softplus(fake_logits).mean()


def ns_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """-E[log D(G(z))]: the non-saturating generator loss (Goodfellow 2014, sec. 3).

    fake_logits: [B] -> [].
    """
    return F.softplus(-fake_logits).mean()


def wgan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[D(G(z))] - E[D(x)]: the critic's Wasserstein loss (Arjovsky 2017).

    real_logits, fake_logits: [B] -> []. Needs a Lipschitz constraint on D (gp or
    weight_clip) to estimate a distance at all.
    """
    return fake_logits.mean() - real_logits.mean()


def wgan_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """-E[D(G(z))]. fake_logits: [B] -> []. Also the generator loss of `hinge`."""
    return -fake_logits.mean()


def hinge_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """E[relu(1 - D(x))] + E[relu(1 + D(G(z)))] (Lim & Ye 2017; SNGAN, BigGAN).

    real_logits, fake_logits: [B] -> [].
    """
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def lsgan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2]: least squares with a=0, b=1 (Mao 2017).

    real_logits, fake_logits: [B] -> [].
    """
    return 0.5 * (real_logits - 1).pow(2).mean() + 0.5 * fake_logits.pow(2).mean()


def lsgan_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """1/2 E[(D(G(z)) - 1)^2]: least squares with c=1. fake_logits: [B] -> []."""
    return 0.5 * (fake_logits - 1).pow(2).mean()


def ragan_d(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Relativistic average cross-entropy (Jolicoeur-Martineau 2018), D's side.

    -E[log sigmoid(D(x) - E D(G(z)))] - E[log(1 - sigmoid(D(G(z)) - E D(x)))].
    real_logits, fake_logits: [B] -> [].
    """
    return (
        F.softplus(-(real_logits - fake_logits.mean())).mean()
        + F.softplus(fake_logits - real_logits.mean()).mean()
    )


def ragan_g(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """Relativistic average cross-entropy, G's side: D's loss with real and fake swapped.

    fake_logits, real_logits: [B] -> []. real_logits is required here.
    """
    if real_logits is None:
        raise ValueError("ragan's generator loss needs real_logits")
    return ragan_d(fake_logits, real_logits)


@dataclass(frozen=True)
class AdversarialLoss:
    """A loss pair; `g_needs_real` tells the engine to compute D(real) for G's step too."""

    d_loss: Callable[[Tensor, Tensor], Tensor]
    g_loss: Callable[[Tensor, Tensor | None], Tensor]
    g_needs_real: bool = False


LOSSES: dict[str, AdversarialLoss] = {
    "minimax": AdversarialLoss(cross_entropy_d, minimax_g),
    "ns": AdversarialLoss(cross_entropy_d, ns_g),
    "wgan": AdversarialLoss(wgan_d, wgan_g),
    "hinge": AdversarialLoss(hinge_d, wgan_g),
    "lsgan": AdversarialLoss(lsgan_d, lsgan_g),
    "ragan": AdversarialLoss(ragan_d, ragan_g, g_needs_real=True),
}
