"""A date declared ``not_before`` another: a record where it precedes it is refused at its place.

A core system that writes 0001-01-01 or 1900-01-01 for "none" sends a payment made before the loan
existed; read as a date it is a payment made in time. The policy declares the order (a payment's
``paid_date`` not before its exposure's ``opened``, an exposure's ``matures`` not before its own
``opened``); decide refuses such a record (exit 3) on the generated reader and the checked path alike
(the long tables: tests/batch/test_long_tables_element_checks.py).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.scoped import build_fast_reader, read_scopes
from policy_engine.diagnostics import InputError
from policy_engine.policy.registry import load_policy

from ..conftest import DATA
from ..variants import dated_scopes_text

CLIENT = json.loads((DATA / "scopes" / "clients" / "three-exposures.json").read_text("utf-8"))


@pytest.fixture(scope="module")
def dated(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    path = tmp_path_factory.mktemp("dated") / "policy.yaml"
    path.write_text(dated_scopes_text(), "utf-8")
    return Decider(load_policy(path))


def _client(opened: str | None = "2024-06-30", maturity: str | None = "2027-06-30", paid: str | None = None
            ) -> dict[str, Any]:
    c = copy.deepcopy(CLIENT)
    e1 = c["exposures"][0]
    e1["opened"], e1["maturity"] = opened, maturity
    if paid is not None:
        e1["schedule"][1]["paid_date"] = paid
    return c


REFUSED = [
    ("a stand-in for none paid before the loan was opened", {"paid": "0001-01-01"},
     "exposures[0].schedule[1].paid_date", "paid_date 0001-01-01 is before 2024-06-30 (exposures[0].opened)"),
    ("paid the day before the loan was opened", {"paid": "2024-06-29"},
     "exposures[0].schedule[1].paid_date", "paid_date 2024-06-29 is before 2024-06-30 (exposures[0].opened)"),
    ("a maturity before the origination", {"maturity": "1900-01-01"},
     "exposures[0].maturity", "maturity 1900-01-01 is before 2024-06-30 (exposures[0].opened)"),
]


@pytest.mark.parametrize(("name", "dates", "path", "says"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_date_before_its_bound_is_refused_at_its_place(dated: Decider, name: str, dates: dict[str, str],
                                                         path: str, says: str) -> None:
    client = _client(**dates)
    with pytest.raises(InputError) as info:
        dated.decide(client, file="debtor.json")
    [d] = info.value.diagnostics
    assert (d.code, d.path, d.message) == ("bad-field", path, says)
    assert "not_before of the policy" in (d.hint or "") and "written as null" in (d.hint or "")
    assert build_fast_reader(dated.policy)(client, None) is None  # the generated reader leaves it to the checked


ACCEPTED = [
    ("paid on the day the loan was opened", {"paid": "2024-06-30"}),
    ("a maturity on the origination day", {"maturity": "2024-06-30"}),
    ("no origination date: nothing to compare", {"opened": None, "paid": "0001-01-01", "maturity": "1900-01-01"}),
    ("no maturity", {"maturity": None}),
]


@pytest.mark.parametrize(("name", "dates"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_a_date_on_or_after_its_bound_or_without_one_is_read(dated: Decider, name: str, dates: dict[str, Any]
                                                             ) -> None:
    client = _client(**dates)
    fast = build_fast_reader(dated.policy)(client, None)
    checked, problems = read_scopes(dated.policy, client)
    assert not problems and fast == checked
    assert dated.decide(client)["classification"]["grade"]


def test_the_client_schema_names_the_field_a_date_may_not_precede(dated: Decider) -> None:
    from policy_engine.decide.contract import record_schema

    items = record_schema(dated.policy)["properties"]["exposures"]["items"]
    # an exposure's fields are its own: the payments' are described under schedule
    assert "'balance'" in items["description"] and "'paid_date'" not in items["description"]
    exposure = items["properties"]
    paid = exposure["schedule"]["items"]["properties"]["paid_date"]["description"]
    assert "Not before exposures[*].opened (of this element, or of the one it belongs to); null when there is " \
           "none, not a stand-in such as 0001-01-01." in paid
