"""A record of another kind than the policy reads is refused with one diagnostic naming the cause.

Cases in ``tests/data/record_kind.yaml``: a client record 1.x under 2.0.0 (in force on its day), a
2.0 record under 1.x, a record of another policy; and records that are of the policy's kind with a
problem of their own (a misspelt or missing container, a container of the other kind), which keep
their field-by-field problems.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy_engine import Decider, InputError
from policy_engine.decide.record_kind import CODE, compare, record_label, shape_of
from policy_engine.policy.registry import Registry, load_policy

from ..conftest import DATA, ROOT

CASES = yaml.safe_load((DATA / "record_kind.yaml").read_text(encoding="utf-8"))["cases"]
_DECIDERS: dict[str, Decider] = {}


def _decider(policy: str) -> Decider:
    if policy not in _DECIDERS:
        _DECIDERS[policy] = Decider(load_policy(ROOT / policy))
    return _DECIDERS[policy]


def _record(case: dict[str, Any]) -> dict[str, Any]:
    record = json.loads((ROOT / case["record"]).read_text(encoding="utf-8"))
    for key in case.get("drop", []):
        del record[key]
    for old, new in case.get("rename", {}).items():
        record[new] = record.pop(old)
    record.update(case.get("set", {}))
    return record


def _words(text: str) -> str:
    return " ".join(text.split())  # a folded YAML line is one line of the message


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_a_record_of_another_kind_is_named_as_such(case: dict[str, Any]) -> None:
    with pytest.raises(InputError) as err:
        _decider(case["policy"]).decide(_record(case), as_of=case.get("as_of"), file="r.json")
    diags, expect = err.value.diagnostics, case["expect"]
    assert err.value.exit_code == 3
    if expect["code"] != CODE:
        assert CODE not in {d.code for d in diags}
        assert expect["code"] in {d.code for d in diags}
        assert set(expect["paths"]) <= {d.path for d in diags}
        return
    [d] = diags  # one cause, not the thirty fields it implies
    assert (d.code, d.path, d.file) == (CODE, "(record)", "r.json")
    for part in expect["message"]:
        assert _words(part) in d.message
    for part in expect.get("hint", []):
        assert part in (d.hint or "")
    for part in expect.get("hint_not", []):
        assert part not in (d.hint or "")


@pytest.mark.parametrize(("versions", "label"), [
    (["2.0.0"], "client record 2.0"), (["1.0.0", "1.1.0"], "client record 1.x"), (["1.1.0"], "client record 1.1"),
    (["1.0.0", "2.0.0"], "the client record of versions 1.0.0, 2.0.0")])
def test_a_record_kind_is_named_after_the_versions_that_read_it(versions: list[str], label: str) -> None:
    assert record_label(versions) == label


def test_the_shape_of_each_reference_version_is_read_from_its_inputs_and_scopes() -> None:
    old, new = (shape_of(load_policy(ROOT / f"policies/loss-client-management/policy-{v}.yaml")) for v in
                ("1.1.0", "2.0.0"))
    assert (old.containers["loan"], old.containers["financials"], old.containers["events"]) == \
        ("object", "list", "object")
    assert {"loan", "financials", "history", "exposure", "events"} <= old.needed
    assert (new.containers["exposures"], new.containers["events"]) == ("list", "list")
    assert "exposures" in new.needed and "events" not in new.needed  # the graded scope's list, not every list
    assert compare(new, {"client_id": "C", "exposures": [], "loan": {}}).fits


def test_every_sample_is_of_the_kind_its_own_version_reads() -> None:
    for folder, version in (("clients", "1.1.0"), ("debtors", "2.0.0")):
        shape = shape_of(load_policy(ROOT / f"policies/loss-client-management/policy-{version}.yaml"))
        for f in sorted((ROOT / "policies/loss-client-management/samples" / folder).glob("*.json")):
            assert not compare(shape, json.loads(f.read_text(encoding="utf-8"))).other_kind, f.name


def test_decide_by_date_refuses_a_1x_record_dated_after_2_0_0_with_one_diagnostic_and_exit_3() -> None:
    client = ROOT / "policies/loss-client-management/samples/clients/06-overdue-30-days.json"
    p = subprocess.run([sys.executable, "cli.py", "--no-audit", "decide", "-p", "loss-client-management",
                        "--as-of", "2026-07-01", "-c", str(client), "--format", "json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 3, p.stderr
    [d] = json.loads(p.stderr)["errors"]
    assert d["code"] == CODE and "version 2.0.0, in force on 2026-07-01, reads client record 2.x" in d["message"]
    assert "--policy-version 1.1.0" in d["hint"] and "Traceback" not in p.stderr


def test_the_same_record_is_decided_by_the_version_in_force_on_its_own_day() -> None:
    client = ROOT / "policies/loss-client-management/samples/clients/06-overdue-30-days.json"
    p = subprocess.run([sys.executable, "cli.py", "--no-audit", "decide", "-p", "loss-client-management",
                        "-c", str(client), "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["policy"]["version"] == "1.1.0"


def _two_versions(folder: Path) -> None:
    """Any policy: ``mini`` 1.0.0 reads one ``loan``, its 2.0.0 a debtor with ``exposures`` (from 2025)."""
    mini = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
    (folder / "policy-1.0.0.yaml").write_text(
        mini.replace("effective_from: 2024-01-01\n", "effective_from: 2024-01-01\neffective_to: 2024-12-31\n"),
        encoding="utf-8")
    multi = (DATA / "scopes" / "policy-multi-exposure.yaml").read_text(encoding="utf-8")
    (folder / "policy-2.0.0.yaml").write_text(
        multi.replace("id: multi-exposure", "id: mini").replace("version: 1.0.0", "version: 2.0.0", 1)
        .replace("effective_from: 2024-01-01", "effective_from: 2025-01-01").replace("tests: tests\n", ""),
        encoding="utf-8")


MINI_1X = {"client_id": "C1", "industry": "trade", "loan": {"days_past_due": 5}, "financials": []}
MINI_2X = {"client_id": "D1", "industry": "trade", "exposures": [{"exposure_id": "E1", "balance": 1.0,
                                                                  "days_past_due": 0}], "events": []}


@pytest.mark.parametrize(("record", "day", "message", "hint"), [
    (MINI_1X, "2025-06-01", "this is a client record 1.0 (it has `loan`, `financials`, no `exposures`); version "
     "2.0.0, in force on 2025-06-01, reads client record 2.0 (with `exposures`)",
     "decide it with --policy-version 1.0.0; or --as-of a day from 2024-01-01 to 2024-12-31 (1.0.0 is in force "
     "then); or restate it as client record 2.0 with `policy-engine convert`"),
    (MINI_2X, "2024-06-01", "this is a client record 2.0 (it has `exposures`, `events`, no `loan`); version 1.0.0, "
     "in force on 2024-06-01, reads client record 1.0 (with `loan`)",
     "decide it with --policy-version 2.0.0; or --as-of 2025-01-01 or later (2.0.0 is in force from 2025-01-01)"),
])
def test_any_policy_with_versions_of_two_record_kinds_names_both(tmp_path: Path, record: dict[str, Any], day: str,
                                                                 message: str, hint: str) -> None:
    _two_versions(tmp_path)
    policy = Registry(tmp_path).select("mini", as_of=day)
    with pytest.raises(InputError) as err:
        Decider(policy).decide(record, as_of=day)
    [d] = err.value.diagnostics
    assert (d.code, d.message, d.hint) == (CODE, message, hint)


def test_a_policy_without_versions_beside_it_keeps_the_field_problems(tmp_path: Path) -> None:
    """Without a version that reads the record, nothing names its kind: its problems are listed as they are."""
    (tmp_path / "policy.yaml").write_text((DATA / "mini-policy.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(InputError) as err:
        Decider(load_policy(tmp_path / "policy.yaml")).decide(MINI_2X, as_of="2025-01-01")
    assert [(d.code, d.path) for d in err.value.diagnostics] == [("missing-field", "loan.days_past_due")]


def test_a_scoped_record_without_its_list_is_decided_when_no_version_reads_it_otherwise(tmp_path: Path) -> None:
    """A debtor with no exposures is "none" to a scoped policy alone; beside a 1.x version it is a 1.x record."""
    _two_versions(tmp_path)
    lone = tmp_path / "lone"
    lone.mkdir()
    (tmp_path / "policy-2.0.0.yaml").rename(lone / "policy-2.0.0.yaml")
    decision = Decider(load_policy(lone / "policy-2.0.0.yaml")).decide(MINI_1X, as_of="2025-06-01")
    assert decision["exposures"] == []
