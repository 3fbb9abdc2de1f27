"""A debtor batch is recorded as decision segments: its full records and input records, compressed in segments
of consecutive ids, read back as a single decision's row is (show, replay, verify, reruns), at a fraction of
the size of a row of JSON each."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.canonical import canonical_json
from policy_engine.decide.evaluate import _IDS
from policy_engine.record.audit import AuditStore
from policy_engine.record.segments import DECISION_SEGMENT_FORMAT, decision_groups, decision_segment, read_segment

from ..conftest import POLICIES, REFERENCE

DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))


def cli(db: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(db), *args],
                              catch_exceptions=False)


@pytest.fixture()
def debtors(tmp_path: Path) -> Path:
    path = tmp_path / "debtors.jsonl"
    path.write_text("".join(json.dumps(json.loads(p.read_text(encoding="utf-8")), ensure_ascii=False) + "\n"
                            for p in DEBTORS), encoding="utf-8")
    return path


def _batch(db: Path, debtors: Path, *args: str) -> Any:
    r = cli(db, "batch", str(debtors), "-p", "loss-client-management@2.0.0", "--format", "json", *args)
    assert r.exit_code == 0, r.stderr
    return r


def test_a_debtor_batch_is_stored_as_segments_read_back_as_its_records(tmp_path: Path, debtors: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_ENGINE_AUDIT_CHUNK", "10")  # 25 debtors: segments of 10, 10 and 5
    db, records = tmp_path / "a.db", tmp_path / "records.jsonl"
    _batch(db, debtors, "--records", str(records))
    written = [json.loads(line) for line in records.read_text(encoding="utf-8").splitlines()]
    assert len(written) == len(DEBTORS)
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT count(*) FROM decision").fetchone()[0] == 0  # no row of JSON per debtor
        assert [r[0] for r in raw.execute("SELECT rows FROM segment ORDER BY id")] == [10, 10, 5]
    with AuditStore(db) as store:
        assert store.verify()[1] is None
        rows = list(store.query())
        # The store holds each record as --records wrote it, under the same id, and the input as it was read.
        assert [store.full_decision(r) for r in rows] == [(d, None) for d in written]
        assert [store.get(d["decision_id"])["client_id"] for d in written] == [d["client_id"] for d in written]
        inputs = [store.stored(r)[1] for r in rows]  # in the form hashed, as a single decision's row keeps it
        assert inputs == [json.loads(canonical_json(json.loads(p.read_text(encoding="utf-8")), lists_optional=True))
                          for p in DEBTORS]
        assert {store.replay(r)[0] for r in rows} == {"identical"}
    shown = json.loads(cli(db, "audit", "show", written[3]["decision_id"], "--format", "json").stdout)
    assert (shown["seq"], shown["decision"]) == (4, written[3])


def test_a_rerun_records_nothing_new_and_hash_only_keeps_no_input(tmp_path: Path, debtors: Path) -> None:
    db = tmp_path / "a.db"
    _batch(db, debtors)
    assert f"{len(DEBTORS)} client(s) of this batch were already recorded; 0 recorded now" in _batch(db, debtors).stderr
    with AuditStore(db) as store:
        assert len(list(store.query())) == len(DEBTORS)
    hashed = tmp_path / "h.db"
    _batch(hashed, debtors, "--audit-inputs", "hash-only")
    with AuditStore(hashed) as store:
        rows = list(store.query())
        assert {store.replay(r)[0] for r in rows} == {"not-replayable"}
        assert [r["input_sha256"] for r in rows] == [store.stored(r)[0]["input_sha256"] for r in rows]


def test_a_tampered_decision_segment_breaks_the_chain_and_replay_names_the_field(tmp_path: Path,
                                                                                 debtors: Path) -> None:
    import pyarrow as pa

    db = tmp_path / "a.db"
    _batch(db, debtors)
    with sqlite3.connect(db) as raw:
        data = raw.execute("SELECT data FROM segment").fetchone()[0]
        decisions, records, meta = read_segment(data)
        assert meta["format"] == DECISION_SEGMENT_FORMAT and records is not None
        forged = json.loads(decisions[0])
        forged["classification"]["grade"] = "pass" if forged["classification"]["grade"] != "pass" else "loss"
        decisions[0] = json.dumps(forged)
        table = pa.table({"decision": decisions, "record": records}).replace_schema_metadata(meta)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        raw.execute("UPDATE segment SET data = ?", (sink.getvalue().to_pybytes(),))
    with AuditStore(db) as store:
        _, broken = store.verify()
        assert broken is not None and broken.seq == 1 and "segment" in broken.detail
        status, diffs = store.replay(next(iter(store.query())))
        assert status == "different" and any(d.startswith("classification.grade") for d in diffs)


def _pairs(n: int, stored: set[int]) -> list[tuple[dict[str, Any], Any, bool]]:
    return [({"decision_id": _IDS.next(), "client_id": f"D{i}", "as_of": "2026-09-30", "input_sha256": "0" * 64,
              "classification": {"grade": "pass"}}, {"client_id": f"D{i}"}, i in stored) for i in range(n)]


def test_each_group_is_one_block_of_ids_and_every_decision_is_written_in_order(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_ENGINE_AUDIT_CHUNK", "3")
    pairs = _pairs(8, stored={0, 2, 3, 5, 6, 7})  # 1 and 4 were recorded by an earlier run: written, not stored
    _IDS.next()  # an id taken elsewhere between two decisions: the ids as decided are not one block
    seen: list[str] = []
    groups = list(decision_groups(pairs, lambda d: seen.append(d["client_id"])))
    assert [[d["client_id"] for d, _ in g] for g in groups] == [["D0", "D2", "D3"], ["D5", "D6", "D7"]]
    assert seen == [f"D{i}" for i in range(8)]
    for g in groups:
        data, records = decision_segment(g)
        assert [f"{records.id_prefix}{records.id_first + i:012x}" for i in range(len(g))] == \
            [d["decision_id"] for d, _ in g]
        assert records.client_ids == [d["client_id"] for d, _ in g]
        assert [json.loads(x)["decision_id"] for x in read_segment(data)[0]] == [d["decision_id"] for d, _ in g]


def test_a_segment_of_ids_that_are_not_one_block_is_refused() -> None:
    group = [(d, r) for d, r, _ in _pairs(3, stored={0, 1, 2})]
    group[1][0]["decision_id"] = _IDS.next()
    with pytest.raises(ValueError, match="one block"):
        decision_segment(group)


def test_decisions_a_rerun_skips_are_written_as_they_come_not_held_to_the_end(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_ENGINE_AUDIT_CHUNK", "2")  # groups of 2, at most 8 decisions held
    pulled: list[int] = []
    written_at: list[int] = []

    def pairs() -> Any:
        for k, item in enumerate(_pairs(20, stored={19})):  # recorded before, all but the last
            pulled.append(k)
            yield item

    (group,) = list(decision_groups(pairs(), lambda d: written_at.append(len(pulled))))
    assert [d["client_id"] for d, _ in group] == ["D19"]
    assert written_at[:8] == [8] * 8 and len(written_at) == 20  # the first 8 written once 8 were read
