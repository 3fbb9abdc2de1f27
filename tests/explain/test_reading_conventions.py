"""How an explanation writes figures and orders what it lists, for the people who sign the decision: half away
from zero (四舍五入), an amount with its currency when the policy gives one (100,400,000元, CNY 100,400,000), the
most severe warning first. The decision record keeps exact figures and the policy's order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import _value, explain
from policy_engine.policy.registry import load_policy

REFERENCE = Path("policies/loss-client-management")


@pytest.mark.parametrize(("value", "fmt", "shown"), [
    (3.125, None, "3.13"),  # exactly half: a float format rounds to even (3.12)
    (-1.125, None, "-1.13"),  # away from zero below it too
    (2.675, None, "2.68"),  # as written, though stored as 2.67499...
    (-0.004, None, "0.00"),  # no negative zero
    (0.12345, "percent", "12.3%"),
    (0.00125, "percent", "0.1%"),
    (1_234_567.5, "amount", "1,234,568"),
    (2.5, "days", "3"),
    (12, "integer", "12"),
    (None, "amount", "—"),
    (1e28, "percent", "1000000000000000019884624838656.0%"),  # more digits than a decimal context: not rounded
    (-3e40, None, f"{-3e40:.2f}"),
])
def test_figures_are_rounded_half_away_from_zero(value: float | None, fmt: str | None, shown: str) -> None:
    assert _value(value, fmt) == shown


@pytest.mark.parametrize(("value", "spec", "shown"), [
    (3.125, ".2f", "3.13"),  # the float format gave 3.12 beside a key figure of 3.13
    (2.675, ".2f", "2.68"),
    (2.5, ".0f", "3"),
    (-2.5, ".0f", "-3"),
    (0.0125, "pct", "1.3%"),
    (0.125, ".0%", "13%"),
    (0.00125, ".2%", "0.13%"),
    (1234.5, ",.0f", "1,235"),
    (1234.565, ",.2f", "1,234.57"),
    (-0.004, ".2f", "0.00"),  # no negative zero
    (0.45, ".1f", "0.5"),
    (1234.565, "", "1,235"),  # no format: two decimals below 1,000, none with separators above
    (0.125, "", "0.13"),
    (7.0, "d", "7"),
])
def test_a_message_rounds_a_figure_as_the_key_figures_beside_it_do(value: float, spec: str, shown: str) -> None:
    from policy_engine.decide.evaluate import _fmt

    assert _fmt(value, spec, "en") == shown
    explained = {".2f": None, "": None, "pct": "percent", ".0f": "days"}.get(spec, False)
    if explained is not False and abs(value) < 1000:
        assert _value(value, explained) == shown


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize(("patch", "seen"), [
    ({"as_of": "9999-12-31"}, {"en": "(by —)", "zh": "（—前）"}),  # an action's date beyond the last day there is
    ({"statements[-1].total_assets": 1e-20}, {"en": "Debt ratio: 1", "zh": "资产负债率：1"}),  # 1e30 percent
])
def test_an_explanation_of_extreme_figures_is_written_not_an_internal_error(lang: str, patch: dict[str, object],
                                                                            seen: dict[str, str]) -> None:
    policy = load_policy(REFERENCE / "policy-2.0.0.yaml")
    record = json.loads((REFERENCE / "samples/debtors/05-contagion-three-exposures.json").read_text(encoding="utf-8"))
    for path, value in patch.items():
        if path.startswith("statements"):
            record["statements"][-1]["total_assets"] = value
        else:
            record[path] = value
    text = explain(Decider(policy).decide(record), policy, lang)
    assert seen[lang] in text


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_warnings_are_listed_most_severe_first(lang: str) -> None:
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    record = Decider(policy).decide(json.loads((REFERENCE / "samples/debtors/20-crisis-group-stale.json")
                                               .read_text(encoding="utf-8")))
    severities = [w["severity"] for w in record["warnings"]]
    rank = {"low": 1, "medium": 2, "high": 3, "critical": 4}
    assert severities != sorted(severities, key=lambda s: -rank[s])  # the record keeps the policy's order
    lines = explain(record, policy, lang).splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith(("Warnings (", "预警（")))
    shown = lines[head + 1:head + 1 + len(severities)]
    words = {"en": ["[CRITICAL]", "[HIGH]", "[MEDIUM]", "[LOW]"], "zh": ["[严重]", "[高]", "[中]", "[低]"]}[lang]
    order = [next(k for k, w in enumerate(words) if line.strip().startswith(w)) for line in shown]
    assert order == sorted(order) and len(shown) == len(severities)
    for w in record["warnings"]:  # each once, its message whole (the evidence may follow it)
        assert sum(line.split("] ", 1)[1].startswith(w["message"][lang].rstrip("）)")) for line in shown) == 1


@pytest.mark.parametrize(("lang", "lines"), [
    # the series by its label where the policy gives one (revenue_q), else by its name (equity_q)
    ("en", ["  - Revenue (trailing 4 quarters) (revenue_ttm): too few periods: Revenue (each quarter) (revenue_q) "
            "has 3, sum_last needs 4",
            "  - Average equity (average_equity): too few periods: equity_q has 3, lag needs 5"]),
    ("zh", ["  - 近四季营业收入（revenue_ttm）：期数不足：营业收入（各季度）（revenue_q）仅有3期，需要4期（sum_last）",
            "  - 平均净资产（average_equity）：期数不足：equity_q仅有3期，需要5期（lag）"]),
])
def test_a_window_longer_than_the_series_is_named_with_the_periods_it_needs(lang: str, lines: list[str]) -> None:
    """The record says "zero or non-positive base, or too few periods"; the explanation says which, from the
    metric's window (lag(equity_q, 4) needs 5 periods: the latest and the one 4 before it)."""
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    record = Decider(policy).decide(json.loads((REFERENCE / "samples/debtors/20-crisis-group-stale.json")
                                               .read_text(encoding="utf-8")))
    assert record["undefined_metrics"]["revenue_ttm"].endswith("zero or non-positive base, or too few periods")
    text = explain(record, policy, lang).splitlines()
    assert all(line in text for line in lines), text


@pytest.mark.parametrize(("version", "lang", "line"), [
    ("2.1.0", "zh", "  本行债权合计：100,400,000元"),
    ("2.1.0", "en", "  Claims at this bank: CNY 100,400,000"),
    ("2.0.0", "zh", "  本行债权合计：100,400,000"),  # 2.0.0 gives its metrics no unit: the figure alone
])
def test_an_amount_reads_with_its_currency_when_the_policy_gives_one(version: str, lang: str, line: str) -> None:
    policy = load_policy(REFERENCE / f"policy-{version}.yaml")
    record = Decider(policy).decide(json.loads((REFERENCE / "samples/debtors/05-contagion-three-exposures.json")
                                               .read_text(encoding="utf-8")))
    assert record["metrics"]["total_exposure"] == 100_400_000  # the record keeps the number
    assert line in explain(record, policy, lang).splitlines()


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e18, max_value=1e18),
                 st.integers(-10**7, 10**7).map(lambda k: (k + 0.5) / 1000),  # halves at the third place
                 st.integers(-10**7, 10**7).map(lambda k: k / 8)),
       st.sampled_from([0, 1, 2]), st.sampled_from([1, 100]))
def test_the_fast_rounding_gives_the_decimal_s_digits(value: float, places: int, scale: int) -> None:
    """half_up tells most figures off the half by arithmetic and returns the float for the format to write:
    the digits must be those the decimal of the shortest repr gives, for every float."""
    from policy_engine.decide.rounding import _decimal, half_up

    assert format(half_up(value, places, scale), f".{places}f") == format(_decimal(value, places, scale),
                                                                          f".{places}f")


@pytest.mark.parametrize(("lang", "words", "not_said"), [
    ("en", "undefined for the figures read (", "too few periods"),
    ("zh", "按所读数值无法计算（", "期数不足"),
])
def test_a_base_of_zero_without_a_series_read_is_not_said_to_lack_periods(lang: str, words: str,
                                                                          not_said: str) -> None:
    """A debtor whose balances are all zero: its shares have no base, and no series was read, so "or too few
    periods" (或期数不足) sent the reader looking for periods the policy never reads."""
    import copy

    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    debtor = json.loads((REFERENCE / "samples/debtors/05-contagion-three-exposures.json").read_text(encoding="utf-8"))
    debtor = copy.deepcopy(debtor)
    for e in debtor["exposures"]:
        e["balance"] = 0
        e.pop("accrued_interest", None)
    record = Decider(policy).decide(debtor)
    share = record["undefined_metrics"].get("nonperforming_share", "")
    assert share.endswith("or too few periods") and " periods]" not in share  # the record keeps its words
    [line] = [x for x in explain(record, policy, lang).splitlines() if "nonperforming_share" in x and words in x]
    assert not_said not in line
