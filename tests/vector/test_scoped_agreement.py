"""Row == vector for policies with scopes: every field of every record, over drawn debtors.

Debtors with 1-5 exposures and 0-12 payments each (optional facts absent or null, equal due dates,
zero balances) are written as JSON Lines and decided by ``batch``'s scoped path (long tables,
column-wise aggregations); each line is decided again by ``decide``'s :class:`ScopedDecider`. The
records must be equal field for field (the decision id and the clock aside), and the decisions
and exposures tables must say what the records say. Two policies: the multi-exposure test policy
and one that uses every aggregation, nested and at both levels.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.policy.compiler import CompiledPolicy, compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio.scoped_batch import run_scoped_batch

from ..conftest import DATA

SCOPES = DATA / "scopes"
POLICIES = {name: load_policy(SCOPES / f"{name}.yaml") for name in ("policy-multi-exposure", "policy-aggregations")}
# Debtor floors that name the exposures they apply to (for_exposures): one whose condition is null where collateral
# is unknown and whose exposures' is null where 'secured' is (the floor then undetermined for the exposures it may
# name, and for the debtor when it names no other), one naming an exposure the debtor's grade would not reach
# otherwise.
NAMED_FLOORS = """\
    - {id: late_beside_overdue, when: "any_of(exposure, dpd > 90 or collateral < 1)",
       for_exposures: "late >= 1 and not secured", floor: doubtful, source: test}
    - {id: current_beside_overdue, when: "any_of(exposure, dpd > 180)", for_exposures: "coalesce(cover < 0.5, True)
       and dpd == 0", floor: loss, source: test}
"""
_TEXT = (SCOPES / "policy-aggregations.yaml").read_text(encoding="utf-8")
_AT = _TEXT.index("warnings:\n")
POLICIES["policy-named-floors"] = compile_document(load_yaml_text(_TEXT[:_AT] + NAMED_FLOORS + _TEXT[_AT:],
                                                                  str(SCOPES / "policy-aggregations.yaml")))
# The same, reading a grade an undetermined floor could worsen as unknown (classification.provisional_grades): the
# 10%-like share, the after-classification metrics and the for_exposures read three-valued grades.
_NAMED = _TEXT[:_AT] + NAMED_FLOORS + _TEXT[_AT:]
POLICIES["policy-provisional"] = compile_document(load_yaml_text(
    _NAMED.replace("classification:\n", "classification:\n  provisional_grades: unknown\n", 1),
    str(SCOPES / "policy-aggregations.yaml")))
BATCH = 50  # debtors per drawn batch; 45 batches per policy: 2,250 debtors each
EXAMPLES = 45
VOLATILE = ("decision_id", "evaluated_at")

DAY0 = dt.date(2024, 1, 1)


def _debtor(rnd: random.Random, index: int) -> dict[str, Any]:
    """One debtor from a random source seeded by hypothesis (drawing a whole nested portfolio per
    example overruns its buffer and takes minutes): 1-5 exposures, 0-12 payments each, optional facts there, null
    or absent, equal due dates and zero balances likely."""

    def date() -> str:
        return (DAY0 + dt.timedelta(days=rnd.choice([rnd.randrange(600), 100, 101, 400]))).isoformat()

    def amount() -> Any:
        return rnd.choice([rnd.randrange(2_000), rnd.uniform(0, 5_000), 0, 0.1, 100.5])

    def maybe(record: dict[str, Any], key: str, value: Any) -> None:
        pick = rnd.randrange(4)
        if pick == 1:
            record[key] = None
        elif pick > 1:
            record[key] = value

    exposures = []
    for k in range(rnd.randint(1, 5)):
        e: dict[str, Any] = {"exposure_id": f"E{k}", "balance": amount(),
                             "days_past_due": rnd.choice([0, 0, 15, 31, 60, 61, 90, 91, 200])}
        maybe(e, "collateral_value", amount())
        maybe(e, "secured", rnd.random() < 0.5)
        maybe(e, "opened", date())
        schedule = []
        for _ in range(rnd.randint(0, 12)):
            p: dict[str, Any] = {"due_date": date()}
            maybe(p, "paid_date", date())
            maybe(p, "amount", amount())
            schedule.append(p)
        if schedule or rnd.random() < 0.5:
            e["schedule"] = schedule
        exposures.append(e)
    record: dict[str, Any] = {"client_id": f"D{index}", "as_of": "2025-09-30", "industry": "manufacturing",
                              "exposures": exposures}
    if rnd.random() < 0.6:
        record["events"] = [{"kind": rnd.choice(["litigation", "bankruptcy_filing", "seizure"]), "date": date()}
                            for _ in range(rnd.randint(0, 3))]
    return record


def _fit(policy: CompiledPolicy, record: dict[str, Any]) -> dict[str, Any]:
    """The record as the policy reads it: the multi-exposure policy knows only litigation and bankruptcy."""
    if policy.id == "multi-exposure" and "events" in record:
        record["events"] = [e for e in record["events"] if e["kind"] != "seizure"]
    return record


def _agree(policy: CompiledPolicy, records: list[dict[str, Any]], tmp: Path) -> None:
    path = tmp / "debtors.jsonl"
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    result = run_scoped_batch(policy, path)
    decider = Decider(policy)
    assert result.rejected == 0, result.rejects
    vector = list(result.records())
    assert len(vector) == len(records)
    exposures = result.exposures.set_index(["client_id", "exposure_id"])
    for i, (record, got) in enumerate(zip(records, vector, strict=True)):
        want = decider.decide(json.loads(json.dumps(record)))
        for k in VOLATILE:
            want.pop(k), got.pop(k)
        assert orjson.dumps(got) == orjson.dumps(want), record
        row = result.decisions.iloc[i]
        assert row["grade"] == want["classification"]["grade"]
        assert row["decided_by"] == want["classification"]["decided_by"]
        made_by = row["decided_by_exposure"]
        assert (None if pd.isna(made_by) else made_by) == want["classification"].get("decided_by_exposure")
        for x in want["exposures"]:
            e = exposures.loc[(want["client_id"], x["exposure_id"])]
            assert (e["grade"], e["own_grade"], e["decided_by"]) == (x["grade"], x["own_grade"], x["decided_by"])
            assert list(e["floors"]) == [f["id"] for f in x["floors"]]
            assert list(e["undetermined"]) == [u["rule"] for u in want["undetermined"]
                                               if u.get("exposure") == x["exposure_id"]]
            for kind in ("warnings", "actions"):  # the record's 'exposures' of each, read the other way round
                naming = [w["id"] for w in want[kind] if x["exposure_id"] in w.get("exposures", ())]
                assert list(e[kind]) == naming, kind


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_row_and_vector_agree_on_every_field_of_drawn_debtors(name: str, tmp_path_factory: Any) -> None:
    policy = POLICIES[name]
    tmp = tmp_path_factory.mktemp(name)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.integers(0, 2**32 - 1))
    def check(seed: int) -> None:
        rnd = random.Random(seed)
        _agree(policy, [_fit(policy, _debtor(rnd, i)) for i in range(BATCH)], tmp)

    check()


def _line(**changes: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"client_id": "H", "as_of": "2025-09-30", "industry": "manufacturing",
                              "exposures": [{"exposure_id": "E0", "balance": 10, "days_past_due": 0}]}
    record.update(changes)
    return record


HOSTILE = [  # (line, the codes batch gives it, as decide refuses it)
    (_line(client_id="H1", exposures=[{"exposure_id": f"E{k}", "balance": 1, "days_past_due": 0}
                                      for k in range(6)]), {"too-large"}),
    (_line(client_id="H2", exposures=[{"exposure_id": "E", "balance": 1, "days_past_due": 0}] * 2),
     {"duplicate-key"}),
    (_line(client_id="H3", exposures=[{"balance": 1, "days_past_due": 0}]), {"missing-field"}),
    (_line(client_id="H4", exposures=[{"exposure_id": "E", "balance": "ten", "days_past_due": 0}]), {"bad-field"}),
    (_line(client_id="H5", exposures={"exposure_id": "E"}), {"wrong-type"}),
    (_line(client_id="H6", exposures=[7]), {"wrong-type"}),
    (_line(client_id="H7", exposures=[{"exposure_id": "E", "balance": 1, "days_past_due": 0,
                                       "schedule": [{"paid_date": "2025-01-01"}]}]), {"missing-field"}),
]


def test_hostile_lines_are_rejects_with_the_reasons_decide_gives_and_every_line_is_counted(tmp_path: Path) -> None:
    policy = POLICIES["policy-multi-exposure"]
    good = _line(client_id="OK")
    lines = [orjson.dumps(good), *(orjson.dumps(r) for r, _ in HOSTILE), b"", b"{not json", orjson.dumps(good)]
    path = tmp_path / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = run_scoped_batch(policy, path)
    # the blank line is no row; every other line is decided or rejected
    assert (result.rows_read, result.decided, result.rejected) == (len(lines) - 1, 1, len(lines) - 2)
    by_line = {r["line"]: r for r in result.rejects}
    decider = Decider(policy)
    for k, (record, codes) in enumerate(HOSTILE, start=2):
        got = by_line[k]
        assert got["client_id"] == record["client_id"]
        assert {p["code"] for p in got["problems"]} == codes
        with pytest.raises(InputError) as refused:
            decider.decide(record)
        assert [(p["field"], p["message"]) for p in got["problems"]] == \
            [(d.path, d.message) for d in refused.value.diagnostics]
    assert len(HOSTILE) + 2 not in by_line and by_line[len(HOSTILE) + 3]["problems"][0]["code"] == "bad-json"
    assert by_line[len(lines)]["problems"][0]["code"] == "duplicate-id"
    assert result.exposures["client_id"].tolist() == ["OK"]


def test_a_metric_of_each_element_decides_as_its_condition_written_out() -> None:
    """policy-aggregations names two conditions per payment and one per event (metrics of each element) beside
    the same conditions written out in other metrics: every debtor gets the same figures from both."""
    decider = Decider(POLICIES["policy-aggregations"])
    rnd = random.Random(20261206)
    for i in range(300):
        record = decider.decide(_debtor(rnd, i))
        assert record["metrics"]["recent_events"] == record["metrics"]["events_count"]
        for e in record["exposures"]:
            assert e["metrics"]["late_by_element"] == e["metrics"]["late"], e["exposure_id"]
