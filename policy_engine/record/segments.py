"""The decision store's segment codec: a stored segment back to decisions and client records.

A batch writes its decisions to the store as segments (Arrow IPC streams, zstd). A client table's
segment holds the decisions table's facts and the input cells column-wise (``batch.audit_segments``
builds it with the format named here). A debtor batch's segment holds each full decision record
and each input record as JSON text (:func:`decision_segment`): a debtor's record is nested, and
its decision names each exposure, so it is kept whole, compressed with its neighbours, instead of
one store row of JSON each (about 24 KB a debtor). The store reads both back with these functions,
so that it needs nothing of the portfolio stage.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd

from ..decide.records import _clean, _nan_as_none, _record_builder

SEGMENT_FORMAT = "policy_engine.segment/1"  # an Arrow IPC stream, columns decision.* / input.* / json.*
DECISION_SEGMENT_FORMAT = "policy_engine.decision-segment/1"  # columns decision (JSON) and record (JSON, or none)
SEGMENT_COMPRESSION = "zstd"  # zstd: a third smaller than LZ4 here, and the store is bound by what it writes


def _py_cells(series: pd.Series) -> list[Any]:
    """A column as Python values, None for null (lists of Arrow list columns as lists)."""
    if isinstance(series.dtype, pd.ArrowDtype) or isinstance(series.array, pd.arrays.ArrowExtensionArray):
        return list(series.array._pa_array.to_pylist())
    if series.dtype == np.float64:
        return list(_nan_as_none(series.to_numpy()).tolist())
    return list(series.to_numpy(dtype=object, na_value=None).tolist())


_FACT_COLUMNS = ("segment", "grade", "decided_by", "scorecard_grade", "score", "nonperforming", "floors", "warnings",
                 "actions", "suppressed_actions", "undetermined")


def decision_facts(decisions: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Each row of a decisions table as the facts part of ``evaluate.summarize`` (no ids, times or hashes)."""
    metric_cols = [c for c in decisions.columns if c.startswith("metric.")]
    names = [c[len("metric."):] for c in metric_cols]
    columns = [_py_cells(decisions[c]) for c in _FACT_COLUMNS]
    metric_rows = (zip(*[_py_cells(decisions[c]) for c in metric_cols], strict=True) if metric_cols
                   else itertools.repeat((), len(decisions)))
    for (segment, grade, decided_by, s_grade, score, nonperf, floors, warnings, actions, suppressed, und), metrics \
            in zip(zip(*columns, strict=True), metric_rows, strict=True):
        yield {
            "segment": segment, "metrics": dict(zip(names, metrics, strict=True)),
            "score": {"total": score, "grade": s_grade},
            "classification": {"grade": grade, "decided_by": decided_by, "scorecard_grade": s_grade,
                               "nonperforming": nonperf, "floors": floors},
            "warnings": warnings, "actions": actions, "suppressed_actions": suppressed, "undetermined": und,
        }


def decision_segment(group: list[tuple[dict[str, Any], Any]], inputs: str = "full", lists_optional: bool = False
                     ) -> tuple[bytes, Any]:
    """A segment of full decision records and their input records (``inputs`` "full"; "hash-only": the
    records' hashes only, in the chain), and its records' own fields. Each input is stored in the canonical form
    its hash is of (``lists_optional``: a debtor record's, see :func:`.canonical.canonical_json`); an input given
    as bytes is that form already, as the decider wrote it for the hash.

    The group's decision ids must be one block (``prefix + f"{first + i:012x}"``, as
    ``_DecisionIds.block`` gives them): a segment record's id is derived from its place, not stored.
    """
    import pyarrow as pa

    from ..decide.canonical import canonical_json
    from ..decide.evaluate import _CLOCK, ENGINE_VERSION
    from ..decide.segment import SegmentRecords

    ids = [d["decision_id"] for d, _ in group]
    prefix, first = ids[0][:-12], int(ids[0][-12:], 16)
    if ids != [f"{prefix}{first + i:012x}" for i in range(len(ids))]:
        raise ValueError("a decision segment's ids are one block of consecutive ids (_DecisionIds.block)")
    columns = {"decision": pa.array([orjson.dumps({k: v for k, v in d.items() if k != "trace"}).decode("utf-8")
                                     for d, _ in group], type=pa.string())}
    if inputs == "full":
        columns["record"] = pa.array([(r if type(r) is bytes else canonical_json(r, lists_optional)).decode("utf-8")
                                      for _, r in group], type=pa.string())
    table = pa.table(columns).replace_schema_metadata({"format": DECISION_SEGMENT_FORMAT,
                                                        "engine_version": ENGINE_VERSION})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression=SEGMENT_COMPRESSION)) \
            as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes(), SegmentRecords(
        prefix, first, [d["client_id"] for d, _ in group], [d["as_of"] for d, _ in group],
        [d["classification"]["grade"] for d, _ in group], [d["input_sha256"] for d, _ in group], _CLOCK.now())


def decision_groups(pairs: Iterable[tuple[dict[str, Any], Any, bool]],
                   write: Callable[[dict[str, Any]], None] | None = None) -> Iterator[list[tuple[dict[str, Any], Any]]]:
    """The (decision, record) pairs marked to store, in groups of a decision segment each, every group's
    decision ids stamped as one block (a segment derives its records' ids from their places; ids taken
    one by one may interleave with another thread's). ``write`` gets every decision, stored or not, in
    order, under the id it is stored with, before its group is stored."""
    from ..decide.segment import DEBTORS_PER_SEGMENT, chunk_size

    size = min(chunk_size(), DEBTORS_PER_SEGMENT)
    held: list[tuple[dict[str, Any], Any, bool]] = []
    kept = 0
    for item in pairs:
        held.append(item)
        kept += item[2]
        # A full group, or many held that a rerun skips: memory stays bounded whatever was recorded before.
        if kept == size or len(held) >= 4 * size:
            if group := _stamped(held, write):
                yield group
            held, kept = [], 0
    if held and (group := _stamped(held, write)):
        yield group


def _stamped(held: list[tuple[dict[str, Any], Any, bool]], write: Callable[[dict[str, Any]], None] | None
             ) -> list[tuple[dict[str, Any], Any]]:
    """The pairs of ``held`` to store, their decision ids one block; each decision of ``held`` to ``write``."""
    from ..decide.evaluate import _IDS

    group = [(d, r) for d, r, keep in held if keep]
    if group:
        prefix, first = _IDS.block(len(group))
        for i, (d, _) in enumerate(group):
            d["decision_id"] = f"{prefix}{first + i:012x}"
    if write is not None:
        for d, _, _ in held:
            write(d)
    return group


def read_segment(data: bytes) -> tuple[Any, Any, dict[str, str]]:
    """(decision facts, input cells as read, metadata) of a stored segment; of a decision segment,
    (each decision's JSON, each input record's JSON or None, metadata)."""
    import pyarrow as pa

    with pa.ipc.open_stream(pa.BufferReader(data)) as reader:
        table = reader.read_all()
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
    if meta.get("format") == DECISION_SEGMENT_FORMAT:
        records = table.column("record").to_pylist() if "record" in table.column_names else None
        return table.column("decision").to_pylist(), records, meta
    names = table.column_names
    # Facts as Arrow-backed columns (nulls as None, lists as lists); input cells as pandas read them.
    facts = table.select([c for c in names if c.startswith("decision.")]).to_pandas(types_mapper=pd.ArrowDtype)
    facts.columns = [c[len("decision."):] for c in facts.columns]
    inputs = table.select([c for c in names if c.startswith(("input.", "json.")) or c == "record"]).to_pandas()
    return facts, inputs, meta


def segment_input(inputs: pd.DataFrame, i: int, text: bool, keep_text: Iterable[str] = ("client_id",),
                  lists: Iterable[str] = ("financials",)) -> dict[str, Any] | None:
    """Row ``i`` of a segment's inputs as the client record (canonical form: the form hashed, which
    ``decide`` reads as it read the table's cells), or None when only hashes were kept.

    A JSON Lines record was stored whole (``record``); a table row is rebuilt from its cells as
    :func:`~policy_engine.portfolio.batch.row_records` built it (``keep_text``: the columns kept as text).
    """
    from ..decide.canonical import _canonical

    if len(inputs.columns) == 0:
        return None
    if "record" in inputs.columns:
        return dict(orjson.loads(inputs["record"].iat[i]))
    keep = set(keep_text) | {"client_id"}
    columns, cells = [], []
    for c, v in zip(inputs.columns, inputs.iloc[i].tolist(), strict=True):
        name = c.partition(".")[2]
        columns.append(name)
        if c.startswith("json."):
            v = orjson.loads(v)
            cells.append(None if name in keep and v == "" else v)
        elif name in keep:
            v = _clean(v)
            cells.append(None if v is None or v == "" else v if isinstance(v, str) else str(v))
        else:
            cells.append(_clean(v, text))
    return dict(_canonical(_record_builder(columns, lists)(tuple(cells))))
