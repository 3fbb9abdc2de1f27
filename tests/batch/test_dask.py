"""Dask: a partitioned dataset decided partition by partition equals one local batch of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.portfolio.batch import Table, flatten, run_batch
from policy_engine.portfolio.distributed import run_dask
from policy_engine.portfolio.synthetic import generate_columns

from ..conftest import POLICIES, SAMPLES


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    samples = pd.DataFrame.from_records([flatten(json.loads(p.read_text(encoding="utf-8"))) for p in SAMPLES])
    synthetic = pd.DataFrame(generate_columns(300, seed=9))
    whole = pd.concat([samples, synthetic], ignore_index=True)
    whole.loc[50, "client_id"] = "C002"  # a duplicate of a client in another partition
    whole.loc[120, "industry"] = "mining"  # an unknown industry
    root = tmp_path_factory.mktemp("dataset")
    for i, start in enumerate(range(0, len(whole), 110)):
        whole.iloc[start:start + 110].to_parquet(root / f"part-{i}.parquet", index=False)
    return root, whole


def test_dask_result_equals_the_local_batch(policy: Any, dataset: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    root, whole = dataset
    local = run_batch(policy, Table(whole, text=False, rows_read=len(whole)))
    run = run_dask(policy, root, tmp_path / "out", workers=2)
    assert run.rows_read == local.rows_read == len(whole)
    assert run.decided == local.decided and run.rejects == local.rejects
    assert [r["row"] for r in run.rejects] == [51, 121]
    parts = sorted((tmp_path / "out").glob("part-*.parquet"))
    assert len(parts) == 3
    got = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    expected = local.decisions.copy()
    for c in ("floors", "warnings", "actions", "suppressed_actions", "undetermined"):
        got[c] = got[c].map(list)
        expected[c] = expected[c].map(list)
    def plain(frame: pd.DataFrame) -> pd.DataFrame:  # Parquet round trip: nullable booleans come back as objects
        return frame.astype(object).where(frame.notna(), None)

    pd.testing.assert_frame_equal(plain(got), plain(expected), check_dtype=False, check_categorical=False)
    s = run.summary()
    assert s["accounting"] == {"rows_read": len(whole), "decided": local.decided, "rejected": 2}
    assert sum(v["count"] for v in s["by_grade"].values()) == local.decided


def test_dask_cli(dataset: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    root, whole = dataset
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "batch", str(root), "-p", "loss-client-management",
                                  "--engine", "dask", "--out", str(tmp_path / "out"), "--format", "json",
                                  "--rejects", str(tmp_path / "rejects.jsonl")], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["accounting"]["rows_read"] == len(whole)
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 2
    again = CliRunner().invoke(main, ["--policies", str(POLICIES), "batch", str(root), "-p", "loss-client-management",
                                      "--engine", "dask", "--out", str(tmp_path / "out"), "--format", "json",
                                      "--no-audit"], catch_exceptions=False)
    assert again.exit_code == 0, again.stderr  # a rerun into the same result directory replaces it
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == 3
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "batch", str(root), "-p", "loss-client-management",
                                  "--engine", "dask"], catch_exceptions=False)
    assert r.exit_code == 2 and "--out DIRECTORY" in r.stderr


def test_a_misspelt_column_of_the_partitions_is_named_as_the_local_run_names_it(tmp_path: Path) -> None:
    whole = pd.DataFrame.from_records([flatten(json.loads(p.read_text(encoding="utf-8"))) for p in SAMPLES])
    whole = whole.rename(columns={"loan.collateral_value_at_origination": "loan.collateral_value_at_orgination"})
    root = tmp_path / "dataset"
    root.mkdir()
    for i, start in enumerate(range(0, len(whole), 10)):
        whole.iloc[start:start + 10].to_parquet(root / f"part-{i}.parquet", index=False)
    whole.to_parquet(tmp_path / "whole.parquet", index=False)
    common = ["--policies", str(POLICIES), "--no-audit", "batch", "-p", "loss-client-management", "--format", "json"]
    local = CliRunner().invoke(main, [*common, str(tmp_path / "whole.parquet")], catch_exceptions=False)
    dask = CliRunner().invoke(main, [*common, str(root), "--engine", "dask", "--out", str(tmp_path / "out")],
                              catch_exceptions=False)
    named = [{"given": "loan.collateral_value_at_orgination", "did_you_mean": "loan.collateral_value_at_origination"}]
    for r in (local, dask):
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["misspelt_columns"] == named
        notes = [n["message"] for n in json.loads(r.stderr)["warnings"]]  # one JSON document on stderr
        assert [m for m in notes if m.startswith("column 'loan.collateral_value_at_orgination'")] == notes[:1], notes


def test_a_partition_that_is_not_parquet_is_named_and_nothing_is_decided(
        dataset: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "part-0.parquet").write_bytes((dataset[0] / "part-0.parquet").read_bytes())
    (root / "part-1.parquet").write_text("not parquet", encoding="utf-8")
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "batch", str(root), "-p", "loss-client-management",
                                  "--engine", "dask", "--out", str(tmp_path / "out"), "--no-audit"])
    assert r.exit_code == 3, r.output
    assert "part-1.parquet" in r.stderr and "cannot read the partition" in r.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("part-*"))


def test_a_partition_unreadable_inside_its_task_is_reported_not_raised(policy: Any, tmp_path: Path) -> None:
    from policy_engine.portfolio.distributed import decide_partition

    bad = tmp_path / "part-9.parquet"
    bad.write_text("not parquet", encoding="utf-8")
    out = decide_partition(policy.text, policy.file, str(bad), str(tmp_path / "o.parquet"), 0, [], None)
    assert out["source"] == str(bad) and "unreadable" in out
