"""Benchmark of a 2.0.0 decision (issue 15). A script, not a test: run it and read the table.

    .venv/bin/python -m compileall -q policy_engine      # PYTHONDONTWRITEBYTECODE=1 on some machines
    .venv/bin/python benchmarks/bench_scoped.py [--seconds 1] [--repeats 7] [--profile]
    valgrind --tool=callgrind --callgrind-out-file=/dev/null .venv/bin/python benchmarks/bench_scoped.py --n 200

The issue's target: "a 2.0.0 decision of a debtor with 3 exposures and 12 payments each costs at
most 3x a 1.1.0 decision in the same run". Measured in one process, alternating, so drift on a
noisy machine hits both sides alike (wall clock here drifts 30-50% between runs; the ratio far less):

  * in-process decisions per second, ``Decider.decide`` of a parsed record (warm: policies compiled,
    deciders built), of the 1.1.0 sample client 13 (restructured, in observation: the 1.x form of
    the same situation) and of the 1.1.0 sample mix, and of the 2.0.0 debtor built below; the
    ratio of 2.0.0 to 1.1.0 per repetition, median of the repetitions;
  * the same with the JSON text of the record (``dumps``), as ``decide`` writes it;
  * the cost of each stage of the 2.0.0 decision, the stages run in sequence as ``decide`` runs them,
    each over what the stage before made fresh: the debtor's inputs read and checked, the elements
    (exposures, payments, modifications, events) read and checked, the check of the record's kind,
    the input hash, the exposure stage (each exposure's metrics and floors), the debtor stage (debtor
    metrics, debtor floors applied back, warnings, actions) and the record assembly (the aggregations
    run inside the exposure stage, over payments and modifications, and the debtor stage, over
    exposures and events), and their sum beside the whole decision; with ``--profile``, the
    functions a decision spends its time in (cProfile).

``--n N`` only decides N times each (no timing loop, no table): under callgrind the instruction
counts of such runs (``--n 0`` for start-up and policy compilation alone) give figures that machine
noise does not move: the ratio (I(--n N --only 2.0.0) - I(--n 0)) / (I(--n N --only 1.1.0) - I(--n 0)),
and with ``--stage`` one stage's instructions per call ((I(--n N --stage S) - I(--n 0)) / N).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies" / "loss-client-management"
POLICY_1 = POLICIES / "policy-1.1.0.yaml"
POLICY_2 = POLICIES / "policy-2.0.0.yaml"
CLIENT_1 = POLICIES / "samples" / "clients" / "13-restructured-in-observation.json"
CLIENTS_1 = sorted((POLICIES / "samples" / "clients").glob("*.json"))
DEBTOR_BASE = POLICIES / "samples" / "debtors" / "13-observation-restarted.json"
PAYMENTS = 12


def debtor() -> dict[str, Any]:
    """A realistic 2.0 debtor: 3 exposures of 12 payments each, statements, events, modifications.

    From sample debtor 13 (a grace period granted while 30 days overdue, a payment missed in
    observation): E1 keeps its restructuring, E2 a rate cut for the then-healthy debtor (not a
    restructuring), E3 is a guarantee-backed line with an arrear paid late; two dated events.
    """
    base = json.loads(DEBTOR_BASE.read_text(encoding="utf-8"))
    template = base["exposures"][0]
    exposures = []
    for k, (balance, product) in enumerate(((12_000_000.0, "working_capital"), (8_000_000.0, "fixed_asset"),
                                            (5_000_000.0, "trade_finance"))):
        e = copy.deepcopy(template)
        e["exposure_id"] = f"E{k + 1}"
        e["product"] = product
        e["balance"] = balance
        e["accrued_interest"] = round(balance * 0.004, 2)
        e["collateral"]["value"] = balance * 1.5
        e["collateral"]["value_at_origination"] = balance * 1.6
        e["accounting"]["ecl"] = balance * 0.01
        e["schedule"] = e["schedule"][:PAYMENTS]
        exposures.append(e)
    exposures[1]["modifications"] = [{"date": "2025-12-15", "measure": "rate_cut", "new_rate": 0.04,
                                      "fair_rate": 0.042, "days_past_due": 0, "grade_before": "pass",
                                      "difficulty_assessed": False}]
    exposures[2]["modifications"] = []
    late = exposures[2]["schedule"][3]
    late["paid_date"] = "2026-02-05"  # due 2026-01-20: an arrear, cleared 16 days late
    base["exposures"] = exposures
    base["events"] = [{"kind": "litigation", "date": "2026-04-02"},
                      {"kind": "major_customer_lost", "date": "2026-06-30"}]
    return base


def _load() -> tuple[Any, Any, dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    from policy_engine.decide.evaluate import Decider
    from policy_engine.policy.registry import load_policy

    d1, d2 = Decider(load_policy(POLICY_1)), Decider(load_policy(POLICY_2))
    one = json.loads(CLIENT_1.read_text(encoding="utf-8"))
    mix = [json.loads(p.read_text(encoding="utf-8")) for p in CLIENTS_1]
    return d1, d2, one, mix, debtor()


def per_decision(fn: Callable[[Any], Any], records: list[Any], seconds: float) -> float:
    """Seconds per call of ``fn`` over ``records`` in turn, for about ``seconds``."""
    n = 0
    start = time.perf_counter()
    while True:
        for r in records:
            fn(r)
        n += len(records)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / n


def per_call(fn: Callable[[], Any], seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        n += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / n


def stage_calls(d2: Any, record: dict[str, Any]) -> dict[str, tuple[str, Callable[[], Any]]]:
    """Each stage of the scoped decision as a call over the same debtor (its inputs prepared once)."""
    import hashlib

    from policy_engine.decide.evaluate import canonical_json, dumps

    p = d2.policy
    cid, day, inputs, elements, input_hash = d2.read_record(record)
    params = p.params_for(inputs[d2._segment_index] if d2._segment_index is not None else None)
    d2.grade_exposures(inputs, params, day, elements)
    results = p.row_function(inputs, params, day, elements)
    out = d2.assemble(cid, day, inputs, elements, results, input_hash)
    return {
        "inputs": ("read the debtor's inputs", lambda: d2.read(record)),
        "elements": ("read the elements (3 exposures, 36 payments, 2 modifications, 2 events)",
                     lambda: d2.read_elements(record, day)),
        "hash": ("input hash (canonical JSON, sha256)",
                 lambda: hashlib.sha256(canonical_json(record, lists_optional=True)).hexdigest()),
        "exposures": ("exposure stage (each exposure's metrics and floors)",
                      lambda: d2.grade_exposures(inputs, params, day, elements)),
        "debtor": ("debtor stage (aggregations, debtor floors applied back, warnings, actions)",
                   lambda: p.row_function(inputs, params, day, elements)),
        "record": ("record assembly", lambda: d2.assemble(cid, day, inputs, elements, results, input_hash)),
        "dump": ("JSON dump of the record", lambda: dumps(out)),
    }


STAGES = ("inputs", "elements", "hash", "exposures", "debtor", "record", "dump")
SEQUENCE = (("inputs", "read the debtor's inputs"),
            ("elements", "read the elements (3 exposures, 36 payments, 2 modifications, 2 events)"),
            ("kind", "check the record is of the kind the version reads"),
            ("hash", "input hash (canonical JSON, sha256)"),
            ("exposures", "exposure stage (each exposure's metrics and floors)"),
            ("debtor", "debtor stage (aggregations, debtor floors applied back, warnings, actions)"),
            ("record", "record assembly"))


def stages(d2: Any, record: dict[str, Any], seconds: float) -> list[tuple[str, float]]:
    """Seconds a decision spends in each stage, the stages run in sequence as ``decide`` runs them, each over
    what the one before made fresh (the elements read again each time: a stage timed alone over elements already
    graded runs warm, and the warm stages summed miss about a quarter of a decision). With the whole decision
    beside them, their sum shows what is left outside any stage (the calls between them)."""
    import hashlib

    from policy_engine.decide import evaluate
    from policy_engine.decide.evaluate import canonical_json
    from policy_engine.decide.record_kind import accepted_of_another_kind

    p = d2.policy
    spent = dict.fromkeys((name for name, _ in SEQUENCE), 0.0)
    clock = time.perf_counter
    n = 0
    start = clock()
    while clock() - start < seconds:
        t0 = clock()
        cid, day, inputs = d2.read(record)
        t1 = clock()
        elements, _ = d2.read_elements(record, day)
        t2 = clock()
        accepted_of_another_kind(p, record, d2._graded_list, None, None)
        t3 = clock()
        input_hash = hashlib.sha256(canonical_json(record, lists_optional=True)).hexdigest()
        t4 = clock()
        params = p.params_for(inputs[d2._segment_index] if d2._segment_index is not None else None)
        token = evaluate._DEBTOR.set(evaluate._Debtor(elements))  # as decide_elements sets it around both
        d2.grade_exposures(inputs, params, day, elements)
        t5 = clock()
        results = p.row_function(inputs, params, day, elements)
        evaluate._DEBTOR.reset(token)
        t6 = clock()
        d2.assemble(cid, day, inputs, elements, results, input_hash)
        t7 = clock()
        for (name, _), a, b in zip(SEQUENCE, (t0, t1, t2, t3, t4, t5, t6), (t1, t2, t3, t4, t5, t6, t7), strict=True):
            spent[name] += b - a
        n += 1
    return [(words, spent[name] / n) for name, words in SEQUENCE]


def profile(d2: Any, record: dict[str, Any], n: int = 300, top: int = 15) -> list[tuple[str, str]]:
    """The functions a 2.0.0 decision spends its time in (cProfile, own time), most first.

    The aggregations run inside the generated code: over payments and modifications in the
    exposure stage (``graded_own``), over exposures and events in the debtor stage (``decide_row``);
    their helpers are the ``_agg_*`` functions (the generated loops all count as ``<listcomp>``).
    """
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(n):
        d2.decide(record)
    prof.disable()
    st = pstats.Stats(prof)
    total = st.total_tt  # type: ignore[attr-defined]
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]  # type: ignore[attr-defined]
    return [(f"  cProfile: {Path(file).name}:{name}", f"{tt / total:4.0%} own time ({calls / n:g} calls)")
            for (file, _, name), (_, calls, tt, _, _) in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=1.0, help="duration of one throughput measurement")
    ap.add_argument("--repeats", type=int, default=7, help="alternating measurements (median reported)")
    ap.add_argument("--profile", action="store_true", help="also where a decision spends its time (cProfile)")
    ap.add_argument("--n", type=int, default=None, help="decide N times each and stop (for callgrind)")
    ap.add_argument("--only", choices=("1.1.0", "2.0.0"), help="with --n: decide only this version's record")
    ap.add_argument("--stage", choices=STAGES, help="with --n: run only this stage of the 2.0.0 decision N times")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))  # a checkout works without installing
    d1, d2, one, mix, record = _load()
    if args.n is not None and args.stage is not None:
        _, call = stage_calls(d2, record)[args.stage]
        for _ in range(args.n):
            call()
        return
    if args.n is not None:
        for _ in range(args.n):
            if args.only != "2.0.0":
                d1.decide(one)
            if args.only != "1.1.0":
                d2.decide(record)
        return

    from policy_engine.decide.evaluate import dumps

    per_run: dict[str, list[float]] = {k: [] for k in ("one", "mix", "two", "one_json", "two_json")}
    for _ in range(args.repeats):
        per_run["one"].append(per_decision(d1.decide, [one], args.seconds))
        per_run["two"].append(per_decision(d2.decide, [record], args.seconds))
        per_run["mix"].append(per_decision(d1.decide, mix, args.seconds))
        per_run["one_json"].append(per_decision(lambda r: dumps(d1.decide(r)), [one], args.seconds))
        per_run["two_json"].append(per_decision(lambda r: dumps(d2.decide(r)), [record], args.seconds))

    def median(key: str) -> float:
        return statistics.median(per_run[key])

    def ratio(a: str, b: str) -> float:
        return statistics.median(x / y for x, y in zip(per_run[a], per_run[b], strict=True))

    rows = [
        ("1.1.0 decide, sample client 13 (restructured)", f"{1 / median('one'):,.0f} decisions/s  "
                                                          f"({median('one') * 1e6:.1f} us)"),
        (f"1.1.0 decide, {len(mix)}-client sample mix", f"{1 / median('mix'):,.0f} decisions/s  "
                                                        f"({median('mix') * 1e6:.1f} us)"),
        ("2.0.0 decide, debtor 3 exposures x 12 payments", f"{1 / median('two'):,.0f} decisions/s  "
                                                           f"({median('two') * 1e6:.1f} us)"),
        ("ratio 2.0.0 / 1.1.0 client 13 (target <= 3)", f"{ratio('two', 'one'):.2f}x"),
        ("ratio 2.0.0 / 1.1.0 sample mix", f"{ratio('two', 'mix'):.2f}x"),
        ("ratio with the JSON text (decide + dumps), client 13", f"{ratio('two_json', 'one_json'):.2f}x"),
    ]
    parts = stages(d2, record, args.seconds * 2)
    whole = median("two")
    for name, sec in parts:
        rows.append((f"  2.0.0 stage: {name}", f"{sec * 1e6:7.1f} us  ({sec / whole:4.0%})"))
    inside = sum(sec for _, sec in parts)
    rows.append(("  2.0.0 stages summed (the rest: the calls between them)",
                 f"{inside * 1e6:7.1f} us  ({inside / whole:4.0%})"))
    if args.profile:
        rows += profile(d2, record)
    width = max(len(r[0]) for r in rows)
    print(f"policy_engine scoped benchmark  (python {sys.version.split()[0]}, {os.cpu_count()} cpus, "
          f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC)")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
