"""Deciding a debtor with several exposures (a policy with scopes) on the row path.

The vector path refuses such a policy (batch exits 2) until it has the long-table form, so the
agreement property here is between the generated row code and a hand-written reference of the
same policy over drawn debtors (0-5 exposures, null facts included).

Each exposure gets its own grade from its own floors, the debtor's floors (the 10% contagion rule,
computed from those grades) apply back to every exposure, and the debtor's grade is the worst.
A hostile record is refused with the place named, never decided.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.decide.evaluate import Decider, ScopedDecider
from policy_engine.diagnostics import InputError
from policy_engine.policy.registry import load_policy
from policy_engine.review.tester import run_tests

from ..conftest import DATA, ROOT

SCOPES = DATA / "scopes"
CLIENT = json.loads((SCOPES / "clients" / "three-exposures.json").read_text("utf-8"))
DECISION_SCHEMA = json.loads((ROOT / "schemas" / "decision.schema.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def decider() -> Decider:
    return Decider(load_policy(SCOPES / "policy-multi-exposure.yaml"))


def _client(**changes: Any) -> dict[str, Any]:
    c = copy.deepcopy(CLIENT)
    for i, dpd in changes.get("dpd", {}).items():
        c["exposures"][i]["days_past_due"] = dpd
    return c


def test_a_policy_with_scopes_gets_the_scoped_decider(decider: Decider) -> None:
    assert isinstance(decider, ScopedDecider)


def test_the_ten_percent_rule_reads_the_engines_own_exposure_grades(decider: Decider) -> None:
    record = decider.decide(_client(dpd={1: 95}))
    by_id = {x["exposure_id"]: x for x in record["exposures"]}
    assert record["metrics"]["nonperforming_share"] == pytest.approx(0.15)
    assert [by_id[e]["own_grade"] for e in ("E1", "E2", "E3")] == ["normal", "substandard", "normal"]
    assert [by_id[e]["grade"] for e in ("E1", "E2", "E3")] == ["substandard"] * 3
    assert by_id["E1"]["decided_by"] == "contagion_10pct" and by_id["E2"]["decided_by"] == "overdue_90"
    assert record["classification"]["grade"] == "substandard"
    assert "worst" in record["classification"]["grade_of"]
    jsonschema.validate(record, DECISION_SCHEMA)


def test_below_the_share_the_bad_exposure_stays_alone_and_names_itself(decider: Decider) -> None:
    record = decider.decide(_client(dpd={2: 120}))
    assert [x["grade"] for x in record["exposures"]] == ["normal", "normal", "substandard"]
    cls = record["classification"]
    assert (cls["grade"], cls["decided_by"], cls["decided_by_exposure"]) == ("substandard", "overdue_90", "E3")
    assert cls["floors"] == []  # no debtor floor fired
    jsonschema.validate(record, DECISION_SCHEMA)


def test_payments_are_read_in_due_date_order_whatever_the_record_order(decider: Decider) -> None:
    record = decider.decide(_client())
    e1 = record["exposures"][0]
    assert e1["metrics"]["first_late_due"] == "2025-01-31"  # listed second in the record, due first
    assert e1["metrics"]["late_payments"] == 1


def test_the_same_debtor_gives_the_same_record(decider: Decider) -> None:
    a, b = decider.decide(_client(dpd={0: 61})), decider.decide(_client(dpd={0: 61}))
    for r in (a, b):
        r.pop("decision_id"), r.pop("evaluated_at")
    assert a == b


def test_the_policy_tests_of_the_multi_exposure_policy_pass() -> None:
    result = run_tests([SCOPES])
    assert result.failed == 0 and result.passed == 10, [c.failures for c in result.results]


def test_a_wrong_exposure_expectation_fails_with_the_exposure_named(tmp_path: Any) -> None:
    from policy_engine.review.tester import check_expectations

    record = Decider(load_policy(SCOPES / "policy-multi-exposure.yaml")).decide(_client(dpd={1: 95}))
    lines = check_expectations({"exposures": {"E1": {"grade": "normal", "floors_include": ["overdue_90"]},
                                              "E9": {"grade": "normal"}}}, record)
    assert any(line.startswith("exposures.E1.grade: expected 'normal', got 'substandard'") for line in lines)
    assert any(line.startswith("exposures.E1.floors_include: overdue_90") for line in lines)
    assert any(line.startswith("exposures.E9: no such exposure") for line in lines)


HOSTILE = [
    ("too many exposures", lambda c: c.update(exposures=[{**c["exposures"][1], "exposure_id": f"X{i}"}
                                                         for i in range(6)]), "too-large", "exposures"),
    ("duplicate exposure ids", lambda c: c["exposures"][2].update(exposure_id="E1"), "duplicate-key",
     "exposures[2].exposure_id"),
    ("an exposure without its key", lambda c: c["exposures"][0].pop("exposure_id"), "missing-field",
     "exposures[0].exposure_id"),
    ("a key that is not text", lambda c: c["exposures"][0].update(exposure_id=7), "bad-field",
     "exposures[0].exposure_id"),
    ("exposures that are not a list", lambda c: c.update(exposures={"E1": {}}), "wrong-type", "exposures"),
    ("an exposure that is not an object", lambda c: c["exposures"].append("E4"), "wrong-type", "exposures[3]"),
    ("a required field missing in an exposure", lambda c: c["exposures"][1].pop("balance"), "missing-field",
     "exposures[1].balance"),
    ("a negative balance", lambda c: c["exposures"][1].update(balance=-5), "bad-field", "exposures[1].balance"),
    ("a payment date that is not a date", lambda c: c["exposures"][0]["schedule"][1].update(due_date="soon"),
     "bad-field", "exposures[0].schedule[1].due_date"),
    ("too many payments", lambda c: c["exposures"][0].update(schedule=[{"due_date": "2025-01-01"}] * 25),
     "too-large", "exposures[0].schedule"),
    ("an event kind off the list", lambda c: c["events"][0].update(kind="rumour"), "bad-field", "events[0].kind"),
]


@pytest.mark.parametrize(("name", "spoil", "code", "path"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_record_is_refused_at_the_place(decider: Decider, name: str, spoil: Any, code: str,
                                                  path: str) -> None:
    client = copy.deepcopy(CLIENT)
    spoil(client)
    with pytest.raises(InputError) as info:
        decider.decide(client, file="debtor.json")
    hits = [d for d in info.value.diagnostics if d.code == code and d.path == path]
    assert hits, [d.render() for d in info.value.diagnostics]
    assert hits[0].file == "debtor.json"
    # once: a key the element's inputs read too (exposure_id) is not reported again by the key check
    assert len([d for d in info.value.diagnostics if d.path == path]) == 1, [d.render() for d in info.value.diagnostics]
    if code == "too-large":  # refused whole, unread: its elements' own problems would show only once it fits
        assert "the elements were not read one by one" in (hits[0].hint or "")


def test_debtor_and_exposure_problems_are_reported_together(decider: Decider) -> None:
    client = copy.deepcopy(CLIENT)
    del client["industry"]
    client["exposures"][1]["days_past_due"] = "ninety"
    with pytest.raises(InputError) as info:
        decider.decide(client)
    assert {d.path for d in info.value.diagnostics} == {"industry", "exposures[1].days_past_due"}


def test_no_exposures_decides_the_debtor_from_its_own_floors(decider: Decider) -> None:
    client = copy.deepcopy(CLIENT)
    client["exposures"] = []
    client["events"] = [{"kind": "bankruptcy_filing", "date": "2025-01-02"}]
    record = decider.decide(client)
    assert record["exposures"] == [] and record["classification"]["grade"] == "doubtful"
    assert record["metrics"]["worst_own"] is None and record["metrics"]["nonperforming_share"] is None


# Null rules of the aggregations (three-valued, like or / and): a debtor metric over the exposures'
# own grades and facts; dpd null stands for an element whose condition is null.
AGGREGATION_NULLS = [
    ("any_of(exposure, dpd > 90)", [None, 100], True),  # a true element settles it
    ("any_of(exposure, dpd > 90)", [None, 0], None),  # none true, one unknown
    ("any_of(exposure, dpd > 90)", [0, 0], False),
    ("all_of(exposure, dpd < 90)", [None, 100], False),  # a false element settles it
    ("all_of(exposure, dpd < 90)", [None, 0], None),
    ("all_of(exposure, dpd < 90)", [], True),
    ("count_where(exposure, dpd > 90)", [None, 100], None),  # never a smaller count
    ("count_where(exposure, dpd > 90)", [100, 0, 95], 2.0),
    ("sum_where(exposure, balance, dpd > 90)", [100, 0], 10.0),
    ("sum_where(exposure, balance, dpd > 90)", [None, 0], None),
    ("sum_where(exposure, balance, dpd > 90)", [], 0.0),
    ("min_of(exposure, dpd)", [], None),
    ("min_of(exposure, dpd)", [5, None], None),
    ("max_of(exposure, dpd)", [5, 9], 9.0),
    ("share_where(exposure, balance, dpd > 90)", [100, 0, 0], pytest.approx(1 / 3)),
    ("share_where(exposure, balance, dpd > 90)", [], None),
]


@pytest.mark.parametrize(("expr", "dpds", "want"), AGGREGATION_NULLS,
                         ids=[f"{e} over {d}" for e, d, _ in AGGREGATION_NULLS])
def test_aggregation_null_rules(tmp_path: Any, expr: str, dpds: list[Any], want: Any) -> None:
    text = f"""
id: agg
version: 1.0.0
title: {{zh: 聚合, en: Aggregation}}
status: active
owner: Tests
effective_from: 2024-01-01
changelog: [{{version: 1.0.0, date: 2024-01-01, changes: [first]}}]
scopes:
  exposure: {{from: "exposures[*]", key: id}}
inputs:
  dpd: {{scope: exposure, from: dpd, type: integer, min: 0}}
  balance: {{scope: exposure, from: balance, type: number, required: true}}
metrics:
  x: {{expr: "{expr}"}}
classification:
  scale: [{{id: good, zh: 好, en: Good}}, {{id: bad, zh: 差, en: Bad}}]
  rules: [{{id: late, scope: exposure, when: dpd > 90, floor: bad, source: test}}]
"""
    path = tmp_path / "policy-agg.yaml"
    path.write_text(text, "utf-8")
    client = {"client_id": "c", "as_of": "2025-01-01",
              "exposures": [{"id": f"E{i}", "dpd": d, "balance": 10.0} for i, d in enumerate(dpds)]}
    record = Decider(load_policy(path)).decide(client)
    assert record["metrics"]["x"] == want


AGG_POLICY = """
id: agg
version: 1.0.0
title: {zh: 聚合, en: Aggregation}
status: active
owner: Tests
effective_from: 2024-01-01
changelog: [{version: 1.0.0, date: 2024-01-01, changes: [first]}]
scopes:
  exposure: {from: "exposures[*]", key: id}
inputs:
  dpd: {scope: exposure, from: dpd, type: integer, min: 0}
  balance: {scope: exposure, from: balance, type: number, required: true}
metrics:
  share_bad: {expr: "share_where(exposure, balance, grade_at_least('substandard'))"}
  n_late: {expr: "count_where(exposure, dpd > 30)"}
  any_late: {expr: "any_of(exposure, dpd > 30)"}
  all_current: {expr: "all_of(exposure, dpd == 0)"}
  late_balance: {expr: "sum_where(exposure, balance, dpd > 30)"}
  most_late: {expr: "max_of(exposure, dpd)"}
  worst: {expr: "worst_grade(exposure)", after: classification}
classification:
  scale:
    - {id: normal, zh: 正常, en: Normal}
    - {id: special_mention, zh: 关注, en: Special mention}
    - {id: substandard, zh: 次级, en: Substandard}
  rules:
    - {id: late_30, scope: exposure, when: dpd > 30, floor: special_mention, source: test}
    - {id: late_90, scope: exposure, when: dpd > 90, floor: substandard, source: test}
    - {id: contagion, when: share_bad > 0.1, floor: substandard, source: test}
"""


@pytest.fixture(scope="module")
def agg_decider(tmp_path_factory: Any) -> Decider:
    path = tmp_path_factory.mktemp("agg") / "policy-agg.yaml"
    path.write_text(AGG_POLICY, "utf-8")
    return Decider(load_policy(path))


def test_an_undetermined_exposure_floor_names_its_exposure(agg_decider: Decider) -> None:
    record = agg_decider.decide({"client_id": "c", "as_of": "2025-01-01",
                                 "exposures": [{"id": "A", "balance": 1.0}, {"id": "B", "balance": 1.0, "dpd": 0}]})
    undetermined = [(u["rule"], u.get("exposure")) for u in record["undetermined"]]
    assert ("late_30", "A") in undetermined and ("late_90", "A") in undetermined
    assert all(u[1] != "B" for u in undetermined)
    jsonschema.validate(record, DECISION_SCHEMA)


def _reference(exposures: list[dict[str, Any]]) -> dict[str, Any]:
    """The same debtor decided by hand, straight from the policy text above (the second path)."""
    def own(d: Any) -> int | None:
        if d is None:
            return 0  # both floors undetermined: neither fires
        return 2 if d > 90 else 1 if d > 30 else 0

    ranks = [own(e["dpd"]) for e in exposures]
    total = sum(e["balance"] for e in exposures)
    share = sum(e["balance"] for e, r in zip(exposures, ranks, strict=True) if r >= 2) / total if total > 0 else None
    floor = 2 if share is not None and share > 0.1 else 0
    final = [max(r, floor) for r in ranks]
    dpds = [e["dpd"] for e in exposures]
    late = [None if d is None else d > 30 for d in dpds]
    grades = ["normal", "special_mention", "substandard"]
    return {
        "share_bad": share,
        "n_late": None if None in late else float(late.count(True)),
        "any_late": True if True in late else None if None in late else False,
        "all_current": False if any(d is not None and d != 0 for d in dpds) else None if None in dpds else True,
        "late_balance": None if None in late else sum(e["balance"] for e, x in zip(exposures, late, strict=True) if x),
        "most_late": None if not dpds or None in dpds else float(max(dpds)),
        "worst": grades[max(final)] if final else None,
        "grades": [grades[r] for r in final],
        "grade": grades[max([floor, *final])],
    }


EXPOSURE = st.fixed_dictionaries({"dpd": st.one_of(st.none(), st.integers(0, 200)),
                                  "balance": st.sampled_from([0.0, 1.0, 5.0, 10.0, 250.0])})


@settings(max_examples=200, deadline=None)
@given(exposures=st.lists(EXPOSURE, min_size=0, max_size=5))
def test_generated_code_and_a_hand_written_reference_agree(agg_decider: Decider,
                                                           exposures: list[dict[str, Any]]) -> None:
    client = {"client_id": "c", "as_of": "2025-01-01",
              "exposures": [{"id": f"E{i}", **{k: v for k, v in e.items() if v is not None}}
                            for i, e in enumerate(exposures)]}
    record = agg_decider.decide(client)
    want = _reference(exposures)
    for name in ("n_late", "any_late", "all_current", "late_balance", "most_late", "worst"):
        assert record["metrics"][name] == want[name], name
    assert record["metrics"]["share_bad"] == pytest.approx(want["share_bad"]) if want["share_bad"] is not None \
        else record["metrics"]["share_bad"] is None
    assert [x["grade"] for x in record["exposures"]] == want["grades"]
    assert record["classification"]["grade"] == want["grade"]
