"""What a sweep takes: SweepOptions and its defaults, in one place. The CLI's options take
their defaults from here, the manifest records these fields, and sweep_input.prepare
checks them. Imports neither torch nor Ray (`gansweep --help` reads it)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gansweep.platform.trainable_registry import DEFAULT_TRAINABLE
from gansweep.trainables.metric_registry import PRIMARY_METRIC

MODES = ("min", "max")
# Configs a --warm-start sweep takes from an earlier sweep's leaderboard (warm_start.py).
WARM_START_TOP = 3


@dataclass
class SweepOptions:
    """Everything `gansweep sweep` takes; recorded in the manifest and the parent run."""

    space: str = "quick"
    name: str | None = None  # None: <space>-<time>
    num_samples: int = 8
    max_concurrent: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    sampler: str = "tpe"  # a samplers.SAMPLERS name
    scheduler: str = "asha"  # a schedulers.SCHEDULERS name
    trainable: str = DEFAULT_TRAINABLE  # a TRAINABLES name or a reference (trainable_registry)
    metric: str = PRIMARY_METRIC
    mode: str | None = None  # None: the metric's own direction
    time_budget: float | None = None  # seconds
    seed: int | None = 0  # of the Optuna sampler
    overrides: list[str] = field(default_factory=list)
    storage: str = "sweeps"
    address: str | None = None
    tracking_uri: str | None = None
    max_failures: int = 2
    replicate_top: int = 3  # configs a sweep retrains on fresh seeds at its end
    seeds: int = 3  # fresh seeds per replicated config
    warm_start: list[str] = field(default_factory=list)  # earlier sweeps or config files
    warm_start_top: int = WARM_START_TOP  # configs taken from each earlier sweep


DEFAULTS = SweepOptions()
