"""A policy whose ratios come from modules decides exactly as the same definitions written inline,
on the row and the vector evaluator; its hash and its audit snapshot cover the module texts."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.modules import bundle_text, compile_text, split_bundle
from policy_engine.policy.registry import Registry, load_policy

from ..conftest import DATA
from ..vector.test_one_semantics import _compare

REGISTRY = DATA / "modules" / "registry"
CLIENT = DATA / "modules" / "client.json"
_VOLATILE = ("decision_id", "evaluated_at", "policy")


@functools.cache
def _decider(policy_id: str) -> Decider:
    return Decider(Registry(REGISTRY).select(policy_id, version="1.0.0"))


_amount = st.one_of(st.none(), st.floats(min_value=-1e6, max_value=1e7, allow_nan=False), st.sampled_from([0.0, 1.0]))


@st.composite
def clients(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(min_value=0, max_value=6))
    income = draw(st.lists(st.one_of(st.none(), st.floats(-100, 100)), min_size=n, max_size=n))
    record: dict[str, Any] = {
        "client_id": f"c{draw(st.integers(0, 10**6))}", "as_of": "2025-06-30",
        "industry": draw(st.sampled_from(["manufacturing", "trade"])),
        "loan": {"days_past_due": draw(st.integers(min_value=0, max_value=400))},
        "financials": [{"period_end": f"{2020 + i // 4}-{3 * (i % 4) + 3:02d}-28", "net_income": v}
                       for i, v in enumerate(income)],
    }
    for key in ("assets", "liabilities"):
        value = draw(_amount)
        if value is not None:
            record[key] = value
    return record


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(clients(), min_size=20, max_size=20))
def test_imported_and_inline_definitions_decide_alike_on_both_evaluators(batch: list[dict[str, Any]]) -> None:
    imported, inline = _decider("mini-imports"), _decider("mini-inline")
    for record in batch:
        a, b = imported.decide(record), inline.decide(record)
        assert {k: v for k, v in a.items() if k not in _VOLATILE} == \
            {k: v for k, v in b.items() if k not in _VOLATILE}
    assert _compare(imported, batch) == len(batch)  # row == vector, field by field, record by record


def test_the_policy_hash_covers_the_module_texts_in_import_order() -> None:
    policy = load_policy(REGISTRY / "mini-imports" / "policy-1.0.0.yaml")
    texts = [(REGISTRY / m / "module-1.0.0.yaml").read_text(encoding="utf-8")
             for m in ("ratio-library", "debt-library")]
    assert [m.text for m in policy.modules] == texts
    assert policy.sha256 == hashlib.sha256(policy.bundle.encode("utf-8")).hexdigest()
    assert policy.sha256 != hashlib.sha256(policy.text.encode("utf-8")).hexdigest()
    text, modules = split_bundle(policy.bundle)
    assert text == policy.text and [(m.key, m.text) for m in modules] == [(m.key, m.text) for m in policy.modules]
    assert split_bundle(policy.text) == (policy.text, [])  # a policy without imports keeps its plain-text hash
    inline = load_policy(REGISTRY / "mini-inline" / "policy-1.0.0.yaml")
    assert inline.bundle == inline.text and inline.modules == ()


def test_editing_a_module_without_a_new_version_changes_the_policy_hash(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    shutil.copytree(REGISTRY, root)
    before = load_policy(root / "mini-imports" / "policy-1.0.0.yaml")
    module = root / "ratio-library" / "module-1.0.0.yaml"
    module.write_text(module.read_text(encoding="utf-8").replace("value: 1.0", "value: 0.8"), encoding="utf-8")
    after = load_policy(root / "mini-imports" / "policy-1.0.0.yaml")
    assert after.text == before.text and after.sha256 != before.sha256


def test_a_bundle_compiles_without_the_module_files() -> None:
    policy = load_policy(REGISTRY / "mini-imports" / "policy-1.0.0.yaml")
    again = compile_text(policy.bundle, "<snapshot>")
    assert again.sha256 == policy.sha256 and [m.key for m in again.modules] == [m.key for m in policy.modules]
    record = json.loads(CLIENT.read_text(encoding="utf-8"))
    a, b = Decider(policy).decide(record), Decider(again).decide(record)
    assert {k: v for k, v in a.items() if k not in ("decision_id", "evaluated_at")} == \
        {k: v for k, v in b.items() if k not in ("decision_id", "evaluated_at")}


def test_a_damaged_bundle_is_a_located_error() -> None:
    import pytest

    from policy_engine.diagnostics import PolicyError

    policy = load_policy(REGISTRY / "mini-imports" / "policy-1.0.0.yaml")
    damaged = bundle_text(policy.text, policy.modules).replace("min_ratio: {value: 1.0", "min_ratio: {value: 0.1")
    with pytest.raises(PolicyError) as e:
        split_bundle(damaged, "<snapshot x>")
    assert e.value.diagnostics[0].code == "broken-bundle" and "ratio-library@1.0.0" in e.value.diagnostics[0].message


def test_audit_replay_is_exact_after_the_module_file_changes_or_is_deleted(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    shutil.copytree(REGISTRY, root)
    db = tmp_path / "a.db"
    base = ["--policies", str(root), "--audit-db", str(db)]
    runner = CliRunner()
    r = runner.invoke(main, [*base, "decide", "-p", "mini-imports", "-c", str(CLIENT), "--format", "json"])
    assert r.exit_code == 0, r.stderr
    recorded = json.loads(r.stdout)
    module = root / "ratio-library" / "module-1.0.0.yaml"
    # Edited in place (same version: the threshold moves, the decision would differ), then deleted.
    module.write_text(module.read_text(encoding="utf-8").replace("value: 1.0", "value: 0.1"), encoding="utf-8")
    changed = runner.invoke(main, [*base, "--no-audit", "decide", "-p", "mini-imports", "-c", str(CLIENT),
                                   "--format", "json"])
    assert json.loads(changed.stdout)["metrics"]["thin"] is False != recorded["metrics"]["thin"]
    assert json.loads(changed.stdout)["policy"]["sha256"] != recorded["policy"]["sha256"]
    for step in ("edited", "deleted"):
        if step == "deleted":
            shutil.rmtree(root / "ratio-library")
        r = runner.invoke(main, [*base, "audit", "replay", "1", "--format", "json"])
        assert r.exit_code == 0 and json.loads(r.stdout)["status"] == "identical", (step, r.stdout, r.stderr)
    shown = runner.invoke(main, [*base, "audit", "show", "1", "--format", "json"])
    assert shown.exit_code == 0 and "[ratio-library 1.0.0]" in json.loads(shown.stdout)["explanation"]


def test_explain_names_the_module_of_an_imported_figure() -> None:
    r = CliRunner().invoke(main, ["--policies", str(REGISTRY), "--no-audit", "explain", "-p", "mini-imports",
                                  "-c", str(CLIENT)])
    assert r.exit_code == 0, r.stderr
    assert "Assets over liabilities: 0.90  [ratio-library 1.0.0]" in r.stdout
    assert "Leverage: 1.11  [debt-library 1.0.0]" in r.stdout


def test_a_dask_worker_decides_from_the_bundle_it_is_sent_without_module_files(tmp_path: Path) -> None:
    from policy_engine.portfolio.distributed import _policy_from_text

    root = tmp_path / "registry"
    shutil.copytree(REGISTRY, root)
    policy = load_policy(root / "mini-imports" / "policy-1.0.0.yaml")
    shutil.rmtree(root / "ratio-library")
    shutil.rmtree(root / "debt-library")
    worker = _policy_from_text(policy.bundle, policy.file)
    assert worker.sha256 == policy.sha256 and worker.imported == policy.imported
