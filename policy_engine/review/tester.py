"""Policy test cases: YAML files a policy team writes to pin a policy's behaviour.

A test file names the policy (and optionally the versions) it tests and lists
cases: a client (a sample file or inline), optional patches to it, and what is
expected (grade, the rule that decided it, warnings, actions, metrics, ...).
A malformed case or one with no expectation is an error, never a silent pass.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..decide.evaluate import Decider
from ..diagnostics import Diagnostic, DiagnosticSink, InputError, PolicyError, closest, did_you_mean
from ..policy.compiler import CompiledPolicy
from ..policy.loader import Document, format_path, load_yaml_file, load_yaml_text, parse_json_text
from ..policy.modules import is_module_file
from ..policy.registry import (
    is_policy_file,
    load_policy,
    policy_files,
    read_header,
    version_conflicts,
    version_gaps,
)
from ..policy.validate import schema_errors


@dataclass
class CaseResult:
    file: str
    name: str
    policy: str
    line: int | None
    failures: list[str] = field(default_factory=list)
    # the line of the expectation each failure is about (its key under expect:), None for the case's own (its client)
    failure_lines: list[int | None] = field(default_factory=list)
    outcomes: dict[Outcome, bool] = field(default_factory=dict, repr=False)  # (kind, rule) -> fired
    asserted: dict[Outcome, bool] = field(default_factory=dict, repr=False)  # what an expectation pinned
    # a failing case pins nothing; what its expectations would pin, so coverage can name the case to fix
    held_back: dict[Outcome, bool] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "name": self.name, "policy": self.policy,
                "passed": self.passed, "failures": self.failures, "failure_lines": self.lines_of_failures}

    @property
    def lines_of_failures(self) -> list[int | None]:
        """The line of each failure's expectation, in the order of failures (None for the case's own)."""
        return [*self.failure_lines, *[None] * (len(self.failures) - len(self.failure_lines))]


@dataclass
class SuiteResult:
    results: list[CaseResult] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    policies: dict[str, CompiledPolicy] = field(default_factory=dict, repr=False)  # key -> the version tested
    # The versions some test file targets, its cases run or not, and whether a file could not be read at all:
    # a version no file targets is untested (unless an unreadable file might have).
    targeted: set[str] = field(default_factory=set, repr=False)
    unreadable_tests: bool = field(default=False, repr=False)

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
USAGE_CODES = frozenset({"no-tests", "no-match", "module-not-policy"})  # what was asked for, not what a file holds


_PATCH_PART = re.compile(r"^([a-z_][a-z0-9_]*)((?:\[-?\d+\])*)$")


class PatchError(ValueError):
    """A patch path the client cannot take (an index past the end, a step into a number); ``path`` is the key."""

    def __init__(self, path: str, message: str):
        super().__init__(f"patch '{path}': {message}")
        self.path = path


def apply_patch(record: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``record`` with ``{'loan.overdue_days': 91, 'financials[-1].net_income': -5}`` set."""
    out = copy.deepcopy(record)
    for path, value in patch.items():
        cur: Any = out
        steps: list[str | int] = []
        for part in path.split("."):
            m = _PATCH_PART.match(part)
            if not m:
                raise PatchError(path, "a step is not a field name with optional [index]")
            steps.append(m.group(1))
            steps.extend(int(i) for i in re.findall(r"-?\d+", m.group(2)))
        done = ""
        for k, step in enumerate(steps):
            last = k == len(steps) - 1
            if isinstance(step, int):
                if not isinstance(cur, list):
                    raise PatchError(path, f"{done} is {_what(cur)}, not a list: [{step}] cannot be set")
                if not -len(cur) <= step < len(cur):
                    raise PatchError(path, f"{done} has {len(cur)} element(s): [{step}] is not one of them")
                done += f"[{step}]"
            else:
                if not isinstance(cur, dict):
                    raise PatchError(path, f"{done} is {_what(cur)}, not an object: '{step}' cannot be set")
                done += f".{step}" if done else step
            if last:
                cur[step] = copy.deepcopy(value)
            else:
                cur = cur[step] if isinstance(step, int) else cur.setdefault(step, {})
    return out


def _what(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__.replace('str', 'text')} {value!r:.40}"


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


# ------------------------------------------------------------ expectation kinds
#
# One entry per expectation key of a case: how it is checked against the decision (failure lines),
# which kind of rule the ids it names must be (an unknown one is an error of the test file), and
# which rule outcomes it pins for coverage. Adding an expectation kind is one entry here and its
# key in schemas/policy-tests.schema.json.

# (kind, rule) for a debtor's rule, (kind, rule, exposure id) for a graded scope's (an exposure's), as in
# rule_outcomes: an exposure rule fires or not per exposure, and an expectation pins it per exposure.
Outcome = tuple[str, ...]
Pins = Iterator[tuple[Outcome, bool]]


@dataclass(frozen=True)
class Expectation:
    """One expectation key: its check, the kind of rule its ids name, and what it pins."""

    check: Callable[[Any, Mapping[str, Any]], list[str]]  # (wanted, decision) -> failure lines
    names: str | None = None  # warning, action, floor, rule, metric, grade or decider
    pins: Callable[[Any, CompiledPolicy, Mapping[Outcome, bool]], Pins] | None = None


def _floor_ids(record: Mapping[str, Any]) -> list[str]:
    return [x["id"] for x in record["classification"]["floors"]]


def _warning_ids(record: Mapping[str, Any]) -> list[str]:
    return [w["id"] for w in record["warnings"]]


def _action_ids(record: Mapping[str, Any]) -> list[str]:
    return [a["id"] for a in record["actions"]]


def _suppressed_ids(record: Mapping[str, Any]) -> list[str]:
    return [s["id"] for s in record["suppressed_actions"]]


def _undetermined_rules(record: Mapping[str, Any]) -> list[str]:
    return [u["rule"] for u in record["undetermined"]]


def _expect_grade(want: Any, record: Mapping[str, Any]) -> list[str]:
    cls = record["classification"]
    if want == cls["grade"]:
        return []
    why = [f"decided by {cls['decided_by']}" + (f" of exposure {cls['decided_by_exposure']}"
                                                 if cls.get("decided_by_exposure") else "")]
    if cls["decided_by"] == "default":
        why = ["no floor fired"]
    if record["score"]["factors"]:  # a policy with a scorecard: the score is part of why
        why.append(f"score {record['score']['total']:g}")
    return [f"grade: expected '{want}', got '{cls['grade']}' ({', '.join(why)})"]


def _expect_decided_by(want: Any, record: Mapping[str, Any]) -> list[str]:
    got = record["classification"]["decided_by"]
    return [] if want == got else [f"decided_by: expected '{want}', got '{got}'"]


def _expect_scorecard_grade(want: Any, record: Mapping[str, Any]) -> list[str]:
    score = record["score"]
    if want == score["grade"]:
        return []
    return [f"scorecard_grade: expected '{want}', got '{score['grade']}' (score {score['total']:g})"]


def _expect_score(want: Any, record: Mapping[str, Any]) -> list[str]:
    got = record["score"]["total"]
    return [] if _num_eq(want, got) else [f"score: expected {_shown(want)}, got {_shown(got)}"]


def _exact(key: str, ids: Callable[[Mapping[str, Any]], list[str]]) -> Callable[[Any, Mapping[str, Any]], list[str]]:
    """The decision's ids are exactly these (order aside)."""
    return lambda want, record: _set_eq(key, want, ids(record))


def _includes(key: str, ids: Callable[[Mapping[str, Any]], list[str]]) -> Callable[[Any, Mapping[str, Any]], list[str]]:
    """Each of these ids is in the decision."""
    def check(want: Any, record: Mapping[str, Any]) -> list[str]:
        got = ids(record)
        missing = [x for x in want if x not in got]
        return [f"{key}: {missing} not in {sorted(got)}"] if missing else []
    return check


def _excludes(key: str, ids: Callable[[Mapping[str, Any]], list[str]]) -> Callable[[Any, Mapping[str, Any]], list[str]]:
    """None of these ids is in the decision."""
    def check(want: Any, record: Mapping[str, Any]) -> list[str]:
        got = ids(record)
        present = [x for x in want if x in got]
        return [f"{key}: {present} present but must not be"] if present else []
    return check


def _shown(v: Any) -> str:
    """A value in a failure as the case file writes it: text quoted (an expectation "0" is not the number 0), a whole
    number without '.0' (a count the decision holds as 1.0 reads 1), null and booleans as YAML and JSON write them."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return str(int(v))
    return json.dumps(v, ensure_ascii=False, default=str)


def _expect_metrics(want: Any, record: Mapping[str, Any]) -> list[str]:
    f = []
    for name, value in (want or {}).items():
        if name not in record["metrics"]:
            f.append(f"metrics.{name}: no such metric")
        elif not _num_eq(value, record["metrics"][name]):
            f.append(_mismatch(f"metrics.{name}", value, record["metrics"][name]))
    return f


def _mismatch(label: str, want: Any, got: Any) -> str:
    """A figure's failure line; a rounded figure ('0.3077' for 0.30769...) is shown how to write it with a tolerance
    (the expectation is exact to 1e-9 otherwise)."""
    line = f"{label}: expected {_shown(want)}, got {_shown(got)}"
    numbers = all(isinstance(x, int | float) and not isinstance(x, bool) for x in (want, got))
    if numbers and got != 0 and abs(want - got) <= 0.01 * abs(got):
        places = len(repr(float(want)).split(".")[1].rstrip("0")) if "e" not in repr(float(want)) else 0
        line += f" (to {places} places: {{approx: {want}, tol: {10.0 ** -places:g}}})" if places else \
            f" (within a tolerance: {{approx: {want}, tol: {abs(want - got) * 2:.2g}}})"
    return line


def _per_item(key: str, kind: str, listed: Callable[[Mapping[str, Any]], list[Mapping[str, Any]]],
              absent: Callable[[Any], str | None],
              judge: Callable[[Mapping[str, Any], Any], str | None]) -> Callable[[Any, Mapping[str, Any]], list[str]]:
    """An expectation keyed by warning, action or floor id: what ``judge`` finds wrong with the item among those
    ``listed`` gives (None: nothing); when it is not among them, that it is undetermined (its ``kind`` of
    ``undetermined`` entry names it: a missing fact is not "did not fire"), else what ``absent`` says."""

    def check(want: Any, record: Mapping[str, Any]) -> list[str]:
        by_id = {x["id"]: x for x in listed(record)}
        missing: dict[str, dict[str, None]] = {}  # rule -> its missing facts, in order, once each
        for u in record.get("undetermined", ()):
            if u["kind"] == kind:
                missing.setdefault(u["rule"], {}).update(dict.fromkeys(u["missing"]))
        f = []
        for xid, w in (want or {}).items():
            if xid in by_id:
                why = judge(by_id[xid], w)
            elif xid in missing:
                why = f"undetermined (a fact it reads is missing: {', '.join(missing[xid]) or 'unknown'})"
            else:
                why = absent(w)
            if why:
                f.append(f"{key}.{xid}: {why}")
        return f

    return check


def _restructuring_judged(a: Mapping[str, Any], is_restructuring: Any) -> str | None:
    if "restructuring" not in a:
        return "action has no restructuring consequence"
    got = a["restructuring"]["is_restructuring"]
    if got is None and is_restructuring is not None:  # the record lists it under undetermined, kind restructuring
        return "undetermined (a fact it reads is missing)"
    return None if got == is_restructuring else f"expected {is_restructuring}, got {got}"


_expect_restructuring = _per_item("restructuring", "action", lambda r: r["actions"],
                                  lambda _: "action not recommended", _restructuring_judged)


def _expect_action_params(want: Any, record: Mapping[str, Any]) -> list[str]:
    f = []
    by_id = {a["id"]: a for a in record["actions"]}
    for aid, params in (want or {}).items():
        a = by_id.get(aid)
        if a is None:
            f.append(f"action_params.{aid}: action not recommended")
            continue
        for k, v in params.items():
            got = a["params"].get(k)
            same = got == v if isinstance(v, list | str) else _num_eq(v, got)
            if k not in a["params"] or not same:
                f.append(f"action_params.{aid}.{k}: expected {_shown(v)}, got {_shown(a['params'].get(k))}")
    return f


def _expect_named_exposures(kind: str) -> Callable[[Any, Mapping[str, Any]], list[str]]:
    """Per warning, action or debtor floor, exactly the exposures it names (``for_exposures``), in any order.
    An empty list expects it to name none, so not to fire (it fires only when it names one)."""

    def judge(x: Mapping[str, Any], ids: Any) -> str | None:
        if "exposures" not in x:
            return f"the {kind} names no exposures (it has no for_exposures)"
        want, got = sorted(map(str, ids)), sorted(x["exposures"])
        unknown = sorted(x.get("exposures_not_known") or ())
        # not known: its condition has no value there (a fact missing, or a metric undefined: a limit of 0)
        said = f" (not known whether it concerns {unknown}: its condition has no value there)" if unknown else ""
        if not want:  # [] expects it not to fire at all, and it is listed: it fired
            return f"expected it not to fire (naming none), it fired naming {got}{said}"
        return None if want == got else f"expected {want}, got {got}{said}"

    absent = {"warning": "warning did not fire", "floor": "floor did not fire"}.get(kind, "action not recommended")
    listed = {"warning": lambda r: r["warnings"], "action": lambda r: r["actions"],
              "floor": lambda r: r["classification"]["floors"]}[kind]
    return _per_item(f"{kind}_exposures", "classification" if kind == "floor" else kind, listed,
                     lambda ids: absent if ids else None, judge)


_EXPOSURE_KEYS = ("grade", "own_grade", "decided_by")


def _expect_exposures(want: Any, record: Mapping[str, Any]) -> list[str]:
    """Per exposure (a policy with scopes): its final and own grade, its deciding rule, floors, metrics."""
    f: list[str] = []
    if "exposures" not in record:
        return ["exposures: the policy decides no exposures (it declares no scopes)"]
    by_id = {x["exposure_id"]: x for x in record["exposures"]}
    for eid, expected in (want or {}).items():
        got = by_id.get(eid)
        if got is None:
            f.append(f"exposures.{eid}: no such exposure (the record has {', '.join(by_id) or 'none'})")
            continue
        for key in _EXPOSURE_KEYS:
            if key in expected and expected[key] != got[key]:
                f.append(f"exposures.{eid}.{key}: expected '{expected[key]}', got '{got[key]}'")
        fired = [fl["id"] for fl in got["floors"]]
        if "floors" in expected:
            f += [f"exposures.{eid}.{line}" for line in _set_eq("floors", expected["floors"], fired)]
        missing = [r for r in expected.get("floors_include", ()) if r not in fired]
        if missing:
            f.append(f"exposures.{eid}.floors_include: {', '.join(missing)} did not fire (fired: "
                     f"{', '.join(fired) or 'none'})")
        for name, value in (expected.get("metrics") or {}).items():
            if name not in got["metrics"]:
                f.append(f"exposures.{eid}.metrics.{name}: no such exposure metric")
            elif not _num_eq(value, got["metrics"][name]):
                f.append(_mismatch(f"exposures.{eid}.metrics.{name}", value, got["metrics"][name]))
    return f


def _pin_exposures(want: Any, policy: CompiledPolicy, outcomes: Mapping[Outcome, bool]) -> Pins:
    """Per expected exposure, what its keys pin: its own rules for that exposure, the debtor's rules once.

    ``floors`` (exact) pins every floor both ways, ``floors_include`` and ``decided_by`` pin a floor firing, a
    ``grade`` pins the floors of a worse grade not firing (its own and the debtor's, but a debtor floor naming its
    exposures), an ``own_grade`` its own floors of a worse grade, and ``metrics`` the exposure's boolean or nullable
    metrics as at the debtor.
    """
    part = policy.scoped
    if part is None or not isinstance(want, dict):
        return
    own = {r.id: r for r in part.floors}
    owned = {m.name: m for m in part.metrics}
    # A debtor floor naming its exposures (for_exposures) may fire for the debtor and leave this exposure below it:
    # only its being listed under the exposure says it fired.
    every = tuple(r for r in policy.floors if r.for_exposures is None)

    def key(rid: str, eid: str) -> Outcome:
        return ("floor", rid, eid) if rid in own else ("floor", rid)

    for eid, exp in want.items():
        eid = str(eid)
        if not isinstance(exp, dict):
            continue
        if isinstance(exp.get("floors"), list):
            yield from ((key(r.id, eid), r.id in exp["floors"]) for r in (*part.floors, *policy.floors)
                        if r.for_exposures is None or r.id in exp["floors"])
        for rid in [*(exp.get("floors_include") or ()), exp.get("decided_by")]:
            if rid in own or rid in {r.id for r in policy.floors}:
                yield key(rid, eid), True
        for grade, rules in (("grade", (*part.floors, *every)), ("own_grade", part.floors)):
            if exp.get(grade) in policy.grade_ids:
                rank = policy.grade_ids.index(exp[grade])
                yield from ((key(r.id, eid), False) for r in rules if r.rank > rank)
        for name, value in (exp.get("metrics") or {}).items():
            m = owned.get(name)
            if m is not None and m.expr.type == "bool" and isinstance(value, bool):
                yield ("metric", name, eid), value
            elif m is not None and m.expr.type != "bool" and m.expr.nullable:
                yield ("metric", name, eid), value is not None


def _exposure_ids(outcomes: Mapping[Outcome, bool]) -> list[str]:
    return sorted({k[2] for k in outcomes if len(k) == 3})


def _pin_listed(kind: str, rules: Callable[[CompiledPolicy], Iterable[str]]) -> Callable[..., Pins]:
    """An exact list pins each rule of the kind: firing if listed, not firing if not."""
    return lambda want, policy, outcomes: (((kind, rid), rid in want) for rid in rules(policy))


def _pin_each(kind: str, fired: bool) -> Callable[..., Pins]:
    """Each id (of a list, or key of a map) pinned firing or not firing."""
    return lambda want, policy, outcomes: (((kind, rid), fired) for rid in want or ())


def _pin_decided_by(want: Any, policy: CompiledPolicy, outcomes: Mapping[Outcome, bool]) -> Pins:
    if want in (None, policy.base_decider):
        return
    if policy.scoped is not None and want in {r.id for r in policy.scoped.floors}:
        # an exposure's own floor decided the debtor: it fired on that exposure (a pin holds only where it did)
        yield from ((("floor", want, eid), True) for eid in _exposure_ids(outcomes))
    else:
        yield ("floor", want), True


def _pin_grade(want: Any, policy: CompiledPolicy, outcomes: Mapping[Outcome, bool]) -> Pins:
    if want in policy.grade_ids:
        rank = policy.grade_ids.index(want)
        # had a floor of a worse grade fired, the grade would be worse
        yield from ((("floor", r.id), False) for r in policy.floors if r.rank > rank)
        if policy.scoped is not None:  # the debtor's grade is the worst of its exposures': none had a worse floor
            yield from ((("floor", r.id, eid), False) for eid in _exposure_ids(outcomes)
                        for r in policy.scoped.floors if r.rank > rank)


def _pin_metrics(want: Any, policy: CompiledPolicy, outcomes: Mapping[Outcome, bool]) -> Pins:
    """A boolean metric by its expected value; a nullable one by a value against null."""
    kinds = {m.name: m for m in policy.metrics}
    for name, value in (want or {}).items():
        m = kinds.get(name)
        if m is None:
            continue
        if m.expr.type == "bool":
            if isinstance(value, bool):
                yield ("metric", name), value
        elif m.expr.nullable:
            yield ("metric", name), value is not None


def _pin_score(want: Any, policy: CompiledPolicy, outcomes: Mapping[Outcome, bool]) -> Pins:
    """An exact score pins every scorecard band: any band change would move it."""
    yield from ((key, fired) for key, fired in outcomes.items() if key[0] == "band")


def _floors(policy: CompiledPolicy) -> Iterator[str]:
    return (r.id for r in policy.floors)


def _warnings(policy: CompiledPolicy) -> Iterator[str]:
    return (w.id for w in policy.warnings)


def _actions(policy: CompiledPolicy) -> Iterator[str]:
    return (a.id for a in policy.actions)


def _pin_named(kind: str) -> Callable[..., Pins]:
    """Each id pinned firing when it is expected to name exposures, not firing when expected to name none."""
    return lambda want, policy, outcomes: (((kind, rid), bool(ids)) for rid, ids in (want or {}).items())


# In the order a failing case lists its failures.
EXPECTATIONS: dict[str, Expectation] = {
    "grade": Expectation(_expect_grade, "grade", _pin_grade),
    "decided_by": Expectation(_expect_decided_by, "decider", _pin_decided_by),
    "scorecard_grade": Expectation(_expect_scorecard_grade, "grade"),
    "score": Expectation(_expect_score, None, _pin_score),
    "floors": Expectation(_exact("floors", _floor_ids), "floor", _pin_listed("floor", _floors)),
    "floors_include": Expectation(_includes("floors_include", _floor_ids), "floor", _pin_each("floor", True)),
    "warnings_include": Expectation(_includes("warnings_include", _warning_ids), "warning",
                                    _pin_each("warning", True)),
    "actions_include": Expectation(_includes("actions_include", _action_ids), "action", _pin_each("action", True)),
    "suppressed_include": Expectation(_includes("suppressed_include", _suppressed_ids), "action",
                                      _pin_each("action", True)),
    "undetermined_include": Expectation(_includes("undetermined_include", _undetermined_rules), "rule"),
    "warnings_exclude": Expectation(_excludes("warnings_exclude", _warning_ids), "warning",
                                    _pin_each("warning", False)),
    "actions_exclude": Expectation(_excludes("actions_exclude", _action_ids), "action", _pin_each("action", False)),
    "warnings": Expectation(_exact("warnings", _warning_ids), "warning", _pin_listed("warning", _warnings)),
    "actions": Expectation(_exact("actions", _action_ids), "action", _pin_listed("action", _actions)),
    "metrics": Expectation(_expect_metrics, "metric", _pin_metrics),
    "restructuring": Expectation(_expect_restructuring, "action", _pin_each("action", True)),
    "action_params": Expectation(_expect_action_params, "action", _pin_each("action", True)),
    "action_exposures": Expectation(_expect_named_exposures("action"), "action", _pin_named("action")),
    "warning_exposures": Expectation(_expect_named_exposures("warning"), "warning", _pin_named("warning")),
    "floor_exposures": Expectation(_expect_named_exposures("floor"), "debtor floor", _pin_named("floor")),
    "exposures": Expectation(_expect_exposures, None, _pin_exposures),
}
# invalid_input is checked where the client is rejected, before there is a decision (see _run_case).
EXPECT_KEYS = (*EXPECTATIONS, "invalid_input")


def check_expectations(expect: Mapping[str, Any], record: Mapping[str, Any]) -> list[str]:
    """Every way ``record`` differs from ``expect``, as readable lines."""
    return [line for key, kind in EXPECTATIONS.items() if key in expect for line in kind.check(expect[key], record)]


def _load_client(ref: Any, base: Path) -> Any:
    if isinstance(ref, dict):
        return ref
    path = (base / ref).resolve()
    return parse_json_text(path.read_bytes())


def find_test_files(path: Path) -> list[Path]:
    """Test files under a policy directory: YAML files in it that are neither policies nor modules."""
    if path.is_file():
        return [] if is_policy_file(path) or is_module_file(path) else [path]
    return sorted(f for f in path.rglob("*.y*ml") if f.is_file() and not is_policy_file(f) and not is_module_file(f))


def _not_modules(paths: Iterable[str | Path], run: SuiteResult) -> list[Path]:
    """The paths to test; a module file named is a usage problem (its importers' cases pin it)."""
    out = []
    for p in paths:
        path = Path(p)
        if path.is_file() and is_module_file(path):
            run.diagnostics.append(Diagnostic(
                "module-not-policy", f"{path} is a module: it has no policy tests of its own", file=str(path),
                hint="test the policies that import it; their cases pin its definitions"))
        else:
            out.append(path)
    return out


@dataclass
class _Gathered:
    """What the paths given to ``test`` hold: the policies, the test files, every version known by id, and
    the policy files given whole (a folder, or the file itself), each of whose versions must be tested."""

    policies: list[CompiledPolicy] = field(default_factory=list)
    test_files: list[Path] = field(default_factory=list)
    known: dict[str, set[str]] = field(default_factory=dict)
    suites: set[str] = field(default_factory=set)
    # A tests folder run alone: the policy folder's other test files, whose versions count as tested (they are
    # that folder's to run), so a version no test file of the policy targets is still an untested version.
    other_tests: list[Path] = field(default_factory=list)


def policy_root(path: Path, registry: Path | None = None) -> Path:
    """The folder whose policies a path is tested against.

    A test file in no policy's folder (a draft beside the registry) is tested against the registry's folder of the
    policy it names: the folder above it may hold any number of other policies, drafts and broken copies."""
    root = path if path.is_dir() else path.parent
    if path.is_file() and not is_policy_file(path) and not any(policy_files([root])):
        if registry is not None and not any(is_policy_file(f) for f in root.parent.iterdir() if f.is_file()):
            named = _named_policy(path)
            if named is not None and (registry / named).is_dir():
                return registry / named
        return root.parent  # a file of a policy's tests/ folder: its policies are one level up
    if path.is_dir() and not any(policy_files([root])) and any(
            is_policy_file(f) for f in root.parent.iterdir() if f.is_file()):
        return root.parent  # a policy's tests/ folder: its policies are one level up
    return root


def _named_policy(path: Path) -> str | None:
    """The policy id a test file names (``policy: ID``), if it reads as one; its problems are reported when it runs."""
    try:
        data = load_yaml_file(path).data
    except PolicyError:
        return None
    named = data.get("policy") if isinstance(data, dict) else None
    return named if isinstance(named, str) and named and "/" not in named and ".." not in named else None


_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_NAMED_VERSION = re.compile(r"^policy-(\d+\.\d+\.\d+)\.ya?ml$")


def _gather(path: Path, found: _Gathered, run: SuiteResult, registry: Path | None = None) -> None:
    root = policy_root(path, registry)
    for f in policy_files([root]):
        header = read_header(f)
        if header is not None:  # a file that does not load (a YAML error) still names its version, by its name:
            # its test files' cases for it are not reported as of an unknown version on top of its own error
            named = _NAMED_VERSION.match(f.name)
            version = header.version if _VERSION.match(header.version) or not named else named[1]
            found.known.setdefault(header.id, set()).add(version)
    # A policy folder or file is tested whole: each of its versions needs a case. A folder of test files (a
    # policy's tests/) runs those cases alone, as one test file does: versions it does not list are another
    # folder's to test.
    whole = (path.is_dir() and root == path) or is_policy_file(path)
    folder = path.is_dir() and root != path  # a policy's tests folder, run alone
    if folder:
        inside = path.resolve()
        found.other_tests += [f for f in find_test_files(root) if inside not in f.resolve().parents]
    files = [root] if path.is_dir() else [path] if is_policy_file(path) else list(policy_files([root]))
    for f in policy_files(files):
        if whole or folder:
            found.suites.add(str(f.resolve()))
        if any(Path(p.file).resolve() == f.resolve() for p in found.policies if p.file):
            continue  # a folder and a file in it, or one path given twice: one policy
        try:
            found.policies.append(load_policy(f, named=False))
        except PolicyError as e:
            run.diagnostics.extend(e.diagnostics)
    if path.is_dir():
        found.test_files += find_test_files(path)
    elif not is_policy_file(path):
        found.test_files.append(path)
    else:
        pol = found.policies[-1] if found.policies else None
        if pol is not None:  # the folder its `tests:` names, else tests/ beside it (where `init` writes them)
            folder_of_tests = path.parent / (pol.tests_path or "tests")
            if pol.tests_path or folder_of_tests.is_dir():
                found.test_files += find_test_files(folder_of_tests)


def run_tests(paths: Iterable[str | Path], only: str | None = None, registry: Path | None = None) -> SuiteResult:
    """Run every test file found under ``paths`` against the policies found there (a test file in no policy's
    folder: against the ``registry``'s folder of the policy it names).

    A case that is malformed or names what the policy does not have is reported with its line and not
    run; the file's other cases still run. ``only`` matching no case is a ``no-match`` diagnostic.
    """
    run = SuiteResult()
    found = _Gathered()
    for path in _not_modules(paths, run):
        if not path.exists():
            run.diagnostics.append(Diagnostic("file-missing", f"no such file or directory: {path}", file=str(path)))
            continue
        _gather(path, found, run, registry)
    policies, test_files, known = found.policies, found.test_files, found.known
    for pol in policies:
        known.setdefault(pol.id, set()).add(pol.version)
    # Two files of one version: which one was tested? And versions in force on one day: each is tested by its own
    # key, but no decision by date can be made, so a run that passes them would be green for a registry that
    # `decide` refuses (as validate does, an error at the later version's effective_from).
    run.diagnostics.extend(version_conflicts(policies))
    loaded = {(p.id, p.version) for p in policies}  # a version that does not load leaves its period unknown
    run.diagnostics.extend(version_gaps(policies, {i for i, vs in known.items() if any((i, v) not in loaded
                                                                                       for v in vs)}))
    seen: set[Path] = set()
    deciders: dict[str, Decider] = {}
    selected = 0
    for tf in test_files:
        if tf.resolve() in seen:
            continue
        seen.add(tf.resolve())
        selected += _run_file(tf, policies, known, deciders, run, only)
    if not test_files and not run.diagnostics:
        run.diagnostics.append(Diagnostic("no-tests", "no test files found", hint="test cases are YAML files in the "
                                          "folder a policy's `tests:` names, else in tests/ beside the policy file"))
    elif only is not None and selected == 0:
        run.diagnostics.append(Diagnostic("no-match", f"no case name contains {only!r} (-k)",
                                          hint="`policy-engine test -v` lists every case name"))
    elif only is None and test_files and not run.unreadable_tests:
        run.targeted.update(_targeted_by(found.other_tests, policies, known))
        run.diagnostics.extend(_untested(policies, found.suites, run))
    return run


def _targeted_by(files: Iterable[Path], policies: list[CompiledPolicy], known: Mapping[str, set[str]]) -> set[str]:
    """The versions test files target, as a run of them would (:func:`_target_policies`), read without running them;
    what they would report is their own folder's run to say (a file that does not read is no target)."""
    out: set[str] = set()
    for tf in files:
        try:
            doc = load_yaml_file(tf)
        except PolicyError:
            continue
        if _shape_problems(doc, str(tf))[2]:  # the file's own keys are wrong: it names no policy to trust
            continue
        elsewhere = SuiteResult()
        out.update(p.key for p in _target_policies(doc, str(tf), policies, known, elsewhere))
        out.update(elsewhere.targeted)  # versions it leaves out, said at its own line in its own run
    return out


def _untested(policies: list[CompiledPolicy], suites: set[str], run: SuiteResult) -> list[Diagnostic]:
    """A version no test file targets: a new version whose test files do not list it would ship untested
    with every count green. A version that has ended (effective_to before today) is left alone."""
    import datetime as dt

    today = dt.date.today().isoformat()
    out = []
    for p in policies:
        if p.key in run.targeted or not p.file or str(Path(p.file).resolve()) not in suites:
            continue
        if p.effective_to is not None and p.effective_to < today:
            continue  # a version that has ended decides no new client: its tests may have been retired with it
        line = next((i for i, text in enumerate(p.text.splitlines(), 1) if text.startswith("version:")), None)
        where = f" ({Path(p.file).parent / p.tests_path})" if p.tests_path else ""
        out.append(Diagnostic(
            "untested-version", f"no test case runs against {p.id} {p.version}", file=p.file, line=line,
            path="version", hint=f"add '{p.version}' to the versions: of the test files that apply to it{where}, "
                                 "or give it test files of its own"))
    return out


def _shape_problems(doc: Document, file: str
                    ) -> tuple[list[Diagnostic], dict[int, list[Diagnostic]], list[Diagnostic]]:
    """A test file checked against its schema: every problem, those of each case, those of the file as a whole."""
    sink = DiagnosticSink(file=file)
    schema_errors(doc, "policy-tests", sink)
    return (sink.items, *_case_errors(sink.items))


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
    read = _read_test_file(tf, run)
    if read is None:
        run.unreadable_tests = True
        return 0
    doc, per_case = read
    targets = _target_policies(doc, str(tf), policies, known, run)
    run.targeted.update(p.key for p in targets)
    if not targets:
        return 0
    broken = _broken_cases(doc, str(tf), per_case, targets, known, run)
    selected = 0
    for i, case in enumerate(doc.data["cases"]):
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


def _read_test_file(tf: Path, run: SuiteResult) -> tuple[Document, dict[int, list[Diagnostic]]] | None:
    """The file and the schema problems of each case; None (reported) when the file as a whole is wrong."""
    try:
        doc = load_yaml_file(tf)
    except PolicyError as e:
        run.diagnostics.extend(e.diagnostics)
        return None
    from .filekinds import is_stray, stray_file

    if is_stray(doc):  # said as what it is, not as a test file missing 'policy' and 'cases'
        run.diagnostics.append(stray_file(tf))
        return None
    items, per_case, whole = _shape_problems(doc, str(tf))
    if whole:  # the file's own keys are wrong: no case can be trusted to belong to this policy
        run.diagnostics.extend(items)
        return None
    run.diagnostics.extend(d for ds in per_case.values() for d in ds)
    return doc, per_case


def _target_policies(doc: Document, file: str, policies: list[CompiledPolicy], known: Mapping[str, set[str]],
                     run: SuiteResult) -> list[CompiledPolicy]:
    """The loaded versions of the file's policy that it tests; reports versions and policies not there."""
    data = doc.data
    pid = data["policy"]
    for j, v in enumerate(data.get("versions") or []):
        if pid in known and v not in known[pid]:  # (an unknown policy is reported once, below)
            run.diagnostics.append(_unknown_version(doc, file, pid, v, ("versions", j), known))
    targets = [p for p in policies if p.id == pid and (not data.get("versions") or p.version in data["versions"])]
    if not targets:
        loaded = sorted(p.version for p in policies if p.id == pid)
        listed = data.get("versions") or []
        if loaded and listed and all(v in known.get(pid, ()) for v in listed):
            # a file for versions the run did not load (`test policy-2.2.0.yaml` beside 2.1.0's files): not this
            # run's to test; a loaded version no file runs against is said once, at it (untested-version)
            return targets
        if loaded:  # the policy is there, in versions the file does not list (a new version, say)
            run.targeted.update(p.key for p in policies if p.id == pid)  # said here: no untested-version too
            line, col = doc.locate(("versions",))
            listed = ", ".join(data["versions"])
            run.diagnostics.append(Diagnostic(
                "unknown-policy", f"this file tests '{pid}' versions {listed}; the run loaded {', '.join(loaded)}",
                file=file, line=line, column=col, path="versions",
                hint=f"to run its cases against {' and '.join(loaded)}, add {' and '.join(map(repr, loaded))} "
                     "to versions: (cases whose expectations differ in a version get their own versions:)"))
            return targets
        line, col = doc.locate(("policy",))
        if pid in known:  # its files are there but none loaded: their own errors say why, not 'unknown'
            run.diagnostics.append(_policy_failed(pid, sorted(known[pid]), file, line, col))
            return targets
        versions = f"versions {', '.join(data['versions'])} " if data.get("versions") else ""
        run.diagnostics.append(Diagnostic("unknown-policy", f"no policy '{pid}' {versions}"
                                          "was loaded next to this test file", file=file, line=line, column=col,
                                          hint=did_you_mean(pid, sorted(set(known) - {pid}))))
    return targets


def _policy_failed(pid: str, versions: list[str], file: str, line: int | None, col: int | None) -> Diagnostic:
    """A test file whose policy is there but failed to load: its cases cannot run, a warning (the policy's errors
    above set exit 4; this file is not wrong). It read ``unknown-policy``, 'did you mean' the very same name."""
    return Diagnostic("cases-not-run", f"policy '{pid}' ({', '.join(versions)}) is here but failed to load: its "
                      "errors are listed above; this file's cases were not run", file=file, line=line, column=col,
                      path="policy", severity="warning",
                      hint="fix the policy (policy-engine validate names each problem) and run the tests again")


def _broken_cases(doc: Document, file: str, per_case: Mapping[int, list[Diagnostic]], targets: list[CompiledPolicy],
                  known: Mapping[str, set[str]], run: SuiteResult) -> set[int]:
    """Cases not to run (reported): invalid, pinned to a version that is gone, or naming what the policy lacks."""
    pid = doc.data["policy"]
    valid = {i: case for i, case in enumerate(doc.data["cases"]) if i not in per_case}
    broken = set(per_case)
    tested = doc.data.get("versions") or []
    for i, case in valid.items():
        for j, v in enumerate(case.get("versions") or []):
            if pid in known and v not in known[pid]:  # pinned to a version that is gone: it would never run again
                run.diagnostics.append(_unknown_version(doc, file, pid, v, ("cases", i, "versions", j), known))
                broken.add(i)
            elif tested and v not in tested:  # a version the file does not test: the case never runs there
                line, col = doc.locate(("cases", i, "versions", j))
                run.diagnostics.append(Diagnostic(
                    "case-never-runs", f"the case is pinned to version {v}, which this file does not test (its "
                    f"versions: {', '.join(map(str, tested))}): it never runs against it", file=file, line=line,
                    column=col, path=format_path(("cases", i, "versions", j)),
                    hint=f"add {v} to the file's versions:, or move the case to a file that tests {v}"))
                broken.add(i)
    for i, case in valid.items():
        expect = case.get("expect") or {}
        others = [k for k in expect if k != "invalid_input"]
        if "invalid_input" in expect and others:  # a rejected client has no decision: they would pass unchecked
            line, col = doc.locate(("cases", i, "expect", others[0]))
            run.diagnostics.append(Diagnostic(
                "contradictory-expectation", f"the case expects invalid input, so there is no decision to show "
                f"{', '.join(others)}", file=file, line=line, column=col,
                path=format_path(("cases", i, "expect", others[0])),
                hint="expect invalid_input alone, or drop it and expect what the decision shows"))
            broken.add(i)
    unknown = _unknown_names(doc, valid, targets, file) + _missing_clients(doc, valid, file)
    run.diagnostics.extend(unknown)
    broken |= {int(m.group(1)) for d in unknown if (m := re.match(r"^cases\[(\d+)\]", d.path or ""))}
    return broken


def _missing_clients(doc: Document, cases: Mapping[int, Mapping[str, Any]], file: str) -> list[Diagnostic]:
    """A case's client file that is not there (a misspelt name): an error of the test file, located, with the
    file it most likely means; it failed as a case ('cannot build the client'), after validate passed."""
    out = []
    base = Path(file).parent
    for i, case in cases.items():
        ref = case.get("client")
        if not isinstance(ref, str) or (base / ref).is_file():
            continue
        folder = (base / ref).parent
        there = sorted(f.name for f in folder.iterdir() if f.is_file()) if folder.is_dir() else []
        line, col = doc.locate(("cases", i, "client"))
        meant = did_you_mean(Path(ref).name, there)
        out.append(Diagnostic("file-missing", f"client file '{ref}' does not exist", file=file, line=line,
                              column=col, path=format_path(("cases", i, "client")),
                              hint=meant or (f"no such folder: {folder}" if not folder.is_dir() else None)))
    return out


def expectation_problems(doc: Document, file: str, policies: list[CompiledPolicy]) -> list[Diagnostic]:
    """What ``test`` refuses in a test file before it runs a case (a policy or version it does not find,
    a name the policy lacks), checked against ``policies``: ``validate`` of a folder reads its test files
    as ``test`` will, so a misspelt expectation does not wait for the test run to be found. The file's
    shape errors are left out (``validate`` reports them on their own)."""
    _, per_case, whole = _shape_problems(doc, file)
    if whole:
        return []
    run = SuiteResult()
    known: dict[str, set[str]] = {}
    for pol in policies:
        known.setdefault(pol.id, set()).add(pol.version)
    targets = _target_policies(doc, file, policies, known, run)
    if targets:
        _broken_cases(doc, file, per_case, targets, known, run)
    return run.diagnostics


def _unknown_version(doc: Document, file: str, pid: str, version: str, at: tuple[Any, ...],
                     known: Mapping[str, set[str]]) -> Diagnostic:
    line, col = doc.locate(at)
    versions = sorted(known.get(pid, set()))
    return Diagnostic("unknown-version", f"policy '{pid}' has no version '{version}' in the registry", file=file,
                      line=line, column=col, path=format_path(at),
                      hint=did_you_mean(version, versions) or f"versions: {', '.join(versions) or 'none'}")


def _unknown_names(doc: Document, cases: Mapping[int, Mapping[str, Any]], targets: list[CompiledPolicy],
                   file: str) -> list[Diagnostic]:
    """Expectations naming a warning, action, rule, metric or grade the policy does not have.

    ``warnings_exclude: [overdu]`` would pass for ever, and ``warnings: [overdu]`` fail with a
    puzzling message; both are errors of the test file, located, with did-you-mean. A name is
    checked against each version the case runs against: one a later version removed would
    otherwise pass there for ever.
    """
    per_version = {p.version: _names(p) for p in targets}
    bases = sorted({p.base_decider for p in targets})  # 'scorecard', or 'default' for a policy without one
    labels = {text.lower(): g.id for p in targets for g in p.scale for text in (g.zh, g.en)}  # 关注, Pass
    out = []

    def check(kind: str, value: Any, at: tuple[Any, ...], versions: list[str]) -> None:
        if not isinstance(value, str):
            return
        lacking = [v for v in versions if value not in per_version[v][kind]]
        if not lacking:
            return
        line, col = doc.locate(at)
        deciders = " / ".join(f"'{b}'" for b in bases)
        what = {"rule": "rule", "decider": f"floor rule (or {deciders})",
                "exposure decider": "floor rule (or 'default')"}.get(kind, kind)
        if len(lacking) < len(versions):  # some versions have it: the case outlived a change
            renamed = closest(value, sorted(set().union(*(per_version[v][kind] for v in lacking))))
            out.append(Diagnostic(
                "unknown-name", f"the policy has no {what} '{value}' in version {', '.join(lacking)} (the case "
                f"runs against {', '.join(versions)})", file=file, line=line, column=col, path=format_path(at),
                hint=f"pin the case to the versions that have it (versions: "
                     f"[{', '.join(v for v in versions if v not in lacking)}]), or give {', '.join(lacking)} "
                     "a case of its own" + (f" (renamed? {', '.join(lacking)} has '{renamed}')" if renamed else "")))
            return
        known = sorted(set().union(*(per_version[v][kind] for v in versions)))
        hint = did_you_mean(value, known)
        if kind == "grade" and value.strip().lower() in labels:  # the grade's words, not its id
            hint = f"'{value}' is the label of grade {labels[value.strip().lower()]}: expectations name the id"
        other = {"metric": "exposure metric", "exposure metric": "metric"}.get(kind)
        if other and any(value in per_version[v][other] for v in versions):  # expected at the other level
            hint = (f"'{value}' is a metric of each exposure: expect it under the exposure, exposures: "
                    f"{{E1: {{metrics: {{{value}: ...}}}}}}" if kind == "metric" else
                    f"'{value}' is a metric of the debtor: expect it under the case's metrics, beside grade")
        if other and any(value in per_version[v][other] for v in versions):
            what = "debtor metric" if kind == "metric" else what
        if kind == "debtor floor" and any(value in per_version[v]["floor"] for v in versions):
            hint = (f"'{value}' is a floor of each exposure, which names no exposures: expect it under the exposure, "
                    f"exposures: {{E1: {{floors_include: [{value}]}}}}")
        out.append(Diagnostic("unknown-name", f"the policy has no {what} '{value}'", file=file, line=line,
                              column=col, path=format_path(at), hint=hint))

    reads = {"as_of", "client_id"} | {i.source for p in targets for i in p.inputs} | _element_reads(targets)
    for i, case in cases.items():
        for path in case.get("patch") or {}:
            if not isinstance(path, str) or _patch_reaches(path, reads, case.get("client"), Path(file).parent):
                continue
            line, col = doc.locate(("cases", i, "patch", path))
            out.append(Diagnostic("unknown-name", f"patch path '{path}' is neither a field the policy reads nor one of "
                                  "the client's: the patch would change nothing", file=file, line=line, column=col,
                                  path=format_path(("cases", i, "patch", path)),
                                  hint=did_you_mean(_series_path(path), sorted(reads))))
        runs_on = [p.version for p in targets if not case.get("versions") or p.version in case["versions"]]
        if not runs_on:
            continue
        expect = case.get("expect") or {}
        for key, kind in EXPECTATIONS.items():
            if kind.names is not None and key in expect:
                for value, at in _named(expect[key]):
                    check(kind.names, value, ("cases", i, "expect", key, *at), runs_on)
        for eid, exp in (expect.get("exposures") or {}).items():
            for key, kind_of in _EXPOSURE_NAMES.items():
                if isinstance(exp, dict) and key in exp:
                    for value, at in _named(exp[key]):
                        check(kind_of, value, ("cases", i, "expect", "exposures", eid, key, *at), runs_on)
        out += _case_metric_types(doc, file, i, expect, [p for p in targets if p.version in runs_on])
    return out


def _case_metric_types(doc: Document, file: str, i: int, expect: Mapping[str, Any], runs: list[CompiledPolicy]
                       ) -> list[Diagnostic]:
    """The metric values case ``i`` expects, of the debtor and of each exposure, checked against the metrics' types."""
    places = [(expect.get("metrics"), ("cases", i, "expect", "metrics"), False)]
    places += [(exp.get("metrics"), ("cases", i, "expect", "exposures", eid, "metrics"), True)
               for eid, exp in (expect.get("exposures") or {}).items() if isinstance(exp, dict)]
    out: list[Diagnostic] = []
    for wanted, at, of_exposure in places:
        if isinstance(wanted, dict):
            out += _mistyped_metrics(doc, file, wanted, at, runs, of_exposure)
    return out


def _mistyped_metrics(doc: Document, file: str, wanted: Mapping[Any, Any], at: tuple[Any, ...],
                      policies: list[CompiledPolicy], of_exposure: bool) -> list[Diagnostic]:
    """Expected values that no value of the metric can equal: ``"0.2"`` or ``20%`` (text) for a number, ``1`` for a
    yes/no. Such a case fails for ever, with ``expected "0.2", got 0.2``, which reads as a match."""
    from ..language.functions import BOOL, NUMBER
    from ..policy.compiler import percent_as_share

    types: dict[str, str] = {}
    for p in policies:
        metrics = p.scoped.metrics if of_exposure and p.scoped is not None else () if of_exposure else p.metrics
        types.update({m.name: m.expr.type for m in metrics})
    out = []
    for name, value in wanted.items():
        kind = types.get(name)
        if value is None or kind not in (NUMBER, BOOL):
            continue
        if kind == NUMBER and isinstance(value, dict) and "approx" in value:
            continue
        if kind == NUMBER and isinstance(value, int | float) and not isinstance(value, bool):
            continue
        if kind == BOOL and isinstance(value, bool):
            continue
        line, col = doc.locate((*at, name))
        what = "a number" if kind == NUMBER else "true or false"
        hint = "write true or false" if kind == BOOL else "write the number without quotes"
        share = percent_as_share(value) if kind == NUMBER and isinstance(value, str) else None
        if share is not None:
            hint = f"a share is a number: {value.strip()} is {share}"
        out.append(Diagnostic("wrong-type", f"metric '{name}' is {what}; the case expects {json.dumps(value)}, which "
                              "no value of it equals", file=file, line=line, column=col,
                              path=format_path((*at, name)), hint=hint))
    return out


# What an expectation of one exposure names, by kind (``decided_by``: its own floors, the debtor's, or the default).
_EXPOSURE_NAMES = {"grade": "grade", "own_grade": "grade", "decided_by": "exposure decider", "floors": "floor",
                   "floors_include": "floor", "metrics": "exposure metric"}


def _names(p: CompiledPolicy) -> dict[str, set[str]]:
    """What an expectation may name in one version, by kind."""
    names: dict[str, set[str]] = {
        "warning": {w.id for w in p.warnings}, "action": {a.id for a in p.actions},
        "floor": {r.id for r in p.floors}, "metric": {m.name for m in p.metrics}, "grade": set(p.grade_ids)}
    names["exposure metric"] = set()
    if p.scoped is not None:  # the debtor's grade may be decided by an exposure's own floor
        names["floor"] |= {r.id for r in p.scoped.floors}
        names["exposure metric"] = {m.name for m in p.scoped.metrics}
    names["debtor floor"] = {r.id for r in p.floors}  # floor_exposures: a floor of each exposure names none
    names["rule"] = names["warning"] | names["action"] | names["floor"]
    names["decider"] = names["floor"] | {p.base_decider}
    names["exposure decider"] = names["decider"] | {"default"}
    return names


def _named(want: Any) -> Iterator[tuple[Any, tuple[Any, ...]]]:
    """The names an expectation value holds, each with its place under the key: a list's items, a map's keys."""
    if isinstance(want, list):
        yield from ((v, (j,)) for j, v in enumerate(want))
    elif isinstance(want, dict):
        yield from ((k, (k,)) for k in want)
    else:
        yield want, ()


def _element_reads(policies: Iterable[CompiledPolicy]) -> set[str]:
    """Each field the policies read in the elements of a scope, as a patch path names it with any index
    (``<list>[*].<field>``, as ``[*]`` stands for any index), and each element's key."""
    from ..decide.inputs import element_fields

    return {f"{element}.{f}" for p in policies for element, fields in element_fields(p).items() for f in fields}


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
    except PatchError as exc:
        result.failures.append(f"cannot build the client: {exc} [at {format_path(('cases', i, 'patch', exc.path))}]")
        return result
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
    for key, kind in EXPECTATIONS.items():  # each failure at the line of its expectation, for an editor to jump to
        if key in expect and (lines := kind.check(expect[key], record)):
            result.failures += lines
            result.failure_lines += [doc.locate(("cases", i, "expect", key))[0]] * len(lines)
    result.outcomes = rule_outcomes(policy, record)
    # a failing case pins nothing: which of its expectations held is no evidence
    pins = asserted_outcomes(policy, expect, result.outcomes)
    if result.passed:
        result.asserted = pins
    else:
        result.held_back = pins
    return result


def rule_outcomes(policy: CompiledPolicy, record: Mapping[str, Any]) -> dict[Outcome, bool]:
    """For one decision, whether each rule fired (True) or evaluated and did not (False); undetermined rules
    are left out: a null condition shows neither. An exposure's rules count per exposure (see ``Outcome``)."""
    out: dict[Outcome, bool] = {}
    undetermined = {(u["kind"], u["rule"]) for u in record["undetermined"] if "exposure" not in u}
    fired_floors = {f["id"] for f in record["classification"]["floors"]}
    for r in policy.floors:
        if ("classification", r.id) not in undetermined:
            out[("floor", r.id)] = r.id in fired_floors
    fired_warnings = {w["id"] for w in record["warnings"]}
    for w in policy.warnings:
        # A classification rule's warning is its floor (one rule, one condition): counted once, as the rule.
        if not w.from_rule and ("warning", w.id) not in undetermined:
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
        _metric_outcome(out, ("metric", m.name), m, record["metrics"][m.name])
    if policy.scoped is not None:
        _exposure_outcomes(out, policy, record)
    return out


def _metric_outcome(out: dict[Outcome, bool], key: Outcome, m: Any, v: Any) -> None:
    if m.expr.type == "bool":
        out[key] = bool(v) if v is not None else False
    elif m.expr.nullable:  # fired: has a value; not fired: null (a number that cannot be null is left out)
        out[key] = v is not None


def _exposure_outcomes(out: dict[Outcome, bool], policy: CompiledPolicy, record: Mapping[str, Any]) -> None:
    """Each exposure rule and metric, per exposure: its own floors (not the debtor's it lists after them)."""
    assert policy.scoped is not None
    undetermined = {(u["rule"], u.get("exposure")) for u in record["undetermined"] if u["kind"] == "classification"}
    for x in record.get("exposures") or ():
        eid = x["exposure_id"]
        fired = {f["id"] for f in x["floors"] if f.get("scope") != "debtor"}
        for r in policy.scoped.floors:
            if (r.id, eid) not in undetermined:
                out[("floor", r.id, eid)] = r.id in fired
        for m in policy.scoped.metrics:
            _metric_outcome(out, ("metric", m.name, eid), m, x["metrics"].get(m.name))


def asserted_outcomes(policy: CompiledPolicy, expect: Mapping[str, Any],
                      outcomes: Mapping[Outcome, bool]) -> dict[Outcome, bool]:
    """The rule outcomes of one decision (``outcomes``) that its case's expectation pins and that held.

    A rule is pinned firing by ``*_include``, an id in an exact list, ``decided_by``, ``restructuring`` or
    ``action_params``; pinned not firing by ``*_exclude``, its absence from an exact list (``floors``,
    ``warnings``, ``actions``), or for a floor, an expected ``grade`` better than the floor's grade. A metric is
    pinned by its expected value (a boolean, or null against a value); scorecard bands by an expected ``score``,
    which any band change would move. An exposure's rules are pinned per exposure, by ``exposures`` (see
    :func:`_pin_exposures`) or by the debtor's ``grade``. What a case merely exercises is not pinned.
    """
    pinned: dict[Outcome, set[bool]] = {}
    rule_warnings = {w.id for w in policy.warnings if w.from_rule}
    for key, kind in EXPECTATIONS.items():
        if kind.pins is not None and key in expect:
            for outcome, fired in kind.pins(expect[key], policy, outcomes):
                if outcome[0] == "warning" and outcome[1] in rule_warnings:
                    outcome = ("floor", outcome[1])  # expecting a rule's warning pins the rule
                pinned.setdefault(outcome, set()).add(fired)
    # A pin counts where it held; a rule that expectations pin both ways (an exact list leaving out an
    # action that suppressed_include names) counts as neither.
    return {key: outcomes[key] for key, fired in pinned.items() if fired == {outcomes.get(key)}}


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
    scope: str = "debtor"  # an exposure's rule (a policy with scopes) is evaluated, and pinned, per exposure
    boolean: bool = True  # a metric: true/false, or (a nullable number) a value/null
    # per outcome (fired, not fired), the failing cases whose expectations would pin it ("file:line")
    held_back: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())

    @property
    def name(self) -> str:
        """The rule as a report names it: ``floor overdue_90`` at the debtor, ``floor overdue_90 (exposure)``."""
        return f"{self.kind} {self.rule}" + ("" if self.scope == "debtor" else f" ({self.scope})")

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
        for pinned, happened, (never, unpinned), failing in zip(
                (self.asserted_fired, self.asserted_not_fired), (self.fired, self.not_fired), self._words(),
                self.held_back, strict=True):
            if not pinned:
                parts.append((unpinned if happened else never) + (
                    f" but the failing case at {', '.join(failing[:3])}, which counts once it passes" if failing
                    else ""))
        return "; ".join(parts)

    def _words(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """The two outcomes in words, each as never seen and as never pinned: a metric is true or false (or has a
        value or is null), a band is chosen or not, a rule fires or not."""
        # What the cases showed, not what the policy can do: 'null in no case' for a metric validate cannot prove
        # has a value (a case may still be unable to make it null: then the metric's expression says too little).
        if self.kind == "metric" and self.boolean:
            return ("true in no case", "no case expects it true"), ("false in no case", "no case expects it false")
        if self.kind == "metric":
            return (("a value in no case", "no case expects a value of it"),
                    ("null in no case", "no case expects it null"))
        if self.kind == "band":
            return ("chosen in no case", "no case expects it chosen"), ("chosen in every case",
                                                                         "no case expects another band")
        return ("fired in no case", "no case expects it to fire"), ("fired in every case",
                                                                     "no case expects it not to fire")

    @property
    def place(self) -> str:
        return f"{self.file}:{self.line}" if self.file and self.line else (self.file or "")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "rule": self.rule, "scope": self.scope, "status": self.status, "file": self.file,
                "line": self.line,
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


def imported_locations(policy: CompiledPolicy) -> dict[tuple[str, str], tuple[str, int | None]]:
    """File and line of each imported metric, in the module that defines it: coverage points there."""
    out: dict[tuple[str, str], tuple[str, int | None]] = {}
    docs = {f"{m.id} {m.version}": m for m in policy.modules}
    for name, origin in policy.imported.items():
        module = docs.get(origin)
        if module is not None:
            out[("metric", name)] = (module.file, load_yaml_text(module.text, module.file).locate(("metrics", name))[0])
    return out


def coverage(run: SuiteResult) -> dict[str, PolicyCoverage]:
    """Per policy version: every rule, what the cases exercised, and what their expectations pinned both ways.

    An exposure's rule is one rule (its scope named): fired on one exposure and pinned not firing on another
    (in the same case or another) covers it both ways.
    """
    seen: dict[str, dict[tuple[str, str], set[bool]]] = {}
    pinned: dict[str, dict[tuple[str, str], set[bool]]] = {}
    scoped: dict[str, set[tuple[str, str]]] = {}
    held_back: dict[str, dict[tuple[str, str, bool], list[str]]] = {}
    for r in run.results:
        for key, fired in r.held_back.items():
            place = f"{r.file}:{r.line}" if r.line else r.file
            cases = held_back.setdefault(r.policy, {}).setdefault((key[0], key[1], fired), [])
            if place not in cases:
                cases.append(place)
        per = seen.setdefault(r.policy, {})
        for key, fired in r.outcomes.items():
            per.setdefault((key[0], key[1]), set()).add(fired)
            if len(key) == 3:
                scoped.setdefault(r.policy, set()).add((key[0], key[1]))
        pins = pinned.setdefault(r.policy, {})
        for key, fired in r.asserted.items():
            pins.setdefault((key[0], key[1]), set()).add(fired)
    out: dict[str, PolicyCoverage] = {}
    for key, rules in seen.items():
        policy = run.policies.get(key)
        lines = rule_locations(policy) if policy is not None else {}
        places = {k: (policy.file, line) for k, line in lines.items()} if policy is not None else {}
        places.update(imported_locations(policy) if policy is not None else {})  # a module's metric, in its file
        graded = (policy.scoped.graded if policy is not None and policy.scoped is not None else None) or "exposure"
        pins = pinned.get(key, {})
        numbers = {m.name for m in (*policy.metrics, *(policy.scoped.metrics if policy.scoped else ()))
                   if m.expr.type != "bool"} if policy is not None else set()
        out[key] = PolicyCoverage(key, [
            RuleCoverage(kind, rule, True in values, False in values, True in pins.get((kind, rule), ()),
                         False in pins.get((kind, rule), ()),
                         *places.get((kind, rule), (policy.file if policy is not None else None, None)),
                         scope=graded if (kind, rule) in scoped.get(key, ()) else "debtor",
                         boolean=not (kind == "metric" and rule in numbers),
                         held_back=tuple(tuple(held_back.get(key, {}).get((kind, rule, f), ())) for f in (True, False)))
            for (kind, rule), values in sorted(rules.items())])
    return out
