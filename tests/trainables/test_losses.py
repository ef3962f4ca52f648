"""Every adversarial loss against values computed by hand, plus a contract over LOSSES."""

import math

import pytest
import torch

from gansweep.trainables.losses import LOSSES

REAL = [2.0, -1.0]
FAKE = [0.5, -0.5]


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


# Each expected value is the loss's textbook formula written out with `math`.
MEAN_R, MEAN_F = mean(REAL), mean(FAKE)
CE_D = -mean(math.log(sigmoid(r)) for r in REAL) - mean(math.log(1 - sigmoid(f)) for f in FAKE)
EXPECTED = {
    "minimax": (CE_D, mean(math.log(1 - sigmoid(f)) for f in FAKE)),
    "ns": (CE_D, -mean(math.log(sigmoid(f)) for f in FAKE)),
    "wgan": (MEAN_F - MEAN_R, -MEAN_F),
    "hinge": (
        mean(max(0.0, 1 - r) for r in REAL) + mean(max(0.0, 1 + f) for f in FAKE),
        -MEAN_F,
    ),
    "lsgan": (
        0.5 * mean((r - 1) ** 2 for r in REAL) + 0.5 * mean(f**2 for f in FAKE),
        0.5 * mean((f - 1) ** 2 for f in FAKE),
    ),
    "ragan": (
        -mean(math.log(sigmoid(r - MEAN_F)) for r in REAL)
        - mean(math.log(1 - sigmoid(f - MEAN_R)) for f in FAKE),
        -mean(math.log(sigmoid(f - MEAN_R)) for f in FAKE)
        - mean(math.log(1 - sigmoid(r - MEAN_F)) for r in REAL),
    ),
}


def test_every_registered_loss_has_hand_computed_values():
    assert set(EXPECTED) == set(LOSSES)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_matches_hand_computed_value(name):
    loss = LOSSES[name]
    real = torch.tensor(REAL, dtype=torch.float64)
    fake = torch.tensor(FAKE, dtype=torch.float64)
    want_d, want_g = EXPECTED[name]
    torch.testing.assert_close(loss.d_loss(real, fake), torch.tensor(want_d, dtype=torch.float64))
    torch.testing.assert_close(loss.g_loss(fake, real), torch.tensor(want_g, dtype=torch.float64))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_contract_scalar_finite_and_pushes_the_right_way(name):
    """Near an undecided D (all logits 0.25), D's loss falls as real logits rise and fake
    logits fall, and G's loss falls as fake logits rise: the sign every loss must have.
    (Not exactly 0: lsgan's fake term has a zero gradient there.)"""
    loss = LOSSES[name]
    real = torch.full((8,), 0.25, requires_grad=True)
    fake = torch.full((8,), 0.25, requires_grad=True)
    d = loss.d_loss(real, fake)
    assert d.shape == () and torch.isfinite(d)
    grad_real, grad_fake = torch.autograd.grad(d, (real, fake))
    assert (grad_real < 0).all() and (grad_fake > 0).all()

    fake_g = torch.full((8,), 0.25, requires_grad=True)
    g = loss.g_loss(fake_g, torch.full((8,), 0.25))
    assert g.shape == () and torch.isfinite(g)
    (grad_g,) = torch.autograd.grad(g, fake_g)
    assert (grad_g < 0).all()


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_is_finite_for_extreme_logits(name):
    """softplus keeps the cross-entropy losses finite where log(sigmoid) would overflow."""
    loss = LOSSES[name]
    real = torch.tensor([1e4, -1e4])
    fake = torch.tensor([-1e4, 1e4])
    assert torch.isfinite(loss.d_loss(real, fake))
    assert torch.isfinite(loss.g_loss(fake, real))


def test_only_ragan_reads_real_logits_in_the_generator_loss():
    assert {n for n, loss in LOSSES.items() if loss.g_needs_real} == {"ragan"}
    with pytest.raises(ValueError, match="real_logits"):
        LOSSES["ragan"].g_loss(torch.zeros(2), None)
