"""A portfolio as long tables: debtors, exposures, payments, ... joined by ids, decided column-wise.

The layout is derived from the policy's scopes (:func:`layout`): one table of debtors (one row per
debtor, the debtor's inputs as columns named by their field paths), one table per debtor series
(``statements``: one row per period, oldest first, keyed by ``client_id``) and one table per scope
(``exposures``, ``payments``, ...: one row per element, keyed by ``client_id`` and the parent's key
column, e.g. ``exposure_id`` for a payment). Each table is Parquet or CSV.

Every cell is checked by the rules ``decide`` applies to the same field of a nested record (type,
required, range, enum, dates not after the as-of day, the scope's ``max``, unique keys), column by
column; the accepted debtors' long tables are built straight from the checked columns (no record
per debtor) and decided by :mod:`.scoped_vector`. Every row of every table is accounted for:
decided, rejected (a bad row rejects its debtor, the reason naming table, row and column) or
orphaned (its debtor or parent element is not in the tables).
"""

from __future__ import annotations

import contextlib
import functools
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..decide.inputs import MAX_PERIODS, describe
from ..decide.scoped import MAX_KEY, date_before, repeated_element, too_small_message
from ..diagnostics import Diagnostic, InputError, UsageError
from ..policy.compiler import CompiledPolicy
from ..policy.scopes import ScopeSpec
from ..safetext import SPACE_CHARS, has_id_problem, how_ids_differ, id_key, id_problem, near_id_key, spaced_apart
from .frame import (
    Prepared,
    _Checker,
    _day,
    _flag_after_as_of,
    _rows,
    client_id_text,
    decimals_as_floats,
    integer_ids_as_text,
    mark_stored_nans,
    prepare,
    refuse_bad_text,
    refuse_inexact_ids,
)
from .scoped_vector import Level, LongTables, ScopedRun, shared_columns
from .vector import Col, evaluate_columns

FORMATS = (".parquet", ".csv")
DEBTORS = "debtors"
CLIENT_ID = "client_id"
# Debtors decided at a time. Their columns are in memory already, so a chunk costs only its
# temporaries (tens of MB for 20,000 debtors); fewer chunks, fewer passes of the evaluator's and the
# frame builder's Python over them (at 5,000 a chunk, those passes were a fifth of the deciding stage).
CHUNK_DEBTORS = 20_000
# A policy whose evaluator keeps many shared columns per chunk (2.1.0: 689, 2.0.0: 117) decides fewer debtors
# at a time: a 2.1.0 chunk of 20,000 held 700 MB of them, two chunks at once (workers) most of its 4.3 GB peak.
CHUNK_COLUMNS = 7_000_000  # debtors per chunk times the shared columns kept


# ------------------------------------------------------------------ layout


@dataclass(frozen=True)
class TableSpec:
    """One long table: its name (the file stem), what a row is, the columns that join it to its parent."""

    name: str
    scope: str | None  # the scope whose elements the rows are; None: the debtors or a debtor series
    series: str | None  # a debtor series' list root (statements): one row per period
    parent_keys: tuple[str, ...]  # the columns naming the row's parent: client_id, then each ancestor's key
    key: str | None  # the row's own key column (a keyed scope)
    columns: tuple[str, ...]  # the field paths the policy reads, one column each
    order_by: str | None = None

    @property
    def ids(self) -> tuple[str, ...]:
        """The columns naming a row: its parent's keys, then its own (read as text when written as integers)."""
        return (*self.parent_keys, *((self.key,) if self.key else ()))


def table_name(s: ScopeSpec) -> str:
    """A scope's table: its name in the plural (exposure -> exposures)."""
    return s.name if s.name.endswith("s") else s.name + "s"


def layout(policy: CompiledPolicy) -> list[TableSpec]:
    """The tables a portfolio for ``policy`` is made of, parents before children."""
    part = policy.scoped
    if part is None:
        raise UsageError([Diagnostic("scoped-policy-required", f"{policy.id} {policy.version} declares no scopes: "
                                     "its portfolio is one table (batch FILE)")])
    scalars = tuple(dict.fromkeys(".".join(s.root) for s in policy.inputs if not s.series))
    tables = [TableSpec(DEBTORS, None, None, (), CLIENT_ID, (CLIENT_ID, "as_of", *scalars))]
    for root in dict.fromkeys(".".join(s.root) for s in policy.inputs if s.series):
        items = tuple(dict.fromkeys(".".join(s.item) for s in policy.inputs if s.series and ".".join(s.root) == root))
        tables.append(TableSpec(root, None, root, (CLIENT_ID,), None, items))
    keys: dict[str | None, tuple[str, ...]] = {None: (CLIENT_ID,)}
    for s in _parents_first(part.scopes):
        if s.parent is not None and part.scope(s.parent).key is None:
            raise UsageError([Diagnostic("long-table-layout", f"scope {s.name}'s parent {s.parent} has no key: its "
                                         "rows could not name their parent in a long table",
                                         hint=f"declare scopes.{s.parent}.key")])
        parent_keys = keys[s.parent] if s.parent is None else (*keys[s.parent], part.scope(s.parent).key or "")
        columns = tuple(dict.fromkeys(spec.source for spec in part.inputs[s.name]))
        clash = sorted(set(parent_keys) & set(columns) - ({s.key} if s.key else set()))
        if clash:
            raise UsageError([Diagnostic("long-table-layout", f"scope {s.name} reads a field named like its parent's "
                                         f"key column ({', '.join(clash)}): a long table cannot hold both")])
        keys[s.name] = parent_keys
        tables.append(TableSpec(table_name(s), s.name, None, parent_keys, s.key,
                                tuple(c for c in columns if c != s.key), s.order_by))
    return tables


def _parents_first(scopes: tuple[ScopeSpec, ...]) -> list[ScopeSpec]:
    out: list[ScopeSpec] = []
    done: set[str | None] = {None}
    while len(out) < len(scopes):
        ready = [s for s in scopes if s not in out and s.parent in done]
        if not ready:
            break
        out += ready
        done |= {s.name for s in ready}
    return out


def locate(policy: CompiledPolicy, source: Path | Mapping[str, Path]) -> dict[str, Path]:
    """The files of the tables: ``DIR/<table>.parquet`` (or ``.csv``), or given by table name.

    The debtors table is required; a table that is absent has no rows (debtors without statements,
    exposures without payments).
    """
    names = [t.name for t in layout(policy)]
    if isinstance(source, Mapping):
        unknown = sorted(set(source) - set(names))
        if unknown:
            raise UsageError([Diagnostic("unknown-table", f"no table named {', '.join(unknown)} in the layout of "
                                         f"{policy.id} {policy.version}", hint="tables: " + ", ".join(names))])
        found = dict(source)
    else:
        if not source.is_dir():
            raise UsageError([Diagnostic("file-missing", f"no such folder: {source}", file=str(source))])
        found = {}
        for name in names:
            folders = [source / f"{name}{ext}" for ext in FORMATS if (source / f"{name}{ext}").is_dir()]
            if folders:  # Spark and Dask write a table as a folder of part files: its rows would not be read
                raise UsageError([Diagnostic(
                    "table-is-a-folder", f"{folders[0].name} is a folder, not a table file: its rows would not be "
                    "read", file=str(folders[0]), hint=f"write the {name} table as one file (Spark: coalesce(1) and "
                    "rename the part file), or give the portfolio as partitions to --engine dask")])
            _refuse_unreadable([source / f"{name}{ext}" for ext in FORMATS])
            hits = [source / f"{name}{ext}" for ext in FORMATS if (source / f"{name}{ext}").is_file()]
            if len(hits) > 1:
                raise UsageError([Diagnostic("ambiguous-table", f"both {hits[0].name} and {hits[1].name}: which is "
                                             f"the {name} table?", file=str(source))])
            if hits:
                found[name] = hits[0]
        _refuse_strays(policy, source, names)
    if DEBTORS not in found:
        parts = isinstance(source, Path) and any(p.is_dir() and any(p.glob(f"{DEBTORS}.*")) for p in
                                                 source.glob("part-*"))
        records = isinstance(source, Path) and not parts and any(source.glob("*.json"))
        raise UsageError([Diagnostic("file-missing", "no debtors table (debtors.parquet or debtors.csv)",
                                     file=str(source) if isinstance(source, Path) else None,
                                     hint="this is a dataset of partitions (part-NNNNN folders): batch --engine dask "
                                          "decides it; other commands read one folder of tables" if parts else
                                          "a folder is read as long tables (debtors, exposures, payments, ...); "
                                          "debtor records (.json files) go as one JSON Lines file, a record on "
                                          "each line" if records else None)])
    kinds = sorted({path.suffix.lower() for path in found.values()})
    if len(kinds) > 1:  # a CSV cell is text, a Parquet cell typed: one portfolio is read one way
        raise UsageError([Diagnostic("mixed-formats", f"the tables are {' and '.join(kinds)} files: write every "
                                     "table of a portfolio in one format",
                                     file=str(source) if isinstance(source, Path) else None)])
    for name, path in found.items():
        if path.suffix.lower() not in FORMATS:
            raise UsageError([Diagnostic("unknown-format", f"cannot read '{path.suffix}' files as the {name} table",
                                         file=str(path), hint="use .parquet or .csv")])
        if not path.is_file():
            raise UsageError([Diagnostic("file-missing", f"no such file: {path}", file=str(path))])
    return found


def _refuse_unreadable(paths: list[Path]) -> None:
    """A table's name that is neither a file nor a folder (a link to nothing, a named pipe, a device): read as an
    absent table, its debtors were decided without its rows (exit 0, 'has no row'); it is an unreadable table."""
    import os

    for path in paths:
        if os.path.lexists(path) and not path.is_file() and not path.is_dir():
            what = "a link to nothing" if path.is_symlink() and not path.exists() else "not a regular file"
            raise InputError([Diagnostic("unreadable", f"cannot read {path.name}: it is {what}", file=str(path),
                                         hint="give the table as a file (or remove the entry to mean no rows)")])


def _refuse_strays(policy: CompiledPolicy, folder: Path, names: list[str]) -> None:
    """Refuse a table file in the folder that is not one of the layout's: a misspelt or miscased name
    (``payment.csv``, ``Modifications.csv``) would otherwise read as an absent table, and its debtors
    be decided without those rows. Names starting with '.' or '_' (``.DS_Store``-like and ``_SUCCESS``-like
    files of other tools) are not tables."""
    import difflib

    expected = {f"{name}{ext}" for name in names for ext in FORMATS}
    strays = sorted(p for p in folder.iterdir() if p.suffix.lower() in FORMATS and p.name not in expected
                    and not p.name.startswith((".", "_")) and p.is_file())
    if not strays:
        return
    problems = []
    for path in strays:
        close = difflib.get_close_matches(path.stem.lower(), names, n=1, cutoff=0.6)
        what = f"is it the {close[0]} table? name it {close[0]}{path.suffix.lower()}" if close else \
            "move files that are not tables out of the folder"
        problems.append(Diagnostic("unknown-table", f"{path.name} is not a table of {policy.id} {policy.version}: "
                                   "its rows would not be read", file=str(path),
                                   hint=f"{what} (tables: {', '.join(names)})"))
    raise UsageError(problems)


def misspelt_columns(policy: CompiledPolicy, source: Path | Mapping[str, Path]) -> list[tuple[str, str]]:
    """(``table.column`` given, ``table.column`` meant): a column the layout does not read that looks like one
    it reads and that table lacks. Columns the policy does not read are not read, so an optional column under a
    misspelt name (``payments.paid_dte``) would read as null in every row; it is named, as a client table's is."""
    from ..decide.inputs import as_name, as_written, near_misses

    files = locate(policy, source)
    out: list[tuple[str, str]] = []
    for t in layout(policy):
        path = files.get(t.name)
        header = _header(path) if path is not None else []
        reads = {*t.columns, *t.parent_keys, *([t.key] if t.key else [])}
        # a column has no list: brackets in its name ('accounting[0].stage') are part of the name
        names = [c if c in reads else ".".join(as_name(n) for n in c.split(".")) for c in header
                 if not _NO_NAME.fullmatch(c)]  # a column without a name: _nameless says what it may be
        out += [(f"{t.name}.{as_written(given)}", f"{t.name}.{meant}")
                for given, meant in near_misses(names, reads, columns=True)]
        out += _nameless(t.name, header, reads)
        out += [(f"{t.name}.{given}", " or ".join(f"{t.name}.{c}" for c in missing))
                for given, missing in _groups_given_whole(header, reads)]
    return out


_NO_NAME = re.compile(r"\s*|Unnamed: \d+")  # pandas writes a column without a name as 'Unnamed: 22'


def _nameless(table: str, header: list[str], reads: set[str]) -> list[tuple[str, str]]:
    """(the column, the columns read that the table lacks): a column without a name is not read, so a field it
    holds reads null in every row; named beside what it may be, not passed over."""
    lacking = sorted(reads - set(header))
    if not lacking:
        return []
    shown = " or ".join(f"{table}.{c}" for c in lacking[:5]) + (f" (+{len(lacking) - 5} more)" if len(lacking) > 5
                                                                 else "")
    # the first column without a name is a frame's row index (pandas' to_csv writes one by default): no field
    return [(f"{table}.(column {i + 1}, no name)", shown) for i, c in enumerate(header) if i and _NO_NAME.fullmatch(c)]


def _groups_given_whole(header: list[str], reads: set[str]) -> list[tuple[str, list[str]]]:
    """(column, the columns of its group the table lacks): a column named as a group the layout reads field by
    field (``collateral`` beside ``collateral.type`` where ``collateral.value`` is read). The column is not read,
    so each field it may stand for reads null in every row: named, not passed over without a word."""
    out = []
    for given in header:
        missing = sorted(c for c in reads if c.startswith(given + ".") and c not in header)
        if given not in reads and missing:
            out.append((given, missing))
    return out


def absent_columns(policy: CompiledPolicy, source: Path | Mapping[str, Path]) -> list[tuple[str, str]]:
    """(table, column): a column a table has rows for but not in its header, though every row needs it (an id
    joining it, or a field the policy requires). Each row is then rejected for it, as it should be; this names
    the one cause of them all."""
    part = policy.scoped
    assert part is not None
    required = {DEBTORS: {".".join(s.root) for s in policy.inputs if s.required and not s.series}}
    required |= {table_name(s): {spec.source for spec in part.inputs[s.name] if spec.required} for s in part.scopes}
    files = locate(policy, source)
    out: list[tuple[str, str]] = []
    for t in layout(policy):
        path = files.get(t.name)
        if path is None or not path.stat().st_size:
            continue
        header = set(_header(path))
        needed = dict.fromkeys([*t.parent_keys, *([t.key] if t.key else []),
                                *(c for c in t.columns if c in required.get(t.name, ()))])
        out += [(t.name, c) for c in needed if c not in header]
    return out


def with_absent_columns(summary: dict[str, Any], absent: list[tuple[str, str]]) -> None:
    """``missing_columns`` in a batch summary, when a table lacks a column each of its rows needs."""
    if absent:
        summary["missing_columns"] = [{"table": table, "column": column} for table, column in absent]


def with_data_gaps(summary: dict[str, Any], policy: CompiledPolicy) -> None:
    """Gaps no row is rejected for, yet every decision depends on, named in a batch summary (and by ``batch`` on
    stderr): ``empty_tables``, a scope's table with no row (absent, or a header only), or none joined (every row
    orphaned: its ids written otherwise than its parent's), while its parent's table has decided rows (every
    exposure decided without a payment history looks healthier than its history), and
    ``decided_without_elements``, debtors decided with no element of the graded scope (their
    exposures' rows all missing, or joined to nobody by a mistyped id: a grade from the debtor's rules alone)."""
    part = policy.scoped
    if part is None:
        return
    tables = summary.get("tables") or {}  # none for JSON Lines of debtors: only the debtors count there
    empty = []
    for s in part.scopes:
        name, parent = table_name(s), DEBTORS if s.parent is None else table_name(part.scope(s.parent))
        read = tables.get(name, {}).get("read", 0)
        if name in tables and tables[name].get("orphaned", 0) == read and tables.get(parent, {}).get("decided", 0) > 0:
            # no row at all, or none joined (ids written another way in one table): the same gap in every decision
            empty.append({"table": name, "parent": parent, **({"orphaned": read} if read else {})})
    if empty:
        summary["empty_tables"] = empty
    if part.graded is not None and summary.get("decided_without_elements"):
        summary["graded_table"] = table_name(part.scope(part.graded))


def _header(path: Path) -> list[str]:
    """A table's column names (its first line, its Parquet schema); none when it cannot be read (reading it
    says why)."""
    import csv

    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8-sig", errors="replace", newline="") as fh:
                return next(csv.reader(fh), [])
        return flat_names(pq.read_schema(path))
    except (OSError, ValueError, csv.Error):
        return []


def flat_names(schema: Any) -> list[str]:
    """A Parquet schema's column names, each field of a struct column as ``struct.field``: Spark and warehouse
    exports write a group of fields (``a.b``, ``a.c``) as one struct column ``a``, which the long tables read as
    the columns ``a.b``, ``a.c`` (unflattened, the struct was not read, without a word)."""
    import pyarrow as pa

    out: list[str] = []

    def walk(prefix: str, field: Any) -> None:
        if pa.types.is_struct(field.type):
            for sub in field.type:
                walk(f"{prefix}{field.name}.", sub)
        else:
            out.append(prefix + field.name)

    for f in schema:
        walk("", f)
    return out


def _flattened(table: Any, columns: tuple[str, ...]) -> Any:
    """``table`` with its struct columns flattened to ``struct.field`` columns, those of ``columns`` kept."""
    import pyarrow as pa

    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    return table.select([c for c in table.column_names if c in columns])


def read_frame(path: Path, columns: tuple[str, ...], ids: tuple[str, ...] = (), encoding: str = "utf-8",
               keys: tuple[str | None, ...] = ()) -> tuple[pd.DataFrame, bool]:
    """One table's columns the layout reads (others are not read): (frame, cells are text).

    ``ids`` (the id columns of a child table, repeated on every row) are read from Parquet as
    categoricals: Arrow's dictionary pages become codes without a string per row. An integer column of
    ids (``client_id``, ``ids``, ``keys``) is read as the text of its integers: pandas reads one with a
    null as floats, where 123456789012345678 and 123456789012345679 are one number.
    """
    cols = read_columns(path, columns, ids, encoding)
    if cols.frame is not None:
        return cols.frame, cols.text
    assert cols.table is not None
    table = integer_ids_as_text(cols.table, {CLIENT_ID, *ids, *(k for k in keys if k)}, path)
    return table.to_pandas(date_as_object=False, self_destruct=True, types_mapper=_mapper), False


def _mapper(kind: Any) -> Any:
    """Dates as datetime64 and booleans with nulls as nullable booleans: both checked column-wise."""
    import pyarrow as pa

    return pd.BooleanDtype() if kind == pa.bool_() else None



class Columns:
    """One table's columns as read: a frame (CSV), or Arrow columns (Parquet) that the checks read as
    they are when their type already says what the checks would, and as pandas columns one at a time
    otherwise (17M rows as one pandas frame cost more than checking them)."""

    def __init__(self, frame: pd.DataFrame | None, table: Any, text: bool, path: Path | None = None):
        self.path = path
        self.frame = frame
        self.table = table
        self.text = text
        self.n = len(frame) if frame is not None else table.num_rows if table is not None else 0
        self.names: list[str] = [str(c) for c in frame.columns] if frame is not None else \
            list(table.column_names) if table is not None else []

    def arrow(self, name: str) -> Any:
        """The Arrow column (None: not in the table, or a CSV table)."""
        return self.table.column(name) if self.table is not None and name in self.names else None

    def codes(self, name: str, dictionaries_only: bool = False, integers: bool = False
              ) -> tuple[np.ndarray, pd.Series] | None:
        """An Arrow text column as codes (-1: null) into its distinct values (a pandas text column), as a
        categorical column gives them, without the categorical; None when it is not Arrow text (or, with
        ``dictionaries_only``, not read as a dictionary)."""
        coded = self.arrow_codes(name, dictionaries_only, integers)
        if coded is None:
            return None
        codes, dictionary = coded
        return codes, pd.Series(dictionary.to_pandas())

    def arrow_codes(self, name: str, dictionaries_only: bool = False, integers: bool = False
                    ) -> tuple[np.ndarray, Any] | None:
        """As :meth:`codes`, the distinct values left an Arrow array (a column of ids has hundreds of
        thousands: looked up by Arrow, they need no Python string each). With ``integers``, an integer column
        is coded by the text of its integers (ids: pandas would read one with a null as floats)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = self.arrow(name)
        if arr is None:
            return None
        if integers and pa.types.is_integer(arr.type):
            arr = pc.cast(arr, pa.string())
        if not pa.types.is_dictionary(arr.type):
            if dictionaries_only or not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
                return None
            arr = pc.dictionary_encode(arr)
        if not (pa.types.is_string(arr.type.value_type) or pa.types.is_large_string(arr.type.value_type)):
            return None
        arr = pa.table({name: arr}).unify_dictionaries().column(0)
        if arr.num_chunks == 0:
            return np.zeros(0, np.int32), pa.array([], arr.type.value_type)
        # each chunk's indices copied straight into place; int32 (a dictionary's indices are): a column of
        # millions of rows held at half the memory of int64, every use of a code reads either
        codes = np.empty(len(arr), np.int32)
        at = 0
        for c in arr.chunks:
            indices = c.indices.fill_null(-1) if c.null_count else c.indices
            codes[at:at + len(c)] = indices.to_numpy(zero_copy_only=False)
            at += len(c)
        return codes, arr.chunk(0).dictionary

    def get(self, name: str) -> pd.Series | None:
        """The column as pandas reads it (as the whole table's ``to_pandas`` gives it)."""
        if self.frame is not None:
            return self.frame[name] if name in self.frame.columns else None
        if self.table is None or name not in self.names:
            return None
        one = self.table.select([name]).to_pandas(date_as_object=False, types_mapper=_mapper)
        return one[name]


def read_columns(path: Path, columns: tuple[str, ...], ids: tuple[str, ...] = (), encoding: str = "utf-8",
                 text_ids: tuple[str, ...] = ()) -> Columns:
    """One table's columns the layout reads (others are not read), CSV (of ``encoding``) as a text frame, Parquet
    as Arrow."""
    from .batch import check_header, read_table

    if path.stat().st_size == 0:  # a table with no rows is a header line, or no file at all
        hint = f"the first line names the columns ({', '.join(columns)}); or leave out a table with no rows"
        raise InputError([Diagnostic("empty-table", "the file is empty: a table needs at least its header row",
                                     file=str(path), hint=hint)])
    if path.suffix.lower() == ".csv":
        table = read_table(path, encoding=encoding)
        if table.problems:  # a row that cannot be read cannot be joined: refuse the table, naming its lines
            lines = table.lines
            where = ", ".join(str(int(lines[p.row]) if lines is not None and p.row < len(lines) else p.row + 2)
                              for p in table.problems[:5])
            raise InputError([Diagnostic("ragged-row", f"{len(table.problems)} row(s) with more or fewer cells than "
                                         f"the header (line {where}): their table cannot be joined",
                                         file=str(path))])
        frame = table.frame
        return Columns(frame[[c for c in frame.columns if c in columns]], None, True)
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        check_header(flat_names(schema), path)
        wanted = set(columns)
        top = [f.name for f in schema if f.name in wanted or any(n in wanted for n in flat_names(pa.schema([f])))]
        arrow = pq.read_table(path, columns=top, read_dictionary=[c for c in top if c in ids])
        if any(pa.types.is_struct(f.type) for f in arrow.schema):
            arrow = _flattened(arrow, columns)
        refuse_bad_text(arrow, path)
        arrow = mark_stored_nans(decimals_as_floats(arrow))
    except (OSError, ValueError) as exc:
        raise InputError([Diagnostic("unreadable", f"cannot read the Parquet file: {exc}", file=str(path))]) from None
    if text_ids:  # an element's key of integers (a warehouse's surrogate key) is its text, as a client_id's is
        arrow = integer_ids_as_text(arrow, set(text_ids), path)
    return Columns(None, arrow, False, path)


# ------------------------------------------------------------------ reading


@dataclass
class Count:
    """The accounting of one table: every row read is decided, rejected or orphaned."""

    read: int = 0
    decided: int = 0
    rejected: int = 0
    orphaned: int = 0

    def balanced(self) -> bool:
        return self.read == self.decided + self.rejected + self.orphaned


@dataclass
class Elements:
    """One scope's rows after the checks: parent row, debtor row, input columns, keys, problems by row."""

    spec: TableSpec
    parent: np.ndarray  # row of the parent in its table (-1: orphaned)
    debtor: np.ndarray  # row of the debtor in the debtors table (-1: orphaned)
    env: dict[str, Col]
    keys: np.ndarray | None  # keyed scope: its keys (object)
    order: np.ndarray | None  # order_by values (float or days)
    bad: np.ndarray
    key_codes: tuple[np.ndarray, np.ndarray] | None = None  # keyed scope: each row's key code, the distinct keys


@dataclass
class LongRead:
    """The accepted debtors as the vector evaluator reads them, and the accounting of every row."""

    policy: CompiledPolicy
    prep: Prepared  # the accepted debtors' inputs (rows: their rows in the debtors table)
    tables: LongTables
    keys: np.ndarray  # the graded scope's keys, per element of its level
    rejects: list[dict[str, Any]]
    orphans: list[dict[str, Any]]
    counts: dict[str, Count]


Screen = Callable[[pd.DataFrame], Mapping[int, dict[str, Any]]]


def read_long_tables(policy: CompiledPolicy, source: Path | Mapping[str, Path], as_of: str | None = None,
                     timings: dict[str, float] | None = None, screen: Screen | None = None,
                     encoding: str = "utf-8") -> LongRead:
    """Read and check every table; the accepted debtors' long tables, every row accounted for.

    ``timings`` (benchmarks): seconds spent reading files, checking cells and building the levels.
    ``screen`` (the debtors table -> a problem per debtor row, 0-based) rejects debtors for a reason
    of the run's (``batch -p ID``: a debtor whose day selects another version), before their rows
    are checked; their rows count as rejected.
    """
    from concurrent.futures import ThreadPoolExecutor

    clock = _Clock(timings if timings is not None else {})
    files = locate(policy, source)
    specs = layout(policy)
    with ThreadPoolExecutor(1) as reads, ThreadPoolExecutor(2) as checks:
        return _read_long_tables(policy, files, specs, as_of, clock, screen,
                                 _Ahead(reads, checks, policy, specs, files, encoding), encoding)


def _read_long_tables(policy: CompiledPolicy, files: Mapping[str, Path], specs: list[TableSpec], as_of: str | None,
                      clock: _Clock, screen: Screen | None, ahead: _Ahead, encoding: str) -> LongRead:
    counts = {t.name: Count() for t in specs}  # an absent table: no rows
    with clock("read"):
        debtors, text = read_frame(files[DEBTORS], specs[0].columns, encoding=encoding)
    n = len(debtors)
    counts[DEBTORS].read = n
    if CLIENT_ID in debtors.columns:
        refuse_inexact_ids(debtors[CLIENT_ID], CLIENT_ID, files[DEBTORS])
    ids = client_id_text(debtors[CLIENT_ID]) if CLIENT_ID in debtors.columns else pd.Series([None] * n, dtype=object)
    first = _FirstRows(ids, arrow=not text)
    orphans: list[dict[str, Any]] = []
    debtors, series_at, overlong = _widen_series(debtors, text, files, specs, first, orphans, counts, clock, encoding)
    prep = prepare(policy, debtors, text, as_of)
    as_of_days = np.zeros(n, np.int64)
    as_of_days[prep.rows] = prep.as_of_days
    accepted = np.zeros(n, bool)
    accepted[prep.rows] = True
    problems: dict[int, list[dict[str, Any]]] = {}
    for p in prep.problems:
        problems.setdefault(p.row, []).append(_debtor_problem(p, series_at))
    for r, entries in overlong.items():  # refused as decide refuses the record: its periods were not widened
        problems.setdefault(r, []).extend(entries)
        accepted[r] = False
    screened = screen(debtors) if screen is not None else {}
    alone: set[int] = set()  # a repeated id's first copy: its problem stands alone, as its repeat's does
    for r, entry in [*screened.items(), *((r, e) for r, e in repeated_debtors(ids).items() if r not in screened)]:
        if entry["code"] == "duplicate-id":  # (the rows below may be the other debtor's: no word on them)
            problems[r] = [entry]
            alone.add(r)
        else:
            problems.setdefault(r, []).append(entry)
        accepted[r] = False
    del debtors  # the widened frame (hundreds of MB): its memory serves the scope tables' checks
    scopes: dict[str, Elements] = {}
    found: dict[str, tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]]] = {}

    def check(t: TableSpec) -> Elements:
        """One scope table read and checked; its problems and orphans kept apart, merged in table order."""
        own: tuple[dict[int, list[dict[str, Any]]], list[dict[str, Any]]] = ({}, [])
        el = _read_scope(policy, t, ahead.take(t), scopes, first, as_of_days, accepted, *own, counts[t.name])
        found[t.name] = own
        return el

    for wave in _waves(specs):  # tables whose parents are checked, two at a time (numpy and Arrow free the GIL)
        for t, el in zip(wave, ahead.pool_map(check, wave), strict=True):
            assert t.scope is not None
            scopes[t.scope] = el
    for t in specs:  # each debtor's problems and the orphans in the order of the tables, as one by one
        if t.name in found:
            for r, entries in found[t.name][0].items():
                if r not in alone:
                    problems.setdefault(r, []).extend(entries)
            orphans.extend(found[t.name][1])
    _too_few(policy, scopes, n, problems)
    keep = np.ones(n, bool)
    keep[list(problems)] = False
    rejects = [{"table": DEBTORS, "row": r + 1, "client_id": ids.iat[r] if isinstance(ids.iat[r], str) else None,
                "problems": _distinct(problems[r])} for r in sorted(problems)]
    kept = np.flatnonzero(keep)
    prep = _subset(prep, keep[prep.rows])
    assert np.array_equal(prep.rows, kept)
    new_index = np.full(n + 1, -1, np.int64)  # debtor table row -> accepted debtor (row -1 -> -1)
    new_index[kept] = np.arange(len(kept))
    with clock("build"):
        tables, keys = _levels(policy, scopes, new_index, len(kept))
    counts[DEBTORS].decided, counts[DEBTORS].rejected = len(kept), n - len(kept)
    for t in specs:
        if t.scope is not None and t.name in counts:
            el = scopes[t.scope]
            c = counts[t.name]
            c.decided = int((new_index[el.debtor] >= 0).sum())
            c.rejected = c.read - c.decided - c.orphaned
        elif t.series is not None and t.name in series_at:
            c = counts[t.name]
            rows = series_at[t.name]
            c.decided = int(((rows >= 0) & keep[:, None]).sum())
            c.rejected = c.read - c.decided - c.orphaned
    clock.close()
    for name, c in counts.items():
        if not c.balanced():  # the accounting is a contract, not a hope
            raise AssertionError(f"accounting broken for {name}: {c}")
    return LongRead(policy, prep, tables, keys, rejects, orphans, counts)


class _Clock:
    """Seconds per stage, added up; the time between stages counts as checking. Beside each stage's
    wall seconds, its CPU seconds (``cpu_read``, ...: every thread of the process), the figure to
    read when other work shares the machine."""

    def __init__(self, into: dict[str, float]):
        self.into = into
        self.start = time.perf_counter()
        self.cpu = time.process_time()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.into[stage] = self.into.get(stage, 0.0) + time.perf_counter() - t
            self.into[f"cpu_{stage}"] = self.into.get(f"cpu_{stage}", 0.0) + time.process_time() - c

    def close(self) -> None:
        stages = ("read", "build")
        self.into["check"] = time.perf_counter() - self.start - sum(self.into.get(k, 0.0) for k in stages)
        self.into["cpu_check"] = time.process_time() - self.cpu - sum(self.into.get(f"cpu_{k}", 0.0) for k in stages)


def _first_rows(ids: pd.Series) -> pd.Series:
    """Debtor id -> its first row in the debtors table (a repeated id is rejected as duplicate-id)."""
    text = ids.dropna()
    text = text[~text.duplicated(keep="first")]
    return pd.Series(text.index.to_numpy(dtype=np.int64), index=pd.Index(text.to_numpy(dtype=object)))


def repeated_debtors(ids: pd.Series) -> dict[int, dict[str, Any]]:
    """The first copy of each debtor id the debtors table repeats -> its problem (rows 0-based).

    The repeat is ``duplicate-id`` as in every batch. Its first copy is rejected too: the rows of the
    tables below name a debtor by its id alone, so they join the first copy whichever debtor they were
    exported for, and it would be decided on facts that may be another debtor's.
    """
    # 'D1 ' repeats 'D1', as every batch compares ids (as Python text: 70 ms on 350k ids, less than Arrow's strip)
    keys = ids.astype(object).str.strip(SPACE_CHARS)
    repeats = ids.notna() & keys.notna() & (keys != "") & keys.duplicated(keep="first")
    if not repeats.any():
        return {}
    again = pd.Series(np.flatnonzero(repeats.to_numpy()), index=pd.Index(keys[repeats].to_numpy(dtype=object)))
    again = again[~again.index.duplicated(keep="first")]  # each id's first repeat
    first = _first_rows(keys)
    return {int(first[k]): repeated_first_copy(ids.iat[int(first[k])], int(first[k]), int(row))
            for k, row in again.items()}


def repeated_first_copy(cid: str, row: int, repeat: int) -> dict[str, Any]:
    """The problem of the first copy (``row``) of a debtor id repeated at ``repeat`` (0-based, debtors table)."""
    return {"table": DEBTORS, "row": row + 1, "field": CLIENT_ID, "code": "duplicate-id",
            "message": f"client_id '{cid}' names two debtors: the rows of the other tables name a debtor by its id "
                       f"alone, so neither is decided (repeated at row {repeat + 1})"}


class _FirstRows:
    """Debtor id -> its first row in the debtors table, for the joins of the child tables: by pandas
    for ids read as Python text, by Arrow's hashing for the ids of Parquet tables (a million Python
    strings hashed per table cost more than the rest of the join)."""

    def __init__(self, ids: pd.Series, arrow: bool):
        self.series = _first_rows(ids)
        self.series.reindex(pd.Index([""], dtype=object))  # the hash table built here, then only read by threads
        self.rows = np.append(self.series.to_numpy(dtype=np.int64), -1)  # value set position -> row (-1: none)
        self.value_set: Any = None
        self._near_ids: dict[str, str] | None = None
        if arrow:
            import pyarrow as pa

            self.value_set = pa.array(self.series.index.to_numpy(dtype=object), pa.string())

    def _near(self, cid: str) -> str | None:
        """The debtor id that ``cid`` writes otherwise, if any: other spaces at either end (a CSV cell's stray space),
        another letter case or another Unicode form (a system that upper-cases its keys, a decomposed letter)."""
        near_ids = self._near_ids
        if near_ids is None:  # built once, on the first orphan (most runs have none); whole before it is shared
            near_ids = {}
            for known in self.series.index:
                if isinstance(known, str):
                    near_ids.setdefault(near_id_key(known), known)
            self._near_ids = near_ids
        near = near_ids.get(near_id_key(cid))
        return near if near is not None and near != cid else None

    def no_debtor(self, cid: str) -> str:
        """Why a row finds no debtor: no such id, or one written otherwise (spaces, letter case, Unicode form)."""
        near = self._near(cid)
        written = f" (it has '{near}': the two ids differ only by {how_ids_differ(cid, near)})" if near is not None \
            else ""
        return f"no debtor '{cid}' in the debtors table{written}"

    def near_row(self, cid: Any) -> int | None:
        """The row of the debtor ``cid`` names written otherwise ('D1 ' or 'd1' for 'D1'), if any."""
        near = self._near(cid) if isinstance(cid, str) else None
        return None if near is None else int(self.series[near])

    def of(self, distinct: np.ndarray) -> np.ndarray:
        """Each distinct id's row (-1: none), ids as Python text (None: no id)."""
        if not len(distinct):
            return np.zeros(0, np.int64)
        at = self.series.reindex(distinct).to_numpy(dtype=float, na_value=np.nan)
        return np.where(np.isnan(at), -1, at).astype(np.int64)

    def of_arrow(self, dictionary: Any) -> np.ndarray:
        """Each value's row (-1: none, null or empty) of an Arrow text array."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if dictionary.type != pa.string():  # large_string: compared as the value set's type
            dictionary = dictionary.cast(pa.string())
        at = pc.index_in(dictionary, value_set=self.value_set).fill_null(-1)
        return self.rows[np.asarray(at.to_numpy(zero_copy_only=False), np.int64)]


class _Texts:
    """Each row's text through its code (None: no text), read row by row: only the few rows a message
    names need one (a column of millions of Python references costs more than the join)."""

    def __init__(self, codes: np.ndarray, distinct: np.ndarray):
        self.codes = codes
        self.distinct = distinct

    def __getitem__(self, row: int) -> Any:
        code = int(self.codes[row])
        return None if code < 0 else self.distinct[code]


class _ArrowTexts(_Texts):
    """:class:`_Texts` through the distinct values of an Arrow text array."""

    def __getitem__(self, row: int) -> Any:
        code = int(self.codes[row])
        return None if code < 0 else self.distinct[code].as_py()


def _lookup(first: _FirstRows, cols: Columns, name: str, m: int) -> tuple[np.ndarray, _Texts]:
    """Each row's debtor row (-1 when none) and its client id texts, through distinct values."""
    if first.value_set is not None:
        coded = cols.arrow_codes(name, integers=True)
        if coded is not None:  # a Parquet text column: its ids judged and looked up by Arrow
            import pyarrow.compute as pc

            codes, dictionary = coded
            empty = np.flatnonzero(np.asarray(pc.equal(dictionary, "").fill_null(True).to_numpy(
                zero_copy_only=False), bool))
            if len(empty):  # an empty id is no id (as client_id_text reads it)
                codes = np.where(np.isin(codes, empty), -1, codes)
            rows = np.append(first.of_arrow(dictionary), -1)
            return rows[codes], _ArrowTexts(codes, dictionary)
    coded = _codes(cols, name)
    if coded is None:
        return np.full(m, -1, np.int64), _Texts(np.full(m, -1, np.int64), np.zeros(0, dtype=object))
    codes, distinct = coded
    rows = np.append(first.of(distinct), -1)
    return rows[codes], _Texts(codes, distinct)


def _codes(cols: Columns, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    """An id column's codes (-1: none) and distinct texts (None: not in the table); a dictionary or
    categorical column is coded already, an Arrow text column is coded by Arrow."""
    coded = cols.codes(name, integers=True)
    if coded is None:
        col = cols.get(name)
        if col is None:
            return None
        refuse_inexact_ids(col, name, cols.path)
        if not isinstance(col.dtype, pd.CategoricalDtype):
            codes, uniques = pd.factorize(client_id_text(col), use_na_sentinel=True)
            return codes, np.asarray(uniques, dtype=object)
        coded = col.cat.codes.to_numpy().astype(np.int64), pd.Series(col.cat.categories)
    codes, categories = coded
    text = client_id_text(categories)
    distinct = text.to_numpy(dtype=object, na_value=None)
    empty = np.flatnonzero(text.isna().to_numpy())
    if len(empty):  # an empty id is no id
        codes = np.where(np.isin(codes, empty), -1, codes)
    return codes, distinct


def _orphan(orphans: list[dict[str, Any]], table: str, rows: np.ndarray, ids: _Texts, why: Callable[[int], str],
            parent_keys: tuple[tuple[str, _Texts], ...] = (), field: Callable[[int], str] = lambda r: CLIENT_ID
            ) -> None:
    """Each orphaned row: its reason, the column that names no row of the parent table (``field``) and, for a
    child element, the keys it gives of each element above it (an exposure_id the exposures table lacks)."""
    for r in rows:
        entry = {"table": table, "row": int(r) + 1, "client_id": ids[r], "code": "orphan", "message": why(int(r)),
                 "field": field(int(r))}
        for name, texts in parent_keys:
            entry[name] = texts[r]
        orphans.append(entry)


def _near_debtors(problems: dict[int, list[dict[str, Any]]], table: str, rows: np.ndarray, cids: _Texts,
                  first: _FirstRows) -> None:
    """Rows that name a debtor by its id written otherwise (other spaces at either end, another letter case or
    Unicode form: 'D1 ' or 'd1' for 'D1') find no debtor, as ids join by their text; they are surely that debtor's
    rows all the same, so they reject it (its facts are incomplete) rather than leave it decided without them."""
    named: dict[int, list[int]] = {}
    for r in rows.tolist():
        d = first.near_row(cids[r])
        if d is not None:
            named.setdefault(d, []).append(r)
    for d, found in named.items():
        rows_of = f" (and {len(found) - 1} more rows)" if len(found) > 1 else ""
        problems.setdefault(d, []).append(
            {"table": table, "row": found[0] + 1, "field": CLIENT_ID, "code": "orphan",
             "message": f"{first.no_debtor(cids[found[0]])}{rows_of}: rows of this debtor whose id is written "
                        "otherwise join no debtor, so its facts are incomplete"})


def _incomplete(problems: dict[int, list[dict[str, Any]]], table: str, rows: np.ndarray, debtor: np.ndarray,
                level: Callable[[int], tuple[str, str, str | None]], why: Callable[[int], str]) -> None:
    """Rows of a debtor of the table that join none of its elements (an id with a trailing space, an id column
    of numbers with a null read as 1.0) reject the debtor: its facts are incomplete. One problem per element
    id they name, at its first row, with how many rows name it (a lost exposure's whole payment history).
    ``level``: for a row, the key column it failed at, that scope's name and the key it gives."""
    named: dict[tuple[int, str, str | None], list[int]] = {}
    for r in rows.tolist():
        key, _, text = level(r)
        named.setdefault((int(debtor[r]), key, text), []).append(r)
    for (d, key, _), found in named.items():
        rows_of = f" (named by {len(found)} rows, the first here)" if len(found) > 1 else ""
        problems.setdefault(d, []).append(
            {"table": table, "row": found[0] + 1, "field": key, "code": "orphan",
             "message": f"{why(found[0])}{rows_of}: rows of this debtor that join none of its {level(found[0])[1]}s, "
                        "so its facts are incomplete"})


def _widen_series(debtors: pd.DataFrame, text: bool, files: Mapping[str, Path], specs: list[TableSpec],
                  first: _FirstRows, orphans: list[dict[str, Any]], counts: Mapping[str, Count], clock: _Clock,
                  encoding: str) -> tuple[pd.DataFrame, dict[str, np.ndarray], dict[int, list[dict[str, Any]]]]:
    """Every debtor series table widened into the debtors frame: the frame, each series' (debtor row, period) ->
    row of its table, and the debtors a series table refuses (too many periods, rows under a spaced id)."""
    series_at: dict[str, np.ndarray] = {}
    refused: dict[int, list[dict[str, Any]]] = {}
    for t in specs:
        if t.series is not None and t.name in files:
            with clock("read"):
                frame, stext = read_frame(files[t.name], (CLIENT_ID, *t.columns), encoding=encoding)
            debtors, series_at[t.name], why = _widen(debtors, frame, stext or text, t, first, orphans, counts[t.name])
            del frame  # widened into the debtors frame
            for r, entries in why.items():
                refused.setdefault(r, []).extend(entries)
    return debtors, series_at, refused


def _widen(debtors: pd.DataFrame, frame: pd.DataFrame, text: bool, t: TableSpec, first: _FirstRows,
           orphans: list[dict[str, Any]], count: Count
           ) -> tuple[pd.DataFrame, np.ndarray, dict[int, list[dict[str, Any]]]]:
    """A debtor series table as the wide columns ``root[k].item`` of the debtors table (the 1.x reader's form),
    and the debtors it refuses: with more periods than a record may hold (``too-large``, as decide refuses them;
    their rows are not widened, so one such debtor does not widen them all), or named by rows with other spaces."""
    m, n = len(frame), len(debtors)
    count.read = m
    debtor, cids = _lookup(first, Columns(frame, None, text), CLIENT_ID, m)
    lost = np.flatnonzero(debtor < 0)
    count.orphaned = len(lost)
    _orphan(orphans, t.name, lost, cids, lambda r: first.no_debtor(cids[r]) if cids[r]
            else "client_id is missing: the row names no debtor")
    ok = np.flatnonzero(debtor >= 0)
    pos = pd.Series(debtor[ok]).groupby(debtor[ok]).cumcount().to_numpy()
    refused: dict[int, list[dict[str, Any]]] = {}
    _near_debtors(refused, t.name, lost, cids, first)
    if len(pos) and pos.max() >= MAX_PERIODS:
        per = np.bincount(debtor[ok], minlength=n)
        for r in np.flatnonzero(pos == MAX_PERIODS):  # each such debtor's first row past the limit
            refused.setdefault(int(debtor[ok[r]]), []).append(
                {"table": t.name, "row": int(ok[r]) + 1, "field": t.series, "code": "too-large",
                 "message": f"{int(per[debtor[ok[r]]])} periods; at most {MAX_PERIODS}"})
        fits = per[debtor[ok]] <= MAX_PERIODS
        ok, pos = ok[fits], pos[fits]
    width = int(pos.max()) + 1 if len(pos) else 0
    at = np.full((n, width), -1, np.int64)
    at[debtor[ok], pos] = ok
    extra: dict[str, Any] = {}
    for item in t.columns:
        if item not in frame.columns:
            continue
        col = frame[item]
        for k in range(width):
            rows = at[:, k]
            if text or col.dtype == object:  # an empty CSV cell (None in a column of objects) where there is no period
                values = col.iloc[np.where(rows >= 0, rows, 0)].reset_index(drop=True)
                extra[f"{t.series}[{k}].{item}"] = values.where(pd.Series(rows >= 0), "" if text else None)
            else:  # a null of the column's own type (NaN, NaT, NA), filled by the take itself
                extra[f"{t.series}[{k}].{item}"] = pd.Series(pd.api.extensions.take(col.array, rows, allow_fill=True))
    widened = pd.concat([debtors.reset_index(drop=True), pd.DataFrame(extra)], axis=1) if extra else debtors
    return widened, at, refused


def _debtor_problem(p: Any, series_at: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """A problem of the debtors table, or of a series table when its path is a period's field."""
    head, bracket, rest = p.path.partition("[")
    if bracket and head in series_at and "]" in rest:
        k = rest.partition("]")[0]
        at = series_at[head]
        if k.isdigit() and int(k) < at.shape[1] and at[p.row, int(k)] >= 0:
            field_ = rest.partition("]")[2].lstrip(".") or head
            return {"table": head, "row": int(at[p.row, int(k)]) + 1, "field": field_, "code": p.code,
                    "message": p.message}
    return {"table": DEBTORS, "row": p.row + 1, "field": p.path, "code": p.code, "message": p.message}


class _Ahead:
    """The scope tables read ahead on a thread (Arrow reads Parquet without the GIL: the next table is
    read while others are checked; a table is read when one before it is taken), and checked on two."""

    def __init__(self, reads: Any, checks: Any, policy: CompiledPolicy, tables: list[TableSpec],
                 files: Mapping[str, Path], encoding: str = "utf-8"):
        import threading

        self.reads = reads
        self.checks = checks
        self.policy = policy
        self.tables = [t for t in tables if t.scope is not None]
        self.files = files
        self.encoding = encoding
        self.pending: dict[str, Any] = {}
        self.submitted = 0
        self.lock = threading.Lock()
        self._submit_next()

    def _submit_next(self) -> None:
        while self.submitted < len(self.tables):
            t = self.tables[self.submitted]
            self.submitted += 1
            if t.name in self.files:
                self.pending[t.name] = self.reads.submit(self._read, t)
                return

    def _read(self, t: TableSpec) -> Columns:
        wanted, coded, keys = _scope_columns(self.policy, t)
        return read_columns(self.files[t.name], wanted, coded, self.encoding, keys)

    def take(self, t: TableSpec) -> Columns:
        """The table's columns (an absent table has none); one more table starts reading."""
        with self.lock:
            if t.name in self.files and t.name not in self.pending:  # taken before its turn came
                self.pending[t.name] = self.reads.submit(self._read, t)
                self.submitted = max(self.submitted, self.tables.index(t) + 1)
            self._submit_next()
            future = self.pending.pop(t.name, None)
        return future.result() if future is not None else Columns(pd.DataFrame(), None, False)

    def pool_map(self, work: Callable[[TableSpec], Elements], tables: list[TableSpec]) -> list[Elements]:
        """``work`` over the tables of one wave, two at a time."""
        return list(self.checks.map(work, tables)) if len(tables) > 1 else [work(t) for t in tables]


def _waves(specs: list[TableSpec]) -> list[list[TableSpec]]:
    """The scope tables in waves: each table after its parent's wave (debtors' children first)."""
    depth = {len(t.parent_keys): [u for u in specs if u.scope is not None and len(u.parent_keys) == len(t.parent_keys)]
             for t in specs if t.scope is not None}
    return [depth[d] for d in sorted(depth)]


def _scope_columns(policy: CompiledPolicy, t: TableSpec) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """A scope table's columns to read, those read as dictionaries (ids, grades and enums repeat), and its id
    columns, read as text when a warehouse wrote integers."""
    part = policy.scoped
    assert part is not None and t.scope is not None
    coded = (*t.parent_keys, *(spec.source for spec in part.inputs[t.scope] if spec.type == "grade" or (
                                spec.type == "string" and spec.enum)))
    return (*t.ids, *t.columns), coded, t.ids


def _read_scope(policy: CompiledPolicy, t: TableSpec, cols: Columns, scopes: Mapping[str, Elements],
                first: _FirstRows, as_of_days: np.ndarray, accepted: np.ndarray,
                problems: dict[int, list[dict[str, Any]]], orphans: list[dict[str, Any]], count: Count) -> Elements:
    """One scope's table: joined to its parents, checked cell by cell; its problems reject its debtors."""
    part = policy.scoped
    assert part is not None and t.scope is not None
    s = part.scope(t.scope)
    m = cols.n
    count.read = m
    debtor, cids = _lookup(first, cols, CLIENT_ID, m)
    parent = debtor  # a root scope's parent is its debtor (neither array is written to)
    if s.parent is None:
        lost = np.flatnonzero(debtor < 0)
        _orphan(orphans, t.name, lost, cids, lambda r: first.no_debtor(cids[r]) if cids[r]
                else "client_id is missing: the row names no debtor")
        _near_debtors(problems, t.name, lost, cids, first)
    else:
        # joined ancestor by ancestor, from the debtor down: an element is named by its parent and its own key
        # (tranche T1 of exposure E2 is not tranche T1 of E1), so each step needs the row of the one above
        steps: list[tuple[str, str, _Texts, np.ndarray]] = []  # (scope, key column, its texts, rows found)
        found = debtor
        for name, pkey in zip(part.ancestors(s.name), t.parent_keys[1:], strict=True):
            their_codes, their_distinct = _key_codes(cols, pkey, m)
            found = _join(scopes[name], found, their_codes, their_distinct)
            steps.append((name, pkey, _Texts(their_codes, their_distinct), found))
        parent = found
        lost = np.flatnonzero(parent < 0)

        def failed(r: int) -> tuple[str, str, _Texts, np.ndarray, int]:
            """The first step where row ``r`` found no element, and the step before it (-1: the debtor)."""
            k = next(k for k, step in enumerate(steps) if step[3][r] < 0)
            return (*steps[k], k)

        def why(r: int) -> str:
            if cids[r] is None:
                return "client_id is missing: the row names no debtor"
            if debtor[r] < 0:
                return first.no_debtor(cids[r])
            name, key, texts, _, k = failed(r)
            if texts[r] is None:
                return f"{key} is missing: the row names no {name}"
            under = f"debtor '{cids[r]}'"
            if k:
                under = f"{steps[k - 1][0]} '{steps[k - 1][2][r]}' of {under}"
            return f"no {name} '{texts[r]}' of {under} in the {table_name(part.scope(name))} table"

        _orphan(orphans, t.name, lost, cids, why, tuple((key, texts) for _, key, texts, _ in steps),
                lambda r: CLIENT_ID if cids[r] is None or debtor[r] < 0 else failed(r)[1])
        _incomplete(problems, t.name, lost[debtor[lost] >= 0], debtor,
                    lambda r: (failed(r)[1], failed(r)[0], failed(r)[2][r]), why)
        _near_debtors(problems, t.name, lost[debtor[lost] < 0], cids, first)
        debtor = np.where(parent >= 0, debtor, -1)
    count.orphaned = len(lost)
    chk = _Checker(m, cols.text, policy.grade_ids)
    env: dict[str, Col] = {}
    order = None
    # each row's debtor; an orphan's points one past the last (a debtors table may hold none: a header only)
    at = np.where(debtor >= 0, debtor, len(accepted))
    known = np.append(accepted, False)[at]
    as_of_days = np.append(as_of_days, 0)
    row_as_of = None
    for spec in part.inputs[s.name]:
        data, valid, missing = _values(chk, spec, cols)
        if spec.required:
            chk._flag_mask(missing, spec.source, f"required field '{spec.source}' is missing", "missing-field")
        if spec.not_after_as_of:
            row_as_of = as_of_days[at] if row_as_of is None else row_as_of
            _flag_after_as_of(chk, spec, data[:, None], valid[:, None], row_as_of, known)
        codes = chk.codes.get(spec.source)  # text read through its distinct values: compared by code
        env[spec.name] = Col(data, valid, codes=None if codes is None else
                             (_where_valid(valid, codes[0], -1), codes[1]))
        if s.order_by is not None and spec.source == s.order_by and order is None:
            order = _where_valid(valid, data, 0)
    del at, row_as_of
    keys = None
    if s.key is not None:
        keys = _key_text(cols, s.key, m)
        _check_keys(chk, s, keys, parent)
    if s.unique:
        _check_unique(chk, s, [part.reader(s.name, f) for f in s.unique], env, parent)
    for spec in part.inputs[s.name]:
        if spec.not_before is not None:
            _check_date_order(chk, spec, env, *_bound(policy, s, spec.not_before, env, scopes, parent))
    _too_many(chk, s, parent, debtor)
    bad = chk.bad & (debtor >= 0)
    for p in chk.problems:
        if debtor[p.row] >= 0:
            problems.setdefault(int(debtor[p.row]), []).append(
                {"table": t.name, "row": p.row + 1, "field": p.path, "code": p.code, "message": p.message})
    return Elements(t, parent, debtor, env, None if keys is None else keys[0], order, bad,
                    None if keys is None else keys[1:])


def _where_valid(valid: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
    """``values`` where valid, else ``fill``: the array itself when every cell is valid (a column of
    millions of rows kept twice is memory this machine pays for in page faults). Never written to."""
    return values if valid.all() else np.where(valid, values, fill)


def _values(chk: _Checker, spec: Any, cols: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One input's column checked: from Arrow when its type says enough, else as a pandas column."""
    arr = cols.arrow(spec.source)
    if arr is not None:
        got = chk.arrow_values(spec, arr, spec.source)
        if got is not None:
            return got
    coded = cols.codes(spec.source, dictionaries_only=True)
    if coded is not None:
        return _coded_values(chk, spec, *coded)
    col = cols.get(spec.source)
    if col is not None and isinstance(col.dtype, pd.CategoricalDtype):
        return _coded_values(chk, spec, col.cat.codes.to_numpy().astype(np.int64), pd.Series(col.cat.categories))
    return chk.values(spec, col, spec.source)


def _coded_values(chk: _Checker, spec: Any, codes: np.ndarray, cats: pd.Series
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A dictionary (categorical) column of text: each distinct value checked once, as a column of its own;
    a bad value flags every row holding it with the message the cell would get."""
    sub = _Checker(len(cats), chk.text, chk.grades)
    data, valid, missing = sub.values(spec, cats, spec.source)
    for p in sub.problems:
        chk._flag_mask(codes == p.row, p.path, p.message, p.code)
    absent = codes < 0
    full_data = np.append(data, None)[codes]
    full_valid = np.append(valid, False)[codes]
    full_missing = np.append(missing, True)[codes] | absent
    distinct = cats.tolist()
    chk.codes[spec.source] = (codes, distinct)
    return full_data, full_valid, full_missing


def _key_codes(cols: Columns, name: str, m: int) -> tuple[np.ndarray, np.ndarray]:
    """A key column's codes (-1: none, or empty) and distinct texts."""
    coded = _codes(cols, name)
    if coded is None:
        return np.full(m, -1, np.int64), np.zeros(0, dtype=object)
    return coded


def _key_text(cols: Columns, name: str, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A key column's values as text (None where empty), their codes (-1: none) and the distinct texts."""
    codes, distinct = _key_codes(cols, name, m)
    return np.append(distinct, None)[codes], codes, distinct


def _join(up: Elements, above: np.ndarray, their_codes: np.ndarray, their_distinct: np.ndarray) -> np.ndarray:
    """Each row's element of scope ``up`` (its row in that table; -1 when none): by the row it names one level
    above (``above``: the debtor's row for an element of a child of the debtor, else the element's row in its
    parent's table, found by the step before) and that element's key.

    Keys are compared by code: the child's distinct keys are looked up among the parent's once, and
    each run of rows naming one parent (a table written parent by parent is runs) is searched once.
    """
    assert up.key_codes is not None
    m = len(their_codes)
    pc, distinct = up.key_codes
    width = len(distinct) + 1
    to_parent = np.append(pd.Index(distinct).get_indexer(pd.Index(their_distinct)) if len(distinct) and
                          len(their_distinct) else np.full(len(their_distinct), -1), -1)
    cc = to_parent[their_codes]
    parent_code = np.where((up.parent >= 0) & (pc >= 0), up.parent * width + pc, -1)
    # in place: a child table has millions of rows, and each temporary is memory first touched
    child_code = above.astype(np.int64)  # a copy, whatever the width of the codes
    child_code *= width
    child_code += cc
    child_code[(above < 0) | (cc < 0)] = -2
    del cc
    if not m or not len(parent_code):
        return np.full(m, -1, np.int64)
    change = np.empty(m, bool)
    change[0] = True
    np.not_equal(child_code[1:], child_code[:-1], out=change[1:])
    heads = np.flatnonzero(change)  # each run's first row
    del change
    order = np.argsort(parent_code, kind="stable")  # the first of a repeated key wins (its debtor is rejected)
    sorted_codes = parent_code[order]
    wanted = child_code[heads]
    at = np.minimum(np.searchsorted(sorted_codes, wanted), len(sorted_codes) - 1)
    found = np.where(sorted_codes[at] == wanted, order[at], -1).astype(np.int64)
    return found if len(heads) == m else np.repeat(found, np.diff(heads, append=m))


def _check_keys(chk: _Checker, s: ScopeSpec, keys: tuple[np.ndarray, np.ndarray, np.ndarray],
                parent: np.ndarray) -> None:
    """A keyed element names itself: a short text without control characters, unique under its parent
    (each distinct key judged once, as ``decide`` words it)."""
    assert s.key is not None
    path = s.key
    texts, codes, distinct = keys
    missing = codes < 0
    chk._flag_mask(missing, path, f"required key '{path}' is missing", "missing-field")
    # an empty text (a Parquet '') stays among the distinct values as None, its rows coded -1: missing, as CSV reads it
    long = np.array([k is not None and len(k) > MAX_KEY for k in distinct] + [False])[codes]
    chk._flag_mask(long, path, lambda i: f"{s.key} must be a non-empty string of at most {MAX_KEY} characters, "
                   f"found {describe(texts[i])}")
    hazard = ~long & np.array([k is not None and has_id_problem(k) for k in distinct] + [False])[codes]
    chk._flag_mask(hazard, path, lambda i: str(id_problem(texts[i])))
    ok = ~missing & ~long & ~hazard & (parent >= 0)
    compared = [id_key(k) if isinstance(k, str) else k for k in distinct]  # 'E1 ' is 'E1', as decide compares them
    if compared != list(distinct):
        same, uniques = pd.factorize(pd.Series(compared, dtype=object))
        codes = np.append(same, -1)[codes]
        distinct = uniques.to_numpy()
    pair = pd.Series(np.where(ok, parent * (len(distinct) + 1) + codes, -1 - np.arange(len(codes))))
    repeated = ok & pair.duplicated(keep="first").to_numpy()
    if repeated.any():
        first = pd.Series(np.arange(len(codes))).groupby(pair.to_numpy()).transform("min").to_numpy()
        chk._flag_mask(repeated, path, lambda i: f"{s.key} '{texts[i]}' is also {s.name} at row {int(first[i]) + 1}"
                       f"{spaced_apart(texts[i], texts[int(first[i])])}", "duplicate-key")


def _check_unique(chk: _Checker, s: ScopeSpec, specs: list[Any], env: Mapping[str, Col], parent: np.ndarray) -> None:
    """No two rows under one parent share all of the scope's ``unique`` fields (a payment listed twice), as
    ``decide`` words it, each repeat at its row. A date field and the parent are one integer: a table written
    parent by parent in the scope's order (as ``generate`` writes it) is checked by one comparison of
    neighbours, any other by one hash of those integers; several fields are hashed as rows."""
    cols = [env[spec.name] for spec in specs]
    ok = parent >= 0
    for c in cols:
        ok &= c.valid
    every = bool(ok.all())
    rows = np.arange(len(ok)) if every else np.flatnonzero(ok)
    if len(rows) < 2:
        return
    values = [c.data if every else c.data[rows] for c in cols]
    parents = parent if every else parent[rows]
    if len(values) == 1 and values[0].dtype.kind in "iu":  # dates as days
        low = int(values[0].min())
        key = parents.astype(np.int64) * (int(values[0].max()) - low + 1)
        key += values[0]
        key -= low
        if bool((key[1:] > key[:-1]).all()):
            return
        repeated = pd.Series(key).duplicated(keep="first").to_numpy()
        if not repeated.any():
            return
        first_of = pd.Series(rows[~repeated], index=key[~repeated])
        first = first_of.loc[key[repeated]].to_numpy()
    else:
        frame = pd.DataFrame({"parent": parents, **{f"v{i}": v for i, v in enumerate(values)}})
        repeated = frame.duplicated(keep="first").to_numpy()
        if not repeated.any():
            return
        first = frame.assign(row=rows).groupby(list(frame.columns), sort=False)["row"].transform("min").to_numpy()
        first = first[repeated]
    at = dict(zip(rows[repeated].tolist(), first.tolist(), strict=True))

    def message(r: int) -> str:
        shown = [_day(c.data[r]) if spec.type == "date" else c.data[r] for spec, c in zip(specs, cols, strict=True)]
        return repeated_element(s, f"at row {r + 1}", f"row {at[r] + 1}", shown)[0]

    mask = np.zeros(chk.n, bool)
    mask[rows[repeated]] = True
    chk._flag_mask(mask, s.unique[0], message, "duplicate-key")


def _bound(policy: CompiledPolicy, s: ScopeSpec, name: str, env: Mapping[str, Col], scopes: Mapping[str, Elements],
           parent: np.ndarray) -> tuple[Col, str, str, np.ndarray | None]:
    """The date input ``name`` for each row: of the row itself, or of its parent (grandparent, ...) element; with
    its column, that element's table and each row's row in it (None: the row itself)."""
    part = policy.scoped
    assert part is not None
    source = part.input_named(name)[1].source
    if name in env:
        return env[name], source, "", None
    rows, scope = parent, s.parent
    while scope is not None:
        up = scopes[scope]
        if name in up.env:
            c = up.env[name]
            if not len(c.data):  # a table without rows: no row has an element there (each is an orphan)
                return Col(np.zeros(len(rows), np.int64), np.zeros(len(rows), bool)), source, up.spec.name, rows
            at = np.maximum(rows, 0)
            return Col(c.data[at], c.valid[at] & (rows >= 0)), source, up.spec.name, rows
        rows = np.where(rows >= 0, up.parent[np.maximum(rows, 0)], -1) if len(up.parent) else np.full(len(rows), -1)
        scope = part.scope(scope).parent
    raise AssertionError(f"compile checked that {name} is a date of {s.name} or an ancestor")


def _check_date_order(chk: _Checker, spec: Any, env: Mapping[str, Col], bound: Col, source: str, table: str,
                      rows: np.ndarray | None) -> None:
    """A date declared ``not_before`` another (of the row, or of its parent's row) does not precede it."""
    mine = env[spec.name]
    early = mine.valid & bound.valid
    early &= mine.data < bound.data
    if not early.any():
        return

    def message(r: int) -> str:
        place = source if rows is None else f"{source} of {table} row {int(rows[r]) + 1}"
        return date_before(spec, _day(mine.data[r]), place, _day(bound.data[r]))[0]

    chk._flag_mask(early, spec.source, message)


def _too_many(chk: _Checker, s: ScopeSpec, parent: np.ndarray, debtor: np.ndarray) -> None:
    """More elements under one parent than the scope's ``max``: the rows past the max are named."""
    if not len(parent):
        return
    per = np.bincount(parent + 1)[1:]  # an orphan's -1 counts in the first bin, dropped
    if not len(per) or per.max() <= s.max:  # the common case: no parent has too many
        return
    ok = np.flatnonzero(parent >= 0)
    over = ok[per[parent[ok]] > s.max]
    if not len(over):
        return
    pos = pd.Series(parent[over]).groupby(parent[over]).cumcount().to_numpy()
    last = over[pos == s.max]  # one problem per parent, at its first row past the max
    chk._flag_mask(np.isin(np.arange(chk.n), last), s.list_field,
                   lambda i: f"{int(per[parent[i]])} elements in scope {s.name}; the policy allows at most {s.max}",
                   "too-large")


def _too_few(policy: CompiledPolicy, scopes: Mapping[str, Elements], n: int,
             problems: dict[int, list[dict[str, Any]]]) -> None:
    """Parents with fewer elements than their scope's ``min`` (a debtor with no row in the exposures table, an
    exposure with no payment row): the parent's row is named, as a record's list is, and its debtor rejected."""
    part = policy.scoped
    assert part is not None
    for s in part.scopes:
        if not s.min:
            continue
        el = scopes.get(s.name)
        above = None if s.parent is None else scopes.get(s.parent)
        if s.parent is not None and above is None:
            continue  # the parent's table is absent: no parent to count under
        parents = n if above is None else len(above.parent)
        owner = np.arange(n) if above is None else above.debtor  # each parent's debtor
        placed = np.empty(0, np.int64) if el is None else el.parent[el.parent >= 0]
        per = np.bincount(placed, minlength=parents)
        for i in np.flatnonzero((per < s.min) & (owner >= 0)):
            table = DEBTORS if above is None else above.spec.name
            problems.setdefault(int(owner[i]), []).append(
                {"table": table, "row": int(i) + 1, "field": s.list_field, "code": "too-small",
                 "message": too_small_message(s, int(per[i]))})


def _subset(prep: Prepared, keep: np.ndarray) -> Prepared:
    """The prepared debtors whose elements passed their checks too."""
    if keep.all():
        return prep
    kept_present: dict[int, np.ndarray] = {}
    inputs = {k: Col(_rows(c.data, keep), _rows(c.valid, keep), None if c.present is None else
                     kept_present.setdefault(id(c.present), _rows(c.present, keep)),
                     None if c.codes is None else (c.codes[0][keep], c.codes[1]))
              for k, c in prep.inputs.items()}
    segments = None if prep.segments is None else prep.segments[keep]
    if prep.segments is not None:
        for c_old, c_new in zip(prep.inputs.values(), inputs.values(), strict=True):
            if c_old.data is prep.segments:
                segments = c_new.data
    return Prepared(prep.rows[keep], prep.client_ids[keep], prep.as_of_days[keep], inputs, segments,
                    prep.problems, prep.rejected)


def _levels(policy: CompiledPolicy, scopes: Mapping[str, Elements], debtor_index: np.ndarray, n: int
            ) -> tuple[LongTables, np.ndarray]:
    """The accepted elements as the vector evaluator's levels: rows by parent, then ``order_by``, then table order."""
    part = policy.scoped
    assert part is not None
    levels: dict[str, Level] = {}
    index: dict[str, np.ndarray] = {}  # scope -> table row -> row in its level (-1: not decided)
    graded_keys = np.zeros(0, dtype=object)
    for s in _parents_first(part.scopes):
        el = scopes[s.name]
        m = len(el.parent)
        # Arrays here are a row of every element (millions): each temporary costs its first touch of
        # memory, so each is made once and reused where it can be.
        debtor = debtor_index[el.debtor]
        every = bool((debtor >= 0).all()) if m else True  # none rejected nor orphaned: no gather
        rows = np.arange(m) if every else np.flatnonzero(debtor >= 0)
        if s.parent is None:
            up = debtor
        elif len(index[s.parent]):  # an orphan's -1 reads some row: its debtor is -1, so ``rows`` drops it
            up = index[s.parent][el.parent]
        else:  # no parent row at all (an empty exposures table): every row here is an orphan
            up = np.full(m, -1, np.int64)
        del debtor
        parent = up if every else up[rows]
        keys = [parent] if el.order is None else [el.order if every else el.order[rows], parent]
        if not _in_order(keys):  # lexsort is stable: ties keep the table's order
            order = np.lexsort(keys)
            rows, parent = rows[order], parent[order]
            every = False
        parent = parent.astype(np.int64, copy=False)
        if len(parent):
            starts = np.searchsorted(parent, np.arange(parent[-1] + 1))
            pos = np.arange(len(parent), dtype=np.int64)
            pos -= starts[parent]
        else:
            pos = np.zeros(0, np.int64)
        if every:
            at = rows  # row i of the table is row i of its level
        else:
            at = np.full(m, -1, np.int64)
            at[rows] = np.arange(len(rows))
        index[s.name] = at
        if every or (len(rows) == m and (not m or (rows[0] == 0 and bool((rows[1:] > rows[:-1]).all())))):
            env = dict(el.env)  # every row decided, in the table's order: the checked columns as they are
        else:
            env = {k: Col(c.data[rows], c.valid[rows], codes=None if c.codes is None else
                          (c.codes[0][rows], c.codes[1])) for k, c in el.env.items()}
        levels[s.name] = Level(s.name, s.parent, parent, pos, env, [])
        if s.name == part.graded and el.keys is not None:
            graded_keys = el.keys[rows]
    return LongTables(policy, n, levels), graded_keys


def _in_order(keys: list[np.ndarray]) -> bool:
    """Rows already sorted by the last key, then the one before (a table written parent by parent is)."""
    last = keys[-1]
    if len(last) < 2:
        return True
    # booleans of the neighbours compared, not differences: an eighth of the memory of np.diff's
    rising = last[1:] > last[:-1]
    if not bool((rising | (last[1:] == last[:-1])).all()):
        return False
    if len(keys) == 1:
        return True
    first = keys[0]
    rising |= first[1:] >= first[:-1]
    return bool(rising.all())


# ------------------------------------------------------------------ deciding


@dataclass
class LongBatch:
    """Long tables decided: one row per debtor, one per exposure; rejects, orphans and the accounting."""

    policy: CompiledPolicy
    decisions: pd.DataFrame
    exposures: pd.DataFrame
    rejects: list[dict[str, Any]]
    orphans: list[dict[str, Any]]
    counts: dict[str, Count]
    timings: dict[str, float] = field(default_factory=dict)
    refused_params: dict[str, int] = field(default_factory=dict)  # action id -> computed parameters refused

    @property
    def decided(self) -> int:
        return len(self.decisions)

    def summary(self) -> dict[str, dict[str, int]]:
        return {name: {"read": c.read, "decided": c.decided, "rejected": c.rejected, "orphaned": c.orphaned}
                for name, c in self.counts.items()}

    def reject_lines(self) -> list[dict[str, Any]]:
        """The lines of ``--rejects``: each rejected debtor, then each orphaned row (``"orphaned": true``),
        in the shape of a rejected debtor (its table, row and the problem)."""
        fixed = ("table", "row", "client_id", "code", "message", "field")
        orphans = [{"table": o["table"], "row": o["row"], "client_id": o["client_id"],
                    **{k: v for k, v in o.items() if k not in fixed},  # the parent key the row gives
                    "problems": [{"table": o["table"], "row": o["row"], "field": o.get("field", CLIENT_ID),
                                  "code": o["code"], "message": o["message"]}], "orphaned": True}
                   for o in self.orphans]
        return [*self.rejects, *orphans]

    def batch_summary(self) -> dict[str, Any]:
        """``batch``'s summary, as for JSON Lines of debtors (accounting of the debtors, counts by grade,
        warning, action and segment, exposures by grade), with the orphans and every table's accounting."""
        from .batch import BatchResult, summary
        from .scoped_batch import with_decided_without_elements

        s = summary(BatchResult(self.policy, self.decisions, self.rejects, self.counts[DEBTORS].read,
                                refused_params=self.refused_params))
        s["accounting"]["orphaned"] = len(self.orphans)
        with_decided_without_elements(s, self.decisions)
        s["versions"] = [{"version": self.policy.version, "sha256": self.policy.sha256, "decided": self.decided}]
        e = self.exposures
        m = max(len(e), 1)
        s["exposures"] = {"count": len(e), "by_grade": {
            g: {"count": int((e["grade"] == g).sum()), "share": round(int((e["grade"] == g).sum()) / m, 6)}
            for g in self.policy.grade_ids} if len(e) else {}}
        s["tables"] = self.summary()
        return s


def _distinct(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A debtor's problems, each once: a key cell with a control character was named by the key's check and again
    by the text check of the same cell (a reject listed the same problem twice)."""
    seen: set[tuple[Any, ...]] = set()
    out = []
    for e in entries:
        key = tuple(sorted((k, str(v)) for k, v in e.items()))
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def decide_long(read: LongRead) -> ScopedRun:
    """The accepted debtors decided column-wise over their long tables."""
    prep = read.prep
    res = evaluate_columns(read.policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days,
                           scoped=read.tables)
    return ScopedRun(res, read.tables)


def run_long_batch(policy: CompiledPolicy, source: Path | Mapping[str, Path], as_of: str | None = None,
                   workers: int = 2, screen: Screen | None = None, encoding: str = "utf-8") -> LongBatch:
    """Read, check and decide a portfolio of long tables; every row of every table accounted for.

    The accepted debtors are decided in chunks (:func:`chunk_debtors`) on ``workers`` threads: numpy,
    pandas and Arrow release the GIL for most of the work. The tables do not depend on the chunks.
    """
    from concurrent.futures import ThreadPoolExecutor

    from .batch import concat_chunks

    timings: dict[str, float] = {}
    read = read_long_tables(policy, source, as_of, timings, screen, encoding)
    t, cpu = time.perf_counter(), time.process_time()
    n = len(read.prep.rows)
    size = chunk_debtors(policy)
    starts = list(range(0, n, size)) or [0]
    heavy = shared_columns(policy) * CHUNK_DEBTORS > CHUNK_COLUMNS  # its chunks' temporaries are what peaks

    def work(start: int) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
        part = chunk(read, start, min(start + size, n))
        run = decide_long(part)
        frames = debtor_frame(part, run), exposure_frame(part, run), run.debtors.refused_params
        del part, run
        if heavy:
            _give_back_freed_memory()
        return frames

    if workers <= 1 or len(starts) == 1:
        frames = [work(s) for s in starts]
    else:
        with ThreadPoolExecutor(workers) as pool:
            frames = list(pool.map(work, starts))
    decisions = concat_chunks([f[0] for f in frames])
    exposures = concat_chunks([f[1] for f in frames])
    timings["evaluate"] = time.perf_counter() - t  # and the frames, chunk by chunk
    timings["cpu_evaluate"] = time.process_time() - cpu
    refused: dict[str, int] = {}
    for f in frames:
        for aid, count in f[2].items():
            refused[aid] = refused.get(aid, 0) + count
    return LongBatch(policy, decisions, exposures, read.rejects, read.orphans, read.counts, timings, refused)


def chunk_debtors(policy: CompiledPolicy) -> int:
    """Debtors decided at a time: ``CHUNK_DEBTORS``, or fewer when the shared columns the evaluator keeps for a
    chunk would pass ``CHUNK_COLUMNS`` (at 10,000 a chunk 2.1.0 decides about as fast and peaks 0.35 GB lower;
    2.0.0, with few such columns, keeps 20,000: 10,000 cost it a sixth more)."""
    return max(1, min(CHUNK_DEBTORS, CHUNK_COLUMNS // max(shared_columns(policy), 1)))


def _give_back_freed_memory() -> None:
    """Hand the memory a decided chunk freed back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    A chunk's temporaries are numpy arrays of a few hundred kB each; glibc keeps such blocks in its heaps once
    freed, and over 18 chunks of 2.1.0 they held a gigabyte of freed memory: a run of 350,000 debtors peaked at
    4.8 GB. Trimming after each chunk cost about 6% of the deciding stage and took half a gigabyte off that peak.
    Only for a policy whose evaluator keeps many shared columns: 2.0.0's peak did not move, its deciding stage
    took a sixth longer.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    import ctypes
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (macOS, musl): its allocator is left as it is
        return None


def chunk(read: LongRead, a: int, b: int) -> LongRead:
    """Debtors ``a`` to ``b`` (accepted debtors) and their elements: each level is sorted by parent, so
    a chunk's elements are one slice of it."""
    prep = read.prep
    sl = slice(a, b)
    inputs = {k: Col(c.data[sl], c.valid[sl], None if c.present is None else c.present[sl],
                     None if c.codes is None else (c.codes[0][sl], c.codes[1])) for k, c in prep.inputs.items()}
    segments = None if prep.segments is None else prep.segments[sl]
    for k, c in prep.inputs.items():
        if prep.segments is not None and c.data is prep.segments:
            segments = inputs[k].data
    part = Prepared(prep.rows[sl], prep.client_ids[sl], prep.as_of_days[sl], inputs, segments)
    bounds: dict[str | None, tuple[int, int]] = {None: (a, b)}
    levels: dict[str, Level] = {}
    keys = read.keys
    scoped = read.policy.scoped
    assert scoped is not None
    for s in _parents_first(scoped.scopes):
        level = read.tables.levels[s.name]
        base, top = bounds[s.parent]
        lo, hi = (int(x) for x in np.searchsorted(level.parent, [base, top]))
        bounds[s.name] = (lo, hi)
        levels[s.name] = Level(s.name, s.parent, level.parent[lo:hi] - base, level.pos[lo:hi],
                               {k: Col(c.data[lo:hi], c.valid[lo:hi], codes=None if c.codes is None else
                                       (c.codes[0][lo:hi], c.codes[1])) for k, c in level.env.items()}, [])
        if s.name == scoped.graded:
            keys = read.keys[lo:hi]
    return LongRead(read.policy, part, LongTables(read.policy, b - a, levels), keys, [], [], {})


def debtor_frame(read: LongRead, run: ScopedRun) -> pd.DataFrame:
    """One row per debtor, as ``batch`` gives it for JSON Lines of nested debtors (``row``: the debtors table's)."""
    from .batch import decisions_frame
    from .scoped_batch import with_exposures

    frame = decisions_frame(read.policy, read.prep, run.debtors, read.prep.rows)
    return with_exposures(read.policy, frame, run, read.keys)


def exposure_frame(read: LongRead, run: ScopedRun) -> pd.DataFrame:
    """One row per exposure: its debtor, final and own grade, deciding rule, fired floors and metrics."""
    from .scoped_batch import exposure_columns

    policy = read.policy
    part = policy.scoped
    assert part is not None
    if part.graded is None:
        return pd.DataFrame({"row": [], "client_id": [], "exposure_id": []})
    parent = run.tables.levels[part.graded].parent
    head = {"row": read.prep.rows[parent] + 1, "client_id": _texts(read.prep.client_ids, parent),
            "exposure_id": _texts(read.keys)}
    return exposure_columns(policy, run, head, _date_texts)


def _texts(values: np.ndarray, take: np.ndarray | None = None) -> Any:
    """Text cells as a pandas text column built by Arrow (a million Python strings cost more)."""
    import pyarrow as pa

    arr = pa.array(values, pa.string())
    return pd.array(arr if take is None else arr.take(take), dtype="str")


def _date_texts(days: np.ndarray, valid: np.ndarray) -> Any:
    """Dates as ISO text (null where not valid), formatted by Arrow: the cells ``batch`` writes for a date metric.

    Each day of the column's span is formatted once and the cells taken from those texts: a column of a chunk
    spans a few thousand days at most, and Arrow formats a date at about 70 ns, which made the date metrics of
    2.1.0 (some fifty) a seventh of its long-table decisions. A span wider than the column formats each cell.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    days, valid = np.asarray(days), np.asarray(valid, bool)
    if valid.any():
        lo, hi = int(days[valid].min()), int(days[valid].max())
        if hi - lo < len(days):
            span = pc.cast(pa.array(np.arange(lo, hi + 1, dtype=np.int32), type=pa.date32()), pa.string())
            at = pa.array(np.where(valid, days - lo, 0).astype(np.int32), mask=~valid)
            return pd.array(span.take(at), dtype="str")
    dates = pa.array(np.where(valid, days, 0).astype(np.int32), type=pa.date32(), mask=~valid)
    return pd.array(pc.cast(dates, pa.string()), dtype="str")


def write_decisions(result: LongBatch, decisions: Path, exposures: Path | None = None,
                    rejects: Path | None = None) -> None:
    """The debtor and exposure decision tables (Parquet, CSV or JSON Lines by extension); rejects and orphans
    as JSON Lines (or CSV), one line per rejected debtor or orphaned row."""
    from .batch import write_rejects, write_tables

    write_tables([(result.decisions, decisions), *([] if exposures is None else [(result.exposures, exposures)])])
    if rejects is not None:
        write_rejects(result.reject_lines(), rejects)


# ------------------------------------------------------------------ nested records


RECORDS_AT_ONCE = 5_000  # debtors whose nested records are built together (memory: a chunk, not the portfolio)


def nested_records(policy: CompiledPolicy, source: Path | Mapping[str, Path], ids: list[str], encoding: str = "utf-8"
                   ) -> Iterator[dict[str, Any]]:
    """The nested record of each debtor of ``ids`` (decided debtors, in this order) as the tables hold it: the
    record ``decide`` would be sent for it, so that its decision can be recorded as ``decide`` records it.

    Cells become the JSON values they stand for as in a 1.x table's records (a CSV cell the policy
    reads as a string stays text; an empty cell is no field); a debtor series is the list of its
    rows; each scope's elements are a list in its parent (empty when the table has none), in the
    table's order. The tables are read once; the records are built :data:`RECORDS_AT_ONCE` debtors at a
    time, each chunk's rows of every table taken by their debtor's place (all at once, a portfolio of 200,000
    debtors held 8.8 GB of nested dicts while it was recorded).
    """
    from .batch import row_records, text_columns

    files = locate(policy, source)
    specs = layout(policy)
    part = policy.scoped
    assert part is not None
    debtors, text = read_frame(files[DEBTORS], specs[0].columns, encoding=encoding)
    first = _FirstRows(client_id_text(debtors[CLIENT_ID]), arrow=False)
    wanted = first.series.reindex(pd.Index(ids, dtype=object)).to_numpy(dtype=np.int64)  # decided: each id is there
    for t in specs:
        if t.series is not None and t.name in files:
            frame, stext = read_frame(files[t.name], (CLIENT_ID, *t.columns), encoding=encoding)
            debtors, _, _ = _widen(debtors, frame, stext or text, t, first, [], Count())
    debtors = debtors.iloc[wanted].reset_index(drop=True)
    keep = text_columns(policy, [str(c) for c in debtors.columns])
    place = pd.Index(ids, dtype=object)
    tables = [(part.scope(t.scope), t, _ScopeRows(t, files[t.name], place, encoding) if t.name in files else None)
              for t in specs if t.scope is not None]
    for start in range(0, len(ids), RECORDS_AT_ONCE):
        stop = min(start + RECORDS_AT_ONCE, len(ids))
        records = list(row_records(policy, debtors.iloc[start:stop], text, keep))
        owners: dict[str | None, dict[tuple[str, ...], dict[str, Any]]] = {
            None: {(r[CLIENT_ID],): r for r in records}}
        for s, t, rows in tables:
            owners[s.name] = _attach(s, t, rows, start, stop, owners[s.parent], part.inputs[s.name])
        yield from records


class _ScopeRows:
    """A scope table read once for :func:`nested_records`: its rows grouped by their debtor's place in the ids
    (table order kept within a debtor), the text of its key columns."""

    def __init__(self, t: TableSpec, path: Path, place: pd.Index, encoding: str) -> None:
        self.frame, self.text = read_frame(path, (*t.ids, *t.columns), encoding=encoding, keys=t.ids)
        self.keys = [self._texts(k) for k in t.parent_keys]
        self.own = self._texts(t.key)
        at = place.get_indexer(pd.Index(self.keys[0], dtype=object)) if len(self.frame) else np.zeros(0, np.int64)
        self.order = np.argsort(at, kind="stable")  # by debtor, each debtor's rows in the table's order
        self.at = at[self.order]
        self.cells = self.frame.drop(columns=[k for k in t.parent_keys if k != t.key and k in self.frame.columns])

    def _texts(self, name: str | None) -> np.ndarray:
        if name is None or name not in self.frame.columns:
            return np.full(len(self.frame), None, dtype=object)
        return client_id_text(self.frame[name]).to_numpy(dtype=object, na_value=None)

    def between(self, start: int, stop: int) -> np.ndarray:
        """The table's rows of the debtors at places ``start`` to ``stop`` (excluded)."""
        lo, hi = np.searchsorted(self.at, [start, stop])
        return self.order[lo:hi]


def _attach(s: ScopeSpec, t: TableSpec, table: _ScopeRows | None, start: int, stop: int,
            parents: Mapping[tuple[str, ...], dict[str, Any]], inputs: tuple[Any, ...]
            ) -> dict[tuple[str, ...], dict[str, Any]]:
    """One scope's rows of a chunk's debtors as elements of their parents' lists (every parent gets its list);
    returns the elements by their key path, for a child scope's rows to find."""
    from .batch import row_records

    for parent in parents.values():
        _put_list(parent, s.list_field)
    mine: dict[tuple[str, ...], dict[str, Any]] = {}
    if table is None:
        return mine
    rows = table.between(start, stop)
    keys = [k[rows] for k in table.keys]
    own = table.own[rows]
    at = [parents.get(tuple(k[i] for k in keys)) for i in range(len(rows))]
    owned = np.array([a is not None for a in at], dtype=bool)
    cells = table.cells.iloc[rows[owned]].reset_index(drop=True)
    keep = {spec.source for spec in inputs if spec.type in ("string", "grade")} | ({t.key} if t.key else set())
    for i, element in zip(np.flatnonzero(owned), row_records(None, cells, table.text, keep), strict=True):
        parent = at[i]
        assert parent is not None
        _get_list(parent, s.list_field).append(element)
        if t.key is not None:
            mine[(*(k[i] for k in keys), own[i])] = element
    return mine


def _put_list(record: dict[str, Any], dotted: str) -> None:
    cur = record
    parts = dotted.split(".")
    for p in parts[:-1]:
        cur = cur.setdefault(p, {})
    cur.setdefault(parts[-1], [])


def _get_list(record: dict[str, Any], dotted: str) -> list[dict[str, Any]]:
    cur: Any = record
    for p in dotted.split("."):
        cur = cur[p]
    return cur  # type: ignore[no-any-return]
