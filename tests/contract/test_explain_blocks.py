"""An explanation's blocks, in reading order, each separated by one blank line; optional blocks only when shown."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain

from ..conftest import sample

HEADS = {
    "en": ["Client C002 ·", "Grade: ", "Key figures:", "Warnings (4):", "Recommended actions (5):",
           "Undetermined rules (missing data, not fired):", "Trace (every rule evaluated"],
    "zh": ["客户 C002 ·", "分类：", "关键指标：", "预警（4）：", "建议措施（5）：",
           "无法判断的规则（数据缺失，未触发）：", "求值轨迹"],
}


def _without_rates() -> dict[str, Any]:
    """Sample 02 without the loan's rates: the repricing's restructuring test cannot be evaluated."""
    client = copy.deepcopy(sample("02"))
    del client["loan"]["rate"], client["loan"]["fair_rate"]
    return client


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_block_in_reading_order_with_one_blank_line_between(lang: str, decider: Decider, policy: Any) -> None:
    text = explain(decider.decide(_without_rates(), trace=True), policy, lang)
    blocks = text.rstrip("\n").split("\n\n")
    assert [b.split("\n")[0][:len(head)] for b, head in zip(blocks, HEADS[lang], strict=True)] == HEADS[lang]
    assert "\n\n\n" not in text and text.endswith("\n") and not text.endswith("\n\n")


def test_an_undeterminable_restructuring_is_flagged_under_its_action_and_listed_as_undetermined(
        decider: Decider, policy: Any) -> None:
    text = explain(decider.decide(_without_rates()), policy, "en")
    lines = text.split("\n")
    reprice = next(i for i, line in enumerate(lines) if "[reprice_down]" in line)
    assert lines[reprice + 2] == ("    ? Whether this is a restructuring cannot be determined (missing data); "
                                  "decide manually")
    assert text.endswith("Undetermined rules (missing data, not fired):\n"
                         "  - restructuring test reprice_down: missing loan_rate, fair_rate (to fill in: loan.rate, "
                         "loan.fair_rate)\n")


def test_without_undetermined_rules_or_trace_the_actions_block_ends_the_text(decider: Decider, policy: Any) -> None:
    text = explain(decider.decide(sample("02")), policy, "en")
    last_block = text.rstrip("\n").split("\n\n")[-1]
    assert last_block.startswith("Recommended actions (") and "Undetermined" not in text and "Trace" not in text


def test_a_policy_without_key_figures_has_no_empty_figures_block() -> None:
    # The grade block and the warnings are separated by one blank line, not two, when there is nothing
    # to show under Key figures (the multi-exposure test policy declares none).
    import json
    from pathlib import Path

    from policy_engine import Decider, explain, load_policy

    data = Path(__file__).parents[1] / "data" / "scopes"
    policy = load_policy(data / "policy-multi-exposure.yaml")
    record = Decider(policy).decide(json.loads((data / "clients" / "three-exposures.json").read_text("utf-8")))
    for lang in ("en", "zh"):
        assert "\n\n\n" not in explain(record, policy, lang)
