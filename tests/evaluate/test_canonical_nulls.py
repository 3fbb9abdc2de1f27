"""The input hash drops a record's null members in the bytes as the normalising walk drops them.

A 2.0 record (a debtor, its exposures and their payments) has a few null facts almost always
(a payment not made yet, a date not set), so the hash removes ``"key":null`` members from the
encoder's bytes instead of walking the record. Keys and texts here are made of the characters
that could fool a byte-level rewrite (``":null,`` and braces), nested in objects and lists.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.decide.canonical import _canonical, canonical_json

NULLISH = st.text(alphabet='":nul,{}[]a1', max_size=8) | st.sampled_from(['":null', ':null', '":null,"', "null", ""])
VALUES = st.recursive(
    st.one_of(st.none(), st.none(), st.booleans(), st.integers(-5, 5), st.sampled_from([1.0, 0.5, -0.0]), NULLISH),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(NULLISH, children, max_size=5),
    max_leaves=16)


@settings(max_examples=1500, deadline=None)
@given(VALUES)
def test_null_members_dropped_in_the_bytes_equal_the_walk(value: Any) -> None:
    assert canonical_json(value) == orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS)


@settings(max_examples=1500, deadline=None)
@given(VALUES)
def test_empty_lists_dropped_in_the_bytes_equal_the_walk(value: Any) -> None:
    """A debtor record's form (an absent list is empty): ``"key":[]`` members go as null ones do."""
    assert canonical_json(value, lists_optional=True) == orjson.dumps(
        _canonical(value, drop_empty_lists=True), option=orjson.OPT_SORT_KEYS)


def test_a_debtor_without_events_has_one_hash_with_the_list_without_it_and_with_null() -> None:
    debtor = {"client_id": "D", "exposures": [{"exposure_id": "E1", "modifications": [], "schedule": []}]}
    forms = [{**debtor, "events": []}, debtor, {**debtor, "events": None},
             {"client_id": "D", "exposures": [{"exposure_id": "E1"}]}]
    assert {canonical_json(f, lists_optional=True) for f in forms} == {
        b'{"client_id":"D","exposures":[{"exposure_id":"E1"}]}'}
    assert canonical_json(forms[0]) != canonical_json(forms[1])  # a 1.x record keeps them (financials: required)


def test_a_debtor_with_null_facts_hashes_as_the_walk_normalises_it() -> None:
    debtor = {"client_id": "D", "difficulty": {"assessed": False, "resolved_date": None},
              "exposures": [{"exposure_id": "E1", "past_due_reason": None, "balance": 1.0,
                             "schedule": [{"due_date": "2026-01-20", "paid_date": None, "paid_amount": None},
                                          {"due_date": "2026-02-20", "paid_date": "2026-02-20"}]}]}
    assert canonical_json(debtor) == (b'{"client_id":"D","difficulty":{"assessed":false},"exposures":[{"balance":1,'
                                      b'"exposure_id":"E1","schedule":[{"due_date":"2026-01-20"},{"due_date":'
                                      b'"2026-02-20","paid_date":"2026-02-20"}]}]}')
