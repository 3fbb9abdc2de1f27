"""Portfolio batches: read a table, check every row, decide the good ones column-wise, account for all.

``rows read = decided + rejected``, always. The decisions table keeps the input order, one row per
decided client: grade, the rule that decided it, score, fired floors, warnings, actions (after
conflicts), undetermined rules and every metric. ``--records`` also writes the full decision
records (the same JSON ``decide`` prints) through the shared record builder.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import itertools
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
import pandas as pd

from ..decide.canonical import canonical_json
from ..decide.evaluate import Decider
from ..decide.inputs import INT_RANGE, unwritable_integers
from ..decide.records import _clean, _nan_as_none, _record_builder, column_path, flatten
from ..diagnostics import Diagnostic, InputError, UsageError
from ..policy.compiler import CompiledPolicy
from ..policy.loader import CutLine, JSONInputError, bounded_lines, parse_json_text, readable_client_id
from ..record.segments import SEGMENT_COMPRESSION, SEGMENT_FORMAT
from .frame import (
    Prepared,
    Problem,
    client_id_text,
    duplicate_ids,
    exact_integer_ids,
    leaf_types,
    mark_stored_nans_in_frame,
    path_text,
    prepare,
    read_parquet_frame,
    refuse_inexact_ids,
)
from .vector import Col, VectorResults, days_to_date, evaluate_columns

if TYPE_CHECKING:
    from ..decide.segment import SegmentRecords

READ_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
                ".xlsx": "xlsx"}
WRITE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
CHUNK_ROWS = 250_000


# -------------------------------------------------------------------- reading


@dataclass
class PeriodRows:
    """The accounting of a long ``--financials`` table: rows read = joined to a client + rejected."""

    rows_read: int
    joined: int
    rejects: list[dict[str, Any]]


@dataclass
class Table:
    frame: pd.DataFrame
    text: bool  # cells are text (CSV): numbers, booleans and dates are parsed
    problems: list[Problem] = field(default_factory=list)  # rows unreadable before any column check
    positions: np.ndarray | None = None  # input row of each frame row, when some rows could not be read
    rows_read: int = 0
    periods: PeriodRows | None = None  # when periods came as a long table
    source: Path | None = None  # JSON Lines: the file the records are read again from (canonical inputs)
    offsets: np.ndarray | None = None  # JSON Lines: byte offset of each frame row's line in ``source``
    late: list[Problem] = field(default_factory=list)  # frame rows whose record has no canonical JSON
    lines: np.ndarray | None = None  # CSV: the line (as an editor numbers it) of each input row
    unparsed_ids: dict[int, str] = field(default_factory=dict)  # JSON Lines: the client_id read off a line no JSON

    @property
    def records(self) -> bool:
        """The rows are JSON records (JSON Lines): each is held to ``decide``'s reading of a record."""
        return self.offsets is not None


def check_outputs(source: Path, beside: Path | None, outputs: Mapping[str, Path | None],
                   folders: Sequence[str] = ()) -> None:
    """Each file a run writes, checked before anything is decided or recorded: a folder that is not there
    failed the run after every decision was recorded; an output that is an input (``source``, ``beside``: a
    financials table, a scenario) or another output replaced it without a word. ``folders``: the options whose
    output is a folder a run creates (``--engine dask``)."""
    check_input(source)
    inputs = {source.resolve(): "the input", **({beside.resolve(): "an input"} if beside else {})}
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        at = path.resolve()
        if at in inputs:
            raise UsageError([Diagnostic("output-is-input", f"{option} {path} is {inputs[at]}: writing it would "
                                         "replace what is being decided", file=str(path),
                                         hint=f"give {option} another file")])
        if any(at.parent == i for i in inputs if i.is_dir()):  # beside the tables of a folder: read as one next time
            why = "the next run would read it as a table of the portfolio" if path.suffix.lower() in (
                ".csv", ".parquet") else "a run's outputs are kept out of the folder it reads"
            raise UsageError([Diagnostic("output-is-input", f"{option} {path} is in the folder of tables being "
                                         f"decided: {why}", file=str(path), hint=f"write {option} outside "
                                         f"{path.parent} (a subfolder of it is fine)")])
        if at in seen:
            raise UsageError([Diagnostic("output-twice", f"{option} {path} is also {seen[at]}: one would overwrite "
                                         "the other", file=str(path), hint=f"give {option} another file")])
        seen[at] = option
        # the path as given is stat'ed too: /dev/stdout resolves to /proc/N/fd/pipe:[...], which does not exist,
        # while the pipe it names does (impact --html /dev/stdout mixed a page into the JSON on stdout)
        kind = next((p for p in (at, path) if p.exists() and not p.is_dir() and not p.is_file()), None)
        if kind is not None:  # a folder: the option's own check says why
            raise UsageError([Diagnostic("output-not-a-file", f"{option} {path} is {_kind_of(kind)}, not a "
                                         f"{'folder' if option in folders else 'file'}: a run writes its output "
                                         "beside it and renames it over it, which would replace it",
                                         file=str(path),
                                         hint=f"give {option} the path of a regular file; nothing was written")])
        if option not in folders and not at.parent.is_dir():
            raise UsageError([Diagnostic("file-missing", f"{option} {path}: no such folder {path.parent}",
                                         file=str(path), hint="create the folder first; nothing was decided")])


def check_input(path: Path) -> None:
    """A portfolio given as a named pipe, a device or a socket (``<(cat ...)``, a FIFO): a run reads its input
    more than once (its kind, its lines, then the records), and a pipe gives its bytes once, so the second read
    waited for a writer that had gone, for ever. Refused before anything is read, as such an output is."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise UsageError([Diagnostic("input-not-a-file", f"{path} is {_kind_of(path)}, not a regular file: a run "
                                     "reads a file's size and lines before its records, and a pipe gives its bytes "
                                     "only once", file=str(path), hint="save it to a file first (... > "
                                     "portfolio.jsonl), or pipe it to a command that reads standard input "
                                     "(decide --stream, convert -)")])


def _kind_of(path: Path) -> str:
    """What a path that is no regular file is, in words: a named pipe, a device, a socket, a folder."""
    import stat

    mode = path.stat().st_mode
    return ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "a folder" if stat.S_ISDIR(mode) else "no regular file")


def read_table(path: Path, financials: Path | None = None, encoding: str = "utf-8") -> Table:
    """Read a client table in any supported format; rows that cannot even be parsed are problems.

    ``encoding`` is that of CSV files (a byte-order mark is skipped); the other formats define their own.
    """
    fmt = READ_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise unknown_format(path)
    if not path.exists():
        raise UsageError([Diagnostic("file-missing", f"no such file: {path}", file=str(path))])
    try:
        if fmt == "csv":
            table = _read_csv(path, encoding)
            frame = table.frame
            if len(frame.columns) == 1:  # one column whose name holds the others: not comma separated
                sep = next((c for c in (";", "\t", "|") if c in str(frame.columns[0])), None)
                if sep is not None:
                    raise InputError([Diagnostic(
                        "unreadable", f"the columns are separated by {sep!r}, not by commas", file=str(path),
                        hint="save the table as 'CSV UTF-8 (comma delimited)'" + (
                            " (Excel in a European locale writes ';')" if sep == ";" else ""))])
        elif fmt == "parquet":
            import pyarrow.parquet as pq

            check_header(pq.read_schema(path).names, path)
            frame = exact_integer_ids(mark_stored_nans_in_frame(read_parquet_frame(path), path), path, ("client_id",))
            if "client_id" in frame.columns:
                refuse_inexact_ids(frame["client_id"], "client_id", path)
            table = Table(frame, text=False, rows_read=len(frame))
        elif fmt == "xlsx":
            # Cells as Excel holds them: a column of TRUE/FALSE with blanks must not turn into 0.0/1.0.
            frame = pd.read_excel(path, engine="openpyxl", dtype=object, header=None)
            if len(frame):  # the first row is the header, checked before any column is named after it
                header = [str(h) for h in frame.iloc[0].tolist()]
                check_header(header, path, line=1)
                frame = frame.iloc[1:].reset_index(drop=True).set_axis(header, axis=1)
                if "client_id" in frame.columns:
                    refuse_inexact_ids(frame["client_id"], "client_id", path, doubles=True)
            table = Table(frame, text=False, rows_read=len(frame))
        else:
            table = _read_jsonl(path)
    except (UsageError, InputError):
        raise
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start] if isinstance(exc.object, bytes) and exc.start < len(exc.object) else None
        utf8 = codecs.lookup(encoding).name == "utf-8"
        raise InputError([Diagnostic("unreadable", f"cannot decode the file as {encoding}"
                                     + (f" (byte 0x{bad:02x})" if bad is not None else ""), file=str(path),
                                     hint="Excel in a Chinese locale saves CSV as GBK: pass --encoding gb18030, or "
                                          "save as 'CSV UTF-8'" if utf8 else
                                          "pass the encoding the file was saved in (--encoding)")]) from None
    except Exception as exc:  # any reader's complaint (pyarrow, openpyxl, zipfile, csv) means: not a readable table
        raise InputError([Diagnostic("unreadable", f"cannot read the table: {type(exc).__name__}: {exc}",
                                     file=str(path), hint=f"is it really a {fmt} file?")]) from None
    if financials is not None:
        table.frame, table.periods = join_financials(table, read_table(financials, encoding=encoding))
        table.offsets = None  # a record is now its line and its periods from the other table
    return table


@dataclass
class CsvLayout:
    """Where each record of a CSV file starts, as a text editor numbers its lines, and its cell count."""

    header: list[str]
    lines: np.ndarray  # 1-based line of each record after the header (quoted newlines counted)
    cells: np.ndarray  # cells of each record


def csv_layout(data: bytes, encoding: str) -> CsvLayout:
    """The records of a CSV file, blank lines skipped (as the reader skips them).

    A file without quotes is split at its newlines with numpy; one with quotes is walked by the
    ``csv`` module, which knows a quoted newline from a record's end.
    """
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    if b'"' not in data:
        arr = np.frombuffer(data, np.uint8)
        ends = np.flatnonzero(arr == 10)
        starts = np.concatenate([[0], ends + 1])
        ends = np.concatenate([ends, [len(arr)]])
        commas = np.flatnonzero(arr == 44)  # positions only: a few per record, not a count per byte
        cells = np.searchsorted(commas, ends) - np.searchsorted(commas, starts) + 1
        blank = np.zeros(len(starts), bool)
        for k in np.flatnonzero((cells == 1) & (ends - starts < 64)):  # a blank line has no comma and is short
            blank[k] = not data[starts[k]:ends[k]].strip()
        numbers = np.flatnonzero(~blank) + 1
        if not len(numbers):
            return CsvLayout([], np.zeros(0, np.int64), np.zeros(0, np.int64))
        first = numbers[0] - 1
        head = data[starts[first]:ends[first]].decode(enc, errors="replace").rstrip("\r")
        if first == 0 and head.startswith("\ufeff"):
            head = head[1:]
        keep = ~blank
        keep[first] = False
        return CsvLayout(head.split(","), numbers[1:].astype(np.int64), cells[keep].astype(np.int64))
    reader = csv.reader(io.StringIO(data.decode(enc), newline=""))
    header: list[str] | None = None
    lines, counts = [], []
    before = 0
    for record in reader:
        start, before = before + 1, reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue
        if header is None:
            header = record
            continue
        lines.append(start)
        counts.append(len(record))
    return CsvLayout(header or [], np.array(lines, np.int64), np.array(counts, np.int64))


def check_header(names: list[Any], path: Path, line: int | None = None) -> None:
    """Refuse a header naming a column twice, by name: a reader would rename one (``x.1``) and read it as a field.

    A header name holding a carriage return is a file whose lines end with one alone (an old Mac export): the
    whole file reads as its header, so it is said once, not as hundreds of repeated "columns"."""
    if any("\r" in str(name) for name in names):
        raise InputError([Diagnostic("unreadable", "the header holds carriage returns: the lines of the file end "
                                     "with a carriage return alone, so the whole file reads as one line",
                                     file=str(path), line=line,
                                     hint="save the file with line feeds (LF or CRLF) at the ends of its lines")])
    seen: dict[str, int] = {}
    twice = []
    for k, name in enumerate(map(str, names), 1):
        if name in seen:
            twice.append(Diagnostic("duplicate-column", f"column '{name}' appears twice in the header (columns "
                                    f"{seen[name]} and {k})", file=str(path), line=line,
                                    hint="rename or remove one of them: a cell cannot say which one it fills"))
        seen.setdefault(name, k)
    if twice:
        raise InputError(twice)


def _refuse_utf8_as_other(data: bytes, encoding: str, path: Path) -> None:
    """A UTF-8 file read with ``--encoding gb18030`` (or Latin-1) decodes without an error, as mojibake: 制造业 would
    be read as 鍒堕€犱笟, a value no policy's list holds, and the client decided as one outside it. Text that is
    valid UTF-8 beyond ASCII is UTF-8 (a GB18030 or Latin-1 text of any length almost never is): refused, named."""
    if codecs.lookup(encoding).name == "utf-8" or data.isascii():  # the usual UTF-8 file: no scan of its bytes
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    at = next(i for i, ch in enumerate(text) if ord(ch) > 127)
    word = text[at:at + 8].split(",")[0].split("\n")[0].strip() or text[at]
    misread = word.encode("utf-8").decode(encoding, errors="replace")
    raise InputError([Diagnostic("unreadable", f"the file is UTF-8, not {encoding}: read as {encoding}, '{word}' "
                                 f"would be '{misread}'", file=str(path),
                                 hint="drop --encoding: UTF-8 is the default (a byte-order mark is skipped)")])


def _refuse_wide(data: bytes, encoding: str, path: Path) -> None:
    """A CSV of UTF-16 or UTF-32 text (Excel's 'Unicode text', PowerShell's '>'): its NUL bytes and line ends made
    the header 'hold carriage returns', a reason that sent the reader elsewhere. The records are found by their
    line-end bytes, which text of 2 or 4 bytes a character does not have (--encoding utf-16 read one row as two),
    so it is refused whatever --encoding says."""
    from ..policy.loader import wide_text

    wide = wide_text(data[:4])
    if wide is not None:
        raise InputError([Diagnostic("unreadable", f"{wide}; a table is read as text of one byte a character "
                                     f"(--encoding {encoding})", file=str(path),
                                     hint="save it as 'CSV UTF-8 (comma delimited)'")])


def _read_csv(path: Path, encoding: str) -> Table:
    """A CSV file as text cells, each record's line known; a header naming a column twice is refused.

    A ragged record (more or fewer cells than the header) is rejected on its own, by its line;
    the others are read (pandas would read one with more cells as an index, one with fewer as
    empty cells).
    """
    data = path.read_bytes()
    _refuse_wide(data, encoding, path)
    _refuse_utf8_as_other(data, encoding, path)
    layout = csv_layout(data, encoding)
    check_header(layout.header, path, line=1)
    width = len(layout.header)
    ragged = np.flatnonzero(layout.cells != width)
    enc = "utf-8-sig" if codecs.lookup(encoding).name == "utf-8" else encoding
    if len(ragged):
        records = [r for r in csv.reader(io.StringIO(data.decode(enc), newline=""))
                   if r and not (len(r) == 1 and not r[0].strip())][1:]
        good = np.flatnonzero(layout.cells == width)
        frame = pd.DataFrame([records[i] for i in good], columns=layout.header, dtype=str) if len(good) else \
            pd.DataFrame({c: pd.Series(dtype=str) for c in layout.header})
        problems = [Problem(int(i), "(row)", f"{layout.cells[i]} cells, header has {width}", "ragged-row")
                    for i in ragged]
        return Table(frame, text=True, problems=problems, positions=good.astype(np.int64),
                     rows_read=len(layout.cells), lines=layout.lines)
    # Keep text as text: 'NaN' or 'abc' in a number column must be reported, not read as null.
    frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, na_values=[], encoding=enc)
    lines = layout.lines if len(layout.lines) == len(frame) else None  # a layout the reader read otherwise
    return Table(frame, text=True, rows_read=len(frame), lines=lines)


# An integer of 19 digits or more may be beyond 64 bits (the canonical JSON encoder's limit).
_LONG_DIGITS = re.compile(rb"\d{19,}")


def refuse_wide_lines(path: Path) -> None:
    """A JSON Lines file of UTF-16 or UTF-32 text (PowerShell 5's '>' writes UTF-16) is refused whole: read line by
    line, each line was a record 'not UTF-8', and the line ends of wide text made one record two rows."""
    from ..policy.loader import wide_text

    with path.open("rb") as fh:
        wide = wide_text(fh.read(4))
    if wide is not None:
        raise InputError([Diagnostic("unreadable", f"{wide}; JSON Lines are UTF-8", file=str(path),
                                     hint="save it as UTF-8 (PowerShell: Out-File -Encoding utf8)")])


def _read_jsonl(path: Path, only: Collection[int] | None = None) -> Table:
    """A JSON Lines table (with ``only``: of those line numbers, the rest of the file left to others)."""
    refuse_wide_lines(path)
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    positions: list[int] = []
    offsets: list[int] = []
    late: list[Problem] = []
    unparsed_ids: dict[int, str] = {}
    n = offset = read = 0
    with path.open("rb") as fh:
        for n, line in enumerate(bounded_lines(fh), 1):  # a runaway line is refused, not held
            at, offset = offset, offset + (line.length if isinstance(line, CutLine) else len(line))
            if only is not None and n not in only:
                continue
            if not line.strip():  # a blank line (an editor's after the last record, say) is no row
                continue
            read += 1
            try:
                record = parse_json_text(line)
            except JSONInputError as exc:
                problems += [Problem(n - 1, path or "(line)", msg, code) for code, path, msg in exc.problems]
                if (cid := readable_client_id(line)) is not None:
                    unparsed_ids[n - 1] = cid
                continue
            if not isinstance(record, dict):
                problems.append(Problem(n - 1, "(record)", "a client record is a JSON object", "wrong-type"))
                continue
            if _LONG_DIGITS.search(line):
                late += [Problem(len(rows), d.path or "(record)", d.message) for d in unwritable_integers(record)]
            rows.append(flatten(record, shapes=True))
            positions.append(n - 1)
            offsets.append(at)
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    # Typed format: keep Python objects exactly as parsed (no inference that would turn 1 into 1.0).
    frame = frame.astype(object) if len(frame.columns) else frame
    return Table(frame, text=False, problems=problems, positions=np.array(positions, dtype=np.int64),
                 rows_read=read, source=path, offsets=np.array(offsets, dtype=np.int64),
                 late=late, unparsed_ids=unparsed_ids)


def read_lines(path: Path, only: Collection[int]) -> Table:
    """The lines numbered ``only`` of a JSON Lines file as a client table (row numbers stay the file's lines)."""
    return _read_jsonl(path, only)


def unwritable_cells(frame: pd.DataFrame, read: Iterable[str]) -> list[Problem]:
    """Text cells of columns the policy does not ``read`` that stand for an integer beyond 64 bits.

    ``decide`` refuses such a record when it hashes it, wherever the number is; a CSV row holding
    one is refused the same way (a column the policy reads refuses it sooner, as out of range or
    keeps it as text).
    """
    out: list[Problem] = []
    read = set(read)
    for c in frame.columns:
        col = frame[c]
        if not len(col) or col.dtype.kind in "iufbM" or str(c) in read:
            continue
        text = col.astype(object).where(col.notna(), "").astype(str)
        long = text.str.len().to_numpy() >= 19
        for i in np.flatnonzero(long):
            v = _clean(text.iat[i], True)
            if type(v) is int and not INT_RANGE[0] <= v <= INT_RANGE[1]:
                out += [Problem(int(i), path_text(column_path(c)), d.message) for d in unwritable_integers(v)]
    return out


def join_financials(clients: Table, periods: Table) -> tuple[pd.DataFrame, PeriodRows]:
    """A long table of periods (client_id + fields) as wide ``financials[k].x`` columns, and its accounting.

    Periods are sorted by ``period_end`` when the table has one (else kept in file order). A period
    row that names no client of the client table, or no client at all, is a reject of its own, so
    no row of either table is lost without a word. Client ids match as text, as everywhere.
    """
    frame = periods.frame
    if "client_id" not in frame.columns:
        raise UsageError([Diagnostic("missing-column", "the financials table needs a client_id column")])
    _refuse_wide_periods(clients)
    if periods.text != clients.text:  # one table CSV, the other typed: read the periods as the clients are read
        frame = frame.apply(lambda col: col if col.name == "client_id" else col.map(
            _as_text if clients.text else (lambda v: _clean(v, text=True)))) if len(frame) else frame
    keys = client_id_text(frame["client_id"])
    client_keys = client_id_text(clients.frame["client_id"]) if "client_id" in clients.frame.columns else None
    has_key = keys.notna().to_numpy()
    matched = has_key & (_is_in(keys, client_keys) if client_keys is not None else False)
    positions = periods.positions if periods.positions is not None else np.arange(len(frame), dtype=np.int64)
    rejects = [{"table": "financials", "row": int(p.row) + 1, "client_id": None,
                "problems": [{"field": p.path, "code": p.code, "message": p.message}]} for p in periods.problems]
    for i in np.flatnonzero(~matched):
        message = (f"client_id '{keys.iat[i]}' is not in the client table" if has_key[i] else
                   "required field 'client_id' is missing")
        rejects.append({"table": "financials", "row": int(positions[i]) + 1,
                        "client_id": keys.iat[i] if has_key[i] else None,
                        "problems": [{"field": "client_id", "code": "unmatched-period" if has_key[i] else
                                      "missing-field", "message": message}]})
    rejects.sort(key=lambda r: r["row"])
    joined = frame.drop(columns=["client_id"]).assign(_key=keys)[matched]
    if "period_end" in joined.columns:
        try:
            joined = joined.sort_values(["_key", "period_end"], kind="stable")
        except TypeError:  # dates and text mixed in one typed column: order by their text
            joined = joined.sort_values(["_key", "period_end"], kind="stable",
                                        key=lambda c: c.map(lambda v: "" if v is None else str(v)))
    joined["_k"] = joined.groupby("_key", sort=False).cumcount()
    wide = joined.pivot(index="_key", columns="_k")
    wide.columns = [f"financials[{k}].{f}" for f, k in wide.columns]
    wide = wide.reset_index()
    out = clients.frame.drop(columns=[c for c in clients.frame.columns if str(c).startswith("financials[")])
    out = out.assign(_key=client_keys if client_keys is not None else None).merge(
        wide, on="_key", how="left", sort=False).drop(columns=["_key"])
    accounting = PeriodRows(periods.rows_read, int(matched.sum()), rejects)
    if accounting.joined + len(rejects) != accounting.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"period accounting broken: {accounting}")
    return out, accounting


def _refuse_wide_periods(clients: Table) -> None:
    """Periods given twice (wide ``financials[k].x`` cells and a ``--financials`` table) are refused: the join
    would replace the cells, and a client would be decided on periods other than those its row holds.
    Columns without a value (a template's) replace nothing and pass."""
    wide = [c for c in clients.frame.columns if str(c).startswith("financials[")]
    if not wide:
        return
    cells = clients.frame[wide]
    held = cells.notna() & (cells != "") if clients.text else cells.notna()
    filled = [c for c, any_value in zip(wide, held.any(axis=0).tolist(), strict=True) if any_value]
    if filled:
        rows = int(held.any(axis=1).sum())
        raise UsageError([Diagnostic(
            "periods-given-twice", f"the client table holds periods in {len(filled)} financials[k] column(s) "
            f"({', '.join(filled[:3])}{', ...' if len(filled) > 3 else ''}; {rows} row(s)), and --financials "
            "gives periods too", hint="give the periods one way: drop the financials[k].x columns or --financials")])


def _is_in(values: pd.Series, known: pd.Series) -> np.ndarray:
    """``values.isin(known)`` for text keys, hashed by Arrow (pandas' Arrow-string isin goes value by value)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def arrow(s: pd.Series) -> Any:
        if isinstance(s.array, pd.arrays.ArrowExtensionArray):
            data = s.array._pa_array
            return (data if isinstance(data, pa.ChunkedArray) else pa.chunked_array([data])).cast(pa.string())
        return pa.chunked_array([pa.array(s.to_numpy(dtype=object, na_value=None), type=pa.string())])

    return np.asarray(pc.is_in(arrow(values), value_set=pa.concat_arrays(arrow(known).chunks) if len(known) else
                               pa.array([], pa.string()), skip_nulls=True).to_numpy(zero_copy_only=False), bool)


def _as_text(v: Any) -> Any:
    """A typed cell as a CSV cell holding the same value (periods joined to a CSV client table)."""
    v = _clean(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dt.date):
        return v.isoformat()
    return repr(v) if isinstance(v, float) else str(v)


# --------------------------------------------------------------- evaluation


@dataclass
class BatchResult:
    policy: CompiledPolicy
    decisions: pd.DataFrame
    rejects: list[dict[str, Any]]
    rows_read: int
    vector: VectorResults | None = None
    prepared: Prepared | None = None
    frame: pd.DataFrame | None = None
    text: bool = False
    chunks: list[tuple[int, Prepared]] = field(default_factory=list)
    periods: PeriodRows | None = None  # the accounting of a long --financials table
    source: Path | None = None  # JSON Lines: the records, read again for their canonical form
    offsets: np.ndarray | None = None
    refused_params: dict[str, int] = field(default_factory=dict)  # action id -> computed parameters refused

    @property
    def decided(self) -> int:
        return len(self.decisions)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


def _list_column(mask: np.ndarray, names: list[str]) -> pd.Series:
    """Per row, the names whose column is set (in ``names`` order), as an Arrow list column.

    Built from offsets and values without a Python loop over rows.
    """
    import pyarrow as pa

    # Row-major positions: each row's names come out in column order (flatnonzero is ~10x np.nonzero's speed).
    rows, cols = np.divmod(np.flatnonzero(mask), max(mask.shape[1], 1))
    counts = np.bincount(rows, minlength=mask.shape[0]) if mask.shape[0] else np.zeros(0, np.int64)
    offsets = np.zeros(mask.shape[0] + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    # the names once, then taken by position: no object array of one Python string per value
    values = pa.array(names, type=pa.string()).take(pa.array(cols)) if len(names) else pa.array([], pa.string())
    array = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values)
    return pd.Series(pd.arrays.ArrowExtensionArray(array))


def concat_chunks(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The tables of a run's chunks as one: a categorical column stays categorical when the chunks hold
    different categories (say as_of days), its categories their sorted union. pandas would turn it into
    text, hashing every cell again, and the table's column type would depend on how the run was chunked."""
    if len(frames) == 1:
        return frames[0]
    unions: dict[str, list[Any]] = {}
    for c in frames[0].columns:
        dtypes = [f[c].dtype for f in frames]
        if all(isinstance(d, pd.CategoricalDtype) for d in dtypes) and any(d != dtypes[0] for d in dtypes):
            unions[c] = sorted(set().union(*(d.categories for d in dtypes)), key=str)
    if unions:  # the chunks' own frames are left as they are (a sink may hold them)
        frames = [f.assign(**{c: f[c].cat.set_categories(u) for c, u in unions.items()}) for f in frames]
    return pd.concat(frames, ignore_index=True)


def decider_names(policy: CompiledPolicy) -> list[str]:
    """Every rule that can decide a grade (the base decider, the floors, an exposure's own floors), as the
    categories of a ``decided_by`` column: the same for every chunk of a run, so chunks concatenate as
    categories (dictionary-encoded in Parquet) whatever rules each chunk happened to fire."""
    part = policy.scoped
    exposure_floors = [f.id for f in part.floors] if part is not None else []
    return list(dict.fromkeys([policy.base_decider, *(r.id for r in policy.floors), *exposure_floors]))


def day_texts(days: np.ndarray, valid: np.ndarray) -> Any:
    """Days as ISO text (null where not valid), each distinct day formatted once: a date metric of many
    clients holds few days, and numpy formats one day a fifth of a microsecond at a time."""
    text = np.full(len(days), None, dtype=object)
    valid = np.asarray(valid, bool)
    if valid.any():
        distinct, at = np.unique(np.asarray(days).astype("datetime64[D]")[valid], return_inverse=True)
        text[valid] = np.array(distinct.astype(str), dtype=object)[at.reshape(-1)]
    return text_column(text)


def text_column(values: np.ndarray) -> Any:
    """Text cells (None: null) as a text column, also when every cell is null: a chunk without a value
    must not make its column untyped (object), or the run's column type would depend on the chunks."""
    return pd.array(values, dtype="str")


def _segment_column(policy: CompiledPolicy, prep: Prepared, segment: np.ndarray) -> pd.Categorical:
    """Each row's segment as a categorical of the policy's segments (a value that is none of them: NaN)."""
    categories = list(policy.segments)
    col = prep.inputs.get(policy.segment_by) if policy.segment_by is not None else None
    if col is None or col.codes is None or not categories:
        return pd.Categorical(segment, categories=categories or None)
    codes, distinct = col.codes  # the text column's codes: no string hashed again
    index = {c: i for i, c in enumerate(categories)}
    lookup = np.array([index.get(u, -1) for u in distinct] + [-1], np.int32)
    return pd.Categorical.from_codes(lookup[codes], categories=categories)


def kept_actions(policy: CompiledPolicy, res: VectorResults) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The actions most urgent first (indexes into ``policy.actions``) and, per client and action in that
    order, whether it is recommended and whether an exclusion suppressed it (one that conflicts with an
    action already kept); the decisions table and the exposure table read the same answer."""
    n = res.n
    order = sorted(range(len(policy.actions)), key=lambda j: (policy.actions[j].priority, policy.actions[j].id))
    kept = np.zeros((n, len(order)), bool)
    suppressed = np.zeros((n, len(order)), bool)
    for k, j in enumerate(order):
        a = policy.actions[j]
        fired = res.actions[j].data & res.actions[j].valid
        clash = np.zeros(n, bool)
        for earlier, i in enumerate(order[:k]):
            o = policy.actions[i]
            if a.id in o.excludes or o.id in a.excludes:
                clash |= kept[:, earlier]
        kept[:, k] = fired & ~clash
        suppressed[:, k] = fired & clash
    return order, kept, suppressed


def decisions_frame(policy: CompiledPolicy, prep: Prepared, res: VectorResults,
                    row_numbers: np.ndarray) -> pd.DataFrame:
    """The decisions table: one row per decided client, the same facts as the decision records."""
    n = res.n
    grades = np.array(policy.grade_ids, dtype=object)
    decided_names = decider_names(policy)
    decided_by = np.zeros(n, np.int16)  # codes into decided_names: 0, the base decider
    for r, c in reversed(list(zip(policy.floors, res.floors, strict=True))):
        hit = c.data & c.valid & (res.g_rank == r.rank) & (res.g_rank != res.s_rank)
        decided_by[hit] = decided_names.index(r.id)
    floors_mask = np.column_stack([c.data & c.valid for c in res.floors]) if res.floors else np.zeros((n, 0), bool)
    warn_mask = np.column_stack([c.data & c.valid for c in res.warnings]) if res.warnings else np.zeros((n, 0), bool)
    order, kept, suppressed = kept_actions(policy, res)
    ids_in_order = [policy.actions[j].id for j in order]
    und_masks, und_names = [], []
    for r, c in zip(policy.floors, res.floors, strict=True):
        und_masks.append(~c.valid)
        und_names.append(r.id)
    for w, c in zip(policy.warnings, res.warnings, strict=True):
        if not w.from_rule:  # a classification rule's warning is undetermined as its rule, listed above
            und_masks.append(~c.valid)
            und_names.append(w.id)
    for a, c in zip(policy.actions, res.actions, strict=True):
        und_masks.append(~c.valid)
        und_names.append(a.id)
    for k, j in enumerate(order):
        rs = res.restructurings[j]
        if rs is not None:
            und_masks.append(kept[:, k] & ~rs.valid)
            und_names.append(policy.actions[j].id)
    und = np.column_stack(und_masks) if und_masks else np.zeros((n, 0), bool)
    segment = prep.segments if prep.segments is not None else np.full(n, None, dtype=object)
    days, day_codes = np.unique(prep.as_of_days, return_inverse=True)
    decided_codes = pd.Categorical.from_codes(decided_by, categories=decided_names)
    constant = np.zeros(n, np.int8)
    out: dict[str, Any] = {
        "row": row_numbers + 1,
        "client_id": prep.client_ids,
        # Repeated values as categoricals: codes plus a few strings (dictionary-encoded in Parquet).
        "as_of": pd.Categorical.from_codes(day_codes.reshape(-1).astype(np.int32) if n else np.zeros(0, np.int32),
                                           categories=days.astype("datetime64[D]").astype(str).tolist()),
        "policy_id": pd.Categorical.from_codes(constant, categories=[policy.id]),
        "policy_version": pd.Categorical.from_codes(constant, categories=[policy.version]),
        "policy_sha256": pd.Categorical.from_codes(constant, categories=[policy.sha256]),
        "segment": _segment_column(policy, prep, segment),
        "grade": pd.Categorical.from_codes(res.g_rank.astype(np.int8), categories=list(grades)),
        "decided_by": decided_codes,
        "scorecard_grade": pd.Categorical.from_codes(res.s_rank.astype(np.int8), categories=list(grades)),
        "score": res.score,
        "nonperforming": np.array([g.nonperforming for g in policy.scale])[res.g_rank],
        "floors": _list_column(floors_mask, [r.id for r in policy.floors]),
        "warnings": _list_column(warn_mask, [w.id for w in policy.warnings]),
        "actions": _list_column(kept, ids_in_order),
        "suppressed_actions": _list_column(suppressed, ids_in_order),
        "undetermined": _list_column(und, und_names),
    }
    for m, c in zip(policy.metrics, res.metrics, strict=True):
        out[f"metric.{m.name}"] = _cells(m.expr.type, c.data, np.asarray(c.valid, bool))
    for k, j in enumerate(order):  # a computed parameter where its action is given: "extend by 6 months"
        a = policy.actions[j]
        for (name, expr), c in zip(a.param_exprs.items(), res.action_params[j], strict=True):
            valid = np.broadcast_to(c.valid, (n,)) & kept[:, k]
            out[f"param.{a.id}.{name}"] = _cells(expr.type, np.broadcast_to(c.data, (n,)), valid)
    return pd.DataFrame(out)


def _cells(kind: str, data: np.ndarray, valid: np.ndarray) -> Any:
    """A column of one metric (or computed parameter) as the table gives it: null where it has no value."""
    if kind == "number":
        return np.where(valid, data.astype(float), np.nan)
    if kind == "bool":
        cells = pd.array(np.where(valid, data, False), dtype="boolean")
        cells[~valid] = pd.NA
        return cells
    if kind == "date":
        return day_texts(data, valid)
    if kind in ("string", "grade"):
        return text_column(np.where(valid, data, None))
    return np.where(valid, data, None)


SCOPED_INPUT_HINT = ("give one debtor record a line as JSON Lines (.jsonl), as `policy-engine generate -p POLICY "
                     "--out debtors.jsonl` writes them; a table of 1.x clients becomes one by `policy-engine convert "
                     "TABLE --to 2.0 --out debtors.jsonl`")


def unknown_format(path: Path) -> UsageError:
    """A portfolio file of a kind batch does not read, named as the input it is (whatever the policy)."""
    hint = "use .csv, .jsonl, .parquet or .xlsx"
    if path.suffix.lower() == ".json":
        hint = "a .json file holds one record: decide it with `decide -c`; a portfolio gives one record a line (.jsonl)"
    return UsageError([Diagnostic("unknown-format", f"cannot read '{path.suffix or path.name}' files", file=str(path),
                                  hint=hint)])


def refuse_scoped(policy: CompiledPolicy | None, what: str = "a table row") -> None:
    """A table row is one client with one loan: a policy with scopes (a debtor with several exposures,
    each with its payments) cannot read one, so a table given for it is a usage error, never a
    silently wrong decision. ``batch`` decides such a policy from JSON Lines of nested records."""
    if policy is not None and policy.scoped is not None:
        raise UsageError([Diagnostic(
            "scoped-policy-in-table", f"{what} cannot hold a debtor with several exposures: policy {policy.key} "
            "declares scopes, and its records are nested", file=policy.file, hint=SCOPED_INPUT_HINT)])


def run_batch(policy: CompiledPolicy, table: Table, as_of: str | None = None,
              progress: Callable[[int], None] | None = None, workers: int = 2,
              duplicates: list[Problem] | None = None, row_offset: int = 0) -> BatchResult:
    """Check and decide every row of ``table`` under ``policy``; nothing is lost.

    The table is cut into chunks decided on ``workers`` threads (numpy, pandas and Arrow release
    the GIL for most of the work); client-id duplicates are found over the whole table first
    (or given, when the table is one partition of a larger dataset). ``row_offset`` numbers the
    rows of a partition as rows of the whole dataset.
    """
    from concurrent.futures import ThreadPoolExecutor

    refuse_scoped(policy)
    frame = table.frame
    positions = table.positions if table.positions is not None else np.arange(len(frame), dtype=np.int64)
    dups = duplicate_ids(frame, positions) if duplicates is None else duplicates
    late = table.late + (unwritable_cells(frame, leaf_types(policy, list(frame.columns))) if table.text else [])
    starts = list(range(0, len(frame), CHUNK_ROWS)) or [0]

    def work(start: int) -> tuple[int, Prepared, VectorResults, pd.DataFrame]:
        stop = min(start + CHUNK_ROWS, len(frame))
        part = frame.iloc[start:stop]
        local = [Problem(p.row - start, p.path, p.message, p.code) for p in dups if start <= p.row < stop]
        prep = prepare(policy, part, table.text, as_of, duplicates=local, records=table.records,
                       late=[Problem(p.row - start, p.path, p.message, p.code) for p in late if start <= p.row < stop])
        res = evaluate_columns(policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)
        decided = decisions_frame(policy, prep, res, positions[prep.rows + start] + row_offset)
        if progress:
            progress(stop - start)
        return start, prep, res, decided

    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(workers) as pool:
            chunks = list(pool.map(work, starts))
    else:
        chunks = [work(s) for s in starts]
    decisions = concat_chunks([c[3] for c in chunks])
    problems = [Problem(p.row + start, p.path, p.message, p.code) for start, prep, _, _ in chunks
                for p in prep.problems]
    rejects = table_rejects(table, problems, positions, row_offset)
    if table.records and rejects:
        _name_other_kinds(policy, table, problems, positions, rejects, as_of, row_offset)
    single = chunks[0] if len(chunks) == 1 else None
    result = BatchResult(policy, decisions, rejects, table.rows_read, single[2] if single else None,
                         single[1] if single else None, frame, table.text, periods=table.periods,
                         source=table.source, offsets=table.offsets)
    if len(chunks) > 1:
        result.chunks = [(start, prep) for start, prep, _, _ in chunks]
    for _, _, res, _ in chunks:
        for aid, count in res.refused_params.items():
            result.refused_params[aid] = result.refused_params.get(aid, 0) + count
    if result.decided + result.rejected != result.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {result.rows_read} read, {result.decided} decided, "
                             f"{result.rejected} rejected")
    return result


def _name_other_kinds(policy: CompiledPolicy, table: Table, problems: list[Problem], positions: np.ndarray,
                      rejects: list[dict[str, Any]], as_of: str | None, row_offset: int) -> None:
    """A rejected JSON Lines record of the kind another version reads (a debtor record 2.x on a 1.x day) is
    refused as ``decide`` refuses it: one ``wrong-record-kind`` naming the version that reads it, not the
    missing fields of this one. Only rejected lines are read again."""
    from ..decide.record_kind import decision_day, of_another_kind

    assert table.source is not None and table.offsets is not None
    frame_row = {int(positions[p.row]): p.row for p in problems}
    with table.source.open("rb") as fh:
        for r in rejects:
            at = frame_row.get(r["row"] - 1 - row_offset)
            if at is None:
                continue
            fh.seek(int(table.offsets[at]))
            try:
                record = parse_json_text(fh.readline())
            except JSONInputError:
                continue
            found = of_another_kind(policy, record, decision_day(as_of, record))
            if found is not None:
                r["problems"] = [{"field": found.path, "code": found.code, "message": found.message,
                                  **({"hint": found.hint} if found.hint else {})}]


def reject_line(table: Table, pos: int) -> dict[str, int]:
    """Beside a reject's record number (input row ``pos``, 0-based), the line a text editor shows."""
    if table.lines is not None:
        return {"line": int(table.lines[pos])}
    return {"line": pos + 1} if table.source is not None else {}  # JSON Lines: one record a line


def table_rejects(table: Table, problems: list[Problem], positions: np.ndarray, row_offset: int = 0
                  ) -> list[dict[str, Any]]:
    """The reject entries of ``problems`` (frame rows) and of the rows ``table`` could not read, by input row."""
    by_row: dict[int, list[Problem]] = {}
    for p in table.problems:  # rows that could not be parsed at all (already input positions)
        by_row.setdefault(p.row, []).append(p)
    ids = table.frame["client_id"].to_numpy(dtype=object, na_value=None) if "client_id" in table.frame.columns \
        else np.full(len(table.frame), None, dtype=object)
    row_id: dict[int, Any] = dict(table.unparsed_ids)
    for p in problems:
        pos = int(positions[p.row])
        by_row.setdefault(pos, []).append(p)
        v = ids[p.row]
        row_id[pos] = None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else str(v)
    return [{"row": pos + 1 + row_offset, **reject_line(table, pos), "client_id": row_id.get(pos),
             "problems": [{"field": p.path, "code": p.code, "message": p.message} for p in problems]}
            for pos, problems in sorted(by_row.items())]


# ---------------------------------------------------------- full records

INPUT_SLICE = 20_000  # rows converted to Python values at a time: bounded memory on any table size


def _decided_parts(result: BatchResult) -> list[tuple[int, Prepared]]:
    return result.chunks or ([(0, result.prepared)] if result.prepared is not None else [])


def _decided_positions(result: BatchResult) -> np.ndarray:
    """Frame rows of the decided clients, in the order of ``result.decisions``."""
    parts = _decided_parts(result)
    return np.concatenate([prep.rows + start for start, prep in parts]) if parts else np.zeros(0, np.int64)


def canonical_inputs(result: BatchResult) -> Iterator[tuple[bytes, str]]:
    """(canonical JSON, sha256) of each decided client's record, in the order of ``result.decisions``.

    The same bytes ``decide`` hashes for the same client. JSON Lines records are read again from
    their lines, so the object hashed is the one ``decide`` reads, whatever shapes it holds. A
    table row stands for the record its cells make (:func:`row_records`).
    """
    frame = result.frame
    if frame is None:
        return
    positions = _decided_positions(result)
    sha256 = hashlib.sha256
    if result.offsets is not None and result.source is not None:
        for raw in _line_records(result.source, result.offsets[positions]):
            yield raw, sha256(raw).hexdigest()
        return
    keep_text = text_columns(result.policy, [str(c) for c in frame.columns])
    lists = series_roots(result.policy)
    for lo in range(0, len(positions), INPUT_SLICE):
        for record in row_records(None, frame.iloc[positions[lo:lo + INPUT_SLICE]], result.text, keep_text, lists):
            raw = canonical_json(record)
            yield raw, sha256(raw).hexdigest()


def _line_records(source: Path, offsets: np.ndarray) -> Iterator[bytes]:
    """Canonical JSON of the records on the lines starting at ``offsets`` (read and parsed as ``decide`` does)."""
    with source.open("rb") as fh:
        for at in offsets.tolist():
            fh.seek(at)
            yield canonical_json(parse_json_text(fh.readline()))


def text_columns(policy: CompiledPolicy, columns: list[str]) -> set[str]:
    """Columns whose cells stay text in the record a row stands for: the client id and the strings the policy reads."""
    return {"client_id"} | {c for c, t in leaf_types(policy, columns).items() if t in ("string", "grade")}


def series_roots(policy: CompiledPolicy) -> set[str]:
    """The lists of periods the policy reads, as dotted paths (``financials``)."""
    return {".".join(s.root) for s in policy.inputs if s.series}


def row_records(policy: CompiledPolicy | None, frame: pd.DataFrame, text: bool,
                keep_text: set[str] | None = None, lists: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """The client record each row of ``frame`` stands for, in canonical form.

    Cells become the JSON values they stand for (:func:`_clean`; a CSV cell the policy reads as a
    string, and the client id, stay text); empty cells and empty objects are no field; period
    columns ``root[k].x`` make a list, present (maybe empty) in every row of a table that has
    them, with empty periods at its end dropped. The nesting is planned once for all the columns.
    """
    columns = [str(c) for c in frame.columns]
    if keep_text is None:
        keep_text = text_columns(policy, columns) if policy is not None else {"client_id"}
    cells = _cell_lists(frame, text, keep_text)
    build = _record_builder(columns, series_roots(policy) if policy is not None else lists)
    for row in zip(*cells, strict=True):
        yield build(row)


def _cell_lists(frame: pd.DataFrame, text: bool, keep_text: set[str]) -> list[list[Any]]:
    """Each column as the JSON values :func:`_clean` makes of its cells, vectorised where the dtype allows."""
    out = []
    for name in frame.columns:
        col = frame[name]
        if str(name) == "client_id":  # an id is text, whatever the column's type (as the checks read it)
            out.append(client_id_text(col).to_numpy(dtype=object, na_value=None).tolist())
        elif text and str(name) in keep_text:
            out.append([None if v == "" else v for v in col.to_numpy(dtype=object, na_value=None).tolist()])
        elif col.dtype == np.float64:
            out.append(_float_cells(col.to_numpy()))
        elif isinstance(col.dtype, np.dtype) and col.dtype.kind in "iub":
            out.append(col.to_numpy().tolist())
        elif not text and isinstance(col.dtype, pd.StringDtype | pd.BooleanDtype):
            out.append(col.to_numpy(dtype=object, na_value=None).tolist())
        elif isinstance(col.dtype, np.dtype) and col.dtype.kind == "M" and (days := _day_cells(col)) is not None:
            out.append(days)
        else:
            out.append([_clean(v, text) for v in col.to_numpy(dtype=object)])
    return out


def _day_cells(col: pd.Series) -> list[Any] | None:
    """A date column (Parquet's date32, read as datetime64) as :func:`_clean` writes its cells, ISO days, in one
    pass; None when a cell is not a day at midnight of a four-digit year (those take the cell-by-cell way)."""
    present = col.notna().to_numpy()
    days = col[present]
    if len(days) and (bool((days != days.dt.normalize()).any()) or int(days.dt.year.min()) < 1000):
        return None
    texts = col.dt.strftime("%Y-%m-%d").to_numpy(dtype=object)
    texts[~present] = None
    return list(texts.tolist())


def _float_cells(arr: np.ndarray) -> list[Any]:
    """Floats as canonical JSON has them: NaN is null, 52000000.0 is the integer 52000000."""
    cells = _nan_as_none(arr)
    whole = np.isfinite(arr) & (np.floor(arr) == arr) & (np.abs(arr) < 2.0**53)
    if whole.any():
        cells[whole] = arr[whole].astype(np.int64).tolist()
    return list(cells.tolist())


def iter_records(result: BatchResult, decider: Decider) -> Iterator[dict[str, Any]]:
    """Full decision records for a batch (vector results, shared record builder), in input order."""
    digests = (digest for _, digest in canonical_inputs(result))
    for _, prep in _decided_parts(result):
        res = result.vector if not result.chunks and result.vector is not None else evaluate_columns(
            result.policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)
        for i in range(len(prep.rows)):
            inputs = tuple(_python_input(spec, prep.inputs[spec.name], i) for spec in result.policy.inputs)
            yield decider.build_record(str(prep.client_ids[i]), days_to_date(prep.as_of_days[i]), inputs,
                                       res.row(i), next(digests))


def _texts(series: pd.Series) -> list[str]:
    """A column without nulls as Python strings; a categorical's few categories are converted once."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = series.cat.codes.to_numpy()
        if not (codes < 0).any():  # a null's code (-1) would index the last category
            names = np.asarray(series.cat.categories.astype(str), dtype=object)
            return list(names[codes].tolist())
    return list(series.astype(str).tolist())


def audit_segments(result: BatchResult, inputs: str = "full", skip: frozenset[str] | set[str] = frozenset(),
                   size: int | None = None) -> Iterator[tuple[bytes, SegmentRecords]]:
    """The batch's decisions as decision-store segments: (segment bytes, its records' own fields).

    A segment holds ``size`` decided clients column-wise: the decisions table's facts
    (``decision.*``) and, unless only hashes are kept, the input cells as read (``input.*``; a
    column of mixed Python values as JSON text, ``json.*``). Recording then costs an Arrow write
    and one short chained row per client, not a JSON document per client. Clients in ``skip``
    (recorded by an earlier run of the same batch) are left out.
    """
    import pyarrow as pa

    from ..decide.evaluate import _CLOCK, _IDS, ENGINE_VERSION
    from ..decide.segment import SegmentRecords, chunk_size

    size = size or chunk_size()
    d = result.decisions
    positions = _decided_positions(result)
    keep = ~d["client_id"].isin(list(skip)).to_numpy() if skip else np.ones(len(d), bool)
    full = inputs == "full"
    hashes = None if full else [h for (_, h), k in zip(canonical_inputs(result), keep, strict=True) if k]
    d = d[keep].reset_index(drop=True)
    positions = positions[keep]
    client_ids, as_ofs, grades = (_texts(d[c]) for c in ("client_id", "as_of", "grade"))
    # Converted to Arrow once; each segment is a zero-copy slice of these.
    facts = pa.Table.from_pandas(d.rename(columns=lambda c: f"decision.{c}"), preserve_index=False)
    columns = {name: facts.column(name) for name in facts.column_names}
    records = None  # JSON Lines: each record's canonical JSON, as decide hashed it, one segment at a time
    text_kept: list[str] = []
    if full and result.frame is not None and result.offsets is not None:
        records = (raw for (raw, _), k in zip(canonical_inputs(result), keep, strict=True) if k)
    elif full and result.frame is not None:
        frame = result.frame
        text_kept = sorted(text_columns(result.policy, [str(c) for c in frame.columns]))
        whole = len(positions) == len(frame) and bool((positions == np.arange(len(frame))).all())
        part = frame.reset_index(drop=True) if whole else frame.iloc[positions].reset_index(drop=True)
        for c in part.columns:
            col = part[c]
            if col.dtype == object:  # mixed Python values (JSON Lines, Excel): keep them as JSON
                columns[f"json.{c}"] = pa.chunked_array([pa.array(
                    [orjson.dumps(_clean(v, result.text and c not in text_kept)).decode("utf-8")
                     for v in col.to_numpy(dtype=object)],
                    type=pa.string())])
            else:
                columns[f"input.{c}"] = pa.chunked_array([pa.Array.from_pandas(col)])
    table = pa.table(columns).replace_schema_metadata({
        "format": SEGMENT_FORMAT, "engine_version": ENGINE_VERSION, "text": "1" if result.text else "0",
        "text_columns": json.dumps(text_kept), "lists": json.dumps(sorted(series_roots(result.policy)))})
    options = pa.ipc.IpcWriteOptions(compression=SEGMENT_COMPRESSION)
    for lo in range(0, len(d), size):
        hi = min(lo + size, len(d))
        part = table.slice(lo, hi - lo)
        if records is not None:
            part = part.append_column("record", pa.array([raw.decode("utf-8") for raw in
                                                          itertools.islice(records, hi - lo)], type=pa.string()))
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, part.schema, options=options) as writer:
            writer.write_table(part)
        prefix, first = _IDS.block(hi - lo)
        yield sink.getvalue().to_pybytes(), SegmentRecords(
            prefix, first, client_ids[lo:hi], as_ofs[lo:hi], grades[lo:hi],
            None if hashes is None else hashes[lo:hi], _CLOCK.now())


def prefetched(items: Iterator[Any], depth: int = 2) -> Iterator[Any]:
    """``items`` produced on a thread ``depth`` ahead of the consumer.

    Arrow writes and SQLite inserts both release the GIL, so building the next segment overlaps
    with storing this one. An exception in the producer is raised in the consumer.
    """
    import queue
    import threading

    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                box.put((True, item))
            box.put((False, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            box.put((False, exc))

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, value = box.get()
            if not ok:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get_nowait()
            except queue.Empty:
                worker.join(0.01)


def _python_input(spec: Any, c: Col, i: int) -> Any:
    if c.present is not None:
        out = []
        for k in np.flatnonzero(c.present[i]):
            if not c.valid[i, k]:
                out.append(None)
            elif spec.type == "date":
                out.append(days_to_date(c.data[i, k]))
            else:
                out.append(float(c.data[i, k]))
        return out
    if not c.valid[i]:
        return None
    v = c.data[i]
    if spec.type == "date":
        return days_to_date(v)
    if spec.type == "boolean":
        return bool(v)
    if spec.type in ("number", "integer"):
        return float(v)
    return v


# ----------------------------------------------------------------- writing


def write_tables(outputs: list[tuple[pd.DataFrame, Path]]) -> None:
    """Several decision tables written at once, each on its own thread: Parquet encoding releases the
    GIL, so a long run's debtor and exposure tables take the time of the larger one, not of both."""
    from concurrent.futures import ThreadPoolExecutor

    for _, path in outputs:
        _write_format(path)  # an unknown format refused before anything is written
    if len(outputs) < 2:
        for frame, path in outputs:
            write_decisions(frame, path)
        return
    with ThreadPoolExecutor(len(outputs)) as pool:
        for done in [pool.submit(write_decisions, frame, path) for frame, path in outputs]:
            done.result()


def _write_format(path: Path) -> str:
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError([Diagnostic("unknown-format", f"cannot write '{path.suffix}' files", file=str(path),
                                     hint="use .parquet, .csv or .jsonl")])
    return fmt


def write_decisions(frame: pd.DataFrame, path: Path) -> None:
    fmt = _write_format(path)
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Plain Arrow types, no pandas metadata: any Parquet reader (Spark, DuckDB, pandas) reads it back.
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        # Dictionary pages for the repeated-value columns only: trying them on a million distinct
        # figures and ids costs more than half the write and saves nothing.
        repeated = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
        pq.write_table(table, path, use_dictionary=repeated)
    elif fmt == "csv":
        import pyarrow.compute as pc

        flat = frame.copy()
        for c in LIST_COLUMNS:
            if c in flat.columns:  # an exposures table has floors and undetermined only
                flat[c] = pd.Series(pc.binary_join(pa_array(flat[c]), ";").to_numpy(zero_copy_only=False))
        flat.to_csv(path, index=False, lineterminator="\n")
    else:
        write_json_lines(frame, path)


def write_json_lines(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object a row, each figure as decide writes it (the shortest text that reads back the same float:
    pandas' to_json rounds to 15 decimals, printing 0.844099441686053 for 0.8440994416860529 and noise digits
    after large ones), U+2028, U+2029 and U+0085 escaped as the stream's answers are. No row is no line."""
    import orjson
    import pyarrow as pa

    from ..safetext import json_line

    table = pa.Table.from_pandas(frame, preserve_index=False)
    with path.open("wb") as out:
        for batch in table.to_batches(max_chunksize=65_536):  # a million rows never held as Python objects at once
            out.write(json_line(b"".join(orjson.dumps(row) + b"\n" for row in batch.to_pylist())))


LIST_COLUMNS = ("floors", "warnings", "actions", "suppressed_actions", "undetermined")


def pa_array(series: pd.Series) -> Any:
    import pyarrow as pa

    values = series.array
    if isinstance(values, pd.arrays.ArrowExtensionArray):
        return pa.chunked_array([values._pa_array]) if not isinstance(values._pa_array, pa.ChunkedArray) \
            else values._pa_array
    return pa.array(list(series), type=pa.list_(pa.string()))


def write_rejects(rejects: list[dict[str, Any]], path: Path) -> None:
    """One line per rejected row; rows of a ``--financials`` table follow, marked ``"table": "financials"``."""
    if path.suffix.lower() == ".csv":
        # problems in words for a reader, and the same as JSON (field, code, message, hint) for a program: "; " may
        # stand inside a message, so the words cannot be split back
        rows = [{"row": r["row"], "line": r.get("line"), "client_id": r["client_id"],
                 "codes": " ".join(dict.fromkeys(str(p.get("code", "")) for p in r["problems"])),
                 "problems": "; ".join(_problem_text(r, p) for p in r["problems"]),
                 "problems_json": json.dumps(r["problems"], ensure_ascii=False),
                 "table": r.get("table", "clients"), "orphaned": bool(r.get("orphaned")), "side": r.get("side")}
                for r in rejects]
        columns = (["row"] + (["line"] if any("line" in r for r in rejects) else [])
                   + ["client_id", "codes", "problems", "problems_json"]
                   + [c for c in ("table", "orphaned", "side") if any(c in r for r in rejects)])
        pd.DataFrame(rows, columns=columns).to_csv(path, index=False, lineterminator="\n")
    else:
        from ..safetext import json_text

        with path.open("w", encoding="utf-8") as fh:
            for r in rejects:
                fh.write(json_text(json.dumps(r, ensure_ascii=False)) + "\n")


def _problem_text(reject: Mapping[str, Any], p: Mapping[str, Any]) -> str:
    """One problem in a cell of a CSV rejects file: where it is when that is another row than the reject's (the
    exposures row of a rejected debtor of long tables), its field and message."""
    elsewhere = "table" in p and (p["table"], p.get("row")) != (reject.get("table"), reject.get("row"))
    return (f"{p['table']} row {p.get('row')} " if elsewhere else "") + f"{p['field']}: {p['message']}"


def summary(result: BatchResult) -> dict[str, Any]:
    d = result.decisions
    n = max(result.decided, 1)

    def counts(pairs: Any) -> dict[str, dict[str, float]]:
        return {str(k): {"count": int(v), "share": round(int(v) / n, 6)} for k, v in sorted(pairs)
                if k is not None and v}

    def listed(series: pd.Series) -> Any:  # counted by Arrow over the flattened lists, not as Python objects
        import pyarrow.compute as pc

        vc = pc.value_counts(pc.list_flatten(pa_array(series)))
        return zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True)

    return {
        "policy": {"id": result.policy.id, "version": result.policy.version, "sha256": result.policy.sha256},
        "accounting": {"rows_read": result.rows_read, "decided": result.decided, "rejected": result.rejected,
                       **({"financials": {"rows_read": result.periods.rows_read, "joined": result.periods.joined,
                                          "rejected": len(result.periods.rejects)}} if result.periods else {})},
        "by_grade": {g: {"count": int((d["grade"] == g).sum()), "share": round(int((d["grade"] == g).sum()) / n, 6)}
                     for g in result.policy.grade_ids},
        "by_warning": counts(listed(d["warnings"])),
        "by_action": counts(listed(d["actions"])),
        # rules a missing fact left undetermined (not fired): a grade that could still be worse is counted here
        "by_undetermined": counts(listed(d["undetermined"])) if "undetermined" in d.columns else {},
        "segment_by": result.policy.segment_by,  # the input the policy segments by (null: no segments)
        "by_segment": counts(d["segment"].value_counts(sort=False).items()) if result.policy.segment_by else {},
        "refused_action_params": refused_summary(result.refused_params, n),
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def refused_summary(by_action: Mapping[str, int], decided: int) -> dict[str, Any]:
    """Computed action parameters the catalogue refused (each one an error on its decision), always shown."""
    return {"total": sum(by_action.values()),
            "by_action": {k: {"count": c, "share": round(c / max(decided, 1), 6)}
                          for k, c in sorted(by_action.items())}}


def _flatten_lists(series: pd.Series) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.list_flatten(pa_array(series)).to_numpy(zero_copy_only=False)


def render_summary(s: dict[str, Any]) -> str:
    acc = s["accounting"]
    # Long tables: the accounting counts debtors (a row of the debtors table with all its elements' rows),
    # the ``tables`` lines each table's rows; elsewhere a row (a line of JSON Lines) is one client or debtor.
    counted = "debtors" if "tables" in s else "rows"
    lines = [f"policy {s['policy']['id']} {s['policy']['version']}",
             f"{counted} read {acc['rows_read']:,} = decided {acc['decided']:,} + rejected {acc['rejected']:,}"]
    if "orphaned" in acc:  # long tables: rows no debtor holds, counted apart from the debtors above
        lines.append(f"orphaned rows {acc['orphaned']:,} (their debtor or parent element is not in the tables)")
    if "financials" in acc:
        fin = acc["financials"]
        lines.append(f"financials rows read {fin['rows_read']:,} = joined {fin['joined']:,} + rejected "
                     f"{fin['rejected']:,}")
    refused = s.get("refused_action_params", {"total": 0, "by_action": {}})
    lines.append(f"refused action parameters {refused['total']:,}"
                 + (" (decisions list them as undetermined, code action-param-refused)" if refused["total"] else ""))
    for k, v in refused["by_action"].items():
        lines.append(f"  {k:<34} {v['count']:>10,}")
    lines += ["", "by grade:"]
    for g, v in s["by_grade"].items():
        lines.append(f"  {g:<18} {v['count']:>10,}  {v['share'] * 100:6.2f}%")
    if "exposures" in s:  # a policy with scopes: the debtors' exposures, each by its final grade
        lines.append(f"exposures {s['exposures']['count']:,}, by grade:")
        for g, v in s["exposures"]["by_grade"].items():
            lines.append(f"  {g:<18} {v['count']:>10,}  {v['share'] * 100:6.2f}%")
    if "tables" in s:  # long tables: every row of every table decided, rejected or orphaned
        lines.append("tables (rows read = decided + rejected + orphaned):")
        for name, c in s["tables"].items():
            lines.append(f"  {name:<18} {c['read']:>10,} = {c['decided']:,} + {c['rejected']:,} + {c['orphaned']:,}")
    by = s.get("segment_by") or "segment"  # headed by the policy's own segment input (e.g. sector)
    for title, key in (("by warning:", "by_warning"), ("by action:", "by_action"),
                       ("undetermined (a fact was missing: not fired, though with it they might have):",
                        "by_undetermined"), (f"by {by}:", "by_segment")):
        if s.get(key):
            lines.append(title)
            for k, v in sorted(s[key].items(), key=lambda kv: -kv[1]["count"]):
                lines.append(f"  {k:<34} {v['count']:>10,}  {v['share'] * 100:6.2f}%")
    from ..safetext import printable

    return printable("\n".join(lines) + "\n", keep_newlines=True)  # segment values are client text
