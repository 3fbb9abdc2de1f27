"""The decision tables' column builders equal their definitions cell by cell: a list column holds each row's
names in column order, a date metric's text is numpy's ISO day (None where it has no value)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from policy_engine.portfolio.batch import _list_column, day_texts
from policy_engine.portfolio.long_tables import _date_texts


@settings(max_examples=100, deadline=None)
@given(hnp.arrays(bool, st.tuples(st.integers(0, 12), st.integers(0, 6))), st.booleans())
def test_a_list_column_holds_each_rows_names_in_column_order(mask: np.ndarray, fortran: bool) -> None:
    mask = np.asfortranarray(mask) if fortran else mask  # a column_stack's layout or a transposed one's
    names = [f"rule_{j}" for j in range(mask.shape[1])]
    got = [list(x) for x in _list_column(mask, names).tolist()]
    assert got == [[names[j] for j in range(mask.shape[1]) if mask[i, j]] for i in range(mask.shape[0])]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-700_000, 2_900_000), st.booleans()), max_size=30))
def test_a_date_metric_reads_as_numpy_writes_each_day(cells: list[tuple[int, bool]]) -> None:
    days = np.array([d for d, _ in cells], dtype="datetime64[D]")
    valid = np.array([v for _, v in cells], dtype=bool)
    want = [str(d) if v else None for d, v in zip(days, valid, strict=True)]
    assert [x if isinstance(x, str) else None for x in day_texts(days, valid)] == want
    # the long tables' formatter (Arrow's) writes the same text
    got = _date_texts(days.astype(np.int64), valid)
    assert [x if isinstance(x, str) else None for x in got] == want
