"""A folder of images with no classes, as most users have it, swept end to end: real Ray,
a real MLflow store, the rotation feature net for the image metrics."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

IMAGE_METRICS = ("fd", "precision", "recall", "density", "coverage")


def one_class_folder(root: Path, n: int = 60) -> Path:
    """n 16x16 PNGs of one kind (a bar from the centre at a random angle, a random
    colour) in root/shapes: no class folders, so no labels."""
    import random

    from PIL import Image, ImageDraw

    folder = root / "shapes"
    folder.mkdir(parents=True)
    rng = random.Random(0)
    for i in range(n):
        image = Image.new("RGB", (16, 16), (0, 0, 0))
        draw = ImageDraw.Draw(image)
        x, y = rng.randint(2, 13), rng.randint(9, 14)
        draw.line([(8, 2), (x, y)], fill=(rng.randint(120, 255), 200, 80), width=2)
        draw.rectangle([6, 1, 10, 3], fill=(255, 255, 255))  # a head: upright has meaning
        image.save(folder / f"{i}.png")
    return root


def test_train_on_a_one_class_folder_reports_finite_image_metrics(tmp_path, monkeypatch):
    """What the issue saw exit 1 at the first evaluation: now the rotation net measures."""
    from typer.testing import CliRunner

    from gansweep.platform.cli import app

    monkeypatch.setenv("GANSWEEP_CACHE", str(tmp_path / "cache"))
    data = one_class_folder(tmp_path / "data", n=30)
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        ["train", "--set", "dataset=image_folder", "--set", f"data_path={data}",
         "--set", "architecture=dcgan", "--set", "image_size=16", "--set", "width=8",
         "--set", "batch_size=16", "--set", "steps=10", "--set", "eval_every=10",
         "--set", "eval_samples=100", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert all(math.isfinite(metrics[name]) for name in IMAGE_METRICS)
    assert metrics["distance"] == metrics["fd"] and "classifier_score" not in metrics


@pytest.mark.slow
def test_a_one_class_folder_sweeps_to_the_end_with_finite_metrics(tmp_path):
    data = one_class_folder(tmp_path / "data")
    space = tmp_path / "folder.yaml"
    space.write_text(
        f"fixed: {{dataset: image_folder, data_path: {data}, architecture: dcgan,\n"
        "        image_size: 16, width: 16, batch_size: 32, steps: 40, eval_every: 20,\n"
        "        eval_samples: 200}\n"
        "params:\n  loss: {choice: [ns, hinge]}\n"
    )
    env = {**os.environ, "RAY_ADDRESS": "", "GANSWEEP_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--space", str(space),
         "--name", "folder", "--num-samples", "2", "--max-concurrent", "2",
         "--scheduler", "fifo", "--replicate-top", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "sweeps" / "folder" / "gansweep.json").read_text())
    runs = mlflow.MlflowClient(manifest["tracking_uri"]).search_runs(
        [manifest["experiment_id"]], filter_string="tags.`gansweep.role` = 'trial'"
    )
    assert len(runs) == 2
    for run in runs:
        assert run.data.tags["gansweep.status"] == "finished"
        metrics = run.data.metrics
        assert metrics["step"] == 40 and metrics["diverged"] == 0
        for name in IMAGE_METRICS:
            assert math.isfinite(metrics[name]), name
        assert "classifier_score" not in metrics  # a rotation net has no classes to score
    # The rotation feature net was trained once and cached for both trials.
    assert any("-rotation-" in p.name for p in (tmp_path / "cache" / "feature_nets").iterdir())
