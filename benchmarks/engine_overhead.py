"""Steps per second of GANTrainer against a minimal hand-written PyTorch loop.

Both sides use the same networks (built from the same registry entry and seed), the same
non-saturating loss, Adam, batch and data; the hand loop has none of the engine's
generality (registries, penalties, augmentation hooks, divergence checks, loss tracking).
Target: the engine keeps at least 95% of the hand loop's speed.

The two are timed in alternation, ROUNDS times, so machine noise hits both alike; the
figures are the medians. Prints one JSON line per case.

    python benchmarks/engine_overhead.py [--rounds 7] [--steps 200] [--threads 1] [--device cuda]
        [--batch-size 64]

On a GPU the clock stops only after torch.cuda.synchronize(), so queued kernels count.

With --under-load it measures instead what a busy machine does to a run: steps per
second alone and beside two busy processes (pure-Python spin loops, one per core of a
2-core machine), in alternation. For each case with the thread policy
(run_setup.default_threads) and with torch's default (one thread per core), target: the
policy keeps >= 0.5 of its solo speed. Then the whole `gansweep train` command (its
steps_per_second in metrics.json, and its wall time), target >= 0.3.

    python benchmarks/engine_overhead.py --under-load [--rounds 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F

from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.run_setup import default_threads

TORCH_DEFAULT_THREADS = torch.get_num_threads()  # before anything changes it
BUSY_PROCESSES = 2

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


@contextmanager
def busy_machine(processes: int = BUSY_PROCESSES) -> Iterator[None]:
    """`processes` other processes that each keep a core busy, as on a shared machine."""
    spinners = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)
    ]
    time.sleep(0.5)  # let them start spinning
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def steps_per_second_for(step, seconds: float) -> float:
    """Steps per second over at least `seconds` of stepping (a collapsed run is slow:
    a fixed number of steps could take minutes)."""
    start = time.perf_counter()
    steps = 0
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        steps += 1
    return steps / elapsed


def under_load(rounds: int, seconds: float) -> None:
    """Solo against beside busy processes, for the engine and for `gansweep train`."""
    for name, config in CASES.items():
        policy = default_threads(GANTrainer(config).data.shape)
        for label, threads in [("policy", policy), ("torch_default", TORCH_DEFAULT_THREADS)]:
            torch.set_num_threads(threads)
            trainer = GANTrainer(dict(config, steps=10**9))
            for _ in range(10):
                trainer.train_step()
            solo, loaded = [], []
            for _ in range(rounds):
                solo.append(steps_per_second_for(trainer.train_step, seconds))
                with busy_machine():
                    loaded.append(steps_per_second_for(trainer.train_step, seconds))
            ratios = [b / a for a, b in zip(solo, loaded, strict=True)]
            print(json.dumps({
                "case": name, "threads": label, "torch_threads": threads,
                "solo_steps_per_s": round(statistics.median(solo), 1),
                "loaded_steps_per_s": round(statistics.median(loaded), 1),
                "ratio_median": round(statistics.median(ratios), 3),
                "busy_processes": BUSY_PROCESSES, "rounds": rounds,
                "target": 0.5 if label == "policy" else None,
            }), flush=True)  # fmt: skip
    train_command(rounds=max(1, rounds // 2))


def train_command(rounds: int, steps: int = 1500) -> None:
    """The whole `gansweep train` (defaults: the 2-D MLP), alone and beside busy ones."""
    gansweep = str(Path(sys.executable).parent / "gansweep")

    def run(folder: Path) -> tuple[float, float]:
        began = time.perf_counter()
        subprocess.run(
            [gansweep, "train", "--set", f"steps={steps}", "--out", str(folder)],
            check=True, capture_output=True,
        )  # fmt: skip
        wall = time.perf_counter() - began
        return json.loads((folder / "metrics.json").read_text())["steps_per_second"], wall

    solo, loaded = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            solo.append(run(Path(tmp) / f"solo-{i}"))
            with busy_machine():
                loaded.append(run(Path(tmp) / f"loaded-{i}"))
    ratios = [b[0] / a[0] for a, b in zip(solo, loaded, strict=True)]
    print(json.dumps({
        "case": "gansweep train (whole command)", "steps": steps,
        "solo_steps_per_s": round(statistics.median(s for s, _ in solo), 1),
        "loaded_steps_per_s": round(statistics.median(s for s, _ in loaded), 1),
        "ratio_median": round(statistics.median(ratios), 3),
        "solo_wall_s": round(statistics.median(w for _, w in solo), 1),
        "loaded_wall_s": round(statistics.median(w for _, w in loaded), 1),
        "busy_processes": BUSY_PROCESSES, "rounds": rounds, "target": 0.3,
    }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--batch-size", type=int, help="for every case [default: each its own]")
    parser.add_argument("--under-load", action="store_true", help="see the docstring")
    parser.add_argument("--seconds", type=float, default=3.0, help="per --under-load timing")
    args = parser.parse_args()
    if args.under_load:
        under_load(args.rounds, args.seconds)
        return
    torch.set_num_threads(args.threads)

    for name, config in CASES.items():
        if args.batch_size is not None:
            config = dict(config, batch_size=args.batch_size)
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
                    "batch_size": config["batch_size"],
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
