"""Computed action parameters the catalogue refuses: the action is undetermined on both paths, never given."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.portfolio.batch import flatten, iter_records, read_table, run_batch
from policy_engine.portfolio.synthetic import generate_clients

from ..conftest import CURRENT, SAMPLES


@pytest.fixture(scope="module")
def computed() -> Any:
    """The reference policy with the extension computed from the client: whole, fractional or out of range."""
    text = CURRENT.read_text(encoding="utf-8").replace(
        "months: {expr: extension_months}", "months: {expr: \"current_ratio * 100 if current_ratio < 1.1 else "
                                            "round(current_ratio * 100)\"}")
    assert "current_ratio * 100" in text
    return compile_document(load_yaml_text(text, "computed.yaml"))


def test_a_refused_parameter_leaves_the_action_undetermined_with_the_reason(computed: Any) -> None:
    client = json.loads(SAMPLES[1].read_text(encoding="utf-8"))  # a temporary liquidity gap: extend_term fires
    record = Decider(computed).decide(client)
    assert "extend_term" not in [a["id"] for a in record["actions"]]
    [entry] = [u for u in record["undetermined"] if u["rule"] == "extend_term"]
    assert entry["missing"] == ["params.months"]
    assert entry["reasons"]["params.months"].endswith("(extend_term takes whole numbers in [1, 120])")


def test_row_and_vector_agree_on_refused_parameters(computed: Any, tmp_path: Any) -> None:
    clients = [json.loads(p.read_text(encoding="utf-8")) for p in SAMPLES] + list(generate_clients(600, seed=5))
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clients), encoding="utf-8")
    decider = Decider(computed)
    result = run_batch(computed, read_table(path))
    assert result.rejects == []
    outcomes = {"given": 0, "refused": 0}
    for row, record, client in zip(result.decisions.itertuples(), iter_records(result, decider), clients, strict=True):
        expected = decider.decide(client)
        assert list(row.actions) == [a["id"] for a in expected["actions"]]
        assert list(row.undetermined) == [u["rule"] for u in expected["undetermined"]]
        for k in ("decision_id", "evaluated_at"):
            record.pop(k), expected.pop(k)
        assert record == expected
        outcomes["given"] += any(a["id"] == "extend_term" for a in expected["actions"])
        outcomes["refused"] += any(u["rule"] == "extend_term" for u in expected["undetermined"])
    assert outcomes["given"] > 0 and outcomes["refused"] > 0, outcomes
    assert pd.Series([flatten(c)["client_id"] for c in clients]).is_unique
