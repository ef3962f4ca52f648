"""Data sets: the mixtures' geometry, digits, clear errors where data is missing, and
downloads that never remove what another process wrote."""

import threading
from pathlib import Path

import pytest
import torch

from gansweep.trainables.data import (
    DATASETS,
    DataUnavailableError,
    ImageData,
    _move_into,
    _torchvision_split,
    load_dataset,
)


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


# ------------------------------------------------- downloads (no network: a stand-in set)

FILES = ("train.bin", "test.bin", "labels.bin")


def fake_dataset(marker: bytes, fail_after: int | None = None, pause=lambda written: None):
    """A stand-in for a torchvision data set class: ``download=True`` writes FILES into
    ROOT/FakeSet one at a time (``pause(n)`` runs after the n-th, so a test can hold two
    downloads in flight), raising URLError after ``fail_after`` of them; loading reads
    the files back and fails with RuntimeError, as torchvision does, when one is missing.
    ``seen`` records every root it was given."""
    from urllib.error import URLError

    seen: list[Path] = []

    class FakeSet:
        def __init__(self, root: str, train: bool = True, download: bool = False):
            folder = Path(root) / "FakeSet"
            seen.append(Path(root))
            if download and not all((folder / f).exists() for f in FILES):
                folder.mkdir(parents=True, exist_ok=True)
                for n, name in enumerate(FILES, start=1):
                    (folder / name).write_bytes(marker)
                    pause(n)
                    if fail_after is not None and n >= fail_after:
                        raise URLError("the network is unreachable")
            if not all((folder / f).exists() for f in FILES):
                raise RuntimeError("Dataset not found. You can use download=True to download it")
            value = (folder / "train.bin").read_bytes()[0]
            self.data = torch.full((2, 28, 28), value, dtype=torch.uint8)
            self.targets = [0, 1]

    FakeSet.seen = seen  # type: ignore[attr-defined]
    return FakeSet


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its content (None for a folder)."""
    return {
        p.relative_to(root).as_posix(): (None if p.is_dir() else p.read_bytes())
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("root_exists", [True, False], ids=["into a folder", "a new folder"])
def test_a_failed_download_removes_its_own_folder_and_nothing_else(tmp_path, root_exists):
    root = tmp_path / "data"
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "theirs.bin").write_bytes(b"sibling")
    if root_exists:
        (root / "Other").mkdir(parents=True)
        (root / "Other" / "keep.bin").write_bytes(b"another set")
        (root / "FakeSet").mkdir()  # an empty leftover folder of the same name
    before = tree(tmp_path)
    fake = fake_dataset(b"A", fail_after=2)

    with pytest.raises(DataUnavailableError, match="data set 'fake' is not in"):
        _torchvision_split(fake, "fake", root, train=True)

    (_, staging) = fake.seen  # the look on disk, then the download
    assert staging.parent == tmp_path  # beside the root: the same file system
    assert staging.name.startswith(".data-download-")
    assert not staging.exists()  # it held two partial files; they went with it
    assert tree(tmp_path) == before


def test_a_download_lands_in_the_data_root_and_loads_from_there(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    fake = fake_dataset(b"\x07")
    monkeypatch.setattr(tvd, "MNIST", fake)
    root = tmp_path / "cache" / "data"  # neither folder exists yet

    data = load_dataset("mnist", data_path=str(root))

    assert tree(root) == {"FakeSet": None, **{f"FakeSet/{f}": b"\x07" for f in FILES}}
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["data"]  # no download left
    # The test split did not download again: it read the files the train split moved in.
    (_, staging, again) = fake.seen
    assert again == root and staging.parent == root.parent and staging.name != "data"
    assert isinstance(data, ImageData) and data.num_classes == 10
    assert len(data.train_x) == 2 and len(data.test_x) == 2


def run_both(first, second):
    """Run two calls on threads; {name: what it returned or raised}."""
    results: dict[str, object] = {}

    def run(name, call):
        try:
            results[name] = call()
        except Exception as err:  # noqa: BLE001 - the test inspects it
            results[name] = err

    threads = [threading.Thread(target=run, args=item) for item in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads), "a download hung"
    return results


@pytest.mark.parametrize("failure", ["fails first", "fails last"])
def test_concurrent_downloads_a_failure_leaves_the_success_in_place(tmp_path, failure):
    """Two downloads into one root at once, one of them failing (the old cleanup removed
    the first folder that had been missing, which the other download was using)."""
    root = tmp_path / "data"
    both_writing = threading.Barrier(2, timeout=10)
    done = {"ok": threading.Event(), "failing": threading.Event()}
    waits_for = {"ok": "failing", "failing": "ok"}
    order = ["failing", "ok"] if failure == "fails first" else ["ok", "failing"]

    def pause(name):
        def step(written: int) -> None:
            if written == 1:  # both have partial files on disk before either goes on
                both_writing.wait()
                if order[1] == name:
                    assert done[waits_for[name]].wait(10)

        return step

    ok = fake_dataset(b"A", pause=pause("ok"))
    failing = fake_dataset(b"B", fail_after=2, pause=pause("failing"))

    def call(name, cls):
        def go():
            try:
                return _torchvision_split(cls, "fake", root, train=True)
            finally:
                done[name].set()

        return name, go

    results = run_both(call("ok", ok), call("failing", failing))

    assert isinstance(results["failing"], DataUnavailableError), results
    assert not isinstance(results["ok"], Exception), results
    assert tree(root) == {"FakeSet": None, **{f"FakeSet/{f}": b"A" for f in FILES}}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]  # both temporary folders gone


def test_when_another_download_finished_first_its_files_are_kept(tmp_path):
    root = tmp_path / "data"
    first_done = threading.Event()
    both_writing = threading.Barrier(2, timeout=10)

    def late(written: int) -> None:
        if written == 1:
            both_writing.wait()
        if written == len(FILES):
            assert first_done.wait(10)  # finish only once the other one is in place

    def early(written: int) -> None:
        if written == 1:
            both_writing.wait()

    first, second = fake_dataset(b"A", pause=early), fake_dataset(b"B", pause=late)

    def run_first():
        try:
            return _torchvision_split(first, "fake", root, train=True)
        finally:
            first_done.set()

    results = run_both(
        ("first", run_first), ("second", lambda: _torchvision_split(second, "fake", root, True))
    )

    assert int(results["first"].data[0, 0, 0]) == ord("A")
    assert int(results["second"].data[0, 0, 0]) == ord("B")  # its own download, in memory
    assert tree(root) == {"FakeSet": None, **{f"FakeSet/{f}": b"A" for f in FILES}}
    assert [p.name for p in tmp_path.iterdir()] == ["data"]


def test_moving_into_place_keeps_what_is_there(tmp_path):
    ours, root = tmp_path / "ours", tmp_path / "root"
    for name in ("full", "empty", "new"):
        (ours / name).mkdir(parents=True)
        (ours / name / "x").write_bytes(b"ours")
    (ours / "archive.tar").write_bytes(b"ours")
    (ours / "fresh.tar").write_bytes(b"ours")
    (root / "full").mkdir(parents=True)
    (root / "full" / "y").write_bytes(b"theirs")
    (root / "empty").mkdir()
    (root / "archive.tar").write_bytes(b"theirs")

    _move_into(ours, root)

    assert tree(root) == {
        "archive.tar": b"theirs",
        "empty": None,
        "empty/x": b"ours",  # an empty folder holds nothing to keep
        "fresh.tar": b"ours",
        "full": None,
        "full/y": b"theirs",
        "new": None,
        "new/x": b"ours",
    }


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
