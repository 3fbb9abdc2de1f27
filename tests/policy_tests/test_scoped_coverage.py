"""Coverage of a policy with scopes: an exposure's rules count, pinned per exposure, and are named with their scope."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.review.tester import coverage, run_tests

from ..conftest import DATA

SCOPES = DATA / "scopes"
CLIENT = str(SCOPES / "clients" / "three-exposures.json")
E2_LATE = '{"exposures[1].days_past_due": 95}'  # E2 (15% of the balance) substandard, the 10% rule spreads it


def _suite(tmp_path: Path, cases: list[tuple[str, str]]) -> Path:
    shutil.copy(SCOPES / "policy-multi-exposure.yaml", tmp_path / "policy-1.0.0.yaml")
    (tmp_path / "tests").mkdir()
    body = "".join(f"  - name: case {i}\n    client: {CLIENT}\n" + (f"    patch: {patch}\n" if patch else "")
                   + f"    expect: {expect}\n" for i, (patch, expect) in enumerate(cases))
    (tmp_path / "tests" / "cases.yaml").write_text("policy: multi-exposure\ncases:\n" + body, encoding="utf-8")
    return tmp_path


# (cases as (patch, expect), rule, status): an exposure rule is covered when an expectation pins it firing on
# one exposure and not firing on one (the same exposure or another, the same case or another).
PINNING = [
    pytest.param([(E2_LATE, "{exposures: {E2: {floors: [overdue_60, overdue_90, contagion_10pct]}, "
                            "E1: {floors: [contagion_10pct]}}}")],
                 ("floor", "overdue_90"), "covered", id="exact-floors-of-two-exposures-in-one-case"),
    pytest.param([(E2_LATE, "{exposures: {E2: {floors_include: [overdue_90]}}}"),
                  ("", "{exposures: {E2: {grade: normal}}}")],
                 ("floor", "overdue_90"), "covered", id="include-then-a-better-exposure-grade"),
    pytest.param([(E2_LATE, "{exposures: {E2: {decided_by: overdue_90}}}"),
                  ('{"exposures[1].days_past_due": 70}', "{exposures: {E2: {own_grade: special_mention}}}")],
                 ("floor", "overdue_90"), "covered", id="decided-by-then-a-better-own-grade"),
    pytest.param([(E2_LATE, "{decided_by: contagion_10pct}"), ("", "{grade: normal}")],
                 ("floor", "overdue_90"), "incidental", id="the-debtor-decided-by-another-rule-pins-nothing-here"),
    pytest.param([('{"exposures[2].days_past_due": 120}', "{decided_by: overdue_90}"), ("", "{grade: normal}")],
                 ("floor", "overdue_90"), "covered", id="the-debtor-decided-by-an-exposure-floor-and-a-better-grade"),
    pytest.param([(E2_LATE, "{grade: substandard}"), ("", "{grade: normal}")],
                 ("floor", "overdue_90"), "incidental", id="a-bad-grade-does-not-say-which-floor"),
    # An exposure's grade pins the debtor's floors of a worse grade on it: not the exposure's own only.
    pytest.param([(E2_LATE, "{exposures: {E1: {decided_by: contagion_10pct}}}"),
                  ("", "{exposures: {E1: {grade: normal}}}")],
                 ("floor", "contagion_10pct"), "covered", id="a-debtor-floor-pinned-through-an-exposure"),
    pytest.param([("", "{exposures: {E1: {metrics: {first_late_due: '2025-01-31'}}, "
                       "E2: {metrics: {first_late_due: null}}}}")],
                 ("metric", "first_late_due"), "covered", id="an-exposure-metric-value-and-null"),
    pytest.param([("", "{exposures: {E1: {metrics: {first_late_due: '2025-01-31'}}}}")],
                 ("metric", "first_late_due"), "incidental", id="an-exposure-metric-value-only"),
]


@pytest.mark.parametrize(("cases", "rule", "status"), PINNING)
def test_exposure_rules_count_pinned_per_exposure(tmp_path: Path, cases: list[tuple[str, str]],
                                                  rule: tuple[str, str], status: str) -> None:
    run = run_tests([_suite(tmp_path, cases)])
    assert run.diagnostics == []
    assert run.failed == 0, [r.failures for r in run.results]
    rules = {(r.kind, r.rule): r for r in coverage(run)["multi-exposure@1.0.0"]}
    assert rules[rule].status == status
    assert rules[rule].scope == ("exposure" if rule[1] in ("overdue_90", "first_late_due") else "debtor")


def test_a_failing_exposure_expectation_pins_nothing(tmp_path: Path) -> None:
    wrong = "{exposures: {E2: {floors_include: [overdue_90]}, E1: {grade: loss}}}"
    run = run_tests([_suite(tmp_path, [(E2_LATE, wrong), ("", "{exposures: {E2: {grade: normal}}}")])])
    assert run.failed == 1
    rules = {(r.kind, r.rule): r for r in coverage(run)["multi-exposure@1.0.0"]}
    assert rules[("floor", "overdue_90")].status == "incidental"


def test_the_example_policy_reaches_full_coverage_and_the_report_names_the_scope(tmp_path: Path) -> None:
    report = coverage(run_tests([SCOPES / "policy-multi-exposure.yaml"]))["multi-exposure@1.0.0"]
    assert report.percent == 100.0
    scopes = {r.rule: r.scope for r in report}
    assert scopes["overdue_60"] == scopes["missed_three"] == scopes["first_late_due"] == "exposure"
    assert scopes["contagion_10pct"] == scopes["several_late"] == "debtor"
    suite = _suite(tmp_path, [(E2_LATE, "{exposures: {E2: {floors_include: [overdue_90]}}}")])
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "text", "--coverage"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    policy_file = suite / "policy-1.0.0.yaml"
    line = 1 + next(i for i, text in enumerate(policy_file.read_text(encoding="utf-8").splitlines())
                    if text.startswith("    - {id: overdue_90,"))
    assert f"{policy_file}:{line}: incidental floor overdue_90 (exposure): no case expects it not to fire" in r.stderr
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "junit"], catch_exceptions=False)
    assert 'name="floor overdue_90 (exposure)"' in r.stdout
