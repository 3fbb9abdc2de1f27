"""The loop form of the aggregations (functions._LOOPS) gives what their helpers give.

Where generated code stands in a statement list, an aggregation is a ``for`` statement written
ahead of the statement that reads it (no list, no helper, no comprehension frame), with the
element's fields read more than once hoisted to the top of the loop body. Here the same checked
expression is compiled both ways, the loops and the helper over a list or generator (the form
``test_aggregation_early_exit`` holds equal to the full-list definitions), and the two are compared
over every order of True, False and null, numbers, dates, nested aggregations and empty scopes.
"""

from __future__ import annotations

import ast
import datetime as dt
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.language import expressions as ex
from policy_engine.policy import scopes

GRADES = ("pass", "special_mention", "substandard")
PARENTS: dict[str, str | None] = {"item": None, "sub": "item"}
OWNER = {"c": "item", "k": "item", "x": "item", "n": "item", "d": "item", "s": "sub", "y": "sub"}
SYMBOLS = {
    "c": ex.Symbol("c", "input", ex.BOOL, True), "k": ex.Symbol("k", "input", ex.BOOL, False),
    "x": ex.Symbol("x", "input", ex.NUMBER, True), "n": ex.Symbol("n", "input", ex.NUMBER, False),
    "d": ex.Symbol("d", "input", ex.DATE, True), "s": ex.Symbol("s", "input", ex.BOOL, True),
    "y": ex.Symbol("y", "input", ex.NUMBER, True), "t": ex.Symbol("t", "param", ex.NUMBER, True),
}
SCOPE = scopes.view(SYMBOLS, OWNER, PARENTS, None, scopes.DEBTOR, "metric", GRADES, {})
LAYOUT = ex.ScopeLayout(owner=OWNER, parent=PARENTS)

# Each aggregation with a nullable and a never-null decisive argument, nested ones, and arguments
# that read a field several times (hoisted) or once (left in place).
EXPRESSIONS = [
    "count_where(item, c)", "count_where(item, k)", "count_where(item, True)",
    "count_where(item, c and x > t)", "count_where(item, k or x >= n)",
    "sum_where(item, x, c)", "sum_where(item, n, k)", "sum_where(item, x * n, c or k)",
    "share_where(item, x, c)", "share_where(item, n, k and x > n)",
    "any_of(item, c)", "any_of(item, k)", "any_of(item, c and x > n)",
    "all_of(item, c)", "all_of(item, k)", "all_of(item, c or x < n)",
    "min_of(item, x)", "min_of(item, n)", "max_of(item, x)", "max_of(item, n)",
    "max_of(item, d if c else date('1900-01-01'))", "min_of(item, x if x > n else n)",
    "first_date(item, d, c)", "first_date(item, d, k)", "first_date(item, d, d > date('2024-06-01'))",
    "last_of(item, x, c)", "last_of(item, n, k)", "last_of(item, d, c and d < date('2024-06-01'))",
    "max_where(item, x, c)", "max_where(item, n, k)", "min_where(item, d, c and d > date('2024-01-31'))",
    "min_where(item, x, k)", "max_where(item, d, k or x > n)", "max_where(item, sum_of(sub, y), c)",
    "min_where(item, x, any_of(sub, s))",
    "count_where(item, any_of(sub, s))", "sum_where(item, x, count_where(sub, s) > 1)",
    "any_of(item, c or all_of(sub, s or y > x))", "max_of(item, sum_of(sub, y))",
    "first_date(item, d, max_of(sub, y) > n)", "last_of(item, x, any_of(sub, s and y > t))",
    "count_where(item, k) + count_where(item, k)",
]
# An aggregation where it may not be evaluated (after a short-circuit, in a branch, the value of
# first_date at its hit) keeps its helper: what was not needed is still not computed.
LAZY = {
    "any_of(item, c or all_of(sub, s or y > x))": {"_agg_all_of"},
    "count_where(item, c) > 0 and any_of(item, k)": {"_agg_any_of"},
    "count_where(item, c) + count_where(item, k)": {"_agg_count_where"},  # read when the first is not null
    "count_where(item, c) if any_of(item, k) else count_where(item, k)": {"_agg_count_where"},
    "coalesce(max_of(item, x), min_of(item, x))": {"_agg_min_of"},
    "first_date(item, d, c) < first_date(item, d, k)": {"_agg_first_date"},
    "first_date(item, d if max_of(sub, y) > n else date('2024-06-01'), c)": {"_agg_max_of"},
}
EXPRESSIONS += list(LAZY)

BOOLS = st.sampled_from([True, False, None])
NUMBERS = st.one_of(st.none(), st.sampled_from([-2.0, 0.0, 0.5, 1.0, 3.0]))
DATES = st.one_of(st.none(), st.sampled_from([dt.date(2024, 1, 31), dt.date(2024, 6, 1), dt.date(2025, 3, 1)]))
SUBS = st.lists(st.fixed_dictionaries({"s": BOOLS, "y": NUMBERS}), max_size=3)
ITEMS = st.lists(st.fixed_dictionaries({"c": BOOLS, "k": st.booleans(), "x": NUMBERS,
                                        "n": st.sampled_from([-1.0, 0.0, 1.0, 2.0]), "d": DATES,
                                        "@sub": SUBS}), max_size=5)


def _compile(source: str, loops: bool) -> tuple[Callable[[dict[str, Any], Any], Any], ast.Module]:
    """``f(sc, t)`` computing the expression, its aggregations as loops (``loops``) or as helper calls."""
    checked = ex.check_expression(source, SCOPE)
    gen = ex.RowCodegen({"t": "t"}, "g_rank", {}, GRADES, layout=LAYOUT)
    body: list[ast.stmt] = []
    if loops:
        gen.sink = body
    body.append(ast.Return(value=gen.expression(checked)))
    args = ast.arguments(posonlyargs=[], args=[ast.arg(arg="sc"), ast.arg(arg="t")], kwonlyargs=[],
                         kw_defaults=[], defaults=[])
    extra: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
    module = ast.Module(body=[ast.FunctionDef(name="f", args=args, body=body, decorator_list=[], returns=None,
                                              **extra)], type_ignores=[])
    ex.locate(module)
    ns = ex.runtime_namespace(GRADES)
    ns.update(gen.table_globals())
    exec(compile(module, "<test>", "exec"), ns)
    return ns["f"], module


COMPILED = {s: (_compile(s, True), _compile(s, False)) for s in EXPRESSIONS}


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


@settings(max_examples=400, deadline=None, database=None)
@given(ITEMS, NUMBERS)
def test_the_loops_give_what_the_helpers_give(items: list[dict[str, Any]], t: Any) -> None:
    sc = {"item": items}
    for source, ((loop_fn, _), (helper_fn, _)) in COMPILED.items():
        got, want = loop_fn(sc, t), helper_fn(sc, t)
        assert _same(got, want), (source, items, t, got, want)


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_each_aggregation_is_a_loop_and_no_comprehension_but_sum_of(source: str) -> None:
    (_, loops), (_, helpers) = COMPILED[source]
    nodes = list(ast.walk(loops))
    assert any(isinstance(n, ast.For) for n in nodes)
    calls = {n.func.id for n in nodes if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    helpers_left = {c for c in calls if c.startswith("_agg_")} - {"_agg_sum_of", "_agg_reversed"}
    assert helpers_left == LAZY.get(source, set()), ast.unparse(loops)
    if "sum_of" not in source and source not in LAZY:
        assert not any(isinstance(n, ast.ListComp | ast.GeneratorExp) for n in nodes), ast.unparse(loops)
    assert not any(isinstance(n, ast.For) for n in ast.walk(helpers))


def test_a_field_read_twice_is_read_once_at_the_top_of_the_loop() -> None:
    (_, loops), _ = COMPILED["min_of(item, x if x > n else n)"]
    loop = next(n for n in ast.walk(loops) if isinstance(n, ast.For))
    reads = [n for s in loop.body for n in ast.walk(s) if isinstance(n, ast.Subscript)]
    assert sorted(ast.unparse(n) for n in reads) == ["_e0_item['n']", "_e0_item['x']"]
    assert all(isinstance(s, ast.Assign) for s in loop.body[:2])


def test_a_field_read_once_stays_where_it_may_not_be_reached() -> None:
    (_, loops), _ = COMPILED["any_of(item, c and x > n)"]
    loop = next(n for n in ast.walk(loops) if isinstance(n, ast.For))
    assert not any(isinstance(s, ast.Assign) and isinstance(s.value, ast.Subscript) for s in loop.body)


def test_the_loops_stop_where_the_helpers_stop() -> None:
    """first_date stops at the first hit: an element after it that has no field is never read."""
    (loop_fn, _), _ = COMPILED["first_date(item, d, k)"]
    hit = {"c": None, "k": True, "x": None, "n": 0.0, "d": dt.date(2024, 1, 31), "@sub": []}
    assert loop_fn({"item": [hit, {}]}, None) == dt.date(2024, 1, 31)
    (loop_fn, _), _ = COMPILED["any_of(item, k)"]
    assert loop_fn({"item": [hit, {}]}, None) is True


def test_a_literal_date_is_made_once() -> None:
    """date('...') is a global built when the code is generated, not parsed at each element."""
    (loop_fn, loops), _ = COMPILED["max_of(item, d if c else date('1900-01-01'))"]
    calls = {n.func.id for n in ast.walk(loops) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "_date" not in calls
    item = {"c": False, "k": True, "x": None, "n": 0.0, "d": None, "@sub": []}
    assert loop_fn({"item": [item]}, None) == dt.date(1900, 1, 1)


@pytest.mark.parametrize("op", ["and", "or"])
def test_kleene_logic_with_operands_never_null(op: str) -> None:
    """An operand the checker proved never null is tested without a temporary: same truth table."""
    symbols = {n: SYMBOLS[n] for n in ("c", "k", "s")}
    fn = ex.compile_standalone(ex.check_expression(f"c {op} k {op} s", ex.Scope(symbols, "metric", GRADES)))
    for c in (True, False, None):
        for k in (True, False):
            for s in (True, False, None):
                vals = [c, k, s]
                if op == "and":
                    want = False if False in vals else None if None in vals else True
                else:
                    want = True if True in vals else None if None in vals else False
                assert fn({"c": c, "k": k, "s": s}) is want, (c, k, s)
