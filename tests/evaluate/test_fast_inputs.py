"""The generated reader of a record's own inputs (``build_fast_extractor``) agrees with the checked path.

It serves 1.x clients and the debtor fields of a policy with scopes alike: a record it takes gives
the checked path's values, of the same types down to each period of a series; on anything else it
gives up (None) and the checked path names every problem. Drawn from the sample records of both
policies with fields replaced by junk (numbers as ints, floats, -0.0, beyond 64 bits; dates in the
other forms ``date.fromisoformat`` takes), deleted or added, and periods emptied, repeated or
reordered. The dates it parses are remembered by their text: only texts the checked path takes.
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

from policy_engine.decide import inputs
from policy_engine.decide.inputs import build_fast_extractor, describe, extract_checked, new_date, parse_date
from policy_engine.diagnostics import InputError
from policy_engine.policy.compiler import CompiledPolicy
from policy_engine.policy.registry import load_policy

from ..strategies import MUTATIONS, _paths, mutate_at

REFERENCE = Path(__file__).parents[2] / "policies" / "loss-client-management"
POLICIES = {"1.1.0": REFERENCE / "policy-1.1.0.yaml", "2.0.0": REFERENCE / "policy-2.0.0.yaml"}
SAMPLES = {"1.1.0": sorted((REFERENCE / "samples" / "clients").glob("*.json")),
           "2.0.0": sorted((REFERENCE / "samples" / "debtors").glob("*.json"))}
BASES = {k: [json.loads(p.read_text("utf-8")) for p in paths] for k, paths in SAMPLES.items()}
ODD = st.sampled_from([0, 1, 7, -0.0, 0.0, 1e15, 1e15 + 1, 10**15 + 1, 2**53 + 1, 2**64, 10**400, 1.5, -1,
                       True, False, "2025-06-30", "20250630", "2025-W26-1", "2025-06-3x", "2025-13-01",
                       "2025-06-30T00:00", "", {}, [], None])


@pytest.fixture(scope="module")
def policies() -> dict[str, CompiledPolicy]:
    return {k: load_policy(p) for k, p in POLICIES.items()}


def _same(fast: tuple[Any, ...], checked: tuple[Any, ...]) -> None:
    """Equal, with the same types, a series period by period (the rule code and the record read them)."""
    assert fast == checked
    for a, b in zip(fast, checked, strict=True):
        assert type(a) is type(b)
        if type(a) is list:
            assert [type(x) for x in a] == [type(x) for x in b]


@st.composite
def mutated_records(draw: Any) -> tuple[str, dict[str, Any]]:
    which = draw(st.sampled_from(sorted(BASES)))
    record = copy.deepcopy(draw(st.sampled_from(BASES[which])))
    for _ in range(draw(st.integers(0, 3))):
        paths = [p for p in _paths(record) if p and p[0] not in ("exposures", "events", "client_id", "as_of")]
        if not paths:
            break
        mutate_at(draw, record, draw(st.sampled_from(paths)), ODD, (*MUTATIONS, "empty"))
    return which, record


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_records())
def test_the_fast_extractor_takes_only_what_the_checked_path_accepts_and_reads_it_alike(
        policies: dict[str, CompiledPolicy], drawn: tuple[str, dict[str, Any]]) -> None:
    which, record = drawn
    policy = policies[which]
    fast = build_fast_extractor(policy)(record)
    try:
        checked = extract_checked(policy, record)
    except InputError as e:
        event("refused")
        assert fast is None, f"the fast path accepted a record the checked path refuses: {e.diagnostics[0].render()}"
        return
    if fast is not None:
        event("read by the fast path")
        _same(fast, checked)
    else:
        event("accepted, left to the checked path")


@pytest.mark.parametrize("which", sorted(BASES))
def test_the_fast_extractor_takes_every_sample_record(policies: dict[str, CompiledPolicy], which: str) -> None:
    extract = build_fast_extractor(policies[which])
    for record in BASES[which]:
        fast = extract(record)
        assert fast is not None, record["client_id"]
        _same(fast, extract_checked(policies[which], record))


def test_a_date_text_is_remembered_only_once_taken_and_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs, "_DATES", {})
    monkeypatch.setattr(inputs, "_DATES_MAX", 2)
    for text in ("2025-W26-1", "20250630", "2025-02-30", "2025-06-3x"):
        assert parse_date(text) is None
        with pytest.raises(ValueError):
            new_date(text)
    assert inputs._DATES == {}
    assert new_date("2025-06-30") == dt.date(2025, 6, 30) == inputs._DATES["2025-06-30"]
    new_date("2025-09-30")
    assert new_date("2025-12-31") == dt.date(2025, 12, 31)
    assert sorted(inputs._DATES) == ["2025-06-30", "2025-09-30"]  # full: a new text is parsed, not kept


@pytest.mark.parametrize(("value", "words"), [
    (None, "null"), (True, "boolean true"), ("abc", "string 'abc'"), (7, "number 7"), ([1], "a list"),
    ({}, "an object"), ((1, 2), "a list"), (b"\x00", "binary data"),
    (dt.timedelta(days=1), "a duration"), (dt.datetime(2026, 9, 30, 8, 0), "date and time 2026-09-30T08:00:00"),
])
def test_a_value_is_named_in_a_callers_words(value: object, words: str) -> None:
    """What a Parquet cell holds besides JSON's kinds read 'found ndarray' or 'found Timedelta' (hostile review)."""
    assert describe(value) == words


def test_numpy_and_pandas_cells_are_named_in_a_callers_words() -> None:
    import numpy as np
    import pandas as pd

    assert [describe(v) for v in (np.array([1.0]), pd.Timedelta(days=2), np.timedelta64(3, "D"))] == \
        ["a list", "a duration", "a duration"]
