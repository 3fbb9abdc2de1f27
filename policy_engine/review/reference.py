"""The language reference beyond the functions and operators: message formats, null, built-in names.

`policy-engine functions` prints it after the function and operator tables, and
``docs/language.md`` holds it as generated text. Each list is read from the table the code
itself uses (the message formats the compiler accepts, the built-in and reserved names), and
every example's result is computed by the checker, the row code generator and the message
renderer, so the reference cannot say something the engine does not do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..decide.evaluate import compile_message
from ..language import expressions as ex
from ..policy.compiler import BUILTIN_SYMBOLS, LANGUAGE_WORDS, MESSAGE_FORMATS

# One value per format, chosen so that the formats' differences show: a fraction for percentages.
_DEFAULT_FORMAT = ("", "a whole number as written (10,000 and above with thousands separators); other numbers "
                       "with two decimals (1,000 and above: none, with separators); null as n/a (无数据 in zh); "
                       "true/false as yes/no (是/否); a date as YYYY-MM-DD")

# The null rules, each with an example computed (with x = null and y = 2) when the reference is built.
NULL_VALUES: Mapping[str, Any] = {"x": None, "y": 2.0}
NULL_RULES: tuple[tuple[str, str], ...] = (
    ("x + 1", "arithmetic with null is null"),
    ("y / 0", "a zero denominator is null, never infinity (ratio(a, b) is null for b <= 0 too)"),
    ("x > 1", "a comparison with null is null"),
    ("x == null", "comparing with the literal null is refused: test for a value with is_null(x)"),
    ("x > 1 and False", "and: false and null is false"),
    ("x > 1 and True", "and: true and null is null"),
    ("x > 1 or True", "or: true or null is true"),
    ("not x > 1", "not null is null"),
    ("1 if x > 1 else 2", "a conditional whose condition is null is null"),
    ("coalesce(x, 0)", "coalesce: the first argument that is not null"),
    ("is_null(x)", "is_null: true when the value is missing; never null itself"),
    ("y if y > 0 else null", "null written as a value: the literal null"),
)

# What each built-in name means, the first stage that may read it (None: no expression may), and one
# example (checked in that stage). Keyed by the names of compiler.BUILTIN_SYMBOLS and
# compiler.LANGUAGE_WORDS, plus the boolean literals.
_NAME_DOCS: Mapping[str, tuple[str | None, str, str]] = {
    "as_of": ("param", "the decision's as-of date", "months_between(date('2024-01-31'), as_of) >= 12"),
    "score": ("floor", "the scorecard total", "score < 40"),
    "grade": ("graded", "the final grade, after every floor", "grade in ['substandard', 'doubtful', 'loss']"),
    "null": ("param", "the null literal: no value (see null above)", "coalesce(null, 0) == 0"),
    "True": ("param", "the boolean literal true", "coalesce(x > 1, True)"),
    "False": ("param", "the boolean literal false", "coalesce(x > 1, False)"),
    "true": (None, "reserved, not a literal: write True", "True"),
    "false": (None, "reserved, not a literal: write False", "False"),
}
REFERENCE_GRADES = ("normal", "special_mention", "substandard", "doubtful", "loss")

# The aggregations' examples, each a debtor metric of a small policy with scopes decided over three
# exposures (AGGREGATION_EXPOSURES) when the reference is built: the result shown is the engine's.
# Keyed by the names of functions.AGGREGATIONS (a KeyError is an aggregation without an example).
AGGREGATION_EXAMPLES: Mapping[str, str] = {
    "count_where": "count_where(exposure, dpd > 30)",
    "sum_where": "sum_where(exposure, balance, dpd > 30)",
    "sum_of": "sum_of(exposure, balance)",
    "share_where": "share_where(exposure, balance, dpd > 90)",
    "any_of": "any_of(exposure, dpd > 90)",
    "all_of": "all_of(exposure, dpd == 0)",
    "min_of": "min_of(exposure, opened)",
    "max_of": "max_of(exposure, balance)",
    "min_where": "min_where(exposure, balance, dpd > 0)",
    "max_where": "max_where(exposure, opened, dpd > 0)",
    "first_date": "first_date(exposure, opened, dpd > 0)",
    "last_of": "last_of(exposure, balance, dpd > 0)",
    "worst_grade": "worst_grade(exposure)",
}
AGGREGATION_EXPOSURES: tuple[Mapping[str, Any], ...] = (
    {"id": "E1", "balance": 800, "dpd": 0, "opened": "2021-03-01"},
    {"id": "E2", "balance": 150, "dpd": 95, "opened": "2023-06-15"},
    {"id": "E3", "balance": 50, "dpd": 10, "opened": "2022-01-10"},
)
_AGGREGATION_POLICY = """\
id: aggregation-examples
version: 1.0.0
title: {zh: 聚合示例, en: Aggregation examples}
status: active
owner: reference
effective_from: 2024-01-01
changelog:
  - {version: 1.0.0, date: 2024-01-01, changes: [the aggregations' examples]}
scopes:
  exposure: {from: "exposures[*]", key: id, order_by: opened}
inputs:
  id: {scope: exposure, from: id, type: string, required: true}
  balance: {scope: exposure, from: balance, type: number, required: true}
  dpd: {scope: exposure, from: dpd, type: integer, required: true}
  opened: {scope: exposure, from: opened, type: date, required: true}
metrics:
%s
classification:
  scale:
    - {id: normal, zh: 正常, en: Normal}
    - {id: substandard, zh: 次级, en: Substandard, nonperforming: true}
  rules:
    - {id: overdue_90, scope: exposure, when: dpd > 90, floor: substandard, source: example}
"""


def example_scope(stage: str) -> ex.Scope:
    """The scope examples are checked in: the built-ins, x (a number that may be null), y, a five-grade scale.

    ``stage`` is where the expression would be written (see :data:`policy_engine.expressions.STAGES`).
    """
    symbols = dict(BUILTIN_SYMBOLS)
    symbols["x"] = ex.Symbol("x", "input", ex.NUMBER, True)
    symbols["y"] = ex.Symbol("y", "input", ex.NUMBER, False)
    return ex.Scope(symbols=symbols, stage=stage, grades=REFERENCE_GRADES)


def show(value: Any) -> str:
    """A value as an expression writes it: null, True, False, 2, 0.5, 1234567.891."""
    if value is None:
        return "null"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _null_rule(expression: str, doc: str) -> dict[str, str]:
    try:
        checked = ex.check_expression(expression, example_scope("action"))
    except ex.ExpressionError as e:
        return {"example": expression, "result": f"refused: {e.code}", "doc": doc}
    result = ex.compile_standalone(checked, REFERENCE_GRADES)({k: NULL_VALUES[k] for k in checked.refs})
    return {"example": expression, "result": show(result), "doc": doc}


def _message_format(spec: str, doc: str) -> dict[str, Any]:
    value = 12.0 if spec == "d" else 0.1234 if spec in ("", "pct") or spec.endswith("%") else 1234.5678
    placeholder = "{x:" + spec + "}" if spec else "{x}"
    shown = compile_message({"en": placeholder})(lambda _: value)["en"]
    return {"placeholder": placeholder, "format": spec, "doc": doc, "value": value, "shows": shown}


def where(first_stage: str | None) -> str:
    """The places that may read a name first readable in ``first_stage``, in the checker's own words."""
    if first_stage is None:
        return "no expression (unknown-name, with what to write)"
    if first_stage == ex.STAGES[0]:
        return "every expression"
    return ", ".join(ex.STAGE_WORDS[s] for s in ex.STAGES[ex.STAGES.index(first_stage):])


def _builtin_name(name: str, type_: str) -> dict[str, Any]:
    stage, doc, example = _NAME_DOCS[name]  # a KeyError here is a name the reference does not explain yet
    return {"name": name, "type": type_, "where": where(stage), "doc": doc, "example": example,
            "first_stage": stage}


def builtin_names() -> list[dict[str, Any]]:
    """Every name an expression knows without the policy declaring it, from the compiler's tables."""
    names = [_builtin_name(n, s.type) for n, s in BUILTIN_SYMBOLS.items()]
    names += [_builtin_name(n, ex.NULL if n == "null" else "reserved") for n in LANGUAGE_WORDS]
    names += [_builtin_name(n, ex.BOOL) for n in ("True", "False")]
    return names


def _split_null_rule(doc: str) -> tuple[str, str]:
    """An aggregation's doc is 'what it gives; null when ...': the two parts the reference shows apart."""
    what, sep, null = doc.partition("; null ")
    return (what, "null " + null) if sep else (doc, "never null")


def aggregations() -> list[dict[str, Any]]:
    """Every aggregation of functions.AGGREGATIONS, with its example computed over AGGREGATION_EXPOSURES."""
    import json

    from ..decide.evaluate import Decider
    from ..language.functions import AGGREGATIONS, describe
    from ..policy.compiler import compile_document
    from ..policy.loader import load_yaml_text

    metrics = "\n".join(f"  example_{name}: {{expr: {json.dumps(AGGREGATION_EXAMPLES[name])}}}"
                        for name in AGGREGATIONS)
    policy = compile_document(load_yaml_text(_AGGREGATION_POLICY % metrics, "aggregation-examples.yaml"))
    decided = Decider(policy).decide({"client_id": "example", "as_of": "2025-06-30",
                                      "exposures": [dict(x) for x in AGGREGATION_EXPOSURES]})["metrics"]
    out = []
    for name, fn in AGGREGATIONS.items():
        what, null = _split_null_rule(fn.doc)
        out.append({**describe(fn), "result": fn.signature.partition("-> ")[2], "gives": what, "null_rule": null,
                    "first_argument": "scope", "example": AGGREGATION_EXAMPLES[name],
                    "example_result": show(decided[f"example_{name}"])})
    return out


def language_reference() -> dict[str, Any]:
    """The reference's extra sections as data: `functions --format json` adds these keys."""
    return {
        "message_formats": [_message_format(*_DEFAULT_FORMAT),
                            *(_message_format(spec, doc) for spec, doc in MESSAGE_FORMATS.items())],
        "null": {"literal": "null", "values": {k: show(v) for k, v in NULL_VALUES.items()},
                 "rules": [_null_rule(e, d) for e, d in NULL_RULES]},
        "builtin_names": builtin_names(),
        "aggregations": aggregations(),
        "aggregation_exposures": [dict(x) for x in AGGREGATION_EXPOSURES],
    }


def text(ref: Mapping[str, Any]) -> str:
    """The extra sections as `policy-engine functions` prints them."""
    lines = ["", "message formats (warning messages and action reasons: {name} or {name:format}):"]
    for f in ref["message_formats"]:
        lines.append(f"  {f['placeholder']:<10} {show(f['value']):>12} -> {f['shows']:<16} {f['doc']}")
    lines += ["", "null (a missing value; a condition that is null does not fire and is listed as undetermined):",
              "  with " + ", ".join(f"{k} = {v}" for k, v in ref["null"]["values"].items()) + ":"]
    for r in ref["null"]["rules"]:
        lines.append(f"  {r['example']:<22} -> {r['result']:<26} {r['doc']}")
    lines += ["", "aggregations (a policy with scopes; the first argument names a child scope, the others are "
              "checked in it):", "  over " + _exposures_text(ref["aggregation_exposures"]) + ":"]
    for a in ref["aggregations"]:
        lines.append(f"  {a['signature']:<40} {a['gives']}; {a['null_rule']}\n"
                     f"          e.g. {a['example']} -> {a['example_result']}")
    lines += ["", "built-in names (no policy may define them):"]
    for n in ref["builtin_names"]:
        lines.append(f"  {n['name']:<7} {n['type']:<9} {n['doc']}; in {n['where']}\n"
                     f"          e.g. {n['example']}")
    return "\n".join(lines)


def markdown(functions: Mapping[str, Any], operators: tuple[tuple[str, str], ...], ref: Mapping[str, Any]) -> str:
    """The generated part of docs/language.md: functions, operators and the extra sections as tables."""
    out = ["### Functions", "", "| signature | what it gives | where |", "| --- | --- | --- |"]
    out += [f"| `{f.signature}` | {_cell(f.doc)} | {where(f.first_stage)} |" for f in functions.values()]
    out += ["", "### Operators", "", "| syntax | rule |", "| --- | --- |"]
    out += [f"| `{_cell(syntax)}` | {_cell(doc)} |" for syntax, doc in operators]
    out += ["", "### Message formats", "",
            "Placeholders in warning messages and action reasons: `{name}` or `{name:format}`. A number is "
            "rounded half away from zero (四舍五入) on its decimal as written, as the explanation rounds its key "
            "figures: 3.125 with `.2f` shows `3.13`, 0.0125 with `pct` shows `1.3%`.", "",
            "| placeholder | value | shows | meaning |", "| --- | --- | --- | --- |"]
    out += [f"| `{f['placeholder']}` | {show(f['value'])} | `{f['shows']}` | {_cell(f['doc'])} |"
            for f in ref["message_formats"]]
    values = ", ".join(f"`{k}` = `{v}`" for k, v in ref["null"]["values"].items())
    out += ["", "### Null", "",
            "`null` is the value of a missing figure. A condition that is null does not fire; the decision "
            f"lists the rule as undetermined with the names that had no value. With {values}:", "",
            "| example | result | rule |", "| --- | --- | --- |"]
    out += [f"| `{r['example']}` | `{r['result']}` | {_cell(r['doc'])} |" for r in ref["null"]["rules"]]
    out += ["", "`validate` knows which values may be null: coverage asks a test for the null case of those only, "
            "and a message quotes a value that may be null only where its condition proves it. An operand of "
            "`or` counts only when the operands before it are false, one of `and` only when they are true, so "
            "what those prove present "
            "cannot make it null: `is_null(x) or x > 5` and `not is_null(x) and x > 5` are never null (a "
            "comparison that is false or true proves its names present too). Test for the null first: validate "
            "reads the operands in order, so it takes `x > 5 or is_null(x)` as possibly null."]
    out += ["", "### Aggregations", "",
            "In a policy that declares scopes (see [scopes.md](scopes.md)), an expression reads a child scope "
            "through an aggregation: its first argument names the scope, its other arguments are checked in "
            "that scope. Each example is a debtor metric decided over "
            + _exposures_text(ref["aggregation_exposures"]) + ":", "",
            "| signature | result | what it gives | null rule | example | its value |",
            "| --- | --- | --- | --- | --- | --- |"]
    out += [f"| `{a['signature']}` | {a['result']} | {_cell(a['gives'])} | {_cell(a['null_rule'])} | "
            f"`{a['example']}` | `{a['example_result']}` |" for a in ref["aggregations"]]
    out += ["", "### Built-in names", "", "No policy may define these names, nor name an input, parameter or metric "
            "after a function, an aggregation or a scope it declares (`reserved-name`).", "",
            "| name | type | meaning | where | example |", "| --- | --- | --- | --- | --- |"]
    out += [f"| `{n['name']}` | {n['type']} | {_cell(n['doc'])} | {n['where']} | `{n['example']}` |"
            for n in ref["builtin_names"]]
    return "\n".join(out) + "\n"


def _exposures_text(exposures: list[Mapping[str, Any]]) -> str:
    """The example exposures in one line: E1 (balance 800, dpd 0, opened 2021-03-01), ..."""
    return ", ".join(f"{x['id']} (" + ", ".join(f"{k} {v}" for k, v in x.items() if k != "id") + ")"
                     for x in exposures)


def _cell(s: str) -> str:
    return s.replace("|", "\\|")


PAGE = "docs/language.md"
BEGIN = "<!-- BEGIN GENERATED: python tools/language_reference.py -->\n"
END = "<!-- END GENERATED -->"


def update_page(page: str) -> str:
    """``page`` (docs/language.md) with the text between its markers generated anew."""
    from ..language.expressions import FUNCTIONS, OPERATOR_REFERENCE

    head, begin, rest = page.partition(BEGIN)
    _, end, tail = rest.partition(END)
    if not begin or not end:
        raise ValueError(f"{PAGE} has lost its markers {BEGIN.strip()} ... {END}")
    return head + BEGIN + markdown(FUNCTIONS, OPERATOR_REFERENCE, language_reference()) + END + tail
