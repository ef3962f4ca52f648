"""Quality metrics of generated samples, one family per data kind, and the registry of
every metric a trial reports with its direction.

Every evaluation reports ``distance``, the primary metric: **lower is better**, 0 is a
perfect match with the data.

- 2-D mixtures: ``distance`` is ``w1``, the Wasserstein-1 (earth mover's) distance between
  the generated samples and a fixed reference sample of the true mixture, computed
  exactly (POT's network simplex). Chosen by measurement over energy distance, MMD and
  sliced W1 (``benchmarks/mixture_metric_choice.py``): it is a true distance between the
  distributions; a dropped mode costs the mass that must travel to it from the
  neighbours, so coverage counts at least as much as off-mode mass near the data; and it
  keeps falling as samples approach the modes, with no plateau, so the scheduler's first
  rung and the sampler's first trials see a signal long before samples are good. The
  reference holds the same number of points at every mode, so it adds no noise of its
  own to the mode weights.
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

from dataclasses import dataclass

import numpy as np
import ot
import torch
from torch import Tensor

from gansweep.trainables.data import Dataset, MixtureData
from gansweep.trainables.image_metrics import evaluate_images

PRIMARY_METRIC = "distance"
PRIMARY_MODE = "min"
# A diverged run reports this for every metric where lower is better, and 0 where higher
# is better: finite (searchers need a number) and worse than any real value.
DIVERGED_DISTANCE = 1e6
HIGH_QUALITY_SIGMAS = 3.0
EMD_MAX_ITERATIONS = 10_000_000  # POT's default (100,000) stops short at 2,500 x 500 points


@dataclass(frozen=True)
class MetricSpec:
    """A metric that trials report: which way is better, and for which data."""

    mode: str  # "min" or "max"
    kinds: tuple[str, ...]  # the data kinds whose trials report it
    description: str
    needs: str = ""  # a TrialConfig field that must be set for it: conditional, ...

    @property
    def worst(self) -> float:
        """What a diverged trial reports."""
        return DIVERGED_DISTANCE if self.mode == "min" else 0.0


MIXTURE, IMAGE = ("vector",), ("image",)
METRICS: dict[str, MetricSpec] = {
    "distance": MetricSpec("min", (*MIXTURE, *IMAGE), "the primary metric: w1 or fd"),
    "w1": MetricSpec("min", MIXTURE, "Wasserstein-1 distance to the true mixture"),
    "modes_captured": MetricSpec("max", MIXTURE, "modes with a high-quality sample"),
    "high_quality": MetricSpec("max", MIXTURE, "share of samples within 3 sigma of a mode"),
    "reverse_kl": MetricSpec("min", MIXTURE, "KL(mode histogram || uniform), PacGAN"),
    "fd": MetricSpec("min", IMAGE, "Fréchet distance in the data set's classifier features"),
    "classifier_score": MetricSpec("max", IMAGE, "classifier score (Inception score's twin)"),
    "precision": MetricSpec("max", IMAGE, "share of fakes on the real manifold"),
    "recall": MetricSpec("max", IMAGE, "share of reals on the fake manifold"),
    "density": MetricSpec("max", IMAGE, "density (Naeem et al. 2020)"),
    "coverage": MetricSpec("max", IMAGE, "coverage (Naeem et al. 2020)"),
    "ac_accuracy": MetricSpec("max", IMAGE, "fakes classified as their class", "conditional"),
    "fid_inception": MetricSpec("min", IMAGE, "Inception FID", "inception_weights"),
    "kid_inception": MetricSpec("min", IMAGE, "Inception KID", "inception_weights"),
}
# Reported too, but they rank nothing: a loss says little about sample quality.
NOT_TARGETS = ("step", "loss_d", "loss_g", "diverged", "classifier_test_accuracy")


def reported_metrics(kind: str, conditional: bool, inception: bool) -> dict[str, MetricSpec]:
    """The metrics trials of this kind of data report (what --metric may name)."""
    have = {"": True, "conditional": conditional, "inception_weights": inception}
    return {n: s for n, s in METRICS.items() if kind in s.kinds and have[s.needs]}


def worst_metrics(kind: str, conditional: bool, inception: bool) -> dict[str, float]:
    """Every metric at its worst: what a diverged trial reports, so that any --metric
    has a value in every result (Tune checks that the metric is there)."""
    return {n: s.worst for n, s in reported_metrics(kind, conditional, inception).items()}


def off_mode_probability(dim: int, sigmas: float = HIGH_QUALITY_SIGMAS) -> float:
    """P(||e|| > sigmas) for e ~ N(0, I_dim): the chi-square tail, exp(-4.5) in 2-D."""
    return float(torch.special.gammaincc(torch.tensor(dim / 2), torch.tensor(sigmas**2 / 2)))


def wasserstein1(x: Tensor, y: Tensor) -> float:
    """The exact Wasserstein-1 distance between two point sets x [N, D] and y [M, D],
    each point of equal weight (Euclidean ground cost)."""
    cost = torch.cdist(x.double(), y.double()).cpu().numpy()
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    return float(ot.emd2(a, b, cost, numItermax=EMD_MAX_ITERATIONS))


def _kl(q: Tensor, p: Tensor) -> float:
    """KL(q || p) of two histograms [K]; empty bins of q contribute 0."""
    nz = q > 0
    return float((q[nz] * (q[nz] / p[nz]).log()).sum())


def mixture_metrics(samples: Tensor, data: MixtureData) -> dict[str, float]:
    """samples [N, 2] of a 2-D mixture -> the mixture metrics (see the module docstring).

    Non-finite samples count as off every mode (and far from it, for w1).
    """
    samples = torch.nan_to_num(samples.double(), nan=1e9, posinf=1e9, neginf=-1e9).cpu()
    modes = data.modes.double().cpu()
    n, k = len(samples), len(modes)
    dist, nearest = torch.cdist(samples, modes).min(dim=1)
    hq = dist <= HIGH_QUALITY_SIGMAS * data.sigma
    hq_counts = torch.bincount(nearest[hq], minlength=k).double()
    nearest_hist = torch.bincount(nearest, minlength=k).double() / n
    w1 = wasserstein1(samples, data.reference)
    return {
        "distance": w1,
        "w1": w1,
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
