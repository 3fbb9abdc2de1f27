"""`batch DATASET --engine dask` over partitions of long tables (one folder of tables per partition) equals a local
`batch` of the union of the partitions: decisions, exposures, rejects and orphans (numbered as rows of the union),
the summary with every table's accounting, and the same records in the store under the same batch key (a rerun,
on either engine, records nothing new). A client id an earlier partition holds is rejected, and so is a debtor with
rows in another partition (split-partition: never decided without them); a partition the local
run would refuse is refused with the local run's reason and exit code; `generate --partitions` writes the same
debtors as one folder."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from policy_engine.cli import main
from policy_engine.diagnostics import InputError, UsageError
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic
from policy_engine.portfolio.distributed import run_dataset
from policy_engine.record.audit import AuditStore
from policy_engine.run import run_batch

from ..conftest import ROOT

POLICY = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
AS_OF = "2026-09-30"
TABLES = ("debtors", "statements", "exposures", "events", "modifications", "payments")


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """One small cluster for the module: each run joins it (as `--scheduler` does) instead of starting its own."""
    from distributed import LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0")
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _edit(path: Path, change: Any) -> None:
    """Rewrite a Parquet table through pandas, keeping its Arrow types."""
    table = pq.read_table(path)
    frame = change(table.to_pandas())
    pq.write_table(pa.Table.from_pandas(frame, schema=table.schema, preserve_index=False), path)


def _union(dataset: Path, folder: Path) -> None:
    """The union of the partitions: each table's partitions one after the other."""
    folder.mkdir()
    for name in TABLES:
        parts = [pq.read_table(p / f"{name}.parquet") for p in sorted(dataset.iterdir())]
        pq.write_table(pa.concat_tables(parts), folder / f"{name}.parquet")


def _dataset(tmp_path: Path, n: int = 18, k: int = 3) -> Path:
    dataset = tmp_path / "dataset"
    synthetic.write_long_tables(load_policy(POLICY), dataset, n, 11, AS_OF, partitions=k)
    return dataset


def _parts(folder: Path) -> pd.DataFrame:
    return _plain(pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("part-*.parquet"))], ignore_index=True))


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Categories as their text: a column's categories are each part's own, so only the values compare."""
    return frame.astype({c: object for c in frame.columns
                         if isinstance(frame[c].dtype, pd.CategoricalDtype | pd.StringDtype)})


def _stored(db: Path) -> list[tuple[Any, ...]]:
    with AuditStore(db) as store:
        assert store.verify()[1] is None
        return [(r["client_id"], r["grade"], r["input_sha256"], r["input_json"], r["batch_key"])
                for r in store.query()]


def test_dask_over_partitions_of_long_tables_equals_a_local_batch_of_their_union(tmp_path: Path,
                                                                                  scheduler: str) -> None:
    dataset = _dataset(tmp_path)
    p0, p1, p2 = sorted(dataset.iterdir())
    _edit(p0 / "exposures.parquet", lambda f: f.assign(previous_grade=["nonsense", *f["previous_grade"][1:]]))
    _edit(p1 / "debtors.parquet", lambda f: pd.concat([f, f.iloc[:1]]))  # a repeated id within the partition
    _edit(p2 / "exposures.parquet", lambda f: pd.concat([f, f.iloc[:1]]))  # a repeated exposure key
    _edit(p2 / "payments.parquet", lambda f: pd.concat([f, f.iloc[:1].assign(client_id="NOBODY")]))  # an orphan
    union = tmp_path / "union"
    _union(dataset, union)
    local = run_batch(POLICY, union, out=tmp_path / "local.parquet", exposures=tmp_path / "local-exp.parquet",
                      audit_db=tmp_path / "local.db")
    dask = run_dataset(POLICY, dataset, tmp_path / "out", exposures=tmp_path / "exp", scheduler=scheduler,
                       rejects=tmp_path / "rejects.jsonl", audit_db=tmp_path / "dask.db")

    pd.testing.assert_frame_equal(_parts(tmp_path / "out"), _plain(pd.read_parquet(tmp_path / "local.parquet")))
    pd.testing.assert_frame_equal(_parts(tmp_path / "exp"), _plain(pd.read_parquet(tmp_path / "local-exp.parquet")))
    assert dask.rejects == local.rejects
    assert [(r["table"], r["problems"][0]["code"]) for r in dask.rejects] == [
        ("debtors", "bad-field"), ("debtors", "duplicate-id"), ("debtors", "duplicate-id"),
        ("debtors", "duplicate-key"), ("payments", "orphan")]
    # A row a message names is a row of the union too; a repeated id rejects its first copy as well.
    n0, n1 = (pq.read_metadata(p / "debtors.parquet").num_rows for p in (p0, p1))
    e0, e1 = (pq.read_metadata(p / "exposures.parquet").num_rows for p in (p0, p1))
    assert [r["row"] for r in dask.rejects[1:3]] == [n0 + 1, n0 + n1]
    assert dask.rejects[1]["problems"][0]["message"].endswith(f"(repeated at row {n0 + n1})")
    assert dask.rejects[2]["problems"][0]["message"].endswith(f"(first at row {n0 + 1})")
    assert dask.rejects[3]["problems"][0]["message"].endswith(f"at row {e0 + e1 + 1}")
    assert [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text("utf-8").splitlines()] == local.rejects
    want = {k: v for k, v in local.summary.items() if k != "generated_at"}
    got = {k: v for k, v in dask.summary.items() if k not in ("generated_at", "partitions")}
    assert got == want
    assert dask.summary["partitions"] == 3
    assert dask.summary["accounting"]["orphaned"] == 1

    assert (dask.recorded, local.recorded) == (local.run.decisions.shape[0],) * 2
    assert _stored(tmp_path / "dask.db") == _stored(tmp_path / "local.db")
    with AuditStore(tmp_path / "dask.db") as store:
        assert {store.replay(r)[0] for r in store.query()} == {"identical"}
    # The same debtors are the same batch whichever engine decided them: nothing is recorded twice.
    again = run_dataset(POLICY, dataset, tmp_path / "out", scheduler=scheduler, audit_db=tmp_path / "local.db")
    assert (again.recorded, again.already_recorded) == (0, local.recorded)


def test_the_rows_a_reject_names_in_its_words_are_rows_of_the_union_as_locally(tmp_path: Path, scheduler: str) -> None:
    """2.1.0 checks payments unique and not before origination: in the third partition Dask said 'payment at row 4
    repeats row 3' and 'origination_date of exposures row 1' where the local run of the union said rows 28, 27, 3."""
    policy = POLICY.with_name("policy-2.1.0.yaml")
    dataset = tmp_path / "dataset"
    synthetic.write_long_tables(load_policy(policy), dataset, 12, 11, "2027-09-30", partitions=3)
    p2 = sorted(dataset.iterdir())[2]
    _edit(p2 / "payments.parquet", lambda f: pd.concat([f.iloc[:1], f]))  # a payment listed twice
    _edit(p2 / "payments.parquet",
          lambda f: f.assign(paid_date=[*f["paid_date"][:-1], pd.Timestamp("2001-01-01").date()]))  # before its loan
    union = tmp_path / "union"
    _union(dataset, union)
    local = run_batch(policy, union, out=tmp_path / "local.parquet", audit_db=False)
    dask = run_dataset(policy, dataset, tmp_path / "out", scheduler=scheduler, audit_db=False)
    words = [p["message"] for r in local.rejects for p in r["problems"]]
    assert any(" repeats row " in w for w in words) and any(" of exposures row " in w for w in words)
    assert dask.rejects == local.rejects


def test_a_client_id_an_earlier_partition_holds_is_rejected_with_its_children(tmp_path: Path,
                                                                               scheduler: str) -> None:
    """The repeat is duplicate-id; its rows name the id too, which the local run of the union would join to the
    first copy: that copy is rejected as the local run rejects it (duplicate-id), not decided on both copies'
    rows nor on its own partition's alone."""
    dataset = _dataset(tmp_path)
    p0, _, p2 = sorted(dataset.iterdir())
    first = pd.read_parquet(p0 / "debtors.parquet")["client_id"].iloc[1]
    taken = pd.read_parquet(p2 / "debtors.parquet")["client_id"].iloc[0]
    for name in TABLES:  # partition 2's first debtor, rows and all, named as partition 0's second one
        _edit(p2 / f"{name}.parquet", lambda f: f.assign(client_id=f["client_id"].replace(taken, first)))
    dask = run_dataset(POLICY, dataset, tmp_path / "out", scheduler=scheduler, audit_db=False)
    before = sum(pq.read_metadata(p / "debtors.parquet").num_rows for p in sorted(dataset.iterdir())[:2])
    assert [(r["row"], r["client_id"], [p["code"] for p in r["problems"]]) for r in dask.rejects] == [
        (2, first, ["duplicate-id"]), (before + 1, first, ["duplicate-id"])]
    assert dask.rejects[1]["problems"][0]["message"] == f"duplicate client_id '{first}' (first at row 2)"
    assert dask.rejects[0]["problems"][0]["message"] == (
        f"client_id '{first}' names two debtors: the rows of the other tables name a debtor by its id alone, so "
        f"neither is decided (repeated at row {before + 1})")
    union = tmp_path / "union"
    _union(dataset, union)
    local = run_batch(POLICY, union, out=tmp_path / "local.parquet", audit_db=False)
    assert dask.rejects == local.rejects
    tables = dask.summary["tables"]
    assert tables["debtors"] == {"read": 18, "decided": 16, "rejected": 2, "orphaned": 0}
    exposures = pd.concat([pd.read_parquet(p / "exposures.parquet") for p in (p0, p2)])
    assert tables["exposures"]["rejected"] == int((exposures["client_id"] == first).sum()) > 0
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in tables.values())
    assert first not in _parts(tmp_path / "out")["client_id"].tolist()  # decided on neither copy's facts


def test_a_client_id_repeated_in_another_partition_with_a_stray_space_is_rejected_as_locally(
        tmp_path: Path, scheduler: str) -> None:
    """'G1 ' in a later partition repeats 'G1' (every batch compares ids without spaces at either end): the local run
    of the union rejected both copies, Dask compared the ids exactly and decided both."""
    dataset = _dataset(tmp_path)
    p0, _, p2 = sorted(dataset.iterdir())
    first = pd.read_parquet(p0 / "debtors.parquet")["client_id"].iloc[1]
    taken = pd.read_parquet(p2 / "debtors.parquet")["client_id"].iloc[0]
    for name in TABLES:
        _edit(p2 / f"{name}.parquet", lambda f: f.assign(client_id=f["client_id"].replace(taken, first + " ")))
    dask = run_dataset(POLICY, dataset, tmp_path / "out", scheduler=scheduler, audit_db=False)
    union = tmp_path / "union"
    _union(dataset, union)
    local = run_batch(POLICY, union, out=tmp_path / "local.parquet", audit_db=False)
    assert dask.rejects == local.rejects
    assert [(r["client_id"], r["problems"][0]["code"]) for r in dask.rejects] == [
        (first, "duplicate-id"), (first + " ", "duplicate-id")]
    assert dask.rejects[1]["problems"][0]["message"].endswith(f"('{first}': the two differ only by spaces)")


def test_a_debtor_with_rows_in_another_partition_is_rejected_not_decided_without_them(tmp_path: Path,
                                                                                      scheduler: str) -> None:
    """Each task sees its folder alone: a debtor whose payment was exported with the next partition would be
    decided without it (the local run of the union joins it). It is rejected in its partition, naming the row."""
    dataset = _dataset(tmp_path)
    p0, p1, _ = sorted(dataset.iterdir())
    moved = pd.read_parquet(p0 / "payments.parquet").iloc[[0]]
    _edit(p0 / "payments.parquet", lambda f: f.iloc[1:])
    _edit(p1 / "payments.parquet", lambda f: pd.concat([f, moved]))
    cid = moved["client_id"].iloc[0]
    row = len(pd.read_parquet(p1 / "payments.parquet"))
    dask = run_dataset(POLICY, dataset, tmp_path / "out", scheduler=scheduler, audit_db=False)
    [rejected] = [r for r in dask.rejects if not r.get("orphaned")]
    assert rejected["client_id"] == cid and rejected["problems"] == [
        {"table": "debtors", "row": rejected["row"], "field": "client_id", "code": "split-partition",
         "message": f"rows of debtor '{cid}' are in another partition too ({p1.name}/payments.parquet row {row}): "
                    "its partition alone holds an incomplete debtor"}]
    assert cid not in _parts(tmp_path / "out")["client_id"].tolist()  # not decided on incomplete facts
    [orphan] = [r for r in dask.rejects if r.get("orphaned")]  # the row, in its partition, names the debtor's
    assert orphan["table"] == "payments" and orphan["problems"][0]["message"] == (
        f"debtor '{cid}' is in partition {p0.name}, not in this row's: a debtor's rows must all be in its partition "
        "(the debtor is rejected)")
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in dask.summary["tables"].values())


def test_a_debtor_named_otherwise_by_a_row_of_another_partition_is_rejected_as_locally(tmp_path: Path,
                                                                                        scheduler: str) -> None:
    """A payment exported with the next partition under the debtor's id in lower case: the local run of the union
    rejects the debtor (a row surely its own joins it not), so Dask rejects it in its partition, naming both ids."""
    dataset = _dataset(tmp_path)
    p0, p1, _ = sorted(dataset.iterdir())
    moved = pd.read_parquet(p0 / "payments.parquet").iloc[[0]]
    cid = moved["client_id"].iloc[0]
    moved = moved.assign(client_id=cid.lower())
    assert cid.lower() != cid
    _edit(p0 / "payments.parquet", lambda f: f.iloc[1:])
    _edit(p1 / "payments.parquet", lambda f: pd.concat([f, moved]))
    row = len(pd.read_parquet(p1 / "payments.parquet"))
    dask = run_dataset(POLICY, dataset, tmp_path / "out", scheduler=scheduler, audit_db=False)
    [rejected] = [r for r in dask.rejects if not r.get("orphaned")]
    assert rejected["client_id"] == cid and rejected["problems"][0]["message"] == (
        f"rows of debtor '{cid}' are in another partition too ({p1.name}/payments.parquet row {row}, written "
        f"'{cid.lower()}': the two ids differ only by letter case): its partition alone holds an incomplete debtor")
    [orphan] = [r for r in dask.rejects if r.get("orphaned")]
    assert orphan["problems"][0]["message"] == (
        f"debtor '{cid}' is in partition {p0.name}, not in this row's, written '{cid.lower()}': the two ids differ "
        "only by letter case: a debtor's rows must all be in its partition (the debtor is rejected)")
    union = tmp_path / "union"
    _union(dataset, union)
    local = run_batch(POLICY, union, out=tmp_path / "local.parquet", audit_db=False)
    assert [r["client_id"] for r in local.rejects if not r.get("orphaned")] == [cid]
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in dask.summary["tables"].values())


def _local_and_dask(tmp_path: Path, dataset: Path, bad: Path) -> tuple[Result, Result]:
    common = ["-p", str(POLICY), "--no-audit", "--format", "json"]
    return (run("batch", str(bad), *common),
            run("batch", str(dataset), *common, "--engine", "dask", "--out", str(tmp_path / "out")))


def _error(result: Result) -> dict[str, Any]:
    return json.loads(result.stderr)["errors"][0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("damage", ["no-debtors", "mixed-formats", "miscased"])
def test_a_partition_the_local_run_refuses_is_refused_with_its_reason_and_exit_code(tmp_path: Path,
                                                                                    damage: str) -> None:
    dataset = _dataset(tmp_path)
    bad = sorted(dataset.iterdir())[1]
    if damage == "no-debtors":
        (bad / "debtors.parquet").unlink()
    elif damage == "miscased":  # read as no payments, were it not refused
        (bad / "payments.parquet").rename(bad / "Payments.parquet")
    else:
        pd.read_parquet(bad / "payments.parquet").to_csv(bad / "payments.csv", index=False)
        (bad / "payments.parquet").unlink()
    local, dask = _local_and_dask(tmp_path, dataset, bad)
    assert dask.exit_code == local.exit_code == 2
    code = {"no-debtors": "file-missing", "mixed-formats": "mixed-formats", "miscased": "unknown-table"}[damage]
    assert _error(dask)["code"] == _error(local)["code"] == code
    assert _error(dask)["file"] == str(bad / "Payments.parquet" if damage == "miscased" else bad)  # the partition
    assert not (tmp_path / "out").exists()  # refused before any task ran


def test_a_misspelt_column_of_a_partition_is_named_as_the_local_run_names_it(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path, n=6, k=2)
    for part in sorted(dataset.iterdir()):  # every partition: named once
        table = pq.read_table(part / "payments.parquet")
        pq.write_table(table.rename_columns([{"paid_date": "Paid_Date"}.get(c, c) for c in table.column_names]),
                       part / "payments.parquet")
    union = tmp_path / "union"
    _union(dataset, union)
    local, dask = _local_and_dask(tmp_path, dataset, union)
    assert dask.exit_code == local.exit_code == 0, dask.output
    for r in (local, dask):
        notes = [n["message"] for n in json.loads(r.stderr)["warnings"]]  # one JSON document on stderr
        assert sum(m.startswith("column 'payments.Paid_Date' is not read by policy loss-client-management; did you "
                                "mean 'payments.paid_date'?") for m in notes) == 1, notes
        assert json.loads(r.stdout)["misspelt_columns"] == [{"given": "payments.Paid_Date",
                                                             "did_you_mean": "payments.paid_date"}]


def test_a_required_column_missing_from_a_partition_is_named_as_the_local_run_names_it(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path, n=6, k=2)
    part = sorted(dataset.iterdir())[1]
    table = pq.read_table(part / "exposures.parquet")
    pq.write_table(table.drop_columns(["balance"]), part / "exposures.parquet")
    local = run("batch", str(part), "-p", str(POLICY), "--no-audit", "--format", "json")
    dask = run("batch", str(dataset), "-p", str(POLICY), "--no-audit", "--format", "json", "--engine", "dask",
               "--out", str(tmp_path / "out"))
    for r in (local, dask):
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["missing_columns"] == [{"table": "exposures", "column": "balance"}]
        notes = [n["message"] for n in json.loads(r.stderr)["warnings"]]
        assert sum(m.startswith("table exposures has no column 'balance'") for m in notes) == 1, notes


def test_a_partition_that_is_a_file_is_refused(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    shutil.copy(dataset / "part-00000" / "debtors.parquet", dataset / "part-00003.parquet")
    (dataset / "_SUCCESS").write_text("", "utf-8")  # a writer's marker is not a partition
    with pytest.raises(UsageError) as refused:
        run_dataset(POLICY, dataset, tmp_path / "out", audit_db=False)
    d = refused.value.diagnostics[0]
    assert (d.code, d.file) == ("partition-not-a-folder", str(dataset / "part-00003.parquet"))
    local, dask = _local_and_dask(tmp_path, dataset, dataset / "part-00003.parquet")
    assert dask.exit_code == local.exit_code == 2


def test_an_unreadable_table_in_a_partition_is_the_input_error_the_local_run_gives(tmp_path: Path,
                                                                                   scheduler: str) -> None:
    dataset = _dataset(tmp_path)
    bad = sorted(dataset.iterdir())[2]
    (bad / "payments.parquet").write_bytes(b"PAR1 not a table")
    with pytest.raises(InputError) as local:
        run_batch(POLICY, bad, audit_db=False)
    with pytest.raises(InputError) as dask:
        run_dataset(POLICY, dataset, tmp_path / "out", scheduler=scheduler, audit_db=tmp_path / "a.db")
    assert [(d.code, d.file) for d in dask.value.diagnostics] == [(d.code, d.file) for d in local.value.diagnostics]
    assert not list((tmp_path / "out").glob("*.jsonl"))  # no rebuilt records left behind
    with AuditStore(tmp_path / "a.db") as store:
        assert list(store.query()) == []  # nothing recorded of a run that failed


def test_generate_partitions_writes_the_debtors_of_one_folder(tmp_path: Path) -> None:
    common = ["generate", "-p", str(POLICY), "--n", "20", "--seed", "4", "--as-of", AS_OF, "--tables", "parquet"]
    assert run(*common, "--out", str(tmp_path / "one")).exit_code == 0
    made = run(*common, "--partitions", "3", "--out", str(tmp_path / "ds"))
    assert made.exit_code == 0 and "3 partitions" in made.stderr
    folders = sorted((tmp_path / "ds").iterdir())
    assert [f.name for f in folders] == ["part-00000", "part-00001", "part-00002"]
    for name in TABLES:
        whole = pq.read_table(tmp_path / "one" / f"{name}.parquet")
        assert pa.concat_tables([pq.read_table(f / f"{name}.parquet") for f in folders]).equals(whole)
    assert [pq.read_metadata(f / "debtors.parquet").num_rows for f in folders] == [7, 7, 6]
    for args in (["--partitions", "2"], ["--tables", "parquet", "--partitions", "21"]):
        refused = run("generate", "-p", str(POLICY), "--n", "20", "--out", str(tmp_path / "x.jsonl"), *args)
        assert refused.exit_code == 2 and "--partitions" in refused.stderr


def test_with_a_policy_id_each_debtor_on_another_versions_day_is_rejected_as_locally(tmp_path: Path,
                                                                                      scheduler: str) -> None:
    import re

    from ..conftest import POLICIES

    registry = tmp_path / "policies"
    shutil.copytree(POLICIES, registry)
    two = registry / "loss-client-management" / "policy-2.0.0.yaml"
    two.write_text(re.sub(r"(?m)^status: draft", "status: active", two.read_text("utf-8")), "utf-8")
    one = registry / "loss-client-management" / "policy-1.1.0.yaml"
    one.write_text(re.sub(r"(?m)^effective_to: null", "effective_to: 2026-06-30", one.read_text("utf-8")), "utf-8")
    dataset = _dataset(tmp_path, n=9)
    for p in sorted(dataset.iterdir())[1:]:  # one debtor of each later partition on a day 1.1.0 is in force
        _edit(p / "debtors.parquet", lambda f: f.assign(as_of=[pd.Timestamp("2025-06-30").date(), *f["as_of"][1:]]))
    union = tmp_path / "union"
    _union(dataset, union)
    local = run_batch("loss-client-management", union, registry=registry, audit_db=False)
    dask = run_dataset("loss-client-management", dataset, tmp_path / "out", registry=registry, scheduler=scheduler,
                       audit_db=False)
    assert dask.rejects == local.rejects
    # (its dates after its day are problems too; the version is the last reason)
    assert [(r["row"], r["problems"][-1]["code"]) for r in dask.rejects] == [(4, "other-version"), (7, "other-version")]
    assert dask.summary["policy"]["version"] == "2.0.0"
    assert dask.summary["tables"] == local.summary["tables"]


def test_a_dataset_of_long_tables_under_a_policy_without_scopes_is_refused_as_locally(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path, n=4, k=2)
    old = str(ROOT / "policies" / "loss-client-management" / "policy-1.1.0.yaml")
    local = run("batch", str(dataset / "part-00000"), "-p", old, "--no-audit", "--format", "json")
    dask = run("batch", str(dataset), "-p", old, "--no-audit", "--format", "json", "--engine", "dask",
               "--out", str(tmp_path / "out"))
    assert dask.exit_code == local.exit_code == 2
    assert _error(dask)["code"] == _error(local)["code"] == "scoped-policy-required"


@pytest.mark.parametrize("broken", ["absent", "dangling-link"])
def test_a_table_one_partition_lacks_or_cannot_read_is_refused_not_read_as_no_rows(tmp_path: Path,
                                                                                   broken: str) -> None:
    """A partition without the payments table the others have (or with a link to nothing in its place) decided its
    debtors without their payment history, exit 0 and not a word: the union has those rows."""
    dataset = _dataset(tmp_path)
    bad = sorted(dataset.iterdir())[1]
    (bad / "payments.parquet").unlink()
    if broken == "dangling-link":
        (bad / "payments.parquet").symlink_to(tmp_path / "nowhere.parquet")
    with pytest.raises(InputError) as refused:
        run_dataset(POLICY, dataset, tmp_path / "out", audit_db=False)
    (d,) = refused.value.diagnostics
    if broken == "absent":
        assert (d.code, d.file) == ("table-missing", str(bad)) and "no payments table" in d.message
    else:
        assert (d.code, d.file) == ("unreadable", str(bad / "payments.parquet")) and "a link to nothing" in d.message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize(("problem", "said"), [
    ({"table": "exposures", "code": "duplicate-key", "message": "exposure_id 'E at row 1' is also exposure at row 1"},
     "exposure_id 'E at row 1' is also exposure at row 31"),
    ({"table": "payments", "code": "bad-field", "message": "product 'bond at row 2' is not one of loan, bond"},
     "product 'bond at row 2' is not one of loan, bond"),
    ({"table": "payments", "code": "bad-field",
      "message": "paid_date 2001-01-01 is before 2020-01-01 (origination_date of level_2s row 1)"},
     "paid_date 2001-01-01 is before 2020-01-01 (origination_date of level_2s row 41)"),
    ({"table": "payments", "code": "duplicate-key", "message": "payment at row 4 repeats row 3 (due_date 2026-01-20)"},
     "payment at row 104 repeats row 103 (due_date 2026-01-20)"),
])
def test_a_value_a_message_quotes_is_the_clients_and_a_table_name_may_hold_digits(problem: dict[str, Any],
                                                                                  said: str) -> None:
    """The renumbering rewrote 'at row N' inside a quoted client value ('E at row 1' became 'E at row 30'), and a
    scope named with a digit (level_2s) was not shifted (a commit review)."""
    from policy_engine.portfolio.distributed import _renumbered

    before = {"exposures": 30, "payments": 100, "level_2s": 40}
    assert _renumbered({**problem, "row": 5, "field": "x"}, before, own=False)["message"] == said
