"""Reference policy 2.0.0 (draft): client record 2.0, its samples and its policy tests, next to 1.x.

2.0.0 decides from facts (modifications, payment histories, bureau amounts) a debtor with several
exposures. It is a draft until batch decides scoped policies, so the date choice must still give 1.1.0.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from policy_engine.cli import main
from policy_engine.decide.evaluate import decide
from policy_engine.policy.registry import Registry, load_policy
from policy_engine.review.tester import coverage, run_tests

from ..conftest import POLICIES, REFERENCE, ROOT

POLICY_2 = REFERENCE / "policy-2.0.0.yaml"
SHIPPED_2 = ROOT / "schemas" / "client-2.0.schema.json"
DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))


@pytest.fixture(scope="module")
def policy2() -> Any:
    return load_policy(POLICY_2)


def _debtor(prefix: str) -> dict[str, Any]:
    return json.loads(next(f for f in DEBTORS if f.name.startswith(prefix)).read_text(encoding="utf-8"))


def test_the_shipped_client_record_2_schema_is_the_generated_contract_of_2_0_0() -> None:
    result = CliRunner().invoke(main, ["--policies", str(POLICIES), "schema", "client", "-p",
                                       "loss-client-management@2.0.0"], catch_exceptions=False)
    assert result.exit_code == 0
    assert result.output == SHIPPED_2.read_text(encoding="utf-8"), \
        "regenerate: policy-engine schema client -p loss-client-management@2.0.0 > schemas/client-2.0.schema.json"


def test_every_input_of_2_0_0_says_what_the_fact_is_and_who_owns_it(policy2: Any) -> None:
    missing = [s.name for s in policy2.inputs if "owner" not in (s.description or "")]
    assert missing == []


def test_every_floor_of_2_0_0_cites_an_article_of_the_2023_measures(policy2: Any) -> None:
    for rule in policy2.floors:
        assert re.search(r"《商业银行金融资产风险分类办法》第.+条", rule.source or ""), rule.id


def test_there_are_about_twenty_sample_debtors_several_with_several_exposures_and_histories() -> None:
    records = [json.loads(f.read_text(encoding="utf-8")) for f in DEBTORS]
    assert len(records) >= 20
    multi = [r for r in records if 2 <= len(r["exposures"]) <= 4 and any(e["schedule"] for e in r["exposures"])]
    assert len(multi) >= 10


@pytest.mark.parametrize("path", DEBTORS, ids=[p.stem for p in DEBTORS])
def test_every_sample_debtor_follows_client_record_2_and_is_decided_per_exposure(path: Path, policy2: Any) -> None:
    client = json.loads(path.read_text(encoding="utf-8"))
    schema = json.loads(SHIPPED_2.read_text(encoding="utf-8"))
    assert [e.message for e in Draft202012Validator(schema).iter_errors(client)] == []
    record = decide(policy2, client)
    assert [e["exposure_id"] for e in record["exposures"]] == [e["exposure_id"] for e in client["exposures"]]


def test_a_1x_record_is_refused_by_2_0_0_naming_its_kind_not_every_missing_fact(policy2: Any) -> None:
    old = json.loads(next((REFERENCE / "samples" / "clients").glob("01-*.json")).read_text(encoding="utf-8"))
    result = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", "decide", "-p",
                                       "loss-client-management", "--policy-version", "2.0.0", "-c", "-",
                                       "--format", "json"], input=json.dumps(old), catch_exceptions=False)
    assert result.exit_code == 3
    [error] = json.loads(result.stderr)["errors"]
    assert error["code"] == "wrong-record-kind" and "this is a client record 1.x" in error["message"]
    assert "reads client record 2.x (with `exposures`" in error["message"]
    assert "--policy-version 1.1.0" in error["hint"] and "policy-engine convert" in error["hint"]


def test_2_0_0_is_in_force_from_2026_07_01_and_1_1_0_until_the_day_before() -> None:
    registry = Registry(POLICIES)
    assert registry.select("loss-client-management", as_of="2026-06-30").version == "1.1.0"
    assert registry.select("loss-client-management", as_of="2026-07-01").version == "2.0.0"
    assert registry.select("loss-client-management", as_of="2026-12-31").version == "2.0.0"
    assert registry.select("loss-client-management", as_of="2027-01-01").version == "2.0.1"
    assert registry.select("loss-client-management", version="2.0.0").status == "active"


POLICY_2_0_1 = REFERENCE / "policy-2.0.1.yaml"
_OWN = ("decision_id", "evaluated_at", "policy")  # what names the version that decided


@pytest.mark.parametrize("path", DEBTORS, ids=lambda p: p.stem)
def test_2_0_1_decides_every_sample_debtor_as_2_0_0_does(path: Path, policy2: Any) -> None:
    """2.0.1 only words the restructuring measure: grades, floors, states, warnings and actions are 2.0.0's."""
    client = json.loads(path.read_text(encoding="utf-8"))
    a, b = decide(policy2, client), decide(load_policy(POLICY_2_0_1), client)
    assert {k: v for k, v in a.items() if k not in _OWN} == {k: v for k, v in b.items() if k not in _OWN}
    assert (a["policy"]["version"], b["policy"]["version"]) == ("2.0.0", "2.0.1")


def test_2_0_1_words_every_concession_the_restructuring_test_counts() -> None:
    """Each measure the module's test counts as a concession has words in both languages, and no label names a
    measure the input does not allow (a misspelt label would never be shown)."""
    import yaml

    module = yaml.safe_load((POLICIES / "financial-difficulty" / "module-1.1.0.yaml").read_text(encoding="utf-8"))
    metric = module["metrics"]["restructuring_measure"]
    concessions = set(re.findall(r"'(\w+)'", metric["expr"]))
    assert set(metric["labels"]) == concessions and concessions <= set(module["inputs"]["measure"]["enum"])
    assert all(words["zh"] and words["en"] for words in metric["labels"].values())


def test_the_policy_tests_of_2_0_1_pass_with_every_rule_pinned_both_ways() -> None:
    run = run_tests([POLICY_2_0_1])
    assert run.diagnostics == [] and run.failed == 0 and run.passed >= 60
    assert coverage(run)["loss-client-management@2.0.1"].percent == 100.0


def test_the_policy_tests_of_2_0_0_pass_with_every_rule_pinned_both_ways() -> None:
    run = run_tests([POLICY_2])
    assert run.diagnostics == []
    assert run.failed == 0 and run.passed >= 60
    cov = coverage(run)["loss-client-management@2.0.0"]
    assert cov.percent == 100.0


def test_the_decision_shows_the_restructuring_and_the_restarted_clock_with_their_dates(policy2: Any) -> None:
    record = decide(policy2, _debtor("13-"))
    e1 = record["exposures"][0]
    assert e1["decided_by"] == "restructured_in_observation"
    assert {k: e1["metrics"][k] for k in ("restructuring_date", "observation_first_due", "observation_start",
                                          "observation_end", "observation_restarted")} == {
        "restructuring_date": "2025-09-30", "observation_first_due": "2025-10-20",
        "observation_start": "2026-03-20", "observation_end": "2027-03-20", "observation_restarted": True}


def test_a_rate_cut_for_a_healthy_debtor_is_no_restructuring_where_1_1_0_trusted_the_callers_flag(policy2: Any) -> None:
    record = decide(policy2, _debtor("11-"))
    assert record["classification"]["grade"] == "pass"
    assert record["exposures"][0]["metrics"]["restructuring_count"] == 0
    assert [w["id"] for w in record["warnings"]] == ["modification_not_restructuring"]


def test_the_rule_table_of_the_reference_page_names_every_floor_and_derived_state(policy2: Any) -> None:
    """docs/reference-policy-2.md maps each rule of the Measures to its test: a floor left out is a rule unmapped."""
    page = (ROOT / "docs" / "reference-policy-2.md").read_text(encoding="utf-8")
    assert policy2.scoped is not None
    floors = [r.id for r in (*policy2.floors, *policy2.scoped.floors)]
    derived = [m.name for m in policy2.scoped.metrics if policy2.imported.get(m.name) == "financial-difficulty 1.0.0"]
    assert len(floors) >= 17 and len(derived) == 8
    assert [n for n in (*floors, *derived) if f"`{n}`" not in page] == []
