"""Reading a debtor with several exposures for a policy that declares scopes (the row path).

The record's lists (exposures, their payments, the debtor's events) are read into one dict per
element, checked like any input (type, range, required), bounded by each scope's declared
``max``, ordered by its ``order_by`` and, for a keyed scope, with unique keys: a bad element is
refused with its place named (exit 3), never decided. :class:`~.evaluate.ScopedDecider` then
grades each exposure by its own floors, runs the debtor's code (its metrics may aggregate those
grades; its floors apply back to every exposure; see :mod:`policy_engine.policy.scopes` for the
order) and gives the record one entry per exposure. The debtor's grade is the worst of its
exposures' final grades (and of the debtor floors, when it has no exposure).
"""

from __future__ import annotations

import datetime as _dt
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..diagnostics import Diagnostic
from ..policy.compiler import CompiledPolicy, InputSpec
from ..policy.scopes import ScopedPart, ScopeSpec
from ..safetext import has_forbidden, has_id_problem, id_key, id_problem, spaced_apart
from .inputs import (
    AS_OF_HINT,
    MAX_STRING,
    _bounds,
    _check_value,
    _dig,
    absent,
    after_as_of,
    describe,
    known_date,
    new_date,
)

MAX_KEY = 64  # characters of an element key (an exposure id)
GRADE_RULE = "worst of the exposures' final grades (each at least the debtor's floors)"


def read_scopes(policy: CompiledPolicy, record: Any, file: str | None = None, day: _dt.date | None = None
                ) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Every element of every scope under the debtor (children inside their parent element).

    With the decision's ``day``, an element's date declared ``not_after_as_of`` (a payment made, an
    event dated, after the decision day) is refused, as the debtor's own dates are: a decision as of a
    day can only use what was known then. A date declared ``not_before`` another (a payment's and its
    exposure's origination) is refused when it precedes it.
    """
    part = policy.scoped
    assert part is not None
    problems: list[Diagnostic] = []
    elements: dict[str, Any] = {}
    if isinstance(record, dict):
        for s in part.children(None):
            elements[s.name] = _read_list(part, s, record, s.list_field, policy.grade_ids, problems, day, {})
    return elements, [Diagnostic(p.code, p.message, file=file, path=p.path, hint=p.hint) for p in problems]


def too_small_message(s: ScopeSpec, n: int) -> str:
    """The words of a list shorter than its scope's ``min`` (one text for a record and for long tables)."""
    return f"{n} elements in scope {s.name}; the policy needs at least {s.min}"


def _too_small(s: ScopeSpec, n: int, where: str) -> Diagnostic:
    return Diagnostic("too-small", too_small_message(s, n), path=where,
                      hint=f"scopes.{s.name}.min of the policy" + (f": is the list misspelt, or left out? ('{where}')"
                                                                   if n == 0 else ""))


def _read_list(part: ScopedPart, s: ScopeSpec, container: Mapping[str, Any], where: str, grades: tuple[str, ...],
               problems: list[Diagnostic], day: _dt.date | None, up: Mapping[str, tuple[Any, str]]
               ) -> list[dict[str, Any]]:
    """``up``: the dates of the ancestor elements a ``not_before`` names, by input, with their places."""
    raw = container.get(s.list_field)
    if raw is None:
        if s.min:
            problems.append(_too_small(s, 0, where))
        return []
    if not isinstance(raw, list):
        problems.append(Diagnostic("wrong-type", f"expected a list of {s.name} elements, found {describe(raw)}",
                                   path=where))
        return []
    if len(raw) < s.min:
        problems.append(_too_small(s, len(raw), where))
        return []
    if len(raw) > s.max:
        problems.append(Diagnostic("too-large", f"{len(raw)} elements in scope {s.name}; the policy allows at most "
                                   f"{s.max}", path=where,
                                   hint=f"scopes.{s.name}.max of the policy; the elements were not read one by one "
                                        "(a list this long is refused whole), so their own problems, if any, show "
                                        "once it fits"))
        return []
    out: list[dict[str, Any]] = []
    keys: dict[str, tuple[int, str]] = {}  # a key as compared -> the element that has it, and its key as written
    bounds = [spec for spec in part.inputs[s.name] if spec.name in part.date_bounds]  # dates another one reads
    bounded = any(spec.not_before for spec in part.inputs[s.name])
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(Diagnostic("wrong-type", f"expected an object, found {describe(item)}", path=at))
            continue
        before = len(problems)
        e = _read_element(part, s, item, at, grades, problems, day)
        e["@at"] = at  # its place in the record, to name a value it lacks
        if s.key is not None:
            _check_key(s, item, at, keys, i, problems, e, problems[before:])
        mine = {spec.name: (e[spec.name], f"{at}.{spec.source}") for spec in bounds}
        if bounded:
            _check_date_orders(part, s, e, {**up, **mine}, problems)
        below = {**up, **mine} if mine else up
        for child in part.children(s.name):
            e["@" + child.name] = _read_list(part, child, item, f"{at}.{child.list_field}", grades, problems, day,
                                             below)
        out.append(e)
    if s.unique:
        _check_unique(part, s, out, problems)
    if s.order_by is not None:
        order = next((spec.name for spec in part.inputs[s.name] if spec.source == s.order_by), None)
        if order is not None and all(e.get(order) is not None for e in out):
            out.sort(key=lambda e: e[order])
    return out


def _missing_hint(part: ScopedPart, s: ScopeSpec, spec: Any, item: Mapping[str, Any]) -> str:
    """Who reads a missing field, and the element's fields no input reads, most like it first: an abbreviation
    ('amt' for an amount field) is too far from its name for a did-you-mean, and this is where it shows."""
    import difflib

    read = {x.source.split(".")[0] for x in part.inputs[s.name]} | {c.list_field for c in part.children(s.name)} \
        | ({s.key} if isinstance(s.key, str) else set())
    unread = sorted((k for k in item if isinstance(k, str) and k not in read),
                    key=lambda k: -difflib.SequenceMatcher(None, k, spec.source).ratio())
    hint = f"input '{spec.name}' of scope {s.name} reads it"
    if unread:
        hint += f"; this {s.name} has fields no input reads: {', '.join(repr(k) for k in unread[:3])}" + (
            f" and {len(unread) - 3} more" if len(unread) > 3 else "")
    return hint


def _read_element(part: ScopedPart, s: ScopeSpec, item: Mapping[str, Any], at: str, grades: tuple[str, ...],
                  problems: list[Diagnostic], day: _dt.date | None) -> dict[str, Any]:
    e: dict[str, Any] = {}
    for spec in part.inputs[s.name]:
        before = len(problems)
        found, v = _dig(item, spec.root, at, problems)
        field = f"{at}.{spec.source}"
        if len(problems) > before or not found or v is None:
            if spec.required and len(problems) == before:
                problems.append(Diagnostic("missing-field", f"required field '{field}' is {absent(found)}",
                                           path=field, hint=_missing_hint(part, s, spec, item)))
            e[spec.name] = None
            continue
        value, problem, hint = _check_value(spec, v, grades)
        if problem:
            problems.append(Diagnostic("bad-field", problem, path=field, hint=hint))
        elif spec.not_after_as_of and day is not None and (late := after_as_of(spec, value, day)):
            problems.append(Diagnostic("bad-field", late[1], path=field, hint=AS_OF_HINT))
        e[spec.name] = value
    return e


def _check_date_orders(part: ScopedPart, s: ScopeSpec, e: Mapping[str, Any], dates: Mapping[str, tuple[Any, str]],
                       problems: list[Diagnostic]) -> None:
    """An element's date declared ``not_before`` another of it or of an ancestor element does not precede it."""
    for spec in part.inputs[s.name]:
        if spec.not_before is None or (v := e[spec.name]) is None:
            continue
        bound, place = dates[spec.not_before]
        if bound is not None and v < bound:
            message, hint = date_before(spec, v, place, bound)
            problems.append(Diagnostic("bad-field", message, path=f"{e['@at']}.{spec.source}", hint=hint))


def date_before(spec: InputSpec, value: _dt.date, place: str, bound: _dt.date) -> tuple[str, str]:
    """The words for a date before the date it may not precede (``place`` names that one), and the hint."""
    return (f"{spec.source} {value.isoformat()} is before {bound.isoformat()} ({place})",
            f"{spec.name} may not precede {spec.not_before} (inputs.{spec.name}.not_before of the policy); a core "
            "system's stand-in for none (0001-01-01, 1900-01-01) is written as null")


def _check_unique(part: ScopedPart, s: ScopeSpec, elements: Sequence[dict[str, Any]],
                  problems: list[Diagnostic]) -> None:
    """No two elements under one parent share all of the scope's ``unique`` fields: a payment listed twice
    would be counted twice by every aggregation over the schedule. An element lacking one (already reported
    as missing or wrong) is not compared."""
    names = [part.reader(s.name, f).name for f in s.unique]
    seen: dict[tuple[Any, ...], str] = {}
    for e in elements:
        values = tuple(e[n] for n in names)
        if any(v is None for v in values):
            continue
        if values not in seen:
            seen[values] = e["@at"]
            continue
        message, hint = repeated_element(s, e["@at"], seen[values], values)
        problems.append(Diagnostic("duplicate-key", message, path=f"{e['@at']}.{s.unique[0]}", hint=hint))


def repeated_element(s: ScopeSpec, here: str, first: str, values: Sequence[Any]) -> tuple[str, str]:
    """The words for an element repeating another's ``unique`` fields (``here`` and ``first`` name both places),
    and the hint; the long tables say it in their rows."""
    shown = ", ".join(f"{f} {_shown(v)}" for f, v in zip(s.unique, values, strict=True))
    under = "the debtor" if s.parent is None else f"one {s.parent}"
    return (f"{s.name} {here} repeats {first} ({shown}): it would be counted twice",
            f"each {s.name} under {under} has its own {' and '.join(s.unique)} (scopes.{s.name}.unique of the "
            "policy); remove the repeated one")


def _shown(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v.isoformat() if isinstance(v, _dt.date) else str(v)


def _check_key(s: ScopeSpec, item: Mapping[str, Any], at: str, keys: dict[str, tuple[int, str]], i: int,
               problems: list[Diagnostic], e: dict[str, Any], of_element: Sequence[Diagnostic] = ()) -> None:
    """A keyed element names itself: a short text, unique under its parent. A key the element's inputs
    read too (an input of type string) and found wrong or missing is not reported a second time."""
    assert s.key is not None
    key = item.get(s.key)
    path = f"{at}.{s.key}"
    e["@key"] = key if type(key) is str else None
    if any(p.path == path for p in of_element):
        return
    if key is None:
        problems.append(Diagnostic("missing-field", f"required key '{path}' is missing", path=path,
                                   hint=f"every {s.name} names itself with a unique {s.key}"))
    elif type(key) is not str or not key or len(key) > MAX_KEY:
        problems.append(Diagnostic("bad-field", f"{s.key} must be a non-empty string of at most {MAX_KEY} "
                                   f"characters, found {describe(key)}", path=path))
    elif has_id_problem(key):
        problems.append(Diagnostic("bad-field", str(id_problem(key)), path=path))
    elif (same := id_key(key)) in keys:
        first, written = keys[same]
        problems.append(Diagnostic("duplicate-key", f"{s.key} '{key}' is also {s.name} {first}"
                                   f"{spaced_apart(key, written)}", path=path,
                                   hint=f"each {s.name} of a record has its own {s.key}"))
    else:
        keys[same] = (i, key)


# ----------------------------------------------------------- generated fast path

ElementReader = Callable[[Any, "_dt.date | None"], "dict[str, Any] | None"]


class _Refused(Exception):
    """Raised by the generated reader at the first surprise: the checked path then names every problem."""


def build_fast_reader(policy: CompiledPolicy) -> ElementReader:
    """Generate ``read(record, day)``: the elements :func:`read_scopes` returns for a record it
    accepts, or None when anything is off (then :func:`read_scopes` words every problem).

    One function per scope, written as Python source from the compiled scopes (only ``repr()`` of
    field names, numbers and paths goes into the text), like the debtor's fast input path. The
    element dicts are the checked path's, key for key and in the same order (a property test holds
    the two to that), since the generated rule code, the record and the evidence read them.
    """
    part = policy.scoped
    assert part is not None
    consts: dict[str, Any] = {}
    lines: list[str] = []
    for s in part.scopes:
        lines += _scope_reader(part, s, policy.grade_ids, consts)
    roots = ", ".join(f"{s.name!r}: read_{s.name}(record.get({s.list_field!r}), {s.list_field!r}, day, _NONE_ABOVE)"
                      for s in part.children(None))
    lines += ["def read(record, day):",
              "    if type(record) is not dict:",
              "        return None",
              "    if day is None:  # no decision day: no date is after it",
              "        day = _NO_DAY",
              "    try:",
              f"        return {{{roots}}}",
              "    except (_Refused, KeyError, TypeError, AttributeError, ValueError, OverflowError):",
              "        return None"]
    ns: dict[str, Any] = {
        "__builtins__": {}, "type": type, "len": len, "float": float, "int": int, "str": str, "bool": bool,
        "dict": dict, "set": set, "list": list, "enumerate": enumerate, "all": all, "KeyError": KeyError,
        "TypeError": TypeError, "AttributeError": AttributeError, "ValueError": ValueError,
        "OverflowError": OverflowError, "_Refused": _Refused, "_known_date": known_date, "_new_date": new_date,
        "_NO_DAY": _dt.date.max, "_NONE_ABOVE": {}, "_has_forbidden": has_forbidden,
        "_has_id_problem": has_id_problem, "_id_key": id_key, **consts,
    }
    exec(compile("\n".join(lines), "<scopes reader>", "exec"), ns)  # built from the compiled scopes only
    return ns["read"]  # type: ignore[no-any-return]


AT_TABLE = 1000  # the '[i]' texts of an element's place are made once, up to this many elements of a list


def _scope_reader(part: ScopedPart, s: ScopeSpec, grades: tuple[str, ...], consts: dict[str, Any]) -> list[str]:
    """``read_<scope>(raw, where, day, up)``: the checked elements of one list, or :class:`_Refused`.

    Each field is checked into a local, and the element built by one dict display (the checked
    path's keys, in its order: the inputs, ``@at``, ``@key``, each child scope's list). ``up`` holds the
    ancestor elements' dates a ``not_before`` names.
    """
    body: list[str] = []
    parents: dict[tuple[str, ...], str] = {}  # a path to an object several fields are read from -> its local
    specs = part.inputs[s.name]
    order = next((k for k, spec in enumerate(specs) if spec.source == s.order_by), None)
    flag = order is not None and not specs[order].required  # an element may lack it: kept in a flag
    for k, spec in enumerate(specs):
        body += _field_reader(spec, f"f{k}", grades, consts, parents)
        if k == order and flag:  # the list is sorted by it when every element has one
            body += [f"if f{k} is None:", "    ordered = False"]
    items = [f"{spec.name!r}: f{k}" for k, spec in enumerate(specs)]
    items.append("'@at': at")
    if s.key is not None:
        body += _key_check(s, specs)
        items.append("'@key': k")
    body += _element_checks(part, s, specs)
    below = "below" if any(spec.name in part.date_bounds for spec in specs) and part.children(s.name) else "up"
    items += [f"{'@' + c.name!r}: read_{c.name}(item.get({c.list_field!r}), at + {'.' + c.list_field!r}, day, "
              f"{below})" for c in part.children(s.name)]
    places = f"_c{len(consts)}"  # '[0]', '[1]', ...: an element's place is its list's path and one of these
    consts[places] = tuple(f"[{i}]" for i in range(min(s.max, AT_TABLE)))
    at = f"at = where + {places}[i]" + ("" if s.max <= AT_TABLE else f" if i < {AT_TABLE!r} else f'{{where}}[{{i}}]'")
    out = [f"def read_{s.name}(raw, where, day, up):",
           "    if raw is None:",
           "        raise _Refused" if s.min else "        return []",
           f"    if type(raw) is not list or len(raw) > {s.max!r}" + (f" or len(raw) < {s.min!r}:" if s.min else ":"),
           "        raise _Refused",
           "    out = []",
           *(["    ordered = True"] if flag else []),
           *(["    keys = set()"] if s.key is not None else []),
           *(["    seen = set()"] if s.unique else []),
           "    for i, item in enumerate(raw):",
           "        if type(item) is not dict:",
           "            raise _Refused",
           f"        {at}",
           *(f"        {line}" for line in body),
           f"        out.append({{{', '.join(items)}}})"]
    if order is not None:
        c = f"_c{len(consts)}"
        consts[c] = operator.itemgetter(specs[order].name)
        out += ["    if ordered:", f"        out.sort(key={c})"] if flag else [f"    out.sort(key={c})"]
    out.append("    return out")
    return out


def _key_check(s: ScopeSpec, specs: Sequence[InputSpec]) -> list[str]:
    """Lines that set ``k`` to the element's key, or raise :class:`_Refused` (bad, or taken under this parent)."""
    # the key read as an input already (its text checked): the local holds it
    same = next((f"f{k}" for k, spec in enumerate(specs) if spec.root == (s.key,) and spec.type == "string"
                 and not spec.enum), None)
    return [f"k = {same}" if same else f"k = item.get({s.key!r})",
            f"if type(k) is not str or not k or len(k) > {MAX_KEY!r} or _has_id_problem(k):",
            "    raise _Refused",
            "kk = _id_key(k)  # 'E1 ' is 'E1', as the checked path compares them",
            "if kk in keys:",
            "    raise _Refused",
            "keys.add(kk)"]


def _element_checks(part: ScopedPart, s: ScopeSpec, specs: Sequence[InputSpec]) -> list[str]:
    """Lines that refuse an element with a date before its ``not_before`` or repeating an earlier one's ``unique``
    fields (the checked path words either), and set ``below``: ``up`` with the dates its children's bounds read."""
    lines: list[str] = []
    local = {spec.name: f"f{k}" for k, spec in enumerate(specs)}
    for k, spec in enumerate(specs):
        if spec.not_before is not None:
            bound = local.get(spec.not_before) or f"up[{spec.not_before!r}]"
            lines += [f"if f{k} is not None and {bound} is not None and f{k} < {bound}:", "    raise _Refused"]
    mine = [f"{spec.name!r}: f{k}" for k, spec in enumerate(specs) if spec.name in part.date_bounds]
    if mine and part.children(s.name):
        lines.append(f"below = {{**up, {', '.join(mine)}}}")
    if s.unique:
        names = [local[part.reader(s.name, f).name] for f in s.unique]
        lines += [f"u = ({', '.join(names)},)", "if u in seen:", "    raise _Refused", "seen.add(u)"]
    return lines


def _parent(path: tuple[str, ...], parents: dict[tuple[str, ...], str], lines: list[str]) -> str:
    """The local holding the object at ``path`` under ``item`` (None when a step is absent or null),
    defined on first use; a step that is neither an object nor null is refused, as ``_dig`` reports it."""
    if not path:
        return "item"
    if path not in parents:
        above = _parent(path[:-1], parents, lines)
        local = parents[path] = f"o{len(parents)}"
        get = f"{above}.get({path[-1]!r})"
        lines += [f"{local} = {get}" if above == "item" else f"{local} = None if {above} is None else {get}",
                  f"if {local} is not None and type({local}) is not dict:", "    raise _Refused"]
    return parents[path]


def _field_reader(spec: InputSpec, local: str, grades: tuple[str, ...], consts: dict[str, Any],
                  parents: dict[tuple[str, ...], str]) -> list[str]:
    """Lines that set ``local`` from ``item`` as :func:`_read_element` reads the field, or raise :class:`_Refused`.

    A required field is read by subscript (absent: KeyError; its parent null: TypeError; both end in
    None) and a null value is refused by the type test, so a good value passes one test less.
    """
    lines: list[str] = []
    above = _parent(spec.root[:-1], parents, lines)
    name = spec.root[-1]
    if spec.required:
        lines.append(f"v = {above}[{name!r}]")
    else:
        get = f"{above}.get({name!r})"
        lines.append(f"v = {get}" if above == "item" else f"v = None if {above} is None else {get}")
    check = _value_check(spec, local, grades, consts)
    if spec.required:
        return [*lines, *check]
    if spec.type == "boolean":  # null, true and false are all it takes: one test
        return [*lines, "if v is not True and v is not False and v is not None:", "    raise _Refused",
                f"{local} = v"]
    return [*lines, "if v is None:", f"    {local} = None", "else:", *(f"    {line}" for line in check)]


def _value_check(spec: InputSpec, local: str, grades: tuple[str, ...], consts: dict[str, Any]) -> list[str]:
    """Lines that set ``local`` from ``v`` (null refused), as ``_check_value`` reads it, or raise :class:`_Refused`."""
    t = spec.type
    if t in ("number", "integer"):
        # v + 0.0 first: the float of the number (-0.0 read as 0, as the checked path reads it), then
        # the range tested float against float. The same test: the bounds are within 1e15, where every
        # whole number is a float, and a larger int stays above them (far beyond, OverflowError).
        lo, hi = (float(b) for b in _bounds(spec))
        kind = "type(v) is not int" if t == "integer" else "type(v) is not float and type(v) is not int"
        return [f"if {kind}:", "    raise _Refused", f"{local} = v + 0.0", f"if not ({lo!r} <= {local} <= {hi!r}):",
                "    raise _Refused"]
    if t == "boolean":
        return ["if v is not True and v is not False:", "    raise _Refused", f"{local} = v"]
    if t in ("string", "grade"):
        allowed = grades if t == "grade" else spec.enum
        if allowed:  # the values the checked path accepts: listed, and text it takes
            c = f"_c{len(consts)}"
            consts[c] = frozenset(a for a in allowed if len(a) <= MAX_STRING and not has_forbidden(a))
            return [f"if type(v) is not str or v not in {c}:", "    raise _Refused", f"{local} = v"]
        return [f"if type(v) is not str or len(v) > {MAX_STRING!r} or _has_forbidden(v):", "    raise _Refused",
                f"{local} = v"]
    # date: a text parsed before is looked up (only texts parse_date took are kept); a new one is
    # parsed, and one parse_date refuses raises ValueError
    check = ["if type(v) is not str:", "    raise _Refused", f"{local} = _known_date(v) or _new_date(v)"]
    if spec.not_after_as_of:
        check += [f"if {local} > day:", "    raise _Refused"]
    return check
