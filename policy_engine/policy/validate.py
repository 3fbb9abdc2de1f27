"""Stage 2, validate: the document against its JSON Schema, every error located.

jsonschema reports *where in the data* an error is; the loader's position map
turns that into file:line:column. Unknown keys are reported one by one at
their own line with the nearest known key, because a typo is the commonest
mistake a policy author makes.
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import DiagnosticSink, did_you_mean
from .loader import Document, format_path
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


def schema_errors(doc: Document, schema_name: str, sink: DiagnosticSink) -> None:
    """Add one diagnostic per schema violation in ``doc`` to ``sink``."""
    for err in validator(schema_name).iter_errors(doc.data):
        _report(doc, err, sink)


def _report(doc: Document, err: Any, sink: DiagnosticSink) -> None:
    path = tuple(err.absolute_path)
    kw = err.validator
    if kw == "additionalProperties" and isinstance(err.instance, dict):
        known = _known_keys(err.schema)
        extra = [k for k in err.instance if k not in known]
        for key in extra:
            line, col = doc.locate((*path, key))
            if any(ch in key for ch in "()'\"<>=+*/"):
                hint = "this looks like the rest of an expression cut at a comma: quote the whole expression"
            else:
                hint = did_you_mean(key, known) or f"allowed keys: {', '.join(known)}"
            sink.add("unknown-key", f"unknown key '{key}' in {format_path(path)}",
                     line=line, column=col, path=format_path((*path, key)), hint=hint)
        return
    if "propertyNames" in err.absolute_schema_path and isinstance(err.instance, str):
        # jsonschema places a bad key at the mapping that holds it; people look for the key.
        key_path = (*path, err.instance)
        line, col = doc.locate(key_path)
        sink.add("bad-name", f"name {err.instance!r} in {format_path(path)} is not an identifier",
                 line=line, column=col, path=format_path(key_path),
                 hint=err.schema.get("description") if isinstance(err.schema, dict) else None)
        return
    line, col = doc.locate(path)
    where = format_path(path)
    if kw == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        sink.add("missing-key", f"'{missing}' is required in {where}", line=line, column=col, path=where,
                 hint=err.schema.get("properties", {}).get(missing, {}).get("description"))
        return
    if kw in ("type", "enum", "const"):
        expected = err.validator_value
        if kw == "enum":
            exp = "one of " + ", ".join(map(str, expected))
            hint = did_you_mean(str(err.instance), [str(e) for e in expected])
        else:
            exp = expected if isinstance(expected, str) else " or ".join(expected)
            hint = "numbers and booleans are written without quotes" if isinstance(err.instance, str) else None
        sink.add("wrong-type" if kw == "type" else "bad-value",
                 f"expected {exp}, found {_describe(err.instance)}", line=line, column=col, path=where, hint=hint)
        return
    if kw == "oneOf" and all("required" in s for s in err.validator_value):
        options = [" + ".join(s["required"]) for s in err.validator_value]
        sink.add("one-of", f"{where} needs exactly one of: {', '.join(options)}", line=line, column=col,
                 path=where)
        return
    if kw == "pattern":
        sink.add("bad-value", f"{_describe(err.instance)} does not match the expected form",
                 line=line, column=col, path=where,
                 hint=err.schema.get("description") or f"pattern {err.validator_value}")
        return
    sink.add("schema", err.message, line=line, column=col, path=where,
             hint=err.schema.get("description") if isinstance(err.schema, dict) else None)
