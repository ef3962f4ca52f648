"""Time to generate the report of a 200-trial sweep. Target: under 10 seconds.

The sweep is synthetic but stored for real (tests/dashboards/synthetic_sweep.py): an MLflow
SQLite store with a parent run and 200 child runs (every TrialConfig param, the axis tags,
three evaluations of six metrics each, a samples.png), an Optuna study of 200 trials, and
a manifest. Building it is timed and printed separately; it is not part of the figure.

`write_report` is then run ROUNDS times in this one process, logging the page to the
parent run as `gansweep report` does. The figure is the median; the first call, which
also pays one-off costs (MLflow's store set-up, importing Optuna's importance module and
scikit-learn), is printed too. Prints one JSON line.

    python benchmarks/report_time.py [--trials 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

# The synthetic sweep is a test helper (tests/dashboards/synthetic_sweep.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "dashboards"))
from synthetic_sweep import make_sweep  # noqa: E402

from gansweep.dashboards import write_report  # noqa: E402

TARGET_SECONDS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="gansweep-bench-") as root:
        started = time.perf_counter()
        manifest = make_sweep(Path(root), args.trials, name="bench")
        setup = time.perf_counter() - started

        times = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            page = write_report(manifest)
            times.append(time.perf_counter() - started)
        size = page.stat().st_size

    median = statistics.median(times)
    print(
        json.dumps(
            {
                "benchmark": "report_time",
                "trials": args.trials,
                "seconds": round(median, 3),
                "first_call_seconds": round(times[0], 3),
                "rounds": [round(t, 3) for t in times],
                "target_seconds": TARGET_SECONDS,
                "within_target": median < TARGET_SECONDS,
                "page_bytes": size,
                "setup_seconds": round(setup, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
