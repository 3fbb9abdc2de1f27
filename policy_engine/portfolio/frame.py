"""Client records as a table: column conventions, checks and the vector evaluator's input columns.

Column conventions (one row per client):

* ``client_id`` (required), ``as_of`` (optional, YYYY-MM-DD);
* every other field under its dotted path in the client record: ``industry``, ``loan.days_past_due``,
  ``events.key_event``;
* quarterly financials either wide, ``financials[0].revenue`` ... ``financials[k].revenue`` (index
  0 is the oldest; a period exists when any of its cells has a value), or as a second long
  table with ``client_id`` and one row per period (``--financials FILE``; periods in file order,
  oldest first, or sorted by ``period_end`` when present). An ``ascending`` series is checked
  after that, as ``decide`` checks it: periods out of order or repeated reject the row.

Text formats (CSV) carry text: numbers and dates are parsed, booleans are ``true``/``false``.
Typed formats (JSON Lines, Parquet, Excel) must carry the right types: a number sent as text is
an error there, as it is for ``decide``. Every bad cell becomes a problem with its row and field.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..decide.inputs import (
    MAX_ABS_NUMBER,
    MAX_STRING,
    after_as_of,
    describe,
    gap_message,
    named_value,
    non_finite,
    order_problem,
    unknown_value,
)
from ..decide.records import column_path, date_of
from ..diagnostics import Diagnostic, InputError
from ..policy.compiler import CompiledPolicy, InputSpec
from ..safetext import (
    ARROW_ID_FORBIDDEN,
    ID_FORBIDDEN_PATTERN,
    SPACE_CHARS,
    has_forbidden,
    id_problem,
    repeated_id,
    text_problem,
)
from .vector import _EPOCH_ORDINAL, Col, TextCodes

# A NaN a Parquet file stores as a value (Spark writes them; pandas writes a missing float as a null) is no
# number, as 'NaN' in CSV or JSON is not. Reading marks it with its own bits (still a NaN to every
# computation), so the number check below refuses it while a null read as NaN stays no value.
_STORED_NAN_BITS = 0x7FF8DEAD00000000
STORED_NAN = float(np.array([_STORED_NAN_BITS], np.uint64).view(np.float64)[0])
STORED_NAN_MESSAGE = "NaN is not a finite number (a missing value is a null)"


def decimals_as_floats(table: Any) -> Any:
    """An Arrow table with its decimal columns (a warehouse's type for money: DECIMAL(18,4)) as float64, the numbers
    the engine computes with; read as Python Decimals, every row was refused ('found Decimal').

    Through the decimal's text: each becomes the float nearest it, as the same amount read from JSON or CSV does.
    Arrow's direct cast is a bit off for about a third of DECIMAL(18,4) values (281052398.2356 read as
    ...23560005), which moved a 10% share to 0.10000000000000002 and a debtor's grade with it.
    """
    import pyarrow as pa

    for i, f in enumerate(table.schema):
        if pa.types.is_decimal(f.type):
            table = table.set_column(i, f.name, table.column(i).cast(pa.string()).cast(pa.float64()))
    return table


def decimals_in_frame(frame: pd.DataFrame, path: Any) -> pd.DataFrame:
    """``frame`` as pandas read it from the Parquet file ``path``, its decimal columns as floats (see
    :func:`decimals_as_floats`); the schema says which, so no cell is looked at when there is none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    decimal = [f.name for f in pq.read_schema(path) if pa.types.is_decimal(f.type) and f.name in frame.columns]
    for name in decimal:
        frame[name] = frame[name].astype(float)
    return frame


def refuse_bad_text(table: Any, path: Any) -> None:
    """Refuse a Parquet table whose text column holds bytes that are not UTF-8 (Parquet does not check what a
    writer declares text), naming the column and its first rows: converting such a cell failed deep in Arrow, an
    internal error (exit 5) for the whole run."""
    import pyarrow as pa

    from ..diagnostics import Diagnostic, InputError

    for name, column in zip(table.column_names, table.columns, strict=True):
        kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            continue
        try:
            column.validate(full=True)
        except pa.ArrowInvalid:
            rows = ", ".join(str(r + 1) for r in _not_utf8(column)[:5])
            raise InputError([Diagnostic(
                "unreadable", f"column '{name}' holds text that is not UTF-8 (row {rows}): its table cannot be read",
                file=str(path), hint="write the column as UTF-8 text (the bytes may be GBK or Latin-1 declared as "
                "text)")]) from None


def read_parquet_frame(path: Any, columns: Any = None) -> pd.DataFrame:
    """A Parquet file as pandas reads it (``pd.read_parquet``), its text checked as UTF-8 on the way
    (:func:`refuse_bad_text`): read once, as Arrow, then converted."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns, use_pandas_metadata=True)
    refuse_bad_text(table, path)
    return table.to_pandas()


def _not_utf8(column: Any) -> list[int]:
    """The rows (from 0) of a text column, plain or dictionary-encoded, whose bytes are not UTF-8."""
    import pyarrow as pa

    def bad(values: Any) -> set[int]:
        out = set()
        for i, raw in enumerate(values.cast(pa.large_binary()).to_pylist()):
            try:
                if raw is not None:
                    raw.decode("utf-8")
            except UnicodeDecodeError:
                out.add(i)
        return out

    array = column.combine_chunks()
    if pa.types.is_dictionary(array.type):
        wrong = bad(array.dictionary)
        return [r for r, i in enumerate(array.indices.to_pylist()) if i in wrong]
    return sorted(bad(array))


def mark_stored_nans(table: Any) -> Any:
    """An Arrow table with each NaN stored as a value in a float column marked (see ``STORED_NAN``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        if not pa.types.is_floating(f.type):
            continue
        col = table.column(i)
        nan = pc.is_nan(col).fill_null(False)
        if not pc.any(nan).as_py():
            continue
        col = col.cast(pa.float64())
        table = table.set_column(i, f.name, pc.if_else(nan, pa.scalar(STORED_NAN, pa.float64()), col))
    return table


def mark_stored_nans_in_frame(frame: pd.DataFrame, path: Any) -> pd.DataFrame:
    """``frame`` as pandas read it from the Parquet file ``path``, each NaN the file stores as a value marked:
    only the float columns with a NaN are read again, and only to find where (decimal columns become floats)."""
    frame = decimals_in_frame(frame, path)
    floats = [c for c in frame.columns if frame[c].dtype.kind == "f" and bool(frame[c].isna().any())]
    if not floats:
        return frame
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    stored = pq.read_table(path, columns=floats)
    for name in floats:
        nan = np.asarray(pc.is_nan(stored.column(name)).fill_null(False).to_numpy(), bool)
        if nan.any():
            values = frame[name].to_numpy(dtype=np.float64, copy=True)
            values[nan] = STORED_NAN
            frame[name] = values
    return frame


_SERIES_COL = re.compile(r"^(?P<root>[a-z_][a-z0-9_.]*)\[(?P<k>\d+)\](?:$|[.\[])")  # root[k] and below
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
    if isinstance(v, dict | list):  # a JSON record's object or list in a cell: worded as decide words it
        return describe(v)
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


def _objects(col: pd.Series) -> tuple[np.ndarray, TextCodes | None]:
    """Cells as Python objects (None for missing); text columns through their distinct values.

    Portfolio columns repeat a few values (industries, grades, quarter ends), so hashing to codes
    and materialising only the distinct strings is much cheaper than one object per cell. The
    codes come back too: checks against an enum and the decisions table reuse them.
    """
    if isinstance(col.dtype, pd.StringDtype):
        codes, uniques = pd.factorize(col, use_na_sentinel=True)
        distinct = uniques.tolist()
        table = np.array([*distinct, None], dtype=object)
        return table[codes], (codes, distinct)  # code -1 (missing) picks the trailing None
    return col.to_numpy(dtype=object, na_value=None), None


# A typed format (JSON Lines, Parquet, Excel) holding a number as text: in JSON the quotes, elsewhere the column type.
_TEXT_NOT_NUMBER = (" (a number stored as text: write it without quotes in JSON, as a numeric column in Parquet "
                    "or Excel)")


class _Cells:
    """Cells of a column, each read when asked for: a whole column as Python objects costs more
    than the checks that rarely need one."""

    def __init__(self, col: pd.Series):
        self._col = col

    def __getitem__(self, i: int) -> Any:
        return self._col.iat[int(i)]


Checked = tuple[np.ndarray, np.ndarray, np.ndarray]  # (data, valid, missing) of one column


class _Checker:
    def __init__(self, n: int, text: bool, grades: Sequence[str]):
        self.n = n
        self.text = text
        self.grades = tuple(grades)
        self.problems: list[Problem] = []
        self.bad = np.zeros(n, bool)
        self.codes: dict[str, TextCodes] = {}  # text columns' codes, by path

    def flag(self, rows: np.ndarray, path: str, messages: Sequence[str], code: str = "bad-field") -> None:
        for i, msg in zip(rows, messages, strict=True):
            self.problems.append(Problem(int(i), path, msg, code))
        self.bad[rows] = True

    def _flag_mask(self, mask: np.ndarray, path: str, message: Any, code: str = "bad-field") -> None:
        rows = np.flatnonzero(mask)
        if len(rows):
            self.flag(rows, path, [message(i) if callable(message) else message for i in rows], code)

    def values(self, spec: InputSpec, col: pd.Series | None, path: str) -> Checked:
        """(data, valid, missing) for one column of ``spec``'s type; bad cells are flagged and not valid.

        Which check reads the column depends on the type the policy declares and the column's own
        dtype: a typed column of the right type, CSV text, a text column of a typed format, or cells
        as Python objects (JSON Lines, Excel). Each is one small function of the tables below.
        """
        family = _FAMILY[spec.type]
        if col is None:
            return self._absent(family)
        typed = _TYPED.get((family, _dtype_shape(col)))
        if typed is not None:
            return typed(self, spec, col, path)
        if self.text and family != "string":
            return self._text_values(spec, col, path)
        if isinstance(col.dtype, pd.StringDtype):  # every value a str or missing
            return self._string_column(spec, col, path)
        return self._object_column(spec, col, path)

    def _absent(self, family: str) -> Checked:
        """A column the table does not have: every cell missing."""
        dtype = {"date": np.int64, "boolean": bool, "string": object}.get(family, float)
        return np.zeros(self.n, dtype), np.zeros(self.n, bool), np.ones(self.n, bool)

    def _typed_numbers(self, spec: InputSpec, col: pd.Series, path: str) -> Checked:
        return self._number_array(spec, col.to_numpy(dtype=float, na_value=np.nan), col.dtype.kind == "f", path)

    def _number_array(self, spec: InputSpec, data: np.ndarray, floats: bool, path: str) -> Checked:
        """A typed column's numbers (NaN where null): the checks of a number, whatever held the column."""
        finite = np.isfinite(data)
        if finite.all():  # the common case, in one pass: nothing missing, nothing infinite
            return self._check_numbers(spec, data, finite, np.zeros(len(data), bool), path)
        missing = np.isnan(data)
        if floats:
            # In a typed float column a NaN is "no value" (Parquet/pandas null), unless the file stored it as a
            # value (marked at reading); +-inf is an error.
            stored = missing & (data.view(np.uint64) == _STORED_NAN_BITS) if data.dtype == np.float64 else None
            if stored is not None and stored.any():
                self._flag_mask(stored, path, STORED_NAN_MESSAGE)
                missing = missing & ~stored  # a bad value, named once: not also a required field missing
            inf = ~finite & ~np.isnan(data)
            if inf.any():
                self._flag_mask(inf, path, lambda i: non_finite(float(data[i])))
        return self._check_numbers(spec, data, finite, missing, path)

    def _typed_booleans(self, spec: InputSpec, col: pd.Series, path: str) -> Checked:
        missing = col.isna().to_numpy()  # a nullable boolean column (Parquet with nulls) has missing cells
        return col.to_numpy(dtype=bool, na_value=False), ~missing, missing

    def _typed_dates(self, spec: InputSpec, col: pd.Series, path: str) -> Checked:
        missing = col.isna().to_numpy()
        if isinstance(col.dtype, pd.DatetimeTZDtype):  # an instant somewhere, not a calendar day
            self._flag_mask(~missing, path, "expected a date YYYY-MM-DD, found a time stamp with a time zone")
            return np.zeros(self.n, np.int64), np.zeros(self.n, bool), missing
        # In the column's own unit: Parquet dates arrive as datetime64[ms], and 9999-12-31 (an open end)
        # does not fit nanoseconds (it would wrap to another day).
        stamps = col.to_numpy()
        days = stamps.astype("datetime64[D]")
        whole = (stamps == days.astype(stamps.dtype)) | missing
        self._flag_mask(~whole, path, "expected a date YYYY-MM-DD, found a time stamp")
        return np.where(missing, 0, days.astype(np.int64)), ~missing & whole, missing

    def arrow_values(self, spec: InputSpec, arr: Any, path: str) -> Checked | None:
        """(data, valid, missing) straight from an Arrow column that already holds the declared type
        (Parquet numbers, dates, booleans); None when another check must read it (text, time stamps, ...).

        The type guarantees what the pandas path checks cell by cell: a date32 is a whole day, an
        int or a boolean cannot be NaN or infinite, and a column without nulls has nothing missing.
        """
        import pyarrow as pa
        import pyarrow.compute as pc

        family = _FAMILY[spec.type]
        kind = arr.type
        if family == "number" and (pa.types.is_floating(kind) or pa.types.is_integer(kind)):
            data = np.asarray(arr.to_numpy(), dtype=float) if arr.null_count == 0 else \
                np.asarray(pc.fill_null(arr.cast(pa.float64(), safe=False), np.nan).to_numpy(), dtype=float)
            return self._number_array(spec, data, pa.types.is_floating(kind) or arr.null_count > 0, path)
        if family == "date" and pa.types.is_date32(kind):
            days = np.asarray(arr.cast(pa.int32()).fill_null(0).to_numpy(), dtype=np.int64)
        elif family == "boolean" and pa.types.is_boolean(kind):
            days = np.asarray(arr.fill_null(False).to_numpy(), dtype=bool)
        else:
            return None
        missing = np.zeros(self.n, bool) if arr.null_count == 0 else np.asarray(arr.is_null().to_numpy(), bool)
        return days, ~missing, missing

    def _string_column(self, spec: InputSpec, col: pd.Series, path: str) -> Checked:
        """A text column of a typed format (or CSV text where strings belong)."""
        missing = col.isna().to_numpy()
        if self.text:
            missing = missing | (col.fillna("") == "").to_numpy()
        raw, codes = _objects(col)
        if codes is not None:
            self.codes[path] = codes
        family = _FAMILY[spec.type]
        if family == "string":
            return self._strings(spec, raw, ~missing, missing, path)
        if family == "date":
            return self._text_values(spec, col, path)
        # A typed format with a text column where numbers or booleans belong.
        expected = "a number" if family == "number" else "true or false"
        hint = _TEXT_NOT_NUMBER if family == "number" else ""
        self._flag_mask(~missing, path, lambda i: f"expected {expected}, found string '{raw[i][:30]}'{hint}")
        empty = np.full(self.n, np.nan) if family == "number" else np.zeros(self.n, bool)
        return empty, np.zeros(self.n, bool), missing

    def _object_column(self, spec: InputSpec, col: pd.Series, path: str) -> Checked:
        """Cells as Python objects (JSON Lines, Excel, a mixed column): each checked by the type's reader."""
        raw, _ = _objects(col)
        missing = col.isna().to_numpy()
        if self.text:
            missing = missing | np.fromiter((isinstance(v, str) and v == "" for v in raw), bool, self.n)
        return _OBJECT_READERS[_FAMILY[spec.type]](self, spec, raw, missing, path)

    def _object_number(self, cell: Any) -> float | str:
        """A cell's number, or the message saying why it is not one."""
        v = cell
        if self.text and isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                return f"expected a number, found string '{cell[:30]}'"
        elif isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
            return f"expected a number, found {_describe(v)}" + (_TEXT_NOT_NUMBER if isinstance(v, str) else "")
        number = float(v)
        return number if math.isfinite(number) else non_finite(number)

    def _object_numbers(self, spec: InputSpec, raw: np.ndarray, missing: np.ndarray, path: str) -> Checked:
        present = ~missing
        data = np.full(self.n, np.nan)
        bad = np.zeros(self.n, bool)
        messages: dict[int, str] = {}
        for i in np.flatnonzero(present):
            v = self._object_number(raw[i])
            if isinstance(v, str):
                bad[i] = True
                messages[i] = v
            else:
                data[i] = v
        self._flag_mask(bad, path, lambda i: messages[i])
        return self._check_numbers(spec, data, present & ~bad, missing, path)

    def _object_booleans(self, spec: InputSpec, raw: np.ndarray, missing: np.ndarray, path: str) -> Checked:
        present = ~missing
        data = np.zeros(self.n, bool)
        bad = np.zeros(self.n, bool)
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

    def _object_strings(self, spec: InputSpec, raw: np.ndarray, missing: np.ndarray, path: str) -> Checked:
        present = ~missing
        is_str = np.fromiter((isinstance(v, str) for v in raw), bool, self.n)
        self._flag_mask(present & ~is_str, path, lambda i: f"expected a string, found {_describe(raw[i])}")
        return self._strings(spec, raw, present & is_str, missing, path)

    def _object_dates(self, spec: InputSpec, raw: np.ndarray, missing: np.ndarray, path: str) -> Checked:
        present = ~missing
        data = np.zeros(self.n, np.int64)
        bad = np.zeros(self.n, bool)
        for i in np.flatnonzero(present):
            d = date_of(raw[i])
            if d is None:
                bad[i] = True
            else:
                data[i] = d.toordinal() - _EPOCH_ORDINAL
        self._flag_mask(bad, path, lambda i: f"expected a date YYYY-MM-DD, found {_describe(raw[i])}")
        return data, present & ~bad, missing

    def _strings(self, spec: InputSpec, raw: np.ndarray, ok: np.ndarray, missing: np.ndarray,
                 path: str) -> Checked:
        allowed = self.grades if spec.type == "grade" else spec.enum
        coded = self.codes.get(path)
        if coded is not None and not allowed:  # judge each distinct value once (ids repeat in long tables)
            distinct = coded[1]
            lengths = np.array([len(v) if isinstance(v, str) else 0 for v in distinct] + [0], np.int64)[coded[0]]
            forbidden = np.array([isinstance(v, str) and has_forbidden(v) for v in distinct] + [False])[coded[0]]
        elif raw.dtype == object and not allowed:
            lengths = np.fromiter((len(v) if isinstance(v, str) else 0 for v in raw), np.int64, self.n)
            forbidden = np.fromiter((isinstance(v, str) and has_forbidden(v) for v in raw), bool, self.n)
        else:
            lengths = np.zeros(self.n, np.int64)
            forbidden = np.zeros(self.n, bool)
        too_long = ok & (lengths > MAX_STRING)
        self._flag_mask(too_long, path, f"string longer than {MAX_STRING} characters")
        ok = ok & ~too_long
        if not allowed:  # an enum refuses any other text already
            hazard = ok & forbidden
            self._flag_mask(hazard, path, lambda i: f"{text_problem(raw[i])} (text holds no control characters)")
            ok = ok & ~hazard
        if allowed:
            codes = self.codes.get(path)
            if codes is not None:  # judge each distinct value once
                known = set(allowed)
                unknown = ok & ~np.array([u in known for u in codes[1]] + [False])[codes[0]]
            else:
                unknown = ok & ~np.isin(raw, np.array(allowed, dtype=object))
            self._flag_mask(unknown, path, lambda i: _unknown_value(raw[i], allowed, spec))
            ok = ok & ~unknown
        data = raw.copy()
        data[~ok] = None
        return data, ok, missing

    def _text_values(self, spec: InputSpec, col: pd.Series, path: str) -> Checked:
        """CSV cells are text: parse a whole column at once, flag the cells that do not parse."""
        if not isinstance(col.dtype, pd.StringDtype):
            col = col.astype(object).where(col.notna(), None).astype("str")
        text = col.fillna("")  # Arrow-backed strings: the operations below stay vectorised
        missing = (text == "").to_numpy()
        present = ~missing
        raw = _Cells(text)  # read only for the cells an error message quotes
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
        # date: parse each distinct text once (a column of quarter ends has a handful)
        codes, uniques = pd.factorize(text)
        parsed = [date_of(u) for u in uniques.tolist()]
        lookup_ok = np.array([d is not None for d in parsed] + [False], bool)
        lookup_days = np.array([0 if d is None else d.toordinal() - _EPOCH_ORDINAL for d in parsed] + [0], np.int64)
        ok = present & lookup_ok[codes]
        days = np.where(ok, lookup_days[codes], 0)
        self._flag_mask(present & ~ok, path, lambda i: f"expected a date YYYY-MM-DD, found string '{raw[i][:30]}'")
        return days, ok, missing

    def _check_numbers(self, spec: InputSpec, data: np.ndarray, ok: np.ndarray, missing: np.ndarray,
                       path: str) -> Checked:
        # -0.0 is 0, as decide reads it (the input hash writes both as 0). Only a column with a sign bit set
        # can hold one: a pass of booleans, not a copy of every number (a column of amounts has no negative).
        if np.signbit(data).any():
            data = data + 0.0
        if self._in_range(spec, data, ok):  # the common case: one pass, no cell to flag
            return data, ok, missing
        with np.errstate(invalid="ignore"):
            if spec.type == "integer":
                frac = ok & (np.floor(data) != data)
                self._flag_mask(frac, path, lambda i: f"expected a whole number, found {data[i]}")
                ok = ok & ~frac
            big = ok & (np.abs(data) > MAX_ABS_NUMBER)
            self._flag_mask(big, path, lambda i: f"{data[i]} is out of range (|x| <= {MAX_ABS_NUMBER:g})"
                            if math.isfinite(data[i]) else non_finite(float(data[i])))  # a CSV cell 1e400
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



    @staticmethod
    def _in_range(spec: InputSpec, data: np.ndarray, ok: np.ndarray) -> bool:
        """No valid cell breaks a rule of :meth:`_check_numbers` (whole, magnitude, min, max)."""
        with np.errstate(invalid="ignore"):
            low = float(np.min(data, where=ok, initial=np.inf))
            high = float(np.max(data, where=ok, initial=-np.inf))
            if low > high:  # no valid cell
                return True
            if max(-low, high) > MAX_ABS_NUMBER or (spec.min is not None and low < spec.min) or \
                    (spec.max is not None and high > spec.max):
                return False
            return spec.type != "integer" or bool(np.all(np.floor(data) == data, where=ok))

# The declared type's family: an integer is checked as a number (then for being whole), a grade as a string.
_FAMILY = {"number": "number", "integer": "number", "boolean": "boolean", "date": "date", "string": "string",
           "grade": "string"}

# (family, the column's dtype) -> the check of a typed column that already holds the right type.
_TYPED: dict[tuple[str, str], Callable[[_Checker, InputSpec, pd.Series, str], Checked]] = {
    ("number", "numbers"): _Checker._typed_numbers,
    ("boolean", "booleans"): _Checker._typed_booleans,
    ("date", "datetimes"): _Checker._typed_dates,
}

# family -> the check of cells read as Python objects.
_OBJECT_READERS: dict[str, Callable[[_Checker, InputSpec, np.ndarray, np.ndarray, str], Checked]] = {
    "number": _Checker._object_numbers,
    "boolean": _Checker._object_booleans,
    "string": _Checker._object_strings,
    "date": _Checker._object_dates,
}


def _unknown_value(v: str, allowed: Sequence[str], spec: InputSpec) -> str:
    """A reject line has no hint of its own: a value sent as its words says which value they name."""
    named = named_value(v, spec)
    return f"{unknown_value(v, allowed)}; {named}" if named else unknown_value(v, allowed)


def _dtype_shape(col: pd.Series) -> str:
    """What a column's dtype holds, as the table of typed checks names it."""
    return {"i": "numbers", "u": "numbers", "f": "numbers", "b": "booleans", "M": "datetimes"}.get(
        col.dtype.kind, "other")


def _num(v: float) -> str:
    return str(int(v)) if v.is_integer() else str(v)


def series_width(df: pd.DataFrame, root: str) -> int:
    """Number of wide period columns ``root[k].*`` in the table."""
    width = 0
    for c in df.columns:
        m = _SERIES_COL.match(str(c))
        if m and m["root"] == root:
            width = max(width, int(m["k"]) + 1)
    return width


def _flag_gaps(chk: Any, present: np.ndarray, root: str) -> None:
    """A period missing before a later one that exists: the row cannot be aligned latest-last (once per list)."""
    if present.shape[1] < 2:
        return
    exists_from = np.maximum.accumulate(present[:, ::-1], axis=1)[:, ::-1]  # any period at index >= k
    gaps = ~present[:, :-1] & exists_from[:, 1:]
    rows = np.flatnonzero(gaps.any(axis=1))
    if len(rows):
        first = gaps[rows].argmax(axis=1)
        chk.flag(rows, root, [gap_message(root, int(k)) for k in first])


def _flag_disorder(chk: Any, spec: InputSpec, data: np.ndarray, valid: np.ndarray) -> None:
    """The first value of a row not after the one before it (nulls skipped), as ``decide`` reports it."""
    n, width = data.shape
    if width < 2:
        return
    latest = np.maximum.accumulate(np.where(valid, np.arange(width), -1), axis=1)  # last value at or before k
    prev_at = np.full((n, width), -1, np.int64)
    prev_at[:, 1:] = latest[:, :-1]
    prev = np.take_along_axis(data, np.maximum(prev_at, 0), axis=1)
    bad = valid & (prev_at >= 0) & (data <= prev)

    def py(x: Any) -> Any:
        return _day(x) if spec.type == "date" else float(x)

    _flag_first(chk, bad, lambda r, k: order_problem(spec, k, py(data[r, k]), int(prev_at[r, k]), py(prev[r, k])))


def _flag_after_as_of(chk: Any, spec: InputSpec, data: np.ndarray, valid: np.ndarray, as_of_days: np.ndarray,
                      known: np.ndarray) -> None:
    """The first date of a row after its as-of day (``data`` is days, one column per period), as ``decide`` words it."""
    late = valid & (data > as_of_days[:, None]) & known[:, None]
    _flag_first(chk, late, lambda r, k: after_as_of(spec, _day(data[r, k]), _day(as_of_days[r]),
                                                    k if spec.series else None))


def _day(days: Any) -> dt.date:
    return dt.date.fromordinal(int(days) + _EPOCH_ORDINAL)


def _flag_first(chk: Any, bad: np.ndarray, problem: Any) -> None:
    """Flag each row at its first bad period: ``problem(row, period) -> (field path, message)``."""
    rows = np.flatnonzero(bad.any(axis=1))
    if not len(rows):
        return
    first = bad[rows].argmax(axis=1)
    for k in np.unique(first):
        at = rows[first == k]
        found = [problem(int(r), int(k)) for r in at]
        chk.flag(at, found[0][0], [m for _, m in found])


def _rows(a: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The kept rows; a series table stays column-major (a boolean index alone would give row-major)."""
    return np.asfortranarray(a[keep]) if a.ndim == 2 else a[keep]


def _periods_present(df: pd.DataFrame, root: str, width: int, n: int, text: bool) -> np.ndarray:
    """A period exists for a row when any of its cells has a value."""
    present = np.zeros((n, width), bool, order="F")
    for k in range(width):
        prefix = f"{root}[{k}]"
        for c in df.columns:
            name = str(c)
            if name.startswith(prefix) and (name == prefix or name[len(prefix)] in ".["):  # a cell of it, or itself
                col = df[c]
                has = ~col.isna().to_numpy()
                if text:
                    has = has & (col.fillna("").astype(str) != "").to_numpy()
                present[:, k] |= has
    return present


def path_text(path: Sequence[str | int]) -> str:
    """The field path of decide's messages: ``financials[2].revenue``."""
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else f".{p}" if text else p
    return text


@dataclass
class _Node:
    """What the policy's input contract expects at one place of a client record."""

    kind: str  # object | list (of periods) | leaf
    spec: InputSpec | None = None
    children: dict[str, _Node] = field(default_factory=dict)
    period: _Node | None = None  # of a list: what each period is


_EXPECTED = {"number": "a number", "integer": "a number", "boolean": "true or false", "string": "a string",
             "grade": "a string", "date": "a date YYYY-MM-DD"}


def _contract(policy: CompiledPolicy, as_of_read: bool) -> _Node:
    """The tree of objects, lists and values the policy reads (client_id and as_of included)."""
    tree = _Node("object")
    specs = [InputSpec("client_id", "client_id", ("client_id",), (), False, "string", True, None, None, None, None)]
    if as_of_read:
        specs.append(InputSpec("as_of", "as_of", ("as_of",), (), False, "date", False, None, None, None, None))
    for spec in (*specs, *policy.inputs):
        node = tree
        for k, part in enumerate(spec.root):
            last = k == len(spec.root) - 1
            node = node.children.setdefault(part, _Node(("list" if spec.series else "leaf") if last else "object",
                                                        spec))
        if spec.series:
            node.period = node.period or _Node("object")
            node = node.period
            for k, part in enumerate(spec.item):
                node = node.children.setdefault(part, _Node("leaf" if k == len(spec.item) - 1 else "object", spec))
    return tree


def _shape_problem(tree: _Node, path: tuple[str | int, ...]) -> tuple[str, str, Any, str] | None:
    """Where a column sits against the contract: (field path, expected shape, what a cell must be, code).

    ``what`` is ``"cell"`` when each non-empty cell must be checked (an object or list the policy
    walks through), or the shape the column itself proves wrong (a field below a value, an index
    below an object). None: a value the policy reads (checked by type), or a field it does not read.
    """
    node = tree
    for k, part in enumerate(path):
        at = path_text(path[:k])
        if node.kind == "object":
            if isinstance(part, int):
                return at, "an object", "a list", "wrong-type"
            child = node.children.get(part)
            if child is None:
                return None
            node = child
        elif node.kind == "list":
            if not isinstance(part, int):
                return at, "a list of periods", "an object", "wrong-type"
            assert node.period is not None
            node = node.period
        else:
            assert node.spec is not None
            return (at, _EXPECTED[node.spec.type], "a list" if isinstance(part, int) else "an object", "bad-field")
    if node.kind == "leaf" or path == ():
        return None
    return path_text(path), "an object" if node.kind == "object" else "a list of periods", "cell", "wrong-type"


def leaf_types(policy: CompiledPolicy, columns: Sequence[Any]) -> dict[str, str]:
    """Column -> the type the policy reads it as, for the columns that are values the policy reads.

    A CSV cell is text; the record a row stands for types it by this (``'007'`` read as a string
    stays the string '007', not the number 7), as ``decide`` would have been sent it.
    """
    tree = _contract(policy, True)
    out = {}
    for c in columns:
        node: _Node | None = tree
        for part in column_path(c):
            if node is None:
                break
            if node.kind == "object" and isinstance(part, str):
                node = node.children.get(part)
            elif node.kind == "list" and isinstance(part, int):
                node = node.period
            else:
                node = None
        if node is not None and node.kind == "leaf" and node.spec is not None:
            out[str(c)] = node.spec.type
    return out


def _flag_shapes(chk: _Checker, policy: CompiledPolicy, df: pd.DataFrame, as_of_read: bool) -> dict[str, np.ndarray]:
    """Cells whose shape is not what the policy's input contract expects, flagged as ``decide`` flags them.

    A flattened record holds its objects and lists as columns: ``loan`` holding ``"yes"`` where
    the policy reads ``loan.balance``, ``loan.balance.x`` under a number,
    ``financials[2]`` holding a number, ``financials`` holding text. Each is the problem ``decide``
    reports for the record, at the same path. Returns, by path, the rows whose object or list is
    not one (nothing below it is then missing: ``decide`` stops there too).
    """
    tree = _contract(policy, as_of_read)
    flagged: dict[str, np.ndarray] = {}
    for c in df.columns:
        found = _shape_problem(tree, column_path(c))
        if found is None:
            continue
        at, expected, what, code = found
        col = df[c]
        has = _has_value(col, chk.text)
        if what == "cell":  # an object or a list the policy walks through: an empty one is one
            ok = dict if expected == "an object" else list
            cells = [_clean_cell(v) for v in col.to_numpy(dtype=object)]
            rows = [i for i in np.flatnonzero(has) if chk.text or not (type(cells[i]) is ok and not
                                                                      (ok is list and cells[i]))]
            messages = [f"expected {expected}, found {describe(_clean_cell(cells[i]))}" for i in rows]
        else:
            rows = list(np.flatnonzero(has))
            messages = [f"expected {expected}, found {what}"] * len(rows)
        seen = flagged.setdefault(at, np.zeros(chk.n, bool))
        keep = [k for k, i in enumerate(rows) if not seen[i]]  # one problem per row and place
        if keep:
            at_rows = np.array([rows[k] for k in keep], np.int64)
            seen[at_rows] = True
            chk.flag(at_rows, at, [messages[k] for k in keep], code)
    _flag_value_and_fields(chk, df, flagged)
    return flagged


def _flag_value_and_fields(chk: _Checker, df: pd.DataFrame, flagged: dict[str, np.ndarray]) -> None:
    """Rows holding a value in a column and a field below it in another (``notes`` and ``notes.x``).

    No client record is both; such a row stands for none, so it is refused (a table written by
    hand can hold it; a JSON record cannot).
    """
    paths = {column_path(c): c for c in df.columns}
    for path, c in paths.items():
        below = [d for p, d in paths.items() if len(p) > len(path) and p[:len(path)] == path]
        if not below:
            continue
        has = _has_value(df[c], chk.text)
        if not has.any():
            continue
        at = path_text(path)
        seen = flagged.setdefault(at, np.zeros(chk.n, bool))
        for d in below:
            both = has & _has_value(df[d], chk.text) & ~seen
            if both.any():
                seen |= both
                chk._flag_mask(both, at, f"column '{c}' holds a value and column '{d}' a field of it: "
                               "a record has one or the other", "wrong-type")


def _has_value(col: pd.Series, text: bool) -> np.ndarray:
    has = col.notna().to_numpy(dtype=bool).copy()
    if text:
        has &= (col.fillna("").astype(str) != "").to_numpy(dtype=bool)
    return has


def _clean_cell(v: Any) -> Any:
    """A typed cell as the JSON value it holds (Parquet gives a list as an array)."""
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v.item() if isinstance(v, np.generic) else v


def _under(flagged: dict[str, np.ndarray], path: str, n: int) -> np.ndarray:
    """Rows where ``path`` or an object above it was flagged as the wrong shape."""
    out = np.zeros(n, bool)
    for at, rows in flagged.items():
        if path == at or path.startswith((f"{at}.", f"{at}[")):
            out |= rows
    return out


def client_id_text(ids: pd.Series) -> pd.Series:
    """Client ids as text (a number in a typed column is read as its text); null where there is none.

    A string column keeps its dtype (Arrow strings stay Arrow strings, null is NA); others become objects.
    """
    if isinstance(ids.dtype, pd.StringDtype):
        return ids.where((ids != "").fillna(False).to_numpy(dtype=bool))
    if pd.api.types.infer_dtype(ids, skipna=True) in ("string", "empty"):
        keep = (ids.notna() & (ids != "")).to_numpy(dtype=bool)
        return ids.astype(object).where(keep, None)
    if ids.dtype.kind in "iu" and not ids.hasnans:
        return ids.astype(str).astype(object)
    if ids.dtype.kind in "iu":  # a nullable integer column (Int64) with a null: its digits, never through a float
        return ids.astype("string").astype(object).where(ids.notna(), None)
    if ids.dtype.kind in "iuf":  # a number column with a null: integers read as floats (1.0) are ids 1, as without it
        numbers = ids.to_numpy(dtype=float, na_value=np.nan)
        out = np.full(len(ids), None, dtype=object)
        whole = np.isfinite(numbers) & (numbers == np.trunc(numbers)) & (np.abs(numbers) < 2**53)
        out[whole] = numbers[whole].astype(np.int64).astype(str)
        other = np.flatnonzero(~whole & ~np.isnan(numbers))
        out[other] = [str(v) for v in numbers[other]]
        return pd.Series(out, index=ids.index, dtype=object)
    return ids.astype(object).where(ids.notna(), None).map(_id_text)


def _id_text(v: Any) -> str | None:
    """One id cell of a mixed column (a spreadsheet's): a whole float is the integer it holds, as in a float
    column (1001.0 is 1001; refuse_inexact_ids refused the others)."""
    if v is None or v == "":
        return None
    if type(v) is float and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return str(v)


def _binary_ids(column: str, path: Any) -> Diagnostic:
    """A column of ids stored as bytes: as text, each would read as Python writes bytes (``b'G003'``), an id that
    joins nothing, and bytes are no text until their encoding is known (a file may hold one that is no UTF-8)."""
    return Diagnostic("binary-id", f"column {column} stores ids as bytes (a binary column without a text type, as "
                      "older Hive and Impala writers store strings): an id is text", file=None if path is None
                      else str(path), hint="write the column as a string (UTF-8) column; in Spark, cast it to "
                      "string before writing")


def refuse_binary_ids(ids: pd.Series, column: str, path: Any) -> None:
    """Refuse a column of ids that holds bytes (read from a binary Parquet column)."""
    if ids.dtype == object:
        kind = pd.api.types.infer_dtype(ids, skipna=True)  # one pass in C: "string" for a column of text
        if kind == "bytes" or (kind.startswith("mixed") and any(type(v) is bytes for v in ids.to_numpy())):
            raise InputError([_binary_ids(column, path)])
    elif isinstance(ids.dtype, pd.CategoricalDtype) and ids.cat.categories.dtype == object and any(
            type(v) is bytes for v in ids.cat.categories):
        raise InputError([_binary_ids(column, path)])


def refuse_inexact_ids(ids: pd.Series, column: str, path: Any, doubles: bool = False) -> None:
    """Refuse a column of ids stored as floating-point numbers that holds one no id can be read from exactly.

    Whole numbers within the float's precision (2**53 for a double, 2**24 for a float32) are the integers they
    hold. Beyond it the file may already have lost digits (123456789012345678 stored as 1.2345678901234568e+17),
    so two debtors could share one id and one be decided with the other's exposures; a fraction (1.5) names
    no id either. One such value makes the whole column suspect: the table is refused, not its rows. A
    spreadsheet's column (objects) is checked cell by cell; with ``doubles`` (Excel stores every number as a
    double, and its reader gives whole ones as integers: 123456789012345678 comes back 123456789012345696) its
    integers too.
    """
    refuse_binary_ids(ids, column, path)
    found = _float_ids(ids, doubles)
    if found is None:
        return
    values, limit = found
    bad = np.flatnonzero(~(np.isnan(values) | ((values == np.trunc(values)) & (np.abs(values) < limit))))
    if not len(bad):
        return
    raise InputError([Diagnostic(
        "inexact-id", f"column {column} stores ids as floating-point numbers, and {len(bad)} of them cannot be an "
        f"id exactly (row {int(bad[0]) + 1}: {float(values[bad[0]])!r}): beyond 2^{int(np.log2(limit))} the file "
        "may have lost digits, and a fraction names no id", file=str(path),
        hint="write the ids as text (or as integers) in the file; in a spreadsheet, format the id column as text")])


def _float_ids(ids: pd.Series, doubles: bool = False) -> tuple[np.ndarray, float] | None:
    """Each row's id as a float (NaN: none, or not a float) and the precision of the floats stored; None when the
    column holds no floats."""
    if isinstance(ids.dtype, pd.CategoricalDtype):  # a Parquet column read as a dictionary: its distinct values
        categories = ids.cat.categories.to_numpy()
        if categories.dtype.kind != "f" or not len(categories):
            return None
        codes = ids.cat.codes.to_numpy()
        return np.where(codes >= 0, categories.astype(float)[np.maximum(codes, 0)], np.nan), _precision(
            categories.dtype)
    if ids.dtype.kind == "f":
        return ids.to_numpy(dtype=float, na_value=np.nan), _precision(ids.dtype)
    if ids.dtype == object:
        cells = ids.to_numpy()
        kinds = (float, int) if doubles else (float,)
        floats = np.fromiter((type(v) in kinds for v in cells), bool, len(cells))
        if not floats.any():
            return None
        values = np.full(len(cells), np.nan)
        values[floats] = [float(v) if abs(v) < 2**1000 else np.inf for v in cells[floats]]
        return values, 2.0**53
    return None


def _precision(dtype: Any) -> float:
    """The bound below which a float of ``dtype`` holds every whole number exactly (2**53 for a double)."""
    return 2.0 ** (np.finfo(np.dtype(dtype)).nmant + 1)


def exact_integer_ids(frame: pd.DataFrame, path: Any, names: Sequence[str]) -> pd.DataFrame:
    """``frame`` (pandas' reading of the Parquet file ``path``) with each integer id column that pandas read as
    floats (an int64 column with a null, as Spark or pyarrow write it) read again as the exact text of its
    integers: as floats, 123456789012345678 and 123456789012345679 were one id."""
    floats = [n for n in names if n in frame.columns and frame[n].dtype.kind == "f"]
    if not floats:
        return frame
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = integer_ids_as_text(pq.read_table(path, columns=floats), set(floats))
    for n in floats:
        column = table.column(n)
        if pa.types.is_string(column.type):  # an integer column, now its text (a float column stays as read)
            frame[n] = column.to_pandas().to_numpy(dtype=object)
    return frame


def integer_ids_as_text(table: Any, names: set[str], path: Any = None) -> Any:
    """An Arrow ``table`` with each integer column of ``names`` (a dictionary of integers too) as the text of its
    integers, which no float holds beyond 2**53; one of bytes is refused (:func:`refuse_binary_ids`)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, f in enumerate(table.schema):
        kind = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        if f.name in names and (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)
                                or pa.types.is_fixed_size_binary(kind)):
            raise InputError([_binary_ids(f.name, path)])
        if f.name in names and pa.types.is_integer(kind):
            column = table.column(i)
            if pa.types.is_dictionary(f.type):
                column = pc.cast(column, kind)
            table = table.set_column(i, f.name, pc.cast(column, pa.string()))
    return table


def duplicate_ids(df: pd.DataFrame, positions: np.ndarray | None = None) -> list[Problem]:
    """Rows whose client_id appeared on an earlier row (checked over the whole table, before chunking).

    The first row is named by its input row: ``positions`` when some rows could not be read (a JSON
    Lines line that is not JSON is a row the frame lacks)."""
    if "client_id" not in df.columns or not len(df):
        return []
    text = client_id_text(df["client_id"])
    key = text.astype(object).str.strip(SPACE_CHARS)  # 'C001 ' is 'C001', as decide compares keys
    key = key.where((text.notna() & key.notna() & (key != "")).to_numpy(dtype=bool), None)
    dup = (key.duplicated(keep="first") & key.notna()).to_numpy()
    if not dup.any():
        return []
    first = pd.Series(np.arange(len(df))).groupby(key.fillna("\0").to_numpy()).transform("min").to_numpy()
    values = text.to_numpy(dtype=object)
    rows = positions[first] if positions is not None else first
    return [Problem(int(i), "client_id", repeated_id(values[i], values[first[i]], int(rows[i]) + 1), "duplicate-id")
            for i in np.flatnonzero(dup)]


def _check_ids(chk: _Checker, df: pd.DataFrame, records: bool) -> np.ndarray:
    """Flag missing, long and unprintable client ids; each row's id as text (None where there is none).

    A client id is text; a number in a typed column is read as its text, except in a JSON record,
    where a number or an object is not an id (``decide`` refuses it too).
    """
    n = chk.n
    id_col = _column(df, "client_id")
    ids = client_id_text(id_col) if id_col is not None else pd.Series([None] * n, dtype=object)
    id_missing = ids.isna().to_numpy().copy()
    if records and id_col is not None:
        cells = id_col.to_numpy(dtype=object)
        not_text = ~id_missing & np.fromiter((type(v) is not str for v in cells), bool, n)
        chk._flag_mask(not_text, "client_id", "client_id must be a non-empty string of at most 100 characters")
        id_missing &= ~not_text
    chk._flag_mask(id_missing, "client_id", "required field 'client_id' is missing", "missing-field")
    ids_text = ids.to_numpy(dtype=object, na_value=None)
    long_ids = (ids.str.len() > 100).fillna(False).to_numpy(dtype=bool)
    chk._flag_mask(long_ids, "client_id", "client_id is longer than 100 characters")
    bad_text = _id_problem_cells(ids) & ~long_ids
    chk._flag_mask(bad_text, "client_id", lambda i: str(id_problem(ids_text[i])))
    return ids_text


def _id_problem_cells(ids: pd.Series) -> np.ndarray:
    """Ids holding a character an id may not hold, or not in NFC (False where null): :func:`.safetext.id_problem`
    cell by cell, searched column-wise (Arrow strings by Arrow), the form checked on the ids that are not ASCII."""
    if isinstance(ids.dtype, pd.StringDtype) and ids.dtype.storage == "pyarrow":
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(ids.array)
        found = pc.match_substring_regex(arr, ARROW_ID_FORBIDDEN).fill_null(False)
        found = pc.or_(found, pc.and_(pc.invert(pc.string_is_ascii(arr)),
                                      pc.not_equal(pc.utf8_normalize(arr, form="NFC"), arr))).fill_null(False)
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    bad = ids.str.contains(ID_FORBIDDEN_PATTERN, regex=True).fillna(False).to_numpy(dtype=bool)
    texts = ids.to_numpy(dtype=object, na_value=None)
    for i in np.flatnonzero(~bad):
        t = texts[i]
        if t is not None and not t.isascii() and id_problem(t) is not None:
            bad[i] = True
    return bad


def _without_list(df: pd.DataFrame, root: str, periods_present: np.ndarray, records: bool) -> np.ndarray:
    """Rows with no list of periods: a JSON record gives its list (maybe empty); a table row has one
    when the table has period columns."""
    n, width = periods_present.shape
    if not records:
        return np.full(n, width == 0)
    cell = _column(df, root)
    listed = np.zeros(n, bool) if cell is None else \
        np.fromiter((type(_clean_cell(v)) is list for v in cell.to_numpy(dtype=object)), bool, n)
    return ~periods_present.any(axis=1) & ~listed


def prepare(policy: CompiledPolicy, df: pd.DataFrame, text: bool, as_of: str | None = None,
            duplicates: list[Problem] | None = None, records: bool = False,
            late: list[Problem] | None = None) -> Prepared:
    """Check every cell the policy reads; the accepted rows as vector-evaluator columns.

    ``duplicates`` (rows relative to ``df``) comes from :func:`duplicate_ids` over the whole table
    when ``df`` is one chunk of it; without it, duplicates are found within ``df``. ``records``:
    the rows are flattened JSON records (JSON Lines), held to ``decide``'s reading of a record to
    the letter: a client_id is a JSON string, and a list of periods exists only where the record
    gives one. ``late`` are problems ``decide`` finds only after reading a record's inputs (a
    record that cannot be written as canonical JSON): they reject a row no other problem rejects.
    """
    n = len(df)
    chk = _Checker(n, text, policy.grade_ids)
    ids_text = _check_ids(chk, df, records)
    flagged = _flag_shapes(chk, policy, df, as_of is None)
    for problem in duplicates if duplicates is not None else duplicate_ids(df):
        chk.flag(np.array([problem.row]), problem.path, [problem.message], problem.code)
    # as_of: the option wins, else the column, else today
    if as_of is not None:
        day = dt.date.fromisoformat(as_of)
        as_of_days = np.full(n, day.toordinal() - _EPOCH_ORDINAL, np.int64)
        as_of_known = np.ones(n, bool)
    else:
        today = dt.date.today().toordinal() - _EPOCH_ORDINAL
        spec = InputSpec("as_of", "as_of", ("as_of",), (), False, "date", False, None, None, None, None)
        data, valid, missing = chk.values(spec, _column(df, "as_of"), "as_of")
        as_of_days = np.where(valid, data, today)
        as_of_known = valid | missing  # a bad as_of is its own problem: nothing to compare dates with
    inputs: dict[str, Col] = {}
    present_by_root: dict[str, np.ndarray] = {}
    aligned_by_root: dict[str, np.ndarray] = {}
    for spec in policy.inputs:
        if not spec.series:
            path = ".".join(spec.root)
            data, valid, missing = chk.values(spec, _column(df, path), path)
            if spec.required:
                chk._flag_mask(missing & ~_under(flagged, path, n), path, f"required field '{path}' is missing",
                               "missing-field")
            if spec.not_after_as_of:
                _flag_after_as_of(chk, spec, data[:, None], valid[:, None], as_of_days, as_of_known)
            codes = chk.codes.get(path)
            inputs[spec.name] = Col(data, valid, codes=None if codes is None else
                                    (np.where(valid, codes[0], -1), codes[1]))
            continue
        root = ".".join(spec.root)
        item = ".".join(spec.item)
        width = series_width(df, root)
        if root not in present_by_root:
            present_by_root[root] = _periods_present(df, root, width, n, text)
            _flag_gaps(chk, present_by_root[root], root)
        periods_present = present_by_root[root]
        dtype = np.int64 if spec.type == "date" else float
        # Column-major: every period is one contiguous column, as the vector evaluator reads them.
        data2 = np.zeros((n, width), dtype=dtype, order="F")
        valid2 = np.zeros((n, width), bool, order="F")
        for k in range(width):
            path = f"{root}[{k}].{item}"
            d, v, _ = chk.values(spec, _column(df, path), path)
            data2[:, k] = d
            valid2[:, k] = v
        if spec.ascending:
            _flag_disorder(chk, spec, data2, valid2)
        if spec.not_after_as_of:
            _flag_after_as_of(chk, spec, data2, valid2, as_of_days, as_of_known)
        # A client with fewer periods than the widest: shift its periods to the right (latest last).
        lengths = periods_present.sum(axis=1)
        # Cells of a period that does not exist are not "missing values" of that period.
        # Every series of one root shares one present mask (series functions cache facts about it).
        present = aligned_by_root.get(root)
        if present is None:
            present = aligned_by_root[root] = np.zeros((n, width), bool, order="F")
            for L in np.unique(lengths):
                present[lengths == L, width - int(L):] = L > 0
        aligned_d = np.zeros((n, width), dtype=dtype, order="F")
        aligned_v = np.zeros((n, width), bool, order="F")
        full = lengths == width
        if full.all():  # the common case: every client has every period
            aligned_d, aligned_v = data2, valid2
            lengths = np.zeros(0, np.int64)
        for L in np.unique(lengths):
            L = int(L)
            rows = lengths == L
            if L == 0:
                continue
            aligned_d[rows, width - L:] = data2[rows, :L]
            aligned_v[rows, width - L:] = valid2[rows, :L]
        if spec.required:
            no_list = _without_list(df, root, periods_present, records) & ~_under(flagged, root, n)
            chk._flag_mask(no_list, root, f"required list '{root}' is missing", "missing-field")
        inputs[spec.name] = Col(aligned_d, aligned_v, present)
    refused = np.zeros(n, bool)  # by decide too: a repeated id is the batch's own finding, made apart
    for p in chk.problems:
        refused[p.row] |= p.code != "duplicate-id"
    for problem in late or ():
        if not refused[problem.row]:
            chk.flag(np.array([problem.row]), problem.path, [problem.message], problem.code)
    keep = ~chk.bad
    rows = np.flatnonzero(keep)
    if keep.all():
        subset = inputs
    else:
        kept_present: dict[int, np.ndarray] = {}
        subset = {k: Col(_rows(c.data, keep), _rows(c.valid, keep), None if c.present is None else
                         kept_present.setdefault(id(c.present), _rows(c.present, keep)),
                         None if c.codes is None else (c.codes[0][keep], c.codes[1]))
                  for k, c in inputs.items()}
    seg = None
    if policy.segment_by is not None:
        seg = subset[policy.segment_by].data
    return Prepared(rows=rows, client_ids=ids_text[keep], as_of_days=as_of_days[keep], inputs=subset,
                    segments=seg, problems=chk.problems, rejected=np.flatnonzero(chk.bad))
