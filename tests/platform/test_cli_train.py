"""`gansweep train`: files written, checkpoint restorable, the console script runs (bad
input: tests/test_bad_input.py)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gansweep.platform.cli import app
from gansweep.trainables.checkpoint import load_trial_checkpoint
from gansweep.trainables.engine import GANTrainer, load_generator

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

    # The trial's own checkpoint format: a sweep's trial could continue from it.
    saved = load_trial_checkpoint(out)
    state = saved["trainer"]
    assert state["config"]["loss"] == "hinge" and state["step"] == 20
    assert saved["metrics"]["step"] == 20 and saved["metrics"]["train_seconds"] > 0
    trainer = GANTrainer(state["config"])
    trainer.load_state_dict(state)
    assert trainer.step == 20
    for name, tensor in trainer.G.state_dict().items():
        assert torch.equal(tensor, state["generator"][name]), name


def test_train_writes_a_generator_that_loads_from_either_file(tmp_path):
    """generator.pt next to trial.pt; load_generator takes both (EMA weights from
    either), and the README's lines sample from it."""
    out = tmp_path / "run"
    args = ["train", *TINY, "--set", "dataset=digits", "--set", "architecture=dcgan"]
    result = runner.invoke(app, [*args, "--set", "ema_decay=0.9", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "generator.pt" in result.output
    from_generator = load_generator(out / "generator.pt")
    from_checkpoint = load_generator(out / "trial.pt")
    z = torch.randn(16, from_generator.z_dim, generator=torch.Generator().manual_seed(0))
    images = from_generator(z, None)
    assert images.shape == (16, 1, 8, 8) and torch.isfinite(images).all()
    torch.testing.assert_close(from_checkpoint(z, None), images)
    # The EMA weights, not the raw generator's: they differ after 20 steps.
    state = load_trial_checkpoint(out)["trainer"]
    raw = GANTrainer(state["config"]).G
    raw.load_state_dict(state["generator"])
    assert not torch.allclose(raw.eval()(z, None), images)


def test_train_on_images_writes_an_image_grid(tmp_path):
    out = tmp_path / "digits"
    args = ["train", *TINY, "--set", "dataset=digits", "--set", "architecture=dcgan"]
    result = runner.invoke(app, [*args, "--set", "conditional=true", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"fd", "ac_accuracy", "precision", "recall"} <= metrics.keys()
    assert metrics["distance"] == metrics["fd"]


def test_the_console_script_runs(tmp_path):
    """The installed `gansweep` entry point, as a user types it: the console script that
    installation put next to this interpreter, not `python -m`."""
    script = Path(sys.executable).parent / "gansweep"
    if not script.is_file():
        pytest.skip(f"no installed `gansweep` console script at {script} (pip install -e .)")
    out = tmp_path / "run"
    proc = subprocess.run(
        [str(script), "train", *TINY, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "distance" in proc.stdout and (out / "trial.pt").exists()
    bad = subprocess.run(
        [str(script), "train", "--set", "loss=x"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert bad.returncode == 2 and "unknown loss 'x'" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_train_never_replaces_a_run_unless_forced(tmp_path):
    out = tmp_path / "run"
    assert runner.invoke(app, ["train", *TINY, "--out", str(out)]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "notes.txt").write_text("mine")

    refused = runner.invoke(app, ["train", *TINY, "--set", "seed=1", "--out", str(out)])
    assert refused.exit_code == 2
    assert "holds a run already" in refused.output and "--force" in refused.output
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "notes.txt"} == before

    forced = runner.invoke(app, ["train", *TINY, "--set", "seed=1", "--out", str(out), "--force"])
    assert forced.exit_code == 0, forced.output
    history = (out / "history.jsonl").read_text().splitlines()
    assert len(history) == 2  # the new run's evaluations only, not appended to the old
    assert (out / "trial.pt").read_bytes() != before["trial.pt"]
    assert (out / "notes.txt").read_text() == "mine"  # not a run's file: left alone


def test_two_runs_in_the_same_second_get_two_default_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt, *a: "20261203-120000")
    for _ in range(2):
        assert runner.invoke(app, ["train", *TINY]).exit_code == 0
    folders = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert len(folders) == 2 and folders[1] == folders[0] + "-2", folders
    assert all((tmp_path / "runs" / f / "trial.pt").exists() for f in folders)
