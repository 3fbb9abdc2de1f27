"""A required field of an element that is missing names the element's fields no input reads, most like it first:
an abbreviation ('dpd' for days_past_due) is too far from the name for a did-you-mean (policy-author review)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.policy.registry import load_policy

REFERENCE = Path("policies/loss-client-management")


def _problems(record: dict) -> dict[str, str | None]:
    with pytest.raises(InputError) as refused:
        Decider(load_policy(REFERENCE / "policy-2.0.0.yaml")).decide(record)
    return {d.path or "": d.hint for d in refused.value.diagnostics}


def _debtor() -> dict:
    return json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text(encoding="utf-8"))


def test_a_missing_field_names_the_fields_no_input_reads_most_like_it_first() -> None:
    record = _debtor()
    exposure = record["exposures"][0]
    exposure["dpd"] = exposure.pop("days_past_due")
    exposure["branch_note"] = "x"
    hints = _problems(record)
    assert hints["exposures[0].days_past_due"] == ("input 'days_past_due' of scope exposure reads it; this exposure "
                                                   "has fields no input reads: 'dpd', 'branch_note'")


def test_without_unread_fields_the_hint_is_who_reads_it() -> None:
    record = _debtor()
    del record["exposures"][0]["days_past_due"]
    assert _problems(record)["exposures[0].days_past_due"] == "input 'days_past_due' of scope exposure reads it"
