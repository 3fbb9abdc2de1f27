"""Reading a client record through the policy's input contract.

Two paths, one answer. A generated fast path reads and checks every input with
direct lookups and bails out at the first surprise; the checked path then walks
the record again and reports *every* problem with its field path (missing
required field, wrong type, number sent as text, NaN, out of range, unknown
value). A record the fast path accepts is one the checked path accepts, with
the same values (a property test holds them to that).
"""

from __future__ import annotations

import datetime as _dt
import itertools
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ..diagnostics import Diagnostic, InputError, did_you_mean
from ..policy.compiler import CompiledPolicy, InputSpec
from ..safetext import has_forbidden, text_problem

MAX_ABS_NUMBER = 1e15
MAX_STRING = 200
MAX_PERIODS = 400

_EMPTY: Mapping[str, Any] = {}


def quoted(text: str, limit: int = 60) -> str:
    """A client's text as a message quotes it: whole when short, cut with '...' past ``limit`` characters (a
    reject line must not carry a 2 MB value back)."""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def describe(v: Any) -> str:
    """A JSON value as messages quote it: ``string 'abc'``, ``number 7``, ``an object``."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"string '{v[:30]}'"
    if isinstance(v, int | float):
        return f"number {v}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    # what a Parquet cell may hold besides (read by pandas or Arrow): named in a caller's words, not numpy's
    kind = type(v).__name__
    if isinstance(v, tuple) or kind == "ndarray":
        return "a list"
    if isinstance(v, _dt.timedelta) or kind == "timedelta64":
        return "a duration"
    if isinstance(v, bytes | bytearray):
        return "binary data"
    if isinstance(v, _dt.datetime):
        return f"date and time {v.isoformat()}"
    return f"a value of type {kind}"


_describe = describe  # the name this module's callers knew


def parse_date(v: Any) -> _dt.date | None:
    """Strict ISO date ``YYYY-MM-DD``; anything else is None."""
    if type(v) is not str or len(v) != 10 or v[4] != "-" or v[7] != "-":
        return None
    try:
        return _dt.date.fromisoformat(v)
    except ValueError:
        return None


# The dates the generated readers have parsed, by their text: a portfolio repeats the same few
# thousand days (due dates, quarter ends), and one dict lookup costs less than testing and parsing
# the text again. Only a text ``parse_date`` took goes in; bounded, so a long run cannot grow it.
_DATES: dict[str, _dt.date] = {}
_DATES_MAX = 1 << 14
known_date = _DATES.get  # the generated readers' lookup: the date of a text already parsed, else None


def unknown_value(v: str, allowed: Iterable[str]) -> str:
    return f"unknown value '{quoted(v)}' (expected one of: {', '.join(allowed)})"


def named_value(v: str, spec: InputSpec) -> str | None:
    """The hint for a record that sends a value's words (制造业, Substandard) where the value belongs."""
    folded = v.strip().casefold()
    for value, words in (spec.value_labels or {}).items():
        if any(isinstance(w, str) and w.strip().casefold() == folded for w in words.values()):
            return f"'{quoted(v)}' is how '{value}' reads to people; the record carries the value '{value}'"
    return None


def new_date(v: str) -> _dt.date:
    """The date of ``v`` (an exact ``str``, not yet in the cache), remembered; ValueError when
    ``parse_date`` refuses it (the generated readers then leave the record to the checked path)."""
    d = parse_date(v)
    if d is None:
        raise ValueError(v)
    if len(_DATES) < _DATES_MAX:
        _DATES[v] = d
    return d


def non_finite(v: float) -> str:
    """What is wrong with a NaN or an infinity, the same words on every path (decide, batch columns)."""
    if v == v:  # an infinity: in JSON a number beyond the float range (1e400) is read as one
        return f"{v} is not a finite number (a number beyond ±1.8e308, such as 1e400, reads as infinity)"
    return f"{v} is not a finite number"


def _check_value(spec: InputSpec, v: Any, grades: tuple[str, ...]) -> tuple[Any, str | None, str | None]:
    """Return (value, problem, hint) for one non-null value."""
    t = spec.type
    if t in ("number", "integer"):
        if isinstance(v, bool):
            return None, f"expected a number, found {describe(v)}", "booleans are not numbers here"
        if isinstance(v, str):
            return None, f"expected a number, found {describe(v)}", "send numbers without quotes"
        if not isinstance(v, int | float):
            return None, f"expected a number, found {describe(v)}", None
        if isinstance(v, float) and not math.isfinite(v):
            return None, non_finite(v), "send null for an unknown value"
        if t == "integer" and not (isinstance(v, int) or v.is_integer()):
            # 3.0 is a whole number (JSON Schema's "integer" too, and a table column with a gap holds floats)
            return None, f"expected a whole number, found {v}", None
        if abs(v) > MAX_ABS_NUMBER:
            return None, f"{v} is out of range (|x| <= {MAX_ABS_NUMBER:g})", "check the unit"
        if spec.min is not None and v < spec.min:
            what = "negative" if spec.min == 0 else f"below {spec.min:g}"
            return None, f"{v} is {what}; it must be >= {spec.min:g}", None
        if spec.max is not None and v > spec.max:
            return None, f"{v} is above the maximum {spec.max:g}", None
        # -0.0 is 0: the input hash writes both as 0, so a decision replayed from it must not see a sign
        return float(v) + 0.0, None, None
    if t == "boolean":
        if type(v) is not bool:
            return None, f"expected true or false, found {describe(v)}", None
        return v, None, None
    if t in ("string", "grade"):
        if type(v) is not str:
            return None, f"expected a string, found {describe(v)}", None
        if len(v) > MAX_STRING:
            return None, f"string longer than {MAX_STRING} characters", None
        if has_forbidden(v):
            return None, f"{text_problem(v)} (text holds no control characters)", None
        allowed = grades if t == "grade" else spec.enum
        if allowed and v not in allowed:
            return None, unknown_value(v, allowed), named_value(v, spec) or did_you_mean(v, allowed)
        return v, None, None
    if t == "date":
        d = parse_date(v)
        if d is None:
            return None, f"expected a date YYYY-MM-DD, found {describe(v)}", None
        return d, None, None
    raise AssertionError(t)  # pragma: no cover


def absent(found: bool) -> str:
    """How a required fact is absent, as a message ends: a null sent is not a field left out."""
    return "null (a required fact needs a value)" if found else "missing"


def _dig(obj: Any, path: tuple[str, ...], where: str, problems: list[Diagnostic]) -> tuple[bool, Any]:
    """Follow ``path``; (found, value). Reports a parent that is not an object."""
    cur = obj
    walked = where
    for part in path:
        if cur is None:
            return False, None
        if not isinstance(cur, dict):
            problems.append(Diagnostic("wrong-type", f"expected an object, found {describe(cur)}",
                                       path=walked or "(record)"))
            return False, None
        if part not in cur:
            return False, None
        cur = cur[part]
        walked = f"{walked}.{part}" if walked else part
    return True, cur


def _filled(period: Any) -> bool:
    """A period exists when any of its fields has a value (the rule the batch applies to wide columns).

    A null period has none, as a row of empty cells has none: it is absent at the end of the
    list and a gap before a filled period, on both paths.
    """
    # Not an object (and not null): reported as such, never dropped.
    return period is not None and (type(period) is not dict or any(x is not None for x in period.values()))


def trim_periods(periods: list[Any], root: str) -> tuple[list[Any], str | None]:
    """The periods that exist, and the gap problem if an empty period comes before a filled one.

    Trailing empty periods are absent, as they are in a wide table whose row has fewer periods
    than its widest row. An empty period before a filled one cannot be dropped (the later
    quarters would shift onto the wrong dates) nor guessed, so it is an error, as in ``batch``.
    """
    filled = [_filled(q) for q in periods]
    end = len(filled)
    while end and not filled[end - 1]:
        end -= 1
    gap = next((k for k in range(end) if not filled[k]), None)
    return periods[:end], None if gap is None else gap_message(root, gap)


def gap_message(root: str, k: int) -> str:
    """The one wording of an empty period before a filled one, for decide and batch alike."""
    return f"periods must be consecutive from index 0: {root}[{k}] is empty but a later period is filled"


ORDER_HINT = "list the periods oldest first, one period per date"


def order_message(spec: InputSpec, series: list[Any]) -> tuple[str, str] | None:
    """(field path, message) of the first value not after the value before it, for an ``ascending`` series.

    Periods out of order would be read as the wrong quarters (the latest loss taken for the oldest)
    without any figure being wrong, so the record is refused instead. Null values are skipped.
    """
    prev = prev_at = None
    for i, v in enumerate(series):
        if v is None:
            continue
        if prev is not None and v <= prev:
            return order_problem(spec, i, v, prev_at, prev)
        prev, prev_at = v, i
    return None


def order_problem(spec: InputSpec, i: int, value: Any, j: Any, prev: Any) -> tuple[str, str]:
    """The one wording of a period out of order, for decide and batch alike."""
    root, item = ".".join(spec.root), ".".join(spec.item)
    if value == prev:
        what = f"{_short(value)} repeats {root}[{j}].{item}"
    else:
        what = f"{_short(value)} is before {root}[{j}].{item} ({_short(prev)})"
    order = "oldest first" if spec.type == "date" else f"in ascending order of {item}"
    return f"{root}[{i}].{item}", f"{what}: the periods must be {order}, each {item} once"


def after_as_of(spec: InputSpec, value: Any, day: _dt.date, index: int | None = None) -> tuple[str, str] | None:
    """(field path, message) when a ``not_after_as_of`` date is after the as-of day, for decide and batch alike."""
    if value is None or value <= day:
        return None
    path = spec.source if index is None else f"{'.'.join(spec.root)}[{index}].{'.'.join(spec.item)}"
    return path, (f"{value.isoformat()} is after the as-of date {day.isoformat()}: a decision as of that day "
                  "can only use what was known then")


AS_OF_HINT = "decide as of a later date (--as-of), or leave out what came later"


def as_of_bounded(policy: CompiledPolicy) -> tuple[tuple[int, InputSpec], ...]:
    """The inputs declared ``not_after_as_of``, with their position in the input tuple."""
    return tuple((i, spec) for i, spec in enumerate(policy.inputs) if spec.not_after_as_of)


def dates_after_as_of(policy: CompiledPolicy, values: tuple[Any, ...], day: _dt.date,
                      bounded: tuple[tuple[int, InputSpec], ...] | None = None) -> list[Diagnostic]:
    """The first value after ``day`` of each ``not_after_as_of`` input (``bounded``: precomputed)."""
    out = []
    for k, spec in as_of_bounded(policy) if bounded is None else bounded:
        v = values[k]
        if spec.series:
            if not v or max((x for x in v if x is not None), default=day) <= day:  # the common case
                continue
            found = next((p for i, x in enumerate(v) if (p := after_as_of(spec, x, day, i))), None)
        else:
            found = after_as_of(spec, v, day)
        if found is not None:
            out.append(Diagnostic("bad-field", found[1], path=found[0], hint=AS_OF_HINT))
    return out


def _short(v: Any) -> str:
    if isinstance(v, _dt.date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def extract_checked(policy: CompiledPolicy, rec: Any, file: str | None = None,
                    day: _dt.date | None = None) -> tuple[Any, ...]:
    """Every input value, or :class:`InputError` listing every problem of the record.

    With the decision's ``day``, dates declared ``not_after_as_of`` are checked against it too.
    """
    problems: list[Diagnostic] = []
    grades = policy.grade_ids
    if not isinstance(rec, dict):
        raise InputError([Diagnostic("wrong-type", f"a client record is a JSON object, found {describe(rec)}",
                                     file=file)])
    values: list[Any] = []
    gaps: set[str] = set()  # roots whose gap was reported: once per list, not once per field read from it
    for spec in policy.inputs:
        before = len(problems)
        found, raw = _dig(rec, spec.root, "", problems)
        where = spec.source
        if len(problems) > before:
            # The parent is not an object: that is the problem, not each missing child.
            values.append([] if spec.series else None)
            continue
        if not spec.series:
            if not found or raw is None:
                if spec.required:
                    problems.append(Diagnostic("missing-field", f"required field '{where}' is {absent(found)}",
                                               path=where, hint=f"input '{spec.name}' of the policy reads it"))
                values.append(None)
                continue
            v, problem, hint = _check_value(spec, raw, grades)
            if problem:
                problems.append(Diagnostic("bad-field", problem, path=where, hint=hint))
            values.append(v)
            continue
        root = ".".join(spec.root)
        if not found or raw is None:
            if spec.required:
                problems.append(Diagnostic("missing-field", f"required list '{root}' is missing", path=root))
            values.append([])
            continue
        if not isinstance(raw, list):
            problems.append(Diagnostic("wrong-type", f"expected a list of periods, found {describe(raw)}", path=root))
            values.append([])
            continue
        if len(raw) > MAX_PERIODS:
            problems.append(Diagnostic("too-large", f"{len(raw)} periods; at most {MAX_PERIODS}", path=root))
            values.append([])
            continue
        raw, gap = trim_periods(raw, root)
        if gap is not None and root not in gaps:
            gaps.add(root)
            problems.append(Diagnostic("bad-field", gap, path=root))
        series: list[Any] = []
        for i, period in enumerate(raw):
            pwhere = f"{root}[{i}]"
            if period is None:  # a gap, reported as such above
                series.append(None)
                continue
            if not isinstance(period, dict):
                problems.append(Diagnostic("wrong-type", f"expected an object, found {describe(period)}", path=pwhere))
                series.append(None)
                continue
            ok, item = _dig(period, spec.item, pwhere, problems)
            if not ok or item is None:
                series.append(None)
                continue
            v, problem, hint = _check_value(spec, item, grades)
            if problem:
                problems.append(Diagnostic("bad-field", problem, path=f"{pwhere}.{'.'.join(spec.item)}", hint=hint))
            series.append(v)
        if spec.ascending:
            disorder = order_message(spec, series)
            if disorder is not None:
                problems.append(Diagnostic("bad-field", disorder[1], path=disorder[0], hint=ORDER_HINT))
        values.append(series)
    if day is not None:
        problems += dates_after_as_of(policy, tuple(values), day)
    if problems:
        raise InputError([Diagnostic(p.code, p.message, file=file, path=p.path, hint=p.hint) for p in problems])
    return tuple(values)


# ------------------------------------------------------------- canonical JSON

# The canonical JSON encoder (orjson) writes integers of 64 bits, signed or not; beyond that a
# record has no input hash, so it is refused with the field named (batch rows alike).
INT_RANGE = (-(2**63), 2**64 - 1)


# Objects nest at most this deep in a record canonical JSON can write (the encoder's own limit).
MAX_WRITABLE_DEPTH = 254
_JSON_SCALARS = (str, int, float, bool, type(None))


def unwritable_integers(record: Any, file: str | None = None) -> list[Diagnostic]:
    """A problem for each part of ``record`` canonical JSON cannot write, so that no input hash can be computed:
    an integer beyond 64 bits, a value of no JSON type (a numpy number, a date object, a set), a record that
    contains itself or nests too deep. Walked without recursion: a caller's object may nest without end."""
    out: list[Diagnostic] = []
    stack: list[tuple[Any, str, int, tuple[int, ...]]] = [(record, "", 0, ())]
    while stack and len(out) < 20:
        v, path, depth, above = stack.pop()
        at = path or "(record)"
        t = type(v)
        if t is int and not INT_RANGE[0] <= v <= INT_RANGE[1]:
            text = str(v)
            out.append(Diagnostic("bad-field", f"integer {text[:24]}{'...' if len(text) > 24 else ''} "
                                  "has more than 64 bits: the input hash cannot be computed",
                                  file=file, path=at,
                                  hint="send a smaller number, or the figure as text when the policy does not read it"))
        elif isinstance(v, dict | list):
            if id(v) in above:
                out.append(Diagnostic("bad-field", "the record contains itself here: it cannot be written as JSON",
                                      file=file, path=at))
            elif depth >= MAX_WRITABLE_DEPTH:
                out.append(Diagnostic("bad-field", f"the record nests deeper than {MAX_WRITABLE_DEPTH} levels here: "
                                      "it cannot be written as JSON", file=file,
                                      path=at if len(at) <= 80 else f"{at[:60]}... ({depth} levels down)"))
            else:
                inner = (*above, id(v))
                named = isinstance(v, dict)
                items = v.items() if isinstance(v, dict) else enumerate(v)
                stack.extend((x, f"{path}.{k}" if path and named else str(k) if named else f"{path}[{k}]",
                              depth + 1, inner) for k, x in reversed(list(items)))
        elif t not in _JSON_SCALARS and not (isinstance(v, str | int) and t.__module__ != "numpy"):
            out.append(Diagnostic("bad-field", f"a {t.__module__}.{t.__qualname__} is not a JSON value: the input "
                                  "hash cannot be computed", file=file, path=at,
                                  hint="give objects, lists, text, numbers, true/false or null (a numpy number as "
                                       "float(x) or int(x), a date as its YYYY-MM-DD text)"))
    return out


# ------------------------------------------------------------- misspelt fields

_INDEX = re.compile(r"\[\d+\]")
# Records looked at for misspelt fields in a run of many (batch, decide --stream): a source misspells a field in
# every record, and the check costs several times a decision of a debtor.
MISSPELT_SAMPLE = 200


_MISSPELT_MEMO = 64  # record shapes remembered per policy: a stream's or a file's records mostly share a few


# The leaf paths of one record the check reads, at most: the largest debtor a record holds has about 29,000; a record
# of many more is mostly fields no policy reads, and each unread path costs a fuzzy match (a 5 MB record of a million
# unread fields took 7 s and 400 MB to warn of nothing). A misspelling repeated in every element shows in the first.
MISSPELT_PATHS = 30_000


def misspelt_fields(policy: CompiledPolicy, given: Iterable[str]) -> list[tuple[str, str]]:
    """(field given, field meant): a field the policy does not read that looks like one it reads and lacks.
    Remembered by the exact set of paths given (the check costs a dozen decisions; records of one shape repeat)."""
    shape = frozenset(itertools.islice(given, MISSPELT_PATHS))
    memo = policy.runtime.setdefault("misspelt", {})
    found = memo.get(shape)
    if found is None:
        if len(memo) >= _MISSPELT_MEMO:
            memo.clear()
        found = memo[shape] = tuple(_misspelt_fields(policy, shape))
    return list(found)


def _misspelt_fields(policy: CompiledPolicy, given: Iterable[str]) -> list[tuple[str, str]]:
    """:func:`misspelt_fields` worked out.

    An optional field under a misspelt name is simply absent to the engine, so its rules quietly
    see null. Extra fields are normal (exports carry names, branches, notes); only near misses of a
    field the policy reads, and that is missing, are named. ``given`` are dotted paths, periods as
    ``financials[3].revenue``, elements of a scope as ``exposures[0].schedule[2].paid_date``; a miss
    repeated in several periods or elements is named once, as ``financials[*].x``.
    """
    given = set(given)
    reads = {"client_id", "as_of"}
    periods: dict[str, set[str]] = {}  # series root -> the period indices given
    for g in given:
        m = _PERIOD.match(g)
        if m:  # the index as the reader writes it: 'financials[03].x' is not read, and is named as period 3's
            periods.setdefault(m["root"], set()).add(str(int(m["k"])))
    for spec in policy.inputs:
        if spec.series:
            root, item = ".".join(spec.root), ".".join(spec.item)
            reads |= {f"{root}[{k}].{item}" for k in periods.get(root, ())}
        else:
            reads.add(spec.source)
    if policy.scoped is not None:
        reads |= _element_reads(policy, given)
    lists = [".".join(spec.root) for spec in policy.inputs if spec.series]
    if policy.scoped is not None:
        lists += [s.source[:-3] for s in policy.scoped.scopes]  # 'exposures[*].modifications[*]' -> its list
    return sorted((as_written(g), m) for g, m in near_misses(given, reads) + _lists_missed(given, lists))


def _lists_missed(given: set[str], lists: Iterable[str]) -> list[tuple[str, str]]:
    """(list given, list meant): a list the record holds under a name near that of a list the policy reads, which
    it lacks under the same parent ('modifcations', 'Exposures', 'evnets'): every element of it would go unread,
    its facts silently absent. Templates (``exposures[*].modifications``) are matched against the lists given."""
    expected = {template.rpartition(".")[2] for template in lists}
    if {piece.rpartition(".")[2] for g in given for piece in g.split("[")[:-1]} <= expected:
        return []  # every list given is one the policy reads (the usual record)
    held: dict[str, set[str]] = {}  # parent element ('' the record) -> the lists given under it
    for g in given:
        for m in _INDEX.finditer(g):
            parent, _, name = g[:m.start()].rpartition(".")
            held.setdefault(parent, set()).add(name)
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for template in lists:
        parent_t, _, name = template.rpartition(".")
        for parent, names in held.items():
            if name in names or _INDEX.sub("[*]", parent) != parent_t:
                continue
            meant = next((n for n in sorted(names) if _loose(n) == _loose(name)), None) or _near(name, names)
            if meant is not None:  # _near found the given name nearest to the one read: the roles swap back
                g, m = (f"{parent}.{meant}" if parent else meant), (f"{parent}.{name}" if parent else name)
                found.setdefault((_INDEX.sub("[*]", g), _INDEX.sub("[*]", m)), []).append((g, m))
    return [each[0] if len(each) == 1 else pair for pair, each in found.items()]




def misspelt_message(policy: CompiledPolicy, given: str, meant: str, what: str = "field") -> str:
    """The warning for a field (or column) given under a name near one the policy reads."""
    shown = as_written(".".join(n if n.strip() else f'"{n}"' for n in given.split(".")))  # a name left blank
    return (f"{what} '{shown}' is not read by policy {policy.id}; did you mean '{meant}'? "
            f"(as given, '{meant}' is missing)")


# A name holding a dot or brackets ('accounting[0]', 'stage.value' as one key of a record, 'accounting[0].stage' as a
# column) is written with their full-width forms in the paths the check compares: a list, or an object, has the
# ASCII ones there, and the two must not read alike. as_written() gives the name back as the record wrote it.
_AS_NAME = str.maketrans({".": "．", "[": "［", "]": "］"})
_AS_WRITTEN = str.maketrans({"．": ".", "［": "[", "］": "]"})
_NAME_INDEX = re.compile(r"［[^］]*］")
_ODD_NAME = re.compile(r"[．［］]|(?:^|\.)\s*(?:\.|$)")  # a dot or brackets in a name, or a blank name


def as_name(key: str) -> str:
    """A record's key, or a column's name, as one name of a path (see ``_AS_NAME``)."""
    return key.translate(_AS_NAME)


def as_written(path: str) -> str:
    return path.translate(_AS_WRITTEN)


def near_misses(given: Iterable[str], reads: Iterable[str], columns: bool = False) -> list[tuple[str, str]]:
    """(given, meant) for each given dotted path not read that is close to a read one that is not given
    under the same parent, case aside; indices collapse to ``[*]``, so a miss repeated in every element is
    one. With ``columns`` (a table's header: no lists, and a name may carry its table's path before it or a field
    after it) a column also matches the read one its path ends or starts with."""
    given, reads = set(given), set(reads)
    absent: dict[str, list[str]] = {}  # by parent: a typo keeps its place in the record
    loose: dict[str, str] = {}  # an absent path by its loose spelling
    by_leaf: dict[str, list[str]] = {}  # absent paths by their last name
    for r in sorted(reads - given):
        absent.setdefault(r.rpartition(".")[0], []).append(r)
        loose.setdefault(_loose(r), r)
        by_leaf.setdefault(r.rpartition(".")[2], []).append(r)
    found: dict[tuple[str, str], list[tuple[str, str]]] = {}
    given_parents = {g.rpartition(".")[0] for g in given}
    unread = reads - given
    for g in sorted(given - reads):
        parent, _, leaf = g.rpartition(".")
        meant = loose.get(_loose(g))
        if meant is not None:  # the same path but for case, spaces, a doubled dot or a padded index
            meant_parent, _, meant_leaf = meant.rpartition(".")
            if leaf == meant_leaf and parent != meant_parent and ".." not in g and meant_parent not in given_parents:
                g, meant = parent, meant_parent  # the object written another way ('Loan'): named once, as the object
            _found(found, g, meant)
            continue
        candidates = absent.get(parent)
        meant = _near(g, candidates) if candidates else None
        if meant is None:  # the field one level too high or too low ('exposures[0].credit_impaired' for the one
            meant = _moved(g, by_leaf.get(leaf, ()))  # in 'exposures[0].accounting')
        if meant is not None:
            _found(found, g, meant)
        elif columns or _ODD_NAME.search(g):  # 'accounting[0]' or 'stage.value' as a name, a blank one; a column
            pair = _otherwise(g, unread, columns)  # with its path before or after
            if pair is not None:
                _found(found, *pair)
            elif parent and parent not in absent:
                _object_misspelt(found, parent, leaf, absent)
        elif parent and parent not in absent:
            _object_misspelt(found, parent, leaf, absent)
    # a miss repeated in several periods or elements is named once; a padded index ('[03]' for '[3]') by its first
    return [each[0] if len(each) == 1 or pair[0] == pair[1] else pair for pair, each in sorted(found.items())]


def _found(found: dict[tuple[str, str], list[tuple[str, str]]], given: str, meant: str) -> None:
    """Note (given, meant) once, under its pair with the indices collapsed (a miss repeated in every element)."""
    pair = (_INDEX.sub("[*]", given), _INDEX.sub("[*]", meant))
    if (given, meant) not in found.get(pair, []):
        found.setdefault(pair, []).append((given, meant))


def _object_misspelt(found: dict[tuple[str, str], list[tuple[str, str]]], parent: str, leaf: str,
                     absent: Mapping[str, list[str]]) -> None:
    """The object misspelt ('colateral'): named once, as the object."""
    meant_parent = _near(parent, [a for a in absent if f"{a}.{leaf}" in absent[a] and
                                  a.rpartition(".")[0] == parent.rpartition(".")[0]])
    if meant_parent is not None and _LAST_INDEX.sub("", parent) != meant_parent:  # 'accounting[0]': the object
        _found(found, parent, meant_parent)  # sent as a list, refused as such (wrong-type), is not another name


def _otherwise(given: str, unread: set[str], columns: bool) -> tuple[str, str] | None:
    """(given, meant) for a path whose names are written otherwise (:func:`_written_otherwise`); a record's object
    so written ('accounting[0]') named once, as the object."""
    meant = _written_otherwise(given, unread, columns)
    if meant is None:
        return None
    parent, _, leaf = given.rpartition(".")
    meant_parent, _, meant_leaf = meant.rpartition(".")
    if not columns and meant_leaf == leaf and meant_parent != parent:
        return parent, meant_parent
    return given, meant


def _written_otherwise(given: str, absent: set[str], columns: bool) -> str | None:
    """The absent read path ``given`` stands for when its names are written otherwise: an index or a field in a
    name ('accounting[0]', 'stage.value' as one key); for a column, its table's path before it
    ('exposures[*].schedule[*].paid_date') or a field after it ('paid_date.value')."""
    parent, _, leaf = given.rpartition(".")
    if not leaf.strip():  # a field without a name: the one field read there that the record lacks, if one
        under = [a for a in absent if a.rpartition(".")[0] == parent]
        return under[0] if len(under) == 1 else None
    plain = ".".join(_NAME_INDEX.sub("", name).partition("．")[0].strip() for name in given.split("."))
    if plain != given and plain in absent:
        return plain
    if not columns:
        return None
    names = plain.split(".")
    ends = [".".join(names[i:]) for i in range(1, len(names))]  # the longest first
    starts = [".".join(names[:i]) for i in range(len(names) - 1, 0, -1)]
    return next((p for p in (*ends, *starts) if p in absent), None)


def _moved(given: str, same_name: Iterable[str]) -> str | None:
    """The one absent read path of ``same_name`` (those with ``given``'s name) in an object one level below
    ``given``'s parent, or in its grandparent: the field written at the wrong level.

    Only across an object (``accounting``), never across an element of a list: a field of an exposure and the
    field of that name in its modifications are two facts (a record shared by several policies carries both),
    and a field of the exposure cannot be meant for one of its many modifications, nor the reverse."""
    parent, _, _ = given.rpartition(".")
    grand, _, last = parent.rpartition(".") if parent else (None, "", "")
    found = [r for r in same_name if (p := r.rpartition(".")[0]) != parent
             and ((p and p.rpartition(".")[0] == parent and not p.endswith("]"))
                  or (p == grand and not last.endswith("]")))]
    return found[0] if len(found) == 1 else None


_LAST_INDEX = re.compile(r"\[\d+\]$")
_LOOSE_INDEX = re.compile(r"\[\s*0*(\d+)\s*\]")
_DOTS = re.compile(r"\s*\.[\s.]*")


def _loose(path: str) -> str:
    """``path`` as a reader that forgave case, spaces, doubled dots and padded indices would read it: two
    paths of one loose spelling are one field written two ways (the reader reads only the exact one)."""
    return _DOTS.sub(".", _LOOSE_INDEX.sub(r"[\1]", path.strip().lower())).strip(".")


def _near(given: str, candidates: Iterable[str]) -> str | None:
    """The candidate ``given`` misspells, case aside ('Paid_Date' is as near as 'paid_dte'), if one is close.

    Every caller's candidates sit under ``given``'s parent, so the last names are compared: whole paths share
    their parent's letters, which made any two fields of one object ('a.b.xyz' and 'a.b.stage') look alike."""
    import difflib  # only here: most records have no near miss, and a decide process stays light

    lowered = {c.rpartition(".")[2].lower(): c for c in candidates}
    leaf = given.rpartition(".")[2].lower()
    near = difflib.get_close_matches(leaf, list(lowered), n=1, cutoff=0.85)
    if near:
        return lowered[near[0]]
    # two letters swapped ('evnets'): difflib scores it low, a typist makes it often
    swapped = [c for c in lowered if len(c) >= 5 and _swapped(leaf, c)]
    return lowered[swapped[0]] if len(swapped) == 1 else None


def _swapped(a: str, b: str) -> bool:
    """``a`` is ``b`` with two adjacent letters swapped."""
    if len(a) != len(b) or a == b:
        return False
    diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


def element_fields(policy: CompiledPolicy) -> dict[str, list[str]]:
    """Per scope's element path (``exposures[*]``), the fields the policy reads in each element, its key too."""
    part = policy.scoped
    if part is None:
        return {}
    return {s.source: [spec.source for spec in part.inputs[s.name]] + ([s.key] if s.key else []) for s in part.scopes}


def _element_reads(policy: CompiledPolicy, given: Iterable[str]) -> set[str]:
    """The paths the policy reads in each element of a scope the record holds (``exposures[0].balance``, ...)."""
    inside = element_fields(policy)
    out: set[str] = set()
    for element in {g[:g.rindex("]") + 1] for g in given if "]" in g}:
        fields = inside.get(_INDEX.sub("[*]", element))
        if fields:
            out |= {f"{element}.{f}" for f in fields}
    return out


_PERIOD = re.compile(r"^(?P<root>[^\[\]]+)\[(?P<k>\d+)\]\.")


def record_fields(record: Any, prefix: str = "") -> Iterator[str]:
    """Every leaf path of a client record, periods as ``root[k].field``."""
    if isinstance(record, dict):
        for k, v in record.items():
            name = as_name(str(k))  # 'accounting[0]' as a key is a name, not an element of a list
            yield from record_fields(v, f"{prefix}.{name}" if prefix else name)
    elif isinstance(record, list) and prefix:
        for i, item in enumerate(record):
            if isinstance(item, dict):
                yield from record_fields(item, f"{prefix}[{i}]")
    elif prefix:
        yield prefix


# ----------------------------------------------------------- generated fast path


def _bounds(spec: InputSpec) -> tuple[float, float]:
    """The range a number input accepts: its own, within the engine's sanity bound."""
    lo = max(spec.min if spec.min is not None else -MAX_ABS_NUMBER, -MAX_ABS_NUMBER)
    hi = min(spec.max if spec.max is not None else MAX_ABS_NUMBER, MAX_ABS_NUMBER)
    return lo, hi


def build_fast_extractor(policy: CompiledPolicy) -> Callable[[Any], tuple[Any, ...] | None]:
    """Generate ``extract(rec)``: the input tuple, or None when anything is off.

    Written as Python source and compiled once: only ``repr()`` of the policy's field names and
    of numbers, and names of constants, go into the text. Source compiles several times faster
    than an equivalent ``ast`` tree built in Python, which matters at every process start.
    """
    lines: list[str] = []
    results: list[str] = []
    consts: dict[str, Any] = {}
    parents: dict[tuple[str, ...], str] = {}  # a path to an object fields are read from -> its local

    def const_name(value: Any) -> str:
        name = f"_c{len(consts)}"
        consts[name] = value
        return name

    def lookup(base: str, path: tuple[str, ...], required: bool) -> str:
        cur = base
        for k, part in enumerate(path):
            if required:
                cur = f"{cur}[{part!r}]"
            elif k == len(path) - 1:
                cur = f"{cur}.get({part!r})"
            else:
                cur = f"{cur}.get({part!r}, _EMPTY)"
        return cur

    def parent(path: tuple[str, ...]) -> str:
        """The local holding the object at ``path`` (None when a step is absent or null), read once
        for all the fields under it; a step that is neither an object nor null: the checked path's."""
        if not path:
            return "rec"
        if path not in parents:
            above = parent(path[:-1])
            local = parents[path] = f"o{len(parents)}"
            get = f"{above}.get({path[-1]!r})"
            lines.append(f"        {local} = {get}" if above == "rec" else
                         f"        {local} = None if {above} is None else {get}")
            bail_unless(f"{local} is None or type({local}) is dict")
        return parents[path]

    def bail_unless(test: str, indent: str = "        ") -> None:
        lines.append(f"{indent}if not ({test}):")
        lines.append(f"{indent}    return None")

    def read_scalar(i: int, spec: InputSpec) -> None:
        """``v<i>``, checked and converted, from the record (absent or null: None, refused when required)."""
        v = f"v{i}"
        above, name = parent(spec.root[:-1]), spec.root[-1]
        if spec.required:  # absent: KeyError, a null parent: TypeError; null: refused by the type test
            lines.append(f"        {v} = {above}[{name!r}]")
        else:
            get = f"{above}.get({name!r})"
            lines.append(f"        {v} = {get if above == 'rec' else f'None if {above} is None else {get}'}")
        check = value_check(spec, v, "return None")
        if spec.required:
            lines.extend(f"        {line}" for line in check)
        elif spec.type == "boolean":
            bail_unless(f"{v} is True or {v} is False or {v} is None")
        else:
            lines.append(f"        if {v} is not None:")
            lines.extend(f"            {line}" for line in check)
        results.append(v)

    def value_check(spec: InputSpec, v: str, refuse: str) -> list[str]:
        """Lines that test a non-null ``v`` as ``_check_value`` does and convert it in place, or ``refuse``."""
        t = spec.type
        if t in ("number", "integer"):
            # v + 0.0 first: the float of the number (-0.0 read as 0, as the checked path reads it),
            # then the range tested float against float. The same test: the bounds are within 1e15,
            # where every whole number is a float, and a larger int stays above them (far beyond,
            # OverflowError).
            lo, hi = (float(b) for b in _bounds(spec))
            kind = f"type({v}) is not int" if t == "integer" else f"type({v}) is not float and type({v}) is not int"
            return [f"if {kind}:", f"    {refuse}", f"{v} = {v} + 0.0", f"if not ({lo!r} <= {v} <= {hi!r}):",
                    f"    {refuse}"]
        if t == "boolean":
            return [f"if {v} is not True and {v} is not False:", f"    {refuse}"]
        if t in ("string", "grade"):
            allowed = grades if t == "grade" else spec.enum
            if allowed:
                return [f"if type({v}) is not str or {v} not in {const_name(frozenset(allowed))}:", f"    {refuse}"]
            return [f"if type({v}) is not str or len({v}) > {MAX_STRING!r} or _has_forbidden({v}):", f"    {refuse}"]
        # date: a text parsed before is looked up (only texts parse_date took are kept); a new one is
        # parsed, and one parse_date refuses raises ValueError
        return [f"if type({v}) is not str:", f"    {refuse}", f"{v} = _known_date({v}) or _new_date({v})"]

    grades = policy.grade_ids
    lists: dict[tuple[str, ...], str] = {}  # series root -> the variable holding its checked list
    for i, spec in enumerate(policy.inputs):
        if not spec.series:
            read_scalar(i, spec)
            continue
        results.append(f"v{i}")
        # series: every input read from one list of periods is filled in one pass over the periods
        if spec.root in lists:
            continue
        group = [(j, g) for j, g in enumerate(policy.inputs) if g.series and g.root == spec.root]
        r = f"r{i}"
        lists[spec.root] = r
        required = any(g.required for _, g in group)
        lines.append(f"        {r} = {lookup('rec', spec.root, required)}")
        if not required:
            lines.append(f"        if {r} is None:")
            lines.append(f"            {r} = []")
        bail_unless(f"type({r}) is list and len({r}) <= {MAX_PERIODS!r}")
        for j, g in group:
            lines.append(f"        v{j} = []")
            if g.ascending:
                lines.append(f"        last{j} = None")
        lines.append(f"        for q in {r}:")
        bail_unless("type(q) is dict", "            ")
        for n, (j, g) in enumerate(group):
            lines.append(f"            x = {lookup('q', g.item, False)}")
            if n == 0:
                # A period with a value is filled; one without (to be dropped at the end, or a gap)
                # is the checked path's to handle.
                lines.append("            if x is None and not _filled(q):")
                lines.append("                return None")
            lines.append("            if x is not None:")
            lines.extend(f"                {line}" for line in value_check(g, "x", "return None"))
            if g.ascending:  # out of order: the checked path words it
                lines.append(f"                if last{j} is not None and x <= last{j}:")
                lines.append("                    return None")
                lines.append(f"                last{j} = x")
            lines.append(f"            v{j}.append(x)")  # a method call CPython turns into an append in place
    body = "\n".join(lines)
    # Any lookup failure (missing key, non-object parent) or value a test cannot take: the checked path.
    values = ", ".join(results) + ("," if len(results) == 1 else "")
    source = (f"def extract(rec):\n    try:\n{body}\n        return ({values})\n"
              "    except (KeyError, TypeError, AttributeError, ValueError, OverflowError):\n        return None\n")
    ns: dict[str, Any] = {
        "__builtins__": {}, "type": type, "len": len, "int": int, "float": float, "bool": bool, "str": str,
        "list": list, "dict": dict, "KeyError": KeyError, "TypeError": TypeError, "AttributeError": AttributeError,
        "ValueError": ValueError, "OverflowError": OverflowError, "_EMPTY": _EMPTY, "_known_date": known_date,
        "_new_date": new_date, "_has_forbidden": has_forbidden, "_filled": _filled, **consts,
    }
    exec(compile(source, "<inputs>", "exec"), ns)
    return ns["extract"]  # type: ignore[no-any-return]
