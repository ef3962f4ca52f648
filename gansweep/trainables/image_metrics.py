"""Image quality metrics of one GAN evaluation, as pure functions plus one entry point.

All of them compare generated images with real training images in the feature space of
a small classifier trained on the data set itself, whitened by the real features'
covariance (``feature_net.py`` says why):

- ``fd``: the Fréchet distance between Gaussians fitted to real and fake features (the
  formula of FID, Heusel et al. 2017, in a domain classifier's space). Lower is better.
- ``classifier_score``: exp(E_x KL(p(y|x) || p(y))), the Inception Score formula with the
  data set's own classifier: high when each fake is clearly one class and the classes are
  balanced. At most the number of classes; only for labelled data.
- ``precision`` / ``recall`` (Kynkäänniemi et al. 2019): the fraction of fakes on the real
  manifold, and of reals on the fake manifold; each manifold is the union of k-NN balls.
- ``density`` / ``coverage`` (Naeem et al. 2020): the robust variants; density counts how
  many real balls hold each fake (about 1 for matching distributions, unbounded above),
  coverage is the fraction of real balls that hold at least one fake.
- ``fid_inception`` / ``kid_inception``: Inception FID/KID through torch-fidelity, only
  when a local weights file is given; nothing here ever downloads.
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gansweep.trainables.data import ImageData
from gansweep.trainables.feature_net import get_feature_net, get_real_stats

# The Inception weights torch-fidelity loads (converted from TensorFlow's 2015-12-05
# graph). pytorch-fid ships the same conversion as pt_inception-2015-12-05-6726825d.pth.
INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
_CHUNK = 512  # rows per distance block: 512 x 10,000 float64 is 40 MB


# ------------------------------------------------------------------ pure functions


def frechet_distance(mu1: Tensor, sigma1: Tensor, mu2: Tensor, sigma2: Tensor) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64.

    mu1, mu2: [D]; sigma1, sigma2: [D, D] symmetric positive semi-definite. The trace
    term uses tr((S1 S2)^(1/2)) = tr((A S2 A)^(1/2)) with A = S1^(1/2): A S2 A is
    symmetric PSD, so a symmetric eigen-solver gives its eigenvalues stably (tiny negative
    ones from rounding are clamped to 0).
    """
    mu1, mu2, s1, s2 = (t.detach().double().cpu() for t in (mu1, mu2, sigma1, sigma2))
    evals, evecs = torch.linalg.eigh(s1)
    sqrt_s1 = (evecs * evals.clamp_min(0).sqrt()) @ evecs.T
    middle = sqrt_s1 @ s2 @ sqrt_s1
    tr_covmean = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp_min(0).sqrt().sum()
    fd = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * tr_covmean
    return max(fd.item(), 0.0)  # >= 0 exactly; rounding can leave -1e-12


def feature_statistics(feats: Tensor) -> tuple[Tensor, Tensor]:
    """feats [N, D] -> (mean [D], covariance [D, D]) in float64; needs N >= 2."""
    feats = feats.detach().double()
    return feats.mean(0), torch.cov(feats.T)


def classifier_score(probs: Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) with p(y) = E_x p(y|x).

    probs: [N, K], rows summing to 1. 1.0 when every row is the same distribution; K
    when the rows are one-hot and spread evenly over the K classes.
    """
    p = probs.detach().double()
    marginal = p.mean(0, keepdim=True)
    # xlogy: a zero probability contributes 0, not nan.
    kl = (torch.xlogy(p, p) - torch.xlogy(p, marginal)).sum(1)
    return kl.mean().exp().item()


def knn_radii(feats: Tensor, k: int) -> Tensor:
    """feats [N, D] -> [N] float64: each point's distance to its k-th nearest other point."""
    if len(feats) <= k:
        raise ValueError(f"k-NN radii with k={k} need more than {k} points, got {len(feats)}")
    feats = feats.detach().double()
    # kthvalue counts the point itself (distance 0) as the first neighbour.
    blocks = [torch.cdist(c, feats).kthvalue(k + 1, dim=1).values for c in feats.split(_CHUNK)]
    return torch.cat(blocks)


def _balls(centers: Tensor, radii: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """Open balls around centers [C, D] with radii [C], and points [P, D].

    Returns (for each point, how many balls hold it: long [P]; for each ball, whether it
    holds any point: bool [C]). Distances are computed center-block by center-block
    exactly as in knn_radii, so for identical sets a center's k-th neighbour lands
    bit-for-bit on its ball's border (and, strictly, outside it).
    """
    centers, points = centers.detach().double(), points.detach().double()
    counts = torch.zeros(len(points), dtype=torch.long, device=points.device)
    holds_any = []
    for block, r in zip(centers.split(_CHUNK), radii.split(_CHUNK), strict=True):
        inside = torch.cdist(block, points) < r[:, None]  # [c, P]
        counts += inside.sum(0)
        holds_any.append(inside.any(1))
    return counts, torch.cat(holds_any)


def precision_recall(real_feats: Tensor, fake_feats: Tensor, k: int = 5) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    real_feats [N, D], fake_feats [M, D]; N, M > k. Precision: the fraction of fakes
    inside the real manifold (the union of balls around each real point reaching its
    k-th nearest real neighbour); recall: the fraction of reals inside the fake manifold.
    Balls are open (strict <), as in the reference code of Naeem et al. 2020.
    """
    fakes_in_real, _ = _balls(real_feats, knn_radii(real_feats, k), fake_feats)
    reals_in_fake, _ = _balls(fake_feats, knn_radii(fake_feats, k), real_feats)
    return (fakes_in_real > 0).double().mean().item(), (reals_in_fake > 0).double().mean().item()


def density_coverage(real_feats: Tensor, fake_feats: Tensor, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al. 2020), with real k-NN balls only.

    real_feats [N, D], fake_feats [M, D]; N > k. Density: the number of real balls
    holding each fake, averaged over fakes and divided by k (1.0 for identical sets, about
    1 for samples of one distribution, above 1 when fakes crowd dense real regions).
    Coverage: the fraction of real balls holding at least one fake.
    """
    counts, covered = _balls(real_feats, knn_radii(real_feats, k), fake_feats)
    return counts.double().mean().item() / k, covered.double().mean().item()


def to_uint8_rgb(images: Tensor) -> Tensor:
    """[N, C, H, W] in [-1, 1] (C = 1 or 3) -> uint8 [N, 3, H, W]; grey is repeated."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected [N, 1 or 3, H, W] images, got {tuple(images.shape)}")
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.expand(-1, 3, -1, -1).contiguous()


# ------------------------------------------------------------------ Inception FID/KID


def _missing_weights_message(path: str) -> str:
    return (
        f"Inception weights file not found: {path!r}. Inception FID/KID need the "
        f"pt_inception-2015-12-05 weights that torch-fidelity uses "
        f"(weights-inception-2015-12-05-6726825d.pth). gansweep never downloads inside a "
        f"trial: on a machine with internet access download {INCEPTION_WEIGHTS_URL} (or "
        f"copy ~/.cache/torch/hub/checkpoints/weights-inception-2015-12-05-6726825d.pth "
        f"from a machine where torch-fidelity already fetched it), put it where every trial "
        f"can read it, and pass that path as the Inception weights option."
    )


class InceptionWeightsError(ValueError):
    """An inception_weights file that is missing or is not torch-fidelity's InceptionV3."""


@functools.lru_cache(maxsize=4)
def _checked_weights(path: str, mtime_ns: int) -> None:
    try:  # an optional dependency: imported where it is used
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError:
        raise InceptionWeightsError(
            "inception_weights needs torch-fidelity, an optional dependency: "
            "pip install 'gansweep[fidelity]'"
        ) from None
    try:  # weights_only first: torch-fidelity itself unpickles the file without that guard
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InceptionWeightsError(
            f"inception_weights {path!r} is not a PyTorch weights file "
            f"({type(err).__name__}: {err})"
        ) from None
    try:
        if not isinstance(state, dict):
            raise TypeError(f"it holds a {type(state).__name__}, not a state dict")
        FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], path)  # loads it strictly
    except Exception as err:
        raise InceptionWeightsError(
            f"inception_weights {path!r} are not the InceptionV3 weights torch-fidelity "
            f"uses (weights-inception-2015-12-05-6726825d.pth): {err}"
        ) from None


def check_inception_weights(path: str) -> None:
    """Raise InceptionWeightsError unless ``path`` is a file that torch-fidelity's
    InceptionV3 loads: checked before a run trains, not at its first evaluation (once
    per file and version of it in a process)."""
    if not Path(path).is_file():
        raise InceptionWeightsError(_missing_weights_message(path))
    _checked_weights(str(path), Path(path).stat().st_mtime_ns)


class _ImageTensorDataset(Dataset):
    """uint8 [N, 3, H, W] as the Dataset torch-fidelity reads (one [3, H, W] per item)."""

    def __init__(self, images: Tensor):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]


def inception_fid_kid(fake: Tensor, real: Tensor, weights_path: str) -> dict[str, float]:
    """Inception FID and KID of fake [N, C, H, W] against real [M, C, H, W], both in
    [-1, 1] with C = 1 or 3, through torch-fidelity with a local weights file.

    Raises FileNotFoundError (saying how to get the file) when weights_path does not
    exist, ImportError when torch-fidelity is not installed. Runs on CUDA when available.
    """
    if not Path(weights_path).is_file():
        raise FileNotFoundError(_missing_weights_message(weights_path))
    try:  # an optional dependency: imported where it is used
        import torch_fidelity
    except ImportError as err:
        raise ImportError(
            "Inception FID/KID need torch-fidelity, an optional dependency: "
            "pip install 'gansweep[fidelity]'"
        ) from err
    n = min(len(fake), len(real))
    result = torch_fidelity.calculate_metrics(
        input1=_ImageTensorDataset(to_uint8_rgb(fake).cpu()),
        input2=_ImageTensorDataset(to_uint8_rgb(real).cpu()),
        fid=True,
        kid=True,
        feature_extractor="inception-v3-compat",
        # A path is what keeps torch-fidelity from downloading the weights itself.
        feature_extractor_weights_path=str(weights_path),
        kid_subset_size=min(1000, n),
        cuda=torch.cuda.is_available(),
        cache=False,  # no feature cache written under $TORCH_HOME
        datasets_download=False,
        verbose=False,
    )
    return {
        "fid_inception": float(result[torch_fidelity.KEY_METRIC_FID]),
        "kid_inception": float(result[torch_fidelity.KEY_METRIC_KID_MEAN]),
    }


# ------------------------------------------------------------------ entry point


def evaluate_images(
    fake: Tensor,
    data: ImageData,
    fake_labels: Tensor | None = None,
    inception_weights: str | None = None,
    k: int = 5,
) -> dict[str, float]:
    """All image metrics of N generated images against the data set's training split.

    fake: [N, C, H, W] in [-1, 1], the data set's shape, N > k, all finite (raises
        ValueError otherwise: the caller checks for divergence first, and metrics of
        the finite part of a broken batch would flatter it).
    fake_labels: [N] the classes the fakes were asked to show (conditional G), or None.
    inception_weights: a local Inception weights file, or None to skip Inception metrics.

    Returns fd (vs the whole training split's cached statistics), precision, recall,
    density, coverage (vs a fixed random subset of min(N, N_train, 10,000) training
    images, the same at every evaluation), classifier_test_accuracy (how good the
    yardstick is: class accuracy, or rotation accuracy for unlabelled data),
    classifier_score (labelled data only), ac_accuracy (with fake_labels: the share of
    fakes the classifier assigns to their requested class) and fid_inception,
    kid_inception (with inception_weights, against the same real subset).

    The feature net runs on the CPU whatever the fakes' device: the numbers then do not
    depend on where a trial ran, and the net is small enough for that to be cheap.
    """
    if inception_weights is not None and not Path(inception_weights).is_file():
        raise FileNotFoundError(_missing_weights_message(inception_weights))  # fail early
    if fake.ndim != 4 or tuple(fake.shape[1:]) != tuple(data.shape):
        shape = ", ".join(str(s) for s in data.shape)
        raise ValueError(f"expected fakes of shape [N, {shape}], got {tuple(fake.shape)}")
    if len(fake) <= k:
        raise ValueError(f"the image metrics need more than k={k} fakes, got {len(fake)}")
    if not torch.isfinite(fake).all():
        bad = (~torch.isfinite(fake.flatten(1))).any(1).sum().item()
        raise ValueError(f"{bad} of {len(fake)} generated images hold nan/inf values")
    if fake_labels is not None and fake_labels.shape != (len(fake),):
        raise ValueError(
            f"fake_labels must have shape [{len(fake)}], got {tuple(fake_labels.shape)}"
        )

    net = get_feature_net(data)
    stats = get_real_stats(data)
    raw, logits = net.features_and_logits(fake.detach().cpu())
    feats = stats.transform(raw)
    mu, sigma = feature_statistics(feats)
    real = stats.feats[: len(fake)]
    precision, recall = precision_recall(real, feats, k)
    density, coverage = density_coverage(real, feats, k)
    metrics = {
        "fd": frechet_distance(stats.mu, stats.sigma, mu, sigma),
        "precision": precision,
        "recall": recall,
        "density": density,
        "coverage": coverage,
        "classifier_test_accuracy": net.test_accuracy.item(),
    }
    if data.labelled:  # the score of a rotation classifier would say nothing about classes
        metrics["classifier_score"] = classifier_score(logits.softmax(1))
    if fake_labels is not None:
        if not data.labelled:
            raise ValueError(f"ac_accuracy needs labelled data; {data.name!r} has no classes")
        hits = logits.argmax(1) == fake_labels.detach().cpu().long()
        metrics["ac_accuracy"] = hits.double().mean().item()
    if inception_weights is not None:
        real_images = data.train_x[stats.order[: len(fake)].to(data.train_x.device)]
        metrics.update(inception_fid_kid(fake, real_images, inception_weights))
    return metrics
