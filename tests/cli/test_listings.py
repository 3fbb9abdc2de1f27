"""catalogue and functions as JSON for tools and editors, with each parameter's allowed values."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.language.expressions import FUNCTIONS, OPERATOR_REFERENCE
from policy_engine.policy.catalogue import CATALOGUE

from ..conftest import REFERENCE, ROOT


def _run(*args: str) -> str:
    r = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return r.stdout


def test_catalogue_json_has_every_action_with_parameter_ranges() -> None:
    entries = {e["action"]: e for e in json.loads(_run("catalogue", "--format", "json"))}
    assert list(entries) == list(CATALOGUE)
    months = entries["extend_term"]["params"]["months"]
    assert months == {"type": "integer", "required": True, "min": 1, "max": 120, "enum": None,
                      "allowed": "whole numbers in [1, 120]", "labels": None,
                      "shown": {"zh": "展期{value}个月", "en": "by {value} months"}}
    assert entries["extend_term"]["may_restructure"] is True and entries["add_collateral"]["never_restructure"]
    cadence = entries["review_meeting"]["params"]["cadence"]
    assert cadence["enum"] == ["monthly", "quarterly", "semiannual"] and cadence["min"] is None
    for name, action in CATALOGUE.items():
        for pname, spec in action.params.items():
            got = entries[name]["params"][pname]
            assert (got["min"], got["max"], got["required"]) == (spec.min, spec.max, spec.required)


def test_catalogue_text_shows_what_each_parameter_takes() -> None:
    text = _run("catalogue")
    assert "    months: whole numbers in [1, 120]" in text
    assert "    target_ltv (optional): numbers in [0, 2]" in text
    assert "    services: a list of financial_advisory, market_analysis," in text
    assert "    never beside: restructure (with grace_months above zero), extend_term" in text  # as JSON's conflicts
    assert "write_off_or_transfer  Propose a transfer or write-off" in text  # the longest id keeps the columns


def test_catalogue_text_words_an_open_range() -> None:
    from ..conftest import ROOT

    r = CliRunner().invoke(main, ["--policies", str(ROOT / "examples" / "policies"), "catalogue", "-p",
                                  "pf-covenant-monitor@1.1.0", "--format", "text"])
    assert r.exit_code == 0 and "amount: numbers, at least 0" in r.stdout and "[0, ]" not in r.stdout


def test_functions_json_lists_every_function_with_its_arity() -> None:
    listing = json.loads(_run("functions", "--format", "json"))
    entries = listing["functions"]
    assert [e["name"] for e in entries] == list(FUNCTIONS)
    assert [(o["syntax"], o["doc"]) for o in listing["operators"]] == [tuple(o) for o in OPERATOR_REFERENCE]
    rnd = next(e for e in entries if e["name"] == "round")
    assert (rnd["min_args"], rnd["max_args"], rnd["signature"]) == (1, 2, "round(x, digits) -> number")
    assert rnd["literal_args"] == [1]


def test_functions_listing_shows_windows_operators_and_stages_from_the_table() -> None:
    entries = {e["name"]: e for e in json.loads(_run("functions", "--format", "json"))["functions"]}
    assert (entries["count_last"]["window_arg"], entries["count_last"]["operator_arg"]) == (1, 2)
    assert entries["fired"]["first_stage"] == "action" and entries["abs"]["window_arg"] is None
    text = _run("functions")
    assert "(only in metrics after classification, warnings and actions)" in text
    assert "(only in actions)" in text and "add_months(d, n) -> date" in text


@pytest.mark.parametrize("command", ["decide", "explain", "batch", "catalogue"])
@pytest.mark.parametrize("wrong", ["policies/loss-client-management/tests/classification.yaml",
                                   "scenarios/collateral-crash.yaml",
                                   "policies/loss-client-management/samples/clients/01-pass-healthy-manufacturer.json",
                                   "policies/loss-client-management/samples/portfolio.csv"])
def test_a_test_file_or_scenario_given_as_the_policy_is_a_usage_error(command: str, wrong: str) -> None:
    """It was exit 4 with a dozen errors about keys a policy needs, as if the policy were broken, where diff and
    impact said not-a-policy (exit 2): a wrong path in a job's settings went to the policy authors (a CI review).
    So was a client record given as -p (-p and -c swapped), and a portfolio table."""
    client = str(REFERENCE / "samples" / "clients" / "01-pass-healthy-manufacturer.json")
    args = {"decide": ["decide", "--no-audit", "-c", client], "explain": ["explain", "-c", client],
            "batch": ["batch", str(REFERENCE / "samples" / "portfolio.jsonl"), "--no-audit"],
            "catalogue": ["catalogue"]}[command]
    r = CliRunner().invoke(main, [*args, "-p", str(ROOT / wrong), "--format", "json"])
    assert r.exit_code == 2, r.stderr
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "not-a-policy"



# (the file given as -c, what it is said to be, its code, exit code): a policy given as -c (-p and -c swapped) was
# "bad-json: invalid JSON at line 1 column 1" (exit 3), as if the client record were broken; a file that is no JSON
# and none of these keeps its JSON error.
NOT_A_CLIENT = [
    pytest.param("policies/loss-client-management/policy-1.1.0.yaml", "a policy, not a client record",
                 "not-a-client", 2, id="policy"),
    pytest.param("policies/loss-client-management/tests/classification.yaml", "a policy test file, not a client",
                 "not-a-client", 2, id="test-file"),
    pytest.param("scenarios/collateral-crash.yaml", "a stress scenario, not a client", "not-a-client", 2,
                 id="scenario"),
    pytest.param("policies/financial-difficulty/module-1.0.0.yaml", "a module", "not-a-client", 2, id="module"),
    pytest.param("policies/loss-client-management/samples/portfolio.jsonl", "a portfolio of JSON Lines, not one",
                 "not-a-client", 2, id="json-lines"),
    pytest.param("README.md", None, "bad-json", 3, id="no-kind-stays-bad-json"),
]


@pytest.mark.parametrize("command", ["decide", "explain"])
@pytest.mark.parametrize(("given", "said", "code", "exit_code"), NOT_A_CLIENT)
def test_a_policy_given_as_the_client_is_named_as_what_it_is(command: str, given: str, said: str | None, code: str,
                                                             exit_code: int) -> None:
    args = ["decide", "--no-audit"] if command == "decide" else ["explain"]
    r = CliRunner().invoke(main, [*args, "-p", "loss-client-management@1.1.0", "-c", str(ROOT / given),
                                  "--format", "json"])
    assert r.exit_code == exit_code, r.stderr
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == code
    if said is not None:
        assert said in error["message"]
    if given.endswith("policy-1.1.0.yaml"):
        assert error["hint"].startswith("pass it with -p")


def test_a_binary_portfolio_given_as_the_policy_is_named_before_it_is_read(tmp_path: Path) -> None:
    """Read as YAML, a Parquet file was an error about its bytes, exit 4, as if a policy were broken."""
    table = tmp_path / "portfolio.parquet"
    table.write_bytes(b"PAR1\x00\x15\x04\xff\xfe" * 8)
    client = str(REFERENCE / "samples" / "clients" / "01-pass-healthy-manufacturer.json")
    for args in (["decide", "--no-audit", "-c", client], ["explain", "-c", client], ["diff", str(table), client]):
        r = CliRunner().invoke(main, [*args, *(["-p", str(table)] if args[0] != "diff" else []), "--format", "json"])
        assert r.exit_code == 2, r.stderr
        [error] = json.loads(r.stderr)["errors"]
        assert (error["code"], error["message"]) == ("not-a-policy", f"{table} is a portfolio table (Parquet), not a "
                                                                     "policy")
