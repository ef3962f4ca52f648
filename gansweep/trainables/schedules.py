"""Learning-rate schedules and the LR_SCHEDULES registry.

A schedule is a factor on the configured (base) learning rate, a pure function of the
generator step: a linear warm-up over ``lr_warmup`` steps, then a decay from 1 to
``lr_floor`` (a fraction of the base rate) that reaches the floor at the run's last step.

    lr(step) = base_lr * lr_factor(schedule, step, steps, warmup, floor)

Each registry entry is the decay alone, ``decay(progress in [0, 1], floor) -> factor``.

The engine applies it with torch's ``LambdaLR``, one per optimizer, stepped once per
generator step (D's too, whatever n_critic is). LambdaLR rather than the chainable
built-ins (``LinearLR``, ``CosineAnnealingLR`` inside a ``SequentialLR``), because:
- its rate is a closed form of (base rate, step), so a restore lands on exactly the
  rate an uninterrupted run has (the chainable ones update the previous rate, and
  carry rounding from step to step);
- PBT may change the base rate mid-run: with ``base_lrs`` replaced (``rebase``), the
  schedule keeps its shape and position at the new scale, where ``CosineAnnealingLR``
  holds an absolute ``eta_min`` and ``SequentialLR`` the base rates of each part;
- ``constant`` is a factor of exactly 1.0, so its runs train with the configured rate,
  bit for bit as before schedules existed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR


def constant(progress: float, floor: float) -> float:
    """1 throughout: the configured rate (floor unused)."""
    return 1.0


def linear(progress: float, floor: float) -> float:
    """1 -> floor along a straight line."""
    return floor + (1.0 - floor) * (1.0 - progress)


def cosine(progress: float, floor: float) -> float:
    """1 -> floor along half a cosine (SGDR, Loshchilov & Hutter 2017, one cycle)."""
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


LR_SCHEDULES: dict[str, Callable[[float, float], float]] = {
    "constant": constant,
    "linear": linear,
    "cosine": cosine,
}


def lr_factor(schedule: str, step: int, steps: int, warmup: int, floor: float) -> float:
    """The factor on the base rate for the update at generator step `step` (0-based).

    Warm-up: (step + 1) / (warmup + 1) for the first `warmup` steps, so the first update
    is not wasted at rate 0 and step `warmup` is the first at the full rate. The decay
    then runs from 1 at step `warmup` to `floor` at step `steps - 1`, the last update;
    steps past the run (a restored run that trains longer) stay at the floor.
    """
    warm = (step + 1) / (warmup + 1) if step < warmup else 1.0
    span = max(1, steps - 1 - warmup)
    progress = min(1.0, max(0.0, (step - warmup) / span))
    return warm * LR_SCHEDULES[schedule](progress, floor)


def build_scheduler(
    optimizer: torch.optim.Optimizer, schedule: str, steps: int, warmup: int, floor: float
) -> LambdaLR:
    """A LambdaLR that sets the optimizer's rate to base * lr_factor(...) at each step.

    Built on a fresh optimizer, whose rate becomes the base rate; step it once per
    generator step, after the optimizer's step.
    """

    # A plain function (not a partial or another callable object): LambdaLR then saves
    # None for it in its state_dict, which the schedule rebuilds from the config.
    def factor(step: int) -> float:
        return lr_factor(schedule, step, steps, warmup, floor)

    return LambdaLR(optimizer, factor)


def rebase(scheduler: LambdaLR, base_lr: float) -> None:
    """Scale the schedule to a new base rate at its current position: the optimizer's
    rate becomes base_lr * factor(step). What a restore does with the configured rate
    (PBT's perturbation of lr_g or lr_d): the schedule multiplies the current base."""
    groups = scheduler.optimizer.param_groups
    base: list[float | Tensor] = [base_lr] * len(groups)
    now: list[float | Tensor] = [base_lr * fn(scheduler.last_epoch) for fn in scheduler.lr_lambdas]
    scheduler.base_lrs = base
    for group, lr in zip(groups, now, strict=True):
        group["initial_lr"] = base_lr
        group["lr"] = lr
    scheduler._last_lr = list(now)  # what get_last_lr() reads


def position(scheduler: LambdaLR, step: int) -> None:
    """Put a fresh schedule where `step` generator steps would have left it (a checkpoint
    saved before schedules existed holds no scheduler state). Call rebase next: it sets
    the rate there."""
    scheduler.last_epoch = step
    scheduler._step_count = step + 1  # torch counts its first step, made when built
