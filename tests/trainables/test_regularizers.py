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
    fake = torch.randn(5, 1, 8, 8, dtype=torch.float64)
    got = r1_penalty(lambda x: net(x).squeeze(1), real, fake, torch.Generator())
    per_sample = vmap(grad(lambda x: net(x.unsqueeze(0)).squeeze()))(real)
    torch.testing.assert_close(got, 0.5 * per_sample.flatten(1).pow(2).sum(1).mean())


def half_squared_norm(x: torch.Tensor) -> torch.Tensor:
    """D(x) = 0.5 ||x||^2 per sample: its input gradient is x itself, so a penalty's value
    depends on exactly which points it differentiates at (unlike a linear critic's)."""
    return 0.5 * x.flatten(1).pow(2).sum(1)


def test_r1_is_half_the_mean_squared_gradient_at_the_real_data_only():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    fake = torch.tensor([[10.0, 0.0], [0.0, -10.0]], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    gen_state = gen.get_state()

    got = r1_penalty(half_squared_norm, real, fake, gen)

    # grad D(real) = real: ||(1, 2)||^2 = 5, ||(3, 4)||^2 = 25, so 0.5 * (5 + 25) / 2 = 7.5.
    torch.testing.assert_close(got, torch.tensor(7.5, dtype=torch.float64))
    torch.testing.assert_close(got, 0.5 * real.pow(2).sum(1).mean())
    assert torch.equal(gen.get_state(), gen_state)  # R1 draws nothing

    other_fake = torch.tensor([[-7.0, 5.0], [0.5, 0.25]], dtype=torch.float64)
    torch.testing.assert_close(r1_penalty(half_squared_norm, real, other_fake, gen), got)
    other_real = torch.tensor([[0.0, 1.0], [2.0, 0.0]], dtype=torch.float64)  # 0.5 * 5 / 2
    torch.testing.assert_close(
        r1_penalty(half_squared_norm, other_real, fake, gen),
        torch.tensor(1.25, dtype=torch.float64),
    )


def test_r1_uses_the_real_data_with_a_nonlinear_critic():
    """A fixed-weight tanh MLP: the gradient at real, not at fake, by the chain rule."""
    w1 = torch.tensor([[1.0, -2.0], [0.5, 1.5], [-1.0, 0.25]], dtype=torch.float64)  # [3, 2]
    w2 = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)

    def critic(x):
        return torch.tanh(x @ w1.T) @ w2

    real = torch.tensor([[0.3, -0.2], [1.0, 0.5], [-0.4, 0.8]], dtype=torch.float64)
    fake = torch.tensor([[2.0, 2.0], [-1.5, 0.0], [0.1, -3.0]], dtype=torch.float64)
    got = r1_penalty(critic, real, fake, torch.Generator())

    # grad D(x) = W1^T (w2 * (1 - tanh(W1 x)^2)), one row per sample
    grad_at = ((1 - torch.tanh(real @ w1.T).pow(2)) * w2) @ w1
    torch.testing.assert_close(got, 0.5 * grad_at.pow(2).sum(1).mean())
    grad_at_fake = ((1 - torch.tanh(fake @ w1.T).pow(2)) * w2) @ w1
    assert not torch.allclose(got, 0.5 * grad_at_fake.pow(2).sum(1).mean())  # they differ


SHAPES = [(6, 2), (4, 1, 3, 3)]  # points and images: one draw per sample broadcasts over both


@pytest.mark.parametrize("shape", SHAPES, ids=["points", "images"])
def test_gradient_penalty_is_taken_at_per_sample_interpolates(shape):
    """x_hat = eps * real + (1 - eps) * fake, eps ~ U[0, 1) drawn once per sample."""
    torch.manual_seed(1)
    real = torch.randn(shape, dtype=torch.float64)
    fake = 3 + torch.randn(shape, dtype=torch.float64)

    got = gradient_penalty(half_squared_norm, real, fake, torch.Generator().manual_seed(11))

    eps = torch.rand(shape[0], generator=torch.Generator().manual_seed(11)).double()
    eps = eps.view(-1, *[1] * (len(shape) - 1))
    x_hat = eps * real + (1 - eps) * fake
    want = (x_hat.flatten(1).norm(dim=1) - 1).pow(2).mean()  # grad D(x_hat) = x_hat
    torch.testing.assert_close(got, want)

    # The data make the schemes distinguishable: swapping real and fake changes the value.
    swapped = eps * fake + (1 - eps) * real
    assert not torch.allclose(want, (swapped.flatten(1).norm(dim=1) - 1).pow(2).mean())


@pytest.mark.parametrize("shape", SHAPES, ids=["points", "images"])
def test_dragan_penalty_is_taken_at_perturbed_real_data(shape):
    """x_hat = real + alpha * 0.5 * std(real) * u: u ~ U[0, 1) per coordinate (drawn first),
    alpha ~ U[0, 1) per sample (drawn second), std over every element of the batch."""
    torch.manual_seed(2)
    real = 1 + 2 * torch.randn(shape, dtype=torch.float64)
    fake = torch.randn(shape, dtype=torch.float64)

    got = dragan_penalty(half_squared_norm, real, fake, torch.Generator().manual_seed(5))

    draws = torch.Generator().manual_seed(5)
    u = torch.rand(shape, generator=draws).double()
    alpha = torch.rand(shape[0], generator=draws).double().view(-1, *[1] * (len(shape) - 1))
    n = real.numel()
    std = ((real - real.mean()).pow(2).sum() / (n - 1)).sqrt()  # Bessel-corrected, torch's
    x_hat = real + alpha * (0.5 * std * u)
    want = (x_hat.flatten(1).norm(dim=1) - 1).pow(2).mean()  # grad D(x_hat) = x_hat
    torch.testing.assert_close(got, want)

    # fake plays no part in DRAGAN
    torch.testing.assert_close(
        dragan_penalty(half_squared_norm, real, -fake, torch.Generator().manual_seed(5)), got
    )


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
