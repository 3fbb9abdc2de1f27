"""--csv-for-excel: a caller's text that a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.portfolio.spreadsheet import formula_cell

from ..conftest import POLICIES, REFERENCE

CLIENT = REFERENCE / "samples" / "clients" / "13-restructured-in-observation.json"
DEBTOR = REFERENCE / "samples" / "debtors" / "13-observation-restarted.json"


@pytest.mark.parametrize(("cell", "formula"), [
    ("=HYPERLINK(\"http://x\")", True), ("+1+2", True), ("-2+3", True), ("@SUM(A1)", True), ("\t=1", True),
    ("\r=1", True), ("-0.5", False), ("+3", False), ("-1e5", False), ("C001", False), ("", False),
    ("a=b", False), ("-", True),
])
def test_a_formula_cell_is_one_a_spreadsheet_would_run(cell: str, formula: bool) -> None:
    assert formula_cell(cell) is formula


def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize(("policy", "sample", "exposures"), [("loss-client-management@1.1.0", CLIENT, False),
                                                             ("loss-client-management@2.1.0", DEBTOR, True)])
def test_batch_quotes_formula_cells_of_every_csv_output_when_asked(tmp_path: Path, policy: str, sample: Path,
                                                                   exposures: bool) -> None:
    record = json.loads(sample.read_text(encoding="utf-8"))
    hostile = {**record, "client_id": '=HYPERLINK("http://evil","open")'}
    rejected = {**record, "client_id": "@SUM(1)", "as_of": "not a date"}
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in (record, hostile, rejected)) + "\n", encoding="utf-8")
    outs = {"--out": tmp_path / "d.csv", "--rejects": tmp_path / "r.csv"}
    if exposures:
        outs["--exposures-out"] = tmp_path / "e.csv"
    args = ["--policies", str(POLICIES), "batch", str(src), "-p", policy, "--no-audit", "--format", "json"]
    args += [x for k, v in outs.items() for x in (k, str(v))]
    plain = CliRunner().invoke(main, args)
    assert plain.exit_code == 0, plain.output
    as_decided = {k: _rows(v) for k, v in outs.items()}
    assert any(cell.startswith("=HYPERLINK") for row in as_decided["--out"] for cell in row)  # the default: as is

    r = CliRunner().invoke(main, [*args, "--csv-for-excel"])
    assert r.exit_code == 0, r.output
    said = json.loads(r.stderr)
    [note] = [w for w in said["warnings"] if w["code"] == "formulas-quoted"]
    quoted = 0
    for option, path in outs.items():
        guarded = _rows(path)
        assert len(guarded) == len(as_decided[option])
        for before, after in zip(as_decided[option], guarded, strict=True):
            for a, b in zip(before, after, strict=True):  # only formula cells changed, by one apostrophe
                assert b == ("'" + a if formula_cell(a) else a)
                quoted += b != a
            assert not any(formula_cell(cell) for cell in after)
    assert quoted >= 2 + exposures and note["message"].startswith(f"{quoted} cell(s)")
    assert [row[0] for row in _rows(outs["--rejects"])][1:] == ["3"]
    assert "'@SUM(1)" in _rows(outs["--rejects"])[1]


def test_nothing_to_quote_says_nothing(tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps(json.loads(CLIENT.read_text(encoding="utf-8"))) + "\n", encoding="utf-8")
    out = tmp_path / "d.csv"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "batch", str(src), "-p", "loss-client-management@1.1.0",
                                  "--no-audit", "--format", "json", "--out", str(out), "--csv-for-excel"])
    assert r.exit_code == 0 and r.stderr == "", r.output
    assert not list(tmp_path.glob(".d.csv.*"))  # the file beside it replaced the output, none left


@pytest.mark.parametrize("command", ["impact", "convert"])
def test_the_rejects_of_impact_and_convert_are_quoted_too(tmp_path: Path, command: str) -> None:
    record = json.loads(CLIENT.read_text(encoding="utf-8"))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in (record, {**record, "client_id": "=1+1", "as_of": "never"}))
                   + "\n", encoding="utf-8")
    rejects = tmp_path / "r.csv"
    args = {"impact": ["impact", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--portfolio"],
            "convert": ["convert", "--to", "2.0", "--out", str(tmp_path / "c.jsonl")]}[command]
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), *args, str(src), "--rejects", str(rejects),
                                  "--format", "json", "--csv-for-excel"])
    assert r.exit_code == 0, r.output
    [row] = [row for row in _rows(rejects)[1:]]
    assert "'=1+1" in row and not any(formula_cell(cell) for cell in row)
    assert [w["code"] for w in json.loads(r.stderr)["warnings"]].count("formulas-quoted") == 1
