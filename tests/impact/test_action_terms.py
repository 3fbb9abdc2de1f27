"""impact and an action's terms: the same action id given on both sides is a changed action when its type, a fixed
parameter or a computed parameter's value moved; ``batch`` tables carry each computed parameter's value."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.compiler import CompiledPolicy, compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.portfolio.batch import read_table, run_batch
from policy_engine.portfolio.synthetic import generate_clients
from policy_engine.review.impact import analyse

from ..conftest import CURRENT, REFERENCE, SAMPLES

CASES = yaml.safe_load((Path(__file__).parent / "action_terms_cases.yaml").read_text(encoding="utf-8"))
PORTFOLIO = REFERENCE / "samples" / "portfolio.csv"
AS_OF = "2025-09-30"  # every sample client is dated on or before it


def _edited(replace: str, with_: str) -> CompiledPolicy:
    text = CURRENT.read_text(encoding="utf-8")
    assert text.count(replace) == 1, replace
    text = text.replace(replace, with_).replace("\nversion: 1.1.0\n", "\nversion: 1.1.1\n")
    return compile_document(load_yaml_text(text, "policy-1.1.1.yaml"))


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_an_action_that_says_something_else_is_a_changed_action(case: dict[str, Any]) -> None:
    old = compile_document(load_yaml_text(CURRENT.read_text(encoding="utf-8"), str(CURRENT)))
    report = analyse(old, _edited(case["replace"], case["with"]), read_table(PORTFOLIO), as_of=AS_OF).report
    given = sum(case["retold"] in c for c in run_batch(old, read_table(PORTFOLIO), AS_OF).decisions["actions"])
    retold = [c for c in report["changed_clients"] if case["retold"] in c.get("actions_retold", [])]
    if case["retold"] is None:
        assert report["summary"]["actions_changed"] == 0
        assert all(c["actions_retold"] == [] for c in report["changed_clients"])
    else:
        assert given > 0, "the samples must give the action for the case to test anything"
        assert report["summary"]["actions_changed"] == len(retold) == given
        assert all(c["actions_added"] == c["actions_removed"] == [] for c in retold)  # the ids did not move


def test_batch_gives_each_computed_parameter_where_its_action_is_given_as_decide_does(tmp_path: Path) -> None:
    policy = compile_document(load_yaml_text(CURRENT.read_text(encoding="utf-8"), str(CURRENT)))
    clients = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES] + list(generate_clients(400, seed=7))
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clients), encoding="utf-8")
    result = run_batch(policy, read_table(path))
    assert result.rejects == []
    decider = Decider(policy)
    computed = [(a.id, name) for a in policy.actions for name in a.param_exprs]
    seen: dict[str, int] = {}
    for client, (_, row) in zip(clients, result.decisions.iterrows(), strict=True):
        given = {a["id"]: a["params"] for a in decider.decide(client)["actions"]}
        for aid, name in computed:
            cell = row[f"param.{aid}.{name}"]
            if aid in given:
                seen[aid] = seen.get(aid, 0) + 1
                assert cell == given[aid][name], (row["client_id"], aid, name)
            else:
                assert pd.isna(cell), (row["client_id"], aid, name)
    assert set(seen) == {aid for aid, _ in computed}, seen  # every computed parameter was given somewhere


@pytest.mark.parametrize(("old", "new", "noted"), [
    ("loss-client-management@1.0.0", "loss-client-management@1.1.0", ["old side: 21 decision(s)"]),
    ("loss-client-management@1.1.0", "loss-client-management@1.1.0", []),
    ("loss-client-management@1.0.0", "loss-client-management@1.0.0", ["old side: 21", "new side: 21"]),
])
def test_impact_says_when_a_pinned_side_decided_on_days_it_is_not_in_force(old: str, new: str,
                                                                           noted: list[str]) -> None:
    """1.0.0 ended on 2024-12-31; the samples are dated 2025 (batch says so for a pinned version, impact too)."""
    from click.testing import CliRunner

    from policy_engine.cli import main

    from ..conftest import POLICIES

    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", "impact", old, new, "--portfolio",
                                  str(PORTFOLIO), "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    warnings = json.loads(r.stderr)["warnings"] if r.stderr else []
    assert [w["code"] for w in warnings] == ["not-in-force"] * len(noted)
    for w, start in zip(warnings, noted, strict=True):
        assert w["message"].startswith(start) and "1.0.0 as pinned, not in force" in w["message"]
