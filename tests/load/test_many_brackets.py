"""A record with many lists (a debtor's exposures and payments) is read by the fast reader, with the
strict reader's answers: the same value, the same refusals (nesting, duplicate keys)."""

from __future__ import annotations

import json

import orjson
import pytest

from policy_engine.policy import loader
from policy_engine.policy.loader import MAX_JSON_DEPTH, JSONInputError, parse_json_text

DEBTOR = {"client_id": "D", "exposures": [{"exposure_id": f"E{k}", "schedule": [{"due_date": "2025-01-31", "amount": 1}
                                                                               for _ in range(12)]} for k in range(5)]}


def test_a_record_with_many_lists_takes_the_fast_reader_and_reads_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = orjson.dumps(DEBTOR)
    assert raw.count(b"{") > MAX_JSON_DEPTH
    monkeypatch.setattr(loader, "_loads", lambda text: pytest.fail("took the strict reader"))
    assert parse_json_text(raw) == json.loads(raw)


def nested(depth: int) -> bytes:
    """Containers ``depth`` deep beside many shallow ones."""
    return orjson.dumps({**DEBTOR, "deep": json.loads("[" * (depth - 1) + "]" * (depth - 1))})


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1])
def test_nesting_is_bounded_as_the_strict_reader_bounds_it(depth: int) -> None:
    raw = nested(depth)
    if depth <= MAX_JSON_DEPTH:
        assert parse_json_text(raw) == json.loads(raw)
        return
    with pytest.raises(JSONInputError) as fast:
        parse_json_text(raw)
    with pytest.raises(JSONInputError) as strict:
        parse_json_text(raw.decode("utf-8"))  # text takes the strict reader
    assert str(fast.value) == str(strict.value) and "nesting deeper than" in str(fast.value)


def test_a_duplicate_key_in_a_record_with_many_lists_is_still_refused() -> None:
    raw = orjson.dumps(DEBTOR)[:-1] + b',"client_id":"X"}'
    with pytest.raises(JSONInputError, match="client_id"):
        parse_json_text(raw)
