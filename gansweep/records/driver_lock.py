"""One driver per sweep: ``<sweep folder>/driver.lock``, held by the process that runs
the sweep (`sweep`, `resume`, `replicate`, `export --register`) for as long as it runs.

Two drivers of one sweep would train the same trials into the same MLflow runs and mark
each other's Optuna trials failed, so the second one is refused, and told whom to wait
for. The lock is a file, not flock(): a sweep folder may sit on NFS, shared by drivers
on several hosts, where advisory locks are unreliable. So it is
- created with O_CREAT | O_EXCL, atomic on local file systems and on NFSv3+;
- a JSON record of who holds it (host, pid, command), plus a heartbeat the holder
  rewrites every HEARTBEAT_S seconds. A holder on this host whose pid is gone is dead
  for sure; one whose heartbeat is older than STALE_S (on any host) is presumed dead,
  and `--force` takes its lock over. The heartbeat is compared with this host's clock:
  hosts of one cluster keep time with NTP, far closer than STALE_S.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType

from gansweep.files import atomic_write_text
from gansweep.records.manifest import MANIFEST_FILE

log = logging.getLogger(__name__)

LOCK_FILE = "driver.lock"
HEARTBEAT_S = 10.0
STALE_S = 60.0  # six missed heartbeats


class DriverLockError(RuntimeError):
    """Another driver holds the sweep's lock (the message names it and what to do)."""


@dataclass
class Holder:
    """What the lock file says about the driver that holds it."""

    host: str
    pid: int
    token: str  # tells this holder's lock from a later one of the same pid
    command: str
    started: float  # time.time() on the holder's host
    heartbeat: float

    def describe(self, now: float) -> str:
        age = now - self.heartbeat
        return f"{self.command!r} ({self.host}:{self.pid}, heartbeat {age:.0f} s ago)"


def _this_command() -> str:
    """The command that holds the lock, as a user would recognise it (`gansweep resume
    NAME`, however it was started); only the subcommand and the sweep's name, never
    options, which may carry a URI."""
    words = [w for w in sys.argv[1:3] if not w.startswith("-")]
    return " ".join(["gansweep", *words])


def holder_state(holder: Holder, now: float | None = None) -> str:
    """'alive', 'dead' (its pid is gone from this host: certain) or 'stale' (no
    heartbeat for STALE_S: presumed dead, not certain: it may be a hung driver, or one
    on a host this one cannot see into)."""
    now = time.time() if now is None else now
    if driver_alive(f"{holder.host}:{holder.pid}") is False:
        return "dead"
    return "stale" if now - holder.heartbeat > STALE_S else "alive"


def driver_alive(driver: str) -> bool | None:
    """Whether the driver "<host>:<pid>" still runs: None when it runs on another host
    (it cannot be checked from here) or is not recorded."""
    host, _, pid = driver.rpartition(":")
    if not host or not pid.isdigit():
        return None
    if host != socket.gethostname():
        return None
    try:
        os.kill(int(pid), 0)  # (a pid reused since the driver died reads as alive)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def read_holder(sweep_dir: str | Path) -> Holder | None:
    """Who holds the sweep's lock; None when nobody does. A lock file that cannot be read
    (a holder writing it on a file system without atomic rename) counts as held just now,
    by an unknown driver: refusing is the safe side."""
    return _read(Path(sweep_dir) / LOCK_FILE)


def _read(path: Path) -> Holder | None:
    try:
        return Holder(**json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        now = time.time()
        return Holder("unknown host", 0, "", "an unknown driver", now, now)


class DriverLock:
    """The sweep's lock, held from acquire() to release(), with a heartbeat thread.

    A context manager: ``with DriverLock(folder).acquire(force):``.
    """

    def __init__(self, sweep_dir: str | Path, command: str | None = None) -> None:
        self.path = Path(sweep_dir) / LOCK_FILE
        self.command = command or _this_command()
        self.holder: Holder | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self, force: bool = False) -> DriverLock:
        """Take the lock, or raise DriverLockError naming its holder.

        A holder that is certainly dead (its pid is gone from this host) is replaced
        without asking: that is the driver a crash or SIGKILL left behind. A stale one
        (no heartbeat for STALE_S) is replaced only with `force`: its host may be out of
        reach rather than down. A live one never is.
        """
        for _ in range(3):  # another process may take or free the lock between our steps
            if self._create():
                self._start_heartbeat()
                return self
            holder = read_holder(self.path.parent)
            if holder is None:
                continue  # freed meanwhile: try again
            state = holder_state(holder)
            if state == "alive" or (state == "stale" and not force):
                raise DriverLockError(_refusal(self.path.parent.name, holder, state))
            log.warning("taking over the lock of %s driver %s", state, holder.describe(time.time()))
            self._break(holder)
        raise DriverLockError(
            f"could not take the lock {self.path}: other drivers keep taking it; try again"
        )

    def _create(self) -> bool:
        now = time.time()
        holder = Holder(socket.gethostname(), os.getpid(), uuid.uuid4().hex, self.command, now, now)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(asdict(holder)))
            f.flush()
            os.fsync(f.fileno())
        self.holder = holder
        return True

    def _break(self, holder: Holder) -> None:
        """Move a dead holder's lock aside. rename() is atomic, so of two drivers taking
        over at once only one moves it; the other finds the new lock when it retries."""
        aside = self.path.with_name(f"{LOCK_FILE}.broken-{holder.host}-{holder.pid}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        now = _read(aside)  # what we moved: was it still theirs?
        if now is not None and now.token != holder.token:
            # A third driver took the lock between our read and our rename: give it back.
            os.replace(aside, self.path)
        else:
            aside.unlink(missing_ok=True)

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="gansweep-lock", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self.beat():
                    return
            except OSError as err:  # a shared file system that hiccups: try next beat
                log.warning("could not write the heartbeat of %s: %s", self.path, err)

    def beat(self) -> bool:
        """Rewrite the heartbeat; False (and an error in the log) if the lock is no longer
        ours: another driver took it over with --force while this one was silent."""
        assert self.holder is not None
        current = read_holder(self.path.parent)
        if current is None or current.token != self.holder.token:
            log.error("this driver's lock %s was taken over by %s", self.path, current)
            return False
        self.holder.heartbeat = time.time()
        atomic_write_text(self.path, json.dumps(asdict(self.holder)))
        return True

    def release(self) -> None:
        """Stop the heartbeat and remove the lock, if it is still ours."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if self.holder is None:
            return
        current = read_holder(self.path.parent)
        if current is not None and current.token == self.holder.token:
            self.path.unlink(missing_ok=True)
        self.holder = None

    def __enter__(self) -> DriverLock:
        if self.holder is None:
            self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _refusal(name: str, holder: Holder, state: str) -> str:
    described = holder.describe(time.time())
    if state == "stale":
        return (
            f"sweep {name!r} is locked by {described}: it looks dead but cannot be checked "
            f"from {socket.gethostname()}; if it is, take the lock over with --force"
        )
    return (
        f"sweep {name!r} is being driven by {described}: wait for it to end, or stop it "
        "(Ctrl-C, or SIGTERM to that pid) and run this again"
    )


def claim_new(sweep_dir: str | Path) -> DriverLock:
    """`gansweep sweep --name X`: make the sweep's folder and take its lock, or raise
    DriverLockError. Two sweeps started with one name at once: one makes the folder
    (mkdir without exist_ok is atomic) and the other is refused. A folder that exists
    without a manifest is what a failed start left: it is claimed through its lock."""
    folder = Path(sweep_dir)
    folder.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        folder.mkdir()
    lock = DriverLock(folder).acquire()
    if (folder / MANIFEST_FILE).exists():  # another `sweep` got there first and finished
        lock.release()
        raise DriverLockError(
            f"sweep {folder.name!r} already exists in {folder.parent}: continue it with "
            f"`gansweep resume {folder.name}` or choose another --name"
        )
    return lock
