"""``audit export --out X.parquet`` carries each record's input, a batch record's too (read back from its
segment): the canonical JSON whose sha256 is the record's input hash."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import POLICIES, REFERENCE

SAMPLES = REFERENCE / "samples"


def cli(db: Path, *args: str) -> None:
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(db), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr


@pytest.mark.parametrize("source", ["portfolio.csv", "debtors"])
def test_an_exported_batch_record_carries_the_input_its_hash_is_of(tmp_path: Path, source: str) -> None:
    path = SAMPLES / source
    if source == "debtors":
        path = tmp_path / "debtors.jsonl"
        path.write_text("".join(json.dumps(json.loads(p.read_text(encoding="utf-8"))) + "\n"
                                for p in sorted((SAMPLES / "debtors").glob("*.json"))), encoding="utf-8")
    db = tmp_path / "a.db"
    cli(db, "batch", str(path), "-p", "loss-client-management", "--format", "json")
    cli(db, "decide", "-p", "loss-client-management", "-c", str(sorted((SAMPLES / "clients").glob("*.json"))[0]))
    cli(db, "audit", "export", "--out", str(tmp_path / "e.parquet"))
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert len(frame) > 1 and frame["input_json"].notna().all()
    for text, decision, column in zip(frame["input_json"], frame["decision_json"], frame["input_sha256"],
                                      strict=True):
        assert hashlib.sha256(text.encode("utf-8")).hexdigest() == json.loads(decision)["input_sha256"]
        assert column == json.loads(decision)["input_sha256"]  # the column too: it was null for a table's rows


def test_a_full_jsonl_export_holds_what_the_parquet_export_does(tmp_path: Path) -> None:
    """``--full``: each line the whole record, so the chain and each input's hash can be checked from the file."""
    db = tmp_path / "a.db"
    cli(db, "batch", str(SAMPLES / "portfolio.csv"), "-p", "loss-client-management", "--format", "json")
    debtor = sorted((SAMPLES / "debtors").glob("*.json"))[0]
    cli(db, "decide", "-p", "loss-client-management", "-c", str(debtor))
    cli(db, "decide", "-p", "loss-client-management", "-c", str(debtor), "--audit-inputs", "hash-only")
    cli(db, "audit", "export", "--out", str(tmp_path / "e.parquet"))
    cli(db, "audit", "export", "--full", "--out", str(tmp_path / "e.jsonl"))
    lines = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines()]
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert [line["seq"] for line in lines] == list(frame["seq"]) == list(range(1, len(lines) + 1))
    for before, line in zip([None, *lines], lines, strict=False):
        assert line["prev_hash"] == (before["hash"] if before else line["prev_hash"])
    for line, (_, row) in zip(lines, frame.iterrows(), strict=True):
        assert line["decision"] == json.loads(row["decision_json"])
        assert line["input"] == (json.loads(row["input_json"]) if isinstance(row["input_json"], str) else None)
        for column in ("decision_id", "client_id", "as_of", "policy_version", "grade", "input_sha256", "hash"):
            assert line[column] == row[column], column
        assert line["input_sha256"] == line["decision"]["input_sha256"]
        if line["input"] is not None:
            text = json.dumps(line["input"], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
            assert hashlib.sha256(text.encode("utf-8")).hexdigest() == line["input_sha256"]
    assert lines[-1]["input"] is None and lines[-2]["input"] is not None  # the hash-only record: its hash alone


def test_full_is_refused_for_a_parquet_export(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(tmp_path / "a.db"), "audit",
                                  "export", "--full", "--out", str(tmp_path / "e.parquet")])
    assert r.exit_code == 2 and "--full is for a .jsonl export" in r.stderr
