"""Stage 1: YAML and JSON are read strictly, with positions, and surprises are errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policy_engine.diagnostics import PolicyError
from policy_engine.policy.loader import MAX_FILE_BYTES, JSONInputError, load_yaml_text, parse_json_text

YAML_ERRORS = [
    ("a: 1\na: 2\n", "duplicate-key", 2),
    ("a: yes\n", "yaml-ambiguous", 1),
    ("a: off\n", "yaml-ambiguous", 1),
    ("a: 0120\n", "yaml-ambiguous", 1),
    ("a: 0x1F\n", "yaml-ambiguous", 1),
    ("a: 1:30\n", "yaml-ambiguous", 1),
    ("a: .nan\n", "yaml-non-finite", 1),
    ("a: .inf\n", "yaml-non-finite", 1),
    ("a: 2024-01-01 10:00:00\n", "yaml-ambiguous", 1),
    ("a: !!binary aGVsbG8=\n", "yaml-binary", 1),
    ("b: &x {k: 1}\na:\n  <<: *x\n", "yaml-merge-key", 3),
    ("a: [1, 2\n", "yaml-syntax", 2),
    ("a:\n- b\n c: 1\n", "yaml-syntax", 3),
    ("", "yaml-empty", 1),
    ("a: !!python/object:os.system ls\n", "yaml-syntax", 1),
]


@pytest.mark.parametrize(("text", "code", "line"), YAML_ERRORS, ids=[c[1] + ":" + c[0][:12] for c in YAML_ERRORS])
def test_yaml_surprises_are_located_errors(text: str, code: str, line: int) -> None:
    with pytest.raises(PolicyError) as err:
        load_yaml_text(text, "p.yaml")
    found = [(d.code, d.line) for d in err.value.diagnostics]
    assert (code, line) in found, found


def test_every_problem_of_a_file_is_reported_at_once() -> None:
    with pytest.raises(PolicyError) as err:
        load_yaml_text("a: yes\nb: 010\nc: 1\nc: 2\n", "p.yaml")
    assert [(d.code, d.line) for d in err.value.diagnostics] == [
        ("yaml-ambiguous", 1), ("yaml-ambiguous", 2), ("duplicate-key", 4)]


def test_alias_bomb_stops_before_expansion() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 12):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    with pytest.raises(PolicyError) as err:
        load_yaml_text("\n".join(lines), "bomb.yaml")
    assert err.value.diagnostics[0].code == "yaml-alias-limit"


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(PolicyError) as err:
        load_yaml_text("a: " + "[" * 60 + "]" * 60, "deep.yaml")
    assert err.value.diagnostics[0].code == "yaml-too-deep"


def test_oversized_text_is_refused_before_parsing() -> None:
    with pytest.raises(PolicyError) as err:
        load_yaml_text("a: '" + "x" * MAX_FILE_BYTES + "'", "big.yaml")
    assert err.value.diagnostics[0].code == "file-too-large"


def test_bare_dates_are_read_as_iso_strings_and_positions_kept() -> None:
    doc = load_yaml_text("x:\n  effective_from: 2024-01-01\n  n: 3\n", "p.yaml")
    assert doc.data == {"x": {"effective_from": "2024-01-01", "n": 3}}
    assert doc.locate(("x", "n")) == (3, 3)
    assert doc.locate(("x", "n", "deeper")) == (3, 3)


@pytest.mark.parametrize(("text", "fragment"), [
    ('{"a": NaN}', "NaN"),
    ('{"a": Infinity}', "Infinity"),
    ('{"a": -Infinity}', "-Infinity"),
    ('{"a": 1, "a": 2}', "duplicate key 'a'"),
    ('{"a": ' + "[" * 40 + "]" * 40 + "}", "nesting deeper"),
    ('{"a": 1', "at the end of the line"),
    (b'{"a": "\xff"}', "not UTF-8"),
])
def test_json_input_is_strict(text: str | bytes, fragment: str) -> None:
    with pytest.raises(JSONInputError) as err:
        parse_json_text(text)
    assert fragment in str(err.value)


def test_json_brackets_inside_strings_do_not_count_as_nesting() -> None:
    assert parse_json_text('{"a": "' + "[" * 100 + '"}') == {"a": "[" * 100}


@pytest.mark.parametrize("number", [2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**19, -(10**25)])
def test_integers_beyond_64_bits_keep_their_value(number: int) -> None:
    assert parse_json_text(f'{{"a": {number}}}') == {"a": number}


@pytest.mark.parametrize("bom", [b"\xef\xbb\xbf", "\ufeff"], ids=["bytes", "text"])
def test_a_byte_order_mark_before_json_is_skipped(bom: bytes | str) -> None:
    # PowerShell and older Windows editors write one; CSV files with one are read too.
    body = '{"a": [1, 2.5], "b": "\u534e"}'
    text = bom + body.encode("utf-8") if isinstance(bom, bytes) else bom + body
    assert parse_json_text(text) == {"a": [1, 2.5], "b": "\u534e"}
    with pytest.raises(JSONInputError):
        parse_json_text(bom + text)  # a second mark is content, and not JSON
    if isinstance(bom, bytes):
        with pytest.raises(JSONInputError, match="at byte 10"):  # counted in the file, mark included
            parse_json_text(bom + b'{"a": "\xff"}')


def test_a_utf16_policy_file_is_named_as_such(tmp_path: Path) -> None:
    from policy_engine.policy.loader import load_yaml_file

    path = tmp_path / "policy.yaml"
    path.write_text("id: x\n", encoding="utf-16")
    with pytest.raises(PolicyError) as err:
        load_yaml_file(path)
    [d] = err.value.diagnostics
    assert (d.code, d.message) == ("file-encoding", "UTF-16 text; policies are UTF-8") and "UTF-8" in (d.hint or "")


def test_utf32_client_data_is_named_utf32() -> None:
    with pytest.raises(JSONInputError, match=r"UTF-32 text \(byte-order mark ff fe 00 00\).*save it as UTF-8"):
        parse_json_text('{"a": 1}'.encode("utf-32"))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_json_is_named_as_such(encoding: str) -> None:
    # PowerShell 5's '>' writes UTF-16 with a byte-order mark: say so, not "invalid start byte".
    with pytest.raises(JSONInputError, match=r"UTF-16 text .*save it as UTF-8"):
        parse_json_text('\ufeff{"a": 1}'.encode(encoding) if encoding == "utf-16-be" else '{"a": 1}'.encode(encoding))


# ---- the fast reader (orjson) and the strict reader (json with hooks) give the same documents ----

_KEYS = st.sampled_from(["a", "b", "c", "a:b", 'q"', "k\\", "\u987b", "e1"])
_NUMBER_TEXT = st.from_regex(r"-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)
_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1e300, 5e-324, 2**53 + 1.0, 1e16, 2**64, -(2**63) - 1]), st.text(max_size=4),
    st.sampled_from(['"', "\\", "\u2028", "\x01", "x:y", "1e20"]), _NUMBER_TEXT.map(lambda t: ("raw", t)))


def _render(value: Any, colon: Any, draw: Any) -> str:
    """JSON text built by hand: an object may repeat a key, a number may be any valid spelling."""
    if isinstance(value, tuple) and value[0] == "raw":
        return value[1]
    if isinstance(value, tuple) and value[0] == "obj":
        return "{" + ",".join(f"{json.dumps(k)}{draw(colon)}{_render(v, colon, draw)}" for k, v in value[1]) + "}"
    if isinstance(value, tuple):
        return "[" + ", ".join(_render(v, colon, draw) for v in value[1]) + "]"
    return json.dumps(value)


_DOCS = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.tuples(st.just("obj"), st.lists(st.tuples(_KEYS, inner), max_size=4)),
                            st.tuples(st.just("arr"), st.lists(inner, max_size=4))),
    max_leaves=15)


def _typed(v: Any) -> Any:
    """A value with its types spelled out: 1, 1.0 and True differ, and so do 0.0 and -0.0."""
    if isinstance(v, dict):
        return ("dict", [(k, _typed(x)) for k, x in v.items()])
    if isinstance(v, list):
        return ("list", [_typed(x) for x in v])
    return (type(v).__name__, repr(v))


@settings(max_examples=800, deadline=None)
@given(_DOCS, st.data())
def test_fast_and_strict_json_readers_agree(doc: Any, data: Any) -> None:
    from policy_engine.policy.loader import _STRICT, _fast_loads, _loads

    text = _render(doc, st.sampled_from([":", ": ", " :", ":\n"]), data.draw)
    try:
        strict: Any = ("ok", _typed(_loads(text)))
    except JSONInputError:
        strict = ("error",)
    fast = _fast_loads(text.encode("utf-8"))
    if fast is not _STRICT:
        assert strict == ("ok", _typed(fast)), text
    if strict[0] == "ok":
        assert ("ok", _typed(parse_json_text(text.encode("utf-8")))) == strict
    else:
        with pytest.raises(JSONInputError):
            parse_json_text(text.encode("utf-8"))


def test_client_records_take_the_fast_reader() -> None:
    from policy_engine.policy.loader import _STRICT, _fast_loads

    from ..conftest import SAMPLES

    for path in SAMPLES:
        compact = json.dumps(json.loads(path.read_bytes()), ensure_ascii=False).encode("utf-8")
        assert _fast_loads(path.read_bytes()) is not _STRICT and _fast_loads(compact) is not _STRICT, path.name


@pytest.mark.parametrize(("text", "where"), [
    (b'{"a": "\xff"}', "byte 7, column 8)"),  # a line of a stream or of JSON Lines: its caller names the line
    (b'{\n  "a": "\xff"}', "byte 10, line 2 column 9)"),  # a document of lines
])
def test_bytes_that_are_not_utf8_are_placed_as_the_caller_counts_lines(text: bytes, where: str) -> None:
    with pytest.raises(JSONInputError) as err:
        parse_json_text(text)
    assert err.value.problems[0][2].endswith(where)
