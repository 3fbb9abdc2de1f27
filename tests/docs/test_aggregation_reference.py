"""The aggregations in the language reference (`policy-engine functions`, docs/language.md): every entry of
functions.AGGREGATIONS, with its result type, its null rule apart, and an example whose value the engine computed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.language.functions import AGGREGATIONS
from policy_engine.review.reference import AGGREGATION_EXAMPLES, PAGE, aggregations

from ..conftest import ROOT

LISTED = {a["name"]: a for a in aggregations()}

# The examples' values over the three reference exposures, worked by hand:
# E1 (800, dpd 0, opened 2021-03-01), E2 (150, dpd 95, 2023-06-15), E3 (50, dpd 10, 2022-01-10); E2 is substandard.
BY_HAND = {
    "count_where": "1", "sum_where": "150", "sum_of": "1000", "share_where": "0.15", "any_of": "True",
    "all_of": "False", "min_of": "2021-03-01", "max_of": "800", "first_date": "2022-01-10",
    "worst_grade": "substandard", "min_where": "50", "max_where": "2023-06-15",
    "last_of": "150",  # in order of opening: E1, E3, E2; the last overdue is E2
}


def test_every_aggregation_is_listed_with_an_example() -> None:
    assert list(LISTED) == list(AGGREGATIONS) == list(AGGREGATION_EXAMPLES)


@pytest.mark.parametrize("name", list(AGGREGATIONS))
def test_each_entry_says_its_result_null_rule_and_first_argument(name: str) -> None:
    a = LISTED[name]
    assert a["signature"] == AGGREGATIONS[name].signature and a["signature"].startswith(f"{name}(scope")
    assert a["first_argument"] == "scope"
    assert a["result"] in ("number", "bool", "date", "grade", "number or date", "number, date or text")
    assert a["null_rule"].startswith("null ") and "; null" not in a["gives"]
    assert a["example"].startswith(f"{name}(exposure")
    assert a["example_result"] == BY_HAND[name]


def test_functions_text_json_and_page_list_the_aggregations() -> None:
    text = CliRunner().invoke(main, ["functions"], catch_exceptions=False).stdout
    section = text.split("\naggregations", 1)[1].split("\nbuilt-in names", 1)[0]
    listing = json.loads(CliRunner().invoke(main, ["functions", "--format", "json"], catch_exceptions=False).stdout)
    page = (ROOT / PAGE).read_text(encoding="utf-8").split("### Aggregations", 1)[1].split("###", 1)[0]
    for a in LISTED.values():
        assert f"  {a['signature']}" in section and f"e.g. {a['example']} -> {a['example_result']}" in section
        assert f"| `{a['signature']}` | {a['result']} |" in page
    assert [a["name"] for a in listing["aggregations"]] == list(AGGREGATIONS)
    assert listing["aggregations"][0]["null_rule"] == LISTED["count_where"]["null_rule"]
