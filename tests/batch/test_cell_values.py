"""A table's cells become the JSON values they stand for (``batch._cell_lists``): the column-wise ways of date
and boolean columns give what ``_clean`` gives cell by cell, whatever the column holds."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.decide.records import _clean
from policy_engine.portfolio.batch import _cell_lists

DAYS = st.dates(min_value=dt.date(1, 1, 1), max_value=dt.date(9999, 12, 31))
STAMPS = st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59))


def _frame(arr: pa.Array) -> pd.DataFrame:
    """As the long-table reader makes a Parquet column a pandas one (dates as datetime64, nullable booleans)."""
    return pa.table({"c": arr}).to_pandas(date_as_object=False,
                                          types_mapper=lambda k: pd.BooleanDtype() if k == pa.bool_() else None)


def _cell_by_cell(frame: pd.DataFrame) -> list[object]:
    return [_clean(v, False) for v in frame["c"].to_numpy(dtype=object)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.none() | DAYS, max_size=8))
def test_a_date_column_reads_as_its_cells_do(days: list[dt.date | None]) -> None:
    frame = _frame(pa.array(days, pa.date32()))
    assert _cell_lists(frame, False, set())[0] == _cell_by_cell(frame)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.none() | STAMPS, max_size=8))
def test_a_time_stamp_column_reads_as_its_cells_do(stamps: list[dt.datetime | None]) -> None:
    frame = _frame(pa.array(stamps, pa.timestamp("ms")))
    assert _cell_lists(frame, False, set())[0] == _cell_by_cell(frame)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.none() | st.booleans(), max_size=8))
def test_a_boolean_column_reads_as_its_cells_do(values: list[bool | None]) -> None:
    frame = _frame(pa.array(values, pa.bool_()))
    got = _cell_lists(frame, False, set())[0]
    assert got == _cell_by_cell(frame) and [type(v) for v in got] == [type(v) for v in _cell_by_cell(frame)]
