"""Fault: Ctrl-C in a sweep of the replay trainable, then `gansweep resume`. The trainable
named by --trainable comes back from the manifest, replay trials continue from their
checkpoints, and every trial ends once with the values the recorded table holds."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pandas as pd
import pytest
from faultkit import finished_trials, load_manifest, tail, wait_for
from replay import TABLE, Landscape

from gansweep.records import run_config, standings

ROOT = Path(__file__).parents[2]
LANDSCAPE = ROOT / "benchmarks" / "landscape"


@pytest.mark.slow
def test_a_replay_sweep_interrupted_resumes_and_ends_every_trial_once(sweeps, tmp_path):
    name, samples = "replay-ctrlc", 12
    # A tenth of the recorded time: a trial takes 1-4 s, so Ctrl-C finds trials in flight.
    slow = {"GANSWEEP_REPLAY_SPEED": "0.1"}
    proc = sweeps.start(
        "sweep", "--space", str(LANDSCAPE / "ring8_space.yaml"), "--name", name,
        "--trainable", f"{LANDSCAPE / 'replay.py'}:replay",
        "--num-samples", str(samples), "--max-concurrent", "2", "--replicate-top", "0",
        log="sweep.log", env=slow,
    )  # fmt: skip
    wait_for("3 finished trials", lambda: len(finished_trials(load_manifest(tmp_path, name))) >= 3,
             proc, 300)  # fmt: skip
    os.kill(proc.pid, signal.SIGINT)
    assert sweeps.wait(proc, 120) == 130, tail(proc)
    assert load_manifest(tmp_path, name).status == "interrupted"

    proc = sweeps.start("resume", name, log="resume.log", env=slow)
    assert sweeps.wait(proc, 300) == 0, tail(proc)
    manifest = load_manifest(tmp_path, name)
    assert manifest.status == "finished"
    trials = standings(manifest).trials
    # A trial Tune started after its last state save is lost with the driver; its stub
    # run is deleted on resume and Tune runs a new trial in its place: exactly the
    # trials asked for, none failed.
    assert len(trials) == samples and trials["trial_id"].is_unique
    landscape = Landscape(pd.read_csv(TABLE))
    for _, run in trials.iterrows():
        assert run["status"] in ("finished", "stopped_early", "diverged"), run["status"]
        config = run_config(manifest.tracking_uri, run["run_id"]).model_dump()
        curve = landscape.curve(config, run["trial_id"])
        row = curve[curve["step"] == run["step"]].iloc[0]
        assert run["value"] == pytest.approx(row["distance"], rel=1e-12)
