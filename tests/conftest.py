"""Shared fixtures. Paths are absolute so tests never depend on the working directory."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.registry import load_policy

ROOT = Path(__file__).resolve().parents[1]
POLICIES = ROOT / "policies"
REFERENCE = POLICIES / "loss-client-management"
CURRENT = REFERENCE / "policy-1.1.0.yaml"
SAMPLES = sorted((REFERENCE / "samples" / "clients").glob("*.json"))
DATA = Path(__file__).resolve().parent / "data"

# Keep the validation cache and the decision store of this test run out of the user's directories.
os.environ["POLICY_ENGINE_CACHE_DIR"] = tempfile.mkdtemp(prefix="policy-engine-cache-")
os.environ["POLICY_ENGINE_AUDIT_DB"] = os.path.join(tempfile.mkdtemp(prefix="policy-engine-audit-"), "audit.db")


def sample(name: str) -> dict[str, Any]:
    """A shipped sample client by file-name prefix, e.g. ``sample('02')``."""
    for f in SAMPLES:
        if f.name.startswith(name):
            return json.loads(f.read_text(encoding="utf-8"))
    raise KeyError(name)


@pytest.fixture(scope="session")
def policy() -> Any:
    return load_policy(CURRENT)


@pytest.fixture(scope="session")
def decider(policy: Any) -> Decider:
    return Decider(policy)


@pytest.fixture(scope="session")
def tuned_portfolio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tuned reference portfolio (3,000 clients of record 1.x, seed 12) as CSV, written once per run and
    only read by the tests that share it."""
    from policy_engine.portfolio.synthetic import write_csv

    path = tmp_path_factory.mktemp("tuned") / "portfolio.csv"
    write_csv(path, 3000, seed=12)
    return path
