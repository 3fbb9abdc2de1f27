"""Stress scenarios: shocks declared in YAML, applied to a portfolio before it is decided again.

    name: Manufacturing downturn
    shocks:
      - {field: "financials[*].revenue", segment: manufacturing, multiply: 0.8}
      - {field: loan.days_past_due, add: 60}

``field`` is a column of the batch conventions (``financials[*].x`` means every period); under a
version with scopes, a place in the debtor record (``exposures[*].collateral.value``: every exposure's).
``segment`` limits a shock to one industry; each shock either multiplies or adds. Checked against
the policy, a shock that could not change a decision is an error, not a quiet no-op: the field must
be a number input the policy reads, the segment one of its segments. A whole-number field stays
whole (the shocked value is rounded to the nearest whole number).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..decide.inputs import MAX_ABS_NUMBER
from ..diagnostics import Diagnostic, DiagnosticSink, PolicyError, UsageError, did_you_mean
from ..policy.compiler import CompiledPolicy
from ..policy.loader import format_path, load_yaml_file
from ..portfolio.batch import Table

if TYPE_CHECKING:
    from ..decide.ref import PolicyRef
    from .impact import Impact

_FIELD = re.compile(r"^[a-z_][a-z0-9_]*(\[\*\])?(\.[a-z_][a-z0-9_]*(\[\*\])?)*$")


@dataclass(frozen=True)
class Shock:
    field: str
    segment: str | None
    multiply: float | None
    add: float | None
    whole: bool = False  # the field holds whole numbers: round after the shock


@dataclass(frozen=True)
class Scenario:
    name: str
    shocks: tuple[Shock, ...]
    title: Mapping[str, str] | None = None  # {zh, en}: what reports head with, in either language


def refuse_table_for_debtors(policy: CompiledPolicy, table: Table, path: Path | None = None) -> None:
    """A version with scopes stresses debtor records (a JSON Lines file, or a folder of long tables): a client
    table given for it is a usage error, not a run that would reject every row. ``path``: the table's file."""
    if policy.scoped is not None and not _debtor_lines(table):
        from ..portfolio.long_tables import layout

        one = path is not None and path.stem in {t.name for t in layout(policy)}
        raise UsageError([Diagnostic(
            "scoped-portfolio-format", f"{policy.key} decides debtors with nested exposures: simulate stresses a "
            "JSON Lines file of debtor records or a folder of long tables under it",
            file=str(path or table.source) if path or table.source else None,
            hint=f"{path.name} is one of the long tables: give the folder that holds them, --portfolio "
                 f"{path.parent}" if one and path is not None else "give --portfolio debtors.jsonl (convert "
                 "writes 1.x clients as debtors) or a folder of long tables, or simulate under a version without "
                 "scopes (POLICY as ID@VERSION)")])


def _debtor_lines(table: Table) -> bool:
    return table.source is not None and table.offsets is not None and \
        table.source.suffix.lower() in (".jsonl", ".ndjson")


def load_scenario(path: str | Path, policy: CompiledPolicy | None = None) -> Scenario:
    """The scenario in ``path``, every error located; with ``policy``, checked against what it reads."""
    if not Path(path).exists():  # as every other file a command is given (exit 2), not an unreadable one
        folder = Path(path).parent
        there = sorted(f.name for f in folder.iterdir() if f.suffix in (".yaml", ".yml")) if folder.is_dir() else []
        raise UsageError([Diagnostic("file-missing", f"no such file: {path}", file=str(path),
                                     hint=did_you_mean(Path(path).name, there))])
    doc = load_yaml_file(path)
    sink = DiagnosticSink(file=str(path))

    def err(message: str, at: tuple[Any, ...], hint: str | None = None) -> None:
        line, col = doc.locate(at)
        sink.add("bad-scenario", message, line=line, column=col, path=format_path(at), hint=hint)

    data = doc.data
    # filekinds reads scenarios (validate): its kind_of is not imported here, the shapes are told apart by their keys
    tests = isinstance(data, dict) and "cases" in data and "shocks" not in data
    if tests or (isinstance(data, dict) and {"id", "version", "classification"} <= set(data)):
        what = "a policy test file" if tests else "a policy"
        raise UsageError([Diagnostic("not-a-scenario", f"{path} is {what}, not a scenario", file=str(path),
                                     hint="a scenario has name, title, description and shocks (see scenarios/)")])
    if not isinstance(data, dict) or set(data) - _KEYS:
        extra = sorted(set(data) - _KEYS) if isinstance(data, dict) else []
        unknown = f"; unknown: {', '.join(extra)}" if extra else ""
        err(f"a scenario has name, title, description and shocks{unknown}", ())
        raise PolicyError(sink.items)
    shocks = [shock for i, s in enumerate(data.get("shocks") or [])
              if (shock := _shock(s, ("shocks", i), policy, err)) is not None]
    if not shocks and sink.ok:
        err("a scenario needs at least one shock", ("shocks",))
    title = data.get("title")
    if title is not None and not (isinstance(title, dict) and set(title) == {"zh", "en"}
                                  and all(isinstance(t, str) and t.strip() for t in title.values())):
        err("a scenario's title is {zh: ..., en: ...}, both non-empty texts", ("title",),
            "title: {zh: 制造业下行, en: Manufacturing downturn}")
    if not sink.ok:
        raise PolicyError(sink.items)
    return Scenario(str(data.get("name") or Path(path).stem), tuple(shocks), title)


_KEYS = {"name", "title", "description", "shocks"}
_Err = Callable[..., None]  # err(message, at, hint=None): one located diagnostic


def _shock(s: Any, at: tuple[Any, ...], policy: CompiledPolicy | None, err: _Err) -> Shock | None:
    """One shock of the list, or None when it is wrong (the error is reported through ``err``)."""
    if not isinstance(s, dict) or set(s) - {"field", "segment", "multiply", "add"}:
        err("a shock has field, optional segment, and multiply or add", at)
        return None
    field = s.get("field")
    if not isinstance(field, str) or not _FIELD.match(field):
        example = "exposures[*].days_past_due" if policy is not None and policy.scoped else "loan.days_past_due"
        err(f"field must be a column path such as {example}, found {field!r}", (*at, "field"))
        return None
    ops = [k for k in ("multiply", "add") if k in s]
    if len(ops) != 1 or isinstance(s[ops[0]], bool) or not isinstance(s[ops[0]], int | float):
        err("give exactly one of multiply or add, a number", at)
        return None
    if not math.isfinite(s[ops[0]]) or abs(s[ops[0]]) > MAX_ABS_NUMBER:  # YAML reads .nan and .inf as numbers
        err(f"{ops[0]} must be a finite number within ±{MAX_ABS_NUMBER:g}, found {s[ops[0]]!r}", (*at, ops[0]))
        return None
    whole = False
    if policy is not None:
        checked = _against_policy(s, field, at, policy, err)
        if checked is None:
            return None
        whole = checked
    return Shock(field, s.get("segment"), float(s["multiply"]) if "multiply" in s else None,
                 float(s["add"]) if "add" in s else None, whole)


def _against_policy(s: dict[str, Any], field: str, at: tuple[Any, ...], policy: CompiledPolicy,
                    err: _Err) -> bool | None:
    """Whether the shocked field holds whole numbers; None when the shock could not change a decision."""
    places = record_places(policy)
    spec = places.get(field)
    if spec is None and "[*]" in field and policy.scoped is None and not any(
            source.startswith(field.split("[*]")[0] + "[*]") for source in places):  # financials[*]: a 1.x series
        # a list of a debtor record (exposures[*]) under a version of client records
        err(f"'{field}' is a place in a debtor record (record 2.0), and {policy.key} decides client records 1.x, "
            "which have no lists to shock", (*at, "field"),
            f"name a version that decides debtors ({policy.id}@VERSION), or an --as-of on which one is in force")
        return None
    if spec is None:
        err(f"'{field}' is not an input of policy {policy.key}: a shock there cannot change a decision",
            (*at, "field"), did_you_mean(field, [p for p, i in places.items() if i.type in _NUMBER]))
        return None
    if spec.type not in _NUMBER:
        err(f"'{field}' holds {spec.type} values; only number fields can be shocked", (*at, "field"))
        return None
    whole = spec.type == "integer"
    if whole and "add" in s and not float(s["add"]).is_integer():
        err(f"'{field}' holds whole numbers; add a whole number", (*at, "add"))
        return None
    segment = s.get("segment")
    if segment is not None and segment not in policy.segments:
        err(f"unknown segment {segment!r}" + (f" (segments of {policy.id}: {', '.join(policy.segments)})"
                                              if policy.segments else f"; {policy.id} has no segments"),
            (*at, "segment"), did_you_mean(str(segment), list(policy.segments)))
        return None
    return whole


_NUMBER = ("number", "integer")


def record_places(policy: CompiledPolicy) -> dict[str, Any]:
    """Each input's place in the record, as a shock names it: its 'from' path, and under a version with scopes an
    element's input under its scope's path (``exposures[*].collateral.value``)."""
    places: dict[str, Any] = {i.source: i for i in policy.inputs}
    part = policy.scoped
    if part is not None:
        for scope in part.scopes:
            places.update({f"{scope.source}.{spec.source}": spec for spec in part.inputs[scope.name]})
    return places


def apply(scenario: Scenario, table: Table, segment_column: str | None = "industry") -> tuple[Table, list[int]]:
    """A shocked copy of ``table``, and how many cells each shock changed.

    Cells that hold no number are left as they are (the batch rejects them as it would anyway).
    """
    frame = table.frame.copy()
    industry = frame[segment_column].astype(str).to_numpy() \
        if segment_column is not None and segment_column in frame.columns else None
    changed = []
    for shock in scenario.shocks:
        count = 0
        if "[*]" in shock.field:
            head, _, tail = shock.field.partition("[*]")
            pattern = re.compile(re.escape(head) + r"\[\d+\]" + re.escape(tail) + "$")
            columns = [c for c in frame.columns if pattern.match(str(c))]
        else:
            columns = [shock.field] if shock.field in frame.columns else []
        rows = np.ones(len(frame), bool) if shock.segment is None or industry is None else industry == shock.segment
        for c in columns:
            frame[c], hits = _shocked_cells(frame[c], shock, rows, table.text)
            count += hits
        changed.append(count)
    return Table(frame, table.text, list(table.problems), table.positions, table.rows_read), changed


def _shocked_cells(cells: pd.Series, shock: Shock, rows: np.ndarray, text: bool) -> tuple[Any, int]:
    """A column with ``shock`` applied to the cells of ``rows`` that hold a number, and how many it changed
    (cells that hold no number are left as they are: the batch rejects them as it would anyway)."""
    numbers = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
    with np.errstate(over="ignore", invalid="ignore"):  # beyond a float: inf, which the batch refuses
        moved = numbers * shock.multiply if shock.multiply is not None else numbers + (shock.add or 0.0)
    if shock.whole:
        moved = np.rint(moved)
    hit = rows & ~np.isnan(numbers) & (moved != numbers)  # a cell the shock left as it was is not changed
    column = cells.astype(object).to_numpy(copy=True)
    if text:  # CSV cells stay text; whole numbers stay whole
        column[hit] = [repr(int(v)) if float(v).is_integer() else repr(float(v)) for v in moved[hit]]
    else:
        column[hit] = moved[hit]
    return column, int(hit.sum())


def simulate(policy: CompiledPolicy | PolicyRef, table: Table | Path, scenario: Scenario, as_of: str | None = None,
             progress: Callable[[int, int], None] | None = None,
             total: Sequence[str] = (), max_listed: int = 200, encoding: str = "utf-8") -> tuple[Impact, list[int]]:
    """The scenario's migration report (``impact``'s form) and the cells each shock changed.

    The unshocked and the shocked portfolio are two runs of the run layer under the same policy
    reference: a policy id decides each client under the version in force on its day, and rows
    rejected on either side are counted in the report's ``rejected`` block. ``total`` names the
    number metrics whose sums and means the report gives unshocked and shocked. Debtor records (JSON
    Lines) and a folder of long tables (``table`` its path; ``policy`` then the version that decides it)
    are stressed under one version with scopes, both sides decided as ``batch`` decides them.
    """
    from ..decide.ref import PolicyRef
    from ..portfolio.tables import row_days
    from .impact import analyse

    ref = policy if isinstance(policy, PolicyRef) else PolicyRef(policy)
    checked = ref.pinned if isinstance(table, Path) else checked_version(ref, table, as_of)
    if checked is None:
        raise UsageError([Diagnostic("scoped-portfolio-format", f"{table}: a folder of long tables is stressed under "
                                     "one version", hint="pin the version (ID@VERSION)")])
    segment = next((i.source for i in checked.inputs if i.name == checked.segment_by), None)
    copied = isinstance(table, Path) or checked.scoped is not None  # a shocked copy of the portfolio's files
    with _scratch() if copied else contextlib.nullcontext(Path()) as tmp:
        if isinstance(table, Path):  # a folder of long tables
            shocked: Table | Path = tmp / "tables"
            changed = shock_tables(scenario, checked, table, shocked, encoding)
            ref = PolicyRef(checked)
        elif checked.scoped is not None:  # debtor records, one a line
            refuse_table_for_debtors(checked, table)
            assert table.source is not None
            one_version(ref, checked, row_days(table.frame, as_of).tolist(), table.source)
            shocked = tmp / "shocked.jsonl"
            changed = shock_lines(scenario, table.source, shocked, segment)
            ref, table = PolicyRef(checked), table.source
        else:
            shocked, changed = apply(scenario, table, segment)
        result = analyse(ref, ref, table, as_of, new_table=shocked, progress=progress, total=total,
                         max_listed=max_listed, encoding=encoding)
    result.report["scenario"] = {"name": scenario.name, **({"title": dict(scenario.title)} if scenario.title else {}),
                                 "shocks": [
        {k: v for k, v in s.__dict__.items() if k != "whole"} | {"cells_changed": n}
        for s, n in zip(scenario.shocks, changed, strict=True)]}
    return result, changed


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary folder for the shocked copy of a portfolio, removed however the run ends: while it exists a
    SIGTERM (how CI cancels or times out a job) exits as an interrupt does, so a copy of a bank's debtors is not
    left behind in the temporary folder."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    if main:
        signal.signal(signal.SIGTERM, stop)
    try:
        with tempfile.TemporaryDirectory(prefix="policy-engine-scenario-") as tmp:
            yield Path(tmp)
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def shock_lines(scenario: Scenario, source: Path, out: Path, segment: str | None) -> list[int]:
    """Write ``source`` (debtor records, one a line) shocked to ``out``, line for line (a blank or unreadable line
    as it is, so that each debtor keeps its row and a bad line is rejected on both sides alike); how many values
    each shock changed. ``segment``: the debtor's field a shock's ``segment`` is compared with."""
    import orjson

    from ..policy.loader import JSONInputError, parse_json_text

    changed = [0] * len(scenario.shocks)
    paths = [[(p[:-3], True) if p.endswith("[*]") else (p, False) for p in s.field.split(".")]
             for s in scenario.shocks]
    with source.open("rb") as fh, out.open("wb") as written:
        for line in fh:
            try:  # read as batch reads it (a duplicate key, a depth too great: rejected on both sides alike)
                record = parse_json_text(line) if line.strip() else None
            except JSONInputError:
                record = None
            if not isinstance(record, dict):
                written.write(line if line.endswith(b"\n") else line + b"\n")
                continue
            of = _at(record, segment) if segment is not None else None
            for k, (shock, path) in enumerate(zip(scenario.shocks, paths, strict=True)):
                if shock.segment is None or of == shock.segment:
                    changed[k] += _shock_in(record, path, shock)
            try:
                written.write(orjson.dumps(record) + b"\n")
            except TypeError:  # an integer beyond 64 bits in a field no rule reads: the standard encoder writes it
                written.write(json.dumps(record, ensure_ascii=False).encode("utf-8") + b"\n")
    return changed


def shock_tables(scenario: Scenario, policy: CompiledPolicy, folder: Path, out: Path, encoding: str = "utf-8"
                 ) -> list[int]:
    """Write the long tables of ``folder`` shocked to the folder ``out`` (each table the scenario touches read whole
    and written in its format and encoding, the others copied); how many cells each shock changed. A shock's
    ``segment`` is the debtor's: the rows of a child table are matched to their debtor by ``client_id``."""
    import shutil

    from ..portfolio.frame import client_id_text
    from ..portfolio.long_tables import CLIENT_ID, DEBTORS, locate

    files = locate(policy, folder)
    places = _table_places(policy)
    segment = next((i.source for i in policy.inputs if i.name == policy.segment_by), None)
    frames: dict[str, pd.DataFrame | None] = {}
    numeric: dict[str, dict[str, bool]] = {}  # per table, each shocked column: a Parquet number column
    changed = []
    for shock in scenario.shocks:
        table, column = places.get(shock.field, ("", ""))
        if table not in files:  # a table the folder lacks (no rows), or a place no table holds
            changed.append(0)
            continue
        frame = _read_once(frames, table, files[table], encoding)
        debtors = _read_once(frames, DEBTORS, files[DEBTORS], encoding) if shock.segment is not None else None
        if frame is None or column not in frame.columns or (shock.segment is not None and debtors is None):
            changed.append(0)  # unreadable: left as it is, and the run says why as batch would
            continue
        rows = np.ones(len(frame), bool)
        if debtors is not None:
            # ids as the join reads them: a Parquet id column of floats holding whole numbers is their text
            of = dict(zip(client_id_text(debtors[CLIENT_ID]), debtors[segment].astype(str), strict=True)) \
                if segment in debtors.columns and CLIENT_ID in debtors.columns else {}
            rows = client_id_text(frame[CLIENT_ID]).map(of).to_numpy() == shock.segment \
                if CLIENT_ID in frame.columns else np.zeros(len(frame), bool)
        kind = numeric.setdefault(table, {})
        if column not in kind:  # as read, before a shock: a text column stays text (and is refused as such)
            kind[column] = files[table].suffix.lower() != ".csv" and pd.api.types.is_numeric_dtype(frame[column])
        frame[column], hits = _shocked_cells(frame[column], shock, rows, not kind[column])
        changed.append(hits)
    out.mkdir(parents=True, exist_ok=True)
    for table, path in files.items():
        if frames.get(table) is None:
            shutil.copyfile(path, out / path.name)
        elif path.suffix.lower() == ".csv":
            frames[table].to_csv(out / path.name, index=False, encoding=encoding, lineterminator="\n")
        else:
            frame = frames[table]
            assert frame is not None
            for c, number in numeric.get(table, {}).items():  # a shocked number column back to numbers
                if number:
                    frame[c] = pd.to_numeric(frame[c])
            frame.to_parquet(out / path.name, index=False)
    return changed


def _read_once(frames: dict[str, pd.DataFrame | None], table: str, path: Path, encoding: str
               ) -> pd.DataFrame | None:
    """A table as written, read once: every CSV cell its text (an empty cell stays empty), Parquet with its
    types; None when it cannot be read (a ragged row, another encoding, a damaged file), which the run that
    decides the folder names as batch names it."""
    from ..portfolio.frame import decimals_in_frame

    if table not in frames:
        try:
            frames[table] = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding) \
                if path.suffix.lower() == ".csv" else decimals_in_frame(pd.read_parquet(path), path)
        except (OSError, ValueError, UnicodeError, pd.errors.ParserError):
            frames[table] = None  # pyarrow's ArrowInvalid is a ValueError
    return frames[table]


def _table_places(policy: CompiledPolicy) -> dict[str, tuple[str, str]]:
    """Each place a shock names (:func:`record_places`) -> the long table and column that hold it."""
    from ..portfolio.long_tables import DEBTORS, layout

    out: dict[str, tuple[str, str]] = {}
    for t in layout(policy):
        for column in t.columns:
            if t.scope is not None:
                out[f"{policy.scoped.scope(t.scope).source}.{column}"] = (t.name, column)  # type: ignore[union-attr]
            elif t.series is not None:
                out[f"{t.series}[*].{column}"] = (t.name, column)
            else:
                out[column] = (DEBTORS, column)
    return out


def _at(record: Mapping[str, Any], path: str) -> Any:
    node: Any = record
    for key in path.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    return node


def _shock_in(node: Any, path: Sequence[tuple[str, bool]], shock: Shock) -> int:
    """Shock the values at ``path`` under ``node`` (a list step, ``[*]``, goes into every element); a value that
    is no number is left as it is (the run rejects it as it would anyway). The number of values changed."""
    if not isinstance(node, dict) or not path:
        return 0
    (key, each), rest = path[0], path[1:]
    if key not in node:
        return 0
    if each:
        items = node[key]
        return sum(_shock_in(x, rest, shock) for x in items) if isinstance(items, list) and rest else 0
    if rest:
        return _shock_in(node[key], rest, shock)
    v = node[key]
    if type(v) not in (int, float) or not math.isfinite(v):
        return 0
    moved: float = v * shock.multiply if shock.multiply is not None else v + (shock.add or 0.0)
    if not math.isfinite(moved):  # JSON has no infinity: the largest float, which the input check refuses as such
        moved = math.copysign(sys.float_info.max, moved)
    elif shock.whole and abs(moved) < 2**63:  # beyond 64 bits a whole number stays a float, refused likewise
        moved = round(moved)
    if moved == v:  # a value the shock left as it was is not changed
        return 0
    node[key] = moved
    return 1


def one_version(ref: PolicyRef, version: CompiledPolicy, days: Iterable[str | None], source: Path) -> None:
    """Debtors are stressed under one version with scopes, both sides: with a policy id, every debtor's day must
    select it (a debtor of another version would otherwise be decided under the wrong one)."""
    if ref.pinned is not None:
        return
    from collections import Counter

    others: Counter[str] = Counter()
    for day, rows in Counter(days).items():
        got = ref.for_day_or_refusal(day)
        if got is not version:
            others[got.key if isinstance(got, CompiledPolicy) else "no version in force"] += rows
    if others:
        listed = ", ".join(f"{k}: {n}" for k, n in sorted(others.items()))
        raise UsageError([Diagnostic(
            "several-versions", f"the debtors' days select other versions than {version.key} ({listed}): a "
            "scenario stresses debtors under one version", file=str(source),
            hint=f"pin it ({version.key}) or give --as-of")])


def checked_version(ref: PolicyRef, table: Table, as_of: str | None = None) -> CompiledPolicy:
    """The version a scenario is checked against: pinned, else the one in force on most rows' days.

    A policy id decides each row under the version in force on its day (``--as-of``, else its
    ``as_of``, else today), so a portfolio dated 2025 is checked against the version of 2025, not
    today's; a portfolio with no row is checked against the version of ``as_of`` (or today).
    """
    from ..diagnostics import UsageError
    from ..portfolio.tables import row_days

    if ref.pinned is not None:
        return ref.pinned
    from collections import Counter

    counts: dict[str, tuple[int, CompiledPolicy]] = {}
    for day, rows in Counter(row_days(table.frame, as_of).tolist()).items():
        version = ref.for_day_or_refusal(day)
        if isinstance(version, UsageError):  # those rows are rejected (no version in force): they decide nothing
            continue
        n, _ = counts.get(version.key, (0, version))
        counts[version.key] = (n + rows, version)
    if not counts:
        return ref.for_day(as_of)
    return max(counts.values(), key=lambda c: (c[0], c[1].effective_from))[1]
