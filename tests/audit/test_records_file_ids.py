"""``batch --records`` writes each record under the id and time the store keeps it by: ``audit show`` of the
id a line gives is that line's record (1.x client tables, debtor lines, a file mixing both versions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.record.audit import AuditStore

from ..conftest import POLICIES, REFERENCE

SAMPLES = REFERENCE / "samples"
DEBTORS = sorted((SAMPLES / "debtors").glob("*.json"))


def _debtor_lines() -> str:
    return "".join(json.dumps(json.loads(p.read_text(encoding="utf-8"))) + "\n" for p in DEBTORS)


def _inputs(tmp_path: Path, kind: str) -> tuple[Path, str]:
    if kind == "table":
        return SAMPLES / "portfolio.csv", "loss-client-management"
    path = tmp_path / "in.jsonl"
    if kind == "debtors":
        path.write_text(_debtor_lines(), encoding="utf-8")
    else:  # 1.x clients and 2.0 debtors in one file: each line under the version of its day
        path.write_text((SAMPLES / "portfolio.jsonl").read_text(encoding="utf-8") + _debtor_lines(), encoding="utf-8")
    return path, "loss-client-management"


@pytest.mark.parametrize("kind", ["table", "debtors", "mixed"])
def test_each_record_is_found_in_the_store_by_the_id_the_file_gives_it(tmp_path: Path, kind: str) -> None:
    source, policy = _inputs(tmp_path, kind)
    db, records = tmp_path / "a.db", tmp_path / "records.jsonl"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(db), "batch", str(source), "-p",
                                  policy, "--records", str(records), "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    lines: list[dict[str, Any]] = [json.loads(x) for x in records.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == json.loads(r.stdout)["accounting"]["decided"] > 0
    with AuditStore(db) as store:
        for line in lines:
            row = store.get(line["decision_id"])
            assert row["client_id"] == line["client_id"]
            assert store.full_decision(row)[0] == line


@pytest.mark.parametrize("kind", ["table", "debtors", "mixed"])
def test_a_rerun_names_the_records_an_earlier_run_stored(tmp_path: Path, kind: str) -> None:
    """A rerun records nothing again; its --records lines carry the ids and times the store keeps (they were
    fresh ids before, which ``audit show`` did not find)."""
    source, policy = _inputs(tmp_path, kind)
    db = tmp_path / "a.db"
    runs = []
    for name in ("first.jsonl", "again.jsonl"):
        r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(db), "batch", str(source), "-p",
                                      policy, "--records", str(tmp_path / name), "--format", "json"],
                               catch_exceptions=False)
        assert r.exit_code == 0, r.stderr
        runs.append([json.loads(x) for x in (tmp_path / name).read_text(encoding="utf-8").splitlines()])
    first, again = runs
    assert again == first  # the same records: nothing decided differs, and each keeps its stored id and time
    with AuditStore(db) as store:
        assert store.head()[0] == len(first)  # the rerun stored nothing
        for line in again:
            assert store.full_decision(store.get(line["decision_id"]))[0] == line
