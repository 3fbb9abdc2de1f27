"""The calendar table of the vector date functions: the same answers as numpy's calendar, inside
the table's span and beyond it (a lookup there falls back to converting each value)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.language.columns import _first_days, _month_and_day

EPOCH = dt.date(1970, 1, 1).toordinal()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-12 * 1969, 12 * 8029) | st.integers(-1000, 1600), min_size=0, max_size=30))
def test_the_first_day_of_a_month_is_numpys(months: list[int]) -> None:
    m = np.array(months, dtype=np.int64)
    _month_and_day(np.array([0], dtype=np.int64))  # the usual table is there
    want = m.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    assert _first_days(m).tolist() == want.tolist()


def test_a_batch_of_old_dates_widens_the_table_and_the_answers_stay_python_dates() -> None:
    dates = [dt.date(1850, 2, 28), dt.date(1899, 12, 31), dt.date(2026, 9, 30), dt.date(2150, 1, 1)]
    month, day = _month_and_day(np.array([d.toordinal() - EPOCH for d in dates], dtype=np.int64))
    assert month.tolist() == [(d.year - 1970) * 12 + d.month - 1 for d in dates]
    assert day.tolist() == [d.day - 1 for d in dates]
