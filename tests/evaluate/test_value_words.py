"""A record that sends a value's words (制造业, 'Substandard') where the value belongs is refused with
a hint naming the value: the segment's value_labels and the grade scale say which. A single decision,
a portfolio table and long tables give the same message."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic
from policy_engine.portfolio.batch import read_table, run_batch
from policy_engine.portfolio.long_tables import run_long_batch

from ..conftest import REFERENCE

V11 = load_policy(REFERENCE / "policy-1.1.0.yaml")
V21 = load_policy(REFERENCE / "policy-2.1.0.yaml")
DEBTOR = json.loads((REFERENCE / "samples" / "debtors" / "02-pass-three-facilities.json").read_text("utf-8"))
CLIENT = json.loads((REFERENCE / "samples" / "clients" / "06-overdue-30-days.json").read_text("utf-8"))

CASES = [
    # (policy, record, path to set, value sent, hint expected or None)
    (V21, DEBTOR, ("industry",), "制造业",
     "'制造业' is how 'manufacturing' reads to people; the record carries the value 'manufacturing'"),
    (V21, DEBTOR, ("industry",), " Energy ",
     "' Energy ' is how 'energy' reads to people; the record carries the value 'energy'"),
    (V11, CLIENT, ("history", "previous_grade"), "次级",
     "'次级' is how 'substandard' reads to people; the record carries the value 'substandard'"),
    (V11, CLIENT, ("history", "previous_grade"), "Special mention",
     "'Special mention' is how 'special_mention' reads to people; the record carries the value 'special_mention'"),
    (V21, DEBTOR, ("industry",), "manufactoring", "did you mean 'manufacturing'?"),  # a misspelling stays one
    (V21, DEBTOR, ("industry",), "采矿业", None),  # no label names it: no guess
]


def _with(record: dict, path: tuple[str, ...], value: str) -> dict:
    out = json.loads(json.dumps(record))
    cur = out
    for part in path[:-1]:
        cur = cur.setdefault(part, {})
    cur[path[-1]] = value
    return out


@pytest.mark.parametrize(("policy", "record", "path", "value", "hint"), CASES)
def test_a_decision_names_the_value_the_words_stand_for(policy, record, path, value, hint) -> None:
    with pytest.raises(InputError) as refused:
        Decider(policy).decide(_with(record, path, value))
    (problem,) = [d for d in refused.value.diagnostics if d.path == ".".join(path)]
    assert problem.message.startswith(f"unknown value '{value}' (expected one of: ")
    assert problem.hint == hint


def test_a_portfolio_row_rejected_for_a_grade_in_words_says_which_grade(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps(_with(CLIENT, ("history", "previous_grade"), "可疑")) + "\n", encoding="utf-8")
    result = run_batch(V11, read_table(path))
    ((problem,),) = [r["problems"] for r in result.rejects]
    assert problem["field"] == "history.previous_grade"
    assert problem["message"].endswith(
        "; '可疑' is how 'doubtful' reads to people; the record carries the value 'doubtful'")


def test_a_long_table_debtor_with_its_industry_in_words_is_rejected_with_the_value_named(tmp_path: Path) -> None:
    folder = tmp_path / "t"
    synthetic.write_long_tables(V21, folder, 5, seed=2, as_of="2026-09-30", fmt=".csv")
    debtors = pd.read_csv(folder / "debtors.csv", dtype=str, keep_default_na=False)
    debtors.loc[1, "industry"] = "商贸"
    debtors.to_csv(folder / "debtors.csv", index=False)
    result = run_long_batch(V21, folder)
    ((problem,),) = [r["problems"] for r in result.rejects]
    assert problem["field"] == "industry"
    assert problem["message"].endswith("; '商贸' is how 'trade' reads to people; the record carries the value 'trade'")
