"""The champion as an MLflow model: a pyfunc over ``load_generator``, so anything in the
MLflow ecosystem (``mlflow.pyfunc.load_model``, ``mlflow models serve``, the model page's
schema) can draw samples from it. What a request holds, what comes back and the bound on
it (``MAX_SAMPLES``) are in ``champion_pyfunc.py``, the model's code.

What leaves the machine, in the champion run's ``champion_model/`` (readable by every
user of the tracking server), and nothing else:
- ``champion_pyfunc.py``, logged as "models from code": MLflow runs that file to load
  the model, no pickled instance (no ``python_model.pkl``);
- ``artifacts/generator.pt``, the weights-only generator (loaded with weights_only);
- ``code/gansweep/...``, exactly the package modules in ``SHIPPED_MODULES``, copied one
  by one, never a folder: with the editable install the package folder sits in the
  repository, and whatever lies in or beside it (an ``.env``, data, a sweep) must not be
  uploaded;
- MLflow's own metadata: ``MLmodel``, the environment files, the input example.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, DataType, Schema, TensorSpec
from mlflow.types.schema import Array

from gansweep.records.store import with_retries

MODEL_DIR = "champion_model"  # the pyfunc model's folder in the champion trial's run
GENERATOR_ARTIFACT = "generator"  # its key in the model's artifacts (champion_pyfunc's)
CHAMPION_ALIAS = "champion"
EXAMPLE_SAMPLES = 16
MODEL_CODE = Path(__file__).with_name("champion_pyfunc.py")  # the model, as code
PACKAGE_PARENT = Path(__file__).resolve().parents[2]  # the folder that holds gansweep/
# The package modules the model needs: the import closure of champion_pyfunc.py, that is
# of gansweep.trainables.engine (load_generator), which imports no module lazily.
# An explicit list rather than one computed at export time: what is uploaded is then
# reviewed in a diff, and a test checks it against the closure in a fresh process (it
# fails when an import is added or removed). Not the package's wheel: building one
# needs a build backend (a download where there is no network), takes seconds, and
# would ship the package data too (search spaces, data sets) where a list of 23 source
# files is all a generator needs.
SHIPPED_MODULES: tuple[str, ...] = (
    "gansweep/__init__.py",
    "gansweep/files.py",
    "gansweep/profiling.py",
    "gansweep/trainables/__init__.py",
    "gansweep/trainables/augment.py",
    "gansweep/trainables/config.py",
    "gansweep/trainables/data.py",
    "gansweep/trainables/engine.py",
    "gansweep/trainables/feature_net.py",
    "gansweep/trainables/image_metrics.py",
    "gansweep/trainables/losses.py",
    "gansweep/trainables/metric_registry.py",
    "gansweep/trainables/metrics.py",
    "gansweep/trainables/models/__init__.py",
    "gansweep/trainables/models/dcgan.py",
    "gansweep/trainables/models/mlp.py",
    "gansweep/trainables/models/resnet.py",
    "gansweep/trainables/models/spec.py",
    "gansweep/trainables/optimizers.py",
    "gansweep/trainables/packing.py",
    "gansweep/trainables/regularizers.py",
    "gansweep/trainables/run_setup.py",
    "gansweep/trainables/schedules.py",
)


def stage_code(into: Path, source: Path = PACKAGE_PARENT) -> Path:
    """Copy ``SHIPPED_MODULES`` from `source` (the folder holding ``gansweep/``) into
    `into`, file by file; returns `into`/gansweep, the one code path the model gets."""
    for module in SHIPPED_MODULES:
        target = into / module
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / module, target)
    return into / "gansweep"


def input_example(num_classes: int) -> pd.DataFrame:
    example: dict[str, list[Any]] = {"num_samples": [EXAMPLE_SAMPLES], "seed": [0]}
    if num_classes:
        example["labels"] = [[i % num_classes for i in range(EXAMPLE_SAMPLES)]]
    return pd.DataFrame(example)


def signature(num_classes: int, data_shape: list[int]) -> ModelSignature:
    columns: list[ColSpec | TensorSpec] = [
        ColSpec(DataType.long, "num_samples"),
        ColSpec(DataType.long, "seed"),
    ]
    if num_classes:
        columns.append(ColSpec(Array(DataType.long), "labels", required=False))
    outputs = Schema([TensorSpec(np.dtype(np.float32), (-1, *data_shape))])
    return ModelSignature(inputs=Schema(columns), outputs=outputs)


def _requirements() -> list[str]:
    """What the model needs installed: gansweep's own dependencies (no extras), with
    torch at the version that trained it."""
    wanted = importlib.metadata.requires("gansweep") or []
    plain = [r for r in wanted if "extra ==" not in r and not r.startswith("torch>")]
    return [f"torch=={torch.__version__.split('+')[0]}", *plain]


def log_and_register(
    tracking_uri: str, run_id: str, generator_file: Path, model_name: str, tags: dict[str, str]
) -> str:
    """Save the generator as a pyfunc model into `run_id`'s artifacts (``MODEL_DIR``),
    register it as a new version of `model_name` with the alias ``champion`` and `tags`.
    Returns the version.

    The model is logged as code (``MODEL_CODE``) with ``SHIPPED_MODULES`` as its only
    code path. It is saved to a folder and logged with the client, not with
    ``mlflow.pyfunc.log_model``: that needs the run active, and reopening the champion's
    finished trial run would change its status and end time."""
    state = torch.load(generator_file, map_location="cpu", weights_only=True)
    num_classes, data_shape = int(state["num_classes"]), [int(d) for d in state["data_shape"]]
    client = MlflowClient(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="gansweep-model-") as scratch:
        work = Path(scratch)
        folder = work / MODEL_DIR
        # The model file is copied to the scratch folder first: MLmodel records the path
        # it was saved from, and a path in the user's home says who and where.
        model_code = work / "source" / MODEL_CODE.name
        model_code.parent.mkdir()
        shutil.copyfile(MODEL_CODE, model_code)
        (work / "no-project").mkdir()
        mlflow.pyfunc.save_model(
            str(folder),
            python_model=str(model_code),
            artifacts={GENERATOR_ARTIFACT: str(generator_file)},
            code_paths=[str(stage_code(work / "code"))],
            signature=signature(num_classes, data_shape),
            input_example=input_example(num_classes),
            pip_requirements=_requirements(),
            # Left unset, MLflow looks for a uv project (uv.lock + pyproject.toml) in the
            # working directory and copies it into the model: whatever folder the user
            # exports from would be uploaded. An empty folder is no project.
            uv_project_path=str(work / "no-project"),
        )
        with_retries(lambda: client.log_artifacts(run_id, str(folder), MODEL_DIR))
    try:
        client.get_registered_model(model_name)
    except Exception:  # not registered yet
        client.create_registered_model(
            model_name, description="GAN generators exported by gansweep (pyfunc: samples)"
        )
    source = f"{with_retries(lambda: client.get_run(run_id)).info.artifact_uri}/{MODEL_DIR}"
    version = client.create_model_version(model_name, source=source, run_id=run_id, tags=tags)
    client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version.version)
    return str(version.version)
