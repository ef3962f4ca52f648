"""A synthetic sweep for tests and benchmarks of the report: a real MLflow SQLite store
(parent run + one child run per trial with every TrialConfig param, the axis tags,
metric histories and a samples.png), a real Optuna study and a manifest, laid out as a
real sweep lays them out, but made in seconds with no Ray and no training.

The results are made up (each loss has its own typical distance, plus noise); what is
real is every name and format the report reads.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from gansweep.platform import tracking
from gansweep.platform.manifest import Manifest
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.metrics import DIVERGED_DISTANCE

LOSSES = ("ns", "wgan", "hinge", "lsgan")
PENALTIES = ("none", "gp", "r1")
D_NORMS = ("none", "spectral")
OPTIMIZERS = ("adam", "rmsprop")
TYPICAL = {"ns": 0.6, "wgan": 1.4, "hinge": 0.8, "lsgan": 1.0}  # made-up median distance
STEPS, EVAL_EVERY = 1500, 500


def _samples_png(folder: Path) -> Path:
    """One small scatter plot over 8 modes, like a ring8 trial's samples.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = random.Random(0)
    angles = [2 * math.pi * k / 8 for k in range(8)]
    fig, ax = plt.subplots(figsize=(3, 3), dpi=60)
    for a in angles:
        xs = [math.cos(a) + rng.gauss(0, 0.03) for _ in range(40)]
        ys = [math.sin(a) + rng.gauss(0, 0.03) for _ in range(40)]
        ax.scatter(xs, ys, s=2, color="tab:blue")
    modes = [(math.cos(a), math.sin(a)) for a in angles]
    ax.scatter(*zip(*modes, strict=True), marker="x", color="tab:red")
    ax.set(xlim=(-1.5, 1.5), ylim=(-1.5, 1.5), aspect="equal")
    path = folder / "samples.png"
    fig.savefig(path)
    plt.close(fig)
    return path


def _study_trial(cfg: TrialConfig, value: float | None):
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    distributions = {
        "loss": CategoricalDistribution(LOSSES),
        "penalty": CategoricalDistribution(PENALTIES),
        "d_norm": CategoricalDistribution(D_NORMS),
        "optimizer": CategoricalDistribution(OPTIMIZERS),
        "lr_g": FloatDistribution(1e-4, 3e-3, log=True),
        "lr_d": FloatDistribution(1e-4, 3e-3, log=True),
    }
    params = {name: getattr(cfg, name) for name in distributions}
    if cfg.penalty != "none":  # a conditional parameter, as in the built-in spaces
        distributions["penalty_weight"] = FloatDistribution(0.1, 10.0, log=True)
        params["penalty_weight"] = cfg.penalty_weight
    state = optuna.trial.TrialState.COMPLETE if value is not None else optuna.trial.TrialState.FAIL
    return optuna.trial.create_trial(
        params=params, distributions=distributions, value=value, state=state
    )


def make_sweep(
    root: Path,
    n_trials: int,
    name: str = "synthetic",
    diverged: float = 0.1,
    failed: float = 0.03,
    stopped_early: float = 0.3,
    seeds: int = 3,
    status: str = "finished",
    rng_seed: int = 0,
) -> Manifest:
    """Make a sweep of `n_trials` made-up trials under `root` and return its manifest.

    `diverged`, `failed`, `stopped_early` are the shares of trials that end so (1.0
    diverged: all do); every fifth configuration is run with `seeds` seeds.
    """
    import optuna

    rng = random.Random(rng_seed)
    root = Path(root).resolve()
    sweep_dir = root / "sweeps" / name
    sweep_dir.mkdir(parents=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    options = {"space": "synthetic", "name": name, "num_samples": n_trials, "metric": "distance",
               "mode": "min", "scheduler": "asha", "sampler": "tpe"}  # fmt: skip
    experiment_id, parent = tracking.start_sweep_run(uri, name, options, None)
    client = MlflowClient(uri)
    manifest = Manifest(
        name=name, sweep_dir=str(sweep_dir), tracking_uri=uri, experiment_id=experiment_id,
        parent_run_id=parent, study_name=name, space="synthetic", space_source="", options=options,
        status=status, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )  # fmt: skip
    manifest.save()
    study = optuna.create_study(
        study_name=name, storage=manifest.study_storage, direction="minimize"
    )

    configs: list[TrialConfig] = []
    while len(configs) < n_trials:
        cfg = TrialConfig(
            dataset="ring8", steps=STEPS, eval_every=EVAL_EVERY,
            loss=rng.choice(LOSSES), penalty=rng.choice(PENALTIES), d_norm=rng.choice(D_NORMS),
            optimizer=rng.choice(OPTIMIZERS), lr_g=math.exp(rng.uniform(math.log(1e-4),
            math.log(3e-3))), lr_d=math.exp(rng.uniform(math.log(1e-4), math.log(3e-3))),
        )  # fmt: skip
        if cfg.penalty != "none":
            cfg.penalty_weight = math.exp(rng.uniform(math.log(0.1), math.log(10.0)))
        repeats = seeds if len(configs) % 5 == 0 else 1
        configs += [cfg.model_copy(update={"seed": s}) for s in range(repeats)]
    configs = configs[:n_trials]

    start = int(time.time() * 1000) - 60_000 * n_trials
    study_trials = []
    with tempfile.TemporaryDirectory() as scratch:
        samples = _samples_png(Path(scratch))
        for i, cfg in enumerate(configs):
            trial_id = f"{rng.getrandbits(32):08x}"
            outcome = rng.random()
            if outcome < diverged:
                end = "diverged"
            elif outcome < diverged + failed:
                end = "failed"
            elif outcome < diverged + failed + stopped_early:
                end = "stopped_early"
            else:
                end = "finished"
            last_step = STEPS if end == "finished" else EVAL_EVERY * rng.randint(1, 2)
            final = (
                TYPICAL[cfg.loss]
                * math.exp(rng.gauss(0, 0.4))
                * (0.6 if cfg.d_norm == "spectral" else 1.0)
            )
            t0 = start + 60_000 * i
            tags = {
                tracking.PARENT_TAG: parent, tracking.TAG_ROLE: "trial",
                tracking.TAG_TRIAL_ID: trial_id, "combination": cfg.combination,
                **{axis: str(getattr(cfg, axis)) for axis in tracking.AXES},
            }  # fmt: skip
            run = client.create_run(
                experiment_id, start_time=t0, tags=tags, run_name=f"{cfg.combination}-{trial_id}"
            )
            run_id = run.info.run_id
            metrics = []
            if end != "failed":
                for step in range(EVAL_EVERY, last_step + 1, EVAL_EVERY):
                    frac = step / STEPS
                    value = final * (1 + 2 * (1 - frac))  # improves as it trains
                    bad = end == "diverged" and step == last_step
                    values = {
                        "distance": DIVERGED_DISTANCE if bad else value,
                        "diverged": float(bad),
                        "step": float(step),
                        "modes_captured": float(max(0, min(8, round(8 - 2 * value)))),
                        "high_quality": max(0.0, min(1.0, 1 - value / 4.5)),
                        "reverse_kl": value / 3,
                    }
                    t = t0 + 1000 * step // 50
                    metrics += [Metric(k, v, t, step) for k, v in values.items()]
            params = [Param(k, "" if v is None else str(v)) for k, v in cfg.model_dump().items()]
            client.log_batch(
                run_id, metrics=metrics, params=params, tags=[RunTag(tracking.TAG_STATUS, end)]
            )
            if end != "failed":
                client.log_artifact(run_id, str(samples))
            client.set_terminated(
                run_id,
                "FAILED" if end == "failed" else "FINISHED",
                end_time=t0 + 1000 * last_step // 50,
            )
            # What Tune reported to Optuna: the last distance (None: the trial failed).
            reported = [m.value for m in metrics if m.key == "distance"][-1:] or [None]
            study_trials.append(_study_trial(cfg, reported[0]))
    study.add_trials(study_trials)
    return manifest
