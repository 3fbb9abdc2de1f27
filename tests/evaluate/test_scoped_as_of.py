"""An element's date declared ``not_after_as_of`` (a payment made after the decision day) is refused,
as the debtor's own dates are: a decision as of a day can only use what was known then."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from policy_engine import Decider, InputError, load_policy

REFERENCE = Path(__file__).parents[2] / "policies" / "loss-client-management"


@pytest.fixture(scope="module")
def decider() -> Decider:
    return Decider(load_policy(REFERENCE / "policy-2.0.0.yaml"))


def _debtor() -> dict:
    return json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text("utf-8"))


def test_a_payment_made_after_the_decision_day_is_refused_at_its_place(decider: Decider) -> None:
    debtor = _debtor()
    paid = [(i, p["paid_date"]) for i, p in enumerate(debtor["exposures"][0]["schedule"]) if p.get("paid_date")]
    i, last = max(paid, key=lambda x: x[1])
    day = (dt.date.fromisoformat(last) - dt.timedelta(days=1)).isoformat()
    with pytest.raises(InputError) as e:
        decider.decide(debtor, as_of=day)
    [d] = [d for d in e.value.diagnostics if d.path == f"exposures[0].schedule[{i}].paid_date"]
    assert d.code == "bad-field" and "after the as-of date" in d.message


def test_the_same_debtor_decides_on_the_day_of_its_last_payment(decider: Decider) -> None:
    debtor = _debtor()
    last = max(p["paid_date"] for p in debtor["exposures"][0]["schedule"] if p.get("paid_date"))
    assert decider.decide(debtor, as_of=last)["classification"]["grade"]
