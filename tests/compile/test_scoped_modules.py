"""Modules with scopes: scoped definitions bring the scopes they need, and decide as if written in the policy.

The located failures (scope-conflict, a scope brought without its order input, errors inside a
module's scopes) are cases of tests/data/modules/broken_cases.yaml; this file pins what works.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.policy.registry import check_paths, load_policy

from ..conftest import POLICIES, REFERENCE

HEADER = """id: pol
version: 1.0.0
title: {zh: 测, en: Test}
status: active
owner: Tests
effective_from: 2024-01-01
changelog: [{version: 1.0.0, date: 2024-01-01, changes: [first]}]
"""
LOANS = """kind: module
id: loans
version: 1.0.0
title: {zh: 贷款, en: Loans}
scopes:
  exposure: {from: "exposures[*]", key: exposure_id, max: 10}
  payment: {from: "exposures[*].schedule[*]", parent: exposure, order_by: due_date}
inputs:
  due_date: {scope: payment, from: due_date, type: date, required: true}
  paid_on: {scope: payment, from: paid_date, type: date}
parameters:
  grace_days: {value: 0}
metrics:
  late_payments:
    scope: exposure
    expr: "count_where(payment, is_null(paid_on) or days_between(due_date, paid_on) > grace_days)"
"""
RULES = """classification:
  scale: [{id: good, zh: 好, en: Good}, {id: bad, zh: 差, en: Bad, nonperforming: true}]
  rules:
    - {id: late, scope: exposure, when: "late_payments > 0", floor: bad, source: test}
"""
NAMES = "[due_date, paid_on, grace_days, late_payments]"


def _registry(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


def _debtor(*schedules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"client_id": "D", "as_of": "2025-06-30", "industry": "trade",
            "exposures": [{"exposure_id": f"E{i + 1}", "schedule": s} for i, s in enumerate(schedules)]}


ON_TIME = [{"due_date": "2025-01-31", "paid_date": "2025-01-31"}]
LATE = [{"due_date": "2025-01-31", "paid_date": "2025-02-03"}]


def _grades(record: dict[str, Any]) -> dict[str, str]:
    return {x["exposure_id"]: x["grade"] for x in record["exposures"]}


def test_a_policy_without_scopes_gets_the_module_scopes_with_its_names(tmp_path: Path) -> None:
    root = _registry(tmp_path, {
        "loans/module-1.0.0.yaml": LOANS,
        "pol/policy-1.0.0.yaml": HEADER + f"imports:\n  - {{module: loans, version: 1.0.0, names: {NAMES}}}\n"
        "inputs:\n  industry: {from: industry, type: string}\n" + RULES})
    (result,) = check_paths([root / "pol" / "policy-1.0.0.yaml"])
    assert result.diagnostics == [] and result.policy is not None
    policy = result.policy
    assert policy.scoped is not None
    assert [(s.name, s.parent, s.key, s.order_by, s.max) for s in policy.scoped.scopes] == \
        [("exposure", None, "exposure_id", None, 10), ("payment", "exposure", None, "due_date", 100)]
    assert policy.imported["late_payments"] == "loans 1.0.0"
    record = Decider(policy).decide(_debtor(ON_TIME, LATE))
    assert _grades(record) == {"E1": "good", "E2": "bad"}
    assert [x["metrics"]["late_payments"] for x in record["exposures"]] == [0, 1]


def test_the_importer_declares_the_same_scopes_and_bounds_its_own_records(tmp_path: Path) -> None:
    """Same list, parent, key and order: the importer's declaration stands, its max included."""
    root = _registry(tmp_path, {
        "loans/module-1.0.0.yaml": LOANS,
        "pol/policy-1.0.0.yaml": HEADER + f"imports:\n  - {{module: loans, version: 1.0.0, names: {NAMES}}}\n"
        "scopes:\n  exposure: {from: \"exposures[*]\", key: exposure_id, max: 2}\n"
        "  payment: {from: \"exposures[*].schedule[*]\", parent: exposure, order_by: due_date, max: 5}\n"
        "inputs:\n  industry: {from: industry, type: string}\n" + RULES})
    policy = load_policy(root / "pol" / "policy-1.0.0.yaml")
    assert policy.scoped is not None and [s.max for s in policy.scoped.scopes] == [2, 5]
    decider = Decider(policy)
    assert _grades(decider.decide(_debtor(LATE, ON_TIME))) == {"E1": "bad", "E2": "good"}
    with pytest.raises(InputError) as e:
        decider.decide(_debtor(ON_TIME, ON_TIME, ON_TIME))
    assert [d.code for d in e.value.diagnostics] == ["too-large"]


def test_scopes_come_through_a_module_that_re_exports_a_scoped_metric(tmp_path: Path) -> None:
    relay = ("kind: module\nid: relay\nversion: 1.0.0\ntitle: {zh: 转, en: Relay}\n"
             f"imports:\n  - {{module: loans, version: 1.0.0, names: {NAMES}}}\n")
    root = _registry(tmp_path, {
        "loans/module-1.0.0.yaml": LOANS, "relay/module-1.0.0.yaml": relay,
        "pol/policy-1.0.0.yaml": HEADER + f"imports:\n  - {{module: relay, version: 1.0.0, names: {NAMES}}}\n"
        "inputs:\n  industry: {from: industry, type: string}\n" + RULES})
    results = {Path(r.file).parent.name: r for r in check_paths([root])}
    assert all(r.diagnostics == [] for r in results.values()), {k: r.diagnostics for k, r in results.items()}
    policy = results["pol"].policy
    assert policy is not None and policy.scoped is not None
    assert [m.key for m in policy.modules] == ["relay@1.0.0", "loans@1.0.0"]
    assert _grades(Decider(policy).decide(_debtor(LATE))) == {"E1": "bad"}


# ---- the reference policy: financial difficulty is the module's, parameterised

def test_2_0_0_reads_the_restructuring_definition_from_the_financial_difficulty_module() -> None:
    policy = load_policy(REFERENCE / "policy-2.0.0.yaml")
    module = {m.key: m for m in policy.modules}["financial-difficulty@1.0.0"]
    assert module.file.endswith("financial-difficulty/module-1.0.0.yaml")
    for name in ("restructuring_count", "first_restructuring_date", "restructuring_date", "later_restructurings",
                 "nonperforming_before_restructuring", "measure", "dpd_at_date", "difficulty_overdue_days"):
        assert policy.imported[name] == "financial-difficulty 1.0.0", name
    text = policy.text
    assert "'interest_capitalised'" not in text and "difficulty_at_date)" not in text, \
        "the concession list and the difficulty test are written in the module only"


def test_the_module_thresholds_are_parameters_that_decide(tmp_path: Path) -> None:
    """At 30 days overdue on the date the extension is a restructuring; with the module's threshold at 30 days
    (Art. 18(1) read as 'more than 30') it is not, and the policy's hash names the other module text."""
    shutil.copytree(POLICIES, tmp_path / "policies")
    debtor = json.loads((REFERENCE / "samples" / "debtors" / "10-extension-in-difficulty.json").read_text("utf-8"))
    before = load_policy(tmp_path / "policies" / "loss-client-management" / "policy-2.0.0.yaml")
    module = tmp_path / "policies" / "financial-difficulty" / "module-1.0.0.yaml"
    text = module.read_text(encoding="utf-8")
    assert text.count("  difficulty_overdue_days:\n    value: 0\n") == 1
    module.write_text(text.replace("  difficulty_overdue_days:\n    value: 0\n",
                                   "  difficulty_overdue_days:\n    value: 30\n"), encoding="utf-8")
    after = load_policy(tmp_path / "policies" / "loss-client-management" / "policy-2.0.0.yaml")
    assert after.sha256 != before.sha256 and after.text == before.text
    e1 = [Decider(p).decide(debtor)["exposures"][0] for p in (before, after)]
    assert [x["metrics"]["restructuring_count"] for x in e1] == [1, 0]
    assert [x["metrics"]["modifications_not_restructuring"] for x in e1] == [0, 1]
    assert [(x["grade"], x["decided_by"]) for x in e1] == [("special_mention", "restructured_in_observation"),
                                                           ("pass", "default")]


def test_lint_sees_an_imported_exposure_metric_read_or_reported(tmp_path: Path) -> None:
    """import-unused reads both levels: an exposure metric only reported (informational) is used, an unread one not."""
    module = LOANS + "  paid_count: {scope: exposure, expr: \"count_where(payment, not is_null(paid_on))\", " \
        "informational: true}\n  unpaid_count: {scope: exposure, expr: \"count_where(payment, is_null(paid_on))\"}\n"
    names = "[due_date, paid_on, grace_days, late_payments, paid_count, unpaid_count]"
    root = _registry(tmp_path, {
        "loans/module-1.0.0.yaml": module,
        "pol/policy-1.0.0.yaml": HEADER + f"imports:\n  - {{module: loans, version: 1.0.0, names: {names}}}\n"
        "inputs:\n  industry: {from: industry, type: string}\n" + RULES})
    (result,) = check_paths([root / "pol" / "policy-1.0.0.yaml"])
    assert [(d.code, d.severity) for d in result.diagnostics] == [("import-unused", "warning")]
    assert "'unpaid_count'" in result.diagnostics[0].message


def test_lint_counts_a_date_read_only_as_an_order_a_unique_field_or_a_bound_as_used(tmp_path: Path) -> None:
    """``opened`` is read by no expression, only as ``paid_on``'s bound; ``due_date`` only as the payments' order
    and unique field: dropping either from the import is an error, so neither is unused."""
    module = LOANS.replace("order_by: due_date}", "order_by: due_date, unique: [due_date]}").replace(
        "  paid_on: {scope: payment, from: paid_date, type: date}\n",
        "  opened: {scope: exposure, from: opened, type: date}\n"
        "  paid_on: {scope: payment, from: paid_date, type: date, not_before: opened}\n")
    module = module.replace("is_null(paid_on) or days_between(due_date, paid_on) > grace_days",
                            "is_null(paid_on) or paid_on > as_of")
    root = _registry(tmp_path, {
        "loans/module-1.0.0.yaml": module,
        "pol/policy-1.0.0.yaml": HEADER + "imports:\n  - {module: loans, version: 1.0.0, names: "
        "[opened, due_date, paid_on, late_payments]}\ninputs:\n  industry: {from: industry, type: string}\n" + RULES})
    (result,) = check_paths([root / "pol" / "policy-1.0.0.yaml"])
    assert result.diagnostics == [], [d.render() for d in result.diagnostics]


def test_a_2_0_0_decision_replays_from_the_stored_module_text_after_the_module_changes(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import main

    shutil.copytree(POLICIES, tmp_path / "policies")
    base = ["--policies", str(tmp_path / "policies"), "--audit-db", str(tmp_path / "a.db")]
    debtor = tmp_path / "policies" / "loss-client-management" / "samples" / "debtors" / \
        "23-case-manufacturer-raw-material-squeeze.json"
    r = CliRunner().invoke(main, [*base, "decide", "-p", "loss-client-management", "--policy-version", "2.0.0",
                                  "-c", str(debtor),
                                  "--format", "json"])
    assert r.exit_code == 0, r.stderr
    module = tmp_path / "policies" / "financial-difficulty" / "module-1.0.0.yaml"
    module.write_text(module.read_text(encoding="utf-8").replace(
        "  difficulty_overdue_days:\n    value: 0\n", "  difficulty_overdue_days:\n    value: 30\n"), encoding="utf-8")
    r = CliRunner().invoke(main, [*base, "audit", "replay", "1"])
    assert r.exit_code == 0 and '"status": "identical"' in r.stdout, (r.stdout, r.stderr)
