"""Differentiable augmentation: shapes, gradients, determinism, and what each one does."""

import pytest
import torch

from gansweep.trainables.augment import AUGMENTATIONS, augment, cutout, flip, translation


def images(batch=4, channels=3, size=8):
    return torch.rand(batch, channels, size, size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
@pytest.mark.parametrize("channels", [1, 3])
def test_augmentation_contract(name, channels):
    """Shape kept, finite, differentiable w.r.t. the images, reproducible from the seed."""
    x = (images(channels=channels) * 2 - 1).requires_grad_(True)
    out = AUGMENTATIONS[name](x, torch.Generator().manual_seed(3))
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = AUGMENTATIONS[name](x.detach(), torch.Generator().manual_seed(3))
    torch.testing.assert_close(out.detach(), again)


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_augmentation_changes_a_batch(name):
    x = images(batch=16)
    assert not torch.equal(AUGMENTATIONS[name](x, torch.Generator().manual_seed(0)), x)


def test_translation_moves_whole_pixels_and_fills_with_zeros():
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 4, 4] = 1.0
    out = translation(x, torch.Generator().manual_seed(0))
    # The single bright pixel lands on one pixel (no blur) within one pixel of where it was.
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), torch.ones(64))
    assert set(out.unique().tolist()) == {0.0, 1.0}
    rows = out[:, 0].amax(dim=2).argmax(dim=1)
    assert rows.min() >= 3 and rows.max() <= 5 and len(rows.unique()) > 1


def test_flip_mirrors_about_half_the_batch():
    x = torch.arange(8.0).expand(200, 1, 8, 8).contiguous()
    out = flip(x, torch.Generator().manual_seed(0))
    flipped = (out[:, 0, 0, 0] == 7).sum().item()
    assert torch.equal(out[:, 0, 0, 0] == 7, out[:, 0, 0, 7] == 0)
    assert flipped == pytest.approx(100, abs=25)


def test_cutout_zeros_a_quarter_of_the_image_when_inside():
    x = torch.ones(256, 1, 8, 8)
    out = cutout(x, torch.Generator().manual_seed(0))
    zeroed = (out == 0).sum(dim=(1, 2, 3)).float()
    assert zeroed.max() == 16  # a 4x4 square fully inside the image
    assert zeroed.min() >= 4  # even a corner-hanging square keeps a 2x2 piece


def test_empty_policy_is_the_identity():
    x = images()
    assert augment(x, (), torch.Generator()) is x
