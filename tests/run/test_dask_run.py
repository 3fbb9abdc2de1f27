"""The Dask path decides each row under its day's version, records every decision once in the store
(one writer, chain intact, replayable) and refuses the options it cannot honour."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

import policy_engine as pe
from policy_engine.cli import main
from policy_engine.diagnostics import PolicyEngineError
from policy_engine.portfolio.batch import flatten
from policy_engine.portfolio.synthetic import generate_clients
from policy_engine.record.audit import AuditStore
from policy_engine.record.segments import decision_facts
from policy_engine.review.tester import apply_patch
from policy_engine.run import PolicyRef, decide_client

from ..conftest import POLICIES
from .test_agreement import BOUNDARY, ID, _facts, _store_facts

pytest.importorskip("distributed")


def _clients() -> list[dict[str, Any]]:
    """A smaller portfolio than the agreement test's (a LocalCluster costs seconds): 3 versions' worth of days."""
    rng = random.Random(13)
    out = []
    for k, day in enumerate(["2023-12-31", "2024-06-30", "2024-12-31", "2025-01-01", "2025-06-30"]):
        for i, c in enumerate(generate_clients(48, 100 + k, day)):
            c["client_id"] = f"D{k}-{i}"
            field = rng.choice(sorted(BOUNDARY))
            if rng.random() < 0.5:
                c = apply_patch(c, {field: rng.choice(BOUNDARY[field])})
            out.append(c)
    rng.shuffle(out)
    return out


def _dataset(clients: list[dict[str, Any]], root: Path) -> Path:
    rows = [flatten(c) for c in clients]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for c in columns:
        values = [v for v in frame[c] if v is not None and not (isinstance(v, float) and v != v)]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            frame[c] = pd.to_numeric(frame[c]).astype("float64")
    frame.loc[7, "client_id"] = frame.loc[3, "client_id"]  # a duplicate across partitions
    data = root / "dataset"
    data.mkdir()
    for i, start in enumerate(range(0, len(frame), 90)):
        frame.iloc[start:start + 90].to_parquet(data / f"part-{i}.parquet", index=False)
    return data


def test_dask_records_every_decision_once_under_each_rows_version(tmp_path: Path) -> None:
    clients = _clients()
    data = _dataset(clients, tmp_path)
    frame = pd.concat([pd.read_parquet(p) for p in sorted(data.glob("*.parquet"))], ignore_index=True)
    reference: dict[str, Any] = {}
    ref = PolicyRef(ID, registry=POLICIES)
    seen: set[str] = set()
    for i, c in enumerate(clients):
        cid = str(frame.loc[i, "client_id"])
        if cid in seen:
            reference[f"row{i + 1}"] = "duplicate"
            continue
        seen.add(cid)
        try:
            reference[cid] = decide_client(ref, c)[1]
        except PolicyEngineError as e:
            reference[cid] = e.diagnostics[0].code
    db = tmp_path / "dask.db"
    seen: list[tuple[int, int]] = []
    run = pe.run_dataset(ID, data, tmp_path / "out", registry=POLICIES, audit_db=db, workers=2,
                         rejects=tmp_path / "rejects.jsonl", progress=lambda done, total: seen.append((done, total)))
    assert [t for _, t in seen] == [len(clients)] * 3 and seen[-1] == (len(clients), len(clients))  # per partition
    decided = {cid for cid, r in reference.items() if isinstance(r, dict)}
    versions = {r["policy"]["version"] for r in reference.values() if isinstance(r, dict)}
    assert versions == {"1.0.0", "1.1.0"}
    assert run.summary["accounting"] == {"rows_read": len(clients), "decided": len(decided),
                                         "rejected": len(clients) - len(decided)}
    assert {v["version"] for v in run.summary["versions"]} == versions
    assert run.recorded == len(decided) and run.already_recorded == 0
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    early = [r for r in rejects if any(p["code"] == "no-version-in-force" for p in r["problems"])]
    assert {r["client_id"] for r in early} == {cid for cid, r in reference.items() if r == "no-version-in-force"}
    # the result files hold each decided client's facts, as decided one by one
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    out = pd.concat([pd.read_parquet(p, dtype_backend="pyarrow") for p in parts], ignore_index=True)
    facts = dict(zip(out["client_id"].astype(str), decision_facts(out), strict=True))
    assert set(facts) == decided
    for cid in decided:
        want = _facts(reference[cid])
        assert facts[cid] == {k: want[k] for k in facts[cid]}, cid
    # the store holds one record per decided client, with the same facts; the chain is intact and replays
    held = _store_facts(db)
    assert set(held) == decided and all(len(v) == 1 for v in held.values())
    for cid in decided:
        assert held[cid][0] == _facts(reference[cid]), cid
    cli = ["--policies", str(POLICIES), "--audit-db", str(db)]
    r = CliRunner().invoke(main, [*cli, "audit", "verify", "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["records"] == len(decided), r.output
    r = CliRunner().invoke(main, [*cli, "audit", "replay", "--all", "--format", "json"])
    assert r.exit_code == 0 and f"{len(decided)} identical, 0 different" in r.stderr, r.output
    # a rerun of the same dataset records nothing twice
    again = pe.run_dataset(ID, data, tmp_path / "out", registry=POLICIES, audit_db=db, workers=2)
    assert again.recorded == 0 and again.already_recorded == len(decided)
    with AuditStore(db, create=False) as store:
        assert sum(1 for _ in store.query()) == len(decided)


@pytest.mark.parametrize(("option", "message"), [
    (["--records", "r.jsonl"], "--records is not supported with --engine dask"),
    (["--financials", "f.csv"], "--financials is not supported with --engine dask"),
])
def test_dask_refuses_what_it_cannot_honour(tmp_path: Path, option: list[str], message: str) -> None:
    data = tmp_path / "ds"
    data.mkdir()
    pd.DataFrame([flatten(next(generate_clients(1, 1, "2025-06-30")))]).to_parquet(data / "p.parquet")
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "batch", str(data), "-p", ID, "--engine", "dask",
                                  "--out", str(tmp_path / "out"), *option])
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert not (tmp_path / "out").exists()
