"""The function table (policy_engine.language.functions) and the case file of each function.

Every file ``tests/data/functions/<name>.yaml`` holds the cases of one function: an expression
planted in the fuzz harness's policy (as metric ``fz``, and in a warning and an action), then
either the diagnostic code the checker must give, or clients with the value ``fz`` must have.
Each client is decided by the row evaluator and by the vector evaluator: the two records must be
equal and ``fz`` the expected value. Adding a function is its table entry and its case file.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.language import columns
from policy_engine.language import expressions as ex
from policy_engine.language.functions import FUNCTIONS
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text

from ..fuzz.harness import AS_OF, client_batches, plant, run_one

CASE_DIR = Path(__file__).resolve().parents[1] / "data" / "functions"
TYPES = {"number", "bool", "string", "grade", "date"}

# Functions older than the case files, covered by tests/data/expression_cases.yaml, expression_errors.yaml
# and row_vector_cases.yaml. The list only shrinks: a function added to the table brings its case file.
BEFORE_CASE_FILES = {
    "min", "max", "abs", "round", "coalesce", "is_null", "ratio", "change", "last", "first", "tail", "sum", "avg",
    "sum_last", "avg_last", "count", "series_min", "series_max", "streak", "pct_change", "days_between",
    "months_between", "date", "grade_rank", "grade_at_least", "fired",
}


def _load(path: Path) -> list[dict[str, Any]]:
    """The cases of one file, refusing a malformed one: a case without an expectation tests nothing."""
    doc = yaml.safe_load(path.read_text("utf-8"))
    assert isinstance(doc, dict) and doc.get("function") == path.stem, f"{path.name}: 'function: {path.stem}'"
    cases = doc.get("cases")
    assert isinstance(cases, list) and cases, f"{path.name}: no cases"
    for i, case in enumerate(cases):
        where = f"{path.name} case {i + 1}"
        assert set(case) <= {"expr", "type", "clients", "rejected", "note"}, f"{where}: unknown keys"
        assert isinstance(case.get("expr"), str) and f"{path.stem}(" in case["expr"], f"{where}: expr calls it"
        assert case.get("type", "number") in TYPES, f"{where}: type"
        assert ("rejected" in case) != ("clients" in case), f"{where}: exactly one of rejected or clients"
        if "clients" in case:
            assert case["clients"] and all({"patch", "fz"} <= set(c) for c in case["clients"]), where
    return cases


FILES = sorted(CASE_DIR.glob("*.yaml"))
CASES = [(p.stem, i, case) for p in FILES for i, case in enumerate(_load(p))]


def test_every_function_has_a_case_file_or_predates_them() -> None:
    with_files = {p.stem for p in FILES}
    assert with_files <= set(FUNCTIONS), f"case files for no function: {with_files - set(FUNCTIONS)}"
    missing = set(FUNCTIONS) - with_files - BEFORE_CASE_FILES
    assert not missing, f"functions without tests/data/functions/<name>.yaml: {sorted(missing)}"
    assert set(FUNCTIONS) >= BEFORE_CASE_FILES
    assert not with_files & BEFORE_CASE_FILES, "a function with a case file: take it off BEFORE_CASE_FILES"


@pytest.mark.parametrize(("name", "i", "case"), CASES, ids=[f"{n}-{i + 1}: {c['expr']}" for n, i, c in CASES])
def test_function_case_on_both_paths(name: str, i: int, case: dict[str, Any]) -> None:
    kind = case.get("type", "number")
    text = plant(kind, case["expr"])
    diags, policy = check_document(load_yaml_text(text, "fuzz.yaml"))
    errors = [d for d in diags if d.severity == "error"]
    if "rejected" in case:
        assert policy is None and case["rejected"] in {d.code for d in errors}, [d.render() for d in errors]
        assert all(d.line is not None and d.column is not None for d in errors)
        return
    assert errors == [] and policy is not None, [d.render() for d in errors]
    from policy_engine.decide.evaluate import Decider

    decider = Decider(policy)
    for c in case["clients"]:
        record = {"client_id": "c", "as_of": AS_OF, "industry": "manufacturing", "k": 5, "financials": [],
                  **c["patch"]}
        outcome = run_one(kind, case["expr"], "{fz}", [record])
        assert outcome.compared == 1 and outcome.findings == [], [f.detail for f in outcome.findings]
        assert decider.decide(record)["metrics"]["fz"] == c["fz"], c


# ---- the table itself --------------------------------------------------------------------------


@pytest.mark.parametrize("fn", FUNCTIONS.values(), ids=list(FUNCTIONS))
def test_each_entry_is_complete(fn: ex.Function) -> None:
    assert callable(getattr(columns, fn.vector, None)), f"{fn.name}: no columns.{fn.vector}"
    assert fn.row is not None or fn.row_code is not None, f"{fn.name}: no row implementation"
    assert fn.signature.startswith(f"{fn.name}(") and fn.doc
    limit = fn.max_args if fn.max_args is not None else fn.min_args
    assert all(i < limit for i in fn.literal_args), fn.name
    for i in (fn.window_arg, fn.operator_arg):
        assert i is None or i in fn.literal_args, f"{fn.name}: argument {i} must be declared a literal"
    assert fn.series in (None, "any", ex.NUMBER)
    assert fn.first_stage in ex.STAGES
    assert fn.vector_args or not fn.row, f"{fn.name}: a helper of evaluated arguments has them evaluated on columns"


def test_generated_code_calls_the_entry_s_row_implementation() -> None:
    scope = ex.Scope({"q": ex.Symbol("q", "input", ex.SERIES_NUMBER, True)}, "metric", ("pass", "loss"))
    expr = ex.check_expression("lag(q, 1)", scope)
    fn = ex.compile_standalone(expr)
    assert fn({"q": [1.0, 2.0, 3.0]}) == 2.0 and fn({"q": [3.0]}) is None
    call = expr.tree
    assert isinstance(call, ast.Call) and ex.RUNTIME["lag"] is FUNCTIONS["lag"].row


def test_the_table_and_the_row_path_do_not_load_numpy() -> None:
    # The column forms live in policy_engine.language.columns, which only the vector evaluator imports:
    # a single decision (`policy-engine decide`) starts without numpy.
    code = ("import sys, policy_engine.language.functions, policy_engine.language.expressions, "
            "policy_engine.policy.compiler, policy_engine.decide.evaluate; sys.exit('numpy' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ---- the functions added with the table: row == vector over drawn clients ---------------------

_OPS = ["'<'", "'<='", "'>'", "'>='", "'=='", "'!='"]
_SERIES = ["q", "q", "tail(q, 2)", "tail(q, 4)"]
NEW_FUNCTION_CALLS = st.one_of(
    st.tuples(st.sampled_from(["lag", "diff"]), st.sampled_from(_SERIES), st.integers(1, 5)).map(
        lambda t: ("number", f"{t[0]}({t[1]}, {t[2]})")),
    st.tuples(st.sampled_from(["pe", "tail(pe, 2)"]), st.integers(1, 3)).map(
        lambda t: ("date", f"lag({t[0]}, {t[1]})")),
    st.tuples(st.sampled_from(_SERIES), st.integers(1, 5), st.sampled_from(_OPS),
              st.sampled_from(["0", "x", "1.5", "-3", "null", "lag(q, 1)"])).map(
        lambda t: ("number", f"count_last({t[0]}, {t[1]}, {t[2]}, {t[3]})")),
    st.tuples(st.sampled_from(["d1", "d2", "last(pe)", "lag(pe, 1)", "as_of", "date('2024-01-31')"]),
              st.sampled_from(["1", "-1", "13", "-25", "x", "k", "-k", "pi", "1200", "-1200", "null", "x / 2"])).map(
        lambda t: ("date", f"add_months({t[0]}, {t[1]})")),
)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(NEW_FUNCTION_CALLS, client_batches(12))
def test_new_functions_agree_on_both_paths(call: tuple[str, str], records: list[dict[str, Any]]) -> None:
    kind, expr = call
    outcome = run_one(kind, expr, "{fz}", records)
    # Every call is valid: accepted, and each client the engine reads (a drawn one may hold an empty
    # period, refused alike by both paths) decided alike.
    assert outcome.rejected == [] and outcome.findings == [], (expr, [f.detail for f in outcome.findings])
