"""The small pieces every section of the report is made of: formatting, escaping, the
chart container and the shared colors."""

from __future__ import annotations

import base64
import html
import math

import pandas as pd
import plotly.graph_objects as go

from gansweep.dashboards.data import SweepData
from gansweep.records import ranking
from gansweep.records.store import redact

AXIS_TITLES = {"loss": "loss", "penalty": "penalty", "d_norm": "D normalization",
               "optimizer": "optimizer"}  # fmt: skip
STATUS_COLORS = {
    ranking.FINISHED: "#2ca02c", ranking.STOPPED_EARLY: "#ff7f0e", ranking.DIVERGED: "#d62728",
    ranking.FAILED: "#7f7f7f", ranking.RUNNING: "#1f77b4", ranking.INTERRUPTED: "#9467bd",
}  # fmt: skip
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}g}"


def fmt_seconds(seconds: float) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 120:
        return f"{minutes} min {secs} s"
    return f"{minutes // 60} h {minutes % 60} min"


def fmt_steps(step: float, planned: float) -> str:
    done = "–" if not math.isfinite(step) else f"{int(step):,}"
    return done if not math.isfinite(planned) else f"{done} / {int(planned):,}"


def png_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def scrolling(table: str) -> str:
    """A wide table in a box that scrolls sideways (the report's `.wide` style): a
    leaderboard with replication columns, every metric and the run ids is wider than the
    page, and its last columns were cut off. (Not the long table of all trials: a box
    that scrolls would stop its header from sticking to the top of the window.)"""
    return f'<div class="wide">{table}</div>'


def sentence(text: str) -> str:
    """A chart's stand-in when its data does not exist (yet); `text` is already HTML."""
    return f'<p class="empty">{text}</p>'


class Charts:
    """Turns figures into <div>s; plotly.js itself is embedded once, in the page head."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, fig: go.Figure, height: int = 420) -> str:
        self.count += 1
        fig.update_layout(
            height=height, template="plotly_white", margin=dict(l=60, r=30, t=60, b=50)
        )
        div = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            config=PLOTLY_CONFIG,
            div_id=f"chart-{self.count}",
            default_height=f"{height}px",
        )
        return f'<div class="chart">{div}</div>'


def run_link(data: SweepData, run_id: str) -> str:
    """The run id, linked to the MLflow UI where the store is a server."""
    uri = redact(data.manifest.tracking_uri)  # the report is shared: it shows no secret
    code = f"<code>{esc(run_id)}</code>"
    if uri.startswith(("http://", "https://")):
        href = f"{uri.rstrip('/')}/#/experiments/{data.manifest.experiment_id}/runs/{run_id}"
        return f'<a href="{esc(href)}">{code}</a>'
    return code


def better(data: SweepData) -> str:
    return "lower is better" if data.lower_is_better else "higher is better"


def worst_position(data: SweepData, values: pd.Series) -> float:
    """Where to draw diverged trials: just beyond the worst finite value."""
    low, high = float(values.min()), float(values.max())
    pad = 0.08 * (high - low) or 0.08 * abs(high) or 0.1
    return high + pad if data.lower_is_better else low - pad


def hover(frame: pd.DataFrame, data: SweepData) -> list[str]:
    return [
        f"{esc(r.run_name)}<br>{esc(r.status)}, step {fmt(r.step)}<br>"
        f"{esc(data.metric)} {fmt(r.value) if not r.diverged else 'diverged'}"
        for r in frame.itertuples()
    ]
