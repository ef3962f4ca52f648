"""The trainables a sweep can run (`--trainable`): the function Tune calls for each trial.

The platform runs a trainable; it does not know which. Every trainable has one contract,
so the searcher, the schedulers, the ranking, replication, export and the report cannot
tell two apart:
- it is called as ``function(config, context)``: ``config`` is the trial's Tune config
  (TrialConfig fields; a replica's also holds ``records.run_format.REPLICA_KEY``), and
  ``context`` the sweep's ``records.run_format.SweepRecords``;
- it records its run through ``records.write.TrialRun`` (params, a metric batch at every
  evaluation, the outcome at the end) and reports every metric of
  ``trainables.metric_registry.METRICS`` that its data reports, plus ``step`` and
  ``diverged``, to ``ray.tune.report`` with a checkpoint it can resume from.

A trainable is chosen by its registry name (``gan``, the default), or by a reference to a
function kept elsewhere: ``package.module:function`` (importable on every node), or
``path/to/file.py:function`` (the file is sent to Ray's workers with the function, so
it need not be importable there; benchmarks/landscape/replay.py is one).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class TrainableError(ValueError):
    """A --trainable that does not name a trainable; the message says what would."""


@dataclass(frozen=True)
class TrainableSpec:
    """A built-in trainable: where its function is, imported only when a sweep runs (the
    GAN trainable loads torch), and one line for the CLI's help."""

    target: str  # "package.module:function"
    description: str


TRAINABLES: dict[str, TrainableSpec] = {
    "gan": TrainableSpec(
        "gansweep.platform.trial:train_gan", "trains a GAN (trainables/engine.py)"
    ),
}
DEFAULT_TRAINABLE = "gan"
FORMS = "MODULE:FUNCTION or FILE.py:FUNCTION"


def load_trainable(name: str) -> Callable[..., Any]:
    """The function a --trainable names (a registry name or a reference, see above).

    Raises TrainableError naming the registry and the reference forms."""
    target = TRAINABLES[name].target if name in TRAINABLES else name
    where, sep, attr = target.rpartition(":")
    valid = f"valid: {', '.join(TRAINABLES)}, or {FORMS}"
    if not sep or not where or not attr.isidentifier():
        raise TrainableError(f"unknown trainable {name!r}; {valid}")
    if where.endswith(".py"):
        module = _module_from_file(Path(where), name, valid)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as err:
            raise TrainableError(f"trainable {name!r}: cannot import {where!r} ({err})") from None
    function = getattr(module, attr, None)
    if not callable(function):
        raise TrainableError(f"trainable {name!r}: {where!r} has no function {attr!r}")
    return function


def canonical(name: str) -> str:
    """The --trainable as the manifest keeps it: a file reference made absolute, so that
    `resume` from another folder finds the same file."""
    where, sep, attr = name.rpartition(":")
    if sep and where.endswith(".py"):
        return f"{Path(where).expanduser().resolve()}:{attr}"
    return name


def _module_from_file(path: Path, name: str, valid: str) -> Any:
    path = path.expanduser().resolve()
    if not path.is_file():
        raise TrainableError(f"trainable {name!r}: no file {str(path)!r}; {valid}")
    module_name = f"gansweep_trainable_{path.stem}"
    module = sys.modules.get(module_name)
    if module is None or getattr(module, "__file__", None) != str(path):
        spec = importlib.util.spec_from_file_location(module_name, path)
        assert spec is not None and spec.loader is not None, "a .py file always has a loader"
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
    # Ray's workers cannot import a module that lives only in a file on the driver: send
    # its code with the function (its own imports, gansweep's included, stay imports).
    from ray import cloudpickle  # deferred: the CLI's fast path loads no Ray

    cloudpickle.register_pickle_by_value(module)
    return module
