"""The CLI contract: exit codes, stdout for machines, stderr for people, no tracebacks."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from policy_engine.cli import main
from policy_engine.policy.schemas import load_schema

from ..conftest import DATA, POLICIES, REFERENCE, ROOT, SAMPLES

SAMPLE = str(SAMPLES[1])  # the manufacturer case study
DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))  # client record 2.0, decided by 2.0.0
CURRENT = str(REFERENCE / "policy-1.1.0.yaml")


def run(*args: str, stdin: str | None = None) -> object:
    runner = CliRunner()
    return runner.invoke(main, ["--policies", str(POLICIES), *args], input=stdin, catch_exceptions=False)


def test_validate_clean_registry_exits_0() -> None:
    r = run("validate", "--format", "json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    # loss-client-management 1.0.0, 1.1.0, 2.0.0, 2.0.1, 2.0.2, 2.1.0, the module financial-difficulty 1.0.0-1.4.0,
    # and the test files, each entry of one shape
    kinds = [f["kind"] for f in out["files"]]
    assert out["ok"] is True and kinds.count("policy") == 6 and kinds.count("module") == 5
    assert kinds.count("policy-tests") == len([f for f in (POLICIES / "loss-client-management").rglob("*.yaml")
                                               if not f.name.startswith("policy")])
    assert {tuple(f) for f in out["files"]} == {("file", "kind", "ok", "policy", "module", "diagnostics")}


def test_validate_of_a_folder_checks_its_test_files_as_test_reads_them(tmp_path: Path) -> None:
    """A misspelt key in a test file failed only at `test`; a pre-commit hook running validate let it through."""
    root = tmp_path / "policies"
    shutil.copytree(POLICIES, root)
    cases = root / "loss-client-management" / "tests-2.0.0" / "overdue.yaml"
    text = cases.read_text(encoding="utf-8")
    cases.write_text(text.replace("    expect:", "    expekt:", 1), encoding="utf-8")
    (root / "loss-client-management" / "draft.yaml").write_text("id: x\nversion: 1.0.0\n", encoding="utf-8")
    r = run("--policies", str(root), "validate", "--format", "text")
    assert r.exit_code == 4
    assert f"{cases}:" in r.stderr and "unknown-key: unknown key 'expekt'" in r.stderr
    assert "warning: policy-not-loaded: draft.yaml reads as a policy, but only files named policy-*.yaml" in r.stderr
    assert "policy-test-file" not in r.stderr  # the note for a file named alone is not repeated per file
    assert r.stderr.rstrip().endswith(", 1 invalid, 1 not loaded")  # the draft is not counted valid


def test_validate_reports_every_broken_file_and_exits_4() -> None:
    files = sorted((DATA / "broken_policies").glob("*.yaml"))[:5]
    r = run("validate", "--format", "text", *map(str, files))
    assert r.exit_code == 4
    assert r.stderr.count("error:") >= 5
    assert "0 valid, 5 invalid" in r.stderr


def test_validate_json_carries_codes_and_lines() -> None:
    r = run("validate", "--format", "json", str(DATA / "broken_policies" / "unknown-name.yaml"))
    assert r.exit_code == 4
    d = json.loads(r.stdout)["files"][0]["diagnostics"][0]
    assert (d["code"], d["line"], d["hint"]) == ("unknown-name", 42, "did you mean 'dpd'?")


# (format arguments, what stderr holds): exit 4 is said on stderr, as `test` says it: one JSON document with --format
# json asked, else lines at each problem's place (stderr was empty beside a report on stdout)
VALIDATE_STDERR = [
    pytest.param(["--format", "json"], "json", id="json-asked"),
    pytest.param([], "lines", id="piped"),
    pytest.param(["--format", "junit"], "lines", id="junit"),
    pytest.param(["--format", "github"], "lines", id="github"),
    pytest.param(["--format", "text"], "lines", id="text"),
]


@pytest.mark.parametrize(("args", "said"), VALIDATE_STDERR)
def test_validate_says_on_stderr_why_it_exits_4(args: list[str], said: str) -> None:
    broken = str(DATA / "broken_policies" / "unknown-name.yaml")
    r = run("validate", *args, CURRENT, broken)
    assert r.exit_code == 4
    if said == "json":
        assert json.loads(r.stderr) == {"ok": False, "errors": [{
            "code": "files-invalid", "message": "1 of 2 file(s) invalid: the report's diagnostics name each problem",
            "hint": "validate --format text lists each problem at its file:line:col", "severity": "error"}]}
        assert json.loads(r.stdout)["ok"] is False  # the report is stdout's, as it was
    else:
        assert f"{broken}:42:13: error: unknown-name: unknown name 'dppd'" in r.stderr, r.stderr
        assert r.stderr.rstrip().endswith("1 valid, 1 invalid") or args != ["--format", "github"]


def test_validate_missing_path_is_a_usage_error() -> None:
    r = run("validate", "/no/such/dir")
    assert r.exit_code == 2


@pytest.mark.parametrize("command", ["validate", "test"])
def test_no_path_and_no_policy_directory_says_how_to_name_one(command: str, tmp_path: Path) -> None:
    """Run from inside a policy's own folder, the default 'policies' is not there: the error names the
    directory it looked for and the two ways out (paths, or --policies)."""
    r = CliRunner().invoke(main, ["--policies", str(tmp_path / "policies"), command], catch_exceptions=False)
    assert r.exit_code == 2
    assert f"policy directory '{tmp_path / 'policies'}' does not exist" in r.stderr
    assert "name policy files or folders, or pass --policies DIR" in r.stderr


def test_decide_by_id_picks_the_version_in_force_and_validates_against_the_schema() -> None:
    r = run("decide", "-p", "loss-client-management", "-c", SAMPLE, "--trace")
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert list(Draft202012Validator(load_schema("decision")).iter_errors(record)) == []
    assert record["policy"]["version"] == "1.1.0"
    assert record["classification"]["grade"] == "special_mention"
    assert "trace" in record


def test_decide_as_of_selects_an_older_version() -> None:
    client = json.loads(Path(SAMPLE).read_text(encoding="utf-8"))
    client["financials"] = client["financials"][:1]  # known on 2024-12-31: the statement of 2024-09-30
    r = run("decide", "-p", "loss-client-management", "-c", "-", "--as-of", "2024-12-31", stdin=json.dumps(client))
    assert json.loads(r.stdout)["policy"]["version"] == "1.0.0"
    r = run("decide", "-p", "loss-client-management", "--policy-version", "1.0.0", "-c", SAMPLE)
    assert json.loads(r.stdout)["policy"]["version"] == "1.0.0"


@pytest.mark.parametrize("command", ["decide", "explain"])
def test_id_at_version_pins_a_version_as_in_impact(command: str) -> None:
    """ID@VERSION names a version wherever a policy is named (impact, generate and schema took it; decide did not)."""
    quiet = ("--no-audit",) if command == "decide" else ()
    r = run(command, "-p", "loss-client-management@1.0.0", "-c", SAMPLE, "--format", "json", *quiet)
    assert r.exit_code == 0, r.stderr

    def policy(out: str) -> dict[str, str]:
        d = json.loads(out)
        return dict((d["decision"] if command == "explain" else d)["policy"])  # explain: the text and the decision

    assert policy(r.stdout)["version"] == "1.0.0"
    same = run(command, "-p", "loss-client-management@1.0.0", "--policy-version", "1.0.0", "-c", SAMPLE,
               "--format", "json", *quiet)
    assert same.exit_code == 0 and policy(same.stdout) == policy(r.stdout)


@pytest.mark.parametrize(("args", "says"), [
    (("-p", "loss-client-management@9.9.9"), "error: unknown-version: loss-client-management has no version 9.9.9"),
    (("-p", "loss-client-management@1.1.0", "--policy-version", "1.0.0"), "pins 1.1.0, --policy-version says 1.0.0"),
    (("-p", "@1.1.0"), "write ID@VERSION"),
    (("-p", "no-such-policy"), "error: unknown-policy: no policy 'no-such-policy'"),
])
def test_a_policy_named_wrong_is_a_usage_error_without_a_made_up_place(args: tuple[str, ...], says: str) -> None:
    r = run("decide", *args, "-c", SAMPLE, "--no-audit")
    assert r.exit_code == 2 and says in r.stderr, r.stderr
    assert "<input>" not in r.stderr and "Traceback" not in r.stderr


def test_a_statement_after_the_as_of_date_is_refused_on_both_paths(tmp_path: Path) -> None:
    # A decision as of a day can only use what was known then; later quarters would make it unrepeatable.
    r = run("decide", "-p", "loss-client-management", "-c", SAMPLE, "--as-of", "2025-04-15", "--no-audit")
    assert r.exit_code == 3
    message = ("2025-06-30 is after the as-of date 2025-04-15: a decision as of that day can only use what was "
               "known then")
    assert f"{message} [at financials[3].period_end]" in r.stderr
    b = run("batch", str(REFERENCE / "samples" / "portfolio.csv"), "-p", "loss-client-management", "--as-of",
            "2025-04-15", "--rejects", str(tmp_path / "r.jsonl"), "--format", "json", "--no-audit")
    lines = (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()
    rejects = {x["client_id"]: x["problems"] for x in map(json.loads, lines)}
    assert {"field": "financials[3].period_end", "code": "bad-field", "message": message} in rejects["C002"]
    assert json.loads(b.stdout)["accounting"]["rejected"] == len(rejects) > 0


def test_decide_reads_stdin_and_a_policy_path() -> None:
    r = run("decide", "-p", CURRENT, "-c", "-", stdin=Path(SAMPLE).read_text(encoding="utf-8"))
    assert r.exit_code == 0
    assert json.loads(r.stdout)["client_id"] == "C002"


def test_invalid_client_exits_3_listing_every_field() -> None:
    bad = DATA / "broken_clients" / "many-problems-at-once.json"
    r = run("decide", "-p", CURRENT, "-c", str(bad))
    assert r.exit_code == 3
    assert r.stdout == ""
    for field in ("[at industry]", "[at loan.balance]", "[at events.assets_seized]"):
        assert field in r.stderr
    assert "Traceback" not in r.stderr


def test_invalid_client_errors_as_json() -> None:
    bad = DATA / "broken_clients" / "unknown-industry.json"
    r = run("decide", "-p", CURRENT, "-c", str(bad), "--format", "json")
    assert r.exit_code == 3
    err = json.loads(r.stderr)
    assert err["ok"] is False and err["errors"][0]["path"] == "industry"
    assert "unknown value 'mining'" in err["errors"][0]["message"]


@pytest.mark.parametrize("name", ["nan-value.json", "duplicate-key.json", "truncated-json.json"])
def test_malformed_json_exits_3(name: str) -> None:
    r = run("decide", "-p", CURRENT, "-c", str(DATA / "broken_clients" / name))
    assert r.exit_code == 3
    assert "bad-json" in r.stderr


@pytest.mark.parametrize(("args", "code"), [
    (("decide", "-p", "no-such-policy", "-c", SAMPLE), 2),
    (("decide", "-p", "loss-client-management", "--policy-version", "7.0.0", "-c", SAMPLE), 2),
    (("decide", "-p", "loss-client-management", "-c", "/no/such/file.json"), 2),
    (("decide", "-p", "loss-client-management", "-c", SAMPLE, "--as-of", "yesterday"), 2),
    (("decide", "-p", "/no/policy.yaml", "-c", SAMPLE), 2),
    (("decide", "-p", str(DATA / "broken_policies" / "metric-cycle.yaml"), "-c", SAMPLE), 4),
    (("decide", "--bogus"), 2),
])
def test_exit_codes(args: tuple[str, ...], code: int) -> None:
    r = run(*args)
    assert r.exit_code == code, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr


def test_explain_in_chinese_and_english() -> None:
    zh = run("explain", "-p", "loss-client-management", "-c", SAMPLE, "--lang", "zh")
    assert zh.exit_code == 0
    assert "\n分类：关注" in zh.stdout and "监管后果" in zh.stdout and "展期" in zh.stdout
    en = run("explain", "-p", "loss-client-management", "-c", SAMPLE)
    assert "Grade: Special mention" in en.stdout and "Regulatory consequence" in en.stdout
    # actions by their catalogue name in the reader's language, the policy's id beside it, and their
    # parameters as a banker writes them (the catalogue's words, never name=value)
    assert "1. 展期 [extend_term]：展期12个月" in zh.stdout
    assert "1. Extend the term [extend_term]: by 12 months" in en.stdout
    assert "[reprice_down]：下调50个基点" in zh.stdout and "[reprice_down]: cut the rate by 50 bp" in en.stdout
    assert "rate_change_bp" not in zh.stdout + en.stdout and "months=" not in zh.stdout + en.stdout


def test_explain_in_chinese_says_why_a_metric_has_no_value_in_chinese() -> None:
    missing = str(REFERENCE / "samples" / "clients" / "19-missing-financials.json")
    zh = run("explain", "-p", "loss-client-management", "-c", missing, "--lang", "zh").stdout
    assert "  - 净利率（net_margin）：依赖 近四季净利润（net_income_ttm）（缺少输入：net_income_q）" in zh
    en = run("explain", "-p", "loss-client-management", "-c", missing).stdout
    assert ("  - Net margin (net_margin): depends on Net income (trailing 4 quarters) (net_income_ttm) (missing input: "
            "net_income_q)") in en


def test_decide_text_format_is_the_explanation() -> None:
    r = run("decide", "-p", "loss-client-management", "-c", SAMPLE, "--format", "text")
    assert r.stdout.startswith("Client C002")


def test_test_command_passes_on_the_reference_policy() -> None:
    r = run("test", str(REFERENCE), "--format", "json")
    assert r.exit_code == 0
    out = json.loads(r.stdout)
    assert out["failed"] == 0 and out["passed"] >= 80


def _failing_suite(folder: Path) -> None:
    """The mini policy and one case that fails (the client has no figures, so it grades 'bad')."""
    (folder / "policy-1.0.0.yaml").write_text((DATA / "mini-policy.yaml").read_text(encoding="utf-8"))
    (folder / "cases.yaml").write_text(
        "policy: mini\ncases:\n  - name: fails\n    client: {client_id: A, industry: trade, loan: {days_past_due: 0}}\n"
        "    expect: {grade: good}\n")


def test_test_command_exits_1_on_a_failing_case(tmp_path: Path) -> None:
    _failing_suite(tmp_path)
    r = run("test", str(tmp_path), "--format", "text")
    assert r.exit_code == 1
    assert "FAIL" in r.stdout and "expected 'good', got 'bad'" in r.stdout
    assert "0 passed, 1 failed" in r.stdout


def test_test_command_exits_4_on_a_broken_test_file(tmp_path: Path) -> None:
    (tmp_path / "policy-1.0.0.yaml").write_text((DATA / "mini-policy.yaml").read_text(encoding="utf-8"))
    (tmp_path / "cases.yaml").write_text("policy: mini\ncases: [}\n")
    assert run("test", str(tmp_path)).exit_code == 4


def test_schema_command_prints_the_schema() -> None:
    r = run("schema", "policy")
    assert json.loads(r.stdout)["title"] == "policy_engine policy"


def test_functions_and_catalogue_are_listed() -> None:
    assert "streak(series, 'op', x)" in run("functions").stdout
    assert "a restructuring when granted" in run("catalogue").stdout


# ---- through a real process --------------------------------------------------

ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def test_root_cli_py_runs_in_a_checkout() -> None:
    p = subprocess.run([sys.executable, "cli.py", "decide", "-p", "loss-client-management", "-c", SAMPLE],
                       cwd=ROOT, capture_output=True, text=True, env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["classification"]["grade"] == "special_mention"


def test_console_script_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("policy-engine")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "policy_engine.cli"]
    bad = tmp_path / "c.json"
    bad.write_text('{"client_id": "X", "loan": {"balance": NaN}}')
    p = subprocess.run([*cmd, "decide", "-p", "loss-client-management", "-c", str(bad)], cwd=ROOT,
                       capture_output=True, text=True, env=ENV, timeout=60)
    assert p.returncode == 3
    assert "NaN is not a valid number" in p.stderr and "Traceback" not in p.stderr


def test_a_reader_that_goes_away_mid_stream_is_exit_141_not_success() -> None:
    """`decide --stream | head -1` (or a consumer that died) exited 0 with every later line undecided: a supervisor or
    `set -o pipefail` read success. Now 141, as a shell reports a tool its reader left, and nothing more said."""
    line = json.dumps(json.loads((ROOT / SAMPLE).read_text(encoding="utf-8"))) + "\n"
    p = subprocess.Popen([sys.executable, "cli.py", "decide", "--no-audit", "-p", "loss-client-management", "--stream",
                          "--format", "json"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    assert p.stdin is not None and p.stdout is not None and p.stderr is not None
    feeder = threading.Thread(target=_feed, args=(p.stdin, (line * 300).encode()))  # far more than a pipe holds
    feeder.start()
    assert json.loads(p.stdout.readline())["client_id"]
    p.stdout.close()
    assert p.wait(timeout=60) == 141
    feeder.join(timeout=60)
    said = p.stderr.read()
    p.stderr.close()
    assert said == b""


@pytest.mark.parametrize("fmt", ["json", "text"])
@pytest.mark.parametrize("stderr", ["closed", "full"])
def test_a_stream_whose_stderr_cannot_be_written_answers_every_line(fmt: str, stderr: str) -> None:
    """A daemon with stderr closed (or on a full disk) lost every answer from the first warning on: exit 5 with
    --format json, exit 1 otherwise (a CI-integration review). A warning is said where it can be; the answers go on."""
    debtor = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text(encoding="utf-8"))
    misspelt = {k: v for k, v in debtor.items() if k != "events"} | {"evnets": [{"kind": "litigation",
                                                                           "date": "2026-05-01"}]}
    lines = [json.dumps(debtor), json.dumps(misspelt), json.dumps(debtor)]  # the second warns
    with open(os.devnull if stderr == "closed" else "/dev/full", "wb") as err:
        p = subprocess.run([sys.executable, "cli.py", "decide", "--no-audit", "-p", "loss-client-management",
                            "--stream", "--format", fmt], cwd=ROOT, input="\n".join(lines) + "\n", text=True,
                           stdout=subprocess.PIPE, stderr=err, env=ENV, timeout=60,
                           preexec_fn=(lambda: os.close(2)) if stderr == "closed" else None)
    assert p.returncode == 0
    assert [json.loads(line)["client_id"] for line in p.stdout.splitlines()] == [debtor["client_id"]] * 3


def _feed(stdin: Any, data: bytes) -> None:
    """Write a stream's input beside the reader (the process stops reading once its reader is gone)."""
    with contextlib.suppress(BrokenPipeError):
        stdin.write(data)
    with contextlib.suppress(BrokenPipeError):
        stdin.close()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_closed_stdout_is_a_usage_error_not_a_lost_report(fmt: str) -> None:
    """Started with stdout closed (>&- in a pipeline script), validate ended in an internal error, or with
    --format json exited 0 with its report gone."""
    p = subprocess.run([sys.executable, "cli.py", "validate", "--format", fmt], cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env=ENV, timeout=60, preexec_fn=lambda: os.close(1))
    assert p.returncode == 2, p.stderr
    said = json.loads(p.stderr)["errors"][0]["code"] if fmt == "json" else p.stderr
    assert "stdout-closed" in said and "internal-error" not in p.stderr


def test_help_lists_the_commands_and_exit_codes() -> None:
    p = subprocess.run([sys.executable, "cli.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                       env=ENV, timeout=60)
    assert p.returncode == 0
    for word in ("validate", "decide", "explain", "test", "schema", "Exit codes"):
        assert word in p.stdout


def test_demo_decides_records_verifies_and_replays_the_samples() -> None:
    p = subprocess.run([sys.executable, "-m", "policy_engine.demo"], cwd=ROOT, capture_output=True, text=True,
                       env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr
    assert f"{len(SAMPLES)} clients and {len(DEBTORS)} debtors decided and recorded" in p.stdout
    assert "intact" in p.stdout and f"{len(SAMPLES) + len(DEBTORS)} identical, 0 different" in p.stdout
    assert "by grade: pass=4, special_mention=6, substandard=5, doubtful=3, loss=3" in p.stdout


def test_demo_with_a_store_that_is_not_ours_says_so_without_a_traceback(tmp_path: Path) -> None:
    foreign = tmp_path / "audit.db"
    foreign.write_text("not a database", encoding="utf-8")
    p = subprocess.run([sys.executable, "-m", "policy_engine.demo"], cwd=ROOT, capture_output=True, text=True,
                       env={**ENV, "POLICY_ENGINE_AUDIT_DB": str(foreign)}, timeout=120)
    assert p.returncode == 6 and "Traceback" not in p.stderr
    assert f"{len(SAMPLES)} clients and {len(DEBTORS)} debtors decided; not recorded:" in p.stderr
    assert "not a decision store" in p.stderr


def test_test_command_on_a_missing_path_is_a_usage_error(tmp_path: Path) -> None:
    assert run("test", str(tmp_path / "nope")).exit_code == 2


def test_validate_and_test_speak_junit_and_github(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    broken = str(DATA / "broken_policies" / "unknown-name.yaml")
    r = run("validate", "--format", "junit", CURRENT, broken)
    assert r.exit_code == 4
    root = ET.fromstring(r.stdout)
    assert root.get("tests") == "2" and root.get("failures") == "1"
    assert "unknown-name" in root.find(".//failure").get("message")  # type: ignore[union-attr]
    r = run("validate", "--format", "github", broken)
    shown = os.path.relpath(broken)  # GitHub attaches an annotation by its path in the checkout
    assert r.stdout.startswith(f"::error file={shown},line=42,col=13,title=unknown-name::unknown name 'dppd'")
    r = run("test", str(REFERENCE), "--format", "junit")
    assert r.exit_code == 0
    assert int(ET.fromstring(r.stdout).get("tests")) >= 160  # type: ignore[arg-type]
    _failing_suite(tmp_path)
    r = run("test", str(tmp_path), "--format", "github")
    assert r.exit_code == 1
    # on the line of the failing expectation (the case's own line is 3)
    assert f"::error file={tmp_path / 'cases.yaml'},line=5,title=policy test failed::[mini@1.0.0] fails: grade: " \
        "expected" in r.stdout
    r = run("test", str(tmp_path), "--format", "junit")
    failure = ET.fromstring(r.stdout).find(".//failure")
    assert failure is not None and failure.get("message", "").startswith("grade: expected")
    assert (failure.text or "").startswith("line 5: grade: expected")


def test_a_misspelt_optional_field_is_named_not_silently_read_as_missing() -> None:
    client = json.loads(Path(SAMPLE).read_text(encoding="utf-8"))
    client["loan"]["collateral_value_at_orgination"] = client["loan"].pop("collateral_value_at_origination")
    r = run("decide", "-p", "loss-client-management", "-c", "-", "--no-audit", stdin=json.dumps(client))
    assert r.exit_code == 0  # optional: decided, its rules see null ...
    assert ("warning: field 'loan.collateral_value_at_orgination' is not read by policy loss-client-management; "
            "did you mean 'loan.collateral_value_at_origination'?") in r.stderr  # ... and the user is told why


def _rename(item: dict[str, Any], old: str, new: str) -> None:
    item[new] = item.pop(old)


@pytest.mark.parametrize(("typo", "given", "meant", "code"), [
    (lambda d: [_rename(p, "paid_date", "paid_dte") for e in d["exposures"] for p in e["schedule"] if "paid_date" in p],
     "exposures[*].schedule[*].paid_dte", "exposures[*].schedule[*].paid_date", 0),  # every payment: named once
    (lambda d: _rename(d["exposures"][1]["collateral"], "value_at_origination", "value_at_orgination"),
     "exposures[1].collateral.value_at_orgination", "exposures[1].collateral.value_at_origination", 0),
    (lambda d: _rename(d["exposures"][1], "collateral", "colateral"),  # the object misspelt: named once
     "exposures[1].colateral", "exposures[1].collateral", 0),
    (lambda d: _rename(d["exposures"][0]["modifications"][0], "difficulty_assessed", "dificulty_assessed"),
     "exposures[0].modifications[0].dificulty_assessed", "exposures[0].modifications[0].difficulty_assessed",
     3),  # required: refused as missing, and the warning says why
])
def test_a_misspelt_field_of_an_exposure_or_payment_is_named(typo: Any, given: str, meant: str, code: int) -> None:
    debtor = json.loads(next(p for p in DEBTORS if p.name.startswith("13-")).read_text(encoding="utf-8"))
    typo(debtor)
    r = run("decide", "-p", "loss-client-management", "-c", "-", "--no-audit", stdin=json.dumps(debtor))
    assert r.exit_code == code, r.output  # an optional field: decided, its rules see null ...
    assert r.stderr.count("warning:") == 1, r.stderr
    assert (f"warning: field '{given}' is not read by policy loss-client-management; did you mean '{meant}'? "
            f"(as given, '{meant}' is missing)") in r.stderr  # ... and the user is told why


def test_a_field_misspelt_in_debtor_lines_is_named_once_by_batch(tmp_path: Path) -> None:
    lines = []
    for path in DEBTORS[:3]:
        debtor = json.loads(path.read_text(encoding="utf-8"))
        for e in debtor["exposures"]:
            for payment in e.get("schedule", []):
                if "paid_date" in payment:
                    _rename(payment, "paid_date", "paid_dte")
        lines.append(json.dumps(debtor, ensure_ascii=False))
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    r = run("--no-audit", "batch", str(tmp_path / "d.jsonl"), "-p", "loss-client-management", "--format", "json")
    assert r.exit_code == 0, r.output
    given, meant = "exposures[*].schedule[*].paid_dte", "exposures[*].schedule[*].paid_date"
    [note] = json.loads(r.stderr)["warnings"]  # --format json: one JSON document on stderr
    assert note["file"].endswith("d.jsonl") and note["message"].startswith(
        f"field '{given}' is not read by policy loss-client-management; did you mean '{meant}'?")
    assert json.loads(r.stdout)["misspelt_columns"] == [{"given": given, "did_you_mean": meant}]


def test_no_sample_has_a_field_that_looks_misspelt() -> None:
    from policy_engine.decide.inputs import misspelt_fields, record_fields
    from policy_engine.policy.registry import load_policy

    from ..conftest import CURRENT

    policy = load_policy(CURRENT)
    assert [f for p in SAMPLES for f in misspelt_fields(policy, record_fields(
        json.loads(p.read_text(encoding="utf-8"))))] == []
    scoped = load_policy(REFERENCE / "policy-2.0.0.yaml")
    assert [f for p in DEBTORS for f in misspelt_fields(scoped, record_fields(
        json.loads(p.read_text(encoding="utf-8"))))] == []


@pytest.mark.parametrize(("args", "code", "exit_code"), [
    (["decide", "-p", "loss-client-management", "-c", SAMPLE, "--as-of", "2026-02-30"], "usage", 2),
    (["decide", "-p", "loss-client-management", "-c", SAMPLE, "--no-such-option"], "usage", 2),
    (["batch", str(REFERENCE / "samples" / "portfolio.csv"), "-p", "loss-client-management", "--no-audit",
      "--out", "/no/such/folder/out.parquet"], "file-missing", 2),  # checked before anything is decided
])
def test_with_format_json_every_error_is_json_on_stderr(args: list[str], code: str, exit_code: int) -> None:
    """A calling system that asked for JSON reads its errors as JSON too: click's own usage errors (a bad option
    value, an unknown option) and a file that cannot be written, as every engine error."""
    r: Any = run(*args, "--format", "json")
    assert r.exit_code == exit_code
    errors = json.loads(r.stderr)["errors"]
    assert [e["code"] for e in errors] == [code] and errors[0]["message"]
    text: Any = run(*args)
    assert text.exit_code == exit_code and not text.stderr.lstrip().startswith("{")


@pytest.mark.parametrize("args", [
    ["decide", "-p", "loss-client-management", "-c", "/no/such/client.json"],
    ["test", "/no/such/folder"],
    ["validate", "/no/such/policy-1.0.0.yaml"],
    ["diff", "/no/such/policy-1.0.0.yaml", "loss-client-management@2.1.0"],
    ["impact", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--portfolio", "/no/such/p.csv"],
    ["batch", "/no/such/p.csv", "-p", "loss-client-management", "--no-audit"],
    ["convert", "/no/such/client.json", "--to", "2.0"],
], ids=lambda a: a[0])
def test_a_missing_file_is_one_code_for_every_command(args: list[str]) -> None:
    r: Any = run(*args, "--format", "json")
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "file-missing" and error["file"].startswith("/no/such/")


def test_an_internal_error_is_json_under_format_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from policy_engine import run as run_layer

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("a bug")

    monkeypatch.setattr(run_layer, "decide_client", broken)
    r: Any = run("decide", "-p", "loss-client-management", "-c", SAMPLE, "--format", "json")
    assert r.exit_code == 5
    (error,) = json.loads(r.stderr)["errors"]
    assert error["code"] == "internal-error" and error["message"] == "ValueError: a bug" and "report" in error["hint"]


@pytest.mark.parametrize("policy", [[], ["-p", "loss-client-management@2.0.0", "--as-of", "2026-09-30"]])
def test_a_negative_seed_is_a_usage_error_not_an_internal_one(tmp_path: Path, policy: list[str]) -> None:
    """numpy refuses a negative seed: it ended in exit 5 (internal-error), now the option's range says so."""
    r = CliRunner().invoke(main, ["generate", "--n", "5", "--seed", "-1", *policy, "--out",
                                  str(tmp_path / "g.jsonl")])
    assert r.exit_code == 2 and "--seed" in r.output and "0<=x" in r.output, r.output


def test_generate_tables_refuses_a_folder_holding_what_it_would_not_overwrite(tmp_path: Path) -> None:
    """A second run with fewer partitions left part-00002 of the first, which batch --engine dask then read with
    the new ones (9 debtors where 6 were written). A rerun of the same layout overwrites every file."""
    out = tmp_path / "ds"

    def gen(n: str, k: str, fmt: str = "csv") -> Any:
        return CliRunner().invoke(main, ["--policies", str(Path(__file__).parents[2] / "policies"), "generate", "-p",
                                         "loss-client-management@2.0.0", "--n", n, "--as-of", "2026-09-30",
                                         "--tables", fmt, "--partitions", k, "--out", str(out)])

    assert gen("9", "3").exit_code == 0
    again = gen("9", "3")
    assert again.exit_code == 0, again.output
    assert sum(len(p.read_text("utf-8").splitlines()) - 1 for p in out.glob("part-*/debtors.csv")) == 9
    fewer = gen("6", "2")
    assert fewer.exit_code == 2 and "holds part-00002" in fewer.output, fewer.output
    other = gen("9", "3", "parquet")
    assert other.exit_code == 2 and "part-00000/debtors.csv" in other.output, other.output
    assert len(list(out.glob("part-*"))) == 3 and not list(out.glob("part-*/*.parquet"))


@pytest.mark.parametrize(("args", "says"), [
    (["decide", "-p", "x", "-c", "y", "--policies", "policies"],
     "--policies is an option of policy-engine itself: give it before the command, policy-engine --policies VALUE "
     "decide ..."),
    (["audit", "verify", "--audit-db", "x.db"], "policy-engine --audit-db VALUE audit verify ..."),
    (["audit", "list", "--config", "c.toml", "--format", "json"], "policy-engine --config VALUE audit list ..."),
])
def test_a_global_option_after_the_command_says_where_it_goes(args: list[str], says: str) -> None:
    """click said the command had no such option and suggested --policy for --policies."""
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and says in r.stderr and "Did you mean" not in r.stderr, r.stderr


@pytest.mark.parametrize("name", ["lint", "check"])
def test_a_linter_s_name_is_pointed_at_validate(name: str) -> None:
    """The docs speak of static analysis; 'policy-engine lint' got click's "Did you mean 'init'?"."""
    r = CliRunner().invoke(main, [name])
    assert r.exit_code == 2 and f"No such command '{name}': the static analysis runs in validate" in r.stderr
    assert "Did you mean" not in r.stderr


def test_the_validate_hook_checks_the_test_files_beside_the_policies(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The README says a test file's mistake fails the validate hook: the hook runs validate on the folder (as
    pre-commit runs it, without file names), which checks test files as what they are."""
    import shlex

    import yaml

    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))}
    hook = hooks["policy-engine-validate"]
    assert hook["pass_filenames"] is False and hook["files"] == "\\.ya?ml$"
    folder = tmp_path / "policies" / "mini"
    folder.mkdir(parents=True)
    (folder / "policy-1.0.0.yaml").write_text((DATA / "mini-policy.yaml").read_text(encoding="utf-8"), "utf-8")
    (folder / "tests.yaml").write_text("policy: mini\ncases:\n  - name: x\n    client: {client_id: A}\n"
                                       "    expect: {warnings_include: [no_such_warning]}\n", "utf-8")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, shlex.split(hook["entry"])[1:])
    assert r.exit_code == 4 and "no_such_warning" in r.stdout + r.stderr, r.stdout + r.stderr


def test_an_interrupted_stream_exits_130_with_its_error_in_the_asked_format() -> None:
    """Ctrl-C on decide --stream printed click's 'Aborted!' and exited 1, the code of failed tests (hostile
    review): it is 130 (128 + SIGINT), with an 'interrupted' error, as JSON when JSON was asked for."""
    import os
    import signal
    import subprocess
    import sys

    from ..conftest import POLICIES, ROOT

    sample = next((POLICIES / "loss-client-management" / "samples" / "debtors").glob("*.json"))
    p = subprocess.Popen([sys.executable, "-m", "policy_engine", "--policies", str(POLICIES), "--no-audit", "decide",
                          "-p", "loss-client-management@2.0.0", "--stream", "--format", "json"], cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.stdin is not None and p.stdout is not None
    p.stdin.write(json.dumps(json.loads(sample.read_text(encoding="utf-8"))).encode() + b"\n")
    p.stdin.flush()
    assert b"decision_id" in p.stdout.readline()  # waiting for the next line now
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    (error,) = json.loads(err)["errors"]
    assert error["code"] == "interrupted" and "Aborted" not in err.decode()
