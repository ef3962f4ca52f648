"""Training data: the DATASETS registry and the two shapes data comes in.

Every data set is loaded into memory once and then sampled with an explicit
``torch.Generator``: the engine owns that generator and saves its state in checkpoints,
which is what makes a resumed run draw exactly the batches the uninterrupted run would.

- ``MixtureData``: 2-D Gaussian mixtures (``ring8``, ``grid25``), the standard
  mode-collapse benchmarks. Fresh samples every batch, so there is no finite train set.
- ``ImageData``: images scaled to [-1, 1], shape (C, H, W), with a fixed train/test split.
  ``digits`` ships with scikit-learn; ``mnist``, ``fashion_mnist`` and ``cifar10`` come
  through torchvision; ``image_folder`` reads a user's own folder.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor


class DataUnavailableError(RuntimeError):
    """A data set cannot be loaded here (offline, missing files, empty folder)."""


def default_data_root() -> Path:
    """Where torchvision data sets live unless ``data_path`` says otherwise."""
    return Path(os.environ.get("GANSWEEP_DATA", Path.home() / ".cache" / "gansweep" / "data"))


@dataclass
class MixtureData:
    """A mixture of equal-weight isotropic 2-D Gaussians.

    modes: [K, 2] component means; sigma: the shared standard deviation.
    """

    name: str
    modes: Tensor
    sigma: float
    kind: str = "vector"
    num_classes: int = 0
    labelled: bool = False

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.modes.shape[1],)

    def to(self, device: torch.device) -> MixtureData:
        self.modes = self.modes.to(device)
        return self

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """n points [n, 2] drawn from the mixture; no labels. Drawn on the generator's
        device, which is the data's."""
        which = torch.randint(len(self.modes), (n,), generator=generator, device=generator.device)
        noise = torch.randn(n, self.modes.shape[1], generator=generator, device=generator.device)
        return self.modes[which] + self.sigma * noise, None


@dataclass
class ImageData:
    """Images in [-1, 1] with shape (C, H, W); labels in [0, num_classes) or None."""

    name: str
    train_x: Tensor
    train_y: Tensor | None
    test_x: Tensor
    test_y: Tensor | None
    num_classes: int
    kind: str = "image"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.train_x.shape[1:])

    @property
    def labelled(self) -> bool:
        """Whether the images have classes (two or more) to condition on or classify."""
        return self.num_classes >= 2 and self.train_y is not None and self.test_y is not None

    def to(self, device: torch.device) -> ImageData:
        self.train_x = self.train_x.to(device)
        self.train_y = None if self.train_y is None else self.train_y.to(device)
        self.test_x = self.test_x.to(device)
        self.test_y = None if self.test_y is None else self.test_y.to(device)
        return self

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor | None]:
        """A batch of n training images [n, C, H, W] (with replacement) and their labels."""
        idx = torch.randint(len(self.train_x), (n,), generator=generator, device=generator.device)
        labels = None if self.train_y is None else self.train_y[idx]
        return self.train_x[idx], labels


Dataset = MixtureData | ImageData


# --------------------------------------------------------------------------- mixtures


def ring8(**_: object) -> MixtureData:
    """8 Gaussians evenly spaced on the unit circle, sigma 0.01 (PacGAN / VEEGAN)."""
    angles = torch.arange(8, dtype=torch.float32) * (2 * math.pi / 8)
    modes = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    return MixtureData("ring8", modes, sigma=0.01)


def grid25(**_: object) -> MixtureData:
    """25 Gaussians at {-4, -2, 0, 2, 4}^2, sigma 0.05 (PacGAN / VEEGAN)."""
    axis = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    modes = torch.cartesian_prod(axis, axis)
    return MixtureData("grid25", modes, sigma=0.05)


# ----------------------------------------------------------------------------- images


def _to_unit_range(x: Tensor, max_value: float) -> Tensor:
    """Pixel values in [0, max_value] -> float32 in [-1, 1]."""
    return x.float().div(max_value).mul(2).sub(1)


def _resize(x: Tensor, size: int) -> Tensor:
    """[N, C, H, W] -> [N, C, size, size]; antialiased so downscaling does not alias."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True).clamp(-1, 1)


def digits(image_size: int | None = None, **_: object) -> ImageData:
    """scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), no download.

    A fixed 80/20 split (seed 0): the test split trains nothing, it only measures the
    feature classifier that the image metrics use.
    """
    from sklearn.datasets import load_digits  # deferred: scikit-learn takes ~1 s to import

    bunch = load_digits()
    x = _to_unit_range(torch.from_numpy(bunch.images), 16.0).unsqueeze(1)
    y = torch.from_numpy(bunch.target).long()
    x = _resize(x, image_size or 8)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_train = int(0.8 * len(x))
    tr, te = order[:n_train], order[n_train:]
    return ImageData("digits", x[tr], y[tr], x[te], y[te], num_classes=10)


def _move_into(source: Path, root: Path) -> None:
    """Move every entry of a finished download (``source``) into ``root``.

    Each entry lands with one atomic step, so another process sees a data set's folder
    either complete or not at all. Where the destination appeared meanwhile (another
    process finished first) theirs is kept and ours stays in ``source``, which the caller
    removes: a rename refuses a non-empty folder, and a file is hard-linked, which refuses
    an existing one (a rename would replace it).
    """
    root.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        target = root / entry.name
        try:
            if entry.is_dir():
                os.rename(entry, target)  # replaces at most an empty folder
            else:
                os.link(entry, target)
        except FileExistsError:
            continue  # theirs
        except OSError:
            if target.exists():
                continue  # theirs (a rename onto a non-empty folder says ENOTEMPTY)
            if entry.is_dir():
                raise
            os.rename(entry, target)  # a file system without hard links


def _torchvision_split(cls: Callable, name: str, root: Path, train: bool):
    """One split of a torchvision data set; downloads where the network allows it.

    The download goes into a temporary folder of its own beside ``root`` (same file
    system, so the move into ``root`` is a rename) and only a complete download is moved
    there. Whatever happens, only that temporary folder is removed afterwards: never
    ``root``, a folder above it, or files that another process is writing or has written.
    """
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError:
        pass  # not on disk yet: try to download it below
    root = root.expanduser().absolute()
    staging: Path | None = None
    made = [p for p in root.parents if not p.exists()]  # deepest first
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{root.name}-download-", dir=root.parent))
        dataset = cls(str(staging), train=train, download=True)
        _move_into(staging, root)
        return dataset  # its arrays are in memory; the files it read now live in root
    except Exception as err:  # URLError, HTTPError, OSError, ...: all mean "not here"
        raise DataUnavailableError(
            f"data set {name!r} is not in {root} and could not be downloaded ({err}). "
            f"On a machine without internet access, download it elsewhere (torchvision "
            f"{cls.__name__}(root, download=True)) and copy the folder to {root}, or set "
            f"data_path to the folder that holds it (or the GANSWEEP_DATA variable)."
        ) from err
    finally:  # also on KeyboardInterrupt: a half download never outlives its process
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not root.exists():
            # A failed download leaves nothing behind, not even the folders made for it.
            # rmdir removes only an empty folder: one that another process is downloading
            # into (its own staging folder inside) stays.
            for folder in made:
                with contextlib.suppress(OSError):
                    folder.rmdir()


def _torchvision_images(cls_name: str, name: str, default_size: int):
    def load(data_path: str | None = None, image_size: int | None = None, **_: object):
        import torchvision.datasets as tvd  # deferred: only the torchvision sets need it

        cls = getattr(tvd, cls_name)
        root = Path(data_path) if data_path else default_data_root()
        splits = []
        for train in (True, False):
            ds = _torchvision_split(cls, name, root, train)
            data = torch.as_tensor(ds.data)
            # MNIST-style sets hold [N, H, W]; CIFAR holds [N, H, W, C] as numpy.
            data = data.unsqueeze(1) if data.ndim == 3 else data.permute(0, 3, 1, 2)
            x = _resize(_to_unit_range(data, 255.0), image_size or default_size)
            splits.append((x, torch.as_tensor(ds.targets).long()))
        (train_x, train_y), (test_x, test_y) = splits
        return ImageData(name, train_x, train_y, test_x, test_y, num_classes=10)

    load.__doc__ = f"torchvision {cls_name}, 10 classes, resized to {default_size}x{default_size}."
    return load


def _extensions() -> tuple[str, ...]:
    """The file extensions read as images (torchvision's list)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS  # deferred: torchvision is slow

    return tuple(IMG_EXTENSIONS)


def _image_files(folder: Path) -> list[Path]:
    """Every image file under folder (any depth), sorted; hidden files and folders skipped."""
    extensions = _extensions()
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in extensions
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _folder_classes(root: Path) -> tuple[list[Path], list[int], list[str]]:
    """(image files, their labels, class names) of a user's folder.

    Two or more sub-folders holding images and no images at the top: each sub-folder is
    a class (torchvision's ImageFolder layout). Anything else (one folder of images, one
    sub-folder, images at the top) is unlabelled: every image, no labels, no classes.
    """
    extensions = _extensions()
    top = [p for p in root.iterdir() if p.is_file() and p.suffix.lower() in extensions]
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = [(d.name, files) for d in subdirs if (files := _image_files(d))]
    if top or len(per_class) < 2:
        return _image_files(root), [], []
    files = [f for _, fs in per_class for f in fs]
    labels = [i for i, (_, fs) in enumerate(per_class) for _ in fs]
    return files, labels, [c for c, _ in per_class]


def _read_image(path: Path, size: int) -> Tensor:
    """One image file -> uint8 [3, size, size] (RGB, shorter side resized, centre crop).

    Raises DataUnavailableError naming the file when it is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError  # deferred: only image folders need them
    from torchvision.transforms import v2

    try:
        with Image.open(path) as img:
            rgb = img.convert("RGB")  # decodes the whole file: a truncated one fails here
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise DataUnavailableError(
            f"{str(path)!r} is not a readable image ({type(err).__name__}: {err}); remove "
            f"or replace it (every file with an image extension under data_path is used)"
        ) from None
    tf = v2.Compose([v2.PILToTensor(), v2.Resize(size), v2.CenterCrop(size)])
    return tf(rgb)


def image_folder(
    data_path: str | None = None, image_size: int | None = None, **_: object
) -> ImageData:
    """A user's images, RGB, 64x64 unless image_size says otherwise.

    A folder of class sub-folders (torchvision's ImageFolder layout) is labelled; a folder
    of images (or of a single sub-folder) is unlabelled, and the image metrics then use a
    self-supervised feature net (feature_net.py). Every image file is decoded here, so a
    broken one stops the run before training, by name. Loaded into memory; a fixed
    90/10 split (seed 0) holds out images that measure the feature net.
    """
    if not data_path:
        raise DataUnavailableError(
            "data set 'image_folder' needs data_path: a folder of images (one sub-folder "
            "per class if they are labelled)"
        )
    root = Path(data_path)
    if not root.is_dir():
        raise DataUnavailableError(f"data_path {data_path!r} is not a folder")
    files, labels, classes = _folder_classes(root)
    if not files:
        raise DataUnavailableError(
            f"no image files in {data_path!r} (extensions: {', '.join(_extensions())})"
        )
    size = image_size or 64
    x = _to_unit_range(torch.stack([_read_image(f, size) for f in files]), 255.0)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    n_train = max(1, int(0.9 * len(x)))
    tr, te = order[:n_train], order[n_train:]
    if len(te) == 0:  # a one-image folder: measure on the training image
        te = tr
    if not classes:
        return ImageData("image_folder", x[tr], None, x[te], None, num_classes=0)
    y = torch.tensor(labels).long()
    return ImageData("image_folder", x[tr], y[tr], x[te], y[te], num_classes=len(classes))


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DataSpec:
    """What is known about a data set before loading it (the config validates against it)."""

    kind: str  # "vector" or "image"
    labelled: bool  # whether it can have labels (an image_folder has them with class folders)
    load: Callable[..., Dataset]


DATASETS: dict[str, DataSpec] = {
    "ring8": DataSpec("vector", False, ring8),
    "grid25": DataSpec("vector", False, grid25),
    "digits": DataSpec("image", True, digits),
    "mnist": DataSpec("image", True, _torchvision_images("MNIST", "mnist", 32)),
    "fashion_mnist": DataSpec(
        "image", True, _torchvision_images("FashionMNIST", "fashion_mnist", 32)
    ),
    "cifar10": DataSpec("image", True, _torchvision_images("CIFAR10", "cifar10", 32)),
    "image_folder": DataSpec("image", True, image_folder),
}


@functools.lru_cache(maxsize=4)
def _load_cached(name: str, data_path: str | None, image_size: int | None) -> Dataset:
    return DATASETS[name].load(data_path=data_path, image_size=image_size)


def load_dataset(
    name: str,
    data_path: str | None = None,
    image_size: int | None = None,
    need_labels: str | None = None,
) -> Dataset:
    """The named data set on the CPU (cached per process: trials reuse one copy).

    need_labels: what needs labels (e.g. "conditional=true"), or None; raises
    DataUnavailableError if the loaded data set has none. Callers that move it to a
    device get their own shallow copy, so the cache stays on CPU.
    """
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    cached = _load_cached(name, data_path, image_size)
    if need_labels and not cached.labelled:
        raise DataUnavailableError(
            f"{need_labels} needs labelled images, but dataset {name!r}"
            f"{f' at {data_path!r}' if data_path else ''} has no classes (a folder of "
            f"images is labelled only with two or more class sub-folders); set "
            f"conditional=false, or give each class its own sub-folder"
        )
    return type(cached)(**{f: getattr(cached, f) for f in cached.__dataclass_fields__})
