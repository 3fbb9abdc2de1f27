"""Fuzz the two input paths: mutated client records through ``decide`` and ``batch --records``.

Each mutated client is decided the way ``policy-engine decide`` decides it (the JSON text parsed,
then ``Decider.decide``) and, in groups, the way ``policy-engine batch --records`` does (a JSON
Lines file and a CSV file read, checked and decided column-wise, full records rebuilt, recorded in
a decision store, then shown and replayed from it). Every client must come out the same on every
path: the same decision record except ``decision_id`` and ``evaluated_at`` (the input hash
included), or a rejection naming the same fields. No exception may escape any path.

Anything else is written to ``--out`` as a minimal reproducer (the group shrunk to the fewest
clients, each client to the fewest fields, that still show it), one JSON file per finding::

    python tools/fuzz_clients.py --seed 1 --cases 20000 --out fuzz-findings/

The CSV path decides what a CSV file can carry of a client: cells are text, so a number sent as a
string is a number there, an empty string is no value, and a nested value a cell cannot hold is its
JSON text. Its reference is ``decide`` of that same record.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run from a checkout: ``python tools/fuzz_clients.py``
    sys.path.insert(0, str(ROOT))

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.records import _clean, flatten
from policy_engine.diagnostics import InputError
from policy_engine.policy.loader import JSONInputError, parse_json_text
from policy_engine.portfolio.batch import series_roots, text_columns
from policy_engine.portfolio.synthetic import csv_cell

POLICY = ROOT / "policies" / "loss-client-management" / "policy-1.1.0.yaml"
SAMPLES = sorted((ROOT / "policies" / "loss-client-management" / "samples" / "clients").glob("*.json"))
VOLATILE = ("decision_id", "evaluated_at")

Outcome = tuple[str, Any]  # ("decided", record without volatile fields) | ("rejected", paths) | ("crash", text)


# ------------------------------------------------------------------ mutations

# Values that break a field's shape or range; nested junk; extremes of every JSON number kind.
JUNK: tuple[Any, ...] = (
    None, {}, [], "", "yes", "aaa", "7", "2025-06-30", "true", " ", "NaN", "1e400", "\u200b", "x" * 300,
    0, -1, 1, 7, 91, 2**53 + 1, 2**63, 2**64, 2**64 + 1, -(2**63) - 1, 10**30, -(10**30),
    0.5, -0.0, 1e-300, 1e15, 1e15 + 2, -1e15, 1e16, 1.7976931348623157e308, True, False,
    {"a": None}, {"a": {}}, {"a": {"b": [1, {}]}}, [None], [[]], [{}], [1, "two", {"three": 3}],
)
NEW_KEYS = ("notes", "comment", "meta", "tags", "score", "loan.notes", "events.extra", "history.notes")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterable[tuple[Any, ...]]:
    """Every node's path in a record (keys and list indices), the root excluded."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


def _parent(record: Any, path: Sequence[Any]) -> Any:
    for p in path[:-1]:
        record = record[p]
    return record


def _junk(rng: random.Random) -> Any:
    return copy.deepcopy(rng.choice(JUNK))


def mutate(rng: random.Random, base: dict[str, Any], index: int) -> dict[str, Any]:
    """A copy of ``base`` with one to four structural mutations (missing, empty, wrong-typed, extreme, junk)."""
    rec = copy.deepcopy(base)
    rec["client_id"] = f"F{index:06d}"
    for _ in range(rng.choices((1, 2, 3, 4), (6, 3, 2, 1))[0]):
        kind = rng.random()
        paths = list(_paths(rec))
        if kind < 0.10 and paths:  # missing
            path = rng.choice(paths)
            parent = _parent(rec, path)
            del parent[path[-1]]
        elif kind < 0.50 and paths:  # a field, an object or a period replaced by junk
            path = rng.choice(paths)
            if path == ("client_id",) and rng.random() < 0.7:
                continue  # keep most ids, so that most mutations are judged on the rest
            _parent(rec, path)[path[-1]] = _junk(rng)
        elif kind < 0.72:  # a field the policy does not read, of any shape
            key = rng.choice(NEW_KEYS).split(".")
            parent = rec
            for part in key[:-1]:
                parent = parent.get(part) if isinstance(parent.get(part), dict) else parent.setdefault(part, {})
                if not isinstance(parent, dict):
                    break
            else:
                parent[key[-1]] = _junk(rng)
        elif kind < 0.84:  # the periods: emptied, cut, padded with an empty period, one not an object
            periods = rec.get("financials")
            if not isinstance(periods, list):
                continue
            choice = rng.randrange(4)
            if choice == 0:
                periods.clear()
            elif choice == 1 and periods:
                del periods[rng.randrange(len(periods)):]
            elif choice == 2:
                periods.insert(rng.randint(0, len(periods)), {} if rng.random() < 0.5 else {"revenue": None})
            else:
                periods.insert(rng.randint(0, len(periods)), _junk(rng))
        elif kind < 0.92:  # client_id and as_of, the two fields every path reads first
            rec[rng.choice(("client_id", "as_of"))] = _junk(rng)
        else:  # an object of the record replaced by a scalar or an empty object
            objects = [k for k, v in rec.items() if isinstance(v, dict)]
            if objects:
                rec[rng.choice(objects)] = rng.choice(({}, "yes", "aaa", 1, [], True))
    return rec


# ---------------------------------------------------------------- the paths


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def decide_outcome(decider: Decider, record: Any) -> Outcome:
    """The client as ``policy-engine decide`` sees it: its JSON text parsed, then decided."""
    try:
        raw = json.dumps(record, ensure_ascii=False).encode("utf-8")
        return ("decided", _strip(decider.decide(parse_json_text(raw))))
    except InputError as exc:
        return ("rejected", tuple(sorted({d.path or "(record)" for d in exc.diagnostics})))
    except JSONInputError as exc:
        return ("rejected", (f"(json) {exc}",))
    except Exception as exc:  # the finding: an exception escaped
        return ("crash", f"{type(exc).__name__}: {exc}")


def csv_view(record: Any, columns: Sequence[str], keep_text: set[str], series: set[str]) -> Any:
    """The client record a CSV row stands for: cells are text, typed as a CSV reader types them.

    Built from the nested record, not from the table: nulls, empty objects and empty lists are no
    cells; a list whose item columns the table has is a list in every row (maybe empty), its
    missing items empty objects, its empty items at the end dropped.
    """
    if not isinstance(record, dict):
        return record
    lists = {c[:k] for c in columns for k, ch in enumerate(c) if ch == "["} & series  # in every row

    def leaf(v: Any, path: str) -> Any:
        text = csv_cell(v)
        if path in keep_text:  # the client id and the strings the policy reads stay text
            return text or None
        return _clean(text, text=True)

    def view(v: Any, path: str) -> Any:
        if isinstance(v, dict):
            out = {}
            for k, x in v.items():
                y = view(x, f"{path}.{k}" if path else k)
                if y is not None and y != {}:
                    out[k] = y
            return out
        if isinstance(v, list):
            items = [view(x, f"{path}[{i}]") for i, x in enumerate(v)]
            items = [{} if x is None else x for x in items]
            while items and items[-1] == {}:
                items.pop()
            return items if items or path in lists else None
        return leaf(v, path)

    out = view(record, "")
    for path in sorted(lists, key=len):  # a list the table has is in every row
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            if "[" in part or not isinstance(node, dict):
                node = None
                break
            node = node.setdefault(part, {})
        if isinstance(node, dict) and "[" not in parts[-1] and node.get(parts[-1]) in (None, {}):
            node[parts[-1]] = []
    return out


def write_csv(path: Path, records: Sequence[Any]) -> list[str]:
    rows = [flatten(r) if isinstance(r, dict) else {} for r in records]
    columns = list(dict.fromkeys(c for row in rows for c in row))
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            w.writerow([csv_cell(v) if (v := row.get(c)) != [] and v != {} else "" for c in columns])
    return columns


def batch_outcomes(policy: Any, decider: Decider, path: Path, n: int, store_path: Path | None) -> list[Outcome]:
    """Each row of a batch file as ``batch --records`` (and the decision store) leaves it."""
    from policy_engine.portfolio.batch import audit_segments, iter_records, read_table, run_batch
    from policy_engine.record.audit import AuditStore

    try:
        table = read_table(path)
        result = run_batch(policy, table, workers=1)
        out: list[Outcome | None] = [None] * n
        for r in result.rejects:
            out[r["row"] - 1] = ("rejected", tuple(sorted({p["field"] for p in r["problems"]})))
        rows = result.decisions["row"].to_numpy()
        decided = list(iter_records(result, decider))
        for row, rec in zip(rows, decided, strict=True):
            out[int(row) - 1] = ("decided", _strip(rec))
        if store_path is not None:
            with AuditStore(store_path) as store:
                before = store.head()[0]
                store.append_segments(policy, audit_segments(result, "full"), None)
                for k, row in enumerate(rows):
                    rec = store.get(str(before + 1 + k))
                    verdict, diffs = store.replay(rec)
                    shown, note = store.full_decision(rec)
                    if verdict != "identical" or (note and "different facts" in note):
                        out[int(row) - 1] = ("crash", f"audit replay {verdict}: {diffs[:3]} {note}")
                    elif _strip(shown) != out[int(row) - 1][1]:  # type: ignore[index]
                        out[int(row) - 1] = ("crash", "audit show differs from --records")
        return [o if o is not None else ("crash", "row neither decided nor rejected") for o in out]
    except Exception as exc:  # the finding: an exception escaped
        return [("crash", f"{type(exc).__name__}: {exc}")] * n


def _same(a: Outcome, b: Outcome) -> bool:
    return a == b


def check_group(policy: Any, decider: Decider, records: Sequence[Any], workdir: Path,
                audit: bool = True) -> list[dict[str, Any]]:
    """Every difference between the paths for one group of clients (one batch file per format)."""
    findings = []
    jsonl = workdir / "clients.jsonl"
    jsonl.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    csv_path = workdir / "clients.csv"
    columns = write_csv(csv_path, records)
    store = workdir / "audit.db" if audit else None
    if store is not None and store.exists():
        store.unlink()
    keep = text_columns(policy, columns)
    series = series_roots(policy)
    json_ref = _duplicates([decide_outcome(decider, r) for r in records], [_id_text(r, False) for r in records])
    views = [csv_view(r, columns, keep, series) for r in records]
    csv_ref = _duplicates([decide_outcome(decider, v) for v in views], [_id_text(v, True) for v in views])
    for fmt, path, refs in (("jsonl", jsonl, json_ref), ("csv", csv_path, csv_ref)):
        got = batch_outcomes(policy, decider, path, len(records), store)
        for i, (want, have) in enumerate(zip(refs, got, strict=True)):
            if want[0] == "crash" or have[0] == "crash" or not _same(want, have):
                findings.append({"format": fmt, "client": i, "decide": _brief(want), "batch": _brief(have)})
    return findings


def _id_text(record: Any, text: bool) -> str | None:
    """The client id as a batch reads it to find duplicates: its text."""
    if not isinstance(record, dict):
        return None
    v = record.get("client_id")
    if isinstance(v, dict) and v and not text:  # flattened into fields below client_id: no id cell
        return None
    return None if v is None or v == "" else str(v)


def _duplicates(outcomes: list[Outcome], ids: list[str | None]) -> list[Outcome]:
    """A batch also refuses a client id seen on an earlier row (decide sees one client at a time)."""
    seen: set[str] = set()
    out = []
    for o, cid in zip(outcomes, ids, strict=True):
        if cid is not None and cid in seen and o[0] != "crash":
            o = ("rejected", tuple(sorted({*(o[1] if o[0] == "rejected" else ()), "client_id"})))
        if cid is not None:
            seen.add(cid)
        out.append(o)
    return out


def _brief(o: Outcome) -> Any:
    if o[0] == "decided":
        return {"decided": {k: o[1].get(k) for k in ("input_sha256", "classification")}}
    return {o[0]: o[1]}


# ---------------------------------------------------------------- shrinking


def _shrink_record(rec: Any, still: Callable[[Any], bool]) -> Any:
    """Drop keys and periods, one at a time, while the finding holds."""
    changed = True
    while changed:
        changed = False
        for path in sorted(_paths(rec), key=len, reverse=True):
            if path == ("client_id",):
                continue
            trial = copy.deepcopy(rec)
            try:
                parent = _parent(trial, path)
                del parent[path[-1]]
            except (KeyError, IndexError, TypeError):
                continue
            if still(trial):
                rec, changed = trial, True
                break
    return rec


def minimise(policy: Any, decider: Decider, suspect: Any, records: list[Any], workdir: Path) -> list[Any]:
    """The fewest clients showing a finding about ``suspect``, each with the fewest fields.

    ``suspect`` alone, else ``suspect`` beside the one other client of its group that shows it
    (a repeated id, two shapes of one column), else the whole group.
    """
    def fails(group: list[Any]) -> bool:
        return bool(check_group(policy, decider, group, workdir))

    group = [suspect]
    if not fails(group):
        partner = next((r for r in records if r is not suspect and fails([r, suspect])), None)
        group = [partner, suspect] if partner is not None else list(records)
    if len(group) <= 2:
        for k in range(len(group)):
            group[k] = _shrink_record(group[k], lambda r, k=k: fails([*group[:k], r, *group[k + 1:]]))
    return group


# ---------------------------------------------------------------------- main


def run(seed: int, cases: int, out: Path | None, group: int = 250, audit: bool = True,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    from policy_engine.policy.registry import load_policy

    policy = load_policy(POLICY)
    decider = Decider(policy)
    bases = [json.loads(f.read_text(encoding="utf-8")) for f in SAMPLES]
    rng = random.Random(seed)
    counts = {"clients": 0, "decided": 0, "rejected": 0, "findings": 0, "groups": 0}
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fuzz-clients-") as tmp:
        work = Path(tmp)
        for lo in range(0, cases, group):
            records = [mutate(rng, rng.choice(bases), i) for i in range(lo, min(lo + group, cases))]
            findings = check_group(policy, decider, records, work, audit)
            counts["groups"] += 1
            counts["clients"] += len(records)
            for r in records:
                kind = decide_outcome(decider, r)[0]
                counts[kind] = counts.get(kind, 0) + 1
            if findings:
                counts["findings"] += len(findings)
                log(f"group {counts['groups']}: {len(findings)} finding(s), first: {findings[0]}")
                if out is not None:
                    minimal = minimise(policy, decider, records[findings[0]["client"]], records, work)
                    out.mkdir(parents=True, exist_ok=True)
                    name = out / f"seed{seed}-group{counts['groups']:05d}.json"
                    name.write_text(json.dumps({"seed": seed, "findings": check_group(policy, decider, minimal, work),
                                                "clients": minimal}, ensure_ascii=False, indent=2) + "\n",
                                    encoding="utf-8")
                    log(f"  reproducer: {name}")
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=20_000, help="mutated clients (default 20000)")
    ap.add_argument("--out", type=Path, default=None, help="directory for minimal reproducers")
    ap.add_argument("--group", type=int, default=250, help="clients per batch file (default 250)")
    ap.add_argument("--no-audit", action="store_true", help="skip the decision store's show and replay")
    args = ap.parse_args(argv)
    if args.cases < 1 or args.group < 1:
        ap.error("--cases and --group must be positive")
    counts = run(args.seed, args.cases, args.out, args.group, not args.no_audit)
    print(json.dumps(counts))
    if args.out is not None:  # the run's record beside its reproducers, so a clean run leaves evidence too
        args.out.mkdir(parents=True, exist_ok=True)
        summary = {"seed": args.seed, "cases": args.cases, **counts}
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 1 if counts["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
