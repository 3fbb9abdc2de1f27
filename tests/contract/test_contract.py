"""A policy's data contract: the record schema generated from its inputs, and portfolios drawn from them."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from policy_engine.cli import main
from policy_engine.decide.contract import record_schema
from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError, PolicyError
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio.synthetic import generate_policy_columns, policy_clients, write_policy_csv

from ..conftest import POLICIES, REFERENCE, ROOT, SAMPLES

WATCH = Path(__file__).resolve().parent / "watch-list.yaml"
SHIPPED = ROOT / "schemas" / "client.schema.json"


def _run(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


def test_the_shipped_client_schema_is_the_generated_contract_of_client_record_1x() -> None:
    """schemas/client.schema.json is the record 1.1.0 reads (client record 1.x); 2.0.0's is client-2.0."""
    result = _run("schema", "client", "-p", "loss-client-management@1.1.0")
    assert result.exit_code == 0
    assert result.output == SHIPPED.read_text(encoding="utf-8"), \
        "regenerate: policy-engine schema client -p loss-client-management@1.1.0 > schemas/client.schema.json"
    assert _run("schema", "client").output == result.output  # without -p: the shipped file


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_every_sample_client_follows_the_generated_contract_of_both_versions(path: Path) -> None:
    client = json.loads(path.read_text(encoding="utf-8"))
    for version in ("1.0.0", "1.1.0"):
        schema = record_schema(load_policy(REFERENCE / f"policy-{version}.yaml"))
        assert [e.message for e in Draft202012Validator(schema).iter_errors(client)] == []


def test_a_contract_is_built_from_input_paths_nested_objects_and_lists() -> None:
    schema = record_schema(load_policy(WATCH))
    Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["required"] == ["client_id", "borrower", "watch", "quarters"]
    borrower = props["borrower"]
    assert borrower["required"] == ["profile"]  # the required sector is under it
    assert borrower["properties"]["profile"]["properties"]["sector"]["enum"] == ["retail", "shipping", "mining"]
    rating = borrower["properties"]["rating"]
    assert (rating["type"], rating["minimum"], rating["maximum"]) == (["integer", "null"], 1, 8)
    assert props["watch"]["properties"]["prior_level"]["enum"] == ["clear", "level_1", "level_2", None]
    assert props["watch"]["properties"]["litigation_open"]["type"] == "boolean"
    quarters = props["quarters"]
    assert quarters["type"] == "array" and quarters["maxItems"] == 400
    assert "in order of end: oldest first" in quarters["description"]
    item = quarters["items"]
    assert item["type"] == "object" and "required" not in item  # a missing value in a period is null
    assert item["properties"]["revenue"]["minimum"] == 0
    assert "Unit: EUR." in item["properties"]["revenue"]["description"]
    assert "as-of date" in item["properties"]["end"]["description"]


def test_an_input_label_is_the_title_an_editor_shows() -> None:
    schema = record_schema(load_policy(REFERENCE / "policy-2.1.0.yaml"))
    group = schema["properties"]["group"]["properties"]["group_id"]
    assert group["title"] == "所属集团编号 / Group" and "Policy input 'group_id'" in group["description"]
    assert "title" not in schema["properties"]["industry"]  # an input without a label has none


# What the contract refuses, the engine refuses: the schema is the engine's own contract, written down.
MUTATIONS: list[tuple[str, Any]] = [
    ("watch.litigation_open", "__delete__"),        # required
    ("borrower.profile.sector", "farming"),         # not in the enum
    ("borrower.profile.sector", None),              # required, so not null
    ("borrower.rating", 9),                         # above max
    ("borrower.rating", 2.5),                       # not whole
    ("borrower.rating", "3"),                       # a number as text
    ("borrower.last_review", "2024/01/01"),         # not a date
    ("watch.prior_level", "level_9"),               # not a grade
    ("quarters", "__delete__"),                     # a required series
    ("quarters", {"end": "2024-03-31"}),            # a list, not an object
    ("client_id", ""),
]


def _set(record: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(record)
    cur = out
    *parents, last = dotted.split(".")
    for p in parents:
        cur = cur[p]
    if value == "__delete__":
        del cur[last]
    else:
        cur[last] = value
    return out


@pytest.mark.parametrize(("field", "value"), MUTATIONS, ids=[f"{f}={v!r}" for f, v in MUTATIONS])
def test_a_record_the_contract_refuses_is_refused_by_the_engine(field: str, value: Any) -> None:
    policy = load_policy(WATCH)
    validator = Draft202012Validator(record_schema(policy))
    good = next(policy_clients(policy, 1, seed=1))
    assert list(validator.iter_errors(good)) == []
    Decider(policy).decide(good)
    bad = _set(good, field, value)
    assert list(validator.iter_errors(bad)) != []
    with pytest.raises(InputError):
        Decider(policy).decide(bad)


@pytest.mark.parametrize("policy_file", [WATCH, REFERENCE / "policy-1.1.0.yaml"], ids=["watch-list", "reference"])
def test_generated_clients_follow_the_contract_and_are_all_decided(policy_file: Path) -> None:
    policy = load_policy(policy_file)
    validator = Draft202012Validator(record_schema(policy))
    decider = Decider(policy)
    grades = set()
    for client in policy_clients(policy, 400, seed=13):
        assert [e.message for e in validator.iter_errors(client)] == []
        grades.add(decider.decide(client)["classification"]["grade"])
    assert len(grades) >= 2  # values are spread: the portfolio is not one client repeated


def test_generate_p_is_seeded_deterministic_and_batch_decides_every_row(tmp_path: Path) -> None:
    outs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        for suffix in (".csv", ".jsonl"):
            out = tmp_path / f"{name}{suffix}"
            result = _run("generate", "-p", str(WATCH), "--n", "120", "--seed", str(seed), "--out", str(out))
            assert result.exit_code == 0, result.output
            outs[name + suffix] = out.read_bytes()
    assert outs["a.csv"] == outs["b.csv"] and outs["a.jsonl"] == outs["b.jsonl"]
    assert outs["a.csv"] != outs["c.csv"]
    result = _run("batch", str(tmp_path / "a.csv"), "-p", str(WATCH), "--out", str(tmp_path / "d.jsonl"),
                  "--no-audit", "--format", "json")
    summary = json.loads(result.output[result.output.index("{"):])
    assert summary["accounting"] == {"rows_read": 120, "decided": 120, "rejected": 0}


def test_generate_without_p_still_writes_the_tuned_reference_portfolio(tmp_path: Path) -> None:
    # Pinned when the generic generator was added: tests and benchmarks depend on these bytes.
    out = tmp_path / "p.csv"
    assert _run("generate", "--n", "50", "--seed", "7", "--out", str(out)).exit_code == 0
    assert hashlib.sha256(out.read_bytes()).hexdigest() == REFERENCE_50_SEED_7


def test_a_place_keeps_its_values_when_the_policy_gains_an_input() -> None:
    policy = load_policy(WATCH)
    text = WATCH.read_text(encoding="utf-8").replace(
        "inputs:\n", "inputs:\n  extra: {from: borrower.extra, type: number}\n", 1)
    grown = compile_document(load_yaml_text(text, "grown.yaml"))
    a, b = generate_policy_columns(policy, 50, seed=3), generate_policy_columns(grown, 50, seed=3)
    assert "borrower.extra" in b and "borrower.extra" not in a
    assert all([repr(v) for v in a[k]] == [repr(v) for v in b[k]] for k in a)


@pytest.mark.parametrize(("old", "new", "code"), [
    ("key_figures: [negative_cash_quarters, revenue_change]", "key_figures: [negative_cash_quarter]",
     "unknown-name"),
    ("key_figures: [negative_cash_quarters, revenue_change]", "key_figures: [cash_flow]", "unknown-name"),
    ("- id: cash_burn", "- id: default", "reserved-name"),
    ("from: watch.prior_level", "from: borrower", "input-path-conflict"),
    ("from: quarters[*].revenue", "from: quarters.revenue", "input-path-conflict"),
])
def test_a_bad_declaration_is_a_located_error(old: str, new: str, code: str) -> None:
    text = WATCH.read_text(encoding="utf-8")
    assert text.count(old) == 1
    with pytest.raises(PolicyError) as caught:
        compile_document(load_yaml_text(text.replace(old, new), "w.yaml"))
    found = [d for d in caught.value.diagnostics if d.code == code]
    assert found and found[0].line is not None


def test_the_policy_schema_documents_key_figures_and_an_optional_scorecard() -> None:
    schema = json.loads((ROOT / "schemas" / "policy.schema.json").read_text(encoding="utf-8"))
    assert "key_figures" in schema["properties"]
    assert "scorecard" not in schema["required"]


REFERENCE_50_SEED_7 = "a1aa8db1af89001face32f0e30efef17febb1884dd3cf471c4508afbb5039071"


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_batch_and_decide_agree_on_a_policy_without_scorecard_or_segments(tmp_path: Path, suffix: str) -> None:
    # Batch reads a series under any root (here quarters[*]): from wide columns (root[k].x) in a CSV,
    # and from the records' own lists in JSON Lines.
    policy = load_policy(WATCH)
    clients = list(policy_clients(policy, 300, seed=8))
    source = tmp_path / f"w{suffix}"
    if suffix == ".csv":
        write_policy_csv(policy, source, 300, seed=8)
    else:
        source.write_text("".join(json.dumps(c) + "\n" for c in clients), encoding="utf-8")
    result = _run("batch", str(source), "-p", str(WATCH), "--out", str(tmp_path / "d.jsonl"),
                  "--no-audit", "--format", "json")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()]
    decider = Decider(policy)
    seen = set()
    for client, row in zip(clients, rows, strict=True):
        record = decider.decide(client)
        cls = record["classification"]
        assert (row["client_id"], row["grade"], row["decided_by"]) == (client["client_id"], cls["grade"],
                                                                       cls["decided_by"])
        seen.add(cls["decided_by"])
    assert seen == {"default", "cash_burn", "litigation"}


@pytest.mark.parametrize(("args", "code"), [
    (["schema", "client", "-p", "no-such-policy"], 2),
    (["schema", "client", "-p", "loss-client-management@9.9.9"], 2),
    (["schema", "client", "-p", "loss-client-management@"], 2),
    (["schema", "policy", "-p", "loss-client-management"], 2),
    (["generate", "-p", "no-such-policy", "--out", "x.csv"], 2),
    (["generate", "-p", "loss-client-management", "--out", "x.parquet"], 2),
])
def test_contract_commands_refuse_bad_references_with_a_usage_error(args: list[str], code: int) -> None:
    result = _run(*args)
    assert result.exit_code == code
    assert "Traceback" not in result.output


def test_schema_client_of_an_invalid_policy_file_is_exit_4(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text("id: broken\n", encoding="utf-8")
    assert _run("schema", "client", "-p", str(tmp_path / "policy.yaml")).exit_code == 4
