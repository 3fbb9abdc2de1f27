"""The engine names nothing of any policy: no input, metric, warning or action name of the reference policy.

A name of the reference policy inside ``policy_engine/`` means behaviour (or wording) that only
that policy gets: another policy's explanation would miss its key figures, or read the reference
policy's words. Identifiers and words inside string literals (docstrings, messages, hints) are
scanned; the names come from every version of the reference policy, so a name it gains is
scanned too.
"""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

import yaml

from policy_engine.policy.catalogue import CATALOGUE

from ..conftest import REFERENCE, ROOT

ENGINE = ROOT / "policy_engine"
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# Words the engine owns that a policy happens to reuse as a name, each with why it may stay.
# The catalogue's action types are the engine's vocabulary (any policy picks from them); the
# reference policy names some of its actions after their type.
ALLOWED_EVERYWHERE = {name: "an action type of the engine's catalogue" for name in CATALOGUE}
# A word allowed only in the files listed (relative to policy_engine/), with the reason.
ALLOWED_IN: dict[str, tuple[set[str], str]] = {
    "industry": ({"review/scenario.py", "demo.py", "portfolio/frame.py"},
                 "simulate's default segment column when a scenario names no policy, the demo's column of the "
                 "reference portfolio, and an example of a column path in the batch column conventions; batch "
                 "and impact head their per-segment counts by the policy's own segment input ('by_segment')"),
    "days_past_due": ({"review/scenario.py", "portfolio/frame.py"},
                      "the example of a column path in the batch column conventions and in the scenario "
                      "format, whose shipped scenario files shock that column"),
}
# Sample data for one record layout, kept byte-identical for tests and benchmarks; not engine logic.
SAMPLE_DATA = {"reference_portfolio.py"}
# The converter between client record 1.x and client record 2.0 (``policy-engine convert``): its subject is
# the fields of those two records, which the reference policy's versions read under the same names. No
# decision reads it: a policy decides a converted record only through its own inputs.
RECORD_CONVERTER = {"review/convert.py"}


def _reference_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for path in sorted(REFERENCE.glob("policy*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        names.update({k: "input" for k in doc["inputs"]})
        names.update({k: "metric" for k in doc.get("metrics") or {}})
        names.update({w["id"]: "warning" for w in doc.get("warnings") or []})
        names.update({a["id"]: "action" for a in doc.get("actions") or []})
    return names


def _words(path: Path) -> list[tuple[int, str]]:
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline):
        if tok.type == tokenize.NAME:
            found.append((tok.start[0], tok.string))
        elif tok.type == tokenize.STRING or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            found += [(tok.start[0], w) for w in _WORD.findall(tok.string)]
    return found


def test_the_engine_names_no_input_metric_warning_or_action_of_the_reference_policy() -> None:
    names = _reference_names()
    assert len(names) > 60  # the scan really has the policy's names
    hits = []
    for path in sorted(ENGINE.rglob("*.py")):
        if path.name in SAMPLE_DATA or path.relative_to(ENGINE).as_posix() in RECORD_CONVERTER:
            continue
        for line, word in _words(path):
            if word not in names or word in ALLOWED_EVERYWHERE:
                continue
            if word in ALLOWED_IN and path.relative_to(ENGINE).as_posix() in ALLOWED_IN[word][0]:
                continue
            hits.append(f"{path.relative_to(ROOT)}:{line}: {names[word]} name '{word}'")
    assert hits == []


def test_the_allow_list_is_still_needed() -> None:
    """An allowance nobody uses any more is removed, so the list never hides a new use."""
    names = _reference_names()
    for word, (files, _) in ALLOWED_IN.items():
        assert word in names
        for name in files:
            assert word in {w for _, w in _words(ENGINE / name)}, f"'{word}' no longer in {name}: drop it"
