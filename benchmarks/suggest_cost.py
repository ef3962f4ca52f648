"""What one proposal of the search costs as its study grows, and how much of it is the
study's storage.

The platform's own searcher (`tune_glue.optuna_searcher`: ResumableOptunaSearch, TPE as
a sweep of N trials builds it, the recorded landscape's space) proposes the next trial
of a study that holds N finished trials (each with 3 intermediate values, as ASHA's rungs
report them) and 32 running ones (what 32 trials in flight leave). Each timed suggest is
followed by the tell of the oldest running trial, so 32 stay running, as in a sweep. The
study lives in:
- `rdb`: Optuna's RDB storage on a SQLite file, what a sweep uses (optuna.db in its
  folder; Optuna's cache re-reads every unfinished trial at each of its reads);
- `journal`: Optuna's journal file storage (an append-only log, replayed incrementally),
  for comparison only.

Rounds alternate the two storages (ratios from one run on a shared machine). Prints one
JSON line per storage and N with the suggest's p50 and p99 in ms over every round's
suggests, and the CPU ms per suggest.

    python benchmarks/suggest_cost.py [--trials 200,1000,2000] [--running 32]
        [--suggests 50] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import optuna

from gansweep.platform.options import DEFAULTS
from gansweep.platform.samplers import SAMPLERS
from gansweep.platform.tune_glue import optuna_searcher
from gansweep.search_spaces import load_space

SPACE = Path(__file__).parent / "landscape" / "ring8_space.yaml"
STUDY = "suggest-cost"


def storage_of(kind: str, folder: Path) -> optuna.storages.BaseStorage:
    if kind == "rdb":
        return optuna.storages.RDBStorage(f"sqlite:///{folder / 'optuna.db'}")
    backend = optuna.storages.journal.JournalFileBackend(str(folder / "optuna.log"))
    return optuna.storages.JournalStorage(backend)


def fill(storage: optuna.storages.BaseStorage, finished: int, seed: int) -> None:
    """N finished trials with random configs and values (a random sampler: cheap)."""
    space = load_space(SPACE)
    study = optuna.create_study(
        storage=storage, study_name=STUDY, direction="minimize",
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )  # fmt: skip
    rng = random.Random(seed)
    for _ in range(finished):
        trial = study.ask()
        space.define(trial)
        value = rng.uniform(0.01, 1.0)
        for step in range(3):
            trial.report(value * (3 - step), step)
        study.tell(trial, value)


def one_round(kind: str, finished: int, running: int, suggests: int, seed: int) -> list:
    """(wall s, CPU s) of each timed suggest."""
    with tempfile.TemporaryDirectory(prefix="suggest-cost-") as tmp:
        storage = storage_of(kind, Path(tmp))
        fill(storage, finished, seed)
        options = dataclasses.replace(DEFAULTS, mode="min", num_samples=finished, seed=seed)
        searcher = optuna_searcher(
            load_space(SPACE), options, STUDY, storage,
            sampler=SAMPLERS["tpe"].build(seed, finished),
        )  # fmt: skip
        live = [f"t{i}" for i in range(running)]
        for trial_id in live:
            searcher.suggest(trial_id)
        costs = []
        for i in range(suggests):
            trial_id = f"s{i}"
            wall, cpu = time.perf_counter(), time.process_time()
            searcher.suggest(trial_id)
            costs.append((time.perf_counter() - wall, time.process_time() - cpu))
            live.append(trial_id)
            searcher.on_trial_complete(live.pop(0), {options.metric: 0.5, "step": 1})
        return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", default="200,1000,2000", help="finished trials")
    parser.add_argument("--running", type=int, default=32)
    parser.add_argument("--suggests", type=int, default=50, help="timed, per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for finished in (int(n) for n in args.trials.split(",")):
        costs: dict[str, list] = {"rdb": [], "journal": []}
        for r in range(args.rounds):
            order = ["rdb", "journal"] if r % 2 == 0 else ["journal", "rdb"]
            for kind in order:
                costs[kind] += one_round(kind, finished, args.running, args.suggests, seed=r)
        for kind, pairs in costs.items():
            wall = sorted(w for w, _ in pairs)
            line = {
                "benchmark": "suggest_cost",
                "storage": kind,
                "finished": finished,
                "running": args.running,
                "suggests": len(pairs),
                "suggest_p50_ms": round(1000 * statistics.median(wall), 1),
                "suggest_p99_ms": round(1000 * wall[int(0.99 * (len(wall) - 1))], 1),
                "cpu_ms_per_suggest": round(1000 * statistics.mean(c for _, c in pairs), 1),
            }
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
