"""Stages 4 and 5: decisions on the reference policy -- records, evidence, bad input."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from policy_engine.decide.evaluate import Decider, canonical_json
from policy_engine.diagnostics import InputError
from policy_engine.policy.loader import JSONInputError, parse_json_text
from policy_engine.policy.schemas import load_schema

from ..conftest import DATA, SAMPLES, sample

DECISION_SCHEMA = Draft202012Validator(load_schema("decision"))
CLIENT_SCHEMA = Draft202012Validator(load_schema("client"))
BROKEN_DIR = DATA / "broken_clients"
BROKEN = json.loads((BROKEN_DIR / "expectations.json").read_text(encoding="utf-8"))
VOLATILE = ("decision_id", "evaluated_at")


def _stable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE}


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_decision_validates_against_the_decision_schema(decider: Decider, path: Path) -> None:
    client = json.loads(path.read_text(encoding="utf-8"))
    for trace in (False, True):
        record = decider.decide(client, trace=trace)
        errors = [e.message for e in DECISION_SCHEMA.iter_errors(json.loads(json.dumps(record)))]
        assert errors == []


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_client_follows_the_client_schema(path: Path) -> None:
    errors = [e.message for e in CLIENT_SCHEMA.iter_errors(json.loads(path.read_text(encoding="utf-8")))]
    assert errors == []


def test_samples_cover_every_grade_and_every_warning(decider: Decider) -> None:
    grades, warnings, actions = set(), set(), set()
    for path in SAMPLES:
        r = decider.decide(json.loads(path.read_text(encoding="utf-8")))
        grades.add(r["classification"]["grade"])
        warnings |= {w["id"] for w in r["warnings"]}
        actions |= {a["id"] for a in r["actions"]}
    assert grades == {g.id for g in decider.policy.scale}
    assert warnings == {w.id for w in decider.policy.warnings}
    assert actions == {a.id for a in decider.policy.actions}
    assert len(SAMPLES) >= 20


def test_same_input_gives_the_same_record_byte_for_byte_except_id_and_time(decider: Decider) -> None:
    client = sample("02")
    a, b = decider.decide(client, trace=True), decider.decide(copy.deepcopy(client), trace=True)
    assert a["decision_id"] != b["decision_id"]
    assert json.dumps(_stable(a), ensure_ascii=False) == json.dumps(_stable(b), ensure_ascii=False)


def test_input_hash_is_of_the_canonical_json(decider: Decider) -> None:
    import hashlib

    client = sample("01")
    reordered = dict(reversed(list(client.items())))
    r1, r2 = decider.decide(client), decider.decide(reordered)
    assert r1["input_sha256"] == r2["input_sha256"] == hashlib.sha256(canonical_json(client)).hexdigest()


def test_decision_names_policy_version_and_hash(decider: Decider) -> None:
    r = decider.decide(sample("01"))
    assert r["policy"]["id"] == "loss-client-management"
    assert r["policy"]["version"] == "1.1.0"
    assert len(r["policy"]["sha256"]) == 64


def test_floor_evidence_names_the_rule_and_its_source(decider: Decider) -> None:
    client = sample("07")
    r = decider.decide(client)
    cls = r["classification"]
    assert cls["grade"] == "substandard" and cls["decided_by"] == "overdue_over_90"
    fired = {f["id"]: f for f in cls["floors"]}
    assert "第十条" in fired["overdue_over_90"]["source"]
    assert cls["nonperforming"] is True


def test_warning_evidence_carries_the_figures_that_fired_it(decider: Decider) -> None:
    r = decider.decide(sample("02"))
    w = next(w for w in r["warnings"] if w["id"] == "dscr_low")
    assert w["evidence"]["dscr_floor"] == 1.2
    assert w["evidence"]["dscr"] == pytest.approx(r["metrics"]["dscr"])
    assert "DSCR 0.8" in w["message"]["en"] and "偿债覆盖率" in w["message"]["zh"]


def test_actions_say_when_they_are_restructurings(decider: Decider) -> None:
    r = decider.decide(sample("02"))
    ext = next(a for a in r["actions"] if a["id"] == "extend_term")
    rs = ext["restructuring"]
    assert rs["is_restructuring"] is True and rs["floor"] == "special_mention"
    assert rs["observation"] == {"starts": "first repayment date after the change", "min_months": 12, "min_periods": 2}
    assert ext["because"]["grade"] == "special_mention"
    add = decider.decide(sample("03"))
    collateral = next(a for a in add["actions"] if a["id"] == "add_collateral")
    assert "restructuring" not in collateral


def test_null_metrics_carry_their_reason(decider: Decider) -> None:
    r = decider.decide(sample("19"))
    assert r["metrics"]["dscr"] is None
    assert r["undefined_metrics"]["net_margin"].startswith("depends on net_income_ttm (missing input")
    r = decider.decide(sample("21"))
    assert r["metrics"]["roe"] is None
    assert "equity_q" in r["undefined_metrics"]["roe"] or "non-positive" in r["undefined_metrics"]["roe"]


def test_undetermined_rules_are_listed_never_silently_passed(decider: Decider) -> None:
    client = sample("01")
    for q in client["financials"]:
        q["debt_service"] = 0
    r = decider.decide(client)
    und = {u["rule"]: u for u in r["undetermined"]}
    assert "dscr_low" in und and und["dscr_low"]["missing"] == ["dscr"]
    assert "dscr" in und["dscr_low"]["reasons"]
    assert "dscr_low" not in [w["id"] for w in r["warnings"]]


def test_overflowing_arithmetic_gives_null_not_infinity(decider: Decider) -> None:
    client = sample("01")
    for q in client["financials"]:
        q["current_assets"] = 1e15
        q["current_liabilities"] = 1e-300
    r = decider.decide(client)
    assert r["metrics"]["current_ratio"] is None


def test_trace_lists_every_rule_with_what_it_read(decider: Decider) -> None:
    r = decider.decide(sample("02"), trace=True)
    p = decider.policy
    assert len(r["trace"]) == len(p.metrics) + len(p.factors) + len(p.floors) + len(p.warnings) + len(p.actions)
    row = next(t for t in r["trace"] if t["rule"] == "overdue_over_90")
    assert row == {"stage": "classification", "rule": "overdue_over_90", "expr": "days_past_due > 90",
                   "reads": {"days_past_due": 0}, "result": False, "floor": "substandard"}


def test_as_of_precedence(decider: Decider) -> None:
    client = sample("18")
    assert decider.decide(client)["as_of"] == "2025-12-31"
    assert decider.decide(client, as_of="2025-07-01")["as_of"] == "2025-07-01"
    client.pop("as_of")
    import datetime as dt

    assert decider.decide(client)["as_of"] == dt.date.today().isoformat()


def test_the_broken_client_corpus_is_large_enough() -> None:
    assert len(BROKEN) >= 15


@pytest.mark.parametrize("name", sorted(BROKEN), ids=sorted(BROKEN))
def test_broken_client_is_rejected_with_every_field_named(decider: Decider, name: str) -> None:
    raw = (BROKEN_DIR / name).read_bytes()
    expected = BROKEN[name]
    if expected == "json":
        with pytest.raises(JSONInputError):
            parse_json_text(raw)
        return
    with pytest.raises(InputError) as err:
        decider.decide(parse_json_text(raw), file=name)
    paths = [d.path for d in err.value.diagnostics]
    assert sorted(set(paths)) == sorted(set(expected)), [d.render() for d in err.value.diagnostics]
    assert all(d.file == name for d in err.value.diagnostics)
    assert err.value.exit_code == 3


def _trace_rule_by_rule(decider: Decider, record: dict[str, Any]) -> list[dict[str, Any]]:
    """The trace assembled rule by rule from the policy objects: the oracle for the generated tracer."""
    from policy_engine.decide.evaluate import _jsonable

    p = decider.policy
    _, day, inputs = decider.read(record)
    params = p.params_for(inputs[decider._segment_index])
    results = p.row_function(inputs, params, day)
    metrics, bands, _, score, _, floors, g_rank, warnings, actions, _, _ = results
    env = dict(zip(decider._names, (*inputs, *params, *metrics), strict=True))
    env.update(as_of=day, score=score, grade=p.scale[g_rank].id)
    points = [table[2][band] for table, band in zip(decider._factor_tables, bands, strict=True)]
    out = []
    for stage, rules, values in (("metric", p.metrics, metrics), ("factor", p.factors, points),
                                 ("classification", p.floors, floors), ("warning", p.warnings, warnings),
                                 ("action", p.actions, actions)):
        for rule, v in zip(rules, values, strict=True):
            entry = {"stage": stage, "rule": rule.name if stage == "metric" else rule.id, "expr": rule.expr.source,
                     "reads": {n: _jsonable(env.get(n)) for n in rule.expr.refs}, "result": _jsonable(v)}
            if stage == "classification":
                entry["floor"] = rule.floor
            out.append(entry)
    return out


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name[:2])
def test_the_generated_trace_equals_the_trace_assembled_rule_by_rule(decider: Decider, path: Path) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    assert decider.decide(record, trace=True)["trace"] == _trace_rule_by_rule(decider, record)


@pytest.mark.parametrize("template", [
    "", "plain text", "{net_margin:pct}", "净利率{net_margin:pct}，DSCR {dscr:.2f}", "{missing} and {flag}",
    "{{literal braces}} {count}", "{big}/{small}/{day}", "quote ' and \" and \\\\ backslash {count}",
])
def test_a_compiled_message_renders_like_the_template_walk(template: str) -> None:
    import datetime as dt

    from policy_engine.decide.evaluate import _fmt, compile_message, parse_template

    def render_template(text: str, env: dict[str, Any], lang: str) -> str:  # the walk, part by part
        return "".join(literal + ("" if name is None else _fmt(env.get(name), spec, lang))
                       for literal, name, spec in parse_template(text))

    env = {"net_margin": -0.0312, "dscr": 0.8765, "flag": True, "count": 3, "big": 52000000.0, "small": 0.5,
           "day": dt.date(2025, 6, 30)}
    render = compile_message({"zh": template, "en": template})
    assert render(env.get) == {"zh": render_template(template, env, "zh"), "en": render_template(template, env, "en")}


@pytest.mark.parametrize("empty", [{}, {"revenue": None}, {"period_end": None, "equity": None}])
def test_trailing_empty_periods_are_absent_as_in_a_wide_table(decider: Decider, empty: dict[str, Any]) -> None:
    # A wide table cannot tell a trailing empty period from no period; decide must read them alike.
    client = sample("02")
    padded = copy.deepcopy(client)
    padded["financials"] += [empty, {}]
    a, b = decider.decide(client, trace=True), decider.decide(padded, trace=True)
    assert _stable(a) == _stable(b)
    assert canonical_json(padded) == canonical_json(client)


def test_an_empty_period_before_a_filled_one_is_one_error_naming_the_list(decider: Decider) -> None:
    client = sample("02")
    client["financials"].insert(1, {})
    with pytest.raises(InputError) as err:
        decider.decide(client)
    assert [(d.path, d.message) for d in err.value.diagnostics] == [
        ("financials", "periods must be consecutive from index 0: financials[1] is empty but a later period is "
                       "filled")]


@pytest.mark.parametrize(("days", "decided"), [(91, True), (91.0, True), (0.0, True), (90.5, False), (-1.0, False)])
def test_a_whole_number_field_takes_a_float_with_no_fraction(decider: Decider, days: Any, decided: bool) -> None:
    # As JSON Schema's "integer" does, and as a table column holds it once another row leaves it empty.
    client = sample("02")
    client["loan"]["days_past_due"] = days
    if not decided:
        with pytest.raises(InputError) as err:
            decider.decide(client)
        assert [d.path for d in err.value.diagnostics] == ["loan.days_past_due"]
        return
    as_int = copy.deepcopy(client)
    as_int["loan"]["days_past_due"] = int(days)
    assert _stable(decider.decide(client)) == _stable(decider.decide(as_int))
