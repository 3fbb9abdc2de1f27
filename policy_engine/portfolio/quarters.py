"""Quarter-end dates: the periods a synthetic portfolio or a starter client reports on.

Its own module so the generic generator, the tuned reference generator and ``init`` share one
definition without importing each other.
"""

from __future__ import annotations

import datetime as dt


def quarter_ends(as_of: dt.date, n: int) -> list[str]:
    """The ``n`` quarter-end dates before ``as_of``'s quarter, oldest first."""
    ends = []
    y, q = as_of.year, (as_of.month - 1) // 3  # last complete quarter before as_of's quarter
    for _ in range(n):
        if q == 0:
            y, q = y - 1, 4
        month = q * 3
        last_day = (dt.date(y + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1))
        ends.append(last_day.isoformat())
        q -= 1
    return list(reversed(ends))
