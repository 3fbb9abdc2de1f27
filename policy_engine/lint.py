"""Static analysis of a compiled policy: findings a reviewer wants before a change goes live.

Run by ``validate`` after the checks that make a policy invalid. Each finding is a diagnostic
with a severity (warning or info: the policy is still valid) and the rule's line:

* ``metric-unused`` -- a metric no rule reads (mark it ``informational: true`` if it is only reported);
* ``parameter-unused`` -- a parameter no expression reads;
* ``condition-never-true`` / ``condition-always-true`` -- a comparison of an input with a constant
  that the input's declared range (min, max, enum) decides on its own, making a warning, action or
  floor dead or unconditional;
* ``floor-shadowed`` -- a floor whose condition implies another floor's of the same or a worse grade
  (``dpd > 120 -> substandard`` under ``dpd > 90 -> substandard``), so it can never decide a grade.

Band gaps and overlaps are errors of the compiler (``band-gap``, ``band-overlap``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from typing import Any

from .compiler import CompiledPolicy
from .diagnostics import Diagnostic
from .loader import Document

_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


def _atom(node: ast.AST) -> tuple[str, type, float] | None:
    """``name op number`` (or ``number op name``) as (name, op, number)."""
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        return None
    left, right, op = node.left, node.comparators[0], type(node.ops[0])
    if op not in _FLIP:
        return None
    if isinstance(left, ast.Name) and isinstance(right, ast.Constant) and isinstance(right.value, int | float) \
            and not isinstance(right.value, bool):
        return left.id, op, float(right.value)
    if isinstance(right, ast.Name) and isinstance(left, ast.Constant) and isinstance(left.value, int | float) \
            and not isinstance(left.value, bool):
        return right.id, _FLIP[op], float(left.value)
    return None


def _decided(op: type, c: float, lo: float | None, hi: float | None) -> bool | None:
    """What ``x op c`` is for every x in [lo, hi], or None when it depends on x."""
    lo_ = -float("inf") if lo is None else lo
    hi_ = float("inf") if hi is None else hi
    if op is ast.Gt:
        return True if lo_ > c else False if hi_ <= c else None
    if op is ast.GtE:
        return True if lo_ >= c else False if hi_ < c else None
    if op is ast.Lt:
        return True if hi_ < c else False if lo_ >= c else None
    if op is ast.LtE:
        return True if hi_ <= c else False if lo_ > c else None
    if op is ast.Eq:
        return False if c < lo_ or c > hi_ else (True if lo_ == hi_ == c else None)
    if op is ast.NotEq:
        return True if c < lo_ or c > hi_ else None
    return None


def _implies(a: tuple[str, type, float], b: tuple[str, type, float]) -> bool:
    """Whether atom ``a`` implies atom ``b`` (same name, both lower or both upper bounds)."""
    if a[0] != b[0]:
        return False
    (_, oa, ca), (_, ob, cb) = a, b
    if oa in (ast.Gt, ast.GtE) and ob in (ast.Gt, ast.GtE):
        return ca > cb or (ca == cb and (oa is ob or oa is ast.Gt))
    if oa in (ast.Lt, ast.LtE) and ob in (ast.Lt, ast.LtE):
        return ca < cb or (ca == cb and (oa is ob or oa is ast.Lt))
    return False


def _names(policy: CompiledPolicy) -> Iterator[tuple[str, Any]]:
    for m in policy.metrics:
        yield f"metric {m.name}", m.expr
    for f in policy.factors:
        yield f"factor {f.id}", f.expr
    for r in policy.floors:
        yield f"floor {r.id}", r.expr
    for w in policy.warnings:
        yield f"warning {w.id}", w.expr
    for a in policy.actions:
        yield f"action {a.id}", a.expr
        yield from ((f"action {a.id}", p) for p in a.param_exprs.values())
        if a.restructuring:
            yield f"action {a.id}", a.restructuring.expr


def lint(policy: CompiledPolicy, doc: Document) -> list[Diagnostic]:
    data = doc.data
    out: list[Diagnostic] = []

    def add(code: str, message: str, path: tuple[Any, ...], rule: str | None, hint: str | None = None) -> None:
        line, col = doc.locate(path)
        out.append(Diagnostic(code, message, file=doc.file, line=line, column=col, rule=rule, hint=hint,
                              severity="warning"))

    read: set[str] = set()
    for _, expr in _names(policy):
        read.update(expr.refs)
    for w in policy.warnings:
        read.update(w.evidence)
    read.update(policy.key_figures)  # shown in every explanation: a metric only shown there is used
    for section in ("warnings", "actions"):
        for item in data.get(section) or []:
            for text in (item.get("message") or item.get("reason") or {}).values():
                read.update(n for _, n, _, _ in __import__("string").Formatter().parse(text) if n)
    if policy.segment_by:
        read.add(policy.segment_by)
    metrics = data.get("metrics") or {}
    for name, m in metrics.items():
        if name not in read and not m.get("informational", False):
            add("metric-unused", f"metric '{name}' is read by no rule", ("metrics", name), name,
                "use it, remove it, or mark it 'informational: true' if it is only reported")
    for name in data.get("parameters") or {}:
        if name not in read:
            add("parameter-unused", f"parameter '{name}' is read by no expression", ("parameters", name), name)

    ranges = {s.name: (s.min, s.max) for s in policy.inputs if s.type in ("number", "integer") and not s.series}
    checks = [("classification", "rules", i, r.id, r.expr.tree) for i, r in enumerate(policy.floors)]
    checks += [("warnings", None, i, w.id, w.expr.tree) for i, w in enumerate(policy.warnings)]
    checks += [("actions", None, i, a.id, a.expr.tree) for i, a in enumerate(policy.actions)]
    for section, sub, i, rid, tree in checks:
        path = (section, sub, i, "when") if sub else (section, i, "when")
        verdict = _condition_verdict(tree, ranges)
        if verdict is True:
            add("condition-always-true", f"'{rid}' fires for every client the inputs' declared ranges allow",
                path, rid, "the condition compares an input with a value outside its min/max")
        elif verdict is False:
            add("condition-never-true", f"'{rid}' can never fire under the inputs' declared ranges", path, rid,
                "the condition compares an input with a value outside its min/max")
    grade_rank = {g: k for k, g in enumerate(policy.grade_ids)}
    atoms = [(k, r, _atom(r.expr.tree)) for k, r in enumerate(policy.floors)]
    for k, r, atom in atoms:
        if atom is None:
            continue
        for _, other, other_atom in atoms:
            if other is r or other_atom is None or grade_rank[other.floor] < grade_rank[r.floor]:
                continue
            if _implies(atom, other_atom) and not (_implies(other_atom, atom) and other.id > r.id):
                add("floor-shadowed", f"floor '{r.id}' is shadowed by '{other.id}': whenever it fires, "
                    f"'{other.id}' fires with grade {other.floor}", ("classification", "rules", k, "when"), r.id,
                    "remove it, or make it set a worse grade")
                break
    return out


def _condition_verdict(tree: ast.AST, ranges: dict[str, tuple[float | None, float | None]]) -> bool | None:
    atom = _atom(tree)
    if atom is not None:
        if atom[0] not in ranges:
            return None
        lo, hi = ranges[atom[0]]
        return _decided(atom[1], atom[2], lo, hi)
    if isinstance(tree, ast.BoolOp):
        verdicts = [_condition_verdict(v, ranges) for v in tree.values]
        if isinstance(tree.op, ast.And):
            return False if False in verdicts else (True if all(v is True for v in verdicts) else None)
        return True if True in verdicts else (False if all(v is False for v in verdicts) else None)
    return None
