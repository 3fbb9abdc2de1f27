"""A policy's own action types (action_types:) and review_meeting's within_days.

The catalogue a policy sees is the engine's plus its own: its actions use them like built-in
ones, decisions and explanations name them, `catalogue -p` lists them; a mistake in a
declaration or a use is a located error (table: tests/data/action_params/type_cases.yaml).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.catalogue import CATALOGUE
from policy_engine.policy.compiler import check_document, compile_document
from policy_engine.policy.loader import load_yaml_text

from .test_action_param_bounds import CASES_DIR, client, policy_text

TYPE_CASES: list[dict[str, Any]] = yaml.safe_load((CASES_DIR / "type_cases.yaml").read_text(encoding="utf-8"))


def text_of(case: dict[str, Any]) -> str:
    text = policy_text(case)
    for old, new in case.get("replace", []):
        assert old in text, old
        text = text.replace(old, new)
    return text


@pytest.mark.parametrize("case", TYPE_CASES, ids=[c["name"] for c in TYPE_CASES])
def test_type_case(case: dict[str, Any]) -> None:
    diags, policy = check_document(load_yaml_text(text_of(case), "types.yaml"))
    errors = [d for d in diags if d.severity == "error"]
    assert policy is None
    assert [[d.code, d.line, d.column] for d in errors] == case["error"], [d.message for d in errors]
    if "hint" in case:
        assert case["hint"] in (errors[0].hint or "")


def test_a_declared_type_is_decided_and_explained_in_both_languages() -> None:
    policy = compile_document(load_yaml_text(text_of(
        {"action": "site_visit", "params": "{within_days: 14, team: risk}"}), "types.yaml"))
    record = Decider(policy).decide(client({}))
    [case] = [a for a in record["actions"] if a["id"] == "case"]
    assert (case["action"], case["params"]) == ("site_visit", {"within_days": 14, "team": "risk"})
    # a policy's own type declares no words for its parameters: name=value
    assert "  3. Site visit [case]: within_days=14, team=risk" in explain(record, policy, "en")
    assert "  3. 实地走访 [case]：within_days=14，team=risk" in explain(record, policy, "zh")
    assert policy.action_types["site_visit"].origin == "policy" and "site_visit" not in CATALOGUE


def test_a_declared_type_may_give_its_parameters_words_as_the_catalogue_does() -> None:
    text = text_of({"action": "site_visit", "params": "{within_days: 14, team: risk}"}).replace(
        "within_days: {type: integer, required: true, min: 1, max: 30}",
        "within_days: {type: integer, required: true, min: 1, max: 30, "
        "shown: {zh: \"{date}前（{value}天内）\", en: \"by {date}\"}}").replace(
        "team: {type: string, enum: [credit, risk]}",
        "team: {type: string, enum: [credit, risk], labels: {credit: {zh: 授信部, en: credit}, "
        "risk: {zh: 风险部, en: the risk department}}}")
    policy = compile_document(load_yaml_text(text, "types.yaml"))
    record = Decider(policy).decide(client({}))
    day = (dt.date.fromisoformat(record["as_of"]) + dt.timedelta(days=14)).isoformat()
    assert f"  3. Site visit [case]: by {day}, the risk department" in explain(record, policy, "en")
    assert f"  3. 实地走访 [case]：{day}前（14天内），风险部" in explain(record, policy, "zh")
    assert record["actions"][-1]["params"] == {"within_days": 14, "team": "risk"}  # ids in the decision


def test_review_meeting_within_days_is_a_whole_number_shown_in_zh_and_en() -> None:
    policy = compile_document(load_yaml_text(text_of(
        {"action": "review_meeting", "params": "{cadence: monthly, within_days: {expr: \"min(days, 14)\"}}"}),
        "types.yaml"))
    record = Decider(policy).decide(client({}))
    [case] = [a for a in record["actions"] if a["id"] == "case"]
    assert case["params"] == {"cadence": "monthly", "within_days": 14}
    assert isinstance(case["params"]["within_days"], int)
    # the date the meeting is due by: as-of plus within_days (the client's as-of date is 2025-06-30)
    day = (dt.date.fromisoformat(record["as_of"]) + dt.timedelta(days=14)).isoformat()
    assert f"Review meeting [case]: monthly, first by {day} (within 14 days)" in explain(record, policy, "en")
    assert f"贷后检视会议 [case]：按月召开，首次于{day}前召开（14天内）" in explain(record, policy, "zh")
    spec = CATALOGUE["review_meeting"].params["within_days"]
    assert (spec.type, spec.min, spec.max, spec.required) == ("integer", 1, 365, False)


@pytest.mark.parametrize(("value", "code"), [("0", "bad-value"), ("366", "bad-value"), ("7.5", "wrong-type"),
                                             ("'soon'", "wrong-type")])
def test_within_days_out_of_its_range_is_located(value: str, code: str) -> None:
    diags, policy = check_document(load_yaml_text(text_of(
        {"action": "review_meeting", "params": f"{{cadence: monthly, within_days: {value}}}"}), "types.yaml"))
    assert policy is None
    assert [(d.code, d.line, d.column, d.path) for d in diags if d.severity == "error"] == [
        (code, 59, 32, "actions[2].params.within_days")]


def _catalogue(*args: str) -> str:
    r = CliRunner().invoke(main, ["catalogue", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return r.stdout


def test_catalogue_p_lists_the_engine_types_and_the_policys_own(tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text(text_of({"action": "site_visit", "params": "{within_days: 3}"}), encoding="utf-8")
    entries = json.loads(_catalogue("-p", str(path), "--format", "json"))
    assert [e["action"] for e in entries] == [*CATALOGUE, "site_visit"]
    own = entries[-1]
    assert (own["origin"], own["en"], own["zh"]) == ("policy", "Site visit", "实地走访")
    assert own["params"]["within_days"] == {"type": "integer", "required": True, "min": 1, "max": 30, "enum": None,
                                            "allowed": "whole numbers in [1, 30]", "shown": None, "labels": None}
    [early] = [e for e in entries if e["action"] == "early_repayment"]
    assert early["conflicts"] == ["restructure (with grace_months above zero)", "extend_term"]
    assert early["params"]["share"]["shown"] == {"zh": "提前偿还{pct}", "en": "repay {pct} early"}
    assert {e["origin"] for e in entries[:-1]} == {"engine"}
    text = _catalogue("-p", str(path))
    assert "site_visit             Site visit / 实地走访  [declared by the policy]" in text  # by the longest id
    assert "    within_days (optional): whole numbers in [1, 365]" in text  # review_meeting's
    assert "site_visit" not in _catalogue()


def test_catalogue_p_with_an_invalid_policy_exits_4(tmp_path: Path) -> None:
    path = tmp_path / "types.yaml"
    path.write_text(text_of(TYPE_CASES[0]), encoding="utf-8")
    r = CliRunner().invoke(main, ["catalogue", "-p", str(path)])
    assert r.exit_code == 4 and "wrong-type" in r.output


def test_the_policy_schema_shows_each_built_in_parameter_as_the_catalogue_does() -> None:
    from policy_engine.policy.catalogue import schema_hints

    from ..conftest import ROOT

    schema = json.loads((ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["actions"]["items"]["allOf"] == schema_hints()  # regenerate the schema if not
    assert set(schema["properties"]["actions"]["items"]["properties"]["action"]["anyOf"][0]["enum"]) == set(CATALOGUE)
    [meeting] = [h["then"]["properties"]["params"] for h in schema_hints()
                 if h["if"]["properties"]["action"]["const"] == "review_meeting"]
    assert meeting["properties"]["within_days"]["description"] == "integer, optional: whole numbers in [1, 365]"
    assert "action_types" in schema["properties"]
