"""Hypothesis strategies shared by the property tests of several stages."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import strategies as st

from policy_engine.review.tester import apply_patch

from .conftest import sample

BASE = sample("02")
NUMBERS = st.one_of(
    st.none(), st.integers(-10**16, 10**16), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e-300, 1e15, -1e15, 7, 90, 91, 270, 271, 360, 361]),
    st.text(max_size=3), st.booleans())
FIELDS = ["loan.days_past_due", "loan.balance", "internal_rating", "exposure.nonperforming_share_at_bank",
          "financials[-1].net_income", "financials[0].revenue", "financials[-1].current_liabilities",
          "financials[2].equity", "events.litigation", "history.previous_grade", "industry",
          "restructuring.periods_repaid", "loan.collateral_value", "financials[1].period_end", "as_of"]


EMPTY_PERIODS = st.sampled_from([{}, {"revenue": None}, {"period_end": None, "net_income": None}])


@st.composite
def mutated_clients(draw: Any) -> dict[str, Any]:
    patch = draw(st.dictionaries(st.sampled_from(FIELDS), NUMBERS, max_size=4))
    client = apply_patch(BASE, patch)
    # Empty periods: trailing ones are absent, one before a filled period is an error, on both paths.
    for _ in range(draw(st.integers(0, 2))):
        periods = client["financials"]
        periods.insert(draw(st.integers(0, len(periods))), draw(EMPTY_PERIODS))
    # An as-of date before some statements: those were not known yet, refused on both paths.
    if draw(st.integers(0, 4)) == 0:
        client["as_of"] = draw(st.sampled_from(["2024-10-15", "2025-02-01", "2025-06-29"]))
    # Periods out of order or given twice: refused at the same period on both paths.
    periods = client["financials"]
    disorder = draw(st.sampled_from(["none", "none", "none", "swap", "repeat"]))
    if disorder != "none" and len(periods) >= 2:
        i = draw(st.integers(0, len(periods) - 2))
        if disorder == "swap":
            periods[i], periods[i + 1] = periods[i + 1], periods[i]
        else:
            periods.insert(i + 1, dict(periods[i]))
    return client


# -------------------------------------------------- structural mutations (client fuzz suite)

SCALAR_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["", "yes", "7", "007", " 7", "2025-06-30", "true", "NaN", "1e400", "x" * 250, 2**64, -(2**63) - 1,
                     2**64 - 1, 1e15, 1e16, -0.0, 5e-324]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=6))
JUNK = st.recursive(SCALAR_JUNK, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["a", "b", "revenue", "balance"]), inner, max_size=3)),
    max_leaves=6)
MUTATION_BASES = ("01", "02", "13", "19")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for k, v in items:
        out.append((*prefix, k))
        out += _paths(v, (*prefix, k))
    return out


MUTATIONS = ("replace", "odd", "odd", "delete", "add", "repeat", "reverse")


def mutate_at(draw: Any, record: Any, path: tuple[Any, ...], odd: st.SearchStrategy[Any],
              actions: tuple[str, ...] = MUTATIONS) -> None:
    """One drawn change at ``path`` in ``record``, in place: the value replaced by junk or an odd value (an
    edge of a type test), deleted, a sibling field added, a list element repeated, a list reversed, or (with
    "empty" among ``actions``) an empty or null element inserted."""
    parent = record
    for k in path[:-1]:
        parent = parent[k]
    action = draw(st.sampled_from(actions))
    if action == "replace":
        parent[path[-1]] = draw(JUNK)
    elif action == "odd":
        parent[path[-1]] = draw(odd)
    elif action == "delete":
        del parent[path[-1]]
    elif action == "add" and type(parent) is dict:
        parent[draw(st.sampled_from(["note", "extra"]))] = draw(JUNK)
    elif action == "repeat" and type(parent) is list:
        parent.append(copy.deepcopy(parent[path[-1]]))
    elif action == "reverse" and type(parent) is list:
        parent.reverse()
    elif action == "empty" and type(parent) is list:
        parent.insert(draw(st.integers(0, len(parent))), draw(st.sampled_from([{}, None, {"revenue": None}])))


@st.composite
def structurally_mutated_clients(draw: Any) -> Any:
    """A sample client with one to three structural mutations: a field, object or period missing,
    emptied, of the wrong type, extreme, or nested junk; an unread field of any shape."""
    client = copy.deepcopy(sample(draw(st.sampled_from(MUTATION_BASES))))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(client)
        action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "add"]))
        if action == "add" or not paths:
            parent = client
            for key in draw(st.sampled_from([("notes",), ("loan", "notes"), ("meta",), ("history", "extra")]))[:-1]:
                parent = parent.get(key) if isinstance(parent.get(key), dict) else None
                if parent is None:
                    break
            if parent is not None:
                parent[draw(st.sampled_from(["notes", "extra", "meta"]))] = draw(JUNK)
            continue
        path = draw(st.sampled_from(paths))
        parent = client
        for key in path[:-1]:
            parent = parent[key]
        if action == "delete":
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JUNK)
    return client
