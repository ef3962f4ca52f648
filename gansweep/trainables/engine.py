"""GANTrainer: one GAN run -- build it from a TrialConfig, train it step by step, evaluate
it, save it and restore it exactly.

Knows nothing about Ray or MLflow: the trainable (Ray Tune) and the `train` command
(one run) are thin loops around it.

Determinism: every random draw during training (data batches, noise, labels,
augmentations, penalty interpolation) comes from one torch.Generator on the trainer's
device whose state is saved in the checkpoint: a run continues bit for bit after a
restore on its device type (on another one, deterministically: see _restore_rng). The
networks are initialized from the seed with the global RNG forked, so building a trainer
never disturbs anyone else's random stream. Evaluation draws from its own generator,
re-seeded each time, so evaluating (or not) never changes the training trajectory.

No host sync per step: the losses are summed and checked for NaN on the device, and the
flag is read at evaluations (a run that diverges is caught at the next one), so a GPU
never waits for the CPU between steps.
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from gansweep.profiling import Profile
from gansweep.trainables.augment import augment
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.data import load_dataset
from gansweep.trainables.image_metrics import check_inception_weights
from gansweep.trainables.losses import LOSSES
from gansweep.trainables.metric_registry import LR_D_NOW, LR_G_NOW
from gansweep.trainables.metrics import evaluate_samples, worst_metrics
from gansweep.trainables.models import ARCHITECTURES
from gansweep.trainables.optimizers import OPTIMIZERS, OptimizerSettings
from gansweep.trainables.packing import pack, packed_spec, unpack_class_logits
from gansweep.trainables.regularizers import PENALTIES, clip_weights_, ema_decay_at, ema_update_
from gansweep.trainables.run_setup import model_spec, resolve_device, run_seeds
from gansweep.trainables.schedules import build_scheduler, position, rebase

CHECKPOINT_FORMAT = 1
EVAL_CHUNK = 1000  # generate evaluation samples in chunks to bound memory


class GANTrainer:
    """Trains one GAN. ``train_step()`` is one G update after ``n_critic`` D updates."""

    def __init__(self, config: TrialConfig | dict[str, Any], threads: int | None = None):
        """threads: torch's intra-op threads for this process (a Ray trial: its CPUs;
        `gansweep train`: --threads). None leaves torch's setting (`gansweep train` then
        sets default_threads(data shape))."""
        cfg = config if isinstance(config, TrialConfig) else TrialConfig.from_dict(config)
        self.config = cfg
        if threads is not None:
            torch.set_num_threads(threads)
        self.device = resolve_device(cfg.device)
        if cfg.inception_weights:  # before training, not at the first evaluation
            check_inception_weights(cfg.inception_weights)
        need_labels = "conditional=true" if cfg.conditional else None
        data = load_dataset(cfg.dataset, cfg.data_path, cfg.image_size, need_labels)
        self.data = data.to(self.device)
        self.num_classes = self.data.num_classes if cfg.conditional else 0

        init_seed, train_seed, self._eval_seed = run_seeds(cfg.seed)
        spec = model_spec(cfg, self.data.shape, self.num_classes)
        arch = ARCHITECTURES[cfg.architecture]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            self.G = arch.generator(spec).to(self.device)
            # D judges packs of cfg.pac samples (PacGAN); G makes single samples.
            self.D = arch.discriminator(packed_spec(spec, cfg.pac)).to(self.device)
        self.G_ema = None
        if cfg.ema_decay > 0:
            self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)

        def settings(lr: float, weight_decay: float) -> OptimizerSettings:
            return OptimizerSettings(
                lr, weight_decay, beta1=cfg.beta1, beta2=cfg.beta2, momentum=cfg.momentum,
                nesterov=cfg.nesterov, rmsprop_alpha=cfg.rmsprop_alpha,
            )  # fmt: skip

        build = OPTIMIZERS[cfg.optimizer]
        self.opt_g = build(self.G.parameters(), settings(cfg.lr_g, cfg.weight_decay_g))
        self.opt_d = build(self.D.parameters(), settings(cfg.lr_d, cfg.weight_decay_d))
        # Stepped once per generator step, D's too: the schedule is over the run's steps.
        schedule = (cfg.lr_schedule, cfg.steps, cfg.lr_warmup, cfg.lr_floor)
        self.sched_g = build_scheduler(self.opt_g, *schedule)
        self.sched_d = build_scheduler(self.opt_d, *schedule)

        self.loss = LOSSES[cfg.loss]
        self.penalty = PENALTIES.get(cfg.penalty)  # None for "none"
        self.policy = cfg.augmentations
        self.rng = torch.Generator(device=self.device).manual_seed(train_seed)
        self.step = 0
        self._diverged = False
        self._all_finite = torch.ones((), dtype=torch.bool, device=self.device)
        self._loss_sums = torch.zeros(2, dtype=torch.float64, device=self.device)
        self._loss_count = 0
        # Wall and CPU seconds of evaluate() inside evaluations(): what the loop paid.
        self.timings = Profile("engine")

    # ---------------------------------------------------------------------- training

    @property
    def diverged(self) -> bool:
        """Whether a loss or a generated sample has been non-finite. Reads the device's
        flag: a host sync on a GPU, so the training loop asks only at evaluations."""
        if not self._diverged and not bool(self._all_finite):
            self._diverged = True
        return self._diverged

    @property
    def done(self) -> bool:
        return self.diverged or self.step >= self.config.steps

    def evaluations(
        self, on_step: Callable[[int], None] | None = None
    ) -> Iterator[dict[str, float]]:
        """Train to the end, yielding evaluate()'s metrics every `eval_every` steps and
        after the last step: the one training loop, which `gansweep train` and the Ray
        Tune trainable both consume. A restored trainer continues where it stopped.

        on_step(step), if given, is called after every step (a progress bar).
        """
        # `_diverged`, not `done`: the device's NaN flag is read by evaluate() only.
        while not (self._diverged or self.step >= self.config.steps):
            self.train_step()
            if on_step is not None:
                on_step(self.step)
            if self.step % self.config.eval_every == 0 or self.step >= self.config.steps:
                with self.timings.phase("evaluate"):
                    metrics = self.evaluate()
                yield metrics

    def _noise(self, n: int) -> tuple[Tensor, Tensor | None]:
        z = torch.randn(n, self.config.z_dim, generator=self.rng, device=self.device)
        labels = None
        if self.num_classes:
            labels = torch.randint(self.num_classes, (n,), generator=self.rng, device=self.device)
        return z, labels

    def _discriminate(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """D on augmented, packed inputs: x [B, ...] -> (logits [B / pac], class_logits
        [B, K] | None: each sample's, read off its pack).

        Each sample is augmented on its own before packing: the augmentations draw per
        sample and read a sample's channels together (color), so a pack's samples must
        not be one image to them."""
        pac = self.config.pac
        logits, class_logits = self.D(pack(augment(x, self.policy, self.rng), pac))
        if class_logits is not None:
            class_logits = unpack_class_logits(class_logits, pac)
        return logits, class_logits

    def _critic(self, packs: Tensor) -> Tensor:
        """D's adversarial logits on raw packs [B / pac, pac * C, ...] -> [B / pac]: the
        function the penalties constrain (PacGAN's penalties act on packs)."""
        return self.D(packs)[0]

    def train_step(self) -> dict[str, Tensor]:
        """One generator update after n_critic discriminator updates.

        Returns this step's losses as 0-dim tensors on the device (reading them is a host
        sync: the training loop does not). A non-finite loss marks the run diverged once
        the flag is read (``diverged``, evaluate()); from then on calls do nothing, and
        evaluate() reports it instead of raising.
        """
        if self._diverged:
            nan = torch.tensor(math.nan, dtype=torch.float64)
            return {"loss_d": nan, "loss_g": nan}
        cfg, batch = self.config, self.config.batch_size

        for _ in range(cfg.n_critic):
            real, real_labels = self.data.sample(batch, self.rng)
            z, fake_labels = self._noise(batch)
            with torch.no_grad():
                fake = self.G(z, fake_labels)
            real_logits, real_cls = self._discriminate(real)
            fake_logits, fake_cls = self._discriminate(fake)
            loss_d = self.loss.d_loss(real_logits, fake_logits)
            if self.num_classes:  # AC-GAN: D also classifies real and generated images
                assert real_cls is not None and fake_cls is not None  # D has its head
                assert real_labels is not None and fake_labels is not None  # labelled data
                loss_d = loss_d + cfg.ac_weight * (
                    F.cross_entropy(real_cls, real_labels) + F.cross_entropy(fake_cls, fake_labels)
                )
            if self.penalty is not None:
                loss_d = loss_d + cfg.penalty_weight * self.penalty(
                    self._critic, pack(real, cfg.pac), pack(fake, cfg.pac), self.rng
                )
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            if cfg.weight_clip > 0:
                clip_weights_(self.D, cfg.weight_clip)

        z, fake_labels = self._noise(batch)
        fake_logits, fake_cls = self._discriminate(self.G(z, fake_labels))
        against = None
        if self.loss.g_needs_real:  # relativistic: G's loss compares against D(real)
            with torch.no_grad():
                against, _ = self._discriminate(real)
        loss_g = self.loss.g_loss(fake_logits, against)
        if self.num_classes:
            assert fake_cls is not None and fake_labels is not None
            loss_g = loss_g + cfg.ac_weight * F.cross_entropy(fake_cls, fake_labels)
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        if self.G_ema is not None:
            decay = ema_decay_at(self.step, cfg.ema_decay, start=cfg.eval_every)
            ema_update_(self.G_ema, self.G, decay)
        self.sched_g.step()
        self.sched_d.step()

        self.step += 1
        losses = torch.stack([loss_d.detach(), loss_g.detach()]).double()
        self._all_finite &= torch.isfinite(losses).all()
        self._loss_sums += losses
        self._loss_count += 1
        return {"loss_d": losses[0], "loss_g": losses[1]}

    # -------------------------------------------------------------------- evaluation

    @torch.no_grad()
    def generate(self, n: int, seed: int | None = None) -> tuple[Tensor, Tensor | None]:
        """n samples [n, *data_shape] from the EMA generator if there is one, in eval mode.

        Conditional runs get balanced labels 0, 1, ..., K-1, 0, 1, ... (returned too).
        The same seed gives the same noise, so successive evaluations are comparable.
        """
        g = self.G_ema if self.G_ema is not None else self.G
        rng = torch.Generator().manual_seed(self._eval_seed if seed is None else seed)
        labels = None
        if self.num_classes:
            labels = (torch.arange(n) % self.num_classes).to(self.device)
        was_training = g.training
        g.eval()
        try:
            chunks = []
            for start in range(0, n, EVAL_CHUNK):
                m = min(EVAL_CHUNK, n - start)
                z = torch.randn(m, self.config.z_dim, generator=rng).to(self.device)
                chunks.append(g(z, None if labels is None else labels[start : start + m]))
        finally:
            g.train(was_training)
        return torch.cat(chunks), labels

    def evaluate(self) -> dict[str, float]:
        """Quality metrics of `eval_samples` generated samples, plus the mean losses since
        the last evaluation. ``distance`` is the primary metric (lower is better)."""
        cfg = self.config
        losses = self._loss_sums / max(1, self._loss_count)
        result = {
            "step": float(self.step),
            "loss_d": float(losses[0]),
            "loss_g": float(losses[1]),
            # The rates the schedules set for the next update (the configured ones when
            # constant): recorded beside the curves, ranking nothing.
            LR_G_NOW: float(self.sched_g.get_last_lr()[0]),
            LR_D_NOW: float(self.sched_d.get_last_lr()[0]),
        }
        self._loss_sums.zero_()
        self._loss_count = 0
        if not self.diverged:
            fake, labels = self.generate(cfg.eval_samples)
            self._diverged = not bool(torch.isfinite(fake).all())
        if self.diverged:  # every metric at its worst, so any --metric has a value
            worst = worst_metrics(
                self.data.kind, bool(self.num_classes), bool(cfg.inception_weights),
                self.data.labelled,
            )  # fmt: skip
            return {**result, **worst, "diverged": 1.0}
        metrics = evaluate_samples(self.data, fake, labels, cfg.inception_weights)
        return {**result, **metrics, "diverged": 0.0}

    # ------------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit on CPU; loadable with weights_only."""
        return {
            "format": CHECKPOINT_FORMAT,
            "step": self.step,
            "diverged": self.diverged,
            "config": self.config.model_dump(),
            "data_shape": list(self.data.shape),  # so load_generator can rebuild G from it
            "num_classes": self.num_classes,
            "generator": self.G.state_dict(),
            "discriminator": self.D.state_dict(),
            "generator_ema": None if self.G_ema is None else self.G_ema.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "rng": self.rng.get_state(),
            "rng_device": self.device.type,
        }

    def generator_state_dict(self) -> dict[str, Any]:
        """The generator alone (EMA weights if any) with its config: what a user ships.

        Rebuild it with ``load_generator``; loadable with weights_only.
        """
        g = self.G_ema if self.G_ema is not None else self.G
        return {
            "format": CHECKPOINT_FORMAT,
            "config": self.config.model_dump(),
            "data_shape": list(self.data.shape),
            "num_classes": self.num_classes,
            "generator": g.state_dict(),
        }

    def set_learning_rates(self, lr_g: float, lr_d: float) -> None:
        """New base rates of G and D, the schedules kept where they are: each rate
        becomes its base times the schedule's factor at this step (PBT's perturbation)."""
        rebase(self.sched_g, lr_g)
        rebase(self.sched_d, lr_d)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state_dict(); the configured learning rates win over the saved ones,
        so the config a trainer was built from is the one it trains with: its schedule
        continues at the saved step, scaled to the configured base rates."""
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"checkpoint format {state.get('format')!r} is not {CHECKPOINT_FORMAT}"
            )
        self.G.load_state_dict(state["generator"])
        self.D.load_state_dict(state["discriminator"])
        if self.G_ema is not None:
            ema = state["generator_ema"]
            self.G_ema.load_state_dict(ema if ema is not None else state["generator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        for scheduler, key in ((self.sched_g, "sched_g"), (self.sched_d, "sched_d")):
            if key in state:
                scheduler.load_state_dict(state[key])
            else:  # saved before schedules existed, by a constant run: at its step
                position(scheduler, int(state["step"]))
        self.set_learning_rates(self.config.lr_g, self.config.lr_d)
        self._restore_rng(state["rng"], state.get("rng_device", "cpu"))
        self.step = int(state["step"])
        self._diverged = bool(state["diverged"])
        self._all_finite.fill_(True)
        self._loss_sums.zero_()
        self._loss_count = 0

    def _restore_rng(self, saved: Tensor, device_type: str) -> None:
        """The saved generator state; one saved on another device type (a GPU checkpoint
        continued on a CPU) cannot be loaded into this generator, so the draws continue
        from a seed derived from it: deterministic, though not the other device's draws."""
        if device_type == self.device.type:
            self.rng.set_state(saved)
            return
        digest = hashlib.sha256(saved.numpy().tobytes()).digest()
        self.rng.manual_seed(int.from_bytes(digest[:8], "little"))


def load_generator(path: str | Path, device: str = "cpu") -> torch.nn.Module:
    """The generator in ``generator.pt`` (``generator_state_dict``: what `gansweep train`
    and every trial write) or in a whole checkpoint (``trial.pt``, of a trial or of
    `gansweep train`; an older bare trainer state too), in eval mode, EMA weights where
    the run kept them.

    Call it as G(z [B, G.z_dim], labels [B] | None); G.config is the run's TrialConfig.
    """
    state = torch.load(path, map_location=device, weights_only=True)
    state = state.get("trainer", state)  # a trial checkpoint wraps the trainer's state
    cfg = TrialConfig.from_dict(state["config"])
    if "data_shape" in state:
        data_shape, num_classes = tuple(state["data_shape"]), int(state["num_classes"])
    else:  # a checkpoint written before it recorded them: ask the data set
        data = load_dataset(cfg.dataset, cfg.data_path, cfg.image_size)
        data_shape, num_classes = data.shape, data.num_classes if cfg.conditional else 0
    spec = model_spec(cfg, data_shape, num_classes)
    generator = ARCHITECTURES[cfg.architecture].generator(spec)
    weights = state.get("generator_ema") or state["generator"]  # a checkpoint's EMA, if any
    generator.load_state_dict(weights)
    # Plain attributes for the user (mypy types nn.Module attributes as Tensor | Module).
    vars(generator).update(z_dim=cfg.z_dim, config=cfg)
    return generator.to(device).eval()
