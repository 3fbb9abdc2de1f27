"""The decision shows which table cell it read: table, key values, value, interpolation points, the rules."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from policy_engine.decide.evaluate import Decider
from policy_engine.decide.explain import explain
from policy_engine.policy.compiler import CompiledPolicy, check_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.schemas import load_schema

from ..compile.test_tables import BASE, INPUTS

TABLES = """\
  pd_by_rating:
    description: Probability of default by internal rating.
    table: {key: rating, values: {1: 0.001, 2: 0.002, 3: 0.004, 4: 0.02}}
  lgd_by_ltv:
    table: {key: ltv, interpolate: linear, values: {0.5: 0.2, 0.8: 0.35, 1.0: 0.45}}
  watch_by_band:
    table:
      keys: [band, industry]
      values:
        A: {manufacturing: false, trade: false}
        B: {manufacturing: false, trade: true}
        C: {manufacturing: true, trade: true}
"""
METRICS = """\
  expected_loss: {expr: "lookup(pd_by_rating, rating) * lookup(lgd_by_ltv, ltv)", informational: true}
"""
WARNING = """\
  - id: watch_band
    when: lookup(watch_by_band, band, industry) or lookup(pd_by_rating, rating) >= 0.02
    severity: medium
    category: repayment
    message: {zh: 关注, en: watch}
"""


def _policy() -> CompiledPolicy:
    text = BASE.replace("inputs:\n", "inputs:\n" + INPUTS, 1).replace("parameters:\n", "parameters:\n" + TABLES, 1)
    text = text.replace("metrics:\n", "metrics:\n" + METRICS, 1).replace("warnings:\n", "warnings:\n" + WARNING, 1)
    diags, policy = check_document(load_yaml_text(text, "policy.yaml"))
    assert policy is not None, [d.render() for d in diags]
    return policy


def _client(**fields: Any) -> dict[str, Any]:
    return {"client_id": "c", "as_of": "2025-06-30", "industry": "trade", "loan": {"days_past_due": 0},
            "financials": [], **fields}


def test_the_record_names_each_cell_read_and_validates() -> None:
    record = Decider(_policy()).decide(_client(rating=3, ltv=0.65, band="B"))
    assert record["lookups"] == [
        {"table": "pd_by_rating", "keys": {"rating": 3}, "value": 0.004, "read_by": ["expected_loss", "watch_band"]},
        {"table": "lgd_by_ltv", "keys": {"ltv": 0.65}, "value": record["metrics"]["expected_loss"] / 0.004,
         "points": [[0.5, 0.2], [0.8, 0.35]], "read_by": ["expected_loss"]},
        {"table": "watch_by_band", "keys": {"band": "B", "industry": "trade"}, "value": True,
         "read_by": ["watch_band"]},
    ]
    assert [w["id"] for w in record["warnings"]] == ["watch_band"]
    assert list(Draft202012Validator(load_schema("decision")).iter_errors(record)) == []


def test_a_clamped_cell_names_its_end_point_and_a_null_key_gives_null() -> None:
    cells = {c["table"]: c for c in Decider(_policy()).decide(_client(rating=1, ltv=1.7))["lookups"]}
    assert cells["lgd_by_ltv"]["value"] == 0.45 and cells["lgd_by_ltv"]["points"] == [[1.0, 0.45]]
    assert cells["watch_by_band"]["keys"] == {"band": None, "industry": "trade"}
    assert cells["watch_by_band"]["value"] is None
    none = {c["table"]: c for c in Decider(_policy()).decide(_client())["lookups"]}
    assert none["lgd_by_ltv"] == {"table": "lgd_by_ltv", "keys": {"ltv": None}, "value": None, "points": [],
                                  "read_by": ["expected_loss"]}


def test_the_explanation_shows_where_a_threshold_came_from() -> None:
    policy = _policy()
    text = explain(Decider(policy).decide(_client(rating=3, ltv=0.9, band="C")), policy, "en")
    assert "  pd_by_rating[rating=3] = 0.004 <- expected_loss, watch_band" in text
    assert "  lgd_by_ltv[ltv=0.9] = 0.4 (interpolated between (0.8: 0.35) / (1: 0.45)) <- expected_loss" in text
    assert "  watch_by_band[band=C, industry=trade] = true <- watch_band" in text
    assert "查表取值" in explain(Decider(policy).decide(_client(rating=3)), policy, "zh")


def test_a_policy_without_tables_has_no_lookups_in_its_record() -> None:
    from ..conftest import DATA

    _, policy = check_document(load_yaml_text((DATA / "mini-policy.yaml").read_text("utf-8"), "mini.yaml"))
    assert policy is not None
    assert "lookups" not in Decider(policy).decide(_client())


def test_a_table_keyed_by_an_exposure_input_is_read_per_exposure(tmp_path: Any) -> None:
    import json

    from policy_engine.portfolio.scoped_batch import run_scoped_batch

    from ..conftest import DATA

    text = (DATA / "scopes" / "policy-multi-exposure.yaml").read_text("utf-8")
    band = "  band: {scope: exposure, from: band, type: string, required: true, enum: [A, B]}\n"
    table = "  lgd_by_band: {table: {key: band, values: {A: 0.2, B: 0.45}}}\n"
    text = text.replace("  dpd: {scope: exposure,", band + "  dpd: {scope: exposure,", 1)
    text = text.replace("  contagion_share: {value: 0.1}\n", "  contagion_share: {value: 0.1}\n" + table)
    text = text.replace("expr: \"balance * (0.5 if grade_at_least('substandard') else 0.01)\"",
                        "expr: \"balance * lookup(lgd_by_band, band)\"")
    diags, policy = check_document(load_yaml_text(text, "policy.yaml"))
    assert policy is not None, [d.render() for d in diags]
    client = json.loads((DATA / "scopes" / "clients" / "three-exposures.json").read_text("utf-8"))
    for i, exposure in enumerate(client["exposures"]):
        exposure["band"] = "AB"[i % 2]
    record = Decider(policy).decide(client)
    assert [e["metrics"]["expected_loss"] for e in record["exposures"]] == [
        e["balance"] * (0.2 if e["band"] == "A" else 0.45) for e in client["exposures"]]
    # each exposure's cell, after the debtor's (none here), naming its exposure: the audit trail of its metric
    assert record["lookups"] == [
        {"table": "lgd_by_band", "exposure": e["exposure_id"], "keys": {"band": e["band"]},
         "value": 0.2 if e["band"] == "A" else 0.45, "read_by": ["expected_loss"]} for e in client["exposures"]]
    assert list(Draft202012Validator(load_schema("decision")).iter_errors(record)) == []
    text = explain(record, policy, "en")
    first = client["exposures"][0]
    assert f"  {first['exposure_id']}: lgd_by_band[band=A] = 0.2 <- expected_loss" in text
    path = tmp_path / "d.jsonl"  # the records batch writes read the same cells
    path.write_text(json.dumps(client) + "\n", encoding="utf-8")
    [again] = run_scoped_batch(policy, path).records()
    assert again["lookups"] == record["lookups"]
