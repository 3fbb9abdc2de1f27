"""Columns, and the vector implementation of every function of the language.

A value is a :class:`Col`: data plus a validity mask (null where the mask is False); series are
2-D, right-aligned (the latest period in the last column) with a mask of the periods that exist.
Each ``f_<name>`` here is the column-wise form of one entry of :data:`policy_engine.language.functions.FUNCTIONS`
(the entry names it), with exactly the row implementation's semantics: same null rules, same order
of floating-point operations. Only the vector evaluator imports this module, so a single decision
never loads numpy.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .functions import BOOL, MAX_MONTHS, NUMBER, Table

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()

TextCodes = tuple[np.ndarray, list[Any]]  # per row, the index of its value in the distinct values (-1: missing)


@dataclass
class Col:
    """A column of values; ``valid`` False means null. Series carry ``present`` (periods that exist)."""

    data: np.ndarray
    valid: np.ndarray
    present: np.ndarray | None = None  # series only: (n, periods) bool
    # Text read from a typed table: per row the index of its value in ``codes[1]`` (-1: null), so
    # comparisons and segment lookups need not hash the strings again.
    codes: TextCodes | None = None

    @property
    def is_series(self) -> bool:
        return self.present is not None


def _full(n: int, value: Any, dtype: Any = float) -> np.ndarray:
    return np.full(n, value, dtype=dtype)


# operator functions work elementwise on numeric and on object (string) arrays alike.
_TRUE = np.asarray(True)
_FALSE = np.asarray(False)


def _and(*masks: np.ndarray) -> np.ndarray:
    out = masks[0]
    for m in masks[1:]:
        out = out & m
    return out


def _filled(c: Col, kind: str) -> np.ndarray:
    """``c``'s data as ``kind`` (``O`` text, ``i`` day numbers, ``b`` booleans) with nulls neutral.

    Null is the mask's business: the data under a null holds ``""``, day 0 or False, never the
    NaN of a null literal, which would make a text column mixed objects that cannot be ordered
    and force day numbers into floats.
    """
    if kind == "O":
        data = np.asarray(c.data, dtype=object)
        return np.where(c.valid, data, np.asarray("", dtype=object))
    fill = 0 if kind == "i" else False
    dtype = np.int64 if kind == "i" else bool
    if c.data.dtype.kind == kind and bool(np.all(c.valid)):
        return c.data
    return np.where(c.valid, c.data, fill).astype(dtype, copy=False)


def _homogeneous(cols: Sequence[Col]) -> list[np.ndarray]:
    """The data of the operands of one merge (``if``, ``coalesce``, ``min``, ``max``) in one dtype.

    The checker gave them one type; only a null (float NaN) can differ, and it takes the others'.
    """
    kinds = {c.data.dtype.kind for c in cols}
    for kind in ("O", "i", "b"):
        if kind in kinds:
            return [_filled(c, kind) for c in cols]
    return [c.data for c in cols]


_COMPARISONS = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
                "==": np.equal, "!=": np.not_equal}


_CALENDAR_SPAN = 1 << 17  # days (~360 years): a portfolio's dates span far less
_CALENDAR_MARGIN = 366  # days a table is built beyond the dates asked, so the next batch likely fits


class _Calendar:
    """Month (since 1970-01) and day of month (0-based) of every day of a span, and the first day of
    each of its months: numpy's calendar conversion costs ~50 ns a value, a lookup a few."""

    def __init__(self, lo: int, hi: int):
        span = np.arange(lo, hi + 1, dtype=np.int64).astype("datetime64[D]")
        month = span.astype("datetime64[M]")
        self.lo, self.hi = lo, hi
        self.month = month.astype(np.int64)
        self.day = (span - month).astype(np.int64)
        self.first_month = int(self.month[0])
        months = np.arange(self.first_month, int(self.month[-1]) + 2, dtype=np.int64)  # one past: lengths
        self.firsts = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)

    def first_days(self, months: np.ndarray) -> np.ndarray | None:
        """The day number of the first day of each month, None when one is past the table."""
        if not len(months):
            return months.astype(np.int64)
        idx = months - self.first_month
        if int(idx.min()) < 0 or int(idx.max()) >= len(self.firsts):
            return None
        return self.firsts[idx]  # type: ignore[no-any-return]


_calendar: _Calendar | None = None  # the days the batches of this process read so far, built on first use


def _calendar_for(lo: int, hi: int) -> _Calendar | None:
    """A calendar that covers days ``lo`` to ``hi``; None when they span too much for a table.

    The process keeps one, widened to what each batch reads (a whole new table: a thread reading
    the old one keeps it); a span too wide to keep gets a table of its own.
    """
    global _calendar
    cal = _calendar
    if cal is not None and cal.lo <= lo and hi <= cal.hi:
        return cal
    if hi - lo >= _CALENDAR_SPAN:
        return None
    wide_lo, wide_hi = (lo, hi) if cal is None else (min(lo, cal.lo), max(hi, cal.hi))
    wide_lo, wide_hi = wide_lo - _CALENDAR_MARGIN, wide_hi + _CALENDAR_MARGIN
    if wide_hi - wide_lo >= _CALENDAR_SPAN:
        return _Calendar(lo, hi)
    cal = _calendar = _Calendar(wide_lo, wide_hi)
    return cal


def _month_and_day(days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Calendar month (months since 1970-01) and day of month (0-based) of day numbers.

    The dates of a portfolio fall in a short span: each value looks its date up in a table of the
    span (built once, see :class:`_Calendar`); days too far apart are converted one by one.
    """
    if not len(days):
        return days.astype(np.int64), days.astype(np.int64)
    cal = _calendar_for(int(days.min()), int(days.max()))
    if cal is not None:
        idx = days - cal.lo
        return cal.month[idx], cal.day[idx]
    d = days.astype("datetime64[D]")
    m = d.astype("datetime64[M]")
    return m.astype(np.int64), (d - m).astype(np.int64)


def _first_days(months: np.ndarray) -> np.ndarray:
    """The day number of the first day of each month (months since 1970-01)."""
    cal = _calendar
    got = None if cal is None else cal.first_days(months)
    if got is not None:
        return got
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)  # type: ignore[no-any-return]


class SeriesFacts:
    """Facts about a present-periods mask, asked for by every series function over it.

    The periods any row has, whether every row has all of those, each row's count; and the mask
    of each window. Keyed by the array's id (the array is kept, so the id cannot be reused).
    """

    def __init__(self) -> None:
        self._periods: dict[int, tuple[np.ndarray, np.ndarray, bool, np.ndarray]] = {}
        self._tails: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def present(self, present: np.ndarray) -> tuple[np.ndarray, bool, np.ndarray]:
        hit = self._periods.get(id(present))
        if hit is None or hit[0] is not present:
            cols = np.flatnonzero(present.any(axis=0))
            everyone = bool(len(cols)) and bool(present[:, cols].all())
            hit = self._periods[id(present)] = (present, cols, everyone, np.count_nonzero(present, axis=1))
        return hit[1], hit[2], hit[3]

    def length(self, s: Col) -> np.ndarray:
        assert s.present is not None
        return self.present(s.present)[2]

    def tail(self, s: Col, k: int) -> Col:
        """The latest ``k`` periods of ``s``: the same data, a narrower present mask (one per window)."""
        assert s.present is not None
        hit = self._tails.get((id(s.present), k))
        if hit is None or hit[0] is not s.present:
            periods = s.data.shape[1]
            keep = np.zeros(periods, bool)
            if k:
                keep[max(periods - k, 0):] = True
            hit = self._tails[(id(s.present), k)] = (s.present, s.present & keep)
        return Col(s.data, s.valid, hit[1])


class Evaluator(Protocol):
    """What a vector implementation may use of the vector evaluator."""

    n: int
    grades: tuple[str, ...]
    grade_index: Mapping[str, int]
    grade_rank: np.ndarray | None
    grade_rank_max: np.ndarray | None
    warnings: Mapping[str, Col]
    series: SeriesFacts
    tables: Mapping[str, Table]  # the table parameters of the expression being evaluated

    def node(self, n: ast.AST) -> Col: ...

    def null(self) -> Col: ...


Args = Sequence[ast.expr]
VectorImpl = Callable[[Evaluator, list[Col], Args], Col]


def _window(args: Args, i: int = 1) -> int:
    return int(args[i].value)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ scalars


def f_min(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    datas = _homogeneous(cols)
    data = datas[0]
    for d in datas[1:]:
        data = np.minimum(data, d)
    return Col(data, _and(*[c.valid for c in cols]))


def f_max(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    datas = _homogeneous(cols)
    data = datas[0]
    for d in datas[1:]:
        data = np.maximum(data, d)
    return Col(data, _and(*[c.valid for c in cols]))


def f_abs(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    return Col(np.abs(cols[0].data), cols[0].valid)


def f_round(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    digits = _window(args) if len(args) > 1 else 0
    return Col(python_round(np.broadcast_to(cols[0].data, (ev.n,)), digits), cols[0].valid)


def python_round(values: np.ndarray, digits: int) -> np.ndarray:
    """Python's ``round(float(x), digits)`` of every value (half to even on the exact binary value), at numpy's speed.

    ``rint(x * 10**digits) / 10**digits`` is that value whenever the product rounds to the same integer as the exact
    product does: the division of that integer by an exact power of ten is correctly rounded, as Python's conversion
    of its decimal string is. Only a product within a few ulps of a half (2.675 * 100), beyond 2**52 or not finite
    may round otherwise; those few take Python's own round (a loop over every value cost a fifth of 2.1.0's
    long-table decisions). ``digits`` is 0-10 (the checker's bound), so the power of ten is exact.
    """
    x = np.asarray(values, dtype=float)
    scale = 10.0 ** digits
    with np.errstate(invalid="ignore", over="ignore"):
        p = x * scale
        out = np.rint(p) / scale
        magnitude = np.abs(p)
        doubt = ~(magnitude < 2.0**52) | (np.abs(p - np.floor(p) - 0.5) <= magnitude * 2.0**-50)
    if doubt.any():
        at = np.flatnonzero(doubt)
        out[at] = [round(v, digits) for v in x[at].tolist()]
    return out


def f_coalesce(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    datas = _homogeneous(cols)
    data = datas[-1]
    valid = cols[-1].valid
    for c, d in zip(reversed(cols[:-1]), reversed(datas[:-1]), strict=True):
        data = np.where(c.valid, d, data)
        valid = c.valid | valid
    return Col(data, valid)


def f_is_null(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    a = cols[0]
    if a.is_series:  # a series is never null (it may be empty)
        return Col(np.asarray(False), _TRUE)
    return Col(~a.valid, _TRUE)


def f_ratio(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    a, b = cols
    pos = b.data > 0
    return Col(a.data / np.where(pos, b.data, 1.0), a.valid & b.valid & pos)


def f_change(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    new, old = cols
    nz = old.data != 0
    return Col((new.data - old.data) / np.abs(np.where(nz, old.data, 1.0)), new.valid & old.valid & nz)


def f_date(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    day = dt.date.fromisoformat(args[0].value).toordinal() - _EPOCH_ORDINAL  # type: ignore[attr-defined]
    return Col(np.asarray(day, dtype=np.int64), _TRUE)


def f_grade_rank(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    g = cols[0]
    if g.codes is not None and g.data.ndim == 1:  # a grade column read with its codes: each distinct value once
        codes, distinct = g.codes
        index = {gid: float(i) for i, gid in enumerate(ev.grades)}
        ranks = np.array([index.get(d, np.nan) for d in distinct] + [np.nan])[codes]
        return Col(ranks, g.valid & ~np.isnan(ranks))
    ranks = np.full(ev.n, np.nan)
    for i, gid in enumerate(ev.grades):
        ranks[g.data == gid] = float(i)
    return Col(ranks, g.valid & ~np.isnan(ranks))


def f_grade_at_least(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    rank = ev.grade_index[args[0].value]  # type: ignore[attr-defined]
    assert ev.grade_rank is not None
    reached = ev.grade_rank >= rank
    if ev.grade_rank_max is None:
        return Col(reached, _TRUE)
    return Col(reached, reached | (ev.grade_rank_max < rank))  # unknown where only an undetermined floor reaches it


def f_fired(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    return ev.warnings[args[0].value]  # type: ignore[attr-defined]


# ------------------------------------------------------------------ tables


def f_lookup(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    """The cell of each row: keys matched by code, each distinct key value looked up once."""
    table = ev.tables[args[0].id]  # type: ignore[attr-defined]
    keys = [ev.node(a) for a in args[1:]]
    if table.interpolate:
        return _interpolated(ev.n, table, keys[0])
    import pandas as pd  # the vector evaluator has it loaded; factorize hashes text and numbers alike

    domains = [list(dict.fromkeys(k[i] for k in table.cells)) for i in range(len(keys))] if len(keys) > 1 \
        else [list(table.cells)]
    index: list[np.ndarray] = []  # per key, each row's place in its domain (len(domain): none)
    valid = np.ones(ev.n, bool)
    for col, domain in zip(keys, domains, strict=True):
        codes, uniques = pd.factorize(np.broadcast_to(col.data, (ev.n,)))
        places = {v: i for i, v in enumerate(domain)}
        to_domain = np.array([places.get(u, len(domain)) for u in uniques.tolist()] + [len(domain)], dtype=np.int64)
        index.append(to_domain[codes])
        valid &= np.broadcast_to(col.valid, (ev.n,))
    shape = tuple(len(d) + 1 for d in domains)
    grid = np.zeros(shape, dtype=float if table.type == NUMBER else bool if table.type == BOOL else object)
    has = np.zeros(shape, bool)
    for key, value in table.cells.items():
        at = tuple(d.index(k) for d, k in zip(domains, key if len(keys) > 1 else (key,), strict=True))
        grid[at] = value
        has[at] = True
    rows = tuple(index)
    return Col(grid[rows], valid & has[rows])


def _interpolated(n: int, table: Table, key: Col) -> Col:
    """``functions._interpolate`` column-wise: the same segment, slope and operations per row."""
    x = np.broadcast_to(np.asarray(key.data, dtype=float), (n,))
    xs, ys, slopes = np.array(table.xs), np.array(table.ys), np.array(table.slopes)
    j = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2)
    inside = slopes[j] * (x - xs[j]) + ys[j]
    data = np.where(x <= xs[0], ys[0], np.where(x >= xs[-1], ys[-1], inside))
    return Col(data, np.broadcast_to(key.valid, (n,)) & ~np.isnan(x))


# ------------------------------------------------------------------ dates


def f_days_between(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    a, b = cols
    return Col((_filled(b, "i") - _filled(a, "i")).astype(float), a.valid & b.valid)


def f_months_between(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    a, b = cols
    ma, day_a = _month_and_day(np.broadcast_to(_filled(a, "i"), (ev.n,)))
    mb, day_b = _month_and_day(np.broadcast_to(_filled(b, "i"), (ev.n,)))
    months = mb - ma
    months = np.where((months > 0) & (day_b < day_a), months - 1, months)
    months = np.where((months < 0) & (day_b > day_a), months + 1, months)
    return Col(months.astype(float), a.valid & b.valid)


def f_add_months(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    d, m = cols
    days = np.broadcast_to(_filled(d, "i"), (ev.n,))
    k = np.broadcast_to(np.asarray(m.data, dtype=float), (ev.n,))
    ok = np.broadcast_to(d.valid & m.valid, (ev.n,)) & (np.abs(k) <= MAX_MONTHS) & (np.floor(k) == k)
    month, day = _month_and_day(days)
    target = month + np.where(ok, k, 0).astype(np.int64)  # months since 1970-01
    first = _first_days(target)
    length = _first_days(target + 1) - first
    year = np.floor_divide(target, 12) + 1970
    ok = ok & (year >= 1) & (year <= 9999)  # Python's calendar, as the row form has
    return Col(first + np.minimum(day, length - 1), ok)


# ------------------------------------------------------------------ series


def f_last(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s = cols[0]
    assert s.present is not None
    if s.data.shape[1] == 0:
        return ev.null()
    return Col(s.data[:, -1], s.present[:, -1] & s.valid[:, -1])


def f_first(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s = cols[0]
    assert s.present is not None
    if s.data.shape[1] == 0:
        return ev.null()
    idx = s.data.shape[1] - ev.series.length(s)
    idx_c = np.minimum(idx, s.data.shape[1] - 1)
    rows = np.arange(ev.n)
    return Col(s.data[rows, idx_c], (idx < s.data.shape[1]) & s.valid[rows, idx_c])


def f_tail(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    return ev.series.tail(cols[0], max(_window(args), 0))


def _sum_present(ev: Evaluator, s: Col) -> tuple[np.ndarray, np.ndarray]:
    """Left-to-right sum over the periods present (Python's ``sum`` order) and whether any is null."""
    assert s.present is not None
    cols, everyone, _ = ev.series.present(s.present)
    if everyone:
        # Every row has these periods (the usual portfolio): plain column adds, same order. A
        # row with a null period has no sum, so what its null cells hold does not matter.
        acc = s.data[:, cols[0]] + 0.0  # a float copy to add into
        valid = s.valid[:, cols[0]].copy()
        for k in cols[1:]:
            acc += s.data[:, k]
            valid &= s.valid[:, k]
        return acc, ~valid
    acc = np.zeros(ev.n)
    any_null = np.zeros(ev.n, bool)
    for k in range(s.data.shape[1]):
        p = s.present[:, k]
        acc = np.where(p, acc + np.where(s.valid[:, k], s.data[:, k], 0.0), acc)
        any_null |= p & ~s.valid[:, k]
    return acc, any_null


def f_sum(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s = cols[0]
    acc, any_null = _sum_present(ev, s)
    return Col(acc, (ev.series.length(s) > 0) & ~any_null)


def f_avg(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s = cols[0]
    acc, any_null = _sum_present(ev, s)
    length = ev.series.length(s)
    return Col(acc / np.maximum(length, 1), (length > 0) & ~any_null)


def _last_window(ev: Evaluator, s: Col, k: int) -> tuple[Col, np.ndarray]:
    return ev.series.tail(s, max(k, 0)), (ev.series.length(s) >= k) & (k > 0)


def f_sum_last(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    window, enough = _last_window(ev, cols[0], _window(args))
    acc, any_null = _sum_present(ev, window)
    return Col(acc, enough & ~any_null)


def f_avg_last(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    k = _window(args)
    window, enough = _last_window(ev, cols[0], k)
    acc, any_null = _sum_present(ev, window)
    return Col(acc / max(k, 1), enough & ~any_null)


def f_count(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s = cols[0]
    assert s.present is not None
    return Col((s.present & s.valid).sum(axis=1).astype(float), _TRUE)


def _extreme(ev: Evaluator, s: Col, fn: Any, fill: float) -> Col:
    assert s.present is not None
    data = fn(np.where(s.present, s.data, fill), axis=1) if s.data.shape[1] else _full(ev.n, np.nan)
    any_null = (s.present & ~s.valid).any(axis=1)
    return Col(data, (ev.series.length(s) > 0) & ~any_null)


def f_series_min(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    return _extreme(ev, cols[0], np.min, np.inf)


def f_series_max(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    return _extreme(ev, cols[0], np.max, -np.inf)


def f_streak(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s, x = cols[0], cols[2]
    test = _COMPARISONS[args[1].value]  # type: ignore[attr-defined]
    assert s.present is not None
    alive = np.ones(ev.n, bool)
    unknown = np.zeros(ev.n, bool)  # a null period reached while the streak holds
    count = np.zeros(ev.n)
    for k in range(s.data.shape[1] - 1, -1, -1):
        unknown |= alive & s.present[:, k] & ~s.valid[:, k]
        alive &= s.present[:, k] & s.valid[:, k] & test(s.data[:, k], x.data)
        count += alive
    return Col(count, x.valid & ~unknown)


def f_pct_change(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s = cols[0]
    assert s.present is not None
    k = _window(args)
    periods = s.data.shape[1]
    if periods <= k:
        return ev.null()
    new_d, new_v = s.data[:, -1], s.valid[:, -1] & s.present[:, -1]
    old_d, old_v = s.data[:, -1 - k], s.valid[:, -1 - k] & s.present[:, -1 - k]
    nz = old_d != 0
    data = (new_d - old_d) / np.abs(np.where(nz, old_d, 1.0))
    return Col(data, (ev.series.length(s) > k) & new_v & old_v & nz)


def _period(s: Col, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The value ``k`` periods before the latest, and whether it has one (right-aligned series)."""
    assert s.present is not None
    return s.data[:, -1 - k], s.valid[:, -1 - k] & s.present[:, -1 - k]


def f_lag(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s, k = cols[0], _window(args)
    if s.data.shape[1] <= k:
        return ev.null()
    data, valid = _period(s, k)
    return Col(data, (ev.series.length(s) > k) & valid)


def f_diff(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s, k = cols[0], _window(args)
    if s.data.shape[1] <= k:
        return ev.null()
    (new_d, new_v), (old_d, old_v) = _period(s, 0), _period(s, k)
    return Col(new_d - old_d, (ev.series.length(s) > k) & new_v & old_v)


def f_count_last(ev: Evaluator, cols: list[Col], args: Args) -> Col:
    s, x, k = cols[0], cols[3], _window(args)
    test = _COMPARISONS[args[2].value]  # type: ignore[attr-defined]
    assert s.present is not None
    periods = s.data.shape[1]
    if periods < k:
        return ev.null()
    count = np.zeros(ev.n)
    known = (ev.series.length(s) >= k) & x.valid  # too few periods, or a null among them: undetermined
    for j in range(periods - k, periods):
        has = s.present[:, j] & s.valid[:, j]
        known = known & has
        count += has & test(s.data[:, j], x.data)
    return Col(count, known)
