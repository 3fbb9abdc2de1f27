"""A decision record owns every object in it: a caller that edits a record (adds a note to a label, rewrites
the policy reference) changes nothing in the next decision. The decider once handed out its own label and
policy-reference dicts, so an edit to one record silently changed every later record of that process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy

from ..conftest import REFERENCE

CASES = [("policy-1.1.0.yaml", p) for p in sorted((REFERENCE / "samples" / "clients").glob("*.json"))] + \
        [("policy-2.0.0.yaml", p) for p in sorted((REFERENCE / "samples" / "debtors").glob("*.json"))]
VOLATILE = ("decision_id", "evaluated_at")


def _vandalise(x: Any, seen: set[int]) -> None:
    """Edit every dict and list reachable from ``x`` in place."""
    if id(x) in seen:
        return
    seen.add(id(x))
    if isinstance(x, dict):
        for v in list(x.values()):
            _vandalise(v, seen)
        x["edited by the caller"] = True
    elif isinstance(x, list):
        for v in x:
            _vandalise(v, seen)
        x.append("edited by the caller")


def _stable(record: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in record.items() if k not in VOLATILE}, sort_keys=True, default=str)


@pytest.fixture(scope="module")
def deciders() -> dict[str, Decider]:
    return {name: Decider(load_policy(REFERENCE / name)) for name in ("policy-1.1.0.yaml", "policy-2.0.0.yaml")}


@pytest.mark.parametrize(("policy", "sample"), CASES, ids=[f"{p[7:12]}-{s.stem[:24]}" for p, s in CASES])
def test_editing_a_record_leaves_the_next_decision_alone(deciders: dict[str, Decider], policy: str,
                                                         sample: Path) -> None:
    record = json.loads(sample.read_text(encoding="utf-8"))
    as_of = record.get("as_of")
    decider = deciders[policy]
    for trace in (False, True):
        first = decider.decide(record, as_of=as_of, trace=trace)
        expected = _stable(first)
        _vandalise(first, set())
        again = decider.decide(record, as_of=as_of, trace=trace)
        assert _stable(again) == expected
        assert "edited by the caller" not in json.dumps(record)  # nor is the input touched
