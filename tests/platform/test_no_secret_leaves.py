"""A tracking URI that carries a secret, through the real console script: every command
refuses it (exit 2) with a message that shows it redacted, before anything is launched or
written, and the secret lands in no output and no file (the home and temp folders of the
command included: logs and caches go there).

Two ways a URI reaches a command: `sweep` and `ui` take it on the command line; the
others read it from a sweep's manifest, where an older gansweep wrote a URI with a
password in its query string."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "hunter2-SECRET"
GIVEN = {
    "postgresql": (
        f"postgresql://u@127.0.0.1:1/db?password={SECRET}",
        "postgresql://u@127.0.0.1:1/db?password=***",
    ),
    "http": (f"http://127.0.0.1:1/?token={SECRET}", "http://127.0.0.1:1/?token=***"),
}
# As gansweep wrote it before query-string secrets were refused (the URI in two places).
OLD_MANIFEST = {
    "name": "old", "tracking_uri": GIVEN["postgresql"][0], "experiment_id": "1",
    "parent_run_id": "0123456789abcdef", "study_name": "old", "space": "quick",
    "space_source": "params: {}\n", "options": {"tracking_uri": GIVEN["postgresql"][0]},
    "status": "finished", "created": "2025-01-01T00:00:00+0000", "replication": None,
    "driver": "",
}  # fmt: skip


def run_gansweep(root: Path, *args: str) -> subprocess.CompletedProcess:
    """The console script in `root/work`, with its home and temp folders under `root`."""
    env = {**os.environ, "HOME": str(root / "home"), "TMPDIR": str(root / "tmp")}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run(
        [sys.executable, "-m", "gansweep.platform.cli", *args],
        cwd=root / "work", env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def holding(root: Path, secret: str) -> list[Path]:
    """Every file under `root` whose bytes contain `secret`."""
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


@pytest.fixture
def root(tmp_path):
    for folder in ("work", "home", "tmp"):
        (tmp_path / folder).mkdir()
    return tmp_path


def assert_refused(result: subprocess.CompletedProcess, shown: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"tracking URI {shown} carries a secret" in result.stderr
    assert SECRET not in output
    assert "Traceback" not in output


SWEEP = ["sweep", "--storage", "sweeps", "--name", "s", "--num-samples", "1"]
UI = ["ui", "--port", "1"]


# `sweep` imports Ray and torch before it reads its input (seconds): one kind of URI for
# it, both for `ui`. The kinds meet in one function, resolve_tracking_uri.
@pytest.mark.parametrize(
    ("command", "kind"),
    [(SWEEP, "postgresql"), (UI, "postgresql"), (UI, "http")],
    ids=["sweep-postgresql", "ui-postgresql", "ui-http"],
)
def test_a_uri_given_with_a_secret_is_refused_and_written_nowhere(root, command, kind):
    uri, shown = GIVEN[kind]

    result = run_gansweep(root, *command, "--tracking-uri", uri)

    assert_refused(result, shown)
    where = "PGPASSWORD" if kind == "postgresql" else "MLFLOW_TRACKING_PASSWORD"
    assert where in result.stderr
    assert holding(root, SECRET) == []
    assert list((root / "work").iterdir()) == []  # no sweeps/, no mlflow.db


@pytest.mark.parametrize(
    "command",
    [
        ["export", "old"],
        ["report", "old"],
        ["status", "old"],
        ["resume", "old"],
        ["replicate", "old"],
        ["ls"],
    ],
    ids=lambda c: c[0],
)
def test_a_manifest_that_records_a_secret_is_refused_by_every_command(root, command):
    manifest = root / "work" / "sweeps" / "old" / "gansweep.json"
    manifest.parent.mkdir(parents=True)
    OLD_MANIFEST["sweep_dir"] = str(manifest.parent)
    written = json.dumps(OLD_MANIFEST, indent=2)
    manifest.write_text(written)

    result = run_gansweep(root, *command, "--storage", "sweeps")

    assert_refused(result, GIVEN["postgresql"][1])
    assert f"edit tracking_uri in {manifest}" in result.stderr
    # The secret stays where it was, and only there: nothing copied it (best.yaml, a
    # report, a log); the manifest was left as it was; nothing else was made.
    assert holding(root, SECRET) == [manifest]
    assert manifest.read_text() == written
    assert [p for p in (root / "work").rglob("*") if p.is_file()] == [manifest]
