"""Stress scenarios: shocks declared in YAML, applied to a portfolio before it is decided again.

    name: Manufacturing downturn
    shocks:
      - {field: "financials[*].revenue", segment: manufacturing, multiply: 0.8}
      - {field: loan.days_past_due, add: 60}

``field`` is a column of the batch conventions (``financials[*].x`` means every period);
``segment`` limits a shock to one industry; each shock either multiplies or adds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .batch import Table
from .diagnostics import DiagnosticSink, PolicyError
from .loader import format_path, load_yaml_file

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*(\[\*\])?(\.[a-z_][a-z0-9_]*)*$")


@dataclass(frozen=True)
class Shock:
    field: str
    segment: str | None
    multiply: float | None
    add: float | None


@dataclass(frozen=True)
class Scenario:
    name: str
    shocks: tuple[Shock, ...]


def load_scenario(path: str | Path) -> Scenario:
    doc = load_yaml_file(path)
    sink = DiagnosticSink(file=str(path))

    def err(message: str, at: tuple[Any, ...], hint: str | None = None) -> None:
        line, col = doc.locate(at)
        sink.add("bad-scenario", message, line=line, column=col, path=format_path(at), hint=hint)

    data = doc.data
    if not isinstance(data, dict) or set(data) - {"name", "description", "shocks"}:
        extra = sorted(set(data) - {"name", "description", "shocks"}) if isinstance(data, dict) else []
        err(f"a scenario has name, description and shocks{'; unknown: ' + ', '.join(extra) if extra else ''}", ())
        raise PolicyError(sink.items)
    shocks = []
    for i, s in enumerate(data.get("shocks") or []):
        at = ("shocks", i)
        if not isinstance(s, dict) or set(s) - {"field", "segment", "multiply", "add"}:
            err("a shock has field, optional segment, and multiply or add", at)
            continue
        field = s.get("field")
        if not isinstance(field, str) or not _FIELD.match(field):
            err(f"field must be a column path such as loan.days_past_due, found {field!r}", (*at, "field"))
            continue
        ops = [k for k in ("multiply", "add") if k in s]
        if len(ops) != 1 or isinstance(s[ops[0]], bool) or not isinstance(s[ops[0]], int | float):
            err("give exactly one of multiply or add, a number", at)
            continue
        shocks.append(Shock(field, s.get("segment"), float(s["multiply"]) if "multiply" in s else None,
                            float(s["add"]) if "add" in s else None))
    if not shocks and sink.ok:
        err("a scenario needs at least one shock", ("shocks",))
    if not sink.ok:
        raise PolicyError(sink.items)
    return Scenario(str(data.get("name") or Path(path).stem), tuple(shocks))


def apply(scenario: Scenario, table: Table) -> Table:
    """A shocked copy of ``table``; cells that hold no number are left as they are."""
    frame = table.frame.copy()
    industry = frame["industry"].astype(str).to_numpy() if "industry" in frame.columns else None
    for shock in scenario.shocks:
        if "[*]" in shock.field:
            head, _, tail = shock.field.partition("[*]")
            pattern = re.compile(re.escape(head) + r"\[\d+\]" + re.escape(tail) + "$")
            columns = [c for c in frame.columns if pattern.match(str(c))]
        else:
            columns = [shock.field] if shock.field in frame.columns else []
        rows = np.ones(len(frame), bool) if shock.segment is None or industry is None else industry == shock.segment
        for c in columns:
            numbers = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
            hit = rows & ~np.isnan(numbers)
            moved = numbers * shock.multiply if shock.multiply is not None else numbers + (shock.add or 0.0)
            column = frame[c].astype(object).to_numpy(copy=True)
            if table.text:  # CSV cells stay text; whole numbers stay whole
                column[hit] = [repr(int(v)) if float(v).is_integer() else repr(float(v)) for v in moved[hit]]
            else:
                column[hit] = moved[hit]
            frame[c] = column
    return Table(frame, table.text, list(table.problems), table.positions, table.rows_read)
