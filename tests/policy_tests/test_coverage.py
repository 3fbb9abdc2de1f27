"""Rule coverage that cannot pass by accident: a rule counts only when expectations pin it both ways."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.review.tester import coverage, run_tests

from ..conftest import DATA, REFERENCE

HEALTHY = "{client_id: H, industry: trade, loan: {days_past_due: 0}, assets: 10, liabilities: 5}"
LOW = "{client_id: L, industry: trade, loan: {days_past_due: 0}, assets: 5, liabilities: 10}"
NO_RATIO = "{client_id: N, industry: trade, loan: {days_past_due: 0}}"
LATE = "{client_id: D, industry: trade, loan: {days_past_due: 100}, assets: 10, liabilities: 5}"


def _suite(tmp_path: Path, cases: list[tuple[str, str]]) -> Path:
    (tmp_path / "policy-1.0.0.yaml").write_text((DATA / "mini-policy.yaml").read_text(encoding="utf-8"),
                                                encoding="utf-8")
    body = "".join(f"  - name: case {i}\n    client: {client}\n    expect: {expect}\n"
                   for i, (client, expect) in enumerate(cases))
    (tmp_path / "tests.yaml").write_text("policy: mini\ncases:\n" + body, encoding="utf-8")
    return tmp_path


# (cases, rule, status, failing cases): what the expectations pin decides, not what the cases happen to make fire.
PINNING = [
    pytest.param([(LOW, "{warnings_include: [low_ratio]}"), (HEALTHY, "{warnings_exclude: [low_ratio]}")],
                 ("warning", "low_ratio"), "covered", 0, id="include-and-exclude"),
    pytest.param([(LOW, "{warnings: [low_ratio]}"), (HEALTHY, "{warnings: []}")],
                 ("warning", "low_ratio"), "covered", 0, id="exact-lists"),
    pytest.param([(LOW, "{grade: bad}"), (HEALTHY, "{grade: good}")],
                 ("warning", "low_ratio"), "incidental", 0, id="fired-and-not-but-never-expected"),
    pytest.param([(LOW, "{warnings_include: [low_ratio]}"), (HEALTHY, "{grade: good}")],
                 ("warning", "low_ratio"), "incidental", 0, id="expected-one-way-only"),
    pytest.param([(LOW, "{actions: [meet]}"), (HEALTHY, "{actions_exclude: [meet]}")],
                 ("action", "meet"), "covered", 0, id="action-exact-and-exclude"),
    pytest.param([(LATE, "{decided_by: late}"), (HEALTHY, "{grade: good}")],
                 ("floor", "late"), "covered", 0, id="decided-by-and-a-better-grade"),
    pytest.param([(LATE, "{grade: bad}"), (HEALTHY, "{floors: []}")],
                 ("floor", "late"), "incidental", 0, id="a-bad-grade-does-not-say-which-floor"),
    pytest.param([(LOW, "{metrics: {ratio_al: 0.5}}"), ("{client_id: N, industry: trade, loan: {days_past_due: 0}}",
                                                         "{metrics: {ratio_al: null}}")],
                 ("metric", "ratio_al"), "covered", 0, id="metric-value-and-null"),
    pytest.param([(LOW, "{score: -5}"), (HEALTHY, "{score: 5}")],
                 ("band", "al [-inf, 1)"), "covered", 0, id="exact-score-pins-the-bands"),
    pytest.param([(LOW, "{scorecard_grade: bad}"), (HEALTHY, "{scorecard_grade: good}")],
                 ("band", "al [-inf, 1)"), "incidental", 0, id="scorecard-grade-does-not-pin-a-band"),
    # An expectation that did not hold pins nothing: the failing case is reported, the rule stays unpinned.
    pytest.param([(HEALTHY, "{warnings_include: [low_ratio]}"), (LOW, "{warnings_exclude: [low_ratio]}")],
                 ("warning", "low_ratio"), "incidental", 2, id="failed-expectations-pin-nothing"),
    # Nor does a failing case's other expectation: a wrong score leaves the bands unpinned although they held.
    pytest.param([(LOW, "{score: -5, grade: good}"), (HEALTHY, "{score: 5}")],
                 ("band", "al [-inf, 1)"), "incidental", 1, id="a-failing-case-pins-nothing"),
]


@pytest.mark.parametrize(("cases", "rule", "status", "failing"), PINNING)
def test_coverage_counts_what_expectations_pin(tmp_path: Path, cases: list[tuple[str, str]], rule: tuple[str, str],
                                                status: str, failing: int) -> None:
    run = run_tests([_suite(tmp_path, cases)])
    assert run.diagnostics == []
    assert run.failed == failing
    rules = {(r.kind, r.rule): r for r in coverage(run)["mini@1.0.0"]}
    assert rules[rule].status == status


# (cases, rule, missing): what is missing, in the words of the rule's kind (a metric is not "fired").
WORDS = [
    pytest.param([(LOW, "{metrics: {ratio_al: 0.5}}")], ("metric", "ratio_al"), "null in no case",
                 id="number-never-null"),
    pytest.param([(LOW, "{grade: bad}"), (NO_RATIO, "{grade: good}")], ("metric", "ratio_al"),
                 "no case expects a value of it; no case expects it null", id="number-unpinned"),
    pytest.param([(LOW, "{score: -5}")], ("band", "al [1, +inf)"), "chosen in no case", id="band-never-chosen"),
    pytest.param([(LOW, "{score: -5}")], ("band", "al [-inf, 1)"), "chosen in every case", id="band-always-chosen"),
    pytest.param([(LOW, "{grade: bad}"), (HEALTHY, "{grade: good}")], ("band", "al [-inf, 1)"),
                 "no case expects it chosen; no case expects another band", id="band-unpinned"),
    pytest.param([(LOW, "{grade: bad}")], ("floor", "late"), "fired in no case; no case expects it not to fire",
                 id="floor"),
    # A failing case pins nothing, and its place is named where it would pin: "no case expects it" alone sent a
    # policy author to write a second case for what the failing one already expects.
    pytest.param([(LOW, "{score: -5, grade: good}"), (HEALTHY, "{score: 5}")], ("band", "al [-inf, 1)"),
                 "no case expects it chosen but the failing case at tests.yaml:3, which counts once it passes",
                 id="failing-case-named"),
]


@pytest.mark.parametrize(("cases", "rule", "missing"), WORDS)
def test_what_is_missing_is_said_in_the_words_of_the_kind(tmp_path: Path, cases: list[tuple[str, str]],
                                                           rule: tuple[str, str], missing: str) -> None:
    rules = {(r.kind, r.rule): r for r in coverage(run_tests([_suite(tmp_path, cases)]))["mini@1.0.0"]}
    assert rules[rule].missing.replace(f"{tmp_path}/", "") == missing


def test_json_and_junit_carry_coverage_with_the_rules_lines(tmp_path: Path) -> None:
    suite = _suite(tmp_path, [(LOW, "{score: -5}"), (HEALTHY, "{floors: []}")])
    policy_file = str(suite / "policy-1.0.0.yaml")
    warning_line = 1 + (DATA / "mini-policy.yaml").read_text(encoding="utf-8").splitlines().index("  - id: low_ratio")
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0
    cov = json.loads(r.stdout)["coverage"]["mini@1.0.0"]
    assert cov["percent"] < 100 and cov["covered"] < cov["rules"]
    incidental = {x["rule"]: x for x in cov["incidental"]}
    assert incidental["low_ratio"]["file"] == policy_file and incidental["low_ratio"]["line"] == warning_line
    assert incidental["low_ratio"]["missing"] == "no case expects it to fire; no case expects it not to fire"

    r = CliRunner().invoke(main, ["test", str(suite), "--format", "junit", "--min-coverage", "100"],
                           catch_exceptions=False)
    assert r.exit_code == 1
    root = ET.fromstring(r.stdout)
    suite_el = root.find("testsuite[@name='rule coverage mini@1.0.0']")
    assert suite_el is not None
    props = {p.get("name"): p.get("value") for p in suite_el.iter("property")}
    assert float(props["coverage.percent"]) < 100
    case = suite_el.find("testcase[@name='warning low_ratio']")
    assert case is not None and case.get("line") == str(warning_line) and case.find("failure") is not None


def test_an_untested_warning_drops_the_reference_coverage_and_is_named_with_its_line(tmp_path: Path) -> None:
    copy = tmp_path / "loss-client-management"
    shutil.copytree(REFERENCE, copy)
    shutil.copytree(REFERENCE.parent / "financial-difficulty", tmp_path / "financial-difficulty")  # 2.0.0 imports it
    policy_file = copy / "policy-1.1.0.yaml"
    lines = policy_file.read_text(encoding="utf-8").splitlines(keepends=True)
    at = lines.index("actions:\n")
    lines[at:at] = ["  - id: untested_warning\n", "    when: days_past_due > 5000\n", "    severity: low\n",
                    "    category: repayment\n", "    message: {zh: 测试, en: untested}\n"]
    policy_file.write_text("".join(lines), encoding="utf-8")
    r = CliRunner().invoke(main, ["test", str(copy), "--format", "text", "--coverage", "--min-coverage", "100"],
                           catch_exceptions=False)
    assert r.exit_code == 1, r.output
    assert "0 failed" in r.stdout
    assert "coverage loss-client-management@1.0.0: 109/109" in r.stderr  # streaks can be null (issue 14 class 8)
    assert "coverage loss-client-management@1.1.0: 109/110" in r.stderr
    assert f"{policy_file}:{at + 1}: uncovered warning untested_warning: fired in no case" in r.stderr



# (cases, extra arguments, exit code, the codes of stderr's errors): stderr says ok: false whenever the exit code is
# not 0, with each cause (it said ok: true beside failed cases, and left coverage-below out when a case failed too).
STDERR = [
    pytest.param([(LOW, "{grade: good}"), (HEALTHY, "{grade: good}")], [], 1, ["tests-failed"], id="a-case-failed"),
    pytest.param([(LOW, "{grade: good}")], ["--min-coverage", "90"], 1, ["tests-failed", "coverage-below"],
                 id="failed-and-coverage-short"),
    pytest.param([(LOW, "{score: -5}")], ["--min-coverage", "90"], 1, ["coverage-below"], id="coverage-short"),
    pytest.param([(LOW, "{grade: worst}")], ["--min-coverage", "90"], 4, ["files-invalid"], id="an-invalid-case"),
    pytest.param([(LOW, "{score: -5}")], ["-k", "no such case"], 2, ["no-match"], id="nothing-selected"),
    pytest.param([(LOW, "{score: -5}")], [], 0, None, id="passed"),
]


@pytest.mark.parametrize(("cases", "args", "code", "errors"), STDERR)
def test_stderr_says_what_set_the_exit_code(tmp_path: Path, cases: list[tuple[str, str]], args: list[str], code: int,
                                            errors: list[str] | None) -> None:
    r = CliRunner().invoke(main, ["test", str(_suite(tmp_path, cases)), "--format", "json", *args],
                           catch_exceptions=False)
    assert r.exit_code == code, r.output
    said = json.loads(r.stderr) if r.stderr.strip() else {"ok": True}
    assert said["ok"] is (errors is None)
    assert [e["code"] for e in said.get("errors", [])][:len(errors or [])] == (errors or [])
    if "--min-coverage" in args:
        assert json.loads(r.stdout)["min_coverage"]["met"] is False  # an invalid file leaves coverage unmeasured


# (cases, extra arguments, exit code, the codes of stderr's error lines): piped with no --format, the report is JSON on
# stdout and what set the exit code is text lines on stderr, each invalid file's problem at its place (stderr was
# empty: the errors were only inside the report).
PIPED = [
    pytest.param([(LOW, "{grade: good}"), (HEALTHY, "{grade: good}")], [], 1, ["tests-failed"], id="a-case-failed"),
    pytest.param([(LOW, "{grade: good}")], ["--min-coverage", "90"], 1, ["tests-failed", "coverage-below"],
                 id="failed-and-coverage-short"),
    pytest.param([(LOW, "{grade: worst}")], [], 4, ["unknown-name"], id="an-invalid-case"),
    pytest.param([(LOW, "{score: -5}")], ["-k", "no such case"], 2, ["no-match"], id="nothing-selected"),
    pytest.param([(LOW, "{score: -5}")], [], 0, [], id="passed"),
]


@pytest.mark.parametrize(("cases", "args", "code", "errors"), PIPED)
def test_piped_stderr_says_in_lines_what_set_the_exit_code(tmp_path: Path, cases: list[tuple[str, str]],
                                                           args: list[str], code: int, errors: list[str]) -> None:
    suite = _suite(tmp_path, cases)
    r = CliRunner().invoke(main, ["test", str(suite), *args], catch_exceptions=False)
    assert r.exit_code == code, r.output
    assert {"passed", "failed", "cases"} <= json.loads(r.stdout).keys()  # the report is stdout's, as it was
    said = [line.split(": error: ")[-1].removeprefix("error: ").split(":")[0] for line in r.stderr.splitlines()
            if "error: " in line and not line.startswith("    hint:")]
    assert said == errors, r.stderr
    assert not r.stderr.lstrip().startswith("{")  # lines for people: JSON only when asked
    if "unknown-name" in errors:
        assert f"{suite / 'tests.yaml'}:5:" in r.stderr  # at the expectation's place

def test_a_coverage_gate_that_fails_says_so_to_machines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON carries the gate (required, met, the versions below), GitHub annotates each unpinned rule on its
    line as an error, and the JUnit totals are those of every suite, coverage suites included."""
    suite = _suite(tmp_path, [(LOW, "{score: -5}"), (HEALTHY, "{floors: []}")])
    warning_line = 1 + (DATA / "mini-policy.yaml").read_text(encoding="utf-8").splitlines().index("  - id: low_ratio")
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "json", "--min-coverage", "90"],
                           catch_exceptions=False)
    assert r.exit_code == 1
    assert json.loads(r.stdout)["min_coverage"] == {"required": 90.0, "met": False, "below": ["mini@1.0.0"]}
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "github", "--min-coverage", "90"],
                           catch_exceptions=False)
    assert "::error title=rule coverage::mini@1.0.0: " in r.stdout and "below --min-coverage 90%" in r.stdout
    assert (f"::error file={suite / 'policy-1.0.0.yaml'},line={warning_line},title=rule coverage::[mini@1.0.0] "
            "incidental warning low_ratio: no case expects it to fire; no case expects it not to fire") in r.stdout
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "github", "--coverage"], catch_exceptions=False)
    assert "::notice title=rule coverage::mini@1.0.0" in r.stdout  # no gate: a notice, and warnings per rule
    assert f"::warning file={suite / 'policy-1.0.0.yaml'},line={warning_line}," in r.stdout
    monkeypatch.chdir(tmp_path)  # an absolute path inside the checkout is annotated relative to it
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "github", "--min-coverage", "90"],
                           catch_exceptions=False)
    assert f"::error file=policy-1.0.0.yaml,line={warning_line}," in r.stdout
    r = CliRunner().invoke(main, ["test", str(suite), "--format", "junit"], catch_exceptions=False)
    root = ET.fromstring(r.stdout)
    assert int(root.get("tests")) == len(root.findall(".//testcase"))  # type: ignore[arg-type]
    assert int(root.get("skipped")) == sum(1 for c in root.iter("testcase") if c.find("skipped") is not None)  # type: ignore[arg-type]


RULE_WARNS = ("      source: test\n      severity: high\n"
              "      message: {zh: \"逾期{dpd}天\", en: \"{dpd} days overdue\"}\n")


@pytest.mark.parametrize(("cases", "status"), [
    pytest.param([(LATE, "{warnings_include: [late]}"), (HEALTHY, "{warnings_exclude: [late]}")], "covered",
                 id="its-warning-pins-the-rule"),
    pytest.param([(LATE, "{warnings: [late]}"), (HEALTHY, "{floors: []}")], "covered", id="warning-and-floor-lists"),
    pytest.param([(LATE, "{warnings_include: [late]}"), (HEALTHY, "{grade: bad}")], "incidental",
                 id="pinned-one-way"),
])
def test_a_rule_that_warns_is_one_rule_in_coverage(tmp_path: Path, cases: list[tuple[str, str]], status: str) -> None:
    suite = _suite(tmp_path, cases)
    policy_file = suite / "policy-1.0.0.yaml"
    text = policy_file.read_text(encoding="utf-8")
    policy_file.write_text(text.replace("      source: test\n", RULE_WARNS), encoding="utf-8")
    run = run_tests([suite])
    assert run.diagnostics == []
    assert run.failed == (1 if status == "incidental" else 0)  # {grade: bad} fails on the healthy client
    rules = {(r.kind, r.rule): r for r in coverage(run)["mini@1.0.0"]}
    assert ("warning", "late") not in rules  # counted once, as the rule
    assert rules[("floor", "late")].status == status
    assert rules[("floor", "late")].line == 1 + text.splitlines().index("    - id: late")


def test_a_coverage_gate_over_no_test_is_not_met(tmp_path: Path) -> None:
    """A folder with no test file is no-tests (exit 2), and the report beside it said the gate was met (found by a
    CI review): nothing was measured, so nothing met it."""
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(main, ["--policies", str(tmp_path / "empty"), "test", "--coverage", "--min-coverage", "100",
                                  "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 2
    report = json.loads(r.stdout)
    assert [e["code"] for e in report["errors"]] == ["no-tests"]
    assert report["min_coverage"] == {"required": 100.0, "met": False, "below": []}
