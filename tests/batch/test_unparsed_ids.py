"""A line that is no JSON keeps its client_id in the reject when the id can be read for sure: a calling system
matches rejected rows to its clients by id, and a syntax error after the id left it null."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy.loader import readable_client_id

from ..conftest import POLICIES, REFERENCE

DEBTOR = REFERENCE / "samples" / "debtors" / "13-observation-restarted.json"
CLIENT = REFERENCE / "samples" / "clients" / "13-restructured-in-observation.json"


@pytest.mark.parametrize(("line", "cid"), [
    (b'{"client_id": "C1", "x": }', "C1"),  # the error after the id
    (b'{"client_id":"C\\u00e92", "as_of": ', "C\xe92"),  # an escape decoded, the line cut short
    (b'{"client_id": "a\\"b" oops', 'a"b'),
    (b'{"client_id": 5, oops', None),  # not a string: the record's check would refuse it anyway
    (b'{"group": {"client_id": "X"}, "client_id": "Y" oops', None),  # two: which one is not sure
    (b'{"client_id": "A"} {"client_id": "B"}', None),  # two records on one line
    (b'{"client_id": "\xff", oops', None),  # not UTF-8
    (b'{"client_id": "  ", oops', None),  # blank
    (b'{"client_id": "\\udc00", oops', None),  # a lone surrogate: no UTF-8 to write it back in
    (b'{"client_id": "a\\u0000", oops', None),  # a control character
    (b'{"note": "\\"client_id\\": \\"Z\\"" oops', None),  # inside a string
    (b"{bad json", None),
])
def test_the_id_is_read_off_a_broken_line_only_when_sure(line: bytes, cid: str | None) -> None:
    assert readable_client_id(line) == cid


def _broken(record_path: Path, cid: str) -> str:
    text = json.dumps({**json.loads(record_path.read_text(encoding="utf-8")), "client_id": cid})
    return text[:-1] + ', "oops": }'  # valid up to a missing value near its end


@pytest.mark.parametrize(("policy", "record"), [
    ("loss-client-management@1.1.0", CLIENT),  # the 1.x reader
    ("loss-client-management@2.0.2", DEBTOR),  # the debtor reader
    ("loss-client-management", DEBTOR),  # the lines split by the version in force on each one's day
])
def test_a_batch_reject_of_a_broken_line_names_its_client(tmp_path: Path, policy: str, record: Path) -> None:
    good = json.dumps(json.loads(record.read_text(encoding="utf-8")))
    src = tmp_path / "in.jsonl"
    src.write_text("\n".join([good, _broken(record, "BROKEN-7"), "{bad json"]) + "\n", encoding="utf-8")
    rejects = tmp_path / "r.jsonl"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "batch", str(src), "-p", policy, "--no-audit",
                                  "--as-of", "2026-09-30", "--rejects", str(rejects), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["accounting"] == {"rows_read": 3, "decided": 1, "rejected": 2}
    got = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert [(x["row"], x["client_id"], x["problems"][0]["code"]) for x in got] == [(2, "BROKEN-7", "bad-json"),
                                                                                   (3, None, "bad-json")]


def test_a_stream_answer_to_a_broken_line_names_its_client() -> None:
    lines = "\n".join([_broken(DEBTOR, "BROKEN-7"), "{bad json"]) + "\n"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", "decide", "-p", "loss-client-management",
                                  "--stream"], input=lines)
    assert r.exit_code == 0, r.output
    answers = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(a["line"], a.get("client_id"), a["error"]["problems"][0]["code"]) for a in answers] == [
        (1, "BROKEN-7", "bad-json"), (2, None, "bad-json")]
