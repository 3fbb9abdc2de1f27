"""A policy id that names nothing stops a batch (exit 2), whatever the input's kind: it concerns every
row, so no row is "rejected" for it and the run does not end 0 with an empty table."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import POLICIES, REFERENCE

SAMPLES = REFERENCE / "samples"


@pytest.mark.parametrize("portfolio", ["portfolio.csv", "portfolio.jsonl"])
@pytest.mark.parametrize(("policy", "code"), [("nosuch", "unknown-policy"),
                                              ("loss-client-management@9.9.9", "unknown-version")])
def test_an_unknown_policy_stops_the_batch(portfolio: str, policy: str, code: str, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", "batch", str(SAMPLES / portfolio),
                                  "-p", policy, "--out", str(out)], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert code in r.stderr and "rejected" not in r.stderr
    assert not out.exists()


@pytest.mark.parametrize("engine", [[], ["--engine", "dask", "--workers", "1"]])
def test_an_unknown_policy_stops_a_dataset_of_debtor_partitions(engine: list[str], tmp_path: Path) -> None:
    """A directory of JSON Lines partitions (a folder for the local run): the id is refused before the
    folder's kind is guessed from a policy that does not exist (it read as 'no .parquet files')."""
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    (dataset / "part-0.jsonl").write_bytes((SAMPLES / "portfolio.jsonl").read_bytes())
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "--no-audit", "batch", str(dataset), "-p", "nosuch",
                                  "--out", str(tmp_path / "out"), *engine], catch_exceptions=False)
    assert r.exit_code == 2, r.output
    assert "unknown-policy" in r.stderr and "rejected" not in r.stderr
