"""Typed expression generators and the two-evaluator oracle (issue 19, issue 14 class 8).

Shared by the bounded fuzz tests (``tests/fuzz``) and the long run (``tools/fuzz_expressions.py``).
An expression is drawn with a declared type over every function and operator of the language,
planted in a small policy (a metric, a warning condition, an action condition and a message
placeholder), and the policy is compiled. The checker may reject it: then every error must be
located (line, column, stable code). Or it accepts it: then every drawn client gets the same
decision record from the row evaluator (``decide``) and from the vector evaluator (the columns a
batch builds), and no exception escapes either.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.policy.compiler import CompiledPolicy, check_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.portfolio.vector import columns_from_records, dates_to_days, evaluate_columns

GRADES = ("pass", "special_mention", "substandard", "doubtful", "loss")
AS_OF = "2025-06-30"

POLICY = """\
id: fuzz
version: 1.0.0
title: {zh: 模糊测试, en: Fuzz}
status: active
owner: Tests
effective_from: 2024-01-01
changelog:
  - {version: 1.0.0, date: 2024-01-01, changes: [first]}
segments:
  by: industry
  values: [manufacturing, trade]
inputs:
  industry: {from: industry, type: string, required: true, enum: [manufacturing, trade]}
  x: {from: x, type: number}
  y: {from: y, type: number}
  k: {from: k, type: integer, required: true}
  flag: {from: flag, type: boolean}
  name: {from: name, type: string}
  kind: {from: kind, type: string, enum: [alpha, beta, gamma]}
  prev: {from: prev, type: grade}
  d1: {from: d1, type: date}
  d2: {from: d2, type: date}
  q: {from: "financials[*].q", type: number}
  pe: {from: "financials[*].pe", type: date}
  r: {from: r, type: integer, min: 1, max: 4}
parameters:
  pn: {by_segment: {default: 1.5, trade: -2}}
  pi: {value: 3}
  ps: {by_segment: {default: alpha, trade: beta}}
  pb: {value: true}
  tk: {table: {key: kind, values: {alpha: 1, beta: 2.5, gamma: -1}}}
  tr: {table: {key: r, values: {1: 0.1, 2: 0.2, 3: 0.35, 4: 1}}}
  ti: {table: {key: x, interpolate: linear, values: {0: 0, 0.5: 0.2, 1: 0.35, 10: 1}}}
  tg: {table: {key: prev, values: {pass: 0, special_mention: 1, substandard: 2, doubtful: 3, loss: 4}}}
  t2:
    table:
      keys: [kind, flag]
      values: {alpha: {true: a1, false: a0}, beta: {true: b1, false: b0}, gamma: {true: alpha, false: Zed}}
metrics:
  base: {expr: "coalesce(x, 0) + pi + pn"}
  fz: {expr: @METRIC@}
scorecard:
  factors:
    - id: f
      metric: base
      missing_points: -5
      bands:
        - {max: 1, points: -5}
        - {min: 1, points: 5}
    - id: ff
      expr: @FACTOR@
      weight: 0.5
      missing_points: -5
      bands:
        - {max: 1, points: -5}
        - {min: 1, points: 5}
  grades:
    - {max: 0, grade: substandard}
    - {min: 0, grade: pass}
classification:
  scale:
    - {id: pass, zh: 正常, en: Pass}
    - {id: special_mention, zh: 关注, en: Special mention}
    - {id: substandard, zh: 次级, en: Substandard, nonperforming: true}
    - {id: doubtful, zh: 可疑, en: Doubtful, nonperforming: true}
    - {id: loss, zh: 损失, en: Loss, nonperforming: true}
  rules:
    - id: late
      when: k > 90
      floor: doubtful
      source: test
warnings:
  - id: other
    when: flag
    severity: low
    category: liquidity
    message: {zh: 标志, en: flag}
  - id: fzw
    when: @WARNING@
    severity: high
    category: liquidity
    message: {zh: @MESSAGE@, en: @MESSAGE@}
actions:
  - id: act
    action: review_meeting
    when: @ACTION@
    params: {cadence: monthly}
    priority: 1
    reason: {zh: 开会, en: Meet}
"""

# ------------------------------------------------------------------ expressions

NUMBER, BOOL, STRING, GRADE, DATE = "number", "bool", "string", "grade", "date"

_NUM_LEAVES = ["x", "y", "k", "pn", "pi", "base", "score", "0", "1", "2.5", "0.1", "-3", "100", "1e6", "null",
               "lookup(tk, kind)", "lookup(tr, r)", "lookup(ti, x)", "lookup(tg, prev)", "r"]
_BOOL_LEAVES = ["flag", "pb", "True", "False", "null", "grade_at_least('substandard')", "fired('other')"]
_STR_LEAVES = ["name", "kind", "ps", "'alpha'", "'a'", "''", "'Zed'", "null", "lookup(t2, kind, flag)"]
_GRADE_LEAVES = ["prev", "grade", "'pass'", "'doubtful'", "null"]
_DATE_LEAVES = ["d1", "d2", "as_of", "date('2025-01-31')", "date('2024-02-29')", "null"]
_ANY_LEAVES = _NUM_LEAVES + _BOOL_LEAVES + _STR_LEAVES + _GRADE_LEAVES + _DATE_LEAVES + ["q", "pe"]
# Windows and counts, valid and not: the checker must refuse what has no meaning (0.5 periods).
_WINDOWS = ["1", "2", "3", "1", "2", "0", "0.5", "2.0", "401", "True"]
_STREAK_OPS = ["'<'", "'<='", "'>'", "'>='", "'=='", "'!='", "'~'"]
_ARITH = ["+", "-", "*", "/", "//", "%", "**"]
_CMP = ["<", "<=", ">", ">=", "==", "!="]
_DIGITS = ["0", "2", "10", "11", "0.5"]
# Months for add_months: whole and not, signed, at and past the limit, computed.
_MONTHS = ["1", "-1", "0", "13", "-25", "0.5", "1200", "-1201", "k", "pi", "pn", "x", "null"]


def _call(name: str) -> Callable[[tuple[str, ...]], str]:
    return lambda args: f"{name}({', '.join(args)})"


def _infix(op: str) -> Callable[[tuple[str, str]], str]:
    return lambda t: f"({t[0]} {op} {t[1]})"


def _if(t: tuple[str, str, str]) -> str:
    return f"({t[0]} if {t[1]} else {t[2]})"


def any_expr(depth: int) -> st.SearchStrategy[str]:
    """An operand of any type: wrong-typed mixes must be refused, never crash."""
    if depth <= 0:
        return st.sampled_from(_ANY_LEAVES)
    return st.one_of(num_expr(depth), bool_expr(depth), str_expr(depth), grade_expr(depth), date_expr(depth),
                     st.sampled_from(["q", "pe", "tail(q, 2)"]))


def num_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(_NUM_LEAVES)
    if depth <= 0:
        return leaves
    n = num_expr(depth - 1)
    b = bool_expr(depth - 1)
    dd = date_expr(depth - 1)
    window = st.sampled_from(_WINDOWS)
    series = st.sampled_from(["q", "q", "tail(q, 2)", "tail(q, 1)", "pe", "x"])
    return st.one_of(
        leaves,
        st.tuples(n, st.sampled_from(_ARITH), n).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(n, st.sampled_from(_ARITH), any_expr(0)).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        n.map(lambda e: f"-({e})"), n.map(lambda e: f"+{e}"),
        n.map(lambda e: f"abs({e})"), n.map(lambda e: f"round({e})"),
        st.tuples(n, st.sampled_from(_DIGITS)).map(_call("round")),
        st.tuples(n, n).map(_call("min")), st.tuples(n, n, n).map(_call("max")),
        st.tuples(n, n).map(_call("coalesce")), st.tuples(n, n).map(_call("ratio")),
        st.tuples(n, n).map(_call("change")),
        st.tuples(st.sampled_from(["last", "first", "sum", "avg", "count", "series_min", "series_max"]),
                  series).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["sum_last", "avg_last", "pct_change"]), series, window).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["sum", "avg", "last", "count"]), window).map(lambda t: f"{t[0]}(tail(q, {t[1]}))"),
        st.tuples(series, st.sampled_from(_STREAK_OPS), n).map(lambda t: f"streak({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(st.sampled_from(["lag", "diff"]), series, window).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(series, window, st.sampled_from(_STREAK_OPS), n).map(
            lambda t: f"count_last({t[0]}, {t[1]}, {t[2]}, {t[3]})"),
        st.tuples(dd, dd).map(_call("days_between")), st.tuples(dd, dd).map(_call("months_between")),
        st.one_of(grade_expr(depth - 1), str_expr(0)).map(lambda e: f"grade_rank({e})"),
        st.tuples(n, b, n).map(_if),
    )


def bool_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(st.sampled_from(_BOOL_LEAVES), any_expr(0).map(lambda e: f"is_null({e})"))
    if depth <= 0:
        return leaves
    b = bool_expr(depth - 1)
    n = num_expr(depth - 1)
    s = str_expr(depth - 1)
    g = grade_expr(depth - 1)
    dd = date_expr(depth - 1)
    cmp = st.sampled_from(_CMP)
    return st.one_of(
        leaves,
        st.tuples(b, st.sampled_from(["and", "or"]), b).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(b, b, b).map(lambda t: f"({t[0]} or {t[1]} and {t[2]})"),
        b.map(lambda e: f"(not {e})"),
        st.tuples(n, cmp, n).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(n, cmp, n, cmp, n).map(lambda t: f"({t[0]} {t[1]} {t[2]} {t[3]} {t[4]})"),
        st.tuples(s, cmp, s).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(g, st.sampled_from(["==", "!=", "<"]), g).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(dd, cmp, dd).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(b, st.sampled_from(["==", "!="]), b).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(n, st.sampled_from(["in", "not in"]), st.sampled_from(["[0, 1, 2.5]", "[]", "[-3]"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(s, st.sampled_from(["in", "not in"]), st.sampled_from(["['alpha', 'a']", "[]", "['']"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(g, st.sampled_from(["in", "not in"]), st.sampled_from(["['pass', 'loss']", "['bogus']"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(any_expr(0), st.sampled_from(["in", "not in"]), st.sampled_from(["[]", "[1]", "['a']"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(b, b, b).map(_if),
        st.tuples(b, b).map(_call("coalesce")),
    )


def str_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(_STR_LEAVES)
    if depth <= 0:
        return leaves
    s = str_expr(depth - 1)
    return st.one_of(leaves, st.tuples(s, bool_expr(depth - 1), s).map(_if), st.tuples(s, s).map(_call("coalesce")))


def grade_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(_GRADE_LEAVES)
    if depth <= 0:
        return leaves
    g = grade_expr(depth - 1)
    return st.one_of(leaves, st.tuples(g, bool_expr(depth - 1), st.one_of(g, str_expr(0))).map(_if),
                     st.tuples(g, g).map(_call("coalesce")))


def date_expr(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(st.sampled_from(_DATE_LEAVES), st.sampled_from(["last(pe)", "first(pe)"]))
    if depth <= 0:
        return leaves
    dd = date_expr(depth - 1)
    months = st.one_of(st.sampled_from(_MONTHS), num_expr(depth - 1))
    return st.one_of(leaves, st.tuples(dd, bool_expr(depth - 1), dd).map(_if),
                     st.tuples(dd, months).map(_call("add_months")),
                     st.tuples(st.sampled_from(["pe", "tail(pe, 2)", "q"]), st.sampled_from(_WINDOWS)).map(
                         _call("lag")),
                     st.tuples(dd, dd).map(_call("coalesce")), st.tuples(dd, dd).map(_call("min")),
                     st.tuples(dd, dd).map(_call("max")))


def typed_expressions(depth: int = 3) -> st.SearchStrategy[tuple[str, str]]:
    """(declared type, expression text) over every function and operator."""
    return st.one_of(
        st.tuples(st.just(NUMBER), num_expr(depth)), st.tuples(st.just(BOOL), bool_expr(depth)),
        st.tuples(st.just(STRING), str_expr(depth)), st.tuples(st.just(GRADE), grade_expr(depth)),
        st.tuples(st.just(DATE), date_expr(depth)),
    )


_LATE = re.compile(r"\b(grade_at_least|fired|grade|score)\b")
_FIRED = re.compile(r"\bfired\b")


def plant(kind: str, expr: str, message: str = "{fz}") -> str:
    """The policy text with ``expr`` as metric ``fz``, and in the conditions its type allows."""
    late = bool(_LATE.search(expr))  # names known only after classification: not in a metric
    metric = "null" if late else expr
    if kind == BOOL:
        warning = "flag" if _FIRED.search(expr) else expr
        action = expr
    elif kind == NUMBER:
        warning = f"({expr}) >= pn"
        action = "fired('fzw') or is_null(fz)"
    elif kind == DATE:
        warning = f"({expr}) < as_of"
        action = "not is_null(fz)"
    else:
        warning = f"is_null({expr})"
        action = "not is_null(fz)"
    factor = "fz" if kind == NUMBER else "base"  # a number is also scored: bands over it, null -> missing points
    parts = {"METRIC": metric, "FACTOR": factor, "WARNING": warning, "ACTION": action, "MESSAGE": message}
    text = POLICY
    for key, value in parts.items():
        text = text.replace(f"@{key}@", json.dumps(value))
    return text


MESSAGES = st.sampled_from(["{fz}", "value {fz}", "{fz:.2f} {fz:pct}", "{fz:d}", "{fz:,.0f} {x}", "{k:d}",
                            "{pi:d} {pn:.1f}"])

# ---------------------------------------------------------------------- clients

NUMBERS = st.one_of(
    st.none(), st.sampled_from([0, 0.0, -0.0, 1, -1, 2, 2.5, -3, 0.1, 7, 91, 1e15, -1e15, 1e-300, 100]),
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False))
DATES = st.one_of(st.none(), st.dates(dt.date(2020, 1, 1), dt.date(2027, 12, 31)),
                  st.dates(dt.date(1900, 1, 1), dt.date(2300, 12, 31))).map(lambda d: None if d is None else str(d))
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "x": NUMBERS, "y": NUMBERS, "flag": st.one_of(st.none(), st.booleans()),
    "name": st.one_of(st.none(), st.sampled_from(["", "a", "alpha", "Zed", "pass", "é", "b"])),
    "kind": st.one_of(st.none(), st.sampled_from(["alpha", "beta", "gamma"])),
    "prev": st.one_of(st.none(), st.sampled_from(GRADES)), "d1": DATES, "d2": DATES,
    "r": st.one_of(st.none(), st.integers(1, 4)),
}
PERIOD = st.fixed_dictionaries({}, optional={"q": NUMBERS, "pe": DATES})


@st.composite
def clients(draw: Any, cid: str = "c") -> dict[str, Any]:
    record: dict[str, Any] = {"client_id": cid, "as_of": AS_OF,
                              "industry": draw(st.sampled_from(["manufacturing", "trade"])),
                              "k": draw(st.integers(0, 200))}
    for name, strategy in FIELDS.items():
        if draw(st.integers(0, 5)):  # sometimes absent, sometimes null, mostly a value
            record[name] = draw(strategy)
    record["financials"] = draw(st.lists(PERIOD, max_size=5))
    return record


def client_batches(size: int = 12) -> st.SearchStrategy[list[dict[str, Any]]]:
    return st.lists(clients(), min_size=size, max_size=size).map(
        lambda cs: [{**c, "client_id": f"c{i}"} for i, c in enumerate(cs)])


# ----------------------------------------------------------------------- oracle


@dataclass
class Finding:
    """A disagreement or an escaped exception, with what reproduces it."""

    kind: str  # exception | disagreement | unlocated | unexplained | acceptance (decide and batch differ)
    expr: str
    policy_text: str
    detail: str
    client: dict[str, Any] | None = None
    row: Any = None
    vector: Any = None


@dataclass
class Outcome:
    rejected: list[tuple[str, int | None, int | None]] = field(default_factory=list)  # (code, line, column)
    compared: int = 0  # clients decided on the row and the vector path
    table_compared: int = 0  # ... and on the table path
    findings: list[Finding] = field(default_factory=list)


def _without_id(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("decision_id", "evaluated_at")}


def run_one(kind: str, expr: str, message: str, records: list[dict[str, Any]], table: bool = False) -> Outcome:
    """Plant ``expr``, compile, and decide ``records`` on both paths; never raises.

    ``table`` adds a third path: the records flattened into a typed table and read as ``batch`` reads
    it (its own column checks), decided by the vector evaluator.
    """
    out = Outcome()
    text = plant(kind, expr, message)
    try:
        diags, policy = check_document(load_yaml_text(text, "fuzz.yaml"))
    except Exception as exc:  # the finding is that it escaped
        out.findings.append(Finding("exception", expr, text, f"compile: {type(exc).__name__}: {exc}"))
        return out
    errors = [d for d in diags if d.severity == "error"]
    if policy is None or errors:
        for d in errors:
            out.rejected.append((d.code, d.line, d.column))
            if d.line is None or d.column is None or not d.code:
                out.findings.append(Finding("unlocated", expr, text, f"{d.code}: {d.message} [{d.path}]"))
        return out
    try:
        rows = _compare(policy, expr, text, records, out)
    except Exception as exc:
        out.findings.append(Finding("exception", expr, text, f"vector: {type(exc).__name__}: {exc}"))
        return out
    if table:
        try:
            _compare_table(policy, expr, text, records, rows, out)
        except Exception as exc:
            out.findings.append(Finding("exception", expr, text, f"table: {type(exc).__name__}: {exc}"))
    return out


def _first_failing(run: Callable[[list[Any]], Any], items: list[Any]) -> Any:
    """The first item that fails alone: a batch-level exception reproduced with one client."""
    for item in items:
        try:
            run([item])
        except Exception:  # the one we look for
            return item
    return None


def _compare_table(policy: CompiledPolicy, expr: str, text: str, records: list[dict[str, Any]],
                   rows: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]] | None], out: Outcome) -> None:
    import pandas as pd

    from policy_engine.portfolio.batch import _python_input, flatten
    from policy_engine.portfolio.frame import prepare


    def batch(part: list[dict[str, Any]]) -> Any:
        prep = prepare(policy, pd.DataFrame.from_records([flatten(r) for r in part]), text=False)
        return prep, evaluate_columns(policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)

    try:
        prep, res = batch(records)
    except Exception as exc:
        out.findings.append(Finding("exception", expr, text, f"table: {type(exc).__name__}: {exc}",
                                    _first_failing(batch, records)))
        return
    decided = set()
    for i, pos in enumerate(prep.rows):
        r = records[int(pos)]
        decided.add(r["client_id"])
        if r["client_id"] not in rows:
            out.findings.append(Finding("acceptance", expr, text, "batch decides a client decide rejects", r))
            continue
        row = rows[r["client_id"]]
        if row is None:
            continue
        want, want_inputs = row
        out.table_compared += 1
        got = res.row(i)
        inputs = tuple(_python_input(spec, prep.inputs[spec.name], i) for spec in policy.inputs)
        if got != want:
            diff = [k for k, (a, b) in enumerate(zip(want, got, strict=True)) if a != b]
            out.findings.append(Finding("disagreement", expr, text, f"table path: result parts differ: {diff}", r,
                                        want, got))
        elif inputs != want_inputs:
            out.findings.append(Finding("disagreement", expr, text, "table path: inputs differ", r, want_inputs,
                                        inputs))
    for cid in rows:
        if cid not in decided:
            r = next(x for x in records if x["client_id"] == cid)
            out.findings.append(Finding("acceptance", expr, text, "batch rejects a client decide decides", r))


def _compare(policy: CompiledPolicy, expr: str, text: str, records: list[dict[str, Any]],
             out: Outcome) -> dict[str, tuple[tuple[Any, ...], tuple[Any, ...]] | None]:
    """Row path against vector path over the same checked inputs; (row results, inputs) by client id."""
    decider = Decider(policy)
    results: dict[str, tuple[tuple[Any, ...], tuple[Any, ...]] | None] = {}
    accepted: list[tuple[dict[str, Any], dict[str, Any], tuple[Any, ...], dt.date, tuple[Any, ...]]] = []
    for r in records:
        try:
            _, day, inputs = decider.read(r)
        except InputError:
            continue
        try:
            row_record = decider.decide(r)
            row_raw = policy.row_function(inputs, policy.params_for(inputs[decider._segment_index]), day)
        except Exception as exc:
            out.findings.append(Finding("exception", expr, text, f"row: {type(exc).__name__}: {exc}", r))
            results[r["client_id"]] = None  # found already; not an acceptance difference
            continue
        accepted.append((r, row_record, inputs, day, row_raw))
        results[r["client_id"]] = (row_raw, inputs)
    if not accepted:
        return results

    def vector(part: list[Any]) -> Any:
        rows = [a[2] for a in part]
        cols = columns_from_records(policy, rows)
        seg = np.array([r[decider._segment_index] for r in rows], dtype=object)
        return evaluate_columns(policy, len(rows), cols, seg, dates_to_days([a[3] for a in part]))

    try:
        res = vector(accepted)
    except Exception as exc:
        culprit = _first_failing(vector, accepted)
        out.findings.append(Finding("exception", expr, text, f"vector: {type(exc).__name__}: {exc}",
                                    culprit[0] if culprit else None))
        return results
    for i, (r, row_record, inputs, day, row_raw) in enumerate(accepted):
        out.compared += 1
        try:
            got = res.row(i)
            vec_record = decider.build_record(r["client_id"], day, inputs, got, row_record["input_sha256"])
        except Exception as exc:
            out.findings.append(Finding("exception", expr, text, f"vector: {type(exc).__name__}: {exc}", r))
            continue
        silent = [u["rule"] for u in row_record["undetermined"] if not u["reasons"]]
        if silent:
            out.findings.append(Finding("unexplained", expr, text, f"undetermined without a reason: {silent}", r))
        if got != row_raw or _without_id(vec_record) != _without_id(row_record):
            diff = [k for k, (a, b) in enumerate(zip(row_raw, got, strict=True)) if a != b]
            out.findings.append(Finding("disagreement", expr, text, f"result parts differ: {diff}", r,
                                        _without_id(row_record), _without_id(vec_record)))
    return results
