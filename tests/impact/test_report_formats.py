"""The impact report carries the same figures in text, markdown, HTML and JSON.

Expected rows are built here from the JSON report alone (not from the renderers' own section
builder), then looked for as table rows in each format: a figure missing or different in one
format fails, whatever the layout.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.portfolio.synthetic import write_csv

from ..conftest import POLICIES, REFERENCE

OLD, NEW = "loss-client-management@1.0.0", "loss-client-management@1.1.0"
LABELS = {"en": {"pass": "Pass", "special_mention": "Special mention", "substandard": "Substandard",
                 "doubtful": "Doubtful", "loss": "Loss"},
          "zh": {"pass": "正常", "special_mention": "关注", "substandard": "次级", "doubtful": "可疑", "loss": "损失"}}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("formats") / "p.csv"
    write_csv(path, 1000, seed=12)  # where 1.1.0 moves clients: the changed-client list is not empty
    return path


def _cli(*args: str) -> Any:
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return r.stdout


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _trimmed(row: list[str]) -> list[str]:
    while row and row[-1] == "":
        row = row[:-1]
    return row


def _text_rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines() if line.strip()]


def _markdown_rows(text: str) -> list[list[str]]:
    return [[c.strip().strip("*").replace("\\|", "|") for c in line.strip()[1:-1].split(" | ")]
            for line in text.splitlines() if line.startswith("| ")]


def _html_rows(text: str) -> list[list[str]]:
    parser = _Rows()
    parser.feed(text)
    return parser.rows


def _expected(rep: dict[str, Any], lang: str, balance_as_moves: bool) -> list[list[str]]:
    """Every figure of the JSON report as the table row it must appear in."""
    name = LABELS[lang]
    grades = rep["migration"]["grades"]
    rows = [[name[g], *(f"{v:,}" for v in row)] for g, row in zip(grades, rep["migration"]["counts"], strict=True)]
    if balance_as_moves:  # text: one line per non-empty cell with its clients and balance
        rows += [[f"{name[a]} → {name[b]}", f"{rep['migration']['counts'][i][j]:,}",
                  f"{rep['migration']['balance'][i][j]:,.2f}"]
                 for i, a in enumerate(grades) for j, b in enumerate(grades)
                 if rep["migration"]["counts"][i][j] or rep["migration"]["balance"][i][j]]
    else:
        rows += [[name[g], *(f"{v:,.2f}" for v in row)]
                 for g, row in zip(grades, rep["migration"]["balance"], strict=True)]
    dist = rep["grade_distribution"]
    rows += [[name[g], f"{dist['old'][g]:,}", f"{dist['new'][g]:,}", f"{dist['new'][g] - dist['old'][g]:+,}"]
             for g in grades]
    for section in ("warnings", "actions"):
        # the clients a rule was undetermined for, before and after, when a side has any
        labels = rep["rule_labels"][section]  # in Chinese a rule is listed by its label and id: 展期（extend_term）
        rows += [[f"{labels[k]['zh']}（{k}）" if lang == "zh" and k in labels else k, f"{v['old']:,}", f"{v['new']:,}",
                  f"{v['change']:+,}",
                  *([f"{v['old_undetermined']:,} → {v['new_undetermined']:,}" if v["old_undetermined"]
                     or v["new_undetermined"] else ""] if "new_undetermined" in v else [])]
                 for k, v in rep[section].items()]
    rows += [[k, f"{v['clients']:,}", f"{v['grade_changed']:,}", f"{v['downgrades']:,}", f"{v['upgrades']:,}"]
             for k, v in rep["by_segment"].items()]
    for c in rep["changed_clients"]:
        moved = [" ".join([*("+" + x for x in c[f"{k}_added"]), *("-" + x for x in c[f"{k}_removed"]),
                           *("?" + x for x in c[f"{k}_undetermined"])])  # fired before, undetermined after
                 for k in ("warnings", "actions")]
        words = {"en": {"scorecard": "scorecard", "default": "no floor (best grade)"},
                 "zh": {"scorecard": "评分卡", "default": "未触发底线（基准等级）"}}[lang]  # no floor, in words
        by = [words.get(r, r) for r in c["decided_by"]]
        row = [c["client_id"], c["segment"], f"{name[c['grade'][0]]} → {name[c['grade'][1]]}", f"{by[0]} → {by[1]}"]
        score = f"{c['score'][0]:g} → {c['score'][1]:g}"
        if balance_as_moves:  # text: score, warning and action changes on the lines under the client
            what = ("score", "Warnings", "Actions") if lang == "en" else ("评分", "预警", "措施")
            rows.append(row)
            rows += [[f"{label}: {m}"] for label, m in zip(what, [score, *moved], strict=True) if m]
        else:
            rows.append([*row, score, *moved])
    return rows


@pytest.fixture(scope="module")
def reports(generated: Path) -> dict[str, dict[str, Any]]:
    """The JSON report of each portfolio, as the CLI prints it (one analysis each)."""
    out = {}
    for which, portfolio in (("sample", REFERENCE / "samples" / "portfolio.csv"), ("generated", generated)):
        out[which] = json.loads(_cli("impact", OLD, NEW, "--portfolio", str(portfolio), "--format", "json"))
    return out


def _rendered(rep: dict[str, Any], lang: str) -> dict[str, str]:
    from policy_engine.review.impact import render_html, render_markdown, render_text

    return {"text": render_text(rep, lang=lang), "markdown": render_markdown(rep, lang=lang),
            "html": render_html(rep, lang=lang)}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("which", ["sample", "generated"])
def test_every_format_carries_the_same_figures(which: str, lang: str, reports: dict[str, Any]) -> None:
    rep = reports[which]
    assert rep["grade_labels"]["special_mention"] == {"zh": "关注", "en": "Special mention"}
    if which == "generated":
        assert rep["changed_clients"] and rep["summary"]["upgrades"] > 0
    rendered = _rendered(rep, lang)
    parse = {"text": _text_rows, "markdown": _markdown_rows, "html": _html_rows}
    for fmt, text in rendered.items():
        rows = [_trimmed(r) for r in parse[fmt](text)]  # an empty last cell (no undetermined count) is no cell
        expected = [_trimmed(r) for r in _expected(rep, lang, balance_as_moves=fmt == "text")]
        missing = [row for row in expected if row not in rows]
        assert missing == [], (fmt, missing[:5])
    s = rep["summary"]
    for text in rendered.values():
        assert f"{rep['clients']:,}" in text and f"{s['grade_changed_share']:.2%}" in text
        assert str(rep["changed_clients_total"]) in text


def test_the_command_prints_what_the_renderers_render(reports: dict[str, Any], tmp_path: Path) -> None:
    # The figures above are checked on the renderers; here the command is shown to print exactly those.
    portfolio = str(REFERENCE / "samples" / "portfolio.csv")
    page = tmp_path / "impact.html"
    text = _cli("impact", OLD, NEW, "--portfolio", portfolio, "--lang", "zh", "--format", "text", "--html", str(page))
    expected = _rendered(reports["sample"], "zh")
    assert text == expected["text"] and page.read_text(encoding="utf-8") == expected["html"]
    md = _cli("impact", OLD, NEW, "--portfolio", portfolio, "--lang", "zh", "--format", "markdown")
    assert md == expected["markdown"]


def test_text_fits_a_terminal(reports: dict[str, Any]) -> None:
    from policy_engine.review.impact import _width, render_text

    for lang in ("en", "zh"):
        text = render_text(reports["generated"], lang=lang)
        assert max(_width(line) for line in text.splitlines()) <= 100, lang


def test_a_rejected_block_is_rendered_in_every_format(reports: dict[str, Any]) -> None:
    from policy_engine.review.impact import render_html, render_markdown, render_text

    rep = {**reports["sample"]}
    rep["rejected"] = {"count": 2, "rows": [{"row": 7, "client_id": "C7", "problems": [
        {"field": "loan.balance", "message": "expected a number, found string 'abc'"}]}]}
    for render, rows in ((render_text, _text_rows), (render_markdown, _markdown_rows), (render_html, _html_rows)):
        found = rows(render(rep))
        assert ["count", "2"] in found
        assert ["rows 7 C7", "loan.balance: expected a number, found string 'abc'"] in found, render.__name__


@pytest.mark.parametrize(("amount", "lang", "shown"), [
    (880_000_000.0, "en", "880.0M"), (8_800_000_000.0, "en", "8.8B"), (12_500.0, "en", "12.5K"), (950.0, "en", "950"),
    (880_000_000.0, "zh", "8.8亿"), (8_800_000_000.0, "zh", "88.0亿"), (3_200_000.0, "zh", "320.0万"),
    (9_500.0, "zh", "9,500"), (-45_000_000.0, "zh", "-4500.0万"), (2.5e12, "zh", "2.5万亿"),
])
def test_a_heatmap_cell_counts_amounts_in_the_readers_units(amount: float, lang: str, shown: str) -> None:
    """A Chinese committee reads 8.8亿 where an English one reads 880.0M: 亿 and 万, not B and M."""
    from policy_engine.review.impact import _compact

    assert _compact(amount, lang) == shown


def test_the_chinese_balance_heatmap_has_no_english_units(reports: dict[str, Any]) -> None:
    from policy_engine.review.impact import render_html

    page = render_html(reports["generated"], lang="zh")
    shown = re.findall(r'class="cell[^"]*"[^>]*>.*?</rect><text[^>]*>([^<]*)</text>', page)
    assert not any(re.fullmatch(r"-?[\d.]+[KMBT]", t) for t in shown), shown[:5]
    assert any(t.endswith(("亿", "万")) for t in shown), shown[:5]


def test_a_portfolio_without_balances_has_no_balance_matrix(tmp_path: Path) -> None:
    """The watch-list example reads no balance: the report showed a 'balance' matrix of client counts."""
    from ..conftest import ROOT

    examples = ROOT / "examples" / "policies"
    args = ["--no-audit", "--policies", str(examples), "impact", "early-warning-watch-list@1.0.0",
            "early-warning-watch-list@1.1.0", "--portfolio",
            str(examples / "early-warning-watch-list" / "samples" / "portfolio.jsonl")]
    r = CliRunner().invoke(main, [*args, "--format", "json", "--html", str(tmp_path / "r.html")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["migration"]["balance"] is None and sum(map(sum, report["migration"]["counts"])) == 45
    md = CliRunner().invoke(main, [*args, "--format", "markdown"], catch_exceptions=False).stdout
    assert "Grade migration, clients" in md and "balance" not in md.lower().split("grade distribution")[0]
    assert "Grade migration, balance" not in (tmp_path / "r.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt,lang,row", [
    ("text", "en", r"grade_changed > 0 +FAILED: grade_changed = \d+ > 0"),
    ("markdown", "en", r"\| rejected > 0 \| passed: rejected = 0: not > 0 \|"),
    ("text", "zh", r"grade_changed > 0 +未通过：grade_changed = \d+ > 0"),
])
def test_the_gates_are_shown_first_in_the_readable_forms(generated: Path, tmp_path: Path, fmt: str, lang: str,
                                                         row: str) -> None:
    """A CI job that keeps the text or markdown report as its artefact sees which gate failed, and why."""
    html = tmp_path / "r.html"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "impact", OLD, NEW, "--portfolio", str(generated),
                                  "--format", fmt, "--lang", lang, "--html", str(html), "--fail-if",
                                  "grade_changed > 0", "--fail-if", "rejected > 0"], catch_exceptions=False)
    assert r.exit_code == 1
    assert re.search(row, r.stdout), r.stdout[:600]
    heading = {"en": "Gates (--fail-if)", "zh": "门槛（--fail-if）"}[lang]
    assert r.stdout.index(heading) < r.stdout.index({"en": "Grade migration", "zh": "分类迁移"}[lang])
    assert heading in html.read_text(encoding="utf-8")
