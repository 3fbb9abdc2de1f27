"""The example policies under `examples/policies/`: each validates with no finding, passes its own tests at 100%
asserted coverage, and every command an analyst runs on it (`decide`, `explain`, `batch`, `impact`, `generate -p`)
works on its own record layout, in its own words and with its own key figures."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

import policy_engine as pe
from policy_engine.cli import main

from ..conftest import ROOT

EXAMPLES = ROOT / "examples" / "policies"


@dataclass(frozen=True)
class Example:
    """An example policy, its version in force, the draft its impact is measured against, and the change."""

    id: str
    active: str
    draft: str
    changed_by: str  # the rule that decides every client the draft moves
    total: str  # an amount after classification whose portfolio total the draft changes

    @property
    def folder(self) -> Path:
        return EXAMPLES / self.id

    @property
    def samples(self) -> list[Path]:
        return sorted((self.folder / "samples" / "clients").glob("*.json"))

    @property
    def portfolio(self) -> Path:
        return self.folder / "samples" / "portfolio.jsonl"


WATCH = Example("early-warning-watch-list", "1.0.0", "1.1.0", "litigation_material", "exposure_under_action")
COVENANT = Example("pf-covenant-monitor", "1.0.0", "1.1.0", "dscr_lock_up", "trapped_cash")
ALL = [WATCH, COVENANT]
IDS = [e.id for e in ALL]

# Words of the reference policy and its regulation that an explanation of another policy must not borrow.
REFERENCE_WORDS = r"商业银行金融资产风险分类办法|loss-client-management|regulat|监管"
FOREIGN_WORDS = re.compile(rf"score|评分|得分|{REFERENCE_WORDS}", re.I)
# The impact report of a policy without a scorecard has no score column either.
FOREIGN_IN_IMPACT = FOREIGN_WORDS


def cli(*args: str) -> Result:
    """The command line against the examples' registry, as an analyst runs it from the repository root."""
    return CliRunner().invoke(main, ["--policies", str(EXAMPLES), *args], catch_exceptions=False)


def _policy_doc(example: Example, version: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((example.folder / f"policy-{version}.yaml").read_text(encoding="utf-8"))
    return doc


def test_the_examples_are_the_two_shipped_policies() -> None:
    assert sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir()) == sorted(IDS)


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_validate_finds_nothing(example: Example) -> None:
    r = cli("validate", "--format", "json", str(example.folder))
    assert r.exit_code == 0, r.stdout + r.stderr
    files = json.loads(r.stdout)["files"]
    assert [f["policy"] for f in files if f["kind"] == "policy"] == [f"{example.id}@{example.active}",
                                                                     f"{example.id}@{example.draft}"]
    assert {f["kind"] for f in files if f["kind"] != "policy"} == {"policy-tests"}  # checked as test reads them
    assert [d for f in files for d in f["diagnostics"]] == []  # no lint finding either


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_policy_tests_pass_with_every_rule_pinned_both_ways(example: Example) -> None:
    r = cli("test", str(example.folder), "--coverage", "--min-coverage", "100", "--format", "json")
    assert r.exit_code == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    coverage = out["coverage"]
    assert sorted(coverage) == [f"{example.id}@{example.active}", f"{example.id}@{example.draft}"]
    for version, c in coverage.items():
        assert c["percent"] == 100.0, (version, c["uncovered"], c["incidental"])


def test_the_draft_never_decides_by_date() -> None:
    for example in ALL:
        r = cli("decide", "--no-audit", "-p", example.id, "-c", str(example.samples[0]), "--as-of", "2026-06-30",
                "--format", "json")
        assert r.exit_code == 0, r.stderr
        assert json.loads(r.stdout)["policy"]["version"] == example.active


SAMPLES = [(e, s) for e in ALL for s in e.samples]


def test_six_to_ten_samples_each() -> None:
    for example in ALL:
        assert 6 <= len(example.samples) <= 10, example.id


@pytest.mark.parametrize(("example", "sample"), SAMPLES, ids=[f"{e.id}/{s.stem}" for e, s in SAMPLES])
def test_every_sample_decides_and_explains_in_the_policys_own_words(example: Example, sample: Path) -> None:
    r = cli("decide", "--no-audit", "-p", example.id, "-c", str(sample), "--format", "json")
    assert r.exit_code == 0, r.stderr
    record = json.loads(r.stdout)
    assert record["policy"]["id"] == example.id
    assert record["classification"]["decided_by"] in {"default", *(f["id"] for f in record["classification"]["floors"])}
    doc = _policy_doc(example, example.active)
    labels = {name: m["label"] for name, m in doc["metrics"].items()}
    for lang in ("en", "zh"):
        r = cli("explain", "-p", example.id, "-c", str(sample), "--lang", lang)
        assert r.exit_code == 0, r.stderr
        text = r.stdout
        assert not FOREIGN_WORDS.search(text), (lang, FOREIGN_WORDS.search(text))
        heading = "Key figures:" if lang == "en" else "关键指标："
        block = text[text.index(heading):].split("\n")[1:1 + len(doc["key_figures"])]
        assert [re.split("[:：]", line)[0].strip() for line in block] == [labels[n][lang] for n in doc["key_figures"]]


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_batch_decides_the_whole_portfolio_as_decide_does(example: Example, tmp_path: Path) -> None:
    out, rejects = tmp_path / "decisions.jsonl", tmp_path / "rejects.jsonl"
    r = cli("batch", str(example.portfolio), "-p", example.id, "--out", str(out), "--rejects", str(rejects),
            "--no-audit", "--format", "json", "--fail-on-rejects")
    assert r.exit_code == 0, r.stderr
    summary = json.loads(r.stdout)
    clients = [json.loads(line) for line in example.portfolio.read_text(encoding="utf-8").splitlines()]
    assert summary["accounting"]["rows_read"] == summary["accounting"]["decided"] == len(clients) >= 40
    assert summary["accounting"]["rejected"] == 0
    batch = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len({row["grade"] for row in batch}) == 4  # the portfolio reaches every level of the scale
    assert [c["client_id"] for c in clients[:len(example.samples)]] == [
        json.loads(s.read_text(encoding="utf-8"))["client_id"] for s in example.samples]  # the samples open it
    decider = pe.Decider(pe.load_policy(example.folder / f"policy-{example.active}.yaml"))
    for client, row in zip(clients, batch, strict=True):  # the vector evaluator agrees with the row evaluator
        record = decider.decide(client)
        c = record["classification"]
        assert (row["client_id"], row["grade"], row["decided_by"]) == (record["client_id"], c["grade"], c["decided_by"])
        assert row["floors"] == [f["id"] for f in c["floors"]]
        for key in ("warnings", "actions", "suppressed_actions"):
            assert row[key] == [item["id"] for item in record[key]], (client["client_id"], key)
        assert sorted(row["undetermined"]) == sorted(u["rule"] for u in record["undetermined"])
        for name, value in record["metrics"].items():
            got = row[f"metric.{name}"]
            assert got == value or (isinstance(value, float) and math.isclose(got, value, rel_tol=1e-12)), name


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_impact_of_the_draft_moves_only_the_clients_its_change_reaches(example: Example) -> None:
    r = cli("impact", f"{example.id}@{example.active}", f"{example.id}@{example.draft}",
            "--portfolio", str(example.portfolio), "--total", example.total, "--format", "json")
    assert r.exit_code == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["summary"]["rejected"] == 0
    changed = report["changed_clients"]
    moved = [c for c in changed if c["grade"][0] != c["grade"][1]]
    assert report["summary"]["downgrades"] == len(moved) > 0
    assert report["summary"]["upgrades"] == 0  # a tighter threshold never lifts a client
    for client in moved:
        assert client["decided_by"][1] == example.changed_by, client
    for client in changed:  # the rule's own warning comes and goes with it; nothing else moves
        assert client["warnings_added"] in ([], [example.changed_by]) and client["warnings_removed"] == [], client
    # the total of the amount that depends on the grade moves by what the row evaluator gives the moved clients
    clients = {c["client_id"]: c for c in map(json.loads, example.portfolio.read_text(encoding="utf-8").splitlines())}
    old, new = (pe.Decider(pe.load_policy(example.folder / f"policy-{version}.yaml"))
                for version in (example.active, example.draft))
    expected = sum(new.decide(clients[c["client_id"]])["metrics"][example.total]
                   - old.decide(clients[c["client_id"]])["metrics"][example.total] for c in moved)
    total = report["totals"][example.total]
    assert total["all"]["old"]["nulls"] == total["all"]["new"]["nulls"] == 0
    assert math.isclose(total["all"]["change"], expected) and expected > 0
    moved_segments = {c["segment"] for c in moved}
    assert {k for k, v in total["by_segment"].items() if v["change"] != 0} == moved_segments
    r = cli("impact", f"{example.id}@{example.active}", f"{example.id}@{example.draft}",
            "--portfolio", str(example.portfolio), "--format", "markdown", "--lang", "zh")
    assert r.exit_code == 0 and not FOREIGN_IN_IMPACT.search(r.stdout), r.stdout


@pytest.mark.parametrize("example", ALL, ids=IDS)
def test_generate_p_draws_a_portfolio_batch_decides_whole(example: Example, tmp_path: Path) -> None:
    portfolio = tmp_path / "generated.csv"
    r = cli("generate", "-p", example.id, "--n", "120", "--seed", "18", "--out", str(portfolio))
    assert r.exit_code == 0, r.stderr
    r = cli("batch", str(portfolio), "-p", example.id, "--out", str(tmp_path / "out.csv"),
            "--rejects", str(tmp_path / "rejects.jsonl"), "--no-audit", "--format", "json", "--fail-on-rejects")
    assert r.exit_code == 0, r.stderr
    accounting = json.loads(r.stdout)["accounting"]
    assert accounting["rows_read"] == accounting["decided"] == 120 and accounting["rejected"] == 0
