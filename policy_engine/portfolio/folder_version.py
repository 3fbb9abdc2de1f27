"""The version a portfolio of long tables is decided under, and the debtors it may not decide.

A folder of long tables (``batch DIR``) and a dataset of such folders (``batch DATASET --engine
dask``) are decided under one version with scopes: the pinned one; with a policy id, the one in
force on ``--as-of``, else the version with scopes that the most debtors' days select (ties: the
later version). A debtor whose day selects another version, or none, is rejected with that
reason (``other-version``, ``no-version-in-force``), never decided under the wrong one.

The rules of ``run._folder_policy`` and ``run._version_screen``, in the portfolio layer so that
the Dask run (which may not import ``run``) applies the same ones to the union of its partitions.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, UsageError

if TYPE_CHECKING:
    from ..decide.ref import PolicyRef
    from ..policy.compiler import CompiledPolicy

Screen = Callable[[Any], dict[int, dict[str, Any]]]


def folder_policy(ref: PolicyRef, days: Iterable[str | None], as_of: str | None, where: str,
                  hint: str = "pin a version with scopes (--policy-version)") -> CompiledPolicy:
    """The version the debtors of ``days`` (each one's :func:`day_texts`) are decided under; a version without
    scopes is refused (``scoped-policy-required``, naming ``where``)."""
    from .scoped_batch import scoped_versions

    candidates = scoped_versions(ref) if ref.pinned is None and as_of is None else []
    if len(candidates) > 1:
        votes = {id(p): 0 for p in candidates}
        for day, n in collections.Counter(days).items():
            chosen = ref.for_day_or_refusal(day)
            if id(chosen) in votes:
                votes[id(chosen)] += n
        policy = max(reversed(candidates), key=lambda p: votes[id(p)])
    else:
        policy = candidates[0] if candidates else ref.for_day(as_of)
    if policy.scoped is None:
        raise UsageError([Diagnostic("scoped-policy-required", f"policy {policy.id} {policy.version} declares no "
                                     "scopes: long tables (debtors, exposures, ...) are decided under a policy with "
                                     "scopes", file=where, hint=hint)])
    return policy


def day_texts(column: Any) -> list[str | None]:
    """Each debtor's day as ``decide`` chooses its version: its valid ``as_of`` (ISO text), else None (today)."""
    import pandas as pd

    from ..decide.inputs import parse_date

    if column is None:
        return []
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return [None if pd.isna(v) else str(v) for v in column.dt.strftime("%Y-%m-%d")]
    days: dict[Any, str | None] = {}
    out: list[str | None] = []
    for v in column.to_numpy(dtype=object):
        key = v if isinstance(v, str) else repr(v)
        if key not in days:
            text = v.isoformat() if hasattr(v, "isoformat") else v
            days[key] = str(text) if parse_date(text) is not None else None
        out.append(days[key])
    return out


def version_screen(ref: PolicyRef, policy: CompiledPolicy, as_of: str | None) -> Screen | None:
    """With an id and no ``as_of``: the debtors table -> a problem for each debtor (0-based row) whose day selects
    another version than ``policy``, or none; None when every debtor is decided under ``policy``."""
    if ref.pinned is not None or as_of is not None:
        return None

    def screen(debtors: Any) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        chosen: dict[str | None, CompiledPolicy | UsageError] = {}
        for row, day in enumerate(day_texts(debtors.get("as_of"))):
            if day not in chosen:
                chosen[day] = ref.for_day_or_refusal(day)
            got = chosen[day]
            if got is not policy:
                out[row] = other_version(row, day, got, policy)
        return out

    return screen


def other_version(row: int, day: str | None, got: CompiledPolicy | UsageError, policy: CompiledPolicy
                  ) -> dict[str, Any]:
    """The problem of a debtor whose day selects another version than the folder's, or none."""
    entry: dict[str, Any] = {"table": "debtors", "row": row + 1, "field": "as_of"}
    if isinstance(got, UsageError):
        d = got.diagnostics[0]
        return {**entry, "code": d.code, "message": d.message, **({"hint": d.hint} if d.hint else {})}
    return {**entry, "code": "other-version",
            "message": f"on {day or 'today'} {got.id} {got.version} is in force, not {policy.version}, which "
                       "decides this folder",
            "hint": f"decide it under {got.version} (--policy-version {got.version}, a folder of its own), or give "
                    "--as-of"}
