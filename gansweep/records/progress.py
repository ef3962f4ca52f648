"""Where a sweep stands, read from its manifest and MLflow only: what `gansweep status`,
`gansweep ls` and the live view of a running sweep show. Reading no Ray state, it works
while the sweep runs, after it ended, and after its driver died (a manifest still marked
running whose driver process is gone on this host)."""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from gansweep.records import ranking
from gansweep.records.driver_lock import driver_alive, holder_state, read_holder
from gansweep.records.leaderboard import Standings, standings
from gansweep.records.manifest import Manifest

RUNNING, FINISHED, INTERRUPTED = "running", "finished", "interrupted"
BEST_SHOWN = 5  # the best trials in the table, besides the running ones


def this_driver() -> str:
    """The value of Manifest.driver for this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class Row:
    """One line of the table: a running or a top trial (or replica)."""

    name: str  # <combination>-<trial id>, or "... seed N" for a replica
    combination: str
    step: int
    steps: int
    value: float  # the sweep's metric, NaN before its first evaluation
    status: str
    rank: int = 0  # 0: not ranked (yet)
    role: str = "trial"  # trial | replica


@dataclass
class SweepProgress:
    name: str
    state: str  # running | finished | interrupted
    note: str  # why, when it is not plain (the driver died, or cannot be checked)
    phase: str  # search | search + replication | replication | done
    metric: str
    mode: str
    planned: int  # trials of the search
    done: int
    running: int
    replicas_planned: int  # top configs x fresh seeds (0: no replication)
    replicas_done: int
    elapsed_s: float
    eta_s: float | None  # an estimate of the time left, while running
    created: str
    resume: str  # the command that continues it ("" when there is nothing to continue)
    best: dict[str, Any] | None  # the champion so far: combination, value, trial_id
    rows: list[Row] = field(default_factory=list)
    ended: list[Row] = field(default_factory=list)  # every run that ended, in start order

    @property
    def pending(self) -> int:
        return max(self.planned - self.done - self.running, 0)

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["pending"] = self.pending
        return _finite(out)


def _finite(value: Any) -> Any:
    """JSON has no NaN: no value is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _state(manifest: Manifest) -> tuple[str, str]:
    if manifest.status != RUNNING:
        return manifest.status, ""
    holder = read_holder(manifest.sweep_dir)
    if holder is not None:  # the lock's heartbeat tells on any host
        where = f"{holder.host}:{holder.pid}"
        state = holder_state(holder)
        if state == "dead":
            return INTERRUPTED, f"its driver ({where}) died"
        if state == "stale":
            age = time.time() - holder.heartbeat
            return INTERRUPTED, f"its driver ({where}) sent no heartbeat for {age:.0f} s"
        return RUNNING, ""
    # No lock: a driver that died without ever holding one (a sweep from before locks).
    alive = driver_alive(manifest.driver)
    if alive is False:
        return INTERRUPTED, f"its driver ({manifest.driver}) died"
    if alive is None and manifest.driver:
        return RUNNING, f"driver {manifest.driver} runs on another host: not checked"
    return RUNNING, ""


def _row(record: dict[str, Any], name: str) -> Row:
    def number(key: str) -> int:
        value = pd.to_numeric(record.get(key), errors="coerce")
        return 0 if pd.isna(value) else int(value)

    value = pd.to_numeric(record.get("value"), errors="coerce")
    return Row(
        name=name,
        combination=str(record["combination"]),
        step=number("step"),
        steps=number("planned_steps"),
        value=float("nan") if pd.isna(value) else float(value),
        status=str(record["status"]),
        rank=int(record.get("rank", 0) or 0),
    )


def _replica_row(record: dict[str, Any]) -> Row:
    name = f"{record['combination']}-{record['replica_of']} seed {record['seed']}"
    return dataclasses.replace(_row(record, name), role="replica")


def _trial_row(record: dict[str, Any]) -> Row:
    return _row(record, f"{record['combination']}-{record['trial_id']}")


def _rows(ranked: Standings) -> tuple[list[Row], list[Row]]:
    """(the table: running replicas and trials, then the best trials; every ended run)"""
    trials = ranked.trials.to_dict("records")
    replicas = ranked.replicas.to_dict("records")
    # The best in the leaderboard's order (ranking.rank_board: a config's replicas count
    # once all its planned seeds are in), so the table, the leaderboard and the champion
    # ("best so far") agree.
    board = ranked.board.rename(columns={ranked.metric: "value"}).to_dict("records")
    by_rank = [t for t in board if t["rank"] > 0][:BEST_SHOWN]
    shown = {t["trial_id"] for t in by_rank}
    running = [t for t in trials if t["status"] == ranking.RUNNING and t["trial_id"] not in shown]
    rows = [_replica_row(r) for r in replicas if r["status"] == ranking.RUNNING]
    rows += [_trial_row(t) for t in running + by_rank]
    ended = [_trial_row(t) for t in sorted(trials, key=lambda t: t["start"])]
    ended += [_replica_row(r) for r in replicas]
    return rows, [row for row in ended if row.status in ranking.ENDED]


def _elapsed(frame: pd.DataFrame, still_running: bool) -> float:
    """From the first run's start to now (running) or to the last run's end."""
    if frame.empty or frame["start"].isna().all():
        return 0.0
    first = float(frame["start"].min()) / 1000
    if still_running:
        return max(time.time() - first, 0.0)
    ends = frame["start"] / 1000 + frame["seconds"]
    return max(float(ends.max()) - first, 0.0)


def progress(manifest: Manifest) -> SweepProgress:
    """Read the sweep's manifest and MLflow runs once and say where it stands."""
    state, note = _state(manifest)
    seen = dataclasses.replace(manifest, status=state)  # open runs of a dead driver: interrupted
    ranked = standings(seen)
    trials, replicas = ranked.trials, ranked.replicas
    options = manifest.options
    planned = int(options.get("num_samples") or len(trials))
    if manifest.replication is not None:
        configs_planned = len(manifest.replication.trial_ids)
    else:
        configs_planned = int(options.get("replicate_top") or 0)
    replicas_planned = configs_planned * manifest.seeds_planned
    done = int(trials["status"].isin(ranking.ENDED).sum())
    running = int((trials["status"] == ranking.RUNNING).sum())
    replicas_done = int(replicas["status"].isin(ranking.ENDED).sum()) if len(replicas) else 0
    if state == FINISHED:
        phase = "done"
    elif manifest.replication is not None:
        phase = "replication"
    elif len(replicas):  # replicas started inside the search (platform/backfill.py)
        phase = "search + replication"
    else:
        phase = "search"
    elapsed = _elapsed(pd.concat([trials, replicas]), state == RUNNING)
    eta = None
    total, finished = planned + replicas_planned, done + replicas_done
    if state == RUNNING and finished > 0:
        # Every trial and replica counted as one unit of work: rough (a trial ASHA stops
        # is cheaper), but it needs nothing the records do not hold.
        eta = elapsed / finished * max(total - finished, 0)
    champion = ranked.champion
    best = None
    if champion is not None:
        best = {
            "combination": str(champion["combination"]),
            "trial_id": str(champion["trial_id"]),
            "value": float(champion[manifest.metric]),
            "step": int(champion["step"]),
        }
    storage = Path(manifest.sweep_dir).parent
    rows, ended = _rows(ranked)
    return SweepProgress(
        name=manifest.name,
        state=state,
        note=note,
        phase=phase,
        metric=manifest.metric,
        mode=manifest.mode,
        planned=planned,
        done=done,
        running=running,
        replicas_planned=replicas_planned,
        replicas_done=replicas_done,
        elapsed_s=elapsed,
        eta_s=eta,
        created=manifest.created,
        resume=(
            f"gansweep resume {manifest.name} --storage {storage}" if state == INTERRUPTED else ""
        ),
        best=best,
        rows=rows,
        ended=ended,
    )
