"""Fault-injection summary: run the fault tests with pytest and print, per fault, whether
the sweep survived it, whether data was lost, and how long the test took.

The tests are tests/faults/ (real Ray, real MLflow, real Optuna; slow) and the related
ones elsewhere: the checkpoint tests of tests/platform/test_checkpoints.py and the
diverging sweep of tests/platform/test_sweep.py. Every fault test asserts that no metric
step was lost or logged twice, so a passed test reads "none (checked)"; a failed one
"see failure" (pytest's output is kept in a log file whose path is printed). A test of
tests/faults/ that the table below does not name yet still gets a row, under its own name.

Prints a Markdown table, then one JSON line per fault.

    python benchmarks/fault_summary.py              # everything (~15-30 min on 2 cores)
    python benchmarks/fault_summary.py -k checkpoint  # only faults whose test matches
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SWEEP_FAULTS = "tests/faults/test_sweep_faults.py"
TRACKING_FAULTS = "tests/faults/test_tracking_faults.py"
CHECKPOINTS = "tests/platform/test_checkpoints.py"

# (fault, pytest node id), in the order of the table.
FAULTS = [
    (
        "trial worker SIGKILLed mid-training",
        f"{SWEEP_FAULTS}::test_a_trial_whose_worker_is_killed_continues_from_its_checkpoint",
    ),
    (
        "driver SIGKILLed mid-sweep, then resume",
        f"{SWEEP_FAULTS}::test_a_sweep_whose_driver_is_killed_resumes_and_ends_every_trial_once",
    ),
    (
        "driver SIGKILLed before Tune saved a new trial",
        f"{SWEEP_FAULTS}::test_a_trial_started_after_the_last_snapshot_is_closed_as_failed_on_resume",
    ),
    (
        "worker node removed from the cluster",
        "tests/faults/test_node_removed.py::"
        "test_a_trial_on_a_removed_node_continues_on_the_remaining_one",
    ),
    (
        "one trial produces NaN (lr_d = 10)",
        "tests/faults/test_diverged_trial.py::"
        "test_a_trial_that_produces_nan_is_tagged_diverged_and_the_sweep_goes_on",
    ),
    (
        "every trial produces NaN (lr = 10)",
        "tests/platform/test_sweep.py::"
        "test_a_diverging_trial_is_a_bad_finite_result_and_the_sweep_goes_on",
    ),
    (
        "tracking server killed, back 20 s + restart later",
        f"{TRACKING_FAULTS}::test_metrics_logged_while_the_tracking_server_is_down_arrive_once_it_is_back",
    ),
    (
        "checkpoint truncated, then trial worker killed",
        f"{SWEEP_FAULTS}::test_a_truncated_checkpoint_is_refused_and_the_retry_falls_back_to_the_one_before",
    ),
    (
        "checkpoint truncated (unit: fallback)",
        f"{CHECKPOINTS}::test_a_truncated_checkpoint_falls_back_to_the_previous_one",
    ),
    (
        "no readable checkpoint (unit: clear error)",
        f"{CHECKPOINTS}::test_with_no_readable_checkpoint_the_error_names_every_file",
    ),
    (
        "checkpoint with a malicious pickle (unit)",
        f"{CHECKPOINTS}::test_a_malicious_pickle_is_refused_and_its_code_never_runs",
    ),
    (
        "8 concurrent trials on the SQLite store",
        f"{TRACKING_FAULTS}::test_eight_concurrent_trials_share_the_sqlite_store_without_lock_errors",
    ),
]


def outcomes(junit: Path) -> dict[str, dict]:
    """Per test function name: status (passed | failed | skipped), seconds, message."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, message = "failed", child.get("message", "")
            elif child.tag == "skipped":
                status, message = "skipped", child.get("message", "")
        found[case.get("name")] = {
            "status": status,
            "seconds": float(case.get("time", "nan")),
            "message": message.splitlines()[0][:200] if message else "",
            "classname": case.get("classname", ""),
        }
    return found


def row(fault: str, test: str, outcome: dict | None) -> dict:
    if outcome is None:
        survived, lost, seconds = None, "not run", None
    elif outcome["status"] == "passed":
        survived, lost, seconds = True, "none (checked)", outcome["seconds"]
    elif outcome["status"] == "skipped":
        survived, lost = None, f"n/a (skipped: {outcome['message']})"
        seconds = outcome["seconds"]
    else:
        survived, lost, seconds = False, "see failure", outcome["seconds"]
    return {
        "fault": fault,
        "survived": survived,
        "data_lost": lost,
        "seconds": None if seconds is None else round(seconds, 1),
        "test": test,
        **({"failure": outcome["message"]} if outcome and outcome["status"] == "failed" else {}),
    }


def print_table(rows: list[dict]) -> None:
    yes_no = {True: "yes", False: "no", None: "-"}
    cells = [
        [r["fault"], yes_no[r["survived"]], r["data_lost"], f"{r['seconds'] or 0:.1f}"]
        for r in rows
    ]
    header = ["fault", "survived", "data lost", "seconds"]
    widths = [max(len(c[i]) for c in [header, *cells]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(x.ljust(w) for x, w in zip(cells, widths, strict=True)) + " |"

    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print(line(c))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="keyword", help="only faults whose test id contains this")
    parser.add_argument("--log", type=Path, help="pytest's output [default: a temp file]")
    args = parser.parse_args()

    selected = [(f, t) for f, t in FAULTS if not args.keyword or args.keyword in t]
    if args.keyword:
        tests = [t for _, t in selected]
    else:  # all of tests/faults, also any fault test the table does not name yet
        tests = ["tests/faults", *(t for _, t in selected if not t.startswith("tests/faults/"))]
    work = Path(tempfile.mkdtemp(prefix="fault-summary-"))
    junit, log = work / "faults.xml", args.log or work / "pytest.log"
    started = time.monotonic()
    print(f"running {len(selected)} fault tests; pytest output: {log}", file=sys.stderr)
    with log.open("w") as out:
        # -m overrides the project's default `-m 'not slow'`: fault tests are slow ones.
        proc = subprocess.run(
            [
                sys.executable, "-m", "pytest", *tests, "-m", "slow or not slow", "-q", "-s",
                "-p", "no:cacheprovider", f"--junitxml={junit}", f"--basetemp={work / 'tmp'}",
            ],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    if not junit.is_file():
        print(f"pytest wrote no report (exit {proc.returncode}); see {log}", file=sys.stderr)
        return 1

    results = outcomes(junit)
    rows = [row(f, t, results.pop(t.rsplit("::", 1)[1], None)) for f, t in selected]
    for name, outcome in results.items():  # tests/faults tests not named in FAULTS
        rows.append(row(name.removeprefix("test_").replace("_", " "), name, outcome))
    print_table(rows)
    print(f"\n(pytest exit {proc.returncode}, {time.monotonic() - started:.0f} s in all; {log})")
    for r in rows:
        print(json.dumps(r))
    return 0 if all(r["survived"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
