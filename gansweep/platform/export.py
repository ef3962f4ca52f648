"""After a sweep: the leaderboard, and the best trial exported as a YAML config that
`gansweep train` accepts (plus, optionally, its generator in the MLflow model registry)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from mlflow import MlflowClient

from gansweep.platform import tracking
from gansweep.platform.manifest import Manifest
from gansweep.trainables.config import TrialConfig

PROVENANCE_KEY = "_provenance"  # keys starting with "_" are skipped by `train`
LEADERBOARD_FILE = "leaderboard.csv"
BEST_FILE = "best.yaml"


class ExportError(RuntimeError):
    """Nothing to export (no trial reported a metric yet)."""


def _analysis(manifest: Manifest):
    from ray.tune import ExperimentAnalysis

    return ExperimentAnalysis(manifest.sweep_dir)


def trial_outcome(result: dict[str, Any], planned_steps: int, failed: bool = False) -> str:
    """How a trial ended: finished | stopped_early (by the scheduler) | diverged | failed."""
    if failed:
        return "failed"
    if result.get("diverged"):
        return "diverged"
    return "finished" if result.get("step", 0) >= planned_steps else "stopped_early"


def leaderboard(manifest: Manifest) -> pd.DataFrame:
    """One row per trial that reported at least once, best first (by the sweep's metric
    at the trial's last report)."""
    metric = manifest.options.get("metric", "distance")
    mode = manifest.options.get("mode", "min")
    rows: list[dict[str, Any]] = []
    for trial in _analysis(manifest).trials:
        result = trial.last_result or {}
        if metric not in result:
            continue
        cfg = TrialConfig.from_dict(trial.config)
        checkpoint = trial.checkpoint
        rows.append(
            {
                "trial_id": trial.trial_id,
                "combination": cfg.combination,
                metric: float(result[metric]),
                "step": int(result.get("step", 0)),
                "planned_steps": cfg.steps,
                "diverged": bool(result.get("diverged", 0.0)),
                "status": trial_outcome(result, cfg.steps, failed=trial.status == "ERROR"),
                "seconds": float(result.get("time_total_s", math.nan)),
                "checkpoint": checkpoint.path if checkpoint is not None else "",
                **{axis: getattr(cfg, axis) for axis in tracking.AXES},
                "config": cfg.model_dump(),
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table = table.sort_values(metric, ascending=(mode == "min"), kind="stable")
        table = table.reset_index(drop=True)
    return table


def run_id_of_trial(manifest: Manifest, trial_id: str) -> str | None:
    return tracking.find_trial_run(
        manifest.tracking_uri, manifest.experiment_id, manifest.parent_run_id, trial_id
    )


def export_best(
    manifest: Manifest, out: Path | None = None, table: pd.DataFrame | None = None
) -> tuple[Path, dict[str, Any]]:
    """Write the best trial's full TrialConfig as YAML; returns (path, provenance)."""
    table = leaderboard(manifest) if table is None else table
    metric = manifest.options.get("metric", "distance")
    finite = table[~table["diverged"]] if not table.empty else table
    if finite.empty:
        raise ExportError(
            f"sweep {manifest.name!r} has no trial with a finite {metric!r} yet "
            "(none reported, or all diverged)"
        )
    best = finite.iloc[0]
    provenance = {
        "sweep": manifest.name,
        "trial_id": best["trial_id"],
        "mlflow_run_id": run_id_of_trial(manifest, best["trial_id"]),
        "tracking_uri": manifest.tracking_uri,
        "metric": metric,
        "value": float(best[metric]),
        "step": int(best["step"]),
        "checkpoint": best["checkpoint"],
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    out = Path(out) if out is not None else Path(manifest.sweep_dir) / BEST_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Best trial of sweep {manifest.name!r}: {metric} = {best[metric]:.6g} at step "
        f"{best['step']}.\n# Retrain it: gansweep train {out.name}\n"
    )
    body = yaml.safe_dump(dict(best["config"]), sort_keys=False)
    notes = yaml.safe_dump({PROVENANCE_KEY: provenance}, sort_keys=False)
    out.write_text(header + body + notes)
    return out, provenance


def register_generator(manifest: Manifest, run_id: str, model_name: str) -> str:
    """Register the best trial's logged generator (``generator.pt``) as a new version of
    `model_name` in the MLflow model registry, with the alias ``champion``. Returns the
    version. The file is a weights-only state dict: load it with
    ``gansweep.trainables.engine.load_generator``, never with a pickle loader."""
    client = MlflowClient(manifest.tracking_uri)
    try:
        client.get_registered_model(model_name)
    except Exception:  # not registered yet
        client.create_registered_model(
            model_name, description="GAN generators exported by gansweep"
        )
    source = f"{client.get_run(run_id).info.artifact_uri}/generator.pt"
    version = client.create_model_version(model_name, source=source, run_id=run_id)
    client.set_registered_model_alias(model_name, "champion", version.version)
    return version.version
