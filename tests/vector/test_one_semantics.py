"""One semantics, two evaluators: the vector evaluator agrees with the row evaluator on every field."""

from __future__ import annotations

import ast
import datetime as dt
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.language import expressions as ex
from policy_engine.policy.compiler import BUILTIN_SYMBOLS
from policy_engine.portfolio.synthetic import generate_clients
from policy_engine.portfolio.vector import Col, VectorEval, columns_from_records, dates_to_days, evaluate_columns
from policy_engine.review.tester import apply_patch

from ..conftest import SAMPLES, sample

EDGE_NUMBERS = st.one_of(
    st.none(),
    st.sampled_from([0, 0.0, -0.0, 1, -1, 7, 8, 90, 91, 270, 271, 360, 361, 0.1, 0.1001, 0.2, 0.2001, 1.2,
                     1.15, -0.2, 1e-300, 5e-324, 1e15, -1e15, 999999999999999.9]),
    st.integers(-10**15, 10**15),
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False),
)
FIELDS = {
    "loan.days_past_due": st.one_of(st.none(), st.integers(0, 500)),
    "loan.balance": EDGE_NUMBERS, "loan.collateral_value": EDGE_NUMBERS,
    "loan.collateral_value_at_origination": EDGE_NUMBERS, "loan.rate": EDGE_NUMBERS,
    "exposure.nonperforming_share_at_bank": st.sampled_from([0, 0.1, 0.1000001, 0.5, 1]),
    "exposure.overdue_90_share_all_banks": st.sampled_from([0, 0.2, 0.2000001, 1]),
    "internal_rating": st.integers(1, 10), "industry": st.sampled_from(
        ["manufacturing", "trade", "technology", "construction", "energy", "other"]),
    "history.previous_grade": st.sampled_from(["pass", "special_mention", "substandard", "doubtful", "loss"]),
    "history.consecutive_normal_payments": st.one_of(st.none(), st.integers(0, 5)),
    "history.arrears_repaid": st.one_of(st.none(), st.booleans()),
    "restructuring.restructured": st.one_of(st.none(), st.booleans()),
    "restructuring.observation_start": st.one_of(
        st.none(), st.dates(dt.date(2023, 1, 1), dt.date(2026, 1, 1)).map(str)),
    "restructuring.periods_repaid": st.one_of(st.none(), st.integers(0, 4)),
    "events.litigation": st.booleans(), "events.assets_seized": st.booleans(),
    "key_client": st.booleans(), "exporter": st.one_of(st.none(), st.booleans()),
}
for k in range(4):
    for f in ("revenue", "net_income", "ebitda", "debt_service", "current_assets", "current_liabilities",
              "inventory", "equity", "total_assets", "total_liabilities", "operating_cash_flow", "receivables"):
        FIELDS[f"financials[{k}].{f}"] = EDGE_NUMBERS

BASES = [sample("02"), sample("03"), sample("13"), sample("19"), sample("01")]


@st.composite
def clients(draw: Any) -> dict[str, Any]:
    base = draw(st.sampled_from(BASES))
    keys = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=8, unique=True))
    patch = {k: draw(FIELDS[k]) for k in keys if not (k.startswith("financials[") and not base["financials"])}
    client = apply_patch(base, patch)
    if draw(st.booleans()) and client["financials"]:
        client["financials"] = client["financials"][draw(st.integers(0, len(client["financials"]))):]
    return client


def _compare(decider: Decider, records: list[dict[str, Any]]) -> int:
    policy = decider.policy
    rows, days, accepted = [], [], []
    for r in records:
        try:
            _, day, inputs = decider.read(r)
        except InputError:
            continue
        rows.append(inputs)
        days.append(day)
        accepted.append(r)
    if not rows:
        return 0
    cols = columns_from_records(policy, rows)
    seg = np.array([r[decider._segment_index] for r in rows], dtype=object)
    res = evaluate_columns(policy, len(rows), cols, seg, dates_to_days(days))
    for i, (inputs, day) in enumerate(zip(rows, days, strict=True)):
        expected = policy.row_function(inputs, policy.params_for(inputs[decider._segment_index]), day)
        got = res.row(i)
        diff = [k for k, (a, b) in enumerate(zip(expected, got, strict=True)) if a != b]
        assert got == expected, (accepted[i]["client_id"], diff)
        # and the records built from both are the same record
        a = decider.build_record("c", day, inputs, expected, "h")
        b = decider.build_record("c", day, inputs, got, "h")
        for k in ("decision_id", "evaluated_at"):
            a.pop(k), b.pop(k)
        assert a == b
    return len(rows)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(clients(), min_size=50, max_size=50))
def test_row_and_vector_agree_on_generated_clients(decider: Decider, batch: list[dict[str, Any]]) -> None:
    # 50 examples x 50 clients = 2,500 generated clients per run, edge values included.
    _compare(decider, batch)


def test_row_and_vector_agree_on_samples_and_a_synthetic_portfolio(decider: Decider) -> None:
    import json

    records = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES]
    records += list(generate_clients(2000, seed=21))
    assert _compare(decider, records) == len(records)


# ---- small generated expressions: the language itself, both back-ends ----------------------------

GRADES = ("pass", "special_mention", "substandard", "doubtful", "loss")
SYMBOLS = {
    "a": ex.Symbol("a", "input", ex.NUMBER, True), "b": ex.Symbol("b", "input", ex.NUMBER, True),
    "c": ex.Symbol("c", "input", ex.NUMBER, False), "p": ex.Symbol("p", "input", ex.BOOL, True),
    "q": ex.Symbol("q", "input", ex.BOOL, True), "s": ex.Symbol("s", "input", ex.SERIES_NUMBER, True),
    "d": ex.Symbol("d", "input", ex.DATE, True), **BUILTIN_SYMBOLS,
}
SCOPE = ex.Scope(SYMBOLS, "metric", GRADES)
NUM_LEAVES = st.sampled_from(["a", "b", "c", "0", "1", "2.5", "-3", "0.1", "100", "null"])


def _infix(t: tuple[str, str, str]) -> str:
    return f"({t[0]} {t[1]} {t[2]})"


def num_expr(depth: int) -> st.SearchStrategy[str]:
    if depth <= 0:
        return NUM_LEAVES
    sub = num_expr(depth - 1)
    cond = bool_expr(depth - 1)
    return st.one_of(
        NUM_LEAVES,
        st.tuples(sub, st.sampled_from(["+", "-", "*", "/", "//", "%", "**"]), sub).map(_infix),
        sub.map(lambda x: f"-({x})"),
        st.tuples(sub, sub).map(lambda t: f"ratio({t[0]}, {t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"change({t[0]}, {t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"min({t[0]}, {t[1]})"),
        st.tuples(sub, sub, sub).map(lambda t: f"max({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(sub, sub).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        sub.map(lambda x: f"abs({x})"),
        st.tuples(sub, cond, sub).map(lambda t: f"({t[0]} if {t[1]} else {t[2]})"),
        st.sampled_from(["last(s)", "first(s)", "sum(s)", "avg(s)", "count(s)", "sum_last(s, 2)",
                         "avg_last(s, 3)", "series_min(s)", "series_max(s)", "pct_change(s, 1)",
                         "sum(tail(s, 2))", "streak(s, '<', 0)", "streak(s, '>=', a)",
                         "days_between(d, date('2025-06-30'))", "months_between(d, date('2025-06-30'))"]),
    )


def bool_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["p", "q", "True", "False", "is_null(a)", "a > 0", "b <= c", "0 < a < 10"])
    if depth <= 0:
        return leaves
    sub = bool_expr(depth - 1)
    num = num_expr(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        sub.map(lambda x: f"not ({x})"),
        st.tuples(num, st.sampled_from(["<", "<=", ">", ">=", "==", "!="]), num).map(_infix),
        num.map(lambda x: f"({x}) in [0, 1, 2.5]"),
    )


VALUES = st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.5, 1e-300, 1e15, -7.0, 3.0]),
                   st.floats(-1e6, 1e6, allow_nan=False))
ROW = st.fixed_dictionaries({
    "a": VALUES, "b": VALUES, "c": VALUES.map(lambda v: 1.0 if v is None else v),
    "p": st.one_of(st.none(), st.booleans()), "q": st.one_of(st.none(), st.booleans()),
    "s": st.lists(VALUES, max_size=5),
    # Centuries apart too: the vector path converts a short span of dates through a table, a long one directly.
    "d": st.one_of(st.none(), st.dates(dt.date(2020, 1, 1), dt.date(2027, 1, 1)),
                   st.dates(dt.date(1600, 1, 1), dt.date(2400, 12, 31))),
})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(num_expr(3), bool_expr(3)), st.lists(ROW, min_size=20, max_size=20))
def test_generated_expressions_agree(source: str, rows: list[dict[str, Any]]) -> None:
    try:
        checked = ex.check_expression(source, SCOPE)
    except ex.ExpressionError:
        return  # e.g. comparing with a bare null: refused by both paths alike
    row_fn = ex.compile_standalone(checked, GRADES)
    n = len(rows)
    env: dict[str, Col] = {}
    for name in ("a", "b", "c"):
        env[name] = Col(np.array([np.nan if r[name] is None else r[name] for r in rows]),
                        np.array([r[name] is not None for r in rows]))
    for name in ("p", "q"):
        env[name] = Col(np.array([bool(r[name]) for r in rows]), np.array([r[name] is not None for r in rows]))
    width = max(len(r["s"]) for r in rows)
    data, valid, present = np.zeros((n, width)), np.zeros((n, width), bool), np.zeros((n, width), bool)
    for i, r in enumerate(rows):
        off = width - len(r["s"])
        for k, v in enumerate(r["s"]):
            present[i, off + k] = True
            valid[i, off + k] = v is not None
            data[i, off + k] = 0.0 if v is None else v
    env["s"] = Col(data, valid, present)
    env["d"] = Col(dates_to_days([r["d"] for r in rows]), np.array([r["d"] is not None for r in rows]))
    vec = VectorEval(n, env, GRADES).eval(checked)
    for i, r in enumerate(rows):
        expected = row_fn({k: r[k] for k in checked.refs})
        if expected is not None and checked.type == ex.NUMBER and not np.isfinite(expected):
            expected = None if not vec.valid[i] else expected  # overflow: both null or both +-inf
        if vec.valid[i]:
            got = vec.data[i]
            got = bool(got) if checked.type == ex.BOOL else float(got)
            assert expected is not None, (source, r)
            assert got == expected or (got != got and expected != expected), (source, r, got, expected)
        else:
            assert expected is None, (source, r, expected)


def test_tree_walk_happens_once_per_batch_not_per_row() -> None:
    # The vector evaluator visits each node once however many rows there are.
    checked = ex.check_expression("a + b * c", SCOPE)
    visits = []
    ve = VectorEval(1000, {n: Col(np.ones(1000), np.ones(1000, bool)) for n in "abc"}, GRADES)
    real = ve.node
    ve.node = lambda n: visits.append(type(n)) or real(n)  # type: ignore[method-assign]
    ve.eval(checked)
    assert len([v for v in visits if v is ast.Name]) == 3


def test_chunked_threaded_evaluation_equals_one_call(decider: Decider) -> None:
    from policy_engine.portfolio.vector import evaluate_chunks

    policy = decider.policy
    rows, days = [], []
    for c in generate_clients(700, seed=31):
        _, day, inputs = decider.read(c)
        rows.append(inputs)
        days.append(day)
    cols = columns_from_records(policy, rows)
    seg = np.array([r[decider._segment_index] for r in rows], dtype=object)
    whole = evaluate_columns(policy, len(rows), cols, seg, dates_to_days(days))
    parts = evaluate_chunks(policy, len(rows), cols, seg, dates_to_days(days), chunk=100, workers=2)
    assert [r for p in parts for r in (p.row(i) for i in range(p.n))] == [whole.row(i) for i in range(whole.n)]


def test_text_codes_from_the_table_give_the_results_of_hashing_the_text(decider: Decider, tmp_path: Any) -> None:
    """Text inputs read from a typed table carry their codes; comparisons and segments must not notice."""
    import dataclasses

    import pandas as pd

    from policy_engine.portfolio.batch import flatten, read_table
    from policy_engine.portfolio.frame import prepare

    rows = [flatten(c) for c in generate_clients(400, seed=5)]
    for i, r in enumerate(rows):  # grades compared by rules, missing ones, and every industry
        r["history.previous_grade"] = [None, "substandard", "doubtful", "pass"][i % 4]
    pd.DataFrame.from_records(rows).to_parquet(tmp_path / "t.parquet", index=False)
    prep = prepare(decider.policy, read_table(tmp_path / "t.parquet").frame, text=False)
    coded = [k for k, c in prep.inputs.items() if c.codes is not None]
    assert {"industry", "previous_grade"} <= set(coded)
    plain = {k: dataclasses.replace(c, codes=None) for k, c in prep.inputs.items()}
    a = evaluate_columns(decider.policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)
    b = evaluate_columns(decider.policy, len(prep.rows), plain, plain[decider.policy.segment_by].data,
                         prep.as_of_days)
    assert np.array_equal(a.g_rank, b.g_rank) and np.array_equal(a.score, b.score)
    for x, y in zip([*a.metrics, *a.floors, *a.warnings, *a.actions], [*b.metrics, *b.floors, *b.warnings,
                                                                       *b.actions], strict=True):
        assert np.array_equal(x.valid, y.valid) and np.array_equal(x.data[x.valid], y.data[y.valid])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)) | st.dates(dt.date(2024, 1, 1), dt.date(2026, 1, 1)),
                min_size=1, max_size=30))
def test_calendar_month_and_day_of_day_numbers_agree_with_python_dates(days: list[dt.date]) -> None:
    from policy_engine.portfolio.vector import _month_and_day, dates_to_days

    month, day = _month_and_day(dates_to_days(days))
    assert month.tolist() == [(d.year - 1970) * 12 + d.month - 1 for d in days]
    assert day.tolist() == [d.day - 1 for d in days]
