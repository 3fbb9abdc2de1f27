"""Every independent error of one expression is reported, each at its own column, and no error twice.

Before, the checker stopped at the first problem, so an author fixed one unknown name per
validate run. A part with an error now has the type *unknown*, which satisfies every place it is
used in: one mistake is one error, two mistakes are two.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.language import expressions as ex
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text

from ..conftest import DATA
from .test_expressions import SCOPE

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "expression_all_errors.yaml").read_text(encoding="utf-8"))
_WANT = {None: None, "bool": ex.BOOL, "number": ex.NUMBER}


def _errors(text: str, want: str | None = None) -> list[tuple[str, int | None]]:
    try:
        ex.check_expression(text, SCOPE, want)
    except ex.ExpressionError as e:
        return [(x.code, x.column) for x in ex.every_error(e)]
    return []


def test_every_case_is_well_formed() -> None:
    assert len(CASES) >= 15
    for case in CASES:
        assert set(case) <= {"expr", "want", "errors"} and {"expr", "errors"} <= set(case), case
        assert case.get("want") in _WANT and len(case["errors"]) >= 1, case


@pytest.mark.parametrize("case", CASES, ids=[c["expr"] for c in CASES])
def test_each_error_at_its_column(case: dict[str, Any]) -> None:
    assert _errors(case["expr"], _WANT[case.get("want")]) == [tuple(e) for e in case["errors"]]


def test_the_first_error_is_the_exception_itself() -> None:
    """Callers that read one code and column (the CLI's first line, older tools) see the first by position."""
    with pytest.raises(ex.ExpressionErrors) as err:
        ex.check_expression("zz + yy", SCOPE)
    assert (err.value.code, err.value.column, err.value.message) == ("unknown-name", 1, "unknown name 'zz'")
    assert [e.message for e in err.value.all] == ["unknown name 'zz'", "unknown name 'yy'"]


# Boolean parts, each with the errors it holds as (code, offset in the part). Joined by and/or, a
# text's errors are exactly the parts' errors, in order: the parts are independent. The exception:
# a name misspelt in two parts is one mistake, reported where it first occurs.
PARTS: list[tuple[str, list[tuple[str, int]]]] = [
    ("x > 1", []),
    ("b", []),
    ("zz > 1", [("unknown-name", 0)]),
    ("x > 'a'", [("type-mismatch", 4)]),
    ("s == 'c'", [("unknown-value", 5)]),
    ("b & c", [("disallowed-operator", 2)]),
    ("x.real > 0", [("disallowed-syntax", 0)]),
    ("is_null(qq)", [("unknown-name", 8)]),
    ("abs(zz) < 1", [("unknown-name", 4)]),
    ("(x + 'a') > 1", [("type-mismatch", 5)]),
    ("not x", [("type-mismatch", 4)]),
    ("g == 'pas'", [("unknown-value", 5)]),
    ("1e999 > x", [("literal-too-large", 0)]),
    ("x is 1", [("disallowed-operator", 2)]),
    ("days_between(d1, 1) > 0", [("type-mismatch", 17)]),
    ("sum_last(x, 0) > 1", [("type-mismatch", 9), ("type-mismatch", 12)]),
    ("round('a', 99) > coalesce(zz, 1)", [("type-mismatch", 6), ("type-mismatch", 11), ("unknown-name", 26)]),
]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(PARTS), min_size=1, max_size=8), st.lists(st.sampled_from([" and ", " or "]),
                                                                          min_size=7, max_size=7))
def test_independent_parts_give_exactly_their_errors(parts: list[tuple[str, list[tuple[str, int]]]],
                                                     joins: list[str]) -> None:
    text, expected, names = "", [], set()
    for i, (part, errors) in enumerate(parts):
        if i:
            text += joins[i - 1]
        for code, offset in errors:
            name = re.match(r"\w+", part[offset:])
            if code == "unknown-name" and name is not None and name.group() in names:
                continue
            if code == "unknown-name" and name is not None:
                names.add(name.group())
            expected.append((code, len(text) + 1 + offset + 1))  # '(' then 1-based
        text += f"({part})"
    assert _errors(text, ex.BOOL) == expected, text


def test_the_compiler_locates_every_error_of_one_condition_in_the_file() -> None:
    text = (DATA / "mini-policy.yaml").read_text(encoding="utf-8").replace("when: dpd > 90", "when: dpp > 90 or yy")
    diags, policy = check_document(load_yaml_text(text, "x.yaml"))
    assert policy is None
    assert [(d.code, d.message) for d in diags] == [("unknown-name", "unknown name 'dpp'"),
                                                    ("unknown-name", "unknown name 'yy'")]
    line = text.splitlines()[diags[0].line - 1]
    assert [line[d.column - 1:d.column + 2] for d in diags] == ["dpp", "yy"]
    assert {d.rule for d in diags} == {"late"}
