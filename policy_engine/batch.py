"""Portfolio batches: read a table, check every row, decide the good ones column-wise, account for all.

``rows read = decided + rejected``, always. The decisions table keeps the input order, one row per
decided client: grade, the rule that decided it, score, fired floors, warnings, actions (after
conflicts), undetermined rules and every metric. ``--records`` also writes the full decision
records (the same JSON ``decide`` prints) through the shared record builder.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .compiler import CompiledPolicy
from .diagnostics import Diagnostic, InputError, UsageError
from .evaluate import Decider, canonical_json
from .frame import Prepared, Problem, duplicate_ids, prepare
from .loader import JSONInputError, parse_json_text
from .vector import Col, VectorResults, days_to_date, evaluate_columns

READ_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".pq": "parquet",
                ".xlsx": "xlsx"}
WRITE_FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}
CHUNK_ROWS = 250_000


# -------------------------------------------------------------------- reading


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """A nested client record as one flat row (the inverse of ``synthetic.unflatten``)."""
    out: dict[str, Any] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, list) and prefix == "financials":
            for i, period in enumerate(value):
                if isinstance(period, dict):
                    for k, v in period.items():
                        out[f"financials[{i}].{k}"] = v
                else:
                    out[f"financials[{i}]"] = period
        else:
            out[prefix] = value

    walk("", record)
    return out


@dataclass
class Table:
    frame: pd.DataFrame
    text: bool  # cells are text (CSV): numbers, booleans and dates are parsed
    problems: list[Problem] = field(default_factory=list)  # rows unreadable before any column check
    positions: np.ndarray | None = None  # input row of each frame row, when some rows could not be read
    rows_read: int = 0


def read_table(path: Path, financials: Path | None = None) -> Table:
    """Read a client table in any supported format; rows that cannot even be parsed are problems."""
    fmt = READ_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError([Diagnostic("unknown-format", f"cannot read '{path.suffix}' files", file=str(path),
                                     hint="use .csv, .jsonl, .parquet or .xlsx")])
    if not path.exists():
        raise UsageError([Diagnostic("file-missing", f"no such file: {path}", file=str(path))])
    try:
        if fmt == "csv":
            # Keep text as text: 'NaN' or 'abc' in a number column must be reported, not read as null.
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[], encoding="utf-8")
            table = Table(frame, text=True, rows_read=len(frame))
        elif fmt == "parquet":
            frame = pd.read_parquet(path)
            table = Table(frame, text=False, rows_read=len(frame))
        elif fmt == "xlsx":
            # Cells as Excel holds them: a column of TRUE/FALSE with blanks must not turn into 0.0/1.0.
            frame = pd.read_excel(path, engine="openpyxl", dtype=object)
            table = Table(frame, text=False, rows_read=len(frame))
        else:
            table = _read_jsonl(path)
    except (UsageError, InputError):
        raise
    except Exception as exc:  # any reader's complaint (pyarrow, openpyxl, zipfile, csv) means: not a readable table
        raise InputError([Diagnostic("unreadable", f"cannot read the table: {type(exc).__name__}: {exc}",
                                     file=str(path), hint=f"is it really a {fmt} file?")]) from None
    if financials is not None:
        table.frame = join_financials(table.frame, read_table(financials).frame)
    return table


def _read_jsonl(path: Path) -> Table:
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    positions: list[int] = []
    n = 0
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                problems.append(Problem(n - 1, "(line)", "empty line", "bad-json"))
                continue
            try:
                record = parse_json_text(line)
            except JSONInputError as exc:
                problems.append(Problem(n - 1, "(line)", str(exc), "bad-json"))
                continue
            if not isinstance(record, dict):
                problems.append(Problem(n - 1, "(record)", "a client record is a JSON object", "wrong-type"))
                continue
            rows.append(flatten(record))
            positions.append(n - 1)
    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    # Typed format: keep Python objects exactly as parsed (no inference that would turn 1 into 1.0).
    frame = frame.astype(object) if len(frame.columns) else frame
    return Table(frame, text=False, problems=problems, positions=np.array(positions, dtype=np.int64), rows_read=n)


def join_financials(clients: pd.DataFrame, periods: pd.DataFrame) -> pd.DataFrame:
    """A long table of periods (client_id + fields, oldest first) as wide ``financials[k].x`` columns."""
    if "client_id" not in periods.columns:
        raise UsageError([Diagnostic("missing-column", "the financials table needs a client_id column")])
    periods = periods.copy()
    if "period_end" in periods.columns:
        periods = periods.sort_values(["client_id", "period_end"], kind="stable")
    periods["_k"] = periods.groupby("client_id", sort=False).cumcount()
    wide = periods.pivot(index="client_id", columns="_k")
    wide.columns = [f"financials[{k}].{f}" for f, k in wide.columns]
    wide = wide.reset_index()
    clients = clients.drop(columns=[c for c in clients.columns if str(c).startswith("financials[")])
    return clients.merge(wide, on="client_id", how="left", sort=False)


# --------------------------------------------------------------- evaluation


@dataclass
class BatchResult:
    policy: CompiledPolicy
    decisions: pd.DataFrame
    rejects: list[dict[str, Any]]
    rows_read: int
    vector: VectorResults | None = None
    prepared: Prepared | None = None
    frame: pd.DataFrame | None = None
    text: bool = False
    chunks: list[tuple[int, Prepared]] = field(default_factory=list)

    @property
    def decided(self) -> int:
        return len(self.decisions)

    @property
    def rejected(self) -> int:
        return len(self.rejects)


def _list_column(mask: np.ndarray, names: list[str]) -> pd.Series:
    """Per row, the names whose column is set (in ``names`` order), as an Arrow list column.

    Built from offsets and values without a Python loop over rows.
    """
    import pyarrow as pa

    rows, cols = np.nonzero(mask)  # row-major: each row's names come out in column order
    counts = np.bincount(rows, minlength=mask.shape[0]) if mask.shape[0] else np.zeros(0, np.int64)
    offsets = np.zeros(mask.shape[0] + 1, np.int32)
    np.cumsum(counts, out=offsets[1:])
    values = pa.array(np.array(names, dtype=object)[cols] if len(names) else np.zeros(0, object), type=pa.string())
    array = pa.ListArray.from_arrays(pa.array(offsets, type=pa.int32()), values)
    return pd.Series(pd.arrays.ArrowExtensionArray(array))


def decisions_frame(policy: CompiledPolicy, prep: Prepared, res: VectorResults,
                    row_numbers: np.ndarray) -> pd.DataFrame:
    """The decisions table: one row per decided client, the same facts as the decision records."""
    n = res.n
    grades = np.array(policy.grade_ids, dtype=object)
    decided_by = np.full(n, "scorecard", dtype=object)
    for r, c in reversed(list(zip(policy.floors, res.floors, strict=True))):
        hit = c.data & c.valid & (res.g_rank == r.rank) & (res.g_rank != res.s_rank)
        decided_by[hit] = r.id
    floors_mask = np.column_stack([c.data & c.valid for c in res.floors]) if res.floors else np.zeros((n, 0), bool)
    warn_mask = np.column_stack([c.data & c.valid for c in res.warnings]) if res.warnings else np.zeros((n, 0), bool)
    # Actions: most urgent first; one that conflicts with an action already kept is suppressed.
    order = sorted(range(len(policy.actions)), key=lambda j: (policy.actions[j].priority, policy.actions[j].id))
    kept = np.zeros((n, len(order)), bool)
    suppressed = np.zeros((n, len(order)), bool)
    ids_in_order = [policy.actions[j].id for j in order]
    pos = {aid: k for k, aid in enumerate(ids_in_order)}
    for k, j in enumerate(order):
        a = policy.actions[j]
        fired = res.actions[j].data & res.actions[j].valid
        clash = np.zeros(n, bool)
        for other in ids_in_order[:k]:
            o = policy.actions[order[pos[other]]]
            if a.id in o.excludes or o.id in a.excludes:
                clash |= kept[:, pos[other]]
        kept[:, k] = fired & ~clash
        suppressed[:, k] = fired & clash
    und_masks, und_names = [], []
    for r, c in zip(policy.floors, res.floors, strict=True):
        und_masks.append(~c.valid)
        und_names.append(r.id)
    for w, c in zip(policy.warnings, res.warnings, strict=True):
        und_masks.append(~c.valid)
        und_names.append(w.id)
    for a, c in zip(policy.actions, res.actions, strict=True):
        und_masks.append(~c.valid)
        und_names.append(a.id)
    for k, j in enumerate(order):
        rs = res.restructurings[j]
        if rs is not None:
            und_masks.append(kept[:, k] & ~rs.valid)
            und_names.append(policy.actions[j].id)
    und = np.column_stack(und_masks) if und_masks else np.zeros((n, 0), bool)
    segment = prep.segments if prep.segments is not None else np.full(n, None, dtype=object)
    days, day_codes = np.unique(prep.as_of_days, return_inverse=True)
    decided_names = ["scorecard", *[r.id for r in policy.floors]]
    decided_codes = pd.Categorical(decided_by, categories=list(dict.fromkeys(decided_names)))
    constant = np.zeros(n, np.int8)
    out: dict[str, Any] = {
        "row": row_numbers + 1,
        "client_id": prep.client_ids,
        # Repeated values as categoricals: codes plus a few strings (dictionary-encoded in Parquet).
        "as_of": pd.Categorical.from_codes(day_codes.reshape(-1).astype(np.int32) if n else np.zeros(0, np.int32),
                                           categories=days.astype("datetime64[D]").astype(str).tolist()),
        "policy_id": pd.Categorical.from_codes(constant, categories=[policy.id]),
        "policy_version": pd.Categorical.from_codes(constant, categories=[policy.version]),
        "policy_sha256": pd.Categorical.from_codes(constant, categories=[policy.sha256]),
        "segment": pd.Categorical(segment, categories=list(policy.segments) or None),
        "grade": pd.Categorical.from_codes(res.g_rank.astype(np.int8), categories=list(grades)),
        "decided_by": decided_codes,
        "scorecard_grade": pd.Categorical.from_codes(res.s_rank.astype(np.int8), categories=list(grades)),
        "score": res.score,
        "nonperforming": np.array([g.nonperforming for g in policy.scale])[res.g_rank],
        "floors": _list_column(floors_mask, [r.id for r in policy.floors]),
        "warnings": _list_column(warn_mask, [w.id for w in policy.warnings]),
        "actions": _list_column(kept, ids_in_order),
        "suppressed_actions": _list_column(suppressed, ids_in_order),
        "undetermined": _list_column(und, und_names),
    }
    for m, c in zip(policy.metrics, res.metrics, strict=True):
        if m.expr.type == "number":
            out[f"metric.{m.name}"] = np.where(c.valid, c.data.astype(float), np.nan)
        elif m.expr.type == "bool":
            out[f"metric.{m.name}"] = pd.array(np.where(c.valid, c.data, False), dtype="boolean")
            out[f"metric.{m.name}"][~c.valid] = pd.NA
        elif m.expr.type == "date":
            text = c.data.astype("datetime64[D]").astype(str).astype(object)
            text[~c.valid] = None
            out[f"metric.{m.name}"] = text
        else:
            out[f"metric.{m.name}"] = np.where(c.valid, c.data, None)
    return pd.DataFrame(out)


def run_batch(policy: CompiledPolicy, table: Table, as_of: str | None = None,
              progress: Callable[[int], None] | None = None, workers: int = 2,
              duplicates: list[Problem] | None = None, row_offset: int = 0) -> BatchResult:
    """Check and decide every row of ``table`` under ``policy``; nothing is lost.

    The table is cut into chunks decided on ``workers`` threads (numpy, pandas and Arrow release
    the GIL for most of the work); client-id duplicates are found over the whole table first
    (or given, when the table is one partition of a larger dataset). ``row_offset`` numbers the
    rows of a partition as rows of the whole dataset.
    """
    from concurrent.futures import ThreadPoolExecutor

    frame = table.frame
    positions = table.positions if table.positions is not None else np.arange(len(frame), dtype=np.int64)
    dups = duplicate_ids(frame) if duplicates is None else duplicates
    starts = list(range(0, len(frame), CHUNK_ROWS)) or [0]

    def work(start: int) -> tuple[int, Prepared, VectorResults, pd.DataFrame]:
        stop = min(start + CHUNK_ROWS, len(frame))
        part = frame.iloc[start:stop]
        local = [Problem(p.row - start, p.path, p.message, p.code) for p in dups if start <= p.row < stop]
        prep = prepare(policy, part, table.text, as_of, duplicates=local)
        res = evaluate_columns(policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)
        decided = decisions_frame(policy, prep, res, positions[prep.rows + start] + row_offset)
        if progress:
            progress(stop - start)
        return start, prep, res, decided

    if workers > 1 and len(starts) > 1:
        with ThreadPoolExecutor(workers) as pool:
            chunks = list(pool.map(work, starts))
    else:
        chunks = [work(s) for s in starts]
    decisions = pd.concat([c[3] for c in chunks], ignore_index=True)
    for c in ("as_of", "segment", "decided_by"):
        if c in decisions.columns and not isinstance(decisions[c].dtype, pd.CategoricalDtype):
            decisions[c] = decisions[c].astype("category")
    problems = [Problem(p.row + start, p.path, p.message, p.code) for start, prep, _, _ in chunks
                for p in prep.problems]
    rejects = _rejects(table, problems, positions, row_offset)
    single = chunks[0] if len(chunks) == 1 else None
    result = BatchResult(policy, decisions, rejects, table.rows_read, single[2] if single else None,
                         single[1] if single else None, frame, table.text)
    if len(chunks) > 1:
        result.chunks = [(start, prep) for start, prep, _, _ in chunks]
    if result.decided + result.rejected != result.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {result.rows_read} read, {result.decided} decided, "
                             f"{result.rejected} rejected")
    return result


def _rejects(table: Table, problems: list[Problem], positions: np.ndarray, row_offset: int = 0) -> list[dict[str, Any]]:
    by_row: dict[int, list[Problem]] = {}
    for p in table.problems:  # rows that could not be parsed at all (already input positions)
        by_row.setdefault(p.row, []).append(p)
    ids = table.frame["client_id"].to_numpy(dtype=object, na_value=None) if "client_id" in table.frame.columns \
        else np.full(len(table.frame), None, dtype=object)
    row_id: dict[int, Any] = {}
    for p in problems:
        pos = int(positions[p.row])
        by_row.setdefault(pos, []).append(p)
        v = ids[p.row]
        row_id[pos] = None if v is None or (isinstance(v, float) and math.isnan(v)) or v == "" else str(v)
    return [{"row": pos + 1 + row_offset, "client_id": row_id.get(pos),
             "problems": [{"field": p.path, "code": p.code, "message": p.message} for p in problems]}
            for pos, problems in sorted(by_row.items())]


# ---------------------------------------------------------- full records


def iter_records(result: BatchResult, decider: Decider) -> Iterator[dict[str, Any]]:
    """Full decision records for a batch (vector results, shared record builder), in input order."""
    for decision, _ in iter_record_pairs(result, decider):
        yield decision


def iter_record_pairs(result: BatchResult, decider: Decider) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(decision record, client record) for every decided row, in input order."""
    if result.frame is None:
        return
    parts = result.chunks or ([(0, result.prepared)] if result.prepared is not None else [])
    for start, prep in parts:
        res = result.vector if not result.chunks and result.vector is not None else evaluate_columns(
            result.policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)
        yield from _records(result, decider, prep, res, start)


def _records(result: BatchResult, decider: Decider, prep: Prepared, res_all: VectorResults,
             start: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    policy = result.policy
    assert result.frame is not None
    from .synthetic import unflatten

    cols = list(result.frame.columns)
    values = result.frame.to_numpy(dtype=object)
    result_text = result.text
    for i, pos in enumerate(prep.rows):
        inputs = tuple(_python_input(spec, prep.inputs[spec.name], i) for spec in policy.inputs)
        day = days_to_date(prep.as_of_days[i])
        row = {c: _clean(v, result_text) for c, v in zip(cols, values[pos + start], strict=True)}
        record = unflatten(row)
        digest = hashlib.sha256(canonical_json(record)).hexdigest()
        yield decider.build_record(str(prep.client_ids[i]), day, inputs, res_all.row(i), digest), record


def _clean(v: Any, text: bool = False) -> Any:
    """A cell as the JSON value it stands for (text cells typed the way JSON would carry them)."""
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.date().isoformat()
    if text and isinstance(v, str):
        if v == "":
            return None
        low = v.lower()
        if low in ("true", "false"):
            return low == "true"
        try:
            return int(v)
        except ValueError:
            pass
        try:
            f = float(v)
            return f if math.isfinite(f) else v
        except ValueError:
            return v
    return v


def _python_input(spec: Any, c: Col, i: int) -> Any:
    if c.present is not None:
        out = []
        for k in np.flatnonzero(c.present[i]):
            if not c.valid[i, k]:
                out.append(None)
            elif spec.type == "date":
                out.append(days_to_date(c.data[i, k]))
            else:
                out.append(float(c.data[i, k]))
        return out
    if not c.valid[i]:
        return None
    v = c.data[i]
    if spec.type == "date":
        return days_to_date(v)
    if spec.type == "boolean":
        return bool(v)
    if spec.type in ("number", "integer"):
        return float(v)
    return v


# ----------------------------------------------------------------- writing


def write_decisions(frame: pd.DataFrame, path: Path) -> None:
    fmt = WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UsageError([Diagnostic("unknown-format", f"cannot write '{path.suffix}' files", file=str(path),
                                     hint="use .parquet, .csv or .jsonl")])
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        # Plain Arrow types, no pandas metadata: any Parquet reader (Spark, DuckDB, pandas) reads it back.
        table = pa.Table.from_pandas(frame, preserve_index=False).replace_schema_metadata(None)
        pq.write_table(table, path)
    elif fmt == "csv":
        import pyarrow.compute as pc

        flat = frame.copy()
        for c in LIST_COLUMNS:
            flat[c] = pd.Series(pc.binary_join(pa_array(flat[c]), ";").to_numpy(zero_copy_only=False))
        flat.to_csv(path, index=False, lineterminator="\n")
    else:
        flat = frame.copy()
        for c in LIST_COLUMNS:
            flat[c] = pd.Series(pa_array(flat[c]).to_pylist(), dtype=object)
        flat.to_json(path, orient="records", lines=True, force_ascii=False, double_precision=15)


LIST_COLUMNS = ("floors", "warnings", "actions", "suppressed_actions", "undetermined")


def pa_array(series: pd.Series) -> Any:
    import pyarrow as pa

    values = series.array
    if isinstance(values, pd.arrays.ArrowExtensionArray):
        return pa.chunked_array([values._pa_array]) if not isinstance(values._pa_array, pa.ChunkedArray) \
            else values._pa_array
    return pa.array(list(series), type=pa.list_(pa.string()))


def write_rejects(rejects: list[dict[str, Any]], path: Path) -> None:
    if path.suffix.lower() == ".csv":
        rows = [{"row": r["row"], "client_id": r["client_id"],
                 "problems": "; ".join(f"{p['field']}: {p['message']}" for p in r["problems"])} for r in rejects]
        pd.DataFrame(rows, columns=["row", "client_id", "problems"]).to_csv(path, index=False, lineterminator="\n")
    else:
        with path.open("w", encoding="utf-8") as fh:
            for r in rejects:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def summary(result: BatchResult) -> dict[str, Any]:
    d = result.decisions
    n = max(result.decided, 1)

    def counts(values: Any) -> dict[str, dict[str, float]]:
        series = pd.Series(values, dtype=object).value_counts(sort=False)
        return {str(k): {"count": int(v), "share": round(int(v) / n, 6)} for k, v in sorted(series.items())}

    return {
        "policy": {"id": result.policy.id, "version": result.policy.version, "sha256": result.policy.sha256},
        "accounting": {"rows_read": result.rows_read, "decided": result.decided, "rejected": result.rejected},
        "by_grade": {g: {"count": int((d["grade"] == g).sum()), "share": round(int((d["grade"] == g).sum()) / n, 6)}
                     for g in result.policy.grade_ids},
        "by_warning": counts(_flatten_lists(d["warnings"])),
        "by_action": counts(_flatten_lists(d["actions"])),
        "by_industry": counts(d["segment"].tolist()) if result.policy.segment_by else {},
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _flatten_lists(series: pd.Series) -> np.ndarray:
    import pyarrow.compute as pc

    return pc.list_flatten(pa_array(series)).to_numpy(zero_copy_only=False)


def render_summary(s: dict[str, Any]) -> str:
    acc = s["accounting"]
    lines = [f"policy {s['policy']['id']} {s['policy']['version']}",
             f"rows read {acc['rows_read']:,} = decided {acc['decided']:,} + rejected {acc['rejected']:,}", "",
             "by grade:"]
    for g, v in s["by_grade"].items():
        lines.append(f"  {g:<18} {v['count']:>10,}  {v['share'] * 100:6.2f}%")
    for title, key in (("by warning:", "by_warning"), ("by action:", "by_action"), ("by industry:", "by_industry")):
        if s[key]:
            lines.append(title)
            for k, v in sorted(s[key].items(), key=lambda kv: -kv[1]["count"]):
                lines.append(f"  {k:<34} {v['count']:>10,}  {v['share'] * 100:6.2f}%")
    return "\n".join(lines) + "\n"
