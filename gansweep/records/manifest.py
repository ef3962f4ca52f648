"""The sweep manifest: ``<storage>/<name>/gansweep.json``, what `resume`, `replicate`,
`export` and `report` need to find a sweep's Tune experiments, Optuna study and MLflow
runs."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gansweep.files import atomic_write_text
from gansweep.records.run_format import SweepRecords
from gansweep.records.store import TrackingError, refuse_secrets

# The files of a sweep folder (<storage>/<name>/) besides the Tune experiment's own.
MANIFEST_FILE = "gansweep.json"
STUDY_FILE = "optuna.log"  # the Optuna study's journal (records/study_store.py)
LEGACY_STUDY_FILE = "optuna.db"  # the study of a sweep made before the journal (SQLite)
SPACE_FILE = "space.yaml"
LEADERBOARD_FILE = "leaderboard.csv"
BEST_FILE = "best.yaml"
REPLICAS_DIR = "replicas"  # the replication's Tune experiment
LOG_FILE = "driver.log"  # Ray's, Tune's and MLflow's own output in the driver
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class SweepNotFoundError(LookupError):
    """No sweep of that name in that storage folder."""


@dataclass
class Replication:
    """Top configs of the sweep retrained on fresh seeds (``gansweep replicate``)."""

    top: int
    seeds: list[int]  # the fresh seeds, the same for every config
    trial_ids: list[str]  # the replicated trials, best first when the replication began
    status: str = "running"  # running | finished | interrupted


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
    replication: Replication | None = None
    # "<host>:<pid>" of the driver that last ran the sweep: `status` tells a sweep whose
    # driver died (still marked running) from one that runs.
    driver: str = ""
    # The Optuna study's file in the sweep folder; a manifest without one is older than
    # the journal and keeps its SQLite study (from_json).
    study_file: str = STUDY_FILE

    def __post_init__(self) -> None:
        # Every command but `sweep` and `ui` takes the tracking URI from here, so a URI
        # with a secret (an older gansweep wrote one given in a query string) stops here,
        # before it is used, shown, or copied into best.yaml, the report or MLflow.
        for field_name, uri in (
            ("tracking_uri", self.tracking_uri),
            ("options.tracking_uri", self.options.get("tracking_uri")),
        ):
            try:
                refuse_secrets(uri or "")
            except TrackingError as err:
                where = Path(self.sweep_dir) / MANIFEST_FILE
                raise TrackingError(
                    f"sweep {self.name!r}: {err} (edit {field_name} in {where})"
                ) from None

    @property
    def study_path(self) -> Path:
        return Path(self.sweep_dir) / self.study_file

    @property
    def records(self) -> SweepRecords:
        """Where the sweep's runs are recorded, as every trial needs it."""
        return SweepRecords(self.tracking_uri, self.experiment_id, self.parent_run_id, self.name)

    @property
    def replicas_dir(self) -> Path:
        return Path(self.sweep_dir) / REPLICAS_DIR

    @property
    def seeds_planned(self) -> int:
        """The fresh seeds each replicated config is to train on (0: no replication): the
        replication's plan once fixed, else what the sweep's options ask for. Under ASHA
        and FIFO replicas start inside the search, before the plan is fixed
        (platform/backfill.py): the ranking must know then too how many seeds make a
        config's replication complete."""
        if self.replication is not None:
            return len(self.replication.seeds)
        if int(self.options.get("replicate_top") or 0) <= 0:
            return 0
        return int(self.options.get("seeds") or 0)

    @property
    def metric(self) -> str:
        return str(self.options.get("metric") or "distance")

    @property
    def mode(self) -> str:
        return str(self.options.get("mode") or "min")

    def save(self) -> None:
        """Atomic: a crash leaves the old manifest or the new one, never half of one."""
        atomic_write_text(Path(self.sweep_dir) / MANIFEST_FILE, json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, storage: str | Path, name: str) -> Manifest:
        path = Path(storage).expanduser().resolve() / name / MANIFEST_FILE
        if not path.is_file():
            known = list_sweeps(storage)
            raise SweepNotFoundError(
                f"no sweep named {name!r} in {Path(storage).resolve()}; "
                f"known sweeps there: {', '.join(known) if known else 'none'}"
            )
        return cls.from_json(path.read_text())

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        values = json.loads(text)
        values.setdefault("study_file", LEGACY_STUDY_FILE)
        if values.get("replication") is not None:
            values["replication"] = Replication(**values["replication"])
        return cls(**values)


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
