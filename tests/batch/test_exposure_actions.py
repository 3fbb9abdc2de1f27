"""The exposure table (`--exposures-out`) names, per exposure, the recommended actions that name it
(`for_exposures`): the decision record's `actions[].exposures` read the other way round, for JSON Lines
of debtors and for a folder of long tables alike."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from policy_engine.cli import main
from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy

from ..conftest import ROOT

REFERENCE = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
SAMPLES = sorted((ROOT / "policies" / "loss-client-management" / "samples" / "debtors").glob("*.json"))
AS_OF = "2026-09-30"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["--no-audit", *args], catch_exceptions=False)


def _named(records: list[dict[str, object]]) -> set[tuple[str, str, str]]:
    """(debtor, exposure, action) for every action the row path's decision names an exposure in."""
    decider = Decider(load_policy(REFERENCE))
    out = set()
    for record in records:
        decision = decider.decide(record)
        for action in decision["actions"]:
            out |= {(decision["client_id"], e, action["id"]) for e in action.get("exposures", ())}
    return out


def _listed(table: pd.DataFrame) -> set[tuple[str, str, str]]:
    return {(str(c), str(e), a) for c, e, actions in zip(table["client_id"], table["exposure_id"], table["actions"],
                                                          strict=True) for a in actions}


@pytest.fixture(scope="module")
def debtors(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample debtors (each case the policy's recovery actions name exposures in) and generated ones."""
    folder = tmp_path_factory.mktemp("debtors")
    generated = folder / "generated.jsonl"
    assert run("generate", "-p", str(REFERENCE), "--n", "150", "--seed", "11", "--as-of", AS_OF,
               "--out", str(generated)).exit_code == 0
    path = folder / "debtors.jsonl"
    samples = [json.dumps(json.loads(f.read_text(encoding="utf-8"))) + "\n" for f in SAMPLES]
    path.write_text("".join(samples) + generated.read_text(encoding="utf-8"), encoding="utf-8")
    return path


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".csv"])
def test_each_exposure_lists_the_actions_that_name_it(tmp_path: Path, debtors: Path, suffix: str) -> None:
    out = tmp_path / f"e{suffix}"
    r = run("batch", str(debtors), "-p", str(REFERENCE), "--out", str(tmp_path / "d.parquet"),
            "--exposures-out", str(out))
    assert r.exit_code == 0, r.output
    table = {".parquet": pd.read_parquet, ".jsonl": lambda p: pd.read_json(p, lines=True),
             ".csv": lambda p: pd.read_csv(p, keep_default_na=False).assign(
                 actions=lambda f: [x.split(";") if x else [] for x in f["actions"]])}[suffix](out)
    records = [json.loads(line) for line in debtors.read_text(encoding="utf-8").splitlines()]
    want = _named(records)
    assert {a for _, _, a in want} >= {"enforce_collateral", "legal_recovery", "reduce_exposure"}
    assert _listed(table) == want


def test_a_folder_of_long_tables_gives_the_same_column(tmp_path: Path) -> None:
    common = ["generate", "-p", str(REFERENCE), "--n", "150", "--seed", "11", "--as-of", AS_OF]
    assert run(*common, "--out", str(tmp_path / "t"), "--tables", "parquet").exit_code == 0
    assert run(*common, "--out", str(tmp_path / "d.jsonl")).exit_code == 0
    for src, name in ((tmp_path / "t", "long"), (tmp_path / "d.jsonl", "nested")):
        r = run("batch", str(src), "-p", str(REFERENCE), "--exposures-out", str(tmp_path / f"{name}.parquet"))
        assert r.exit_code == 0, r.output
    long, nested = (pd.read_parquet(tmp_path / f"{n}.parquet") for n in ("long", "nested"))
    assert _listed(long) == _listed(nested) == _named(
        [json.loads(x) for x in (tmp_path / "d.jsonl").read_text(encoding="utf-8").splitlines()])
