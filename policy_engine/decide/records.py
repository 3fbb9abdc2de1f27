"""Flattened tables <-> client records: the one record builder of batch, the store and the fuzzers.

A row of a table (CSV, Parquet, Excel, a decision-store segment) and a nested client record are
two forms of one client; the decide stage owns the conversion so that the decision store (which
rebuilds a stored row) and the portfolio (which reads tables) share it without importing each other.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import operator
import re
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_of(v: Any) -> dt.date | None:
    """The date a cell holds: ISO text, a date, or a date-time at midnight (an Excel date cell)."""
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.date() if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0) else None
    if isinstance(v, dt.date):
        return v
    if isinstance(v, np.datetime64):
        return date_of(pd.Timestamp(v))
    if isinstance(v, str) and _ISO_DATE.match(v):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            return None
    return None


_PART = re.compile(r"^(?P<key>[^\[\]]+)(?P<index>(?:\[\d+\])+)$")


def column_path(name: Any) -> tuple[str | int, ...]:
    """A column name as a path in the client record: ``financials[2].revenue`` -> ('financials', 2, 'revenue')."""
    out: list[str | int] = []
    for part in str(name).split("."):
        m = _PART.match(part)
        if m is None:
            out.append(part)
        else:
            out.append(m["key"])
            out += [int(k) for k in re.findall(r"\d+", m["index"])]
    return tuple(out)


def flatten(record: dict[str, Any], shapes: bool = False) -> dict[str, Any]:
    """A nested client record as one flat row: dotted paths, list items as ``financials[k].x``.

    An item that is not an object is the cell ``financials[k]``; an empty or null item is no
    cell (a period that does not exist, as in a wide table). With ``shapes``, every shape
    survives, so that the column checks see what ``decide`` sees (JSON Lines): an empty object,
    or one of nulls only, is the cell ``{}`` (``loan.balance: {}`` is refused), an empty list the
    cell ``[]`` (``financials: []`` is a list with no period). Without, they are no cells: the
    row a table (CSV, Parquet, Excel) holds of the record.
    """
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict) and (value or not prefix):
            before = len(out)
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
            if shapes and prefix and all(v is None for v in itertools.islice(out.values(), before, None)):
                for k in list(itertools.islice(out, before, None)):  # an object of nulls is still an object
                    del out[k]
                out[prefix] = {}
        elif isinstance(value, list) and value:
            before = len(out)
            for i, item in enumerate(value):
                if item is not None and item != {}:
                    walk(f"{prefix}[{i}]", item)
                    if out.get(f"{prefix}[{i}]") == {}:  # an item of nulls only: a period that does not exist
                        del out[f"{prefix}[{i}]"]
            if shapes and len(out) == before:  # a list of empty items only: still a list
                out[prefix] = []
        elif shapes or (value != {} and value != []):
            out[prefix] = value

    walk("", record)
    return out


def _nan_as_none(arr: np.ndarray) -> np.ndarray:
    """A float column as Python floats, None where it is NaN."""
    cells = arr.astype(object)
    cells[np.isnan(arr)] = None
    return cells


def _record_builder(columns: list[str], lists: Iterable[str] = ()) -> Callable[[tuple[Any, ...]], dict[str, Any]]:
    """The nesting of :func:`row_records`, planned once: every row of a table nests its columns the same way.

    ``lists`` are the lists of periods the policy reads (``financials``): such a list is in every
    row that holds no object there (maybe empty), as a wide table's row with no period cells has
    no periods; any other list is there when it has items. Never fails on a table's shape: a
    column that is a value in one row and an object in another (``notes`` and ``notes.x``) gives
    each row what it holds (a row holding both is refused by the checks before it is decided).
    """
    trie: dict[str, Any] = {"leaf": None, "keys": {}, "items": {}}
    for i, c in enumerate(columns):
        node = trie
        for part in column_path(c):
            node = (node["items"] if isinstance(part, int) else node["keys"]).setdefault(
                part, {"leaf": None, "keys": {}, "items": {}})
        node["leaf"] = i
    build = _plan(trie, "", frozenset(lists))
    return lambda row: build(row) or {}


def _plan(node: dict[str, Any], path: str, lists: frozenset[str]) -> Callable[[tuple[Any, ...]], Any]:
    leaf, keys, items = node["leaf"], node["keys"], node["items"]
    if not keys and not items:
        return operator.itemgetter(leaf) if leaf is not None else _none
    inner: Callable[[tuple[Any, ...]], Any] = _none
    if keys:  # keys in sorted order, nulls and empty objects left out, as canonical JSON has them
        names = tuple(sorted(keys))
        parts = tuple(_plan(keys[k], f"{path}.{k}" if path else k, lists) for k in names)
        if len(names) > 1 and all(not keys[k]["keys"] and not keys[k]["items"] for k in names):
            get = operator.itemgetter(*(keys[k]["leaf"] for k in names))

            def as_object(row: tuple[Any, ...]) -> Any:
                return {k: v for k, v in zip(names, get(row), strict=True) if v is not None and v != {}}
        else:
            def as_object(row: tuple[Any, ...]) -> Any:
                return {k: v for k, part in zip(names, parts, strict=True)
                        if (v := part(row)) is not None and v != {}}
        inner = as_object
    if items:  # a missing or empty item is {}; empty items at the end are dropped
        periods = tuple(_plan(items[k], f"{path}[{k}]", lists) if k in items else _none
                        for k in range(max(items) + 1))
        empty = [] if path in lists else None

        def as_list(row: tuple[Any, ...]) -> Any:
            out = [{} if (v := p(row)) is None else v for p in periods]
            while out and out[-1] == {}:
                out.pop()
            return out or empty

        if keys:  # a list in some rows, an object in others: whichever this row holds
            as_dict = inner

            def either(row: tuple[Any, ...]) -> Any:
                return as_dict(row) or as_list(row)

            inner = either
        else:
            inner = as_list
    if leaf is None:
        return inner
    get_leaf = operator.itemgetter(leaf)
    rest = inner
    return lambda row: v if (v := get_leaf(row)) is not None else rest(row)


def _none(row: tuple[Any, ...]) -> None:
    return None


def _clean(v: Any, text: bool = False) -> Any:
    """A cell as the JSON value it stands for (text cells typed the way JSON would carry them)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dt.datetime):  # a date cell of Excel or a time stamp column (pd.Timestamp is one too)
        day = date_of(v)
        return v.isoformat() if day is None else day.isoformat()
    if text and isinstance(v, str):
        if v == "":
            return None
        low = v.lower()
        if low in ("true", "false"):
            return low == "true"
        try:
            return int(v)
        except ValueError:
            pass
        try:
            f = float(v)
            return f if math.isfinite(f) else v
        except ValueError:
            return v
    return v
