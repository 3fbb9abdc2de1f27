"""One rounding for every figure a person reads: a message, a key figure, an explanation.

Half away from zero, as a banker rounds (四舍五入), on the shortest decimal of the float: an interest
coverage of 3.125 reads 3.13 and a share of 0.0125 reads 1.3%, where the float format's half-to-even on the
binary value gives 3.12 and 1.2%. A message and the key figures beside it never disagree in the last digit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from decimal import Decimal


def half_up(v: float, places: int, scale: int = 1) -> Decimal | float:
    """``v`` (times ``scale``: 1 or 100) rounded half away from zero at ``places``, as a number whose fixed-point
    format at ``places`` shows those digits. The decimal of the shortest repr is rounded, so 2.675 (stored as
    2.67499...) reads 2.68 as written; -0.004 reads 0.00, not -0.00.

    Only a tie needs the decimal: when the shortest repr does not end in a 5 just past the rounding place, the
    float format rounds the binary value to the same digits (were the binary value on the other side of the
    half, the half itself, shorter, would be the repr), so the float is returned as it is; most figures are
    told to be off the half by arithmetic alone (a message renders several figures per decision: the decimal
    cost a 1.x decision 7-10%). A property test holds every path to the decimal's digits.
    """
    if v - v != 0:  # inf or nan (a record holds none; a hand-made one may): as the float format writes it
        return v
    at = places + 2 if scale == 100 else places  # a percentage rounds the fraction two places further
    size = v if v >= 0 else -v
    if _LOW[at] <= size < _FAST[at] and abs(size * _SHIFT[at] % 10.0 - 5.0) > 1e-4:  # not at (or near) a half
        return v if scale == 1 else v * 100
    text = repr(v)
    # within 15 significant digits the format's digits are the repr's; beyond, it writes binary digits the repr
    # does not have (840871072386457.6 as ...457.62)
    if _LOW[at] <= size < _HIGH[at] and "e" not in text and not _tie(text, at):
        if scale == 1:
            return v
        # v * 100 rounds once; it stays on v's side of the half when v is off it by more than that rounding:
        # a repr of 15 digits or fewer, or digits past the rounding place that do not start 40.., 49.., 50..
        # or 59..
        if len(text) <= 16:
            return v * 100
        tail = text[text.find(".") + 1 + at:]
        if size < _NEAR[at] and (tail[:1] not in ("4", "5") or tail[1:2] not in ("0", "9")):
            return v * 100
        return float(_times_100(format(v, f".{at}f")))  # the fraction's digits at places + 2, point moved
    return _decimal(v, places, scale)


_LOW = {at: 0.5 * 10.0 ** -at for at in range(8)}  # below: rounds to zero (the decimal path drops its sign)
_HIGH = {at: 1e15 * 10.0 ** -at for at in range(8)}
_NEAR = {at: 1e13 * 10.0 ** -at for at in range(8)}
# The arithmetic test: v off the half by more than 1e-5 of the last place kept, and small enough that this
# distance exceeds the rounding of v * 100 (and the format writes the repr's digits)
_FAST = {at: 1e10 * 10.0 ** -at for at in range(8)}
_SHIFT = {at: 10.0 ** (at + 1) for at in range(8)}


def _tie(text: str, at: int) -> bool:
    """Whether the decimal ``text`` ends in a 5 at the place just past ``at`` decimals (exactly half)."""
    dot = text.find(".")
    return dot >= 0 and len(text) - dot - 1 == at + 1 and text.endswith("5")


def _times_100(text: str) -> str:
    """A fixed-point decimal text (at least two decimals) times 100, as text."""
    whole, _, fraction = text.partition(".")
    return f"{whole}{fraction[:2]}.{fraction[2:]}" if len(fraction) > 2 else f"{whole}{fraction}"


def _decimal(v: float, places: int, scale: int) -> Decimal | float:
    """The rounding by the decimal of the repr (imported here: most figures never need it, and decide's
    start-up does not pay for the module)."""
    from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

    try:
        d = (Decimal(repr(v)) * scale).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    except InvalidOperation:  # more digits than the context holds (a ratio over a near-zero base): no half to round
        return v * scale
    return d if d else abs(d)
