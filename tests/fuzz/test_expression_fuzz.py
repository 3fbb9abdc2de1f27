"""Expression fuzzing, bounded: every function and operator, typed and nullable operands, both evaluators.

Each example plants a generated expression in a policy (metric, warning, action, message) and
decides a dozen generated clients. The checker refuses it with located diagnostics, or the row
and the vector evaluator give the same decision record for every client; nothing escapes.
The long run is ``tools/fuzz_expressions.py``.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from hypothesis import HealthCheck, given, settings

from policy_engine.language import expressions as ex

from . import harness
from .harness import MESSAGES, client_batches, run_one, typed_expressions


def _explain(outcome: harness.Outcome) -> str:
    f = outcome.findings[0]
    return f"{f.kind}: {f.expr!r}: {f.detail}\nclient: {f.client}\nrow: {f.row}\nvector: {f.vector}"


# ~60 ms an example on an idle machine: 300 examples stay well inside the suite's budget.
@settings(max_examples=300, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(typed_expressions(), MESSAGES, client_batches(12))
def test_checked_expressions_evaluate_alike_on_both_paths(typed: tuple[str, str], message: str,
                                                          records: list[dict[str, Any]]) -> None:
    kind, expr = typed
    outcome = run_one(kind, expr, message, records)
    assert outcome.findings == [], _explain(outcome)


def test_the_generators_reach_every_function_and_operator() -> None:
    source = inspect.getsource(harness)
    for name in ex.FUNCTIONS:
        assert re.search(rf"\b{name}\(|[\"']{name}[\"']", source), f"no generator calls {name}()"
    for op in ("+", "-", "*", "/", "//", "%", "**", "<", "<=", ">", ">=", "==", "!=", "and", "or", "not",
               " if ", " else ", "in", "not in", "null"):
        assert op in source, op
