"""The run layer sits in no import cycle (the audit store and the batch module once imported each other)."""

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


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The groups of modules that import each other, directly or round a loop (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# The run layer and what it stands on: none of them may sit in an import loop.
RUN_MODULES = {"run", "audit", "batch", "segment", "distributed", "impact", "scenario", "evaluate", "frame",
               "vector", "registry", "cli"}


def test_the_run_layer_and_its_stages_sit_in_no_import_cycle() -> None:
    graph = _graph()
    assert set(graph) >= RUN_MODULES
    assert "batch" in graph["audit"] and "audit" not in graph["batch"]  # the store reads segments through batch
    tangled = [group for group in _cycles(graph) if group & RUN_MODULES]
    assert not tangled, tangled


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert _cycles({"a": {"b"}, "b": set()}) == []


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
