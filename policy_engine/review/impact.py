"""Champion / challenger: what a policy change does to a portfolio.

Both versions decide the same portfolio with the vector evaluator; the report is the grade
migration matrix (clients and balance), the clients whose grade, warnings or actions changed
(with the rules that decided each side, and the scores where a version has a scorecard), warning
and action counts before and after, and the changes per segment of the policy's segment input.
JSON, markdown, or a self-contained HTML page with SVG charts.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..diagnostics import Diagnostic, UsageError, did_you_mean
from ..policy.compiler import CompiledPolicy
from ..portfolio.batch import Table, _flatten_lists
from ..safetext import html_text, printable
from .totals import ALL, FIELDS, NO_SEGMENT, check_totals, gate_value, totals, undefined_reason

if TYPE_CHECKING:
    from ..decide.ref import PolicyRef
    from ..portfolio.tables import TableRun

# The exposures' figures, in a report of two versions grading exposures (nonperforming_balance_change: given balances).
EXPOSURE_GATES = ("exposure_grade_changed", "exposure_downgrades", "exposure_upgrades",
                  "nonperforming_exposures_change", "nonperforming_balance_change")
GATES = ("grade_changed", "grade_changed_share", "downgrades", "downgrade_share", "upgrades", "upgrade_share",
         "warnings_changed", "warnings_changed_share", "actions_changed", "actions_changed_share", "rejected",
         "rejected_share", "orphaned", "compared", *EXPOSURE_GATES)
# NAME OP NUMBER; NAME a figure of the summary, or total.METRIC.FIELD / total.METRIC[SEGMENT].FIELD.
_GATE = re.compile(r"^\s*(?P<name>total\.(?P<metric>[A-Za-z_][A-Za-z0-9_]*)(?:\[(?P<segment>[^\]]+)\])?"
                   r"\.(?P<field>[a-z_]+)|[a-z_]+)\s*(?P<op>>=|<=|>|<|==)\s*"
                   r"(?P<limit>[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*$")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}


@dataclass
class Impact:
    old: CompiledPolicy
    new: CompiledPolicy
    report: dict[str, Any]
    runs: tuple[TableRun, TableRun] | None = None  # each side's per-client results (decisions, rejects)

    @property
    def rejects(self) -> list[dict[str, Any]]:
        """Every row rejected on either side, once, in row order; ``side`` says where (old, new or both)."""
        if self.runs is None:
            return []
        a, b = ({_place(r): r for r in [*side.rejects, *getattr(side, "orphans", ())]} for side in self.runs)
        return [_both(a[at], b[at]) if at in a and at in b else {**(a.get(at) or b[at]), "side": "old" if at in a
                                                                 else "new"}
                for at in sorted(set(a) | set(b))]


def _both(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """A row rejected under both versions, with every problem either found (the new version may refuse more)."""
    problems = [*old.get("problems", ()), *(p for p in new.get("problems", ()) if p not in old.get("problems", ()))]
    return {**old, "problems": problems, "side": "both"}


def _place(reject: Mapping[str, Any]) -> tuple[bool, str, int]:
    """Where a rejected row is: the rejected rows (debtors) in row order, then the orphaned rows of long tables
    by table and row (row numbers are each table's own)."""
    orphan = bool(reject.get("orphaned"))
    return orphan, str(reject.get("table", "")) if orphan else "", int(reject["row"])


def _lists(series: pd.Series) -> list[list[str]]:
    return [list(v) for v in series]


def _joined(series: pd.Series) -> np.ndarray:
    import pyarrow.compute as pc

    from ..portfolio.batch import pa_array

    return np.asarray(pc.binary_join(pa_array(series.reset_index(drop=True)), "\x1f").to_numpy(zero_copy_only=False),
                      dtype=object)


def analyse(old: CompiledPolicy | PolicyRef, new: CompiledPolicy | PolicyRef, table: Table | Path,
            as_of: str | None = None, max_listed: int = 200, new_table: Table | Path | None = None,
            progress: Callable[[int, int], None] | None = None, total: Sequence[str] = (),
            encoding: str = "utf-8") -> Impact:
    """``old`` on ``table`` against ``new`` on ``new_table`` (the same table unless a scenario shocked it).

    Each side is a run of the run layer: a policy id decides each client under the version in force
    on its day, and every row is accounted for. A row rejected on either side is not compared; the
    report's ``rejected`` block counts them (``--fail-if 'rejected > 0'``). ``total`` names number
    metrics whose sums and means the report gives per version (``totals``). Two versions with scopes
    read their portfolio as ``batch`` does, from its path (:func:`reads_debtors`): a JSON Lines file of
    debtor records or a folder of long tables (``encoding``: that of CSV tables); the others read a table.
    """
    from ..decide.ref import PolicyRef

    ref_a = old if isinstance(old, PolicyRef) else PolicyRef(old)
    ref_b = new if isinstance(new, PolicyRef) else PolicyRef(new)
    total = list(dict.fromkeys(total))
    # A pinned version is known before any client is decided: a misspelt metric costs no run.
    check_totals(total, [[r.pinned] for r in (ref_a, ref_b) if r.pinned is not None])
    a, b, conversion = _decide_sides(ref_a, ref_b, table, new_table, as_of, progress, encoding)
    policies = a.policies + b.policies
    if not policies:
        raise UsageError([Diagnostic("no-version-in-force", f"no client of the portfolio has a version of {ref_a.name} "
                                     "in force on its day", hint="see the rejects (--rejects FILE), or pin versions")])
    if any(p.grade_ids != policies[0].grade_ids for p in policies):
        raise UsageError([Diagnostic("different-scales", "the two policies grade on different scales",
                                     hint="impact compares grades; both versions need the same scale")])
    check_totals(total, [a.policies, b.policies])
    old_p, new_p = (a.policies or policies)[0], (b.policies or policies)[-1]
    da = a.decisions.set_index("row") if a.parts else _no_decisions()
    db = b.decisions.set_index("row") if b.parts else _no_decisions()
    rows = da.index.intersection(db.index)
    _refuse_wrong_kind(a, b, len(rows), table)
    da, db = da.loc[rows], db.loc[rows]
    grades = list(policies[0].grade_ids)
    rank = {g: i for i, g in enumerate(grades)}
    ga = da["grade"].astype(str).to_numpy()
    gb = db["grade"].astype(str).to_numpy()
    balance = _compared_balances(a, b, table, rows)
    exposures, exposure_figures = _exposure_impact(a, b, rows, grades, policies[0])
    ra = np.array([rank[g] for g in ga])
    rb = np.array([rank[g] for g in gb])
    n = len(rows)
    changed_grade = ra != rb
    changed_warn = _changed_lists("warnings", da, db, a, b, rows)
    changed_act, retold = _changed_actions(da, db, a, b, rows, policies)
    any_change = changed_grade | changed_warn | changed_act
    groups = list(dict.fromkeys(s for p in a.policies or policies for s in p.segments))
    seg = _segment_names(da["segment"], bool(groups))
    # Grade changes first: a capped list in portfolio order hid the one downgrade behind warning-only changes.
    shown = np.concatenate([np.flatnonzero(changed_grade), np.flatnonzero(any_change & ~changed_grade)])
    listed = _listed(da, db, shown[:max_listed], seg, _scored(a, b, policies), retold)
    _with_exposure_changes(listed, getattr(a, "exposures", None), getattr(b, "exposures", None))
    rejected_rows = {r["row"] for r in a.rejects} | {r["row"] for r in b.rejects}
    rows_read = a.rows_read
    summary = _summary(n, {"grade_changed": changed_grade, "downgrades": rb > ra, "upgrades": rb < ra,
                           "warnings_changed": changed_warn, "actions_changed": changed_act},
                       len(rejected_rows), rows_read, _orphaned(a, b), exposure_figures)
    report = {
        "old": _side(a, old_p), "new": _side(b, new_p),
        "clients": n,
        "records": _records(a, b),
        "rejected": _rejected(a, b, len(rejected_rows), n),
        "summary": summary,
        "migration": _migration(ga, gb, grades, balance),
        "grade_distribution": {"old": {g: int((ga == g).sum()) for g in grades},
                               "new": {g: int((gb == g).sum()) for g in grades}},
        **_rule_counts(da, db, policies, (a.policies, b.policies)),
        "segment_by": old_p.segment_by, "by_segment": _by_segment(seg, ra, rb),
        "changed_clients": listed, "changed_clients_total": int(any_change.sum()),
    }
    if exposures is not None:
        report["exposures"] = exposures
    if total:
        order = [*(groups or [ALL]), *([NO_SEGMENT] if groups and NO_SEGMENT in seg else [])]
        report["totals"] = totals(total, da, db, seg, order, new_p)
    if conversion is not None:
        report["conversion"] = conversion
    return Impact(old_p, new_p, report, (a, b))


def _migration(before: np.ndarray, after: np.ndarray, grades: list[str], balance: np.ndarray | None
               ) -> dict[str, Any]:
    """Grades before (rows) against after (columns), counted and, given balances, weighted by them."""
    cats = pd.Categorical(before, grades), pd.Categorical(after, grades)
    counts = pd.crosstab(*cats, dropna=False)
    weighted = None if balance is None else \
        pd.crosstab(*cats, values=balance, aggfunc="sum", dropna=False).fillna(0.0)
    return {"grades": grades, "counts": counts.to_numpy().astype(int).tolist(),
            "balance": None if weighted is None else np.round(weighted.to_numpy(), 2).tolist()}


def _exposure_impact(a: Any, b: Any, rows: pd.Index, grades: list[str], policy: CompiledPolicy
                     ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """Both versions grading exposures: how the compared debtors' exposures moved, counted and weighted by balance,
    and the non-performing exposures before and after; and the figures --fail-if reads (EXPOSURE_GATES). Else
    (None, {}).

    A debtor's grade is its worst exposure's, so an exposure brought into non-performing beside a worse one (the 10%
    contagion reaching a performing loan) moves no debtor: the report read '0 change grade' while 60 million moved
    into non-performing, and no gate could catch it."""
    ea, eb = getattr(a, "exposures", None), getattr(b, "exposures", None)
    if ea is None or eb is None:
        return None, {}
    wanted = ea["row"].isin(rows), eb["row"].isin(rows)
    both = ea[wanted[0]].merge(eb[wanted[1]], on=["row", "exposure_id"], suffixes=("_old", "_new"))
    rank = {g: i for i, g in enumerate(grades)}
    go, gn = (both[f"grade_{side}"].astype(str).to_numpy() for side in ("old", "new"))
    ro, rn = (np.array([rank.get(g, -1) for g in x], dtype=int) for x in (go, gn))
    balance = next((pd.to_numeric(both[c], errors="coerce").fillna(0.0).to_numpy(dtype=float)
                    for c in ("balance_old", "balance_new", "balance") if c in both.columns), None)
    bad = [g.id for g in policy.scale if g.nonperforming]
    npo, npn = np.isin(go, bad), np.isin(gn, bad)

    def held(mask: np.ndarray) -> dict[str, Any]:
        return {"exposures": int(mask.sum()),
                "balance": None if balance is None else round(float(balance[mask].sum()), 2)}

    old, new = held(npo), held(npn)
    summary: dict[str, Any] = {"exposure_grade_changed": int((ro != rn).sum()),
                               "exposure_downgrades": int((rn > ro).sum()), "exposure_upgrades": int((rn < ro).sum()),
                               "nonperforming_exposures_change": new["exposures"] - old["exposures"]}
    if balance is not None:
        summary["nonperforming_balance_change"] = round(new["balance"] - old["balance"], 2)
    return {"compared": len(both), "grade_changed": summary["exposure_grade_changed"],
            "downgrades": summary["exposure_downgrades"], "upgrades": summary["exposure_upgrades"],
            "migration": _migration(go, gn, grades, balance), "nonperforming": {"old": old, "new": new}}, summary


def _records(a: Any, b: Any) -> str:
    """What a compared record is: a debtor when both versions decide debtor records, else a client (1.x records,
    converted to 2.0 on the new side or not)."""
    return "debtors" if isinstance(a, ScopedSide) and isinstance(b, ScopedSide) else "clients"


def _refuse_wrong_kind(a: Any, b: Any, compared: int, table: Table | Path) -> None:
    """A portfolio none of whose records either version reads (1.x clients under two 2.x versions) is the wrong
    file, not a portfolio that changed nothing: a pipeline read 'exit 0, 0 of 21 change grade' from it. Refused
    as the same portfolio in CSV is (exit 2), with the reject's words and hint."""
    if compared or not a.rows_read:
        return
    # a 2.0 record on the side that converts 1.x records is one too ('already-v2': nothing to convert)
    kinds = [[next((x for x in r["problems"] if x.get("code") in ("wrong-record-kind", "already-v2")), None)
              for r in side.rejects] for side in (a, b)]
    if any(len(k) < side.rows_read or None in k for k, side in zip(kinds, (a, b), strict=True)):
        return
    first, where = kinds[0][0], a.rejects[0].get("line", a.rejects[0]["row"])  # the old side's first, named by it
    if first["code"] != "wrong-record-kind":  # the old side converts: the new side's words name the versions
        first = next((k for k in kinds[1] if k["code"] == "wrong-record-kind"), first)
    name = str(table) if isinstance(table, Path) else str(table.source) if table.source is not None else None
    from ..decide.record_kind import hint_for_two_versions

    raise UsageError([Diagnostic("wrong-record-kind", f"{name or 'the portfolio'}: no record is of the kind the two "
                                 f"versions read, so nothing was compared (line {where}: {first['message']})",
                                 file=name, hint=hint_for_two_versions(first.get("hint")))])


def _rejected(a: Any, b: Any, rows: int, compared: int) -> dict[str, Any]:
    """The rows not compared, per side; over long tables also the rows of each side's tables that join no debtor
    (orphaned: no debtor to compare, each in ``--rejects``)."""
    out: dict[str, Any] = {"old": a.rejected, "new": b.rejected, "rows": rows, "rows_read": a.rows_read,
                           "compared": compared}
    if getattr(a, "tables", None) is not None:
        out["orphaned"] = {"old": len(a.orphans), "new": len(b.orphans)}
        out["tables"] = {"old": a.tables, "new": b.tables}  # read = decided + rejected + orphaned, table by table
    return out


def _orphaned(a: Any, b: Any) -> int:
    """The rows of the tables orphaned on either side, once (0 when the portfolio is no folder of tables)."""
    return len({_place(r) for r in [*getattr(a, "orphans", ()), *getattr(b, "orphans", ())]})


def _scored(a: Any, b: Any, policies: list[CompiledPolicy]) -> tuple[bool, bool]:
    """Whether each side has a score to compare: without a scorecard a side shows none (not a made-up 0)."""
    return (any(p.score_bands for p in a.policies or policies), any(p.score_bands for p in b.policies or policies))


def _summary(n: int, changed: dict[str, np.ndarray], rejected: int, rows_read: int, orphaned: int = 0,
             exposures: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Counts and shares of the compared clients that changed (``grade_changed``, ``downgrades``, ...), then the
    exposures' figures (:func:`_exposure_impact`) when both versions grade exposures."""
    out: dict[str, Any] = {"compared": n}  # every figure --fail-if reads, by the name it reads it by
    for name, mask in changed.items():
        k = int(mask.sum())
        out[name] = k
        out[name.replace("downgrades", "downgrade").replace("upgrades", "upgrade") + "_share"] = \
            round(float(k) / n, 6) if n else 0.0
    out["rejected"] = rejected
    out["rejected_share"] = round(rejected / rows_read, 6) if rows_read else 0.0
    out["orphaned"] = orphaned  # a folder's rows joining no debtor: 'rejected' counts debtors only
    out.update(exposures or {})
    return out


def _decide_sides(ref_a: PolicyRef, ref_b: PolicyRef, table: Table | Path, new_table: Table | Path | None,
                  as_of: str | None, progress: Callable[[int, int], None] | None, encoding: str = "utf-8"
                  ) -> tuple[Any, Any, dict[str, Any] | None]:
    """Each side's run, and the conversion summary when the new side decides 1.x rows converted to 2.0."""
    from ..portfolio.tables import decide_table

    scoped = _scoped_refs(ref_a, ref_b)
    if scoped == "both":
        return (scoped_side(_pinned(ref_a), table, as_of, progress, encoding),
                scoped_side(_pinned(ref_b), table if new_table is None else new_table, as_of, progress, encoding), None)
    if not isinstance(table, Table) or isinstance(new_table, Path):
        raise UsageError([Diagnostic("scoped-portfolio-format", f"{table}: only two versions with scopes compare a "
                                     "portfolio read from its path (debtor records or long tables)",
                                     hint="read the table first (run.read_portfolio)")])
    a = decide_table(ref_a, table, as_of, progress=progress)
    if scoped == "new":
        b, conversion = converted_side(a, _pinned(ref_b), table, as_of, progress)
        return a, b, conversion
    if new_table is None and ref_b.pinned is None:
        by_row = _scoped_days(ref_b, table, as_of)
        if by_row:  # NEW by day: some rows fall on days a version with scopes is in force
            return (a, *_mixed_side(a, ref_b, table, by_row, as_of, progress))
    return a, decide_table(ref_b, new_table if new_table is not None else table, as_of, progress=progress), None


def reads_debtors(old: CompiledPolicy | PolicyRef, new: CompiledPolicy | PolicyRef) -> bool:
    """Whether ``analyse`` of these versions reads the portfolio from its path, as ``batch`` reads debtors (both
    decide debtors with several exposures); a combination that cannot be compared is a usage error here."""
    from ..decide.ref import PolicyRef

    return _scoped_refs(*(x if isinstance(x, PolicyRef) else PolicyRef(x) for x in (old, new))) == "both"


def _scoped_refs(ref_a: PolicyRef, ref_b: PolicyRef) -> str | None:
    """Which side decides debtors with several exposures: None, 'new' (1.x records converted) or 'both'."""
    a = ref_a.pinned is not None and ref_a.pinned.scoped is not None
    b = ref_b.pinned is not None and ref_b.pinned.scoped is not None
    if a and ref_b.pinned is None:
        raise UsageError([Diagnostic("scoped-new-unpinned", f"{ref_a.pinned.key} decides debtors with several "
                                     f"exposures: NEW ({ref_b.name}) must then be pinned, so that every debtor "
                                     "is compared with one version", hint=f"name the version: {ref_b.name}@VERSION")])
    if a and not b:
        raise UsageError([Diagnostic("scoped-old-side", f"{ref_a.pinned.key} decides debtors with several exposures "
                                     "and the new side does not: a 2.0 record cannot be converted back to 1.x",
                                     hint="compare a 1.x version (OLD) with a 2.0 version (NEW)")])
    return "both" if a and b else "new" if b else None


def _pinned(ref: PolicyRef) -> CompiledPolicy:
    assert ref.pinned is not None
    return ref.pinned


class _Counted:
    """The counts ``analyse`` reads of a side, from its decisions table and rejects."""

    decisions: pd.DataFrame
    rejects: list[dict[str, Any]]

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def decided(self) -> int:
        return len(self.decisions)


@dataclass
class ScopedSide(_Counted):
    """One side of an impact decided by the scoped vector path: what ``analyse`` reads of a table run."""

    policy: CompiledPolicy
    decisions: pd.DataFrame
    rejects: list[dict[str, Any]]
    rows_read: int
    exposures: pd.DataFrame | None = None  # each exposure's row, id, grade, deciding rule and balance
    orphans: list[dict[str, Any]] = field(default_factory=list)  # long tables: rows joining no debtor, as rejects
    tables: dict[str, dict[str, int]] | None = None  # long tables: each table's rows read, decided, rejected, orphaned
    gaps: dict[str, Any] | None = None  # long tables: what batch warns of (columns missing or misspelt, tables empty)

    @property
    def parts(self) -> list[Any]:
        return [self]

    @property
    def policies(self) -> list[CompiledPolicy]:
        return [self.policy]


_EXPOSURE_COLUMNS = ("row", "exposure_id", "grade", "decided_by", "warnings", "actions", "balance")


def _scoped_run(policy: CompiledPolicy, path: Path, rows: Sequence[int] | None, as_of: str | None,
                progress: Callable[[int, int], None] | None, total: int
                ) -> tuple[pd.DataFrame, list[dict[str, Any]], pd.DataFrame]:
    """Decide the debtor records of a JSON Lines file; line k stands for input row ``rows[k - 1]`` (without
    ``rows``, for row k: the file is the portfolio, blank lines and all): the debtors' decisions, the rejects,
    and each exposure's grade and deciding rule."""
    from ..portfolio.scoped_batch import run_scoped_batch

    done = [0]

    def step(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(done[0], total)

    result = run_scoped_batch(policy, path, as_of, progress=step, sink=lambda chunk: None)  # tables only
    if rows is None:
        return result.decisions, result.rejects, result.exposures[
            [c for c in _EXPOSURE_COLUMNS if c in result.exposures.columns]].copy()
    lookup = np.asarray(rows, dtype=np.int64)
    decisions = result.decisions.copy()
    if len(decisions):
        decisions["row"] = lookup[decisions["row"].to_numpy(dtype=np.int64) - 1]
    rejects = [{**r, "row": int(lookup[r["row"] - 1]), "line": int(lookup[r["row"] - 1])} for r in result.rejects]
    exposures = result.exposures[[c for c in _EXPOSURE_COLUMNS if c in result.exposures.columns]].copy()
    if len(exposures):
        exposures["row"] = lookup[exposures["row"].to_numpy(dtype=np.int64) - 1]
    return decisions, rejects, exposures


def scoped_side(policy: CompiledPolicy, table: Table | Path, as_of: str | None,
                progress: Callable[[int, int], None] | None = None, encoding: str = "utf-8") -> ScopedSide:
    """A side decided from debtor records (both versions scoped) as ``batch`` decides them: a JSON Lines file,
    each line as it is, or a folder of long tables, every row of every table accounted for."""
    from ..portfolio.long_tables import layout
    from ..portfolio.scoped_batch import count_lines

    path = table if isinstance(table, Path) else table.source if table.offsets is not None else None
    if path is not None and path.is_dir():
        return _folder_side(policy, path, as_of, progress, encoding)
    if path is None or path.suffix.lower() not in (".jsonl", ".ndjson"):
        table = path is not None and path.stem in {t.name for t in layout(policy)}
        raise UsageError([Diagnostic("scoped-portfolio-format", "two multi-exposure policies compare a JSON Lines "
                                     "file of debtor records or a folder of long tables",
                                     file=None if path is None else str(path),
                                     hint=f"{path.name} is one of the long tables: give the folder that holds them, "
                                          f"--portfolio {path.parent}" if table and path is not None else
                                     "give --portfolio debtors.jsonl, or the folder batch reads")])
    lines = table.rows_read if isinstance(table, Table) else count_lines(path)  # the progress bar's end
    decisions, rejects, exposures = _scoped_run(policy, path, None, as_of, progress, lines)
    return ScopedSide(policy, decisions, rejects, len(decisions) + len(rejects), exposures)  # blank lines: no rows


def _folder_side(policy: CompiledPolicy, folder: Path, as_of: str | None,
                 progress: Callable[[int, int], None] | None, encoding: str) -> ScopedSide:
    """A side decided from a folder of long tables (``batch FOLDER``): the debtors decided or rejected, and the
    rows of other tables that join no debtor (orphans), kept apart: they are no debtor to compare."""
    from ..portfolio.long_tables import (
        DEBTORS,
        absent_columns,
        misspelt_columns,
        run_long_batch,
        with_absent_columns,
        with_data_gaps,
    )
    from ..portfolio.scoped_batch import with_decided_without_elements

    result = run_long_batch(policy, folder, as_of, encoding=encoding)
    gaps: dict[str, Any] = {"tables": result.summary(), "misspelt": misspelt_columns(policy, folder)}
    with_decided_without_elements(gaps, result.decisions)
    with_absent_columns(gaps, absent_columns(policy, folder))
    with_data_gaps(gaps, policy)
    read = result.counts[DEBTORS].read
    if progress is not None:
        progress(read, read)
    lines = result.reject_lines()
    exposures = result.exposures[[c for c in _EXPOSURE_COLUMNS if c in result.exposures.columns]].copy()
    return ScopedSide(policy, result.decisions, lines[:len(result.rejects)], read, exposures,
                      lines[len(result.rejects):], result.summary(), gaps)


def converted_side(old: Any, policy: CompiledPolicy, table: Table, as_of: str | None,
                   progress: Callable[[int, int], None] | None = None) -> tuple[ScopedSide, dict[str, Any]]:
    """The new side of ``impact 1.x 2.0``: each 1.x row converted to a 2.0 record, then decided as a debtor.

    A row that cannot be converted is a reject of this side with its reasons; the report's
    ``conversion`` block counts the rows converted and each assumption they rest on.
    """
    from .convert import convert_all, table_items

    reader = old.policies[0] if old.policies else None
    converted = convert_all(table_items(table, reader), as_of)
    decisions, rejects, _ = _decide_converted(policy, converted.conversions, as_of, progress)
    rejects = sorted([*_not_converted(converted), *rejects], key=lambda r: r["row"])
    return ScopedSide(policy, decisions, rejects, max(table.rows_read, converted.rows_read)), _conversion(converted)


def _decide_converted(policy: CompiledPolicy, conversions: Sequence[tuple[int, Any]], as_of: str | None,
                      progress: Callable[[int, int], None] | None
                      ) -> tuple[pd.DataFrame, list[dict[str, Any]], pd.DataFrame]:
    """Converted records (input row, conversion) decided as debtors under ``policy``."""
    import json
    import tempfile

    rows = [row for row, _ in conversions]
    with tempfile.TemporaryDirectory(prefix="policy-engine-impact-") as tmp:
        path = Path(tmp) / "converted.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for _, c in conversions:
                fh.write(json.dumps(c.record, ensure_ascii=False) + "\n")
        return _scoped_run(policy, path, rows, as_of, progress, len(rows))


def _not_converted(converted: Any) -> list[dict[str, Any]]:
    return [{**r, "reason": "not converted"} for r in converted.rejects]


def _conversion(converted: Any) -> dict[str, Any]:
    """The report's ``conversion`` block: rows converted, rows not, and each assumption they rest on."""
    return {"converted": converted.converted, "not_converted": len(converted.rejects),
            "assumed_facts": converted.assumptions()}


def _scoped_days(ref: PolicyRef, table: Table, as_of: str | None) -> dict[int, CompiledPolicy]:
    """Frame row -> the version with scopes in force on its day, for NEW named by id (empty: none is)."""
    from ..portfolio.tables import row_days

    days = row_days(table.frame, as_of)
    # a day under no version: the flat run rejects its rows with the reason
    chosen = {day: ref.for_day_or_refusal(day) for day in dict.fromkeys(days.tolist())}
    return {i: c for i, day in enumerate(days.tolist())
            if not isinstance(c := chosen[day], UsageError) and c.scoped is not None}


@dataclass
class MixedSide(_Counted):
    """NEW named by id over rows of several days: rows under a 1.x version decided as they are, rows under
    a version with scopes converted to 2.0 records and decided as debtors (one part per version used)."""

    parts: list[Any]  # BatchResult of the flat versions, ScopedSide of each version with scopes
    decisions: pd.DataFrame
    rejects: list[dict[str, Any]]
    rows_read: int

    @property
    def policies(self) -> list[CompiledPolicy]:
        return [p.policy for p in self.parts]


def _mixed_side(old: Any, ref: PolicyRef, table: Table, scoped: dict[int, CompiledPolicy], as_of: str | None,
                progress: Callable[[int, int], None] | None) -> tuple[MixedSide, dict[str, Any]]:
    """The new side of ``impact ID@1.x ID``: each row under the version in force on its day, converted
    first when that version decides debtors (as a pinned 2.0 NEW does); the ``conversion`` block
    counts the converted rows only. Rows the table could not read go with the flat rows when there are
    some (their run reports them), else with the converted ones (each a reject with its problems)."""
    from ..portfolio.batch import table_rejects
    from ..portfolio.frame import Problem, duplicate_ids
    from ..portfolio.tables import decide_table
    from .convert import convert_all, table_items

    # Over the whole table, as the old side checks it: an id seen on an earlier row is a reject
    # whichever half (version) either row falls under.
    dups = {p.row: p for p in duplicate_ids(table.frame, table.positions)}
    flat = [i for i in range(len(table.frame)) if i not in scoped]
    parts: list[Any] = []
    rejects: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    if flat:
        flat_dups = [Problem(k, p.path, p.message, p.code) for k, i in enumerate(flat) if (p := dups.get(i))]
        run = decide_table(ref, _subtable(table, flat, problems=True), as_of, progress=progress, duplicates=flat_dups)
        parts += run.parts
        rejects += run.rejects
        frames += [run.decisions] if run.parts else []
    twice = sorted(i for i in scoped if i in dups)
    if twice:
        sub = _subtable(table, twice, problems=False)
        rejects += table_rejects(sub, [Problem(k, p.path, p.message, p.code) for k, p in
                                       enumerate(dups[i] for i in twice)], sub.positions)
    reader = old.policies[0] if old.policies else None
    converted = convert_all(table_items(_subtable(table, sorted(i for i in scoped if i not in dups),
                                                  problems=not flat), reader), as_of)
    rejects += _not_converted(converted)
    positions = table.positions if table.positions is not None else np.arange(len(table.frame), dtype=np.int64)
    version_of = {int(positions[i]) + 1: policy for i, policy in scoped.items()}  # input row -> version
    groups: dict[int, tuple[CompiledPolicy, list[tuple[int, Any]]]] = {}
    for row, c in converted.conversions:
        groups.setdefault(id(version_of[row]), (version_of[row], []))[1].append((row, c))
    for policy, conversions in groups.values():
        decisions, failed, _ = _decide_converted(policy, conversions, as_of, progress)
        parts.append(ScopedSide(policy, decisions, failed, len(conversions)))
        rejects += failed
        frames.append(decisions)
    side = MixedSide(parts, _merged(frames), sorted(rejects, key=lambda r: r["row"]), table.rows_read)
    if side.decided + side.rejected != side.rows_read:  # the accounting is a contract, not a hope
        raise AssertionError(f"accounting broken: {side.rows_read} read, {side.decided} decided, "
                             f"{side.rejected} rejected")
    return side, _conversion(converted)


def _subtable(table: Table, rows: list[int], problems: bool) -> Table:
    """The frame rows ``rows`` of ``table`` (with its unreadable rows when ``problems``), as a table of their own."""
    positions = table.positions if table.positions is not None else np.arange(len(table.frame), dtype=np.int64)
    idx = np.asarray(rows, dtype=np.int64)
    return Table(table.frame.iloc[idx], table.text, problems=table.problems if problems else [],
                 positions=positions[idx], rows_read=len(idx) + (len(table.problems) if problems else 0),
                 source=table.source, offsets=table.offsets[idx] if table.offsets is not None else None)


def _merged(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Decision tables of several runs as one, in input row order (categories as text: each run has its own)."""
    if not frames:
        return _no_decisions().reset_index()
    plain = [f.astype({c: object for c in f.columns if isinstance(f[c].dtype, pd.CategoricalDtype)}) for f in frames]
    return pd.concat(plain, ignore_index=True).sort_values("row", kind="stable").reset_index(drop=True)


_EXPOSURE_BALANCE = re.compile(r"^exposures\[\d+\]\.balance$")


def _balances(table: Table, rows: pd.Index) -> np.ndarray | None:
    """Each compared client's balance: its loan's (record 1.x) or the sum of its exposures' (record 2.0);
    0 where it has none; None when the table has no balance (a policy that reads none): a matrix of ones
    would read as balances."""
    frame = table.frame
    if "loan.balance" in frame.columns:
        raw = pd.to_numeric(frame["loan.balance"], errors="coerce").to_numpy(dtype=float)
    else:
        columns = [c for c in frame.columns if _EXPOSURE_BALANCE.match(str(c))]
        if not columns:
            return None
        raw = np.nansum([pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float) for c in columns], axis=0)
    positions = rows.to_numpy(dtype=np.int64) - 1  # decision 'row' is 1-based in the input (no row: still integers)
    if table.positions is not None:  # a row the flat reader could not read has no balance here (a debtor line)
        lookup = {int(p): i for i, p in enumerate(table.positions)}
        positions = np.array([lookup.get(int(p), -1) for p in positions], dtype=int)
    found = positions >= 0
    return np.where(found, np.nan_to_num(raw[np.where(found, positions, 0)], nan=0.0), 0.0) if len(raw) else \
        np.zeros(len(positions))


def _compared_balances(a: Any, b: Any, table: Table | Path, rows: pd.Index) -> np.ndarray | None:
    """The balance of each compared row: from the debtors' exposures when both sides decided debtors (the
    portfolio is read by them, never flattened), else from the table."""
    if isinstance(a, ScopedSide) and isinstance(b, ScopedSide):
        return _exposure_balances(a, b, rows)
    assert isinstance(table, Table)
    return _balances(table, rows)


def _exposure_balances(a: ScopedSide, b: ScopedSide, rows: pd.Index) -> np.ndarray | None:
    """Each compared debtor's balance, the sum of its exposures' (0 where none is known), as the side that reads
    balances has them (both read the same record); None when neither version reads an exposure's balance."""
    side = next((s for s in (a, b) if s.exposures is not None and "balance" in s.exposures.columns), None)
    if side is None or side.exposures is None:
        return None
    sums = side.exposures.groupby("row")["balance"].sum(min_count=1)
    return np.nan_to_num(sums.reindex(rows).to_numpy(dtype=float), nan=0.0)


def _by_segment(seg: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> dict[str, dict[str, int]]:
    """Clients, grade changes, downgrades and upgrades per segment (grade ranks: ``ra`` before, ``rb`` after)."""
    out = {}
    for s in sorted(set(seg)):
        m = seg == s
        out[s] = {"clients": int(m.sum()), "grade_changed": int(((ra != rb) & m).sum()),
                  "downgrades": int(((rb > ra) & m).sum()), "upgrades": int(((rb < ra) & m).sum())}
    return out


def _listed(da: pd.DataFrame, db: pd.DataFrame, shown: np.ndarray, seg: np.ndarray,
            scored: tuple[bool, bool] = (True, True), retold: Mapping[str, np.ndarray] | None = None
            ) -> list[dict[str, Any]]:
    """The changed clients the report lists: both sides' grade, deciding rule, score (null when
    neither version has a scorecard: a made-up 0 -> 0 would read as a score), and what moved (``retold``: per
    action, the rows it was given on both sides with other terms)."""
    retold = retold or {}
    rows = da.index
    ga, gb = da["grade"].astype(str).to_numpy(), db["grade"].astype(str).to_numpy()
    wa, wb = _lists(da["warnings"].iloc[shown]), _lists(db["warnings"].iloc[shown])
    aa, ab = _lists(da["actions"].iloc[shown]), _lists(db["actions"].iloc[shown])
    ub = _lists(db["undetermined"].iloc[shown]) if "undetermined" in db.columns else [[] for _ in shown]
    return [{
        "row": int(rows[i]), "client_id": str(da["client_id"].iloc[i]), "segment": str(seg[i]),
        "grade": [ga[i], gb[i]], "decided_by": [str(da["decided_by"].iloc[i]), str(db["decided_by"].iloc[i])],
        "score": [float(da["score"].iloc[i]) if scored[0] else None,
                  float(db["score"].iloc[i]) if scored[1] else None] if any(scored) else None,
        **_moves("warnings", wa[k], wb[k], ub[k]), **_moves("actions", aa[k], ab[k], ub[k]),
        "actions_retold": [aid for aid, mask in retold.items() if mask[i]],
    } for k, i in enumerate(shown)]


def _changed_lists(kind: str, da: pd.DataFrame, db: pd.DataFrame, a: Any, b: Any, rows: pd.Index) -> np.ndarray:
    """Per compared row, whether its warnings (or actions) changed: which fired, or, both sides grading
    exposures, which exposures they name. Lists come out in policy order, so joined text compares them without
    a Python loop per row."""
    changed = _joined(da[kind]) != _joined(db[kind])
    ea, eb = getattr(a, "exposures", None), getattr(b, "exposures", None)
    if ea is not None and eb is not None:
        changed |= _named(ea, kind, rows) != _named(eb, kind, rows)
    return changed


def _changed_actions(da: pd.DataFrame, db: pd.DataFrame, a: Any, b: Any, rows: pd.Index,
                     policies: Sequence[CompiledPolicy]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Per compared row, whether its actions changed (given, taken away, or told otherwise), and per action told
    otherwise the rows it was."""
    changed = _changed_lists("actions", da, db, a, b, rows)
    retold = _actions_retold(da, db, a.policies or policies, b.policies or policies)
    for mask in retold.values():
        changed = changed | mask
    return changed, retold


def _actions_retold(da: pd.DataFrame, db: pd.DataFrame, old: Sequence[CompiledPolicy], new: Sequence[CompiledPolicy]
                    ) -> dict[str, np.ndarray]:
    """Per action given on both sides of a compared row, whether it tells the row something else: another type,
    another fixed parameter (reduce the exposure by 30% -> 50%), or a computed parameter of another value. A
    comparison of ids alone read '0 change actions' while every debtor's instruction had changed."""
    if not len(da) or "policy_version" not in da.columns:  # no row compared
        return {}
    terms_a, terms_b = _action_terms(old), _action_terms(new)
    version_a, version_b = (d["policy_version"].astype(str).to_numpy() for d in (da, db))
    given_a, given_b = ("\x1f" + pd.Series(_joined(d["actions"])) + "\x1f" for d in (da, db))
    out: dict[str, np.ndarray] = {}
    for aid in sorted({aid for t in terms_a.values() for aid in t} & {aid for t in terms_b.values() for aid in t}):
        both = (given_a.str.contains(f"\x1f{aid}\x1f", regex=False)
                & given_b.str.contains(f"\x1f{aid}\x1f", regex=False)).to_numpy(dtype=bool)
        if not both.any():
            continue
        ta = pd.Series(version_a).map({v: t.get(aid) for v, t in terms_a.items()}).to_numpy(dtype=object)
        tb = pd.Series(version_b).map({v: t.get(aid) for v, t in terms_b.items()}).to_numpy(dtype=object)
        differs = ta != tb
        for name in {n for t in terms_a.values() for n in (t.get(aid) or ("", "", ()))[2]}:
            column = f"param.{aid}.{name}"
            if column in da.columns and column in db.columns:
                differs |= ~_same_cells(da[column], db[column])
        if (hit := both & differs).any():
            out[aid] = hit
    return out


def _action_terms(policies: Sequence[CompiledPolicy]) -> dict[str, dict[str, tuple[str, str, tuple[str, ...]]]]:
    """Per version, each action's type, fixed parameters (as canonical JSON) and the names of its computed ones."""
    return {p.version: {a.id: (a.action, json.dumps(dict(a.params), sort_keys=True, default=str),
                               tuple(sorted(a.param_exprs))) for a in p.actions} for p in policies}


def _same_cells(x: pd.Series, y: pd.Series) -> np.ndarray:
    """Cell by cell, whether two columns hold the same value (two nulls are the same)."""
    nx, ny = x.isna().to_numpy(dtype=bool), y.isna().to_numpy(dtype=bool)
    equal = x.to_numpy(dtype=object, na_value=None) == y.to_numpy(dtype=object, na_value=None)
    return (nx & ny) | (~nx & ~ny & np.asarray(equal, dtype=bool))


def _named(exposures: pd.DataFrame, kind: str, rows: pd.Index) -> np.ndarray:
    """Per compared row, which exposures its warnings (or actions) name: each exposure with the ones naming it
    (``for_exposures``), in the record's order; empty text for a row none names."""
    if kind not in exposures.columns or not len(exposures):
        return np.full(len(rows), "", dtype=object)
    exposures = exposures[exposures["row"].isin(rows)]  # the compared rows' only (a rejected side has none)
    listed = _joined(exposures[kind])
    keep = listed != ""
    pairs = pd.Series(exposures["exposure_id"].astype(str).to_numpy()[keep] + "=" + listed[keep].astype(str),
                      index=exposures["row"].to_numpy()[keep])
    by_row = pairs.groupby(level=0, sort=False).agg("\x1e".join)
    return by_row.reindex(rows, fill_value="").to_numpy(dtype=object)


def _with_exposure_changes(listed: list[dict[str, Any]], ea: pd.DataFrame | None, eb: pd.DataFrame | None) -> None:
    """Both versions grading exposures: each listed debtor's exposures whose grade or deciding rule moved
    (``exposures_changed``), the why a debtor-level line cannot show (which loan, which floor)."""
    if ea is None or eb is None or not listed:
        return
    wanted = {c["row"] for c in listed}
    before = ea[ea["row"].isin(wanted)].assign(_at=lambda f: np.arange(len(f)))
    after = eb[eb["row"].isin(wanted)].assign(_at_new=lambda f: np.arange(len(f)))
    both = before.merge(after, on=["row", "exposure_id"], how="outer", suffixes=("_old", "_new"))
    both = both.sort_values(["_at", "_at_new"], na_position="last", kind="stable")  # the record's order
    moved: dict[int, list[dict[str, Any]]] = {}
    named = [kind for kind in ("warnings", "actions") if {f"{kind}_old", f"{kind}_new"} <= set(both.columns)]
    for r in both.to_dict("records"):
        pair = [_text_or_none(r["grade_old"]), _text_or_none(r["grade_new"])]
        rules = [_text_or_none(r["decided_by_old"]), _text_or_none(r["decided_by_new"])]
        entry: dict[str, Any] = {"exposure_id": str(r["exposure_id"]), "grade": pair, "decided_by": rules}
        for kind in named:  # the warnings and actions naming it (for_exposures), when those changed
            lists = [_ids_or_none(r[f"{kind}_old"]), _ids_or_none(r[f"{kind}_new"])]
            if lists[0] != lists[1]:
                entry[kind] = lists
        if pair[0] != pair[1] or rules[0] != rules[1] or len(entry) > 3:
            moved.setdefault(int(r["row"]), []).append(entry)
    for c in listed:
        c["exposures_changed"] = moved.get(c["row"], [])


def _exposure_moves(report: dict[str, Any], c: Mapping[str, Any], lang: str, shown: int = 3) -> str:
    """The exposures of a changed debtor that moved, as its line's last cell: which loan, by which floor, and which
    warnings and actions naming it came (+) or went (-); nothing for one loan that moved as the debtor did."""
    moved = c.get("exposures_changed", ())
    if len(moved) == 1 and moved[0]["grade"] == c["grade"] and moved[0]["decided_by"] == c["decided_by"] \
            and "warnings" not in moved[0] and "actions" not in moved[0]:
        return ""  # the debtor's line says it already (JSON names the exposure)
    text = "; ".join(f"{printable(e['exposure_id'])}: {_exposure_move(report, e, lang)}" for e in moved[:shown])
    return text + (f"; +{len(moved) - shown}" if len(moved) > shown else "")


def _exposure_move(report: dict[str, Any], e: Mapping[str, Any], lang: str) -> str:
    """How one exposure of a changed client moved: its grade and deciding floor, and the warnings and actions
    naming it, each only when it changed."""
    w = words(report, lang)
    parts = []
    if e["grade"][0] != e["grade"][1] or e["decided_by"][0] != e["decided_by"][1]:
        parts.append(f"{_grade(report, e['grade'][0] or '-', lang)} → {_grade(report, e['grade'][1] or '-', lang)} "
                     f"({e['decided_by'][0] or '-'} → {e['decided_by'][1] or '-'})")
    for kind in ("warnings", "actions"):
        if kind in e:
            before, after = e[kind][0] or [], e[kind][1] or []
            parts.append(f"{w[kind].lower()} " + _moved([x for x in after if x not in before],
                                                [x for x in before if x not in after]))
    return w["comma"].join(parts)


def _ids_or_none(v: Any) -> list[str] | None:
    """A list cell of an exposure table (the ids naming the exposure), None where the side has no such exposure."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    return [str(x) for x in v]


def _text_or_none(v: Any) -> str | None:
    return None if v is None or (isinstance(v, float) and v != v) else str(v)


def _moves(kind: str, before: list[str], after: list[str], undetermined_after: list[str]) -> dict[str, list[str]]:
    """What a client gained and lost of one kind of rule; what fired before and is undetermined after is
    not lost (a missing fact is no improvement): ``<kind>_undetermined``."""
    gone = set(before) - set(after)
    return {f"{kind}_added": sorted(set(after) - set(before)),
            f"{kind}_removed": sorted(gone - set(undetermined_after)),
            f"{kind}_undetermined": sorted(gone & set(undetermined_after))}


def _segment_names(segment: pd.Series, segmented: bool) -> np.ndarray:
    """Each client's segment as text: without segments every client is in one group, 'all';
    a client of a segmented policy in none of its segments is in '(none)', never 'nan'."""
    names = segment.astype(object).to_numpy(copy=True)
    names[pd.isna(names)] = NO_SEGMENT if segmented else ALL
    return names.astype(str).astype(object)


def _side(run: TableRun, policy: CompiledPolicy) -> dict[str, Any]:
    """A side's policy: one version, or (a policy id over clients of several dates) every version used."""
    if len(run.parts) <= 1:
        return {"id": policy.id, "version": policy.version, "sha256": policy.sha256}
    return {"id": policy.id, "version": ", ".join(p.version for p in run.policies), "sha256": None,
            "versions": [{"version": p.policy.version, "sha256": p.policy.sha256, "decided": p.decided}
                         for p in run.parts]}


def _no_decisions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=object) for c in (
        "row", "client_id", "segment", "grade", "decided_by", "score", "warnings", "actions")}).set_index("row")


def _before_after(before: Any, after: Any, und_before: Counter[str] | None = None,
                  und_after: Counter[str] | None = None, shown: set[str] | frozenset[str] = frozenset()
                  ) -> dict[str, dict[str, int]]:
    """Clients each rule fired for on each side; with the clients it was undetermined for, when any was
    (``old_undetermined``, ``new_undetermined``): a count that fell because the facts are missing on the
    new side (a converted record has no cash flow for debt service) is not read as an improvement."""
    b, a = Counter(map(str, before)), Counter(map(str, after))
    ub, ua = und_before or Counter(), und_after or Counter()
    out: dict[str, dict[str, int]] = {}
    for k in sorted(set(b) | set(a) | set(ub) | set(ua) | set(shown)):
        out[k] = {"old": b.get(k, 0), "new": a.get(k, 0), "change": a.get(k, 0) - b.get(k, 0)}
        if ub or ua:
            out[k] |= {"old_undetermined": ub.get(k, 0), "new_undetermined": ua.get(k, 0)}
    return out


def _rule_counts(da: pd.DataFrame, db: pd.DataFrame, policies: list[CompiledPolicy],
                 sides: tuple[list[CompiledPolicy], list[CompiledPolicy]] = ([], [])) -> dict[str, Any]:
    """``warnings`` and ``actions``: per rule, the compared clients it fired (and was undetermined) for. A rule one
    side has and the other has not (``sides``: each side's versions) is counted even where it fired for none: a
    committee reviewing a new warning sees it fired 0 times, not nothing."""
    # each side's undetermined lists read once (a portfolio may hold a million rows), then split by kind
    und = [Counter(map(str, _flatten_lists(d["undetermined"]))) if "undetermined" in d.columns else Counter()
           for d in (da, db)]
    out: dict[str, Any] = {}
    for key, kind in (("warnings", "warnings"), ("actions", "actions")):
        ids = {r.id for p in policies for r in getattr(p, kind)}
        each = [{r.id for p in side for r in getattr(p, kind)} for side in sides]
        ua, ub = (Counter({k: n for k, n in c.items() if k in ids}) for c in und)
        out[key] = _before_after(_flatten_lists(da[key]), _flatten_lists(db[key]), ua, ub,
                                 each[0] ^ each[1] if all(sides) else set())
    return out


@dataclass(frozen=True)
class Gate:
    """One --fail-if condition: a figure of the summary, or of a metric's totals (``metric`` set)."""

    name: str
    op: str
    limit: str
    metric: str | None = None
    segment: str | None = None
    field: str | None = None


def parse_gate(gate: str) -> Gate:
    """A --fail-if condition, or a usage error (exit 2) saying which names there are."""
    m = _GATE.match(gate)
    if not m:
        raise UsageError([Diagnostic("bad-gate", f"--fail-if '{gate}' is not 'NAME OP NUMBER'", hint=(
            f"NAME one of {', '.join(GATES)}, or total.METRIC.FIELD (total.METRIC[SEGMENT].FIELD); "
            "OP one of > >= < <= =="))])
    if m["metric"] is None and m["name"] not in GATES:
        meant = did_you_mean(m["name"], GATES)
        raise UsageError([Diagnostic("bad-gate", f"--fail-if '{gate}': no figure '{m['name']}' in the report",
                                     hint=(f"{meant} " if meant else "")
                                     + f"NAME one of {', '.join(GATES)}, or total.METRIC.FIELD")])
    if m["metric"] is not None and m["field"] not in FIELDS:
        meant = did_you_mean(m["field"], FIELDS)
        raise UsageError([Diagnostic("bad-gate", f"--fail-if '{gate}': a total has no figure '{m['field']}'",
                                     hint=(f"{meant} " if meant else "") + f"FIELD one of {', '.join(FIELDS)}")])
    if not math.isfinite(float(m["limit"])):  # 1e400 is inf: the report's JSON would say Infinity, which is no JSON
        raise UsageError([Diagnostic("bad-gate", f"--fail-if '{gate}': {m['limit']} is beyond any number a figure "
                                     "can be", hint="write a limit a report figure could reach (below 1e308)")])
    return Gate(m["name"], m["op"], m["limit"], m["metric"], m["segment"], m["field"])


def gate_metrics(gates: Sequence[str]) -> list[str]:
    """The metrics the gates read totals of (checked first: a bad gate costs no run)."""
    return [g.metric for g in map(parse_gate, gates) if g.metric is not None]


def gate_results(report: dict[str, Any], gates: Sequence[str]) -> list[dict[str, Any]]:
    """Each --fail-if condition as given, with the figure it read and whether it failed: what a CI step
    shows or charts without parsing words (``failed_gates`` holds the words of those that failed).

    A total's figure with no value (a relative change of a sum that was 0) fails its gate: nothing
    shows the condition is false, and ``says`` tells why. So does every gate of a run that compared
    no client (an empty portfolio, or every row rejected): its counts and shares are 0 of nothing.
    """
    out = []
    for written, gate in ((g, parse_gate(g)) for g in gates):
        entry = {"gate": written, "figure": gate.name, "op": gate.op, "limit": float(gate.limit), "value": None}
        counted = gate.name == "compared" or (gate.name.startswith("rejected") and report["summary"]["rejected"])
        if not report.get("clients") and not counted:
            out.append({**entry, "failed": True, "says": f"no client was compared ({_nothing_compared(report)}), "
                        f"so '{gate.name} {gate.op} {gate.limit}' cannot be shown false"})
            continue
        if gate.name == "compared":  # how many clients the report rests on: 'compared < 1000' guards a thin run
            value = report["clients"]
        elif gate.metric is None and gate.name not in report["summary"]:
            raise UsageError([Diagnostic("bad-gate", f"--fail-if '{written}': the report has no figure '{gate.name}'",
                                         hint="exposure figures are those of two versions that grade exposures "
                                              "(debtor records); nonperforming_balance_change needs balances")])
        elif gate.metric is None:
            value = report["summary"][gate.name]
        elif gate.metric not in report.get("totals", {}):
            raise UsageError([Diagnostic("bad-gate", f"--fail-if: the report has no totals of '{gate.metric}'",
                                         hint=f"add --total {gate.metric}")])
        else:
            assert gate.field is not None
            value = gate_value(report, gate.metric, gate.segment, gate.field)
        if value is None:
            out.append({**entry, "failed": True, "says": f"{gate.name} has no value "
                        f"({undefined_reason(gate.field or '')}), so '{gate.name} {gate.op} {gate.limit}' cannot "
                        "be shown false"})
            continue
        shown = round(value, 9) if isinstance(value, float) else value  # no float noise (0.19999999999999998)
        failed = bool(_OPS[gate.op](value, float(gate.limit)))
        out.append({**entry, "value": shown, "failed": failed,
                    "says": f"{gate.name} = {shown} {gate.op} {gate.limit}" if failed else
                    f"{gate.name} = {shown}: not {gate.op} {gate.limit}"})
    return out


def _nothing_compared(report: dict[str, Any]) -> str:
    rejected = report.get("rejected")
    read = rejected.get("rows_read") if isinstance(rejected, dict) else None
    if not read:
        return "the portfolio has no row"
    return f"each of its {read:,} rows was rejected"


# ------------------------------------------------------------------ rendering
#
# Every format renders the same sections, built once from the report by ``sections``: what a
# credit committee reads in the terminal, on a pull request or in the HTML page is the same set
# of figures as the JSON. Only the layout differs (and the HTML adds charts over those tables).

WORDS: dict[str, dict[str, str]] = {
    "en": {
        "clients": "clients", "clients_col": "clients", "change_grade": "change grade", "down": "down", "up": "up",
        "change_warnings": "change warnings", "change_actions": "change actions",
        "migration_counts": "Grade migration, clients (rows: before, columns: after)",
        "migration_balance": "Grade migration, balance (rows: before, columns: after)",
        "migration_cells": "Grade migration, clients and balance", "move": "before → after",
        "exposure_migration_counts": "Exposure grade migration, exposures (rows: before, columns: after)",
        "exposure_migration_balance": "Exposure grade migration, balance (rows: before, columns: after)",
        "exposure_migration_cells": "Exposure grade migration, exposures and balance", "exposures_col": "exposures",
        "balance": "balance", "before_after": "before \\ after",
        "distribution": "Grade distribution", "grade": "grade", "before": "before", "after": "after",
        "change": "change", "warnings": "Warnings", "warning": "warning", "actions": "Actions", "action": "action",
        "by_segment": "By {by}", "segment": "segment", "grade_changed": "grade changed", "downgrades": "downgrades",
        "upgrades": "upgrades", "changed_clients": "Clients that changed", "score": "score",
        "listed": "{total:,} changed; {shown:,} listed", "client": "client", "decided_by": "decided by",
        "rejected": "Rejected rows", "item": "item", "value": "value", "scenario": "Scenario shocks",
        "shock": "shock", "multiply": "multiply", "add": "add", "cells_changed": "cells changed",
        "upgrade": "upgrade", "downgrade": "downgrade",
        "unchanged": "unchanged", "legend": "Legend", "none": "none", "not_listed": "none listed: --list N lists N",
        "total": "Total", "figure": "figure", "change_pct": "change %", "sum": "sum", "mean": "mean",
        "with_value": "with value", "without_value": "no value", "all_clients": "all clients",
        "no_segment": "no segment", "compared": "{n:,} clients compared",
        "assumed_facts": "Assumed facts (1.x records converted to record 2.0)", "note_code": "note",
        "note_kind": "kind", "records": "records", "reason": "reason",
        "converted": "{converted:,} records converted, {not_converted:,} not converted; the new side rests on these",
        "assumed": "assumed", "unknown": "unknown (left empty)", "not_carried": "not carried",
        "versions": "Versions in force (clients decided under each)", "side": "side", "version": "version",
        "decided": "decided", "by_scorecard": "scorecard", "by_default": "no floor (best grade)",
        "undetermined": "undetermined (before → after)",
        "rows_rejected": "rows rejected on either side", "rows_read": "rows read", "clients_compared": "compared",
        "orphaned": "orphaned rows of the tables", "tables": "table", "comma": ", ",
        "exposures_changed": "Exposures changed",
        "gates": "Gates (--fail-if)", "gate": "gate", "result": "result", "gate_failed": "FAILED: ",
        "gate_held": "passed: ",
        "table_counts": "read {read} = decided {decided} + rejected {rejected} + orphaned {orphaned}",
        "one_scorecard": "; scores not compared: only the {side} version has a scorecard",
        "marked_undetermined": "; ?rule: fired before, undetermined after",
        "undetermined_note": "undetermined: clients a rule could not be decided for (a fact it reads is missing), "
                             "counted in neither before nor after",
    },
    "zh": {
        "clients": "户", "clients_col": "户数", "change_grade": "户分类变化", "down": "户下调", "up": "户上调",
        "change_warnings": "户预警变化", "change_actions": "户措施变化",
        "migration_counts": "分类迁移（户数；行：变更前，列：变更后）",
        "migration_balance": "分类迁移（余额；行：变更前，列：变更后）",
        "migration_cells": "分类迁移：户数与余额", "move": "变更前 → 变更后",
        "exposure_migration_counts": "债项分类迁移（笔数；行：变更前，列：变更后）",
        "exposure_migration_balance": "债项分类迁移（余额；行：变更前，列：变更后）",
        "exposure_migration_cells": "债项分类迁移：笔数与余额", "exposures_col": "笔数",
        "balance": "余额", "before_after": "变更前 \\ 变更后",
        "distribution": "分类分布", "grade": "分类", "before": "变更前", "after": "变更后",
        "change": "变化", "warnings": "预警", "warning": "预警", "actions": "措施", "action": "措施",
        "by_segment": "按{by}", "segment": "细分", "grade_changed": "分类变化", "downgrades": "下调",
        "upgrades": "上调", "changed_clients": "发生变化的客户", "score": "评分",
        "listed": "共 {total:,} 户变化，列出 {shown:,} 户", "client": "客户", "decided_by": "决定规则",
        "rejected": "被拒绝的行", "item": "项目", "value": "数值", "scenario": "情景冲击",
        "shock": "冲击", "multiply": "乘以", "add": "加上", "cells_changed": "变动单元格",
        "upgrade": "上调", "downgrade": "下调",
        "unchanged": "不变", "legend": "图例", "none": "无", "not_listed": "未列出：--list N 列出 N 户",
        "total": "合计", "figure": "指标", "change_pct": "变化率", "sum": "总和", "mean": "平均",
        "with_value": "有值户数", "without_value": "无值户数", "all_clients": "全部客户",
        "no_segment": "无细分", "compared": "比较 {n:,} 户",
        "assumed_facts": "假设的事实（1.x 记录转换为 2.0 记录）", "note_code": "说明", "note_kind": "类别",
        "records": "记录数", "reason": "原因",
        "converted": "转换 {converted:,} 条，未能转换 {not_converted:,} 条；变更后一侧的结论以此为前提",
        "assumed": "假设", "unknown": "未知（留空）", "not_carried": "未带入",
        "versions": "生效版本（各版本决策户数）", "side": "一侧", "version": "版本", "decided": "决策户数",
        "by_scorecard": "评分卡", "by_default": "未触发底线（基准等级）",
        "undetermined": "无法判定（变更前 → 变更后）",
        "rows_rejected": "任一侧被拒绝的行", "rows_read": "读取行数", "clients_compared": "比较户数",
        "orphaned": "各表中无所属的行", "tables": "表", "comma": "，",
        "exposures_changed": "变化的债项",
        "gates": "门槛（--fail-if）", "gate": "门槛", "result": "结果", "gate_failed": "未通过：",
        "gate_held": "通过：",
        "table_counts": "读取 {read} = 决策 {decided} + 拒绝 {rejected} + 无所属 {orphaned}",
        "one_scorecard": "；评分不作比较：只有{side}版本有评分卡",
        "marked_undetermined": "；?规则：变更前触发，变更后无法判定",
        "undetermined_note": "无法判定：因规则所读事实缺失而无法得出结论的客户，不计入变更前或变更后的户数",
    },
}


# A stress test compares a baseline with the shocked portfolio: nothing was changed, so its Chinese report says
# 基准 / 压力后, not 变更前 / 变更后 (a policy change); English 'before' / 'after' reads right for both.
_STRESS_ZH = {k: v.replace("变更前", "基准").replace("变更后", "压力后") for k, v in WORDS["zh"].items()}


# A portfolio of debtor records (record 2.0, both versions grading exposures) is counted in debtors: a debtor is
# a record, a line of JSON Lines or a row of the debtors table, and what the report lists.
_DEBTOR_WORDS: dict[str, dict[str, str]] = {
    "en": {"clients": "debtors", "clients_col": "debtors", "changed_clients": "Debtors that changed",
           "client": "debtor", "migration_counts": "Grade migration, debtors (rows: before, columns: after)",
           "migration_cells": "Grade migration, debtors and balance", "rejected": "Rejected debtors",
           "all_clients": "all debtors", "compared": "{n:,} debtors compared",
           "versions": "Versions in force (debtors decided under each)",
           "rows_rejected": "debtors rejected on either side", "rows_read": "debtors read",
           "undetermined_note": "undetermined: debtors a rule could not be decided for (a fact it reads is "
                                "missing), counted in neither before nor after"},
    "zh": {"changed_clients": "发生变化的债务人", "client": "债务人", "rejected": "被拒绝的债务人",
           "all_clients": "全部债务人", "rows_rejected": "任一侧被拒绝的债务人", "rows_read": "读取债务人数",
           "undetermined_note": "无法判定：因规则所读事实缺失而无法得出结论的债务人，不计入变更前或变更后的户数"},
}
_WORDS_OF = {(lang, stress, debtors): {**base, **(_DEBTOR_WORDS[lang] if debtors else {})}
             for lang in WORDS for stress in (False, True) for debtors in (False, True)
             for base in [_STRESS_ZH if lang == "zh" and stress else WORDS[lang]]}


def words(report: dict[str, Any], lang: str) -> dict[str, str]:
    """The words of a report in ``lang``: a scenario's (``simulate``) or a policy change's (``impact``), over
    clients or debtors (``records``)."""
    return _WORDS_OF[lang, bool(report.get("scenario")), report.get("records") == "debtors"]


def grade_labels(policy: CompiledPolicy) -> dict[str, dict[str, str]]:
    """Grade id -> {zh, en}: reports label grades as a committee names them, not by id."""
    return {g.id: {"zh": g.zh, "en": g.en} for g in policy.scale}


def rule_labels(policies: Sequence[CompiledPolicy]) -> dict[str, dict[str, dict[str, str]]]:
    """Warning and action id -> {zh, en}: a warning's own label, an action's own or its action type's name (the
    later policy's where both have one), so a committee reads 现金流紧张（cash_strain）, not only the id."""
    out: dict[str, dict[str, dict[str, str]]] = {"warnings": {}, "actions": {}}
    for p in policies:
        out["warnings"].update({w.id: dict(w.label) for w in p.warnings if w.label})
        out["actions"].update({a.id: dict(a.label) if a.label else {"zh": a.kind.zh, "en": a.kind.en}
                               for a in p.actions if a.label or a.kind})
    return out


def rule_shown(report: dict[str, Any], kind: str, rule: str, lang: str) -> str:
    """A warning or action as a report lists it: in Chinese its label and id (现金流紧张（cash_strain）); in English
    the id, which is English words already (a label beside it only repeats it: 'Cash strain (cash_strain)')."""
    label = (report.get("rule_labels") or {}).get(kind, {}).get(rule)
    return f"{label['zh']}（{rule}）" if label and lang == "zh" else rule


def with_labels(report: dict[str, Any], policy: CompiledPolicy, old: CompiledPolicy | None = None) -> dict[str, Any]:
    """The report with ``grade_labels``, the warnings' and actions' labels (of ``old`` too, for a rule only it
    has) and the segment dimension of ``policy``, for every renderer."""
    report["grade_labels"] = grade_labels(policy)
    report["rule_labels"] = rule_labels([p for p in (old, policy) if p is not None])
    report.setdefault("segment_by", policy.segment_by)
    if report["segment_by"] is not None and report["segment_by"] == policy.segment_by:
        report.setdefault("segment_label", dict(policy.segment_label) if policy.segment_label else None)
        report.setdefault("segment_labels", {k: dict(v) for k, v in policy.segment_value_labels.items()})
    return report


def segment_name(report: dict[str, Any], lang: str) -> str:
    """What the per-segment tables are headed by: the policy's segment label (行业 / Industry), else its
    segment input's name, or 'segment' for a policy without segments."""
    label = report.get("segment_label")
    if label:
        return str(label[lang])
    return str(report.get("segment_by") or WORDS[lang]["segment"])


def segment_shown(report: dict[str, Any], value: str, lang: str) -> str:
    """A segment value as reports show it: the policy's label for it (制造业), else the value itself."""
    label = (report.get("segment_labels") or {}).get(value)
    return str(label[lang]) if label else value


@dataclass
class Section:
    """One titled table of a report: ``numeric`` marks the columns aligned right in text."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: tuple[int, ...] = ()
    note: str = ""


def _grade(report: dict[str, Any], gid: str, lang: str) -> str:
    return str(report.get("grade_labels", {}).get(gid, {}).get(lang, gid))


def _int(v: Any) -> str:
    return f"{int(v):,}"


def _money(v: Any) -> str:
    return f"{float(v):,.2f}"


def _signed(v: Any) -> str:
    return f"{int(v):+,}"


def _score(v: Any) -> str:
    return "-" if v is None or v != v else f"{float(v):g}"  # v != v: NaN, a score that could not be computed


def _undetermined_cell(v: Mapping[str, int]) -> str:
    """'7 → 500', or nothing for a rule decided for every client on both sides."""
    a, b = v["old_undetermined"], v["new_undetermined"]
    return f"{a:,} → {b:,}" if a or b else ""


def _moved(added: list[str], removed: list[str], undetermined: Sequence[str] = (), retold: Sequence[str] = ()) -> str:
    """+ fired after only, - before only, ? before and undetermined after, ~ given on both sides with other terms."""
    return " ".join([*("+" + x for x in added), *("-" + x for x in removed), *("?" + x for x in undetermined),
                     *("~" + x for x in retold)])


def heading_of(report: dict[str, Any], heading: str, lang: str = "en") -> str:
    """The report's title with the versions compared (the command's own heading, in the chosen language)."""
    title = (report.get("scenario") or {}).get("title")
    if title:  # a scenario titled in both languages heads with its own words
        heading = ("压力情景 " if lang == "zh" else "Scenario ") + title[lang]
    elif lang == "zh":
        heading = "组合影响" if heading == "Portfolio impact" else re.sub(r"^Scenario ", "压力情景 ", heading)
    old, new = report["old"], report["new"]
    if old.get("id") == new.get("id") and old.get("version") == new.get("version"):
        if old.get("sha256") and new.get("sha256") and old["sha256"] != new["sha256"]:  # one version, two texts
            return (f"{heading}: {old['id']} {old['version']} (sha256 {old['sha256'][:12]}) → {new['version']} "
                    f"(sha256 {new['sha256'][:12]})")
        return f"{heading}: {old['id']} {old['version']}"
    return f"{heading}: {old['id']} {old['version']} → {new['version']}"


def summary_line(report: dict[str, Any], lang: str = "en") -> str:
    s, w = report["summary"], words(report, lang)
    if lang == "zh":
        return (f"{report['clients']:,} 户：{s['grade_changed']:,} {w['change_grade']}"
                f"（{s['grade_changed_share']:.2%}；"
                f"{s['downgrades']:,} {w['down']}，{s['upgrades']:,} {w['up']}），{s['warnings_changed']:,} "
                f"{w['change_warnings']}，{s['actions_changed']:,} {w['change_actions']}。"
                + _exposure_line(report, lang))
    return (f"{report['clients']:,} {w['clients']}: {s['grade_changed']:,} change grade "
            f"({s['grade_changed_share']:.2%}; "
            f"{s['downgrades']:,} down, {s['upgrades']:,} up), {s['warnings_changed']:,} change warnings, "
            f"{s['actions_changed']:,} change actions.") + _exposure_line(report, lang)


def _exposure_line(report: dict[str, Any], lang: str) -> str:
    """The exposures' moves after the debtors' (an exposure may move where its debtor does not), or nothing."""
    e = report.get("exposures")
    if not e:
        return ""
    old, new = e["nonperforming"]["old"], e["nonperforming"]["new"]
    if lang == "zh":
        money = f"（余额 {_money(old['balance'])} → {_money(new['balance'])}）" if old["balance"] is not None else ""
        return (f"债项 {e['compared']:,} 笔：{e['grade_changed']:,} 笔分类变化（{e['downgrades']:,} 笔下调，"
                f"{e['upgrades']:,} 笔上调）；不良债项 {old['exposures']:,} → {new['exposures']:,} 笔{money}。")
    money = f" (balance {_money(old['balance'])} → {_money(new['balance'])})" if old["balance"] is not None else ""
    return (f" {e['compared']:,} exposures: {e['grade_changed']:,} change grade ({e['downgrades']:,} down, "
            f"{e['upgrades']:,} up); non-performing {old['exposures']:,} → {new['exposures']:,}{money}.")


def _rejected_section(rejected: Any, w: dict[str, str]) -> Section | None:
    """Whatever the analysis reports as rejected: counts per side, or a count with its detail."""
    if not isinstance(rejected, dict):
        return None
    rows: list[list[str]] = []
    names = {"old": w["before"], "new": w["after"], "rows": w["rows_rejected"], "rows_read": w["rows_read"],
             "compared": w["clients_compared"]}
    # counts are named in words; a list of rejected rows keeps its key before each row's place
    for k, v in ((k if isinstance(v, list | dict) else names.get(k, k), v) for k, v in rejected.items()):
        if isinstance(v, bool) or v is None:
            rows.append([str(k), str(v)])
        elif isinstance(v, int | float):
            rows.append([str(k), _int(v) if float(v).is_integer() else f"{v:,}"])
        elif isinstance(v, str):
            rows.append([str(k), v])
        elif k == "tables" and isinstance(v, dict):  # each side's accounting of each table of a folder
            rows.extend([f"{w['tables']} {table}{w['comma']}{names.get(side, side)}",
                         w["table_counts"].format(**{kk: _int(vv) for kk, vv in c.items()})]
                        for side, by_table in v.items() for table, c in by_table.items())
        elif isinstance(v, dict):  # per side (orphaned rows: before, after), else each key after the block's
            rows.extend([f"{w['orphaned']}{w['comma']}{names.get(kk, kk)}" if k == "orphaned" else f"{k}.{kk}",
                         _int(vv) if isinstance(vv, int) else str(vv)] for kk, vv in v.items())
        elif isinstance(v, list):
            for item in v:
                if isinstance(item, dict):
                    where = " ".join(str(item[x]) for x in ("table", "row", "client_id") if item.get(x) is not None)
                    problems = item.get("problems")
                    text = "; ".join(f"{p.get('field', '')}: {p.get('message', '')}" for p in problems
                                     if isinstance(p, dict)) if isinstance(problems, list) else \
                        str({kk: vv for kk, vv in item.items() if kk not in ("table", "row", "client_id")})
                    rows.append([printable(f"{k} {where}".strip()), printable(text)])
                else:
                    rows.append([str(k), str(item)])
    return Section("rejected", w["rejected"], [w["item"], w["value"]], rows)


def sections(report: dict[str, Any], lang: str = "en") -> list[Section]:
    """The report as titled tables, in the order a committee reads them."""
    w = words(report, lang)
    grades = report["migration"]["grades"]
    names = [_grade(report, g, lang) for g in grades]
    counts, balance = report["migration"]["counts"], report["migration"]["balance"]
    out: list[Section] = []
    if report.get("gates"):  # what a CI step failed on, first, in the report it keeps
        out.append(Section("gates", w["gates"], [w["gate"], w["result"]],
                           [[printable(g["gate"]), (w["gate_failed"] if g["failed"] else w["gate_held"])
                             + printable(g["says"])] for g in report["gates"]]))
    if "rejected" in report:
        rejected = _rejected_section(report["rejected"], words(report, lang))
        if rejected is not None:
            out.append(rejected)
    versions = _versions_section(report, lang)
    if versions is not None:
        out.append(versions)
    cols = range(1, len(grades) + 1)
    out.append(Section("migration_counts", w["migration_counts"], [w["before_after"], *names],
                       [[n, *map(_int, row)] for n, row in zip(names, counts, strict=True)], tuple(cols)))
    if balance is not None:  # a portfolio without balances has the counts alone
        out.append(Section("migration_balance", w["migration_balance"], [w["before_after"], *names],
                           [[n, *map(_money, row)] for n, row in zip(names, balance, strict=True)], tuple(cols)))
    out += _exposure_sections(report, w, names)
    dist = report["grade_distribution"]
    out.append(Section("distribution", w["distribution"], [w["grade"], w["before"], w["after"], w["change"]],
                       [[n, _int(dist["old"][g]), _int(dist["new"][g]), _signed(dist["new"][g] - dist["old"][g])]
                        for g, n in zip(grades, names, strict=True)], (1, 2, 3)))
    for key, what in (("warnings", "warning"), ("actions", "action")):
        # Undetermined counts only where a side has any: most comparisons have none.
        und = any("new_undetermined" in v for v in report[key].values())
        out.append(Section(key, w[key], [w[what], w["before"], w["after"], w["change"],
                                         *([w["undetermined"]] if und else [])],
                           [[printable(rule_shown(report, key, k, lang)), _int(v["old"]), _int(v["new"]),
                             _signed(v["change"]), *([_undetermined_cell(v)] if und else [])]
                            for k, v in report[key].items()], (1, 2, 3, 4) if und else (1, 2, 3),
                           note=w["undetermined_note"] if und else ""))
    by_name = segment_name(report, lang)
    out.append(Section("by_segment", w["by_segment"].format(by=by_name),
                       [by_name, w["clients_col"], w["grade_changed"], w["downgrades"],
                        w["upgrades"]],
                       [[printable(segment_shown(report, k, lang)), _int(v["clients"]), _int(v["grade_changed"]),
                         _int(v["downgrades"]), _int(v["upgrades"])]
                        for k, v in report["by_segment"].items()], (1, 2, 3, 4)))
    out.append(_changed_section(report, lang, by_name))
    out.extend(_total_sections(report, lang, by_name))
    conversion = report.get("conversion")
    if conversion:
        out.append(Section("assumed_facts", w["assumed_facts"],
                           [w["note_code"], w["note_kind"], w["records"], w["reason"]],
                           [[code, w.get(a["kind"], a["kind"]), _int(a["records"]),
                             printable(_assumption_reason(a, lang))]
                            for code, a in conversion["assumed_facts"].items()], (2,),
                           note=w["converted"].format(**conversion)))
    scenario = report.get("scenario")
    if scenario:
        named = (scenario.get("title") or {}).get(lang) or scenario["name"]  # as the report's heading names it
        out.append(Section("scenario", f"{w['scenario']}{'：' if lang == 'zh' else ': '}{named}",
                           [w["shock"], w["segment"], w["multiply"], w["add"], w["cells_changed"]],
                           [[s["field"], segment_shown(report, s["segment"], lang) if s.get("segment") else "",
                             "" if s.get("multiply") is None else f"{s['multiply']:g}",
                             "" if s.get("add") is None else f"{s['add']:g}", _int(s["cells_changed"])]
                            for s in scenario["shocks"]], (2, 3, 4)))
    return out


def _exposure_sections(report: dict[str, Any], w: dict[str, str], names: list[str]) -> list[Section]:
    """The exposures' own migration (counts, balance): one may move into non-performing where its debtor does not."""
    moved = report.get("exposures")
    if not moved:
        return []
    cols = tuple(range(1, len(names) + 1))
    counts, balance = moved["migration"]["counts"], moved["migration"]["balance"]
    out = [Section("exposures_migration_counts", w["exposure_migration_counts"], [w["before_after"], *names],
                   [[n, *map(_int, row)] for n, row in zip(names, counts, strict=True)], cols)]
    if balance is not None:
        out.append(Section("exposures_migration_balance", w["exposure_migration_balance"], [w["before_after"], *names],
                           [[n, *map(_money, row)] for n, row in zip(names, balance, strict=True)], cols))
    return out


def _assumption_reason(assumed: dict[str, Any], lang: str) -> str:
    """An assumed fact's reason in the report's language (a report of an older engine has only the English)."""
    return str(assumed.get("reason_zh") if lang == "zh" and assumed.get("reason_zh") else assumed["reason"])


def _decider(rule: str, w: dict[str, str]) -> str:
    """What decided a grade, as the changed-client list shows it: a floor by its id; no floor at all (the ids
    'scorecard' and 'default', which no rule may take) in words."""
    return w["by_scorecard"] if rule == "scorecard" else w["by_default"] if rule == "default" else rule


def _versions_section(report: dict[str, Any], lang: str) -> Section | None:
    """A side named by a policy id over clients of several days: how many were decided under each version."""
    w = words(report, lang)
    rows = [[w[side], v["version"], _int(v["decided"]), v["sha256"] or ""]
            for side, key in (("before", "old"), ("after", "new")) for v in report[key].get("versions", ())]
    if not rows:
        return None
    return Section("versions", w["versions"], [w["side"], w["version"], w["decided"], "sha256"], rows, (2,))


def _changed_section(report: dict[str, Any], lang: str, by_name: str) -> Section:
    """The changed clients; the score column only when both versions have a scorecard: a score against
    none ('91 -> -' on every line of a 1.x -> 2.0 comparison) compares nothing (JSON keeps the one score)."""
    w = words(report, lang)
    listed = report["changed_clients"]
    sides = [any((c.get("score") or (None, None))[k] is not None for c in listed) for k in (0, 1)]
    scored = all(sides)
    moves = [_exposure_moves(report, c, lang) for c in listed]
    rows = []
    for c, moved in zip(listed, moves, strict=True):
        row = [printable(str(c["client_id"])), printable(segment_shown(report, str(c["segment"]), lang)),
               f"{_grade(report, c['grade'][0], lang)} → {_grade(report, c['grade'][1], lang)}",
               f"{_decider(c['decided_by'][0], w)} → {_decider(c['decided_by'][1], w)}"]
        if scored:
            row.append(f"{_score(c['score'][0])} → {_score(c['score'][1])}")
        rows.append([*row, _moved(c["warnings_added"], c["warnings_removed"], c.get("warnings_undetermined", ())),
                     _moved(c["actions_added"], c["actions_removed"], c.get("actions_undetermined", ()),
                            c.get("actions_retold", ())),
                     *([moved] if any(moves) else [])])
    columns = [w["client"], by_name, w["grade"], w["decided_by"], *([w["score"]] if scored else []), w["warnings"],
               w["actions"], *([w["exposures_changed"]] if any(moves) else [])]
    note = w["listed"].format(total=report["changed_clients_total"], shown=len(listed))
    if any(sides) and not scored:
        note += w["one_scorecard"].format(side=w["before"] if sides[0] else w["after"])
    if any(c.get("warnings_undetermined") or c.get("actions_undetermined") for c in listed):
        note += w["marked_undetermined"]
    return Section("changed_clients", w["changed_clients"], columns, rows, note=note)


def _figure(v: float | None, signed: bool = False) -> str:
    """A total's figure: two decimals from 1 up (amounts), four significant digits below (ratios)."""
    if v is None:
        return "-"
    sign = "+" if signed else ""
    return f"{v:{sign},.2f}" if abs(v) >= 1 or v == 0 else f"{v:{sign}#.4g}"


def _percent(v: float | None) -> str:
    return "-" if v is None else f"{v:+.2%}"


def _total_sections(report: dict[str, Any], lang: str, by_name: str) -> list[Section]:
    """One table per metric of ``--total``: each group's sum and mean before and after, and the
    clients with and without a value (a null is counted, never added as 0)."""
    w = words(report, lang)
    out = []
    for name, entry in report.get("totals", {}).items():
        label = (entry.get("label") or {}).get(lang)
        rows = []
        # no segments: 'all' once; a segment without a client is left out (the JSON keeps it for a gate)
        groups = [(k, v) for k, v in entry["by_segment"].items() if k != ALL and v["clients"]]
        for group, g in [(ALL, entry[ALL]), *groups]:
            old, new = g["old"], g["new"]
            shown = w["all_clients"] if group == ALL else w["no_segment"] if group == NO_SEGMENT \
                else segment_shown(report, group, lang)
            rows += [[printable(shown), w["sum"], _figure(old["sum"]), _figure(new["sum"]),
                      _figure(g["change"], True), _percent(g["change_share"])],
                     ["", w["mean"], _figure(old["mean"]), _figure(new["mean"]), _figure(g["mean_change"], True),
                      _percent(g["mean_change_share"])],
                     ["", w["with_value"], _int(old["count"]), _int(new["count"]),
                      _signed(new["count"] - old["count"]), ""],
                     ["", w["without_value"], _int(old["nulls"]), _int(new["nulls"]),
                      _signed(new["nulls"] - old["nulls"]), ""]]
        out.append(Section(f"total_{name}", f"{w['total']}: {label} ({name})" if label else f"{w['total']}: {name}",
                           [by_name, w["figure"], w["before"], w["after"], w["change"], w["change_pct"]],
                           rows, (2, 3, 4, 5), w["compared"].format(n=entry[ALL]["clients"])))
    return out


def _width(text: str) -> int:
    """Columns a text takes in a terminal: CJK characters take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(width - _width(text), 0)
    return fill + text if right else text + fill


def _wrap(text: str, width: int = 100, indent: str = "") -> list[str]:
    """Lines of at most ``width`` terminal columns, broken at spaces or after CJK punctuation only."""
    tokens = re.findall(r"[^ ，；。：]+[，；。：]?\s*|[ ，；。：]+", text)
    lines, line = [], indent
    for tok in tokens:
        if line.strip() and _width(line + tok.rstrip()) > width:
            lines.append(line.rstrip())
            line = indent
        line += tok
    if line.strip():
        lines.append(line.rstrip())
    return lines


def render_text(report: dict[str, Any], heading: str = "Portfolio impact", lang: str = "en") -> str:
    """The whole report for a terminal, within 100 columns.

    The balance matrix becomes a list of moves (five money columns do not fit), and each changed
    client's warning and action changes go on the lines under it.
    """
    w = words(report, lang)
    lines = [*_wrap(heading_of(report, heading, lang)), *_wrap(summary_line(report, lang))]
    for sec in sections(report, lang):
        below: list[list[str]] = []
        if sec.key in ("migration_balance", "exposures_migration_balance"):
            of_exposures = sec.key.startswith("exposures")
            m = report["exposures" if of_exposures else "migration"]
            m = m["migration"] if of_exposures else m
            grades = m["grades"]
            rows = [[f"{_grade(report, a, lang)} → {_grade(report, b, lang)}", _int(c), _money(v)]
                    for i, a in enumerate(grades) for j, b in enumerate(grades)
                    for c, v in [(m["counts"][i][j], m["balance"][i][j])] if c or v]
            sec = Section(sec.key, w["exposure_migration_cells" if of_exposures else "migration_cells"],
                          [w["move"], w["exposures_col" if of_exposures else "clients_col"], w["balance"]], rows,
                          (1, 2))
        elif sec.key == "changed_clients":
            below = [[f"{sec.columns[k]}: {r[k]}" for k in range(4, len(sec.columns)) if r[k]] for r in sec.rows]
            sec = Section(sec.key, sec.title, sec.columns[:4], [r[:4] for r in sec.rows], note=sec.note)
        lines += ["", *_wrap(sec.title + (f" ({sec.note})" if sec.note else ""))]
        if not sec.rows:
            lines.append(f"  ({_empty(report, sec, w)})")
            continue
        widths = [max(_width(r[i]) for r in [sec.columns, *sec.rows]) for i in range(len(sec.columns))]
        for n, r in enumerate([sec.columns, *sec.rows]):
            cells = [_pad(v, widths[i], i in sec.numeric) for i, v in enumerate(r)]
            lines.append(("  " + "  ".join(cells)).rstrip())
            if below and n > 0:
                lines += [x for part in below[n - 1] for x in _wrap(part, indent="      ")]
    return "\n".join(lines) + "\n"


def _empty(report: dict[str, Any], sec: Section, w: dict[str, str]) -> str:
    """What a section without rows says: 'none', but for changed clients left out by ``--list``, which changed."""
    return w["not_listed"] if sec.key == "changed_clients" and report.get("changed_clients_total") else w["none"]


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: dict[str, Any], heading: str = "Portfolio impact", lang: str = "en") -> str:
    """Ready to post on a pull request: one table per section, the changed clients folded."""
    lines = [f"### {heading_of(report, heading, lang)}", "", summary_line(report, lang)]
    for sec in sections(report, lang):
        folded = sec.key == "changed_clients" and len(sec.rows) > 10
        lines += ["", f"**{sec.title}**" + (f" ({sec.note})" if sec.note else ""), ""]
        if folded:
            lines += [f"<details><summary>{html_text(sec.note)}</summary>", ""]
        if not sec.rows:
            lines.append(f"_{_empty(report, sec, words(report, lang))}_")
            continue
        lines.append("| " + " | ".join(_md(c) for c in sec.columns) + " |")
        lines.append("|" + "".join(" ---: |" if i in sec.numeric else " --- |" for i in range(len(sec.columns))))
        for r in sec.rows:
            first, *rest = r
            lines.append(f"| **{_md(first)}** | " + " | ".join(_md(c) for c in rest) + " |"
                         if "migration" in sec.key else "| " + " | ".join(_md(c) for c in r) + " |")
        if folded:
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ HTML charts
#
# Text in an SVG has no layout: every box is sized from an estimate of the text's width that errs
# wide (CJK characters a full em, Latin 0.62 em), so no label is clipped; the Chromium test checks it.

FONT = 12
_UPGRADE, _DOWNGRADE, _SAME = (33, 102, 172), (178, 24, 43), (110, 110, 110)  # blue, red, grey: a diverging scheme


def _text_px(text: str, size: int = FONT) -> float:
    return sum(size * (1.0 if _width(ch) == 2 else 0.62) for ch in text)


def _tint(rgb: tuple[int, int, int], strength: float) -> str:
    """``rgb`` mixed with white: 0 white, 1 the full colour; the hue stays that of ``rgb``."""
    t = 0.12 + 0.88 * strength if strength > 0 else 0.0
    return "#" + "".join(f"{round(255 - (255 - c) * t):02x}" for c in rgb)


def _legend(x: float, y: float, items: list[tuple[str, str]]) -> tuple[str, float]:
    """Swatches with their names in one row; returns the SVG and the x where it ends."""
    parts = []
    for fill, name in items:
        parts.append(f'<rect class="swatch" x="{x:.1f}" y="{y - 10:.1f}" width="12" height="12" fill="{fill}"/>'
                     f'<text x="{x + 16:.1f}" y="{y:.1f}" class="label legend">{html_text(name)}</text>')
        x += 16 + _text_px(name) + 18
    return "".join(parts), x


def _bars(title: str, data: dict[str, dict[str, int]], w: dict[str, str], width: int = 640) -> str:
    """Horizontal grouped bars (before / after) as inline SVG, with a legend."""
    keys = list(data)
    peak = max([1, *(max(v["old"], v["new"]) for v in data.values())])
    row_h = 26
    label_w = max([80.0, *(_text_px(k) for k in keys)]) + 14  # 2 of them to the left: a CJK glyph may overhang
    values = {k: f"{data[k]['old']:,} → {data[k]['new']:,}" for k in keys}
    value_w = max([40.0, *(_text_px(v, 11) for v in values.values())]) + 8
    bar_w = max(width - label_w - value_w, 160)
    legend, legend_end = _legend(0, 16, [(f"rgb{_BEFORE}", w["before"]), (f"rgb{_AFTER}", w["after"])])
    width = int(max(label_w + bar_w + value_w, legend_end) + 4)
    height = 32 + row_h * max(len(keys), 1)
    parts = [f'<svg class="chart bars" role="img" aria-label="{html_text(title)}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">', legend]
    scale = bar_w / peak
    for i, k in enumerate(keys):
        y = 28 + i * row_h
        parts.append(f'<text x="2" y="{y + 14}" class="label">{html_text(k)}</text>')
        for j, (side, cls) in enumerate((("old", "before"), ("new", "after"))):
            v = data[k][side]
            parts.append(f'<rect class="{cls}" x="{label_w:.1f}" y="{y + j * 11}" width="{max(v * scale, 0.5):.1f}" '
                         f'height="10"><title>{html_text(k)} {w[cls]}: {v:,}</title></rect>')
        parts.append(f'<text x="{label_w + max(data[k]["old"], data[k]["new"]) * scale + 4:.1f}" y="{y + 14}" '
                     f'class="value">{html_text(values[k])}</text>')
    return "".join(parts) + "</svg>"


_BEFORE, _AFTER = (138, 161, 193), (210, 105, 30)


# A Chinese reader counts amounts in 万 (1e4) and 亿 (1e8), not in thousands, millions and billions.
_UNITS = {"en": ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")), "zh": ((1e12, "万亿"), (1e8, "亿"), (1e4, "万"))}


def _compact(v: float, lang: str = "en") -> str:
    """A cell-sized amount (1.2M; 8.8亿 in Chinese); the exact figure is in the cell's tooltip and the table below."""
    for div, unit in _UNITS[lang]:
        if abs(v) >= div:
            return f"{v / div:.1f}{unit}"
    return f"{v:,.0f}"


def _heatmap(report: dict[str, Any], lang: str = "en", by: str = "counts") -> str:
    """Migration heatmap: downgrades red, upgrades blue, the diagonal grey, darker for more.

    Each kind is shaded against its own peak (square root), so five upgrades among two thousand
    unchanged clients still read as blue rather than vanishing next to the diagonal.
    """
    w = words(report, lang)
    grades = report["migration"]["grades"]
    values = report["migration"][by]
    names = [_grade(report, g, lang) for g in grades]
    shown = [[f"{v:,}" if by == "counts" else _compact(v, lang) for v in row] for row in values]
    cell_w = max([64.0, *(_text_px(n) + 14 for n in names), *(_text_px(t, 11) + 14 for r in shown for t in r)])
    cell_h = 40
    left = max(_text_px(n) for n in names) + 14
    title = w["migration_counts"] if by == "counts" else w["migration_balance"]
    top = 62
    legend, legend_end = _legend(0, 16, [(_tint(_DOWNGRADE, 0.7), w["downgrade"]), (_tint(_UPGRADE, 0.7), w["upgrade"]),
                                         (_tint(_SAME, 0.7), w["unchanged"])])
    width = int(max(left + cell_w * len(grades), legend_end) + 6)
    height = int(top + cell_h * len(grades) + 6)

    def kind(i: int, j: int) -> str:
        return "same" if i == j else "downgrade" if j > i else "upgrade"  # the scale runs best first

    peaks: dict[str, float] = {}
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            peaks[kind(i, j)] = max(peaks.get(kind(i, j), 0.0), float(v))
    colours = {"same": _SAME, "downgrade": _DOWNGRADE, "upgrade": _UPGRADE}
    parts = [f'<svg class="chart heatmap" data-by="{by}" role="img" aria-label="{html_text(title)}" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             legend]
    for j, n in enumerate(names):
        parts.append(f'<text x="{left + j * cell_w + 4:.1f}" y="{top - 8}" class="label">{html_text(n)}</text>')
    for i, (n, row) in enumerate(zip(names, values, strict=True)):
        parts.append(f'<text x="0" y="{top + i * cell_h + cell_h / 2 + 4:.1f}" class="label">{html_text(n)}</text>')
        for j, v in enumerate(row):
            k = kind(i, j)
            strength = (float(v) / peaks[k]) ** 0.5 if v and peaks[k] else 0.0
            fill = _tint(colours[k], strength) if v else "#ffffff"
            x, y = left + j * cell_w, top + i * cell_h
            ink = "#ffffff" if strength > 0.6 else "#1d2330"
            parts.append(f'<rect class="cell {k}" data-kind="{k}" x="{x:.1f}" y="{y:.1f}" width="{cell_w - 2:.1f}" '
                         f'height="{cell_h - 2}" fill="{fill}"><title>{html_text(n)} → {html_text(names[j])}: '
                         f'{v:,}</title></rect><text x="{x + 6:.1f}" y="{y + cell_h / 2 + 4:.1f}" class="value" '
                         f'style="fill: {ink}">{html_text(shown[i][j])}</text>')
    return "".join(parts) + "</svg>"


def _html_table(sec: Section) -> str:
    head = "".join(f"<th>{html_text(c)}</th>" for c in sec.columns)
    body = "".join("<tr>" + "".join(f'<td{" class=num" if i in sec.numeric else ""}>{html_text(v)}</td>'
                                    for i, v in enumerate(r)) + "</tr>" for r in sec.rows)
    return f'<table id="{sec.key}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def render_html(report: dict[str, Any], heading: str = "Portfolio impact", lang: str = "en") -> str:
    """One self-contained page: no script, no external resource, readable offline and in CI artefacts."""
    w = words(report, lang)
    grades = report["migration"]["grades"]
    dist = {_grade(report, g, lang): {"old": report["grade_distribution"]["old"][g],
                                      "new": report["grade_distribution"]["new"][g]} for g in grades}
    charts = {"migration_counts": _heatmap(report, lang, "counts"),
              "migration_balance": _heatmap(report, lang, "balance") if report["migration"]["balance"] else "",
              "distribution": _bars(w["distribution"], dist, w),
              "warnings": _bars(w["warnings"], {rule_shown(report, "warnings", k, lang): v
                                                for k, v in report["warnings"].items()}, w),
              "actions": _bars(w["actions"], {rule_shown(report, "actions", k, lang): v
                                              for k, v in report["actions"].items()}, w)}
    body = []
    for sec in sections(report, lang):
        body.append(f"<h2>{html_text(sec.title)}</h2>")
        if sec.note:
            body.append(f'<p class="note">{html_text(sec.note)}</p>')
        if sec.key in charts:
            body.append(charts[sec.key])
        body.append(_html_table(sec) if sec.rows else f"<p>{html_text(_empty(report, sec, w))}</p>")
    title = heading_of(report, heading, lang)
    return f"""<!DOCTYPE html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}"><head><meta charset="utf-8"><title>{html_text(title)}</title>
<style>
body {{ font-family: system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; margin: 2rem; color: #1d2330; }}
svg.chart {{ display: block; margin: 1rem 0; }}
svg text {{ font-family: system-ui, "Noto Sans CJK SC", "Microsoft YaHei", sans-serif; }}
.title {{ font-weight: 600; font-size: 14px; }} .label {{ font-size: {FONT}px; }}
.value {{ font-size: 11px; fill: #333; }}
rect.before {{ fill: rgb{_BEFORE}; }} rect.after {{ fill: rgb{_AFTER}; }} rect.cell {{ stroke: #ddd; }}
table {{ border-collapse: collapse; font-size: 13px; margin-bottom: 1rem; }}
td, th {{ border: 1px solid #ccc; padding: 3px 6px; }} td.num {{ text-align: right; }}
</style></head><body>
<h1>{html_text(title)}</h1>
<p class="summary" id="grade-changed">{html_text(summary_line(report, lang))}</p>
{chr(10).join(body)}
</body></html>
"""
