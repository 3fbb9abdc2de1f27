"""Reference policy 2.1.0's observation clock against a plain loop over the same payments (Art. 20).

The policy follows the clock's restarts window by window, unrolled into metrics (the language has no
loop); this test walks the same definition one payment date at a time and holds every generated debtor's
exposures to it: the start, the end and whether an exposure is in observation, and the end of the period of
the restructuring before the latest on the date of the latest (the re-restructuring rule). A resolution of the
difficulty counts for a restructuring only when dated after it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from policy_engine.decide.evaluate import decide
from policy_engine.language.functions import _add_months
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio.synthetic import scoped_clients

from ..conftest import REFERENCE

NEW = load_policy(REFERENCE / "policy-2.1.0.yaml")
WINDOWS = 4  # the policy's clock_window_0 .. clock_window_3


def _day(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


def _missed(p: dict[str, Any]) -> bool:
    paid = _day(p.get("paid_date"))
    # a paid date with no amount is a payment in full, as the date says
    amount = p["due_amount"] if p.get("paid_amount") is None else p["paid_amount"]
    return paid is None or paid > _day(p["due_date"]) or amount < p["due_amount"]


def _clock(first_due: dt.date, schedule: list[dict[str, Any]], before: dt.date,
           resolved: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """The start and end of the observation period: from ``first_due``, restarted by each payment due before
    ``before`` not made in full and on time inside the running period (or after its end while the difficulty
    was unresolved then, inside the period restarted from the end when it was resolved later). (None, None) when
    it takes more windows than the policy follows."""
    dues = sorted(_day(p["due_date"]) for p in schedule)
    start, first = first_due, True
    for _ in range(WINDOWS):
        p1 = next((d for d in dues if d > start), None)
        p2 = next((d for d in dues if p1 is not None and d > p1), None)
        year = _add_months(start, 12)
        end = None if p2 is None else max(p2, year)
        # after an end with the difficulty unresolved, the period restarted from the end: for ever while it is
        # never resolved, else a year and two periods (a payment late after that is an arrear, no restart)
        again = _restarted_end(end, schedule) if end is not None and resolved is not None and resolved > end else None
        unresolved = resolved is None or (end is not None and resolved > end)
        missed = [_day(p["due_date"]) for p in schedule if _missed(p)]
        inside = [d for d in missed if (d >= start if first else d > start) and d < before
                  and (end is None or d <= end or (unresolved and (again is None or d <= again)))]
        if not inside:
            return start, end
        start, first = max(inside), False
    return None, None


def _restarted_end(end: dt.date, schedule: list[dict[str, Any]]) -> dt.date | None:
    """The end of a period restarted at ``end`` (the difficulty unresolved then): a year and two repayment periods."""
    dues = sorted(_day(p["due_date"]) for p in schedule)
    p1 = next((d for d in dues if d > end), None)
    p2 = next((d for d in dues if p1 is not None and d > p1), None)
    return None if p2 is None else max(p2, _add_months(end, 12))


def _runs_on(end: dt.date | None, resolved: dt.date | None, day: dt.date,
            schedule: list[dict[str, Any]]) -> bool | None:
    """Whether a period ending at ``end`` still runs on ``day``: not ended, or ended with the difficulty unresolved
    and the period restarted from its end not ended before the resolution's (None: beyond the one restart followed)."""
    if end is None or day < end or resolved is None or resolved > day:
        return True
    if resolved <= end:
        return False
    again = _restarted_end(end, schedule)
    if again is None:
        return True
    return day < again if resolved <= again else None


def _check(client: dict[str, Any]) -> tuple[int, int]:
    """Asserts 2.1.0's clocks agree with the loop; returns how many clocks and re-restructuring windows it checked."""
    record = decide(NEW, client)
    as_of = _day(client["as_of"])
    resolved_on = _day((client.get("difficulty") or {}).get("resolved_date"))

    def resolved(after: dt.date | None) -> dt.date | None:
        return resolved_on if resolved_on is not None and after is not None and resolved_on > after else None

    clocks = windows = 0
    for e, facts in zip(record["exposures"], client["exposures"], strict=True):
        m = e["metrics"]
        schedule = facts.get("schedule") or []
        first_due = _day(m.get("observation_first_due"))
        latest = _day(m.get("restructuring_date"))
        if first_due is not None:
            clocks += 1
            start, end = _clock(first_due, schedule, as_of, resolved(latest))
            assert (_day(m["observation_start"]), _day(m["observation_end"])) == (start, end), e["exposure_id"]
            if start is not None:
                assert m["in_observation"] is _runs_on(end, resolved(latest), as_of, schedule), e["exposure_id"]
            else:
                assert m["in_observation"] is None
        previous = _day(m.get("previous_restructuring_date"))
        earlier = _day(m.get("previous_observation_first_due"))
        if previous is not None and earlier is not None:
            windows += 1
            r = resolved(previous)
            start, end = _clock(earlier, schedule, latest, r)
            assert _day(m["previous_observation_end"]) == end
            if start is None or m["later_restructurings"] is None:  # a modification undecided counts none
                assert m["re_restructured"] is None
            else:
                assert m["re_restructured"] is _runs_on(end, r, latest, schedule), e["exposure_id"]
    return clocks, windows


@pytest.mark.parametrize("seed", [5, 17])
def test_the_clock_of_every_generated_exposure_is_the_loop_s(seed: int) -> None:
    clients = list(scoped_clients(NEW, 300, seed=seed, as_of="2027-09-30", periods=5))
    checked = [_check(c) for c in clients]
    # not vacuous: the generated debtors reach both clocks, of the latest restructuring and of the one before it
    assert sum(c for c, _ in checked) >= 100 and sum(w for _, w in checked) >= 20, checked
