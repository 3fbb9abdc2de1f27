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
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .decide.ref import PolicyRef, as_ref, check_day, selection_day, unreadable_day
from .diagnostics import Diagnostic, InputError, PolicyEngineError, UsageError
from .portfolio.tables import (
    BatchRun,
    TableRun,
    _empty_decisions,
    batch_key,
    decide_table,
    record_table,
    row_days,
    table_summary,
    with_not_in_force,
)
from .whole_files import text_written_whole

if TYPE_CHECKING:

    from .policy.compiler import CompiledPolicy
    from .policy.registry import Registry
    from .portfolio.batch import Table
    from .record.audit import AuditStore

# ------------------------------------------------------------------ policies


# ------------------------------------------------------------------ one client


def decide_client(ref: PolicyRef, record: Any, *, as_of: str | None = None, trace: bool = False,
                  store: AuditStore | None = None, audit_inputs: str = "full",
                  file: str | None = None) -> tuple[CompiledPolicy, dict[str, Any]]:
    """(policy, decision record) for one client, recorded in ``store`` (when given) before it is returned.

    Raises :class:`InputError` (exit 3) for bad client data and :class:`UsageError` (exit 2) when no
    version is in force on the client's day.
    """
    check_day(as_of)
    if ref.pinned is None and (bad_day := unreadable_day(record, as_of, file)) is not None:
        raise InputError([bad_day])
    policy = ref.for_day(selection_day(record, as_of))
    if store is None:
        return policy, ref.decider(policy).decide(record, as_of=as_of, trace=trace, file=file)
    # recorded before it is answered (nothing answered is unrecorded), its input as the hash was taken of it
    decision, written = ref.decider(policy).decide_with_input(record, as_of=as_of, trace=trace, file=file)
    store.append(policy, [(decision, record, written)], inputs=audit_inputs)
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
    from .record.audit import open_store

    return open_store(None if audit_db is None or audit_db is True else Path(audit_db))


def read_client(source: str | Path, stdin: Any = None) -> tuple[Any, str]:
    """(client record, name) from a JSON file, or from ``stdin`` (bytes) when ``source`` is ``-``."""
    from .policy.loader import JSONInputError, parse_json_text, read_bounded

    name = "<stdin>" if str(source) == "-" else str(source)
    try:
        if str(source) == "-":
            data = read_bounded(stdin)
        else:
            with Path(source).open("rb") as fh:
                data = read_bounded(fh)
    except JSONInputError as e:
        raise InputError(e.diagnostics(file=name, hint="client data is one JSON object")) from None
    except FileNotFoundError:
        raise UsageError([Diagnostic("file-missing", f"no such file: {name}", file=name)]) from None
    except OSError as e:
        raise UsageError([Diagnostic("file-unreadable", f"cannot read client file: {e.strerror}", file=name)]) \
            from None
    if not data.strip():  # nothing at all: say so, rather than "invalid JSON at line 1 column 1"
        raise UsageError([Diagnostic("no-client-data", f"no client data in {name}", file=name,
                                     hint="give a client JSON file with -c FILE, or pipe one JSON object to -c -")])
    try:
        return parse_json_text(data), name
    except JSONInputError as e:
        import contextlib

        from .policy.kinds import refuse_as_client

        with contextlib.suppress(UnicodeDecodeError):  # a policy given as -c (-p, -c swapped): said as what it is
            refuse_as_client(data.decode("utf-8-sig"), name)
        raise InputError(e.diagnostics(file=name, hint="client data is one JSON object")) from None


def stream(ref: PolicyRef, lines: Iterable[bytes], *, as_of: str | None = None, trace: bool = False,
           audit_db: str | Path | bool | None = None, audit_inputs: str = "full",
           warn: Callable[[int, str], None] | None = None,
           notes: Callable[[int, str, str], None] | None = None) -> Iterator[bytes]:
    """One answer line per input line: a decision record, or ``{"line": N, "client_id": ..., "error": ...}``.

    A bad line never ends the stream; its answer names the client when its id could be read. Each
    decision is recorded (``audit_db`` as for :func:`decide_and_record`) before it is answered.
    ``warn(line number, text)`` hears what ``decide`` prints as a warning beside its JSON (a debtor
    without exposures, a version not in force on the day): the answer lines keep their contract;
    ``notes(line number, code, text)`` hears the same with each warning's code (``misspelt-field``, ...).
    """
    check_day(as_of)
    store = None if audit_db is False else _store(audit_db)
    try:
        yield from _answers(ref, lines, as_of, trace, store, audit_inputs, _heard(warn, notes))
    finally:
        if store is not None:
            store.close()


def _heard(warn: Callable[[int, str], None] | None,
           notes: Callable[[int, str, str], None] | None) -> Callable[[int, str, str], None] | None:
    """One callback for both ways of hearing a stream's warnings: with their codes, or the text alone."""
    if warn is None or notes is None:
        return notes if warn is None else (lambda n, code, text: warn(n, text))

    def both(n: int, code: str, text: str) -> None:
        warn(n, text)
        notes(n, code, text)

    return both


def _answers(ref: PolicyRef, lines: Iterable[bytes], as_of: str | None, trace: bool, store: AuditStore | None,
             audit_inputs: str, warn: Callable[[int, str, str], None] | None) -> Iterator[bytes]:
    import orjson

    from .decide.explain import decision_notes
    from .decide.inputs import MISSPELT_SAMPLE, misspelt_fields, misspelt_message, record_fields
    from .policy.loader import JSONInputError, parse_json_text

    for number, line in enumerate(lines, 1):
        record: Any = None
        try:
            try:
                if not line.strip():  # answered too: a caller waiting for one answer per line must get it
                    raise JSONInputError("empty line")
                record = parse_json_text(line)
            except JSONInputError as e:
                if e.at is not None:  # the stream's line, not line 1 of the one-line text
                    e.at = (number, e.at[1])
                raise InputError(e.diagnostics()) from None
            policy, decision = decide_client(ref, record, as_of=as_of, trace=trace, store=store,
                                             audit_inputs=audit_inputs)
            answer = orjson.dumps(decision, option=orjson.OPT_APPEND_NEWLINE)
            if warn is not None:  # what decide prints beside its JSON: a field near one the policy reads, unread
                if number <= MISSPELT_SAMPLE:  # (as batch looks: the check costs more than the decision)
                    for given, meant in misspelt_fields(policy, record_fields(record)):
                        warn(number, "misspelt-field", misspelt_message(policy, given, meant))
                for code, note in decision_notes(decision, policy, record):
                    warn(number, code, note)
        except PolicyEngineError as e:
            answer = _error_answer(number, record, e, line)
        except Exception as e:  # the store refused this line's record (locked past its wait, a full disk)
            failed = _store_failure(e) if store is not None else None
            if failed is None:
                raise
            answer = _error_answer(number, record, failed)  # no record, no decision: the next line may record
        yield answer


def _error_answer(number: int, record: Any, e: PolicyEngineError, line: bytes = b"") -> bytes:
    """A stream line's error answer: its line, its client when its id could be read (off the ``line`` itself when
    it was no JSON), the exit code and problems."""
    import orjson

    from .policy.loader import readable_client_id

    error: dict[str, Any] = {"line": number}
    cid = record.get("client_id") if isinstance(record, dict) else readable_client_id(line) if record is None else None
    if isinstance(cid, str | int) and not isinstance(cid, bool):
        error["client_id"] = str(cid)
    error["error"] = {"exit_code": e.exit_code, "problems": [d.to_dict() for d in e.diagnostics]}
    return orjson.dumps(error, option=orjson.OPT_APPEND_NEWLINE)


def _store_failure(e: Exception) -> PolicyEngineError | None:
    """A failure of the decision store as the error of one stream line (exit 6), or None for anything else: a
    write refused (the store locked by another program past the wait, a full disk, a trigger) leaves the chain as
    it was (the write lock is taken first, and a failed write rolls back), so the stream goes on; a misuse of the
    connection is a bug and ends it."""
    import sqlite3

    from .record.audit import AuditError

    if not isinstance(e, sqlite3.DatabaseError) or isinstance(
            e, sqlite3.ProgrammingError | sqlite3.InternalError | sqlite3.NotSupportedError):
        return None
    return AuditError([Diagnostic("store-failed", f"the decision store did not record this line: {type(e).__name__}: "
                                  f"{e}", hint="nothing was decided for it; send it again once the store takes writes "
                                  "(another program holding it, a full disk): `audit verify` checks the chain")])


# ------------------------------------------------------------------ tables


# ------------------------------------------------------------------ batches


def _path(given: str | Path | None) -> Path | None:
    return Path(given) if given is not None else None


def run_batch(policy: str | Path | CompiledPolicy | PolicyRef, input_file: str | Path, *,
              version: str | None = None, registry: str | Path | Registry | None = None,
              as_of: str | None = None, financials: str | Path | None = None, encoding: str = "utf-8",
              out: str | Path | None = None, rejects: str | Path | None = None, records: str | Path | None = None,
              audit_db: str | Path | bool | None = None, audit_inputs: str = "full", workers: int = 2,
              progress: Callable[[int, int], None] | None = None, exposures: str | Path | None = None) -> BatchRun:
    """Decide a portfolio file as ``policy-engine batch`` does: each row under the version in force on its
    day, outputs written (``out``, ``rejects``, ``records``; for debtors with scopes ``exposures``, one
    row per exposure), every decision recorded in the store (``audit_db``: a path; None:
    ``$POLICY_ENGINE_AUDIT_DB`` or ``./audit.db``; False: not recorded).

    A JSON Lines file under a policy with scopes (pinned, or some active version of the id) is read
    as debtor records (:func:`~policy_engine.portfolio.scoped_batch.decide_debtor_file`); a folder as
    long tables under one version with scopes (:func:`_run_folder`); any other input as a client
    table.
    """
    ref = as_ref(policy, version, registry)
    check_day(as_of)
    from .portfolio.batch import check_outputs

    input_path, fin_path = Path(input_file), Path(financials) if financials is not None else None
    out_path = Path(out) if out is not None else None
    check_outputs(input_path, fin_path, {"--out": out_path, "--rejects": _path(rejects), "--records": _path(records),
                                         "--exposures-out": _path(exposures)})
    for option, given in (("--out", out_path), ("--exposures-out", exposures)):
        if given is not None and Path(given).is_dir():
            raise UsageError([Diagnostic("bad-option", f"{option} {given} is a directory; give a file name "
                                                       "(.parquet, .csv or .jsonl)", file=str(given))])
    if input_path.is_dir():
        outcome = _run_folder(ref, input_path, as_of, fin_path, encoding, out_path, rejects, records, exposures,
                              audit_db, audit_inputs, workers)
    elif _debtor_input(ref, input_path, fin_path):
        outcome = _run_debtors(ref, input_path, as_of, out_path, rejects, records, exposures, audit_db, audit_inputs,
                               workers, progress)
    else:
        if exposures is not None and ref.pinned is not None:
            raise UsageError([Diagnostic("bad-option", f"--exposures-out: policy {ref.pinned.key} has no exposures "
                                                       "(it declares no scopes)", path="--exposures-out")])
        outcome = _run_table(ref, input_path, fin_path, as_of, encoding, out_path, rejects, records, exposures,
                             audit_db, audit_inputs, workers, progress)
    with_not_in_force(outcome, ref)
    return outcome


def _run_folder(ref: PolicyRef, folder: Path, as_of: str | None, fin_path: Path | None, encoding: str,
                out_path: Path | None,
                rejects: str | Path | None, records: str | Path | None, exposures: str | Path | None,
                audit_db: str | Path | bool | None, audit_inputs: str, workers: int) -> BatchRun:
    """``batch`` over a folder of long tables (debtors, exposures, payments, ...) under one version with scopes.

    Decided column-wise from the tables; recorded (the store, ``--records``) as ``decide`` records
    each debtor, from the nested record the tables hold for it (:func:`_record_folder`).
    """
    from .portfolio.batch import write_rejects, write_tables
    from .portfolio.folder_version import version_screen
    from .portfolio.long_tables import (
        absent_columns,
        misspelt_columns,
        run_long_batch,
        with_absent_columns,
        with_data_gaps,
    )

    if fin_path is not None:
        raise UsageError([Diagnostic("bad-option", "--financials: a folder of long tables holds the debtors' "
                                                   "statements as its own table (statements.parquet or .csv)",
                                     path="--financials")])
    policy = _folder_policy(ref, folder, as_of, encoding)
    result = run_long_batch(policy, folder, as_of, workers=workers, screen=version_screen(ref, policy, as_of),
                            encoding=encoding)
    write_tables([*([] if out_path is None else [(result.decisions, out_path)]),
                  *([] if exposures is None else [(result.exposures, Path(exposures))])])
    if rejects is not None:
        write_rejects(result.reject_lines(), Path(rejects))
    outcome = BatchRun(_FolderRun(result), result.batch_summary(),
                       misspelt=[(policy.id, given, meant) for given, meant in misspelt_columns(policy, folder)])
    with_absent_columns(outcome.summary, absent_columns(policy, folder))
    with_data_gaps(outcome.summary, policy)
    if result.decided and (records is not None or audit_db is not False):
        outcome.recorded, outcome.already_recorded = _record_folder(policy, folder, result, as_of, encoding, records,
                                                                    audit_db, audit_inputs)
    elif records is not None:
        Path(records).write_text("", encoding="utf-8")
    return outcome


def _record_folder(policy: CompiledPolicy, folder: Path, result: Any, as_of: str | None, encoding: str,
                   records: str | Path | None,
                   audit_db: str | Path | bool | None, audit_inputs: str) -> tuple[int, int]:
    """Record a folder's decided debtors as ``decide`` records them (:mod:`.portfolio.long_records`): each
    debtor's nested record rebuilt from the tables and decided by ``decide``'s decider (the store,
    ``--records``), under the batch key of the rebuilt lines, so the same tables are the same batch.

    Returns (recorded now, already recorded by an earlier run of the same folder).
    """
    import tempfile

    from .portfolio.long_records import decided_lines, write_lines
    from .portfolio.tables import batch_key
    from .record.segments import decision_groups

    with tempfile.TemporaryDirectory(prefix="policy-engine-") as tmp, contextlib.ExitStack() as stack:
        lines = Path(tmp) / f"{folder.name or 'tables'}.jsonl"
        write_lines(policy, folder, result.decisions, lines, encoding)
        store = stack.enter_context(_store(audit_db)) if audit_db is not False else None
        fh = stack.enter_context(text_written_whole(Path(records))) if records is not None else None
        key = batch_key(policy, (lines,), as_of) if store is not None else ""
        stored = _stored_ids(store, key, fh is not None)
        skip = set(stored) if stored is not None else store.recorded_clients(key) if store is not None else set()
        if fh is None and skip.issuperset(result.decisions["client_id"].astype(str)):
            return 0, len(skip)  # a rerun of a batch recorded whole: nothing to decide again
        pairs = decided_lines(policy, lines, result.decisions, as_of)
        write = None if fh is None else _restamped(stored, lambda d: fh.write(_line(d)))
        if store is None:
            assert write is not None  # recording was asked for: a store, --records, or both
            for decision, _ in pairs:
                write(decision)
            return 0, 0
        groups = decision_groups(((d, r, d["client_id"] not in skip) for d, r in pairs), write)
        return store.append_decisions(policy, groups, inputs=audit_inputs, batch_key=key), len(skip)


class _FolderRun:
    """A folder's run as ``batch`` reports it: its rejects are the rejected debtors and the orphaned rows."""

    def __init__(self, result: Any) -> None:
        self.result = result
        self.decisions = result.decisions
        self.exposures = result.exposures
        self.rejects = result.reject_lines()
        self.orphans = result.orphans
        self.period_rejects: list[dict[str, Any]] = []


def _folder_policy(ref: PolicyRef, folder: Path, as_of: str | None, encoding: str = "utf-8") -> CompiledPolicy:
    """The version a folder is decided under (:func:`.portfolio.folder_version.folder_policy`): its debtors'
    days are read only when several versions with scopes compete for them."""
    from .portfolio.folder_version import folder_policy

    return folder_policy(ref, _folder_days(folder, encoding), as_of, str(folder),
                         hint="pin a version with scopes (--policy-version); for this version give a client table "
                              "(batch FILE), or a folder of its partitions with --engine dask")


def _folder_days(folder: Path, encoding: str = "utf-8") -> Iterator[str | None]:
    """Each debtor's day in the folder's debtors table (none when the table is missing or ambiguous: reading
    the folder then names what is wrong with it)."""
    from .portfolio.folder_version import day_texts
    from .portfolio.long_tables import DEBTORS, FORMATS, read_frame

    found = [folder / f"{DEBTORS}{ext}" for ext in FORMATS if (folder / f"{DEBTORS}{ext}").is_file()]
    if len(found) == 1:
        yield from day_texts(read_frame(found[0], ("as_of",), encoding=encoding)[0].get("as_of"))


def _debtor_input(ref: PolicyRef, input_path: Path, fin_path: Path | None) -> bool:
    """Whether the input is read as debtor records (JSON Lines under a policy with scopes); a table
    given for a pinned policy with scopes, or periods beside debtors, is a usage error."""
    from .portfolio.batch import READ_FORMATS, refuse_scoped, unknown_format
    from .portfolio.scoped_batch import scoped_versions

    if input_path.suffix.lower() not in READ_FORMATS and not input_path.is_dir():
        raise unknown_format(input_path)  # the input named, not the policy's scopes (a .json is no table row)
    if READ_FORMATS.get(input_path.suffix.lower()) != "jsonl":
        # Before reading the table: the answer does not depend on it. With an id, each row's version
        # decides (a row under a version with scopes is a reject).
        refuse_scoped(ref.pinned, f"a {input_path.suffix or 'table'} row")
        return False
    scoped = scoped_versions(ref)  # JSON Lines under an id: compiled once each, as a run would
    if not scoped:
        return False
    if fin_path is not None:
        raise UsageError([Diagnostic("bad-option", f"--financials: policy {scoped[0].key} reads each debtor's "
                                                   "statements from its own record", path="--financials",
                                     hint="give the statements inside each debtor's line")])
    return True


def _run_debtors(ref: PolicyRef, input_path: Path, as_of: str | None, out_path: Path | None,
                 rejects: str | Path | None, records: str | Path | None, exposures: str | Path | None,
                 audit_db: str | Path | bool | None, audit_inputs: str, workers: int,
                 progress: Callable[[int, int], None] | None) -> BatchRun:
    """``batch`` over a JSON Lines file of debtor records: decide, write, record (as decide records each)."""
    from .portfolio.batch import write_rejects, write_tables
    from .portfolio.long_tables import with_data_gaps
    from .portfolio.scoped_batch import decide_debtor_file, misspelt_in_lines

    if not input_path.exists():
        raise UsageError([Diagnostic("file-missing", f"no such file: {input_path}", file=str(input_path))])
    refuse_empty(input_path, "debtor", lines=True)
    with contextlib.ExitStack() as stack:
        store = stack.enter_context(_store(audit_db)) if audit_db is not False else None
        fh = stack.enter_context(text_written_whole(Path(records))) if records is not None else None
        recorder = _Recorder(store, fh, input_path, as_of, audit_inputs)
        run = decide_debtor_file(ref, input_path, as_of, workers=workers, progress=progress,
                                 sink_for=recorder.sink_for)
        write_tables([*([] if out_path is None else [(run.decisions, out_path)]),
                      *([] if exposures is None else [(run.exposures, Path(exposures))])])
        if rejects is not None:
            write_rejects(run.rejects, Path(rejects))
        if not run.streamed:  # several versions: recorded, then their records merged into input order
            ids: dict[str, tuple[str, str]] = {}
            if store is not None and run.decided:
                recorder.recorded, recorder.skipped = record_debtors(run, store, input_path, as_of, audit_inputs,
                                                                     ids if fh is not None else None)
            if fh is not None:
                _write_records(fh, run.records(), ids)
    outcome = BatchRun(run, run.summary(), misspelt=misspelt_in_lines(ref, [input_path], as_of))
    for policy in run.policies[:1]:  # names the graded scope's table for the warning, as for a folder
        with_data_gaps(outcome.summary, policy)
    outcome.recorded, outcome.already_recorded = recorder.recorded, recorder.skipped
    return outcome


class _Recorder:
    """Writes the records of a streamed debtor run (``--records``, the store) chunk by chunk, as decided."""

    def __init__(self, store: AuditStore | None, fh: Any, input_path: Path, as_of: str | None,
                 audit_inputs: str) -> None:
        self.store, self.fh, self.input_path, self.as_of, self.audit_inputs = store, fh, input_path, as_of, audit_inputs
        self.recorded = self.skipped = 0

    def sink_for(self, policy: CompiledPolicy) -> Callable[[Any], None]:
        from .record.segments import decision_groups

        key = batch_key(policy, (self.input_path,), self.as_of) if self.store is not None else ""
        stored = _stored_ids(self.store, key, self.fh is not None)
        skip = set(stored) if stored is not None else self.store.recorded_clients(key) if self.store is not None \
            else set()
        self.skipped += len(skip)

        def sink(chunk: Any) -> None:
            if self.fh is None and (self.store is None or all(d.client_id in skip for d in chunk.debtors)):
                return  # nothing asks for this chunk's records (or a rerun recorded them all): dropped
            if self.store is None:
                for decision in chunk.records():  # one record held at a time
                    self.fh.write(_line(decision))
                return
            fh = self.fh
            pairs = ((d, r, d["client_id"] not in skip)
                     for d, r in zip(chunk.records(), chunk.stored_inputs(), strict=True))
            groups = decision_groups(pairs, None if fh is None else _restamped(stored, lambda d: fh.write(_line(d))))
            self.recorded += self.store.append_decisions(policy, groups, inputs=self.audit_inputs, batch_key=key)

        return sink


def record_debtors(run: Any, store: AuditStore, input_path: Path, as_of: str | None, audit_inputs: str = "full",
                   ids: dict[str, tuple[str, str]] | None = None) -> tuple[int, int]:
    """Record every decided line of a debtor run as ``decide`` records it (the full record and the line's
    record), under the batch key of its version; returns (recorded now, already recorded by an earlier
    run of the same batch). ``ids`` gets the decision id and time each client is stored under."""
    from .record.segments import decision_groups

    def note(d: dict[str, Any]) -> None:  # every decision, stored now or skipped (stored before: ids has it)
        if ids is not None:
            ids.setdefault(d["client_id"], (d["decision_id"], d["evaluated_at"]))

    written = skipped = 0
    for part in run.scoped:
        key = batch_key(part.policy, (input_path,), as_of)
        stored = _stored_ids(store, key, ids is not None)
        skip = store.recorded_clients(key) if stored is None else set(stored)
        if stored is not None and ids is not None:
            ids.update(stored)  # a client an earlier run recorded: its line carries the stored id
        skipped += len(skip)
        pairs = ((d, r, d["client_id"] not in skip) for d, r in zip(part.records(), part.inputs(), strict=True))
        written += store.append_decisions(part.policy, decision_groups(pairs, note), inputs=audit_inputs,
                                          batch_key=key)
    if run.table is not None and run.table.parts:
        w, s = record_table(run.table, store, lambda p: batch_key(p, (input_path,), as_of), audit_inputs, ids)
        written, skipped = written + w, skipped + s
    return written, skipped


def _stored_ids(store: AuditStore | None, key: str, wanted: bool) -> dict[str, tuple[str, str]] | None:
    """The id and time of each client an earlier run of the batch recorded, when ``--records`` will name them."""
    return store.recorded_ids(key) if store is not None and wanted else None


def _restamped(stored: Mapping[str, tuple[str, str]] | None, write: Callable[[dict[str, Any]], Any]
               ) -> Callable[[dict[str, Any]], None]:
    """``write`` of a ``--records`` line; a client an earlier run recorded (a rerun skips it) under the stored
    id and time, so ``audit show`` of the line's id is that line's record."""
    def restamp(d: dict[str, Any]) -> None:
        found = stored.get(d["client_id"]) if stored else None
        if found is not None:
            d["decision_id"], d["evaluated_at"] = found
        write(d)

    return restamp


def _line(decision: Mapping[str, Any]) -> str:
    """A record's line of a JSON Lines file, U+2028 and U+2029 escaped as the stream's answers are."""
    from .decide.evaluate import dumps
    from .safetext import json_text

    return json_text(dumps(decision)) + "\n"


def _write_records(target: Path | Any, decisions: Iterable[dict[str, Any]], ids: Mapping[str, tuple[str, str]]) -> None:
    """``--records``: each full decision record, under the id and time the store keeps it by (``ids``: a
    client recorded now), so that ``audit show`` finds a record by the id the file gives it."""

    with contextlib.ExitStack() as stack:
        fh = stack.enter_context(text_written_whole(target)) if isinstance(target, Path) else target
        for decision in decisions:
            stored = ids.get(decision["client_id"])
            if stored is not None:
                decision["decision_id"], decision["evaluated_at"] = stored
            fh.write(_line(decision))


def _run_table(ref: PolicyRef, input_path: Path, fin_path: Path | None, as_of: str | None, encoding: str,
               out_path: Path | None, rejects: str | Path | None, records: str | Path | None,
               exposures: str | Path | None, audit_db: str | Path | bool | None, audit_inputs: str, workers: int,
               progress: Callable[[int, int], None] | None) -> BatchRun:
    """``batch`` over a client table (CSV, JSON Lines, Parquet, Excel): one row per client."""
    from concurrent.futures import ThreadPoolExecutor

    from .decide.inputs import misspelt_fields
    from .portfolio.batch import write_decisions, write_rejects

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
        try:
            run = decide_table(ref, table, as_of, workers=workers, progress=progress)
        except UsageError as e:  # a refusal of the whole table (no as_of column under 2.x) names the file
            raise UsageError([d if d.file else Diagnostic(**{**d.as_dict(), "file": str(input_path)})
                               for d in e.diagnostics]) from None
        columns = [str(c) for c in table.frame.columns]
        misspelt = [(p.id, given, meant) for p in {id(p): p for p in run.policies}.values()
                    for given, meant in misspelt_fields(p, columns)]
        written_out = background.submit(write_decisions, run.decisions, out_path) \
            if out_path is not None and run.parts else None
        if rejects is not None:
            write_rejects(run.rejects + run.period_rejects, Path(rejects))
        outcome = BatchRun(run, table_summary(run), misspelt=misspelt)
        ids: dict[str, tuple[str, str]] = {}
        if audit and run.parts:
            with _store(audit_db) as store:
                outcome.recorded, outcome.already_recorded = record_table(
                    run, store, lambda p: key_of(p).result(), audit_inputs, ids if records is not None else None)
        if records is not None:
            _write_records(Path(records), run.records(), ids)
        if out_path is not None and not run.parts:
            write_decisions(_empty_decisions(), out_path)
        if exposures is not None:  # an id whose rows all fell under versions without scopes: none
            from .portfolio.scoped_batch import DebtorRun

            write_decisions(DebtorRun([], None, [], 0, ref.name).exposures, Path(exposures))
        if written_out is not None:
            written_out.result()  # raises what writing raised
    finally:
        background.shutdown(wait=True)
    return outcome


def refuse_empty(path: Path, records: str = "client", lines: bool | None = None) -> None:
    """An empty portfolio file is named as such (exit 3), in its format's words: JSON Lines (``lines``, else by
    its suffix) has no header row."""
    if not path.is_file() or path.stat().st_size:
        return
    if lines or (lines is None and path.suffix.lower() in (".jsonl", ".ndjson")):
        raise InputError([Diagnostic("empty-table", f"the file is empty: give one {records} record a line",
                                     file=str(path))])
    raise InputError([Diagnostic("empty-table", "the file is empty: a table needs at least its header row",
                                 file=str(path), hint="the first line names the columns: client_id, as_of, ...")])


def read_portfolio(path: str | Path, financials: str | Path | None = None, encoding: str = "utf-8") -> Table:
    """A portfolio table (``batch.read_table``); an empty file is named as such (exit 3), not as a bad table."""
    from .portfolio.batch import read_table

    for p in (path, financials):
        if p is not None:
            refuse_empty(Path(p))
    return read_table(Path(path), Path(financials) if financials is not None else None, encoding)


__all__ = ["BatchRun", "PolicyRef", "TableRun", "batch_key", "check_day", "decide_and_record", "decide_client",
           "decide_table", "read_client", "read_portfolio", "record_table", "row_days", "run_batch", "selection_day",
           "stream"]
