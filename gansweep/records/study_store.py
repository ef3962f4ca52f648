"""Where a sweep's Optuna study lives: a journal file in the sweep folder (Optuna's
JournalFileBackend, ``optuna.log``), or, for a sweep made before the journal, Optuna's RDB
storage on a SQLite file (``optuna.db``). The manifest's ``study_file`` says which.

Why the journal: the driver asks the study for a trial at every trial's end. With 32
trials running, one suggest cost (p50 / p99) 58 / 303 ms at 1,000 finished trials and
78 / 125 ms at 2,000 on the RDB storage (Optuna's cache reads every running trial back
at each of its reads, and SQLite commits each parameter), against 12 / 19 and 28 / 46 ms
on the journal, which keeps the study in memory and reads only the lines appended since
(benchmarks/suggest_cost.py; docs/results.md, "The driver at scale").

The one cost of the journal: a driver killed while appending leaves a torn last line,
and Optuna refuses a file with a torn line that is followed by another. The driver that
opens the study to write (one per sweep: records/driver_lock.py) cuts that line first
(repair_journal). Readers (the report, tests) read a torn last line as absent.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # deferred at run time: `ls` and `status` never load Optuna
    import optuna

    from gansweep.records.manifest import Manifest

log = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".log"


def is_journal(path: str | Path) -> bool:
    return str(path).endswith(JOURNAL_SUFFIX)


def repair_journal(path: Path) -> int:
    """Cut a torn last line (a driver killed mid-append) off the journal at `path`, and
    remove the append lock such a driver leaves (Optuna would wait out its 30 s grace
    period). Only for the sweep's one driver, before it opens the study. Returns the
    bytes cut."""
    lock = Path(f"{path}.lock")
    if lock.is_symlink() or lock.exists():
        lock.unlink()
    if not path.is_file():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # Read back in blocks to the last line end: the torn line is at most one batch.
        end, block = size, 1 << 16
        while end > 0:
            start = max(end - block, 0)
            f.seek(start)
            at = f.read(end - start).rfind(b"\n")
            if at >= 0:
                keep = start + at + 1
                break
            end = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    log.warning(
        "cut a torn last record (%d bytes) off the Optuna journal %s: the driver that "
        "wrote it died mid-write; the trial it was for goes back to the queue",
        size - keep, path,
    )  # fmt: skip
    return size - keep


def study_location(manifest: Manifest) -> str:
    """The study's storage as optuna-dashboard takes it: the journal's path, or the
    SQLite URL of an older sweep's optuna.db."""
    path = manifest.study_path
    return str(path) if is_journal(path) else f"sqlite:///{path}"


def open_study_storage(manifest: Manifest, *, writer: bool = False) -> optuna.storages.BaseStorage:
    """The sweep's study storage. `writer`: the sweep's driver, which repairs the journal
    first. A reader must check that the file exists: opening creates it."""
    return open_study_file(manifest.study_path, writer=writer)


def open_study_file(path: Path, *, writer: bool = False) -> optuna.storages.BaseStorage:
    """A study file's storage: a journal (``*.log``), else Optuna's RDB on SQLite."""
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    if not is_journal(path):
        return RDBStorage(f"sqlite:///{path}")
    if writer:
        repair_journal(path)
    return JournalStorage(JournalFileBackend(str(path)))
