"""The champion as an MLflow model: a pyfunc over ``load_generator``, so anything in the
MLflow ecosystem (``mlflow.pyfunc.load_model``, ``mlflow models serve``, the model page's
schema) can draw samples from it.

Input: a table, one request per row: ``num_samples``, ``seed`` and, for a conditional
generator, ``labels`` (one class per sample; omitted: the classes in turn). Output: the
samples of every row, in order, as one float32 array [sum of num_samples, *data shape]
(a mixture's points, or images in [-1, 1]). The same seed gives the same samples.

The model carries the gansweep package (``code_paths``) and the weights-only
``generator.pt``; nothing is unpickled but this small class.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow import MlflowClient
from mlflow.models import ModelSignature
from mlflow.pyfunc.model import PythonModel
from mlflow.types import ColSpec, DataType, Schema, TensorSpec
from mlflow.types.schema import Array

from gansweep.records.store import with_retries
from gansweep.trainables.engine import load_generator

MODEL_DIR = "champion_model"  # the pyfunc model's folder in the champion trial's run
GENERATOR_ARTIFACT = "generator"  # its key in the model's artifacts
CHAMPION_ALIAS = "champion"
EXAMPLE_SAMPLES = 16
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # gansweep/, copied into the model


class GeneratorModel(PythonModel):
    """Samples from a gansweep generator, on CPU."""

    def load_context(self, context: Any) -> None:
        path = context.artifacts[GENERATOR_ARTIFACT]
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.z_dim = int(state["config"]["z_dim"])
        self.num_classes = int(state["num_classes"])
        self.generator = load_generator(path)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.concatenate([self._draw(row) for row in model_input.to_dict("records")])

    def _draw(self, row: dict[str, Any]) -> np.ndarray:
        n, seed = int(row["num_samples"]), int(row["seed"])
        rng = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=rng)
        labels = None
        if self.num_classes:
            given = row.get("labels")
            if given is None or (isinstance(given, float) and np.isnan(given)):
                labels = torch.arange(n) % self.num_classes
            else:
                labels = torch.as_tensor(np.asarray(given, dtype=np.int64))
                outside = (labels < 0) | (labels >= self.num_classes)
                if labels.shape != (n,) or bool(outside.any()):
                    raise ValueError(
                        f"labels must be {n} class numbers in 0..{self.num_classes - 1}, "
                        f"got {np.asarray(given).tolist()}"
                    )
        with torch.no_grad():
            return self.generator(z, labels).numpy().astype(np.float32)


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

    The model is saved to a folder and logged with the client, not with
    ``mlflow.pyfunc.log_model``: that needs the run active, and reopening the champion's
    finished trial run would change its status and end time."""
    state = torch.load(generator_file, map_location="cpu", weights_only=True)
    num_classes, data_shape = int(state["num_classes"]), [int(d) for d in state["data_shape"]]
    client = MlflowClient(tracking_uri)
    with tempfile.TemporaryDirectory(prefix="gansweep-model-") as scratch:
        folder = Path(scratch) / MODEL_DIR
        mlflow.pyfunc.save_model(
            str(folder),
            python_model=GeneratorModel(),
            artifacts={GENERATOR_ARTIFACT: str(generator_file)},
            code_paths=[str(PACKAGE_DIR)],
            signature=signature(num_classes, data_shape),
            input_example=input_example(num_classes),
            pip_requirements=_requirements(),
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
