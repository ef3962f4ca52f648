"""The replay trainable: a trial that serves a recorded GAN run instead of training one.

    gansweep sweep --space benchmarks/landscape/ring8_space.yaml \
        --trainable benchmarks/landscape/replay.py:replay --num-samples 200 ...

It keeps the platform's trainable contract (gansweep/platform/trainable_registry.py): it
opens the trial's MLflow run through the records layer, logs and reports the recorded
metrics at every recorded evaluation with a checkpoint, and closes the run with its
outcome. So Tune, Optuna, every scheduler, the ranking, replication, export and the
report run exactly as on real trials, and the platform never asks which it runs.

- The curve: the table's rows of the trial's config (every searched field must match;
  the config must be in the landscape). A trial replays the seed chosen by its trial id
  (a stable hash); a replica (a config retrained on a fresh seed) replays another seed
  than the trial it replicates, so replication meets the recorded seed-to-seed spread.
  With ``GANSWEEP_REPLAY_SEED_BY=config`` the seed comes from the config instead (its
  own ``seed`` where the table recorded it, else a hash of its other fields), so that two
  sweeps over the same configs replay the same curves whatever their trial ids
  (benchmarks/soak.py compares a faulted sweep's leaderboard with a clean one's).
- The time: each evaluation comes after ``speed`` x the recorded training seconds since
  the last one (``GANSWEEP_REPLAY_SPEED``; 0, the default, is instant).
- The table: ``GANSWEEP_REPLAY_TABLE`` (default: the committed ring8_landscape.csv).
  Both variables are read where the sweep starts; Ray sends their values to the workers
  with this file's code.

It imports no torch (nor the trial schema, which loads it): a replay trial is a light
process, so hundreds can be in flight on one machine.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray import tune

from gansweep.records.ranking import trial_outcome
from gansweep.records.run_format import (
    REPLICA_KEY,
    RESULT_RUN_ENDED,
    RESULT_RUN_ID,
    SweepRecords,
    TrialIdentity,
)
from gansweep.records.write import TrialRun

TABLE = Path(
    os.environ.get("GANSWEEP_REPLAY_TABLE", Path(__file__).with_name("ring8_landscape.csv"))
).resolve()
SPEED = float(os.environ.get("GANSWEEP_REPLAY_SPEED", "0"))
SEED_BY = os.environ.get("GANSWEEP_REPLAY_SEED_BY", "trial")  # or "config"
CHECKPOINT_FILE = "replay.json"
# TrialConfig's default seed, for a trial whose config sets none (the replay loads no
# trial schema, which loads torch; tests/landscape/test_replay.py checks the two agree).
DEFAULT_SEED = 0
# The table's columns that are not a config field nor a metric (record.py writes them).
KEYS = ("combination", "trial_id", "status")

_loaded: dict[str, Landscape] = {}  # per process: a reused actor reads the table once


class Landscape:
    """A recorded landscape table: one row per (config, seed, evaluation step); the
    config's fields come first, up to ``step``, then KEYS, then the metrics."""

    def __init__(self, frame: pd.DataFrame) -> None:
        columns = list(frame.columns)
        self.fields = columns[: columns.index("step")]
        self.metrics = [c for c in columns[columns.index("step") :] if c not in KEYS]
        # One id per config (every field but the seed), for whoever compares configs.
        keys = [f for f in self.fields if f != "seed"]
        self.frame = frame.assign(config_id=frame.groupby(keys, dropna=False).ngroup())
        self._found: dict[tuple, pd.DataFrame] = {}  # runs_of's answers (a sweep asks again)

    @classmethod
    def read(cls, path: str | Path) -> Landscape:
        key = str(path)
        if key not in _loaded:
            _loaded[key] = cls(pd.read_csv(path))
        return _loaded[key]

    def runs_of(self, config: dict[str, Any]) -> pd.DataFrame:
        """The rows of `config` (every seed): the rows whose fields equal each field the
        config sets, except its seed. Raises KeyError unless exactly one config matches."""
        key = tuple(sorted((k, repr(v)) for k, v in config.items() if k in self.fields))
        if key not in self._found:
            self._found[key] = self._match(config)
        return self._found[key]

    def _match(self, config: dict[str, Any]) -> pd.DataFrame:
        rows = np.ones(len(self.frame), dtype=bool)
        for name, value in config.items():
            if name == "seed" or name not in self.fields:
                continue
            column = self.frame[name]
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if number and pd.api.types.is_numeric_dtype(column) and column.dtype != bool:
                rows &= np.isclose(column.to_numpy(dtype=float), value, rtol=1e-9, atol=0)
            elif value is None:
                rows &= column.isna().to_numpy()
            else:
                rows &= (column.astype(str) == str(value)).to_numpy()
        found = self.frame[rows]
        configs = found.drop_duplicates([f for f in self.fields if f != "seed"])
        if len(configs) != 1:
            raise KeyError(f"{len(configs)} configs of the landscape match {config}")
        return found

    def curve(self, config: dict[str, Any], trial_id: str, by: str = "trial") -> pd.DataFrame:
        """The evaluations this trial replays, in step order (see replayed_seed); `by`
        "config" keys the seed on the config, not on the trial id."""
        runs = self.runs_of(config)
        seeds = sorted(int(s) for s in runs["seed"].unique())
        replica_of = config.get(REPLICA_KEY)
        if by == "config" and replica_of is None and config.get("seed") in seeds:
            seed = int(config["seed"])  # a space that searches the seed: the one it chose
        elif by == "config":
            key = config_key(config)
            seed = (
                replayed_seed(seeds, key, None)
                if replica_of is None
                else replayed_seed(seeds, trial_id, key)
            )
        else:
            seed = replayed_seed(seeds, trial_id, replica_of)
        return runs[runs["seed"] == seed].sort_values("step")


def config_key(config: dict[str, Any]) -> str:
    """A config's identity without its seed (nor the replica's link to its trial)."""
    kept = {k: v for k, v in config.items() if k not in ("seed", REPLICA_KEY)}
    return json.dumps(kept, sort_keys=True, default=str)


def _hash(text: str) -> int:
    return zlib.crc32(text.encode())  # stable across processes, unlike hash()


def replayed_seed(seeds: list[int], trial_id: str, replica_of: str | None) -> int:
    """A trial's recorded seed, from its trial id; a replica's, another one than its
    trial's (where the table has more than one)."""
    if replica_of is None or len(seeds) == 1:
        return seeds[_hash(trial_id) % len(seeds)]
    theirs = _hash(replica_of) % len(seeds)
    return seeds[(theirs + 1 + _hash(trial_id) % (len(seeds) - 1)) % len(seeds)]


def replay(config: dict[str, Any], context: SweepRecords) -> None:
    """The trainable (see the module's docstring)."""
    landscape = Landscape.read(TABLE)
    trial_id = tune.get_context().get_trial_id()
    replica_of = config.get(REPLICA_KEY)
    if SEED_BY not in ("trial", "config"):
        raise ValueError(f"GANSWEEP_REPLAY_SEED_BY={SEED_BY!r}; valid: trial, config")
    curve = landscape.curve(config, trial_id, SEED_BY)
    first = curve.iloc[0]
    # The params a real trial logs: the recorded config with this trial's own values (its
    # seed, not the recorded one it replays: replication picks fresh seeds from these).
    params = {f: plain(first[f]) for f in landscape.fields}
    params.update({"seed": DEFAULT_SEED, **{k: v for k, v in config.items() if k in params}})
    run_id, done_step, spent = None, 0, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            saved = json.loads((Path(folder) / CHECKPOINT_FILE).read_text())
        run_id, done_step = saved["mlflow_run_id"], saved["step"]
        spent = float(curve.loc[curve["step"] <= done_step, "train_seconds"].max())
    who = TrialIdentity(context, trial_id, str(first["combination"]), replica_of)
    run = TrialRun(who, params, run_id)
    last = curve.iloc[-1]
    outcome = trial_outcome(last["step"], last["steps"], bool(last["diverged"]))
    ended = False
    for _, row in curve[curve["step"] > done_step].iterrows():
        if SPEED > 0:
            time.sleep(SPEED * max(0.0, float(row["train_seconds"]) - spent))
        spent = float(row["train_seconds"])
        metrics = {m: float(row[m]) for m in landscape.metrics if pd.notna(row[m])}
        step = int(row["step"])
        run.log_evaluation(metrics, step, [])
        ended = step == int(last["step"])
        if ended:  # as a real trial: the run ends before the last report, which says so
            run.finish(outcome)
        with tempfile.TemporaryDirectory(prefix="gansweep-replay-") as folder:
            state = {"step": step, "mlflow_run_id": run.run_id, "trial_id": trial_id}
            (Path(folder) / CHECKPOINT_FILE).write_text(json.dumps(state))
            result = {**metrics, RESULT_RUN_ID: run.run_id, RESULT_RUN_ENDED: ended}
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(folder))
    if not ended:  # restored at its last step
        run.finish(outcome)


def plain(value: Any) -> Any:
    """A table cell as the plain Python value a config holds (NaN: None)."""
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
