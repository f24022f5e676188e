"""The import structure: no module of ordergate imports, however indirectly, one that imports it.

Type-only imports (under ``TYPE_CHECKING``) and imports inside functions count too: a cycle
there is still two modules that cannot be read, or moved, one without the other.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "ordergate"


def _graph() -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
                graph[name] |= submodules
                if len(submodules) < len(node.names):  # names defined in the module itself
                    graph[name].add(node.module)
            elif isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names} & modules.keys()
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as the modules along it, or None."""
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for target in sorted(graph[name]):
            found = visit(target, [*path, name])
            if found:
                return found
        done.add(name)
        return None

    return next((found for name in sorted(graph) if (found := visit(name, []))), None)


def test_the_scan_sees_imports() -> None:
    graph = _graph()
    assert "ordergate.pipeline.stage" in graph["ordergate.pipeline.runner"]
    assert "ordergate.brokers.binance" in graph["ordergate.brokers.ccxt"]


def test_no_module_imports_itself_through_others() -> None:
    assert _cycle(_graph()) is None


# What ``pipeline/`` may import besides itself: leaf modules that import nothing of ordergate.
PIPELINE_MAY_IMPORT = frozenset({"ordergate.redact"})


def test_the_pipeline_imports_nothing_above_it() -> None:
    graph = _graph()
    for leaf in PIPELINE_MAY_IMPORT:
        assert not graph[leaf], f"{leaf} is no leaf: it imports {sorted(graph[leaf])}"
    upward = {
        (name, target)
        for name, targets in graph.items()
        if name.startswith("ordergate.pipeline")
        for target in targets
        if not target.startswith("ordergate.pipeline") and target not in PIPELINE_MAY_IMPORT
    }
    assert upward == set()
