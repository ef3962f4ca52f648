"""PBT (--scheduler pbt): a trial that exploits another continues from that trial's
weights with the perturbed learning rates, keeps its own MLflow run and records the
perturbation there; (slow) a real PBT sweep whose initial population Optuna proposed."""

import json
import os
import subprocess
import sys

import mlflow
import optuna
import pytest
import torch
from mlflow import MlflowClient

from gansweep.dashboards.data import sweep_study
from gansweep.platform.trial import restore_trainer
from gansweep.records.leaderboard import run_config
from gansweep.records.run_format import TAG_CONFIG, SweepRecords, TrialIdentity
from gansweep.records.write import TrialRun, start_sweep_run
from gansweep.trainables.checkpoint import load_trial_checkpoint, save_trial_checkpoint
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.engine import GANTrainer

TINY = {"steps": 20, "eval_every": 10, "eval_samples": 100, "batch_size": 32, "width": 16}


def states_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


SCHEDULES = {
    "constant": {},
    "cosine-warmup": {"lr_schedule": "cosine", "lr_warmup": 2, "lr_floor": 0.1},
}


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_an_exploiting_trial_continues_from_the_donors_weights_with_new_rates(tmp_path, schedule):
    """With a schedule, the perturbed rates are its new base: each rate is the new base
    times the schedule's factor at the step the donor reached, and goes on from there."""
    from gansweep.trainables.schedules import lr_factor

    config = {**TINY, "lr_g": 1e-3, "lr_d": 1e-3, **SCHEDULES[schedule]}
    donor = GANTrainer(TrialConfig.from_dict(config))
    initial = {k: v.clone() for k, v in donor.G.state_dict().items()}
    for _ in range(3):
        donor.train_step()
    assert not states_equal(initial, donor.G.state_dict())  # it has moved from its init
    save_trial_checkpoint(tmp_path, donor, "run-of-donor", {"step": 3}, trial_id="donor")
    saved = load_trial_checkpoint(tmp_path)

    # PBT restarts the recipient with the donor's config, perturbed, and its checkpoint.
    perturbed = donor.config.model_copy(update={"lr_g": 4e-4, "lr_d": 7e-4})
    recipient = GANTrainer(perturbed)
    run_id, source = restore_trainer(recipient, saved, "recipient")
    assert (run_id, source) == (None, "donor")  # its own run, found by its trial id
    assert recipient.step == 3
    assert states_equal(recipient.G.state_dict(), donor.G.state_dict())
    assert states_equal(recipient.D.state_dict(), donor.D.state_dict())
    factor = lr_factor(perturbed.lr_schedule, 3, TINY["steps"], perturbed.lr_warmup, 0.1)
    assert (factor == 1.0) == (schedule == "constant")
    assert recipient.opt_g.param_groups[0]["lr"] == 4e-4 * factor
    assert recipient.opt_d.param_groups[0]["lr"] == 7e-4 * factor

    # The next steps are the donor's own continuation, at the new rates (bit for bit).
    donor.set_learning_rates(4e-4, 7e-4)
    for _ in range(2):
        donor.train_step()
        recipient.train_step()
    assert recipient.opt_g.param_groups[0]["lr"] == donor.opt_g.param_groups[0]["lr"]
    factor = lr_factor(perturbed.lr_schedule, 5, TINY["steps"], perturbed.lr_warmup, 0.1)
    assert recipient.opt_g.param_groups[0]["lr"] == pytest.approx(4e-4 * factor, rel=1e-15)
    assert states_equal(recipient.G.state_dict(), donor.G.state_dict())
    assert states_equal(recipient.D.state_dict(), donor.D.state_dict())

    # A retry of the donor itself continues the donor's run.
    assert restore_trainer(GANTrainer(donor.config), saved, "donor") == ("run-of-donor", "donor")


def test_the_perturbation_is_recorded_in_the_trials_own_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment, parent = start_sweep_run(uri, "p", {"scheduler": "pbt"}, None)
    records = SweepRecords(uri, experiment, parent, "p")
    first = TrialConfig.from_dict({**TINY, "loss": "wgan", "lr_g": 2e-3})
    who = TrialIdentity(records, "recipient", first.combination)
    own = TrialRun(who, first.model_dump())

    donor_config = TrialConfig.from_dict({**TINY, "loss": "ns", "lr_g": 1e-3}).model_dump()
    config = {**donor_config, "lr_g": 1.2e-3}
    who = TrialIdentity(records, "recipient", TrialConfig.from_dict(config).combination)
    run = TrialRun(who, config)  # as train_gan makes it after the exploit: found, not created
    assert run.run_id == own.run_id
    run.record_perturbation(who, 10, "donor", donor_config, config)

    tags = MlflowClient(uri).get_run(run.run_id).data.tags
    event = json.loads(tags["gansweep.pbt.step10"])
    assert event == {"from_trial": "donor", "changed": {"lr_g": [1e-3, 1.2e-3]}}
    assert tags["loss"] == "ns" and tags["combination"] == "ns-adam"  # what it trains now
    assert json.loads(tags[TAG_CONFIG])["lr_g"] == 1.2e-3
    # Its params keep its first config; export reads the config it ended with.
    assert MlflowClient(uri).get_run(run.run_id).data.params["loss"] == "wgan"
    ended = run_config(uri, run.run_id)
    assert ended.loss == "ns" and ended.lr_g == 1.2e-3


def test_a_schedule_is_recorded_as_params_and_its_rates_as_metrics(tmp_path):
    """The schedule is config (params, as every field); the rates it sets are metrics at
    every evaluation, so a perturbed or decaying rate shows as a curve."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment, parent = start_sweep_run(uri, "s", {"scheduler": "fifo"}, None)
    config = TrialConfig.from_dict({**TINY, "lr_schedule": "linear", "lr_floor": 0.5})
    run = TrialRun(TrialIdentity(SweepRecords(uri, experiment, parent, "s"), "t", "x"),
                   config.model_dump())  # fmt: skip
    evaluations = list(GANTrainer(config).evaluations())
    for metrics in evaluations:
        run.log_evaluation(metrics, int(metrics["step"]), [])
    client = MlflowClient(uri)
    params = client.get_run(run.run_id).data.params
    assert (params["lr_schedule"], params["lr_floor"], params["lr_warmup"]) == (
        "linear",
        "0.5",
        "0",
    )
    history = sorted((m.step, m.value) for m in client.get_metric_history(run.run_id, "lr_g_now"))
    assert history == [(int(m["step"]), m["lr_g_now"]) for m in evaluations]
    # after 10 of 20 steps: 9 of the 19 steps of the decay to go; after the last, the floor
    assert [v for _, v in history] == pytest.approx([1e-3 * (0.5 + 0.5 * 9 / 19), 1e-3 * 0.5])


@pytest.mark.slow
def test_a_pbt_sweep_perturbs_trials_and_tells_optuna(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": ""}
    tiny = ["--set", "steps=400", "--set", "eval_every=100", "--set", "eval_samples=500"]
    command = [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--name", "pbt"]
    proc = subprocess.run(
        [*command, "--scheduler", "pbt", "--num-samples", "4", "--max-concurrent", "4",
         "--replicate-top", "0", *tiny],
        cwd=tmp_path, capture_output=True, text=True, timeout=1500, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "sweeps" / "pbt" / "gansweep.json").read_text())
    client = MlflowClient(manifest["tracking_uri"])
    mlflow.set_tracking_uri(manifest["tracking_uri"])
    runs = mlflow.search_runs([manifest["experiment_id"]], output_format="list")
    trials = [r for r in runs if r.data.tags.get("gansweep.role") == "trial"]
    assert len(trials) == 4  # one run per trial, exploits included
    events = []
    for run in trials:
        for key, value in run.data.tags.items():
            if key.startswith("gansweep.pbt.step"):
                events.append((run, int(key.removeprefix("gansweep.pbt.step")), json.loads(value)))
    assert events, "no trial was perturbed"
    for run, step, event in events:
        assert event["from_trial"] != run.data.tags["gansweep.trial_id"]
        assert {"lr_g", "lr_d"} & event["changed"].keys()
        assert step < 400  # never at a trial's last evaluation: nothing left to train
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "step")]
        assert max(steps) == 400  # it trained on after the exploit, to its end
    study = sweep_study(tmp_path / "sweeps", "pbt")
    assert len(study.trials) == 4
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    assert "leaderboard (top" in proc.stdout
