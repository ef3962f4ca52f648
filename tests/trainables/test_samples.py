"""samples.png: a readable grid for small images, a scatter over the modes for 2-D data."""

import torch
from PIL import Image

from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.samples import MIN_CELL_PIXELS, save_samples, upscaled

TINY_DIGITS = dict(dataset="digits", architecture="dcgan", width=8, steps=1, eval_samples=100)


def test_small_images_are_scaled_up_pixel_for_pixel():
    images = torch.rand(3, 1, 8, 8)
    big = upscaled(images)
    assert big.shape == (3, 1, 32, 32)
    assert torch.equal(big[..., ::4, ::4], images)  # every 4x4 block is one source pixel
    blocks = big.unfold(-2, 4, 4).unfold(-2, 4, 4)  # [3, 1, 8, 8, 4, 4]
    assert torch.equal(blocks, blocks[..., :1, :1].expand_as(blocks))


def test_images_already_large_enough_are_left_alone():
    images = torch.rand(2, 3, MIN_CELL_PIXELS, MIN_CELL_PIXELS)
    assert upscaled(images) is images
    assert upscaled(torch.rand(2, 1, 12, 12)).shape[-1] == 36  # the whole factor 3


def test_a_grid_of_8_pixel_digits_is_readable(tmp_path):
    trainer = GANTrainer(TINY_DIGITS)
    path = save_samples(trainer, tmp_path / "samples.png")
    width, height = Image.open(path).size
    # 8 columns of 32-pixel cells with torchvision's 2-pixel padding (it was 82 x 82).
    assert (width, height) == (2 + 8 * (32 + 2), 2 + 8 * (32 + 2))


def test_a_2d_run_gets_a_scatter_picture(tmp_path):
    path = save_samples(GANTrainer(dict(steps=1, eval_samples=100)), tmp_path / "s.png")
    assert Image.open(path).size == (500, 500)
