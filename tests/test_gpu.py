"""Checks that need a CUDA device; skipped where none is visible (CI has none: run them on
a GPU machine with `pytest -m gpu`)."""

import json
import os
import subprocess
import sys

import pytest
import torch

from gansweep.trainables.engine import GANTrainer

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
TINY = dict(width=16, batch_size=32, steps=20, eval_every=10, eval_samples=200)


@pytest.mark.parametrize(
    "config",
    [dict(TINY), dict(TINY, dataset="digits", architecture="dcgan", width=8, conditional=True,
                      ema_decay=0.9, penalty="r1", augment="translation")],
    ids=["mlp-ring8", "dcgan-digits"],
)  # fmt: skip
def test_a_cuda_trainer_trains_evaluates_and_restores_on_the_cpu(config):
    trainer = GANTrainer(dict(config, device="cuda"))
    assert next(trainer.G.parameters()).is_cuda
    metrics = list(trainer.evaluations())[-1]
    assert metrics["diverged"] == 0.0 and metrics["step"] == 20
    state = trainer.state_dict()
    cpu = GANTrainer(dict(config, device="cpu"))
    cpu.load_state_dict(state)  # a GPU checkpoint continues on a CPU
    assert cpu.step == 20 and not next(cpu.G.parameters()).is_cuda


def test_a_sweep_packs_two_trials_on_one_gpu(tmp_path):
    from mlflow import MlflowClient  # here, so the engine checks run where only torch is

    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--name", "gpu",
         "--num-samples", "2", "--max-concurrent", "2", "--gpus-per-trial", "0.5",
         "--scheduler", "fifo", "--replicate-top", "0", "--set", "steps=40",
         "--set", "eval_every=20", "--set", "eval_samples=200"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "RAY_ADDRESS": ""},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifest = json.loads((tmp_path / "sweeps" / "gpu" / "gansweep.json").read_text())
    runs = MlflowClient(manifest["tracking_uri"]).search_runs([manifest["experiment_id"]])
    trials = [r for r in runs if r.data.tags.get("gansweep.role") == "trial"]
    assert len(trials) == 2
    assert all(r.data.tags["gansweep.device"].startswith("cuda") for r in trials)
    assert all(r.data.tags["gansweep.status"] == "finished" for r in trials)


def test_a_cuda_training_step_never_waits_for_the_gpu():
    trainer = GANTrainer(dict(TINY, device="cuda", penalty="gp", ema_decay=0.99))
    trainer.train_step()  # warm-up: lazy CUDA initializations may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any synchronizing call raises
    try:
        for _ in range(5):
            trainer.train_step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert trainer.step == 6
