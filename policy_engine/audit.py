"""Stage 6, record: an append-only, tamper-evident store of decisions, with the policy text kept for replay.

A SQLite database (one file, WAL mode) holds every decision, its input (or only the input's
hash, for privacy) and a reference to the exact policy text, stored once by its sha256. A single
decision is kept as its JSON record; a batch chunk as one segment (the inputs and the decisions'
facts column-wise, plus what its rows share) with a short row per decision pointing into it; the
view ``decision_record`` shows every record with all its fields. Each record carries the hash of
the record before it and its own hash over its content (a segment row's covers its segment's
sha256): a hash chain. ``verify`` walks the chain and names the first broken record and how it
broke; ``replay`` re-decides a record from the stored policy text and input with today's engine
and reports any field (for a batch record, any fact) that differs.

Appends take the write lock first (``BEGIN IMMEDIATE``), read the chain head and write, so
several processes can record at once without forking the chain. A batch commits in chunks:
each chunk is whole or absent, and a rerun of the same batch sees which clients are recorded.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from .diagnostics import Diagnostic, InputError, PolicyEngineError, UsageError

ENV_VAR = "POLICY_ENGINE_AUDIT_DB"
DEFAULT_PATH = "audit.db"
SCHEMA_VERSION = 2
APPLICATION_ID = 0x50454144  # 'PEAD': marks the file as a policy_engine decision store
GENESIS = "0" * 64
NUL = "\x00"  # stands for a null field in hashed content
CHUNK = 5000  # decisions per transaction (and per batch segment); POLICY_ENGINE_AUDIT_CHUNK overrides
CHUNK_VAR = "POLICY_ENGINE_AUDIT_CHUNK"


def chunk_size() -> int:
    """Decisions per transaction: smaller chunks lose less to a crash, larger ones write a little faster."""
    raw = os.environ.get(CHUNK_VAR)
    if raw is None or raw == "":
        return CHUNK
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise UsageError([Diagnostic("bad-setting", f"{CHUNK_VAR}={raw!r} is not a whole number from 1 to 1000000")])
    return int(raw)

_MIGRATIONS: dict[int, str] = {
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

# What a writer hands the store per decision: decision_id, client_id, as_of, grade, input_sha256,
# canonical input JSON, decision JSON, recorded_at. In a segment the last three-but-one may be None:
# the segment holds the input and the decision's facts.
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


def record_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """sha256 over the previous hash and the record's content (every stored column but seq and hash)."""
    ref = _segment_ref(row.get("segment_sha256"), row.get("segment_row"))
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + _content(row[k] for k in _HASHED) + ref).hexdigest()


_VOLATILE = ("decision_id", "evaluated_at", "engine_version")


def _diff(path: str, a: Any, b: Any, out: list[str]) -> None:
    """Field-by-field differences, as 'path: stored -> replayed'."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff(f"{path}.{k}" if path else k, a.get(k, "<absent>"), b.get(k, "<absent>"), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(f"{path}[{i}]", x, y, out)
    elif a != b:
        out.append(f"{path}: {a!r} -> {b!r}")


@dataclass
class Break:
    seq: int
    decision_id: str | None
    kind: str  # edited | deleted | inserted | reordered
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "decision_id": self.decision_id, "kind": self.kind, "detail": self.detail}


class AuditStore:
    """One decision store file; open it, append decisions, verify, query."""

    def __init__(self, path: str | Path | None = None, create: bool = True):
        self.path = Path(path) if path is not None else default_path()
        self._compiled: dict[str, Any] = {}
        self._segment_cache: dict[str, Any] = {}
        if not create and not self.path.exists():
            raise AuditError([Diagnostic("no-audit-store", f"no decision store at {self.path}",
                                         hint=f"decisions are recorded by decide and batch; or set {ENV_VAR}")])
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA busy_timeout = 30000")
            self._check_and_migrate()
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")
        except sqlite3.DatabaseError as exc:
            raise AuditError([Diagnostic("not-an-audit-store", f"{self.path} is not a decision store ({exc})",
                                         file=str(self.path), hint="point --audit-db at a decision store, "
                                         "or at a new file name")]) from None

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # schema ------------------------------------------------------------------
    def _check_and_migrate(self) -> None:
        app_id = self.db.execute("PRAGMA application_id").fetchone()[0]
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if app_id == 0 and version == 0 and tables:
            raise AuditError([Diagnostic("not-an-audit-store", f"{self.path} is a SQLite database but not a "
                                         "decision store", file=str(self.path))])
        if app_id not in (0, APPLICATION_ID):
            raise AuditError([Diagnostic("not-an-audit-store", f"{self.path} belongs to another application",
                                         file=str(self.path))])
        if version > SCHEMA_VERSION:
            raise AuditError([Diagnostic("audit-schema-too-new", f"{self.path} has store schema {version}; this "
                                         f"engine knows up to {SCHEMA_VERSION}", file=str(self.path),
                                         hint="upgrade policy_engine to read it")])
        if version == SCHEMA_VERSION:
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            version = self.db.execute("PRAGMA user_version").fetchone()[0]  # another process may have migrated
            for v in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[v].split(";"):
                    if statement.strip():
                        self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version = {v}")
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # writing -------------------------------------------------------------------
    def _snapshot(self, policy: Any, now: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO policy_snapshot (sha256, policy_id, version, text, first_used_at) "
                        "VALUES (?, ?, ?, ?, ?)", (policy.sha256, policy.id, policy.version, policy.text, now))

    def append(self, policy: Any, items: Iterable[tuple[Mapping[str, Any], Any]], inputs: str = "full",
               batch_key: str | None = None) -> int:
        """Record (full decision, input record) pairs in chunked transactions; returns how many were written."""
        from .evaluate import canonical_json

        def rows() -> Iterator[StoredRow]:
            for decision, record in items:
                stored = {k: v for k, v in decision.items() if k != "trace"}
                yield (decision["decision_id"], decision["client_id"], decision["as_of"],
                       decision["classification"]["grade"], decision["input_sha256"],
                       canonical_json(record) if inputs == "full" else None, orjson.dumps(stored),
                       decision["evaluated_at"])

        return self.append_rows(policy, rows(), batch_key)

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

    def append_segment(self, policy: Any, data: bytes, rows: list[StoredRow], batch_key: str | None = None) -> int:
        """Record one segment (a batch chunk: ``data`` holds row i's input and facts) and its rows, in one
        transaction: the segment is whole or absent."""
        return self._append_chunk(policy, rows, batch_key, data) if rows else 0

    def _append_chunk(self, policy: Any, chunk: list[StoredRow], batch_key: str | None,
                      segment: bytes | None = None) -> int:
        # The content hashed is _content() of the _HASHED columns (+ the segment reference),
        # assembled here from bytes already at hand.
        fixed = (policy.id, policy.version, policy.sha256)
        middle = b"\x1f".join(v.encode("utf-8") for v in fixed)
        key = b"\x00" if batch_key is None else batch_key.encode("utf-8")
        sha256 = hashlib.sha256
        seg_sha = sha256(segment).hexdigest() if segment is not None else None
        seg_ref = _segment_ref(seg_sha, "")
        self.db.execute("BEGIN IMMEDIATE")  # the write lock first: the head cannot move under us
        try:
            self._snapshot(policy, chunk[0][7])
            seq, prev = self.db.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
            segment_id = None
            if segment is not None:
                segment_id = self.db.execute(
                    "INSERT INTO segment (sha256, policy_id, policy_version, policy_sha256, batch_key, recorded_at, "
                    "first_seq, rows, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (seg_sha, *fixed, batch_key, chunk[0][7], seq + 1, len(chunk), segment)).lastrowid
            params = []
            middle_s, key_s = middle.decode("utf-8"), key.decode("utf-8")
            ref_s = seg_ref.decode("ascii")
            for i, (did, cid, as_of, grade, input_hash, input_json, decision_json, at) in enumerate(chunk):
                seq += 1
                if input_json is None and decision_json is None:  # a segment row: all short text, one encode
                    hashed = (f"{prev}\n{did}\x1f{cid}\x1f{as_of}\x1f{middle_s}\x1f{grade}\x1f"
                              f"{NUL if input_hash is None else input_hash}\x1f{NUL}\x1f{NUL}\x1f{key_s}\x1f{at}"
                              f"{ref_s}{i if ref_s else ''}").encode()
                else:  # the JSON documents are bytes already
                    hashed = b"".join((
                        f"{prev}\n{did}\x1f{cid}\x1f{as_of}\x1f".encode(), middle,
                        f"\x1f{grade}\x1f{NUL if input_hash is None else input_hash}\x1f".encode(),
                        b"\x00" if input_json is None else input_json, b"\x1f",
                        b"\x00" if decision_json is None else decision_json, b"\x1f", key, b"\x1f", at.encode(),
                        seg_ref + str(i).encode() if seg_ref else b""))
                h = sha256(hashed).hexdigest()
                if segment_id is not None:  # what the rows share lives in the segment
                    params.append((seq, did, cid, as_of, grade, input_hash, prev, h, segment_id, i))
                else:
                    params.append((seq, did, cid, as_of, *fixed, grade, input_hash,
                                   None if input_json is None else input_json.decode("utf-8"),
                                   None if decision_json is None else decision_json.decode("utf-8"), batch_key, at,
                                   prev, h))
                prev = h
            if segment_id is not None:
                self.db.executemany("INSERT INTO decision (seq, decision_id, client_id, as_of, grade, input_sha256, "
                                    "prev_hash, hash, segment_id, segment_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                    params)
            else:
                self.db.executemany(
                    f"INSERT INTO decision (seq, {', '.join(_HASHED)}, prev_hash, hash) "
                    f"VALUES ({', '.join('?' * (len(_HASHED) + 3))})", params)
            self.db.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(chunk)

    def recorded_clients(self, batch_key: str) -> set[str]:
        return {r[0] for r in self.db.execute(
            "SELECT client_id FROM decision WHERE batch_key = ? UNION ALL "
            "SELECT d.client_id FROM segment s "
            "JOIN decision d ON d.seq BETWEEN s.first_seq AND s.first_seq + s.rows - 1 WHERE s.batch_key = ?",
            (batch_key, batch_key))}

    # reading -------------------------------------------------------------------
    def query(self, client: str | None = None, policy_id: str | None = None, version: str | None = None,
              grade: str | None = None, date_from: str | None = None, date_to: str | None = None,
              limit: int | None = None) -> Iterator[sqlite3.Row]:
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
        sql = "SELECT * FROM decision_record" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return self.db.execute(sql, args)  # a cursor, not a generator: nothing left to finalise after close

    def get(self, ref: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM decision_record WHERE decision_id = ?", (ref,)).fetchone()
        if row is None and ref.isdigit():
            row = self.db.execute("SELECT * FROM decision_record WHERE seq = ?", (int(ref),)).fetchone()
        if row is None:
            raise AuditError([Diagnostic("no-such-decision", f"no decision '{ref}' in {self.path}",
                                         hint="give a decision_id or a record number (seq) from `audit list`")])
        return row

    def _decider(self, key: str) -> Any:
        from .compiler import compile_document
        from .evaluate import Decider
        from .loader import load_yaml_text

        if key not in self._compiled:
            self._compiled[key] = Decider(compile_document(load_yaml_text(self.policy_text(key),
                                                                          f"<snapshot {key[:12]}>")))
        return self._compiled[key]

    def stored(self, row: sqlite3.Row) -> tuple[dict[str, Any], Any]:
        """(the decision as recorded, the input record or None): from the row, or from its segment.

        A segment row's decision is its facts (``evaluate.summarize``'s shape) read back from the
        segment, with the input hash derived from the stored input when only the input was kept.
        """
        seg = row["segment_id"]
        if seg is None:
            record = orjson.loads(row["input_json"]) if row["input_json"] is not None else None
            return orjson.loads(row["decision_json"]), record
        from .batch import segment_input
        from .evaluate import SUMMARY, canonical_json

        facts, inputs, meta = self._segment(seg)
        i = row["segment_row"]
        record = segment_input(inputs, i, meta.get("text") == "1")
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

    def _segment(self, segment_id: int) -> tuple[list[dict[str, Any]], Any, dict[str, str]]:
        if self._segment_cache.get("id") != segment_id:
            from .batch import decision_facts, read_segment

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
            self._segment_cache = {"id": segment_id, "value": (list(decision_facts(facts)), inputs, meta)}
        return self._segment_cache["value"]

    def replay(self, row: sqlite3.Row) -> tuple[str, list[str]]:
        """Re-decide a stored record with today's engine: ('identical'|'different'|'not-replayable', diffs).

        A summary record (a batch's) is compared on its facts: the summary of the fresh decision.
        """
        from .evaluate import SUMMARY, summarize

        stored, record = self.stored(row)
        if record is None:
            return "not-replayable", ["only the input's hash was stored (--audit-inputs hash-only)"]
        try:
            fresh = self._decider(row["policy_sha256"]).decide(record, as_of=row["as_of"])
        except InputError as exc:  # accepted when recorded, refused now: that is a difference
            return "different", [f"the stored input is now refused: {d.path}: {d.message}" for d in exc.diagnostics]
        if stored.get("record") == SUMMARY:
            fresh = summarize(fresh)
        diffs: list[str] = []
        _diff("", {k: v for k, v in stored.items() if k not in _VOLATILE},
              {k: v for k, v in fresh.items() if k not in _VOLATILE and k != "trace"}, diffs)
        return ("identical" if not diffs else "different"), diffs

    def full_decision(self, row: sqlite3.Row) -> tuple[dict[str, Any], str | None]:
        """The recorded decision in full, and a note when it had to be re-derived.

        A summary record keeps the facts; its messages and evidence are re-derived from the stored
        policy text and input, under the recorded id and time, and checked against the facts.
        """
        from .evaluate import SUMMARY, summarize

        stored, record = self.stored(row)
        if stored.get("record") != SUMMARY:
            return stored, None
        if record is None:
            return stored, ("recorded as a summary with only the input's hash: the facts are shown; messages "
                            "and evidence cannot be re-derived")
        fresh = self._decider(row["policy_sha256"]).decide(record, as_of=row["as_of"])
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
    def verify(self) -> tuple[int, Break | None]:
        """Walk the chain in record order; (records checked, first break or None)."""
        raw = sqlite3.connect(self.path, timeout=30.0)
        raw.text_factory = bytes  # the hash is over bytes: skip decoding every field to str and back
        cursor = raw.cursor()
        # A segment's bytes must still hash to the name its rows carry (and their hashes cover).
        bad_segments = {sid for sid, sha, data in cursor.execute("SELECT id, sha256, data FROM segment")
                        if hashlib.sha256(data).hexdigest().encode("ascii") != sha}
        # A segment row's hashed bytes are its own short fields around what its segment holds
        # (assembled here from per-segment pieces); any other row's, and a segment row that
        # carries a field of its own, are assembled by SQLite, with the layout of record_hash.
        shared = {"policy_id", "policy_version", "policy_sha256", "batch_key", "recorded_at"}
        pieces: dict[int, tuple[bytes, bytes]] = {}
        for sid, sha, pid, ver, psha, key, at in cursor.execute(
                "SELECT id, sha256, policy_id, policy_version, policy_sha256, batch_key, recorded_at FROM segment"):
            pieces[sid] = (b"\x1f".join((pid, ver, psha)) + b"\x1f",
                           b"\x1f\x00\x1f\x00\x1f" + (key if key is not None else b"\x00") + b"\x1f" + at + b"\x1f"
                           + sha + b"\x1f")
        content = " || x'1f' || ".join(
            f"coalesce(d.{c}, s.{c}, char(0))" if c in shared else f"coalesce(d.{c}, char(0))" for c in _HASHED)
        own = " AND ".join(f"d.{c} IS NULL" for c in (*shared, "input_json", "decision_json"))
        rows = cursor.execute(
            "SELECT d.seq, d.prev_hash, d.hash, d.decision_id, d.client_id, d.as_of, d.grade, d.input_sha256, "
            f"d.segment_id, d.segment_row, CASE WHEN d.segment_id IS NOT NULL AND {own} THEN NULL ELSE "
            f"d.prev_hash || x'0a' || {content} || CASE WHEN s.sha256 IS NULL THEN '' "
            "ELSE x'1f' || s.sha256 || x'1f' || d.segment_row END END "
            "FROM decision d LEFT JOIN segment s ON s.id = d.segment_id ORDER BY d.seq")
        position: dict[bytes, int] = {}
        walk: list[tuple[int, bytes, bytes, bytes]] = []  # seq, decision_id, prev_hash, hash (as stored)
        first_edit: Break | None = None
        sha256 = hashlib.sha256
        for seq, prev, stored, did, cid, as_of, grade, input_hash, seg, seg_row, hashed in rows:
            if first_edit is None:
                if seg is not None and seg not in pieces:
                    first_edit = Break(seq, did.decode("utf-8"), "deleted",
                                       f"its segment {seg} (input and facts) is missing")
                else:
                    if hashed is None:
                        middle, tail = pieces[seg]
                        hashed = b"".join((prev, b"\n", did, b"\x1f", cid, b"\x1f", as_of, b"\x1f", middle, grade,
                                           b"\x1f", b"\x00" if input_hash is None else input_hash, tail,
                                           str(seg_row).encode("ascii")))
                    if sha256(hashed).hexdigest().encode("ascii") != stored:
                        first_edit = Break(seq, did.decode("utf-8"), "edited",
                                           "the record's content no longer matches its hash")
                    elif seg is not None and seg in bad_segments:
                        first_edit = Break(seq, did.decode("utf-8"), "edited",
                                           f"its segment {seg} (input and facts) was changed")
            position[stored] = len(walk)
            walk.append((seq, did, prev, stored))
        raw.close()
        head_seq, head_hash = self.db.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
        link_break: Break | None = None
        genesis = GENESIS.encode("ascii")
        expected = genesis
        for i, (seq, did, prev, h) in enumerate(walk):
            if prev != expected:
                p = position.get(prev) if prev != genesis else -1
                if p is None and i > 0 and walk[i - 1][0] == seq - 1:
                    link_break = Break(walk[i - 1][0], walk[i - 1][1].decode("utf-8"), "edited",
                                       "the record was changed and its hash recomputed: the next record's link "
                                       "no longer matches")
                elif p is None:
                    link_break = Break(seq, did.decode("utf-8"), "deleted",
                                       "the record before it in the chain is missing")
                elif p < i - 1:
                    ins_seq, ins_id = walk[p + 1][0], walk[p + 1][1].decode("utf-8")
                    link_break = Break(ins_seq, ins_id, "inserted",
                                       f"record {ins_seq} is not in the chain: record {seq} follows record "
                                       f"{walk[p][0] if p >= 0 else 'genesis'}")
                else:
                    link_break = Break(seq, did.decode("utf-8"), "reordered",
                                       "the record follows a record that comes later")
                break
            expected = h
        head = head_hash.encode("ascii")
        if link_break is None and (walk[-1][3] if walk else genesis) != head:
            if head in position:
                extra = walk[position[head] + 1]
                link_break = Break(extra[0], extra[1].decode("utf-8"), "inserted",
                                   "records after the chain head were added")
            else:
                last = walk[-1] if walk else (0, None, "", "")
                link_break = Break(last[0] + 1, None, "deleted",
                                   f"the chain head (record {head_seq}) is missing: records were removed at the end")
        breaks = [b for b in (first_edit, link_break) if b is not None]
        return len(walk), (min(breaks, key=lambda b: b.seq) if breaks else None)
