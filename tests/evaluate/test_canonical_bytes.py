"""The input hash's byte-level rewrite of integral floats equals the normalising walk on 2.0 debtor shapes.

``canonical_json`` drops the '.0' of integral floats by splitting the encoder's bytes when one
search proves every '.0' before a ',', '}' or ']' is outside strings (the next quote opens a
string), is not -0.0 and ends no token of 16 digits or more. Texts and keys here are made of what
could fool that proof (':1.0,' and '.0}' inside strings, strings that start with ':' or ',' or end
with '.0]', escapes, non-ASCII), numbers of every size around 2**53, nested in lists of objects as
a debtor's exposures and payments are.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.decide.canonical import _UNSAFE_DOT_ZERO, _canonical, canonical_json

ROOT = Path(__file__).resolve().parents[2]
DEBTORS = ROOT / "policies" / "loss-client-management" / "samples" / "debtors"


def walked(value: Any) -> bytes:
    """The definition: the walk's normal form, encoded with sorted keys."""
    return orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


TRICKY_TEXT = (st.text(alphabet=':,{}[]".0123456789-a\\é', max_size=8)
               | st.sampled_from([":1.0,", ".0}", ".0]", ",", ":", "}", "]", "x.0,", ":-0.0,", "null", ":null",
                                  "1.0", "v1.0]", "12000000.0,", '"', "\\", "{}", "é.0,", "2026-01-20", ""]))
INTEGRAL = st.one_of(st.integers(-(10**17), 10**17), st.sampled_from([0, 1, 10**15 - 1, 10**15, 2**53 - 1, 2**53,
                                                                       2**53 + 2, 10**16 - 2, -(2**53) + 1]))
NUMBERS = st.one_of(INTEGRAL.map(float), INTEGRAL, st.just(-0.0), st.just(0.0),
                    st.floats(allow_nan=False, allow_infinity=False, width=64),
                    st.sampled_from([0.042, 0.05, -0.05, 1.05, 1234567890123456.8, 1e16, 1e-7, 5e15]))
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, TRICKY_TEXT)
KEYS = TRICKY_TEXT | st.sampled_from(["balance", "paid_amount", "due_date", "a"])


def objects(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.dictionaries(KEYS, children, max_size=5)


VALUES = st.recursive(LEAVES, lambda children: st.lists(children, max_size=4) | objects(children), max_leaves=20)
PAYMENT = st.fixed_dictionaries({"due_date": TRICKY_TEXT, "due_amount": NUMBERS},
                                optional={"paid_amount": st.none() | NUMBERS, "paid_date": st.none() | TRICKY_TEXT})
EXPOSURE = st.fixed_dictionaries(
    {"exposure_id": TRICKY_TEXT, "balance": NUMBERS, "schedule": st.lists(PAYMENT, max_size=4)},
    optional={"collateral": objects(LEAVES), "modifications": st.lists(objects(LEAVES), max_size=2)})
DEBTOR = st.fixed_dictionaries(
    {"client_id": TRICKY_TEXT, "exposures": st.lists(EXPOSURE, max_size=3)},
    optional={"difficulty": objects(LEAVES), "events": st.lists(objects(LEAVES), max_size=2)})


@settings(max_examples=1500, deadline=None)
@given(VALUES)
def test_any_json_value_hashes_as_the_walk_normalises_it(value: Any) -> None:
    assert canonical_json(value) == walked(value)


@settings(max_examples=800, deadline=None)
@given(DEBTOR)
def test_a_debtor_of_any_shape_hashes_as_the_walk_normalises_it(debtor: dict[str, Any]) -> None:
    assert canonical_json(debtor) == walked(debtor)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.integers(-5, 5) | st.text(max_size=3), VALUES, max_size=4))
def test_records_with_non_string_keys_hash_as_the_walk_normalises_them(value: dict[Any, Any]) -> None:
    assert canonical_json(value) == walked(value)


@pytest.mark.parametrize("text", [":1.0,", "x.0}", "1.0]", ":-0.0,", "a.0,b", "é1.0,"])
def test_a_dot_zero_inside_a_string_stays(text: str) -> None:
    value = {"a": 1.0, "b": text, "c": [2.0, {"d": 3.0}], text: 4.0}
    assert canonical_json(value) == walked(value)
    assert text.encode() in canonical_json(value)


@pytest.mark.parametrize(("number", "token"), [(-0.0, b"0"), (1e15, b"1000000000000000"),
                                               (float(2**53 - 1), b"9007199254740991"),
                                               (float(2**53), b"9007199254740992.0"), (9.5e15, b"9500000000000000.0"),
                                               (-(2.0**53) + 1, b"-9007199254740991")])
def test_zero_and_sixteen_digit_floats_are_written_as_the_walk_writes_them(number: float, token: bytes) -> None:
    value = {"a": number, "b": [number, 1.0], "c": {"d": number}}
    assert canonical_json(value) == walked(value) == b'{"a":%s,"b":[%s,1],"c":{"d":%s}}' % (token, token, token)


def test_the_sample_debtors_take_the_byte_rewrite_and_hash_as_the_walk_normalises_them() -> None:
    for path in sorted(DEBTORS.glob("*.json")):
        debtor = json.loads(path.read_text(encoding="utf-8"))
        for e in debtor.get("exposures", []):  # amounts as floats, as a Parquet or CSV reader gives them
            e["balance"] = float(e.get("balance") or 0)
        assert _UNSAFE_DOT_ZERO.search(orjson.dumps(debtor, option=orjson.OPT_SORT_KEYS)) is None, path.name
        assert canonical_json(debtor) == walked(debtor), path.name


NON_FINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
VALUES_NON_FINITE = st.recursive(LEAVES | NON_FINITE,
                                 lambda children: st.lists(children, max_size=4) | objects(children), max_leaves=20)


@settings(max_examples=600, deadline=None)
@given(VALUES_NON_FINITE)
def test_nan_and_infinities_hash_as_the_walk_normalises_them(value: Any) -> None:
    """JSON has no NaN: the encoder writes null, so a NaN (or infinite) member is dropped as a null member is,
    whichever path the record takes (the walk kept it as "k":null while the bytes dropped it)."""
    assert canonical_json(value) == walked(value)


@pytest.mark.parametrize("x", [float("nan"), float("inf"), float("-inf")])
def test_a_non_finite_member_is_no_fact(x: float) -> None:
    assert canonical_json({"a": x, "b": 1.0}) == canonical_json({"b": 1}) == b'{"b":1}'
    assert canonical_json({"a": x, "b": "\\"}) == canonical_json({"b": "\\"})  # an escape takes the walk
    assert canonical_json({"a": {"b": x}}) == b'{}'  # an object left without a fact is no fact either


@pytest.mark.parametrize(("version", "sample"), [("1.1.0", "clients/13-restructured-in-observation.json"),
                                                 ("2.0.0", "debtors/13-observation-restarted.json")])
def test_the_input_a_decider_gives_with_its_decision_is_what_its_hash_is_of(version: str, sample: str) -> None:
    """decide and --stream record the input the decider wrote for its hash (it was written twice a recorded
    decision): the bytes are the canonical form a store keeps, and the hash the decision carries is theirs."""
    import hashlib

    from policy_engine.decide.evaluate import Decider
    from policy_engine.policy.registry import load_policy

    policy = load_policy(ROOT / "policies" / "loss-client-management" / f"policy-{version}.yaml")
    record = json.loads((ROOT / "policies" / "loss-client-management" / "samples" / sample).read_text("utf-8"))
    decision, written = Decider(policy).decide_with_input(record)
    assert written == canonical_json(record, lists_optional=policy.scoped is not None)
    assert hashlib.sha256(written).hexdigest() == decision["input_sha256"]
    assert {**Decider(policy).decide(record), "decision_id": None, "evaluated_at": None} == \
           {**decision, "decision_id": None, "evaluated_at": None}
