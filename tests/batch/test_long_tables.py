"""Long tables: the layout from the policy's scopes, and the same debtors as JSON Lines and as long tables.

A seeded synthetic portfolio of 2,000 debtors per policy is written both ways by the generator
(the same draws): nested records, one per line, decided by ``batch``'s scoped path, and long
tables (Parquet, and CSV for a smaller one), decided by :mod:`policy_engine.portfolio.long_tables`.
The debtor and exposure decision tables must be equal cell for cell. The rows of the child tables
are shuffled across debtors first (each debtor's rows keep their order), so the join depends on
the ids only, never on rows being together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from policy_engine.policy.registry import load_policy
from policy_engine.portfolio import long_tables, scoped_batch, synthetic
from policy_engine.portfolio.long_tables import TableSpec, layout, run_long_batch
from policy_engine.portfolio.scoped_batch import run_scoped_batch

from ..conftest import DATA, ROOT

REFERENCE = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"
MULTI = DATA / "scopes" / "policy-multi-exposure.yaml"
POLICIES = {"reference-2.0.0": REFERENCE, "multi-exposure": MULTI}
AS_OF = "2026-09-30"


def test_the_layout_follows_the_scopes_of_the_reference_policy() -> None:
    tables = {t.name: t for t in layout(load_policy(REFERENCE))}
    assert list(tables) == ["debtors", "statements", "exposures", "events", "modifications", "payments"]
    assert tables["debtors"].columns[:3] == ("client_id", "as_of", "debtor_id")
    assert "external_rating.notch" in tables["debtors"].columns
    assert tables["statements"] == TableSpec("statements", None, "statements", ("client_id",), None,
                                             tables["statements"].columns)
    assert tables["statements"].columns[0] == "period_end"
    assert tables["exposures"].parent_keys == ("client_id",)
    assert tables["exposures"].key == "exposure_id"
    assert "collateral.value" in tables["exposures"].columns
    assert tables["payments"].parent_keys == ("client_id", "exposure_id")
    assert tables["payments"].order_by == "due_date"
    assert tables["events"].parent_keys == ("client_id",)


def _shuffle_across_parents(path: Path, keys: tuple[str, ...], seed: int) -> None:
    """The rows in another order, each parent's rows still in theirs."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype=str,
                                                                                keep_default_na=False)
    group = frame.groupby(list(keys), sort=False).ngroup().to_numpy()
    rank = np.random.default_rng(seed).permutation(group.max() + 1 if len(group) else 0)
    order = np.lexsort((np.arange(len(frame)), rank[group])) if len(group) else np.arange(0)
    frame = frame.iloc[order].reset_index(drop=True)
    if path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


def _both(name: str, n: int, fmt: str, tmp: Path) -> tuple[Any, Any]:
    policy = load_policy(POLICIES[name])
    folder = tmp / "tables"
    synthetic.write_long_tables(policy, folder, n, seed=11, as_of=AS_OF, fmt=fmt)
    for t in layout(policy):
        path = folder / f"{t.name}{fmt}"
        if t.parent_keys and path.exists():
            _shuffle_across_parents(path, t.parent_keys, 5)
    lines = tmp / "debtors.jsonl"
    lines.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in synthetic.policy_clients(policy, n, 11, AS_OF)))
    return run_scoped_batch(policy, lines), run_long_batch(policy, folder)


def _equal(nested: Any, long: Any) -> None:
    assert nested.rejected == 0 and not long.rejects and not long.orphans
    pd.testing.assert_frame_equal(nested.decisions, long.decisions)
    pd.testing.assert_frame_equal(nested.exposures, long.exposures)


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_same_debtors_as_json_lines_and_as_parquet_tables_get_the_same_decisions(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # both paths decide three chunks (on two threads), cut at other debtors: the tables do not depend on it
    monkeypatch.setattr(scoped_batch, "CHUNK_DEBTORS", 700)
    monkeypatch.setattr(long_tables, "CHUNK_DEBTORS", 900)
    nested, long = _both(name, 2_000, ".parquet", tmp_path)
    _equal(nested, long)
    assert long.decided == 2_000
    summary = long.summary()
    assert summary["exposures"]["decided"] == len(long.exposures) >= 2_000
    assert all(c["read"] == c["decided"] for c in summary.values())
    grades = set(long.exposures["grade"])
    assert len(grades) >= 3, grades  # the portfolio reaches several grades: the comparison is not of defaults


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_the_same_debtors_as_csv_tables_get_the_same_decisions(name: str, tmp_path: Path) -> None:
    _equal(*_both(name, 300, ".csv", tmp_path))


def test_a_policy_whose_evaluator_keeps_many_columns_decides_fewer_debtors_at_a_time() -> None:
    """2.1.0 keeps six times the shared columns of 2.0.0: chunks of 20,000 held 700 MB each, two at once."""
    from policy_engine.portfolio.scoped_vector import shared_columns

    folder = ROOT / "policies" / "loss-client-management"
    light, heavy = (load_policy(folder / f"policy-{v}.yaml") for v in ("2.0.0", "2.1.0"))
    assert long_tables.chunk_debtors(light) == long_tables.CHUNK_DEBTORS
    size = long_tables.chunk_debtors(heavy)
    assert size * shared_columns(heavy) <= long_tables.CHUNK_COLUMNS < long_tables.CHUNK_DEBTORS * shared_columns(heavy)
