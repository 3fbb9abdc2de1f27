"""A computed action parameter refused at decide time is an error on the decision and a count in
every batch summary (JSON and text, local and per partition), never a silent drop; row and vector agree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.portfolio.batch import iter_records, read_table, render_summary, run_batch, summary

from ..compile.test_action_param_bounds import client, policy_text

# deadline_days = dpd * 2: dpd has no declared maximum, so only a decision can tell
CASE = {"action": "early_repayment", "params": '{deadline_days: {expr: "dpd * 2"}, share: {expr: "score_in"}}'}


@pytest.fixture(scope="module")
def policy() -> Any:
    return compile_document(load_yaml_text(policy_text(CASE), "refused.yaml"))


def clients() -> list[dict[str, Any]]:
    out = []
    for i, dpd in enumerate([0, 5, 150, 182, 183, 300, 20, 400, 90, 250]):
        c = client({"loan": {"days_past_due": dpd, "months_left": 12}})
        c["client_id"] = f"c{i}"
        out.append(c)
    return out


def refused_in(records: list[dict[str, Any]]) -> int:
    return sum(len([m for m in u["missing"] if m.startswith("params.")]) for r in records for u in r["undetermined"]
               if u.get("code") == "action-param-refused")


def test_batch_summaries_count_what_the_decisions_list(policy: Any, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clients()), encoding="utf-8")
    decider = Decider(policy)
    rows = [decider.decide(c) for c in clients()]
    # dpd 183, 250, 300 and 400 give 366 days and more; 182 gives 364; dpd 0 gives 0, but the action does not fire
    assert refused_in(rows) == 4
    result = run_batch(policy, read_table(path))
    vector = list(iter_records(result, decider))
    for r, v in zip(rows, vector, strict=True):
        assert r["undetermined"] == v["undetermined"] and r["actions"] == v["actions"]
    s = summary(result)
    assert s["refused_action_params"] == {"total": 4, "by_action": {"case": {"count": 4, "share": 0.4}}}
    assert "refused action parameters 4 (decisions list them as undetermined, code action-param-refused)" \
        in render_summary(s)
    assert "  case " in render_summary(s)


def test_a_summary_without_refusals_says_zero(tmp_path: Path) -> None:
    quiet = compile_document(load_yaml_text(policy_text(
        {"action": "early_repayment", "params": '{deadline_days: {expr: "months_left"}}'}), "quiet.yaml"))
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(c) + "\n" for c in clients()), encoding="utf-8")
    s = summary(run_batch(quiet, read_table(path)))
    assert s["refused_action_params"] == {"total": 0, "by_action": {}}
    assert "refused action parameters 0\n" in render_summary(s)


def test_the_batch_command_reports_the_count(policy: Any, tmp_path: Path) -> None:
    policy_file = tmp_path / "refused.yaml"
    policy_file.write_text(policy_text(CASE), encoding="utf-8")
    data = tmp_path / "p.jsonl"
    data.write_text("".join(json.dumps(c) + "\n" for c in clients()), encoding="utf-8")
    r = CliRunner().invoke(main, ["batch", str(data), "-p", str(policy_file), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["refused_action_params"]["total"] == 4


def test_partition_summaries_add_up_in_the_dask_summary(policy: Any, tmp_path: Path) -> None:
    import pandas as pd

    from policy_engine.portfolio.batch import flatten
    from policy_engine.portfolio.distributed import DaskRun, decide_partition

    whole = pd.DataFrame.from_records([flatten(c) for c in clients()])
    parts = []
    for i, start in enumerate((0, 5)):  # dpd 183 in the first half; 300, 400 and 250 in the second
        source = tmp_path / f"part-{i}.parquet"
        whole.iloc[start:start + 5].to_parquet(source, index=False)
        parts.append(decide_partition(policy.text, policy.file, str(source), str(tmp_path / f"o-{i}.parquet"),
                                      start, [], None))
    assert [p["refused_params"] for p in parts] == [{"case": 1}, {"case": 3}]
    s = DaskRun(policy, parts).summary()
    assert s["refused_action_params"] == {"total": 4, "by_action": {"case": {"count": 4, "share": 0.4}}}
    assert "refused action parameters 4" in render_summary(s)
