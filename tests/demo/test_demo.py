"""``make demo``: both record kinds decided by date, a readable line per debtor, recorded, verified, replayed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from policy_engine.demo import decided_by, exposure_grades, short_grade

from ..conftest import REFERENCE, ROOT, SAMPLES

DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))


def _demo(store: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLICY_ENGINE_AUDIT_DB": str(store)}
    return subprocess.run([sys.executable, "-m", "policy_engine.demo"], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=180)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("demo") / "audit.db"


@pytest.fixture(scope="module")
def out(store: Path) -> str:
    p = _demo(store)
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return p.stdout


def _line(out: str, debtor: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(debtor + " "))


def test_every_client_is_decided_by_1_1_0_and_every_debtor_by_2_0_0_chosen_by_date(out: str) -> None:
    for f in SAMPLES:
        cid = json.loads(f.read_text(encoding="utf-8"))["client_id"]
        assert _line(out, cid).split()[2] == "1.1.0"
    for f in DEBTORS:
        record = json.loads(f.read_text(encoding="utf-8"))
        line = _line(out, record["client_id"])
        assert line.split()[1:3] == ["2.0.0", str(len(record["exposures"]))]


def test_a_debtor_line_shows_each_exposure_the_debtor_rule_and_the_actions(out: str) -> None:
    line = _line(out, "05-contagion-three-exposures")
    assert "Substandard 次级" in line and "E1 P→S  E2 S  E3 P→S" in line
    assert "contagion_10pct (debtor)" in line
    assert "overdue_over_270 @E1" in _line(out, "07-overdue-280-days")
    crisis = out.splitlines()[out.splitlines().index(_line(out, "20-crisis-group-stale")) + 1]
    # each crisis event is its own warning in 2.0.0 (the emergency plan names the one that happened)
    assert crisis.split() == ["warnings:", "group_member_nonperforming,", "assets_seized,", "statements_stale"]


def test_the_totals_count_every_debtor_and_every_exposure(out: str) -> None:
    exposures = sum(len(json.loads(f.read_text(encoding="utf-8"))["exposures"]) for f in DEBTORS)
    [debtors] = [x for x in out.splitlines() if x.startswith("by debtor grade: ")]
    [per_exposure] = [x for x in out.splitlines() if x.startswith(f"by exposure grade ({exposures} exposures): ")]
    assert sum(int(x.split("=")[1]) for x in debtors.split(": ")[1].split(", ")) == len(DEBTORS)
    assert sum(int(x.split("=")[1]) for x in per_exposure.split(": ")[1].split(", ")) == exposures
    total = len(SAMPLES) + len(DEBTORS)
    assert f"{len(SAMPLES)} clients and {len(DEBTORS)} debtors decided and recorded" in out
    assert f"chain of {total} record(s): intact; replayed now: {total} identical, 0 different" in out


def test_the_next_hint_explains_a_multi_exposure_debtor_in_chinese_by_date(out: str) -> None:
    [hint] = [x for x in out.splitlines() if x.startswith("Next:") and "debtors/" in x]
    args = hint.split("policy-engine ")[1].split()
    assert args[:3] == ["explain", "-p", "loss-client-management"] and "--policy-version" not in args
    p = subprocess.run([sys.executable, "cli.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "2.0.0" in p.stdout and "次级" in p.stdout and "E3" in p.stdout


def test_a_second_run_appends_to_the_chain_and_replays_what_it_recorded(out: str, store: Path) -> None:
    p = _demo(store)
    total = len(SAMPLES) + len(DEBTORS)
    assert p.returncode == 0, p.stderr
    assert f"chain of {2 * total} record(s): intact; replayed now: {total} identical, 0 different" in p.stdout


@pytest.mark.parametrize(("grade", "short"), [("pass", "P"), ("special_mention", "SM"), ("substandard", "S"),
                                              ("doubtful", "D"), ("loss", "L")])
def test_a_grade_is_shown_by_its_initials(grade: str, short: str) -> None:
    assert short_grade(grade) == short


def _decision(exposures: list[tuple[str, str, str]], rule: str, at: str | None) -> dict[str, Any]:
    return {"classification": {"decided_by": rule, **({"decided_by_exposure": at} if at else {})},
            "exposures": [{"exposure_id": e, "own_grade": own, "grade": final} for e, own, final in exposures]}


@pytest.mark.parametrize(("exposures", "rule", "at", "grades", "shown"), [
    ([("E1", "pass", "pass")], "default", None, "E1 P", "default"),
    ([("PF-1", "pass", "substandard"), ("WC-1", "substandard", "substandard")], "contagion_10pct", None,
     "PF-1 P→S  WC-1 S", "contagion_10pct (debtor)"),
    ([("E1", "doubtful", "doubtful"), ("E2", "pass", "special_mention")], "overdue_over_270", "E1",
     "E1 D  E2 P→SM", "overdue_over_270 @E1"),
])
def test_a_debtor_is_summed_up_compactly(exposures: list[tuple[str, str, str]], rule: str, at: str | None,
                                         grades: str, shown: str) -> None:
    d = _decision(exposures, rule, at)
    assert (exposure_grades(d), decided_by(d)) == (grades, shown)
