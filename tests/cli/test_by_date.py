"""2.0.0 in force from 2026-07-01: every command that takes a policy id chooses the version by date.

A client record 1.x dated before goes to 1.1.0 and a debtor dated after to 2.0.0, for decide,
explain and generate alike; validate and test (every policy, 100% asserted coverage) pass with both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import POLICIES, REFERENCE, SAMPLES

ID = "loss-client-management"
DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))


def _cli(*args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", *args], input=stdin,
                              catch_exceptions=False)


@pytest.mark.parametrize(("record", "as_of", "version"), [
    (SAMPLES[1], None, "1.1.0"),  # its as_of, 2025-06-30
    (DEBTORS[4], None, "2.0.0"),  # its as_of, 2026-09-30
    (SAMPLES[1], "2026-06-30", "1.1.0"),  # the last day of 1.1.0
    (DEBTORS[4], "2026-12-31", "2.0.0"),  # a later day (its facts go up to its own as_of)
])
def test_decide_by_id_takes_the_version_in_force_on_the_records_day(record: Path, as_of: str | None,
                                                                   version: str) -> None:
    r = _cli("decide", "-p", ID, "-c", str(record), "--format", "json", *(["--as-of", as_of] if as_of else []))
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["policy"]["version"] == version


def test_explain_of_a_multi_exposure_debtor_in_chinese_by_date() -> None:
    r = _cli("explain", "-p", ID, "-c", str(REFERENCE / "samples" / "debtors" / "05-contagion-three-exposures.json"),
             "--lang", "zh")
    assert r.exit_code == 0, r.output
    assert "政策 loss-client-management 2.0.0" in r.stdout and "各笔债项（3）" in r.stdout


@pytest.mark.parametrize(("as_of", "version", "shape"), [("2025-06-30", "1.1.0", "loan"),
                                                          ("2026-09-30", "2.0.0", "exposures")])
def test_generate_by_id_draws_from_the_version_in_force_on_its_day(tmp_path: Path, as_of: str, version: str,
                                                                  shape: str) -> None:
    out = tmp_path / "p.jsonl"
    r = _cli("generate", "-p", ID, "--n", "3", "--as-of", as_of, "--out", str(out))
    assert r.exit_code == 0, r.output
    assert f"for {ID} {version}" in r.output
    first = out.read_text(encoding="utf-8").splitlines()[0]
    assert shape in json.loads(first)
    decided = _cli("decide", "-p", ID, "-c", "-", "--format", "json", stdin=first)  # by its as_of: the same version
    assert decided.exit_code == 0, decided.output
    assert json.loads(decided.stdout)["policy"]["version"] == version


def test_validate_and_test_every_policy_pass_at_full_asserted_coverage() -> None:
    assert _cli("validate", "--format", "json").exit_code == 0
    r = _cli("test", "--coverage", "--min-coverage", "100", "--format", "json")
    assert r.exit_code == 0, r.output
    coverage = json.loads(r.stdout)["coverage"]
    assert {k: v["percent"] for k, v in coverage.items() if k.startswith(ID)} == {
        f"{ID}@1.0.0": 100.0, f"{ID}@1.1.0": 100.0, f"{ID}@2.0.0": 100.0, f"{ID}@2.0.1": 100.0,
        f"{ID}@2.0.2": 100.0, f"{ID}@2.1.0": 100.0}


RESTARTED = REFERENCE / "samples" / "debtors" / "13-observation-restarted.json"  # as of 2026-09-30


@pytest.mark.parametrize(("pinned", "as_of", "note"), [
    ("2.0.0", None, None),  # in force on its day: nothing to say
    ("2.0.2", None, "is not in force on 2026-09-30 (in force from 2027-04-01 to 2027-06-30)"),  # a preview
    ("2.0.0", "2027-05-01", "is not in force on 2027-05-01 (in force from 2026-07-01 to 2026-12-31)"),  # ended
])
def test_a_pinned_version_not_in_force_on_the_day_is_said(pinned: str, as_of: str | None, note: str | None) -> None:
    """A version pinned to preview it (or one that has ended) still decides, as asked; the explanation says so
    in its second line, and decide (JSON unchanged) on stderr: a printout must not pass for the policy in force."""
    day = ["--as-of", as_of] if as_of else []
    text = _cli("explain", "-p", f"{ID}@{pinned}", "-c", str(RESTARTED), *day)
    zh = _cli("explain", "-p", f"{ID}@{pinned}", "-c", str(RESTARTED), "--lang", "zh", *day)
    decided = _cli("decide", "-p", f"{ID}@{pinned}", "-c", str(RESTARTED), "--format", "json", *day)
    assert text.exit_code == zh.exit_code == decided.exit_code == 0, text.output
    assert json.loads(decided.stdout)["policy"]["version"] == pinned
    second = text.stdout.splitlines()[1]
    if note is None:
        assert second == "Segment: manufacturing (the parameters of this segment apply)"  # no note before it
        assert "warning" not in decided.stderr and "未生效" not in zh.stdout
        return
    assert second == f"! Policy {ID} {pinned} {note}: this decision was made under it as pinned"
    assert "未生效" in zh.stdout.splitlines()[1]
    later = ["as-of-after-record"] if as_of else []  # decided after the record's own date: said too (below)
    warnings = json.loads(decided.stderr)["warnings"]  # --format json: stderr is JSON too
    assert [w["code"] for w in warnings] == [*later, "not-in-force"]
    assert warnings[-1] == {"code": "not-in-force", "file": str(RESTARTED), "severity": "warning",
                            "message": f"Policy {ID} {pinned} {note}: this decision was made under it as pinned"}
    piped = _cli("decide", "-p", f"{ID}@{pinned}", "-c", str(RESTARTED), *day)  # JSON, --format not asked for
    assert piped.stderr.strip().splitlines()[-1] == f"{RESTARTED}: warning: Policy {ID} {pinned} {note}: this " \
                                                    "decision was made under it as pinned"


@pytest.mark.parametrize(("own", "as_of", "code", "message"), [
    ("2026-09-30", None, None, None),
    ("2026-09-30", "2026-09-30", None, None),
    ("2026-09-30", "2027-08-01", "as-of-after-record", "the record is dated 2026-09-30 and decided as of 2027-08-01, "
     "305 days later: its facts (days past due, balances, the payments made) are read as if they stood on 2027-08-01"),
    ("2026-09-30", "2026-09-29", "as-of-before-record", "the record is dated 2026-09-30 and decided as of 2026-09-29, "
     "1 day before: its facts (days past due, balances, the payments made) stood on 2026-09-30 and were not known"),
    ("2026-09-30T00:00:00", "2026-12-20", "record-as-of-unread", "the record's own as_of '2026-09-30T00:00:00' is no "
     "date YYYY-MM-DD: it was decided as of 2026-12-20 with no check of the day its facts stood on"),
    # the value as JSON writes it, not its Python type ('NoneType', 'int'); decided as of today, said by decide too
    (None, None, "record-as-of-unread", "the record's own as_of null is no date YYYY-MM-DD: it was decided as of "),
    (20260930, "2026-12-20", "record-as-of-unread", "the record's own as_of 20260930 is no date YYYY-MM-DD"),
    # no as_of at all: decided as of today as a null one is, and said as it is (it was silent)
    (..., None, "record-as-of-unread", "the record has no as_of: it was decided as of "),
    (..., "2026-12-20", "record-as-of-unread", "the record has no as_of: it was decided as of 2026-12-20 with no "
     "check of the day its facts stood on"),
])
def test_a_record_decided_as_of_another_day_than_its_own_is_said(tmp_path: Path, own: Any, as_of: str | None,
                                                                 code: str | None, message: str | None) -> None:
    """A banker's review: --as-of 2027-08-01 on a record dated 2026-09-30 read its days past due as current and
    every instalment due in between as missed (a pass debtor graded special mention), without a word; a day
    before it, or an own as_of that is no date, passed without a word too. decide, explain and each line of
    --stream now say so; the decision is the one asked for."""
    record = json.loads(RESTARTED.read_text("utf-8"))
    record["as_of"] = own
    if own is ...:
        del record["as_of"]
    path = tmp_path / "debtor.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    day = ["--as-of", as_of] if as_of else []
    decided = _cli("decide", "-p", ID, "-c", str(path), "--format", "json", *day)
    warnings = json.loads(decided.stderr)["warnings"] if decided.stderr else []
    assert decided.exit_code == 0, decided.output
    assert [(w["code"], w["message"].startswith(message or "")) for w in warnings] == ([(code, True)] if code else [])
    explained = _cli("explain", "-p", ID, "-c", str(path), "--lang", "zh", *day)
    assert explained.exit_code == 0 and (message is not None and message in explained.stderr) is (code is not None)
    streamed = _cli("decide", "-p", ID, "--stream", "--no-audit", *day, stdin=json.dumps(record) + "\n")
    said = message is not None and f"<stdin>:1: warning: {message}" in streamed.stderr
    assert streamed.exit_code == 0 and said is (code is not None)


def test_a_debtor_without_exposures_is_decided_and_flagged(tmp_path: Path) -> None:
    """A debtor record with no exposure is graded from the debtor's rules alone ("worst of none" is the best
    grade): the explanation and decide's stderr say so, so a record whose exposures were left out is not
    taken for a healthy debtor. The decision itself is unchanged (released versions decide it so)."""
    record = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text(encoding="utf-8"))
    record["exposures"] = []
    path = tmp_path / "none.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    decided = _cli("decide", "-p", ID, "-c", str(path), "--format", "json")
    assert decided.exit_code == 0 and json.loads(decided.stdout)["exposures"] == []
    (note,) = json.loads(decided.stderr)["warnings"]
    assert note["code"] == "no-exposures"
    assert note["message"].startswith("the record holds no exposure: its grade comes from the debtor's rules alone")
    for lang, line in (("en", "  ! The record holds no exposure"), ("zh", "  ⚠ 记录中没有债项")):
        text = _cli("explain", "-p", ID, "-c", str(path), "--lang", lang).stdout
        assert any(t.startswith(line) for t in text.splitlines()), text
    sample = _cli("decide", "-p", ID, "-c", str(RESTARTED), "--format", "json")
    assert "warning" not in sample.stderr


def test_a_stream_line_without_exposures_is_answered_and_flagged_on_stderr() -> None:
    """decide --stream warns as decide does, naming the line; the answer line keeps its contract."""
    good = json.loads(RESTARTED.read_text(encoding="utf-8"))
    empty = {**good, "client_id": "no-exposures", "exposures": []}
    lines = "".join(json.dumps(r) + "\n" for r in (good, empty, good))
    result = _cli("decide", "-p", ID, "--stream", "--no-audit", stdin=lines)
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and [a["client_id"] for a in answers] == [good["client_id"], "no-exposures",
                                                                         good["client_id"]]
    assert answers[1]["exposures"] == [] and "warning" not in answers[1]
    assert result.stderr.splitlines() == ["<stdin>:2: warning: the record holds no exposure: its grade comes from the "
                                          "debtor's rules alone; check that its exposures were not left out"]


def test_a_debtor_line_without_exposures_is_counted_in_a_batch_of_json_lines(tmp_path: Path) -> None:
    """batch of JSON Lines of debtors names decided_without_elements as a folder of tables does."""
    record = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text(encoding="utf-8"))
    empty = {**record, "client_id": "NONE", "exposures": []}
    lines = tmp_path / "d.jsonl"
    lines.write_text(json.dumps(record) + "\n" + json.dumps(empty) + "\n", encoding="utf-8")
    r = _cli("batch", str(lines), "-p", ID, "--out", str(tmp_path / "d.csv"), "--format", "json")
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["decided_without_elements"] == 1 and s["accounting"]["decided"] == 2
    # debtor records join no tables: the warning speaks of the records, not of rows and ids
    [note] = json.loads(r.stderr)["warnings"]  # --format json: one JSON document on stderr
    assert (note["code"], note["message"]) == ("decided-without-elements", "1 debtor(s) decided without any element "
                                               "of exposures: graded by the debtor's rules alone (check that their "
                                               "records were not cut short)")


def test_the_python_api_gives_decides_warnings_for_a_decision_record() -> None:
    import policy_engine as pe

    record = json.loads(RESTARTED.read_text(encoding="utf-8"))
    policy = pe.Registry(str(POLICIES)).select(ID, as_of=record["as_of"])
    decider = pe.Decider(policy)
    assert pe.decision_warnings(decider.decide(record), policy) == []
    assert pe.decision_warnings(decider.decide({**record, "exposures": []}), policy) == [
        "the record holds no exposure: its grade comes from the debtor's rules alone; check that its exposures "
        "were not left out"]
    # given the record decided, the warning of a record decided as of another day than its own, as decide gives it
    later = decider.decide(record, as_of="2026-12-31")
    [words] = pe.decision_warnings(later, policy, record)
    assert words.startswith(f"the record is dated {record['as_of']} and decided as of 2026-12-31, 92 days later: ")
    assert pe.decision_warnings(later, policy) == [] and pe.decision_warnings(decider.decide(record), policy,
                                                                              record) == []


def test_a_batch_under_a_pinned_version_says_how_many_rows_it_was_not_in_force_for(tmp_path: Path) -> None:
    """decide says a pinned version was not in force on the client's day; a batch counts such rows (summary
    not_in_force) and says so once on stderr. Under the policy id each row takes its day's version: nothing."""
    lines = tmp_path / "debtors.jsonl"
    lines.write_text("".join(json.dumps(json.loads(p.read_text(encoding="utf-8"))) + "\n" for p in DEBTORS),
                     encoding="utf-8")
    pinned = _cli("batch", str(lines), "-p", f"{ID}@2.1.0", "--format", "json")
    assert pinned.exit_code == 0
    late = {"decided": len(DEBTORS), "version": "2.1.0", "id": ID, "effective_from": "2027-07-01",
            "effective_to": None}
    assert json.loads(pinned.stdout)["not_in_force"] == late
    import policy_engine as pe  # the run layer under the command accounts alike

    api = pe.run_batch(ID, lines, version="2.1.0", registry=str(POLICIES), audit_db=False)
    assert api.summary["not_in_force"] == late
    assert [n["message"] for n in json.loads(pinned.stderr)["warnings"]] == [
        f"{len(DEBTORS)} decision(s) made under {ID} 2.1.0 as pinned, not in force on their day (it applies from "
        "2027-07-01)"]
    by_day = _cli("batch", str(lines), "-p", ID, "--format", "json")
    assert by_day.exit_code == 0 and "not_in_force" not in json.loads(by_day.stdout) and "in force" not in by_day.stderr
