"""Policy test cases written by the policy team: the runner and its strictness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy.registry import check_paths
from policy_engine.review.tester import PatchError, apply_patch, check_expectations, run_tests

from ..conftest import DATA, POLICIES, REFERENCE


def test_reference_policy_passes_all_its_cases() -> None:
    run = run_tests([REFERENCE])
    failures = [(r.name, r.policy, r.failures) for r in run.results if not r.passed]
    assert run.diagnostics == [] and failures == []
    assert len({(r.file, r.name) for r in run.results}) >= 40
    assert {r.policy for r in run.results} == {"loss-client-management@1.0.0", "loss-client-management@1.1.0",
                                               "loss-client-management@2.0.0", "loss-client-management@2.0.1",
                                               "loss-client-management@2.0.2", "loss-client-management@2.1.0"}


def _write_suite(tmp_path: Path, cases: str) -> Path:
    (tmp_path / "policy-1.0.0.yaml").write_text((DATA / "mini-policy.yaml").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    (tmp_path / "tests.yaml").write_text("policy: mini\ncases:\n" + cases, encoding="utf-8")
    return tmp_path


CLIENT = ("{client_id: A, industry: trade, loan: {days_past_due: 0}, assets: 10, liabilities: 5, "
          "financials: [{net_income: 1}]}")


def test_a_failing_case_shows_expected_and_actual(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: wrong\n    client: {CLIENT}\n    expect: {{grade: bad}}\n")
    run = run_tests([suite])
    assert run.failed == 1
    assert run.results[0].failures == ["grade: expected 'bad', got 'good' (decided by scorecard, score 5)"]
    assert run.results[0].line == 3
    assert run.results[0].failure_lines == [5]  # the expectation's own line, where an editor jumps to


def test_each_failure_names_the_line_of_its_expectation_in_text_and_json(tmp_path: Path) -> None:
    """A failing case was located at its first line only: its author searched the case for the wrong expectation."""
    suite = _write_suite(tmp_path, f"  - name: wrong\n    client: {CLIENT}\n    expect:\n      warnings: []\n"
                                   "      grade: bad\n      metrics: {ratio_al: 3}\n")
    text = CliRunner().invoke(main, ["test", str(suite), "--format", "text"])
    assert text.exit_code == 1
    assert "     line 7: grade: expected 'bad', got 'good'" in text.stdout, text.stdout
    assert "     line 8: metrics.ratio_al: expected 3, got 2" in text.stdout, text.stdout
    report = json.loads(CliRunner().invoke(main, ["test", str(suite), "--format", "json"]).stdout)
    assert report["cases"][0]["failure_lines"] == [7, 8]


def test_a_failing_grade_without_a_scorecard_says_which_rule_and_exposure_decided(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import main

    folder = tmp_path / "policies"
    assert CliRunner().invoke(main, ["--policies", str(folder), "init", "--debtor", "dd"]).exit_code == 0
    cases = folder / "dd" / "tests" / "basic.yaml"
    text = cases.read_text(encoding="utf-8")
    text = text.replace("      grade: pass\n", "      grade: substandard\n", 1)
    text = text.replace("      grade: substandard\n      decided_by: overdue_over_90", "      grade: doubtful\n      "
                        "decided_by: overdue_over_90", 1)
    cases.write_text(text, encoding="utf-8")
    run = run_tests([folder])
    assert [r.failures for r in run.results if not r.passed] == [
        ["grade: expected 'substandard', got 'pass' (no floor fired)"],  # no 'score 0' of a scorecard it lacks
        ["grade: expected 'doubtful', got 'substandard' (decided by overdue_over_90 of exposure E2)"]]


def test_a_case_without_expectations_is_an_error_not_a_pass(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: empty\n    client: {CLIENT}\n    expect: {{}}\n")
    run = run_tests([suite])
    assert run.results == []
    assert [d.code for d in run.diagnostics] == ["schema"]


def test_a_misspelt_expectation_key_is_an_error(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: typo\n    client: {CLIENT}\n    expect: {{grad: good}}\n")
    run = run_tests([suite])
    assert [(d.code, d.line, d.hint) for d in run.diagnostics] == [("unknown-key", 5, "did you mean 'grade'?")]


# An expectation naming what the policy does not have would pass for ever (an exclusion) or fail with a
# puzzling message; a patch of a field nobody reads changes nothing. All are errors of the test file.
UNKNOWN_NAMES = [
    ("{warnings_exclude: [low_ratoi]}", "cases[0].expect.warnings_exclude[0]", "no warning 'low_ratoi'",
     "did you mean 'low_ratio'?"),
    ("{actions_include: [meeet]}", "cases[0].expect.actions_include[0]", "no action 'meeet'", "did you mean 'meet'?"),
    ("{floors: [lat]}", "cases[0].expect.floors[0]", "no floor 'lat'", "did you mean 'late'?"),
    ("{undetermined_include: [low]}", "cases[0].expect.undetermined_include[0]", "no rule 'low'", None),
    ("{metrics: {ratio_la: 2}}", "cases[0].expect.metrics.ratio_la", "no metric 'ratio_la'",
     "did you mean 'ratio_al'?"),
    ("{grade: goood}", "cases[0].expect.grade", "no grade 'goood'", "did you mean 'good'?"),
    ("{decided_by: scorcard}", "cases[0].expect.decided_by", "no floor rule (or 'scorecard') 'scorcard'",
     "did you mean 'scorecard'?"),
    ("{action_params: {met: {cadence: monthly}}}", "cases[0].expect.action_params.met", "no action 'met'",
     "did you mean 'meet'?"),
]


@pytest.mark.parametrize(("expect", "path", "message", "hint"), UNKNOWN_NAMES, ids=[c[2] for c in UNKNOWN_NAMES])
def test_an_expectation_naming_what_the_policy_lacks_is_an_error(tmp_path: Path, expect: str, path: str,
                                                                 message: str, hint: str | None) -> None:
    suite = _write_suite(tmp_path, f"  - name: typo\n    client: {CLIENT}\n    expect: {expect}\n"
                                   f"  - name: fine\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    run = run_tests([suite])
    [d] = run.diagnostics
    assert (d.code, d.path, d.line, d.hint) == ("unknown-name", path, 5, hint) and message in d.message
    assert [r.name for r in run.results] == ["fine"]  # the broken case is not run; the others are


@pytest.mark.parametrize(("patch", "error"), [("{loan.days_past_du: 9}", "did you mean 'loan.days_past_due'?"),
                                              ("{loan.days_past_due: 9}", None),  # read by the policy
                                              ('{"financials[-1].net_income": -1}', None),  # a series, by index
                                              ("{loan: {days_past_due: 9}}", None),  # a parent of a field read
                                              ("{client_id: B}", None)])
def test_a_patch_of_a_field_nobody_reads_is_an_error(tmp_path: Path, patch: str, error: str | None) -> None:
    suite = _write_suite(tmp_path, f"  - name: p\n    client: {CLIENT}\n    patch: {patch}\n"
                                   "    expect: {warnings_exclude: [low_ratio]}\n")
    run = run_tests([suite])
    assert [d.hint for d in run.diagnostics] == ([error] if error else [])


def test_a_case_for_an_unknown_policy_is_an_error(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "tests.yaml").write_text((suite / "tests.yaml").read_text().replace("policy: mini", "policy: other"))
    run = run_tests([suite])
    assert [d.code for d in run.diagnostics] == ["unknown-policy", "untested-version"]  # mini: no file tests it


# The same checks inside an exposure's expectations (a policy with scopes): each would fail with a puzzling
# message, or pass for ever, as at the top level.
EXPOSURE_NAMES = [
    ("{grade: 次级}", "grade", "no grade '次级'", "'次级' is the label of grade substandard: expectations name the id"),
    ("{own_grade: substandrd}", "own_grade", "no grade 'substandrd'", "did you mean 'substandard'?"),
    ("{decided_by: contagion_10pct}", "decided_by", "no floor rule (or 'default') 'contagion_10pct'",
     "did you mean 'contagion'?"),
    ("{floors: [overdue_90]}", "floors[0]", "no floor 'overdue_90'", "did you mean 'overdue_over_90'?"),
    ("{floors_include: [nope]}", "floors_include[0]", "no floor 'nope'", None),
    ("{metrics: {late_payment: 1}}", "metrics.late_payment", "no exposure metric 'late_payment'",
     "did you mean 'late_payments'?"),
    ("{metrics: {nonperforming_share: 0}}", "metrics.nonperforming_share",  # the debtor's, not the exposure's
     "no exposure metric 'nonperforming_share'",
     "'nonperforming_share' is a metric of the debtor: expect it under the case's metrics, beside grade"),
]


# An expectation naming something of the other level: 'the policy has no metric' read as if the metric did not
# exist (policy-author review), and 'floor did not fire' beside an exposure floor that fired was false.
OTHER_LEVEL = [
    ("{metrics: {late_payments: 1}}", "metrics.late_payments", "the policy has no debtor metric 'late_payments'",
     "'late_payments' is a metric of each exposure: expect it under the exposure, exposures: "
     "{E1: {metrics: {late_payments: ...}}}"),
    ("{floor_exposures: {overdue_over_90: [E1]}}", "floor_exposures.overdue_over_90",
     "the policy has no debtor floor 'overdue_over_90'",
     "'overdue_over_90' is a floor of each exposure, which names no exposures: expect it under the exposure, "
     "exposures: {E1: {floors_include: [overdue_over_90]}}"),
    ("{floor_exposures: {contagoin: [E1]}}", "floor_exposures.contagoin", "the policy has no debtor floor 'contagoin'",
     "did you mean 'contagion'?"),
]


@pytest.mark.parametrize(("expect", "path", "message", "hint"), OTHER_LEVEL, ids=[c[1] for c in OTHER_LEVEL])
def test_a_debtor_expectation_naming_an_exposures_name_says_where_it_goes(tmp_path: Path, expect: str, path: str,
                                                                          message: str, hint: str) -> None:
    [d] = run_tests([_debtor_suite(tmp_path, expect)]).diagnostics
    assert (d.code, d.path, d.message, d.hint) == ("unknown-name", f"cases[0].expect.{path}", message, hint)


def _debtor_suite(tmp_path: Path, expect: str) -> Path:
    from click.testing import CliRunner

    from policy_engine.cli import main

    folder = tmp_path / "policies"
    assert CliRunner().invoke(main, ["--policies", str(folder), "init", "--debtor", "dd"]).exit_code == 0
    (folder / "dd" / "tests" / "basic.yaml").write_text(
        "policy: dd\ncases:\n  - name: named\n    client: ../samples/clients/example.json\n"
        f"    expect: {expect}\n  - name: fine\n    client: ../samples/clients/example.json\n"
        "    expect: {grade: pass}\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize(("exposure", "path", "message", "hint"), EXPOSURE_NAMES, ids=[c[2] for c in EXPOSURE_NAMES])
def test_an_exposure_expectation_naming_what_the_policy_lacks_is_an_error(tmp_path: Path, exposure: str, path: str,
                                                                          message: str, hint: str | None) -> None:
    run = run_tests([_debtor_suite(tmp_path, f"{{exposures: {{E1: {exposure}}}}}")])
    [d] = run.diagnostics
    assert (d.code, d.path, d.line, d.hint) == ("unknown-name", f"cases[0].expect.exposures.E1.{path}", 5, hint)
    assert message in d.message
    assert [r.name for r in run.results] == ["fine"]


@pytest.mark.parametrize(("expect", "path"), [
    ("{exposures: {}}", "exposures"),
    # each checked nothing, and the case passed (a case with no expectation is an error, never a pass)
    ("{metrics: {}}", "metrics"), ("{warnings_include: []}", "warnings_include"),
    ("{floors_include: []}", "floors_include"), ("{actions_exclude: []}", "actions_exclude"),
    ("{undetermined_include: []}", "undetermined_include"), ("{action_params: {}}", "action_params"),
    ("{restructuring: {}}", "restructuring"), ("{action_exposures: {}}", "action_exposures"),
    ("{exposures: {E1: {metrics: {}}}}", "exposures.E1.metrics"),
])
def test_an_expectation_that_checks_nothing_is_an_error(tmp_path: Path, expect: str, path: str) -> None:
    run = run_tests([_debtor_suite(tmp_path, expect)])
    assert [(d.code, d.path) for d in run.diagnostics] == [("schema", f"cases[0].expect.{path}")]
    assert [r.name for r in run.results] == ["fine"]


def test_invalid_input_beside_another_expectation_is_an_error_not_a_pass(tmp_path: Path) -> None:
    """A rejected client has no decision: the grade beside invalid_input was never checked, and the case passed."""
    bad = CLIENT.replace("days_past_due: 0", "days_past_due: -1")
    suite = _write_suite(tmp_path, f"  - name: both\n    client: {bad}\n"
                                   "    expect: {invalid_input: [loan.days_past_due], grade: bad}\n"
                                   f"  - name: fine\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    run = run_tests([suite])
    [d] = run.diagnostics
    assert (d.code, d.path, d.line) == ("contradictory-expectation", "cases[0].expect.grade", 5)
    assert d.message == "the case expects invalid input, so there is no decision to show grade"
    assert [r.name for r in run.results] == ["fine"]


def test_invalid_input_expectation(tmp_path: Path) -> None:
    bad = CLIENT.replace("days_past_due: 0", "days_past_due: -1")
    suite = _write_suite(tmp_path, f"  - name: rejected\n    client: {bad}\n"
                                   "    expect: {invalid_input: [loan.days_past_due]}\n"
                                   f"  - name: wrongly rejected\n    client: {bad}\n    expect: {{grade: good}}\n")
    run = run_tests([suite])
    assert [r.passed for r in run.results] == [True, False]
    assert "client data rejected" in run.results[1].failures[0]


@pytest.mark.parametrize(("patch", "check"), [
    ({"loan.days_past_due": 5}, lambda r: r["loan"]["days_past_due"] == 5),
    ({"financials[-1].net_income": -1}, lambda r: r["financials"][-1]["net_income"] == -1),
    ({"new.deep.key": True}, lambda r: r["new"]["deep"]["key"] is True),
])
def test_patches_set_nested_values_without_touching_the_original(patch: dict, check: object) -> None:
    original = {"loan": {"days_past_due": 0}, "financials": [{"net_income": 3}]}
    out = apply_patch(original, patch)
    assert check(out)  # type: ignore[operator]
    assert original == {"loan": {"days_past_due": 0}, "financials": [{"net_income": 3}]}


@pytest.mark.parametrize(("record", "patch", "says"), [
    ({}, {"a..b": 1}, "patch 'a..b': a step is not a field name with optional [index]"),
    ({"exposures": [{}]}, {"exposures[7].days_past_due": 1},
     "patch 'exposures[7].days_past_due': exposures has 1 element(s): [7] is not one of them"),
    ({"f": [1, 2]}, {"f[-3]": 0}, "patch 'f[-3]': f has 2 element(s): [-3] is not one of them"),
    ({"exposures": [{}]}, {"exposures.x": 1}, "patch 'exposures.x': exposures is list [{}], not an object: 'x' cannot "
                                              "be set"),
    ({"a": 5}, {"a.b": 1}, "patch 'a.b': a is int 5, not an object: 'b' cannot be set"),
    ({"exposures": [{}]}, {"exposures.x.y": 1},  # was an AttributeError: an internal error
     "patch 'exposures.x.y': exposures is list [{}], not an object: 'x' cannot be set"),
    ({"a": "xyz"}, {"a[0]": 1}, "patch 'a[0]': a is text 'xyz', not a list: [0] cannot be set"),
])
def test_a_patch_the_client_cannot_take_says_where_and_why(record: dict, patch: dict, says: str) -> None:
    with pytest.raises(PatchError) as refused:
        apply_patch(record, patch)
    assert str(refused.value) == says
    assert refused.value.path == next(iter(patch))


def test_a_case_whose_patch_misses_is_located_at_the_patch(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: past the end\n    client: {CLIENT}\n"
                                   "    patch: {\"financials[3].net_income\": 1}\n    expect: {grade: good}\n")
    result = run_tests([suite]).results[0]
    assert result.failures == ["cannot build the client: patch 'financials[3].net_income': financials has 1 "
                               "element(s): [3] is not one of them [at cases[0].patch.financials[3].net_income]"]


def test_expectations_compare_sets_and_numbers() -> None:
    record = {"classification": {"grade": "pass", "decided_by": "scorecard", "floors": []},
              "score": {"total": 10.0, "grade": "pass"}, "warnings": [{"id": "a"}], "actions": [],
              "suppressed_actions": [], "undetermined": [], "metrics": {"m": 0.30000000000000004}}
    assert check_expectations({"warnings": ["a"], "metrics": {"m": 0.3}, "score": 10}, record) == []
    assert check_expectations({"metrics": {"m": {"approx": 0.31, "tol": 0.001}}}, record) == [
        'metrics.m: expected {"approx": 0.31, "tol": 0.001}, got 0.30000000000000004']
    # a figure written rounded is shown how to write it with a tolerance; one far off is not
    third = {**record, "metrics": {"m": 0.3076923076923077, "n": 12.004, "far": 0.5}}
    assert check_expectations({"metrics": {"m": 0.3077, "n": 12, "far": 0.3}}, third) == [
        "metrics.m: expected 0.3077, got 0.3076923076923077 (to 4 places: {approx: 0.3077, tol: 0.0001})",
        "metrics.n: expected 12, got 12.004 (within a tolerance: {approx: 12, tol: 0.008})",
        "metrics.far: expected 0.3, got 0.5"]
    # a count held as 1.0 reads 1; an expectation written as text reads as text (it was "expected 0, got 0.0")
    counted = {**record, "metrics": {"n": 1.0, "z": 0.0}}
    assert check_expectations({"metrics": {"n": 0, "z": "0"}}, counted) == [
        "metrics.n: expected 0, got 1", 'metrics.z: expected "0", got 0']
    assert check_expectations({"warnings": []}, record) == [
        "warnings: expected [], got ['a'] (unexpected ['a'])"]


def test_reference_policy_has_full_rule_coverage() -> None:
    from policy_engine.review.tester import coverage

    report = coverage(run_tests([REFERENCE]))
    assert set(report) == {"loss-client-management@1.0.0", "loss-client-management@1.1.0",
                           "loss-client-management@2.0.0", "loss-client-management@2.0.1",
                           "loss-client-management@2.0.2", "loss-client-management@2.1.0"}
    for key, rules in report.items():
        assert [(r.kind, r.rule) for r in rules if not r.covered] == []
        kinds = {r.kind for r in rules}
        scorecard = {"band"} if key.rsplit("@", 1)[1] < "2" else set()  # 2.0.x has scopes, so no scorecard
        assert kinds == {"floor", "warning", "action", "metric"} | scorecard


def test_coverage_names_what_never_fired_and_min_coverage_fails(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import main

    suite = _write_suite(tmp_path, f"  - name: one case\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "text", "--coverage"], catch_exceptions=False)
    assert r.exit_code == 0
    assert "uncovered floor late: fired in no case" in r.stderr
    assert "uncovered band al [-inf, 1): chosen in no case" in r.stderr
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "text", "--min-coverage", "90"],
                           catch_exceptions=False)
    assert r.exit_code == 1 and "below --min-coverage 90%" in r.stderr


def test_an_invalid_case_is_reported_with_its_line_and_the_others_still_run(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import main

    suite = _write_suite(tmp_path, f"  - name: first\n    client: {CLIENT}\n    expect: {{grade: good}}\n"
                                   f"  - name: typo\n    client: {CLIENT}\n    expect: {{grad: good}}\n"
                                   f"  - name: third\n    client: {CLIENT}\n    expect: {{grade: bad}}\n")
    run = run_tests([suite])
    assert [(r.name, r.passed) for r in run.results] == [("first", True), ("third", False)]
    assert [(d.code, d.line, d.path) for d in run.diagnostics] == [("unknown-key", 8, "cases[1].expect.grad")]
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "text"], catch_exceptions=False)
    assert r.exit_code == 4  # an invalid file outranks a failing case, but only at the end
    assert "FAIL" in r.stdout and "1 passed, 1 failed" in r.stdout
    assert f"{suite / 'tests.yaml'}:8:" in r.stderr


def test_an_exposure_named_twice_is_a_located_error_not_a_failing_case(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: twice\n    client: {CLIENT}\n"
                                   "    expect: {warning_exposures: {late: [E1, E1]}}\n")
    run = run_tests([suite])
    assert run.results == []
    assert [(d.line, d.path) for d in run.diagnostics] == [(5, "cases[0].expect.warning_exposures.late")]
    assert "non-unique" in run.diagnostics[0].message


def test_a_broken_file_header_still_rejects_the_whole_file(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: first\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "tests.yaml").write_text("policy: mini\nversion: [1.0.0]\ncases:\n  - name: first\n"
                                      f"    client: {CLIENT}\n    expect: {{grade: good}}\n", encoding="utf-8")
    run = run_tests([suite])
    assert run.results == [] and [(d.code, d.hint) for d in run.diagnostics] == [("unknown-key",
                                                                                 "did you mean 'versions'?")]


@pytest.mark.parametrize(("where", "text", "line", "path"), [
    ("file", "policy: mini\nversions: [1.0.0, 1.0.1]\ncases:\n", 2, "versions[1]"),
    ("case", "policy: mini\ncases:\n", 5, "cases[0].versions[0]"),
])
def test_a_version_that_is_not_in_the_registry_is_an_error(tmp_path: Path, where: str, text: str, line: int,
                                                           path: str) -> None:
    _write_suite(tmp_path, "")
    case = f"  - name: pinned\n    client: {CLIENT}\n" + ("    versions: [1.0.1]\n" if where == "case" else "")
    (tmp_path / "tests.yaml").write_text(text + case + "    expect: {grade: good}\n", encoding="utf-8")
    run = run_tests([tmp_path])
    assert [(d.code, d.line, d.path, d.hint) for d in run.diagnostics] == [
        ("unknown-version", line, path, "did you mean '1.0.0'?")]
    assert [r.name for r in run.results] == ([] if where == "case" else ["pinned"])  # a pinned case is not run


def test_a_version_pinned_but_not_selected_is_not_an_error(tmp_path: Path) -> None:
    """Testing one policy file of a directory skips cases pinned to its sibling versions, as before."""
    _write_suite(tmp_path, f"  - name: pinned\n    client: {CLIENT}\n    versions: [1.1.0]\n"
                           "    expect: {grade: good}\n")
    text = (tmp_path / "policy-1.0.0.yaml").read_text(encoding="utf-8")
    text = text.replace("owner: Tests", "owner: Tests\ntests: .")
    (tmp_path / "policy-1.0.0.yaml").write_text(text, encoding="utf-8")
    (tmp_path / "policy-1.1.0.yaml").write_text(text.replace("version: 1.0.0", "version: 1.1.0", 1)
                                                .replace("effective_from: 2024-01-01", "effective_from: 2025-01-01"),
                                                encoding="utf-8")
    run = run_tests([tmp_path / "policy-1.0.0.yaml"])
    assert run.diagnostics == [] and run.results == []


def test_k_matching_no_case_is_a_usage_error(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from policy_engine.cli import main

    suite = _write_suite(tmp_path, f"  - name: first\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    r = CliRunner().invoke(main, ["test", str(suite), "-k", "nothing like this", "--format", "text"],
                           catch_exceptions=False)
    assert r.exit_code == 2
    assert "no-match" in r.stderr and "'nothing like this'" in r.stderr
    r = CliRunner().invoke(main, ["test", str(suite), "-k", "firs", "--format", "text"], catch_exceptions=False)
    assert r.exit_code == 0 and "1 passed" in r.stdout


def test_a_test_file_in_the_policy_tests_folder_finds_its_policy_one_level_up() -> None:
    run = run_tests([REFERENCE / "tests" / "versions.yaml"])
    assert run.diagnostics == [] and run.failed == 0
    assert {r.policy for r in run.results} == {"loss-client-management@1.0.0", "loss-client-management@1.1.0"}


# (how the policy is broken, the code of its own error): its test file said unknown-policy, "did you mean" the very
# name it wrote; the policy is there, failed to load, and its cases were not run
BROKEN_POLICY = [
    pytest.param(("ratio(assets, liabilities)", "ratio(assets, liabilites)"), "unknown-name", id="compile-error"),
    pytest.param(('{expr: "ratio(assets, liabilities)"}', '{expr: "ratio(assets, liabilities)"'), "yaml-syntax",
                 id="yaml-error"),
]


@pytest.mark.parametrize(("edit", "code"), BROKEN_POLICY)
def test_a_test_file_of_a_policy_that_failed_to_load_says_so(tmp_path: Path, edit: tuple[str, str], code: str) -> None:
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    policy = suite / "policy-1.0.0.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace(*edit), encoding="utf-8")
    run = run_tests([suite])
    assert run.diagnostics[0].code == code
    said = run.diagnostics[-1]
    assert (said.code, said.severity, said.line) == ("cases-not-run", "warning", 1)
    assert said.file == str(suite / "tests.yaml")
    assert said.message == "policy 'mini' (1.0.0) is here but failed to load: its errors are listed above; this " \
                           "file's cases were not run"
    assert "did you mean" not in (said.hint or "") and run.results == []
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "text"], catch_exceptions=False)
    assert r.exit_code == 4 and "unknown-policy" not in r.stderr


def test_a_new_version_not_listed_in_versions_says_to_add_it(tmp_path: Path) -> None:
    # Testing a new version against a file that lists the older ones: the version is untested, said once at it
    # with the file to add it to (it was unknown-policy at each such file, though the policy was there).
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "tests.yaml").write_text((suite / "tests.yaml").read_text().replace(
        "policy: mini\n", "policy: mini\nversions: ['1.0.0']\n"))
    text = (suite / "policy-1.0.0.yaml").read_text(encoding="utf-8")
    assert text.count("\nversion: 1.0.0\n") == 1
    newer = text.replace("\nversion: 1.0.0\n", "\nversion: 1.1.0\ntests: tests.yaml\n")
    (suite / "policy-1.1.0.yaml").write_text(newer, encoding="utf-8")
    run = run_tests([suite / "policy-1.1.0.yaml"])  # as `policy-engine test policy-1.1.0.yaml` runs it
    [d] = run.diagnostics
    assert (d.code, d.file, d.line, d.path) == ("untested-version", str(suite / "policy-1.1.0.yaml"), 3, "version"), d
    assert d.message == "no test case runs against mini 1.1.0"
    assert d.hint == f"add '1.1.0' to the versions: of the test files that apply to it ({suite / 'tests.yaml'}), " \
                     "or give it test files of its own"


def test_a_file_for_a_later_version_in_a_shared_folder_is_not_run_against_an_earlier_one(tmp_path: Path) -> None:
    # Versions sharing a tests folder: a file that lists only the later version is that version's,
    # so testing the earlier one alone skips it (the newer file is no error), and testing both runs it.
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "tests").mkdir()
    shared = (suite / "tests.yaml").read_text(encoding="utf-8")
    (suite / "tests.yaml").unlink()
    (suite / "tests" / "both.yaml").write_text(shared, encoding="utf-8")
    (suite / "tests" / "later.yaml").write_text(shared.replace("policy: mini\n", "policy: mini\nversions: ['1.1.0']\n"),
                                                encoding="utf-8")
    text = (suite / "policy-1.0.0.yaml").read_text(encoding="utf-8")
    assert text.count("\nversion: 1.0.0\n") == 1 and "\ntests:" not in text
    for version, dates in (("1.0.0", "effective_from: 2024-01-01\neffective_to: 2024-12-31"),
                           ("1.1.0", "effective_from: 2025-01-01")):  # one after the other: no overlap
        (suite / f"policy-{version}.yaml").write_text(
            text.replace("\nversion: 1.0.0\n", f"\nversion: {version}\ntests: tests\n")
                .replace("effective_from: 2024-01-01", dates), encoding="utf-8")
    earlier = run_tests([suite / "policy-1.0.0.yaml"])
    assert earlier.diagnostics == []
    assert {(Path(r.file).name, r.policy) for r in earlier.results} == {("both.yaml", "mini@1.0.0")}
    both = run_tests([suite])
    assert both.diagnostics == []
    assert {(Path(r.file).name, r.policy) for r in both.results} == {
        ("both.yaml", "mini@1.0.0"), ("both.yaml", "mini@1.1.0"), ("later.yaml", "mini@1.1.0")}


def _second_version(suite: Path, edit: tuple[str, str] | None = None) -> Path:
    """mini 1.1.0 beside 1.0.0 (1.0.0 ends the day before), optionally with one text replaced."""
    text = (suite / "policy-1.0.0.yaml").read_text(encoding="utf-8")
    (suite / "policy-1.0.0.yaml").write_text(text.replace("effective_from: 2024-01-01",
                                                          "effective_from: 2024-01-01\neffective_to: 2024-12-31"))
    text = text.replace("version: 1.0.0", "version: 1.1.0").replace("effective_from: 2024-01-01",
                                                                     "effective_from: 2025-01-01")
    if edit is not None:
        assert edit[0] in text
        text = text.replace(*edit)
    (suite / "policy-1.1.0.yaml").write_text(text, encoding="utf-8")
    return suite / "policy-1.1.0.yaml"


def test_a_version_no_case_runs_against_is_an_error_at_its_version_line(tmp_path: Path) -> None:
    """A new version whose test files do not list it would otherwise ship untested with every count green."""
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "tests.yaml").write_text((suite / "tests.yaml").read_text().replace(
        "policy: mini\n", "policy: mini\nversions: ['1.0.0']\n"))
    new = _second_version(suite)
    for given in ([suite], [suite, new]):  # the folder (and the new file in it: one policy)
        run = run_tests(given)
        assert [(d.code, d.file, d.line, d.message) for d in run.diagnostics] == [
            ("untested-version", str(new), 3, "no test case runs against mini 1.1.0")]
        assert run.diagnostics[0].hint == ("add '1.1.0' to the versions: of the test files that apply to it, or "
                                           "give it test files of its own")
    assert run_tests([suite / "tests.yaml"]).diagnostics == []  # one test file: its own versions only
    assert run_tests([suite], only="x").diagnostics == []  # -k runs a selection: nothing to say of the rest
    tests = suite / "tests"  # a folder of test files: its cases alone (the README's test DIR/tests) ...
    tests.mkdir()
    (suite / "tests.yaml").rename(tests / "tests.yaml")  # the client is inline: nothing to find one level up
    run = run_tests([tests])  # ... yet a version no test file of the policy targets is untested all the same
    assert run.passed == 1 and [(d.code, d.file) for d in run.diagnostics] == [("untested-version", str(new))]
    later = suite / "tests-1.1.0"  # the new version's own folder: it is that folder's to run, not this one's
    later.mkdir()
    (later / "tests.yaml").write_text((tests / "tests.yaml").read_text().replace("['1.0.0']", "['1.1.0']"))
    run = run_tests([tests])
    assert run.diagnostics == [] and run.passed == 1, [d.render() for d in run.diagnostics]


def test_two_files_of_one_version_are_an_error_as_in_validate(tmp_path: Path) -> None:
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "policy-1.0.1.yaml").write_text((suite / "policy-1.0.0.yaml").read_text())
    assert [d.code for d in run_tests([suite]).diagnostics] == ["duplicate-version", "version-overlap"]
    assert run_tests([suite, suite / "policy-1.0.0.yaml"]).diagnostics[0].code == "duplicate-version"
    (suite / "policy-1.0.1.yaml").unlink()
    assert run_tests([suite, suite / "policy-1.0.0.yaml"]).diagnostics == []  # one file given twice: one policy


def test_a_name_one_tested_version_lacks_is_an_error_naming_that_version(tmp_path: Path) -> None:
    """warnings_exclude: [low_ratio] passes for ever against a version without the warning."""
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{warnings_exclude: [low_ratio]}}\n"
                                   f"  - name: y\n    versions: ['1.0.0']\n    client: {CLIENT}\n"
                                   "    expect: {warnings_exclude: [low_ratio]}\n")
    _second_version(suite, ("  - id: low_ratio", "  - id: thin_ratio"))
    (suite / "policy-1.1.0.yaml").write_text((suite / "policy-1.1.0.yaml").read_text().replace(
        "fired('low_ratio')", "fired('thin_ratio')"))
    run = run_tests([suite])
    [d] = run.diagnostics
    assert (d.code, d.line, d.path) == ("unknown-name", 5, "cases[0].expect.warnings_exclude[0]")
    assert d.message == "the policy has no warning 'low_ratio' in version 1.1.0 (the case runs against 1.0.0, 1.1.0)"
    # the rename is named, as `test` of 1.1.0 alone names it (did-you-mean): the two runs read alike
    assert d.hint == ("pin the case to the versions that have it (versions: [1.0.0]), or give 1.1.0 a case of its own "
                      "(renamed? 1.1.0 has 'thin_ratio')")
    assert [(r.name, r.policy) for r in run.results] == [("y", "mini@1.0.0")]  # case y is pinned to 1.0.0: fine


def test_a_version_that_has_ended_may_have_no_test_left(tmp_path: Path) -> None:
    """Its decisions are history (audit replay re-decides them from the stored text): only a version that can
    still decide a new client must be tested."""
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "tests.yaml").write_text((suite / "tests.yaml").read_text().replace(
        "policy: mini\n", "policy: mini\nversions: ['1.1.0']\n"))
    _second_version(suite)  # 1.0.0 ends 2024-12-31; the test file now tests 1.1.0 only
    assert run_tests([suite]).diagnostics == []


@pytest.mark.parametrize(("path", "reaches"), [
    ("exposures[0].past_due_reason", True),  # read in each exposure; the sample debtor has none
    ("exposures[*].days_past_due", True),
    ("exposures[1].schedule[0].paid_amount", True),
    ("exposures[0].past_due_raeson", False),
])
def test_a_patch_of_a_field_read_inside_the_elements_reaches_the_decision(path: str, reaches: bool) -> None:
    """A patch of an optional exposure field the sample lacks was refused as 'neither a field the policy reads nor
    one of the client's', so a valid case (a technical overdue) could not be written."""
    from policy_engine.policy.registry import load_policy
    from policy_engine.review.tester import _element_reads, _patch_reaches

    from ..conftest import REFERENCE

    policy = load_policy(REFERENCE / "policy-2.0.0.yaml")
    reads = {i.source for i in policy.inputs} | _element_reads([policy])
    debtor = "../samples/debtors/01-pass-single-loan.json"
    assert _patch_reaches(path, reads, debtor, REFERENCE / "tests-2.0.0") is reaches


def test_a_client_file_that_is_not_there_is_an_error_of_the_test_file(tmp_path: Path) -> None:
    """A misspelt client file passed validate and failed as a case, with no line and no hint."""
    suite = _write_suite(tmp_path, "  - name: p\n    client: clients/healthy-clinet.json\n    expect: {grade: good}\n"
                                   f"  - name: fine\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    (suite / "clients").mkdir()
    (suite / "clients" / "healthy-client.json").write_text('{"client_id": "A"}', encoding="utf-8")
    run = run_tests([suite])
    [d] = run.diagnostics
    assert (d.code, d.path, d.line, d.hint) == ("file-missing", "cases[0].client", 4,
                                                "did you mean 'healthy-client.json'?")
    assert [r.name for r in run.results] == ["fine"]


def test_a_version_that_does_not_load_is_one_error_not_one_per_test_file_naming_it(tmp_path: Path) -> None:
    """A YAML error in policy-1.1.0.yaml read its version as '[1.1.0' from the header: every test file listing
    1.1.0 got an unknown-version error on top, hinting "did you mean '[1.1.0'?"."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root)
    broken = root / "loss-client-management" / "policy-1.1.0.yaml"
    broken.write_text(broken.read_text(encoding="utf-8").replace("\nversion: 1.1.0\n", "\nversion: [1.1.0\n", 1),
                      encoding="utf-8")
    run = run_tests([root / "loss-client-management"])
    assert [(d.code, Path(d.file or "").name) for d in run.diagnostics] == [("yaml-syntax", "policy-1.1.0.yaml")]
    assert run.passed > 0 and run.failed == 0


def test_a_test_file_in_no_policy_folder_runs_against_the_registry_policy_it_names(tmp_path: Path) -> None:
    """A draft test file beside the registry (its folder and the one above hold no policy file) was run against
    every policy under the folder above it: broken drafts and copies elsewhere were reported, and a duplicate
    version stopped the run. It is run against the registry's folder of the policy it names."""
    from click.testing import CliRunner

    from policy_engine.cli import main

    mini = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    (tmp_path / "policies" / "mini").mkdir(parents=True)
    (tmp_path / "policies" / "mini" / "policy-1.0.0.yaml").write_text(mini, encoding="utf-8")
    (tmp_path / "copies" / "mini").mkdir(parents=True)  # a copy of the same version, and a broken draft
    (tmp_path / "copies" / "mini" / "policy-1.0.0.yaml").write_text(mini, encoding="utf-8")
    (tmp_path / "copies" / "mini" / "policy-1.1.0.yaml").write_text("id: mini\nversion: [", encoding="utf-8")
    (tmp_path / "drafts").mkdir()
    loose = tmp_path / "drafts" / "tests.yaml"
    loose.write_text(f"policy: mini\ncases:\n  - name: good\n    client: {CLIENT}\n    expect: {{grade: good}}\n"
                     f"  - name: a number\n    client: {CLIENT}\n    expect: {{grade: 1}}\n", encoding="utf-8")
    run = run_tests([loose], registry=tmp_path / "policies")
    assert [(d.file, d.code) for d in run.diagnostics] == [(str(loose), "wrong-type")]
    assert "a grade is named by its id" in (run.diagnostics[0].hint or "")
    assert [r.name for r in run.results if r.passed] == ["good"]
    r = CliRunner().invoke(main, ["--policies", str(tmp_path / "policies"), "test", str(loose), "--format", "json"],
                           catch_exceptions=False)
    assert r.exit_code == 4 and "copies" not in r.output


def test_days_between_two_versions_with_none_in_force_fail_the_run_as_validate_does(tmp_path: Path) -> None:
    """2.1.0 ending 2027-09-30 and 2.2.0 starting 2027-11-01 passed validate and test; every October decision was
    then refused (no-version-in-force). Both now refuse the registry at the later effective_from."""
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    later = _second_version(suite, ("effective_from: 2025-01-01", "effective_from: 2025-02-01"))
    run = run_tests([suite])
    assert [(d.code, Path(d.file).name, d.line) for d in run.diagnostics] == [("version-gap", later.name, 7)]
    assert run.diagnostics[0].message == ("no version of mini is in force from 2025-01-01 to 2025-01-31: 1.0.0 ends "
                                          "on 2024-12-31 and 1.1.0 starts on 2025-02-01, so a decision dated between "
                                          "is refused")
    assert run.diagnostics[0].hint == "start 1.1.0 on 2025-01-01, or end 1.0.0 on 2025-01-31"
    results = check_paths([suite])
    assert [(d.code, d.line) for r in results for d in r.diagnostics] == [("version-gap", 7)]
    # a version that does not load leaves its period unknown: its own error alone, no gap beside it
    first = suite / "policy-1.0.0.yaml"
    first.write_text(first.read_text(encoding="utf-8").replace("when: dpd > 90", "when: dpd >"), encoding="utf-8")
    assert "version-gap" not in [d.code for d in run_tests([suite]).diagnostics]
    assert "version-gap" not in [d.code for r in check_paths([suite]) for d in r.diagnostics]


def test_a_case_pinned_to_a_version_its_file_does_not_test_is_an_error(tmp_path: Path) -> None:
    """It never ran, silently, and a false expectation in it passed for ever."""
    suite = _write_suite(tmp_path, f"  - name: never\n    versions: [1.0.0]\n    client: {CLIENT}\n"
                                   "    expect: {grade: bad}\n"
                                   f"  - name: runs\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    _second_version(suite)
    tests = suite / "tests.yaml"
    tests.write_text(tests.read_text(encoding="utf-8").replace("policy: mini\n", "policy: mini\nversions: [1.1.0]\n"),
                     encoding="utf-8")
    run = run_tests([suite])
    [d] = run.diagnostics
    assert (d.code, d.line, d.path) == ("case-never-runs", 5, "cases[0].versions[0]")
    assert d.hint == "add 1.0.0 to the file's versions:, or move the case to a file that tests 1.0.0"
    assert [r.name for r in run.results] == ["runs"]


def test_versions_in_force_on_one_day_fail_the_run_as_validate_does(tmp_path: Path) -> None:
    """Each version passes its own cases, but no decision by date can be made: a green run would let a pipeline
    that runs only `test` ship a registry that `decide` refuses (version-overlap, at the later effective_from)."""
    suite = _write_suite(tmp_path, f"  - name: x\n    client: {CLIENT}\n    expect: {{grade: good}}\n")
    _second_version(suite)
    assert run_tests([suite]).diagnostics == []
    text = (suite / "policy-1.0.0.yaml").read_text(encoding="utf-8")
    (suite / "policy-1.0.0.yaml").write_text(text.replace("effective_to: 2024-12-31", "effective_to: 2025-06-30"))
    run = run_tests([suite])
    assert [(d.code, Path(d.file).name, d.line) for d in run.diagnostics] == [
        ("version-overlap", "policy-1.1.0.yaml", 7)]
    assert run.failed == 0 and run.passed > 0  # the cases still run: the overlap is the registry's fault
