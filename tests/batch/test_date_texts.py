"""The date cells of long-table decisions: each day of a column's span formatted once and taken, the same texts
as Arrow formatting each cell (nulls where a date has no value, dates from any year)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.portfolio.long_tables import _date_texts

DAY = st.integers(-719162, 2932896)  # 0001-01-01 .. 9999-12-31 as days since 1970-01-01


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(DAY, st.booleans()), max_size=60), st.integers(0, 3))
def test_each_cell_is_the_iso_text_arrow_gives_its_day(cells: list[tuple[int, bool]], narrow: int) -> None:
    days = np.array([d for d, _ in cells], dtype=np.int64)
    if narrow and len(days):  # most columns span a few years: the path that formats the span once
        days = days[0] + days % (narrow * 40)
    valid = np.array([v for _, v in cells], dtype=bool)
    got = _date_texts(days, valid)
    dates = pa.array(np.where(valid, days, 0).astype(np.int32), type=pa.date32(), mask=~valid)
    want = pc.cast(dates, pa.string()).to_pylist()
    assert [None if x is None or x != x else x for x in got.tolist()] == want
    assert str(got.dtype) == "str"
