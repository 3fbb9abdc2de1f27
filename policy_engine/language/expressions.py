"""The expression language: parse once, check against an allow-list, type, then compile.

Every ``when``, metric and formula of a policy goes through here and nowhere
else. Text is parsed with :mod:`ast` once, at load time; the tree is checked
node by node against an allow-list of node types, names and functions, typed,
and only then turned into Python code by building ``ast`` nodes (never by
pasting text into a template). Values are plain numbers, booleans, strings,
dates and lists of those; functions come from :data:`FUNCTIONS`, our own
wrappers that never hand back objects or accept callables.

Null semantics are explicit (DESIGN section 3): arithmetic with null is null,
a zero denominator is null, comparisons with null are null, ``and``/``or``
follow three-valued (Kleene) logic, and a null condition does not fire but is
reported by the evaluator as *undetermined*.
"""

from __future__ import annotations

import ast
import copy
import io
import math
import re
import sys
import tokenize
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import simpleeval

from ..diagnostics import closest, did_you_mean
from ..frozen import Frozen, field
from .functions import AGGREGATIONS as AGGREGATIONS

# The types and limits the language speaks live with the function table; re-exported for the engine.
from .functions import BOOL as BOOL
from .functions import DATE as DATE
from .functions import FUNCTIONS as FUNCTIONS
from .functions import GRADE as GRADE
from .functions import MAX_MONTHS as MAX_MONTHS
from .functions import MAX_ROUND_DIGITS as MAX_ROUND_DIGITS
from .functions import MAX_TABLE_CELLS as MAX_TABLE_CELLS
from .functions import MAX_WINDOW as MAX_WINDOW
from .functions import NULL as NULL
from .functions import NUMBER as NUMBER
from .functions import SCALARS as SCALARS
from .functions import SCOPE as SCOPE_ARG
from .functions import SERIES_DATE as SERIES_DATE
from .functions import SERIES_NUMBER as SERIES_NUMBER
from .functions import STAGE_WORDS as STAGE_WORDS
from .functions import STAGES as STAGES
from .functions import STRING as STRING
from .functions import TABLE as TABLE
from .functions import UNKNOWN as UNKNOWN
from .functions import Function as Function
from .functions import GradeScale as GradeScale
from .functions import Table as Table
from .functions import aggregation_helpers, check_call, row_helpers, row_runtime, table_global
from .functions import unknown_grade_hint as unknown_grade_hint

# Names an author brings from a spreadsheet or SQL, and ours for them.
_SPREADSHEET = {"count_if": "count_where", "countif": "count_where", "sum_if": "sum_where", "sumif": "sum_where",
                "any": "any_of", "exists": "any_of", "all": "all_of", "every": "all_of"}
# A function of a series or of values called over a scope ('sum(exposure, balance)'): the aggregation meant.
_OVER_SCOPE = {"sum": "sum_of({scope}, {value})", "max": "max_of({scope}, {value})",
               "min": "min_of({scope}, {value})", "count": "count_where({scope}, True)",
               "avg": "sum_of({scope}, {value}) / count_where({scope}, True)", "last": "last_of({scope}, {value})"}

# Limits (simpleeval's for power and strings; ours for the rest). A policy that
# needs more than these is almost certainly a mistake or an attack.
MAX_EXPRESSION_LENGTH = 2_000
MAX_DEPTH = 40
MAX_LITERAL = 1e15
MAX_STRING_LITERAL = min(200, simpleeval.MAX_STRING_LENGTH)
MAX_POWER = simpleeval.MAX_POWER
MAX_EXPONENT = 100  # |e| in x ** e, proved at validate time
MAX_LIST_LITERAL = 64


class ExpressionError(Exception):
    """A located problem in one expression (column is 1-based inside the text)."""

    def __init__(self, code: str, message: str, column: int | None = None, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.column = column
        self.hint = hint


class ExpressionErrors(ExpressionError):
    """Every independent error of one expression, by position; the first is also this error's own."""

    def __init__(self, errors: Sequence[ExpressionError]):
        first = errors[0]
        super().__init__(first.code, first.message, first.column, first.hint)
        self.all = tuple(errors)


def every_error(error: ExpressionError) -> tuple[ExpressionError, ...]:
    """The errors an :class:`ExpressionError` stands for: itself, or each of an :class:`ExpressionErrors`."""
    return error.all if isinstance(error, ExpressionErrors) else (error,)


class _FollowsUnknown(ExpressionError):
    """An error about an expression of unknown type: it follows from one reported elsewhere, so it is dropped."""


class _TooDeep(ExpressionError):
    """Nesting beyond the limit: the check stops there (the rest of such a text is not worth reading)."""


class Symbol(Frozen):
    """A name an expression may read: an input, a parameter, a metric or a built-in."""

    name: str
    kind: str  # input | param | metric | builtin
    type: str
    nullable: bool
    enum: tuple[str, ...] | None = None
    bounds: tuple[float, float] | None = None  # every value lies in [low, high]: a parameter, a min/max input
    first_stage: str = "param"  # the first stage that may read it: "graded" for a metric after classification
    table: Table | None = None  # a table parameter's keys and cells (type TABLE)
    whole: bool = False  # every value is a whole number: a parameter that may count months


_STAGE_INDEX = {s: i for i, s in enumerate(STAGES)}



class Scope(Frozen):
    symbols: Mapping[str, Symbol]
    stage: str
    grades: tuple[str, ...]
    warnings: Mapping[str, bool] = field(default_factory=dict)  # id -> nullable
    # classification rule id -> the grade it floors to and the scope it is written in (for fired()'s hint)
    rules: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    # A section that declares names was left out (a schema error): a name not in ``symbols`` may be
    # one of its names, so it is of unknown type, not an unknown name.
    open_names: bool = False
    # Names an imported module offers that the policy left out of its import, with the words that say so: an unknown
    # name among them is told where it is (not "did you mean" a name of the policy's own).
    unimported: Mapping[str, str] = field(default_factory=dict)
    # Scopes (policies that declare them): the child scopes an aggregation may read from here,
    # each with the view of names inside it; names this view may not read, with why; whether the
    # grade of this scope's elements is known (inside an aggregation over the graded scope).
    name: str = "debtor"
    children: Mapping[str, Scope] = field(default_factory=dict)
    all_scopes: Mapping[str, str | None] = field(default_factory=dict)  # scope -> parent (None: the debtor)
    elsewhere: Mapping[str, tuple[str, str, str | None]] = field(default_factory=dict)  # name -> code, msg, hint
    grade_known: bool = False
    graded: bool = False  # this scope's elements have grades (the graded scope)
    least: Mapping[str, int] = field(default_factory=dict)  # scope -> the fewest elements it holds (its min)
    # Element metrics: a metric of a scope whose elements are not graded (each modification's 'restructuring'):
    # name -> (its scope, its checked tree). Read in its scope, its tree stands where its name is written, so
    # every evaluator computes it as if written there, and the definition is written once.
    element_metrics: Mapping[str, tuple[str, ast.expr]] = field(default_factory=dict)
    # classification.provisional_grades: unknown: in the graded scope, grade_at_least is null for an element that
    # only an undetermined floor would bring to the grade (its ``@rank_max``); the row code then reads both ranks.
    provisional_unknown: bool = False

    def allows(self, first_stage: str) -> bool:
        return _STAGE_INDEX[self.stage] >= _STAGE_INDEX[first_stage]

    def child_graded(self, scope: str) -> bool:
        child = self.children.get(scope)
        return child is not None and child.graded

    def never_empty(self, node: ast.AST) -> bool:
        """Whether the scope an aggregation names (its first argument) holds an element in every record: its
        ``min`` is at least 1, so a record without one was refused before any expression ran."""
        return isinstance(node, ast.Name) and self.least.get(node.id, 0) > 0


class ScopeLayout(Frozen):
    """Where scoped names live, for generated code: each scoped name's scope, each scope's parent."""

    owner: Mapping[str, str]  # name of a scope's input or metric -> the scope
    parent: Mapping[str, str | None]  # scope -> its parent scope (None: the debtor)


class CheckedExpression(Frozen, eq=False):
    """The compiled form of one expression: checked tree plus what it reads."""

    source: str
    tree: ast.expr
    type: str
    nullable: bool
    refs: tuple[str, ...]  # the names read in the expression's own scope
    fired_refs: tuple[str, ...]
    uses_grade: bool
    annotations: Mapping[int, tuple[str, bool]] = field(repr=False, compare=False)
    # Names read inside aggregations, in a child scope (not values of this expression's environment).
    inner_refs: tuple[str, ...] = ()
    # The table parameters it looks up, by name: code generation embeds them as constants.
    tables: Mapping[str, Table] = field(repr=False, compare=False, default_factory=dict)


# ----------------------------------------------------------------- operators


def _fin(x: Any) -> Any:
    """Overflowed arithmetic (inf, nan) has no meaning in a ratio: it becomes null."""
    if type(x) is float and not -math.inf < x < math.inf:
        return None
    return x


def _literal_of_magnitude(node: ast.AST, least: float) -> bool:
    """A number literal (signed or not) whose magnitude is at least ``least``."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float) and math.isfinite(node.value) \
        and abs(node.value) >= least


def proven_finite(node: ast.AST) -> bool:
    """The value is finite or null whatever the inputs, so ``_fin`` need not check it: a count
    (``count_where``: an exposure's code has four), a finite literal, and ``coalesce`` or a
    conditional of such values."""
    if isinstance(node, ast.Constant):
        return type(node.value) in (int, float) and math.isfinite(node.value)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id == "count_where":
            return True
        return node.func.id == "coalesce" and all(proven_finite(a) for a in node.args)
    if isinstance(node, ast.IfExp):
        return proven_finite(node.body) and proven_finite(node.orelse)
    return False


def _div(a: Any, b: Any) -> Any:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _floordiv(a: Any, b: Any) -> Any:
    if a is None or b is None or b == 0:
        return None
    return a // b


def _mod(a: Any, b: Any) -> Any:
    if a is None or b is None or b == 0:
        return None
    return a % b


def _pow(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    try:
        r = simpleeval.safe_power(a, b)
        return None if type(r) is complex else r
    except (simpleeval.NumberTooHigh, OverflowError, ZeroDivisionError, ValueError):
        return None
    except TypeError:
        return None


# What generated code calls: the operator helpers, then each function's row implementation
# (from the function table, :mod:`policy_engine.language.functions`), by the function's name.
RUNTIME: dict[str, Any] = {
    "_fin": _fin, "_div": _div, "_floordiv": _floordiv, "_mod": _mod, "_pow": _pow, **row_runtime(),
}


# ------------------------------------------------------------------ checking

# Expression nodes a policy may write. Operators are not nodes of their own here: each
# operator node is checked against the operator tables below by the node that holds it.
_ALLOWED_NODES = (
    ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.IfExp, ast.Call,
    ast.Name, ast.Load, ast.Constant, ast.List, ast.Tuple,
)

_NODE_NAMES = {
    ast.Attribute: "attribute access ('.')", ast.Subscript: "subscripts ('[...]')",
    ast.Lambda: "lambdas", ast.NamedExpr: "assignment expressions (':=')",
    ast.ListComp: "comprehensions", ast.SetComp: "comprehensions", ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions", ast.JoinedStr: "f-strings",
    ast.Starred: "starred arguments", ast.Await: "await", ast.Yield: "yield",
    ast.YieldFrom: "yield", ast.Dict: "dict literals", ast.Set: "set literals",
    ast.Slice: "slices",
}

# The operator allow-list, one table per kind of node, operator -> how it is written.
# An operator missing here is refused at validate time, even one the type rules would let
# through: Python gives bitwise and identity operators meanings a policy never intends.
BINARY_OPERATORS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**",
}
UNARY_OPERATORS: dict[type[ast.unaryop], str] = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
COMPARISON_OPERATORS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}
BOOLEAN_OPERATORS: dict[type[ast.boolop], str] = {ast.And: "and", ast.Or: "or"}

# Python operators the language refuses, with what to write instead.
_REFUSED_OPERATORS: dict[type[ast.AST], tuple[str, str]] = {
    ast.BitAnd: ("&", "use and/or instead of &/|"),
    ast.BitOr: ("|", "use and/or instead of &/|"),
    ast.BitXor: ("^", "use ** for a power; for 'exactly one of two conditions' write a != b"),
    ast.Invert: ("~", "use not for a condition, - for a sign"),
    ast.LShift: ("<<", "use * 2 ** n"),
    ast.RShift: (">>", "use / 2 ** n"),
    ast.MatMult: ("@", "use * for a product"),
    ast.Is: ("is", "use == instead of is (is_null(x) tests for null)"),
    ast.IsNot: ("is not", "use != instead of is not (not is_null(x) tests for a value)"),
}

# The language reference beside the function table (``policy-engine functions``).
OPERATOR_REFERENCE: tuple[tuple[str, str], ...] = (
    ("x + y   x - y   x * y", "arithmetic; null if either side is null"),
    ("x / y   x // y   x % y", "division, floor division, remainder; null when y is 0 or null"),
    ("x ** e", f"power: e is a number literal, a parameter, an input with declared min and max, or a metric "
               f"its expression bounds (min(max(years, 1), 30)), all within [-{MAX_EXPONENT}, {MAX_EXPONENT}]; "
               "no chained powers (x ** a ** b, (x ** a) ** b); "
               "null when the result overflows or is not a real number"),
    ("-x   +x", "sign"),
    ("x == y   x != y   x < y   x <= y   x > y   x >= y",
     "comparisons, chained (0 < x <= 1); null if a side is null. < <= > >= order numbers and dates; grades are "
     "ordered by rank (grade_rank(g) >= grade_rank('substandard')); text has no order (product < 'trade_loan' "
     "is a type-mismatch: it would compare letters): text takes ==, != and in"),
    ("x in ['a', 'b']   x not in [1, 2]", "membership in a literal list"),
    ("a and b   a or b   not a", "three-valued logic: false and null is false, true or null is true"),
    ("x if c else y", "choice; null when c is null"),
    ("refused", "& | ^ ~ << >> @ is, is not; '#' (no comments inside an expression); control, "
                "bidirectional and zero-width characters; attributes, subscripts, lambdas, comprehensions, "
                "f-strings, keyword and starred arguments"),
)


# What a Chinese keyboard types for the operators and quotes of an expression.
_HALF_WIDTH = {"＞": ">", "＜": "<", "＝": "=", "！": "!", "（": "(", "）": ")", "，": ",", "＋": "+", "－": "-",
               "＊": "*", "／": "/", "％": "%", "：": ":", "．": ".", "‘": "'", "’": "'", "“": '"', "”": '"',
               "【": "[", "】": "]", "［": "[", "］": "]", "。": "."}


def _full_width_hint(text: str) -> str | None:
    """A hint naming the first full-width operator or quote of an expression that does not parse."""
    found = [(text.index(ch), ch) for ch in _HALF_WIDTH if ch in text]
    if not found:
        return None
    _, ch = min(found)
    ascii_ = _HALF_WIDTH[ch]
    instead = f"a straight quote {ascii_}" if ascii_ in "'\"" else f"'{ascii_}'"
    return (f"'{ch}' (U+{ord(ch):04X}) is a full-width character from a Chinese keyboard; write {instead} "
            "(expressions use ASCII operators and quotes; Chinese text goes inside quotes)")


def _one_line(source: str) -> tuple[str, int]:
    """The text ``ast`` parses, and how many leading characters were dropped from ``source``.

    Multi-line YAML blocks are one expression: a newline is whitespace (the same length, so a
    column in the result is a column in the source once ``lead`` is added back).
    """
    joined = " ".join(source.split("\n"))
    body = joined.lstrip()
    return body.rstrip(), len(joined) - len(body)


# Characters an expression never needs and a reviewer cannot see: controls (NUL, escape, C1),
# bidirectional overrides and isolates that make text display in another order than it is
# parsed ("Trojan Source"), and zero-width characters that make two equal-looking strings differ.
_HIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def _comment_column(text: str) -> int | None:
    """0-based column of a ``#`` that Python would read as a comment, if any.

    Inside an expression a comment would silently drop the rest of the text (a folded YAML
    block is one line), so the language has none; ``'#'`` in a string literal is text.
    """
    if "#" not in text:
        return None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.COMMENT:
                return tok.start[1]
    except (tokenize.TokenError, SyntaxError, ValueError):
        pass  # the parser reports the text's own syntax error
    return None


def _parse(source: str) -> tuple[ast.Expression, str, int]:
    if not isinstance(source, str):
        raise ExpressionError("expression-type", f"expected an expression as text, found {type(source).__name__}")
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError("expression-too-long",
                              f"expression is {len(source)} characters; the limit is {MAX_EXPRESSION_LENGTH}",
                              hint="split it into named metrics")
    if not source.strip():
        raise ExpressionError("expression-empty", "empty expression")
    hidden = _HIDDEN.search(source)
    if hidden:
        ch = hidden.group()
        raise ExpressionError("expression-character",
                              f"character U+{ord(ch):04X} ({unicodedata.name(ch, 'a control character')}) "
                              "is not allowed in an expression", column=hidden.start() + 1,
                              hint="delete it: it is invisible, and can make the text read differently "
                                   "from what is evaluated")
    text, lead = _one_line(source)
    hash_at = _comment_column(text)
    if hash_at is not None:
        raise ExpressionError("expression-comment", "'#' is not allowed in an expression: Python would read the "
                              "rest of the text as a comment and drop it", column=lead + hash_at + 1,
                              hint="put the note in a YAML comment on a line of its own, or quote '#' in a string")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError("expression-syntax", f"invalid expression: {exc.msg}",
                              column=None if exc.offset is None else lead + max(exc.offset, 1),
                              hint=_full_width_hint(text)
                              or "expressions use Python syntax: and/or/not, ==, <=, x if c else y") from None
    except (RecursionError, MemoryError, ValueError):
        raise ExpressionError("expression-too-deep", "expression nests too deeply") from None
    return tree, text, lead


def parse_expression(source: str) -> ast.Expression:
    """Parse text into an ``ast.Expression`` or raise a located :class:`ExpressionError`."""
    return _parse(source)[0]


def _unsigned(node: ast.AST) -> ast.AST:
    """``node`` without its leading signs: ``-(-x)`` is bounded as ``x`` is."""
    while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        node = node.operand
    return node


def _is_power(node: ast.AST) -> bool:
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow)


def _unknown_name_hint(name: str, known: list[str]) -> str:
    """A misspelt name's did-you-mean; a name only like a known one (a new threshold, 'overdue_share_limit', beside
    the metric it bounds, 'overdue90_share') is told to be declared too: the suggestion alone made a rule compare
    the metric with itself."""
    import difflib

    meant = closest(name, known)
    if meant is None:
        return "declare it under inputs, parameters or metrics"
    if difflib.SequenceMatcher(None, name, meant).ratio() >= 0.85:  # a typo
        return f"did you mean '{meant}'?"
    return f"did you mean '{meant}'? If '{name}' is new, declare it under parameters, inputs or metrics"


class _Checker:
    """Checks one parsed tree: allow-list, names, functions, arity, types."""

    def __init__(self, scope: Scope, text: str = "", lead: int = 0):
        self.scope = scope
        self.refs: dict[str, None] = {}
        self.inner_refs: dict[str, None] = {}
        self.scope_depth = 0  # aggregations being checked, around the current node
        self.fired: dict[str, None] = {}
        self.tables: dict[str, Table] = {}
        self.uses_grade = False
        self.ann: dict[int, tuple[str, bool]] = {}
        self.utf8 = text.encode("utf-8")  # ast positions count UTF-8 bytes, messages count characters
        self.lead = lead
        self.visiting: list[ast.AST] = []  # the nodes being checked, innermost last
        self.errors: list[ExpressionError] = []  # every independent error found, in the order found
        self.root: ast.Expression | None = None  # the parsed expression: an element metric read alone replaces its body
        # Names taken as present while an operand of 'and'/'or' is checked for its nullability alone.
        self.present: frozenset[str] = frozenset()
        self.rechecking = False  # inside such a check: annotations are dropped after it
        self.expanding: list[str] = []  # the element metrics whose trees are being checked in place

    def column(self, byte_offset: int) -> int:
        """1-based character column in the source of a 0-based UTF-8 offset in the parsed text."""
        return self.lead + len(self.utf8[:byte_offset].decode("utf-8", "replace")) + 1

    def fail(self, code: str, message: str, node: ast.AST | None, hint: str | None = None) -> ExpressionError:
        col = getattr(node, "col_offset", None)
        kind = _FollowsUnknown if self.follows_unknown(node) else ExpressionError
        return kind(code, message, column=None if col is None else self.column(col), hint=hint)

    def report(self, error: ExpressionError) -> None:
        """Record an error and go on checking: the node it is about still has a type (a comparison is a bool)."""
        if not isinstance(error, _FollowsUnknown):
            self.errors.append(error)

    def follows_unknown(self, node: ast.AST | None) -> bool:
        """Whether an error found at ``node`` may be caused by a part of unknown type.

        That is so when ``node`` itself is of unknown type, or when it is the node being
        checked and one of its operands is: ``abs(x)`` with ``x`` undeclared is one error (the
        name), not a second one (abs of a non-number).
        """
        if node is None:
            return False
        if self.ann.get(id(node), ("",))[0] == UNKNOWN:
            return True
        return bool(self.visiting) and node is self.visiting[-1] and any(
            self.ann.get(id(child), ("",))[0] == UNKNOWN for child in ast.iter_child_nodes(node))

    def operator(self, op: ast.AST, allowed: Mapping[type, str], before: ast.AST, after: ast.AST | None) -> str | None:
        """How ``op`` is written, or None after reporting a located error when it is not on the allow-list.

        Operator nodes carry no position: the operator is found in the text between the end of
        the operand ``before`` it and the start of ``after`` (for a sign, at the node's start).
        The operands are still checked: a refused operator is one error among the expression's.
        """
        symbol = allowed.get(type(op))
        if symbol is not None:
            return symbol
        written, hint = _REFUSED_OPERATORS.get(type(op), (type(op).__name__, "see `policy-engine functions`"))
        if after is None:
            start = before.col_offset
        else:
            lo, hi = before.end_col_offset or 0, after.col_offset
            gap = self.utf8[lo:hi].decode("utf-8", "replace")
            start = lo + len(gap[:max(gap.find(written.split()[0]), 0)].encode("utf-8"))
        self.report(ExpressionError("disallowed-operator", f"operator '{written}' is not allowed in policy expressions",
                                    column=self.column(start), hint=hint))
        return None

    def check(self, node: ast.AST, depth: int = 0) -> tuple[str, bool]:
        """The type and nullability of ``node``; an error that leaves it without a type is recorded and
        makes it :data:`UNKNOWN`, so its parent and siblings are still checked."""
        self.visiting.append(node)
        try:
            result = self._visit(node, depth)
            if self.present and isinstance(node, ast.Name) and node.id in self.present:
                result = result[0], False
        except _FollowsUnknown:
            result = UNKNOWN, True
        except _TooDeep:
            raise
        except ExpressionError as e:
            self.errors.append(e)
            result = UNKNOWN, True
        finally:
            self.visiting.pop()
        self.ann[id(node)] = result
        return result

    def _visit(self, node: ast.AST, depth: int) -> tuple[str, bool]:
        if depth > MAX_DEPTH:
            col = getattr(node, "col_offset", None)
            raise _TooDeep("expression-too-deep", f"expression nests deeper than {MAX_DEPTH}",
                           None if col is None else self.column(col))
        if not isinstance(node, _ALLOWED_NODES):
            what = _NODE_NAMES.get(type(node), type(node).__name__)
            hint = None
            if isinstance(node, ast.Attribute):
                hint = "names are plain values; use a metric or input name"
            raise self.fail("disallowed-syntax", f"{what} are not allowed in policy expressions", node, hint)
        result: tuple[str, bool] = getattr(self, "visit_" + type(node).__name__)(node, depth + 1)
        return result

    # literals and names ----------------------------------------------------
    def visit_Constant(self, node: ast.Constant, depth: int) -> tuple[str, bool]:
        v = node.value
        if v is None:
            raise self.fail("disallowed-syntax", "'None' is not a policy value", node, "write 'null'")
        if isinstance(v, bool):
            return BOOL, False
        if isinstance(v, int | float):
            if abs(v) > MAX_LITERAL or not math.isfinite(v):  # an int beyond a float is compared, not converted
                shown = repr(v) if len(repr(v)) <= 40 else f"of {len(repr(v))} digits"
                raise self.fail("literal-too-large",
                                f"number literal {shown} is out of range (|x| <= {MAX_LITERAL:g})", node)
            return NUMBER, False
        if isinstance(v, str):
            if len(v) > MAX_STRING_LITERAL:
                raise self.fail("literal-too-large", f"string literal longer than {MAX_STRING_LITERAL}", node)
            return STRING, False
        raise self.fail("disallowed-syntax", f"literal of type {type(v).__name__} is not allowed", node)

    def visit_Name(self, node: ast.Name, depth: int) -> tuple[str, bool]:
        name = node.id
        if name.startswith("_"):
            raise self.fail("disallowed-name", f"names starting with '_' are not allowed: '{name}'", node)
        if name == "null":
            return NULL, True
        if name in ("true", "false"):
            raise self.fail("unknown-name", f"unknown name '{name}'", node, f"write {name.capitalize()}")
        if name in self.scope.element_metrics:
            return self._element_metric(node, depth)
        sym = self.scope.symbols.get(name)
        if sym is None and name in self.scope.elsewhere:
            code, message, hint = self.scope.elsewhere[name]
            raise self.fail(code, message, node, hint)
        if sym is None and name in self.scope.children:
            raise self.fail("type-mismatch", f"'{name}' is a scope, not a value", node,
                            f"aggregate it: count_where({name}, ...), sum_of({name}, ...), any_of({name}, ...)")
        if sym is None:
            if name in FUNCTIONS:
                raise self.fail("unknown-name", f"'{name}' is a function; call it with arguments", node)
            if self.scope.open_names:
                return UNKNOWN, True
            raise self.fail("unknown-name", f"unknown name '{name}'", node,
                            self.scope.unimported.get(name) or _unknown_name_hint(name, list(self.scope.symbols)))
        if sym.kind == "builtin" and name in ("score",) and not self.scope.allows("floor"):
            raise self.fail("name-not-available", f"'{name}' is only known after the scorecard", node)
        if sym.kind == "builtin" and name == "grade" and self._ungraded_element():
            raise self.fail("scope-name", f"'grade' is the grade of the element an expression is evaluated for, and "
                            f"{_an(self.scope.name)} element has none", node,
                            f"read it outside the aggregation over {self.scope.name}")
        if sym.kind == "builtin" and name == "grade":
            if not self.scope.allows("graded") and not self.scope.grade_known:
                raise self.fail("name-not-available", "'grade' is only known after classification", node,
                                "use it in warnings, actions and metrics declared 'after: classification'")
            self.uses_grade = True
        if not self.scope.allows(sym.first_stage):
            raise self.fail("name-not-available", f"metric '{name}' runs after classification: "
                            f"{STAGE_WORDS[self.scope.stage]} cannot read it", node,
                            "only warnings, actions and other metrics declared 'after: classification' read it")
        if sym.kind == "metric" and self.scope.stage == "param":
            raise self.fail("name-not-available", "parameters cannot read metrics", node)
        if sym.table is not None:
            keys = ", ".join(sym.table.keys)
            raise self.fail("type-mismatch", f"'{name}' is a table: read a cell with lookup({name}, {keys})", node,
                            f"write lookup({name}, {keys})")
        (self.inner_refs if self.scope_depth else self.refs).setdefault(name, None)
        return sym.type, sym.nullable

    def _ungraded_element(self) -> bool:
        """Whether the expression is evaluated for an element of a scope that has no grades (a payment, an event)."""
        return bool(self.scope.all_scopes) and self.scope.name != "debtor" and not self.scope.graded

    def _element_metric(self, node: ast.Name, depth: int) -> tuple[str, bool]:
        """An element metric read in its scope: a copy of its checked tree takes the name's place in the tree
        (located at the name), and is checked there. Read anywhere else it is an error naming its scope."""
        name = node.id
        scope, body = self.scope.element_metrics[name]
        if scope != self.scope.name:
            raise self.fail("scope-name", f"'{name}' is a metric of each {scope} element: an expression of scope "
                            f"{self.scope.name} reads it only inside an aggregation over {scope}", node,
                            f"aggregate over {scope}: count_where({scope}, {name}), any_of({scope}, {name}), ...")
        if name in self.expanding:  # a cycle: the metrics pass reports it
            raise self.fail("metric-cycle", f"element metric '{name}' reads itself", node)
        tree = copy.deepcopy(body)
        for n in ast.walk(tree):
            if isinstance(n, ast.expr):
                ast.copy_location(n, node)
        parent = self.visiting[-2] if len(self.visiting) > 1 else None
        if parent is None:
            assert self.root is not None
            self.root.body = tree
        else:
            _replace_child(parent, node, tree)
        (self.inner_refs if self.scope_depth else self.refs).setdefault(name, None)
        self.expanding.append(name)
        try:
            return self.check(tree, depth)
        finally:
            self.expanding.pop()

    def visit_List(self, node: ast.List | ast.Tuple, depth: int) -> tuple[str, bool]:
        raise self.fail("disallowed-syntax", "lists are only allowed after 'in'", node,
                        "write x in ['a', 'b']")

    visit_Tuple = visit_List

    def _literal_list(self, node: ast.AST) -> tuple[str, list[Any]]:
        if not isinstance(node, ast.List | ast.Tuple):
            raise self.fail("type-mismatch", "'in' needs a literal list on its right, e.g. ['a', 'b']", node)
        if len(node.elts) > MAX_LIST_LITERAL:
            raise self.fail("literal-too-large", f"list literal longer than {MAX_LIST_LITERAL}", node)
        kinds = set()
        values = []
        for elt in node.elts:
            if not isinstance(elt, ast.Constant) or elt.value is None:
                raise self.fail("type-mismatch", "'in' lists hold literal numbers or strings only", elt)
            t, _ = self.check(elt)
            kinds.add(t)
            values.append(elt.value)
        if len(kinds) > 1:
            raise self.fail("type-mismatch", "an 'in' list mixes types", node)
        self.ann[id(node)] = (next(iter(kinds), STRING), False)
        return next(iter(kinds), STRING), values

    # operators ---------------------------------------------------------------
    def visit_BinOp(self, node: ast.BinOp, depth: int) -> tuple[str, bool]:
        allowed = self.operator(node.op, BINARY_OPERATORS, node.left, node.right)
        lt, ln = self.check(node.left, depth)
        rt, rn = self.check(node.right, depth)
        if allowed is None:
            return UNKNOWN, True  # '&' may have meant 'and': what it takes and gives is not known
        if lt == rt == DATE and isinstance(node.op, ast.Sub):  # one mistake, one error: the days between
            raise self.fail("type-mismatch", "dates do not subtract", node,
                            f"days_between({ast.unparse(node.right)}, {ast.unparse(node.left)}) is the days from "
                            "one to the other (months_between the whole months)")
        failed = False
        for t, side in ((lt, node.left), (rt, node.right)):  # each operand is its own error
            if t not in (NUMBER, NULL, UNKNOWN):
                failed = True
                self.report(self.fail("type-mismatch", f"arithmetic needs numbers, found {t}", side,
                                      self.number_hint(t, (side,)) or "dates: add_months(d, n) moves a date, "
                                      "days_between/months_between measure between two; series: use last/sum/avg"))
        if isinstance(node.op, ast.Pow) and not failed:
            self._bounded_power(node)
        # A quotient is null for a zero divisor: not for a literal one of magnitude 1 or more (x / 365), which can
        # neither be zero nor overflow a finite dividend. A power may overflow whatever its exponent.
        nullable = ln or rn or isinstance(node.op, ast.Pow) or (
            isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and not _literal_of_magnitude(node.right, 1))
        return (UNKNOWN, True) if failed else (NUMBER, nullable)

    def _bounded_power(self, node: ast.BinOp) -> None:
        """Powers are bounded by what the checker can prove, never by luck at run time.

        The exponent is a number literal, a parameter, an input with a declared min and max or a metric whose
        expression proves its range (``min(max(years, 1), 30)``), within [-MAX_EXPONENT, MAX_EXPONENT]; a power
        of a power (either side) is refused, since its bound is the product of two exponents.
        """
        base, exponent = _unsigned(node.left), _unsigned(node.right)
        if _is_power(base) or _is_power(exponent):
            inner = base if _is_power(base) else exponent
            raise self.fail("power-chained", "a power of a power is not allowed", inner,
                            "write one power with the exponents multiplied out, e.g. x ** 6 for (x ** 2) ** 3")
        if isinstance(exponent, ast.Constant):
            if abs(exponent.value) > MAX_EXPONENT:
                raise self.fail("literal-too-large",
                                f"exponent {exponent.value!r} is out of range (|e| <= {MAX_EXPONENT})", node.right)
            return
        sym = self.scope.symbols.get(exponent.id) if isinstance(exponent, ast.Name) else None
        if self.ann.get(id(exponent), ("",))[0] == UNKNOWN:
            return  # its declaration was left out or has an error: its bounds are not known
        if sym is None:
            raise self.fail("power-unbounded",
                            "the exponent of a power must be a number literal, a parameter or an input with "
                            f"declared min and max, within [-{MAX_EXPONENT}, {MAX_EXPONENT}]", node.right,
                            "write the exponent as a literal (x ** 0.5), a parameter, or an input with min and max")
        low, high = sym.bounds or (-math.inf, math.inf)
        if max(abs(low), abs(high)) > MAX_EXPONENT:
            what = ("proven range" if sym.kind == "metric" else "declared range") if sym.bounds \
                else "range (min and max are not both declared)"
            shown = f" [{low:g}, {high:g}]" if sym.bounds else ""
            raise self.fail("power-unbounded",
                            f"exponent '{exponent.id}' is unbounded: its {what}{shown} is not within "
                            f"[-{MAX_EXPONENT}, {MAX_EXPONENT}]", node.right,
                            f"declare min and max within [-{MAX_EXPONENT}, {MAX_EXPONENT}] on the input"
                            if sym.kind == "input" else "use a number literal, a parameter, an input with declared "
                            "min and max, or a metric whose expression bounds it (min(max(x, 1), 30)) as the exponent")

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int) -> tuple[str, bool]:
        allowed = self.operator(node.op, UNARY_OPERATORS, node, None)
        t, n = self.check(node.operand, depth)
        if allowed is None:
            return UNKNOWN, True  # '~' may have meant 'not' or '-'
        if isinstance(node.op, ast.Not):
            if t not in (BOOL, NULL, UNKNOWN):
                raise self.fail("type-mismatch", f"'not' needs a condition, found {t}", node.operand)
            return BOOL, n
        if t not in (NUMBER, NULL, UNKNOWN):
            raise self.fail("type-mismatch", f"sign needs a number, found {t}", node.operand,
                            self.number_hint(t, (node.operand,)))
        return NUMBER, n

    def visit_BoolOp(self, node: ast.BoolOp, depth: int) -> tuple[str, bool]:
        """Null only when an operand can be null while every operand before it lets the result go on (is false
        for 'or', true for 'and'): ``is_null(x) or x > 5`` is never null, as x is there when ``x > 5`` counts."""
        self.operator(node.op, BOOLEAN_OPERATORS, node.values[0], node.values[1])
        nullable = failed = False
        going_on = isinstance(node.op, ast.And)  # the value of an operand that lets the next one count
        present: set[str] = set()  # names the operands before prove present whenever the next one counts
        for i in range(len(node.values)):  # each operand is its own error
            if self.rechecking:  # its annotations are dropped: check it with the names proven so far, once
                outer = self.present
                self.present = outer | present
                try:
                    t, n = self.check(node.values[i], depth)
                finally:
                    self.present = outer
            else:
                t, n = self.check(node.values[i], depth)
            v = node.values[i]  # an element metric's name now stands replaced by its tree
            if t not in (BOOL, NULL, UNKNOWN):
                failed = True
                word = "and" if isinstance(node.op, ast.And) else "or"
                self.report(self.fail("type-mismatch", f"'{word}' needs conditions, found {t}", v,
                                      "compare the value, e.g. x > 0"))
            if n and present and t == BOOL and not self.rechecking:
                n = self._nullable_given(v, present, depth)
            nullable = nullable or n
            present |= present_when(v, going_on)
        return (UNKNOWN, True) if failed else (BOOL, nullable)

    def _nullable_given(self, node: ast.AST, present: set[str], depth: int) -> bool:
        """Whether ``node`` can be null when the names ``present`` are not. Checked again with them taken as
        present, for its nullability alone: what the first check recorded (the annotations code generation
        reads, which guard against nulls wherever the operand may meet one) stays as it was. An 'and'/'or' inside
        it is checked once there, its operands with the names proven so far (checking each again would double
        the work at every level of nesting)."""
        if not any(isinstance(n, ast.Name) and n.id in present for n in ast.walk(node)):
            return True
        saved, errors = dict(self.ann), len(self.errors)
        self.present, self.rechecking = frozenset(present), True
        try:
            return self.check(node, depth)[1]
        except ExpressionError:
            return True
        finally:
            self.present, self.rechecking = frozenset(), False
            del self.errors[errors:]
            self.ann.clear()
            self.ann.update(saved)

    def _mismatch_hint(self, a: str, b: str, operands: Sequence[ast.AST]) -> str | None:
        """What to write instead of comparing a date with a number or with text."""
        if {a, b} == {DATE, NUMBER}:
            return "a date compares with a date; an age compares as a number: days_between(d, as_of) > 90 " \
                   "(months_between for months)"
        if NUMBER in (a, b) and {a, b} & {STRING, BOOL}:
            return self.number_hint(a if b == NUMBER else b, operands)
        if {a, b} != {DATE, STRING}:
            return None
        param = next((n.id for n in operands if isinstance(n, ast.Name) and getattr(
            self.scope.symbols.get(n.id), "kind", None) == "param"), None)
        if param is not None:  # cutoff: 2024-06-30 in parameters
            return (f"parameter '{param}' holds text (a parameter cannot hold a date): write the date in the "
                    "expression, date('YYYY-MM-DD')")
        text = next((n.value for n in operands if isinstance(n, ast.Constant) and isinstance(n.value, str)
                     and re.fullmatch(r"\d{4}-\d{2}-\d{2}", n.value)), None)  # d > '2027-01-01': quotes make text
        return (f"'{text}' in quotes is text: write a date as date('{text}')" if text else
                "a date compares with a date: write one as date('YYYY-MM-DD')")

    def number_hint(self, other: str, operands: Sequence[ast.AST]) -> str | None:
        """What to write where a number meets text or a boolean: a parameter written as text ('10%', 'two'), a
        number in quotes."""
        param = next((n.id for n in operands if isinstance(n, ast.Name) and getattr(
            self.scope.symbols.get(n.id), "kind", None) == "param"
            and self.scope.symbols[n.id].type == other), None)
        if param is not None:
            held = "text" if other == STRING else "a boolean"
            return f"parameter '{param}' holds {held}, not a number: write its value as a number"
        text = next((n.value for n in operands if isinstance(n, ast.Constant) and isinstance(n.value, str)
                     and re.fullmatch(r"[-+]?\d+(\.\d+)?", n.value.strip())), None)
        return f"'{text}' in quotes is text: write the number {text.strip()}" if text is not None else None

    def _comparable(self, a: str, b: str, node: ast.AST, ordering: bool,
                    link: tuple[ast.AST, ast.cmpop] | None = None) -> None:
        """``a`` and ``b`` can be compared (``link``: the left operand and the operator, for the hint)."""
        if UNKNOWN in (a, b):
            return
        if NULL in (a, b):
            raise self.fail("type-mismatch", "comparing with null is always null",
                            node, "use is_null(x)")
        ga = STRING if a == GRADE else a
        gb = STRING if b == GRADE else b
        if ga != gb:
            raise self.fail("type-mismatch", f"cannot compare {a} with {b}", node,
                            self._mismatch_hint(a, b, (link[0], node) if link else (node,)))
        if a.startswith("series") or b.startswith("series"):
            raise self.fail("type-mismatch", "cannot compare a whole series", node,
                            "use last(s), avg(s), streak(s, '<', 0) ...")
        if ordering and (BOOL in (a, b)):
            raise self.fail("type-mismatch", "booleans have no order", node)
        if ordering and GRADE in (a, b):
            hint = "use grade_rank(g) >= grade_rank('substandard')"
            if link is not None:  # the comparison written, by rank: grade_rank(previous_grade) > grade_rank('pass')
                symbol = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}.get(type(link[1]))
                literals = [n.value for n in (link[0], node) if isinstance(n, ast.Constant)]
                unknown = [v for v in literals if v not in self.scope.grades]
                if unknown:  # the comparison rewritten would hold the same mistake
                    hint = (f"compare ranks, grade_rank(g) {symbol or '>='} grade_rank('...'), of grades on the scale "
                            f"({', '.join(self.scope.grades)}): '{unknown[0]}' is none")
                elif symbol is not None:
                    hint = f"use grade_rank({ast.unparse(link[0])}) {symbol} grade_rank({ast.unparse(node)})"
            raise self.fail("type-mismatch", "grades are compared by rank", node, hint)
        if ordering and a == STRING:
            raise self.fail("type-mismatch", "text has no order: < and > would compare it letter by letter",
                            node, self._text_order_hint(link, node))

    def _text_order_hint(self, link: tuple[ast.AST, ast.cmpop] | None, node: ast.AST) -> str:
        """What to write instead of ordering text: an id's letters say nothing of its rank, so the values
        meant are named (from the enum when an operand is an enum input)."""
        operands = (link[0], node) if link else (node,)
        named = next((n for n in operands if isinstance(n, ast.Name) and getattr(
            self.scope.symbols.get(n.id), "enum", None)), None)
        if named is None:
            return "compare text with ==, != or in ['a', 'b']; a number or a date orders, text does not"
        values = list(self.scope.symbols[named.id].enum or ())[:2]
        return (f"name the values meant: {named.id} in [{', '.join(repr(v) for v in values)}] "
                f"({named.id} is one of: {', '.join(self.scope.symbols[named.id].enum or ())})")

    def _check_enum_literal(self, left: ast.AST, right: ast.AST, values: Sequence[Any] | None = None) -> None:
        """``sector == 'manufactring'`` is a typo, not a rule that never fires."""
        if not isinstance(left, ast.Name):
            return
        sym = self.scope.symbols.get(left.id)
        if sym is None:
            return
        allowed: Sequence[str] | None = sym.enum
        if sym.type == GRADE:
            allowed = self.scope.grades
        if not allowed:
            return
        if values is None:
            if not (isinstance(right, ast.Constant) and isinstance(right.value, str)):
                return
            values = [right.value]
        for v in values:
            if v not in allowed:
                raise self.fail("unknown-value", f"'{v}' is not a value of '{left.id}' (one of: {', '.join(allowed)})",
                                right, did_you_mean(str(v), allowed))

    def visit_Compare(self, node: ast.Compare, depth: int) -> tuple[str, bool]:
        operands = [node.left, *node.comparators]
        refused = [self.operator(op, COMPARISON_OPERATORS, operands[i], operands[i + 1]) is None
                   for i, op in enumerate(node.ops)]
        lt, ln = self.check(node.left, depth)
        nullable = failed = False
        left = node.left
        for op, right, off in zip(node.ops, node.comparators, refused, strict=True):
            # Each link of a chain is checked on its own: 'a < b < c' can hold two independent errors.
            membership = isinstance(op, ast.In | ast.NotIn)
            rt, rn = (lt, False) if membership else self.check(right, depth)
            if off:  # 'x is True': the operator is the error; its operands are not compared as if it were '<'
                failed = True
                left, lt = right, rt  # the next link of a chain is checked on its own
                continue
            try:
                if membership:
                    self._membership(left, lt, right)
                else:
                    self._comparable(lt, rt, right, ordering=not isinstance(op, ast.Eq | ast.NotEq), link=(left, op))
                    self._check_enum_literal(left, right)
                    self._check_enum_literal(right, left)
            except ExpressionError as e:
                failed = True
                self.report(e)
                rt = UNKNOWN  # the operand the link failed on is not compared again by the next link
            nullable = nullable or rn
            left, lt = right, rt
        return (UNKNOWN, True) if failed else (BOOL, ln or nullable)

    def _membership(self, left: ast.AST, lt: str, right: ast.AST) -> None:
        """``left in right``: a literal list of the left side's type, and values of its enum or scale."""
        if lt.startswith("series"):  # even before an empty list: a series is not one value
            raise self.fail("type-mismatch", "cannot look for a whole series in a list", left, "use last(s) in [...]")
        kind, values = self._literal_list(right)
        t = STRING if lt == GRADE else lt
        if t != kind and values and t != UNKNOWN:
            raise self.fail("type-mismatch", f"cannot look for a {lt} in a list of {kind}", right)
        self._check_enum_literal(left, right, values)

    def visit_IfExp(self, node: ast.IfExp, depth: int) -> tuple[str, bool]:
        ct, cn = self.check(node.test, depth)
        if ct not in (BOOL, NULL, UNKNOWN):
            self.report(self.fail("type-mismatch", f"'if' needs a condition, found {ct}", node.test))
            ct = UNKNOWN  # the branches are still checked; what the whole gives is not known
        at, an = self.check(node.body, depth)
        bt, bn = self.check(node.orelse, depth)
        if UNKNOWN in (ct, at, bt):
            t = UNKNOWN
        elif at == NULL:
            t = bt
        elif bt == NULL:
            t = at
        else:
            if (STRING if at == GRADE else at) != (STRING if bt == GRADE else bt):
                raise self.fail("type-mismatch", f"both branches must have one type, found {at} and {bt}", node)
            t = at
        if t.startswith("series"):
            raise self.fail("type-mismatch", "a conditional picks a value, not a whole series", node,
                            "pick inside: sum(s) if c else sum(tail(s, 4))")
        if t in (GRADE, STRING):
            t = self._text_type([node.body, node.orelse])
        return t, cn or an or bn

    # calls -------------------------------------------------------------------
    def _function_hint(self, name: str, node: ast.Call) -> str:
        """The function meant: over a scope (its first argument names one), an aggregation; a spreadsheet's
        name (COUNTIF, SUMIF) as ours."""
        first = node.args[0] if node.args else None
        over_scope = isinstance(first, ast.Name) and first.id in self.scope.children
        if over_scope or name.lower() in _SPREADSHEET:
            meant = _SPREADSHEET.get(name.lower()) or closest(name, AGGREGATIONS)
            if meant:
                return f"did you mean '{meant}'? (aggregations: {', '.join(AGGREGATIONS)})"
        return did_you_mean(name, [*FUNCTIONS, *AGGREGATIONS]) or "see `policy-engine functions`"

    def _refuse_over_scope(self, name: str, node: ast.Call) -> None:
        """A function of a series or of values called over a scope ('sum(exposure, balance)') is told the
        aggregation it meant; its arity error ('sum() takes 1 argument(s)') did not say."""
        first = node.args[0] if node.args else None
        if name not in FUNCTIONS or not isinstance(first, ast.Name) or first.id not in self.scope.children:
            return
        value = ast.unparse(node.args[1]) if len(node.args) > 1 else "..."
        meant = _OVER_SCOPE[name].format(scope=first.id, value=value) if name in _OVER_SCOPE else \
            f"an aggregation: count_where({first.id}, ...), sum_of({first.id}, ...), max_of({first.id}, ...)"
        raise self.fail("type-mismatch", f"{name}() does not aggregate over a scope: '{first.id}' is a scope of "
                        "elements, not a series", node, f"write {meant} (aggregations: {', '.join(AGGREGATIONS)})")

    def visit_Call(self, node: ast.Call, depth: int) -> tuple[str, bool]:
        if not isinstance(node.func, ast.Name):
            raise self.fail("disallowed-syntax", "only catalogue functions can be called, by name", node.func)
        name = node.func.id
        if name.startswith("_"):
            raise self.fail("disallowed-name", f"names starting with '_' are not allowed: '{name}'", node.func)
        fn = FUNCTIONS.get(name) or AGGREGATIONS.get(name)
        if fn is None:
            raise self.fail("unknown-function", f"unknown function '{name}'", node.func,
                            self._function_hint(name, node))
        if node.keywords:
            raise self.fail("disallowed-syntax", f"{name}() takes no keyword arguments", node)
        self._refuse_over_scope(name, node)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise self.fail("disallowed-syntax", "starred arguments are not allowed", a)
        n = len(node.args)
        if n < fn.min_args or (fn.max_args is not None and n > fn.max_args):
            want = (str(fn.min_args) if fn.max_args == fn.min_args
                    else f"at least {fn.min_args}" if fn.max_args is None
                    else f"{fn.min_args} to {fn.max_args}")
            raise self.fail("wrong-arity", f"{name}() takes {want} argument(s), got {n}", node,
                            f"signature: {fn.signature}")
        if not self.scope.allows(fn.first_stage) and not (fn.first_stage == "graded" and self.scope.grade_known):
            raise self.fail("name-not-available",
                            f"{name}() is only available in {STAGE_WORDS[fn.first_stage]} and later stages", node)
        if fn.first_stage == "graded" and self._ungraded_element():
            raise self.fail("scope-name", f"{name}() reads the grade of the element it is evaluated for, and "
                            f"{_an(self.scope.name)} element has none", node,
                            f"test the grade outside the aggregation over {self.scope.name}")
        for i in fn.literal_args:
            if i < n and not isinstance(node.args[i], ast.Constant):
                raise self.fail("type-mismatch", f"argument {i + 1} of {name}() must be a literal", node.args[i])
        # Every argument is checked before the function's own rule: a wrong argument deep inside is
        # reported at its place, before the call's types.
        # (an aggregation checks its arguments in the child scope its first argument names; a table
        # argument is a name the function's own rule resolves, not a value read)
        args = self._aggregation_args(fn, node, depth) if fn.aggregates else [
            (TABLE, False) if i == fn.table_arg else self.check(a, depth) for i, a in enumerate(node.args)]
        reported = len(self.errors)
        result = check_call(self, fn, node, args)
        # An argument of the wrong type was reported and the rule went on: what the call gives is not known.
        return (UNKNOWN, True) if len(self.errors) > reported else result

    def _aggregation_args(self, fn: Function, node: ast.Call, depth: int) -> list[tuple[str, bool]]:
        """The scope argument names a child scope; the other arguments are checked in it."""
        first = node.args[0]
        if not isinstance(first, ast.Name):
            raise self.fail("type-mismatch", f"argument 1 of {fn.name}() names a scope", first,
                            f"signature: {fn.signature}")
        child = self.scope.children.get(first.id)
        if child is None:
            scopes = self.scope.all_scopes
            if first.id in scopes:
                parent = scopes[first.id] or "debtor"
                hint = (f"aggregate it inside an aggregation over '{parent}'" if parent != "debtor"
                        else f"aggregate over {first.id} in a debtor expression")
                raise self.fail("scope-not-child", f"scope '{first.id}' is not a child of scope "
                                f"'{self.scope.name}': {fn.name}() reads the children of the expression's scope",
                                first, hint)
            raise self.fail("unknown-scope", f"unknown scope '{first.id}'", first,
                            did_you_mean(first.id, list(scopes)) or
                            (f"scopes: {', '.join(scopes)}" if scopes else "declare it under scopes:"))
        self.ann[id(first)] = (SCOPE_ARG, False)
        outer = self.scope
        self.scope = child
        self.scope_depth += 1
        try:
            inner = [self.check(a, depth) for a in node.args[1:]]
        finally:
            self.scope = outer
            self.scope_depth -= 1
        return [(SCOPE_ARG, False), *inner]

    def _text_type(self, nodes: Sequence[ast.AST]) -> str:
        """GRADE when every branch is a grade, ``null`` or a literal on the scale, else STRING."""
        for b in nodes:
            t = self.ann[id(b)][0]
            if t in (GRADE, NULL):
                continue
            if isinstance(b, ast.Constant) and b.value in self.scope.grades:
                continue
            return STRING
        return GRADE


_NAME_ERRORS = ("unknown-name", "name-not-available", "unknown-function", "unknown-warning")


def _an(word: str) -> str:
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


def present_when(node: ast.AST, value: bool) -> set[str]:
    """The names a condition proves present (not null) when it has ``value`` (True or False, so not null).

    A comparison, arithmetic or a boolean name is null when a name it reads is: either value proves those names.
    ``is_null(x)`` false proves x. ``not c`` has value v when c has the other. ``a and b`` true, and ``a or b``
    false, hold only when every operand does (what any proves); ``a and b`` false, and ``a or b`` true, when one
    does (what all prove). Aggregations and other functions prove nothing.
    """
    if isinstance(node, ast.BoolOp):
        proofs = [present_when(v, value) for v in node.values]
        return set().union(*proofs) if isinstance(node.op, ast.And) == value else set.intersection(*proofs)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return present_when(node.operand, not value)
    if isinstance(node, ast.Call):
        is_null = getattr(node.func, "id", None) == "is_null" and len(node.args) == 1
        return _null_with(node.args[0]) if is_null and not value else set()
    if isinstance(node, ast.Compare):
        if any(isinstance(op, ast.In | ast.NotIn) for op in node.ops):  # the right side is a literal list
            return _null_with(node.left)
        return set().union(*(_null_with(x) for x in (node.left, *node.comparators)))
    return _null_with(node)


def _null_with(node: ast.AST) -> set[str]:
    """The names a value is null with: a name, or arithmetic over such (any operator gives null on a null)."""
    if isinstance(node, ast.Name):
        return set() if node.id == "null" else {node.id}  # the literal null has no value to prove
    if isinstance(node, ast.BinOp):
        return _null_with(node.left) | _null_with(node.right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        return _null_with(node.operand)
    return set()


def _replace_child(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    """Put ``new`` where ``parent`` holds ``old`` (a field, or an item of a list field)."""
    for field_name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, field_name, new)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return
    raise AssertionError("the node is not a child of its parent")


def check_expression(source: str, scope: Scope, want: str | None = None) -> CheckedExpression:
    """Parse and check ``source``; ``want`` is the type the place requires (BOOL for conditions).

    Raises :class:`ExpressionErrors` with every independent error, by position: a part with an
    error of its own is of unknown type from then on, which satisfies every place it is used in,
    so one mistake is one error, and a second mistake elsewhere in the text is a second error.
    """
    tree, text, lead = _parse(source)
    checker = _Checker(scope, text, lead)
    checker.root = tree
    try:
        t, nullable = checker.check(tree.body)  # an element metric read alone replaces tree.body
    except _TooDeep as e:
        raise ExpressionError(e.code, e.message, e.column) from None
    except RecursionError:
        raise ExpressionError("expression-too-deep", "expression nests too deeply") from None
    if want is not None and t not in (NULL, UNKNOWN):
        ok = t == want or (want == STRING and t == GRADE)
        if want == NUMBER and t == BOOL:
            ok = False
        if not ok:
            hint = "a condition compares values, e.g. coverage < 1.2" if want == BOOL else None
            checker.errors.append(
                ExpressionError("type-mismatch", f"expected a {want} here, the expression gives a {t}", 1, hint))
    if checker.errors:
        # By position; sorted() is stable, so errors at one column keep the order they were found in.
        # One name misspelt (or read where it is not known) twice is one mistake, about the name:
        # reported where it first occurs. Other errors are one per place.
        errors: list[ExpressionError] = []
        names: set[tuple[str, str]] = set()
        for e in sorted(checker.errors, key=lambda e: e.column if e.column is not None else 10**9):
            if e.code in _NAME_ERRORS:
                if (e.code, e.message) in names:
                    continue
                names.add((e.code, e.message))
            errors.append(e)
        raise ExpressionErrors(errors)
    return CheckedExpression(
        source=source, tree=tree.body, type=t, nullable=nullable,
        refs=tuple(checker.refs), fired_refs=tuple(checker.fired), inner_refs=tuple(checker.inner_refs),
        uses_grade=checker.uses_grade, annotations=checker.ann, tables=checker.tables,
    )


def is_whole(node: ast.AST, whole_name: Callable[[str], bool]) -> bool:
    """Whether every value of a checked tree is a whole number (or null), for the ``d`` format.

    Conservative: a function of whole numbers that stays whole (sums, products, floors,
    counts, day and month differences, ``round`` to 0 digits); ``whole_name`` answers for names.
    """
    if isinstance(node, ast.Constant):
        v = node.value
        return type(v) is int or (type(v) is float and v.is_integer())
    if isinstance(node, ast.Name):
        return node.id == "null" or whole_name(node.id)
    if isinstance(node, ast.UnaryOp):
        return isinstance(node.op, ast.USub | ast.UAdd) and is_whole(node.operand, whole_name)
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.FloorDiv):
            return True
        if isinstance(node.op, ast.Pow):
            e = node.right
            return (is_whole(node.left, whole_name) and isinstance(e, ast.Constant) and type(e.value) is int
                    and e.value >= 0)
        return isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Mod) and \
            is_whole(node.left, whole_name) and is_whole(node.right, whole_name)
    if isinstance(node, ast.IfExp):
        return is_whole(node.body, whole_name) and is_whole(node.orelse, whole_name)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        fn = FUNCTIONS.get(node.func.id) or AGGREGATIONS.get(node.func.id)  # each one's own rule (``whole``)
        return fn is not None and fn.whole is not None and fn.whole(node, lambda a: is_whole(a, whole_name))
    return False


def metric_references(source: str, metric_names: set[str]) -> set[str]:
    """Names of other metrics a metric's text reads (for ordering before type checks)."""
    try:
        tree = parse_expression(source)
    except ExpressionError:
        return set()
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id in metric_names}


# ------------------------------------------------------------------- codegen


class RowCodegen:
    """Builds Python ``ast`` for one function from checked expressions.

    ``names`` maps a policy name to the local variable holding its value.
    Temporaries are function locals assigned with walrus in *generated* code
    only; policy text can never contain one (the checker rejects it).
    """

    def __init__(self, names: Mapping[str, str], grade_rank_local: str = "g_rank",
                 warning_locals: Mapping[str, str] | None = None, grades: Sequence[str] = (),
                 layout: ScopeLayout | None = None, stack: Sequence[tuple[str, str]] = ()):
        self.layout = layout
        # The scopes being read, innermost last: (scope, local holding the current element, a dict).
        self.stack: list[tuple[str, str]] = list(stack)
        self.names = names
        self.grade_rank_local = grade_rank_local
        self.warning_locals = warning_locals or {}
        self.grade_index = {g: i for i, g in enumerate(grades)}
        self._tmp = 0
        self.ann: Mapping[int, tuple[str, bool]] = {}
        self.tables: dict[str, Table] = {}  # looked-up tables: the caller binds each as a global (table_globals)
        # (element variable, name) -> the local already holding that element's value (its metrics, once computed)
        self.element_locals: dict[tuple[str, str], str] = {}
        # The statement list the code being generated stands in, if any: an aggregation writes its loop
        # there (functions._LOOPS) and reads as a local. None: expressions only (a comprehension's).
        self.sink: list[ast.stmt] | None = None
        self.read: set[str] = set()  # the locals of ``names`` the generated code reads (see ``unpack``)
        self.loop_fields: dict[str, dict[str, list[ast.Subscript]]] = {}  # an open loop's element -> its reads
        self.constants: dict[Any, str] = {}  # a value code cannot spell (a date) -> the global holding it

    def tmp(self) -> str:
        self._tmp += 1
        return f"_t{self._tmp}"

    def expression(self, expr: CheckedExpression) -> ast.expr:
        self.ann = expr.annotations
        self.tables.update(expr.tables)
        return self.gen(expr.tree)

    def table_globals(self) -> dict[str, Any]:
        """The globals generated code reads for the tables it looked up and its constants."""
        out: dict[str, Any] = {table_global(n): t for n, t in self.tables.items()}
        out.update((name, v) for v, name in self.constants.items())
        return out

    def unpack(self, prefix: str, n: int, source: str) -> list[ast.stmt]:
        """``prefix_0, ..., prefix_n-1 = source``, or only the ones the code reads, one subscript each,
        when that is fewer operations (an exposure's code reads 2 of a debtor's 28 inputs); call it
        once the code is generated."""
        used = [k for k in range(n) if f"{prefix}_{k}" in self.read]
        if not used:
            return []
        if 4 * len(used) > n + 1:  # a subscript is about four operations; unpacking, one per name
            targets = ast.Tuple(elts=[ast.Name(id=f"{prefix}_{k}", ctx=ast.Store()) for k in range(n)],
                                ctx=ast.Store())
            return [ast.Assign(targets=[targets], value=self.load(source))]
        return [ast.Assign(targets=[ast.Name(id=f"{prefix}_{k}", ctx=ast.Store())],
                           value=ast.Subscript(value=self.load(source), slice=self.const(k), ctx=ast.Load()))
                for k in used]

    def constant(self, value: Any) -> ast.Name:
        """A global holding ``value`` (a literal date: built once at compile time, not at each use)."""
        name = self.constants.setdefault(value, f"_const_{len(self.constants)}")
        return self.load(name)

    def nullable(self, node: ast.AST) -> bool:
        return self.ann[id(node)][1]

    def gen(self, node: ast.AST) -> ast.expr:
        return getattr(self, "gen_" + type(node).__name__)(node)

    def lazy(self, node: ast.AST) -> ast.expr:
        """Code for ``node`` where it may not be evaluated (after a short-circuit, in a branch): its
        aggregations stay expressions (no ``sink``), so what was not needed is still not computed."""
        sink, self.sink = self.sink, None
        try:
            return self.gen(node)
        finally:
            self.sink = sink

    def gen_parts(self, nodes: Sequence[ast.AST], flags: Sequence[bool]) -> list[ast.expr]:
        """Code for the operands of a null-guarded operation (``null_guard``): the first nullable one
        is always evaluated, the others only when it is not null (with none nullable: all are)."""
        first = next((k for k, n in enumerate(flags) if n), None)
        return [self.gen(o) if first is None or k == first else self.lazy(o) for k, o in enumerate(nodes)]

    # helpers to build ast
    @staticmethod
    def load(name: str) -> ast.Name:
        return ast.Name(id=name, ctx=ast.Load())

    @staticmethod
    def const(v: Any) -> ast.Constant:
        return ast.Constant(value=v)

    def call(self, fn: str, args: list[ast.expr]) -> ast.Call:
        return ast.Call(func=self.load(fn), args=args, keywords=[])

    def bind(self, value: ast.expr) -> tuple[ast.expr, ast.Name]:
        """``(t := value)`` and a read of ``t``; a local is read again instead (no temporary)."""
        if isinstance(value, ast.Name):
            return value, self.load(value.id)
        t = self.tmp()
        return ast.NamedExpr(target=ast.Name(id=t, ctx=ast.Store()), value=value), self.load(t)

    @staticmethod
    def is_none(e: ast.expr) -> ast.Compare:
        return ast.Compare(left=e, ops=[ast.Is()], comparators=[ast.Constant(value=None)])

    @staticmethod
    def is_const(e: ast.expr, v: bool) -> ast.Compare:
        return ast.Compare(left=e, ops=[ast.Is()], comparators=[ast.Constant(value=v)])

    def null_guard(self, parts: list[ast.expr], nullable: list[bool],
                   body: Callable[[list[ast.expr]], ast.expr]) -> ast.expr:
        """``None if any nullable part is None else body(parts)``, each part evaluated once."""
        if not any(nullable):
            return body(parts)
        tests: list[ast.expr] = []
        used: list[ast.expr] = []
        for p, n in zip(parts, nullable, strict=True):
            if n:
                bound, ref = self.bind(p)
                tests.append(self.is_none(bound))
                used.append(ref)
            else:
                used.append(p)
        # Non-nullable parts ahead of a nullable one are evaluated in the body; fine,
        # expressions have no side effects.
        test = tests[0] if len(tests) == 1 else ast.BoolOp(op=ast.Or(), values=tests)
        return ast.IfExp(test=test, body=self.const(None), orelse=body(used))

    # nodes -------------------------------------------------------------------
    def gen_Constant(self, node: ast.Constant) -> ast.expr:
        # Every number in the engine is an IEEE double, so row and vector results are identical.
        v = node.value
        return self.const(float(v) if type(v) is int else v)

    def gen_Name(self, node: ast.Name) -> ast.expr:
        if node.id == "null":
            return self.const(None)
        owner = self.layout.owner.get(node.id) if self.layout is not None else None
        if owner is not None:
            var = self._element(owner)
            local = self.element_locals.get((var, node.id))
            return self.load(local) if local is not None else self._element_field(var, node.id)
        if node.id == "grade" and self.stack:
            return self._element_field(self.stack[-1][1], "@grade")
        local = self.names[node.id]
        self.read.add(local)
        return self.load(local)

    # scopes ----------------------------------------------------------------------
    def _element(self, scope: str) -> str:
        return next(var for s, var in reversed(self.stack) if s == scope)

    def _element_field(self, var: str, key: str) -> ast.expr:
        read = ast.Subscript(value=self.load(var), slice=self.const(key), ctx=ast.Load())
        fields = self.loop_fields.get(var)
        if fields is not None:  # the element of a loop: see leave_scope
            fields.setdefault(key, []).append(read)
        return read

    def rank_max_expr(self) -> ast.expr:
        """The worst rank the current element's undetermined floors could give (provisional_grades: unknown)."""
        return self._element_field(self.stack[-1][1], "@rank_max")

    def rank_expr(self) -> ast.expr:
        """The grade rank ``grade_at_least`` compares: the policy's, or the current element's."""
        if self.stack:
            return self._element_field(self.stack[-1][1], "@rank")
        return self.load(self.grade_rank_local)

    def scope_elements(self, scope: str) -> ast.expr:
        """The list of ``scope``'s elements where the generated code stands (checked: a child)."""
        assert self.layout is not None
        parent = self.layout.parent[scope]
        if parent is None:
            return self._element_field("sc", scope)
        return self._element_field(self._element(parent), "@" + scope)

    def enter_scope(self, scope: str, loop: bool = False) -> str:
        """The local of the current element of ``scope``; with ``loop``, the element of a ``for``
        statement (an aggregation's loop), whose fields are read into locals (see ``leave_scope``)."""
        var = f"_e{len(self.stack)}_{scope}"
        self.stack.append((scope, var))
        if loop:
            self.loop_fields[var] = {}
        return var

    def leave_scope(self) -> dict[str, list[ast.Subscript]]:
        """The reads of the element's fields generated since ``enter_scope(loop=True)``, by key."""
        _, var = self.stack.pop()
        return self.loop_fields.pop(var, {})

    def read_once(self, var: str, fields: Mapping[str, list[ast.Subscript]]) -> list[ast.stmt]:
        """A field read more than once in a loop body (a condition over payments reads the due date
        up to five times) is read once, into a local, at the top of the body: the statements that do
        it; each of its reads becomes a read of the local, in place (they are already in the tree).
        Every element holds every field of its scope (the reader builds them so): reading one first
        is safe. A field read once stays where it is (it may not be reached)."""
        out: list[ast.stmt] = []
        for key, reads in fields.items():
            if len(reads) < 2:
                continue
            local = self.tmp()
            out.append(ast.Assign(targets=[ast.Name(id=local, ctx=ast.Store())],
                                  value=ast.Subscript(value=self.load(var), slice=self.const(key), ctx=ast.Load())))
            for node in reads:
                node.__class__ = ast.Name  # type: ignore[assignment]
                del node.value, node.slice
                node.id, node.ctx = local, ast.Load()  # type: ignore[attr-defined]
        return out

    def gen_BinOp(self, node: ast.BinOp) -> ast.expr:
        ln, rn = self.nullable(node.left), self.nullable(node.right)
        helper = {ast.Div: "_div", ast.FloorDiv: "_floordiv", ast.Mod: "_mod", ast.Pow: "_pow"}.get(type(node.op))
        if helper:
            return self.call(helper, [self.gen(node.left), self.gen(node.right)])
        left, right = self.gen_parts([node.left, node.right], [ln, rn])
        op = node.op
        return self.null_guard([left, right], [ln, rn], lambda p: ast.BinOp(left=p[0], op=op, right=p[1]))

    def gen_UnaryOp(self, node: ast.UnaryOp) -> ast.expr:
        operand = self.gen(node.operand)
        op = node.op
        return self.null_guard([operand], [self.nullable(node.operand)],
                               lambda p: ast.UnaryOp(op=op, operand=p[0]))

    def gen_BoolOp(self, node: ast.BoolOp) -> ast.expr:
        values = [self.gen(node.values[0]), *(self.lazy(v) for v in node.values[1:])]  # short-circuit
        flags = [self.nullable(v) for v in node.values]
        if not any(flags):
            return ast.BoolOp(op=node.op, values=values)
        # Kleene logic: for 'and', any False -> False; else any null -> null; else True.
        decisive = isinstance(node.op, ast.Or)  # the value that settles the result
        bound_refs = []
        tests: list[ast.expr] = []
        for v, nullable in zip(values, flags, strict=True):
            if not nullable:
                # A bool the checker proved never null is only tested (``v`` / ``not v``): no
                # temporary, and the null test below need not read it.
                tests.append(v if decisive else ast.UnaryOp(op=ast.Not(), operand=v))
                continue
            b, ref = self.bind(v)
            bound_refs.append(ref)
            tests.append(self.is_const(b, decisive))
        # The first test chain evaluates the operands in order: 'or' short-circuits on the
        # first decisive value, which is also the correct result.
        any_decisive = ast.BoolOp(op=ast.Or(), values=tests)
        any_null = ast.BoolOp(op=ast.Or(), values=[self.is_none(r) for r in bound_refs]) \
            if len(bound_refs) > 1 else self.is_none(bound_refs[0])
        return ast.IfExp(test=any_decisive, body=self.const(decisive),
                         orelse=ast.IfExp(test=any_null, body=self.const(None), orelse=self.const(not decisive)))

    def gen_Compare(self, node: ast.Compare) -> ast.expr:
        operands = [node.left, *node.comparators]
        literal = [i > 0 and isinstance(node.ops[i - 1], ast.In | ast.NotIn) for i in range(len(operands))]
        flags = [not lit and self.nullable(o) for o, lit in zip(operands, literal, strict=True)]
        first = next((k for k, n in enumerate(flags) if n), None)
        parts: list[ast.expr] = []
        for i, o in enumerate(operands):
            if literal[i]:
                parts.append(ast.Tuple(elts=[self.const(e.value) for e in o.elts], ctx=ast.Load()))  # type: ignore[attr-defined]
            elif i == first or (first is None and i < 2):  # evaluated whatever the other operands are
                parts.append(self.gen(o))
            else:
                parts.append(self.lazy(o))
        ops = list(node.ops)
        if not any(flags):
            return ast.Compare(left=parts[0], ops=ops, comparators=parts[1:])
        # Bind every operand once, then: null if any is null, else the chained comparison.
        return self.null_guard(parts, flags, lambda p: ast.Compare(left=p[0], ops=ops, comparators=p[1:]))

    def gen_IfExp(self, node: ast.IfExp) -> ast.expr:
        test = self.gen(node.test)
        body, orelse = self.lazy(node.body), self.lazy(node.orelse)
        if not self.nullable(node.test):
            return ast.IfExp(test=test, body=body, orelse=orelse)
        b, ref = self.bind(test)
        return ast.IfExp(test=self.is_none(b), body=self.const(None),
                         orelse=ast.IfExp(test=ref, body=body, orelse=orelse))

    def gen_Call(self, node: ast.Call) -> ast.expr:
        fn = FUNCTIONS.get(node.func.id) or AGGREGATIONS[node.func.id]  # type: ignore[attr-defined]
        if fn.row_code is not None:
            inline = fn.row_code(self, node)
            if inline is not None:
                return inline
        return self.call(fn.name, [self.gen(a) for a in node.args])


def runtime_namespace(grades: Sequence[str]) -> dict[str, Any]:
    """Globals of generated code: helper functions and nothing else (no builtins)."""
    ns = dict(RUNTIME)
    ns.update(row_helpers(grades))
    ns.update(aggregation_helpers(grades))
    ns["__builtins__"] = {}
    return ns


class _Locals(dict[str, str]):
    """The locals of the names generated code reads outside the elements, made as it reads them."""

    def __missing__(self, name: str) -> str:
        local = self[name] = f"v_{len(self)}"
        return local


def compile_element_arguments(expr: CheckedExpression, layout: ScopeLayout, grades: Sequence[str] = ()
                              ) -> Callable[[Mapping[str, Any], Mapping[str, Any]], list[tuple[Any, ...]]] | None:
    """For an expression that is one aggregation (``max_where(exposure, x, cond)``): ``f(env, elements)``
    giving each element's arguments after the scope, in the elements' order, as the decision computed them.

    Why the aggregation has no value is then read off the elements that made it so (a null condition,
    a null value where the condition held), not off every element lacking a name it reads. The code is
    the aggregation's own (its helper form), with the helper left out; ``env`` holds the names read
    outside the elements (the debtor's), ``elements`` the debtor's elements by scope. None for any other
    expression.
    """
    tree = expr.tree
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in AGGREGATIONS
            and len(tree.args) > 1):
        return None
    names = _Locals()
    gen = RowCodegen(names, "g_rank", {}, grades, layout=layout)
    call = gen.expression(expr)  # no sink: the helper form, helper(<list or generator of the arguments>)
    if not (isinstance(call, ast.Call) and len(call.args) == 1
            and isinstance(call.args[0], ast.ListComp | ast.GeneratorExp)):
        return None
    comp = call.args[0]
    listed = ast.ListComp(elt=comp.elt if len(tree.args) > 2 else ast.Tuple(elts=[comp.elt], ctx=ast.Load()),
                          generators=comp.generators)
    body: list[ast.stmt] = [ast.Assign(targets=[ast.Name(id=local, ctx=ast.Store())], value=ast.Call(
        func=ast.Attribute(value=ast.Name(id="env", ctx=ast.Load()), attr="get", ctx=ast.Load()),
        args=[ast.Constant(name)], keywords=[])) for name, local in names.items()]
    body.append(ast.Return(value=listed))
    # last_of reads its elements backwards: here, in their order
    return _function("arguments", ("env", "sc"), body, gen, grades, {"_agg_reversed": lambda xs: xs})


def _function(name: str, params: Sequence[str], body: list[ast.stmt], gen: RowCodegen, grades: Sequence[str],
              extra_globals: Mapping[str, Any] | None = None) -> Callable[..., Any]:
    """Generated statements compiled as the function ``name(*params)`` in the runtime namespace."""
    args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=p) for p in params], kwonlyargs=[], kw_defaults=[],
                         defaults=[])
    extra: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
    fn = ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None, **extra)
    module = ast.Module(body=[fn], type_ignores=[])
    locate(module)
    ns = runtime_namespace(grades)
    ns.update(gen.table_globals())
    ns.update(extra_globals or {})
    exec(compile(module, f"<{name}>", "exec"), ns)
    return ns[name]  # type: ignore[no-any-return]


def locate(tree: ast.AST) -> ast.AST:
    """Give every generated node a source position so ``compile`` accepts the tree.

    What :func:`ast.fix_missing_locations` does, without its generic recursion: a generated
    row function has thousands of nodes, and that walk was a quarter of loading a policy.
    The positions mean nothing (the code has no source); nodes parsed from a rule keep theirs.
    """
    stack = [tree]
    pop, push, extend = stack.pop, stack.append, stack.extend
    AST = ast.AST
    while stack:
        node = pop()
        if "lineno" in node._attributes:
            if hasattr(node, "lineno"):
                continue  # parsed from a rule: it and all below it have positions
            node.lineno = node.end_lineno = 1  # type: ignore[attr-defined]
            node.col_offset = node.end_col_offset = 0  # type: ignore[attr-defined]
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, AST):
                push(value)
            elif type(value) is list:
                extend(v for v in value if isinstance(v, AST))
    return tree


def compile_standalone(expr: CheckedExpression, grades: Sequence[str] = ()) -> Callable[[Mapping[str, Any]], Any]:
    """One checked expression as ``f(values) -> result``; for tests, tools and other back-ends.

    Uses the same code generator as the compiled policy, so what it returns is
    what a policy rule would see.
    """
    names = {n: f"v_{i}" for i, n in enumerate(expr.refs)}
    gen = RowCodegen(names, "g_rank", {w: f"w_{i}" for i, w in enumerate(expr.fired_refs)}, grades)
    body: list[ast.stmt] = []
    for n, local in names.items():
        body.append(ast.Assign(targets=[ast.Name(id=local, ctx=ast.Store())],
                               value=ast.Subscript(value=ast.Name(id="env", ctx=ast.Load()),
                                                   slice=ast.Constant(n), ctx=ast.Load())))
    body.append(ast.Return(value=gen.expression(expr)))
    return _function("expression", ("env",), body, gen, grades)
