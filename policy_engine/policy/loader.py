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
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..diagnostics import Diagnostic, PolicyError
from ..frozen import Frozen, field
from ..safetext import describe_character, printable, text_problem

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
            self.collection_tag(node)
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
            self.collection_tag(node)
            return [self.build(v, (*path, i), depth + 1) for i, v in enumerate(node.value)]
        return self.scalar(node, path)

    def scalar(self, node: yaml.Node, path: PathKey) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.errors.append(("yaml-complex-key", "mapping keys must be plain strings", _pos(node), None))
            return "<complex key>"
        text = node.value
        tag = node.tag
        if tag == _STR:  # most scalars: text as written, no builder needed
            return self.text(node, text)
        # Implicit: a plain scalar (style None from the pure-Python parser, '' from libyaml) whose
        # tag came from its text, not from an explicit '!!int' ('!!int abc' is a value the builder
        # cannot read, not an ambiguity).
        plain = not node.style and tag == self.loader.resolve(yaml.ScalarNode, text, (True, False))
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
        if plain and tag == "tag:yaml.org,2002:float" and (_ZERO_PADDED.match(text) or "_" in text):
            return self.padded(node, text)
        try:
            value = self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:  # an unknown or unsafe tag
            self.errors.append(("yaml-syntax", " ".join(str(p) for p in (exc.context, exc.problem) if p),
                                _pos(node), "remove the tag; policies use plain YAML values"))
            return None
        except Exception as exc:  # a tag or a date-like text the YAML builders cannot read
            self.errors.append(("yaml-bad-value", f"'{printable(text)}' cannot be read as "
                                f"{_tag_name(tag)}: {printable(str(exc))}", _pos(node),
                                "remove the tag, or write a valid value (quote it if it is text)"))
            return None
        if isinstance(value, int | float) and not isinstance(value, bool) and not self.finite(node, text, value):
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
        if isinstance(value, str):
            return self.text(node, value)
        if not isinstance(value, str | int | float | bool | None):  # !!set, !!omap, !!pairs, ...
            self.errors.append(("yaml-syntax", f"{_tag_name(tag)} values are not allowed", _pos(node),
                                "remove the tag; policies use plain YAML values"))
            return None
        return value

    def finite(self, node: yaml.Node, text: str, value: float) -> bool:
        """Whether a number is one a policy can compute with: finite, and within a float (every number of a
        policy is compared and computed as one; an integer beyond it crashed the checks)."""
        if isinstance(value, float) and not math.isfinite(value):
            self.errors.append(("yaml-non-finite", f"'{text}' is not a finite number", _pos(node),
                                "policies use finite numbers; leave a bound out to make it open"))
            return False
        if isinstance(value, int) and abs(value) > _LARGEST_FLOAT:
            self.errors.append(("yaml-non-finite", f"'{printable(text[:40])}{'...' if len(text) > 40 else ''}' is "
                                "beyond the largest number (about 1.8e308)", _pos(node),
                                "policies use finite numbers; leave a bound out to make it open"))
            return False
        return True

    def text(self, node: yaml.Node, text: str) -> Any:
        if not node.style and text[:1] in _NUMBER_START:
            if _ZERO_PADDED.match(text):
                return self.padded(node, text)
            if _YAML12_RADIX.match(text):  # 0o17: text to YAML 1.1, a number to YAML 1.2 (the editors)
                self.errors.append(("yaml-ambiguous", f"'{text}' is a number in YAML 1.2 (as an editor reads it) and "
                                    "text in YAML 1.1 (as the engine reads it)", _pos(node),
                                    f"write a plain decimal number, or quote it if it is text: '{text}'"))
                return text
            if _YAML12_EXPONENT.match(text):
                # YAML 1.2 (JSON, the editors' language server) reads 1e-3 and 1.5e10 as numbers; YAML
                # 1.1 needs a dot and a signed exponent. Read numbers, as the editor validated them.
                value = float(text)
                if not math.isfinite(value):
                    self.errors.append(("yaml-non-finite", f"'{text}' is not a finite number", _pos(node),
                                        "policies use finite numbers; leave a bound out to make it open"))
                    return None
                return value
        # An escaped control character ("\e", "\0") is text the YAML allows: inside an expression the
        # checker refuses it at its column; anywhere else renderers show it escaped (safetext).
        return text

    def padded(self, node: yaml.Node, text: str) -> str:
        self.errors.append(
            ("yaml-ambiguous", f"'{text}' is a zero-padded number or has '_' separators, which YAML 1.1 "
             "and YAML 1.2 read differently", _pos(node),
             f"write the number plainly ({_plain_number(text)}), or quote it if it is text: '{text}'"))
        return text

    def collection_tag(self, node: yaml.Node) -> None:
        """A tag on a mapping or list (``!!set``, ``!!omap``, ``!!python/...``) would be ignored: refuse it."""
        expected = "tag:yaml.org,2002:map" if isinstance(node, yaml.MappingNode) else "tag:yaml.org,2002:seq"
        if node.tag != expected:
            self.errors.append(("yaml-syntax", f"the tag {_tag_name(node.tag)} is not allowed", _pos(node),
                                "remove the tag; policies use plain YAML mappings and lists"))


_STR = "tag:yaml.org,2002:str"
_NUMBER_START = frozenset("0123456789+-.")
_YAML12_RADIX = re.compile(r"^[-+]?0[oObB][0-9_]+$")
_LARGEST_FLOAT = int(sys.float_info.max)
_YAML12_EXPONENT = re.compile(r"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)[eE][-+]?[0-9]+$")
_ZERO_PADDED = re.compile(r"^[-+]?0[0-9_]")


def _tag_name(tag: str) -> str:
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org,2002:") else tag


def _plain_number(text: str) -> str:
    digits = text.replace("_", "")
    sign = digits[0] if digits[:1] in "+-" else ""
    body = digits.lstrip("+-").lstrip("0") or "0"
    return sign + ("0" + body if body.startswith(".") else body)


def _read_text(path: Path) -> str:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise PolicyError([Diagnostic("file-unreadable", f"cannot read file: {exc.strerror}",
                                      file=str(path))]) from None
    if size > MAX_FILE_BYTES:
        raise PolicyError([_too_large_file(path, size)])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError([Diagnostic("file-unreadable", f"cannot read file: {exc.strerror}",
                                      file=str(path))]) from None
    return decode_policy_bytes(raw, str(path))


def decode_policy_bytes(raw: bytes, file: str) -> str:
    """A policy file's bytes as text; not UTF-8 is a diagnostic at the line and column of the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise PolicyError([Diagnostic("file-encoding", "UTF-16 text; policies are UTF-8", file=file,
                                          hint="save the file as UTF-8 (in Notepad: Save as, Encoding UTF-8)")]) \
                from None
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[raw.rfind(b"\n", 0, exc.start) + 1:exc.start].decode("utf-8", "replace")) + 1
        hint = "save the file as UTF-8 (in Notepad: Save as, Encoding UTF-8)"
        try:
            raw.decode("gb18030")
            hint = "the file reads as GB18030/GBK (a Chinese-locale encoding): " + hint
        except UnicodeDecodeError:
            pass
        raise PolicyError([Diagnostic(
            "file-encoding", f"not UTF-8 text: byte 0x{raw[exc.start]:02x} ({exc.reason})", file=file,
            line=line, column=column, hint=hint)]) from None


_TOP_KEY = re.compile(r"^(?!---|\.\.\.)[^\s#\-?:,\[\]{}][^\n]*?:(?:[ \t]|$)", re.M)


def _too_large_file(path: Path, size: int) -> Diagnostic:
    """The limit, and the top-level section the limit falls in (read from the first bytes only)."""
    where = ""
    try:
        with path.open("rb") as fh:
            head = fh.read(MAX_FILE_BYTES).decode("utf-8", "replace")
        keys = list(_TOP_KEY.finditer(head))
        if keys:
            last = keys[-1]
            where = (f"; the limit falls in section '{printable(last.group().split(':')[0].strip())[:60]}' "
                     f"(from line {head.count(chr(10), 0, last.start()) + 1})")
    except OSError:
        pass
    return Diagnostic("file-too-large", f"file is {size:,} bytes; the limit for a policy or test file "
                      f"(MAX_FILE_BYTES) is {MAX_FILE_BYTES:,} bytes{where}", file=str(path),
                      hint="split the policy, or check that the right file was given")


def load_yaml_text(text: str, file: str = "<string>") -> Document:
    """Parse YAML text; raise :class:`PolicyError` with every located problem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        raise PolicyError([Diagnostic("file-too-large", f"text is over {MAX_FILE_BYTES:,} bytes (MAX_FILE_BYTES)",
                                      file=file)])
    bad = _UNREADABLE.search(text)
    if bad is not None:  # libyaml reads UTF-8: it cannot even be handed a lone surrogate
        line, column = _line_column(text, bad.start())
        raise PolicyError([Diagnostic("yaml-bad-character", describe_character(bad.group()),
                                      file=file, line=line, column=column, hint=_CHARACTER_HINT)])
    data, positions, diags = _parse(text, file)
    if data is None and len(diags) == 1 and diags[0].code == "yaml-syntax":  # the parse stopped there
        diags += _recover(text, file, diags)
    if diags:
        raise PolicyError(diags)
    return Document(file=file, data=data, text=text, positions=positions)


# A key written with a Chinese keyboard's colon ('zh：text'): YAML reads the line as text, and the error
# comes a line later ("mapping values are not allowed") without naming the character.
_FULL_WIDTH_KEY = re.compile(r"^\s*(?:-\s+)?([A-Za-z_][\w-]*)\s*([：﹕])")


def full_width_colon(text: str, line: int | None) -> tuple[int, int, str] | None:
    """A full-width colon after a key on ``line`` or the line before (1-based), if there is one: its line and
    column (the parser stops a line later, where the author does not look) and the hint that names it."""
    if line is None:
        return None
    lines = text.splitlines()
    for n in (line, line - 1):
        if 1 <= n <= len(lines) and (m := _FULL_WIDTH_KEY.match(lines[n - 1])):
            key, colon = m.group(1), m.group(2)
            return n, m.start(2) + 1, (f"'{key}{colon}' has a full-width colon (U+{ord(colon):04X}), which YAML "
                                       f"reads as text; write '{key}: ' with the ASCII colon and a space")
    return None


_UNREADABLE = re.compile(r"[\ud800-\udfff]")
_CHARACTER_HINT = ("remove it; a NUL byte usually means a UTF-16 or binary file: save the file as UTF-8 text")


def _parse(text: str, file: str) -> tuple[Any, dict[PathKey, tuple[int, int]], list[Diagnostic]]:
    """Values, positions and problems of one YAML text; any exception of the YAML library is a problem."""
    loader = _Loader(text)
    builder = _Builder(loader)
    data = None
    try:
        node = loader.get_single_node()
        if node is None:
            return None, {}, [Diagnostic("yaml-empty", "the file is empty", file=file, line=1,
                                         hint="a policy starts with 'id:' and 'version:'")]
        data = builder.build(node, ())
    except _LoadFailure as exc:
        return None, {}, [Diagnostic(exc.code, exc.message, file=file, line=exc.mark.line + 1,
                                     column=exc.mark.column + 1, hint=exc.hint)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        msg = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        opened = exc.context_mark
        if opened is not None and exc.problem_mark is not None and opened.line != exc.problem_mark.line:
            # where the parser gave up is often far from the mistake: an unclosed '[' lines above
            what = str(exc.context).partition(" a ")[2] or "construct"  # 'while parsing a flow sequence'
            msg += f" (the {what} started at line {opened.line + 1}, column {opened.column + 1})"
        hint = "check indentation and quoting on this line and the one before"
        if "flow" in msg:
            hint = "inside { } and [ ], quote text that contains , [ ] { } or ': '"
        line, column = (mark.line + 1, mark.column + 1) if mark else (None, None)
        lines = text.splitlines()
        if mark is not None and mark.line < len(lines) and "\t" in lines[mark.line][:mark.column + 1]:
            # libyaml says "found character that cannot start any token": an author sees no character there
            msg = f"a tab: YAML indents with spaces only ({msg})"
            hint = "replace the tab with spaces (set the editor to insert spaces for the Tab key)"
        colon = full_width_colon(text, line)
        if colon is not None:
            line, column, hint = colon
        return None, {}, [Diagnostic("yaml-syntax", msg or "invalid YAML", file=file, line=line, column=column,
                                     hint=hint)]
    except yaml.reader.ReaderError as exc:
        # libyaml counts bytes of the UTF-8 text, the pure-Python reader characters
        pos = exc.position
        if _BaseLoader is not yaml.SafeLoader:
            pos = len(text.encode("utf-8")[:pos].decode("utf-8", "replace"))
        line, column = _line_column(text, pos)
        found = describe_character(chr(exc.character)) if isinstance(exc.character, int) else exc.reason
        return None, {}, [Diagnostic("yaml-bad-character", f"{found}: YAML text holds no such character",
                                     file=file, line=line, column=column, hint=_CHARACTER_HINT)]
    except yaml.YAMLError as exc:
        return None, {}, [Diagnostic("yaml-syntax", printable(str(exc)), file=file)]
    except RecursionError:
        return None, {}, [Diagnostic("yaml-too-deep", "the document nests too deeply", file=file)]
    finally:
        loader.dispose()
    diags = [Diagnostic(code, msg, file=file, line=pos[0], column=pos[1], hint=hint)
             for code, msg, pos, hint in builder.errors]
    return data, builder.positions, diags


def _recover(text: str, file: str, found: list[Diagnostic]) -> list[Diagnostic]:
    """Problems of the other top-level sections, after a syntax error stopped the parse of the whole.

    A YAML syntax error ends parsing, yet sections before and after it are often fine YAML that
    hold problems of their own; each top-level key's block is parsed alone (at its own line
    numbers) and its problems are added. An alias to an anchor of another section is not a problem.
    """
    stop = {d.line for d in found if d.line is not None}
    starts = [m.start() for m in _TOP_KEY.finditer(text)]
    out: list[Diagnostic] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        first = text.count("\n", 0, start) + 1
        last = first + text.count("\n", start, end)  # the next section's first line: where a mark may fall
        _, _, diags = _parse("\n" * (first - 1) + text[start:end], file)
        failing = any(first <= line <= last for line in stop)  # its syntax error is the one already reported
        out += [d for d in diags if not (failing and d.code == "yaml-syntax") and "undefined alias" not in d.message]
    return out


def load_yaml_file(path: str | Path) -> Document:
    p = Path(path)
    return load_yaml_text(_read_text(p), file=str(path))


# ---------------------------------------------------------------- JSON input

MAX_JSON_BYTES = 5_000_000
MAX_JSON_DEPTH = 32
MAX_JSON_INT_DIGITS = 100  # far beyond any amount; Python itself refuses 4300 digits, with no place


def _json_place(text: str, exc: json.JSONDecodeError) -> tuple[str, tuple[int, int]]:
    """Where a JSON syntax error is, in words and as (line, column): one line of JSON Lines (its newline
    read with it) is placed by column, and an error past the last character (an object left open) at the
    end, not on a line after it that the file does not have."""
    content = text.rstrip()
    pos = min(exc.pos, len(content))
    line = content.count("\n", 0, pos) + 1
    column = pos - (content.rfind("\n", 0, pos) + 1) + 1
    if "\n" not in content:
        return ("at the end of the line" if exc.pos >= len(content) else f"at column {column}"), (line, column)
    if exc.pos >= len(content):
        return f"at the end of the text (line {line})", (line, column)
    return f"at line {line} column {column}", (line, column)


class JSONInputError(ValueError):
    """A JSON document a caller sent is unusable: every problem with its code and field path.

    ``problems`` holds ``(code, path, message)``; the path is ``loan.overdue_days`` or
    ``financials[2].revenue`` (None when the whole document is concerned). ``str()`` names both,
    for callers that keep one line per document.
    """

    def __init__(self, message: str = "", path: str | None = None, *, code: str = "bad-json",
                 problems: Sequence[tuple[str, str | None, str]] | None = None,
                 at: tuple[int, int] | None = None) -> None:
        self.problems = list(problems) if problems else [(code, path, message)]
        self.at = at  # (line, column) in the text, of a syntax error
        super().__init__("; ".join(m + (f" [at {p}]" if p else "") for _, p, m in self.problems))

    def diagnostics(self, file: str | None = None, hint: str | None = None) -> list[Diagnostic]:
        """One diagnostic per problem, for :class:`InputError` (exit 3)."""
        line, column = self.at or (None, None)
        return [Diagnostic(code, message, file=file, line=line, column=column, path=path,
                           hint=_TEXT_HINT if code == "bad-text" else hint if path is None else None)
                for code, path, message in self.problems]


_TEXT_HINT = "client text holds no control characters (NUL, escape, tab, new line) and no lone surrogates"


class _Bad:
    """A value the strict reader refused, left in place so the walk can name its field."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


class _Duplicates(dict):  # type: ignore[type-arg]
    """An object that repeated keys (the first value of each is kept)."""

    repeated: list[str]


_STRING_LITERAL = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_OR_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[{}\[\],:]|[^\s{}\[\],:"]+')
# A lone surrogate can only come from an escape (UTF-8 cannot encode one): text that may hold one.
_SUSPECT_TEXT = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_LONG_DIGITS = re.compile(rf"\d{{{MAX_JSON_INT_DIGITS + 1}}}")
# A number that may be beyond a float (an exponent of three digits or more, or 309 digits): read one by one.
_HUGE_NUMBER = re.compile(r"[eE][+-]?\d{3}|\d{309}")


def _brackets_only(text: str) -> str:
    return _NOT_BRACKET.sub("", text)


def _path_at(text: str, pos: int, field_only: bool = False) -> str | None:
    """The field path at character ``pos`` of a (possibly broken) JSON text, e.g. ``loan.overdue_days``.

    Only called for a document already refused, so a token walk that never fails beats speed.
    """
    stack: list[list[Any]] = []  # [is_object, key or index, expecting a key]
    for m in _TOKEN.finditer(text, 0, pos):
        tok = m.group()
        top = stack[-1] if stack else None
        if tok in ("{", "["):
            stack.append([True, None, True] if tok == "{" else [False, 0, False])
        elif tok in ("}", "]"):
            if stack:
                stack.pop()
        elif tok == "," and top is not None:
            if top[0]:
                top[1], top[2] = None, True
            else:
                top[1] += 1
        elif tok == ":" and top is not None and top[0]:
            top[2] = False
        elif tok.startswith('"') and top is not None and top[0] and top[2]:
            try:
                top[1] = json.loads(tok)
            except ValueError:
                top[1] = tok.strip('"')
    path = tuple(printable(k) if isinstance(k, str) else k for _, k, _ in stack if k is not None)
    if field_only:  # the field whose value is at fault, not the [0][0][0]... inside it
        while path and isinstance(path[-1], int):
            path = path[:-1]
    return format_path(path) if path else None


def _line_column(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


_STRICT = object()  # the fast reader's "cannot vouch for this document"


def _fast_loads(raw: bytes) -> Any:
    """The document exactly as the strict reader gives it, read by orjson, or ``_STRICT``.

    orjson reads a client record in a fraction of the time of ``json`` with a duplicate-key
    hook, but keeps one of duplicate keys and reads an integer beyond 64 bits as a float. Both
    show in orjson's own output of the value. Without a backslash the strings hold no quote and
    no escape, so they come out byte for byte and hold the same colons: a dropped key is a
    missing colon. A number of 1e16 or more comes out as ``1e+16``, and every integer beyond 64
    bits is one. Anything else (escapes, huge numbers, errors) goes to the strict reader, which also words
    every message and names every field.
    """
    import orjson

    if b"\\" in raw:
        return _STRICT
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _STRICT
    try:
        written = orjson.dumps(value)
    except orjson.JSONEncodeError:  # nested beyond what it writes (254 deep; it reads 1024): the strict reader
        return _STRICT             # refuses the depth with its path
    if raw.count(b":") != written.count(b":") or b"e+" in written:
        return _STRICT
    return value


# What is held of one document's bytes at most: the limit, a byte-order mark and a line's CRLF beside it.
READ_LIMIT = MAX_JSON_BYTES + 5


class CutLine(bytes):
    """A line longer than any document, as read: its first :data:`READ_LIMIT` bytes; ``size`` is the whole
    line's without its end, as the limit counts (the rest was read past, not held)."""

    size: int | None = None
    length: int = 0  # the bytes it took of the stream, its end included (where the next line starts)


_WIDE_MARKS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"), (b"\xff\xfe", "UTF-16"),
               (b"\xfe\xff", "UTF-16"))


def wide_text(head: bytes) -> str | None:
    """How text of 2 or 4 bytes a character announces itself at its start (``head``: a file's first bytes): 'UTF-16
    text (byte-order mark ff fe)', or without a mark, JSON's first ASCII character beside NUL bytes; else None."""
    for mark, name in _WIDE_MARKS:
        if head.startswith(mark):
            return f"{name} text (byte-order mark {mark.hex(' ')})"
    if len(head) >= 4 and (head[1:4] == b"\0\0\0" or head[:3] == b"\0\0\0") and head.strip(b"\0"):
        return "UTF-32 text (no byte-order mark)"
    if len(head) >= 2 and (head[1] == 0) != (head[0] == 0):
        return "UTF-16 text (no byte-order mark)"
    return None


def bounded_lines(fh: Any) -> Iterator[bytes]:
    """The lines of a binary stream, none held beyond :data:`READ_LIMIT` bytes: a longer one comes as a
    :class:`CutLine` (which :func:`parse_json_text` refuses as too large), so a caller's runaway line costs
    no more memory than a document (reading it whole, a line of /dev/zero grew to 7 GB)."""
    while line := fh.readline(READ_LIMIT):
        if len(line) < READ_LIMIT or line.endswith(b"\n"):
            yield line
            continue
        size, last = len(line), b""
        while chunk := fh.readline(1 << 20):
            size, last = size + len(chunk), chunk
            if chunk.endswith(b"\n"):
                break
        cut = CutLine(line)
        cut.size = size - (len(last) - _size(last, False))  # as the limit counts: without the line's end
        cut.length = size
        yield cut


def read_bounded(fh: Any) -> bytes:
    """A whole document from a binary stream, refused once it holds more than :data:`READ_LIMIT` bytes
    (nothing more is read: a runaway producer, or -c /dev/zero, costs one document's memory)."""
    data = fh.read(READ_LIMIT)
    if len(data) == READ_LIMIT and _size(data, data.startswith(b"\xef\xbb\xbf")) > MAX_JSON_BYTES \
            and fh.read(1):
        raise _too_large(None)
    return bytes(data)


def _size(text: bytes, bom: bool) -> int:
    """A document's size as the limit counts it: without a byte-order mark and its line's end (CRLF or LF), so
    one record is one size in a file, on a JSON Lines line and on the stream."""
    end = len(text)
    while end and text[end - 1] in (10, 13):
        end -= 1
    return end - (3 if bom else 0)


_CLIENT_ID_MEMBER = re.compile(rb'"client_id"\s*:\s*("(?:[^"\\\x00-\x1f]|\\.){1,200}")')


def readable_client_id(line: bytes) -> str | None:
    """The client_id of a line that is no JSON, when it can be read for sure (one ``"client_id": "..."`` member,
    a valid string): a calling system matches its rejected rows to its clients by that id, and a syntax error
    elsewhere on the line leaves it readable. None when there are two (a nested one, or a line holding two
    records) or the string itself is broken."""
    found = _CLIENT_ID_MEMBER.findall(line)
    if len(found) != 1 or line.count(b'"client_id"') != 1:
        return None
    try:
        value = json.loads(found[0])
    except ValueError:  # bytes that are not UTF-8, a bad escape
        return None
    # an id a record could not carry either (a lone surrogate, a control character) is not one to repeat
    return value if isinstance(value, str) and value.strip() and text_problem(value) is None else None


def parse_json_text(text: str | bytes, depth_checked: bool = False) -> Any:
    """Strict JSON: no NaN/Infinity, no duplicate keys, bounded size, depth and integer digits, no lone
    surrogates (text that cannot be stored); every refusal names its field path. ``depth_checked``: these bytes
    were read here before (a batch reading a line again to store it), so their depth is not measured again.

    Control characters in text are refused by the input checks of the fields a policy reads
    (:func:`safetext.text_problem`), with every other problem of the record.

    A leading byte-order mark is skipped (RFC 8259 lets a parser ignore it): Windows tools write
    one, and it is not part of the document, as it is not for a CSV file.
    """
    if isinstance(text, CutLine):
        raise _too_large(text.size)
    if isinstance(text, bytes):
        if len(text) <= MAX_JSON_BYTES or _size(text, False) <= MAX_JSON_BYTES:
            value = _fast_loads(text)  # orjson refuses a byte-order mark: that takes the strict way
            # Few brackets in all cannot nest deeply; a record with many lists (a debtor's exposures and
            # payments) has its depth measured on the value, not sent to the strict reader for it.
            if value is not _STRICT and (depth_checked or text.count(b"[") + text.count(b"{") <= MAX_JSON_DEPTH
                                         or _depth(text) <= MAX_JSON_DEPTH):
                return value
        skip = 3 if text.startswith(b"\xef\xbb\xbf") else 0
        if _size(text, bool(skip)) > MAX_JSON_BYTES:
            raise _too_large(_size(text, bool(skip)))
        try:
            text = (text[skip:] if skip else text).decode("utf-8")
        except UnicodeDecodeError as exc:
            wide = wide_text(text)
            if wide is not None:  # what PowerShell 5's '>' writes
                raise JSONInputError(f"{wide}; client data is UTF-8: save it as UTF-8 (PowerShell: Out-File "
                                     "-Encoding utf8)") from None
            before = text[skip:skip + exc.start].decode("utf-8", "replace")
            line, col = _line_column(before, len(before))
            # a line of JSON Lines or of a stream is one line: its caller names the line, so its column alone here
            where = f"line {line} column {col}" if b"\n" in text.rstrip(b"\r\n") else f"column {col}"
            raise JSONInputError(
                f"not UTF-8 ({exc.reason}: byte 0x{text[skip + exc.start]:02x} at byte {exc.start + skip}, "
                f"{where})", _path_at(before, len(before))) from None
    elif text.startswith("\ufeff"):
        text = text[1:]
    if len(text) > MAX_JSON_BYTES and len(text.rstrip("\r\n").encode("utf-8", "surrogatepass")) > MAX_JSON_BYTES:
        raise _too_large(len(text.rstrip("\r\n").encode("utf-8", "surrogatepass")))
    # Bound nesting before the recursive parser sees it. Few brackets in all cannot nest deeply
    # (the common case, counted at C speed); otherwise drop string literals and walk the brackets.
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH:
        depth = 0
        for ch in _brackets_only(_STRING_LITERAL.sub("", text)):
            if ch in "[{":
                depth += 1
                if depth > MAX_JSON_DEPTH:
                    raise JSONInputError(f"nesting deeper than {MAX_JSON_DEPTH}",
                                         _path_at(text, _too_deep_at(text), field_only=True))
            else:
                depth -= 1
    return _loads(text)


_RAW_STRING = re.compile(rb'"[^"]*"')  # a string of a document without backslashes: no escaped quote inside
_BYTES_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


# A document's quotes and brackets, every bracket as '(' or ')' (a valid document closes each with its kind).
_PARENS = bytes.maketrans(b"[{]}", b"(())")
_BYTES_NOT_MARK = bytes(b for b in range(256) if b not in b'[]{}"')


def _depth(raw: bytes) -> int:
    """How deep the containers of a valid JSON document without backslashes nest (the top one is 1), as the
    strict reader counts, up to ``MAX_JSON_DEPTH + 1``.

    On its quotes and brackets alone: each string's quotes side by side (no bracket inside) go in one
    ``replace``, then each pass of ``replace(b"()", b"")`` takes every innermost pair, one level, all at
    C speed (on a generated debtor about a sixth of the walk, which was a third of its parse). A string
    holding a bracket leaves a quote (the first such string's opening quote has a bracket beside it and
    the strings before it went pair by pair): those documents take the walk.
    """
    marks = raw.translate(_PARENS, _BYTES_NOT_MARK).replace(b'""', b"")
    if b'"' in marks:
        return _walked_depth(raw)
    depth = 0
    while marks and depth <= MAX_JSON_DEPTH:
        marks = marks.replace(b"()", b"")
        depth += 1
    return depth


def _walked_depth(raw: bytes) -> int:
    """:func:`_depth` by the walk: its strings dropped, its brackets walked (the definition)."""
    depth = deepest = 0
    for ch in _RAW_STRING.sub(b"", raw).translate(None, _BYTES_NOT_BRACKET):
        if ch in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _too_large(size: int | None) -> JSONInputError:
    """The limit refused; a size of None: more than this reader holds (the rest was not read)."""
    what = f"{size:,} bytes" if size is not None else f"more than {READ_LIMIT:,} bytes (the rest not read)"
    return JSONInputError(f"the document is {what}; the limit for one client record (MAX_JSON_BYTES) is "
                          f"{MAX_JSON_BYTES:,} bytes")


def _too_deep_at(text: str) -> int:
    """Where the first bracket beyond the nesting limit opens (strings skipped)."""
    depth = 0
    for m in _BRACKET_OR_STRING.finditer(text):
        ch = m.group()
        if ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return m.start()
        elif ch in "]}":
            depth -= 1
    return len(text)


def _loads(text: str) -> Any:
    """The strict reader: refusals are left in place as markers, then named by their field path."""
    marked: list[bool] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        repeated: list[str] = []
        for k, v in items:
            if k in out:
                repeated.append(k)
            else:
                out[k] = v
        if not repeated:
            return out
        marked.append(True)
        dup = _Duplicates(out)
        dup.repeated = repeated
        return dup

    def constant(name: str) -> _Bad:
        marked.append(True)
        return _Bad(f"{name} is not a valid number in client data")

    def integer(digits: str) -> int | _Bad:
        n = len(digits.lstrip("-"))
        if n > MAX_JSON_INT_DIGITS:
            marked.append(True)
            return _Bad(f"an integer of {n} digits; the limit is {MAX_JSON_INT_DIGITS}")
        return int(digits)

    def real(digits: str) -> float | _Bad:
        v = float(digits)
        if v - v != 0:  # 1e400 reads as an infinity, which no number of a record is: refused as Infinity is
            marked.append(True)
            return _Bad(f"{digits[:30]} is beyond the largest number, about ±1.8e308 (it would read as infinity)")
        return v

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant,
                           parse_int=integer if _LONG_DIGITS.search(text) else None,
                           parse_float=real if _HUGE_NUMBER.search(text) else None)
    except json.JSONDecodeError as exc:
        where, at = _json_place(text, exc)
        if exc.msg.startswith("Invalid control character") and not text[exc.pos:].strip():
            # the line ends inside a string ('{"bad json'): not a control character the client sent
            raise JSONInputError(f"invalid JSON {where}: unterminated string (the text ends inside it)",
                                 _path_at(text, exc.pos), at=at) from None
        if exc.msg.startswith("Invalid control character"):  # raw, inside a string: client text holds none
            raise JSONInputError(f"{describe_character(text[exc.pos])} {where}", _path_at(text, exc.pos),
                                 code="bad-text", at=at) from None
        raise JSONInputError(f"invalid JSON {where}: {exc.msg}", _path_at(text, exc.pos), at=at) from None
    except RecursionError:  # bounded above; a caller of _loads alone gets the same answer
        raise JSONInputError(f"nesting deeper than {MAX_JSON_DEPTH}") from None
    if marked or _SUSPECT_TEXT.search(text) or _SURROGATE.search(text):  # escaped, or in a str handed in
        problems = list(_refusals(value, ()))
        if problems:
            raise JSONInputError(problems=problems)
    return value


def _refusals(value: Any, path: PathKey) -> Iterator[tuple[str, str | None, str]]:
    """Every marker, repeated key and lone surrogate in a read document, with its field path."""
    where = format_path(path) if path else None
    if isinstance(value, _Bad):
        yield ("bad-json", where, value.message)
    elif isinstance(value, str):
        bad = _SURROGATE.search(value)
        if bad:
            yield ("bad-text", where, f"{describe_character(bad.group())} at character {bad.start() + 1}")
    elif isinstance(value, dict):
        for k in getattr(value, "repeated", ()):
            yield ("bad-json", format_path((*path, printable(k))), f"duplicate key '{printable(k)}'")
        for k, v in value.items():
            bad = _SURROGATE.search(k)
            if bad:
                yield ("bad-text", format_path((*path, printable(k))),
                       f"field name: {describe_character(bad.group())} at character {bad.start() + 1}")
            yield from _refusals(v, (*path, printable(k)))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _refusals(v, (*path, i))
