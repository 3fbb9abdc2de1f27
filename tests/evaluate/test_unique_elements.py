"""A scope's ``unique`` fields: an element repeating an earlier one under the same parent is refused.

Without it a payment listed twice is two payments to every aggregation (two late payments where there
was one); with ``unique: [due_date]`` the record is refused at the repeat (exit 3), on the generated
reader and the checked path alike, and the same due date under two exposures is no repeat.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.policy.registry import load_policy

from ..conftest import DATA
from ..variants import unique_scopes_text

SCOPES = DATA / "scopes"
CLIENT = json.loads((SCOPES / "clients" / "three-exposures.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def unique(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    path = tmp_path_factory.mktemp("unique") / "policy.yaml"
    path.write_text(unique_scopes_text(), "utf-8")
    return Decider(load_policy(path))


def _with(change: Any) -> dict[str, Any]:
    c = copy.deepcopy(CLIENT)
    change(c)
    return c


def _repeat_late_payment(c: dict[str, Any]) -> None:
    c["exposures"][0]["schedule"].append(dict(c["exposures"][0]["schedule"][1]))  # due 2025-01-31, paid late


REFUSED = [
    ("a payment listed twice", _repeat_late_payment, "exposures[0].schedule[3].due_date",
     "payment exposures[0].schedule[3] repeats exposures[0].schedule[1] (due_date 2025-01-31): "
     "it would be counted twice"),
    ("a repeat that differs in another field", lambda c: c["exposures"][2]["schedule"].insert(
        0, {"due_date": "2025-05-31", "paid_date": "2025-05-31"}), "exposures[2].schedule[1].due_date",
     "payment exposures[2].schedule[1] repeats exposures[2].schedule[0] (due_date 2025-05-31)"),
    ("an event of the same kind on the same day (two fields)", lambda c: c["events"].append(dict(c["events"][0])),
     "events[1].kind", "event events[1] repeats events[0] (kind litigation, date 2025-04-01)"),
]


@pytest.mark.parametrize(("name", "change", "path", "says"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_repeated_element_is_refused_at_the_repeat(unique: Decider, name: str, change: Any, path: str,
                                                      says: str) -> None:
    with pytest.raises(InputError) as info:
        unique.decide(_with(change), file="debtor.json")
    [d] = info.value.diagnostics
    assert (d.code, d.path, d.file) == ("duplicate-key", path, "debtor.json")
    assert says in d.message
    assert "unique of the policy" in (d.hint or "")


ACCEPTED = [
    ("the sample debtor", lambda c: None),
    ("one due date under two exposures", lambda c: c["exposures"][2]["schedule"].append({"due_date": "2025-03-31"})),
    ("an event of another kind on the same day", lambda c: c["events"].append({"kind": "bankruptcy_filing",
                                                                                "date": "2025-04-01"})),
]


@pytest.mark.parametrize(("name", "change"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_elements_that_differ_in_a_unique_field_are_decided(unique: Decider, name: str, change: Any) -> None:
    assert unique.decide(_with(change))["classification"]["grade"]


def test_without_unique_a_repeated_payment_counts_twice(unique: Decider) -> None:
    """What ``unique`` guards against: the same late payment read as two."""
    plain = Decider(load_policy(SCOPES / "policy-multi-exposure.yaml"))
    record = plain.decide(_with(_repeat_late_payment))
    assert record["exposures"][0]["metrics"]["late_payments"] == 2
    assert unique.decide(CLIENT)["exposures"][0]["metrics"]["late_payments"] == 1


def test_the_generated_reader_leaves_a_repeat_to_the_checked_path(unique: Decider) -> None:
    from policy_engine.decide.scoped import build_fast_reader, read_scopes

    policy = unique.policy
    reader = build_fast_reader(policy)
    assert reader(CLIENT, None) is not None
    repeated = _with(_repeat_late_payment)
    assert reader(repeated, None) is None
    assert [p.code for p in read_scopes(policy, repeated)[1]] == ["duplicate-key"]


def test_the_client_schema_says_the_elements_are_unique(unique: Decider) -> None:
    from policy_engine.decide.contract import record_schema

    schema = record_schema(unique.policy)
    payments = schema["properties"]["exposures"]["items"]["properties"]["schedule"]
    assert "No two share their due_date (a repeat is refused)." in payments["description"]
