"""Benchmarks for the core engine (issue 2). A script, not a test: run it and read the table.

    .venv/bin/python benchmarks/bench_decide.py [--seconds 2] [--repeats 5] [--runs 15] [--instructions]

Measures, in one run so ratios hold on a noisy machine:
  * in-process decisions per second on the shipped sample mix, without and with trace
    (one full decision record each: input checks, input hash, metrics, score, floors,
    warnings and actions with their bilingual messages);
  * the parts of one decision (input checks, the generated row function, the record);
  * policy load + validate + compile, cold (first time in a process) and warm;
  * wall time of one `policy-engine decide` process (a 1.x client, and a debtor under 2.0.0, whose
    policy imports a module and declares scopes) and of `policy-engine --help`,
    beside `python -c "import yaml, click"` for the ratio (launches alternate); with
    --instructions also their instruction counts (valgrind), which machine noise does not move.
Figures are medians.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

POLICY = ROOT / "policies" / "loss-client-management" / "policy-1.1.0.yaml"
SAMPLES = sorted((ROOT / "policies" / "loss-client-management" / "samples" / "clients").glob("*.json"))
DEBTOR = ROOT / "policies" / "loss-client-management" / "samples" / "debtors" / "05-contagion-three-exposures.json"


def rate(fn, clients, seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for c in clients:
            fn(c)
        n += len(clients)
    return n / (time.perf_counter() - start)


def per_call_us(fn, number: int = 20000) -> float:
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number * 1e6


ENV = {**os.environ, "POLICY_ENGINE_POLICIES": str(ROOT / "policies")}


def walls(cmds: list[list[str]], runs: int) -> list[float]:
    """Median wall time of each command; launches alternate, so drift on a noisy machine hits all alike."""
    times: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for cmd, out in zip(cmds, times, strict=True):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def instructions(cmd: list[str]) -> int:
    """Instructions one run of ``cmd`` executes (callgrind): repeatable where wall time is not."""
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=True,
                          env={**ENV, "PYTHONHASHSEED": "0"})
    match = re.search(r"Collected : (\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"valgrind printed no instruction count for {cmd}")
    return int(match.group(1))


def main() -> None:
    import compileall

    # Measure what an installed engine runs: byte code compiled, not sources parsed on every import.
    compileall.compile_dir(str(ROOT / "policy_engine"), quiet=1)
    sys.path.insert(0, str(ROOT))  # a checkout works without installing
    from policy_engine.decide.evaluate import Decider
    from policy_engine.policy.registry import load_policy

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=2.0, help="duration of one throughput measurement")
    ap.add_argument("--repeats", type=int, default=5, help="throughput measurements (median reported)")
    ap.add_argument("--runs", type=int, default=15, help="process launches per command (median reported)")
    ap.add_argument("--instructions", action="store_true",
                    help="also count the instructions of the process commands with valgrind (callgrind): "
                         "ratios that machine noise does not move; needs valgrind, adds about a minute")
    args = ap.parse_args()

    rows: list[tuple[str, str]] = []
    cold = subprocess.run([sys.executable, "-c", (
        f"import time,sys; sys.path.insert(0, {str(ROOT)!r}); t=time.perf_counter();"
        f"from policy_engine.policy.registry import load_policy; load_policy({str(POLICY)!r});"
        "print(time.perf_counter()-t)")], capture_output=True, text=True, check=True)
    rows.append(("policy load+validate+compile, cold process (incl. imports)", f"{float(cold.stdout) * 1e3:.1f} ms"))
    warm = []
    for _ in range(10):
        start = time.perf_counter()
        policy = load_policy(POLICY)
        warm.append(time.perf_counter() - start)
    rows.append(("policy load+validate+compile, warm", f"{statistics.median(warm) * 1e3:.1f} ms"))

    decider = Decider(policy)
    clients = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES]
    plain = statistics.median(rate(decider.decide, clients, args.seconds) for _ in range(args.repeats))
    traced = statistics.median(rate(lambda c: decider.decide(c, trace=True), clients, args.seconds)
                               for _ in range(args.repeats))
    rows.append((f"decide in-process, {len(clients)}-client sample mix, no trace", f"{plain:,.0f} decisions/s"))
    rows.append(("decide in-process, with trace", f"{traced:,.0f} decisions/s"))

    case = clients[1]
    inputs = decider._extract(case)
    params = policy.params_for(case["industry"])
    day = dt.date.fromisoformat(case["as_of"])
    rows.append(("  part: input checks (generated fast path)", f"{per_call_us(lambda: decider._extract(case)):.1f} us"))
    rows.append(("  part: generated row function (all rules)",
                 f"{per_call_us(lambda: policy.row_function(inputs, params, day)):.1f} us"))
    rows.append(("  part: full decide, case-study client (4 warnings, 5 actions)",
                 f"{per_call_us(lambda: decider.decide(case)):.1f} us"))
    rows.append(("  part: full decide, healthy client", f"{per_call_us(lambda: decider.decide(clients[0])):.1f} us"))

    exe = str(Path(sys.executable).with_name("policy-engine"))
    base_cmd = [sys.executable, "-c", "import yaml, click"]
    decide_cmd = [exe, "decide", "-p", "loss-client-management", "-c", str(SAMPLES[1]), "--no-audit"]
    debtor_cmd = [exe, "decide", "-p", "loss-client-management", "-c", str(DEBTOR), "--no-audit"]
    help_cmd = [exe, "--help"]
    for cmd in (decide_cmd, debtor_cmd):  # warm the validation cache
        subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, check=True, env=ENV)
    py, base, one, debtor, helps = walls([[sys.executable, "-c", "pass"], base_cmd, decide_cmd, debtor_cmd, help_cmd],
                                         args.runs)
    rows.append(('python -c "pass"', f"{py * 1e3:.0f} ms"))
    rows.append(('python -c "import yaml, click"', f"{base * 1e3:.0f} ms"))
    rows.append(("policy-engine decide (one process)", f"{one * 1e3:.0f} ms  ({one / base:.2f}x yaml+click)"))
    rows.append(("policy-engine decide, a 2.0.0 debtor of 3 exposures (one process)",
                 f"{debtor * 1e3:.0f} ms  ({debtor / base:.2f}x yaml+click, {debtor / one:.2f}x the 1.x client)"))
    rows.append(("policy-engine --help", f"{helps * 1e3:.0f} ms  ({helps / base:.2f}x yaml+click)"))
    if args.instructions:
        counted = {name: instructions(cmd) for name, cmd in
                   (("base", base_cmd), ("decide", decide_cmd), ("help", help_cmd))}
        rows.append(('instructions: python -c "import yaml, click"', f"{counted['base'] / 1e6:,.1f} M"))
        for name, label in (("decide", "policy-engine decide"), ("help", "policy-engine --help")):
            rows.append((f"instructions: {label}",
                         f"{counted[name] / 1e6:,.1f} M  ({counted[name] / counted['base']:.2f}x yaml+click)"))

    width = max(len(r[0]) for r in rows)
    print(f"policy_engine benchmarks  (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
