"""impact 1.x against a policy id over a portfolio of 1.x rows whose days fall under 1.x and 2.0 versions:
each row is decided under the version in force on its day, converted first when that version decides
debtors (as a pinned 2.0 NEW does); the figures equal deciding each row by hand, and the conversion
block counts only the rows converted."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy
from policy_engine.review.convert import convert_record

from ..conftest import POLICIES, REFERENCE

OLD = "loss-client-management@1.1.0"
BY_DAY = "loss-client-management"
PORTFOLIO = REFERENCE / "samples" / "portfolio.jsonl"
LATE = "2026-09-30"  # 2.0.0 is in force from 2026-07-01


def _impact(portfolio: Path, *args: str, old: str = OLD, new: str = BY_DAY) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "impact", old, new, "--portfolio", str(portfolio),
                                     *args], catch_exceptions=False)


def _records() -> list[dict[str, Any]]:
    """The sample 1.x portfolio, every other client dated after 2.0.0 came into force."""
    records = [json.loads(line) for line in PORTFOLIO.read_text(encoding="utf-8").splitlines()]
    for k, r in enumerate(records):
        if k % 2:
            r["as_of"] = LATE
    return records


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mixed") / "mixed.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in _records()), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def report(mixed: Path) -> dict[str, Any]:
    r = _impact(mixed, "--format", "json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_each_row_is_decided_under_the_version_of_its_day(report: dict[str, Any]) -> None:
    old = Decider(load_policy(REFERENCE / "policy-1.1.0.yaml"))
    new = Decider(load_policy(REFERENCE / "policy-2.0.0.yaml"))
    grades = report["migration"]["grades"]
    counts = [[0] * len(grades) for _ in grades]
    for record in _records():
        a = old.decide(record)["classification"]["grade"]
        if record["as_of"] == LATE:
            converted = convert_record(record)
            assert converted.record is not None
            b = new.decide(converted.record)["classification"]["grade"]
        else:
            b = a  # 1.1.0 is in force on its day: the same version on both sides
        counts[grades.index(a)][grades.index(b)] += 1
    assert report["migration"]["counts"] == counts
    assert report["summary"]["grade_changed"] > 0
    late = sum(r["as_of"] == LATE for r in _records())
    assert report["clients"] == len(_records()) and report["rejected"]["rows"] == 0
    assert report["new"]["version"] == "1.1.0, 2.0.0" and report["new"]["sha256"] is None
    assert [(v["version"], v["decided"]) for v in report["new"]["versions"]] == \
        [("1.1.0", len(_records()) - late), ("2.0.0", late)]


def test_only_the_rows_under_2_0_are_converted(report: dict[str, Any]) -> None:
    late = [r for r in _records() if r["as_of"] == LATE]
    conv = report["conversion"]
    assert conv["converted"] == len(late) and conv["not_converted"] == 0
    expected: Counter[str] = Counter()
    for r in late:
        expected.update({n.code for n in convert_record(r).notes})
    assert {code: f["records"] for code, f in conv["assumed_facts"].items()} == dict(expected)


def test_rows_under_2_0_match_a_pinned_new(tmp_path: Path) -> None:
    """The late rows alone, NEW by day, give the report of NEW pinned to 2.0.0 (one version on the new side)."""
    late = tmp_path / "late.jsonl"
    late.write_text("".join(json.dumps(r) + "\n" for r in _records() if r["as_of"] == LATE), encoding="utf-8")
    by_day, pinned = (_impact(late, "--format", "json", new=new) for new in (BY_DAY, "loss-client-management@2.0.0"))
    assert by_day.exit_code == pinned.exit_code == 0, by_day.stderr + pinned.stderr
    assert json.loads(by_day.stdout) == json.loads(pinned.stdout)


def test_a_csv_portfolio_splits_by_day_as_json_lines_do(tmp_path: Path, report: dict[str, Any]) -> None:
    """The same clients as a CSV table (text cells, read by the table reader) give the same report."""
    frame = pd.read_csv(PORTFOLIO.with_suffix(".csv"), dtype=str, keep_default_na=False)
    assert frame["client_id"].tolist() == [r["client_id"] for r in _records()]
    frame.loc[frame.index % 2 == 1, "as_of"] = LATE
    src = tmp_path / "mixed.csv"
    frame.to_csv(src, index=False)
    r = _impact(src, "--format", "json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    for key in ("migration", "summary", "new", "conversion", "warnings", "actions"):
        assert got[key] == report[key], key


def _impact_with_rejects(tmp_path: Path, records: list[dict[str, Any]]) -> tuple[dict[str, Any], Path]:
    """The JSON report of impact by day over ``records``, and its rejects file."""
    src = tmp_path / "p.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    r = _impact(src, "--format", "json", "--rejects", str(rejects))
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout), rejects


def test_a_row_rejected_on_its_side_is_counted(tmp_path: Path) -> None:
    records = _records()
    records[1]["internal_rating"] = 99  # a late row out of range: rejected on both sides
    records[2]["as_of"] = "2026-06-30"  # the last day of 1.1.0: decided as it is
    rep, rejects = _impact_with_rejects(tmp_path, records)
    assert rep["rejected"]["rows_read"] == len(records) == rep["clients"] + rep["rejected"]["rows"]
    assert [json.loads(x)["row"] for x in rejects.read_text(encoding="utf-8").splitlines()] == [2]
    assert sum(v["decided"] for v in rep["new"]["versions"]) == rep["clients"]


def test_a_scoped_old_side_needs_a_pinned_new(tmp_path: Path) -> None:
    debtors = tmp_path / "debtors.jsonl"
    debtors.write_text("".join(json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n"
                               for f in sorted((REFERENCE / "samples" / "debtors").glob("*.json"))), encoding="utf-8")
    r = _impact(debtors, "--format", "json", old="loss-client-management@2.0.0")
    assert r.exit_code == 2
    (error,) = json.loads(r.stderr)["errors"]
    assert error["code"] == "scoped-new-unpinned" and "loss-client-management@VERSION" in error["hint"]


def test_an_id_repeated_across_the_halves_is_rejected_on_both_sides(tmp_path: Path) -> None:
    """A client id seen on an earlier row is a duplicate whichever version either row falls under: the new
    side rejects the rows the old side rejects, with the same words (rows of the whole input)."""
    records = _records()[:6]
    records += [dict(records[0], as_of=LATE),  # early id again, late: across the halves
                dict(records[1]),  # late id again, late
                dict(records[3], as_of="2025-09-30"),  # late id again, early: across the other way
                dict(records[4])]  # early id again, early
    rep, rejects = _impact_with_rejects(tmp_path, records)
    assert rep["rejected"] == {"old": 4, "new": 4, "rows": 4, "rows_read": 10, "compared": 6}
    got = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(x["row"], x["side"]) for x in got] == [(7, "both"), (8, "both"), (9, "both"), (10, "both")]
    first = {7: 1, 8: 2, 9: 4, 10: 5}
    for x in got:
        (problem,) = x["problems"]
        assert problem["code"] == "duplicate-id"
        assert problem["message"] == f"duplicate client_id '{x['client_id']}' (first at row {first[x['row']]})"
    assert sum(v["decided"] for v in rep["new"]["versions"]) == rep["clients"] == 6


@pytest.mark.parametrize("fmt, lang, title, decided", [
    ("text", "en", "Versions in force (clients decided under each)", "after  2.0.0"),
    ("markdown", "zh", "生效版本（各版本决策户数）", "| 变更后 | 2.0.0 |"),
])
def test_text_and_markdown_show_the_clients_decided_under_each_version(mixed: Path, report: dict[str, Any], fmt: str,
                                                                       lang: str, title: str, decided: str) -> None:
    r = _impact(mixed, "--format", fmt, "--lang", lang)
    assert r.exit_code == 0, r.stderr
    assert title in r.stdout
    for v in report["new"]["versions"]:
        (line,) = [x for x in r.stdout.splitlines() if v["sha256"] in x]
        assert v["version"] in line and f"{v['decided']:,}" in line
    assert decided in r.stdout
