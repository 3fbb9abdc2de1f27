"""Client records as a table: column conventions, checks and the vector evaluator's input columns.

Column conventions (one row per client):

* ``client_id`` (required), ``as_of`` (optional, YYYY-MM-DD);
* every other field under its dotted path in the client record: ``industry``, ``loan.days_past_due``,
  ``events.litigation``;
* quarterly financials either wide, ``financials[0].revenue`` ... ``financials[k].revenue`` (index
  0 is the oldest; a period exists when any of its cells has a value), or as a second long
  table with ``client_id`` and one row per period (``--financials FILE``; periods in file order,
  oldest first, or sorted by ``period_end`` when present).

Text formats (CSV) carry text: numbers and dates are parsed, booleans are ``true``/``false``.
Typed formats (JSON Lines, Parquet, Excel) must carry the right types: a number sent as text is
an error there, as it is for ``decide``. Every bad cell becomes a problem with its row and field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .compiler import CompiledPolicy, InputSpec
from .inputs import MAX_ABS_NUMBER, MAX_STRING
from .vector import _EPOCH_ORDINAL, Col

_SERIES_COL = re.compile(r"^(?P<root>[a-z_][a-z0-9_.]*)\[(?P<k>\d+)\]\.(?P<field>.+)$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class Problem:
    row: int  # 0-based position in the input table
    path: str
    message: str
    code: str = "bad-field"


@dataclass
class Prepared:
    """What the vector evaluator needs, for the rows that passed every check."""

    rows: np.ndarray  # positions (0-based) of the accepted rows in the input table
    client_ids: np.ndarray
    as_of_days: np.ndarray
    inputs: dict[str, Col]
    segments: np.ndarray | None
    problems: list[Problem] = field(default_factory=list)
    rejected: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


def _describe(v: Any) -> str:
    if isinstance(v, bool | np.bool_):
        return f"boolean {str(bool(v)).lower()}"
    if isinstance(v, str):
        return f"string '{v[:30]}'"
    if isinstance(v, int | float | np.integer | np.floating):
        return f"number {v}"
    return type(v).__name__


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def _column(df: pd.DataFrame, name: str) -> pd.Series | None:
    return df[name] if name in df.columns else None


def _objects(col: pd.Series) -> np.ndarray:
    return col.to_numpy(dtype=object, na_value=None)


class _Checker:
    def __init__(self, n: int, text: bool, grades: Sequence[str]):
        self.n = n
        self.text = text
        self.grades = tuple(grades)
        self.problems: list[Problem] = []
        self.bad = np.zeros(n, bool)

    def flag(self, rows: np.ndarray, path: str, messages: Sequence[str], code: str = "bad-field") -> None:
        for i, msg in zip(rows, messages, strict=True):
            self.problems.append(Problem(int(i), path, msg, code))
        self.bad[rows] = True

    def _flag_mask(self, mask: np.ndarray, path: str, message: Any, code: str = "bad-field") -> None:
        rows = np.flatnonzero(mask)
        if len(rows):
            self.flag(rows, path, [message(i) if callable(message) else message for i in rows], code)

    def values(self, spec: InputSpec, col: pd.Series | None, path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(data, valid, missing) for one column of ``spec``'s type; bad cells are flagged and not valid."""
        n = self.n
        t = spec.type
        if col is None:
            empty = np.zeros(n, np.int64 if t == "date" else bool if t == "boolean" else
                             object if t in ("string", "grade") else float)
            return empty, np.zeros(n, bool), np.ones(n, bool)
        kind = col.dtype.kind
        if t in ("number", "integer") and kind in "iuf":
            data = col.to_numpy(dtype=float, na_value=np.nan)
            missing = np.isnan(data)
            if kind == "f":
                # In a typed float column a NaN is "no value" (Parquet/pandas null); +-inf is an error.
                inf = np.isinf(data)
                self._flag_mask(inf, path, lambda i: f"{data[i]} is not a finite number")
            else:
                inf = np.zeros(n, bool)
            ok = ~missing & ~inf
            return self._check_numbers(spec, data, ok, missing, path)
        if t == "boolean" and kind == "b":
            data = col.to_numpy(dtype=bool)
            return data, np.ones(n, bool), np.zeros(n, bool)
        if self.text and t != "string" and t != "grade":
            return self._text_values(spec, col, path)
        raw = _objects(col)
        missing = np.fromiter((_is_missing(v) or (self.text and isinstance(v, str) and v == "") for v in raw), bool, n)
        present = ~missing
        if t in ("number", "integer"):
            data = np.full(n, np.nan)
            bad = np.zeros(n, bool)
            messages: dict[int, str] = {}
            for i in np.flatnonzero(present):
                v = raw[i]
                if self.text and isinstance(v, str):
                    try:
                        num = float(v)
                    except ValueError:
                        bad[i] = True
                        messages[i] = f"expected a number, found string '{v[:30]}'"
                        continue
                    v = num
                elif isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
                    bad[i] = True
                    messages[i] = f"expected a number, found {_describe(v)}"
                    if isinstance(v, str):
                        messages[i] += " (send numbers without quotes)"
                    continue
                v = float(v)
                if not math.isfinite(v):
                    bad[i] = True
                    messages[i] = f"{raw[i]} is not a finite number"
                    continue
                data[i] = v
            self._flag_mask(bad, path, lambda i: messages[i])
            return self._check_numbers(spec, data, present & ~bad, missing, path)
        if t == "boolean":
            data = np.zeros(n, bool)
            bad = np.zeros(n, bool)
            for i in np.flatnonzero(present):
                v = raw[i]
                if isinstance(v, bool | np.bool_):
                    data[i] = bool(v)
                elif self.text and isinstance(v, str) and v.lower() in ("true", "false"):
                    data[i] = v.lower() == "true"
                else:
                    bad[i] = True
            self._flag_mask(bad, path, lambda i: f"expected true or false, found {_describe(raw[i])}")
            return data, present & ~bad, missing
        if t in ("string", "grade"):
            allowed = self.grades if t == "grade" else spec.enum
            is_str = np.fromiter((isinstance(v, str) for v in raw), bool, n)
            not_str = present & ~is_str
            self._flag_mask(not_str, path, lambda i: f"expected a string, found {_describe(raw[i])}")
            ok = present & is_str
            too_long = ok & np.fromiter((isinstance(v, str) and len(v) > MAX_STRING for v in raw), bool, n)
            self._flag_mask(too_long, path, f"string longer than {MAX_STRING} characters")
            ok &= ~too_long
            if allowed:
                unknown = ok & ~np.isin(raw, np.array(allowed, dtype=object))
                self._flag_mask(unknown, path,
                                lambda i: f"unknown value '{raw[i]}' (expected one of: {', '.join(allowed)})")
                ok &= ~unknown
            data = raw.copy()
            data[~ok] = None
            return data, ok, missing
        # date
        data = np.zeros(n, np.int64)
        bad = np.zeros(n, bool)
        for i in np.flatnonzero(present):
            d = _to_date(raw[i])
            if d is None:
                bad[i] = True
            else:
                data[i] = d.toordinal() - _EPOCH_ORDINAL
        self._flag_mask(bad, path, lambda i: f"expected a date YYYY-MM-DD, found {_describe(raw[i])}")
        return data, present & ~bad, missing

    def _text_values(self, spec: InputSpec, col: pd.Series, path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSV cells are text: parse a whole column at once, flag the cells that do not parse."""
        text = col.astype(object).where(col.notna(), "").astype(str)
        missing = (text == "").to_numpy()
        present = ~missing
        raw = text.to_numpy(dtype=object)
        if spec.type in ("number", "integer"):
            data = pd.to_numeric(text.where(present, None), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            lowered = text.str.strip().str.lower()
            # 'nan', 'inf' and friends parse as numbers but are not values a client can have.
            special = lowered.isin(["nan", "-nan", "+nan", "inf", "+inf", "-inf", "infinity", "+infinity",
                                    "-infinity"]).to_numpy()
            unparsed = present & (np.isnan(data) | special)
            self._flag_mask(unparsed & ~special, path, lambda i: f"expected a number, found string '{raw[i][:30]}'")
            self._flag_mask(special, path, lambda i: f"'{raw[i]}' is not a finite number")
            return self._check_numbers(spec, data, present & ~unparsed, missing, path)
        if spec.type == "boolean":
            lowered = text.str.lower()
            data = (lowered == "true").to_numpy()
            bad = present & ~lowered.isin(["true", "false"]).to_numpy()
            self._flag_mask(bad, path, lambda i: f"expected true or false, found string '{raw[i][:30]}'")
            return data, present & ~bad, missing
        # date
        shaped = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}").to_numpy(dtype=bool, na_value=False)
        parsed = pd.to_datetime(text.where(present & shaped, None), format="%Y-%m-%d", errors="coerce")
        ok = present & shaped & parsed.notna().to_numpy()
        days = np.zeros(self.n, np.int64)
        days[ok] = (parsed[ok].to_numpy(dtype="datetime64[D]").astype(np.int64))
        self._flag_mask(present & ~ok, path, lambda i: f"expected a date YYYY-MM-DD, found string '{raw[i][:30]}'")
        return days, ok, missing

    def _check_numbers(self, spec: InputSpec, data: np.ndarray, ok: np.ndarray, missing: np.ndarray,
                       path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with np.errstate(invalid="ignore"):
            if spec.type == "integer":
                frac = ok & (np.floor(data) != data)
                self._flag_mask(frac, path, lambda i: f"expected a whole number, found {data[i]}")
                ok = ok & ~frac
            big = ok & (np.abs(data) > MAX_ABS_NUMBER)
            self._flag_mask(big, path, lambda i: f"{data[i]} is out of range (|x| <= {MAX_ABS_NUMBER:g})")
            ok = ok & ~big
            if spec.min is not None:
                low = ok & (data < spec.min)
                what = "negative" if spec.min == 0 else f"below {spec.min:g}"
                self._flag_mask(low, path, lambda i: f"{_num(data[i])} is {what}; it must be >= {spec.min:g}")
                ok = ok & ~low
            if spec.max is not None:
                high = ok & (data > spec.max)
                self._flag_mask(high, path, lambda i: f"{_num(data[i])} is above the maximum {spec.max:g}")
                ok = ok & ~high
        return data, ok, missing


def _num(v: float) -> str:
    return str(int(v)) if v.is_integer() else str(v)


def _to_date(v: Any) -> dt.date | None:
    if isinstance(v, pd.Timestamp | dt.datetime):
        return v.date() if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0) else None
    if isinstance(v, dt.date):
        return v
    if isinstance(v, np.datetime64):
        return _to_date(pd.Timestamp(v))
    if isinstance(v, str) and _ISO_DATE.match(v):
        try:
            return dt.date.fromisoformat(v)
        except ValueError:
            return None
    return None


def series_width(df: pd.DataFrame, root: str) -> int:
    """Number of wide period columns ``root[k].*`` in the table."""
    width = 0
    for c in df.columns:
        m = _SERIES_COL.match(str(c))
        if m and m["root"] == root:
            width = max(width, int(m["k"]) + 1)
    return width


def prepare(policy: CompiledPolicy, df: pd.DataFrame, text: bool, as_of: str | None = None) -> Prepared:
    """Check every cell the policy reads; the accepted rows as vector-evaluator columns."""
    n = len(df)
    chk = _Checker(n, text, policy.grade_ids)
    # client_id: required, unique
    id_col = _column(df, "client_id")
    ids = _objects(id_col) if id_col is not None else np.full(n, None, dtype=object)
    id_missing = np.fromiter((_is_missing(v) or (isinstance(v, str) and v == "") for v in ids), bool, n)
    chk._flag_mask(id_missing, "client_id", "required field 'client_id' is missing", "missing-field")
    ids_text = np.array([None if m else str(v) for v, m in zip(ids, id_missing, strict=True)], dtype=object)
    long_ids = np.fromiter((v is not None and len(v) > 100 for v in ids_text), bool, n)
    chk._flag_mask(long_ids, "client_id", "client_id is longer than 100 characters")
    seen: dict[str, int] = {}
    dup_rows, dup_msgs = [], []
    for i, v in enumerate(ids_text):
        if v is None:
            continue
        if v in seen:
            dup_rows.append(i)
            dup_msgs.append(f"duplicate client_id '{v}' (first at row {seen[v] + 1})")
        else:
            seen[v] = i
    if dup_rows:
        chk.flag(np.array(dup_rows), "client_id", dup_msgs, "duplicate-id")
    # as_of: the option wins, else the column, else today
    if as_of is not None:
        day = dt.date.fromisoformat(as_of)
        as_of_days = np.full(n, day.toordinal() - _EPOCH_ORDINAL, np.int64)
    else:
        today = dt.date.today().toordinal() - _EPOCH_ORDINAL
        spec = InputSpec("as_of", "as_of", ("as_of",), (), False, "date", False, None, None, None, None)
        data, valid, _ = chk.values(spec, _column(df, "as_of"), "as_of")
        as_of_days = np.where(valid, data, today)
    inputs: dict[str, Col] = {}
    for spec in policy.inputs:
        if not spec.series:
            path = ".".join(spec.root)
            data, valid, missing = chk.values(spec, _column(df, path), path)
            if spec.required:
                chk._flag_mask(missing, path, f"required field '{path}' is missing", "missing-field")
            inputs[spec.name] = Col(data, valid)
            continue
        root = ".".join(spec.root)
        item = ".".join(spec.item)
        width = series_width(df, root)
        periods_present = np.zeros((n, width), bool)
        for k in range(width):
            prefix = f"{root}[{k}]."
            cols = [c for c in df.columns if str(c).startswith(prefix)]
            for c in cols:
                col = df[c]
                if col.dtype.kind in "iufb":
                    has = ~np.isnan(col.to_numpy(dtype=float, na_value=np.nan))
                elif text:
                    has = (col.fillna("").astype(str) != "").to_numpy()
                else:
                    has = np.fromiter((not _is_missing(v) and not (text and v == "") for v in _objects(col)), bool, n)
                periods_present[:, k] |= has
        dtype = np.int64 if spec.type == "date" else float
        data2 = np.zeros((n, width), dtype=dtype)
        valid2 = np.zeros((n, width), bool)
        for k in range(width):
            path = f"{root}[{k}].{item}"
            d, v, _ = chk.values(spec, _column(df, path), path)
            data2[:, k] = d
            valid2[:, k] = v
        # A client with fewer periods than the widest: shift its periods to the right (latest last).
        lengths = periods_present.sum(axis=1)
        # Cells of a period that does not exist are not "missing values" of that period.

        gaps = periods_present & ~np.maximum.accumulate(periods_present[:, ::-1], axis=1)[:, ::-1]
        if gaps.any():
            rows = np.flatnonzero(gaps.any(axis=1))
            chk.flag(rows, root, ["periods must be consecutive from index 0 (a period column group is empty "
                                  "between two filled ones)"] * len(rows))
        present = np.zeros((n, width), bool)
        aligned_d = np.zeros((n, width), dtype=dtype)
        aligned_v = np.zeros((n, width), bool)
        for L in np.unique(lengths):
            L = int(L)
            rows = lengths == L
            if L == 0:
                continue
            present[rows, width - L:] = True
            aligned_d[rows, width - L:] = data2[rows, :L]
            aligned_v[rows, width - L:] = valid2[rows, :L]
        if spec.required:
            no_list = lengths == 0
            # A required series needs its list; an empty list is allowed in JSON, so only flag when
            # the table has no period columns at all.
            if width == 0 and n:
                chk.flag(np.flatnonzero(no_list), root, [f"required list '{root}' is missing"] * int(no_list.sum()),
                         "missing-field")
        inputs[spec.name] = Col(aligned_d, aligned_v, present)
    keep = ~chk.bad
    rows = np.flatnonzero(keep)
    subset = {k: Col(c.data[keep], c.valid[keep], None if c.present is None else c.present[keep])
              for k, c in inputs.items()}
    seg = None
    if policy.segment_by is not None:
        seg = subset[policy.segment_by].data
    return Prepared(rows=rows, client_ids=ids_text[keep], as_of_days=as_of_days[keep], inputs=subset,
                    segments=seg, problems=chk.problems, rejected=np.flatnonzero(chk.bad))
