"""Where a sweep's time goes: opt-in timings for the benchmarks. Unset, none of the
variables below costs more than a few clock readings, and nothing is written.

- GANSWEEP_PROFILE=<file> (benchmarks/sweep_efficiency.py): the driver and every trial
  (Ray's local workers inherit the driver's environment) append one JSON line each to it
  when they end, with wall-clock start and end, the seconds spent in each named phase,
  and the CPU seconds the process used in it (all its threads: a phase with less CPU
  than wall time waited, or other processes held the core).
- GANSWEEP_PROFILE_CALLS=1 (benchmarks/driver_scale.py): the driver appends one JSON
  line per call of a few calls that run once per trial or per poll (the searcher's
  suggest, the live view's read of the records) to ``profile_calls.jsonl`` in the sweep
  folder: how a call's cost grows with the sweep, which per-process sums hide.
- GANSWEEP_CPROFILE=<file>: the `gansweep` command runs under cProfile (its main thread:
  Tune's loop, the searcher, the callbacks) and writes pstats to <file> when it ends.
"""

from __future__ import annotations

import cProfile
import json
import os
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PROFILE_ENV = "GANSWEEP_PROFILE"
CALLS_ENV = "GANSWEEP_PROFILE_CALLS"
CPROFILE_ENV = "GANSWEEP_CPROFILE"
CALLS_FILE = "profile_calls.jsonl"  # in the sweep folder


class Profile:
    """Seconds per phase of one process's work (the driver, or one trial)."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.start = time.time()
        self.phases: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        began, began_cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.phases[name] += time.perf_counter() - began
            self.cpu[name] += time.process_time() - began_cpu

    def write(self, **extra: Any) -> None:
        """Append this profile as one JSON line to $GANSWEEP_PROFILE (if it is set)."""
        path = os.environ.get(PROFILE_ENV)
        if not path:
            return
        record = {
            "who": self.who,
            "pid": os.getpid(),
            "start": self.start,
            "end": time.time(),
            "phases": dict(self.phases),
            "cpu": dict(self.cpu),
            **extra,
        }
        # One write() of a short line in append mode: lines of concurrent trials on one
        # machine do not interleave.
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def run_queue_s() -> float | None:
    """Seconds the calling thread has spent runnable but waiting for a core (Linux's
    /proc/thread-self/schedstat, its second field, in ns); None where there is none."""
    try:
        with open("/proc/thread-self/schedstat", encoding="ascii") as f:
            return int(f.read().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return None


class CallLog:
    """One JSON line per call to ``<folder>/profile_calls.jsonl``: which call, its number,
    when it ended, its wall seconds, the CPU seconds of the calling thread (others' work
    does not count) and the seconds it waited for a core (``queue_s``: a busy machine's
    share of the wall time; the rest of wall - cpu - queue is waiting on I/O, a lock or
    the GIL). Only where $GANSWEEP_PROFILE_CALLS was set when the log was made (else
    `call` times nothing); a CallLog pickles (Tune saves the searcher)."""

    def __init__(self, folder: str | os.PathLike[str] | None) -> None:
        on = folder is not None and os.environ.get(CALLS_ENV, "") not in ("", "0")
        self.path = os.path.join(folder, CALLS_FILE) if on and folder is not None else None
        self.counts: dict[str, int] = defaultdict(int)

    @contextmanager
    def call(self, name: str) -> Iterator[None]:
        if self.path is None:
            yield
            return
        began, began_cpu, began_queue = time.perf_counter(), time.thread_time(), run_queue_s()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - began, time.thread_time() - began_cpu
            queue = run_queue_s()
            self.counts[name] += 1
            record = {
                "call": name, "n": self.counts[name], "end": time.time(), "wall_s": wall,
                "cpu_s": cpu, "thread": threading.current_thread().name,
                "queue_s": None if queue is None or began_queue is None else queue - began_queue,
            }  # fmt: skip
            # One short line in append mode per write: the view's thread and the main
            # thread do not interleave within a line. Timing never stops a sweep (the
            # view polls before the sweep folder exists).
            try:
                with open(self.path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
            except OSError:
                pass


@contextmanager
def cprofiled() -> Iterator[None]:
    """Run the block under cProfile where $GANSWEEP_CPROFILE names a file (pstats are
    written there at the end, also when the block raises); else just run it."""
    path = os.environ.get(CPROFILE_ENV)
    if not path:
        yield
        return
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)
