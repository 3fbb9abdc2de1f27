"""Scopes: the collections a policy reads (a debtor's exposures, an exposure's payments, events).

A policy that declares ``scopes:`` decides a debtor with several exposures. Each scope is a list
in the client record with a parent (the debtor, or another scope); inputs, metrics and
classification rules name their scope. This module holds the compiled form of the scopes, the
view of names an expression of one scope may read (its own, its ancestors', children only
through an aggregation) and the generated code of the graded scope (the exposures): their
metrics and floors, then the metrics declared ``after: classification``.

Evaluation order (docs/design.md section 10), fixed by structure, never by rule order:
exposure inputs and metrics -> exposure floors (each exposure's own grade) -> debtor metrics
(which may aggregate exposure grades) -> debtor floors, applied to every exposure -> final
exposure grades -> metrics ``after: classification`` (exposures, then the debtor) -> warnings
and actions (debtor scope). There is no iteration: a debtor floor never feeds an exposure metric.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..frozen import Frozen, field
from ..language import expressions as ex

DEBTOR = "debtor"
DEFAULT_MAX = 100  # elements of one scope under one parent, unless the scope declares its max
SCOPE_FUNCTIONS = ", ".join(ex.AGGREGATIONS)


class ScopeSpec(Frozen):
    name: str
    source: str  # the 'from' path as written: exposures[*], exposures[*].schedule[*]
    parent: str | None  # None: the debtor
    list_field: str  # the list's key in each parent element (in the record, for a child of the debtor)
    key: str | None
    order_by: str | None
    max: int
    unique: tuple[str, ...] = ()  # fields no two elements under one parent share all of (a duplicate row)
    min: int = 0  # the fewest elements under one parent (min: 1 - a debtor without exposures is refused)


class ScopedPart(Frozen, eq=False):
    """What a policy with scopes adds to its compiled form; the debtor level is the policy itself."""

    scopes: tuple[ScopeSpec, ...]
    graded: str | None  # the scope classification rules grade (the exposures), if any
    inputs: Mapping[str, tuple[Any, ...]]  # scope -> its InputSpecs (paths inside each element)
    metrics: tuple[Any, ...]  # MetricSpecs of the graded scope, in dependency order (after: last)
    floors: tuple[Any, ...]  # FloorSpecs of the graded scope
    layout: ex.ScopeLayout
    own: Callable[..., tuple[Any, ...]] | None = field(default=None, repr=False, compare=False)
    after: Callable[..., None] | None = field(default=None, repr=False, compare=False)
    # Per warning or action with ``for_exposures``: a boolean of the graded scope, computed after classification
    # under a key no policy name can take (``@for:<action id>``, ``@for-warning:<warning id>``); not a metric.
    # Per debtor floor with ``for_exposures`` (``@for-floor:<floor id>``): computed with the own metrics (after None).
    selectors: tuple[Any, ...] = ()
    # classification.decided_by_tie: an exposure's own floor reaching the debtor's grade names it even when a
    # debtor floor reaches it too (False: the debtor floor is named, as policies before the option decided).
    tie_to_exposure: bool = False
    # classification.provisional_grades: unknown: each graded element keeps ``@rank_max``, the worst grade its
    # undetermined floors could give, and grade_at_least of it is null between the two (see Scope.provisional_unknown).
    provisional_unknown: bool = False
    # the date inputs a ``not_before`` of some scope's input names (read from the elements above it)
    date_bounds: frozenset[str] = frozenset()

    def scope(self, name: str) -> ScopeSpec:
        return next(s for s in self.scopes if s.name == name)

    def children(self, parent: str | None) -> tuple[ScopeSpec, ...]:
        return tuple(s for s in self.scopes if s.parent == parent)

    def ancestors(self, name: str) -> list[str]:
        """The scopes above ``name`` (the debtor aside), outermost first: the order of its long table's keys."""
        return [x for x in reversed(chain(self.layout.parent, name)[1:]) if x != DEBTOR]

    def reader(self, scope: str, field: str) -> Any:
        """The (first) input of ``scope`` that reads ``field`` of each element: a ``unique`` field's, an order's."""
        return next(spec for spec in self.inputs[scope] if spec.source == field)

    def input_named(self, name: str) -> tuple[str, Any]:
        """The scope of the element input ``name`` and its spec (the date a ``not_before`` names)."""
        return next((scope, spec) for scope, specs in self.inputs.items() for spec in specs if spec.name == name)


def chain(parents: Mapping[str, str | None], scope: str) -> list[str]:
    """``scope`` and its ancestors, innermost first (the debtor last)."""
    out = [scope]
    seen = {scope}
    cur: str | None = scope
    while cur is not None and cur != DEBTOR:
        cur = parents.get(cur) or DEBTOR
        if cur in seen:  # a cycle, reported by the scopes pass
            break
        seen.add(cur)
        out.append(cur)
    return out


def view(symbols: Mapping[str, ex.Symbol], owner: Mapping[str, str], parents: Mapping[str, str | None],
         graded: str | None, scope: str, stage: str, grades: tuple[str, ...], warnings: Mapping[str, bool],
         from_debtor: bool | None = None, grade_known: bool = False, open_names: bool = False,
         rules: Mapping[str, tuple[str, str]] | None = None, unimported: Mapping[str, str] | None = None,
         element_metrics: Mapping[str, tuple[str, ast.expr]] | None = None,
         least: Mapping[str, int] | None = None, provisional_unknown: bool = False) -> ex.Scope:
    """The names an expression of ``scope`` reads, and the child scopes it may aggregate.

    Built for every expression a policy checks and used at once (the compiler's names do not change while
    one expression is checked): which names it may read is decided at each look-up, the views of the child
    scopes are built when an aggregation first reads one, and why a name of another scope cannot be read is
    worded when an expression reads it. Built eagerly, over every name of the policy, they were a third of
    loading a policy with four scopes; an expression reads a handful of names.
    """
    if from_debtor is None:
        from_debtor = scope == DEBTOR
    names = _Readable(symbols, owner, frozenset(chain(parents, scope)), from_debtor)

    def child(s: str) -> ex.Scope:
        return view(symbols, owner, parents, graded, s, stage, grades, warnings, from_debtor,
                    grade_known=from_debtor and s == graded, open_names=open_names, rules=rules,
                    unimported=unimported, element_metrics=element_metrics, least=least,
                    provisional_unknown=provisional_unknown)

    children = _Lazy(tuple(s for s, p in parents.items() if (p or DEBTOR) == scope and s != scope), child)
    return ex.Scope(symbols=names, stage=stage, grades=grades, warnings=warnings, rules=rules or {}, name=scope,
                    children=children,
                    all_scopes=dict(parents), elsewhere=_Unreadable(names, scope, parents, graded),
                    grade_known=grade_known, graded=scope == graded, open_names=open_names,
                    unimported=unimported or {}, element_metrics=element_metrics or {}, least=least or {},
                    provisional_unknown=provisional_unknown)


class _Readable(Mapping[str, ex.Symbol]):
    """The compiler's names an expression of one scope may read: its own scope's and its ancestors'."""

    def __init__(self, symbols: Mapping[str, ex.Symbol], owner: Mapping[str, str], readable: frozenset[str],
                 from_debtor: bool):
        self.symbols, self.owner, self.readable, self.from_debtor = symbols, owner, readable, from_debtor

    def barrier(self, name: str) -> str | bool | None:
        """False when ``name`` is readable here; else the scope it belongs to (None: a debtor metric, computed
        after the floors of the scope asking). ``KeyError`` for a name the policy does not have."""
        sym = self.symbols[name]
        where = self.owner.get(name, DEBTOR)
        if where not in self.readable:
            return where
        # A stand-in for a name that failed (typed unknown) is readable anywhere: its failure was reported.
        if where == DEBTOR and sym.kind == "metric" and not self.from_debtor and sym.type != ex.UNKNOWN:
            return None
        return False

    def __getitem__(self, name: str) -> ex.Symbol:
        if self.barrier(name) is not False:
            raise KeyError(name)
        return self.symbols[name]

    def __iter__(self) -> Iterator[str]:
        return (n for n in self.symbols if self.barrier(n) is False)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Unreadable(Mapping[str, tuple[str, str, str | None]]):
    """The policy's names an expression of one scope may not read, each with why (code, message, hint)."""

    def __init__(self, names: _Readable, scope: str, parents: Mapping[str, str | None], graded: str | None):
        self.names, self.scope, self.parents, self.graded = names, scope, parents, graded

    def __contains__(self, name: object) -> bool:
        try:
            return isinstance(name, str) and self.names.barrier(name) is not False
        except KeyError:
            return False

    def __getitem__(self, name: str) -> tuple[str, str, str | None]:
        where = self.names.barrier(name)
        if where is False:
            raise KeyError(name)
        return _why_not(name, where, self.scope, self.parents, self.graded)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[str]:
        return (n for n in self.names.symbols if self.names.barrier(n) is not False)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Lazy(Mapping[str, Any]):
    """A mapping of known keys whose values are made on first use (and kept)."""

    def __init__(self, keys: tuple[str, ...], make: Callable[[str], Any]):
        self._keys, self._make = frozenset(keys), make
        self._order = keys
        self._made: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        got = self._made.get(key)
        if got is None:
            got = self._made[key] = self._make(key)
        return got

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._order)


def _why_not(name: str, where: str | None, scope: str, parents: Mapping[str, str | None], graded: str | None
             ) -> tuple[str, str, str | None]:
    if where is None:
        # the rule's own scope, the debtor's child that `scope` is in (an aggregation inside it may reach deeper)
        top = next((s for s in chain(parents, scope) if (parents.get(s) or DEBTOR) == DEBTOR), scope)
        return ("name-not-available", f"debtor metric '{name}' is computed after the graded elements' own metrics "
                f"and floors, which an expression of scope {scope} is part of: it cannot read it",
                f"compute what it needs in a metric of scope {top} (scope: {top}), or make the rule the "
                f"debtor's (no scope:), where it reads the metric; a debtor floor applies to every {top}")
    return _elsewhere(name, where, scope, parents, graded)


def debtor_reads(name: str, owner: Mapping[str, str], parents: Mapping[str, str | None]
                 ) -> tuple[str, str, str | None] | None:
    """Why a message or an evidence list of the debtor (a warning's, an action's) cannot name ``name``, or None
    when it can: a name of an element's scope has a value per element, none for the debtor."""
    where = owner.get(name)
    if where is None or where == DEBTOR:
        return None
    # the debtor's child scope on the way to it (a scope in a cycle was given no parent by the scopes pass)
    via = next((s for s in chain(parents, where) if (parents.get(s) or DEBTOR) == DEBTOR), where)
    # a message or a list of evidence holds no expression: the aggregation goes in a metric
    inner = "" if via == where else f", reading its {where} elements inside it: any_of({via}, any_of({where}, ...))"
    return ("scope-name", f"'{name}' is a name of scope '{where}', with a value for each {where} element: the "
            "debtor's messages and evidence show one value",
            f"show a debtor metric that aggregates it instead: add one with expr: count_where({via}, ...), "
            f"max_of({via}, ...) or any_of({via}, ...){inner}")


def _elsewhere(name: str, where: str, scope: str, parents: Mapping[str, str | None], graded: str | None
               ) -> tuple[str, str, str | None]:
    """Why an expression of ``scope`` cannot read ``name`` of scope ``where``, and what to write instead."""
    path = chain(parents, where)
    via = next((s for s in path if (parents.get(s) or DEBTOR) == scope), None)
    if via is None:  # not below this scope: a sibling's or a cousin's name
        return ("scope-name", f"'{name}' is a name of scope '{where}', which is not below scope '{scope}': an "
                f"expression of scope {scope} cannot read it",
                f"read it where {where} is below: aggregate over it at its parent ({parents.get(where) or DEBTOR})")
    # A rule meant for each element most often lacks its 'scope:' (a floor on an exposure's days past due):
    # aggregating it instead would make it a rule of the whole debtor.
    # Only the graded scope may be a floor's: another (events) is tested inside an aggregation, so 'scope: event'
    # is never offered to a floor (it is refused, bad-scope).
    each = f"to test each {where}, give the floor or metric 'scope: {where}'; " if via == where == graded else ""
    return ("scope-name", f"'{name}' is a name of scope '{where}': an expression of scope {scope} reads it only "
            "through an aggregation",
            f"{each}to test the {scope}, aggregate over {via}: count_where({via}, ...), sum_of({via}, ...), "
            f"any_of({via}, ...) (aggregations: {SCOPE_FUNCTIONS})")


def generate_graded(part: ScopedPart, names: Mapping[str, str], input_count: int, param_count: int,
                    grades: Sequence[str]
                    ) -> tuple[Callable[..., tuple[Any, ...]], Callable[..., None], list[ast.Module]]:
    """Two functions over one element of the graded scope (a dict): its metrics and floors, then
    its metrics ``after: classification``. Both read the debtor's inputs and parameters; the
    metrics are written into the element, so aggregations and the record read them there."""
    assert part.graded is not None
    modules = []

    def build(fname: str, metrics: list[Any], floors: list[Any], local_names: Mapping[str, str]) -> Callable[..., Any]:
        gen = ex.RowCodegen(local_names, "g_rank", {}, grades, layout=part.layout, stack=[(part.graded, "e")])
        body: list[ast.stmt] = []
        gen.sink = body  # aggregations are loops written ahead of the metric or floor that reads them
        for k, m in enumerate(metrics):
            value = gen.expression(m.expr)
            if m.expr.type == ex.NUMBER and not ex.proven_finite(m.expr.tree):
                value = gen.call("_fin", [value])
            # A metric is a local from here on (the later metrics and the floors read it many times,
            # inside the loops over payments too); the element gets them all at the end.
            body.append(ast.Assign(targets=[ast.Name(id=f"em_{k}", ctx=ast.Store())], value=value))
            gen.element_locals[("e", m.name)] = f"em_{k}"
        result = ast.Tuple(elts=[gen.expression(r.expr) for r in floors], ctx=ast.Load())
        # One store per metric: e.update() of a dict display builds a second dict first (2.3 times the
        # cost with the 27 metrics of an exposure under policy 2.0.0).
        body += [ast.Assign(targets=[ast.Subscript(value=gen.load("e"), slice=gen.const(m.name), ctx=ast.Store())],
                            value=gen.load(f"em_{k}")) for k, m in enumerate(metrics)]
        body.append(ast.Return(value=result))
        # The debtor's inputs and parameters the code reads (an exposure's metrics read few of them).
        body[:0] = [*gen.unpack("i", input_count, "inp"), *gen.unpack("p", param_count, "prm")]
        args = ast.arguments(posonlyargs=[], args=[ast.arg(arg=a) for a in ("inp", "prm", "b_as_of", "sc", "e")],
                             kwonlyargs=[], kw_defaults=[], defaults=[])
        extra: dict[str, Any] = {"type_params": []} if sys.version_info >= (3, 12) else {}
        fn = ast.FunctionDef(name=fname, args=args, body=body, decorator_list=[], returns=None, **extra)
        module = ast.Module(body=[fn], type_ignores=[])
        ex.locate(module)
        namespace = ex.runtime_namespace(grades)
        namespace.update(gen.table_globals())  # the table parameters its lookups read
        exec(compile(module, "<policy scopes>", "exec"), namespace)  # built from checked nodes only
        modules.append(module)
        return namespace[fname]  # type: ignore[no-any-return]

    return (build("graded_own", [*(m for m in (*part.metrics, *part.selectors) if m.after is None)],
                  list(part.floors), names),
            build("graded_after", [*(m for m in (*part.metrics, *part.selectors) if m.after is not None)], [], names),
            modules)


def local_names(input_names: Sequence[str], param_names: Sequence[str]) -> dict[str, str]:
    """The locals generated code reads the debtor's inputs and the parameters from."""
    names = {"as_of": "b_as_of", "score": "b_score", "grade": "b_grade"}
    names.update({n: f"i_{k}" for k, n in enumerate(input_names)})
    names.update({n: f"p_{k}" for k, n in enumerate(param_names)})
    return names
