"""The simulated sweeps against a real replay sweep, their cost accounting, and the
search-efficiency figures on hand-made traces."""

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
from efficiency import Runs, cost_ratio, cost_to_target, summary
from replay import Landscape
from simulate import COST, Trace, simulate, true_quality
from synthetic import SPACE, synthetic_table

from gansweep.platform.sweep_input import SweepOptions
from gansweep.records import Manifest, run_config, standings
from gansweep.search_spaces import load_space

ROOT = Path(__file__).parents[2]
REPLAY = f"{ROOT / 'benchmarks' / 'landscape' / 'replay.py'}:replay"


@pytest.fixture(scope="module")
def one_seed_table(tmp_path_factory) -> Path:
    """A synthetic landscape recorded on one seed: every trial replays the same curve of
    its config, whatever its trial id, so a simulated and a real sweep can be compared."""
    path = tmp_path_factory.mktemp("landscape") / "one_seed.csv"
    synthetic_table(seeds=(0,)).to_csv(path, index=False)
    return path


def options(**values) -> SweepOptions:
    return SweepOptions(**{"mode": "min", "replicate_top": 0, **values})


def test_a_simulated_sweep_proposes_stops_and_crowns_what_a_real_one_does(one_seed_table, tmp_path):
    """TPE + ASHA, one trial at a time: Tune's controller and the simulator see the same
    results in the same order, so the same searcher and scheduler must decide alike."""
    settings = {"sampler": "tpe", "scheduler": "asha", "num_samples": 12, "seed": 5}
    env = {**os.environ, "RAY_ADDRESS": "", "GANSWEEP_REPLAY_TABLE": str(one_seed_table)}
    proc = subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--space", str(SPACE),
         "--trainable", REPLAY, "--name", "real", "--num-samples", "12", "--seed", "5",
         "--max-concurrent", "1", "--replicate-top", "0"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = Manifest.load(tmp_path / "sweeps", "real")
    trials = standings(manifest).trials.sort_values("start")
    landscape = Landscape(pd.read_csv(one_seed_table))

    def config_id(run_id: str) -> int:
        config = run_config(manifest.tracking_uri, run_id).model_dump()
        return int(landscape.runs_of(config)["config_id"].iloc[0])

    real = [(config_id(r["run_id"]), r["status"], r["step"]) for _, r in trials.iterrows()]
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    controller_trace = simulate(
        landscape, load_space(str(SPACE)), options(**settings, max_concurrent=1)
    )
    sim = [
        (int(t.curve["config_id"].iloc[0]), _status(t), t.results[-1]["step"])
        for t in controller_trace.trials_run
    ]
    assert sim == real
    assert any(status == "stopped_early" for _, status, _ in sim)  # ASHA had its say
    champion = standings(manifest).trials.iloc[0]
    assert controller_trace.champions[-1] == config_id(champion["run_id"])


def _status(trial) -> str:
    last = trial.results[-1]
    if last["diverged"] >= 0.5:
        return "diverged"
    return "finished" if last["step"] >= trial.curve["steps"].iloc[0] else "stopped_early"


def test_a_simulated_sweep_costs_what_its_trials_trained(one_seed_table):
    landscape = Landscape(pd.read_csv(one_seed_table))
    space = load_space(str(SPACE))
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    for method in [("random", "fifo"), ("tpe", "asha"), ("tpe", "hyperband")]:
        trace = simulate(
            landscape,
            space,
            options(sampler=method[0], scheduler=method[1], num_samples=16, max_concurrent=4),
        )
        trained = sum(t.curve[COST].iloc[len(t.results) - 1] for t in trace.trials_run)
        assert trace.total_cost == pytest.approx(trained)
        assert trace.trials == 16 and len(trace.trials_run) == 16
        assert trace.costs == sorted(trace.costs)  # cost only grows
        if method[1] == "fifo":  # every trial to its end
            assert all(len(t.results) == len(t.curve) for t in trace.trials_run)


def test_true_quality_is_the_mean_and_worst_over_the_recorded_seeds():
    table = synthetic_table(seeds=(0, 1, 2))
    landscape = Landscape(table)
    quality = true_quality(landscape)
    config = landscape.frame[landscape.frame["config_id"] == 7]
    last = config.sort_values("step").groupby("seed").tail(1)["distance"]
    assert quality.loc[7, "mean"] == pytest.approx(last.mean())
    assert quality.loc[7, "worst"] == pytest.approx(last.max())
    assert quality.loc[7, "seeds"] == 3


def test_cost_to_target_is_the_cost_when_the_champion_first_reaches_it():
    costs = np.array([10.0, 20.0, 30.0, 40.0])
    quality = np.array([0.5, 0.3, 0.1, 0.1])
    assert cost_to_target(costs, quality, 0.3) == 20.0
    assert cost_to_target(costs, quality, 0.1) == 30.0
    assert cost_to_target(costs, quality, 0.05) == math.inf


def runs(traces: list[tuple[list[float], list[int]]], mean: dict[int, float]) -> Runs:
    made = [Trace(costs, champions, costs[-1], len(costs), []) for costs, champions in traces]
    return Runs.of(made, mean, mean)


def test_cost_ratio_and_win_rate_on_hand_made_traces():
    mean = {0: 0.5, 1: 0.2, 2: 0.1}
    # random: finals 0.2, 0.1, 0.2 -> target (median) 0.2; totals 100, 120, 80 -> median 100
    base = runs([([50, 100], [0, 1]), ([60, 120], [0, 2]), ([40, 80], [0, 1])], mean)
    # the method reaches 0.2 after 10, 30 core-s, never on its third seed -> median 30
    method = runs([([10, 20], [1, 2]), ([30, 40], [2, 2]), ([5, 50], [0, 0])], mean)
    every = np.arange(3)
    assert cost_ratio(method, base, every, every) == pytest.approx(30 / 100)
    figures = summary(method, base, draws=200)
    assert figures["cost_ratio"] == pytest.approx(0.3)
    assert figures["win_rate"] == pytest.approx(2 / 3, abs=1e-3)  # 0.1<=0.2, 0.1<=0.1, not 0.5<=0.2
    assert figures["reach_rate"] == pytest.approx(2 / 3, abs=1e-3)
    low, high = figures["cost_ratio_ci"]
    assert low <= 0.3 and (high == "inf" or high >= 0.3)


def test_a_warm_started_simulated_sweep_runs_the_source_configs_first(tmp_path):
    """compare.py's METHOD/warm-start: the configs `gansweep sweep --warm-start` would
    enqueue (here a config file: the recorded landscape's best config) are the simulated
    sweep's first trials; then the sampler goes on."""
    import compare
    import yaml

    from gansweep.trainables.config import TrialConfig

    table = ROOT / "benchmarks" / "landscape" / "ring8_landscape.csv"
    landscape = Landscape.read(table)
    best = {"loss": "hinge", "penalty": "gp", "penalty_weight": 1.0, "n_critic": 3,
            "lr_g": 2e-3, "lr_d": 1e-3}  # fmt: skip
    source = tmp_path / "best.yaml"
    source.write_text(yaml.safe_dump(TrialConfig.from_dict(best).model_dump()))
    warm, cost = compare.warm_start_plan(str(source), top=3)
    assert [w.params for w in warm] == [best] and cost is None
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    _, trace = compare._one(str(table), "tpe+asha/warm-start", 16, 4, warm, 0)
    first = trace.trials_run[0]
    assert {k: first.config[k] for k in best} == best
    quality = true_quality(landscape)["mean"]
    assert int(first.curve["config_id"].iloc[0]) == quality.idxmin()  # the table's best
    assert len(trace.trials_run) == 16
    _, cold = compare._one(str(table), "tpe+asha", 16, 4, [], 0)
    assert {k: cold.trials_run[0].config.get(k) for k in best} != best
