"""A policy's data contract: the JSON Schema of the client record it reads, generated from its inputs.

The schema is built over the inputs' ``from`` *paths*, never over a sample record:
``loan.balance`` makes an object ``loan`` with a property ``balance``;
``financials[*].net_income`` makes a list of objects with a property ``net_income``.
A path may cross several lists (``debtors[*].exposures[*].balance``), so nested
objects and lists of objects come out of the same walk.

The schema says what the engine checks, no more and no less: the type of each
value, its range, its allowed values, which fields are required (a required
input makes every object on its path required, and its value non-null), the
engine's own bounds (string length, number of periods), and, in the
descriptions, the ordering rules of a series and the as-of rule of a date.
Fields the policy does not read are allowed, as the engine ignores them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..policy.compiler import CompiledPolicy, InputSpec
from ..policy.scopes import ScopeSpec
from .evaluate import MAX_CLIENT_ID
from .inputs import MAX_PERIODS, MAX_STRING

DRAFT = "https://json-schema.org/draft/2020-12/schema"
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class _Node:
    """One place in the record: an object (properties), a list of objects (items), or a value (inputs)."""

    def __init__(self) -> None:
        self.properties: dict[str, _Node] = {}
        self.items: _Node | None = None  # this place is a list; each element is an object
        self.values: list[InputSpec] = []  # the inputs that read this place as one value
        self.required: set[str] = set()
        self.ordered_by: list[InputSpec] = []  # list places: the ascending inputs that order its elements
        self.scope: ScopeSpec | None = None  # list places of a policy with scopes: the scope they hold


def steps(source: str) -> list[tuple[str, bool]]:
    """``a.b[*].c`` -> [('a', False), ('b', True), ('c', False)]: each key, and whether it holds a list."""
    out = []
    for part in source.split("."):
        out.append((part[:-3], True) if part.endswith("[*]") else (part, False))
    return out


def _scoped_inputs(policy: CompiledPolicy) -> list[InputSpec]:
    """A scope's inputs read paths inside its elements: here at their place in the whole record."""
    if policy.scoped is None:
        return []
    out = []
    places = {spec.name: f"{s.source}.{spec.source}" for s in policy.scoped.scopes
              for spec in policy.scoped.inputs[s.name]}
    for s in policy.scoped.scopes:
        for spec in policy.scoped.inputs[s.name]:
            values = {f: getattr(spec, f) for f in spec._fields}
            bound = places.get(spec.not_before) if spec.not_before else None  # its field, not its input's name
            out.append(InputSpec(**{**values, "source": places[spec.name], "not_before": bound}))
    return out


def _mark_scopes(policy: CompiledPolicy, root: _Node) -> None:
    """Each scope's list place knows its scope: its bound, its key, its order."""
    if policy.scoped is None:
        return
    for s in policy.scoped.scopes:
        node = root
        for key, is_list in steps(s.source):
            above, node = node, node.properties.setdefault(key, _Node())
            if is_list:
                if node.items is None:
                    node.items = _Node()
                if key == s.list_field and node is not None and steps(s.source)[-1][0] == key:
                    node.scope = s
                    if s.min:  # a list that must hold elements must be there
                        above.required.add(key)
                node = node.items


def _tree(policy: CompiledPolicy) -> _Node:
    root = _Node()
    _mark_scopes(policy, root)
    scoped = _scoped_inputs(policy)
    for spec in (*policy.inputs, *scoped):
        node = root
        path = steps(spec.source)
        lists: list[_Node] = []  # list places on the path, outermost first
        # A required scalar input needs every object on its path; a required series needs its list
        # (a period without the value is allowed: the engine reads it as null, it is not an error).
        # A scope's input needs its field in each element, not the scope's lists (absent: no elements).
        in_scope = spec in scoped
        last_list = max((i for i, (_, is_list) in enumerate(path) if is_list), default=-1)
        chain_required = spec.required and not in_scope
        for i, (key, is_list) in enumerate(path):
            if chain_required:
                node.required.add(key)
            child = node.properties.setdefault(key, _Node())
            if is_list:
                if child.items is None:
                    child.items = _Node()
                lists.append(child)
                node = child.items
                chain_required = in_scope and spec.required and i == last_list
            else:
                node = child
            if i == len(path) - 1:
                node.values.append(spec)
        if spec.ascending and lists:
            lists[-1].ordered_by.append(spec)
    return root


def _nullable(schema: dict[str, Any], required: bool) -> dict[str, Any]:
    """An optional place may be absent or null: the engine reads both as no value."""
    if required:
        return schema
    if "enum" in schema:
        schema["enum"] = [*schema["enum"], None]
    schema["type"] = [schema["type"], "null"]
    return schema


def _value_schema(spec: InputSpec, grades: tuple[str, ...], in_list: bool) -> dict[str, Any]:
    """One input's value: type, range, allowed values, description (in a list: null is a missing value)."""
    s: dict[str, Any]
    if spec.type in ("number", "integer"):
        s = {"type": spec.type}
        if spec.min is not None:
            s["minimum"] = spec.min
        if spec.max is not None:
            s["maximum"] = spec.max
    elif spec.type == "boolean":
        s = {"type": "boolean"}
    elif spec.type == "date":
        s = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
    elif spec.type == "grade":
        s = {"type": "string", "enum": list(grades)}
    elif spec.enum:
        s = {"type": "string", "enum": list(spec.enum)}
    else:
        s = {"type": "string", "maxLength": MAX_STRING}
    words = [spec.description.strip() if spec.description else f"Read by the policy as '{spec.name}'."]
    if spec.unit:
        words.append(f"Unit: {spec.unit}.")
    if spec.not_after_as_of:
        words.append("Not after the record's as-of date (a later value was not known on that day).")
    if spec.not_before:
        words.append(f"Not before {spec.not_before} (of this element, or of the one it belongs to)" +
                     ("." if spec.required else "; null when there is none, not a stand-in such as 0001-01-01."))
    if spec.description:
        words.append(f"Policy input '{spec.name}'.")
    s["description"] = " ".join(words)
    if spec.label:  # an editor shows it as the field's title
        s["title"] = f"{spec.label['zh']} / {spec.label['en']}"
    return _nullable(s, spec.required and not in_list)


def _merge(schemas: list[dict[str, Any]]) -> dict[str, Any]:
    """Several inputs read one place: the value must satisfy each of them."""
    unique = list({json.dumps(s, sort_keys=True): s for s in schemas}.values())
    return unique[0] if len(unique) == 1 else {"allOf": unique}


def _schema(node: _Node, grades: tuple[str, ...], in_list: bool, required: bool) -> dict[str, Any]:
    if node.values:
        return _merge([_value_schema(v, grades, in_list) for v in node.values])
    if node.items is not None and node.scope is not None:
        return _scope_schema(node, grades)
    if node.items is not None:
        item = _schema(node.items, grades, True, True)  # a period that is not an object is an error
        item["description"] = "One period. " + item["description"]
        words = [f"A list of periods (at most {MAX_PERIODS}). A period with no value at all is no period: trailing "
                 "ones are ignored, one before a filled period is an error."]
        for spec in node.ordered_by:
            field = ".".join(spec.item) or spec.source
            order = "oldest first, " if spec.type == "date" else ""
            words.append(f"The periods are in order of {field}: {order}each strictly after the one before, "
                         f"each {field} once (input '{spec.name}').")
        return _nullable({"type": "array", "maxItems": MAX_PERIODS, "description": " ".join(words), "items": item},
                         required)
    names = list(dict.fromkeys(n for child in node.properties.values() for n in _readers(child)))
    out: dict[str, Any] = {
        "type": "object",
        "description": "Fields read by the inputs " + ", ".join(f"'{n}'" for n in names) + ".",
    }
    if node.required:
        out["required"] = [k for k in node.properties if k in node.required]
    out["properties"] = {k: _schema(child, grades, in_list, k in node.required)
                         for k, child in node.properties.items()}
    return _nullable(out, required)


def _scope_schema(node: _Node, grades: tuple[str, ...]) -> dict[str, Any]:
    """The list of a scope's elements: bounded by its max, each element keyed and checked like a record."""
    s = node.scope
    assert s is not None and node.items is not None
    item = _schema(node.items, grades, False, True)
    words = [f"The elements of scope '{s.name}' (at most {s.max}); absent or null: none." if not s.min else
             f"The elements of scope '{s.name}' (at least {s.min}, at most {s.max})."]
    if s.key is not None:
        item.setdefault("properties", {}).setdefault(s.key, {"type": "string"})
        item["properties"][s.key] = {**item["properties"][s.key], "type": "string", "minLength": 1, "maxLength": 64}
        item["required"] = list(dict.fromkeys([s.key, *item.get("required", [])]))
        words.append(f"Each is identified by its {s.key}, unique in the list.")
    if s.order_by is not None:
        words.append(f"Read in order of {s.order_by} (the record's order does not matter).")
    if s.unique:
        words.append(f"No two share their {' and '.join(s.unique)} (a repeat is refused).")
    if s.min:
        return {"type": "array", "minItems": s.min, "maxItems": s.max, "description": " ".join(words), "items": item}
    return {"type": ["array", "null"], "maxItems": s.max, "description": " ".join(words), "items": item}


def _readers(node: _Node) -> list[str]:
    """The inputs reading a place under ``node``; a child scope's list is left out (its elements name their own)."""
    found = [v.name for v in node.values]
    for child in node.properties.values():
        found += _readers(child)
    if node.items is not None and node.scope is None:
        found += _readers(node.items)
    return found


def record_schema(policy: CompiledPolicy) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the client record ``policy`` reads."""
    tree = _tree(policy)
    body = _schema(tree, policy.grade_ids, False, True)
    properties: dict[str, Any] = {
        "client_id": {"type": "string", "minLength": 1, "maxLength": MAX_CLIENT_ID,
                      "description": "Stable client identifier (every record has one)."},
        "as_of": {"type": ["string", "null"], "format": "date", "pattern": DATE_PATTERN,
                  "description": "Date the data describes; the decision date unless one is given to the command."},
    }
    for key, value in body["properties"].items():
        properties[key] = value  # an input may read client_id or as_of itself: its own rules then apply
    required = ["client_id", *(k for k in body.get("required", []) if k != "client_id")]
    return {
        "$schema": DRAFT,
        "$id": f"https://policy-engine.local/policies/{policy.id}/{policy.version}/client.schema.json",
        "title": f"Client record read by policy {policy.id} {policy.version}",
        "description": (f"Generated from the inputs of policy {policy.id} {policy.version} "
                        "(policy-engine schema client -p ID@VERSION). The engine checks what this schema says: "
                        "types, ranges, allowed values and required fields of what the policy reads; other fields "
                        "are allowed and ignored."),
        "type": "object",
        "required": required,
        "properties": properties,
    }


def dumps(schema: Mapping[str, Any]) -> str:
    """The schema as the shipped files are written: two-space indent, UTF-8, a final newline."""
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
