"""The CLI's help texts read cleanly: no markup eaten by the help renderer, no sentence
ending in " ." where a "[default: ...]" inside a help string used to vanish."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gansweep.platform.cli import app

# Every command the app has, read from the app itself: a new command is checked too.
COMMANDS = [c.name or c.callback.__name__ for c in app.registered_commands]


def test_the_command_list_is_the_apps():
    assert {"train", "sweep", "resume", "replicate", "export", "report", "status", "ls",
            "spaces", "ui"} <= set(COMMANDS)  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_help_texts_end_cleanly(command):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    text = re.sub(r"[│╭╮╰╯─]", " ", result.output)
    assert not re.search(r"\w \.", text), text  # "Output folder ." or "Sweep name ."
    assert "[]" not in text and "()" not in text
    if command in ("train", "sweep"):
        # The computed defaults are still shown, as the default.
        shown = "runs/<dataset>-<combination>-<time>" if command == "train" else "<space>-<time>"
        assert f"[default: ({shown})]" in text


@pytest.mark.parametrize("command", [["--help"], ["ls"], ["sweep", "--help"]])
def test_the_fast_commands_load_neither_torch_nor_ray(command, tmp_path):
    """`gansweep --help` and `ls` read the CLI and the records only: torch and Ray (seconds
    of imports) load only where a sweep or a trial needs them."""
    from synthetic_sweep import make_sweep

    manifest = make_sweep(tmp_path, 6)  # `ls` reads its records
    command = (
        [*command, "--storage", str(Path(manifest.sweep_dir).parent)]
        if command == ["ls"]
        else command
    )
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from gansweep.platform.cli import app\n"
        f"result = CliRunner().invoke(app, {command!r})\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in ('torch', 'ray') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.strip().splitlines()[-1:] == ["[]"], out.stdout[-2000:] + out.stderr[-2000:]
