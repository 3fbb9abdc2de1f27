"""Modules: definitions several policies share, imported by id and pinned version.

A module is a YAML file with ``kind: module``, an ``id``, a ``version``, a ``title`` and any of
``inputs``, ``parameters`` and ``metrics`` (the same sections as a policy's, schema
``module.schema.json``); it may import other modules. It lives in the registry folder beside the
policies, ``<registry>/<module-id>/module-<version>.yaml``, and is found from the importing file:
the folder above the importer's own folder is the registry. The pin, not ``status`` or dates,
selects the version; a module is never decided on its own.

``imports: [{module: ratio-library, version: 1.2.0, names: [ratio_al, leverage]}]`` brings in exactly the
names listed. Names are closed: a metric imported must find every name it reads imported too
(an input, a parameter or a metric of the same module, by any import of the file), so every name
a policy reads is either written in it or listed in its imports, and an auditor reading the
policy sees where each comes from. A local definition never stands in for a module's (that is a
clash); the same definition reached twice (directly and through another module) is one name.

What a decision depends on is the policy text and the texts of the modules it reaches. The
policy's ``sha256`` is the hash of its *bundle*: the policy text alone when it imports nothing
(so the hashes of existing policies are unchanged), else the policy text followed, for each
module reached (depth first in import order, each once), by a line
``NUL "module " id " " version " " sha256-of-its-text " " length LF`` and the module's text. The
audit store keeps the bundle as the policy snapshot, so replay re-decides from the module texts
used that day even when a module file is changed or deleted later; a module edited without a new
version changes the hash of every policy importing it.
"""

from __future__ import annotations

import hashlib
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, PolicyError, closest, did_you_mean, has_errors
from ..frozen import Frozen
from ..language import expressions as ex
from .loader import Document, PathKey, format_path

if TYPE_CHECKING:
    from .compiler import CompiledPolicy

MODULE_FILE = re.compile(r"^module-(\d+\.\d+\.\d+)\.ya?ml$")
MAX_IMPORT_DEPTH = 16  # modules importing modules: deeper chains are a design smell and a recursion risk
_MARK = "\x00module "


def is_module_file(path: Path) -> bool:
    return path.suffix in (".yaml", ".yml") and path.name.startswith("module")


class ModuleText(Frozen):
    """One module version as read: what the bundle and the audit snapshot hold."""

    id: str
    version: str
    file: str
    text: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def key(self) -> str:
        return f"{self.id}@{self.version}"


class ModuleSource(ABC):
    """Where imports are looked up: module id and version -> text (and what exists, for hints).

    Two kinds: a registry folder when a policy is validated, the stored bundle when it is replayed."""

    @abstractmethod
    def get(self, module_id: str, version: str) -> ModuleText | None: ...

    @abstractmethod
    def versions(self, module_id: str) -> list[str]: ...

    @abstractmethod
    def ids(self) -> list[str]: ...


class FolderModules(ModuleSource):
    """Modules in a registry folder: ``<root>/<module-id>/module-<version>.yaml``."""

    def __init__(self, root: Path):
        self.root = root

    def _file(self, module_id: str, version: str) -> Path | None:
        for suffix in (".yaml", ".yml"):
            f = self.root / module_id / f"module-{version}{suffix}"
            if f.is_file():
                return f
        return None

    def get(self, module_id: str, version: str) -> ModuleText | None:
        from .loader import _read_text

        if "/" in module_id or "\\" in module_id or module_id.startswith("."):
            return None  # the schema's pattern refuses these; never read outside the registry
        f = self._file(module_id, version)
        return None if f is None else ModuleText(module_id, version, str(f), _read_text(f))

    def versions(self, module_id: str) -> list[str]:
        folder = self.root / module_id
        if not folder.is_dir():
            return []
        return sorted(m[1] for f in folder.iterdir() if (m := MODULE_FILE.match(f.name)))

    def ids(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(d.name for d in self.root.iterdir() if d.is_dir() and self.versions(d.name))


class BundleModules(ModuleSource):
    """The module texts a bundle carries (a stored snapshot, a worker's copy)."""

    def __init__(self, modules: Iterable[ModuleText]):
        self.modules = {(m.id, m.version): m for m in modules}

    def get(self, module_id: str, version: str) -> ModuleText | None:
        return self.modules.get((module_id, version))

    def versions(self, module_id: str) -> list[str]:
        return sorted(v for i, v in self.modules if i == module_id)

    def ids(self) -> list[str]:
        return sorted({i for i, _ in self.modules})


def source_for(file: str) -> ModuleSource:
    """The registry an importing file sits in: the folder above its own folder."""
    # Kept relative when the file was named relatively: messages then name module files the same way.
    return FolderModules(Path(os.path.normpath(os.path.join(os.path.dirname(file) or ".", ".."))))


def bundle_text(policy_text: str, modules: Iterable[ModuleText]) -> str:
    """The policy text and the module texts it reaches, framed so :func:`split_bundle` gives them back."""
    parts = [policy_text]
    for m in modules:
        parts.append(f"{_MARK}{m.id} {m.version} {m.sha256} {len(m.text)}\n{m.text}")
    return "".join(parts)


def split_bundle(text: str, file: str = "<snapshot>") -> tuple[str, list[ModuleText]]:
    """(policy text, module texts) of a bundle; a plain policy text is a bundle of one."""
    head, sep, rest = text.partition(_MARK)
    if not sep:
        return text, []
    modules: list[ModuleText] = []
    while rest:
        header, _, rest = rest.partition("\n")
        fields = header.split(" ")
        if len(fields) != 4 or not fields[3].isdigit():
            raise _broken(file, f"bad module header {header[:80]!r}")
        mid, version, sha, length = fields[0], fields[1], fields[2], int(fields[3])
        body, rest = rest[:length], rest[length:]
        module = ModuleText(mid, version, f"<snapshot {mid}@{version}>", body)
        if module.sha256 != sha:
            raise _broken(file, f"module {mid}@{version}: its text does not match its sha256")
        modules.append(module)
        if rest and not rest.startswith(_MARK):
            raise _broken(file, f"text after module {mid}@{version}")
        rest = rest[len(_MARK):]
    return head, modules


def _broken(file: str, why: str) -> PolicyError:
    return PolicyError([Diagnostic("broken-bundle", f"the stored policy bundle is damaged: {why}", file=file,
                                   hint="run `policy-engine audit verify`")])


def compile_text(text: str, file: str) -> CompiledPolicy:
    """Compile a policy text or a bundle (policy plus module texts), as stored or shipped to a worker."""
    from .compiler import compile_document
    from .loader import load_yaml_text

    policy_text, modules = split_bundle(text, file)
    source = BundleModules(modules) if modules else None
    return compile_document(load_yaml_text(policy_text, file), modules=source)


# ------------------------------------------------------------------ the imports pass

SECTIONS = ("inputs", "parameters", "metrics")  # what a module defines and an import brings
# What makes two declarations of one scope the same scope: the list read, its parent, its key, its
# order (first_date reads it) and its unique fields (a module's counts rely on no element repeating). ``max``
# is not: it bounds the importer's records, and a module's definitions read every element whatever the bound.
SCOPE_IDENTITY = ("from", "parent", "key", "order_by", "unique")


def scope_identity(spec: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(spec.get(k) for k in SCOPE_IDENTITY)


def show_scope(spec: Mapping[str, Any]) -> str:
    """A scope declaration as its identity reads, for messages: {from: ..., parent: ...}."""
    def shown(v: Any) -> str:
        return "[" + ", ".join(map(str, v)) + "]" if isinstance(v, list) else str(v)

    return "{" + ", ".join(f"{k}: {shown(spec[k])}" for k in SCOPE_IDENTITY if spec.get(k) is not None) + "}"


class Definition(Frozen, eq=False):
    """One importable name: its authored spec, the module (and document) that wrote it, what it reads."""

    name: str
    section: str
    spec: Mapping[str, Any]
    doc: Document
    module: ModuleText
    reads: Mapping[str, tuple[str, str, str]]  # name read -> the identity of the definition it was checked with
    # The scopes it is declared in or aggregates over, with their ancestors, as its module declared
    # them (a scope is itself a Definition of section "scopes"): the importer declares the same or gets these.
    scopes: Mapping[str, Definition]

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.module.id, self.module.version, self.name)

    @property
    def origin(self) -> str:
        return f"{self.module.id} {self.module.version}"


class ModuleResult(Frozen, eq=False):
    """A module checked on its own: its problems, the names it offers, the modules it reaches."""

    module: ModuleText
    diagnostics: list[Diagnostic]
    defs: dict[str, Definition]
    reached: tuple[ModuleText, ...]
    kind: str | None  # what the file says it is ("module" when it is one)

    @property
    def ok(self) -> bool:
        return self.kind == "module" and not has_errors(self.diagnostics)


def check_module(module: ModuleText, source: ModuleSource, stack: tuple[tuple[str, str], ...],
                 memo: dict[tuple[str, str], ModuleResult]) -> ModuleResult:
    """Load and check one module on its own (its imports first), as an importer needs it."""
    from .compiler import check_module_document
    from .loader import load_yaml_text

    try:
        doc = load_yaml_text(module.text, module.file)
    except PolicyError as e:
        return ModuleResult(module, list(e.diagnostics), {}, (), "module")
    kind = doc.data.get("kind") if isinstance(doc.data, dict) else None
    if kind != "module":
        return ModuleResult(module, [], {}, (), str(kind) if kind else None)
    diags, defs, reached = check_module_document(doc, source, stack, memo, expect=(module.id, module.version))
    return ModuleResult(module, diags, defs, reached, "module")


def local_definitions(doc: Document, module: ModuleText, imported: Mapping[str, Definition],
                      scopes: Mapping[str, Definition]) -> dict[str, Definition]:
    """The names a module offers: those it imports (re-exported as they are), then its own.

    ``scopes`` are the scopes the module declares or imported; each definition carries those it needs.
    """
    from ..language.expressions import metric_references

    sections = {s: _mapping(doc.data, s) for s in SECTIONS}
    identity = {n: d.identity for n, d in imported.items()}
    identity.update({n: (module.id, module.version, n) for s in SECTIONS for n in sections[s]})
    out = dict(imported)
    for section in SECTIONS:
        for name, spec in sections[section].items():
            if not isinstance(spec, dict):
                continue  # refused by the schema: the module is invalid, and no importer reads it
            expr = str(spec.get("expr", "")) if section == "metrics" else ""
            reads = metric_references(expr, set(identity) - {name}) if expr else set()
            needed = metric_references(expr, set(scopes)) if expr else set()
            if isinstance(spec.get("scope"), str):
                needed.add(spec["scope"])
            out[name] = Definition(name, section, spec, doc, module, {r: identity[r] for r in sorted(reads)},
                                   _with_ancestors(needed, scopes))
    return out


def module_scopes(doc: Document, module: ModuleText, declared: Iterable[tuple[str, Any]],
                  imported: Mapping[str, Definition]) -> dict[str, Definition]:
    """A module's scope table: those it imported (as their modules declared them), then its own."""
    out = dict(imported)
    for name, spec in declared:
        if isinstance(spec, dict):
            out[name] = Definition(name, "scopes", spec, doc, module, {}, {})
    return out


def _with_ancestors(names: Iterable[str], scopes: Mapping[str, Definition]) -> dict[str, Definition]:
    out: dict[str, Definition] = {}
    todo = [n for n in names if n in scopes]
    while todo:
        n = todo.pop()
        if n in out:
            continue  # also stops a cycle of parents (reported in the module itself)
        out[n] = scopes[n]
        parent = scopes[n].spec.get("parent")
        if isinstance(parent, str) and parent in scopes:
            todo.append(parent)
    return dict(sorted(out.items()))


def _mapping(data: Any, section: str) -> Mapping[str, Any]:
    """A section as written when it is a mapping (the schema reports any other shape)."""
    value = data.get(section) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def imports_pass(c: Any) -> None:
    """Resolve ``imports``: check each module, bring in the names listed, refuse clashes and cycles.

    Runs first: the passes after it see imported inputs, parameters and metrics as if written in
    the file (ahead of its own), while ``c.origins`` keeps where each was written, so a problem
    inside an imported definition is reported at the module file's line and column.
    """
    if c.valid.unnamed(c.data, ("imports",)):
        # An import the schema refused brings names and scopes no check can know: none is unknown, and the
        # scopes' order_by and unique fields may be its inputs.
        c.open_names = c.open_scopes = True
    entries = c.entries("imports")
    if not entries:
        return
    source: ModuleSource = c.modules or source_for(c.doc.file)
    imported: dict[str, tuple[Definition, PathKey]] = {}
    unusable: set[str] = set()  # names listed that cannot come in: stand-ins keep later passes from cascading
    meant: set[str] = set()  # the names a misspelt one stands for ('mesure' for 'measure'): their errors follow
    offered: dict[tuple[str, str, str], Definition] = {}  # every definition the imported modules offer
    for i, entry in entries:
        result = _resolve(c, source, i, entry)
        if result is None:
            unusable.update(entry["names"])
            c.open_scopes = True  # the scopes it would bring are unknown: a rule naming one is no second error
            continue
        for m in (result.module, *result.reached):
            if all(r.key != m.key for r in c.reached):
                c.reached.append(m)
        for j, name in enumerate(entry["names"]):
            if not _bring(c, result, name, ("imports", i, "names", j), imported, meant):
                unusable.add(name)
        offered.update((d.identity, d) for d in result.defs.values())
        for name, d in result.defs.items():  # what the module offers and this file left out: named in an error
            c.unimported.setdefault(name, f"'{name}' is {_SECTION_WORDS.get(d.section, 'a name')} of {d.origin}, "
                                    f"left out of the import: add it to names of {format_path(('imports', i))}")
    unusable |= meant - set(imported)  # a use of 'measure' is no second error: the typo is reported once
    for name in _closed(c, imported, meant, offered):
        unusable.add(name)
        del imported[name]
    _merge(c, imported)
    _merge_scopes(c, imported)
    local = {n for section in SECTIONS for n in _mapping(c.doc.data, section)}
    for name in (*imported, *local):
        c.unimported.pop(name, None)
    for name in unusable - set(imported) - local:
        # Typed unknown, as a schema-invalid definition is: a use of the name is not another error,
        # so a failed import is reported once, at the import.
        c.symbols.setdefault(name, ex.Symbol(name, "metric", ex.UNKNOWN, True))


_SECTION_WORDS = {"inputs": "an input", "parameters": "a parameter", "metrics": "a metric", "scopes": "a scope"}


def _resolve(c: Any, source: ModuleSource, i: int, entry: Mapping[str, Any]) -> ModuleResult | None:
    mid, version = entry["module"], entry["version"]
    at: PathKey = ("imports", i, "module")
    key = (mid, version)
    if key in c.stack:
        cycle = [f"{a} {b}" for a, b in c.stack[c.stack.index(key):]] + [f"{mid} {version}"]
        c.err("import-cycle", f"modules import each other in a cycle: {' -> '.join(cycle)}", at,
              "move the definitions both need into a third module that imports neither")
        return None
    result = c.memo.get(key)
    if result is None and len(c.stack) >= MAX_IMPORT_DEPTH:
        c.err("import-too-deep", f"modules import modules more than {MAX_IMPORT_DEPTH} deep (MAX_IMPORT_DEPTH)", at,
              "flatten the chain: import the definitions from the module that writes them")
        return None
    if result is None:
        try:
            found = source.get(mid, version)
        except PolicyError as e:  # unreadable, too large, not UTF-8: located in the module file
            c.sink.items.extend(e.diagnostics)
            return None
        if found is None:
            _unknown(c, source, mid, version, i)
            return None
        result = c.memo[key] = check_module(found, source, (*c.stack, key), c.memo)
        c.sink.items.extend(result.diagnostics)  # once per module, however often it is imported
    if result.kind != "module":
        c.err("not-a-module", f"{result.module.file} is {'a ' + result.kind if result.kind else 'not a module'}; "
              f"imports name modules (kind: module)", at,
              "a policy is never imported; move the shared definitions into a module file")
        return None
    if not result.ok:
        first = next(d for d in result.diagnostics if d.severity == "error")
        c.err("module-invalid", f"module {mid} {version} is invalid: {first.code} at {first.file}:{first.line}:"
              f"{first.column}", at,
              "fix the module; its problems are listed at its own file")
        return None
    return result


def _unknown(c: Any, source: ModuleSource, mid: str, version: str, i: int) -> None:
    versions = source.versions(mid)
    if versions:
        c.err("unknown-module-version", f"module '{mid}' has no version {version}", ("imports", i, "version"),
              f"versions: {', '.join(versions)} (a pin names one exactly; there are no ranges)")
        return
    ids = source.ids()
    if not isinstance(source, FolderModules):
        c.err("unknown-module", f"no module '{mid}'", ("imports", i, "module"),
              did_you_mean(mid, ids) or (f"modules: {', '.join(ids)}" if ids else None))
        return
    # Imports are looked up in the registry the policy sits in: the folder above the policy's own folder.
    looked = source.root / mid / f"module-{version}.yaml"
    c.err("unknown-module", f"no module '{mid}': {looked} does not exist (a policy's imports are looked up in "
          "the folder above its own folder)", ("imports", i, "module"),
          did_you_mean(mid, ids) or (f"modules there: {', '.join(ids)}" if ids else
                                     "a policy outside a registry (a draft in a folder of its own) finds no module: "
                                     "keep it at <registry>/<policy-id>/policy-X.Y.Z.yaml, beside "
                                     f"<registry>/{mid}/"))


def _bring(c: Any, result: ModuleResult, name: str, place: PathKey,
           imported: dict[str, tuple[Definition, PathKey]], meant: set[str]) -> bool:
    """Bring one name in; False when the module does not define it (a name it does define that is close
    goes into ``meant``)."""
    d = result.defs.get(name)
    if d is None:
        close = closest(name, result.defs)
        if close is not None:
            meant.add(close)
        c.err("unknown-name", f"module {result.module.id} {result.module.version} defines no '{name}'", place,
              f"did you mean '{close}'?" if close else f"it offers: {', '.join(result.defs) or 'nothing'}")
        return False
    prev = imported.get(name)
    if prev is None:
        imported[name] = (d, place)
    elif prev[0].identity != d.identity:
        line, _ = c.doc.locate(prev[1])
        c.err("import-clash", f"'{name}' is imported from {d.origin} here and from {prev[0].origin} at "
              f"{c.doc.file}:{line} ({format_path(prev[1][:2])})", place,
              "import each name from one module; rename one of them in its module")
    return True


def _closed(c: Any, imported: Mapping[str, tuple[Definition, PathKey]], meant: set[str],
            offered: Mapping[tuple[str, str, str], Definition]) -> list[str]:
    """Every name an imported metric reads is imported too, as the module had it: nothing comes in unnamed.

    Returns the metrics that fail it (they are not brought in). A name missing because it was misspelt
    in ``names`` (in ``meant``) is reported there, once, not at each metric that reads it. The hint names
    what a missing name reads in turn, so one run lists every name to add.
    """
    failing = []
    missing: dict[str, list[tuple[str, Definition, PathKey]]] = {}  # a name not imported -> the metrics reading it
    for name, (d, place) in imported.items():
        if any(r not in imported or imported[r][0].identity != wanted for r, wanted in d.reads.items()):
            failing.append(name)
        for r, wanted in d.reads.items():
            if r in meant and r not in imported:
                continue
            if r not in imported:
                missing.setdefault(r, []).append((name, d, place))
            elif imported[r][0].identity != wanted:
                got = imported[r][0]
                c.err("import-version-conflict", f"imported metric '{name}' ({d.origin}) reads '{r}' of "
                      f"{wanted[0]} {wanted[1]}, but this file imports '{r}' from {got.origin}", place,
                      "import both from module versions that agree (one pin per module)")
    for r, readers in missing.items():  # one error per name left out, at the first metric that reads it
        _, d, place = readers[0]
        names = ", ".join(f"'{n}'" for n, _, _ in readers)
        further = _read_in_turn(d.reads[r], offered, imported)
        more = f" (and {', '.join(repr(n) for n in further)}, which it reads in turn)" if further else ""
        c.err("missing-import", f"imported metric{'s' if len(readers) > 1 else ''} {names} ({d.origin}) "
              f"read{'' if len(readers) > 1 else 's'} '{r}', which this file does not import", place,
              f"add '{r}'{more} to names of {format_path(place[:2])}; a definition of your own never stands in "
              "for a module's")
    return failing


def _read_in_turn(identity: tuple[str, str, str], offered: Mapping[tuple[str, str, str], Definition],
                  imported: Mapping[str, tuple[Definition, PathKey]]) -> list[str]:
    """The names a definition left out of the import reads, directly or through others, that are not imported
    either, in the order they are reached."""
    out: list[str] = []
    todo = [identity]
    while todo:
        d = offered.get(todo.pop(0))
        for n, wanted in (d.reads.items() if d is not None else ()):
            if n not in imported and n not in out and n != identity[2]:
                out.append(n)
                todo.append(wanted)
    return out


def _merge(c: Any, imported: Mapping[str, tuple[Definition, PathKey]]) -> None:
    """Imported definitions ahead of the file's own, section by section; a local one of the same name clashes."""
    data = dict(c.data)
    for section in SECTIONS:
        if section in data and not isinstance(data[section], dict):
            continue  # the wrong shape: the schema said so, and the section is left out of the checks
        local = data.get(section) or {}
        merged = {n: d.spec for n, (d, _) in imported.items() if d.section == section}
        for name in local:
            if name in imported:
                d, place = imported[name]
                line, _ = c.doc.locate(place)
                c.err("import-clash", f"'{name}' is defined here and imported from {d.origin} at "
                      f"{c.doc.file}:{line} ({format_path(place[:2])})", (section, name),
                      f"rename this {section[:-1]}, or drop '{name}' from the import")
        merged.update(local)
        if merged:
            data[section] = merged
        for n, (d, place) in imported.items():
            if d.section == section:
                c.origins[(section, n)] = d
                c.name_imports[(section, n)] = place
    c.data = data


def _merge_scopes(c: Any, imported: Mapping[str, tuple[Definition, PathKey]]) -> None:
    """The scopes imported definitions need: declared the same by the file, or brought in with their names.

    A module's scoped input reads a path inside each element of its scope and its aggregations
    read the elements in the scope's order, so the importer must read the same list, under the
    same parent, keyed and ordered the same: a different declaration is ``scope-conflict``, at the
    file's own declaration (or at the second import that needs another one). A scope the file
    does not declare comes in as the module declared it, errors located in the module.
    """
    needed: dict[str, tuple[Definition, PathKey]] = {}
    for d, place in imported.values():
        for name, sd in d.scopes.items():
            prev = needed.get(name)
            if prev is None:
                needed[name] = (sd, place)
            elif scope_identity(prev[0].spec) != scope_identity(sd.spec):
                line, _ = c.doc.locate(prev[1])
                c.err("scope-conflict", f"scope '{name}' is declared {show_scope(sd.spec)} by {sd.origin} "
                      f"({sd.doc.file}), but the definitions imported at {c.doc.file}:{line} need it as "
                      f"{show_scope(prev[0].spec)} ({prev[0].origin})", place,
                      "import from modules that declare the scope alike, or declare the definitions here")
    if not needed:
        return
    data = dict(c.data)
    raw = data.get("scopes")
    local = raw if isinstance(raw, dict) else {}
    merged = dict(local)
    for name, (sd, place) in needed.items():
        own = local.get(name)
        if name in local:
            if isinstance(own, dict) and scope_identity(own) != scope_identity(sd.spec):
                line, _ = sd.doc.locate(("scopes", name))
                c.err("scope-conflict", f"scope '{name}' is declared here as {show_scope(own)}, but "
                      f"{sd.origin} declares it as {show_scope(sd.spec)} ({sd.doc.file}:{line}), and the "
                      f"definitions imported at {format_path(place[:2])} read it so", ("scopes", name),
                      f"declare it as the module does: {name}: {show_scope(sd.spec)} (max may differ)")
            continue
        merged[name] = sd.spec
        c.origins[("scopes", name)] = sd
        c.scope_imports[name] = place
    if raw is not None and not isinstance(raw, dict):
        return  # the wrong shape: the schema said so, and the section is left out of the checks
    data["scopes"] = merged
    c.data = data
    c.scoped = True
