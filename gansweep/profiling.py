"""Where a sweep's time goes: opt-in timings for benchmarks/sweep_efficiency.py.

Set the environment variable GANSWEEP_PROFILE to a file path before a sweep starts: the
driver and every trial (Ray's local workers inherit the driver's environment) then append
one JSON line each to it when they end, with wall-clock start and end, the seconds
spent in each named phase, and the CPU seconds the process used in it (all its threads:
a phase with less CPU than wall time waited, or other processes held the core). Unset,
a Profile only adds up a few clock readings and writes nothing.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

PROFILE_ENV = "GANSWEEP_PROFILE"


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
