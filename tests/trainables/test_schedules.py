"""Learning-rate schedules: every entry of LR_SCHEDULES decays from 1 to its floor, the
warm-up ramps to 1, torch's LambdaLR sets exactly base x factor, a new base rate (PBT)
keeps the schedule's shape and position, and the state survives a weights-only file."""

import io
import math

import pytest
import torch

from gansweep.trainables.schedules import LR_SCHEDULES, build_scheduler, lr_factor, rebase

FLOOR = 0.1
DECAYING = [name for name in LR_SCHEDULES if name != "constant"]


@pytest.mark.parametrize("name", sorted(LR_SCHEDULES))
def test_every_schedule_starts_at_one_and_never_rises_or_leaves_its_range(name):
    decay = LR_SCHEDULES[name]
    values = [decay(p / 100, FLOOR) for p in range(101)]
    assert values[0] == 1.0
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert all(FLOOR <= v <= 1.0 for v in values)


@pytest.mark.parametrize("name", DECAYING)
def test_every_decaying_schedule_ends_at_its_floor(name):
    assert LR_SCHEDULES[name](1.0, FLOOR) == pytest.approx(FLOOR, abs=1e-15)
    assert LR_SCHEDULES[name](1.0, 0.0) == pytest.approx(0.0, abs=1e-15)


def test_linear_and_cosine_halfway():
    assert LR_SCHEDULES["linear"](0.5, FLOOR) == pytest.approx(0.55)
    assert LR_SCHEDULES["cosine"](0.5, FLOOR) == pytest.approx(0.55)
    assert LR_SCHEDULES["cosine"](0.25, 0.0) == pytest.approx(0.5 + 0.5 * math.cos(math.pi / 4))


def test_constant_without_warm_up_is_exactly_one_at_every_step():
    """The factor that keeps a constant run bit for bit the run before schedules."""
    assert {lr_factor("constant", s, 100, 0, FLOOR) for s in range(150)} == {1.0}


@pytest.mark.parametrize("name", sorted(LR_SCHEDULES))
def test_warm_up_ramps_to_one_then_the_decay_reaches_the_floor_at_the_last_step(name):
    steps, warmup = 20, 4
    factors = [lr_factor(name, s, steps, warmup, FLOOR) for s in range(steps + 5)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    end = 1.0 if name == "constant" else FLOOR
    assert factors[steps - 1] == pytest.approx(end)
    assert factors[steps:] == pytest.approx([end] * 5)  # a longer run stays at the floor


def _optimizer(lr: float = 0.5) -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr)


def _run(scheduler: torch.optim.lr_scheduler.LambdaLR, steps: int) -> list[float]:
    """The rate of each update, stepping the optimizer then the schedule."""
    rates = []
    for _ in range(steps):
        rates.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return rates


@pytest.mark.parametrize("name", sorted(LR_SCHEDULES))
def test_the_scheduler_sets_exactly_base_times_the_factor(name):
    scheduler = build_scheduler(_optimizer(0.5), name, steps=12, warmup=3, floor=FLOOR)
    want = [0.5 * lr_factor(name, s, 12, 3, FLOOR) for s in range(12)]
    assert _run(scheduler, 12) == want  # exact: a closed form, no rounding carried


def test_a_new_base_rate_keeps_the_schedules_shape_and_position():
    """PBT perturbs lr_g at step 5: from there every rate is 1.2x what it would have been."""
    plain = build_scheduler(_optimizer(0.5), "cosine", steps=12, warmup=3, floor=FLOOR)
    rates = _run(plain, 12)
    perturbed = build_scheduler(_optimizer(0.5), "cosine", steps=12, warmup=3, floor=FLOOR)
    _run(perturbed, 5)
    rebase(perturbed, 0.6)
    assert perturbed.get_last_lr() == [0.6 * lr_factor("cosine", 5, 12, 3, FLOOR)]
    assert _run(perturbed, 7) == pytest.approx([1.2 * r for r in rates[5:]], rel=1e-15)
    assert perturbed.base_lrs == [0.6]


def test_the_state_survives_a_weights_only_file_and_continues_exactly():
    straight = build_scheduler(_optimizer(), "linear", steps=10, warmup=2, floor=FLOOR)
    rates = _run(straight, 10)
    first = build_scheduler(_optimizer(), "linear", steps=10, warmup=2, floor=FLOOR)
    _run(first, 4)
    buffer = io.BytesIO()
    torch.save({"opt": first.optimizer.state_dict(), "sched": first.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = build_scheduler(_optimizer(), "linear", steps=10, warmup=2, floor=FLOOR)
    resumed.optimizer.load_state_dict(saved["opt"])
    resumed.load_state_dict(saved["sched"])
    rebase(resumed, 0.5)  # what the engine does: the configured base rate
    assert _run(resumed, 6) == rates[4:]
