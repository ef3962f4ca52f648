"""files.atomic_write: a whole file or the old one, with the mode the file has or
would have (never widened, as `export -o` over a 0600 file once was)."""

import os
import stat

import pytest

from gansweep.files import atomic_write_text


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "best.yaml"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o600


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_new_file_gets_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        path = atomic_write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(previous)
    assert mode(path) == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["new.txt"]  # no temporary file left
