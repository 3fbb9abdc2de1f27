"""What every run surface shares: rejects accounted for in impact and simulate, progress on a terminal,
the audit options in the same places, and a plain word when there is no client data."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import policy_engine as pe
from policy_engine.cli import _progress, main
from policy_engine.portfolio import batch as batch_module
from policy_engine.portfolio.synthetic import write_csv
from policy_engine.record.audit import AuditStore

from ..conftest import POLICIES, SAMPLES

ID = "loss-client-management"
SAMPLES_CSV = POLICIES / ID / "samples" / "portfolio.csv"
SAMPLES_JSONL = POLICIES / ID / "samples" / "portfolio.jsonl"


def _cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], input=input)


@pytest.fixture(scope="module")
def bad_portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 rows, 12 of them bad: the case the issue reported as '8 clients, 0 change grade', exit 0."""
    root = tmp_path_factory.mktemp("bad")
    path = root / "p.csv"
    write_csv(path, 20, seed=3)
    lines = path.read_text(encoding="utf-8").splitlines()
    dpd = lines[0].split(",").index("loan.days_past_due")
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        cells = line.split(",")
        if i < 12:
            cells[dpd] = "abc"
        out.append(",".join(cells))
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["impact", "simulate"])
@pytest.mark.parametrize("fmt", ["json", "markdown", "text"])
def test_impact_and_simulate_state_their_rejects_in_every_format(bad_portfolio: Path, tmp_path: Path, command: str,
                                                                  fmt: str) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: slip\nshocks:\n  - {field: loan.days_past_due, add: 30}\n", encoding="utf-8")
    head = ["impact", f"{ID}@1.0.0", f"{ID}@1.1.0"] if command == "impact" else \
        ["simulate", ID, "--scenario", str(scenario)]
    rejects, page = tmp_path / "rejects.jsonl", tmp_path / "r.html"
    r = _cli(*head, "--portfolio", str(bad_portfolio), "--as-of", "2025-06-30", "--format", fmt, "--rejects",
             str(rejects), "--html", str(page))
    assert r.exit_code == 0, r.output
    assert "12 row(s) rejected and not compared; see" in r.stderr
    lines = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert [x["row"] for x in lines] == list(range(1, 13))
    assert all(p["field"] == "loan.days_past_due" for x in lines for p in x["problems"])
    # the rejected block, rendered by every format from the same figures
    assert ("<tr><td>rows rejected on either side</td><td>12</td></tr><tr><td>rows read</td><td>20</td></tr>"
            "<tr><td>compared</td><td>8</td>") in page.read_text(encoding="utf-8")
    if fmt == "json":
        report = json.loads(r.stdout)
        assert report["clients"] == 8
        assert report["rejected"] == {"old": 12, "new": 12, "rows": 12, "rows_read": 20, "compared": 8}
        assert report["summary"]["rejected"] == 12 and report["summary"]["rejected_share"] == 0.6
    elif fmt == "markdown":
        assert "| rows rejected on either side | 12 |\n| rows read | 20 |\n| compared | 8 |" in r.stdout
    else:
        assert [line.split() for line in r.stdout.splitlines() if line.split()[:1] in (["rows"], ["compared"])] \
            == [["rows", "rejected", "on", "either", "side", "12"], ["rows", "read", "20"], ["compared", "8"]]
    gated = _cli(*head, "--portfolio", str(bad_portfolio), "--as-of", "2025-06-30", "--format", fmt,
                 "--fail-if", "rejected > 0")
    assert gated.exit_code == 1 and "gate failed: rejected = 12 > 0" in gated.stderr, gated.output
    share = _cli(*head, "--portfolio", str(bad_portfolio), "--as-of", "2025-06-30", "--format", fmt,
                 "--fail-if", "rejected_share > 0.7")
    assert share.exit_code == 0, share.output


def test_a_clean_portfolio_passes_the_rejected_gate(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    write_csv(path, 30, seed=4)
    r = _cli("impact", f"{ID}@1.0.0", f"{ID}@1.1.0", "--portfolio", str(path), "--fail-if", "rejected > 0",
             "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["rejected"]["rows"] == 0, r.output
    assert "rejected and not compared" not in r.stderr


def test_batch_progress_moves_chunk_by_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "p.csv"
    write_csv(path, 50, seed=5)
    monkeypatch.setattr(batch_module, "CHUNK_ROWS", 10)
    seen: list[tuple[int, int]] = []
    pe.run_batch(ID, path, registry=POLICIES, audit_db=False, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (50, 50)
    assert sorted(d for d, _ in seen[:-1]) == [10, 20, 30, 40, 50]  # one step per chunk, not 0% then 100%


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_shows_on_a_terminal_and_is_silent_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("policy_engine.progress.REDRAW_SECONDS", 0.0)  # draw every update, however fast
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert _progress("deciding") is None
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    show = _progress("deciding")
    assert show is not None
    show(250_000, 1_000_000)
    show(1_000_000, 1_000_000)  # one run done: its line ends
    show(500_000, 1_000_000)  # the next run (impact's second version) draws a line of its own
    show(1_000_000, 1_000_000)
    text = terminal.getvalue()
    assert "deciding: 250,000/1,000,000 rows  25.0%" in text
    assert text.count("deciding: 500,000/1,000,000 rows  50.0%") == 1 and text.count("\n") == 2


def test_impact_reports_progress_for_both_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from policy_engine.portfolio.batch import read_table
    from policy_engine.review.impact import analyse

    path = tmp_path / "p.csv"
    write_csv(path, 30, seed=6)
    monkeypatch.setattr(batch_module, "CHUNK_ROWS", 10)
    seen: list[tuple[int, int]] = []
    registry = pe.Registry(POLICIES)
    analyse(registry.select(ID, version="1.0.0"), registry.select(ID, version="1.1.0"), read_table(path),
            progress=lambda done, total: seen.append((done, total)))
    assert seen.count((30, 30)) >= 2 and len(seen) >= 8


@pytest.mark.parametrize("where", ["before", "after"])
def test_no_audit_and_audit_db_are_accepted_before_and_after_decide_and_batch(tmp_path: Path, where: str) -> None:
    client = SAMPLES[0]
    db = tmp_path / "x.db"
    portfolio = tmp_path / "p.csv"
    write_csv(portfolio, 5, seed=8)
    commands = (["decide", "-p", ID, "-c", str(client)], ["batch", str(portfolio), "-p", ID, "--format", "json"])
    for command in commands:
        option = ["--audit-db", str(db)]
        r = _cli(*(option + command if where == "before" else command + option))
        assert r.exit_code == 0, r.output
    with AuditStore(db, create=False) as store:
        assert sum(1 for _ in store.query()) == 6
    skipped = tmp_path / "none.db"
    for command in commands:
        option = ["--audit-db", str(skipped), "--no-audit"]
        r = _cli(*(option + command if where == "before" else command + option))
        assert r.exit_code == 0, r.output
    assert not skipped.exists()


@pytest.mark.parametrize("data", ["", "  \n", "\n\n"])
def test_decide_without_client_data_says_so(data: str, tmp_path: Path) -> None:
    r = _cli("--audit-db", str(tmp_path / "a.db"), "decide", "-p", ID, "--format", "json", input=data)
    assert r.exit_code == 2, r.output
    (err,) = json.loads(r.stderr)["errors"]
    assert err["code"] == "no-client-data" and "line 1 column 1" not in err["message"]
    empty = tmp_path / "c.json"
    empty.write_text(data, encoding="utf-8")
    r = _cli("--audit-db", str(tmp_path / "a.db"), "decide", "-p", ID, "-c", str(empty))
    assert r.exit_code == 2 and "no-client-data" in r.stderr and str(empty) in r.stderr


def test_a_stream_error_line_names_the_client_when_its_id_could_be_read(tmp_path: Path) -> None:
    good = json.loads(SAMPLES[0].read_text(encoding="utf-8"))
    bad = {**good, "client_id": "C-BAD", "loan": {**good["loan"], "days_past_due": "many"}}
    lines = "\n".join([json.dumps(bad), "{not json", json.dumps({"loan": {}}), json.dumps(good)]) + "\n"
    r = _cli("--audit-db", str(tmp_path / "a.db"), "decide", "-p", ID, "--stream", input=lines)
    answers = [json.loads(x) for x in r.stdout.splitlines()]
    assert answers[0]["line"] == 1 and answers[0]["client_id"] == "C-BAD" and answers[0]["error"]["exit_code"] == 3
    assert answers[1]["line"] == 2 and "client_id" not in answers[1]  # not even JSON: no id to name
    assert answers[2]["line"] == 3 and "client_id" not in answers[2]  # JSON without an id
    assert answers[3]["client_id"] == good["client_id"] and "decision_id" in answers[3]


def test_a_store_that_refuses_a_line_s_record_answers_that_line_and_the_stream_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A store held by another program past the wait ended the whole stream with exit 6 and the later lines
    unanswered (hostile review): the line gets its error answer (exit_code 6, nothing decided for it, nothing
    recorded) and the next lines are decided and recorded, the chain intact."""
    import sqlite3

    append = AuditStore._append_chunk
    calls = [0]

    def locked_once(self: AuditStore, *args: Any) -> int:
        calls[0] += 1
        if calls[0] == 2:
            raise sqlite3.OperationalError("database is locked")
        return append(self, *args)

    monkeypatch.setattr(AuditStore, "_append_chunk", locked_once)
    good = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES[:3]]
    db = tmp_path / "a.db"
    r = _cli("--audit-db", str(db), "decide", "-p", ID, "--stream",
             input="".join(json.dumps(c) + "\n" for c in good))
    assert r.exit_code == 0, r.output
    answers = [json.loads(x) for x in r.stdout.splitlines()]
    assert "decision_id" in answers[0] and "decision_id" in answers[2]
    assert answers[1]["line"] == 2 and answers[1]["client_id"] == good[1]["client_id"]
    [problem] = answers[1]["error"]["problems"]
    assert answers[1]["error"]["exit_code"] == 6 and problem["code"] == "store-failed"
    assert "database is locked" in problem["message"]
    monkeypatch.undo()
    verified = _cli("--audit-db", str(db), "audit", "verify", "--format", "json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["records"] == 2, verified.output
    listed = _cli("--audit-db", str(db), "audit", "list", "--format", "json")
    assert [json.loads(x)["client_id"] for x in listed.stdout.splitlines()] == \
        [good[0]["client_id"], good[2]["client_id"]]


@pytest.mark.parametrize("old", [f"{ID}@1.0.0", f"{ID}@2.0.0"])
def test_an_empty_json_lines_file_says_what_a_line_holds_not_a_header(tmp_path: Path, old: str) -> None:
    """JSON Lines has no header row: impact of two 1.x versions said 'a table needs at least its header row'."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    new = old.replace("1.0.0", "1.1.0").replace("2.0.0", "2.0.1")
    r = _cli("--no-audit", "impact", old, new, "--portfolio", str(empty), "--format", "json")
    assert r.exit_code == 3, r.output
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "empty-table" and "header" not in error["message"] + str(error.get("hint"))
    assert "record a line" in error["message"]


@pytest.mark.parametrize("command", ["batch", "impact"])
def test_an_empty_csv_is_invalid_client_data_and_a_header_alone_is_an_empty_portfolio(tmp_path: Path,
                                                                                      command: str) -> None:
    empty, header = tmp_path / "empty.csv", tmp_path / "header.csv"
    empty.write_text("", encoding="utf-8")
    header.write_text("client_id,as_of,industry\n", encoding="utf-8")
    # No row has a day: the version is that of --as-of (2025: 1.1.0; today it would be 2.0.0, a debtor policy)
    head = ["batch", "-p", ID, "--as-of", "2025-06-30"] if command == "batch" else \
        ["impact", f"{ID}@1.0.0", f"{ID}@1.1.0", "--portfolio"]
    r = _cli("--no-audit", *head, str(empty), "--format", "json")
    assert r.exit_code == 3 and json.loads(r.stderr)["errors"][0]["code"] == "empty-table", r.output
    r = _cli("--no-audit", *head, str(header), "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    if command == "batch":
        assert out["accounting"] == {"rows_read": 0, "decided": 0, "rejected": 0}
        assert out["policy"]["version"] == "1.1.0"
    else:
        assert out["clients"] == 0 and out["rejected"]["rows_read"] == 0


def test_batch_as_of_help_says_what_happens() -> None:
    text = " ".join(_cli("batch", "--help").output.split())
    assert "each row decided under the version in force on its day" in text
    assert "a row on a day no version is in force is rejected" in text


def test_impact_against_a_bare_id_decides_each_client_under_its_days_version(tmp_path: Path) -> None:
    from policy_engine.portfolio.synthetic import generate_clients

    from .test_agreement import _write_inputs

    clients = []
    for day in ("2024-06-30", "2025-06-30"):
        for i, c in enumerate(generate_clients(40, 11, day)):
            c["client_id"] = f"{day[:4]}-{i}"
            clients.append(c)
    paths = _write_inputs(clients, tmp_path)
    r = _cli("impact", f"{ID}@1.0.0", ID, "--portfolio", str(paths["csv"]), "--format", "json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert [(v["version"], v["decided"]) for v in report["new"]["versions"]] == [("1.0.0", 40), ("1.1.0", 40)]
    assert report["old"]["version"] == "1.0.0" and report["rejected"]["rows"] == 0
    # the same through the Python API: each client's row names the version of its day
    from policy_engine.review.impact import analyse
    from policy_engine.run import PolicyRef, read_portfolio

    result = analyse(PolicyRef(ID, "1.0.0", POLICIES), PolicyRef(ID, registry=POLICIES), read_portfolio(paths["csv"]))
    assert result.runs is not None
    new = result.runs[1].decisions
    assert dict(zip(new["client_id"].astype(str), new["policy_version"].astype(str), strict=True)) == {
        c["client_id"]: "1.0.0" if c["as_of"] < "2025" else "1.1.0" for c in clients}


DAY_HINT = "the version in force on the client's as_of decides it: correct the date, or give the day with --as-of"
DEBTORS = sorted((POLICIES / ID / "samples" / "debtors").glob("*.json"))


def _record(kind: str, as_of: str) -> dict[str, Any]:
    path = SAMPLES[12] if kind == "client" else DEBTORS[12]
    return {**json.loads(path.read_text(encoding="utf-8")), "as_of": as_of}


# A table row holds no debtor: a CSV is given for client records only.
@pytest.mark.parametrize(("kind", "surface"), [(k, s) for k in ("client", "debtor")
                                               for s in ("decide", "stream", "batch .jsonl", "batch .csv")
                                               if (k, s) != ("debtor", "batch .csv")])
def test_an_as_of_that_is_no_date_is_the_one_problem_under_a_policy_id(tmp_path: Path, kind: str,
                                                                       surface: str) -> None:
    """The day chooses the version: judged under today's, a 1.x client was 'the wrong kind of record'."""
    record = _record(kind, "2025-02-30")
    problem = {"field": "as_of", "code": "bad-field", "message": "expected a date YYYY-MM-DD, found '2025-02-30'",
               "hint": DAY_HINT}
    if surface in ("decide", "stream"):
        r = _cli("--no-audit", "decide", "-p", ID, "--format", "json",
                 *(["--stream"] if surface == "stream" else []), input=json.dumps(record) + "\n")
        [found] = (json.loads(r.stdout)["error"]["problems"] if surface == "stream" else
                   json.loads(r.stderr)["errors"])
        assert (found["path"], found["code"], found["message"], found["hint"]) == tuple(
            problem[k] for k in ("field", "code", "message", "hint"))
        return
    if surface == "batch .csv":
        path = tmp_path / "p.csv"
        path.write_text(SAMPLES_CSV.read_text(encoding="utf-8").replace(",2025-06-30,", ",2025-02-30,", 1),
                        encoding="utf-8")
    else:
        path = tmp_path / "p.jsonl"
        path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    r = _cli("--no-audit", "batch", str(path), "-p", ID, "--rejects", str(tmp_path / "r.jsonl"), "--format", "json")
    assert r.exit_code == 0, r.output
    reject = json.loads((tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert reject["problems"] == [problem] and reject["line"] == (2 if surface == "batch .csv" else 1)


def test_a_debtor_line_on_a_1x_day_is_the_wrong_kind_in_batch_as_in_decide(tmp_path: Path) -> None:
    """batch listed the 1.x fields it lacked (11 missing-field problems); decide names the version that reads it."""
    record = _record("debtor", "2025-06-30")
    [refusal] = json.loads(_cli("--no-audit", "decide", "-p", ID, "--format", "json",
                                         input=json.dumps(record)).stderr)["errors"]
    assert refusal["code"] == "wrong-record-kind" and "--policy-version 2." in refusal["hint"]
    path = tmp_path / "d.jsonl"
    path.write_text(SAMPLES_JSONL.read_text(encoding="utf-8") + json.dumps(record) + "\n", encoding="utf-8")
    for ref in (ID, f"{ID}@1.1.0"):  # the line falls to 1.1.0 by its day, or by the pin
        r = _cli("--no-audit", "batch", str(path), "-p", ref, "--rejects", str(tmp_path / "r.jsonl"),
                 "--format", "json")
        assert json.loads(r.stdout)["accounting"] == {"rows_read": 22, "decided": 21, "rejected": 1}, r.output
        [reject] = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
        assert reject["problems"] == [{"field": "(record)", "code": "wrong-record-kind", "message": refusal["message"],
                                       "hint": refusal["hint"]}]


@pytest.mark.parametrize("command", ["batch", "impact", "simulate"])
def test_a_rejects_file_of_another_format_is_refused_before_the_run(tmp_path: Path, command: str) -> None:
    """--rejects r.parquet wrote JSON Lines under a Parquet name, which a Parquet reader then failed on."""
    head = {"batch": ["batch", str(SAMPLES_CSV), "-p", f"{ID}@1.1.0"],
            "impact": ["impact", f"{ID}@1.0.0", f"{ID}@1.1.0", "--portfolio", str(SAMPLES_CSV)],
            "simulate": ["simulate", f"{ID}@1.1.0", "--portfolio", str(SAMPLES_CSV), "--scenario",
                         str(POLICIES.parent / "scenarios" / "collateral-crash.yaml")]}[command]
    r = _cli("--no-audit", *head, "--rejects", str(tmp_path / "r.parquet"), "--format", "json")
    assert r.exit_code == 2 and "cannot write rejects as '.parquet': use .jsonl or .csv" in r.stderr
    assert not (tmp_path / "r.parquet").exists()


def test_stream_names_a_misspelt_field_as_decide_does() -> None:
    """decide -c and batch named 'creditImpaired'; --stream decided the line as if it held no such fact, silently."""
    record = json.loads(DEBTORS[8].read_text(encoding="utf-8"))
    accounting = record["exposures"][0]["accounting"]
    accounting["creditImpaired"] = accounting.pop("credit_impaired")
    said = ("field 'exposures[0].accounting.creditImpaired' is not read by policy loss-client-management; did you "
            "mean 'exposures[0].accounting.credit_impaired'? (as given, 'exposures[0].accounting.credit_impaired' "
            "is missing)")
    r = _cli("--no-audit", "decide", "-p", f"{ID}@2.0.0", "--stream", input=json.dumps(record) + "\n")
    assert f"<stdin>:1: warning: {said}" in r.stderr and "decision_id" in r.stdout
    r = _cli("--no-audit", "decide", "-p", f"{ID}@2.0.0", "--format", "text", input=json.dumps(record))
    assert f"warning: {said}" in r.stderr


def test_the_python_stream_tells_its_warnings_with_or_without_their_codes() -> None:
    """``run.stream``: ``warn`` hears (line, text), as it always did; ``notes`` hears (line, code, text), the code the
    command's JSON warning lines carry; given both, each hears every warning once."""
    from policy_engine.run import stream

    record = json.loads((POLICIES / "loss-client-management" / "samples" / "debtors" / "01-pass-single-loan.json")
                        .read_text(encoding="utf-8"))
    lines = [json.dumps({**record, "exposures": []}).encode(), json.dumps(record).encode()]
    ref = pe.PolicyRef("loss-client-management", registry=POLICIES)
    warned: list[tuple[int, str]] = []
    noted: list[tuple[int, str, str]] = []
    answers = list(stream(ref, lines, audit_db=False, as_of="2026-10-31", warn=lambda n, t: warned.append((n, t)),
                          notes=lambda n, c, t: noted.append((n, c, t))))
    assert len(answers) == 2
    assert [(n, c) for n, c, _ in noted] == [(1, "as-of-after-record"), (1, "no-exposures"),
                                            (2, "as-of-after-record")]
    assert warned == [(n, t) for n, _, t in noted]
