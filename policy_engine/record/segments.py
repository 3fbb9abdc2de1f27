"""The decision store's segment codec, read side: a stored segment back to decision facts and client records.

A batch writes its decisions to the store as segments (Arrow IPC streams; ``batch.audit_segments``
builds them from a batch's result with the format named here); the store reads them back with
these functions, so that it needs nothing of the portfolio stage.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd

from ..decide.records import _clean, _nan_as_none, _record_builder

SEGMENT_FORMAT = "policy_engine.segment/1"  # an Arrow IPC stream, columns decision.* / input.* / json.*
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


def read_segment(data: bytes) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """(decision facts, input cells as read, metadata) of a stored segment."""
    import pyarrow as pa

    with pa.ipc.open_stream(pa.BufferReader(data)) as reader:
        table = reader.read_all()
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items()}
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
