"""`gansweep sweep --warm-start SOURCE`: the search's first trials are the top configs of
an earlier study, on this data set or another.

A source is an earlier sweep (its name in --storage, or its folder), whose leaderboard
gives its first ``--warm-start-top`` configs in rank order, or a config file (an exported
``best.yaml``, a ``benchmarks/champions`` file): one config. Each config is projected onto
this sweep's space (``SearchSpace.params_of``): its value for every param the space
searches and holds; the sampler picks the rest. The projections are enqueued in the
sweep's Optuna study before its first proposal (``Study.enqueue_trial``): the sampler
proposes them first, in order, and learns from their results like any other trial's.

What a warm start is worth, and what it costs, is measured in docs/results.md ("Search
efficiency": a ring8 search warm-started from a grid25 sweep). The earlier study's own
compute is not counted in this sweep's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gansweep.records.leaderboard import run_config, standings
from gansweep.records.manifest import MANIFEST_FILE, Manifest, SweepNotFoundError
from gansweep.search_spaces import SearchSpace
from gansweep.trainables.config import ConfigError, read_config

if TYPE_CHECKING:
    import optuna


class WarmStartError(ValueError):
    """A --warm-start source that cannot be read, or gives this space nothing."""


@dataclass(frozen=True)
class WarmStart:
    """One config of a warm start, as this sweep's study will receive it."""

    origin: str  # e.g. "sweep 'grid25-16', rank 1" or the config file's path
    params: dict[str, Any]  # the projection onto this sweep's space
    left_out: list[str]  # the space's params the sampler picks (the config had no value)


def source_configs(source: str, storage: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(origin, TrialConfig values) of each config a source gives, best first; read one
    at a time (a config of an earlier sweep is one MLflow call)."""
    path = Path(source).expanduser()
    if path.is_file():
        try:
            config = read_config(path).model_dump()
        except ConfigError as err:
            raise WarmStartError(f"--warm-start {source!r}: {err}") from None
        yield str(path), config
        return
    try:
        if (path / MANIFEST_FILE).is_file():
            manifest = Manifest.load(path.resolve().parent, path.resolve().name)
        else:
            manifest = Manifest.load(storage, source)
    except SweepNotFoundError as err:
        raise WarmStartError(
            f"--warm-start {source!r} is neither a config file nor a sweep: {err}"
        ) from None
    board = standings(manifest).board
    ranked = board[board["rank"] > 0]
    if ranked.empty:
        raise WarmStartError(f"--warm-start {source!r}: the sweep has no ranked trial yet")
    for rank, run_id in zip(ranked["rank"], ranked["run_id"], strict=True):
        config = run_config(manifest.tracking_uri, run_id).model_dump()
        yield f"sweep {manifest.name!r}, rank {int(rank)}", config


def plan(space: SearchSpace, sources: list[str], storage: str, top: int) -> list[WarmStart]:
    """The configs to enqueue, in order: from each source its first `top` configs that
    project onto the space differently from every config before them (a sweep's
    leaderboard can hold one config twice: a sampler may propose it again). Raises
    WarmStartError when a source cannot be read or gives the space nothing."""
    planned: list[WarmStart] = []
    for source in sources:
        taken, gave_any = 0, False
        for origin, config in source_configs(source, storage):
            params, left_out = space.params_of(config)
            gave_any = gave_any or bool(params)
            if params and all(params != w.params for w in planned):
                planned.append(WarmStart(origin, params, left_out))
                taken += 1
                if taken == top:
                    break
        if not gave_any:
            searched = ", ".join(p.name for p in space.params)
            raise WarmStartError(
                f"--warm-start {source!r}: none of its configs has a value that space "
                f"{space.name!r} searches ({searched})"
            )
    return planned


def enqueue(study: optuna.Study, planned: list[WarmStart]) -> int:
    """Enqueue the planned configs in a new study (one with no trial yet: a resumed sweep
    has them already); returns how many were enqueued."""
    if not planned or study.get_trials(deepcopy=False):
        return 0
    for warm in planned:
        study.enqueue_trial(warm.params)
    return len(planned)


def describe(planned: list[WarmStart]) -> str:
    """One line for the sweep's header."""
    first = "; ".join(
        warm.origin + (f" (the sampler picks {', '.join(warm.left_out)})" if warm.left_out else "")
        for warm in planned
    )
    return f"warm start: {len(planned)} configs go first: {first}"
