"""round() over a column is Python's round of each value: the vector path computes it with numpy and hands only
the doubtful values (a product within ulps of a half, beyond 2**52, not finite) to Python."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.language.columns import python_round
from policy_engine.language.functions import MAX_ROUND_DIGITS

DIGITS = st.integers(0, MAX_ROUND_DIGITS)


def _same(a: float, b: float) -> bool:
    """Equal as values and in sign (-0.0 is not 0.0), NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))


def _agree(values: list[float], digits: int) -> None:
    got = python_round(np.array(values, dtype=float), digits).tolist()
    for v, g in zip(values, got, strict=True):
        assert _same(g, round(v, digits)), (v, digits, g, round(v, digits))


@st.composite
def near_halves(draw: st.DrawFn) -> tuple[list[float], int]:
    """Values a few ulps from k.5 at the digits rounded to: where scaling by 10**digits may tip the rounding."""
    digits = draw(DIGITS)
    k = draw(st.integers(-(10**12), 10**12))
    half = (k + 0.5) / 10**digits
    steps = draw(st.lists(st.integers(-3, 3), min_size=1, max_size=8))
    values = []
    for s in steps:
        v = half
        for _ in range(abs(s)):
            v = math.nextafter(v, math.inf if s > 0 else -math.inf)
        values.append(v)
    return values, digits


@pytest.mark.parametrize("value", [2.675, 0.125, 0.375, 1.005, 2.5, -2.5, 0.5, -0.5, 1e15 + 0.5, 4503599627370495.5,
                                   5e-324, -5e-324, 1.7976931348623157e308, -0.0, 0.0, math.inf, -math.inf, math.nan,
                                   0.285, 1.15, 8.345, -0.001, 123456.789, 9.995, 2.0**52, 2.0**53 + 2])
def test_known_hard_values_round_as_python_rounds_them(value: float) -> None:
    for digits in range(MAX_ROUND_DIGITS + 1):
        _agree([value], digits)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=40), DIGITS)
def test_any_float_rounds_as_python_rounds_it(values: list[float], digits: int) -> None:
    _agree(values, digits)


@settings(max_examples=400, deadline=None)
@given(near_halves())
def test_a_value_ulps_from_a_half_rounds_as_python_rounds_it(case: tuple[list[float], int]) -> None:
    _agree(*case)
