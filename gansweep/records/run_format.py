"""The MLflow run format of a sweep: every tag, param, metric and artifact name.

- experiment: the sweep name (reused by later sweeps of the same name), tagged so the
  MLflow UI opens it in its "Model training" view;
- parent run: named after the sweep; params are the sweep options; tags
  ``gansweep.role=sweep`` and ``gansweep.sweep``; artifacts ``space.yaml``,
  ``leaderboard.csv``, ``best.yaml``, ``gansweep.json``, ``report.html``;
- trial run (``gansweep.role=trial``): named ``<combination>-<trial id>``, nested under the
  parent (``mlflow.parentRunId``); params are every TrialConfig field under its own name;
  tags ``gansweep.trial_id``, ``gansweep.sweep``, ``gansweep.status`` (how it ended, see
  ranking.py), ``ray.node_id``, ``gansweep.device`` and the axes (``loss``, ``penalty``,
  ``d_norm``, ``optimizer``, ``combination``); every metric at every evaluation step; the last
  ``samples.png`` and ``generator.pt``;
- replica run (``gansweep.role=replica``): the same as a trial run, for a top config
  retrained on a fresh seed, with the tags ``replica_of`` (the trial id it replicates)
  and ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TAG_ROLE = "gansweep.role"
TAG_SWEEP = "gansweep.sweep"
TAG_TRIAL_ID = "gansweep.trial_id"
TAG_STATUS = "gansweep.status"
TAG_NODE = "ray.node_id"
TAG_DEVICE = "gansweep.device"  # cpu, cuda:0, ...: where the trial's last attempt trained
TAG_REPLICA_OF = "replica_of"
TAG_SEED = "seed"
TAG_COMBINATION = "combination"
# PBT (--scheduler pbt): a trial that exploited another one trains that trial's config,
# perturbed; its run's params (immutable) keep its first config, this tag holds the one it
# trains with now (JSON), and one tag per perturbation records it (see write.TrialRun).
TAG_CONFIG = "gansweep.config"
TAG_PERTURBATION = "gansweep.pbt.step"  # + "<step>" : {"from_trial", "changed"} as JSON
PARENT_TAG = "mlflow.parentRunId"
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"  # the UI's "Model training" view

ROLE_SWEEP = "sweep"
ROLE_TRIAL = "trial"
ROLE_REPLICA = "replica"
RUN_ROLES = (ROLE_TRIAL, ROLE_REPLICA)  # the roles of runs that train a GAN

# The axes of a GAN study (Kurach et al. 2019), each a tag of every trial run.
AXES = ("loss", "penalty", "d_norm", "optimizer")

# In a replica's Tune config (a top config retrained on a fresh seed): the trial id it
# replicates. Every other key of a Tune config is a TrialConfig field.
REPLICA_KEY = "_replica_of"

# In each Tune result of a trial: its MLflow run, and whether the trial has ended that run
# itself (its last result, reported after the run's end). The driver's callback that
# closes runs (platform/tune_callbacks.CloseTrialRuns) then makes no tracking call for it, and
# for a trial the scheduler stopped it needs no search for the run.
RESULT_RUN_ID = "mlflow_run_id"
RESULT_RUN_ENDED = "mlflow_run_ended"

SAMPLES_FILE = "samples.png"
GENERATOR_FILE = "generator.pt"


def as_param(value: Any) -> str:
    """How a TrialConfig value is written as an MLflow param (None is the empty string)."""
    return "" if value is None else str(value)


@dataclass(frozen=True)
class SweepRecords:
    """Where one sweep's runs are recorded: what every trial needs besides its config."""

    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    sweep_name: str = ""


@dataclass(frozen=True)
class TrialIdentity:
    """Who a trial (or replica) run is: what its tags and its name are made of."""

    sweep: SweepRecords
    trial_id: str
    combination: str
    replica_of: str | None = None  # the trial id a replica retrains on a fresh seed

    @property
    def run_name(self) -> str:
        return f"{self.combination}-{self.trial_id}"

    def tags(self, params: dict[str, Any]) -> dict[str, str]:
        """The tags the run is created with (params: its TrialConfig fields)."""
        tags = {
            PARENT_TAG: self.sweep.parent_run_id,
            TAG_ROLE: ROLE_TRIAL if self.replica_of is None else ROLE_REPLICA,
            TAG_TRIAL_ID: self.trial_id,
            TAG_SWEEP: self.sweep.sweep_name,
            TAG_COMBINATION: self.combination,
            **{axis: as_param(params.get(axis)) for axis in AXES},
        }
        if self.replica_of is not None:
            tags[TAG_REPLICA_OF] = self.replica_of
            tags[TAG_SEED] = as_param(params.get("seed"))
        return tags
