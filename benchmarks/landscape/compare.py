"""Search methods compared on a recorded landscape (`search_efficiency.py --replay TABLE`).

Each method runs its simulated sweeps (simulate.py) at each budget on every sampler seed,
without replication; efficiency.py turns them into the figures, one JSON line per
method and budget. A method is a sampler and a scheduler of the platform's registries;
a lever (`--levers`) is a variant of the default method with one thing changed, measured
the same way, so that what ships as the default is what the figures choose.

`METHOD/warm-start` (with `--warm-start SOURCE`) runs METHOD's sweeps with the top
`--warm-start-top` configs of an earlier sweep (or a config file) enqueued first, as
`gansweep sweep --warm-start` does (platform/warm_start.py). The earlier sweep's own
compute is reported beside the figures (`warm_start_source_core_s`), not in them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import optuna
from efficiency import Runs, summary
from ray.tune.schedulers import TrialScheduler
from ray.tune.search import Searcher
from replay import Landscape
from simulate import Trace, simulate, true_quality

from gansweep.platform import samplers, schedulers, tune_glue, tune_schedulers, warm_start
from gansweep.platform.sweep_input import SweepOptions
from gansweep.platform.warm_start import WarmStart
from gansweep.search_spaces import SearchSpace, load_space

HERE = Path(__file__).resolve().parent
SPACE = HERE / "ring8_space.yaml"
BASELINE = "random+fifo"
METHODS: dict[str, dict[str, str]] = {
    BASELINE: {"sampler": "random", "scheduler": "fifo"},
    "tpe+asha": {"sampler": "tpe", "scheduler": "asha"},
    "tpe+hyperband": {"sampler": "tpe", "scheduler": "hyperband"},
    "cmaes+asha": {"sampler": "cmaes", "scheduler": "asha"},
    # About ten times slower to simulate than the others (a GP fit per proposal).
    "gp+asha": {"sampler": "gp", "scheduler": "asha"},
}
Variant = Callable[[SearchSpace, SweepOptions], tuple[Searcher | None, TrialScheduler | None]]


def _pruned(space: SearchSpace, options: SweepOptions) -> tuple[Searcher, None]:
    return tune_glue.optuna_searcher(space, options, stopped_as_pruned=True), None


def _told_complete(space: SearchSpace, options: SweepOptions) -> tuple[Searcher, None]:
    return tune_glue.optuna_searcher(space, options, stopped_as_pruned=False), None


def _tpe(**settings: Any) -> Variant:
    def build(space: SearchSpace, options: SweepOptions) -> tuple[Searcher, None]:
        startup = samplers.startup_trials(options.num_samples)
        sampler = optuna.samplers.TPESampler(
            seed=options.seed, **{"n_startup_trials": startup, **settings}
        )
        return tune_glue.optuna_searcher(space, options, sampler=sampler), None

    return build


def _asha(reduction_factor: int = 3, grace: int | None = None) -> Variant:
    def build(space: SearchSpace, options: SweepOptions) -> tuple[None, TrialScheduler]:
        max_t, first_rung = schedulers.scheduler_budget(space)
        return None, tune_schedulers.ReplicaSafeASHA(
            time_attr="step",
            max_t=max_t,
            grace_period=grace or first_rung,
            reduction_factor=reduction_factor,
        )

    return build


# Variants of the default method (tpe+asha), each with one thing changed.
LEVERS: dict[str, Variant] = {
    "stopped-as-pruned": _pruned,
    "stopped-as-complete": _told_complete,
    "asha-rf2": _asha(2),
    "asha-rf4": _asha(4),
    "asha-grace1000": _asha(grace=1000),
    # Optuna 5's TPE lies constantly by default (in-flight trials count as bad): undo it.
    "tpe-no-constant-liar": _tpe(constant_liar=False),
    "tpe-startup-2": _tpe(n_startup_trials=2),
    "tpe-startup-8": _tpe(n_startup_trials=8),
}
# Needs --warm-start: the method's own searcher, an earlier study's configs enqueued first.
WARM_START = "warm-start"


def default_method() -> str:
    """The method whose sampler and scheduler are the ones `gansweep sweep` defaults to."""
    shipped = SweepOptions()
    return next(
        name
        for name, m in METHODS.items()
        if (m["sampler"], m["scheduler"]) == (shipped.sampler, shipped.scheduler)
    )


def _one(
    table: str,
    method: str,
    budget: int,
    concurrent: int,
    warm: list[WarmStart],
    seed: int,
) -> tuple[int, Trace]:
    """One simulated sweep (in a worker process)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    landscape = Landscape.read(table)
    space = load_space(str(SPACE))
    base, _, lever = method.partition("/")
    options = SweepOptions(
        **METHODS[base],
        num_samples=budget,
        max_concurrent=concurrent,
        seed=seed,
        mode="min",
        replicate_top=0,
    )
    if lever == WARM_START:
        searcher, scheduler = tune_glue.optuna_searcher(space, options, warm_start=warm), None
    else:
        searcher, scheduler = LEVERS[lever](space, options) if lever else (None, None)
    return seed, simulate(landscape, space, options, searcher, scheduler)


def run(
    table: Path,
    methods: list[str],
    budgets: list[int],
    seeds: list[int],
    concurrent: int,
    jobs: int,
    emit: Callable[[dict[str, Any]], None],
    warm: list[WarmStart] | None = None,
    warm_cost: float | None = None,
) -> None:
    """warm, warm_cost: the configs of --warm-start, and what their sweep trained."""
    landscape = Landscape.read(table)
    quality = true_quality(landscape)
    mean, worst = quality["mean"].to_dict(), quality["worst"].to_dict()
    default = default_method()
    if BASELINE not in methods:
        methods = [BASELINE, *methods]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for budget in budgets:
            runs: dict[str, Runs] = {}
            for method in methods:
                work = partial(_one, str(table), method, budget, concurrent, warm or [])
                traces = dict(pool.map(work, seeds))
                runs[method] = Runs.of([traces[s] for s in seeds], mean, worst)
                figures = summary(runs[method], runs[BASELINE])
                emit(
                    {
                        "method": method,
                        "budget": budget,
                        "seeds": len(seeds),
                        "default": method == default,
                        **figures,
                        # The targets: a fifth of random's cost, 4 seeds in 5 as good.
                        "targets_met": _met(figures),
                        "concurrent": concurrent,
                        "configs": len(quality),
                        "table": str(table),
                        **(_warm_figures(warm or [], warm_cost) if WARM_START in method else {}),
                    }
                )


def _warm_figures(warm: list[WarmStart], cost: float | None) -> dict[str, Any]:
    return {
        "warm_start": [w.origin for w in warm],
        "warm_start_configs": [w.params for w in warm],
        "warm_start_source_core_s": None if cost is None else round(cost, 1),
    }


def warm_start_plan(source: str, top: int) -> tuple[list[WarmStart], float | None]:
    """The configs `gansweep sweep --warm-start SOURCE` would enqueue on the landscape's
    space, and the training core-seconds their sweep spent (None for a config file)."""
    from gansweep.records.leaderboard import standings_and_runs
    from gansweep.records.manifest import MANIFEST_FILE, Manifest

    space = load_space(str(SPACE))
    planned = warm_start.plan(space, [source], storage=".", top=top)
    folder = Path(source)
    if not (folder / MANIFEST_FILE).is_file():
        return planned, None
    manifest = Manifest.load(folder.resolve().parent, folder.resolve().name)
    runs = standings_and_runs(manifest)[1]
    return planned, float(runs["metrics.train_cpu_seconds"].sum())


def _met(figures: dict[str, Any]) -> bool:
    ratio = figures["cost_ratio"]
    return ratio != "inf" and float(ratio) <= 0.2 and float(figures["win_rate"]) >= 0.8


def _refuse(message: str) -> NoReturn:
    """Bad input: the message on stderr, exit code 2, nothing run."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def parse(args: Any) -> dict[str, Any]:
    """search_efficiency.py's replay arguments, checked."""
    methods = list(METHODS) if args.methods == "all" else args.methods.split(",")
    if args.levers:
        methods += [f"{default_method()}/{lever}" for lever in LEVERS]
    levers = [*LEVERS, WARM_START]
    for method in methods:
        base, _, lever = method.partition("/")
        if base not in METHODS or (lever and lever not in levers):
            valid = ", ".join([*METHODS, *(f"{default_method()}/{lv}" for lv in levers)])
            _refuse(f"unknown method {method!r}; valid: {valid}")
        if lever == WARM_START and not args.warm_start:
            _refuse(f"method {method!r} needs --warm-start SWEEP_FOLDER|CONFIG_FILE")
    try:
        warm, warm_cost = (
            warm_start_plan(args.warm_start, args.warm_start_top) if args.warm_start else ([], None)
        )
    except warm_start.WarmStartError as err:
        _refuse(str(err))
    return {
        "warm": warm,
        "warm_cost": warm_cost,
        "table": Path(args.replay),
        "methods": methods,
        "budgets": [int(b) for b in args.budgets.split(",")],
        "seeds": list(range(args.replay_seeds)),
        "concurrent": args.concurrent,
        "jobs": args.jobs or os.cpu_count() or 1,
    }
