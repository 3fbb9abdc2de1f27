"""The filters of `audit list/export/replay`: a filter that can only match nothing is a usage error (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import POLICIES, REFERENCE

PORTFOLIO = REFERENCE / "samples" / "portfolio.csv"


def cli(db: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "--audit-db", str(db), *args],
                              catch_exceptions=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("filters") / "audit.db"
    r = cli(db, "batch", str(PORTFOLIO), "-p", "loss-client-management", "--format", "json")
    assert r.exit_code == 0, r.stderr
    return db


# (filter arguments, diagnostic code, hint): each is refused by list, export and replay alike.
BAD_FILTERS = [
    (["--grade", "los"], "unknown-grade", "did you mean 'loss'?"),
    (["--grade", "Loss"], "unknown-grade", "did you mean 'loss'?"),
    (["--policy", "loss-client-managment"], "unknown-policy", "did you mean 'loss-client-management'?"),
    (["--policy-version", "1.1.1"], "unknown-version", "did you mean '1.1.0'?"),
    (["--policy", "loss-client-management", "--policy-version", "2.0.0"], "unknown-version", None),
    (["--from", "2025-02-30"], "bad-date", "a calendar date such as 2025-06-30"),
    (["--to", "30/06/2025"], "bad-date", "a calendar date such as 2025-06-30"),
    (["--from", "2025-07-01", "--to", "2025-06-30"], "bad-date", None),
]


@pytest.mark.parametrize("command", ["list", "export", "replay"])
@pytest.mark.parametrize(("args", "code", "hint"), BAD_FILTERS)
def test_a_filter_that_matches_nothing_by_construction_is_exit_2(store: Path, tmp_path: Path, command: str,
                                                                 args: list[str], code: str,
                                                                 hint: str | None) -> None:
    extra = ["--out", str(tmp_path / "x.jsonl")] if command == "export" else ["--format", "text"]
    r = cli(store, "audit", command, *args, *extra)
    assert r.exit_code == 2, r.output
    assert f"error: {code}:" in r.stderr
    if hint is not None:
        assert hint in r.stderr
    assert not (tmp_path / "x.jsonl").exists()  # nothing written for a request that was refused


def test_valid_filters_still_select(store: Path, tmp_path: Path) -> None:
    listed = [json.loads(x) for x in cli(store, "audit", "list", "--grade", "loss", "--from", "2025-01-01",
                                         "--to", "2025-12-31", "--format", "json").stdout.splitlines()]
    assert {x["client_id"] for x in listed} == {"C004", "C009", "C021"}
    assert cli(store, "audit", "list", "--client", "NOBODY", "--format", "json").stdout == ""  # a client may be absent


def test_replay_takes_the_filters_of_list(store: Path) -> None:
    r = cli(store, "audit", "replay", "--grade", "loss", "--format", "json")
    assert r.exit_code == 0, r.stderr
    replayed = [json.loads(x) for x in r.stdout.splitlines()]
    listed = [json.loads(x) for x in cli(store, "audit", "list", "--grade", "loss", "--format", "json").stdout
              .splitlines()]
    assert [x["seq"] for x in replayed] == [x["seq"] for x in listed] and len(listed) == 3
    assert {x["status"] for x in replayed} == {"identical"}
    [said] = json.loads(r.stderr)["warnings"]  # with --format json the counts are a JSON document, not a text line
    assert (said["code"], said["message"]) == ("replayed", "3 identical, 0 different, 0 not replayable")
    assert "3 identical, 0 different" in cli(store, "audit", "replay", "--grade", "loss", "--format", "text").stderr


def test_a_replay_that_matched_nothing_says_so_and_fails_under_strict(store: Path) -> None:
    """Filters of recorded values that match nothing together replayed nothing and printed only zero counts, exit 0:
    a CI gate passed having checked nothing. It is now a warning, and with --strict a failure (exit 6)."""
    args = ("audit", "replay", "--client", "NOBODY", "--grade", "loss")
    r = cli(store, *args, "--format", "json")
    assert r.exit_code == 0 and r.stdout == ""
    codes = [w["code"] for w in json.loads(r.stderr)["warnings"]]
    assert codes == ["nothing-replayed", "replayed"]
    strict = cli(store, *args, "--strict", "--format", "json")
    assert strict.exit_code == 6
    failure = json.loads(strict.stderr)
    assert failure["ok"] is False and failure["errors"][0]["code"] == "nothing-replayed"
    assert "nothing was replayed" in cli(store, *args, "--format", "text").stderr


@pytest.mark.parametrize("args", [[], ["1", "--grade", "loss"], ["1", "--all"]])
def test_replay_needs_one_selection(store: Path, args: list[str]) -> None:
    assert cli(store, "audit", "replay", *args).exit_code == 2


@pytest.mark.parametrize("command", ["show", "replay"])
def test_an_unknown_decision_id_is_a_usage_error(store: Path, command: str) -> None:
    r = cli(store, "audit", command, "no-such-id")
    assert r.exit_code == 2
    assert "no-such-decision" in r.stderr and "Traceback" not in r.output


def test_an_empty_store_has_nothing_to_check_filters_against(tmp_path: Path) -> None:
    db = tmp_path / "empty.db"
    assert cli(db, "decide", "-p", "loss-client-management", "-c", str(REFERENCE / "samples" / "clients" /
                                                                       "01-pass-healthy-manufacturer.json"),
               "--no-audit").exit_code == 0
    from policy_engine.record.audit import AuditStore

    AuditStore(db).close()  # created, with no decision yet
    assert cli(db, "audit", "list", "--grade", "loss", "--format", "json").exit_code == 0
    assert cli(db, "audit", "list", "--from", "2025-13-01").exit_code == 2  # a date is checked on its own
