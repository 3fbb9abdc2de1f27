"""Hostile batch files (issue 14, class 10): refused or rejected by name and place, never exit 5.

Table-driven from ``tests/data/hostile_batch_files.yaml``: each case asserts the exit code, the
diagnostic code and the location (the line as a text editor numbers it, beside the record number).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.portfolio.batch import flatten

from ..conftest import CURRENT, DATA, sample

CASES = yaml.safe_load((DATA / "hostile_batch_files.yaml").read_text(encoding="utf-8"))["cases"]


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _placeholders() -> dict[str, str]:
    base = sample("02")
    rows = {}
    for cid in ("C1", "C2"):
        rows[cid] = {**base, "client_id": cid}
    bad = json.loads(json.dumps(rows["C2"]))
    bad["loan"]["balance"] = "abc"
    flat = {k: flatten(v) for k, v in (("C1", rows["C1"]), ("C2", rows["C2"]), ("C2-bad-balance", bad))}
    header = list(flat["C1"])
    out = {"{HEADER}": ",".join(header), "{J1}": json.dumps(rows["C1"]), "{J2-bad-balance}": json.dumps(bad)}
    for name, row in flat.items():
        out[f"{{{name}}}"] = ",".join(_cell(row.get(c)) for c in header)
    n = len(header)
    out.update({"{N}": str(n), "{N+1}": str(n + 1), "{N+2}": str(n + 2)})
    return out


def _fill(text: str, subs: dict[str, str]) -> str:
    for k in sorted(subs, key=len, reverse=True):
        text = text.replace(k, subs[k])
    return text


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_batch_file(case: dict[str, Any], tmp_path: Path) -> None:
    assert case["exit"] != 5 and ("error" in case) != ("rejects" in case), "a case expects an error or rejects"
    subs = _placeholders()
    path = tmp_path / case["file"]
    if "text" in case:
        path.write_text(_fill(case["text"], subs), encoding=case.get("encoding", "utf-8"))
    else:
        pd.DataFrame(case["rows"], columns=case["header"]).to_excel(path, index=False)
    rejects = tmp_path / "rejects.jsonl"
    r = CliRunner().invoke(main, ["batch", str(path), "-p", str(CURRENT), "--no-audit",
                                  "--format", "json", "--rejects", str(rejects)])
    assert r.exit_code == case["exit"], r.output
    if "error" in case:
        errors = json.loads(r.stderr)["errors"]
        want = case["error"]
        assert {e["code"] for e in errors} == {want["code"]}
        assert errors[0].get("line") == want.get("line") and errors[0]["file"] == str(path)
        if "message" in want:
            assert errors[0]["message"] == want["message"]
        return
    summary = json.loads(r.stdout)["accounting"]
    assert summary["decided"] == case["decided"]
    assert summary["rows_read"] == summary["decided"] + summary["rejected"] == case["decided"] + len(case["rejects"])
    got = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert len(got) == len(case["rejects"])
    for have, want in zip(got, case["rejects"], strict=True):
        assert (have["row"], have["line"]) == (want["row"], want["line"])
        problem = next(p for p in have["problems"] if p["field"] == want["field"])
        assert problem["code"] == want["code"]
        if "message" in want:
            assert problem["message"] == _fill(want["message"], subs)


def test_a_csv_rejects_file_has_the_line_beside_the_row(tmp_path: Path) -> None:
    subs = _placeholders()
    path = tmp_path / "p.csv"
    path.write_text(_fill("{HEADER}\n\n{C1}\n{C2-bad-balance}\n", subs), encoding="utf-8")
    r = CliRunner().invoke(main, ["batch", str(path), "-p", str(CURRENT), "--no-audit", "--format", "json",
                                  "--rejects", str(tmp_path / "rejects.csv")])
    assert r.exit_code == 0, r.output
    rejects = pd.read_csv(tmp_path / "rejects.csv")
    assert list(rejects.columns[:6]) == ["row", "line", "client_id", "codes", "problems", "problems_json"]
    assert rejects[["row", "line", "client_id"]].values.tolist() == [[2, 4, "C2"]]
    # the codes and each problem whole, for a program ("; " joins the words, and may stand inside a message)
    [problem] = json.loads(rejects.loc[0, "problems_json"])
    assert rejects.loc[0, "codes"] == problem["code"] == "bad-field" and problem["field"] == "loan.balance"
    assert rejects.loc[0, "problems"] == f"loan.balance: {problem['message']}"
