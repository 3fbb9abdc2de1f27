"""`generate --tables`: the long tables of a policy with scopes, in a folder, decided row for row.

The tables hold the same debtors as the JSON Lines `generate` writes with the same seed (the
agreement test decides both); here: the command's files, their shape, their accounting, its
refusals (exit 2), and chunks past the first.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import synthetic
from policy_engine.portfolio.long_tables import layout, run_long_batch

from ..conftest import DATA, ROOT

MULTI = DATA / "scopes" / "policy-multi-exposure.yaml"
REFERENCE = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_generate_tables_writes_one_file_per_table_and_every_row_is_decided(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "portfolio"
    r = CliRunner().invoke(main, ["generate", "-p", str(REFERENCE), "--n", "120", "--seed", "3", "--as-of",
                                  "2026-09-30", "--out", str(out), "--tables", fmt], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    policy = load_policy(REFERENCE)
    names = [t.name for t in layout(policy)]
    assert sorted(p.name for p in out.iterdir()) == sorted(f"{n}.{fmt}" for n in names)
    assert "exposures" in r.output and "payments" in r.output
    result = run_long_batch(policy, out)
    summary = result.summary()
    assert summary["debtors"] == {"read": 120, "decided": 120, "rejected": 0, "orphaned": 0}
    assert all(c["read"] == c["decided"] > 0 for c in summary.values()), summary
    exposures = pd.read_parquet(out / "exposures.parquet") if fmt == "parquet" else \
        pd.read_csv(out / "exposures.csv", dtype=str)
    per_debtor = exposures.groupby("client_id").size()
    assert per_debtor.min() >= 1 and per_debtor.max() <= synthetic.MAX_GRADED


def test_debtors_past_the_first_chunk_are_written_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(synthetic, "CHUNK", 7)
    policy = load_policy(MULTI)
    rows = synthetic.write_long_tables(policy, tmp_path / "t", 30, seed=4)
    assert rows["debtors"] == 30
    result = run_long_batch(policy, tmp_path / "t")
    assert result.decided == 30 and not result.orphans and not result.rejects
    assert rows["exposures"] == len(result.exposures)
    assert rows["payments"] == result.summary()["payments"]["decided"]


@pytest.mark.parametrize(("args", "says"), [
    (["--out", "{tmp}/x.csv", "--tables", "csv"], "names a file"),
    (["--out", "{tmp}/t", "--tables", "csv", "-p", str(ROOT / "policies" / "loss-client-management" /
                                                        "policy-1.1.0.yaml")], "declares no scopes"),
])
def test_generate_tables_refuses_what_it_cannot_write(tmp_path: Path, args: list[str], says: str) -> None:
    full = ["generate", "--n", "5", *[a.format(tmp=tmp_path) for a in args]]
    if "-p" not in full:
        full += ["-p", str(MULTI)]
    r = CliRunner().invoke(main, full)
    assert r.exit_code == 2, r.output
    assert says in r.output
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("day", [[], ["--as-of", "2027-09-30"]])
def test_tables_generated_for_a_policy_id_are_drawn_for_the_version_the_batch_decides_them_under(
        tmp_path: Path, day: list[str]) -> None:
    """Drawn for the version in force today but dated generate's usual day (2025-06-30, when no version with scopes
    is), or for today's version and dated --as-of, every debtor was refused by the batch of the folder
    (other-version; found by a hostile review): the version is the one in force on the day the debtors are dated."""
    policies = str(ROOT / "policies")
    out = tmp_path / "t"
    r = CliRunner().invoke(main, ["--policies", policies, "generate", "-p", "loss-client-management", "--n", "12",
                                  *day, "--out", str(out), "--tables", "csv"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    drawn_for = r.stderr.rstrip().split(" for loss-client-management ")[1].split(":")[0]
    r = CliRunner().invoke(main, ["--policies", policies, "--no-audit", "batch", "-p", "loss-client-management",
                                  str(out), "--format", "json"], catch_exceptions=False)
    summary = json.loads(r.stdout)
    assert summary["policy"]["version"] == drawn_for and summary["accounting"]["decided"] == 12, r.output
    if day:
        assert drawn_for == "2.1.0"
