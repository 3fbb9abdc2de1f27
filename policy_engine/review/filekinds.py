"""What a YAML file given to ``validate`` is: a policy, a policy test file or a stress scenario.

Checked as a policy, a test file or a scenario gives a dozen schema errors about keys a policy
needs, none of them the real answer ("this is a test file"). The kind is read from the file's
schema modeline when it has one, else from its top-level keys; each kind is checked as what it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..diagnostics import Diagnostic, DiagnosticSink, PolicyError, has_errors
from ..policy.kinds import MODELINE, Kind, kind_of
from ..policy.loader import Document, load_yaml_file
from ..policy.validate import schema_errors

if TYPE_CHECKING:
    from ..policy.compiler import CompiledPolicy
    from ..policy.registry import CheckResult



def check_other(path: Path, doc: Document, kind: Kind, named: bool = True) -> list[Diagnostic]:
    """A test file or a scenario checked on its own, and (``named``: the file was given by name) the command
    that checks the rest."""
    sink = DiagnosticSink(file=str(path))
    if kind == "policy-tests":
        schema_errors(doc, "policy-tests", sink)
        if not named:
            return sink.items
        sink.items.append(Diagnostic(
            "policy-test-file", "this is a policy test file: its shape was checked here", file=str(path),
            severity="info", hint=f"`policy-engine test {path}` runs its cases against the policy and checks the "
                                  "names its expectations use"))
        return sink.items
    from .scenario import load_scenario

    try:
        load_scenario(path)
    except PolicyError as e:
        sink.items.extend(e.diagnostics)
    if not named:
        return sink.items
    sink.items.append(Diagnostic(
        "scenario-file", "this is a stress scenario: its shape was checked here", file=str(path), severity="info",
        hint=f"`policy-engine simulate POLICY --portfolio FILE --scenario {path}` checks its fields against the "
             "policy"))
    return sink.items


def check_test_file(path: Path, doc: Document, registry: Path | None = None) -> list[Diagnostic]:
    """A test file given by name: its shape, then the names its expectations use against the policies `test` runs
    it against (the folder above it, else the ``registry``'s folder of the policy it names), as ``validate`` of its
    folder checks them. When those cannot be read, a warning says only its shape was checked: an ok alone was
    read as the names checked too, and a misspelt warning id waited for the test run."""
    from ..policy.registry import check_paths, is_policy_file
    from .tester import expectation_problems, policy_root

    found = check_other(path, doc, "policy-tests", named=False)
    run = f"`policy-engine test {path}` runs its cases"
    if has_errors(found):  # a file whose shape is wrong names nothing to trust: its shape errors say enough
        return [*found, Diagnostic("policy-test-file", "this is a policy test file: its shape was checked here",
                                   file=str(path), severity="info", hint=run)]
    root = policy_root(path, registry)
    # a policy's folder only: the folder above a test file kept anywhere else may be a home folder to scan whole
    checked = [r for r in check_paths([root]) if r.what == "policy"] if root.is_dir() and any(
        is_policy_file(f) for f in root.iterdir() if f.is_file()) else []
    broken = next((r.file for r in checked if r.policy is None), None)
    if not checked or broken is not None:
        why = (f"{broken} does not load" if broken is not None else
               f"no policy is in {root}, where `test` looks for it (the folder above the test file, else the "
               "registry's folder of the policy it names)")
        return [*found, Diagnostic(
            "names-unchecked", f"only the shape of this policy test file was checked, not the names its expectations "
            f"use: {why}", file=str(path), severity="warning",
            hint=f"`policy-engine validate {root}` says why it does not load" if broken is not None else
            "keep it in a policy's tests/ folder, or name the registry that holds its policy with --policies DIR")]
    problems = expectation_problems(doc, str(path), [r.policy for r in checked if r.policy is not None])
    return [*found, *problems, Diagnostic(
        "policy-test-file", f"this is a policy test file: its shape and the names its expectations use were checked "
        f"against the policies in {root}", file=str(path), severity="info", hint=run)]


def load_kind(path: Path) -> tuple[Kind, Document | None, list[Diagnostic]]:
    """The file's kind, its document, and the problems of reading it (a file that is not YAML)."""
    try:
        doc = load_yaml_file(path)
    except PolicyError as e:
        return "policy", None, e.diagnostics
    return kind_of(doc), doc, []


def folder_files(folder: Path) -> list[tuple[Path, Kind, Document | None, list[Diagnostic]]]:
    """The YAML files of a policies folder that are neither policies nor modules (test files, scenarios), each
    with its kind: ``validate`` of the folder checks them as ``test`` will read them. A file shaped like a
    policy but not named as one is neither loaded nor run: it is said."""
    from ..policy.modules import is_module_file
    from ..policy.registry import is_policy_file

    out = []
    for f in sorted(f for f in folder.rglob("*.y*ml") if f.is_file()):
        if is_policy_file(f) or is_module_file(f):
            continue
        kind, doc, problems = load_kind(f)
        if doc is not None and kind == "policy" and MODELINE.search(doc.text.split("\n", 1)[0] or "") is None \
                and not (isinstance(doc.data, dict) and {"id", "version"} <= doc.data.keys()):
            kind = "policy-tests"  # no modeline, not a policy's shape: `test` reads it as a test file
            if is_stray(doc):
                # nothing of any kind (notes.yaml, a CI file): said as such, not as a test file missing 'cases'
                doc, problems = None, [stray_file(f)]
        out.append((f, kind, doc, problems))
    return out


# The keys that say what a file is; a key near one (polcy, casess) is a misspelt file of that kind, not a stray one
_TELLING_KEYS = ("policy", "cases", "versions", "kind", "id", "version", "shocks", "scenario")


def is_stray(doc: Document) -> bool:
    """A document with nothing of a policy, module, test file or scenario (notes.yaml, a CI file)."""
    from ..diagnostics import closest

    if not isinstance(doc.data, dict):
        return not isinstance(doc.data, list)  # a list: a test file's shape gone wrong, said by its schema
    return not any(str(k) in _TELLING_KEYS or closest(str(k), _TELLING_KEYS) for k in doc.data)


def stray_file(path: Path) -> Diagnostic:
    return Diagnostic("unknown-file-kind", f"{path.name} is no policy, module, test file or scenario, and every YAML "
                      "file under the policies folder is read as one of them", file=str(path), line=1,
                      hint="move it out of the policies folder, or give it another extension (notes.md)")


def unnamed_policy(path: Path) -> Diagnostic:
    return Diagnostic("policy-not-loaded", f"{path.name} reads as a policy, but only files named policy-*.yaml are "
                      "loaded as policies: this one is neither validated nor decided", file=str(path),
                      severity="warning", hint="rename it policy-X.Y.Z.yaml (its version), or move it out of the "
                                               "policies folder")


def check_folder_files(folder: Path, policies: Sequence[CompiledPolicy] | None = None) -> list[CheckResult]:
    """Each test file and scenario of a policies folder checked as what it is (``validate`` of the folder); a
    test file's expectations also against ``policies`` (None: not checked), as ``test`` checks them: none at all
    is a test file of no policy loaded (``unknown-policy``)."""
    from ..policy.registry import CheckResult

    out = []
    for f, kind, doc, problems in folder_files(folder):
        if doc is None:
            out.append(CheckResult(str(f), problems, None, kind="policy-tests"))
        elif kind == "policy":
            out.append(CheckResult(str(f), [unnamed_policy(f)], None, kind="policy"))
        else:
            found = check_other(f, doc, kind, named=False)
            if kind == "policy-tests" and policies is not None and not found:
                from .tester import expectation_problems

                found = expectation_problems(doc, str(f), list(policies))
            out.append(CheckResult(str(f), found, None, kind=kind))
    return out
