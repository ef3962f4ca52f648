"""The sweep report: one self-contained HTML page (plotly.js inline, images as data URIs)
that opens from disk with no server and no internet.

Sections follow the questions the large GAN studies ask (Lucic et al. 2018, Kurach et
al. 2019): which configs won, and do they hold on fresh seeds; how each loss, penalty,
normalization and optimizer fares over the whole search at equal budget (the
"landscape"); how often each loss breaks; which parameters mattered, which of their
values won and whether beyond the noise; and how the best result grows with budget
("best score for budget k").

Every section is always present; where the data for a chart does not exist yet (no
finished trial, all diverged, too few trials for importances) it says so in a sentence.
The sections live in sections_results.py, sections_landscape.py, sections_search.py and
sections_axes.py.
"""

from __future__ import annotations

from pathlib import Path

from plotly.offline import get_plotlyjs

from gansweep.dashboards.data import SweepData, gather
from gansweep.dashboards.sections_axes import section_axes
from gansweep.dashboards.sections_landscape import (
    section_landscape,
    section_seeds,
    section_stability,
)
from gansweep.dashboards.sections_results import (
    section_header,
    section_leaderboard,
    section_samples,
    section_trials,
)
from gansweep.dashboards.sections_search import section_budget, section_curves, section_importance
from gansweep.dashboards.widgets import Charts, esc
from gansweep.files import atomic_write_text
from gansweep.records.manifest import Manifest
from gansweep.records.write import log_sweep_artifacts

REPORT_FILE = "report.html"
# (anchor, heading) of every section, in page order.
SECTIONS = (
    ("leaderboard", "Leaderboard"),
    ("seeds", "Spread over seeds"),
    ("landscape", "The landscape"),
    ("stability", "Stability"),
    ("curves", "Learning curves"),
    ("importance", "What mattered"),
    ("axes", "Which axes mattered"),
    ("budget", "Budget"),
    ("samples", "Samples"),
    ("trials", "All trials"),
)


def write_report(manifest: Manifest, out: Path | None = None, log_to_mlflow: bool = True) -> Path:
    """Write the sweep's report (default ``<sweep_dir>/report.html``) and, unless told
    not to, log it as an artifact of the sweep's MLflow parent run. Returns its path.

    Raises gansweep.dashboards.ReportError if the tracking store cannot be read.
    """
    page = render(gather(manifest))
    out = Path(out) if out is not None else Path(manifest.sweep_dir) / REPORT_FILE
    atomic_write_text(out, page)  # a reader never sees half a page
    if log_to_mlflow:
        log_sweep_artifacts(manifest.tracking_uri, manifest.parent_run_id, [out])
    return out


RENDERERS = {
    "leaderboard": section_leaderboard,
    "landscape": section_landscape,
    "stability": section_stability,
    "seeds": section_seeds,
    "curves": section_curves,
    "importance": section_importance,
    "axes": section_axes,
    "budget": section_budget,
    "samples": section_samples,
    "trials": section_trials,
}

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1280px; padding: 0 24px 48px; color: #222; }
header { border-bottom: 1px solid #ddd; margin-bottom: 8px; }
h1 { margin: 24px 0 8px; } h2 { margin-top: 36px; border-bottom: 1px solid #eee; }
.meta { color: #666; font-size: 12px; } nav a { margin: 0 2px; }
.note { color: #8a6d3b; background: #fcf8e3; padding: 6px 10px; border-radius: 4px; }
.empty { color: #555; background: #f5f5f5; padding: 10px 14px; border-left: 4px solid #bbb; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
.wide { overflow-x: auto; max-width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: left;
         vertical-align: middle; }
th { background: #fafafa; position: sticky; top: 0; }
img.thumb { width: 96px; height: auto; display: block; }
.chart { margin: 12px 0; border: 1px solid #eee; border-radius: 4px; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr));
           gap: 12px; }
.gallery figure { margin: 0; border: 1px solid #eee; padding: 6px; }
.gallery img { width: 100%; height: auto; }
figcaption { font-size: 12px; }
.s-diverged { color: #d62728; } .s-failed { color: #7f7f7f; }
.s-stopped_early { color: #ff7f0e; } .s-finished { color: #2ca02c; }
code { font-size: 12px; }
"""


def render(data: SweepData) -> str:
    """The whole page as one string."""
    charts = Charts()
    body = [section_header(data, SECTIONS)]
    for anchor, title in SECTIONS:
        content = RENDERERS[anchor](data, charts)
        body.append(f'<section id="{anchor}">\n<h2>{esc(title)}</h2>\n{content}\n</section>')
    # plotly.js once, inline, so the page works from disk with no network at all.
    script = f'<script type="text/javascript">{get_plotlyjs()}</script>' if charts.count else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="gansweep-charts" content="{charts.count}">
<title>gansweep report: {esc(data.manifest.name)}</title>
<style>{STYLE}</style>
{script}
</head>
<body>
{chr(10).join(body)}
</body>
</html>
"""
