"""impact 1.x -> 2.0: each 1.x row converted to a 2.0 record and decided as a debtor (scoped vector path);
the figures equal deciding each side row by row, the report counts what the conversion assumed, and
every row is compared or rejected with its reason. Two scoped versions compare a debtors JSON Lines file."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy
from policy_engine.review.convert import convert_record

from ..conftest import POLICIES, REFERENCE

OLD = str(REFERENCE / "policy-1.1.0.yaml")
NEW = "loss-client-management@2.0.0"
PORTFOLIO = REFERENCE / "samples" / "portfolio.jsonl"
DEBTORS = sorted((REFERENCE / "samples" / "debtors").glob("*.json"))


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, ["--policies", str(POLICIES), *args], catch_exceptions=False)


def _impact(*args: str, portfolio: Path = PORTFOLIO, old: str = OLD, new: str = NEW) -> Any:
    return _cli("impact", old, new, "--portfolio", str(portfolio), *args)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    r = _impact("--format", "json")
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_figures_equal_deciding_each_side_row_by_row(report: dict[str, Any]) -> None:
    """The vector path on converted rows gives what decide gives on each 1.x record and its conversion."""
    old, new = Decider(load_policy(REFERENCE / "policy-1.1.0.yaml")), Decider(load_policy(REFERENCE /
                                                                                            "policy-2.0.0.yaml"))
    grades = report["migration"]["grades"]
    counts = [[0] * len(grades) for _ in grades]
    changed = set()
    for line in PORTFOLIO.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        converted = convert_record(record)
        assert converted.record is not None
        a = old.decide(record)["classification"]["grade"]
        b = new.decide(converted.record)["classification"]["grade"]  # the debtor's: the worst exposure grade
        counts[grades.index(a)][grades.index(b)] += 1
        if a != b:
            changed.add(record["client_id"])
    assert report["migration"]["counts"] == counts
    assert report["clients"] == sum(map(sum, counts)) == report["rejected"]["rows_read"]
    assert {c["client_id"] for c in report["changed_clients"] if c["grade"][0] != c["grade"][1]} == changed
    assert report["old"]["version"] == "1.1.0" and report["new"]["version"] == "2.0.0"


def test_the_report_counts_every_assumption(report: dict[str, Any]) -> None:
    conv = report["conversion"]
    assert conv["converted"] == report["clients"] and conv["not_converted"] == 0
    facts = conv["assumed_facts"]
    expected: Counter[str] = Counter()
    for line in PORTFOLIO.read_text(encoding="utf-8").splitlines():
        expected.update({n.code for n in convert_record(json.loads(line)).notes})
    assert {code: f["records"] for code, f in facts.items()} == dict(expected)
    assert facts["size-class"]["kind"] == "assumed" and facts["no-accounting"]["kind"] == "unknown"
    assert facts["bank-share-not-carried"]["kind"] == "not_carried"
    # a side without a scorecard shows no score, never a made-up 0
    assert all(c["score"][1] is None for c in report["changed_clients"])


@pytest.mark.parametrize("fmt, marker", [("text", "Assumed facts"), ("markdown", "Assumed facts"),
                                         ("json", '"assumed_facts"')])
def test_every_format_has_the_assumed_facts(fmt: str, marker: str) -> None:
    r = _impact("--format", fmt)
    assert r.exit_code == 0, r.stderr
    assert marker in r.stdout and "size-class" in r.stdout


def test_a_chinese_report_states_each_assumption_in_chinese() -> None:
    out = _impact("--format", "markdown", "--lang", "zh").stdout
    rows = [line for line in out.splitlines() if line.startswith("| `currency`") or line.startswith("| currency")]
    assert rows and rows[0].rstrip(" |").endswith("1.x 金额以人民币计"), rows
    assert "1.x amounts are in CNY" not in out


def test_html_and_chinese_headings(tmp_path: Path) -> None:
    page = tmp_path / "impact.html"
    r = _impact("--format", "text", "--lang", "zh", "--html", str(page))
    assert r.exit_code == 0, r.stderr
    assert "假设的事实" in r.stdout
    html = page.read_text(encoding="utf-8")
    assert 'id="assumed_facts"' in html and "<script" not in html


def test_fail_if_gates_the_comparison(report: dict[str, Any]) -> None:
    assert report["summary"]["upgrades"] > 0
    r = _impact("--format", "json", "--fail-if", "upgrades > 0", "--fail-if", "rejected > 0")
    assert r.exit_code == 1
    assert "gate failed: upgrades" in r.stderr and "rejected" not in r.stderr.replace("gate failed: upgrades", "")


def test_a_row_that_cannot_be_converted_is_rejected_and_counted(tmp_path: Path) -> None:
    lines = PORTFOLIO.read_text(encoding="utf-8").splitlines()
    undated = json.loads(lines[1])
    del undated["as_of"]  # 1.x decides it (today), 2.0 cannot date its facts
    lines[1] = json.dumps(undated)
    src = tmp_path / "p.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    r = _impact("--format", "json", "--rejects", str(rejects), "--fail-if", "rejected > 0", portfolio=src)
    assert r.exit_code == 1
    rep = json.loads(r.stdout)
    assert rep["rejected"]["rows_read"] == len(lines) == rep["clients"] + rep["rejected"]["rows"]
    assert rep["conversion"]["not_converted"] == 1 and rep["rejected"]["new"] == 1
    (rej,) = [json.loads(x) for x in rejects.read_text(encoding="utf-8").splitlines()]
    assert rej["row"] == 2 and rej["side"] == "new" and rej["problems"][0]["code"] == "no-as-of"


def test_a_scoped_old_side_is_a_usage_error() -> None:
    r = _impact("--format", "json", old=NEW, new="loss-client-management@1.1.0")
    assert r.exit_code == 2
    assert "scoped-old-side" in r.stderr


def test_two_scoped_versions_compare_debtors(tmp_path: Path) -> None:
    debtors = tmp_path / "debtors.jsonl"
    debtors.write_text("".join(json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n" for f in DEBTORS),
                       encoding="utf-8")
    text = (REFERENCE / "policy-2.0.0.yaml").read_text(encoding="utf-8")
    draft = tmp_path / "loss-client-management" / "policy-2.0.1.yaml"
    draft.parent.mkdir()
    module = REFERENCE.parent / "financial-difficulty"  # 2.0.x imports it from the folder beside its own
    shutil.copytree(module, tmp_path / module.name)
    stricter = text.replace("version: 2.0.0\n", "version: 2.0.1\n", 1).replace(
        "  contagion_share:\n    value: 0.10", "  contagion_share:\n    value: 0.01", 1).replace(
        "      when: days_past_due > 90\n", "      when: days_past_due > 30\n", 1)  # 35 and 40 days move
    assert stricter.count("0.01") > text.count("0.01") and "days_past_due > 30\n" in stricter
    draft.write_text(stricter, encoding="utf-8")
    same = _impact("--format", "json", portfolio=debtors, new=NEW, old=NEW)
    assert same.exit_code == 0, same.stderr
    rep = json.loads(same.stdout)
    assert rep["clients"] == len(DEBTORS) and rep["summary"]["grade_changed"] == 0 and "conversion" not in rep
    assert rep["summary"]["exposure_grade_changed"] == rep["summary"]["nonperforming_balance_change"] == 0
    # the balance-weighted migration weighs each debtor by the sum of its exposures' balances
    balance = sum(e["balance"] for f in DEBTORS for e in json.loads(f.read_text(encoding="utf-8"))["exposures"])
    assert sum(map(sum, rep["migration"]["balance"])) == pytest.approx(balance)
    moved = _impact("--format", "json", portfolio=debtors, old=NEW, new=str(draft))
    assert moved.exit_code == 0, moved.stderr
    rep = json.loads(moved.stdout)
    assert rep["clients"] == len(DEBTORS)
    assert rep["summary"]["upgrades"] == 0  # a lower contagion threshold only moves debtors down
    new = Decider(load_policy(draft))
    old = Decider(load_policy(REFERENCE / "policy-2.0.0.yaml"))
    down = sum(new.decide(r)["classification"]["grade"] != old.decide(r)["classification"]["grade"]
               for r in (json.loads(f.read_text(encoding="utf-8")) for f in DEBTORS))
    assert rep["summary"]["downgrades"] == down > 0
    # The exposures' own moves, decided one by one: one may move into non-performing where its debtor (graded by
    # its worst exposure) does not, and the report read '0 change grade' while millions moved (a review's finding).
    pairs = [(x, y) for r in (json.loads(f.read_text(encoding="utf-8")) for f in DEBTORS)
             for x, y in zip(old.decide(r)["exposures"], new.decide(r)["exposures"], strict=True)]
    balances = [e["balance"] for f in DEBTORS for e in json.loads(f.read_text(encoding="utf-8"))["exposures"]]
    grades = rep["migration"]["grades"]
    counts = [[sum((x["grade"], y["grade"]) == (g, h) for x, y in pairs) for h in grades] for g in grades]
    moved_e = rep["exposures"]
    assert moved_e["compared"] == len(pairs) and moved_e["migration"]["counts"] == counts
    assert moved_e["downgrades"] == rep["summary"]["exposure_downgrades"] == sum(
        grades.index(y["grade"]) > grades.index(x["grade"]) for x, y in pairs) > rep["summary"]["downgrades"]
    for side, at in (("old", 0), ("new", 1)):
        bad = [b for (pair, b) in zip(pairs, balances, strict=True) if pair[at]["nonperforming"]]
        assert moved_e["nonperforming"][side] == {"exposures": len(bad), "balance": pytest.approx(sum(bad))}
    assert rep["summary"]["nonperforming_balance_change"] == pytest.approx(
        moved_e["nonperforming"]["new"]["balance"] - moved_e["nonperforming"]["old"]["balance"])
    gated = _impact("--format", "json", "--fail-if", "exposure_downgrades > 0", portfolio=debtors, old=NEW,
                    new=str(draft))
    assert gated.exit_code == 1 and json.loads(gated.stdout)["gates"][0]["value"] == moved_e["downgrades"]
    text = _impact("--format", "text", portfolio=debtors, old=NEW, new=str(draft)).stdout
    assert f"{len(pairs)} exposures: {moved_e['grade_changed']} change grade" in text.replace("\n", " ")
    assert "Exposure grade migration, exposures (rows: before, columns: after)" in text
    # each changed debtor names the exposures that moved, with both grades and deciding rules, and the actions
    # naming them (for_exposures) when those changed, as decide does
    records = {r["client_id"]: r for r in (json.loads(f.read_text(encoding="utf-8")) for f in DEBTORS)}

    def naming(decision: dict[str, Any], kind: str, eid: str) -> list[str]:
        return [x["id"] for x in decision[kind] if eid in x.get("exposures", ())]

    for c in rep["changed_clients"]:
        record = records[c["client_id"]]
        was, now = old.decide(record), new.decide(record)
        want = []
        for x, y in zip(was["exposures"], now["exposures"], strict=True):
            entry: dict[str, Any] = {"exposure_id": x["exposure_id"], "grade": [x["grade"], y["grade"]],
                                     "decided_by": [x["decided_by"], y["decided_by"]]}
            for kind in ("warnings", "actions"):
                pair = [naming(was, kind, x["exposure_id"]), naming(now, kind, x["exposure_id"])]
                if pair[0] != pair[1]:
                    entry[kind] = pair
            if (x["grade"], x["decided_by"]) != (y["grade"], y["decided_by"]) or len(entry) > 3:
                want.append(entry)
        assert c["exposures_changed"] == want
    assert any(c["exposures_changed"] for c in rep["changed_clients"])


def test_a_rule_one_version_has_alone_is_counted_even_where_it_fired_for_none(tmp_path: Path) -> None:
    """A new warning that fired for no debtor was left out of the report: the committee could not see it was added
    and fired 0 times."""
    debtors = tmp_path / "debtors.jsonl"
    debtors.write_text("".join(json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n" for f in DEBTORS),
                       encoding="utf-8")
    text = (REFERENCE / "policy-2.0.0.yaml").read_text(encoding="utf-8")
    shutil.copytree(REFERENCE.parent / "financial-difficulty", tmp_path / "financial-difficulty")
    draft = tmp_path / "loss-client-management" / "policy-2.0.1.yaml"
    draft.parent.mkdir()
    renamed = text.replace("version: 2.0.0\n", "version: 2.0.1\n", 1).replace(
        "  - id: receivables_slow\n", "  - id: receivables_slow_v2\n", 1)
    assert renamed.count("receivables_slow_v2") == 1
    draft.write_text(renamed, encoding="utf-8")
    r = _impact("--format", "json", portfolio=debtors, old=NEW, new=str(draft))
    assert r.exit_code == 0, r.stderr
    warnings = json.loads(r.stdout)["warnings"]
    for rule in ("receivables_slow", "receivables_slow_v2"):  # fired for none of the samples, on either side
        assert {k: warnings[rule][k] for k in ("old", "new", "change")} == {"old": 0, "new": 0, "change": 0}, rule
    assert "bankruptcy_filing" not in warnings  # both versions have it and it fired for none: nothing to say


def test_an_exposure_gate_over_client_records_is_a_usage_error() -> None:
    r = _cli("impact", "loss-client-management@1.0.0", "loss-client-management@1.1.0", "--portfolio",
             str(REFERENCE / "samples" / "portfolio.csv"), "--fail-if", "exposure_downgrades > 0", "--format", "json")
    assert r.exit_code == 2
    [error] = [e for e in json.loads(r.stderr)["errors"] if e["severity"] == "error"]  # beside 1.0.0 not in force
    assert error["code"] == "bad-gate" and "no figure 'exposure_downgrades'" in error["message"]


def test_blank_lines_between_debtors_are_no_rows_and_rows_keep_their_line(tmp_path: Path) -> None:
    """A blank line is no row (as in batch): the debtors after it are compared, a reject names its own line."""
    lines = [json.dumps(json.loads(f.read_text(encoding="utf-8"))) for f in DEBTORS[:3]]
    debtors = tmp_path / "debtors.jsonl"
    debtors.write_text(f"{lines[0]}\n\n{{}}\n{lines[1]}\n\n{lines[2]}\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    r = _impact("--format", "json", "--rejects", str(rejects), portfolio=debtors, old=NEW,
                new="loss-client-management@2.0.1")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["clients"] == 3
    assert rep["rejected"] == {"old": 1, "new": 1, "rows": 1, "rows_read": 4, "compared": 3}
    assert [json.loads(x)["row"] for x in rejects.read_text("utf-8").splitlines()] == [3]


def test_two_scoped_versions_need_json_lines(tmp_path: Path) -> None:
    r = _impact("--format", "json", old=NEW, portfolio=REFERENCE / "samples" / "portfolio.csv")
    assert r.exit_code == 2
    assert "scoped-portfolio-format" in r.stderr
    # a folder of debtor records is no folder of long tables: said, with what to write instead
    r = _impact("--format", "json", old=NEW, portfolio=REFERENCE / "samples" / "debtors")
    [error] = json.loads(r.stderr)["errors"]
    assert r.exit_code == 2 and error["code"] == "file-missing"
    assert "debtor records (.json files) go as one JSON Lines file" in error["hint"]


def test_client_records_under_two_debtor_versions_compare_nothing_and_are_refused(tmp_path: Path) -> None:
    """The 1.x sample portfolio given to compare two 2.x versions: every row rejected on both sides, so the report
    said '0 debtors: 0 change grade' with exit 0, where the same file as CSV is refused (exit 2)."""
    r = _impact("--format", "json", old=NEW, new="loss-client-management@2.0.1")
    assert r.exit_code == 2
    (error,) = json.loads(r.stderr)["errors"]
    assert error["code"] == "wrong-record-kind" and "nothing was compared (line 1: this is a client record 1.x" \
        in error["message"] and "policy-engine convert" in error["hint"]
    mixed = tmp_path / "mixed.jsonl"  # one debtor among them: a portfolio with rejects, compared as before
    mixed.write_text(PORTFOLIO.read_text(encoding="utf-8") + json.dumps(json.loads(DEBTORS[0].read_text("utf-8")))
                     + "\n", encoding="utf-8")
    r = _impact("--format", "json", old=NEW, new="loss-client-management@2.0.1", portfolio=mixed)
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["rejected"]["compared"] == 1


def test_undetermined_counts_say_why_a_warning_fell(report: dict[str, Any]) -> None:
    """A converted record has no cash flow for debt service: dscr_low is undetermined for it on the new
    side, not passed. The report counts, per rule and side, the clients it was undetermined for, as
    deciding each record gives them; a fall in a warning's count is then not read as an improvement."""
    old, new = Decider(load_policy(REFERENCE / "policy-1.1.0.yaml")), Decider(load_policy(REFERENCE /
                                                                                            "policy-2.0.0.yaml"))
    expected: dict[str, Counter[str]] = {"old": Counter(), "new": Counter()}
    for line in PORTFOLIO.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        converted = convert_record(record).record
        for side, decision in (("old", old.decide(record)), ("new", new.decide(converted))):
            expected[side].update({u["rule"] for u in decision["undetermined"] if u["kind"] == "warning"})
    for side in ("old", "new"):
        got = {k: v[f"{side}_undetermined"] for k, v in report["warnings"].items() if v[f"{side}_undetermined"]}
        assert got == dict(expected[side])
    assert report["warnings"]["dscr_low"]["new_undetermined"] == report["clients"]
    text = _impact("--format", "text").stdout
    assert "undetermined (before → after)" in text
    assert "undetermined (before → after)" in _impact("--format", "markdown").stdout


def test_counts_without_undetermined_rules_carry_no_undetermined_keys() -> None:
    """Most comparisons decide every rule: their counts stay old / new / change, and the tables no column."""
    from policy_engine.review.impact import _before_after

    assert _before_after(["a", "a", "b"], ["a"]) == {"a": {"old": 2, "new": 1, "change": -1},
                                                      "b": {"old": 1, "new": 0, "change": -1}}
    assert _before_after(["a"], [], Counter(), Counter({"c": 3})) == {
        "a": {"old": 1, "new": 0, "change": -1, "old_undetermined": 0, "new_undetermined": 0},
        "c": {"old": 0, "new": 0, "change": 0, "old_undetermined": 0, "new_undetermined": 3}}


def test_a_listed_client_names_what_fired_before_and_is_undetermined_after(report: dict[str, Any]) -> None:
    """dscr_low fired for a 1.x client and cannot be decided on its converted record: '?dscr_low', not
    '-dscr_low' (which would read as the warning gone), as deciding the two records gives it."""
    old, new = Decider(load_policy(REFERENCE / "policy-1.1.0.yaml")), Decider(load_policy(REFERENCE /
                                                                                            "policy-2.0.0.yaml"))
    records = {json.loads(line)["client_id"]: json.loads(line)
               for line in PORTFOLIO.read_text(encoding="utf-8").splitlines()}
    marked = 0
    for c in report["changed_clients"]:
        record = records[c["client_id"]]
        a, b = old.decide(record), new.decide(convert_record(record).record)
        before = {w["id"] for w in a["warnings"]}
        after = {w["id"] for w in b["warnings"]}
        undetermined = {u["rule"] for u in b["undetermined"] if u["kind"] == "warning"}
        assert c["warnings_undetermined"] == sorted((before - after) & undetermined)
        assert c["warnings_removed"] == sorted(before - after - undetermined)
        marked += len(c["warnings_undetermined"])
    assert marked > 0
    text = _impact("--format", "text").stdout
    assert "?dscr_low" in text and "?rule: fired before, undetermined after" in text


def test_a_policy_with_segment_labels_names_its_industries_in_words(tmp_path: Path) -> None:
    """2.1.0 labels its segments: a Chinese report reads 按行业 and 制造业, not 按industry and manufacturing;
    the JSON keeps the ids as keys (gates and machines read them) and carries the labels beside them. A segment
    without a client is left out of the totals table, as it is of the per-segment table."""
    debtors = tmp_path / "debtors.jsonl"
    debtors.write_text("".join(json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n" for f in DEBTORS),
                       encoding="utf-8")
    old, new = "loss-client-management@2.0.2", "loss-client-management@2.1.0"
    args = ("--total", "total_exposure", "--as-of", "2027-07-01")
    rep = json.loads(_impact("--format", "json", *args, portfolio=debtors, old=old, new=new).stdout)
    assert rep["segment_by"] == "industry" and rep["segment_label"] == {"zh": "行业", "en": "Industry"}
    assert rep["segment_labels"]["manufacturing"] == {"zh": "制造业", "en": "Manufacturing"}
    assert set(rep["by_segment"]) == {"manufacturing", "trade"}
    assert rep["totals"]["total_exposure"]["by_segment"]["energy"]["clients"] == 0  # kept for a gate
    for lang, heading, segment, absent in (("zh", "按行业", "制造业", "manufacturing"),
                                           ("en", "By Industry", "Manufacturing", "manufacturing")):
        for fmt in ("text", "markdown"):
            out = _impact("--format", fmt, "--lang", lang, *args, portfolio=debtors, old=old, new=new).stdout
            assert heading in out and segment in out and absent not in out, (lang, fmt)
            assert "energy" not in out and ("能源" if lang == "zh" else "Energy") not in out
    zh = _impact("--format", "text", "--lang", "zh", *args, portfolio=debtors, old=old, new=new).stdout
    assert re.search(r"^  24-case-trader-funding-chain-broken\s+商贸\s", zh, re.M), zh
    # Chinese lists each warning and action by its label and id (an action without one by its type's name)
    assert re.search(r"^  逾期（overdue）\s+0\s+8\s+\+8$", zh, re.M), zh
    assert re.search(r"^  按月贷后检视（review_monthly）\s", zh, re.M)
    assert re.search(r"^  启动应急预案（emergency_plan）\s", zh, re.M)  # no label: its type's name
    en = _impact("--format", "text", *args, portfolio=debtors, old=old, new=new).stdout
    assert re.search(r"^  overdue\s+0\s+8\s+\+8$", en, re.M) and "Overdue (overdue)" not in en
    gated = _impact("--format", "json", *args, "--fail-if", "total.total_exposure[energy].new_count > 0",
                    portfolio=debtors, old=old, new=new)
    assert gated.exit_code == 0 and json.loads(gated.stdout)["failed_gates"] == []


def test_a_warning_or_action_naming_other_exposures_is_a_change(tmp_path: Path) -> None:
    """Only for_exposures differs: the same warnings and actions fire, naming other exposures. That is a change of
    what the decision says (which loan to review, which collateral to enforce), counted as decide shows it."""
    import random

    from ..vector.test_scoped_agreement import POLICIES as SCOPED
    from ..vector.test_scoped_agreement import _debtor

    source = SCOPED["policy-aggregations"].file
    text = Path(source).read_text(encoding="utf-8")
    old, new = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old.write_text(text, encoding="utf-8")
    unsecured = "for_exposures: late >= 1 and not secured"
    edited = text.replace(unsecured, f"{unsecured} or late >= 2", 1).replace(
        "for_exposures: grade_at_least('substandard') and coalesce(secured, False) and collateral > 0",
        "for_exposures: grade_at_least('substandard') and collateral > 0", 1)
    assert "or late >= 2" in edited and "coalesce(secured, False) and collateral" not in edited
    new.write_text(edited, encoding="utf-8")
    late = [{"due_date": "2025-01-31", "paid_date": "2025-02-20"}]

    def debtor(cid: str, *exposures: dict[str, Any]) -> dict[str, Any]:
        return {"client_id": cid, "as_of": "2025-09-30", "industry": "manufacturing", "exposures": list(exposures)}

    records = [  # each fires the same warning or action under both, naming more exposures under the new
        debtor("W", {"exposure_id": "E0", "balance": 100, "days_past_due": 0, "secured": False, "schedule": late},
               {"exposure_id": "E1", "balance": 100, "days_past_due": 0, "secured": True, "schedule": late * 2}),
        debtor("A", {"exposure_id": "E0", "balance": 100, "days_past_due": 95, "secured": True, "collateral_value": 50},
               {"exposure_id": "E1", "balance": 100, "days_past_due": 95, "secured": False, "collateral_value": 50}),
        *(_debtor(random.Random(5), i) for i in range(100))]
    portfolio = tmp_path / "debtors.jsonl"
    portfolio.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    r = _impact("--format", "json", portfolio=portfolio, old=str(old), new=str(new))
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    summary = report["summary"]
    a, b = Decider(load_policy(old)), Decider(load_policy(new))
    # the listed entry says why: which exposure the warning or action now names too
    listed = {c["client_id"]: c for c in report["changed_clients"]}
    assert [(e["exposure_id"], e.get("warnings"), e.get("actions")) for e in listed["W"]["exposures_changed"]] == [
        ("E1", [[], ["late_unsecured"]], None)]
    assert [(e["exposure_id"], e.get("warnings"), e.get("actions")) for e in listed["A"]["exposures_changed"]] == [
        ("E1", None, [[], ["enforce"]])]
    text = _impact("--format", "text", portfolio=portfolio, old=str(old), new=str(new)).stdout
    assert "E1: warnings +late_unsecured" in text and "E1: actions +enforce" in text

    def named(record: dict[str, Any], kind: str) -> list[tuple[str, tuple[str, ...]]]:
        return [(x["id"], tuple(x.get("exposures", ()))) for x in record[kind]]

    decided = [(a.decide(x), b.decide(x)) for x in records]
    for kind in ("warnings", "actions"):
        changed = sum(named(x, kind) != named(y, kind) for x, y in decided)
        ids_only = sum([i for i, _ in named(x, kind)] != [i for i, _ in named(y, kind)] for x, y in decided)
        assert summary[f"{kind}_changed"] == changed > ids_only, (kind, changed, ids_only)  # more than ids show


def test_a_report_of_debtors_counts_debtors_and_shows_exposure_moves_in_their_own_column(tmp_path: Path) -> None:
    """Two versions grading exposures compare debtors: the readable report counts and lists debtors (债务人), not
    clients or rows, and which exposure moved gets a column of its own (it was packed into 'decided by'); a
    comparison of 1.x clients keeps its words and has no such column."""
    debtors = tmp_path / "debtors.jsonl"
    debtors.write_text("".join(json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n" for f in DEBTORS),
                       encoding="utf-8")
    debtors.write_text(debtors.read_text(encoding="utf-8") + '{"client_id": "bad"}\n', encoding="utf-8")
    pair = {"portfolio": debtors, "old": "loss-client-management@2.0.2", "new": "loss-client-management@2.1.0"}
    args = ("--as-of", "2027-07-01")
    rep = json.loads(_impact("--format", "json", *args, **pair).stdout)
    assert rep["records"] == "debtors" and rep["clients"] == len(DEBTORS)
    md = _impact("--format", "markdown", *args, **pair)
    assert md.exit_code == 0, md.stderr
    assert f"{len(DEBTORS)} debtors: " in md.stdout and "**Debtors that changed**" in md.stdout
    assert "| debtors read | " in md.stdout and " clients" not in md.stdout and "rows read" not in md.stdout
    header = next(line for line in md.stdout.splitlines() if line.startswith("| debtor | "))
    assert header.endswith("| decided by | Warnings | Actions | Exposures changed |"), header
    line = next(line for line in md.stdout.splitlines() if line.startswith("| 04-financial-overdue-5-days |"))
    # on 2027-07-01 the sample's bureau report (2026-09-15) and internal rating (2026-03-31) are stale
    assert line.endswith("| overdue_any → overdue_any | +bureau_report_stale +days_past_due_off_schedule "
                         "+internal_rating_stale +overdue | +collect_arrears | E1: warnings "
                         "+days_past_due_off_schedule, actions +collect_arrears; E2: warnings "
                         "+days_past_due_off_schedule |"), line
    assert "1 debtor(s) rejected and not compared" in md.stderr
    zh = _impact("--format", "text", "--lang", "zh", *args, **pair).stdout
    assert "发生变化的债务人" in zh and "读取债务人数" in zh
    assert "E1: 预警 +days_past_due_off_schedule，措施 +collect_arrears" in zh
    clients = _impact("--format", "markdown")  # 1.1.0 clients converted for 2.0.0: clients they stay
    assert json.loads(_impact("--format", "json").stdout)["records"] == "clients"
    assert "**Clients that changed**" in clients.stdout and "Exposures changed" not in clients.stdout


@pytest.mark.parametrize("new", ["loss-client-management@1.1.0", "loss-client-management@2.0.0"])
def test_debtor_records_under_two_client_versions_are_refused_naming_the_file(tmp_path: Path, new: str) -> None:
    """The refusal's message began with the repr of the whole table (a pandas frame, 2.8 KB) and its hint said
    --policy-version, which impact does not take (found by a CI review). Compared 1.x against 2.0.0, whose side
    converts 1.x records, they exited 0 with nothing compared (a helper's finding)."""
    debtors = tmp_path / "debtors.jsonl"
    debtors.write_text("".join(json.dumps(json.loads(p.read_text("utf-8"))) + "\n" for p in DEBTORS[:3]),
                       encoding="utf-8")
    r = _impact("--format", "json", old="loss-client-management@1.0.0", new=new, portfolio=debtors)
    assert r.exit_code == 2
    (error,) = json.loads(r.stderr)["errors"]
    assert error["code"] == "wrong-record-kind" and error["file"] == str(debtors)
    assert error["message"].startswith(f"{debtors}: no record is of the kind the two versions read")
    assert "Table(" not in error["message"] and "--policy-version" not in error["hint"]
    assert error["hint"].startswith("compare versions that read it (ID@2.")
