"""gansweep: large GAN studies. Ray Tune schedules the trials, Optuna guides them, MLflow
records them. The public API is small: the trial schema, the trainer, and the registries
that name every component a sweep can choose."""

from gansweep.trainables.config import ConfigError, TrialConfig
from gansweep.trainables.data import DATASETS
from gansweep.trainables.engine import GANTrainer
from gansweep.trainables.losses import LOSSES
from gansweep.trainables.models import ARCHITECTURES
from gansweep.trainables.optimizers import OPTIMIZERS

__version__ = "0.1.0"

__all__ = [
    "ARCHITECTURES",
    "DATASETS",
    "LOSSES",
    "OPTIMIZERS",
    "ConfigError",
    "GANTrainer",
    "TrialConfig",
    "__version__",
]
