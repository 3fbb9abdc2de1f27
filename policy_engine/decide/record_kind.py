"""A client record of another kind: one diagnostic naming the cause, not every field it lacks.

When a policy's record layout changes (client record 1.x, one ``loan``; client record 2.0, a debtor
with ``exposures``), a record of the old layout decided under the new version (because the new one
is in force on its day) would otherwise be refused with thirty missing fields. The cause is one:
the record is of another kind. It is recognised from the record's *shape*, the top-level lists and
objects it holds, against the shape the policy reads (its scopes' lists and the objects and lists
its inputs read), so it works for any policy: the record lacks a list or object the policy cannot
decide without (or holds it as the other of the two), carries lists or objects the policy does not
read, and another version of the same policy beside it reads it. That version names the kind the
record is and how to decide it (``--policy-version``, ``--as-of``, ``policy-engine convert``). A
misspelt name (``loans`` for ``loan``) or a mangled record is not another kind: the field-by-field
problems name what is wrong, as ``batch`` does.

Only the refusal path runs this, and a scoped record without its graded list: an accepted record
costs one dict look-up.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, PolicyEngineError
from ..frozen import Frozen
from ..policy.compiler import CompiledPolicy
from ..policy.registry import version_key

CODE = "wrong-record-kind"
LIST, OBJECT = "list", "object"
_SHOWN = 3  # fields named in the message; more are counted


class RecordShape(Frozen):
    """The top-level containers a policy reads: field -> ``list`` or ``object``; those it needs; every name."""

    containers: Mapping[str, str]
    needed: frozenset[str]  # a required input is inside, or the graded scope's list
    fields: frozenset[str]  # every top-level field the policy reads, containers or values

    def signature(self) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
        return tuple(sorted(self.containers.items())), tuple(sorted(self.needed))


def shape_of(policy: CompiledPolicy) -> RecordShape:
    """The record shape ``policy`` reads, from its inputs and scopes."""
    containers: dict[str, str] = {}
    needed: set[str] = set()
    fields = {"client_id", "as_of"}
    for spec in policy.inputs:
        top = spec.root[0]
        fields.add(top)
        if spec.series or len(spec.root) > 1:
            containers[top] = LIST if spec.series and len(spec.root) == 1 else OBJECT
            if spec.required:
                needed.add(top)
    scoped = policy.scoped
    if scoped is not None:
        for s in scoped.children(None):
            containers[s.list_field] = LIST
            fields.add(s.list_field)
            if s.name == scoped.graded:
                needed.add(s.list_field)
    return RecordShape(containers, frozenset(needed), frozenset(fields))


def _kind(value: Any) -> str | None:
    return LIST if isinstance(value, list) else OBJECT if isinstance(value, dict) else None


class Mismatch(Frozen):
    """How a record differs from a shape: containers it lacks, holds as the other kind, and holds unread."""

    missing: tuple[str, ...]
    clash: tuple[tuple[str, str], ...]  # (field, the kind the policy reads)
    foreign: tuple[str, ...]

    @property
    def other_kind(self) -> bool:
        return bool((self.missing or self.clash) and self.foreign)

    @property
    def fits(self) -> bool:
        return not (self.missing or self.clash)


def compare(shape: RecordShape, record: Mapping[str, Any]) -> Mismatch:
    """The record's top level against ``shape``; a misspelt container (same kind, a close name) is neither
    missing nor foreign (``exposure``, an object, is not a misspelt ``exposures``, a list)."""
    missing = [c for c in sorted(shape.needed) if record.get(c) is None]
    clash = tuple((c, k) for c, k in sorted(shape.containers.items())
                  if record.get(c) is not None and _kind(record[c]) != k)
    foreign = [k for k, v in record.items() if _kind(v) is not None and k not in shape.fields]
    for name in list(missing):
        alike = [f for f in foreign if _kind(record[f]) == shape.containers[name]]
        near = difflib.get_close_matches(name, alike, n=1, cutoff=0.8)
        if near:  # 'loans' for 'loan', both objects: a typo, which the field-by-field problems name
            missing.remove(name)
            foreign.remove(near[0])
    return Mismatch(tuple(missing), clash, tuple(foreign))


# ------------------------------------------------------------------ the versions beside a policy

class _Version(Frozen):
    version: str
    status: str
    effective_from: str
    effective_to: str | None
    shape: RecordShape


_BESIDE: dict[tuple[str, str], tuple[_Version, ...]] = {}


def versions_beside(policy: CompiledPolicy) -> tuple[_Version, ...]:
    """The other versions of ``policy``'s id in its folder (versions side by side), with their shapes.

    Read once per policy, and only when a record is refused: a version that cannot be read is left
    out (``validate`` reports it), never an error of this record.
    """
    key = (policy.file, policy.sha256)
    if key not in _BESIDE:
        from ..policy.registry import is_policy_file, load_policy, read_header

        found: list[_Version] = []
        try:
            files = sorted(f for f in Path(policy.file).parent.iterdir() if f.is_file() and is_policy_file(f))
        except OSError:  # a policy replayed from the store, or made from text: nothing beside it
            files = []
        for f in files:
            header = read_header(f)
            if header is None or header.id != policy.id or header.version == policy.version:
                continue
            try:
                other = load_policy(f, named=False)
            except PolicyEngineError:
                continue
            found.append(_Version(other.version, other.status, other.effective_from, other.effective_to,
                                  shape_of(other)))
        _BESIDE[key] = tuple(sorted(found, key=lambda v: version_key(v.version)))
    return _BESIDE[key]


def record_label(versions: Sequence[str]) -> str:
    """The kind of record some versions read: ``client record 2.0``, ``client record 1.x``, or the versions."""
    parts = {tuple(v.split(".")[:2]) for v in versions}
    if len(parts) == 1:
        return "client record " + ".".join(next(iter(parts)))
    if len({p[0] for p in parts}) == 1:
        return f"client record {next(iter(parts))[0]}.x"
    return "the client record of versions " + ", ".join(versions)


def _names(fields: Sequence[str]) -> str:
    shown = ", ".join(f"`{f}`" for f in fields[:_SHOWN])
    return shown + (f" and {len(fields) - _SHOWN} more" if len(fields) > _SHOWN else "")


def _period(v: _Version) -> str:
    if v.effective_to is None:
        return f"--as-of {v.effective_from} or later ({v.version} is in force from {v.effective_from})"
    return (f"--as-of a day from {v.effective_from} to {v.effective_to} "
            f"({v.version} is in force then)")


def _reads(mismatch: Mismatch) -> str:
    """What the policy reads and the record lacks: ``with `exposures`, `events` as a list``."""
    return "with " + ", ".join([f"`{c}`" for c in mismatch.missing] +
                               [f"`{c}` as {_a(k)}" for c, k in mismatch.clash])


def _a(kind: str) -> str:
    return "a list" if kind == LIST else "an object"


def _has(mismatch: Mismatch, first: frozenset[str]) -> str:
    """What the record holds and lacks: ``it has `loan`, `financials`, no `exposures`, `events` as an object``."""
    foreign = sorted(mismatch.foreign, key=lambda f: f not in first)  # stable: the record's order otherwise
    parts = [f"it has {_names(foreign)}"]
    if mismatch.missing:
        parts.append(f"no {_names(mismatch.missing)}")
    parts += [f"`{c}` as {_a(OBJECT if k == LIST else LIST)}" for c, k in mismatch.clash]
    return ", ".join(parts)


def wrong_kind(policy: CompiledPolicy, record: Any, day: str, file: str | None = None) -> Diagnostic | None:
    """The diagnostic for a record of the kind another version of ``policy`` reads, or None.

    Only a version beside it that reads the record names it another kind: a record that merely lacks
    a container and carries an unread one (a mangled record, another system's export) keeps its
    field-by-field problems, which ``batch`` gives too.
    """
    if not isinstance(record, dict):
        return None
    shape = shape_of(policy)
    mismatch = compare(shape, record)
    if not mismatch.other_kind:
        return None
    others = versions_beside(policy)
    fitting = [v for v in others if compare(v.shape, record).fits]
    if not fitting:
        return None
    # the version that reads it on its day, else the one in force today (not one that is yet to come into force),
    # else the latest that reads it
    today = _dt.date.today().isoformat()
    best = next((v for d in (day, today) for v in reversed(fitting) if v.status == "active" and v.effective_from <= d
                 and (v.effective_to is None or d <= v.effective_to)), fitting[-1])
    same = [v.version for v in others if v.shape.signature() == shape.signature()]
    own = record_label(sorted({policy.version, *same}, key=version_key))
    in_force = policy.status == "active" and policy.applies_on(day)
    version = f"version {policy.version}" + (f", in force on {day}," if in_force else "")
    ways = [_PINNED.format(best.version)]
    if best.status == "active":
        ways.append(_period(best))
    if version_key(best.version) < version_key(policy.version):
        ways.append(f"restate it as {own} with `policy-engine convert`")
    return Diagnostic(CODE, f"this is a {record_label([v.version for v in fitting])} "
                      f"({_has(mismatch, best.shape.needed)}); {version} reads {own} ({_reads(mismatch)})",
                      file=file, path="(record)", hint="decide it with " + "; or ".join(ways))


_PINNED = "--policy-version {}"  # how decide and batch choose the version that reads a record


def hint_for_two_versions(hint: str | None) -> str | None:
    """A wrong-record-kind hint as ``impact`` takes it: its versions are its arguments, not --policy-version."""
    if not hint:
        return None
    pinned = re.escape("decide it with " + _PINNED).replace(r"\{\}", r"([\w.+-]+)")
    return re.sub(pinned, r"compare versions that read it (ID@\1)", hint)


def decision_day(as_of: str | _dt.date | None, record: Any) -> str:
    """The day a decision is for, as the message names it (the option, the record's as_of, else today)."""
    if isinstance(as_of, _dt.date):
        return as_of.isoformat()
    if as_of is not None:
        return str(as_of)
    given = record.get("as_of") if isinstance(record, dict) else None
    return given if isinstance(given, str) else _dt.date.today().isoformat()


def graded_list(policy: CompiledPolicy) -> str | None:
    """The record's list of the graded scope (``exposures``), when it is a child of the debtor."""
    scoped = policy.scoped
    if scoped is None or scoped.graded is None:
        return None
    spec = scoped.scope(scoped.graded)
    return spec.list_field if spec.parent is None else None


def accepted_of_another_kind(policy: CompiledPolicy, record: dict[str, Any], graded: str | None,
                             as_of: str | _dt.date | None = None, file: str | None = None) -> Diagnostic | None:
    """A record the checks accepted, without the graded scope's list, that another version reads.

    A list absent is "none" to a scoped policy, so a client record 1.x whose debtor fields happen to
    be there would be decided as a debtor with no exposures: a silently wrong decision. One dict
    look-up when the list is there, which is every record of the policy's own kind.
    """
    if graded is None or record.get(graded) is not None:
        return None
    return wrong_kind(policy, record, decision_day(as_of, record), file)


def refusal(policy: CompiledPolicy, record: Any, problems: list[Diagnostic], as_of: str | _dt.date | None = None,
            file: str | None = None) -> list[Diagnostic]:
    """The problems to refuse ``record`` with: one ``wrong-record-kind`` when it is of another kind (see
    :func:`of_another_kind`)."""
    found = of_another_kind(policy, record, decision_day(as_of, record), file)
    return problems if found is None else [found]


def of_another_kind(policy: CompiledPolicy, record: Any, day: str, file: str | None = None) -> Diagnostic | None:
    """One ``wrong-record-kind`` for a decision record (what ``decide`` printed, given back in place of the client's
    facts) or a record another version reads; None for a record of ``policy``'s own kind. Every path that refuses
    a record asks this, so decide, a stream and each batch word it alike."""
    return decision_given(record, file) or wrong_kind(policy, record, day, file)


_DECISION_FIELDS = frozenset({"decision_id", "input_sha256", "classification"})


def decision_given(record: Any, file: str | None = None) -> Diagnostic | None:
    """A decision record given where a client record goes: named as such, not as a dozen missing client fields."""
    if not isinstance(record, dict) or not record.keys() >= _DECISION_FIELDS:
        return None
    made = record.get("policy") if isinstance(record.get("policy"), dict) else {}
    under = f" under {made.get('id')} {made.get('version')}" if made.get("id") else ""
    decision = record.get("decision_id")
    return Diagnostic(CODE, f"this is a decision record (decision {decision} of client {record.get('client_id')}"
                      f"{under}), not a client record: a decision is made from the client's facts",
                      file=file, path="(record)",
                      hint=f"`policy-engine audit show {decision}` shows and explains a recorded decision; or give "
                      "the client record it was made from")


__all__ = ["CODE", "RecordShape", "accepted_of_another_kind", "compare", "decision_given", "graded_list",
           "of_another_kind", "record_label", "refusal", "shape_of", "versions_beside", "wrong_kind"]
