"""Every JSON a command writes for machines follows the schema `policy-engine schema NAME` prints: the contract
a CI pipeline or a calling system codes against. Each report is produced here in its variants (success, failure,
modules, totals, conversion, a scenario, gates) and checked; a key added to a report without its schema fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from policy_engine.cli import main
from policy_engine.policy.schemas import REPORT_SCHEMAS, SCHEMA_NAMES, load_schema, with_embedded

from ..conftest import DATA, POLICIES, REFERENCE, ROOT

ID = "loss-client-management"


def _run(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], input=stdin, catch_exceptions=False)


def _validator(name: str, part: str | None = None) -> Draft202012Validator:
    """The schema's validator (``part``: one of its ``$defs``), from its text alone: each is whole on its own."""
    schema = load_schema(name)
    if part is not None:
        schema = {"$id": schema["$id"], "$ref": f"#/$defs/{part}", "$defs": schema["$defs"]}
    return Draft202012Validator(schema)


@pytest.mark.parametrize("name", [*SCHEMA_NAMES, *REPORT_SCHEMAS])
def test_every_shipped_schema_is_whole_on_its_own(name: str) -> None:
    """A schema that refers to another by file name holds that one's current text: `schema stream-line` printed
    references a validator could not resolve without the other files (tools/embed_schemas.py writes them)."""
    schema = load_schema(name)
    assert schema == with_embedded(name, schema), f"{name} is stale: run python tools/embed_schemas.py"
    text = json.dumps(schema)
    for other in (*SCHEMA_NAMES, *REPORT_SCHEMAS):
        if f'"$ref": "{other}.schema.json' in text:
            assert other in schema.get("$defs", {}), f"{name} refers to {other} without holding it"


def _check(name: str, text: str, part: str | None = None) -> dict[str, Any]:
    document = json.loads(text)
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in _validator(name, part).iter_errors(document)]
    assert errors == []
    return document


def test_every_report_schema_is_a_valid_schema_and_printed_by_the_schema_command() -> None:
    for name in REPORT_SCHEMAS:
        Draft202012Validator.check_schema(load_schema(name))
        r = _run("schema", name)
        assert r.exit_code == 0 and json.loads(r.stdout)["$id"].endswith(f"/{name}.schema.json")


@pytest.mark.parametrize("args", [
    [],  # the registry: policies, modules, test files
    [str(DATA / "broken_policies" / "unknown-name.yaml")],
    [str(REFERENCE / "tests" / "classification.yaml"), str(ROOT / "scenarios" / "collateral-crash.yaml")],
], ids=["registry", "broken", "test-file-and-scenario"])
def test_validate_report(args: list[str]) -> None:
    r = _run("validate", "--format", "json", *args)
    report = _check("validate-report", r.stdout)
    assert report["ok"] is (r.exit_code == 0)


@pytest.mark.parametrize("args", [
    ["-k", "technical"],
    ["-k", "technical", "--min-coverage", "100"],
    [str(REFERENCE / "policy-2.1.0.yaml"), "--coverage"],
], ids=["selection", "coverage-gate", "one-version"])
def test_test_report(args: list[str]) -> None:
    r = _run("test", "--format", "json", *args)
    report = _check("test-report", r.stdout)
    assert report["failed"] == 0 and r.exit_code in (0, 1)


@pytest.mark.parametrize(("old", "new"), [
    (f"{ID}@1.0.0", f"{ID}@1.1.0"),
    (f"{ID}@2.0.2", f"{ID}@2.1.0"),
    ("financial-difficulty@1.0.0", "financial-difficulty@1.1.0"),
], ids=["1.x", "2.x", "module"])
def test_diff_report(old: str, new: str) -> None:
    r = _run("diff", old, new, "--format", "json")
    assert r.exit_code == 0
    _check("diff-report", r.stdout)


@pytest.mark.parametrize("args", [
    ["impact", f"{ID}@1.0.0", f"{ID}@1.1.0", "--total", "revenue_ttm", "--fail-if", "downgrades > 100"],
    ["impact", f"{ID}@1.1.0", f"{ID}@2.1.0", "--list", "3"],
    ["simulate", f"{ID}@1.1.0", "--scenario", str(ROOT / "scenarios" / "collateral-crash.yaml")],
], ids=["totals-and-gate", "converted", "scenario"])
def test_impact_report(tuned_portfolio: Path, args: list[str]) -> None:
    r = _run(*args, "--portfolio", str(tuned_portfolio), "--format", "json")
    assert r.exit_code in (0, 1), r.stderr
    _check("impact-report", r.stdout)


def test_an_impact_report_of_a_policy_id_decided_under_two_versions(tmp_path: Path) -> None:
    """A policy id decides each client under the version in force on its date: with clients of 2024 and 2025 the
    side lists both versions, its sha256 null; the report broke its own schema there (a helper's finding)."""
    header, first, *rest = (REFERENCE / "samples" / "portfolio.csv").read_text(encoding="utf-8").splitlines()
    at = header.split(",").index("as_of")
    cells = first.split(",")
    cells[at] = "2024-12-31"  # 1.0.0 in force
    portfolio = tmp_path / "mixed.csv"
    portfolio.write_text("\n".join([header, ",".join(cells), *rest]) + "\n", encoding="utf-8")
    r = _run("simulate", ID, "--scenario", str(ROOT / "scenarios" / "collateral-crash.yaml"), "--portfolio",
             str(portfolio), "--format", "json")
    assert r.exit_code in (0, 1), r.stderr
    report = _check("impact-report", r.stdout)
    assert report["old"]["sha256"] is None and [v["version"] for v in report["old"]["versions"]] == ["1.0.0", "1.1.0"]


@pytest.mark.parametrize("args", [
    ["decide", "-p", ID, "-c", "/no/such/client.json"],
    ["validate", str(DATA / "broken_policies" / "unknown-name.yaml")],
    ["decide", "-p", ID, "-c", str(REFERENCE / "samples" / "clients" / "06-overdue-30-days.json"), "--as-of", "x"],
    ["test", "-k", "no case has this name"],
], ids=["missing-file", "invalid-policy", "usage", "no-match"])
def test_errors_on_stderr(args: list[str]) -> None:
    r = _run(*args, "--format", "json")
    assert r.exit_code != 0
    if args[0] == "validate":  # the report is on stdout, the errors inside it; stderr says what set exit 4
        assert _check("validate-report", r.stdout)["ok"] is False
        assert [e["code"] for e in _check("errors", r.stderr)["errors"]] == ["files-invalid"]
    elif args[0] == "test":
        assert [e["code"] for e in _check("test-report", r.stdout)["errors"]] == ["no-match"]
    else:
        _check("errors", r.stderr)


def test_warnings_under_json_are_one_json_document_on_stderr(tmp_path: Path) -> None:
    """A caller that parses stderr as JSON never meets a text line: warnings beside a decision are
    {"ok": true, "warnings": [...]}, and those given before a failure follow its errors."""
    record = json.loads((REFERENCE / "samples" / "debtors" / "05-contagion-three-exposures.json").read_text("utf-8"))
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({**record, "exposures": []}), encoding="utf-8")
    misspelt = tmp_path / "misspelt.json"
    record["exposures"][0]["Balance"] = record["exposures"][0].pop("balance")
    misspelt.write_text(json.dumps(record), encoding="utf-8")
    r = _run("--no-audit", "decide", "-p", ID, "-c", str(empty), "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["exposures"] == []
    assert [w["code"] for w in _check("errors", r.stderr)["warnings"]] == ["no-exposures"]
    r = _run("--no-audit", "decide", "-p", ID, "-c", str(misspelt), "--format", "json")
    assert r.exit_code == 3
    assert [(e["code"], e["severity"]) for e in _check("errors", r.stderr)["errors"]] == [
        ("missing-field", "error"), ("misspelt-field", "warning")]
    piped = _run("--no-audit", "decide", "-p", ID, "-c", str(empty))  # JSON by default, but not asked for:
    assert piped.stderr.startswith(f"{empty}: warning: the record holds no exposure")  # a line, as errors are


def test_every_line_of_decide_stream_follows_the_stream_line_schema(tmp_path: Path) -> None:
    """A calling system reading --stream codes against `schema stream-line`: decisions of 1.x clients and 2.0
    debtors, and the error lines of a blank line, text that is not JSON, a record missing fields and a day no
    version covers; with --format json each warning on stderr is a JSON object of its own."""
    debtors = _debtors_jsonl(tmp_path / "debtors.jsonl").read_text(encoding="utf-8").splitlines()
    client = json.loads((REFERENCE / "samples" / "clients" / "01-pass-healthy-manufacturer.json").read_text("utf-8"))
    empty = {**json.loads(debtors[0]), "exposures": []}
    lines = [*debtors[:3], json.dumps(client), "", "{not json", json.dumps({"client_id": "D-X"}),
             json.dumps({**json.loads(debtors[1]), "as_of": "1999-12-31"}), json.dumps(empty)]
    r = _run("--no-audit", "decide", "-p", ID, "--stream", "--format", "json", stdin="\n".join(lines) + "\n")
    assert r.exit_code == 0
    answers = [_check("stream-line", line) for line in r.stdout.splitlines()]
    assert len(answers) == len(lines)
    errors = {a["line"]: a["error"]["exit_code"] for a in answers if "error" in a}
    assert errors == {5: 3, 6: 3, 7: 3, 8: 2}
    assert answers[6]["client_id"] == "D-X" and answers[3]["policy"]["version"] == "1.1.0"
    warnings = [_check("stream-line", line, "warning_line") for line in r.stderr.splitlines()]
    assert [(w["line"], w["code"]) for w in warnings] == [(9, "no-exposures")]
    assert "holds no exposure" in warnings[0]["warning"]


def _debtors_jsonl(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for f in sorted((REFERENCE / "samples" / "debtors").glob("*.json")):
            fh.write(json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n")
    return path


def test_batch_summary_in_every_input_form(tmp_path: Path) -> None:
    """A table of 1.x clients, JSON Lines of debtors, a file mixing both (two versions), and long tables with
    a misspelt column, a table left empty and a debtor without exposures: one schema."""
    debtors = _debtors_jsonl(tmp_path / "debtors.jsonl")
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text((REFERENCE / "samples" / "portfolio.jsonl").read_text(encoding="utf-8")
                     + debtors.read_text(encoding="utf-8"), encoding="utf-8")
    policy_2 = str(REFERENCE / "policy-2.0.0.yaml")
    tables = tmp_path / "tables"
    assert _run("generate", "-p", policy_2, "--n", "30", "--as-of", "2026-09-30", "--tables", "csv", "--out",
                str(tables)).exit_code == 0
    events = tables / "events.csv"
    events.write_text(events.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")  # no row
    payments = tables / "payments.csv"
    head, rest = payments.read_text(encoding="utf-8").split("\n", 1)
    payments.write_text(head.replace("paid_date", "Paid_Date") + "\n" + rest, encoding="utf-8")
    exposures = tables / "exposures.csv"
    rows = exposures.read_text(encoding="utf-8").splitlines()
    first = rows[1].split(",")[0]  # the first debtor keeps no exposure (nor the rows below them: not rejected)
    for table in (exposures, payments, tables / "modifications.csv"):
        rows = table.read_text(encoding="utf-8").splitlines()
        table.write_text("\n".join([rows[0], *(r for r in rows[1:] if r.split(",")[0] != first)]) + "\n",
                         encoding="utf-8")
    runs = [(REFERENCE / "samples" / "portfolio.csv", ID), (debtors, ID), (mixed, ID), (tables, policy_2)]
    summaries = []
    for source, policy in runs:
        r = _run("--no-audit", "batch", str(source), "-p", policy, "--out", str(tmp_path / "out.parquet"),
                 "--format", "json")
        assert r.exit_code == 0, r.stderr
        summaries.append(_check("batch-summary", r.stdout))
    assert [len(s["versions"]) for s in summaries] == [1, 1, 2, 1]
    last = summaries[-1]
    assert {"tables", "empty_tables", "decided_without_elements", "graded_table"} <= last.keys()
    assert last["misspelt_columns"] == [{"given": "payments.Paid_Date", "did_you_mean": "payments.paid_date"}]


def _stderr_cases(tmp: Path) -> list[tuple[str, list[str], list[str]]]:
    """(name, arguments, the warning codes stderr's one document holds) for the runs that wrote text lines there."""
    clients = REFERENCE / "samples" / "portfolio.csv"
    misspelt = tmp / "misspelt.csv"
    misspelt.write_text(clients.read_text(encoding="utf-8").replace("loan.collateral_value,", "loan.colateral_value,",
                                                                   1), encoding="utf-8")
    client = json.loads(sorted((REFERENCE / "samples" / "clients").glob("*.json"))[2].read_text(encoding="utf-8"))
    client["loan"]["colateral_value"] = client["loan"].pop("collateral_value")
    (tmp / "c.json").write_text(json.dumps(client), encoding="utf-8")
    (tmp / "nothing.yaml").write_text("name: n\nshocks:\n  - {field: loan.balance, multiply: 1.0}\n", encoding="utf-8")
    v1 = f"{ID}@1.1.0"
    return [
        ("test coverage", ["test", str(REFERENCE / "policy-1.1.0.yaml"), "--coverage", "--min-coverage", "100"],
         ["coverage"]),
        ("batch misspelt column", ["--no-audit", "batch", str(misspelt), "-p", v1, "--out", str(tmp / "o.csv")],
         ["misspelt-column"]),
        ("explain misspelt field", ["explain", "-p", v1, "-c", str(tmp / "c.json")], ["misspelt-field"]),
        ("impact gate failed", ["--no-audit", "impact", f"{ID}@1.0.0", v1, "--portfolio", str(clients), "--fail-if",
                                "compared > 1"], ["gate-failed", "not-in-force"]),  # the failure (exit 1): an error,
        # ok false; beside it the note that 1.0.0 was not in force on the samples' days
        ("simulate shock changed nothing", ["--no-audit", "simulate", v1, "--portfolio", str(clients), "--scenario",
                                            str(tmp / "nothing.yaml")], ["shock-changed-nothing"]),
    ]


@pytest.mark.parametrize("case", range(5))
def test_stderr_under_format_json_is_one_document(tmp_path: Path, case: int) -> None:
    """A CI job parses stderr as JSON with --format json: coverage lines, 'gate failed', a misspelt column or a
    shock that changed nothing were text lines there; piped without --format, they stay lines for people."""
    name, args, codes = _stderr_cases(tmp_path)[case]
    assert "{" not in _run(*args).stderr.lstrip()[:1], name
    r = _run(*args, "--format", "json")
    assert r.exit_code in (0, 1), (name, r.stderr)
    json.loads(r.stdout)  # the result
    said = _check("errors", r.stderr)
    assert [w["code"] for w in said["errors" if r.exit_code else "warnings"]] == codes, name


@pytest.mark.parametrize("args", [["--bogus", "validate"], ["--config", "/no/such.toml", "validate"]],
                         ids=["unknown-global-option", "config-missing"])
def test_an_error_before_the_command_is_json_when_json_is_asked(args: list[str]) -> None:
    r = CliRunner().invoke(main, [*args, "--format", "json"])
    assert r.exit_code == 2 and r.stdout == ""
    assert _check("errors", r.stderr)["ok"] is False


def test_errors_follow_a_format_the_configuration_sets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project that sets format = "json" parses stderr as JSON: its errors were text unless --format was given."""
    (tmp_path / "pyproject.toml").write_text('[tool.policy-engine]\nformat = "json"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "decide", "-p", ID, "-c", "nowhere.json"])
    assert r.exit_code == 2 and [e["code"] for e in _check("errors", r.stderr)["errors"]] == ["file-missing"]


def test_every_audit_output_follows_its_part_of_the_audit_report_schema(tmp_path: Path) -> None:
    """verify (intact and broken), replay lines (identical, different, not replayable), list lines, show: the audit
    commands' JSON had no schema, though a CI gate reads each of them."""
    import sqlite3

    db = str(tmp_path / "a.db")
    debtors = _debtors_jsonl(tmp_path / "debtors.jsonl")
    assert _run("--audit-db", db, "batch", str(debtors), "-p", ID, "--out", str(tmp_path / "d.jsonl"),
                "--format", "json").exit_code == 0
    client = str(REFERENCE / "samples" / "clients" / "06-overdue-30-days.json")
    assert _run("--audit-db", db, "decide", "-p", ID, "-c", client).exit_code == 0
    assert _run("--audit-db", db, "decide", "-p", ID, "-c", client, "--audit-inputs", "hash-only").exit_code == 0
    assert _check("audit-report", _run("--audit-db", db, "audit", "verify", "--format", "json").stdout,
                  "verify")["ok"] is True
    listed = [_check("audit-report", line, "list-line") for line in
              _run("--audit-db", db, "audit", "list", "--format", "json").stdout.splitlines()]
    assert len(listed) >= 2
    for seq in (1, listed[-1]["seq"]):
        shown = _check("audit-report", _run("--audit-db", db, "audit", "show", str(seq), "--format", "json").stdout,
                       "show")
        _check("decision", json.dumps(shown["decision"]))
    with sqlite3.connect(db) as raw:  # a grade edited behind the store's back: replay differs, verify breaks
        raw.execute("UPDATE decision SET decision_json = replace(decision_json, '\"grade\":\"', '\"grade\":\"x') "
                    "WHERE seq = ?", (listed[-2]["seq"],))
    lines = [_check("audit-report", line, "replay-line") for line in
             _run("--audit-db", db, "audit", "replay", "--all", "--format", "json").stdout.splitlines()]
    assert {"different", "not-replayable"} <= {x["status"] for x in lines}
    broken = _check("audit-report", _run("--audit-db", db, "audit", "verify", "--format", "json").stdout, "verify")
    assert broken["ok"] is False and broken["break"]["kind"] == "edited"
