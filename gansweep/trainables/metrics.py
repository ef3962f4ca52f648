"""Quality metrics of generated samples, one family per data kind.

Every evaluation reports ``distance``, the primary metric: **lower is better**, 0 is a
perfect match with the data.

- 2-D mixtures: the reverse KL divergence KL(q || p) between the histogram of generated
  samples over K + 1 bins -- the K modes (high-quality samples only, nearest mode) and one
  "off every mode" bin -- and the same histogram of the true distribution, which puts
  (1 - p_off) / K on each mode and p_off = P(a true sample is beyond 3 sigma) on the last
  bin. Unlike the mode histogram alone it punishes low-quality samples as well as dropped
  modes, and it is always finite (p > 0 in every bin); its largest value, every sample
  off-mode, is -log(p_off) = 4.5 in 2-D.
- Images: the Fréchet distance in the features of a classifier trained on the data set
  itself (see image_metrics.py).

The other mixture metrics follow VEEGAN / PacGAN: `high_quality` is the fraction of
samples within 3 sigma of their nearest mode; `modes_captured` counts the modes that are
the nearest mode of at least one high-quality sample; `reverse_kl` is PacGAN's
KL(generated mode histogram || uniform), every sample assigned to its nearest mode.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gansweep.trainables.data import Dataset, MixtureData

PRIMARY_METRIC = "distance"
PRIMARY_MODE = "min"
# A diverged run's distance: finite (searchers need a number) and worse than any real one.
DIVERGED_DISTANCE = 1e6
HIGH_QUALITY_SIGMAS = 3.0


def off_mode_probability(dim: int, sigmas: float = HIGH_QUALITY_SIGMAS) -> float:
    """P(||e|| > sigmas) for e ~ N(0, I_dim): the chi-square tail, exp(-4.5) in 2-D."""
    return float(torch.special.gammaincc(torch.tensor(dim / 2), torch.tensor(sigmas**2 / 2)))


def _kl(q: Tensor, p: Tensor) -> float:
    """KL(q || p) of two histograms [K]; empty bins of q contribute 0."""
    nz = q > 0
    return float((q[nz] * (q[nz] / p[nz]).log()).sum())


def mixture_metrics(samples: Tensor, modes: Tensor, sigma: float) -> dict[str, float]:
    """samples [N, D], modes [K, D] -> the mixture metrics (see the module docstring).

    Non-finite samples count as off every mode.
    """
    samples = torch.nan_to_num(samples.double(), nan=1e9, posinf=1e9, neginf=-1e9)
    modes = modes.double().to(samples.device)
    n, k = len(samples), len(modes)
    dist, nearest = torch.cdist(samples, modes).min(dim=1)
    hq = dist <= HIGH_QUALITY_SIGMAS * sigma
    hq_counts = torch.bincount(nearest[hq], minlength=k).double()

    p_off = off_mode_probability(modes.shape[1])
    true_hist = torch.tensor([(1 - p_off) / k] * k + [p_off], dtype=torch.float64)
    gen_hist = torch.cat([hq_counts, (~hq).sum().double().view(1)]).cpu() / n
    nearest_hist = torch.bincount(nearest, minlength=k).double().cpu() / n
    return {
        "distance": _kl(gen_hist, true_hist),
        "modes_captured": float((hq_counts > 0).sum()),
        "high_quality": float(hq.double().mean()),
        "reverse_kl": _kl(nearest_hist, torch.full((k,), 1.0 / k, dtype=torch.float64)),
    }


def evaluate_samples(
    data: Dataset,
    fake: Tensor,
    fake_labels: Tensor | None = None,
    inception_weights: str | None = None,
) -> dict[str, float]:
    """All metrics of generated samples fake [N, *data.shape] against `data`."""
    if isinstance(data, MixtureData):
        return mixture_metrics(fake, data.modes, data.sigma)
    from gansweep.trainables.image_metrics import evaluate_images

    metrics = evaluate_images(fake, data, fake_labels, inception_weights)
    metrics["distance"] = metrics["fd"]
    return metrics
