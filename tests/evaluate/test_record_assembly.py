"""The record assembly's shortcuts keep the record as it was: one walk per decision answers every null metric
and rule reading the same names (a memo that never outlives its decision), and a date's ISO text is kept by
date (bounded), never changed."""

from __future__ import annotations

import copy
import datetime as dt
import json
from typing import Any

import pytest

from policy_engine.decide import evaluate
from policy_engine.decide.evaluate import Decider
from policy_engine.decide.missing import missing_inside
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, ROOT

POLICY_2 = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
DEBTORS = sorted((ROOT / "policies" / "loss-client-management" / "samples" / "debtors").glob("*.json"))
NULLS = DATA / "scopes" / "policy-aggregation-nulls.yaml"
CLIENT: dict[str, Any] = {
    "client_id": "X", "as_of": "2025-06-30",
    "exposures": [
        {"exposure_id": "E1", "balance": 10, "days_past_due": 0,
         "schedule": [{"due_date": "2025-01-01", "paid_date": "2025-01-01"}]},
        {"exposure_id": "E2", "balance": 5,
         "schedule": [{"due_date": "2025-02-01", "paid_date": "2025-03-01"}, {"due_date": "2025-01-01"}]},
    ],
}
EVENT_DATES = ("crisis_event_date", "key_person_missing_date", "assets_seized_date", "bankruptcy_filing_date")


def _facts(record: dict[str, Any]) -> str:
    """The record without what differs between two decisions of the same record (its id and time)."""
    return json.dumps({k: v for k, v in record.items() if k not in ("decision_id", "evaluated_at")}, sort_keys=True)


@pytest.fixture(scope="module")
def decider_2() -> Decider:
    return Decider(load_policy(POLICY_2))


def test_null_event_dates_share_one_walk(decider_2: Decider) -> None:
    """Four event dates read the same names inside one aggregation: one walk answers each that has no value
    (no event matched), and a date that has one is not among them."""
    debtor = json.loads(DEBTORS[0].read_text("utf-8"))
    debtor["events"] = [{"kind": "litigation", "date": "2025-01-02"}]
    none_matched = decider_2.decide(copy.deepcopy(debtor))["undefined_metrics"]
    assert {n: none_matched[n] for n in EVENT_DATES} == dict.fromkeys(EVENT_DATES, evaluate.NO_MATCH)
    debtor["events"].append({"kind": "assets_seized", "date": "2025-02-03"})
    decision = decider_2.decide(copy.deepcopy(debtor))
    assert decision["metrics"]["assets_seized_date"] == decision["metrics"]["crisis_event_date"] == "2025-02-03"
    assert {n: r for n, r in decision["undefined_metrics"].items() if n in EVENT_DATES} == dict.fromkeys(
        ("key_person_missing_date", "bankruptcy_filing_date"), evaluate.NO_MATCH)


def test_the_memo_never_outlives_its_decision(decider_2: Decider) -> None:
    """Debtors decided in turn by one decider give the records each gives decided alone, by a fresh decider:
    nothing found missing in one debtor's elements is read for another."""
    other = copy.deepcopy(CLIENT)  # E1 lacks its days past due, not E2
    other["exposures"][1]["days_past_due"] = 3
    del other["exposures"][0]["days_past_due"]
    for policy, records in ((POLICY_2, [json.loads(p.read_text("utf-8")) for p in DEBTORS]),
                            (NULLS, [CLIENT, other])):
        one = Decider(load_policy(policy))
        in_turn = [_facts(one.decide(copy.deepcopy(r))) for r in records + records[::-1]]
        alone = [_facts(Decider(load_policy(policy)).decide(copy.deepcopy(r))) for r in records]
        assert in_turn == alone + alone[::-1]
    one = Decider(load_policy(NULLS))
    for _ in range(2):
        for record, key, at in ((CLIENT, "E2", 1), (other, "E1", 0)):
            reasons = one.decide(copy.deepcopy(record))["undefined_metrics"]
            assert reasons == {"overdue_share": f"no value for exposure {key}: dpd (missing input at exposures[{at}]"
                                                ".days_past_due)"}


def test_a_memo_gives_the_answers_of_walks_without_one() -> None:
    """Each exposure's and the debtor's answer is the same with the memo shared by all of them as without."""
    decider = Decider(load_policy(NULLS))
    part = decider.policy.scoped
    assert part is not None
    _, day, _, elements, _ = decider.read_record(copy.deepcopy(CLIENT))
    inputs = decider.read(copy.deepcopy(CLIENT))[2]
    decider.grade_exposures(inputs, decider.policy.params_for(None), day, elements)
    asked = [(m.expr.inner_refs, elements, None) for m in decider.policy.metrics if m.expr.inner_refs]
    asked += [(f.expr.inner_refs, e, part.graded) for f in part.floors if f.expr.inner_refs
              for e in elements[part.graded]]
    assert asked and any(missing_inside(part, names, where, scope) for names, where, scope in asked)
    memo: dict[Any, dict[str, str]] = {}
    for _ in range(2):  # the second round is answered from the memo
        for names, where, scope in asked:
            assert missing_inside(part, names, where, scope, memo) == missing_inside(part, names, where, scope)


def test_a_date_is_written_as_its_iso_text_even_once_the_kept_ones_are_forgotten(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluate, "_ISO", {})
    monkeypatch.setattr(evaluate, "_ISO_MAX", 3)
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=k) for k in range(10)]
    for _ in range(2):
        assert [evaluate._jsonable(d) for d in days] == [d.isoformat() for d in days]
    assert len(evaluate._ISO) <= 3
    moment = dt.datetime(2020, 1, 1, 12, 30)  # a datetime is a date too, written with its time, never kept
    assert evaluate._jsonable(moment) == moment.isoformat() and moment not in evaluate._ISO
    assert evaluate._jsonable([days[0], None]) == [days[0].isoformat(), None]


def test_a_walk_enters_no_scope_for_names_no_element_can_lack(decider_2: Decider) -> None:
    """The event dates read the events' kind and date, both required: a record lacking one is refused, so the walk
    for them plans no scope; an optional name (an exposure's accrued interest) is still looked for."""
    from policy_engine.decide.missing import _plans, _reach

    part = decider_2.policy.scoped
    assert part is not None
    reach = _reach(part)
    assert _plans(reach, part, ("event_date", "event_kind"), None) == ()
    debtor = json.loads(DEBTORS[0].read_text("utf-8"))
    _, _, _, elements, _ = decider_2.read_record(copy.deepcopy(debtor))
    assert missing_inside(part, ("event_date", "event_kind"), elements) == {}
    steps = _plans(reach, part, ("accrued_interest",), None)
    assert [(key, here) for key, _, here, _ in steps] == [("exposure", (("accrued_interest", "accrued_interest",
                                                                         False),))]
    del debtor["exposures"][0]["accrued_interest"]
    _, _, _, elements, _ = decider_2.read_record(debtor)
    assert list(missing_inside(part, ("accrued_interest",), elements)) == [
        f"exposure {debtor['exposures'][0]['exposure_id']}: accrued_interest"]


@pytest.mark.parametrize(("ns", "text"), [
    (1_700_000_000_000_000_000, "2023-11-14T22:13:20.000Z"),
    (1_700_000_000_999_999_999, "2023-11-14T22:13:20.999Z"),  # the millisecond is cut, not rounded
    (1_700_000_001_000_000_000, "2023-11-14T22:13:21.000Z"),  # the next second: its text formatted anew
    (1_700_000_001_007_000_000, "2023-11-14T22:13:21.007Z"),
    (1_704_067_199_999_000_000, "2023-12-31T23:59:59.999Z"),
    (1_704_067_200_000_000_000, "2024-01-01T00:00:00.000Z"),
])
def test_the_time_stamp_is_utc_to_the_millisecond_whatever_came_before(monkeypatch: pytest.MonkeyPatch, ns: int,
                                                                        text: str) -> None:
    clock = evaluate._Clock()
    for before in (None, ns - 1_000_000, ns - 1_000_000_000, ns + 86_400_000_000_000):  # the second's text kept
        if before is not None:
            monkeypatch.setattr(evaluate.time, "time_ns", lambda b=before: b)
            clock.now()
        monkeypatch.setattr(evaluate.time, "time_ns", lambda: ns)
        assert clock.now() == text
        assert clock.now() == text  # the same millisecond again
