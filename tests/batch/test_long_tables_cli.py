"""`batch DIR`: a folder of long tables decided by the command, as the library decides it.

The command on the tables `generate --tables` writes gives the same debtor and exposure tables, and
the same summary, as `batch` on the JSON Lines file `generate` writes for the same seed; a folder's
rejects file holds its rejected debtors and its orphaned rows, and its summary every table's
accounting; what the command cannot do for a folder (a 1.x policy, --financials) is refused
with exit 2 and the reason. Each decided debtor is recorded as `decide` records the nested record the
tables hold for it: `--records` and the store hold `decide`'s records of the same debtors.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from policy_engine.cli import main
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic
from policy_engine.run import decide_and_record

from ..conftest import DATA, POLICIES, ROOT
from .test_long_tables_hostile import DEBTORS, EVENTS, EXPOSURES, PAYMENTS

MULTI = DATA / "scopes" / "policy-multi-exposure.yaml"
REFERENCE = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
OLD = ROOT / "policies" / "loss-client-management" / "policy-1.1.0.yaml"
ID = "loss-client-management"
AS_OF = "2026-09-30"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _write(folder: Path, **tables: str) -> Path:
    folder.mkdir()
    for name, text in tables.items():
        (folder / f"{name}.csv").write_text(text, encoding="utf-8")
    return folder


def _summary(r: Result) -> dict[str, Any]:
    s = json.loads(r.stdout)
    s.pop("generated_at")
    return s


@pytest.mark.parametrize(("policy", "fmt", "n"), [(REFERENCE, "parquet", 150), (REFERENCE, "csv", 60),
                                                   (MULTI, "csv", 80)])
def test_a_generated_folder_gets_the_decisions_of_the_same_debtors_as_json_lines(
        tmp_path: Path, policy: Path, fmt: str, n: int) -> None:
    common = ["generate", "-p", str(policy), "--n", str(n), "--seed", "5", "--as-of", AS_OF]
    assert run(*common, "--out", str(tmp_path / "t"), "--tables", fmt).exit_code == 0
    assert run(*common, "--out", str(tmp_path / "debtors.jsonl")).exit_code == 0
    outs = {}
    for name, source in (("long", tmp_path / "t"), ("nested", tmp_path / "debtors.jsonl")):
        r = run("--no-audit", "batch", str(source), "-p", str(policy), "--format", "json",
                "--out", str(tmp_path / f"{name}.parquet"), "--exposures-out", str(tmp_path / f"{name}-e.parquet"),
                "--rejects", str(tmp_path / f"{name}-rejects.jsonl"), "--fail-on-rejects")
        assert r.exit_code == 0, r.output
        outs[name] = _summary(r)
    long, nested = outs["long"], outs["nested"]
    tables = long.pop("tables")
    assert long["accounting"].pop("orphaned") == 0
    assert long == nested  # accounting, grades, warnings, actions, segments, versions, exposures by grade
    assert tables["debtors"] == {"read": n, "decided": n, "rejected": 0, "orphaned": 0}
    assert all(c["read"] == c["decided"] for c in tables.values()) and tables["exposures"]["read"] >= n
    for suffix in ("", "-e"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / f"long{suffix}.parquet"),
                                      pd.read_parquet(tmp_path / f"nested{suffix}.parquet"))
    assert (tmp_path / "long-rejects.jsonl").read_text("utf-8") == ""
    assert len(set(pd.read_parquet(tmp_path / "long-e.parquet")["grade"])) >= 2  # not a comparison of defaults


def test_the_text_summary_accounts_for_every_table(tmp_path: Path) -> None:
    folder = _write(tmp_path / "t", debtors=DEBTORS, exposures=EXPOSURES, payments=PAYMENTS, events=EVENTS)
    r = run("--no-audit", "batch", str(folder), "-p", str(MULTI), "--format", "text")
    assert r.exit_code == 0, r.output
    assert "debtors read 10 = decided 1 + rejected 9\n" in r.stdout
    assert "orphaned rows 5 " in r.stdout
    lines = r.stdout[r.stdout.index("tables (rows read = decided + rejected + orphaned):"):].splitlines()
    assert [re.sub(r"\s+", " ", x.strip()) for x in lines[1:5]] == [
        "debtors 10 = 1 + 9 + 0", "exposures 15 = 2 + 11 + 2", "events 2 = 1 + 1 + 0", "payments 6 = 2 + 1 + 3"]
    assert "9 debtor(s) and 5 orphaned row(s) rejected (write them with --rejects FILE)" in r.stderr


def test_rejected_debtors_and_orphans_go_to_the_rejects_file_and_fail_on_rejects(tmp_path: Path) -> None:
    folder = _write(tmp_path / "t", debtors=DEBTORS, exposures=EXPOSURES, payments=PAYMENTS, events=EVENTS)
    rejects = tmp_path / "rejects.jsonl"
    r = run("--no-audit", "batch", str(folder), "-p", str(MULTI), "--format", "json", "--out",
            str(tmp_path / "d.csv"), "--exposures-out", str(tmp_path / "e.csv"), "--rejects", str(rejects),
            "--fail-on-rejects")
    assert r.exit_code == 3, r.output
    s = json.loads(r.stdout)
    assert s["accounting"] == {"rows_read": 10, "decided": 1, "rejected": 9, "orphaned": 5}
    assert s["tables"]["payments"] == {"read": 6, "decided": 2, "rejected": 1, "orphaned": 3}
    lines = [json.loads(x) for x in rejects.read_text("utf-8").splitlines()]
    assert len(lines) == 14
    bad = next(x for x in lines if x["client_id"] == "D2")
    assert bad["problems"] == [{"table": "exposures", "row": 3, "field": "balance", "code": "bad-field",
                                "message": "expected a number, found string 'ten'"}]
    orphans = {(x["table"], x["row"]): x["problems"][0]["message"] for x in lines if x.get("orphaned")}
    assert orphans[("payments", 3)] == "no exposure 'E9' of debtor 'D7' in the exposures table"
    d7 = next(x for x in lines if x["client_id"] == "D7" and not x.get("orphaned"))  # its payments lost: not decided
    assert d7["problems"][0]["message"] == ("no exposure 'E9' of debtor 'D7' in the exposures table: rows of this "
                                            "debtor that join none of its exposures, so its facts are incomplete")
    assert orphans[("exposures", 12)] == "no debtor 'X9' in the debtors table"
    assert pd.read_csv(tmp_path / "d.csv")["client_id"].tolist() == ["D1"]
    assert pd.read_csv(tmp_path / "e.csv")["exposure_id"].tolist() == ["E1", "E2"]


def test_orphans_alone_fail_on_rejects(tmp_path: Path) -> None:
    folder = _write(tmp_path / "t", debtors="client_id,as_of,industry\nD1,2025-09-30,trade\n",
                    exposures="client_id,exposure_id,balance,days_past_due\nD1,E1,10,0\nX9,E1,1,0\n")
    r = run("--no-audit", "batch", str(folder), "-p", str(MULTI), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accounting"] == {"rows_read": 1, "decided": 1, "rejected": 0, "orphaned": 1}
    assert "1 orphaned row(s) rejected" in r.stderr
    r = run("--no-audit", "batch", str(folder), "-p", str(MULTI), "--format", "json", "--fail-on-rejects")
    assert r.exit_code == 3, r.output


SMALL = {"debtors": "client_id,as_of,industry\nD1,2025-09-30,trade\n",
         "exposures": "client_id,exposure_id,balance,days_past_due\nD1,E1,10,0\n"}


@pytest.mark.parametrize(("case", "args", "code", "says"), [
    ("no-debtors", ["--no-audit"], "file-missing", "no debtors table (debtors.parquet or debtors.csv)"),
    ("mixed", ["--no-audit"], "mixed-formats", "the tables are .csv and .parquet files"),
    ("ambiguous", ["--no-audit"], "ambiguous-table", "both debtors.parquet and debtors.csv"),
    ("miscased", ["--no-audit"], "unknown-table", "Exposures.csv is not a table of"),
    ("ok", ["--no-audit", "--financials", "{tmp}/f.csv"], "bad-option", "holds the debtors' statements"),
    ("ok", ["--no-audit", "-p", str(OLD)], "scoped-policy-required", "1.1.0 declares no scopes"),
    ("ok", ["-p", str(OLD)], "scoped-policy-required", "1.1.0 declares no scopes"),  # before the store's refusal
    ("ok", ["--no-audit", "--out", "{tmp}"], "bad-option", "is a directory"),
])
def test_what_a_folder_cannot_be_given_is_refused_with_its_reason(tmp_path: Path, case: str, args: list[str],
                                                                  code: str, says: str) -> None:
    folder = _write(tmp_path / "t", **({} if case == "no-debtors" else {"debtors": SMALL["debtors"]}),
                    exposures=SMALL["exposures"])
    if case in ("mixed", "ambiguous"):
        frame = pd.read_csv(folder / ("exposures.csv" if case == "mixed" else "debtors.csv"), dtype=str)
        frame.to_parquet(folder / ("exposures.parquet" if case == "mixed" else "debtors.parquet"), index=False)
        if case == "mixed":
            (folder / "exposures.csv").unlink()
    if case == "miscased":  # read as no exposures, its debtors would be decided without them
        (folder / "exposures.csv").rename(folder / "Exposures.csv")
    full = [a.format(tmp=tmp_path) for a in args]
    if "-p" not in full:
        full += ["-p", str(MULTI)]
    r = CliRunner().invoke(main, [full[0], "batch", str(folder), *full[1:]] if full[0] == "--no-audit"
                           else ["batch", str(folder), *full])
    assert r.exit_code == 2, r.output
    assert f"error: {code}: " in r.output and says in r.output, r.output
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def registry(tmp_path_factory: Any) -> Path:
    """2.0.0 active from 2026-07-01, 1.1.0 ending the day before (whether or not the repository has done so)."""
    root = tmp_path_factory.mktemp("registry") / "policies"
    shutil.copytree(POLICIES, root)
    two = root / ID / "policy-2.0.0.yaml"
    two.write_text(re.sub(r"(?m)^status: draft", "status: active", two.read_text("utf-8")), "utf-8")
    one = root / ID / "policy-1.1.0.yaml"
    one.write_text(re.sub(r"(?m)^effective_to: null", "effective_to: 2026-06-30", one.read_text("utf-8")), "utf-8")
    return root


def _dated_folder(tmp_path: Path) -> Path:
    """A folder generated as of 2025-12-31 (1.1.0's time) whose debtors are dated in 2.0.0's, but debtor 2
    (left in 1.1.0's) and debtor 4 (before any version; its facts are then after its day too)."""
    assert run("generate", "-p", str(REFERENCE), "--n", "6", "--seed", "2", "--as-of", "2025-12-31",
               "--out", str(tmp_path / "t"), "--tables", "csv").exit_code == 0
    path = tmp_path / "t" / "debtors.csv"
    debtors = pd.read_csv(path, dtype=str, keep_default_na=False)
    debtors["as_of"] = AS_OF
    debtors.loc[1, "as_of"] = "2025-12-31"
    debtors.loc[3, "as_of"] = "2023-06-30"
    debtors.to_csv(path, index=False)
    return tmp_path / "t"


def test_with_an_id_a_debtor_whose_day_selects_another_version_is_rejected_with_that_reason(
        registry: Path, tmp_path: Path) -> None:
    folder = _dated_folder(tmp_path)
    ids = pd.read_csv(folder / "debtors.csv", dtype=str)["client_id"].tolist()
    rejects = tmp_path / "rejects.jsonl"
    r = run("--policies", str(registry), "--no-audit", "batch", str(folder), "-p", ID, "--format", "json",
            "--rejects", str(rejects), "--out", str(tmp_path / "d.parquet"))
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["policy"]["version"] == "2.0.0"
    assert s["accounting"] == {"rows_read": 6, "decided": 4, "rejected": 2, "orphaned": 0}
    assert pd.read_parquet(tmp_path / "d.parquet")["client_id"].tolist() == [ids[0], ids[2], ids[4], ids[5]]
    got = {x["client_id"]: x["problems"] for x in map(json.loads, rejects.read_text("utf-8").splitlines())}
    assert [(p["table"], p["row"], p["field"], p["code"]) for p in got[ids[1]]] == \
        [("debtors", 2, "as_of", "other-version")]
    assert got[ids[1]][0]["message"] == ("on 2025-12-31 loss-client-management 1.1.0 is in force, not 2.0.0, "
                                         "which decides this folder")
    assert ("debtors", 4, "as_of", "no-version-in-force") in \
        [(p["table"], p["row"], p["field"], p["code"]) for p in got[ids[3]]]
    assert s["tables"]["exposures"]["rejected"] > 0  # the rejected debtors' rows count as rejected
    assert all(c["read"] == c["decided"] + c["rejected"] + c["orphaned"] for c in s["tables"].values())


@pytest.mark.parametrize(("args", "decided"), [(["--policy-version", "2.0.0"], 5), (["--as-of", AS_OF], 6)])
def test_a_pinned_version_or_a_day_for_the_run_decides_every_debtor(registry: Path, tmp_path: Path,
                                                                    args: list[str], decided: int) -> None:
    folder = _dated_folder(tmp_path)
    rejects = tmp_path / "rejects.jsonl"
    r = run("--policies", str(registry), "--no-audit", "batch", str(folder), "-p", ID, *args, "--format", "json",
            "--rejects", str(rejects))
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["policy"]["version"] == "2.0.0"
    assert s["accounting"] == {"rows_read": 6, "decided": decided, "rejected": 6 - decided, "orphaned": 0}
    codes = {p["code"] for x in map(json.loads, rejects.read_text("utf-8").splitlines()) for p in x["problems"]}
    assert codes <= {"bad-field"}  # pinned: debtor 4 only for its facts after its day, never for its version


def test_an_id_without_a_version_with_scopes_in_force_is_refused(tmp_path: Path) -> None:
    folder = _dated_folder(tmp_path)
    r = run("--policies", str(POLICIES), "--no-audit", "batch", str(folder), "-p", ID, "--as-of", "2025-12-31")
    assert r.exit_code == 2, r.output
    assert "error: scoped-policy-required: policy loss-client-management 1.1.0 declares no scopes" in r.output


def test_of_several_versions_with_scopes_the_one_most_debtors_select_decides_the_folder(
        registry: Path, tmp_path: Path) -> None:
    """2.0.0 ends 2026-09-30 and a 2.1.0 (the same rules) starts the next day: the folder, four debtors in
    2.1.0's time and two in 2.0.0's, is decided under 2.1.0, its two others rejected, naming 2.0.0."""
    root = tmp_path / "policies"
    shutil.copytree(registry, root)
    two = root / ID / "policy-2.0.0.yaml"
    text = two.read_text("utf-8")
    two.write_text(re.sub(r"(?m)^effective_to: .*$", f"effective_to: {AS_OF}", text), "utf-8")
    later = re.sub(r"(?m)^effective_from: 2026-07-01", "effective_from: 2026-10-01",
                   re.sub(r"(?m)^version: 2.0.0", "version: 2.1.0", text))
    (root / ID / "policy-2.1.0.yaml").write_text(later, "utf-8")
    folder = _dated_folder(tmp_path)
    path = folder / "debtors.csv"
    debtors = pd.read_csv(path, dtype=str, keep_default_na=False)
    debtors["as_of"] = ["2026-11-30", AS_OF, "2026-11-30", "2026-11-30", AS_OF, "2026-11-30"]
    debtors.to_csv(path, index=False)
    rejects = tmp_path / "rejects.jsonl"
    r = run("--policies", str(root), "--no-audit", "batch", str(folder), "-p", ID, "--format", "json",
            "--rejects", str(rejects))
    assert r.exit_code == 0, r.output
    s = json.loads(r.stdout)
    assert s["policy"]["version"] == "2.1.0"
    assert s["accounting"] == {"rows_read": 6, "decided": 4, "rejected": 2, "orphaned": 0}
    got = [(x["row"], p["code"], p["message"]) for x in map(json.loads, rejects.read_text("utf-8").splitlines())
           for p in x["problems"]]
    assert got == [(r, "other-version", f"on {AS_OF} loss-client-management 2.0.0 is in force, not 2.1.0, which "
                                        "decides this folder") for r in (2, 5)]


VOLATILE = ("decision_id", "evaluated_at")


def _without_nulls(x: Any) -> Any:
    """A record as a table can hold it: a null field, and an object of nulls only, are no field."""
    if isinstance(x, dict):
        kept = {k: _without_nulls(v) for k, v in x.items() if v is not None}
        return {k: v for k, v in kept.items() if v != {}}
    return [_without_nulls(v) for v in x] if isinstance(x, list) else x


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_each_decided_debtor_is_recorded_as_decide_records_its_nested_record(tmp_path: Path, fmt: str) -> None:
    policy = load_policy(REFERENCE)
    assert run("generate", "-p", str(REFERENCE), "--n", "40", "--seed", "8", "--as-of", AS_OF,
               "--out", str(tmp_path / "t"), "--tables", fmt).exit_code == 0
    db, records = tmp_path / "audit.db", tmp_path / "records.jsonl"
    r = run("--audit-db", str(db), "batch", str(tmp_path / "t"), "-p", str(REFERENCE), "--format", "json",
            "--records", str(records))
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in records.read_text("utf-8").splitlines()]
    nested = [_without_nulls(c) for c in synthetic.policy_clients(policy, 40, 8, AS_OF)]
    assert [g["client_id"] for g in got] == [c["client_id"] for c in nested]
    for record, client in zip(got, nested, strict=True):
        want = decide_and_record(policy, client, audit_db=False)
        assert {k: v for k, v in record.items() if k not in VOLATILE} == \
            {k: v for k, v in want.items() if k not in VOLATILE}
    verify = run("--audit-db", str(db), "audit", "verify")
    assert verify.exit_code == 0 and json.loads(verify.stdout)["records"] == 40, verify.output
    again = run("--audit-db", str(db), "batch", str(tmp_path / "t"), "-p", str(REFERENCE), "--format", "json")
    assert again.exit_code == 0, again.output
    assert "40 client(s) of this batch were already recorded; 0 recorded now" in again.stderr


def test_only_the_decided_debtors_of_a_folder_are_recorded(tmp_path: Path) -> None:
    folder = _write(tmp_path / "t", debtors=DEBTORS, exposures=EXPOSURES, payments=PAYMENTS, events=EVENTS)
    db, records = tmp_path / "audit.db", tmp_path / "records.jsonl"
    r = run("--audit-db", str(db), "batch", str(folder), "-p", str(MULTI), "--format", "json", "--records",
            str(records))
    assert r.exit_code == 0, r.output
    got = [json.loads(x) for x in records.read_text("utf-8").splitlines()]
    assert [g["client_id"] for g in got] == ["D1"]
    assert [e["exposure_id"] for e in got[0]["exposures"]] == ["E1", "E2"]
    assert [e["grade"] for e in got[0]["exposures"]] == ["substandard", "substandard"]
    listed = run("--audit-db", str(db), "audit", "verify")
    assert json.loads(listed.stdout)["records"] == 1, listed.output


@pytest.mark.parametrize(("table", "header", "given", "meant"), [
    ("payments", "client_id,exposure_id,due_date,Paid_Date", "payments.Paid_Date", "payments.paid_date"),
    ("payments", "client_id,exposure_id,due_date,paid_dte", "payments.paid_dte", "payments.paid_date"),
    ("exposures", "client_id,exposure_id,balance,days_past_du", "exposures.days_past_du", "exposures.days_past_due"),
    # the column's name with its path in the record before it, brackets, or a field after it: dropped in silence
    ("payments", "client_id,exposure_id,due_date,schedule[*].paid_date", "payments.schedule[*].paid_date",
     "payments.paid_date"),
    ("payments", "client_id,exposure_id,due_date,exposures[*].schedule[*].paid_date",
     "payments.exposures[*].schedule[*].paid_date", "payments.paid_date"),
    ("payments", "client_id,exposure_id,due_date,paid_date.value", "payments.paid_date.value", "payments.paid_date"),
    ("exposures", "client_id,exposure_id,balance,days_past_due[0]", "exposures.days_past_due[0]",
     "exposures.days_past_due"),
    ("payments", "client_id,exposure_id,due_date,", "payments.(column 4, no name)", "payments.paid_date"),
    ("payments", "client_id,exposure_id,due_date,Unnamed: 3", "payments.(column 4, no name)", "payments.paid_date"),
])
def test_a_misspelt_column_of_a_long_table_is_named_not_read_as_null(tmp_path: Path, table: str, header: str,
                                                                     given: str, meant: str) -> None:
    tables = {"debtors": SMALL["debtors"], "exposures": SMALL["exposures"],
              "payments": "client_id,exposure_id,due_date,paid_date\nD1,E1,2025-01-31,2025-01-31\n"}
    tables[table] = header + "\n" + tables[table].split("\n", 1)[1]
    folder = _write(tmp_path / "t", **tables)
    r = run("--no-audit", "batch", str(folder), "-p", str(MULTI), "--format", "json")
    assert r.exit_code in (0, 3) and "Traceback" not in r.output, r.output
    said = (f"column '{given}' is not read by policy multi-exposure; did you mean '{meant}'? (as given, '{meant}' "
            "is missing)")
    notes = json.loads(r.stderr)["warnings" if r.exit_code == 0 else "errors"]  # one JSON document on stderr
    assert [n["message"] for n in notes if n["code"] == "misspelt-column"] == [said], r.stderr
    assert json.loads(r.stdout)["misspelt_columns"] == [{"given": given, "did_you_mean": meant}]
    text = run("--no-audit", "batch", str(folder), "-p", str(MULTI), "--format", "text")
    assert text.stderr.count("warning: column") == 1 and f"warning: {said}" in text.stderr, text.stderr


def test_a_row_index_written_first_without_a_name_is_no_misspelt_column(tmp_path: Path) -> None:
    """pandas' to_csv writes the frame's row numbers as a first column without a name: it was named as maybe the
    optional column the table lacks (a reviewer's finding); a column without a name elsewhere still is."""
    tables = {"debtors": SMALL["debtors"], "exposures": SMALL["exposures"],
              "payments": ",client_id,exposure_id,due_date\n0,D1,E1,2025-01-31\n"}
    r = run("--no-audit", "batch", str(_write(tmp_path / "t", **tables)), "-p", str(MULTI), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["misspelt_columns"] == []


def test_a_generated_folder_has_no_column_that_looks_misspelt(tmp_path: Path) -> None:
    from policy_engine.portfolio.long_tables import misspelt_columns

    policy = load_policy(ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml")
    synthetic.write_long_tables(policy, tmp_path / "t", 20, seed=3, as_of="2026-09-30", fmt=".csv")
    assert misspelt_columns(policy, tmp_path / "t") == []


@pytest.mark.parametrize(("table", "drop", "named"), [
    ("exposures", "balance", [{"table": "exposures", "column": "balance"}]),  # a field the policy requires
    ("payments", "exposure_id", [{"table": "payments", "column": "exposure_id"}]),  # the id joining a row
    ("payments", "paid_date", []),  # optional: a table may leave it out
])
def test_a_column_every_row_needs_missing_from_a_table_is_named_once(tmp_path: Path, table: str, drop: str,
                                                                     named: list[dict[str, str]]) -> None:
    tables = {"debtors": SMALL["debtors"], "exposures": SMALL["exposures"],
              "payments": "client_id,exposure_id,due_date,paid_date\nD1,E1,2025-01-31,2025-01-31\n"}
    frame = [line.split(",") for line in tables[table].strip().split("\n")]
    k = frame[0].index(drop)
    tables[table] = "\n".join(",".join(cells[:k] + cells[k + 1:]) for cells in frame) + "\n"
    r = run("--no-audit", "batch", str(_write(tmp_path / "t", **tables)), "-p", str(MULTI), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout).get("missing_columns", []) == named
    notes = [n["message"] for n in json.loads(r.stderr)["warnings"] if n["code"] == "missing-column"] \
        if r.stderr else []
    assert notes == ([f"table {table} has no column '{drop}', which every row needs: each of its rows is rejected "
                      "(or orphaned) for it"] if named else []), r.stderr


def test_a_folder_saved_by_excel_as_gbk_is_read_with_its_encoding(tmp_path: Path) -> None:
    """--encoding applies to every CSV table of a folder (it was read as UTF-8 whatever the option said, so the
    error's own hint, 'pass --encoding gb18030', led nowhere); the records are those of the UTF-8 folder."""
    utf8 = tmp_path / "utf8"
    assert run("generate", "-p", str(REFERENCE), "--n", "6", "--seed", "5", "--as-of", AS_OF, "--tables", "csv",
               "--out", str(utf8)).exit_code == 0
    first = pd.read_csv(utf8 / "debtors.csv", dtype=str)["client_id"][0]
    gbk = tmp_path / "gbk"
    gbk.mkdir()
    for table in utf8.glob("*.csv"):  # a Chinese client id in every table that names it
        text = table.read_text(encoding="utf-8").replace(first, "华东精密机械")
        (utf8 / table.name).write_text(text, encoding="utf-8")
        (gbk / table.name).write_text(text, encoding="gbk")
    common = ["batch", "-p", str(REFERENCE), "--no-audit", "--format", "json"]
    r = run(*common, str(gbk), "--out", str(tmp_path / "x.csv"))
    assert r.exit_code == 3 and "cannot decode the file as utf-8" in r.stderr and "--encoding gb18030" in r.stderr
    records = {}
    for folder, extra in ((utf8, []), (gbk, ["--encoding", "gb18030"])):
        out = tmp_path / f"{folder.name}.records.jsonl"
        r = run(*common, str(folder), "--records", str(out), *extra)
        assert r.exit_code == 0, r.stderr
        records[folder.name] = [(d["client_id"], d["input_sha256"], d["classification"]["grade"])
                                for d in map(json.loads, out.read_text(encoding="utf-8").splitlines())]
    assert records["gbk"] == records["utf8"] and records["gbk"][0][0] == "华东精密机械" and len(records["gbk"]) == 6
    r = run(*common, str(gbk), "--encoding", "gb18030", "--engine", "dask", "--out", str(tmp_path / "d"))
    assert r.exit_code == 2 and "--engine dask reads CSV as UTF-8 only" in r.stderr


@pytest.mark.parametrize(("damage", "summary", "warning"), [
    ("payments header only", {"empty_tables": [{"table": "payments", "parent": "exposures"}]},
     "warning: table payments has no row, though exposures has decided rows"),
    ("payments absent", {"empty_tables": [{"table": "payments", "parent": "exposures"}]},
     "warning: table payments has no row, though exposures has decided rows"),
    ("client ids mistyped below debtors", {"graded_table": "exposures"},
     "warning: 4 debtor(s) decided without any row of exposures: graded by the debtor's rules alone"),
    # their payments and modifications still name them: their facts are known to be incomplete
    ("exposure client ids mistyped", {"accounting": {"rows_read": 4, "decided": 0, "rejected": 4, "orphaned": 183}},
     "4 debtor(s) and 183 orphaned row(s) rejected"),
])
def test_a_gap_no_row_is_rejected_for_is_named(tmp_path: Path, damage: str, summary: dict[str, Any],
                                               warning: str) -> None:
    """Rows missing wholesale reject nothing (a payment history absent, exposures joined to nobody), yet every
    decision depends on them: the summary names the gap and batch warns on stderr."""
    folder = tmp_path / "t"
    assert run("generate", "-p", str(REFERENCE), "--n", "4", "--seed", "5", "--as-of", AS_OF, "--tables", "csv",
               "--out", str(folder)).exit_code == 0
    whole = run("batch", str(folder), "-p", str(REFERENCE), "--no-audit", "--format", "json",
                "--out", str(tmp_path / "w.csv"))
    assert "warning" not in whole.stderr and "empty_tables" not in json.loads(whole.stdout)
    payments, exposures = folder / "payments.csv", folder / "exposures.csv"
    if damage == "payments header only":
        payments.write_text(payments.read_text(encoding="utf-8").splitlines()[0] + "\n", encoding="utf-8")
    elif damage == "payments absent":
        payments.unlink()
    else:  # every row of the tables named no debtor: its client id mistyped ('xG005-...')
        for table in ((exposures,) if damage == "exposure client ids mistyped" else
                      (exposures, payments, folder / "modifications.csv")):
            lines = table.read_text(encoding="utf-8").splitlines()
            table.write_text("\n".join([lines[0], *("x" + line for line in lines[1:])]) + "\n", encoding="utf-8")
    r = run("batch", str(folder), "-p", str(REFERENCE), "--no-audit", "--format", "json",
            "--out", str(tmp_path / "d.csv"))
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert {k: s[k] for k in summary} == summary
    notes = [w["message"] for w in json.loads(r.stderr)["warnings"]] if r.stderr else []  # one JSON document
    assert any(warning.removeprefix("warning: ") in n for n in notes) or not warning.startswith("warning: ")
    text = run("batch", str(folder), "-p", str(REFERENCE), "--no-audit", "--format", "text",
               "--out", str(tmp_path / "d.csv"))
    assert warning in text.stderr
    assert s.get("decided_without_elements", 0) == (4 if damage == "client ids mistyped below debtors" else 0)


def test_a_debtor_has_one_input_hash_as_json_lines_and_as_long_tables(tmp_path: Path) -> None:
    """The same debtors, as JSON Lines and as long tables, give the same records, input hashes included: a group
    object whose fields are all null (JSON) and no group at all (the tables' empty columns) are the same facts."""
    policy = REFERENCE.with_name("policy-2.1.0.yaml")  # its group fields are optional, so drawn null together
    common = ["-p", str(policy), "--n", "400", "--seed", "11", "--as-of", "2027-09-30"]
    assert run("generate", *common, "--out", str(tmp_path / "d.jsonl")).exit_code == 0
    assert run("generate", *common, "--tables", "parquet", "--out", str(tmp_path / "t")).exit_code == 0
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    nulls = [json.loads(x)["client_id"] for x in lines
             if json.loads(x).get("group") and all(v is None for v in json.loads(x)["group"].values())]
    assert nulls  # the generator draws such debtors
    records = {}
    for name in ("d.jsonl", "t"):
        out = tmp_path / f"{name}.records.jsonl"
        r = run("batch", str(tmp_path / name), "-p", str(policy), "--no-audit", "--format", "json",
                "--records", str(out))
        assert r.exit_code == 0, r.stderr
        records[name] = {d["client_id"]: d["input_sha256"] for d in map(json.loads, out.read_text().splitlines())}
    assert records["d.jsonl"] == records["t"] and len(records["t"]) == 400


def test_an_output_beside_the_tables_is_refused_and_one_in_a_subfolder_is_not(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    assert run("generate", "-p", str(REFERENCE), "--n", "3", "--seed", "5", "--as-of", AS_OF, "--tables", "csv",
               "--out", str(folder)).exit_code == 0
    beside = run("batch", str(folder), "-p", str(REFERENCE), "--no-audit", "--out", str(folder / "decisions.csv"))
    assert beside.exit_code == 2 and "the next run would read it as a table" in beside.stderr, beside.stderr
    rejects = run("batch", str(folder), "-p", str(REFERENCE), "--no-audit", "--rejects", str(folder / "r.jsonl"))
    assert rejects.exit_code == 2 and "outputs are kept out of the folder it reads" in rejects.stderr  # not a table
    (folder / "results").mkdir()
    inside = run("batch", str(folder), "-p", str(REFERENCE), "--no-audit", "--out", str(folder / "results" / "d.csv"))
    assert inside.exit_code == 0, inside.stderr
    again = run("batch", str(folder), "-p", str(REFERENCE), "--no-audit", "--out", str(tmp_path / "d.csv"))
    assert again.exit_code == 0, again.stderr  # a subfolder is not read as a table


def _as_structs(path: Path) -> None:
    """``path`` rewritten with its dotted columns packed into struct columns, as Spark and warehouses export them
    (``accounting`` a struct of ``credit_impaired``, ``stage``, ``ecl``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    groups: dict[str, list[str]] = {}
    for name in table.column_names:
        if "." in name:
            groups.setdefault(name.split(".", 1)[0], []).append(name)
    for group, names in groups.items():
        struct = pa.StructArray.from_arrays([table.column(n).combine_chunks() for n in names],
                                            names=[n.split(".", 1)[1] for n in names])
        table = table.drop_columns(names).append_column(group, struct)
    assert groups and all(not pa.types.is_struct(f.type) or "." not in f.name for f in table.schema)
    pq.write_table(table, path)


def test_struct_columns_of_a_parquet_table_are_read_as_its_dotted_columns(tmp_path: Path) -> None:
    """A Parquet exposures table with `accounting` and `collateral` as struct columns (Spark's form) was not read
    at all, without a word: credit-impaired exposures lost their floors (found by a hostile review)."""
    common = ["generate", "-p", str(REFERENCE), "--n", "60", "--seed", "7", "--as-of", AS_OF, "--tables", "parquet"]
    assert run(*common, "--out", str(tmp_path / "flat")).exit_code == 0
    shutil.copytree(tmp_path / "flat", tmp_path / "struct")
    _as_structs(tmp_path / "struct" / "exposures.parquet")
    outs = {}
    for name in ("flat", "struct"):
        r = run("--no-audit", "batch", str(tmp_path / name), "-p", str(REFERENCE), "--format", "json",
                "--exposures-out", str(tmp_path / f"{name}-e.parquet"))
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["misspelt_columns"] == [], r.stdout
        outs[name] = pd.read_parquet(tmp_path / f"{name}-e.parquet")
    pd.testing.assert_frame_equal(outs["flat"], outs["struct"])
    assert outs["struct"]["floors"].astype(str).str.contains("credit_impaired").any()  # the struct was read


def test_a_csv_column_named_as_a_group_is_named_not_passed_over(tmp_path: Path) -> None:
    """`collateral` in place of `collateral.value`: the column was not read and the loan-to-value of every
    exposure read null, exit 0 and no warning (found by a hostile review)."""
    common = ["generate", "-p", str(REFERENCE), "--n", "10", "--seed", "7", "--as-of", AS_OF, "--tables", "csv"]
    assert run(*common, "--out", str(tmp_path / "t")).exit_code == 0
    exposures = tmp_path / "t" / "exposures.csv"
    header, rest = exposures.read_text(encoding="utf-8").split("\n", 1)
    exposures.write_text(header.replace("collateral.value,", "collateral,", 1) + "\n" + rest, encoding="utf-8")
    r = run("--no-audit", "batch", str(tmp_path / "t"), "-p", str(REFERENCE), "--format", "json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["misspelt_columns"] == [{"given": "exposures.collateral",
                                                         "did_you_mean": "exposures.collateral.value"}]


def _not_utf8(path: Path, column: str, row: int) -> None:
    """``path`` rewritten with the text of ``column`` in ``row`` followed by a byte no UTF-8 text holds."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    raw = table.column(column).cast(pa.binary()).to_pylist()
    raw[row] += b"\xff"
    pq.write_table(table.set_column(table.column_names.index(column), column,
                                    pa.array(raw, pa.binary()).view(pa.string())), path)


@pytest.mark.parametrize(("table", "column"), [("exposures", "product"), ("exposures", "exposure_id"),
                                               ("payments", "client_id"), ("debtors", "industry")])
def test_parquet_text_that_is_not_utf8_is_refused_by_table_column_and_row(tmp_path: Path, table: str,
                                                                          column: str) -> None:
    """Parquet does not check what a writer declares text: such a cell ended the run as an internal error (exit 5,
    'ArrowException: Wrapping ... failed'; found by a hostile review)."""
    folder = tmp_path / "t"
    assert run("generate", "-p", str(REFERENCE), "--n", "5", "--seed", "7", "--as-of", AS_OF, "--tables", "parquet",
               "--out", str(folder)).exit_code == 0
    _not_utf8(folder / f"{table}.parquet", column, 1)
    r = run("--no-audit", "batch", str(folder), "-p", str(REFERENCE), "--format", "json")
    [error] = json.loads(r.stderr)["errors"]
    assert r.exit_code == 3 and error["code"] == "unreadable" and error["file"].endswith(f"{table}.parquet"), r.output
    assert f"column '{column}' holds text that is not UTF-8 (row 2)" in error["message"]


def test_a_client_table_whose_text_is_not_utf8_is_refused_as_unreadable(tmp_path: Path) -> None:
    source = tmp_path / "clients.parquet"
    pd.read_csv(ROOT / "policies" / "loss-client-management" / "samples" / "portfolio.csv",
                dtype={"client_id": str}).to_parquet(source, index=False)
    _not_utf8(source, "industry", 0)
    r = run("--no-audit", "batch", str(source), "-p", f"{ID}@1.1.0", "--format", "json")
    [error] = json.loads(r.stderr)["errors"]
    assert r.exit_code == 3 and "column 'industry' holds text that is not UTF-8 (row 1)" in error["message"], r.output


def _with_exposure_cell(tmp_path: Path, column: str, value: str) -> Path:
    """A generated CSV folder of 3 debtors whose first exposure holds ``value`` in ``column``."""
    folder = tmp_path / "t"
    assert run("generate", "-p", str(REFERENCE), "--n", "3", "--seed", "1", "--as-of", AS_OF, "--tables", "csv",
               "--out", str(folder)).exit_code == 0
    exposures = folder / "exposures.csv"
    header, first, rest = exposures.read_text(encoding="utf-8").split("\n", 2)
    cells = first.split(",")
    cells[header.split(",").index(column)] = value
    exposures.write_text("\n".join([header, ",".join(cells), rest]), encoding="utf-8")
    return folder


def test_a_csv_number_beyond_the_float_range_is_named_as_json_names_it(tmp_path: Path) -> None:
    """A CSV cell 1e400 read 'inf is out of range (|x| <= 1e+15)'; decide of the same JSON says it reads as infinity
    (hostile review)."""
    folder = _with_exposure_cell(tmp_path, "balance", "1e400")
    r = run("--no-audit", "batch", str(folder), "-p", str(REFERENCE), "--rejects", str(tmp_path / "r.jsonl"))
    assert r.exit_code == 0, r.output
    [reject] = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    [problem] = reject["problems"]
    assert problem["field"] == "balance" and "reads as infinity" in problem["message"], problem


def test_a_debtor_rejected_for_a_key_with_a_control_character_names_it_once(tmp_path: Path) -> None:
    """The key's check and the text check of the same cell both named it: the reject listed one problem twice
    (hostile review)."""
    folder = _with_exposure_cell(tmp_path, "exposure_id", "E\x011")
    r = run("--no-audit", "batch", str(folder), "-p", str(REFERENCE), "--rejects", str(tmp_path / "r.jsonl"))
    assert r.exit_code == 0, r.output
    debtor = json.loads((tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()[0])
    said = [json.dumps(p, sort_keys=True) for p in debtor["problems"]]
    assert len(said) == len(set(said)) and any("U+0001" in p["message"] for p in debtor["problems"]), said
