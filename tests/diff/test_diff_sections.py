"""The diff section by section: each section's changes named in policy terms, in the order a reviewer reads.

Cases are in ``tests/data/diff_cases.yaml``: edits to a shipped policy and the change lines they must give.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from policy_engine.policy.compiler import CompiledPolicy, compile_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.review.diffing import diff_policies

from ..conftest import CURRENT, DATA

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "diff_cases.yaml").read_text(encoding="utf-8"))["cases"]
BASES = {"reference": CURRENT.read_text(encoding="utf-8"),
         "mini": (DATA / "mini-policy.yaml").read_text(encoding="utf-8"),
         "tables": (DATA / "table-policy.yaml").read_text(encoding="utf-8"),
         "scoped": (DATA / "scopes" / "policy-multi-exposure.yaml").read_text(encoding="utf-8")}
# mini with an action type of its own and a second floor of one grade (the order of floors decides decided_by)
BASES["types"] = BASES["mini"].replace("actions:\n", (
    "action_types:\n  - id: site_visit\n    zh: 实地走访\n    en: Site visit\n    params:\n"
    "      within_days: {type: integer, required: true, min: 1, max: 30}\n"
    "actions:\n  - id: visit\n    action: site_visit\n    when: grade_at_least('bad')\n"
    "    params: {within_days: 14}\n    priority: 2\n    reason: {zh: 走访, en: Visit}\n"), 1).replace(
    "      source: test\n", "      source: test\n    - id: very_late\n      when: dpd > 180\n      floor: bad\n"
    "      source: test\n", 1)
# scoped with a warning and an action that name the exposures they concern
BASES["scoped-named"] = BASES["scoped"].replace(
    '    when: "any_of(exposure, late_payments >= 2)"\n',
    '    when: "any_of(exposure, late_payments >= 2)"\n    for_exposures: late_payments >= 2\n', 1).replace(
    "    when: grade_at_least('substandard')\n    params: {cadence: monthly}\n",
    "    when: grade_at_least('substandard')\n    for_exposures: dpd > 90\n    params: {cadence: monthly}\n", 1)
READING_ORDER = ("metadata", "input", "parameter", "metric", "factor", "score-band", "scale", "floor", "warning",
                 "action-type", "action")


def _compile(text: str, name: str) -> CompiledPolicy:
    return compile_document(load_yaml_text(text, name))


def _edited(case: dict[str, Any]) -> str:
    text = BASES[case.get("base", "reference")]
    for old, new in case["edits"]:
        assert text.count(old) == 1, f"{case['name']}: the edit's old text must occur exactly once: {old!r}"
        text = text.replace(old, new)
    return text


def test_the_case_file_is_well_formed() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert set(case) <= {"name", "base", "edits", "changes"}, case
        assert case["edits"] and case["changes"], case["name"]
        assert case.get("base", "reference") in BASES, case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_each_section_names_its_changes(case: dict[str, Any]) -> None:
    old = _compile(BASES[case.get("base", "reference")], "old.yaml")
    new = _compile(_edited(case), "new.yaml")
    assert [c.text() for c in diff_policies(old, new)] == case["changes"]


def test_every_section_of_the_case_file_is_covered() -> None:
    sections = {line.split(" ")[0].rstrip(":") for case in CASES for line in case["changes"]}
    assert sections == {*READING_ORDER, "scope"}  # scopes: of the scoped base only (the reference 1.1.0 has none)


def test_changes_in_every_rule_section_read_in_the_policys_order() -> None:
    # Every edit to the reference policy at once: the changes come section by section, whatever the edits' order.
    edits = [edit for case in reversed(CASES) if case.get("base", "reference") == "reference" for edit in case["edits"]]
    new = _edited({"name": "all reference edits", "edits": edits})
    changes = diff_policies(_compile(BASES["reference"], "old.yaml"), _compile(new, "new.yaml"))
    order = [READING_ORDER.index(c.section) for c in changes]
    assert order == sorted(order)
    assert {c.section for c in changes} == set(READING_ORDER) - {"score-band", "scale", "action-type"}  # mini's


_OPPOSITE = {"added": "removed", "removed": "added", "changed": "changed"}


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_the_diff_backwards_is_the_same_changes_undone(case: dict[str, Any]) -> None:
    # Read from new to old, every change is there with its kind and its old and new values swapped.
    old = _compile(BASES[case.get("base", "reference")], "old.yaml")
    new = _compile(_edited(case), "new.yaml")

    def key(c: dict[str, Any]) -> tuple[str, str, str]:
        return (c["section"], c["rule"], str(c["field"]))

    forward = sorted([c.to_dict() for c in diff_policies(old, new)], key=key)
    backward = sorted([c.to_dict() for c in diff_policies(new, old)], key=key)
    undone = [{**c, "kind": _OPPOSITE[c["kind"]], "old": c["new"], "new": c["old"]}
              | ({"when": {"old": c["when"]["new"], "new": c["when"]["old"]}} if "when" in c else {})
              for c in backward]
    # the wording reads in the other direction ("added: ..." for "removed: ..."); the values must not
    assert [{k: v for k, v in c.items() if k != "detail"} for c in undone] == \
        [{k: v for k, v in c.items() if k != "detail"} for c in forward]


def test_an_input_moved_to_another_scope_is_a_change() -> None:
    """The same name and field, read from each payment instead of each exposure (or from the debtor): another
    fact, so a change a reviewer must see (diff said '0 change(s)', and --exit-code passed)."""
    base = BASES["scoped"].replace("  event_date: {scope: event, from: date, type: date, required: true}\n",
                                   "  event_date: {scope: event, from: date, type: date, required: true}\n"
                                   "  opened: {scope: exposure, from: opened, type: date}\n")
    moved = {"payment": base.replace("opened: {scope: exposure,", "opened: {scope: payment,"),
             "debtor": base.replace("opened: {scope: exposure, from:", "opened: {from:")}
    for scope, text in moved.items():
        changes = diff_policies(_compile(base, "a.yaml"), _compile(text, "b.yaml"))
        assert [c.text() for c in changes] == [f"input opened: scope exposure -> {scope}"]
