"""The text summary's accounting line says what it counts: debtors for a folder of long tables (each
table's rows are on the `tables` lines), rows for a client table and for JSON Lines of debtors (a line
is one record); the JSON summary keeps its keys whatever the input."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner, Result

from policy_engine.cli import main

from ..conftest import ROOT

REFERENCE = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
CLIENTS = ROOT / "policies" / "loss-client-management" / "samples" / "portfolio.csv"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["--no-audit", *args], catch_exceptions=False)


def _accounting_line(text: str) -> str:
    (line,) = [x for x in text.splitlines() if re.match(r"^\w+ read [\d,]+ = decided ", x)]
    return line


def test_long_tables_count_debtors_in_text_and_keep_the_json_keys(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    assert run("generate", "-p", str(REFERENCE), "--n", "12", "--seed", "3", "--as-of", "2026-09-30",
               "--out", str(folder), "--tables", "csv").exit_code == 0
    text = run("batch", str(folder), "-p", str(REFERENCE), "--format", "text")
    assert text.exit_code == 0, text.output
    assert _accounting_line(text.stdout) == "debtors read 12 = decided 12 + rejected 0"
    assert "tables (rows read = decided + rejected + orphaned):" in text.stdout
    s = json.loads(run("batch", str(folder), "-p", str(REFERENCE), "--format", "json").stdout)
    assert s["accounting"] == {"rows_read": 12, "decided": 12, "rejected": 0, "orphaned": 0}


def test_json_lines_of_debtors_and_client_tables_count_rows(tmp_path: Path) -> None:
    debtors = tmp_path / "debtors.jsonl"
    assert run("generate", "-p", str(REFERENCE), "--n", "4", "--seed", "3", "--out", str(debtors)).exit_code == 0
    scoped = run("batch", str(debtors), "-p", str(REFERENCE), "--format", "text")
    assert scoped.exit_code == 0, scoped.output
    assert _accounting_line(scoped.stdout) == "rows read 4 = decided 4 + rejected 0"
    flat = run("batch", str(CLIENTS), "-p", "loss-client-management", "--policy-version", "1.1.0", "--format", "text")
    assert flat.exit_code == 0, flat.output
    assert _accounting_line(flat.stdout).startswith("rows read ")


def test_the_summary_counts_the_rules_a_missing_fact_left_undetermined(tmp_path: Path) -> None:
    """'44% stage 1' read clean while every debtor had a floor undetermined (an IFRS 9 author's review): the summary
    counts, per rule, the decisions it was undetermined for, as the decisions list them, in JSON and in text."""
    out = tmp_path / "decisions.jsonl"
    s = json.loads(run("--policies", str(ROOT / "policies"), "batch", str(CLIENTS), "-p",
                       "loss-client-management@1.1.0", "--out", str(out), "--format", "json").stdout)
    counted: dict[str, int] = {}
    for line in out.read_text(encoding="utf-8").splitlines():
        for rule in json.loads(line)["undetermined"]:
            counted[rule] = counted.get(rule, 0) + 1
    assert counted and {k: v["count"] for k, v in s["by_undetermined"].items()} == counted
    text = run("--policies", str(ROOT / "policies"), "batch", str(CLIENTS), "-p", "loss-client-management@1.1.0",
               "--format", "text").stdout
    assert "undetermined (a fact was missing: not fired, though with it they might have):" in text
