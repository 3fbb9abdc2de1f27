"""The CLI on a policy with scopes: decide, explain and audit on the row path; batch refuses a table (exit 2)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from click.testing import CliRunner, Result

from policy_engine.cli import main

from ..conftest import DATA

SCOPES = DATA / "scopes"
POLICY = str(SCOPES / "policy-multi-exposure.yaml")
CLIENT = SCOPES / "clients" / "three-exposures.json"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _client(tmp_path: Path, dpd: dict[int, int]) -> str:
    c = json.loads(CLIENT.read_text("utf-8"))
    for i, v in dpd.items():
        c["exposures"][i]["days_past_due"] = v
    path = tmp_path / "debtor.json"
    path.write_text(json.dumps(c), "utf-8")
    return str(path)


def test_batch_refuses_a_csv_for_a_multi_exposure_policy_and_says_how_to_give_debtors(tmp_path: Path) -> None:
    table = tmp_path / "debtors.csv"
    table.write_text("client_id,industry\nD1,x\n", "utf-8")
    r = run("batch", str(table), "-p", POLICY, "--no-audit")
    assert r.exit_code == 2
    assert "a .csv row cannot hold a debtor with several exposures" in r.stderr
    assert "JSON Lines (.jsonl)" in r.stderr
    assert "policy-engine convert TABLE --to 2.0" in r.stderr  # a table of 1.x clients has a way in
    assert "scoped-policy-in-table" in r.stderr and "Traceback" not in r.stderr


def test_decide_refuses_duplicate_exposure_ids_with_exit_3(tmp_path: Path) -> None:
    c = json.loads(CLIENT.read_text("utf-8"))
    c["exposures"][1]["exposure_id"] = "E1"
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(c), "utf-8")
    r = run("decide", "-p", POLICY, "-c", str(path), "--no-audit")
    assert r.exit_code == 3
    assert "exposures[1].exposure_id" in r.stderr and "duplicate-key" in r.stderr


def test_explain_shows_each_exposure_in_both_languages(tmp_path: Path) -> None:
    client = _client(tmp_path, {2: 100})
    en = run("decide", "-p", POLICY, "-c", client, "--no-audit", "--format", "text")
    assert en.exit_code == 0, en.stderr
    assert "worst of its exposures' final grades (exposure E3, rule overdue_90)" in en.stdout
    assert "  - E3: Substandard (substandard), decided by overdue_90" in en.stdout
    assert "  - E1: Normal (normal), no floor fired" in en.stdout
    zh = run("decide", "-p", POLICY, "-c", client, "--no-audit", "--format", "text", "--lang", "zh")
    assert "  - E3：次级（substandard），由 overdue_90 决定" in zh.stdout


def test_explain_marks_a_debtor_floor_on_each_exposure(tmp_path: Path) -> None:
    r = run("decide", "-p", POLICY, "-c", _client(tmp_path, {1: 95}), "--no-audit", "--format", "text")
    assert "fired: contagion_10pct (debtor rule)" in r.stdout


def test_audit_stores_and_replays_the_exposures_exactly(tmp_path: Path) -> None:
    db = str(tmp_path / "audit.db")
    r = run("--audit-db", db, "decide", "-p", POLICY, "-c", _client(tmp_path, {1: 95}))
    assert r.exit_code == 0, r.stderr
    stored = json.loads(r.stdout)
    replay = run("--audit-db", db, "audit", "replay", "--all")
    assert replay.exit_code == 0, replay.stderr
    assert '"status": "identical"' in replay.stdout
    shown = run("--audit-db", db, "audit", "show", "1", "--format", "json")
    assert json.loads(shown.stdout)["decision"]["exposures"] == stored["exposures"]


def test_schema_client_generates_the_nested_record_schema() -> None:
    r = run("schema", "client", "-p", POLICY)
    assert r.exit_code == 0, r.stderr
    schema = json.loads(r.stdout)
    exposures = schema["properties"]["exposures"]
    assert exposures["maxItems"] == 5 and exposures["items"]["required"][0] == "exposure_id"
    payments = exposures["items"]["properties"]["schedule"]
    assert payments["maxItems"] == 24 and payments["items"]["required"] == ["due_date"]
    assert "exposures" not in schema["required"]  # no exposures: an empty list
    from jsonschema import Draft202012Validator

    good = json.loads(CLIENT.read_text("utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(good)) == []
    bad = copy.deepcopy(good)
    bad["exposures"] = bad["exposures"] * 2
    assert list(Draft202012Validator(schema).iter_errors(bad))  # 6 exposures: more than the policy's max


def test_schema_client_of_a_scope_with_a_min_requires_its_list(tmp_path: Path) -> None:
    text = Path(POLICY).read_text("utf-8").replace("key: exposure_id, max: 5", "key: exposure_id, max: 5, min: 1")
    (tmp_path / "policy-1.0.0.yaml").write_text(text, "utf-8")
    r = run("schema", "client", "-p", str(tmp_path / "policy-1.0.0.yaml"))
    schema = json.loads(r.stdout)
    exposures = schema["properties"]["exposures"]
    assert "exposures" in schema["required"] and (exposures["type"], exposures["minItems"]) == ("array", 1)
    from jsonschema import Draft202012Validator

    good = json.loads(CLIENT.read_text("utf-8"))
    assert list(Draft202012Validator(schema).iter_errors(good)) == []
    assert list(Draft202012Validator(schema).iter_errors({**good, "exposures": []}))
    assert list(Draft202012Validator(schema).iter_errors({k: v for k, v in good.items() if k != "exposures"}))


def test_diff_sees_the_exposure_rules_and_the_scopes(tmp_path: Path) -> None:
    text = Path(POLICY).read_text("utf-8").replace("version: 1.0.0", "version: 1.1.0", 1)
    text = text.replace("when: dpd > 90, floor: substandard", "when: dpd > 80, floor: substandard")
    text = text.replace("order_by: due_date, max: 24", "order_by: due_date, max: 36")
    text = text.replace("key: exposure_id, max: 5", "key: exposure_id, max: 5, min: 1")
    new = tmp_path / "policy-multi-exposure-1.1.0.yaml"
    new.write_text(text, "utf-8")
    r = run("diff", POLICY, str(new), "--format", "text")
    assert r.exit_code == 0, r.stderr
    assert "floor overdue_90: threshold 90 -> 80" in r.stdout
    assert "scope payment: max 24 -> 36" in r.stdout
    assert "scope exposure: min" in r.stdout and "-> 1" in r.stdout
