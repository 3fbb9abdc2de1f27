"""Semantic diff of two policy versions: what changed, rule by rule, in policy terms.

Not a text diff: a changed threshold reads ``warning coverage_low: threshold 1.2 -> 1.0``, a
parameter ``parameter current_ratio_floor[manufacturing]: 1.2 -> 1.15``, an action that gained a
condition shows the old and the new condition. Either side is a file, ``id@version`` from the
registry, or ``REV:path`` from git.
"""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .compiler import CompiledPolicy, compile_document
from .diagnostics import Diagnostic, UsageError
from .loader import decode_policy_bytes, load_yaml_file, load_yaml_text


@dataclass(frozen=True)
class Change:
    """One change in policy terms: ``detail`` for people, ``field``/``old``/``new`` as values for machines.

    An added or removed rule carries its definition (condition, severity, message, floor, ...) in
    ``new`` or ``old``; a moved threshold its old and new numbers, with the conditions in ``when``.
    """

    section: str  # metadata, input, parameter, metric, factor, score-band, scale, floor, warning, action
    rule: str
    kind: str  # added, removed, changed
    detail: str
    field: str | None = None
    old: Any = None
    new: Any = None
    when: dict[str, str] | None = None  # a threshold change: the old and new condition in full

    def to_dict(self) -> dict[str, Any]:
        out = {"section": self.section, "rule": self.rule, "kind": self.kind, "detail": self.detail,
               "field": self.field, "old": _plain(self.old), "new": _plain(self.new)}
        if self.when is not None:
            out["when"] = self.when
        return out

    def text(self) -> str:
        return f"{self.section} {self.rule}: {self.detail}" if self.rule else f"{self.section}: {self.detail}"


@dataclass(frozen=True)
class Delta:
    """A changed part of a rule (its detail, the field and the old and new values)."""

    detail: str
    field: str | None = None
    old: Any = None
    new: Any = None
    when: dict[str, str] | None = None


def show(value: Any) -> str:
    """A value as a reviewer reads it (YAML-like), not as Python's repr: none, true, 2024-12-31, [a, b]."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {show(v)}" for k, v in value.items()) + "}"
    if isinstance(value, tuple | list):
        return "[" + ", ".join(show(v) for v in value) + "]"
    return str(value)


def _plain(value: Any) -> Any:
    """JSON values: mappings as objects, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def resolve(ref: str, registry_root: Path) -> CompiledPolicy:
    """A policy from a file path, ``id@version`` in the registry, or ``REV:path`` in git."""
    path = Path(ref)
    if path.is_file():
        return compile_document(load_yaml_file(path))  # size and encoding checked, as for validate
    if "@" in ref and ":" not in ref:
        from .registry import Registry

        pid, _, version = ref.partition("@")
        return Registry(registry_root).select(pid, version=version)
    if ":" in ref:
        rev, _, file = ref.partition(":")
        try:
            raw = subprocess.run(["git", "show", f"{rev}:{file}"], capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", b"").decode("utf-8", "replace") or str(exc)
            raise UsageError([Diagnostic("git-show", f"cannot read {ref} from git: {detail.strip()}")]) from None
        return compile_document(load_yaml_text(decode_policy_bytes(raw, ref), ref))
    raise UsageError([Diagnostic("unknown-policy-ref", f"'{ref}' is not a file, id@version or REV:path",
                                 hint="e.g. policies/x/policy-1.1.0.yaml, loss-client-management@1.0.0, "
                                      "HEAD~1:policies/x/policy.yaml")])


def _constants(tree: ast.AST) -> list[Any]:
    return [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]


def _shape(tree: ast.AST) -> str:
    class Blank(ast.NodeTransformer):
        def visit_Constant(self, node: ast.Constant) -> ast.AST:
            return ast.copy_location(ast.Constant(value="#"), node)

    import copy

    return ast.dump(Blank().visit(copy.deepcopy(tree)))


def expression_change(old: Any, new: Any) -> str | None:
    """'threshold 1.2 -> 1.0' when only literals moved; else the old and new text; None when equal."""
    delta = expression_delta(old, new)
    return delta.detail if delta else None


def expression_delta(old: Any, new: Any, field: str = "when") -> Delta | None:
    """The change of one expression: its moved literals when only they moved, else the old and new text."""
    if old.source == new.source or ast.dump(old.tree) == ast.dump(new.tree):
        return None
    a, b = old.source.strip(), new.source.strip()
    if _shape(old.tree) == _shape(new.tree):
        pairs = [(x, y) for x, y in zip(_constants(old.tree), _constants(new.tree), strict=True) if x != y]
        moved = [f"{show(x)} -> {show(y)}" for x, y in pairs]
        detail = ("threshold " if len(moved) == 1 else "thresholds ") + ", ".join(moved)
        if len(pairs) == 1:
            return Delta(detail, "threshold", pairs[0][0], pairs[0][1], {"old": a, "new": b})
        return Delta(detail, "thresholds", [x for x, _ in pairs], [y for _, y in pairs], {"old": a, "new": b})
    return Delta(f"condition `{a}` -> `{b}`", field, a, b)


def _describe(section: str, spec: Any) -> dict[str, Any]:
    """What a rule is, in policy terms: what an added or removed rule is shown with."""
    if section == "input":
        return {k: _plain(getattr(spec, k)) for k in ("source", "type", "required", "min", "max", "enum", "unit")
                if getattr(spec, k) not in (None, False)}
    if section == "metric":
        return {"expr": spec.expr.source.strip()}
    if section == "factor":
        return {"expr": spec.expr.source.strip(), "weight": spec.weight, "missing_points": spec.missing_points,
                "bands": {b.label(): b.value for b in spec.bands}}
    if section == "floor":
        return {"when": spec.expr.source.strip(), "floor": spec.floor, "source": spec.source}
    if section == "warning":
        return {"when": spec.expr.source.strip(), "severity": spec.severity, "category": spec.category,
                "message": dict(spec.message)}
    if section == "action":
        out = {"when": spec.expr.source.strip(), "action": spec.action,
               "params": {**dict(spec.params), **{k: {"expr": v.source.strip()} for k, v in spec.param_exprs.items()}},
               "priority": spec.priority, "excludes": list(spec.excludes), "approval": spec.approval,
               "reason": dict(spec.reason)}
        if spec.restructuring is not None:
            r = spec.restructuring
            out["restructuring"] = {"when": r.expr.source.strip(), "floor": r.floor,
                                    "observation_months": r.observation_months,
                                    "observation_periods": r.observation_periods, "source": r.source}
        return out
    return {}


def _summary_text(section: str, d: dict[str, Any]) -> str:
    """'when `dpd > 90`; floor substandard' for a people-facing line."""
    parts = []
    for key in ("source", "type", "expr", "when", "action", "floor", "severity", "category", "weight", "priority",
                "approval"):
        if d.get(key) not in (None, "", []):
            value = d[key]
            parts.append(f"{key} `{value}`" if key in ("when", "expr", "source") and section != "floor"
                         else f"{key} {value}")
    if d.get("params"):
        parts.append("params " + ", ".join(f"{k}={v['expr'] if isinstance(v, dict) else v}"
                                           for k, v in d["params"].items()))
    if d.get("excludes"):
        parts.append("excludes " + ", ".join(d["excludes"]))
    if d.get("message"):
        parts.append(f"message \"{d['message'].get('en') or next(iter(d['message'].values()))}\"")
    if d.get("restructuring"):
        r = d["restructuring"]
        parts.append(f"restructuring: floor {r['floor']}" + (f", observation {r['observation_months']} months"
                                                              if r.get("observation_months") else ""))
    if section == "floor" and d.get("source"):
        parts = [p for p in parts if not p.startswith("source")] + [f"source: {d['source']}"]
    return "; ".join(parts)


def _compare_maps(section: str, old: Mapping[str, Any], new: Mapping[str, Any], out: list[Change],
                  describe: Any) -> None:
    for key in old:
        if key not in new:
            d = _describe(section, old[key])
            out.append(Change(section, key, "removed", "removed" + (f": {_summary_text(section, d)}" if d else ""),
                              old=d or None))
    for key in new:
        if key not in old:
            d = _describe(section, new[key])
            out.append(Change(section, key, "added", "added" + (f": {_summary_text(section, d)}" if d else ""),
                              new=d or None))
        else:
            for delta in describe(old[key], new[key]):
                out.append(Change(section, key, "changed", delta.detail, delta.field, delta.old, delta.new,
                                  delta.when))


def _fields(a: Any, b: Any, names: tuple[str, ...]) -> list[Delta]:
    return [Delta(f"{n} {show(getattr(a, n))} -> {show(getattr(b, n))}", n, getattr(a, n), getattr(b, n))
            for n in names if getattr(a, n) != getattr(b, n)]


def _texts(name: str, a: Mapping[str, str], b: Mapping[str, str]) -> list[Delta]:
    """A changed bilingual text, shown in the language that changed (English first)."""
    if dict(a) == dict(b):
        return []
    lang = next((k for k in ("en", "zh", *sorted(set(a) | set(b))) if a.get(k) != b.get(k)), "en")
    return [Delta(f"{name} changed: ({lang}) \"{a.get(lang, '')}\" -> \"{b.get(lang, '')}\"", name, dict(a), dict(b))]


def _when(a: Any, b: Any, field: str = "when") -> list[Delta]:
    return [d for d in [expression_delta(a, b, field)] if d]


def diff_policies(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """Every change from ``old`` to ``new``, rule by rule, in the order a reviewer reads a policy."""
    out: list[Change] = []
    for field in ("id", "version", "status", "effective_from", "effective_to", "owner"):
        a, b = getattr(old, field), getattr(new, field)
        if a != b:
            out.append(Change("metadata", field, "changed", f"{show(a)} -> {show(b)}", field, a, b))
    _compare_maps("input", {i.name: i for i in old.inputs}, {i.name: i for i in new.inputs}, out,
                  lambda a, b: _fields(a, b, ("source", "type", "required", "min", "max", "enum", "ascending",
                                              "not_after_as_of")))
    for name in sorted(set(old.parameters) | set(new.parameters)):
        a, b = old.parameters.get(name), new.parameters.get(name)
        if a is None or b is None:
            values = dict(b if a is None else a)  # type: ignore[arg-type]
            shown = ", ".join(f"{k}={show(v)}" for k, v in values.items())
            out.append(Change("parameter", name, "added" if a is None else "removed",
                              f"{'added' if a is None else 'removed'}: {shown}", "value",
                              None if a is None else values, values if a is None else None))
            continue
        for seg in sorted(set(a) | set(b), key=lambda s: (s != "default", s)):
            if a.get(seg) != b.get(seg):
                out.append(Change("parameter", f"{name}[{seg}]", "changed", f"{show(a.get(seg))} -> {show(b.get(seg))}",
                                  "value", a.get(seg), b.get(seg)))
    _compare_maps("metric", {m.name: m for m in old.metrics}, {m.name: m for m in new.metrics}, out,
                  lambda a, b: _when(a.expr, b.expr, "expr"))

    def factor(a: Any, b: Any) -> list[Delta]:
        details = _when(a.expr, b.expr, "expr") + _fields(a, b, ("weight", "missing_points"))
        old_bands = {band.label(): band.value for band in a.bands}
        new_bands = {band.label(): band.value for band in b.bands}
        details += [Delta(f"band {k} removed", f"band {k}", old_bands[k], None) for k in old_bands
                    if k not in new_bands]
        details += [Delta(f"band {k} added ({new_bands[k]} points)", f"band {k}", None, new_bands[k])
                    for k in new_bands if k not in old_bands]
        details += [Delta(f"band {k}: points {old_bands[k]} -> {new_bands[k]}", f"band {k}", old_bands[k],
                          new_bands[k]) for k in new_bands if k in old_bands and old_bands[k] != new_bands[k]]
        return details

    _compare_maps("factor", {f.id: f for f in old.factors}, {f.id: f for f in new.factors}, out, factor)
    old_sb = {b.label(): b.value for b in old.score_bands}
    new_sb = {b.label(): b.value for b in new.score_bands}
    if old_sb != new_sb:
        out.append(Change("score-band", "", "changed",
                          f"{', '.join(f'{k}={v}' for k, v in old_sb.items())} -> "
                          f"{', '.join(f'{k}={v}' for k, v in new_sb.items())}", "bands", old_sb, new_sb))
    if old.grade_ids != new.grade_ids:
        out.append(Change("scale", "", "changed", f"{list(old.grade_ids)} -> {list(new.grade_ids)}", "grades",
                          list(old.grade_ids), list(new.grade_ids)))
    _compare_maps("floor", {r.id: r for r in old.floors}, {r.id: r for r in new.floors}, out,
                  lambda a, b: _when(a.expr, b.expr) + _fields(a, b, ("floor", "source")))
    _compare_maps("warning", {w.id: w for w in old.warnings}, {w.id: w for w in new.warnings}, out,
                  lambda a, b: _when(a.expr, b.expr) + _fields(a, b, ("severity", "category"))
                  + _texts("message", a.message, b.message))

    def action(a: Any, b: Any) -> list[Delta]:
        details = _when(a.expr, b.expr) + _fields(a, b, ("action", "priority", "excludes", "approval"))
        if dict(a.params) != dict(b.params):
            details.append(Delta(f"params {show(dict(a.params))} -> {show(dict(b.params))}", "params", dict(a.params),
                                 dict(b.params)))
        pa = {k: v.source for k, v in a.param_exprs.items()}
        pb = {k: v.source for k, v in b.param_exprs.items()}
        if pa != pb:
            details.append(Delta(f"computed params {show(pa)} -> {show(pb)}", "computed_params", pa, pb))
        ra, rb = a.restructuring, b.restructuring
        if (ra is None) != (rb is None):
            details.append(Delta("restructuring consequence " + ("added" if ra is None else "removed"),
                                 "restructuring", _describe("action", a).get("restructuring"),
                                 _describe("action", b).get("restructuring")))
        elif ra is not None and rb is not None:
            change = expression_delta(ra.expr, rb.expr)
            if change:
                details.append(Delta(f"restructuring test: {change.detail}", "restructuring.when",
                                     change.old, change.new, change.when))
            details += [Delta(f"restructuring {d.detail}", f"restructuring.{d.field}", d.old, d.new)
                        for d in _fields(ra, rb, ("floor", "observation_months", "observation_periods"))]
        return details + _texts("reason", a.reason, b.reason)

    _compare_maps("action", {a.id: a for a in old.actions}, {a.id: a for a in new.actions}, out, action)
    return out


def render_text(old: CompiledPolicy, new: CompiledPolicy, changes: list[Change]) -> str:
    """One line per change, under the versions compared."""
    lines = [f"{old.id} {old.version} -> {new.id} {new.version}: {len(changes)} change(s)"]
    return "\n".join([*lines, *(f"  {c.text()}" for c in changes)]) + "\n"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(old: CompiledPolicy, new: CompiledPolicy, changes: list[Change]) -> str:
    """A pull-request comment: what was added, removed and changed, one table row per change."""
    lines = [f"### Policy change: `{old.id}` {old.version} → `{new.id}` {new.version}", ""]
    if not changes:
        return "\n".join([*lines, "No change in policy terms.", ""])
    kinds = {k: sum(c.kind == k for c in changes) for k in ("added", "removed", "changed")}
    lines += [f"{len(changes)} change(s): " + ", ".join(f"{n} {k}" for k, n in kinds.items() if n) + ".", ""]
    lines += ["| section | rule | change |", "| --- | --- | --- |"]
    for c in changes:
        detail = _md_cell(c.detail)
        if c.kind in ("added", "removed"):
            detail = f"**{c.kind}**{detail[len(c.kind):]}"
        lines.append(f"| {c.section} | `{c.rule}` | {detail} |" if c.rule else f"| {c.section} | | {detail} |")
    return "\n".join([*lines, ""])
