"""Pictures of what a generator makes: an image grid, or a scatter plot for 2-D data."""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch import Tensor

from gansweep.trainables.data import MixtureData
from gansweep.trainables.engine import GANTrainer

GRID_IMAGES = 64
SCATTER_POINTS = 2500
MIN_CELL_PIXELS = 32  # small images are scaled up to at least this, pixel for pixel


def save_samples(trainer: GANTrainer, path: str | Path) -> Path:
    """Write a PNG of the generator's samples (EMA weights if any) and return its path.

    Images: an 8-column grid (conditional runs: each column one class when K <= 8, else
    labels in reading order), images smaller than MIN_CELL_PIXELS scaled up by a whole
    factor with nearest-neighbour (an 8-pixel digit becomes 32 pixels of 4x4 blocks:
    readable, and no pixel is invented). 2-D data: the samples over the true modes, with the 3-sigma
    high-quality circles, at a fixed scale so pictures of different runs compare.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(trainer.data, MixtureData):
        _scatter(trainer, trainer.data, path)
    else:
        k = trainer.num_classes
        columns = k if 0 < k <= 8 else 8
        fake, _ = trainer.generate(columns * (GRID_IMAGES // columns))
        # Deferred: importing torchvision imports all its models and, through them,
        # torch._dynamo: 1.2-1.7 s the driver paid at every sweep, for nothing on 2-D data.
        from torchvision.utils import save_image

        save_image(upscaled(fake.float().cpu()), path, nrow=columns, normalize=True,
                   value_range=(-1, 1))  # fmt: skip
    return path


def upscaled(images: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, C, kH, kW], k the smallest whole factor with kH >= MIN_CELL_PIXELS
    (k = 1 for images already that large), nearest-neighbour."""
    factor = -(-MIN_CELL_PIXELS // images.shape[-2])  # ceil division
    if factor <= 1:
        return images
    return F.interpolate(images, scale_factor=factor, mode="nearest")


def _scatter(trainer: GANTrainer, data: MixtureData, path: Path) -> None:
    """Matplotlib's object API with its Agg canvas: no pyplot, no global figure state, no
    display needed on servers and inside trials. ``data`` is ``trainer.data``, narrowed."""
    generated, _ = trainer.generate(SCATTER_POINTS)
    fake, modes = generated.float().cpu().numpy(), data.modes.cpu().numpy()
    reach = float(abs(modes).max()) * 1.5
    fig = Figure(figsize=(5, 5), dpi=100)
    ax = fig.add_subplot()
    ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.4, color="tab:blue", label="generated")
    for x, y in modes:
        ax.add_patch(Circle((x, y), 3 * data.sigma, fill=False, color="tab:red", lw=0.8))
    ax.scatter(modes[:, 0], modes[:, 1], marker="x", color="tab:red", s=30, label="modes")
    ax.set(xlim=(-reach, reach), ylim=(-reach, reach), aspect="equal")
    ax.set_title(f"{trainer.config.combination} on {data.name}, step {trainer.step}")
    ax.legend(loc="upper right", fontsize=8)
    # Fixed margins, not tight_layout(): that one draws the figure an extra time to
    # measure it, half the cost of a picture a trial makes at every evaluation.
    fig.subplots_adjust(left=0.12, right=0.97, bottom=0.08, top=0.93)
    fig.savefig(path)
