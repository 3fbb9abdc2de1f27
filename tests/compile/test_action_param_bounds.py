"""Computed action parameters are checked at validate against what their expression can give.

Table-driven from tests/data/action_params/cases.yaml: provably refused -> a located error (exit 4);
provably allowed or unknown -> valid, and an unknown one that a client makes wrong is refused on
that decision (code action-param-refused), never silently dropped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.language.expressions import Scope, Symbol, check_expression
from policy_engine.policy import bounds
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text

from ..conftest import DATA

CASES_DIR = DATA / "action_params"
BASE = (CASES_DIR / "base-policy.yaml").read_text(encoding="utf-8")
CASES: list[dict[str, Any]] = yaml.safe_load((CASES_DIR / "cases.yaml").read_text(encoding="utf-8"))


def policy_text(case: dict[str, Any]) -> str:
    lines = BASE.split("\n")
    assert lines[58] == "    params: {}"  # line 59, where every expected position lies
    lines[58] = f"    params: {case['params']}"
    return "\n".join(lines).replace("__ACTION__", case["action"])


def client(extra: dict[str, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"client_id": "c1", "as_of": "2025-06-30", "industry": "manufacturing",
                              "internal_score": 0.5, "loan": {"days_past_due": 5, "months_left": 12}}
    for k, v in extra.items():
        record[k] = {**record[k], **v} if isinstance(v, dict) else v
    return record


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    diags, policy = check_document(load_yaml_text(policy_text(case), "case.yaml"))
    errors = [d for d in diags if d.severity == "error"]
    if "error" in case:
        assert policy is None
        assert [[d.code, d.line, d.column] for d in errors] == case["error"], [d.message for d in errors]
        assert case["message"] in errors[0].message, errors[0].message
        assert all(d.path == "actions[2].params." + d.path.split(".")[2] + ".expr" and d.rule == "case"
                   for d in errors)
        return
    assert case["ok"] is True and not errors, [d.message for d in errors]
    assert policy is not None
    if "refused" in case:
        record = Decider(policy).decide(client(case["client"]))
        assert "case" not in [a["id"] for a in record["actions"]]
        [entry] = [u for u in record["undetermined"] if u["rule"] == "case"]
        assert entry["code"] == "action-param-refused"
        [name] = [m for m in entry["missing"] if m.startswith("params.")]
        assert entry["reasons"][name].startswith(case["refused"]), entry["reasons"]


def test_a_provable_error_exits_4_from_validate(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(policy_text(CASES[0]), encoding="utf-8")
    r = CliRunner().invoke(main, ["validate", str(path), "--format", "text"])
    assert r.exit_code == 4, r.output
    assert f"{path}:59:37: error: action-param-out-of-range" in r.output


def test_an_allowed_value_is_given_as_a_whole_number() -> None:
    case = next(c for c in CASES if c["name"] == "a range partly outside is not proven wrong")
    _, policy = check_document(load_yaml_text(policy_text(case), "case.yaml"))
    record = Decider(policy).decide(client({"loan": {"months_left": 3}}))
    [given_action] = [a for a in record["actions"] if a["id"] == "case"]
    assert given_action["params"] == {"deadline_days": 30} and not record["undetermined"]


# The analysis is sound: every value an expression gives on bounded inputs lies in its proven range.
_SYMBOLS = {n: Symbol(n, "input", "number", False, bounds=(lo, hi)) for n, lo, hi in
            (("a", -5.0, 7.0), ("b", 0.5, 3.0), ("c", -2.0, -1.0))}
_EXPRESSIONS = ["a + b * c", "a - b", "a / b", "a / c", "min(a, b) - max(b, c)", "abs(a) * c",
                "round(a * b)", "round(a / b, 2)", "a if a > b else c * 3", "coalesce(a, b)", "-a + 2 * b"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_EXPRESSIONS), st.floats(-5, 7), st.floats(0.5, 3), st.floats(-2, -1))
def test_every_value_lies_in_the_proven_range(source: str, a: float, b: float, c: float) -> None:
    checked = check_expression(source, Scope(symbols=_SYMBOLS, stage="metric", grades=("good",)))
    env = {n: bounds.Interval(*s.bounds) for n, s in _SYMBOLS.items() if s.bounds}
    proven = bounds.domain(checked, env)
    assert isinstance(proven, bounds.Interval)
    names = {"min": min, "max": max, "abs": abs, "round": round,
             "coalesce": lambda *xs: next(x for x in xs if x is not None)}
    value = eval(compile(f"({source})", "<case>", "eval"), {"__builtins__": {}}, {**names, "a": a, "b": b, "c": c})
    assert proven.low - 1e-9 <= value <= proven.high + 1e-9, (source, proven, value)


# A clamp bounds an argument whose range is unknown (u: any number): its value lies in the proven range.
_CLAMPS = ["min(max(u, 1), 30)", "max(min(u, b), -3)", "min(max(u / 365, 1), 30) * 2", "max(min(u, 7), a)"]


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(_CLAMPS), st.floats(-1e9, 1e9), st.floats(-5, 7), st.floats(0.5, 3))
def test_a_clamp_of_an_unknown_value_lies_in_its_proven_range(source: str, u: float, a: float, b: float) -> None:
    symbols = {**_SYMBOLS, "u": Symbol("u", "input", "number", False)}
    checked = check_expression(source, Scope(symbols=symbols, stage="metric", grades=("good",)))
    env = {n: bounds.Interval(*s.bounds) for n, s in symbols.items() if s.bounds}
    proven = bounds.domain(checked, env)
    assert isinstance(proven, bounds.Interval) and not math.isinf(proven.low) and not math.isinf(proven.high)
    value = eval(compile(f"({source})", "<case>", "eval"), {"__builtins__": {}}, {"min": min, "max": max, "u": u,
                                                                                  "a": a, "b": b})
    assert proven.low - 1e-9 <= value <= proven.high + 1e-9, (source, proven, value)
    assert bounds.domain(check_expression("max(u, 1)", Scope(symbols=symbols, stage="metric", grades=("good",))),
                         env) == bounds.Interval(1.0, math.inf)  # one side bounded: an outer clamp may bound it


def test_a_metric_clamped_to_a_range_may_be_a_power_s_exponent_and_one_open_at_a_side_may_not() -> None:
    """Lifetime PD, 1 - (1 - pd) ** years with years = min(max(days / 365, 1), 30): refused as unbounded, which
    left an IFRS 9 author a five-branch conditional of literal powers."""
    doc = yaml.safe_load((DATA / "scopes" / "policy-multi-exposure.yaml").read_text(encoding="utf-8"))
    doc["inputs"]["pd"] = {"scope": "exposure", "from": "pd", "type": "number", "min": 0, "max": 1}
    doc["inputs"]["maturity"] = {"scope": "exposure", "from": "maturity_date", "type": "date"}
    doc["metrics"].update({
        "years": {"scope": "exposure", "expr": "min(max(days_between(as_of, maturity) / 365, 1), 30)",
                  "informational": True},
        "lifetime_pd": {"scope": "exposure", "expr": "1 - (1 - pd) ** years", "informational": True},
        "open_years": {"scope": "exposure", "expr": "max(days_between(as_of, maturity) / 365, 1)",
                       "informational": True},
        "open_power": {"scope": "exposure", "expr": "(1 - pd) ** open_years", "informational": True}})
    diags, _ = check_document(load_yaml_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "p.yaml"))
    assert [(d.code, d.path) for d in diags] == [("power-unbounded", "metrics.open_power.expr")]
    assert "its proven range [1, inf]" in diags[0].message
