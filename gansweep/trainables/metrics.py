"""Quality metrics of generated samples, one family per data kind. The registry of every
metric a trial reports, with its direction, is metric_registry.py (re-exported here).

Every evaluation reports ``distance``, the primary metric: **lower is better**, 0 is a
perfect match with the data.

- 2-D mixtures: ``distance`` is ``mmd``, the squared maximum mean discrepancy between the
  generated samples and the true mixture, with a sum of Gaussian kernels at 1, 3, 10, 30
  and 100 times the mixture's sigma. The true mixture enters in closed form (the
  expectation of a Gaussian kernel under a Gaussian is Gaussian), so nothing is sampled
  from it; the generated side is the unbiased U-statistic, so a perfect generator scores
  0 on average (and a little below 0 half of the time). Chosen by measurement
  (``benchmarks/mixture_metric_choice.py``) over the exact Wasserstein-1 distance, energy
  distance, sliced W1 and the old mode histogram: it is a true distance between the
  distributions (the kernel is characteristic); a dropped mode costs more than any
  off-mode mass near the data; it keeps falling as samples approach the modes (no
  plateau, so the scheduler's first rung and the sampler's first trials see a signal);
  and, unlike W1, it sees the spread of the samples around each mode, the thing the
  high-quality share measures (W1 cannot tell 1 sigma from 1.5 sigma within its noise).
- Images: the Fréchet distance in the features of a classifier trained on the data set
  itself (see image_metrics.py).

The other mixture metrics follow VEEGAN / PacGAN and stay reported: ``high_quality`` is
the fraction of samples within 3 sigma of their nearest mode; ``modes_captured`` counts
the modes that are the nearest mode of at least one high-quality sample; ``reverse_kl``
is PacGAN's KL(generated mode histogram || uniform), every sample assigned to its
nearest mode. They are not the primary metric: reverse KL is mode-seeking (dropping
modes costs little) and the counts are flat until samples land within 3 sigma.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gansweep.trainables.data import Dataset, MixtureData
from gansweep.trainables.image_metrics import evaluate_images
from gansweep.trainables.metric_registry import (  # noqa: F401  (re-exported)
    DIVERGED_DISTANCE,
    IMAGE,
    METRICS,
    MIXTURE,
    NOT_TARGETS,
    PRIMARY_METRIC,
    TRAIN_CPU_SECONDS,
    TRAIN_SECONDS,
    MetricSpec,
    reported_metrics,
    worst_metrics,
)

HIGH_QUALITY_SIGMAS = 3.0
# The kernel bandwidths of the mixture MMD, in units of the mixture's sigma: from the
# spread of one mode (what the high-quality share measures) up to the whole data set.
MMD_BANDWIDTHS = (1.0, 3.0, 10.0, 30.0, 100.0)


def off_mode_probability(dim: int, sigmas: float = HIGH_QUALITY_SIGMAS) -> float:
    """P(||e|| > sigmas) for e ~ N(0, I_dim): the chi-square tail, exp(-4.5) in 2-D."""
    return float(torch.special.gammaincc(torch.tensor(dim / 2), torch.tensor(sigmas**2 / 2)))


def mixture_mmd(samples: Tensor, modes: Tensor, sigma: float) -> float:
    """Squared MMD between samples [N, D] and the equal-weight mixture of N(mode, sigma^2 I)
    over modes [K, D], with the kernel sum_b exp(-|x - y|^2 / (2 (b sigma)^2)) over
    MMD_BANDWIDTHS. Unbiased in the samples; the mixture's terms are exact: for
    y ~ N(mu, s^2 I), E_y k_h(x, y) = (h^2 / (h^2 + s^2))^(D/2) exp(-|x - mu|^2 / (2 (h^2 +
    s^2))), and likewise with 2 s^2 for two independent draws.
    """
    x = samples.double()
    mu = modes.double().to(x.device)
    # Every pair i < j once: [N (N - 1) / 2]. Float32: its 3 million kernel values are
    # most of an evaluation's cost, and their mean agrees with float64 to 1e-8.
    within = torch.pdist(x.float()).square_()
    kernel = torch.empty_like(within)
    to_modes = torch.cdist(x, mu).square()  # [N, K]
    between_modes = torch.cdist(mu, mu).square()  # [K, K]
    s2, half_dim, total = sigma**2, x.shape[1] / 2, 0.0
    for bandwidth in MMD_BANDWIDTHS:
        h2 = (bandwidth * sigma) ** 2
        # Exponents below -80 (e^-80 = 2e-35) are clamped there: their results would be
        # float32 subnormals, which x86 computes ~4x slower (the whole MMD took 2x as
        # long), and they add nothing to the mean.
        torch.mul(within, -1 / (2 * h2), out=kernel).clamp_min_(-80.0).exp_()
        gen = kernel.mean(dtype=torch.float64)  # a float32 sum would add 4e-8
        cross = (h2 / (h2 + s2)) ** half_dim * torch.exp(to_modes / (-2 * (h2 + s2))).mean()
        true = (h2 / (h2 + 2 * s2)) ** half_dim * torch.exp(
            between_modes / (-2 * (h2 + 2 * s2))
        ).mean()
        total += float(gen - 2 * cross + true)
    return total


def _kl(q: Tensor, p: Tensor) -> float:
    """KL(q || p) of two histograms [K]; empty bins of q contribute 0."""
    nz = q > 0
    return float((q[nz] * (q[nz] / p[nz]).log()).sum())


def mixture_metrics(samples: Tensor, data: MixtureData) -> dict[str, float]:
    """samples [N, 2] of a 2-D mixture -> the mixture metrics (see the module docstring).

    Non-finite samples count as off every mode (and far from it, for the MMD).
    """
    samples = torch.nan_to_num(samples.double(), nan=1e9, posinf=1e9, neginf=-1e9).cpu()
    modes = data.modes.double().cpu()
    n, k = len(samples), len(modes)
    dist, nearest = torch.cdist(samples, modes).min(dim=1)
    hq = dist <= HIGH_QUALITY_SIGMAS * data.sigma
    hq_counts = torch.bincount(nearest[hq], minlength=k).double()
    nearest_hist = torch.bincount(nearest, minlength=k).double() / n
    mmd = mixture_mmd(samples, modes, data.sigma)
    return {
        "distance": mmd,
        "mmd": mmd,
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
        return mixture_metrics(fake, data)
    metrics = evaluate_images(fake, data, fake_labels, inception_weights)
    metrics["distance"] = metrics["fd"]
    return metrics
