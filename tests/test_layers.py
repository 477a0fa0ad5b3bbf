"""The package's layer order: imports only go down (or sideways without a cycle). Read with ast, nothing run.

Bottom up: errors/paths/imaging/hls_cpu/jit/limits/outputs/progress/rowdigests -> settings -> data ->
classifiers, encodings -> objective -> archive -> search -> distributed -> rundir -> run -> analysis, retrain ->
gallery, plots -> api -> cli.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LAYERS: list[set[str]] = [
    {"errors", "paths", "imaging", "compat", "allocator", "progress", "milestones", "limits", "outputs",
     "rowcopy", "rowdigests", "hostwork", "jit", "hls_cpu"},
    {"settings", "classes"},
    {"data"},
    {"classifiers", "encodings"},
    {"objective"},
    {"archive"},
    {"search", "attacks"},
    {"distributed"},
    {"rundir"},
    {"run"},
    {"analysis", "retrain"},
    {"gallery", "plots"},
    {"api"},
    {"cli", "__main__"},
]


def layer_of(unit: str) -> int:
    for i, members in enumerate(LAYERS):
        if unit in members:
            return i
    raise AssertionError(f"fooling.{unit} has no place in the layer order: add it to LAYERS in {__file__}")


def _graph() -> dict[str, set[str]]:
    spec = importlib.util.spec_from_file_location("import_graph", ROOT / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.graph(), module.cycles


def test_every_package_has_a_layer():
    edges, _ = _graph()
    for unit in edges:
        if unit != "fooling":
            layer_of(unit)


def test_imports_never_go_up():
    edges, _ = _graph()
    upward = sorted(f"fooling.{a} imports fooling.{b}" for a, targets in edges.items() if a != "fooling"
                    for b in targets if layer_of(a) < layer_of(b))
    assert not upward, "imports that go up the layer order:\n" + "\n".join(upward)


def test_no_cycles_between_packages():
    edges, cycles = _graph()
    assert not cycles(edges), f"import cycles between packages: {cycles(edges)}"
