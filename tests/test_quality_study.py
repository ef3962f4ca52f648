"""benchmarks/quality_study.py: its verdicts on made-up rows, and its refusal of unknown
data sets and spaces, and of --retrain-only without champions (exit 2, nothing launched)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import quality_study as qs

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "quality_study.py"


def _row(modes: list[int], hq: list[float], distance: list[float] | None = None) -> dict:
    results = [
        {"modes_captured": m, "high_quality": h / 100, "distance": d, "diverged": False}
        for m, h, d in zip(modes, hq, distance or [0.1] * len(modes), strict=True)
    ]
    row = qs.row("ring8", "m", results)
    row["champion"] = "ns-adam"
    return row


def test_a_space_beats_the_default_only_in_modes_and_high_quality():
    default = _row([6, 7, 8, 8, 4], [93.6, 96.4, 95.5, 93.0, 95.4])
    both = qs.space_verdict("quality", _row([8] * 5, [95.0] * 5), default)
    assert both["beats_default"] and both["beats_default_in_modes"] and both["beats_default_in_hq"]
    assert both["seeds_modes_at_least_default"] == "5/5"
    assert both["seeds_hq_above_default"] == "2/5"  # 95.0 is below 96.4, 95.5 and 95.4
    # More modes, less sharp: not a win.
    blurry = qs.space_verdict("landscape", _row([8] * 5, [4.2] * 5), default)
    assert blurry["beats_default_in_modes"] and not blurry["beats_default_in_hq"]
    assert not blurry["beats_default"]
    # Sharper, fewer modes: not a win either.
    collapsed = qs.space_verdict("quick", _row([4] * 5, [99.0] * 5), default)
    assert not collapsed["beats_default_in_modes"] and collapsed["beats_default_in_hq"]
    assert not collapsed["beats_default"]


def test_a_tie_at_every_mode_counts_as_holding_the_modes():
    full = _row([8] * 5, [90.0] * 5)
    assert qs.space_verdict("quick", _row([8] * 5, [95.0] * 5), full)["beats_default"]
    # A tie below the ceiling is no win in modes.
    seven = _row([7] * 5, [90.0] * 5)
    assert not qs.space_verdict("quick", _row([7] * 5, [95.0] * 5), seven)["beats_default"]


def test_the_targets_are_judged_on_every_seed():
    default = _row([8] * 5, [90.0] * 5, [0.5] * 5)
    met = qs.verdict("ring8", _row([8] * 5, [97.0, 97.0, 97.0, 97.0, 97.5], [0.1] * 5), default)
    assert met["target_met"] and met["beats_default_on_every_seed"]
    one_low = _row([8] * 5, [99.0, 99.0, 99.0, 99.0, 94.9], [0.1, 0.1, 0.1, 0.1, 0.6])
    missed = qs.verdict("ring8", one_low, default)
    assert not missed["target_met"]  # mean 98.2 %, but 94.9 % at worst
    assert not missed["beats_default_on_every_seed"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--datasets", "ring9"], "unknown data set 'ring9'; valid: ring8, grid25, digits"),
        (["--spaces", "quick,digits"], "unknown space 'digits'; valid: quick, landscape"),
        (
            ["--retrain-only", "--datasets", "", "--spaces", "quick", "--champions", "nowhere"],
            "--retrain-only, but no champion nowhere/spaces/quick.yaml",
        ),
    ],
)
def test_unknown_names_exit_2_before_anything_runs(args, message, tmp_path):
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *args, "--workdir", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "work").exists()
