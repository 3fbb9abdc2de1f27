"""`batch --engine dask` over JSON Lines partitions of debtor records equals a local batch of the same lines:
decisions, exposures, rejects (numbered as rows of the whole dataset), the records in the store."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from policy_engine.diagnostics import UsageError
from policy_engine.portfolio.distributed import run_dataset
from policy_engine.record.audit import AuditStore
from policy_engine.run import run_batch

from ..conftest import POLICIES, REFERENCE

ID = "loss-client-management"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: Any) -> Path:
    """The repository's policies with 2.0.0 in force from its effective date (1.1.0 ending the day before)."""
    root = tmp_path_factory.mktemp("registry") / "policies"
    shutil.copytree(POLICIES, root)
    two = root / ID / "policy-2.0.0.yaml"
    two.write_text(re.sub(r"(?m)^status: draft", "status: active", two.read_text("utf-8")), "utf-8")
    one = root / ID / "policy-1.1.0.yaml"
    one.write_text(re.sub(r"(?m)^effective_to: null", "effective_to: 2026-06-30", one.read_text("utf-8")), "utf-8")
    return root


def lines() -> list[bytes]:
    old = [line.encode() for line in (REFERENCE / "samples" / "portfolio.jsonl").read_text("utf-8").splitlines()
           if line.strip()][:5]
    new = [orjson.dumps(json.loads(f.read_text("utf-8")))
           for f in sorted((REFERENCE / "samples" / "debtors").glob("*.json"))][:9]
    repeated = orjson.dumps({**json.loads(new[0]), "as_of": "2025-06-30"})  # an id of partition 0, in partition 2
    return [*old[:2], *new[:3], b"{broken", *new[3:6], *old[2:], repeated, *new[6:]]


def test_dask_over_debtor_partitions_equals_the_local_batch(registry: Path, tmp_path: Path) -> None:
    every = lines()
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\n".join(every) + b"\n")
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    cuts = [0, 5, 9, len(every)]
    for k in range(3):
        (dataset / f"p{k}.jsonl").write_bytes(b"\n".join(every[cuts[k]:cuts[k + 1]]) + b"\n")
    local = run_batch(ID, whole, registry=registry, audit_db=False)
    db = tmp_path / "audit.db"
    dask = run_dataset(ID, dataset, tmp_path / "out", registry=registry, exposures=tmp_path / "exp", workers=1,
                       audit_db=db)
    assert (dask.run.rows_read, dask.run.decided) == (local.run.rows_read, local.run.decided) == (len(every), 14)
    assert [(r["row"], r["problems"][0]["code"]) for r in dask.rejects] == \
        [(r["row"], r["problems"][0]["code"]) for r in local.rejects] == [(6, "bad-json"), (13, "duplicate-id")]
    # Part by part: a part of 1.x clients only has no exposure columns (versions differ between parts).
    got = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "out").glob("part-*"))], ignore_index=True)
    want = local.decisions
    assert got["row"].tolist() == want["row"].tolist()
    assert got["client_id"].tolist() == want["client_id"].tolist()
    assert got["policy_version"].astype(str).tolist() == want["policy_version"].astype(str).tolist()
    assert got["grade"].astype(str).tolist() == want["grade"].astype(str).tolist()
    exposures = pd.concat([pd.read_parquet(p) for p in sorted((tmp_path / "exp").glob("part-*"))], ignore_index=True)
    expected = local.run.exposures
    assert list(zip(exposures["row"], exposures["exposure_id"], exposures["grade"].astype(str), strict=True)) == \
        list(zip(expected["row"], expected["exposure_id"], expected["grade"].astype(str), strict=True))
    s = dask.summary
    assert s["exposures"] == local.summary["exposures"]
    assert s["by_grade"] == local.summary["by_grade"]
    assert {v["version"]: v["decided"] for v in s["versions"]} == {"1.1.0": 5, "2.0.0": 9}
    with AuditStore(db) as store:
        assert store.verify()[1] is None
        rows = list(store.query())
        assert len(rows) == 14
        assert {store.replay(row)[0] for row in rows} == {"identical"}
    again = run_dataset(ID, dataset, tmp_path / "out", registry=registry, workers=1, audit_db=db)
    assert (again.recorded, again.already_recorded) == (0, 14)


def test_a_parquet_dataset_for_a_pinned_policy_with_scopes_is_refused(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    pd.DataFrame({"client_id": ["A"]}).to_parquet(dataset / "p.parquet")
    with pytest.raises(UsageError) as refused:
        run_dataset(REFERENCE / "policy-2.0.0.yaml", dataset, tmp_path / "out", audit_db=False)
    assert refused.value.diagnostics[0].code == "scoped-policy-in-table"
    assert "JSON Lines" in (refused.value.diagnostics[0].hint or "")


def test_a_field_misspelt_in_debtor_partitions_is_named_as_the_local_run_names_it(registry: Path,
                                                                                    tmp_path: Path) -> None:
    typo = [line.replace(b'"paid_date"', b'"paid_dte"') for line in lines() if b'"exposures"' in line]
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\n".join(typo) + b"\n")
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for k in range(2):
        (dataset / f"p{k}.jsonl").write_bytes(b"\n".join(typo[k::2]) + b"\n")
    local = run_batch(ID, whole, registry=registry, audit_db=False)
    dask = run_dataset(ID, dataset, tmp_path / "out", registry=registry, workers=1, audit_db=False)
    named = (ID, "exposures[*].schedule[*].paid_dte", "exposures[*].schedule[*].paid_date")
    assert local.misspelt == dask.misspelt == [named]


def test_dask_counts_debtors_decided_without_exposures_as_the_local_batch_does(registry: Path,
                                                                              tmp_path: Path) -> None:
    """A debtor line with no exposure is graded by the debtor's rules alone: both engines name it."""
    record = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text("utf-8"))
    empty = [orjson.dumps({**record, "client_id": f"NONE-{k}", "exposures": []}) for k in range(3)]
    every = [orjson.dumps(record), empty[0], empty[1], orjson.dumps({**record, "client_id": "B"}), empty[2]]
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\n".join(every) + b"\n")
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for k, cut in enumerate(((0, 2), (2, 5))):
        (dataset / f"p{k}.jsonl").write_bytes(b"\n".join(every[slice(*cut)]) + b"\n")
    local = run_batch(ID, whole, registry=registry, audit_db=False)
    dask = run_dataset(ID, dataset, tmp_path / "out", registry=registry, workers=1, audit_db=False)
    for outcome in (local, dask):
        assert outcome.summary["decided_without_elements"] == 3
        assert outcome.summary["graded_table"] == "exposures"


def test_dask_under_a_pinned_version_counts_the_decisions_it_was_not_in_force_for(tmp_path: Path) -> None:
    """The summary's not_in_force, read back from the parts written, equals the local batch's."""
    debtors = [orjson.dumps(json.loads(f.read_text("utf-8")))
               for f in sorted((REFERENCE / "samples" / "debtors").glob("*.json"))][:6]
    whole = tmp_path / "whole.jsonl"
    whole.write_bytes(b"\n".join(debtors) + b"\n")
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    for k in range(2):
        (dataset / f"p{k}.jsonl").write_bytes(b"\n".join(debtors[3 * k:3 * k + 3]) + b"\n")
    local = run_batch(ID, whole, version="2.1.0", registry=POLICIES, audit_db=False)
    dask = run_dataset(ID, dataset, tmp_path / "out", version="2.1.0", registry=POLICIES, workers=1, audit_db=False)
    assert dask.summary["not_in_force"] == local.summary["not_in_force"] == {
        "decided": 6, "version": "2.1.0", "id": ID, "effective_from": "2027-07-01", "effective_to": None}
