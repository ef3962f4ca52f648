"""After a sweep: its champion (the leaderboard's first row, ranked by the one rule in
gansweep.records.ranking) exported as a YAML config that `gansweep train` accepts, with
where it came from and, when it was replicated, its spread over fresh seeds; optionally
its generator in the MLflow model registry as a pyfunc model."""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
import yaml

from gansweep.files import atomic_write_text
from gansweep.records import ranking
from gansweep.records.leaderboard import Standings, run_config, standings
from gansweep.records.manifest import BEST_FILE, Manifest
from gansweep.records.run_format import GENERATOR_FILE
from gansweep.records.store import redact

PROVENANCE_KEY = "_provenance"  # keys starting with "_" are skipped by `train`
ROBUST_RULE = "the worst seed's metric, then the mean over seeds (replicated configs first)"
# A config whose replication is unfinished, or broke on a seed, ranks as a trial does.
TRIAL_RULE = "the metric at equal budget (replication unfinished or broken on a seed)"


class ExportError(RuntimeError):
    """Nothing to export (no trial reported a metric yet)."""


def _number(value: Any) -> float | None:
    """A float for YAML: None for NaN (no value), inf kept (a diverged seed)."""
    value = float(value)
    return None if math.isnan(value) else value


def spread(champion: Any, metric: str) -> dict[str, Any]:
    """A replicated champion's results over its fresh seeds, as recorded."""
    out: dict[str, Any] = {
        "seeds": int(champion["seeds"]),
        "seeds_planned": int(champion["seeds_planned"]),
        "diverged_or_failed": int(champion["broken"]),
        metric: {s: _number(champion[f"{metric}_{s}"]) for s in ("mean", "sd", "worst")},
    }
    for name in ranking.REPLICA_METRICS:
        if name == metric or f"{name}_mean" not in champion:
            continue
        out[name] = {s: _number(champion[f"{name}_{s}"]) for s in ("mean", "sd", "worst")}
    return out


def _checkpoint_of(manifest: Manifest, trial_id: str) -> str:
    """The newest Tune checkpoint of a trial of the search, or "" (e.g. storage not
    mounted). Found by its folder's name (tune_glue names a trial's folder
    <combination>-<trial id>, and Tune numbers its checkpoints in order), not by Tune's
    ExperimentAnalysis, which reads every trial's results: 8.8 s of `export` at 2,000
    trials."""
    checkpoints = sorted(Path(manifest.sweep_dir).glob(f"*-{trial_id}/checkpoint_*"))
    return str(checkpoints[-1]) if checkpoints else ""


def export_best(
    manifest: Manifest, out: Path | None = None, ranked: Standings | None = None
) -> tuple[Path, dict[str, Any]]:
    """Write the champion's full TrialConfig as YAML; returns (path, provenance)."""
    ranked = standings(manifest) if ranked is None else ranked
    champion = ranked.champion
    metric = manifest.metric
    if champion is None:
        raise ExportError(
            f"sweep {manifest.name!r} has no trial with a finite {metric!r} yet "
            "(none reported, or all diverged)"
        )
    config = run_config(manifest.tracking_uri, champion["run_id"])
    provenance: dict[str, Any] = {
        "sweep": manifest.name,
        "trial_id": champion["trial_id"],
        "mlflow_run_id": champion["run_id"],
        "tracking_uri": redact(manifest.tracking_uri),  # best.yaml travels: no secret
        "metric": metric,
        "mode": manifest.mode,
        "value": float(champion[metric]),
        "step": int(champion["step"]),
        "planned_steps": int(champion["planned_steps"]),
        "status": champion["status"],
        "checkpoint": _checkpoint_of(manifest, champion["trial_id"]),
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    measured = f"{metric} = {champion[metric]:.6g} at step {int(champion['step'])}"
    if bool(champion["replicated"]):
        provenance["rule"] = ROBUST_RULE if bool(champion["held"]) else TRIAL_RULE
        provenance["replicated"] = spread(champion, metric)
        worst = champion[f"{metric}_worst"]
        measured = (
            f"{metric} over {int(champion['seeds'])} fresh seeds: mean "
            f"{champion[f'{metric}_mean']:.6g}, worst {worst:.6g} (selected at {measured})"
        )
    out = Path(out) if out is not None else Path(manifest.sweep_dir) / BEST_FILE
    header = (
        f"# Champion of sweep {manifest.name!r}: {measured}.\n"
        f"# Retrain it: gansweep train {out.name}\n"
    )
    body = yaml.safe_dump(config.model_dump(), sort_keys=False)
    notes = yaml.safe_dump({PROVENANCE_KEY: provenance}, sort_keys=False)
    atomic_write_text(out, header + body + notes)
    return out, provenance


def register_champion(manifest: Manifest, provenance: dict[str, Any], model_name: str) -> str:
    """Log the champion's generator (its run's ``generator.pt``) as an MLflow pyfunc model
    in its run and register it as a new version of `model_name` with the alias
    ``champion``; the sweep, the metric and its spread over fresh seeds (if replicated)
    are the version's tags. Returns the version.

    The model is its code (platform/champion_pyfunc.py), the weights and the package
    modules listed in champion_model.SHIPPED_MODULES: nothing else of this machine, no
    pickle (see platform/champion_model.py)."""
    run_id = provenance["mlflow_run_id"]
    metric = provenance["metric"]
    tags = {
        "gansweep.sweep": manifest.name,
        "gansweep.trial_id": provenance["trial_id"],
        "gansweep.metric": metric,
        "gansweep.mode": provenance["mode"],
        f"gansweep.{metric}": f"{provenance['value']:.6g}",
        "gansweep.step": str(provenance["step"]),
    }
    if "replicated" in provenance:
        replicated = provenance["replicated"]
        tags["gansweep.seeds"] = f"{replicated['seeds']}/{replicated['seeds_planned']}"
        for statistic, value in replicated[metric].items():  # mean, sd, worst
            tags[f"gansweep.{metric}.{statistic}"] = "" if value is None else f"{value:.6g}"
    # Deferred: the model's code loads torch, which only `export --register` needs.
    from gansweep.platform.champion_model import log_and_register

    with tempfile.TemporaryDirectory(prefix="gansweep-export-") as scratch:
        local = mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=GENERATOR_FILE,
            dst_path=scratch,
            tracking_uri=manifest.tracking_uri,
        )
        return log_and_register(manifest.tracking_uri, run_id, Path(local), model_name, tags)
