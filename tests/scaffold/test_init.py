"""`policy-engine init NAME`: from an empty folder, init then validate then test passes."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.review.tester import run_tests
from policy_engine.scaffold import init


@pytest.fixture
def empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()  # no configuration from a parent folder
    for var in ("POLICY_ENGINE_POLICIES", "POLICY_ENGINE_CONFIG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_init_then_validate_then_test_passes_from_an_empty_folder(empty: Path) -> None:
    r = _run("init", "sme-working-capital")
    assert r.exit_code == 0, r.stderr
    folder = empty / "policies" / "sme-working-capital"
    assert sorted(p.relative_to(empty).as_posix() for p in empty.rglob("*") if p.is_file()) == [
        "policies/sme-working-capital/client.schema.json", "policies/sme-working-capital/policy-1.0.0.yaml",
        "policies/sme-working-capital/samples/clients/example.json", "policies/sme-working-capital/tests/basic.yaml",
        "schemas/policy-tests.schema.json", "schemas/policy.schema.json"]
    v = _run("validate", "--format", "json")
    assert v.exit_code == 0, v.stdout
    checked, tests = json.loads(v.stdout)["files"]
    assert checked["policy"] == "sme-working-capital@1.0.0" and checked["diagnostics"] == []  # no lint finding
    assert (tests["kind"], tests["ok"], tests["diagnostics"]) == ("policy-tests", True, [])  # its test file too
    t = _run("test", "--format", "json")
    assert t.exit_code == 0, t.stdout
    assert (json.loads(t.stdout)["passed"], json.loads(t.stdout)["failed"]) == (1, 0)
    d = _run("decide", "-p", "sme-working-capital", "-c", str(folder / "samples/clients/example.json"), "--no-audit",
             "--format", "json")
    assert d.exit_code == 0 and json.loads(d.stdout)["classification"]["grade"] == "pass"


def test_the_modelines_point_at_the_schemas(empty: Path) -> None:
    assert _run("init", "abc").exit_code == 0
    for f, schema in (("policies/abc/policy-1.0.0.yaml", "policy"), ("policies/abc/tests/basic.yaml", "policy-tests")):
        first = (empty / f).read_text(encoding="utf-8").splitlines()[0]
        m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
        assert m and m[1].endswith(f"/{schema}.schema.json")
        assert ((empty / f).parent / m[1]).resolve() == (empty / "schemas" / f"{schema}.schema.json").resolve()


def test_init_never_overwrites_and_refuses_a_bad_name(empty: Path) -> None:
    (empty / "schemas").mkdir()
    (empty / "schemas" / "policy.schema.json").write_text("{}", encoding="utf-8")
    assert _run("init", "abc").exit_code == 0
    assert (empty / "schemas" / "policy.schema.json").read_text(encoding="utf-8") == "{}"  # kept as it was
    policy = empty / "policies" / "abc" / "policy-1.0.0.yaml"
    policy.write_text("# edited\n", encoding="utf-8")
    again = _run("init", "abc")
    assert again.exit_code == 2 and "policy-exists" in again.stderr and "nothing was written" in again.stderr
    assert policy.read_text(encoding="utf-8") == "# edited\n"
    bad = _run("init", "My Policy")
    assert bad.exit_code == 2 and "bad-policy-name" in bad.stderr and not (empty / "policies" / "My Policy").exists()


def test_init_writes_into_the_configured_policies_folder(empty: Path) -> None:
    (empty / "policy-engine.toml").write_text('policies = "rules"\n', encoding="utf-8")
    assert _run("init", "abc").exit_code == 0
    assert (empty / "rules" / "abc" / "policy-1.0.0.yaml").is_file()
    assert _run("test", "--format", "json").exit_code == 0


@pytest.mark.parametrize("day", ["2025-01-01", "2025-03-31", "2025-04-01", "2025-12-31", "2024-02-29"])
def test_the_sample_client_is_valid_whatever_the_day(tmp_path: Path, day: str) -> None:
    # The sample's quarters end before its as_of day, oldest first: the case passes on any day init runs.
    init("abc", tmp_path / "policies", today=dt.date.fromisoformat(day))
    client = json.loads((tmp_path / "policies/abc/samples/clients/example.json").read_text(encoding="utf-8"))
    ends = [p["period_end"] for p in client["financials"]]
    assert ends == sorted(ends) and ends[-1] < day and len(set(ends)) == 2
    run = run_tests([tmp_path / "policies"])
    assert (run.passed, run.failed, run.diagnostics) == (1, 0, [])


def test_the_new_policy_gets_its_own_client_schema(empty: Path) -> None:
    # The record the new policy reads, not the reference policy's: the sample client passes it, and it is
    # what `schema client -p` prints for the policy.
    import jsonschema

    assert _run("init", "abc").exit_code == 0
    written = (empty / "policies/abc/client.schema.json").read_text(encoding="utf-8")
    assert _run("schema", "client", "-p", "abc").stdout == written
    schema = json.loads(written)
    client = json.loads((empty / "policies/abc/samples/clients/example.json").read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator(schema).validate(client)
    assert set(schema["properties"]) >= {"loan", "financials"} and "restructuring" not in schema["properties"]


def test_init_debtor_starts_a_policy_with_scopes_that_passes_at_full_coverage(empty: Path) -> None:
    """A policy for debtors with several exposures: exposure floors, payments, a debtor aggregation and the
    10% contagion rule (not at exactly 10%: the share in fen), five cases pinning each rule both ways, a sample
    debtor; generate draws for it."""
    r = _run("init", "sme-renewal", "--debtor")
    assert r.exit_code == 0, r.output
    folder = empty / "policies" / "sme-renewal"
    v = _run("validate", "--format", "json")
    assert v.exit_code == 0 and all(f["diagnostics"] == [] for f in json.loads(v.stdout)["files"])
    t = _run("test", "--coverage", "--min-coverage", "100", "--format", "json")
    assert t.exit_code == 0, t.stdout
    report = json.loads(t.stdout)
    assert (report["passed"], report["failed"]) == (5, 0)
    assert report["coverage"]["sme-renewal@1.0.0"]["percent"] == 100.0
    exactly = next(c for c in report["cases"] if c["name"].startswith("exactly 10%"))
    assert exactly["passed"]
    # The policy file alone: its cases are in tests/ beside it (init writes no `tests:` key)
    t = _run("test", str(folder / "policy-1.0.0.yaml"), "--coverage", "--format", "json")
    assert t.exit_code == 0, t.stdout
    assert (json.loads(t.stdout)["passed"], json.loads(t.stdout)["failed"]) == (5, 0)
    d = _run("decide", "-p", "sme-renewal", "-c", str(folder / "samples/clients/example.json"), "--no-audit",
             "--format", "json")
    record = json.loads(d.stdout)
    assert d.exit_code == 0 and record["classification"]["grade"] == "pass"
    assert [e["exposure_id"] for e in record["exposures"]] == ["E1", "E2"]
    # generate picks a day the new policy decides (its version starts today, after generate's usual day)
    g = _run("generate", "-p", "sme-renewal", "--n", "30", "--out", "d.jsonl")
    assert g.exit_code == 0, g.output
    b = _run("batch", "d.jsonl", "-p", "sme-renewal", "--no-audit", "--format", "json")
    assert b.exit_code == 0 and json.loads(b.stdout)["accounting"] == {"rows_read": 30, "decided": 30, "rejected": 0}
