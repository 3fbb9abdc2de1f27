"""Stage 6, record: an append-only, tamper-evident store of decisions, with the policy text kept for replay.

A SQLite database (one file, WAL mode) holds every decision, its input (or only the input's
hash, for privacy) and a reference to the exact policy text, stored once by its sha256. A single
decision is kept as its JSON record, one row each; a batch chunk as one segment: the inputs and
the decisions' facts column-wise (a debtor batch's: each full record and input, compressed), what
its records share, and its records' chain entries (id, client, as_of, grade, hashes); the view
``decision_record`` shows every record with all its fields. Each record carries the hash of the
record before it and its own hash over its content (a batch record's covers its segment's sha256):
a hash chain. ``verify`` walks the chain and
names the first broken record and how it broke; ``replay`` re-decides a record from the stored
policy text and input with today's engine and reports any field (for a batch record, any fact)
that differs.

Appends take the write lock first (``BEGIN IMMEDIATE``), read the chain head and write, so
several processes can record at once without forking the chain. A batch commits in chunks:
each chunk is whole or absent, and a rerun of the same batch sees which clients are recorded.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import operator
import os
import sqlite3
import urllib.parse
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from ..decide.segment import SegmentRecords, chunk_size
from ..diagnostics import Diagnostic, InputError, PolicyEngineError, PolicyError, UsageError, did_you_mean
from ..frozen import Frozen

ENV_VAR = "POLICY_ENGINE_AUDIT_DB"
DEFAULT_PATH = "audit.db"
SCHEMA_VERSION = 4
APPLICATION_ID = 0x50454144  # 'PEAD': marks the file as a policy_engine decision store
GENESIS = "0" * 64
NUL = "\x00"  # stands for a null field in hashed content
_PROGRESS_EVERY = 2000  # records between two progress reports of verify

_MIGRATIONS: dict[int, str | Callable[[sqlite3.Connection], None]] = {
    1: """
    CREATE TABLE policy_snapshot (
        sha256 TEXT PRIMARY KEY,
        policy_id TEXT NOT NULL,
        version TEXT NOT NULL,
        text TEXT NOT NULL,
        first_used_at TEXT NOT NULL
    );
    CREATE TABLE decision (
        seq INTEGER PRIMARY KEY,
        decision_id TEXT NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        as_of TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        policy_sha256 TEXT NOT NULL REFERENCES policy_snapshot(sha256),
        grade TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        input_json TEXT,
        decision_json TEXT NOT NULL,
        batch_key TEXT,
        recorded_at TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL UNIQUE
    );
    CREATE INDEX decision_client ON decision(client_id);
    CREATE INDEX decision_policy ON decision(policy_id, policy_version);
    CREATE INDEX decision_batch ON decision(batch_key, client_id);
    CREATE TABLE chain_head (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    );
    INSERT INTO chain_head (id, seq, hash) VALUES (1, 0, printf('%064d', 0));
    """,
    # Batches store their decisions in segments: one blob per chunk holding the inputs and the
    # decision facts column-wise, plus what its rows share (policy, batch key, time). Each decision
    # stays a chained row pointing into its segment, with only what is its own: a short row and
    # three B-trees to update, so a bulk append costs about what deciding does. Partial indexes
    # skip segment rows. The view decision_record shows every record with all its fields.
    2: """
    CREATE TABLE segment (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        policy_sha256 TEXT NOT NULL REFERENCES policy_snapshot(sha256),
        batch_key TEXT,
        recorded_at TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX segment_batch ON segment(batch_key);
    CREATE INDEX segment_policy ON segment(policy_id, policy_version);
    CREATE TABLE decision_v2 (
        seq INTEGER PRIMARY KEY,
        decision_id TEXT NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        as_of TEXT NOT NULL,
        policy_id TEXT,
        policy_version TEXT,
        policy_sha256 TEXT REFERENCES policy_snapshot(sha256),
        grade TEXT NOT NULL,
        input_sha256 TEXT,
        input_json TEXT,
        decision_json TEXT,
        batch_key TEXT,
        recorded_at TEXT,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        segment_id INTEGER REFERENCES segment(id),
        segment_row INTEGER
    );
    INSERT INTO decision_v2 (seq, decision_id, client_id, as_of, policy_id, policy_version, policy_sha256, grade,
                             input_sha256, input_json, decision_json, batch_key, recorded_at, prev_hash, hash)
        SELECT seq, decision_id, client_id, as_of, policy_id, policy_version, policy_sha256, grade, input_sha256,
               input_json, decision_json, batch_key, recorded_at, prev_hash, hash FROM decision;
    DROP TABLE decision;
    ALTER TABLE decision_v2 RENAME TO decision;
    CREATE INDEX decision_client ON decision(client_id);
    CREATE INDEX decision_policy ON decision(policy_id, policy_version) WHERE policy_id IS NOT NULL;
    CREATE INDEX decision_batch ON decision(batch_key) WHERE batch_key IS NOT NULL;
    CREATE VIEW decision_record AS
        SELECT d.seq, d.decision_id, d.client_id, d.as_of,
               coalesce(d.policy_id, s.policy_id) AS policy_id,
               coalesce(d.policy_version, s.policy_version) AS policy_version,
               coalesce(d.policy_sha256, s.policy_sha256) AS policy_sha256,
               d.grade, d.input_sha256, d.input_json, d.decision_json,
               coalesce(d.batch_key, s.batch_key) AS batch_key,
               coalesce(d.recorded_at, s.recorded_at) AS recorded_at,
               d.prev_hash, d.hash, d.segment_id, s.sha256 AS segment_sha256, d.segment_row
        FROM decision d LEFT JOIN segment s ON s.id = d.segment_id;
    """,
}

# Schema 3: a batch decision no longer has a SQL row of its own. Its chained record (decision id,
# client, as_of, grade, input hash, previous hash, hash) is one entry of its segment's ``chain``
# (a JSON array in record order; record i is seq first_seq + i), and ``segment_clients`` keeps
# each segment's client ids as one newline-framed text, which a lookup by client scans (about
# 14 bytes a record). Appending a 5,000-client chunk is then two rows instead of 5,000 rows and
# 15,000 B-tree entries; the hashed content of every record is unchanged, so chains written by
# schema 2 still verify. The view decision_record shows every record with all its fields
# (json_each over the chains).
_SCHEMA_3 = """
    CREATE TABLE segment_v3 (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        policy_sha256 TEXT NOT NULL REFERENCES policy_snapshot(sha256),
        batch_key TEXT,
        recorded_at TEXT NOT NULL,
        first_seq INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        id_prefix TEXT,
        id_first INTEGER,
        chain TEXT NOT NULL,
        data BLOB NOT NULL
    );
    CREATE TABLE decision_v3 (
        seq INTEGER PRIMARY KEY,
        decision_id TEXT NOT NULL UNIQUE,
        client_id TEXT NOT NULL,
        as_of TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        policy_version TEXT NOT NULL,
        policy_sha256 TEXT NOT NULL REFERENCES policy_snapshot(sha256),
        grade TEXT NOT NULL,
        input_sha256 TEXT,
        input_json TEXT,
        decision_json TEXT NOT NULL,
        batch_key TEXT,
        recorded_at TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    CREATE TABLE segment_clients (
        segment_id INTEGER PRIMARY KEY,
        first_seq INTEGER NOT NULL,
        rows INTEGER NOT NULL,
        clients TEXT NOT NULL
    )
"""
_SCHEMA_3_FINISH = """
    DROP VIEW decision_record;
    INSERT INTO decision_v3 SELECT seq, decision_id, client_id, as_of, policy_id, policy_version, policy_sha256, grade,
        input_sha256, input_json, decision_json, batch_key, recorded_at, prev_hash, hash
        FROM decision WHERE segment_id IS NULL;
    DROP TABLE decision;
    DROP TABLE segment;
    ALTER TABLE decision_v3 RENAME TO decision;
    ALTER TABLE segment_v3 RENAME TO segment;
    CREATE INDEX decision_client ON decision(client_id);
    CREATE INDEX decision_policy ON decision(policy_id, policy_version);
    CREATE INDEX decision_batch ON decision(batch_key) WHERE batch_key IS NOT NULL;
    CREATE INDEX segment_seq ON segment(first_seq);
    CREATE INDEX segment_clients_seq ON segment_clients(first_seq);
    CREATE INDEX segment_ids ON segment(id_prefix, id_first);
    CREATE INDEX segment_batch ON segment(batch_key);
    CREATE INDEX segment_policy ON segment(policy_id, policy_version);
    CREATE VIEW decision_record AS
        SELECT seq, decision_id, client_id, as_of, policy_id, policy_version, policy_sha256, grade, input_sha256,
               input_json, decision_json, batch_key, recorded_at, prev_hash, hash,
               NULL AS segment_id, NULL AS segment_sha256, NULL AS segment_row
        FROM decision
        UNION ALL
        SELECT s.first_seq + j.key, json_extract(j.value, '$[0]'), json_extract(j.value, '$[1]'),
               json_extract(j.value, '$[2]'), s.policy_id, s.policy_version, s.policy_sha256,
               json_extract(j.value, '$[3]'), json_extract(j.value, '$[4]'), NULL, NULL, s.batch_key, s.recorded_at,
               json_extract(j.value, '$[5]'), json_extract(j.value, '$[6]'), s.id, s.sha256, j.key
        FROM segment s, json_each(s.chain) j
"""
# A chain entry: [decision_id, client_id, as_of, grade, input_sha256, prev_hash, hash].
_CHAIN_FIELDS = 7
_OWN = ("policy_id", "policy_version", "policy_sha256", "input_json", "decision_json", "batch_key", "recorded_at")


def _migrate_3(db: sqlite3.Connection) -> None:
    """Move each schema-2 segment's rows into its chain (in record order), keeping every hash."""
    for statement in _SCHEMA_3.split(";"):
        if statement.strip():
            db.execute(statement)
    rows = db.execute(f"SELECT segment_id, decision_id, client_id, as_of, grade, input_sha256, prev_hash, hash, "
                      f"{', '.join(_OWN)} FROM decision WHERE segment_id IS NOT NULL ORDER BY segment_id, seq")

    def flush(segment_id: int, chain: list[list[Any]], first_seq: int) -> None:
        locator = _id_locator([c[0] for c in chain])
        db.execute("INSERT INTO segment_v3 (id, sha256, policy_id, policy_version, policy_sha256, batch_key, "
                   "recorded_at, first_seq, rows, id_prefix, id_first, chain, data) "
                   "SELECT id, sha256, policy_id, policy_version, policy_sha256, batch_key, recorded_at, first_seq, ?, "
                   "?, ?, ?, data FROM segment WHERE id = ?",
                   (len(chain), *(locator or (None, None)), orjson.dumps(chain).decode("utf-8"), segment_id))
        db.execute("INSERT INTO segment_clients (segment_id, first_seq, rows, clients) VALUES (?, ?, ?, ?)",
                   (segment_id, first_seq, len(chain), _client_list(c[1] for c in chain)))

    current, chain, first_seq = None, [], 0
    for sid, *values in rows:
        fields, own = values[:_CHAIN_FIELDS], values[_CHAIN_FIELDS:]
        if sid != current:
            if chain:
                flush(current, chain, first_seq)
            current, chain = sid, []
            first_seq = db.execute("SELECT first_seq FROM segment WHERE id = ?", (sid,)).fetchone()[0]
        entry: list[Any] = list(fields)
        extra = {k: v for k, v in zip(_OWN, own, strict=True) if v is not None}
        if extra:  # a field of its own was a tamper schema 2 caught: keep it, so verify still does
            entry.append(extra)
        chain.append(entry)
    if chain:
        flush(current, chain, first_seq)
    for statement in _SCHEMA_3_FINISH.split(";"):
        if statement.strip():
            db.execute(statement)


def _id_locator(ids: list[str]) -> tuple[str, int] | None:
    """(prefix, first counter) when the ids are a prefix and consecutive hex counters, as a batch's
    are (``evaluate._DecisionIds.block``): a segment is then found by id without an index per row."""
    first = ids[0]
    prefix, tail = first[:-12], first[-12:]
    try:
        start = int(tail, 16)
    except ValueError:
        return None
    if len(tail) != 12 or start + len(ids) > 0xFFFFFFFFFFFF:
        return None
    if ids != [f"{prefix}{k:012x}" for k in range(start, start + len(ids))]:
        return None
    return prefix, start


_MIGRATIONS[3] = _migrate_3
# Schema 4: a segment may be a decision segment (a debtor batch's full records, ``segments.DECISION_SEGMENT_FORMAT``).
# Nothing moves; the number tells an older engine, which would misread such a segment, that the store is newer.
_MIGRATIONS[4] = ""


def _client_list(client_ids: Iterable[str]) -> str:
    """A segment's client ids as one text, each framed by newlines, so ``instr`` finds a whole id.
    (An id holding a newline can match more than itself; matches are confirmed on the record.)"""
    return "\n" + "\n".join(client_ids) + "\n"


def _segment_chain(prev: str, records: SegmentRecords, policy: Any, batch_key: str | None,
                   seg_sha: str) -> list[tuple[Any, ...]]:
    """The chain entries of a segment's records, starting from the hash ``prev``."""
    head, tail = _segment_frame(policy.id, policy.version, policy.sha256, batch_key, records.recorded_at, seg_sha)
    prefix, first_id = records.id_prefix, records.id_first
    hashes = records.input_hashes if records.input_hashes is not None else [None] * len(records)
    sha256 = hashlib.sha256
    chain = []
    for i, (cid, as_of, grade, input_hash) in enumerate(zip(records.client_ids, records.as_ofs, records.grades,
                                                            hashes, strict=True)):
        did = f"{prefix}{first_id + i:012x}"
        h = sha256(f"{prev}\n{did}\x1f{cid}\x1f{as_of}\x1f{head}\x1f{grade}\x1f"
                   f"{NUL if input_hash is None else input_hash}{tail}{i}".encode()).hexdigest()
        chain.append((did, cid, as_of, grade, input_hash, prev, h))
        prev = h
    return chain


def _save_snapshot(db: sqlite3.Connection, policy: Any, now: str) -> None:
    """The policy's bundle (its text, and the text of every module it imports), stored once by its sha256. Looked
    up by its key first, in the transaction that records: an INSERT OR IGNORE binds the whole bundle's text each
    time (a third of a recorded decision), and a snapshot another program deleted is written again."""
    if db.execute("SELECT 1 FROM policy_snapshot WHERE sha256 = ?", (policy.sha256,)).fetchone() is not None:
        return
    db.execute("INSERT INTO policy_snapshot (sha256, policy_id, version, text, first_used_at) "
               "VALUES (?, ?, ?, ?, ?)", (policy.sha256, policy.id, policy.version, policy.bundle, now))


def _write_segment(db: sqlite3.Connection, policy: Any, batch_key: str | None, data: bytes,
                   records: SegmentRecords, seg_sha: str, chain: list[tuple[Any, ...]]) -> int:
    """Append one segment in one transaction; ``chain`` is rehashed if the head is not where it assumed."""
    n = len(records)
    db.execute("BEGIN IMMEDIATE")  # the write lock first: the head cannot move under us
    try:
        _save_snapshot(db, policy, records.recorded_at)
        seq, head = _chain_head(db)
        if head != chain[0][5]:  # another process appended since these hashes were computed
            chain = _segment_chain(head, records, policy, batch_key, seg_sha)
        first_seq = seq + 1
        segment_id = db.execute(
            "INSERT INTO segment (sha256, policy_id, policy_version, policy_sha256, batch_key, recorded_at, "
            "first_seq, rows, id_prefix, id_first, chain, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (seg_sha, policy.id, policy.version, policy.sha256, batch_key, records.recorded_at, first_seq, n,
             records.id_prefix, records.id_first, orjson.dumps(chain).decode("utf-8"), data)).lastrowid
        db.execute("INSERT INTO segment_clients (segment_id, first_seq, rows, clients) VALUES (?, ?, ?, ?)",
                   (segment_id, first_seq, n, _client_list(records.client_ids)))
        db.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (first_seq + n - 1, chain[-1][6]))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return n

# What a writer hands the store per decision: decision_id, client_id, as_of, grade, input_sha256,
# canonical input JSON (None with hash-only inputs), decision JSON, recorded_at.
StoredRow = tuple[str, str, str, str, str | None, bytes | None, bytes | None, str]


_HASHED = ("decision_id", "client_id", "as_of", "policy_id", "policy_version", "policy_sha256", "grade",
           "input_sha256", "input_json", "decision_json", "batch_key", "recorded_at")


class AuditError(PolicyEngineError):
    """The store cannot be used (not a decision store, newer schema, unreadable): exit code 6."""

    exit_code = 6


def default_path() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_PATH)


def _content(values: Iterable[Any]) -> bytes:
    # Fields in a fixed order, separated by a byte that canonical JSON and ids never contain;
    # NUL marks a null so that null and "" differ. Text columns arrive as str or (verify) bytes.
    return b"\x1f".join(b"\x00" if v is None else v if type(v) is bytes else str(v).encode("utf-8")
                         for v in values)


def _segment_ref(segment_sha256: Any, segment_row: Any) -> bytes:
    # A segment row's content also names its segment and place: appended only then, so records
    # written before segments existed keep their hashes.
    if segment_sha256 is None:
        return b""
    sha = segment_sha256 if type(segment_sha256) is bytes else str(segment_sha256).encode("ascii")
    return b"\x1f" + sha + b"\x1f" + str(segment_row).encode("ascii")


def _segment_frame(policy_id: str, version: str, policy_sha256: str, batch_key: str | None, recorded_at: str,
                   segment_sha256: str) -> tuple[str, str]:
    """What a segment's records share in their hashed content (the layout of :func:`record_hash`):
    the text after the record's as_of and the text between its input hash and its row number."""
    return (f"{policy_id}\x1f{version}\x1f{policy_sha256}",
            f"\x1f{NUL}\x1f{NUL}\x1f{NUL if batch_key is None else batch_key}\x1f{recorded_at}\x1f{segment_sha256}\x1f")


def _segment_entry_hash(prev: str, did: str, cid: str, as_of: str, grade: str, input_hash: str | None, head: str,
                        tail: str, row: int) -> str:
    """The hash of a batch segment's record ``row``: its chain entry's fields in the frame its segment shares
    (:func:`_segment_frame`), as :func:`record_hash` lays out a record of its own."""
    return hashlib.sha256(f"{prev}\n{did}\x1f{cid}\x1f{as_of}\x1f{head}\x1f{grade}\x1f"
                          f"{NUL if input_hash is None else input_hash}{tail}{row}".encode()).hexdigest()


def record_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """sha256 over the previous hash and the record's content (every stored column but seq and hash)."""
    ref = _segment_ref(row.get("segment_sha256"), row.get("segment_row"))
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + _content(row[k] for k in _HASHED) + ref).hexdigest()


_VOLATILE = ("decision_id", "evaluated_at", "engine_version")


def _lists_optional(policy: Any) -> bool:
    """Whether ``policy``'s decider hashes a record with its empty lists dropped (a policy with scopes): the form
    its inputs are stored in, so a stored input hashes to its decision's input hash."""
    return getattr(policy, "scoped", None) is not None


def _recorded_hash(stored: Mapping[str, Any], fresh: dict[str, Any], record: Any) -> None:
    """A decision recorded before an empty list, or an object of nulls only, was hashed as none has the input
    hash of its day (the same facts, hashed by an earlier rule): that hash is the fresh one's too, not a
    difference."""
    from ..decide.canonical import legacy_canonical_jsons

    then = stored.get("input_sha256")
    if then is not None and then != fresh.get("input_sha256") and \
            any(then == hashlib.sha256(form).hexdigest() for form in legacy_canonical_jsons(record)):
        fresh["input_sha256"] = then


def _columns_disagree(row: Mapping[str, Any], stored: Mapping[str, Any]) -> list[str]:
    """The store's columns (which list, --grade, --client and export read) that say otherwise than the decision they
    index: a grade column rewritten from loss to pass, its chain rehashed, replayed 'identical' while list dropped
    the record from the losses."""
    policy = stored.get("policy") if isinstance(stored.get("policy"), dict) else {}
    classification = stored.get("classification") if isinstance(stored.get("classification"), dict) else {}
    told = {"decision_id": stored.get("decision_id"), "client_id": stored.get("client_id"),
            "as_of": stored.get("as_of"), "grade": classification.get("grade"), "policy_id": policy.get("id"),
            "policy_version": policy.get("version"), "policy_sha256": policy.get("sha256")}
    return [f"the store's {column} column says {row[column]!r}, its decision {value!r}: the record was changed "
            "behind the store's back (see `audit verify`)"
            for column, value in told.items() if value is not None and row[column] is not None
            and str(row[column]) != str(value)]


def _differences(stored: Mapping[str, Any], fresh: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """What a replayed decision gives otherwise than the stored one, field by field: the differences, and apart the
    reasons for missing data this engine words otherwise (see ``_WORDING``)."""
    diffs: list[str] = []
    worded: list[str] = []
    _diff("", {k: v for k, v in stored.items() if k not in _VOLATILE},
          {k: v for k, v in fresh.items() if k not in _VOLATILE and k != "trace"}, diffs, worded)
    return diffs, worded


# The words of a decision that explain missing data, not what was decided: why a metric has no value (the value of
# ``undefined_metrics.<name>``; which metrics have none is decided) and what an undetermined rule lacked (its
# ``reasons`` and ``missing``; which rules are undetermined is decided). Engines name the lacking facts ever more
# precisely (the field's place, the element): a stored record worded by an earlier engine replays identical, its
# rewording listed apart. (the enclosing key's state, key) -> the state inside it.
_WORDING = {("", "undefined_metrics"): "reasons", ("", "undetermined"): "entries",
            ("entries", "reasons"): "words", ("entries", "missing"): "words"}


# Fields an engine added to a record after decisions were recorded without them: they say more about the same
# outcome, so their absence from a stored record is no difference (an undetermined action's ``excluded_by``,
# and the exposures an action's for_exposures could not tell about, ``exposures_not_known``, both 2026-12-06; why an
# exposure's metric has no value, its entry's ``undefined_metrics``, 2026-12-08). One the stored record has is
# compared as any other (an exposure's ``undefined_metrics`` as the debtor's: its words are listed apart).
_ADDED_LATER = frozenset({"excluded_by", "exposures_not_known", "undefined_metrics"})


def _diff(path: str, a: Any, b: Any, out: list[str], worded: list[str] | None = None, state: str = "") -> None:
    """Field-by-field differences, as 'path: stored -> replayed', each value as JSON writes it (a caller reads
    ``true`` and ``null``, not Python's ``True`` and ``None``); with ``worded``, those in the words that explain
    missing data go there (``state``: where in them, see ``_WORDING``)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k in _ADDED_LATER and k not in a:
                continue
            x, y = a.get(k, "<absent>"), b.get(k, "<absent>")
            inner = "words" if state == "words" or (state == "reasons" and type(x) is str and type(y) is str
                                                     and "<absent>" not in (x, y)) else _WORDING.get((state, k), "")
            _diff(f"{path}.{k}" if path else k, x, y, out, worded, inner)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(f"{path}[{i}]", x, y, out, worded, state)
    elif a != b:
        (worded if worded is not None and state == "words" else out).append(f"{path}: {_shown(a)} -> {_shown(b)}")


def _shown(v: Any) -> str:
    return "<absent>" if v == "<absent>" else json.dumps(v, ensure_ascii=False, default=str)


Record = dict[str, Any]  # one record with every field of the view decision_record
_SINGLE_COLUMNS = ("seq, decision_id, client_id, as_of, policy_id, policy_version, policy_sha256, grade, input_sha256, "
                   "input_json, decision_json, batch_key, recorded_at, prev_hash, hash, NULL AS segment_id, "
                   "NULL AS segment_sha256, NULL AS segment_row")
_SEGMENT_META = "id, sha256, policy_id, policy_version, policy_sha256, batch_key, recorded_at, first_seq, rows, chain"


def _chain(meta: Any, path: Path) -> list[list[Any]]:
    """A segment's chain entries, or a store error naming the segment when they cannot be read."""
    try:
        chain = orjson.loads(meta["chain"])
        if type(chain) is list and (not chain or (set(map(type, chain)) == {list}
                                                  and min(map(len, chain)) >= _CHAIN_FIELDS)):
            return chain
    except orjson.JSONDecodeError:
        pass
    raise AuditError([Diagnostic("unreadable-segment", f"the chain of segment {meta['id']} in {path} cannot be read",
                                 hint="run `audit verify`")])


def _segment_record(meta: Any, chain: list[list[Any]], i: int) -> Record:
    did, cid, as_of, grade, input_hash, prev, h = chain[i][:_CHAIN_FIELDS]
    return {"seq": meta["first_seq"] + i, "decision_id": did, "client_id": cid, "as_of": as_of,
            "policy_id": meta["policy_id"], "policy_version": meta["policy_version"],
            "policy_sha256": meta["policy_sha256"], "grade": grade, "input_sha256": input_hash, "input_json": None,
            "decision_json": None, "batch_key": meta["batch_key"], "recorded_at": meta["recorded_at"],
            "prev_hash": prev, "hash": h, "segment_id": meta["id"], "segment_sha256": meta["sha256"],
            "segment_row": i}


class Break(Frozen):
    """Where the chain broke, and how."""

    seq: int
    decision_id: str | None
    kind: str  # edited | deleted | inserted | reordered
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return self.as_dict()


def _a_decision(value: Any) -> bool:
    """Whether stored JSON is a decision record at all (valid JSON such as [] or null in its place is not)."""
    return (isinstance(value, dict) and "client_id" in value and isinstance(value.get("classification"), dict)
            and isinstance(value.get("policy"), dict))


def _chain_head(db: sqlite3.Connection, path: Path | None = None) -> tuple[int, str]:
    """(record number, hash) of the chain head; a store without one was changed behind its back: nothing can be
    recorded after an end nobody knows, nor the chain checked against it."""
    row = db.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
    if row is None or row[0] is None or row[1] is None:
        raise AuditError([Diagnostic("store-failed", f"the chain head of the decision store{f' {path}' if path else ''}"
                                     " is missing (its table chain_head holds no row): the store was changed behind "
                                     "its back", file=None if path is None else str(path),
                                     hint="keep the store as it is for an investigation, and record into a new one; "
                                          "audit list, show and export still read its records")])
    return int(row[0]), str(row[1])


def _read_only(path: Path, why: str) -> Diagnostic:
    return Diagnostic("store-failed", f"{path} is read-only: no decision can be recorded in it ({why})", file=str(path),
                      hint="record into a writable store (--audit-db), or decide with --no-audit; audit commands "
                           "read it as it is")


class AuditStore:
    """One decision store file; open it, append decisions, verify, query."""

    def __init__(self, path: str | Path | None = None, create: bool = True):
        self.path = Path(path) if path is not None else default_path()
        self._compiled: dict[str, Any] = {}
        self._snapshot_problems: dict[str, str | None] = {}  # policy sha256 -> why its stored text is not it
        self._segment_cache: dict[str, Any] = {}
        if not create and not self.path.exists():
            raise AuditError([Diagnostic("no-audit-store", f"no decision store at {self.path}",
                                         hint=f"decisions are recorded by decide and batch; or set {ENV_VAR}")])
        folder = self.path.parent
        if create and not self.path.exists() and not folder.is_dir():  # sqlite says only 'unable to open'
            raise AuditError([Diagnostic("no-audit-store", f"cannot create a decision store at {self.path}: folder "
                                         f"{folder} does not exist", file=str(self.path),
                                         hint="create the folder, or point --audit-db at a file in one that exists")])
        if create and not self.path.exists() and not os.access(folder, os.W_OK):  # sqlite: 'unable to open'
            raise AuditError([Diagnostic("store-failed", f"cannot create a decision store at {self.path}: folder "
                                         f"{folder} is read-only", file=str(self.path),
                                         hint="point --audit-db at a writable folder, or decide with --no-audit")])
        # A store only read (verify, list, show, replay, export) may be an archive copy nobody may write, not even
        # SQLite's lock files beside it: opened read-only, as it is (it cannot change under an archive's reader).
        self.read_only = self.path.is_file() and not (
            os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK))
        if create and self.read_only:
            raise AuditError([_read_only(self.path, "no one may write the file or its folder")])
        try:
            self.db = self._connect(isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 30000")
            self._check_and_migrate(create)
            if not self.read_only:
                self.db.execute("PRAGMA journal_mode = WAL")
                self.db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            if "readonly" in str(exc):  # a store (or its folder) nobody may write: it is one, it takes no decision
                raise AuditError([_read_only(self.path, str(exc))]) from None
            raise AuditError([Diagnostic("not-an-audit-store", f"{self.path} is not a decision store ({exc})",
                                         file=str(self.path), hint="point --audit-db at a decision store, "
                                         "or at a new file name")]) from None

    def _connect(self, **options: Any) -> sqlite3.Connection:
        """A connection to the store's file, read-only when the store is (see ``read_only``)."""
        if not self.read_only:
            return sqlite3.connect(self.path, timeout=30.0, **options)
        where = urllib.parse.quote(str(self.path.resolve()))
        lock_files = os.access(self.path.parent, os.W_OK)  # else no -shm beside it: read as it is, unlocked
        return sqlite3.connect(f"file:{where}?mode=ro" + ("" if lock_files else "&immutable=1"), uri=True,
                               timeout=30.0, **options)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # schema ------------------------------------------------------------------
    def _check_and_migrate(self, create: bool = True) -> None:
        app_id = self.db.execute("PRAGMA application_id").fetchone()[0]
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0 and version == 0 and tables:
            raise AuditError([Diagnostic("not-an-audit-store", f"{self.path} is a SQLite database but not a "
                                         "decision store", file=str(self.path))])
        if app_id == 0 and version == 0 and not create:  # an empty file: reading it must not make it a store
            raise AuditError([Diagnostic("not-an-audit-store", f"{self.path} is empty: no decision store, no "
                                         "decision recorded", file=str(self.path),
                                         hint="point --audit-db at a decision store that decide or batch wrote")])
        if app_id not in (0, APPLICATION_ID):
            raise AuditError([Diagnostic("not-an-audit-store", f"{self.path} belongs to another application",
                                         file=str(self.path))])
        if version > SCHEMA_VERSION:
            raise AuditError([Diagnostic("audit-schema-too-new", f"{self.path} has store schema {version}; this "
                                         f"engine knows up to {SCHEMA_VERSION}", file=str(self.path),
                                         hint="upgrade policy_engine to read it")])
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise AuditError([Diagnostic("audit-schema-old", f"{self.path} has store schema {version}, and this "
                                         f"engine reads {SCHEMA_VERSION}: a read-only store cannot be brought up to it",
                                         file=str(self.path), hint="read a writable copy of it (the first command "
                                         "that opens the copy migrates it), or use the engine that wrote it")])
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for v in range(version + 1, SCHEMA_VERSION + 1):
                step = _MIGRATIONS[v]
                if callable(step):
                    step(self.db)
                else:
                    for statement in step.split(";"):
                        if statement.strip():
                            self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {v}")
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # writing -------------------------------------------------------------------
    def append(self, policy: Any, items: Iterable[tuple[Any, ...]], inputs: str = "full",
               batch_key: str | None = None) -> int:
        """Record (full decision, input record) pairs in chunked transactions; returns how many were written. An
        item may carry a third member, the record's canonical JSON as the decider wrote it for the input hash
        (:meth:`.Decider.decide_with_input`), which is stored as it is rather than written again."""
        from ..decide.canonical import canonical_json

        lists_optional = _lists_optional(policy)

        def rows() -> Iterator[StoredRow]:
            for decision, record, *written in items:
                stored = {k: v for k, v in decision.items() if k != "trace"}
                text = (written[0] if written else canonical_json(record, lists_optional)) if inputs == "full" \
                    else None
                if written and hashlib.sha256(written[0]).hexdigest() != decision["input_sha256"]:
                    raise ValueError(f"the input given for decision {decision['decision_id']} is not the one its "
                                     "input_sha256 is of")  # a caller's mix-up: never stored
                yield (decision["decision_id"], decision["client_id"], decision["as_of"],
                       decision["classification"]["grade"], decision["input_sha256"], text, orjson.dumps(stored),
                       decision["evaluated_at"])

        return self.append_rows(policy, rows(), batch_key)

    def append_decisions(self, policy: Any, groups: Iterable[list[tuple[dict[str, Any], Any]]], inputs: str = "full",
                         batch_key: str | None = None) -> int:
        """Record groups of (full decision, input record) pairs, a segment each (a debtor batch's records:
        see :func:`.segments.decision_segment`, whose id rule each group follows); returns how many."""
        from .segments import decision_segment

        lists_optional = _lists_optional(policy)
        return self.append_segments(policy, (decision_segment(g, inputs, lists_optional) for g in groups if g),
                                    batch_key)

    def append_rows(self, policy: Any, rows: Iterable[StoredRow], batch_key: str | None = None) -> int:
        """Record prepared rows (see :data:`StoredRow`) in transactions of :func:`chunk_size`; returns how many."""
        written = 0
        size = chunk_size()
        chunk: list[StoredRow] = []
        for row in rows:
            chunk.append(row)
            if len(chunk) >= size:
                written += self._append_chunk(policy, chunk, batch_key)
                chunk = []
        if chunk:
            written += self._append_chunk(policy, chunk, batch_key)
        return written

    def append_segments(self, policy: Any, segments: Iterable[tuple[bytes, SegmentRecords]],
                        batch_key: str | None = None) -> int:
        """Record a batch's segments (``data`` holds record i's input and facts), each whole or absent
        in its own transaction, in order; returns how many records were written.

        A writer thread stores one segment while this thread hashes the next one's records: SQLite
        writes without the GIL, so the two overlap. The next hashes assume the head the segment
        before leaves; the writer checks that under the write lock and rehashes when another
        process appended in between.
        """
        import queue
        import threading

        box: queue.Queue[tuple[bytes, SegmentRecords, str, list[tuple[Any, ...]]] | None] = queue.Queue(maxsize=1)
        failure: list[BaseException] = []
        written = 0

        def write() -> None:
            nonlocal written
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            try:
                db.execute("PRAGMA busy_timeout = 30000")
                db.execute("PRAGMA synchronous = NORMAL")
                while (item := box.get()) is not None:
                    if not failure:
                        written += _write_segment(db, policy, batch_key, *item)
            except BaseException as exc:  # handed to the caller's thread, which raises it
                failure.append(exc)
                while box.get() is not None:  # let the hashing thread finish its puts
                    pass
            finally:
                db.close()

        writer = threading.Thread(target=write, name="audit-writer", daemon=True)
        writer.start()
        try:
            prev = _chain_head(self.db, self.path)[1]
            for data, records in segments:
                if failure:
                    break
                if not len(records):
                    continue
                seg_sha = hashlib.sha256(data).hexdigest()
                chain = _segment_chain(prev, records, policy, batch_key, seg_sha)
                box.put((data, records, seg_sha, chain))
                prev = chain[-1][6]
        finally:
            box.put(None)
            writer.join()
        if failure:
            raise failure[0]
        return written

    def _append_chunk(self, policy: Any, chunk: list[StoredRow], batch_key: str | None) -> int:
        # The content hashed is _content() of the _HASHED columns, assembled here from bytes at hand.
        fixed = (policy.id, policy.version, policy.sha256)
        middle = b"\x1f".join(v.encode("utf-8") for v in fixed)
        key = b"\x00" if batch_key is None else batch_key.encode("utf-8")
        sha256 = hashlib.sha256
        self.db.execute("BEGIN IMMEDIATE")  # the write lock first: the head cannot move under us
        try:
            _save_snapshot(self.db, policy, chunk[0][7])
            seq, prev = _chain_head(self.db, self.path)
            params = []
            for did, cid, as_of, grade, input_hash, input_json, decision_json, at in chunk:
                seq += 1
                hashed = b"".join((
                    f"{prev}\n{did}\x1f{cid}\x1f{as_of}\x1f".encode(), middle,
                    f"\x1f{grade}\x1f{NUL if input_hash is None else input_hash}\x1f".encode(),
                    b"\x00" if input_json is None else input_json, b"\x1f",
                    b"\x00" if decision_json is None else decision_json, b"\x1f", key, b"\x1f", at.encode()))
                h = sha256(hashed).hexdigest()
                params.append((seq, did, cid, as_of, *fixed, grade, input_hash,
                               None if input_json is None else input_json.decode("utf-8"),
                               None if decision_json is None else decision_json.decode("utf-8"), batch_key, at,
                               prev, h))
                prev = h
            self.db.executemany(f"INSERT INTO decision (seq, {', '.join(_HASHED)}, prev_hash, hash) "
                                f"VALUES ({', '.join('?' * (len(_HASHED) + 3))})", params)
            self.db.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(chunk)

    def recorded_ids(self, batch_key: str) -> dict[str, tuple[str, str]]:
        """Each client recorded under ``batch_key`` -> (decision id, time), as ``audit show`` gives its record.

        A rerun's ``--records`` lines carry them for the clients it skips: the stored record is the one a
        line stands for. Reads every segment of the batch (a decision segment's times are in its records).
        """
        from .segments import DECISION_SEGMENT_FORMAT

        found = {cid: (did, at) for did, cid, at in self.db.execute(
            "SELECT decision_id, client_id, recorded_at FROM decision WHERE batch_key = ?", (batch_key,))}
        metas = self.db.execute(f"SELECT {_SEGMENT_META} FROM segment WHERE batch_key = ? ORDER BY id",
                                (batch_key,)).fetchall()
        for meta in metas:
            chain = _chain(meta, self.path)
            facts, _, seg = self._segment(meta["id"])
            times = [orjson.loads(f)["evaluated_at"] for f in facts] \
                if seg.get("format") == DECISION_SEGMENT_FORMAT else [meta["recorded_at"]] * len(chain)
            found.update((entry[1], (entry[0], at)) for entry, at in zip(chain, times, strict=True))
        return found

    def recorded_clients(self, batch_key: str) -> set[str]:
        clients = {r[0] for r in self.db.execute("SELECT client_id FROM decision WHERE batch_key = ?", (batch_key,))}
        for meta in self.db.execute(f"SELECT {_SEGMENT_META} FROM segment WHERE batch_key = ?", (batch_key,)):
            clients.update(entry[1] for entry in _chain(meta, self.path))
        return clients

    # reading -------------------------------------------------------------------
    def query(self, client: str | None = None, policy_id: str | None = None, version: str | None = None,
              grade: str | None = None, date_from: str | None = None, date_to: str | None = None,
              limit: int | None = None) -> Iterator[Record]:
        """Records matching every filter given, in record order (seq)."""
        where, args = [], []
        for column, value in (("client_id", client), ("policy_id", policy_id), ("policy_version", version),
                              ("grade", grade)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if date_from:
            where.append("as_of >= ?")
            args.append(date_from)
        if date_to:
            where.append("as_of <= ?")
            args.append(date_to)
        singles = self.db.execute(f"SELECT {_SINGLE_COLUMNS} FROM decision"
                                  + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq", args)
        # Batch records: segments chosen by what they share (and by the client index), rows by what is their own.
        seg_where, seg_args = [], []
        for column, value in (("policy_id", policy_id), ("policy_version", version)):
            if value is not None:
                seg_where.append(f"{column} = ?")
                seg_args.append(value)
        if client is not None:  # the segments whose client list names it (a scan of ~14 bytes a record)
            seg_where.append("first_seq IN (SELECT first_seq FROM segment_clients WHERE instr(clients, ?) > 0)")
            seg_args.append(_client_list([client]))
        segments = self.db.execute(f"SELECT {_SEGMENT_META} FROM segment"
                                   + (" WHERE " + " AND ".join(seg_where) if seg_where else "")
                                   + " ORDER BY first_seq", seg_args)

        def batch_records() -> Iterator[Record]:
            for meta in segments:
                chain = _chain(meta, self.path)
                for i, (_, cid, as_of, g, *_rest) in enumerate(chain):
                    if ((client is None or cid == client) and (grade is None or g == grade)
                            and (not date_from or as_of >= date_from) and (not date_to or as_of <= date_to)):
                        yield _segment_record(meta, chain, i)

        merged = heapq.merge((dict(r) for r in singles), batch_records(), key=operator.itemgetter("seq"))
        return itertools.islice(merged, limit) if limit else merged

    def _segment_at(self, seq: int) -> int | None:
        """The first_seq of the segment holding record ``seq``, if one does."""
        row = self.db.execute("SELECT first_seq, rows FROM segment WHERE first_seq <= ? ORDER BY first_seq DESC "
                              "LIMIT 1", (seq,)).fetchone()
        return row[0] if row is not None and seq < row[0] + row[1] else None

    def get(self, ref: str) -> Record:
        """A record by decision_id or by record number (seq)."""
        row = self.db.execute(f"SELECT {_SINGLE_COLUMNS} FROM decision WHERE decision_id = ?", (ref,)).fetchone()
        if row is not None:
            return dict(row)
        found = self._batch_record_by_id(ref)
        if found is not None:
            return found
        if ref.isdigit() and len(ref) < 19:  # a record number SQLite can hold
            seq = int(ref)
            row = self.db.execute(f"SELECT {_SINGLE_COLUMNS} FROM decision WHERE seq = ?", (seq,)).fetchone()
            if row is not None:
                return dict(row)
            first = self._segment_at(seq)
            if first is not None:
                meta = self.db.execute(f"SELECT {_SEGMENT_META} FROM segment WHERE first_seq = ?", (first,)).fetchone()
                chain = _chain(meta, self.path)
                if seq - first < len(chain):
                    return _segment_record(meta, chain, seq - first)
            if self.db.execute("SELECT 1 FROM segment_clients WHERE first_seq <= ? AND first_seq + rows > ?",
                               (seq, seq)).fetchone() is not None:
                raise AuditError([Diagnostic("missing-segment", f"record {seq} was part of a batch segment that is "
                                             f"missing from {self.path}", hint="run `audit verify`")])
        # The store is fine; the request names what it does not hold: a usage error (exit 2), not exit 6.
        raise UsageError([Diagnostic("no-such-decision", f"no decision '{ref}' in {self.path}",
                                     hint="give a decision_id or a record number (seq) from `audit list`")])

    def record_problem(self, row: Record) -> str | None:
        """Why one record (from :meth:`get`) no longer matches its hash, or None: what ``audit verify`` finds of it,
        without walking the chain (whether its link to the record before holds is verify's to say)."""
        if row.get("segment_id") is None:
            return None if record_hash(str(row["prev_hash"]), row) == row["hash"] else \
                "its content no longer matches its hash, changed after it was recorded"
        data = self.db.execute("SELECT data FROM segment WHERE id = ?", (row["segment_id"],)).fetchone()
        if data is None or hashlib.sha256(data[0]).hexdigest() != row["segment_sha256"]:
            return f"its batch segment {row['segment_id']} (input and facts) was changed after it was recorded"
        head, tail = _segment_frame(row["policy_id"], row["policy_version"], row["policy_sha256"], row["batch_key"],
                                    row["recorded_at"], row["segment_sha256"])
        fresh = _segment_entry_hash(row["prev_hash"], row["decision_id"], row["client_id"], row["as_of"], row["grade"],
                                    row["input_sha256"], head, tail, row["segment_row"])
        return None if fresh == row["hash"] else "its content no longer matches its hash, changed after it was recorded"

    def _batch_record_by_id(self, ref: str) -> Record | None:
        # Batch ids are a prefix and consecutive counters: the segment is found by range, the
        # record confirmed by the id its chain entry holds.
        candidates: list[Any] = []
        tail = ref[-12:]
        if len(ref) > 12 and all(c in "0123456789abcdef" for c in tail):
            n = int(tail, 16)
            candidates = self.db.execute(f"SELECT {_SEGMENT_META}, id_first FROM segment WHERE id_prefix = ? AND "
                                         "id_first <= ? AND id_first + rows > ?", (ref[:-12], n, n)).fetchall()
            for meta in candidates:
                chain = _chain(meta, self.path)
                i = n - meta["id_first"]
                if i < len(chain) and chain[i][0] == ref:
                    return _segment_record(meta, chain, i)
        for meta in self.db.execute(f"SELECT {_SEGMENT_META} FROM segment WHERE id_prefix IS NULL"):
            chain = _chain(meta, self.path)  # ids of another shape (none a batch writes): look through
            for i, entry in enumerate(chain):
                if entry[0] == ref:
                    return _segment_record(meta, chain, i)
        return None

    def _decider(self, key: str) -> Any:
        from ..decide.evaluate import Decider

        if key not in self._compiled:
            self._compiled[key] = Decider(self.compiled_policy(key))
        return self._compiled[key]

    def compiled_policy(self, sha256: str) -> Any:
        """The policy stored as ``sha256``, compiled. The snapshot is the bundle: the policy text and the module texts
        it imported that day. A text that no longer compiles was changed behind the store's back: a store error
        (exit 6), not an invalid policy of the user's (exit 4)."""
        from ..policy.modules import compile_text

        try:
            return compile_text(self.policy_text(sha256), f"<snapshot {sha256[:12]}>")
        except PolicyError as exc:
            first = exc.diagnostics[0] if exc.diagnostics else None
            why = f" ({first.code}: {first.message})" if first else ""
            if self.snapshot_problem(sha256) is not None:
                raise AuditError([Diagnostic(
                    "snapshot-broken", f"the stored text of policy {sha256[:12]} no longer compiles{why}: it was "
                    "changed after it was recorded", hint="`audit verify` names the first record decided under "
                    "it")]) from None
            # intact: an engine of today checks more than the one that recorded it
            raise AuditError([Diagnostic(
                "snapshot-refused", f"the stored text of policy {sha256[:12]} is intact (it hashes to its sha256), "
                f"but this engine refuses it{why}: a decision under it cannot be explained or replayed by this "
                "engine", hint="use the engine that recorded it (the decision's engine_version)")]) from None

    def snapshot_problem(self, sha256: str) -> str | None:
        """Why the stored text of policy ``sha256`` is not the text that decided (it no longer hashes to it), or
        None. What show explains and replay re-decides with is that text: an edited one proves nothing."""
        if sha256 not in self._snapshot_problems:
            text = self.policy_text(sha256)
            self._snapshot_problems[sha256] = None if hashlib.sha256(text.encode("utf-8")).hexdigest() == sha256 \
                else f"the stored text of policy {sha256[:12]} no longer matches its sha256: it was changed after " \
                "it was recorded, so it cannot show what decided (see `audit verify`)"
        return self._snapshot_problems[sha256]

    def stored(self, row: Record) -> tuple[dict[str, Any], Any]:
        """(the decision as recorded, the input record or None): from the row, or from its segment.

        A segment row's decision is its facts (``evaluate.summarize``'s shape) read back from the
        segment, with the input hash derived from the stored input when only the input was kept. Text that
        is no longer JSON (a store edited behind its back) is a store error naming the record.
        """
        try:
            decision, record = self._stored(row)
        except orjson.JSONDecodeError as exc:
            raise AuditError([Diagnostic("unreadable-record", f"record {row['seq']} of {self.path} holds text that "
                                         f"is not JSON ({exc})", hint="run `audit verify`: the store was changed "
                                         "behind its back")]) from None
        if not _a_decision(decision):
            raise AuditError([Diagnostic("unreadable-record", f"record {row['seq']} of {self.path} holds JSON that is "
                                         f"not a decision ({type(decision).__name__} without its client, grade or "
                                         "policy)", hint="run `audit verify`: the store was changed behind its back")])
        return decision, record

    def stored_texts(self, row: Record) -> tuple[str, str | None, str | None]:
        """(the decision, the input or None when only its hash was kept, the input hash) as JSON text, for an
        export: as stored, or written from the batch segment (whose record derives its hash from the stored input
        when the chain keeps none). Stored text that is no longer JSON is the error :meth:`stored` raises, so an
        export never carries a line its reader cannot parse."""
        if row["segment_id"] is not None:
            from ..decide.canonical import canonical_json

            decision, record = self.stored(row)
            return (orjson.dumps(decision).decode("utf-8"),
                    None if record is None else canonical_json(record).decode("utf-8"), decision["input_sha256"])
        try:
            texts = [None if text is None else orjson.loads(text) for text in (row["decision_json"], row["input_json"])]
        except orjson.JSONDecodeError:
            texts = []
        if not texts or not _a_decision(texts[0]):
            self.stored(row)  # raises the store error naming the record
        return str(row["decision_json"]), row["input_json"], row["input_sha256"]

    def _input_of(self, row: Record, text: str | bytes | None) -> Any:
        """The stored input, or None when only its hash was kept (no text). Text that holds no record (``null``
        written over it behind the store's back) is a store error, never taken for an input kept as its hash."""
        if text is None:
            return None
        record = orjson.loads(text)
        if type(record) is not dict:
            from ..decide.inputs import describe

            raise AuditError([Diagnostic("unreadable-record", f"record {row['seq']} of {self.path} holds an input "
                                         f"that is not a record ({describe(record)})",
                                         hint="run `audit verify`: the store was changed behind its back")])
        return record

    def _stored(self, row: Record) -> tuple[dict[str, Any], Any]:
        seg = row["segment_id"]
        if seg is None:
            return orjson.loads(row["decision_json"]), self._input_of(row, row["input_json"])
        from ..decide.canonical import canonical_json
        from ..decide.evaluate import SUMMARY
        from .segments import DECISION_SEGMENT_FORMAT, segment_input

        facts, inputs, meta = self._segment(seg)
        i = row["segment_row"]
        if not 0 <= i < len(facts):  # its chain names more records than its data holds
            raise AuditError([Diagnostic("unreadable-segment", f"record {row['seq']} is row {i} of segment {seg} in "
                                         f"{self.path}, which holds {len(facts)} row(s)",
                                         hint="run `audit verify`: the store was changed behind its back")])
        if meta.get("format") == DECISION_SEGMENT_FORMAT:  # full records, as a single decision's row holds them
            return orjson.loads(facts[i]), self._input_of(row, inputs[i] if inputs is not None else None)
        record = segment_input(inputs, i, meta.get("text") == "1", orjson.loads(meta.get("text_columns", "[]")),
                               orjson.loads(meta.get("lists", '["financials"]')))
        input_hash = row["input_sha256"]
        if input_hash is None and record is not None:
            input_hash = hashlib.sha256(canonical_json(record)).hexdigest()
        decision = {
            "record": SUMMARY, "decision_id": row["decision_id"], "client_id": row["client_id"],
            "as_of": row["as_of"], "evaluated_at": row["recorded_at"], "engine_version": meta.get("engine_version"),
            "policy": {"id": row["policy_id"], "version": row["policy_version"], "sha256": row["policy_sha256"]},
            "input_sha256": input_hash, **facts[i],
        }
        return decision, record

    def _segment(self, segment_id: int) -> tuple[list[Any], Any, dict[str, str]]:
        if self._segment_cache.get("id") != segment_id:
            from .segments import DECISION_SEGMENT_FORMAT, decision_facts, read_segment

            data = self.db.execute("SELECT data FROM segment WHERE id = ?", (segment_id,)).fetchone()
            if data is None:
                raise AuditError([Diagnostic("missing-segment", f"segment {segment_id} is missing from {self.path}",
                                             hint="run `audit verify`")])
            try:
                facts, inputs, meta = read_segment(bytes(data[0]))
            except Exception as exc:  # pyarrow's complaint about bytes that are no longer a segment
                raise AuditError([Diagnostic("unreadable-segment", f"segment {segment_id} in {self.path} cannot be "
                                             f"read ({type(exc).__name__}: {exc})", hint="run `audit verify`")]
                                 ) from None
            # Facts of every row at once: export and replay walk a segment row by row.
            if meta.get("format") != DECISION_SEGMENT_FORMAT:
                facts = list(decision_facts(facts))
            self._segment_cache = {"id": segment_id, "value": (facts, inputs, meta)}
        return self._segment_cache["value"]

    def replay(self, row: Record) -> tuple[str, list[str]]:
        """Re-decide a stored record with today's engine: ('identical'|'different'|'not-replayable', diffs)."""
        status, diffs, _ = self.replay_worded(row)
        return status, diffs

    def replay_worded(self, row: Record) -> tuple[str, list[str], list[str]]:
        """:meth:`replay`, and the reasons for missing data the stored record words otherwise than this engine
        (no difference in what was decided: 'identical' with them).

        A summary record (a batch's) is compared on its facts: the summary of the fresh decision.
        """
        from ..decide.evaluate import SUMMARY, summarize

        stored, record = self.stored(row)
        # What list, --grade and export read is not what was decided: a difference whatever the replay gives.
        disagree = _columns_disagree(row, stored)
        if record is None:
            if row.get("segment_id") is None and (edited := self.record_problem(row)) is not None:
                return "different", [f"the record: {edited} (see `audit verify`)", *disagree], []  # not to be
                # called hash-only: its input may have been removed
            return ("different", disagree, []) if disagree else (
                "not-replayable", ["only the input's hash was stored (--audit-inputs hash-only)"], [])
        if (snapshot := self.snapshot_problem(row["policy_sha256"])) is not None:
            return "different", [snapshot, *disagree], []
        try:
            self._decider(row["policy_sha256"])
        except AuditError as exc:  # an intact text this engine refuses: the others of a replay --all go on
            return ("different", disagree, []) if disagree else (
                "not-replayable", [d.message for d in exc.diagnostics], [])
        try:
            fresh = self._decider(row["policy_sha256"]).decide(record, as_of=row["as_of"])
        except InputError as exc:  # accepted when recorded, refused now: that is a difference
            return "different", [*(f"the stored input is now refused: {d.path}: {d.message}" for d in exc.diagnostics),
                                 *disagree], []
        _recorded_hash(stored, fresh, record)
        if stored.get("record") == SUMMARY:
            fresh = summarize(fresh)
        diffs, worded = _differences(stored, fresh)
        if diffs and stored.get("record") != SUMMARY:
            # maybe recorded by an engine whose messages rounded half to even (before 2026-12-06, or an
            # installation upgraded later): replayed as that engine wrote them; a real difference stays
            from ..decide.evaluate import HALF_EVEN_MESSAGES

            token = HALF_EVEN_MESSAGES.set(True)
            try:
                earlier = self._decider(row["policy_sha256"]).decide(record, as_of=row["as_of"])
            finally:
                HALF_EVEN_MESSAGES.reset(token)
            _recorded_hash(stored, earlier, record)
            diffs, worded = min((diffs, worded), _differences(stored, earlier), key=lambda d: len(d[0]))
        diffs = [*diffs, *disagree]
        return ("identical" if not diffs else "different"), diffs, worded

    def full_decision(self, row: Record) -> tuple[dict[str, Any], str | None]:
        """The recorded decision in full, and a note when it had to be re-derived.

        A summary record keeps the facts; its messages and evidence are re-derived from the stored
        policy text and input, under the recorded id and time, and checked against the facts.
        """
        from ..decide.evaluate import SUMMARY, summarize

        stored, record = self.stored(row)
        if stored.get("record") != SUMMARY:
            return stored, None
        if record is None:
            return stored, ("recorded as a summary with only the input's hash: the facts are shown; messages "
                            "and evidence cannot be re-derived")
        fresh = self._decider(row["policy_sha256"]).decide(record, as_of=row["as_of"])
        _recorded_hash(stored, fresh, record)
        diffs: list[str] = []
        _diff("", {k: v for k, v in stored.items() if k not in _VOLATILE},
              {k: v for k, v in summarize(fresh).items() if k not in _VOLATILE}, diffs)
        fresh.update({k: stored[k] for k in _VOLATILE})
        if diffs:
            return stored, ("recorded as a summary; re-deriving its evidence gives different facts, so only the "
                            "recorded facts are shown (see `audit replay`): " + "; ".join(diffs[:5]))
        return fresh, ("recorded as a summary (batch); messages and evidence re-derived from the stored policy "
                       "text and input, facts identical to the record")

    def policy_text(self, sha256: str) -> str:
        row = self.db.execute("SELECT text FROM policy_snapshot WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            raise AuditError([Diagnostic("missing-snapshot", f"policy snapshot {sha256[:12]} is missing")])
        return str(row[0])

    # verifying -------------------------------------------------------------------
    def head(self) -> tuple[int, str]:
        """(record number, hash) of the chain head: the last record as the store says it is."""
        return _chain_head(self.db, self.path)

    def verify(self, progress: Callable[[int], None] | None = None) -> tuple[int, Break | None]:
        """Walk the chain in record order; (records checked, first break or None).

        One streaming pass checks every record's content and link, holding one segment at a
        time; only a broken chain takes a second pass (without hashing) to say how it broke.
        ``progress(n)`` is told every few thousand records checked.
        """
        self._check_file()
        head_seq, head_hash = self.head()
        first_edit: Break | None = None
        link: tuple[int, Entry, Entry | None] | None = None  # where the first link broke, and the record before
        count, expected, before = 0, GENESIS, None
        for entry in self._entries(check=True):
            if entry[4] is not None and first_edit is None:
                first_edit = Break(entry[0], entry[1] or None, "edited", entry[4])
            if link is None and entry[2] != expected:
                link = (count, entry, before)
            expected, before = entry[3], entry
            count += 1
            if progress is not None and count % _PROGRESS_EVERY == 0:
                progress(_PROGRESS_EVERY)
        if progress is not None:
            progress(count % _PROGRESS_EVERY)
        link_break: Break | None = None
        if link is not None:
            link_break = self._link_break(*link)
        elif expected != head_hash:
            found = self._find_hash(head_hash)
            if found is not None and found[2] is not None:
                extra = found[2]
                link_break = Break(extra[0], extra[1], "inserted", "records after the chain head were added")
            else:
                last = before[0] if before is not None else 0
                link_break = Break(last + 1, None, "deleted", f"the chain head (record {head_seq}) is missing: "
                                   "records were removed at the end" + self._lost_segment(last + 1, head_seq))
        elif head_seq != (last := before[0] if before is not None else 0):
            # the head's hash is the last record's but its count is not: replay and export would say records are
            # missing, and the next decision would be numbered after records that never were
            link_break = Break(min(last, head_seq) + 1, None, "edited", f"the chain head counts {head_seq} records "
                               f"where the chain holds {last}: the head was changed behind the store's back")
        # At the same record a broken link says more (a record missing, inserted or moved inside a
        # segment also breaks the content of the records behind it, whose place is hashed).
        breaks = [b for b in (link_break, first_edit, self._edited_snapshot(), self._missing_snapshot())
                  if b is not None]
        if not breaks:  # a lookup derived from records moved or edited is stale too: the records are the news
            breaks = [b for b in (self._stale_lookup(),) if b is not None]
        return count, (min(breaks, key=lambda b: b.seq) if breaks else None)

    def _edited_snapshot(self) -> Break | None:
        """The first record decided under a stored policy text that no longer hashes to its sha256.

        The records' hashes cover the policy's sha256, not its text: a rule edited in the snapshot left the
        chain intact, and only a replay (which re-reads the text) would have shown it.
        """
        edited: Break | None = None
        for sha, policy_id, version, text in self.db.execute(
                "SELECT sha256, policy_id, version, text FROM policy_snapshot"):
            if hashlib.sha256(str(text).encode("utf-8")).hexdigest() == sha:
                continue
            first = self.db.execute("SELECT seq, decision_id FROM decision_record WHERE policy_sha256 = ? "
                                    "ORDER BY seq LIMIT 1", (sha,)).fetchone()
            seq, did = (int(first[0]), first[1]) if first is not None else (0, None)
            found = Break(seq, did, "edited", f"the stored text of policy {policy_id} {version} no longer matches its "
                          f"sha256 ({sha[:12]}): the decisions recorded under it cannot be shown to come from it")
            if edited is None or found.seq < edited.seq:
                edited = found
        return edited

    def version_texts(self) -> dict[tuple[str, str], list[tuple[str, str, int | None]]]:
        """Each policy version that decided under more than one text: its texts as (sha256, first used, first record),
        oldest first. Found from the snapshots, which are stored once per text."""
        found: dict[tuple[str, str], list[tuple[str, str, int | None]]] = {}
        for policy_id, version, sha, first_used in self.db.execute(
                "SELECT policy_id, version, sha256, first_used_at FROM policy_snapshot WHERE (policy_id, version) IN "
                "(SELECT policy_id, version FROM policy_snapshot GROUP BY policy_id, version HAVING COUNT(*) > 1) "
                "ORDER BY policy_id, version, first_used_at, sha256").fetchall():
            first = self._first_under(sha)
            found.setdefault((str(policy_id), str(version)), []).append(
                (str(sha), str(first_used), first[0] if first is not None else None))
        return found

    def snapshot_texts(self) -> set[str]:
        """The sha256 of every policy text decisions were recorded under."""
        return {str(r[0]) for r in self.db.execute("SELECT sha256 FROM policy_snapshot")}

    def edited_versions(self, new: Collection[str] | None = None) -> list[Diagnostic]:
        """A ``version-edited`` warning for each policy version that decided under more than one text (with ``new``:
        each one whose text among ``new``, the texts a run just stored, joined another).

        Every record names the text it was decided under, so the chain stays intact and each decision still
        replays; but "decided under 2.0.0" no longer says by which rules, and a change slipped in without a new
        version, a changelog or a diff.
        """
        found: list[Diagnostic] = []
        for (policy_id, version), texts in self.version_texts().items():
            shown = ", ".join(f"{sha[:12]} (first used {used}, {f'record {seq}' if seq is not None else 'no record'})"
                              for sha, used, seq in texts)
            if new is None:
                message = f"policy {policy_id} {version} decided under {len(texts)} different texts: {shown}"
            else:
                added = [sha for sha, _, _ in texts if sha in new]
                if not added:
                    continue
                message = (f"policy {policy_id} {version} has now decided under {len(texts)} different texts: {shown}; "
                           f"this run recorded its decisions under {', '.join(sha[:12] for sha in added)}")
            found.append(Diagnostic(
                "version-edited", f"{message}; its decisions replay, each under its own text, but '{version}' no "
                "longer names one set of rules", file=str(self.path), severity="warning",
                hint=f"restore the text {version} was published with and publish the change as a new version "
                     "(a changelog entry, `policy-engine diff` between them)"))
        return found

    def _stale_lookup(self) -> Break | None:
        """The first record a lookup the chain does not cover would miss: a batch segment's client index and id range
        (list and export --client, show ID), a policy snapshot's id and version (--policy-version). Each is derived
        from hashed data, so it is derived again here and compared."""
        found: Break | None = None

        def at(seq: int, detail: str) -> None:
            nonlocal found
            if found is None or seq < found.seq:
                found = Break(seq, None, "edited", detail)

        for first_seq, prefix, id_first, chain, clients in self.db.execute(
                "SELECT s.first_seq, s.id_prefix, s.id_first, s.chain, c.clients FROM segment s "
                "LEFT JOIN segment_clients c ON c.segment_id = s.id"):
            try:
                entries = orjson.loads(chain)
            except orjson.JSONDecodeError:
                continue  # the chain walk reports the segment itself
            span = f"records {first_seq}-{first_seq + len(entries) - 1}"
            if clients != _client_list(str(e[1]) for e in entries):
                at(first_seq, f"the client index of the batch segment of {span} does not match its records: `list "
                   "--client` and `export --client` would miss them")
            if (prefix, id_first) != (_id_locator([str(e[0]) for e in entries]) or (None, None)):
                at(first_seq, f"the decision-id range of the batch segment of {span} does not match its records: "
                   "`show ID` would not find them")
        for sha, policy_id, version in self.db.execute("SELECT sha256, policy_id, version FROM policy_snapshot"):
            first = self._first_under(sha, "AND (policy_id IS NOT ? OR policy_version IS NOT ?)", (policy_id, version))
            if first is not None:
                at(first[0], f"the stored policy text {str(sha)[:12]} is filed as {policy_id} {version}, and the "
                   "records decided under it say otherwise: queries by policy version would miss them")
        return found

    def _first_under(self, sha: str, also: str = "", args: tuple[Any, ...] = ()) -> tuple[int, str, str] | None:
        """(record number, policy id, version) of the first record decided under policy text ``sha`` (and ``also``),
        from the tables: the view expands every segment's chain."""
        rows = self.db.execute(
            f"SELECT seq, policy_id, policy_version FROM decision WHERE policy_sha256 = ? {also} UNION ALL "
            f"SELECT first_seq, policy_id, policy_version FROM segment WHERE policy_sha256 = ? {also} "
            "ORDER BY 1 LIMIT 1", (sha, *args, sha, *args)).fetchone()
        return None if rows is None else (int(rows[0]), str(rows[1]), str(rows[2]))

    def _check_file(self) -> None:
        """SQLite's own check of the file (its pages and indexes): a damaged index left the chain intact while list
        --client and export --client found nothing; the hashes cover the records, not the file around them."""
        found = [str(r[0]) for r in self.db.execute("PRAGMA quick_check(6)")]
        if found != ["ok"]:
            lines = [line for text in found for line in text.splitlines() if line and not line.startswith("***")]
            said = "; ".join(lines)[:400] or "SQLite's quick_check fails"
            raise AuditError([Diagnostic("store-failed", f"the SQLite file {self.path} is damaged: {said}",
                                         file=str(self.path), hint="keep it for an investigation; a copy made with "
                                         "`sqlite3 FILE .recover` may be verified again")])

    def _missing_snapshot(self) -> Break | None:
        """The first record decided under a policy whose stored text is gone: the records' hashes cover the policy's
        sha256, not the text, so the chain stayed intact while no decision under it could be shown or replayed."""
        missing = [r[0] for r in self.db.execute(
            "SELECT sha FROM (SELECT DISTINCT policy_sha256 AS sha FROM decision WHERE policy_sha256 IS NOT NULL "
            "UNION SELECT DISTINCT policy_sha256 FROM segment) WHERE sha NOT IN (SELECT sha256 FROM policy_snapshot)")]
        found: Break | None = None
        for sha in missing:
            first = self._first_under(sha)
            if first is None:
                continue
            at = Break(first[0], None, "deleted", f"the stored text of policy {first[1]} {first[2]} "
                       f"({str(sha)[:12]}) is missing: the decisions recorded under it cannot be shown or replayed")
            if found is None or at.seq < found.seq:
                found = at
        return found

    def _link_break(self, i: int, entry: Entry, before: Entry | None) -> Break:
        """How the chain broke where record ``entry`` (the i-th) no longer follows the one before it."""
        seq, did, prev = entry[0], entry[1], entry[2]
        found = (-1, None, next(self._entries(check=False), None)) if prev == GENESIS else self._find_hash(prev)
        if found is None:
            # The record it follows is gone. With no gap in the numbers, either the record before
            # was rehashed (this one still matches its hash) or one was taken out of a segment
            # (this one moved up a place, which its hash covers).
            if before is not None and before[0] == seq - 1 and entry[4] is None:
                return Break(before[0], before[1], "edited", "the record was changed and its hash recomputed: "
                             "the next record's link no longer matches")
            return Break(seq, did, "deleted", "the record before it in the chain is missing"
                         + self._lost_segment(before[0] + 1 if before is not None else 1, seq - 1))
        p, at, after = found
        if p < i - 1 and after is not None:
            # Two records claim to follow one: the one the chain goes on from (its head, or a record after it) is
            # the chain's; the other was put beside it (a forged copy appended at the end is not the genuine one).
            before_it = at[0] if at is not None else "genesis"
            continued = self._continued((after[3], entry[3]))
            if continued[after[3]] and not continued[entry[3]]:
                return Break(seq, did, "inserted", f"record {seq} is not in the chain: it claims to follow record "
                             f"{before_it}, which record {after[0]} follows in the chain")
            return Break(after[0], after[1], "inserted", f"record {after[0]} is not in the chain: record {seq} "
                         f"follows record {before_it}")
        return Break(seq, did, "reordered", "the record follows a record that comes later")

    def _continued(self, hashes: tuple[str, ...]) -> dict[str, bool]:
        """For each record hash, whether the chain goes on from that record: it is the head, or a record follows it
        (one pass over the records, for all of them)."""
        head = self.head()[1]
        out = {h: h == head for h in hashes}
        for e in self._entries(check=False):
            if e[2] in out:
                out[e[2]] = True
        return out

    def _find_hash(self, target: str) -> tuple[int, Entry | None, Entry | None] | None:
        """(position, record, the record after it) of the record whose stored hash is ``target``."""
        found: tuple[int, Entry] | None = None
        for k, entry in enumerate(self._entries(check=False)):
            if found is not None:
                return found[0], found[1], entry
            if entry[3] == target:
                found = (k, entry)
        return (found[0], found[1], None) if found is not None else None

    def _entries(self, check: bool) -> Iterator[Entry]:
        """Every record as (seq, decision_id, prev_hash, hash, problem) in record order; ``check``
        hashes each record's content (and each segment's data) to fill in ``problem``."""
        raw = self._connect()
        raw.text_factory = bytes  # a single record's hashed bytes are assembled by SQLite, not decoded and re-encoded
        raw.row_factory = sqlite3.Row
        try:
            content = " || x'1f' || ".join(f"coalesce({c}, char(0))" for c in _HASHED)
            singles = _single_entries(raw.execute(
                f"SELECT seq, decision_id, prev_hash, hash, prev_hash || x'0a' || {content} AS hashed "
                "FROM decision ORDER BY seq"), check)
            blocks = _segment_entries(raw.execute(
                f"SELECT {_SEGMENT_META}{', data' if check else ''} FROM segment ORDER BY first_seq"), self.path, check)
            # Two runs in record order: a segment's records come after the single records before it.
            pending = next(singles, None)
            for block in blocks:
                start = block[0][0] if block else None
                while pending is not None and start is not None and pending[0] < start:
                    yield pending
                    pending = next(singles, None)
                yield from block
            while pending is not None:
                yield pending
                pending = next(singles, None)
        finally:
            raw.close()

    def _lost_segment(self, lo: int, hi: int) -> str:
        """Names a batch segment as what went missing when records lo..hi were in one."""
        lost = self.db.execute(
            "SELECT count(*) FROM segment_clients c WHERE c.first_seq <= ? AND c.first_seq + c.rows > ? "
            "AND NOT EXISTS (SELECT 1 FROM segment s WHERE s.id = c.segment_id)", (hi, lo)).fetchone()[0]
        return f" (records {lo}-{hi} were in a batch segment that is missing)" if lost else ""


Entry = tuple[int, str, str, str, str | None]  # seq, decision_id, prev_hash, hash (as stored), problem


def _single_entries(rows: Iterable[Any], check: bool) -> Iterator[Entry]:
    """Each record with its own row; with ``check``, whether its content still matches its hash."""
    sha256 = hashlib.sha256
    for seq, did, prev, stored, hashed in rows:
        stored_text = stored.decode("ascii", "replace")
        problem = None if not check or sha256(hashed).hexdigest() == stored_text else \
            "the record's content no longer matches its hash"
        yield seq, did.decode("utf-8", "replace"), prev.decode("ascii", "replace"), stored_text, problem


def _segment_entries(segments: Iterable[Any], path: Path, check: bool) -> Iterator[list[Entry]]:
    """The records of each batch segment, a list per segment; with ``check``, whether each one's
    content still matches its hash and the segment's data its sha256."""
    sha256 = hashlib.sha256
    for meta in segments:
        sid, first_seq = meta["id"], meta["first_seq"]
        text = {k: meta[k].decode("utf-8") if meta[k] is not None else None
                for k in ("sha256", "policy_id", "policy_version", "policy_sha256", "batch_key", "recorded_at")}
        try:
            chain = _chain(meta, path)
        except AuditError:
            yield [(first_seq, "", "", f"unreadable segment {sid}", f"the chain of segment {sid} cannot be read")]
            continue
        if not check:
            yield [(first_seq + i, str(e[0]), str(e[5]), str(e[6]), None) for i, e in enumerate(chain)]
            continue
        # A segment's data must still hash to the name its records' hashes cover.
        changed = sha256(meta["data"]).hexdigest() != text["sha256"]
        head, tail = _segment_frame(text["policy_id"], text["policy_version"], text["policy_sha256"],
                                    text["batch_key"], text["recorded_at"], text["sha256"])
        block: list[Entry] = []
        for i, entry in enumerate(chain):
            did, cid, as_of, grade, input_hash, prev, stored = entry[:_CHAIN_FIELDS]
            problem = None
            if len(entry) != _CHAIN_FIELDS:
                problem = "the record carries fields of its own that its hash does not cover"
            elif not (type(did) is str and type(cid) is str and type(as_of) is str and type(grade) is str
                      and type(prev) is str and type(stored) is str
                      and (input_hash is None or type(input_hash) is str)):
                problem = "the record's fields are not what was written"
            elif _segment_entry_hash(prev, did, cid, as_of, grade, input_hash, head, tail, i) != stored:
                problem = "the record's content no longer matches its hash"
            elif changed:
                problem = f"its segment {sid} (input and facts) was changed"
            elif i == 0 and meta["rows"] != len(chain):
                problem = f"segment {sid} says it holds {meta['rows']} records; its chain has {len(chain)}"
            block.append((first_seq + i, str(did), str(prev), str(stored), problem))
        yield block


# filters ------------------------------------------------------------------------
def check_filters(store: AuditStore, policy_id: str | None = None, version: str | None = None,
                  grade: str | None = None, date_from: str | None = None, date_to: str | None = None) -> None:
    """Raise :class:`UsageError` (exit 2) for every filter that can only match nothing.

    A misspelt policy id, a grade no recorded policy has or an impossible date would otherwise list
    nothing with exit 0, the answer a reviewer takes for "no such decisions". Ids, versions and grades
    are checked against the policies the store has recorded decisions under (its snapshots).
    """
    from ..decide.inputs import parse_date

    problems: list[Diagnostic] = []
    for option, value in (("--from", date_from), ("--to", date_to)):
        if value is not None and parse_date(value) is None:
            problems.append(Diagnostic("bad-date", f"{option} {value!r} is not a date YYYY-MM-DD",
                                       path=option, hint="a calendar date such as 2025-06-30"))
    if date_from and date_to and not problems and date_from > date_to:
        problems.append(Diagnostic("bad-date", f"--from {date_from} is after --to {date_to}: no date is in between",
                                   path="--from"))
    snapshots = store.db.execute("SELECT policy_id, version, text FROM policy_snapshot").fetchall()
    if snapshots:  # an empty store matches nothing whatever the filter; there is nothing to compare with
        ids = sorted({s[0] for s in snapshots})
        if policy_id is not None and policy_id not in ids:
            problems.append(Diagnostic("unknown-policy", f"no decision of policy '{policy_id}' is recorded in "
                                       f"{store.path}", path="--policy",
                                       hint=did_you_mean(policy_id, ids) or f"recorded policies: {', '.join(ids)}"))
        versions = sorted({s[1] for s in snapshots if policy_id is None or s[0] == policy_id})
        if version is not None and version not in versions and (policy_id is None or policy_id in ids):
            problems.append(Diagnostic("unknown-version", f"no decision under version '{version}'"
                                       + (f" of '{policy_id}'" if policy_id else "") + f" is recorded in {store.path}",
                                       path="--policy-version",
                                       hint=did_you_mean(version, versions) or f"recorded: {', '.join(versions)}"))
        if grade is not None:
            grades = sorted({g for s in snapshots for g in _snapshot_grades(s[2])})
            if grade not in grades:
                problems.append(Diagnostic("unknown-grade", f"no recorded policy has the grade '{grade}'",
                                           path="--grade",
                                           hint=did_you_mean(grade, grades) or f"grades: {', '.join(grades)}"))
    if problems:
        raise UsageError(problems)


def _snapshot_grades(text: str) -> list[str]:
    """The grade ids of a stored policy text's scale (the text was valid when it was recorded)."""
    from ..policy.loader import load_yaml_text
    from ..policy.modules import split_bundle

    data = load_yaml_text(split_bundle(text)[0], "<snapshot>").data or {}
    scale = (data.get("classification") or {}).get("scale") or []
    return [str(g["id"]) for g in scale if isinstance(g, dict) and "id" in g]


# export ---------------------------------------------------------------------------
EXPORT_COLUMNS = ("seq", "decision_id", "client_id", "as_of", "policy_id", "policy_version", "policy_sha256", "grade",
                  "input_sha256", "input_json", "decision_json", "batch_key", "recorded_at", "prev_hash", "hash")


def export_records(store: AuditStore, rows: Iterable[Record], out: Path, full: bool = False) -> int:
    """Write ``rows`` to ``out``: .jsonl, each decision on one line (with ``full``, each record: the EXPORT_COLUMNS,
    the input and decision as objects); .parquet, one row a record (EXPORT_COLUMNS, typed the same in an empty
    export). Whole or not at all (:func:`~policy_engine.whole_files.replaced_whole`): a record the store cannot read
    (:meth:`AuditStore.stored_texts`) or a stop (SIGTERM and SIGHUP included) leaves ``out`` as it was. Returns the
    count."""
    from ..whole_files import replaced_whole

    with replaced_whole(out) as path:
        return _write_export(store, rows, path, out.suffix, full)


def _write_export(store: AuditStore, rows: Iterable[Record], path: Path, suffix: str, full: bool = False) -> int:
    if suffix == ".jsonl":
        from ..safetext import json_line

        n = 0
        with path.open("wb") as fh:
            for r in rows:
                texts = store.stored_texts(r)
                line = _full_line(r, texts) if full else _compact(texts[0])
                fh.write(json_line(line.encode("utf-8")) + b"\n")
                n += 1
        return n
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns: dict[str, list[Any]] = {c: [] for c in EXPORT_COLUMNS}
    for r in rows:
        texts = dict(zip(("decision_json", "input_json", "input_sha256"), store.stored_texts(r), strict=True))
        for c in EXPORT_COLUMNS:
            columns[c].append(texts[c] if c in texts else r[c])
    schema = pa.schema([(c, pa.int64() if c == "seq" else pa.string()) for c in EXPORT_COLUMNS])
    pq.write_table(pa.table(columns, schema=schema), path)
    return len(columns["seq"])


def _full_line(row: Record, texts: tuple[str, str | None, str | None]) -> str:
    """A record as one JSON object: what the Parquet export's columns hold, the input (null when only its hash was
    kept) and the decision as objects, so a reader of JSON Lines can check the chain and the input hash offline.
    The stored texts go in as they are (compacted): the input is the canonical JSON its hash is of."""
    decision, input_text, input_hash = texts
    parts = []
    for c in EXPORT_COLUMNS:
        if c == "decision_json":
            parts.append('"decision":' + _compact(decision))
        elif c == "input_json":
            parts.append('"input":' + ("null" if input_text is None else _compact(input_text)))
        else:
            value = input_hash if c == "input_sha256" else row[c]
            parts.append(f"{json.dumps(c)}:{json.dumps(value, ensure_ascii=False)}")
    return "{" + ",".join(parts) + "}"


def _compact(text: str) -> str:
    """A stored decision on one line: the engine stores compact JSON, but text edited behind the store's back may
    span lines (written again compactly; json keeps an integer beyond 64 bits as it is, orjson would not)."""
    if "\n" in text or "\r" in text:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    return text


def open_store(path: str | Path | None) -> AuditStore:
    return AuditStore(path)
