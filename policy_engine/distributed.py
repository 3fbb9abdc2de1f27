"""Portfolios beyond one machine: a partitioned Parquet dataset decided partition by partition on Dask.

Each partition (one Parquet file of the dataset directory) is decided by a Dask task with the same
vector evaluator as ``batch``, and written as one Parquet file of the result directory. The
policy travels as its text and is compiled once per worker process; client-id duplicates are
found over the whole dataset first, from the ``client_id`` column alone. Rows keep their number
in the dataset (files in name order), so the result equals a local batch of the same rows.

Local default: a ``dask.distributed.LocalCluster`` with one single-threaded worker per core. Any
running scheduler works: ``--scheduler tcp://host:8786`` (workers need this package installed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .compiler import CompiledPolicy
from .diagnostics import Diagnostic, InputError, UsageError
from .frame import Problem, duplicate_ids

_COMPILED: dict[str, CompiledPolicy] = {}


def partitions(dataset: Path) -> list[Path]:
    files = sorted(p for p in dataset.rglob("*.parquet") if p.is_file())
    if not files:
        raise UsageError([Diagnostic("empty-dataset", f"no .parquet files under {dataset}", file=str(dataset),
                                     hint="--engine dask reads a directory of Parquet files (a partitioned dataset)")])
    return files


def _policy_from_text(text: str, file: str) -> CompiledPolicy:
    import hashlib

    from .compiler import compile_document
    from .loader import load_yaml_text

    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if key not in _COMPILED:
        _COMPILED[key] = compile_document(load_yaml_text(text, file))
    return _COMPILED[key]


def decide_partition(policy_text: str, policy_file: str, source: str, target: str, row_offset: int,
                     duplicates: list[tuple[int, str]], as_of: str | None) -> dict[str, Any]:
    """One Dask task: decide one partition file, write its result file, return its accounting."""
    from .batch import Table, run_batch, summary, write_decisions

    policy = _policy_from_text(policy_text, policy_file)
    try:
        frame = pd.read_parquet(source)
    except Exception as exc:  # any reader's complaint: this partition is not a readable table
        return {"source": source, "unreadable": f"{type(exc).__name__}: {exc}"}
    dups = [Problem(row, "client_id", message, "duplicate-id") for row, message in duplicates]
    result = run_batch(policy, Table(frame, text=False, rows_read=len(frame)), as_of, workers=1,
                       duplicates=dups, row_offset=row_offset)
    write_decisions(result.decisions, Path(target))
    s = summary(result)
    return {"source": source, "target": target, "rows_read": result.rows_read, "decided": result.decided,
            "rejected": result.rejected, "rejects": result.rejects, "by_grade": s["by_grade"],
            "by_warning": s["by_warning"], "by_action": s["by_action"], "by_industry": s["by_industry"]}


@dataclass
class DaskRun:
    policy: CompiledPolicy
    parts: list[dict[str, Any]]

    @property
    def rows_read(self) -> int:
        return sum(p["rows_read"] for p in self.parts)

    @property
    def decided(self) -> int:
        return sum(p["decided"] for p in self.parts)

    @property
    def rejects(self) -> list[dict[str, Any]]:
        return [r for p in self.parts for r in p["rejects"]]

    def summary(self) -> dict[str, Any]:
        import datetime as dt

        n = max(self.decided, 1)

        def merge(key: str) -> dict[str, dict[str, float]]:
            total: dict[str, int] = {}
            for p in self.parts:
                for k, v in p[key].items():
                    total[k] = total.get(k, 0) + int(v["count"])
            return {k: {"count": c, "share": round(c / n, 6)} for k, c in sorted(total.items())}

        by_grade = merge("by_grade")
        return {
            "policy": {"id": self.policy.id, "version": self.policy.version, "sha256": self.policy.sha256},
            "accounting": {"rows_read": self.rows_read, "decided": self.decided, "rejected": len(self.rejects)},
            "by_grade": {g: by_grade.get(g, {"count": 0, "share": 0.0}) for g in self.policy.grade_ids},
            "by_warning": merge("by_warning"), "by_action": merge("by_action"), "by_industry": merge("by_industry"),
            "partitions": len(self.parts),
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }


def run_dask(policy: CompiledPolicy, dataset: Path, out_dir: Path, as_of: str | None = None,
             scheduler: str | None = None, workers: int = 2) -> DaskRun:
    """Decide every partition of ``dataset`` on a Dask cluster, writing ``out_dir/part-NNNNN.parquet``."""
    import pyarrow.parquet as pq
    from distributed import Client, LocalCluster

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
    ids = pd.concat([pd.read_parquet(f, columns=["client_id"]) if "client_id" in pq.read_schema(f).names
                     else pd.DataFrame({"client_id": [None] * c}) for f, c in zip(files, counts, strict=True)],
                    ignore_index=True)
    per_part: list[list[tuple[int, str]]] = [[] for _ in files]
    for problem in duplicate_ids(ids):
        k = int(np.searchsorted(offsets, problem.row, side="right") - 1)
        per_part[k].append((problem.row - offsets[k], problem.message))
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("part-*.parquet"):
        old.unlink()  # a rerun replaces the result, never mixes two
    targets = [str(out_dir / f"part-{i:05d}.parquet") for i in range(len(files))]
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        futures = client.map(decide_partition, [policy.text] * len(files), [policy.file] * len(files),
                             [str(f) for f in files], targets, offsets, per_part, [as_of] * len(files), pure=False)
        parts = client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    failed = [Diagnostic("unreadable", f"cannot read the partition: {p['unreadable']}", file=p["source"])
              for p in parts if "unreadable" in p]
    if failed:
        raise InputError(failed)
    run = DaskRun(policy, parts)
    if run.decided + len(run.rejects) != run.rows_read:
        raise AssertionError("accounting broken across partitions")
    return run
