"""One input contract for ``decide`` and ``batch`` (issue 19, classes 6-9), and the client fuzz suite.

Every client goes through the paths a client can take: ``decide`` (its JSON text parsed, then
decided, as the command line does), ``batch --records`` on a JSON Lines file and on a CSV file,
and the decision store (``audit show`` and ``audit replay`` of what the batch recorded). Each
must give the same decision record except ``decision_id`` and ``evaluated_at`` (the input hash
included), or a rejection naming the same fields; no exception may escape any of them. The
comparison is the one ``tools/fuzz_clients.py`` runs for long (its CSV reference is ``decide`` of
what a CSV file can carry of the client).
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ..conftest import DATA, ROOT, sample
from ..strategies import structurally_mutated_clients


def _tool() -> ModuleType:
    """``tools/fuzz_clients.py``: the comparison of the paths, shared with the long run."""
    if "fuzz_clients" not in sys.modules:
        spec = importlib.util.spec_from_file_location("fuzz_clients", ROOT / "tools" / "fuzz_clients.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["fuzz_clients"] = module
        spec.loader.exec_module(module)
    return sys.modules["fuzz_clients"]


CASES = yaml.safe_load((DATA / "client_contract_cases.yaml").read_text(encoding="utf-8"))["cases"]
_PART = re.compile(r"[^.\[\]]+|\[-?\d+\]")


def _walk(record: Any, path: str) -> tuple[Any, Any]:
    """(parent, key) of ``path`` (``loan.balance``, ``financials[-1]``); missing objects are created."""
    parts: list[Any] = [int(p[1:-1]) if p.startswith("[") else p for p in _PART.findall(path)]
    node = record
    for part in parts[:-1]:
        node = node[part] if isinstance(part, int) else node.setdefault(part, {})
    return node, parts[-1]


def _changed(case: dict[str, Any]) -> dict[str, Any]:
    record = copy.deepcopy(sample(case.get("base", "02")))
    record["client_id"] = "X1"
    for path, value in (case.get("set") or {}).items():
        parent, key = _walk(record, path)
        if isinstance(parent, list) and key == len(parent):
            parent.append(value)
        else:
            parent[key] = value
    for path in case.get("delete") or ():
        parent, key = _walk(record, path)
        del parent[key]
    return record


def _neighbours() -> list[dict[str, Any]]:
    """Two untouched clients of other shapes (an unread field as text, an empty list of periods)."""
    first = {**sample("01"), "client_id": "N1", "notes": "plain text"}
    return [first, {**sample("19"), "client_id": "N2"}]


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    return _tool()


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_one_contract_on_every_path(case: dict[str, Any], policy: Any, decider: Any, tool: ModuleType,
                                    tmp_path: Path) -> None:
    client = _changed(case)
    kind, found = tool.decide_outcome(decider, client)
    if case["expect"] == "decided":
        assert kind == "decided", found
    else:
        assert (kind, found) == ("rejected", tuple(sorted(case["expect"]["rejected"])))
    findings = tool.check_group(policy, decider, [*_neighbours(), client], tmp_path)
    assert findings == []


def test_the_comparison_sees_a_difference(policy: Any, decider: Any, tool: ModuleType) -> None:
    """The oracle is not blind: a batch answer that differs from decide's is a finding."""
    client = {**sample("02"), "client_id": "X1"}
    decided = tool.decide_outcome(decider, client)
    other = tool.decide_outcome(decider, {**client, "notes": 1})
    assert decided[0] == other[0] == "decided"
    assert decided[1]["input_sha256"] != other[1]["input_sha256"]
    assert not tool._same(decided, other)
    assert not tool._same(decided, ("rejected", ("loan.balance",)))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(clients=st.lists(structurally_mutated_clients(), min_size=3, max_size=3))
def test_mutated_clients_agree_on_every_path(policy: Any, decider: Any, tool: ModuleType,
                                             clients: list[dict[str, Any]], tmp_path_factory: Any) -> None:
    for i, client in enumerate(clients):  # distinct ids: a repeated id is a batch's own rejection
        if isinstance(client, dict) and isinstance(client.get("client_id"), str):
            client["client_id"] = f"{client['client_id']}-{i}"
    findings = tool.check_group(policy, decider, clients, tmp_path_factory.mktemp("fuzz"))
    assert findings == []
