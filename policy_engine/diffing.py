"""Semantic diff of two policy versions: what changed, rule by rule, in policy terms.

Not a text diff: a changed threshold reads ``warning dscr_low: threshold 1.2 -> 1.0``, a
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
    section: str  # metadata, input, parameter, metric, factor, score-band, scale, floor, warning, action
    rule: str
    kind: str  # added, removed, changed
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"section": self.section, "rule": self.rule, "kind": self.kind, "detail": self.detail}

    def text(self) -> str:
        return f"{self.section} {self.rule}: {self.detail}" if self.rule else f"{self.section}: {self.detail}"


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
    if old.source == new.source or ast.dump(old.tree) == ast.dump(new.tree):
        return None
    if _shape(old.tree) == _shape(new.tree):
        moved = [f"{a!r} -> {b!r}" for a, b in zip(_constants(old.tree), _constants(new.tree), strict=True) if a != b]
        return ("threshold " if len(moved) == 1 else "thresholds ") + ", ".join(moved)
    return f"condition `{old.source.strip()}` -> `{new.source.strip()}`"


def _compare_maps(section: str, old: Mapping[str, Any], new: Mapping[str, Any], out: list[Change],
                  describe: Any) -> None:
    for key in old:
        if key not in new:
            out.append(Change(section, key, "removed", "removed"))
    for key in new:
        if key not in old:
            out.append(Change(section, key, "added", "added"))
        else:
            for detail in describe(old[key], new[key]):
                out.append(Change(section, key, "changed", detail))


def _fields(a: Any, b: Any, names: tuple[str, ...]) -> list[str]:
    return [f"{n} {getattr(a, n)!r} -> {getattr(b, n)!r}" for n in names if getattr(a, n) != getattr(b, n)]


def diff_policies(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    out: list[Change] = []
    for field in ("id", "version", "status", "effective_from", "effective_to", "owner"):
        a, b = getattr(old, field), getattr(new, field)
        if a != b:
            out.append(Change("metadata", field, "changed", f"{a!r} -> {b!r}"))
    _compare_maps("input", {i.name: i for i in old.inputs}, {i.name: i for i in new.inputs}, out,
                  lambda a, b: _fields(a, b, ("source", "type", "required", "min", "max", "enum", "ascending",
                                              "not_after_as_of")))
    for name in sorted(set(old.parameters) | set(new.parameters)):
        a, b = old.parameters.get(name), new.parameters.get(name)
        if a is None or b is None:
            out.append(Change("parameter", name, "added" if a is None else "removed",
                              "added" if a is None else "removed"))
            continue
        for seg in sorted(set(a) | set(b), key=lambda s: (s != "default", s)):
            if a.get(seg) != b.get(seg):
                out.append(Change("parameter", f"{name}[{seg}]", "changed", f"{a.get(seg)!r} -> {b.get(seg)!r}"))
    _compare_maps("metric", {m.name: m for m in old.metrics}, {m.name: m for m in new.metrics}, out,
                  lambda a, b: [c for c in [expression_change(a.expr, b.expr)] if c])

    def factor(a: Any, b: Any) -> list[str]:
        details = [c for c in [expression_change(a.expr, b.expr)] if c]
        details += _fields(a, b, ("weight", "missing_points"))
        old_bands = {band.label(): band.value for band in a.bands}
        new_bands = {band.label(): band.value for band in b.bands}
        details += [f"band {k} removed" for k in old_bands if k not in new_bands]
        details += [f"band {k} added ({new_bands[k]} points)" for k in new_bands if k not in old_bands]
        details += [f"band {k}: points {old_bands[k]} -> {new_bands[k]}" for k in new_bands
                    if k in old_bands and old_bands[k] != new_bands[k]]
        return details

    _compare_maps("factor", {f.id: f for f in old.factors}, {f.id: f for f in new.factors}, out, factor)
    old_sb = {b.label(): b.value for b in old.score_bands}
    new_sb = {b.label(): b.value for b in new.score_bands}
    if old_sb != new_sb:
        out.append(Change("score-band", "", "changed",
                          f"{', '.join(f'{k}={v}' for k, v in old_sb.items())} -> "
                          f"{', '.join(f'{k}={v}' for k, v in new_sb.items())}"))
    if old.grade_ids != new.grade_ids:
        out.append(Change("scale", "", "changed", f"{list(old.grade_ids)} -> {list(new.grade_ids)}"))
    _compare_maps("floor", {r.id: r for r in old.floors}, {r.id: r for r in new.floors}, out,
                  lambda a, b: [c for c in [expression_change(a.expr, b.expr)] if c]
                  + _fields(a, b, ("floor", "source")))
    _compare_maps("warning", {w.id: w for w in old.warnings}, {w.id: w for w in new.warnings}, out,
                  lambda a, b: [c for c in [expression_change(a.expr, b.expr)] if c]
                  + _fields(a, b, ("severity", "category")) + (["message changed"] if a.message != b.message else []))

    def action(a: Any, b: Any) -> list[str]:
        details = [c for c in [expression_change(a.expr, b.expr)] if c]
        details += _fields(a, b, ("action", "priority", "excludes", "approval"))
        if dict(a.params) != dict(b.params):
            details.append(f"params {dict(a.params)} -> {dict(b.params)}")
        pa = {k: v.source for k, v in a.param_exprs.items()}
        pb = {k: v.source for k, v in b.param_exprs.items()}
        if pa != pb:
            details.append(f"computed params {pa} -> {pb}")
        ra, rb = a.restructuring, b.restructuring
        if (ra is None) != (rb is None):
            details.append("restructuring consequence " + ("added" if ra is None else "removed"))
        elif ra is not None and rb is not None:
            change = expression_change(ra.expr, rb.expr)
            if change:
                details.append(f"restructuring test: {change}")
            details += [f"restructuring {d}" for d in _fields(ra, rb, ("floor", "observation_months",
                                                                          "observation_periods"))]
        if a.reason != b.reason:
            details.append("reason changed")
        return details

    _compare_maps("action", {a.id: a for a in old.actions}, {a.id: a for a in new.actions}, out, action)
    return out


def render_markdown(old: CompiledPolicy, new: CompiledPolicy, changes: list[Change]) -> str:
    lines = [f"### Policy change: `{old.id}` {old.version} → `{new.id}` {new.version}", ""]
    if not changes:
        return "\n".join([*lines, "No change in policy terms.", ""])
    lines += ["| section | rule | change |", "| --- | --- | --- |"]
    for c in changes:
        detail = c.detail.replace("|", "\\|")
        lines.append(f"| {c.section} | `{c.rule}` | {detail} |" if c.rule else f"| {c.section} | | {detail} |")
    return "\n".join([*lines, ""])
