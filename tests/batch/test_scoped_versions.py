"""`batch -p ID` over a file holding 1.x client records and 2.0 debtor records: each line under the version
in force on its day, recorded as `decide` records it, a rerun recording nothing new.

2.0.0 is made active in a copy of the registry (1.1.0 ends the day before 2.0.0 starts), so the
tests hold whether or not the repository has activated it yet.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from policy_engine.cli import main
from policy_engine.decide.ref import PolicyRef

from ..conftest import POLICIES, REFERENCE

ID = "loss-client-management"
VOLATILE = ("decision_id", "evaluated_at")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: Any) -> Path:
    root = tmp_path_factory.mktemp("registry") / "policies"
    shutil.copytree(POLICIES, root)
    folder = root / ID
    two = folder / "policy-2.0.0.yaml"
    two.write_text(re.sub(r"(?m)^status: draft", "status: active", two.read_text("utf-8")), "utf-8")
    one = folder / "policy-1.1.0.yaml"
    one.write_text(re.sub(r"(?m)^effective_to: null", "effective_to: 2026-06-30", one.read_text("utf-8")), "utf-8")
    return root


def old_clients() -> list[dict[str, Any]]:
    return [json.loads(line) for line in (REFERENCE / "samples" / "portfolio.jsonl").read_text("utf-8").splitlines()
            if line.strip()][:4]


def new_debtors() -> list[dict[str, Any]]:
    return [json.loads(f.read_text("utf-8")) for f in sorted((REFERENCE / "samples" / "debtors").glob("*.json"))][:4]


def mixed(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """1.x clients (2025) and 2.0 debtors (2026-09-30) interleaved, then three lines that cannot be decided."""
    old, new = old_clients(), new_debtors()
    lines = [x for pair in zip(old, new, strict=True) for x in pair]
    late_old = {**old[0], "client_id": "OLD-IN-2026", "as_of": "2026-09-30"}  # a 1.x record on 2.0.0's day
    too_early = {**old[1], "client_id": "TOO-EARLY", "as_of": "2023-06-30"}  # before 1.0.0
    repeated = {**new[0], "as_of": "2025-06-30"}  # new[0]'s id again, on a 1.x day
    records = [*lines, late_old, too_early, repeated]
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path, records


def test_each_line_is_decided_under_the_version_in_force_on_its_day(registry: Path, tmp_path: Path) -> None:
    src, records = mixed(tmp_path)
    out, exposures, rec, rej = (tmp_path / n for n in ("d.csv", "e.parquet", "r.jsonl", "x.jsonl"))
    r = run("--policies", str(registry), "batch", str(src), "-p", ID, "--no-audit", "--format", "json",
            "--out", str(out), "--exposures-out", str(exposures), "--records", str(rec), "--rejects", str(rej))
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["accounting"] == {"rows_read": 11, "decided": 8, "rejected": 3}
    assert {v["version"]: v["decided"] for v in s["versions"]} == {"1.1.0": 4, "2.0.0": 4}
    assert s["policy"]["version"] == "1.1.0, 2.0.0"
    table = pd.read_csv(out)
    assert table["row"].tolist() == list(range(1, 9))
    assert table["policy_version"].tolist() == ["1.1.0", "2.0.0"] * 4
    assert table["exposures"].isna().tolist() == [True, False] * 4  # a 1.x client has no exposures
    e = pd.read_parquet(exposures)
    assert set(e["row"]) == {2, 4, 6, 8}
    # Records: each equal to what decide gives the line under the id, in input order.
    ref = PolicyRef(ID, registry=registry)
    got = [json.loads(x) for x in rec.read_text("utf-8").splitlines()]
    want = []
    for record in records[:8]:
        policy = ref.for_day(record["as_of"])
        want.append(ref.decider(policy).decide(record))
    assert [{k: v for k, v in g.items() if k not in VOLATILE} for g in got] == \
        [{k: v for k, v in w.items() if k not in VOLATILE} for w in want]
    by_line = {x["line"]: x for x in map(json.loads, rej.read_text("utf-8").splitlines())}
    assert sorted(by_line) == [9, 10, 11]
    assert [p["code"] for p in by_line[9]["problems"]] == ["wrong-record-kind"]  # 1.1.0 beside it reads it
    assert "--policy-version 1.1.0" in by_line[9]["problems"][0]["hint"]
    assert by_line[10]["problems"][0]["code"] == "no-version-in-force"
    assert by_line[11]["problems"][0]["code"] == "duplicate-id"
    assert "(first at row 2)" in by_line[11]["problems"][0]["message"]


def test_a_pinned_version_decides_every_line_under_it(registry: Path, tmp_path: Path) -> None:
    src, _ = mixed(tmp_path)
    r = run("--policies", str(registry), "batch", str(src), "-p", ID, "--policy-version", "2.0.0", "--no-audit",
            "--format", "json")
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    # The 2.0 debtors decided (as of their own day), every 1.x record refused by 2.0.0's record checks.
    assert s["accounting"] == {"rows_read": 11, "decided": 4, "rejected": 7}


def test_a_table_row_that_falls_under_a_version_with_scopes_is_a_reject(registry: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(REFERENCE / "samples" / "portfolio.csv", dtype=str, keep_default_na=False).head(4)
    rows.loc[1, "as_of"] = "2026-09-30"
    src = tmp_path / "clients.csv"
    rows.to_csv(src, index=False)
    rej = tmp_path / "x.jsonl"
    r = run("--policies", str(registry), "batch", str(src), "-p", ID, "--no-audit", "--format", "json",
            "--rejects", str(rej))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["accounting"] == {"rows_read": 4, "decided": 3, "rejected": 1}
    (reject,) = map(json.loads, rej.read_text("utf-8").splitlines())
    assert reject["row"] == 2 and reject["problems"][0]["code"] == "scoped-policy-in-table"
    assert "JSON Lines" in reject["problems"][0]["hint"]
    rows["as_of"] = "2026-09-30"
    rows.to_csv(src, index=False)
    every = run("--policies", str(registry), "batch", str(src), "-p", ID, "--no-audit")
    assert every.exit_code == 2 and "scoped-policy-in-table" in every.stderr


@pytest.mark.parametrize(("header", "says"), [
    ("asof", "the table has no as_of column (column 'asof' is not read as as_of), so every row is dated today"),
    ("day", "the table has no as_of column (no column names the day of each row)"),
])
def test_a_table_without_an_as_of_column_says_its_rows_were_dated_today(tmp_path: Path, header: str,
                                                                       says: str) -> None:
    """A misspelt as_of dates every row today, when 2.0.x is in force: the refusal names the column, not only the
    form (a table row cannot hold a debtor), which sent a reader after the wrong mistake."""
    rows = pd.read_csv(REFERENCE / "samples" / "portfolio.csv", dtype=str, keep_default_na=False).head(2)
    src = tmp_path / "clients.csv"
    rows.rename(columns={"as_of": header}).to_csv(src, index=False)
    r = run("--policies", str(POLICIES), "batch", str(src), "-p", ID, "--no-audit", "--out", str(tmp_path / "d.csv"))
    assert r.exit_code == 2 and "scoped-policy-in-table" in r.stderr and says in r.stderr, r.stderr
    assert r.stderr.startswith(f"{src}: error: scoped-policy-in-table")  # the table refused is named
    assert ("rename column 'asof' to as_of, or give --as-of" in r.stderr) == (header == "asof")


def test_recorded_as_decide_records_each_and_a_rerun_records_nothing_new(registry: Path, tmp_path: Path) -> None:
    src, records = mixed(tmp_path)
    db = str(tmp_path / "audit.db")
    first = run("--policies", str(registry), "--audit-db", db, "batch", str(src), "-p", ID, "--format", "json")
    assert first.exit_code == 0, first.stderr
    again = run("--policies", str(registry), "--audit-db", db, "batch", str(src), "-p", ID, "--format", "json")
    assert again.exit_code == 0, again.stderr
    assert "8 client(s) of this batch were already recorded; 0 recorded now" in again.stderr
    listed = [json.loads(x) for x in run("--audit-db", db, "audit", "list").stdout.splitlines()]
    assert len(listed) == 8
    assert {x["policy_version"] for x in listed} == {"1.1.0", "2.0.0"}
    verify = run("--audit-db", db, "audit", "verify")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["ok"] is True
    replay = run("--audit-db", db, "audit", "replay", "--all", "--format", "text")
    assert replay.exit_code == 0, replay.stderr
    assert "8 identical, 0 different" in replay.stderr
    # A debtor recorded by the batch shows the record decide gives it, exposures and all.
    seq = next(x["seq"] for x in listed if x["client_id"] == records[1]["client_id"])
    shown = json.loads(run("--audit-db", db, "audit", "show", str(seq), "--format", "json").stdout)["decision"]
    ref = PolicyRef(ID, registry=registry)
    want = ref.decider(ref.for_day("2026-09-30")).decide(records[1])
    assert shown["exposures"] == want["exposures"]
    assert {k: v for k, v in shown.items() if k not in VOLATILE} == {k: v for k, v in want.items()
                                                                     if k not in VOLATILE}


def test_a_table_with_its_header_only_is_a_portfolio_of_no_client_whatever_the_day(tmp_path: Path) -> None:
    """Dated today, a header-only table fell under 2.x and was refused as a table row that cannot hold a debtor
    (exit 2): a nightly job on an empty extract changed its result when 2.0.0 came into force."""
    src = tmp_path / "empty.csv"
    src.write_text((REFERENCE / "samples" / "portfolio.csv").read_text(encoding="utf-8").splitlines()[0] + "\n",
                   encoding="utf-8")
    r = run("--policies", str(POLICIES), "--no-audit", "batch", str(src), "-p", ID, "--format", "json",
            "--out", str(tmp_path / "d.csv"))
    assert r.exit_code == 0 and json.loads(r.stdout)["accounting"] == {"rows_read": 0, "decided": 0, "rejected": 0}
    impact = run("--policies", str(POLICIES), "--no-audit", "impact", f"{ID}@1.0.0", ID, "--portfolio", str(src),
                 "--format", "json")
    assert impact.exit_code == 0 and json.loads(impact.stdout)["clients"] == 0, impact.stderr
