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
