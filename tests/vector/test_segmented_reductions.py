"""The vector reductions per parent equal the row helpers, parent by parent, on edge values.

Drawn child tables of a few parents (some with no element) in any layout: elements grouped by
parent or interleaved (the reductions then sort them once), values with nulls, NaN, infinities,
0.0 and -0.0 (Python's ``max`` keeps the first of equal values, so the sign of a zero shows), day
numbers and texts, conditions true, false or null. Each reduction's answer for each parent must be
the row helper's over that parent's values in its order (a NaN and a zero's sign included).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.language import functions as fn
from policy_engine.language.columns import Col
from policy_engine.portfolio.scoped_vector import REDUCERS, Segments

NUMBERS = st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, math.inf, -math.inf, math.nan]),
                    st.floats(-1e3, 1e3, allow_nan=False))
DAYS = st.one_of(st.none(), st.integers(-3, 3))
TEXTS = st.one_of(st.none(), st.sampled_from(["a", "b", ""]))
CONDS = st.one_of(st.none(), st.booleans())


def _same(a: Any, b: Any) -> bool:
    """Equal as the records would show them: None, or the same value (NaN is NaN, -0.0 is not 0.0)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, float) or isinstance(b, float):
        return repr(float(a)) == repr(float(b))
    return bool(a == b)


@st.composite
def tables(draw: st.DrawFn, values: st.SearchStrategy[Any]) -> tuple[int, list[tuple[int, Any, Any]], bool]:
    n = draw(st.integers(0, 5))
    if not n:
        return 0, [], False
    elements = draw(st.lists(st.tuples(st.integers(0, n - 1), values, CONDS), max_size=24))
    grouped = draw(st.booleans())
    if grouped:
        elements.sort(key=lambda e: e[0])  # stable: each parent's order kept
    return n, elements, grouped


def _segments(n: int, elements: list[tuple[int, Any, Any]]) -> Segments:
    parent = np.array([p for p, _, _ in elements], dtype=np.int64)
    seen: dict[int, int] = {}
    pos = []
    for p, _, _ in elements:
        pos.append(seen.get(p, 0))
        seen[p] = pos[-1] + 1
    return Segments.of(parent, np.array(pos, dtype=np.int64), n)


def _col(values: list[Any], kind: str) -> Col:
    valid = np.array([v is not None for v in values], dtype=bool)
    if kind == "number":
        data = np.array([math.nan if v is None else v for v in values], dtype=float)
    elif kind == "day":
        data = np.array([0 if v is None else v for v in values], dtype=np.int64)
    elif kind == "bool":
        data = np.array([bool(v) for v in values], dtype=bool)
    else:
        data = np.array(values, dtype=object)
    return Col(data, valid)


def _python(c: Col, i: int) -> Any:
    if not c.valid[i]:
        return None
    v = c.data[i]
    return v if isinstance(v, str) else v.item()


ROW: dict[str, Any] = {
    "count_where": lambda xs, cs: fn._agg_count_where(cs),
    "sum_where": lambda xs, cs: fn._agg_sum_where(list(zip(xs, cs, strict=True))),
    "sum_of": lambda xs, cs: fn._agg_sum_of(xs),
    "share_where": lambda xs, cs: fn._agg_share_where(list(zip(xs, cs, strict=True))),
    "any_of": lambda xs, cs: fn._agg_any_of(cs),
    "all_of": lambda xs, cs: fn._agg_all_of(cs),
    "min_of": lambda xs, cs: fn._agg_min_of(xs),
    "max_of": lambda xs, cs: fn._agg_max_of(xs),
    "first_date": lambda xs, cs: fn._agg_first_date(zip(xs, cs, strict=True)),
    "last_of": lambda xs, cs: fn._agg_last_of(reversed(list(zip(xs, cs, strict=True)))),
    "min_where": lambda xs, cs: fn._agg_min_where(list(zip(xs, cs, strict=True))),
    "max_where": lambda xs, cs: fn._agg_max_where(list(zip(xs, cs, strict=True))),
}
ARGS = {  # which columns each reduction takes: the value, the condition, or both
    "count_where": "c", "sum_where": "xc", "sum_of": "x", "share_where": "xc", "any_of": "c", "all_of": "c",
    "min_of": "x", "max_of": "x", "first_date": "xc", "last_of": "xc", "min_where": "xc", "max_where": "xc",
}


def _agree(name: str, kind: str, n: int, elements: list[tuple[int, Any, Any]]) -> None:
    seg = _segments(n, elements)
    x, cond = _col([v for _, v, _ in elements], kind), _col([c for _, _, c in elements], "bool")
    with np.errstate(all="ignore"):  # as the evaluator calls them: inf / inf is NaN, as in the row form
        got = REDUCERS[name](seg, [seg.arrange(x if a == "x" else cond) for a in ARGS[name]])
    for p in range(n):
        mine = [(v, c) for q, v, c in elements if q == p]
        want = ROW[name]([v for v, _ in mine], [c for _, c in mine])
        assert _same(_python(got, p), want), (name, p, mine, _python(got, p), want)


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(sorted(set(REDUCERS) - {"first_date"})), table=tables(NUMBERS))  # dates only
def test_reductions_of_numbers_equal_the_row_helpers(name: str, table: tuple[int, list[Any], bool]) -> None:
    n, elements, _ = table
    _agree(name, "number", n, elements)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(["min_of", "max_of", "min_where", "max_where", "first_date", "last_of"]),
       table=tables(DAYS))
def test_reductions_of_day_numbers_equal_the_row_helpers(name: str, table: tuple[int, list[Any], bool]) -> None:
    n, elements, _ = table
    _agree(name, "day", n, elements)


@settings(max_examples=50, deadline=None)
@given(table=tables(TEXTS))
def test_the_last_text_equals_the_row_helper(table: tuple[int, list[Any], bool]) -> None:
    n, elements, _ = table
    _agree("last_of", "text", n, elements)


def test_grouped_elements_are_read_in_place_and_interleaved_ones_sorted_once() -> None:
    grouped = Segments.of(np.array([0, 0, 2]), np.array([0, 1, 0]), 3)
    assert grouped.order is None
    assert grouped.starts.tolist() == [0, 2, 2, 3] and grouped.has.tolist() == [True, False, True]
    interleaved = Segments.of(np.array([2, 0, 0]), np.array([0, 1, 0]), 3)
    assert interleaved.order is not None and interleaved.order.tolist() == [2, 1, 0]
    assert interleaved.parent.tolist() == [0, 0, 2]


def test_the_first_of_equal_zeros_is_kept_in_a_long_run() -> None:
    # numpy's vectorised fmax / fmin over a long run may return either zero; Python's max keeps the first.
    for first, rest in ((-0.0, 0.0), (0.0, -0.0)):
        elements = [(0, first, None)] + [(0, rest, None)] * 99 + [(1, rest, None)] * 50 + [(1, first, None)]
        for name in ("max_of", "min_of"):
            _agree(name, "number", 2, elements)
        taken = [(p, v, True) for p, v, _ in elements]
        for name in ("max_where", "min_where"):
            _agree(name, "number", 2, taken)
