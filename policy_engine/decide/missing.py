"""What an aggregation read without a value: the evidence of an undetermined rule or a null metric.

A debtor rule that aggregates over exposures and their payments, and finds a fact missing, names
each element's missing value with its place in the record (``exposure E2: dpd`` at
``exposures[1].dpd``), so a reader sees which fact to supply rather than "no value".
"""

from __future__ import annotations

import ast
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from ..frozen import Frozen
from ..policy.compiler import InputSpec
from ..policy.scopes import ScopedPart, ScopeSpec

MAX_NAMED = 20  # values without a value an undetermined rule names, at most (then how many more)


def missing_inside(part: ScopedPart, names: tuple[str, ...], elements: Mapping[str, Any],
                   scope: str | None = None, memo: dict[Any, dict[str, str]] | None = None,
                   only: tuple[str, frozenset[int]] | None = None) -> dict[str, str]:
    """What an aggregation read without a value, per element: ``{"exposure E2: dpd": "missing input at
    exposures[1].dpd"}``; an exposure metric without a value names what it lacked in turn.

    ``names`` are the names read inside aggregations (an expression's ``inner_refs``), ``elements``
    the children of one element of ``scope`` (None: the debtor's scopes). At most ``MAX_NAMED``
    entries, then one saying how many more. ``memo`` (one per decision, its elements unchanged)
    keeps each answer: the rules and metrics of a decision often read the same names (several dates of
    events read the same two fields of each event), and one walk answers them all; the answer is shared,
    so callers do not change it. ``only``: a child scope and the positions of its elements to look
    at (those that made an aggregation null); the other elements of that scope are passed over.
    """
    key = (names, scope, id(elements), only)
    if memo is not None:
        found = memo.get(key)
        if found is not None:
            return found
    reach = _reach(part)
    found = {}
    extra = 0
    for label, reason in _walk(reach, part, names, elements, scope, "", memo, only):
        if len(found) < MAX_NAMED:
            found[label] = reason
        else:
            extra += 1
    if extra:
        found[f"{extra} more"] = f"{extra} more values without a value in the same scopes"
    if memo is not None:
        memo[key] = found
    return found


class _Reach(Frozen):
    """Per scope: its own optional inputs by name, its children, and the names an element of it or of
    a scope below it can lack (so a walk skips the scopes that cannot name any of the names asked for);
    and the walks already planned, per set of names and scope (see :func:`_plans`).

    A required input is never without a value in an element decided (the readers refuse the record),
    so it is not among the names an element can lack: dates of events that matched no event read only
    the events' required kind and date, and their walk enters no scope at all.
    """

    metrics: Mapping[str, Any]
    may_match_none: frozenset[str]  # the metrics null when their condition passes over every element
    own: Mapping[str, Mapping[str, InputSpec]]
    children: Mapping[str | None, tuple[ScopeSpec, ...]]
    below: Mapping[str, frozenset[str]]
    plans: dict[tuple[tuple[str, ...], str | None], tuple[_Step, ...]]


# One scope a walk enters: the key of its list (in the debtor's elements, or in a parent element), its
# name, the names it checks in each element (sorted: name, input source or None, whether an exposure
# metric) and whether a scope below it can lack one of the names.
_Step = tuple[str, str, tuple[tuple[str, str | None, bool], ...], bool]

_REACH: weakref.WeakKeyDictionary[ScopedPart, _Reach] = weakref.WeakKeyDictionary()


def lackable(part: ScopedPart) -> frozenset[str]:
    """The names an element of some scope can be without: its optional inputs, the graded scope's metrics.
    An aggregation reading none of them lacks nothing in any decision."""
    return frozenset().union(*_reach(part).below.values())


def _reach(part: ScopedPart) -> _Reach:
    found = _REACH.get(part)
    if found is None:
        metrics = {m.name: m for m in part.metrics}
        own = {s.name: {spec.name: spec for spec in part.inputs[s.name] if not spec.required} for s in part.scopes}
        children = {None: part.children(None), **{s.name: part.children(s.name) for s in part.scopes}}
        below: dict[str, frozenset[str]] = {}

        def names_below(scope: str) -> frozenset[str]:
            if scope not in below:
                below[scope] = frozenset(own[scope]) | (frozenset(metrics) if scope == part.graded else frozenset())
                below[scope] = below[scope].union(*(names_below(c.name) for c in children[scope]))
            return below[scope]

        for s in part.scopes:
            names_below(s.name)
        matching_none = frozenset(m.name for m in part.metrics if may_match_none(m.expr.tree))
        found = _REACH[part] = _Reach(metrics, matching_none, own, children, below, {})
    return found


def _plans(reach: _Reach, part: ScopedPart, names: tuple[str, ...], scope: str | None) -> tuple[_Step, ...]:
    """The scopes below ``scope`` a walk for ``names`` enters, worked out once per policy: a walk then
    only reads elements (it decides every decision of a debtor with a null metric or rule)."""
    plan = reach.plans.get((names, scope))
    if plan is None:
        wanted = set(names)
        steps = []
        for child in reach.children[scope]:
            if wanted.isdisjoint(reach.below[child.name]):
                continue  # no element of this scope, nor below it, can lack one of these names
            own = reach.own[child.name]
            graded = child.name == part.graded
            here = tuple((n, own[n].source if n in own else None, graded and n in reach.metrics)
                         for n in sorted(wanted) if n in own or (graded and n in reach.metrics))
            deeper = any(not wanted.isdisjoint(reach.below[c.name]) for c in reach.children[child.name])
            steps.append((child.name if scope is None else "@" + child.name, child.name, here, deeper))
        plan = reach.plans[(names, scope)] = tuple(steps)
    return plan


def _walk(reach: _Reach, part: ScopedPart, names: tuple[str, ...], elements: Mapping[str, Any], scope: str | None,
          prefix: str, memo: dict[Any, dict[str, str]] | None,
          only: tuple[str, frozenset[int]] | None = None) -> Iterator[tuple[str, str]]:
    for key, name, here, deeper in _plans(reach, part, names, scope):
        picked = only[1] if only is not None and only[0] == name else None
        for i, e in enumerate(elements.get(key) or ()):
            if picked is not None and i not in picked:
                continue
            who = ""  # the element's label, written only when it names something
            for n, source, metric in here:
                if source is not None and e.get(n) is None:
                    who = who or f"{prefix}{name} {e.get('@key') or i + 1}"
                    yield f"{who}: {n}", f"missing input at {e.get('@at', '?')}.{source}"
                elif metric and n in e and e[n] is None:
                    who = who or f"{prefix}{name} {e.get('@key') or i + 1}"
                    yield f"{who}: {n}", _lacks(reach, part, n, e, name, memo)
            if deeper:
                who = who or f"{prefix}{name} {e.get('@key') or i + 1}"
                yield from _walk(reach, part, names, e, name, who + ", ", memo)


def metric_lacks(part: ScopedPart, name: str, e: Mapping[str, Any], scope: str,
                 memo: dict[Any, dict[str, str]] | None = None, known: dict[str, str] | None = None) -> str:
    """Why the metric ``name`` of element ``e`` (of ``scope``) has no value: what its aggregations lacked, else
    the element's own inputs it reads without a value, else what the first of its metrics without a value that
    says why lacked, in turn (a reader fills in an input, not a metric: a flag derived from two accounting
    fields says less than the two fields). ``known``: the answers for ``e`` so far (one per element, for the
    reasons of its every metric without a value: a chain of them is walked once)."""
    return _lacks(_reach(part), part, name, e, scope, memo, known=known)


def _lacks(reach: _Reach, part: ScopedPart, name: str, e: Mapping[str, Any], scope: str,
           memo: dict[Any, dict[str, str]] | None, depth: int = 0, known: dict[str, str] | None = None) -> str:
    if known is None:
        return _lacks_once(reach, part, name, e, scope, memo, depth, None)
    found = known.get(name)
    if found is None:
        found = known[name] = _lacks_once(reach, part, name, e, scope, memo, depth, known)
    return found


def _lacks_once(reach: _Reach, part: ScopedPart, name: str, e: Mapping[str, Any], scope: str,
                memo: dict[Any, dict[str, str]] | None, depth: int, known: dict[str, str] | None) -> str:
    spec = reach.metrics[name]
    if name not in reach.may_match_none:  # else the walk names every element its condition passed over
        inner = missing_inside(part, spec.expr.inner_refs, e, scope, memo)
        if inner:
            return "no value: " + "; ".join(f"{k} ({v})" for k, v in inner.items())
    own = reach.own[scope]
    lacking = [f"{e.get('@at', '?')}.{own[r].source}" for r in spec.expr.refs if r in own and e.get(r) is None]
    if lacking:
        return "no value: missing input " + ", ".join(lacking)
    for r in spec.expr.refs:  # the first of its metrics without a value that says why, in turn
        if depth < 8 and r in reach.metrics and r in e and e[r] is None:
            why = _lacks(reach, part, r, e, scope, memo, depth + 1, known)
            if why != "no value":
                return f"no value: depends on {r} ({why})"
    return "no value"


# Aggregations with no value when their condition passes over every element: one such is null when no payment
# was missed, and a walk of the names it reads would name each instalment not yet due as lacking its paid date.
_NONE_MATCHED_IS_NULL = frozenset({"min_where", "max_where", "first_date", "last_of"})


def may_match_none(tree: ast.AST) -> bool:
    """Whether the expression calls an aggregation that is null when its condition passes over every element."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in _NONE_MATCHED_IS_NULL
               for n in ast.walk(tree))


# The aggregations an element counts in only where its condition holds (its value read there alone);
# first_date and last_of also stop at the first (last_of: the last) hit or null condition. The others
# count every element: share_where each weight and condition, the rest their one argument.
_WHERE_HELD = frozenset({"sum_where", "min_where", "max_where"})
_AT_HIT = {"first_date": False, "last_of": True}  # whether it reads the elements last first


def aggregation_missing(part: ScopedPart, expr: Any, arguments: list[tuple[Any, ...]], elements: Mapping[str, Any],
                        memo: dict[Any, dict[str, str]] | None = None) -> dict[str, str] | None:
    """Why an expression that is one aggregation has no value, from each element's ``arguments`` as the
    decision computed them (see ``expressions.compile_element_arguments``): what the elements that made
    it null lack (a null condition, a null value where the condition held); ``{}`` when no element did
    (none met the condition, or there is none; for share_where: the total weight was not positive); None
    when the expression is not one aggregation over a scope."""
    tree = expr.tree
    name, scope = tree.func.id, tree.args[0].id
    null_value: set[int] = set()
    null_cond: set[int] = set()
    if name in _AT_HIT:
        order = range(len(arguments) - 1, -1, -1) if _AT_HIT[name] else range(len(arguments))
        for i in order:
            value, cond = arguments[i]
            if cond is None or (cond and value is None):
                (null_cond if cond is None else null_value).add(i)
                break
            if cond:
                break
    elif name in _WHERE_HELD:
        for i, (value, cond) in enumerate(arguments):
            if cond is None:
                null_cond.add(i)
            elif cond and value is None:
                null_value.add(i)
    elif name == "share_where":
        for i, (value, cond) in enumerate(arguments):
            if value is None:
                null_value.add(i)
            if cond is None:
                null_cond.add(i)
    elif len(tree.args) == 2:
        null_value = {i for i, (value,) in enumerate(arguments) if value is None}
    else:
        return None
    found: dict[str, str] = {}
    for i, picked in ((-1, null_cond), (1, null_value)):
        if picked:
            found.update(missing_inside(part, names_read(tree.args[i]), elements, memo=memo,
                                        only=(scope, frozenset(picked))))
    if (null_cond or null_value) and not found:
        return None  # computed without a value from values it had (a zero base): the generic reason says so
    return found


def names_read(node: ast.AST) -> tuple[str, ...]:
    """The names an expression's code reads (not the functions it calls), sorted."""
    called = {id(n.func) for n in ast.walk(node) if isinstance(n, ast.Call)}
    return tuple(sorted({n.id for n in ast.walk(node) if isinstance(n, ast.Name) and id(n) not in called}))
