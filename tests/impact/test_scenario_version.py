"""simulate with a policy id checks its scenario against the version that decides the rows, not today's.

Each row is decided under the version in force on its day; a portfolio dated 2025 is decided by
1.1.0 (client record 1.x) even though 2.0.0 (client record 2.0) is in force today, so its shocks of
``loan.days_past_due`` are shocks 1.1.0 feels.
"""

from __future__ import annotations

import pandas as pd
import pytest

from policy_engine.decide.ref import PolicyRef
from policy_engine.portfolio.batch import Table
from policy_engine.review.scenario import checked_version

from ..conftest import POLICIES

ID = "loss-client-management"


def _table(days: list[str | None]) -> Table:
    return Table(pd.DataFrame({"client_id": [f"C{i}" for i in range(len(days))], "as_of": days}), text=False)


@pytest.mark.parametrize(("days", "as_of", "version"), [
    (["2025-06-30", "2025-09-30"], None, "1.1.0"),
    (["2024-06-30", "2025-06-30", "2025-09-30"], None, "1.1.0"),  # most rows
    (["2024-06-30", "2024-09-30", "2025-06-30"], None, "1.0.0"),
    (["2024-06-30", "2026-09-30"], None, "2.0.0"),  # a tie: the later version
    (["2025-06-30"], "2026-07-01", "2.0.0"),  # --as-of decides every row
    ([], "2025-06-30", "1.1.0"),  # no row: the version of the day
    (["2023-01-01", "2025-06-30"], None, "1.1.0"),  # a row on a day no version is in force decides nothing
])
def test_the_scenario_is_checked_against_the_version_of_most_rows(days: list[str | None], as_of: str | None,
                                                                  version: str) -> None:
    ref = PolicyRef(ID, registry=POLICIES)
    assert checked_version(ref, _table(days), as_of).version == version


def test_a_pinned_version_is_the_one_checked() -> None:
    ref = PolicyRef(ID, registry=POLICIES)
    pinned = PolicyRef(ref.for_day("2024-06-30"))
    assert checked_version(pinned, _table(["2026-09-30"])).version == "1.0.0"
