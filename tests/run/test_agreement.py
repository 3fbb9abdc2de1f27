"""One decision whatever the path: decide, decide --stream, batch --records (CSV, Parquet, JSON Lines),
the Dask path, impact's per-client results and the Python API agree on every client, and each
path's decision store holds exactly one record per decided client.

Clients are drawn around the shipped versions' effective dates (1.0.0 from 2024-01-01, 1.1.0 from
2025-01-01, and a day before either: rejected with the same reason everywhere), with nulls and
boundary values patched in. Hypothesis draws the seeds, the dates and the patches; each example
is a portfolio of a few hundred clients, so every path runs once per example.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policy_engine as pe
from policy_engine.cli import main
from policy_engine.decide.evaluate import summarize
from policy_engine.diagnostics import PolicyEngineError
from policy_engine.portfolio.batch import flatten, read_table
from policy_engine.portfolio.synthetic import csv_cell, generate_clients
from policy_engine.record.audit import AuditStore
from policy_engine.record.segments import decision_facts
from policy_engine.review.impact import analyse
from policy_engine.review.tester import apply_patch
from policy_engine.run import decide_client

from ..conftest import POLICIES

ID = "loss-client-management"
DATES = ["2023-12-31", "2024-01-01", "2024-06-30", "2024-12-31", "2025-01-01", "2025-03-31", "2025-06-30"]
BEFORE_ANY = "2023-12-31"
# Values at and around the thresholds the reference policy reads, and nulls.
BOUNDARY: dict[str, list[Any]] = {
    "loan.days_past_due": [0, 1, 30, 60, 89, 90, 91, 180, 270, 271, 360, 361, None],
    "internal_rating": [1, 5, 7, 8, 9, 10, None],
    "loan.collateral_value": [0, 1, 250_000_000.5, None],
    "loan.rate": [0.0, 0.0503, 0.0504, 0.1, None],
    "exposure.nonperforming_share_at_bank": [0, 0.1, 0.5, 1, None],
    "exposure.overdue_90_share_all_banks": [0, 0.05, 0.1, 0.100001, None],
    "events.litigation": [True, False, None],
    "events.assets_seized": [True, False, None],
    "history.previous_grade": ["pass", "special_mention", "substandard", "doubtful", "loss", None],
    "restructuring.restructured": [True, False, None],
    "restructuring.periods_repaid": [0, 1, 2, 4, None],
    "financials[-1].net_income": [-1, 0, 1, -250_000_000.25, None],
    "financials[-1].current_liabilities": [0, 1, None],
    "financials[-1].equity": [-1, 0, 1, None],
    "financials[0].revenue": [0, 1, None],
    "financials[-1].operating_cash_flow": [-1, 0, None],
}
FIELDS = sorted(BOUNDARY)
VOLATILE = ("decision_id", "evaluated_at")
CLIENTS_PER_EXAMPLE = 520  # four examples: over 2,000 clients per run


def _portfolio(seed: int, dates: list[str], patches: list[tuple[str, int]]) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    per_date = CLIENTS_PER_EXAMPLE // len(dates)
    clients = []
    for k, day in enumerate(dates):
        for i, client in enumerate(generate_clients(per_date, seed * 10 + k, day)):
            client["client_id"] = f"S{seed}-{k}-{i}"
            chosen = rng.sample(patches, min(len(patches), rng.randint(0, 3))) if patches else []
            patch = {f: BOUNDARY[f][v % len(BOUNDARY[f])] for f, v in chosen}
            clients.append(apply_patch(client, patch))
    rng.shuffle(clients)
    return clients


def _strip(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in VOLATILE}


def _facts(record: dict[str, Any]) -> dict[str, Any]:
    """The facts a batch table and a batch store record hold (``evaluate.summarize`` without ids and times)."""
    return {k: v for k, v in summarize(record).items() if k not in (*VOLATILE, "record", "engine_version")}


def _error(codes: list[str], exit_code: int) -> tuple[str, int, tuple[str, ...]]:
    return ("error", exit_code, tuple(sorted(set(codes))))


def _reference(clients: list[dict[str, Any]], db: Path) -> dict[str, Any]:
    """The Python API, one client at a time (one store open for all): a record, or why it was refused."""
    out: dict[str, Any] = {}
    ref = pe.PolicyRef(ID, registry=POLICIES)
    with AuditStore(db) as store:
        for c in clients:
            try:
                out[c["client_id"]] = decide_client(ref, c, store=store)[1]
            except PolicyEngineError as e:
                out[c["client_id"]] = _error([d.code for d in e.diagnostics], e.exit_code)
    return out


def _cli(*args: str, input: str | bytes | None = None) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], input=input)


def _write_inputs(clients: list[dict[str, Any]], root: Path) -> dict[str, Path]:
    rows = [flatten(c) for c in clients]
    columns = list(dict.fromkeys(k for r in rows for k in r))
    paths = {"csv": root / "p.csv", "parquet": root / "p.parquet", "jsonl": root / "p.jsonl"}
    with paths["csv"].open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            w.writerow([csv_cell(r.get(c)) for c in columns])
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for c in columns:  # one Parquet type per column: numbers as float64 (whole values read back as whole)
        values = [v for v in frame[c] if v is not None and not (isinstance(v, float) and v != v)]
        if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            frame[c] = pd.to_numeric(frame[c], errors="raise").astype("float64")
    frame.to_parquet(paths["parquet"], index=False)
    paths["jsonl"].write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in clients))
    return paths


def _store_facts(db: Path) -> dict[str, list[dict[str, Any]]]:
    """client id -> the facts of every record the store holds for it."""
    out: dict[str, list[dict[str, Any]]] = {}
    with AuditStore(db, create=False) as store:
        for row in store.query():
            decision = store.stored(row)[0]
            facts = decision if decision.get("record") == "summary" else summarize(decision)
            out.setdefault(row["client_id"], []).append(
                {k: v for k, v in facts.items() if k not in (*VOLATILE, "record", "engine_version")})
    return out


def _check_store(db: Path, reference: dict[str, Any], path: str) -> None:
    held = _store_facts(db)
    decided = {cid for cid, r in reference.items() if isinstance(r, dict)}
    assert set(held) == decided, f"{path}: store holds other clients than the decided ones"
    for cid, facts in held.items():
        assert len(facts) == 1, f"{path}: {len(facts)} records of {cid}"
        assert facts[0] == _facts(reference[cid]), f"{path}: stored facts of {cid} differ"


def _check_batch(paths: dict[str, Path], reference: dict[str, Any], root: Path) -> None:
    for fmt, src in paths.items():
        db, records, rejects = root / f"{fmt}.db", root / f"{fmt}.records.jsonl", root / f"{fmt}.rejects.jsonl"
        r = _cli("--audit-db", str(db), "batch", str(src), "-p", ID, "--records", str(records), "--rejects",
                 str(rejects), "--format", "json", "--out", str(root / f"{fmt}.out.parquet"))
        assert r.exit_code == 0, (fmt, r.output)
        got = {}
        for line in records.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            got[rec["client_id"]] = _strip(rec)
        for line in rejects.read_text(encoding="utf-8").splitlines():
            rej = json.loads(line)
            got[rej["client_id"]] = ("error", 2 if any(p["code"] == "no-version-in-force" for p in rej["problems"])
                                     else 3, tuple(sorted({p["code"] for p in rej["problems"]})))
        assert set(got) == set(reference), fmt
        for cid, want in reference.items():
            if isinstance(want, dict):
                assert got[cid] == _strip(want), (fmt, cid)
            else:  # refused: for the same reason (batch lists every problem, decide may stop at the first kind)
                assert got[cid][:2] == want[:2] and set(want[2]) <= set(got[cid][2]), (fmt, cid, got[cid], want)
        summary = json.loads(r.stdout)
        assert summary["accounting"]["decided"] == sum(isinstance(v, dict) for v in reference.values())
        _check_store(db, reference, f"batch {fmt}")


@settings(max_examples=4, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000),
       dates=st.lists(st.sampled_from(DATES), min_size=3, max_size=5, unique=True).filter(
           lambda ds: any(d < "2025-01-01" for d in ds) and any(d >= "2025-01-01" for d in ds)),
       patches=st.lists(st.tuples(st.sampled_from(FIELDS), st.integers(0, 12)), max_size=12, unique=True))
def test_every_path_gives_the_same_record_and_records_it_once(
        tmp_path_factory: pytest.TempPathFactory, seed: int, dates: list[str], patches: list[tuple[str, int]]) -> None:
    root = tmp_path_factory.mktemp("agree")
    clients = _portfolio(seed, dates, patches)
    reference = _reference(clients, root / "api.db")
    decided = [c for c in clients if isinstance(reference[c["client_id"]], dict)]
    assert len(decided) > len(clients) // 2  # the draw decides most clients: the comparison has substance
    versions = {reference[c["client_id"]]["policy"]["version"] for c in decided}
    assert versions == {"1.0.0", "1.1.0"}
    _check_store(root / "api.db", reference, "python api")

    # decide --stream: one answer per line, the same record or the same refusal (named by its client)
    lines = "".join(json.dumps(c) + "\n" for c in clients)
    r = _cli("--audit-db", str(root / "stream.db"), "decide", "-p", ID, "--stream", input=lines)
    assert r.exit_code == 0, r.output
    answers = [json.loads(a) for a in r.stdout.splitlines()]
    assert len(answers) == len(clients)
    for c, a in zip(clients, answers, strict=True):
        want = reference[c["client_id"]]
        if isinstance(want, dict):
            assert _strip(a) == _strip(want), c["client_id"]
        else:
            assert a["client_id"] == c["client_id"]
            assert _error([p["code"] for p in a["error"]["problems"]], a["error"]["exit_code"]) == want
    _check_store(root / "stream.db", reference, "stream")

    # decide, one command per client, and the Python API's decide_and_record (a sample: each call opens the
    # registry and the store afresh)
    for c in random.Random(seed).sample(clients, 25):
        want = reference[c["client_id"]]
        try:
            got_api: Any = _strip(pe.decide_and_record(ID, c, registry=POLICIES, audit_db=root / "api-one.db"))
        except PolicyEngineError as e:
            got_api = _error([d.code for d in e.diagnostics], e.exit_code)
        assert got_api == (_strip(want) if isinstance(want, dict) else want), c["client_id"]
        r = _cli("--audit-db", str(root / "decide.db"), "decide", "-p", ID, "-c", "-", "--format", "json",
                 input=json.dumps(c))
        if isinstance(want, dict):
            assert r.exit_code == 0 and _strip(json.loads(r.stdout)) == _strip(want), c["client_id"]
        else:
            assert r.exit_code == want[1], (c["client_id"], r.output)

    # batch --records from CSV, Parquet and JSON Lines, each into its own store
    paths = _write_inputs(clients, root)
    _check_batch(paths, reference, root)

    # the Python API's batch
    run = pe.run_batch(ID, paths["parquet"], registry=POLICIES, records=root / "api.records.jsonl",
                       audit_db=root / "api-batch.db")
    assert run.summary["accounting"] == {"rows_read": len(clients), "decided": len(decided),
                                         "rejected": len(clients) - len(decided)}
    got = {json.loads(x)["client_id"]: _strip(json.loads(x))
           for x in (root / "api.records.jsonl").read_text(encoding="utf-8").splitlines()}
    assert got == {c["client_id"]: _strip(reference[c["client_id"]]) for c in decided}
    _check_store(root / "api-batch.db", reference, "api batch")

    # impact: each client's result under the version in force on its day equals its record's facts
    old = pe.Registry(POLICIES).select(ID, version="1.0.0")
    new = pe.Registry(POLICIES).select(ID, version="1.1.0")
    result = analyse(old, new, read_table(paths["parquet"]))
    assert result.runs is not None
    sides = {"1.0.0": result.runs[0].decisions, "1.1.0": result.runs[1].decisions}
    facts = {v: dict(zip(d["client_id"].astype(str), decision_facts(d), strict=True)) for v, d in sides.items()}
    for c in decided:
        want = reference[c["client_id"]]
        row = facts[want["policy"]["version"]][c["client_id"]]
        expected = _facts(want)
        assert row == {k: expected[k] for k in row}, c["client_id"]


def test_a_client_before_any_version_is_refused_with_the_same_reason_on_every_path(tmp_path: Path) -> None:
    client = next(generate_clients(1, 5, BEFORE_ANY))
    client["client_id"] = "EARLY"
    reason = "no active version of loss-client-management is in force on 2023-12-31"
    # Python API
    with pytest.raises(pe.UsageError) as e:
        pe.decide_and_record(ID, client, registry=POLICIES, audit_db=False)
    assert [(d.code, d.message) for d in e.value.diagnostics] == [("no-version-in-force", reason)]
    # decide
    r = _cli("--audit-db", str(tmp_path / "a.db"), "decide", "-p", ID, "-c", "-", "--format", "json",
             input=json.dumps(client))
    assert r.exit_code == 2 and json.loads(r.stderr)["errors"][0]["message"] == reason
    # decide --stream
    r = _cli("--audit-db", str(tmp_path / "a.db"), "decide", "-p", ID, "--stream", input=json.dumps(client) + "\n")
    line = json.loads(r.stdout)
    assert line["client_id"] == "EARLY" and line["error"]["exit_code"] == 2
    assert [(p["code"], p["message"]) for p in line["error"]["problems"]] == [("no-version-in-force", reason)]
    # batch from every format, the Python API's batch, impact and simulate: a reject with that reason
    paths = _write_inputs([client, next(generate_clients(1, 6, "2025-06-30"))], tmp_path)
    for fmt, src in paths.items():
        rejects = tmp_path / f"{fmt}.rejects.jsonl"
        r = _cli("--audit-db", str(tmp_path / "b.db"), "batch", str(src), "-p", ID, "--rejects", str(rejects),
                 "--format", "json")
        assert r.exit_code == 0 and json.loads(r.stdout)["accounting"]["rejected"] == 1, r.output
        (rej,) = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
        assert rej["client_id"] == "EARLY"
        assert [(p["code"], p["message"]) for p in rej["problems"]] == [("no-version-in-force", reason)]
    run = pe.run_batch(ID, paths["csv"], registry=POLICIES, audit_db=False)
    assert [(p["code"], p["message"]) for p in run.rejects[0]["problems"]] == [("no-version-in-force", reason)]
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: none\nshocks:\n  - {field: loan.days_past_due, add: 1}\n", encoding="utf-8")
    for args in (["impact", f"{ID}@1.0.0", f"{ID}@1.1.0"], ["simulate", ID, "--scenario", str(scenario)]):
        rejects = tmp_path / "impact.rejects.jsonl"
        r = _cli(*args, "--portfolio", str(paths["csv"]), "--rejects", str(rejects), "--format", "json",
                 "--fail-if", "rejected > 0")
        if args[0] == "simulate":  # the policy id is resolved per client: the early one is refused
            assert r.exit_code == 1 and "gate failed: rejected" in r.stderr, r.output
            (rej,) = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
            assert [(p["code"], p["message"]) for p in rej["problems"]] == [("no-version-in-force", reason)]
            assert json.loads(r.stdout)["rejected"]["rows"] == 1
        else:  # pinned versions decide every client, as decide --policy-version does
            assert r.exit_code == 0 and json.loads(r.stdout)["rejected"]["rows"] == 0, r.output
