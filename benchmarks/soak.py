"""A soak that loses nothing: a grid sweep of replay trials on the cluster's record stack
(an `mlflow server` on a real PostgreSQL, both on loopback), with faults injected at
seeded random times, checked against the same sweep run without faults.

    python benchmarks/soak.py                 # 648 trials, 16 in flight (about 20 min)
    python benchmarks/soak.py --short         # 48 trials, a few faults (the slow test)

The space is the recorded landscape's (benchmarks/landscape/ring8_space.yaml, 216
configs) with the seed searched too (0, 1, 2): 648 grid points, each a recorded curve
(GANSWEEP_REPLAY_SEED_BY=config), so the set of trials and every value are fixed in
advance, whatever the faults and the timing. The faults, in three driver lifetimes:
- the driver (with its Ray and every trial) is SIGKILLed twice, each time followed by
  `gansweep resume`;
- the MLflow server is restarted once, in the second lifetime; PostgreSQL once, in the
  third;
- trial workers are SIGKILLed at random times in each (--worker-kills per lifetime).
Each lifetime's faults come, and the first two lifetimes end, 0.2-0.35 of the clean
sweep's wall time after their first trial, or once 40 % of the trials left at its start
have ended, whichever comes first.

At the end: every planned trial ended exactly once (one finished run per grid point, no
run left open), no duplicate run, no missing metric (every run has each recorded step of
its curve once), and the leaderboard equals the clean sweep's. One JSON line:
``faults``, ``trials``, ``lost``, ``duplicates``, ``missing_metrics``, ``board_equal``,
``clean_s``, ``soak_s``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from local_stack import kill_session, record_stack, session_processes
from mlflow import MlflowClient

from gansweep.records.manifest import Manifest
from gansweep.records.read import child_runs

HERE = Path(__file__).resolve().parent
LANDSCAPE = HERE / "landscape"
REPLAY = f"{LANDSCAPE / 'replay.py'}:replay"
SEEDS = [0, 1, 2]  # the landscape's recorded seeds
# --short: 2 losses x (none | GP at 1) x 2 D-step ratios x 2 D learning rates x 3 seeds.
SHORT = {
    "loss": ["ns", "wgan"], "penalty_weight": [1.0], "n_critic": [1, 3],
    "lr_g": [1.0e-3], "lr_d": [5.0e-4, 1.0e-3],
}  # fmt: skip
# Ray's titles of a process that runs a trial: "ray::<the trainable's name>" (Tune names
# the actor after the function), or Tune's own wrappers.
TRIAL_WORKERS = ("ray::replay", "ray::ImplicitFunc", "ray::_Inner")


def soak_space(short: bool, folder: Path) -> Path:
    """The landscape's space with the seed searched (and, `short`, fewer choices)."""
    space = yaml.safe_load((LANDSCAPE / "ring8_space.yaml").read_text())
    for name, choices in (SHORT if short else {}).items():
        space["params"][name]["choice"] = choices
    space["params"]["seed"] = {"choice": SEEDS}
    space["description"] = "the recorded landscape with its seeds: soak.py"
    path = folder / ("soak_short.yaml" if short else "soak.yaml")
    path.write_text(yaml.safe_dump(space, sort_keys=False))
    return path


# ------------------------------------------------------------------ processes


@dataclass
class Driver:
    """`gansweep` commands for one sweep, each in a session of its own."""

    folder: Path
    name: str
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    logs: list[Path] = field(default_factory=list)

    def start(self, *args: str) -> None:
        log = self.folder / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gansweep.platform.cli", *args, "--verbose"],
                cwd=self.folder, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self) -> int:
        assert self.proc is not None
        code = self.proc.wait()
        if code != 0:
            tail = self.logs[-1].read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.proc.args[3:5]} exited with {code}:\n{tail}")
        return code

    def kill(self) -> None:
        assert self.proc is not None
        kill_session(self.proc.pid, timeout=60)
        self.proc.wait()

    def trial_workers(self) -> list[int]:
        assert self.proc is not None
        return [p for p, a in session_processes(self.proc.pid) if a.startswith(TRIAL_WORKERS)]

    def wait_for_trials(self, timeout: float = 300) -> bool:
        """Wait until a trial runs (Ray and the restore take seconds); False if the
        driver ended first."""
        deadline = time.monotonic() + timeout
        while not self.trial_workers():
            if not self.running():
                return False
            if time.monotonic() > deadline:
                raise RuntimeError(f"no trial started in {timeout:.0f} s")
            time.sleep(0.2)
        return True

    def kill_a_worker(self, rng: random.Random) -> bool:
        """SIGKILL one process that runs a trial (waiting up to 10 s for one, as between
        two trials none may); False if none ran."""
        deadline = time.monotonic() + 10
        while self.running() and time.monotonic() < deadline:
            workers = self.trial_workers()
            if workers:
                try:
                    os.kill(rng.choice(workers), signal.SIGKILL)
                    return True
                except ProcessLookupError:
                    pass  # it ended meanwhile: another
            time.sleep(0.2)
        return False


def sweep_args(name: str, space: Path, trials: int, in_flight: int, server: str) -> list[str]:
    return [
        "sweep", "--space", str(space), "--name", name, "--trainable", REPLAY,
        "--sampler", "grid", "--scheduler", "fifo", "--num-samples", str(trials),
        "--max-concurrent", str(in_flight), "--cpus-per-trial", str(2 / in_flight),
        "--replicate-top", "0", "--max-failures", "8", "--tracking-uri", server,
        "--storage", "sweeps",
    ]  # fmt: skip


# ------------------------------------------------------------------ faults


def ended_trials(driver: Driver) -> int:
    """The sweep's trial runs that have ended; 0 while its records cannot be read (the
    MLflow server or PostgreSQL may be restarting)."""
    try:
        manifest = Manifest.load(driver.folder / "sweeps", driver.name)
        return sum(r.info.status != "RUNNING" for r in runs_of(manifest))
    except Exception:
        return 0


def during(
    driver: Driver, seconds: float, actions: list[tuple[float, object]], until_ended: int
) -> list[str]:
    """Let the driver run for `seconds` (or to its end), doing each (at, action) at its
    time; the names of the actions done. Once `until_ended` trial runs have ended, the
    actions still to come are done at once and `seconds` is cut short: its times are drawn
    from the clean sweep's wall time, and a resumed sweep that runs faster than that
    (Ray's start-up is a larger share of a short sweep) would otherwise end before the
    driver kill it is meant to survive."""
    done, start = [], time.monotonic()
    checked = start

    def enough() -> bool:
        nonlocal checked
        if time.monotonic() - checked < 2.0:  # a read of every run: not at every tick
            return False
        checked = time.monotonic()
        return ended_trials(driver) >= until_ended

    hurry = False
    for at, action in sorted(actions, key=lambda a: a[0]):
        while not hurry and time.monotonic() - start < at:
            if not driver.running():
                return done
            hurry = enough()
            time.sleep(0.2)
        if driver.running() and action() is not False:
            done.append(action.__name__)
    while not hurry and time.monotonic() - start < seconds and driver.running():
        hurry = enough()
        time.sleep(0.2)
    return done


def soak(driver: Driver, args: list[str], clean_s: float, stack, opts, trials: int) -> Counter:
    """The faulted sweep: three driver lifetimes, as the module's docstring says."""
    database, server = stack
    rng = random.Random(opts.seed)
    faults: Counter = Counter()

    def worker_kill() -> bool:
        return driver.kill_a_worker(rng)

    def mlflow_restart() -> None:
        server.restart()

    def postgres_restart() -> None:
        database.restart()

    def kills(until: float) -> list[tuple[float, object]]:
        return [(rng.uniform(0.05, 1.0) * until, worker_kill) for _ in range(opts.worker_kills)]

    for lifetime in range(3):
        driver.start(*args) if lifetime == 0 else driver.start("resume", driver.name)
        # Each lifetime's faults come while trials run, not while Ray starts.
        if not driver.wait_for_trials() and lifetime < 2:
            raise RuntimeError(f"the sweep ended before driver kill {lifetime + 1}")
        life = rng.uniform(0.2, 0.35) * clean_s
        planned = kills(life)
        if lifetime == 1:
            planned.append((rng.uniform(0.1, 0.5) * life, mlflow_restart))
        if lifetime == 2:
            planned.append((rng.uniform(0.1, 0.5) * life, postgres_restart))
        # A lifetime's faults come, and the first two lifetimes end, by the time 40 % of
        # the trials it started with have ended, at the latest: each lifetime, the third
        # (PostgreSQL's restart) included, then has trials to run through its faults.
        left = trials - ended_trials(driver)
        until_ended = trials - left + max(1, math.ceil(0.4 * left))
        faults.update(during(driver, life if lifetime < 2 else 0, planned, until_ended))
        if lifetime < 2:
            if not driver.running():
                raise RuntimeError(f"the sweep ended before driver kill {lifetime + 1}")
            driver.kill()
            faults["driver_kill"] += 1
    driver.wait()
    return faults


# ------------------------------------------------------------------ checks


def config_key(params: dict[str, str]) -> str:
    return json.dumps(params, sort_keys=True)


def runs_of(manifest: Manifest) -> list:
    return child_runs(manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id)


def board(manifest: Manifest, runs: list) -> dict[str, tuple[float, str, int]]:
    """config -> (value, status, step) of every trial run of the sweep."""
    out = {}
    for run in runs:
        key = config_key(run.data.params)
        value = run.data.metrics.get(manifest.metric, float("nan"))
        out[key] = (value, run.data.tags.get("gansweep.status", ""), int(run.data.metrics["step"]))
    return out


def check(clean: Manifest, soaked: Manifest, trials: int) -> dict[str, object]:
    runs = runs_of(soaked)
    per_config = Counter(config_key(r.data.params) for r in runs)
    per_trial = Counter(r.data.tags.get("gansweep.trial_id") for r in runs)
    duplicates = sum(n - 1 for n in per_config.values()) + sum(n - 1 for n in per_trial.values())
    ended = [r for r in runs if r.info.status == "FINISHED" and r.data.tags.get("gansweep.status")]
    expected = board(clean, runs_of(clean))
    got = board(soaked, runs)
    lost = len(expected.keys() - got.keys()) + (len(runs) - len(ended))
    client = MlflowClient(soaked.tracking_uri)
    missing = 0
    for run in ended:
        steps = [m.step for m in client.get_metric_history(run.info.run_id, soaked.metric)]
        final = int(run.data.metrics["step"])
        planned = set(range(500, final + 1, 500))  # the landscape evaluates every 500
        missing += len(planned - set(steps)) + (len(steps) - len(set(steps)))
    return {
        "trials": len(runs),
        "planned": trials,
        "lost": lost,
        "duplicates": duplicates,
        "missing_metrics": missing,
        "board_equal": got == expected,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="48 trials, fewer faults")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--speed", type=float, default=0.05, help="of the recorded time")
    parser.add_argument("--worker-kills", type=int, default=None, help="per driver lifetime")
    parser.add_argument("--seed", type=int, default=0, help="of the fault times")
    parser.add_argument("--folder", type=Path, default=None, help="kept (default: temporary)")
    opts = parser.parse_args()
    opts.worker_kills = (1 if opts.short else 3) if opts.worker_kills is None else opts.worker_kills
    folder = opts.folder or Path(tempfile.mkdtemp(prefix="gansweep-soak-"))
    folder.mkdir(parents=True, exist_ok=True)
    space = soak_space(opts.short, folder)
    trials = 48 if opts.short else 648
    env = {
        **os.environ, "RAY_ADDRESS": "local", "RAY_USAGE_STATS_ENABLED": "0",
        "GANSWEEP_REPLAY_SPEED": str(opts.speed), "GANSWEEP_REPLAY_SEED_BY": "config",
    }  # fmt: skip
    print(f"soak: {trials} trials, {opts.in_flight} in flight, in {folder}", file=sys.stderr)
    with record_stack(folder / "stack") as stack:
        url = stack[1].url
        clean = Driver(folder, "clean", env)
        started = time.monotonic()
        clean.start(*sweep_args("clean", space, trials, opts.in_flight, url))
        clean.wait()
        clean_s = time.monotonic() - started
        print(f"soak: the clean sweep took {clean_s:.0f} s", file=sys.stderr)
        soaked = Driver(folder, "soak", env)
        started = time.monotonic()
        args = sweep_args("soak", space, trials, opts.in_flight, url)
        faults = soak(soaked, args, clean_s, stack, opts, trials)
        soak_s = time.monotonic() - started
        storage = folder / "sweeps"
        result = check(Manifest.load(storage, "clean"), Manifest.load(storage, "soak"), trials)
    print(json.dumps({"faults": dict(faults), **result, "clean_s": round(clean_s),
                      "soak_s": round(soak_s)}))  # fmt: skip


if __name__ == "__main__":
    main()
