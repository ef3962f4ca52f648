"""Reports built from a sweep's MLflow runs (pandas) and its Optuna study.

`write_report(manifest)` writes ``<sweep_dir>/report.html``, one self-contained page
(it opens from disk, offline), and logs it to the sweep's MLflow parent run.
"""

from gansweep.dashboards.data import ReportError, SweepData, gather
from gansweep.dashboards.report import REPORT_FILE, SECTIONS, render, write_report

__all__ = [
    "REPORT_FILE",
    "SECTIONS",
    "ReportError",
    "SweepData",
    "gather",
    "render",
    "write_report",
]
