"""The schedulers: every registry entry through a real sweep, the budget they take from
the space, and HyperBand mended where Ray's leaves a trial PAUSED for good
(ReplicaSafeASHA is tested with the backfill it serves).

The HyperBand cases replay, call by call, what Tune's controller does: they run the real
scheduler, and a stand-in for the controller that does what Tune's stop_trial does to a
scheduler (a live trial completes, a waiting one is removed)."""

import json
import os
import subprocess
import sys

import mlflow
import optuna
import pytest
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler

from gansweep.dashboards.data import sweep_study
from gansweep.platform.schedulers import SCHEDULERS, scheduler_budget
from gansweep.platform.tune_schedulers import MendedHyperBand
from gansweep.records.run_format import TAG_ROLE
from gansweep.search_spaces import parse_space


@pytest.mark.parametrize(
    ("params", "budget"),
    [
        ("loss: {choice: [ns, hinge]}", (3000, 500)),  # the TrialConfig defaults
        ("steps: {choice: [1000, 4000]}", (4000, 500)),
        ("steps: {int: [1000, 2000], step: 500}\n  eval_every: {choice: [250, 700]}",
         (2000, 700)),
        ("eval_every: {choice: [100, 5000]}", (3000, 3000)),  # grace never beyond max_t
    ],
)  # fmt: skip
def test_the_scheduler_budget_is_the_longest_the_space_can_sample(params, budget):
    space = parse_space(f"params:\n  {params}\n")
    assert scheduler_budget(space) == budget


class FakeTrial:
    def __init__(self, name: str):
        self.name, self.status, self.is_saving = name, Trial.RUNNING, False

    def __repr__(self) -> str:
        return self.name


class Controller:
    """Tune's controller as a scheduler sees it: it applies each decision, and stopping a
    trial tells the scheduler (a running trial completes, a waiting one is removed)."""

    def __init__(self, max_t: int):
        self.scheduler = MendedHyperBand(
            metric="m", mode="max", time_attr="training_iteration", max_t=max_t
        )
        self.stopped: list[FakeTrial] = []

    def add(self, count: int) -> list[FakeTrial]:
        trials = [FakeTrial(f"t{i}") for i in range(count)]
        for trial in trials:
            self.scheduler.on_trial_add(self, trial)
        return trials

    def report(self, trial: FakeTrial, iteration: int, value: float) -> str:
        decision = self.scheduler.on_trial_result(
            self, trial, {"training_iteration": iteration, "m": value}
        )
        if decision == TrialScheduler.STOP:
            self.stop_trial(trial)
        elif decision == TrialScheduler.PAUSE:
            trial.status = Trial.PAUSED
        return decision

    def stop_trial(self, trial: FakeTrial) -> None:
        self.stopped.append(trial)
        if trial.status in (Trial.PAUSED, Trial.PENDING):
            self.scheduler.on_trial_remove(self, trial)
        elif trial.status == Trial.RUNNING:
            self.scheduler.on_trial_complete(self, trial, {})
        trial.status, trial.is_saving = Trial.TERMINATED, False

    def same_bracket(self, trials: list[FakeTrial]) -> bool:
        return len({id(self.scheduler._trial_info[t][0]) for t in trials}) == 1


def bracket_of_two() -> tuple[Controller, FakeTrial, FakeTrial]:
    """max_t=3 (eta 3): the first bracket holds 2 trials and runs both to 3 iterations.
    a gets there first and waits for b."""
    controller = Controller(max_t=3)
    a, b = controller.add(2)
    assert controller.same_bracket([a, b])
    assert [controller.report(a, i, 1.0) for i in (1, 2, 3)][-1] == TrialScheduler.PAUSE
    return controller, a, b


def test_hyperband_stops_a_trial_still_saving_on_its_way_to_paused_when_its_bracket_ends():
    controller, a, b = bracket_of_two()
    a.status, a.is_saving = Trial.RUNNING, True  # Tune saves a before the PAUSE takes effect
    assert [controller.report(b, i, 0.5) for i in (1, 2, 3)][-1] == TrialScheduler.STOP
    assert controller.stopped == [a, b]  # Ray 2.60's HyperBand stopped b only


def test_hyperband_stops_the_waiting_trials_when_the_one_they_wait_for_ends_early():
    controller, a, b = bracket_of_two()
    assert controller.report(b, 1, 0.5) == TrialScheduler.CONTINUE
    controller.stop_trial(b)  # b's GAN diverged: its trainable returned at iteration 1
    assert controller.stopped == [b, a]  # Ray 2.60's HyperBand left a PAUSED for good


def test_hyperband_halves_a_bracket_when_a_trial_leaves_it_after_its_first_halving():
    """max_t=9: the third bracket runs 9 trials to 1 iteration, keeps 3 to 3, then 1 to 9.
    Ray 2.60's HyperBand processed a bracket on a removal only before its first halving."""
    controller = Controller(max_t=9)
    bracket = controller.add(3 + 5 + 9)[8:]
    assert controller.same_bracket(bracket)
    for value, trial in enumerate(bracket):
        controller.report(trial, 1, value)
    assert bracket[:6] == controller.stopped  # the 6 worst; the 2 best waiting resume
    assert [t.status for t in bracket[6:]] == [Trial.PAUSED, Trial.PAUSED, Trial.RUNNING]
    worse, better, best = bracket[6:]
    for _ in range(2):  # Tune resumes the trials the scheduler chooses
        chosen = controller.scheduler.choose_trial_to_run(controller)
        assert chosen in (worse, better)
        chosen.status = Trial.RUNNING
    for trial, value in [(best, 8), (better, 7)]:
        assert [controller.report(trial, i, value) for i in (2, 3)] == ["CONTINUE", "PAUSE"]
    assert controller.report(worse, 2, 6) == TrialScheduler.CONTINUE
    controller.stop_trial(worse)  # diverged: the two waiting at 3 are halved to the best
    assert controller.stopped[-2:] == [worse, better]
    assert controller.scheduler.choose_trial_to_run(controller) is best


# ------------------------------------------------ every registry entry, in a real sweep


@pytest.mark.slow  # a real sweep per entry: 30-60 s each on 2 quiet cores
@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_every_scheduler_entry_runs_a_real_sweep_to_a_complete_record(tmp_path, name):
    """The contract of a SCHEDULERS entry, through `gansweep sweep` as a user runs it: the
    sweep finishes; every planned trial has one closed MLflow run and one Optuna trial that
    is told (none left RUNNING); replicas run where the entry allows them inside the search
    and after it otherwise; the champion is exported. A new entry passes this or is wrong."""
    spec = SCHEDULERS[name]
    space = tmp_path / "space.yaml"
    space.write_text(
        "fixed: {steps: 40, eval_every: 10, eval_samples: 200, width: 8, batch_size: 32}\n"
        "params:\n  lr_g: {loguniform: [1.0e-4, 1.0e-2]}\n  lr_d: {loguniform: [1.0e-4, 1.0e-2]}\n"
    )
    assert spec.check(parse_space(space.read_text())) is None
    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--space", str(space),
         "--name", "s", "--scheduler", name, "--num-samples", "4", "--max-concurrent", "2",
         "--replicate-top", "1", "--seeds", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
        env={**os.environ, "RAY_ADDRESS": ""},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = json.loads((tmp_path / "sweeps" / "s" / "gansweep.json").read_text())
    assert manifest["status"] == "finished"
    mlflow.set_tracking_uri(manifest["tracking_uri"])
    runs = mlflow.search_runs([manifest["experiment_id"]], output_format="list")
    roles = [r.data.tags.get(TAG_ROLE) for r in runs]
    assert roles.count("trial") == 4 and roles.count("replica") == 1, roles
    assert all(r.info.status == "FINISHED" for r in runs), [r.info.status for r in runs]
    study = sweep_study(tmp_path / "sweeps", "s")
    states = [t.state for t in study.trials]
    assert len(states) == 4 and optuna.trial.TrialState.RUNNING not in states, states
    assert (tmp_path / "sweeps" / "s" / "best.yaml").exists()


def test_a_scheduler_pickled_before_the_move_to_tune_schedulers_still_loads():
    """`resume` of a sweep started before the Ray classes moved: its tuner.pkl names them
    in schedulers.py, which still hands them out (without importing Ray itself)."""
    import pickle

    from gansweep.platform.tune_schedulers import ReplicaSafeASHA

    scheduler = ReplicaSafeASHA(time_attr="step", max_t=10, grace_period=2)
    ReplicaSafeASHA.__module__ = "gansweep.platform.schedulers"  # as an old pickle names it
    try:
        data = pickle.dumps(scheduler)
    finally:
        ReplicaSafeASHA.__module__ = "gansweep.platform.tune_schedulers"
    assert b"gansweep.platform.schedulers" in data
    assert type(pickle.loads(data)) is ReplicaSafeASHA
