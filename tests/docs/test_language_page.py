"""The language reference (`policy-engine functions`, docs/language.md) lists what the code knows.

Its lists are read from the code's own tables and its example results computed by the engine;
these tests pin that the tables it reads are the ones the checks use, that the page is the
generated text, and that each documented example does what the reference says.
"""

from __future__ import annotations

import json
import keyword

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.language import expressions as ex
from policy_engine.policy.compiler import (
    BUILTIN_SYMBOLS,
    LANGUAGE_WORDS,
    MESSAGE_FORMATS,
    RESERVED_NAMES,
    check_document,
)
from policy_engine.policy.loader import load_yaml_text
from policy_engine.review.reference import PAGE, example_scope, language_reference, update_page

from ..conftest import DATA, ROOT

REF = language_reference()
MINI = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")


def test_the_page_is_the_generated_reference() -> None:
    page = (ROOT / PAGE).read_text(encoding="utf-8")
    assert update_page(page) == page, "docs/language.md is stale: run python tools/language_reference.py"
    assert "../shared" not in page


def test_every_message_format_the_compiler_accepts_is_listed_and_accepted() -> None:
    listed = [f["format"] for f in REF["message_formats"]]
    assert listed == ["", *MESSAGE_FORMATS]
    for spec in MESSAGE_FORMATS:
        name = "dpd" if spec == "d" else "ratio_al"  # d takes whole numbers: dpd is an integer input
        text = MINI.replace('en: "ratio {ratio_al:.2f}"', f'en: "ratio {{{name}:{spec}}}"')
        diags, policy = check_document(load_yaml_text(text, "x.yaml"))
        assert policy is not None, (spec, [d.render() for d in diags])


def test_the_format_examples_are_what_a_message_shows() -> None:
    shows = {f["placeholder"]: f["shows"] for f in REF["message_formats"]}
    assert (shows["{x:pct}"], shows["{x:.1%}"], shows["{x:,.0f}"], shows["{x:d}"]) == ("12.3%", "12.3%", "1,235", "12")


def test_every_built_in_and_reserved_word_is_listed() -> None:
    listed = {n["name"] for n in REF["builtin_names"]}
    assert listed == set(BUILTIN_SYMBOLS) | set(LANGUAGE_WORDS) | {"True", "False"}
    functions = set(ex.FUNCTIONS) | set(ex.AGGREGATIONS)
    unexplained = {n for n in RESERVED_NAMES if n not in functions and not keyword.iskeyword(n)} - listed
    assert not unexplained
    assert listed <= set(RESERVED_NAMES)


@pytest.mark.parametrize("entry", REF["builtin_names"], ids=lambda n: n["name"])
def test_each_built_in_example_is_valid_where_the_reference_says(entry: dict[str, str]) -> None:
    stage = entry["first_stage"]
    if stage is None:  # a reserved word: refused everywhere, with what to write
        with pytest.raises(ex.ExpressionError) as err:
            ex.check_expression(entry["name"], example_scope("action"))
        assert err.value.code == "unknown-name" and entry["example"] in (err.value.hint or "")
        return
    ex.check_expression(entry["example"], example_scope(stage))
    earlier = ex.STAGES.index(stage) - 1
    if earlier >= 0:
        with pytest.raises(ex.ExpressionError) as err:
            ex.check_expression(entry["example"], example_scope(ex.STAGES[earlier]))
        assert err.value.code == "name-not-available"


def test_the_null_rules_say_what_the_engine_does() -> None:
    results = {r["example"]: r["result"] for r in REF["null"]["rules"]}
    assert results == {
        "x + 1": "null", "y / 0": "null", "x > 1": "null", "x == null": "refused: type-mismatch",
        "x > 1 and False": "False", "x > 1 and True": "null", "x > 1 or True": "True", "not x > 1": "null",
        "1 if x > 1 else 2": "null", "coalesce(x, 0)": "0", "is_null(x)": "True", "y if y > 0 else null": "2",
    }
    assert REF["null"]["literal"] == "null" and REF["null"]["values"] == {"x": "null", "y": "2"}


def test_functions_prints_and_serialises_the_reference() -> None:
    text = CliRunner().invoke(main, ["functions"], catch_exceptions=False).stdout
    for f in REF["message_formats"]:
        assert f"{f['placeholder']} " in text
    for n in REF["builtin_names"]:
        assert f"  {n['name']} " in text.split("built-in names", 1)[1]
    assert "x > 1 and False" in text.split("\nnull", 1)[1]
    listing = json.loads(CliRunner().invoke(main, ["functions", "--format", "json"], catch_exceptions=False).stdout)
    assert {k: listing[k] for k in REF} == REF
