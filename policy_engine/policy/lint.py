"""Static analysis of a compiled policy: findings a reviewer wants before a change goes live.

Run by ``validate`` after the checks that make a policy invalid. Each finding is a diagnostic
with a severity (warning or info: the policy is still valid) and the rule's line:

* ``metric-unused`` -- a metric no rule reads (mark it ``informational: true`` if it is only reported);
* ``parameter-unused`` -- a parameter no expression reads;
* ``condition-never-true`` / ``condition-always-true`` -- a comparison with a number (or a
  parameter's every value) that the declared ranges decide on their own: an input's min/max, a
  count's 0, a share's 0 to 1 (``share_where``, or a part over its whole: :class:`_Shares`; a share
  parameter written as 10 for 10%). The whole condition makes a
  floor, warning or action dead or unconditional; a part of one (an ``or`` branch, an aggregation's
  condition, a metric's) is dead weight;
* ``condition-never-true`` also for an ``and`` whose comparisons of one name leave it no value
  (``utilisation > 1.5 and utilisation < 1.0``), whatever the ranges;
* ``floor-shadowed`` -- a floor whose condition implies another floor's of the same or a worse grade
  in the same scope (``dpd > 120 -> substandard`` under ``dpd > 90 -> substandard``, or under
  ``dpd > overdue_days`` with that parameter 90), so it can never decide a grade.

Each finding is one check function, registered in :data:`CHECKS`.
Band gaps and overlaps are errors of the compiler (``band-gap``, ``band-overlap``).
"""

from __future__ import annotations

import ast
import functools
import re
import string
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ..diagnostics import Diagnostic
from .compiler import CompiledPolicy
from .loader import Document

_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE, ast.Eq: ast.Eq, ast.NotEq: ast.NotEq}


# A threshold per segment ('default' for all): a literal is one value, a parameter each segment's.
_Threshold = Mapping[str, float]
_Atom = tuple[str, type, _Threshold]


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _threshold(node: ast.AST, params: Mapping[str, Mapping[str, Any]]) -> _Threshold | None:
    """A number written (``90``) or a parameter whose every value is a number (``overdue_sub_days``)."""
    if isinstance(node, ast.Constant):
        number = _number(node.value)
        return None if number is None else {"default": number}
    if isinstance(node, ast.Name) and node.id in params:
        values = {seg: _number(v) for seg, v in params[node.id].items()}
        if values and all(v is not None for v in values.values()):
            return {seg: v for seg, v in values.items() if v is not None}
    return None


def _atom(node: ast.AST, params: Mapping[str, Mapping[str, Any]] | None = None) -> _Atom | None:
    """``name op threshold`` (or ``threshold op name``) as (name, op, threshold), the threshold a number or a
    parameter of ``params``."""
    if not isinstance(node, ast.Compare) or len(node.ops) != 1:
        return None
    left, right, op = node.left, node.comparators[0], type(node.ops[0])
    if op not in _FLIP:
        return None
    params = params or {}
    for name, bound, o in ((left, right, op), (right, left, _FLIP[op])):
        if isinstance(name, ast.Name) and name.id not in params:
            threshold = _threshold(bound, params)
            if threshold is not None:
                return name.id, o, threshold
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


def _implies(a: _Atom, b: _Atom) -> bool:
    """Whether atom ``a`` implies atom ``b`` (same name, both lower or both upper bounds) in every segment: a
    parameter's value in each, its default where it names none."""
    if a[0] != b[0]:
        return False
    segments = set(a[2]) | set(b[2])
    for seg in segments:
        ca, cb = a[2].get(seg, a[2].get("default")), b[2].get(seg, b[2].get("default"))
        if ca is None or cb is None or not _implies_at(a[1], ca, b[1], cb):
            return False
    return bool(segments)


def _implies_at(oa: type, ca: float, ob: type, cb: float) -> bool:
    """Whether ``x oa ca`` implies ``x ob cb``."""
    if oa in (ast.Gt, ast.GtE) and ob in (ast.Gt, ast.GtE):
        return ca > cb or (ca == cb and (oa is ob or oa is ast.Gt))
    if oa in (ast.Lt, ast.LtE) and ob in (ast.Lt, ast.LtE):
        return ca < cb or (ca == cb and (oa is ob or oa is ast.Lt))
    return False


class _Subject:
    """One policy under lint: the compiled form, its document, and what the checks share."""

    def __init__(self, policy: CompiledPolicy, doc: Document):
        self.policy = policy
        self.doc = doc
        self.data: dict[str, Any] = doc.data

    def finding(self, code: str, message: str, path: tuple[Any, ...], rule: str | None,
                hint: str | None = None) -> Diagnostic:
        line, col = self.doc.locate(path)
        return Diagnostic(code, message, file=self.doc.file, line=line, column=col, rule=rule, hint=hint,
                          severity="warning")

    @functools.cached_property
    def element_metrics(self) -> dict[str, Any]:
        """The metrics of each element of a scope that is not graded (read only inside aggregations, never shown),
        with their checked expressions."""
        return {m.name: m.expr for m in self.policy.element_metrics}

    @functools.cached_property
    def read(self) -> set[str]:
        """Every name some expression, evidence list, message template or the segment choice reads."""
        read: set[str] = set()
        for _, expr in _expressions(self.policy):
            read.update(expr.refs, expr.inner_refs)
            read.update(expr.tables)  # a table parameter is read by lookup()
        for w in self.policy.warnings:
            read.update(w.evidence)
        read.update(self.policy.key_figures)  # shown in every explanation: a metric only shown there is used
        rules = (self.data.get("classification") or {}).get("rules") or []  # a rule's own warning message
        for items in (self.data.get("warnings") or [], self.data.get("actions") or [], rules):
            for item in items:
                read.update(_placeholders(item.get("message") or item.get("reason")))
        if self.policy.segment_by:
            read.add(self.policy.segment_by)
        return read


def _expressions(policy: CompiledPolicy) -> Iterator[tuple[str, Any]]:
    for m in policy.metrics:
        yield f"metric {m.name}", m.expr
    for f in policy.factors:
        yield f"factor {f.id}", f.expr
    for r in policy.floors:
        yield f"floor {r.id}", r.expr
    yield from ((f"metric {m.name}", m.expr) for m in policy.element_metrics)  # of each element, read in place
    if policy.scoped is not None:  # the graded scope's own metrics and floors
        yield from ((f"metric {m.name}", m.expr) for m in policy.scoped.metrics)
        yield from ((f"floor {r.id}", r.expr) for r in policy.scoped.floors)
    for w in policy.warnings:
        yield f"warning {w.id}", w.expr
    for a in policy.actions:
        yield f"action {a.id}", a.expr
        yield from ((f"action {a.id}", p) for p in a.param_exprs.values())
        if a.restructuring:
            yield f"action {a.id}", a.restructuring.expr


def readers(policy: CompiledPolicy, name: str) -> list[str]:
    """The rules whose expressions read ``name`` (a parameter, a table, a metric), as ``metric x``, ``floor y``,
    in the policy's order: what a change to it can move (``diff`` lists them beside a changed threshold)."""
    found: dict[str, None] = {}
    for label, expr in _expressions(policy):
        if name in expr.refs or name in expr.inner_refs or name in expr.tables:
            found[label] = None
    # a message or reason that quotes it ('{limit:pct}'): a change to it changes the words too
    worded = [*(("warning", w.id, w.message) for w in policy.warnings if not w.from_rule),
              *(("floor", r.id, r.message) for r in policy.floors if r.message),
              *(("action", a.id, a.reason) for a in policy.actions)]
    for kind, rid, texts in worded:
        if name in _placeholders(texts):
            found.setdefault(f"{kind} {rid}", None)
    return list(found)


def _placeholders(texts: Mapping[str, str] | None) -> set[str]:
    """The names a message or reason quotes (``{share:pct}`` quotes share), in every language it is written in."""
    return {n for text in (texts or {}).values() for _, n, _, _ in string.Formatter().parse(text) if n}


def metric_unused(s: _Subject) -> Iterator[Diagnostic]:
    """A metric no rule reads is dead weight, unless it is marked as reported only."""
    for name, m in (s.data.get("metrics") or {}).items():
        if name not in s.read and not m.get("informational", False):
            hint = (_element_metric_hint(name, m.get("scope"), s.element_metrics[name].type)
                    if name in s.element_metrics else
                    "use it, remove it, or mark it 'informational: true' if it is only reported")
            yield s.finding("metric-unused", f"metric '{name}' is read by no rule", ("metrics", name), name, hint)


def _element_metric_hint(name: str, scope: str, kind: str) -> str:
    """Where a metric of each element is read: inside an aggregation over its scope that takes its type."""
    use = {"bool": f"count_where({scope}, {name}), any_of({scope}, {name})",
           "number": f"sum_of({scope}, {name}), max_of({scope}, {name})",
           "date": f"max_of({scope}, {name}), first_date({scope}, {name}, ...)"}.get(
        kind, f"last_of({scope}, {name}, ...)")
    return (f"read it inside an aggregation over {scope} ({use}) or remove it: a metric of each element is never "
            "reported")


def parameter_unused(s: _Subject) -> Iterator[Diagnostic]:
    """A parameter no expression reads: tuning it changes nothing."""
    for name in s.data.get("parameters") or {}:
        if name not in s.read:
            yield s.finding("parameter-unused", f"parameter '{name}' is read by no expression", ("parameters", name),
                            name)


def import_unused(s: _Subject) -> Iterator[Diagnostic]:
    """A name imported that nothing reads (directly, or through another imported metric): drop it from names.

    Imported definitions are checked and evaluated as the policy's own, so the other checks see through
    imports; this one is about the import list itself, where the author named what comes in.
    """
    metrics = (*s.policy.metrics, *(s.policy.scoped.metrics if s.policy.scoped else ()))  # both levels
    read = s.read | {r for m in metrics for r in m.expr.refs}
    part = s.policy.scoped
    if part is not None:  # read by a scope's order, its unique fields or another date's bound: used
        for scope, specs in part.inputs.items():
            declared = part.scope(scope)
            fields = {declared.order_by, *declared.unique}
            read |= {spec.name for spec in specs if spec.source in fields}
            read |= {spec.not_before for spec in specs if spec.not_before}
    informational = {m.name for m in metrics if m.informational}  # reported in every decision: used
    for i, entry in enumerate(s.data.get("imports") or []):
        for j, name in enumerate(entry.get("names") or []):
            if name not in read and name not in informational:
                yield s.finding("import-unused", f"'{name}' is imported from {entry.get('module')} "
                                f"{entry.get('version')} and read by nothing", ("imports", i, "names", j), name,
                                "drop it from names, or use it")


def condition_decided_by_ranges(s: _Subject) -> Iterator[Diagnostic]:
    """A floor, warning or action whose condition the declared ranges decide on their own, or a comparison
    inside a condition or metric that they decide (a dead ``or`` branch, a count compared with -1).

    The ranges are the inputs' min/max (the debtor's and every scope's), the bounds an aggregation cannot
    leave (a count is at least 0, a share between 0 and 1; a min or max of an input stays in its range),
    and a parameter is compared by each of its values (every segment's), so ``share > contagion_share``
    with a share parameter of 20 (meant as 20%) is found.
    """
    p = s.policy
    ranges = _ranges(p)
    consts = {n: tuple(float(v) for v in values.values()) for n, values in p.parameters.items()
              if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values.values())}
    hint = "the condition compares a value with a number outside the range it can take"
    named = {(section, x.id): x for section, specs in (("warnings", p.warnings), ("actions", p.actions),
                                                       ("classification", p.floors))
             for x in specs if x.for_exposures is not None}
    for path, rid, tree in _rule_conditions(s):
        verdict = _condition_verdict(tree, ranges, consts)
        spec = named.get((path[0], rid))
        parts = [(path, tree)] if spec is None else [  # as written: the condition, and the exposures it concerns
            (path, spec.as_written.tree), ((*path[:-1], "for_exposures"), spec.for_exposures.tree)]
        if verdict is True:
            yield s.finding("condition-always-true", f"'{rid}' fires for every client the declared ranges "
                            "allow", path, rid, _why(tree, ranges, consts) or hint)
            continue
        # at the part that never holds: the condition as written, or the exposures it concerns
        never = next(((at, part) for at, part in parts if (verdict is False or at[-1] == "for_exposures")
                      and _condition_verdict(part, ranges, consts) is False), None)
        if verdict is False or never is not None:
            at, part = never or (path, tree)
            yield s.finding("condition-never-true", f"'{rid}' can never fire under the declared ranges"
                            + (": it concerns no exposure" if at[-1] == "for_exposures" else ""),
                            at, rid, _why(part, ranges, consts) or hint)
            continue
        for at, part in parts:
            # a part's own root too: it is not the whole condition, which the verdicts above judged
            yield from _decided_parts(s, at, rid, part, ranges, consts, skip_root=spec is None)
    for name, m in _metric_places(s):
        yield from _decided_parts(s, ("metrics", name, "expr"), name, m.expr.tree, ranges, consts)


def condition_contradicts_itself(s: _Subject) -> Iterator[Diagnostic]:
    """An ``and`` whose comparisons of one name with numbers leave that name no value (``x > 1.5 and x < 1``):
    never true, whatever the inputs (the declared ranges aside). Once per rule or metric, at its first such ``and``.
    """
    places = [*((path, rid, tree) for path, rid, tree in _rule_conditions(s)),
              *((("metrics", name, "expr"), name, m.expr.tree) for name, m in _metric_places(s))]
    for path, rid, tree in places:
        for node in ast.walk(tree):
            why = _contradiction(node)
            if why is not None:
                yield s.finding("condition-never-true", f"'{ast.unparse(node)}' in '{rid}' is never true: {why}",
                                path, rid, "one of its comparisons is the wrong way round, or has the wrong number")
                break


def _contradiction(node: ast.AST) -> str | None:
    """Why an ``and`` of comparisons with numbers is never true: the name whose bounds cross, in words."""
    if not (isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And)):
        return None
    low: dict[str, tuple[float, bool]] = {}  # name -> the greatest lower bound, and whether it is strict
    high: dict[str, tuple[float, bool]] = {}
    for part in node.values:
        bound = _bound(part)
        if bound is None:
            continue
        name, op, c = bound
        if op in (ast.Gt, ast.GtE, ast.Eq):
            strict = op is ast.Gt
            if name not in low or c > low[name][0] or (c == low[name][0] and strict):
                low[name] = (c, strict)
        if op in (ast.Lt, ast.LtE, ast.Eq):
            strict = op is ast.Lt
            if name not in high or c < high[name][0] or (c == high[name][0] and strict):
                high[name] = (c, strict)
    for name in low.keys() & high.keys():
        (lo, lo_strict), (hi, hi_strict) = low[name], high[name]
        if lo > hi or (lo == hi and (lo_strict or hi_strict)):
            return (f"'{name}' cannot be {'above' if lo_strict else 'at least'} {lo:g} and "
                    f"{'below' if hi_strict else 'at most'} {hi:g} at once")
    return None


def _bound(node: ast.AST) -> tuple[str, type, float] | None:
    """``name op number`` (either way round) as (name, op, number); a chained or other comparison is None."""
    if not isinstance(node, ast.Compare) or len(node.ops) != 1 or type(node.ops[0]) not in _FLIP:
        return None
    op = type(node.ops[0])
    for name, other, o in ((node.left, node.comparators[0], op), (node.comparators[0], node.left, _FLIP[op])):
        number = _literal(other)
        if isinstance(name, ast.Name) and number is not None and o is not ast.NotEq:
            return name.id, o, number
    return None


def _rule_conditions(s: _Subject) -> Iterator[tuple[tuple[Any, ...], str, ast.AST]]:
    """Each floor (of either level), warning and action condition, at its place in the document."""
    p = s.policy
    compiled: dict[tuple[str, str], ast.AST] = {("rules", r.id): r.expr.tree
                                                 for r in (*p.floors, *(p.scoped.floors if p.scoped else ()))}
    # A classification rule's warning is its rule; the warnings section holds the others.
    compiled.update({("warnings", w.id): w.expr.tree for w in p.warnings if not w.from_rule})
    compiled.update({("actions", a.id): a.expr.tree for a in p.actions})
    rules = (s.data.get("classification") or {}).get("rules") or []
    places = [(("classification", "rules", i, "when"), "rules", r) for i, r in enumerate(rules)]
    places += [((section, i, "when"), section, r) for section in ("warnings", "actions")
               for i, r in enumerate(s.data.get(section) or [])]
    for path, section, raw in places:
        rid = raw.get("id") if isinstance(raw, dict) else None
        if isinstance(rid, str) and (section, rid) in compiled:
            yield path, rid, compiled[(section, rid)]


def _metric_places(s: _Subject) -> Iterator[tuple[str, Any]]:
    p = s.policy
    declared = s.data.get("metrics") or {}
    for m in (*p.metrics, *(p.scoped.metrics if p.scoped else ())):
        if m.name in declared:  # an imported metric is its module's to lint
            yield m.name, m


_BOUNDED = {"count_where": (0.0, None), "share_where": (0.0, 1.0)}
_EXTREMES = ("min_of", "max_of", "min_where", "max_where")


def _ranges(p: CompiledPolicy) -> dict[str, tuple[float | None, float | None]]:
    """The range each numeric name can take: declared for inputs, implied for an aggregation metric, and 0 to 1
    for a share written as the quotient of a part and its whole (:class:`_Shares`)."""
    inputs = [*p.inputs, *(i for specs in (p.scoped.inputs.values() if p.scoped else ()) for i in specs)]
    ranges: dict[str, tuple[float | None, float | None]] = {
        i.name: (i.min, i.max) for i in inputs if i.type in ("number", "integer") and not i.series}
    metrics = (*p.metrics, *(p.scoped.metrics if p.scoped else ()))
    shares = _Shares({m.name: m.expr.tree for m in metrics}, ranges)
    for m in metrics:
        t = m.expr.tree
        if not (isinstance(t, ast.Call) and isinstance(t.func, ast.Name)):
            continue
        if t.func.id in _BOUNDED:
            ranges[m.name] = _BOUNDED[t.func.id]
        elif t.func.id in _EXTREMES and len(t.args) > 1 and isinstance(t.args[1], ast.Name) \
                and t.args[1].id in ranges:
            ranges[m.name] = ranges[t.args[1].id]
        elif t.func.id == "ratio" and len(t.args) == 2 and shares.part_of(t.args[0], t.args[1]):
            ranges[m.name] = (0.0, 1.0)
    return ranges


class _Shares:
    """Proves a quotient is a share: its numerator a part of its denominator, both not negative.

    ``ratio(round(a * 100), round(b * 100))`` with ``a = sum_where(S, x, cond)`` and ``b = sum_of(S, x)``, x never
    negative, lies in 0 to 1: a sum over some elements is at most the sum over all of them, and rounding or
    scaling both by one positive number keeps the order. Sound and small: what it cannot prove stays unknown (an
    amount from another source is not declared at most that source's total, so a share of it is not proven one)."""

    def __init__(self, metrics: dict[str, ast.AST], ranges: dict[str, tuple[float | None, float | None]]) -> None:
        self.metrics, self.ranges = metrics, ranges

    def _open(self, node: ast.AST, seen: frozenset[str]) -> tuple[ast.AST, frozenset[str]]:
        """A metric's name as its expression; ``round(x)``, ``round(x, n)`` and ``coalesce(x, 0)`` as x (monotone,
        and a null part or whole gives no share)."""
        while True:
            if isinstance(node, ast.Name) and node.id in self.metrics and node.id not in seen:
                seen = seen | {node.id}
                node = self.metrics[node.id]
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args and (
                    node.func.id == "round" or (node.func.id == "coalesce" and len(node.args) == 2
                                                and _literal(node.args[1]) == 0.0)):
                node = node.args[0]
            else:
                return node, seen

    def part_of(self, part: ast.AST, whole: ast.AST, seen: frozenset[str] = frozenset()) -> bool:
        part, seen_p = self._open(part, seen)
        whole, seen_w = self._open(whole, seen)
        if isinstance(part, ast.BinOp) and isinstance(whole, ast.BinOp) and isinstance(part.op, ast.Mult) \
                and isinstance(whole.op, ast.Mult):
            k1, k2 = _literal(part.right), _literal(whole.right)
            return k1 is not None and k1 == k2 and k1 > 0 and self.part_of(part.left, whole.left, seen_p | seen_w)
        if not (isinstance(part, ast.Call) and isinstance(whole, ast.Call) and isinstance(part.func, ast.Name)
                and isinstance(whole.func, ast.Name)):
            return False
        if part.func.id != "sum_where" or whole.func.id != "sum_of" or len(part.args) != 3 or len(whole.args) != 2:
            return False
        same = ast.dump(part.args[0]) == ast.dump(whole.args[0]) and ast.dump(part.args[1]) == ast.dump(whole.args[1])
        return same and self.not_negative(part.args[1], seen_p | seen_w)

    def not_negative(self, node: ast.AST, seen: frozenset[str]) -> bool:
        """Whether every value of ``node`` is at least 0: a name declared so, a sum or product of such, a
        coalesce with such a default, a rounding of one."""
        if isinstance(node, ast.Name):
            if node.id in self.metrics and node.id not in seen:
                return self.not_negative(self.metrics[node.id], seen | {node.id})
            low = self.ranges.get(node.id, (None, None))[0]
            return low is not None and low >= 0
        value = _literal(node)
        if value is not None:
            return value >= 0
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
            return self.not_negative(node.left, seen) and self.not_negative(node.right, seen)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("coalesce", "round"):
            parts = node.args if node.func.id == "coalesce" else node.args[:1]
            return bool(parts) and all(self.not_negative(a, seen) for a in parts)
        return False


def _comparisons(node: ast.AST, ranges: dict[str, tuple[float | None, float | None]],
                 consts: dict[str, tuple[float, ...]]) -> Iterator[tuple[str, type, tuple[float, ...]]]:
    """``node`` as (name, op, the numbers compared with) when it compares a ranged name with numbers."""
    if not isinstance(node, ast.Compare) or len(node.ops) != 1 or type(node.ops[0]) not in _FLIP:
        return
    op = type(node.ops[0])
    for name, other, o in ((node.left, node.comparators[0], op), (node.comparators[0], node.left, _FLIP[op])):
        if not (isinstance(name, ast.Name) and name.id in ranges):
            continue
        number = _literal(other)
        if number is not None:
            yield name.id, o, (number,)
        elif isinstance(other, ast.Name) and other.id in consts and other.id not in ranges:
            yield name.id, o, consts[other.id]


def _literal(node: ast.AST) -> float | None:
    """A number written in the expression (``90``, ``-0.3``), else None."""
    sign = 1.0
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        sign, node = -1.0, node.operand
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return sign * float(node.value)
    return None


def _atom_verdict(node: ast.AST, ranges: dict[str, tuple[float | None, float | None]],
                  consts: dict[str, tuple[float, ...]]) -> bool | None:
    for name, op, values in _comparisons(node, ranges, consts):
        lo, hi = ranges[name]
        verdicts = {_decided(op, c, lo, hi) for c in values}
        if len(verdicts) == 1:
            return verdicts.pop()
    return None


def _why(node: ast.AST, ranges: dict[str, tuple[float | None, float | None]],
         consts: dict[str, tuple[float, ...]]) -> str | None:
    """The range that decides a comparison, in words: what the author must see to fix it."""
    for n in ast.walk(node):
        for name, _, values in _comparisons(n, ranges, consts):
            lo, hi = ranges[name]
            if _atom_verdict(n, ranges, consts) is None:
                continue
            span = f"at least {lo:g}" if hi is None else f"at most {hi:g}" if lo is None else f"{lo:g} to {hi:g}"
            shown = ", ".join(f"{v:g}" for v in values)
            share = " (a share: 0.2 is 20%)" if (lo, hi) == (0.0, 1.0) else ""
            return f"'{name}' is {span}{share}; the condition compares it with {shown}"
    return None


def _decided_parts(s: _Subject, path: tuple[Any, ...], rid: str, tree: ast.AST,
                   ranges: dict[str, tuple[float | None, float | None]],
                   consts: dict[str, tuple[float, ...]], skip_root: bool = True) -> Iterator[Diagnostic]:
    """A comparison the ranges decide, inside a condition they do not decide as a whole (its root, judged on its
    own, unless ``tree`` is a part of the condition: the 'when' or the 'for_exposures' of one that has both)."""
    for node in ast.walk(tree):
        if node is tree and skip_root:
            continue
        verdict = _atom_verdict(node, ranges, consts)
        if verdict is None:
            continue
        code = "condition-always-true" if verdict else "condition-never-true"
        yield s.finding(code, f"'{ast.unparse(node)}' in '{rid}' is {'always' if verdict else 'never'} true "
                        "under the declared ranges", path, rid,
                        (_why(node, ranges, consts) or "") + ": drop it, or fix the number")


def floor_shadowed(s: _Subject) -> Iterator[Diagnostic]:
    """A floor implied by another of the same or a worse grade can never decide a grade. Floors are compared
    within one scope (the debtor's, the graded scope's): each grades its own elements. A threshold is a number
    or a parameter (each segment's value)."""
    p = s.policy
    grade_rank = {g: k for k, g in enumerate(p.grade_ids)}
    rules = (s.data.get("classification") or {}).get("rules") or []
    at = {r.get("id"): k for k, r in enumerate(rules) if isinstance(r, dict) and isinstance(r.get("id"), str)}
    for floors in (p.floors, p.scoped.floors if p.scoped else ()):
        atoms = [(r, _atom(r.expr.tree, p.parameters)) for r in floors if r.id in at]
        for r, atom in atoms:
            if atom is None:
                continue
            for other, other_atom in atoms:
                if other is r or other_atom is None or grade_rank[other.floor] < grade_rank[r.floor]:
                    continue
                # Two floors that imply each other: only the one with the later id is reported.
                if _implies(atom, other_atom) and not (_implies(other_atom, atom) and other.id > r.id):
                    yield s.finding("floor-shadowed", f"floor '{r.id}' is shadowed by '{other.id}': whenever it "
                                    f"fires, '{other.id}' fires with grade {other.floor}",
                                    ("classification", "rules", at[r.id], "when"), r.id,
                                    "remove it, or make it set a worse grade" + _param_values(other, p.parameters))
                    break


def _param_values(floor: Any, params: Mapping[str, Mapping[str, Any]]) -> str:
    """The values of the parameters a shadowing floor compares with, for the hint (``overdue_sub_days`` is 90)."""
    names = sorted({n.id for n in ast.walk(floor.expr.tree) if isinstance(n, ast.Name) and n.id in params})
    shown = [f"{n} is {', '.join(f'{v:g}' for v in dict.fromkeys(params[n].values()))}" for n in names]
    return f" ({'; '.join(shown)})" if shown else ""


def changelog_lacks_version(s: _Subject) -> Iterator[Diagnostic]:
    """A version whose changelog does not say what it changed: the first thing a reviewer of a release reads
    (``diff`` shows what moved, the changelog why). A copied file keeps its predecessor's entries only."""
    entries = s.data.get("changelog") or []
    if any(isinstance(e, dict) and str(e.get("version")) == s.policy.version for e in entries):
        return
    latest = next((str(e.get("version")) for e in entries if isinstance(e, dict)), None)
    yield s.finding("changelog-lacks-version", f"the changelog has no entry for version {s.policy.version}"
                    + (f" (its newest is {latest})" if latest else ""), ("changelog",), None,
                    f"add '- {{version: {s.policy.version}, date: ..., changes: [...]}}' first: what changed and why")


_ID_NUMBER = re.compile(r"(?<![0-9])[0-9]{2,}(?![0-9])")  # 90 in overdue_over_90; not the 3 of review_level_3


def rule_id_number(s: _Subject) -> Iterator[Diagnostic]:
    """A rule whose id names a number its condition no longer compares with: ``overdue_over_90`` edited to
    ``dpd > 60`` still reads "over 90" in every decision, test and report. The condition's numbers
    are its literals, the values of the parameters it reads, the numbers in the names it reads
    (``overdue_90_share``) and, through the metrics it reads, theirs; a share written as a percentage in
    the id (``contagion_10pct`` for 0.1) counts. Every number the id names must hold: ``overdue_90_to_180``
    edited to compare with 90 and 360 is reported for its 180."""
    p = s.policy
    metrics = {m.name: m.expr.tree for m in (*p.metrics, *(p.scoped.metrics if p.scoped else ()))}
    params = {n: [float(v) for v in values.values() if isinstance(v, int | float) and not isinstance(v, bool)]
              for n, values in p.parameters.items()}
    for path, rid, tree in _rule_conditions(s):
        named = [int(x) for x in _ID_NUMBER.findall(rid)]
        if not named:
            continue
        echoed: set[float] = set()
        found = _numbers(tree, metrics, params, set(), echoed)
        # each number the id names must still be one: overdue_90_to_180 edited to 90..360 is found too
        lost = [n for n in named if n not in echoed
                and not any(abs(n - v) < 1e-9 or abs(n - v * 100) < 1e-6 for v in found)]
        if not found or not lost:
            continue
        shown = ", ".join(f"{v:g}" for v in sorted(found)[:6])
        yield s.finding("rule-id-number", f"'{rid}' names {' and '.join(map(str, lost))}, but its condition "
                        f"compares with {shown}", path, rid,
                        "check the threshold, or rename the rule (its id is its name in every decision and test)")


def _numbers(tree: ast.AST, metrics: dict[str, ast.AST], params: dict[str, list[float]], seen: set[str],
             echoed: set[float]) -> set[float]:
    """The numbers a condition compares with, through the metrics it reads; ``echoed`` gets the numbers in
    the names it reads (a number in ``overdue_90_share`` is the id echoing that name, not a threshold)."""
    out: set[float] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            out.add(float(node.value))
        elif isinstance(node, ast.Name):
            echoed.update(float(x) for x in _ID_NUMBER.findall(node.id))
            if node.id in params:
                out.update(params[node.id])
            elif node.id in metrics and node.id not in seen:
                seen.add(node.id)
                out |= _numbers(metrics[node.id], metrics, params, seen, echoed)
    return out


# The lint checks, in reporting order: a new finding is one function here and one planted policy
# in tests/data/lint_policies.
def param_reads_debtor_grade(s: _Subject) -> Iterator[Diagnostic]:
    """A computed parameter of an action that lists exposures (``for_exposures``) and reads the grade: the debtor's
    grade, one value shown beside every exposure listed, whatever each one's own grade ('to_stage=3' beside a stage
    1 exposure, an IFRS 9 author's review)."""
    for k, a in enumerate(s.policy.actions):
        if a.for_exposures is None:
            continue
        for name, expr in a.param_exprs.items():
            if expr.uses_grade:
                yield s.finding("param-reads-debtor-grade", f"parameter '{name}' of action '{a.id}' reads the debtor's "
                                "grade: one value for every exposure the action lists (for_exposures), whatever each "
                                "one's own grade", ("actions", k, "params", name), a.id,
                                "a parameter has one value for the action: to act on each exposure's own grade, write "
                                "an action per grade, each listing the exposures of that grade "
                                "(for_exposures: grade_at_least('...') and not grade_at_least('...'))")


CHECKS: tuple[Callable[[_Subject], Iterator[Diagnostic]], ...] = (
    metric_unused,
    parameter_unused,
    import_unused,
    condition_decided_by_ranges,
    condition_contradicts_itself,
    floor_shadowed,
    rule_id_number,
    changelog_lacks_version,
    param_reads_debtor_grade,
)


def lint(policy: CompiledPolicy, doc: Document) -> list[Diagnostic]:
    """Every finding of every check in :data:`CHECKS` (warnings: the policy stays valid)."""
    subject = _Subject(policy, doc)
    return [d for check in CHECKS for d in check(subject)]


def _condition_verdict(tree: ast.AST, ranges: dict[str, tuple[float | None, float | None]],
                       consts: dict[str, tuple[float, ...]]) -> bool | None:
    if isinstance(tree, ast.BoolOp):
        verdicts = [_condition_verdict(v, ranges, consts) for v in tree.values]
        if isinstance(tree.op, ast.And):
            return False if False in verdicts else (True if all(v is True for v in verdicts) else None)
        return True if True in verdicts else (False if all(v is False for v in verdicts) else None)
    return _atom_verdict(tree, ranges, consts)
