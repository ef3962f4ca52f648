"""The records of a sweep, the layer every other side shares: the MLflow run format
(run_format.py), which store it goes to (store.py), writing it (write.py), reading it
back (read.py), the sweep manifest (manifest.py), the Optuna study's file
(study_store.py), and the one rule for how a trial ended and how trials rank
(ranking.py, leaderboard.py).

platform/ (the GAN trainable, trial.py, among it) and dashboards/ import this package;
it imports none of them (only the trial schema, the metric registry and files.py).

The names load on first use (PEP 562): a trial that imports run_format or write.py does
not load the leaderboard, and with it the trial schema and torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gansweep.records.leaderboard import (
        Standings,
        config_from_params,
        run_config,
        standings,
    )
    from gansweep.records.manifest import (
        MANIFEST_FILE,
        Manifest,
        Replication,
        SweepNotFoundError,
        list_sweeps,
    )
    from gansweep.records.store import (
        TrackingError,
        check_tracking_store,
        redact,
        resolve_tracking_uri,
    )

_WHERE = {
    "MANIFEST_FILE": "gansweep.records.manifest",
    "Manifest": "gansweep.records.manifest",
    "Replication": "gansweep.records.manifest",
    "Standings": "gansweep.records.leaderboard",
    "SweepNotFoundError": "gansweep.records.manifest",
    "TrackingError": "gansweep.records.store",
    "check_tracking_store": "gansweep.records.store",
    "config_from_params": "gansweep.records.leaderboard",
    "list_sweeps": "gansweep.records.manifest",
    "redact": "gansweep.records.store",
    "resolve_tracking_uri": "gansweep.records.store",
    "run_config": "gansweep.records.leaderboard",
    "standings": "gansweep.records.leaderboard",
}
__all__ = [
    "MANIFEST_FILE",
    "Manifest",
    "Replication",
    "Standings",
    "SweepNotFoundError",
    "TrackingError",
    "check_tracking_store",
    "config_from_params",
    "list_sweeps",
    "redact",
    "resolve_tracking_uri",
    "run_config",
    "standings",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'gansweep.records' has no attribute {name!r}")
