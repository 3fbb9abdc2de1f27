"""The language's functions as a table: one entry per function, read by every part of the engine.

An entry declares the function's arity, which arguments must be literals (and which of those
count periods or name a comparison), how its arguments are typed and what it returns (its check
hook), its row implementation (a runtime helper the generated code calls, or inline code), its
vector implementation (named here, written over columns in :mod:`policy_engine.language.columns`, which
only the vector evaluator imports, so numpy stays out of a single decision), when its values are
whole numbers (for the ``d`` format) and which range rule :mod:`policy_engine.policy.bounds` applies.

The checker (:mod:`policy_engine.language.expressions`), both evaluators and ``policy-engine functions``
read this table; adding a function is one entry here, its vector form, and one case file
``tests/data/functions/<name>.yaml``.
"""

from __future__ import annotations

import ast
import bisect
import calendar
import datetime as _dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from ..diagnostics import did_you_mean
from ..frozen import Frozen

# Types. Series are the periodic financials of one client, oldest first.
NUMBER, BOOL, STRING, DATE, GRADE, NULL = "number", "bool", "string", "date", "grade", "null"
SERIES_NUMBER, SERIES_DATE = "series<number>", "series<date>"
SCALARS = {NUMBER, BOOL, STRING, DATE, GRADE}
# The type of what could not be checked: a name whose declaration was left out for a schema
# error, a sub-expression with an error of its own. It satisfies every place it is used in, so
# one mistake gives one error, not one more at each enclosing operator or call.
UNKNOWN = "unknown"

MAX_ROUND_DIGITS = 10
MAX_WINDOW = 400  # periods a window may count (a client has at most 400 periods)
MAX_MONTHS = 1200  # months add_months may move a date (a hundred years: more is a mistake)
MAX_TABLE_CELLS = 2_000  # cells of one table parameter (an integer key's range counts in full)
TABLE = "table"  # the type of a table parameter: read only through lookup()

# Stages, in evaluation order; a name or function is usable from its stage on. "graded" is the
# metrics declared ``after: classification``: they run once the final grade is known.
STAGES = ("param", "metric", "factor", "floor", "graded", "warning", "action")
STAGE_WORDS = {"param": "parameters", "metric": "metrics", "factor": "scorecard factors",
               "floor": "classification rules", "graded": "metrics after classification", "warning": "warnings",
               "action": "actions"}


class Checker(Protocol):
    """What a check hook may use of the expression checker."""

    scope: Any  # expressions.Scope: symbols, stage, grades, warnings
    ann: dict[int, tuple[str, bool]]
    uses_grade: bool
    fired: dict[str, None]
    tables: dict[str, Table]  # the table parameters the expression looks up

    def fail(self, code: str, message: str, node: ast.AST | None, hint: str | None = None) -> Exception: ...

    def report(self, error: Any) -> None: ...

    def _text_type(self, nodes: Sequence[ast.AST]) -> str: ...

    def number_hint(self, other: str, operands: Sequence[ast.AST]) -> str | None: ...


class RowGen(Protocol):
    """What an inline row-code hook may use of the row code generator."""

    grade_rank_local: str
    warning_locals: Mapping[str, str]
    grade_index: Mapping[str, int]

    def gen(self, node: ast.AST) -> ast.expr: ...

    def nullable(self, node: ast.AST) -> bool: ...

    def call(self, fn: str, args: list[ast.expr]) -> ast.Call: ...

    def load(self, name: str) -> ast.Name: ...

    def const(self, v: Any) -> ast.Constant: ...

    def is_none(self, e: ast.expr) -> ast.Compare: ...

    def rank_expr(self) -> ast.expr: ...

    def rank_max_expr(self) -> ast.expr: ...

    def scope_elements(self, scope: str) -> ast.expr: ...

    def enter_scope(self, scope: str, loop: bool = False) -> str: ...

    def leave_scope(self) -> dict[str, list[ast.Subscript]]: ...

    def read_once(self, var: str, fields: Mapping[str, list[ast.Subscript]]) -> list[ast.stmt]: ...

    def tmp(self) -> str: ...

    def lazy(self, node: ast.AST) -> ast.expr: ...

    def constant(self, value: Any) -> ast.Name: ...

    # Where an aggregation may put the statements of its loop (the function body, or the body of
    # the loop it stands in); None: only an expression can be generated here (a comprehension).
    sink: list[ast.stmt] | None


Args = list[tuple[str, bool]]  # (type, nullable) of each argument, checked
CheckHook = Callable[[Checker, "Function", ast.Call, Args], tuple[str, bool]]
RowCodeHook = Callable[[RowGen, ast.Call], "ast.expr | None"]
WholeRule = Callable[[ast.Call, Callable[[ast.AST], bool]], bool]


class Table(Frozen, eq=False):
    """A table parameter, checked: its key names, its cells and, for one numeric key, its points.

    ``cells`` maps a key value (a tuple of two for two keys) to the cell's value; numbers are
    floats, as every number of the engine. An interpolated table has one numeric key and its
    points in ascending order, with the slope of each segment computed once, so the row and the
    vector evaluator do the same arithmetic. Outside its points it clamps to the end values.
    Built and checked by :mod:`policy_engine.policy.table_parameters`.
    """

    name: str
    keys: tuple[str, ...]
    type: str  # the cells' type: number | string | bool
    cells: Mapping[Any, Any]
    interpolate: bool = False
    xs: tuple[float, ...] = ()
    ys: tuple[float, ...] = ()
    slopes: tuple[float, ...] = ()

    def cell(self, *key: Any) -> Any:
        """The value for ``key`` (null when a key is null), interpolated when the table says so."""
        if any(k is None for k in key):
            return None
        if self.interpolate:
            return _interpolate(self, key[0])
        return self.cells.get(key[0] if len(key) == 1 else key)


def table_global(name: str) -> str:
    """The global of generated code holding table parameter ``name`` (a checked identifier)."""
    return f"_table_{name}"


class Function(Frozen):
    """One function of the language: everything the checker, the evaluators and the listing need.

    ``check`` types the call once its arguments are checked (and after the declared properties
    below are enforced): it returns the result type and whether the result may be null.
    ``row`` is the runtime helper generated code calls by the function's name; ``row_code``
    builds inline code instead (returning None falls back to calling ``row``), with
    ``row_helpers`` adding the grade-dependent helpers that code calls. ``vector`` names the
    implementation in :mod:`policy_engine.language.columns`; ``vector_args`` False hands it the argument
    nodes unevaluated (literals only it reads itself).
    """

    name: str
    min_args: int
    max_args: int | None
    signature: str
    doc: str
    check: CheckHook
    vector: str
    row: Callable[..., Any] | None = None
    row_code: RowCodeHook | None = None
    row_helpers: Callable[[Sequence[str]], Mapping[str, Any]] | None = None
    vector_args: bool = True
    first_stage: str = "param"
    literal_args: tuple[int, ...] = ()  # positions that must be literals
    series: str | None = None  # argument 1 is a series: "any" element type, or "number" only
    window_arg: int | None = None  # position of a count of periods: a whole-number literal 1..MAX_WINDOW
    operator_arg: int | None = None  # position of a comparison written as text: '<', '<=', ...
    whole: WholeRule | None = None  # when every value is a whole number (the ``d`` format)
    bounds: str | None = None  # the range rule of policy_engine.policy.bounds, if any
    aggregates: bool = False  # argument 1 names a child scope; the others are checked in that scope
    table_arg: int | None = None  # position of a table parameter, named (not read as a value)


# ------------------------------------------------------------------ checking helpers


def want(c: Checker, fn: Function, node: ast.Call, i: int, got: str, *types: str) -> bool:
    """Whether argument ``i`` has one of ``types`` (null fits any).

    A wrong one is reported and the check goes on, so each wrong argument of a call is an error of
    its own; the checker then gives the call the unknown type (see ``_Checker.visit_Call``).
    """
    if got in types or got == NULL:
        return True
    hint = f"signature: {fn.signature}"
    arg = node.args[i]
    if DATE in types and got == STRING and isinstance(arg, ast.Name) and getattr(
            c.scope.symbols.get(arg.id), "kind", None) == "param":  # cutoff: 2024-06-30 in parameters
        hint = (f"parameter '{arg.id}' holds text (a parameter cannot hold a date): write the date in the "
                f"expression, date('YYYY-MM-DD') ({hint})")
    elif NUMBER in types and got in (STRING, BOOL):
        hint = c.number_hint(got, (arg,)) or hint  # a parameter written as text ('fifteen')
    c.report(c.fail("type-mismatch", f"argument {i + 1} of {fn.name}() must be {' or '.join(types)}, found {got}",
                    arg, hint))
    return False


def window(c: Checker, fn: Function, node: ast.Call, i: int) -> Exception | None:
    """A count of periods is a whole number literal: 0.5 periods has no meaning on either path."""
    arg = node.args[i]
    n = getattr(arg, "value", None)
    if type(n) is not int or not 1 <= n <= MAX_WINDOW:
        return c.fail("type-mismatch",
                      f"argument {i + 1} of {fn.name}() counts periods: a whole number 1-{MAX_WINDOW}, found {n!r}",
                      arg, f"signature: {fn.signature}")
    return None


class GradeScale(tuple[str, ...]):
    """The scale's grade ids, and each grade's labels (关注, Special mention) to the id: a writer who names a
    grade by its label is told the id, not only that the text is no grade."""

    labels: Mapping[str, str]

    def __new__(cls, ids: Iterable[str], labels: Mapping[str, str]) -> GradeScale:
        scale = super().__new__(cls, ids)
        scale.labels = {k.casefold(): v for k, v in labels.items()}
        return scale

    def __getnewargs__(self) -> tuple[tuple[str, ...], Mapping[str, str]]:  # type: ignore[override]
        return tuple(self), self.labels


def unknown_grade_hint(grades: tuple[str, ...], name: str) -> str | None:
    """What to write instead of ``name``, which is no grade id: the id of the grade it labels, or a near id."""
    written = name.strip()
    same = next((g for g in grades if g.casefold() == written.casefold()), None)
    if same is not None:  # the id itself, with spaces at its ends or in another case: not a label
        return f"write '{same}'" + (", without the spaces at its ends" if written != name else "") + (
            " (grade ids are case-sensitive)" if same != written else "")
    labels: Mapping[str, str] = getattr(grades, "labels", {})
    grade = labels.get(written.casefold())
    if grade is not None:
        return f"grades are named by their ids: write '{grade}' for the grade labelled '{written}'"
    return did_you_mean(name, grades)


def grade_literal(c: Checker, node: ast.AST) -> None:
    v = getattr(node, "value", None)
    if v not in c.scope.grades:
        raise c.fail("unknown-grade", f"'{v}' is not a grade on the scale ({', '.join(c.scope.grades)})",
                     node, unknown_grade_hint(c.scope.grades, str(v)))


def grade_valued(c: Checker, node: ast.AST) -> None:
    """Every value ``node`` can take is a grade on the scale (or null), proven here.

    A grade input, ``grade``, a grade literal, ``null``, or a conditional / coalesce of
    those (typed grade only then, see ``_Checker._text_type``): any other text has no rank.
    """
    if isinstance(node, ast.Constant):
        grade_literal(c, node)
    elif c.ann[id(node)][0] not in (GRADE, NULL):
        raise c.fail("type-mismatch", f"grade_rank() needs a grade, found {c.ann[id(node)][0]}", node,
                     "a grade input, grade, or a grade literal such as 'substandard'")


def check_call(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    """The entry's declared properties (series argument, window, operator), then its own rule.

    Each declared property is checked even when another failed (they concern different
    arguments); the entry's own rule runs only when all hold, since it may read them.
    """
    problems: list[Exception] = []
    if fn.series is not None:
        st = args[0][0]
        if not st.startswith("series"):
            problems.append(c.fail("type-mismatch", f"{fn.name}() needs a series (periodic input), found {st}",
                                   node.args[0], f"signature: {fn.signature}"))
        elif fn.series == NUMBER and st != SERIES_NUMBER:
            problems.append(c.fail("type-mismatch", f"{fn.name}() needs a numeric series, found {st}", node.args[0]))
    if fn.window_arg is not None and (bad := window(c, fn, node, fn.window_arg)) is not None:
        problems.append(bad)
    if fn.operator_arg is not None:
        op = node.args[fn.operator_arg].value  # type: ignore[attr-defined]
        if op not in COMPARISONS:
            problems.append(c.fail("type-mismatch", f"{fn.name}() operator must be one of {', '.join(COMPARISONS)}",
                                   node.args[fn.operator_arg]))
    if problems:
        for p in problems:
            c.report(p)
        return UNKNOWN, True
    return fn.check(c, fn, node, args)


# The small type rules most entries share.


def returns(t: str, nullable: bool) -> CheckHook:
    """Result ``t``, null or not whatever the arguments."""
    return lambda c, fn, node, args: (t, nullable)


def of_numbers(nullable: bool | None = None) -> CheckHook:
    """Every argument a number; a number, null when ``nullable`` (None: when an argument may be)."""

    def rule(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
        for i, (t, _) in enumerate(args):
            want(c, fn, node, i, t, NUMBER)
        return NUMBER, any(n for _, n in args) if nullable is None else nullable

    return rule


def of_dates(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    for i, (t, _) in enumerate(args):
        want(c, fn, node, i, t, DATE)
    return NUMBER, any(n for _, n in args)


def element(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    """A value of the series (null when the period is missing or has none)."""
    return args[0][0][len("series<"):-1], True


# Whole-number rules.


def always_whole(node: ast.Call, whole: Callable[[ast.AST], bool]) -> bool:
    return True


def whole_if_args(node: ast.Call, whole: Callable[[ast.AST], bool]) -> bool:
    return all(whole(a) for a in node.args)


def whole_if_first(node: ast.Call, whole: Callable[[ast.AST], bool]) -> bool:
    return whole(node.args[0])


def _whole_if_value(node: ast.Call, whole: Callable[[ast.AST], bool]) -> bool:
    """An aggregation of an element's value (its second argument): whole when the value is (a sum of counts)."""
    return len(node.args) > 1 and whole(node.args[1])


# The aggregations whose value is one of their elements' values, or a sum of them: whole when those are.
_OF_VALUES = frozenset({"sum_where", "sum_of", "min_of", "max_of", "min_where", "max_where", "last_of"})


# ------------------------------------------------------------------ row implementations


def _ratio(a: Any, b: Any) -> Any:
    if a is None or b is None or b <= 0:
        return None
    return a / b


def _min(*args: Any) -> Any:
    return None if None in args else min(args)


def _max(*args: Any) -> Any:
    return None if None in args else max(args)


def _abs(x: Any) -> Any:
    return None if x is None else abs(x)


def _round(x: Any, n: Any = 0) -> Any:
    if x is None:
        return None
    return round(x, int(n))


def _coalesce(*args: Any) -> Any:
    for a in args:
        if a is not None:
            return a
    return None


def _last(s: Sequence[Any]) -> Any:
    return s[-1] if s else None


def _first(s: Sequence[Any]) -> Any:
    return s[0] if s else None


def _tail(s: Sequence[Any], n: float) -> list[Any]:
    # n is a whole number >= 1 (checked at validate)
    return list(s[-int(n):])


def _plain_sum(s: Sequence[Any]) -> float:
    # Left to right, uncompensated: the vector evaluator adds in the same order, and
    # Python 3.12's sum() of floats is compensated, which would make the two differ.
    acc = 0.0
    for x in s:
        acc += x
    return acc


def _sum(s: Sequence[Any]) -> Any:
    if not s or None in s:
        return None
    return _plain_sum(s)


def _avg(s: Sequence[Any]) -> Any:
    if not s or None in s:
        return None
    return _plain_sum(s) / len(s)


def _sum_last(s: Sequence[Any], n: float) -> Any:
    # n is a whole number >= 1 (checked at validate); fewer periods than that is no sum
    k = int(n)
    return None if len(s) < k else _sum(s[-k:])


def _avg_last(s: Sequence[Any], n: float) -> Any:
    k = int(n)
    return None if len(s) < k else _avg(s[-k:])


def _count(s: Sequence[Any]) -> float:
    return float(sum(1 for x in s if x is not None))


def _series_min(s: Sequence[Any]) -> Any:
    if not s or None in s:
        return None
    return min(s)


def _series_max(s: Sequence[Any]) -> Any:
    if not s or None in s:
        return None
    return max(s)


COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
}


def _streak(s: Sequence[Any], op: str, x: Any) -> Any:
    """Periods, counted back from the latest, for which ``value op x`` holds.

    A null period reached before the streak ends makes it null (undetermined): the missing
    quarter may continue the streak, and a shorter streak would look healthier than the client.
    A null older than the first period that breaks the streak changes nothing.
    """
    if x is None:
        return None
    test = COMPARISONS[op]
    n = 0
    for v in reversed(s):
        if v is None:
            return None
        if not test(v, x):
            break
        n += 1
    return float(n)


def _count_last(s: Sequence[Any], n: Any, op: str, x: Any) -> Any:
    """How many of the latest ``n`` periods satisfy ``value op x``.

    Null when there are fewer than ``n`` periods or any of them has no value: an undetermined
    count is never reported as a smaller one.
    """
    k = int(n)
    if x is None or len(s) < k:
        return None
    latest = s[-k:]
    if None in latest:
        return None
    test = COMPARISONS[op]
    return float(sum(1 for v in latest if test(v, x)))


def _lag(s: Sequence[Any], n: Any) -> Any:
    """The value ``n`` periods before the latest."""
    k = int(n)
    return s[-1 - k] if len(s) > k else None


def _diff(s: Sequence[Any], n: Any) -> Any:
    """The latest value minus the one ``n`` periods earlier."""
    k = int(n)
    if len(s) <= k:
        return None
    new, old = s[-1], s[-1 - k]
    if new is None or old is None:
        return None
    return new - old


def _pct_change(s: Sequence[Any], n: Any) -> Any:
    """Relative change of the latest value against the one ``n`` periods earlier."""
    k = int(n)  # a whole number >= 1 (checked at validate)
    if len(s) <= k:
        return None
    new, old = s[-1], s[-1 - k]
    if new is None or old is None or old == 0:
        return None
    return (new - old) / abs(old)


def _change(new: Any, old: Any) -> Any:
    if new is None or old is None or old == 0:
        return None
    return (new - old) / abs(old)


def _days_between(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    return float((b - a).days)


def _months_between(a: Any, b: Any) -> Any:
    """Whole calendar months from ``a`` to ``b`` (negative when b is earlier)."""
    if a is None or b is None:
        return None
    months = (b.year - a.year) * 12 + (b.month - a.month)
    if months > 0 and b.day < a.day:
        months -= 1
    elif months < 0 and b.day > a.day:
        months += 1
    return float(months)


def _add_months(d: Any, n: Any) -> Any:
    """``d`` moved ``n`` calendar months, the day clamped to the month's last (Jan 31 + 1 = Feb 28/29).

    Null when ``n`` is not a whole number within MAX_MONTHS, or the result leaves the calendar.
    """
    if d is None or n is None or not abs(n) <= MAX_MONTHS or not float(n).is_integer():
        return None
    year, month = divmod(d.year * 12 + d.month - 1 + int(n), 12)
    if not 1 <= year <= 9999:
        return None
    day = d.day
    if day > 28:  # every month has the first 28 days (calendar.monthrange also works out a weekday)
        day = min(day, 29 if month == 1 and calendar.isleap(year) else _MONTH_DAYS[month])
    return _dt.date(year, month + 1, day)


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _interpolate(table: Table, x: float) -> float:
    """Linear between the two points around ``x``; the end value outside them (clamped)."""
    xs = table.xs
    if x <= xs[0]:
        return table.ys[0]
    if x >= xs[-1]:
        return table.ys[-1]
    j = bisect.bisect_right(xs, x) - 1
    return table.slopes[j] * (x - xs[j]) + table.ys[j]


def _lookup(table: Table, *key: Any) -> Any:
    return table.cell(*key)


# ------------------------------------------------------------------ type rules of single functions


def _check_extreme(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    types = {t for t, _ in args if t != NULL}
    if len(types) > 1 or (types and not types <= {NUMBER} and not types <= {DATE}):
        raise c.fail("type-mismatch", f"{fn.name}() needs numbers (or dates), found {', '.join(sorted(types))}",
                     node, f"for a series use series_{fn.name}(s)")
    return (types.pop() if types else NUMBER), any(n for _, n in args)


def _check_round(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    want(c, fn, node, 0, args[0][0], NUMBER)
    if len(args) == 2:
        digits = node.args[1].value  # type: ignore[attr-defined]
        if not isinstance(digits, int) or isinstance(digits, bool) or not 0 <= digits <= MAX_ROUND_DIGITS:
            raise c.fail("type-mismatch", f"round() digits must be an integer 0-{MAX_ROUND_DIGITS}", node.args[1])
    return NUMBER, args[0][1]


def _check_coalesce(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    types = {STRING if t == GRADE else t for t, _ in args if t != NULL}
    if len(types) > 1:
        raise c.fail("type-mismatch", f"coalesce() arguments must share one type, found {', '.join(sorted(types))}",
                     node)
    t = next((t for t, _ in args if t != NULL), NULL)
    if t.startswith("series"):
        raise c.fail("type-mismatch", "coalesce() of a series: a series is never null (it may be empty)",
                     node, "use coalesce(last(s), 0) for its latest value")
    if t in (GRADE, STRING):
        t = c._text_type(node.args)
    # Null only when every argument may be null.
    return t, all(n for _, n in args)


def _check_date(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    text = node.args[0].value  # type: ignore[attr-defined]
    try:
        _dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise c.fail("type-mismatch", f"date() needs 'YYYY-MM-DD', found {text!r}", node.args[0]) from None
    return DATE, False


def _check_grade_rank(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    grade_valued(c, node.args[0])
    return NUMBER, args[0][1]


def _check_grade_at_least(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    grade_literal(c, node.args[0])
    c.uses_grade = True
    # An element's grade is three-valued where the policy says so: null when only an undetermined floor reaches it.
    return BOOL, c.scope.provisional_unknown and c.scope.graded


def _check_fired(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    wid = node.args[0].value  # type: ignore[attr-defined]
    if wid not in c.scope.warnings:
        rule = c.scope.rules.get(wid)
        if rule is not None:  # a floor without a message raises no warning; the warning of a like name is another
            floor, scope = rule
            other = (f"give rule '{wid}' a message and a severity: it then warns, and fired('{wid}') reads it"
                     if scope == "debtor" else f"write a debtor warning over the {scope} elements, when: "
                     f"any_of({scope}, ...) with the rule's condition (a rule of scope {scope} cannot warn)")
            raise c.fail("unknown-warning", f"'{wid}' is a classification rule that raises no warning: fired() "
                         "reads warnings", node.args[0], f"test the grade it sets, grade_at_least('{floor}'), or "
                         + other)
        raise c.fail("unknown-warning", f"unknown warning '{wid}'", node.args[0],
                     did_you_mean(str(wid), list(c.scope.warnings)))
    c.fired.setdefault(wid, None)
    return BOOL, c.scope.warnings[wid]


def _check_streak(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    want(c, fn, node, 2, args[2][0], NUMBER)
    return NUMBER, True  # a null period inside the streak makes it undetermined


def _check_count_last(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    want(c, fn, node, 3, args[3][0], NUMBER)
    return NUMBER, True  # too few periods, or a null among them: undetermined


def _literal_number(node: ast.AST) -> Any:
    """The value of a number literal, signs included (``-3``), or None when ``node`` is not one."""
    sign = 1
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = -sign if isinstance(node.op, ast.USub) else sign
        node = node.operand
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return sign * node.value
    return None


def _check_add_months(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    want(c, fn, node, 0, args[0][0], DATE)
    want(c, fn, node, 1, args[1][0], NUMBER)
    n = _literal_number(node.args[1])
    if n is not None and (not float(n).is_integer() or abs(n) > MAX_MONTHS):
        raise c.fail("type-mismatch", f"argument 2 of add_months() counts months: a whole number "
                     f"-{MAX_MONTHS} to {MAX_MONTHS}, found {n!r}", node.args[1], f"signature: {fn.signature}")
    _check_months_parameter(c, node.args[1])
    # Null when d or n is, and when a computed n is not a whole number or the date leaves the calendar.
    return DATE, True


def _check_months_parameter(c: Checker, arg: ast.expr) -> None:
    """A parameter given as add_months' months: its values are known, so one that is not a whole number (0.5) or
    beyond MAX_MONTHS is an error here, not a date without a value in every decision that reads it."""
    while isinstance(arg, ast.UnaryOp) and isinstance(arg.op, ast.USub | ast.UAdd):  # -months: a move back
        arg = arg.operand
    sym = c.scope.symbols.get(arg.id) if isinstance(arg, ast.Name) else None
    if sym is None or sym.kind != "param" or sym.type != NUMBER or sym.bounds is None:
        return
    low, high = sym.bounds
    if not sym.whole or max(-low, high) > MAX_MONTHS:
        raise c.fail("type-mismatch", f"argument 2 of add_months() counts months: parameter '{sym.name}' holds "
                     f"{f'{low:g}' if low == high else f'values {low:g} to {high:g}'}"
                     f"{', not a whole number' if not sym.whole else ''}",
                     arg, f"give '{sym.name}' whole numbers of months, -{MAX_MONTHS} to {MAX_MONTHS} (months "
                     "between dates: months_between; a fraction of a year: days with days_between)")


def _check_lookup(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    """``lookup(table, key...)``: each key argument is the key the table declares, by name.

    Naming the key is what makes the lookup checkable: the table's check proved that every value
    that input can take has a cell, so a cell is never missing at run time, and a decision can
    show which cell it read from the input's value alone.
    """
    first = node.args[0]
    sym = c.scope.symbols.get(first.id) if isinstance(first, ast.Name) else None
    table: Table | None = getattr(sym, "table", None)
    left_out = getattr(sym, "type", None) == UNKNOWN or (sym is None and c.scope.open_names)
    if isinstance(first, ast.Name) and left_out:
        return UNKNOWN, True  # a table a schema error left out: its lookups are no further error
    if table is None:
        tables = [n for n, s in c.scope.symbols.items() if getattr(s, "table", None) is not None]
        hint = (did_you_mean(first.id, tables) if isinstance(first, ast.Name) else None) or (
            f"tables of this policy: {', '.join(tables)}" if tables else "declare one under parameters with table:")
        raise c.fail("type-mismatch", "argument 1 of lookup() must be a table parameter", first, hint)
    call = f"lookup({table.name}, {', '.join(table.keys)})"
    if len(node.args) != 1 + len(table.keys):
        raise c.fail("wrong-arity", f"table '{table.name}' has {len(table.keys)} key(s): write {call}", node)
    for i, (arg, key) in enumerate(zip(node.args[1:], table.keys, strict=True)):
        if not (isinstance(arg, ast.Name) and arg.id == key):
            raise c.fail("lookup-wrong-key", f"argument {i + 2} of lookup() must be '{key}', the key table "
                         f"'{table.name}' declares", arg,
                         f"write {call}; to look up another value, declare a table keyed by it")
        if table.interpolate and args[i + 1][0] not in (NUMBER, UNKNOWN):
            raise c.fail("type-mismatch", f"table '{table.name}' interpolates: its key must be a number, "
                         f"'{key}' is a {args[i + 1][0]}", arg)
    c.tables[table.name] = table
    return table.type, any(n for _, n in args[1:])


# ------------------------------------------------------------------ inline row code


def _row_lookup(g: RowGen, node: ast.Call) -> ast.expr:
    """The table is a global of the generated code (see ``RowCodegen.table_globals``), its keys values."""
    table = node.args[0].id  # type: ignore[attr-defined]
    return g.call("_lookup", [g.load(table_global(table)), *(g.gen(a) for a in node.args[1:])])


def _row_date(g: RowGen, node: ast.Call) -> ast.expr:
    # A literal (checked): the date is made once, when the code is generated, not at each call (once per
    # payment in an aggregation's loop).
    return g.constant(_dt.date.fromisoformat(node.args[0].value))  # type: ignore[attr-defined]


def _row_grade_at_least(g: RowGen, node: ast.Call) -> ast.expr:
    rank = g.grade_index[node.args[0].value]  # type: ignore[attr-defined]
    reached = ast.Compare(left=g.rank_expr(), ops=[ast.GtE()], comparators=[g.const(rank)])
    if not g.nullable(node):
        return reached
    # provisional_grades: unknown (the checker made it nullable): True if reached, None if an undetermined floor
    # could reach it, else False
    could = ast.Compare(left=g.rank_max_expr(), ops=[ast.GtE()], comparators=[g.const(rank)])
    return ast.IfExp(test=reached, body=g.const(True),
                     orelse=ast.IfExp(test=could, body=g.const(None), orelse=g.const(False)))


def _row_grade_rank(g: RowGen, node: ast.Call) -> ast.expr:
    return g.call("_grade_rank", [g.gen(node.args[0])])


def _grade_rank_helper(grades: Sequence[str]) -> Mapping[str, Any]:
    index = {gid: i for i, gid in enumerate(grades)}

    def _grade_rank(gid: Any) -> Any:
        # The checker proves gid is on the scale; a stray text is null here as in the vector path.
        r = index.get(gid)
        return None if r is None else float(r)

    return {"_grade_rank": _grade_rank}


def _row_fired(g: RowGen, node: ast.Call) -> ast.expr:
    return g.load(g.warning_locals[node.args[0].value])  # type: ignore[attr-defined]


def _row_is_null(g: RowGen, node: ast.Call) -> ast.expr:
    # Decided here when the checker proved the argument never null (a literal, a required
    # input): ``1.0 is None`` would make Python warn on every compile.
    arg = node.args[0]
    if isinstance(arg, ast.Name) and arg.id == "null":
        return g.const(True)
    if not g.nullable(arg):
        return g.const(False)
    return g.is_none(g.gen(arg))


def _row_abs(g: RowGen, node: ast.Call) -> ast.expr | None:
    if g.nullable(node.args[0]):
        return None
    return g.call("_abs_raw", [g.gen(node.args[0])])


def _row_coalesce(g: RowGen, node: ast.Call) -> ast.expr:
    """``a if (t := a) is not None else <coalesce of the rest>``: inline, a call per use was the
    most frequent call of a scoped decision (in conditions over every payment). An argument the
    checker proved never null ends the chain (as in ``_row_is_null``)."""
    args = list(node.args)
    out = g.lazy(args[-1])
    for k, arg in reversed(list(enumerate(args[:-1]))):
        value = g.gen(arg) if k == 0 else g.lazy(arg)  # an argument after the first may not be reached
        if not g.nullable(arg):
            out = value
            continue
        if isinstance(value, ast.Name):  # a local is read twice, not bound to a temporary
            test = ast.Compare(left=value, ops=[ast.IsNot()], comparators=[g.const(None)])
            out = ast.IfExp(test=test, body=g.load(value.id), orelse=out)
            continue
        t = g.tmp()
        test = ast.Compare(left=ast.NamedExpr(target=ast.Name(id=t, ctx=ast.Store()), value=value),
                           ops=[ast.IsNot()], comparators=[g.const(None)])
        out = ast.IfExp(test=test, body=g.load(t), orelse=out)
    return out


def _round_whole(node: ast.Call, whole: Callable[[ast.AST], bool]) -> bool:
    return len(node.args) == 1 or getattr(node.args[1], "value", None) == 0


_W = f"(n a whole number 1-{MAX_WINDOW})"

FUNCTIONS: dict[str, Function] = {f.name: f for f in [
    Function("min", 2, None, "min(x, y, ...) -> number", "smallest value; null if any is null",
             _check_extreme, "f_min", row=_min, whole=whole_if_args, bounds="min"),
    Function("max", 2, None, "max(x, y, ...) -> number", "largest value; null if any is null",
             _check_extreme, "f_max", row=_max, whole=whole_if_args, bounds="max"),
    Function("abs", 1, 1, "abs(x) -> number", "absolute value",
             of_numbers(), "f_abs", row=_abs, row_code=_row_abs, row_helpers=lambda _: {"_abs_raw": abs},
             whole=whole_if_args, bounds="abs"),
    Function("round", 1, 2, "round(x, digits) -> number", "round to digits (a literal 0-10)",
             _check_round, "f_round", row=_round, literal_args=(1,), whole=_round_whole, bounds="round"),
    Function("coalesce", 2, None, "coalesce(x, y, ...) -> value", "first value that is not null",
             _check_coalesce, "f_coalesce", row=_coalesce, row_code=_row_coalesce, whole=whole_if_args, bounds="union"),
    Function("is_null", 1, 1, "is_null(x) -> bool", "true when x has no value",
             returns(BOOL, False), "f_is_null", row_code=_row_is_null),
    Function("ratio", 2, 2, "ratio(a, b) -> number",
             "a / b, null when b is null, zero or negative (a ratio over a non-positive base has no meaning)",
             of_numbers(True), "f_ratio", row=_ratio),
    Function("change", 2, 2, "change(new, old) -> number", "(new - old) / |old|; null when old is 0",
             of_numbers(True), "f_change", row=_change),
    Function("last", 1, 1, "last(series) -> value", "latest period's value",
             element, "f_last", row=_last, series="any", whole=whole_if_args),
    Function("first", 1, 1, "first(series) -> value", "earliest period's value",
             element, "f_first", row=_first, series="any", whole=whole_if_args),
    Function("tail", 2, 2, "tail(series, n) -> series", f"the latest n periods {_W}",
             lambda c, fn, node, args: (args[0][0], False), "f_tail", row=_tail, literal_args=(1,),
             series="any", window_arg=1, whole=whole_if_first),
    Function("sum", 1, 1, "sum(series) -> number", "sum; null if empty or any period is null",
             returns(NUMBER, True), "f_sum", row=_sum, series=NUMBER, whole=whole_if_args),
    Function("avg", 1, 1, "avg(series) -> number", "mean; null if empty or any period is null",
             returns(NUMBER, True), "f_avg", row=_avg, series=NUMBER),
    Function("sum_last", 2, 2, "sum_last(series, n) -> number",
             f"sum of the latest n periods {_W}; null unless all n have a value",
             returns(NUMBER, True), "f_sum_last", row=_sum_last, literal_args=(1,), series=NUMBER, window_arg=1,
             whole=whole_if_args),
    Function("avg_last", 2, 2, "avg_last(series, n) -> number",
             f"mean of the latest n periods {_W}; null unless all n have a value",
             returns(NUMBER, True), "f_avg_last", row=_avg_last, literal_args=(1,), series=NUMBER, window_arg=1),
    Function("count", 1, 1, "count(series) -> number", "number of periods with a value",
             returns(NUMBER, False), "f_count", row=_count, series="any", whole=always_whole),
    Function("series_min", 1, 1, "series_min(series) -> number", "smallest period value",
             returns(NUMBER, True), "f_series_min", row=_series_min, series=NUMBER, whole=whole_if_args),
    Function("series_max", 1, 1, "series_max(series) -> number", "largest period value",
             returns(NUMBER, True), "f_series_max", row=_series_max, series=NUMBER, whole=whole_if_args),
    Function("streak", 3, 3, "streak(series, 'op', x) -> number",
             "periods, from the latest back, for which value op x holds ('<', '<=', '>', '>=', '==', '!='); "
             "null when a period without a value is reached before the streak ends",
             _check_streak, "f_streak", row=_streak, literal_args=(1,), series=NUMBER, operator_arg=1,
             whole=always_whole),
    Function("pct_change", 2, 2, "pct_change(series, n) -> number",
             f"relative change of the latest period against n periods earlier {_W}",
             returns(NUMBER, True), "f_pct_change", row=_pct_change, literal_args=(1,), series=NUMBER, window_arg=1),
    Function("days_between", 2, 2, "days_between(d1, d2) -> number", "days from d1 to d2",
             of_dates, "f_days_between", row=_days_between, whole=always_whole),
    Function("months_between", 2, 2, "months_between(d1, d2) -> number", "whole months from d1 to d2",
             of_dates, "f_months_between", row=_months_between, whole=always_whole),
    Function("date", 1, 1, "date('YYYY-MM-DD') -> date", "a date literal",
             _check_date, "f_date", row_code=_row_date, vector_args=False, literal_args=(0,),
             row_helpers=lambda _: {"_date": _dt.date.fromisoformat}),
    Function("grade_rank", 1, 1, "grade_rank(g) -> number",
             "position of grade g on the scale (0 = best); null if g is null. g must be a grade: a grade "
             "input, grade, a grade literal, or a conditional / coalesce of those",
             _check_grade_rank, "f_grade_rank", row_code=_row_grade_rank, row_helpers=_grade_rank_helper,
             whole=always_whole),
    Function("grade_at_least", 1, 1, "grade_at_least('grade') -> bool",
             "the decided grade is this grade or worse (inside an aggregation over the graded exposures, in any "
             "debtor rule: that exposure's own grade)", _check_grade_at_least, "f_grade_at_least",
             row_code=_row_grade_at_least, vector_args=False, first_stage="graded", literal_args=(0,)),
    Function("fired", 1, 1, "fired('warning_id') -> bool",
             "the warning fired (null when its condition was undetermined)", _check_fired, "f_fired",
             row_code=_row_fired, vector_args=False, first_stage="action", literal_args=(0,)),
    Function("add_months", 2, 2, "add_months(d, n) -> date",
             f"d moved n calendar months, the day clamped to the month's end (2024-01-31 + 1 = 2024-02-29); "
             f"null when n is not a whole number within ±{MAX_MONTHS} or the date leaves the calendar (an n "
             "written as a number, or a parameter, is checked by `validate`: 0.5 is an error there)",
             _check_add_months, "f_add_months", row=_add_months),
    Function("lag", 2, 2, "lag(series, n) -> value",
             f"the value n periods before the latest {_W}; null when there are not n + 1 periods or it has none",
             element, "f_lag", row=_lag, literal_args=(1,), series="any", window_arg=1, whole=whole_if_first),
    Function("diff", 2, 2, "diff(series, n) -> number",
             f"the latest value minus the one n periods earlier {_W}; null unless both have a value",
             returns(NUMBER, True), "f_diff", row=_diff, literal_args=(1,), series=NUMBER, window_arg=1,
             whole=whole_if_first),
    Function("count_last", 4, 4, "count_last(series, n, 'op', x) -> number",
             f"how many of the latest n periods have value op x {_W}; null when there are fewer than n "
             "periods or any of them has no value",
             _check_count_last, "f_count_last", row=_count_last, literal_args=(1, 2), series=NUMBER, window_arg=1,
             operator_arg=2, whole=always_whole),
    Function("lookup", 2, 3, "lookup(table, key) / lookup(table, key1, key2) -> value",
             "the cell of a table parameter; each key argument is the name the table declares as its key, "
             "and validate proves every value that key can take has a cell; null if a key is null; an "
             "interpolated table (one numeric key) is linear between its points and clamps to the end "
             "values outside them",
             _check_lookup, "f_lookup", row_code=_row_lookup, row_helpers=lambda _: {"_lookup": _lookup},
             vector_args=False, table_arg=0),
]}


def row_runtime() -> dict[str, Callable[..., Any]]:
    """The runtime helpers generated code calls by a function's name."""
    return {f.name: f.row for f in FUNCTIONS.values() if f.row is not None}


def row_helpers(grades: Sequence[str]) -> dict[str, Any]:
    """The helpers inline row code calls (``_date``, ``_grade_rank`` for this scale, ...)."""
    out: dict[str, Any] = {}
    for f in FUNCTIONS.values():
        if f.row_helpers is not None:
            out.update(f.row_helpers(grades))
    return out


def describe(fn: Function) -> dict[str, Any]:
    """One entry as ``policy-engine functions`` lists it (JSON for tools and editors)."""
    return {"name": fn.name, "signature": fn.signature, "doc": fn.doc, "min_args": fn.min_args,
            "max_args": fn.max_args, "literal_args": list(fn.literal_args), "window_arg": fn.window_arg,
            "operator_arg": fn.operator_arg, "first_stage": fn.first_stage}


def describe_text(fn: Function) -> str:
    """One entry as a line of the text listing: signature, what it does, where it may be used."""
    later = [STAGE_WORDS[s] for s in STAGES[STAGES.index(fn.first_stage):]]
    shown = later[0] if len(later) == 1 else f"{', '.join(later[:-1])} and {later[-1]}"
    where = "" if fn.first_stage == "param" else f" (only in {shown})"
    return f"{fn.signature:<40} {fn.doc}{where}"


# ------------------------------------------------------------------ aggregations over a scope
#
# An aggregation reads a child scope of the expression's scope (the exposures of a debtor, the
# payments of an exposure). Its first argument names the scope; the checker types the other
# arguments *in that scope* (they read its names and its ancestors'), so a condition over payments
# is written in the same checked language as any other. Row code is a list (or, for an aggregation
# an element can settle, a generator: see _EARLY_EXIT) built over the child elements in generated
# code (policy text never holds a comprehension) and reduced by a helper.
# Null rules are three-valued, like ``and`` / ``or``: a null condition makes the result null unless
# another element settles it (a True for any_of, a False for all_of); a count or a sum is null when
# any condition it depends on is null, never a smaller count.

SCOPE = "scope"  # the annotation of an aggregation's first argument


def _agg_want(c: Checker, fn: Function, node: ast.Call, args: Args, i: int, *types: str) -> None:
    if i < len(args):
        want(c, fn, node, i, args[i][0], *types)


def _check_count_where(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, BOOL)
    return NUMBER, args[1][1]


def _check_sum_where(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, NUMBER)
    _agg_want(c, fn, node, args, 2, BOOL)
    return NUMBER, any(n for _, n in args[1:])


def _check_share_where(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, NUMBER)
    _agg_want(c, fn, node, args, 2, BOOL)
    return NUMBER, True  # no weight at all (or a zero total) has no share


def _check_any_all(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, BOOL)
    return BOOL, args[1][1]


def _check_min_max_of(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, NUMBER, DATE)
    # an empty scope has no smallest value; one that is never empty (its min) has one unless a value is null
    return args[1][0], args[1][1] or not c.scope.never_empty(node.args[0])


def _check_min_max_where(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, NUMBER, DATE)
    _agg_want(c, fn, node, args, 2, BOOL)
    return args[1][0], True  # no element may meet the condition


def _check_first_date(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, DATE)
    _agg_want(c, fn, node, args, 2, BOOL)
    return DATE, True  # no element may match


def _check_last_of(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    _agg_want(c, fn, node, args, 1, NUMBER, DATE, STRING)
    _agg_want(c, fn, node, args, 2, BOOL)
    return args[1][0], True  # no element may match


def _check_worst_grade(c: Checker, fn: Function, node: ast.Call, args: Args) -> tuple[str, bool]:
    if not c.scope.child_graded(node.args[0].id):  # type: ignore[attr-defined]
        raise c.fail("type-mismatch", f"worst_grade() reads the grades of the graded scope; "
                     f"'{node.args[0].id}' has no grades", node.args[0])  # type: ignore[attr-defined]
    return GRADE, not c.scope.never_empty(node.args[0])  # no exposure, no grade; every element has one


def _agg_count_where(conds: list[Any]) -> Any:
    return None if None in conds else float(conds.count(True))


def _agg_sum_where(pairs: list[tuple[Any, Any]]) -> Any:
    total = 0.0
    for x, cond in pairs:
        if cond is None:
            return None
        if cond:
            if x is None:
                return None
            total += x
    return total


def _agg_sum_of(values: list[Any]) -> Any:
    return None if None in values else float(sum(values, 0.0))


def _agg_share_where(pairs: list[tuple[Any, Any]]) -> Any:
    total = part = 0.0
    for w, cond in pairs:
        if w is None or cond is None:
            return None
        total += w
        if cond:
            part += w
    return part / total if total > 0 else None


def _agg_any_of(conds: Iterable[Any]) -> Any:
    """Stops at the first True: nothing after it can change the answer (a null before it neither)."""
    unknown = False
    for cond in conds:
        if cond is None:
            unknown = True
        elif cond:
            return True
    return None if unknown else False


def _agg_all_of(conds: Iterable[Any]) -> Any:
    """Stops at the first False: nothing after it can change the answer (a null before it neither)."""
    unknown = False
    for cond in conds:
        if cond is None:
            unknown = True
        elif not cond:
            return False
    return None if unknown else True


def _agg_min_of(values: list[Any]) -> Any:
    return None if not values or None in values else min(values)


def _agg_max_of(values: list[Any]) -> Any:
    return None if not values or None in values else max(values)


def _agg_min_where(pairs: list[tuple[Any, Any]]) -> Any:
    """The smallest x of the elements whose condition holds: ``min_of`` over them (the first of equals kept).

    A null condition makes the answer unknown (that element might have been the smallest), as does
    a null x of an element that meets it; no element meeting it has no answer either.
    """
    best = None
    for x, cond in pairs:
        if cond is None:
            return None
        if cond:
            if x is None:
                return None
            if best is None or x < best:
                best = x
    return best


def _agg_max_where(pairs: list[tuple[Any, Any]]) -> Any:
    """``_agg_min_where`` for the largest x."""
    best = None
    for x, cond in pairs:
        if cond is None:
            return None
        if cond:
            if x is None:
                return None
            if best is None or x > best:
                best = x
    return best


def _agg_first_date(pairs: Iterable[tuple[Any, Any]]) -> Any:
    """The date of the first element (in the scope's order) whose condition holds.

    An earlier element whose condition is null makes the answer unknown: it might have been first.
    ``pairs`` is a generator: the elements after the answer are never evaluated.
    """
    for d, cond in pairs:
        if cond is None:
            return None
        if cond:
            return d
    return None


def _agg_last_of(pairs_backwards: Iterable[tuple[Any, Any]]) -> Any:
    """x of the last element (in the scope's order) whose condition holds: first_date read backwards.

    A later element whose condition is null makes the answer unknown: it might have been last.
    The generated code passes the pairs last element first (a generator over the reversed
    elements), so the elements before the answer are never evaluated.
    """
    for x, cond in pairs_backwards:
        if cond is None:
            return None
        if cond:
            return x
    return None


# Aggregations whose answer can be settled before the last element: their row code passes a
# generator, so the helper's early return skips the remaining elements' expressions (a list would
# evaluate them all). The others read every element anyway and take a list (built faster).
_EARLY_EXIT = frozenset({"_agg_any_of", "_agg_all_of", "_agg_first_date", "_agg_last_of"})
_BACKWARDS = frozenset({"_agg_last_of"})  # read last element first, over ``_agg_reversed(elements)``


# The loop form of an aggregation (the compiler pass "aggregation loops"): where generated code
# stands in a list of statements (a function body: a metric's assignment, a floor, an action),
# an aggregation is a ``for`` statement written ahead of the statement that reads it, its answer
# in a local. No list or generator is built, no helper called and, above all, no comprehension
# frame made (each is a function call in Python 3.11): the exposure stage of a 2.0.0 decision
# runs about thirty of them per exposure. Each template is its helper's definition above written
# one element at a time, stopping (break) where the helper returns early; tests/language holds
# them equal over every order of True, False and null. Placeholders: ACC the answer, V the element,
# ELEMS the elements, COND / XV the code of the arguments, BODY the loops of aggregations nested in
# those arguments (per element), C, X, T, P temporaries. Per helper: the role of each argument
# after the scope, the argument whose nullability picks the form (None: always the general one),
# and the forms (argument nullable, argument never null). sum_of and worst_grade keep their
# helpers: float(sum(...)) is a compensated sum from Python 3.12 on, which a loop would not be.
_LOOP_ROLES: dict[str, tuple[tuple[str, ...], str | None]] = {
    "_agg_count_where": (("COND",), "COND"), "_agg_sum_where": (("XV", "COND"), None),
    "_agg_share_where": (("XV", "COND"), None), "_agg_any_of": (("COND",), "COND"),
    "_agg_all_of": (("COND",), "COND"), "_agg_min_of": (("XV",), "XV"), "_agg_max_of": (("XV",), "XV"),
    "_agg_first_date": (("XV", "COND"), "COND"), "_agg_last_of": (("XV", "COND"), "COND"),
    "_agg_min_where": (("XV", "COND"), "COND"), "_agg_max_where": (("XV", "COND"), "COND"),
}
_FIRST = ("""
ACC = None
for V in ELEMS:
    BODY
    C = COND
    if C is None:
        break
    if C:
        ACC = XV
        break
""", """
ACC = None
for V in ELEMS:
    BODY
    if COND:
        ACC = XV
        break
""")
_EXTREME = """
ACC = None
for V in ELEMS:
    BODY
    X = XV
    if X is None:
        ACC = None
        break
    if ACC is None or X OP ACC:
        ACC = X
""", """
ACC = None
for V in ELEMS:
    BODY
    X = XV
    if ACC is None or X OP ACC:
        ACC = X
"""
_EXTREME_WHERE = """
ACC = None
for V in ELEMS:
    BODY
    C = COND
    if C is None:
        ACC = None
        break
    if C:
        X = XV
        if X is None:
            ACC = None
            break
        if ACC is None or X OP ACC:
            ACC = X
""", """
ACC = None
for V in ELEMS:
    BODY
    if COND:
        X = XV
        if X is None:
            ACC = None
            break
        if ACC is None or X OP ACC:
            ACC = X
"""
_ANY = """
ACC = False
for V in ELEMS:
    BODY
    C = COND
    if C is None:
        ACC = None
    elif C:
        ACC = True
        break
""", """
ACC = False
for V in ELEMS:
    BODY
    if COND:
        ACC = True
        break
"""
_ALL = """
ACC = True
for V in ELEMS:
    BODY
    C = COND
    if C is None:
        ACC = None
    elif not C:
        ACC = False
        break
""", """
ACC = True
for V in ELEMS:
    BODY
    if not COND:
        ACC = False
        break
"""
_LOOPS: dict[str, tuple[str, str]] = {
    "_agg_count_where": ("""
ACC = 0.0
for V in ELEMS:
    BODY
    C = COND
    if C is None:
        ACC = None
        break
    if C:
        ACC += 1.0
""", """
ACC = 0.0
for V in ELEMS:
    BODY
    if COND:
        ACC += 1.0
"""),
    "_agg_sum_where": ("""
ACC = 0.0
for V in ELEMS:
    BODY
    X = XV
    C = COND
    if C is None:
        ACC = None
        break
    if C:
        if X is None:
            ACC = None
            break
        ACC += X
""",) * 2,
    "_agg_share_where": ("""
T = 0.0
P = 0.0
for V in ELEMS:
    BODY
    X = XV
    C = COND
    if X is None or C is None:
        T = None
        break
    T += X
    if C:
        P += X
ACC = None if T is None or not T > 0 else P / T
""",) * 2,
    "_agg_any_of": _ANY,  # a True settles it (a null before it does not matter)
    "_agg_all_of": _ALL,  # a False settles it
    "_agg_min_of": (_EXTREME[0].replace("OP", "<"), _EXTREME[1].replace("OP", "<")),
    "_agg_max_of": (_EXTREME[0].replace("OP", ">"), _EXTREME[1].replace("OP", ">")),
    "_agg_min_where": (_EXTREME_WHERE[0].replace("OP", "<"), _EXTREME_WHERE[1].replace("OP", "<")),
    "_agg_max_where": (_EXTREME_WHERE[0].replace("OP", ">"), _EXTREME_WHERE[1].replace("OP", ">")),
    "_agg_first_date": _FIRST,
    "_agg_last_of": _FIRST,  # over the reversed elements
}
# The aggregations whose loop reads the value only where the condition holds (see _FIRST, _EXTREME_WHERE).
_AT_HIT = frozenset({"_agg_first_date", "_agg_last_of", "_agg_min_where", "_agg_max_where"})
_TEMPORARIES = frozenset({"ACC", "C", "X", "T", "P"})


def _parsed_loop(source: str) -> list[ast.stmt]:
    """A template's statements without source positions (generated nodes get theirs from ``locate``)."""
    body = ast.parse(source).body
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        for a in ("lineno", "col_offset", "end_lineno", "end_col_offset"):
            if hasattr(node, a):
                delattr(node, a)
    return body


class _FillLoop(ast.NodeTransformer):
    """A template with its placeholders filled: the arguments' code, fresh temporaries, nested loops."""

    def __init__(self, g: RowGen, names: dict[str, str], exprs: Mapping[str, ast.expr], body: list[ast.stmt]):
        self.g, self.names, self.exprs, self.body = g, names, exprs, body

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in self.exprs:
            return self.exprs[node.id]
        if node.id in _TEMPORARIES and node.id not in self.names:
            self.names[node.id] = self.g.tmp()
        node.id = self.names.get(node.id, node.id)
        return node

    def visit_Expr(self, node: ast.Expr) -> Any:
        if isinstance(node.value, ast.Name) and node.value.id == "BODY":
            return self.body  # may be empty: the statement goes
        return self.generic_visit(node)


def _loop(g: RowGen, helper: str, node: ast.Call, var: str, elements: ast.expr, parts: list[ast.expr],
          body: list[ast.stmt], fields: Mapping[str, list[ast.Subscript]]) -> ast.expr:
    """Write the loop of ``helper`` into the statements where the code stands; its answer's local.

    ``fields``: the reads of the element's fields in its arguments (see ``read_once``)."""
    assert g.sink is not None
    roles, decisive = _LOOP_ROLES[helper]
    nullable = decisive is None or g.nullable(node.args[1 + roles.index(decisive)])
    source = _LOOPS[helper][0 if nullable else 1]
    names = {"V": var}
    reads = g.read_once(var, fields)
    fill = _FillLoop(g, names, {"ELEMS": elements, **dict(zip(roles, parts, strict=True))}, reads + body)
    g.sink.extend(fill.visit(stmt) for stmt in _parsed_loop(source))
    return g.load(names["ACC"])


def _row_aggregation(helper: str) -> RowCodeHook:
    """A loop written ahead of the statement that reads it (see _LOOPS), where the code stands in a
    statement list; elsewhere ``helper([<args> for e in <child elements>])``: the other arguments
    built in the child scope (a generator instead of the list for the aggregations of ``_EARLY_EXIT``)."""

    def build(g: RowGen, node: ast.Call) -> ast.expr:
        scope = node.args[0].id  # type: ignore[attr-defined]
        elements = g.scope_elements(scope)
        if helper in _BACKWARDS:
            elements = g.call("_agg_reversed", [elements])
        outer = g.sink
        lowered = outer is not None and helper in _LOOPS
        body: list[ast.stmt] = []
        g.sink = body if lowered else None  # inside a comprehension, a nested aggregation is one too
        var = g.enter_scope(scope, loop=lowered)
        try:
            # In a loop, the value of the aggregations of _AT_HIT is read only where the condition holds.
            parts = [g.lazy(a) if lowered and k == 0 and helper in _AT_HIT else g.gen(a)
                     for k, a in enumerate(node.args[1:])]
        finally:
            fields = g.leave_scope()
            g.sink = outer
        if lowered:
            return _loop(g, helper, node, var, elements, parts, body, fields)
        elt = parts[0] if len(parts) == 1 else ast.Tuple(elts=parts, ctx=ast.Load())
        gens = [ast.comprehension(target=ast.Name(id=var, ctx=ast.Store()), iter=elements, ifs=[], is_async=0)]
        comp = ast.GeneratorExp(elt=elt, generators=gens) if helper in _EARLY_EXIT else ast.ListComp(
            elt=elt, generators=gens)
        return g.call(helper, [comp])

    return build


def _row_worst_grade(g: RowGen, node: ast.Call) -> ast.expr:
    scope = node.args[0].id  # type: ignore[attr-defined]
    elements = g.scope_elements(scope)
    var = g.enter_scope(scope)
    try:
        rank = g.rank_expr()
    finally:
        g.leave_scope()
    comp = ast.ListComp(elt=rank, generators=[ast.comprehension(
        target=ast.Name(id=var, ctx=ast.Store()), iter=elements, ifs=[], is_async=0)])
    return g.call("_agg_worst_grade", [comp])


def _worst_grade_helper(grades: Sequence[str]) -> Mapping[str, Any]:
    def _agg_worst_grade(ranks: list[int]) -> Any:
        return grades[max(ranks)] if ranks else None

    return {"_agg_worst_grade": _agg_worst_grade}


def _aggregation(name: str, n: int, signature: str, doc: str, check: CheckHook, helper: str,
                 row: Callable[..., Any]) -> Function:
    helpers = {helper: row, "_agg_reversed": reversed} if helper in _BACKWARDS else {helper: row}
    return Function(name, n, n, signature, doc, check, "", row=row, row_code=_row_aggregation(helper),
                    row_helpers=lambda _: helpers, vector_args=False, aggregates=True,
                    whole=always_whole if name == "count_where" else _whole_if_value if name in _OF_VALUES else None)


# The aggregations: a second part of the function table, read by the checker and the row code
# generator like FUNCTIONS; kept apart because they only exist in policies that declare scopes
# (and the vector evaluator refuses those until it has the long-table form).
AGGREGATIONS: dict[str, Function] = {f.name: f for f in [
    _aggregation("count_where", 2, "count_where(scope, cond) -> number",
                 "how many elements of the scope meet cond; null when cond is null for any element",
                 _check_count_where, "_agg_count_where", _agg_count_where),
    _aggregation("sum_where", 3, "sum_where(scope, x, cond) -> number",
                 "sum of x over the elements meeting cond (0 when none); null when a cond, or an x summed, is null",
                 _check_sum_where, "_agg_sum_where", _agg_sum_where),
    _aggregation("sum_of", 2, "sum_of(scope, x) -> number", "sum of x over the scope (0 when empty); null if any is",
                 _check_sum_where, "_agg_sum_of", _agg_sum_of),
    _aggregation("share_where", 3, "share_where(scope, weight, cond) -> number",
                 "weight of the elements meeting cond / total weight; null when the total is not positive or any "
                 "weight or cond is null", _check_share_where, "_agg_share_where", _agg_share_where),
    _aggregation("any_of", 2, "any_of(scope, cond) -> bool",
                 "cond holds for some element; null when none holds and some cond is null (like or)",
                 _check_any_all, "_agg_any_of", _agg_any_of),
    _aggregation("all_of", 2, "all_of(scope, cond) -> bool",
                 "cond holds for every element (True when empty); null when none fails and some cond is null "
                 "(like and)", _check_any_all, "_agg_all_of", _agg_all_of),
    _aggregation("min_of", 2, "min_of(scope, x) -> number or date",
                 "smallest x over the scope; null when empty or any is null", _check_min_max_of, "_agg_min_of",
                 _agg_min_of),
    _aggregation("max_of", 2, "max_of(scope, x) -> number or date",
                 "largest x over the scope; null when empty or any is null", _check_min_max_of, "_agg_max_of",
                 _agg_max_of),
    _aggregation("min_where", 3, "min_where(scope, x, cond) -> number or date",
                 "smallest x over the elements meeting cond; null when none does, a cond is null or an x taken "
                 "is null", _check_min_max_where, "_agg_min_where", _agg_min_where),
    _aggregation("max_where", 3, "max_where(scope, x, cond) -> number or date",
                 "largest x over the elements meeting cond, e.g. the latest date a late payment was made; null "
                 "when none does, a cond is null or an x taken is null", _check_min_max_where, "_agg_max_where",
                 _agg_max_where),
    _aggregation("first_date", 3, "first_date(scope, d, cond) -> date",
                 "d of the first element (in the scope's order_by) meeting cond; null when none does or an "
                 "earlier cond is null", _check_first_date, "_agg_first_date", _agg_first_date),
    _aggregation("last_of", 3, "last_of(scope, x, cond) -> number, date or text",
                 "x of the last element (in the scope's order_by) meeting cond, e.g. the measure of the latest "
                 "restructuring; null when none does or a later cond is null", _check_last_of, "_agg_last_of",
                 _agg_last_of),
    Function("worst_grade", 1, 1, "worst_grade(scope) -> grade",
             "the worst grade of the graded scope's elements (each exposure's own grade in debtor metrics and "
             "floors, its final grade after classification); null when there is none", _check_worst_grade, "",
             row_code=_row_worst_grade, row_helpers=_worst_grade_helper, vector_args=False, aggregates=True),
]}


def aggregation_helpers(grades: Sequence[str]) -> dict[str, Any]:
    """The helpers aggregation row code calls."""
    out: dict[str, Any] = {}
    for f in AGGREGATIONS.values():
        if f.row_helpers is not None:
            out.update(f.row_helpers(grades))
    return out
