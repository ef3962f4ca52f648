"""The Ray Tune glue: the private OptunaSearch state resume relies on, the searcher of
the replication, a reused actor, and the default schedulers (ASHA, HyperBand) stopping
trials early in real sweeps, ranked by the one rule."""

import json
import os
import subprocess
import sys

import optuna
import pandas as pd
import pytest
from mlflow import MlflowClient

from gansweep.platform.trial import split_config
from gansweep.platform.tune_glue import LOST_TRIAL_ATTR, FixedConfigs, ResumableOptunaSearch
from gansweep.profiling import CALLS_ENV, CALLS_FILE, PROFILE_ENV, CallLog
from gansweep.records import ranking
from gansweep.records.study_store import open_study_file
from gansweep.trainables.engine import GANTrainer


def space(trial):  # at module level: the searcher's saved state pickles it
    trial.suggest_float("x", 0, 1)


# A sweep's study file: the journal new sweeps keep, and the SQLite file of older ones.
STUDY_FILES = ["optuna.log", "optuna.db"]


@pytest.mark.parametrize("study_file", STUDY_FILES)
def test_optuna_search_still_has_the_private_state_that_resume_reads(tmp_path, study_file):
    """ResumableOptunaSearch reads OptunaSearch._ot_study, _ot_trials and
    _completed_trials: if a Ray release renames them, this fails before a resume does."""
    storage = open_study_file(tmp_path / study_file, writer=True)
    search = ResumableOptunaSearch(
        space=space, metric="v", mode="min", study_name="s", storage=storage
    )
    config = search.suggest("trial_1")
    assert 0 <= config["x"] <= 1
    assert isinstance(search._ot_study, optuna.Study)
    assert list(search._ot_trials) == ["trial_1"]
    assert isinstance(search._ot_trials["trial_1"], optuna.Trial)
    search.on_trial_complete("trial_1", {"v": 0.5})
    assert search._completed_trials == {"trial_1"}
    search.save(str(tmp_path / "searcher.pkl"))
    restored = ResumableOptunaSearch(
        space=space, metric="v", mode="min", study_name="s",
        storage=open_study_file(tmp_path / study_file, writer=True),  # as a new driver would
    )  # fmt: skip
    restored.restore(str(tmp_path / "searcher.pkl"))
    assert restored._completed_trials == {"trial_1"}


@pytest.mark.parametrize("asked", [True, False])
def test_each_suggest_is_timed_into_the_sweep_folder_only_when_asked(tmp_path, monkeypatch, asked):
    """GANSWEEP_PROFILE_CALLS=1: one line per suggest in the sweep folder (what
    benchmarks/driver_scale.py reads); unset, no file. A restored searcher keeps the
    restoring driver's log, not the one saved with it."""
    if asked:
        monkeypatch.setenv(CALLS_ENV, "1")
    else:
        monkeypatch.delenv(CALLS_ENV, raising=False)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/study.db")
    search = ResumableOptunaSearch(
        space=space, metric="v", mode="min", study_name="s", storage=storage,
        calls=CallLog(tmp_path),
    )  # fmt: skip
    for i in range(3):
        search.suggest(f"t{i}")
    log = tmp_path / CALLS_FILE
    if not asked:
        assert not log.exists()
        return
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(c["call"], c["n"]) for c in lines] == [("suggest", 1), ("suggest", 2), ("suggest", 3)]
    assert all(c["wall_s"] > 0 and c["cpu_s"] >= 0 for c in lines)
    # The wait for a core, where Linux tells it: never more than the wall time.
    assert all(c["queue_s"] is None or 0 <= c["queue_s"] <= c["wall_s"] for c in lines)
    if sys.platform == "linux":
        assert all(c["queue_s"] is not None for c in lines)
    search.save(str(tmp_path / "searcher.pkl"))
    elsewhere = tmp_path / "resumed"
    elsewhere.mkdir()
    restored = ResumableOptunaSearch(
        space=space, metric="v", mode="min", study_name="s", storage=storage,
        calls=CallLog(elsewhere),
    )  # fmt: skip
    restored.restore(str(tmp_path / "searcher.pkl"))
    restored.suggest("t3")
    assert len(log.read_text().splitlines()) == 3
    assert [
        json.loads(line)["n"] for line in (elsewhere / CALLS_FILE).read_text().splitlines()
    ] == [1]


def grid_space(trial):
    trial.suggest_categorical("a", [1, 2, 3])
    trial.suggest_categorical("b", ["x", "y"])


def grid_searcher(storage) -> ResumableOptunaSearch:
    return ResumableOptunaSearch(
        space=grid_space, metric="v", mode="min", study_name="s", storage=storage,
        sampler=optuna.samplers.BruteForceSampler(seed=0),
    )  # fmt: skip


def every_combination_once(configs) -> bool:
    return sorted((c["a"], c["b"]) for c in configs) == [
        (a, b) for a in (1, 2, 3) for b in ("x", "y")
    ]


@pytest.mark.parametrize(
    "study_file, torn", [("optuna.log", False), ("optuna.log", True), ("optuna.db", False)]
)
def test_a_config_lost_with_the_driver_is_proposed_again_so_the_grid_stays_whole(
    tmp_path, study_file, torn
):
    """The driver asked for trials 2 and 3 after Tune's last save of the searcher, then
    died: the restored searcher puts them back in the queue and the next two proposals
    are their configs, so a grid sweep still runs each of its 6 combinations exactly
    once, and no trial is left FAIL. `torn`: it died while appending to the journal, and
    left half a line, which the resumed driver cuts before the search goes on."""
    path = tmp_path / study_file
    search = grid_searcher(open_study_file(path, writer=True))
    configs = {f"t{i}": search.suggest(f"t{i}") for i in range(2)}
    for trial_id in configs:
        search.on_trial_complete(trial_id, {"v": 0.5})
    search.save(str(tmp_path / "searcher.pkl"))  # Tune's last save
    lost = [search.suggest(f"t{i}") for i in (2, 3)]  # then the driver dies
    if torn:
        with open(path, "ab") as f:
            f.write(b'{"op_code":5,"worker_id":"dead-')

    storage = open_study_file(path, writer=True)  # the resumed driver's
    resumed = grid_searcher(storage)
    resumed.restore(str(tmp_path / "searcher.pkl"))
    again = [resumed.suggest(f"n{i}") for i in range(2)]
    assert again == lost
    rest = [resumed.suggest(f"m{i}") for i in range(2)]
    assert every_combination_once([*configs.values(), *again, *rest])  # none lost, none twice
    trials = optuna.load_study(study_name="s", storage=storage).get_trials()
    assert len(trials) == 6 and {t.state.name for t in trials} == {"COMPLETE", "RUNNING"}
    assert {t.number: t.user_attrs.get(LOST_TRIAL_ATTR) for t in trials if t.user_attrs} == {
        2: 1,
        3: 1,
    }


@pytest.mark.parametrize("study_file", STUDY_FILES)
def test_a_trial_half_proposed_when_the_driver_died_is_finished_not_broken(tmp_path, study_file):
    """The driver died between Optuna's ask and the last suggest of a trial: the trial
    has `a` but not `b`. Marked FAIL, Optuna's grid sampler would raise on it at every
    later proposal (a finished trial ending where others go on); back in the queue, the
    next proposal keeps its `a` and samples `b`, and the grid stays whole."""
    search = grid_searcher(open_study_file(tmp_path / study_file, writer=True))
    configs = [search.suggest("t0"), search.suggest("t1")]
    for trial_id in ("t0", "t1"):
        search.on_trial_complete(trial_id, {"v": 0.5})
    search.save(str(tmp_path / "searcher.pkl"))
    half = search._ot_study.ask()  # what OptunaSearch.suggest does, cut short
    a = half.suggest_categorical("a", [1, 2, 3])

    storage = open_study_file(tmp_path / study_file, writer=True)  # the resumed driver's
    resumed = grid_searcher(storage)
    resumed.restore(str(tmp_path / "searcher.pkl"))
    finished = resumed.suggest("n0")
    assert finished["a"] == a
    rest = [resumed.suggest(f"m{i}") for i in range(3)]
    for trial_id in ("n0", "m0", "m1", "m2"):
        resumed.on_trial_complete(trial_id, {"v": 0.5})
    assert every_combination_once([*configs, finished, *rest])
    states = [t.state.name for t in optuna.load_study(study_name="s", storage=storage).trials]
    assert states == ["COMPLETE"] * 6


def test_the_replication_searcher_gives_each_config_once_and_resumes(tmp_path):
    configs = [{"seed": 1}, {"seed": 2}, {"seed": 3}]
    search = FixedConfigs(configs)
    assert [search.suggest(f"t{i}") for i in range(2)] == configs[:2]
    search.save(str(tmp_path / "state.json"))
    resumed = FixedConfigs([])
    resumed.restore(str(tmp_path / "state.json"))
    assert resumed.suggest("t2") == {"seed": 3}
    assert resumed.suggest("t3") == "FINISHED"


# ------------------------------------------------------------ early stopping, for real

STOPPING_SPACE = """\
fixed: {steps: 300, eval_every: 100, eval_samples: 300, batch_size: 64}
params:
  # A learning rate that learns, and ones that cannot: the scheduler must see the gap.
  lr_g: {choice: [2.0e-3, 1.0e-7]}
  lr_d: {choice: [2.0e-3, 1.0e-7]}
"""


def sweep(folder, *args: str, env: dict[str, str] | None = None) -> list:
    """Run `gansweep sweep --name s ARGS` in `folder`; returns the MLflow runs of its trials."""
    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--name", "s", *args],
        cwd=folder, capture_output=True, text=True, timeout=500,
        env={**os.environ, "RAY_ADDRESS": "", **(env or {})},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    manifest = json.loads((folder / "sweeps" / "s" / "gansweep.json").read_text())
    runs = MlflowClient(manifest["tracking_uri"]).search_runs([manifest["experiment_id"]])
    return [r for r in runs if r.data.tags.get("gansweep.role") == "trial"]


REUSE_SPACE = """\
fixed: {steps: 60, eval_every: 30, eval_samples: 300, batch_size: 64, penalty: gp}
params:
  lr_g: {choice: [2.0e-3, 1.0e-3]}
"""


def test_a_reused_actor_trains_its_next_trial_exactly_like_a_fresh_process(tmp_path):
    (tmp_path / "space.yaml").write_text(REUSE_SPACE)
    profile = tmp_path / "profile.jsonl"
    runs = sweep(
        tmp_path, "--space", "space.yaml", "--sampler", "grid", "--num-samples", "2",
        "--max-concurrent", "1", "--scheduler", "fifo", "--replicate-top", "0",
        env={PROFILE_ENV: str(profile)},
    )  # fmt: skip
    records = [json.loads(line) for line in profile.read_text().splitlines()]
    last = {r["trial_id"]: r for r in records if r["who"] == "trial"}  # cumulative records
    assert len(last) == 2
    assert len({r["pid"] for r in last.values()}) == 1, "the second trial got a new actor"
    second = max(last.values(), key=lambda r: r["start"])

    run = next(r for r in runs if r.data.tags["gansweep.trial_id"] == second["trial_id"])
    manifest = json.loads((tmp_path / "sweeps" / "s" / "gansweep.json").read_text())
    client = MlflowClient(manifest["tracking_uri"])
    fresh = list(GANTrainer(split_config(second["config"])[0]).evaluations())
    for name in ["distance", "loss_d", "loss_g", "high_quality"]:
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        assert [m.value for m in history] == [m[name] for m in fresh], name


# Ray's HyperBand is synchronous: a bracket stops trials only once it is full, so it
# needs as many trials in flight as its largest bracket holds (3 here).
@pytest.mark.parametrize(("scheduler", "concurrent"), [("asha", "1"), ("hyperband", "3")])
def test_the_default_schedulers_stop_trials_early_and_they_rank_below_finished_ones(
    tmp_path, scheduler, concurrent
):
    (tmp_path / "space.yaml").write_text(STOPPING_SPACE)
    runs = sweep(
        tmp_path, "--space", "space.yaml", "--num-samples", "6", "--max-concurrent", concurrent,
        "--sampler", "random", "--scheduler", scheduler, "--replicate-top", "0",
    )  # fmt: skip
    trials = {r.data.tags["gansweep.trial_id"]: r for r in runs}
    statuses = {t: r.data.tags["gansweep.status"] for t, r in trials.items()}
    stopped = [t for t, s in statuses.items() if s == ranking.STOPPED_EARLY]
    finished = [t for t, s in statuses.items() if s == ranking.FINISHED]
    assert stopped and finished, statuses
    for trial_id in stopped:
        run = trials[trial_id]
        assert run.info.status == "FINISHED" and run.data.metrics["step"] < 300
    for trial_id in finished:
        assert trials[trial_id].data.metrics["step"] == 300

    # The leaderboard: every trial that reached its budget above every one that did not.
    board = pd.read_csv(tmp_path / "sweeps" / "s" / "leaderboard.csv", dtype={"trial_id": str})
    ranked = board[board["rank"] > 0]
    positions = {t: i for i, t in enumerate(ranked["trial_id"])}
    assert max(positions[t] for t in finished) < min(positions[t] for t in stopped)
    assert list(ranked["rank"]) == list(range(1, len(ranked) + 1))


@pytest.mark.slow
def test_a_time_budget_closes_the_runs_of_the_trials_it_stops(tmp_path):
    """Tune ends trials at --time-budget without a trial callback: the sweep still closes
    their runs, stopped early (they did not reach their steps), and ranks them."""
    trials = sweep(
        tmp_path, "--num-samples", "2", "--max-concurrent", "2", "--scheduler", "fifo",
        "--time-budget", "30", "--replicate-top", "0", "--set", "steps=1000000",
        "--set", "eval_every=50", "--set", "eval_samples=200",
    )  # fmt: skip
    assert len(trials) == 2
    assert all(r.info.status == "FINISHED" for r in trials)
    assert [r.data.tags["gansweep.status"] for r in trials] == [ranking.STOPPED_EARLY] * 2
    board = pd.read_csv(tmp_path / "sweeps" / "s" / "leaderboard.csv", dtype={"trial_id": str})
    assert list(board["rank"]) == [1, 2] and set(board["status"]) == {ranking.STOPPED_EARLY}


@pytest.mark.parametrize("as_pruned", [True, False])
def test_a_trial_stopped_early_is_told_to_optuna_as_pruned_at_its_rung(as_pruned):
    """Tune hands the searcher flattened results (config/<field>) and never passes it the
    result that stopped the trial through on_trial_result: the value at the rung must
    still reach the study."""
    from ray.tune.utils import flatten_dict

    from gansweep.platform.sweep_input import SweepOptions
    from gansweep.platform.tune_glue import optuna_searcher
    from gansweep.search_spaces import parse_space

    parsed = parse_space("fixed: {steps: 1500}\nparams:\n  loss: {choice: [ns, hinge]}\n")
    options = SweepOptions(sampler="random", mode="min", num_samples=4)
    search = optuna_searcher(parsed, options, stopped_as_pruned=as_pruned)
    config = search.suggest("t1")
    result = {"distance": 0.3, "step": 500.0, "diverged": 0.0, "training_iteration": 1}
    search.on_trial_complete("t1", flatten_dict({**result, "config": config}))
    (trial,) = search._ot_study.trials
    if as_pruned:
        assert trial.state == optuna.trial.TrialState.PRUNED
        assert trial.intermediate_values == {1: 0.3}
    else:
        assert trial.state == optuna.trial.TrialState.COMPLETE and trial.value == 0.3
    assert search._ot_study.metric_names == ["distance"]
