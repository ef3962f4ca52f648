"""GANTrainer: every component trains, exact resume, divergence, evaluation."""

import functools
import hashlib
import io
import math
import os

import pytest
import torch
from recorded_platform import SAME_AS_RECORDED, WHY_NOT
from torch.utils._python_dispatch import TorchDispatchMode

from gansweep.trainables.config import MAX_PAC, TrialConfig
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.losses import LOSSES
from gansweep.trainables.metrics import DIVERGED_DISTANCE
from gansweep.trainables.models import ARCHITECTURES
from gansweep.trainables.optimizers import OPTIMIZERS
from gansweep.trainables.regularizers import D_NORMS, PENALTIES
from gansweep.trainables.run_setup import default_threads

TINY = dict(width=16, batch_size=32, steps=10, eval_every=5, eval_samples=200)
TINY_IMAGES = dict(TINY, dataset="digits", architecture="dcgan", width=8)


def assert_states_equal(a, b):
    """Two nested state dicts hold exactly equal tensors and values."""
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_states_equal(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_states_equal(x, y)
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    else:
        assert a == b


def roundtrip(state):
    """Through bytes and back, the way a checkpoint file goes (weights_only, no pickle)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("penalty", ["none", *sorted(PENALTIES)])
@pytest.mark.parametrize("pac", [1, MAX_PAC])
def test_every_loss_and_penalty_trains(loss, penalty, pac):
    trainer = GANTrainer(dict(TINY, loss=loss, penalty=penalty, pac=pac))
    before = [p.clone() for p in trainer.G.parameters()]
    losses = trainer.train_step()
    assert math.isfinite(losses["loss_d"]) and math.isfinite(losses["loss_g"])
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.G.parameters(), strict=True))


PACKS = 4  # D's batch in the packing tests: 4 packs of pac samples


def packing_config(architecture: str, pac: int) -> dict:
    """A tiny run of `architecture` at `pac`: on ring8 where it takes vectors, else on
    digits, conditional (AC-GAN: D also classifies every sample of a pack)."""
    if "vector" in ARCHITECTURES[architecture].kinds:
        return dict(TINY, architecture=architecture, pac=pac, batch_size=PACKS * pac)
    return dict(TINY_IMAGES, architecture=architecture, pac=pac, batch_size=PACKS * pac,
                conditional=True)  # fmt: skip


def d_inputs(trainer: GANTrainer) -> list[tuple[int, ...]]:
    """The shapes D is called on from now on (a forward pre-hook)."""
    shapes: list[tuple[int, ...]] = []
    trainer.D.register_forward_pre_hook(lambda _, args: shapes.append(tuple(args[0].shape)))
    return shapes


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("pac", range(2, MAX_PAC + 1))
def test_every_architecture_trains_on_packs(architecture, pac):
    """D sees nothing but packs of pac samples, concatenated along the features (vectors)
    or the channels (images); G's samples, trained and evaluated, stay single."""
    trainer = GANTrainer(packing_config(architecture, pac))
    shape = trainer.data.shape
    seen = d_inputs(trainer)
    before = [p.clone() for p in trainer.G.parameters()]
    for _ in range(2):
        losses = trainer.train_step()
    assert math.isfinite(losses["loss_d"]) and math.isfinite(losses["loss_g"])
    assert any(not torch.equal(b, p) for b, p in zip(before, trainer.G.parameters(), strict=True))
    assert set(seen) == {(PACKS, pac * shape[0], *shape[1:])}
    samples, _ = trainer.generate(10)
    assert samples.shape == (10, *shape)


@pytest.mark.parametrize("penalty", sorted(PENALTIES))
@pytest.mark.parametrize("pac", range(2, MAX_PAC + 1))
def test_every_penalty_acts_on_packs(penalty, pac):
    """As in PacGAN's code: the penalty's interpolates (or perturbed reals) are packs, and
    its gradient is D's with respect to a whole pack."""
    trainer = GANTrainer(dict(TINY, penalty=penalty, pac=pac, batch_size=PACKS * pac))
    calls = []

    def spy(critic, real, fake, rng):
        calls.append((real.shape, fake.shape))
        value = PENALTIES[penalty](critic, real, fake, rng)
        assert value.shape == () and torch.isfinite(value)
        return value

    trainer.penalty = spy
    trainer.train_step()
    assert calls == [((PACKS, 2 * pac), (PACKS, 2 * pac))]


def test_pac_1_and_pac_2_are_different_runs_of_the_same_data():
    """A check that the axis does something: the same seed, the same batches, packed or
    not, gives different discriminators (of different input widths) and generators."""
    one, two = GANTrainer(dict(TINY, pac=1)), GANTrainer(dict(TINY, pac=2))
    assert next(one.D.parameters()).shape[1] == 2 and next(two.D.parameters()).shape[1] == 4
    for _ in range(3):
        one.train_step()
        two.train_step()
    g_one, g_two = one.generate(50)[0], two.generate(50)[0]
    assert g_one.shape == g_two.shape and not torch.equal(g_one, g_two)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
@pytest.mark.parametrize("d_norm", D_NORMS)
def test_every_optimizer_and_d_norm_trains_on_images(optimizer, d_norm):
    trainer = GANTrainer(dict(TINY_IMAGES, optimizer=optimizer, d_norm=d_norm, g_norm="batch"))
    for _ in range(2):
        losses = trainer.train_step()
    assert math.isfinite(losses["loss_d"]) and math.isfinite(losses["loss_g"])
    assert not trainer.diverged


def test_learning_rates_reach_each_network_separately():
    trainer = GANTrainer(dict(TINY, lr_g=1e-4, lr_d=4e-4, weight_decay_d=0.01))
    assert trainer.opt_g.param_groups[0]["lr"] == 1e-4
    assert trainer.opt_d.param_groups[0]["lr"] == 4e-4
    assert trainer.opt_d.param_groups[0]["weight_decay"] == 0.01
    assert trainer.opt_g.param_groups[0]["weight_decay"] == 0.0


def test_weight_clip_holds_after_each_step():
    trainer = GANTrainer(dict(TINY, loss="wgan", weight_clip=0.01, n_critic=3))
    trainer.train_step()
    assert max(p.abs().max().item() for p in trainer.D.parameters()) <= 0.01


def test_n_critic_runs_that_many_discriminator_steps_per_generator_step():
    trainer = GANTrainer(dict(TINY, n_critic=5))
    trainer.train_step()
    assert trainer.opt_d.state[trainer.opt_d.param_groups[0]["params"][0]]["step"] == 5
    assert trainer.opt_g.state[trainer.opt_g.param_groups[0]["params"][0]]["step"] == 1


CONFIGS_FOR_RESUME = {
    "mlp-ring8": dict(TINY),
    "wgan-gp-rmsprop": dict(TINY, loss="wgan", penalty="gp", optimizer="rmsprop", n_critic=2),
    "dcgan-acgan-ema-augment": dict(
        TINY_IMAGES,
        conditional=True,
        ema_decay=0.9,
        augment="translation,cutout,color",
        penalty="r1",
        d_norm="spectral",
        g_norm="batch",
    ),
    "resnet-dragan-sgd": dict(
        TINY_IMAGES,
        architecture="resnet",
        penalty="dragan",
        optimizer="sgd",
        momentum=0.9,
        nesterov=True,
        lr_g=0.01,
        lr_d=0.01,
    ),
    "mlp-pac4-cosine-warmup-gp": dict(
        TINY, pac=4, penalty="gp", lr_schedule="cosine", lr_warmup=2, lr_floor=0.1
    ),
    "dcgan-acgan-pac2-linear-augment": dict(
        TINY_IMAGES,
        conditional=True,
        pac=2,
        augment="translation,color",
        penalty="r1",
        lr_schedule="linear",
        lr_floor=0.2,
        n_critic=2,
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", sorted(CONFIGS_FOR_RESUME))
def test_resume_is_exact(name):
    """N steps straight == k steps, save, load into a fresh trainer, N - k steps."""
    config = CONFIGS_FOR_RESUME[name]
    straight = GANTrainer(config)
    for _ in range(6):
        straight.train_step()

    first = GANTrainer(config)
    for _ in range(2):
        first.train_step()
    first.evaluate()  # evaluation in between must not change the trajectory
    saved = roundtrip(first.state_dict())

    resumed = GANTrainer(config)
    resumed.load_state_dict(saved)
    for _ in range(4):
        resumed.train_step()
    assert resumed.step == 6
    assert_states_equal(straight.state_dict(), resumed.state_dict())


def test_restore_applies_the_configured_learning_rates():
    """A scheduler (PBT) restarts a trial from an old checkpoint with a new rate."""
    old = GANTrainer(dict(TINY, lr_g=1e-3, lr_d=1e-3))
    old.train_step()
    new = GANTrainer(dict(TINY, lr_g=5e-4, lr_d=2e-4))
    new.load_state_dict(roundtrip(old.state_dict()))
    assert new.opt_g.param_groups[0]["lr"] == 5e-4
    assert new.opt_d.param_groups[0]["lr"] == 2e-4


SCHEDULED = dict(TINY, steps=8, lr_schedule="cosine", lr_warmup=2, lr_floor=0.1)


def rates(trainer: GANTrainer) -> tuple[float, float]:
    return trainer.opt_g.param_groups[0]["lr"], trainer.opt_d.param_groups[0]["lr"]


def test_a_schedule_continues_exactly_across_a_checkpoint_file(tmp_path):
    """8 steps straight == 4 steps, trial.pt, a fresh trainer, 4 steps: the same weights
    and the same learning rate at every step."""
    from gansweep.trainables.checkpoint import load_trial_checkpoint, save_trial_checkpoint
    from gansweep.trainables.schedules import lr_factor

    straight = GANTrainer(SCHEDULED)
    seen = []
    for _ in range(8):
        seen.append(rates(straight))
        straight.train_step()
    factors = [lr_factor("cosine", s, 8, 2, 0.1) for s in range(8)]
    assert seen == [(1e-3 * f, 1e-3 * f) for f in factors]  # the schedule, exactly

    first = GANTrainer(SCHEDULED)
    for _ in range(4):
        first.train_step()
    save_trial_checkpoint(tmp_path, first, "run", {"step": 4})
    resumed = GANTrainer(SCHEDULED)
    resumed.load_state_dict(load_trial_checkpoint(tmp_path)["trainer"])  # weights_only
    again = []
    for _ in range(4):
        again.append(rates(resumed))
        resumed.train_step()
    assert again == seen[4:]
    assert rates(resumed) == rates(straight)
    assert_states_equal(straight.state_dict(), resumed.state_dict())


def test_a_checkpoint_saved_before_schedules_existed_loads_as_constant():
    """Such a checkpoint has no scheduler state (and its optimizers no initial_lr): its
    run was constant, and it continues bit for bit as a constant run does."""
    straight = GANTrainer(TINY)
    for _ in range(5):
        straight.train_step()
    first = GANTrainer(TINY)
    for _ in range(2):
        first.train_step()
    old = roundtrip(first.state_dict())
    del old["sched_g"], old["sched_d"]
    for key in ("opt_g", "opt_d"):
        for group in old[key]["param_groups"]:
            del group["initial_lr"]
    resumed = GANTrainer(TINY)
    resumed.load_state_dict(old)
    assert resumed.sched_g.last_epoch == resumed.sched_d.last_epoch == 2
    assert rates(resumed) == (1e-3, 1e-3)
    for _ in range(3):
        resumed.train_step()
    assert_states_equal(straight.state_dict(), resumed.state_dict())


def test_new_base_rates_rescale_the_schedule_where_it_stands():
    """PBT's perturbation: the schedule multiplies the base rate, so a new base keeps its
    shape and its position; a restore applies the configured base the same way."""
    from gansweep.trainables.schedules import lr_factor

    trainer = GANTrainer(SCHEDULED)
    for _ in range(3):
        trainer.train_step()
    trainer.set_learning_rates(2e-3, 5e-4)
    for step in range(3, 8):
        factor = lr_factor("cosine", step, 8, 2, 0.1)
        assert rates(trainer) == (2e-3 * factor, 5e-4 * factor)
        trainer.train_step()
    restored = GANTrainer(dict(SCHEDULED, lr_g=4e-3))
    restored.load_state_dict(roundtrip(trainer.state_dict()))
    assert rates(restored) == (4e-3 * lr_factor("cosine", 8, 8, 2, 0.1), 1e-3 * 0.1)


def test_evaluations_report_the_learning_rates_in_force():
    trainer = GANTrainer(dict(SCHEDULED, eval_every=4, lr_d=2e-3))
    evaluations = list(trainer.evaluations())
    assert [(m["lr_g_now"], m["lr_d_now"]) for m in evaluations] == [
        (1e-3 * f, 2e-3 * f) for f in (lr_factor_at(4), lr_factor_at(8))
    ]
    constant = GANTrainer(TINY).evaluate()
    assert (constant["lr_g_now"], constant["lr_d_now"]) == (1e-3, 1e-3)


def lr_factor_at(step: int) -> float:
    from gansweep.trainables.schedules import lr_factor

    return lr_factor("cosine", step, 8, 2, 0.1)


def test_checkpoint_of_another_format_is_refused():
    trainer = GANTrainer(TINY)
    state = trainer.state_dict() | {"format": 99}
    with pytest.raises(ValueError, match="format 99"):
        trainer.load_state_dict(state)


def test_building_a_trainer_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    GANTrainer(TINY)
    torch.testing.assert_close(torch.rand(3), expected)


def test_divergence_is_reported_as_a_metric_not_an_exception():
    trainer = GANTrainer(dict(TINY, loss="wgan", lr_g=10, lr_d=10, optimizer="sgd"))
    for _ in range(10):
        trainer.train_step()
    assert trainer.diverged and trainer.done
    metrics = trainer.evaluate()
    assert metrics["diverged"] == 1.0
    # Every metric a healthy run reports is there, at its worst: any --metric works.
    healthy = GANTrainer(TINY).evaluate()
    assert metrics.keys() == healthy.keys()
    assert metrics["distance"] == metrics["mmd"] == metrics["reverse_kl"] == DIVERGED_DISTANCE
    assert metrics["modes_captured"] == metrics["high_quality"] == 0.0
    step = trainer.step
    trainer.train_step()  # a diverged run stays where it stopped
    assert trainer.step == step


def test_nan_weights_are_caught_at_evaluation():
    trainer = GANTrainer(TINY)
    with torch.no_grad():
        next(trainer.G.parameters()).fill_(float("nan"))
    metrics = trainer.evaluate()
    assert metrics["diverged"] == 1.0 and trainer.diverged


def test_evaluate_reports_mixture_metrics_and_mean_losses():
    trainer = GANTrainer(TINY)
    steps = [trainer.train_step() for _ in range(5)]
    metrics = trainer.evaluate()
    assert metrics["step"] == 5 and metrics["diverged"] == 0.0
    assert metrics["loss_d"] == pytest.approx(sum(s["loss_d"] for s in steps) / 5)
    assert {"distance", "modes_captured", "high_quality", "reverse_kl"} <= metrics.keys()
    assert 0 <= metrics["modes_captured"] <= 8


def test_evaluations_yield_at_every_interval_and_after_the_last_step():
    trainer = GANTrainer(dict(TINY, steps=25, eval_every=10))
    seen = []
    steps = [m["step"] for m in trainer.evaluations(on_step=seen.append)]
    assert steps == [10, 20, 25] and seen == list(range(1, 26)) and trainer.done


def test_a_restored_trainer_continues_its_evaluations_where_it_stopped():
    trainer = GANTrainer(dict(TINY, steps=30, eval_every=10))
    evaluations = trainer.evaluations()
    first = next(evaluations)
    resumed = GANTrainer(dict(TINY, steps=30, eval_every=10))
    resumed.load_state_dict(roundtrip(trainer.state_dict()))  # as from a checkpoint file
    rest = list(resumed.evaluations())
    assert [first["step"], *(m["step"] for m in rest)] == [10, 20, 30]
    assert rest == list(evaluations)  # bit for bit what the uninterrupted run reports


@pytest.mark.parametrize("seed", [0, 1])
def test_an_ema_run_is_not_worse_than_the_same_run_without_ema_at_the_first_rung(seed):
    """A fixed decay of 0.999 would average G's first 500 steps with its random start and
    make every EMA trial look bad at ASHA's first rung. The EMA starts at the first
    evaluation, which therefore sees exactly the generator the run without EMA has; the
    later ones see the average."""
    runs = {}
    for decay in (0.0, 0.999):
        trainer = GANTrainer(dict(TINY, seed=seed, steps=60, eval_every=20, ema_decay=decay))
        runs[decay] = [m["distance"] for m in trainer.evaluations()]
    assert runs[0.999][0] == runs[0.0][0]
    assert runs[0.999][1] != runs[0.0][1] and runs[0.999][2] != runs[0.0][2]


def test_ema_decay_starts_at_the_first_evaluation_and_ramps_up():
    from gansweep.trainables.regularizers import ema_decay_at

    assert [ema_decay_at(s, 0.999, start=500) for s in (0, 499)] == [0.0, 0.0]
    assert ema_decay_at(500, 0.999, start=500) == pytest.approx(0.1)
    assert ema_decay_at(590, 0.999, start=500) == pytest.approx(0.91)
    assert ema_decay_at(100_000, 0.999, start=500) == 0.999


def test_evaluation_samples_are_the_same_noise_every_time():
    trainer = GANTrainer(TINY)
    a, _ = trainer.generate(50)
    b, _ = trainer.generate(50)
    torch.testing.assert_close(a, b)


def test_conditional_generation_gives_balanced_labels():
    trainer = GANTrainer(dict(TINY_IMAGES, conditional=True))
    images, labels = trainer.generate(30)
    assert images.shape == (30, 1, 8, 8)
    assert torch.bincount(labels).tolist() == [3] * 10


def test_config_is_validated_when_given_as_a_dict():
    from gansweep.trainables.config import ConfigError

    with pytest.raises(ConfigError, match="loss"):
        GANTrainer(dict(loss="bogus"))
    assert GANTrainer(TrialConfig(**TINY)).config.width == 16


@pytest.mark.slow
def test_default_config_learns_ring8():
    """The learning test: with the default config (fixed seed, its own 3,000-step budget)
    the generator captures at least 6 of the 8 modes with at least 50% of its samples
    within 3 sigma of a mode. An untrained generator captures none."""
    trainer = GANTrainer(TrialConfig())
    untrained = trainer.evaluate()
    assert untrained["modes_captured"] == 0
    while not trainer.done:
        trainer.train_step()
    metrics = trainer.evaluate()
    assert metrics["modes_captured"] >= 6, metrics
    assert metrics["high_quality"] >= 0.5, metrics
    assert metrics["distance"] < untrained["distance"]


class HostReads(TorchDispatchMode):
    """Records the ops that copy a tensor's value to the host (float(), bool(), .item()):
    on a GPU each one makes the CPU wait for every kernel queued before it.

    `on_host` are tensors torch keeps on the CPU on every device (the optimizers' step
    counters, unless fused or capturable): reading those is no sync, so they are allowed.
    """

    def __init__(self, on_host: list[torch.Tensor]) -> None:
        super().__init__()
        self.on_host = {id(t) for t in on_host}
        self.seen: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default and id(args[0]) not in self.on_host:
            self.seen.append(f"{func} of a tensor {tuple(args[0].shape)}")
        return func(*args, **(kwargs or {}))


def step_counters(trainer: GANTrainer) -> list[torch.Tensor]:
    states = [*trainer.opt_g.state.values(), *trainer.opt_d.state.values()]
    return [s["step"] for s in states if torch.is_tensor(s.get("step"))]


@pytest.mark.parametrize(
    "config",
    [dict(TINY, penalty="gp", ema_decay=0.99, n_critic=2),
     dict(TINY_IMAGES, conditional=True, penalty="dragan", augment="translation"),
     dict(TINY, loss="ragan", penalty="r1", weight_clip=0.01),
     dict(TINY, pac=4, penalty="gp", lr_schedule="cosine", lr_warmup=2)],
    ids=["mlp-gp-ema", "dcgan-ac-dragan-augment", "relativistic-r1-clip", "pac4-gp-cosine"],
)  # fmt: skip
def test_a_training_step_never_reads_a_value_back_to_the_host(config):
    trainer = GANTrainer(config)
    trainer.train_step()  # warm-up: the optimizers create their state
    with HostReads(on_host=step_counters(trainer)) as reads:
        for _ in range(3):
            trainer.train_step()
    assert reads.seen == []


def test_divergence_is_caught_at_the_next_evaluation_without_a_per_step_check():
    trainer = GANTrainer(dict(TINY, steps=20, eval_every=10))
    trainer.train_step()
    with torch.no_grad():
        next(trainer.D.parameters()).fill_(float("nan"))  # every later loss is NaN
    evaluations = list(trainer.evaluations())
    assert [m["step"] for m in evaluations] == [10.0]  # the loop ran to the evaluation
    assert evaluations[0]["diverged"] == 1.0 and trainer.diverged and trainer.done
    assert trainer.step == 10


def test_a_checkpoint_from_another_device_type_continues_deterministically():
    source = GANTrainer(TINY)
    for _ in range(3):
        source.train_step()
    state = source.state_dict()
    state["rng"] = torch.arange(16, dtype=torch.uint8)  # a CUDA generator's state size
    state["rng_device"] = "cuda"
    runs = []
    for _ in range(2):
        trainer = GANTrainer(TINY)
        trainer.load_state_dict(roundtrip(state))  # as from a file: nothing shared
        trainer.train_step()
        runs.append(trainer.state_dict())
    assert_states_equal(runs[0], runs[1])


def test_the_default_threads_fit_the_model_size():
    cores = len(os.sched_getaffinity(0))
    assert default_threads((2,)) == 1  # 2-D points: the MLP's step is too small to split
    assert default_threads((1, 8, 8)) == default_threads((3, 16, 16)) == 1
    assert default_threads((3, 32, 32)) == min(4, cores)


def test_a_trainer_given_threads_sets_torchs_threads():
    before = torch.get_num_threads()
    try:
        GANTrainer(TINY, threads=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------- today's engine, pinned bit for bit

# Four steps of the engine as it was before packing and learning-rate schedules existed
# (recorded at commit 02a8906): with pac = 1 and a constant schedule without warm-up a
# run must stay the same run, so every recorded landscape row, exported champion and
# checkpoint means what it meant. Each case pins the SHA-256 of G's, D's and G_ema's
# weights and the training generator's state after 4 steps (exact), and the float64 sums
# of the weights and the last losses (to 1e-5: these hold on any CPU).
PINNED = {
    "mlp-gp-ema-nc2": (
        dict(TINY, penalty="gp", ema_decay=0.9, eval_every=2, n_critic=2),
        "ded2719870229d56ab70967fb9c6ecbd4fa3bb9e925dfe3e8021a562e9f9f448",
        {"G": 4.338860527379438, "D": -2.54810918669682, "G_ema": 4.334237901770393},
        (10.750439643859863, 0.5806694030761719),
    ),
    "ragan-r1-rmsprop": (
        dict(TINY, loss="ragan", penalty="r1", optimizer="rmsprop"),
        "db61e452f859a0904186fc48964abe7110e33897e327fffa67e0f385e5eb819b",
        {"G": 6.270960922993254, "D": -2.3500397662865},
        (1.3637419939041138, 1.4294826984405518),
    ),
    "dcgan-ac-augment-dragan-sn": (
        dict(TINY_IMAGES, conditional=True, augment="translation,color", penalty="dragan",
             d_norm="spectral", g_norm="batch"),
        "ddd5ec226c2d3ebc4b35d16f9bc179a1758f355c128a96acd0c2f926befc3daf",
        {"G": 36.57099139429192, "D": -1.475862840165064},
        (11.517484664916992, 2.9356284141540527),
    ),
    "resnet-wgan-gp-ln-sgd": (
        dict(TINY_IMAGES, architecture="resnet", loss="wgan", penalty="gp", d_norm="layer",
             optimizer="sgd", momentum=0.9, lr_g=0.01, lr_d=0.01),
        "b05bc28ce1a875eb87788d4c738e10877fc90b1c0733995eabf0360ad20c25e6",
        {"G": -129.06846975024655, "D": -4.163525247236976},
        (158.19168090820312, 22.14165687561035),
    ),
}  # fmt: skip
# Other builds of torch, or CPUs whose kernels round differently, train the same run to
# within rounding, not bit for bit: the hashes hold where they were recorded
# (recorded_platform.py).


def _fingerprint(trainer: GANTrainer) -> tuple[str, dict[str, float], dict[str, float]]:
    """(SHA-256 of the weights of G, D, G_ema and of the training RNG's state, the float64
    sum of each network's floating-point weights, and of their absolute values)."""
    digest, sums, l1 = hashlib.sha256(), {}, {}
    for name in ("G", "D", "G_ema"):
        net = getattr(trainer, name)
        if net is None:
            continue
        state = net.state_dict()
        sums[name] = l1[name] = 0.0
        for key in sorted(state):
            value = state[key].detach().cpu().contiguous()
            digest.update(key.encode())
            digest.update(value.numpy().tobytes())
            if value.is_floating_point():
                sums[name] += float(value.double().sum())
                l1[name] += float(value.double().abs().sum())
    digest.update(trainer.rng.get_state().numpy().tobytes())
    return digest.hexdigest(), sums, l1


@functools.cache
def _four_steps(
    name: str,
) -> tuple[str, dict[str, float], dict[str, float], tuple[float, float]]:
    trainer = GANTrainer(PINNED[name][0])
    for _ in range(4):
        losses = trainer.train_step()
    digest, sums, l1 = _fingerprint(trainer)
    return digest, sums, l1, (float(losses["loss_d"]), float(losses["loss_g"]))


@pytest.mark.parametrize("name", sorted(PINNED))
def test_four_steps_train_the_weights_todays_engine_trains(name):
    """Within rounding anywhere. Each network's weight sum is compared to a tolerance of
    its weights' absolute sum, not of the sum itself (signed weights cancel): RMSprop
    turns a rounding difference in a near-zero gradient into a whole step of lr, which
    moved D's sum by 3.8e-5 of its absolute sum on a CPU other than the recording one
    (ragan-r1-rmsprop); any change to the engine's update moves every weight."""
    _, sums, l1, losses = _four_steps(name)
    assert sums.keys() == PINNED[name][2].keys()
    for net, want in PINNED[name][2].items():
        assert abs(sums[net] - want) <= 1e-4 * l1[net], (net, sums[net], want)
    assert losses == pytest.approx(PINNED[name][3], rel=1e-5)


@pytest.mark.skipif(not SAME_AS_RECORDED, reason=WHY_NOT)
@pytest.mark.parametrize("name", sorted(PINNED))
def test_four_steps_are_bit_for_bit_todays_engine(name):
    digest, _, _, _ = _four_steps(name)
    assert digest == PINNED[name][1]
