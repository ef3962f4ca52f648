"""The layering rule of docs/ARCHITECTURE.md, checked on the source: every import of a
gansweep module (at the top of a file or inside a function) goes down, never up, and the
trial engine imports neither Ray nor MLflow."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gansweep"

# Each layer and the layers it may import (itself included), bottom first.
ALLOWED = {
    "files": {"files"},
    "profiling": {"profiling"},
    "trainables": {"files", "trainables"},
    "records": {"files", "trainables", "records"},
    "search_spaces": {"files", "trainables", "search_spaces"},
    "trainable": {"files", "trainables", "records", "trainable"},
    "dashboards": {"files", "trainables", "records", "search_spaces", "dashboards"},
    "platform": {
        "files",
        "trainables",
        "records",
        "search_spaces",
        "trainable",
        "dashboards",
        "platform",
    },  # fmt: skip
    "package": {"files", "trainables"},  # gansweep/__init__.py: the small public API
}
# files.py and profiling.py are the bottom: every layer may use them.
for allowed in ALLOWED.values():
    allowed |= {"files", "profiling"}
# Third-party packages a layer must not import: the engine runs without Ray or MLflow,
# and nothing below the control plane starts Ray.
FORBIDDEN = {
    "trainables": {"ray", "mlflow", "optuna"},
    "records": {"ray", "optuna"},
    "search_spaces": {"ray", "mlflow"},
    "dashboards": {"ray"},
}


def layer_of(module: str) -> str:
    """gansweep.<layer>... -> the layer; trainables/trainable.py is the Tune glue."""
    parts = module.split(".")
    if parts[:3] == ["gansweep", "trainables", "trainable"]:
        return "trainable"
    if len(parts) == 1:
        return "package"
    return parts[1]


def module_of(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(source: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the source, nested ones too."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


def violations(module: str, source: str) -> list[str]:
    """Every import in `source` (the text of `module`) that breaks the layering rule."""
    own = layer_of(module)
    if own not in ALLOWED:
        return [f"{module}: no layer {own!r}; add it to ALLOWED and docs/ARCHITECTURE.md"]
    found = []
    for line, imported in imports(source):
        top = imported.split(".")[0]
        if top == "gansweep" and layer_of(imported) not in ALLOWED[own]:
            found.append(f"{module}:{line} imports {imported} ({own} -> {layer_of(imported)})")
        if top in FORBIDDEN.get(own, ()):
            found.append(f"{module}:{line} imports {imported}, which {own} must not")
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[module_of(p) for p in SOURCES])
def test_every_import_goes_down_the_layers(path):
    assert violations(module_of(path), path.read_text()) == []


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("gansweep.records.read", "from gansweep.platform.sweep import run\n",
         ["gansweep.records.read:1 imports gansweep.platform.sweep (records -> platform)"]),
        ("gansweep.dashboards.data", "def f():\n    import gansweep.platform.cli\n",
         ["gansweep.dashboards.data:2 imports gansweep.platform.cli (dashboards -> platform)"]),
        ("gansweep.trainables.engine", "import mlflow\n",
         ["gansweep.trainables.engine:1 imports mlflow, which trainables must not"]),
        ("gansweep.trainables.trainable", "from gansweep.records.write import TrialRun\n", []),
    ],
)  # fmt: skip
def test_the_rule_sees_upward_and_nested_imports(module, source, expected):
    assert violations(module, source) == expected
