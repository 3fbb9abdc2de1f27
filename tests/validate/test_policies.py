"""Stage 2 and 3: schema and semantic checks, each problem at its file:line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from policy_engine.diagnostics import Diagnostic, PolicyError
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_file, load_yaml_text
from policy_engine.policy.registry import check_paths

from ..conftest import DATA, POLICIES

BROKEN = sorted((DATA / "broken_policies").glob("*.yaml"))
_EXPECT = re.compile(r"^# expect: (?P<code>[a-z-]+) line (?P<line>\d+)$")


_HINT = re.compile(r"^# hint: (?P<hint>.+)$")


def _found(path: Path) -> list[Diagnostic]:
    try:
        diags, _ = check_document(load_yaml_file(path))
    except PolicyError as e:
        diags = e.diagnostics
    return list(diags)


def _diagnostics(path: Path) -> list[tuple[str, int | None]]:
    return [(d.code, d.line) for d in _found(path)]


def test_the_broken_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 25


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_policy_gives_its_diagnostic_at_its_line(path: Path) -> None:
    header = path.read_text(encoding="utf-8").splitlines()[0]
    m = _EXPECT.match(header)
    assert m, f"{path.name}: first line must be '# expect: CODE line N'"
    found = _diagnostics(path)
    assert (m["code"], int(m["line"])) in found, found
    hint = _HINT.match(path.read_text(encoding="utf-8").splitlines()[1])
    if hint:  # '# hint: TEXT' on the second line: the diagnostic's hint says it
        hints = [d.hint or "" for d in _found(path) if (d.code, d.line) == (m["code"], int(m["line"]))]
        assert any(hint["hint"] in h for h in hints), hints


def test_shipped_policies_are_clean() -> None:
    results = check_paths([POLICIES])
    assert len(results) >= 2
    for r in results:
        assert r.diagnostics == [], [d.render() for d in r.diagnostics]
        # a shipped module (financial-difficulty) is checked on its own; everything else compiles as a policy
        assert r.policy is not None or r.module in [f"financial-difficulty@1.{minor}.0" for minor in range(5)], r.file
    assert any(r.module for r in results) and sum(r.policy is not None for r in results) >= 3


def test_mini_policy_is_valid() -> None:
    diags, policy = check_document(load_yaml_file(DATA / "mini-policy.yaml"))
    assert diags == [] and policy is not None


def test_all_semantic_errors_of_a_file_are_reported_together() -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    text = text.replace("when: dpd > 90", "when: dppd > 90").replace("floor: bad", "floor: worse")
    text = text.replace("when: ratio_al < floor", "when: ratio_al < flor")
    diags, policy = check_document(load_yaml_text(text, "x.yaml"))
    assert policy is None
    assert {d.code for d in diags} == {"unknown-name", "unknown-grade"}
    assert len(diags) == 3
    hints = [d.hint for d in diags if d.code == "unknown-name"]
    assert "did you mean 'dpd'?" in hints and "did you mean 'floor'?" in hints


def test_unknown_key_suggests_the_near_miss() -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8").replace("    severity: high", "    severty: high")
    diags, _ = check_document(load_yaml_text(text, "x.yaml"))
    unknown = next(d for d in diags if d.code == "unknown-key")
    assert unknown.hint == "did you mean 'severity'?"
    assert unknown.render().startswith("x.yaml:")


def test_expression_error_column_points_into_the_expression() -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8").replace("when: dpd > 90", "when: dpd > 90 and zz")
    diags, _ = check_document(load_yaml_text(text, "x.yaml"))
    d = next(d for d in diags if d.code == "unknown-name")
    line = text.splitlines()[d.line - 1]
    assert line[d.column - 1:].startswith("zz")


def test_two_active_versions_with_overlapping_periods_are_an_error(tmp_path: Path) -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    (tmp_path / "policy-1.0.0.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "policy-1.1.0.yaml").write_text(
        text.replace("version: 1.0.0", "version: 1.1.0").replace("effective_from: 2024-01-01",
                                                                "effective_from: 2024-06-01"), encoding="utf-8")
    results = check_paths([tmp_path])
    codes = [d.code for r in results for d in r.diagnostics]
    assert codes == ["version-overlap"]
    hint = next(d.hint for r in results for d in r.diagnostics)
    assert "effective_to: 2024-05-31" in hint


def test_two_versions_starting_on_one_day_are_not_told_to_end_the_day_before_they_start(tmp_path: Path) -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    (tmp_path / "policy-1.0.0.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "policy-1.1.0.yaml").write_text(text.replace("version: 1.0.0", "version: 1.1.0"), encoding="utf-8")
    [d] = [d for r in check_paths([tmp_path]) for d in r.diagnostics]
    assert d.code == "version-overlap"
    assert d.hint == "both start on 2024-01-01: start 1.1.0 later (and end 1.0.0 the day before it), or drop one"


def test_schema_validation_is_memoised_only_for_valid_texts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from policy_engine.policy import cache, compiler

    monkeypatch.setenv("POLICY_ENGINE_CACHE_DIR", str(tmp_path))
    calls = []
    real = compiler.schema_errors
    monkeypatch.setattr(compiler, "schema_errors", lambda *a: calls.append(1) or real(*a))
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8") + "\n# variant for the cache test\n"
    for _ in range(2):
        diags, policy = check_document(load_yaml_text(text, "x.yaml"))
        assert policy is not None
    assert calls == [1]
    broken = text.replace("severity: high", "severity: severe")
    for _ in range(2):
        diags, policy = check_document(load_yaml_text(broken, "x.yaml"))
        assert policy is None and diags[0].code == "bad-value"
    assert calls == [1, 1, 1]
    monkeypatch.setenv("POLICY_ENGINE_CACHE", "0")
    assert not cache.known_schema_valid(text)


LINT = sorted((DATA / "lint_policies").glob("*.yaml"))


@pytest.mark.parametrize("path", LINT, ids=[p.stem for p in LINT])
def test_static_analysis_finds_each_planted_defect(path: Path) -> None:
    m = _EXPECT.match(path.read_text(encoding="utf-8").splitlines()[0])
    assert m
    (result,) = check_paths([path])
    found = [(d.code, d.line, d.severity) for d in result.diagnostics]
    assert found == [(m["code"], int(m["line"]), "warning")]  # exactly the planted one, as a warning
    assert result.policy is not None  # findings do not make the policy invalid


def test_static_analysis_is_silent_on_the_shipped_policies_and_validate_still_exits_0() -> None:
    from click.testing import CliRunner

    from policy_engine.cli import main

    assert all(r.diagnostics == [] for r in check_paths([POLICIES]))
    r = CliRunner().invoke(main, ["validate", "--format", "json", str(LINT[0])], catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.stdout)["files"][0]["diagnostics"][0]["severity"] == "warning"


def test_lint_sees_a_rules_own_warning(tmp_path: Path) -> None:
    # A metric read only by a classification rule's message is used; a warning's finding stays at its own line
    # although the rule's warning comes first in the compiled policy.
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    text = text.replace("losses: {expr: \"streak(income_q, '<', 0)\", informational: true}",
                        "losses: {expr: \"streak(income_q, '<', 0)\"}")
    text = text.replace("      source: test\n", "      source: test\n      severity: high\n"
                        "      message: {zh: \"亏损{losses}季\", en: \"{losses} loss quarters\"}\n")
    text = text.replace("    when: ratio_al < floor\n", "    when: dpd >= 0 or ratio_al < floor\n")
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    (result,) = check_paths([path])
    assert result.policy is not None and [w.id for w in result.policy.warnings] == ["late", "low_ratio"]
    line = 1 + text.splitlines().index("    when: dpd >= 0 or ratio_al < floor")
    assert [(d.code, d.line, d.rule) for d in result.diagnostics] == [("condition-always-true", line, "low_ratio")]


@pytest.mark.parametrize(("expr", "read"), [("paid_date > due_date", "count_where(payment, paid_late)"),
                                            ("days_between(due_date, coalesce(paid_date, as_of))",
                                             "sum_of(payment, paid_late)")])
def test_an_unused_metric_of_each_element_is_told_where_it_is_read(tmp_path: Path, expr: str, read: str) -> None:
    # Not 'informational: true': a metric of each payment is never reported, only read inside an aggregation that
    # takes its type (a count of a condition, a sum of a number).
    text = (DATA / "scopes" / "policy-multi-exposure.yaml").read_text(encoding="utf-8")
    text = text.replace("metrics:\n", f"metrics:\n  paid_late: {{scope: payment, expr: \"{expr}\"}}\n", 1)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    (result,) = check_paths([path])
    (d,) = [d for d in result.diagnostics if d.code == "metric-unused"]
    assert d.rule == "paid_late" and "informational" not in (d.hint or "")
    assert read in (d.hint or "")


@pytest.mark.parametrize(("part", "whole"), [
    ("sum_where(exposure, balance - 1, grade_at_least('substandard'))", "sum_of(exposure, balance - 1)"),  # may be < 0
    ("sum_where(exposure, balance, grade_at_least('substandard'))", "sum_of(exposure, days_past_due)"),  # another sum
    ("sum_of(exposure, balance)", "sum_where(exposure, balance, grade_at_least('substandard'))"),  # upside down
])
def test_a_quotient_not_proven_a_part_of_its_whole_is_no_share(tmp_path: Path, part: str, whole: str) -> None:
    """Sound: what the analysis cannot prove between 0 and 1 is compared with nothing (no finding)."""
    text = (DATA / "lint_policies" / "never-true-share-in-fen.yaml").read_text(encoding="utf-8")
    text = text.replace("sum_where(exposure, balance, grade_at_least('substandard'))", "PART", 1)
    text = text.replace("sum_of(exposure, balance)", "WHOLE", 1).replace("PART", part).replace("WHOLE", whole)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    (result,) = check_paths([path])
    assert result.policy is not None, [d.render() for d in result.diagnostics]
    assert [d.code for d in result.diagnostics] == []


def test_floors_of_different_scopes_are_not_compared(tmp_path: Path) -> None:
    """An exposure floor reading a debtor name is not shadowed by a debtor floor on it: each grades its own."""
    text = (DATA / "lint_policies" / "shadowed-exposure-floor.yaml").read_text(encoding="utf-8")
    text = text.replace("inputs:\n", "inputs:\n  group_dpd: {from: group_dpd, type: integer, min: 0}\n", 1)
    text = text.replace("when: days_past_due > 90\n", "when: group_dpd > 90\n").replace(
        "      when: nonperforming_share > contagion_share\n", "      when: group_dpd > 60\n")
    text = text.replace("when: days_past_due > 120\n", "when: group_dpd > 120\n")
    text = text.replace("    - id: overdue_over_90\n      scope: exposure\n", "    - id: overdue_over_90\n")
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    (result,) = check_paths([path])
    assert result.policy is not None, [d.render() for d in result.diagnostics]
    # the debtor's two floors: 'overdue_over_90' under 'contagion' (> 60); the exposure's one is alone in its scope
    shadowed = [(d.rule, d.message) for d in result.diagnostics if d.code == "floor-shadowed"]
    assert [rule for rule, _ in shadowed] == ["overdue_over_90"] and "'contagion'" in shadowed[0][1]


@pytest.mark.parametrize(("a", "b", "implied"), [
    ({"default": 120.0}, {"default": 90.0}, True),
    ({"default": 120.0}, {"default": 90.0, "trade": 150.0}, False),  # not in the segment 'trade'
    ({"default": 120.0, "trade": 160.0}, {"default": 90.0, "trade": 150.0}, True),
    ({"trade": 160.0}, {"default": 90.0}, False),  # no value of its own for the other segments
    ({"trade": 160.0}, {"retail": 90.0}, False),  # a segment one threshold does not name
])
def test_a_parameter_threshold_implies_in_every_segment(a: dict[str, float], b: dict[str, float],
                                                         implied: bool) -> None:
    import ast

    from policy_engine.policy.lint import _implies

    assert _implies(("dpd", ast.Gt, a), ("dpd", ast.Gt, b)) is implied
