"""One rule, one condition (issue 18 item 3): a classification rule with a message sets its floor and warns.

The reference policy writes "overdue" twice, as the floor ``overdue_any`` and as the warning ``overdue``.
Written once (tests/variants.py), every decision must say the same: the same grade, floors and actions,
and the same warning under the rule's id, on the row path and the batch (vector) path. The located
errors are in tests/data/broken_policies (rule-*.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.compiler import CompiledPolicy, compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.portfolio.batch import iter_records, read_table, run_batch
from policy_engine.portfolio.synthetic import generate_clients
from policy_engine.review.diffing import diff_policies
from policy_engine.review.tester import apply_patch

from ..conftest import SAMPLES, sample
from ..variants import one_rule_text

VOLATILE = ("decision_id", "evaluated_at", "policy")


@pytest.fixture(scope="module")
def one_rule() -> CompiledPolicy:
    return compile_document(load_yaml_text(one_rule_text(), "one-rule.yaml"))


@pytest.fixture(scope="module")
def clients() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES] + list(generate_clients(1500, seed=3))


def _as_two_rules(record: dict[str, Any]) -> dict[str, Any]:
    """A decision of the one-rule form, as the two-rule form words it: the warning's id was 'overdue',
    and its undetermined entry was listed twice (as the floor and as the warning)."""
    out = {k: v for k, v in record.items() if k not in VOLATILE}
    out["warnings"] = sorted(({**w, "id": "overdue"} if w["id"] == "overdue_any" else w for w in record["warnings"]),
                             key=lambda w: w["id"])
    for u in record["undetermined"]:
        if (u["kind"], u["rule"]) == ("classification", "overdue_any"):
            out["undetermined"] = [*record["undetermined"], {**u, "kind": "warning", "rule": "overdue"}]
    out["undetermined"] = sorted(out["undetermined"], key=lambda u: (u["kind"], u["rule"]))
    return out


def _sorted(record: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in VOLATILE}
    out["warnings"] = sorted(record["warnings"], key=lambda w: w["id"])
    out["undetermined"] = sorted(record["undetermined"], key=lambda u: (u["kind"], u["rule"]))
    return out


def test_written_once_it_decides_as_written_twice(one_rule: CompiledPolicy, decider: Decider,
                                                  clients: list[dict[str, Any]]) -> None:
    mine = Decider(one_rule)
    fired = 0
    for client in clients:
        record = mine.decide(client)
        assert _as_two_rules(record) == _sorted(decider.decide(client)), client["client_id"]
        fired += "overdue_any" in [w["id"] for w in record["warnings"]]
    assert 0 < fired < len(clients)


def test_the_warning_carries_the_rules_id_message_and_evidence(one_rule: CompiledPolicy) -> None:
    record = Decider(one_rule).decide(sample("06"), trace=True)
    [warning] = [w for w in record["warnings"] if w["id"] == "overdue_any"]
    assert warning == {"id": "overdue_any", "severity": "high", "category": "repayment",
                       "message": {"zh": "本金或利息已逾期30天", "en": "Principal or interest overdue for 30 days"},
                       "evidence": {"overdue": True}}
    assert "overdue_any" in [f["id"] for f in record["classification"]["floors"]]
    # the trace shows the rule once, as the floor it is
    assert [s["stage"] for s in record["trace"] if s["rule"] == "overdue_any"] == ["classification"]


def test_explain_shows_the_rule_once_and_its_message_under_warnings(one_rule: CompiledPolicy) -> None:
    text = explain(Decider(one_rule).decide(sample("06"), trace=True), one_rule, "en")
    head, rest = text.split("Warnings (")
    warnings, trace = rest.split("Recommended actions")[0], rest.split("Trace (")[1]
    assert head.count("  - overdue_any: at least Special mention.") == 1  # the fired floors
    assert "Principal or interest overdue for 30 days" in warnings
    assert text.count("Principal or interest overdue for 30 days") == 1
    assert [line.split()[0] for line in trace.splitlines() if " overdue_any = " in line] == ["floor"]


def test_an_undetermined_rule_is_listed_once_on_both_paths(tmp_path: Path) -> None:
    # a condition that can be null: not overdue, and the technical-overdue flag unknown
    text = one_rule_text().replace("    - id: overdue_any\n      when: overdue\n",
                                   "    - id: overdue_any\n      when: overdue or technical_overdue\n")
    assert text != one_rule_text()
    policy = compile_document(load_yaml_text(text, "nullable.yaml"))
    client = apply_patch(sample("01"), {"loan.technical_overdue": None})
    record = Decider(policy).decide(client)
    assert [(u["kind"], u["rule"]) for u in record["undetermined"] if u["rule"] == "overdue_any"] == [
        ("classification", "overdue_any")]
    assert "overdue_any" not in [w["id"] for w in record["warnings"]]
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps(client) + "\n", encoding="utf-8")
    [row] = run_batch(policy, read_table(path)).decisions.itertuples()
    assert list(row.undetermined) == [u["rule"] for u in record["undetermined"]]


def test_the_batch_gives_the_same_warnings(one_rule: CompiledPolicy, clients: list[dict[str, Any]],
                                           tmp_path: Path) -> None:
    decider = Decider(one_rule)
    path = tmp_path / "clients.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clients), encoding="utf-8")
    result = run_batch(one_rule, read_table(path))
    assert result.rejects == []
    for row, record, client in zip(result.decisions.itertuples(), iter_records(result, decider), clients,
                                   strict=True):
        expected = decider.decide(client)
        assert list(row.warnings) == [w["id"] for w in expected["warnings"]]
        assert list(row.undetermined) == [u["rule"] for u in expected["undetermined"]]
        for k in ("decision_id", "evaluated_at"):
            record.pop(k), expected.pop(k)
        assert record == expected


def test_diff_reports_the_rules_message_and_severity(one_rule: CompiledPolicy, policy: CompiledPolicy) -> None:
    text = one_rule_text()
    louder = text.replace("      severity: high\n      category: repayment\n      message:\n        zh: 本金",
                          "      severity: critical\n      category: repayment\n      message:\n        zh: 本金")
    louder = louder.replace("en: Principal or interest overdue for {days_past_due} days\n    - id: overdue_over_90",
                            "en: Overdue for {days_past_due} days\n    - id: overdue_over_90")
    changes = diff_policies(one_rule, compile_document(load_yaml_text(louder, "louder.yaml")))
    assert [(c.section, c.rule, c.field) for c in changes] == [("floor", "overdue_any", "severity"),
                                                               ("floor", "overdue_any", "message")]
    assert changes[0].detail == "severity high -> critical"
    # from two rules to one: the warning is removed, the floor gains its message
    merged = diff_policies(policy, one_rule)
    assert [(c.section, c.rule, c.kind, c.field) for c in merged] == [
        ("floor", "overdue_any", "changed", "severity"), ("floor", "overdue_any", "changed", "category"),
        ("floor", "overdue_any", "changed", "message"), ("warning", "overdue", "removed", None)]


def test_fired_reads_the_rules_warning_in_an_action() -> None:
    text = one_rule_text().replace("when: fired('collateral_impaired')\n",
                                   "when: fired('collateral_impaired') or fired('overdue_any')\n")
    assert text != one_rule_text()
    policy = compile_document(load_yaml_text(text, "fired.yaml"))
    [action] = [a for a in policy.actions if "overdue_any" in a.expr.fired_refs]
    record = Decider(policy).decide(sample("06"))
    [given] = [a for a in record["actions"] if a["id"] == action.id]
    assert "overdue_any" in given["because"]["warnings"]
