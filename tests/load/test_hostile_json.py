"""Hostile client data: every refusal is exit 3 with its field path, and client text never acts on output.

Cases are in ``tests/data/hostile_json.yaml`` (issue 14, classes 4 and 5: the reader's refusals,
control characters at input) and ``tests/data/hostile_text.yaml`` (class 11: text that is
accepted but must be shown escaped on a terminal and in the HTML report).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.policy.loader import MAX_JSON_BYTES, JSONInputError, parse_json_text
from policy_engine.safetext import html_text, id_problem, printable, text_problem

from ..conftest import DATA, POLICIES, REFERENCE, SAMPLES

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "hostile_json.yaml").read_text(encoding="utf-8"))["cases"]
TEXTS: list[dict[str, Any]] = yaml.safe_load((DATA / "hostile_text.yaml").read_text(encoding="utf-8"))["cases"]
BASE = next(p for p in SAMPLES if p.name.startswith("02")).read_text(encoding="utf-8")
_REPEAT = re.compile(r"<(.) x (\d+)>")


def _document(case: dict[str, Any]) -> bytes:
    text = BASE
    for old, new in case["replace"]:
        assert text.count(old) == 1, (case["name"], old)
        text = text.replace(old, _REPEAT.sub(lambda m: m[1] * int(m[2]), new))
    return text.encode(case.get("encoding", "utf-8"), "surrogatepass")


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


def test_the_case_files_are_well_formed() -> None:
    assert len(CASES) >= 15 and len(TEXTS) >= 5
    for case in CASES:
        assert case["stage"] in ("parse", "fields") and case["expect"], case["name"]
        assert all(set(e) == {"code", "path"} for e in case["expect"]), case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_client_is_refused_with_every_field_named(case: dict[str, Any], decider: Decider) -> None:
    raw = _document(case)
    if case["stage"] == "parse":
        with pytest.raises(JSONInputError) as err:
            parse_json_text(raw)
        found = [(code, path) for code, path, _ in err.value.problems]
        assert str(err.value)  # one line for a caller that keeps one per document
    else:
        with pytest.raises(InputError) as ierr:
            decider.decide(parse_json_text(raw))
        found = [(d.code, d.path) for d in ierr.value.diagnostics]
    for e in case["expect"]:
        assert (e["code"], e["path"]) in found, (e, found)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_decide_exits_3_with_the_field_path(case: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "client.json"
    path.write_bytes(_document(case))
    r = _cli("decide", "-p", "loss-client-management", "-c", str(path), "--format", "json", "--no-audit")
    assert r.exit_code == 3, r.output
    errors = json.loads(r.stderr)["errors"]
    for e in case["expect"]:
        assert any(x["code"] == e["code"] and x.get("path") == e["path"] for x in errors), (e, errors)


def test_stream_answers_each_hostile_line_with_its_field_paths() -> None:
    lines = [_document(c).decode("utf-8", "surrogatepass").replace("\n", " ") for c in CASES
             if c.get("encoding") is None]
    stdin = "".join(line + "\n" for line in lines)
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "decide", "-p", "loss-client-management", "--stream",
                                  "--no-audit"], input=stdin.encode("utf-8", "surrogatepass"), catch_exceptions=False)
    assert r.exit_code == 0
    answers = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(answers) == len(lines)
    cases = [c for c in CASES if c.get("encoding") is None]
    for case, answer in zip(cases, answers, strict=True):
        assert answer["error"]["exit_code"] == 3, case["name"]
        paths = {(p["code"], p.get("path")) for p in answer["error"]["problems"]}
        assert {(e["code"], e["path"]) for e in case["expect"]} <= paths, (case["name"], paths)


def test_batch_json_lines_rejects_name_the_fields(tmp_path: Path) -> None:
    cases = [c for c in CASES if c.get("encoding") is None]
    path = tmp_path / "clients.jsonl"
    path.write_bytes(b"".join(_document(c).replace(b"\n", b" ") + b"\n" for c in cases))
    rejects = tmp_path / "rejects.jsonl"
    r = _cli("batch", str(path), "-p", "loss-client-management", "--rejects", str(rejects), "--format", "json",
             "--no-audit")
    assert r.exit_code == 0, r.output
    by_row = {rec["row"]: rec for rec in map(json.loads, rejects.read_text(encoding="utf-8").splitlines())}
    assert sorted(by_row) == list(range(1, len(cases) + 1))
    for row, case in enumerate(cases, 1):
        fields = {p["field"] for p in by_row[row]["problems"]}
        assert {e["path"] for e in case["expect"]} <= fields, (case["name"], fields)


def test_batch_csv_cells_with_control_characters_are_rejected_by_field(tmp_path: Path) -> None:
    import csv

    source = POLICIES / "loss-client-management" / "samples" / "portfolio.csv"
    with source.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    rows[1][header.index("client_id")] = "C\x1b[2J"
    rows[2][header.index("client_id")] = "C\x00Z"
    rows[3][header.index("history.previous_grade")] = "pass\x07"
    path = tmp_path / "p.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    rejects = tmp_path / "rejects.jsonl"
    r = _cli("batch", str(path), "-p", "loss-client-management", "--rejects", str(rejects), "--format", "json",
             "--no-audit")
    assert r.exit_code == 0, r.output
    got = {rec["row"]: {p["field"] for p in rec["problems"]}
           for rec in map(json.loads, rejects.read_text(encoding="utf-8").splitlines())}
    assert got == {1: {"client_id"}, 2: {"client_id"}, 3: {"history.previous_grade"}}


def test_a_lone_surrogate_in_text_handed_in_is_refused_by_path() -> None:
    # A caller of the library may pass a str that already holds one (no escape to see).
    with pytest.raises(JSONInputError) as err:
        parse_json_text('{"a": [1, {"b": "x\ud800"}]}')
    assert [(code, path) for code, path, _ in err.value.problems] == [("bad-text", "a[1].b")]


@pytest.mark.parametrize(("text", "code", "words"), [
    ('{"bad json\n', "bad-json", "unterminated string (the text ends inside it)"),  # a JSON Lines line cut short
    ('{"a": "cut\r\n  ', "bad-json", "unterminated string (the text ends inside it)"),
    ('{"a": "x\ny"}', "bad-text", "control character U+000A (line feed)"),  # a raw line feed the client sent
])
def test_a_string_cut_off_by_the_end_of_the_text_is_unterminated_not_a_control_character(text: str, code: str,
                                                                                          words: str) -> None:
    with pytest.raises(JSONInputError) as err:
        parse_json_text(text)
    [(got, _, message)] = err.value.problems
    assert got == code and words in message, message


def test_a_document_over_the_limit_names_the_limit() -> None:
    with pytest.raises(JSONInputError) as err:
        parse_json_text(b'{"a": "' + b"x" * MAX_JSON_BYTES + b'"}')
    assert f"{MAX_JSON_BYTES:,}" in str(err.value) and "MAX_JSON_BYTES" in str(err.value)


_JSON_BITS = st.sampled_from([
    "{", "}", "[", "]", ",", ":", '"a"', '"b"', '"a"', " ", "1", "-", "0", "e", "E5", ".5", "NaN", "Infinity",
    "9" * 120, "true", "null", '"\\ud800"', '"\\udc00x"', '"\\u0000"', '"\\u001b"', '"\x01"', '"\\', "\u202e", "\ufeff",
])


@settings(max_examples=600, deadline=None)
@given(st.lists(_JSON_BITS, max_size=40).map("".join), st.booleans())
def test_any_text_is_read_or_refused_with_a_json_input_error(text: str, as_bytes: bool) -> None:
    raw: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    try:
        parse_json_text(raw)
    except JSONInputError as err:
        assert err.problems and all(code in ("bad-json", "bad-text") for code, _, _ in err.problems)


# ---- class 11: accepted text is shown escaped on a terminal and in the HTML report


@pytest.mark.parametrize("case", TEXTS, ids=[c["name"] for c in TEXTS])
def test_client_text_is_accepted_and_rendered_escaped(case: dict[str, Any], tmp_path: Path) -> None:
    """An id with a character a renderer must escape: decided and shown escaped when an id may hold it (a line
    separator, markup); refused at input when it may not (a bidirectional control: two ids that look the same
    must be the same), its character named, not printed. A record stored with such an id (by an engine before
    ids were checked) is still shown escaped by the store's commands."""
    assert text_problem(case["id"]) is None  # client text may hold it: a renderer's job
    record = json.loads(BASE)
    record["client_id"] = case["id"]
    path = tmp_path / "client.json"
    path.write_text(json.dumps(record, ensure_ascii=False), encoding="utf-8")
    audit_db = str(tmp_path / "audit.db")
    outputs = []
    if id_problem(case["id"]) is None:
        outputs += [
            _cli("decide", "-p", "loss-client-management", "-c", str(path), "--format", "text", "--no-audit").stdout,
            _cli("explain", "-p", "loss-client-management", "-c", str(path), "--lang", "zh").stdout,
        ]
        r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", audit_db, "decide", "-p",
                                      "loss-client-management", "-c", str(path), "--format", "json"],
                               catch_exceptions=False)
        assert r.exit_code == 0 and json.loads(r.stdout)["client_id"] == case["id"]  # machine output: as given
    else:
        r = _cli("decide", "-p", "loss-client-management", "-c", str(path), "--format", "text", "--no-audit")
        assert r.exit_code == 3 and "an id holds no invisible characters" in r.stderr
        assert not any(ch in r.stderr for ch in case["raw"]), r.stderr
        _store_as_recorded_before(audit_db, record)
    outputs.append(CliRunner().invoke(main, ["--audit-db", audit_db, "audit", "list", "--format", "text"],
                                      catch_exceptions=False).stdout)
    outputs.append(CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", audit_db, "audit", "show",
                                             "1", "--format", "text"], catch_exceptions=False).stdout)
    for out in outputs:
        assert case["shown"] in out, out[:300]
        assert not any(ch in out for ch in case["raw"]), out[:300]


def _store_as_recorded_before(audit_db: str, record: dict[str, Any]) -> None:
    """``record`` decided under a clean id and stored under its own: what an earlier engine recorded."""
    from policy_engine.policy.registry import Registry
    from policy_engine.record.audit import AuditStore

    policy = Registry(POLICIES).select("loss-client-management", as_of=record["as_of"])
    decision = Decider(policy).decide({**record, "client_id": "C-clean"})
    decision["client_id"] = record["client_id"]
    with AuditStore(audit_db) as store:
        store.append(policy, [(decision, record)])


@pytest.fixture(scope="module")
def impact_report() -> dict[str, Any]:
    """A real impact report of the shipped samples, whose changed-client list the cases below replace."""
    portfolio = REFERENCE / "samples" / "portfolio.csv"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "impact", "loss-client-management@1.0.0",
                                  "loss-client-management@1.1.0", "--portfolio", str(portfolio), "--format", "json"],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("case", TEXTS, ids=[c["name"] for c in TEXTS])
def test_the_reports_escape_client_text(case: dict[str, Any], impact_report: dict[str, Any]) -> None:
    from policy_engine.review.impact import render_html, render_markdown, render_text

    row = {"client_id": case["id"], "segment": "trade\u202e", "grade": ["pass", "loss"],
           "decided_by": ["scorecard", "overdue_over_90"], "score": [10.0, -20.0], "warnings_added": ["overdue"],
           "warnings_removed": [], "actions_added": [], "actions_removed": []}
    report = {**impact_report, "changed_clients": [row], "changed_clients_total": 1}
    page = render_html(report)
    assert f"<td>{html_text(case['id'])}</td>" in page and "trade\\u202e" in page
    assert "<script>" not in page and not any(ch in page for ch in [*case["raw"], "\u202e"])
    for text in (render_text(report), render_markdown(report)):
        assert printable(case["id"]) in text
        assert not any(ch in text for ch in [*case["raw"], "\u202e"])


def test_printable_keeps_ordinary_text_and_escapes_the_rest() -> None:
    assert printable("客户 C002 · Müller") == "客户 C002 · Müller"
    assert printable("a\x1b[2Jb\x00c\u202ed\r") == "a\\x1b[2Jb\\x00c\\u202ed\\x0d"
    assert printable("line 1\nline 2\t!", keep_newlines=True) == "line 1\nline 2\\x09!"
    assert printable("\ud800") == "\\ud800"


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def _self_containing(record: dict[str, Any]) -> dict[str, Any]:
    record["self"] = record
    return record


# A Python caller's object that no JSON text can carry: refused as bad input (exit 3) with its place, never an
# internal error (a RecursionError escaped the API) nor a problem without a path.
API_OBJECTS = [
    ("nests without end", lambda r: {**r, "junk": _nested(100_000)}, "junk[0]",
     "the record nests deeper than 254 levels here"),
    ("contains itself", _self_containing, "self", "the record contains itself here"),
    ("a numpy number", lambda r: {**r, "loan": {**r["loan"], "balance": __import__("numpy").float64(5)}},
     "loan.balance", "a numpy.float64 is not a JSON value"),
    ("a set", lambda r: {**r, "tags": {"a"}}, "tags", "a builtins.set is not a JSON value"),
]


@pytest.mark.parametrize(("what", "change", "path", "message"), API_OBJECTS, ids=[c[0] for c in API_OBJECTS])
def test_the_python_api_refuses_an_object_json_cannot_carry_with_its_place(what: str, change: Any, path: str,
                                                                         message: str) -> None:
    from policy_engine.policy.registry import load_policy

    decider = Decider(load_policy(REFERENCE / "policy-1.1.0.yaml"))
    with pytest.raises(InputError) as refused:
        decider.decide(change(json.loads(BASE)))
    (d,) = refused.value.diagnostics
    assert (d.path or "").startswith(path) and d.message.startswith(message), (d.path, d.message)
    assert refused.value.exit_code == 3


def test_a_debtor_that_contains_itself_is_refused_by_the_scoped_decider_too() -> None:
    from policy_engine.policy.registry import load_policy

    debtor = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text(encoding="utf-8"))
    debtor["exposures"][0]["note"] = debtor
    with pytest.raises(InputError) as refused:
        Decider(load_policy(REFERENCE / "policy-2.0.0.yaml")).decide(debtor)
    assert [(d.path, d.message) for d in refused.value.diagnostics] == [
        ("exposures[0].note", "the record contains itself here: it cannot be written as JSON")]


@pytest.mark.parametrize(("text", "message", "at"), [
    (b'{"a": 1\n', "invalid JSON at the end of the line: Expecting ',' delimiter", (1, 8)),  # a JSON Lines row
    (b'{"a": 1,, "b": 2}\n', "invalid JSON at column 9: Expecting property name", (1, 9)),
    (b'{\n "a": 1,\n "b": }\n', "invalid JSON at line 3 column 7: Expecting value", (3, 7)),
    (b'{\n "a": 1\n\n', "invalid JSON at the end of the text (line 2): Expecting ',' delimiter", (2, 8)),
])
def test_a_syntax_error_is_placed_where_the_text_is(text: bytes, message: str, at: tuple[int, int]) -> None:
    """Not on 'line 2 column 1' of a one-line row (its newline) nor on a line after the last one."""
    with pytest.raises(JSONInputError) as err:
        parse_json_text(text)
    assert str(err.value).startswith(message) and err.value.at == at
    (d,) = err.value.diagnostics(file="x.json")
    assert (d.line, d.column) == at


def test_a_number_beyond_the_float_range_is_named_as_such_by_decide_and_batch(tmp_path: Path) -> None:
    """1e400 is read as infinity: 'inf is not a finite number' left the caller to guess where inf came from. It is
    refused while the text is read, wherever it is (in a field no policy reads it fell out of the input hash)."""
    line = '{"client_id": "X", "as_of": "2025-06-30", "industry": "trade", "loan": {"balance": 1e400}}'
    path = tmp_path / "big.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    args = ["--no-audit", "--policies", str(Path(__file__).resolve().parents[2] / "policies")]
    r = CliRunner().invoke(main, [*args, "decide", "-p", "loss-client-management@1.1.0", "-c", "-", "--format",
                                  "json"], input=line, catch_exceptions=False)
    assert r.exit_code == 3
    said = [e["message"] for e in json.loads(r.stderr)["errors"] if e.get("path") == "loan.balance"]
    assert said == ["1e400 is beyond the largest number, about ±1.8e308 (it would read as infinity)"]
    rejects = tmp_path / "rejects.jsonl"
    r = CliRunner().invoke(main, [*args, "batch", str(path), "-p", "loss-client-management@1.1.0", "--out",
                                  str(tmp_path / "o.parquet"), "--rejects", str(rejects)], catch_exceptions=False)
    problems = json.loads(rejects.read_text(encoding="utf-8").splitlines()[0])["problems"]
    assert [p["message"] for p in problems if p["field"] == "loan.balance"] == said


@pytest.mark.parametrize(("args", "says"), [
    (["-p", "no-such-policy"], "unknown-policy"),  # every line would have been answered with it, exit 0
    (["-p", "loss-client-management@9.9.9"], "unknown-version"),
    (["-p", "loss-client-management", "-c", "clients.jsonl"], "--stream reads its lines from stdin"),  # -c unread
])
def test_a_stream_that_could_decide_no_line_ends_before_it_reads_one(args: list[str], says: str) -> None:
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "decide", *args, "--stream", "--no-audit"],
                           input=b"{}\n{}\n", catch_exceptions=False)
    assert r.exit_code == 2 and r.stdout == "" and says in r.stderr, r.output


@pytest.mark.parametrize("breaker", ["\u2028", "\x85"])
def test_stream_answers_are_one_line_each_and_json_warnings_too(breaker: str) -> None:
    """U+2028 (and U+0085, NEL: found by a hostile review) in a value is valid JSON, but a reader splitting lines as
    splitlines() does cut the answer in two; with --format json the warnings beside the answers are JSON lines too."""
    debtor = json.loads(sorted((REFERENCE / "samples" / "debtors").glob("*.json"))[0].read_text(encoding="utf-8"))
    debtor["exposures"] = []  # decided, with the no-exposures warning
    weird = {"client_id": f"C{breaker}X"}
    stdin = json.dumps(debtor, ensure_ascii=False) + "\n" + json.dumps(weird, ensure_ascii=False) + "\n"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "decide", "-p", "loss-client-management", "--stream",
                                  "--no-audit", "--format", "json"], input=stdin.encode(), catch_exceptions=False)
    assert r.exit_code == 0
    answers = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(answers) == 2 and answers[1]["client_id"] == f"C{breaker}X" and breaker not in r.stdout
    warnings = [json.loads(line) for line in r.stderr.splitlines()]
    assert warnings and {w["line"] for w in warnings} == {1} and all(isinstance(w["warning"], str) for w in warnings)


def test_a_stream_whose_policy_has_no_version_in_force_today_still_decides_its_lines(tmp_path: Path) -> None:
    """The start-up check refuses an unknown id, not a registry whose header scan cannot read a valid policy and
    whose versions are in force on the lines' days only (review)."""
    folder = tmp_path / "policies" / "loss-client-management"
    folder.mkdir(parents=True)
    text = (REFERENCE / "policy-1.1.0.yaml").read_text(encoding="utf-8")
    (folder / "policy-1.1.0.yaml").write_text(text.replace("\neffective_from: ", "\neffective_from:\n  ", 1),
                                              encoding="utf-8")  # valid YAML the line scan does not read
    line = SAMPLES[0].read_text(encoding="utf-8").replace("\n", " ") + "\n"
    r = CliRunner().invoke(main, ["--policies", str(tmp_path / "policies"), "decide", "-p", "loss-client-management",
                                  "--stream", "--no-audit", "--as-of", "2025-06-30"], input=line.encode(),
                           catch_exceptions=False)
    assert r.exit_code == 0 and json.loads(r.stdout)["policy"]["version"] == "1.1.0", r.output


def test_a_line_end_inside_a_bad_value_stays_on_the_diagnostic_s_line(tmp_path: Path) -> None:
    """'found string '1' and '2' [at ...]' came on two lines in text: one diagnostic read as two."""
    from click.testing import CliRunner

    from policy_engine.cli import main

    record = json.loads((POLICIES / "loss-client-management" / "samples" / "debtors"
                         / "05-contagion-three-exposures.json").read_text(encoding="utf-8"))
    record["exposures"][0]["balance"] = "1\n2"
    path = tmp_path / "d.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "decide", "-p", "loss-client-management", "-c",
                                  str(path), "--no-audit", "--format", "text"])
    assert r.exit_code == 3
    [line] = [x for x in r.stderr.splitlines() if "exposures[0].balance" in x]
    assert "found string '1\\x0a2' [at exposures[0].balance]" in line
