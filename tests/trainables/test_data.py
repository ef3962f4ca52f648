"""Data sets: the mixtures' geometry, digits, and clear errors where data is missing."""

import pytest
import torch

from gansweep.trainables.data import DATASETS, DataUnavailableError, ImageData, load_dataset


def test_ring8_is_eight_modes_on_the_unit_circle():
    data = load_dataset("ring8")
    assert data.shape == (2,) and data.sigma == 0.01
    torch.testing.assert_close(data.modes.norm(dim=1), torch.ones(8))
    x, labels = data.sample(10_000, torch.Generator().manual_seed(0))
    assert labels is None
    torch.testing.assert_close(x.norm(dim=1).mean(), torch.tensor(1.0), atol=1e-3, rtol=0)


def test_grid25_is_the_five_by_five_grid():
    data = load_dataset("grid25")
    assert data.sigma == 0.05 and len(data.modes) == 25
    assert sorted(set(data.modes[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    x, _ = data.sample(20_000, torch.Generator().manual_seed(0))
    nearest = torch.cdist(x, data.modes).argmin(dim=1)
    offsets = x - data.modes[nearest]
    torch.testing.assert_close(offsets.std(dim=0), torch.full((2,), 0.05), atol=2e-3, rtol=0)


def test_sampling_is_reproducible_from_the_generator():
    data = load_dataset("ring8")
    a, _ = data.sample(5, torch.Generator().manual_seed(3))
    b, _ = data.sample(5, torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b)


def test_digits_are_labelled_images_in_the_unit_range():
    data = load_dataset("digits")
    assert isinstance(data, ImageData)
    assert data.shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.train_x) + len(data.test_x) == 1797
    assert data.train_x.min() == -1.0 and data.train_x.max() == 1.0
    x, y = data.sample(16, torch.Generator().manual_seed(0))
    assert x.shape == (16, 1, 8, 8) and y.shape == (16,)


def test_digits_resize():
    assert load_dataset("digits", image_size=32).shape == (1, 32, 32)


def test_copies_from_the_cache_are_independent():
    a = load_dataset("ring8")
    a.modes = a.modes * 0
    assert load_dataset("ring8").modes.abs().sum() > 0


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_torchvision_sets_fail_clearly_when_offline(name, tmp_path):
    """No network here: the error says where the files go and how to provide them.
    (On a machine with internet access the same call downloads the data.)"""
    try:
        data = load_dataset(name, data_path=str(tmp_path / "empty"))
    except DataUnavailableError as err:
        message = str(err)
        assert f"data set {name!r} is not in" in message and "data_path" in message
        assert list(tmp_path.iterdir()) == []  # the failed download left no folders
    else:  # pragma: no cover - only where the internet is reachable
        assert data.num_classes == 10


def test_a_failed_download_into_an_existing_folder_removes_only_what_it_made(tmp_path):
    (tmp_path / "mine.txt").write_text("the user's")
    (tmp_path / "MNIST").mkdir()
    try:
        load_dataset("mnist", data_path=str(tmp_path))
    except DataUnavailableError:
        assert sorted(p.name for p in tmp_path.rglob("*")) == ["MNIST", "mine.txt"]


def _png_folder(root, layout: dict[str, int]) -> str:
    """layout: sub-folder ("" for the top) -> how many small PNGs to write there."""
    from PIL import Image

    for sub, count in layout.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.new("RGB", (12, 12), color=(20 * i, 90, 200)).save(root / sub / f"{i}.png")
    return str(root)


@pytest.mark.parametrize(
    "layout",
    [{"": 6}, {"circles": 6}, {"": 3, "cats": 3}, {"all/part1": 3, "all/part2": 3}],
    ids=["flat", "one sub-folder", "images at the top", "one folder of folders"],
)
def test_a_folder_without_class_folders_is_unlabelled(tmp_path, layout):
    data = load_dataset("image_folder", data_path=_png_folder(tmp_path, layout), image_size=8)
    assert isinstance(data, ImageData)
    assert not data.labelled and data.num_classes == 0 and data.train_y is None
    assert len(data.train_x) + len(data.test_x) == 6 and data.shape == (3, 8, 8)
    with pytest.raises(DataUnavailableError, match="conditional=true needs labelled images"):
        load_dataset("image_folder", str(tmp_path), 8, need_labels="conditional=true")


def test_an_unreadable_image_is_named_when_the_folder_opens(tmp_path):
    folder = _png_folder(tmp_path, {"cats": 2, "dogs": 2})
    (tmp_path / "dogs" / "fake.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataUnavailableError, match="fake.jpg' is not a readable image"):
        load_dataset("image_folder", data_path=folder, image_size=8)


def test_image_folder_needs_a_path(tmp_path):
    with pytest.raises(DataUnavailableError, match="needs data_path"):
        load_dataset("image_folder")
    with pytest.raises(DataUnavailableError, match="is not a folder"):
        load_dataset("image_folder", data_path=str(tmp_path / "missing"))


def test_image_folder_reads_a_users_images(tmp_path):
    from PIL import Image

    for label in ("cats", "dogs"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.new("RGB", (20, 16), color=(40 * i, 100, 200)).save(tmp_path / label / f"{i}.png")
    data = load_dataset("image_folder", data_path=str(tmp_path), image_size=16)
    assert data.shape == (3, 16, 16) and data.num_classes == 2 and data.labelled
    assert len(data.train_x) + len(data.test_x) == 10


def test_unknown_dataset_lists_the_valid_ones():
    with pytest.raises(KeyError, match=", ".join(DATASETS)):
        load_dataset("celeba")
