"""Steps per second of GANTrainer against a minimal hand-written PyTorch loop.

Both sides use the same networks (built from the same registry entry and seed), the same
non-saturating loss, Adam, batch and data; the hand loop has none of the engine's
generality (registries, penalties, augmentation hooks, divergence checks, loss tracking).
Target: the engine keeps at least 95% of the hand loop's speed.

The two are timed in alternation, ROUNDS times, so machine noise hits both alike; the
figures are the medians. Prints one JSON line per case.

    python benchmarks/engine_overhead.py [--rounds 7] [--steps 200] [--threads 1] [--device cuda]

On a GPU the clock stops only after torch.cuda.synchronize(), so queued kernels count.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn.functional as F

from gansweep.trainables.engine import GANTrainer

CASES = {
    "mlp-ring8": dict(dataset="ring8", architecture="mlp", batch_size=256),
    "dcgan-digits": dict(dataset="digits", architecture="dcgan", width=32, batch_size=64),
}


class HandLoop:
    """The minimal GAN loop someone would write by hand for the same model and data."""

    def __init__(self, trainer: GANTrainer):
        cfg = trainer.config
        self.G, self.D, self.data, self.batch = trainer.G, trainer.D, trainer.data, cfg.batch_size
        self.z_dim = cfg.z_dim
        self.device = trainer.device
        self.opt_g = torch.optim.Adam(
            self.G.parameters(), lr=cfg.lr_g, betas=(cfg.beta1, cfg.beta2)
        )
        self.opt_d = torch.optim.Adam(
            self.D.parameters(), lr=cfg.lr_d, betas=(cfg.beta1, cfg.beta2)
        )
        if hasattr(self.data, "modes"):
            self.real_batch = self._mixture_batch
        else:
            self.real_batch = lambda: self.data.train_x[
                torch.randint(len(self.data.train_x), (self.batch,), device=self.device)
            ]

    def _mixture_batch(self):
        modes = self.data.modes
        which = torch.randint(len(modes), (self.batch,), device=self.device)
        return modes[which] + self.data.sigma * torch.randn(self.batch, 2, device=self.device)

    def step(self) -> None:
        real = self.real_batch()
        with torch.no_grad():
            fake = self.G(torch.randn(self.batch, self.z_dim, device=self.device))
        loss_d = F.softplus(-self.D(real)[0]).mean() + F.softplus(self.D(fake)[0]).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        z = torch.randn(self.batch, self.z_dim, device=self.device)
        loss_g = F.softplus(-self.D(self.G(z))[0]).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()


def steps_per_second(step, steps: int, device: str) -> float:
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    for name, config in CASES.items():
        engine = GANTrainer(dict(config, device=args.device, steps=10**9))
        hand = HandLoop(GANTrainer(dict(config, device=args.device, steps=10**9)))
        for _ in range(20):  # warm-up: allocator, autograd caches
            engine.train_step()
            hand.step()
        engine_rates, hand_rates = [], []
        for _ in range(args.rounds):
            engine_rates.append(steps_per_second(engine.train_step, args.steps, args.device))
            hand_rates.append(steps_per_second(hand.step, args.steps, args.device))
        ratios = [e / h for e, h in zip(engine_rates, hand_rates, strict=True)]
        print(
            json.dumps(
                {
                    "case": name,
                    "engine_steps_per_s": round(statistics.median(engine_rates), 1),
                    "hand_steps_per_s": round(statistics.median(hand_rates), 1),
                    "ratio_median": round(statistics.median(ratios), 3),
                    "ratio_min": round(min(ratios), 3),
                    "ratio_max": round(max(ratios), 3),
                    "rounds": args.rounds,
                    "steps_per_round": args.steps,
                    "threads": args.threads,
                    "device": args.device,
                    "target": 0.95,
                }
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
