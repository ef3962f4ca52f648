"""The records of a sweep, the layer every other side shares: the MLflow run format
(run_format.py), which store it goes to (store.py), writing it (write.py), reading it
back (read.py), the sweep manifest (manifest.py), and the one rule for how a trial ended
and how trials rank (ranking.py, leaderboard.py).

trainables/trainable.py, platform/ and dashboards/ import this package; it imports none
of them (only the trial schema and files.py below it).
"""

from gansweep.records.leaderboard import Standings, config_from_params, run_config, standings
from gansweep.records.manifest import (
    MANIFEST_FILE,
    Manifest,
    Replication,
    SweepNotFoundError,
    list_sweeps,
)
from gansweep.records.store import TrackingError, check_tracking_store, resolve_tracking_uri

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
    "resolve_tracking_uri",
    "run_config",
    "standings",
]
