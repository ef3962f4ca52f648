"""The sweep's driver lock (records/driver_lock.py) with real files and real processes: one
holder at a time, a dead holder on this host replaced, a silent one only with --force, a
live one never; the heartbeat moves; a new sweep's name is claimed once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gansweep.records import driver_lock
from gansweep.records.driver_lock import (
    LOCK_FILE,
    DriverLock,
    DriverLockError,
    claim_new,
    holder_state,
    read_holder,
)
from gansweep.records.manifest import MANIFEST_FILE

HOLD = """
import sys, time
from gansweep.records.driver_lock import DriverLock
DriverLock(sys.argv[1], command="gansweep resume held").acquire()
print("held", flush=True)
time.sleep(600)
"""


def hold_in_child(folder: Path) -> subprocess.Popen:
    """A real other process that takes the lock and keeps it until killed."""
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def write_holder(folder: Path, **changes: object) -> None:
    """A lock file as another host's driver would have left it."""
    now = time.time()
    holder = dict(
        host="other-host", pid=4242, token="t", command="gansweep sweep", started=now,
        heartbeat=now,
    )  # fmt: skip
    (folder / LOCK_FILE).write_text(json.dumps({**holder, **changes}))


def test_a_second_driver_is_refused_and_told_who_holds_the_lock(tmp_path):
    child = hold_in_child(tmp_path)
    try:
        with pytest.raises(DriverLockError) as refused:
            DriverLock(tmp_path).acquire(force=True)  # force never beats a live driver
        assert f":{child.pid}" in str(refused.value)
        assert "gansweep resume held" in str(refused.value)
    finally:
        child.kill()
        child.wait()


def test_the_lock_of_a_killed_driver_on_this_host_is_taken_without_force(tmp_path):
    child = hold_in_child(tmp_path)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    held = read_holder(tmp_path)
    assert held is not None and held.pid == child.pid and holder_state(held) == "dead"
    lock = DriverLock(tmp_path).acquire()
    mine = read_holder(tmp_path)
    assert mine is not None and mine.pid == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
    assert not list(tmp_path.glob(f"{LOCK_FILE}.*"))  # the broken lock is gone too


def test_a_silent_driver_on_another_host_needs_force_and_a_live_one_refuses_it(tmp_path):
    write_holder(tmp_path, heartbeat=time.time() - driver_lock.STALE_S - 5)
    with pytest.raises(DriverLockError, match="--force") as refused:
        DriverLock(tmp_path).acquire()
    assert "other-host:4242" in str(refused.value)
    with DriverLock(tmp_path).acquire(force=True):
        held = read_holder(tmp_path)
        assert held is not None and held.pid == os.getpid()

    write_holder(tmp_path)  # heartbeat now: it may well be running over there
    with pytest.raises(DriverLockError, match="being driven by"):
        DriverLock(tmp_path).acquire(force=True)


def test_an_unreadable_lock_counts_as_held(tmp_path):
    (tmp_path / LOCK_FILE).write_text('{"host": "half-writ')
    with pytest.raises(DriverLockError):
        DriverLock(tmp_path).acquire()


def test_the_heartbeat_moves_and_stops_when_another_driver_took_over(tmp_path, monkeypatch):
    monkeypatch.setattr(driver_lock, "HEARTBEAT_S", 0.05)
    lock = DriverLock(tmp_path).acquire()
    first = read_holder(tmp_path)
    assert first is not None
    time.sleep(0.3)
    later = read_holder(tmp_path)
    assert later is not None and later.heartbeat > first.heartbeat
    assert later.token == first.token

    write_holder(tmp_path)  # taken over (--force elsewhere): ours must not overwrite it
    time.sleep(0.3)
    assert lock.beat() is False
    now = read_holder(tmp_path)
    assert now is not None and now.host == "other-host"
    lock.release()  # and releasing leaves the other driver's lock alone
    assert (tmp_path / LOCK_FILE).exists()


RACE = """
import os, sys, time
from gansweep.records.driver_lock import DriverLockError, claim_new
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
try:
    claim_new(sys.argv[1])
    print("won", flush=True)
    time.sleep(2.0)  # hold it while the others try
except DriverLockError as err:
    print("refused", err, flush=True)
"""


def test_of_sweeps_started_at_once_with_one_name_exactly_one_claims_it(tmp_path):
    folder = tmp_path / "sweeps" / "same-name"
    start = time.time() + 3.0  # all four processes are up by then, and start together
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(folder), str(start)],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    outcomes = [racer.communicate(timeout=60)[0].split()[0] for racer in racers]
    assert sorted(outcomes) == ["refused", "refused", "refused", "won"]


def test_a_folder_with_a_manifest_is_not_claimed_but_a_failed_start_is(tmp_path):
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "driver.log").write_text("could not start\n")
    lock = claim_new(failed)
    assert read_holder(failed) is not None
    lock.release()

    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / MANIFEST_FILE).write_text("{}")
    with pytest.raises(DriverLockError, match="gansweep resume taken"):
        claim_new(taken)
    assert not (taken / LOCK_FILE).exists()
