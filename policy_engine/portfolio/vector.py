"""The vector evaluator: one compiled policy, a whole portfolio at once, column-wise.

Driven by the same checked expression trees as the row evaluator, walked once
per *batch* (never per row): every node becomes numpy operations over columns.
A value is a :class:`Col`, data plus a validity mask (null where the mask is
False); series are 2-D, right-aligned (the latest period in the last column)
with a mask of the periods that exist. Every operation mirrors the row
evaluator's semantics exactly -- same null rules, same order of floating-point
operations -- so the two agree field by field (property tests hold them to it).
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..language import columns
from ..language import expressions as ex
from ..language.columns import _EPOCH_ORDINAL as _EPOCH_ORDINAL
from ..language.columns import _FALSE, _TRUE, SeriesFacts, _full, _homogeneous
from ..language.columns import Col as Col
from ..language.columns import TextCodes as TextCodes
from ..language.columns import _month_and_day as _month_and_day
from ..policy.catalogue import ActionType
from ..policy.compiler import CompiledPolicy


def dates_to_days(values: Sequence[Any]) -> np.ndarray:
    """ISO date strings / dates -> int64 days since 1970 (0 where missing)."""
    return np.array([0 if v is None else (v.toordinal() - _EPOCH_ORDINAL) for v in values], dtype=np.int64)


def days_to_date(days: int) -> dt.date:
    return dt.date.fromordinal(int(days) + _EPOCH_ORDINAL)


def _ordered(op: Callable[[Any, Any], Any], a: np.ndarray, b: np.ndarray, valid: np.ndarray, n: int) -> np.ndarray:
    """``op(a, b)`` where ``valid``, False elsewhere; text (== and != only: the checker refuses ordering it)
    is only compared where both have a value."""
    if a.dtype != object and b.dtype != object:
        return op(a, b)  # type: ignore[no-any-return]
    a, b = np.broadcast_to(a, (n,)), np.broadcast_to(b, (n,))
    out = np.zeros(n, bool)
    idx = np.flatnonzero(np.broadcast_to(valid, (n,)))
    if len(idx):
        out[idx] = op(a[idx], b[idx])
    return out


_CMP: dict[type, Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}


class VectorEval:
    """Evaluates checked expressions over columns of ``n`` rows."""

    def __init__(self, n: int, env: dict[str, Col], grades: Sequence[str], warnings: Mapping[str, Col] | None = None,
                 grade_rank: np.ndarray | None = None):
        self.n = n
        self.env = env
        self.grades = tuple(grades)
        self.grade_index = {g: i for i, g in enumerate(grades)}
        self.warnings = warnings or {}
        self.grade_rank = grade_rank
        # provisional_grades: unknown, in the graded scope: the worst rank each element's undetermined floors could
        # give; grade_at_least is null where only it reaches the grade
        self.grade_rank_max: np.ndarray | None = None
        self.series = SeriesFacts()
        self._texts: dict[int, tuple[np.ndarray, np.ndarray, dict[Any, int]]] = {}
        self.tables: Mapping[str, ex.Table] = {}  # those of the expression being evaluated
        # A policy with scopes: the long tables that evaluate aggregations; for an element scope's
        # evaluator, the enclosing scope's evaluator and each element's row in it (names of the
        # ancestors are read through it).
        self.scopes: Any = None
        self.up: VectorEval | None = None
        self.up_index: np.ndarray | None = None

    # Literals are 0-d arrays that broadcast: no million-element copy of a constant per use.
    def const(self, v: Any) -> Col:
        if isinstance(v, bool):
            return Col(np.asarray(v), _TRUE)
        if isinstance(v, int | float):
            return Col(np.asarray(float(v)), _TRUE)
        return Col(np.asarray(v, dtype=object), _TRUE)

    def null(self) -> Col:
        return Col(np.asarray(np.nan), _FALSE)

    def eval(self, expr: ex.CheckedExpression) -> Col:
        self.tables = expr.tables
        with np.errstate(all="ignore"):
            return _full_size(self.node(expr.tree), self.n)

    def node(self, n: ast.AST) -> Col:
        return getattr(self, "v_" + type(n).__name__)(n)

    # leaves ------------------------------------------------------------------
    def v_Constant(self, n: ast.Constant) -> Col:
        return self.const(n.value)

    def v_Name(self, n: ast.Name) -> Col:
        if n.id == "null":
            return self.null()
        got = self.env.get(n.id)
        if got is None and self.up is not None:  # an ancestor's name: its value on each element's row
            assert self.up_index is not None
            c = self.up.v_Name(n)
            c = _full_size(c, self.up.n)
            idx = self.up_index
            got = Col(c.data[idx], c.valid[idx], None if c.present is None else c.present[idx])
            self.env[n.id] = got
        if got is None:
            raise KeyError(n.id)
        return got

    # operators -----------------------------------------------------------------
    def v_BinOp(self, n: ast.BinOp) -> Col:
        a, b = self.node(n.left), self.node(n.right)
        valid = a.valid & b.valid
        op = type(n.op)
        if op is ast.Add:
            return Col(a.data + b.data, valid)
        if op is ast.Sub:
            return Col(a.data - b.data, valid)
        if op is ast.Mult:
            return Col(a.data * b.data, valid)
        nonzero = b.data != 0
        safe_b = np.where(nonzero, b.data, 1.0)
        if op is ast.Div:
            return Col(a.data / safe_b, valid & nonzero)
        if op is ast.FloorDiv:
            return Col(np.floor_divide(a.data, safe_b), valid & nonzero)
        if op is ast.Mod:
            return Col(np.mod(a.data, safe_b), valid & nonzero)
        if op is ast.Pow:
            # simpleeval's bound, then Python's: overflow, 0 ** -x and complex results are null.
            # Python's pow per element: numpy's power may differ in the last bit, and powers are rare.
            ad, bd = np.broadcast_to(a.data, (self.n,)), np.broadcast_to(b.data, (self.n,))
            ok = np.broadcast_to(valid & (np.abs(ad) <= ex.MAX_POWER) & (np.abs(bd) <= ex.MAX_POWER), (self.n,))
            r = np.full(self.n, np.nan)
            for i in np.flatnonzero(ok):
                try:
                    v = float(ad[i]) ** float(bd[i])
                except (OverflowError, ZeroDivisionError):
                    continue
                if type(v) is float:
                    r[i] = v
            return Col(r, ok & np.isfinite(r))
        raise AssertionError(op)  # pragma: no cover

    def v_UnaryOp(self, n: ast.UnaryOp) -> Col:
        a = self.node(n.operand)
        if isinstance(n.op, ast.Not):
            return Col(~a.data.astype(bool, copy=False), a.valid)
        if isinstance(n.op, ast.USub):
            return Col(-a.data, a.valid)
        return a

    def v_BoolOp(self, n: ast.BoolOp) -> Col:
        """Three-valued: an operand False settles ``and``, True settles ``or``; else null if any is null.

        Accumulated in place into three arrays, whatever the number of operands.
        """
        cols = [self.node(v) for v in n.values]
        is_and = isinstance(n.op, ast.And)
        known = np.ones(self.n, bool)  # every operand has a value
        settled = np.zeros(self.n, bool)  # some operand settles the answer
        one = np.empty(self.n, bool)
        for c in cols:
            np.logical_and(known, c.valid, out=known)
            data = c.data.astype(bool, copy=False)
            if is_and:
                np.logical_not(data, out=one)
                np.logical_and(one, c.valid, out=one)
            else:
                np.logical_and(data, c.valid, out=one)
            np.logical_or(settled, one, out=settled)
        if is_and:  # true: none false and none null
            np.logical_not(settled, out=one)
            np.logical_and(one, known, out=one)
            return Col(one, np.logical_or(settled, known, out=settled))
        return Col(settled, np.logical_or(settled, known, out=known))

    def v_Compare(self, n: ast.Compare) -> Col:
        left = self.node(n.left)
        valid = left.valid
        result: np.ndarray | None = None
        for op, right_node in zip(n.ops, n.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                values = [e.value for e in right_node.elts]  # type: ignore[attr-defined]
                if not values:  # nothing is in an empty list
                    hit = np.zeros(self.n, bool)
                elif left.codes is not None and left.data.ndim == 1:  # text read with its codes: test each value once
                    codes, distinct = left.codes
                    wanted = set(values)
                    hit = np.array([d in wanted for d in distinct] + [False])[codes]
                elif left.data.dtype == object:
                    hit = np.isin(left.data, np.array(values, dtype=object))
                else:
                    hit = np.isin(left.data, np.array([float(v) for v in values]))
                hit = hit if isinstance(op, ast.In) else ~hit
                result = hit if result is None else result & hit
                continue
            right = self.node(right_node)
            valid = valid & right.valid
            if type(op) in (ast.Eq, ast.NotEq) and left.data.dtype == object and left.data.ndim == 1 \
                    and right.data.ndim == 0 and isinstance(right.data.item(), str):
                hit = self._text_equals(left, right.data.item()) ^ (type(op) is ast.NotEq)
            else:
                hit = _ordered(_CMP[type(op)], left.data, right.data, valid, self.n)
            result = hit if result is None else result & hit
            left = right
        assert result is not None  # a comparison has an operator
        return Col(np.logical_and(result, valid, out=np.empty(self.n, bool)), valid)

    def _text_equals(self, col: Col, text: str) -> np.ndarray:
        """``data == text`` over a text column, by integer codes: the column is factorised once."""
        data = col.data
        hit = self._texts.get(id(data))
        if hit is None or hit[0] is not data:
            if col.codes is not None:  # codes from reading the table
                codes, distinct = col.codes
            else:
                codes, uniques = pd.factorize(data)
                distinct = uniques.tolist()
            hit = self._texts[id(data)] = (data, codes, {u: i for i, u in enumerate(distinct)})
        code = hit[2].get(text)
        return hit[1] == code if code is not None else np.zeros(len(data), bool)

    def v_IfExp(self, n: ast.IfExp) -> Col:
        t, a, b = self.node(n.test), self.node(n.body), self.node(n.orelse)
        cond = t.data.astype(bool, copy=False)
        ad, bd = _homogeneous([a, b])
        data = np.where(cond, ad, bd)
        return Col(data, t.valid & np.where(cond, a.valid, b.valid))

    # functions -----------------------------------------------------------------
    def v_Call(self, n: ast.Call) -> Col:
        fn = ex.FUNCTIONS.get(n.func.id)  # type: ignore[attr-defined]
        if fn is None:  # an aggregation over a child scope (the checker admits no other name)
            return self.scopes.aggregate(self, n)  # type: ignore[no-any-return]
        impl: columns.VectorImpl = getattr(columns, fn.vector)  # the table names it
        return impl(self, [self.node(a) for a in n.args] if fn.vector_args else [], n.args)


@dataclass
class VectorResults:
    """Every rule's result for every row, in the shapes the row function returns per row."""

    n: int
    metrics: list[Col]
    factor_bands: list[np.ndarray]
    factor_values: list[Col]
    score: np.ndarray
    s_rank: np.ndarray
    floors: list[Col]
    g_rank: np.ndarray
    warnings: list[Col]
    actions: list[Col]
    action_params: list[list[Col]]
    restructurings: list[Col | None]
    metric_types: list[str]
    # action id -> how many computed parameters the catalogue refused on undetermined actions (batch summaries)
    refused_params: dict[str, int] = field(default_factory=dict)

    def row(self, i: int) -> tuple[Any, ...]:
        """Row ``i`` as the row evaluator's result tuple (Python values, None for null)."""

        def py(c: Col, t: str = "number") -> Any:
            if not c.valid[i]:
                return None
            v = c.data[i]
            if t == "date":
                return days_to_date(v)
            if isinstance(v, np.bool_):
                return bool(v)
            if isinstance(v, np.floating):
                return float(v)
            if isinstance(v, np.integer):
                return float(v)
            return v

        def tri(c: Col) -> Any:
            return bool(c.data[i]) if c.valid[i] else None

        return (
            tuple(py(c, t) for c, t in zip(self.metrics, self.metric_types, strict=True)),
            tuple(int(b[i]) for b in self.factor_bands),
            tuple(py(c) for c in self.factor_values),
            float(self.score[i]),
            int(self.s_rank[i]),
            tuple(tri(c) for c in self.floors),
            int(self.g_rank[i]),
            tuple(tri(c) for c in self.warnings),
            tuple(tri(c) for c in self.actions),
            tuple(tuple(py(c) for c in ps) for ps in self.action_params),
            tuple(None if c is None else tri(c) for c in self.restructurings),
        )


def _full_size(c: Col, n: int) -> Col:
    """A rule's result with one value per row (a constant expression gives a 0-d array)."""
    if c.present is not None or (c.data.ndim == 1 and c.valid.ndim == 1):
        return c
    return Col(np.broadcast_to(c.data, (n,)), np.broadcast_to(c.valid, (n,)))


def _as_bool(c: Col) -> Col:
    valid = c.valid
    return Col(c.data.astype(bool, copy=False) & valid, valid)


def _small_int(values: int) -> type[np.signedinteger[Any]]:
    """The narrowest integer type for indices 0 .. values (bands and grades are a handful)."""
    return np.int8 if values < 127 else np.int64


def _band_index(maxes: Sequence[float], x: np.ndarray) -> np.ndarray:
    """How many band bounds each value reaches (``searchsorted(maxes, x, side="right")``).

    A policy has a handful of bands: one comparison per bound streams through memory, where a
    binary search per element branches unpredictably.
    """
    idx = np.full(len(x), len(maxes), _small_int(len(maxes) + 1))  # a byte a row streams faster than 8
    for m in maxes:
        idx -= x < m  # counted down, so NaN lands past the last bound as searchsorted puts it
    return idx


def _param_columns(policy: CompiledPolicy, n: int, inputs: Mapping[str, Col], segments: np.ndarray | None,
                   true: np.ndarray) -> dict[str, Col]:
    """Parameters: one column each, the value of each row's segment (looked up by segment code)."""
    out: dict[str, Col] = {}
    seg_names: list[str | None] = [None, *policy.segments]
    segment_col = inputs.get(policy.segment_by) if policy.segment_by is not None else None
    if segments is not None and n:
        if segment_col is not None and segment_col.data is segments and segment_col.codes is not None:
            codes, distinct = segment_col.codes
        else:
            codes, uniques = pd.factorize(pd.Series(segments, dtype=object), use_na_sentinel=True)
            distinct = uniques.tolist()
        to_table = np.array([seg_names.index(u) if u in seg_names else 0 for u in distinct] + [0])
        seg_codes = to_table[codes]
    else:
        seg_codes = np.zeros(n, np.int64)
    for j, pname in enumerate(policy.param_names):
        column = [policy.params_for(seg)[j] for seg in seg_names]
        default = column[0]
        kind = object if isinstance(default, str) else bool if isinstance(default, bool) else float
        out[pname] = Col(np.array(column, dtype=kind)[seg_codes], true)
    return out


def evaluate_columns(policy: CompiledPolicy, n: int, inputs: Mapping[str, Col], segments: np.ndarray | None,
                     as_of_days: np.ndarray, scoped: Any = None) -> VectorResults:
    """Evaluate ``policy`` over ``n`` rows of prepared input columns.

    ``scoped`` (a policy with scopes, :class:`~.scoped_vector.LongTables`): the debtors' elements;
    it grades the exposures before the debtor metrics and applies the debtor floors after them.
    """
    env: dict[str, Col] = dict(inputs)
    true = _full(n, True, bool)
    env["as_of"] = Col(as_of_days, true)
    env.update(_param_columns(policy, n, inputs, segments, true))
    ve = VectorEval(n, env, policy.grade_ids)
    metrics: list[Col] = []
    with np.errstate(all="ignore"):
        if scoped is not None:
            ve.scopes = scoped
            scoped.grade_own(ve)
        metrics += _metric_columns(ve, policy, after=None)
        score = _full(n, policy.score_base)
        bands: list[np.ndarray] = []
        values: list[Col] = []
        for f in policy.factors:
            x = ve.eval(f.expr)
            # Null rows get the band past the last (missing points), whatever their data holds.
            idx = _band_index([b.max for b in f.bands[:-1]], np.broadcast_to(np.asarray(x.data, dtype=float), (n,)))
            idx = np.where(x.valid, idx, idx.dtype.type(len(f.bands)))
            points = np.array([*(b.value for b in f.bands), f.missing_points], dtype=float)
            score += (points * f.weight)[idx]  # the same products as points[idx] * weight, one pass fewer
            bands.append(idx)
            values.append(x)
        env["score"] = Col(score, true)
        if policy.score_bands:
            ranks = np.array([policy.grade_ids.index(b.value) for b in policy.score_bands])
            s_rank = ranks[_band_index([b.max for b in policy.score_bands[:-1]], score)]
        else:
            s_rank = np.zeros(n, np.int64)
        g_rank = s_rank.astype(_small_int(len(policy.scale)))
        floors = []
        for r in policy.floors:
            c = _as_bool(ve.eval(r.expr))
            floors.append(c)
            if r.for_exposures is None:  # one naming exposures grades them (finalize), the debtor through them
                np.maximum(g_rank, c.data * g_rank.dtype.type(r.rank), out=g_rank)  # a fired floor raises the grade
        if scoped is not None:  # the debtor floors apply to every exposure (or those they name); the worst decides
            g_rank = scoped.finalize(ve, g_rank, floors)
        env["grade"] = Col(np.array(policy.grade_ids, dtype=object)[g_rank], true)
        ve.grade_rank = g_rank
        metrics += _metric_columns(ve, policy, after="classification")  # they may read the final grade
        floor_cols = {r.id: c for r, c in zip(policy.floors, floors, strict=True)}
        warnings: list[Col] = []
        for w in policy.warnings:
            # A classification rule's warning is its floor's result, as in the row function.
            c = floor_cols[w.id] if w.from_rule else _as_bool(ve.eval(w.expr))
            warnings.append(c)
            ve.warnings = {**ve.warnings, w.id: c}
        actions, params, restructurings = [], [], []
        refused_params: dict[str, int] = {}
        for a in policy.actions:
            fired = _as_bool(ve.eval(a.expr))
            computed = [ve.eval(pe) for pe in a.param_exprs.values()]
            if computed:  # computed parameters the catalogue refuses leave the action undetermined, as per row
                fired, count = _refuse_params(policy.action_types[a.action], list(a.param_exprs), fired, computed, n)
                if count:
                    refused_params[a.id] = count
            actions.append(fired)
            params.append(computed)
            restructurings.append(_as_bool(ve.eval(a.restructuring.expr)) if a.restructuring else None)
    return VectorResults(n, metrics, bands, values, score, s_rank, floors, g_rank, warnings, actions, params,
                         restructurings, [m.expr.type for m in policy.metrics], refused_params)


def _metric_columns(ve: VectorEval, policy: CompiledPolicy, after: str | None) -> list[Col]:
    """The columns of the metrics of one stage (``after``), in dependency order; each joins the environment.

    Non-finite numbers (overflow) are null, as ``_fin`` makes them per row.
    """
    out = []
    for m in policy.metrics:
        if m.after != after:
            continue
        c = ve.eval(m.expr)
        if m.expr.type == ex.NUMBER:
            data = np.asarray(c.data, dtype=float)  # no copy when it is floats already
            c = Col(data, c.valid & np.isfinite(data))
        elif m.expr.type == ex.BOOL:
            c = _as_bool(c)
        ve.env[m.name] = c
        out.append(c)
    return out


def _refuse_params(kind: ActionType, names: list[str], fired: Col, computed: list[Col], n: int) -> tuple[Col, int]:
    """The action's condition with refused rows made undetermined, and how many parameters were refused.

    Counted as the row evaluator lists them: each refused parameter of an undetermined action.
    """
    bad = [~_params_allowed(kind, [name], [col], n) for name, col in zip(names, computed, strict=True)]
    refused = fired.data & fired.valid & np.logical_or.reduce(bad)
    if refused.any():
        fired = Col(fired.data & ~refused, fired.valid & ~refused)
    undetermined = np.broadcast_to(~fired.valid, (n,))
    return fired, sum(int((undetermined & b).sum()) for b in bad)


def _params_allowed(kind: ActionType, names: list[str], values: list[Col], n: int) -> np.ndarray:
    """Rows whose computed parameters ``catalogue.param_problem`` accepts, column-wise."""
    ok = np.ones(n, bool)
    for name, col in zip(names, values, strict=True):
        spec = kind.params[name]
        valid = np.broadcast_to(col.valid, (n,))
        data = np.broadcast_to(col.data, (n,))
        ok &= valid
        if spec.type in ("integer", "number"):
            with np.errstate(invalid="ignore"):
                x = np.where(valid, data, 0).astype(float)
                if spec.type == "integer":
                    ok &= np.floor(x) == x
                if spec.min is not None:
                    ok &= x >= spec.min
                if spec.max is not None:
                    ok &= x <= spec.max
        elif spec.enum:
            ok &= np.isin(np.where(valid, data, None).astype(object), np.array(spec.enum, dtype=object))
    return ok


def columns_from_records(policy: CompiledPolicy, rows: Sequence[tuple[Any, ...]]) -> dict[str, Col]:
    """Input columns from checked input tuples (the row path's values): for tests and small batches."""
    return {spec.name: input_column(spec, [r[j] for r in rows]) for j, spec in enumerate(policy.inputs)}


def input_column(spec: Any, values: Sequence[Any]) -> Col:
    """One input's column from checked values (None: null); a series input gives a 2-D column."""
    n = len(values)
    if spec.series:
        periods = max((len(v) for v in values), default=0)
        shape = (n, periods)
        dtype = np.int64 if spec.type == "date" else float
        data = np.zeros(shape, dtype=dtype)
        valid = np.zeros(shape, bool)
        present = np.zeros(shape, bool)
        for i, s in enumerate(values):
            off = periods - len(s)
            for k, v in enumerate(s):
                present[i, off + k] = True
                if v is not None:
                    valid[i, off + k] = True
                    data[i, off + k] = (v.toordinal() - _EPOCH_ORDINAL) if spec.type == "date" else v
        return Col(data, valid, present)
    if spec.type in ("number", "integer"):  # a checked number is finite: NaN is where a value is null
        data = np.array(values, dtype=float)  # None reads as NaN
        return Col(data, ~np.isnan(data))
    valid = np.array([v is not None for v in values], dtype=bool)
    if spec.type == "date":
        data = dates_to_days(values)
    elif spec.type == "boolean":
        data = np.array([bool(v) for v in values], dtype=bool)
    else:  # string, grade
        data = np.array(values, dtype=object)
    return Col(data, valid)


def evaluate_chunks(policy: CompiledPolicy, n: int, inputs: Mapping[str, Col], segments: np.ndarray | None,
                    as_of_days: np.ndarray, chunk: int = 250_000, workers: int = 2) -> list[VectorResults]:
    """:func:`evaluate_columns` over row chunks on ``workers`` threads (numpy releases the GIL).

    The results are those of one call over all rows, cut at the same chunk borders.
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(start: int) -> VectorResults:
        sl = slice(start, min(start + chunk, n))
        part = {k: Col(c.data[sl], c.valid[sl], None if c.present is None else c.present[sl],
                       None if c.codes is None else (c.codes[0][sl], c.codes[1]))
                for k, c in inputs.items()}
        seg = None if segments is None else segments[sl]
        if policy.segment_by in part and segments is inputs[policy.segment_by].data:
            seg = part[policy.segment_by].data  # the same slice, so its codes are used
        return evaluate_columns(policy, sl.stop - sl.start, part, seg, as_of_days[sl])

    starts = list(range(0, n, chunk)) or [0]
    if workers <= 1 or len(starts) == 1:
        return [one(s) for s in starts]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, starts))
