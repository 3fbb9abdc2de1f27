"""A record with many lists (a debtor's exposures and payments) is read by the fast reader, with the
strict reader's answers: the same value, the same refusals (nesting, duplicate keys)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_bytes_read_before_are_not_measured_again_and_everything_else_still_is(monkeypatch: pytest.MonkeyPatch,
                                                                               tmp_path: Any) -> None:
    """``depth_checked``: a batch reads a line again (the split into versions, then the decision, then the store)
    and measured its depth each time, a third of a parse; the same value comes back without the walk. A line too
    deep is still refused in a batch, under a policy id (the split reads it first) and a pinned version."""
    from click.testing import CliRunner

    from policy_engine.cli import main

    from ..conftest import POLICIES, REFERENCE

    raw = orjson.dumps(DEBTOR)
    walked: list[bytes] = []
    depth = loader._depth
    monkeypatch.setattr(loader, "_depth", lambda b: walked.append(b) or depth(b))
    assert parse_json_text(raw, depth_checked=True) == json.loads(raw) and walked == []
    assert parse_json_text(raw) == json.loads(raw) and walked == [raw]
    monkeypatch.undo()
    record = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text("utf-8"))
    lines = tmp_path / "d.jsonl"
    lines.write_text(json.dumps(record) + "\n" + json.dumps({**record, "client_id": "DEEP", "deep": json.loads(
        "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)}) + "\n", encoding="utf-8")
    for policy in ("loss-client-management", "loss-client-management@2.0.0"):
        r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", "batch", str(lines), "-p", policy,
                                      "--format", "json", "--rejects", str(tmp_path / "r.jsonl")])
        assert json.loads(r.stdout)["accounting"] == {"rows_read": 2, "decided": 1, "rejected": 1}, r.output
        (reject,) = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text("utf-8").splitlines()]
        assert "nesting deeper than" in reject["problems"][0]["message"]


_TEXT = st.text(alphabet="ab[]{}:,. 中", max_size=6)
_JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | _TEXT,
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=4),
                     max_leaves=40)


@settings(max_examples=400, deadline=None)
@given(value=_JSON, deep=st.integers(0, MAX_JSON_DEPTH + 3))
def test_the_depth_counted_on_the_brackets_equals_the_walk(value: Any, deep: int) -> None:
    """The fast count (quotes paired, innermost brackets taken a level a pass) agrees with the walk over the
    strings dropped, up to one past the limit, strings holding brackets and all."""
    raw = orjson.dumps([value, json.loads("[" * deep + "]" * deep) if deep else {}])
    cap = MAX_JSON_DEPTH + 1
    assert min(loader._depth(raw), cap) == min(loader._walked_depth(raw), cap)
