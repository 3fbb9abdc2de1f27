"""One rounding for every figure a person reads: a message, a key figure, an explanation.

Half away from zero, as a banker rounds (四舍五入), on the shortest decimal of the float: an interest
coverage of 3.125 reads 3.13 and a share of 0.0125 reads 1.3%, where the float format's half-to-even on the
binary value gives 3.12 and 1.2%. A message and the key figures beside it never disagree in the last digit.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

_QUANTUM = {places: Decimal(1).scaleb(-places) for places in range(4)}


def half_up(v: float, places: int, scale: int = 1) -> Decimal | float:
    """``v`` (times ``scale``) rounded half away from zero at ``places``. The decimal of the shortest repr is
    rounded, so 2.675 (stored as 2.67499...) reads 2.68 as written; -0.004 reads 0.00, not -0.00."""
    if v - v != 0:  # inf or nan (a record holds none; a hand-made one may): as the float format writes it
        return v
    try:
        d = (Decimal(repr(v)) * scale).quantize(_QUANTUM.get(places) or Decimal(1).scaleb(-places),
                                                 rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context holds (a ratio over a near-zero base): no half to round
        return v * scale
    return d if d else abs(d)
