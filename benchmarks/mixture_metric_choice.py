"""Why the primary metric of the 2-D mixtures (ring8, grid25) is the MMD to the true
mixture: five candidates measured side by side.

Candidates, each (samples [N, 2], data) -> float, lower is better:
- ``mmd``: the project's metric (gansweep.trainables.metrics.mixture_mmd): squared MMD
  with Gaussian kernels at sigma * {1, 3, 10, 30, 100}, the true mixture's terms in
  closed form, the samples' term unbiased.
- ``w1``: the exact W1 (POT's network simplex) against a reference sample of the mixture
  (``reference``: 20 points at every mode, seeded).
- ``sliced_w1``: sliced W1 against the reference, 90 evenly spaced directions in
  [0, pi), each 1-D W1 exact by quantile matching on the merged quantile grid (torch).
- ``energy``: the energy distance against the reference (U-statistics within sets).
- ``mode_kl``: the former metric: KL(generated || true) of a histogram with one bin per
  mode (samples within 3 sigma of their nearest mode) and one off-mode bin, the true
  histogram holding p_off = exp(-4.5) off-mode (the 2-D chi-square tail at 3 sigma).

Three kinds of figures, per data set:
1. Canonical sample sets (N = 2,500 each, seeded numpy Generator): ``perfect`` (the true
   mixture); ``on_95`` / ``on_75`` (that share from the mixture, the rest uniform in the
   modes' bounding box + 0.5); ``modes_k`` (the true mixture restricted to k nested modes:
   an arc of the ring, a corner block of the grid); ``between_25`` (the true mixture with
   a quarter of the samples at a spurious mode halfway between neighbouring modes: on the
   ring's chord at the mid-angle, the grid's horizontal neighbours); ``unbalanced`` (one
   mode holds half the mass); ``at_<r>s`` (every sample exactly r sigma from a random
   mode, random direction); ``wide_1.5`` / ``wide_2`` (every mode, balanced, its samples
   spread 1.5 or 2 times sigma: 86.5 % and 67.5 % within 3 sigma, the scale the
   high-quality share measures). Each candidate is checked against the orderings a primary
   metric must respect (check_orderings(): perfect beats every other set; on_95 < on_75;
   perfect < wide_1.5 < wide_2, the first step by more than 2 noise sd;
   coverage all < 5 < 3 < 1 modes, resp. 25 < 16 < 9 < 1; between_25 beats the first
   dropped-modes set; unbalanced loses to perfect; no plateau, 3 < 10 < 30 < 100 sigma)
   and one line per candidate says pass or fail, with the values and the sets that
   score no worse than perfect (``beats_perfect_by_sd``, in noise sd). ``noise_sd`` is
   the candidate's sd over 8 independent draws of the perfect sampler; ``ms`` the median
   time of one evaluation of a 2,500-point set.

   Two sets may tie with perfect within 2 noise sd: on_95, and at_1s (every sample of
   at_1s is high quality and the modes are balanced; its true W1 to the mixture is at
   most 0.54 sigma). The candidates measured against a reference sample (w1, sliced_w1,
   energy) are minimized by the reference itself, not by the true mixture, and cannot
   see blur at the scale of the high-quality share: samples spread 1.5 or 2 sigma around
   their modes score like (or better than) a true sample. The mmd's mixture side is
   exact, so the true mixture is its minimum, and its 1-sigma kernel sees the spread.
2. Signal during training: real GAN runs of the project's engine (GANTrainer, configs
   drawn from the built-in ``quick`` space at random), every candidate computed on the 2,500
   evaluation samples (``trainer.generate``) at every evaluation. Per candidate: the
   Spearman rank correlation over runs between its value at the first evaluation (ASHA's
   first rung, grace period = eval_every) and at the end, with a 95% bootstrap interval
   over the runs (a few dozen runs leave it wide: read the choice with it); and the
   share of runs whose first-rung value sits at the candidate's plateau: identical to
   its value on samples far from every mode (mode_kl: log(1 / p_off) = 4.5 for any set
   with nothing within 3 sigma of a mode). A run that diverges counts as worst at every
   later evaluation. One line per run too, with its config and first and last values.
3. A ``choice`` line: the candidates that pass every ordering on every data set, their
   cost, and the choice by the rule printed with it (see choose()).

One JSON line per figure set. The defaults (48 runs of 1,500 steps on ring8) take about
11 minutes on one CPU core, ~13 s a run; --datasets ring8,grid25 doubles the training.
--quick is a one-minute smoke run (4 runs of 600 steps) whose training figures mean
little.

    python benchmarks/mixture_metric_choice.py [--runs 48] [--steps 1500] [--datasets ring8]
        [--sets ring8,grid25] [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import time
import warnings
from collections.abc import Callable, Iterator

import numpy as np
import optuna
import ot
import torch
from scipy.stats import spearmanr

from gansweep.search_spaces import load_space
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.data import MixtureData, load_dataset
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.metrics import HIGH_QUALITY_SIGMAS, mixture_mmd, off_mode_probability

N_SAMPLES = 2500
NOISE_DRAWS = 8
SLICED_ANGLES = 90
REFERENCE_PER_MODE = 20  # points per mode of the sample-based candidates' reference
REFERENCE_SEED = 20_180_101
EMD_MAX_ITERATIONS = 10_000_000  # POT's default (100,000) stops short at 2,500 x 500
TIE_SDS = 2.0  # a tie with perfect within this many noise sd is acceptable for...
NEAR_PERFECT = ("on_95", "at_1s")  # ...these two sets (see the module docstring)
RHO_SLACK = 0.05  # the choice: rank correlation within this of the best
BOOTSTRAP = 1000  # resamples of the runs for the rank correlation's interval
# Modes kept by the coverage sets, nested; the first entry of each is "all modes".
COVERAGE = {"ring8": (8, 5, 3, 1), "grid25": (25, 16, 9, 1)}
R_SIGMAS = (1, 3, 10, 30, 100)

# ------------------------------------------------------------------------- candidates


def _tensor(samples) -> torch.Tensor:
    x = torch.as_tensor(samples, dtype=torch.float64).cpu()
    return torch.nan_to_num(x, nan=1e9, posinf=1e9, neginf=-1e9)


_references: dict[str, torch.Tensor] = {}


def reference(data: MixtureData) -> torch.Tensor:
    """A fixed sample of the mixture with REFERENCE_PER_MODE points at every mode (no
    noise of its own in the mode weights), float64, made once per data set."""
    if data.name not in _references:
        generator = torch.Generator().manual_seed(REFERENCE_SEED)
        modes = data.modes.double().cpu().repeat_interleave(REFERENCE_PER_MODE, dim=0)
        noise = torch.randn(modes.shape, generator=generator, dtype=torch.float64)
        _references[data.name] = modes + data.sigma * noise
    return _references[data.name]


def w1(samples, data: MixtureData) -> float:
    x, y = _tensor(samples), reference(data)
    cost = torch.cdist(x, y).numpy()
    a, b = np.full(len(x), 1.0 / len(x)), np.full(len(y), 1.0 / len(y))
    return float(ot.emd2(a, b, cost, numItermax=EMD_MAX_ITERATIONS))


def sliced_w1(samples, data: MixtureData) -> float:
    x, y = _tensor(samples), reference(data)
    angles = torch.arange(SLICED_ANGLES, dtype=torch.float64) * (math.pi / SLICED_ANGLES)
    directions = torch.stack([angles.cos(), angles.sin()])  # [2, P]
    px, py = (x @ directions).sort(dim=0).values, (y @ directions).sort(dim=0).values
    n, m = len(x), len(y)
    # The merged quantile grid: both quantile functions are constant between breakpoints.
    breaks = torch.cat([torch.arange(1, n + 1) / n, torch.arange(1, m + 1) / m]).double()
    breaks = breaks.unique()  # sorted
    widths = torch.diff(breaks, prepend=breaks.new_zeros(1))
    mid = breaks - widths / 2
    ix = (mid * n).long().clamp(max=n - 1)
    iy = (mid * m).long().clamp(max=m - 1)
    per_angle = (widths[:, None] * (px[ix] - py[iy]).abs()).sum(dim=0)
    return float(per_angle.mean())


def _pair_mean(a: torch.Tensor, b: torch.Tensor, f: Callable, within: bool) -> torch.Tensor:
    """Mean of f(|a_i - b_j|^2) over pairs; within a set (a is b), over pairs i != j."""
    values = f(torch.cdist(a, b).square_())
    if not within:
        return values.mean()
    n = len(a)
    return (values.sum() - values.diagonal().sum()) / (n * (n - 1))


def energy(samples, data: MixtureData) -> float:
    x, y = _tensor(samples), reference(data)
    dist = lambda d2: d2.sqrt_()  # noqa: E731
    return float(
        2 * _pair_mean(x, y, dist, False)
        - _pair_mean(x, x, dist, True)
        - _pair_mean(y, y, dist, True)
    )


def mmd(samples, data: MixtureData) -> float:
    return mixture_mmd(_tensor(samples), data.modes, data.sigma)


def mode_kl(samples, data: MixtureData) -> float:
    x, modes = _tensor(samples), data.modes.double().cpu()
    k = len(modes)
    dist, nearest = torch.cdist(x, modes).min(dim=1)
    hq = dist <= HIGH_QUALITY_SIGMAS * data.sigma
    q = torch.cat([torch.bincount(nearest[hq], minlength=k).double(), (~hq).sum().double()[None]])
    q = q / len(x)
    p_off = off_mode_probability(2)
    p = torch.cat([torch.full((k,), (1 - p_off) / k, dtype=torch.float64), torch.tensor([p_off])])
    nz = q > 0
    return float((q[nz] * (q[nz] / p[nz]).log()).sum())


CANDIDATES: dict[str, Callable] = {
    "mmd": mmd,
    "w1": w1,
    "sliced_w1": sliced_w1,
    "energy": energy,
    "mode_kl": mode_kl,
}

# ---------------------------------------------------------------------- sample sets


def _mixture(modes: np.ndarray, sigma: float, n: int, rng, weights=None) -> np.ndarray:
    idx = rng.choice(len(modes), n, p=weights)
    return modes[idx] + sigma * rng.standard_normal((n, 2))


def _kept_modes(name: str, modes: np.ndarray, k: int) -> np.ndarray:
    """k nested modes: an arc of the ring, a sqrt(k) x sqrt(k) corner block of the grid."""
    if name == "ring8":
        return modes[:k]
    side = math.isqrt(k)
    lo = modes.min(axis=0)
    spacing = 2.0
    keep = np.all((modes - lo) < side * spacing - 1e-9, axis=1)
    assert keep.sum() == k, (name, k)
    return modes[keep]


def sample_sets(data: MixtureData, seed: int) -> dict[str, np.ndarray]:
    """The canonical sample sets of one data set, N_SAMPLES points each."""
    rng = np.random.default_rng(seed)
    modes, sigma, n, k = data.modes.double().numpy(), data.sigma, N_SAMPLES, len(data.modes)
    lo, hi = modes.min(axis=0) - 0.5, modes.max(axis=0) + 0.5
    sets = {"perfect": _mixture(modes, sigma, n, rng)}
    for share in (95, 75):
        x = _mixture(modes, sigma, n, rng)
        off = n - round(share / 100 * n)
        x[:off] = rng.uniform(lo, hi, (off, 2))
        sets[f"on_{share}"] = x
    for kept in COVERAGE[data.name][1:]:
        sets[f"modes_{kept}"] = _mixture(_kept_modes(data.name, modes, kept), sigma, n, rng)
    x, m = _mixture(modes, sigma, n, rng), n // 4
    if data.name == "ring8":
        angle = 2 * math.pi * (rng.integers(0, k, m) + 0.5) / k
        spurious = math.cos(math.pi / k) * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    else:
        left = modes[modes[:, 0] < modes[:, 0].max()]  # modes with a right neighbour
        spurious = left[rng.integers(0, len(left), m)] + np.array([1.0, 0.0])
    x[:m] = spurious + sigma * rng.standard_normal((m, 2))
    sets["between_25"] = x
    weights = np.full(k, 0.5 / (k - 1))
    weights[0] = 0.5
    sets["unbalanced"] = _mixture(modes, sigma, n, rng, weights)
    for r in R_SIGMAS:
        angle = rng.uniform(0, 2 * math.pi, n)
        offset = r * sigma * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        sets[f"at_{r}s"] = modes[rng.integers(0, k, n)] + offset
    for spread in (1.5, 2):
        sets[f"wide_{spread}"] = _mixture(modes, spread * sigma, n, rng)
    return sets


def orderings(name: str) -> list[tuple[str, list[str]]]:
    """(description, chain): each set of the chain must score strictly below the next.
    Perfect beating every other set is checked apart (check_orderings), with the tie
    tolerance for NEAR_PERFECT."""
    all_k, *fewer = COVERAGE[name]
    return [
        ("quality monotone: on_95 < on_75", ["on_95", "on_75"]),
        (
            f"coverage monotone: {all_k} < {' < '.join(map(str, fewer))} modes",
            ["perfect", *(f"modes_{k}" for k in fewer)],
        ),
        (f"between_25 < modes_{fewer[0]}", ["between_25", f"modes_{fewer[0]}"]),
        ("unbalanced loses to perfect", ["perfect", "unbalanced"]),
        ("no plateau: 3s < 10s < 30s < 100s", ["at_3s", "at_10s", "at_30s", "at_100s"]),
        ("blur monotone: perfect < wide_1.5 < wide_2", ["perfect", "wide_1.5", "wide_2"]),
    ]


def check_orderings(name: str, values: dict[str, float], sd: float) -> dict[str, bool]:
    """Every ordering -> passed; `sd` is the candidate's noise sd (the tie tolerance)."""
    ok = all(
        values["perfect"] < values[s] + (TIE_SDS * sd if s in NEAR_PERFECT else 0.0)
        for s in values
        if s != "perfect"
    )
    checks = {"perfect beats every degraded set (on_95, at_1s: within 2 sd)": ok}
    for description, chain in orderings(name):
        checks[description] = all(values[a] < values[b] for a, b in itertools.pairwise(chain))
    # The high-quality share's scale must show above the noise, not by luck of one draw.
    checks["wide_1.5 beyond 2 noise sd of perfect"] = (
        values["wide_1.5"] - values["perfect"] > TIE_SDS * sd
    )
    return checks


def median_ms(fn: Callable, samples, data: MixtureData, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(samples, data)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def static_figures(name: str, seed: int, repeats: int, emit) -> dict[str, dict]:
    data = load_dataset(name)
    sets = sample_sets(data, seed)
    noise_sets = [
        _mixture(data.modes.double().numpy(), data.sigma, N_SAMPLES, np.random.default_rng(s))
        for s in range(seed + 1000, seed + 1000 + NOISE_DRAWS)
    ]
    summary = {}
    for cand, fn in CANDIDATES.items():
        values = {s: fn(x, data) for s, x in sets.items()}
        sd = float(np.std([fn(x, data) for x in noise_sets], ddof=1))
        checks = check_orderings(name, values, sd)
        ms = median_ms(fn, sets["perfect"], data, repeats)
        summary[cand] = {"pass": all(checks.values()), "ms": ms}
        # Sets scoring no worse than perfect, by how many noise sd they beat it.
        beats = {
            s: round((v - values["perfect"]) / sd, 1)
            for s, v in values.items()
            if s != "perfect" and v <= values["perfect"]
        }
        emit(
            {
                "figure": "orderings",
                "dataset": name,
                "candidate": cand,
                "pass_all": all(checks.values()),
                "failed": [c for c, ok in checks.items() if not ok],
                "beats_perfect_by_sd": beats,
                "noise_sd": float(f"{sd:.3g}"),
                "ms": round(ms, 1),
                "values": {s: float(f"{v:.4g}") for s, v in values.items()},
            }
        )
    return summary


# --------------------------------------------------------------------------- training


# The run length, data and seed are the benchmark's; everything else comes from the space.
OWN_FIELDS = ("dataset", "steps", "eval_every", "eval_samples", "seed", "device")


def space_configs(seed: int) -> Iterator[dict]:
    """Draws of the built-in `quick` space (what a sweep's first, random trials get)."""
    space = load_space("quick")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    while True:
        config = space.sample(study.ask())
        yield {k: v for k, v in config.items() if k not in OWN_FIELDS}


def train_run(name: str, params: dict, steps: int, eval_every: int, seed: int) -> dict:
    """One GAN run: every candidate at every evaluation (inf once diverged)."""
    config = TrialConfig(
        dataset=name,
        steps=steps,
        eval_every=eval_every,
        eval_samples=N_SAMPLES,
        seed=seed,
        device="cpu",
        **params,
    )
    trainer = GANTrainer(config)
    data = load_dataset(name)
    trace: dict[str, list[float]] = {c: [] for c in CANDIDATES}
    steps_seen, diverged = [], False
    for metrics in trainer.evaluations():
        steps_seen.append(int(metrics["step"]))
        diverged = bool(metrics["diverged"])
        samples = None if diverged else trainer.generate(N_SAMPLES)[0]
        for cand, fn in CANDIDATES.items():
            trace[cand].append(math.inf if diverged else fn(samples, data))
    # A run that diverged before the end is worst at the evaluations it never reached.
    planned = math.ceil(steps / eval_every)
    for values in trace.values():
        values.extend([math.inf] * (planned - len(values)))
    return {"steps": steps_seen, "diverged": diverged, "trace": trace}


def _finite(v: float) -> float | None:
    return float(f"{v:.4g}") if math.isfinite(v) else None


def _spearman(a, b) -> float:
    with warnings.catch_warnings():  # constant input: nan, and a warning we do not need
        warnings.simplefilter("ignore")
        return float(spearmanr(a, b).statistic) if len(a) > 2 else math.nan


def _rounded(v: float) -> float | None:
    return None if math.isnan(v) else round(v, 3)


def bootstrap_ci(a: list[float], b: list[float], seed: int) -> tuple[float, float]:
    """95% percentile interval of the Spearman rho over runs resampled with replacement."""
    if len(a) < 3:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    a, b = np.asarray(a), np.asarray(b)
    rhos = [_spearman(a[i], b[i]) for i in rng.integers(0, len(a), (BOOTSTRAP, len(a)))]
    low, high = np.nanpercentile(rhos, [2.5, 97.5])
    return float(low), float(high)


def training_figures(name: str, runs: int, steps: int, eval_every: int, seed: int, emit):
    data = load_dataset(name)
    configs = space_configs(seed)
    far = data.modes.double().numpy().max(axis=0) + 1000.0
    far_set = far + np.random.default_rng(seed).uniform(0, 1, (N_SAMPLES, 2))
    plateau = {c: fn(far_set, data) for c, fn in CANDIDATES.items()}
    first = {c: [] for c in CANDIDATES}
    last = {c: [] for c in CANDIDATES}
    for i in range(runs):
        params = next(configs)
        start = time.perf_counter()
        run = train_run(name, params, steps, eval_every, seed=seed + i)
        for c in CANDIDATES:
            first[c].append(run["trace"][c][0])
            last[c].append(run["trace"][c][-1])
        emit(
            {
                "figure": "run",
                "dataset": name,
                "run": i,
                "config": {
                    k: (round(v, 5) if isinstance(v, float) else v) for k, v in params.items()
                },
                "diverged": run["diverged"],
                "wall_s": round(time.perf_counter() - start, 1),
                "first": {c: _finite(first[c][-1]) for c in CANDIDATES},
                "end": {c: _finite(last[c][-1]) for c in CANDIDATES},
            }
        )
    summary = {}
    for c in CANDIDATES:
        rho = _spearman(first[c], last[c])
        low, high = bootstrap_ci(first[c], last[c], seed)
        at_plateau = sum(math.isclose(v, plateau[c], rel_tol=1e-9) for v in first[c])
        summary[c] = rho
        emit(
            {
                "figure": "training_signal",
                "dataset": name,
                "candidate": c,
                "spearman_first_vs_end": _rounded(rho),
                "spearman_ci95": [_rounded(low), _rounded(high)],
                "first_rung_at_plateau": round(at_plateau / runs, 3),
                "first_rung_distinct": len(set(first[c])),
                "plateau_value": float(f"{plateau[c]:.4g}"),
                "runs": runs,
                "steps": steps,
                "first_rung_step": eval_every,
            }
        )
    return summary


# ----------------------------------------------------------------------------- choice


RULE = (
    "among the candidates that pass every ordering on every data set and whose Spearman "
    f"rho (first rung vs end, mean over the trained data sets) is within {RHO_SLACK} of "
    "the best rho among them, the cheapest (median ms, worst data set): the orderings are "
    "what a primary metric must get right, the signal at the first rung breaks ties"
)


def choose(static: dict[str, dict], signal: dict[str, dict], emit) -> None:
    passing = [c for c in CANDIDATES if all(static[d][c]["pass"] for d in static)]
    cost = {c: max(static[d][c]["ms"] for d in static) for c in CANDIDATES}
    rho = {}
    for c in CANDIDATES:
        values = [signal[d][c] for d in signal]
        rho[c] = statistics.fmean(values) if values and not any(map(math.isnan, values)) else None
    known = [rho[c] for c in passing if rho[c] is not None]
    best = max(known) if known else None
    eligible = [
        c for c in passing if best is not None and rho[c] is not None and rho[c] >= best - RHO_SLACK
    ]
    chosen = min(eligible, key=cost.get) if eligible else None
    emit(
        {
            "figure": "choice",
            "datasets_orderings": list(static),
            "datasets_training": list(signal),
            "pass_all_orderings": passing,
            "ms": {c: round(cost[c], 1) for c in CANDIDATES},
            "spearman": {c: None if r is None else round(r, 3) for c, r in rho.items()},
            "eligible": eligible,
            "chosen": chosen,
            "rule": RULE,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=48, help="GAN runs per trained data set")
    parser.add_argument("--steps", type=int, default=1500, help="steps per GAN run")
    parser.add_argument("--eval-every", type=int, default=500, help="= ASHA's first rung")
    parser.add_argument(
        "--datasets", default="ring8", help="comma-separated data sets to train on (or none)"
    )
    parser.add_argument(
        "--sets", default="ring8,grid25", help="comma-separated data sets for the orderings"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=5, help="timings per candidate")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 runs of 600 steps")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.steps, args.eval_every, args.repeats = 4, 600, 300, 3
    torch.set_num_threads(args.threads)

    def emit(record: dict) -> None:
        print(json.dumps(record), flush=True)

    static = {}
    for name in [s for s in args.sets.split(",") if s]:
        static[name] = static_figures(name, args.seed, args.repeats, emit)
    signal = {}
    for name in [s for s in args.datasets.split(",") if s and s != "none"]:
        signal[name] = training_figures(
            name, args.runs, args.steps, args.eval_every, args.seed, emit
        )
    choose(static, signal, emit)


if __name__ == "__main__":
    main()
