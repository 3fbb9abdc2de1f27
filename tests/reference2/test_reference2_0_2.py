"""Reference policy 2.0.2: 2.0.1 without stand-in dates.

2.0.1 wrote 1900-01-01 for "never paid late" (arrears_cleared_date) and "no clock restarted"
(observation_restart_date), and the first repayment date for "no payment missed in observation"
(last_missed_in_observation), which an explanation printed as a missed payment. 2.0.2 writes null
there (max_where). Every other part of every decision must stay 2.0.1's: grades, floors, states,
warnings, actions and the other figures, over the samples and a generated portfolio.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import NO_MATCH, decide
from policy_engine.policy.registry import Registry, load_policy
from policy_engine.portfolio.synthetic import scoped_clients
from policy_engine.review.tester import coverage, run_tests

from ..conftest import POLICIES, REFERENCE

DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))
OLD = load_policy(REFERENCE / "policy-2.0.1.yaml")
NEW = load_policy(REFERENCE / "policy-2.0.2.yaml")
_OWN = ("decision_id", "evaluated_at", "policy")  # what names the version that decided
STAND_IN = "1900-01-01"


def _without(record: dict[str, Any], debtor: tuple[str, ...], exposure: tuple[str, ...]) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in _OWN}
    out["metrics"] = {k: v for k, v in record["metrics"].items() if k not in debtor}
    out["undefined_metrics"] = {k: v for k, v in record["undefined_metrics"].items() if k not in debtor}
    out["exposures"] = [{**e, "metrics": {k: v for k, v in e["metrics"].items() if k not in exposure}}
                        for e in record["exposures"]]
    for e in out["exposures"]:  # why a metric has no value, but those of the changed ones and of those reading them
        e["undefined_metrics"] = {k: v for k, v in e.get("undefined_metrics", {}).items()
                                  if k not in exposure and not any(n in v for n in exposure)}
    return out


def _same_but_for_the_stand_ins(client: dict[str, Any]) -> None:
    a, b = decide(OLD, client), decide(NEW, client)
    assert (a["policy"]["version"], b["policy"]["version"]) == ("2.0.1", "2.0.2")
    changed_debtor, changed_exposure = ("observation_restart_date",), ("arrears_cleared_date",
                                                                       "last_missed_in_observation")
    assert _without(a, changed_debtor, changed_exposure) == _without(b, changed_debtor, changed_exposure)
    old, new = a["metrics"]["observation_restart_date"], b["metrics"]["observation_restart_date"]
    assert new == (None if old == STAND_IN else old)
    if new is None:  # no exposure's clock restarted: said so, not "no value for exposure E1: observation_start"
        assert b["undefined_metrics"]["observation_restart_date"] == NO_MATCH
    for ea, eb in zip(a["exposures"], b["exposures"], strict=True):
        old, new = ea["metrics"]["arrears_cleared_date"], eb["metrics"]["arrears_cleared_date"]
        assert new == (None if old == STAND_IN else old)
        old, new = ea["metrics"]["last_missed_in_observation"], eb["metrics"]["last_missed_in_observation"]
        first_due = ea["metrics"]["observation_first_due"]
        # 2.0.1 fell back to the first repayment date; a payment missed on that very date reads the same
        assert new == old or (new is None and old == first_due), (old, new, first_due)


@pytest.mark.parametrize("path", DEBTORS, ids=lambda p: p.stem)
def test_2_0_2_decides_every_sample_debtor_as_2_0_1_but_writes_no_stand_in_date(path: Path) -> None:
    _same_but_for_the_stand_ins(json.loads(path.read_text(encoding="utf-8")))


def test_2_0_2_decides_a_generated_portfolio_as_2_0_1_but_writes_no_stand_in_date() -> None:
    clients = list(scoped_clients(OLD, 300, seed=11, as_of="2027-03-31", periods=4))
    for client in clients:
        _same_but_for_the_stand_ins(client)
    # the portfolio reaches both sides of each change
    new = [decide(NEW, c) for c in clients]
    arrears = [e["metrics"]["arrears_cleared_date"] for r in new for e in r["exposures"]]
    assert None in arrears and any(a is not None for a in arrears)


def test_no_stand_in_date_is_left_in_2_0_2() -> None:
    assert STAND_IN not in NEW.text.partition("\nchangelog:")[0] + NEW.text.partition("\ntests:")[2]


def test_2_0_2_is_in_force_from_2027_04_01_and_2_0_1_until_the_day_before() -> None:
    registry = Registry(POLICIES)
    assert registry.select("loss-client-management", as_of="2027-03-31").version == "2.0.1"
    assert registry.select("loss-client-management", as_of="2027-04-01").version == "2.0.2"


def test_the_policy_tests_of_2_0_2_pass_with_every_rule_pinned_both_ways() -> None:
    run = run_tests([REFERENCE / "policy-2.0.2.yaml"])
    assert run.diagnostics == [] and run.failed == 0 and run.passed >= 60
    assert coverage(run)["loss-client-management@2.0.2"].percent == 100.0


def test_explain_under_2_0_2_prints_no_missed_payment_for_a_clock_that_did_not_restart() -> None:
    client = json.loads(next(p for p in DEBTORS if p.name.startswith("10-")).read_text(encoding="utf-8"))
    out = {}
    for version in ("2.0.1", "2.0.2"):
        result = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", "explain", "-p",
                                           f"loss-client-management@{version}", "-c", "-", "--lang", "en"],
                                    input=json.dumps(client), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        out[version] = result.output
    assert "Latest missed payment in observation: 2025-10-20" in out["2.0.1"]
    assert "Latest missed payment in observation: 2025-10-20" not in out["2.0.2"]
    assert "Observation period start: 2025-10-20" in out["2.0.2"]
