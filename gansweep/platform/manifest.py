"""The sweep manifest: ``<storage>/<name>/gansweep.json``, what `resume`, `export` and
`report` need to find a sweep's Tune experiment, Optuna study and MLflow runs."""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_FILE = "gansweep.json"
STUDY_FILE = "optuna.db"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SweepNotFoundError(LookupError):
    """No sweep of that name in that storage folder."""


@dataclass
class Manifest:
    name: str
    sweep_dir: str  # the Tune experiment folder; everything of the sweep lives in it
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    study_name: str
    space: str  # the space's name or path, as given
    space_source: str  # the space's YAML text, so the sweep can be rebuilt anywhere
    options: dict[str, Any] = field(default_factory=dict)  # the sweep options
    status: str = "running"  # running | finished | interrupted
    created: str = ""

    @property
    def study_storage(self) -> str:
        return f"sqlite:///{Path(self.sweep_dir) / STUDY_FILE}"

    def save(self) -> None:
        """Atomic: a crash leaves the old manifest or the new one, never half of one."""
        path = Path(self.sweep_dir) / MANIFEST_FILE
        tmp = path.with_name(f".{MANIFEST_FILE}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, storage: str | Path, name: str) -> Manifest:
        path = Path(storage).expanduser().resolve() / name / MANIFEST_FILE
        if not path.is_file():
            known = list_sweeps(storage)
            raise SweepNotFoundError(
                f"no sweep named {name!r} in {Path(storage).resolve()}; "
                f"known sweeps there: {', '.join(known) if known else 'none'}"
            )
        return cls(**json.loads(path.read_text()))


def list_sweeps(storage: str | Path) -> list[str]:
    root = Path(storage).expanduser()
    if not root.is_dir():
        return []
    return sorted(p.parent.name for p in root.glob(f"*/{MANIFEST_FILE}"))


def check_sweep_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"sweep name {name!r} is not valid: use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit, at most 100 characters)"
        )
    return name
