"""Stage 3: the expression language -- semantics, null handling and the sandbox."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import yaml

from policy_engine.language import expressions as ex
from policy_engine.policy.compiler import BUILTIN_SYMBOLS, check_document
from policy_engine.policy.loader import load_yaml_text

from ..conftest import DATA

GRADES = ("pass", "special_mention", "substandard", "doubtful", "loss")
SYMBOLS = {
    "x": ex.Symbol("x", "input", ex.NUMBER, True),
    "y": ex.Symbol("y", "input", ex.NUMBER, True),
    "n": ex.Symbol("n", "input", ex.NUMBER, False),
    "b": ex.Symbol("b", "input", ex.BOOL, True),
    "c": ex.Symbol("c", "input", ex.BOOL, True),
    "s": ex.Symbol("s", "input", ex.STRING, True, enum=("a", "b")),
    "g": ex.Symbol("g", "input", ex.GRADE, True),
    "q": ex.Symbol("q", "input", ex.SERIES_NUMBER, True),
    "d1": ex.Symbol("d1", "input", ex.DATE, True),
    "d2": ex.Symbol("d2", "input", ex.DATE, True),
    **BUILTIN_SYMBOLS,
}
SCOPE = ex.Scope(SYMBOLS, "metric", GRADES)
CASES = yaml.safe_load((DATA / "expression_cases.yaml").read_text(encoding="utf-8"))
ERRORS = yaml.safe_load((DATA / "expression_errors.yaml").read_text(encoding="utf-8"))


def _value(name: str, v: Any) -> Any:
    if name.startswith("d") and isinstance(v, str):
        return dt.date.fromisoformat(v)
    return v


@pytest.mark.parametrize("case", CASES, ids=[c["expr"] + " " + str(c["values"]) for c in CASES])
def test_expression_semantics(case: dict[str, Any]) -> None:
    assert set(case) == {"expr", "values", "result"}, "malformed case"
    checked = ex.check_expression(case["expr"], SCOPE)
    fn = ex.compile_standalone(checked, GRADES)
    env = {k: _value(k, v) for k, v in case["values"].items()}
    got = fn(env)
    want = case["result"]
    if isinstance(want, float) and got is not None:
        assert got == pytest.approx(want)
    else:
        assert (got == want and type(got) is type(want)) or (got == want and isinstance(want, int | float))


@pytest.mark.parametrize("case", ERRORS, ids=[c["expr"] or "<empty>" for c in ERRORS])
def test_refused_expressions(case: dict[str, Any]) -> None:
    assert set(case) == {"expr", "code"}, "malformed case"
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression(case["expr"], SCOPE)
    assert err.value.code == case["code"], err.value.message


def test_condition_must_be_boolean() -> None:
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression("x + 1", SCOPE, want=ex.BOOL)
    assert err.value.code == "type-mismatch"


def test_names_are_nfkc_normalised_before_lookup() -> None:
    # A full-width 'ｘ' is the name 'x' to Python's parser, and to us.
    checked = ex.check_expression("ｘ + 1", SCOPE)
    assert checked.refs == ("x",)


def test_very_long_and_deep_expressions_are_refused() -> None:
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression("x + " * 600 + "1", SCOPE)
    assert err.value.code == "expression-too-long"
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression("(" * 100 + "x" + ")" * 100 + " + -" * 50 + "x", SCOPE)
    assert err.value.code == "expression-too-deep"


def test_generated_code_has_no_builtins() -> None:
    ns = ex.runtime_namespace(GRADES)
    assert ns["__builtins__"] == {}
    assert all(not k.startswith("__") or k == "__builtins__" for k in ns)


def test_each_operand_is_evaluated_once_in_null_guards() -> None:
    # The generated guard binds operands to temporaries; the result is the same as plain Python.
    fn = ex.compile_standalone(ex.check_expression("(x + y) * (x - y)", SCOPE))
    assert fn({"x": 3, "y": 2}) == 5
    assert fn({"x": None, "y": 2}) is None


def test_function_catalogue_is_consistent_with_the_runtime() -> None:
    for name in ex.FUNCTIONS:
        if name in ("date", "grade_rank", "grade_at_least", "fired", "is_null", "lookup"):  # inline row code
            continue
        assert name in ex.RUNTIME, name


@pytest.mark.parametrize(("text", "message", "hint"), [
    ("as_of - d1 > 90", "dates do not subtract", "days_between(d1, as_of) is the days"),
    ("d1 > 90", "cannot compare date with number", "days_between(d, as_of) > 90"),
    ("d1 + 30 > as_of", "arithmetic needs numbers, found date", "add_months(d, n) moves a date"),
])
def test_a_date_used_as_a_number_gets_the_date_functions_in_its_hint(text: str, message: str, hint: str) -> None:
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression(text, SCOPE)
    assert err.value.message == message and hint in (err.value.hint or "")


@pytest.mark.parametrize(("text", "message", "hint"), [
    ("x > limit_text", "cannot compare number with string",
     "parameter 'limit_text' holds text, not a number: write its value as a number"),
    ("limit_flag <= x", "cannot compare bool with number",
     "parameter 'limit_flag' holds a boolean, not a number: write its value as a number"),
    ("x > '90'", "cannot compare number with string", "'90' in quotes is text: write the number 90"),
    ("x > s", "cannot compare number with string", None),  # an input's text: no guess at what was meant
    # a threshold written as a word ('fifteen') read where a number is meant: the parameter is named there too
    ("x > -limit_text", "sign needs a number, found string",
     "parameter 'limit_text' holds text, not a number: write its value as a number"),
    ("x * limit_flag > 1", "arithmetic needs numbers, found bool",
     "parameter 'limit_flag' holds a boolean, not a number: write its value as a number"),
    ("abs(limit_text) > 1", "argument 1 of abs() must be number, found string",
     "parameter 'limit_text' holds text, not a number: write its value as a number"),
    # months a parameter holds are known: one that is not whole gives no date in any decision
    ("add_months(d1, -half_year) < as_of", "argument 2 of add_months() counts months: parameter 'half_year' holds "
     "0.5, not a whole number", "give 'half_year' whole numbers of months, -1200 to 1200 (months between dates: "
     "months_between; a fraction of a year: days with days_between)"),
    ("add_months(d1, months_by_segment) < as_of", "argument 2 of add_months() counts months: parameter "
     "'months_by_segment' holds values 3 to 2400", "give 'months_by_segment' whole numbers of months, -1200 to 1200 "
     "(months between dates: months_between; a fraction of a year: days with days_between)"),
])
def test_a_number_compared_with_text_names_the_parameter_or_quotes(text: str, message: str, hint: str | None
                                                                   ) -> None:
    scope = ex.Scope({**SYMBOLS, "limit_text": ex.Symbol("limit_text", "param", ex.STRING, False),
                      "limit_flag": ex.Symbol("limit_flag", "param", ex.BOOL, False),
                      "half_year": ex.Symbol("half_year", "param", ex.NUMBER, False, bounds=(0.5, 0.5)),
                      "months_by_segment": ex.Symbol("months_by_segment", "param", ex.NUMBER, False,
                                                     bounds=(3.0, 2400.0), whole=True)}, "metric", GRADES)
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression(text, scope)
    assert (err.value.message, err.value.hint) == (message, hint)


@pytest.mark.parametrize(("months", "error"), [
    ("{value: 0.5}", "parameter 'lookback' holds 0.5, not a whole number"),
    ("{by_segment: {default: 12, trade: 1.5}}", "parameter 'lookback' holds values 1.5 to 12, not a whole number"),
    ("{value: 12}", None),
])
def test_a_policy_moving_a_date_by_a_parameter_is_told_at_validation_when_its_months_are_not_whole(
        months: str, error: str | None) -> None:
    """0.5 months (an author's half year) made add_months give no date in every decision: the rule went undetermined
    and explain asked for the payments' facts. The parameter's values are known, so it is an error at the place."""
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    text = text.replace("  income_q:", "  opened: {from: loan.opened, type: date}\n  income_q:", 1)
    text = text.replace("parameters:\n", f"parameters:\n  lookback: {months}\n", 1)
    text = text.replace("when: dpd > 90", "when: dpd > 90 or add_months(opened, -lookback) < as_of", 1)
    diags, _ = check_document(load_yaml_text(text, "x.yaml"))
    found = [(d.code, d.line, d.message) for d in diags if d.severity == "error"]
    assert found == ([] if error is None else [("type-mismatch", 43, f"argument 2 of add_months() counts months: "
                                                                      f"{error}")]), found


def test_whole_months_in_a_parameter_move_a_date() -> None:
    scope = ex.Scope({**SYMBOLS, "year": ex.Symbol("year", "param", ex.NUMBER, False, bounds=(-12.0, 12.0),
                                                   whole=True)}, "metric", GRADES)
    assert ex.check_expression("add_months(d1, -year) < as_of", scope) is not None


@pytest.mark.parametrize(("text", "hint"), [
    ("xx + 1", "did you mean 'x'?"),  # a typo: the name meant
    ("revenue_limit > 1", "declare it under inputs, parameters or metrics"),  # nothing like it
    # only like a known name (a new threshold beside the figure it bounds): the suggestion alone made a rule
    # compare the figure with itself
    ("overdue90_share > overdue_share_limit",
     "did you mean 'overdue90_share'? If 'overdue_share_limit' is new, declare it under parameters"),
])
def test_an_unknown_name_is_told_the_name_meant_or_to_be_declared(text: str, hint: str) -> None:
    scope = ex.Scope({**SYMBOLS, "overdue90_share": ex.Symbol("overdue90_share", "metric", ex.NUMBER, True)},
                     "metric", GRADES)
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression(text, scope)
    assert err.value.code == "unknown-name" and (err.value.hint or "").startswith(hint), err.value.hint
