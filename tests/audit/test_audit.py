"""The decision store: every decision recorded, tampering caught by kind, exact replay."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.audit import AuditStore, record_hash
from policy_engine.cli import main
from policy_engine.evaluate import Decider

from ..conftest import POLICIES, REFERENCE, ROOT, SAMPLES

PORTFOLIO = REFERENCE / "samples" / "portfolio.csv"


def cli(db: Path, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(db), *args], input=stdin,
                              catch_exceptions=False)


@pytest.fixture()
def store_with_samples(tmp_path: Path) -> Path:
    db = tmp_path / "audit.db"
    r = cli(db, "batch", str(PORTFOLIO), "-p", "loss-client-management", "--format", "json")
    assert r.exit_code == 0, r.stderr
    return db


def test_decide_and_batch_record_by_default_and_not_with_no_audit(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    assert cli(db, "decide", "-p", "loss-client-management", "-c", str(SAMPLES[1])).exit_code == 0
    assert cli(db, "decide", "-p", "loss-client-management", "-c", str(SAMPLES[2]), "--no-audit").exit_code == 0
    cli(db, "batch", str(PORTFOLIO), "-p", "loss-client-management", "--format", "json")
    with AuditStore(db) as store:
        rows = list(store.query())
        assert len(rows) == 1 + len(SAMPLES)
        assert store.db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert store.db.execute("SELECT count(*) FROM policy_snapshot").fetchone()[0] == 1
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    listing = [json.loads(x) for x in cli(db, "audit", "list", "--grade", "loss").stdout.splitlines()]
    assert {x["client_id"] for x in listing} == {"C004", "C009", "C021"}


def test_stream_records_each_answered_line(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    lines = "\n".join(p.read_text(encoding="utf-8").replace("\n", " ") for p in SAMPLES[:3]) + "\nnot json\n"
    r = cli(db, "decide", "-p", "loss-client-management", "--stream", stdin=lines)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 4
    with AuditStore(db) as store:
        assert len(list(store.query())) == 3


def test_verify_intact_chain_and_show_and_export(store_with_samples: Path, tmp_path: Path) -> None:
    r = cli(store_with_samples, "audit", "verify", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout) == {"records": len(SAMPLES), "ok": True, "break": None}
    shown = json.loads(cli(store_with_samples, "audit", "show", "2", "--format", "json").stdout)
    assert shown["decision"]["client_id"] == "C002" and "Special mention" in shown["explanation"]
    zh = cli(store_with_samples, "audit", "show", shown["decision"]["decision_id"], "--format", "text", "--lang", "zh")
    assert "风险分类：关注" in zh.stdout
    out = tmp_path / "e.parquet"
    assert cli(store_with_samples, "audit", "export", "--client", "C002", "--out", str(out)).exit_code == 0
    import pandas as pd

    assert pd.read_parquet(out)["client_id"].tolist() == ["C002"]
    jl = tmp_path / "e.jsonl"
    cli(store_with_samples, "audit", "export", "--out", str(jl))
    assert len(jl.read_text().splitlines()) == len(SAMPLES)


def _raw(db: Path) -> sqlite3.Connection:
    return sqlite3.connect(db, isolation_level=None)


def _verify(db: Path) -> dict[str, Any]:
    r = cli(db, "audit", "verify", "--format", "json")
    assert r.exit_code == (0 if json.loads(r.stdout)["ok"] else 6)
    return json.loads(r.stdout)


def test_tamper_edited(store_with_samples: Path) -> None:
    with _raw(store_with_samples) as db:
        db.execute("UPDATE decision SET grade = 'pass', decision_json = replace(decision_json, 'doubtful', 'pass') "
                   "WHERE seq = 3")
    out = _verify(store_with_samples)
    assert out["ok"] is False and out["break"]["seq"] == 3 and out["break"]["kind"] == "edited"


def test_tamper_edited_and_rehashed(store_with_samples: Path) -> None:
    with _raw(store_with_samples) as db:
        db.row_factory = sqlite3.Row
        row = dict(db.execute("SELECT * FROM decision WHERE seq = 5").fetchone())
        row["grade"] = "loss"  # C005 was pass
        rehashed = record_hash(row["prev_hash"], row)
        db.execute("UPDATE decision SET grade = ?, hash = ? WHERE seq = 5", ("loss", rehashed))
    out = _verify(store_with_samples)
    assert out["break"]["seq"] == 5 and out["break"]["kind"] == "edited"


def test_tamper_deleted(store_with_samples: Path) -> None:
    with _raw(store_with_samples) as db:
        db.execute("DELETE FROM decision WHERE seq = 7")
    out = _verify(store_with_samples)
    assert out["break"]["seq"] == 8 and out["break"]["kind"] == "deleted"


def test_tamper_deleted_at_the_end(store_with_samples: Path) -> None:
    with _raw(store_with_samples) as db:
        db.execute("DELETE FROM decision WHERE seq = (SELECT max(seq) FROM decision)")
    out = _verify(store_with_samples)
    assert out["break"]["kind"] == "deleted" and out["break"]["seq"] == len(SAMPLES)


def test_tamper_inserted(store_with_samples: Path) -> None:
    with _raw(store_with_samples) as db:
        db.row_factory = sqlite3.Row
        prev = db.execute("SELECT hash FROM decision WHERE seq = 4").fetchone()[0]
        forged = dict(db.execute("SELECT * FROM decision WHERE seq = 4").fetchone())
        forged.update(decision_id="forged", client_id="X999", grade="pass", prev_hash=prev)
        forged["hash"] = record_hash(prev, forged)
        db.execute("UPDATE decision SET seq = -seq WHERE seq > 4")  # make room, as an attacker would
        db.execute("UPDATE decision SET seq = 1 - seq WHERE seq < 0")
        cols = [c for c in forged if c != "seq"]
        db.execute(f"INSERT INTO decision (seq, {', '.join(cols)}) VALUES (5, {', '.join('?' * len(cols))})",
                   [forged[c] for c in cols])
    out = _verify(store_with_samples)
    assert out["break"]["seq"] == 5 and out["break"]["kind"] == "inserted"
    assert out["break"]["decision_id"] == "forged"


def test_tamper_reordered(store_with_samples: Path) -> None:
    with _raw(store_with_samples) as db:
        db.execute("UPDATE decision SET seq = -1 WHERE seq = 3")
        db.execute("UPDATE decision SET seq = 3 WHERE seq = 6")
        db.execute("UPDATE decision SET seq = 6 WHERE seq = -1")
    out = _verify(store_with_samples)
    assert out["break"]["seq"] == 3 and out["break"]["kind"] == "reordered"


def test_replay_of_every_sample_decision_is_identical(store_with_samples: Path) -> None:
    r = cli(store_with_samples, "audit", "replay", "--all", "--format", "json")
    assert r.exit_code == 0, r.stderr
    statuses = [json.loads(x)["status"] for x in r.stdout.splitlines()]
    assert statuses == ["identical"] * len(SAMPLES)


def test_replay_uses_the_stored_policy_text_after_the_file_changes(tmp_path: Path) -> None:
    pol_dir = tmp_path / "policies" / "p"
    pol_dir.mkdir(parents=True)
    current = (REFERENCE / "policy-1.1.0.yaml").read_text(encoding="utf-8")
    (pol_dir / "policy-1.1.0.yaml").write_text(current, encoding="utf-8")
    db = tmp_path / "a.db"
    base = ["--policies", str(tmp_path / "policies"), "--audit-db", str(db)]
    runner = CliRunner()
    assert runner.invoke(main, [*base, "decide", "-p", "loss-client-management", "-c", str(SAMPLES[1])]).exit_code == 0
    # Someone edits the policy file in place (same version number): the snapshot still replays.
    (pol_dir / "policy-1.1.0.yaml").write_text(current.replace("value: 1.2\n", "value: 0.5\n"), encoding="utf-8")
    r = runner.invoke(main, [*base, "audit", "replay", "1", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "identical"


def test_replay_reports_field_differences(store_with_samples: Path) -> None:
    with _raw(store_with_samples) as db:
        db.execute("UPDATE decision SET decision_json = replace(decision_json, '\"grade\":\"special_mention\"', "
                   "'\"grade\":\"pass\"') WHERE seq = 2")
    r = cli(store_with_samples, "audit", "replay", "2", "--format", "json")
    assert r.exit_code == 6
    diffs = json.loads(r.stdout)["differences"]
    assert any(d.startswith("classification.grade: 'pass' -> 'special_mention'") for d in diffs)


def test_hash_only_inputs_cannot_be_replayed(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    cli(db, "decide", "-p", "loss-client-management", "-c", str(SAMPLES[0]), "--audit-inputs", "hash-only")
    r = cli(db, "audit", "replay", "1", "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "not-replayable"


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    r = cli(other, "decide", "-p", "loss-client-management", "-c", str(SAMPLES[0]))
    assert r.exit_code == 6 and "not a decision store" in r.stderr
    text = tmp_path / "notes.db"
    text.write_text("hello, this is not sqlite at all" * 100)
    assert cli(text, "audit", "list").exit_code == 6
    newer = tmp_path / "newer.db"
    AuditStore(newer).close()
    with sqlite3.connect(newer) as db:
        db.execute("PRAGMA user_version = 99")
    r = cli(newer, "audit", "verify")
    assert r.exit_code == 6 and "schema 99" in r.stderr
    assert cli(tmp_path / "missing.db", "audit", "list").exit_code == 6


WRITER = """
import json, sys
from pathlib import Path
from policy_engine.audit import AuditStore
from policy_engine.evaluate import Decider
from policy_engine.registry import load_policy
policy = load_policy(sys.argv[2])
decider = Decider(policy)
clients = [json.loads(Path(p).read_text()) for p in sys.argv[3:]]
with AuditStore(sys.argv[1]) as store:
    for i in range(500):
        c = dict(clients[i % len(clients)], client_id=f"W{sys.argv[1][-1]}-{i}")
        store.append(policy, [(decider.decide(c), c)])
"""


def test_concurrent_writers_lose_nothing_and_keep_the_chain(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    AuditStore(db).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(REFERENCE / "policy-1.1.0.yaml"),
                               *map(str, SAMPLES[:5])], cwd=ROOT) for _ in range(4)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0, 0, 0]
    with AuditStore(db) as store:
        assert tuple(store.db.execute("SELECT count(*), count(DISTINCT decision_id) FROM decision").fetchone()) == (
            2000, 2000)
        checked, broken = store.verify()
    assert checked == 2000 and broken is None


def test_kill_9_during_a_batch_leaves_whole_chunks_and_a_rerun_completes(tmp_path: Path) -> None:
    from policy_engine import audit as audit_module

    csv = tmp_path / "p.csv"
    subprocess.run([sys.executable, "cli.py", "generate", "--n", "20000", "--seed", "5", "--out", str(csv)],
                   cwd=ROOT, check=True, capture_output=True)
    db = tmp_path / "k.db"
    cmd = [sys.executable, "cli.py", "--policies", str(POLICIES), "--audit-db", str(db), "batch", str(csv),
           "-p", "loss-client-management", "--format", "json"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    count = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=1) as c:
                count = c.execute("SELECT count(*) FROM decision").fetchone()[0]
        except sqlite3.Error:
            count = 0
        if count >= audit_module.CHUNK:
            os.kill(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the batch finished before it could be killed"
    with AuditStore(db) as store:
        n, broken = store.verify()
    assert broken is None and n % audit_module.CHUNK == 0 and 0 < n < 20000
    rerun = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0 and f"{n} client(s) of this batch were already recorded" in rerun.stderr
    with AuditStore(db) as store:
        total, distinct = store.db.execute("SELECT count(*), count(DISTINCT client_id) FROM decision").fetchone()
        assert (total, distinct) == (20000, 20000)
        assert store.verify()[1] is None


def test_decider_and_store_round_trip_the_input(tmp_path: Path, decider: Decider) -> None:
    client = json.loads(SAMPLES[3].read_text(encoding="utf-8"))
    with AuditStore(tmp_path / "r.db") as store:
        store.append(decider.policy, [(decider.decide(client), client)])
        row = store.get("1")
        assert json.loads(row["input_json"])["client_id"] == client["client_id"]
        assert store.replay(row) == ("identical", [])
