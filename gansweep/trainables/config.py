"""TrialConfig: the single, validated schema of one GAN run.

Its field names are everything else's names too: Ray Tune config keys, Optuna parameter
names, MLflow params, the keys of a config YAML. Flat snake_case, so MLflow's compare
view can plot every axis. The defaults train a GAN on ``ring8`` that captures most modes.

Names of components (dataset, architecture, loss, optimizer, penalty, augmentations) are
checked against the registries that define them, so a new registry entry is a valid
choice everywhere at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gansweep.files import load_yaml
from gansweep.trainables.augment import AUGMENTATIONS
from gansweep.trainables.data import DATASETS
from gansweep.trainables.losses import LOSSES
from gansweep.trainables.models import ARCHITECTURES
from gansweep.trainables.optimizers import OPTIMIZERS
from gansweep.trainables.regularizers import D_NORMS, G_NORMS, PENALTIES
from gansweep.trainables.schedules import LR_SCHEDULES

PENALTY_CHOICES = ("none", *PENALTIES)
# Fields that name a component: the registry (or tuple) is the list of valid values.
CHOICES: dict[str, Any] = {
    "dataset": DATASETS,
    "architecture": ARCHITECTURES,
    "loss": LOSSES,
    "optimizer": OPTIMIZERS,
    "penalty": PENALTY_CHOICES,
    "g_norm": G_NORMS,
    "d_norm": D_NORMS,
    "lr_schedule": LR_SCHEDULES,
}
MAX_PAC = 4  # PacGAN's table stops at 4: D's input grows with it, its gain did not


class ConfigError(ValueError):
    """A config that does not validate; the message names each bad field and its choices."""


def _one_of(kind: str, value: str, valid: Any) -> str:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")
    return value


class TrialConfig(BaseModel):
    """One GAN training run. Unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)

    # --- data
    dataset: str = Field("ring8", description="Data set name (see DATASETS).")
    data_path: str | None = Field(
        None, description="Folder with the data (image_folder; offline torchvision sets)."
    )
    image_size: int | None = Field(
        None, ge=8, le=256, description="Resize images to this square size; None: the set's own."
    )

    # --- networks
    architecture: str = Field("mlp", description="Network family (see ARCHITECTURES).")
    z_dim: int = Field(16, ge=1, le=1024, description="Dimension of the generator's noise.")
    width: int = Field(
        128, ge=4, le=4096, description="Hidden units (mlp) or base channel count (conv nets)."
    )
    g_norm: str = Field("none", description="Normalization in G: none | batch | layer.")
    d_norm: str = Field("none", description="Normalization in D: none | batch | layer | spectral.")

    # --- adversarial loss and regularization
    loss: str = Field("ns", description="Adversarial loss (see LOSSES).")
    penalty: str = Field("none", description="Gradient penalty on D: none | gp | r1 | dragan.")
    penalty_weight: float = Field(
        10.0, ge=0, le=1e4, description="Weight of the gradient penalty (lambda, or gamma for r1)."
    )
    weight_clip: float = Field(
        0.0, ge=0, description="Clip D's weights to [-c, c] after each step; 0 turns it off."
    )
    weight_decay_g: float = Field(0.0, ge=0, le=1, description="L2 weight decay of G.")
    weight_decay_d: float = Field(0.0, ge=0, le=1, description="L2 weight decay of D.")
    augment: str = Field(
        "none",
        description="Differentiable augmentations of D's inputs, comma-separated, or none.",
    )
    ema_decay: float = Field(
        0.0, ge=0, lt=1, description="EMA of G's weights for evaluation; 0 turns it off."
    )

    # --- optimization
    optimizer: str = Field("adam", description="Optimizer of both networks (see OPTIMIZERS).")
    lr_g: float = Field(1e-3, gt=0, le=10, description="Learning rate of G.")
    lr_d: float = Field(1e-3, gt=0, le=10, description="Learning rate of D.")
    beta1: float = Field(0.5, ge=0, lt=1, description="Adam's beta1.")
    beta2: float = Field(0.999, ge=0, lt=1, description="Adam's beta2.")
    momentum: float = Field(0.0, ge=0, lt=1, description="SGD's momentum.")
    nesterov: bool = Field(False, description="SGD with Nesterov momentum.")
    rmsprop_alpha: float = Field(0.99, gt=0, lt=1, description="RMSprop's smoothing constant.")
    lr_schedule: str = Field(
        "constant", description="Schedule of both learning rates: constant | linear | cosine."
    )
    lr_floor: float = Field(
        0.0, ge=0, le=1, description="Where linear and cosine end, as a fraction of lr_g, lr_d."
    )
    lr_warmup: int = Field(
        0, ge=0, description="Steps of linear warm-up to lr_g and lr_d; 0 turns it off."
    )
    n_critic: int = Field(1, ge=1, le=100, description="D steps per G step.")
    batch_size: int = Field(256, ge=1, le=65536, description="Samples per batch (G and D).")
    pac: int = Field(
        1, ge=1, le=MAX_PAC, description="Packing (PacGAN): D judges this many samples at once."
    )

    # --- conditioning (AC-GAN)
    conditional: bool = Field(
        False, description="Class-conditional G and an auxiliary classifier on D (AC-GAN)."
    )
    ac_weight: float = Field(1.0, ge=0, description="Weight of the auxiliary classifier loss.")

    # --- run length, evaluation, reproducibility
    steps: int = Field(3000, ge=1, description="Generator steps (each after n_critic D steps).")
    eval_every: int = Field(
        500, ge=1, description="Evaluate every this many generator steps (and after the last)."
    )
    eval_samples: int = Field(2500, ge=10, description="Generated samples per evaluation.")
    inception_weights: str | None = Field(
        None, description="Local Inception weights file; enables Inception FID/KID for images."
    )
    seed: int = Field(0, ge=0, description="Seed of every random draw in the run.")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N.")

    # ------------------------------------------------------------------ field checks

    @field_validator(*CHOICES)
    @classmethod
    def _registered(cls, v: str, info: ValidationInfo) -> str:
        # pydantic leaves field_name None only for model validators, never for a field's own
        assert info.field_name is not None, "a field validator always knows its field"
        return _one_of(info.field_name, v, CHOICES[info.field_name])

    @field_validator("augment")
    @classmethod
    def _augment(cls, v: str) -> str:
        names = [n.strip() for n in v.split(",") if n.strip()]
        if names == ["none"]:
            return "none"
        for name in names:
            _one_of("augmentation", name, ("none", *AUGMENTATIONS))
        if not names or "none" in names:
            raise ValueError(f"augment {v!r}: use 'none' alone or a list of augmentations")
        return ",".join(names)

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"unknown device {v!r}; valid: auto, cpu, cuda, cuda:N")

    # ------------------------------------------------------------- combined checks

    @model_validator(mode="after")
    def _consistent(self) -> TrialConfig:
        spec = DATASETS[self.dataset]
        arch = ARCHITECTURES[self.architecture]
        if spec.kind not in arch.kinds:
            valid = [n for n, a in ARCHITECTURES.items() if spec.kind in a.kinds]
            raise ValueError(
                f"architecture {self.architecture!r} does not take {spec.kind} data "
                f"(dataset {self.dataset!r}); valid: {', '.join(valid)}"
            )
        if self.conditional and not spec.labelled:
            labelled = [n for n, s in DATASETS.items() if s.labelled]
            raise ValueError(
                f"conditional=True needs a labelled dataset, not {self.dataset!r}; "
                f"labelled: {', '.join(labelled)}"
            )
        if self.augment != "none" and spec.kind != "image":
            raise ValueError(
                f"augment {self.augment!r} works on images; dataset {self.dataset!r} "
                f"gives {spec.kind} data (use augment=none)"
            )
        if self.inception_weights is not None and spec.kind != "image":
            raise ValueError(
                f"inception_weights is for image data (Inception FID/KID); dataset "
                f"{self.dataset!r} gives {spec.kind} data (leave inception_weights unset)"
            )
        if self.image_size is not None and spec.kind != "image":
            raise ValueError(f"image_size is for image data; dataset {self.dataset!r} is not")
        if self.image_size is not None and arch.image_sizes is not None:
            if self.image_size not in arch.image_sizes:
                raise ValueError(
                    f"architecture {self.architecture!r} takes image_size in "
                    f"{', '.join(map(str, arch.image_sizes))}, not {self.image_size}"
                )
        if self.batch_size % self.pac:
            pacs = [str(m) for m in range(1, MAX_PAC + 1) if self.batch_size % m == 0]
            raise ValueError(
                f"pac {self.pac} does not divide batch_size {self.batch_size} (D judges "
                f"packs of pac samples); valid pac for this batch_size: "
                f"{', '.join(pacs)}, or a batch_size that is a multiple of {self.pac}"
            )
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise ValueError("nesterov=True needs optimizer 'sgd' with momentum > 0")
        if self.d_norm == "batch" and self.penalty != "none":
            # The penalties need each sample's own gradient of D; through batch statistics
            # every sample's logit depends on the whole batch (Gulrajani et al. 2017 use
            # layer norm in D for this reason).
            raise ValueError(
                f"penalty {self.penalty!r} with d_norm='batch' gives wrong per-sample "
                "gradients through the batch statistics; use d_norm layer, spectral or "
                "none with a gradient penalty"
            )
        return self

    # --------------------------------------------------------------------- helpers

    @property
    def augmentations(self) -> tuple[str, ...]:
        """The augment policy as a tuple of names; () when off."""
        return () if self.augment == "none" else tuple(self.augment.split(","))

    @property
    def combination(self) -> str:
        """The study's axes in one short name, e.g. ``wgan-gp-adam`` or
        ``hinge-r1-sn-adam-pac2-lr_cosine-ac-aug_translation+cutout``.

        Every component a space can search is in it (loss, penalty, weight clipping, D
        and G normalization, optimizer, D steps per G step, packing, the learning-rate
        schedule and its warm-up, AC-GAN conditioning, the augmentations), each only
        where it is not the default, so two configs that differ in a component never
        share a name. Numbers that are tuned rather than chosen (learning rates and
        their floor, weights, decays) are not: they are the trial's params.
        """
        norms = {"batch": "bn", "layer": "ln", "spectral": "sn"}
        parts = [self.loss]
        if self.penalty != "none":
            parts.append(self.penalty)
        if self.weight_clip > 0:
            parts.append("clip")
        if self.d_norm != "none":
            parts.append(norms[self.d_norm])
        if self.g_norm != "none":
            parts.append(f"g{norms[self.g_norm]}")
        parts.append(self.optimizer)
        if self.n_critic > 1:
            parts.append(f"nc{self.n_critic}")
        if self.pac > 1:
            parts.append(f"pac{self.pac}")
        if self.lr_schedule != "constant":
            parts.append(f"lr_{self.lr_schedule}")
        if self.lr_warmup > 0:
            parts.append(f"wu{self.lr_warmup}")
        if self.conditional:
            parts.append("ac")
        if self.augmentations:
            parts.append("aug_" + "+".join(self.augmentations))
        return "-".join(parts)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrialConfig:
        """Validate a plain dict, turning pydantic's error into one readable ConfigError."""
        try:
            return cls(**values)
        except ValidationError as err:
            raise ConfigError(format_validation_error(err)) from None


def format_validation_error(err: ValidationError) -> str:
    """One line per problem: `field: message (got value)`."""
    lines = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "config"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown key; valid keys: {', '.join(TrialConfig.model_fields)}"
        got = "" if e["type"] == "extra_forbidden" else f" (got {e.get('input')!r})"
        if field == "config":
            got = ""
        lines.append(f"{field}: {msg}{got}")
    return "invalid config:\n  " + "\n  ".join(lines)


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    """["lr_g=2e-4", "loss=wgan"] -> {"lr_g": 0.0002, "loss": "wgan"} (YAML scalars, read
    like a config file: ``2e-4`` is a number)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {pair!r}: expected key=value, e.g. --set loss=wgan")
        try:
            values[key.strip()] = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"--set {pair!r}: value is not valid YAML ({err})") from None
    return values


def read_config(path: str | Path | None, overrides: list[str] | None = None) -> TrialConfig:
    """A TrialConfig from a YAML file (None: the defaults) with key=value overrides.

    Keys starting with "_" are notes (an exported config's provenance) and are skipped.
    """
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {str(path)!r} does not exist")
        try:
            loaded = load_yaml(path.read_text())
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {str(path)!r} is not valid YAML: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"config file {str(path)!r} must hold a mapping of key: value, "
                f"not {type(loaded).__name__}"
            )
        values = {k: v for k, v in (loaded or {}).items() if not str(k).startswith("_")}
    values.update(parse_overrides(overrides or []))
    return TrialConfig.from_dict(values)
