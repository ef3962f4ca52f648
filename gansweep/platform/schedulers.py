"""The trial schedulers a sweep can pick (``--scheduler``): one SchedulerSpec per name.

A new scheduler is one entry here. The CLI's help, sweep_input's check, the choice of
replicas inside the search (backfill.py), actor reuse and the Tuner (tune_glue.py) all
read the entry; tests/platform/test_schedulers.py runs every entry through a real sweep.
Ray is imported inside the builders, so the CLI's help reads this registry without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ray.tune.schedulers import TrialScheduler

    from gansweep.platform.options import SweepOptions
    from gansweep.records.manifest import Manifest
    from gansweep.search_spaces import SearchSpace

# (manifest, space, options, Optuna sampler) -> (Tune search algorithm, Tune callbacks,
# the Tuner's param_space): for a scheduler that brings its own search (PBT).
Population = Callable[["Manifest", "SearchSpace", "SweepOptions", Any], tuple[Any, list, dict]]


def scheduler_budget(space: SearchSpace) -> tuple[int, int]:
    """(max_t, grace period) in steps: the longest trial the space can sample, and its
    longest evaluation interval, so every trial reports before the first rung."""
    max_t = int(space.largest("steps"))
    return max_t, min(int(space.largest("eval_every")), max_t)


def _any_space(space: SearchSpace) -> str | None:
    return None


@dataclass(frozen=True)
class SchedulerSpec:
    """A scheduler, and what the platform must know of it.

    - ``build``: the Tune scheduler, from the space (its budget) and the options;
    - ``counts``: what its time axis counts, for the help and the docs;
    - ``replicas_inside``: a replica may join the search's experiment and train its
      fixed config to the full budget whatever the other trials do (backfill.py);
    - ``reuse_actors``: a trial's process may be kept for the next trial;
    - ``population``: None when Optuna proposes every trial; else the scheduler's own
      search (PBT: Optuna proposes the first population, the scheduler evolves it);
    - ``checkpoints_kept``: per trial (PBT needs a donor's to outlive its next save);
    - ``check``: None when it can run the space, else why not (for exit code 2).
    """

    summary: str
    build: Callable[[SearchSpace, SweepOptions], TrialScheduler]
    counts: str
    replicas_inside: bool
    reuse_actors: bool = True
    population: Population | None = None
    checkpoints_kept: int = 2
    check: Callable[[SearchSpace], str | None] = _any_space


# Time is counted in generator steps (the reported "step"), so rungs fall on evaluations
# whatever the wall-clock speed of a trial.
def _asha(space: SearchSpace, options: SweepOptions) -> TrialScheduler:
    from gansweep.platform.tune_schedulers import ReplicaSafeASHA

    max_t, grace = scheduler_budget(space)
    return ReplicaSafeASHA(time_attr="step", max_t=max_t, grace_period=grace, reduction_factor=3)


def _hyperband(space: SearchSpace, options: SweepOptions) -> TrialScheduler:
    from gansweep.platform.tune_schedulers import MendedHyperBand

    # HyperBand counts evaluations, not steps: its brackets hold up to 3^s trials for s up
    # to log3(max_t), so counted in steps a bracket would need hundreds of trials to fill
    # before it stops any.
    max_t, grace = scheduler_budget(space)
    evaluations = math.ceil(max_t / grace)
    return MendedHyperBand(time_attr="training_iteration", max_t=evaluations, reduction_factor=3)


def _fifo(space: SearchSpace, options: SweepOptions) -> TrialScheduler:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _pbt(space: SearchSpace, options: SweepOptions) -> TrialScheduler:
    from gansweep.platform import pbt

    return pbt.scheduler(space, scheduler_budget(space)[1])


def _pbt_population(
    manifest: Manifest, space: SearchSpace, options: SweepOptions, sampler: Any
) -> tuple[Any, list, dict]:
    from gansweep.platform import pbt

    searcher, tell_optuna, param_space = pbt.search(manifest, space, options, sampler)
    return searcher, [tell_optuna], param_space


def _pbt_check(space: SearchSpace) -> str | None:
    from gansweep.platform import pbt

    if pbt.mutations(space):
        return None
    return (
        f"a searched continuous {', '.join(pbt.SAFE_TO_PERTURB)} (uniform or loguniform, no "
        f"'when') to perturb; space {space.name!r} searches: "
        f"{', '.join(p.name for p in space.params) or 'nothing'}"
    )


SCHEDULERS: dict[str, SchedulerSpec] = {
    "asha": SchedulerSpec(
        "asynchronous successive halving; replicas train their full budget",
        _asha, counts="generator steps", replicas_inside=True,
    ),
    # HyperBand pauses trials in brackets it fills from every trial: a replica would not
    # train its fixed config through. Reuse: with it, one of its test sweeps in
    # test_tune_glue.py stopped no trial at all (2 of ~16 runs), unexplained.
    "hyperband": SchedulerSpec(
        "synchronous HyperBand; stops trials only in a full bracket (5 in flight at the "
        "defaults)",
        _hyperband, counts="evaluations", replicas_inside=False, reuse_actors=False,
    ),
    "fifo": SchedulerSpec(
        "no early stopping", _fifo, counts="generator steps", replicas_inside=True
    ),
    # PBT's trials exploit each other: a replica among them would not keep its config.
    # Ray warns that with 2 checkpoints or fewer a donor's can be deleted before a trial
    # that exploits it restores it.
    "pbt": SchedulerSpec(
        "Population Based Training: Optuna proposes the first population, PBT evolves it",
        _pbt, counts="generator steps", replicas_inside=False, population=_pbt_population,
        checkpoints_kept=4, check=_pbt_check,
    ),
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """The Ray classes that lived here before tune_schedulers.py: a sweep started before
    the move pickled its scheduler under this module's name, and `resume` unpickles it."""
    if name in ("ReplicaSafeASHA", "MendedHyperBand"):
        from gansweep.platform import tune_schedulers

        return getattr(tune_schedulers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
