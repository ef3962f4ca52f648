"""The CLI's help texts read cleanly: no markup eaten by the help renderer, no sentence
ending in " ." where a "[default: ...]" inside a help string used to vanish."""

import re

import pytest
from typer.testing import CliRunner

from gansweep.platform.cli import app

COMMANDS = ["train", "sweep", "resume", "replicate", "export", "report", "spaces", "ui"]


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
