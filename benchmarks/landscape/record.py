"""Record the GAN landscape that the replay trainable serves, and turn it into a table.

    python benchmarks/landscape/record.py run     # record, or continue, the seed sweeps
    python benchmarks/landscape/record.py table   # their MLflow runs -> the committed table

`run` trains every config of `ring8_space.yaml` (216) on seeds 0, 1 and 2, one sweep per
seed, through the platform itself: ``gansweep sweep --sampler grid --scheduler fifo
--replicate-top 0 --set seed=K``, two trials at a time. Stopped at any point (Ctrl-C, a
lost machine), the same command continues with ``gansweep resume``; a seed's sweep that
finished is skipped. Its records go to a work folder (``landscape_runs/``, ignored by git):
the sweeps and an MLflow SQLite file.

`table` reads every trial run of those sweeps and writes one row per (config, seed,
evaluation step): every TrialConfig field (so `gansweep train` can retrain the row from
the table alone), the step, every metric the trial reported (including the training wall
and CPU seconds so far), its trial id and how it ended.

A field added to TrialConfig after a table was recorded gets a column of its default,
which its runs trained with: so `pac`, `lr_schedule`, `lr_floor` and `lr_warmup` in
ring8_landscape.csv (tests/trainables/test_engine.py pins the engine at those defaults
to the one that recorded it, and tests/landscape/test_landscape_table.py retrains a row).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from functools import partial
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient

from gansweep.records import Manifest, config_from_params, ranking
from gansweep.records.read import child_runs
from gansweep.records.run_format import TAG_COMBINATION, TAG_STATUS, TAG_TRIAL_ID
from gansweep.records.store import with_retries
from gansweep.trainables.config import TrialConfig

HERE = Path(__file__).resolve().parent
SPACE = HERE / "ring8_space.yaml"
TABLE = HERE / "ring8_landscape.csv"
WORK = HERE.parent.parent / "landscape_runs"
SEEDS = (0, 1, 2)
# The columns of the table after the config's fields, in order (then the metrics).
KEYS = ["combination", "trial_id", "status"]
RECORDED = (ranking.FINISHED, ranking.DIVERGED)  # how a grid trial under FIFO ends


def sweep_name(seed: int) -> str:
    return f"landscape-ring8-seed{seed}"


def gansweep() -> str:
    """The console script beside this interpreter (the project's .venv)."""
    script = Path(sys.executable).with_name("gansweep")
    return str(script) if script.exists() else shutil.which("gansweep") or "gansweep"


def record(work: Path, seeds: tuple[int, ...], concurrent: int) -> None:
    """Run (or resume) each seed's grid sweep in turn."""
    storage, uri = work / "sweeps", f"sqlite:///{work / 'mlflow.db'}"
    storage.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        name = sweep_name(seed)
        try:
            status = Manifest.load(storage, name).status
        except LookupError:
            status = None
        if status == "finished":
            print(f"{name}: finished, skipped", flush=True)
            continue
        if status is None:
            command = [
                gansweep(), "sweep", "--space", str(SPACE), "--name", name,
                "--sampler", "grid", "--scheduler", "fifo", "--replicate-top", "0",
                "--num-samples", "100000",  # fitted to the grid's size
                "--max-concurrent", str(concurrent), "--set", f"seed={seed}",
                "--storage", str(storage), "--tracking-uri", uri,
            ]  # fmt: skip
        else:
            # resume reads the tracking URI from the sweep's manifest
            command = [gansweep(), "resume", name, "--storage", str(storage)]
        print(f"{name}: {' '.join(command[1:3])}", flush=True)
        subprocess.run(command, check=True)


def run_rows(client: MlflowClient, run) -> list[dict]:  # type: ignore[no-untyped-def]
    """One row per evaluation step of one trial run."""
    config = config_from_params(run.data.params).model_dump()
    by_step: dict[int, dict] = {}
    for key in sorted(run.data.metrics):
        history = with_retries(partial(client.get_metric_history, run.info.run_id, key))
        for point in history:
            by_step.setdefault(int(point.step), {})[key] = point.value
    tags = run.data.tags
    keys = {
        "combination": tags.get(TAG_COMBINATION, ""),
        "trial_id": tags.get(TAG_TRIAL_ID, ""),
        "status": tags.get(TAG_STATUS, ""),
    }
    return [{**config, **keys, **metrics} for _, metrics in sorted(by_step.items())]


def table(work: Path, seeds: tuple[int, ...]) -> tuple[pd.DataFrame, dict[int, float]]:
    """Every trial run of the seed sweeps, one row per evaluation, sorted; and each seed
    sweep's wall seconds so far (its first run's start to its last run's end)."""
    rows: list[dict] = []
    wall: dict[int, float] = {}
    for seed in seeds:
        try:
            manifest = Manifest.load(work / "sweeps", sweep_name(seed))
        except LookupError:
            print(f"{sweep_name(seed)}: not recorded yet", flush=True)
            continue
        client = MlflowClient(manifest.tracking_uri)
        runs = child_runs(manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id)
        # Runs still training (or cut off with a driver) have no outcome yet: left out
        # until a later `run` completes them.
        ended = [r for r in runs if r.data.tags.get(TAG_STATUS) in RECORDED]
        print(f"{sweep_name(seed)}: {len(ended)} ended trial runs of {len(runs)}", flush=True)
        if ended:
            first = min(r.info.start_time for r in ended)
            wall[seed] = (max(r.info.end_time or 0 for r in ended) - first) / 1000
        for i, run in enumerate(ended):
            rows.extend(run_rows(client, run))
            if (i + 1) % 50 == 0:
                print(f"{sweep_name(seed)}: {i + 1}/{len(ended)} runs read", flush=True)
    frame = pd.DataFrame(rows)
    fields = list(TrialConfig.model_fields)
    metrics = sorted(c for c in frame if c not in fields and c not in KEYS and c != "step")
    frame = frame[[*fields, "step", *KEYS, *metrics]]
    frame["step"] = frame["step"].astype(int)
    config_keys = [f for f in fields if f != "seed"]
    order = [*config_keys, "seed", "step"]
    return frame.sort_values(order, na_position="first").reset_index(drop=True), wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["run", "table"])
    parser.add_argument("--work", type=Path, default=WORK, help="sweeps + MLflow store")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--max-concurrent", type=int, default=2)
    parser.add_argument("-o", "--out", type=Path, default=TABLE)
    args = parser.parse_args(argv)
    work, seeds = args.work.resolve(), tuple(args.seeds)
    if args.what == "run":
        record(work, seeds, args.max_concurrent)
        return
    frame, wall = table(work, seeds)
    frame.to_csv(args.out, index=False)
    fields = [f for f in TrialConfig.model_fields if f != "seed"]
    configs = frame.groupby(fields, dropna=False).ngroup()
    last = frame.groupby("trial_id").tail(1)
    summary = {
        "table": str(args.out),
        "rows": len(frame),
        "bytes": args.out.stat().st_size,
        "configs": int(configs.nunique()),
        "configs_per_seed": {int(k): int(v) for k, v in last.groupby("seed").size().items()},
        "wall_s_per_seed": {k: round(v) for k, v in wall.items()},
        "train_core_s": round(float(last["train_seconds"].sum())),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
