"""The package's import graph has no cycles (the audit store and the batch module once imported each other)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "policy_engine"


def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at the top or inside a function (a lazy import is a dependency)."""
    graph: dict[str, set[str]] = {}
    for f in PACKAGE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                deps.add(node.module.split(".")[0])
        graph[f.stem] = deps
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(v: str) -> list[str] | None:
        state[v] = 1
        path.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if state.get(w) == 1:
                return [*path[path.index(w):], w]
            if w not in state and (found := visit(w)):
                return found
        state[v] = 2
        path.pop()
        return None

    for v in sorted(graph):
        if v not in state and (found := visit(v)):
            return found
    return None


def test_the_package_imports_form_no_cycle() -> None:
    graph = _graph()
    assert "audit" in graph and "batch" in graph and "run" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_cli_run_commands_hold_no_store_handling_and_no_deciding_of_their_own() -> None:
    """decide, batch, impact and simulate parse, call the run layer and render: no store, no decider, no chunks."""
    tree = ast.parse((PACKAGE / "cli.py").read_text(encoding="utf-8"))
    bodies = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    forbidden = {"AuditStore", "append", "append_segments", "recorded_clients", "Decider", "audit_segments",
                 "iter_records", "write_decisions", "batch_key"}
    for name in ("decide", "batch", "impact", "simulate", "_decide", "_emit_migration"):
        used = {x.id for x in ast.walk(bodies[name]) if isinstance(x, ast.Name)}
        used |= {x.attr for x in ast.walk(bodies[name]) if isinstance(x, ast.Attribute)}
        used |= {a.name for x in ast.walk(bodies[name]) if isinstance(x, ast.ImportFrom) for a in x.names}
        assert not forbidden & used, (name, forbidden & used)
    assert not {"_stream", "_batch_run", "_batch_key", "_batch_dask", "_record"} & set(bodies)
