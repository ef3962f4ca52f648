"""The driver at scale: replay sweeps of 200, 1,000 and 2,000 trials, 32 in flight, on
Ray's multi-node test cluster, into the embedded SQLite store and into an `mlflow
server` on a real PostgreSQL; what one driver costs per trial, and how that grows.

    python benchmarks/driver_scale.py                      # 200,1000,2000 x sqlite,postgres
    python benchmarks/driver_scale.py --quick              # 200 trials, SQLite (the slow test)
    python benchmarks/driver_scale.py --trials 200,1000 --stores postgres --folder runs/scale

Each run is a real `gansweep sweep` command (a subprocess, as a user runs it) of replay
trials (benchmarks/landscape/replay.py: recorded curves, no torch, `--speed` x the
recorded training time) over the recorded landscape's space, with the defaults a user
gets (TPE + ASHA) and no replication (`--replicate-top 0`, so the trial count is
exact). It joins a fresh `ray.cluster_utils.Cluster`: a head that takes no trials (the
driver's node, as the deploy files have it) and `--nodes` - 1 worker nodes that declare
`--node-cpus` CPUs each; a trial takes the fraction of a node's CPUs that fits
ceil(in_flight / workers) trials on it. Store `postgres` starts a fresh PostgreSQL and
`mlflow server` on loopback per run (benchmarks/local_stack.py); `sqlite` is the
default sqlite:///mlflow.db in the run's folder.

One JSON line per run, with:
- store, trials, in_flight, wall_s (the `gansweep sweep` command), search_s (the
  driver's search phase, from GANSWEEP_PROFILE), completions_per_min (trials / search_s)
  and steady_completions_per_min (between the first suggest made after a trial ended
  and the last);
- driver_cpu_s_per_trial: the driver process's CPU seconds (user + system, all its
  threads and any child it reaped: os.wait4) over the trials; driver_cpu_s_per_trial_at:
  the same over the 100 trials around trial 100, 1,000 and 2,000 and the last (the
  driver's CPU clock, sampled every second, between the suggests that open and close
  the window, over the suggests between them: past the first `in_flight`, a suggest
  follows a trial's end);
- suggest_p50_ms, suggest_p99_ms: the searcher's suggest (ResumableOptunaSearch.suggest,
  timed by GANSWEEP_PROFILE_CALLS=1), over the run, and suggest_ms_at: p50/p99 over the
  100 suggests around trial 100, 1,000 and 2,000, with the p50/p99 of the suggest's own
  CPU (cpu_) and of its wait for a core (queue_: the main thread runnable, the machine's
  cores busy with the trials);
- view_polls, view_poll_p50_ms, view_cpu_share: the live view's reads of the records (the
  same timing), and the share of one core they took over the search;
- in_flight_max, in_flight_mean: trial runs open at once (MLflow's start and end times);
- lost (trials without an ended MLflow run), duplicates (runs beyond one per trial id),
  failed (runs that ended failed), study_unfinished (Optuna trials neither COMPLETE nor
  PRUNED);
- mlflow_calls, mlflow_calls_per_s, mlflow_errors (responses >= 500), mlflow_4xx (by
  endpoint: MLflow answers a lookup of a new experiment 404 by design) and
  mlflow_calls_by_endpoint during the sweep, from the server's access log (postgres
  only: the embedded store has no server to count at, null there); retries: the
  "tracking call failed" warnings of the driver and of the trials (driver.log, with
  Ray's deduplication of worker lines off);
- cpu_s_by_process: CPU seconds over the sweep of the driver, the trial workers, Ray's
  own processes, the MLflow server and PostgreSQL (psutil, sampled every second: a
  process that ended between two samples loses under a second), and peak_rss_gb of all
  of them together; machine_busy_cpu_s (all cores, /proc/stat) and others_cpu_s (that,
  less ours): what ran beside the sweep;
- ls_s, status_s, export_s, report_s: wall seconds of `gansweep ls`, `status NAME`,
  `export NAME` and `report NAME` once the sweep ended (with the caches of the records
  the sweep's own reads left: records/run_cache.py); status_cold_s, report_cold_s: the
  same two commands with the caches deleted first;
- driver_phases_s: the driver's own phases (GANSWEEP_PROFILE).

`--cprofile` runs the driver under cProfile (GANSWEEP_CPROFILE) and prints its top
functions to stderr: it slows the driver, so its run's figures are not the measured ones
(the JSON line says "cprofiled": true).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
LANDSCAPE = HERE / "landscape"
SPACE = LANDSCAPE / "ring8_space.yaml"
REPLAY = f"{LANDSCAPE / 'replay.py'}:replay"
NAME = "scale"
MARKS = (100, 1000, 2000)  # the trials around which cost is read
WINDOW = 100  # trials per mark
KEYS = (
    "store", "trials", "in_flight", "completions_per_min", "driver_cpu_s_per_trial",
    "suggest_p50_ms", "suggest_p99_ms", "lost", "duplicates", "ls_s", "status_s",
    "export_s", "report_s",
)  # fmt: skip
RETRY_LINE = "tracking call failed"
# uvicorn's access log: ... "POST /api/2.0/mlflow/runs/log-batch HTTP/1.1" 200
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # Ray colours the "(<actor> pid=...)" of a worker's line
ACCESS = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<code>\d{3})')


# ------------------------------------------------------------------ the cluster


def cpus_per_trial(in_flight: int, nodes: int, node_cpus: int) -> float:
    """The CPUs of one trial: ceil(in_flight / worker nodes) trials fit on each worker
    node (rounded down to Ray's resource precision, 1e-4, so they do fit)."""
    per_node = math.ceil(in_flight / (nodes - 1))
    return math.floor(node_cpus / per_node * 1e4) / 1e4


@contextmanager
def ray_cluster(nodes: int, node_cpus: int) -> Iterator[Any]:
    """A head with no CPUs (the driver's node) and `nodes` - 1 workers of `node_cpus`."""
    from ray.cluster_utils import Cluster  # deferred: --help needs no Ray

    # No dashboard: on 2 cores its processes would take a share of what is measured.
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    try:
        for _ in range(nodes - 1):
            cluster.add_node(num_cpus=node_cpus)
        cluster.wait_for_nodes()
        yield cluster
    finally:
        cluster.shutdown()


# ------------------------------------------------------------------ CPU of processes


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of a live process, from /proc (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds all cores of this machine spent busy since boot (/proc/stat): what
    ran beside the sweep is this, over the sweep, less what its own processes took."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class ProcessWatch:
    """CPU seconds by kind of process over a sweep, sampled: the driver, the trial
    workers (Ray's `ray::` processes), Ray's own (GCS, raylets, log monitor), the MLflow
    server and PostgreSQL; and the peak of their resident memory together."""

    driver_pid: int
    server_group: int | None = None
    postgres_folder: Path | None = None
    base: dict[tuple[int, float], float] = field(default_factory=dict)
    last: dict[tuple[int, float], tuple[str, float]] = field(default_factory=dict)
    peak_rss: int = 0

    def _kind(self, process: Any) -> str:
        if process.pid == self.driver_pid:
            return "driver"
        if self.server_group is not None and os.getpgid(process.pid) == self.server_group:
            return "mlflow_server"
        if self.postgres_folder is not None and process.cwd().startswith(str(self.postgres_folder)):
            return "postgres"
        command = " ".join(process.cmdline())
        # A worker is "default_worker.py" until it names itself "ray::IDLE", "ray::<actor>".
        worker = command.startswith("ray::") or "default_worker.py" in command
        return "trial_workers" if worker else "ray_system"

    def processes(self) -> list[Any]:
        import psutil  # Ray's own dependency

        here = psutil.Process()
        found = {p.pid: p for p in here.children(recursive=True)}
        # PostgreSQL's server daemonizes (pg_ctl): not our child; found by its folder.
        if self.postgres_folder is not None:
            from local_stack import processes_in

            for pid in processes_in(self.postgres_folder):
                try:
                    found.setdefault(pid, psutil.Process(pid))
                except psutil.Error:
                    pass
        return list(found.values())

    def sample(self, first: bool = False) -> None:
        import psutil

        rss = 0
        for process in self.processes():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    key = (process.pid, process.create_time())
                    kind = self._kind(process)
                    rss += process.memory_info().rss
            except (psutil.Error, OSError):
                continue
            cpu = times.user + times.system
            if first:
                self.base[key] = cpu
            self.last[key] = (kind, cpu)
        self.peak_rss = max(self.peak_rss, rss)

    def totals(self) -> dict[str, float]:
        out: Counter = Counter()
        for key, (kind, cpu) in self.last.items():
            out[kind] += cpu - self.base.get(key, 0.0)
        return {k: round(v, 1) for k, v in sorted(out.items())}


# ------------------------------------------------------------------ figures


def percentile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0..1) of `values`, linear between order statistics."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    at = q * (len(ordered) - 1)
    low = math.floor(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def marks_of(trials: int) -> list[int]:
    return sorted({m for m in MARKS if m <= trials} | {trials})


def window(mark: int, trials: int) -> tuple[int, int]:
    """Suggests [lo, hi] (1-based, WINDOW of them at most) around trial `mark`."""
    hi = min(mark + WINDOW // 2, trials)
    return max(1, hi - WINDOW + 1), hi


def interpolate(samples: Sequence[tuple[float, float]], at: float) -> float:
    """The value of a sampled clock (time, value), increasing in time, at time `at`."""
    if at <= samples[0][0]:
        return samples[0][1]
    for (t0, v0), (t1, v1) in zip(samples, samples[1:], strict=False):
        if t0 <= at <= t1:
            return v0 + (v1 - v0) * (at - t0) / (t1 - t0) if t1 > t0 else v1
    return samples[-1][1]


def suggest_figures(calls: list[dict[str, Any]], trials: int) -> dict[str, Any]:
    """The suggest's latency over the run and around each mark, in ms; around each mark
    also its own thread's CPU and its wait for a core (run queue: the machine too busy
    to run the driver), whose p99s say what the wall time's tail is made of."""
    suggests = {c["n"]: c for c in calls if c["call"] == "suggest"}
    at = {}
    for mark in marks_of(trials):
        lo, hi = window(mark, trials)
        chunk = [suggests[n] for n in range(lo, hi + 1) if n in suggests]
        if chunk:
            figures: dict[str, Any] = {}
            for key, field in (("", "wall_s"), ("cpu_", "cpu_s"), ("queue_", "queue_s")):
                values = [1000 * c[field] for c in chunk if c.get(field) is not None]
                if values:
                    figures[f"{key}p50"] = round(percentile(values, 0.5), 2)
                    figures[f"{key}p99"] = round(percentile(values, 0.99), 2)
            at[str(mark)] = {**figures, "n": len(chunk)}
    every = [1000 * c["wall_s"] for c in suggests.values()]
    return {
        "suggests": len(every),
        "suggest_p50_ms": round(percentile(every, 0.5), 2) if every else None,
        "suggest_p99_ms": round(percentile(every, 0.99), 2) if every else None,
        "suggest_ms_at": at,
    }


def driver_cpu_at(
    calls: list[dict[str, Any]], clock: list[tuple[float, float]], trials: int
) -> dict[str, float]:
    """Driver CPU seconds per trial over each mark's window of suggests: the CPU clock
    between the suggest that opens the window and the one that closes it."""
    ends = {c["n"]: c["end"] for c in calls if c["call"] == "suggest"}
    out = {}
    if len(clock) < 2:
        return out
    for mark in marks_of(trials):
        lo, hi = window(mark, trials)
        if lo in ends and hi in ends and hi > lo:
            cpu = interpolate(clock, ends[hi]) - interpolate(clock, ends[lo])
            out[str(mark)] = round(cpu / (hi - lo), 4)
    return out


def steady_rate(calls: list[dict[str, Any]], in_flight: int) -> float | None:
    """Completions per minute between the first suggest made for a freed slot (suggest
    in_flight + 1) and the last: each such suggest follows a trial's end."""
    ends = sorted((c["n"], c["end"]) for c in calls if c["call"] == "suggest")
    ends = [(n, t) for n, t in ends if n > in_flight]
    if len(ends) < 2 or ends[-1][1] <= ends[0][1]:
        return None
    return round((ends[-1][0] - ends[0][0]) / (ends[-1][1] - ends[0][1]) * 60, 1)


def view_figures(calls: list[dict[str, Any]], search_s: float | None) -> dict[str, Any]:
    polls = [c for c in calls if c["call"] == "view_poll"]
    if not polls:
        return {"view_polls": 0, "view_poll_p50_ms": None, "view_cpu_share": None}
    cpu = sum(c["cpu_s"] for c in polls)
    return {
        "view_polls": len(polls),
        "view_poll_p50_ms": round(percentile([c["wall_s"] * 1000 for c in polls], 0.5), 1),
        "view_poll_cpu_p50_ms": round(percentile([c["cpu_s"] * 1000 for c in polls], 0.5), 1),
        "view_cpu_share": round(cpu / search_s, 4) if search_s else None,
    }


@dataclass(frozen=True)
class RunRecord:
    """What the lost/duplicate check needs of one MLflow run."""

    trial_id: str
    status: str  # MLflow's: RUNNING, FINISHED, FAILED, KILLED
    outcome: str  # gansweep.status ("" while running)
    start_ms: int = 0
    end_ms: int | None = None


def runs_in_flight(runs: Sequence[RunRecord]) -> dict[str, float | None]:
    """How many trial runs were open at once: the most, and the mean over the time from
    the first run's start to the last one's end (what the trials really overlapped)."""
    ended = [r for r in runs if r.end_ms]
    events = sorted([(r.start_ms, 1) for r in ended] + [(r.end_ms or 0, -1) for r in ended])
    if not events or events[-1][0] <= events[0][0]:
        return {"in_flight_max": None, "in_flight_mean": None}
    open_now = most = 0
    area, last = 0.0, events[0][0]
    for at, change in events:
        area += open_now * (at - last)
        open_now, last = open_now + change, at
        most = max(most, open_now)
    return {"in_flight_max": most, "in_flight_mean": round(area / (last - events[0][0]), 1)}


def lost_and_duplicates(runs: Sequence[RunRecord], trials: int) -> dict[str, int]:
    """lost: planned trials without an ended run (none, or one still open); duplicates:
    runs beyond the first of each trial id; failed: ended runs that failed."""
    per_trial = Counter(r.trial_id for r in runs)
    ended = {r.trial_id for r in runs if r.status != "RUNNING" and r.outcome}
    return {
        "runs": len(runs),
        "lost": max(0, trials - len(ended)),
        "duplicates": sum(n - 1 for n in per_trial.values()),
        "failed": sum(1 for r in runs if r.outcome == "failed"),
    }


def read_runs(work: Path) -> list[RunRecord]:
    from gansweep.records.manifest import Manifest
    from gansweep.records.read import child_runs
    from gansweep.records.run_format import TAG_STATUS, TAG_TRIAL_ID

    manifest = Manifest.load(work / "sweeps", NAME)
    return [
        RunRecord(
            r.data.tags.get(TAG_TRIAL_ID, ""),
            r.info.status,
            r.data.tags.get(TAG_STATUS, ""),
            r.info.start_time,
            r.info.end_time,
        )  # fmt: skip
        for r in child_runs(manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id)
    ]


def study_unfinished(work: Path) -> dict[str, int]:
    import optuna

    from gansweep.records.manifest import Manifest
    from gansweep.records.study_store import open_study_storage

    manifest = Manifest.load(work / "sweeps", NAME)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=manifest.study_name, storage=open_study_storage(manifest))
    states = Counter(t.state.name for t in study.get_trials(deepcopy=False))
    done = states["COMPLETE"] + states["PRUNED"]
    return {"study_trials": sum(states.values()), "study_unfinished": sum(states.values()) - done}


def server_calls(log: Path, start: int, end: int, seconds: float) -> dict[str, Any]:
    """The server's requests between byte offsets `start` and `end` of its log."""
    with log.open("rb") as f:
        f.seek(start)
        text = f.read(end - start).decode(errors="replace")
    hits = [m for m in (ACCESS.search(line) for line in text.splitlines()) if m]
    by_path = Counter(_endpoint(m) for m in hits)
    return {
        "mlflow_calls": len(hits),
        "mlflow_calls_per_s": round(len(hits) / seconds, 1) if seconds else None,
        "mlflow_errors": sum(1 for m in hits if int(m["code"]) >= 500),
        # MLflow answers some lookups 404 by design (get-by-name of a new experiment).
        "mlflow_4xx": dict(
            Counter(f"{_endpoint(m)} {m['code']}" for m in hits if 400 <= int(m["code"]) < 500)
        ),
        "mlflow_calls_by_endpoint": dict(by_path.most_common(8)),
    }


def _endpoint(hit: re.Match[str]) -> str:
    return hit["path"].split("?")[0].removeprefix("/api/2.0/mlflow/")


def retries(driver_log: Path) -> dict[str, int]:
    """The store's retried calls: the driver's own warnings, and the trials' (Ray
    forwards a worker's lines to the driver prefixed with "(<actor> pid=...)")."""
    if not driver_log.is_file():
        return {"retries_driver": 0, "retries_trials": 0}
    lines = [ln for ln in driver_log.read_text(errors="replace").splitlines() if RETRY_LINE in ln]
    trials = sum(1 for ln in lines if ANSI.sub("", ln).lstrip().startswith("("))
    return {"retries_driver": len(lines) - trials, "retries_trials": trials}


def driver_profile(path: Path) -> dict[str, Any]:
    """The driver's line of GANSWEEP_PROFILE: its phases (wall s)."""
    if not path.is_file():
        return {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        if record.get("who") == "driver":
            return record
    return {}


# ------------------------------------------------------------------ one run


def base_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without a tracking store, credentials or a Ray address of its own."""
    dropped = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in dropped and not k.startswith("PG") and k != "RAY_ADDRESS"
    }
    return {**env, "RAY_USAGE_STATS_ENABLED": "0", **extra}


def gansweep(*args: str) -> list[str]:
    return [sys.executable, "-m", "gansweep.platform.cli", *args]


def wait_sampled(
    proc: subprocess.Popen, watch: ProcessWatch, timeout: float
) -> tuple[int, float, list[tuple[float, float]]]:
    """Wait for the driver, sampling its CPU clock and the processes every second;
    (exit code, its CPU seconds from os.wait4, the clock)."""
    clock: list[tuple[float, float]] = []
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu = usage.ru_utime + usage.ru_stime
            clock.append((time.time(), cpu))
            return proc.returncode, cpu, clock
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError(f"gansweep sweep ran past {timeout:.0f} s")
        now = proc_cpu_s(proc.pid)
        if now is not None:
            clock.append((time.time(), now))
        watch.sample()
        time.sleep(1.0)


def timed(args: list[str], cwd: Path, env: dict[str, str], log: Path) -> float | None:
    """Wall seconds of a `gansweep` command (None, and its output kept, if it failed)."""
    began = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    with log.open("a") as out:
        out.write(f"$ {' '.join(args[2:])}  # exit {done.returncode}, {seconds:.2f} s\n")
        out.write(done.stdout[-3000:] + done.stderr[-3000:] + "\n")
    return round(seconds, 2) if done.returncode == 0 else None


def run_one(store: str, trials: int, opts: argparse.Namespace, folder: Path) -> dict[str, Any]:
    work = folder / f"{store}-{trials}"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    per_trial = cpus_per_trial(opts.in_flight, opts.nodes, opts.node_cpus)
    env = base_env(
        {
            "GANSWEEP_REPLAY_SPEED": str(opts.speed),
            "GANSWEEP_PROFILE": str(work / "profile.jsonl"),
            "GANSWEEP_PROFILE_CALLS": "1",
            # Every worker's line reaches driver.log, so retries can be counted.
            "RAY_DEDUP_LOGS": "0",
            **({"GANSWEEP_CPROFILE": str(work / "driver.pstats")} if opts.cprofile else {}),
        }
    )
    began = time.time()
    with ExitStack() as stack:
        tracking: list[str] = []
        watch_args: dict[str, Any] = {}
        server = None
        if store == "postgres":
            from local_stack import record_stack

            database, server = stack.enter_context(record_stack(work / "stack"))
            tracking = ["--tracking-uri", server.url]
            assert server.process is not None
            watch_args = {"server_group": server.process.pid, "postgres_folder": database.folder}
        cluster = stack.enter_context(ray_cluster(opts.nodes, opts.node_cpus))
        setup_s = time.time() - began
        args = gansweep(
            "sweep", "--space", str(SPACE), "--name", NAME, "--trainable", REPLAY,
            "--num-samples", str(trials), "--max-concurrent", str(opts.in_flight),
            "--cpus-per-trial", str(per_trial), "--replicate-top", "0",
            "--storage", "sweeps", "--address", cluster.address, "--seed", str(opts.seed),
            *tracking,
        )  # fmt: skip
        server_log_start = server.log.stat().st_size if server else 0
        watch = ProcessWatch(driver_pid=-1, **watch_args)
        watch.sample(first=True)
        busy_before = machine_busy_s()
        started = time.time()
        with (work / "sweep.out").open("w") as out:
            proc = subprocess.Popen(args, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT)
        watch.driver_pid = proc.pid
        code, driver_cpu, clock = wait_sampled(proc, watch, opts.timeout)
        wall = time.time() - started
        machine_busy = machine_busy_s() - busy_before
        if code != 0:
            tail = (work / "sweep.out").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"gansweep sweep exited with {code}:\n{tail}")
        cpu_by_process = {**watch.totals(), "driver": round(driver_cpu, 1)}
        calls_figures = (
            server_calls(server.log, server_log_start, server.log.stat().st_size, wall)
            if server
            else {
                "mlflow_calls": None, "mlflow_calls_per_s": None, "mlflow_errors": None,
                "mlflow_4xx": None, "mlflow_calls_by_endpoint": None,
            }
        )  # fmt: skip
        # The commands a user runs on the finished sweep, while its stores still run.
        from gansweep.records import run_cache

        command_env = base_env({})
        log = work / "commands.log"
        storage = ["--storage", "sweeps"]
        commands = {
            "ls_s": timed(gansweep("ls", *storage), work, command_env, log),
            "status_s": timed(gansweep("status", NAME, *storage), work, command_env, log),
            "export_s": timed(gansweep("export", NAME, *storage), work, command_env, log),
            "report_s": timed(gansweep("report", NAME, *storage), work, command_env, log),
        }
        # The same with no cache of the records (records/run_cache.py): as the first
        # reader of a sweep run elsewhere would, or after the cache files were deleted.
        for command in ("status", "report"):
            for cache in (run_cache.CACHE_FILE, run_cache.HISTORIES_FILE):
                (work / "sweeps" / NAME / cache).unlink(missing_ok=True)
            cold = gansweep(command, NAME, *storage)
            commands[f"{command}_cold_s"] = timed(cold, work, command_env, log)
        runs = read_runs(work)
        records = {**lost_and_duplicates(runs, trials), **runs_in_flight(runs)}
        study = study_unfinished(work)
    calls_file = work / "sweeps" / NAME / "profile_calls.jsonl"
    calls = (
        [json.loads(ln) for ln in calls_file.read_text().splitlines()]
        if calls_file.is_file()
        else []
    )
    profile = driver_profile(work / "profile.jsonl")
    search_s = profile.get("phases", {}).get("search")
    result = {
        "store": store,
        "trials": trials,
        "in_flight": opts.in_flight,
        "speed": opts.speed,
        "nodes": opts.nodes,
        "cpus_per_trial": per_trial,
        "wall_s": round(wall, 1),
        "setup_s": round(setup_s, 1),
        "search_s": round(search_s, 1) if search_s else None,
        "completions_per_min": round(trials / search_s * 60, 1) if search_s else None,
        "steady_completions_per_min": steady_rate(calls, opts.in_flight),
        "driver_cpu_s_per_trial": round(driver_cpu / trials, 4),
        "driver_cpu_s_per_trial_at": driver_cpu_at(calls, clock, trials),
        **suggest_figures(calls, trials),
        **view_figures(calls, search_s),
        **records,
        **study,
        **calls_figures,
        **retries(work / "sweeps" / NAME / "driver.log"),
        **commands,
        "cpu_s_by_process": cpu_by_process,
        # What ran beside: the machine's busy CPU seconds over the sweep, less ours (the
        # benchmark's own sampling included there, about a second of CPU a minute).
        "machine_busy_cpu_s": round(machine_busy, 1),
        "others_cpu_s": round(machine_busy - sum(cpu_by_process.values()), 1),
        "cores": os.cpu_count(),
        "peak_rss_gb": round(watch.peak_rss / 2**30, 2),
        "driver_phases_s": {k: round(v, 1) for k, v in profile.get("phases", {}).items()},
        "cprofiled": bool(opts.cprofile),
    }
    if opts.cprofile:
        print_cprofile(work / "driver.pstats")
    return result


def print_cprofile(path: Path, top: int = 40) -> None:
    import pstats

    if path.is_file():
        print(f"--- the driver under cProfile ({path}), by cumulative time:", file=sys.stderr)
        pstats.Stats(str(path), stream=sys.stderr).sort_stats("cumulative").print_stats(top)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="200,1000,2000", help="comma-separated")
    parser.add_argument("--stores", default="sqlite,postgres", help="sqlite, postgres")
    parser.add_argument("--in-flight", type=int, default=32, help="trials at once")
    # 0.05 x the recorded seconds: a full trial replays in about 1.7 s (35 s recorded,
    # mean), so 32 in flight could end ~1,100 trials a minute: the driver sets the pace.
    parser.add_argument("--speed", type=float, default=0.05, help="x the recorded time")
    parser.add_argument("--nodes", type=int, default=4, help="Ray nodes, the head included")
    parser.add_argument("--node-cpus", type=int, default=4, help="CPUs each worker declares")
    parser.add_argument("--seed", type=int, default=0, help="of the sampler")
    parser.add_argument("--folder", type=Path, default=None, help="kept (default: temporary)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per sweep")
    parser.add_argument("--quick", action="store_true", help="200 trials, the first store")
    parser.add_argument("--cprofile", action="store_true", help="profile the driver")
    opts = parser.parse_args(argv)
    opts.trial_counts = [int(t) for t in str(opts.trials).split(",")]
    opts.store_list = [s.strip() for s in str(opts.stores).split(",")]
    if opts.quick:
        opts.trial_counts, opts.store_list = [200], opts.store_list[:1]
    unknown = set(opts.store_list) - {"sqlite", "postgres"}
    if unknown:
        parser.error(f"unknown store(s) {sorted(unknown)}: sqlite, postgres")
    if opts.nodes < 2:
        parser.error("--nodes counts the head, which takes no trials: at least 2")
    return opts


def main(argv: Sequence[str] | None = None) -> None:
    opts = parse(argv)
    folder = opts.folder or Path(tempfile.mkdtemp(prefix="gansweep-scale-"))
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    # Ray writes the address of the cluster it started to <temp>/ray/ray_current_cluster,
    # where any `ray.init()` on this machine without an address would find it and join:
    # a temporary folder of our own keeps other processes' Ray off ours. Short: Ray's
    # socket paths must fit 107 characters.
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="gsds-", dir="/tmp")
    # The trials' workers import gansweep from this checkout, as the driver does.
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
    )
    print(f"driver_scale: runs in {folder}", file=sys.stderr)
    try:
        for store in opts.store_list:
            for trials in opts.trial_counts:
                print(f"driver_scale: {store}, {trials} trials ...", file=sys.stderr, flush=True)
                print(json.dumps(run_one(store, trials, opts, folder)), flush=True)
    finally:
        shutil.rmtree(os.environ["RAY_TMPDIR"], ignore_errors=True)


if __name__ == "__main__":
    main()
