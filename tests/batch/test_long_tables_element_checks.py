"""A scope's ``unique`` fields and a date's ``not_before`` in a batch: a repeated row, or a date before its
bound, rejects its debtor, as ``decide`` refuses the record.

The long tables check a table written parent by parent in order with one comparison of neighbours and
hash any other; both find the same repeats, at their rows, in ``decide``'s words. ``generate`` draws no
repeat and no date before its bound, so a generated portfolio of such a policy is decided whole, alike
from JSON Lines and tables.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
import yaml

from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic
from policy_engine.portfolio.long_tables import run_long_batch
from policy_engine.portfolio.scoped_batch import run_scoped_batch

from ..conftest import DATA, ROOT
from ..variants import dated_scopes_text, unique_scopes_text

REFERENCE_21 = ROOT / "policies" / "loss-client-management" / "policy-2.1.0.yaml"

DEBTORS = """client_id,as_of,industry
D1,2025-09-30,manufacturing
D2,2025-09-30,manufacturing
D3,2025-09-30,manufacturing
D4,2025-09-30,manufacturing
"""
EXPOSURES = """client_id,exposure_id,balance,days_past_due
D1,E1,100,0
D1,E2,50,0
D2,E1,100,0
D3,E1,100,0
D4,E1,100,0
"""


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = tmp_path_factory.mktemp("unique") / "policy.yaml"
    path.write_text(unique_scopes_text(), "utf-8")
    return load_policy(path)


def _tables(folder: Path, payments: str, events: str) -> Path:
    folder.mkdir()
    for name, text in (("debtors", DEBTORS), ("exposures", EXPOSURES), ("payments", payments), ("events", events)):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


CASES = yaml.safe_load((DATA / "unique_rows.yaml").read_text("utf-8"))["cases"]
NO_PAYMENTS, NO_EVENTS = "client_id,exposure_id,due_date,paid_date\n", "client_id,kind,date\n"


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_repeated_row_rejects_its_debtor_at_the_row(policy: Any, tmp_path: Path, case: dict[str, Any]) -> None:
    rejected = case["rejected"]
    result = run_long_batch(policy, _tables(tmp_path / "t", case.get("payments", NO_PAYMENTS),
                                            case.get("events", NO_EVENTS)))
    got = {r["client_id"]: [(p["table"], p["row"], p["field"], p["message"]) for p in r["problems"]]
           for r in result.rejects}
    assert set(got) == set(rejected)
    for cid, problems in rejected.items():
        assert len(got[cid]) == len(problems)
        for (table, row, field, says), have in zip(problems, got[cid], strict=True):
            assert have[:3] == (table, row, field) and have[3].startswith(says), have
            assert have[3].endswith(": it would be counted twice")
    assert all(p["code"] == "duplicate-key" for r in result.rejects for p in r["problems"])
    summary = result.summary()
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in summary.values())
    assert result.decided == 4 - len(rejected)


def test_a_repeat_in_json_lines_is_rejected_with_decides_place_and_words(policy: Any, tmp_path: Path) -> None:
    client = json.loads((DATA / "scopes" / "clients" / "three-exposures.json").read_text("utf-8"))
    repeated = json.loads(json.dumps(client))
    repeated["client_id"] = "D-REPEAT"
    repeated["exposures"][0]["schedule"].append(dict(repeated["exposures"][0]["schedule"][0]))
    lines = tmp_path / "debtors.jsonl"
    lines.write_bytes(orjson.dumps(client) + b"\n" + orjson.dumps(repeated) + b"\n")
    result = run_scoped_batch(policy, lines)
    [reject] = result.rejects
    [problem] = reject["problems"]
    assert reject["client_id"] == "D-REPEAT" and problem["code"] == "duplicate-key"
    assert problem["field"] == "exposures[0].schedule[3].due_date"
    assert problem["message"] == ("payment exposures[0].schedule[3] repeats exposures[0].schedule[0] "
                                  "(due_date 2025-03-31): it would be counted twice")


def test_a_generated_portfolio_with_unique_payments_and_ordered_dates_is_decided_whole_alike(tmp_path: Path) -> None:
    policy = load_policy(REFERENCE_21)
    as_of = "2027-09-30"
    folder = tmp_path / "tables"
    synthetic.write_long_tables(policy, folder, 300, seed=3, as_of=as_of, fmt=".parquet")
    payments = pd.read_parquet(folder / "payments.parquet")
    assert not payments.duplicated(["client_id", "exposure_id", "due_date"]).any()
    exposures = pd.read_parquet(folder / "exposures.parquet")
    opened = pd.to_datetime(exposures["origination_date"])
    assert (pd.to_datetime(exposures["maturity_date"]) >= opened).all()  # maturity_date not_before origination
    paid = payments.merge(exposures[["client_id", "exposure_id", "origination_date"]], on=["client_id", "exposure_id"])
    paid = paid[paid["paid_date"].notna()]
    assert len(paid) > 1000 and (pd.to_datetime(paid["paid_date"]) >= pd.to_datetime(paid["origination_date"])).all()
    # a date moved after its bound keeps its spread: no pile on the as-of day (a capped reflection put 23% there)
    assert (pd.to_datetime(paid["paid_date"]) == pd.Timestamp(as_of)).mean() < 0.02
    assert (pd.to_datetime(exposures["maturity_date"]) == pd.Timestamp(as_of)).mean() < 0.02
    shuffled = payments.sample(frac=1.0, random_state=1)  # out of order: the hashed check
    shuffled.to_parquet(folder / "payments.parquet", index=False)
    lines = tmp_path / "debtors.jsonl"
    lines.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in synthetic.policy_clients(policy, 300, 3, as_of)))
    nested, long = run_scoped_batch(policy, lines), run_long_batch(policy, folder)
    assert nested.rejected == 0 and not long.rejects and not long.orphans
    pd.testing.assert_frame_equal(nested.decisions, long.decisions)
    pd.testing.assert_frame_equal(nested.exposures, long.exposures)
    assert long.summary()["payments"]["decided"] == len(payments) > 1000


DATED_DEBTORS = """client_id,as_of,industry
D1,2025-09-30,manufacturing
D2,2025-09-30,manufacturing
"""
DATED_EXPOSURES = """client_id,exposure_id,balance,days_past_due,opened,maturity
D1,E1,100,0,2024-06-30,2027-06-30
D1,E2,100,0,2024-06-30,2024-01-01
D2,E1,100,0,2024-06-30,2027-06-30
"""
DATED_PAYMENTS = """client_id,exposure_id,due_date,paid_date
D1,E1,2025-01-31,2025-01-31
D2,E1,2025-01-31,2024-06-30
D2,E1,2025-02-28,0001-01-01
"""


def test_a_date_before_its_bound_rejects_the_debtor_at_the_row_in_decides_words(tmp_path: Path) -> None:
    (tmp_path / "dated.yaml").write_text(dated_scopes_text(), "utf-8")
    folder = tmp_path / "t"
    folder.mkdir()
    for name, text in (("debtors", DATED_DEBTORS), ("exposures", DATED_EXPOSURES), ("payments", DATED_PAYMENTS)):
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    result = run_long_batch(load_policy(tmp_path / "dated.yaml"), folder)
    got = {r["client_id"]: [(p["table"], p["row"], p["field"], p["code"], p["message"]) for p in r["problems"]]
           for r in result.rejects}
    assert got == {
        "D1": [("exposures", 2, "maturity", "bad-field", "maturity 2024-01-01 is before 2024-06-30 (opened)")],
        "D2": [("payments", 3, "paid_date", "bad-field",
                "paid_date 0001-01-01 is before 2024-06-30 (opened of exposures row 3)")],
    }
    summary = result.summary()
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in summary.values())
