"""The run layer sits in no import cycle (the audit store and the batch module once imported each other)."""

from __future__ import annotations

import ast
from pathlib import Path

from ..house.test_layers import cycles, imports

PACKAGE = Path(__file__).resolve().parents[2] / "policy_engine"


def _graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at the top or inside a function (a lazy import is a dependency)."""
    graph: dict[str, set[str]] = {_name(p.relative_to(PACKAGE).as_posix()): set() for p in PACKAGE.rglob("*.py")}
    for imp in imports(PACKAGE):
        graph[_name(imp.source)].add(_name(imp.target))
    return graph


def _name(module: str) -> str:
    """A module by its name (``policy/compiler.py`` -> ``compiler``); a package's ``__init__`` by its path."""
    return module if module.endswith("__init__.py") else Path(module).stem


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The import loops among the package's modules (the house test's finder; lazy imports count here)."""
    return [set(group) for group in cycles(graph)]


# The run layer and what it stands on: none of them may sit in an import loop.
RUN_MODULES = {"run", "audit", "batch", "segment", "segments", "records", "ref", "tables", "distributed", "impact",
               "scenario", "evaluate", "frame", "vector", "registry", "cli"}


def test_the_run_layer_and_its_stages_sit_in_no_import_cycle() -> None:
    graph = _graph()
    assert set(graph) >= RUN_MODULES
    # The store reads segments through its own codec (record/segments.py), not through the batch above it.
    assert "segments" in graph["audit"] and "batch" not in graph["audit"] and "audit" not in graph["batch"]
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
