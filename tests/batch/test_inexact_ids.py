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


def test_dask_refuses_a_partition_whose_debtor_ids_are_inexact_floats(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    synthetic.write_long_tables(POLICY_2, dataset, 8, 11, AS_OF, partitions=2)
    first = sorted(dataset.iterdir())[1]
    _float_ids(first / "debtors.parquet", "client_id", BEYOND)
    with pytest.raises(InputError) as e:
        run_dataset(POLICY_2, dataset, tmp_path / "out", scheduler="synchronous")
    assert [(d.code, Path(d.file or "").parent.name) for d in e.value.diagnostics] == [("inexact-id", first.name)]
