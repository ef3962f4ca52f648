"""The live view of a sweep: one line per trial event on a terminal that is not
interactive, the libraries' own output in the sweep folder's driver.log, and (slow) a
real 8-trial sweep whose whole output fits in 60 lines with no traceback."""

import importlib.util
import io
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from gansweep.platform.live_view import LOG_FILE, LiveView, render
from gansweep.records.manifest import Manifest
from gansweep.records.progress import progress
from gansweep.records.run_format import TrialIdentity
from gansweep.records.write import TrialRun
from gansweep.trainables.config import TrialConfig

_spec = importlib.util.spec_from_file_location(
    "synthetic_sweep", Path(__file__).parents[1] / "dashboards" / "synthetic_sweep.py"
)
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


def test_a_non_interactive_view_prints_one_line_per_ended_run_once(tmp_path):
    manifest = synthetic.make_sweep(tmp_path, 6, name="v", status="running", failed=0.0)
    out = io.StringIO()
    view = LiveView(str(tmp_path / "sweeps"), "v", Console(file=out), interactive=False)
    view._poll()
    view._poll()  # nothing new: nothing printed
    lines = out.getvalue().splitlines()
    assert len(lines) == 6
    # Six runs that ended between two polls: numbered 1 to 6, not all "6".
    assert [line.split("/")[0] for line in lines] == [f"[{i}" for i in range(1, 7)]
    assert all(" at step " in line for line in lines)
    # A trial that ends after the last poll gets its line at the next one.
    cfg = TrialConfig(dataset="ring8", steps=1500, eval_every=500)
    run = TrialRun(
        TrialIdentity(manifest.records, "bbbb0001", cfg.combination, None), cfg.model_dump()
    )
    run.log_evaluation({"distance": 0.25, "step": 500.0, "diverged": 0.0}, 500, [])
    view._poll()
    assert len(out.getvalue().splitlines()) == 6  # running: no event yet
    run.finish("stopped_early")
    view._poll()
    last = out.getvalue().splitlines()[-1]
    assert "bbbb0001: stopped_early at step 500/1500, distance 0.25" in last
    assert last.startswith("[7/")


def test_the_rendered_view_has_the_progress_line_and_table(tmp_path):
    synthetic.make_sweep(tmp_path, 6, name="r", failed=0.0)
    shown = progress(Manifest.load(tmp_path / "sweeps", "r"))
    out = io.StringIO()
    Console(file=out, width=160).print(render(shown))
    text = out.getvalue()
    assert text.startswith("r: finished | trials 6 done / 0 running / 0 pending of 6")
    assert "running and best trials (distance, min)" in text
    assert f"{shown.rows[0].step}/{shown.rows[0].steps}" in text


def test_an_interactive_view_redraws_the_table_in_place(tmp_path):
    synthetic.make_sweep(tmp_path, 4, name="i", status="running", failed=0.0)
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with LiveView(str(tmp_path / "sweeps"), "i", console, interactive=True) as view:
        view._poll()
    text = out.getvalue()
    assert "\x1b[" in text  # drawn with cursor movements, not appended line by line
    assert "i: running | trials 4 done / 0 running / 0 pending of 4" in text
    assert "running and best trials" in text


def test_an_interactive_view_leaves_stdout_and_stderr_to_the_log(tmp_path):
    """rich's Live, by default, points sys.stdout and sys.stderr at its terminal while it
    runs: Tune's tables and the workers' lines would go around driver.log (issue 21)."""
    synthetic.make_sweep(tmp_path, 2, name="s", status="running", failed=0.0)
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    before = sys.stdout, sys.stderr
    with LiveView(str(tmp_path / "sweeps"), "s", console, interactive=True):
        assert (sys.stdout, sys.stderr) == before


def test_library_output_goes_to_the_log_and_the_view_to_the_terminal(tmp_path):
    """Python prints, C-level writes to fd 2 and the view's own lines, in a process of
    its own (the redirection is of the process's file descriptors)."""
    script = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        from gansweep.platform.live_view import quiet_libraries
        with quiet_libraries(Path({str(tmp_path)!r}), verbose=False) as terminal:
            print("tune status table")
            os.write(2, b"raylet chatter\\n")
            terminal.write("view line\\n")
        print("after")
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["view line", "after"] and proc.stderr == ""
    log = (tmp_path / LOG_FILE).read_text()
    assert "tune status table" in log and "raylet chatter" in log


@pytest.mark.slow
def test_an_8_trial_sweep_writes_at_most_60_lines_and_no_traceback(tmp_path):
    env = {**os.environ, "RAY_ADDRESS": ""}
    command = [sys.executable, "-m", "gansweep.platform.cli", "sweep", "--name", "watch"]
    tiny = ["--set", "steps=300", "--set", "eval_every=100", "--set", "eval_samples=500"]
    proc = subprocess.run(
        [*command, "--num-samples", "8", "--max-concurrent", "2", *tiny],
        cwd=tmp_path, capture_output=True, text=True, timeout=1500, env=env,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    lines = output.splitlines()
    assert len(lines) <= 60, output
    assert "Traceback" not in output and "SystemExit" not in output
    assert sum(" trials] " in line for line in lines) == 8  # one line per trial's end
    assert "leaderboard (top" in output and "best config:" in output
    log = (tmp_path / "sweeps" / "watch" / LOG_FILE).read_text()
    assert log.strip(), "the libraries' output is in the sweep folder"
