"""Ids stored as floating-point numbers in Parquet: whole ones below 2**53 join as the integers they hold; any
other (a fraction, or one beyond 2**53, where digits may be lost and two debtors share one id) refuses its table
in every batch path, naming the file, the column and the first row."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.diagnostics import InputError
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic
from policy_engine.portfolio.batch import flatten, read_table
from policy_engine.portfolio.distributed import run_dataset
from policy_engine.portfolio.frame import refuse_inexact_ids
from policy_engine.portfolio.long_tables import run_long_batch

from ..conftest import POLICIES, ROOT, SAMPLES

POLICY_2 = load_policy(ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml")
AS_OF = "2026-09-30"
BEYOND = float(2**53 + 2)  # exact as a float, yet beyond the whole numbers a float holds one by one


@pytest.mark.parametrize(("values", "dtype", "row", "shown"), [
    ([1.0, None, 2.0], "float64", None, None),  # an integer column with a null: the ids 1 and 2
    ([1.0, 1.5], "float64", 2, "1.5"),
    ([1.0, BEYOND, np.nan], "float64", 2, "9007199254740994.0"),
    ([np.inf], "float64", 1, "inf"),
    ([BEYOND], "int64", None, None),  # an integer column holds every id exactly
    (["1.5"], "object", None, None),  # text is an id as written
    ([3.0, 1.5, 3.0, 1.5], "category", 2, "1.5"),  # read as a dictionary: the first row, not the first category
    ([16_777_217.0], "float32", 1, "16777216.0"),  # a float32 holds whole numbers exactly up to 2**24 only
    ([2049.0], "float16", 1, "2048.0"),
    ([16_777_215.0], "float32", None, None),  # 2**24 itself may have been 2**24 + 1
    ([1001, "A7", 123456789012345678.0], "object", 3, "1.2345678901234568e+17"),  # a spreadsheet's cells
    ([1001, 1002.0, None], "object", None, None),
])
def test_a_float_id_column_is_refused_only_when_one_of_its_ids_is_inexact(values: list[Any], dtype: str,
                                                                         row: int | None, shown: str | None) -> None:
    ids = pd.Series(values, dtype=dtype)
    if row is None:
        refuse_inexact_ids(ids, "client_id", "t.parquet")
        return
    with pytest.raises(InputError) as e:
        refuse_inexact_ids(ids, "client_id", "t.parquet")
    [d] = e.value.diagnostics
    assert (d.code, d.file) == ("inexact-id", "t.parquet")
    assert f"(row {row}: {shown})" in d.message and d.message.startswith("column client_id stores ids as floating")


def test_an_empty_dictionary_of_float_ids_is_no_inexact_id() -> None:
    refuse_inexact_ids(pd.Series(pd.Categorical([None, None], categories=pd.Index([], dtype=float))), "c", "t")


@pytest.mark.parametrize(("values", "dtype", "texts"), [
    ([123456789012345678, None, 123456789012345679], "Int64",
     ["123456789012345678", None, "123456789012345679"]),  # never through a float
    ([1001, 1002.0, "A7", None], "object", ["1001", "1002", "A7", None]),  # a whole float cell is its integer
])
def test_integer_ids_keep_their_digits(values: list[Any], dtype: str, texts: list[str | None]) -> None:
    from policy_engine.portfolio.frame import client_id_text

    assert client_id_text(pd.Series(values, dtype=dtype)).to_numpy(dtype=object, na_value=None).tolist() == texts


def _big_integer_ids(frame: pd.DataFrame) -> pa.Table:
    """``frame`` with client ids 123456789012345678 + k as an int64 Arrow column with a null (pandas would read
    them as floats, one id for several), as Spark or pyarrow write them."""
    ids = [123456789012345678 + k for k in range(len(frame))]
    ids[1] = None
    table = pa.Table.from_pandas(frame.drop(columns=["client_id"]), preserve_index=False)
    return table.add_column(0, "client_id", pa.array(ids, pa.int64()))


def test_int64_ids_with_a_null_are_read_as_their_digits_not_as_one_float(tmp_path: Path) -> None:
    frame = pd.DataFrame.from_records([flatten(json.loads(p.read_text(encoding="utf-8"))) for p in SAMPLES[:3]])
    pq.write_table(_big_integer_ids(frame), tmp_path / "p.parquet")
    r = CliRunner().invoke(main, ["--no-audit", "--policies", str(POLICIES), "batch", str(tmp_path / "p.parquet"),
                                  "-p", "loss-client-management", "--out", str(tmp_path / "d.csv"),
                                  "--rejects", str(tmp_path / "r.jsonl")], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    assert pd.read_csv(tmp_path / "d.csv", dtype=str)["client_id"].tolist() == [
        "123456789012345678", "123456789012345680"]
    [missing] = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert missing["row"] == 2 and missing["problems"][0]["field"] == "client_id"
    frame["client_id"] = pd.array([123456789012345678, None, 123456789012345679], dtype="Int64")
    frame.to_parquet(tmp_path / "q.parquet", index=False)
    assert read_table(tmp_path / "q.parquet").frame["client_id"].dtype.kind in "iuO"


def test_a_spreadsheet_of_ids_beyond_2_53_is_refused(tmp_path: Path) -> None:
    frame = pd.DataFrame.from_records([flatten(json.loads(p.read_text(encoding="utf-8"))) for p in SAMPLES[:2]])
    frame["client_id"] = [123456789012345678.0, 123456789012345679.0]  # read back as 123456789012345696 twice
    frame.to_excel(tmp_path / "p.xlsx", index=False)
    r = CliRunner().invoke(main, ["--no-audit", "--policies", str(POLICIES), "batch", str(tmp_path / "p.xlsx"),
                                  "-p", "loss-client-management", "--out", str(tmp_path / "d.csv")],
                           catch_exceptions=False)
    assert r.exit_code == 3 and "inexact-id" in r.stderr and "row 1" in r.stderr, r.stderr


def _float_ids(path: Path, column: str, last: float | None = None) -> None:
    """Rewrite ``column`` of a Parquet table as floats (an id's digits: D000012 is 12.0), as pandas writes integer
    ids with a null; with ``last``, the last row's id becomes that."""
    table = pq.read_table(path)
    values = np.array([float(re.sub(r"\D", "", str(v))) for v in table.column(column).to_pylist()])
    if last is not None:
        values[-1] = last
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.float64())),
                   path)


def test_a_clients_table_with_an_inexact_float_id_is_refused_by_batch(tmp_path: Path) -> None:
    frame = pd.DataFrame.from_records([flatten(json.loads(p.read_text(encoding="utf-8"))) for p in SAMPLES[:3]])
    frame["client_id"] = [1.0, 2.0, 1.5]
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    r = CliRunner().invoke(main, ["--no-audit", "--policies", str(POLICIES), "batch", str(tmp_path / "p.parquet"),
                                  "-p", "loss-client-management", "--out", str(tmp_path / "d.csv")],
                           catch_exceptions=False)
    assert r.exit_code == 3 and "inexact-id" in r.stderr and "(row 3: 1.5)" in r.stderr, r.stderr
    frame["client_id"] = [1.0, None, 3.0]  # whole numbers with a null: read as the ids 1 and 3
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    assert read_table(tmp_path / "p.parquet").frame["client_id"].tolist()[::2] == [1.0, 3.0]


@pytest.mark.parametrize(("table", "column"), [("debtors", "client_id"), ("exposures", "client_id"),
                                               ("payments", "exposure_id")])
def test_long_tables_with_an_inexact_float_id_are_refused_naming_the_table(tmp_path: Path, table: str,
                                                                          column: str) -> None:
    folder = tmp_path / "p"
    synthetic.write_long_tables(POLICY_2, folder, 6, 11, AS_OF)
    whole = tmp_path / "whole"
    synthetic.write_long_tables(POLICY_2, whole, 6, 11, AS_OF)
    for name in ("debtors", *(t for t in ("exposures", "payments", "modifications", "events", "statements")
                              if (whole / f"{t}.parquet").exists())):
        _float_ids(whole / f"{name}.parquet", "client_id")
    as_text = run_long_batch(POLICY_2, folder, as_of=AS_OF)
    as_floats = run_long_batch(POLICY_2, whole, as_of=AS_OF)  # whole float ids join as the integers they hold
    assert as_floats.summary() == as_text.summary() and as_floats.decided == as_text.decided == 6

    _float_ids(folder / f"{table}.parquet", column, BEYOND)
    with pytest.raises(InputError) as e:
        run_long_batch(POLICY_2, folder, as_of=AS_OF)
    [d] = e.value.diagnostics
    assert (d.code, Path(d.file or "").name) == ("inexact-id", f"{table}.parquet")
    assert f"column {column} stores ids" in d.message and "9007199254740994.0" in d.message


def test_long_tables_of_int64_ids_with_a_null_join_by_their_digits(tmp_path: Path) -> None:
    """An int64 id column with a null (Spark and pyarrow write them so) was read through floats: every debtor
    with an 18-digit id shared its float with its neighbours."""
    folder = tmp_path / "p"
    synthetic.write_long_tables(POLICY_2, folder, 6, 11, AS_OF)
    as_text = run_long_batch(POLICY_2, folder, as_of=AS_OF)
    for name in ("debtors", "exposures", "payments", "modifications", "events", "statements"):
        path = folder / f"{name}.parquet"
        if not path.exists():
            continue
        table = pq.read_table(path)
        ids = [123456789012345600 + int(re.sub(r"\D", "", str(v))) for v in table.column("client_id").to_pylist()]
        if name == "payments":  # a payment naming no debtor: an orphan, not a reason to read every id as a float
            ids[-1] = None
        pq.write_table(table.set_column(table.schema.get_field_index("client_id"), "client_id",
                                        pa.array(ids, pa.int64())), path)
    as_integers = run_long_batch(POLICY_2, folder, as_of=AS_OF)
    written = [str(v) for v in pq.read_table(folder / "debtors.parquet").column("client_id").to_pylist()]
    assert as_integers.decisions["client_id"].astype(str).tolist() == written and as_text.decided == 6
    assert {k: v for k, v in as_integers.summary().items() if k != "payments"} == {
        k: v for k, v in as_text.summary().items() if k != "payments"}
    assert as_integers.summary()["payments"]["orphaned"] == 1


def test_dask_refuses_a_partition_whose_debtor_ids_are_inexact_floats(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    synthetic.write_long_tables(POLICY_2, dataset, 8, 11, AS_OF, partitions=2)
    first = sorted(dataset.iterdir())[1]
    _float_ids(first / "debtors.parquet", "client_id", BEYOND)
    with pytest.raises(InputError) as e:
        run_dataset(POLICY_2, dataset, tmp_path / "out", scheduler="synchronous")
    assert [(d.code, Path(d.file or "").parent.name) for d in e.value.diagnostics] == [("inexact-id", first.name)]


def _binary_ids(path: Path, column: str) -> None:
    """Rewrite ``column`` of a Parquet file as bytes (a binary column, as older Hive and Impala writers store text)."""
    table = pq.read_table(path)
    at = table.schema.get_field_index(column)
    values = [None if v is None else str(v).encode() for v in table.column(at).to_pylist()]
    # no pandas metadata (a Hive writer's file has none; pandas decodes a binary column it says was text)
    pq.write_table(table.set_column(at, column, pa.array(values, pa.binary())).replace_schema_metadata(None), path)


def test_a_clients_table_of_binary_ids_is_refused_not_read_as_bytes_text(tmp_path: Path) -> None:
    """Ids read as ``b'C001'`` joined nothing and were what the audit trail stored (found by a hostile-input review)."""
    frame = pd.DataFrame.from_records([flatten(json.loads(p.read_text(encoding="utf-8"))) for p in SAMPLES[:3]])
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    _binary_ids(tmp_path / "p.parquet", "client_id")
    r = CliRunner().invoke(main, ["--no-audit", "--policies", str(POLICIES), "batch", str(tmp_path / "p.parquet"),
                                  "-p", "loss-client-management", "--out", str(tmp_path / "d.csv")],
                           catch_exceptions=False)
    assert r.exit_code == 3 and "binary-id" in r.stderr and "b'" not in r.stdout, r.stderr


@pytest.mark.parametrize(("table", "column"), [("debtors", "client_id"), ("exposures", "client_id"),
                                               ("payments", "exposure_id")])
def test_long_tables_with_binary_ids_are_refused_naming_the_table(tmp_path: Path, table: str, column: str) -> None:
    """With the debtors' ids as bytes, every debtor was decided without its exposures (each orphaned)."""
    folder = tmp_path / "p"
    synthetic.write_long_tables(POLICY_2, folder, 6, 11, AS_OF)
    _binary_ids(folder / f"{table}.parquet", column)
    with pytest.raises(InputError) as e:
        run_long_batch(POLICY_2, folder, as_of=AS_OF)
    [d] = e.value.diagnostics
    assert (d.code, Path(d.file or "").name) == ("binary-id", f"{table}.parquet")
    assert d.message.startswith(f"column {column} stores ids as bytes")


def test_dask_refuses_a_partition_whose_debtor_ids_are_bytes(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    synthetic.write_long_tables(POLICY_2, dataset, 8, 11, AS_OF, partitions=2)
    first = sorted(dataset.iterdir())[1]
    _binary_ids(first / "debtors.parquet", "client_id")
    with pytest.raises(InputError) as e:
        run_dataset(POLICY_2, dataset, tmp_path / "out", scheduler="synchronous")
    assert [d.code for d in e.value.diagnostics] == ["binary-id"]


@pytest.mark.parametrize(("values", "dtype", "refused"), [
    ([b"C001", b"C002"], "object", True),
    (["C001", b"C002", None], "object", True),  # mixed: a cell of bytes among text
    (["C001", "C002", None], "object", False),
    ([b"C001", b"C001"], "category", True),
    ([1001, 1002], "int64", False),
])
def test_a_column_of_ids_holding_bytes_is_refused(values: list[Any], dtype: str, refused: bool) -> None:
    from policy_engine.portfolio.frame import refuse_binary_ids

    ids = pd.Series(values, dtype=dtype)
    if not refused:
        refuse_binary_ids(ids, "client_id", "t.parquet")
        return
    with pytest.raises(InputError) as e:
        refuse_binary_ids(ids, "client_id", "t.parquet")
    assert [(d.code, d.file) for d in e.value.diagnostics] == [("binary-id", "t.parquet")]
