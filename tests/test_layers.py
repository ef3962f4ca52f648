"""The layering rule of docs/ARCHITECTURE.md, checked on the source: every import of a
gansweep module (at the top of a file, inside a function or for type checking only)
goes down, never up; no two files and no two packages import each other, however long
the loop; and the trial engine imports neither Ray nor MLflow."""

import ast
from collections import defaultdict
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
    "dashboards": {"files", "trainables", "records", "search_spaces", "dashboards"},
    "platform": {
        "files",
        "trainables",
        "records",
        "search_spaces",
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
# The one file of a layer allowed what its layer is not: the sweep's Optuna study is one
# of its records (written by the driver, read by the report), opened there with a
# deferred import, so `ls` and `status` load no Optuna.
ALLOWED_THERE = {("gansweep.records.study_store", "optuna")}


def layer_of(module: str) -> str:
    """gansweep.<layer>... -> the layer (a subpackage, or files / profiling)."""
    parts = module.split(".")
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
        if top in FORBIDDEN.get(own, ()) and (module, top) not in ALLOWED_THERE:
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
        ("gansweep.records.read", "def f():\n    import optuna\n",
         ["gansweep.records.read:2 imports optuna, which records must not"]),
        ("gansweep.records.study_store", "def f():\n    import optuna\n", []),
        ("gansweep.trainables.checkpoint", "from gansweep.records.write import TrialRun\n",
         ["gansweep.trainables.checkpoint:1 imports gansweep.records.write "
          "(trainables -> records)"]),
    ],
)  # fmt: skip
def test_the_rule_sees_upward_and_nested_imports(module, source, expected):
    assert violations(module, source) == expected


def gansweep_module(imported: str, modules: set[str]) -> str | None:
    """The file an import reads: `from gansweep.a import b` names a module or a name in
    one; the longest prefix that is a file of the package."""
    parts = imported.split(".")
    for end in range(len(parts), 0, -1):
        if ".".join(parts[:end]) in modules:
            return ".".join(parts[:end])
    return None


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """module -> the package's modules it imports (a package's __init__ excluded as a
    target when a deeper module is named: `from gansweep.records.read import x`
    imports read.py; Python runs records/__init__.py too, which is lazy by design)."""
    modules = set(sources)
    graph: dict[str, set[str]] = defaultdict(set)
    for module, source in sources.items():
        for imported in imported_names(source):
            target = gansweep_module(imported, modules)
            if target is not None and target != module:
                graph[module].add(target)
    return graph


def imported_names(source: str) -> list[str]:
    """Every module or module.name an import reads, nested ones too: `from a import b`
    gives a.b, which is module a/b.py where there is one, else a name in a."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The same imports between layers (subpackages): an arrow for every file's."""
    packages: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph.items():
        for target in targets:
            if layer_of(module) != layer_of(target):
                packages[layer_of(module)].add(layer_of(target))
    return packages


def test_no_files_and_no_packages_import_each_other():
    sources = {module_of(p): p.read_text() for p in SOURCES}
    graph = import_graph(sources)
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == []


def test_the_cycle_check_sees_loops_through_nested_and_type_checking_imports():
    sources = {
        "gansweep.platform.a": "from gansweep.platform.b import x\n",
        "gansweep.platform.b": "def f():\n    from gansweep.platform import c\n",
        "gansweep.platform.c": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
        "    from gansweep.platform.a import A\n",
        "gansweep.platform.d": "import gansweep.platform.a\n",
        "gansweep.records.r": "from gansweep.trainables.t import y\n",
        "gansweep.trainables.t": "from gansweep.records import r\n",
    }
    graph = import_graph(sources)
    assert cycles(graph) == [
        ["gansweep.platform.a", "gansweep.platform.b", "gansweep.platform.c"],
        ["gansweep.records.r", "gansweep.trainables.t"],
    ]
    assert cycles(package_graph(graph)) == [["records", "trainables"]]
