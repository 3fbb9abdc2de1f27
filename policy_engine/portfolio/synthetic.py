"""Seeded synthetic portfolios, of any size: for any policy from its declared inputs, or the tuned reference one.

``generate_policy_columns`` draws, for each place in the record a policy reads, values
its input contract accepts: the declared type, range (``min``/``max``), allowed values
(``enum``, the grade scale), dates up to the as-of day, series of a given number of
periods (ascending series strictly increasing, period dates as quarter ends, oldest
first), optional fields sometimes missing. Every record it makes is one the policy
decides (a test holds it to that). Values are spread over their whole range rather
than modelled on a business, and a share of them sits on and next to each threshold
the policy compares an input with (``days > 90`` draws 89, 90, 91), so both sides of
a boundary occur in a modest sample.

A policy that declares scopes (a debtor with several exposures) gets nested records only (JSON
Lines): each debtor 1 to ``MAX_GRADED`` exposures (at most the scope's ``max``), each other
scope's elements 0 to ``MAX_CHILDREN`` under their parent, keys unique under the parent, the
elements of a scope with ``order_by`` in that order, no element repeating an earlier one's ``unique``
fields (it is not drawn: its parent has one element fewer), every field within its declared range or
enum (see :func:`scoped_clients`).

The flat (CSV) form uses the column conventions of ``policy-engine batch``: nested
fields as dotted paths (``a.b``) and series as wide columns ``root[0].x`` ...
``root[k].x``, oldest first. ``generate_columns`` / ``generate_clients`` /
``write_csv`` are the tuned portfolio of the reference record (``reference_portfolio``),
unchanged.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import itertools
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .quarters import quarter_ends

if TYPE_CHECKING:
    from ..policy.compiler import CompiledPolicy, InputSpec

MISSING_SHARE = 0.05  # share of an optional field left empty: missing data must show as such
SHORT_SHARE = 0.2  # share of clients with fewer periods than the most (trailing periods empty)
_SPAN = 1e6  # spread of a number with no declared bound on that side
_INTEGER_SPAN = 400  # spread of a whole number with no declared bound on that side (day counts, periods)
_DATE_SPAN_DAYS = 730  # dates fall in the two years up to the as-of day
BOUNDARY_SHARE = 0.3  # share of number values drawn on or next to a threshold the policy compares the input with
MAX_GRADED = 5  # most exposures of a generated debtor (fewer when the scope's max is smaller)
MAX_CHILDREN = 12  # most elements of any other scope under one parent (payments of an exposure, events)
CHUNK = 10_000  # debtors drawn together: their elements come from the chunk's own streams


# ------------------------------------------------------------ any policy


class _Place:
    """One place in the record and every input that reads it (their constraints all hold)."""

    def __init__(self, spec: InputSpec):
        self.specs = [spec]

    @property
    def first(self) -> InputSpec:
        return self.specs[0]

    def bound(self, which: str) -> float | None:
        values = [getattr(s, which) for s in self.specs if getattr(s, which) is not None]
        if not values:
            return None
        return max(values) if which == "min" else min(values)

    @property
    def required(self) -> bool:
        return any(s.required for s in self.specs)

    @property
    def ascending(self) -> bool:
        return any(s.ascending for s in self.specs)

    @property
    def kind(self) -> str:
        types = {s.type for s in self.specs}
        return "integer" if types == {"number", "integer"} else self.first.type

    @property
    def enum(self) -> tuple[str, ...] | None:
        sets = [set(s.enum) for s in self.specs if s.enum]
        if not sets:
            return None
        return tuple(v for v in self.first.enum or sorted(set.intersection(*sets)) if all(v in x for x in sets))


def thresholds(policy: CompiledPolicy) -> dict[str, list[float]]:
    """Per input, the numbers the policy compares it with: literals and parameters (every segment's value).

    Read from the checked trees: ``x > 90``, ``90 < x``, ``x < floor``, ``coalesce(x, 0) >= 2``,
    ``last(x) < 0``, and calls that compare themselves, such as ``streak(x, '<', 0)``. A number
    that is a count or a default (``sum_last(x, 4)``, ``coalesce(x, 0)``) is not a threshold.
    """
    inputs = {s.name for s in policy.inputs}
    if policy.scoped is not None:
        inputs |= {i.name for specs in policy.scoped.inputs.values() for i in specs}
    params = {n: [v for v in values.values() if isinstance(v, int | float) and not isinstance(v, bool)]
              for n, values in policy.parameters.items()}

    def numbers(node: ast.expr) -> list[float]:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
            return [float(node.value)]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return [-v for v in numbers(node.operand)]
        if isinstance(node, ast.Name) and node.id in params:
            return [float(v) for v in params[node.id]]
        return []

    def input_of(node: ast.expr) -> str | None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args \
                and node.func.id in ("coalesce", "last", "first", "abs"):
            node = node.args[0]
        return node.id if isinstance(node, ast.Name) and node.id in inputs else None

    found: dict[str, list[float]] = {}
    for ce in _checked_expressions(policy):
        for node in ast.walk(ce.tree):
            pairs: list[tuple[ast.expr, ast.expr]] = []
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                pairs = list(itertools.pairwise(operands))
                pairs += [(y, x) for x, y in pairs]
            elif isinstance(node, ast.Call) and any(isinstance(x, ast.Constant) and x.value in _OPERATORS
                                                    for x in node.args):
                pairs = [(x, y) for x in node.args for y in node.args if x is not y]
            for x, y in pairs:
                name = input_of(x)
                if name is not None:
                    found.setdefault(name, []).extend(numbers(y))
    return {k: sorted(set(v)) for k, v in found.items() if v}


_OPERATORS = ("<", "<=", ">", ">=", "==", "!=")


def _checked_expressions(policy: CompiledPolicy) -> list[Any]:
    """Every checked expression of the policy: metrics, factors, floors, warnings, actions (an exposure's too)."""
    trees = [m.expr for m in policy.metrics] + [f.expr for f in policy.factors] + [r.expr for r in policy.floors]
    trees += [w.expr for w in policy.warnings]
    if policy.scoped is not None:
        trees += [m.expr for m in policy.scoped.metrics] + [r.expr for r in policy.scoped.floors]
    for a in policy.actions:
        trees += [a.expr, *a.param_exprs.values(), *([a.restructuring.expr] if a.restructuring else [])]
    return trees


def _places(policy: CompiledPolicy) -> tuple[dict[str, _Place], dict[str, dict[str, _Place]]]:
    """Scalar places by path, and series places by list root then item path, in declaration order."""
    scalars: dict[str, _Place] = {}
    series: dict[str, dict[str, _Place]] = {}
    for spec in policy.inputs:
        if spec.series:
            group = series.setdefault(".".join(spec.root), {})
            key = ".".join(spec.item)
            if key in group:
                group[key].specs.append(spec)
            else:
                group[key] = _Place(spec)
        elif spec.source in scalars:
            scalars[spec.source].specs.append(spec)
        else:
            scalars[spec.source] = _Place(spec)
    return scalars, series


def _draw(place: _Place, n: int, rng: Any, day: dt.date, grades: tuple[str, ...], nulls: bool,
          edges: Mapping[str, list[float]]) -> Any:
    """``n`` values for one place: numbers as floats (NaN for a missing value), the rest as objects (None)."""
    import numpy as np

    lo, hi = place.bound("min"), place.bound("max")
    kind = place.kind
    if kind in ("number", "integer"):
        whole = kind == "integer"
        span = _INTEGER_SPAN if whole else _SPAN
        if lo is not None and hi is not None:
            a, b = lo, hi
        elif lo is not None:
            a, b = lo, lo + span
        elif hi is not None:
            a, b = hi - span, hi
        else:
            a, b = -span / 4, span
        if whole:
            a, b = int(np.ceil(a)), int(np.floor(b))
            values: Any = rng.integers(a, b + 1, n) if b >= a else np.full(n, a)
        else:
            # Half the values near the low end, where thresholds of ratios and shares tend to sit.
            u = rng.random(n)
            values = np.where(rng.random(n) < 0.5, a + (b - a) * u ** 3, a + (b - a) * u)
            values = np.round(values, 4)
        marks = sorted({m for s in place.specs for m in edges.get(s.name, ())})
        if marks:
            # On the threshold and one step either side: both outcomes of each comparison occur.
            step = 1.0 if whole else 1e-4
            near = np.array([m + d for m in marks for d in (-step, 0.0, step)])
            if whole:
                near = np.rint(near)
            values = np.where(rng.random(n) < BOUNDARY_SHARE, near[rng.integers(0, len(near), n)], values)
        out = np.clip(values, a, b).astype(float)
        if nulls and not place.required:
            out[rng.random(n) < MISSING_SHARE] = np.nan
        return out
    elif kind == "boolean":
        out = (rng.random(n) < 0.1).astype(object)  # flags mark exceptions: mostly false
    elif kind == "date":
        offsets = rng.integers(0, _DATE_SPAN_DAYS + 1, n).astype("timedelta64[D]")
        out = (np.datetime64(day.isoformat(), "D") - offsets).astype(str).astype(object)
    else:
        allowed = grades if kind == "grade" else place.enum
        choices = np.array(allowed if allowed else [f"{place.first.name}_{k}" for k in range(5)], dtype=object)
        out = choices[rng.integers(0, len(choices), n)]
    if nulls and not place.required:
        out[rng.random(n) < MISSING_SHARE] = None
    return out


def generate_policy_columns(policy: CompiledPolicy, n: int, seed: int = 7, as_of: str = "2025-06-30",
                            periods: int = 4) -> dict[str, Any]:
    """A portfolio for ``policy`` as flat columns in ``batch``'s conventions, vectorised (a million rows in seconds).

    Each place is drawn from its own stream of the seed, so adding an input to a policy does not
    change the values drawn for the others.
    """
    import numpy as np

    day = dt.date.fromisoformat(as_of)
    grades = policy.grade_ids
    edges = thresholds(policy)
    scalars, series = _places(policy)
    cols: dict[str, Any] = {
        "client_id": np.array([f"G{seed:03d}-{i:07d}" for i in range(n)], dtype=object),
        "as_of": np.full(n, as_of, dtype=object),
    }

    def stream(name: str) -> Any:
        # A stream per place, keyed by its path: stable when other places come and go.
        return np.random.default_rng([seed, *name.encode("utf-8")])

    for path, place in scalars.items():
        if path in ("client_id", "as_of"):
            continue  # the record's own identification: drawn above
        cols[path] = _draw(place, n, stream(path), day, grades, True, edges)
    for root, group in series.items():
        rng = stream(root + "[*]")
        count = np.where(rng.random(n) < SHORT_SHARE, rng.integers(1, periods + 1, n), periods)
        ends = quarter_ends(day, periods)
        anchor = next(iter(group))  # always filled, so no period in the middle is empty (a gap is an error)
        for item, place in group.items():
            prng = stream(f"{root}[*].{item}")
            for k in range(periods):
                name = f"{root}[{k}].{item}"
                if place.ascending and place.kind == "date":
                    column = np.full(n, ends[k], dtype=object)
                elif place.ascending:
                    step = np.floor(np.abs(_draw(place, n, prng, day, grades, False, {})) % 10) + 1
                    low = place.bound("min")
                    column = np.full(n, float(low if low is not None else 0)) if k == 0 \
                        else cols[f"{root}[{k - 1}].{item}"] + step
                else:
                    column = _draw(place, n, prng, day, grades, item != anchor, edges)
                cols[name] = column
            for k in range(periods):
                column = cols[f"{root}[{k}].{item}"]
                cols[f"{root}[{k}].{item}"] = np.where(count > k, column, np.nan if column.dtype == float else None)
    return cols


def policy_clients(policy: CompiledPolicy, n: int, seed: int = 7, as_of: str = "2025-06-30",
                   periods: int = 4) -> Iterator[dict[str, Any]]:
    """The same portfolio as nested client records (the JSON form ``decide`` reads); for a policy with
    scopes, each debtor with its exposures and their children (see :func:`scoped_clients`)."""
    if policy.scoped is not None:
        yield from scoped_clients(policy, n, seed, as_of, periods)
        return
    yield from _records(generate_policy_columns(policy, n, seed, as_of, periods), n)


def scoped_clients(policy: CompiledPolicy, n: int, seed: int = 7, as_of: str = "2025-06-30",
                   periods: int = 4) -> Iterator[dict[str, Any]]:
    """Debtors for a policy with scopes: the debtor's fields as for any policy, then each scope's elements.

    Drawn a chunk of ``CHUNK`` debtors at a time (the elements of a million debtors are never all in
    memory), each chunk's elements from streams of the seed, the chunk and the scope: the same seed
    and ``n`` give the same records.
    """
    import numpy as np

    part = policy.scoped
    assert part is not None
    day = dt.date.fromisoformat(as_of)
    debtors = _records(generate_policy_columns(policy, n, seed, as_of, periods), n)
    edges = thresholds(policy)
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        chunk = [next(debtors) for _ in range(size)]
        owners: dict[str | None, list[dict[str, Any]]] = {None: chunk}
        above: dict[int, tuple[str, dict[str, Any]]] = {}  # an element -> (its scope, its parent element)
        for s in _parents_first(part.scopes):
            parents = owners[s.parent]
            rng = np.random.default_rng([seed, start, *s.name.encode("utf-8")])
            least = max(s.min, 1 if s.name == part.graded else 0)
            most = max(least, min(s.max, MAX_GRADED if s.name == part.graded else MAX_CHILDREN))
            counts = rng.integers(least, most + 1, len(parents))
            elements = _elements(policy, s, int(counts.sum()), [seed, start], day, edges)
            _dates_in_order(policy, s, elements, np.repeat(np.arange(len(parents)), counts), parents, above, day)
            owners[s.name] = []  # in the order they are attached: a child scope is drawn under these
            at = 0
            for parent, count in zip(parents, counts, strict=True):
                mine = elements[at:at + int(count)]
                at += int(count)
                if s.order_by is not None:
                    mine.sort(key=lambda e, path=s.order_by: _get(e, path))
                if s.unique:  # a repeat of an earlier element's unique fields is not drawn
                    mine = _first_of_each(mine, s.unique)
                if s.key is not None:  # E1, E2, ... under each parent: the key first, as a reader expects it
                    mine = [_keyed(s.key, f"{s.name[:1].upper()}{j + 1}", e) for j, e in enumerate(mine)]
                _put(parent, s.list_field, mine)
                owners[s.name] += mine
                above.update((id(e), (s.parent, parent)) for e in mine)
        yield from chunk


def _parents_first(scopes: tuple[Any, ...]) -> list[Any]:
    """The scopes in an order where each comes after its parent (its elements are drawn under the parent's)."""
    out: list[Any] = []
    done: set[str | None] = {None}
    while len(out) < len(scopes):
        ready = [s for s in scopes if s not in out and s.parent in done]
        if not ready:  # a cycle: the compiler refused the policy already
            break
        out += ready
        done |= {s.name for s in ready}
    return out


def _elements(policy: CompiledPolicy, s: Any, m: int, seed: list[int], day: dt.date,
              edges: Mapping[str, list[float]]) -> list[dict[str, Any]]:
    """``m`` elements of scope ``s``: each input's place drawn within its contract (the key is set later)."""
    cols = _element_columns(policy, s, m, seed, day, edges)
    out = []
    for i in range(m):
        e: dict[str, Any] = {}
        for path, col in cols.items():
            _put(e, path, _py(col[i]))
        out.append(e)
    return out


def _dates_in_order(policy: CompiledPolicy, s: Any, elements: list[dict[str, Any]], parent: Any,
                    parents: list[dict[str, Any]], above: Mapping[int, tuple[str, dict[str, Any]]],
                    day: dt.date) -> None:
    """Each date drawn before the date its input may not precede (``not_before``) is set after it, in place,
    as :func:`_later_dates` sets the long tables' (``parent``: each element's parent among ``parents``)."""
    assert policy.scoped is not None
    for spec in _bounded_in_order(policy.scoped.inputs[s.name]):
        if not elements:
            continue
        scope, bound = policy.scoped.input_named(spec.not_before)
        source = bound.source
        bounds = []
        for e, p in zip(elements, parent, strict=True):
            holder: dict[str, Any] | None = e if scope == s.name else parents[p]
            if holder is not e and s.parent != scope:  # further up: from the parent element, ancestor by ancestor
                here = s.parent
                while holder is not None and here != scope:
                    here, holder = above.get(id(holder), (None, None))
            bounds.append(None if holder is None else _get(holder, source))
        values = _later_dates(_column([_get(e, spec.source) for e in elements]), _column(bounds), day,
                              spec.not_after_as_of)
        for e, v in zip(elements, values, strict=True):
            if _get(e, spec.source) is not None:
                _put(e, spec.source, v)


def _bounded_in_order(specs: tuple[Any, ...]) -> list[Any]:
    """The inputs of one scope with a ``not_before``, each after the one its bound is (a bound set later could
    move past a date already set after it); compile refuses a cycle."""
    todo = [spec for spec in specs if spec.not_before is not None]
    out: list[Any] = []
    while todo:
        waiting = {spec.name for spec in todo}
        ready = [spec for spec in todo if spec.not_before not in waiting]
        if not ready:  # a cycle: not compiled
            return out + todo
        out += ready
        todo = [spec for spec in todo if spec not in ready]
    return out


def _column(values: list[Any]) -> Any:
    import numpy as np

    return np.array(values, dtype=object)


def _later_dates(values: Any, bounds: Any, day: dt.date, until_day: bool) -> Any:
    """ISO dates (None: none) before their bound moved after it, spread as they were drawn: reflected over it
    (``2 * bound - value``), or, for a date not after ``day`` (``until_day``), wrapped into bound..day (a
    reflection capped at the day would pile a quarter of the dates on it)."""
    import numpy as np

    v = np.array(values, dtype="datetime64[D]")
    b = np.array(bounds, dtype="datetime64[D]")
    early = ~np.isnat(v) & ~np.isnat(b) & (v < b)
    if not early.any():
        return values
    out = values.copy()
    lo, gap = b[early], (b[early] - v[early]).astype(np.int64)
    if until_day:
        room = np.maximum((np.datetime64(day.isoformat(), "D") - lo).astype(np.int64), 0) + 1
        fixed = lo + (gap % room).astype("timedelta64[D]")
    else:
        fixed = lo + gap.astype("timedelta64[D]")
    out[early] = fixed.astype(str).astype(object)
    return out


def _first_of_each(elements: list[dict[str, Any]], fields: tuple[str, ...]) -> list[dict[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for e in elements:
        values = tuple(_get(e, f) for f in fields)
        if values not in seen:
            seen.add(values)
            out.append(e)
    return out


def _keyed(key: str, value: str, e: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    _put(out, key, value)
    if "." in key:  # a key inside a nested field: set in place, the order aside
        _put(e, key, value)
        return e
    return {**out, **e}


def _get(e: Mapping[str, Any], dotted: str) -> Any:
    cur: Any = e
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def write_policy_csv(policy: CompiledPolicy, path: str | Path, n: int, seed: int = 7, as_of: str = "2025-06-30",
                     periods: int = 4, progress: Callable[[int], None] | None = None) -> int:
    """The portfolio as one CSV in ``batch``'s column conventions; ``progress(k)`` is told every few thousand rows."""
    return _write_csv(generate_policy_columns(policy, n, seed, as_of, periods), path, n, progress)


# ------------------------------------------------------- the reference record


def generate_columns(n: int, seed: int = 7, as_of: str = "2025-06-30", quarters: int = 4) -> dict[str, Any]:
    """The tuned reference portfolio as flat columns (see ``reference_portfolio``)."""
    from .reference_portfolio import generate_columns as columns

    return columns(n, seed, as_of, quarters)


def generate_clients(n: int, seed: int = 7, as_of: str = "2025-06-30") -> Iterator[dict[str, Any]]:
    """The tuned reference portfolio as nested client records (the JSON form ``decide`` reads)."""
    yield from _records(generate_columns(n, seed, as_of), n)


def write_csv(path: str | Path, n: int, seed: int = 7, as_of: str = "2025-06-30",
              progress: Callable[[int], None] | None = None) -> int:
    """The tuned reference portfolio as one CSV; ``progress(k)`` is told every few thousand rows."""
    return _write_csv(generate_columns(n, seed, as_of), path, n, progress)


# --------------------------------------------------------------- shared forms


def _py(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating | float):
        f = float(v)
        if f != f:  # NaN in a column means "no value"
            return None
        return int(f) if f.is_integer() and abs(f) < 2**53 else f
    return v


def unflatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """A flat row (dotted paths, ``root[k].x``) back into a nested client record."""
    out: dict[str, Any] = {}
    lists: dict[str, dict[int, dict[str, Any]]] = {}  # list root -> period index -> its fields
    for key, value in row.items():
        head, bracket, rest = key.partition("[")
        if bracket and "]." in rest:
            idx, _, field = rest.partition("].")
            if idx.isdigit():
                lists.setdefault(head, {}).setdefault(int(idx), {})[field] = value
                continue
        _put(out, key, value)
    for root, periods in lists.items():
        # A period whose cells are all empty does not exist (wide tables pad shorter histories).
        _put(out, root, [_nest(periods[k]) for k in sorted(periods) if any(v is not None for v in periods[k].values())])
    return out


def _put(out: dict[str, Any], dotted: str, value: Any) -> None:
    cur = out
    parts = dotted.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur[parts[-1]] = value


def _nest(period: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in period.items():
        _put(out, k, v)
    return out


def _records(cols: Mapping[str, Any], n: int) -> Iterator[dict[str, Any]]:
    names = list(cols)
    for i in range(n):
        yield unflatten({k: _py(cols[k][i]) for k in names})


def _write_csv(cols: Mapping[str, Any], path: str | Path, n: int,
               progress: Callable[[int], None] | None = None) -> int:
    names = list(cols)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        for i in range(n):
            w.writerow([csv_cell(_py(cols[k][i])) for k in names])
            if progress is not None and (i + 1) % 1000 == 0:
                progress(1000)
    if progress is not None:
        progress(n % 1000)
    return n


def csv_cell(v: Any) -> str:
    """The text a CSV file holds for a value, as the batch reader reads it back: empty for null,
    true/false, shortest round-trip floats, ISO dates, JSON for anything nested."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int | str):
        return str(v)
    if isinstance(v, dt.date):
        return v.isoformat()
    return json.dumps(v, ensure_ascii=False)


# ------------------------------------------------------------------ long tables


def scoped_table_chunks(policy: CompiledPolicy, n: int, seed: int = 7, as_of: str = "2025-06-30",
                        periods: int = 4) -> Iterator[tuple[int, dict[str, dict[str, Any]]]]:
    """The debtors of :func:`scoped_clients` as long tables, ``CHUNK`` debtors at a time: (debtors, {table: columns}).

    The same draws as the nested records (the same streams, the same sort by ``order_by``, the same
    keys), column-wise: the same seed and ``n`` give the same debtors in either form.
    """
    import numpy as np

    from .long_tables import CLIENT_ID, DEBTORS, layout

    part = policy.scoped
    assert part is not None
    specs = layout(policy)
    day = dt.date.fromisoformat(as_of)
    edges = thresholds(policy)
    cols = generate_policy_columns(policy, n, seed, as_of, periods)
    debtor_columns = [c for c in specs[0].columns if c in cols]
    for start in range(0, n, CHUNK):
        size = min(CHUNK, n - start)
        sl = slice(start, start + size)
        out: dict[str, dict[str, Any]] = {DEBTORS: {c: cols[c][sl] for c in debtor_columns}}
        for t in specs:
            if t.series is not None:
                out[t.name] = _series_rows(cols, t.series, t.columns, sl, periods)
        ids = cols[CLIENT_ID][sl]
        # scope -> (its elements' debtor ids, their keys and their ancestors' by key column) in the order a child
        # scope is drawn under them: a row names its parent by every key from the debtor down
        owners: dict[str | None, tuple[Any, dict[str, Any]]] = {None: (ids, {})}
        drawn: dict[str, tuple[dict[str, Any], Any]] = {}  # scope -> its columns, each row's parent row
        for s in _parents_first(part.scopes):
            p_ids, p_keys = owners[s.parent]
            rng = np.random.default_rng([seed, start, *s.name.encode("utf-8")])
            least = max(s.min, 1 if s.name == part.graded else 0)
            most = max(least, min(s.max, MAX_GRADED if s.name == part.graded else MAX_CHILDREN))
            counts = rng.integers(least, most + 1, len(p_ids))
            m = int(counts.sum())
            columns = _element_columns(policy, s, m, [seed, start], day, edges)
            parent = np.repeat(np.arange(len(p_ids)), counts)
            for spec in _bounded_in_order(part.inputs[s.name]):  # as the nested records: set after its bound
                if spec.source in columns:
                    scope, bound = part.input_named(spec.not_before)
                    source = bound.source
                    rows, here = parent, s.parent
                    while here != scope and scope != s.name:
                        rows, here = drawn[here][1][rows], part.scope(here).parent
                    bounds = columns[source] if scope == s.name else drawn[scope][0][source][rows]
                    columns[spec.source] = _later_dates(columns[spec.source], bounds, day, spec.not_after_as_of)
            order = np.arange(m)
            if s.order_by is not None:
                order = np.lexsort((_sortable(columns[s.order_by]), parent))
            if s.unique:  # as the nested records: a repeat of an earlier element's unique fields is not drawn
                import pandas as pd

                first = ~pd.DataFrame({"parent": parent[order], **{f: columns[f][order] for f in s.unique}}
                                      ).duplicated(keep="first").to_numpy()
                order = order[first]
                counts = np.bincount(parent[order], minlength=len(p_ids))
                m = len(order)
            columns = {k: v[order] for k, v in columns.items()}
            parent = parent[order]
            starts = np.cumsum(counts) - counts
            pos = np.arange(m) - starts[parent]
            table: dict[str, Any] = {CLIENT_ID: p_ids[parent]}
            for column, values in p_keys.items():
                table[column] = values[parent]
            keys = {column: values[parent] for column, values in p_keys.items()}
            if s.key is not None:
                prefix = s.name[:1].upper()
                keys[s.key] = table[s.key] = np.array([f"{prefix}{k + 1}" for k in pos], dtype=object)
            table.update(columns)
            out[next(t.name for t in specs if t.scope == s.name)] = table
            owners[s.name] = (p_ids[parent], keys)
            drawn[s.name] = (columns, parent)
        yield size, out


def _series_rows(cols: Mapping[str, Any], root: str, items: tuple[str, ...], sl: slice, periods: int
                 ) -> dict[str, Any]:
    """A debtor series as rows (client id, then its items), each debtor's periods oldest first."""
    import numpy as np

    anchor = items[0]
    ids = cols["client_id"][sl]
    parts: dict[str, list[Any]] = {"client_id": [], **{i: [] for i in items}}
    debtor: list[Any] = []
    for k in range(periods):
        first = cols.get(f"{root}[{k}].{anchor}")
        if first is None:
            break
        first = first[sl]
        has = ~np.isnan(first) if first.dtype == float else np.not_equal(first, None)
        rows = np.flatnonzero(has)
        debtor.append(rows)
        parts["client_id"].append(ids[rows])
        for i in items:
            parts[i].append(cols[f"{root}[{k}].{i}"][sl][rows])
    if not debtor:
        return {k: np.zeros(0, dtype=object) for k in parts}
    order = np.argsort(np.concatenate(debtor), kind="stable")
    return {k: np.concatenate(v)[order] for k, v in parts.items()}


def _element_columns(policy: CompiledPolicy, s: Any, m: int, seed: list[int], day: dt.date,
                     edges: Mapping[str, list[float]]) -> dict[str, Any]:
    """``m`` elements of scope ``s`` as columns by field path: the draws of the nested generator and of the long
    tables are one, so a seed gives the same debtors in both forms."""
    import numpy as np

    assert policy.scoped is not None
    places: dict[str, _Place] = {}
    for spec in policy.scoped.inputs[s.name]:
        if spec.source == s.key:
            continue
        if spec.source in places:
            places[spec.source].specs.append(spec)
        else:
            places[spec.source] = _Place(spec)
    return {path: _draw(place, m, np.random.default_rng([*seed, *f"{s.name}.{path}".encode()]), day,
                        policy.grade_ids, True, edges) for path, place in places.items()}


def _sortable(values: Any) -> Any:
    """``order_by`` values as numbers that sort as the record's values do (dates are ISO text)."""
    import numpy as np

    if values.dtype == object:
        return np.array(values, dtype="datetime64[D]").astype(np.int64)
    return values


def write_long_tables(policy: CompiledPolicy, out: Path, n: int, seed: int = 7, as_of: str = "2025-06-30",
                      periods: int = 4, fmt: str = ".parquet", progress: Callable[[int], None] | None = None,
                      partitions: int = 0) -> dict[str, int]:
    """Write the long tables of ``n`` debtors to the folder ``out`` (``fmt`` .parquet or .csv), chunk by chunk:
    memory bounded by a chunk's elements (and the debtor columns). Returns the rows written per table.

    With ``partitions`` K, ``out`` is a dataset (``batch --engine dask``): K folders ``part-NNNNN`` of
    consecutive debtors, each a complete set of tables holding every row of its debtors; the same
    debtors, in the same order, as without it (the union of the partitions is the one folder).
    """
    import numpy as np
    import pandas as pd

    from .long_tables import CLIENT_ID, DEBTORS, layout

    if partitions > n:
        raise ValueError(f"{partitions} partitions of {n} debtors: a partition would hold none")
    out.mkdir(parents=True, exist_ok=True)
    types = _column_types(policy)
    writers: dict[Path, Any] = {}
    rows: dict[str, int] = {t.name: 0 for t in layout(policy)}
    start = 0
    try:
        for size, chunk in scoped_table_chunks(policy, n, seed, as_of, periods):
            ids = chunk[DEBTORS][CLIENT_ID]
            for name, columns in chunk.items():
                if not partitions:
                    _append_table(writers, out / f"{name}{fmt}", columns, types.get(name, {}))
                else:  # each row to its debtor's partition: debtor i of n goes to i * K // n
                    at = np.arange(size) if name == DEBTORS else \
                        pd.Index(ids, dtype=object).get_indexer(np.asarray(columns[CLIENT_ID], dtype=object))
                    part = (start + at) * partitions // n
                    for k in range(start * partitions // n, (start + size - 1) * partitions // n + 1):
                        keep = part == k
                        _append_table(writers, out / f"part-{k:05d}" / f"{name}{fmt}",
                                      {c: np.asarray(v)[keep] for c, v in columns.items()}, types.get(name, {}))
                rows[name] += len(next(iter(columns.values()))) if columns else 0
            start += size
            if progress is not None:
                progress(size)
    finally:
        for w in writers.values():
            if w is not None:
                w.close()
    return rows


def stale_entries(policy: CompiledPolicy, out: Path, fmt: str, partitions: int) -> list[str]:
    """What the folder ``out`` holds that :func:`write_long_tables` would not overwrite (a partition of an earlier,
    larger run, tables of the other format, a table beside partitions): each would be read with the new tables."""
    from .long_tables import layout

    if not out.is_dir():
        return []
    tables = {f"{t.name}{fmt}" for t in layout(policy)}
    written = {f"part-{k:05d}" for k in range(partitions)} if partitions else tables
    stale = sorted(e.name for e in out.iterdir() if e.name not in written)
    for part in sorted(written - tables) if partitions else ():
        if (out / part).is_dir():
            stale += sorted(f"{part}/{e.name}" for e in (out / part).iterdir() if e.name not in tables)
    return stale


def _append_table(writers: dict[Path, Any], path: Path, columns: Mapping[str, Any], types: Mapping[str, str]) -> None:
    """One chunk's rows of one table file (Parquet: a row group; CSV: lines, the header first)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        _append_parquet(writers, path, columns, types)
    else:
        _append_csv(path, columns, path not in writers)
        writers.setdefault(path, None)


def _column_types(policy: CompiledPolicy) -> dict[str, dict[str, str]]:
    """Per table, each column's declared type (key columns are text)."""
    from .long_tables import layout

    part = policy.scoped
    assert part is not None
    out: dict[str, dict[str, str]] = {}
    for t in layout(policy):
        if t.scope is not None:
            specs = part.inputs[t.scope]
            out[t.name] = {s.source: s.type for s in specs}
        elif t.series is not None:
            out[t.name] = {".".join(s.item): s.type for s in policy.inputs if s.series and ".".join(s.root) == t.series}
        else:
            out[t.name] = {".".join(s.root): s.type for s in policy.inputs if not s.series}
            out[t.name]["as_of"] = "date"
    return out


_ARROW = {"number": "float64", "integer": "float64", "boolean": "bool", "date": "date32", "string": "string",
          "grade": "string"}


def _append_parquet(writers: dict[Path, Any], path: Path, columns: Mapping[str, Any],
                    types: Mapping[str, str]) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrays, fields = [], []
    for c, values in columns.items():
        kind = _ARROW[types.get(c, "string")]
        if kind == "date32":
            arr = pa.array(np.array(values, dtype="datetime64[D]"), pa.date32(), from_pandas=True)
        elif kind == "float64":
            arr = pa.array(np.asarray(values, dtype=float), pa.float64(), from_pandas=True)
        else:
            arr = pa.array(list(values) if isinstance(values, np.ndarray) and values.dtype == object else values,
                           getattr(pa, kind if kind != "bool" else "bool_")(), from_pandas=True)
        arrays.append(arr)
        fields.append(pa.field(c, arr.type))
    table = pa.Table.from_arrays(arrays, schema=pa.schema(fields))
    if path not in writers:
        writers[path] = pq.ParquetWriter(path, table.schema)
    writers[path].write_table(table)


def _append_csv(path: Path, columns: Mapping[str, Any], header: bool) -> None:
    names = list(columns)
    with open(path, "w" if header else "a", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if header:
            w.writerow(names)
        for row in zip(*(columns[c] for c in names), strict=True):
            w.writerow([csv_cell(_py(v)) for v in row])
