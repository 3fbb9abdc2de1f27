"""impact --total: sums and means of chosen metrics by version and by segment, in every format, with gates.

The figures are checked against small portfolios worked out by hand (totals_cases.yaml), against
the row evaluator on a ``generate -p`` portfolio, and on the shipped sample portfolio through
``simulate``, whose scenario cuts manufacturing revenue by a known 20%.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.diagnostics import InputError
from policy_engine.portfolio.synthetic import policy_clients
from policy_engine.review.diffing import resolve

from ..conftest import POLICIES, REFERENCE

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
OLD, NEW = str(DATA / "el-1.0.0.yaml"), str(DATA / "el-1.1.0.yaml")
CASES = yaml.safe_load((HERE / "totals_cases.yaml").read_text(encoding="utf-8"))
SCENARIOS = HERE.parents[1] / "scenarios"

# Four clients: expected loss 40 + 40 + 50 (trade, 60 under 1.1.0), and one without a balance.
SMALL = CASES[0]["portfolio"]


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("totals") / "small.csv"
    path.write_text(SMALL, encoding="utf-8")
    return path


def _impact(old: str, new: str, portfolio: Path, *args: str) -> Any:
    return _cli("impact", old, new, "--portfolio", str(portfolio), *args)


def _same(actual: Any, expected: Any, where: str) -> None:
    """``expected``'s figures in ``actual`` (null: no value; numbers to 1e-9)."""
    if isinstance(expected, dict):
        for k, v in expected.items():
            _same(actual[k], v, f"{where}.{k}")
    elif expected is None:
        assert actual is None, f"{where}: {actual} where no value was expected"
    else:
        assert actual == pytest.approx(expected, rel=1e-9, abs=1e-9), where


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_totals_match_the_hand_computed_figures(case: dict[str, Any], tmp_path: Path) -> None:
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(case["portfolio"], encoding="utf-8")
    old, new = (str(DATA / p) for p in case["policies"])
    r = _impact(old, new, portfolio, "--total", "expected_loss", "--format", "json")
    assert r.exit_code == 0, r.stderr
    entry = json.loads(r.stdout)["totals"]["expected_loss"]
    for group, expected in case["expect"].items():
        _same(entry["all"] if group == "all" else entry["by_segment"][group], expected, group)
    if "segments" in case:
        assert list(entry["by_segment"]) == case["segments"]
    assert json.loads(r.stdout)["clients"] == entry["all"]["clients"]


def test_a_policy_without_segments_reports_one_group_in_every_section(small: Path) -> None:
    flat = [str(DATA / "flat-1.0.0.yaml"), str(DATA / "flat-1.1.0.yaml")]
    rep = json.loads(_impact(*flat, small, "--total", "expected_loss", "--format", "json").stdout)
    assert list(rep["by_segment"]) == ["all"] and rep["by_segment"]["all"]["clients"] == 4
    text = _impact(*flat, small, "--total", "expected_loss", "--format", "text").stdout
    assert "nan" not in text.lower() and "By segment" in text
    assert text.count("all clients") == 1  # the one group is not repeated as a segment


@pytest.mark.parametrize("fmt", ["text", "markdown", "json", "html"])
def test_every_format_shows_the_totals(small: Path, tmp_path: Path, fmt: str) -> None:
    if fmt == "html":
        page = tmp_path / "r.html"
        r = _impact(OLD, NEW, small, "--total", "expected_loss", "--html", str(page), "--format", "json")
        out = page.read_text(encoding="utf-8")
    else:
        r = _impact(OLD, NEW, small, "--total", "expected_loss", "--format", fmt)
        out = r.stdout
    assert r.exit_code == 0, r.stderr
    if fmt == "json":
        rep = json.loads(out)["totals"]["expected_loss"]
        assert (rep["all"]["old"]["sum"], rep["all"]["new"]["sum"], rep["label"]["en"]) == (130, 140, "Expected loss")
        return
    assert "Total: Expected loss (expected_loss)" in out and "4 clients compared" in out
    # all clients: 130 -> 140 (+7.69%); trade 50 -> 60 (+20%); one client of trade without a value
    for figure in ("130.00", "140.00", "+10.00", "+7.69%", "43.33", "46.67", "50.00", "60.00", "+20.00%",
                   "no value", "with value"):
        assert figure in out, figure


def test_the_text_rows_line_up(small: Path) -> None:
    text = _impact(OLD, NEW, small, "--total", "expected_loss", "--format", "text").stdout
    block = text[text.index("Total: Expected loss"):].splitlines()
    assert block[1].split() == ["industry", "figure", "before", "after", "change", "change", "%"]
    assert block[2].split() == ["all", "clients", "sum", "130.00", "140.00", "+10.00", "+7.69%"]
    assert block[5].split() == ["no", "value", "1", "1", "+0"]
    assert block[-4].split() == ["trade", "sum", "50.00", "60.00", "+10.00", "+20.00%"]
    assert max(len(line) for line in block) <= 100


def test_chinese_report_names_the_figures_in_chinese(small: Path) -> None:
    md = _impact(OLD, NEW, small, "--total", "expected_loss", "--format", "markdown", "--lang", "zh").stdout
    assert "**合计: 预期损失 (expected_loss)** (比较 4 户)" in md
    assert "| 全部客户 | 总和 | 130.00 | 140.00 | +10.00 | +7.69% |" in md
    assert "|  | 无值户数 | 1 | 1 | +0 |  |" in md


GATES = [
    # (gate, exit code, what stderr says)
    ("total.expected_loss.change_share > 0.05", 1, "gate failed: total.expected_loss.change_share = 0.0769"),
    ("total.expected_loss.change_share > 0.1", 0, ""),
    ("total.expected_loss[trade].change_share >= 0.2", 1, "total.expected_loss[trade].change_share = 0.2 >= 0.2"),
    ("total.expected_loss[manufacturing].change == 0", 1, "total.expected_loss[manufacturing].change = 0.0 == 0"),
    ("total.expected_loss.new_nulls > 0", 1, "total.expected_loss.new_nulls = 1 > 0"),
    ("total.expected_loss.old_sum < 131", 1, "total.expected_loss.old_sum = 130.0 < 131"),
    ("total.expected_loss.mean_change < -1e3", 0, ""),
    ("total.expected_loss.change>=+10.5", 0, ""),
    ("total.expected_loss.chnage > 0", 2, "a total has no figure 'chnage'"),
    ("total.expected_loss.chnage_share > 0", 2, "did you mean 'change_share'?"),
    ("downgrade > 1", 2, "did you mean 'downgrades'?"),
    ("total.expected_loss[retail].change > 0", 2, "no segment 'retail' in the totals of 'expected_loss'"),
    ("total.expected_los.change > 0", 2, "did you mean 'expected_loss'?"),
    ("total.late.change > 0", 2, "only number metrics add up"),
    ("total.exposure.change > 0", 2, "el 1.0.0 has no metric 'exposure'"),
    ("grade_changed > 1.2.3", 2, "is not 'NAME OP NUMBER'"),
    ("grade_changes > 1", 2, "no figure 'grade_changes' in the report"),
    ("downgrades > 1e400", 2, "1e400 is beyond any number a figure can be"),  # the report said "limit": Infinity
    ("total.expected_loss.change < -1e309", 2, "-1e309 is beyond any number"),
]


@pytest.mark.parametrize(("gate", "code", "says"), GATES, ids=[g[0] for g in GATES])
def test_gates_on_totals(small: Path, gate: str, code: int, says: str) -> None:
    # The gate alone is enough: the metric it reads is totalled without --total.
    r = _impact(OLD, NEW, small, "--fail-if", gate, "--format", "json")
    assert r.exit_code == code, r.stderr
    assert says in r.stderr
    assert "Traceback" not in r.stderr
    if code != 2:
        assert "expected_loss" in json.loads(r.stdout)["totals"]


def test_a_gate_on_a_figure_with_no_value_fails_and_says_why(tmp_path: Path) -> None:
    portfolio = tmp_path / "p.csv"
    portfolio.write_text(CASES[2]["portfolio"], encoding="utf-8")  # no client of trade has a value
    r = _impact(OLD, NEW, portfolio, "--fail-if", "total.expected_loss[trade].change_share > 0.5")
    assert r.exit_code == 1
    assert ("total.expected_loss[trade].change_share has no value (the old figure is 0 or no client has a value), "
            "so 'total.expected_loss[trade].change_share > 0.5' cannot be shown false") in r.stderr


@pytest.mark.parametrize(("metric", "says"), [
    ("expected_los", "el 1.0.0 has no metric 'expected_los'"),
    ("exposure", "el 1.0.0 has no metric 'exposure'"),  # only 1.1.0 has it: no change to show
    ("late", "metric 'late' of el 1.0.0 is bool, and only number metrics add up"),
])
def test_a_metric_either_version_lacks_is_a_usage_error(small: Path, metric: str, says: str) -> None:
    r = _impact(OLD, NEW, small, "--total", "expected_loss", "--total", metric)
    assert r.exit_code == 2
    assert says in r.stderr and "number metrics of both versions: expected_loss" in r.stderr


def test_totals_on_a_generated_portfolio_agree_with_the_row_evaluator(tmp_path: Path) -> None:
    # generate -p: the policy's own synthetic clients, some without a balance or a pd.
    portfolio = tmp_path / "g.csv"
    r = _cli("generate", "-p", OLD, "--n", "400", "--seed", "5", "--as-of", "2024-03-31", "--out", str(portfolio))
    assert r.exit_code == 0, r.stderr
    r = _impact(OLD, NEW, portfolio, "--total", "expected_loss", "--total", "expected_loss", "--format", "json")
    assert r.exit_code == 0, r.stderr
    entry = json.loads(r.stdout)["totals"]["expected_loss"]
    expected: dict[str, dict[str, list[float | None]]] = {}
    for side, path in (("old", OLD), ("new", NEW)):
        decider = Decider(resolve(path, None))
        for client in policy_clients(decider.policy, 400, 5, "2024-03-31"):
            try:
                record = decider.decide(client, as_of="2024-03-31")
            except InputError:
                continue
            for group in ("all", record["segment"]):
                expected.setdefault(group, {"old": [], "new": []})[side].append(record["metrics"]["expected_loss"])
    assert expected["all"]["old"] and any(v is None for v in expected["all"]["old"])
    for group, sides in expected.items():
        got = entry["all"] if group == "all" else entry["by_segment"][group]
        for side, values in sides.items():
            known = [v for v in values if v is not None]
            assert (got[side]["count"], got[side]["nulls"]) == (len(known), len(values) - len(known)), group
            assert got[side]["sum"] == pytest.approx(sum(known), rel=1e-12), group
    assert entry["by_segment"]["trade"]["change_share"] == pytest.approx(0.2)  # lgd 0.5 -> 0.6
    assert entry["by_segment"]["manufacturing"]["change"] == 0


def test_simulate_totals_the_shocked_portfolio() -> None:
    # The downturn cuts every quarter's revenue of manufacturers by 20%: their trailing revenue falls 20%.
    r = _cli("simulate", "loss-client-management@1.1.0", "--portfolio", str(REFERENCE / "samples" / "portfolio.csv"),
             "--scenario", str(SCENARIOS / "manufacturing-downturn.yaml"), "--total", "revenue_ttm",
             "--format", "json", "--fail-if", "total.revenue_ttm[manufacturing].change_share < -0.1")
    assert r.exit_code == 1 and "gate failed: total.revenue_ttm[manufacturing].change_share = -0.2" in r.stderr
    entry = json.loads(r.stdout)["totals"]["revenue_ttm"]
    manufacturing = entry["by_segment"]["manufacturing"]
    assert manufacturing["change_share"] == pytest.approx(-0.2)
    assert manufacturing["new"]["sum"] == pytest.approx(0.8 * manufacturing["old"]["sum"])
    others = [g for s, g in entry["by_segment"].items() if s != "manufacturing" and g["change"] is not None]
    assert others and all(g["change"] == 0 for g in others)
    assert entry["all"]["change"] == pytest.approx(manufacturing["change"])
    assert entry["all"]["old"]["nulls"] == entry["all"]["new"]["nulls"] >= 1  # a client without revenue


def test_impact_without_total_keeps_its_report() -> None:
    r = _cli("impact", "loss-client-management@1.0.0", "loss-client-management@1.1.0",
             "--portfolio", str(REFERENCE / "samples" / "portfolio.csv"), "--format", "json")
    assert r.exit_code == 0 and "totals" not in json.loads(r.stdout)


def test_a_bad_gate_is_refused_before_the_portfolio_is_read(tmp_path: Path) -> None:
    # The portfolio does not exist: the mistake in the gate is what the reviewer hears about, before any run.
    missing = tmp_path / "nowhere.csv"
    r = _impact(OLD, NEW, missing, "--fail-if", "total.expected_loss.chnage > 0")
    assert r.exit_code == 2 and "a total has no figure 'chnage'" in r.stderr
    r = _cli("simulate", OLD, "--portfolio", str(missing), "--scenario", str(SCENARIOS / "collateral-crash.yaml"),
             "--fail-if", "total.expected_loss > 0")
    assert r.exit_code == 2 and "is not 'NAME OP NUMBER'" in r.stderr


def test_an_exposure_metric_is_named_as_such_not_as_missing(tmp_path: Path) -> None:
    """A metric of each exposure (2.0.x) exists, so 'has no metric' would be false: the error says what it is
    and where its values are."""
    portfolio = tmp_path / "d.jsonl"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "generate", "-p", "loss-client-management", "--n", "3",
                                  "--as-of", "2026-09-30", "--out", str(portfolio)], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    r = _impact("loss-client-management@2.0.1", "loss-client-management@2.0.2", portfolio,
                "--total", "last_missed_in_observation")
    assert r.exit_code == 2
    assert ("'last_missed_in_observation' is a metric of each exposure under loss-client-management 2.0.1, "
            "and --total adds up a metric of each debtor") in r.stderr
    assert "batch --exposures-out" in r.stderr and "has no metric" not in r.stderr
