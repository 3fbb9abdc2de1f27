"""The package's stages import only downward, and no two modules import each other at load time.

``policy_engine/`` is layered by stage (issue 17 items 4 and 5): each stage folder imports only
from the stages below it, so a stage can be read, tested and changed knowing what it stands on.
Every import counts, the ones inside functions (lazy) and under ``TYPE_CHECKING`` included: a lazy
upward import is still a dependency, only a later one. Import cycles are checked on what runs when a
module is loaded (its top-level imports, outside ``TYPE_CHECKING``), where a cycle breaks loading.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import policy_engine

PACKAGE = Path(policy_engine.__file__).parent

# Bottom to top. A module's layer is its folder; the modules at the package's top are named here.
LAYERS: list[tuple[str, set[str]]] = [
    ("base", {"diagnostics.py", "frozen.py", "safetext.py", "version.py", "whole_files.py"}),
    ("language", {"language/"}),
    ("policy", {"policy/"}),
    ("decide", {"decide/"}),
    ("record", {"record/"}),
    ("portfolio", {"portfolio/"}),
    ("review", {"review/"}),
    ("top", {"run.py", "cli.py", "config.py", "demo.py", "scaffold.py", "progress.py", "__init__.py",
             "__main__.py"}),
]
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}


@dataclass(frozen=True)
class Import:
    source: str  # importing file, relative to the package
    line: int
    target: str  # imported module file, relative to the package
    load_time: bool  # runs when the module is loaded (top level, not under TYPE_CHECKING)


def layer_of(module: str) -> str | None:
    """The layer of a module file (``policy/compiler.py``, ``run.py``); None: placed in no layer."""
    folder = module.split("/")[0] + "/" if "/" in module else None
    for name, members in LAYERS:
        if module in members or folder in members:
            return name
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _walk(node: ast.AST, load_time: bool) -> list[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import under ``node``, with whether it runs when the module is loaded."""
    found: list[tuple[ast.Import | ast.ImportFrom, bool]] = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.Import | ast.ImportFrom):
            found.append((child, load_time))
        elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            found += _walk(child, False)
        elif isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.body:
                found += _walk(ast.Module(body=[stmt], type_ignores=[]), False)
            for stmt in child.orelse:
                found += _walk(ast.Module(body=[stmt], type_ignores=[]), load_time)
        else:
            found += _walk(child, load_time)
    return found


def _module_file(root: Path, parts: list[str]) -> str | None:
    """The file of module ``parts`` (relative to the package ``root``), or None when it is none of the package's."""
    path = root.joinpath(*parts)
    if path.with_suffix(".py").is_file():
        return "/".join(parts) + ".py"
    if (path / "__init__.py").is_file():
        return "/".join([*parts, "__init__.py"])
    return None


def imports(root: Path) -> list[Import]:
    """Every import of a package module by a package module, resolved to the imported file."""
    found: list[Import] = []
    for path in sorted(root.rglob("*.py")):
        source = path.relative_to(root).as_posix()
        package = source.split("/")[:-1]  # the folders the module is in, below the package
        for node, load_time in _walk(ast.parse(path.read_text(encoding="utf-8")), True):
            if isinstance(node, ast.Import):
                targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == root.name]
                names: list[str] = []
            elif node.level == 0:
                if node.module is None or node.module.split(".")[0] != root.name:
                    continue
                targets, names = [node.module.split(".")[1:]], [a.name for a in node.names]
            else:
                base = package[:len(package) - (node.level - 1)]
                targets, names = [base + (node.module.split(".") if node.module else [])], [a.name for a in node.names]
            for parts in targets:
                # ``from pkg import module`` imports the module; ``from pkg import name`` the package's __init__.
                modules = [m for m in (_module_file(root, [*parts, n]) for n in names) if m is not None]
                if len(modules) < len(names) or not names:
                    modules.append(_module_file(root, parts) or "/".join(parts) + ".py")
                found += [Import(source, node.lineno, m, load_time) for m in modules]
    return found


def upward(found: list[Import]) -> list[str]:
    """Each import of a higher layer, or of or by a module placed in no layer, as ``file:line: imports target``."""
    problems = []
    for imp in found:
        have, want = layer_of(imp.source), layer_of(imp.target)
        if have is None or want is None:
            problems.append(f"{imp.source}:{imp.line}: {imp.source if have is None else imp.target} is in no layer "
                            "(place it in LAYERS)")
        elif RANK[want] > RANK[have]:
            problems.append(f"{imp.source}:{imp.line}: {have} imports {imp.target} ({want}), a higher layer")
    return problems


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or round a loop (Tarjan's components)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, ()):
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def load_time_graph(found: list[Import]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for imp in found:
        if imp.load_time:
            graph.setdefault(imp.source, set()).add(imp.target)
    return graph


# ----------------------------------------------------------------------------------------- the package


def test_every_module_is_in_a_layer() -> None:
    modules = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")]
    assert len(modules) > 40  # the scan really walks the stage folders
    assert [m for m in modules if layer_of(m) is None] == []


def test_no_import_runs_upward_between_the_stages() -> None:
    found = imports(PACKAGE)
    assert any(i.source == "record/audit.py" and i.target == "record/segments.py" for i in found)
    assert upward(found) == []


def test_no_modules_import_each_other_at_load_time() -> None:
    assert cycles(load_time_graph(imports(PACKAGE))) == []


# ----------------------------------------------------------------------------------- the checker itself


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "policy_engine"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


CHECKER_CASES = [
    # (files, problems expected)
    ({"diagnostics.py": "", "policy/__init__.py": "",
      "policy/loader.py": "from ..diagnostics import x\n"}, []),
    ({"diagnostics.py": "def f():\n    from .policy.loader import x\n", "policy/__init__.py": "",
      "policy/loader.py": ""},
     ["diagnostics.py:2: base imports policy/loader.py (policy), a higher layer"]),
    ({"policy/__init__.py": "", "policy/loader.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
      "    from ..record import audit\n", "record/__init__.py": "", "record/audit.py": ""},
     ["policy/loader.py:3: policy imports record/audit.py (record), a higher layer"]),
    ({"decide/__init__.py": "", "decide/ref.py": "import policy_engine.run\n", "run.py": ""},
     ["decide/ref.py:1: decide imports run.py (top), a higher layer"]),
    ({"policy/__init__.py": "", "policy/cache.py": "from .. import __version__\n"},
     ["policy/cache.py:1: policy imports __init__.py (top), a higher layer"]),
    ({"stray.py": "from .diagnostics import x\n", "diagnostics.py": ""},
     ["stray.py:1: stray.py is in no layer (place it in LAYERS)"]),
]


def test_the_checker_sees_a_planted_upward_import(tmp_path: Path) -> None:
    for i, (files, expected) in enumerate(CHECKER_CASES):
        assert upward(imports(_package(tmp_path / str(i), files))) == expected, files


def test_the_checker_sees_a_load_time_cycle_and_not_a_lazy_one(tmp_path: Path) -> None:
    root = _package(tmp_path, {"policy/__init__.py": "", "policy/a.py": "from .b import x\n",
                               "policy/b.py": "from . import c\n", "policy/c.py": "from .a import y\n",
                               "policy/d.py": "from .e import x\n", "policy/e.py": "def f():\n    from .d import y\n"})
    assert cycles(load_time_graph(imports(root))) == [["policy/a.py", "policy/b.py", "policy/c.py"]]
