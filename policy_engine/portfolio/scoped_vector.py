"""The vector evaluator for a policy with scopes: long tables, one row per element.

Each scope (exposures, their payments, the debtor's events) is one table of ``m`` rows with, per
row, the index of its parent's row (a debtor, or an element of the parent scope) and its position
under that parent (the record's order, or ``order_by``). An expression of a scope is evaluated
column-wise over that table; a name of an ancestor is gathered through the parent index; an
aggregation evaluates its arguments over the child table and reduces them per parent with the
null rules of ``docs/scopes.md``. Sums run position by position (element 0 of every parent, then
element 1, ...), so every parent adds its values in the order the row evaluator does, and the two
agree bit for bit. The evaluation order is the row path's: exposure metrics and floors (own
grades), debtor metrics, debtor floors applied to every exposure (final grades), metrics after
classification, warnings and actions.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..language import expressions as ex
from ..language.columns import Col
from ..policy.compiler import CompiledPolicy
from ..policy.scopes import ScopedPart
from .vector import (
    VectorEval,
    VectorResults,
    _as_bool,
    _full_size,
    columns_from_records,
    dates_to_days,
    evaluate_columns,
    input_column,
)


@dataclass
class Level:
    """One scope's elements over all debtors: input columns, parent rows and positions."""

    name: str
    parent_scope: str | None  # None: the debtor
    parent: np.ndarray  # per element, its parent's row
    pos: np.ndarray  # per element, its position under its parent (0, 1, ...)
    env: dict[str, Col]
    elements: list[dict[str, Any]]  # the row reader's dicts (the record builder writes results into them)
    positions: list[np.ndarray] | None = None  # the elements at each position, once computed (_by_position)

    @property
    def n(self) -> int:
        return len(self.parent)


@dataclass
class LongTables:
    """The elements of ``n`` debtors, by scope; after evaluation, the graded scope's results."""

    policy: CompiledPolicy
    n: int
    levels: dict[str, Level]
    own_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    floor_rank: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    floors: list[Col] = field(default_factory=list)  # the graded scope's floors, per element
    metrics: dict[str, Col] = field(default_factory=dict)  # the graded scope's metrics, per element
    current: np.ndarray | None = None  # the graded elements' rank that grade and grade_at_least read now

    @property
    def part(self) -> ScopedPart:
        assert self.policy.scoped is not None
        return self.policy.scoped

    # evaluators ------------------------------------------------------------------
    def evaluator(self, scope: str, up: VectorEval) -> VectorEval:
        """An evaluator over ``scope``'s table whose ancestors' names are read through ``up``."""
        level = self.levels[scope]
        env: dict[str, Col] = {}
        if scope == self.part.graded:
            env.update(self.metrics)
        ve = VectorEval(level.n, {**level.env, **env}, self.policy.grade_ids, grade_rank=None)
        if scope == self.part.graded and self.current is not None:
            ve.grade_rank = self.current
            ve.env["grade"] = Col(np.array(self.policy.grade_ids, dtype=object)[self.current],
                                  np.ones(level.n, bool))
        ve.scopes, ve.up, ve.up_index = self, up, level.parent
        return ve

    def aggregate(self, ve: VectorEval, node: ast.Call) -> Col:
        """One aggregation of ``ve``'s scope over a child scope, reduced per parent row."""
        name = node.func.id  # type: ignore[attr-defined]
        scope = node.args[0].id  # type: ignore[attr-defined]
        level = self.levels[scope]
        child = self.evaluator(scope, ve)
        with np.errstate(all="ignore"):
            if name == "worst_grade":
                return _worst(level, ve.n, self.current, self.policy.grade_ids)
            cols = [_full_size(child.node(a), level.n) for a in node.args[1:]]
        return REDUCERS[name](level, ve.n, cols)

    # stages ----------------------------------------------------------------------
    def grade_own(self, debtor: VectorEval) -> None:
        """The graded scope's metrics and floors: each exposure's own grade (before the debtor metrics)."""
        part = self.part
        if part.graded is None:
            return
        g = self.levels[part.graded]
        self._metrics(debtor, after=None)
        ve = self.evaluator(part.graded, debtor)
        own = np.zeros(g.n, np.int64)
        self.floors = []
        for r in part.floors:
            c = _as_bool(_full_size(ve.eval(r.expr), g.n))
            self.floors.append(c)
            own = np.maximum(own, np.where(c.data & c.valid, r.rank, 0))
        self.own_rank = own
        self.current = own

    def finalize(self, debtor: VectorEval, g_rank: np.ndarray) -> np.ndarray:
        """Debtor floors onto every exposure, the exposures' metrics after classification; the debtor's rank."""
        part = self.part
        self.floor_rank = g_rank.astype(np.int64)
        worst = self.floor_rank.copy()
        if part.graded is None:
            return g_rank
        g = self.levels[part.graded]
        self.rank = np.maximum(self.own_rank, self.floor_rank[g.parent])
        self.current = self.rank
        np.maximum.at(worst, g.parent, self.rank)
        self._metrics(debtor, after="classification")
        return worst.astype(g_rank.dtype)

    def _metrics(self, debtor: VectorEval, after: str | None) -> None:
        for m in (*self.part.metrics, *self.part.selectors):  # an action's exposures, as a boolean metric
            if m.after != after:
                continue
            ve = self.evaluator(self.part.graded or "", debtor)
            c = _full_size(ve.eval(m.expr), ve.n)
            if m.expr.type == ex.NUMBER:
                data = np.asarray(c.data, dtype=float)
                c = Col(data, c.valid & np.isfinite(data))
            elif m.expr.type == ex.BOOL:
                c = _as_bool(c)
            self.metrics[m.name] = c


# ------------------------------------------------------------------ reductions per parent
#
# Each walks the child elements position by position: position k of every parent at once. A
# parent's values are thus met in its own order, as the row helpers meet them.

def _by_position(level: Level) -> list[np.ndarray]:
    """The elements at position 0, 1, ... of their parents; every aggregation over the level walks them."""
    if level.positions is not None:
        return level.positions
    if not level.n:
        return []
    order = np.argsort(level.pos, kind="stable")
    bounds = np.searchsorted(level.pos[order], np.arange(int(level.pos.max()) + 2))
    level.positions = [order[bounds[k]:bounds[k + 1]] for k in range(len(bounds) - 1)]
    return level.positions


def _any_per(level: Level, n: int, mask: np.ndarray) -> np.ndarray:
    out = np.zeros(n, bool)
    out[level.parent[mask]] = True
    return out


def _bool(c: Col) -> tuple[np.ndarray, np.ndarray]:
    """(true, null) masks of a condition."""
    valid = np.asarray(c.valid, bool)
    return np.asarray(c.data, bool) & valid, ~valid


def _count_where(level: Level, n: int, cols: list[Col]) -> Col:
    true, null = _bool(cols[0])
    count = np.bincount(level.parent, weights=true.astype(float), minlength=n).astype(float)
    return Col(count, ~_any_per(level, n, null))


def _sum_where(level: Level, n: int, cols: list[Col]) -> Col:
    x = cols[0]
    if len(cols) == 1:
        take, null = np.ones(level.n, bool), ~np.asarray(x.valid, bool)
    else:
        take, cond_null = _bool(cols[1])
        null = cond_null | (take & ~np.asarray(x.valid, bool))
    values = np.where(take & np.asarray(x.valid, bool), np.asarray(x.data, float), 0.0)
    total = np.zeros(n)
    for idx in _by_position(level):
        total[level.parent[idx]] += values[idx]  # parents are distinct within one position
    return Col(total, ~_any_per(level, n, null))


def _share_where(level: Level, n: int, cols: list[Col]) -> Col:
    w, cond = cols
    true, cond_null = _bool(cond)
    null = cond_null | ~np.asarray(w.valid, bool)
    weight = np.where(np.asarray(w.valid, bool), np.asarray(w.data, float), 0.0)
    total, part = np.zeros(n), np.zeros(n)
    for idx in _by_position(level):
        p = level.parent[idx]
        total[p] += weight[idx]
        part[p] += np.where(true[idx], weight[idx], 0.0)
    positive = total > 0
    return Col(part / np.where(positive, total, 1.0), positive & ~_any_per(level, n, null))


def _any_of(level: Level, n: int, cols: list[Col]) -> Col:
    true, null = _bool(cols[0])
    some = _any_per(level, n, true)
    return Col(some, some | ~_any_per(level, n, null))


def _all_of(level: Level, n: int, cols: list[Col]) -> Col:
    true, null = _bool(cols[0])
    failed = _any_per(level, n, ~true & ~null)
    return Col(~failed, failed | ~_any_per(level, n, null))


def _extreme(level: Level, n: int, cols: list[Col], better: Any) -> Col:
    """Python's ``min``/``max``: the first of equal values is kept (a later one replaces it only if better)."""
    x = cols[0]
    data = np.asarray(x.data)
    out = np.zeros(n, dtype=data.dtype if data.dtype.kind in "if" else float)
    seen = np.zeros(n, bool)
    for idx in _by_position(level):
        p = level.parent[idx]
        v = data[idx]
        replace = ~seen[p] | better(v, out[p])
        out[p[replace]] = v[replace]
        seen[p] = True
    return Col(out, seen & ~_any_per(level, n, ~np.asarray(x.valid, bool)))


def _min_of(level: Level, n: int, cols: list[Col]) -> Col:
    return _extreme(level, n, cols, np.less)


def _max_of(level: Level, n: int, cols: list[Col]) -> Col:
    return _extreme(level, n, cols, np.greater)


def _scan(level: Level, x: Col, cond: Col, positions: Sequence[np.ndarray], out: np.ndarray) -> Col:
    """``x`` of each parent's first element, in the order of ``positions``, whose condition holds; a null
    condition met before it stops that parent's search with no value, as the row form's loop stops."""
    true, null = _bool(cond)
    data, x_valid = np.asarray(x.data), np.asarray(x.valid, bool)
    valid = np.zeros(len(out), bool)
    open_ = np.ones(len(out), bool)  # parents still looking
    for idx in positions:
        p = level.parent[idx]
        live = open_[p]
        idx, p = idx[live], p[live]
        stop_null = null[idx]
        hit = true[idx] & ~stop_null
        out[p[hit]] = data[idx[hit]]
        valid[p[hit]] = x_valid[idx[hit]]
        open_[p[hit | stop_null]] = False
    return Col(out, valid)


def _first_date(level: Level, n: int, cols: list[Col]) -> Col:
    d, cond = cols
    return _scan(level, d, cond, _by_position(level), np.zeros(n, dtype=np.int64))


def _last_of(level: Level, n: int, cols: list[Col]) -> Col:
    """``_first_date`` read backwards, for any value (a number, a date as days, a text)."""
    x, cond = cols
    data = np.asarray(x.data)
    out = np.zeros(n, dtype=data.dtype) if data.dtype.kind in "if" else np.full(n, None, dtype=object)
    return _scan(level, x, cond, list(reversed(_by_position(level))), out)


def _worst(level: Level, n: int, current: np.ndarray | None, grades: Sequence[str]) -> Col:
    assert current is not None
    worst = np.full(n, -1, np.int64)
    np.maximum.at(worst, level.parent, current)
    has = worst >= 0
    return Col(np.array(grades, dtype=object)[np.where(has, worst, 0)], has)


REDUCERS = {
    "count_where": _count_where, "sum_where": _sum_where, "sum_of": _sum_where, "share_where": _share_where,
    "any_of": _any_of, "all_of": _all_of, "min_of": _min_of, "max_of": _max_of, "first_date": _first_date,
    "last_of": _last_of,
}


# ------------------------------------------------------------------ building the tables

def long_tables(policy: CompiledPolicy, debtors: Sequence[dict[str, Any]]) -> LongTables:
    """The long tables of ``debtors``' elements (each as :func:`~..decide.scoped.read_scopes` reads them)."""
    part = policy.scoped
    assert part is not None
    levels: dict[str, Level] = {}

    def walk(scope: str, parent_scope: str | None, owners: Sequence[dict[str, Any]]) -> None:
        elements: list[dict[str, Any]] = []
        parent: list[int] = []
        pos: list[int] = []
        key = scope if parent_scope is None else "@" + scope
        for i, owner in enumerate(owners):
            for k, e in enumerate(owner.get(key, ())):
                elements.append(e)
                parent.append(i)
                pos.append(k)
        env = {spec.name: input_column(spec, [e.get(spec.name) for e in elements]) for spec in part.inputs[scope]}
        levels[scope] = Level(scope, parent_scope, np.array(parent, dtype=np.int64), np.array(pos, dtype=np.int64),
                              env, elements)
        for child in part.children(scope):
            walk(child.name, scope, elements)

    for s in part.children(None):
        walk(s.name, None, debtors)
    return LongTables(policy, len(debtors), levels)


@dataclass
class ScopedRun:
    """The vector results of ``n`` debtors: the debtors' (as a 1.x batch) and the tables with their elements."""

    debtors: VectorResults
    tables: LongTables


def evaluate_debtors(policy: CompiledPolicy, inputs: Sequence[tuple[Any, ...]], days: Sequence[dt.date],
                     elements: Sequence[dict[str, Any]]) -> ScopedRun:
    """Evaluate debtors (checked input tuples and elements by scope) column-wise."""
    tables = long_tables(policy, elements)
    cols = columns_from_records(policy, inputs)
    segments = None
    if policy.segment_by is not None:
        segments = cols[policy.segment_by].data
    res = evaluate_columns(policy, len(inputs), cols, segments, dates_to_days(days), scoped=tables)
    return ScopedRun(res, tables)


def fill_elements(run: ScopedRun, elements: Sequence[dict[str, Any]]) -> None:
    """Write the vector results of the graded scope into the element dicts, as the row path leaves them."""
    t = run.tables
    part = t.part
    grades = t.policy.grade_ids
    for i, d in enumerate(elements):
        d["@floor_rank"] = int(t.floor_rank[i]) if len(t.floor_rank) else 0
    if part.graded is None:
        return
    g = t.levels[part.graded]
    types = {m.name: m.expr.type for m in (*part.metrics, *part.selectors)}
    for j, e in enumerate(g.elements):
        e["@own_rank"], e["@rank"] = int(t.own_rank[j]), int(t.rank[j])
        e["@grade"] = grades[e["@rank"]]
        e["@floors"] = tuple(bool(c.data[j]) if c.valid[j] else None for c in t.floors)
        for name, c in t.metrics.items():
            e[name] = _python(c, j, types[name])


def _python(c: Col, j: int, kind: str) -> Any:
    if not c.valid[j]:
        return None
    v = c.data[j]
    if kind == "date":
        return dt.date.fromordinal(int(v) + dt.date(1970, 1, 1).toordinal())
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.floating | np.integer):
        return float(v)
    return v

