"""What an aggregation read without a value: the evidence of an undetermined rule or a null metric.

A debtor rule that aggregates over exposures and their payments, and finds a fact missing, names
each element's missing value with its place in the record (``exposure E2: dpd`` at
``exposures[1].dpd``), so a reader sees which fact to supply rather than "no value".
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from ..frozen import Frozen
from ..policy.compiler import InputSpec
from ..policy.scopes import ScopedPart, ScopeSpec

MAX_NAMED = 20  # values without a value an undetermined rule names, at most (then how many more)


def missing_inside(part: ScopedPart, names: tuple[str, ...], elements: Mapping[str, Any],
                   scope: str | None = None) -> dict[str, str]:
    """What an aggregation read without a value, per element: ``{"exposure E2: dpd": "missing input at
    exposures[1].dpd"}``; an exposure metric without a value names what it lacked in turn.

    ``names`` are the names read inside aggregations (an expression's ``inner_refs``), ``elements``
    the children of one element of ``scope`` (None: the debtor's scopes). At most ``MAX_NAMED``
    entries, then one saying how many more.
    """
    found: dict[str, str] = {}
    extra = 0
    for label, reason in _walk(part, set(names), elements, scope, ""):
        if len(found) < MAX_NAMED:
            found[label] = reason
        else:
            extra += 1
    if extra:
        found[f"{extra} more"] = f"{extra} more values without a value in the same scopes"
    return found


class _Reach(Frozen):
    """Per scope: its own inputs by name, its children, and the names an element of it or of a scope
    below it can lack (so a walk skips the scopes that cannot name any of the names asked for)."""

    metrics: Mapping[str, Any]
    own: Mapping[str, Mapping[str, InputSpec]]
    children: Mapping[str | None, tuple[ScopeSpec, ...]]
    below: Mapping[str, frozenset[str]]


_REACH: weakref.WeakKeyDictionary[ScopedPart, _Reach] = weakref.WeakKeyDictionary()


def _reach(part: ScopedPart) -> _Reach:
    found = _REACH.get(part)
    if found is None:
        metrics = {m.name: m for m in part.metrics}
        own = {s.name: {spec.name: spec for spec in part.inputs[s.name]} for s in part.scopes}
        children = {None: part.children(None), **{s.name: part.children(s.name) for s in part.scopes}}
        below: dict[str, frozenset[str]] = {}

        def names_below(scope: str) -> frozenset[str]:
            if scope not in below:
                below[scope] = frozenset(own[scope]) | (frozenset(metrics) if scope == part.graded else frozenset())
                below[scope] = below[scope].union(*(names_below(c.name) for c in children[scope]))
            return below[scope]

        for s in part.scopes:
            names_below(s.name)
        found = _REACH[part] = _Reach(metrics, own, children, below)
    return found


def _walk(part: ScopedPart, names: set[str], elements: Mapping[str, Any], scope: str | None,
          prefix: str) -> Any:
    reach = _reach(part)
    metrics = reach.metrics
    for child in reach.children[scope]:
        if names.isdisjoint(reach.below[child.name]):
            continue  # no element of this scope, nor below it, can lack one of these names
        own = reach.own[child.name]
        graded = child.name == part.graded
        here = sorted(n for n in names if n in own or (graded and n in metrics))
        deeper = any(not names.isdisjoint(reach.below[c.name]) for c in reach.children[child.name])
        for i, e in enumerate(elements.get(child.name if scope is None else "@" + child.name) or ()):
            who = f"{prefix}{child.name} {e.get('@key') or i + 1}"
            for n in here:
                if n in own and e.get(n) is None:
                    yield f"{who}: {n}", f"missing input at {e.get('@at', '?')}.{own[n].source}"
                elif graded and n in metrics and n in e and e[n] is None:
                    inner = missing_inside(part, metrics[n].expr.inner_refs, e, child.name)
                    yield f"{who}: {n}", ("no value: " + "; ".join(f"{k} ({v})" for k, v in inner.items())
                                           if inner else "no value")
            if deeper:
                yield from _walk(part, names, e, child.name, who + ", ")
