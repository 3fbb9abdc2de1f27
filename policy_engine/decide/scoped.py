"""Deciding a debtor with several exposures: a policy that declares scopes, on the row path.

The record's lists (exposures, their payments, the debtor's events) are read into one dict per
element, checked like any input (type, range, required), bounded by each scope's declared
``max``, ordered by its ``order_by`` and, for a keyed scope, with unique keys: a bad element is
refused with its place named (exit 3), never decided. Each exposure is then graded by its own
floors, the debtor's code runs (its metrics may aggregate those grades; its floors apply back to
every exposure; see :mod:`policy_engine.policy.scopes` for the order), and the record gets one
entry per exposure. The debtor's grade is the worst of its exposures' final grades (and of the
debtor floors, when it has no exposure).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from ..diagnostics import Diagnostic, InputError
from ..policy.compiler import CompiledPolicy
from ..policy.scopes import ScopedPart, ScopeSpec
from ..safetext import has_forbidden, text_problem
from .evaluate import Decider, _jsonable, canonical_json
from .inputs import _check_value, _dig, describe, unwritable_integers

MAX_KEY = 64  # characters of an element key (an exposure id)
GRADE_RULE = "worst of the exposures' final grades (each at least the debtor's floors)"


def read_scopes(policy: CompiledPolicy, record: Any, file: str | None = None
                ) -> tuple[dict[str, Any], list[Diagnostic]]:
    """Every element of every scope under the debtor (children inside their parent element)."""
    part = policy.scoped
    assert part is not None
    problems: list[Diagnostic] = []
    elements: dict[str, Any] = {}
    if isinstance(record, dict):
        for s in part.children(None):
            elements[s.name] = _read_list(part, s, record, s.list_field, policy.grade_ids, problems)
    return elements, [Diagnostic(p.code, p.message, file=file, path=p.path, hint=p.hint) for p in problems]


def _read_list(part: ScopedPart, s: ScopeSpec, container: Mapping[str, Any], where: str,
               grades: tuple[str, ...], problems: list[Diagnostic]) -> list[dict[str, Any]]:
    raw = container.get(s.list_field)
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.append(Diagnostic("wrong-type", f"expected a list of {s.name} elements, found {describe(raw)}",
                                   path=where))
        return []
    if len(raw) > s.max:
        problems.append(Diagnostic("too-large", f"{len(raw)} elements in scope {s.name}; the policy allows at most "
                                   f"{s.max}", path=where, hint=f"scopes.{s.name}.max of the policy"))
        return []
    out: list[dict[str, Any]] = []
    keys: dict[str, int] = {}
    for i, item in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(item, dict):
            problems.append(Diagnostic("wrong-type", f"expected an object, found {describe(item)}", path=at))
            continue
        e = _read_element(part, s, item, at, grades, problems)
        if s.key is not None:
            _check_key(s, item, at, keys, i, problems, e)
        for child in part.children(s.name):
            e["@" + child.name] = _read_list(part, child, item, f"{at}.{child.list_field}", grades, problems)
        out.append(e)
    if s.order_by is not None:
        order = next((spec.name for spec in part.inputs[s.name] if spec.source == s.order_by), None)
        if order is not None and all(e.get(order) is not None for e in out):
            out.sort(key=lambda e: e[order])
    return out


def _read_element(part: ScopedPart, s: ScopeSpec, item: Mapping[str, Any], at: str, grades: tuple[str, ...],
                  problems: list[Diagnostic]) -> dict[str, Any]:
    e: dict[str, Any] = {}
    for spec in part.inputs[s.name]:
        before = len(problems)
        found, v = _dig(item, spec.root, at, problems)
        field = f"{at}.{spec.source}"
        if len(problems) > before or not found or v is None:
            if spec.required and len(problems) == before:
                problems.append(Diagnostic("missing-field", f"required field '{field}' is missing", path=field,
                                           hint=f"input '{spec.name}' of scope {s.name} reads it"))
            e[spec.name] = None
            continue
        value, problem, hint = _check_value(spec, v, grades)
        if problem:
            problems.append(Diagnostic("bad-field", problem, path=field, hint=hint))
        e[spec.name] = value
    return e


def _check_key(s: ScopeSpec, item: Mapping[str, Any], at: str, keys: dict[str, int], i: int,
               problems: list[Diagnostic], e: dict[str, Any]) -> None:
    """A keyed element names itself: a short text, unique under its parent."""
    assert s.key is not None
    key = item.get(s.key)
    path = f"{at}.{s.key}"
    if key is None:
        problems.append(Diagnostic("missing-field", f"required key '{path}' is missing", path=path,
                                   hint=f"every {s.name} names itself with a unique {s.key}"))
    elif type(key) is not str or not key or len(key) > MAX_KEY:
        problems.append(Diagnostic("bad-field", f"{s.key} must be a non-empty string of at most {MAX_KEY} "
                                   f"characters, found {describe(key)}", path=path))
    elif has_forbidden(key):
        problems.append(Diagnostic("bad-field", f"{text_problem(key)} (text holds no control characters)", path=path))
    elif key in keys:
        problems.append(Diagnostic("duplicate-key", f"{s.key} '{key}' is also {s.name} {keys[key]}", path=path,
                                   hint=f"each {s.name} of a record has its own {s.key}"))
    else:
        keys[key] = i
    e["@key"] = key if type(key) is str else None


class ScopedDecider(Decider):
    """A :class:`Decider` for a policy with scopes (``Decider(policy)`` builds one for such a policy)."""

    def decide(self, record: Any, as_of: str | _dt.date | None = None, trace: bool = False,
               file: str | None = None) -> dict[str, Any]:
        elements, problems = read_scopes(self.policy, record, file)
        try:
            cid, day, inputs = self.read(record, as_of, file)
        except InputError as e:
            raise InputError([*e.diagnostics, *problems]) from None
        if problems:
            raise InputError(problems)
        try:
            input_hash = hashlib.sha256(canonical_json(record)).hexdigest()
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise InputError(unwritable_integers(record, file) or [
                Diagnostic("bad-field", f"the record cannot be written as JSON: {exc}", file=file)]) from None
        return self.decide_elements(cid, day, inputs, elements, input_hash, trace)

    def decide_values(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], input_hash: str,
                      trace: bool = False) -> dict[str, Any]:
        raise TypeError("a policy with scopes is decided from the whole record: ScopedDecider.decide")

    def decide_elements(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], elements: dict[str, Any],
                        input_hash: str, trace: bool = False) -> dict[str, Any]:
        p = self.policy
        part = p.scoped
        assert part is not None
        segment = inputs[self._segment_index] if self._segment_index is not None else None
        params = p.params_for(segment)
        graded = elements.get(part.graded, []) if part.graded else []
        for e in graded:
            assert part.own is not None
            hits = part.own(inputs, params, day, elements, e)
            rank = max((f.rank for f, hit in zip(part.floors, hits, strict=True) if hit is True), default=0)
            e["@own_rank"], e["@rank"], e["@grade"], e["@floors"] = rank, rank, p.scale[rank].id, hits
        results = p.row_function(inputs, params, day, elements)
        record = self.build_record(cid, day, inputs, results, input_hash, trace)
        floor_rank = elements.get("@floor_rank", 0)
        debtor_floors = list(zip(p.floors, results[5], strict=True))
        env = dict(zip(self._names, (*inputs, *params, *results[0]), strict=True))
        exposures = [self._exposure(part, e, debtor_floors, floor_rank, env, record["undetermined"]) for e in graded]
        cls = record["classification"]
        cls["grade_of"] = GRADE_RULE
        g_rank = results[6]
        if g_rank > floor_rank:  # an exposure's own floor made the debtor's grade
            worst = next(x for x, e in zip(exposures, graded, strict=True) if e["@rank"] == g_rank)
            cls["decided_by"] = worst["decided_by"]
            cls["decided_by_exposure"] = worst["exposure_id"]
        record["exposures"] = exposures
        return record

    def _exposure(self, part: ScopedPart, e: dict[str, Any], debtor_floors: list[tuple[Any, Any]], floor_rank: int,
                  env: Mapping[str, Any], undetermined: list[dict[str, Any]]) -> dict[str, Any]:
        """One exposure's entry: its final grade, the rule that decided it, its floors and metrics."""
        p = self.policy
        rank = e["@rank"]
        fired = [{"id": f.id, "floor": f.floor, "source": f.source, "scope": f.scope}
                 for f, hit in zip(part.floors, e["@floors"], strict=True) if hit is True]
        fired += [{"id": f.id, "floor": f.floor, "source": f.source, "scope": "debtor"}
                  for f, hit in debtor_floors if hit is True]
        if rank == 0 and not any(f["floor"] == p.scale[0].id for f in fired):
            decided_by = p.base_decider
        else:
            decided_by = next(f["id"] for f in fired if p.grade_ids.index(f["floor"]) == rank)
        local = {**env, **{k: v for k, v in e.items() if not k.startswith("@")}}
        for f, hit in zip(part.floors, e["@floors"], strict=True):
            if hit is None:
                entry = self._undetermined("classification", f.id, [n for n in f.expr.refs if n in local], local)
                entry["exposure"] = e["@key"]
                undetermined.append(entry)
        grade = p.scale[rank]
        return {
            "exposure_id": e["@key"], "grade": grade.id, "label": self._labels[rank], "decided_by": decided_by,
            "own_grade": p.scale[e["@own_rank"]].id, "nonperforming": grade.nonperforming, "floors": fired,
            "metrics": {m.name: _jsonable(e.get(m.name)) for m in part.metrics},
        }
