"""The generated reader of a debtor's elements agrees with the checked path (``read_scopes``).

The fast reader takes a record it finds nothing wrong with and hands back the same element dicts
the checked path builds (same keys, same order, same values and types); on anything else it gives
up (None) and the checked path names every problem. Drawn from the sample debtors of the reference
policy and of the test policy with scopes, with fields replaced by junk or by values at the edges of
a test (numbers as ints, floats, -0.0, beyond 1e15 or 64 bits; dates in the other forms
``date.fromisoformat`` takes), deleted or added, elements repeated (a repeated payment under a policy
declaring its payments ``unique``), reordered or dropped, dates before the dates they may not precede
(2.1.0: a payment before its exposure's origination), and decision days before some of the dates.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from policy_engine.decide.scoped import build_fast_reader, read_scopes
from policy_engine.policy.compiler import CompiledPolicy
from policy_engine.policy.registry import load_policy

from ..conftest import DATA
from ..strategies import _paths, mutate_at

REFERENCE = Path(__file__).parents[2] / "policies" / "loss-client-management"
DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))
# 2.1.0 declares its payments unique by due date: a repeated payment is refused by both readers
POLICIES = {"reference": REFERENCE / "policy-2.0.0.yaml", "reference-2.1": REFERENCE / "policy-2.1.0.yaml",
            "test": DATA / "scopes" / "policy-multi-exposure.yaml"}
BASES = {"reference": [json.loads(p.read_text("utf-8")) for p in DEBTORS],
         "reference-2.1": [json.loads(p.read_text("utf-8")) for p in DEBTORS],
         "test": [json.loads((DATA / "scopes" / "clients" / "three-exposures.json").read_text("utf-8"))]}
ODD = st.sampled_from([0, 1, 3, -0.0, 0.5, 1e15, 1e15 + 1, 10**15 + 1, 2**53 + 1, 2**64, 10**400, -1, True, False,
                       "2026-01-20", "0001-01-01", "1900-01-01", "20260120", "2026-W03-2", "2026-01-2x", "2026-02-30",
                       "2026-01-20T00:00", "E1",
                       "", {}, [], None])
DAYS = st.sampled_from([None, dt.date(2025, 1, 1), dt.date(2026, 3, 31), dt.date(2026, 9, 30), dt.date(2030, 1, 1)])


@pytest.fixture(scope="module")
def policies() -> dict[str, CompiledPolicy]:
    return {k: load_policy(p) for k, p in POLICIES.items()}


def _same(fast: dict[str, Any], checked: dict[str, Any]) -> None:
    """Equal, and key for key in the same order with the same types (the record and evidence read them)."""
    assert fast == checked
    stack = [(fast, checked)]
    while stack:
        a, b = stack.pop()
        if type(a) is dict:
            assert list(a) == list(b)
            stack += [(a[k], b[k]) for k in a]
        elif type(a) is list:
            stack += list(zip(a, b, strict=True))
        else:
            assert type(a) is type(b)


@st.composite
def mutated_debtors(draw: Any) -> tuple[str, dict[str, Any]]:
    which = draw(st.sampled_from(sorted(BASES)))
    debtor = copy.deepcopy(draw(st.sampled_from(BASES[which])))
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(debtor) if p and p[0] in ("exposures", "events")]
        if not paths:
            break
        mutate_at(draw, debtor, draw(st.sampled_from(paths)), ODD)
    return which, debtor


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_debtors(), DAYS)
def test_the_fast_reader_takes_only_what_the_checked_path_accepts_and_reads_it_alike(
        policies: dict[str, CompiledPolicy], drawn: tuple[str, dict[str, Any]], day: dt.date | None) -> None:
    which, debtor = drawn
    policy = policies[which]
    fast = build_fast_reader(policy)(debtor, day)
    checked, problems = read_scopes(policy, debtor, None, day)
    if problems:
        event("refused")
        assert fast is None, f"the fast reader accepted a record the checked path refuses: {problems[0].render()}"
    elif fast is not None:
        event("read by the fast reader")
        _same(fast, checked)
    else:
        event("accepted, left to the checked path")


@pytest.mark.parametrize("which", sorted(BASES))
def test_the_fast_reader_takes_every_sample_debtor(policies: dict[str, CompiledPolicy], which: str) -> None:
    reader = build_fast_reader(policies[which])
    for debtor in BASES[which]:
        day = dt.date.fromisoformat(debtor["as_of"])
        fast = reader(debtor, day)
        assert fast is not None, debtor["client_id"]
        checked, problems = read_scopes(policies[which], debtor, None, day)
        assert not problems
        _same(fast, checked)


def test_a_record_that_is_not_an_object_is_left_to_the_checked_path(policies: dict[str, CompiledPolicy]) -> None:
    reader = build_fast_reader(policies["reference"])
    assert reader([], None) is None and reader(None, None) is None
