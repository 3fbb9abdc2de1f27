"""impact of two versions with scopes over a folder of long tables, as ``batch FOLDER`` reads it: the same report
as over the JSON Lines of the same debtors, orphaned rows accounted for and written with the rejects, balances
from the exposures the policy reads, and a folder refused where no version decides debtors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic

from ..conftest import POLICIES, REFERENCE

OLD, NEW = "loss-client-management@2.0.0", "loss-client-management@2.1.0"
AS_OF = "2026-09-30"
N = 40


def _impact(portfolio: Path, *args: str, old: str = OLD, new: str = NEW) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "impact", old, new, "--portfolio", str(portfolio),
                                     "--as-of", AS_OF, *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def portfolio(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same debtors twice, drawn for 2.1.0 (whose input contract is the stricter): debtor records, and the
    long tables of them."""
    tmp = tmp_path_factory.mktemp("impact-long")
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    lines = tmp / "debtors.jsonl"
    lines.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in synthetic.policy_clients(policy, N, 3, AS_OF)))
    synthetic.write_long_tables(policy, tmp / "tables", N, 3, AS_OF)
    return lines, tmp / "tables"


def test_a_folder_of_long_tables_reports_as_the_debtor_records_do(portfolio: tuple[Path, Path]) -> None:
    lines, folder = portfolio
    nested, long = (_impact(p, "--format", "json", "--list", "1000") for p in (lines, folder))
    assert nested.exit_code == 0, nested.stderr
    assert long.exit_code == 0, long.stderr
    a, b = json.loads(nested.stdout), json.loads(long.stdout)
    assert b["rejected"].pop("orphaned") == {"old": 0, "new": 0}  # a folder accounts for its tables' rows too
    tables = b["rejected"].pop("tables")
    assert tables["old"] == tables["new"] and tables["old"]["debtors"] == {"read": N, "decided": N, "rejected": 0,
                                                                           "orphaned": 0}
    assert a == b
    assert a["clients"] == N and a["changed_clients_total"] > 0  # 2.1.0 warns where 2.0.0 did not
    # the balance-weighted migration weighs each debtor by the sum of its exposures' balances
    balance = pd.read_parquet(folder / "exposures.parquet")["balance"].sum()
    assert sum(map(sum, b["migration"]["balance"])) == pytest.approx(balance)


def test_orphaned_rows_are_counted_and_written_with_the_rejects(portfolio: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    _, source = portfolio
    folder = tmp_path / "tables"
    folder.mkdir()
    for f in source.iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    exposures = pd.read_parquet(folder / "exposures.parquet")
    exposures.loc[0, "client_id"] = "NOBODY"  # its payments and modifications join no exposure of debtor 1
    exposures.to_parquet(folder / "exposures.parquet", index=False)
    debtors = pd.read_parquet(folder / "debtors.parquet")
    debtors.loc[1, "industry"] = None  # a required fact missing: the debtor is rejected on both sides
    debtors.to_parquet(folder / "debtors.parquet", index=False)
    rejects = tmp_path / "rejects.jsonl"
    r = _impact(folder, "--format", "json", "--rejects", str(rejects))
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    written = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    orphans = [w for w in written if w.get("orphaned")]
    # debtor 1's facts are incomplete (rows of its own join none of its exposures), debtor 2 lacks one
    assert [(w["table"], w["row"], w["side"]) for w in written if not w.get("orphaned")] == [
        ("debtors", 1, "both"), ("debtors", 2, "both")]
    assert ("exposures", 1, "both") in [(w["table"], w["row"], w["side"]) for w in orphans]
    assert report["rejected"]["orphaned"] == {"old": len(orphans), "new": len(orphans)}
    assert report["rejected"]["rows"] == 2 and report["clients"] == N - 2
    assert report["summary"]["orphaned"] == len(orphans)  # a gate reads it: 'rejected' counts debtors only
    for side in ("old", "new"):  # every row of every table accounted for, on each side
        assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"]
                   for c in report["rejected"]["tables"][side].values())
        assert sum(c["orphaned"] for c in report["rejected"]["tables"][side].values()) == len(orphans)
    gated = _impact(folder, "--format", "json", "--fail-if", "orphaned > 0")
    assert gated.exit_code == 1 and json.loads(gated.stdout)["failed_gates"] == [f"orphaned = {len(orphans)} > 0"]
    assert "2 debtor(s) rejected and not compared and" in r.stderr and f"{len(orphans)} orphaned row(s)" in r.stderr
    text = _impact(folder, "--format", "text").stdout
    assert re.search(rf"orphaned rows of the tables, before +{len(orphans)}\n", text)


@pytest.mark.parametrize("old,new,says", [
    ("loss-client-management@1.1.0", "loss-client-management@2.0.0", "is a folder"),
    (OLD, "loss-client-management", "scoped-new-unpinned"),
])
def test_a_folder_needs_two_pinned_versions_with_scopes(portfolio: tuple[Path, Path], old: str, new: str,
                                                        says: str) -> None:
    r = _impact(portfolio[1], "--format", "json", old=old, new=new)
    assert r.exit_code == 2
    assert says in r.stderr


def test_a_dataset_of_partitions_is_named_as_such(tmp_path: Path) -> None:
    """impact reads one folder of tables; the partitions batch --engine dask decides are refused with that hint."""
    synthetic.write_long_tables(load_policy(REFERENCE / "policy-2.1.0.yaml"), tmp_path / "dataset", 6, 3, AS_OF,
                                partitions=2)
    r = _impact(tmp_path / "dataset", "--format", "json")
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "file-missing" and "batch --engine dask" in error["hint"]


def test_batch_warnings_of_the_folder_are_said(portfolio: tuple[Path, Path], tmp_path: Path) -> None:
    """A folder of the debtors table alone compares debtors without exposures: said as batch says it, once."""
    folder = tmp_path / "debtors-only"
    folder.mkdir()
    (folder / "debtors.parquet").write_bytes((portfolio[1] / "debtors.parquet").read_bytes())
    r = _impact(folder, "--format", "json")
    assert r.exit_code == 0, r.stderr
    warnings = [(w["code"], w["message"]) for w in json.loads(r.stderr)["warnings"]]
    assert [c for c, _ in warnings].count("empty-table") == 2  # exposures and events, once for both sides
    assert ("decided-without-elements", f"{N} debtor(s) decided without any row of exposures: graded by the "
            "debtor's rules alone (check the ids joining the tables; their rows, if any, are orphaned)") in warnings


def test_a_row_rejected_on_both_sides_lists_every_problem(tmp_path: Path) -> None:
    """2.0.0 refuses the balance, 2.1.0 the balance and a payment dated before the loan: the rejects name both."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    folder = tmp_path / "tables"
    synthetic.write_long_tables(policy, folder, 3, 3, AS_OF, fmt=".csv")
    exposures = pd.read_csv(folder / "exposures.csv", dtype=str, keep_default_na=False)
    exposures.loc[0, "balance"] = "ten"
    exposures.to_csv(folder / "exposures.csv", index=False)
    payments = pd.read_csv(folder / "payments.csv", dtype=str, keep_default_na=False)
    first = (payments["client_id"] == exposures.loc[0, "client_id"]) & (payments["exposure_id"] ==
                                                                       exposures.loc[0, "exposure_id"])
    payments.loc[first.idxmax(), "paid_date"] = "1900-01-01"
    payments.to_csv(folder / "payments.csv", index=False)
    rejects = tmp_path / "rejects.jsonl"
    assert _impact(folder, "--rejects", str(rejects)).exit_code == 0
    [line] = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert line["side"] == "both"
    assert {(p["table"], p["field"]) for p in line["problems"]} == {("exposures", "balance"),
                                                                    ("payments", "paid_date")}
    table = tmp_path / "rejects.csv"  # the CSV form keeps the side and where each problem is
    assert _impact(folder, "--rejects", str(table)).exit_code == 0
    written = pd.read_csv(table)
    assert written.loc[0, "side"] == "both" and "exposures row 1 balance:" in written.loc[0, "problems"]
