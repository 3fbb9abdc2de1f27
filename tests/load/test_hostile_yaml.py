"""Hostile policy files: every problem the YAML library can meet is a located diagnostic, exit 4.

Cases are in ``tests/data/hostile_yaml.yaml`` (issue 14, classes 3, 6 and 12): value builders that
raise, tags that would be ignored, a syntax error beside independent problems, YAML 1.1 / 1.2
number readings, NUL and other reader errors, files that are not UTF-8.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.cli import main
from policy_engine.diagnostics import PolicyError
from policy_engine.policy.compiler import check_document
from policy_engine.policy.loader import MAX_FILE_BYTES, load_yaml_file, load_yaml_text

from ..conftest import DATA

CASES: list[dict[str, Any]] = yaml.safe_load((DATA / "hostile_yaml.yaml").read_text(encoding="utf-8"))["cases"]
MINI = (DATA / "mini-policy.yaml").read_text(encoding="utf-8")


def _write(case: dict[str, Any], folder: Path) -> Path:
    text = case.get("text")
    if text is None:
        text = MINI
        for old, new in case["mini"]:
            assert old in text, (case["name"], old)
            text = text.replace(old, new)
    path = folder / "policy.yaml"
    path.write_bytes(text.encode(case.get("encoding", "utf-8")))
    return path


def _problems(path: Path) -> list[Any]:
    try:
        doc = load_yaml_file(path)
    except PolicyError as err:
        return err.diagnostics
    diags, _ = check_document(doc)
    return diags


def test_the_case_file_is_well_formed() -> None:
    assert len(CASES) >= 20
    for case in CASES:
        assert case["expect"] and ("text" in case) != ("mini" in case), case["name"]
        assert all(set(e) <= {"code", "line", "column", "hint", "says"} and "code" in e for e in case["expect"]), \
            case["name"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_hostile_policy_file_is_a_located_diagnostic(case: dict[str, Any], tmp_path: Path) -> None:
    found = [(d.code, d.line, d.column, d.hint, d.message) for d in _problems(_write(case, tmp_path))
             if d.severity == "error"]
    for e in case["expect"]:
        assert any(code == e["code"] and line == e.get("line", line) and column == e.get("column", column)
                   and hint == e.get("hint", hint) and e.get("says", "") in message
                   for code, line, column, hint, message in found), (e, found)


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
@pytest.mark.parametrize("command", ["validate", "diff"])
def test_validate_and_diff_exit_4_never_5(case: dict[str, Any], command: str, tmp_path: Path) -> None:
    path = _write(case, tmp_path)
    args = ["validate", "--format", "json", str(path)] if command == "validate" else ["diff", str(path), str(path)]
    r = CliRunner().invoke(main, ["--policies", str(tmp_path), *args], catch_exceptions=False)
    assert r.exit_code == 4, r.output
    assert "internal error" not in r.stderr


def test_yaml_1_2_exponents_are_numbers_as_in_json_and_editors() -> None:
    # YAML 1.1 (PyYAML) reads 1e-3 and 1.5e10 as text; YAML 1.2, JSON and the editors' language
    # server read numbers. The engine reads what the editor validated.
    doc = load_yaml_text("a: 1e-3\nb: 1.5e10\nc: 1E5\nd: -2.5e-2\ne: 1.5e+10\nf: '1e-3'\ng: .5\n", "p.yaml")
    assert doc.data == {"a": 0.001, "b": 1.5e10, "c": 1e5, "d": -0.025, "e": 1.5e10, "f": "1e-3", "g": 0.5}


def test_a_huge_exponent_is_not_finite() -> None:
    with pytest.raises(PolicyError) as err:
        load_yaml_text("a: 1e999\n", "p.yaml")
    assert [(d.code, d.line) for d in err.value.diagnostics] == [("yaml-non-finite", 1)]


def test_a_file_over_the_limit_names_the_limit_and_the_section(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    filler = "".join(f"  m{i}: {{expr: '1 + 1'}}\n" for i in range(MAX_FILE_BYTES // 20))
    path.write_text("id: big\nversion: 1.0.0\nmetrics:\n" + filler + "warnings: []\n", encoding="utf-8")
    with pytest.raises(PolicyError) as err:
        load_yaml_file(path)
    [d] = err.value.diagnostics
    assert d.code == "file-too-large"
    assert f"{MAX_FILE_BYTES:,}" in d.message and "MAX_FILE_BYTES" in d.message
    assert "section 'metrics' (from line 3)" in d.message


_YAML_BITS = st.sampled_from([
    "a: ", "- ", "  ", "\n", ": ", "!!int ", "!!float ", "!!timestamp ", "!!set ", "!!binary ", "!!bool ", "!x ",
    "&a ", "*a", "<<: ", "{", "}", "[", "]", ",", "'", '"', "\\x00", "\\e", "\\ud800", "#", "|", ">", "?", "%",
    "1e5", "08", "0x1F", "1_0", "2024-02-30", "2024-01-01 10:00", "yes", ".nan", "1:30", "\0", "\x1b", "\u202e",
    "\ufeff", "~", "---", "...", "中",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(_YAML_BITS, max_size=30).map("".join))
def test_any_text_is_loaded_or_refused_with_located_diagnostics(text: str) -> None:
    try:
        load_yaml_text(text, "p.yaml")
    except PolicyError as err:
        assert err.diagnostics and all(d.code.startswith(("yaml-", "duplicate-key", "file-"))
                                       for d in err.diagnostics), err.diagnostics


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_any_bytes_are_loaded_or_refused_with_located_diagnostics(raw: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.yaml"
        path.write_bytes(raw)
        try:
            load_yaml_file(path)
        except PolicyError as err:
            assert err.diagnostics and all(d.line is not None or d.code in ("file-encoding", "yaml-syntax",
                                                                            "yaml-too-deep")
                                           for d in err.diagnostics), err.diagnostics
