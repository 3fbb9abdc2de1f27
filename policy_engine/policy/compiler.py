"""Stage 3, compile: a validated policy document -> a frozen :class:`CompiledPolicy`.

The authored form (a :class:`~policy_engine.loader.Document`, with source
positions) and the compiled form are different types. Compiling checks what a
schema cannot (names, types, cycles, scale, catalogue, segments, bands), and
turns the whole policy into one generated Python function, so a decision costs
one call instead of a tree walk per rule. The checked expression trees stay on
the compiled policy, so other back-ends (a vectorised evaluator) compile from
the same form.

Compiling runs in this order; each later step needs the names the earlier ones declare:

1. schema  -- shape of the document (schemas/policy.schema.json); semantic passes assume it, so they
              read only the entries the schema accepts (:class:`~.validate.SchemaValidPart`): an
              invalid entry is skipped, and the names it declares stay defined (of unknown type)
2. passes  -- :data:`PASSES`, one named pass per section (scale and segments, scopes, inputs, parameters,
              metrics, scorecard, warning categories, classification, warnings, action types, actions, then
              cross-checks); each adds the symbols it declares, its diagnostics and the compiled specs of its section
3. codegen -- one function for the row evaluator, only when no pass found an error
"""

from __future__ import annotations

import ast
import functools
import hashlib
import keyword
import re
import string
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..diagnostics import Diagnostic, DiagnosticSink, PolicyError, did_you_mean, sort_diagnostics
from ..frozen import Frozen, field
from ..language import expressions as ex
from . import bounds
from . import scopes as sc
from .cache import known_schema_valid, remember_schema_valid
from .catalogue import (
    CATALOGUE,
    WARNING_CATEGORIES,
    ActionType,
    Param,
    allowed_values,
    param_problem,
    params_check,
    policy_catalogue,
    words_problem,
)
from .loader import Document, PathKey, format_path
from .modules import (
    Definition,
    ModuleResult,
    ModuleSource,
    ModuleText,
    bundle_text,
    imports_pass,
    local_definitions,
    module_scopes,
)
from .table_parameters import build_table, show_key
from .validate import SchemaValidPart, schema_errors

_NO_SCORECARD = "'score' is the scorecard's points, and this policy has no scorecard"  # it would read 0

BUILTIN_SYMBOLS = {
    "as_of": ex.Symbol("as_of", "builtin", ex.DATE, False),
    "score": ex.Symbol("score", "builtin", ex.NUMBER, False),
    "grade": ex.Symbol("grade", "builtin", ex.GRADE, False),
}

# A name a policy defines (input, parameter, metric) is read in expressions, so it cannot be a
# word the language already gives a meaning: Python's keywords (the parser reads them first),
# the functions and the built-in names. Soft keywords (match, case, type) parse as names.
_NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
LANGUAGE_WORDS = {"null": "the null literal", "true": "not a literal (write True)",
                  "false": "not a literal (write False)"}


def reserved_names() -> dict[str, str]:
    """Every name a policy may not define, with why; one table for checks and documentation."""
    out = {k: "a Python keyword" for k in keyword.kwlist}
    out.update({f: "a function of the expression language" for f in ex.FUNCTIONS})
    out.update({f: "an aggregation of the expression language" for f in ex.AGGREGATIONS})
    out.update({b: "a built-in name of every policy" for b in BUILTIN_SYMBOLS})
    out.update({w: f"reserved by the expression language: {why}" for w, why in LANGUAGE_WORDS.items()})
    return out


RESERVED_NAMES = reserved_names()

# Placeholders an action's reason may use besides the policy's names: filled by the engine.
ACTION_PLACEHOLDERS: Mapping[str, str] = {
    "triggers": "what fired the action: the grade its condition names, each warning it names that fired, with its "
                "message, and the exposures it concerns",
}

_INPUT_TYPES = {"number": ex.NUMBER, "integer": ex.NUMBER, "boolean": ex.BOOL, "string": ex.STRING,
                "date": ex.DATE, "grade": ex.GRADE}


_NUMBER_TEXT = re.compile(r"^[-+]?(\d[\d_]*(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")  # '1,25': a decimal comma (YAML reads it as text)
_PERCENT_TEXT = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)\s*%$")  # '10%': YAML reads it as text


def percent_as_share(text: str) -> str | None:
    """'12.5%' as the number a share is written as ('0.125'); None when the text is no percentage."""
    if not _PERCENT_TEXT.match(text.strip()):
        return None
    return _as_number(repr(float(text.strip().rstrip("% \t")) / 100))


def _number_hint(text: str) -> str:
    """What to write for a number given as text: a quoted number, a percentage, or one with a decimal comma."""
    share = percent_as_share(text)
    if share is not None:
        return f"a share is written as a number: {text} is {share}"
    if _DECIMAL_COMMA.match(text):
        whole, decimals = text.split(",")
        hint = f"write it as a number with a decimal point: {_as_number(whole + '.' + decimals)}"
        if len(decimals) == 3:  # '1,250' may be a thousands separator
            hint += f" (or {_as_number(whole + decimals)} if the comma separates thousands)"
        return hint
    return f"write it as a number, without quotes or leading zeros: {_as_number(text)}"


def _as_number(text: str) -> str:
    """'007' -> 7, '1e-3' -> 0.001, '1_000.50' -> 1000.5: the number a quoted number meant."""
    value = float(text.strip().replace("_", ""))
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


# ------------------------------------------------------------- compiled form


class InputSpec(Frozen):
    name: str
    source: str  # the 'from' path as written
    root: tuple[str, ...]  # path to the value, or to the list for a series
    item: tuple[str, ...]  # path inside each period (series only)
    series: bool
    type: str  # number | integer | boolean | string | date | grade
    required: bool
    min: float | None
    max: float | None
    enum: tuple[str, ...] | None
    unit: str | None
    ascending: bool = False  # series only: values strictly increase from period to period
    not_after_as_of: bool = False  # dates only: no value after the decision's as-of date
    not_before: str | None = None  # an element's date: not before this date input of its scope or an ancestor's
    scope: str | None = None  # the scope whose elements it reads a field of; None: the debtor (a record's field)
    description: str | None = field(default=None, compare=False)  # for the data contract (schema client -p)
    label: Mapping[str, str] | None = field(default=None, compare=False)  # {zh, en}: read by people, no rule
    # value -> its {zh, en} words (a segment's value_labels, a grade's names): a record that sends
    # the words instead of the value is told which value they name
    value_labels: Mapping[str, Mapping[str, str]] | None = field(default=None, compare=False)


class MetricSpec(Frozen, eq=False):
    name: str
    expr: ex.CheckedExpression
    label: Mapping[str, str] | None
    format: str | None
    after: str | None = None  # "classification": computed once the final grade is known, and may read it
    informational: bool = False  # only reported: read by no rule, and not meant to be
    labels: Mapping[str, Mapping[str, str]] | None = None  # a text value -> its words in zh and en
    unit: str | None = None  # for people (the diff shows a change): no rule reads it
    description: str | None = None
    whole: bool = False  # proven a whole number (a count, days between dates): JSON writes 3, not 3.0


class Band(Frozen):
    min: float | None
    max: float | None
    value: Any  # points, or a grade id

    def contains(self, x: float) -> bool:
        return (self.min is None or x >= self.min) and (self.max is None or x < self.max)

    def label(self) -> str:
        lo = "-inf" if self.min is None else f"{self.min:g}"
        hi = "+inf" if self.max is None else f"{self.max:g}"
        return f"[{lo}, {hi})"


class FactorSpec(Frozen, eq=False):
    id: str
    expr: ex.CheckedExpression
    weight: float
    missing_points: float
    bands: tuple[Band, ...]
    label: Mapping[str, str] | None


class _ConcernsExposures:
    """What a warning, an action and a debtor floor share: they may name the exposures they concern
    (``for_exposures``), each exposure holding whether it is concerned under a key no policy name can take
    (``selector_prefix`` + id)."""

    __slots__ = ()

    @property
    def selector(self) -> str:
        """The key under which each exposure holds whether this warning or action concerns it."""
        return self.selector_prefix + self.id  # type: ignore[attr-defined]

    @property
    def as_written(self) -> ex.CheckedExpression:
        """Its condition as the author wrote it (``expr`` joins for_exposures to it): what diff, trace and lint show."""
        own: ex.CheckedExpression | None = self.own_when  # type: ignore[attr-defined]
        return own if own is not None else self.expr  # type: ignore[attr-defined]


class FloorSpec(_ConcernsExposures, Frozen, eq=False):
    id: str
    expr: ex.CheckedExpression
    floor: str
    rank: int
    source: str
    description: Mapping[str, str] | None
    # One rule, one condition: a rule with a message also warns (its warning has the rule's id).
    severity: str | None = None
    category: str | None = None
    message: Mapping[str, str] | None = None
    evidence: tuple[str, ...] = ()
    scope: str = "debtor"  # a policy with scopes: the graded scope's rules give each element its own grade
    # A debtor floor may name the exposures it applies back to (``for_exposures``, a condition of the graded scope
    # read with the exposures' own metrics, before their grades); None: every exposure.
    for_exposures: ex.CheckedExpression | None = None
    # With for_exposures, ``expr`` is 'when and any_of(exposure, for_exposures)'; this is 'when' as written.
    own_when: ex.CheckedExpression | None = field(default=None, compare=False)
    selector_prefix = "@for-floor:"  # a class constant (no annotation: not a field)


class WarningSpec(_ConcernsExposures, Frozen, eq=False):
    id: str
    expr: ex.CheckedExpression
    severity: str
    category: str
    message: Mapping[str, str]
    evidence: tuple[str, ...]
    # The warning of a classification rule that carries a message: it fires exactly when the floor
    # with the same id does (the floor's result, not a second evaluation), and the rule stands for it
    # in the trace, the undetermined list, coverage and diff.
    from_rule: bool = False
    label: Mapping[str, str] | None = field(default=None, compare=False)  # {zh, en}: read by people (reports)
    # The exposures it concerns: a condition of the graded scope (``for_exposures``); None: the debtor.
    for_exposures: ex.CheckedExpression | None = None
    # With for_exposures, ``expr`` is 'when and any_of(exposure, for_exposures)'; this is 'when' as written.
    own_when: ex.CheckedExpression | None = field(default=None, compare=False)
    selector_prefix = "@for-warning:"  # a class constant (no annotation: not a field); ids may be an action's too


class RestructuringSpec(Frozen, eq=False):
    expr: ex.CheckedExpression
    floor: str
    observation_months: int | None
    observation_periods: int | None
    source: str
    note: Mapping[str, str]


class ActionSpec(_ConcernsExposures, Frozen, eq=False):
    id: str
    action: str
    expr: ex.CheckedExpression
    params: Mapping[str, Any]  # literal values
    param_exprs: Mapping[str, ex.CheckedExpression]
    priority: int
    excludes: tuple[str, ...]
    approval: str | None
    reason: Mapping[str, str]
    restructuring: RestructuringSpec | None
    evidence: tuple[str, ...]
    kind: ActionType | None = None  # its catalogue entry (the engine's or the policy's own)
    # The exposures it concerns: a condition of the graded scope (``for_exposures``); None: the debtor.
    for_exposures: ex.CheckedExpression | None = None
    # Exclusions the catalogue adds (early repayment beside a grace period): excluded id -> why, zh/en.
    implied: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    label: Mapping[str, str] | None = field(default=None, compare=False)  # {zh, en}: read by people (reports)
    # With for_exposures, ``expr`` is 'when and any_of(exposure, for_exposures)'; this is 'when' as written.
    own_when: ex.CheckedExpression | None = field(default=None, compare=False)
    selector_prefix = "@for:"  # a class constant (no annotation: not a field)


class Grade(Frozen):
    id: str
    zh: str
    en: str
    nonperforming: bool


class CompiledPolicy(Frozen, eq=False):
    """A policy ready to evaluate: immutable, shareable across threads and calls."""

    id: str
    version: str
    title: Mapping[str, str]
    status: str
    owner: str
    effective_from: str
    effective_to: str | None
    changelog: tuple[Mapping[str, Any], ...]
    sha256: str
    file: str
    text: str
    segment_by: str | None
    segments: tuple[str, ...]
    inputs: tuple[InputSpec, ...]
    parameters: Mapping[str, Mapping[str, Any]]  # name -> segment -> value ('default' key); tables apart
    param_names: tuple[str, ...]
    param_tuples: Mapping[str | None, tuple[Any, ...]]  # segment -> values in param_names order
    metrics: tuple[MetricSpec, ...]
    score_base: float
    factors: tuple[FactorSpec, ...]
    score_bands: tuple[Band, ...]
    scale: tuple[Grade, ...]
    floors: tuple[FloorSpec, ...]
    warnings: tuple[WarningSpec, ...]
    actions: tuple[ActionSpec, ...]
    tests_path: str | None
    row_function: Callable[..., tuple[Any, ...]] = field(repr=False, compare=False)
    row_module: ast.Module | None = field(repr=False, compare=False, default=None)
    runtime: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)
    key_figures: tuple[str, ...] = ()  # metrics an explanation shows, in the policy's order
    modules: tuple[ModuleText, ...] = ()  # every module the policy reaches, in bundle order (see modules.py)
    imported: Mapping[str, str] = field(default_factory=dict)  # imported name -> "module-id version"
    # Metrics of each element of a scope that is not graded: read in place (see ex.Scope.element_metrics), kept
    # for diff, lint and the documentation of the policy; never computed on their own.
    element_metrics: tuple[MetricSpec, ...] = ()
    # A policy that declares scopes: the graded scope's inputs, metrics and floors (the fields
    # above hold the debtor level), and the code that evaluates its elements. None for 1.x policies.
    scoped: sc.ScopedPart | None = field(default=None, compare=False)
    # The catalogue this policy sees: the engine's action types, then those it declares.
    action_types: Mapping[str, ActionType] = field(default_factory=lambda: dict(CATALOGUE), compare=False)
    # The warning categories this policy may use: the engine's, then those it declares; id -> {zh, en}.
    warning_categories: Mapping[str, Mapping[str, str]] = field(default_factory=lambda: dict(WARNING_CATEGORIES),
                                                                compare=False)
    # Table parameters, read only by lookup(): not per segment, so not in the parameter tuples.
    tables: Mapping[str, ex.Table] = field(default_factory=dict, compare=False)
    # Per parameter (tables too), its unit and description as written: read by people (the diff), no rule.
    parameter_notes: Mapping[str, Mapping[str, str]] = field(default_factory=dict, compare=False)
    # What the segments are ({zh, en}) and a label per segment value: read by people (reports), no rule.
    segment_label: Mapping[str, str] | None = field(default=None, compare=False)
    segment_value_labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"

    @property
    def bundle(self) -> str:
        """What the decision depends on: the policy text, then each module text it reaches (``sha256`` is its hash)."""
        return bundle_text(self.text, self.modules)

    @property
    def base_decider(self) -> str:
        """What ``decided_by`` says when no floor raised the grade: the scorecard, or the default grade."""
        return "scorecard" if self.score_bands else "default"

    @property
    def grade_ids(self) -> tuple[str, ...]:
        return tuple(g.id for g in self.scale)

    def grade(self, gid: str) -> Grade:
        return self.scale[self.grade_ids.index(gid)]

    @property
    def row_source(self) -> str:
        """The generated row function as Python text, for reviewers and debugging."""
        return ast.unparse(self.row_module) if self.row_module is not None else ""

    def params_for(self, segment: str | None) -> tuple[Any, ...]:
        return self.param_tuples.get(segment) or self.param_tuples[None]

    def applies_on(self, day: str) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


# ---------------------------------------------------------------- compiler


class _EveryWarning(dict[str, bool]):
    """The warnings ``fired()`` may name when the warnings section was left out: any id, maybe null."""

    def __contains__(self, key: object) -> bool:
        return True

    def __missing__(self, key: str) -> bool:
        return True


class _EveryGrade(tuple[str, ...]):
    """The grades an expression may name when the scale was left out: any name may be one of them."""

    def __contains__(self, key: object) -> bool:
        return True


class _Compiler:
    """What the passes share: the document, the symbols declared so far, the diagnostics and the parts."""

    def __init__(self, doc: Document, modules: ModuleSource | None = None, stack: tuple[tuple[str, str], ...] = (),
                 memo: dict[tuple[str, str], ModuleResult] | None = None):
        self.doc = doc
        self.data: dict[str, Any] = doc.data
        # What the schema errors leave out: passes read entries through entries() and skip no more.
        self.valid = SchemaValidPart.whole()
        self.sink = DiagnosticSink(file=doc.file)
        # Imports (modules.imports_pass): where they are looked up, the modules being checked (a cycle is one
        # of them imported again), modules already checked, where each imported definition was written.
        self.modules = modules
        self.stack = stack
        self.memo: dict[tuple[str, str], ModuleResult] = memo if memo is not None else {}
        self.origins: dict[tuple[str, str], Definition] = {}
        self.reached: list[ModuleText] = []
        self.symbols: dict[str, ex.Symbol] = dict(BUILTIN_SYMBOLS)
        self.grades: tuple[str, ...] = ()
        self.segments: tuple[str, ...] = ()
        # Set when a left-out section may declare names, grades or segments no check can see: a
        # reference to one of those is then not reported (it may well exist).
        self.open_names = self.open_grades = self.open_segments = False
        self.unimported: dict[str, str] = {}  # a name a module offers, left out of the import -> the words saying so
        # What the passes compile, section by section, in the policy's order (metrics: dependency order).
        self.parts: dict[str, list[Any]] = {"metrics": [], "factors": [], "floors": [], "warnings": [], "actions": []}
        self.warning_nullable: dict[str, bool] = {}  # warning id -> whether its condition can be null
        self.rule_floors: dict[str, tuple[str, str]] = {}  # classification rule id -> its floor, scope (fired() hint)
        self.action_types: dict[str, ActionType] = dict(CATALOGUE)  # plus the policy's own (action types pass)
        # the engine's warning categories plus the policy's own (warning categories pass)
        self.warning_categories: dict[str, dict[str, str]] = dict(WARNING_CATEGORIES)
        self.tables: dict[str, ex.Table] = {}  # the table parameters that checked (parameters pass)
        self._domains: dict[str | None, dict[str, bounds.Domain]] | None = None  # proven values, for parameters
        # the same, grown metric by metric as they are checked (in dependency order): a metric's proven range
        self._metric_domains: dict[str | None, dict[str, bounds.Domain]] | None = None
        # Scopes (a policy that declares them): each scope's parent, each scoped name's scope.
        self.scoped = "scopes" in doc.data if isinstance(doc.data, dict) else False
        self.scope_parents: dict[str, str | None] = {}
        self.owner: dict[str, str] = {}
        self.graded: str | None = None
        # classification.provisional_grades: unknown: grade_at_least of an exposure that an undetermined floor could
        # make worse is null there (a three-valued grade, read inside aggregations and for_exposures).
        classification = doc.data.get("classification") if isinstance(doc.data, dict) else None
        self.provisional_unknown = isinstance(classification, dict) and \
            classification.get("provisional_grades") == "unknown"
        self.scope_specs: list[sc.ScopeSpec] = []
        self.scope_imports: dict[str, PathKey] = {}  # a scope brought in by an import -> that import's place
        self.name_imports: dict[tuple[str, str], PathKey] = {}  # (section, name) imported -> that import's place
        self.open_scopes = False  # an import failed: the scopes it would bring are unknown, and not reported
        # Metrics of a scope whose elements are not graded (each modification's): name -> (scope, checked tree),
        # their trees put in place where an expression of the scope reads them (see ex.Scope.element_metrics).
        self.element_metrics: dict[str, tuple[str, ast.expr]] = {}
        # Metrics caught in a cycle (reported once, by the metrics pass): none is put in place where it is read.
        self.cyclic: set[str] = set()
        self.element_specs: list[MetricSpec] = []

    # helpers ----------------------------------------------------------------
    def err(self, code: str, message: str, path: PathKey, hint: str | None = None, rule: str | None = None,
            severity: str = "error", column_offset: int | None = None) -> None:
        doc = self._doc_for(path)
        line, col = doc.locate(path)
        if column_offset is not None and line is not None and col is not None:
            line, col = self._expr_position(doc, path, column_offset)
        self.sink.items.append(Diagnostic(code=code, message=message, file=doc.file, line=line, column=col,
                                          path=format_path(path), rule=rule, hint=hint,
                                          severity=severity))  # type: ignore[arg-type]

    def _doc_for(self, path: PathKey) -> Document:
        """The file a path's definition was written in: an imported one is located in its module."""
        origin = self.origins.get(path[:2]) if len(path) >= 2 else None  # type: ignore[call-overload]
        return origin.doc if origin is not None else self.doc

    def _expr_position(self, doc: Document, path: PathKey, offset: int) -> tuple[int | None, int | None]:
        """Line and column in the file of character ``offset`` (1-based) of an expression value.

        A one-line value starts after its key (and quote). A longer one is followed the way YAML
        folds it: a block (``|`` or ``>``) starts on the line after its key, a plain or quoted
        value continues on more-indented lines; indentation is not part of the text, and a line
        break, like each blank line, is one character of it. So a ``#`` or an operator on the
        third line of a folded condition is reported on that line.
        """
        line, col = doc.locate(path)
        lines = doc.text.splitlines()
        key = path[-1]
        if line is None or col is None or not isinstance(key, str) or line > len(lines):
            return line, col
        text_line = lines[line - 1]
        idx = text_line.find(key + ":", col - 1)
        if idx < 0:
            return line, col
        after = idx + len(key) + 1
        rest = text_line[after:]
        start = after + len(rest) - len(rest.lstrip())  # 0-based: where the value starts
        head = rest.lstrip()[:1]
        key_indent = len(text_line) - len(text_line.lstrip(" "))
        block = head in ("|", ">")
        if not block:
            start += 1 if head in ("'", '"') else 0
            if offset <= len(text_line) - start or line == len(lines):
                return line, start + offset
        pos = offset - 1  # 0-based, still to walk
        if not block:
            pos -= len(text_line) - start
        first, blanks, indent = block, 0, None
        for n in range(line, len(lines)):
            t = lines[n]
            if not t.strip():
                blanks += 1
                continue
            ind = len(t) - len(t.lstrip(" "))
            if ind <= key_indent or (indent is not None and block and ind < indent):
                break
            indent = ind if indent is None or not block else indent
            # Literal blocks keep every line break; folding turns one into a space and keeps blank lines.
            pos -= 0 if first else (blanks + 1 if head == "|" else max(blanks, 1))
            first, blanks = False, 0
            length = len(t.rstrip()) - (indent if block else ind)
            if pos < max(length, 1):
                return n + 1, (indent if block else ind) + max(pos, 0) + 1
            pos -= length
        return line, col

    def entries(self, *section: str) -> list[tuple[Any, Any]]:
        """The schema-valid entries of a section, (name or index, entry), in the policy's order."""
        return self.valid.entries(self.data, section)

    def section(self, name: str) -> dict[str, Any]:
        """A mapping section (inputs, parameters, metrics) without its schema-invalid entries."""
        return dict(self.entries(name))

    def declare_skipped(self, section: str, kind: str) -> None:
        """Names declared by schema-invalid entries stand, typed unknown: using one is not another error."""
        for name in self.valid.skipped_names(self.data, (section,)):
            self.symbols.setdefault(name, ex.Symbol(name, kind, ex.UNKNOWN, True))
        self.open_names = self.open_names or self.valid.is_broken((section,))

    def check_expr(self, text: Any, path: PathKey, stage: str, want: str | None,
                   warnings: Mapping[str, bool] | None = None, rule: str | None = None,
                   in_scope: str = sc.DEBTOR) -> ex.CheckedExpression | None:
        grades = _EveryGrade(self.grades) if self.open_grades else self.grades
        if self.scoped:
            scope = sc.view(self.symbols, self.owner, self.scope_parents, self.graded, in_scope, stage, grades,
                            {} if warnings is None else warnings, open_names=self.open_names, rules=self.rule_floors,
                            unimported=self.unimported, element_metrics=self.element_metrics,
                            least={spec.name: spec.min for spec in self.scope_specs if spec.min},
                            provisional_unknown=self.provisional_unknown)
        else:
            scope = ex.Scope(symbols=self.symbols, stage=stage, grades=grades, rules=self.rule_floors,
                             warnings={} if warnings is None else warnings, open_names=self.open_names,
                             unimported=self.unimported)
        try:
            checked = ex.check_expression(text if isinstance(text, str) else str(text), scope, want)
        except ex.ExpressionError as errors:
            for e in ex.every_error(errors):
                self.err(e.code, e.message, path, e.hint, rule=rule, column_offset=e.column)
            return None
        if "score" in checked.refs and "scorecard" not in self.data:  # it would read 0 for every client
            at = re.search(r"\bscore\b", str(text))
            self.err("name-not-available", _NO_SCORECARD, path, "grade from the classification rules, or declare a "
                     "scorecard", rule=rule,
                     column_offset=at.start() if at else None)
            return None
        return checked

    def scope_of(self, item: Mapping[str, Any], path: PathKey, allowed: tuple[str, ...] | None = None) -> str | None:
        """The scope an input, metric or rule declares (default the debtor); None when it names none."""
        name = item.get("scope", sc.DEBTOR)
        if name == sc.DEBTOR:
            return name
        if not self.scoped or name not in self.scope_parents:
            if self.open_scopes and name not in self.scope_parents:
                return None
            self.err("unknown-scope", f"unknown scope '{name}'", (*path, "scope"),
                     did_you_mean(name, list(self.scope_parents)) or "declare it under scopes: (or leave 'scope' out "
                     "for the debtor)")
            return None
        if allowed is not None and name not in allowed:
            where = " or ".join(allowed)
            self.err("bad-scope", f"'{format_path(path)}' is in scope '{name}'; here the scope is {where}",
                     (*path, "scope"), "metrics and classification rules are at the debtor or in the graded "
                     "scope (the one with a key); aggregate a deeper scope from there")
            return None
        return name

    def _name_ok(self, kind: str, name: str, path: PathKey) -> bool:
        """A defined name is plain and not reserved; problems are located at the name's own key."""
        if not _NAME.fullmatch(name):
            self.err("bad-name", f"{kind} name {name!r} is not an identifier", path,
                     "lower-case letters, digits and underscores, starting with a letter (at most 63)")
            return False
        why = RESERVED_NAMES.get(name)
        if why is not None:
            self.err("reserved-name", f"{kind} name '{name}' is reserved: {why}", path,
                     f"choose another name, e.g. '{name}_value'")
            return False
        if kind != "scope" and name in self.scope_parents:  # count_where(s, ...) names the scope s, never a value
            self.err("reserved-name", f"{kind} name '{name}' is the name of a scope of this policy", path,
                     f"choose another name, e.g. '{name}_value'")
            return False
        return True

    def _dupes(self, items: list[tuple[Any, Any]], path: PathKey, what: str) -> None:
        """Two entries (index, entry) of one list with the same id: the second is reported."""
        seen: dict[str, int] = {}

        def at(k: int) -> PathKey:  # a grade of the scale is located at its entry, a rule at its id
            return (*path, k) if path[-1] == "scale" else (*path, k, "id")

        for i, entry in items:
            x = entry["id"]
            if x in seen:
                first = at(seen[x])
                line, _ = self._doc_for(first).locate(first)
                where = f"first defined at line {line}" if line is not None else f"also item {seen[x] + 1}"
                self.err("duplicate-id", f"duplicate {what} id '{x}' ({where})", at(i), f"give each {what} its own id")
            else:
                seen[x] = i

    def _grade_ref(self, g: str, path: PathKey) -> None:
        if g not in self.grades and not self.open_grades:
            self.err("unknown-grade", f"'{g}' is not a grade on the scale ({', '.join(self.grades)})", path,
                     ex.unknown_grade_hint(self.grades, g))

    def _bands(self, bands: list[dict[str, Any]], path: PathKey) -> None:
        """Bands are half-open [min, max), ascending, contiguous, covering every value."""
        for i, b in enumerate(bands):
            lo, hi = b.get("min"), b.get("max")
            if i == 0 and lo is not None:
                self.err("band-gap", f"values below {lo} fall in no band", (*path, i, "min"),
                         "leave 'min' out on the first band")
            if i == len(bands) - 1 and hi is not None:
                self.err("band-gap", f"values from {hi} up fall in no band", (*path, i, "max"),
                         "leave 'max' out on the last band")
            if i > 0 and lo is None:
                self.err("band-overlap", "only the first band may be open below", (*path, i))
            if i < len(bands) - 1 and hi is None:
                self.err("band-overlap", "only the last band may be open above", (*path, i))
            if lo is not None and hi is not None and lo >= hi:
                self.err("band-order", f"band min {lo} is not below its max {hi}", (*path, i))
            if i > 0:
                prev_hi = bands[i - 1].get("max")
                if prev_hi is not None and lo is not None and prev_hi != lo:
                    code = "band-gap" if prev_hi < lo else "band-overlap"
                    what = f"values in [{prev_hi}, {lo}) fall in no band" if prev_hi < lo \
                        else f"values in [{lo}, {prev_hi}) fall in two bands"
                    self.err(code, what, (*path, i, "min"), f"set min to {prev_hi}")

    def _action_params(self, a: Mapping[str, Any], path: PathKey) -> None:
        """The literal parameters of an action against its catalogue entry; computed ones are expressions."""
        kind = self.action_types[a["action"]]
        params = a.get("params") or {}
        for name, spec in kind.params.items():
            if spec.required and name not in params:
                self.err("missing-param", f"action '{a['action']}' needs parameter '{name}'", (*path, "params"))
        for name, v in params.items():
            ppath = (*path, "params", name)
            spec = kind.params.get(name)
            if spec is None:
                self.err("unknown-param", f"'{a['action']}' has no parameter '{name}'", ppath,
                         did_you_mean(name, kind.params) or f"parameters: {', '.join(kind.params) or 'none'}")
            elif not isinstance(v, dict):  # a computed one is checked with the expressions
                self._literal_param(name, spec, v, ppath)

    def _literal_param(self, name: str, spec: Param, v: Any, ppath: PathKey) -> None:
        if spec.type == "list":
            if not isinstance(v, list):
                of = f" of {', '.join(spec.enum)}" if spec.enum else ""
                self.err("wrong-type", f"parameter '{name}' takes a list{of}, found {v!r}", ppath,
                         f"{name}: [{v}]" if isinstance(v, str | int | float) and not isinstance(v, bool) else
                         f"{name}: [{', '.join((spec.enum or ('...',))[:2])}]")
                return
            for j, item in enumerate(v):
                if spec.enum and item not in spec.enum:
                    self.err("bad-value", f"'{item}' is not one of {', '.join(spec.enum)}", (*ppath, j),
                             did_you_mean(item, spec.enum))
        elif spec.type in ("integer", "number"):
            wrong = isinstance(v, bool) or not isinstance(v, int | float)
            if wrong or (spec.type == "integer" and not isinstance(v, int)):
                self.err("wrong-type", f"parameter '{name}' must be an {spec.type}", ppath)
            elif (spec.min is not None and v < spec.min) or (spec.max is not None and v > spec.max):
                self.err("bad-value", f"parameter '{name}' = {v} is outside {allowed_values(spec)}", ppath)
        elif spec.type == "string" and (not isinstance(v, str) or (spec.enum and v not in spec.enum)):
            self.err("bad-value", f"parameter '{name}' must be one of {', '.join(spec.enum or ())}", ppath,
                     did_you_mean(str(v), spec.enum or ()))

    def _templates(self, texts: Mapping[str, str], path: PathKey, rule: str,
                   extra: Mapping[str, str] | None = None, debtor: bool = True) -> None:
        """A message's placeholders: each a name of the debtor's (``debtor``: the message is one, as every warning's
        and action's is) in a format its values take."""
        extra = extra or {}
        for lang, text in texts.items():
            try:
                fields = list(string.Formatter().parse(text))
            except ValueError as e:
                self.err("bad-template", f"message template: {e}", (*path, lang), "write {{ and }} for literal braces",
                         rule=rule)
                continue
            for _, name, spec, conv in fields:
                if name is None:
                    continue
                if conv or not name.isidentifier() or name.startswith("_"):
                    self.err("bad-template", f"placeholder '{{{name}}}' must be a plain name", (*path, lang), rule=rule)
                elif name in extra and name not in self.symbols:
                    if spec:
                        self.err("bad-template", f"placeholder '{{{name}}}' is text ({extra[name]}): it takes no "
                                 "format", (*path, lang), rule=rule)
                elif name not in self.symbols and self.open_names:
                    continue  # it may be a name of a section left out for a schema error
                elif name == "as_of" and name in self.symbols:  # its hint was "did you mean 'as_of'?"
                    self.err("unknown-name", "placeholder '{as_of}' names nothing", (*path, lang),
                             "a message does not repeat the decision date: the record and the explanation give it",
                             rule=rule)
                elif name not in self.symbols:
                    self.err("unknown-name", f"placeholder '{{{name}}}' names nothing", (*path, lang),
                             did_you_mean(name, self.symbols), rule=rule)
                elif debtor and (elsewhere := sc.debtor_reads(name, self.owner, self.scope_parents)) is not None:
                    code, message, hint = elsewhere
                    self.err(code, f"placeholder {message}", (*path, lang), hint, rule=rule)
                elif name == "score" and "scorecard" not in self.data:
                    self.err("name-not-available", _NO_SCORECARD, (*path, lang),
                             "a message of a policy without a scorecard shows no score", rule=rule)
                elif self.symbols[name].table is not None:
                    self.err("bad-template", f"placeholder '{{{name}}}' is a table; show a cell through a metric "
                             f"(expr: lookup({name}, ...))", (*path, lang), rule=rule)
                elif spec and spec not in _FORMAT_SPECS:
                    allowed = ", ".join(_FORMAT_SPECS)
                    self.err("bad-template", f"format '{spec}' of '{{{name}}}' is not one of {allowed}",
                             (*path, lang), rule=rule)
                elif spec == "d" and not self._whole(name, set()):
                    t = self.symbols[name].type
                    why = f"'{name}' may have a fraction" if t == ex.NUMBER else f"'{name}' is a {t}"
                    self.err("bad-template", f"format 'd' of '{{{name}}}' needs a whole number; {why}",
                             (*path, lang), "use .0f, or round it in a metric: round(x)", rule=rule)
                elif spec and (t := self.symbols[name].type) not in (ex.NUMBER, ex.UNKNOWN):
                    # every format prints a number: text under {x:pct} printed as it is, with no percent sign
                    self.err("bad-template", f"format '{spec}' of '{{{name}}}' needs a number; '{name}' is a {t}",
                             (*path, lang), f"write {{{name}}} without a format", rule=rule)

    def _whole(self, name: str, seen: set[str]) -> bool:
        """Whether a placeholder's values are whole numbers: the ``d`` format prints nothing else."""
        sym = self.symbols.get(name)
        if sym is not None and sym.type == ex.UNKNOWN:
            return True  # its declaration was left out or has an error: nothing more to say about it
        if sym is None or sym.type != ex.NUMBER or name in seen:
            return False
        seen = seen | {name}  # the names being proven: a cycle proves nothing
        if sym.kind == "input":
            spec = self.section("inputs").get(name) or {}
            return spec.get("type") == "integer"
        if sym.kind == "param":
            p = self.section("parameters").get(name) or {}
            values = [p["value"]] if "value" in p else list((p.get("by_segment") or {}).values())
            return bool(values) and all(type(v) is int for v in values)
        if sym.kind == "metric":
            text = (self.section("metrics").get(name) or {}).get("expr")
            try:
                tree = ex.parse_expression(text)
            except ex.ExpressionError:
                return False
            return ex.is_whole(tree.body, lambda n: self._whole(n, seen))
        return False



# ------------------------------------------------------------ compiler passes
#
# Each pass reads one section of the authored policy, adds the symbols it declares and the
# diagnostics it finds, and appends the compiled specs of that section to ``c.parts``. A pass may
# read what the passes before it declared, never what a later one will: that is the whole
# contract of the order below. A new section kind is a new pass, not a new branch in an old one.


def _scale_and_segments(c: _Compiler) -> None:
    """The grade scale and the segment list: later passes check grade and segment references."""
    scale = c.entries("classification", "scale")
    # A scale grade left out for a schema error keeps its place: floors may name it.
    c.grades = ex.GradeScale(c.valid.declared(c.data, ("classification", "scale")),
                             {g[lang]: g["id"] for _, g in scale for lang in ("zh", "en")})
    c.open_grades = c.valid.unnamed(c.data, ("classification", "scale"))
    c._dupes(scale, ("classification", "scale"), "grade")
    seg = c.data.get("segments")
    if c.valid.is_broken(("segments",)):
        c.open_segments = True
    elif seg:
        c.segments = tuple(seg["values"])
        for value in seg.get("value_labels") or {}:
            if value not in c.segments:
                c.err("unknown-segment", f"segments.value_labels labels '{value}', which is not a segment",
                      ("segments", "value_labels", value), did_you_mean(value, c.segments))


def _scopes(c: _Compiler) -> None:
    """The scopes: names, parents (known, no cycle), paths that continue the parent's, the graded one."""
    if not c.scoped:
        return
    declared: dict[str, Any] = dict(c.entries("scopes"))
    # Entries the schema refused are reported there; their names stand, so what reads them is not
    # reported again (an input of a scope without its path is not in an unknown scope).
    skipped = c.valid.skipped_names(c.data, ("scopes",))
    _scope_parents(c, declared, skipped)
    _scope_cycles(c)
    for name, v in declared.items():
        if name in c.scope_parents:
            _scope_path(c, name, v, declared)
    _graded_scope(c, skipped)
    if c.data.get("scorecard"):
        c.err("bad-scope", "a policy with scopes has no scorecard yet: grades come from classification rules",
              ("scorecard",), "write the scorecard's bands as exposure or debtor rules")


def _scope_parents(c: _Compiler, declared: Mapping[str, Any], skipped: list[str]) -> None:
    raw = c.data["scopes"]
    known = {*declared, *skipped}
    for name, v in declared.items():
        path = ("scopes", name)
        c._name_ok("scope", name, path)
        if name == sc.DEBTOR:
            c.err("reserved-name", "'debtor' is the root scope; it is not declared", path)
            continue
        parent = v.get("parent")
        if parent is not None and parent not in known:
            c.err("unknown-scope", f"parent '{parent}' of scope '{name}' is not a scope", (*path, "parent"),
                  did_you_mean(parent, list(known)) or "leave 'parent' out for a child of the debtor")
            parent = None
        c.scope_parents[name] = parent
    for name in skipped:
        parent = raw[name].get("parent") if isinstance(raw[name], dict) else None
        c.scope_parents[name] = parent if isinstance(parent, str) and parent in known else None


def _scope_cycles(c: _Compiler) -> None:
    """Each cycle of parents is reported once; its scopes are then read as children of the debtor."""
    for name in c.scope_parents:
        seen = [name]
        cur = c.scope_parents[name]
        while cur is not None:
            if cur in seen:
                cycle = " -> ".join([*seen[seen.index(cur):], cur])
                c.err("scope-cycle", f"scopes are their own ancestors: {cycle}", ("scopes", name, "parent"),
                      "each scope has one parent, and the debtor is the root")
                c.scope_parents[name] = None
                break
            seen.append(cur)
            cur = c.scope_parents[cur]


def _graded_scope(c: _Compiler, skipped: list[str]) -> None:
    """The scope metrics and rules grade: a keyed child of the debtor (one per policy)."""
    keyed = [s.name for s in c.scope_specs if s.key is not None and s.parent is None]
    rules = [r for _, r in c.entries("classification", "rules")]
    named = {r.get("scope") for r in rules if r.get("scope", sc.DEBTOR) != sc.DEBTOR} | \
        {m.get("scope") for m in c.section("metrics").values() if m.get("scope", sc.DEBTOR) != sc.DEBTOR}
    graded = [n for n in keyed if n in named] or keyed[:1] or [n for n in skipped if n in named][:1]
    if len(graded) > 1:
        c.err("bad-scope", f"metrics and rules name {' and '.join(graded)}: one scope is graded", ("scopes",),
              "grade one keyed scope (the exposures); aggregate the others")
    c.graded = graded[0] if graded else None


def _scope_path(c: _Compiler, name: str, v: Mapping[str, Any], declared: Mapping[str, Any]) -> None:
    """A child of the debtor reads ``list[*]``; a child of scope p reads p's path then ``.list[*]``."""
    path = ("scopes", name, "from")
    parent = c.scope_parents[name]
    src = v["from"]
    parts = src.split(".")
    if parent is None:
        if len(parts) != 1:
            c.err("bad-scope-path", f"scope '{name}' is a child of the debtor: its path is one list, found {src!r}",
                  path, f"write from: \"{parts[-1]}\" and parent: <the scope of {'.'.join(parts[:-1])}>")
            return
    elif parent in declared:  # a parent the schema refused has no path to continue
        parent_src = declared[parent]["from"]
        if not src.startswith(parent_src + ".") or src.count(".") != parent_src.count(".") + 1:
            c.err("bad-scope-path", f"scope '{name}' is a child of '{parent}' ({parent_src}): its path continues "
                  f"it with one list, found {src!r}", path, f"write from: \"{parent_src}.<list>[*]\"")
            return
    most, least = int(v.get("max", sc.DEFAULT_MAX)), int(v.get("min", 0))
    if least > most:
        c.err("bad-scope-min", f"scope '{name}' needs at least {least} elements and allows at most {most}",
              ("scopes", name, "min"), f"lower min to {most} or raise max to {least}")
    c.scope_specs.append(sc.ScopeSpec(name, src, parent, parts[-1].removesuffix("[*]"), v.get("key"),
                                      v.get("order_by"), most, tuple(v.get("unique") or ()), least))


def _inputs(c: _Compiler) -> None:
    """Every input's declaration, and a symbol for each (typed, nullable unless required, bounds)."""
    for name, v in c.entries("inputs"):
        c._name_ok("input", name, ("inputs", name))
        scope = c.scope_of(v, ("inputs", name))
        if scope not in (None, sc.DEBTOR):
            c.owner[name] = scope
            if "[*]" in v["from"]:
                c.err("bad-input-path", f"input '{name}' of scope {scope} reads one field of each element: "
                      "no [*]", ("inputs", name, "from"), "a list inside an element is a child scope")
        _input_declaration(c, name, v)
        if name not in BUILTIN_SYMBOLS:  # reported by name_ok; the built-in keeps its meaning
            c.symbols[name] = _input_symbol(name, v)
    c.declare_skipped("inputs", "input")
    _input_places(c)
    _scope_orders(c)
    _date_orders(c)


def _scope_orders(c: _Compiler) -> None:
    """A scope's ``order_by`` and ``unique`` fields are fields every element has: read by a required input of the
    scope (a date or number for the order)."""
    inputs = c.section("inputs")
    for s in c.scope_specs:
        fields: list[tuple[str, str, tuple[Any, ...]]] = [("unique", f, ("scopes", s.name, "unique", i))
                                                          for i, f in enumerate(s.unique)]
        if s.order_by is not None:
            fields.insert(0, ("order_by", s.order_by, ("scopes", s.name, "order_by")))
        for what, name, where in fields:
            readers = [v for k, v in inputs.items() if c.owner.get(k) == s.name and v["from"] == name]
            role = "ordered by" if what == "order_by" else "unique by"
            if not readers and c.open_scopes:
                continue  # a failed import may have been to bring it: reported there, once
            if not readers and s.name in c.scope_imports:
                origin = c.origins[("scopes", s.name)]
                c.err("missing-import", f"scope '{s.name}', imported from {origin.origin}, is {role} "
                      f"'{name}', which no input of this file reads", c.scope_imports[s.name],
                      f"import the input of scope {s.name} that reads '{name}' from {origin.origin}")
            elif not readers:
                kind = "date" if what == "order_by" else "<its type>"
                named = inputs.get(name) if c.owner.get(name) == s.name else None
                # the input's name where its field was meant: declaring another input would read a field not there
                hint = (f"{what} names the element's field: use '{named['from']}' (the field input {name} reads)"
                        if isinstance(named, Mapping) and isinstance(named.get("from"), str) else
                        f"declare it: {{scope: {s.name}, from: {name}, type: {kind}, required: true}}")
                c.err("bad-scope", f"scope '{s.name}' is {role} '{name}', which no input of scope {s.name} reads",
                      where, hint)
            elif what == "order_by" and not any(v.get("required") and v["type"] in ("date", "number", "integer")
                                                for v in readers):
                c.err("bad-scope", f"scope '{s.name}' is ordered by '{name}': its input must be a required date "
                      "or number", where, "an element without it has no place in the order")
            elif what == "unique" and not any(v.get("required") for v in readers):
                c.err("bad-scope", f"scope '{s.name}' is unique by '{name}': its input must be required", where,
                      "an element without it cannot be told from another; write required: true")


def _date_orders(c: _Compiler) -> None:
    """``not_before`` relates two dates of one element, or of an element and its ancestor (a payment and the
    exposure it repays): the other date is a date input of the same scope or an ancestor scope."""
    inputs = c.section("inputs")
    for name, v in inputs.items():
        other = v.get("not_before")
        if other is None:
            continue
        path = ("inputs", name, "not_before")
        scope = c.owner.get(name)
        if v["type"] != "date" or scope is None:
            c.err("bad-input", "'not_before' is for date inputs" if v["type"] != "date" else
                  "'not_before' is for the dates of a scope's elements (an exposure's, a payment's)", path)
            continue
        allowed = [x for x in sc.chain(c.scope_parents, scope) if x != sc.DEBTOR]
        dates = [k for k, w in inputs.items() if w["type"] == "date" and c.owner.get(k) in allowed and k != name]
        if other in dates or (other not in inputs and c.open_scopes):
            continue  # (a failed import may have been to bring it: reported there, once)
        if other not in inputs and ("inputs", name) in c.name_imports:
            origin = c.origins[("inputs", name)].origin
            c.err("missing-import", f"input '{name}', imported from {origin}, may not precede '{other}', which no "
                  "input of this file reads", c.name_imports[("inputs", name)],
                  f"import '{other}' from {origin} too")
            continue
        if other == name:
            why = "is this input itself"
        elif other not in inputs:
            why = "names no input"
        elif inputs[other]["type"] != "date":
            why = "is not a date input"
        elif c.owner.get(other) is None:
            why = "is the debtor's (an element's date is bounded by its own element's or an ancestor element's)"
        else:
            why = f"is of scope {c.owner[other]}, neither {scope} nor one of its ancestors"
        c.err("bad-input", f"input '{name}' may not precede '{other}', which {why}", path,
              f"name a date input of scope {scope} or its ancestors: {', '.join(dates) or 'none is declared'}")
    _date_order_cycles(c, {k: v["not_before"] for k, v in inputs.items() if v.get("not_before") in inputs})


def _date_order_cycles(c: _Compiler, bound: Mapping[str, str]) -> None:
    """Dates each not before the next, back to the first, could only all be equal: a slip, reported once."""
    seen: set[str] = set()
    for start in bound:
        chain: list[str] = []
        name: str | None = start
        while name is not None and name not in seen and name not in chain:
            chain.append(name)
            name = bound.get(name)
        seen.update(chain)
        if name is not None and name in chain:
            loop = chain[chain.index(name):]
            c.err("bad-input", f"not_before makes a cycle: {' -> '.join([*loop, name])}", ("inputs", loop[0],
                  "not_before"), "each date is bounded by an earlier one: drop one of the bounds")


def _input_places(c: _Compiler) -> None:
    """One place in the record is one thing: a value, an object or a list, whatever input reads it.

    ``loan`` read as a value by one input and as an object by another (``loan.balance``) is a
    record no client can send; so is ``financials`` read as a list and as an object.
    """
    seen: dict[str, tuple[str, str]] = {}  # place -> (kind, input)
    for name, v in c.entries("inputs"):
        if name in c.owner:  # a path inside a scope's elements
            continue
        parts = v["from"].split(".")
        place = ""
        for i, part in enumerate(parts):
            is_list = part.endswith("[*]")
            place = f"{place}.{part.removesuffix('[*]')}" if place else part.removesuffix("[*]")
            kinds = [("list", place)] if is_list else []
            if is_list:
                place += "[*]"
            kinds.append(("value" if i == len(parts) - 1 else "object", place))
            for kind, at in kinds:
                other = seen.setdefault(at, (kind, name))
                if other[0] != kind:
                    c.err("input-path-conflict",
                          f"input '{name}' reads {at} as {'an' if kind == 'object' else 'a'} {kind}; input "
                          f"'{other[1]}' reads it as {'an' if other[0] == 'object' else 'a'} {other[0]}",
                          ("inputs", name, "from"), "a place in the client record holds one kind of thing")
                    return


def _input_declaration(c: _Compiler, name: str, v: Mapping[str, Any]) -> None:
    """The keys of one input that contradict each other (the schema checks each key alone)."""
    path = ("inputs", name)
    series = "[*]" in v["from"]
    if v["from"].count("[*]") > 1:
        c.err("bad-input-path", "only one [*] per input path", (*path, "from"))
    if v.get("enum") and v["type"] != "string":
        c.err("bad-input", "'enum' is only for string inputs", (*path, "enum"))
    if "min" in v and "max" in v and v["min"] > v["max"]:
        c.err("bad-input", f"min {v['min']} is above max {v['max']}", (*path, "min"))
    if series and v["type"] not in ("number", "integer", "date"):
        c.err("bad-input", "series inputs hold numbers or dates", (*path, "type"))
    if v.get("not_after_as_of") and v["type"] != "date":
        c.err("bad-input", "'not_after_as_of' is for date inputs", (*path, "not_after_as_of"))
    if v.get("ascending") and not series:
        c.err("bad-input", "'ascending' orders the periods of a series; this input is not one",
              (*path, "ascending"), "a series reads a list: from: financials[*].period_end")


def _input_symbol(name: str, v: Mapping[str, Any]) -> ex.Symbol:
    """How expressions see an input: a series is always nullable; declared bounds of a plain number."""
    series = "[*]" in v["from"]
    declared = v.get("min"), v.get("max")
    bounded = v["type"] in ("number", "integer") and None not in declared and not series
    t = (ex.SERIES_DATE if v["type"] == "date" else ex.SERIES_NUMBER) if series else _INPUT_TYPES[v["type"]]
    return ex.Symbol(name, "input", t, nullable=not v.get("required", False) or series,
                     enum=tuple(v["enum"]) if v.get("enum") else None,
                     bounds=(float(declared[0]), float(declared[1])) if bounded else None)


def _parameters(c: _Compiler) -> None:
    """Every parameter: its name, one value type, and a value for every segment."""
    for name, p in c.entries("parameters"):
        path = ("parameters", name)
        named = c._name_ok("parameter", name, path)
        if name in c.symbols:
            if named:
                c.err("duplicate-name", f"parameter '{name}' has the name of an {c.symbols[name].kind}", path)
            continue
        if "table" in p:
            c.symbols[name] = _table_symbol(c, name, p["table"])
            continue
        c.symbols[name] = _parameter_symbol(c, name, p)
        if "by_segment" in p:
            _parameter_segments(c, name, p["by_segment"])
    c.declare_skipped("parameters", "param")


def _table_symbol(c: _Compiler, name: str, spec: Mapping[str, Any]) -> ex.Symbol:
    """A table parameter (see :mod:`policy_engine.policy.table_parameters`); a broken one still declares its keys.

    Its keys name inputs, declared by the pass before, or metrics, declared by name only (an
    interpolated table keyed by a metric; the lookup checks the metric is a number).
    """
    table = build_table(name, spec, c.data["inputs"], list(c.data.get("metrics") or {}), c.grades,
                        lambda code, message, path, hint=None, severity="error":
                        c.err(code, message, path, hint, severity=severity))
    if table is None:
        keys = (spec["key"],) if "key" in spec else tuple(spec["keys"])
        table = ex.Table(name, keys, ex.NUMBER, {}, spec.get("interpolate") == "linear")
    else:
        c.tables[name] = table
    return ex.Symbol(name, "param", ex.TABLE, False, table=table)


def _parameter_symbol(c: _Compiler, name: str, p: Mapping[str, Any]) -> ex.Symbol:
    path = ("parameters", name)
    values = [p["value"]] if "value" in p else list(p["by_segment"].values())
    kinds = {type(v).__name__ for v in values}
    # Text that reads as a number ('1e-3', '007', '1.5') where the parameter is a number: a
    # quoted number, which would compare as text or fail far from here; name each at its place.
    places = [((*path, "value"), p["value"])] if "value" in p else \
        [((*path, "by_segment", k), v) for k, v in p["by_segment"].items()]
    quoted = [(at, v) for at, v in places if isinstance(v, str) and (
        _NUMBER_TEXT.match(v.strip()) or _DECIMAL_COMMA.match(v.strip()) or _PERCENT_TEXT.match(v.strip()))]
    if quoted and kinds <= {"int", "float", "str"} and len(quoted) == sum(isinstance(v, str) for v in values):
        for at, v in quoted:
            c.err("number-as-text", f"parameter '{name}' value '{v}' is text that reads as a number", at,
                  _number_hint(v.strip()))
        kinds = {"float"}
    if len(kinds) > 1 and kinds != {"int", "float"}:
        c.err("type-mismatch", f"parameter '{name}' mixes value types", path)
    v0 = 0.0 if kinds == {"float"} and quoted else values[0]  # reported once, where it is written
    t = ex.BOOL if isinstance(v0, bool) else ex.NUMBER if isinstance(v0, int | float) else ex.STRING
    numbers = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    # A parameter's values are all known here: its range is proved, not declared.
    bounds = (min(numbers), max(numbers)) if t == ex.NUMBER and len(numbers) == len(values) else None
    return ex.Symbol(name, "param", t, False, bounds=bounds, whole=bounds is not None and all(
        n.is_integer() for n in numbers))


def _parameter_segments(c: _Compiler, name: str, by_segment: Mapping[str, Any]) -> None:
    path = ("parameters", name, "by_segment")
    if c.open_segments:
        return  # the segments were left out for a schema error: there is nothing to check against
    if not c.segments:
        c.err("no-segments", f"parameter '{name}' varies by segment but the policy declares no segments",
              path, "add segments: {by: <a required string input>, values: [...]}")
        return
    for segname in by_segment:
        if segname != "default" and segname not in c.segments:
            c.err("unknown-segment", f"'{segname}' is not a segment", (*path, segname),
                  did_you_mean(segname, [*c.segments, "default"]))
    missing = [s for s in c.segments if s not in by_segment]
    if "default" not in by_segment and missing:
        c.err("missing-segment-value",
              f"parameter '{name}' has no value for segment(s) {', '.join(missing)} and no default",
              path, "add the segments, or a 'default' value")


def _metrics(c: _Compiler) -> None:
    """Metric names, their dependency order (a cycle is an error), then each expression in that order.

    A metric declared ``after: classification`` is checked in the "graded" stage (it may read
    ``grade``) and its symbol is readable from that stage on only; compiled, such metrics follow
    the others (still in dependency order), because they run once the final grade is known.
    """
    metrics = c.section("metrics")
    for name in metrics:
        if c._name_ok("metric", name, ("metrics", name)) and name in c.symbols:
            c.err("duplicate-name", f"metric '{name}' has the name of an {c.symbols[name].kind}", ("metrics", name))
    c.declare_skipped("metrics", "metric")
    _key_figures(c, metrics)
    for name, m in metrics.items():
        if m.get("scope", sc.DEBTOR) in c.scope_parents:  # before any is checked: a view knows every owner
            c.owner[name] = m["scope"]
    for name, m in metrics.items():
        # Placeholders, so a metric caught in a cycle gives one error, not a cascade.
        c.symbols.setdefault(name, ex.Symbol(name, "metric", ex.UNKNOWN, True, first_stage=_metric_stage(m)))
    for name in _metric_order(c, metrics):
        _metric(c, name, metrics[name])
    parts = c.parts["metrics"]
    parts[:] = [m for m in parts if m.after is None] + [m for m in parts if m.after is not None]


def _metric_range(c: _Compiler, name: str, ce: ex.CheckedExpression) -> tuple[float, float] | None:
    """The range a number metric's expression proves in every segment (see :mod:`.bounds`), or None: what a power
    may take as its exponent (``min(max(years, 1), 30)``), as it takes an input's declared min and max."""
    if c._metric_domains is None:
        c._metric_domains = bounds.environments(c.section("inputs"), c.section("parameters"), c.segments, [])
    found = []
    for env in c._metric_domains.values():
        env[name] = bounds.domain(ce, env)
        found.append(env[name])
    if not found or not all(isinstance(d, bounds.Interval) for d in found):
        return None
    return min(d.low for d in found), max(d.high for d in found)  # type: ignore[union-attr]


def _metric_stage(m: Mapping[str, Any]) -> str:
    """The stage a metric is computed in, and from which it may be read."""
    return "graded" if m.get("after") == "classification" else "param"


def _key_figures(c: _Compiler, metrics: Mapping[str, Any]) -> None:
    """Each key figure is a metric: the explanation prints it with the metric's label and format."""
    if c.valid.is_broken(("metrics",)):
        return  # the metrics were left out for a schema error: any name may be one
    left_out = c.valid.skipped_names(c.data, ("metrics",))
    for i, name in c.entries("key_figures"):
        scope = metrics[name].get("scope", sc.DEBTOR) if name in metrics else c.owner.get(name)
        if scope is not None and scope not in (sc.DEBTOR, c.graded) and scope in c.scope_parents and c.graded:
            c.err("bad-scope", f"key figure '{name}' is a metric of each {scope} element, not of the debtor or of "
                  f"each {c.graded}: a decision does not hold it", ("key_figures", i),
                  f"show a figure the debtor or each {c.graded} has, such as a count of the elements it holds for")
            continue
        if name in metrics or name in left_out:
            continue
        kind = c.symbols[name].kind if name in c.symbols else None
        if kind == "metric" or (kind is None and c.open_names):
            continue  # imported from a module that is invalid, or by an import the schema refused: reported there
        article = "an" if kind and kind[0] in "aeiou" else "a"
        hint = (f"'{name}' is {article} {kind}; key figures are metrics: add one with expr: {name}" if kind
                else did_you_mean(name, metrics))
        c.err("unknown-name", f"key figure '{name}' is not a metric of this policy", ("key_figures", i), hint)


def _metric_order(c: _Compiler, metrics: Mapping[str, Any]) -> list[str]:
    """Dependencies first, else declaration order; each cycle is reported once."""
    names = set(metrics)
    deps = {m: ex.metric_references(str(v["expr"]), names) for m, v in metrics.items()}
    order: list[str] = []
    state: dict[str, int] = {}
    reported: set[frozenset[str]] = set()

    def visit(m: str, stack: list[str]) -> None:
        if state.get(m) == 2:
            return
        if state.get(m) == 1:
            cycle = [*stack[stack.index(m):], m]
            key = frozenset(cycle)
            if key not in reported:
                reported.add(key)
                c.cyclic.update(cycle)
                c.err("metric-cycle", f"metrics depend on each other in a cycle: {' -> '.join(cycle)}",
                      ("metrics", m, "expr"), "a metric cannot depend on itself, even indirectly")
            return
        state[m] = 1
        for dep in sorted(deps[m]):
            visit(dep, [*stack, m])
        state[m] = 2
        order.append(m)

    for m in metrics:  # declaration order, then dependencies first
        visit(m, [])
    return order


def _metric(c: _Compiler, name: str, m: Mapping[str, Any]) -> None:
    stage = _metric_stage(m)
    scope = c.scope_of(m, ("metrics", name)) or sc.DEBTOR
    if scope not in (sc.DEBTOR, c.graded):
        _element_metric(c, name, m, scope)
        return
    ce = c.check_expr(m["expr"], ("metrics", name, "expr"), "graded" if stage == "graded" else "metric", None,
                      rule=name, in_scope=scope)
    if ce is None:
        # Keep later checks going: an unknown type stands in for the broken metric.
        c.symbols[name] = ex.Symbol(name, "metric", ex.UNKNOWN, True, first_stage=stage)
        return
    if ce.type.startswith("series"):
        c.err("type-mismatch", "a metric must be one value, not a series", ("metrics", name, "expr"),
              "use last(...), sum_last(..., 4), ...")
    c.symbols[name] = ex.Symbol(name, "metric", ce.type if ce.type != ex.NULL else ex.NUMBER,
                                ce.nullable or ce.type == ex.NUMBER, first_stage=stage,
                                bounds=_metric_range(c, name, ce) if ce.type == ex.NUMBER else None)
    if m.get("labels") and ce.type not in (ex.STRING, ex.UNKNOWN):
        c.err("type-mismatch", f"labels word the values of a text metric; '{name}' is a {ce.type}",
              ("metrics", name, "labels"), "a number takes format:, a yes/no or a date is worded by the engine")
    elif m.get("labels") and (values := _text_values(c, ce.tree)) is not None:
        for value in m["labels"]:
            if value not in values:  # a misspelt label would never be shown
                c.err("bad-value", f"labels of '{name}': '{value}' is not a value it takes (one of "
                      f"{', '.join(values)})", ("metrics", name, "labels", value),
                      "spell the value as the enum of the input it reads")
    c.parts["metrics"].append(MetricSpec(name, ce, m.get("label"), _shown_format(c, name, m, ce), m.get("after"),
                                         bool(m.get("informational", False)), m.get("labels"), m.get("unit"),
                                         m.get("description"), ce.type == ex.NUMBER and c._whole(name, set())))


def _shown_format(c: _Compiler, name: str, m: Mapping[str, Any], ce: Any) -> str | None:
    """How an explanation prints the metric: its ``format``; without one, a number the compiler proves whole (a
    count, days between two dates) as an integer (a count of late payments read 4.00)."""
    if m.get("format") is not None or ce.type != ex.NUMBER:
        return m.get("format")
    return "integer" if c._whole(name, set()) else None


def _element_metric(c: _Compiler, name: str, m: Mapping[str, Any], scope: str) -> None:
    """A metric of each element of a scope that is not graded (a modification's 'restructuring'): checked in its
    scope, then read where an expression of that scope names it (inside an aggregation over the scope, or another
    metric of it), its tree standing in for its name. Written once, it is computed as if written at each place, by
    every evaluator; it is not part of the decision, so it is not graded, shown or labelled."""
    path = ("metrics", name)
    if c.graded is None:
        c.err("bad-scope", f"metric '{name}' is in scope '{scope}', and no scope is graded", (*path, "scope"),
              "metrics are at the debtor or in the graded scope (the keyed one its rules name); a metric of a "
              "deeper scope is read inside an aggregation from there")
    elif m.get("after") is not None:
        c.err("bad-scope", f"metric '{name}' of each {scope} element is read inside aggregations, before "
              "classification: 'after' applies to metrics of the debtor and of the graded scope", (*path, "after"),
              "remove 'after'")
    for key in ("label", "labels", "format", "unit"):
        if key in m:  # a decision holds no value of an element's metric: the words would never be shown
            c.err("never-shown", f"'{key}' of metric '{name}' of each {scope} element is never shown: a decision "
                  f"holds the metrics that aggregate it, not its value per element", (*path, key),
                  "word the metric that aggregates it; keep what it means in its description", severity="warning")
    ce = c.check_expr(m["expr"], (*path, "expr"), "metric", None, rule=name, in_scope=scope)
    if ce is None or name in c.cyclic:  # an unknown type stands in: its readers get no second error
        c.symbols[name] = ex.Symbol(name, "metric", ex.UNKNOWN, True)
        return
    if ce.type.startswith("series"):
        c.err("type-mismatch", "a metric must be one value, not a series", (*path, "expr"),
              "use last(...), sum_last(..., 4), ...")
        return
    c.symbols[name] = ex.Symbol(name, "element", ce.type if ce.type != ex.NULL else ex.NUMBER,
                                ce.nullable or ce.type == ex.NUMBER)
    c.element_metrics[name] = (scope, ce.tree)
    c.element_specs.append(MetricSpec(name, ce, m.get("label"), _shown_format(c, name, m, ce), None,
                                      bool(m.get("informational", False)), m.get("labels"), m.get("unit"),
                                      m.get("description")))


def _text_values(c: _Compiler, tree: ast.expr) -> tuple[str, ...] | None:
    """The values a text metric takes, when its expression names them: an enum input, read as it is or
    picked by ``last_of(scope, input, cond)``; None when the expression computes its text otherwise."""
    read = tree.args[1] if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and \
        tree.func.id == "last_of" and len(tree.args) == 3 else tree
    declared = c.section("inputs").get(read.id) if isinstance(read, ast.Name) else None
    enum = declared.get("enum") if isinstance(declared, Mapping) else None
    return tuple(map(str, enum)) if isinstance(enum, list) and enum else None


def _scorecard(c: _Compiler) -> None:
    """Factors (bands of points over a number) and the score bands that map the total to a grade."""
    if not c.data.get("scorecard") or c.valid.is_broken(("scorecard",)):
        return
    factors = c.entries("scorecard", "factors")
    c._dupes(factors, ("scorecard", "factors"), "factor")
    for i, f in factors:
        path = ("scorecard", "factors", i)
        c._bands(f["bands"], (*path, "bands"))
        key = "metric" if "metric" in f else "expr"
        ce = c.check_expr(f.get("metric") or f.get("expr"), (*path, key), "factor", ex.NUMBER, rule=f["id"])
        if ce:
            bands = tuple(Band(b.get("min"), b.get("max"), b["points"]) for b in f["bands"])
            c.parts["factors"].append(FactorSpec(f["id"], ce, float(f.get("weight", 1)), float(f["missing_points"]),
                                                 bands, f.get("label")))
    grades = c.entries("scorecard", "grades")
    every = c.data["scorecard"]["grades"]
    if isinstance(every, list) and len(grades) == len(every):  # contiguity is a property of the whole list
        c._bands(every, ("scorecard", "grades"))
    for i, b in grades:
        c._grade_ref(b["grade"], ("scorecard", "grades", i, "grade"))


def _classification(c: _Compiler) -> None:
    """The floors: each a condition and the grade it sets at least; a rule with a message also warns."""
    rules = c.entries("classification", "rules")
    c._dupes(rules, ("classification", "rules"), "classification rule")
    for i, r in rules:
        path = ("classification", "rules", i)
        c._grade_ref(r["floor"], (*path, "floor"))
        if r["id"] in ("scorecard", "default"):
            # decided_by names a floor, or 'scorecard' / 'default' when none raised the grade
            c.err("reserved-name", f"floor id '{r['id']}' is what decided_by says when no floor decided",
                  (*path, "id"), f"choose another id, e.g. '{r['id']}_floor'")
        scope = c.scope_of(r, path, (sc.DEBTOR, c.graded) if c.graded else (sc.DEBTOR,))
        before = len(c.sink.items)
        written, selector, ce = _floor_condition(c, r, path, scope or sc.DEBTOR)
        if scope is None and "scope" in r:  # its scope was refused: its names are not the debtor's, as meant
            c.sink.items[before:] = [d for d in c.sink.items[before:] if d.code != "scope-name"]
        scope = scope or sc.DEBTOR
        warns = _rule_warning_declared(c, r, path, scope == sc.DEBTOR)
        if isinstance(r.get("floor"), str):
            c.rule_floors[r["id"]] = (r["floor"], scope)
        if warns and scope != sc.DEBTOR:
            c.err("bad-scope", f"rule '{r['id']}' of scope {scope} warns: warnings are the debtor's", path,
                  "write the warning at the debtor, e.g. any_of(exposure, ...)", rule=r["id"])
            warns = False
        if warns:
            # fired('id') in an action reads the floor's result: as nullable as its condition.
            c.warning_nullable[r["id"]] = ce.nullable if ce else True
            _null_placeholders(c, r["message"], (*path, "message"), r["id"], ce)
        if ce and r["floor"] in c.grades:
            evidence = tuple(r.get("evidence") or ())
            spec = FloorSpec(r["id"], ce, r["floor"], c.grades.index(r["floor"]), r["source"], r.get("description"),
                             r.get("severity"), r.get("category", _RULE_CATEGORY) if warns else None,
                             r.get("message"), evidence, scope=scope, for_exposures=selector,
                             own_when=written if selector is not None else None)
            c.parts["floors"].append(spec)
            if warns:  # its warning names the exposures the floor applies to, as a warning's for_exposures does
                c.parts["warnings"].append(WarningSpec(r["id"], ce, r["severity"], spec.category or _RULE_CATEGORY,
                                                       r["message"], evidence, from_rule=True, for_exposures=selector,
                                                       own_when=spec.own_when))


def _floor_condition(c: _Compiler, r: Mapping[str, Any], path: PathKey, scope: str
                     ) -> tuple[ex.CheckedExpression | None, ex.CheckedExpression | None, ex.CheckedExpression | None]:
    """A floor's condition as written, the exposures a debtor floor names (``for_exposures``) and the condition
    it is decided by, as for a warning (:func:`_concerning`): 'when and any_of(<graded scope>, for_exposures)'.

    The exposures are named before they are graded (the floor is what grades them): ``for_exposures`` reads an
    exposure's inputs and own metrics, as its own floors do, never its grade."""
    def check(text: str, where: PathKey) -> ex.CheckedExpression | None:
        return c.check_expr(text, where, "floor", ex.BOOL, rule=r["id"], in_scope=scope)

    if "for_exposures" in r and scope != sc.DEBTOR:
        c.err("bad-scope", f"rule '{r['id']}' of scope {scope} names exposures: for_exposures is a debtor floor's "
              f"(a floor of scope {scope} applies to its own {scope} already)", (*path, "for_exposures"),
              "remove for_exposures and put its condition in when, or make the rule the debtor's (no scope:)",
              rule=r["id"])
        return check(r["when"], (*path, "when")), None, None
    before = len(c.sink.items)
    written, selector, ce = _concerning(c, r, path, "floor", check, stage="floor")
    if "for_exposures" in r and selector is None:  # a debtor metric or the grade read: the hint fits the place
        at = format_path((*path, "for_exposures"))
        c.sink.items[before:] = [_for_floor_hint(d) if d.code == "name-not-available" and d.path == at else d
                                 for d in c.sink.items[before:]]
    return written, selector, ce


_RULE_CATEGORY = "classification"  # a classification rule's warning without a category of its own
_RULE_WARNING_KEYS = ("severity", "category", "message", "evidence")


def _rule_warning_declared(c: _Compiler, r: Mapping[str, Any], path: PathKey, debtor: bool = True) -> bool:
    """Whether a classification rule also warns: a message and a severity, both or neither (then no
    category or evidence). Its message templates and evidence names are checked like a warning's."""
    given = [k for k in _RULE_WARNING_KEYS if k in r]
    if not given:
        return False
    for key in ("message", "severity"):
        if key not in r:
            c.err("missing-key", f"'{key}' is required in {format_path(path)}: a classification rule with "
                  f"{' and '.join(repr(k) for k in given)} warns when it fires", path,
                  "give the rule both a severity and a message {zh, en}, or neither", rule=r["id"])
    if "message" not in r or "severity" not in r:
        return False
    for j, e in enumerate(r.get("evidence") or ()):
        if e not in c.symbols and not c.open_names:
            c.err("unknown-name", f"evidence names unknown '{e}'", (*path, "evidence", j), did_you_mean(e, c.symbols),
                  rule=r["id"])
        elif debtor:  # a rule of an element's scope cannot warn: said once, by the classification pass
            _evidence_scope(c, e, (*path, "evidence", j), r["id"])
    c._templates(r["message"], (*path, "message"), r["id"], debtor=debtor)
    if "category" in r:
        _category(c, r["category"], (*path, "category"), r["id"])
    return True


def _evidence_scope(c: _Compiler, name: str, path: PathKey, rule: str) -> None:
    """Evidence is the debtor's: a name of an element's scope has no one value to show (it showed '—')."""
    elsewhere = sc.debtor_reads(name, c.owner, c.scope_parents)
    if elsewhere is not None:
        code, message, hint = elsewhere
        c.err(code, f"evidence {message}", path, hint, rule=rule)


def _warning_categories(c: _Compiler) -> None:
    """The policy's own warning categories: added to the engine's; a built-in id is a clash."""
    declared = c.entries("warning_categories")
    c._dupes(declared, ("warning_categories",), "warning category")
    for i, wc in declared:
        if wc["id"] in WARNING_CATEGORIES:
            c.err("warning-category-clash", f"warning category '{wc['id']}' is a built-in category of the engine",
                  ("warning_categories", i, "id"), "use the built-in category, or choose another id")
        else:
            c.warning_categories.setdefault(wc["id"], {"zh": wc["zh"], "en": wc["en"]})


def _category(c: _Compiler, category: str, path: PathKey, rule: str) -> None:
    """A warning's category is the engine's or one the policy declares (a declaration left out for a
    schema error may be the one it names: not reported twice)."""
    if category in c.warning_categories or c.valid.unnamed(c.data, ("warning_categories",)) \
            or category in c.valid.skipped_names(c.data, ("warning_categories",)):
        return
    c.err("unknown-warning-category", f"'{category}' is not a warning category", path,
          did_you_mean(category, c.warning_categories) or "one of "
          f"{', '.join(WARNING_CATEGORIES)}, or declare it under warning_categories", rule=rule)


def _null_placeholders(c: _Compiler, texts: Mapping[str, str], path: PathKey, rule: str,
                       ce: ex.CheckedExpression | None) -> None:
    """A placeholder that may have no value when its rule fires is an error in a policy with scopes.

    It would print '无数据' / 'n/a' into a sentence ('无数据发生危机事件'). A name is safe when it
    always has a value (a parameter, a required input, a metric that is never null), or when the
    condition proves it: ``when`` is true only if the name has a value (see :func:`ex.present_when`).
    A 1.x policy keeps the placeholder, so its stored decisions replay word for word.
    """
    if not c.scoped or ce is None:
        return
    proven = ex.present_when(ce.tree, True)
    # A metric's own expression says whether it may be null, as coverage reads it (MetricSpec.expr.nullable): its
    # symbol takes every number as nullable (an overflow becomes null), which guards the code generated, not words.
    metric_null = {m.name: m.expr.nullable for m in c.parts["metrics"]}
    for lang, text in texts.items():
        try:
            names = [n for _, n, _, _ in string.Formatter().parse(text) if n]
        except ValueError:
            continue  # reported by the template check
        for name in dict.fromkeys(names):
            sym = c.symbols.get(name)
            if sym is None or not metric_null.get(name, sym.nullable) or name in proven or sym.type == ex.UNKNOWN:
                continue
            if sc.debtor_reads(name, c.owner, c.scope_parents) is not None:
                continue  # a name of an element's scope: the template check said so, and that is the fix
            c.err("template-may-be-null", f"placeholder '{{{name}}}' may have no value when '{rule}' fires: the "
                  f"sentence would read '{'无数据' if lang == 'zh' else 'n/a'}' in its place", (*path, lang),
                  f"make the condition prove it (a comparison that reads {name}, or not is_null({name})), list it "
                  "under evidence instead, or show a metric that always has a value", rule=rule)


def _triggers_named(c: _Compiler, a: Mapping[str, Any], path: PathKey, ce: ex.CheckedExpression | None) -> None:
    """``{triggers}`` must always have words: whenever the condition is true, a grade it names is reached or a
    warning it names with fired() fired (else the reason would open on an empty phrase)."""
    if ce is None or "triggers" in c.symbols:
        return
    for lang, text in a["reason"].items():
        try:
            used = any(n == "triggers" for _, n, _, _ in string.Formatter().parse(text))
        except ValueError:
            continue
        if used and not _always_triggered(ce.tree):
            c.err("triggers-may-be-empty", f"'{{triggers}}' may be empty when '{a['id']}' fires: its condition can be "
                  "true without a grade it names (grade_at_least) being reached or a warning it names (fired) firing",
                  (*path, "reason", lang), "write the condition from grade_at_least(...) and fired(...), joined by "
                  "and/or (other terms may be and-ed to them), or write the reason without {triggers}", rule=a["id"])


def _always_triggered(tree: ast.AST) -> bool:
    """Whether ``tree`` is true only when one of its own grade_at_least() or fired() calls is (not under not)."""
    if isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name):
        return tree.func.id in ("grade_at_least", "fired")
    if isinstance(tree, ast.BoolOp):
        test = any if isinstance(tree.op, ast.And) else all
        return test(_always_triggered(v) for v in tree.values)
    return False


def _warnings(c: _Compiler) -> None:
    """Warnings: condition, evidence names and message templates; records each one's nullability."""
    warnings = c.entries("warnings")
    c._dupes(warnings, ("warnings",), "warning")
    rule_warnings = set(c.warning_nullable)  # the classification rules that warn (their pass ran first)
    for i, w in warnings:
        if w["id"] in rule_warnings:
            c.err("duplicate-id", f"warning id '{w['id']}' is the id of a classification rule that warns",
                  ("warnings", i, "id"), "a rule with a message emits its warning itself: remove this warning, "
                  "or give it another id", rule=w["id"])
        written, selector, ce = _concerning(c, w, ("warnings", i), "warning", functools.partial(
            c.check_expr, stage="warning", want=ex.BOOL, rule=w["id"]))
        evidence = tuple(w.get("evidence") or ())
        for j, e in enumerate(evidence):
            if e not in c.symbols and not c.open_names:
                c.err("unknown-name", f"evidence names unknown '{e}'", ("warnings", i, "evidence", j),
                      did_you_mean(e, c.symbols))
            elif c.symbols[e].table is not None:
                c.err("type-mismatch", f"evidence names table '{e}'; a decision shows the cells it looked up",
                      ("warnings", i, "evidence", j), "name the metric that reads the cell")
            else:
                _evidence_scope(c, e, ("warnings", i, "evidence", j), w["id"])
        c._templates(w["message"], ("warnings", i, "message"), w["id"])
        _null_placeholders(c, w["message"], ("warnings", i, "message"), w["id"], ce)
        _category(c, w["category"], ("warnings", i, "category"), w["id"])
        # fired('w') in an action is as nullable as w's condition; a broken one counts as nullable.
        c.warning_nullable[w["id"]] = ce.nullable if ce else True
        if ce:
            c.parts["warnings"].append(WarningSpec(w["id"], ce, w["severity"], w["category"], w["message"], evidence,
                                                   label=w.get("label"), for_exposures=selector, own_when=written))
    # A warning (or a classification rule, which may warn) left out for a schema error may still be
    # named by fired(): unknown, so maybe null.
    for section in (("warnings",), ("classification", "rules")):
        for wid in c.valid.skipped_names(c.data, section):
            c.warning_nullable.setdefault(wid, True)
        if c.valid.unnamed(c.data, section):
            c.warning_nullable = _EveryWarning(c.warning_nullable)


def _action_types(c: _Compiler) -> None:
    """The policy's own action types: added to the engine's catalogue; a built-in id is a clash."""
    declared = c.entries("action_types")
    c._dupes(declared, ("action_types",), "action type")
    for i, t in declared:
        path = ("action_types", i)
        if t["id"] in CATALOGUE:
            c.err("action-type-clash", f"action type '{t['id']}' is a built-in type of the engine's catalogue",
                  (*path, "id"), f"use the built-in type, or choose another id (e.g. '{t['id']}_local')")
        for name, p in (t.get("params") or {}).items():
            ppath = (*path, "params", name)
            numeric = p["type"] in ("integer", "number")
            if p.get("enum") and numeric:
                c.err("bad-action-type", f"parameter '{name}' is a {p['type']}: give min and max, not enum",
                      (*ppath, "enum"))
            for key in ("min", "max"):
                if key in p and not numeric:
                    c.err("bad-action-type", f"parameter '{name}' is a {p['type']}: '{key}' is for numbers",
                          (*ppath, key), "list the allowed values under enum")
            if numeric and "min" in p and "max" in p and p["min"] > p["max"]:
                c.err("bad-action-type", f"parameter '{name}': min {p['min']:g} is above max {p['max']:g}",
                      (*ppath, "min"))
            words = words_problem(Param(p["type"], enum=tuple(p.get("enum") or ()) or None, shown=p.get("shown"),
                                        labels=p.get("labels")))
            if words is not None:
                where = "shown" if words.startswith("shown") else "labels"
                c.err("bad-action-type", f"parameter '{name}': {words}", (*ppath, where),
                      "an explanation fills {value} for every type; {pct} and {abs} for numbers; {date} for whole "
                      "numbers of days")
    # A declaration already reported is used without its range, so its uses do not repeat the error.
    usable = [{**t, "params": {n: {k: v for k, v in p.items() if k not in ("min", "max")}
                               if "min" in p and "max" in p and p["min"] > p["max"] else p
                               for n, p in (t.get("params") or {}).items()}}
              for _, t in declared if t["id"] not in CATALOGUE]
    c.action_types = policy_catalogue(usable)


def _actions(c: _Compiler) -> None:
    """Actions: exclusions, catalogue parameters, the restructuring consequence, and their expressions."""
    actions = c.entries("actions")
    c._dupes(actions, ("actions",), "action")
    # Exclusions may name an action left out for a schema error; with one that has no id, any name.
    action_ids = c.valid.declared(c.data, ("actions",))
    any_action = c.valid.unnamed(c.data, ("actions",))
    # An action type left out for a schema error is not in the catalogue, nor unknown.
    types_left_out = c.valid.unnamed(c.data, ("action_types",))
    left_out_types = set(c.valid.skipped_names(c.data, ("action_types",)))
    for i, a in actions:
        path = ("actions", i)
        for j, x in enumerate(a.get("excludes") or []):
            if x not in action_ids and not any_action:
                c.err("unknown-action", f"excludes unknown action '{x}'", (*path, "excludes", j),
                      did_you_mean(x, action_ids))
            elif x == a["id"]:
                c.err("bad-value", "an action cannot exclude itself", (*path, "excludes", j))
        if a["action"] not in c.action_types:
            if not (types_left_out or a["action"] in left_out_types):  # (one left out is reported as a schema error)
                c.err("unknown-action-type", f"'{a['action']}' is not an action type of the catalogue",
                      (*path, "action"), did_you_mean(a["action"], c.action_types) or "declare it under "
                      "action_types, or see `policy-engine catalogue -p POLICY`", rule=a["id"])
            if a.get("restructuring"):
                c._grade_ref(a["restructuring"]["floor"], (*path, "restructuring", "floor"))
            # its parameters and consequence are the type's, unknown: the rest (when, reason, excludes, computed
            # parameters' names) is checked, so a typo there is not found only once the type is fixed
            _action(c, a, path)
            continue
        c._action_params(a, path)
        _restructuring_declared(c, a, path)
        _action(c, a, path)
    _implied_exclusions(c)


def _restructuring_declared(c: _Compiler, a: Mapping[str, Any], path: PathKey) -> None:
    """A concession must declare its regulatory consequence; adding collateral must not."""
    kind = c.action_types[a["action"]]
    if a.get("restructuring"):
        c._grade_ref(a["restructuring"]["floor"], (*path, "restructuring", "floor"))
        if kind.never_restructure:
            c.err("not-a-restructuring",
                  f"'{a['action']}' alone is not a restructuring; remove the restructuring block",
                  (*path, "restructuring"), "Measures art. 17: adding collateral is not a concession")
    elif kind.may_restructure:
        c.err("restructuring-consequence-missing",
              f"'{a['action']}' granted to a debtor in financial difficulty is a restructuring "
              "(Measures arts. 17-19); declare its 'restructuring' consequence",
              path, "add restructuring: {when: ..., floor: special_mention, source: ..., note: ...}", rule=a["id"])


def _action(c: _Compiler, a: Mapping[str, Any], path: PathKey) -> None:
    """One action's condition, computed parameters and restructuring condition, checked and compiled."""
    check = functools.partial(c.check_expr, stage="action", warnings=c.warning_nullable, rule=a["id"])
    written, selector, ce = _concerning(c, a, path, "action", functools.partial(check, want=ex.BOOL))
    c._templates(a["reason"], (*path, "reason"), a["id"], extra=ACTION_PLACEHOLDERS)
    _null_placeholders(c, a["reason"], (*path, "reason"), a["id"], ce)
    _triggers_named(c, a, path, ce)
    literal: dict[str, Any] = {}
    computed: dict[str, ex.CheckedExpression] = {}
    for pname, pv in (a.get("params") or {}).items():
        if not isinstance(pv, dict):
            literal[pname] = pv
            continue
        kind = c.action_types.get(a["action"])
        spec = kind.params.get(pname) if kind else None
        want = ex.NUMBER if spec and spec.type in ("integer", "number") else ex.STRING if kind else None
        pce = check(pv["expr"], (*path, "params", pname, "expr"), want=want)
        if pce:
            computed[pname] = pce
            if spec is not None and pce.type != ex.UNKNOWN:
                _computed_param_bounds(c, a, pname, spec, pce, (*path, "params", pname, "expr"))
                _table_param_cells(c, a, pname, spec, pce)
    rs = None
    if a.get("restructuring"):
        r = a["restructuring"]
        rce = check(r["when"], (*path, "restructuring", "when"), want=ex.BOOL)
        if rce and r["floor"] in c.grades:
            rs = RestructuringSpec(rce, r["floor"], r.get("observation_months"), r.get("observation_periods"),
                                   r["source"], r["note"])
    if ce:
        c.parts["actions"].append(ActionSpec(
            a["id"], a["action"], ce, literal, computed, a["priority"], tuple(a.get("excludes") or ()),
            a.get("approval"), a["reason"], rs, (), c.action_types.get(a["action"]), selector, label=a.get("label"),
            own_when=written))


def conflicting_actions(actions: Sequence[ActionSpec]) -> list[tuple[ActionSpec, ActionSpec, Mapping[str, str]]]:
    """Each pair of actions whose types the catalogue says conflict, that no ``excludes`` of theirs separates."""
    out = []
    for a in actions:
        for rule in (a.kind.conflicts if a.kind else ()):
            for b in actions:
                if b.action != rule.action or b is a or b.id in a.excludes or a.id in b.excludes:
                    continue
                value = b.params.get(rule.when_param) if rule.when_param else None
                if rule.when_param and rule.when_param not in b.param_exprs and not (
                        isinstance(value, int | float) and value > 0):
                    continue  # a restructuring without a grace period
                out.append((a, b, rule.why))
    return out


def _concerning(c: _Compiler, raw: Mapping[str, Any], path: PathKey, kind: str,
                check: Callable[[str, PathKey], ex.CheckedExpression | None], stage: str = "graded"
                ) -> tuple[ex.CheckedExpression | None, ex.CheckedExpression | None, ex.CheckedExpression | None]:
    """A warning's, an action's or a debtor floor's condition as written, the exposures it concerns, and the condition
    it is decided by: with for_exposures, 'when and any_of(<graded scope>, for_exposures)', so it fires only when it
    concerns some exposure, and every evaluator (row, vector, batch) decides it as any aggregation."""
    written = check(raw["when"], (*path, "when"))
    selector = _for_exposures(c, raw, path, kind, stage) if "for_exposures" in raw else None
    if written is None or selector is None:
        return written, selector, written
    return written, selector, check(f"({raw['when']}) and any_of({c.graded}, {raw['for_exposures']})",
                                    (*path, "when"))


def _for_exposures(c: _Compiler, a: Mapping[str, Any], path: PathKey, kind: str, stage: str = "graded"
                   ) -> ex.CheckedExpression | None:
    """``for_exposures``: a condition of the graded scope, read once the exposures' final grades are known (a
    warning's, an action's: ``stage`` graded) or with their own metrics, before their grades (a debtor floor's)."""
    where = (*path, "for_exposures")
    if not c.scoped or c.graded is None:
        whose = {"action": "an action concerns", "warning": "a warning concerns"}.get(kind, "a debtor floor applies to")
        c.err("bad-scope", f"for_exposures names the exposures {whose}: the policy needs a graded scope",
              where, "declare scopes: with a keyed scope (exposure: {from: \"exposures[*]\", key: exposure_id}), "
              "or remove for_exposures", rule=a["id"])
        return None
    return c.check_expr(a["for_exposures"], where, stage, ex.BOOL, rule=a["id"], in_scope=c.graded)


def _implied_exclusions(c: _Compiler) -> None:
    """The catalogue's conflicts between action types become exclusions, both ways (the more urgent is kept).

    Early repayment beside a restructuring with a grace period: a restructuring whose grace is
    computed may give one, so it conflicts too. An exclusion the policy wrote itself is kept as written.
    Only in a policy with scopes (the 2.0 language): a 1.x policy keeps its published decisions (its
    tests and stored records pin them), and its explanation flags the pair where both are recommended.
    """
    if not c.scoped:
        return
    actions = c.parts["actions"]
    implied: dict[str, dict[str, Mapping[str, str]]] = {a.id: {} for a in actions}
    for a, b, why in conflicting_actions(actions):
        implied[a.id][b.id] = implied[b.id][a.id] = why
    actions[:] = [ActionSpec(a.id, a.action, a.expr, a.params, a.param_exprs, a.priority,
                             (*a.excludes, *(x for x in implied[a.id] if x not in a.excludes)), a.approval, a.reason,
                             a.restructuring, a.evidence, a.kind, a.for_exposures, implied[a.id], label=a.label,
                             own_when=a.own_when)
                  if implied[a.id] else a for a in actions]


def _computed_param_bounds(c: _Compiler, a: Mapping[str, Any], pname: str, spec: Param,
                           pce: ex.CheckedExpression, path: PathKey) -> None:
    """A computed parameter that provably never gives a value the catalogue allows is an error.

    Each value the expression can give (each branch of a conditional) is checked in each segment
    (see :mod:`policy_engine.bounds`); one that is always refused is reported where it is written.
    What cannot be proven is left to the decision, which refuses a bad value visibly.
    """
    if c._domains is None:
        c._domains = bounds.environments(c.section("inputs"), c.section("parameters"), c.segments,
                                         [(m.name, m.expr) for m in c.parts["metrics"]])
    for arm in bounds.arms(pce.tree):
        refused: dict[str | None, str] = {}
        for seg, env in c._domains.items():
            why = bounds.refusal(spec, bounds.arm_domain(arm, env))
            if why is not None:
                refused[seg] = why
        if not refused:
            continue
        where = "" if len(refused) == len(c._domains) else \
            f" in segment{'s' if len(refused) > 1 else ''} {', '.join(s or 'default' for s in refused)}"
        what = "this branch" if arm is not pce.tree else "the expression"
        c.err("action-param-out-of-range",
              f"parameter '{pname}' of {a['action']}: {what} {next(iter(refused.values()))}{where}; "
              "every such value would leave the action undetermined", path,
              f"{a['action']} takes {allowed_values(spec)} for '{pname}'; clamp it, e.g. min(max(..., {spec.min:g}), "
              f"{spec.max:g})" if spec.min is not None and spec.max is not None else None,
              rule=a["id"], column_offset=bounds.column(pce, arm))


def _table_param_cells(c: _Compiler, a: Mapping[str, Any], pname: str, spec: Param,
                       pce: ex.CheckedExpression) -> None:
    """A computed parameter that is a table's cell: every cell must be a value the catalogue allows.

    Coverage makes every cell reachable, so a refused cell (981 months, 9.5 months) would leave the
    action undetermined for every client whose keys pick it; it is reported at the cell itself.
    """
    for arm in bounds.arms(pce.tree):
        looked_up = isinstance(arm, ast.Call) and getattr(arm.func, "id", None) == "lookup"
        table = c.tables.get(getattr(arm.args[0], "id", "")) if looked_up else None  # type: ignore[attr-defined]
        if table is None or table.interpolate:
            continue  # an interpolated value lies between cells: left to the decision
        for key, value in table.cells.items():
            problem = param_problem(spec, value)
            if problem is not None:
                keys = key if len(table.keys) > 1 else (key,)
                c.err("action-param-out-of-range",
                      f"table '{table.name}' cell [{', '.join(show_key(k) for k in keys)}] is parameter '{pname}' of "
                      f"action '{a['id']}' and {problem}; every client it is looked up for would leave the action "
                      "undetermined", ("parameters", table.name, "table", "values", *(show_key(k) for k in keys)),
                      f"{a['action']} takes {allowed_values(spec)} for '{pname}'", rule=a["id"])


def _cross_checks(c: _Compiler) -> None:
    """Checks between sections once every section is read: the dates in force are a period, the segment input
    exists and fits."""
    _in_force_period(c)
    _segment_input(c)


def _in_force_period(c: _Compiler) -> None:
    """``effective_to`` before ``effective_from``: a version never in force, which ``decide @VERSION`` would still
    describe as in force 'from 2027-07-01 to 2027-06-30' (an overlap's hint, followed for two versions starting the
    same day, led there)."""
    start, end = c.data.get("effective_from"), c.data.get("effective_to")
    if isinstance(start, str) and isinstance(end, str) and end < start:
        c.err("bad-dates", f"effective_to {end} is before effective_from {start}: the version is never in force",
              ("effective_to",), f"end it on {start} or later, or leave effective_to out (open)")


def _segment_input(c: _Compiler) -> None:
    seg = c.data.get("segments")
    if not seg or c.open_segments:
        return
    by, inputs = seg["by"], c.section("inputs")
    inp = inputs.get(by)
    if inp is None and (by in c.valid.skipped_names(c.data, ("inputs",)) or c.valid.is_broken(("inputs",))):
        return  # an input left out for a schema error
    if inp is None:
        c.err("unknown-name", f"segments.by names unknown input '{by}'", ("segments", "by"), did_you_mean(by, inputs))
    elif not inp.get("required") or inp["type"] != "string":
        c.err("bad-segment-input", f"segment input '{by}' must be a required string input", ("segments", "by"))
    elif inp.get("enum") and set(inp["enum"]) != set(c.segments):
        missing = sorted(set(inp["enum"]) - set(c.segments))
        extra = sorted(set(c.segments) - set(inp["enum"]))
        c.err("segment-mismatch",
              f"segments.values and the enum of input '{by}' differ"
              + (f"; not segments: {', '.join(missing)}" if missing else "")
              + (f"; not in the enum: {', '.join(extra)}" if extra else ""),
              ("segments", "values"))


# The order matters: a pass may read only the symbols of the passes above it.
PASSES: tuple[tuple[str, Callable[[_Compiler], None]], ...] = (
    ("imports", imports_pass),  # first: every later pass sees imported definitions as the file's own
    ("scale and segments", _scale_and_segments),  # grades and segments, referred to by every later pass
    ("scopes", _scopes),  # before inputs: an input, metric or rule names its scope
    ("inputs", _inputs),
    ("parameters", _parameters),  # after inputs: a parameter named like an input is the duplicate
    ("metrics", _metrics),  # after inputs and parameters, which metrics read
    ("scorecard", _scorecard),  # the rules from here on read metrics
    ("warning categories", _warning_categories),  # before the rules that warn, which name a category
    ("classification", _classification),
    ("warnings", _warnings),
    ("action types", _action_types),  # the catalogue the actions pick from: the engine's plus the policy's
    ("actions", _actions),  # after warnings: fired('w') is typed by warning w's nullability
    ("cross-checks", _cross_checks),
)


def _parameter_table(c: _Compiler) -> tuple[tuple[str, ...], dict[str, dict[str, Any]],
                                             dict[str | None, tuple[Any, ...]]]:
    """Parameter names, their values by segment, and per segment one tuple of values in name order."""
    params = {n: p for n, p in (c.data.get("parameters") or {}).items() if "table" not in p}
    names = tuple(params)
    table: dict[str, dict[str, Any]] = {}
    for n, p in params.items():
        table[n] = {"default": p["value"]} if "value" in p else dict(p["by_segment"])
    tuples: dict[str | None, tuple[Any, ...]] = {}
    for seg in (None, *c.segments):
        values = (table[n].get(seg if seg else "default", table[n].get("default")) for n in names)
        tuples[seg] = tuple(float(v) if type(v) is int else v for v in values)
    return names, table, tuples



# The formats a message placeholder may ask for ({x:pct}), with what each prints; the evaluator
# renders them (evaluate._fmt) and `policy-engine functions` lists them from this table.
MESSAGE_FORMATS: dict[str, str] = {
    "pct": "a fraction as a percentage with one decimal",
    ".0f": "a number with no decimals",
    ".1f": "a number with one decimal",
    ".2f": "a number with two decimals",
    ".0%": "a fraction as a percentage with no decimals",
    ".1%": "a fraction as a percentage with one decimal",
    ".2%": "a fraction as a percentage with two decimals",
    ",.0f": "a number with thousands separators and no decimals",
    ",.2f": "a number with thousands separators and two decimals",
    "d": "a whole number (checked: the value must be whole, e.g. an integer input, a count, round(x))",
}
_FORMAT_SPECS = tuple(MESSAGE_FORMATS)


def _band_lookup(x: ast.expr, bands: tuple[Band, ...], values: list[Any]) -> ast.expr:
    """The value of the band ``x`` falls in, as nested conditionals.

    [min, max) bands, ascending and contiguous (checked): the upper bounds are tested in turn.
    """
    const = ex.RowCodegen.const
    result: ast.expr = const(values[-1])
    for b, v in reversed(list(zip(bands[:-1], values[:-1], strict=True))):
        result = ast.IfExp(test=ast.Compare(left=x, ops=[ast.Lt()], comparators=[const(b.max)]),
                           body=const(v), orelse=result)
    return result


def _metric_assignments(gen: ex.RowCodegen, metrics: list[MetricSpec], after: str | None,
                        body: list[ast.stmt]) -> None:
    """``m_i = ...`` for the metrics of one stage (``after``), in dependency order; overflow becomes null.

    Appended to ``body`` one by one: the loops of a metric's aggregations go into it just before
    the metric's assignment (``gen.sink``), after the metrics they read."""
    for i, m in enumerate(metrics):
        if m.after != after:
            continue
        value = gen.expression(m.expr)
        if m.expr.type == ex.NUMBER and not ex.proven_finite(m.expr.tree):
            value = gen.call("_fin", [value])
        body.append(ast.Assign(targets=[ast.Name(id=f"m_{i}", ctx=ast.Store())], value=value))


def _generate_row_function(policy_inputs: tuple[InputSpec, ...], param_names: tuple[str, ...],
                           parts: dict[str, Any], score_base: float, score_bands: tuple[Band, ...],
                           grades: tuple[str, ...], layout: ex.ScopeLayout | None = None,
                           finalize: Callable[..., int] | None = None, every_floor: bool = False
                           ) -> tuple[Callable[..., tuple[Any, ...]], ast.Module]:
    """One Python function for the whole policy, built as ``ast`` from checked trees.

    With scopes (``layout``), the function also takes ``sc``, the debtor's elements by scope, and
    calls ``finalize`` once the debtor floors are known: it applies them to every exposure, runs
    the exposures' metrics after classification and returns the debtor's grade rank, the worst;
    with ``every_floor`` it gets every debtor floor's result too (provisional_grades: unknown).
    """
    names: dict[str, str] = {"as_of": "b_as_of", "score": "b_score", "grade": "b_grade"}
    for i, spec in enumerate(policy_inputs):
        names[spec.name] = f"i_{i}"
    for i, p in enumerate(param_names):
        names[p] = f"p_{i}"
    for i, m in enumerate(parts["metrics"]):
        names[m.name] = f"m_{i}"
    warning_locals = {w.id: f"w_{i}" for i, w in enumerate(parts["warnings"])}
    gen = ex.RowCodegen(names, "g_rank", warning_locals, grades, layout=layout)
    body: list[ast.stmt] = []
    # Each expression is generated just before the statement that holds it is appended to ``body``:
    # the loops of its aggregations go there first (functions._LOOPS).
    gen.sink = body

    def assign(target: str, value: ast.expr) -> None:
        body.append(ast.Assign(targets=[ast.Name(id=target, ctx=ast.Store())], value=value))

    def tup(items: list[ast.expr]) -> ast.Tuple:
        return ast.Tuple(elts=items, ctx=ast.Load())

    load = ex.RowCodegen.load
    const = ex.RowCodegen.const
    _metric_assignments(gen, parts["metrics"], None, body)

    score_terms: list[ast.expr] = [const(score_base)]
    consts: dict[str, Any] = {}
    for i, f in enumerate(parts["factors"]):
        # fb_i is the band index; len(bands) stands for "no value" (missing points).
        assign(f"x_{i}", gen.expression(f.expr))
        looked = _band_lookup(load(f"x_{i}"), f.bands, list(range(len(f.bands))))
        if f.expr.nullable:
            looked = ast.IfExp(test=gen.is_none(load(f"x_{i}")), body=const(len(f.bands)), orelse=looked)
        assign(f"fb_{i}", looked)
        consts[f"_P{i}"] = (*(b.value for b in f.bands), f.missing_points)
        assign(f"f_{i}", ast.Subscript(value=load(f"_P{i}"), slice=load(f"fb_{i}"), ctx=ast.Load()))
        score_terms.append(ast.BinOp(left=load(f"f_{i}"), op=ast.Mult(), right=const(f.weight)))
    score: ast.expr = score_terms[0]
    for t in score_terms[1:]:
        score = ast.BinOp(left=score, op=ast.Add(), right=t)
    assign("b_score", score)
    if score_bands:
        assign("s_rank", _band_lookup(load("b_score"), score_bands, [grades.index(b.value) for b in score_bands]))
    else:
        assign("s_rank", const(0))
    assign("g_rank", load("s_rank"))
    named = _floor_statements(gen, parts["floors"], body)
    if finalize is not None:
        assign("g_rank", _finalize_call(named, len(parts["floors"]) if every_floor else None))
        consts["_FINALIZE"] = finalize
    assign("b_grade", ast.Subscript(value=load("_GRADES"), slice=load("g_rank"), ctx=ast.Load()))
    _metric_assignments(gen, parts["metrics"], "classification", body)  # they may read the final grade
    floor_local = {r.id: f"r_{i}" for i, r in enumerate(parts["floors"])}
    for i, w in enumerate(parts["warnings"]):
        # A classification rule's warning is the floor's own result: one condition, evaluated once.
        assign(f"w_{i}", load(floor_local[w.id]) if w.from_rule else gen.expression(w.expr))
    action_values: list[ast.expr] = []
    param_values: list[ast.expr] = []
    restructuring_values: list[ast.expr] = []
    for k, a in enumerate(parts["actions"]):
        if not a.param_exprs:
            action_values.append(gen.expression(a.expr))
            param_values.append(tup([]))
        else:
            # An action whose computed parameters the catalogue refuses (a fraction of a month, 981
            # months, no value) is undetermined, not recommended with an impossible instruction.
            assign(f"a_{k}", gen.expression(a.expr))
            assign(f"ap_{k}", tup([gen.expression(pe) for pe in a.param_exprs.values()]))
            assert a.kind is not None  # set by the actions pass
            consts[f"_PARAMS_OK{k}"] = params_check(a.kind, list(a.param_exprs))
            body.append(ast.If(
                test=ast.BoolOp(op=ast.And(), values=[
                    gen.is_const(load(f"a_{k}"), True),
                    ast.UnaryOp(op=ast.Not(), operand=ast.Call(func=load(f"_PARAMS_OK{k}"), args=[load(f"ap_{k}")],
                                                               keywords=[]))]),
                body=[ast.Assign(targets=[ast.Name(id=f"a_{k}", ctx=ast.Store())], value=const(None))], orelse=[]))
            action_values.append(load(f"a_{k}"))
            param_values.append(load(f"ap_{k}"))
        restructuring_values.append(gen.expression(a.restructuring.expr) if a.restructuring else const(None))
    result = tup([
        tup([load(f"m_{i}") for i in range(len(parts["metrics"]))]),
        tup([load(f"fb_{i}") for i in range(len(parts["factors"]))]),
        tup([load(f"x_{i}") for i in range(len(parts["factors"]))]),
        load("b_score"), load("s_rank"),
        tup([load(f"r_{i}") for i in range(len(parts["floors"]))]),
        load("g_rank"),
        tup([load(f"w_{i}") for i in range(len(parts["warnings"]))]),
        tup(action_values), tup(param_values), tup(restructuring_values),
    ])
    body.append(ast.Return(value=result))
    body[:0] = [*gen.unpack("i", len(policy_inputs), "inp"), *gen.unpack("p", len(param_names), "prm")]
    arg_names = ("inp", "prm", "b_as_of", "sc") if layout is not None else ("inp", "prm", "b_as_of")
    args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in arg_names],
                         kwonlyargs=[], kw_defaults=[], defaults=[])
    extra: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
    fn = ast.FunctionDef(name="decide_row", args=args, body=body, decorator_list=[], returns=None, **extra)
    module = ast.Module(body=[fn], type_ignores=[])
    ex.locate(module)
    code = compile(module, "<policy>", "exec")
    namespace = ex.runtime_namespace(grades)
    namespace["_GRADES"] = grades
    namespace.update(consts)
    namespace.update(gen.table_globals())
    exec(code, namespace)  # the module holds one def built from checked nodes only
    return namespace["decide_row"], module


def _input_spec(name: str, v: Mapping[str, Any],
                value_labels: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None) -> InputSpec:
    src = v["from"]
    if "[*]" in src:
        root_text, _, item_text = src.partition("[*]")
        root = tuple(root_text.split("."))
        item = tuple(p for p in item_text.split(".") if p)
        series = True
    else:
        root, item, series = tuple(src.split(".")), (), False
    return InputSpec(name, src, root, item, series, v["type"], bool(v.get("required", False)),
                     v.get("min"), v.get("max"), tuple(v["enum"]) if v.get("enum") else None, v.get("unit"),
                     bool(v.get("ascending", False)), bool(v.get("not_after_as_of", False)), v.get("not_before"),
                     v.get("scope") if v.get("scope") != "debtor" else None, v.get("description"),
                     v.get("label"), (value_labels or {}).get("grade" if v["type"] == "grade" else name))


def _input_value_labels(d: Mapping[str, Any]) -> dict[str, Mapping[str, Mapping[str, str]]]:
    """The words of each input's values, by input name (``grade`` for every grade input)."""
    out: dict[str, Mapping[str, Mapping[str, str]]] = {
        "grade": {g["id"]: {"zh": g["zh"], "en": g["en"]} for g in d["classification"]["scale"]}}
    seg = d.get("segments") or {}
    if seg.get("value_labels") and seg.get("by"):
        out[seg["by"]] = dict(seg["value_labels"])
    return out


def _schema_stage(c: _Compiler, doc: Document, schema: str, data: Any) -> None:
    """Check ``doc`` against ``schema`` (policy, module) unless its text passed before (see :mod:`.cache`).

    Semantic checks assume the schema's shape: they skip what the errors touch (``c.valid``) and check
    every other entry of ``data``, so one typo does not hide the rest of the file's problems.
    """
    if known_schema_valid(doc.text, schema):
        return
    blamed = schema_errors(doc, schema, c.sink)
    if c.sink.ok:
        remember_schema_valid(doc.text, schema)
    else:
        c.valid = SchemaValidPart.of(data, blamed)


def check_document(doc: Document, modules: ModuleSource | None = None
                   ) -> tuple[list[Diagnostic], CompiledPolicy | None]:
    """Run the schema check and every pass; return all diagnostics and, when there is no error, the compiled policy.

    ``modules`` is where imports are found (default: the registry folder the file sits in, see
    :mod:`.modules`); a stored bundle passes the module texts it carries.
    """
    c = _Compiler(doc, modules)
    if not isinstance(doc.data, dict):
        c.err("wrong-type", "a policy is a mapping of keys (id, version, inputs, ...)", ())
        return sort_diagnostics(c.sink.items), None
    if doc.data.get("kind") == "module":
        c.err("module-not-policy", f"{doc.file} is a module: modules are imported by policies, never decided or "
              "compiled on their own", ("kind",), "import its names from a policy: imports: [{module: "
              f"{doc.data.get('id')}, version: {doc.data.get('version')}, names: [...]}}]")
        return sort_diagnostics(c.sink.items), None
    _schema_stage(c, doc, "policy", doc.data)
    for _, run_pass in PASSES:
        run_pass(c)
    parts = c.parts
    d = c.data  # with the imported definitions
    grades = c.grades
    if not c.sink.ok:
        return sort_diagnostics(c.sink.items), None
    words = _input_value_labels(d)
    inputs = tuple(_input_spec(k, v, words) for k, v in d["inputs"].items() if k not in c.owner)
    param_names, table, tuples = _parameter_table(c)
    card = d.get("scorecard") or {}
    score_bands = tuple(Band(b.get("min"), b.get("max"), b["grade"]) for b in card.get("grades", []))
    base = float(card.get("base", 0))
    scoped = _scoped_part(c, inputs, param_names) if c.scoped else None
    if scoped is None:
        fn, module = _generate_row_function(inputs, param_names, parts, base, score_bands, grades)
    else:
        finalize = _finalizer(scoped, grades, parts["floors"])
        fn, module = _generate_row_function(inputs, param_names, parts, base, score_bands, grades,
                                            layout=scoped.layout, finalize=finalize,
                                            every_floor=scoped.provisional_unknown)
    scale = tuple(Grade(g["id"], g["zh"], g["en"], bool(g.get("nonperforming", False)))
                  for g in d["classification"]["scale"])
    seg = d.get("segments") or {}
    policy = CompiledPolicy(
        id=d["id"], version=d["version"], title=d["title"], status=d["status"], owner=d["owner"],
        effective_from=d["effective_from"], effective_to=d.get("effective_to"),
        changelog=tuple(d["changelog"]),
        sha256=hashlib.sha256(bundle_text(doc.text, c.reached).encode("utf-8")).hexdigest(),
        file=doc.file, text=doc.text, segment_by=seg.get("by"), segments=tuple(seg.get("values", ())),
        inputs=inputs, parameters=table, param_names=param_names, param_tuples=tuples,
        metrics=tuple(parts["metrics"]), score_base=base, factors=tuple(parts["factors"]),
        score_bands=score_bands, scale=scale, floors=tuple(parts["floors"]),
        warnings=tuple(parts["warnings"]), actions=tuple(parts["actions"]), tests_path=d.get("tests"),
        row_function=fn, row_module=module, key_figures=tuple(d.get("key_figures") or ()),
        action_types=c.action_types, warning_categories=c.warning_categories, modules=tuple(c.reached), scoped=scoped,
        imported={name: d.origin for (_, name), d in c.origins.items() if d.section != "scopes"}, tables=c.tables,
        element_metrics=tuple(c.element_specs),
        parameter_notes={n: {k: p[k] for k in ("unit", "description") if isinstance(p.get(k), str)}
                         for n, p in (d.get("parameters") or {}).items() if isinstance(p, dict)},
        segment_label=seg.get("label"), segment_value_labels=dict(seg.get("value_labels") or {}),
    )
    return sort_diagnostics(c.sink.items), policy


def _scoped_part(c: _Compiler, inputs: tuple[InputSpec, ...], param_names: tuple[str, ...]) -> sc.ScopedPart:
    """The graded scope's metrics and floors move out of ``c.parts`` (which keeps the debtor level)."""
    graded = c.graded
    metrics = [m for m in c.parts["metrics"] if c.owner.get(m.name) == graded]
    floors = [r for r in c.parts["floors"] if r.scope != sc.DEBTOR]
    c.parts["metrics"] = [m for m in c.parts["metrics"] if c.owner.get(m.name) != graded]
    c.parts["floors"] = [r for r in c.parts["floors"] if r.scope == sc.DEBTOR]
    words = _input_value_labels(c.data)
    scope_inputs = {s.name: tuple(_input_spec(k, v, words) for k, v in c.data["inputs"].items()
                                  if c.owner.get(k) == s.name)
                    for s in c.scope_specs}
    layout = ex.ScopeLayout(owner=dict(c.owner), parent=dict(c.scope_parents))
    # Whether each exposure is one a warning or an action concerns: computed with the metrics after classification.
    selectors = tuple(MetricSpec(a.selector, a.for_exposures, None, None, "classification")
                      for a in (*c.parts["warnings"], *c.parts["actions"]) if a.for_exposures is not None)
    # The exposures a debtor floor applies to: read with their own metrics, before the debtor floors grade them.
    selectors = (*(MetricSpec(f.selector, f.for_exposures, None, None, None)
                   for f in c.parts["floors"] if f.for_exposures is not None), *selectors)
    tie = (c.data.get("classification") or {}).get("decided_by_tie") == "exposure"
    bounds = frozenset(spec.not_before for specs in scope_inputs.values() for spec in specs if spec.not_before)
    part = sc.ScopedPart(tuple(c.scope_specs), graded, scope_inputs, tuple(metrics), tuple(floors), layout,
                         selectors=selectors, tie_to_exposure=tie, date_bounds=bounds,
                         provisional_unknown=c.provisional_unknown)
    if graded is None:
        return part
    names = sc.local_names([s.name for s in inputs], param_names)
    own, after, _ = sc.generate_graded(part, names, len(inputs), len(param_names), c.grades)
    return sc.ScopedPart(part.scopes, part.graded, part.inputs, part.metrics, part.floors, layout, own, after,
                         selectors=selectors, tie_to_exposure=tie, date_bounds=bounds,
                         provisional_unknown=c.provisional_unknown)


def _finalize_call(named: ast.Tuple, floors: int | None) -> ast.Call:
    """``_FINALIZE(inp, prm, b_as_of, sc, g_rank, named)``; with ``floors``, every debtor floor's result too (the
    undetermined ones may yet apply: provisional_grades: unknown)."""
    load = ex.RowCodegen.load
    args = [*(load(a) for a in ("inp", "prm", "b_as_of", "sc", "g_rank")), named]
    if floors is not None:
        args.append(ast.Tuple(elts=[load(f"r_{i}") for i in range(floors)], ctx=ast.Load()))
    return ast.Call(func=load("_FINALIZE"), args=args, keywords=[])


def _floor_statements(gen: ex.RowCodegen, floors: Sequence[FloorSpec], body: list[ast.stmt]) -> ast.Tuple:
    """Each debtor floor's result (``r_i``), raising ``g_rank`` when it fires; the results of the floors that name
    their exposures (``for_exposures``), which raise those exposures only (``finalize``), the debtor through them."""
    load, const = ex.RowCodegen.load, ex.RowCodegen.const
    named: list[ast.expr] = []
    for i, r in enumerate(floors):
        body.append(ast.Assign(targets=[ast.Name(id=f"r_{i}", ctx=ast.Store())], value=gen.expression(r.expr)))
        if r.for_exposures is not None:
            named.append(load(f"r_{i}"))
            continue
        # if r_i is True and rank > g_rank: g_rank = rank
        body.append(ast.If(
            test=ast.BoolOp(op=ast.And(), values=[
                gen.is_const(load(f"r_{i}"), True),
                ast.Compare(left=load("g_rank"), ops=[ast.Lt()], comparators=[const(r.rank)])]),
            body=[ast.Assign(targets=[ast.Name(id="g_rank", ctx=ast.Store())], value=const(r.rank))], orelse=[]))
    return ast.Tuple(elts=named, ctx=ast.Load())


def _for_floor_hint(d: Diagnostic) -> Diagnostic:
    """A debtor floor's for_exposures reading a name it cannot: the hint fits the place (the generic one says to
    make the rule the debtor's, which it is)."""
    hint = ("for_exposures is read with each exposure's own facts and metrics, before the debtor's metrics and any "
            "grade: test the debtor's figure in the rule's when, and name the exposures by their own facts here")
    return Diagnostic(code=d.code, message=d.message, file=d.file, line=d.line, column=d.column, path=d.path,
                      rule=d.rule, hint=hint, severity=d.severity)


def _finalizer(part: sc.ScopedPart, grades: tuple[str, ...], floors: Sequence[FloorSpec]) -> Callable[..., int]:
    """Debtor floors apply to every element of the graded scope, a floor with ``for_exposures`` to the elements it
    names (``named``: their results, in order); then the elements' metrics after classification."""
    graded, after = part.graded, part.after
    naming = tuple((f.rank, f.selector) for f in floors if f.for_exposures is not None)
    every = tuple((f.rank, f.selector if f.for_exposures is not None else None) for f in floors)

    def finalize(inp: tuple[Any, ...], prm: tuple[Any, ...], day: Any, elements: dict[str, Any],
                 floor_rank: int, named: tuple[Any, ...] = (), results: tuple[Any, ...] | None = None) -> int:
        elements["@floor_rank"] = floor_rank
        worst = floor_rank
        fired = [(r, key) for (r, key), hit in zip(naming, named, strict=True) if hit is True] if True in named else ()
        # provisional_grades: unknown: the debtor floors that may yet apply to an element (undetermined, or fired
        # naming it undetermined) raise the worst rank it could have
        pending = () if results is None else [(r, key) for (r, key), hit in zip(every, results, strict=True)
                                              if hit is None or (hit is True and key is not None)]
        for e in elements.get(graded, ()) if graded else ():
            rank = max(e["@own_rank"], floor_rank)
            for r, key in fired:
                if r > rank and e[key] is True:
                    rank = r
            e["@rank"], e["@grade"] = rank, grades[rank]
            if results is not None:
                e["@rank_max"] = max(rank, e["@own_rank_max"], *(r for r, key in pending
                                                                   if key is None or e[key] is not False))
            worst = max(worst, rank)
            if after is not None:
                after(inp, prm, day, elements, e)
        return worst

    return finalize


# A module defines scopes, inputs, parameters and metrics: the passes that read those sections, in the same order.
MODULE_PASSES = tuple((n, p) for n, p in PASSES if n in ("imports", "scopes", "inputs", "parameters", "metrics"))


def check_module_document(doc: Document, modules: ModuleSource | None = None,
                          stack: tuple[tuple[str, str], ...] = (),
                          memo: dict[tuple[str, str], ModuleResult] | None = None,
                          expect: tuple[str, str] | None = None
                          ) -> tuple[list[Diagnostic], dict[str, Definition], tuple[ModuleText, ...]]:
    """Check a module on its own: schema, its imports, then its definitions as a policy's would be.

    Returns the diagnostics, the names it offers (imported ones first) and the modules it reaches.
    ``expect`` is the id and version its importer asked for, which the file must declare.
    """
    data = doc.data
    module = ModuleText(str(data.get("id")), str(data.get("version")), doc.file, doc.text)
    stack = stack or ((module.id, module.version),)
    c = _Compiler(doc, modules, stack, memo)
    c.data = {**data, "inputs": data.get("inputs") or {}}  # a module may define no inputs; a policy must
    _schema_stage(c, doc, "module", c.data)
    wrong = {d.path for d in c.sink.items if d.severity == "error"}  # an id not of the form: that is the error
    for key, wanted in zip(("id", "version"), expect or (), strict=False):
        if isinstance(data.get(key), str) and data[key] != wanted and key not in wrong:
            c.err("module-mismatch", f"the module file declares {key} {data[key]}, but it was found as {wanted}",
                  (key,), f"a module lives at <registry>/{data['id']}/module-{data['version']}.yaml")
    for _, run_pass in MODULE_PASSES:
        run_pass(c)
    imported = {name: d for (_, name), d in c.origins.items() if d.section != "scopes"}
    scopes = module_scopes(doc, module, c.entries("scopes"),
                           {name: d for (section, name), d in c.origins.items() if section == "scopes"})
    return sort_diagnostics(c.sink.items), local_definitions(doc, module, imported, scopes), tuple(c.reached)


def compile_document(doc: Document, modules: ModuleSource | None = None) -> CompiledPolicy:
    """Compile or raise :class:`PolicyError` carrying every diagnostic of the file."""
    diags, policy = check_document(doc, modules)
    if policy is None:
        raise PolicyError(diags)
    return policy
