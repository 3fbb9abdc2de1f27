"""Long-table portfolio benchmark (issue 15). A script, not a test: run it and read the table.

    .venv/bin/python benchmarks/bench_long_tables.py [--debtors 350000] [--repeats 1] [--dir DIR] [--policy 2.1.0]

Generates (once, into DIR, reused when it is there) the seeded synthetic long tables of the
reference policy 2.0.0 for ``--debtors`` debtors (1 to 5 exposures each: about 1M exposures for
350k debtors, with their payments, modifications, events and statements), then decides them
Parquet to Parquet in a fresh process per repeat, timing each stage: read (the Parquet files),
check (every cell by decide's rules, the joins, the accounting), build (the long tables of the
accepted debtors), evaluate (the scoped vector evaluator), write (the debtor and exposure
decision tables as Parquet). Peak memory is the process's largest resident set
(``resource.getrusage``); ``cpu`` is the process's user + system seconds, the figure to read
when other work shares the machine (wall seconds then measure the queue). The issue's target:
under 15 s, under 4 GB (for 2.0.0; ``--policy 2.1.0`` measures the next version, which reads more
statement fields and checks its payments unique and its dates not before origination, as of 2027-09-30).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
POLICIES = ROOT / "policies" / "loss-client-management"
AS_OF = {"2.0.0": "2026-09-30", "2.1.0": "2027-09-30"}  # a day each version is in force
STAGES = ("read", "check", "build", "evaluate", "write")


def generate(folder: Path, debtors: int, version: str) -> dict[str, int]:
    from policy_engine.policy.registry import load_policy
    from policy_engine.portfolio.synthetic import write_long_tables

    policy = load_policy(POLICIES / f"policy-{version}.yaml")
    start = time.perf_counter()
    rows = write_long_tables(policy, folder, debtors, seed=15, as_of=AS_OF[version])
    (folder / "rows.json").write_text(json.dumps(rows))
    print(f"generated {rows} in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return rows


def child(folder: Path, out: Path, version: str) -> None:
    """One decision run, Parquet to Parquet; prints its stage timings and peak memory as JSON."""
    start, cpu = time.perf_counter(), time.process_time()
    from policy_engine.policy.registry import load_policy
    from policy_engine.portfolio.long_tables import run_long_batch, write_decisions

    policy = load_policy(POLICIES / f"policy-{version}.yaml")
    loaded = time.perf_counter() - start
    loaded_cpu = time.process_time() - cpu
    result = run_long_batch(policy, folder, AS_OF[version])
    t, c = time.perf_counter(), time.process_time()
    write_decisions(result, out / "decisions.parquet", out / "exposures.parquet")
    result.timings["write"] = time.perf_counter() - t
    result.timings["cpu_write"] = time.process_time() - c
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"wall": time.perf_counter() - start, "load_policy": loaded, "cpu_load_policy": loaded_cpu,
                      **result.timings,
                      "cpu": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024,
                      "decided": result.decided, "summary": result.summary()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--debtors", type=int, default=350_000)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/policy-engine-bench-long"))
    ap.add_argument("--policy", choices=sorted(AS_OF), default="2.0.0", help="the reference policy version")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    folder = args.dir / (f"tables-{args.debtors}" if args.policy == "2.0.0" else f"tables-{args.policy}-{args.debtors}")
    out = args.dir / "out"
    if args.child:
        child(folder, out, args.policy)
        return
    if not (folder / "rows.json").is_file():
        generate(folder, args.debtors, args.policy)
    out.mkdir(parents=True, exist_ok=True)
    rows = json.loads((folder / "rows.json").read_text())
    runs = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, "--child", "--debtors", str(args.debtors), "--dir",
                               str(args.dir), "--policy", args.policy], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        got["process"] = time.perf_counter() - start
        runs.append(got)
    print(f"rows: {rows}")
    print(f"{'stage':<12}{'seconds (median of ' + str(len(runs)) + ')':>26}{'cpu seconds':>14}")
    for stage in (*STAGES, "frames", "load_policy", "wall", "process", "cpu"):
        if stage in runs[0]:
            cpu = f"{statistics.median(r['cpu_' + stage] for r in runs):>14.2f}" if f"cpu_{stage}" in runs[0] else ""
            print(f"{stage:<12}{statistics.median(r[stage] for r in runs):>26.2f}{cpu}")
    print(f"{'peak MB':<12}{max(r['peak_mb'] for r in runs):>26.0f}")
    print(f"summary: {runs[0]['summary']}")


if __name__ == "__main__":
    main()
