"""Replay of a decision whose reasons for missing data an earlier engine worded otherwise.

Engines name the facts a decision lacked ever more precisely (the field's place, the element, the chain of
metrics). Which metrics have no value and which rules are undetermined are what was decided: a change there is a
difference. Why (the value of ``undefined_metrics.<name>``, an undetermined rule's ``reasons`` and ``missing``) is
wording: the record replays identical, the rewording listed apart (``reworded``). A decision recorded by the engine
of 2026-12-06 (session 41) replayed 'different', exit 6, for "no value for exposure E1: impaired_by_accounting"
now worded with the fields to fill in.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ..conftest import REFERENCE
from .test_audit import _raw, cli

# Sample debtor 09 with E1's impairment unknown (no flag, no stage): metrics without a value, rules undetermined.
DEBTOR = json.loads((REFERENCE / "samples" / "debtors" / "09-credit-impaired-ecl-60pct.json").read_text(
    encoding="utf-8"))
del DEBTOR["exposures"][0]["accounting"]["credit_impaired"], DEBTOR["exposures"][0]["accounting"]["stage"]


def _first_reason(record: dict[str, Any], text: str) -> None:
    name = next(iter(record["undefined_metrics"]))
    record["undefined_metrics"][name] = text


def _undetermined(record: dict[str, Any], field: str, value: Any) -> None:
    record["undetermined"][0][field] = value


CASES: list[tuple[str, Callable[[dict[str, Any]], None], str, bool]] = [
    ("a metric's reason worded otherwise", lambda r: _first_reason(r, "no value for exposure E1: x"),
     "identical", True),
    ("an undetermined rule's reasons worded otherwise", lambda r: _undetermined(r, "reasons", {"when": "missing"}),
     "identical", True),
    ("an undetermined rule's missing facts named otherwise", lambda r: _undetermined(r, "missing", ["x"]),
     "identical", True),
    ("a metric that had a value then", lambda r: r["undefined_metrics"].pop(next(iter(r["undefined_metrics"]))),
     "different", False),
    ("another rule undetermined then", lambda r: _undetermined(r, "rule", "funds_misused"), "different", False),
    ("a reason that was no text", lambda r: _first_reason(r, None), "different", False),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("edit", "status", "worded"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_what_explains_missing_data_is_wording_what_was_decided_is_compared(
        tmp_path: Path, edit: Callable[[dict[str, Any]], None], status: str, worded: bool) -> None:
    client, db = tmp_path / "d.json", tmp_path / "a.db"
    client.write_text(json.dumps(DEBTOR), encoding="utf-8")
    assert cli(db, "decide", "-p", "loss-client-management@2.1.0", "-c", str(client)).exit_code == 0
    with _raw(db) as raw:
        record = json.loads(raw.execute("SELECT decision_json FROM decision WHERE seq = 1").fetchone()[0])
        assert record["undefined_metrics"] and record["undetermined"]
        edit(record)
        raw.execute("UPDATE decision SET decision_json = ? WHERE seq = 1", (json.dumps(record),))
    r = cli(db, "audit", "replay", "1", "--format", "json")
    line = json.loads(r.stdout.splitlines()[0])
    assert (line["status"], r.exit_code) == (status, 0 if status == "identical" else 6)
    assert bool(line.get("reworded")) is worded and bool(line["differences"]) is not worded
    said = cli(db, "audit", "replay", "--all", "--format", "text")
    assert ("1 identical (1 with their reasons for missing data worded anew)" in said.stdout + said.stderr) is worded
