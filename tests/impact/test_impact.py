"""Champion / challenger impact: migration, changed clients, gates, and an HTML report a browser renders."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import POLICIES, REFERENCE

OLD, NEW = "loss-client-management@1.0.0", "loss-client-management@1.1.0"


@pytest.fixture(scope="module")
def portfolio(tuned_portfolio: Path) -> Path:
    return tuned_portfolio


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


def test_impact_report_accounts_for_every_client(portfolio: Path) -> None:
    r = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "json")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    counts = rep["migration"]["counts"]
    assert sum(map(sum, counts)) == rep["clients"] == rep["summary"]["compared"] == 3000  # --fail-if's name for it
    off_diagonal = sum(v for i, row in enumerate(counts) for j, v in enumerate(row) if i != j)
    assert off_diagonal == rep["summary"]["grade_changed"] > 0
    # 1.1.0 lowers the manufacturing liquidity floor: clients can only improve, and only manufacturers move.
    assert rep["summary"]["downgrades"] == 0
    assert {c["segment"] for c in rep["changed_clients"]} == {"manufacturing"}
    moved = next(c for c in rep["changed_clients"] if c["grade"][0] != c["grade"][1])
    assert "liquidity_below_floor" in moved["warnings_removed"] or moved["decided_by"][0] != moved["decided_by"][1] \
        or moved["score"][0] != moved["score"][1]
    assert rep["warnings"]["liquidity_below_floor"]["change"] < 0
    assert sum(rep["by_segment"][s]["grade_changed"] for s in rep["by_segment"]) == rep["summary"]["grade_changed"]
    assert rep["segment_by"] == "industry"  # the policy's segment input names the per-segment counts
    # a policy with a scorecard: each changed client carries both versions' scores
    assert all(len(c["score"]) == 2 and all(isinstance(x, float) for x in c["score"]) for c in rep["changed_clients"])
    balance = rep["migration"]["balance"]
    assert sum(map(sum, balance)) > 0


def test_identical_versions_change_nothing(portfolio: Path) -> None:
    rep = json.loads(_cli("impact", NEW, NEW, "--portfolio", str(portfolio), "--format", "json").stdout)
    assert rep["summary"]["grade_changed"] == 0 and rep["changed_clients"] == []


def test_fail_if_gates(portfolio: Path) -> None:
    r = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "text",
             "--fail-if", "grade_changed_share > 0.5", "--fail-if", "downgrades > 0")
    assert r.exit_code == 0
    r = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "text", "--fail-if", "grade_changed > 0")
    assert r.exit_code == 1 and "gate failed: grade_changed" in r.stderr
    r = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--fail-if", "nonsense")
    assert r.exit_code == 2 and "NAME OP NUMBER" in r.stderr


@pytest.mark.parametrize(("rows", "why"), [(0, "the portfolio has no row"), (4, "each of its 4 rows was rejected")])
def test_a_gate_of_a_run_that_compared_no_client_fails(portfolio: Path, tmp_path: Path, rows: int, why: str) -> None:
    """0 of 0 is no evidence: 'downgrade_share > 0.01' over an empty or wholly rejected portfolio fails."""
    frame = pd.read_csv(portfolio, dtype=str, keep_default_na=False).head(rows)
    frame["industry"] = "mining"
    small = tmp_path / "p.csv"
    frame.to_csv(small, index=False)
    r = _cli("impact", OLD, NEW, "--portfolio", str(small), "--format", "json", "--fail-if", "downgrade_share > 0.01",
             "--fail-if", "warnings_changed > 0", "--fail-if", "rejected > 10", "--fail-if", "compared < 1")
    assert r.exit_code == 1
    assert json.loads(r.stdout)["failed_gates"] == [
        f"no client was compared ({why}), so 'downgrade_share > 0.01' cannot be shown false",
        f"no client was compared ({why}), so 'warnings_changed > 0' cannot be shown false",
        *([] if rows else ["no client was compared (the portfolio has no row), so 'rejected > 10' cannot be shown "
                           "false"]),  # 4 rejected rows are a figure: 4 > 10 is false
        "compared = 0 < 1"]  # the count of compared clients is a figure too
    gates = json.loads(r.stdout)["gates"]  # each gate, failed or not, with the figure read (none when no client)
    assert [(g["gate"], g["figure"], g["op"], g["limit"], g["value"], g["failed"]) for g in gates] == [
        ("downgrade_share > 0.01", "downgrade_share", ">", 0.01, None, True),
        ("warnings_changed > 0", "warnings_changed", ">", 0.0, None, True),
        ("rejected > 10", "rejected", ">", 10.0, None if not rows else 4, not rows),
        ("compared < 1", "compared", "<", 1.0, 0, True)]
    assert [g["says"] for g in gates if g["failed"]] == json.loads(r.stdout)["failed_gates"]
    assert gates[2]["failed"] or gates[2]["says"] == "rejected = 4: not > 10"


def test_the_changed_list_shows_grade_changes_before_warning_only_changes(portfolio: Path) -> None:
    rep = json.loads(_cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "json").stdout)
    moved = [c["grade"][0] != c["grade"][1] for c in rep["changed_clients"]]
    assert moved == sorted(moved, reverse=True) and sum(moved) == rep["summary"]["grade_changed"]
    assert rep["changed_clients_total"] > rep["summary"]["grade_changed"]  # warning-only changes, listed after
    rows = [c["row"] for c in rep["changed_clients"]]
    k = sum(moved)
    assert rows[:k] == sorted(rows[:k]) and rows[k:] == sorted(rows[k:])


def test_markdown_for_pull_requests(portfolio: Path) -> None:
    md = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "markdown").stdout
    assert md.startswith("### Portfolio impact: loss-client-management 1.0.0 → 1.1.0")
    assert "| before \\ after | Pass | Special mention | Substandard | Doubtful | Loss |" in md
    assert "| **Special mention** | 5 | 601 | 0 | 0 | 0 |" in md  # grade labels, not ids; row: before


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"

# Run inside the page by Chromium (the report itself has no script): every SVG text box must lie
# inside its chart, every figure inside its heatmap cell, and the computed fill of one upgrade,
# one downgrade and one unchanged cell of the count heatmap is reported for the palette check.
PROBE = """<pre id="probe"></pre><script>
const out = {charts: 0, texts: 0, clipped: [], fills: {}};
const inside = (r, b) => r.width > 0 && r.left >= b.left - 0.5 && r.right <= b.right + 0.5
    && r.top >= b.top - 0.5 && r.bottom <= b.bottom + 0.5;
for (const svg of document.querySelectorAll("svg.chart")) {
  out.charts++;
  const box = svg.getBoundingClientRect();
  for (const t of svg.querySelectorAll("text")) {
    out.texts++;
    if (!inside(t.getBoundingClientRect(), box)) out.clipped.push(t.textContent);
  }
  for (const cell of svg.querySelectorAll("rect.cell")) {
    const t = cell.nextElementSibling;
    if (!inside(t.getBoundingClientRect(), cell.getBoundingClientRect())) out.clipped.push("cell " + t.textContent);
  }
}
for (const kind of ["upgrade", "downgrade", "same"]) {
  const cell = [...document.querySelectorAll('svg.heatmap[data-by="counts"] rect.cell.' + kind)]
    .find(c => c.getAttribute("fill") !== "#ffffff");
  out.fills[kind] = cell ? getComputedStyle(cell).fill : null;
}
document.getElementById("probe").textContent = JSON.stringify(out);
</script>"""


def _hue(css: str) -> float:
    import colorsys
    import re

    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    return colorsys.rgb_to_hsv(r, g, b)[0] * 360


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_html_report_reads_right_in_headless_chromium(portfolio: Path, tmp_path: Path, lang: str) -> None:
    # A scenario that moves one industry down and another up, so both sides of the palette show.
    scenario = tmp_path / "both-ways.yaml"
    scenario.write_text("name: both ways\nshocks:\n"
                        "  - {field: loan.days_past_due, segment: manufacturing, add: 120}\n"
                        "  - {field: loan.days_past_due, segment: trade, multiply: 0}\n", encoding="utf-8")
    page = tmp_path / f"report-{lang}.html"
    r = _cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario", str(scenario),
             "--lang", lang, "--html", str(page), "--format", "json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["summary"]["downgrades"] > 0 and report["summary"]["upgrades"] > 0
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "http" not in text.replace("http://www.w3.org/2000/svg", "")  # self-contained
    labels = ["正常", "关注", "次级", "可疑", "损失"] if lang == "zh" else ["Pass", "Special mention", "Substandard"]
    assert all(f">{label}</text>" in text for label in labels)  # full grade names, never cut ids
    probe = tmp_path / f"probe-{lang}.html"
    probe.write_text(text.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "Uncaught" not in dom.stderr, [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    found = json.loads(html.unescape(dom.stdout.split('<pre id="probe">', 1)[1].split("</pre>", 1)[0]))
    assert found["charts"] == 5  # two migration heatmaps (clients, balance) and three before/after charts
    assert found["texts"] > 100 and found["clipped"] == []
    up, down, same = (found["fills"][k] for k in ("upgrade", "downgrade", "same"))
    assert up and down and same
    assert abs(_hue(up) - _hue(down)) > 90  # blue against red: an upgrade never looks like a deterioration
    r_, g_, b_ = (int(v) for v in same[same.index("(") + 1:same.index(")")].split(","))
    assert max(r_, g_, b_) - min(r_, g_, b_) < 10  # the diagonal is neutral grey
    shots = Path(os.environ.get("POLICY_ENGINE_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"impact-report-{lang}.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1000,1800", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000  # a real picture, not an empty page


def test_shipped_scenarios_move_the_portfolio_the_way_they_should(portfolio: Path) -> None:
    down = json.loads(_cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario",
                           str(SCENARIOS / "manufacturing-downturn.yaml"), "--format", "json").stdout)
    assert down["summary"]["downgrades"] > 0 and down["summary"]["upgrades"] == 0
    assert set(down["by_segment"]) >= {"manufacturing", "trade"}
    assert down["by_segment"]["manufacturing"]["downgrades"] > 0
    crash = json.loads(_cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario",
                            str(SCENARIOS / "collateral-crash.yaml"), "--format", "json").stdout)
    assert crash["warnings"]["collateral_impaired"]["change"] > 0
    assert crash["actions"]["add_collateral"]["change"] > 0
    assert crash["scenario"]["name"] == "Collateral crash"


def test_a_chinese_stress_report_reads_baseline_and_stressed_under_the_scenarios_title(portfolio: Path) -> None:
    """A stress test changes no policy: its Chinese report compares 基准 with 压力后, not 变更前 with 变更后, and
    heads with the scenario's own Chinese title; the English report keeps before / after and the English title."""
    scenario = str(SCENARIOS / "manufacturing-downturn.yaml")
    zh = _cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario", scenario,
              "--format", "markdown", "--lang", "zh").stdout
    assert zh.startswith("### 压力情景 制造业下行: loss-client-management ")
    assert "变更前" not in zh and "变更后" not in zh and "基准" in zh and "压力后" in zh
    en = _cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario", scenario,
              "--format", "json").stdout
    assert json.loads(en)["scenario"]["title"] == {"zh": "制造业下行", "en": "Manufacturing downturn"}
    text = _cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario", scenario,
                "--format", "text").stdout
    assert text.startswith("Scenario Manufacturing downturn: ") and "before" in text
    impact = _cli("impact", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--portfolio",
                  str(portfolio), "--format", "text", "--lang", "zh").stdout
    assert "变更前" in impact and "压力后" not in impact


def test_a_bad_scenario_is_a_located_error(portfolio: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nshocks:\n  - {field: loan.balance, multiply: 0.5, add: 3}\n"
                   "  - {field: 'Loan Balance', add: 1}\n")
    r = _cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario", str(bad))
    assert r.exit_code == 4
    assert f"{bad}:3:5: error: bad-scenario: give exactly one of multiply or add" in r.stderr
    assert f"{bad}:4:" in r.stderr and "field must be a column path" in r.stderr


# A shock that cannot change a decision would report "nothing moved" and give false comfort: an error.
SHOCKS_THAT_CANNOT_BITE = [
    ('{field: "financials[*].revenu", multiply: 0.8}', "shocks[0].field",
     "'financials[*].revenu' is not an input of policy loss-client-management",
     "did you mean 'financials[*].revenue'?"),
    ("{field: industry, multiply: 0.8}", "shocks[0].field", "'industry' holds string values", None),
    ('{field: "financials[*].period_end", add: 30}', "shocks[0].field", "holds date values", None),
    ("{field: loan.days_past_due, add: 0.5}", "shocks[0].add", "holds whole numbers; add a whole number", None),
    ("{field: loan.balance, segment: energie, multiply: 2}", "shocks[0].segment", "unknown segment 'energie'",
     "did you mean 'energy'?"),
]


@pytest.mark.parametrize(("shock", "path", "message", "hint"), SHOCKS_THAT_CANNOT_BITE,
                         ids=[c[2][:30] for c in SHOCKS_THAT_CANNOT_BITE])
def test_a_shock_the_policy_cannot_feel_is_a_located_error(tmp_path: Path, shock: str, path: str, message: str,
                                                           hint: str | None) -> None:
    from policy_engine.diagnostics import PolicyError
    from policy_engine.policy.registry import load_policy
    from policy_engine.review.scenario import load_scenario

    from ..conftest import CURRENT

    f = tmp_path / "s.yaml"
    f.write_text(f"name: x\nshocks:\n  - {shock}\n", encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_scenario(f, load_policy(CURRENT))
    [d] = err.value.diagnostics
    assert (d.path, d.line, d.hint) == (path, 3, hint) and message in d.message


def test_a_shock_reports_the_cells_it_changed_and_whole_numbers_stay_whole(portfolio: Path, tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("name: slip\nshocks:\n  - {field: loan.days_past_due, multiply: 1.5}\n"
                 "  - {field: loan.balance, segment: energy, multiply: 2}\n"
                 "  - {field: exposure.overdue_90_share_all_banks, segment: other, add: 0.1}\n", encoding="utf-8")
    r = _cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario", str(f),
             "--format", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    # 31 days x 1.5 is 46.5: rounded, not rejected as fractional
    assert out["rejected"] == {"old": 0, "new": 0, "rows": 0, "rows_read": 3000, "compared": 3000}
    frame = pd.read_csv(portfolio, usecols=["industry", "loan.days_past_due", "loan.balance"])
    industries, dpd, balance = frame["industry"], frame["loan.days_past_due"], frame["loan.balance"]
    changed = [s["cells_changed"] for s in out["scenario"]["shocks"]]
    # a cell counts when its value moved: 0 days past due times 1.5 is still 0
    assert changed[:2] == [int(((dpd * 1.5).round() != dpd).sum()),
                           int(((industries == "energy") & (balance != 0)).sum())]
    assert 0 < changed[0] < 3000
    assert changed[2] == int((industries == "other").sum())


@pytest.mark.parametrize("shock", ["multiply: 1e300", "add: -2e15"])
def test_a_shock_beyond_any_amount_is_a_located_error(portfolio: Path, tmp_path: Path, shock: str) -> None:
    # 1e300 times a balance overflows a float (numpy warned on stderr) and no amount is near it anyway
    f = tmp_path / "s.yaml"
    f.write_text(f"name: x\nshocks:\n  - {{field: loan.balance, {shock}}}\n", encoding="utf-8")
    r = _cli("simulate", "loss-client-management", "--portfolio", str(portfolio), "--scenario", str(f))
    assert r.exit_code == 4 and "must be a finite number within ±1e+15" in r.stderr
    assert "RuntimeWarning" not in r.stderr


@pytest.mark.parametrize("shock", ["{field: loan.balance, segment: energy, multiply: 2}",  # no row of its segment
                                   "{field: loan.balance, multiply: 1.0}"])  # every value as it was (all counted)
def test_a_shock_that_changed_nothing_is_said_on_stderr(portfolio: Path, tmp_path: Path, shock: str) -> None:
    traders = tmp_path / "traders.csv"
    frame = pd.read_csv(portfolio, dtype=str, keep_default_na=False)
    frame[frame["industry"] == "trade"].to_csv(traders, index=False)
    f = tmp_path / "s.yaml"
    f.write_text(f"name: x\nshocks:\n  - {shock}\n", encoding="utf-8")
    r = _cli("simulate", "loss-client-management", "--portfolio", str(traders), "--scenario", str(f),
             "--format", "json")
    assert r.exit_code == 0 and json.loads(r.stdout)["scenario"]["shocks"][0]["cells_changed"] == 0
    [warning] = json.loads(r.stderr)["warnings"]  # with --format json, one JSON document on stderr
    assert warning["code"] == "shock-changed-nothing" and "shock 1 (loan.balance) changed no cell" in warning["message"]
    text = _cli("simulate", "loss-client-management", "--portfolio", str(traders), "--scenario", str(f),
                "--format", "text")
    assert "warning: shock 1 (loan.balance) changed no cell" in text.stderr


@pytest.mark.parametrize("shocks", [
    "[{field: loan.balance, multiply: 0.5, add: 3}]",  # both
    "[{field: loan.balance}]",  # neither
    "[{field: loan.balance, add: 1, when: x}]",  # unknown key
    "[{field: 'Loan Balance', add: 1}]",  # not a field path
    "[]",  # nothing to apply
    "[{field: loan.balance, add: 1}]\ntitle: {zh: 下行}",  # a title in one language
])
def test_the_scenario_schema_refuses_what_load_scenario_refuses(tmp_path: Path, shocks: str) -> None:
    # Editors show these as the engine would: the schema and the loader agree on the shape of a scenario.
    import yaml

    from policy_engine.diagnostics import PolicyError
    from policy_engine.policy.schemas import validator
    from policy_engine.review.scenario import load_scenario

    f = tmp_path / "s.yaml"
    f.write_text(f"name: x\nshocks: {shocks}\n", encoding="utf-8")
    with pytest.raises(PolicyError):
        load_scenario(f)
    assert list(validator("scenario").iter_errors(yaml.safe_load(f.read_text(encoding="utf-8"))))


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_follow_the_schema_and_name_it_for_editors(path: Path) -> None:
    import yaml

    from policy_engine.policy.schemas import validator

    text = path.read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../schemas/scenario.schema.json\n")
    assert list(validator("scenario").iter_errors(yaml.safe_load(text))) == []


@pytest.mark.parametrize("n", [0, 3, 100_000])
def test_list_sets_how_many_changed_clients_are_listed_and_counts_cover_them_all(portfolio: Path, n: int) -> None:
    full = json.loads(_cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "json").stdout)
    r = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "json", "--list", str(n))
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    total = full["changed_clients_total"]
    assert total > 3 and rep["changed_clients_total"] == total and rep["summary"] == full["summary"]
    listed = rep["changed_clients"]
    assert len(listed) == min(n, total)
    assert [c["client_id"] for c in listed] == [c["client_id"] for c in _all_listed(portfolio)][:n]
    text = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "text", "--list", str(n)).stdout
    assert f"{total:,} changed; {min(n, total):,} listed" in text
    assert ("none listed: --list N lists N" in text) == (n == 0) and "(none)" not in text  # not 'none changed'


def _all_listed(portfolio: Path) -> list[dict[str, Any]]:
    r = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "json", "--list", "100000")
    return list(json.loads(r.stdout)["changed_clients"])


def test_a_negative_list_is_a_usage_error(portfolio: Path) -> None:
    r = _cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--list", "-1")
    assert r.exit_code == 2 and "--list" in r.stderr


@pytest.mark.parametrize(("scenario", "code", "says"), [
    ("scenarios/collateral-crsh.yaml", "file-missing", "did you mean 'collateral-crash.yaml'?"),
    ("policies/loss-client-management/policy-1.1.0.yaml", "not-a-scenario", "is a policy, not a scenario"),
    ("policies/loss-client-management/tests/actions.yaml", "not-a-scenario", "is a policy test file, not a scenario"),
])
def test_a_scenario_that_is_not_there_or_not_a_scenario_is_a_usage_error(
        scenario: str, code: str, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing scenario exited 4 (file-unreadable), a policy given as one listed its 17 keys as unknown."""
    from ..conftest import ROOT

    monkeypatch.chdir(ROOT)
    r = CliRunner().invoke(main, ["--no-audit", "simulate", "loss-client-management", "--portfolio",
                                  "policies/loss-client-management/samples/portfolio.csv", "--scenario", scenario],
                           catch_exceptions=False)
    assert r.exit_code == 2 and code in r.stderr and says in r.stderr, r.stderr


def test_a_portfolio_without_as_of_whose_new_side_decides_no_row_is_a_report_not_an_internal_error(
        tmp_path: Path) -> None:
    """Dated today, every row fell under 2.x on the new side: no decision there, and the balances of no row
    were indexed with an object array (IndexError, exit 5)."""
    frame = pd.read_csv(REFERENCE / "samples" / "portfolio.csv", dtype=str, keep_default_na=False)
    src = tmp_path / "noasof.csv"
    frame.drop(columns=["as_of"]).to_csv(src, index=False)
    r = _cli("--no-audit", "impact", "loss-client-management@1.1.0", "loss-client-management", "--portfolio",
             str(src), "--format", "json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["clients"] == 0 and report["rejected"]["new"] == len(frame)
