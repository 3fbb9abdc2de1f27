"""An exposure's derived states in the explanation: the key figures of the exposure scope, under each exposure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.registry import load_policy

REFERENCE = Path("policies/loss-client-management")
RESTARTED = REFERENCE / "samples" / "debtors" / "13-observation-restarted.json"


@pytest.fixture(scope="module")
def page() -> tuple[object, dict]:
    policy = load_policy(REFERENCE / "policy-2.0.0.yaml")
    return policy, Decider(policy).decide(json.loads(RESTARTED.read_text(encoding="utf-8")))


@pytest.mark.parametrize(("lang", "line"), [
    ("en", "      key facts: Latest restructuring date: 2025-09-30; Measure of the latest restructuring: grace_period; "
           "Observation period start: 2026-03-20; Latest missed payment in observation: 2026-03-20; "
           "Observation period end: 2027-03-20; In the restructuring observation period: yes"),
    ("zh", "      关键事实：最近重组日：2025-09-30；最近重组措施：grace_period；观察期起算日：2026-03-20；"
           "观察期内最近一次未履约：2026-03-20；观察期届满日：2027-03-20；重组观察期内：是"),
])
def test_a_restructured_exposure_shows_its_clock(page: tuple[object, dict], lang: str, line: str) -> None:
    policy, record = page
    lines = explain(record, policy, lang).splitlines()
    e1 = next(i for i, t in enumerate(lines) if t.startswith("  - E1"))
    e2 = next(i for i, t in enumerate(lines) if t.startswith("  - E2"))
    assert line in lines[e1:e2]
    # E2 was never restructured: its states are null or false, and nothing is printed for it
    assert not any("key facts" in t or "关键事实" in t for t in lines[e2:e2 + 3])


@pytest.mark.parametrize(("lang", "measure"), [("en", "Measure of the latest restructuring: grace period;"),
                                               ("zh", "最近重组措施：宽限期；")])
def test_from_2_0_1_the_measure_is_named_in_words(lang: str, measure: str) -> None:
    """2.0.1 labels the measure (financial-difficulty 1.1.0); the decision itself is 2.0.0's."""
    policy = load_policy(REFERENCE / "policy-2.0.1.yaml")
    record = Decider(policy).decide(json.loads(RESTARTED.read_text(encoding="utf-8")))
    assert record["exposures"][0]["metrics"]["restructuring_measure"] == "grace_period"  # the record keeps the id
    assert measure in explain(record, policy, lang)


def test_a_value_without_a_label_is_shown_as_it_is() -> None:
    policy = load_policy(REFERENCE / "policy-2.0.1.yaml")
    record = Decider(policy).decide(json.loads(RESTARTED.read_text(encoding="utf-8")))
    record["exposures"][0]["metrics"]["restructuring_measure"] = "collateral_added"  # never a concession: no label
    assert "Measure of the latest restructuring: collateral_added;" in explain(record, policy, "en")


def test_the_figures_follow_the_record(page: tuple[object, dict]) -> None:
    """The line is the record's values: move the clock in the record and the explanation moves with it."""
    policy, record = page
    moved = json.loads(json.dumps(record))
    moved["exposures"][0]["metrics"]["observation_end"] = "2027-04-20"
    moved["exposures"][1]["metrics"]["in_observation"] = True
    text = explain(moved, policy, "en")
    assert "Observation period end: 2027-04-20" in text
    assert "      key facts: In the restructuring observation period: yes" in text


def test_a_debtor_key_figure_is_not_repeated_under_exposures(page: tuple[object, dict]) -> None:
    policy, record = page
    label = next(m.label["en"] for m in policy.metrics if m.name == "total_exposure")
    text = explain(record, policy, "en")
    assert text.count(f"  {label}: ") == 1  # under Key figures, once
    assert all(label not in t for t in text.splitlines() if t.startswith("      key facts"))


@pytest.mark.parametrize(("lang", "gaps", "none"), [
    ("en", "Metrics without a value:", "None in the record (so no value; not missing data): "),
    ("zh", "无法计算的指标：", "记录中无此类情形（故无值，并非数据缺失）："),
])
def test_an_event_the_debtor_never_had_is_an_answer_not_a_gap(page: tuple[object, dict], lang: str, gaps: str,
                                                              none: str) -> None:
    """A date of the first event of a kind (no element met the aggregation) is listed on one line as none in
    the record, not among the metrics without a value (those are gaps in the data)."""
    from policy_engine.decide.evaluate import NO_MATCH

    policy, record = page
    nothing = [n for n, why in record["undefined_metrics"].items() if why == NO_MATCH]
    assert nothing and "key_person_missing_date" in nothing
    text = explain(record, policy, lang)
    (line,) = [t for t in text.splitlines() if t.startswith(none)]
    assert all(name in line for name in nothing)
    # each by its label, its id in brackets: run together they read as one phrase
    label = next(m.label[lang] for m in policy.metrics if m.name == "key_person_missing_date")
    assert (f"{label}（key_person_missing_date）" if lang == "zh" else f"{label} (key_person_missing_date)") in line
    assert gaps not in text  # every metric without a value here is an aggregation that met nothing


def test_a_number_the_compiler_proves_whole_prints_as_one_without_a_format() -> None:
    """A count of late payments without 'format:' read 4.00 in the explanation (policy-author review): a metric the
    compiler proves whole (a count, days between dates, a sum of whole numbers) prints as an integer; a share, a
    format given, and text keep theirs."""
    from policy_engine.policy.compiler import compile_document
    from policy_engine.policy.loader import load_yaml_text

    text = Path("tests/data/scopes/policy-multi-exposure.yaml").read_text(encoding="utf-8")
    policy = compile_document(load_yaml_text(text, "scoped.yaml"))
    formats = {m.name: m.format for m in (*policy.metrics, *policy.scoped.metrics)}
    assert formats["late_payments"] == "integer" and formats["nonperforming_share"] is None
    assert formats["worst_own"] is None  # a grade: worded, not formatted
    given = compile_document(load_yaml_text(text.replace(
        '    expr: "count_where(payment, coalesce(paid_date, as_of) > due_date)"  # unpaid and due: late',
        '    expr: "count_where(payment, coalesce(paid_date, as_of) > due_date)"\n    format: number'), "scoped.yaml"))
    assert {m.name: m.format for m in given.scoped.metrics}["late_payments"] == "number"
