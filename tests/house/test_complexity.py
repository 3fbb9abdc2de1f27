"""The complexity ratchet: no function in policy_engine/ may reach radon grade E (complexity above 30).

A function a reviewer cannot hold in their head is where the next change breaks something. The
functions already that complex are listed below as known debt, each with the item of issue 17 that
will split it. The list may only shrink: a new E or F function fails this test, and so does a listed
one that has been split (remove it from the list).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from radon.complexity import cc_rank, cc_visit

import policy_engine

PACKAGE = Path(policy_engine.__file__).parent

# "file::Class.function" (the file relative to policy_engine/) -> the issue item that splits it.
KNOWN_DEBT: dict[str, str] = {}


def _complex_blocks() -> dict[str, int]:
    """Every function, method and class of the package graded E or F, with its complexity."""
    found: dict[str, int] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for block in cc_visit(path.read_text(encoding="utf-8")):
            if cc_rank(block.complexity) in ("E", "F"):
                found[f"{path.relative_to(PACKAGE).as_posix()}::{block.fullname}"] = block.complexity
    return found


@pytest.fixture(scope="module")
def complex_blocks() -> dict[str, int]:
    return _complex_blocks()


def test_no_new_function_is_too_complex_to_review(complex_blocks: dict[str, int]) -> None:
    new = {name: cc for name, cc in complex_blocks.items() if name not in KNOWN_DEBT}
    assert not new, (
        f"complexity above 30 (radon grade E/F): {new}; split it into small functions "
        "(a table of checks, one function per section) rather than adding it to KNOWN_DEBT")


def test_the_known_debt_list_only_shrinks(complex_blocks: dict[str, int]) -> None:
    paid = sorted(set(KNOWN_DEBT) - set(complex_blocks))
    assert not paid, f"no longer graded E/F (or gone): {paid}; remove them from KNOWN_DEBT so they cannot grow back"


def test_the_ratchet_sees_a_complex_function() -> None:
    # A function of 31 branches is graded E: the check above is not blind.
    source = "def f(x):\n" + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(30)) + "    return -1\n"
    (block,) = cc_visit(source)
    assert (block.complexity, cc_rank(block.complexity)) == (31, "E")
