"""Stage 6, record: an append-only, tamper-evident store of decisions, with the policy text kept for replay.

A SQLite database (one file, WAL mode) holds every decision as its canonical JSON, the input
(canonical JSON, or only its hash for privacy) and a reference to the exact policy text, stored
once by its sha256. Each record carries the hash of the record before it and its own hash over
its content: a hash chain. ``verify`` walks the chain and names the first broken record and how
it broke; ``replay`` re-decides a record from the stored policy text and input with today's
engine and reports any field that differs.

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

from .diagnostics import Diagnostic, PolicyEngineError

ENV_VAR = "POLICY_ENGINE_AUDIT_DB"
DEFAULT_PATH = "audit.db"
SCHEMA_VERSION = 1
APPLICATION_ID = 0x50454144  # 'PEAD': marks the file as a policy_engine decision store
GENESIS = "0" * 64
CHUNK = 5000

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
}

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


def record_hash(prev_hash: str, row: Mapping[str, Any]) -> str:
    """sha256 over the previous hash and the record's content (every stored column but seq and hash)."""
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + _content(row[k] for k in _HASHED)).hexdigest()


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
        """Record (decision, input record) pairs in chunked transactions; returns how many were written."""
        written = 0
        chunk: list[tuple[Mapping[str, Any], Any]] = []
        for item in items:
            chunk.append(item)
            if len(chunk) >= CHUNK:
                written += self._append_chunk(policy, chunk, inputs, batch_key)
                chunk = []
        if chunk:
            written += self._append_chunk(policy, chunk, inputs, batch_key)
        return written

    def _append_chunk(self, policy: Any, chunk: list[tuple[Mapping[str, Any], Any]], inputs: str,
                      batch_key: str | None) -> int:
        from .evaluate import canonical_json

        rows = []
        for decision, record in chunk:
            stored = {k: v for k, v in decision.items() if k != "trace"}
            rows.append({
                "decision_id": decision["decision_id"], "client_id": decision["client_id"],
                "as_of": decision["as_of"], "policy_id": decision["policy"]["id"],
                "policy_version": decision["policy"]["version"], "policy_sha256": decision["policy"]["sha256"],
                "grade": decision["classification"]["grade"], "input_sha256": decision["input_sha256"],
                "input_json": canonical_json(record).decode("utf-8") if inputs == "full" else None,
                "decision_json": orjson.dumps(stored).decode("utf-8"), "batch_key": batch_key,
                "recorded_at": decision["evaluated_at"],
            })
        self.db.execute("BEGIN IMMEDIATE")  # the write lock first: the head cannot move under us
        try:
            self._snapshot(policy, rows[0]["recorded_at"])
            seq, prev = self.db.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
            params = []
            for row in rows:
                seq += 1
                h = record_hash(prev, row)
                params.append((seq, *(row[k] for k in _HASHED), prev, h))
                prev = h
            self.db.executemany(
                f"INSERT INTO decision (seq, {', '.join(_HASHED)}, prev_hash, hash) "
                f"VALUES ({', '.join('?' * (len(_HASHED) + 3))})", params)
            self.db.execute("UPDATE chain_head SET seq = ?, hash = ? WHERE id = 1", (seq, prev))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return len(rows)

    def recorded_clients(self, batch_key: str) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT client_id FROM decision WHERE batch_key = ?", (batch_key,))}

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
        sql = "SELECT * FROM decision" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        yield from self.db.execute(sql, args)

    def get(self, ref: str) -> sqlite3.Row:
        row = self.db.execute("SELECT * FROM decision WHERE decision_id = ?", (ref,)).fetchone()
        if row is None and ref.isdigit():
            row = self.db.execute("SELECT * FROM decision WHERE seq = ?", (int(ref),)).fetchone()
        if row is None:
            raise AuditError([Diagnostic("no-such-decision", f"no decision '{ref}' in {self.path}",
                                         hint="give a decision_id or a record number (seq) from `audit list`")])
        return row

    def replay(self, row: sqlite3.Row) -> tuple[str, list[str]]:
        """Re-decide a stored record with today's engine: ('identical'|'different'|'not-replayable', diffs)."""
        from .compiler import compile_document
        from .evaluate import Decider
        from .loader import load_yaml_text

        if row["input_json"] is None:
            return "not-replayable", ["only the input's hash was stored (--audit-inputs hash-only)"]
        key = row["policy_sha256"]
        if key not in self._compiled:
            self._compiled[key] = Decider(compile_document(load_yaml_text(self.policy_text(key),
                                                                          f"<snapshot {key[:12]}>")))
        stored = orjson.loads(row["decision_json"])
        fresh = self._compiled[key].decide(orjson.loads(row["input_json"]), as_of=row["as_of"])
        diffs: list[str] = []
        _diff("", {k: v for k, v in stored.items() if k not in _VOLATILE},
              {k: v for k, v in fresh.items() if k not in _VOLATILE and k != "trace"}, diffs)
        return ("identical" if not diffs else "different"), diffs

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
        rows = cursor.execute(f"SELECT seq, prev_hash, hash, {', '.join(_HASHED)} FROM decision ORDER BY seq")
        position: dict[str, int] = {}
        walk: list[tuple[int, str, str, str]] = []  # seq, decision_id, prev_hash, hash
        first_edit: Break | None = None
        sha256 = hashlib.sha256
        for r in rows:
            seq, prev, stored = r[0], r[1], r[2].decode("ascii")
            if first_edit is None and sha256(prev + b"\n" + _content(r[3:])).hexdigest() != stored:
                first_edit = Break(seq, r[3].decode("utf-8"), "edited",
                                   "the record's content no longer matches its hash")
            position[stored] = len(walk)
            walk.append((seq, r[3].decode("utf-8"), prev.decode("ascii"), stored))
        raw.close()
        head_seq, head_hash = self.db.execute("SELECT seq, hash FROM chain_head WHERE id = 1").fetchone()
        link_break: Break | None = None
        expected = GENESIS
        for i, (seq, did, prev, h) in enumerate(walk):
            if prev != expected:
                p = position.get(prev) if prev != GENESIS else -1
                if p is None and i > 0 and walk[i - 1][0] == seq - 1:
                    link_break = Break(walk[i - 1][0], walk[i - 1][1], "edited",
                                       "the record was changed and its hash recomputed: the next record's link "
                                       "no longer matches")
                elif p is None:
                    link_break = Break(seq, did, "deleted", "the record before it in the chain is missing")
                elif p < i - 1:
                    ins_seq, ins_id = walk[p + 1][0], walk[p + 1][1]
                    link_break = Break(ins_seq, ins_id, "inserted",
                                       f"record {ins_seq} is not in the chain: record {seq} follows record "
                                       f"{walk[p][0] if p >= 0 else 'genesis'}")
                else:
                    link_break = Break(seq, did, "reordered", "the record follows a record that comes later")
                break
            expected = h
        if link_break is None and (walk[-1][3] if walk else GENESIS) != head_hash:
            if head_hash in position:
                extra = walk[position[head_hash] + 1]
                link_break = Break(extra[0], extra[1], "inserted", "records after the chain head were added")
            else:
                last = walk[-1] if walk else (0, None, "", "")
                link_break = Break(last[0] + 1, None, "deleted",
                                   f"the chain head (record {head_seq}) is missing: records were removed at the end")
        breaks = [b for b in (first_edit, link_break) if b is not None]
        return len(walk), (min(breaks, key=lambda b: b.seq) if breaks else None)
