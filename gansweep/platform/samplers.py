"""The Optuna samplers a sweep can pick (``--sampler``): one SamplerSpec per name. A new
sampler is one entry here; tests/platform/test_samplers.py runs every entry. Optuna is
imported inside the builders, so the CLI's help reads this registry without it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

    from gansweep.search_spaces import SearchSpace


def startup_trials(num_samples: int) -> int:
    """Random trials before a model-based sampler starts modelling: Optuna's default of 10
    would make every sweep of 10 trials or fewer a random search. A quarter of the
    budget, at least 2, at most Optuna's 10."""
    return max(2, min(10, num_samples // 4))


def _any_space(space: SearchSpace) -> str | None:
    return None


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler: its builder from (the sweep's seed, its number of trials), one line for
    the help and the docs, and what it needs of a space (None: it can search this one,
    else why not)."""

    summary: str
    build: Callable[[int | None, int], optuna.samplers.BaseSampler]
    check: Callable[[SearchSpace], str | None] = _any_space


def _tpe(seed: int | None, n: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup_trials(n))


def _random(seed: int | None, n: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _gp(seed: int | None, n: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup_trials(n))


def _cmaes(seed: int | None, n: int) -> optuna.samplers.BaseSampler:
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed)


def _grid(seed: int | None, n: int) -> optuna.samplers.BaseSampler:
    import optuna

    # Every combination once; Optuna's brute force handles conditional parameters.
    return optuna.samplers.BruteForceSampler(seed=seed)


def _discrete(space: SearchSpace) -> str | None:
    if space.is_discrete:
        return None
    continuous = [p.name for p in space.params if p.kind in ("uniform", "loguniform")]
    return (
        f"a space of choice/int parameters only; space {space.name!r} has continuous ones: "
        f"{', '.join(continuous)}"
    )


SAMPLERS: dict[str, SamplerSpec] = {
    "tpe": SamplerSpec("Optuna's multivariate TPE, random for a quarter of the budget", _tpe),
    "random": SamplerSpec("uniform random search", _random),
    "gp": SamplerSpec("Gaussian-process Bayesian optimization (Optuna's GPSampler)", _gp),
    "cmaes": SamplerSpec("CMA-ES (Optuna's CmaEsSampler)", _cmaes),
    "grid": SamplerSpec("every combination of a discrete space, once", _grid, _discrete),
}
