"""Files every layer writes or reads: one atomic writer and one YAML reader.

The bottom of the package: it imports nothing from gansweep.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml


def _mode_for(path: Path) -> int:
    """An existing file keeps its own mode (`export -o` over a 0600 file leaves it 0600);
    a new one gets what open() would give it: 0666 less the process's umask."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere the only way to read it is
    to set it and put it back, which for an instant holds for every thread."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        status = Path("/proc/self/status").read_text().splitlines()
        return int(next(line for line in status if line.startswith("Umask:")).split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file through `write(file)` into a temporary file in the same folder, then
    rename it into place: a crash leaves the old file or the new one, never half of one,
    and a reader never sees a partial file. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename, so a power cut cannot empty it
        # mkstemp makes it private (0600): give it the mode the file has or would have.
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
        _fsync_folder(path.parent)  # the rename itself
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; nothing where a folder cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


class YamlLoader(yaml.SafeLoader):
    """Safe YAML, plus exponents without a dot (``1e-4``) read as floats, as in YAML 1.2.

    PyYAML follows YAML 1.1, where ``1e-4`` is the *string* "1e-4": a trap for learning
    rates, the very numbers configs and search spaces are full of.
    """


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def load_yaml(text: str) -> Any:
    """Parse YAML text with YamlLoader (safe: plain data only, never objects)."""
    return yaml.load(text, Loader=YamlLoader)  # noqa: S506 - YamlLoader is a SafeLoader
