"""The 1.x -> 2.0 converter: every sample converts, validates against client record 2.0 and is decided
by 2.0.0; per-field cases from YAML; bureau amounts keep the 1.x share exactly; the command's output."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy
from policy_engine.review.convert import CODES, MAX_DEBT, add_months, bureau_amounts, convert_record, frequency, tally

from ..conftest import DATA, POLICIES, REFERENCE, ROOT, SAMPLES

V2 = REFERENCE / "policy-2.0.0.yaml"
SCHEMA_V2 = json.loads((ROOT / "schemas" / "client-2.0.schema.json").read_text(encoding="utf-8"))
SCHEMA_V1 = json.loads((ROOT / "schemas" / "client.schema.json").read_text(encoding="utf-8"))
CASES = yaml.safe_load((DATA / "convert" / "cases.yaml").read_text(encoding="utf-8"))["cases"]


@pytest.fixture(scope="module")
def decider() -> Any:
    return Decider(load_policy(V2))


def _sample(prefix: str) -> dict[str, Any]:
    return json.loads(next(f for f in SAMPLES if f.name.startswith(prefix)).read_text(encoding="utf-8"))


def _steps(path: str) -> list[str | int]:
    return [int(p) if re.fullmatch(r"-?\d+", p) else p for p in re.findall(r"[^.\[\]]+", path)]


def _at(record: Any, path: str) -> Any:
    cur = record
    for step in _steps(path):
        cur = cur[step]
    return cur


def _set(record: Any, path: str, value: Any) -> None:
    steps = _steps(path)
    cur = record
    for step in steps[:-1]:
        cur = cur[step]
    cur[steps[-1]] = value


def _valid_v2(record: dict[str, Any]) -> None:
    jsonschema.validate(record, SCHEMA_V2, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_converts_validates_and_is_decided_by_2_0_0(path: Path, decider: Any) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.validate(record, SCHEMA_V1)  # a 1.x record to begin with
    c = convert_record(record)
    assert c.ok, c.problems
    assert c.record is not None
    _valid_v2(c.record)
    decision = decider.decide(c.record)
    assert decision["classification"]["grade"] in ("pass", "special_mention", "substandard", "doubtful", "loss")
    assert [e["exposure_id"] for e in decision["exposures"]] == ["L1"]
    # what was not known is noted, never silently filled: credit-impaired stays empty and the rule says so
    assert c.record["exposures"][0]["accounting"]["credit_impaired"] is None
    assert "no-accounting" in {n.code for n in c.notes}
    assert any(u.get("rule") == "credit_impaired" for u in decision["undetermined"])
    for note in c.notes:
        assert note.kind in ("assumed", "unknown", "not_carried") and note.reason and note.field


@pytest.mark.parametrize("case", CASES, ids=lambda c: c["name"])
def test_conversion_case(case: dict[str, Any], decider: Any) -> None:
    record = copy.deepcopy(case["record"]) if "record" in case else _sample(case["client"])
    for path, value in (case.get("patch") or {}).items():
        _set(record, path, value)
    c = convert_record(record, case.get("as_of"))
    if "reject" in case:
        assert not c.ok
        assert {"code": case["reject"]["code"], "field": case["reject"]["field"]} in [
            {"code": p["code"], "field": p["field"]} for p in c.problems]
        return
    assert c.ok, c.problems
    assert c.record is not None
    _valid_v2(c.record)
    for path, want in (case.get("expect") or {}).items():
        assert _at(c.record, path) == want, path
    codes = {n.code for n in c.notes}
    assert set(case.get("notes", [])) <= codes, set(case.get("notes", [])) - codes
    assert not set(case.get("no_notes", [])) & codes
    decision = decider.decide(c.record)
    if "grade" in case:
        assert decision["classification"]["grade"] == case["grade"]
    if "decided_by" in case:
        assert case["decided_by"] in {decision["classification"]["decided_by"],
                                      *(e["decided_by"] for e in decision["exposures"])}


@given(share=st.floats(0, 1), own=st.floats(1, 1e12), overdue=st.booleans())
def test_bureau_amounts_reproduce_the_share_exactly(share: float, own: float, overdue: bool) -> None:
    own_90 = own if overdue else 0.0
    got = bureau_amounts(share, own, own_90)
    if got is None:  # a share 0 needs no amounts (or none can: the loan is overdue); 1 beside a current loan;
        # or only debt beyond what a record holds gives the share (the search for exact quotients may double it)
        if share == 0 or (share == 1 and not overdue):
            return
        assert (own / share - own if overdue else share * own / (1 - share)) > MAX_DEBT / 2 - 16
        return
    total, amount = got
    assert 0 <= amount <= total <= MAX_DEBT
    assert (amount + own_90) / (total + own) == share  # as the policy computes it


def test_whole_numbers_written_with_a_fraction_part_convert_as_integers() -> None:
    """30.0 days past due is 30 to decide, so to convert too (impact over a CSV whose column had a gap compared no
    client at all); the 2.0 record writes it as the integer it is, and counts months with it."""
    record = _sample("13")
    record["loan"]["days_past_due"] = 0.0
    record["history"] = {**(record.get("history") or {}), "months_normal_payment": 6.0,
                         "consecutive_normal_payments": 2.0}
    record["restructuring"]["periods_repaid"] = float(record["restructuring"]["periods_repaid"])
    c = convert_record(record)
    assert c.ok, c.problems
    assert c.record is not None
    assert type(c.record["exposures"][0]["days_past_due"]) is int
    assert c.record == convert_record(_sample_with_ints(record)).record
    assert type(record["loan"]["days_past_due"]) is float  # the caller's record is left as given


def _sample_with_ints(record: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(record)
    out["loan"]["days_past_due"] = 0
    out["history"]["months_normal_payment"], out["history"]["consecutive_normal_payments"] = 6, 2
    out["restructuring"]["periods_repaid"] = int(out["restructuring"]["periods_repaid"])
    return out


def test_frequency_is_the_shortest_period_that_fits() -> None:
    start, as_of = dt.date(2025, 1, 31), dt.date(2025, 6, 30)
    assert frequency(start, 4, as_of) == 1  # Feb 28, Mar 31, Apr 30, May 31
    assert frequency(start, 2, as_of) == 2  # Mar 31, May 31
    assert frequency(start, 1, as_of) == 3  # Apr 30
    assert frequency(start, 0, as_of) == 6  # Jul 31 is after
    assert frequency(start, 9, as_of) is None
    assert add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)


def test_tally_counts_records_per_code_once() -> None:
    notes = [convert_record(_sample(p)).notes for p in ("13", "14", "01")]
    t = tally(notes)
    assert t["schedule-from-counts"]["records"] == 2
    assert t["currency"]["records"] == 3
    assert next(iter(t)) in {k for k, v in t.items() if v["kind"] == "assumed"}


def _cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], input=input, catch_exceptions=False)


def test_convert_one_record_pipes_into_decide(tmp_path: Path) -> None:
    src = next(f for f in SAMPLES if f.name.startswith("13"))
    r = _cli("convert", str(src), "--to", "2.0", "--assumptions", str(tmp_path / "a.jsonl"))
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    _valid_v2(record)
    notes = [json.loads(x) for x in (tmp_path / "a.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(notes) == 1 and notes[0]["row"] == 1 and notes[0]["client_id"] == "C013"
    assert {"kind": "assumed", "code": "modification-measure"} in [
        {"kind": n["kind"], "code": n["code"]} for n in notes[0]["notes"]]
    d = _cli("decide", "-p", str(V2), "-c", "-", "--no-audit", "--format", "json", input=r.stdout)
    assert d.exit_code == 0, d.stderr
    assert json.loads(d.stdout)["classification"]["decided_by"] == "restructured_in_observation"


def test_convert_a_portfolio_counts_every_row(tmp_path: Path) -> None:
    good = _sample("01")
    lines = [json.dumps(good), "{not json", json.dumps({**_sample("02"), "loan": "none"}), "",
             json.dumps(good), json.dumps({"client_id": "D", "debtor_id": "D", "exposures": []})]
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out, rejects = tmp_path / "out.jsonl", tmp_path / "rejects.jsonl"
    r = _cli("convert", str(src), "--to", "2.0", "--out", str(out), "--rejects", str(rejects), "--format", "json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    assert (summary["rows_read"], summary["converted"], summary["rejected"]) == (5, 1, 4)  # the blank line is none
    assert summary["assumptions"]["currency"]["records"] == 1
    converted = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [c["client_id"] for c in converted] == ["C001"]
    rej = {r["row"]: r["problems"][0]["code"] for r in map(json.loads, rejects.read_text().splitlines())}
    assert rej == {2: "bad-json", 3: "bad-type", 5: "duplicate-id", 6: "already-v2"}  # rows keep their lines


def test_convert_a_csv_portfolio(tmp_path: Path) -> None:
    out = tmp_path / "debtors.jsonl"
    r = _cli("convert", str(REFERENCE / "samples" / "portfolio.csv"), "--to", "2.0", "--out", str(out),
             "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["converted"] == 21
    for line in out.read_text(encoding="utf-8").splitlines():
        _valid_v2(json.loads(line))


def test_a_single_record_that_is_not_1x_is_exit_3() -> None:
    r = _cli("convert", "-", "--to", "2.0", "--format", "json", input='{"client_id": "X"}')
    assert r.exit_code == 3
    assert "missing-field" in r.stderr and "industry" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_missing_file_is_exit_2(tmp_path: Path) -> None:
    r = _cli("convert", str(tmp_path / "nope.json"), "--to", "2.0")
    assert r.exit_code == 2


def test_every_note_code_has_its_reason_in_chinese() -> None:
    """A Chinese impact report states each assumption in Chinese: no code falls back to English."""
    from policy_engine.review.convert import REASONS_ZH

    assert set(REASONS_ZH) == set(CODES)
    assert all(re.search(r"[\u4e00-\u9fff]", r) for r in REASONS_ZH.values())
    t = tally([convert_record(_sample(p)).notes for p in ("13", "14", "01")])
    assert t["currency"]["reason_zh"] == REASONS_ZH["currency"] and t["currency"]["reason"] == "1.x amounts are in CNY"


def test_every_note_code_is_documented_and_every_documented_code_exists() -> None:
    page = (ROOT / "docs" / "convert.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `([a-z0-9-]+)` \| (assumed|unknown|not_carried) \|", page, re.M))
    assert table == CODES
    assert "../shared" not in page


def test_nothing_to_convert_is_named_as_decide_and_batch_name_it(tmp_path: Path) -> None:
    """Nothing on stdin is a usage error (exit 2) as for decide -c -; an empty JSON Lines file is an empty
    portfolio (exit 3) as for batch. Both said '0 read: 0 converted', exit 0."""
    r = _cli("convert", "-", "--to", "2.0", input="")
    assert r.exit_code == 2 and "no-client-data" in r.stderr, r.output
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf-8")
    r = _cli("convert", str(empty), "--to", "2.0")
    assert r.exit_code == 3 and "empty-table" in r.stderr and "record a line" in r.stderr, r.output
