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

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..decide.evaluate import Decider, ScopedDecider
from ..diagnostics import Diagnostic, InputError
from ..policy.compiler import CompiledPolicy
from ..policy.loader import JSONInputError, parse_json_text
from .frame import Prepared
from .scoped_vector import ScopedRun, evaluate_debtors, fill_elements
from .vector import dates_to_days

CHUNK_DEBTORS = 20_000  # debtors evaluated at a time: bounded memory on any file size


@dataclass
class Debtor:
    """One accepted line: what the record builder needs besides the vector results."""

    line: int  # 1-based
    client_id: str
    day: dt.date
    inputs: tuple[Any, ...]
    elements: dict[str, Any]
    input_hash: str


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

    @property
    def decided(self) -> int:
        return len(self.decisions)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    def records(self) -> Iterator[dict[str, Any]]:
        """Full decision records, in input order, equal to ``decide``'s for the same lines."""
        decider = Decider(self.policy)
        assert isinstance(decider, ScopedDecider)
        for start, run in self.runs:
            chunk = self.debtors[start:start + run.debtors.n]
            fill_elements(run, [d.elements for d in chunk])
            for i, d in enumerate(chunk):
                yield decider.assemble(d.client_id, d.day, d.inputs, d.elements, run.debtors.row(i), d.input_hash)


def read_debtors(policy: CompiledPolicy, path: Path, as_of: str | None = None
                 ) -> tuple[list[Debtor], list[dict[str, Any]], int]:
    """Every line of ``path``: accepted debtors, and rejects with their reasons (as ``decide`` gives them)."""
    decider = Decider(policy)
    assert isinstance(decider, ScopedDecider)
    debtors: list[Debtor] = []
    rejects: list[dict[str, Any]] = []
    first: dict[str, int] = {}
    n = 0

    def reject(line: int, cid: Any, problems: list[tuple[str, str, str]]) -> None:
        rejects.append({"row": line, "line": line, "client_id": cid if type(cid) is str and cid else None,
                        "problems": [{"field": f, "code": c, "message": m} for f, c, m in problems]})

    with path.open("rb") as fh:
        for n, raw in enumerate(fh, 1):
            if not raw.strip():
                reject(n, None, [("(line)", "bad-json", "empty line")])
                continue
            try:
                record = parse_json_text(raw)
            except JSONInputError as exc:
                reject(n, None, [(p or "(line)", code, msg) for code, p, msg in exc.problems])
                continue
            cid = record.get("client_id") if isinstance(record, dict) else None
            try:
                client_id, day, inputs, elements, digest = decider.read_record(record, as_of)
            except InputError as exc:
                reject(n, cid, [_problem(d) for d in exc.diagnostics])
                continue
            if client_id in first:
                reject(n, cid, [("client_id", "duplicate-id",
                                 f"duplicate client_id '{client_id}' (first at row {first[client_id]})")])
                continue
            first[client_id] = n
            debtors.append(Debtor(n, client_id, day, inputs, elements, digest))
    return debtors, rejects, n


def _problem(d: Diagnostic) -> tuple[str, str, str]:
    return d.path or "(record)", d.code, d.message


def run_scoped_batch(policy: CompiledPolicy, path: Path, as_of: str | None = None,
                     progress: Callable[[int], None] | None = None) -> ScopedBatch:
    """Read, check and decide every line of a JSON Lines file of debtor records; nothing is lost."""
    debtors, rejects, read = read_debtors(policy, path, as_of)
    frames: list[pd.DataFrame] = []
    exposure_frames: list[pd.DataFrame] = []
    runs: list[tuple[int, ScopedRun]] = []
    for start in range(0, len(debtors), CHUNK_DEBTORS):
        chunk = debtors[start:start + CHUNK_DEBTORS]
        run = evaluate_debtors(policy, [d.inputs for d in chunk], [d.day for d in chunk],
                               [d.elements for d in chunk])
        runs.append((start, run))
        frames.append(debtor_frame(policy, chunk, run))
        exposure_frames.append(exposure_frame(policy, chunk, run))
        if progress:
            progress(len(chunk))
    decisions = pd.concat(frames, ignore_index=True) if frames else debtor_frame(policy, [], None)
    exposures = pd.concat(exposure_frames, ignore_index=True) if exposure_frames else exposure_frame(policy, [], None)
    rejects.sort(key=lambda r: r["row"])
    result = ScopedBatch(policy, decisions, exposures, rejects, read, debtors, runs)
    if result.decided + result.rejected != result.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {read} read, {result.decided} decided, {result.rejected} rejected")
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
    exposure, decided_by = _deciding_exposure(policy, run)
    names = list(frame["decided_by"].cat.categories)
    made = np.not_equal(exposure, None)  # the debtors whose grade an exposure's own floor made
    extra = [x for x in dict.fromkeys(decided_by[made]) if x not in names]
    column = frame["decided_by"].cat.add_categories(extra) if extra else frame["decided_by"]
    column = column.to_numpy(dtype=object)
    column[made] = decided_by[made]
    frame["decided_by"] = pd.Categorical(column, categories=[*names, *extra])
    frame.insert(frame.columns.get_loc("decided_by") + 1, "decided_by_exposure", exposure)
    frame.insert(frame.columns.get_loc("decided_by_exposure") + 1, "exposures",
                 np.bincount(_graded_parent(policy, run), minlength=len(chunk)).astype(np.int64))
    return frame


def _graded_parent(policy: CompiledPolicy, run: ScopedRun) -> np.ndarray:
    part = policy.scoped
    assert part is not None
    if part.graded is None:
        return np.zeros(0, np.int64)
    return run.tables.levels[part.graded].parent


def _exposure_decided_by(policy: CompiledPolicy, run: ScopedRun) -> np.ndarray:
    """Per exposure, the rule that set its final grade: its own floor first, then the debtor's; else default."""
    part = policy.scoped
    assert part is not None
    t = run.tables
    m = len(t.rank)
    out = np.full(m, policy.base_decider, dtype=object)
    settled = np.zeros(m, bool)
    if not m:
        return out
    parent = t.levels[part.graded or ""].parent
    rules = [(f.id, policy.grade_ids.index(f.floor), c.data & c.valid) for f, c in zip(part.floors, t.floors,
                                                                                         strict=True)]
    rules += [(f.id, policy.grade_ids.index(f.floor), (c.data & c.valid)[parent])
              for f, c in zip(policy.floors, run.debtors.floors, strict=True)]
    for rid, rank, fired in rules:
        hit = fired & (t.rank == rank) & ~settled
        out[hit] = rid
        settled |= hit
    return out


def _deciding_exposure(policy: CompiledPolicy, run: ScopedRun) -> tuple[np.ndarray, np.ndarray]:
    """Per debtor, the exposure whose own floor made its grade (None when the debtor floors did) and its rule."""
    n = run.debtors.n
    exposure = np.full(n, None, dtype=object)
    decided_by = np.full(n, None, dtype=object)
    part = policy.scoped
    assert part is not None
    if part.graded is None or not len(run.tables.rank):
        return exposure, decided_by
    level = run.tables.levels[part.graded]
    keys = np.array([e["@key"] for e in level.elements], dtype=object)
    by = _exposure_decided_by(policy, run)
    g_rank = run.debtors.g_rank.astype(np.int64)
    made = (g_rank > run.tables.floor_rank)[level.parent] & (run.tables.rank == g_rank[level.parent])
    idx = np.flatnonzero(made)[::-1]  # the first such exposure of each debtor is written last
    exposure[level.parent[idx]] = keys[idx]
    decided_by[level.parent[idx]] = by[idx]
    return exposure, decided_by


def exposure_frame(policy: CompiledPolicy, chunk: list[Debtor], run: ScopedRun | None) -> pd.DataFrame:
    """One row per exposure: its debtor, final and own grade, deciding rule, fired floors and metrics."""
    from .batch import _list_column

    part = policy.scoped
    assert part is not None
    if run is None:
        run = evaluate_debtors(policy, [], [], [])
    t = run.tables
    grades = list(policy.grade_ids)
    if part.graded is None:
        return pd.DataFrame({"row": [], "client_id": [], "exposure_id": []})
    level = t.levels[part.graded]
    parent = level.parent
    m = level.n
    rows = np.array([d.line for d in chunk], dtype=np.int64)
    ids = np.array([d.client_id for d in chunk], dtype=object)
    own = [c.data & c.valid for c in t.floors]
    debtor = [(c.data & c.valid)[parent] for c in run.debtors.floors]
    fired = np.column_stack([*own, *debtor]) if own or debtor else np.zeros((m, 0), bool)
    names = [*(f.id for f in part.floors), *(f.id for f in policy.floors)]
    out: dict[str, Any] = {
        "row": rows[parent] if m else np.zeros(0, np.int64),
        "client_id": ids[parent] if m else np.zeros(0, object),
        "exposure_id": np.array([e["@key"] for e in level.elements], dtype=object),
        "grade": pd.Categorical.from_codes(t.rank.astype(np.int8), categories=grades),
        "own_grade": pd.Categorical.from_codes(t.own_rank.astype(np.int8), categories=grades),
        "decided_by": pd.Categorical(_exposure_decided_by(policy, run)),
        "nonperforming": np.array([g.nonperforming for g in policy.scale])[t.rank],
        "floors": _list_column(fired, names),
        "undetermined": _list_column(np.column_stack([~c.valid for c in t.floors]) if t.floors
                                     else np.zeros((m, 0), bool), [f.id for f in part.floors]),
    }
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
            text = np.asarray(c.data).astype("datetime64[D]").astype(str).astype(object)
            text[~c.valid] = None
            out[f"metric.{metric.name}"] = text
        else:
            out[f"metric.{metric.name}"] = np.where(c.valid, c.data, None)
    return pd.DataFrame(out)
