"""`decide --trace --format text`: the trace the JSON carries is visible in the text explanation too."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from policy_engine.cli import main

from ..conftest import POLICIES, SAMPLES

SAMPLE = str(SAMPLES[1])  # the manufacturer case study


def _decide(*extra: str) -> str:
    r = CliRunner().invoke(main, ["--policies", str(POLICIES), "decide", "-p", "loss-client-management", "-c", SAMPLE,
                                  "--no-audit", *extra], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    return r.stdout


@pytest.mark.parametrize(("lang", "heading", "floor"), [("en", "Trace (every rule evaluated", "floor"),
                                                        ("zh", "求值轨迹", "分类规则")])
def test_text_format_shows_every_traced_rule(lang: str, heading: str, floor: str) -> None:
    trace = json.loads(_decide("--trace", "--format", "json"))["trace"]
    text = _decide("--trace", "--format", "text", "--lang", lang)
    assert heading in text
    lines = text.split(heading, 1)[1].splitlines()[1:]
    assert len(lines) == len(trace)  # one line per evaluated rule, none dropped
    assert f"  {floor} overdue_over_90 = false <- days_past_due > 90  [days_past_due=0]" in lines
    assert any(line.startswith("  ") and "dscr = 0.858974 <- ratio(" in line for line in lines)


def test_text_format_without_trace_has_no_trace_section() -> None:
    assert "Trace (" not in _decide("--format", "text")
