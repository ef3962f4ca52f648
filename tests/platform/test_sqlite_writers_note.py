"""`sweep` says when more trials at once than the embedded SQLite store holds up under
would write into it (sweep_input.SQLITE_WRITERS_MAX, measured by
benchmarks/sqlite_writers.py), and points to the server; prepare creates nothing."""

import pytest

from gansweep.platform.options import SweepOptions
from gansweep.platform.sweep_input import SQLITE_WRITERS_MAX, prepare


@pytest.mark.parametrize("in_flight", [SQLITE_WRITERS_MAX, SQLITE_WRITERS_MAX + 1])
def test_more_sqlite_writers_than_it_holds_up_under_are_warned_of(tmp_path, in_flight):
    options = SweepOptions(
        max_concurrent=in_flight,
        storage=str(tmp_path / "sweeps"),
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    notes = prepare(options).notes
    warned = [n for n in notes if "SQLite" in n]
    if in_flight > SQLITE_WRITERS_MAX:
        assert len(warned) == 1 and f"{in_flight} trials at once" in warned[0]
        assert "MLflow server" in warned[0] and "--tracking-uri" in warned[0]
    else:
        assert warned == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing created
