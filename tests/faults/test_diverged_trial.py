"""Fault injection: a trial whose training produces NaN in a sweep of real processes
(local Ray, MLflow SQLite store, Optuna study)."""

from __future__ import annotations

import math
import time

import pytest
import yaml
from faultkit import children_by_trial, load_manifest, optuna_trials, tail, tune_trials
from mlflow import MlflowClient

from gansweep.records import run_format
from gansweep.trainables.metrics import DIVERGED_DISTANCE

STEPS, EVAL_EVERY = 300, 100
# lr_d = 10 sends the SGD critic's weights to inf within a few steps (lr_g = 10 alone does
# not: the critic keeps the generator's gradients small); 0.001 is the default rate.
SPACE = f"""\
description: one absurd critic learning rate, one sane one
fixed: {{loss: wgan, optimizer: sgd, steps: {STEPS}, eval_every: {EVAL_EVERY}, eval_samples: 500}}
params:
  lr_d: {{choice: [10.0, 0.001]}}
"""


@pytest.mark.slow
def test_a_trial_that_produces_nan_is_tagged_diverged_and_the_sweep_goes_on(sweeps, tmp_path):
    """Fault: one trial of a sweep gets an absurd learning rate and its losses turn NaN;
    the other trial is normal (the grid sampler visits both values of lr_d).
    Must survive: the NaN trial stops at its next evaluation, is tagged diverged with
    metric diverged = 1, and gives the searcher a finite bad value (DIVERGED_DISTANCE);
    the other trial finishes normally, the sweep ends with exit code 0 and exports the
    normal trial as best."""
    (tmp_path / "explode.yaml").write_text(SPACE)
    started = time.monotonic()
    proc = sweeps.start(
        "sweep", "--space", "explode.yaml", "--name", "nan", "--sampler", "grid",
        "--num-samples", "2", "--scheduler", "fifo", "--replicate-top", "0", log="sweep.log",
    )  # fmt: skip
    assert sweeps.wait(proc, 400) == 0, tail(proc)
    print(f"\nsweep took {time.monotonic() - started:.1f} s")

    manifest = load_manifest(tmp_path, "nan")
    trials = {t.config["lr_d"]: t for t in tune_trials(tmp_path / "sweeps" / "nan")}
    assert sorted(trials) == [0.001, 10.0]
    assert [trials[lr].status for lr in (10.0, 0.001)] == ["TERMINATED", "TERMINATED"]
    diverged, normal = trials[10.0], trials[0.001]
    assert diverged.last_result["diverged"] == 1.0
    # Caught at the first evaluation (a step reads no flag back from the device) and not
    # trained on after it.
    assert diverged.last_result["step"] == EVAL_EVERY
    assert normal.last_result["diverged"] == 0.0
    assert normal.last_result["step"] == STEPS

    # MLflow: each trial has one run, closed; the NaN one tagged diverged.
    grouped = children_by_trial(manifest)
    assert sorted(grouped) == sorted([diverged.trial_id, normal.trial_id])
    [bad] = grouped[diverged.trial_id]
    [good] = grouped[normal.trial_id]
    assert (bad.info.status, bad.data.tags[run_format.TAG_STATUS]) == ("FINISHED", "diverged")
    assert bad.data.metrics["diverged"] == 1.0
    assert bad.data.metrics["distance"] == DIVERGED_DISTANCE
    assert (good.info.status, good.data.tags[run_format.TAG_STATUS]) == ("FINISHED", "finished")
    assert good.data.metrics["diverged"] == 0.0
    client = MlflowClient(manifest.tracking_uri)
    history = client.get_metric_history(good.info.run_id, "distance")
    assert sorted(m.step for m in history) == [100, 200, 300]
    assert all(math.isfinite(m.value) for m in history)

    # Optuna: both COMPLETE with finite values, the NaN trial's the worst possible one.
    values = {t.params["lr_d"]: (t.state.name, t.value) for t in optuna_trials(manifest)}
    assert values == {
        10.0: ("COMPLETE", DIVERGED_DISTANCE),
        0.001: ("COMPLETE", pytest.approx(normal.last_result["distance"])),
    }
    assert normal.last_result["distance"] < DIVERGED_DISTANCE

    # The sweep went on to its end: the normal trial is the exported best.
    best = yaml.safe_load((tmp_path / "sweeps" / "nan" / "best.yaml").read_text())
    assert best["lr_d"] == 0.001
    assert best["_provenance"]["mlflow_run_id"] == good.info.run_id
