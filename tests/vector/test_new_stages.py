"""Row and vector agree on the two rule forms of issue 18 item 3, on generated clients with edge values.

Metrics after classification read the grade both paths computed; a classification rule's warning is
its floor's result on both. The clients are those of the one-semantics property test (edge numbers,
nulls, short series), decided under the reference policy rewritten both ways (tests/variants.py).
"""

from __future__ import annotations

import functools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policy_engine.decide.evaluate import Decider
from policy_engine.policy.compiler import compile_document
from policy_engine.policy.loader import load_yaml_text

from ..variants import graded_text, one_rule_text
from .test_one_semantics import _compare, clients


@functools.cache
def _decider(variant: str) -> Decider:
    text = {"graded": graded_text, "one-rule": one_rule_text}[variant]()
    return Decider(compile_document(load_yaml_text(text, f"{variant}.yaml")))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(variant=st.sampled_from(["graded", "one-rule"]), batch=st.lists(clients(), min_size=40, max_size=40))
def test_row_and_vector_agree_on_generated_clients(variant: str, batch: list[dict[str, Any]]) -> None:
    # _compare checks every result field and the records built from both, client by client.
    _compare(_decider(variant), batch)
