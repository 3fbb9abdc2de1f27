"""Explanations of a policy unlike the reference one: its own key figures, no scorecard wording."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider, summarize
from policy_engine.decide.explain import explain, explain_summary
from policy_engine.policy.registry import load_policy

from ..conftest import sample

WATCH = Path(__file__).resolve().parent / "watch-list.yaml"


def _client(cash: list[float | None], litigation: bool = False, rating: int = 3) -> dict[str, Any]:
    quarters = [{"end": e, "revenue": 100.0, "operating_cash_flow": c}
                for e, c in zip(("2024-09-30", "2024-12-31", "2025-03-31"), cash, strict=True)]
    return {"client_id": "W1", "as_of": "2025-06-30", "borrower": {"profile": {"sector": "mining"}, "rating": rating},
            "watch": {"litigation_open": litigation}, "quarters": quarters}


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_no_floor_fired_is_the_default_grade_and_no_score_is_quoted(lang: str) -> None:
    policy = load_policy(WATCH)
    record = Decider(policy).decide(_client([1.0, 2.0, 3.0]))
    assert record["classification"]["decided_by"] == "default"
    assert record["classification"]["grade"] == "clear"  # the best of the scale
    text = explain(record, policy, lang)
    for words in ("scorecard", "score", "评分卡", "得分"):
        assert words not in text
    assert ("No floor fired" if lang == "en" else "未触发任何分类底线") in text


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_floor_decides_without_a_scorecard_and_is_not_called_regulatory(lang: str) -> None:
    policy = load_policy(WATCH)
    record = Decider(policy).decide(_client([-1.0, -2.0, -3.0], litigation=True, rating=6))
    assert record["classification"]["decided_by"] == "litigation"
    text = explain(record, policy, lang)
    head = "Decided by the floor litigation\n" if lang == "en" else "由分类底线规则 litigation 决定\n"
    # the rule has no description: the next line is the next section's, not an indented description
    assert head in text and not text.split(head, 1)[1].startswith("  ")
    assert "scorecard" not in text and "评分卡" not in text and "监管" not in text
    summary_text = explain_summary(summarize(record), policy, lang)
    assert "scorecard" not in summary_text and "评分卡" not in summary_text


def test_key_figures_are_the_policys_own_in_its_order_with_labels_and_formats() -> None:
    policy = load_policy(WATCH)
    text = explain(Decider(policy).decide(_client([1.0, -2.0, -3.0])), policy, "en")
    block = text[text.index("Key figures:"):].split("\n")[1:3]
    assert block == ["  Quarters of negative cash flow: 2", "  Revenue change: 0.0%"]


def test_the_reference_policy_shows_the_figures_it_declares(policy: Any, decider: Decider) -> None:
    text = explain(decider.decide(sample("02")), policy, "en")
    shown = text[text.index("Key figures:"):].split("\n\n")[0].split("\n")[1:]
    labels = {m.name: m.label["en"] for m in policy.metrics}
    assert [line.split(":")[0].strip() for line in shown] == [labels[n] for n in policy.key_figures]
    assert len(policy.key_figures) == 10


def test_a_policy_that_declares_no_key_figures_gets_no_block(tmp_path: Path) -> None:
    text = WATCH.read_text(encoding="utf-8").replace("key_figures: [negative_cash_quarters, revenue_change]\n", "")
    (tmp_path / "w.yaml").write_text(text, encoding="utf-8")
    policy = load_policy(tmp_path / "w.yaml")
    assert "Key figures" not in explain(Decider(policy).decide(_client([1.0, 2.0, 3.0])), policy, "en")


def test_decide_format_text_of_a_policy_without_scorecard(tmp_path: Path) -> None:
    import json

    from click.testing import CliRunner

    from policy_engine.cli import main

    (tmp_path / "c.json").write_text(json.dumps(_client([-1.0, -2.0, -3.0])), encoding="utf-8")
    result = CliRunner().invoke(main, ["decide", "-p", str(WATCH), "-c", str(tmp_path / "c.json"), "--format", "text",
                                       "--no-audit"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Decided by the floor cash_burn\n" in result.output
    assert "Quarters of negative cash flow: 3" in result.output and "scorecard" not in result.output


REFERENCE = Path(__file__).resolve().parents[2] / "policies" / "loss-client-management"


@pytest.mark.parametrize(("version", "record", "rule", "words"), [
    ("1.1.0", "samples/clients/13-restructured-in-observation.json", "restructured_in_observation",
     {"en": "Restructured, in the observation period -> at least special mention", "zh": "重组观察期内，至少关注类"}),
    ("2.0.0", "samples/debtors/25-case-trader-crisis.json", "impaired_ecl_50pct",  # an exposure's rule
     {"en": "Credit-impaired with ECL at least 50% of the carrying amount -> at least doubtful",
      "zh": "信用减值且减值准备覆盖率不低于50%，至少可疑类"}),
])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_deciding_rule_is_named_with_its_description(version: str, record: str, rule: str,
                                                        words: dict[str, str], lang: str) -> None:
    policy = load_policy(REFERENCE / f"policy-{version}.yaml")
    decided = Decider(policy).decide(json.loads((REFERENCE / record).read_text(encoding="utf-8")))
    assert decided["classification"]["decided_by"] == rule
    lines = explain(decided, policy, lang).splitlines()
    at = next(i for i, line in enumerate(lines) if rule in line and ("Decided by" in line or "决定" in line))
    assert lines[at + 1] == f"  {words[lang]}"
    summary = explain_summary(summarize(decided), policy, lang).splitlines()
    at = next(i for i, line in enumerate(summary) if rule in line)
    assert summary[at + 1] == f"  {words[lang]}"
