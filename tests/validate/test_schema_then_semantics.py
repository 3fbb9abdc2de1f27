"""A schema error leaves out only what it touches: the semantic checks run on every other entry.

Before, one schema error anywhere stopped the semantic passes, so a bad warning severity hid an
unknown name in a metric until the author fixed the first and validated again. The cases edit the
mini policy and list every diagnostic exactly: a missing one is a hidden error, an extra one a
cascade (a name declared by a left-out entry reported as unknown where it is used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from policy_engine.cli import main
from policy_engine.diagnostics import DiagnosticSink, sort_diagnostics
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import load_yaml_text
from policy_engine.policy.validate import SchemaValidPart, schema_errors

from ..conftest import DATA

MINI = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")
CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "schema_and_semantics.yaml").read_text(encoding="utf-8"))


def _edited(edits: list[list[str]]) -> str:
    text = MINI
    for old, new in edits:
        assert text.count(old) == 1, f"edit {old!r} must match the mini policy exactly once"
        text = text.replace(old, new)
    return text


def test_every_case_is_well_formed() -> None:
    assert len(CASES) >= 10
    for case in CASES:
        assert set(case) == {"name", "edits", "expect"}, case
        assert case["expect"] and all(len(e) == 2 for e in case["expect"]), case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_schema_and_semantic_errors_are_reported_together(case: dict[str, Any]) -> None:
    diags, policy = check_document(load_yaml_text(_edited(case["edits"]), "x.yaml"))
    assert policy is None
    assert [[d.code, d.line] for d in diags] == case["expect"], [d.render() for d in diags]


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in the document: mappings and lists, and the values they hold."""
    out = [path] if path else []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, v in items:
        out.extend(_leaves(v, (*path, key)))
    return out


def _replaced(data: Any, path: tuple[Any, ...], junk: Any) -> Any:
    if not path:
        return junk
    copy = dict(data) if isinstance(data, dict) else list(data)
    copy[path[0]] = _replaced(data[path[0]], path[1:], junk)
    return copy


_MINI_DATA = load_yaml_text(MINI, "mini.yaml").data
_JUNK = (None, [], {"x": 1}, 7.5)
# A mapping in place of these sections declares other names: the old ones are rightly unknown then.
_DECLARING = {("inputs",), ("parameters",), ("metrics",)}


@pytest.mark.parametrize("path", _leaves(_MINI_DATA), ids=lambda p: ".".join(map(str, p)))
def test_one_schema_error_anywhere_gives_no_semantic_error(path: tuple[Any, ...]) -> None:
    """The mini policy is clean: junk at one place gives its schema errors and nothing else, never a crash."""
    for junk in _JUNK:
        if path in _DECLARING and isinstance(junk, dict):
            continue
        text = yaml.safe_dump(_replaced(_MINI_DATA, path, junk), allow_unicode=True, sort_keys=False)
        doc = load_yaml_text(text, "x.yaml")
        diags, policy = check_document(doc)
        sink = DiagnosticSink(file="x.yaml")
        schema_errors(doc, "policy", sink)
        if sink.items:
            assert policy is None
            assert diags == sort_diagnostics(sink.items), (junk, [d.render() for d in diags])


def test_what_schema_errors_leave_out() -> None:
    data = {"inputs": {"a": {}, "b": {}}, "warnings": [{"id": "w"}, {"id": 3}, {}],
            "classification": {"scale": [], "rules": []}, "segments": {"by": 1}}
    part = SchemaValidPart.of(data, [("inputs", "a", "type"), ("warnings", 1), ("warnings", 2, "when"),
                                     ("segments", "by"), ("id",), ("classification", "scale_typo")])
    assert part.entries(data, ("inputs",)) == [("b", {})]
    assert part.skipped_names(data, ("inputs",)) == ["a"]
    assert part.entries(data, ("warnings",)) == [(0, {"id": "w"})]
    assert part.skipped_names(data, ("warnings",)) == [] and part.unnamed(data, ("warnings",))
    assert part.is_broken(("segments",)) and not part.is_broken(("classification", "scale"))
    whole = SchemaValidPart.of({"classification": {"scale": []}}, [("classification",)])
    assert whole.is_broken(("classification", "rules")) and whole.is_broken(("inputs",))  # required, missing


def test_validate_prints_both_and_exits_4(tmp_path: Path) -> None:
    case = CASES[0]
    path = tmp_path / "policy-1.0.0.yaml"
    path.write_text(_edited(case["edits"]), encoding="utf-8")
    r = CliRunner().invoke(main, ["validate", "--format", "text", str(path)], catch_exceptions=False)
    assert r.exit_code == 4
    assert f"{path}:22:27: error: unknown-name: unknown name 'asets'" in r.stderr + r.stdout
    assert f"{path}:47:5: error: bad-value:" in r.stderr + r.stdout
