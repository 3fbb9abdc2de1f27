"""simulate under a version with scopes: a scenario's shocks address places in the debtor record
(``exposures[*].collateral.value``: every exposure's), the shocked records are decided as batch decides debtors, and
the report equals deciding each debtor and its shocked copy one by one."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy
from policy_engine.review.scenario import Scenario, Shock, shock_lines

from ..conftest import POLICIES, REFERENCE

PINNED = "loss-client-management@2.0.0"
DEBTORS = [json.loads(f.read_text(encoding="utf-8"))
           for f in sorted((REFERENCE / "samples" / "debtors").glob("*.json"))]
CRASH = """name: Collateral crash and arrears
shocks:
  - {field: "exposures[*].collateral.value", multiply: 0.5}
  - {field: "exposures[*].days_past_due", segment: manufacturing, add: 60}
"""


def _simulate(tmp: Path, scenario: str, *args: str, debtors: list[Any] | None = None, policy: str = PINNED) -> Any:
    (tmp / "scenario.yaml").write_text(scenario, encoding="utf-8")
    portfolio = tmp / "debtors.jsonl"
    if not portfolio.exists():
        portfolio.write_text("".join(json.dumps(d) + "\n" for d in (DEBTORS if debtors is None else debtors)),
                             encoding="utf-8")
    return CliRunner().invoke(main, ["--policies", str(POLICIES), "simulate", policy, "--portfolio", str(portfolio),
                                     "--scenario", str(tmp / "scenario.yaml"), *args], catch_exceptions=False)


def _shocked(debtor: dict[str, Any]) -> tuple[dict[str, Any], int, int]:
    """The debtor as the crash shocks it, and the values each shock changed."""
    d = copy.deepcopy(debtor)
    halved = moved = 0
    for e in d["exposures"]:
        value = (e.get("collateral") or {}).get("value")
        if isinstance(value, int | float) and value:
            e["collateral"]["value"] = value * 0.5
            halved += 1
        if d["industry"] == "manufacturing" and isinstance(e.get("days_past_due"), int):
            e["days_past_due"] += 60
            moved += 1
    return d, halved, moved


def test_the_report_equals_deciding_each_debtor_and_its_shocked_copy(tmp_path: Path) -> None:
    r = _simulate(tmp_path, CRASH, "--format", "json", "--list", "1000")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    decider = Decider(load_policy(REFERENCE / "policy-2.0.0.yaml"))
    grades = report["migration"]["grades"]
    counts = [[0] * len(grades) for _ in grades]
    changed, halved, moved = set(), 0, 0
    for debtor in DEBTORS:
        shocked, h, m = _shocked(debtor)
        halved, moved = halved + h, moved + m
        a = decider.decide(debtor)["classification"]["grade"]
        b = decider.decide(shocked)["classification"]["grade"]
        counts[grades.index(a)][grades.index(b)] += 1
        if a != b:
            changed.add(debtor["client_id"])
    assert report["migration"]["counts"] == counts
    assert {c["client_id"] for c in report["changed_clients"] if c["grade"][0] != c["grade"][1]} == changed
    assert report["summary"]["downgrades"] == len(changed) > 0 and report["summary"]["upgrades"] == 0
    assert [s["cells_changed"] for s in report["scenario"]["shocks"]] == [halved, moved]
    assert 0 < moved < sum(len(d["exposures"]) for d in DEBTORS)  # the segment limits the second shock
    text = _simulate(tmp_path, CRASH, "--format", "text").stdout
    assert text.startswith("Scenario Collateral crash and arrears: loss-client-management 2.0.0")


def test_a_whole_number_stays_whole_and_other_lines_stay_as_they_are(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    debtor = {"client_id": "D1", "industry": "trade", "exposures": [{"exposure_id": "E1", "days_past_due": 7},
                                                                     {"exposure_id": "E2", "days_past_due": "x"}]}
    source.write_text(f"{json.dumps(debtor)}\n\nnot json\n[1]\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    shocks = (Shock("exposures[*].days_past_due", None, 1.5, None, whole=True),
              Shock("exposures[*].days_past_due", "manufacturing", None, 100.0, whole=True))
    assert shock_lines(Scenario("s", shocks), source, out, "industry") == [1, 0]
    lines = out.read_text(encoding="utf-8").split("\n")
    assert json.loads(lines[0])["exposures"] == [{"exposure_id": "E1", "days_past_due": 10},  # 10.5 rounds to even
                                                 {"exposure_id": "E2", "days_past_due": "x"}]
    assert lines[1:] == ["", "not json", "[1]", ""]


def test_an_unreadable_line_is_rejected_on_both_sides_in_its_row(tmp_path: Path) -> None:
    (tmp_path / "debtors.jsonl").write_text(json.dumps(DEBTORS[0]) + "\n{\n" + json.dumps(DEBTORS[1]) + "\n",
                                            encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    r = _simulate(tmp_path, CRASH, "--format", "json", "--rejects", str(rejects))
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["rejected"] == {"old": 1, "new": 1, "rows": 1, "rows_read": 3, "compared": 2}
    [line] = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert (line["row"], line["side"]) == (2, "both")


@pytest.mark.parametrize("shock,says", [
    ('{field: "exposures[*].collateral.valu", multiply: 0.5}', "did you mean 'exposures[*].collateral.value'?"),
    ('{field: "exposures[*].days_past_due", add: 0.5}', "holds whole numbers; add a whole number"),
    ('{field: "loan.collateral_value", multiply: 0.5}', "is not an input of policy loss-client-management"),
    ('{field: "exposures[*].product", multiply: 0.5}', "only number fields can be shocked"),
    ('{field: "exposures.collateral.value", multiply: 0.5}', "is not an input"),
])
def test_a_shock_the_version_cannot_feel_is_a_located_error(tmp_path: Path, shock: str, says: str) -> None:
    r = _simulate(tmp_path, f"name: bad\nshocks:\n  - {shock}\n")
    assert r.exit_code == 4, r.stderr  # as every scenario error
    assert "scenario.yaml:3:" in r.stderr and says in r.stderr


def test_a_policy_id_stresses_the_debtors_under_the_one_version_their_days_select(tmp_path: Path) -> None:
    later = [{**d, "as_of": "2027-08-31"} for d in DEBTORS[:2]]
    r = _simulate(tmp_path, CRASH, "--format", "json", debtors=[*DEBTORS, *later], policy="loss-client-management")
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "several-versions" and "loss-client-management@2.1.0: 2" in error["message"]
    assert "--as-of" in error["hint"]
    r = _simulate(tmp_path, CRASH, "--format", "json", "--as-of", "2026-09-30", policy="loss-client-management")
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["new"]["version"] == "2.0.0"


def test_a_debtor_shock_under_a_day_of_a_version_of_client_records_says_so(tmp_path: Path) -> None:
    """--as-of a day of 1.1.0 over debtor records: the shocks are places of a debtor record and 1.1.0 decides
    clients, said so with the way out, not 'not an input' with did-you-mean 'loan.collateral_value'."""
    r = _simulate(tmp_path, CRASH, "--as-of", "2026-03-31", policy="loss-client-management")
    assert r.exit_code == 4, r.stderr
    assert "scenario.yaml:3:" in r.stderr and "is a place in a debtor record (record 2.0), and " \
        "loss-client-management@1.1.0 decides client records 1.x" in r.stderr
    assert "name a version that decides debtors (loss-client-management@VERSION)" in r.stderr
    assert "did you mean" not in r.stderr


def test_a_client_table_under_a_version_with_scopes_is_named_as_such(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "simulate", PINNED, "--portfolio",
                                  str(REFERENCE / "samples" / "portfolio.csv"), "--scenario",
                                  str(root / "scenarios" / "collateral-crash.yaml"), "--format", "json"])
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "scoped-portfolio-format" and "debtors.jsonl" in error["hint"]


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 debtors drawn for 2.1.0, as JSON Lines and as long tables of either format (the same draws)."""
    from policy_engine.portfolio import synthetic

    tmp = tmp_path_factory.mktemp("simulate-drawn")
    policy = load_policy(REFERENCE / "policy-2.1.0.yaml")
    (tmp / "debtors.jsonl").write_text("".join(json.dumps(r) + "\n" for r in synthetic.policy_clients(
        policy, 40, 5, "2026-09-30")), encoding="utf-8")
    for fmt in (".parquet", ".csv"):
        synthetic.write_long_tables(policy, tmp / f"tables{fmt}", 40, 5, "2026-09-30", fmt=fmt)
    return tmp


@pytest.mark.parametrize("fmt", [".parquet", ".csv"])
def test_a_folder_of_long_tables_is_stressed_as_its_debtor_records_are(drawn: Path, fmt: str) -> None:
    """The shocks land on the same values (a segment matched through client_id), the report is the same."""
    crash = Path(__file__).resolve().parents[2] / "scenarios" / "debtor-collateral-crash.yaml"

    def report(portfolio: Path) -> dict[str, Any]:
        r = CliRunner().invoke(main, ["--policies", str(POLICIES), "simulate", "loss-client-management@2.1.0",
                                      "--portfolio", str(portfolio), "--scenario", str(crash), "--as-of",
                                      "2026-09-30", "--format", "json", "--list", "1000"], catch_exceptions=False)
        assert r.exit_code == 0, r.stderr
        return json.loads(r.stdout)  # type: ignore[no-any-return]

    lines, tables = report(drawn / "debtors.jsonl"), report(drawn / f"tables{fmt}")
    assert tables["rejected"].pop("orphaned") == {"old": 0, "new": 0}
    tables["rejected"].pop("tables")
    assert lines == tables
    assert all(s["cells_changed"] > 0 for s in lines["scenario"]["shocks"])
    assert lines["summary"]["downgrades"] > 0


def test_a_folder_whose_debtors_fall_under_several_versions_is_refused_under_a_policy_id(drawn: Path,
                                                                                           tmp_path: Path) -> None:
    import pandas as pd

    folder = tmp_path / "tables"
    folder.mkdir()
    for f in (drawn / "tables.parquet").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    debtors = pd.read_parquet(folder / "debtors.parquet")
    debtors["as_of"] = [dt.date(2027, 8, 31) if i < 5 else day for i, day in enumerate(debtors["as_of"])]  # 2.1.0
    debtors.to_parquet(folder / "debtors.parquet", index=False)
    crash = Path(__file__).resolve().parents[2] / "scenarios" / "debtor-collateral-crash.yaml"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "simulate", "loss-client-management", "--portfolio",
                                  str(folder), "--scenario", str(crash), "--format", "json"])
    assert r.exit_code == 2
    [error] = json.loads(r.stderr)["errors"]
    assert error["code"] == "several-versions" and "loss-client-management@2.1.0: 5" in error["message"]


def test_what_the_strict_reader_refuses_is_left_as_it_is_and_an_overflow_stays_a_number(tmp_path: Path) -> None:
    """Every line is read as batch reads it (a byte-order mark skipped; a duplicate key left as written, so both
    sides reject it alike; an integer of 30 digits kept), and a shock beyond a float or 64 bits writes a number
    the input check refuses, never a null that would read as a fact missing."""
    debtor = {"client_id": "D1", "industry": "trade", "exposures": [{"exposure_id": "E1", "days_past_due": 7,
                                                                      "collateral": {"value": 1e300}}]}
    source = tmp_path / "in.jsonl"
    duplicate = b'{"client_id": "D2", "client_id": "D3", "exposures": [{"days_past_due": 1}]}\n'
    huge = b'{"client_id": "D4", "note": 123456789012345678901234567890, "exposures": [{"days_past_due": 1}]}\n'
    source.write_bytes(b"\xef\xbb\xbf" + json.dumps(debtor).encode() + b"\n" + duplicate + huge)
    out = tmp_path / "out.jsonl"
    shocks = (Shock("exposures[*].collateral.value", None, 1e300, None),
              Shock("exposures[*].days_past_due", None, 1e300, None, whole=True))
    assert shock_lines(Scenario("s", shocks), source, out, "industry") == [1, 2]
    first, second, third, end = out.read_bytes().split(b"\n")
    shocked = json.loads(first)["exposures"][0]
    assert shocked["collateral"]["value"] == 1.7976931348623157e308  # 1e600: beyond a float
    assert isinstance(shocked["days_past_due"], float) and shocked["days_past_due"] == 7e300
    assert second == duplicate.rstrip(b"\n") and end == b""
    assert json.loads(third) == {"client_id": "D4", "note": 123456789012345678901234567890,
                                 "exposures": [{"days_past_due": 1e300}]}


def test_a_folder_is_shocked_where_its_ids_join_as_batch_joins_them(drawn: Path, tmp_path: Path) -> None:
    """Debtors' ids as integers, the other tables' as floats (a Parquet export of a nullable id column): batch joins
    them, so a segment shock reaches the same exposures as with text ids."""
    import pandas as pd

    crash = Path(__file__).resolve().parents[2] / "scenarios" / "debtor-collateral-crash.yaml"
    folder = tmp_path / "tables"
    folder.mkdir()
    number: dict[str, int] = {}
    for f in (drawn / "tables.parquet").iterdir():
        frame = pd.read_parquet(f)
        ids = [number.setdefault(str(c), 1000 + len(number)) for c in frame["client_id"]]
        frame["client_id"] = pd.array(ids, dtype="int64") if f.stem == "debtors" else [float(i) for i in ids]
        frame.to_parquet(folder / f.name, index=False)

    def shocked(portfolio: Path) -> list[int]:
        r = CliRunner().invoke(main, ["--policies", str(POLICIES), "simulate", "loss-client-management@2.1.0",
                                      "--portfolio", str(portfolio), "--scenario", str(crash), "--as-of",
                                      "2026-09-30", "--format", "json"], catch_exceptions=False)
        assert r.exit_code == 0, r.stderr
        return [s["cells_changed"] for s in json.loads(r.stdout)["scenario"]["shocks"]]

    assert shocked(folder) == shocked(drawn / "tables.parquet")


def test_a_table_the_shock_cannot_read_is_named_as_batch_names_it(drawn: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    for f in (drawn / "tables.csv").iterdir():
        (folder / f.name).write_bytes(f.read_bytes())
    with (folder / "exposures.csv").open("a", encoding="utf-8") as fh:
        fh.write("a,b\n")  # a ragged row
    crash = Path(__file__).resolve().parents[2] / "scenarios" / "debtor-collateral-crash.yaml"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "simulate", "loss-client-management@2.1.0",
                                  "--portfolio", str(folder), "--scenario", str(crash), "--as-of", "2026-09-30",
                                  "--format", "json"])
    assert r.exit_code == 3
    assert [e["code"] for e in json.loads(r.stderr)["errors"]] == ["ragged-row"]


def test_a_terminated_run_leaves_no_copy_of_the_debtors(tmp_path: Path) -> None:
    """SIGTERM (how CI cancels a job) ends the run as an interrupt does: the shocked copy is removed."""
    import os
    import signal
    import time

    from policy_engine.review.scenario import _scratch

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, _scratch() as scratch:
        kept = scratch
        (scratch / "shocked.jsonl").write_text("{}\n", encoding="utf-8")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs first
    assert stopped.value.code == 128 + signal.SIGTERM and not kept.exists()
    assert signal.getsignal(signal.SIGTERM) == before
