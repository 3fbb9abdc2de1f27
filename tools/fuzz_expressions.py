"""The long expression fuzz run: many seeded expressions, both evaluators, minimal reproducers.

    python tools/fuzz_expressions.py --seed 1 --cases 20000 --out fuzz-findings

Draws ``--cases`` typed expressions over every function and operator (the generators of
``tests/fuzz/harness.py``), plants each in a small policy (metric, warning, action, message),
and decides ``--clients`` generated clients per expression through ``decide`` (row evaluator),
the vector evaluator over the same inputs, and a flattened typed table read as ``batch`` reads
it. Every escaped exception, disagreement, unlocated rejection or decide/batch acceptance
difference is shrunk (the expression to the smallest sub-expression that still shows it, the
clients to the one) and written to ``--out`` as ``NNNN-kind/`` with ``policy.yaml``,
``client.json`` and ``result.json`` (both paths' results). Prints the counts as JSON; exits 1
when anything was found. Needs the test extras (hypothesis).
"""

from __future__ import annotations

import argparse
import ast
import collections
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, seed, settings

from tests.fuzz.harness import MESSAGES, Finding, client_batches, run_one, typed_expressions

MAX_PER_SIGNATURE = 3  # reproducers written per kind of finding; all are counted
SHRINK_ATTEMPTS = 200


def _signature(f: Finding) -> str:
    """What makes two findings the same bug: the kind and the message without figures or names."""
    return f.kind + ":" + re.sub(r"'[^']*'|\d+(\.\d+)?", "_", f.detail)[:120]


def _sub_expressions(expr: str) -> list[str]:
    """Smaller candidates: every operand, argument or branch of every node, as text."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree.body):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr) and not isinstance(child, ast.List | ast.Tuple):
                out.append(ast.unparse(child))
    return sorted(set(out), key=len)


def _reproduces(kind: str, expr: str, message: str, client: dict[str, Any] | None, finding: Finding,
                table: bool) -> Finding | None:
    outcome = run_one(kind, expr, message, [client] if client is not None else [], table)
    return next((f for f in outcome.findings if f.kind == finding.kind and _signature(f) == _signature(finding)),
                None)


def shrink(kind: str, expr: str, message: str, finding: Finding, table: bool) -> tuple[str, Finding]:
    """The shortest expression (greedy, bounded) that still shows ``finding`` for its one client."""
    best, best_finding = expr, _reproduces(kind, expr, message, finding.client, finding, table) or finding
    attempts = 0
    improved = True
    while improved and attempts < SHRINK_ATTEMPTS:
        improved = False
        for candidate in _sub_expressions(best):
            if len(candidate) >= len(best):
                continue
            attempts += 1
            for k in (kind, "number", "bool", "string", "grade", "date"):
                hit = _reproduces(k, candidate, message, finding.client, finding, table)
                if hit is not None:
                    best, best_finding, kind, improved = candidate, hit, k, True
                    break
            if improved or attempts >= SHRINK_ATTEMPTS:
                break
    return best, best_finding


def write_reproducer(out: Path, n: int, expr: str, f: Finding) -> Path:
    d = out / f"{n:04d}-{f.kind}"
    d.mkdir(parents=True, exist_ok=True)
    (d / "policy.yaml").write_text(f.policy_text, encoding="utf-8")
    if f.client is not None:
        (d / "client.json").write_text(json.dumps(f.client, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    result = {"kind": f.kind, "expression": expr, "detail": f.detail, "row": f.row, "vector": f.vector}
    (d / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str) + "\n",
                                   encoding="utf-8")
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0, help="hypothesis seed (the same seed draws the same cases)")
    ap.add_argument("--cases", type=int, default=20_000, help="expressions to draw")
    ap.add_argument("--clients", type=int, default=12, help="clients decided per expression")
    ap.add_argument("--out", type=Path, default=Path("fuzz-findings"), help="directory for reproducers")
    ap.add_argument("--no-table", action="store_true", help="skip the flattened-table (batch) path")
    args = ap.parse_args(argv)
    table = not args.no_table

    counts: collections.Counter[str] = collections.Counter()
    codes: collections.Counter[str] = collections.Counter()
    signatures: collections.Counter[str] = collections.Counter()
    written: list[str] = []
    start = time.perf_counter()

    @seed(args.seed)
    @settings(max_examples=args.cases, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(typed_expressions(), MESSAGES, client_batches(args.clients))
    def one(typed: tuple[str, str], message: str, records: list[dict[str, Any]]) -> None:
        kind, expr = typed
        outcome = run_one(kind, expr, message, records, table)
        counts["expressions"] += 1
        counts["rejected" if outcome.rejected else "accepted"] += 1
        counts["clients compared (row vs vector)"] += outcome.compared
        counts["clients compared (row vs table)"] += outcome.table_compared
        for code, _, _ in outcome.rejected:
            codes[code] += 1
        for f in outcome.findings:
            counts[f"finding: {f.kind}"] += 1
            sig = _signature(f)
            signatures[sig] += 1
            if signatures[sig] <= MAX_PER_SIGNATURE:
                small, sf = shrink(kind, expr, message, f, table)
                written.append(str(write_reproducer(args.out, len(written) + 1, small, sf)))
        if counts["expressions"] % 1000 == 0:
            print(f"{counts['expressions']} expressions, {time.perf_counter() - start:.0f} s", file=sys.stderr)

    one()
    summary = {
        "seed": args.seed, "cases": args.cases, "clients_per_expression": args.clients, "table_path": table,
        "seconds": round(time.perf_counter() - start, 1), "counts": dict(counts),
        "rejections_by_code": dict(codes.most_common()), "finding_kinds": dict(signatures.most_common()),
        "reproducers": written,
    }
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    if args.out is not None:  # the run's record beside its reproducers, so a clean run leaves evidence too
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return 1 if signatures else 0


if __name__ == "__main__":
    sys.exit(main())
