"""`gansweep train`: files written, checkpoint restorable, bad input refused cleanly."""

import json
import subprocess
import sys

import pytest
import torch
from typer.testing import CliRunner

from gansweep.platform.cli import app
from gansweep.trainables.engine import GANTrainer

runner = CliRunner()
TINY = ["--set", "steps=20", "--set", "eval_every=10", "--set", "eval_samples=200",
        "--set", "width=16", "--set", "batch_size=32"]  # fmt: skip


def test_train_writes_metrics_samples_and_a_restorable_checkpoint(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("loss: hinge\npenalty: r1\npenalty_weight: 1.0\n")
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(config), *TINY, "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["step"] == 20 and metrics["diverged"] == 0.0
    assert {"distance", "modes_captured", "high_quality", "steps_per_second"} <= metrics.keys()
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["step"] for h in history] == [10, 20]
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["config"]["loss"] == "hinge" and state["step"] == 20
    trainer = GANTrainer(state["config"])
    trainer.load_state_dict(state)
    assert trainer.step == 20


def test_train_on_images_writes_an_image_grid(tmp_path):
    out = tmp_path / "digits"
    args = ["train", *TINY, "--set", "dataset=digits", "--set", "architecture=dcgan"]
    result = runner.invoke(app, [*args, "--set", "conditional=true", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"fd", "ac_accuracy", "precision", "recall"} <= metrics.keys()
    assert metrics["distance"] == metrics["fd"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "loss=bogus"], "unknown loss 'bogus'; valid: minimax, ns, wgan"),
        (["--set", "batch_size=0"], "batch_size: Input should be greater than or equal to 1"),
        (["--set", "lr_g"], "expected key=value"),
        (["--set", "colour=red"], "colour: unknown key; valid keys:"),
        (["missing.yaml"], "config file 'missing.yaml' does not exist"),
        (["--set", "dataset=image_folder", "--set", "architecture=dcgan"], "needs data_path"),
        (["--set", "device=cuda:7"], "no CUDA device is visible"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_writes_nothing(tmp_path, args, message):
    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("a CUDA device exists here")
    out = tmp_path / "out"
    result = runner.invoke(app, ["train", *args, "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_the_console_script_runs(tmp_path):
    """The installed `gansweep` entry point, as a user types it."""
    out = tmp_path / "run"
    gansweep = [sys.executable, "-m", "gansweep.platform.cli"]
    proc = subprocess.run(
        [*gansweep, "train", *TINY, "--out", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "distance" in proc.stdout and (out / "checkpoint.pt").exists()
    bad = subprocess.run([*gansweep, "train", "--set", "loss=x"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown loss 'x'" in bad.stderr
    assert "Traceback" not in bad.stderr
