"""validate recognises policy test files and scenarios, and flags a file name whose version disagrees."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import CURRENT, POLICIES, REFERENCE, ROOT


def _validate(*paths: Path) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "validate", *map(str, paths), "--format", "json"],
                              catch_exceptions=False)


def _codes(r: Any) -> list[tuple[str, str, str]]:
    return [(Path(f["file"]).name, d["severity"], d["code"]) for f in json.loads(r.stdout)["files"]
            for d in f["diagnostics"]]


def test_a_test_file_and_a_scenario_are_checked_as_what_they_are() -> None:
    r = _validate(REFERENCE / "tests" / "actions.yaml", ROOT / "scenarios" / "collateral-crash.yaml")
    assert r.exit_code == 0, r.stdout
    assert _codes(r) == [("actions.yaml", "info", "policy-test-file"), ("collateral-crash.yaml", "info",
                                                                         "scenario-file")]
    text = CliRunner().invoke(main, ["validate", str(REFERENCE / "tests" / "actions.yaml"), "--format", "text"])
    assert f"`policy-engine test {REFERENCE / 'tests' / 'actions.yaml'}` runs its cases" in text.stderr


def test_a_broken_test_file_gets_its_own_errors_not_a_policys(tmp_path: Path) -> None:
    f = tmp_path / "cases.yaml"
    f.write_text("policy: loss-client-management\ncases:\n  - name: x\n    client: a.json\n    expct: {grade: pass}\n",
                 encoding="utf-8")
    r = _validate(f)
    assert r.exit_code == 4
    diags = json.loads(r.stdout)["files"][0]["diagnostics"]
    errors = [d for d in diags if d["severity"] == "error"]
    assert errors and all(d["line"] >= 3 for d in errors)  # about the case, never "id is required"
    assert not any("'id'" in d["message"] for d in diags)


def test_a_broken_scenario_is_located(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("# yaml-language-server: $schema=../schemas/scenario.schema.json\nname: x\n"
                 "shocks:\n  - {field: loan.balance, multiply: 0.5, add: 3}\n", encoding="utf-8")
    r = _validate(f)
    assert r.exit_code == 4
    assert ("s.yaml", "error", "bad-scenario") in _codes(r)
    d = next(d for d in json.loads(r.stdout)["files"][0]["diagnostics"] if d["code"] == "bad-scenario")
    assert d["line"] == 4


def test_a_file_name_version_that_disagrees_is_a_warning(tmp_path: Path) -> None:
    wrong = tmp_path / "policy-1.2.0.yaml"
    shutil.copy(CURRENT, wrong)
    r = _validate(wrong)
    assert r.exit_code == 0  # a warning: the policy itself is valid
    [d] = json.loads(r.stdout)["files"][0]["diagnostics"]
    assert (d["severity"], d["code"], d["path"]) == ("warning", "file-name-version", "version")
    assert d["line"] == next(i for i, line in enumerate(CURRENT.read_text(encoding="utf-8").splitlines(), 1)
                             if line.startswith("version:"))
    assert "policy-1.1.0.yaml" in d["hint"]
    right = tmp_path / "policy-1.1.0.yaml"
    shutil.copy(CURRENT, right)
    assert json.loads(_validate(right).stdout)["files"][0]["diagnostics"] == []
    plain = tmp_path / "policy.yaml"
    shutil.copy(CURRENT, plain)
    assert json.loads(_validate(plain).stdout)["files"][0]["diagnostics"] == []


def _scaffold(tmp_path: Path) -> Path:
    """A policies folder made by `init --debtor`: a policy and a test file that pass."""
    r = CliRunner().invoke(main, ["--policies", str(tmp_path / "policies"), "init", "--debtor", "dd-policy"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return tmp_path / "policies"


def test_validate_of_a_folder_checks_its_test_files_names_as_test_does(tmp_path: Path) -> None:
    folder = _scaffold(tmp_path)
    cases = folder / "dd-policy" / "tests" / "basic.yaml"
    text = cases.read_text(encoding="utf-8")
    assert "      grade: pass\n" in text and "warnings: [late_payments]" in text
    cases.write_text(text.replace("      grade: pass\n", "      grade: 关注\n", 1)
                     .replace("warnings: [late_payments]", "warnings: [late_payment]"), encoding="utf-8")
    r = _validate(folder)
    assert r.exit_code == 4, r.stdout
    diags = {d["path"]: d for f in json.loads(r.stdout)["files"] for d in f["diagnostics"]}
    assert diags["cases[0].expect.grade"]["code"] == "unknown-name"
    assert diags["cases[0].expect.grade"]["hint"] == "'关注' is the label of grade special_mention: expectations " \
                                                     "name the id"
    assert diags["cases[3].expect.warnings[0]"]["hint"] == "did you mean 'late_payments'?"
    tested = CliRunner().invoke(main, ["test", str(folder), "--format", "json"], catch_exceptions=False)
    assert {d["path"] for d in json.loads(tested.stdout)["errors"]} == set(diags)  # the same as `test` finds


# (how the copy is laid out, the test file's codes, exit code): a test file named alone had its shape checked and was
# ok (exit 0) where validate of its folder found a warning id its policy lacks; its names are now checked against the
# policies `test` runs it against, and when those cannot be read a warning says only its shape was checked.
NAMED_ALONE = [
    pytest.param("in-its-policy", [("error", "unknown-name"), ("info", "policy-test-file")], 4, id="policy-found"),
    pytest.param("in-the-registry", [("error", "unknown-name"), ("info", "policy-test-file")], 4,
                 id="registry-holds-its-policy"),
    pytest.param("policy-broken", [("warning", "names-unchecked")], 0, id="policy-does-not-load"),
    pytest.param("no-policy", [("warning", "names-unchecked")], 0, id="no-policy-near"),
]


@pytest.mark.parametrize(("layout", "codes", "code"), NAMED_ALONE)
def test_a_test_file_named_alone_has_its_names_checked_when_its_policy_is_found(
        tmp_path: Path, layout: str, codes: list[tuple[str, str]], code: int) -> None:
    folder = _scaffold(tmp_path)
    cases = folder / "dd-policy" / "tests" / "basic.yaml"
    text = cases.read_text(encoding="utf-8")
    assert "warnings: [late_payments]" in text
    cases.write_text(text.replace("warnings: [late_payments]", "warnings: [late_payment]"), encoding="utf-8")
    if layout == "policy-broken":
        policy = folder / "dd-policy" / "policy-1.0.0.yaml"
        broken = policy.read_text(encoding="utf-8").replace("when: days_past_due > 90", "when: days_past_due >")
        policy.write_text(broken, encoding="utf-8")
    registry = folder
    if layout in ("in-the-registry", "no-policy"):  # a draft beside no policy: the registry's policy it names, if any
        drafts = tmp_path / "drafts"
        shutil.copytree(folder / "dd-policy" / "samples", drafts / "samples")  # its clients where it names them
        (drafts / "tests").mkdir()
        cases = shutil.move(cases, drafts / "tests" / "basic.yaml")
        registry = drafts if layout == "no-policy" else folder
    r = CliRunner().invoke(main, ["--policies", str(registry), "validate", str(cases), "--format", "json"],
                           catch_exceptions=False)
    assert r.exit_code == code, r.stdout
    [checked] = json.loads(r.stdout)["files"]
    assert [(d["severity"], d["code"]) for d in checked["diagnostics"]] == codes
    if layout == "in-its-policy":  # as validate of the folder finds it, at its place
        whole = _validate(folder)
        assert [d for f in json.loads(whole.stdout)["files"] for d in f["diagnostics"]] == checked["diagnostics"][:1]
    text_report = CliRunner().invoke(main, ["--policies", str(registry), "validate", str(cases), "--format", "text"],
                                     catch_exceptions=False).stderr
    assert ("only the shape of this policy test file was checked" in text_report) is (code == 0)


@pytest.mark.parametrize(("where", "written", "hint"), [
    ("metrics: {nonperforming_share: 0.0}", 'metrics: {nonperforming_share: "0.0"}', "write the number without quotes"),
    ("metrics: {nonperforming_share: 0.0}", "metrics: {nonperforming_share: 20%}", "a share is a number: 20% is 0.2"),
    ("E2: {floors_include: [overdue_over_90]}", "E2: {floors_include: [overdue_over_90], metrics: {late_payments: "
     "'0'}}", "write the number without quotes"),
])
def test_a_metric_expected_as_text_is_an_error_of_the_test_file(tmp_path: Path, where: str, written: str,
                                                                 hint: str) -> None:
    """``nonperforming_share: "0.0"`` could never pass, and the failure read as a match (expected "0.0", got 0.0)."""
    folder = _scaffold(tmp_path)
    cases = folder / "dd-policy" / "tests" / "basic.yaml"
    text = cases.read_text(encoding="utf-8")
    assert where in text
    cases.write_text(text.replace(where, written, 1), encoding="utf-8")
    r = _validate(folder)
    assert r.exit_code == 4, r.stdout
    [diag] = [d for f in json.loads(r.stdout)["files"] for d in f["diagnostics"]]
    assert (diag["code"], diag["hint"]) == ("wrong-type", hint) and "no value of it equals" in diag["message"]
    tested = CliRunner().invoke(main, ["test", str(folder), "--format", "json"], catch_exceptions=False)
    assert tested.exit_code == 4 and [e["path"] for e in json.loads(tested.stdout)["errors"]] == [diag["path"]]


def test_a_test_file_of_an_invalid_policy_gets_no_follow_on_error(tmp_path: Path) -> None:
    folder = _scaffold(tmp_path)
    policy = folder / "dd-policy" / "policy-1.0.0.yaml"
    policy.write_text(policy.read_text(encoding="utf-8").replace("when: days_past_due > 90", "when: days_past_due >"),
                      encoding="utf-8")
    r = _validate(folder)
    assert r.exit_code == 4
    assert [(name, code) for name, sev, code in _codes(r) if sev == "error"] == [("policy-1.0.0.yaml",
                                                                                  "expression-syntax")]


def test_a_folder_of_test_files_without_their_policy_is_invalid_as_test_finds(tmp_path: Path) -> None:
    """Test files copied without the policy: validate said ok (exit 0) where test refuses every file."""
    shutil.copytree(REFERENCE / "tests-2.0.0", tmp_path / "loss-client-management" / "tests-2.0.0")
    r = CliRunner().invoke(main, ["--policies", str(tmp_path), "validate", "--format", "json"],
                           catch_exceptions=False)
    assert r.exit_code == 4, r.stdout
    codes = {(Path(f["file"]).name, d["code"], d["line"]) for f in json.loads(r.stdout)["files"]
             for d in f["diagnostics"]}
    assert ("observation.yaml", "unknown-policy", 2) in codes
    tested = CliRunner().invoke(main, ["--policies", str(tmp_path), "test", "--format", "json"],
                                catch_exceptions=False)
    assert tested.exit_code == 4
    assert {(Path(e["file"]).name, e["code"], e["line"]) for e in json.loads(tested.stdout)["errors"]} == codes


def test_a_policy_s_tests_folder_given_alone_is_checked_against_the_registry() -> None:
    r = _validate(REFERENCE / "tests-2.0.0")
    assert r.exit_code == 0, r.stdout
    assert {d["code"] for f in json.loads(r.stdout)["files"] for d in f["diagnostics"]} <= {"policy-test-file"}


def test_a_valid_file_with_warnings_has_its_ok_line_in_text(tmp_path: Path) -> None:
    """The text report lists each file: one with warnings only printed them and no line of its own, though it
    counted among the valid ones."""
    folder = _scaffold(tmp_path)
    policy = folder / "dd-policy" / "policy-1.0.0.yaml"
    text = policy.read_text(encoding="utf-8")
    assert "    informational: true\n" in text
    policy.write_text(text.replace("    informational: true\n", "", 1), encoding="utf-8")  # months_on_book unused
    r = CliRunner().invoke(main, ["--policies", str(folder), "validate", "--format", "text"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    lines = r.stderr.splitlines()
    assert any("warning: metric-unused" in line for line in lines)
    assert f"ok  {policy}  (dd-policy@1.0.0, 1 warning)" in lines and lines[-1].startswith("2 valid, 0 invalid")


@pytest.mark.parametrize(("text", "codes"), [
    ("foo: 1\n", ["unknown-file-kind"]),  # notes, a CI file: said as such
    ("# just notes\n- a\n- b\n", None),  # a list: a test file's shape gone wrong, its schema says how
    ("polcy: dd-policy\ncasess: []\n", ["unknown-key", "unknown-key"]),  # a misspelt test file keeps did-you-mean
])
def test_a_yaml_file_of_no_kind_in_the_policies_folder_is_named_as_such(tmp_path: Path, text: str,
                                                                        codes: list[str] | None) -> None:
    """notes.yaml beside a policy was read as a test file: 'unknown key foo ... allowed keys: policy, versions,
    description, cases', and 'policy' and 'cases' missing (found by a CI review)."""
    folder = _scaffold(tmp_path)
    stray = folder / "dd-policy" / "notes.yaml"
    stray.write_text(text, encoding="utf-8")
    r = _validate(folder)
    assert r.exit_code == 4
    found = [d for f in json.loads(r.stdout)["files"] if f["file"].endswith("notes.yaml") for d in f["diagnostics"]
             if d["severity"] == "error"]
    if codes is None:
        assert found and all(d["code"] != "unknown-file-kind" for d in found)
        return
    assert [d["code"] for d in found][:len(codes)] == codes
    tested = CliRunner().invoke(main, ["test", str(folder), "--format", "json"], catch_exceptions=False)
    assert tested.exit_code == 4
    said = [e["code"] for e in json.loads(tested.stdout)["errors"] if e["file"].endswith("notes.yaml")]
    assert said[:len(codes)] == codes
    if codes == ["unknown-file-kind"]:
        assert "move it out of the policies folder" in found[0]["hint"]


# (the file named to validate, what it is said to be): read as YAML, a CSV was one string ("a policy is a mapping of
# keys", exit 4, "kind": "policy"), a client record a dozen missing policy keys; each is a usage error named as what it
# is, with the command that reads it (exit 2, not-a-policy, as a test file given as -p is).
NOT_A_POLICY = [
    pytest.param(REFERENCE / "samples" / "portfolio.csv", "a portfolio table (CSV)", "batch", id="csv"),
    pytest.param(REFERENCE / "samples" / "portfolio.jsonl", "a portfolio of JSON Lines", "batch", id="jsonl"),
    pytest.param("portfolio.parquet", "a portfolio table (Parquet)", "batch", id="parquet"),
    pytest.param("portfolio.xlsx", "a portfolio spreadsheet (Excel)", "batch", id="xlsx"),
    pytest.param(REFERENCE / "samples" / "clients" / "01-pass-healthy-manufacturer.json", "a client record", "-c",
                 id="client-record"),
]


@pytest.mark.parametrize(("named", "what", "reader"), NOT_A_POLICY)
def test_a_data_file_named_to_validate_is_refused_as_what_it_is(tmp_path: Path, named: Path | str, what: str,
                                                                reader: str) -> None:
    if isinstance(named, str):  # bytes no YAML reader takes: refused by its name before it is read
        named = tmp_path / named
        named.write_bytes(b"PAR1\x00\x15\x04\xff\xfe" * 8)
    for fmt in ("json", "text"):
        r = CliRunner().invoke(main, ["--policies", str(POLICIES), "validate", str(named), "--format", fmt],
                               catch_exceptions=False)
        assert r.exit_code == 2, r.output
        assert r.stdout == ""  # no report calling it a policy
        if fmt == "json":
            [error] = json.loads(r.stderr)["errors"]
            assert error["code"] == "not-a-policy" and error["message"] == f"{named} is {what}, not a policy"
            assert reader in error["hint"]
        else:
            assert f"error: not-a-policy: {named} is {what}" in r.stderr


def test_every_portfolio_format_batch_reads_is_refused_where_a_policy_belongs() -> None:
    from policy_engine.policy.kinds import PORTFOLIO_FILES
    from policy_engine.portfolio.batch import READ_FORMATS

    assert set(PORTFOLIO_FILES) == set(READ_FORMATS)
