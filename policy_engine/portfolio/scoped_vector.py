"""The vector evaluator for a policy with scopes: long tables, one row per element.

Each scope (exposures, their payments, the debtor's events) is one table of ``m`` rows with, per
row, the index of its parent's row (a debtor, or an element of the parent scope) and its position
under that parent (the record's order, or ``order_by``). An expression of a scope is evaluated
column-wise over that table; a name of an ancestor is gathered through the parent index; an
aggregation evaluates its arguments over the child table and reduces them per parent with the
null rules of ``docs/scopes.md``, one pass over the child table (see :class:`Segments`): every
parent meets its values in its own order, as the row helpers do, so sums and extremes agree bit
for bit. The evaluation order is the row path's: exposure metrics and floors (own
grades), debtor metrics, debtor floors applied to every exposure (final grades), metrics after
classification, warnings and actions.
"""

from __future__ import annotations

import ast
import datetime as dt
import functools
import itertools
import operator
import threading
import weakref
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
    runs: Segments | None = None  # the elements by parent, once computed (segments)

    @property
    def n(self) -> int:
        return len(self.parent)

    def segments(self, parents: int) -> Segments:
        """The elements as runs per parent (of ``parents``), computed once: each aggregation reads them."""
        if self.runs is None:
            self.runs = Segments.of(self.parent, self.pos, parents)
        return self.runs


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
    # provisional_grades: unknown: the worst rank the undetermined floors could give, own and now (else None)
    own_rank_max: np.ndarray | None = None
    current_max: np.ndarray | None = None
    # Per scope, the values of the repeated subtrees (see _Shared) and of the ancestors' names
    # gathered onto its elements (with the ancestor's column they were gathered from).
    memo: dict[tuple[str, int], Col] = field(default_factory=dict)
    gathered: dict[tuple[str, str], tuple[Col, Col]] = field(default_factory=dict)
    grade_col: tuple[np.ndarray, Col] | None = None  # ``grade`` of the graded elements, for ``current``

    @property
    def part(self) -> ScopedPart:
        assert self.policy.scoped is not None
        return self.policy.scoped

    # evaluators ------------------------------------------------------------------
    def evaluator(self, scope: str, up: VectorEval) -> VectorEval:
        """An evaluator over ``scope``'s table whose ancestors' names are read through ``up``."""
        level = self.levels[scope]
        env = level.env
        if scope == self.part.graded:
            env = {**env, **self.metrics}
            if self.current is not None:
                env["grade"] = self._grade(self.current)
        ve = ScopeEval(scope, self, level.n, env, self.policy.grade_ids)
        if scope == self.part.graded:
            ve.grade_rank, ve.grade_rank_max = self.current, self.current_max
        ve.up, ve.up_index = up, level.parent
        return ve

    def _grade(self, rank: np.ndarray) -> Col:
        """The graded elements' ``grade`` for ``rank``, built once per stage (not per evaluator)."""
        if self.grade_col is None or self.grade_col[0] is not rank:
            col = Col(np.array(self.policy.grade_ids, dtype=object)[rank], np.ones(len(rank), bool))
            self.grade_col = (rank, col)
        return self.grade_col[1]

    def aggregate(self, ve: VectorEval, node: ast.Call) -> Col:
        """One aggregation of ``ve``'s scope over a child scope, reduced per parent row."""
        name = node.func.id  # type: ignore[attr-defined]
        scope = node.args[0].id  # type: ignore[attr-defined]
        level = self.levels[scope]
        seg = level.segments(ve.n)
        if name == "worst_grade":
            return _worst(seg, self.current, self.policy.grade_ids)
        child = self.evaluator(scope, ve)
        with np.errstate(all="ignore"):
            cols = [seg.arrange(_full_size(child.node(a), level.n)) for a in node.args[1:]]
            return REDUCERS[name](seg, cols)

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
        if part.provisional_unknown:  # the worst its undetermined floors could make it
            self.own_rank_max = self.current_max = functools.reduce(
                np.maximum, (np.where(c.valid, 0, r.rank) for r, c in zip(part.floors, self.floors, strict=True)),
                own)

    def finalize(self, debtor: VectorEval, g_rank: np.ndarray, debtor_floors: Sequence[Col] = ()) -> np.ndarray:
        """Debtor floors onto every exposure (one with ``for_exposures`` onto those it names), the exposures'
        metrics after classification; the debtor's rank."""
        part = self.part
        self.floor_rank = g_rank.astype(np.int64)
        worst = self.floor_rank.copy()
        if part.graded is None:
            return g_rank
        g = self.levels[part.graded]
        self.rank = np.maximum(self.own_rank, self.floor_rank[g.parent])
        for f, c in zip(self.policy.floors, debtor_floors, strict=True):
            if f.for_exposures is not None:  # only the exposures it names (the others took it in floor_rank)
                np.maximum(self.rank, np.where(self._named(f, c), f.rank, 0), out=self.rank)
        self.current = self.rank
        if part.provisional_unknown:
            self.current_max = self._rank_max(debtor_floors)
        seg = g.segments(self.n)
        np.maximum(worst, seg.reduce(np.maximum, self.rank if seg.order is None else self.rank[seg.order], 0),
                   out=worst)
        self._metrics(debtor, after="classification")
        return worst.astype(g_rank.dtype)

    def _rank_max(self, debtor_floors: Sequence[Col]) -> np.ndarray:
        """Per exposure, the worst rank it could have: its own undetermined floors, and the debtor floors that may
        yet apply to it (undetermined and not naming it out, or fired naming it undetermined)."""
        assert self.own_rank_max is not None
        parent = self.levels[self.part.graded or ""].parent
        out = np.maximum(self.rank, self.own_rank_max)
        for f, c in zip(self.policy.floors, debtor_floors, strict=True):
            undetermined = ~np.broadcast_to(c.valid, np.shape(c.data))[parent]
            if f.for_exposures is None:
                may = undetermined
            else:
                named = self.metrics[f.selector]
                unnamed = ~named.valid  # whether the floor names it is not known
                may = (undetermined & (unnamed | np.asarray(named.data, dtype=bool))) | \
                    ((c.data & c.valid)[parent] & unnamed)
            np.maximum(out, np.where(may, f.rank, 0), out=out)
        return out

    def debtor_floor_hits(self, debtor_floors: Sequence[Col]) -> list[np.ndarray]:
        """Per debtor floor (its results per debtor, in the policy's order), whether it applies to each exposure:
        it fired for the exposure's debtor and, with ``for_exposures``, names the exposure."""
        parent = self.levels[self.part.graded or ""].parent
        return [(c.data & c.valid)[parent] if f.for_exposures is None else self._named(f, c)
                for f, c in zip(self.policy.floors, debtor_floors, strict=True)]

    def _named(self, f: Any, c: Col) -> np.ndarray:
        """Per exposure, whether debtor floor ``f`` (its results ``c`` per debtor) fired and names it."""
        named = self.metrics[f.selector]
        fired = (c.data & c.valid)[self.levels[self.part.graded or ""].parent]
        return fired & named.valid & np.asarray(named.data, dtype=bool)

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


class ScopeEval(VectorEval):
    """The evaluator of one element scope in one :class:`LongTables`: what it computes is kept there.

    A subtree the policy writes more than once (the restructuring test of the financial-difficulty
    module feeds six metrics) is evaluated once per scope; an ancestor's name is gathered onto the
    scope's elements once, for as long as the ancestor's column is the same.
    """

    def __init__(self, scope: str, tables: LongTables, n: int, env: dict[str, Col], grades: Sequence[str]):
        super().__init__(n, env, grades)
        self.scope, self.scopes = scope, tables
        self.shared = _shared(tables.policy)

    def node(self, n: ast.AST) -> Col:
        key = self.shared.get(id(n))
        if key is None:
            return super().node(n)
        memo = self.scopes.memo
        got = memo.get((self.scope, key))
        if got is None:
            got = memo[(self.scope, key)] = super().node(n)
        return got

    def v_Name(self, n: ast.Name) -> Col:
        got = self.env.get(n.id)
        if got is not None or self.up is None or n.id == "null":
            return super().v_Name(n)
        up = self.up.v_Name(n)
        hit = self.scopes.gathered.get((self.scope, n.id))
        if hit is not None and hit[0] is up:
            return hit[1]
        c = _full_size(up, self.up.n)
        idx = self.up_index
        assert idx is not None
        got = Col(c.data[idx], c.valid[idx], None if c.present is None else c.present[idx])
        self.scopes.gathered[(self.scope, n.id)] = (up, got)
        return got


# A subtree's value depends only on the names it reads, except through these: the grade and score
# change between stages, the warnings and tables are the evaluator's, worst_grade reads the grades.
_STATEFUL_NAMES = frozenset({"grade", "score"})
_STATEFUL_CALLS = frozenset({"grade_at_least", "fired", "lookup", "worst_grade"})
_OPERATIONS = (ast.BoolOp, ast.Compare, ast.IfExp, ast.Call, ast.BinOp, ast.UnaryOp)
_SHARED: weakref.WeakKeyDictionary[CompiledPolicy, dict[int, int]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()


def _shared(policy: CompiledPolicy) -> dict[int, int]:
    """Per operation node of the policy's expressions (by id: the policy holds the trees) whose
    subtree is written more than once and reads nothing stateful, the number of its structure;
    computed once per policy."""
    got = _SHARED.get(policy)
    if got is None:
        pure: dict[int, int] = {}
        structures: dict[tuple[Any, ...], int] = {}
        for tree in _trees(policy):
            _structure(tree, structures, pure)
        counts: dict[int, int] = {}
        for k in pure.values():
            counts[k] = counts.get(k, 0) + 1
        got = {i: k for i, k in pure.items() if counts[k] > 1}
        with _SHARED_LOCK:
            _SHARED[policy] = got
    return got


def shared_columns(policy: CompiledPolicy) -> int:
    """How many subtree columns the evaluator computes once and keeps for a chunk (its memory per debtor)."""
    return len(_shared(policy))


def _structure(node: ast.AST, structures: dict[tuple[Any, ...], int], pure: dict[int, int]) -> tuple[int, bool]:
    """The number of ``node``'s structure (equal subtrees, equal numbers) and whether its value depends
    only on the names it reads; the pure operations are entered in ``pure``. One pass, bottom-up."""
    ok = not ((isinstance(node, ast.Name) and node.id in _STATEFUL_NAMES)
              or (isinstance(node, ast.Call) and getattr(node.func, "id", None) in _STATEFUL_CALLS))
    parts: list[Any] = [type(node).__name__]
    for _, value in ast.iter_fields(node):
        items = value if isinstance(value, list) else [value]
        sub: list[Any] = []
        for v in items:
            if isinstance(v, ast.AST):
                k, p = _structure(v, structures, pure)
                sub.append(k)
                ok = ok and p
            else:
                sub.append((type(v).__name__, repr(v)))  # 1, 1.0 and True are equal, not the same
        parts.append(tuple(sub))
    key = structures.setdefault(tuple(parts), len(structures))
    if ok and isinstance(node, _OPERATIONS):
        pure[id(node)] = key
    return key, ok


def _trees(policy: CompiledPolicy) -> list[ast.AST]:
    """Every expression tree of the policy, at every level."""
    specs: list[Any] = [*policy.metrics, *policy.factors, *policy.floors, *policy.warnings]
    for a in policy.actions:
        specs += [a, *([a.restructuring] if a.restructuring else [])]
    if policy.scoped is not None:
        specs += [*policy.scoped.metrics, *policy.scoped.floors, *policy.scoped.selectors]
    exprs = [s.expr for s in specs if getattr(s, "expr", None) is not None]
    exprs += [e for a in policy.actions for e in a.param_exprs.values()]
    return [e.tree for e in exprs]


# ------------------------------------------------------------------ reductions per parent
#
# A level's elements are grouped by parent, in each parent's order (the long tables are built
# that way; another layout is sorted once, see Segments). A reduction is then one pass over the
# level: counts are differences of a running count, sums are ``bincount``'s adds in element
# order (each parent's values in its own order, as the row helpers add them), extremes are
# ``reduceat`` over each parent's run, a first or last match is the first or last candidate of
# each run.


@dataclass
class Segments:
    """A level's elements as runs of one parent each, in the parent's order: what every reduction walks."""

    n: int  # parents
    order: np.ndarray | None  # the elements in (parent, position) order; None: they are already
    parent: np.ndarray  # per element (in that order), its parent's row: non-decreasing
    starts: np.ndarray  # n + 1 offsets: parent i's elements are starts[i]:starts[i + 1]
    heads: np.ndarray  # the offsets of the parents with elements (``reduceat`` cannot take an empty run)
    has: np.ndarray  # per parent: has elements
    filled: np.ndarray  # the parents with elements (indices: a random boolean mask indexes slowly)

    @classmethod
    def of(cls, parent: np.ndarray, pos: np.ndarray, n: int) -> Segments:
        order = None
        if len(parent) > 1:
            step = np.diff(parent)
            if not bool(((step > 0) | ((step == 0) & (np.diff(pos) > 0))).all()):
                order = np.lexsort((pos, parent))
                parent = parent[order]
        counts = np.bincount(parent, minlength=n)
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=starts[1:])
        has = counts > 0
        filled = np.flatnonzero(has)
        return cls(n, order, parent, starts, starts[filled], has, filled)

    def arrange(self, c: Col) -> Col:
        """``c`` (one value per element, in the level's order) in run order."""
        if self.order is None:
            return c
        return Col(np.asarray(c.data)[self.order], np.asarray(c.valid)[self.order])

    def count(self, mask: np.ndarray) -> np.ndarray:
        """Per parent, how many of its elements ``mask`` holds."""
        kind = np.int32 if len(mask) < 2**31 else np.int64  # half the memory to stream
        running = np.zeros(len(mask) + 1, kind)
        np.cumsum(mask, out=running[1:], dtype=kind)
        return running[self.starts[1:]] - running[self.starts[:-1]]  # type: ignore[no-any-return]

    def any(self, mask: np.ndarray) -> np.ndarray:
        return self.count(mask) > 0

    def first(self, mask: np.ndarray, last: bool = False) -> np.ndarray:
        """Per parent, the index of its first (``last``: last) element ``mask`` holds; -1 for none."""
        idx = np.flatnonzero(mask)
        p = self.parent[idx]
        out = np.full(self.n, -1, np.int64)
        if len(idx):
            change = np.flatnonzero(p[1:] != p[:-1])  # the element before each change of parent
            edge = np.append(change, len(idx) - 1) if last else np.insert(change + 1, 0, 0)
            out[p[edge]] = idx[edge]
        return out

    def reduce(self, ufunc: np.ufunc, values: np.ndarray, empty: Any) -> np.ndarray:
        """``ufunc`` over each parent's run; ``empty`` for the parents without elements."""
        out = np.full(self.n, empty, dtype=values.dtype)
        if len(self.heads):
            out[self.filled] = ufunc.reduceat(values, self.heads)
        return out



def _bool(c: Col) -> tuple[np.ndarray, np.ndarray]:
    """(true, null) masks of a condition."""
    valid = np.asarray(c.valid, bool)
    return np.asarray(c.data, bool) & valid, ~valid


def _count_where(seg: Segments, cols: list[Col]) -> Col:
    true, null = _bool(cols[0])
    return Col(seg.count(true).astype(float), ~seg.any(null))


def _sum_where(seg: Segments, cols: list[Col]) -> Col:
    x = cols[0]
    x_valid = np.asarray(x.valid, bool)
    if len(cols) == 1:
        keep, null = x_valid, ~x_valid
    else:
        take, cond_null = _bool(cols[1])
        keep, null = take & x_valid, cond_null | (take & ~x_valid)
    values = np.where(keep, np.asarray(x.data, float), 0.0)
    return Col(np.bincount(seg.parent, weights=values, minlength=seg.n), ~seg.any(null))


def _share_where(seg: Segments, cols: list[Col]) -> Col:
    w, cond = cols
    true, cond_null = _bool(cond)
    w_valid = np.asarray(w.valid, bool)
    weight = np.where(w_valid, np.asarray(w.data, float), 0.0)
    total = np.bincount(seg.parent, weights=weight, minlength=seg.n)
    part = np.bincount(seg.parent, weights=np.where(true, weight, 0.0), minlength=seg.n)
    positive = total > 0
    return Col(part / np.where(positive, total, 1.0), positive & ~seg.any(cond_null | ~w_valid))


def _any_of(seg: Segments, cols: list[Col]) -> Col:
    true, null = _bool(cols[0])
    some = seg.any(true)
    return Col(some, some | ~seg.any(null))


def _all_of(seg: Segments, cols: list[Col]) -> Col:
    true, null = _bool(cols[0])
    failed = seg.any(~true & ~null)
    return Col(~failed, failed | ~seg.any(null))


def _extreme(seg: Segments, cols: list[Col], exact: np.ufunc, skip_nan: np.ufunc) -> Col:
    """Python's ``min``/``max`` per parent: a value replaces the one kept only if it is better.

    Day numbers reduce exactly. Floats: a NaN met first is kept (nothing compares better), a later
    one never replaces (``fmin``/``fmax`` skip it); of equal values the first is kept, which only
    shows for zeros (0.0 or -0.0, whichever comes first).
    """
    x = cols[0]
    valid = np.asarray(x.valid, bool)
    ok = seg.has & ~seg.any(~valid)
    data = np.asarray(x.data)
    if data.dtype.kind == "i":
        return Col(seg.reduce(exact, data, 0), ok)
    values = np.where(valid, data.astype(float), np.nan)  # a null's run has no value: NaN is skipped
    out = seg.reduce(skip_nan, values, 0.0)
    if len(seg.heads):
        out[seg.filled] = np.where(np.isnan(values[seg.heads]), np.nan, out[seg.filled])
    zero = seg.has & (out == 0)
    if zero.any():
        out[zero] = values[seg.first(values == 0)[zero]]
    return Col(out, ok)


def _min_of(seg: Segments, cols: list[Col]) -> Col:
    return _extreme(seg, cols, np.minimum, np.fmin)


def _max_of(seg: Segments, cols: list[Col]) -> Col:
    return _extreme(seg, cols, np.maximum, np.fmax)


def _extreme_where(seg: Segments, cols: list[Col], exact: np.ufunc, skip_nan: np.ufunc) -> Col:
    """``_extreme`` over the elements whose condition holds; a null condition leaves the parent no value."""
    x, cond = cols
    true, null = _bool(cond)
    taken = np.flatnonzero(true)
    within = Segments.of(seg.parent[taken], np.arange(len(taken)), seg.n)  # still in run order
    best = _extreme(within, [Col(np.asarray(x.data)[taken], np.asarray(x.valid, bool)[taken])], exact, skip_nan)
    return Col(best.data, np.asarray(best.valid, bool) & ~seg.any(null))


def _min_where(seg: Segments, cols: list[Col]) -> Col:
    return _extreme_where(seg, cols, np.minimum, np.fmin)


def _max_where(seg: Segments, cols: list[Col]) -> Col:
    return _extreme_where(seg, cols, np.maximum, np.fmax)


def _match(seg: Segments, x: Col, cond: Col, out: np.ndarray, last: bool) -> Col:
    """``x`` of each parent's first (``last``: last) element whose condition holds; a null condition
    met before it (reading in that direction) leaves the parent no value, as the row form's loop stops."""
    true, null = _bool(cond)
    at = seg.first(true | null, last)
    rows = np.flatnonzero(at >= 0)
    idx = at[rows]
    hit = np.flatnonzero(true[idx])
    rows, idx = rows[hit], idx[hit]
    out[rows] = np.asarray(x.data)[idx]
    valid = np.zeros(seg.n, bool)
    valid[rows] = np.asarray(x.valid, bool)[idx]
    return Col(out, valid)


def _first_date(seg: Segments, cols: list[Col]) -> Col:
    d, cond = cols
    return _match(seg, d, cond, np.zeros(seg.n, dtype=np.int64), last=False)


def _last_of(seg: Segments, cols: list[Col]) -> Col:
    """``_first_date`` read backwards, for any value (a number, a date as days, a text)."""
    x, cond = cols
    data = np.asarray(x.data)
    out = np.zeros(seg.n, dtype=data.dtype) if data.dtype.kind in "if" else np.full(seg.n, None, dtype=object)
    return _match(seg, x, cond, out, last=True)


def _worst(seg: Segments, current: np.ndarray | None, grades: Sequence[str]) -> Col:
    assert current is not None
    ranks = current if seg.order is None else current[seg.order]
    worst = seg.reduce(np.maximum, ranks.astype(np.int64, copy=False), -1)
    has = worst >= 0
    return Col(np.array(grades, dtype=object)[np.where(has, worst, 0)], has)


REDUCERS = {
    "count_where": _count_where, "sum_where": _sum_where, "sum_of": _sum_where, "share_where": _share_where,
    "any_of": _any_of, "all_of": _all_of, "min_of": _min_of, "max_of": _max_of, "first_date": _first_date,
    "last_of": _last_of, "min_where": _min_where, "max_where": _max_where,
}


# ------------------------------------------------------------------ building the tables

def long_tables(policy: CompiledPolicy, debtors: Sequence[dict[str, Any]]) -> LongTables:
    """The long tables of ``debtors``' elements (each as :func:`~..decide.scoped.read_scopes` reads them)."""
    part = policy.scoped
    assert part is not None
    levels: dict[str, Level] = {}

    def walk(scope: str, parent_scope: str | None, owners: Sequence[dict[str, Any]]) -> None:
        # Each owner's list, then every element in one chain; parents and positions from the counts, and each
        # input's values by one C-level map (a Python loop per element and per input cost half again as much).
        key = scope if parent_scope is None else "@" + scope
        lists = [owner.get(key, ()) for owner in owners]
        counts = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
        elements: list[dict[str, Any]] = list(itertools.chain.from_iterable(lists))
        parent = np.repeat(np.arange(len(owners), dtype=np.int64), counts)
        pos = np.arange(len(elements), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
        levels[scope] = Level(scope, parent_scope, parent, pos,
                              {spec.name: input_column(spec, _values(elements, spec.name))
                               for spec in part.inputs[scope]}, elements)
        for child in part.children(scope):
            walk(child.name, scope, elements)

    for s in part.children(None):
        walk(s.name, None, debtors)
    return LongTables(policy, len(debtors), levels)


def _values(elements: list[dict[str, Any]], name: str) -> list[Any]:
    """Each element's value of one input (the reader puts every input in every element; None: null)."""
    try:
        return list(map(operator.itemgetter(name), elements))
    except KeyError:  # an element built elsewhere, without the input
        return [e.get(name) for e in elements]


@dataclass
class ScopedRun:
    """The vector results of ``n`` debtors: the debtors' (as a 1.x batch) and the tables with their elements."""

    debtors: VectorResults
    tables: LongTables
    # The rule that set each exposure's final grade, once computed: the debtor and the exposure table read it.
    exposure_decided_by: np.ndarray | None = None


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
        if t.current_max is not None and t.own_rank_max is not None:
            e["@own_rank_max"], e["@rank_max"] = int(t.own_rank_max[j]), int(t.current_max[j])
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

