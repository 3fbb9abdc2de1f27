"""Metrics after classification (issue 18 item 3): computed once the final grade is known, they may read it.

The reference policy gains a provision rate by grade, the expected loss it gives and a weight from
``grade_rank`` and ``grade_at_least`` (tests/variants.py). Each is checked against the decided grade on
every sample and a synthetic portfolio, on the row path, the vector path, the batch table, the record's
schema, the explanation, the trace and impact; the stage errors are in tests/data/broken_policies
(late-metric-*.yaml, after-scorecard.yaml).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft202012Validator

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.diagnostics import InputError
from policy_engine.policy.compiler import CompiledPolicy, check_document, compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.schemas import load_schema
from policy_engine.portfolio.batch import iter_records, read_table, run_batch
from policy_engine.portfolio.synthetic import generate_clients
from policy_engine.portfolio.vector import columns_from_records, dates_to_days, evaluate_columns
from policy_engine.review.impact import analyse

from ..conftest import SAMPLES
from ..variants import PROVISION, graded_text

LATE = ("provision_rate", "expected_loss", "impaired_weight")


@pytest.fixture(scope="module")
def graded() -> CompiledPolicy:
    return compile_document(load_yaml_text(graded_text(), "graded.yaml"))


@pytest.fixture(scope="module")
def clients() -> list[dict[str, Any]]:
    return [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES] + list(generate_clients(1500, seed=18))


def _check_figures(record: dict[str, Any], balance: float) -> None:
    grade = record["classification"]["grade"]
    metrics = record["metrics"]
    assert metrics["provision_rate"] == PROVISION[grade]
    assert metrics["expected_loss"] == pytest.approx(balance * PROVISION[grade], rel=1e-12)
    rank = list(PROVISION).index(grade)
    assert metrics["impaired_weight"] == (rank / 4 if rank >= 2 else 0)


def test_metrics_after_classification_read_the_final_grade(graded: CompiledPolicy,
                                                            clients: list[dict[str, Any]]) -> None:
    decider = Decider(graded)
    schema = Draft202012Validator(load_schema("decision"))
    grades = set()
    for client in clients:
        record = decider.decide(client)
        _check_figures(record, client["loan"]["balance"])
        assert list(schema.iter_errors(record)) == []
        grades.add(record["classification"]["grade"])
    assert grades == set(PROVISION)  # every grade (and so every branch) was reached


def test_they_follow_the_ordinary_metrics_and_the_floors_in_the_trace(graded: CompiledPolicy) -> None:
    client = json.loads(SAMPLES[6].read_text(encoding="utf-8"))  # 95 days overdue: a floor decides
    record = Decider(graded).decide(client, trace=True)
    stages = [(step["stage"], step["rule"]) for step in record["trace"]]
    last_floor = max(i for i, (stage, _) in enumerate(stages) if stage == "classification")
    first_warning = min(i for i, (stage, _) in enumerate(stages) if stage == "warning")
    late = [stages.index(("metric", name)) for name in LATE]
    assert last_floor < min(late) and max(late) < first_warning
    step = next(s for s in record["trace"] if s["rule"] == "impaired_weight")
    assert step["reads"] == {"grade": "substandard"} and step["result"] == 0.5
    assert list(record["metrics"])[-3:] == list(LATE)


def test_warnings_messages_and_key_figures_read_them(graded: CompiledPolicy) -> None:
    client = json.loads(SAMPLES[6].read_text(encoding="utf-8"))
    record = Decider(graded).decide(client)
    [warning] = [w for w in record["warnings"] if w["id"] == "provision_heavy"]
    rate = record["metrics"]["provision_rate"]
    assert warning["evidence"]["expected_loss"] == record["metrics"]["expected_loss"]
    assert warning["message"]["en"].endswith(f"(provision rate {rate * 100:.1f}%)")
    text = explain(record, graded, "en")
    assert f"Expected loss: {record['metrics']['expected_loss']:,.0f}" in text
    assert "预期损失" in explain(record, graded, "zh")


def _decided_inputs(decider: Decider, clients: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    rows, days = [], []
    for client in clients:
        try:
            _, day, inputs = decider.read(client)
        except InputError:
            continue
        rows.append(inputs)
        days.append(day)
    return rows, days


def test_row_and_vector_agree(graded: CompiledPolicy, clients: list[dict[str, Any]]) -> None:
    decider = Decider(graded)
    rows, days = _decided_inputs(decider, clients)
    seg = np.array([r[decider._segment_index] for r in rows], dtype=object)
    res = evaluate_columns(graded, len(rows), columns_from_records(graded, rows), seg, dates_to_days(days))
    for i, (inputs, day) in enumerate(zip(rows, days, strict=True)):
        expected = graded.row_function(inputs, graded.params_for(inputs[decider._segment_index]), day)
        assert res.row(i) == expected, i


def test_the_batch_table_and_its_records_carry_them(graded: CompiledPolicy, clients: list[dict[str, Any]],
                                                   tmp_path: Path) -> None:
    path = tmp_path / "clients.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clients), encoding="utf-8")
    decider = Decider(graded)
    result = run_batch(graded, read_table(path))
    assert result.rejects == []
    frame = result.decisions
    for row, record, client in zip(frame.itertuples(index=False), iter_records(result, decider), clients,
                                   strict=True):
        expected = decider.decide(client)
        for name in LATE:
            assert getattr(row, f"_{frame.columns.get_loc(f'metric.{name}')}") == expected["metrics"][name]
        assert list(row.warnings) == [w["id"] for w in expected["warnings"]]
        for k in ("decision_id", "evaluated_at"):
            record.pop(k), expected.pop(k)
        assert record == expected


def test_impact_counts_the_warning_that_reads_them(graded: CompiledPolicy, policy: CompiledPolicy,
                                                  clients: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "clients.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clients), encoding="utf-8")
    impact = analyse(policy, graded, read_table(path))
    decider = Decider(graded)
    records = [decider.decide(c) for c in clients]
    heavy = sum(any(w["id"] == "provision_heavy" for w in r["warnings"]) for r in records)
    assert heavy > 0
    counts = impact.report["warnings"]["provision_heavy"]
    assert {k: counts[k] for k in ("old", "new", "change")} == {"old": 0, "new": heavy, "change": heavy}
    assert counts.get("new_undetermined", 0) == 0
    assert impact.report["summary"]["grade_changed"] == 0  # a metric after classification never moves a grade
    assert impact.runs is not None
    new_side = impact.runs[1].decisions  # the per-client results of the challenger
    assert new_side["metric.expected_loss"].tolist() == [r["metrics"]["expected_loss"] for r in records]


def test_a_plain_metric_still_cannot_read_the_grade() -> None:
    text = graded_text().replace("    after: classification\n    format: percent\n", "    format: percent\n")
    diags, policy = check_document(load_yaml_text(text, "graded.yaml"))
    assert policy is None
    [error] = [d for d in diags if d.severity == "error"]
    assert (error.code, error.path) == ("name-not-available", "metrics.provision_rate.expr")
    assert "only known after classification" in error.message
