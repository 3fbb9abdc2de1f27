"""The cost of recording (issue 4). A script, not a test: run it and read the table.

    .venv/bin/python benchmarks/bench_audit.py [--clients 100000] [--runs 21] [--repeats 3]

  * a batch of --clients synthetic clients (Parquet in, Parquet out) with and without the store;
  * one `policy-engine decide` process with and without the store (medians of --runs launches, and
    the median of the differences within each back-to-back pair, which drift on a shared machine
    moves least);
  * `audit verify` over the store the batch wrote, in records per second;
  * a folder of long tables of --debtors synthetic debtors of policy 2.0.0 (Parquet) with and without
    the store, a rerun over the store (it records and decides nothing again), the store's bytes a debtor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXE = str(Path(sys.executable).with_name("policy-engine"))
POLICY = ROOT / "policies" / "loss-client-management" / "policy-1.1.0.yaml"
POLICY_2 = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
SAMPLES = ROOT / "policies" / "loss-client-management" / "samples" / "clients"
CLIENT = SAMPLES / "02-case-manufacturer-raw-material-squeeze.json"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    import compileall

    # Measure what an installed engine runs: byte code compiled, not sources parsed on every import.
    compileall.compile_dir(str(ROOT / "policy_engine"), quiet=1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--debtors", type=int, default=20_000, help="debtors of the long-table folder (0: skip it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pe-audit-bench-") as tmp:
        work = Path(tmp)
        subprocess.run([sys.executable, "-c", (
            "import sys, pandas as pd; sys.path.insert(0, {root!r});"
            "from policy_engine.portfolio.synthetic import generate_columns;"
            "pd.DataFrame(generate_columns({n}, seed=3)).to_parquet({out!r}, index=False)").format(
                root=str(ROOT), n=args.clients, out=str(work / "p.parquet"))], check=True)
        batch = ["batch", str(work / "p.parquet"), "-p", str(POLICY), "--out", str(work / "d.parquet"),
                 "--format", "json"]
        # Runs with and without the store alternate, so drift on a noisy machine hits both alike.
        without_runs, with_runs = [], []
        for k in range(args.repeats):
            without_runs.append(timed([EXE, *batch, "--no-audit"]))
            with_runs.append(timed([EXE, "--audit-db", str(work / f"b{k}.db"), *batch]))
        without, with_store = statistics.median(without_runs), statistics.median(with_runs)
        decide = ["decide", "-p", str(POLICY), "-c", str(CLIENT)]
        db = work / "single.db"
        subprocess.run([EXE, "--audit-db", str(db), *decide], check=True, stdout=subprocess.DEVNULL)  # create it
        plain_runs, recorded_runs = [], []
        for _ in range(args.runs):
            plain_runs.append(timed([EXE, *decide, "--no-audit"]))
            recorded_runs.append(timed([EXE, "--audit-db", str(db), *decide]))
        plain, recorded = statistics.median(plain_runs), statistics.median(recorded_runs)
        paired = statistics.median(r - p for p, r in zip(plain_runs, recorded_runs, strict=True))
        verify = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            out = subprocess.run([EXE, "--audit-db", str(work / "b0.db"), "audit", "verify", "--format", "json"],
                                 cwd=ROOT, check=True, capture_output=True, text=True).stdout
            verify.append((time.perf_counter() - start, json.loads(out)["records"]))
        vsecs = statistics.median(v[0] for v in verify)
        records = verify[0][1]
        debtors = _debtor_folder(work, args.debtors, args.repeats) if args.debtors else None
    print(f"audit benchmarks ({args.clients:,} clients; python {sys.version.split()[0]}, {os.cpu_count()} cpus; "
          "medians)")
    print(f"batch without store                 {without:8.2f} s")
    print(f"batch with store                    {with_store:8.2f} s   ratio {with_store / without:.2f}x")
    print(f"decide process without store        {plain * 1e3:8.1f} ms")
    print(f"decide process with store           {recorded * 1e3:8.1f} ms   +{(recorded - plain) * 1e3:.1f} ms "
          f"(paired: +{paired * 1e3:.1f} ms)")
    print(f"audit verify ({records:,} records)      {vsecs:8.2f} s   {records / vsecs:,.0f} records/s "
          "(process start included)")
    if debtors is not None:
        plain_d, stored_d, rerun_d, size = debtors
        print(f"long tables, {args.debtors:,} debtors, without store {plain_d:8.2f} s")
        print(f"long tables, with store                {stored_d:8.2f} s   ratio {stored_d / plain_d:.2f}x, "
              f"{size / args.debtors / 1024:.1f} KB a debtor")
        print(f"long tables, rerun over the store      {rerun_d:8.2f} s   (nothing recorded or decided again)")


def _debtor_folder(work: Path, n: int, repeats: int) -> tuple[float, float, float, int]:
    """(without store, with store, rerun over the last store) seconds, medians, and the store's bytes."""
    folder = work / "tables"
    subprocess.run([EXE, "generate", "-p", str(POLICY_2), "--n", str(n), "--seed", "3", "--as-of", "2026-09-30",
                    "--tables", "parquet", "--out", str(folder)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    batch = ["batch", str(folder), "-p", str(POLICY_2), "--out", str(work / "debtors.parquet"), "--format", "json"]
    plain, stored = [], []
    for k in range(repeats):  # alternating, as above
        plain.append(timed([EXE, *batch, "--no-audit"]))
        stored.append(timed([EXE, "--audit-db", str(work / f"d{k}.db"), *batch]))
    last = work / f"d{repeats - 1}.db"
    rerun = timed([EXE, "--audit-db", str(last), *batch])
    return statistics.median(plain), statistics.median(stored), rerun, last.stat().st_size


if __name__ == "__main__":
    main()
