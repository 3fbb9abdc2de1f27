"""Stage 1, load: YAML and JSON text -> plain values plus a map of source positions.

Policies are data written by people, so the loader is strict where YAML is
surprising: duplicate keys, alias bombs, oversized or deeply nested files,
and YAML 1.1 readings nobody intends (``yes`` as a boolean, ``0120`` as octal,
``1:30`` as sexagesimal) are errors with a line and column. Bare dates are read
deliberately as ISO strings, because ``effective_from: 2024-01-01`` is what
people write.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml

from .diagnostics import Diagnostic, PolicyError
from .frozen import Frozen, field

MAX_FILE_BYTES = 1_000_000
MAX_ALIASES = 16
MAX_DEPTH = 40

PathKey = tuple[str | int, ...]

_BOOL_WORDS = {"true", "false", "True", "False", "TRUE", "FALSE"}
_INT_OK = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")


class Document(Frozen, frozen=False):
    """A loaded file: its values, its text and where every node sits in it."""

    file: str
    data: Any
    text: str
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: PathKey) -> tuple[int | None, int | None]:
        """Line and column (1-based) of ``path``, or of its nearest located parent."""
        p = tuple(path)
        while True:
            if p in self.positions:
                return self.positions[p]
            if not p:
                return (None, None)
            p = p[:-1]


def format_path(path: PathKey) -> str:
    """``('warnings', 3, 'when')`` -> ``warnings[3].when`` (the form messages use)."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """libyaml's safe loader when present (fast); aliases are counted while building."""


class _LoadFailure(Exception):
    def __init__(self, code: str, message: str, mark: Any, hint: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.mark = mark
        self.hint = hint


def _pos(node: yaml.Node) -> tuple[int, int]:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


class _Builder:
    """Turns a composed node tree into values, checking what SafeLoader lets pass."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.positions: dict[PathKey, tuple[int, int]] = {}
        self.seen: set[int] = set()
        self.aliases = 0
        self.errors: list[tuple[str, str, tuple[int, int], str | None]] = []

    def build(self, node: yaml.Node, path: PathKey, depth: int = 0) -> Any:
        self.positions[path] = _pos(node)
        # An alias is the same node object met again; bounding revisits stops
        # "billion laughs" before anything is expanded.
        if id(node) in self.seen:
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                raise _LoadFailure(
                    "yaml-alias-limit",
                    f"more than {MAX_ALIASES} YAML alias uses (the last refers to the anchor here); "
                    "policies do not need anchors at scale",
                    node.start_mark)
        self.seen.add(id(node))
        if depth > MAX_DEPTH:
            raise _LoadFailure("yaml-too-deep", f"nesting deeper than {MAX_DEPTH}", node.start_mark)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    self.errors.append(
                        ("yaml-merge-key", "merge keys ('<<') are not allowed in policies",
                         _pos(key_node), "write the keys out; policies are reviewed line by line")
                    )
                    continue
                key = self.scalar(key_node, path)
                if not isinstance(key, str):
                    key = str(key)
                if key in out:
                    first = self.positions.get((*path, key), ("?", "?"))
                    self.errors.append(
                        ("duplicate-key",
                         f"duplicate key '{key}' (first defined at line {first[0]})",
                         _pos(key_node), "remove one of them; YAML would silently keep the last")
                    )
                    continue
                self.positions[(*path, key)] = _pos(key_node)
                out[key] = self.build(value_node, (*path, key), depth + 1)
                # The key's position is the one people look for in messages.
                self.positions[(*path, key)] = _pos(key_node)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(v, (*path, i), depth + 1) for i, v in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: PathKey) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.errors.append(("yaml-complex-key", "mapping keys must be plain strings", _pos(node), None))
            return "<complex key>"
        text = node.value
        tag = node.tag
        plain = not node.style  # None from the pure-Python parser, '' from libyaml
        if plain and tag == "tag:yaml.org,2002:bool" and text not in _BOOL_WORDS:
            self.errors.append(
                ("yaml-ambiguous",
                 f"'{text}' would be read as a boolean by YAML 1.1",
                 _pos(node), f"write true/false, or quote it: '{text}'")
            )
            return text
        if plain and tag == "tag:yaml.org,2002:int" and not _INT_OK.match(text):
            self.errors.append(
                ("yaml-ambiguous",
                 f"'{text}' would be read as a YAML 1.1 octal, hex, binary or sexagesimal number",
                 _pos(node), f"write a plain decimal number, or quote it: '{text}'")
            )
            return text
        if plain and tag == "tag:yaml.org,2002:float" and ":" in text:
            self.errors.append(
                ("yaml-ambiguous", f"'{text}' would be read as a sexagesimal number",
                 _pos(node), f"quote it: '{text}'")
            )
            return text
        value = self.loader.construct_object(node, deep=True)
        if isinstance(value, float) and not math.isfinite(value):
            self.errors.append(
                ("yaml-non-finite", f"'{text}' is not a finite number", _pos(node),
                 "policies use finite numbers; leave a bound out to make it open")
            )
            return None
        if isinstance(value, _dt.datetime):
            self.errors.append(
                ("yaml-ambiguous", f"'{text}' is a timestamp; only dates (YYYY-MM-DD) are used",
                 _pos(node), "write the date alone, or quote the text")
            )
            return text
        if isinstance(value, _dt.date):
            return value.isoformat()
        if isinstance(value, bytes):
            self.errors.append(("yaml-binary", "binary values are not allowed", _pos(node), None))
            return None
        return value


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PolicyError([Diagnostic("file-unreadable", f"cannot read file: {exc.strerror}",
                                      file=str(path))]) from None
    if size > MAX_FILE_BYTES:
        raise PolicyError([Diagnostic(
            "file-too-large", f"file is {size} bytes; the limit is {MAX_FILE_BYTES}", file=str(path),
            hint="split the policy, or check that the right file was given")])
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        utf16 = isinstance(exc.object, bytes) and exc.object.startswith((b"\xff\xfe", b"\xfe\xff"))
        raise PolicyError([Diagnostic("file-encoding", "UTF-16 text; policies are UTF-8" if utf16 else
                                      f"not UTF-8 text ({exc.reason} at byte {exc.start})", file=str(path),
                                      hint="save the file as UTF-8 (in Notepad: Save as, Encoding UTF-8)"
                                      if utf16 else None)]) from None
    except OSError as exc:
        raise PolicyError([Diagnostic("file-unreadable", f"cannot read file: {exc.strerror}",
                                      file=str(path))]) from None


def load_yaml_text(text: str, file: str = "<string>") -> Document:
    """Parse YAML text; raise :class:`PolicyError` with every located problem."""
    if len(text.encode("utf-8")) > MAX_FILE_BYTES:
        raise PolicyError([Diagnostic("file-too-large", f"text is over {MAX_FILE_BYTES} bytes", file=file)])
    loader = _Loader(text)
    builder = _Builder(loader)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyError([Diagnostic("yaml-empty", "the file is empty", file=file, line=1,
                                          hint="a policy starts with 'id:' and 'version:'")])
        data = builder.build(node, ())
    except _LoadFailure as exc:
        raise PolicyError([Diagnostic(exc.code, exc.message, file=file, line=exc.mark.line + 1,
                                      column=exc.mark.column + 1, hint=exc.hint)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        hint = "check indentation and quoting on this line and the one before"
        if "flow" in msg:
            hint = "inside { } and [ ], quote text that contains , [ ] { } or ': '"
        raise PolicyError([Diagnostic(
            "yaml-syntax", msg or "invalid YAML", file=file,
            line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None,
            hint=hint)]) from None
    except yaml.YAMLError as exc:
        raise PolicyError([Diagnostic("yaml-syntax", str(exc), file=file)]) from None
    except RecursionError:
        raise PolicyError([Diagnostic("yaml-too-deep", "the document nests too deeply", file=file)]) from None
    finally:
        loader.dispose()
    if builder.errors:
        raise PolicyError([
            Diagnostic(code, msg, file=file, line=pos[0], column=pos[1], hint=hint)
            for code, msg, pos, hint in builder.errors
        ])
    return Document(file=file, data=data, text=text, positions=builder.positions)


def load_yaml_file(path: str | Path) -> Document:
    p = Path(path)
    return load_yaml_text(_read_text(p), file=str(path))


# ---------------------------------------------------------------- JSON input

MAX_JSON_BYTES = 5_000_000
MAX_JSON_DEPTH = 32


class JSONInputError(ValueError):
    """A JSON document a caller sent is unusable; message names the place."""


def _reject_constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not a valid number in client data")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise JSONInputError(f"duplicate key '{k}'")
        out[k] = v
    return out


_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _brackets_only(text: str) -> str:
    return _NOT_BRACKET.sub("", text)


_STRICT = object()  # the fast reader's "cannot vouch for this document"


def _fast_loads(raw: bytes) -> Any:
    """The document exactly as the strict reader gives it, read by orjson, or ``_STRICT``.

    orjson reads a client record in a fraction of the time of ``json`` with a duplicate-key
    hook, but keeps one of duplicate keys and reads an integer beyond 64 bits as a float. Both
    show in orjson's own output of the value. Without a backslash the strings hold no quote and
    no escape, so they come out byte for byte and hold the same colons: a dropped key is a
    missing colon. A number of 1e16 or more comes out as ``1e+16``, and every integer beyond 64
    bits is one. Anything else (escapes, huge numbers, errors) goes to the strict reader, which
    also words every message.
    """
    import orjson

    if b"\\" in raw:
        return _STRICT
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _STRICT
    written = orjson.dumps(value)
    if raw.count(b":") != written.count(b":") or b"e+" in written:
        return _STRICT
    return value


def parse_json_text(text: str | bytes) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys, bounded size and depth.

    A leading byte-order mark is skipped (RFC 8259 lets a parser ignore it): Windows tools write
    one, and it is not part of the document, as it is not for a CSV file.
    """
    if isinstance(text, bytes):
        if len(text) <= MAX_JSON_BYTES and text.count(b"[") + text.count(b"{") <= MAX_JSON_DEPTH:
            value = _fast_loads(text)  # orjson refuses a byte-order mark: that takes the strict way
            if value is not _STRICT:
                return value
        skip = 3 if text.startswith(b"\xef\xbb\xbf") else 0
        try:
            text = (text[skip:] if skip else text).decode("utf-8")
        except UnicodeDecodeError as exc:
            if text.startswith((b"\xff\xfe", b"\xfe\xff")):  # what PowerShell 5's '>' writes
                raise JSONInputError(f"UTF-16 text (byte-order mark {text[:2].hex(' ')}); client data is UTF-8: "
                                     "save it as UTF-8 (PowerShell: Out-File -Encoding utf8)") from None
            raise JSONInputError(f"not UTF-8 ({exc.reason} at byte {exc.start + skip})") from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_JSON_BYTES:
        raise JSONInputError(f"document is over {MAX_JSON_BYTES} bytes")
    # Bound nesting before the recursive parser sees it. Few brackets in all cannot nest deeply
    # (the common case, counted at C speed); otherwise drop string literals and walk the brackets.
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return _loads(text)
    depth = 0
    for ch in _brackets_only(_STRING_LITERAL.sub("", text)):
        if ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise JSONInputError(f"nesting deeper than {MAX_JSON_DEPTH}")
        else:
            depth -= 1
    return _loads(text)


def _loads(text: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise JSONInputError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
