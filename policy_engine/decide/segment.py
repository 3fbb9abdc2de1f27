"""What a batch hands the decision store: segment sizes and each segment's own record fields.

Kept apart from ``audit`` (the store) and ``batch`` (which builds segments) so the two need not
import each other: ``batch`` builds :class:`SegmentRecords`, ``audit`` stores them and reads
segments back through ``record.segments``.
"""

from __future__ import annotations

import os

from ..diagnostics import Diagnostic, UsageError
from ..frozen import Frozen

CHUNK = 5000  # decisions per transaction (and per batch segment); POLICY_ENGINE_AUDIT_CHUNK overrides
CHUNK_VAR = "POLICY_ENGINE_AUDIT_CHUNK"
DEBTORS_PER_SEGMENT = 1000  # full debtor records per segment (each ~10-20 KB as JSON, held until stored)


def chunk_size() -> int:
    """Decisions per transaction: smaller chunks lose less to a crash, larger ones write a little faster."""
    raw = os.environ.get(CHUNK_VAR)
    if raw is None or raw == "":
        return CHUNK
    if not raw.isdigit() or not 1 <= int(raw) <= 1_000_000:
        raise UsageError([Diagnostic("bad-setting", f"{CHUNK_VAR}={raw!r} is not a whole number from 1 to 1000000")])
    return int(raw)


class SegmentRecords(Frozen, eq=False):
    """What a segment's records hold of their own, column-wise (the segment's data holds the rest).

    Record i's decision id is ``id_prefix + f"{id_first + i:012x}"`` (``_DecisionIds.block``), so a
    record is found by id through its segment, without an index entry of its own.
    """

    id_prefix: str
    id_first: int
    client_ids: list[str]
    as_ofs: list[str]
    grades: list[str]
    input_hashes: list[str | None] | None  # None: derived from the stored input when read
    recorded_at: str

    def __len__(self) -> int:
        return len(self.client_ids)


__all__ = ["CHUNK", "CHUNK_VAR", "DEBTORS_PER_SEGMENT", "SegmentRecords", "chunk_size"]
