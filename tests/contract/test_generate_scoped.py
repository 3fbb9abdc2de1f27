"""`generate -p` for a policy with scopes: nested debtors (JSON Lines) that the policy decides, every one.

Each debtor has 1..max exposures (keys unique), each exposure its payments in due-date order,
every field within its declared range or enum; the same seed gives the same records.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio.synthetic import MAX_GRADED, policy_clients

from ..conftest import DATA

POLICY = DATA / "scopes" / "policy-multi-exposure.yaml"


def _generate(tmp_path: Path, name: str, *args: str) -> list[dict]:
    out = tmp_path / name
    r = CliRunner().invoke(main, ["generate", "-p", str(POLICY), "--out", str(out), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_every_generated_debtor_is_decided_and_has_the_declared_shape(tmp_path: Path) -> None:
    records = _generate(tmp_path, "a.jsonl", "--n", "300", "--seed", "11")
    assert len(records) == 300
    decider = Decider(load_policy(POLICY))
    sizes, payments, graded = set(), 0, set()
    for rec in records:
        decision = decider.decide(rec)  # an InputError here is a generated record the policy refuses
        assert [x["exposure_id"] for x in decision["exposures"]] == [x["exposure_id"] for x in rec["exposures"]]
        graded |= {x["grade"] for x in decision["exposures"]}
        ids = [x["exposure_id"] for x in rec["exposures"]]
        assert 1 <= len(ids) <= min(MAX_GRADED, 5) and len(set(ids)) == len(ids)
        sizes.add(len(ids))
        assert rec["industry"] is not None
        for x in rec["exposures"]:
            assert x["balance"] >= 0 and isinstance(x["days_past_due"], int) and x["days_past_due"] >= 0
            dues = [p["due_date"] for p in x["schedule"]]
            assert dues == sorted(dues) and len(dues) <= 24
            assert all(p["due_date"] <= rec["as_of"] and (p["paid_date"] or "") <= rec["as_of"] for p in x["schedule"])
            payments += len(dues)
        kinds = [e["kind"] for e in rec["events"]]
        assert set(kinds) <= {"litigation", "bankruptcy_filing"} and len(kinds) <= 10
        assert all(e["date"] for e in rec["events"])
    assert sizes == {1, 2, 3, 4, 5}  # every count of exposures up to the scope's max occurs
    assert payments > 0 and len(graded) >= 3  # the records reach several grades, not one corner


def test_the_same_seed_gives_the_same_debtors(tmp_path: Path) -> None:
    a = _generate(tmp_path, "a.jsonl", "--n", "40", "--seed", "5")
    b = _generate(tmp_path, "b.jsonl", "--n", "40", "--seed", "5")
    other = _generate(tmp_path, "d.jsonl", "--n", "40", "--seed", "6")
    assert a == b
    assert [r["exposures"] for r in a] != [r["exposures"] for r in other]


def test_debtors_past_the_first_chunk_get_their_own_elements(monkeypatch: pytest.MonkeyPatch) -> None:
    from policy_engine.portfolio import synthetic

    monkeypatch.setattr(synthetic, "CHUNK", 7)
    records = list(policy_clients(load_policy(POLICY), 30, seed=4))
    decider = Decider(load_policy(POLICY))
    assert all(decider.decide(r)["exposures"] for r in records)
    chunks = [[r["exposures"] for r in records[i:i + 7]] for i in range(0, 28, 7)]
    assert all(chunks[0] != c for c in chunks[1:])  # each chunk's streams differ from the first's


def test_a_scope_max_below_the_usual_count_bounds_the_exposures(tmp_path: Path) -> None:
    policy = load_policy(POLICY)
    text = POLICY.read_text(encoding="utf-8").replace("key: exposure_id, max: 5}", "key: exposure_id, max: 2}")
    small = tmp_path / "policy-small.yaml"
    small.write_text(text, encoding="utf-8")
    narrow = load_policy(small)
    assert narrow.scoped is not None and policy.scoped is not None
    counts = {len(r["exposures"]) for r in policy_clients(narrow, 200, seed=2)}
    assert counts == {1, 2}


def test_a_flat_csv_is_refused_for_a_policy_with_scopes(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["generate", "-p", str(POLICY), "--out", str(tmp_path / "x.csv")])
    assert r.exit_code == 2
    assert "declares scopes" in r.output and ".jsonl" in r.output
    assert not (tmp_path / "x.csv").exists()
