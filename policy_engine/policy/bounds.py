"""What an expression can produce, proved from its checked tree: a range of numbers or a set of strings.

The checker proves types and nullability; this module proves values, for one purpose: a computed
action parameter (``months: {expr: ...}``) that can never be a value the catalogue allows is an
error at validate time, not an action that is silently undetermined on every client. The analysis
is deliberately small and sound: a literal, a parameter's value (one segment at a time), an input's
declared min and max, a string input's enum, a metric's own proven range, ``+ - *`` and ``/`` by a
range without zero, ``min``/``max``/``abs``/``round``/``coalesce`` and both branches of a conditional.
Anything else is unknown (``None``), and unknown is never an error: the decision refuses a bad
value at run time instead, visibly.

A range over-approximates: every non-null value the expression can give lies in it. So a range
wholly outside what the catalogue allows proves that every value is refused.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterator, Mapping

from ..frozen import Frozen
from ..language.expressions import CheckedExpression
from ..language.functions import FUNCTIONS
from .catalogue import Param, allowed_values


class Interval(Frozen):
    """Every value lies in [low, high]; ``whole`` when every value is a whole number."""

    low: float
    high: float
    whole: bool = False

    def text(self) -> str:
        return f"{self.low:g}" if self.low == self.high else f"[{self.low:g}, {self.high:g}]"


# What is known of a value: a range of numbers, a finite set of strings, or nothing (None).
Domain = Interval | frozenset[str] | None


def point(value: object) -> Domain:
    """The domain of one known value (a literal, or a parameter in one segment)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and math.isfinite(value):
        return Interval(float(value), float(value), float(value).is_integer())
    if isinstance(value, str):
        return frozenset({value})
    return None


def _interval(low: float, high: float, whole: bool) -> Interval | None:
    """A computed range, or unknown when arithmetic left the finite numbers."""
    if math.isnan(low) or math.isnan(high) or math.isinf(low) or math.isinf(high):
        return None
    return Interval(low, high, whole)


def _union(parts: list[Domain]) -> Domain:
    """Where a value that is one of ``parts`` lies (the branches of a conditional, coalesce's arguments)."""
    if not parts or any(p is None for p in parts):
        return None
    if all(isinstance(p, Interval) for p in parts):
        ranges = [p for p in parts if isinstance(p, Interval)]
        return Interval(min(r.low for r in ranges), max(r.high for r in ranges), all(r.whole for r in ranges))
    if all(isinstance(p, frozenset) for p in parts):
        return frozenset().union(*(p for p in parts if isinstance(p, frozenset)))
    return None


def _ranges(parts: list[Domain]) -> list[Interval] | None:
    out = [p for p in parts if isinstance(p, Interval)]
    return out if len(out) == len(parts) else None


def _arith(op: ast.operator, a: Interval, b: Interval) -> Interval | None:
    whole = a.whole and b.whole
    if isinstance(op, ast.Add):
        return _interval(a.low + b.low, a.high + b.high, whole)
    if isinstance(op, ast.Sub):
        return _interval(a.low - b.high, a.high - b.low, whole)
    if isinstance(op, ast.Mult):
        corners = [a.low * b.low, a.low * b.high, a.high * b.low, a.high * b.high]
        return _interval(min(corners), max(corners), whole)
    if isinstance(op, ast.Div) and (b.low > 0 or b.high < 0):  # a divisor range with zero: unknown
        corners = [a.low / b.low, a.low / b.high, a.high / b.low, a.high / b.high]
        return _interval(min(corners), max(corners), False)
    return None


def _monotone(f: Callable[[float], float], r: Interval, whole: bool) -> Interval | None:
    """A non-decreasing function maps a range to the range of its ends."""
    return _interval(f(r.low), f(r.high), whole)


def domain(expr: CheckedExpression, env: Mapping[str, Domain]) -> Domain:
    """What ``expr`` can produce, given what is known of the names it reads (``env``)."""
    return _domain(expr.tree, env)


def _domain(node: ast.AST, env: Mapping[str, Domain]) -> Domain:
    if isinstance(node, ast.Constant):
        return point(node.value)
    if isinstance(node, ast.Name):
        return env.get(node.id)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        r = _domain(node.operand, env)
        if not isinstance(r, Interval):
            return None
        return r if isinstance(node.op, ast.UAdd) else Interval(-r.high, -r.low, r.whole)
    if isinstance(node, ast.BinOp):
        a, b = _domain(node.left, env), _domain(node.right, env)
        return _arith(node.op, a, b) if isinstance(a, Interval) and isinstance(b, Interval) else None
    if isinstance(node, ast.IfExp):
        return _union([_domain(node.body, env), _domain(node.orelse, env)])
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return _call(node.func.id, node.args, env)
    return None


def _call(name: str, args: list[ast.expr], env: Mapping[str, Domain]) -> Domain:
    """The range rule the function's table entry names (``bounds``); a function without one is unknown."""
    fn = FUNCTIONS.get(name)
    rule = _RULES.get(fn.bounds or "") if fn is not None else None
    return None if rule is None else rule([_domain(a, env) for a in args])


def _on_ranges(rule: Callable[[list[Interval]], Domain]) -> Callable[[list[Domain]], Domain]:
    """A rule over numeric ranges: unknown unless every argument has one."""
    return lambda parts: None if (ranges := _ranges(parts)) is None else rule(ranges)


def _clamping(rule: Callable[[list[Interval]], Domain]) -> Callable[[list[Domain]], Domain]:
    """``min``/``max`` bound their result by a known argument even when another is unknown (any number): a clamp
    ``min(max(x, 1), 30)`` of an unknown x lies in [1, 30]. The unknown argument stands for every number for the
    rule; a side left unbounded makes the result unknown unless an outer clamp bounds it."""
    def apply(parts: list[Domain]) -> Domain:
        if any(isinstance(p, frozenset) for p in parts) or all(p is None for p in parts):
            return None
        out = rule([p if isinstance(p, Interval) else Interval(-math.inf, math.inf) for p in parts])
        return out if isinstance(out, Interval) and not (math.isinf(out.low) and math.isinf(out.high)) else None
    return apply


def _min_rule(ranges: list[Interval]) -> Domain:
    return Interval(min(r.low for r in ranges), min(r.high for r in ranges), all(r.whole for r in ranges))


def _max_rule(ranges: list[Interval]) -> Domain:
    return Interval(max(r.low for r in ranges), max(r.high for r in ranges), all(r.whole for r in ranges))


def _abs_rule(ranges: list[Interval]) -> Domain:
    r = ranges[0]
    low = 0.0 if r.low <= 0 <= r.high else min(abs(r.low), abs(r.high))
    return Interval(low, max(abs(r.low), abs(r.high)), r.whole)


def _round_rule(ranges: list[Interval]) -> Domain:  # the checker makes digits a literal 0-10
    digits = int(ranges[1].low) if len(ranges) > 1 else 0
    return _monotone(lambda x: float(round(x, digits)), ranges[0], digits == 0 or ranges[0].whole)


# Range rules by the name a function's table entry gives (policy_engine.language.functions, ``bounds``).
_RULES: dict[str, Callable[[list[Domain]], Domain]] = {
    "union": _union,  # coalesce: the value of one of its arguments
    "min": _clamping(_min_rule), "max": _clamping(_max_rule), "abs": _on_ranges(_abs_rule),
    "round": _on_ranges(_round_rule),
}


def arms(node: ast.expr) -> Iterator[ast.expr]:
    """The values a conditional can give, each where it is written (a plain expression is its own arm)."""
    if isinstance(node, ast.IfExp):
        yield from arms(node.body)
        yield from arms(node.orelse)
    else:
        yield node


def refusal(spec: Param, d: Domain) -> str | None:
    """Why every value in ``d`` is refused by ``spec``, or None when some value may be allowed (or unknown)."""
    if isinstance(d, Interval) and spec.type in ("integer", "number"):
        outside = (spec.min is not None and d.high < spec.min) or (spec.max is not None and d.low > spec.max)
        if outside:
            return f"gives {d.text()}, outside {allowed_values(spec)}"
        if spec.type == "integer" and d.low == d.high and not d.low.is_integer():
            return f"gives {d.text()}, not a whole number"
    if isinstance(d, frozenset) and spec.enum and spec.type == "string" and d.isdisjoint(spec.enum):
        return f"gives {', '.join(repr(v) for v in sorted(d))}, not one of {', '.join(spec.enum)}"
    return None


def arm_domain(node: ast.expr, env: Mapping[str, Domain]) -> Domain:
    """What one arm of a parameter's expression can produce (see :func:`arms`): any subtree of a checked one."""
    return _domain(node, env)


def environments(inputs: Mapping[str, Mapping[str, object]], parameters: Mapping[str, Mapping[str, object]],
                 segments: tuple[str, ...], metrics: list[tuple[str, CheckedExpression]]
                 ) -> dict[str | None, dict[str, Domain]]:
    """What is known of every name, per segment (None: the default values), from a policy's sections.

    Inputs give their declared range (both min and max) or enum; a parameter is the one value it
    has in that segment; metrics (in dependency order) the range their expression proves.
    """
    base: dict[str, Domain] = {}
    for name, v in inputs.items():
        if "[*]" in str(v["from"]):
            continue  # a series: functions over periods are not analysed
        if v["type"] in ("number", "integer") and isinstance(v.get("min"), int | float) \
                and isinstance(v.get("max"), int | float):
            base[name] = Interval(float(v["min"]), float(v["max"]), v["type"] == "integer")  # type: ignore[arg-type]
        elif v["type"] == "string" and isinstance(v.get("enum"), list):
            base[name] = frozenset(str(e) for e in v["enum"])  # type: ignore[union-attr]
    out: dict[str | None, dict[str, Domain]] = {}
    for seg in (None, *segments):
        env = dict(base)
        for name, p in parameters.items():
            if "table" in p:
                continue  # read through lookup(), whose cells are not analysed
            if "value" in p:
                env[name] = point(p["value"])
            else:
                by = p["by_segment"]
                assert isinstance(by, Mapping)
                env[name] = point(by.get(seg if seg else "default", by.get("default")))
        for name, expr in metrics:
            env[name] = domain(expr, env)
        out[seg] = env
    return out


def column(expr: CheckedExpression, node: ast.expr) -> int:
    """1-based character column of ``node`` in the expression's source (as the checker reports columns)."""
    joined = " ".join(expr.source.split("\n"))
    text = joined.lstrip()
    lead = len(joined) - len(text)
    return lead + len(text.rstrip().encode("utf-8")[:node.col_offset].decode("utf-8", "replace")) + 1
