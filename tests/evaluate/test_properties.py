"""Property tests: where two paths must agree, hypothesis looks for a disagreement."""

from __future__ import annotations

import copy
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.inputs import extract_checked
from policy_engine.diagnostics import InputError
from policy_engine.portfolio.synthetic import generate_clients

from ..strategies import mutated_clients


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_clients())
def test_fast_and_checked_input_paths_agree(decider: Decider, client: dict[str, Any]) -> None:
    fast = decider._extract(client)
    try:
        checked = extract_checked(decider.policy, client)
    except InputError:
        assert fast is None, "the fast path accepted a record the checked path rejects"
        return
    if fast is not None:
        assert fast == checked and [type(v) for v in fast] == [type(v) for v in checked]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_clients())
def test_any_record_is_decided_or_rejected_never_crashes(decider: Decider, client: dict[str, Any]) -> None:
    try:
        record = decider.decide(copy.deepcopy(client))
    except InputError as e:
        assert e.diagnostics and all(d.path for d in e.diagnostics)
        return
    assert record["classification"]["grade"] in decider.policy.grade_ids
    for name, value in record["metrics"].items():
        assert value is None or not isinstance(value, float) or math.isfinite(value), name


def test_synthetic_portfolio_is_valid_and_covers_every_grade(decider: Decider) -> None:
    grades = set()
    for client in generate_clients(3000, seed=11):
        grades.add(decider.decide(client)["classification"]["grade"])
    assert grades == set(decider.policy.grade_ids)


def test_synthetic_portfolio_is_reproducible() -> None:
    a = list(generate_clients(50, seed=3))
    assert a == list(generate_clients(50, seed=3))
    assert a != list(generate_clients(50, seed=4))


# Text that looks like JSON numbers (':1.0,', '[0.0]', '\\"') tests that the byte-level fast path
# never rewrites inside a string; integral floats of every size test where it must give way.
JSONISH = st.text(alphabet='0123456789.-,:[]{}"\\ab', max_size=8)
INTEGRAL_FLOATS = st.one_of(st.integers(-(10**17), 10**17), st.sampled_from([0, 1, -1, 10**15 - 1, 10**15, 2**53,
                                                                             -(2**53), 2**53 + 2])).map(float)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), st.text(max_size=5), JSONISH,
              st.floats(allow_nan=False, allow_infinity=False, width=64), INTEGRAL_FLOATS, st.just(-0.0)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4) | JSONISH, children,
                                                                      max_size=3),
    max_leaves=12)


@settings(max_examples=1000, deadline=None)
@given(JSON_VALUES)
def test_canonical_json_fast_path_equals_the_normalising_walk(value: Any) -> None:
    import orjson

    from policy_engine.decide.canonical import _canonical, canonical_json

    assert canonical_json(value) == orjson.dumps(_canonical(value), option=orjson.OPT_SORT_KEYS)
