"""Reports on the example policies name nothing they do not have (issue 18 item 1, the last gaps).

Neither example has a scorecard, and they segment by ``industry`` and ``sector``: no report shows a
score column (no made-up ``0 -> 0``), per-segment counts are headed by the policy's own segment
input, the explanation's grade header is a neutral word, and the reasons a metric has no value are
in the language asked for.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from policy_engine.decide.explain import _reason

from .test_examples import ALL, COVENANT, IDS, WATCH, Example, cli

SCORE = re.compile(r"score|评分|得分", re.I)
SEGMENT_BY = {WATCH.id: "industry", COVENANT.id: "sector"}


def _impact(example: Example, *options: str) -> str:
    r = cli("impact", f"{example.id}@{example.active}", f"{example.id}@{example.draft}",
            "--portfolio", str(example.portfolio), "--total", example.total, *options)
    assert r.exit_code == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_impact_json_has_no_score_and_counts_by_the_policys_segment_input(example: Example) -> None:
    report = json.loads(_impact(example, "--format", "json"))
    assert report["changed_clients"] and all(c["score"] is None for c in report["changed_clients"])
    assert "by_industry" not in report and report["segment_by"] == SEGMENT_BY[example.id]
    counts = report["by_segment"]
    assert sum(v["clients"] for v in counts.values()) == report["clients"]
    assert sum(v["grade_changed"] for v in counts.values()) == report["summary"]["grade_changed"]
    assert {c["segment"] for c in report["changed_clients"]} <= set(counts)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("fmt", ["text", "markdown", "html"])
@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_impact_renderings_have_no_score_column(example: Example, fmt: str, lang: str, tmp_path: Path) -> None:
    if fmt == "html":
        page = tmp_path / "impact.html"
        _impact(example, "--format", "json", "--html", str(page), "--lang", lang)
        text = page.read_text(encoding="utf-8")
    else:
        text = _impact(example, "--format", fmt, "--lang", lang)
    assert not SCORE.search(text), SCORE.search(text)
    assert "0 → 0" not in text
    by = SEGMENT_BY[example.id]
    assert (f"By {by}" if lang == "en" else f"按{by}") in text
    if by != "industry":  # no borrowed dimension: a policy by sector says nothing of industries
        assert not re.search("industry|行业", text, re.I), re.search("industry|行业", text, re.I)


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_batch_counts_by_the_policys_segment_input(example: Example, tmp_path: Path) -> None:
    args = ["batch", str(example.portfolio), "-p", example.id, "--out", str(tmp_path / "out.jsonl"),
            "--rejects", str(tmp_path / "rejects.jsonl"), "--no-audit"]
    r = cli(*args, "--format", "json")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    by = SEGMENT_BY[example.id]
    assert "by_industry" not in summary and summary["segment_by"] == by
    assert sum(v["count"] for v in summary["by_segment"].values()) == summary["accounting"]["decided"]
    r = cli(*args, "--format", "text")
    assert r.exit_code == 0, r.stderr
    assert f"\nby {by}:\n" in r.stdout and ("by industry:" not in r.stdout or by == "industry")


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_explain_heads_the_grade_with_a_neutral_word(example: Example) -> None:
    for lang, head in (("zh", "分类："), ("en", "Grade: ")):
        r = cli("explain", "-p", example.id, "-c", str(example.samples[0]), "--lang", lang)
        assert r.exit_code == 0, r.stderr
        assert f"\n\n{head}" in r.stdout and "风险分类" not in r.stdout


def test_explain_zh_gives_the_reason_a_metric_has_no_value_in_chinese() -> None:
    sample = WATCH.folder / "samples" / "clients" / "09-stale-accounts-gap.json"
    r = cli("explain", "-p", WATCH.id, "-c", str(sample), "--lang", "zh")
    assert r.exit_code == 0, r.stderr
    block = r.stdout[r.stdout.index("无法计算的指标："):].split("\n")[1]
    assert block.endswith("（negative_ocf_quarters）：以下期间无数值：quarters[2].operating_cash_flow"), block
    r = cli("explain", "-p", WATCH.id, "-c", str(sample), "--lang", "en")
    assert " (negative_ocf_quarters): no value for period quarters[2].operating_cash_flow" in r.stdout


# Every form of reason the decider writes (evaluate.Decider._null_reason and ._undetermined), and its Chinese.
REASONS = [
    ("missing input", "缺少输入"),
    ("missing input: revenue_q, cash_q", "缺少输入：revenue_q, cash_q"),
    ("no value for period quarters[1].revenue, quarters[3].revenue",
     "以下期间无数值：quarters[1].revenue, quarters[3].revenue"),
    ("warning cash_burn was undetermined", "预警 cash_burn 无法判断"),
    ("no value for exposure E2: dpd, exposure E3: dpd", "以下各项无数值：债项 E2：dpd, 债项 E3：dpd"),
    ("no value for exposure E2: covered (missing input exposures[1].secured)",
     "以下各项无数值：债项 E2：covered（缺少输入：exposures[1].secured）"),
    ("no value for exposure E2: last (payment 1: paid (missing input at exposures[1].schedule[0].paid))",
     "以下各项无数值：债项 E2：last（payment 1: paid（缺少输入，位置 exposures[1].schedule[0].paid））"),
    ("no value for exposure E2(续贷): a (missing input exposures[1].a), exposure E3: b (depends on c (no value: "
     "missing input exposures[2].c))",  # a bracket of the id stays the id's
     "以下各项无数值：债项 E2(续贷)：a（缺少输入：exposures[1].a）, "
     "债项 E3：b（依赖 c（无数值：缺少输入：exposures[2].c））"),
    ("no value", "无数值"),
    ("no value: missing input exposures[1].secured, exposures[1].stage", "无数值：缺少输入：exposures[1].secured, "
     "exposures[1].stage"),
    ("no value: depends on covered (no value: missing input exposures[0].secured)",
     "无数值：依赖 covered（无数值：缺少输入：exposures[0].secured）"),
    ("missing input at exposures[1].loan.dpd", "缺少输入（位置 exposures[1].loan.dpd）"),
    ("no value: exposure E2: dpd (missing input at exposures[1].dpd); exposure E3: lgd (no value)",
     "无数值：exposure E2: dpd（缺少输入（位置 exposures[1].dpd））；exposure E3: lgd（无数值）"),
    ("depends on dscr (no value for period quarters[1].ebitda)", "依赖 dscr（以下期间无数值：quarters[1].ebitda）"),
    ("depends on a (depends on b (missing input: c))", "依赖 a（依赖 b（缺少输入：c））"),
    # reasons joined inside a nested one: the second was left in English when split at every '; '
    ("reads a provisional grade: exposure E2: grade (provisional, undetermined: r1, r2 (depends on a (no value: "
     "missing input at x[0].y); depends on b (no value: missing input at x[0].z)))",
     "读取了暂定的分类：债项 E2 的分类（分类暂定，以下规则无法判断：r1, r2（依赖 a（无数值：缺少输入，位置 x[0].y）；"
     "依赖 b（无数值：缺少输入，位置 x[0].z）））"),
    ("undefined for the figures read (debt=0, revenue=[4 periods]): zero or non-positive base, or too few periods",
     "按所读数值无法计算（debt=0, revenue=[4期]）：分母为零或非正，或期数不足"),
    ("the condition has no value for the figures read (x=[2 periods]): a zero or non-positive base, "
     "or too few periods", "按所读数值条件无法判断（x=[2期]）：分母为零或非正，或期数不足"),
]


@pytest.mark.parametrize(("record", "en", "zh"), [
    ("no value for period statements[0].inventory, statements[1].inventory, statements[2].inventory",
     "no value for period statements[0–2].inventory", "以下期间无数值：statements[0–2].inventory"),
    ("no value for period q[0].a, q[1].a, q[3].a, q[0].b, q[1].b", "no value for period q[0–1].a, q[3].a, q[0–1].b",
     "以下期间无数值：q[0–1].a, q[3].a, q[0–1].b"),
    ("depends on dscr (no value for period q[1].ebitda, q[2].ebitda)", "depends on dscr (no value for period "
     "q[1–2].ebitda)", "依赖 dscr（以下期间无数值：q[1–2].ebitda）"),
])
def test_a_field_missing_in_consecutive_periods_reads_as_one_run(record: str, en: str, zh: str) -> None:
    """The record keeps every path; an explanation names a field lacking in five periods once, not five times."""
    assert (_reason(record, "en"), _reason(record, "zh")) == (en, zh)


@pytest.mark.parametrize(("english", "chinese"), REASONS, ids=[e[:30] for e, _ in REASONS])
def test_every_reason_form_reads_in_chinese(english: str, chinese: str) -> None:
    assert _reason(english, "zh") == chinese
    assert _reason(english, "en") == english  # the record keeps its English text


def test_the_covenant_monitor_files_its_covenant_warnings_under_its_own_category() -> None:
    sample = COVENANT.folder / "samples" / "clients" / "04-cure-period-toll-road-traffic-drop.json"
    r = cli("decide", "--no-audit", "-p", COVENANT.id, "-c", str(sample), "--format", "json")
    assert r.exit_code == 0, r.stderr
    categories = {w["id"]: w["category"] for w in json.loads(r.stdout)["warnings"]}
    assert categories == {"dscr_lock_up": "covenant", "covenant_breach_curable": "covenant"}


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_test_on_a_policys_tests_folder_finds_the_policy_one_folder_up(example: Example) -> None:
    whole = json.loads(cli("test", str(example.folder), "--format", "json").stdout)
    r = cli("test", str(example.folder / "tests"), "--format", "json")
    assert r.exit_code == 0, r.stdout
    out = json.loads(r.stdout)
    assert out["errors"] == [] and out["passed"] == whole["passed"] > 0 and out["failed"] == 0
