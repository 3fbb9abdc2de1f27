"""A subtree written more than once is evaluated once per scope, unless its value can change.

The financial-difficulty module writes its restructuring test into six metrics of policy 2.0.0;
the vector evaluator of a scope keeps the value of such a subtree. What reads the grade, the score,
a warning, a table or the grades of the elements may differ between two places of one scope, so
it is never kept; equal-looking constants of different types (1, 1.0, True) are different subtrees.
"""

from __future__ import annotations

import ast

from policy_engine.policy.registry import load_policy
from policy_engine.portfolio.scoped_vector import _shared, _structure

from ..conftest import ROOT

POLICY = ROOT / "policies" / "loss-client-management" / "policy-2.0.0.yaml"


def _pure(*sources: str) -> dict[int, int]:
    """The structures of the pure operations of ``sources`` (each parsed apart, as policies are)."""
    pure: dict[int, int] = {}
    structures: dict[tuple[object, ...], int] = {}
    trees = [ast.parse(s, mode="eval").body for s in sources]
    for tree in trees:
        _structure(tree, structures, pure)
    return {i: k for i, k in pure.items() if i in {id(t) for t in trees}}


def test_the_restructuring_test_of_the_module_is_one_shared_subtree() -> None:
    shared = _shared(load_policy(POLICY))
    counts: dict[int, int] = {}
    for k in shared.values():
        counts[k] = counts.get(k, 0) + 1
    assert max(counts.values()) >= 6  # the restructuring test, in six metrics


def test_equal_subtrees_share_a_structure_and_different_constants_do_not() -> None:
    keys = _pure("x > 1 and y", "x > 1 and y", "x > 1.0 and y", "x > True and y")
    assert len(keys) == 4
    a, b, c, d = keys.values()
    assert a == b and len({a, c, d}) == 3


def test_a_subtree_reading_something_stateful_is_never_shared() -> None:
    for source in ("grade_at_least('doubtful') and x > 1", "grade == 'loss'", "score > 3", "fired('w1')",
                   "lookup(t, x) > 1", "worst_grade(exposure) == 'loss'"):
        assert _pure(source, source) == {}, source
