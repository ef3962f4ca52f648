"""The champion's pyfunc model, logged as MLflow "models from code": this file is copied
into the model and executed when the model loads; ``mlflow.models.set_model`` at the
bottom hands MLflow the model. Nothing is pickled, so loading the model runs only this
source and the package modules shipped beside it (``champion_model.SHIPPED_MODULES``),
which a reader can review in the run's artifacts.

Input: a table, one request per row: ``num_samples`` (1 to ``MAX_SAMPLES``), ``seed`` (0
to 2**63 - 1) and, for a conditional generator, ``labels`` (one class per sample;
omitted: the classes in turn). Output: the samples of every row, in order, as one float32
array [sum of num_samples, *data shape] (a mixture's points, or images in [-1, 1]). The
same seed gives the same samples. A request is checked whole before anything is drawn:
one bad row refuses the request, with the value and the limit it broke.

Imports only the generator's loader from the package (and no module of
``gansweep.platform``), so that the shipped list stays the loader's import closure.
"""

from __future__ import annotations

import numbers
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.pyfunc.model import PythonModel

from gansweep.trainables.engine import load_generator

GENERATOR_ARTIFACT = "generator"  # the weights' key in the model's artifacts
# The most samples one request may ask for, over all its rows (so per row too). A served
# model must not let one request allocate without bound: 100,000 of ring8's points are
# 0.8 MB; of 32x32 RGB images, 1.2 GB, already more than a sane single request.
MAX_SAMPLES = 100_000
MAX_SEED = 2**63 - 1  # the seed column is int64; torch seeds take any of them


def whole_number(value: Any, name: str) -> int:
    """`value` as an int when it is a whole number (an int, or a float such as 16.0 that a
    table column with a missing value turns ints into); a ValueError naming it otherwise.
    Booleans are refused: True is not a count."""
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    number = float(value)
    if not number.is_integer():  # NaN and inf included
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(number)


def sample_count(value: Any) -> int:
    """A row's ``num_samples``, checked against 1..MAX_SAMPLES."""
    n = whole_number(value, "num_samples")
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"num_samples must be from 1 to {MAX_SAMPLES:,}, got {n:,}")
    return n


def seed_of(value: Any) -> int:
    """A row's ``seed``, checked against 0..MAX_SEED."""
    seed = whole_number(value, "seed")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be from 0 to {MAX_SEED}, got {seed}")
    return seed


def _missing(value: Any) -> bool:
    """A cell left empty: None, or the NaN pandas puts in a row without the column."""
    return value is None or (isinstance(value, float) and np.isnan(value))


def labels_of(value: Any, n: int, num_classes: int) -> torch.Tensor | None:
    """A row's ``labels`` as a long tensor [n]: the classes in turn when omitted, None
    for an unconditional generator (which takes none: giving some is refused, as they
    would be silently ignored)."""
    if not num_classes:
        if not _missing(value):
            raise ValueError("this generator is unconditional: it takes no labels")
        return None
    if _missing(value):
        return torch.arange(n) % num_classes
    given = np.asarray(value)
    integral = given.dtype.kind in "iu" or (
        given.dtype.kind == "f" and bool(np.isfinite(given).all() and (given % 1 == 0).all())
    )
    if given.shape != (n,) or not integral or bool(((given < 0) | (given >= num_classes)).any()):
        raise ValueError(
            f"labels must be {n} class numbers in 0..{num_classes - 1}, got {given.tolist()}"
        )
    return torch.as_tensor(given.astype(np.int64))


def checked_request(rows: list[dict[str, Any]], num_classes: int) -> list[tuple[int, int, Any]]:
    """Every row as (num_samples, seed, labels), the whole request checked before a
    sample is drawn; the total is bounded by MAX_SAMPLES as each row is."""
    if not rows:
        raise ValueError("the request has no rows")
    counts = [sample_count(row.get("num_samples")) for row in rows]
    if sum(counts) > MAX_SAMPLES:
        raise ValueError(
            f"a request may ask for at most {MAX_SAMPLES:,} samples over all its rows, "
            f"got {sum(counts):,} over {len(rows)} rows"
        )
    return [
        (n, seed_of(row.get("seed")), labels_of(row.get("labels"), n, num_classes))
        for n, row in zip(counts, rows, strict=True)
    ]


class GeneratorModel(PythonModel):
    """Samples from a gansweep generator, on CPU."""

    def load_context(self, context: Any) -> None:
        path = context.artifacts[GENERATOR_ARTIFACT]
        self.generator = load_generator(path)
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.z_dim = int(state["config"]["z_dim"])
        self.num_classes = int(state["num_classes"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        request = checked_request(model_input.to_dict("records"), self.num_classes)
        return np.concatenate([self._draw(n, seed, labels) for n, seed, labels in request])

    def _draw(self, n: int, seed: int, labels: torch.Tensor | None) -> np.ndarray:
        z = torch.randn(n, self.z_dim, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            return self.generator(z, labels).numpy().astype(np.float32)


mlflow.models.set_model(GeneratorModel())
