"""Hostile policy text (issue 14 classes 1, 2, 7, 9): refused at validate time, located, never exit 5.

The table in ``tests/data/hostile_policies.yaml`` edits the mini policy and runs ``validate``; the
tests below it pin the rules those cases stand for in general: every operator Python has is
either on the allow-list or refused, every accepted expression evaluates, and the limits the
security page documents are the constants the code enforces.
"""

from __future__ import annotations

import ast
import json
import keyword
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.cli import main
from policy_engine.decide import evaluate, inputs
from policy_engine.language import expressions as ex
from policy_engine.policy import loader
from policy_engine.policy.compiler import BUILTIN_SYMBOLS, RESERVED_NAMES

from ..conftest import DATA, ROOT

MINI = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
TABLE = yaml.safe_load((DATA / "hostile_policies.yaml").read_text(encoding="utf-8"))
REJECTED: list[dict[str, Any]] = TABLE["rejected"]
ACCEPTED: list[dict[str, Any]] = TABLE["accepted"]


def _edited(replace: dict[str, str]) -> str:
    text = MINI
    for old, new in replace.items():
        assert text.count(old) == 1, f"malformed case: {old!r} must occur once in the mini policy"
        text = text.replace(old, new)
    return text


def _validate(text: str, tmp_path: Path) -> tuple[int, list[dict[str, Any]]]:
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    r = CliRunner().invoke(main, ["validate", "--format", "json", str(path)], catch_exceptions=False)
    return r.exit_code, json.loads(r.stdout)["files"][0]["diagnostics"]


def test_every_class_has_several_hostile_cases() -> None:
    for case in REJECTED:
        assert set(case) == {"name", "class", "replace", "code", "at"}, f"malformed case: {case}"
    for case in ACCEPTED:
        assert set(case) == {"name", "replace"}, f"malformed case: {case}"
    per_class = {c: sum(1 for case in REJECTED if case["class"] == c) for c in (1, 2, 7, 9)}
    assert min(per_class.values()) >= 5, per_class


@pytest.mark.parametrize("case", REJECTED, ids=[c["name"] for c in REJECTED])
def test_hostile_policy_is_refused_at_its_place(case: dict[str, Any], tmp_path: Path) -> None:
    code, diagnostics = _validate(_edited(case["replace"]), tmp_path)
    assert code == 4, diagnostics
    found = [(d["code"], f"{d['line']}:{d['column']}") for d in diagnostics]
    assert (case["code"], case["at"]) in found, found


@pytest.mark.parametrize("case", ACCEPTED, ids=[c["name"] for c in ACCEPTED])
def test_the_rules_are_no_wider_than_they_say(case: dict[str, Any], tmp_path: Path) -> None:
    code, diagnostics = _validate(_edited(case["replace"]), tmp_path)
    assert (code, [d["code"] for d in diagnostics if d["severity"] == "error"]) == (0, [])


# ---- class 1: the operator allow-list is explicit and complete -------------------------------

SYMBOLS = {
    "x": ex.Symbol("x", "input", ex.NUMBER, True),
    "n": ex.Symbol("n", "input", ex.NUMBER, False, bounds=(-3.0, 3.0)),
    "b": ex.Symbol("b", "input", ex.BOOL, True),
    "k": ex.Symbol("k", "param", ex.NUMBER, False, bounds=(0.5, 2.0)),
    **BUILTIN_SYMBOLS,
}
SCOPE = ex.Scope(SYMBOLS, "metric", ("pass", "loss"))
TABLES: list[tuple[type, dict[Any, str]]] = [
    (ast.operator, ex.BINARY_OPERATORS), (ast.unaryop, ex.UNARY_OPERATORS),
    (ast.cmpop, ex.COMPARISON_OPERATORS), (ast.boolop, ex.BOOLEAN_OPERATORS),
]


def _written(op: type) -> str:
    """``op`` between two operands, as Python writes it."""
    if issubclass(op, ast.operator):
        return ast.unparse(ast.BinOp(ast.Name("x"), op(), ast.Constant(2)))
    if issubclass(op, ast.unaryop):
        return ast.unparse(ast.UnaryOp(op(), ast.Name("x")))
    if issubclass(op, ast.cmpop):
        return ast.unparse(ast.Compare(ast.Name("x"), [op()], [ast.Constant(2)]))
    return ast.unparse(ast.BoolOp(op(), [ast.Name("b"), ast.Name("b")]))


@pytest.mark.parametrize("base, allowed", TABLES, ids=[t[0].__name__ for t in TABLES])
def test_every_python_operator_is_allowed_or_refused_with_a_hint(base: type, allowed: dict[Any, str]) -> None:
    for op in base.__subclasses__():
        text = _written(op)
        if op in allowed:
            assert allowed[op] in text
            continue
        with pytest.raises(ex.ExpressionError) as err:
            ex.check_expression(text, SCOPE)
        assert err.value.code == "disallowed-operator", text
        assert err.value.hint and err.value.column == text.index(err.value.message.split("'")[1]) + 1, text


@pytest.mark.parametrize("text, hint", [
    ("x is 1", "use == instead of is"), ("x is not 1", "use != instead of is not"),
    ("b & b", "use and/or instead of &/|"), ("b | b", "use and/or instead of &/|"),
])
def test_the_hint_says_what_to_write_instead(text: str, hint: str) -> None:
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression(text, SCOPE)
    assert (err.value.code, hint in (err.value.hint or "")) == ("disallowed-operator", True)


def test_a_column_counts_characters_and_the_blanks_before_the_text() -> None:
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression("  '利润' == '亏损' or x @ 2 > 1", SCOPE)
    assert err.value.column == len("  '利润' == '亏损' or x @")


# ---- class 2: powers ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, code", [
    ("x ** x", "power-unbounded"), ("x ** (1 / 2)", "power-unbounded"), ("x ** abs(n)", "power-unbounded"),
    ("x ** null", "power-unbounded"), ("x ** 2 ** 2", "power-chained"), ("(x ** 2) ** 2", "power-chained"),
    ("x ** -(n ** 2)", "power-chained"), (f"x ** {ex.MAX_EXPONENT + 1}", "literal-too-large"),
    (f"x ** -{ex.MAX_EXPONENT}.5", "literal-too-large"),
])
def test_a_power_the_checker_cannot_bound_is_refused(text: str, code: str) -> None:
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression(text, SCOPE)
    assert err.value.code == code, err.value.message


@pytest.mark.parametrize("text", ["x ** n", "x ** -n", "x ** k", f"x ** {ex.MAX_EXPONENT}", "(x + 1) ** 2 * x ** 2"])
def test_a_power_with_a_proved_bound_is_accepted(text: str) -> None:
    assert ex.check_expression(text, SCOPE).type == ex.NUMBER


# ---- every accepted expression evaluates; every refused one is an ExpressionError -------------

_OPS = [*ex.BINARY_OPERATORS.values(), "&", "|", "^", "<<", ">>", "@"]
_CMP = [*ex.COMPARISON_OPERATORS.values(), "is", "is not"]
_LEAVES = st.sampled_from(["x", "n", "k", "0", "1", "2", "-3", "0.5", "100", "101", "null", "1e15"])


def _num(depth: int) -> st.SearchStrategy[str]:
    if depth == 0:
        return _LEAVES
    sub = _num(depth - 1)
    return st.one_of(
        _LEAVES,
        st.tuples(sub, st.sampled_from(_OPS), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["-", "+", "~", "not "]), sub).map(lambda t: f"{t[0]}({t[1]})"),
    )


def _cond(depth: int) -> st.SearchStrategy[str]:
    num = _num(depth)
    comparison = st.tuples(num, st.sampled_from(_CMP), num).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
    return st.one_of(comparison, st.tuples(comparison, st.sampled_from(["and", "or", "&", "|"]), comparison)
                     .map(lambda t: f"{t[0]} {t[1]} {t[2]}"))


VALUES = st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 1e15, -1e15, 1e-300]),
                   st.floats(-1e6, 1e6, allow_nan=False))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(_num(3), _cond(2)), VALUES, st.sampled_from([-3.0, 0.0, 2.0, 3.0]), st.booleans())
def test_the_checker_refuses_or_the_expression_evaluates(text: str, x: float | None, n: float, b: bool) -> None:
    try:
        checked = ex.check_expression(text, SCOPE)
    except ex.ExpressionError as err:
        assert err.code and err.message
        return
    result = ex.compile_standalone(checked, ("pass", "loss"))({"x": x, "n": n, "k": 2.0, "b": b})
    assert result is None or type(result) in (float, bool)


# ---- class 9: '#' ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, column", [
    ("x > 1 # old: 2", 7), ("x > 1  #", 8), ("(x > 1 # and x < 5)", 8), ("  x # y", 5), ("x > 1\n# and x < 5", 7),
])
def test_a_hash_outside_a_string_is_an_error_at_its_column(text: str, column: int) -> None:
    with pytest.raises(ex.ExpressionError) as err:
        ex.check_expression(text, SCOPE)
    assert (err.value.code, err.value.column) == ("expression-comment", column)


def test_a_hash_inside_a_string_literal_is_text() -> None:
    fn = ex.compile_standalone(ex.check_expression("'#1' != '#' and '#' == '#'", SCOPE))
    assert fn({}) is True


# ---- class 7: reserved names ------------------------------------------------------------------

def test_reserved_names_cover_keywords_functions_and_built_ins() -> None:
    words = {"null", "true", "false"}
    assert set(keyword.kwlist) | set(ex.FUNCTIONS) | set(ex.AGGREGATIONS) | set(BUILTIN_SYMBOLS) | words \
        == set(RESERVED_NAMES)
    assert "match" not in RESERVED_NAMES  # a soft keyword parses as a name


# ---- the function reference and the security page -------------------------------------------

def test_the_function_reference_states_the_operator_rules() -> None:
    out = CliRunner().invoke(main, ["functions"], catch_exceptions=False).stdout
    assert f"[-{ex.MAX_EXPONENT}, {ex.MAX_EXPONENT}]" in out and "no chained powers" in out
    for refused in ("&", "|", "^", "~", "<<", ">>", "@", "is not", "'#'"):
        assert refused in out.split("refused", 1)[1]


_LIMIT_ROW = re.compile(r"^\| [^|]+ \| `(?P<module>\w+)\.(?P<name>[A-Z_]+)` \| (?P<value>[^|]+?) \|", re.M)
_MODULES = {"expressions": ex, "loader": loader, "inputs": inputs, "evaluate": evaluate}


def test_the_security_page_documents_every_limit_with_its_value() -> None:
    page = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    rows = {(m["module"], m["name"]): m["value"] for m in _LIMIT_ROW.finditer(page)}
    for (module, name), shown in rows.items():
        value = getattr(_MODULES[module], name)
        number = float(shown.split()[0].replace(",", ""))
        assert number == value, f"docs/security.md says {module}.{name} is {shown}; the code says {value}"
    constants = {(m, n) for m, mod in _MODULES.items() for n in vars(mod) if n.startswith("MAX_")}
    assert constants == set(rows), f"undocumented or stale limits: {constants ^ set(rows)}"
    assert "../shared" not in page
