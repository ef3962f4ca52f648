"""A synthetic sweep for tests and benchmarks of the report: a real MLflow SQLite store
(parent run + one run per trial, and per replica of the top trials, with every
TrialConfig param, the axis tags, metric histories and a samples.png), a real Optuna
study and a manifest, written through the records layer (gansweep.records.write) as a
real sweep writes them, but made in seconds with no Ray and no training.

The results are made up (each loss has its own typical distance, plus noise); what is
real is every name and format the report reads.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from pathlib import Path

from gansweep.records import ranking
from gansweep.records.manifest import Manifest, Replication
from gansweep.records.run_format import TrialIdentity
from gansweep.records.study_store import open_study_storage
from gansweep.records.write import TrialRun, start_sweep_run
from gansweep.trainables.config import TrialConfig
from gansweep.trainables.metric_registry import METRICS
from gansweep.trainables.metrics import worst_metrics

LOSSES = ("ns", "wgan", "hinge", "lsgan")
PENALTIES = ("none", "gp", "r1")
D_NORMS = ("none", "spectral")
OPTIMIZERS = ("adam", "rmsprop")
TYPICAL = {"ns": 0.6, "wgan": 1.4, "hinge": 0.8, "lsgan": 1.0}  # made-up median distance
STEPS, EVAL_EVERY = 1500, 500
# The space the made-up trials are drawn from, as a manifest keeps it (the report reads
# the searched axes from it).
SPACE = """
fixed: {dataset: ring8, steps: 1500, eval_every: 500}
params:
  loss: {choice: [ns, wgan, hinge, lsgan]}
  penalty: {choice: [none, gp, r1]}
  penalty_weight: {loguniform: [0.1, 10.0], when: {penalty: [gp, r1]}}
  d_norm: {choice: [none, spectral]}
  optimizer: {choice: [adam, rmsprop]}
  lr_g: {loguniform: [1.0e-4, 3.0e-3]}
  lr_d: {loguniform: [1.0e-4, 3.0e-3]}
"""


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


def _outcome(rng: random.Random, diverged: float, failed: float, stopped_early: float) -> str:
    draw = rng.random()
    for end, share in (
        (ranking.DIVERGED, diverged), (ranking.FAILED, failed),
        (ranking.STOPPED_EARLY, stopped_early),
    ):  # fmt: skip
        if draw < share:
            return end
        draw -= share
    return ranking.FINISHED


def every_metric(value: float) -> dict[str, float]:
    """A made-up value of every metric of METRICS (as registered when called) for a trial
    whose distance is `value`: distinct from each other, and better with a better
    distance, each in its own direction."""
    out = {}
    for i, (name, spec) in enumerate(METRICS.items()):
        scaled = value * (1 + i / 10)
        out[name] = scaled if spec.mode == "min" else 1 / scaled
    return out


def _record(
    manifest: Manifest, cfg: TrialConfig, trial_id: str, end: str, final: float,
    last_step: int, samples: Path, replica_of: str | None = None, all_metrics: bool = False,
) -> float | None:  # fmt: skip
    """One made-up trial, recorded through the records layer; returns what Tune would
    have reported to Optuna (its last distance; None if it failed). With `all_metrics`
    it reports every metric of METRICS (every_metric)."""
    who = TrialIdentity(manifest.records, trial_id, cfg.combination, replica_of)
    run = TrialRun(who, cfg.model_dump())
    reported = None
    if end != ranking.FAILED:
        for step in range(EVAL_EVERY, last_step + 1, EVAL_EVERY):
            value = final * (1 + 2 * (1 - step / STEPS))  # improves as it trains
            if end == ranking.DIVERGED and step == last_step:
                values = {**worst_metrics("vector", False, False), "diverged": 1.0}
            else:
                values = {
                    "distance": value, "mmd": value, "diverged": 0.0,
                    "modes_captured": float(max(0, min(8, round(8 - 2 * value)))),
                    "high_quality": max(0.0, min(1.0, 1 - value / 4.5)), "reverse_kl": value / 3,
                }  # fmt: skip
                values.update(every_metric(value) if all_metrics else {})
            values["step"] = float(step)
            run.log_evaluation(values, step, [samples] if step == last_step else [])
            reported = values["distance"]
    run.finish(end, "FAILED" if end == ranking.FAILED else "FINISHED")
    return reported


def make_sweep(
    root: Path,
    n_trials: int,
    name: str = "synthetic",
    diverged: float = 0.1,
    failed: float = 0.03,
    stopped_early: float = 0.3,
    replicate_top: int = 0,
    seeds: int = 3,
    status: str = "finished",
    rng_seed: int = 0,
    all_metrics: bool = False,
    spectral: float = 0.6,
) -> Manifest:
    """Make a sweep of `n_trials` made-up trials under `root` and return its manifest.

    `diverged`, `failed`, `stopped_early` are the shares of trials that end so (1.0
    diverged: all do); the best `replicate_top` finished trials are replicated on `seeds`
    fresh seeds. With `all_metrics` every run reports every metric of METRICS as
    registered now (every_metric), not only the mixture metrics. Spectral norm in D
    multiplies a trial's distance by `spectral` (the axis built to matter; the losses
    differ too, by TYPICAL).
    """
    import optuna

    rng = random.Random(rng_seed)
    root = Path(root).resolve()
    sweep_dir = root / "sweeps" / name
    sweep_dir.mkdir(parents=True)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    options = {"space": "synthetic", "name": name, "num_samples": n_trials, "metric": "distance",
               "mode": "min", "scheduler": "asha", "sampler": "tpe"}  # fmt: skip
    experiment_id, parent = start_sweep_run(uri, name, options, None)
    manifest = Manifest(
        name=name, sweep_dir=str(sweep_dir), tracking_uri=uri, experiment_id=experiment_id,
        parent_run_id=parent, study_name=name, space="synthetic", space_source=SPACE,
        options=options, status=status, created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )  # fmt: skip
    study = optuna.create_study(
        study_name=name, storage=open_study_storage(manifest), direction="minimize"
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
        configs.append(cfg)

    study_trials = []
    finished: list[tuple[float, str, TrialConfig]] = []
    with tempfile.TemporaryDirectory() as scratch:
        samples = _samples_png(Path(scratch))
        for cfg in configs:
            trial_id = f"{rng.getrandbits(32):08x}"
            end = _outcome(rng, diverged, failed, stopped_early)
            final = TYPICAL[cfg.loss] * math.exp(rng.gauss(0, 0.4))
            final *= spectral if cfg.d_norm == "spectral" else 1.0
            last_step = STEPS if end == ranking.FINISHED else EVAL_EVERY * rng.randint(1, 2)
            reported = _record(
                manifest, cfg, trial_id, end, final, last_step, samples, all_metrics=all_metrics
            )
            study_trials.append(_study_trial(cfg, reported))
            if end == ranking.FINISHED:
                finished.append((final, trial_id, cfg))
        # The top finished trials retrained on fresh seeds: the seed moves the result.
        top = sorted(finished, key=lambda f: f[0])[:replicate_top]
        if top:
            fresh = list(range(1, seeds + 1))
            manifest.replication = Replication(
                top=replicate_top, seeds=fresh, trial_ids=[t for _, t, _ in top],
                status="finished",
            )  # fmt: skip
        for final, source, cfg in top:
            for seed in fresh:
                end = _outcome(rng, diverged / 2, 0.0, 0.0)
                value = final * math.exp(rng.gauss(0, 0.3))
                replica = cfg.model_copy(update={"seed": seed})
                _record(manifest, replica, f"{rng.getrandbits(32):08x}", end, value,
                        STEPS, samples, replica_of=source, all_metrics=all_metrics)  # fmt: skip
    manifest.save()
    study.add_trials(study_trials)
    return manifest
