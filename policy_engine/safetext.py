"""Hostile text: what client data may hold, and how any text is shown on a terminal or a page.

Three rules, one module, so the JSON reader, the table checks and every renderer agree:

* **At input**, a text value (or a field name) of client data holds no control character
  (U+0000-U+001F, U+007F-U+009F: NUL, escape sequences, carriage returns that overwrite a line)
  and no lone surrogate (which cannot be stored as UTF-8). :func:`text_problem` says what is
  wrong and where in the value.
* **An id** (a client id, an element's key such as an exposure id) is compared, so it holds no
  invisible character either (a zero-width space, a bidirectional control, a soft hyphen: ``E1``
  and ``E1`` followed by U+200B look the same and are two exposures) and is written in Unicode
  normal form C (``É`` composed or as ``E`` and an accent are one letter written two ways):
  :func:`id_problem`.
* **At output**, text that reaches a terminal or a browser shows what is there and cannot act:
  control characters, bidirectional embeddings, overrides and isolates (the "Trojan Source"
  characters that make text read in another order than it is stored), line and paragraph
  separators and lone surrogates are written as visible escapes (``\\x1b``, ``\\u202e``) by
  :func:`printable`; :func:`html_text` does that and then HTML escaping.
"""

from __future__ import annotations

import html
import re
import unicodedata

# What client text may not hold (checked at input).
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# What no renderer shows raw: the above, bidi controls (U+202A-E, U+2066-9, U+200E/F, U+061C) and U+2028/9.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029]")
_UNSAFE_BUT_LINES = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029]")

_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "backspace", 0x09: "tab", 0x0A: "line feed", 0x0D: "carriage return",
          0x1B: "escape", 0x7F: "DEL", 0x9B: "CSI"}


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str, keep_newlines: bool = False) -> str:
    r"""``text`` with every character that could act on a terminal or reorder a line shown as an escape.

    ``keep_newlines`` keeps line feeds (for multi-line output the renderer itself built); every
    other such character, carriage returns included, becomes ``\xNN`` or ``\uNNNN``.
    """
    pattern = _UNSAFE_BUT_LINES if keep_newlines else _UNSAFE
    return pattern.sub(_escape, text) if pattern.search(text) else text


def html_text(text: str) -> str:
    """Text for an HTML page: :func:`printable`, then HTML escaping (quotes included, for attributes)."""
    return html.escape(printable(text))


def describe_character(ch: str) -> str:
    """``control character U+001B (escape)``, ``lone surrogate U+D800``: a character named for a message."""
    code = ord(ch)
    if 0xD800 <= code <= 0xDFFF:
        return f"lone surrogate U+{code:04X} (not a character: half of a UTF-16 pair)"
    name = _NAMES.get(code) or (unicodedata.name(ch, "").lower() or None if code > 0x9F else None)
    kind = "control character" if code < 0x20 or 0x7F <= code <= 0x9F else "character"
    return f"{kind} U+{code:04X}" + (f" ({name})" if name else "")


def text_problem(text: str) -> str | None:
    """Why ``text`` is not acceptable client text (the first bad character and its position), or None."""
    m = _FORBIDDEN.search(text)
    if m is None:
        return None
    return f"{describe_character(m.group())} at character {m.start() + 1}"


# What an id may not hold besides: characters that show nothing. The format characters that show nothing (the soft
# hyphen, zero-width and bidirectional controls, the byte-order mark, interlinear annotation, musical and
# hieroglyph format controls, tags) and the characters of other categories a renderer draws as nothing or a blank:
# the combining grapheme joiner, variation selectors (Mongolian and general), the Hangul fillers, the Khmer
# inherent vowels and the blank braille pattern. ``E1`` and ``E1`` with U+FE0F after it are two exposures.
_INVISIBLE = ("\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f\u202a-\u202e"
              "\u2060-\u2064\u2066-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff9-\ufffb"
              "\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e007f"
              "\U000e0100-\U000e01ef")
_FORBIDDEN_IN_ID = re.compile(f"[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff{_INVISIBLE}]")
# Spaces (control characters such as tabs are refused already): an id of spaces alone names nothing, and two keys
# that differ only by spaces at either end look the same (a fixed-width export pads one and not the other).
SPACE_CHARS = " \u00a0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
_SPACE_SET = frozenset(SPACE_CHARS)
_BLANK = re.compile(f"[{SPACE_CHARS}]+")
ID_FORBIDDEN_PATTERN = f"{_FORBIDDEN_IN_ID.pattern}|^[{SPACE_CHARS}]+$"  # pandas' vectorised search
ARROW_ID_FORBIDDEN = f"[\\x00-\\x1f\\x7f-\\x9f{_INVISIBLE}]|^[{SPACE_CHARS}]+$"  # Arrow's (no surrogates there)


def id_problem(text: str) -> str | None:
    """Why ``text`` is not an acceptable id (a client id, an exposure id), or None: a control or invisible
    character (where), or a form other than NFC."""
    control = text_problem(text)
    if control is not None:  # as any client text words it
        return f"{control} (text holds no control characters)"
    m = _FORBIDDEN_IN_ID.search(text)
    if m is not None:
        return (f"{describe_character(m.group())} at character {m.start() + 1} (an id holds no invisible characters: "
                "two ids that look the same must be the same)")
    if _BLANK.fullmatch(text) is not None:
        return "only spaces: an id of spaces names nothing"
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        return ("written in a decomposed Unicode form (not NFC): the same id can be written two ways, which compare "
                f"as different ids; send it as NFC ({unicodedata.normalize('NFC', text)!r})")
    return None


def has_id_problem(text: str) -> bool:
    """Cheap test for :func:`id_problem`."""
    return (_FORBIDDEN_IN_ID.search(text) is not None
            or (text[:1] in _SPACE_SET and _BLANK.fullmatch(text) is not None)
            or (not text.isascii() and not unicodedata.is_normalized("NFC", text)))


def id_key(text: str) -> str:
    """The form two keys under one parent are compared in: without spaces at either end ('E1 ' is 'E1')."""
    return text.strip(SPACE_CHARS)


def near_id_key(text: str) -> str:
    """The form in which two ids are surely meant as one: without spaces at either end, in normal form C and with
    case folded ('g003 ', 'G003' and 'G003' written with a decomposed letter). Ids stay case-sensitive; a row of a
    long table whose debtor id matches none exactly but one in this form names that debtor, written otherwise."""
    return unicodedata.normalize("NFC", id_key(text)).casefold()


def how_ids_differ(text: str, known: str) -> str:
    """What tells apart two ids of one :func:`near_id_key`: 'spaces', 'Unicode form', 'letter case' or several."""
    ways = []
    a, b = id_key(text), id_key(known)
    if (a, b) != (text, known):
        ways.append("spaces")
    na, nb = unicodedata.normalize("NFC", a), unicodedata.normalize("NFC", b)
    if a != b and (na, nb) != (a, b):
        ways.append("Unicode form")
    if na != nb:
        ways.append("letter case")
    return " and ".join(ways)


def spaced_apart(text: str, first: str) -> str:
    """`` ('E1': the two differ only by spaces)`` when ``text`` repeats ``first`` only by its spaces, else ''."""
    return f" ('{first}': the two differ only by spaces)" if text != first else ""


def repeated_id(text: str, first: str, row: int | str) -> str:
    """The message for a client id given again (compared by :func:`id_key`), naming its first row."""
    return f"duplicate client_id '{text}' (first at row {row}){spaced_apart(text, first)}"


def has_forbidden(text: str) -> bool:
    """Cheap test for :func:`text_problem` (one regular-expression search)."""
    return _FORBIDDEN.search(text) is not None


FORBIDDEN_PATTERN = _FORBIDDEN.pattern  # for pandas' vectorised ``str.contains``


def json_text(line: str) -> str:
    """:func:`json_line` for text written to a file opened as text (records, rejects)."""
    if "\u2028" not in line and "\u2029" not in line and "\x85" not in line:
        return line
    return line.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace("\x85", "\\u0085")


def json_line(line: bytes) -> bytes:
    """A JSON Lines line with U+2028, U+2029 and U+0085 (NEL) escaped: JSON allows them raw (it escapes the other
    line breaks, control characters), but a reader that splits lines as Python's splitlines or an older JavaScript
    parser does would cut one line in two (decide --stream's answers, audit export's records, batch rejects)."""
    if b"\xe2\x80" not in line and b"\xc2\x85" not in line:
        return line
    return (line.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
            .replace("\x85".encode(), b"\\u0085"))

