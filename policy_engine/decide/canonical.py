"""The bytes ``input_sha256`` hashes: a record's canonical JSON.

The same client read from JSON, CSV, Parquet or long tables, with or without its null facts, must have
one hash, so the record is normalised (nulls dropped, objects left without a member dropped, integral
floats written as integers, trailing empty periods dropped; in a debtor record, where an absent list is
empty, empty lists dropped) before it is hashed. The walk that does this
in Python is the definition; the byte-level fast paths reach the same bytes at a fraction of its cost,
and property tests hold them to it.
"""

from __future__ import annotations

import re
from typing import Any

import orjson


def _canonical(v: Any, drop_empty: bool = True, drop_empty_lists: bool = False) -> Any:
    t = type(v)
    if t is dict:
        out = {}
        for k, x in v.items():  # scalars handled inline: a client record is mostly flat numbers
            tx = type(x)
            if x is None:
                continue
            if tx is float:
                if x.is_integer() and -(2**53) < x < 2**53:
                    x = int(x)
                elif x - x != 0.0:  # NaN or an infinity: JSON writes null, so the member goes as a null does
                    continue
            elif tx is dict:
                x = _canonical(x, drop_empty, drop_empty_lists)
                if not x and drop_empty:  # an object of nulls only ({"group_id": null}) says no more than none
                    continue
            elif tx is list:
                x = _canonical(x, drop_empty, drop_empty_lists)
                if not x and drop_empty_lists:  # an absent list is empty: "events": [] says no more than none
                    continue
            out[k] = x
        return out
    if t is list:
        out_list = [_canonical(x, drop_empty, drop_empty_lists) for x in v]
        while out_list and out_list[-1] == {}:  # a trailing period with no values does not exist
            out_list.pop()
        return out_list
    if t is float and v.is_integer() and -(2**53) < v < 2**53:
        return int(v)
    return v


# Only a null, an empty object (a trailing empty period) or an integral float (orjson prints those
# below 1e16 as 'N.0'; larger ones stay floats anyway) can normalise differently. Null members are
# dropped in the bytes (escapes and empty objects take the walk); integral floats (most records
# have a few, such as 0.0 shares) are rewritten in the bytes: on a debtor of 3 exposures the whole
# of canonical_json costs 0.6 of the walk, a third of it the encoder. False positives (inside
# strings) only cost the walk or the token-by-token rewrite.
_INTEGRAL_FLOAT = re.compile(rb"\.0(?=[,}\]])")  # the '.0' alone: a substitution drops it
_CANON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_DIGITS = frozenset(b"0123456789")
# An empty object (a trailing empty period) found by the regular expression engine: ``b"{}" in raw``
# stops at every '{' of a record (twice the cost on a debtor of 3 exposures).
_EMPTY_OBJECT = re.compile(rb"\{\}")

# An integral float's '.0' that the substitution of _dropped_dot_zeros cannot take: one
# maybe inside a string (the next quote may close one: it is followed by ':', ',', '}', ']' or
# the end), or the end of -0.0 (written 0) or of a token of 16 digits or more (maybe beyond 2**53).
# A quote followed by anything else opens a string (compact JSON puts one of those after every
# string it closes), and no quote lies between it and the '.0', so that '.0' is outside strings.
_UNSAFE_DOT_ZERO = re.compile(rb'\.0[,}\]](?:[^"]*+"(?:[:,}\]]|\Z)|(?<=-0\.0.)|(?<=[0-9]{16}\.0.))')


def _dropped_dot_zeros(raw: bytes) -> bytes:
    """``raw`` without the '.0' before every ',', '}' and ']' (the caller ruled out every other kind).

    One substitution with a constant replacement: the regular expression engine copies the bytes
    between matches without making a match object for each, in one pass (three ``split``/``join``
    passes cost 1.7 times as much on a debtor of 3 exposures, ``bytes.replace`` more).
    """
    return _INTEGRAL_FLOAT.sub(b"", raw)


def _integral_tokens(raw: bytes) -> bytes:
    """``raw`` with every integral float token below 2**53 written as an integer (``-0.0`` as ``0``).

    Tokens are found from their ``.0`` end and walked back over their digits (a regular
    expression anchored on the digits backtracks over every long number). A match inside a
    string is left alone: it has an odd number of quotes before it (the caller ruled out
    backslashes, so no quote is escaped).
    """
    out = []
    done = 0
    counted = quotes = 0  # quotes before ``counted``, counted on from match to match
    for m in _INTEGRAL_FLOAT.finditer(raw):
        dot = m.start()
        start = dot
        while start and raw[start - 1] in _DIGITS:
            start -= 1
        if start and raw[start - 1] == 45:  # '-'
            start -= 1
        if start == dot or not start or raw[start - 1] not in b":[,":
            continue
        quotes += raw.count(b'"', counted, start)
        counted = start
        if quotes & 1:
            continue
        n = int(raw[start:dot])
        if -(2**53) < n < 2**53:
            out += (raw[done:start], b"%d" % n)
            done = dot + 2
    out.append(raw[done:])
    return b"".join(out)


def canonical_json(value: Any, lists_optional: bool = False) -> bytes:
    """The bytes hashed for ``input_sha256``: UTF-8 JSON, keys sorted, no spaces.

    A null field and an absent one mean the same (so does an object whose fields are all null), a trailing
    period with no values is no period, and 52000000.0 is the number 52000000, so all are normalised: the
    same client read from JSON, CSV, Parquet or long tables has one hash. With ``lists_optional`` (a debtor
    record, decided under a policy with scopes: an absent list is empty) an empty list goes as a null does,
    so a debtor without events has one hash with ``"events": []``, without it, and from long tables. A 1.x
    record keeps it: there ``financials`` is required, and its stored input must decide again.
    """
    return _usual(value, lists_optional)


def _usual(value: Any, lists_optional: bool = False) -> bytes:
    """``canonical_json``; without ``lists_optional`` a record whose empty lists stay (a 1.x record's form)."""
    try:  # string keys (a record's): the encoder sorts them faster without OPT_NON_STR_KEYS, same bytes
        raw = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError:
        raw = orjson.dumps(value, option=_CANON_OPTIONS)
    # Null members, and a debtor record's empty lists, found in one search of the bytes and dropped in one pass
    # (a search for several tokens with ``bytes.find`` scans the bytes once per token and once more past each
    # one found: 8 us on a debtor of 3 exposures, the one regular expression 5 us).
    members = [m.span() for m in (_NULL_OR_EMPTY_LIST if lists_optional else _NULL).finditer(raw)]
    if members:
        if b"\\" in raw:  # an escape: quotes cannot be told apart by counting them
            return orjson.dumps(_canonical(value, drop_empty_lists=lists_optional), option=_CANON_OPTIONS)
        raw = _without_members(raw, members)
    if raw.endswith(b".0") or _EMPTY_OBJECT.search(raw) is not None:
        return orjson.dumps(_canonical(value, drop_empty_lists=lists_optional), option=_CANON_OPTIONS)
    if _INTEGRAL_FLOAT.search(raw) is None:
        return raw
    if b"\\" in raw:  # an escape: quotes cannot be told apart by counting them
        return orjson.dumps(_canonical(value, drop_empty_lists=lists_optional), option=_CANON_OPTIONS)
    if _UNSAFE_DOT_ZERO.search(raw) is None:
        return _dropped_dot_zeros(raw)
    return _integral_tokens(raw)


_NULL = re.compile(rb'":null')
_NULL_OR_EMPTY_LIST = re.compile(rb'":(?:null|\[\])')


def legacy_canonical_jsons(value: Any) -> tuple[bytes, ...]:
    """The bytes earlier engines hashed for a record, newest first. ``audit replay`` of a decision recorded then
    accepts its stored hash when it is one of these:

    * up to the second change of 2026-12-05 a debtor record's empty list stayed (``"events":[]``), so a debtor
      without events had one hash with the list and another without it (as long tables give it): the usual
      form, which a 1.x record keeps;
    * up to the first change of 2026-12-05 a member whose object held only nulls stayed as ``{}`` too.
    """
    return (_usual(value), orjson.dumps(_canonical(value, drop_empty=False), option=_CANON_OPTIONS))


def _without_members(raw: bytes, members: list[tuple[int, int]]) -> bytes:
    """``raw`` without its ``"key":null`` (and ``"key":[]``) members found at ``members`` (start, end, in order),
    as the walk drops them (nulls and empty lists inside lists stay).

    The caller ruled out backslashes, so every quote delimits a string: a ``":null`` whose quote has
    an odd number of quotes before it closes a key (inside a string, or opening one, it has an even
    number), and the key opens at the quote before. A member goes with the comma before it, or, the
    first of its object (or after one removed with its comma), with the comma after it. An object
    left empty shows as ``{}``, which the caller gives to the walk.
    """
    out = []
    done = counted = quotes = 0
    for q, end in members:
        quotes += raw.count(b'"', counted, q)
        counted = q
        if not quotes & 1:
            continue  # the quote opens a string that starts with ':null'
        key = raw.rfind(b'"', 0, q)
        if raw[key - 1] == 44 and key - 1 >= done:  # ','
            start = key - 1
        else:
            start = key
            if raw[end:end + 1] == b",":
                end += 1
        out.append(raw[done:start])
        done = end
    out.append(raw[done:])
    return b"".join(out)
