"""Portfolio benchmarks (issue 3). A script, not a test: run it and read the table.

    .venv/bin/python benchmarks/bench_portfolio.py [--clients 1000000] [--row-clients 100000] [--repeats 3]

In one run, on one seeded synthetic portfolio generated on the fly (never committed), each
measurement in its own process so its peak memory is its own:

  (a) `policy-engine batch` end to end, Parquet in and Parquet out (process start included; without
      the decision store, whose cost benchmarks/bench_audit.py measures);
  (b) the vector evaluator's core alone: a frame in memory -> checked columns -> result arrays;
  (c) the row evaluator, one full decision record per client, in-process;
  (d) `policy-engine decide --stream` over JSON lines (one process, one line in, one line out);
  (e) `policy-engine batch --engine dask` on a LocalCluster with 2 workers, the portfolio as a
      partitioned Parquet dataset (10 files), without the decision store as (a) (Dask records
      since the run layer; bench_audit.py measures recording); its peak memory is the client's only;
  (f) `policy-engine impact 1.0.0 1.1.0` over the same portfolio, beside (a) for the ratio.

Figures are medians of --repeats runs; peak memory is the largest resident set of the process.
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
sys.path.insert(0, str(ROOT))
POLICY = ROOT / "policies" / "loss-client-management" / "policy-1.1.0.yaml"
EXE = str(Path(sys.executable).with_name("policy-engine"))
POLICY_ID = "loss-client-management"


def measured(cmd: list[str], stdin: Path | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS in MB and stdout of one child process."""
    start = time.perf_counter()
    with open(stdin, "rb") if stdin else open(os.devnull, "rb") as fin, \
            tempfile.TemporaryFile() as fout:
        proc = subprocess.Popen(cmd, stdin=fin, stdout=fout, stderr=subprocess.PIPE, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read().decode() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): {err[-2000:]}")
        fout.seek(0)
        out = fout.read().decode()
    return wall, usage.ru_maxrss / 1024, out


def child(name: str, workdir: Path, n: int) -> None:
    """Runs inside a measured process; prints one JSON line with its own timings."""
    import pandas as pd

    from policy_engine.decide.evaluate import Decider
    from policy_engine.policy.loader import parse_json_text
    from policy_engine.policy.registry import load_policy
    from policy_engine.portfolio.frame import prepare
    from policy_engine.portfolio.vector import evaluate_chunks, evaluate_columns

    if name == "generate":
        import orjson

        from policy_engine.portfolio.synthetic import generate_clients, generate_columns

        frame = pd.DataFrame(generate_columns(n, seed=int(os.environ["BENCH_SEED"])))
        frame.to_parquet(workdir / "portfolio.parquet", index=False)
        (workdir / "dataset").mkdir()
        step = max(len(frame) // 10, 1)
        for i, start in enumerate(range(0, len(frame), step)):
            frame.iloc[start:start + step].to_parquet(workdir / "dataset" / f"part-{i:03d}.parquet", index=False)
        with (workdir / "clients.jsonl").open("wb") as fh:
            for c in generate_clients(int(os.environ["BENCH_ROW_CLIENTS"]), seed=int(os.environ["BENCH_SEED"]) + 1):
                fh.write(orjson.dumps(c) + b"\n")
        return
    policy = load_policy(POLICY)
    if name == "core":
        frame = pd.read_parquet(workdir / "portfolio.parquet")
        start = time.perf_counter()
        prep = prepare(policy, frame, text=False)
        mid = time.perf_counter()
        evaluate_columns(policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days)
        end = time.perf_counter()
        evaluate_chunks(policy, len(prep.rows), prep.inputs, prep.segments, prep.as_of_days, workers=2)
        threaded = time.perf_counter() - end
        print(json.dumps({"checks": mid - start, "evaluate": end - mid, "threaded": threaded,
                          "rows": len(prep.rows)}))
    elif name == "row":
        decider = Decider(policy)
        clients = [parse_json_text(line) for line in (workdir / "clients.jsonl").read_bytes().splitlines()[:n]]
        start = time.perf_counter()
        for c in clients:
            decider.decide(c)
        print(json.dumps({"seconds": time.perf_counter() - start, "rows": len(clients)}))


def main() -> None:
    import compileall

    # Measure what an installed engine runs: byte code compiled, not sources parsed on every import.
    compileall.compile_dir(str(ROOT / "policy_engine"), quiet=1)
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=1_000_000)
    ap.add_argument("--row-clients", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--workdir", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, Path(args.workdir), args.row_clients)
        return

    with tempfile.TemporaryDirectory(prefix="pe-bench-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        # Generated in a child: a forked child inherits its parent's peak memory figure, so the
        # parent stays small and every measured child reports only its own peak.
        os.environ.update(BENCH_SEED=str(args.seed), BENCH_ROW_CLIENTS=str(args.row_clients))
        subprocess.run([sys.executable, __file__, "--child", "generate", "--workdir", str(work),
                        "--row-clients", str(args.clients)], check=True)
        print(f"generated {args.clients:,} clients (Parquet) and {args.row_clients:,} (JSON lines) "
              f"in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        rows: list[tuple[str, str, str, str]] = []
        runs = [measured([EXE, "batch", str(work / "portfolio.parquet"), "-p", str(POLICY),
                          "--out", str(work / "decisions.parquet"), "--format", "json", "--no-audit"])
                for _ in range(args.repeats)]
        wall = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        decided = json.loads(runs[0][2])["accounting"]["decided"]
        rows.append(("(a) batch, Parquet -> Parquet, end to end", f"{wall:.2f} s",
                     f"{decided / wall:,.0f} decisions/s", f"{peak:,.0f} MB"))

        core = [measured([sys.executable, __file__, "--child", "core", "--workdir", str(work)])
                for _ in range(args.repeats)]
        outs = [json.loads(c[2]) for c in core]
        ev = statistics.median(o["evaluate"] for o in outs)
        ck = statistics.median(o["checks"] for o in outs)
        n = outs[0]["rows"]
        rows.append(("(b) vector core: evaluate columns -> result arrays", f"{ev:.2f} s",
                     f"{n / ev:,.0f} decisions/s", f"{max(c[1] for c in core):,.0f} MB"))
        th = statistics.median(o["threaded"] for o in outs)
        rows.append(("    same, 250k-row chunks on 2 threads", f"{th:.2f} s", f"{n / th:,.0f} decisions/s", ""))
        rows.append(("    + column checks (frame -> checked columns)", f"{ck + ev:.2f} s",
                     f"{n / (ck + ev):,.0f} decisions/s", ""))

        row = [measured([sys.executable, __file__, "--child", "row", "--workdir", str(work),
                         "--row-clients", str(args.row_clients)]) for _ in range(args.repeats)]
        secs = statistics.median(json.loads(r[2])["seconds"] for r in row)
        rows.append((f"(c) row evaluator, {args.row_clients:,} full records", f"{secs:.2f} s",
                     f"{args.row_clients / secs:,.0f} decisions/s", f"{max(r[1] for r in row):,.0f} MB"))

        stream = [measured([EXE, "decide", "-p", str(POLICY), "--stream", "--no-audit"], stdin=work / "clients.jsonl")
                  for _ in range(args.repeats)]
        swall = statistics.median(s[0] for s in stream)
        lines = len(stream[0][2].splitlines())
        rows.append((f"(d) decide --stream, {lines:,} lines", f"{swall:.2f} s", f"{lines / swall:,.0f} decisions/s",
                     f"{max(s[1] for s in stream):,.0f} MB"))
        dask = [measured([EXE, "batch", str(work / "dataset"), "-p", str(POLICY), "--engine", "dask",
                          "--workers", "2", "--out", str(work / "dask-out"), "--format", "json", "--no-audit"])
                for _ in range(args.repeats)]
        dwall = statistics.median(d[0] for d in dask)
        ddecided = json.loads(dask[0][2])["accounting"]["decided"]
        rows.append(("(e) batch --engine dask, LocalCluster, 2 workers, 10 partitions", f"{dwall:.2f} s",
                     f"{ddecided / dwall:,.0f} decisions/s", f"{max(d[1] for d in dask):,.0f} MB (client)"))

        impact = [measured([EXE, "impact", f"{POLICY_ID}@1.0.0", f"{POLICY_ID}@1.1.0", "--portfolio",
                            str(work / "portfolio.parquet"), "--format", "json"]) for _ in range(args.repeats)]
        iwall = statistics.median(i[0] for i in impact)
        rows.append(("(f) impact 1.0.0 vs 1.1.0 over the portfolio", f"{iwall:.2f} s",
                     f"{iwall / wall:.2f}x the batch (a)", f"{max(i[1] for i in impact):,.0f} MB"))

    print(f"portfolio benchmarks: {args.clients:,} clients, python {sys.version.split()[0]}, "
          f"{os.cpu_count()} cpus, medians of {args.repeats}")
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{'measurement':<{widths[0]}}  {'time':>{widths[1]}}  {'rate':>{widths[2]}}  {'peak memory':>{widths[3]}}")
    for r in rows:
        print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:>{widths[3]}}")


if __name__ == "__main__":
    main()
