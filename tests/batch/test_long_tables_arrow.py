"""Long tables read as Arrow columns: each check straight from Arrow agrees with the pandas column's.

A Parquet column whose Arrow type is the declared type (numbers, dates, booleans) is checked
without a pandas column; a column of any other type goes through the pandas checks. Both must
give the same data, the same valid and missing cells and the same problems with the same
words, for every kind of cell (nulls, NaN, infinities, -0.0, out of range, not whole, the
largest dates).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from policy_engine.policy.compiler import InputSpec
from policy_engine.portfolio.frame import _Checker, _id_problem_cells
from policy_engine.portfolio.long_tables import _mapper
from policy_engine.safetext import has_id_problem


def _spec(kind: str, lo: float | None = None, hi: float | None = None) -> InputSpec:
    return InputSpec("x", "x", ("x",), (), False, kind, False, lo, hi, None, None)


def _both(spec: InputSpec, arr: pa.ChunkedArray) -> tuple[Any, Any]:
    """(Arrow check, pandas check) of one column: data, valid, missing and the problems."""
    by_arrow = _Checker(len(arr), False, ())
    got = by_arrow.arrow_values(spec, arr, "x")
    assert got is not None, f"{arr.type} should be read from Arrow"
    by_pandas = _Checker(len(arr), False, ())
    col = pa.table({"x": arr}).to_pandas(date_as_object=False, types_mapper=_mapper)["x"]
    want = by_pandas.values(spec, col, "x")
    return (got, by_arrow.problems), (want, by_pandas.problems)


def _same(a: Any, b: Any) -> None:
    (got, got_problems), (want, want_problems) = a, b
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype
        np.testing.assert_array_equal(g, w)
    assert got_problems == want_problems


NUMBERS = [1.5, None, float("nan"), float("inf"), float("-inf"), -0.0, -3.0, 2.0, 1e300, 7.0]


@pytest.mark.parametrize("kind", ["number", "integer"])
@pytest.mark.parametrize(("lo", "hi"), [(None, None), (0, None), (1, 3)])
@pytest.mark.parametrize("chunks", [1, 3])
def test_float_columns_are_checked_from_arrow_as_from_pandas(kind: str, lo: float | None, hi: float | None,
                                                             chunks: int) -> None:
    arr = pa.chunked_array([pa.array(NUMBERS[i::chunks], pa.float64()) for i in range(chunks)])
    _same(*_both(_spec(kind, lo, hi), arr))


@pytest.mark.parametrize("values", [[1, 2, 3, -4], [1, None, 3, 2**60], [None, None]])
@pytest.mark.parametrize("arrow_type", [pa.int64(), pa.int32(), pa.float32()])
def test_integer_columns_with_or_without_nulls_are_checked_from_arrow_as_from_pandas(values: list[Any],
                                                                                    arrow_type: Any) -> None:
    if arrow_type != pa.int64() and 2**60 in values:
        values = [v if v != 2**60 else 2**20 for v in values]
    arr = pa.chunked_array([pa.array(values, arrow_type)])
    _same(*_both(_spec("integer", 0, None), arr))
    _same(*_both(_spec("number"), arr))


def test_in_range_columns_and_a_column_without_cells_pass_the_quick_check() -> None:
    _same(*_both(_spec("integer", 0, 100), pa.chunked_array([pa.array([0.0, 5.0, 100.0])])))
    _same(*_both(_spec("number", 0, 1), pa.chunked_array([pa.array([None, None], pa.float64())])))
    _same(*_both(_spec("number", 0, 1), pa.chunked_array([], pa.float64())))


def test_date_and_boolean_columns_are_checked_from_arrow_as_from_pandas() -> None:
    days = [dt.date(2025, 1, 31), None, dt.date(1970, 1, 1), dt.date(1, 1, 1), dt.date(9999, 12, 31)]
    _same(*_both(_spec("date"), pa.chunked_array([pa.array(days[:2]), pa.array(days[2:])])))
    _same(*_both(_spec("boolean"), pa.chunked_array([pa.array([True, None, False])])))
    _same(*_both(_spec("boolean"), pa.chunked_array([pa.array([True, False])])))


def test_the_largest_date_is_its_own_day_not_a_wrapped_nanosecond_one() -> None:
    """9999-12-31 (an open-ended maturity) does not fit datetime64[ns]: it was read as 1816-03-29."""
    arr = pa.chunked_array([pa.array([dt.date(9999, 12, 31)])])
    (got, _), (want, _) = _both(_spec("date"), arr)
    expected = (dt.date(9999, 12, 31) - dt.date(1970, 1, 1)).days
    assert got[0][0] == want[0][0] == expected


@pytest.mark.parametrize(("kind", "arr"), [
    ("number", pa.array(["1"])), ("number", pa.array([True])), ("date", pa.array([dt.datetime(2025, 1, 1)])),
    ("date", pa.array(["2025-01-01"])), ("boolean", pa.array([1])), ("string", pa.array([1.0])),
])
def test_a_column_of_another_type_is_left_to_the_pandas_checks(kind: str, arr: pa.Array) -> None:
    assert _Checker(1, False, ()).arrow_values(_spec(kind), pa.chunked_array([arr]), "x") is None


def test_arrow_ids_are_searched_for_what_safetext_refuses_in_an_id() -> None:
    """Control and invisible characters, and a form other than NFC (an accent after its letter, a CJK
    compatibility ideograph): Arrow's search and normalisation give what safetext gives id by id."""
    chars = [chr(c) for c in range(0x3000)] + ["\U0001f600", "\ufeff", "\uf900", "\u2060", "\u206f"]
    texts = pd.Series(["a" + c + "b" for c in chars] + [None, ""], dtype="str")
    assert texts.dtype.storage == "pyarrow"
    want = [has_id_problem(t) for t in texts[:-2]] + [False, False]
    assert sum(want) > 150  # controls, invisibles and combining marks among them
    assert _id_problem_cells(texts).tolist() == want
    assert _id_problem_cells(texts.astype("string[python]")).tolist() == want


@pytest.mark.parametrize("cells", [[-0.0, 1.0, 2.0], [-0.0, None, 3.0], [0.0, -0.0], [5.0, -0.0, -1.0], [1.0, 2.0],
                                   [0.0, None]])
def test_a_negative_zero_is_read_as_zero_by_either_check(cells: list[float | None]) -> None:
    """-0.0 is 0 as decide reads it (the input hash writes both as 0), whichever check reads the column; a
    column without a sign bit is left as it is (no copy of a column of amounts)."""
    arr = pa.chunked_array([pa.array(cells, pa.float64())])
    (got, _), (want, _) = _both(_spec("number"), arr)
    for data, valid in ((got[0], got[1]), (want[0], want[1])):
        assert not np.signbit(data[valid & (data == 0)]).any()
        np.testing.assert_array_equal(data[valid], np.array([c for c in cells if c is not None]))
