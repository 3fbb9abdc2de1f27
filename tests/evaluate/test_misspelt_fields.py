"""A field read under another spelling is named with the spelling meant (tests/data/misspelt_fields.yaml)."""

from __future__ import annotations

import csv
import json
import re
from typing import Any

import pytest
import yaml

from policy_engine.decide.inputs import misspelt_fields, record_fields
from policy_engine.policy.registry import load_policy

from ..conftest import DATA, REFERENCE

CASES = yaml.safe_load((DATA / "misspelt_fields.yaml").read_text(encoding="utf-8"))
with (REFERENCE / "samples" / "portfolio.csv").open(encoding="utf-8") as f:
    HEADER = next(csv.reader(f))
POLICY_2 = load_policy(REFERENCE / "policy-2.0.0.yaml")


def _columns(case: dict[str, Any]) -> list[str]:
    columns = [case.get("replace", {}).get(c, c) for c in HEADER]
    if "replace_period" in case:
        old, new = (f"financials[{case['replace_period'][k]}]." for k in ("from", "to"))
        columns = [new + c[len(old):] if c.startswith(old) else c for c in columns]
    if "replace_container" in case:
        old, new = (case["replace_container"][k] + "." for k in ("from", "to"))
        columns = [new + c[len(old):] if c.startswith(old) else c for c in columns]
    return columns + case.get("add", [])


@pytest.mark.parametrize("case", CASES["clients"], ids=[c["name"] for c in CASES["clients"]])
def test_a_client_column_written_another_way(policy: Any, case: dict[str, Any]) -> None:
    assert misspelt_fields(policy, _columns(case)) == [tuple(pair) for pair in case["expect"]]


def _parent(record: Any, dotted: str) -> tuple[Any, str]:
    """The object holding the last key of ``dotted`` (``exposures[0].accounting``), and that key."""
    *steps, last = re.findall(r"[^.\[\]]+|\[\d+\]", dotted)
    for step in steps:
        record = record[int(step[1:-1])] if step.startswith("[") else record[step]
    return record, last


def _debtor(case: dict[str, Any]) -> dict[str, Any]:
    record = json.loads((REFERENCE / "samples" / "debtors" / f"{case['sample']}.json").read_text(encoding="utf-8"))
    for path, new in case.get("rename", {}).items():
        holder, key = _parent(record, path)
        holder[new] = holder.pop(key)
    if "move" in case:
        holder, key = _parent(record, case["move"]["from"])
        value = holder.pop(key)
        target, new = _parent(record, case["move"]["to"])
        target[new] = value
    if "as_list" in case:
        holder, key = _parent(record, case["as_list"])
        holder[key] = [holder[key]]
    for path, value in case.get("set", {}).items():
        holder, key = _parent(record, path)
        holder[key] = value
    record.update(case.get("add", {}))
    return record


@pytest.mark.parametrize("case", CASES["debtors"], ids=[c["name"] for c in CASES["debtors"]])
def test_a_debtor_field_or_list_written_another_way(case: dict[str, Any]) -> None:
    found = misspelt_fields(POLICY_2, record_fields(_debtor(case)))
    assert found == [tuple(pair) for pair in case["expect"]]


def test_the_check_is_remembered_by_the_exact_shape_and_gives_a_fresh_list_each_time() -> None:
    """The check costs a dozen decisions and a stream's records mostly share a shape: it is remembered by the exact
    set of paths given. The same shape gives the same answer, another shape its own; a caller editing the list it
    got changes nothing remembered."""
    record = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text("utf-8"))
    record["exposures"][0]["Balance"] = record["exposures"][0].pop("balance")
    first = misspelt_fields(POLICY_2, record_fields(record))
    assert first == [("exposures[0].Balance", "exposures[0].balance")]
    first.clear()
    assert misspelt_fields(POLICY_2, list(record_fields(record))) == [("exposures[0].Balance", "exposures[0].balance")]
    record["exposures"][0]["balance"] = record["exposures"][0].pop("Balance")
    assert misspelt_fields(POLICY_2, record_fields(record)) == []


def test_the_check_reads_a_bounded_number_of_paths_of_a_record_of_mostly_unread_fields() -> None:
    """A 5 MB record of a million fields no policy reads took 7 s and 400 MB to warn of nothing (each unread path is
    fuzzy-matched): the check reads its first MISSPELT_PATHS paths, which name a misspelling made in every element."""
    from policy_engine.decide.inputs import MISSPELT_PATHS

    record = json.loads((REFERENCE / "samples" / "debtors" / "02-pass-three-facilities.json").read_text("utf-8"))
    record["exposures"][0]["days_pastdue"] = record["exposures"][0].pop("days_past_due")
    record["notes"] = [{"n": i} for i in range(5 * MISSPELT_PATHS)]  # unread, after the exposures
    read = 0

    def counted() -> Any:
        nonlocal read
        for path in record_fields(record):
            read += 1
            yield path

    POLICY_2.runtime.pop("misspelt", None)
    assert ("exposures[0].days_pastdue", "exposures[0].days_past_due") in misspelt_fields(POLICY_2, counted())
    assert read == MISSPELT_PATHS
