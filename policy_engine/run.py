"""One run under every surface: the policy version per client, decide, record, write, account.

``decide``, ``decide --stream``, ``batch`` (local or Dask), ``impact``, ``simulate`` and the Python
API all come through here, so a client gets the same decision and the same audit record whichever
way it was sent:

* **Version per client.** A policy named by id is chosen per client from the day it is decided on:
  the ``as_of`` given to the run, else the client's own ``as_of``, else today. A client on a day no
  version is in force is rejected with that reason (``no-version-in-force``), never decided under
  another version. A pinned version or a policy file decides every client.
* **Every row accounted for.** ``rows read = decided + rejected``, whatever the input.
* **Every decision recorded** in the decision store when a store is given: one record per decided
  client; a rerun of the same batch records only the clients not yet recorded.

The surfaces add parsing and rendering; none has its own loop over clients, version choice or
store handling. Heavy modules (pandas, numpy) are imported by the table functions only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .diagnostics import Diagnostic, InputError, PolicyEngineError, UsageError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .decide.evaluate import Decider
    from .policy.compiler import CompiledPolicy
    from .policy.registry import Registry
    from .portfolio.batch import BatchResult, PeriodRows, Table
    from .record.audit import AuditStore

NO_VERSION = "no-version-in-force"


# ------------------------------------------------------------------ policies


class PolicyRef:
    """A policy as a caller names it, resolved per decision day.

    ``policy`` is an id (the version in force on each client's day), a policy file path, or a
    compiled policy; ``version`` pins a version of an id. The registry is read when the first
    client needs it, each version is compiled once, and each compiled policy gets one
    :class:`~policy_engine.evaluate.Decider`.
    """

    def __init__(self, policy: str | Path | CompiledPolicy, version: str | None = None,
                 registry: str | Path | Registry | None = None,
                 choose: Callable[[str | None], CompiledPolicy] | None = None):
        from .policy.compiler import CompiledPolicy

        self.name = policy.id if isinstance(policy, CompiledPolicy) else str(policy)
        self.version = version
        self._registry_arg = registry
        self._registry: Registry | None = None
        self._pinned: CompiledPolicy | None = None
        self._choose = choose
        self._by_day: dict[str | None, CompiledPolicy | UsageError] = {}
        self._deciders: dict[int, Decider] = {}
        if choose is not None:
            return
        if isinstance(policy, CompiledPolicy):
            if version is not None and version != policy.version:
                raise UsageError([Diagnostic("unknown-version", f"the policy given is version {policy.version}, "
                                                                f"not {version}")])
            self._pinned = policy
            return
        path = Path(policy)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if not path.is_file():
                raise UsageError([Diagnostic("file-missing", f"policy file not found: {policy}", file=str(policy))])
            if version is not None:
                raise UsageError([Diagnostic("bad-option", "--policy-version applies to a policy id, not a file")])
            from .policy.registry import load_policy

            self._pinned = load_policy(path)

    @property
    def pinned(self) -> CompiledPolicy | None:
        """The one policy every client is decided under, when the reference pins one (a file, a compiled
        policy, or an id with a version)."""
        if self._pinned is None and self._choose is None and self.version is not None:
            self._pinned = self.registry().select(self.name, version=self.version)
        return self._pinned

    def registry(self) -> Registry:
        from .policy.registry import Registry

        if self._registry is None:
            arg = self._registry_arg
            self._registry = arg if isinstance(arg, Registry) else Registry(arg)
        return self._registry

    def for_day(self, day: str | None) -> CompiledPolicy:
        """The policy a client decided on ``day`` (None: today) is decided under; raises
        :class:`UsageError` (``no-version-in-force``) when no version is in force that day."""
        pinned = self.pinned
        if pinned is not None:
            return pinned
        chosen = self._by_day.get(day)
        if chosen is None:
            try:
                chosen = self._choose(day) if self._choose is not None else \
                    self.registry().select(self.name, as_of=day)
            except UsageError as e:
                if not any(d.code == NO_VERSION for d in e.diagnostics):
                    raise  # an unknown id or a missing registry concerns every client: the run stops
                chosen = e
            self._by_day[day] = chosen
        if isinstance(chosen, UsageError):
            raise UsageError(list(chosen.diagnostics))
        return chosen

    def decider(self, policy: CompiledPolicy) -> Decider:
        from .decide.evaluate import Decider

        found = self._deciders.get(id(policy))
        if found is None:
            found = self._deciders[id(policy)] = Decider(policy)
        return found


def as_ref(policy: str | Path | CompiledPolicy | PolicyRef, version: str | None = None,
           registry: str | Path | Registry | None = None) -> PolicyRef:
    return policy if isinstance(policy, PolicyRef) else PolicyRef(policy, version, registry)


def check_day(as_of: str | None, option: str = "--as-of") -> None:
    """A decision date given to a run is a date YYYY-MM-DD (a usage error otherwise)."""
    from .decide.inputs import parse_date

    if as_of is not None and parse_date(as_of) is None:
        raise UsageError([Diagnostic("bad-date", f"{as_of!r} is not a date YYYY-MM-DD", path=option)])


def selection_day(record: Any, as_of: str | None) -> str | None:
    """The day a client's version is chosen for: the run's ``as_of``, else the client's valid ``as_of``
    (a bad one is the decision's own problem, reported as such), else None (today)."""
    from .decide.inputs import parse_date

    if as_of is not None:
        return as_of
    if isinstance(record, dict) and parse_date(record.get("as_of")) is not None:
        return str(record["as_of"])
    return None


# ------------------------------------------------------------------ one client


def open_store(path: str | Path | None) -> AuditStore:
    from .record.audit import AuditStore

    return AuditStore(path)


def decide_client(ref: PolicyRef, record: Any, *, as_of: str | None = None, trace: bool = False,
                  store: AuditStore | None = None, audit_inputs: str = "full",
                  file: str | None = None) -> tuple[CompiledPolicy, dict[str, Any]]:
    """(policy, decision record) for one client, recorded in ``store`` (when given) before it is returned.

    Raises :class:`InputError` (exit 3) for bad client data and :class:`UsageError` (exit 2) when no
    version is in force on the client's day.
    """
    check_day(as_of)
    policy = ref.for_day(selection_day(record, as_of))
    decision = ref.decider(policy).decide(record, as_of=as_of, trace=trace, file=file)
    if store is not None:  # recorded before it is answered: nothing answered is unrecorded
        store.append(policy, [(decision, record)], inputs=audit_inputs)
    return policy, decision


def decide_and_record(policy: str | Path | CompiledPolicy | PolicyRef, client: Any, *, version: str | None = None,
                      registry: str | Path | Registry | None = None, as_of: str | None = None,
                      trace: bool = False, audit_db: str | Path | bool | None = None,
                      audit_inputs: str = "full", file: str | None = None) -> dict[str, Any]:
    """Decide one client (a dict, as ``decide`` reads it) and record it, as ``policy-engine decide`` does.

    ``policy`` is an id (the version in force on the client's ``as_of``, or on ``as_of``), a file or
    a compiled policy; ``audit_db`` is the store path (None: ``$POLICY_ENGINE_AUDIT_DB`` or
    ``./audit.db``; False: do not record). ``file`` names the client data in problems.
    """
    ref = as_ref(policy, version, registry)
    if audit_db is False:
        return decide_client(ref, client, as_of=as_of, trace=trace, file=file)[1]
    with _store(audit_db) as store:
        return decide_client(ref, client, as_of=as_of, trace=trace, store=store, audit_inputs=audit_inputs,
                             file=file)[1]


def _store(audit_db: str | Path | bool | None) -> AuditStore:
    return open_store(None if audit_db is None or audit_db is True else Path(audit_db))


def read_client(source: str | Path, stdin: Any = None) -> tuple[Any, str]:
    """(client record, name) from a JSON file, or from ``stdin`` (bytes) when ``source`` is ``-``."""
    from .policy.loader import JSONInputError, parse_json_text

    name = "<stdin>" if str(source) == "-" else str(source)
    try:
        data = stdin.read() if str(source) == "-" else Path(source).read_bytes()
    except OSError as e:
        raise UsageError([Diagnostic("file-unreadable", f"cannot read client file: {e.strerror}", file=name)]) \
            from None
    if not data.strip():  # nothing at all: say so, rather than "invalid JSON at line 1 column 1"
        raise UsageError([Diagnostic("no-client-data", f"no client data in {name}", file=name,
                                     hint="give a client JSON file with -c FILE, or pipe one JSON object to -c -")])
    try:
        return parse_json_text(data), name
    except JSONInputError as e:
        raise InputError(e.diagnostics(file=name, hint="client data is one JSON object")) from None


def stream(ref: PolicyRef, lines: Iterable[bytes], *, as_of: str | None = None, trace: bool = False,
           audit_db: str | Path | bool | None = None, audit_inputs: str = "full") -> Iterator[bytes]:
    """One answer line per input line: a decision record, or ``{"line": N, "client_id": ..., "error": ...}``.

    A bad line never ends the stream; its answer names the client when its id could be read. Each
    decision is recorded (``audit_db`` as for :func:`decide_and_record`) before it is answered.
    """
    check_day(as_of)
    store = None if audit_db is False else _store(audit_db)
    try:
        yield from _answers(ref, lines, as_of, trace, store, audit_inputs)
    finally:
        if store is not None:
            store.close()


def _answers(ref: PolicyRef, lines: Iterable[bytes], as_of: str | None, trace: bool, store: AuditStore | None,
             audit_inputs: str) -> Iterator[bytes]:
    import orjson

    from .policy.loader import JSONInputError, parse_json_text

    for number, line in enumerate(lines, 1):
        record: Any = None
        try:
            try:
                if not line.strip():  # answered too: a caller waiting for one answer per line must get it
                    raise JSONInputError("empty line")
                record = parse_json_text(line)
            except JSONInputError as e:
                raise InputError(e.diagnostics()) from None
            decision = decide_client(ref, record, as_of=as_of, trace=trace, store=store,
                                     audit_inputs=audit_inputs)[1]
            answer = orjson.dumps(decision, option=orjson.OPT_APPEND_NEWLINE)
        except PolicyEngineError as e:
            error: dict[str, Any] = {"line": number}
            cid = record.get("client_id") if isinstance(record, dict) else None
            if isinstance(cid, str | int) and not isinstance(cid, bool):
                error["client_id"] = str(cid)
            error["error"] = {"exit_code": e.exit_code, "problems": [d.to_dict() for d in e.diagnostics]}
            answer = orjson.dumps(error, option=orjson.OPT_APPEND_NEWLINE)
        yield answer


# ------------------------------------------------------------------ tables


def row_days(frame: pd.DataFrame, as_of: str | None) -> np.ndarray:
    """Each row's selection day (ISO text, or None for today), as :func:`selection_day` gives a record's.

    Distinct ``as_of`` cells are few: each is read once.
    """
    import numpy as np
    import pandas as pd

    from .portfolio.frame import date_of

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

        from .decide.evaluate import Decider
        from .portfolio.batch import iter_records

        streams = []
        for p in self.parts:
            rows = p.decisions["row"].to_numpy().tolist()
            streams.append(zip(rows, iter_records(p, Decider(p.policy)), strict=True))
        for _, record in heapq.merge(*streams, key=lambda pair: pair[0]):
            yield record

    def summary(self) -> dict[str, Any]:
        """Accounting and counts (``batch.summary``'s form); ``versions`` says how many rows each version decided."""
        from .portfolio.batch import BatchResult, summary

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

    from .portfolio.batch import Table, run_batch
    from .portfolio.frame import Problem, duplicate_ids

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
        try:
            chosen[day] = ref.for_day(day)
        except UsageError as e:
            chosen[day] = e
    if len(distinct) == 1 and not isinstance(chosen[distinct[0]], UsageError):
        only = chosen[distinct[0]]
        assert not isinstance(only, UsageError)
        result = run_batch(only, table, as_of, progress=progress, workers=workers, duplicates=duplicates,
                           row_offset=row_offset)
        return TableRun([result], [], table.rows_read, table.periods)
    positions = table.positions if table.positions is not None else np.arange(len(frame), dtype=np.int64)
    # Over the whole table: a duplicate may be decided under another version than its first occurrence.
    dups = duplicate_ids(frame) if duplicates is None else duplicates
    groups: dict[int, tuple[CompiledPolicy, list[int]]] = {}
    unversioned: list[dict[str, Any]] = []
    ids = _id_texts(frame)
    for i, day in enumerate(days.tolist()):
        c = chosen[day]
        if isinstance(c, UsageError):
            d = c.diagnostics[0]
            unversioned.append({"row": int(positions[i]) + 1 + row_offset, "client_id": ids[i], "problems": [
                {"field": "as_of", "code": d.code, "message": d.message, **({"hint": d.hint} if d.hint else {})}]})
        else:
            groups.setdefault(id(c), (c, []))[1].append(i)
    parts = []
    first = True
    for policy, rows in sorted(groups.values(), key=lambda g: g[1][0]):
        idx = np.asarray(rows, dtype=np.int64)
        where = {int(r): k for k, r in enumerate(rows)}
        local = [Problem(where[p.row], p.path, p.message, p.code) for p in dups if p.row in where]
        # Rows that could not be parsed at all belong to no version: the first part reports them.
        sub = Table(frame.iloc[idx], table.text, problems=table.problems if first else [], positions=positions[idx],
                    rows_read=len(idx) + (len(table.problems) if first else 0), periods=None)
        parts.append(run_batch(policy, sub, as_of, progress=progress, workers=workers, duplicates=local,
                               row_offset=row_offset))
        first = False
    if not parts:  # no row of the table has a version in force: the table's own problems still count
        unversioned = sorted(unversioned + _unparsed(table, row_offset), key=lambda r: r["row"])
        return TableRun([], unversioned, table.rows_read, table.periods, ref.name)
    run = TableRun(parts, unversioned, table.rows_read, table.periods)
    if run.decided + run.rejected != run.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {run.rows_read} read, {run.decided} decided, {run.rejected} rejected")
    return run


def _id_texts(frame: pd.DataFrame) -> list[str | None]:
    from .portfolio.frame import client_id_text

    if "client_id" not in frame.columns:
        return [None] * len(frame)
    return [None if v is None or v == "" else str(v)
            for v in client_id_text(frame["client_id"]).to_numpy(dtype=object, na_value=None).tolist()]


def _unparsed(table: Table, row_offset: int) -> list[dict[str, Any]]:
    by_row: dict[int, list[Any]] = {}
    for p in table.problems:
        by_row.setdefault(p.row, []).append(p)
    return [{"row": row + 1 + row_offset, "client_id": None,
             "problems": [{"field": p.path, "code": p.code, "message": p.message} for p in ps]}
            for row, ps in sorted(by_row.items())]


# ------------------------------------------------------------------ batches


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
                 audit_inputs: str = "full") -> tuple[int, int]:
    """Record every decided client of ``run`` (one segment series per version, its own batch key);
    returns (recorded now, already recorded by an earlier run of the same batch)."""
    from .portfolio.batch import audit_segments, prefetched

    written = skipped = 0
    for part in run.parts:
        key = keys(part.policy) if callable(keys) else keys[part.policy.sha256]
        skip = store.recorded_clients(key)
        skipped += len(skip)
        written += store.append_segments(part.policy, prefetched(audit_segments(part, audit_inputs, skip)), key)
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


def run_batch(policy: str | Path | CompiledPolicy | PolicyRef, input_file: str | Path, *,
              version: str | None = None, registry: str | Path | Registry | None = None,
              as_of: str | None = None, financials: str | Path | None = None, encoding: str = "utf-8",
              out: str | Path | None = None, rejects: str | Path | None = None, records: str | Path | None = None,
              audit_db: str | Path | bool | None = None, audit_inputs: str = "full", workers: int = 2,
              progress: Callable[[int, int], None] | None = None) -> BatchRun:
    """Decide a portfolio file as ``policy-engine batch`` does: each row under the version in force on its
    day, outputs written (``out``, ``rejects``, ``records``), every decision recorded in the store
    (``audit_db``: a path; None: ``$POLICY_ENGINE_AUDIT_DB`` or ``./audit.db``; False: not recorded).
    """
    from concurrent.futures import ThreadPoolExecutor

    from .decide.inputs import misspelt_fields
    from .portfolio.batch import write_decisions, write_rejects

    ref = as_ref(policy, version, registry)
    check_day(as_of)
    input_path, fin_path = Path(input_file), Path(financials) if financials is not None else None
    if input_path.is_dir():
        raise UsageError([Diagnostic("bad-option", f"{input_path} is a directory; give a file, or use "
                                                   "--engine dask for a dataset", file=str(input_path))])
    out_path = Path(out) if out is not None else None
    if out_path is not None and out_path.is_dir():
        raise UsageError([Diagnostic("bad-option", f"--out {out_path} is a directory; give a file name "
                                                   "(.parquet, .csv or .jsonl)", file=str(out_path))])
    audit = audit_db is not False
    # Work that releases the GIL runs beside the rest: hashing the input files (the batch key) beside
    # reading and deciding, writing the output files beside recording.
    background = ThreadPoolExecutor(1, thread_name_prefix="batch")
    try:
        keys: dict[str, Any] = {}

        def key_of(p: CompiledPolicy) -> Any:
            if p.sha256 not in keys:
                keys[p.sha256] = background.submit(batch_key, p, (input_path, fin_path), as_of, encoding)
            return keys[p.sha256]

        if audit:  # the likely version, hashed while the table is read (one key per version used)
            with contextlib.suppress(UsageError):
                key_of(ref.for_day(as_of))
        table = read_portfolio(input_path, fin_path, encoding)
        run = decide_table(ref, table, as_of, workers=workers, progress=progress)
        columns = [str(c) for c in table.frame.columns]
        misspelt = [(p.id, given, meant) for p in {id(p): p for p in run.policies}.values()
                    for given, meant in misspelt_fields(p, columns)]
        written_out = background.submit(write_decisions, run.decisions, out_path) \
            if out_path is not None and run.parts else None
        if rejects is not None:
            write_rejects(run.rejects + run.period_rejects, Path(rejects))
        if records is not None:
            from .decide.evaluate import dumps

            with Path(records).open("w", encoding="utf-8") as fh:
                for decision in run.records():
                    fh.write(dumps(decision) + "\n")
        outcome = BatchRun(run, table_summary(run), misspelt=misspelt)
        if audit and run.parts:
            with _store(audit_db) as store:
                outcome.recorded, outcome.already_recorded = record_table(
                    run, store, lambda p: key_of(p).result(), audit_inputs)
        if out_path is not None and not run.parts:
            write_decisions(_empty_decisions(), out_path)
        if written_out is not None:
            written_out.result()  # raises what writing raised
    finally:
        background.shutdown(wait=True)
    return outcome


def read_portfolio(path: str | Path, financials: str | Path | None = None, encoding: str = "utf-8") -> Table:
    """A portfolio table (``batch.read_table``); an empty file is named as such (exit 3), not as a bad table."""
    from .portfolio.batch import read_table

    for p in (path, financials):
        if p is not None and Path(p).is_file() and Path(p).stat().st_size == 0:
            raise InputError([Diagnostic("empty-table", "the file is empty: a table needs at least its header row",
                                         file=str(p), hint="the first line names the columns: client_id, as_of, ...")])
    return read_table(Path(path), Path(financials) if financials is not None else None, encoding)


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
            "by_grade": {}, "by_warning": {}, "by_action": {}, "by_industry": {},
            "refused_action_params": {"total": 0, "by_action": {}},
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


__all__ = ["BatchRun", "PolicyRef", "TableRun", "batch_key", "check_day", "decide_and_record", "decide_client",
           "decide_table", "read_client", "read_portfolio", "record_table", "row_days", "run_batch", "selection_day",
           "stream"]
