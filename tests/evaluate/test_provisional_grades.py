"""An exposure's grade that an undetermined floor could make worse (``classification.provisional_grades``).

With ``settled`` (the default) a rule reads the grade the exposure's fired floors give; with ``unknown``,
``grade_at_least('g')`` of that exposure is null where only an undetermined floor reaches ``g``: inside an
aggregation over the exposures, in the exposures' metrics after classification and in ``for_exposures``. What reads
it is undetermined and says which exposure's grade is provisional. Drawn debtors hold the row and vector paths to
it (test_scoped_agreement.py, policy-provisional).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain

from ..vector.test_scoped_agreement import POLICIES, _agree

SETTLED, UNKNOWN = POLICIES["policy-named-floors"], POLICIES["policy-provisional"]
# uncovered: dpd > 30 and cover < 0.2 -> doubtful, cover = collateral / balance: undetermined without collateral
UNCOVERED_UNKNOWN = {"exposure_id": "E0", "balance": 100, "days_past_due": 45}
PERFORMING = {"exposure_id": "E1", "balance": 100, "days_past_due": 0, "collateral_value": 100, "secured": True}


def _debtor(*exposures: dict[str, Any]) -> dict[str, Any]:
    return {"client_id": "A", "as_of": "2025-09-30", "industry": "manufacturing", "exposures": list(exposures)}


def _undetermined(record: dict[str, Any], rule: str) -> dict[str, Any] | None:
    return next((u for u in record["undetermined"] if u["rule"] == rule and "exposure" not in u), None)


def test_settled_reads_the_grade_its_fired_floors_give() -> None:
    record = Decider(SETTLED).decide(_debtor(UNCOVERED_UNKNOWN, PERFORMING))
    assert record["metrics"]["np_share"] == 0
    assert _undetermined(record, "contagion") is None
    assert record["exposures"][0]["metrics"]["loss_exposure"] == 0


def test_unknown_leaves_what_reads_a_provisional_grade_undetermined_and_says_why(tmp_path: Path) -> None:
    debtor = _debtor(UNCOVERED_UNKNOWN, PERFORMING)
    record = Decider(UNKNOWN).decide(debtor)
    assert record["metrics"]["np_share"] is None
    why = record["undefined_metrics"]["np_share"]
    assert why == ("reads a provisional grade: exposure E0: grade (provisional, undetermined: uncovered (missing input "
                   "exposures[0].collateral_value))")
    contagion = _undetermined(record, "contagion")
    assert contagion is not None and contagion["missing"] == ["np_share"]
    # after classification: E0 may be doubtful (its own floor); E1 may be substandard (the debtor floor, undetermined,
    # may apply to it) but not doubtful
    by_id = {x["exposure_id"]: x for x in record["exposures"]}
    assert by_id["E0"]["metrics"]["loss_exposure"] is None and by_id["E1"]["metrics"]["loss_exposure"] == 0
    assert record["undefined_metrics"]["doubtful_balance"].startswith(
        "reads a provisional grade: exposure E0: grade (provisional, undetermined: uncovered (missing input")
    en = explain(record, UNKNOWN, "en")
    assert "reads a provisional grade: exposure E0: grade" in en
    # under each exposure, the debtor rule that would apply back to it and could not be decided
    e1 = en.splitlines()[en.splitlines().index("  - E1: Normal (normal), no floor fired") + 1]
    assert e1.startswith("      undetermined (a fact missing: not fired, so the grade may be too good): ")
    assert e1.endswith(": contagion (debtor rule)")  # the test policy describes no rule
    zh = ("读取了暂定的分类：债项 E0 的分类（分类暂定，以下规则无法判断："
          "uncovered（缺少输入：exposures[0].collateral_value））")
    assert zh in explain(record, UNKNOWN, "zh")
    assert "(to fill in: exposures[0].collateral_value)" in en
    _agree(UNKNOWN, [debtor], tmp_path)


def test_a_grade_a_fired_floor_already_reaches_is_known() -> None:
    # E0 is 91 days overdue: substandard by its own fired floor, doubtful only if 'uncovered' held
    record = Decider(UNKNOWN).decide(_debtor({**UNCOVERED_UNKNOWN, "days_past_due": 91}, PERFORMING))
    assert record["metrics"]["np_share"] == 0.5
    assert record["exposures"][0]["metrics"]["loss_exposure"] is None  # doubtful: not known


def test_a_provisional_grade_that_cannot_reach_the_grade_read_is_known() -> None:
    """E0's only undetermined floor (late_three, a payment's date missing) gives special mention: whether it reaches
    substandard is known (no), so the share has its value."""
    late_unknown = {**UNCOVERED_UNKNOWN, "days_past_due": 0, "schedule": [
        {"due_date": "2025-01-31", "paid_date": "2025-02-20"}, {"due_date": "2025-02-28", "paid_date": "2025-03-20"},
        {"due_date": "2025-03-31"}]}
    record = Decider(UNKNOWN).decide(_debtor(late_unknown, PERFORMING))
    assert "late_three" in [u["rule"] for u in record["undetermined"] if u.get("exposure") == "E0"]
    assert record["metrics"]["np_share"] == 0


def test_no_weight_at_all_is_no_share_whatever_the_grades() -> None:
    record = Decider(UNKNOWN).decide(_debtor({**UNCOVERED_UNKNOWN, "balance": 0}, {**PERFORMING, "balance": 0}))
    assert record["undefined_metrics"]["np_share"].startswith("undefined for the figures read (balance)")


@pytest.mark.parametrize("policy", [SETTLED, UNKNOWN], ids=["settled", "unknown"])
def test_with_every_fact_both_read_alike(policy: Any) -> None:
    record = Decider(policy).decide(_debtor({**UNCOVERED_UNKNOWN, "collateral_value": 10}, PERFORMING))
    assert record["metrics"]["np_share"] == 0.5  # E0 doubtful (cover 0.1), E1 normal
    assert record["exposures"][0]["grade"] == "doubtful" and record["exposures"][1]["grade"] == "substandard"
    assert not [u for u in record["undetermined"] if u["rule"] == "contagion"]


def test_only_the_graded_scope_reads_a_three_valued_grade() -> None:
    nullable = {m.name: m.expr.nullable for m in UNKNOWN.metrics}
    assert nullable["np_share"] and nullable["doubtful_balance"]
    assert not {m.name: m.expr.nullable for m in SETTLED.metrics}["doubtful_balance"]
    assert UNKNOWN.scoped is not None and UNKNOWN.scoped.provisional_unknown
    assert SETTLED.scoped is not None and not SETTLED.scoped.provisional_unknown
