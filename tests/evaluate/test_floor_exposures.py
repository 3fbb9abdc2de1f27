"""Debtor floors that name the exposures they apply back to (``for_exposures``).

A rule of the whole debtor that holds back some exposures only (Art. 13(三): no upgrade while another asset of the
debtor is credit-impaired) raises the exposures it names and no other; the decision lists them under the floor,
each named exposure lists the floor and is decided by it where it set the grade, one whose condition has no value
is undetermined by it, and the explanation, the trace and the exposures table say the same. Drawn debtors hold
the row and vector paths to it (test_scoped_agreement.py, policy-named-floors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.compiler import check_document
from policy_engine.policy.lint import lint
from policy_engine.policy.loader import load_yaml_text

from ..vector.test_scoped_agreement import POLICIES, SCOPES, _agree

POLICY = POLICIES["policy-named-floors"]  # late_beside_overdue: dpd > 90 or collateral < 1 -> doubtful: late, unsecured
LATE = [{"due_date": "2025-01-31", "paid_date": "2025-02-20"}]


def _debtor_of(*exposures: dict[str, Any]) -> dict[str, Any]:
    return {"client_id": "A", "as_of": "2025-09-30", "industry": "manufacturing", "exposures": list(exposures)}


def _exposure(eid: str, dpd: int = 0, **facts: Any) -> dict[str, Any]:
    return {"exposure_id": eid, "balance": 100, "days_past_due": dpd, "collateral_value": 100, **facts}


def _floor(record: dict[str, Any], rid: str) -> dict[str, Any] | None:
    return next((f for f in record["classification"]["floors"] if f["id"] == rid), None)


def test_a_debtor_floor_raises_only_the_exposures_it_names(tmp_path: Path) -> None:
    debtor = _debtor_of(_exposure("E0", dpd=91, secured=True),  # what makes the debtor's condition hold
                        _exposure("E1", secured=False, schedule=LATE),  # late and unsecured: named
                        _exposure("E2", secured=True, schedule=LATE),  # late but secured
                        _exposure("E3", secured=False))  # unsecured, never late
    record = Decider(POLICY).decide(debtor)
    floor = _floor(record, "late_beside_overdue")
    assert floor is not None and floor["exposures"] == ["E1"] and "exposures_not_known" not in floor
    by_id = {x["exposure_id"]: x for x in record["exposures"]}
    assert (by_id["E1"]["grade"], by_id["E1"]["own_grade"], by_id["E1"]["decided_by"]) == \
        ("doubtful", "normal", "late_beside_overdue")
    assert "late_beside_overdue" in [f["id"] for f in by_id["E1"]["floors"]]
    for other in ("E2", "E3"):  # the debtor's condition held, but the floor is not theirs
        assert "late_beside_overdue" not in [f["id"] for f in by_id[other]["floors"]]
        assert by_id[other]["grade"] != "doubtful"
    # the debtor's grade is the worst exposure's, named after the exposure the floor raised
    assert record["classification"]["grade"] == "doubtful"
    assert (record["classification"]["decided_by"], record["classification"]["decided_by_exposure"]) == \
        ("late_beside_overdue", "E1")
    assert "late_beside_overdue (debtor rule, for exposure E1): at least" in explain(record, POLICY, "en")
    assert "late_beside_overdue（债务人规则，适用于债项 E1）" in explain(record, POLICY, "zh")
    _agree(POLICY, [debtor], tmp_path)


def test_it_does_not_fire_when_it_names_no_exposure(tmp_path: Path) -> None:
    debtor = _debtor_of(_exposure("E0", dpd=91, secured=True), _exposure("E1", secured=True, schedule=LATE))
    record = Decider(POLICY).decide(debtor)
    assert _floor(record, "late_beside_overdue") is None
    assert not [u for u in record["undetermined"] if u["rule"] == "late_beside_overdue"]
    _agree(POLICY, [debtor], tmp_path)


def test_an_exposure_it_cannot_tell_about_is_listed_apart_and_undetermined_by_name(tmp_path: Path) -> None:
    debtor = _debtor_of(_exposure("E0", dpd=91, secured=True),
                        _exposure("E1", secured=False, schedule=LATE),
                        _exposure("E2", schedule=LATE))  # 'secured' unknown
    record = Decider(POLICY).decide(debtor)
    floor = _floor(record, "late_beside_overdue")
    assert floor is not None and (floor["exposures"], floor["exposures_not_known"]) == (["E1"], ["E2"])
    entry = next(u for u in record["undetermined"] if u["rule"] == "late_beside_overdue")
    assert entry["exposure"] == "E2" and entry["missing"] == ["secured"]
    assert entry["reasons"]["secured"] == "missing input: exposures[2].secured"
    assert "late_beside_overdue (debtor rule, for exposure E1; not known (a fact missing): E2)" in \
        explain(record, POLICY, "en")
    _agree(POLICY, [debtor], tmp_path)


def test_with_no_exposure_named_and_one_unknown_the_debtor_floor_is_undetermined(tmp_path: Path) -> None:
    debtor = _debtor_of(_exposure("E0", dpd=91, secured=True), _exposure("E1", schedule=LATE))
    record = Decider(POLICY).decide(debtor)
    assert _floor(record, "late_beside_overdue") is None
    debtors, e1 = [u for u in record["undetermined"] if u["rule"] == "late_beside_overdue"]
    assert "exposure" not in debtors and "exposure E1: secured" in debtors["missing"]
    assert e1["exposure"] == "E1"  # the exposure it may name is told so, E0 (ruled out) is not
    _agree(POLICY, [debtor], tmp_path)


def test_when_its_own_condition_has_no_value_the_exposures_it_may_name_are_undetermined(tmp_path: Path) -> None:
    # No exposure over 90 days, but E0's collateral unknown: whether the debtor's condition holds is not known.
    debtor = _debtor_of({"exposure_id": "E0", "balance": 100, "days_past_due": 0, "secured": True},
                        _exposure("E1", secured=False, schedule=LATE),  # it would be named
                        _exposure("E2", secured=True, schedule=LATE))  # it would not
    record = Decider(POLICY).decide(debtor)
    by_id = {x["exposure_id"]: x for x in record["exposures"]}
    assert _floor(record, "late_beside_overdue") is None and by_id["E1"]["grade"] != "doubtful"
    entries = [u for u in record["undetermined"] if u["rule"] == "late_beside_overdue"]
    assert [u.get("exposure") for u in entries] == [None, "E1"]
    assert entries[1]["missing"] == entries[0]["missing"] == ["exposure E0: collateral"]
    _agree(POLICY, [debtor], tmp_path)


def test_the_trace_shows_the_condition_for_each_exposure() -> None:
    debtor = _debtor_of(_exposure("E0", dpd=91, secured=True), _exposure("E1", secured=False, schedule=LATE))
    trace = Decider(POLICY).decide(debtor, trace=True)["trace"]
    steps = [s for s in trace if s["rule"] == "late_beside_overdue"]
    assert steps[0]["expr"] == "any_of(exposure, dpd > 90 or collateral < 1)" and steps[0]["for_exposures"] == \
        "late >= 1 and not secured"
    assert [(s["exposure"], s["result"]) for s in steps[1:]] == [("E0", False), ("E1", True)]


def test_lint_finds_a_floor_that_names_no_exposure_at_its_for_exposures() -> None:
    text = (SCOPES / "policy-aggregations.yaml").read_text(encoding="utf-8")
    at = text.index("warnings:\n")
    doc = load_yaml_text(text[:at] + '    - {id: never_named, when: "any_of(exposure, dpd > 90)", for_exposures: '
                         '"dpd < 0", floor: doubtful, source: test}\n' + text[at:], "named.yaml")
    diags, policy = check_document(doc)
    assert policy is not None, [d.render() for d in diags]
    found = [d for d in lint(policy, doc) if d.rule == "never_named"]
    assert [(d.code, d.line) for d in found] == [("condition-never-true", text[:at].count("\n") + 1)]
    assert found[0].message.endswith("it concerns no exposure")
