"""Gradient penalties against independent computations; clipping, norms and EMA."""

import pytest
import torch
from torch import nn
from torch.func import grad, vmap

from gansweep.trainables.regularizers import (
    D_NORMS,
    PENALTIES,
    clip_weights_,
    dragan_penalty,
    ema_update_,
    gradient_penalty,
    norm_layer,
    r1_penalty,
)


def linear_critic(w: torch.Tensor):
    """D(x) = x . w: its input gradient is w everywhere, so every penalty has a closed form."""
    return lambda x: x.flatten(1) @ w


def test_penalties_of_a_linear_critic_match_their_closed_forms():
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)  # ||w|| = 5
    real = torch.randn(16, 2, dtype=torch.float64)
    fake = torch.randn(16, 2, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    critic = linear_critic(w)
    torch.testing.assert_close(
        gradient_penalty(critic, real, fake, gen), torch.tensor(16.0, dtype=torch.float64)
    )
    torch.testing.assert_close(
        dragan_penalty(critic, real, fake, gen), torch.tensor(16.0, dtype=torch.float64)
    )
    torch.testing.assert_close(
        r1_penalty(critic, real, fake, gen), torch.tensor(12.5, dtype=torch.float64)
    )


def test_gradient_penalty_differentiates_through_to_the_critic_weights():
    """d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||: the penalty must train D."""
    w = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(8, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    penalty = gradient_penalty(linear_critic(w), real, fake, torch.Generator().manual_seed(0))
    penalty.backward()
    torch.testing.assert_close(w.grad, 2 * (5 - 1) * w.detach() / 5)


def test_gradient_penalty_matches_per_sample_autograd_on_a_nonlinear_critic():
    """The same interpolates, differentiated one sample at a time with torch.func."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 16), nn.Tanh(), nn.Linear(16, 1)).double()
    real, fake = torch.randn(10, 3, dtype=torch.float64), torch.randn(10, 3, dtype=torch.float64)

    got = gradient_penalty(
        lambda x: net(x).squeeze(1), real, fake, torch.Generator().manual_seed(7)
    )

    eps = torch.rand(10, generator=torch.Generator().manual_seed(7)).double().view(10, 1)
    x_hat = eps * real + (1 - eps) * fake
    per_sample_grad = vmap(grad(lambda x: net(x.unsqueeze(0)).squeeze()))(x_hat)
    want = (per_sample_grad.norm(dim=1) - 1).pow(2).mean()
    torch.testing.assert_close(got, want)


def test_r1_matches_per_sample_autograd_on_images():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Softplus(), nn.Flatten(), nn.Linear(4 * 6 * 6, 1))
    net = net.double()
    real = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    got = r1_penalty(lambda x: net(x).squeeze(1), real, real, torch.Generator())
    per_sample = vmap(grad(lambda x: net(x.unsqueeze(0)).squeeze()))(real)
    torch.testing.assert_close(got, 0.5 * per_sample.flatten(1).pow(2).sum(1).mean())


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_contract(name):
    """Every penalty: a finite non-negative scalar with gradients for the critic."""
    net = nn.Linear(6, 1)
    real, fake = torch.randn(4, 6), torch.randn(4, 6)
    value = PENALTIES[name](lambda x: net(x).squeeze(1), real, fake, torch.Generator())
    assert value.shape == () and torch.isfinite(value) and value >= 0
    value.backward()
    assert torch.isfinite(net.weight.grad).all() and net.weight.grad.abs().sum() > 0


def test_clip_weights_bounds_every_parameter():
    net = nn.Linear(4, 4)
    with torch.no_grad():
        net.weight.mul_(100)
    clip_weights_(net, 0.01)
    assert max(p.abs().max().item() for p in net.parameters()) == pytest.approx(0.01)


@pytest.mark.parametrize("kind", D_NORMS)
def test_norm_layer_keeps_shapes(kind):
    assert norm_layer(kind, 8, spatial=True)(torch.randn(2, 8, 4, 4)).shape == (2, 8, 4, 4)
    assert norm_layer(kind, 8, spatial=False)(torch.randn(2, 8)).shape == (2, 8)


def test_norm_layer_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="valid: none, batch, layer, spectral"):
        norm_layer("group", 8, spatial=True)


def test_ema_update_is_a_convex_combination_and_copies_buffers():
    ema, model = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
    with torch.no_grad():
        ema.weight.fill_(1.0)
        model.weight.fill_(3.0)
        model.running_mean.fill_(7.0)
    ema_update_(ema, model, decay=0.75)
    torch.testing.assert_close(ema.weight, torch.full((3,), 1.5))  # 0.75 * 1 + 0.25 * 3
    torch.testing.assert_close(ema.running_mean, torch.full((3,), 7.0))
