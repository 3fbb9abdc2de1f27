"""Portfolio batches: every format, every row accounted for, the same decisions as `decide`."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import UsageError
from policy_engine.portfolio.batch import (
    flatten,
    iter_records,
    read_table,
    run_batch,
    summary,
    write_decisions,
    write_tables,
)
from policy_engine.portfolio.synthetic import csv_cell

from ..conftest import POLICIES, REFERENCE, ROOT, SAMPLES
from ..strategies import mutated_clients

PORTFOLIO_CSV = REFERENCE / "samples" / "portfolio.csv"
PORTFOLIO_JSONL = REFERENCE / "samples" / "portfolio.jsonl"


def _typed_frame() -> pd.DataFrame:
    rows = [flatten(json.loads(p.read_text(encoding="utf-8"))) for p in SAMPLES]
    return pd.DataFrame.from_records(rows)


@pytest.fixture(scope="module")
def formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("formats")
    frame = _typed_frame()
    paths = {"csv": PORTFOLIO_CSV, "jsonl": PORTFOLIO_JSONL, "parquet": d / "p.parquet", "xlsx": d / "p.xlsx"}
    frame.to_parquet(paths["parquet"], index=False)
    frame.to_excel(paths["xlsx"], index=False)
    return paths


def _core(result: Any) -> pd.DataFrame:
    return result.decisions.drop(columns=[])


def test_every_format_gives_identical_decisions(policy: Any, formats: dict[str, Path]) -> None:
    tables = {name: run_batch(policy, read_table(path)).decisions for name, path in formats.items()}
    reference = tables.pop("csv")
    assert len(reference) == len(SAMPLES)
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, reference, check_dtype=False, obj=name)


def test_a_parquet_of_decimal_amounts_is_decided_as_the_same_amounts_in_floats(policy: Any, formats: dict[str, Path],
                                                                              tmp_path: Path) -> None:
    """A warehouse writes money as DECIMAL(18,4): every row was refused ('expected a number, found Decimal')."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(formats["parquet"])
    amounts = [f.name for f in table.schema if pa.types.is_floating(f.type) and f.name.startswith("loan.")]
    assert amounts
    for name in amounts:
        i = table.schema.get_field_index(name)
        table = table.set_column(i, name, table.column(i).cast(pa.decimal128(24, 4)))
    pq.write_table(table, tmp_path / "decimal.parquet")
    decided = run_batch(policy, read_table(tmp_path / "decimal.parquet"))
    assert decided.rejects == []
    pd.testing.assert_frame_equal(decided.decisions, run_batch(policy, read_table(formats["parquet"])).decisions)


def test_batch_decisions_are_the_decide_decisions(policy: Any, decider: Decider) -> None:
    result = run_batch(policy, read_table(PORTFOLIO_CSV))
    for row, path in zip(result.decisions.itertuples(), SAMPLES, strict=True):
        d = decider.decide(json.loads(path.read_text(encoding="utf-8")))
        assert row.client_id == d["client_id"]
        assert row.grade == d["classification"]["grade"] and row.decided_by == d["classification"]["decided_by"]
        assert row.warnings == [w["id"] for w in d["warnings"]]
        assert row.actions == [a["id"] for a in d["actions"]]
        assert row.suppressed_actions == [a["id"] for a in d["suppressed_actions"]]
        assert row.undetermined == [u["rule"] for u in d["undetermined"]]
        assert row.score == d["score"]["total"]


def test_full_records_from_a_batch_equal_decide_records_including_the_input_hash(policy: Any,
                                                                                 decider: Decider) -> None:
    for path in (PORTFOLIO_CSV, PORTFOLIO_JSONL):
        result = run_batch(policy, read_table(path))
        for record, sample_path in zip(iter_records(result, decider), SAMPLES, strict=True):
            expected = decider.decide(json.loads(sample_path.read_text(encoding="utf-8")))
            for k in ("decision_id", "evaluated_at"):
                record.pop(k), expected.pop(k)
            assert record == expected


@pytest.mark.parametrize("suffix", [".xlsx", ".parquet"])
def test_date_cells_give_the_records_decide_gives_input_hash_included(policy: Any, decider: Decider, tmp_path: Path,
                                                                      suffix: str) -> None:
    # Excel keeps dates as date cells (read back as date-times at midnight), Parquet as time stamps:
    # the input hashed and stored is the client's record, with dates as YYYY-MM-DD.
    clients = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES[:3]]
    frame = pd.DataFrame.from_records([flatten(c) for c in clients])
    dates = [c for c in frame.columns if c.endswith(("period_end", "maturity_date")) or c == "as_of"]
    frame[dates] = frame[dates].apply(pd.to_datetime)
    path = tmp_path / f"dates{suffix}"
    frame.to_excel(path, index=False) if suffix == ".xlsx" else frame.to_parquet(path, index=False)
    volatile = ("decision_id", "evaluated_at")
    assert [{k: v for k, v in r.items() if k not in volatile} for r in iter_records(run_batch(
        policy, read_table(path)), decider)] == [
        {k: v for k, v in decider.decide(c).items() if k not in volatile} for c in clients]


SALT = [
    # (column, bad value, expected field, expected fragment)
    ("loan.balance", "abc", "loan.balance", "expected a number, found string 'abc'"),
    ("loan.days_past_due", "-5", "loan.days_past_due", "negative"),
    ("loan.days_past_due", "NaN", "loan.days_past_due", "not a finite number"),
    ("industry", "", "industry", "required field 'industry' is missing"),
    ("industry", "mining", "industry", "unknown value 'mining'"),
    ("events.litigation", "maybe", "events.litigation", "expected true or false"),
    ("financials[1].period_end", "2024/12/31", "financials[1].period_end",
     "expected a date YYYY-MM-DD, found string '2024/12/31'"),
    ("internal_rating", "6.5", "internal_rating", "whole number"),
    ("client_id", "C001", "client_id", "duplicate client_id 'C001' (first at row 1)"),
]


def test_salted_file_rejects_bad_rows_with_reasons_and_accounts_for_every_row(policy: Any, tmp_path: Path) -> None:
    frame = pd.read_csv(PORTFOLIO_CSV, dtype=str, keep_default_na=False)
    good = len(frame)
    extra = []
    for k, (col, value, _, _) in enumerate(SALT):
        row = frame.iloc[k % good].copy()
        row["client_id"] = f"BAD{k}"
        row[col] = value
        extra.append(row)
    salted = pd.concat([frame, pd.DataFrame(extra)], ignore_index=True)
    path = tmp_path / "salted.csv"
    salted.to_csv(path, index=False)
    result = run_batch(policy, read_table(path))
    assert result.rows_read == good + len(SALT)
    assert result.decided == good and result.rejected == len(SALT)
    assert result.decided + result.rejected == result.rows_read
    by_row = {r["row"]: r for r in result.rejects}
    for k, (_, _, field, fragment) in enumerate(SALT):
        reject = by_row[good + k + 1]
        assert reject["client_id"] == ("C001" if field == "client_id" else f"BAD{k}")
        messages = [p["message"] for p in reject["problems"] if p["field"] == field]
        assert any(fragment in m for m in messages), (field, reject)
    s = summary(result)
    assert s["accounting"] == {"rows_read": good + len(SALT), "decided": good, "rejected": len(SALT)}


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_csv_separated_by_something_else_is_named_not_rejected_row_by_row(tmp_path: Path, sep: str) -> None:
    # Read with commas, every row would be one cell and be rejected for a missing client_id.
    from policy_engine.diagnostics import InputError

    path = tmp_path / "p.csv"
    path.write_text(PORTFOLIO_CSV.read_text(encoding="utf-8").replace(",", sep), encoding="utf-8")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert err.value.diagnostics[0].message == f"the columns are separated by {sep!r}, not by commas"


def test_a_misspelt_column_is_named_in_the_summary_and_on_stderr(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    text = PORTFOLIO_CSV.read_text(encoding="utf-8")
    path.write_text(text.replace("financials[0].ebitda,", "financials[0].ebita,", 1), encoding="utf-8")
    r = _cli("batch", str(path), "-p", "loss-client-management", "--format", "json", "--no-audit")
    assert r.exit_code == 0
    # one period's column misspelt: that period's ebitda would be null for every client
    assert json.loads(r.stdout)["misspelt_columns"] == [{"given": "financials[0].ebita",
                                                         "did_you_mean": "financials[0].ebitda"}]
    assert "column 'financials[0].ebita' is not read" in r.stderr
    clean = _cli("batch", str(PORTFOLIO_CSV), "-p", "loss-client-management", "--format", "json", "--no-audit")
    assert json.loads(clean.stdout)["misspelt_columns"] == [] and "warning" not in clean.stderr


def test_jsonl_lines_that_are_not_json_are_rejected_with_their_line(policy: Any, tmp_path: Path) -> None:
    lines = PORTFOLIO_JSONL.read_text(encoding="utf-8").splitlines()
    lines.insert(2, '{"client_id": "X", "loan": {"balance": NaN}}')
    lines.insert(5, "not json")
    lines.insert(7, "[1, 2]")
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_batch(policy, read_table(path))
    assert result.rows_read == len(lines) and result.decided == len(SAMPLES)
    assert [r["row"] for r in result.rejects] == [3, 6, 8]
    assert result.decisions["row"].tolist()[:3] == [1, 2, 4]


def test_typed_formats_refuse_numbers_sent_as_text(policy: Any, tmp_path: Path) -> None:
    record = json.loads(SAMPLES[0].read_text(encoding="utf-8"))
    record["loan"]["balance"] = "30000000"
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    result = run_batch(policy, read_table(path))
    assert result.rejected == 1
    assert "a number stored as text: write it without quotes in JSON, as a numeric column in Parquet" \
        in result.rejects[0]["problems"][0]["message"]


def test_long_financials_table_equals_wide_columns(policy: Any, tmp_path: Path) -> None:
    frame = pd.read_csv(PORTFOLIO_CSV, dtype=str, keep_default_na=False)
    fin_cols = [c for c in frame.columns if c.startswith("financials[")]
    long_rows = []
    for _, row in frame.iterrows():
        k = 0
        while f"financials[{k}].period_end" in frame.columns:
            if row[f"financials[{k}].period_end"]:
                prefix = f"financials[{k}]."
                fields = {c.split("].", 1)[1]: row[c] for c in fin_cols if c.startswith(prefix)}
                long_rows.append({"client_id": row["client_id"], **fields})
            k += 1
    clients = frame.drop(columns=fin_cols)
    clients.to_csv(tmp_path / "clients.csv", index=False)
    pd.DataFrame(long_rows).sample(frac=1, random_state=1).to_csv(tmp_path / "fin.csv", index=False)
    long = run_batch(policy, read_table(tmp_path / "clients.csv", tmp_path / "fin.csv")).decisions
    wide = run_batch(policy, read_table(PORTFOLIO_CSV)).decisions
    pd.testing.assert_frame_equal(long, wide, check_dtype=False)


def _clients_and_periods() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The samples as a typed client table without financials and a long table of their periods."""
    records = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES]
    clients = pd.DataFrame.from_records([flatten({k: v for k, v in r.items() if k != "financials"}) for r in records])
    periods = pd.DataFrame.from_records([{"client_id": r["client_id"], **q} for r in records for q in r["financials"]])
    return clients, periods


def _write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        path.write_text("".join(json.dumps({k: v for k, v in row.items() if not (isinstance(v, float) and
                                                                                  math.isnan(v))}) + "\n"
                                for row in frame.to_dict("records")), encoding="utf-8")
    return path


@pytest.mark.parametrize(("clients_fmt", "periods_fmt"), [(".parquet", ".csv"), (".csv", ".parquet"),
                                                          (".jsonl", ".csv"), (".csv", ".jsonl")])
def test_clients_and_periods_in_different_formats_join_as_one_table(policy: Any, tmp_path: Path, clients_fmt: str,
                                                                    periods_fmt: str) -> None:
    # CSV cells are text, the other formats typed: the periods are read the way the clients are.
    clients, periods = _clients_and_periods()
    table = read_table(_write(clients, tmp_path / f"c{clients_fmt}"), _write(periods, tmp_path / f"f{periods_fmt}"))
    result = run_batch(policy, table)
    assert result.rejects == [] and table.periods is not None and table.periods.rejects == []
    wide = run_batch(policy, read_table(PORTFOLIO_CSV)).decisions
    pd.testing.assert_frame_equal(result.decisions, wide, check_dtype=False)


def test_period_rows_that_join_no_client_are_rejected_and_counted(policy: Any, tmp_path: Path) -> None:
    clients, periods = _clients_and_periods()
    clients["client_id"] = range(1, len(clients) + 1)  # numbers in a typed table, text in the CSV: matched as text
    periods["client_id"] = periods["client_id"].map({f"C{i:03d}": str(i) for i in range(1, 100)})
    stray = periods.iloc[:2].assign(client_id=["C999", None])
    _write(clients, tmp_path / "c.parquet")
    _write(pd.concat([periods, stray], ignore_index=True), tmp_path / "f.csv")
    r = _cli("batch", str(tmp_path / "c.parquet"), "--financials", str(tmp_path / "f.csv"), "-p",
             "loss-client-management", "--format", "json", "--rejects", str(tmp_path / "rejects.jsonl"),
             "--fail-on-rejects", "--no-audit")
    assert r.exit_code == 3
    accounting = json.loads(r.stdout)["accounting"]
    assert accounting == {"rows_read": len(SAMPLES), "decided": len(SAMPLES), "rejected": 0,
                          "financials": {"rows_read": len(periods) + 2, "joined": len(periods), "rejected": 2}}
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(x["table"], x["row"], x["client_id"], x["problems"][0]["message"]) for x in rejects] == [
        ("financials", len(periods) + 1, "C999", "client_id 'C999' is not in the client table"),
        ("financials", len(periods) + 2, None, "required field 'client_id' is missing")]
    assert "2 row(s) of" in r.stderr


@pytest.mark.parametrize("clients_fmt", [".csv", ".parquet"])
def test_periods_in_both_the_client_table_and_financials_are_refused(policy: Any, tmp_path: Path,
                                                                    clients_fmt: str) -> None:
    # The join would replace the row's own periods: a client decided on figures its row does not hold.
    clients, periods = _clients_and_periods()
    wide = pd.read_csv(PORTFOLIO_CSV, dtype=str, keep_default_na=False)
    fin_cols = [c for c in wide.columns if c.startswith("financials[")]
    both = _write(clients.assign(**{fin_cols[0]: ["1000"] + [None] * (len(clients) - 1)}),
                  tmp_path / f"c{clients_fmt}")
    fin = _write(periods, tmp_path / "f.csv")
    with pytest.raises(UsageError) as e:
        read_table(both, fin)
    [d] = e.value.diagnostics
    assert d.code == "periods-given-twice" and f"({fin_cols[0]}; 1 row(s))" in d.message
    r = _cli("batch", str(both), "--financials", str(fin), "-p", "loss-client-management", "--no-audit")
    assert r.exit_code == 2 and "periods-given-twice" in r.stderr
    # Columns without a value (an export template's) hold no period: the long table gives them.
    blank = _write(clients.assign(**{c: None for c in fin_cols[:3]}), tmp_path / f"blank{clients_fmt}")
    result = run_batch(policy, read_table(blank, fin))
    assert result.rejects == [] and result.decided == len(clients)


@pytest.mark.parametrize("pinned", [True, False])
def test_a_repeated_id_names_its_first_line_after_lines_that_are_not_records(tmp_path: Path, pinned: bool) -> None:
    """Lines that are not JSON objects are rows the frame lacks: the first copy was named by its frame row."""
    lines = PORTFOLIO_JSONL.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(["{bad json", "[1, 2]", lines[0], lines[1], lines[0]]) + "\n", encoding="utf-8")
    r = _cli("batch", str(path), "-p", "loss-client-management" + ("@1.1.0" if pinned else ""), "--no-audit",
             "--rejects", str(tmp_path / "r.jsonl"), "--format", "json")
    assert json.loads(r.stdout)["accounting"] == {"rows_read": 5, "decided": 2, "rejected": 3}, r.output
    rejects = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(x["row"], x["problems"][0]["code"]) for x in rejects] == [(1, "bad-json"), (2, "wrong-type"),
                                                                       (5, "duplicate-id")]
    cid = json.loads(lines[0])["client_id"]
    assert rejects[2]["problems"][0]["message"] == f"duplicate client_id '{cid}' (first at row 3)"


def test_a_period_line_that_is_not_json_is_a_reject_of_the_financials_table(policy: Any, tmp_path: Path) -> None:
    clients, periods = _clients_and_periods()
    path = _write(periods, tmp_path / "f.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "{not json")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    table = read_table(_write(clients, tmp_path / "c.parquet"), path)
    assert table.periods is not None
    assert (table.periods.rows_read, table.periods.joined) == (len(periods) + 1, len(periods))
    [reject] = table.periods.rejects
    assert reject["row"] == 4 and reject["table"] == "financials"


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".jsonl"])
def test_outputs_are_written_and_reruns_are_byte_identical(policy: Any, tmp_path: Path, suffix: str) -> None:
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    write_decisions(run_batch(policy, read_table(PORTFOLIO_CSV)).decisions, a)
    write_decisions(run_batch(policy, read_table(PORTFOLIO_CSV)).decisions, b)
    assert a.read_bytes() == b.read_bytes() and a.stat().st_size > 0
    if suffix == ".parquet":
        back = pd.read_parquet(a)
        assert back["grade"].tolist()[:2] == ["pass", "special_mention"]
        assert list(back["actions"][1]) == ["extend_term", "government_support", "reprice_down",
                                            "supply_chain_and_advisory", "review_monthly"]


def test_tables_written_together_are_the_tables_written_one_by_one(policy: Any, tmp_path: Path) -> None:
    frame = run_batch(policy, read_table(PORTFOLIO_CSV)).decisions
    alone, together = tmp_path / "alone", tmp_path / "together"
    alone.mkdir(), together.mkdir()
    for suffix in (".parquet", ".csv"):
        write_decisions(frame, alone / f"d{suffix}")
        write_decisions(frame.iloc[::2], alone / f"e{suffix}")
        write_tables([(frame, together / f"d{suffix}"), (frame.iloc[::2], together / f"e{suffix}")])
        for name in ("d", "e"):
            assert (together / f"{name}{suffix}").read_bytes() == (alone / f"{name}{suffix}").read_bytes()


def test_an_unknown_output_format_writes_no_table(policy: Any, tmp_path: Path) -> None:
    frame = run_batch(policy, read_table(PORTFOLIO_CSV)).decisions
    with pytest.raises(UsageError, match=r"cannot write '\.xlsx' files"):
        write_tables([(frame, tmp_path / "d.parquet"), (frame, tmp_path / "e.xlsx")])
    assert list(tmp_path.iterdir()) == []


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


def test_batch_cli_prints_the_accounting_and_writes_files(tmp_path: Path) -> None:
    r = _cli("batch", str(PORTFOLIO_CSV), "-p", "loss-client-management", "--out", str(tmp_path / "d.parquet"),
             "--rejects", str(tmp_path / "r.jsonl"), "--records", str(tmp_path / "rec.jsonl"), "--format", "json")
    assert r.exit_code == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["accounting"] == {"rows_read": 21, "decided": 21, "rejected": 0}
    assert s["by_grade"]["loss"]["count"] == 3
    assert len((tmp_path / "rec.jsonl").read_text().splitlines()) == 21
    assert (tmp_path / "r.jsonl").read_text() == ""


def test_batch_cli_exit_codes(tmp_path: Path) -> None:
    assert _cli("batch", str(tmp_path / "x.txt"), "-p", "loss-client-management").exit_code == 2
    assert _cli("batch", str(tmp_path / "missing.csv"), "-p", "loss-client-management").exit_code == 2
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(PORTFOLIO_CSV, dtype=str, keep_default_na=False)
    frame.loc[0, "industry"] = "mining"
    frame.to_csv(bad, index=False)
    r = _cli("batch", str(bad), "-p", "loss-client-management", "--format", "json")
    assert r.exit_code == 0 and "1 row(s) rejected" in r.stderr
    r = _cli("batch", str(bad), "-p", "loss-client-management", "--fail-on-rejects",
             "--rejects", str(tmp_path / "r.csv"))
    assert r.exit_code == 3
    assert "industry: unknown value 'mining'" in (tmp_path / "r.csv").read_text()


# ---- decide --stream -------------------------------------------------------------------------------

def _stream_cmd() -> list[str]:
    return [sys.executable, "cli.py", "--policies", str(POLICIES), "decide", "-p", "loss-client-management",
            "--stream"]


def test_stream_answers_every_line_and_survives_bad_ones() -> None:
    lines = [SAMPLES[0].read_text(encoding="utf-8").replace("\n", " "), "not json", "",
             json.dumps({"client_id": "Q", "as_of": "2025-06-30", "industry": "mining"}),  # a 1.x record
             SAMPLES[1].read_text(encoding="utf-8").replace("\n", "")]
    p = subprocess.run(_stream_cmd(), input="\n".join(lines) + "\n", capture_output=True, text=True, cwd=ROOT,
                       timeout=60, env={**os.environ})
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert len(out) == 5  # one answer per line, the empty one included: a co-process caller waits for it
    assert out[0]["client_id"] == "C001" and out[4]["client_id"] == "C002"
    assert out[1]["line"] == 2 and out[1]["error"]["exit_code"] == 3
    assert out[2]["line"] == 3 and out[2]["error"]["problems"][0]["message"] == "empty line"
    assert out[3]["line"] == 4 and {e["path"] for e in out[3]["error"]["problems"]} >= {"industry", "loan.balance"}


def test_stream_is_a_co_process_one_answer_per_question() -> None:
    with subprocess.Popen(_stream_cmd(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                          bufsize=1) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        for path in SAMPLES[:3]:
            proc.stdin.write(path.read_text(encoding="utf-8").replace("\n", " ") + "\n")
            proc.stdin.flush()
            answer = json.loads(proc.stdout.readline())  # must arrive before the next question
            assert answer["client_id"] == json.loads(path.read_text(encoding="utf-8"))["client_id"]
            proc.stdin.write("\n")  # a stray blank line is answered too, or the caller would wait forever
            proc.stdin.flush()
            assert json.loads(proc.stdout.readline())["error"]["problems"][0]["code"] == "bad-json"
        proc.stdin.close()
        assert proc.wait(timeout=30) == 0


def test_stream_compiles_each_version_once_however_many_as_of_days(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stream of real clients carries many as-of days; each used to load and compile the policy again.
    import datetime as dt

    from policy_engine.policy import registry

    loads: list[str] = []
    real = registry.load_policy
    monkeypatch.setattr(registry, "load_policy", lambda path, **kw: loads.append(str(path)) or real(path, **kw))
    client = json.loads(SAMPLES[1].read_text(encoding="utf-8"))
    days = [(dt.date(2024, 11, 1) + dt.timedelta(days=7 * i)).isoformat() for i in range(20)]  # across 2024/2025
    client["financials"] = client["financials"][:1]  # the 2024-09-30 statement: known on every day below
    lines = [json.dumps({**client, "client_id": f"C{i}", "as_of": day}) for i, day in enumerate(days)]
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "decide", "-p", "loss-client-management", "--stream",
                                  "--no-audit"], input="\n".join(lines) + "\n", catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    answers = [json.loads(x) for x in r.stdout.splitlines()]
    assert [a["policy"]["version"] for a in answers] == ["1.0.0" if d < "2025" else "1.1.0" for d in days]
    assert sorted(Path(f).name for f in loads) == ["policy-1.0.0.yaml", "policy-1.1.0.yaml"]


def test_chunked_threaded_runs_equal_a_single_chunk(policy: Any, decider: Decider, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from policy_engine.portfolio import batch as batch_module

    frame = pd.read_csv(PORTFOLIO_CSV, dtype=str, keep_default_na=False)
    frame = pd.concat([frame, frame.iloc[[3, 7]]], ignore_index=True)  # duplicates across chunk borders
    frame.loc[5, "industry"] = "mining"
    path = tmp_path / "p.csv"
    frame.to_csv(path, index=False)
    whole = run_batch(policy, read_table(path))
    monkeypatch.setattr(batch_module, "CHUNK_ROWS", 4)
    chunked = run_batch(policy, read_table(path), workers=2)
    pd.testing.assert_frame_equal(chunked.decisions, whole.decisions, check_categorical=False)
    assert chunked.rejects == whole.rejects
    assert [r["row"] for r in chunked.rejects] == [6, 22, 23]
    def stable(result: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k not in ("decision_id", "evaluated_at")}
                for r in iter_records(result, decider)]

    a, b = stable(whole), stable(chunked)
    assert a == b and len(a) == whole.decided


@pytest.mark.parametrize(("name", "content", "message"), [
    ("bad.xlsx", b"garbage", "cannot read the table"), ("bad.parquet", b"garbage", "cannot read the table"),
    ("bad.csv", b"\xff\xfe\x00bad", "UTF-16 text (byte-order mark ff fe)"),
    ("bad.csv", b"ab\xffcd\n", "cannot decode the file as utf-8 (byte 0xff)")])
def test_unreadable_tables_are_input_errors_not_crashes(tmp_path: Path, name: str, content: bytes,
                                                        message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    r = _cli("batch", str(path), "-p", "loss-client-management", "--no-audit")
    assert r.exit_code == 3 and message in r.stderr and "internal error" not in r.stderr


def test_a_gbk_csv_from_excel_is_read_with_its_encoding_and_named_without_it(tmp_path: Path) -> None:
    frame = pd.read_csv(PORTFOLIO_CSV, dtype=str, keep_default_na=False)
    frame.loc[0, "name"] = "华东精密机械有限公司"
    utf8, gbk = tmp_path / "utf8.csv", tmp_path / "gbk.csv"
    frame.to_csv(utf8, index=False, encoding="utf-8")
    frame.to_csv(gbk, index=False, encoding="gbk")
    r = _cli("batch", str(gbk), "-p", "loss-client-management", "--no-audit")
    assert r.exit_code == 3 and "cannot decode the file as utf-8" in r.stderr and "--encoding gb18030" in r.stderr
    assert "Traceback" not in r.stderr
    records = {}
    for path, extra in ((utf8, []), (gbk, ["--encoding", "gb18030"])):
        out = tmp_path / f"{path.stem}.records.jsonl"
        r = _cli("batch", str(path), "-p", "loss-client-management", "--no-audit", "--records", str(out), *extra)
        assert r.exit_code == 0, r.stderr
        records[path.stem] = [(d["client_id"], d["input_sha256"], d["classification"]["grade"])
                              for d in map(json.loads, out.read_text(encoding="utf-8").splitlines())]
    assert records["gbk"] == records["utf8"] and len(records["utf8"]) == len(frame)
    # The other way round: a UTF-8 file read as GB18030 would decode without an error, as mojibake (制造业 an
    # industry no policy knows): refused, named.
    r = _cli("batch", str(utf8), "-p", "loss-client-management", "--no-audit", "--encoding", "gb18030")
    assert r.exit_code == 3 and "the file is UTF-8, not gb18030" in r.stderr and "drop --encoding" in r.stderr
    r = _cli("batch", str(gbk), "-p", "loss-client-management", "--no-audit", "--encoding", "klingon")
    assert r.exit_code == 2 and "unknown encoding 'klingon'" in r.stderr


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
@pytest.mark.parametrize("source", ["portfolio.jsonl", "debtors"])
def test_a_json_lines_file_of_wide_text_is_refused_whole(tmp_path: Path, encoding: str, source: str) -> None:
    """PowerShell 5's '>' writes UTF-16: each line was rejected as 'not UTF-8', and the wide line ends made one
    record two rows (2 records read as 3 rows, 3 rejects)."""
    if source == "debtors":
        text = "".join(json.dumps(json.loads(p.read_text(encoding="utf-8"))) + "\n"
                       for p in sorted((REFERENCE / "samples" / "debtors").glob("*.json"))[:2])
    else:
        text = "".join((REFERENCE / "samples" / source).read_text(encoding="utf-8").splitlines(keepends=True)[:2])
    path = tmp_path / "wide.jsonl"
    path.write_bytes(text.encode(encoding))
    r = _cli("batch", str(path), "-p", "loss-client-management", "--no-audit", "--out", str(tmp_path / "d.jsonl"),
             "--format", "json")
    assert r.exit_code == 3, r.output
    [error] = json.loads(r.stderr)["errors"]
    name = "UTF-32" if "32" in encoding else "UTF-16"
    assert error["code"] == "unreadable" and error["message"].startswith(f"{name} text (")
    assert error["message"].endswith("; JSON Lines are UTF-8") and not (tmp_path / "d.jsonl").exists()


@pytest.mark.parametrize("policy_id", ["loss-client-management@1.1.0", "loss-client-management@2.1.0"])
def test_a_json_lines_output_of_no_row_is_empty_not_a_blank_line(tmp_path: Path, policy_id: str) -> None:
    """pandas wrote one line end for no row: a blank line, which a strict JSON Lines reader refuses."""
    path = tmp_path / "blank.jsonl"
    path.write_text("\n\n", encoding="utf-8")
    outs = ["--out", str(tmp_path / "d.jsonl")]
    if policy_id.endswith("2.1.0"):
        outs += ["--exposures-out", str(tmp_path / "e.jsonl")]
    r = _cli("batch", str(path), "-p", policy_id, "--no-audit", *outs, "--format", "json")
    assert r.exit_code == 0, r.output
    assert [p.read_bytes() for p in sorted(tmp_path.glob("[de].jsonl"))] == [b""] * (len(outs) // 2)


def test_unwritable_outputs_are_usage_errors(tmp_path: Path) -> None:
    r = _cli("batch", str(PORTFOLIO_CSV), "-p", "loss-client-management", "--no-audit",
             "--out", str(tmp_path / "no" / "such" / "dir" / "d.parquet"))
    assert r.exit_code == 2 and "no such folder" in r.stderr and "nothing was decided" in r.stderr
    r = _cli("generate", "--n", "3", "--out", str(tmp_path / "missing" / "x.csv"))
    assert r.exit_code == 2


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_empty_period_between_filled_ones_is_rejected_once_not_realigned(policy: Any, tmp_path: Path,
                                                                           suffix: str) -> None:
    # Shifting the later periods left would silently pair figures with the wrong quarters.
    frame = pd.read_csv(PORTFOLIO_CSV, dtype=str, keep_default_na=False)
    frame.loc[1, [c for c in frame.columns if c.startswith("financials[1].")]] = ""
    path = tmp_path / f"gap{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        typed = _typed_frame()
        typed.loc[1, [c for c in typed.columns if c.startswith("financials[1].")]] = None
        typed.to_parquet(path, index=False)
    result = run_batch(policy, read_table(path))
    assert result.decided == len(frame) - 1
    [reject] = result.rejects
    assert reject["row"] == 2 and reject["client_id"] == "C002"
    assert [(p["field"], p["message"]) for p in reject["problems"]] == [
        ("financials", "periods must be consecutive from index 0: financials[1] is empty but a later period is "
                       "filled")]


def test_empty_json_periods_are_read_as_decide_reads_them(policy: Any, decider: Decider, tmp_path: Path) -> None:
    # Trailing empty periods are absent, an empty one before a filled one is the same error, on both paths.
    from policy_engine.diagnostics import InputError

    trailing, gap, plain = (json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES[1:4])
    trailing["financials"] += [{}, {"revenue": None}]
    gap["financials"].insert(1, {})
    path = tmp_path / "periods.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in (trailing, gap, plain)), encoding="utf-8")
    result = run_batch(policy, read_table(path))
    with pytest.raises(InputError) as err:
        decider.decide(gap)
    [reject] = result.rejects
    assert reject["row"] == 2
    assert [(p["field"], p["message"]) for p in reject["problems"]] == [
        (d.path, d.message) for d in err.value.diagnostics]
    volatile = ("decision_id", "evaluated_at")
    assert [{k: v for k, v in r.items() if k not in volatile} for r in iter_records(result, decider)] == [
        {k: v for k, v in decider.decide(c).items() if k not in volatile} for c in (trailing, plain)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_periods_out_of_order_are_rejected_with_decide_s_message(policy: Any, decider: Decider, tmp_path: Path,
                                                                   suffix: str) -> None:
    # Newest first, the crisis trader's latest quarter would be read as its oldest: loss became substandard.
    from policy_engine.diagnostics import InputError

    plain, newest_first, twice = (json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES[1:4])
    newest_first["financials"].reverse()
    twice["financials"].insert(2, dict(twice["financials"][1]))
    clients = (plain, newest_first, twice)
    path = tmp_path / f"order{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps(c) + "\n" for c in clients), encoding="utf-8")
    else:
        frame = pd.DataFrame.from_records([flatten(c) for c in clients])
        frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path, index=False)
    result = run_batch(policy, read_table(path))
    assert result.decided == 1 and [r["row"] for r in result.rejects] == [2, 3]
    for reject, client in zip(result.rejects, clients[1:], strict=True):
        with pytest.raises(InputError) as err:
            decider.decide(client)
        assert [(p["field"], p["message"]) for p in reject["problems"]] == [
            (d.path, d.message) for d in err.value.diagnostics]
    assert result.rejects[0]["problems"][0]["field"] == "financials[1].period_end"
    assert "repeats financials[1].period_end" in result.rejects[1]["problems"][0]["message"]


def test_a_long_financials_table_is_sorted_by_period_end_but_a_quarter_given_twice_is_rejected(
        policy: Any, decider: Decider, tmp_path: Path) -> None:
    plain, twice = (json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES[1:3])
    periods = [{"client_id": c["client_id"], **q} for c in (plain, twice) for q in c["financials"]]
    periods.append({"client_id": twice["client_id"], **twice["financials"][0]})
    clients = pd.DataFrame.from_records([flatten({k: v for k, v in c.items() if k != "financials"})
                                         for c in (plain, twice)])
    clients.to_csv(tmp_path / "clients.csv", index=False)
    pd.DataFrame.from_records(periods[::-1]).to_csv(tmp_path / "fin.csv", index=False)  # newest first: sorted
    result = run_batch(policy, read_table(tmp_path / "clients.csv", tmp_path / "fin.csv"))
    [record] = list(iter_records(result, decider))
    assert record["input_sha256"] == decider.decide(plain)["input_sha256"]
    [reject] = result.rejects
    assert reject["client_id"] == twice["client_id"]
    assert [p["field"] for p in reject["problems"]] == ["financials[1].period_end"]
    assert "repeats financials[0].period_end" in reject["problems"][0]["message"]


def _survives_csv(v: Any) -> bool:
    """A value whose type a text cell still tells: no NaN (written empty), no text that reads as a number."""
    if isinstance(v, float):
        return not math.isnan(v)
    if isinstance(v, str):
        t = v.strip().lower()
        if t in ("", "true", "false"):
            return False
        try:
            float(t)
        except ValueError:
            return True
        return False
    return True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(mutated_clients(), min_size=25, max_size=25))
def test_batch_over_csv_decides_or_rejects_each_client_as_decide_does(
        policy: Any, decider: Decider, tmp_path: Path, clients: list[dict[str, Any]]) -> None:
    """CSV cells are text: numbers, booleans and dates are parsed back, and must give decide's answer."""
    from policy_engine.diagnostics import InputError

    rows, expected = [], {}
    for i, client in enumerate(clients):
        client["client_id"] = f"X{i}"
        flat = flatten(client)
        if not all(_survives_csv(v) for v in flat.values()):
            continue
        rows.append(flat)
        try:
            d = decider.decide(client)
            expected[client["client_id"]] = ("decided", d["classification"]["grade"], [w["id"] for w in d["warnings"]],
                                             [a["id"] for a in d["actions"]], d["input_sha256"])
        except InputError as e:
            expected[client["client_id"]] = ("rejected", sorted({str(x.path) for x in e.diagnostics}))
    columns = list(dict.fromkeys(k for r in rows for k in r))
    path = tmp_path / "clients.csv"
    with path.open("w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(columns)
        out.writerows([csv_cell(r.get(c)) for c in columns] for r in rows)
    result = run_batch(policy, read_table(path))
    got = {r["client_id"]: ("decided", r["classification"]["grade"], [w["id"] for w in r["warnings"]],
                            [a["id"] for a in r["actions"]], r["input_sha256"]) for r in iter_records(result, decider)}
    got.update({r["client_id"]: ("rejected", sorted({p["field"] for p in r["problems"]})) for r in result.rejects})
    assert got == expected


def test_prepared_series_are_column_major_with_and_without_rejected_rows(policy: Any, tmp_path: Path) -> None:
    """The vector evaluator reads one period at a time: each period must be one contiguous column."""
    from policy_engine.portfolio.frame import prepare

    frame = read_table(REFERENCE / "samples" / "portfolio.csv").frame
    salted = frame.copy()
    salted.loc[2, "industry"] = "no-such-industry"
    for df in (frame, salted):
        prepared = prepare(policy, df, text=True)
        series = [c for c in prepared.inputs.values() if c.present is not None]
        assert series and all(a.flags.f_contiguous for c in series for a in (c.data, c.valid, c.present))
    assert len(prepared.rejected) == 1


def test_segment_column_from_text_codes_equals_the_categorical_of_the_values(policy: Any, tmp_path: Path) -> None:
    from policy_engine.portfolio.batch import decisions_frame
    from policy_engine.portfolio.frame import prepare
    from policy_engine.portfolio.vector import evaluate_columns

    frame = _typed_frame()
    frame.loc[3, "industry"] = "mining"  # rejected: the codes must still line up with the kept rows
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    typed = read_table(tmp_path / "p.parquet").frame
    prep = prepare(policy, typed, text=False)
    assert prep.inputs["industry"].codes is not None and len(prep.rejected) == 1
    res = evaluate_columns(policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)
    got = decisions_frame(policy, prep, res, prep.rows)["segment"]
    expected = pd.Categorical(prep.segments, categories=list(policy.segments))
    assert got.dtype == expected.dtype and list(got.astype(object)) == list(pd.Series(expected).astype(object))


# ---- batch over JSON Lines and decide, client by client: one reading, one decision -------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(mutated_clients(), min_size=25, max_size=25))
def test_batch_over_json_lines_decides_or_rejects_each_client_as_decide_does(
        policy: Any, decider: Decider, tmp_path: Path, clients: list[dict[str, Any]]) -> None:
    """Each line the same decision as `decide` (input hash included), or refused at the same fields.

    Batch reads a JSON Lines file into columns (a number column with a gap holds floats, a period
    may be missing); decide reads each record as it is. 40 x 25 = 1,000 generated clients a run.
    """
    from policy_engine.diagnostics import InputError

    expected, lines = {}, []
    for i, client in enumerate(clients):
        client["client_id"] = f"X{i}"
        try:
            line = json.dumps(client, allow_nan=False)
        except ValueError:  # NaN or an infinity: no JSON line can carry it
            continue
        lines.append(line + "\n")
        try:
            d = decider.decide(json.loads(line))
            expected[client["client_id"]] = ("decided", d["classification"]["grade"], [w["id"] for w in d["warnings"]],
                                             [a["id"] for a in d["actions"]], d["input_sha256"])
        except InputError as e:
            expected[client["client_id"]] = ("rejected", sorted({str(x.path) for x in e.diagnostics}))
    path = tmp_path / "clients.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    result = run_batch(policy, read_table(path))
    got = {r["client_id"]: ("decided", r["classification"]["grade"], [w["id"] for w in r["warnings"]],
                            [a["id"] for a in r["actions"]], r["input_sha256"]) for r in iter_records(result, decider)}
    got.update({r["client_id"]: ("rejected", sorted({p["field"] for p in r["problems"]})) for r in result.rejects})
    assert got == expected


def test_a_parquet_nan_stored_as_a_value_is_refused_while_a_null_is_no_value(policy: Any, tmp_path: Path) -> None:
    """A client table in Parquet: a NaN stored as a value (as Spark writes it) rejects its row, as 'NaN' in CSV
    does; a null in the same optional column is no value, as an empty CSV cell is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame = _typed_frame()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    values = table.column("loan.collateral_value").to_pylist()
    values[2], values[5] = float("nan"), None
    column = pa.array(values, type=pa.float64(), from_pandas=False)
    path = tmp_path / "nan.parquet"
    pq.write_table(table.set_column(table.schema.get_field_index("loan.collateral_value"), "loan.collateral_value",
                                    column), path)
    result = run_batch(policy, read_table(path))
    assert [(r["row"], [p["field"] for p in r["problems"]]) for r in result.rejects] == [(3, ["loan.collateral_value"])]
    assert result.rejects[0]["problems"][0]["message"] == "NaN is not a finite number (a missing value is a null)"
    assert result.decided == len(SAMPLES) - 1 and frame["client_id"][5] in result.decisions["client_id"].tolist()


@pytest.mark.parametrize(("options", "code"), [
    (["--out", "{input}"], "output-is-input"),  # the portfolio replaced by its decisions
    (["--out", "{tmp}/d.csv", "--rejects", "{tmp}/d.csv"], "output-twice"),
    (["--out", "{tmp}/no/such/d.csv"], "file-missing"),
])
def test_outputs_are_checked_before_anything_is_decided_or_recorded(tmp_path: Path, options: list[str],
                                                                    code: str) -> None:
    """A missing output folder failed the run after every decision was recorded; an output naming the input
    replaced it without a word."""
    source = tmp_path / "p.csv"
    source.write_bytes(PORTFOLIO_CSV.read_bytes())
    db = tmp_path / "a.db"
    args = [o.format(input=source, tmp=tmp_path) for o in options]
    r = _cli("--audit-db", str(db), "batch", str(source), "-p", "loss-client-management@1.1.0", *args)
    assert r.exit_code == 2 and code in r.stderr, r.stderr
    assert source.read_bytes() == PORTFOLIO_CSV.read_bytes() and not db.exists()


def test_a_named_pipe_as_an_output_is_refused_not_replaced_by_a_file(tmp_path: Path) -> None:
    """An output is written beside its path and renamed over it: a FIFO given as --out was replaced by a regular
    file (its reader waited for ever), and as root a device node (/dev/full) was (found by a hostile review)."""
    import os
    import stat

    source = tmp_path / "p.csv"
    source.write_bytes(PORTFOLIO_CSV.read_bytes())
    db = tmp_path / "a.db"
    pipe = tmp_path / "out.jsonl"
    os.mkfifo(pipe)
    r = _cli("--audit-db", str(db), "batch", str(source), "-p", "loss-client-management@1.1.0", "--out", str(pipe))
    assert r.exit_code == 2 and "output-not-a-file" in r.stderr and "named pipe" in r.stderr, r.stderr
    assert stat.S_ISFIFO(pipe.stat().st_mode) and not db.exists()
    assert _cli("--audit-db", str(db), "decide", "-p", "loss-client-management", "-c", str(SAMPLES[0])).exit_code == 0
    r = _cli("--audit-db", str(db), "audit", "export", "--out", str(pipe))
    assert r.exit_code == 2 and "output-not-a-file" in r.stderr, r.stderr
    assert stat.S_ISFIFO(pipe.stat().st_mode)


@pytest.mark.parametrize("command", [
    ["batch", "{fifo}", "-p", "loss-client-management@2.0.0", "--out", "{out}"],
    ["batch", "{fifo}", "-p", "loss-client-management", "--as-of", "2026-09-30", "--out", "{out}"],
    ["simulate", "loss-client-management@2.0.0", "--portfolio", "{fifo}", "--scenario",
     "scenarios/debtor-collateral-crash.yaml"],
    ["convert", "{fifo}", "--to", "2.0"],
])
def test_a_named_pipe_as_the_input_is_refused_not_waited_on(tmp_path: Path, command: list[str]) -> None:
    """A run reads its input's size and lines before its records: a FIFO (or `<(cat ...)`) gave its bytes to the first
    read and the second waited for ever, and convert called it 'no such file' (found by a hostile review)."""
    import os

    fifo, out = tmp_path / "debtors.jsonl", tmp_path / "out.jsonl"
    os.mkfifo(fifo)
    args = [a.format(fifo=fifo, out=out) for a in command]
    r = subprocess.run([sys.executable, "-m", "policy_engine", "--policies", str(POLICIES), "--no-audit", *args],
                       capture_output=True, text=True, cwd=ROOT, check=False, timeout=60)
    assert r.returncode == 2 and "input-not-a-file" in r.stderr and "named pipe" in r.stderr, r.stderr
    assert not out.exists()


def test_dev_stdout_as_an_output_beside_a_piped_report_is_refused(tmp_path: Path) -> None:
    """/dev/stdout resolves to /proc/N/fd/pipe:[...], which does not exist as a path, so the check passed and the
    HTML page came first in the JSON report's stream (found by a CI review)."""
    db = tmp_path / "a.db"
    r = subprocess.run([sys.executable, "-m", "policy_engine", "--policies", str(POLICIES), "--audit-db", str(db),
                        "impact", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--portfolio",
                        str(PORTFOLIO_CSV), "--format", "json", "--html", "/dev/stdout"],
                       capture_output=True, text=True, cwd=ROOT, check=False)
    assert r.returncode == 2 and r.stdout == "", r.stdout[:200]
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "output-not-a-file" and "named pipe" in error["message"]


def test_impact_and_simulate_check_their_outputs_too(tmp_path: Path) -> None:
    source = tmp_path / "p.csv"
    source.write_bytes(PORTFOLIO_CSV.read_bytes())
    for args in (["impact", "loss-client-management@1.0.0", "loss-client-management@1.1.0"],
                 ["simulate", "loss-client-management@1.1.0", "--scenario",
                  str(POLICIES.parent / "scenarios" / "collateral-crash.yaml")]):
        r = _cli("--no-audit", *args, "--portfolio", str(source), "--rejects", str(source))
        assert r.exit_code == 2 and "output-is-input" in r.stderr, r.stderr
        assert source.read_bytes() == PORTFOLIO_CSV.read_bytes()


def test_the_python_api_checks_the_outputs_as_the_command_does(tmp_path: Path) -> None:
    import policy_engine as pe
    from policy_engine.diagnostics import UsageError

    source = tmp_path / "p.csv"
    source.write_bytes(PORTFOLIO_CSV.read_bytes())
    with pytest.raises(UsageError) as e:
        pe.run_batch("loss-client-management", source, version="1.1.0", registry=str(POLICIES), out=source,
                     audit_db=False)
    assert [d.code for d in e.value.diagnostics] == ["output-is-input"]
    assert source.read_bytes() == PORTFOLIO_CSV.read_bytes()


def test_a_batch_under_a_version_not_in_force_warns_with_decides_code(tmp_path: Path) -> None:
    """decide warns not-in-force; batch said version-not-in-force for the same thing. One concept, one code."""
    r = _cli("--no-audit", "batch", str(PORTFOLIO_JSONL), "-p", "loss-client-management@1.0.0",
             "--out", str(tmp_path / "d.jsonl"), "--format", "json")
    assert r.exit_code == 0, r.output
    (warning,) = json.loads(r.stderr)["warnings"]
    assert warning["code"] == "not-in-force" and "as pinned, not in force on their day" in warning["message"]


def test_json_lines_out_write_every_figure_as_parquet_holds_it(tmp_path: Path) -> None:
    """``--out x.jsonl`` wrote floats rounded to 15 decimals by pandas (0.844099441686053 for 0.8440994416860529,
    and noise digits after large ones), so a figure read back from the file was not the one decided; each row
    now reads back as the Parquet row does, value for value, nulls as nulls."""
    common = ["--policies", str(POLICIES), "batch", str(PORTFOLIO_CSV), "-p", "loss-client-management@1.1.0",
              "--no-audit", "--format", "json"]
    for suffix in ("jsonl", "parquet"):
        result = CliRunner().invoke(main, [*common, "--out", str(tmp_path / f"d.{suffix}")], catch_exceptions=False)
        assert result.exit_code == 0, result.output
    lines = (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()
    table = pd.read_parquet(tmp_path / "d.parquet")
    assert len(lines) == len(table) > 0
    for line, (_, row) in zip(lines, table.iterrows(), strict=True):
        written = json.loads(line)
        assert list(written) == list(table.columns)
        for column, value in written.items():
            held = row[column]
            if isinstance(value, float):
                assert value == held, column  # exactly: the shortest text that reads back the same float
            elif value is None:
                assert held is None or pd.isna(held), column
    assert any(isinstance(v, float) and len(repr(v)) > 17 for line in lines for v in json.loads(line).values())
