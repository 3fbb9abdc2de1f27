"""Table parameters: a policy's ``table:`` blocks, checked into :class:`~policy_engine.language.expressions.Table`.

A table is keyed by one or two names the policy declares (an input, or for an interpolated table a
numeric input or metric). What a lookup may meet is what that key can take: the enum of a string
input, the whole numbers of an integer input's ``min``/``max``, the grades of the scale, True and
False. The check proves every such value has a cell (``lookup-key-not-covered`` otherwise), so a
lookup is never a silent null; a cell no key value can reach is a warning. An interpolated table
(one numeric key, ``interpolate: linear``) needs two points at least and clamps outside them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..diagnostics import did_you_mean
from ..language import expressions as ex

Report = Callable[..., None]  # (code, message, path, hint=None, severity="error")

_WHOLE = re.compile(r"^[-+]?\d+$")
_BOOLS = {"True": True, "true": True, "False": False, "false": False}


@dataclass(frozen=True)
class _Key:
    """One key of a table: its name, the kind of its values and their domain.

    ``kind`` is how a cell key written in YAML (always text there) is read: string, bool, integer
    or number; ``domain`` every value the key can take (None: any number, interpolated).
    """

    name: str
    kind: str
    domain: tuple[Any, ...] | None


def show_key(v: Any) -> str:
    """A key value as a reader writes it: 3 for the integer 3.0, text as it is."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _key_domain(name: str, path: tuple[str | int, ...], inputs: Mapping[str, Mapping[str, Any]],
                metrics: Sequence[str], grades: Sequence[str], interpolate: bool, report: Report) -> _Key | None:
    """What values key ``name`` can take, or a located error saying why no table can cover it."""
    inp = inputs.get(name)
    if inp is None:
        if name in metrics:
            if interpolate:
                return _Key(name, "number", None)
            report("lookup-key-unbounded", f"table key '{name}' is a metric: a metric declares no values it can take, "
                   "so no table can be proven to cover it", path,
                   "add interpolate: linear for a numeric metric, or key the table by an input")
            return None
        report("unknown-name", f"table key '{name}' is not an input or metric of this policy", path,
               did_you_mean(name, [*inputs, *metrics]))
        return None
    t = inp["type"]
    if "[*]" in str(inp["from"]) or t == "date":
        what = "a series" if "[*]" in str(inp["from"]) else "a date"
        report("lookup-key-type", f"table key '{name}' is {what}; a table is keyed by a string, integer, grade, "
               "boolean or (interpolated) number input", path)
        return None
    if interpolate:
        if t in ("number", "integer"):
            return _Key(name, "number", None)
        report("lookup-key-type", f"table key '{name}' is a {t} input; only a number can be interpolated", path,
               "remove interpolate to look the value up exactly")
        return None
    if t == "string":
        if inp.get("enum"):
            return _Key(name, "string", tuple(inp["enum"]))
        report("lookup-key-unbounded", f"table key '{name}' is a string input without an enum: the values it can "
               "take are not declared, so no table can be proven to cover it", path,
               f"declare enum: [...] on input '{name}'")
        return None
    if t == "grade":
        return _Key(name, "string", tuple(grades))
    if t == "boolean":
        return _Key(name, "bool", (True, False))
    lo, hi = inp.get("min"), inp.get("max")
    if t == "integer" and isinstance(lo, int | float) and isinstance(hi, int | float):
        first, last = math.ceil(lo), math.floor(hi)
        if last - first + 1 <= ex.MAX_TABLE_CELLS:
            return _Key(name, "integer", tuple(float(k) for k in range(first, last + 1)))
        report("lookup-key-unbounded", f"table key '{name}' takes {last - first + 1} whole numbers "
               f"({show_key(lo)} to {show_key(hi)}); a table holds at most {ex.MAX_TABLE_CELLS} cells", path,
               "narrow the input's min and max, or interpolate")
        return None
    why = "declare min and max on it" if t == "integer" else "add interpolate: linear"
    report("lookup-key-unbounded", f"table key '{name}' is a {t} input without declared min and max: the values it "
           "can take are not a list a table can cover", path, why)
    return None


def _key_value(key: _Key, text: str, path: tuple[str | int, ...], report: Report) -> tuple[bool, Any]:
    """A cell key as written (YAML keys are text here) read as a value of ``key``'s kind."""
    if key.kind == "string":
        return True, text
    if key.kind == "bool":
        if text in _BOOLS:
            return True, _BOOLS[text]
        report("lookup-key-type", f"'{text}' is not a value of boolean key '{key.name}'", path, "write true or false")
        return False, None
    if key.kind == "integer":
        if _WHOLE.match(text):
            return True, float(int(text))
        report("lookup-key-type", f"'{text}' is not a whole number; key '{key.name}' is an integer input", path)
        return False, None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        report("lookup-key-type", f"'{text}' is not a number; table key '{key.name}' interpolates over numbers", path)
        return False, None
    return True, value


def _cell_type(name: str, cells: list[tuple[tuple[str | int, ...], Any]], report: Report) -> str | None:
    """The one type of every cell: number, string or bool; a mix is an error at the first odd cell."""
    kinds: dict[str, tuple[str | int, ...]] = {}
    for at, v in cells:
        kind = ex.BOOL if isinstance(v, bool) else ex.NUMBER if isinstance(v, int | float) else \
            ex.STRING if isinstance(v, str) else "other"
        if kind == "other":
            report("type-mismatch", f"table '{name}' cell is not a number, text or boolean", at)
            return None
        kinds.setdefault(kind, at)
    if len(kinds) > 1:
        first, *rest = kinds
        report("type-mismatch", f"table '{name}' mixes value types: {first} and {', '.join(rest)}",
               kinds[rest[0]], "every cell of a table has one type")
        return None
    return next(iter(kinds), ex.NUMBER)


def _covered(name: str, key: _Key, present: Mapping[Any, tuple[str | int, ...]], where: tuple[str | int, ...],
             context: str, report: Report) -> None:
    """Every value ``key`` can take has a cell here; a cell no value reaches is a warning."""
    assert key.domain is not None
    missing = [show_key(v) for v in key.domain if v not in present]
    if missing:
        more = f" and {len(missing) - 12} more" if len(missing) > 12 else ""
        report("lookup-key-not-covered",
               f"table '{name}' has no cell for {key.name} = {', '.join(missing[:12])}{more}{context}", where,
               f"add the missing key(s) under values; '{key.name}' can take {len(key.domain)} value(s)")
    for v, at in present.items():
        if v not in key.domain:
            report("lookup-key-unreachable", f"table '{name}' key {show_key(v)} is never met: '{key.name}' "
                   f"takes {', '.join(show_key(d) for d in key.domain[:12])}"
                   f"{' ...' if len(key.domain) > 12 else ''}", at,
                   did_you_mean(show_key(v), [show_key(d) for d in key.domain]) or "remove it",
                   severity="warning")


def _interpolated(name: str, key: _Key, values: Mapping[str, Any], vpath: tuple[str | int, ...],
                  report: Report) -> ex.Table | None:
    """One numeric key: points sorted by key, each segment's slope computed once."""
    points: dict[float, tuple[Any, tuple[str | int, ...]]] = {}
    for text, v in values.items():
        ok, x = _key_value(key, text, (*vpath, text), report)
        if not ok:
            return None
        if x in points:
            report("duplicate-key", f"table '{name}' key {text} is the number {show_key(x)} again", (*vpath, text))
            return None
        points[x] = (v, (*vpath, text))
    kind = _cell_type(name, [(at, v) for v, at in points.values()], report)
    if kind is None:
        return None
    if kind != ex.NUMBER:
        report("type-mismatch", f"table '{name}' interpolates: every cell must be a number", vpath)
        return None
    if len(points) < 2:
        report("table-too-few-points", f"table '{name}' interpolates between points and has {len(points)}", vpath,
               "give two points at least, e.g. {0.5: 0.2, 1.0: 0.45}")
        return None
    xs = tuple(sorted(points))
    ys = tuple(float(points[x][0]) for x in xs)
    slopes = tuple((ys[j + 1] - ys[j]) / (xs[j + 1] - xs[j]) for j in range(len(xs) - 1))
    for j, slope in enumerate(slopes):
        if not math.isfinite(slope):  # two keys a few ulps apart: every value between them would be inf or NaN
            report("table-points-too-close", f"table '{name}' cannot interpolate between {show_key(xs[j])} and "
                   f"{show_key(xs[j + 1])}: they are so close that the slope between them overflows",
                   points[xs[j + 1]][1], "remove one of the two points, or move them apart")
            return None
    return ex.Table(name, (key.name,), ex.NUMBER, {x: y for x, y in zip(xs, ys, strict=True)}, True, xs, ys, slopes)


def build_table(name: str, spec: Mapping[str, Any], inputs: Mapping[str, Mapping[str, Any]], metrics: Sequence[str],
                grades: Sequence[str], report: Report) -> ex.Table | None:
    """Check one ``table:`` block and build its :class:`~policy_engine.language.expressions.Table` (None: reported)."""
    path: tuple[str | int, ...] = ("parameters", name, "table")
    interpolate = spec.get("interpolate") == "linear"
    names = [spec["key"]] if "key" in spec else list(spec["keys"])
    if interpolate and len(names) != 1:
        report("table-interpolate", f"table '{name}' has two keys; only a table with one numeric key interpolates",
               (*path, "interpolate"))
        return None
    keys: list[_Key] = []
    for i, k in enumerate(names):
        kpath = (*path, "key") if "key" in spec else (*path, "keys", i)
        key = _key_domain(k, kpath, inputs, metrics, grades, interpolate, report)
        if key is None:
            return None
        keys.append(key)
    if len(keys) == 2 and keys[0].name == keys[1].name:
        report("table-interpolate", f"table '{name}' names key '{keys[0].name}' twice", (*path, "keys", 1))
        return None
    vpath = (*path, "values")
    values: Mapping[str, Any] = spec["values"]
    if interpolate:
        return _interpolated(name, keys[0], values, vpath, report)
    return _exact(name, keys, values, vpath, report)


def _exact(name: str, keys: list[_Key], values: Mapping[str, Any], vpath: tuple[str | int, ...],
           report: Report) -> ex.Table | None:
    """A table looked up by equal keys, one or two; coverage proven for each key."""
    cells: dict[Any, Any] = {}
    written: list[tuple[tuple[str | int, ...], Any]] = []
    first: dict[Any, tuple[str | int, ...]] = {}
    ok = True
    for text, v in values.items():
        at = (*vpath, text)
        good, k1 = _key_value(keys[0], text, at, report)
        if not good:
            ok = False
            continue
        first[k1] = at
        if len(keys) == 1:
            if isinstance(v, dict):
                report("type-mismatch", f"table '{name}' has one key; this cell is a mapping", at,
                       "a two-key table declares keys: [a, b]")
                ok = False
                continue
            cells[k1] = v
            written.append((at, v))
            continue
        if not isinstance(v, dict):
            report("type-mismatch", f"table '{name}' has two keys: under {text} goes a mapping of "
                   f"'{keys[1].name}' values to cells", at)
            ok = False
            continue
        second: dict[Any, tuple[str | int, ...]] = {}
        for text2, v2 in v.items():
            at2 = (*at, text2)
            good, k2 = _key_value(keys[1], text2, at2, report)
            if not good:
                ok = False
                continue
            second[k2] = at2
            cells[(k1, k2)] = v2
            written.append((at2, v2))
        if k1 in (keys[0].domain or ()):
            _covered(name, keys[1], second, at, f" where {keys[0].name} = {show_key(k1)}", report)
    _covered(name, keys[0], first, vpath, "", report)
    if len(cells) > ex.MAX_TABLE_CELLS:
        report("table-too-large", f"table '{name}' has {len(cells)} cells; the limit is {ex.MAX_TABLE_CELLS}", vpath)
        return None
    kind = _cell_type(name, written, report)
    if not ok or kind is None:
        return None
    cells = {k: float(v) if kind == ex.NUMBER else v for k, v in cells.items()}
    return ex.Table(name, tuple(k.name for k in keys), kind, cells)
