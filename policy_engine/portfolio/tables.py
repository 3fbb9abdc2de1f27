"""A table decided under the version in force on each row's day, accounted for and recorded.

The local batch, the Dask partitions, ``impact`` and ``simulate`` decide tables through
:func:`decide_table`; :class:`BatchRun` is what a batch did. Heavy modules (pandas, numpy) are
imported by the functions that use them, so that importing this module stays light.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..decide.ref import PolicyRef, check_day
from ..diagnostics import UsageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from ..policy.compiler import CompiledPolicy
    from ..record.audit import AuditStore
    from .batch import BatchResult, PeriodRows, Table

def row_days(frame: pd.DataFrame, as_of: str | None) -> np.ndarray:
    """Each row's selection day (ISO text, or None for today), as :func:`selection_day` gives a record's.

    Distinct ``as_of`` cells are few: each is read once.
    """
    import numpy as np
    import pandas as pd

    from ..decide.records import date_of

    n = len(frame)
    if as_of is not None or "as_of" not in frame.columns:
        return np.full(n, as_of, dtype=object)
    codes, uniques = pd.factorize(frame["as_of"], use_na_sentinel=True)
    days = []
    for v in uniques:
        day = date_of(v)
        days.append(day.isoformat() if day is not None and (not isinstance(v, str) or len(v) == 10) else None)
    lookup = np.array([*days, None], dtype=object)
    return lookup[codes]  # code -1 (a null cell) picks the trailing None


@dataclass
class TableRun:
    """A table decided under the version in force for each row: one :class:`BatchResult` per version used,
    plus the rows decided under none (no version in force on their day)."""

    parts: list[BatchResult]
    unversioned: list[dict[str, Any]]
    rows_read: int
    periods: PeriodRows | None = None
    policy_id: str = ""
    _decisions: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def policies(self) -> list[CompiledPolicy]:
        return [p.policy for p in self.parts]

    @property
    def decided(self) -> int:
        return sum(p.decided for p in self.parts)

    @property
    def rejects(self) -> list[dict[str, Any]]:
        """Every rejected client row, in row order (the rows of a ``--financials`` table are in ``periods``)."""
        if len(self.parts) == 1 and not self.unversioned:
            return self.parts[0].rejects
        return sorted([r for p in self.parts for r in p.rejects] + self.unversioned, key=lambda r: r["row"])

    @property
    def rejected(self) -> int:
        return sum(p.rejected for p in self.parts) + len(self.unversioned)

    @property
    def period_rejects(self) -> list[dict[str, Any]]:
        return self.periods.rejects if self.periods is not None else []

    @property
    def decisions(self) -> pd.DataFrame:
        """The decisions table of every decided row, in input order."""
        if self._decisions is None:
            self._decisions = _merge_decisions([p.decisions for p in self.parts])
        return self._decisions

    def records(self) -> Iterator[dict[str, Any]]:
        """Full decision records (as ``decide`` prints them), in input order."""
        import heapq

        from ..decide.evaluate import Decider
        from .batch import iter_records

        streams = []
        for p in self.parts:
            rows = p.decisions["row"].to_numpy().tolist()
            streams.append(zip(rows, iter_records(p, Decider(p.policy)), strict=True))
        for _, record in heapq.merge(*streams, key=lambda pair: pair[0]):
            yield record

    def summary(self) -> dict[str, Any]:
        """Accounting and counts (``batch.summary``'s form); ``versions`` says how many rows each version decided."""
        from .batch import BatchResult, summary

        first = self.parts[0]
        refused: dict[str, int] = {}  # computed action parameters refused, summed over the versions
        for p in self.parts:
            for aid, count in p.refused_params.items():
                refused[aid] = refused.get(aid, 0) + count
        merged = BatchResult(first.policy, self.decisions, self.rejects, self.rows_read, periods=self.periods,
                             refused_params=refused)
        s = summary(merged)
        s["versions"] = [{"version": p.policy.version, "sha256": p.policy.sha256, "decided": p.decided}
                         for p in self.parts]
        if len(self.parts) > 1:
            s["policy"] = {"id": first.policy.id, "version": ", ".join(p.policy.version for p in self.parts),
                           "sha256": None}
        return s


def _merge_decisions(frames: list[pd.DataFrame]) -> pd.DataFrame:
    import pandas as pd

    if len(frames) == 1:
        return frames[0]
    categorical = [c for c in frames[0].columns if isinstance(frames[0][c].dtype, pd.CategoricalDtype)]
    merged = pd.concat([f.astype({c: object for c in categorical if c in f.columns}) for f in frames],
                       ignore_index=True)
    merged = merged.sort_values("row", kind="stable").reset_index(drop=True)
    return merged.astype({c: "category" for c in categorical})


def counting(progress: Callable[[int, int], None] | None, total: int) -> Callable[[int], None] | None:
    """A per-chunk callback (rows just done) as ``progress(done so far, total)``; chunks finish on several threads."""
    if progress is None:
        return None
    import threading

    lock = threading.Lock()
    done = [0]

    def tick(rows: int) -> None:
        with lock:
            done[0] = min(done[0] + rows, total)
            progress(done[0], total)

    return tick


def decide_table(ref: PolicyRef, table: Table, as_of: str | None = None, *, workers: int = 2,
                 progress: Callable[[int, int], None] | None = None, duplicates: list[Any] | None = None,
                 row_offset: int = 0) -> TableRun:
    """Check and decide every row of ``table``, each under the version in force on its day.

    ``progress(done, total)`` is called as each chunk of rows is decided (and once at the end).
    ``duplicates`` and ``row_offset`` are for a table that is one partition of a dataset (see
    ``batch.run_batch``).
    """
    run = _decide_table(ref, table, as_of, workers, counting(progress, table.rows_read), duplicates, row_offset)
    if progress is not None:
        progress(table.rows_read, table.rows_read)
    return run


def _decide_table(ref: PolicyRef, table: Table, as_of: str | None, workers: int,
                  progress: Callable[[int], None] | None, duplicates: list[Any] | None, row_offset: int) -> TableRun:
    import numpy as np

    from .batch import run_batch, table_rejects
    from .frame import Problem, duplicate_ids

    check_day(as_of)
    pinned = ref.pinned
    if pinned is not None:
        result = run_batch(pinned, table, as_of, progress=progress, workers=workers, duplicates=duplicates,
                           row_offset=row_offset)
        return TableRun([result], [], table.rows_read, table.periods)
    frame = table.frame
    days = row_days(frame, as_of)
    distinct = list(dict.fromkeys(days.tolist())) or [as_of]  # no rows: the version of the day, as for one
    chosen: dict[str | None, CompiledPolicy | UsageError] = {}
    for day in distinct:
        chosen[day] = ref.for_day_or_refusal(day)
    # a row whose as_of is no date has no day (None): rejected for it, never refused with the table
    unreadable = _unreadable_days(frame, days) if None in distinct else None
    if len(distinct) == 1 and not isinstance(chosen[distinct[0]], UsageError) and not (
            chosen[distinct[0]].scoped is not None and unreadable is not None):  # type: ignore[union-attr]
        only = chosen[distinct[0]]
        assert not isinstance(only, UsageError)
        if only.scoped is not None and not len(frame):  # no row: nothing a table row could not hold, whatever the day
            return TableRun([], [], table.rows_read, table.periods, ref.name)
        if only.scoped is not None and as_of is None and "as_of" not in frame.columns:
            _refuse_undated(only, [str(c) for c in frame.columns])
        result = run_batch(only, table, as_of, progress=progress, workers=workers, duplicates=duplicates,
                           row_offset=row_offset)
        return TableRun([result], [], table.rows_read, table.periods)
    positions = table.positions if table.positions is not None else np.arange(len(frame), dtype=np.int64)
    # Over the whole table: a duplicate may be decided under another version than its first occurrence.
    dups = duplicate_ids(frame, positions) if duplicates is None else duplicates
    groups, unversioned, nested = _rows_by_version(table, days, chosen, unreadable, positions, row_offset)
    if not groups and nested is not None:  # no row the table can hold: the whole input is of the wrong form
        from .batch import refuse_scoped

        refuse_scoped(nested, f"a table row (decided on {days[0] or 'today'} under {nested.key})")
    parts = []
    for k, (policy, rows) in enumerate(sorted(groups.values(), key=lambda g: g[1][0])):
        where = {int(r): j for j, r in enumerate(rows)}
        local = [Problem(where[p.row], p.path, p.message, p.code) for p in dups if p.row in where]
        parts.append(run_batch(policy, _part_table(table, rows, where, positions, first=k == 0), as_of,
                               progress=progress, workers=workers, duplicates=local, row_offset=row_offset))
    if not parts:  # no row of the table has a version in force: the table's own problems still count
        unversioned = sorted(unversioned + table_rejects(table, [], positions, row_offset), key=lambda r: r["row"])
        return TableRun([], unversioned, table.rows_read, table.periods, ref.name)
    run = TableRun(parts, unversioned, table.rows_read, table.periods)
    if run.decided + run.rejected != run.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {run.rows_read} read, {run.decided} decided, {run.rejected} rejected")
    return run


def _rows_by_version(table: Table, days: Any, chosen: Mapping[str | None, CompiledPolicy | UsageError],
                     unreadable: Mapping[int, Any] | None, positions: Any, row_offset: int) -> tuple[
                         dict[int, tuple[CompiledPolicy, list[int]]], list[dict[str, Any]], CompiledPolicy | None]:
    """The rows of each version a table row can hold (by its id()), the rows decided under none (no version in
    force on the day, a version with scopes, a day that is no date) with why, and a version with scopes some
    row fell under."""
    from .batch import reject_line

    groups: dict[int, tuple[CompiledPolicy, list[int]]] = {}
    unversioned: list[dict[str, Any]] = []
    ids = _id_texts(table.frame)
    nested: CompiledPolicy | None = None
    for i, day in enumerate(days.tolist()):
        c = chosen[day]
        if not isinstance(c, UsageError) and c.scoped is None:
            groups.setdefault(id(c), (c, []))[1].append(i)
            continue
        if unreadable is not None and i in unreadable:  # no day to choose a version for: the day is the problem
            d = unreadable[i]
        else:
            d = c.diagnostics[0] if isinstance(c, UsageError) else _nested_row(c, day)
            nested = c if not isinstance(c, UsageError) else nested
        pos = int(positions[i])
        unversioned.append({"row": pos + 1 + row_offset, **reject_line(table, pos), "client_id": ids[i], "problems": [
            {"field": "as_of", "code": d.code, "message": d.message, **({"hint": d.hint} if d.hint else {})}]})
    return groups, unversioned, nested


def _part_table(table: Table, rows: list[int], where: Mapping[int, int], positions: Any, first: bool) -> Table:
    """The rows of one version as a table of their own. Rows that could not be parsed at all belong to no
    version: the first part reports them. JSON Lines records are still held to decide's reading, and hashed
    from their lines."""
    import numpy as np

    from .batch import Table
    from .frame import Problem

    idx = np.asarray(rows, dtype=np.int64)
    return Table(table.frame.iloc[idx], table.text, problems=table.problems if first else [], positions=positions[idx],
                 rows_read=len(idx) + (len(table.problems) if first else 0), periods=None, lines=table.lines,
                 source=table.source, offsets=table.offsets[idx] if table.offsets is not None else None,
                 late=[Problem(where[p.row], p.path, p.message, p.code) for p in table.late if p.row in where])


def _unreadable_days(frame: pd.DataFrame, days: Any) -> dict[int, Any] | None:
    """The rows whose ``as_of`` cell holds a value that is no date (their selection day is None, as for a row
    without one), each with its problem; None when there is none. Such a row is decided under no version: the
    day that would choose it is the problem (as ``decide`` names it)."""
    from ..decide.records import date_of
    from ..decide.ref import day_problem

    if "as_of" not in frame.columns:
        return None
    cells = frame["as_of"].to_numpy(dtype=object, na_value=None)
    found = {}
    for i in (i for i, day in enumerate(days.tolist()) if day is None):
        v = cells[i]
        if v is None or v == "" or (isinstance(v, float) and v != v):
            continue
        if date_of(v) is None or (isinstance(v, str) and len(v) != 10):
            found[i] = day_problem(v)
    return found or None


def _refuse_undated(policy: CompiledPolicy, columns: list[str]) -> None:
    """A table without an as_of column, under a policy id: every row falls on today, under a version with scopes
    that a table row cannot feed. Say that the day came from nowhere (a misspelt 'asof' column, most often)."""
    from ..diagnostics import Diagnostic, UsageError, closest
    from .batch import SCOPED_INPUT_HINT

    near = closest("as_of", columns)
    why = f"column '{near}' is not read as as_of" if near else "no column names the day of each row"
    raise UsageError([Diagnostic(
        "scoped-policy-in-table", f"the table has no as_of column ({why}), so every row is dated today, when "
        f"{policy.key} is in force; it decides a debtor with several exposures, which a table row cannot hold",
        hint=(f"rename column '{near}' to as_of, or give --as-of" if near else "give each row its as_of, or --as-of")
        + f"; for {policy.key}, {SCOPED_INPUT_HINT}")])


def _nested_row(policy: CompiledPolicy, day: str | None) -> Any:
    """Why a table row decided under a version with scopes is rejected (the row cannot hold a debtor's exposures)."""
    from ..diagnostics import Diagnostic
    from .batch import SCOPED_INPUT_HINT

    return Diagnostic("scoped-policy-in-table", f"on {day or 'today'} {policy.key} is in force, which decides a debtor "
                      "with several exposures: a table row cannot hold one", hint=SCOPED_INPUT_HINT)


def _id_texts(frame: pd.DataFrame) -> list[str | None]:
    from .frame import client_id_text

    if "client_id" not in frame.columns:
        return [None] * len(frame)
    return [None if v is None or v == "" else str(v)
            for v in client_id_text(frame["client_id"]).to_numpy(dtype=object, na_value=None).tolist()]


def batch_key(policy: CompiledPolicy, files: Iterable[Path | None], as_of: str | None,
              encoding: str = "utf-8") -> str:
    """The same policy over the same input bytes (and date) is the same batch: a rerun can skip what is recorded.

    Bytes read as another text encoding are other clients, so a CSV encoding other than UTF-8 is
    part of the key (UTF-8 keys stay as stores already hold them).
    """
    import codecs

    h = hashlib.sha256(f"{policy.sha256}\0{as_of or ''}\0".encode())
    codec = codecs.lookup(encoding).name
    if codec != "utf-8":
        h.update(f"encoding={codec}\0".encode())
    for path in files:
        if path is not None:
            with path.open("rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def record_table(run: TableRun, store: AuditStore, keys: Mapping[str, str] | Callable[[CompiledPolicy], str],
                 audit_inputs: str = "full", ids: dict[str, tuple[str, str]] | None = None) -> tuple[int, int]:
    """Record every decided client of ``run`` (one segment series per version, its own batch key);
    returns (recorded now, already recorded by an earlier run of the same batch). ``ids`` gets the
    decision id and time each client is stored under (``--records`` writes them, so a record's id is
    the one ``audit show`` finds)."""
    from .batch import audit_segments, prefetched

    def noted(segments: Iterator[tuple[bytes, Any]]) -> Iterator[tuple[bytes, Any]]:
        for data, records in segments:
            if ids is not None:
                ids.update((cid, (f"{records.id_prefix}{records.id_first + i:012x}", records.recorded_at))
                           for i, cid in enumerate(records.client_ids))
            yield data, records

    written = skipped = 0
    for part in run.parts:
        key = keys(part.policy) if callable(keys) else keys[part.policy.sha256]
        if ids is not None:  # --records: a client an earlier run recorded keeps the stored id and time
            stored = store.recorded_ids(key)
            ids.update(stored)
            skip = set(stored)
        else:
            skip = store.recorded_clients(key)
        skipped += len(skip)
        written += store.append_segments(part.policy, noted(prefetched(audit_segments(part, audit_inputs, skip))),
                                         key)
    return written, skipped


@dataclass
class BatchRun:
    """What a batch did: its table run (local) or partition runs (Dask), its summary, and what it recorded."""

    run: Any  # TableRun, or distributed.DaskRun
    summary: dict[str, Any]
    recorded: int = 0
    already_recorded: int = 0
    misspelt: list[tuple[str, str, str]] = field(default_factory=list)  # (policy id, given column, meant)

    @property
    def decisions(self) -> pd.DataFrame:
        return self.run.decisions

    @property
    def rejects(self) -> list[dict[str, Any]]:
        return list(self.run.rejects)

    @property
    def rejected(self) -> int:
        return len(self.run.rejects)

    @property
    def period_rejects(self) -> list[dict[str, Any]]:
        return list(self.run.period_rejects)


def _empty_decisions() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({c: [] for c in ("row", "client_id", "as_of", "policy_id", "policy_version",
                                         "policy_sha256", "grade")})


def table_summary(run: TableRun) -> dict[str, Any]:
    """``batch``'s summary of a table run; a run where no row had a version in force has accounting only."""
    if run.parts:
        return run.summary()
    return {"policy": {"id": run.policy_id, "version": "", "sha256": None}, "versions": [],
            "accounting": {"rows_read": run.rows_read, "decided": 0, "rejected": run.rejected,
                           **({"financials": {"rows_read": run.periods.rows_read, "joined": run.periods.joined,
                                              "rejected": len(run.periods.rejects)}} if run.periods else {})},
            "by_grade": {}, "by_warning": {}, "by_action": {}, "by_undetermined": {},
            "segment_by": None, "by_segment": {},  # no version in force: no segment input known
            "refused_action_params": {"total": 0, "by_action": {}},
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


def with_not_in_force(outcome: BatchRun, ref: PolicyRef, days: Any = None) -> None:
    """A batch under a pinned version counts the decisions dated outside its span (``not_in_force`` in the
    summary), as ``decide`` notes it for one client: such decisions must not pass for the policy then in
    force. A policy id chooses each row's version by its day, so it never has any. ``days``: the decisions'
    as-of column when they are not held in memory (a Dask run reads it back from its output)."""
    import pandas as pd

    pinned = ref.pinned
    if pinned is None:
        return
    if days is None:
        decisions = getattr(outcome.run, "decisions", None)
        if not isinstance(decisions, pd.DataFrame) or "as_of" not in decisions.columns:
            return
        days = decisions["as_of"]
    late = not_in_force(pinned, days)
    if late is not None:
        outcome.summary["not_in_force"] = late


def not_in_force(pinned: Any, days: Any) -> dict[str, Any] | None:
    """How many of ``days`` (decisions' as-of dates) fall outside the span of the ``pinned`` version, with the
    version and its span (``not_in_force`` of a batch summary; impact says it per side); None when none do."""
    import pandas as pd

    counts = pd.Series(days).astype(str).value_counts()
    n = int(sum(count for day, count in counts.items() if not pinned.applies_on(day)))
    if not n:
        return None
    return {"decided": n, "version": pinned.version, "id": pinned.id, "effective_from": pinned.effective_from,
            "effective_to": pinned.effective_to}
