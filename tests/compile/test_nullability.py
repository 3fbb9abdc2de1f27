"""Nullability of 'and' / 'or': an operand read only where the operands before it prove its names present."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_engine.language import expressions as ex

from .test_expressions import GRADES, SCOPE

CASES = yaml.safe_load((Path(__file__).resolve().parents[1] / "data" / "nullability_cases.yaml").read_text("utf-8"))
DOMAINS: dict[str, tuple[Any, ...]] = {"x": (None, 0, 1, 5, 6), "y": (None, 0, 6), "n": (0, 2, 6),
                                       "b": (None, True, False), "c": (None, True, False), "s": (None, "a", "b")}


@pytest.mark.parametrize("case", CASES, ids=[c["expr"] for c in CASES])
def test_what_the_checker_says_may_be_null(case: dict[str, Any]) -> None:
    assert set(case) == {"expr", "nullable"}, "malformed case"
    assert ex.check_expression(case["expr"], SCOPE, ex.BOOL).nullable is case["nullable"]


@pytest.mark.parametrize("case", CASES, ids=[c["expr"] for c in CASES])
def test_a_condition_said_never_null_is_never_null_and_every_value_is_a_boolean(case: dict[str, Any]) -> None:
    """Sound, and the operands keep their null guards: every combination evaluates (no TypeError on a null)."""
    checked = ex.check_expression(case["expr"], SCOPE, ex.BOOL)
    fn = ex.compile_standalone(checked, GRADES)
    names = sorted(n for n in DOMAINS if n in checked.refs)
    results = {fn(dict(zip(names, values, strict=True)))
               for values in itertools.product(*(DOMAINS[n] for n in names))}
    assert results <= {True, False, None}
    if not checked.nullable:
        assert None not in results


def _checks(src: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many nodes the checker visits for ``src``."""
    calls = 0
    check = ex._Checker.check

    def counted(self: Any, node: Any, depth: int = 0) -> Any:
        nonlocal calls
        calls += 1
        return check(self, node, depth)

    monkeypatch.setattr(ex._Checker, "check", counted)
    try:
        ex.check_expression(src, SCOPE, ex.BOOL)
    finally:
        monkeypatch.undo()
    return calls


def test_nesting_costs_the_checker_no_more_than_the_square_of_its_size(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each operand is checked again once with the names proven, however deep: a hostile review's expression
    of 803 characters (38 levels) was checked 2**38 times over before."""
    def nested(k: int) -> str:
        src = "x > 1"
        for _ in range(k):
            src = f"is_null(x) or c or ({src})"
        return src

    small, large = _checks(nested(10), monkeypatch), _checks(nested(20), monkeypatch)
    assert large <= 4.5 * small
