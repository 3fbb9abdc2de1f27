"""``batch`` for a policy with scopes: JSON Lines of nested debtor records, decided column-wise.

Each line is one debtor record, read as ``decide`` reads it (:meth:`ScopedDecider.read_record`:
the same checks, the same refusals, named by field path), so a line is either decided or a
reject with its reasons, and every line is accounted for. The accepted debtors are decided by
the vector evaluator over long tables (:mod:`.scoped_vector`) in chunks; the output is one row
per debtor (the decisions table of a 1.x batch, plus the exposure that decided the grade) and
one row per exposure (``--exposures-out``); full records are built by the row path's record
builder from the vector results, so they equal ``decide``'s.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import itertools
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..decide.evaluate import Decider, ScopedDecider
from ..decide.record_kind import CODE as WRONG_KIND
from ..decide.ref import PolicyRef, selection_day, unreadable_day
from ..diagnostics import Diagnostic, InputError, UsageError
from ..policy.compiler import CompiledPolicy
from ..policy.loader import CutLine, JSONInputError, bounded_lines, parse_json_text, readable_client_id
from ..safetext import id_key, repeated_id
from .batch import concat_chunks, decider_names, refuse_wide_lines, text_column
from .frame import Prepared
from .scoped_vector import ScopedRun, evaluate_debtors, fill_elements
from .tables import TableRun
from .vector import dates_to_days

CHUNK_DEBTORS = 5_000  # debtors read and evaluated at a time (about 45 KB each held): bounded memory on any file
# The collector's first threshold while a chunk is read (CPython's default is 700 allocations).
FEWER_COLLECTIONS = 100_000


@contextlib.contextmanager
def fewer_collections(first: int = FEWER_COLLECTIONS) -> Iterator[None]:
    """Collect cyclic garbage less often while a chunk of parsed debtors is held.

    A chunk is millions of objects, trees without cycles that reference counting frees, and at
    CPython 3.11's thresholds the collector traverses them again and again: a third of a JSON Lines
    batch (10,000 generated debtors: 5.0-5.5 s in run_scoped_batch, 3.9-4.0 s with the collector off,
    the same at this threshold; peak memory the same). The collector still runs, less often; the
    thresholds come back after.
    """
    before = gc.get_threshold()
    gc.set_threshold(max(first, before[0]), *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


@dataclass
class Debtor:
    """One accepted line: what the record builder needs besides the vector results."""

    line: int  # 1-based
    offset: int  # byte offset of its line: the record is read again for the store, never held
    client_id: str
    day: dt.date
    inputs: tuple[Any, ...]
    elements: dict[str, Any]
    input_hash: str
    written: bytes | None = None  # its canonical JSON, as hashed: kept for a store while its chunk is held


@dataclass
class ScopedBatch:
    """A scoped batch: debtors decided, one row each; their exposures; rejects; the lines read."""

    policy: CompiledPolicy
    decisions: pd.DataFrame
    exposures: pd.DataFrame
    rejects: list[dict[str, Any]]
    rows_read: int
    debtors: list[Debtor] = field(default_factory=list)
    runs: list[tuple[int, ScopedRun]] = field(default_factory=list)  # (first debtor, its chunk's results)
    source: Path | None = None  # the file the debtors' lines are read again from (for the store)
    kept: bool = True  # False: each chunk went to a sink as it was decided; only the tables are kept
    stamp: tuple[int, int] | None = None  # the source's size and time when it was read (read again only as it was)

    @property
    def decided(self) -> int:
        return len(self.decisions)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def records(self) -> Iterator[dict[str, Any]]:
        """Full decision records, in input order, equal to ``decide``'s for the same lines."""
        if not self.kept:
            raise ValueError("the records of a batch decided into a sink were handed to the sink")
        decider = Decider(self.policy)
        assert isinstance(decider, ScopedDecider)
        for start, run in self.runs:
            chunk = self.debtors[start:start + run.debtors.n]
            fill_elements(run, [d.elements for d in chunk])
            for i, d in enumerate(chunk):
                yield decider.assemble(d.client_id, d.day, d.inputs, d.elements, run.debtors.row(i), d.input_hash)

    def stored_inputs(self) -> Iterator[Any]:
        """What a store keeps of each decided debtor's input, in input order: the canonical JSON kept when it was
        read (a chunk handed to a sink), else its record read again (:meth:`inputs`)."""
        if self.debtors and all(d.written is not None for d in self.debtors):
            yield from (d.written for d in self.debtors)
        else:
            yield from self.inputs()

    def inputs(self) -> Iterator[Any]:
        """Each decided debtor's record as its line holds it (what the store keeps), in input order (the line was
        read whole when it was decided: its depth is not measured again)."""
        assert self.source is not None
        with self.source.open("rb") as fh:
            if self.stamp is not None:
                unchanged(self.source, self.stamp)
            for d in self.debtors:
                fh.seek(d.offset)
                yield parse_json_text(fh.readline(), depth_checked=True)

    @property
    def refused_params(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, run in self.runs:
            for aid, count in run.debtors.refused_params.items():
                out[aid] = out.get(aid, 0) + count
        return out


def file_stamp(path: Path) -> tuple[int, int]:
    """A file's size and modification time: what tells a file read again from one changed in between."""
    st = path.stat()
    return st.st_size, st.st_mtime_ns


def unchanged(path: Path, stamp: tuple[int, int], now: tuple[int, int] | None = None) -> None:
    """Refuse a file changed since it was read (``stamp``): its lines are read again by number and offset (to
    decide them, to store them), and another text at those places would be decided or stored unchecked."""
    if (now or file_stamp(path)) != stamp:
        raise UsageError([Diagnostic("file-changed", f"{path} changed while it was being decided: its lines are "
                                     "read again by their places, which now hold other text", file=str(path),
                                     hint="decide a file nothing writes to meanwhile (a copy of it)")])


LEGACY_HINT = ("decide it under the version its record was written for (--policy-version), or convert it to "
               "the new record (`policy-engine convert`)")


def read_debtors(policy: CompiledPolicy, path: Path, as_of: str | None = None, only: Collection[int] | None = None,
                 duplicates: Mapping[int, str] | None = None) -> tuple[list[Debtor], list[dict[str, Any]], int]:
    """Every line of ``path`` (or the line numbers in ``only``): accepted debtors, and rejects with
    their reasons (as ``decide`` gives them); returns the lines read too.

    A client id repeated on a later line is a reject (``duplicate-id``) whatever became of the first
    line, as in a table (``duplicates``: line -> message, the repeats a whole dataset holds, found
    before the file is read). A rejected record without the graded scope's list that lacks a
    required field of the debtor is most likely a record of a policy without scopes: its reject
    says so.
    """
    rejects: list[dict[str, Any]] = []
    read: list[int] = []
    debtors = list(_read(policy, path, as_of, only, duplicates, rejects, read))
    return debtors, rejects, read[0]


def _read(policy: CompiledPolicy, path: Path, as_of: str | None, only: Collection[int] | None,
          duplicates: Mapping[int, str] | None, rejects: list[dict[str, Any]], count: list[int],
          split: tuple[int, int] | None = None, stamps: list[tuple[int, int]] | None = None,
          keep_written: bool = False) -> Iterator[Debtor]:
    """The accepted debtors, one at a time (rejects appended to ``rejects``; the lines read, once all are
    read, to ``count``; the file's stamp when opened, to ``stamps``). ``split``: the file's stamp when a split into
    versions read its lines whole (their depth is not measured again; a file changed since is refused).
    ``keep_written``: each debtor keeps the canonical JSON its hash was taken of (a store keeps that text)."""
    decider = Decider(policy)
    assert isinstance(decider, ScopedDecider)
    first: dict[str, tuple[str, int]] = {}  # client id (id_key) -> (id as written, line)
    n = read = 0
    offset = 0

    def reject(line: int, cid: Any, problems: list[dict[str, str]]) -> None:
        rejects.append(_reject(line, cid, problems))

    refuse_wide_lines(path)
    with path.open("rb") as fh:
        stamp = file_stamp(path)
        if split is not None:
            unchanged(path, split, stamp)
        if stamps is not None:
            stamps.append(stamp)
        for n, raw in enumerate(bounded_lines(fh), 1):  # a runaway line is refused, not held
            at, offset = offset, offset + (raw.length if isinstance(raw, CutLine) else len(raw))
            if only is not None and n not in only:
                continue
            if not raw.strip():  # a blank line (an editor's after the last record, say) is no row
                continue
            read += 1
            try:
                record = parse_json_text(raw, depth_checked=split is not None)
            except JSONInputError as exc:
                reject(n, readable_client_id(raw), [_entry(p or "(line)", code, msg) for code, p, msg in exc.problems])
                continue
            cid = record.get("client_id") if isinstance(record, dict) else None
            if duplicates and n in duplicates:
                reject(n, cid, [_entry("client_id", "duplicate-id", duplicates[n])])
                continue
            key = id_key(cid) if type(cid) is str else None
            if key and key in first:
                reject(n, cid, [_entry("client_id", "duplicate-id", repeated_id(cid, *first[key]))])
                continue
            if key:
                first[key] = (cid, n)
            try:
                client_id, day, inputs, elements, digest, written = decider._read_record(record, as_of)
            except InputError as exc:
                reject(n, cid, [_diagnostic_entry(d)
                                for d in exc.diagnostics] + _legacy(policy, record, exc))
                continue
            yield Debtor(n, at, client_id, day, inputs, elements, digest, written if keep_written else None)
    count.append(read)


def _entry(where: str, code: str, message: str) -> dict[str, str]:
    return {"field": where, "code": code, "message": message}


def _diagnostic_entry(d: Diagnostic) -> dict[str, str]:
    """A problem as decide's diagnostic words it, its hint kept (send numbers without quotes; a record of the kind
    another version reads: the ways to decide it)."""
    return {**_entry(*_problem(d)), **({"hint": d.hint} if d.hint else {})}


def _legacy(policy: CompiledPolicy, record: Any, exc: InputError) -> list[dict[str, str]]:
    """The problem that names a record written for a policy without scopes (one client, one loan), when no
    version beside the policy reads it (one that does names it itself: ``wrong-record-kind``)."""
    part = policy.scoped
    assert part is not None
    if part.graded is None or not isinstance(record, dict) or any(d.code == WRONG_KIND for d in exc.diagnostics):
        return []
    field_name = part.scope(part.graded).list_field
    # a debtor's own fields missing (not only an element's: a debtor without its list whose events lack a field)
    # in a record that holds some (a line '{}' is no record of any kind)
    if field_name in record or not record or not any(d.code == "missing-field" and "[" not in (d.path or "[")
                                                     for d in exc.diagnostics):
        return []
    return [{"field": field_name, "code": "record-version",
             "message": f"no '{field_name}' list and required fields missing: this looks like a record of a policy "
                        f"without scopes (one client, one loan); {policy.id} {policy.version} decides a debtor with "
                        f"its {part.graded} elements",
             "hint": LEGACY_HINT}]


def _reject(line: int, cid: Any, problems: list[dict[str, str]]) -> dict[str, Any]:
    """A rejected line as the rejects file holds it (a line's client id only when it is non-empty text)."""
    return {"row": line, "line": line, "client_id": cid if type(cid) is str and cid else None, "problems": problems}


def _problem(d: Diagnostic) -> tuple[str, str, str]:
    return d.path or "(record)", d.code, d.message


def run_scoped_batch(policy: CompiledPolicy, path: Path, as_of: str | None = None,
                     progress: Callable[[int], None] | None = None, only: Collection[int] | None = None,
                     duplicates: Mapping[int, str] | None = None,
                     sink: Callable[[ScopedBatch], None] | None = None,
                     split: tuple[int, int] | None = None) -> ScopedBatch:
    """Read, check and decide every line of a JSON Lines file of debtor records (or the line numbers in
    ``only``; ``split``: the file's stamp when a split into versions read the lines whole); nothing is lost.

    Debtors are read and decided a chunk at a time. With ``sink``, each decided chunk is handed to
    it (a :class:`ScopedBatch` of that chunk: its records, its lines' records) and then dropped, so
    memory holds one chunk whatever the file's size; the result then keeps the tables only.
    """
    with fewer_collections():
        return _run_scoped_batch(policy, path, as_of, progress, only, duplicates, sink, split)


def _run_scoped_batch(policy: CompiledPolicy, path: Path, as_of: str | None,
                      progress: Callable[[int], None] | None, only: Collection[int] | None,
                      duplicates: Mapping[int, str] | None, sink: Callable[[ScopedBatch], None] | None,
                      split: tuple[int, int] | None) -> ScopedBatch:
    rejects: list[dict[str, Any]] = []
    count: list[int] = []
    stamps: list[tuple[int, int]] = []
    # a chunk handed to a sink may be stored: its debtors keep their canonical JSON (one chunk held at a time)
    stream = _read(policy, path, as_of, only, duplicates, rejects, count, split, stamps, keep_written=sink is not None)
    frames: list[pd.DataFrame] = []
    exposure_frames: list[pd.DataFrame] = []
    debtors: list[Debtor] = []
    runs: list[tuple[int, ScopedRun]] = []
    start = 0
    while chunk := list(itertools.islice(stream, CHUNK_DEBTORS)):
        run = evaluate_debtors(policy, [d.inputs for d in chunk], [d.day for d in chunk],
                               [d.elements for d in chunk])
        frames.append(debtor_frame(policy, chunk, run))
        exposure_frames.append(exposure_frame(policy, chunk, run))
        if sink is not None:
            sink(ScopedBatch(policy, frames[-1], exposure_frames[-1], [], len(chunk), chunk, [(0, run)], path,
                             stamp=stamps[0]))
        else:
            debtors += chunk
            runs.append((start, run))
        start += len(chunk)
        if progress:
            progress(len(chunk))
    decisions = concat_chunks(frames) if frames else debtor_frame(policy, [], None)
    exposures = concat_chunks(exposure_frames) if exposure_frames else exposure_frame(policy, [], None)
    rejects.sort(key=lambda r: r["row"])
    result = ScopedBatch(policy, decisions, exposures, rejects, count[0], debtors, runs, path, kept=sink is None,
                         stamp=stamps[0] if stamps else None)
    if result.decided + result.rejected != result.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {count[0]} read, {result.decided} decided, "
                             f"{result.rejected} rejected")
    return result


def _prepared(policy: CompiledPolicy, chunk: list[Debtor], run: ScopedRun | None) -> Prepared:
    from .vector import columns_from_records

    inputs = columns_from_records(policy, [d.inputs for d in chunk])
    segments = inputs[policy.segment_by].data if policy.segment_by is not None else None
    return Prepared(np.arange(len(chunk), dtype=np.int64), np.array([d.client_id for d in chunk], dtype=object),
                    dates_to_days([d.day for d in chunk]), inputs, segments)


def debtor_frame(policy: CompiledPolicy, chunk: list[Debtor], run: ScopedRun | None) -> pd.DataFrame:
    """One row per debtor: the 1.x decisions table, with the debtor's grade the worst of its exposures'."""
    from .batch import decisions_frame

    if run is None:
        run = evaluate_debtors(policy, [], [], [])
    prep = _prepared(policy, chunk, run)
    frame = decisions_frame(policy, prep, run.debtors, np.array([d.line - 1 for d in chunk], dtype=np.int64))
    part = policy.scoped
    assert part is not None
    keys = np.array([e["@key"] for e in run.tables.levels[part.graded].elements], dtype=object) \
        if part.graded is not None else np.zeros(0, dtype=object)
    return with_exposures(policy, frame, run, keys)


def with_decided_without_elements(summary: dict[str, Any], decisions: pd.DataFrame) -> None:
    """``decided_without_elements`` in a batch summary, when some debtors were decided with no element of the graded
    scope (the ``exposures`` count :func:`with_exposures` writes): a grade from the debtor's rules alone."""
    if "exposures" in decisions.columns and (n := int((decisions["exposures"] == 0).sum())):
        summary["decided_without_elements"] = n


def with_exposures(policy: CompiledPolicy, frame: pd.DataFrame, run: ScopedRun, keys: np.ndarray) -> pd.DataFrame:
    """The decisions table of debtors: a debtor whose grade an exposure's own floor made is decided by that
    rule (``decided_by_exposure`` names the exposure); ``exposures`` counts each debtor's exposures.
    ``keys``: the graded exposures' ids, in the order of their level."""
    exposure, decided_by = _deciding_exposure(policy, run, keys)
    made = decided_by >= 0
    codes = frame["decided_by"].cat.codes.to_numpy().astype(np.int16)  # already codes into decider_names
    codes[made] = decided_by[made]
    frame["decided_by"] = pd.Categorical.from_codes(codes, categories=decider_names(policy))
    frame.insert(frame.columns.get_loc("decided_by") + 1, "decided_by_exposure", text_column(exposure))
    frame.insert(frame.columns.get_loc("decided_by_exposure") + 1, "exposures",
                 np.bincount(_graded_parent(policy, run), minlength=run.debtors.n).astype(np.int64))
    return frame


def _graded_parent(policy: CompiledPolicy, run: ScopedRun) -> np.ndarray:
    part = policy.scoped
    assert part is not None
    if part.graded is None:
        return np.zeros(0, np.int64)
    return run.tables.levels[part.graded].parent


def _exposure_decided_by(policy: CompiledPolicy, run: ScopedRun) -> np.ndarray:
    """Per exposure, the rule that set its final grade: its own floor first, then the debtor's; else the
    base decider. As codes into :func:`decider_names` (a million exposures name a few rules)."""
    if run.exposure_decided_by is not None:
        return run.exposure_decided_by
    part = policy.scoped
    assert part is not None
    t = run.tables
    m = len(t.rank)
    names = {name: code for code, name in enumerate(decider_names(policy))}
    out = run.exposure_decided_by = np.zeros(m, np.int16)  # 0: the base decider
    settled = np.zeros(m, bool)
    if not m:
        return out
    rules = [(f.id, policy.grade_ids.index(f.floor), c.data & c.valid) for f, c in zip(part.floors, t.floors,
                                                                                         strict=True)]
    rules += [(f.id, policy.grade_ids.index(f.floor), fired)
              for f, fired in zip(policy.floors, t.debtor_floor_hits(run.debtors.floors), strict=True)]
    for rid, rank, fired in rules:
        hit = fired & (t.rank == rank) & ~settled
        out[hit] = names[rid]
        settled |= hit
    return out


def _deciding_exposure(policy: CompiledPolicy, run: ScopedRun, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per debtor, the exposure whose own floor made its grade (None when the debtor floors did) and its
    rule (a code into :func:`decider_names`; -1 when none)."""
    n = run.debtors.n
    exposure = np.full(n, None, dtype=object)
    decided_by = np.full(n, -1, np.int16)
    part = policy.scoped
    assert part is not None
    if part.graded is None or not len(run.tables.rank):
        return exposure, decided_by
    level = run.tables.levels[part.graded]
    by = _exposure_decided_by(policy, run)
    g_rank = run.debtors.g_rank.astype(np.int64)
    made = (g_rank > run.tables.floor_rank)[level.parent] & (run.tables.rank == g_rank[level.parent])
    if part.tie_to_exposure:  # classification.decided_by_tie: exposure: a debtor floor's equal names it too
        made |= (g_rank[level.parent] > 0) & (run.tables.own_rank == g_rank[level.parent])
    idx = np.flatnonzero(made)[::-1]  # the first such exposure of each debtor is written last
    exposure[level.parent[idx]] = keys[idx]
    decided_by[level.parent[idx]] = by[idx]
    return exposure, decided_by


def exposure_frame(policy: CompiledPolicy, chunk: list[Debtor], run: ScopedRun | None) -> pd.DataFrame:
    """One row per exposure: its debtor, final and own grade, deciding rule, fired floors and metrics."""
    from .batch import day_texts

    part = policy.scoped
    assert part is not None
    if run is None:
        run = evaluate_debtors(policy, [], [], [])
    if part.graded is None:
        return pd.DataFrame({"row": [], "client_id": [], "exposure_id": []})
    level = run.tables.levels[part.graded]
    parent, m = level.parent, level.n
    rows = np.array([d.line for d in chunk], dtype=np.int64)
    ids = np.array([d.client_id for d in chunk], dtype=object)
    head = {"row": rows[parent] if m else np.zeros(0, np.int64), "client_id": ids[parent] if m else np.zeros(0, object),
            "exposure_id": np.array([e["@key"] for e in level.elements], dtype=object)}
    return exposure_columns(policy, run, head, day_texts)




def balance_input(policy: CompiledPolicy) -> str | None:
    """The graded scope's input read from an exposure's ``balance`` (record 2.0's outstanding principal), if the
    policy reads it: the exposure table carries it so that balances need no second read of the portfolio."""
    part = policy.scoped
    if part is None or part.graded is None:
        return None
    return next((s.name for s in part.inputs[part.graded]
                 if s.source == "balance" and s.type in ("number", "integer")), None)


def _undetermined_column(policy: CompiledPolicy, run: ScopedRun, parent: np.ndarray, m: int) -> Any:
    """Per exposure, its floors without a value, then the debtor floors that may name it without saying whether
    they apply (fired, its ``for_exposures`` without a value; or without a value, the exposure not ruled out): the
    record lists both under ``undetermined`` with the exposure."""
    from .batch import _list_column

    part = policy.scoped
    assert part is not None
    t = run.tables
    cols = [~c.valid for c in t.floors]
    names = [f.id for f in part.floors]
    for f, c in zip(policy.floors, run.debtors.floors, strict=True):
        if f.for_exposures is not None:  # fired, not known for it; or not known, and it is not ruled out
            named = t.metrics[f.selector]
            ruled_out = named.valid & ~np.asarray(named.data, dtype=bool)
            cols.append(((c.data & c.valid)[parent] & ~named.valid) | ((~c.valid)[parent] & ~ruled_out))
            names.append(f.id)
    return _list_column(np.column_stack(cols) if cols else np.zeros((m, 0), bool), names)


def exposure_columns(policy: CompiledPolicy, run: ScopedRun, head: dict[str, Any],
                     date_texts: Callable[[np.ndarray, np.ndarray], Any]) -> pd.DataFrame:
    """An exposure table from its identifying columns (``head``: row, client id, exposure id, as each input form
    knows them) and the run: the grades, deciding rule, floors and metrics, the same for every input form."""
    from .batch import _list_column

    part = policy.scoped
    assert part is not None and part.graded is not None
    t = run.tables
    parent, m = t.levels[part.graded].parent, t.levels[part.graded].n
    grades = list(policy.grade_ids)
    own = [c.data & c.valid for c in t.floors]
    debtor = t.debtor_floor_hits(run.debtors.floors)
    fired = np.column_stack([*own, *debtor]) if own or debtor else np.zeros((m, 0), bool)
    names = [*(f.id for f in part.floors), *(f.id for f in policy.floors)]
    out: dict[str, Any] = {
        **head,
        "grade": pd.Categorical.from_codes(t.rank.astype(np.int8), categories=grades),
        "own_grade": pd.Categorical.from_codes(t.own_rank.astype(np.int8), categories=grades),
        "decided_by": pd.Categorical.from_codes(_exposure_decided_by(policy, run), categories=decider_names(policy)),
        "nonperforming": np.array([g.nonperforming for g in policy.scale])[t.rank],
        "floors": _list_column(fired, names),
        "undetermined": _undetermined_column(policy, run, parent, m),
        "warnings": _naming_warnings(policy, run, parent, m),
        "actions": _naming_actions(policy, run, parent, m),
    }
    balance = balance_input(policy)
    if balance is not None:  # what impact weighs a migration by, and a reader of the table sums by grade
        c = t.levels[part.graded].env[balance]
        out["balance"] = np.where(c.valid, np.asarray(c.data, float), np.nan)
    for metric in part.metrics:
        c = t.metrics[metric.name]
        kind = metric.expr.type
        if kind == "number":
            out[f"metric.{metric.name}"] = np.where(c.valid, np.asarray(c.data, float), np.nan)
        elif kind == "bool":
            col = pd.array(np.where(c.valid, c.data, False), dtype="boolean")
            col[~c.valid] = pd.NA
            out[f"metric.{metric.name}"] = col
        elif kind == "date":
            out[f"metric.{metric.name}"] = date_texts(np.asarray(c.data), np.asarray(c.valid, bool))
        elif kind in ("string", "grade"):
            out[f"metric.{metric.name}"] = text_column(np.where(c.valid, c.data, None))
        else:
            out[f"metric.{metric.name}"] = np.where(c.valid, c.data, None)
    return pd.DataFrame(out)


def _naming_warnings(policy: CompiledPolicy, run: ScopedRun, parent: np.ndarray, m: int) -> pd.Series:
    """Per exposure, the warnings that fired naming it (``for_exposures``), in the policy's order: the record's
    ``warnings[].exposures`` read the other way round (a warning of the debtor as a whole is in the debtor table
    only)."""
    fired = [(w, res.data & res.valid) for w, res in zip(policy.warnings, run.debtors.warnings, strict=True)]
    return _naming(run, fired, parent, m)


def _naming_actions(policy: CompiledPolicy, run: ScopedRun, parent: np.ndarray, m: int) -> pd.Series:
    """Per exposure, the recommended actions that name it (``for_exposures``), most urgent first as the debtor's
    ``actions``: the record's ``actions[].exposures`` read the other way round. An action of the debtor as a
    whole names no exposure, so it is only in the debtor table."""
    from .batch import kept_actions

    order, kept, _ = kept_actions(policy, run.debtors)
    return _naming(run, [(policy.actions[j], kept[:, k]) for k, j in enumerate(order)], parent, m)


def _naming(run: ScopedRun, fired: list[tuple[Any, np.ndarray]], parent: np.ndarray, m: int) -> pd.Series:
    """Per exposure, the ids of the warnings or actions (with, per debtor, whether each fired or was kept) whose
    ``for_exposures`` held for it, in the order given."""
    from .batch import _list_column

    masks, ids = [], []
    for spec, debtor_mask in fired:
        if spec.for_exposures is None:
            continue
        named = run.tables.metrics[spec.selector]
        masks.append(np.asarray(named.data, bool) & np.asarray(named.valid, bool) & debtor_mask[parent])
        ids.append(spec.id)
    return _list_column(np.column_stack(masks) if masks else np.zeros((m, 0), bool), ids)


# ------------------------------------------------------------ a file of debtors, version per line


@dataclass
class DebtorRun:
    """A JSON Lines file decided line by line under the version in force on each line's day.

    Lines under a version with scopes are decided as debtors (one :class:`ScopedBatch` per such
    version); lines under a version without scopes as the client table of a 1.x batch
    (``table``); the rest are rejects with their reasons (``rejected_lines``: unreadable, no
    version in force, a client id already on a line decided under another version). Row numbers
    are the file's line numbers everywhere, so the parts merge back into input order.
    """

    scoped: list[ScopedBatch]
    table: TableRun | None
    rejected_lines: list[dict[str, Any]]
    rows_read: int
    policy_id: str
    streamed: bool = False  # the records went to a sink chunk by chunk (one version only)

    @property
    def policies(self) -> list[CompiledPolicy]:
        return [b.policy for b in self.scoped] + (self.table.policies if self.table is not None else [])

    @property
    def decided(self) -> int:
        return sum(b.decided for b in self.scoped) + (self.table.decided if self.table is not None else 0)

    @property
    def rejects(self) -> list[dict[str, Any]]:
        parts = [r for b in self.scoped for r in b.rejects] + self.rejected_lines
        if self.table is not None:
            parts += self.table.rejects
        return sorted(parts, key=lambda r: r["row"])

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def period_rejects(self) -> list[dict[str, Any]]:
        return []

    @property
    def decisions(self) -> pd.DataFrame:
        """One row per decided line: a debtor's (with the exposure that decided its grade and how many
        it has) or a 1.x client's (those two columns empty), in input order."""
        from .tables import _merge_decisions

        frames = [b.decisions for b in self.scoped]
        if self.table is not None and self.table.parts:
            frames.append(self.table.decisions)
        if not frames:
            return pd.DataFrame({c: [] for c in ("row", "client_id", "as_of", "policy_id", "policy_version",
                                                 "policy_sha256", "grade")})
        merged = _merge_decisions(frames)
        if "exposures" in merged.columns and len(frames) > 1:
            merged["exposures"] = merged["exposures"].astype("Int64")  # a 1.x client's: none given
        return merged

    @property
    def exposures(self) -> pd.DataFrame:
        """One row per exposure of every decided debtor, in input order (1.x clients have none)."""
        frames = [b.exposures for b in self.scoped]
        if not frames:
            return pd.DataFrame({"row": np.zeros(0, np.int64), "client_id": np.zeros(0, object),
                                 "exposure_id": np.zeros(0, object)})
        if len(frames) == 1:
            return frames[0]
        merged = pd.concat([f.astype({c: object for c in ("grade", "own_grade", "decided_by")}) for f in frames],
                           ignore_index=True)
        return merged.sort_values("row", kind="stable").reset_index(drop=True)

    def records(self) -> Iterator[dict[str, Any]]:
        """Full decision records (as ``decide`` prints them), in input order."""
        import heapq

        streams: list[Iterator[tuple[int, dict[str, Any]]]] = [
            zip(b.decisions["row"].tolist(), b.records(), strict=True) for b in self.scoped]
        if self.table is not None and self.table.parts:
            streams.append(zip(self.table.decisions["row"].tolist(), self.table.records(), strict=True))
        for _, record in heapq.merge(*streams, key=lambda pair: pair[0]):
            yield record

    def summary(self) -> dict[str, Any]:
        """``batch``'s summary: accounting, counts by grade, warning, action and segment, the versions used,
        and the exposures by grade."""
        from .batch import BatchResult, refused_summary, summary
        from .tables import table_summary

        policies = self.policies
        if not policies:
            s = table_summary(TableRun([], self.rejects, self.rows_read, None, self.policy_id))
            s["exposures"] = {"count": 0, "by_grade": {}}
            return s
        refused: dict[str, int] = {}
        counts = [(b.policy, b.decided, b.refused_params) for b in self.scoped]
        if self.table is not None:
            counts += [(p.policy, p.decided, p.refused_params) for p in self.table.parts]
        for _, _, by in counts:
            for aid, c in by.items():
                refused[aid] = refused.get(aid, 0) + c
        first = policies[0]
        s = summary(BatchResult(first, self.decisions, self.rejects, self.rows_read))
        grades = list(dict.fromkeys(g for p in policies for g in p.grade_ids))
        n = max(self.decided, 1)
        d = self.decisions
        s["by_grade"] = {g: {"count": int((d["grade"] == g).sum()), "share": round(int((d["grade"] == g).sum()) / n, 6)}
                         for g in grades}
        s["refused_action_params"] = refused_summary(refused, self.decided)
        s["versions"] = sorted(({"version": p.version, "sha256": p.sha256, "decided": k} for p, k, _ in counts),
                               key=lambda v: v["version"])
        if len(counts) > 1:
            s["policy"] = {"id": first.id, "version": ", ".join(v["version"] for v in s["versions"]), "sha256": None}
        e = self.exposures
        m = max(len(e), 1)
        s["exposures"] = {"count": len(e), "by_grade": {
            g: {"count": int((e["grade"] == g).sum()), "share": round(int((e["grade"] == g).sum()) / m, 6)}
            for g in dict.fromkeys(g for b in self.scoped for g in b.policy.grade_ids)} if len(e) else {}}
        with_decided_without_elements(s, d)
        return s


def decide_debtor_file(ref: PolicyRef, path: Path, as_of: str | None = None, *, workers: int = 2,
                       progress: Callable[[int, int], None] | None = None,
                       duplicates: Mapping[int, str] | None = None,
                       sink_for: Callable[[CompiledPolicy], Callable[[ScopedBatch], None]] | None = None) -> DebtorRun:
    """Decide a JSON Lines file of client records, each line under the version in force on its day.

    A pinned version with scopes reads every line as a debtor. A policy id may select, line by
    line, a version with scopes (the line is a debtor) or one without (the line is a 1.x client,
    decided as a 1.x batch decides it); both kinds may share one file. ``rows read = decided +
    rejected``, always. ``duplicates`` (line -> message) are lines whose client id an earlier file of
    a dataset holds. With ``sink_for`` (a version -> a sink for its decided chunks), a file decided
    under one version only is streamed (see :func:`run_scoped_batch`; ``DebtorRun.streamed``):
    its records go to the sink, never all held at once.
    """
    from .tables import counting, decide_table

    total = count_lines(path)
    tick = counting(progress, total)
    pinned = ref.pinned
    if pinned is not None:
        sink = sink_for(pinned) if sink_for is not None else None
        batch = run_scoped_batch(pinned, path, as_of, tick, duplicates=duplicates, sink=sink)
        run = DebtorRun([batch], None, [], batch.rows_read, pinned.id, streamed=sink is not None)
    else:
        stamp = file_stamp(path)
        groups, table_lines, rejected, read = _split(ref, path, as_of, duplicates or {})
        one = sink_for is not None and len(groups) == 1 and not table_lines  # one version: streamed
        parts = [run_scoped_batch(policy, path, as_of, tick, only=set(lines),
                                  sink=sink_for(policy) if one and sink_for is not None else None, split=stamp)
                 for policy, lines in groups.values()]
        table = None
        if table_lines:
            from .batch import read_lines

            table = decide_table(ref, read_lines(path, set(table_lines)), as_of, workers=workers)
            if tick is not None:
                tick(len(table_lines))
        run = DebtorRun(parts, table, rejected, read, ref.name, streamed=one)
    if progress is not None:
        progress(total, total)
    if run.decided + run.rejected != run.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {run.rows_read} read, {run.decided} decided, {run.rejected} rejected")
    return run


def count_lines(path: Path) -> int:
    n = 0
    last = b"\n"
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _split(ref: PolicyRef, path: Path, as_of: str | None, duplicates: Mapping[int, str]
           ) -> tuple[dict[int, tuple[CompiledPolicy, list[int]]], list[int], list[dict[str, Any]], int]:
    """Each line to the version in force on its day: (lines per version with scopes, lines of versions
    without, rejected lines, lines read). A line that cannot be read, has no version in force, or
    repeats a client id of an earlier line of another version is rejected here; the parts find the
    rest of their lines' problems themselves."""
    groups: dict[int, tuple[CompiledPolicy, list[int]]] = {}
    table: list[int] = []
    rejected: list[dict[str, Any]] = []
    first: dict[str, tuple[int, int, str]] = {}  # client id (id_key) -> (line, its version's id(), id as written)
    n = blank = 0

    def reject(line: int, cid: Any, problems: list[dict[str, str]]) -> None:
        rejected.append(_reject(line, cid, problems))

    refuse_wide_lines(path)
    with path.open("rb") as fh:
        for n, raw in enumerate(bounded_lines(fh), 1):
            if not raw.strip():  # no row: not counted
                blank += 1
                continue
            try:
                record = parse_json_text(raw)
            except JSONInputError as exc:
                reject(n, readable_client_id(raw), [_entry(p or "(line)", code, msg) for code, p, msg in exc.problems])
                continue
            if not isinstance(record, dict):
                reject(n, None, [_entry("(record)", "wrong-type", "a client record is a JSON object")])
                continue
            cid = record.get("client_id")
            if n in duplicates:
                reject(n, cid, [_entry("client_id", "duplicate-id", duplicates[n])])
                continue
            bad_day = unreadable_day(record, as_of)
            if bad_day is not None:  # the day would choose the version: no version's checks apply
                reject(n, cid, [{**_entry("as_of", bad_day.code, bad_day.message), "hint": bad_day.hint or ""}])
                continue
            policy = ref.for_day_or_refusal(selection_day(record, as_of))
            if isinstance(policy, UsageError):
                d = policy.diagnostics[0]
                reject(n, cid, [{**_entry("as_of", d.code, d.message), **({"hint": d.hint} if d.hint else {})}])
                continue
            key = id_key(cid) if type(cid) is str else None
            seen = first.get(key) if key else None
            if seen is not None and seen[1] != id(policy):  # the same version's part finds its own repeats
                reject(n, cid, [_entry("client_id", "duplicate-id", repeated_id(cid, seen[2], seen[0]))])
                continue
            if seen is None and key:
                first[key] = (n, id(policy), cid)
            if policy.scoped is not None:
                groups.setdefault(id(policy), (policy, []))[1].append(n)
            else:
                table.append(n)
    return groups, table, rejected, n - blank


def scoped_versions(ref: PolicyRef) -> list[CompiledPolicy]:
    """The versions with scopes a run of ``ref`` may decide under: the pinned one, or the id's active ones."""
    pinned = ref.pinned
    if pinned is not None:
        return [pinned] if pinned.scoped is not None else []
    registry = ref.registry()
    versions = [h for h in registry.headers() if h is not None and h.id == ref.name]
    if not versions:
        registry.select(ref.name)  # an unknown id: its own error (with the ids known) stops the run, exit 2
    active = [h for h in versions if h.status == "active"]
    return [p for p in (registry.select(ref.name, version=h.version) for h in active) if p.scoped is not None]


def misspelt_in_lines(ref: PolicyRef, paths: list[Path], as_of: str | None) -> list[tuple[str, str, str]]:
    """(policy id, field given, field meant) for fields of the first debtor lines (of the first file that has
    lines) that look like a field their version reads and lacks (as ``decide`` names them), each pair once,
    indices as ``[*]``."""
    import re

    import orjson

    from ..decide.inputs import MISSPELT_SAMPLE, misspelt_fields, record_fields
    from ..diagnostics import PolicyEngineError
    from ..policy.loader import MAX_JSON_BYTES

    index = re.compile(r"\[\d+\]")
    found: dict[tuple[str, str, str], None] = {}
    path = next((p for p in paths if p.stat().st_size), None)
    if path is None:
        return []
    with path.open("rb") as fh:
        for _, line in zip(range(MISSPELT_SAMPLE), fh, strict=False):
            if len(line) > MAX_JSON_BYTES:
                continue  # rejected by the run for its size: not parsed here to look for a misspelling
            try:
                record = orjson.loads(line)
                policy = ref.for_day(selection_day(record, as_of))
            except (orjson.JSONDecodeError, PolicyEngineError):
                continue  # the run names what is wrong with it
            for given, meant in misspelt_fields(policy, record_fields(record)):
                found[(policy.id, index.sub("[*]", given), index.sub("[*]", meant))] = None
    return list(found)
