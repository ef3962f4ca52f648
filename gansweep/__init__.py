"""gansweep: large GAN studies. Ray Tune schedules the trials, Optuna guides them, MLflow
records them. The public API is small: the trial schema, the trainer, and the registries
that name every component a sweep can choose.

The names load on first use (PEP 562): importing a light module of the package (the
records, the metric registry) must not load torch, so that the CLI's fast path stays
fast and a trainable that replays recorded curves runs without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gansweep.trainables.config import ConfigError, TrialConfig
    from gansweep.trainables.data import DATASETS
    from gansweep.trainables.engine import GANTrainer
    from gansweep.trainables.losses import LOSSES
    from gansweep.trainables.models import ARCHITECTURES
    from gansweep.trainables.optimizers import OPTIMIZERS

__version__ = "0.1.0"

_WHERE = {
    "ARCHITECTURES": "gansweep.trainables.models",
    "DATASETS": "gansweep.trainables.data",
    "LOSSES": "gansweep.trainables.losses",
    "OPTIMIZERS": "gansweep.trainables.optimizers",
    "ConfigError": "gansweep.trainables.config",
    "GANTrainer": "gansweep.trainables.engine",
    "TrialConfig": "gansweep.trainables.config",
}
__all__ = [
    "ARCHITECTURES",
    "ConfigError",
    "DATASETS",
    "GANTrainer",
    "LOSSES",
    "OPTIMIZERS",
    "TrialConfig",
    "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'gansweep' has no attribute {name!r}")
