"""The platform's own answer to the published 2-D toy tables (VEEGAN, Srivastava et al.
2017; PacGAN, Lin et al. 2018): for ring8 and grid25, run the sweep a user would run,
retrain its exported champion on 5 fresh seeds, and put its modes and high-quality share
(mean ± sd over the seeds) next to the default config on the same seeds and the
published rows. A third row, digits (the `digits` space: conditional, AC-GAN and
augmentation as the space decides), sets the champion's `fd`, precision, recall and
classifier score against the default config's.

The sweep: `gansweep sweep --space quick --set dataset=D --set steps=S --num-samples
--budget --replicate-top --top --seeds --replicas` (TPE + ASHA, the defaults), through
gansweep.platform in this process. The champion is `best.yaml`, exported by the sweep;
each retrain is what `gansweep train best.yaml --set seed=N` runs (the engine, the same
config), on seeds that neither the search nor the replication used. Retrains run two at
a time, one torch thread each.

Targets (issue "Beyond every published row"), on every one of the fresh seeds: ring8 8/8
modes at >= 97 % high quality on average and >= 95 % at worst; grid25 25/25 at >= 95 %
and >= 93 %; on every data set the champion beats the default config's `distance` (on
digits, its `fd`) on every seed.
Prints JSON lines: one per retrain, one row per method and data set (published rows
included, each naming the paper's table it comes from), and the verdicts. The
champion's exported config is written to ``--champions/<dataset>.yaml``, so that anyone
can retrain it on seeds of their own.

Then every built-in 2-D space as it ships (its own data set and steps) at a budget of
16: one row per space, its champion against the default config in modes and in high
quality (target: it beats the default in both). Those champions go to
``--champions/spaces/<space>.yaml``. ``--retrain-only`` runs no sweep: it retrains the
champions already there, e.g. on seeds of your own.

    python benchmarks/quality_study.py [--datasets ring8,grid25,digits] [--space quality]
        [--budget 32] [--spaces quick,landscape,quality,seed_paper] [--space-budget 16]
        [--top 3] [--replicas 3] [--fresh-seeds 1000,...,1004]
        [--metric distance] [--workdir DIR] [--champions benchmarks/champions]
        [--retrain-only]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import _sweep_runs as runs

from gansweep.records.manifest import BEST_FILE
from gansweep.search_spaces import load_space
from gansweep.trainables.config import read_config
from gansweep.trainables.data import DATASETS
from gansweep.trainables.metric_registry import METRICS, PRIMARY_METRIC

STEPS = {"ring8": 3000, "grid25": 5000}  # the project's baseline protocol, for `quick`
# Data sets searched in a space of their own, whatever --space says (it is a 2-D one).
OWN_SPACE = {"digits": "digits"}
# What a retrain reports, per kind of data set: the 2-D mixtures' mode metrics, or the
# image metrics of the data set's own classifier.
SHOWN = {
    "2-D": ("modes_captured", "high_quality", "distance", "diverged"),
    "image": ("fd", "precision", "recall", "classifier_score", "distance", "diverged"),
}
# (modes, % high quality) from the papers' 2-D tables, as given in the issue. The two
# tables use different protocols (VEEGAN: Srivastava et al. 2017, Table 1; PacGAN: Lin
# et al. 2018, Table 1, which reruns GAN and ALI under its own), so each row names its
# table.
PUBLISHED = {
    "ring8": {
        "GAN (PacGAN's table)": (6.3, 98.2),
        "VEEGAN (VEEGAN's table)": (8.0, 52.9),
        "PacGAN2 (PacGAN's table)": (7.9, 95.6),
        "PacGAN3 (PacGAN's table)": (7.8, 97.7),
    },
    "grid25": {
        "GAN (PacGAN's table)": (17.3, 94.8),
        "VEEGAN (VEEGAN's table)": (24.6, 40.0),
        "ALI (PacGAN's table)": (24.1, 95.7),
        "PacGAN4 (PacGAN's table)": (24.8, 93.6),
    },
}
# modes on every seed, % high quality on average, % high quality at worst
TARGETS = {"ring8": (8, 97.0, 95.0), "grid25": (25, 95.0, 93.0)}
# How many modes each 2-D mixture has, from the mixture itself.
MODES = {name: len(DATASETS[name].load().modes) for name in ("ring8", "grid25")}
# The built-in spaces on a 2-D mixture, each run as it ships by --spaces.
SPACES_2D = ("quick", "landscape", "quality", "seed_paper")


def retrain(job: tuple[str | None, list[str]]) -> dict[str, Any]:
    """Train one config to the end, as `gansweep train [FILE] --set ...` does."""
    import torch

    from gansweep.trainables.engine import GANTrainer

    torch.set_num_threads(1)
    path, overrides = job
    cfg = read_config(path, overrides)
    metrics = list(GANTrainer(cfg).evaluations())[-1]
    return {k: metrics[k] for k in (*SHOWN["2-D"], *SHOWN["image"]) if k in metrics}


def _mean_sd(values: list[float], digits: int) -> tuple[float, float]:
    return round(statistics.mean(values), digits), round(statistics.stdev(values), digits)


def row(dataset: str, method: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """One method's row: mean, sd and every seed's value of what the data set reports."""
    out: dict[str, Any] = {"benchmark": "quality_study", "row": True, "dataset": dataset,
                           "method": method}  # fmt: skip
    if "modes_captured" in results[0]:
        modes = [r["modes_captured"] for r in results]
        hq = [100 * r["high_quality"] for r in results]
        out["modes_mean"], out["modes_sd"] = _mean_sd(modes, 2)
        out["hq_mean"], out["hq_sd"] = _mean_sd(hq, 1)
        out["modes_per_seed"], out["hq_per_seed"] = modes, [round(h, 1) for h in hq]
    else:
        for key in ("fd", "precision", "recall", "classifier_score"):
            values = [r[key] for r in results]
            out[f"{key}_mean"], out[f"{key}_sd"] = _mean_sd(values, 4)
            out[f"{key}_per_seed"] = [round(v, 4) for v in values]
    out["distance_per_seed"] = [round(r["distance"], 4) for r in results]
    return out


def verdict(dataset: str, mine: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """The targets, judged on every seed."""
    out: dict[str, Any] = {"benchmark": "quality_study", "verdict": True, "dataset": dataset}
    if dataset in TARGETS:
        want_modes, want_mean, want_worst = TARGETS[dataset]
        out["target"] = (
            f"{want_modes} modes on every seed, high quality >= {want_mean}% on average "
            f"and >= {want_worst}% at worst"
        )
        out["target_met"] = (
            min(mine["modes_per_seed"]) >= want_modes
            and statistics.mean(mine["hq_per_seed"]) >= want_mean
            and min(mine["hq_per_seed"]) >= want_worst
        )
    pairs = list(zip(mine["distance_per_seed"], default["distance_per_seed"], strict=True))
    out["beats_default_on_every_seed"] = all(c < d for c, d in pairs)
    out["champion_vs_default_distance"] = [mine["distance_per_seed"], default["distance_per_seed"]]
    return out


def champion_vs_default(
    label: str, space: str, dataset: str, steps: int, budget: int, champion_file: Path,
    args: argparse.Namespace, workdir: Path, emit: Any,
) -> dict[str, dict[str, Any]] | None:  # fmt: skip
    """The sweep a user would run (``space`` on ``dataset`` at ``steps``, ``budget``
    trials), its exported champion written to ``champion_file``, then the champion and
    the default config retrained on the fresh seeds. With ``--retrain-only`` the sweep is
    skipped and ``champion_file`` (an earlier run's) is retrained. Returns their rows by
    method, or None when the sweep crowned nobody."""
    if not args.retrain_only and not sweep_champion(
        label, space, dataset, steps, budget, champion_file, args, workdir, emit
    ):
        return None
    fresh = [int(s) for s in args.fresh_seeds.split(",")]
    jobs = {
        "champion (this sweep)": [(str(champion_file), [f"seed={s}"]) for s in fresh],
        # The default config on this data set, at the sweep's budget (the digits space's
        # fixed values too: the default MLP cannot train on images).
        "default config": [
            (None, [f"{k}={v}" for k, v in _fixed(space, dataset, steps).items()] + [f"seed={s}"])
            for s in fresh
        ],
    }
    combination = read_config(str(champion_file), []).combination
    rows = {}
    with ProcessPoolExecutor(max_workers=args.cpus) as pool:
        for method, batch in jobs.items():
            results = list(pool.map(retrain, batch))
            for seed, result in zip(fresh, results, strict=True):
                emit({"benchmark": "quality_study", "dataset": dataset, "space": space,
                      "method": method, "seed": seed, **result})  # fmt: skip
            rows[method] = row(dataset, method, results)
            rows[method]["champion"] = combination
    return rows


def sweep_champion(
    label: str, space: str, dataset: str, steps: int, budget: int, champion_file: Path,
    args: argparse.Namespace, workdir: Path, emit: Any,
) -> bool:  # fmt: skip
    """Run the sweep and write its exported champion to ``champion_file``; False when it
    crowned nobody."""
    done = runs.run_sweep(
        workdir,
        label=label,
        space=space,
        num_samples=budget,
        seed=args.seed,
        overrides=[f"dataset={dataset}", f"steps={steps}"],
        replicate_top=args.top,
        seeds=args.replicas,
        metric=args.metric,
    )
    best = Path(done.manifest.sweep_dir) / BEST_FILE
    champion = done.standings.champion
    emit(
        {
            "benchmark": "quality_study",
            "dataset": dataset,
            "sweep": {"space": space, "budget": budget, "steps": steps, "top": args.top,
                      "replicas": args.replicas, "metric": args.metric,
                      "wall_s": round(done.wall_s, 1)},
            "champion": champion["combination"] if champion is not None else None,
            "champion_config": best.read_text() if best.exists() else None,
        }
    )  # fmt: skip
    if champion is None:
        return False
    champion_file.parent.mkdir(parents=True, exist_ok=True)
    champion_file.write_text(
        f"# The champion of a {budget}-trial sweep of the {space} space on {dataset} "
        f"(benchmarks/quality_study.py, sampler seed {args.seed}),\n"
        f"# its exported best.yaml. Retrain: gansweep train THIS.yaml --set seed=N\n"
        + best.read_text()
    )
    return True


def study(dataset: str, args: argparse.Namespace, workdir: Path, emit: Any) -> None:
    """One data set against the published rows: the sweep of ``--space`` (or the data
    set's own), its champion and the default config on the fresh seeds, the verdict."""
    space = OWN_SPACE.get(dataset, args.space)
    steps = args.steps or (STEPS[dataset] if space == "quick" else load_space(space).fixed["steps"])
    rows = champion_vs_default(
        f"study-{dataset}", space, dataset, steps, args.budget,
        args.champions / f"{dataset}.yaml", args, workdir, emit,
    )  # fmt: skip
    if rows is None:
        return
    for name, (modes, hq) in PUBLISHED.get(dataset, {}).items():
        published = {"method": f"published: {name}", "modes_mean": modes, "hq_mean": hq}
        emit({"benchmark": "quality_study", "row": True, "dataset": dataset, **published})
    for r in rows.values():
        emit(r)
    emit(verdict(dataset, rows["champion (this sweep)"], rows["default config"]))


def space_verdict(space: str, mine: dict[str, Any], default: dict[str, Any]) -> dict[str, Any]:
    """One built-in space's row (issue item "every built-in space gives a champion worth
    having"): does its champion beat the default config in modes *and* in high quality?

    Modes: more on average, or every mode on every seed (there is nothing more to hold:
    a tie at the ceiling is not a loss). High quality: a higher mean. Each comes
    with the seeds on which the champion did at least as well (modes) or better (high
    quality), so a win carried by one seed shows."""
    n = len(mine["modes_per_seed"])
    full = min(mine["modes_per_seed"]) == MODES[mine["dataset"]]
    pairs = list(zip(mine["modes_per_seed"], default["modes_per_seed"], strict=True))
    hq_pairs = list(zip(mine["hq_per_seed"], default["hq_per_seed"], strict=True))
    in_modes = mine["modes_mean"] > default["modes_mean"] or full
    in_hq = mine["hq_mean"] > default["hq_mean"]
    return {
        "benchmark": "quality_study", "space_row": True, "space": space,
        "dataset": mine["dataset"], "champion": mine["champion"],
        "champion_modes": f"{mine['modes_mean']} ± {mine['modes_sd']}",
        "default_modes": f"{default['modes_mean']} ± {default['modes_sd']}",
        "champion_hq": f"{mine['hq_mean']} ± {mine['hq_sd']} %",
        "default_hq": f"{default['hq_mean']} ± {default['hq_sd']} %",
        "seeds_modes_at_least_default": f"{sum(c >= d for c, d in pairs)}/{n}",
        "seeds_hq_above_default": f"{sum(c > d for c, d in hq_pairs)}/{n}",
        "beats_default_in_modes": in_modes,
        "beats_default_in_hq": in_hq,
        "beats_default": in_modes and in_hq,
    }  # fmt: skip


def space_study(
    space: str, args: argparse.Namespace, workdir: Path, emit: Any
) -> dict[str, Any] | None:
    """One built-in space as it ships: its own data set and steps, ``--space-budget``
    trials; the champion is written to ``--champions/spaces/<space>.yaml``."""
    fixed = load_space(space).fixed
    rows = champion_vs_default(
        f"space-{space}", space, fixed["dataset"], fixed["steps"], args.space_budget,
        args.champions / "spaces" / f"{space}.yaml", args, workdir, emit,
    )  # fmt: skip
    if rows is None:
        return None
    for r in rows.values():
        emit({**r, "space": space})
    return space_verdict(space, rows["champion (this sweep)"], rows["default config"])


def _fixed(space: str, dataset: str, steps: int) -> dict[str, Any]:
    """What the default config keeps of a space: its data set and budget on the 2-D
    spaces; every fixed value of a space of its own (architecture, batch, evaluations)."""
    if dataset in OWN_SPACE:
        return {**load_space(space).fixed, "dataset": dataset, "steps": steps}
    return {"dataset": dataset, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", default="ring8,grid25,digits",
        help="the data sets set against the published rows ('' for none)",
    )  # fmt: skip
    parser.add_argument("--space", default="quality", help="the 2-D data sets' space")
    parser.add_argument("--budget", type=int, default=32, help="trials per data set's sweep")
    parser.add_argument(
        "--spaces", default=",".join(SPACES_2D),
        help="built-in 2-D spaces run as they ship, one row each ('' for none)",
    )  # fmt: skip
    parser.add_argument("--space-budget", type=int, default=16, help="trials per space's sweep")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    parser.add_argument("--fresh-seeds", default="1000,1001,1002,1003,1004")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument(
        "--steps", type=int, default=None,
        help="the budget of a full trial and of each retrain (default: the baseline "
        "protocol's 3,000 / 5,000 for quick, the space's own otherwise: quality's 20,000)",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", type=Path, default=None,
        help="keep the sweeps and their MLflow store here (default: a temporary folder)",
    )  # fmt: skip
    parser.add_argument(
        "--champions", type=Path, default=Path(__file__).parent / "champions",
        help="write each data set's exported champion here as <dataset>.yaml, each "
        "space's as spaces/<space>.yaml",
    )  # fmt: skip
    parser.add_argument(
        "--metric", default=PRIMARY_METRIC, choices=sorted(METRICS),
        help="what the sweeps rank by (the champion is the best replicated config on it)",
    )  # fmt: skip
    parser.add_argument(
        "--retrain-only", action="store_true",
        help="no sweeps: retrain the champions already in --champions (and the default "
        "config) on --fresh-seeds",
    )  # fmt: skip
    args = parser.parse_args()
    datasets = [d for d in args.datasets.split(",") if d]
    spaces = [s for s in args.spaces.split(",") if s]
    for bad, valid, what in (
        ([d for d in datasets if d not in (*MODES, *OWN_SPACE)], (*MODES, *OWN_SPACE), "data set"),
        ([s for s in spaces if s not in SPACES_2D], SPACES_2D, "space"),
    ):  # fmt: skip
        if bad:
            parser.exit(2, f"quality_study: unknown {what} {bad[0]!r}; valid: {', '.join(valid)}\n")
    if args.retrain_only:
        wanted = [args.champions / f"{d}.yaml" for d in datasets]
        wanted += [args.champions / "spaces" / f"{s}.yaml" for s in spaces]
        missing = [str(path) for path in wanted if not path.is_file()]
        if missing:
            parser.exit(2, f"quality_study: --retrain-only, but no champion {missing[0]}\n")
    emit = runs.json_lines()
    if not args.retrain_only:
        runs.init_ray(num_cpus=args.cpus)
    with tempfile.TemporaryDirectory(prefix="gansweep-study-") as tmp:
        workdir = Path(tmp)
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            workdir = args.workdir
        for dataset in datasets:
            study(dataset, args, workdir, emit)
        space_rows = [space_study(space, args, workdir, emit) for space in spaces]
        for space_row in space_rows:  # one row per space, together at the end
            if space_row is not None:
                emit(space_row)


if __name__ == "__main__":
    main()
