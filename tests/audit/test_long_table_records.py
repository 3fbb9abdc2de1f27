"""A folder of long tables is recorded as ``decide`` records each debtor: the record rebuilt from the tables,
decided by ``decide``'s decider, stored in decision segments; a rerun of a folder recorded whole decides
nothing again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.portfolio import long_records
from policy_engine.record.audit import AuditStore

from ..conftest import POLICIES, REFERENCE

POLICY = str(REFERENCE / "policy-2.0.0.yaml")
AS_OF = "2026-09-30"


def run(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    r = run("generate", "-p", POLICY, "--n", "30", "--seed", "5", "--as-of", AS_OF, "--out", str(tmp_path / "t"),
            "--tables", "parquet")
    assert r.exit_code == 0, r.output
    return tmp_path / "t"


def test_a_folder_is_recorded_as_decide_records_its_debtors(folder: Path, tmp_path: Path) -> None:
    db, records = tmp_path / "a.db", tmp_path / "records.jsonl"
    r = run("--audit-db", str(db), "batch", str(folder), "-p", POLICY, "--format", "json", "--records", str(records))
    assert r.exit_code == 0, r.output
    written = [json.loads(x) for x in records.read_text("utf-8").splitlines()]
    with AuditStore(db) as store:
        assert store.verify()[1] is None
        rows = list(store.query())
        assert store.db.execute("SELECT count(*) FROM decision").fetchone()[0] == 0  # segments, not rows
        assert [store.full_decision(row)[0] for row in rows] == written
        assert {store.replay(row)[0] for row in rows} == {"identical"}


def test_a_rerun_of_a_folder_recorded_whole_decides_nothing_again(folder: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "a.db"
    assert run("--audit-db", str(db), "batch", str(folder), "-p", POLICY, "--format", "json").exit_code == 0

    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("a rerun decided the recorded debtors again")

    monkeypatch.setattr(long_records, "decided_lines", refuse)
    again = run("--audit-db", str(db), "batch", str(folder), "-p", POLICY, "--format", "json")
    assert again.exit_code == 0, again.output
    assert "30 client(s) of this batch were already recorded; 0 recorded now" in again.stderr


def test_a_rerun_with_records_names_the_stored_records(folder: Path, tmp_path: Path) -> None:
    """The debtors a rerun skips are written to --records under the ids and times the store keeps."""
    db = tmp_path / "a.db"
    lines = []
    for name in ("first.jsonl", "again.jsonl"):
        r = run("--audit-db", str(db), "batch", str(folder), "-p", POLICY, "--format", "json", "--records",
                str(tmp_path / name))
        assert r.exit_code == 0, r.output
        lines.append([json.loads(x) for x in (tmp_path / name).read_text("utf-8").splitlines()])
    assert lines[1] == lines[0] and len(lines[0]) == 30
    with AuditStore(db) as store:
        assert [store.full_decision(store.get(x["decision_id"]))[0] for x in lines[1]] == lines[1]


def test_a_rebuilt_record_decided_otherwise_than_the_tables_is_an_engine_fault(folder: Path, tmp_path: Path) -> None:
    import pandas as pd

    from policy_engine.policy.registry import load_policy
    from policy_engine.portfolio.long_tables import run_long_batch

    policy = load_policy(POLICY)
    result = run_long_batch(policy, folder, AS_OF)
    lines = tmp_path / "lines.jsonl"
    long_records.write_lines(policy, folder, result.decisions, lines)
    assert len(list(long_records.decided_lines(policy, lines, result.decisions, AS_OF))) == 30
    forged = result.decisions.copy()
    forged["grade"] = pd.Series(["loss" if g != "loss" else "pass" for g in forged["grade"].astype(str)])
    with pytest.raises(AssertionError, match="was not decided as the tables were"):
        next(long_records.decided_lines(policy, lines, forged, AS_OF))


def test_the_records_are_built_a_chunk_of_debtors_at_a_time_and_are_the_same(folder: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A portfolio of 200,000 debtors held 8.8 GB of nested records while it was recorded: they are built a chunk
    at a time now. Chunks of 3 (a debtor's rows in every table found by its place) give the records one chunk does,
    in the same order, each child element under its own parent."""
    from policy_engine.policy.registry import load_policy
    from policy_engine.portfolio import long_tables
    from policy_engine.portfolio.long_tables import nested_records, run_long_batch

    policy = load_policy(POLICY)
    ids = run_long_batch(policy, folder).decisions["client_id"].astype(str).tolist()
    assert len(ids) > 7
    whole = list(nested_records(policy, folder, ids))
    monkeypatch.setattr(long_tables, "RECORDS_AT_ONCE", 3)
    assert list(nested_records(policy, folder, ids)) == whole
    assert list(nested_records(policy, folder, ids[::-1])) == whole[::-1]  # each id's record, in the order asked
    assert sum(len(r.get("exposures", [])) for r in whole) > len(ids)  # children were attached
