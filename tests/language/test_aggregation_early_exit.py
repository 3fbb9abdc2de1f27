"""any_of, all_of, first_date and last_of stop at the element that settles them (issue 15 speed).

Their row code passes a generator, so an early return must give what the full list gave: the
answers are compared with the list definitions they replaced (docs/scopes.md null rules), over
every order of True, False and null, and the elements after the answer are shown not to be read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.language.functions import (
    AGGREGATIONS,
    _agg_all_of,
    _agg_any_of,
    _agg_first_date,
    _agg_last_of,
)

CONDS = st.lists(st.sampled_from([True, False, None]), max_size=8)


def _any_full(conds: list[Any]) -> Any:
    return True if True in conds else None if None in conds else False


def _all_full(conds: list[Any]) -> Any:
    return False if False in conds else None if None in conds else True


def _first_full(pairs: list[tuple[Any, Any]]) -> Any:
    for d, cond in pairs:
        if cond is None:
            return None
        if cond:
            return d
    return None


def _last_full(pairs: list[tuple[Any, Any]]) -> Any:
    return _first_full(pairs[::-1])


@settings(max_examples=300, deadline=None, database=None)
@given(CONDS)
def test_early_exit_gives_the_full_answer(conds: list[Any]) -> None:
    pairs = [(k, c) for k, c in enumerate(conds)]
    assert _agg_any_of(c for c in conds) is _any_full(conds)
    assert _agg_all_of(c for c in conds) is _all_full(conds)
    assert _agg_first_date(p for p in pairs) == _first_full(pairs)
    assert _agg_last_of(p for p in reversed(pairs)) == _last_full(pairs)


def _counted(values: list[Any], seen: list[Any]) -> Iterator[Any]:
    for v in values:
        seen.append(v)
        yield v


def test_a_null_before_the_hit() -> None:
    """A null before a True: any_of is True (the hit settles it), first_date is null (it may be first)."""
    assert _agg_any_of(iter([None, True, False])) is True
    assert _agg_all_of(iter([None, False, True])) is False
    assert _agg_any_of(iter([None, False])) is None
    assert _agg_all_of(iter([None, True])) is None
    assert _agg_first_date(iter([("d1", None), ("d2", True)])) is None
    assert _agg_last_of(iter([("x3", None), ("x2", True)])) is None  # given last element first


def test_the_elements_after_the_answer_are_not_read() -> None:
    seen: list[Any] = []
    assert _agg_any_of(_counted([False, True, None, False], seen)) is True
    assert seen == [False, True]
    seen = []
    assert _agg_first_date(_counted([("d1", False), ("d2", True), ("d3", None)], seen)) == "d2"
    assert len(seen) == 2


def test_last_of_reads_the_elements_backwards() -> None:
    """The row code of last_of iterates the reversed elements, through a helper generated code may call."""
    helpers = AGGREGATIONS["last_of"].row_helpers(("normal",))  # type: ignore[misc]
    assert helpers["_agg_reversed"] is reversed
    assert helpers["_agg_last_of"](((x, c) for x, c in reversed([("a", True), ("b", False), ("c", True)]))) == "c"
