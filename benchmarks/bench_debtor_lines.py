"""Benchmark of ``batch`` over JSON Lines of debtor records (2.0.0). A script, not a test: run it and read the table.

    .venv/bin/python benchmarks/bench_debtor_lines.py [--debtors 10000] [--repeats 3] [--dir DIR]

Generates (once, into DIR, reused when it is there) seeded synthetic debtors of the reference policy
2.0.0 as JSON Lines, then:

  * runs ``policy-engine batch`` over them in a fresh process per repeat (decisions to JSON Lines,
    nothing recorded): wall and CPU seconds, microseconds per debtor, peak memory;
  * times the stages of that run in this process over the first chunk of debtors (5,000, as batch
    reads them), each stage over what the one before made, with the collector set as batch sets it:
    parse (strict JSON), read (decide's checks of the debtor and its elements, and the input hash),
    tables (the long tables of the chunk's elements), evaluate (the scoped vector evaluator); and
    the parse and the read again with CPython's default collector thresholds, what a chunk of parsed
    debtors cost before batch raised them.

Impact and simulate over JSON Lines of debtors read and decide through the same path, once per side.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POLICY = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
AS_OF = "2026-09-30"


def generate(path: Path, debtors: int) -> None:
    import orjson

    from policy_engine.policy.registry import load_policy
    from policy_engine.portfolio.synthetic import policy_clients

    start = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        for record in policy_clients(load_policy(POLICY), debtors, 15, AS_OF, 4):
            fh.write(orjson.dumps(record) + b"\n")
    print(f"generated {debtors:,} debtors ({path.stat().st_size / 1e6:.0f} MB) in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)


def batch_process(path: Path, out: Path) -> dict[str, float]:
    """One ``batch`` process: wall seconds, CPU seconds and peak memory of the child."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "policy_engine", "--no-audit", "batch", "-p", str(POLICY), str(path),
                           "--out", str(out), "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    accounting = json.loads(proc.stdout)["accounting"]
    return {"wall": wall, "cpu": after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime,
            "peak_mb": after.ru_maxrss / 1024, "decided": accounting["decided"], "read": accounting["rows_read"]}


def stages(path: Path) -> dict[str, float]:
    """Seconds per debtor of each stage over the first chunk, as batch runs them (see the module's docstring)."""
    import itertools

    from policy_engine.decide.evaluate import Decider
    from policy_engine.policy.loader import parse_json_text
    from policy_engine.policy.registry import load_policy
    from policy_engine.portfolio.scoped_batch import CHUNK_DEBTORS, fewer_collections
    from policy_engine.portfolio.scoped_vector import evaluate_debtors, long_tables

    policy = load_policy(POLICY)
    decider = Decider(policy)
    with path.open("rb") as fh:
        lines = list(itertools.islice(fh, CHUNK_DEBTORS))
    n = len(lines)
    out: dict[str, float] = {}
    for collector, context in (("", fewer_collections), (" (default collector)", default_collector)):
        with context():
            gc.collect()
            t0 = time.perf_counter()
            records = [parse_json_text(raw) for raw in lines]
            t1 = time.perf_counter()
            read = [decider._read_record(r, AS_OF) for r in records]
            t2 = time.perf_counter()
            out["parse" + collector], out["read" + collector] = (t1 - t0) / n, (t2 - t1) / n
            if not collector:
                elements = [r[3] for r in read]
                t3 = time.perf_counter()
                long_tables(policy, elements)
                t4 = time.perf_counter()
                evaluate_debtors(policy, [r[2] for r in read], [r[1] for r in read], elements)
                out["tables"], out["evaluate (its tables included)"] = (t4 - t3) / n, (time.perf_counter() - t4) / n
            records = read = []
    return out


@contextlib.contextmanager
def default_collector() -> Iterator[None]:
    """CPython 3.11's default collector thresholds, for the figures before batch raised them."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debtors", type=int, default=10_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/policy-engine-bench-lines"))
    args = ap.parse_args()
    path = args.dir / f"debtors-{args.debtors}.jsonl"
    if not path.is_file():
        generate(path, args.debtors)
    runs = [batch_process(path, args.dir / "decisions.jsonl") for _ in range(args.repeats)]
    n = runs[0]["read"]
    print(f"policy_engine debtor-lines benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC)")
    print(f"batch of {n:,} debtors ({runs[0]['decided']:,} decided), median of {len(runs)} processes:")
    wall, cpu = statistics.median(r["wall"] for r in runs), statistics.median(r["cpu"] for r in runs)
    print(f"  {'wall':<40}{wall:>10.2f} s  ({wall / n * 1e6:,.0f} us a debtor)")
    print(f"  {'cpu':<40}{cpu:>10.2f} s  ({cpu / n * 1e6:,.0f} us a debtor)")
    print(f"  {'peak memory':<40}{max(r['peak_mb'] for r in runs):>10.0f} MB")
    print("stages over the first chunk, in this process (us a debtor):")
    for name, seconds in stages(path).items():
        print(f"  {name:<40}{seconds * 1e6:>10.1f}")


if __name__ == "__main__":
    main()
