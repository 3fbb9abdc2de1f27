"""Portfolios beyond one machine: a partitioned Parquet dataset decided partition by partition on Dask.

Each partition (one Parquet file of the dataset directory) is decided by a Dask task with the same
vector evaluator as ``batch``, and written as one Parquet file of the result directory. The
policy travels as its text and is compiled once per worker process; client-id duplicates are
found over the whole dataset first, from the ``client_id`` column alone. Rows keep their number
in the dataset (files in name order), so the result equals a local batch of the same rows.

Each row is decided under the version in force on its day, as everywhere (the days are read on
the client with the ids, and each task gets the versions it needs as text). Every decision is
recorded in the decision store by one writer, the client: a task writes its partition's store
segments next to its result, and the client appends them in partition order, so the hash chain
is the one a local batch would write; a rerun of the same dataset records only what is not yet
recorded. ``--records`` and ``--financials`` are refused: the records are in the store (``audit
export``), and periods come as wide ``financials[k].x`` columns of the partitions.

A policy with scopes reads JSON Lines partitions of debtor records, or partitions of long tables: each
a folder (``part-00000/debtors.parquet``, ``exposures.parquet``, ...) holding every row of its debtors,
decided by the local long-table batch (:mod:`.long_tables`) in one task. The client chooses the
version over the union of the partitions, rejects a debtor whose id an earlier partition holds, and
numbers rejects and orphans as rows of the union; the records are the ones a local batch of the union
writes, under its batch key (the nested records rebuilt from the tables, hashed in partition order).

Local default: a ``dask.distributed.LocalCluster`` with one single-threaded worker per core. Any
running scheduler works: ``--scheduler tcp://host:8786`` (workers need this package installed).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..diagnostics import Diagnostic, InputError, UsageError
from ..policy.compiler import CompiledPolicy
from ..safetext import how_ids_differ, id_key, near_id_key, repeated_id
from .frame import (
    Problem,
    duplicate_ids,
    exact_integer_ids,
    mark_stored_nans_in_frame,
    read_parquet_frame,
    refuse_inexact_ids,
)

if TYPE_CHECKING:
    from ..decide.ref import PolicyRef
    from ..policy.registry import Registry
    from .tables import BatchRun

_COMPILED: dict[str, CompiledPolicy] = {}


def partitions(dataset: Path) -> list[Path]:
    files = sorted(p for p in dataset.rglob("*.parquet") if p.is_file())
    if not files:
        raise UsageError([Diagnostic("empty-dataset", f"no .parquet files under {dataset}", file=str(dataset),
                                     hint="--engine dask reads a directory of Parquet files (a partitioned dataset)")])
    return files


def _policy_from_text(text: str, file: str) -> CompiledPolicy:
    import hashlib

    from ..policy.modules import compile_text

    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if key not in _COMPILED:
        _COMPILED[key] = compile_text(text, file)  # a bundle: the worker needs no module files
    return _COMPILED[key]


def _worker_ref(policy_text: str, policy_file: str, versions: dict[str, tuple[str, str]] | None,
                choices: dict[str | None, str | tuple[str, str, str | None]] | None) -> PolicyRef:
    """The client's version choice, rebuilt on a worker: one policy, or per day a version (by sha256)
    or the reason no version is in force."""
    from ..decide.ref import PolicyRef

    if choices is None or versions is None:
        return PolicyRef(_policy_from_text(policy_text, policy_file))
    compiled = {sha: _policy_from_text(text, file) for sha, (text, file) in versions.items()}

    def choose(day: str | None) -> CompiledPolicy:
        chosen = choices[day]
        if isinstance(chosen, str):
            return compiled[chosen]
        code, message, hint = chosen
        raise UsageError([Diagnostic(code, message, hint=hint)])

    return PolicyRef(next(iter(compiled.values())).id if compiled else "", choose=choose)


def decide_partition(policy_text: str, policy_file: str, source: str, target: str, row_offset: int,
                     duplicates: list[tuple[int, str]], as_of: str | None, audit_inputs: str | None = None,
                     skip: list[str] | None = None, versions: dict[str, tuple[str, str]] | None = None,
                     choices: dict[str | None, Any] | None = None) -> dict[str, Any]:
    """One Dask task: decide one partition file, write its result file (and its store segments, when
    ``audit_inputs`` says what to record), return its accounting.

    With ``choices`` (day -> a version's sha256 in ``versions``, or why none is in force), each row
    is decided under its day's version; else under the policy given as text.
    """
    from .batch import Table, audit_segments, write_decisions
    from .tables import decide_table, table_summary

    ref = _worker_ref(policy_text, policy_file, versions, choices)
    try:
        frame = exact_integer_ids(mark_stored_nans_in_frame(read_parquet_frame(source), source), source,
                                  ("client_id",))
    except InputError as exc:  # text that is not UTF-8, named by its column and rows
        return {"source": source, "unreadable": exc.diagnostics[0].message}
    except Exception as exc:  # any reader's complaint: this partition is not a readable table
        return {"source": source, "unreadable": f"{type(exc).__name__}: {exc}"}
    dups = [Problem(row, "client_id", message, "duplicate-id") for row, message in duplicates]
    run = decide_table(ref, Table(frame, text=False, rows_read=len(frame)), as_of, workers=1, duplicates=dups,
                       row_offset=row_offset)
    write_decisions(run.decisions if run.parts else frame.iloc[:0][[]], Path(target))
    segments = []
    if audit_inputs is not None:
        for part in run.parts:
            for k, (data, rec) in enumerate(audit_segments(part, audit_inputs, set(skip or ()))):
                path = f"{target}.audit-{part.policy.sha256[:12]}-{k:05d}"
                Path(path).write_bytes(data)
                segments.append((part.policy.sha256, path, (rec.id_prefix, rec.id_first, rec.client_ids, rec.as_ofs,
                                                            rec.grades, rec.input_hashes, rec.recorded_at)))
    s = table_summary(run)
    return {"source": source, "target": target, "rows_read": run.rows_read, "decided": run.decided,
            "rejected": run.rejected, "rejects": run.rejects, "by_grade": s["by_grade"],
            "by_warning": s["by_warning"], "by_action": s["by_action"], "by_undetermined": s["by_undetermined"],
            "segment_by": s["segment_by"], "by_segment": s["by_segment"],
            "versions": s["versions"], "segments": segments,
            "refused_params": {k: v["count"] for k, v in s["refused_action_params"]["by_action"].items()}}


@dataclass
class DaskRun:
    policy: CompiledPolicy
    parts: list[dict[str, Any]]
    recorded: int = 0
    already_recorded: int = 0

    @property
    def rows_read(self) -> int:
        return sum(p["rows_read"] for p in self.parts)

    @property
    def decided(self) -> int:
        return sum(p["decided"] for p in self.parts)

    @property
    def rejects(self) -> list[dict[str, Any]]:
        return [r for p in self.parts for r in p["rejects"]]

    @property
    def period_rejects(self) -> list[dict[str, Any]]:
        return []

    def summary(self) -> dict[str, Any]:
        import datetime as dt

        from .batch import refused_summary

        n = max(self.decided, 1)

        def merge(key: str) -> dict[str, dict[str, float]]:
            total: dict[str, int] = {}
            for p in self.parts:
                for k, v in p[key].items():
                    total[k] = total.get(k, 0) + int(v["count"])
            return {k: {"count": c, "share": round(c / n, 6)} for k, c in sorted(total.items())}

        versions: dict[str, dict[str, Any]] = {}
        for p in self.parts:
            for v in p["versions"]:
                versions.setdefault(v["sha256"], {**v, "decided": 0})["decided"] += v["decided"]
        used = sorted(versions.values(), key=lambda v: v["version"])
        policy = {"id": self.policy.id, "version": self.policy.version, "sha256": self.policy.sha256}
        if len(used) > 1:
            policy = {"id": self.policy.id, "version": ", ".join(v["version"] for v in used), "sha256": None}
        by_grade = merge("by_grade")
        refused: dict[str, int] = {}
        for p in self.parts:
            for k, c in p["refused_params"].items():
                refused[k] = refused.get(k, 0) + c
        return {
            "policy": policy, "versions": used,
            "accounting": {"rows_read": self.rows_read, "decided": self.decided, "rejected": len(self.rejects)},
            "by_grade": {g: by_grade.get(g, {"count": 0, "share": 0.0}) for g in self.policy.grade_ids},
            "by_warning": merge("by_warning"), "by_action": merge("by_action"),
            "by_undetermined": merge("by_undetermined"),
            "segment_by": self.policy.segment_by, "by_segment": merge("by_segment"),
            "refused_action_params": refused_summary(refused, self.decided),
            "partitions": len(self.parts),
            **({"exposures": _exposures(self.parts)} if any("exposures" in p for p in self.parts) else {}),
            **({"decided_without_elements": without}
               if (without := sum(p.get("decided_without_elements", 0) for p in self.parts)) else {}),
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


def _exposures(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The partitions' exposures by grade, summed (shares of all exposures)."""
    count = sum(p["exposures"]["count"] for p in parts if "exposures" in p)
    total: dict[str, int] = {}
    for p in parts:
        for g, v in p.get("exposures", {}).get("by_grade", {}).items():
            total[g] = total.get(g, 0) + int(v["count"])
    return {"count": count, "by_grade": {g: {"count": c, "share": round(c / max(count, 1), 6)}
                                         for g, c in total.items()}}


def _checked_options(dataset: Path, out: str | Path | None, financials: str | Path | None,
                     records: str | Path | None) -> Path:
    """The options ``--engine dask`` cannot honour, refused before anything is read."""
    if financials is not None:
        raise UsageError([Diagnostic("bad-option", "--financials is not supported with --engine dask",
                                     hint="give the periods as wide financials[k].x columns of the partitions")])
    if records is not None:
        raise UsageError([Diagnostic("bad-option", "--records is not supported with --engine dask",
                                     hint="the full records are in the decision store: `policy-engine audit export "
                                          "--out records.jsonl`")])
    if not dataset.is_dir():
        raise UsageError([Diagnostic("bad-option", f"--engine dask reads a directory of partitions; {dataset} "
                                                   "is not a directory", file=str(dataset))])
    if out is None:
        raise UsageError([Diagnostic("bad-option", "--engine dask needs --out DIRECTORY for the partitioned result")])
    return dataset


def _path(given: str | Path | None) -> Path | None:
    return Path(given) if given is not None else None


def run_dataset(policy: str | Path | CompiledPolicy | PolicyRef, dataset: str | Path, out: str | Path | None, *,
                version: str | None = None, registry: str | Path | Registry | None = None, as_of: str | None = None,
                financials: str | Path | None = None, records: str | Path | None = None,
                rejects: str | Path | None = None, scheduler: str | None = None, workers: int = 2,
                audit_db: str | Path | bool | None = None, audit_inputs: str = "full",
                progress: Callable[[int, int], None] | None = None, exposures: str | Path | None = None) -> BatchRun:
    """``batch --engine dask``: what :func:`policy_engine.run.run_batch` does for a file, for a partitioned
    dataset (options it cannot honour are refused, never ignored)."""
    from ..decide.ref import as_ref, check_day
    from .batch import check_outputs, write_rejects
    from .long_tables import absent_columns, with_absent_columns, with_data_gaps
    from .scoped_batch import misspelt_in_lines, scoped_versions
    from .tables import BatchRun

    dataset = _checked_options(Path(dataset), out, financials, records)
    check_outputs(dataset, None, {"--out": _path(out), "--rejects": _path(rejects),
                                  "--exposures-out": _path(exposures)}, folders=("--out", "--exposures-out"))
    check_day(as_of)
    ref = as_ref(policy, version, registry)

    scoped = scoped_versions(ref)
    if scoped and debtor_partitions(dataset):
        run = run_dask_debtors(ref, dataset, Path(out), Path(exposures) if exposures is not None else None, as_of,
                               scheduler, workers, audit_db=audit_db, audit_inputs=audit_inputs, progress=progress)
        if rejects is not None:
            write_rejects(run.rejects, Path(rejects))
        outcome = BatchRun(run, run.summary(), run.recorded, run.already_recorded,
                           misspelt=misspelt_in_lines(ref, debtor_partitions(dataset), as_of))
        with_data_gaps(outcome.summary, scoped[0])  # names the graded scope's table, as the local run does
        return _with_not_in_force(outcome, ref, Path(out))
    pinned = ref.pinned
    if scoped and _long_dataset(dataset, pinned is not None and pinned.scoped is not None):
        long = run_dask_long(ref, dataset, Path(out), Path(exposures) if exposures is not None else None, as_of,
                             scheduler, workers, audit_db=audit_db, audit_inputs=audit_inputs, progress=progress)
        if rejects is not None:
            write_rejects(long.rejects, Path(rejects))
        outcome = BatchRun(long, long.summary(), long.recorded, long.already_recorded,
                           misspelt=_misspelt_partitions(long.policy, long_partitions(dataset)))
        with_absent_columns(outcome.summary, list(dict.fromkeys(
            pair for folder in long_partitions(dataset) for pair in absent_columns(long.policy, folder))))
        with_data_gaps(outcome.summary, long.policy)
        return _with_not_in_force(outcome, ref, Path(out))
    if not scoped and _long_dataset(dataset, False):  # as the local run refuses a folder of long tables
        raise UsageError([Diagnostic("scoped-policy-required", f"policy {pinned.key if pinned else ref.name} declares "
                                     "no scopes: a dataset of long tables (debtors, exposures, ...) is decided under "
                                     "a policy with scopes", file=str(dataset),
                                     hint="for a policy without scopes give a directory of Parquet files, one client "
                                          "a row")])
    if scoped and pinned is not None:
        raise UsageError([Diagnostic(
            "scoped-policy-in-table", f"no .jsonl partition under {dataset}: policy {ref.pinned.key} declares scopes, "
            "and a Parquet row cannot hold a debtor with several exposures", file=str(dataset),
            hint="give a directory of JSON Lines files, one debtor record a line (each file a partition)")])
    if exposures is not None:
        raise UsageError([Diagnostic("bad-option", "--exposures-out: the dataset holds no debtor records (a policy "
                                                   "with scopes over .jsonl partitions)", path="--exposures-out")])
    run = run_dask(ref, dataset, Path(out), as_of, scheduler, workers, audit_db=audit_db, audit_inputs=audit_inputs,
                   progress=progress)
    if rejects is not None:
        write_rejects(run.rejects, Path(rejects))
    return _with_not_in_force(BatchRun(run, run.summary(), run.recorded, run.already_recorded,
                                       misspelt=_misspelt_table(run.policy, dataset)), ref, Path(out))



def _with_not_in_force(outcome: BatchRun, ref: PolicyRef, out_dir: Path) -> BatchRun:
    """The pinned-version count a local batch gives (``not_in_force``), from the as-of column of the parts
    written: the decisions themselves stay on disk."""
    if ref.pinned is None:
        return outcome
    import pyarrow.parquet as pq

    from .tables import with_not_in_force

    days = [d for part in sorted(out_dir.glob("part-*.parquet"))
            for d in pq.read_table(part, columns=["as_of"]).column("as_of").to_pylist()]
    with_not_in_force(outcome, ref, days)
    return outcome

def _misspelt_table(policy: CompiledPolicy, dataset: Path) -> list[tuple[str, str, str]]:
    """The misspelt columns of a dataset of client rows (its first partition's schema), as a local run names a
    table's."""
    import pyarrow.parquet as pq

    from ..decide.inputs import misspelt_fields

    try:
        names = pq.read_schema(partitions(dataset)[0]).names
    except (OSError, ValueError):
        return []
    return [(policy.id, given, meant) for given, meant in misspelt_fields(policy, names)]


@dataclass
class _Plan:
    """What the client knows before any task runs: partitions, their rows, duplicates, versions, skips."""

    files: list[Path]
    counts: list[int]
    offsets: list[int]
    duplicates: list[Any]  # per partition: [(row, message)] of a table; {line: message} of debtor lines
    policies: dict[str, CompiledPolicy]  # by sha256: every version some row is decided under
    choices: dict[str | None, Any] | None  # day -> sha256 or why none is in force (None: one pinned policy)
    keys: pd.DataFrame  # client_id (and as_of) of every row


def run_dask(policy: CompiledPolicy | PolicyRef, dataset: Path, out_dir: Path, as_of: str | None = None,
             scheduler: str | None = None, workers: int = 2, *, audit_db: str | Path | bool | None = False,
             audit_inputs: str = "full", progress: Callable[[int, int], None] | None = None) -> DaskRun:
    """Decide every partition of ``dataset`` on a Dask cluster, writing ``out_dir/part-NNNNN.parquet``, and
    record every decision in the store ``audit_db`` (False: not recorded; None: the default store)."""
    from ..decide.ref import PolicyRef
    from ..record.audit import open_store
    from .tables import batch_key

    ref = policy if isinstance(policy, PolicyRef) else PolicyRef(policy)
    plan = _plan(ref, dataset, as_of)
    store = None if audit_db is False else open_store(None if audit_db is None or audit_db is True else Path(audit_db))
    try:
        recording = store is not None
        batch_keys = {sha: batch_key(p, plan.files, as_of) for sha, p in plan.policies.items()} if recording else {}
        skips = _recorded(plan, store, batch_keys) if store is not None else [[] for _ in plan.files]
        parts = _run_tasks(plan, out_dir, as_of, scheduler, workers, None if store is None else audit_inputs, skips,
                           progress)
        run = DaskRun(next(iter(plan.policies.values())) if plan.policies else ref.for_day(as_of), parts)
        if run.decided + len(run.rejects) != run.rows_read:
            raise AssertionError("accounting broken across partitions")
        if store is not None:  # one writer, in partition order: the chain a local batch would write
            run.already_recorded = sum(len(s) for s in skips)
            for sha, p in plan.policies.items():
                run.recorded += store.append_segments(p, _stored_segments(parts, sha), batch_keys[sha])
    finally:
        if store is not None:
            store.close()
    return run


def _plan(ref: PolicyRef, dataset: Path, as_of: str | None) -> _Plan:
    """Row counts (every file must be readable Parquet), duplicates across partitions, each day's version."""
    import pyarrow.parquet as pq

    from .tables import row_days

    files = partitions(dataset)
    counts = []
    unreadable = []
    for f in files:
        try:
            counts.append(pq.ParquetFile(f).metadata.num_rows)
        except Exception as exc:  # not Parquet, truncated, unreadable: say which file, decide nothing
            unreadable.append(Diagnostic("unreadable", f"cannot read the partition: {type(exc).__name__}: {exc}",
                                         file=str(f), hint="every .parquet file under the dataset is a partition"))
    if unreadable:
        raise InputError(unreadable)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist()
    # The ids (for duplicates across partitions) and the days (for the version of each row), from those columns alone.
    pinned = ref.pinned
    wanted = ["client_id"] + ([] if as_of is not None or pinned is not None else ["as_of"])
    keys = pd.concat([_columns(f, wanted, c) for f, c in zip(files, counts, strict=True)], ignore_index=True)
    per_part: list[list[tuple[int, str]]] = [[] for _ in files]
    for problem in duplicate_ids(keys):
        k = int(np.searchsorted(offsets, problem.row, side="right") - 1)
        per_part[k].append((problem.row - offsets[k], problem.message))
    if pinned is not None:
        return _Plan(files, counts, offsets, per_part, {pinned.sha256: pinned}, None, keys)
    policies, choices = _choices(ref, dict.fromkeys(row_days(keys, as_of).tolist()))
    return _Plan(files, counts, offsets, per_part, policies, choices, keys)


def _choices(ref: Any, days: Any) -> tuple[dict[str, CompiledPolicy], dict[str | None, Any]]:
    """The version each day selects (its sha256), or why none does (code, message, hint): the workers decide each
    row under its day's version, or reject it with that reason, without a registry of their own."""
    policies: dict[str, CompiledPolicy] = {}
    choices: dict[str | None, Any] = {}
    for day in days:
        chosen = ref.for_day_or_refusal(day)
        if isinstance(chosen, UsageError):
            d = chosen.diagnostics[0]
            choices[day] = (d.code, d.message, d.hint)
        else:
            policies[chosen.sha256] = chosen
            choices[day] = chosen.sha256
    return policies, choices


def _recorded(plan: _Plan, store: Any, batch_keys: dict[str, str]) -> list[list[str]]:
    """Per partition, its clients an earlier run of the same dataset recorded (a rerun skips them)."""
    recorded = set().union(*(store.recorded_clients(k) for k in batch_keys.values())) if batch_keys else set()
    if not recorded:
        return [[] for _ in plan.files]
    ids = plan.keys["client_id"].astype(str).to_numpy()
    return [sorted(set(ids[lo:lo + n].tolist()) & recorded)
            for lo, n in zip(plan.offsets, plan.counts, strict=True)]


def _run_tasks(plan: _Plan, out_dir: Path, as_of: str | None, scheduler: str | None, workers: int,
               audit_inputs: str | None, skips: list[list[str]],
               progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    """One task per partition on the cluster (a LocalCluster unless a scheduler is given); their accounting."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part-*"):
        old.unlink()  # a rerun replaces the result, never mixes two
    n = len(plan.files)
    targets = [str(out_dir / f"part-{i:05d}.parquet") for i in range(n)]
    parts = _on_cluster(plan, scheduler, workers, progress, lambda client, bundle, file, texts: client.map(
        decide_partition, [bundle] * n, [file] * n, [str(f) for f in plan.files], targets, plan.offsets,
        plan.duplicates, [as_of] * n, [audit_inputs] * n, skips, [texts] * n, [plan.choices] * n, pure=False))
    failed = [Diagnostic("unreadable", f"cannot read the partition: {p['unreadable']}", file=p["source"])
              for p in parts if "unreadable" in p]
    if failed:
        raise InputError(failed)
    return parts


def _columns(path: Path, wanted: list[str], rows: int) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = pq.read_schema(path).names
    present = [c for c in wanted if c in names]
    frame = exact_integer_ids(mark_stored_nans_in_frame(read_parquet_frame(path, columns=present), path), path,
                              ("client_id",)) if present else pd.DataFrame(index=range(rows))
    if "client_id" in frame.columns:
        refuse_inexact_ids(frame["client_id"], "client_id", path)
    for c in wanted:
        if c not in frame.columns:
            frame[c] = None
    return frame


def _stored_segments(parts: list[dict[str, Any]], sha: str) -> Any:
    """The segments the tasks wrote for one version, read back (and removed) in partition order."""
    from ..decide.segment import SegmentRecords

    for p in parts:
        for seg_sha, path, fields in p["segments"]:
            if seg_sha == sha:
                data = Path(path).read_bytes()
                Path(path).unlink()
                yield data, SegmentRecords(*fields)



# ------------------------------------------------------- debtors: JSON Lines partitions


def debtor_partitions(dataset: Path) -> list[Path]:
    """The JSON Lines files of a dataset of debtor records, in name order (each a partition)."""
    return sorted(p for p in dataset.rglob("*") if p.is_file() and p.suffix.lower() in (".jsonl", ".ndjson"))


def decide_debtor_partition(policy_text: str, policy_file: str, source: str, target: str,
                            exposures_target: str | None, row_offset: int, duplicates: dict[int, str],
                            as_of: str | None, audit_inputs: str | None = None, skip: list[str] | None = None,
                            versions: dict[str, tuple[str, str]] | None = None,
                            choices: dict[str | None, Any] | None = None) -> dict[str, Any]:
    """One Dask task: decide one JSON Lines partition of debtor records (each line under its day's version),
    write its decisions (and exposures) file, and, when recording, its store entries next to it."""
    import orjson

    from .batch import audit_segments, write_decisions
    from .scoped_batch import decide_debtor_file

    ref = _worker_ref(policy_text, policy_file, versions, choices)
    run = decide_debtor_file(ref, Path(source), as_of, workers=1, duplicates=duplicates)
    decisions = run.decisions.copy()
    decisions["row"] = decisions["row"] + row_offset  # rows of the whole dataset, files in name order
    write_decisions(decisions, Path(target))
    if exposures_target is not None and len(run.exposures):  # a partition without exposures writes no part
        exposures = run.exposures.copy()
        exposures["row"] = exposures["row"] + row_offset
        write_decisions(exposures, Path(exposures_target))
    entries: list[tuple[str, str, Any]] = []  # (version sha256, file, segment fields or None for full records)
    if audit_inputs is not None:
        skipped = set(skip or ())
        for k, part in enumerate(run.scoped):
            path = f"{target}.records-{part.policy.sha256[:12]}-{k:03d}"
            with open(path, "wb") as fh:
                for d, r in zip(part.records(), part.inputs(), strict=True):
                    if d["client_id"] not in skipped:
                        fh.write(orjson.dumps([d, r]) + b"\n")
            entries.append((part.policy.sha256, path, None))
        for part in run.table.parts if run.table is not None else []:
            for k, (data, rec) in enumerate(audit_segments(part, audit_inputs, skipped)):
                path = f"{target}.audit-{part.policy.sha256[:12]}-{k:05d}"
                Path(path).write_bytes(data)
                entries.append((part.policy.sha256, path, (rec.id_prefix, rec.id_first, rec.client_ids, rec.as_ofs,
                                                           rec.grades, rec.input_hashes, rec.recorded_at)))
    s = run.summary()
    rejects = [{**r, "row": r["row"] + row_offset, "file": source} for r in run.rejects]
    return {"source": source, "target": target, "rows_read": run.rows_read, "decided": run.decided,
            "rejected": run.rejected, "rejects": rejects, "by_grade": s["by_grade"],
            "by_warning": s["by_warning"], "by_action": s["by_action"], "by_undetermined": s["by_undetermined"],
            "segment_by": s["segment_by"], "by_segment": s["by_segment"], "versions": s["versions"],
            "segments": [], "entries": entries, "exposures": s["exposures"],
            "decided_without_elements": s.get("decided_without_elements", 0),
            "refused_params": {k: v["count"] for k, v in s["refused_action_params"]["by_action"].items()}}


def _debtor_plan(ref: PolicyRef, dataset: Path, as_of: str | None) -> _Plan:
    """Lines per partition, client ids repeated across the dataset (line -> message, per partition), each
    day's version: read on the client from each line's client_id and as_of."""
    import orjson

    from ..decide.ref import selection_day

    files = debtor_partitions(dataset)
    counts: list[int] = []
    per_part: list[dict[int, str]] = []
    first: dict[str, tuple[str, int]] = {}  # client id (id_key) -> (id as written, row)
    days: dict[str | None, None] = {}
    row = 0
    for f in files:
        dups: dict[int, str] = {}
        n = 0
        with f.open("rb") as fh:
            for n, raw in enumerate(fh, 1):
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError:  # the task rejects it with its reason
                    continue
                if not isinstance(record, dict):
                    continue
                days[selection_day(record, as_of)] = None
                cid = record.get("client_id")
                key = id_key(cid) if type(cid) is str else None
                if key:
                    if key in first:
                        dups[n] = repeated_id(cid, *first[key])
                    else:
                        first[key] = (cid, row + n)
        counts.append(n)
        per_part.append(dups)
        row += n
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist() if counts else []
    keys = pd.DataFrame({"client_id": list(first)})
    pinned = ref.pinned
    if pinned is not None:
        return _Plan(files, counts, offsets, per_part, {pinned.sha256: pinned}, None, keys)
    policies, choices = _choices(ref, days or {as_of: None})
    return _Plan(files, counts, offsets, per_part, policies, choices, keys)


def run_dask_debtors(ref: PolicyRef, dataset: Path, out_dir: Path, exposures_dir: Path | None,
                     as_of: str | None = None, scheduler: str | None = None, workers: int = 2, *,
                     audit_db: str | Path | bool | None = False, audit_inputs: str = "full",
                     progress: Callable[[int, int], None] | None = None) -> DaskRun:
    """``batch --engine dask`` over JSON Lines partitions of debtor records: what a local batch of the same
    lines gives (decisions, exposures, rejects, the same records in the store), partition by partition."""
    from ..record.audit import open_store
    from .tables import batch_key

    plan = _debtor_plan(ref, dataset, as_of)
    store = None if audit_db is False else open_store(None if audit_db is None or audit_db is True else Path(audit_db))
    try:
        keys = {sha: batch_key(p, plan.files, as_of) for sha, p in plan.policies.items()} if store else {}
        recorded = set().union(*(store.recorded_clients(k) for k in keys.values())) if store and keys else set()
        parts = _run_debtor_tasks(plan, out_dir, exposures_dir, as_of, scheduler, workers,
                                  None if store is None else audit_inputs, sorted(recorded), progress)
        run = DaskRun(next(iter(plan.policies.values())) if plan.policies else ref.for_day(as_of), parts)
        if run.decided + len(run.rejects) != run.rows_read:
            raise AssertionError("accounting broken across partitions")
        if store is not None:  # one writer, partition by partition: the chain a local batch would write
            run.already_recorded = len(recorded)
            for sha, p in plan.policies.items():
                run.recorded += _append_entries(store, p, parts, sha, keys[sha], audit_inputs)
    finally:
        if store is not None:
            store.close()
    return run


def _append_entries(store: Any, policy: CompiledPolicy, parts: list[dict[str, Any]], sha: str, key: str,
                    audit_inputs: str) -> int:
    """Append one version's entries the tasks wrote (full records of debtors, segments of 1.x clients)."""
    import orjson

    from ..decide.segment import SegmentRecords
    from ..record.segments import decision_groups

    written = 0
    for p in parts:
        for seg_sha, path, fields in p["entries"]:
            if seg_sha != sha:
                continue
            if fields is None:  # debtors: their full records, stored as a local run stores them
                with open(path, "rb") as fh:
                    pairs = ((*orjson.loads(line), True) for line in fh)
                    written += store.append_decisions(policy, decision_groups(pairs), inputs=audit_inputs,
                                                      batch_key=key)
            else:
                written += store.append_segments(policy, [(Path(path).read_bytes(), SegmentRecords(*fields))], key)
            Path(path).unlink()
    return written


def _part_targets(out_dir: Path, exposures_dir: Path | None, n: int) -> tuple[list[str], list[str | None]]:
    """The ``part-NNNNN.parquet`` file of each partition in the result folders, emptied of an earlier run's parts
    (a rerun replaces the result, never mixes two)."""
    for d in (out_dir, exposures_dir):
        if d is not None:
            d.mkdir(parents=True, exist_ok=True)
            for old in d.glob("part-*"):
                old.unlink()
    targets = [str(out_dir / f"part-{i:05d}.parquet") for i in range(n)]
    return targets, [str(exposures_dir / f"part-{i:05d}.parquet") if exposures_dir is not None else None
                     for i in range(n)]


def _run_debtor_tasks(plan: _Plan, out_dir: Path, exposures_dir: Path | None, as_of: str | None,
                      scheduler: str | None, workers: int, audit_inputs: str | None, recorded: list[str],
                      progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    """One task per JSON Lines partition on the cluster; their accounting."""
    n = len(plan.files)
    targets, exposure_targets = _part_targets(out_dir, exposures_dir, n)
    return _on_cluster(plan, scheduler, workers, progress, lambda client, bundle, file, texts: client.map(
        decide_debtor_partition, [bundle] * n, [file] * n, [str(f) for f in plan.files], targets, exposure_targets,
        plan.offsets, plan.duplicates, [as_of] * n, [audit_inputs] * n, [recorded] * n, [texts] * n,
        [plan.choices] * n, pure=False))


def _on_cluster(plan: Any, scheduler: str | None, workers: int, progress: Callable[[int, int], None] | None,
                submit: Callable[[Any, str, str, Any], list[Any]]) -> list[dict[str, Any]]:
    """Start a local cluster (or join ``scheduler``), ``submit`` one task per partition with the policy texts the
    workers need, report progress in rows as partitions finish, and gather the parts in partition order."""
    from distributed import Client, LocalCluster, as_completed

    # The dashboard on any free port: two clusters on one machine never clash over 8787.
    cluster = None if scheduler is not None else \
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = Client(scheduler or cluster)
    try:
        first = next(iter(plan.policies.values()), None)
        texts = {sha: (p.bundle, p.file) for sha, p in plan.policies.items()} if plan.choices is not None else None
        futures = submit(client, first.bundle if first else "", first.file if first else "", texts)
        if progress is not None:
            done, total = 0, int(sum(plan.counts))
            for future in as_completed(futures):
                done += int(plan.counts[futures.index(future)])
                progress(done, total)
        parts: list[dict[str, Any]] = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return parts


# ------------------------------------------------------- long tables: one folder per partition


def _misspelt_partitions(policy: CompiledPolicy, folders: list[Path]) -> list[tuple[str, str, str]]:
    """The misspelt columns of the partitions' tables (as a local run names a folder's), each once."""
    from .long_tables import misspelt_columns

    found = {(policy.id, given, meant): None for folder in folders for given, meant in misspelt_columns(policy, folder)}
    return list(found)


def long_partitions(dataset: Path) -> list[Path]:
    """The partitions of a dataset of long tables: its sub-folders in name order, each one complete set of tables.

    Hidden entries and ``_``-names (``_SUCCESS`` of a Spark or Hive writer) are not partitions; any other file is
    refused: a partition is a folder of tables, and a stray file beside them is a mistake to name, not to skip.
    """
    entries = sorted(p for p in dataset.iterdir() if not p.name.startswith((".", "_")))
    files = [p for p in entries if not p.is_dir()]
    if files:
        raise UsageError([Diagnostic("partition-not-a-folder", f"{files[0].name} is a file: each partition of a "
                                     "dataset of long tables is a folder holding its tables (debtors.parquet, "
                                     "exposures.parquet, ...)", file=str(files[0]),
                                     hint="move the tables into a folder of their own (part-00000/)")])
    return entries


def _long_dataset(dataset: Path, pinned_scoped: bool) -> bool:
    """Whether ``dataset`` is partitions of long tables: a sub-folder holds a debtors table (or, under a pinned
    version with scopes, there are sub-folders at all: what is wrong with them is then said partition by
    partition)."""
    from .long_tables import DEBTORS, FORMATS

    folders = [p for p in dataset.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))]
    return bool(folders) and (pinned_scoped or any((f / f"{DEBTORS}{ext}").is_file()
                                                   for f in folders for ext in FORMATS))


@dataclass
class _LongPlan:
    """What the client reads before any task runs: partitions, each one's debtors, and the problems that
    reject a debtor for a reason its partition alone cannot see (another version's day, an id an earlier
    partition holds), by its row in the partition."""

    files: list[Path]  # the partition folders
    counts: list[int]  # debtors per partition
    offsets: list[int]  # rows of the debtors tables before each partition
    screens: list[dict[int, dict[str, Any]]]
    policies: dict[str, CompiledPolicy]  # the one version the dataset is decided under
    choices: None = None  # for _on_cluster: one policy, sent as its text
    # a debtor id as a row of another partition writes it -> the debtor's partition and its id as written there
    split: dict[str, tuple[str, str]] = field(default_factory=dict)


def _long_plan(ref: PolicyRef, dataset: Path, as_of: str | None) -> _LongPlan:
    """The version (as a local batch of the union of the partitions chooses it), each partition's tables located
    (a partition without a debtors table, or of mixed formats, is refused as a local run refuses the folder) and
    its screen."""
    from .folder_version import day_texts, folder_policy, version_screen
    from .frame import client_id_text
    from .long_tables import CLIENT_ID, DEBTORS, FORMATS, locate, read_frame, repeated_first_copy

    folders = long_partitions(dataset)
    debtors: list[pd.DataFrame] = []
    for folder in folders:
        found = [folder / f"{DEBTORS}{ext}" for ext in FORMATS if (folder / f"{DEBTORS}{ext}").is_file()]
        if len(found) != 1:
            locate(_any_scoped(ref), folder)  # names what is wrong: no debtors table, or two
        debtors.append(read_frame(found[0], (CLIENT_ID, "as_of"))[0])
        if CLIENT_ID in debtors[-1].columns:
            refuse_inexact_ids(debtors[-1][CLIENT_ID], CLIENT_ID, found[0])
    policy = folder_policy(ref, [d for frame in debtors for d in day_texts(frame.get("as_of"))], as_of, str(dataset))
    tables = [locate(policy, folder) for folder in folders]
    _refuse_missing_tables(folders, tables)
    screens: list[dict[int, dict[str, Any]]] = []
    first: dict[str, int] = {}  # by a debtor id's key (id_key)
    written: dict[str, str] = {}  # its first copy's id as written
    home: dict[str, tuple[int, int]] = {}  # a debtor -> its (first) partition and its row there
    repeat_at: dict[str, int] = {}  # a repeated debtor id -> its first repeat (a row of the union)
    row = 0
    screen = version_screen(ref, policy, as_of)  # the local run's: a debtor on another version's day is rejected
    for k, frame in enumerate(debtors):
        mine = screen(frame) if screen is not None else {}
        ids = client_id_text(frame[CLIENT_ID]) if CLIENT_ID in frame.columns else pd.Series([None] * len(frame))
        seen: dict[str, int] = {}
        for r, cid in enumerate(ids.tolist()):
            if not isinstance(cid, str) or not (key := id_key(cid)):
                continue  # ids compared without spaces at either end ('D1 ' repeats 'D1'), as the local run does
            if key in first:  # an earlier partition holds it: this debtor is rejected, as the 1.x Dask run does
                mine[r] = {"table": DEBTORS, "row": r + 1, "field": CLIENT_ID, "code": "duplicate-id",
                           "message": repeated_id(cid, written[key], first[key] + 1)}
                repeat_at.setdefault(key, row + r)
            elif key in seen:  # repeated within the partition: its task rejects the repeat
                repeat_at.setdefault(key, row + r)
            else:
                seen[key] = row + r
                written[key] = cid
                home[key] = (k, r)
        first.update(seen)
        screens.append(mine)
        row += len(frame)
    for key, again in repeat_at.items():  # the first copy too, as the local run of the union rejects it
        k, r = home[key]
        screens[k].setdefault(r, {**repeated_first_copy(written[key], first[key], again), "row": r + 1})
    split = _screen_split_debtors(folders, tables, {key: (*at, written[key]) for key, at in home.items()}, screens)
    counts = [len(f) for f in debtors]
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int).tolist() if counts else []
    return _LongPlan(folders, counts, offsets, screens, {policy.sha256: policy}, split=split)


def _refuse_missing_tables(folders: list[Path], tables: list[dict[str, Path]]) -> None:
    """A table the other partitions have and one lacks: its debtors would be decided without those rows, silently
    (a local run of the union has them; a local run of the partition alone at least warns of an empty table)."""

    held = {name for found in tables for name in found}
    problems = [Diagnostic("table-missing", f"partition {folder.name} has no {name} table, which "
                           f"{sum(name in t for t in tables)} other partition(s) have: its debtors would be decided "
                           f"without those rows", file=str(folder),
                           hint=f"write the {name} table into every partition (a header only where it has no row)")
                for folder, found in zip(folders, tables, strict=True) for name in sorted(held - set(found))]
    if problems:
        raise InputError(problems)


def _screen_split_debtors(folders: list[Path], tables: list[dict[str, Path]],
                          home: Mapping[str, tuple[int, int, str]], screens: list[dict[int, dict[str, Any]]]
                          ) -> dict[str, tuple[str, str]]:
    """A debtor with rows in another partition's tables (its payments exported with another debtor batch) is
    rejected in its own partition: each task sees its folder alone, and would decide it without those rows,
    where the local run of the union of the partitions joins them. Only the client id columns are read.
    A row naming the debtor written otherwise ('d1' for 'D1') counts as its row, as the local run rejects the
    debtor for it. Returns, per id as the rows elsewhere write it, the debtor's partition and id (those rows are
    orphans there)."""
    from .frame import client_id_text
    from .long_tables import CLIENT_ID, DEBTORS, read_frame

    split: dict[str, tuple[str, str]] = {}
    near_home: dict[str, tuple[int, int, str]] = {}
    for key, at in home.items():
        near_home.setdefault(near_id_key(key), at)

    for k, (folder, found) in enumerate(zip(folders, tables, strict=True)):
        for name, path in found.items():
            if name == DEBTORS:
                continue
            frame = read_frame(path, (CLIENT_ID,), (CLIENT_ID,))[0]  # Parquet ids as categories: a code a row
            if CLIENT_ID not in frame.columns:
                continue
            raw = frame[CLIENT_ID]
            refuse_inexact_ids(raw, CLIENT_ID, path)
            distinct = raw[~raw.duplicated(keep="first")]  # each id's first row (millions of rows, few ids)
            for r, cid in zip(*_first_rows_of(client_id_text(distinct.astype(object))), strict=True):
                at = near_home.get(near_id_key(cid)) if isinstance(cid, str) else None
                if at is None or at[0] == k or at[1] in screens[at[0]]:
                    continue  # no such debtor (an orphan), its own partition, or already rejected
                # (rows under a later repeat of its id count too: the local run of the union joins them to it)
                split[cid] = (folders[at[0]].name, at[2])
                screens[at[0]][at[1]] = {
                    "table": DEBTORS, "row": at[1] + 1, "field": CLIENT_ID, "code": "split-partition",
                    "message": f"rows of debtor '{at[2]}' are in another partition too ({folder.name}/{path.name} row "
                               f"{r + 1}{_written_as(cid, at[2])}): its partition alone holds an incomplete debtor"}
    return split


def _first_rows_of(ids: pd.Series) -> tuple[list[int], list[str]]:
    """Each distinct text id of ``ids`` and the row it first occurs at."""
    firsts = ids[ids.notna() & ~ids.duplicated(keep="first")]
    return firsts.index.tolist(), firsts.tolist()


def _any_scoped(ref: PolicyRef) -> CompiledPolicy:
    """A version with scopes, for its table names only (to say what is wrong with a partition's tables)."""
    from .scoped_batch import scoped_versions

    pinned = ref.pinned
    return pinned if pinned is not None else scoped_versions(ref)[-1]


def decide_long_partition(policy_text: str, policy_file: str, source: str, target: str,
                          exposures_target: str | None, row_offset: int, screen: dict[int, dict[str, Any]],
                          as_of: str | None, record: bool) -> dict[str, Any]:
    """One Dask task: the local long-table batch of one partition folder; its decisions (and exposures) file,
    and, when ``record``, its decided debtors' nested records decided again as ``decide`` records them (the
    records file, whose bytes make the batch key, and the [decision, record] pairs the client appends).

    Problems are returned, not raised: a worker's exception does not come back as the error it was.
    """
    from ..diagnostics import PolicyEngineError
    from .batch import write_decisions
    from .long_tables import run_long_batch

    policy = _policy_from_text(policy_text, policy_file)
    try:
        result = run_long_batch(policy, Path(source), as_of, workers=1,
                                screen=(lambda _: screen) if screen else None)
        decisions = result.decisions.copy()
        decisions["row"] = decisions["row"] + row_offset  # rows of the union of the debtors tables
        write_decisions(decisions, Path(target))
        if exposures_target is not None and len(result.exposures):  # no exposures, no part (as for debtor lines)
            exposures = result.exposures.copy()
            exposures["row"] = exposures["row"] + row_offset
            write_decisions(exposures, Path(exposures_target))
        files = _record_long_partition(policy, Path(source), result, as_of, target) \
            if record and result.decided else None
    except PolicyEngineError as e:
        return {"source": source, "error": (type(e), list(e.diagnostics))}
    s = result.batch_summary()
    return {"source": source, "target": target, "rows_read": result.counts["debtors"].read,
            "decided": result.decided, "rejects": result.rejects, "orphans": result.orphans,
            "by_grade": s["by_grade"], "by_warning": s["by_warning"], "by_action": s["by_action"],
            "by_undetermined": s["by_undetermined"],
            "by_segment": s["by_segment"], "versions": s["versions"], "exposures": s["exposures"],
            "tables": s["tables"], "records": files,
            "decided_without_elements": s.get("decided_without_elements", 0),
            "refused_params": {k: v["count"] for k, v in s["refused_action_params"]["by_action"].items()}}


def _record_long_partition(policy: CompiledPolicy, folder: Path, result: Any, as_of: str | None,
                           target: str) -> tuple[str, str]:
    """As ``run._record_folder`` records a folder (:mod:`.long_records`): each decided debtor's nested record
    rebuilt from the tables and decided by ``decide``'s decider. Returns the files (records: the lines, as
    the local run writes them; pairs: [decision, record] a line)."""
    import orjson

    from .long_records import decided_lines, write_lines

    lines, pairs = f"{target}.records.jsonl", f"{target}.pairs.jsonl"
    write_lines(policy, folder, result.decisions, Path(lines))
    with open(pairs, "wb") as out:
        for decision, record in decided_lines(policy, Path(lines), result.decisions, as_of):
            out.write(orjson.dumps([decision, record]) + b"\n")
    return lines, pairs


@dataclass
class LongDaskRun(DaskRun):
    """Partitions of long tables decided on Dask: as ``batch`` reports a folder, over the union of the partitions
    (rejects and orphans numbered as rows of the union of each table)."""

    debtor_rejects: list[dict[str, Any]] = field(default_factory=list)
    orphans: list[dict[str, Any]] = field(default_factory=list)

    @functools.cached_property
    def rejects(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """``--rejects``' lines: each rejected debtor, then each orphaned row (as the local run writes them)."""
        from .long_tables import LongBatch

        return LongBatch(self.policy, pd.DataFrame(), pd.DataFrame(), self.debtor_rejects, self.orphans,
                         {}).reject_lines()

    def summary(self) -> dict[str, Any]:
        s = super().summary()
        s["accounting"]["rejected"] = len(self.debtor_rejects)
        s["accounting"]["orphaned"] = len(self.orphans)
        tables: dict[str, dict[str, int]] = {}
        for p in self.parts:
            for name, c in p["tables"].items():
                into = tables.setdefault(name, dict.fromkeys(c, 0))
                for k, v in c.items():
                    into[k] += v
        s["tables"] = tables
        return s


def run_dask_long(ref: PolicyRef, dataset: Path, out_dir: Path, exposures_dir: Path | None,
                  as_of: str | None = None, scheduler: str | None = None, workers: int = 2, *,
                  audit_db: str | Path | bool | None = False, audit_inputs: str = "full",
                  progress: Callable[[int, int], None] | None = None) -> LongDaskRun:
    """``batch --engine dask`` over partitions of long tables: what a local batch of the union of the partitions
    gives (decisions, exposures, rejects, orphans, every table's accounting, the same records in the store under
    the same batch key), one task per partition."""
    from ..record.audit import open_store

    plan = _long_plan(ref, dataset, as_of)
    policy = next(iter(plan.policies.values()))
    store = None if audit_db is False else open_store(None if audit_db is None or audit_db is True else Path(audit_db))
    parts: list[dict[str, Any]] = []
    try:
        parts = _run_long_tasks(plan, out_dir, exposures_dir, as_of, scheduler, workers, store is not None, progress)
        run = _gathered(policy, plan, parts)
        if store is not None:
            run.recorded, run.already_recorded = _append_long(store, policy, parts, as_of, audit_inputs)
    finally:
        if store is not None:
            store.close()
        for p in parts:  # the rebuilt records are the store's input, not a result
            for path in p.get("records") or ():
                Path(path).unlink(missing_ok=True)
    return run


def _run_long_tasks(plan: _LongPlan, out_dir: Path, exposures_dir: Path | None, as_of: str | None,
                    scheduler: str | None, workers: int, record: bool,
                    progress: Callable[[int, int], None] | None) -> list[dict[str, Any]]:
    """One task per partition folder on the cluster; their accounting (a partition's problem raised as it was)."""
    n = len(plan.files)
    targets, exposure_targets = _part_targets(out_dir, exposures_dir, n)
    parts = _on_cluster(plan, scheduler, workers, progress, lambda client, bundle, file, _: client.map(
        decide_long_partition, [bundle] * n, [file] * n, [str(f) for f in plan.files], targets, exposure_targets,
        plan.offsets, plan.screens, [as_of] * n, [record] * n, pure=False))
    failed = [p for p in parts if "error" in p]
    if failed:
        for p in parts:  # nothing half-recorded is left behind
            for path in p.get("records") or ():
                Path(path).unlink(missing_ok=True)
        kind = failed[0]["error"][0]
        raise kind([d for p in failed if p["error"][0] is kind for d in p["error"][1]])
    return parts


def _gathered(policy: CompiledPolicy, plan: _LongPlan, parts: list[dict[str, Any]]) -> LongDaskRun:
    """The partitions' rejects and orphans renumbered as rows of the union of each table (orphans table by
    table, as a local run lists them), the accounting checked."""
    from .long_tables import layout

    order = {t.name: k for k, t in enumerate(layout(policy))}
    before: dict[str, int] = dict.fromkeys(order, 0)  # rows of each table in the partitions before this one
    rejects: list[dict[str, Any]] = []
    orphans: list[dict[str, Any]] = []
    for p, screen in zip(parts, plan.screens, strict=True):
        given = list(screen.values())  # the client's own entries: their messages name rows of the union already
        for r in p["rejects"]:
            rejects.append({**r, "row": r["row"] + before[r["table"]],
                            "problems": [_renumbered(q, before, q in given) for q in r["problems"]]})
        orphans += [{**o, "row": o["row"] + before[o["table"]], **_split_orphan(o, plan.split)} for o in p["orphans"]]
        for name, c in p["tables"].items():
            before[name] = before.get(name, 0) + c["read"]
    orphans.sort(key=lambda o: (order.get(o["table"], len(order)), o["row"]))
    run = LongDaskRun(policy, parts, debtor_rejects=rejects, orphans=orphans)
    for name, c in run.summary()["tables"].items():
        if c["read"] != c["decided"] + c["rejected"] + c["orphaned"]:
            raise AssertionError(f"accounting broken across partitions for {name}: {c}")
    if run.decided + len(rejects) != run.rows_read:
        raise AssertionError("accounting broken across partitions")
    return run


def _written_as(cid: str, debtor: str) -> str:
    """``, written 'd1': ...`` when a row names the debtor otherwise than the debtors table does."""
    return f", written '{cid}': the two ids differ only by {how_ids_differ(cid, debtor)}" if cid != debtor else ""


def _split_orphan(orphan: Mapping[str, Any], split: Mapping[str, tuple[str, str]]) -> dict[str, str]:
    """An orphan whose debtor is in another partition says so (its partition alone has no such debtor)."""
    cid = orphan.get("client_id")
    if cid not in split or orphan.get("field") != "client_id":
        return {}
    partition, debtor = split[cid]
    return {"message": f"debtor '{debtor}' is in partition {partition}, not in this row's{_written_as(cid, debtor)}: "
                       "a debtor's rows must all be in its partition (the debtor is rejected)"}


# The rows a problem's message names: of its own table ('payment at row 4 repeats row 3', 'first at row 2') or of
# the table it names ('origination_date of exposures row 1'), as a local run of the union words them. A value the
# message quotes ('E at row 1', an id or a product as the row gave it) is the client's, never renumbered.
_ROW_IN_MESSAGE = re.compile(r"'[^']*'|\b(?:at|repeats|of (?P<table>[a-z][a-z0-9_]*)) row (?P<n>\d+)\b")


def _renumbered(problem: dict[str, Any], before: Mapping[str, int], own: bool) -> dict[str, Any]:
    """A partition's problem with its row, and the rows its message names, as rows of the union (a message read
    'payment at row 4 repeats row 3' where the reject's row was 28)."""
    shift = before.get(problem["table"], 0)
    moved = {**problem, "row": problem["row"] + shift}
    if not own:
        def union_row(m: re.Match[str]) -> str:
            if m["n"] is None:  # a quoted value: as it is
                return m[0]
            by = shift if m["table"] is None else before.get(m["table"], 0)
            return m[0][:m.start("n") - m.start()] + str(int(m["n"]) + by)

        moved["message"] = _ROW_IN_MESSAGE.sub(union_row, problem["message"])
    return moved


def _append_long(store: Any, policy: CompiledPolicy, parts: list[dict[str, Any]], as_of: str | None,
                 audit_inputs: str) -> tuple[int, int]:
    """Record the partitions' decisions by one writer, in partition order, under the batch key a local batch of
    the union gives (the rebuilt lines of the partitions, hashed in order, are the union's): a rerun, local or
    on Dask, records nothing new. Returns (recorded now, already recorded)."""
    import orjson

    from ..record.segments import decision_groups
    from .tables import batch_key

    files = [p["records"] for p in parts if p.get("records")]
    if not files:
        return 0, 0
    key = batch_key(policy, [Path(lines) for lines, _ in files], as_of)
    skip = store.recorded_clients(key)

    def pairs() -> Any:
        for _, path in files:
            with open(path, "rb") as fh:
                for line in fh:
                    decision, record = orjson.loads(line)
                    yield decision, record, decision["client_id"] not in skip

    return store.append_decisions(policy, decision_groups(pairs()), inputs=audit_inputs, batch_key=key), len(skip)
