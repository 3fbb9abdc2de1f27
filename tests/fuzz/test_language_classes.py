"""The fuzz-found classes of issue 19 (1-5, 10) and issue 14 class 8, each pinned at its cause on both paths."""

from __future__ import annotations

import ast
import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_engine.decide.evaluate import _fmt
from policy_engine.language import expressions as ex
from policy_engine.policy.compiler import BUILTIN_SYMBOLS, check_document
from policy_engine.policy.loader import load_yaml_text

from .harness import AS_OF, GRADES, plant, run_one

CASES = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "row_vector_cases.yaml").read_text("utf-8"))


def _client(patch: dict[str, Any]) -> dict[str, Any]:
    return {"client_id": "c", "as_of": AS_OF, "industry": "manufacturing", "k": 5, "financials": [], **patch}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"class{c['class']}: {c['expr']}")
def test_class_case_on_both_paths(case: dict[str, Any]) -> None:
    message = case.get("message", "{fz}")
    text = plant(case["type"], case["expr"], message)
    diags, policy = check_document(load_yaml_text(text, "fuzz.yaml"))
    errors = [d for d in diags if d.severity == "error"]
    if "rejected" in case:
        assert policy is None and errors, case
        assert case["rejected"] in {d.code for d in errors}, [d.render() for d in errors]
        assert all(d.line is not None and d.column is not None for d in errors)
        return
    assert errors == [], [d.render() for d in errors]
    for c in case["clients"]:
        record = _client(c["patch"])
        outcome = run_one(case["type"], case["expr"], message, [record])
        assert outcome.compared == 1 and outcome.findings == [], [f.detail for f in outcome.findings]
        decided = _decide(text, record)
        assert decided["metrics"]["fz"] == c["fz"], (c, decided["metrics"]["fz"])
        if "message" in c:
            fired = [w for w in decided["warnings"] if w["id"] == "fzw"]
            assert fired and fired[0]["message"]["en"] == c["message"]
        if "undetermined" in c:
            entry = next(u for u in decided["undetermined"] if u["rule"] == "fzw")
            assert any(c["undetermined"] in reason for reason in entry["reasons"].values()), entry
            assert c["undetermined"] in decided["undefined_metrics"]["fz"]


def _decide(text: str, record: dict[str, Any]) -> dict[str, Any]:
    from policy_engine.decide.evaluate import Decider

    _, policy = check_document(load_yaml_text(text, "fuzz.yaml"))
    assert policy is not None
    return Decider(policy).decide(record)


# ---- class 10: every function's generated code compiles without a warning -------------------------

SYMBOLS = {
    "a": ex.Symbol("a", "input", ex.NUMBER, True), "c": ex.Symbol("c", "input", ex.NUMBER, False),
    "p": ex.Symbol("p", "input", ex.BOOL, True), "t": ex.Symbol("t", "input", ex.STRING, True),
    "g": ex.Symbol("g", "input", ex.GRADE, True), "d": ex.Symbol("d", "input", ex.DATE, True),
    "s": ex.Symbol("s", "input", ex.SERIES_NUMBER, True), "ds": ex.Symbol("ds", "input", ex.SERIES_DATE, True),
    "tb": ex.Symbol("tb", "param", ex.TABLE, False, table=ex.Table("tb", ("t",), ex.NUMBER, {"x": 1.0})),
    "tc": ex.Symbol("tc", "param", ex.TABLE, False, table=ex.Table("tc", ("c",), ex.STRING, {1.0: "one"})),
    "ti": ex.Symbol("ti", "param", ex.TABLE, False,
                    table=ex.Table("ti", ("a",), ex.NUMBER, {0.0: 0.0, 1.0: 2.0}, True, (0.0, 1.0), (0.0, 2.0),
                                   (2.0,))),
    **BUILTIN_SYMBOLS,
}
SCOPE = ex.Scope(SYMBOLS, "action", GRADES, {"w": True})

# Per function, calls with literals (the SyntaxWarning came from ``1 is None``), names and nulls.
CALLS = {
    "min": ["min(1, 2)", "min(a, null)", "min(d, as_of)"], "max": ["max(1, c, a)", "max(date('2024-01-01'), d)"],
    "abs": ["abs(-1)", "abs(a)", "abs(null)"], "round": ["round(1.5)", "round(a, 2)", "round(null, 0)"],
    "coalesce": ["coalesce(null, 1)", "coalesce(a, c)", "coalesce(t, 'x')", "coalesce(d, null)"],
    "is_null": ["is_null(1)", "is_null('a')", "is_null(True)", "is_null(null)", "is_null(a)", "is_null(s)",
                "is_null(date('2024-01-01'))", "is_null(-1)", "is_null(as_of)"],
    "ratio": ["ratio(1, 2)", "ratio(a, null)"], "change": ["change(1, 0)", "change(a, c)"],
    "last": ["last(s)", "last(ds)"], "first": ["first(s)", "first(ds)"], "tail": ["sum(tail(s, 2))"],
    "sum": ["sum(s)"], "avg": ["avg(s)"], "sum_last": ["sum_last(s, 1)"], "avg_last": ["avg_last(s, 4)"],
    "count": ["count(s)", "count(ds)"], "series_min": ["series_min(s)"], "series_max": ["series_max(s)"],
    "streak": ["streak(s, '<', 0)", "streak(s, '>=', a)", "streak(s, '==', null)"],
    "pct_change": ["pct_change(s, 1)"], "days_between": ["days_between(d, as_of)", "days_between(null, d)"],
    "months_between": ["months_between(date('2024-01-31'), d)", "months_between(d, null)"],
    "date": ["date('2024-02-29')"], "grade_rank": ["grade_rank('loss')", "grade_rank(g)", "grade_rank(null)"],
    "grade_at_least": ["grade_at_least('doubtful')"], "fired": ["fired('w')"],
    "add_months": ["add_months(d, 1)", "add_months(date('2024-01-31'), -1)", "add_months(d, a)",
                   "add_months(null, 1)", "add_months(d, null)"],
    "lag": ["lag(s, 1)", "lag(ds, 2)"], "diff": ["diff(s, 1)", "diff(tail(s, 2), 1)"],
    "count_last": ["count_last(s, 2, '<', 0)", "count_last(s, 1, '==', null)", "count_last(s, 3, '>=', a)"],
    "lookup": ["lookup(tb, t)", "lookup(tc, c)", "lookup(ti, a)"],
}


def test_every_function_has_calls_here() -> None:
    assert set(CALLS) == set(ex.FUNCTIONS)


@pytest.mark.parametrize("source", [s for calls in CALLS.values() for s in calls])
def test_generated_code_compiles_without_warnings(source: str) -> None:
    checked = ex.check_expression(source, SCOPE)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fn = ex.compile_standalone(checked, GRADES)
    assert callable(fn)
    # and the generated text itself, as a reviewer reads it, compiles cleanly too
    names = {n: f"v_{i}" for i, n in enumerate(checked.refs)}
    tree = ex.RowCodegen(names, "g_rank", {"w": "w_0"}, GRADES).expression(checked)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        compile(ast.unparse(tree), "<generated>", "eval")


def test_the_reference_policy_compiles_without_warnings() -> None:
    from tests.conftest import CURRENT

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diags, policy = check_document(load_yaml_text(CURRENT.read_text("utf-8"), str(CURRENT)))
    assert policy is not None and [d for d in diags if d.severity == "error"] == []


# ---- class 2 at run time: the d format ---------------------------------------------------------------

@pytest.mark.parametrize(("value", "text"), [(34.0, "34"), (-3.0, "-3"), (0.0, "0"), (-0.0, "0"),
                                             (1e15, "1000000000000000"), (7, "7"), (None, "n/a")])
def test_d_format_prints_whole_floats_as_integers(value: Any, text: str) -> None:
    assert _fmt(value, "d", "en") == text
