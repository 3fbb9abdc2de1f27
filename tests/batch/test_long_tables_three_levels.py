"""Long tables of a policy three scopes deep: a row names its parent by every key from the debtor down.

A payment row of tranche T1 of exposure E2 belongs to E2's T1, not to E1's T1 (the tables once joined a
row by its debtor and its parent's key alone: E2's payments were counted under E1, and a bound read from
E1's dates). ``generate --tables`` writes every ancestor key, and the tables decide what the nested
records decide, whatever the order of their rows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic
from policy_engine.portfolio.long_tables import layout, run_long_batch
from policy_engine.portfolio.scoped_batch import run_scoped_batch

from ..conftest import DATA

POLICY = load_policy(DATA / "scopes" / "policy-three-levels.yaml")
AS_OF = "2025-06-30"

DEBTORS = "client_id,as_of,industry\nD1,2025-06-30,manufacturing\n"
EXPOSURES = """client_id,exposure_id,balance,days_past_due,signed_date,origination_date
D1,E1,100,0,2024-01-01,2024-02-01
D1,E2,100,0,2024-01-01,2024-06-01
"""
TRANCHES = """client_id,exposure_id,tranche_id,start
D1,E1,T1,2024-02-01
D1,E2,T1,2024-06-01
"""


def _folder(tmp: Path, payments: str, exposures: str = EXPOSURES) -> Path:
    folder = tmp / "t"
    folder.mkdir()
    for name, text in (("debtors", DEBTORS), ("exposures", exposures), ("tranches", TRANCHES),
                       ("payments", payments)):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def _nested(payments: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The debtor of the tables above as one nested record, its payments under (exposure, tranche)."""
    exposures = []
    for eid, origination, start in (("E1", "2024-02-01", "2024-02-01"), ("E2", "2024-06-01", "2024-06-01")):
        schedule = [p for e, p in payments if e == eid]
        exposures.append({"exposure_id": eid, "balance": 100, "days_past_due": 0, "signed_date": "2024-01-01",
                          "origination_date": origination,
                          "tranches": [{"tranche_id": "T1", "start": start, "schedule": schedule}]})
    return {"client_id": "D1", "as_of": AS_OF, "industry": "manufacturing", "exposures": exposures}


def test_the_payments_table_names_every_ancestor_key() -> None:
    tables = {t.name: t for t in layout(POLICY)}
    assert tables["payments"].parent_keys == ("client_id", "exposure_id", "tranche_id")


def test_a_tranche_key_used_under_two_exposures_joins_each_payment_to_its_own(tmp_path: Path) -> None:
    result = run_long_batch(POLICY, _folder(tmp_path, """client_id,exposure_id,tranche_id,due_date,seq,paid_date
D1,E1,T1,2025-01-31,1,2025-01-31
D1,E1,T1,2025-02-28,1,2025-03-20
D1,E2,T1,2025-01-31,1,2025-01-31
"""))
    assert not result.rejects and not result.orphans
    got = result.exposures.set_index("exposure_id")
    record = Decider(POLICY).decide(_nested([
        ("E1", {"due_date": "2025-01-31", "seq": 1, "paid_date": "2025-01-31"}),
        ("E1", {"due_date": "2025-02-28", "seq": 1, "paid_date": "2025-03-20"}),
        ("E2", {"due_date": "2025-01-31", "seq": 1, "paid_date": "2025-01-31"})]))
    decided = {x["exposure_id"]: x["metrics"] for x in record["exposures"]}
    assert decided["E1"]["payments"] == 2 and decided["E2"]["payments"] == 1  # not 3 and 0
    for eid in ("E1", "E2"):
        assert got.loc[eid, "metric.payments"] == decided[eid]["payments"]
        assert got.loc[eid, "metric.late"] == decided[eid]["late"]


ORPHANS = [
    ("a tranche of another exposure", "D1,E2,T9,2025-01-31,1,", "tranche_id",
     "no tranche 'T9' of exposure 'E2' of debtor 'D1' in the tranches table"),
    ("an exposure the debtor lacks", "D1,E9,T1,2025-01-31,1,", "exposure_id",
     "no exposure 'E9' of debtor 'D1' in the exposures table"),
    ("no exposure named", "D1,,T1,2025-01-31,1,", "exposure_id", "exposure_id is missing: the row names no exposure"),
]


@pytest.mark.parametrize(("name", "row", "field", "says"), ORPHANS, ids=[o[0] for o in ORPHANS])
def test_a_row_joining_no_element_at_some_level_names_that_level(tmp_path: Path, name: str, row: str, field: str,
                                                                 says: str) -> None:
    result = run_long_batch(POLICY, _folder(tmp_path, f"client_id,exposure_id,tranche_id,due_date,seq,paid_date\n"
                                                      f"D1,E1,T1,2025-01-31,1,2025-01-31\n{row}\n"))
    [orphan] = result.orphans
    assert (orphan["table"], orphan["row"], orphan["field"], orphan["message"]) == ("payments", 2, field, says)
    assert {"exposure_id", "tranche_id"} <= set(orphan)  # the keys it gives at every level
    [reject] = result.rejects  # the debtor's facts are incomplete, named at the level the row failed at
    assert reject["problems"][0]["message"].startswith(says) and reject["problems"][0]["field"] == field
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in result.summary().values())


def test_a_bound_read_from_the_grandparent_is_the_rows_own_exposures(tmp_path: Path) -> None:
    # due 2024-03-31: after E1's origination (2024-02-01), before E2's (2024-06-01): refused as E2's payment only
    result = run_long_batch(POLICY, _folder(tmp_path, """client_id,exposure_id,tranche_id,due_date,seq,paid_date
D1,E1,T1,2024-03-31,1,
D1,E2,T1,2024-03-31,1,
"""))
    [reject] = result.rejects
    assert [(p["row"], p["field"], p["message"]) for p in reject["problems"]] == [
        (2, "due_date", "due_date 2024-03-31 is before 2024-06-01 (origination_date of exposures row 2)")]


def test_generated_tables_decide_as_the_nested_records_whatever_the_row_order(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    synthetic.write_long_tables(POLICY, folder, 300, seed=5, as_of=AS_OF, fmt=".parquet")
    payments = pd.read_parquet(folder / "payments.parquet")
    assert list(payments.columns[:3]) == ["client_id", "exposure_id", "tranche_id"]
    payments.sample(frac=1.0, random_state=2).to_parquet(folder / "payments.parquet", index=False)
    lines = tmp_path / "debtors.jsonl"
    lines.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in synthetic.policy_clients(POLICY, 300, 5, AS_OF)))
    nested, long = run_scoped_batch(POLICY, lines), run_long_batch(POLICY, folder)
    assert nested.rejected == 0 and not long.rejects and not long.orphans  # generate breaks no bound, no unique
    pd.testing.assert_frame_equal(nested.decisions, long.decisions)
    pd.testing.assert_frame_equal(nested.exposures, long.exposures)
    assert long.summary()["payments"]["decided"] == len(payments) > 1000


@pytest.mark.parametrize("emptied", ["tranches", "exposures"])
def test_a_table_above_without_rows_orphans_the_rows_below(tmp_path: Path, emptied: str) -> None:
    """A bound read two levels up (a payment's due date, its exposure's origination) through a table with no rows:
    every payment is an orphan and its debtor rejected, never an internal error."""
    folder = _folder(tmp_path, "client_id,exposure_id,tranche_id,due_date,seq,paid_date\nD1,E1,T1,2025-01-31,1,\n")
    path = folder / f"{emptied}.csv"
    path.write_text(path.read_text("utf-8").splitlines()[0] + "\n", encoding="utf-8")  # the header alone
    result = run_long_batch(POLICY, folder)
    above = ["tranches", "tranches"] if emptied == "exposures" else []  # the tranches lose their exposures too
    assert [o["table"] for o in result.orphans] == [*above, "payments"]
    assert [r["client_id"] for r in result.rejects] == ["D1"]
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in result.summary().values())
