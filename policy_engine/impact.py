"""Champion / challenger: what a policy change does to a portfolio.

Both versions decide the same portfolio with the vector evaluator; the report is the grade
migration matrix (clients and balance), the clients whose grade, warnings or actions changed
(with the rules that decided each side), warning and action counts before and after, and the
changes by industry. JSON, markdown, or a self-contained HTML page with SVG charts.
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .batch import Table, _flatten_lists, run_batch
from .compiler import CompiledPolicy
from .diagnostics import Diagnostic, UsageError
from .safetext import html_text

GATES = ("grade_changed", "grade_changed_share", "downgrades", "downgrade_share", "upgrades", "upgrade_share",
         "warnings_changed_share", "actions_changed_share")
_GATE = re.compile(r"^\s*([a-z_]+)\s*(>=|<=|>|<|==)\s*([0-9.]+)\s*$")
_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq}


@dataclass
class Impact:
    old: CompiledPolicy
    new: CompiledPolicy
    report: dict[str, Any]


def _lists(series: pd.Series) -> list[list[str]]:
    return [list(v) for v in series]


def _joined(series: pd.Series) -> np.ndarray:
    import pyarrow.compute as pc

    from .batch import pa_array

    return np.asarray(pc.binary_join(pa_array(series.reset_index(drop=True)), "\x1f").to_numpy(zero_copy_only=False),
                      dtype=object)


def analyse(old: CompiledPolicy, new: CompiledPolicy, table: Table, as_of: str | None = None,
            max_listed: int = 200, new_table: Table | None = None) -> Impact:
    """``old`` on ``table`` against ``new`` on ``new_table`` (the same table unless a scenario shocked it)."""
    if old.grade_ids != new.grade_ids:
        raise UsageError([Diagnostic("different-scales", "the two policies grade on different scales",
                                     hint="impact compares grades; both versions need the same scale")])
    a = run_batch(old, table, as_of)
    b = run_batch(new, new_table if new_table is not None else table, as_of)
    da = a.decisions.set_index("row")
    db = b.decisions.set_index("row")
    rows = da.index.intersection(db.index)
    da, db = da.loc[rows], db.loc[rows]
    grades = list(old.grade_ids)
    rank = {g: i for i, g in enumerate(grades)}
    ga = da["grade"].astype(str).to_numpy()
    gb = db["grade"].astype(str).to_numpy()
    balance = np.ones(len(rows))
    frame = table.frame
    if "loan.balance" in frame.columns:
        raw = pd.to_numeric(frame["loan.balance"], errors="coerce").to_numpy(dtype=float)
        positions = rows.to_numpy() - 1  # decision 'row' is 1-based in the input
        if table.positions is not None:
            lookup = {int(p): i for i, p in enumerate(table.positions)}
            positions = np.array([lookup[int(p)] for p in positions], dtype=int)
        balance = np.nan_to_num(raw[positions], nan=0.0)
    counts = pd.crosstab(pd.Categorical(ga, grades), pd.Categorical(gb, grades), dropna=False)
    weighted = pd.crosstab(pd.Categorical(ga, grades), pd.Categorical(gb, grades), values=balance,
                           aggfunc="sum", dropna=False).fillna(0.0)
    ra = np.array([rank[g] for g in ga])
    rb = np.array([rank[g] for g in gb])
    n = len(rows)
    changed_grade = ra != rb
    # Lists come out in policy order, so joined text compares them without a Python loop per row.
    changed_warn = _joined(da["warnings"]) != _joined(db["warnings"])
    changed_act = _joined(da["actions"]) != _joined(db["actions"])
    any_change = changed_grade | changed_warn | changed_act
    shown = np.flatnonzero(any_change)[:max_listed]
    wa, wb = _lists(da["warnings"].iloc[shown]), _lists(db["warnings"].iloc[shown])
    aa, ab = _lists(da["actions"].iloc[shown]), _lists(db["actions"].iloc[shown])
    listed = []
    for k, i in enumerate(shown):
        listed.append({
            "row": int(rows[i]), "client_id": str(da["client_id"].iloc[i]), "segment": str(da["segment"].iloc[i]),
            "grade": [ga[i], gb[i]], "decided_by": [str(da["decided_by"].iloc[i]), str(db["decided_by"].iloc[i])],
            "score": [float(da["score"].iloc[i]), float(db["score"].iloc[i])],
            "warnings_added": sorted(set(wb[k]) - set(wa[k])), "warnings_removed": sorted(set(wa[k]) - set(wb[k])),
            "actions_added": sorted(set(ab[k]) - set(aa[k])), "actions_removed": sorted(set(aa[k]) - set(ab[k])),
        })
    share = (lambda k: round(float(k) / n, 6)) if n else (lambda k: 0.0)
    seg = da["segment"].astype(str).to_numpy()
    by_industry = {}
    for s in sorted(set(seg)):
        m = seg == s
        by_industry[s] = {"clients": int(m.sum()), "grade_changed": int((changed_grade & m).sum()),
                          "downgrades": int(((rb > ra) & m).sum()), "upgrades": int(((rb < ra) & m).sum())}
    report = {
        "old": {"id": old.id, "version": old.version, "sha256": old.sha256},
        "new": {"id": new.id, "version": new.version, "sha256": new.sha256},
        "clients": n, "rejected": {"old": a.rejected, "new": b.rejected},
        "summary": {
            "grade_changed": int(changed_grade.sum()), "grade_changed_share": share(changed_grade.sum()),
            "downgrades": int((rb > ra).sum()), "downgrade_share": share((rb > ra).sum()),
            "upgrades": int((rb < ra).sum()), "upgrade_share": share((rb < ra).sum()),
            "warnings_changed": int(changed_warn.sum()), "warnings_changed_share": share(changed_warn.sum()),
            "actions_changed": int(changed_act.sum()), "actions_changed_share": share(changed_act.sum()),
        },
        "migration": {"grades": grades, "counts": counts.to_numpy().astype(int).tolist(),
                      "balance": np.round(weighted.to_numpy(), 2).tolist()},
        "grade_distribution": {"old": {g: int((ga == g).sum()) for g in grades},
                               "new": {g: int((gb == g).sum()) for g in grades}},
        "warnings": _before_after(_flatten_lists(da["warnings"]), _flatten_lists(db["warnings"])),
        "actions": _before_after(_flatten_lists(da["actions"]), _flatten_lists(db["actions"])),
        "by_industry": by_industry,
        "changed_clients": listed, "changed_clients_total": int(any_change.sum()),
    }
    return Impact(old, new, report)


def _before_after(before: Any, after: Any) -> dict[str, dict[str, int]]:
    b, a = Counter(map(str, before)), Counter(map(str, after))
    return {k: {"old": b.get(k, 0), "new": a.get(k, 0), "change": a.get(k, 0) - b.get(k, 0)}
            for k in sorted(set(b) | set(a))}


def gate_failures(report: dict[str, Any], gates: tuple[str, ...]) -> list[str]:
    """The --fail-if conditions that hold, e.g. 'grade_changed_share > 0.05'."""
    failed = []
    for gate in gates:
        m = _GATE.match(gate)
        if not m or m[1] not in GATES:
            raise UsageError([Diagnostic("bad-gate", f"--fail-if '{gate}' is not 'NAME OP NUMBER'",
                                         hint=f"NAME one of {', '.join(GATES)}; OP one of > >= < <= ==")])
        value = report["summary"][m[1]]
        if _OPS[m[2]](value, float(m[3])):
            failed.append(f"{m[1]} = {value} {m[2]} {m[3]}")
    return failed


def _versions(report: dict[str, Any]) -> str:
    return f"{report['old']['id']} {report['old']['version']} → {report['new']['version']}"


def render_markdown(report: dict[str, Any], heading: str = "Portfolio impact") -> str:
    s = report["summary"]
    grades = report["migration"]["grades"]
    lines = [f"### {heading}: {_versions(report)}",
             "", f"{report['clients']:,} clients: **{s['grade_changed']:,} change grade** "
             f"({s['grade_changed_share']:.2%}; {s['downgrades']:,} down, {s['upgrades']:,} up), "
             f"{s['warnings_changed']:,} change warnings, {s['actions_changed']:,} change actions.", "",
             "| old \\ new | " + " | ".join(grades) + " |", "| --- |" + " --- |" * len(grades)]
    for g, row in zip(grades, report["migration"]["counts"], strict=True):
        lines.append(f"| **{g}** | " + " | ".join(f"{v:,}" for v in row) + " |")
    lines += ["", "| warning | before | after | change |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {v['old']:,} | {v['new']:,} | {v['change']:+,} |" for k, v in report["warnings"].items()]
    lines += ["", "| action | before | after | change |", "| --- | --- | --- | --- |"]
    lines += [f"| {k} | {v['old']:,} | {v['new']:,} | {v['change']:+,} |" for k, v in report["actions"].items()]
    return "\n".join(lines) + "\n"


def _bars(title: str, data: dict[str, dict[str, int]], width: int = 640) -> str:
    """Horizontal grouped bars (before / after) as inline SVG."""
    keys = list(data)
    peak = max([1, *(max(v["old"], v["new"]) for v in data.values())])
    row_h, label_w = 26, 220
    height = 40 + row_h * len(keys)
    parts = [f'<svg class="chart" role="img" aria-label="{html_text(title)}" width="{width}" height="{height}" '
             f'xmlns="http://www.w3.org/2000/svg"><text x="0" y="16" class="title">{html_text(title)}</text>']
    scale = (width - label_w - 130) / peak  # room for the "before → after" label
    for i, k in enumerate(keys):
        y = 30 + i * row_h
        parts.append(f'<text x="0" y="{y + 14}" class="label">{html_text(k)}</text>')
        for j, (side, cls) in enumerate((("old", "before"), ("new", "after"))):
            v = data[k][side]
            parts.append(f'<rect class="{cls}" x="{label_w}" y="{y + j * 11}" width="{max(v * scale, 0.5):.1f}" '
                         f'height="10"><title>{html_text(k)} {cls}: {v:,}</title></rect>')
        parts.append(f'<text x="{label_w + max(data[k]["old"], data[k]["new"]) * scale + 4:.1f}" y="{y + 14}" '
                     f'class="value">{data[k]["old"]:,} → {data[k]["new"]:,}</text>')
    return "".join(parts) + "</svg>"


def _heatmap(report: dict[str, Any]) -> str:
    grades = report["migration"]["grades"]
    counts = report["migration"]["counts"]
    cell, left, top = 70, 130, 40
    peak = max([1, *(v for row in counts for v in row)])
    size = left + cell * len(grades) + 10
    parts = [f'<svg class="chart heatmap" role="img" aria-label="grade migration" width="{size}" '
             f'height="{top + cell * len(grades) + 30}" xmlns="http://www.w3.org/2000/svg">'
             '<text x="0" y="16" class="title">Grade migration (rows: before, columns: after)</text>']
    for j, g in enumerate(grades):
        parts.append(f'<text x="{left + j * cell + 4}" y="{top - 6}" class="label">{html_text(g[:10])}</text>')
    for i, (g, row) in enumerate(zip(grades, counts, strict=True)):
        parts.append(f'<text x="0" y="{top + i * cell + cell / 2}" class="label">{html_text(g)}</text>')
        for j, v in enumerate(row):
            shade = 0.08 + 0.92 * (v / peak) if v else 0.0
            css = "cell diagonal" if i == j else "cell"
            x, y = left + j * cell, top + i * cell
            parts.append(f'<rect class="{css}" x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" '
                         f'fill-opacity="{shade:.3f}"><title>{html_text(g)} → {html_text(grades[j])}: {v:,}'
                         f'</title></rect><text x="{x + 6}" y="{y + cell / 2}" class="value">{v:,}</text>')
    return "".join(parts) + "</svg>"


def render_html(report: dict[str, Any], heading: str = "Portfolio impact") -> str:
    """One self-contained page: no script, no external resource, readable offline and in CI artefacts."""
    s = report["summary"]
    dist = {g: {"old": report["grade_distribution"]["old"][g], "new": report["grade_distribution"]["new"][g]}
            for g in report["migration"]["grades"]}
    def moved(added: list[str], removed: list[str]) -> str:
        return html_text(" ".join([*("+" + x for x in added), *("-" + x for x in removed)]))

    changed = "".join(
        f"<tr><td>{html_text(c['client_id'])}</td><td>{html_text(c['segment'])}</td>"
        f"<td>{html_text(c['grade'][0])} → {html_text(c['grade'][1])}</td>"
        f"<td>{html_text(c['decided_by'][0])} → {html_text(c['decided_by'][1])}</td>"
        f"<td>{moved(c['warnings_added'], c['warnings_removed'])}</td>"
        f"<td>{moved(c['actions_added'], c['actions_removed'])}</td></tr>"
        for c in report["changed_clients"])
    title = f"{heading}: {_versions(report)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html_text(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #1d2330; }}
.summary span {{ display: inline-block; margin-right: 1.5rem; }}
svg.chart {{ display: block; margin: 1.5rem 0; }}
.title {{ font-weight: 600; font-size: 14px; }} .label {{ font-size: 12px; }} .value {{ font-size: 11px; fill: #333; }}
rect.before {{ fill: #8aa1c1; }} rect.after {{ fill: #d2691e; }} rect.cell {{ fill: #c0392b; stroke: #ddd; }}
rect.cell.diagonal {{ fill: #2e7d32; }}
table {{ border-collapse: collapse; font-size: 13px; }} td, th {{ border: 1px solid #ccc; padding: 3px 6px; }}
</style></head><body>
<h1>{html_text(title)}</h1>
<p class="summary"><span>{report['clients']:,} clients</span>
<span id="grade-changed">{s['grade_changed']:,} change grade ({s['grade_changed_share']:.2%})</span>
<span>{s['downgrades']:,} down</span><span>{s['upgrades']:,} up</span>
<span>{s['warnings_changed']:,} change warnings</span><span>{s['actions_changed']:,} change actions</span></p>
{_heatmap(report)}
{_bars("Grade distribution, before and after", dist)}
{_bars("Warnings, before and after", report["warnings"])}
{_bars("Actions, before and after", report["actions"])}
<h2>Clients that changed ({report['changed_clients_total']:,}; first {len(report['changed_clients'])} listed)</h2>
<table><thead><tr><th>client</th><th>industry</th><th>grade</th><th>decided by</th><th>warnings</th>
<th>actions</th></tr></thead><tbody>{changed}</tbody></table>
</body></html>
"""
