"""Print the package-level import graph of `fooling` (read from the source with ast, nothing imported).

    python scripts/import_graph.py            # one line per package: what it imports
    python scripts/import_graph.py --modules  # module level instead

Ends with one JSON line: {"edges": N, "cycles": [...], "upward": [...]} where "upward" lists the
imports that go up the layer order declared in tests/test_layers.py.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "fooling"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every fooling module ``path`` imports (absolute names), at any depth of the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "fooling":
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)  # `from . import mnist`
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "fooling")
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    return {m for m in found if m in known} - {name}


def unit(module: str) -> str:
    """The package a module belongs to for layering: fooling.run.evolve -> run, fooling.settings.evolve -> settings."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fooling"


def graph(modules: bool = False) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        src = module_name(path)
        key = src if modules else unit(src)
        for dst in imports_of(path):
            other = dst if modules else unit(dst)
            if other != key and other != "fooling":
                edges.setdefault(key, set()).add(other)
        edges.setdefault(key, set())
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def upward(edges: dict[str, set[str]]) -> list[str]:
    """Imports that go up the layer order declared in tests/test_layers.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("test_layers", ROOT / "tests" / "test_layers.py")
    if spec is None or not (ROOT / "tests" / "test_layers.py").is_file():
        return []
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]

    def layer(unit: str) -> int:
        try:
            return module.layer_of(unit)
        except AssertionError:
            return -1  # not placed yet: reported by the test, not here
    return sorted(f"{a} -> {b}" for a, targets in edges.items() if a != "fooling" for b in targets
                  if min(layer(a), layer(b)) >= 0 and layer(a) < layer(b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", action="store_true", help="module-level graph instead of packages")
    args = parser.parse_args()
    edges = graph(args.modules)
    for src in sorted(edges):
        print(f"{src:28s} -> {', '.join(sorted(edges[src])) or '-'}")
    found = cycles(edges)
    for component in found:
        print("cycle:", " <-> ".join(component))
    up = upward(edges) if not args.modules else []
    for edge in up:
        print("upward:", edge)
    print(json.dumps({"edges": sum(map(len, edges.values())), "cycles": found, "upward": up}))


if __name__ == "__main__":
    main()
