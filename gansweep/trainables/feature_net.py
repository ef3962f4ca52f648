"""The feature space of the image metrics: a small CNN trained on the data set itself.

Inception features describe ImageNet photographs; for 8x8 digits or 28x28 MNIST they are
a poor yardstick, and their weights are a download a trial must never make. So the image
metrics measure distances in the penultimate layer of a small classifier trained on the
data set's own training split (the "FID with a domain classifier" used for MNIST-like
data since Lucic et al. 2018). A data set without labels (a user's folder of images)
gets the same net trained on a task that needs none: which of four quarter turns an
image was given (rotation prediction, Gidaris et al. 2018; ``task``).

The classifier is a function of the data alone, never of a trial: it is trained
deterministically (fixed seed, fixed schedule, Adam, on the CPU) the first time any trial
of a data set needs it, written to the cache folder (``GANSWEEP_CACHE``, default
``~/.cache/gansweep``) and loaded by every later trial. Concurrent trials may race to
create it; each writes a temporary file and renames it into place, so a reader sees
either no file or a whole one. Training runs under ``torch.random.fork_rng``: it never
moves the global random state, so a trial that trains the net and its resumed copy that
loads it from the cache draw the same random numbers.

The metrics measure in the net's features whitened by the real training split's
covariance (``whitening``), so that every direction real images vary in counts alike
and garbage cannot hide in the directions they do not vary in. The real-data statistics
(that map, the whitened features' mean and covariance over the training split, and the
features of a fixed subset of training images for precision/recall) are computed once
per data set too, and cached the same way.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gansweep.files import atomic_write
from gansweep.trainables.data import ImageData

# Bump when the architecture, the training schedule or the statistics change: cached
# files of an older version are then ignored (their names carry the version).
FEATURE_NET_VERSION = 2

SEED = 0
BATCH_SIZE = 64
LR = 2e-3
EPOCHS = 10
# Large sets (MNIST, CIFAR-10) reach their accuracy long before 10 epochs; capping the
# optimizer steps keeps the one-off CPU training to about a minute there. The schedule is
# still a fixed function of the data set's size, so training stays deterministic.
MAX_STEPS = 2000
WIDTH = 32
FEATURE_DIM = 128
# Precision/recall/density/coverage compare against at most this many real images.
MAX_REAL_FEATURES = 10_000
_EVAL_BATCH = 1024
# The metrics' space: the real features whitened, eigenvalues floored at this share of
# the largest (see whitening()).
WHITEN_FLOOR = 1e-3


def cache_dir() -> Path:
    """The folder of cached feature nets and statistics (``GANSWEEP_CACHE``, read per call)."""
    root = os.environ.get("GANSWEEP_CACHE") or Path.home() / ".cache" / "gansweep"
    return Path(root) / "feature_nets"


def _width(size: int) -> int:
    """Channels at a resolution: fewer at high resolution, more at low, so every stage
    costs about the same and a 64x64 image costs only a few times what an 8x8 one does."""
    return min(2 * WIDTH, max(WIDTH // 2, WIDTH * 16 // size))


class FeatureNet(nn.Module):
    """A small CNN classifier whose penultimate layer is the feature space.

    x [N, C, H, W] in [-1, 1] -> features [N, FEATURE_DIM] -> logits [N, num_classes]
    (the data set's classes, or the four quarter turns of the rotation task).
    Stride-2 stages halve the resolution until it is at most 4x4 (8x8: one stage, 32x32:
    three, 64x64: four), so any square size from 8 up works with the same code; the last
    map is flattened, not averaged, because where a stroke is matters for a digit.
    """

    # A buffer (registered in __init__); declared so type checkers see a Tensor rather
    # than nn.Module.__getattr__'s Tensor | Module.
    test_accuracy: Tensor

    def __init__(self, in_channels: int, image_size: int, num_classes: int):
        super().__init__()
        channels, size = _width(image_size), image_size
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 3, padding=1), nn.ReLU()]
        while size > 4:
            size = math.ceil(size / 2)
            out = _width(size)
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.ReLU()]
            channels = out
        layers += [nn.Flatten(), nn.Linear(channels * size * size, FEATURE_DIM), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(FEATURE_DIM, num_classes)
        # Saved with the weights so every trial can report how good its yardstick is.
        self.register_buffer("test_accuracy", torch.tensor(float("nan")))

    def features(self, x: Tensor) -> Tensor:
        """x [N, C, H, W] -> [N, FEATURE_DIM] (non-negative: the ReLU of the last hidden layer)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """x [N, C, H, W] -> logits [N, num_classes]."""
        return self.head(self.features(x))

    @torch.no_grad()
    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x [N, C, H, W] -> (features [N, FEATURE_DIM], logits [N, K]), in batches."""
        device = next(self.parameters()).device
        feats, logits = [], []
        for chunk in x.split(_EVAL_BATCH):
            f = self.features(chunk.to(device, torch.float32))
            feats.append(f)
            logits.append(self.head(f))
        return torch.cat(feats), torch.cat(logits)


ROTATIONS = 4  # the self-supervised task: which of 0, 90, 180, 270 degrees an image was turned


def task(data: ImageData) -> str:
    """What the feature net learns: "classes" where the data has labels, else "rotation"
    (Gidaris et al. 2018): predict which of four quarter turns an image was given, a task
    that needs no labels and that a net solves only by learning what upright images of
    this data look like."""
    return "classes" if data.labelled else "rotation"


def _outputs(data: ImageData) -> int:
    return data.num_classes if data.labelled else ROTATIONS


def _check_shape(data: ImageData) -> None:
    """Raise ValueError unless the feature net takes ``data``'s images (square, >= 8 px)."""
    c, h, w = data.shape
    if h != w or h < 8:
        raise ValueError(f"the feature net needs square images of at least 8x8, got {h}x{w}")


def rotated(x: Tensor) -> tuple[Tensor, Tensor]:
    """x [N, C, S, S] -> (its four quarter turns [4N, C, S, S], which turn each is [4N])."""
    turns = torch.cat([torch.rot90(x, k, dims=(2, 3)) for k in range(ROTATIONS)])
    return turns, torch.arange(ROTATIONS).repeat_interleave(len(x))


def _fingerprint(data: ImageData) -> str:
    """A short hash of the data's content, so two data sets sharing a name (two users'
    ``image_folder``s, say) never share a cached net. Hashes every label and an evenly
    spaced subset of at most 1,024 training images: cheap even for CIFAR-10."""
    h = hashlib.sha256()
    h.update(repr((data.shape, data.num_classes, len(data.train_x), len(data.test_x))).encode())
    step = max(1, len(data.train_x) // 1024)
    h.update(data.train_x[::step].detach().cpu().float().contiguous().numpy().tobytes())
    if data.labelled and data.train_y is not None:
        h.update(data.train_y.detach().cpu().long().contiguous().numpy().tobytes())
    return h.hexdigest()[:12]


def cache_key(data: ImageData) -> str:
    """The file stem of a data set's cached net: version, name, task, shape, content hash."""
    shape = "x".join(str(s) for s in data.shape)
    return f"v{FEATURE_NET_VERSION}-{data.name}-{task(data)}-{shape}-{_fingerprint(data)}"


def _atomic_save(obj: object, path: Path) -> None:
    """torch.save through the one atomic writer: readers never see a partial file."""
    atomic_write(path, lambda f: torch.save(obj, f))


@torch.no_grad()
def _accuracy(net: FeatureNet, data: ImageData) -> float:
    """The net's accuracy on the test split: its classes, or its images' four turns."""
    if data.labelled:
        assert data.test_y is not None  # labelled: both splits have labels
        x, y = data.test_x, data.test_y
    else:
        x, y = rotated(data.test_x.detach().cpu())
    _, logits = net.features_and_logits(x)
    return (logits.argmax(1).cpu() == y.cpu()).float().mean().item()


def train_feature_net(data: ImageData) -> FeatureNet:
    """Train a fresh FeatureNet on ``data``'s training split, on the CPU, deterministically:
    a classifier of its classes, or of its images' quarter turns where it has no labels.

    Returns it in eval mode with ``test_accuracy`` set (accuracy on the test split).
    The global random state is left untouched.
    """
    _check_shape(data)
    c, h, _ = data.shape
    x = data.train_x.detach().cpu().float()
    y = data.train_y.detach().cpu().long() if data.labelled and data.train_y is not None else None
    steps_per_epoch = math.ceil(len(x) / BATCH_SIZE)
    epochs = max(1, min(EPOCHS, math.ceil(MAX_STEPS / steps_per_epoch)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        net = FeatureNet(c, h, _outputs(data))
        opt = torch.optim.Adam(net.parameters(), lr=LR)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps_per_epoch)
        gen = torch.Generator().manual_seed(SEED)
        net.train()
        for _ in range(epochs):
            for idx in torch.randperm(len(x), generator=gen).split(BATCH_SIZE):
                # Without labels each batch is shown in all four turns, labelled by turn.
                inputs, targets = (x[idx], y[idx]) if y is not None else rotated(x[idx])
                loss = F.cross_entropy(net(inputs), targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
    net.eval().requires_grad_(False)
    net.test_accuracy.fill_(_accuracy(net, data))
    return net


@dataclass
class RealStats:
    """Feature statistics of a data set's real training images (CPU tensors), in the
    whitened feature space the metrics measure in (see ``whitening``).

    center [D], whiten [D, D] (float64): the map x -> (x - center) @ whiten from the
        net's features to the metrics' space (``transform``).
    mu [D] and sigma [D, D] (float64): mean and covariance over the whole training split.
    feats [M, D] (float32): features of M = min(MAX_REAL_FEATURES, N_train) training
        images in a fixed random order; the first n rows are a fixed random subset of n.
    order [M] (long): the training-split indices of those images (same order).
    """

    center: Tensor
    whiten: Tensor
    mu: Tensor
    sigma: Tensor
    feats: Tensor
    order: Tensor

    def transform(self, feats: Tensor) -> Tensor:
        """The net's features [N, D] -> the metrics' whitened space [N, D] (float64)."""
        return (feats.detach().cpu().double() - self.center) @ self.whiten


def whitening(sigma: Tensor) -> Tensor:
    """The symmetric whitening map [D, D] of the real features' covariance sigma, with its
    eigenvalues floored at WHITEN_FLOOR times the largest.

    Why: in the classifier's raw features a few directions carry most of the variance
    (the class identity), and the directions real images barely vary in (units they
    never switch on) count for almost nothing, yet that is exactly where noise, flat
    grey and an untrained generator's blobs differ from every real image. Measured on
    digits (tests/trainables/test_image_metrics.py, the canonical sets): uniform noise
    had precision 0.24 and a 30-step GAN 0.89 in the raw space, 0.0 and 0.18 here, while
    real held-out images keep precision, recall and coverage above 0.95. The floor
    keeps the near-empty directions from being amplified without bound.
    """
    evals, evecs = torch.linalg.eigh(sigma.double())
    evals = evals.clamp_min(WHITEN_FLOOR * evals.max().item())
    return (evecs * evals.rsqrt()) @ evecs.T


def real_order(n_train: int) -> Tensor:
    """The fixed random order (seed 0) in which the real subsets take training images."""
    gen = torch.Generator().manual_seed(SEED)
    return torch.randperm(n_train, generator=gen)[:MAX_REAL_FEATURES]


# In-process caches, keyed by cache_key(data). Nets and statistics live on the CPU.
_NETS: dict[str, FeatureNet] = {}
_STATS: dict[str, RealStats] = {}


def get_feature_net(data: ImageData) -> FeatureNet:
    """The data set's feature net (CPU, eval mode): from memory, else disk, else trained.

    Raises ValueError for non-square images or images under 8x8.
    """
    _check_shape(data)
    key = cache_key(data)
    if key in _NETS:
        return _NETS[key]
    path = cache_dir() / f"{key}.pt"
    c, h, _ = data.shape
    net: FeatureNet | None = None
    if path.exists():
        try:
            with torch.random.fork_rng(devices=[]):  # init draws numbers; keep them private
                net = FeatureNet(c, h, _outputs(data))
            net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            net.eval().requires_grad_(False)
        except Exception as err:  # a damaged or foreign file: rebuild it
            warnings.warn(f"ignoring unreadable feature net cache {path}: {err}", stacklevel=2)
            net = None
    if net is None:
        net = train_feature_net(data)
        _atomic_save(net.state_dict(), path)
    _NETS[key] = net
    return net


def get_real_stats(data: ImageData) -> RealStats:
    """The training split's feature statistics: from memory, else disk, else computed."""
    net = get_feature_net(data)
    key = cache_key(data)
    if key in _STATS:
        return _STATS[key]
    path = cache_dir() / f"{key}.real.pt"
    stats: RealStats | None = None
    if path.exists():
        try:
            stats = RealStats(**torch.load(path, map_location="cpu", weights_only=True))
        except Exception as err:
            warnings.warn(f"ignoring unreadable statistics cache {path}: {err}", stacklevel=2)
            stats = None
    if stats is None:
        x = data.train_x.detach().cpu()
        raw, _ = net.features_and_logits(x)
        center = raw.double().mean(0)
        whiten = whitening(torch.cov(raw.double().T))
        feats = (raw.double() - center) @ whiten
        order = real_order(len(x))
        stats = RealStats(
            center=center,
            whiten=whiten,
            mu=feats.mean(0),
            sigma=torch.cov(feats.T),
            feats=feats[order].float(),
            order=order,
        )
        _atomic_save(vars(stats), path)
    _STATS[key] = stats
    return stats
