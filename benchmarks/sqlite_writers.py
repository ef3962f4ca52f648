"""How many trials can write into the embedded SQLite store at once: N processes, each
one trial's writer (records.write.TrialRun, the code a trial runs: its run looked up and
created, its params, an evaluation's metrics in one batch every `--interval` seconds,
its status and end), all into one `sqlite:///mlflow.db`, for N = `--writers`.

    python benchmarks/sqlite_writers.py                           # 8,16,32,64,128 writers
    python benchmarks/sqlite_writers.py --writers 32,64 --interval 0.5 --seconds 20

Each writer runs trials back to back for `--seconds` (a trial: `--evals` evaluations, then
its end), so the store sees what a sweep with N trials in flight writes, runs starting
and ending included, at one evaluation per `--interval` per trial. The writers are
forked from this process after MLflow is imported (so that 128 of them fit in memory)
and start together. One JSON line per N:
- writes_per_s: the evaluations written per second, against target_writes_per_s (N /
  interval): below it, the store (or the machine's CPUs) could not keep up;
- eval_p50_ms, eval_p99_ms, eval_max_ms: the wall time of one evaluation's write
  (`TrialRun.log_evaluation`, retries included); open_p99_ms and end_p99_ms, the same
  for a run's start (TrialRun()) and end (TrialRun.finish);
- retries: "tracking call failed" retries (records.store.with_retries: a locked file
  waits 0.5, 1, 2, 4 s), failed: calls that failed after the last retry (a trial that
  would have failed);
- machine_busy_share: the share of all cores busy over the run (/proc/stat): near 1, the
  CPUs, not the file's lock, set the pace.

The limit a sweep warns past (platform/sweep_input.SQLITE_WRITERS_MAX) is read from these
lines: the most writers with no retry, no failure and an evaluation's p99 under a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gansweep.records.run_format import SweepRecords, TrialIdentity
from gansweep.records.write import TrialRun, start_sweep_run

# One evaluation of a 2-D mixture trial: the metrics it logs (their count is what matters).
METRICS = (
    "distance", "modes_captured", "high_quality", "reverse_kl", "precision", "recall",
    "loss_d", "loss_g", "grad_norm_d", "grad_norm_g", "steps_per_s", "step",
)  # fmt: skip
PARAMS = {f"param_{i}": i for i in range(14)}  # a trial's config: 14 params


class RetryCounter(logging.Handler):
    """Counts the retries records.store.with_retries announces."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "tracking call failed" in record.getMessage():
            self.count += 1


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of all cores since boot, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])
    return (total - idle) / 100, total / 100


def writer(index: int, sweep: SweepRecords, opts: argparse.Namespace, start: Any, out: Any) -> None:
    """One trial slot: trials back to back until the time is up; its timings to `out`."""
    retries = RetryCounter()
    logging.getLogger("gansweep").addHandler(retries)
    logging.getLogger("gansweep").setLevel(logging.WARNING)
    timings: dict[str, list[float]] = {"open": [], "eval": [], "end": []}
    failed = 0
    start.wait()
    deadline = time.monotonic() + opts.seconds
    trial = 0
    while time.monotonic() < deadline:
        who = TrialIdentity(sweep, f"w{index:03d}_{trial:04d}", "bench")
        try:
            t = time.perf_counter()
            run = TrialRun(who, PARAMS)
            timings["open"].append(time.perf_counter() - t)
            for step in range(opts.evals):
                time.sleep(opts.interval)
                t = time.perf_counter()
                run.log_evaluation({k: 0.5 for k in METRICS}, step * 500, [])
                timings["eval"].append(time.perf_counter() - t)
            t = time.perf_counter()
            run.finish("completed")
            timings["end"].append(time.perf_counter() - t)
        except Exception:  # failed after its retries: a trial that would have failed
            failed += 1
        trial += 1
    out.put({"timings": timings, "retries": retries.count, "failed": failed})


def ms(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def run_point(n: int, opts: argparse.Namespace, folder: Path) -> dict[str, Any]:
    uri = f"sqlite:///{folder / f'writers-{n}.db'}"
    experiment_id, parent = start_sweep_run(uri, f"writers-{n}", {}, None)
    sweep = SweepRecords(uri, experiment_id, parent, f"writers-{n}")
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=writer, args=(i, sweep, opts, start, out)) for i in range(n)]
    for p in procs:
        p.start()
    time.sleep(1.0)  # all forked and waiting
    busy0, total0 = machine_busy_s()
    t0 = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    busy1, total1 = machine_busy_s()
    for p in procs:
        p.join()
    timings = {k: [x for r in results for x in r["timings"][k]] for k in ("open", "eval", "end")}
    return {
        "benchmark": "sqlite_writers",
        "writers": n,
        "interval_s": opts.interval,
        "seconds": round(wall, 1),
        "trials": len(timings["end"]),
        "evaluations": len(timings["eval"]),
        "writes_per_s": round(len(timings["eval"]) / wall, 1),
        "target_writes_per_s": round(n / opts.interval, 1),
        "eval_p50_ms": ms(timings["eval"], 0.50),
        "eval_p99_ms": ms(timings["eval"], 0.99),
        "eval_max_ms": ms(timings["eval"], 1.0),
        "open_p99_ms": ms(timings["open"], 0.99),
        "end_p99_ms": ms(timings["end"], 0.99),
        "retries": sum(r["retries"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "machine_busy_share": round((busy1 - busy0) / (total1 - total0), 2),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writers", default="8,16,32,64,128", help="comma-separated")
    parser.add_argument("--interval", type=float, default=1.0, help="s between evaluations")
    parser.add_argument("--evals", type=int, default=4, help="evaluations per trial")
    parser.add_argument("--seconds", type=float, default=30.0, help="per writer count")
    parser.add_argument("--folder", type=Path, default=None, help="kept (default: temporary)")
    opts = parser.parse_args(argv)
    try:
        counts = [int(x) for x in opts.writers.split(",")]
    except ValueError:
        sys.exit(f"--writers: comma-separated whole numbers, not {opts.writers!r}")
    with tempfile.TemporaryDirectory(prefix="gansweep-writers-") as tmp:
        folder = opts.folder or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in counts:
            print(json.dumps(run_point(n, opts, folder)), flush=True)


if __name__ == "__main__":
    main()
