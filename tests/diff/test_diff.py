"""Semantic diff: changes named rule by rule in policy terms."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.review.diffing import diff_policies, resolve

from ..conftest import CURRENT, POLICIES, ROOT

TEXT = CURRENT.read_text(encoding="utf-8")


def _diff(new_text: str) -> list[str]:
    old = compile_document(load_yaml_text(TEXT, "old.yaml"))
    new = compile_document(load_yaml_text(new_text, "new.yaml"))
    return [c.text() for c in diff_policies(old, new)]


def test_identical_policies_have_no_changes() -> None:
    assert _diff(TEXT) == []


def test_a_moved_threshold_reads_as_a_threshold() -> None:
    changed = TEXT.replace("when: consecutive_loss_quarters >= 2", "when: consecutive_loss_quarters >= 3")
    assert _diff(changed) == ["warning consecutive_losses: threshold 2 -> 3"]


def test_a_change_to_the_input_contract_is_named() -> None:
    # Refusing periods out of order or after the as-of day changes which clients are decided at all.
    changed = TEXT.replace("    ascending: true\n    not_after_as_of: true\n", "")
    assert _diff(changed) == ["input period_end_q: ascending true -> false",
                              "input period_end_q: not_after_as_of true -> false"]


def test_a_changed_parameter_names_its_segment() -> None:
    changed = TEXT.replace("dscr_floor:\n    value: 1.2", "dscr_floor:\n    value: 1.0")
    assert _diff(changed) == ["parameter dscr_floor[default]: 1.2 -> 1.0 (read by warning dscr_low)"]


def test_an_action_that_gained_a_condition_shows_both() -> None:
    changed = TEXT.replace("    when: fired('collateral_impaired')\n",
                           "    when: fired('collateral_impaired') and key_client\n")
    assert _diff(changed) == ["action add_collateral: condition `fired('collateral_impaired')` -> "
                              "`fired('collateral_impaired') and key_client`"]


def test_bands_rules_and_severity() -> None:
    changed = (TEXT.replace("        - {min: 6, points: 5}\n", "        - {min: 6, max: 9, points: 5}\n"
                                                                  "        - {min: 9, points: 7}\n")
               .replace("    severity: low\n    category: operations",
                        "    severity: medium\n    category: operations"))
    assert _diff(changed) == [
        "factor receivables_turnover: band [6, +inf) removed",
        "factor receivables_turnover: band [6, 9) added (5 points)",
        "factor receivables_turnover: band [9, +inf) added (7 points)",
        "warning receivables_slow: severity low -> medium",
    ]


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


def test_cli_between_registry_versions_as_json_and_markdown() -> None:
    r = _cli("diff", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--format", "json")
    assert r.exit_code == 0
    changes = [(c["section"], c["rule"], c["detail"]) for c in json.loads(r.stdout)["changes"]]
    assert ("parameter", "current_ratio_floor[manufacturing]", "1.2 -> 1.15") in changes
    assert ("parameter", "statement_stale_days[default]", "120 -> 135 days") in changes  # with its unit
    md = _cli("diff", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--format", "markdown")
    # a changed value names the rules that read it: what a reviewer checks next
    assert "| parameter | `current_ratio_floor[manufacturing]` | 1.2 -> 1.15 (read by " \
           "`metric current_ratio_vs_floor`, `metric financial_difficulty`, `metric temporary_liquidity_gap`, " \
           "`warning liquidity_below_floor`, `action extend_term`) |" in md.stdout  # its reason quotes the floor
    read_by = {c["rule"]: c.get("read_by") for c in json.loads(r.stdout)["changes"]}
    assert read_by["statement_stale_days[default]"] == ["warning financial_statements_stale"]
    assert read_by["version"] is None  # only a parameter's value has readers


def test_cli_reads_a_git_revision() -> None:
    import sys

    rel = CURRENT.relative_to(ROOT).as_posix()
    committed = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=ROOT, capture_output=True, text=True, check=True)
    r = subprocess.run([sys.executable, "cli.py", "--policies", str(POLICIES), "diff", f"HEAD:{rel}", str(CURRENT),
                        "--format", "json"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    old = compile_document(load_yaml_text(committed.stdout, "head.yaml"))
    new = compile_document(load_yaml_text(TEXT, "new.yaml"))
    assert json.loads(r.stdout)["changes"] == [c.to_dict() for c in diff_policies(old, new)]
    bad = _cli("diff", "nope-not-a-ref", str(CURRENT))
    assert bad.exit_code == 2 and "not a file, id@version or REV:path" in bad.stderr
    missing = _cli("diff", "HEAD:no/such/file.yaml", str(CURRENT))
    assert missing.exit_code == 2 and "cannot read HEAD:no/such/file.yaml from git" in missing.stderr


def _changes(new_text: str) -> list[dict[str, Any]]:
    old = compile_document(load_yaml_text(TEXT, "old.yaml"))
    new = compile_document(load_yaml_text(new_text, "new.yaml"))
    return [c.to_dict() for c in diff_policies(old, new)]


NEW_WARNING = """warnings:
  - id: overdue_long
    when: days_past_due > 180
    severity: high
    category: repayment
    message:
      zh: 逾期{days_past_due}天
      en: Overdue {days_past_due} days
"""


def test_an_added_rule_shows_its_condition_severity_and_message() -> None:
    [c] = _changes(TEXT.replace("warnings:\n", NEW_WARNING, 1))
    assert (c["section"], c["rule"], c["kind"], c["old"]) == ("warning", "overdue_long", "added", None)
    assert c["new"] == {"when": "days_past_due > 180", "severity": "high", "category": "repayment",
                        "message": {"zh": "逾期{days_past_due}天", "en": "Overdue {days_past_due} days"}}
    assert c["detail"] == ('added: when `days_past_due > 180`; severity high; category repayment; '
                           'message (en) "Overdue {days_past_due} days"; (zh) "逾期{days_past_due}天"')


def test_a_removed_floor_shows_what_it_did() -> None:
    start = TEXT.index("    - id: overdue_over_90\n")
    end = TEXT.index("    - id: overdue_over_270")
    [c] = _changes(TEXT[:start] + TEXT[end:])
    assert (c["section"], c["rule"], c["kind"], c["new"]) == ("floor", "overdue_over_90", "removed", None)
    assert c["old"]["when"] == "days_past_due > 90" and c["old"]["floor"] == "substandard"
    assert c["detail"].startswith("removed: when days_past_due > 90; floor substandard; source: 《商业银行")


def test_json_carries_old_and_new_values_not_python_text() -> None:
    changed = TEXT.replace("when: consecutive_loss_quarters >= 2", "when: consecutive_loss_quarters >= 3")
    [c] = _changes(changed)
    assert (c["field"], c["old"], c["new"]) == ("threshold", 2, 3)
    assert c["when"] == {"old": "consecutive_loss_quarters >= 2", "new": "consecutive_loss_quarters >= 3"}
    r = _cli("diff", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--format", "json")
    by_rule = {c["rule"]: c for c in json.loads(r.stdout)["changes"]}
    assert (by_rule["effective_to"]["old"], by_rule["effective_to"]["new"]) == ("2024-12-31", "2026-06-30")
    assert by_rule["effective_to"]["detail"] == "2024-12-31 -> 2026-06-30"
    assert (by_rule["current_ratio_floor[manufacturing]"]["old"],
            by_rule["current_ratio_floor[manufacturing]"]["new"]) == (1.2, 1.15)


def test_a_changed_message_shows_the_text_that_changed() -> None:
    changed = TEXT.replace("en: Net loss for {consecutive_loss_quarters} consecutive quarters",
                           "en: Loss for {consecutive_loss_quarters} quarters in a row")
    [c] = _changes(changed)
    assert c["field"] == "message" and c["old"]["zh"] == c["new"]["zh"]
    assert c["detail"].startswith('message changed: (en) "Net loss for {consecutive_loss_quarters} consecutive')


def test_markdown_marks_added_rules_for_a_pull_request(tmp_path: Any) -> None:
    new = tmp_path / "policy.yaml"
    new.write_text(TEXT.replace("warnings:\n", NEW_WARNING, 1), encoding="utf-8")
    md = _cli("diff", str(CURRENT), str(new), "--format", "markdown").stdout
    assert "1 change(s): 1 added." in md
    assert "| warning | `overdue_long` | **added**: when `days_past_due > 180`; severity high;" in md


def test_text_keeps_each_change_on_one_line() -> None:
    """A folded (YAML '>') expression keeps its line breaks; a CI log grepped for a rule sees it whole."""
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "diff", "loss-client-management@2.0.2",
                                  "loss-client-management@2.1.0", "--format", "text"], catch_exceptions=False)
    lines = r.stdout.splitlines()
    assert all(line.startswith("  ") for line in lines[1:])
    assert len(lines) == 1 + int(lines[0].rsplit(": ", 1)[1].split()[0])
    [line] = [x for x in lines if "metric impaired_collateral_exposures" in x]
    assert line.endswith("!= 'none' and collateral_change <= -collateral_warning_drop, False))`")


def test_exit_code_says_whether_anything_changed() -> None:
    def code(old: str, new: str, *extra: str) -> int:
        return CliRunner().invoke(main, ["--policies", str(POLICIES), "diff", old, new, "--format", "json", *extra],
                                  catch_exceptions=False).exit_code

    same = ("loss-client-management@2.1.0",) * 2
    changed = ("loss-client-management@2.0.2", "loss-client-management@2.1.0")
    assert (code(*same, "--exit-code"), code(*changed, "--exit-code"), code(*changed)) == (0, 1, 0)
    assert code("financial-difficulty@1.0.0", "financial-difficulty@1.1.0", "--exit-code") == 1
    assert code("financial-difficulty@1.1.0", "financial-difficulty@1.1.0", "--exit-code") == 0


@pytest.mark.parametrize(("given", "says", "hint"), [
    ("policies/loss-client-management/tests-2.0.0/actions.yaml", "is a policy test file, not a policy",
     "`policy-engine test policies/loss-client-management/tests-2.0.0/actions.yaml` runs its cases"),
    ("scenarios/collateral-crash.yaml", "is a stress scenario, not a policy", "--scenario scenarios/collateral-crash"),
])
def test_a_test_file_or_a_scenario_is_named_as_what_it_is_not_checked_as_a_policy(
        given: str, says: str, hint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked as a policy, a test file gave a dozen missing-key errors (changelog, classification, ...) and exit 4."""
    monkeypatch.chdir(ROOT)
    for args in ([given, str(CURRENT)], [str(CURRENT), given], [f"HEAD:{given}", str(CURRENT)]):
        r = _cli("diff", *args)
        assert r.exit_code == 2 and says in r.stderr and hint in r.stderr and "missing-key" not in r.stderr, r.stderr


def test_impact_and_simulate_name_a_test_file_given_as_a_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    given = "policies/loss-client-management/tests-2.0.0/actions.yaml"
    portfolio = "policies/loss-client-management/samples/portfolio.csv"
    for args in (["impact", given, str(CURRENT), "--portfolio", portfolio],
                 ["simulate", given, "--scenario", "scenarios/collateral-crash.yaml", "--portfolio", portfolio]):
        r = _cli("--no-audit", *args)
        assert r.exit_code == 2 and "is a policy test file, not a policy" in r.stderr, r.stderr


def test_one_version_of_two_texts_is_told_apart_by_its_sha256(tmp_path: Path) -> None:
    """The registry's 2.1.0 against an edited copy of it read '2.1.0 -> 2.1.0' in diff and impact."""
    from policy_engine.review.impact import heading_of

    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root)
    edited = root / "loss-client-management" / "policy-2.1.0.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("value: 0.10\n", "value: 0.12\n", 1), "utf-8")
    a, b = resolve("loss-client-management@2.1.0", POLICIES), resolve(str(edited), root)
    text = _cli("diff", "loss-client-management@2.1.0", str(edited), "--format", "text").stdout
    assert text.startswith(f"loss-client-management 2.1.0 (sha256 {a.sha256[:12]}) -> loss-client-management 2.1.0 "
                           f"(sha256 {b.sha256[:12]}): 1 change(s)"), text
    report = {"old": {"id": a.id, "version": a.version, "sha256": a.sha256},
              "new": {"id": b.id, "version": b.version, "sha256": b.sha256}}
    assert heading_of(report, "Portfolio impact") == (f"Portfolio impact: loss-client-management 2.1.0 (sha256 "
                                                      f"{a.sha256[:12]}) → 2.1.0 (sha256 {b.sha256[:12]})")
    report["new"] = report["old"]  # simulate: one policy on both sides
    assert heading_of(report, "Scenario x") == "Scenario x: loss-client-management 2.1.0"


def test_a_changed_parameter_is_read_by_the_messages_that_quote_it() -> None:
    """A message quoting a parameter its condition does not read changes its words when the parameter changes:
    read_by names it (it named only the rules whose expressions read the parameter)."""
    quoted = TEXT.replace("trailing net margin {net_margin:pct}\n",
                          "trailing net margin {net_margin:pct} (LTV limit {ltv_limit:pct})\n", 1)
    assert quoted != TEXT
    old = compile_document(load_yaml_text(quoted, "old.yaml"))
    new = compile_document(load_yaml_text(quoted.replace("ltv_limit:\n    by_segment: {default: 0.70,",
                                                         "ltv_limit:\n    by_segment: {default: 0.75,", 1), "new.yaml"))
    (change,) = diff_policies(old, new)
    assert change.read_by is not None and "warning consecutive_losses" in change.read_by
    assert "warning collateral_impaired" in change.read_by  # its condition reads it, as before
