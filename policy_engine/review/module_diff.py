"""``diff`` of two versions of a module, in the terms a reviewer needs: what each policy that imports it
would decide by if its pin moved from the old version to the new.

A module decides nothing on its own, so its change is shown through its importers: each policy of the
registry that pins the old version is compiled twice, with the old and with the new module (the pin moved,
nothing else), and the two are compared as ``diff`` compares two policies. An importer that would not
compile with the new version (a name it imports is gone, a definition no longer checks) shows why.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from ..diagnostics import Diagnostic, PolicyError, UsageError
from ..policy.compiler import CompiledPolicy, check_document
from ..policy.loader import Document, load_yaml_file, load_yaml_text
from ..policy.modules import MODULE_FILE, ModuleSource, ModuleText, is_module_file, source_for
from ..policy.registry import policy_files
from .diffing import Change, diff_policies, git_text


@dataclass(frozen=True)
class _Importer:
    """An importing policy that does not compile as it stands: named, with its text, so its diff shows why."""

    id: str
    version: str
    file: str
    text: str


@dataclass
class ImporterDiff:
    """One importing policy version: the changes moving its pin would bring, or why it would not compile."""

    policy: CompiledPolicy | _Importer
    changes: list[Change] = field(default_factory=list)
    problems: list[Diagnostic] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"policy": {"id": self.policy.id, "version": self.policy.version, "file": self.policy.file},
                "changes": [c.to_dict() for c in self.changes], "problems": [d.to_dict() for d in self.problems]}


class _WithModule(ModuleSource):
    """The registry's modules, with one module version served from elsewhere (a file, a git revision)."""

    def __init__(self, base: ModuleSource, module: ModuleText):
        self.base, self.module = base, module

    def get(self, module_id: str, version: str) -> ModuleText | None:
        if (module_id, version) == (self.module.id, self.module.version):
            return self.module
        return self.base.get(module_id, version)

    def versions(self, module_id: str) -> list[str]:
        extra = [self.module.version] if module_id == self.module.id else []
        return sorted({*self.base.versions(module_id), *extra})

    def ids(self) -> list[str]:
        return sorted({*self.base.ids(), self.module.id})


def module_ref(ref: str, root: Path) -> ModuleText | None:
    """The module ``ref`` names (a module file, ``MODULE-ID@VERSION`` in the registry, ``REV:path`` of a module
    file in git), or None when it names none (then it is a policy reference, or nothing)."""
    path = Path(ref)
    if path.is_file():
        if not is_module_file(path):
            return None
        doc = load_yaml_file(path)
        return _module_text(doc.data, str(path), doc.text)
    if "@" in ref and ":" not in ref:
        mid, _, version = ref.partition("@")
        for suffix in (".yaml", ".yml"):
            f = root / mid / f"module-{version}{suffix}"
            if f.is_file() and "/" not in mid and not mid.startswith("."):
                doc = load_yaml_file(f)
                return _module_text(doc.data, str(f), doc.text)
        return None
    if ":" in ref and MODULE_FILE.match(Path(ref.partition(":")[2]).name):
        text = git_text(ref)
        return _module_text(load_yaml_text(text, ref).data, ref, text)
    return None


def _module_text(data: object, file: str, text: str) -> ModuleText | None:
    if not isinstance(data, dict) or data.get("kind") != "module":
        return None
    mid, version = data.get("id"), data.get("version")
    if not isinstance(mid, str) or not isinstance(version, str):
        raise PolicyError([Diagnostic("schema", "a module names its id and version", file=file,
                                      hint="`policy-engine validate` checks the module itself")])
    return ModuleText(mid, version, file, text)


def importers(root: Path, module: ModuleText) -> list[CompiledPolicy | _Importer]:
    """The policy versions of the registry that import ``module``'s version directly (the ones its change
    reaches), in registry order. One that does not compile is kept, so the diff shows its problems: left out,
    it read "no policy imports this version", and a broken module's change passed as no change."""
    from ..policy.compiler import compile_document

    out: list[CompiledPolicy | _Importer] = []
    for f in policy_files([root]):
        try:
            doc = load_yaml_file(f)
        except PolicyError:
            continue
        entries = doc.data.get("imports") if isinstance(doc.data, dict) else None
        if not any(isinstance(e, dict) and e.get("module") == module.id and e.get("version") == module.version
                   for e in entries or ()):
            continue
        try:
            out.append(compile_document(doc))
        except PolicyError:
            data = doc.data
            out.append(_Importer(str(data.get("id")), str(data.get("version")), str(f), doc.text))
    return out


def check_modules(root: Path, *modules: ModuleText) -> None:
    """Each module text checked on its own before its importers are: a module with errors is invalid input (exit 4,
    located in its file), as a policy given to ``diff`` is; it is no diff to show."""
    from ..policy.modules import FolderModules, check_module

    found = [d for module in modules for d in check_module(module, FolderModules(root), (), {}).diagnostics
             if d.severity == "error"]
    if found:
        raise PolicyError(found)


def _with_pin(policy: CompiledPolicy | _Importer, module: ModuleText
              ) -> tuple[list[Diagnostic], CompiledPolicy | None]:
    """``policy`` compiled with its pin of ``module.id`` moved to ``module``'s version (its text unchanged, so
    every location still points into the policy file)."""
    doc = load_yaml_text(policy.text, policy.file or "<policy>")
    data = copy.deepcopy(doc.data)
    for entry in data.get("imports") or ():
        if entry.get("module") == module.id:
            entry["version"] = module.version
    moved = Document(doc.file, data, doc.text, doc.positions)
    return check_document(moved, _WithModule(source_for(doc.file), module))


def diff_module(old: ModuleText, new: ModuleText, root: Path) -> list[ImporterDiff]:
    """Per importer of ``old``: the changes its decisions' terms would see with ``new`` in its place."""
    if old.id != new.id:
        raise UsageError([Diagnostic("different-modules", f"'{old.id}' and '{new.id}' are different modules",
                                     hint="diff two versions of one module (or two policies)")])
    check_modules(root, old, new)
    out = []
    for policy in importers(root, old):
        problems, before = _with_pin(policy, old)
        if before is None:  # the old text served from elsewhere (git, an edited copy) does not compile
            out.append(ImporterDiff(policy, problems=problems))
            continue
        problems, after = _with_pin(policy, new)
        if after is None:
            out.append(ImporterDiff(policy, problems=[d for d in problems if d.severity == "error"]))
            continue
        changes = [c for c in diff_policies(before, after) if c.section != "metadata"]
        out.append(ImporterDiff(policy, changes=changes))
    return out


def render_text(old: ModuleText, new: ModuleText, found: list[ImporterDiff]) -> str:
    lines = [f"module {old.id} {old.version} -> {new.version}: imported by {len(found)} policy version(s)"]
    if not found:
        lines.append(f"  no policy of the registry imports {old.id} {old.version}: its change reaches no decision yet")
    for f in found:
        what = f"{len(f.problems)} problem(s)" if f.problems else f"{len(f.changes)} change(s)"
        lines.append(f"{f.policy.id} {f.policy.version} with {old.id} {new.version}: {what}")
        lines += [f"  {_one_line(c.text())}" for c in f.changes]
        lines += [f"  {d.render()}" for d in f.problems]
    return "\n".join(lines) + "\n"


def render_markdown(old: ModuleText, new: ModuleText, found: list[ImporterDiff]) -> str:
    lines = [f"### Module change: `{old.id}` {old.version} → {new.version}", ""]
    if not found:
        return "\n".join([*lines, f"No policy of the registry imports `{old.id}` {old.version}.", ""])
    for f in found:
        lines += [f"#### `{f.policy.id}` {f.policy.version}", ""]
        if f.problems:
            lines += [f"Would not compile with {new.version}:", ""]
            lines += [f"- `{d.file}:{d.line}` {d.code}: {d.message}" for d in f.problems] + [""]
            continue
        if not f.changes:
            lines += ["No change in policy terms.", ""]
            continue
        lines += ["| section | rule | change |", "| --- | --- | --- |"]
        lines += [f"| {c.section} | `{c.rule}` | {_one_line(c.detail).replace('|', chr(92) + '|')} |"
                  for c in f.changes] + [""]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())
