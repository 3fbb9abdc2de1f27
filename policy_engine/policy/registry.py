"""The policy registry: a directory of policies, several versions of each.

A policy file is a YAML file whose name starts with ``policy`` (``policy.yaml``,
``policy-1.1.0.yaml``) anywhere under the registry root. One is chosen by id
and the date it must be in force on, or pinned by version, or named by path.
Two versions of one policy whose effective periods overlap make the choice by
date ambiguous, so they are a validation error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, PolicyError, UsageError, did_you_mean, sort_diagnostics
from ..frozen import Frozen
from .compiler import CompiledPolicy, check_document, check_module_document
from .kinds import refuse_other_kind, refuse_portfolio_file
from .loader import Document, load_yaml_file
from .modules import MODULE_FILE, is_module_file

ENV_VAR = "POLICY_ENGINE_POLICIES"
DEFAULT_DIR = "policies"


def version_key(version: str) -> tuple[int, ...]:
    """A semantic version as numbers, so that 2.10.0 sorts after 2.9.0 (pre-release and build parts dropped)."""
    head = version.split("-")[0].split("+")[0]
    return tuple(int(x) if x.isdigit() else 0 for x in head.split("."))


def default_root() -> Path:
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR)


def is_policy_file(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and path.name.startswith("policy")


def policy_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Expand files and directories into policy files, in a stable order."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from sorted(f for f in path.rglob("*") if f.is_file() and is_policy_file(f))
        else:
            yield path


def load_policy(path: str | Path, named: bool = True) -> CompiledPolicy:
    """Load, validate and compile one policy file; :class:`PolicyError` lists every problem.

    A module file named where a policy is expected (``decide -p module-1.0.0.yaml``) is a usage error. So is a
    policy test file or a scenario (``not-a-policy``, as diff and impact say it) when the file was named as the
    policy (``named``, the default: ``-p FILE``, the Python API); a scan of a registry (``named=False``) reads one as
    a broken policy, listed with the others' problems.
    """
    if named:
        refuse_portfolio_file(str(path))  # a Parquet file read as YAML is an error about its bytes
    doc = load_yaml_file(path)
    if _is_module(doc):
        raise UsageError([_module_not_policy(str(path), doc.data.get("id"))])
    if named:
        refuse_other_kind(doc, str(path))  # exit 2, not a dozen errors about keys a policy needs
    diags, policy = check_document(doc)
    if policy is None:
        raise PolicyError(diags)
    return policy


def _is_module(doc: Document) -> bool:
    return isinstance(doc.data, dict) and doc.data.get("kind") == "module"


def _module_not_policy(where: str, module_id: object) -> Diagnostic:
    return Diagnostic("module-not-policy", f"{where} is a module: modules are imported by policies, never decided "
                      "on their own", hint=f"decide with a policy that imports it (imports: [{{module: {module_id}, "
                      "version: ..., names: [...]}]); `policy-engine validate` checks the module itself")


def module_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Module files (``module-<version>.yaml``) under the directories among ``paths``, in a stable order."""
    for p in paths:
        path = Path(p)
        if path.is_dir():
            yield from sorted(f for f in path.rglob("*") if f.is_file() and is_module_file(f))


class CheckResult(Frozen, frozen=False):
    file: str
    diagnostics: list[Diagnostic]
    policy: CompiledPolicy | None
    module: str | None = None  # "id@version" when the file is a module checked on its own
    kind: str | None = None  # policy, module, policy-tests or scenario (None: a policy, or unreadable)

    @property
    def what(self) -> str:
        return "module" if self.module else self.kind or "policy"


def check_paths(paths: Iterable[str | Path]) -> list[CheckResult]:
    """Validate every policy and module file under ``paths``, then the versions across them."""
    results: list[CheckResult] = []
    from .lint import lint

    paths = list(paths)
    for f in [*policy_files(paths), *module_files(paths)]:
        try:
            doc = load_yaml_file(f)
            if _is_module(doc):
                diags = check_module_document(doc)[0]
                wrong = {d.path for d in diags if d.severity == "error"}  # a place named by an id not of the form
                placed = _module_file_name(f, doc) if not wrong & {"id", "version"} else []
                results.append(CheckResult(str(f), [*diags, *placed], None,
                                           f"{doc.data.get('id')}@{doc.data.get('version')}"))
                continue
            diags, policy = check_document(doc)
            if policy is not None:
                diags = [*diags, *lint(policy, doc), *name_version_mismatch(f, policy)]
        except PolicyError as e:
            diags, policy = e.diagnostics, None
        results.append(CheckResult(str(f), diags, policy))
    loaded = [r.policy for r in results if r.policy is not None]
    # a gap where a version that does not load may stand is no finding of its own: it shows once that one loads
    unloaded = {h.id for r in results if r.policy is None and r.module is None
                and (h := read_header(Path(r.file))) is not None}
    for d in [*version_conflicts(loaded), *version_gaps(loaded, unloaded)]:
        for r in results:
            if r.file == d.file:
                r.diagnostics.append(d)
    _once_each(results)
    return results


def _once_each(results: list[CheckResult]) -> None:
    """A module's problem an importer repeats (they are listed at the module's file) is dropped from the importer
    when the module's own check, in the same run, gives it: one mistake, one diagnostic."""
    def key(d: Diagnostic) -> tuple[Any, ...]:
        return os.path.normpath(d.file or ""), d.line, d.column, d.code, d.message

    own = {os.path.normpath(r.file): {key(d) for d in r.diagnostics} for r in results}
    for r in results:
        here = os.path.normpath(r.file)
        r.diagnostics[:] = [d for d in r.diagnostics if os.path.normpath(d.file or here) == here
                            or key(d) not in own.get(os.path.normpath(d.file or ""), ())]


def _module_file_name(path: Path, doc: Document) -> list[Diagnostic]:
    """A module is found by its folder and file name: a module whose place says otherwise cannot be imported."""
    want = f"{doc.data.get('id')}/module-{doc.data.get('version')}.yaml"
    m = MODULE_FILE.match(path.name)
    if m is not None and m[1] == doc.data.get("version") and path.parent.name == doc.data.get("id"):
        return []
    return [Diagnostic("module-file-name", f"module {doc.data.get('id')} {doc.data.get('version')} is in "
                       f"{path.parent.name}/{path.name}; imports look for it at <registry>/{want}", file=str(path),
                       line=doc.locate(("version",))[0], path="version", severity="warning",
                       hint=f"move it to {want}")]


_NAME_VERSION = re.compile(r"^policy[-_]v?(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]*)?)\.ya?ml$")


def name_version_mismatch(path: Path, policy: CompiledPolicy) -> list[Diagnostic]:
    """A warning when ``policy-1.2.0.yaml`` holds another ``version:``: a reader trusts the name."""
    m = _NAME_VERSION.match(Path(path).name)
    if m is None or m[1] == policy.version:
        return []
    return [Diagnostic("file-name-version", f"the file name says version {m[1]} but the policy is version "
                       f"{policy.version}", file=str(path), line=_line(policy, "version"), path="version",
                       severity="warning", hint=f"rename the file to policy-{policy.version}.yaml, or set "
                                            f"version: {m[1]}")]


def version_conflicts(policies: list[CompiledPolicy]) -> list[Diagnostic]:
    """Duplicate versions, and active versions of one id whose effective periods overlap."""
    out: list[Diagnostic] = []
    by_id: dict[str, list[CompiledPolicy]] = {}
    for p in policies:
        by_id.setdefault(p.id, []).append(p)
    for pid, versions in by_id.items():
        versions.sort(key=lambda p: (p.effective_from, p.version))
        seen: dict[str, CompiledPolicy] = {}
        for p in versions:
            if p.version in seen:
                out.append(Diagnostic("duplicate-version", f"{pid} version {p.version} is also defined in "
                                      f"{seen[p.version].file}", file=p.file, line=_line(p, "version")))
            seen[p.version] = p
        dated = [p for p in versions if p.status != "draft"]
        for i, a in enumerate(dated):
            for b in dated[i + 1:]:
                a_end = a.effective_to or "9999-12-31"
                b_end = b.effective_to or "9999-12-31"
                if a.effective_from <= b_end and b.effective_from <= a_end:
                    out.append(Diagnostic(
                        "version-overlap",
                        f"{pid} {b.version} (from {b.effective_from}) overlaps {a.version} "
                        f"({a.effective_from} to {a.effective_to or 'open'}) in {a.file}",
                        file=b.file, line=_line(b, "effective_from"),
                        hint=f"end {a.version} the day before: effective_to: {_day_before(b.effective_from)}"
                        if a.effective_from < b.effective_from else
                        f"both start on {a.effective_from}: start {b.version} later (and end {a.version} the day "
                        "before it), or drop one"))
    return out


def version_gaps(policies: list[CompiledPolicy], unloaded: Iterable[str] = ()) -> list[Diagnostic]:
    """Days between two versions of one id when neither is in force: every decision or batch row dated then is
    refused (no-version-in-force), so ``validate`` and ``test`` refuse the registry, as they do an overlap. Selection
    by date does not: on the other days the registry decides as it should."""
    import datetime as dt
    import itertools

    out: list[Diagnostic] = []
    by_id: dict[str, list[CompiledPolicy]] = {}
    skipped = set(unloaded)  # ids with a version that does not load: its period is not known
    for p in policies:
        if p.status != "draft" and p.id not in skipped:
            by_id.setdefault(p.id, []).append(p)
    for pid, versions in by_id.items():
        versions.sort(key=lambda p: (p.effective_from, p.version))
        ends = "0000-00-00"  # the last day some earlier version is in force
        for a, b in itertools.pairwise(versions):
            ends = max(ends, a.effective_to or "9999-12-31")
            if ends == "9999-12-31" or dt.date.fromisoformat(ends) + dt.timedelta(days=1) >= \
                    dt.date.fromisoformat(b.effective_from):
                continue
            first = (dt.date.fromisoformat(ends) + dt.timedelta(days=1)).isoformat()
            last = _day_before(b.effective_from)
            out.append(Diagnostic(
                "version-gap", f"no version of {pid} is in force from {first} to {last}: {a.version} ends on {ends} "
                f"and {b.version} starts on {b.effective_from}, so a decision dated between is refused",
                file=b.file, line=_line(b, "effective_from"),
                hint=f"start {b.version} on {first}, or end {a.version} on {last}"))
    return out


def _line(p: CompiledPolicy, key: str) -> int | None:
    for i, line in enumerate(p.text.splitlines(), 1):
        if line.startswith(key + ":"):
            return i
    return None


def _day_before(day: str) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()


def _duplicate_version(candidates: list[PolicyHeader], version: str | None) -> Diagnostic | None:
    """Two files of one version (the one pinned, or any when chosen by date): the version names two policies, so a
    decision recording it could not be replayed from its name. ``validate`` and ``test`` refuse such a registry; a
    decision must not pick one of the two without a word."""
    seen: dict[str, PolicyHeader] = {}
    for p in sorted(candidates, key=lambda p: p.file):
        first = seen.setdefault(p.version, p)
        if first is not p and (version is None or version == p.version):
            return Diagnostic("duplicate-version", f"{p.id} version {p.version} is defined twice: in {first.file} and "
                              f"in {p.file}", file=p.file, line=p.version_line,
                              hint="give one of them another version (policy-X.Y.Z.yaml and version: X.Y.Z), or "
                                   "remove it; `policy-engine validate` lists every such problem")
    return None


class PolicyHeader(Frozen):
    file: str
    id: str
    version: str
    status: str
    effective_from: str
    effective_to: str | None
    version_line: int | None = None  # where an error about the file's version points
    effective_from_line: int | None = None

    def applies_on(self, day: str) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day <= self.effective_to)


_HEADER_LINE = re.compile(r"^(id|version|status|effective_from|effective_to):[ \t]*(.*?)[ \t]*(?:#.*)?$")


def read_header(path: Path) -> PolicyHeader | None:
    """The top-level header keys of a block-style policy file, or None when they cannot be read plainly.

    Selecting a version should not cost compiling every version; the chosen
    file is then compiled in full and its id and version cross-checked.
    """
    found: dict[str, str | None] = {}
    lines: dict[str, int] = {}
    try:
        with path.open(encoding="utf-8") as fh:
            for number, line in enumerate(fh, 1):
                m = _HEADER_LINE.match(line.rstrip("\n"))
                if m and m[1] not in found:
                    value = m[2].strip("'\"")
                    found[m[1]] = None if value in ("", "null", "~") else value
                    lines[m[1]] = number
    except (OSError, UnicodeDecodeError):
        return None
    need = ("id", "version", "status", "effective_from")
    if any(not found.get(k) for k in need):
        return None
    return PolicyHeader(str(path), found["id"] or "", found["version"] or "", found["status"] or "",
                        found["effective_from"] or "", found.get("effective_to"), lines.get("version"),
                        lines.get("effective_from"))


class Registry:
    """Policies found under one root, compiled on demand."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_root()
        if not self.root.is_dir():
            raise UsageError([Diagnostic("no-registry", f"policy directory '{self.root}' does not exist",
                                         hint=f"pass --policies DIR or set {ENV_VAR}")])
        self._loaded: list[CompiledPolicy] | None = None
        self._headers: list[PolicyHeader | None] | None = None
        self._compiled: dict[Path, CompiledPolicy] = {}  # by file: many dates select one version

    def policies(self) -> list[CompiledPolicy]:
        if self._loaded is None:
            loaded = []
            errors: list[Diagnostic] = []
            for f in policy_files([self.root]):
                try:
                    loaded.append(load_policy(f, named=False))
                except PolicyError as e:
                    errors.extend(e.diagnostics)
            if errors:
                raise PolicyError(errors)
            conflicts = version_conflicts(loaded)
            if conflicts:
                raise PolicyError(conflicts)
            self._loaded = loaded
        return self._loaded

    def headers(self) -> list[PolicyHeader]:
        """id, version, status and effective period of every policy file, without compiling them."""
        if self._headers is None:
            self._headers = [read_header(f) for f in policy_files([self.root])]
        return self._headers

    def select(self, policy_id: str, as_of: str | None = None, version: str | None = None) -> CompiledPolicy:
        """The version pinned, or the one in force on ``as_of``; only that file is compiled."""
        headers = self.headers()
        if any(h is None for h in headers):
            return self._select_compiled(policy_id, as_of, version)
        chosen = self._choose([h for h in headers if h is not None], policy_id, as_of, version)
        policy = self._compiled.get(chosen.file)
        if policy is None:
            policy = self._compiled[chosen.file] = load_policy(chosen.file, named=False)
        if (policy.id, policy.version) != (chosen.id, chosen.version):  # header scan misread: be exact
            return self._select_compiled(policy_id, as_of, version)
        return policy

    def _select_compiled(self, policy_id: str, as_of: str | None, version: str | None) -> CompiledPolicy:
        chosen = self._choose([PolicyHeader(p.file, p.id, p.version, p.status, p.effective_from, p.effective_to,
                                            _line(p, "version"), _line(p, "effective_from"))
                               for p in self.policies()], policy_id, as_of, version)
        return next(p for p in self.policies() if p.file == chosen.file)

    def _choose(self, headers: list[PolicyHeader], policy_id: str, as_of: str | None,
                version: str | None) -> PolicyHeader:
        candidates = [p for p in headers if p.id == policy_id]
        if not candidates and any(module_files([self.root / policy_id])):
            raise UsageError([_module_not_policy(f"'{policy_id}'", policy_id)])
        if not candidates:
            ids = sorted({p.id for p in headers})
            raise UsageError([Diagnostic("unknown-policy", f"no policy '{policy_id}' in {self.root}",
                                         hint=did_you_mean(policy_id, ids) or f"known: {', '.join(ids) or 'none'}")])
        twice = _duplicate_version(candidates, version)
        if twice is not None:
            raise PolicyError([twice])
        if version is not None:
            for p in candidates:
                if p.version == version:
                    return p
            raise UsageError([Diagnostic("unknown-version", f"{policy_id} has no version {version}",
                                         hint="versions: " + ", ".join(sorted(p.version for p in candidates)))])
        if as_of is None:
            import datetime as dt

            as_of = dt.date.today().isoformat()
        in_force = [p for p in candidates if p.status == "active" and p.applies_on(as_of)]
        if len(in_force) > 1:
            raise PolicyError([Diagnostic(
                "version-overlap", f"{policy_id} versions {', '.join(p.version for p in in_force)} are all in force "
                f"on {as_of}", file=in_force[1].file, line=in_force[1].effective_from_line,
                hint="run `policy-engine validate` and end one version earlier")])
        if not in_force:
            spans = ", ".join(f"{p.version}: {p.effective_from}..{p.effective_to or 'open'} ({p.status})"
                              for p in sorted(candidates, key=lambda p: p.effective_from))
            raise UsageError([Diagnostic("no-version-in-force", f"no active version of {policy_id} is in force on "
                                         f"{as_of}", hint=f"versions: {spans}; or pin one with --policy-version")])
        return in_force[0]


__all__ = ["CheckResult", "Registry", "check_paths", "load_policy", "policy_files", "sort_diagnostics"]
