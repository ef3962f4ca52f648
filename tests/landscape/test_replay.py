"""The replay trainable through the real platform (Ray Tune, Optuna, MLflow, replication,
export, the report), checked against the recorded table it serves; its seed rules; and
that it loads no torch."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from replay import DEFAULT_SEED, TABLE, Landscape, plain, replayed_seed

from gansweep.records import Manifest, run_config, standings
from gansweep.records.run_format import REPLICA_KEY
from gansweep.trainables.config import TrialConfig

ROOT = Path(__file__).parents[2]
SPACE = ROOT / "benchmarks" / "landscape" / "ring8_space.yaml"
REPLAY = f"{ROOT / 'benchmarks' / 'landscape' / 'replay.py'}:replay"


def gansweep(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600):
    env = {**os.environ, "RAY_ADDRESS": "", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
    )  # fmt: skip


def test_a_trial_replays_one_seed_and_its_replicas_another():
    seeds = [0, 1, 2]
    ids = [f"{i:08x}" for i in range(200)]
    chosen = {replayed_seed(seeds, t, None) for t in ids}
    assert chosen == set(seeds)  # trial ids spread over the seeds
    assert all(replayed_seed(seeds, t, None) == replayed_seed(seeds, t, None) for t in ids)
    for trial in ids[:20]:
        theirs = replayed_seed(seeds, trial, None)
        replicas = {replayed_seed(seeds, f"r{trial}{k}", trial) for k in range(10)}
        assert theirs not in replicas and replicas == set(seeds) - {theirs}
    assert replayed_seed([4], "abc", "def") == 4  # one seed recorded: that one


def test_keyed_on_the_config_two_trials_of_one_config_replay_one_seed_and_replicas_another():
    landscape = Landscape(pd.read_csv(TABLE))
    row = landscape.frame.iloc[0]
    config = {f: plain(row[f]) for f in landscape.fields if f != "seed"}
    seeds = [landscape.curve(config, f"trial{i}", by="config")["seed"].iloc[0] for i in range(8)]
    assert len(set(seeds)) == 1  # whatever the trial id
    by_trial = {landscape.curve(config, f"trial{i}")["seed"].iloc[0] for i in range(40)}
    assert len(by_trial) > 1  # (keyed on the trial id, they spread)
    replica = {**config, REPLICA_KEY: "trial0"}
    replicas = {landscape.curve(replica, f"r{i}", by="config")["seed"].iloc[0] for i in range(20)}
    assert seeds[0] not in replicas and replicas
    for seed in (0, 1, 2):  # a config that names a recorded seed replays that one
        chosen = landscape.curve({**config, "seed": seed}, "any", by="config")
        assert set(chosen["seed"]) == {seed}


def test_a_replay_logs_the_seed_a_trial_without_one_trains_with():
    assert DEFAULT_SEED == TrialConfig.model_fields["seed"].default


def test_a_config_outside_the_landscape_is_refused_by_name():
    landscape = Landscape.read(TABLE)
    config = {"loss": "ns", "penalty": "none", "n_critic": 1, "lr_g": 1e-3, "lr_d": 1e-3}
    assert len(landscape.runs_of(config)["config_id"].unique()) == 1
    same = landscape.runs_of({**config, "n_critic": 1.0, "lr_g": 0.001})  # 1.0 is 1
    assert same["config_id"].iloc[0] == landscape.runs_of(config)["config_id"].iloc[0]
    with pytest.raises(KeyError, match="0 configs"):
        landscape.runs_of({**config, "lr_g": 0.123})
    with pytest.raises(KeyError, match="configs of the landscape match"):  # lr_d unset
        landscape.runs_of({k: v for k, v in config.items() if k != "lr_d"})


def test_the_replay_trainable_loads_no_torch():
    code = (
        "import sys\n"
        "from gansweep.platform.trainable_registry import load_trainable\n"
        f"fn = load_trainable({REPLAY!r})\n"
        "import ray.cloudpickle as cp; cp.loads(cp.dumps(fn))\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr[-2000:]


@pytest.fixture(scope="module")
def replay_sweep(tmp_path_factory):
    """200 trials of the default search (TPE + ASHA) on the recorded landscape, 8 in
    flight, then the top 3 configs replicated on 2 fresh seeds."""
    cwd = tmp_path_factory.mktemp("replay")
    proc = gansweep(
        "sweep", "--space", str(SPACE), "--trainable", REPLAY, "--name", "replay",
        "--num-samples", "200", "--max-concurrent", "8", "--cpus-per-trial", "0.25",
        "--replicate-top", "3", "--seeds", "2", "--seed", "3",
        cwd=cwd,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    manifest = Manifest.load(cwd / "sweeps", "replay")
    return cwd, manifest, standings(manifest)


def expected(landscape: Landscape, manifest: Manifest, run: pd.Series, replica_of=None):
    """The table's row that a trial run should have reported last."""
    config = run_config(manifest.tracking_uri, run["run_id"]).model_dump()
    if replica_of:
        config["_replica_of"] = replica_of
    curve = landscape.curve(config, run["trial_id"])
    return curve[curve["step"] == run["step"]].iloc[0]


@pytest.mark.slow  # the 200-trial sweep: ~100 s
def test_a_200_trial_replay_sweep_reports_what_the_table_recorded(replay_sweep):
    cwd, manifest, ranked = replay_sweep
    landscape = Landscape.read(TABLE)
    assert len(ranked.trials) == 200 and len(ranked.replicas) == 3 * 2
    assert (ranked.trials["status"].isin(["finished", "stopped_early", "diverged"])).all()
    board = pd.read_csv(cwd / "sweeps" / "replay" / "leaderboard.csv")
    by_trial = board.set_index("trial_id")
    for _, run in ranked.trials.iterrows():
        row = expected(landscape, manifest, run)
        assert run["value"] == pytest.approx(row["distance"], rel=1e-12)
        assert by_trial.loc[run["trial_id"], "distance"] == pytest.approx(row["distance"])
    for _, run in ranked.replicas.iterrows():
        row = expected(landscape, manifest, run, replica_of=run["replica_of"])
        assert run["value"] == pytest.approx(row["distance"], rel=1e-12)
        assert row["step"] == 1500


@pytest.mark.slow  # the 200-trial sweep: ~100 s
def test_its_champion_best_yaml_and_report_agree_with_the_table(replay_sweep):
    cwd, manifest, ranked = replay_sweep
    landscape = Landscape.read(TABLE)
    champion = ranked.champion
    assert champion is not None and champion["replicated"]
    best = yaml.safe_load((cwd / "sweeps" / "replay" / "best.yaml").read_text())
    provenance = best.pop("_provenance")
    runs = landscape.runs_of(best)
    recorded = {k: v for k, v in runs.iloc[0][landscape.fields].items() if k != "seed"}
    for key, value in recorded.items():
        assert best[key] == (None if pd.isna(value) else value), key
    replicas = ranked.replicas[ranked.replicas["replica_of"] == champion["trial_id"]]
    values = [
        expected(landscape, manifest, r, r["replica_of"])["distance"]
        for _, r in replicas.iterrows()
    ]
    assert provenance["trial_id"] == champion["trial_id"]
    assert provenance["replicated"]["distance"]["worst"] == pytest.approx(max(values))
    assert champion["distance_worst"] == pytest.approx(max(values))
    report = (cwd / "sweeps" / "replay" / "report.html").read_text()
    assert champion["trial_id"] in report and champion["combination"] in report


def test_a_file_trainable_is_kept_by_its_absolute_path(monkeypatch):
    from gansweep.platform.trainable_registry import canonical

    monkeypatch.chdir(ROOT)
    assert canonical("benchmarks/landscape/replay.py:replay") == REPLAY
    assert canonical("gan") == "gan" and canonical("pkg.mod:fn") == "pkg.mod:fn"
