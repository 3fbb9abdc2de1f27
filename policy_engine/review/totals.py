"""Impact totals: the sum and mean of chosen metrics under each version, overall and by segment.

``impact --total expected_loss`` answers the reviewer's question "what does this change do to total
expected loss?": for the clients both versions decided, each side's sum and mean of the metric,
how many clients have a value and how many have none (a null is never counted as 0), and the change
new - old, absolute and relative. The same figures per segment. ``--fail-if`` reads them by name:
``total.expected_loss.change_share > 0.05``, ``total.expected_loss[trade].new_nulls > 0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic, UsageError, did_you_mean
from ..policy.compiler import CompiledPolicy

# The figures of one group a gate can name: the change, then each side's own figures.
FIELDS = ("change", "change_share", "mean_change", "mean_change_share", "old_sum", "new_sum", "old_mean",
          "new_mean", "old_count", "new_count", "old_nulls", "new_nulls")
ALL = "all"  # the group of every compared client
NO_SEGMENT = "(none)"  # clients of a segmented policy whose segment is none of the policy's


def check_totals(names: Sequence[str], sides: Sequence[Sequence[CompiledPolicy]]) -> None:
    """Every name a number metric of every version used on either side, else a usage error (exit 2)."""
    versions = [p for side in sides for p in side]
    if not names or not versions:
        return
    common = [m.name for m in versions[0].metrics
              if all(_number_metric(p, m.name) for p in versions)]
    problems = []
    for name in names:
        for p in versions:
            metric = next((m for m in p.metrics if m.name == name), None)
            if metric is None and p.scoped is not None and any(m.name == name for m in p.scoped.metrics):
                problems.append(Diagnostic(
                    "exposure-metric", f"--total '{name}': '{name}' is a metric of each exposure under {p.id} "
                    f"{p.version}, and --total adds up a metric of each debtor",
                    hint="each exposure's value is a column of batch --exposures-out; " + _known(common)))
                break
            if metric is None:
                problems.append(Diagnostic(
                    "unknown-metric", f"--total '{name}': {p.id} {p.version} has no metric '{name}'",
                    hint="; ".join(filter(None, [did_you_mean(name, common), _known(common)]))))
                break
            if metric.expr.type != "number":
                problems.append(Diagnostic(
                    "not-a-number-metric", f"--total '{name}': metric '{name}' of {p.id} {p.version} is "
                    f"{metric.expr.type}, and only number metrics add up", hint=_known(common)))
                break
    if problems:
        raise UsageError(problems)


def _number_metric(policy: CompiledPolicy, name: str) -> bool:
    return any(m.name == name and m.expr.type == "number" for m in policy.metrics)


def _known(common: list[str]) -> str:
    return (f"number metrics of both versions: {', '.join(common)}" if common
            else "the two versions have no number metric in common")


def totals(names: Sequence[str], old: Any, new: Any, segments: np.ndarray, order: Sequence[str],
           policy: CompiledPolicy) -> dict[str, Any]:
    """Each metric's figures over all compared clients and per segment (``order``: the groups listed).

    ``old`` and ``new`` are the two sides' decisions tables, row for row the same clients;
    ``segments`` each client's group.
    """
    out: dict[str, Any] = {}
    labels = {m.name: m for m in policy.metrics}
    for name in names:
        a = np.asarray(old[f"metric.{name}"], dtype=float)
        b = np.asarray(new[f"metric.{name}"], dtype=float)
        spec = labels.get(name)
        out[name] = {
            "label": dict(spec.label) if spec is not None and spec.label else None,
            "format": spec.format if spec is not None else None,
            ALL: _group(a, b),
            "by_segment": {s: _group(a[segments == s], b[segments == s]) for s in order},
        }
    return out


def _side(values: np.ndarray) -> dict[str, Any]:
    """One side's figures: nulls (NaN: no value) are counted, never added as 0; no value at all has no sum."""
    known = values[~np.isnan(values)]
    if not len(known):
        return {"count": 0, "nulls": len(values), "sum": None, "mean": None}
    total = float(known.sum())
    return {"count": len(known), "nulls": len(values) - len(known), "sum": total, "mean": total / len(known)}


def _relative(change: float | None, base: float | None) -> float | None:
    """``change`` as a share of ``|base|``; None when there is no base to compare with (0 or none)."""
    if change is None or base is None or base == 0:
        return None
    return change / abs(base)


def _difference(new: float | None, old: float | None) -> float | None:
    return new - old if new is not None and old is not None else None


def _group(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    old, new = _side(a), _side(b)
    change, mean_change = _difference(new["sum"], old["sum"]), _difference(new["mean"], old["mean"])
    return {"clients": len(a), "old": old, "new": new, "change": change,
            "change_share": _relative(change, old["sum"]),
            "mean_change": mean_change, "mean_change_share": _relative(mean_change, old["mean"])}


def figure(group: dict[str, Any], field: str) -> float | None:
    """A gate's field of one group: ``change_share`` or a side's own figure (``old_sum``, ``new_nulls``)."""
    if field in group:
        return group[field]
    side, _, what = field.partition("_")
    return group[side][what]


def gate_value(report: dict[str, Any], metric: str, segment: str | None, field: str) -> float | None:
    """The figure ``total.METRIC[SEGMENT].FIELD`` names; a usage error (exit 2) for a segment not reported."""
    entry = report["totals"][metric]
    if segment is None:
        return figure(entry[ALL], field)
    groups = entry["by_segment"]
    if segment not in groups:
        raise UsageError([Diagnostic("bad-gate", f"--fail-if: no segment '{segment}' in the totals of '{metric}'",
                                     hint=did_you_mean(segment, groups) or f"segments: {', '.join(groups)}")])
    return figure(groups[segment], field)


def undefined_reason(field: str) -> str:
    """Why a figure has no value (a gate on it fails: nothing shows the condition is false)."""
    if field.endswith("_share"):
        return "the old figure is 0 or no client has a value"
    if field.startswith(("old_", "new_")):
        return f"no client has a value under the {field.partition('_')[0]} version"
    return "no client has a value under one of the versions"
