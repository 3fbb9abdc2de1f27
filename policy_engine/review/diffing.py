"""Semantic diff of two policy versions: what changed, rule by rule, in policy terms.

Not a text diff: a changed threshold reads ``warning coverage_low: threshold 1.2 -> 1.0``, a
parameter ``parameter current_ratio_floor[manufacturing]: 1.2 -> 1.15``, an action that gained a
condition shows the old and the new condition. Either side is a file, ``id@version`` from the
registry, or ``REV:path`` from git.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, PolicyError, UsageError
from ..language.expressions import Table
from ..policy.compiler import (
    ActionSpec,
    Band,
    CompiledPolicy,
    FactorSpec,
    FloorSpec,
    InputSpec,
    MetricSpec,
    RestructuringSpec,
    WarningSpec,
    compile_document,
)
from ..policy.lint import readers
from ..policy.loader import decode_policy_bytes, load_yaml_file, load_yaml_text
from ..policy.modules import MODULE_FILE, ModuleSource, ModuleText
from ..policy.table_parameters import show_key


@dataclass(frozen=True)
class Change:
    """One change in policy terms: ``detail`` for people, ``field``/``old``/``new`` as values for machines.

    An added or removed rule carries its definition (condition, severity, message, floor, ...) in
    ``new`` or ``old``; a moved threshold its old and new numbers, with the conditions in ``when``.
    """

    section: str  # metadata, import, input, parameter, metric, factor, score-band, scale, floor, warning,
    # action-type, action
    rule: str
    kind: str  # added, removed, changed
    detail: str
    field: str | None = None
    old: Any = None
    new: Any = None
    when: dict[str, str] | None = None  # a threshold change: the old and new condition in full
    read_by: tuple[str, ...] | None = None  # a parameter's value: the rules that read it (``metric x``, ``floor y``)

    def to_dict(self) -> dict[str, Any]:
        out = {"section": self.section, "rule": self.rule, "kind": self.kind, "detail": self.detail,
               "field": self.field, "old": _plain(self.old), "new": _plain(self.new)}
        if self.when is not None:
            out["when"] = self.when
        if self.read_by is not None:
            out["read_by"] = list(self.read_by)
        return out

    def text(self) -> str:
        text = f"{self.section} {self.rule}: {self.detail}" if self.rule else f"{self.section}: {self.detail}"
        return f"{text} (read by {', '.join(self.read_by)})" if self.read_by else text


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
    from ..policy.kinds import refuse_other_kind, refuse_portfolio_file

    path = Path(ref)
    if path.is_file():
        refuse_portfolio_file(ref)  # before it is read as YAML
        doc = load_yaml_file(path)  # size and encoding checked, as for validate
        refuse_other_kind(doc, ref)
        return compile_document(doc)
    if "@" in ref and ":" not in ref:
        from ..policy.registry import Registry

        pid, _, version = ref.partition("@")
        return Registry(registry_root).select(pid, version=version)
    if ":" in ref:
        rev, _, file = ref.partition(":")
        # Its imports are read at the same revision: the policy as it was, with the modules as they were.
        doc = load_yaml_text(git_text(ref), ref)
        refuse_other_kind(doc, ref)
        return compile_document(doc, modules=GitModules(rev, Path(file).parent.parent))
    if path.suffix in (".yaml", ".yml") or "/" in ref:  # meant as a file: say that it is not there
        raise UsageError([Diagnostic("file-missing", f"no such file: {ref}", file=ref)])
    raise UsageError([Diagnostic("unknown-policy-ref", f"'{ref}' is not a file, id@version or REV:path",
                                 hint="e.g. policies/x/policy-1.1.0.yaml, loss-client-management@1.0.0, "
                                      "HEAD~1:policies/x/policy.yaml")])


def git_text(ref: str) -> str:
    """The text of ``REV:path`` as committed, or a usage error saying why git could not give it."""
    rev, _, file = ref.partition(":")
    try:
        raw = subprocess.run(["git", "show", f"{rev}:{file}"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", b"").decode("utf-8", "replace") or str(exc)
        raise UsageError([Diagnostic("git-show", f"cannot read {ref} from git: {detail.strip()}")]) from None
    return decode_policy_bytes(raw, ref)


class GitModules(ModuleSource):
    """Modules at one git revision: ``<registry>/<id>/module-<version>.yaml`` as committed."""

    def __init__(self, rev: str, root: Path):
        self.rev, self.root = rev, root

    def _git(self, *args: str) -> bytes | None:
        try:
            return subprocess.run(["git", *args], capture_output=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None

    def get(self, module_id: str, version: str) -> ModuleText | None:
        if "/" in module_id or module_id.startswith("."):
            return None
        where = (self.root / module_id / f"module-{version}.yaml").as_posix()
        raw = self._git("show", f"{self.rev}:{where}")
        ref = f"{self.rev}:{where}"
        return None if raw is None else ModuleText(module_id, version, ref, decode_policy_bytes(raw, ref))

    def _names(self, folder: Path) -> list[str]:
        out = self._git("ls-tree", "--name-only", self.rev, folder.as_posix() + "/")
        return [Path(n).name for n in (out or b"").decode("utf-8", "replace").splitlines()]

    def versions(self, module_id: str) -> list[str]:
        return sorted(m[1] for n in self._names(self.root / module_id) if (m := MODULE_FILE.match(n)))

    def ids(self) -> list[str]:
        return sorted(n for n in self._names(self.root) if self.versions(n))


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
    word = "expression" if field == "expr" else "condition"  # a metric computes a value; a rule tests
    return Delta(f"{word} `{a}` -> `{b}`", field, a, b)


# What an added or removed rule is shown with, in policy terms: one describer per section.


def _describe_input(spec: InputSpec) -> dict[str, Any]:
    return {k: _plain(getattr(spec, k)) for k in ("scope", "source", "type", "required", "min", "max", "enum", "unit")
            if getattr(spec, k) not in (None, False)}


def _describe_metric(spec: MetricSpec) -> dict[str, Any]:
    out: dict[str, Any] = {**_labelled(spec), "expr": spec.expr.source.strip()}
    if getattr(spec, "unit", None):
        out["unit"] = spec.unit
    if spec.after is not None:
        out["after"] = spec.after
    return out


def _describe_factor(spec: FactorSpec) -> dict[str, Any]:
    return {"expr": spec.expr.source.strip(), "weight": spec.weight, "missing_points": spec.missing_points,
            "bands": _band_points(spec.bands)}


def _describe_floor(spec: FloorSpec) -> dict[str, Any]:
    out: dict[str, Any] = {**_written(spec), "floor": spec.floor, "source": spec.source}
    if spec.scope != "debtor":  # an exposure's own floor
        out["scope"] = spec.scope
    if spec.message is not None:  # a rule that also warns: its warning is part of the rule
        out.update(severity=spec.severity, category=spec.category, message=dict(spec.message))
    return out


def _written(spec: WarningSpec | ActionSpec | FloorSpec) -> dict[str, Any]:
    """A rule's condition as written, and the exposures it concerns (not the compiled join)."""
    out = {"when": spec.as_written.source.strip()}
    if spec.for_exposures is not None:
        out["for_exposures"] = spec.for_exposures.source.strip()
    return out


def _labelled(spec: Any) -> dict[str, Any]:
    """A rule's words for people ({zh, en}), first in what a reviewer reads of an added one."""
    label = getattr(spec, "label", None)
    return {"label": dict(label)} if label else {}


def _describe_warning(spec: WarningSpec) -> dict[str, Any]:
    return {**_labelled(spec), **_written(spec), "severity": spec.severity, "category": spec.category,
            "message": dict(spec.message)}


def _describe_action(spec: ActionSpec) -> dict[str, Any]:
    out = {**_labelled(spec), **_written(spec), "action": spec.action,
           "params": {**dict(spec.params), **{k: {"expr": v.source.strip()} for k, v in spec.param_exprs.items()}},
           "priority": spec.priority, "excludes": list(spec.excludes), "approval": spec.approval,
           "reason": dict(spec.reason)}
    restructuring = _describe_restructuring(spec.restructuring)
    if restructuring is not None:
        out["restructuring"] = restructuring
    return out


def _describe_restructuring(spec: RestructuringSpec | None) -> dict[str, Any] | None:
    if spec is None:
        return None
    return {"when": spec.expr.source.strip(), "floor": spec.floor, "observation_months": spec.observation_months,
            "observation_periods": spec.observation_periods, "source": spec.source}


def _band_points(bands: tuple[Band, ...]) -> dict[str, Any]:
    """Bands by their interval label (``[6, +inf)``) -> points or grade."""
    return {band.label(): band.value for band in bands}


# The fields of a described rule that a one-line summary shows, in this order (``when `dpd > 90`; floor x``).
_SUMMARY_FIELDS = ("scope", "source", "type", "expr", "when", "for_exposures", "action", "floor", "severity",
                   "category", "weight", "priority", "approval", "unit")
# expressions and paths, shown as code (a floor's source is a citation)
_QUOTED_FIELDS = ("when", "for_exposures", "expr", "source")


def _summary_text(section: str, d: dict[str, Any]) -> str:
    """'when `dpd > 90`; floor substandard' for a people-facing line."""
    parts = _summary_label(d)
    parts += [_summary_field(section, key, d[key]) for key in _SUMMARY_FIELDS if d.get(key) not in (None, "", [])]
    parts += [part for summarize in _SUMMARY_EXTRAS for part in summarize(d)]
    if section == "floor" and d.get("source"):  # a floor's legal source reads last, as a citation
        parts = [p for p in parts if not p.startswith("source")] + [f"source: {d['source']}"]
    return "; ".join(parts)


def _summary_field(section: str, key: str, value: Any) -> str:
    return f"{key} `{value}`" if key in _QUOTED_FIELDS and section != "floor" else f"{key} {value}"


def _summary_label(d: dict[str, Any]) -> list[str]:
    label = d.get("label")
    if not isinstance(label, dict) or not label:
        return []
    return ["label " + " / ".join(f"\"{text}\"" for _, text in _english_first(label))]


def _summary_params(d: dict[str, Any]) -> list[str]:
    if not d.get("params"):
        return []
    return ["params " + ", ".join(f"{k}={v['expr'] if isinstance(v, dict) else v}" for k, v in d["params"].items())]


def _summary_excludes(d: dict[str, Any]) -> list[str]:
    return ["excludes " + ", ".join(d["excludes"])] if d.get("excludes") else []


def _summary_message(d: dict[str, Any]) -> list[str]:
    if not d.get("message"):
        return []
    # every language the rule is written in (a reviewer reads the Chinese text the credit officer will), English first
    return ["message " + "; ".join(f"({lang}) \"{text}\"" for lang, text in _english_first(d["message"]))]


def _english_first(texts: Mapping[str, str]) -> list[tuple[str, str]]:
    """A bilingual text's (language, text) pairs, English first: the order a summary line shows them in."""
    return sorted(texts.items(), key=lambda kv: kv[0] != "en")


def _summary_restructuring(d: dict[str, Any]) -> list[str]:
    r = d.get("restructuring")
    if not r:
        return []
    observation = f", observation {r['observation_months']} months" if r.get("observation_months") else ""
    return [f"restructuring: floor {r['floor']}{observation}"]


# The parts of a summary after its plain fields, in this order.
_SUMMARY_EXTRAS: tuple[Callable[[dict[str, Any]], list[str]], ...] = (
    _summary_params, _summary_excludes, _summary_message, _summary_restructuring)


def _rule_changes(section: str, old: Mapping[str, Any], new: Mapping[str, Any],
                  describe: Callable[[Any], dict[str, Any]], deltas: Callable[[Any, Any], list[Delta]]) -> list[Change]:
    """Rules keyed by id: the removed ones first, then the added and changed ones in the new policy's order."""
    out = [_added_or_removed(section, key, "removed", describe(old[key])) for key in old if key not in new]
    for key in new:
        if key not in old:
            out.append(_added_or_removed(section, key, "added", describe(new[key])))
        else:
            out += [Change(section, key, "changed", delta.detail, delta.field, delta.old, delta.new, delta.when)
                    for delta in deltas(old[key], new[key])]
    return out


def _added_or_removed(section: str, key: str, kind: str, described: dict[str, Any]) -> Change:
    """An added or removed rule, shown with its definition (in ``new`` when added, in ``old`` when removed)."""
    detail = kind + (f": {_summary_text(section, described)}" if described else "")
    definition = described or None
    if kind == "added":
        return Change(section, key, kind, detail, new=definition)
    return Change(section, key, kind, detail, old=definition)


def _fields(a: Any, b: Any, names: tuple[str, ...]) -> list[Delta]:
    return [Delta(f"{n} {show(getattr(a, n))} -> {show(getattr(b, n))}", n, getattr(a, n), getattr(b, n))
            for n in names if getattr(a, n) != getattr(b, n)]


def _texts(name: str, a: Mapping[str, str], b: Mapping[str, str]) -> list[Delta]:
    """A changed bilingual text, in each language that changed (English first): a reviewer approves what
    the readers of both languages will see."""
    if dict(a) == dict(b):
        return []
    langs = [k for k in dict.fromkeys(("en", "zh", *sorted(set(a) | set(b)))) if a.get(k) != b.get(k)]
    shown = "; ".join(f"({lang}) \"{a.get(lang, '')}\" -> \"{b.get(lang, '')}\"" for lang in langs)
    return [Delta(f"{name} changed: {shown}", name, dict(a), dict(b))]


def _text(name: str, a: str | None, b: str | None) -> list[Delta]:
    """A changed one-language text (a description): old and new in full."""
    a, b = a or None, b or None
    if a == b:
        return []
    if a is None:
        return [Delta(f"{name} added: \"{b}\"", name, a, b)]
    if b is None:
        return [Delta(f"{name} removed (was \"{a}\")", name, a, b)]
    return [Delta(f"{name} changed: \"{a}\" -> \"{b}\"", name, a, b)]


def _value_labels(a: Mapping[str, Mapping[str, str]] | None, b: Mapping[str, Mapping[str, str]] | None
                  ) -> list[Delta]:
    """A text metric's words per value: each value whose words changed, was added or removed."""
    old, new = a or {}, b or {}
    out = []
    for value in dict.fromkeys([*old, *new]):
        name = f"labels[{value}]"
        if value not in new:
            out.append(Delta(f"{name} removed (was \"{old[value].get('en', '')}\")", name, dict(old[value]), None))
        elif value not in old:
            out.append(Delta(f"{name} added: \"{new[value].get('en', '')}\"", name, None, dict(new[value])))
        else:
            out += _texts(name, old[value], new[value])
    return out


def _when(a: Any, b: Any, field: str = "when") -> list[Delta]:
    return [d for d in [expression_delta(a, b, field)] if d]


# How one rule changed, in policy terms: one function per section.


def _input_deltas(a: InputSpec, b: InputSpec) -> list[Delta]:
    """Where it reads first (an input moved from the exposures to the payments reads another field), then what."""
    scope = [] if a.scope == b.scope else [Delta(f"scope {a.scope or 'debtor'} -> {b.scope or 'debtor'}", "scope",
                                                 a.scope or "debtor", b.scope or "debtor")]
    return (scope + _fields(a, b, ("source", "type", "required", "min", "max", "enum", "unit", "ascending",
                                   "not_after_as_of", "not_before"))
            + _text("description", a.description, b.description))


def _metric_deltas(a: MetricSpec, b: MetricSpec) -> list[Delta]:
    """What it computes first; then how people read it (an explanation prints its label, words and format)."""
    return (_when(a.expr, b.expr, "expr") + _fields(a, b, ("after", "informational", "format", "unit"))
            + _texts("label", a.label or {}, b.label or {}) + _value_labels(a.labels, b.labels)
            + _text("description", a.description, b.description))


def _factor_deltas(a: FactorSpec, b: FactorSpec) -> list[Delta]:
    return _when(a.expr, b.expr, "expr") + _fields(a, b, ("weight", "missing_points")) + _band_deltas(a.bands, b.bands)


def _band_deltas(old: tuple[Band, ...], new: tuple[Band, ...]) -> list[Delta]:
    """A factor's bands by interval: the removed ones, the added ones, then those whose points moved."""
    old_bands, new_bands = _band_points(old), _band_points(new)
    removed = [Delta(f"band {k} removed", f"band {k}", old_bands[k], None) for k in old_bands if k not in new_bands]
    added = [Delta(f"band {k} added ({new_bands[k]} points)", f"band {k}", None, new_bands[k])
             for k in new_bands if k not in old_bands]
    moved = [Delta(f"band {k}: points {old_bands[k]} -> {new_bands[k]}", f"band {k}", old_bands[k], new_bands[k])
             for k in new_bands if k in old_bands and old_bands[k] != new_bands[k]]
    return removed + added + moved


def _floor_deltas(a: FloorSpec, b: FloorSpec) -> list[Delta]:
    """The condition, grade and source; for a rule that warns, its warning's severity, category and message;
    then its description (``explain`` prints it beside the rule that decided a grade)."""
    return (_conditions(a, b) + _fields(a, b, ("floor", "source", "severity", "category", "scope"))
            + _texts("message", a.message or {}, b.message or {})
            + _texts("description", a.description or {}, b.description or {}))


def _conditions(a: WarningSpec | ActionSpec | FloorSpec, b: WarningSpec | ActionSpec | FloorSpec) -> list[Delta]:
    """The condition as written, then the exposures it concerns (``for_exposures``), each on its own: the compiled
    condition joins the two ('when and any_of(exposure, for_exposures)'), which no author wrote."""
    out = _when(a.as_written, b.as_written)
    old, new = a.for_exposures, b.for_exposures
    if old is None or new is None:
        if old is not new:
            out.append(Delta(f"for_exposures: {'added `' + new.source.strip() + '`' if new else 'removed'}",
                             "for_exposures", old.source.strip() if old else None, new.source.strip() if new else None))
        return out
    change = expression_delta(old, new, "for_exposures")
    if change:
        out.append(Delta(f"for_exposures: {change.detail}", "for_exposures", change.old, change.new, change.when))
    return out


def _warning_deltas(a: WarningSpec, b: WarningSpec) -> list[Delta]:
    """The condition, severity and category, the message, the evidence a decision records beside it, and the label
    reports read it by."""
    return (_conditions(a, b) + _fields(a, b, ("severity", "category", "evidence"))
            + _texts("message", a.message, b.message) + _texts("label", a.label or {}, b.label or {}))


def _action_deltas(a: ActionSpec, b: ActionSpec) -> list[Delta]:
    details = _conditions(a, b) + _fields(a, b, ("action", "priority", "excludes", "approval"))
    details += _param_deltas(a, b) + _restructuring_deltas(a.restructuring, b.restructuring)
    return details + _texts("reason", a.reason, b.reason)


def _param_deltas(a: ActionSpec, b: ActionSpec) -> list[Delta]:
    """An action's literal parameters, then its computed ones (compared by their expressions' text)."""
    details = []
    if dict(a.params) != dict(b.params):
        details.append(Delta(f"params {show(dict(a.params))} -> {show(dict(b.params))}", "params", dict(a.params),
                             dict(b.params)))
    computed_a = {k: v.source for k, v in a.param_exprs.items()}
    computed_b = {k: v.source for k, v in b.param_exprs.items()}
    if computed_a != computed_b:
        details.append(Delta(f"computed params {show(computed_a)} -> {show(computed_b)}", "computed_params",
                             computed_a, computed_b))
    return details


def _restructuring_deltas(a: RestructuringSpec | None, b: RestructuringSpec | None) -> list[Delta]:
    """An action's regulatory consequence: added, removed, or its test and terms changed."""
    if a is None and b is None:
        return []
    if a is None or b is None:
        return [Delta("restructuring consequence " + ("added" if a is None else "removed"), "restructuring",
                      _describe_restructuring(a), _describe_restructuring(b))]
    details = []
    change = expression_delta(a.expr, b.expr)
    if change:
        details.append(Delta(f"restructuring test: {change.detail}", "restructuring.when", change.old, change.new,
                             change.when))
    return details + [Delta(f"restructuring {d.detail}", f"restructuring.{d.field}", d.old, d.new)
                      for d in _fields(a, b, ("floor", "observation_months", "observation_periods"))]


# The sections of a policy without rule ids: one function each, from the two policies to their changes.


def _metadata_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    out = []
    for field in ("id", "version", "status", "effective_from", "effective_to", "owner"):
        a, b = getattr(old, field), getattr(new, field)
        if a != b:
            out.append(Change("metadata", field, "changed", f"{show(a)} -> {show(b)}", field, a, b))
    # what people read of the policy, and which cases run against it: each a change --exit-code must see
    deltas = _texts("title", old.title, new.title) + _text("description", _described(old), _described(new))
    out += [Change("metadata", d.field, "changed", d.detail.removeprefix(f"{d.field} "), d.field, d.old, d.new)
            for d in deltas]
    if old.tests_path != new.tests_path:
        out.append(Change("metadata", "tests", "changed", f"{show(old.tests_path)} -> {show(new.tests_path)}", "tests",
                          old.tests_path, new.tests_path))
    return out + _changelog_changes(old, new)


def _described(policy: CompiledPolicy) -> str | None:
    """The policy's own description (no rule reads it, so the compiled policy does not keep it)."""
    try:
        data = load_yaml_text(policy.text, policy.file or "<policy>").data
    except PolicyError:
        return None
    value = data.get("description") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _changelog_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """The changelog entries added (what the author says changed and why, beside what the diff finds), edited or
    removed, by version."""
    a = {str(e.get("version")): dict(e) for e in old.changelog}
    b = {str(e.get("version")): dict(e) for e in new.changelog}
    out = []
    for version in [v for v in b if v not in a or a[v] != b[v]] + [v for v in a if v not in b]:
        entry = b.get(version) or a[version]
        said = "; ".join(str(c) for c in entry.get("changes") or [])
        kind = "added" if version not in a else "removed" if version not in b else "changed"
        out.append(Change("metadata", "changelog", kind, f"{kind}: {version} ({show(entry.get('date'))}): {said}",
                          "changelog", a.get(version), b.get(version)))
    return out


def _import_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """Module pins, by module id: the changed definitions they bring show in their own sections."""
    a: dict[str, dict[str, str]] = {}
    b: dict[str, dict[str, str]] = {}
    for side, policy in ((a, old), (b, new)):
        for m in policy.modules:
            side.setdefault(m.id, {})[m.version] = m.sha256
    out = []
    for mid in sorted(set(a) | set(b)):
        va, vb = ", ".join(a.get(mid, {})) or None, ", ".join(b.get(mid, {})) or None
        if va != vb:
            kind = "added" if va is None else "removed" if vb is None else "changed"
            detail = f"{kind}: {va or vb}" if kind != "changed" else f"{va} -> {vb}"
            out.append(Change("import", mid, kind, detail, "version", va, vb))
        elif a[mid] != b[mid]:  # same pins, another text: two checkouts holding different files
            out.append(Change("import", mid, "changed", f"{va}: the module text differs under the same version",
                              "sha256", a[mid], b[mid]))
    return out + _imported_name_changes(old, new)


def _names(policy: CompiledPolicy) -> set[str]:
    """Every input, parameter and metric name the policy has, its own or imported."""
    return {*_inputs(policy), *policy.param_names, *_metrics(policy)}


def _imported_name_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """A name brought in or left out of an import, and one that moved between a module and the policy's own text:
    a definition that stops being shared (copied into the file) reads otherwise only as an edited expression."""
    out = []
    kept_old, kept_new = _names(old), _names(new)
    for name in sorted(set(old.imported) | set(new.imported)):
        was, now = old.imported.get(name), new.imported.get(name)
        if was == now or (was and now):  # the same module, or a pin moved (its own change above)
            continue
        if was:
            detail = (f"was imported from {was}, now defined in this file" if name in kept_new
                      else f"no longer imported from {was}")
        else:
            detail = (f"was defined in this file, now imported from {now}" if name in kept_old
                      else f"imported from {now}")
        out.append(Change("import", name, "changed" if name in kept_old and name in kept_new else
                          "removed" if was else "added", detail, "module", was, now))
    return out


def _parameter_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """Parameters by name (sorted); a parameter in both is compared segment by segment, 'default' first.

    A table parameter is compared cell by cell (``pd_by_rating[3]: 0.004 -> 0.005``), after its keys. A
    changed value names the rules of the new policy that read it: what a reviewer checks next.
    """
    out: list[Change] = []
    names = set(old.parameters) | set(new.parameters) | set(old.tables) | set(new.tables)
    for name in sorted(names):
        a, b = old.parameters.get(name), new.parameters.get(name)
        ta, tb = old.tables.get(name), new.tables.get(name)
        if ta is not None and tb is not None:
            values = _table_changes(name, ta, tb)
        elif a is not None and b is not None:
            values = _segment_changes(name, a, b, new.parameter_notes.get(name, {}).get("unit"))
        else:  # added, removed, or a value turned into a table (or back)
            values = []
            if a is not None or ta is not None:
                out.append(_parameter_added_or_removed(name, a, None, old.parameter_notes.get(name, {}))
                           if a is not None else _table_added_or_removed(ta, "removed"))  # type: ignore[arg-type]
            if b is not None or tb is not None:
                out.append(_parameter_added_or_removed(name, None, b, new.parameter_notes.get(name, {}))
                           if b is not None else _table_added_or_removed(tb, "added"))  # type: ignore[arg-type]
        if values:
            read_by = tuple(readers(new, name))
            out += [replace(c, read_by=read_by) for c in values]
        if (a is not None or ta is not None) and (b is not None or tb is not None):
            out += _parameter_note_changes(name, old.parameter_notes.get(name, {}), new.parameter_notes.get(name, {}))
    return out


def _parameter_note_changes(name: str, a: Mapping[str, str], b: Mapping[str, str]) -> list[Change]:
    """A parameter's unit and description (its legal source is often written there)."""
    unit_a, unit_b = a.get("unit"), b.get("unit")
    deltas = [Delta(f"unit {show(unit_a)} -> {show(unit_b)}", "unit", unit_a, unit_b)] if unit_a != unit_b else []
    deltas += _text("description", a.get("description"), b.get("description"))
    return [Change("parameter", name, "changed", d.detail, d.field, d.old, d.new) for d in deltas]


def _cell(v: Any) -> str:
    """A cell as written in the policy: 2 for the number 2.0 the table holds."""
    return show_key(v) if isinstance(v, float) else show(v)


def _cell_name(table: Table, key: Any) -> str:
    parts = key if len(table.keys) > 1 else (key,)
    return f"{table.name}[{', '.join(show_key(k) for k in parts)}]"


def _table_text(table: Table) -> str:
    how = "interpolated over" if table.interpolate else "by"
    cells = ", ".join(f"{_cell_name(table, k).removeprefix(table.name)}={_cell(v)}" for k, v in table.cells.items())
    return f"table {how} {', '.join(table.keys)}: {cells}"


def _table_added_or_removed(table: Table, kind: str) -> Change:
    values = {_cell_name(table, k): v for k, v in table.cells.items()}
    return Change("parameter", table.name, kind, f"{kind}: {_table_text(table)}", "table",
                  values if kind == "removed" else None, values if kind == "added" else None)


def _table_changes(name: str, a: Table, b: Table) -> list[Change]:
    """Keys and interpolation first, then each cell whose value changed, was added or was removed."""
    out = []
    if a.keys != b.keys:
        out.append(Change("parameter", name, "changed", f"keys {', '.join(a.keys)} -> {', '.join(b.keys)}", "keys",
                          list(a.keys), list(b.keys)))
    if a.interpolate != b.interpolate:
        how = {True: "linear", False: "none"}
        out.append(Change("parameter", name, "changed", f"interpolate {how[a.interpolate]} -> {how[b.interpolate]}",
                          "interpolate", how[a.interpolate], how[b.interpolate]))
    for key in dict.fromkeys([*a.cells, *b.cells]):
        old, new = a.cells.get(key), b.cells.get(key)
        if old != new or (key in a.cells) != (key in b.cells):
            kind = "added" if key not in a.cells else "removed" if key not in b.cells else "changed"
            out.append(Change("parameter", _cell_name(b if key in b.cells else a, key), kind,
                              f"{_cell(old)} -> {_cell(new)}", "value", old, new))
    return out


def _parameter_added_or_removed(name: str, a: Mapping[str, Any] | None, b: Mapping[str, Any] | None,
                                notes: Mapping[str, str]) -> Change:
    """With its unit and description: a reviewer reads 'default=0.2' as a share, a count or an amount by them."""
    values = dict(b if a is None else a)  # type: ignore[arg-type]
    shown = ", ".join(f"{k}={show(v)}" for k, v in values.items())
    kind = "added" if a is None else "removed"
    said = "".join(f"; {key} {notes[key]}" if key == "unit" else f"; {key} \"{notes[key]}\""
                   for key in ("unit", "description") if notes.get(key))
    return Change("parameter", name, kind, f"{kind}: {shown}{said}", "value", None if a is None else values,
                  values if a is None else None)


def _segment_changes(name: str, a: Mapping[str, Any], b: Mapping[str, Any], unit: str | None) -> list[Change]:
    after = f" {unit}" if unit else ""  # 12 -> 11 months
    return [Change("parameter", f"{name}[{seg}]", "changed", f"{show(a.get(seg))} -> {show(b.get(seg))}{after}",
                   "value", a.get(seg), b.get(seg))
            for seg in sorted(set(a) | set(b), key=lambda s: (s != "default", s)) if a.get(seg) != b.get(seg)]


def _score_band_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    old_bands, new_bands = _band_points(old.score_bands), _band_points(new.score_bands)
    if old_bands == new_bands:
        return []
    return [Change("score-band", "", "changed", f"{', '.join(f'{k}={v}' for k, v in old_bands.items())} -> "
                   f"{', '.join(f'{k}={v}' for k, v in new_bands.items())}", "bands", old_bands, new_bands)]


def _scale_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """The grades, each grade's non-performing flag and words, and which rule a tie credits: each changes
    decisions (a record's nonperforming, its labels, its decided_by) as a moved threshold does."""
    out = []
    if old.grade_ids != new.grade_ids:
        out.append(Change("scale", "", "changed", f"{list(old.grade_ids)} -> {list(new.grade_ids)}", "grades",
                          list(old.grade_ids), list(new.grade_ids)))
    before = {g.id: g for g in old.scale}
    for g in new.scale:
        a = before.get(g.id)
        if a is None:
            continue
        for name in ("nonperforming", "zh", "en"):
            x, y = getattr(a, name), getattr(g, name)
            if x != y:
                out.append(Change("scale", g.id, "changed", f"{name} {show(x)} -> {show(y)}", name, x, y))
    tie = (old.scoped.tie_to_exposure if old.scoped is not None else None,
           new.scoped.tie_to_exposure if new.scoped is not None else None)
    if None not in tie and tie[0] != tie[1]:
        words = {True: "exposure", False: "debtor"}
        out.append(Change("scale", "", "changed", f"decided_by_tie {words[tie[0]]} -> {words[tie[1]]}",
                          "decided_by_tie", words[tie[0]], words[tie[1]]))
    provisional = (old.scoped.provisional_unknown if old.scoped is not None else None,
                   new.scoped.provisional_unknown if new.scoped is not None else None)
    if None not in provisional and provisional[0] != provisional[1]:  # changes decisions with a missing fact
        said = {True: "unknown", False: "settled"}
        out.append(Change("scale", "", "changed",
                          f"provisional_grades {said[provisional[0]]} -> {said[provisional[1]]}",
                          "provisional_grades", said[provisional[0]], said[provisional[1]]))
    return out


def _floor_order_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """Floors of one grade in another order: when several fire, the first names the grade (decided_by), so a
    reorder changes decisions as an edited condition does."""
    out = []
    for scope, a, b in (("exposure", old.scoped.floors if old.scoped else (), new.scoped.floors if new.scoped else ()),
                        ("debtor", old.floors, new.floors)):
        common = {f.id for f in a} & {f.id for f in b}
        for grade in dict.fromkeys(f.floor for f in b):
            before = [f.id for f in a if f.id in common and f.floor == grade]
            after = [f.id for f in b if f.id in common and f.floor == grade]
            if before != after and sorted(before) == sorted(after):
                out.append(Change("floor", "", "changed", f"order of the {grade} floors ({scope}): "
                                  f"{', '.join(before)} -> {', '.join(after)} (the first that fires names the grade)",
                                  "order", before, after))
    return out


def _key_figure_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """The metrics an explanation shows as key figures, in their order."""
    before, after = list(old.key_figures), list(new.key_figures)
    if before == after:
        return []
    added = [m for m in after if m not in before]
    removed = [m for m in before if m not in after]
    said = [f"{words} {', '.join(names)}" for words, names in (("added", added), ("removed", removed)) if names]
    kept_before = [m for m in before if m in after]
    if kept_before != [m for m in after if m in before]:
        said.append("order changed")
    return [Change("metric", "", "changed", f"key figures: {'; '.join(said)}", "key_figures", before, after)]


def _action_type_changes(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """The action types a policy declares: a parameter's range, values, words or requirement decides whether an
    action's computed parameter is allowed, and how an explanation words it."""
    a = {k: t for k, t in old.action_types.items() if t.origin == "policy"}
    b = {k: t for k, t in new.action_types.items() if t.origin == "policy"}
    out = [Change("action-type", k, "removed", "removed", old=k) for k in a if k not in b]
    out += [Change("action-type", k, "added", f"added: {b[k].en} ({', '.join(b[k].params) or 'no parameters'})",
                   new=k) for k in b if k not in a]
    for k in (k for k in b if k in a):
        x, y = a[k], b[k]
        for name in ("zh", "en"):
            if getattr(x, name) != getattr(y, name):
                out.append(Change("action-type", k, "changed", f"{name} {show(getattr(x, name))} -> "
                                  f"{show(getattr(y, name))}", name, getattr(x, name), getattr(y, name)))
        for param in dict.fromkeys([*x.params, *y.params]):
            px, py = _param_fields(x.params.get(param)), _param_fields(y.params.get(param))
            if px != py:
                shown = "; ".join(f"{f} {show(px.get(f))} -> {show(py.get(f))}" for f in dict.fromkeys([*px, *py])
                                  if px.get(f) != py.get(f)) if px and py else "added" if py else "removed"
                out.append(Change("action-type", k, "changed", f"parameter {param}: {shown}", f"params.{param}",
                                  px or None, py or None))
    return out


def _param_fields(p: Any) -> dict[str, Any]:
    """A declared parameter's spec as plain values (none: {})."""
    if p is None:
        return {}
    fields = {"type": p.type, "required": p.required or None, "min": p.min, "max": p.max,
              "enum": list(p.enum) if p.enum else None, "shown": dict(p.shown) if p.shown else None,
              "labels": {k: dict(v) for k, v in p.labels.items()} if p.labels else None}
    return {k: v for k, v in fields.items() if v is not None}


@dataclass(frozen=True)
class _RuleSection:
    """A section whose rules have ids: how to list them, describe one, and say how one changed."""

    name: str
    rules: Callable[[CompiledPolicy], Mapping[str, Any]]
    describe: Callable[[Any], dict[str, Any]]
    deltas: Callable[[Any, Any], list[Delta]]

    def __call__(self, old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
        return _rule_changes(self.name, self.rules(old), self.rules(new), self.describe, self.deltas)


# A policy with scopes: the graded scope's inputs, metrics and floors are rules of the policy too.
def _inputs(p: CompiledPolicy) -> dict[str, Any]:
    scoped = [i for s in p.scoped.scopes for i in p.scoped.inputs[s.name]] if p.scoped is not None else []
    return {i.name: i for i in (*p.inputs, *scoped)}


def _metrics(p: CompiledPolicy) -> dict[str, Any]:
    """Every metric: the debtor's, the graded scope's and those of each element (read where they are named)."""
    return {m.name: m for m in (*p.element_metrics, *(p.scoped.metrics if p.scoped is not None else ()), *p.metrics)}


def _floors(p: CompiledPolicy) -> dict[str, Any]:
    return {r.id: r for r in (*(p.scoped.floors if p.scoped is not None else ()), *p.floors)}


def _scopes(p: CompiledPolicy) -> dict[str, Any]:
    return {s.name: s for s in p.scoped.scopes} if p.scoped is not None else {}


_SCOPE_FIELDS = ("source", "parent", "key", "order_by", "unique", "min", "max")


def _describe_scope(spec: Any) -> dict[str, Any]:
    described = {k: getattr(spec, k) for k in _SCOPE_FIELDS}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in described.items() if v not in (None, ())}


# The diff, section by section in the order a reviewer reads a policy. A new section kind is one entry here.
_SECTIONS: tuple[Callable[[CompiledPolicy, CompiledPolicy], list[Change]], ...] = (
    _metadata_changes,
    _import_changes,
    _RuleSection("scope", _scopes, _describe_scope, lambda a, b: _fields(a, b, _SCOPE_FIELDS)),
    _RuleSection("input", _inputs, _describe_input, _input_deltas),
    _parameter_changes,
    _RuleSection("metric", _metrics, _describe_metric, _metric_deltas),
    _key_figure_changes,
    _RuleSection("factor", lambda p: {f.id: f for f in p.factors}, _describe_factor, _factor_deltas),
    _score_band_changes,
    _scale_changes,
    _RuleSection("floor", _floors, _describe_floor, _floor_deltas),
    _floor_order_changes,
    # a classification rule's own warning is reported with its rule, above
    _RuleSection("warning", lambda p: {w.id: w for w in p.warnings if not w.from_rule}, _describe_warning,
                 _warning_deltas),
    _action_type_changes,
    _RuleSection("action", lambda p: {a.id: a for a in p.actions}, _describe_action, _action_deltas),
)


def diff_policies(old: CompiledPolicy, new: CompiledPolicy) -> list[Change]:
    """Every change from ``old`` to ``new``, rule by rule, in the order a reviewer reads a policy."""
    return [change for section in _SECTIONS for change in section(old, new)]


def render_text(old: CompiledPolicy, new: CompiledPolicy, changes: list[Change]) -> str:
    """One line per change, under the versions compared."""
    a, b = _versions_shown(old, new)
    lines = [f"{old.id} {a} -> {new.id} {b}: {len(changes)} change(s)"]
    # One change, one line: a folded expression (YAML '>') keeps its line breaks in the text, and a grep
    # over a CI log would see half of it.
    return "\n".join([*lines, *(f"  {_one_line(c.text())}" for c in changes)]) + "\n"


def _versions_shown(old: CompiledPolicy, new: CompiledPolicy) -> tuple[str, str]:
    """The two versions as a heading names them: with their sha256 when they are one version of two texts (the
    registry's 2.1.0 against an edited file of it), which '2.1.0 -> 2.1.0' could not tell apart."""
    if old.id == new.id and old.version == new.version and old.sha256 != new.sha256:
        return f"{old.version} (sha256 {old.sha256[:12]})", f"{new.version} (sha256 {new.sha256[:12]})"
    return old.version, new.version


def _one_line(text: str) -> str:
    return re.sub(r"\s*\n\s*", " ", text)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(old: CompiledPolicy, new: CompiledPolicy, changes: list[Change]) -> str:
    """A pull-request comment: what was added, removed and changed, one table row per change."""
    a, b = _versions_shown(old, new)
    lines = [f"### Policy change: `{old.id}` {a} → `{new.id}` {b}", ""]
    if not changes:
        return "\n".join([*lines, "No change in policy terms.", ""])
    kinds = {k: sum(c.kind == k for c in changes) for k in ("added", "removed", "changed")}
    lines += [f"{len(changes)} change(s): " + ", ".join(f"{n} {k}" for k, n in kinds.items() if n) + ".", ""]
    lines += ["| section | rule | change |", "| --- | --- | --- |"]
    for c in changes:
        detail = _md_cell(c.detail)
        if c.kind in ("added", "removed"):
            detail = f"**{c.kind}**{detail[len(c.kind):]}"
        if c.read_by:
            detail += " (read by " + ", ".join(f"`{r}`" for r in c.read_by) + ")"
        lines.append(f"| {c.section} | `{c.rule}` | {detail} |" if c.rule else f"| {c.section} | | {detail} |")
    return "\n".join([*lines, ""])
