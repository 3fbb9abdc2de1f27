"""Two paths must agree on ``unique`` and ``not_before``: debtors as JSON Lines and as long tables.

Drawn debtors of the test policy with scopes (payments unique by due date, events by kind and date, a
payment not paid before its exposure was opened, a maturity not before the opening), with faults
injected at random: a payment or an event repeated, a stand-in date (1900-01-01, 0001-01-01) or a day
before the opening, rows shuffled. Each path must reject the same debtors for the same reasons, each
reason at the same element, and decide the rest alike.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import random
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.policy.compiler import CompiledPolicy, compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.portfolio.long_tables import layout, run_long_batch
from policy_engine.portfolio.scoped_batch import run_scoped_batch

from ..variants import dated_scopes_text

POLICY: CompiledPolicy = compile_document(load_yaml_text(dated_scopes_text(), "dated.yaml"))
DEBTORS = 16
DAY0 = dt.date(2024, 1, 1)


def _debtor(rnd: random.Random, i: int) -> dict[str, Any]:
    """1-3 exposures, each opened on some day, maturing after, with 0-6 monthly instalments paid on time, late or
    not yet; 0-2 events of distinct kind and day."""

    def day(after: int) -> str:
        return (DAY0 + dt.timedelta(days=after)).isoformat()

    exposures = []
    for k in range(rnd.randint(1, 3)):
        opened = rnd.randrange(200)
        schedule = [{"due_date": day(opened + 30 * (n + 1)),
                     "paid_date": rnd.choice([None, day(opened + 30 * (n + 1) + rnd.randrange(20))])}
                    for n in range(rnd.randint(0, 6))]
        exposures.append({"exposure_id": f"E{k}", "balance": rnd.choice([0, 100, 2500.5]),
                          "days_past_due": rnd.choice([0, 31, 91]), "opened": day(opened),
                          "maturity": day(opened + 300 + rnd.randrange(500)), "schedule": schedule})
    record: dict[str, Any] = {"client_id": f"D{i}", "as_of": "2025-09-30", "industry": "manufacturing",
                              "exposures": exposures}
    events: list[dict[str, str]] = []
    for _ in range(rnd.randint(0, 2)):
        event = {"kind": rnd.choice(["litigation", "bankruptcy_filing"]), "date": day(rnd.randrange(500))}
        if event not in events:
            events.append(event)
    if events:
        record["events"] = events
    return record


def _spoil(rnd: random.Random, record: dict[str, Any]) -> None:
    """One fault, or none: a repeat, or a date before its bound."""
    e = rnd.choice(record["exposures"])
    fault = rnd.choice(["none", "none", "repeat payment", "repeat event", "stand-in paid date", "early maturity",
                        "paid the day before opening"])
    if fault == "repeat payment" and e["schedule"]:
        e["schedule"].insert(rnd.randrange(len(e["schedule"]) + 1), copy.deepcopy(rnd.choice(e["schedule"])))
    elif fault == "repeat event" and record.get("events"):
        record["events"].append(dict(record["events"][0]))
    elif fault == "stand-in paid date" and e["schedule"]:
        rnd.choice(e["schedule"])["paid_date"] = rnd.choice(["1900-01-01", "0001-01-01"])
    elif fault == "early maturity":
        e["maturity"] = "1900-01-01"
    elif fault == "paid the day before opening" and e["schedule"]:
        opened = dt.date.fromisoformat(e["opened"])
        rnd.choice(e["schedule"])["paid_date"] = (opened - dt.timedelta(days=1)).isoformat()


def _write_tables(records: list[dict[str, Any]], folder: Path, rnd: random.Random) -> None:
    """The records as long tables (CSV), each child table's rows shuffled."""
    folder.mkdir()
    specs = layout(POLICY)
    part = POLICY.scoped
    assert part is not None
    rows: dict[str, list[dict[str, Any]]] = {t.name: [] for t in specs}

    def walk(scope: str | None, container: dict[str, Any], keys: dict[str, Any]) -> None:
        for s in part.children(scope):
            t = next(t for t in specs if t.scope == s.name)
            for element in container.get(s.list_field) or []:
                mine = {**keys, **({s.key: element[s.key]} if s.key else {})}
                rows[t.name].append({**mine, **{c: element.get(c) for c in t.columns}})
                walk(s.name, element, mine)

    for r in records:
        rows["debtors"].append({c: r.get(c) for c in specs[0].columns})
        walk(None, r, {"client_id": r["client_id"]})
    for t in specs:
        if t.series is not None:
            continue
        table = rows[t.name]
        if t.scope is not None:
            rnd.shuffle(table)
        header = list(dict.fromkeys([*t.parent_keys, *([t.key] if t.key else []), *t.columns]))
        with (folder / f"{t.name}.csv").open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, header)
            w.writeheader()
            w.writerows([{k: ("" if v is None else v) for k, v in row.items()} for row in table])


def _reasons(rejects: list[dict[str, Any]]) -> dict[str, set[str]]:
    return {r["client_id"]: {p["code"] for p in r["problems"]} for r in rejects if not r.get("orphaned")}


def _both(tmp: Path, seed: int, n: int = DEBTORS) -> tuple[Any, Any]:
    rnd = random.Random(seed)
    records = [_debtor(rnd, i) for i in range(n)]
    for r in records:
        _spoil(rnd, r)
    lines = tmp / "debtors.jsonl"
    lines.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    _write_tables(records, tmp / "tables", rnd)
    return run_scoped_batch(POLICY, lines), run_long_batch(POLICY, tmp / "tables")


def test_the_drawn_faults_are_refused_for_their_reasons(tmp_path: Path) -> None:
    nested, _ = _both(tmp_path, 7, 120)
    codes = [code for reasons in _reasons(nested.rejects).values() for code in reasons]
    assert codes.count("duplicate-key") >= 5 and codes.count("bad-field") >= 5, codes  # the property is not vacuous
    assert nested.decided >= 30  # and a good share is decided: faults are one per debtor at most


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.integers(0, 2**32 - 1))
def test_json_lines_and_long_tables_reject_and_decide_alike(tmp_path_factory: Any, seed: int) -> None:
    nested, long = _both(tmp_path_factory.mktemp("agree"), seed)
    assert _reasons(nested.rejects) == _reasons(long.rejects)
    assert not long.orphans
    pd.testing.assert_series_equal(nested.decisions["client_id"], long.decisions["client_id"])
    pd.testing.assert_series_equal(nested.decisions["grade"], long.decisions["grade"])
    graded = [x[["client_id", "exposure_id", "grade"]].sort_values(["client_id", "exposure_id"]).reset_index(drop=True)
              for x in (nested.exposures, long.exposures)]  # a table's exposures in its rows' order
    pd.testing.assert_frame_equal(*graded)
