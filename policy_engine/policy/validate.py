"""Stage 2, validate: the document against its JSON Schema, every error located.

jsonschema reports *where in the data* an error is; the loader's position map
turns that into file:line:column. Unknown keys are reported one by one at
their own line with the nearest known key, because a typo is the commonest
mistake a policy author makes.

A schema error does not stop the semantic checks: :class:`SchemaValidPart` says which
entries of a policy (one input, one warning, one scale grade) or which whole sections the
errors touch, so the compiler's passes skip exactly those and check everything else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..diagnostics import DiagnosticSink, did_you_mean
from ..frozen import Frozen
from .loader import Document, PathKey, format_path
from .schemas import validator


def _known_keys(schema: dict[str, Any]) -> list[str]:
    return list(schema.get("properties", {}))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"number {value}"
    if isinstance(value, str):
        return f"string '{value[:40]}'"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


def _unknown_key_hint(key: str, known: list[str]) -> str:
    """What an unknown key most likely is: a key and value joined by a full-width colon, the rest of an
    expression cut at a comma, or a misspelt key."""
    wide = next((ch for ch in key if ch in "：﹕"), None)
    if wide is not None:  # flow style: 'scope：exposure' is one key to YAML
        name, _, value = key.partition(wide)
        return (f"'{key}' has a full-width colon (U+{ord(wide):04X}), which YAML reads as text; write "
                f"'{name.strip()}: {value.strip()}' with the ASCII colon and a space")
    if known and set(known) <= {"zh", "en"}:  # a text in two languages: a comma in a flow mapping ends it
        return (f"'{key}' looks like the rest of a text cut at a comma (in {{zh: ..., en: ...}} a comma ends a "
                "value): quote the whole text, or write it on lines of its own")
    if any(ch in key for ch in "()'\"<>=+*/"):
        return "this looks like the rest of an expression cut at a comma: quote the whole expression"
    if key == "scope" and "for_exposures" in known:  # a warning's or an action's: they are the debtor's
        return ("a warning or an action is the debtor's: test the exposures inside its condition, "
                "any_of(exposure, ...), and name them with for_exposures: <a condition of each exposure>")
    return did_you_mean(key, known) or f"allowed keys: {', '.join(known)}"


def _report_unknown_keys(doc: Document, err: Any, path: PathKey, sink: DiagnosticSink) -> list[PathKey]:
    """Each unknown key at its own line, with the key it most likely is, or where it belongs."""
    known = _known_keys(err.schema)
    extra = [k for k in err.instance if k not in known]
    for key in extra:
        line, col = doc.locate((*path, key))
        hint = _unknown_key_hint(key, known)
        if hint.startswith("allowed keys") or _under_a_child(key, err.schema, err.instance):
            hint = _indent_hint(doc, key, path, err.schema, err.instance) or hint
        sink.add("unknown-key", f"unknown key '{key}' in {format_path(path)}",
                 line=line, column=col, path=format_path((*path, key)), hint=hint)
    return [(*path, key) for key in extra]


def _under_a_child(key: str, schema: Mapping[str, Any], instance: Mapping[str, Any]) -> list[str]:
    """The keys of ``instance`` whose schema has ``key`` as a key of its own (``decided_by_tie`` of
    ``classification``), in the schema's order."""
    props = schema.get("properties") or {}
    return [name for name, sub in props.items()
            if name in instance and isinstance(sub, dict) and key in (sub.get("properties") or {})]


def _indent_hint(doc: Document, key: str, path: PathKey, schema: Mapping[str, Any], instance: Mapping[str, Any]
                 ) -> str | None:
    """A known key one level too far left, the commonest slip of indentation in YAML that still parses: it is a key
    of a mapping written beside it."""
    owners = _under_a_child(key, schema, instance)
    if not owners:
        return None
    line = doc.locate((*path, owners[0]))[0]
    return (f"'{key}' is a key of {owners[0]}" + (f" (line {line})" if line else "")
            + f": indent it under {owners[0]}:")


def _entry_key_hint(doc: Document, path: PathKey, schema: Any) -> str | None:
    """``informational: true`` one level too far left under ``metrics:`` reads as a metric named informational: the
    name is a key of each entry, so it belongs to the entry above it."""
    if not path or not isinstance(path[-1], str) or not isinstance(schema, dict) or \
            path[-1] not in (schema.get("properties") or {}):
        return None
    parent: Any = doc.data
    for part in path[:-1]:
        parent = parent[part] if isinstance(parent, dict | list) else None
    names = list(parent) if isinstance(parent, dict) else []
    before = names[names.index(path[-1]) - 1] if path[-1] in names and names.index(path[-1]) > 0 else None
    where = format_path(path[:-1])
    if before is None:
        return f"'{path[-1]}' is a key of each entry of {where}: indent it under an entry"
    return f"'{path[-1]}' is a key of each entry of {where}: indent it under '{before}', the entry above it"


def schema_errors(doc: Document, schema_name: str, sink: DiagnosticSink) -> list[PathKey]:
    """Add one diagnostic per schema violation in ``doc`` to ``sink``; return the place each one blames.

    The place is the value at fault: the mapping a required key is missing from, an unknown or
    badly named key itself, or the value of the wrong type or form (see :func:`schema_valid_part`).
    """
    blamed: list[PathKey] = []
    for err in validator(schema_name).iter_errors(doc.data):
        blamed.extend(_report(doc, err, sink))
    return blamed


def _report(doc: Document, err: Any, sink: DiagnosticSink) -> list[PathKey]:
    path = tuple(err.absolute_path)
    kw = err.validator
    if kw == "additionalProperties" and isinstance(err.instance, dict):
        return _report_unknown_keys(doc, err, path, sink)
    if "propertyNames" in err.absolute_schema_path and isinstance(err.instance, str):
        # jsonschema places a bad key at the mapping that holds it; people look for the key.
        key_path = (*path, err.instance)
        line, col = doc.locate(key_path)
        sink.add("bad-name", f"name {err.instance!r} in {format_path(path)} is not an identifier",
                 line=line, column=col, path=format_path(key_path),
                 hint=err.schema.get("description") if isinstance(err.schema, dict) else None)
        return [key_path]
    line, col = doc.locate(path)
    where = format_path(path)
    if kw == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        if isinstance(err.instance, dict) and any(isinstance(k, str) and k.startswith((f"{missing}：", f"{missing}﹕"))
                                                  for k in err.instance):
            return [path]  # written with a full-width colon: the unknown key says so, at its place
        sink.add("missing-key", f"'{missing}' is required in {where}", line=line, column=col, path=where,
                 hint=err.schema.get("properties", {}).get(missing, {}).get("description"))
        return [path]
    if kw in ("type", "enum", "const"):
        exp, hint = _expected(kw, err.validator_value, err.instance, path)
        if path and path[-1] in GRADE_FIELDS and isinstance(err.instance, int | float):
            hint = _grade_hint(doc)  # 'floor: 2': quoting it makes '2', which is no grade either
        elif kw == "type" and hint is None:
            hint = _entry_key_hint(doc, path, err.schema)
        sink.add("wrong-type" if kw == "type" else "bad-value",
                 f"expected {exp}, found {_describe(err.instance)}", line=line, column=col, path=where, hint=hint)
        return [path]
    if kw == "oneOf" and all("required" in s for s in err.validator_value):
        options = [" + ".join(s["required"]) for s in err.validator_value]
        sink.add("one-of", f"{where} needs exactly one of: {', '.join(options)}", line=line, column=col,
                 path=where)
        return [path]
    if kw == "pattern":
        message, hint = _unmatched(doc, err.instance, err.validator_value, path)
        sink.add("bad-value", message, line=line, column=col, path=where,
                 hint=hint or err.schema.get("description") or f"pattern {err.validator_value}")
        return [path]
    sink.add("schema", err.message, line=line, column=col, path=where,
             hint=err.schema.get("description") if isinstance(err.schema, dict) else None)
    return [path]


ID_PATTERN = "^[a-z][a-z0-9_]{0,62}$"
_ID = re.compile(ID_PATTERN)


def _unmatched(doc: Document, value: Any, pattern: str, path: PathKey = ()) -> tuple[str, str | None]:
    """A value not of the form its place takes, in words; for an id, the hint names the id it most likely means:
    a grade written as its label (``floor: 关注``) or any id in capitals."""
    if pattern != ID_PATTERN or not isinstance(value, str):
        return f"{_describe(value)} does not match the expected form", None
    message = (f"{_describe(value)} is not an id: lower-case letters, digits and '_', starting with a letter, "
               "at most 63 characters")
    grade, label = _grade_meant(doc.data, value)
    if grade is not None:
        return message, f"write '{grade}' for the grade labelled '{label}'" if label else f"write '{grade}'"
    lowered = _plain(value)
    if lowered != value and _ID.match(lowered):
        return message, f"write '{lowered}'"
    return message, (_grade_hint(doc) if path and path[-1] in GRADE_FIELDS else None)


# The keys whose value is a grade of the scale (a rule's floor; a test's expected grades).
GRADE_FIELDS = frozenset({"floor", "grade", "own_grade", "scorecard_grade"})


def _scale_of(data: Any) -> list[dict[str, Any]]:
    """The grades of a document's classification.scale that name an id (none: not a policy, or a broken scale)."""
    section = data.get("classification") if isinstance(data, dict) else None
    scale = section.get("scale") if isinstance(section, dict) else None
    return [g for g in scale if isinstance(g, dict) and isinstance(g.get("id"), str)] if isinstance(scale, list) else []


def _grade_hint(doc: Document) -> str:
    """What a grade is written as, with the grades of the document's scale when it has one (a policy's)."""
    ids = [g["id"] for g in _scale_of(doc.data)]
    return ("a grade is named by its id in classification.scale: " + ", ".join(ids) if ids else
            "a grade is named by its id in the policy's classification.scale (a word such as 'substandard'), "
            "not a number")


def _grade_meant(data: Any, value: str) -> tuple[str | None, str | None]:
    """The scale grade whose id or label ``value`` is, compared without case or spacing, and the label it is."""
    wanted = _plain(value)
    for g in _scale_of(data):
        if _plain(g["id"]) == wanted:
            return g["id"], None
        label = next((n for n in (g.get("zh"), g.get("en")) if isinstance(n, str) and _plain(n) == wanted), None)
        if label is not None:
            return g["id"], label
    return None, None


def _plain(name: str) -> str:
    return name.strip().casefold().replace(" ", "_").replace("-", "_")


def _expected(kw: str, expected: Any, found: Any, path: PathKey) -> tuple[str, str | None]:
    """What a type or enum check expected, in words, and the hint for what was found instead."""
    if kw == "enum":
        return "one of " + ", ".join(map(str, expected)), did_you_mean(str(found), [str(e) for e in expected])
    exp = expected if isinstance(expected, str) else " or ".join(expected)
    if isinstance(found, str):
        return exp, "numbers and booleans are written without quotes"
    if expected == "string" and isinstance(found, int | float) and not isinstance(found, bool):
        # YAML reads 1.3 (or 20240101) as a number: the author meant text
        return exp, ("a version is three numbers in quotes, e.g. '1.3.0'" if path and path[-1] == "version"
                     else f"write it in quotes ('{found}'): YAML reads it as a number")
    return exp, None


# The sections whose entries the compiler's passes check one by one (each entry a name or an
# index), longest first so an entry of a nested list is found before its enclosing section.
ENTRY_SECTIONS: tuple[PathKey, ...] = (
    ("scorecard", "factors"), ("scorecard", "grades"), ("classification", "scale"), ("classification", "rules"),
    ("inputs",), ("parameters",), ("metrics",), ("key_figures",), ("warnings",), ("warning_categories",),
    ("action_types",), ("actions",), ("imports",), ("scopes",),
)
# Sections checked as one piece: an error anywhere inside leaves the whole section out.
WHOLE_SECTIONS: tuple[PathKey, ...] = (("segments",),)
# Sections the schema requires: missing, they are left out (an error), not empty (a policy without inputs).
REQUIRED_SECTIONS: tuple[str, ...] = ("inputs", "classification")


class SchemaValidPart(Frozen):
    """What the schema errors of a policy leave out of the semantic checks, and nothing more.

    ``skipped`` holds, per section, the keys (mappings) or indexes (lists) of its invalid entries;
    ``broken`` the sections left out whole (the wrong shape, or required and missing).
    """

    skipped: Mapping[PathKey, frozenset[str | int]]
    broken: frozenset[PathKey]

    @classmethod
    def whole(cls) -> SchemaValidPart:
        """A document the schema accepts: nothing is left out."""
        return cls({}, frozenset())

    @classmethod
    def of(cls, data: Mapping[str, Any], blamed: Iterable[PathKey]) -> SchemaValidPart:
        """The part of ``data`` the places blamed by schema errors (:func:`schema_errors`) leave."""
        skipped: dict[PathKey, set[str | int]] = {}
        broken = {(name,) for name in REQUIRED_SECTIONS if name not in data}
        for path in blamed:
            section = next((s for s in ENTRY_SECTIONS if path[:len(s)] == s), None)
            if section is not None:
                if len(path) > len(section):
                    skipped.setdefault(section, set()).add(path[len(section)])
                else:
                    broken.add(section)
            elif any(path[:len(s)] == s for s in WHOLE_SECTIONS):
                broken.add(path[:1])
            elif path and any(s[:len(path)] == path for s in ENTRY_SECTIONS):
                broken.add(path)  # scorecard or classification without its lists, or not a mapping
            # else: a key no semantic check reads (id, version, an unknown top-level key)
        return cls({s: frozenset(k) for s, k in skipped.items()}, frozenset(broken))

    def is_broken(self, section: PathKey) -> bool:
        """Whether ``section`` (or one that holds it) is left out whole."""
        return any(section[:len(b)] == b for b in self.broken)

    def _container(self, data: Mapping[str, Any], section: PathKey) -> Any:
        if self.is_broken(section):
            return None
        value: Any = data
        for key in section:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    def entries(self, data: Mapping[str, Any], section: PathKey) -> list[tuple[Any, Any]]:
        """The schema-valid entries of ``section`` in ``data`` as (name or index, entry), in order."""
        value = self._container(data, section)
        left_out = self.skipped.get(section, frozenset())
        if isinstance(value, dict):
            return [(k, v) for k, v in value.items() if k not in left_out]
        if isinstance(value, list):
            return [(i, v) for i, v in enumerate(value) if i not in left_out]
        return []

    def skipped_names(self, data: Mapping[str, Any], section: PathKey) -> list[str]:
        """What the invalid entries of ``section`` declare: the keys of a mapping, the ``id`` of list entries.

        Those names still count as defined, so one schema error does not cascade into an
        unknown name wherever the entry is used.
        """
        value = self._container(data, section)
        left_out = self.skipped.get(section, frozenset())
        if isinstance(value, dict):
            return [k for k in value if k in left_out and isinstance(k, str)]
        if isinstance(value, list):
            return [v["id"] for i, v in enumerate(value)
                    if i in left_out and isinstance(v, dict) and isinstance(v.get("id"), str)]
        return []

    def declared(self, data: Mapping[str, Any], section: PathKey) -> list[str]:
        """Every name or id ``section`` declares, valid entry or not, in order (what a reference may name)."""
        value = self._container(data, section)
        if isinstance(value, dict):
            return [k for k in value if isinstance(k, str)]
        if isinstance(value, list):
            return [v["id"] for v in value if isinstance(v, dict) and isinstance(v.get("id"), str)]
        return []

    def unnamed(self, data: Mapping[str, Any], section: PathKey) -> bool:
        """Whether the section declares names no check can read: it is broken, or an invalid entry has no id."""
        if self.is_broken(section):
            return True
        value = self._container(data, section)
        left_out = self.skipped.get(section, frozenset())
        return isinstance(value, list) and any(
            i in left_out and not (isinstance(v, dict) and isinstance(v.get("id"), str)) for i, v in enumerate(value))
