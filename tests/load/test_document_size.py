"""One record has one size, wherever it comes from, and nothing beyond the limit is held.

A hostile review found `decide -c /dev/zero` growing to 7 GB before the limit was checked, and a record of
exactly MAX_JSON_BYTES accepted in a file but refused on a JSON Lines line (its newline counted).
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy import loader
from policy_engine.policy.loader import MAX_JSON_BYTES, READ_LIMIT, JSONInputError, bounded_lines, read_bounded

from ..conftest import POLICIES, REFERENCE

POLICY = "loss-client-management@2.0.0"


def _record_of(size: int) -> bytes:
    """A sample debtor padded to exactly ``size`` bytes of JSON (an unread field)."""
    record = json.loads((REFERENCE / "samples" / "debtors" / "01-pass-single-loan.json").read_text("utf-8"))
    record["note"] = ""
    pad = size - len(json.dumps(record, separators=(",", ":")).encode("utf-8"))
    record["note"] = "x" * pad
    raw = json.dumps(record, separators=(",", ":")).encode("utf-8")
    assert len(raw) == size
    return raw


def _cli(*args: str, data: bytes | None = None) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", *args], input=data)
    return r.exit_code, r.stdout, r.stderr


@pytest.mark.parametrize(("size", "accepted"), [(MAX_JSON_BYTES, True), (MAX_JSON_BYTES + 1, False)])
def test_a_record_at_the_limit_is_one_size_in_a_file_on_a_line_and_on_the_stream(tmp_path: Path, size: int,
                                                                                 accepted: bool) -> None:
    raw = _record_of(size)
    (tmp_path / "d.json").write_bytes(raw)
    (tmp_path / "crlf.json").write_bytes(raw + b"\r\n")
    (tmp_path / "d.jsonl").write_bytes(raw + b"\n")
    for name in ("d.json", "crlf.json"):
        code, _, err = _cli("decide", "-p", POLICY, "-c", str(tmp_path / name), "--format", "json")
        assert (code == 0) == accepted, err[:300]
        assert accepted or f"the document is {size:,} bytes" in err
    code, out, _ = _cli("decide", "-p", POLICY, "--stream", data=raw + b"\n")
    answer = json.loads(out)
    assert ("error" not in answer) == accepted, out[:300]
    code, out, err = _cli("batch", "-p", POLICY, str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "o.jsonl"),
                          "--format", "json")
    assert json.loads(out)["accounting"]["decided"] == (1 if accepted else 0), err[:300]


def test_a_runaway_document_is_refused_after_one_document_s_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing past READ_LIMIT is read: a stream with no end is refused, not read until memory runs out."""
    monkeypatch.setattr(loader, "MAX_JSON_BYTES", 1000)
    monkeypatch.setattr(loader, "READ_LIMIT", 1005)

    class Endless(io.RawIOBase):
        read_calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, b: bytearray) -> int:  # type: ignore[override]
            Endless.read_calls += 1
            assert Endless.read_calls < 100, "read on past the limit"
            b[:] = b"a" * len(b)
            return len(b)

    with pytest.raises(JSONInputError, match="more than 1,005 bytes"):
        read_bounded(io.BufferedReader(Endless(), 64))
    assert read_bounded(io.BytesIO(b"x" * 1000 + b"\r\n")) == b"x" * 1000 + b"\r\n"


def test_a_line_beyond_the_limit_is_cut_and_the_next_one_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "READ_LIMIT", 100)
    lines = list(bounded_lines(io.BytesIO(b"a" * 5000 + b"\r\n" + b'{"x": 1}\n' + b"b" * 300)))
    assert [len(x) for x in lines] == [100, 9, 100]
    assert [getattr(x, "size", None) for x in lines] == [5000, None, 300]
    with pytest.raises(JSONInputError, match="the document is 5,000 bytes"):
        loader.parse_json_text(lines[0])
    assert loader.parse_json_text(lines[1]) == {"x": 1}


def test_the_stream_answers_a_line_beyond_the_limit_and_goes_on() -> None:
    big = b"a" * (READ_LIMIT + 10)
    code, out, _ = _cli("decide", "-p", POLICY, "--stream", data=big + b"\n" + b"{}\n")
    first, second = (json.loads(x) for x in out.splitlines())
    assert code == 0 and first["line"] == 1 and second["line"] == 2
    assert f"the document is {READ_LIMIT + 10:,} bytes" in first["error"]["problems"][0]["message"]


def test_a_batch_line_beyond_the_limit_is_rejected_unheld_and_the_lines_after_it_keep_their_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """batch of debtors reads its lines as the stream does: a runaway line is one reject (its size named), and
    the debtors after it are decided and their records re-read from their own place in the file."""
    monkeypatch.setattr(loader, "MAX_JSON_BYTES", 20_000)
    monkeypatch.setattr(loader, "READ_LIMIT", 20_005)
    samples = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))[:2]
    first, last = (json.dumps(json.loads(p.read_text("utf-8"))).encode() for p in samples)
    src = tmp_path / "d.jsonl"
    big = b'{"client_id": "BIG", "note": "' + b"x" * 50_000 + b'"}'
    src.write_bytes(first + b"\n" + big + b"\r\n" + last + b"\n")
    records = tmp_path / "r.jsonl"
    code, out, err = _cli("batch", "-p", POLICY, str(src), "--out", str(tmp_path / "o.jsonl"), "--records",
                          str(records), "--rejects", str(tmp_path / "j.jsonl"), "--format", "json")
    assert code == 0, err[:500]
    assert json.loads(out)["accounting"] == {"rows_read": 3, "decided": 2, "rejected": 1}
    [reject] = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text("utf-8").splitlines()]
    assert reject["line"] == 2 and f"the document is {len(big):,} bytes" in reject["problems"][0]["message"]
    ids = [json.loads(x)["client_id"] for x in records.read_text("utf-8").splitlines()]
    assert ids == [json.loads(first)["client_id"], json.loads(last)["client_id"]]


def test_a_client_line_beyond_the_limit_is_rejected_unheld_in_a_1x_batch_too(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_JSON_BYTES", 20_000)
    monkeypatch.setattr(loader, "READ_LIMIT", 20_005)
    first, last = (REFERENCE / "samples" / "portfolio.jsonl").read_bytes().splitlines()[:2]
    big = b'{"client_id": "BIG", "note": "' + b"x" * 50_000 + b'"}'
    src = tmp_path / "c.jsonl"
    src.write_bytes(first + b"\n" + big + b"\n" + last + b"\n")
    records = tmp_path / "r.jsonl"
    code, out, err = _cli("batch", "-p", "loss-client-management@1.1.0", str(src), "--out", str(tmp_path / "o.csv"),
                          "--records", str(records), "--rejects", str(tmp_path / "j.jsonl"), "--format", "json")
    assert code == 0, err[:500]
    assert json.loads(out)["accounting"] == {"rows_read": 3, "decided": 2, "rejected": 1}
    [reject] = [json.loads(x) for x in (tmp_path / "j.jsonl").read_text("utf-8").splitlines()]
    assert reject["row"] == 2 and f"the document is {len(big):,} bytes" in json.dumps(reject)
    ids = [json.loads(x)["client_id"] for x in records.read_text("utf-8").splitlines()]
    assert ids == [json.loads(first)["client_id"], json.loads(last)["client_id"]]
