"""Actions that name the exposures they concern, and the conflicts the engine enforces.

``for_exposures`` is a condition of the graded scope read with each exposure's final grade; the action
fires when its own condition holds and it concerns at least one exposure, and the decision lists
them (``exposures: [E0]``). The row path (``ScopedDecider``) and the vector path (``run_scoped_batch``)
agree on every field. In a policy with scopes the catalogue's conflicts (early repayment beside
extend_term or a restructuring with a grace period) are exclusions the engine adds: the more urgent
action is kept and the explanation says why the other was not.
"""

from __future__ import annotations

import copy
import json
import random
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text

from ..conftest import DATA
from ..vector.test_scoped_agreement import POLICIES, _agree, _debtor

POLICY = POLICIES["policy-aggregations"]


def _exposure(eid: str, dpd: int, secured: bool | None = None, collateral: float | None = None) -> dict[str, Any]:
    e: dict[str, Any] = {"exposure_id": eid, "balance": 100, "days_past_due": dpd}
    if secured is not None:
        e["secured"] = secured
    if collateral is not None:
        e["collateral_value"] = collateral
    return e


def _debtor_of(*exposures: dict[str, Any]) -> dict[str, Any]:
    return {"client_id": "A", "as_of": "2025-09-30", "industry": "manufacturing", "exposures": list(exposures)}


def _action(record: dict[str, Any], aid: str) -> dict[str, Any] | None:
    return next((a for a in record["actions"] if a["id"] == aid), None)


def test_only_the_exposures_the_condition_holds_for_are_named_and_both_paths_agree(tmp_path: Path) -> None:
    debtor = _debtor_of(_exposure("E0", 95, True, 50), _exposure("E1", 95, False, 50), _exposure("E2", 95, True, 0))
    record = Decider(POLICY).decide(debtor)
    enforce = _action(record, "enforce")
    assert enforce is not None and enforce["exposures"] == ["E0"]
    grade = record["classification"]["label"]["en"].lower()
    assert enforce["reason"]["en"] == f"Graded {grade}: enforce the collateral"  # {triggers}: the grade it reached
    assert "exposures" not in (_action(record, "grace") or {})  # an action of the whole debtor names none
    _agree(POLICY, [debtor], tmp_path)


def test_an_action_that_concerns_no_exposure_is_not_recommended() -> None:
    record = Decider(POLICY).decide(_debtor_of(_exposure("E0", 95, False, 50), _exposure("E1", 0, False, 50)))
    assert record["classification"]["nonperforming"]  # the action's own condition holds
    assert _action(record, "enforce") is None
    assert "enforce" not in [u["rule"] for u in record["undetermined"]]


def test_an_exposure_whose_condition_has_no_value_leaves_the_action_undetermined_naming_it() -> None:
    record = Decider(POLICY).decide(_debtor_of(_exposure("E0", 95, True), _exposure("E1", 95, False, 50)))
    assert _action(record, "enforce") is None
    [entry] = [u for u in record["undetermined"] if u["rule"] == "enforce"]
    assert "exposure E0: collateral" in entry["missing"]


def test_early_repayment_is_never_recommended_beside_a_grace_period_in_a_policy_with_scopes(tmp_path: Path) -> None:
    late = [{"due_date": "2025-01-31", "paid_date": "2025-02-20"}]
    debtor = _debtor_of({**_exposure("E0", 95), "schedule": late})
    record = Decider(POLICY).decide(debtor)
    assert _action(record, "grace") is not None and _action(record, "demand") is None
    assert {"id": "demand", "action": "early_repayment", "excluded_by": "grace"} in record["suppressed_actions"]
    assert "demand" in POLICY.actions[[a.id for a in POLICY.actions].index("grace")].excludes  # both paths read it
    text = explain(record, POLICY, "en")
    assert "(Demand early repayment (demand) not recommended beside Restructure into instalments (grace): " \
           "demanding early repayment while granting a grace period contradicts itself)" in text  # by their names
    assert "给予宽限期的同时要求提前还款自相矛盾" in explain(record, POLICY, "zh")
    _agree(POLICY, [debtor], tmp_path)


def test_drawn_debtors_name_exposures_suppress_conflicts_and_leave_gaps_and_both_paths_agree(tmp_path: Path) -> None:
    rnd = random.Random(15)
    debtors = [_debtor(rnd, i) for i in range(300)]
    records = [Decider(POLICY).decide(d) for d in debtors]
    named = [len(a["exposures"]) for r in records for a in r["actions"] if a["id"] == "enforce"]
    suppressed = [s for r in records for s in r["suppressed_actions"] if s["id"] == "demand"]
    gaps = [u for r in records for u in r["undetermined"] if u["rule"] == "enforce"]
    assert named and suppressed and gaps  # the features the agreement below covers do occur
    assert min(named) >= 1 and max(named) > 1
    # a warning naming its exposures (late_unsecured), undetermined, or naming some and not knowing others
    warned = [w for r in records for w in r["warnings"] if w["id"] == "late_unsecured"]
    assert warned and any("exposures_not_known" in w for w in warned)
    assert any(u["rule"] == "late_unsecured" for r in records for u in r["undetermined"])
    _agree(POLICY, debtors, tmp_path)  # the records, and the exposure table's warnings and actions columns


FOR_EXPOSURES_ERRORS = [
    # (policy, the action's for_exposures, the error code, its hint or message fragment)
    ("mini-policy.yaml", "dpd > 90", "bad-scope", "needs a graded scope"),
    ("scopes/policy-multi-exposure.yaml", "balance + 1", "type-mismatch", ""),
    ("scopes/policy-multi-exposure.yaml", "balanse > 0", "unknown-name", ""),
    ("scopes/policy-multi-exposure.yaml", "due_date > as_of", "scope-name", ""),
]


@pytest.mark.parametrize(("base", "condition", "code", "fragment"), FOR_EXPOSURES_ERRORS)
def test_for_exposures_mistakes_are_located(base: str, condition: str, code: str, fragment: str) -> None:
    text = (DATA / base).read_text(encoding="utf-8")
    head, _, tail = text.partition("actions:\n")
    lines = tail.split("\n")
    at = next(i for i, line in enumerate(lines) if line.strip().startswith("when:"))
    lines.insert(at + 1, f"    for_exposures: \"{condition}\"")
    diags, policy = check_document(load_yaml_text(head + "actions:\n" + "\n".join(lines), "p.yaml"))
    assert policy is None
    [d] = [d for d in diags if d.severity == "error"]
    assert d.code == code and d.path is not None and d.path.endswith("for_exposures") and d.line is not None
    assert fragment in d.message


def test_triggers_is_text_and_takes_no_format() -> None:
    text = (DATA / "scopes" / "policy-multi-exposure.yaml").read_text(encoding="utf-8")
    text = text.replace("reason: {zh: 开会, en: Meet}", "reason: {zh: \"{triggers:.2f}\", en: Meet}")
    diags, policy = check_document(load_yaml_text(text, "p.yaml"))
    assert policy is None and [d.code for d in diags if d.severity == "error"] == ["bad-template"]


def test_the_reference_policy_2_actions_agree_row_and_vector_on_every_sample_and_its_variants(tmp_path: Path) -> None:
    from policy_engine.policy.registry import load_policy

    from ..conftest import REFERENCE

    policy = load_policy(REFERENCE / "policy-2.0.0.yaml")
    folder = REFERENCE / "samples" / "debtors"
    debtors = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]
    doubtful = next(d for d in debtors if d["client_id"].startswith("07-"))
    substandard = next(d for d in debtors if d["client_id"].startswith("06-"))
    variants = [copy.deepcopy(doubtful), copy.deepcopy(substandard), copy.deepcopy(doubtful)]
    variants[0]["exposures"][0]["collateral"]["type"] = "guarantee"  # call the guarantee
    variants[1]["statements"][4]["cfads"] = -5_000_000  # restructure, and the early repayment it excludes
    variants[1]["exposures"][1]["collateral"].update(value_at_origination=100_000_000, value=50_000_000)
    variants[2]["events"] = [{"kind": "bankruptcy_filing", "date": "2026-08-01"}]  # the claim, not the lawsuit
    for k, v in enumerate(variants):
        v["client_id"] = f"variant-{k}"
    records = [Decider(policy).decide(copy.deepcopy(d)) for d in variants]
    assert [[a["id"] for a in r["actions"]][:2] for r in records[:2]] == [
        ["claim_guarantor", "legal_recovery"], ["reduce_exposure", "restructure_instalments"]]
    assert [s["id"] for s in records[1]["suppressed_actions"]] == ["early_repayment"]
    assert {"emergency_plan", "lodge_claims"} <= {a["id"] for a in records[2]["actions"]}
    assert [s["id"] for s in records[2]["suppressed_actions"]] == ["legal_recovery"]
    _agree(policy, [*debtors, *variants], tmp_path)
