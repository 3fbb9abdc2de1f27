"""A debtor's "floors that fired": the exposures' own floors (which usually decide) beside the debtor's rules, each
with its source, the most severe first; the deciding floor is never missing from the list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.registry import load_policy

REFERENCE = Path("policies/loss-client-management")
DEBTORS = REFERENCE / "samples" / "debtors"


def _floor_lines(sample: str, lang: str) -> tuple[dict, list[str]]:
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    record = Decider(policy).decide(json.loads((DEBTORS / sample).read_text(encoding="utf-8")))
    lines = explain(record, policy, lang).splitlines()
    start = lines.index("Floors that fired:" if lang == "en" else "触发的分类底线：") + 1
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("  - "))
    return record, lines[start:end]


@pytest.mark.parametrize(("lang", "expected"), [
    ("en", ["  - impaired_ecl_50pct (exposure E1): at least Doubtful. Source: ",
            "  - credit_impaired (exposure E1): at least Substandard. Source: ",
            "  - contagion_10pct (debtor rule): at least Substandard. Source: ",
            "  - nonperforming_any_bank (debtor rule): at least Special mention. Source: "]),
    ("zh", ["  - impaired_ecl_50pct（债项 E1）：至少可疑。依据：",
            "  - credit_impaired（债项 E1）：至少次级。依据：",
            "  - contagion_10pct（债务人规则）：至少次级。依据：",
            "  - nonperforming_any_bank（债务人规则）：至少关注。依据：", ]),
])
def test_the_exposure_floor_that_decided_is_listed_with_its_source(lang: str, expected: list[str]) -> None:
    record, lines = _floor_lines("09-credit-impaired-ecl-60pct.json", lang)
    assert record["classification"]["decided_by"] == "impaired_ecl_50pct"
    assert [line[:len(start)] for line, start in zip(lines, expected, strict=True)] == expected
    source = next(f["source"] for f in record["exposures"][0]["floors"] if f["id"] == "impaired_ecl_50pct")
    assert lines[0].endswith(source)


def test_a_floor_fired_on_several_exposures_names_each() -> None:
    record, lines = _floor_lines("25-case-trader-crisis.json", "en")
    fired = {f["id"]: [x["exposure_id"] for x in record["exposures"] if f in x["floors"]]
             for x in record["exposures"] for f in x["floors"] if f.get("scope") == "exposure"}
    for rule, ids in fired.items():
        assert sum(line.startswith(f"  - {rule} (exposure {', '.join(ids)}): ") for line in lines) == 1
    assert len(lines) == len(fired) + len(record["classification"]["floors"])
    assert "  - overdue_any (exposure WC-1, TF-1): at least Special mention. Source: " in [line[:73] for line in lines]


def test_a_chinese_exposure_line_lists_its_floors_with_the_chinese_comma_and_no_stray_spaces() -> None:
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    record = Decider(policy).decide(json.loads((DEBTORS / "05-contagion-three-exposures.json").read_text("utf-8")))
    lines = explain(record, policy, "zh").splitlines()
    assert "  - E2：次级（substandard），由 overdue_over_90（逾期超过90天，至少次级类）决定；自身规则给出次级" in lines
    assert ("      触发：overdue_any、overdue_over_90、nonperforming_any_bank（债务人规则）、"
            "contagion_10pct（债务人规则）") in lines
