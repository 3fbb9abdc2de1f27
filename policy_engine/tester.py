"""Policy test cases: YAML files a policy team writes to pin a policy's behaviour.

A test file names the policy (and optionally the versions) it tests and lists
cases: a client (a sample file or inline), optional patches to it, and what is
expected (grade, the rule that decided it, warnings, actions, metrics, ...).
A malformed case or one with no expectation is an error, never a silent pass.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .compiler import CompiledPolicy
from .diagnostics import Diagnostic, DiagnosticSink, InputError, PolicyError, did_you_mean
from .evaluate import Decider
from .loader import Document, format_path, load_yaml_file, load_yaml_text, parse_json_text
from .registry import is_policy_file, load_policy, policy_files, read_header
from .validate import schema_errors

EXPECT_KEYS = (
    "grade", "decided_by", "scorecard_grade", "score", "floors", "floors_include", "warnings", "warnings_include",
    "warnings_exclude", "actions", "actions_include", "actions_exclude", "suppressed_include", "metrics",
    "undetermined_include", "restructuring", "action_params", "invalid_input",
)


@dataclass
class CaseResult:
    file: str
    name: str
    policy: str
    line: int | None
    failures: list[str] = field(default_factory=list)
    outcomes: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False)  # (kind, rule) -> fired
    asserted: dict[tuple[str, str], bool] = field(default_factory=dict, repr=False)  # what an expectation pinned

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "name": self.name, "policy": self.policy,
                "passed": self.passed, "failures": self.failures}


@dataclass
class SuiteResult:
    results: list[CaseResult] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    policies: dict[str, CompiledPolicy] = field(default_factory=dict, repr=False)  # key -> the version tested

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed

    @property
    def usage_only(self) -> bool:
        """Whether every diagnostic is a usage problem (nothing to run), not an invalid file."""
        return all(d.code in USAGE_CODES for d in self.diagnostics)

    def to_dict(self, with_coverage: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"passed": self.passed, "failed": self.failed,
                               "cases": [r.to_dict() for r in self.results],
                               "errors": [d.to_dict() for d in self.diagnostics]}
        if with_coverage:
            out["coverage"] = {key: c.to_dict() for key, c in coverage(self).items()}
        return out


# Diagnostics that mean "nothing was selected to run" (exit 2), not "a file is invalid" (exit 4).
USAGE_CODES = frozenset({"no-tests", "no-match"})


_PATCH_PART = re.compile(r"^([a-z_][a-z0-9_]*)((?:\[-?\d+\])*)$")


def apply_patch(record: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``record`` with ``{'loan.overdue_days': 91, 'financials[-1].net_income': -5}`` set."""
    out = copy.deepcopy(record)
    for path, value in patch.items():
        cur: Any = out
        steps: list[str | int] = []
        for part in path.split("."):
            m = _PATCH_PART.match(part)
            if not m:
                raise ValueError(f"bad patch path '{path}'")
            steps.append(m.group(1))
            steps.extend(int(i) for i in re.findall(r"-?\d+", m.group(2)))
        for step in steps[:-1]:
            cur = cur[step] if isinstance(step, int) else cur.setdefault(step, {})
        last = steps[-1]
        cur[last] = copy.deepcopy(value)
    return out


def _set_eq(label: str, want: Iterable[str], got: Iterable[str]) -> list[str]:
    w, g = set(want), set(got)
    if w == g:
        return []
    parts = []
    if w - g:
        parts.append(f"missing {sorted(w - g)}")
    if g - w:
        parts.append(f"unexpected {sorted(g - w)}")
    return [f"{label}: expected {sorted(w)}, got {sorted(g)} ({'; '.join(parts)})"]


def _num_eq(want: Any, got: Any) -> bool:
    if isinstance(want, dict):
        tol = want.get("tol", 1e-9)
        return got is not None and not isinstance(got, bool) and abs(got - want["approx"]) <= tol
    if want is None or got is None or isinstance(want, bool | str) or isinstance(got, bool | str):
        return want == got
    return math.isclose(want, got, rel_tol=1e-9, abs_tol=1e-12)


def check_expectations(expect: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """Every way ``record`` differs from ``expect``, as readable lines."""
    f: list[str] = []
    cls = record["classification"]
    if "grade" in expect and expect["grade"] != cls["grade"]:
        f.append(f"grade: expected '{expect['grade']}', got '{cls['grade']}' (decided by {cls['decided_by']}, "
                 f"score {record['score']['total']:g})")
    if "decided_by" in expect and expect["decided_by"] != cls["decided_by"]:
        f.append(f"decided_by: expected '{expect['decided_by']}', got '{cls['decided_by']}'")
    if "scorecard_grade" in expect and expect["scorecard_grade"] != record["score"]["grade"]:
        f.append(f"scorecard_grade: expected '{expect['scorecard_grade']}', got '{record['score']['grade']}' "
                 f"(score {record['score']['total']:g})")
    if "score" in expect and not _num_eq(expect["score"], record["score"]["total"]):
        f.append(f"score: expected {expect['score']}, got {record['score']['total']}")
    floors = [x["id"] for x in cls["floors"]]
    warnings = [w["id"] for w in record["warnings"]]
    actions = [a["id"] for a in record["actions"]]
    if "floors" in expect:
        f += _set_eq("floors", expect["floors"], floors)
    for key, got in (("floors_include", floors), ("warnings_include", warnings), ("actions_include", actions),
                     ("suppressed_include", [s["id"] for s in record["suppressed_actions"]]),
                     ("undetermined_include", [u["rule"] for u in record["undetermined"]])):
        missing = [x for x in expect.get(key, []) if x not in got]
        if missing:
            f.append(f"{key}: {missing} not in {sorted(got)}")
    for key, got in (("warnings_exclude", warnings), ("actions_exclude", actions)):
        present = [x for x in expect.get(key, []) if x in got]
        if present:
            f.append(f"{key}: {present} present but must not be")
    if "warnings" in expect:
        f += _set_eq("warnings", expect["warnings"], warnings)
    if "actions" in expect:
        f += _set_eq("actions", expect["actions"], actions)
    for name, want in (expect.get("metrics") or {}).items():
        if name not in record["metrics"]:
            f.append(f"metrics.{name}: no such metric")
        elif not _num_eq(want, record["metrics"][name]):
            f.append(f"metrics.{name}: expected {want}, got {record['metrics'][name]}")
    by_id = {a["id"]: a for a in record["actions"]}
    for aid, want in (expect.get("restructuring") or {}).items():
        a = by_id.get(aid)
        if a is None:
            f.append(f"restructuring.{aid}: action not recommended")
        elif "restructuring" not in a:
            f.append(f"restructuring.{aid}: action has no restructuring consequence")
        elif a["restructuring"]["is_restructuring"] != want:
            f.append(f"restructuring.{aid}: expected {want}, got {a['restructuring']['is_restructuring']}")
    for aid, params in (expect.get("action_params") or {}).items():
        a = by_id.get(aid)
        if a is None:
            f.append(f"action_params.{aid}: action not recommended")
            continue
        for k, v in params.items():
            got = a["params"].get(k)
            same = got == v if isinstance(v, list | str) else _num_eq(v, got)
            if k not in a["params"] or not same:
                f.append(f"action_params.{aid}.{k}: expected {v}, got {a['params'].get(k)}")
    return f


def _load_client(ref: Any, base: Path) -> Any:
    if isinstance(ref, dict):
        return ref
    path = (base / ref).resolve()
    return parse_json_text(path.read_bytes())


def find_test_files(path: Path) -> list[Path]:
    """Test files under a policy directory: YAML files in it that are not policies."""
    if path.is_file():
        return [] if is_policy_file(path) else [path]
    return sorted(f for f in path.rglob("*.y*ml") if f.is_file() and not is_policy_file(f))


def run_tests(paths: Iterable[str | Path], only: str | None = None) -> SuiteResult:
    """Run every test file found under ``paths`` against the policies found there.

    A case that is malformed or names what the policy does not have is reported with its line and not
    run; the file's other cases still run. ``only`` matching no case is a ``no-match`` diagnostic.
    """
    run = SuiteResult()
    policies: list[CompiledPolicy] = []
    test_files: list[Path] = []
    known: dict[str, set[str]] = {}  # policy id -> every version in the directories searched
    for p in paths:
        path = Path(p)
        if not path.exists():
            run.diagnostics.append(Diagnostic("file-missing", f"no such file or directory: {path}", file=str(path)))
            continue
        root = path if path.is_dir() else path.parent
        if path.is_file() and not is_policy_file(path) and not any(policy_files([root])):
            root = root.parent  # a file of a policy's tests/ folder: its policies are one level up
        for f in policy_files([root]):
            header = read_header(f)
            if header is not None:
                known.setdefault(header.id, set()).add(header.version)
        for f in policy_files([root] if path.is_dir() else
                              ([path] if is_policy_file(path) else list(policy_files([root])))):
            try:
                policies.append(load_policy(f))
            except PolicyError as e:
                run.diagnostics.extend(e.diagnostics)
        if path.is_dir():
            test_files += find_test_files(path)
        elif not is_policy_file(path):
            test_files.append(path)
        else:
            pol = policies[-1] if policies else None
            if pol is not None and pol.tests_path:
                test_files += find_test_files(path.parent / pol.tests_path)
    for pol in policies:
        known.setdefault(pol.id, set()).add(pol.version)
    seen: set[Path] = set()
    deciders: dict[str, Decider] = {}
    selected = 0
    for tf in test_files:
        if tf.resolve() in seen:
            continue
        seen.add(tf.resolve())
        selected += _run_file(tf, policies, known, deciders, run, only)
    if not test_files and not run.diagnostics:
        run.diagnostics.append(Diagnostic("no-tests", "no test files found", hint="test cases are YAML files next to "
                                          "the policy (see policies/loss-client-management/tests)"))
    elif only is not None and selected == 0:
        run.diagnostics.append(Diagnostic("no-match", f"no case name contains {only!r} (-k)",
                                          hint="`policy-engine test -v` lists every case name"))
    return run


def _case_errors(diags: list[Diagnostic]) -> tuple[dict[int, list[Diagnostic]], list[Diagnostic]]:
    """Schema problems split into those of one case (by index) and those of the file as a whole."""
    per_case: dict[int, list[Diagnostic]] = {}
    whole: list[Diagnostic] = []
    for d in diags:
        m = re.match(r"^cases\[(\d+)\]", d.path or "")
        if m:
            per_case.setdefault(int(m.group(1)), []).append(d)
        else:
            whole.append(d)
    return per_case, whole


def _run_file(tf: Path, policies: list[CompiledPolicy], known: Mapping[str, set[str]], deciders: dict[str, Decider],
              run: SuiteResult, only: str | None) -> int:
    """Run one test file's valid cases into ``run``; return how many cases ``only`` selected."""
    try:
        doc = load_yaml_file(tf)
    except PolicyError as e:
        run.diagnostics.extend(e.diagnostics)
        return 0
    sink = DiagnosticSink(file=str(tf))
    schema_errors(doc, "policy-tests", sink)
    per_case, whole = _case_errors(sink.items)
    if whole:  # the file's own keys are wrong: no case can be trusted to belong to this policy
        run.diagnostics.extend(sink.items)
        return 0
    run.diagnostics.extend(d for ds in per_case.values() for d in ds)
    data = doc.data
    pid = data["policy"]
    for j, v in enumerate(data.get("versions") or []):
        if pid in known and v not in known[pid]:  # (an unknown policy is reported once, below)
            run.diagnostics.append(_unknown_version(doc, str(tf), pid, v, ("versions", j), known))
    targets = [p for p in policies if p.id == pid and (not data.get("versions") or p.version in data["versions"])]
    if not targets:
        line, col = doc.locate(("policy",))
        versions = f"versions {', '.join(data['versions'])} " if data.get("versions") else ""
        run.diagnostics.append(Diagnostic("unknown-policy", f"no policy '{pid}' {versions}"
                                          "was loaded next to this test file", file=str(tf), line=line, column=col,
                                          hint=did_you_mean(pid, sorted(known))))
        return 0
    valid = {i: case for i, case in enumerate(data["cases"]) if i not in per_case}
    broken = set(per_case)
    for i, case in valid.items():
        for j, v in enumerate(case.get("versions") or []):
            if pid in known and v not in known[pid]:  # pinned to a version that is gone: it would never run again
                run.diagnostics.append(_unknown_version(doc, str(tf), pid, v, ("cases", i, "versions", j), known))
                broken.add(i)
    unknown = _unknown_names(doc, valid, targets, str(tf))
    run.diagnostics.extend(unknown)
    broken |= {int(m.group(1)) for d in unknown if (m := re.match(r"^cases\[(\d+)\]", d.path or ""))}
    selected = 0
    for i, case in enumerate(data["cases"]):
        name = case.get("name") if isinstance(case, dict) else None
        if only and (not isinstance(name, str) or only not in name):
            continue
        selected += 1
        if i in broken:  # reported above with its line; the other cases still run
            continue
        for policy in targets:
            if case.get("versions") and policy.version not in case["versions"]:
                continue
            run.policies[policy.key] = policy
            run.results.append(_run_case(tf, doc, i, case, policy, deciders))
    return selected


def _unknown_version(doc: Document, file: str, pid: str, version: str, at: tuple[Any, ...],
                     known: Mapping[str, set[str]]) -> Diagnostic:
    line, col = doc.locate(at)
    versions = sorted(known.get(pid, set()))
    return Diagnostic("unknown-version", f"policy '{pid}' has no version '{version}' in the registry", file=file,
                      line=line, column=col, path=format_path(at),
                      hint=did_you_mean(version, versions) or f"versions: {', '.join(versions) or 'none'}")


_ID_LISTS = {  # expectation key -> the kind of rule its ids name
    "warnings": "warning", "warnings_include": "warning", "warnings_exclude": "warning",
    "actions": "action", "actions_include": "action", "actions_exclude": "action", "suppressed_include": "action",
    "floors": "floor", "floors_include": "floor", "undetermined_include": "rule",
}
_ID_MAPS = {"metrics": "metric", "restructuring": "action", "action_params": "action"}
_ID_VALUES = {"grade": "grade", "scorecard_grade": "grade", "decided_by": "decider"}


def _unknown_names(doc: Document, cases: Mapping[int, Mapping[str, Any]], targets: list[CompiledPolicy],
                   file: str) -> list[Diagnostic]:
    """Expectations naming a warning, action, rule, metric or grade the policy does not have.

    ``warnings_exclude: [overdu]`` would pass for ever, and ``warnings: [overdu]`` fail with a
    puzzling message; both are errors of the test file, located, with did-you-mean.
    """
    names: dict[str, set[str]] = {k: set() for k in ("warning", "action", "floor", "metric", "grade")}
    for p in targets:
        names["warning"] |= {w.id for w in p.warnings}
        names["action"] |= {a.id for a in p.actions}
        names["floor"] |= {r.id for r in p.floors}
        names["metric"] |= {m.name for m in p.metrics}
        names["grade"] |= set(p.grade_ids)
    names["rule"] = names["warning"] | names["action"] | names["floor"]
    bases = sorted({p.base_decider for p in targets})  # 'scorecard', or 'default' for a policy without one
    names["decider"] = names["floor"] | set(bases)
    out = []

    def check(kind: str, value: Any, at: tuple[Any, ...]) -> None:
        if not isinstance(value, str) or value in names[kind]:
            return
        line, col = doc.locate(at)
        deciders = " / ".join(f"'{b}'" for b in bases)
        what = {"rule": "rule", "decider": f"floor rule (or {deciders})"}.get(kind, kind)
        out.append(Diagnostic("unknown-name", f"the policy has no {what} '{value}'", file=file, line=line,
                              column=col, path=format_path(at), hint=did_you_mean(value, sorted(names[kind]))))

    reads = {"as_of", "client_id"} | {i.source for p in targets for i in p.inputs}
    for i, case in cases.items():
        for path in case.get("patch") or {}:
            if not isinstance(path, str) or _patch_reaches(path, reads, case.get("client"), Path(file).parent):
                continue
            line, col = doc.locate(("cases", i, "patch", path))
            out.append(Diagnostic("unknown-name", f"patch path '{path}' is neither a field the policy reads nor one of "
                                  "the client's: the patch would change nothing", file=file, line=line, column=col,
                                  path=format_path(("cases", i, "patch", path)),
                                  hint=did_you_mean(_series_path(path), sorted(reads))))
        expect = case.get("expect") or {}
        for key, kind in _ID_LISTS.items():
            for j, value in enumerate(expect.get(key) or []):
                check(kind, value, ("cases", i, "expect", key, j))
        for key, kind in _ID_MAPS.items():
            for name in expect.get(key) or {}:
                check(kind, name, ("cases", i, "expect", key, name))
        for key, kind in _ID_VALUES.items():
            if key in expect:
                check(kind, expect[key], ("cases", i, "expect", key))
    return out


def _series_path(path: str) -> str:
    """``financials[-1].net_income`` as the policy writes it: ``financials[*].net_income``."""
    return re.sub(r"\[-?\d+\]", "[*]", path)


def _patch_reaches(path: str, reads: set[str], client_ref: Any, base: Path) -> bool:
    """Whether patching ``path`` can matter: the policy reads it (or a field under it), or the client has it."""
    series = _series_path(path)
    if any(r == series or r.startswith(series + ".") or r.startswith(series + "[") for r in reads):
        return True
    try:
        cur: Any = _load_client(client_ref, base)
        for part in path.split("."):
            m = _PATCH_PART.match(part)
            if m is None or not isinstance(cur, dict) or m.group(1) not in cur:
                return False
            cur = cur[m.group(1)]
            for k in re.findall(r"-?\d+", m.group(2)):
                cur = cur[int(k)]
        return True
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return True  # the case run reports a client it cannot build


def _run_case(tf: Path, doc: Document, i: int, case: Mapping[str, Any], policy: CompiledPolicy,
              deciders: dict[str, Decider]) -> CaseResult:
    line, _ = doc.locate(("cases", i))
    result = CaseResult(str(tf), case["name"], policy.key, line)
    decider = deciders.get(policy.key)
    if decider is None:
        decider = deciders[policy.key] = Decider(policy)
    try:
        client = _load_client(case["client"], tf.parent)
        if case.get("patch"):
            client = apply_patch(client, case["patch"])
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        result.failures.append(f"cannot build the client: {exc} [at {format_path(('cases', i, 'client'))}]")
        return result
    expect = case["expect"]
    try:
        record = decider.decide(client, as_of=case.get("as_of"))
    except InputError as e:
        if "invalid_input" in expect:
            got = {d.path or "" for d in e.diagnostics}
            missing = [p for p in expect["invalid_input"] if p not in got]
            if missing:
                result.failures.append(f"invalid_input: expected problems at {missing}, got {sorted(got)}")
        else:
            result.failures.append("client data rejected: " + "; ".join(d.render() for d in e.diagnostics))
        return result
    if "invalid_input" in expect:
        result.failures.append("invalid_input: expected the client to be rejected, but it was decided")
        return result
    result.failures.extend(check_expectations(expect, record))
    result.outcomes = rule_outcomes(policy, record)
    if result.passed:  # a failing case pins nothing: which of its expectations held is no evidence
        result.asserted = asserted_outcomes(policy, expect, result.outcomes)
    return result


def rule_outcomes(policy: CompiledPolicy, record: Mapping[str, Any]) -> dict[tuple[str, str], bool]:
    """For one decision, whether each rule fired (True) or evaluated and did not (False); undetermined rules
    are left out: a null condition shows neither."""
    out: dict[tuple[str, str], bool] = {}
    undetermined = {(u["kind"], u["rule"]) for u in record["undetermined"]}
    fired_floors = {f["id"] for f in record["classification"]["floors"]}
    for r in policy.floors:
        if ("classification", r.id) not in undetermined:
            out[("floor", r.id)] = r.id in fired_floors
    fired_warnings = {w["id"] for w in record["warnings"]}
    for w in policy.warnings:
        if ("warning", w.id) not in undetermined:
            out[("warning", w.id)] = w.id in fired_warnings
    fired_actions = {a["id"] for a in record["actions"]} | {a["id"] for a in record["suppressed_actions"]}
    for a in policy.actions:
        if ("action", a.id) not in undetermined:
            out[("action", a.id)] = a.id in fired_actions
    for f, got in zip(policy.factors, record["score"]["factors"], strict=True):
        for b in f.bands:
            out[("band", f"{f.id} {b.label()}")] = got["band"] == b.label()
        if f.expr.nullable:  # a factor over a required input is never missing
            out[("band", f"{f.id} missing")] = got["band"] is None
    for m in policy.metrics:
        v = record["metrics"][m.name]
        if m.expr.type == "bool":
            out[("metric", m.name)] = bool(v) if v is not None else False
        elif m.expr.nullable:  # fired: has a value; not fired: null (a number that cannot be null is left out)
            out[("metric", m.name)] = v is not None
    return out


def asserted_outcomes(policy: CompiledPolicy, expect: Mapping[str, Any],
                      outcomes: Mapping[tuple[str, str], bool]) -> dict[tuple[str, str], bool]:
    """The rule outcomes of one decision (``outcomes``) that its case's expectation pins and that held.

    A rule is pinned firing by ``*_include``, an id in an exact list, ``decided_by``, ``restructuring`` or
    ``action_params``; pinned not firing by ``*_exclude``, its absence from an exact list (``floors``,
    ``warnings``, ``actions``), or for a floor, an expected ``grade`` better than the floor's grade. A metric is
    pinned by its expected value (a boolean, or null against a value); scorecard bands by an expected ``score``,
    which any band change would move. What a case merely exercises is not pinned.
    """
    out: dict[tuple[str, str], bool] = {}

    def pin(kind: str, rule: str, fired: bool) -> None:
        out.setdefault((kind, rule), fired)

    if "floors" in expect:
        for r in policy.floors:
            pin("floor", r.id, r.id in expect["floors"])
    for fid in expect.get("floors_include", []):
        pin("floor", fid, True)
    if expect.get("decided_by") not in (None, "scorecard"):
        pin("floor", expect["decided_by"], True)
    if expect.get("grade") in policy.grade_ids:
        rank = policy.grade_ids.index(expect["grade"])
        for r in policy.floors:
            if r.rank > rank:  # had it fired, the grade would be worse
                pin("floor", r.id, False)
    for kind, exact, include, exclude in (("warning", "warnings", "warnings_include", "warnings_exclude"),
                                          ("action", "actions", "actions_include", "actions_exclude")):
        if exact in expect:
            for rid in (w.id for w in policy.warnings) if kind == "warning" else (a.id for a in policy.actions):
                pin(kind, rid, rid in expect[exact])
        for rid in expect.get(include, []):
            pin(kind, rid, True)
        for rid in expect.get(exclude, []):
            pin(kind, rid, False)
    for key in ("suppressed_include",):
        for rid in expect.get(key, []):
            pin("action", rid, True)
    for key in ("restructuring", "action_params"):
        for rid in expect.get(key) or {}:
            pin("action", rid, True)
    kinds = {m.name: m for m in policy.metrics}
    for name, want in (expect.get("metrics") or {}).items():
        m = kinds.get(name)
        if m is None:
            continue
        if m.expr.type == "bool":
            if isinstance(want, bool):
                pin("metric", name, want)
        elif m.expr.nullable:
            pin("metric", name, want is not None)
    if "score" in expect:
        for key, fired in outcomes.items():
            if key[0] == "band":
                pin(*key, fired)
    return {key: fired for key, fired in out.items() if outcomes.get(key) == fired}  # a pin counts where it held


@dataclass
class RuleCoverage:
    """One rule's coverage: what the cases exercised, and what their expectations pinned."""

    kind: str
    rule: str
    fired: bool
    not_fired: bool
    asserted_fired: bool = False
    asserted_not_fired: bool = False
    file: str | None = None
    line: int | None = None

    @property
    def covered(self) -> bool:
        return self.asserted_fired and self.asserted_not_fired

    @property
    def status(self) -> str:
        """covered (pinned both ways), incidental (exercised both ways, not pinned) or uncovered."""
        if self.covered:
            return "covered"
        return "incidental" if self.fired and self.not_fired else "uncovered"

    @property
    def missing(self) -> str:
        """What is missing, in words: an outcome no case produced, or one no expectation pins."""
        parts = []
        for pinned, happened, never, unpinned in (
                (self.asserted_fired, self.fired, "never fired", "no case expects it to fire"),
                (self.asserted_not_fired, self.not_fired, "never not fired", "no case expects it not to fire")):
            if not pinned:
                parts.append(unpinned if happened else never)
        return "; ".join(parts)

    @property
    def place(self) -> str:
        return f"{self.file}:{self.line}" if self.file and self.line else (self.file or "")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule, "status": self.status, "file": self.file, "line": self.line,
                "fired": self.fired, "not_fired": self.not_fired, "asserted_fired": self.asserted_fired,
                "asserted_not_fired": self.asserted_not_fired, "missing": self.missing or None}


@dataclass
class PolicyCoverage:
    """One policy version's rules and their coverage; iterates over the rules."""

    policy: str
    rules: list[RuleCoverage]

    def __iter__(self) -> Iterator[RuleCoverage]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def covered(self) -> int:
        return sum(r.covered for r in self.rules)

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / max(len(self.rules), 1)

    def to_dict(self) -> dict[str, Any]:
        return {"covered": self.covered, "rules": len(self.rules), "percent": round(self.percent, 2),
                "incidental": [r.to_dict() for r in self.rules if r.status == "incidental"],
                "uncovered": [r.to_dict() for r in self.rules if r.status == "uncovered"]}


def rule_locations(policy: CompiledPolicy) -> dict[tuple[str, str], int | None]:
    """The line of each rule (in :func:`rule_outcomes` keys) in the policy's own text."""
    doc = load_yaml_text(policy.text, policy.file)
    data = doc.data
    out: dict[tuple[str, str], int | None] = {}

    def by_id(items: Any, kind: str, at: tuple[Any, ...]) -> None:
        for i, item in enumerate(items or []):
            if isinstance(item, dict) and "id" in item:
                out[(kind, str(item["id"]))] = doc.locate((*at, i))[0]

    by_id((data.get("classification") or {}).get("rules"), "floor", ("classification", "rules"))
    by_id(data.get("warnings"), "warning", ("warnings",))
    by_id(data.get("actions"), "action", ("actions",))
    for name in data.get("metrics") or {}:
        out[("metric", str(name))] = doc.locate(("metrics", name))[0]
    raw_factors = {str(f.get("id")): i for i, f in enumerate((data.get("scorecard") or {}).get("factors") or [])
                   if isinstance(f, dict)}
    for f in policy.factors:
        fi = raw_factors.get(f.id)
        if fi is None:
            continue
        at = ("scorecard", "factors", fi)
        for bi, b in enumerate(f.bands):
            out[("band", f"{f.id} {b.label()}")] = doc.locate((*at, "bands", bi))[0]
        out[("band", f"{f.id} missing")] = doc.locate((*at, "missing_points"))[0]
    return out


def coverage(run: SuiteResult) -> dict[str, PolicyCoverage]:
    """Per policy version: every rule, what the cases exercised, and what their expectations pinned both ways."""
    seen: dict[str, dict[tuple[str, str], set[bool]]] = {}
    pinned: dict[str, dict[tuple[str, str], set[bool]]] = {}
    for r in run.results:
        per = seen.setdefault(r.policy, {})
        for key, fired in r.outcomes.items():
            per.setdefault(key, set()).add(fired)
        pins = pinned.setdefault(r.policy, {})
        for key, fired in r.asserted.items():
            pins.setdefault(key, set()).add(fired)
    out: dict[str, PolicyCoverage] = {}
    for key, rules in seen.items():
        policy = run.policies.get(key)
        lines = rule_locations(policy) if policy is not None else {}
        pins = pinned.get(key, {})
        out[key] = PolicyCoverage(key, [
            RuleCoverage(kind, rule, True in values, False in values, True in pins.get((kind, rule), ()),
                         False in pins.get((kind, rule), ()), policy.file if policy is not None else None,
                         lines.get((kind, rule)))
            for (kind, rule), values in sorted(rules.items())])
    return out
