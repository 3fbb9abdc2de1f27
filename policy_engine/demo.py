"""``make demo``: decide every shipped sample client and debtor by date, record, verify and replay them.

Two record kinds ship with the reference policy: client record 1.x (one loan, ``samples/clients/``),
decided by the version in force on each record's ``as_of`` (1.1.0), and client record 2.0 (a debtor
with several exposures, ``samples/debtors/``), decided by 2.0.0. Neither is pinned: the registry
chooses by date, as ``decide -p loss-client-management`` does.
"""

from __future__ import annotations

import sys
import unicodedata
from collections import Counter
from collections.abc import Sequence
from itertools import groupby
from pathlib import Path
from typing import Any

from .decide.evaluate import Decider
from .diagnostics import InputError, PolicyEngineError
from .policy.loader import JSONInputError, parse_json_text
from .policy.registry import Registry
from .record.audit import AuditStore, default_path

POLICY = "loss-client-management"
SAMPLES = Path("policies/loss-client-management/samples/clients")
DEBTORS = Path("policies/loss-client-management/samples/debtors")
GRADES = ("pass", "special_mention", "substandard", "doubtful", "loss")
EXAMPLE = "05-contagion-three-exposures.json"  # the 10% rule across three exposures, for `explain --lang zh`

Decided = tuple[Any, dict[str, Any], dict[str, Any]]  # (policy, decision, record)


def _pad(text: str, width: int) -> str:
    """Pad for a terminal, where a CJK character takes two columns."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - shown)


def short_grade(grade: str) -> str:
    """``special_mention`` -> ``SM``: the initials of a grade id, for a line per debtor."""
    return "".join(word[0] for word in grade.split("_")).upper()


def exposure_grades(decision: dict[str, Any]) -> str:
    """``E1 P→S  E2 S``: each exposure's final grade, after its own grade when a debtor rule changed it."""
    out = []
    for e in decision.get("exposures", []):
        own, final = short_grade(e["own_grade"]), short_grade(e["grade"])
        out.append(f"{e['exposure_id']} {final if own == final else own + '→' + final}")
    return "  ".join(out)


def decided_by(decision: dict[str, Any]) -> str:
    """The deciding rule, and for a debtor the exposure whose grade it is (``contagion_10pct @E1``)."""
    c = decision["classification"]
    at = c.get("decided_by_exposure")
    if at:
        return f"{c['decided_by']} @{at}"
    debtor_rule = decision.get("exposures") and c["decided_by"] not in ("default", "scorecard")
    return c["decided_by"] + (" (debtor)" if debtor_rule else "")


def _grade_label(decision: dict[str, Any]) -> str:
    c = decision["classification"]
    return f"{c['label']['en']} {c['label']['zh']}"


def _actions(decision: dict[str, Any]) -> str:
    return ", ".join(a["id"] for a in decision["actions"]) or "-"


def decide_files(registry: Registry, files: Sequence[Path]) -> list[Decided]:
    """Each file decided under the version in force on its ``as_of`` (a compiled policy is reused)."""
    deciders: dict[str, Decider] = {}
    out: list[Decided] = []
    for f in files:
        try:
            record = parse_json_text(f.read_bytes())
        except JSONInputError as e:
            raise InputError(e.diagnostics(file=str(f))) from None
        policy = registry.select(POLICY, as_of=record.get("as_of"))
        decider = deciders.setdefault(policy.key, Decider(policy))
        out.append((policy, decider.decide(record, file=str(f)), record))
    return out


def print_clients(decided: Sequence[Decided]) -> None:
    """One line per client record 1.x."""
    print(f"Client record 1.x: {len(decided)} sample clients ({SAMPLES}/), each under the version in force "
          "on its as_of")
    print(f"{'client':<8} {'industry':<14} {'policy':<7} {'grade':<21} {'decided by':<36} {'warnings':>8}  actions")
    print("-" * 120)
    for _, d, _ in decided:
        c = d["classification"]
        print(f"{d['client_id']:<8} {d['segment']:<14} {d['policy']['version']:<7} "
              f"{_pad(_grade_label(d), 21)} {c['decided_by']:<36} {len(d['warnings']):>8}  {_actions(d)}")
    print("-" * 120)
    print("by grade: " + _by_grade(decided))


def print_debtors(decided: Sequence[Decided]) -> None:
    """One line per debtor (client record 2.0): its exposures' grades compactly, then what decided it."""
    print(f"Client record 2.0: {len(decided)} sample debtors ({DEBTORS}/), each under the version in force "
          "on its as_of")
    width = max([len("exposures (own→final)"), *(len(exposure_grades(d)) for _, d, _ in decided)])
    rule = max([len("decided by"), *(len(decided_by(d)) for _, d, _ in decided)])
    name = max([len("debtor"), *(len(d["client_id"]) for _, d, _ in decided)])
    head = (f"{'debtor':<{name}} {'policy':<7} {'exp':>3}  {'grade':<21} {'exposures (own→final)':<{width}}  "
            f"{'decided by':<{rule}} {'warnings':>8}  actions")
    print(head)
    print("-" * max(120, len(head)))
    for _, d, _ in decided:
        print(f"{d['client_id']:<{name}} {d['policy']['version']:<7} {len(d.get('exposures', [])):>3}  "
              f"{_pad(_grade_label(d), 21)} {exposure_grades(d):<{width}}  {decided_by(d):<{rule}} "
              f"{len(d['warnings']):>8}  {_actions(d)}")
        if d["warnings"]:
            print(f"{'':<{name}}   warnings: " + ", ".join(w["id"] for w in d["warnings"]))
    print("-" * max(120, len(head)))
    exposures = Counter(e["grade"] for _, d, _ in decided for e in d.get("exposures", []))
    print("by debtor grade: " + _by_grade(decided))
    print(f"by exposure grade ({sum(exposures.values())} exposures): "
          + ", ".join(f"{g}={exposures[g]}" for g in GRADES))
    print("grades: " + ", ".join(f"{short_grade(g)} {g}" for g in GRADES) + "; own→final: a debtor rule (the 10% "
          "rule, bureau amounts, a downgrade) lowered the exposure's own grade; @E1: the exposure whose grade it is")


def _by_grade(decided: Sequence[Decided]) -> str:
    grades = Counter(d["classification"]["grade"] for _, d, _ in decided)
    return ", ".join(f"{g}={grades[g]}" for g in GRADES)


def record_and_replay(decided: Sequence[Decided]) -> tuple[Path, int, Any, Counter[str]]:
    """Append every decision to the store, verify the chain and replay what was just recorded."""
    store_path = default_path()
    with AuditStore(store_path) as store:
        for policy, run in groupby(decided, key=lambda item: item[0]):  # one transaction per version in a row
            store.append(policy, [(d, record) for _, d, record in run])
        checked, broken = store.verify()
        rows = list(store.query())[-len(decided):]
        replays = Counter(store.replay(r)[0] for r in rows)
    return store_path, checked, broken, replays


def example(debtors: Sequence[Path]) -> Path:
    """The debtor the "Next:" hint explains: the contagion sample, else the one with the most exposures."""
    named = [f for f in debtors if f.name == EXAMPLE]
    return named[0] if named else max(debtors, key=lambda f: f.read_bytes().count(b'"exposure_id"'))


def main(argv: list[str] | None = None) -> int:
    registry = Registry("policies")
    clients, debtors = sorted(SAMPLES.glob("*.json")), sorted(DEBTORS.glob("*.json"))
    if not clients or not debtors:
        print(f"no sample clients in {SAMPLES} or no sample debtors in {DEBTORS}", file=sys.stderr)
        return 2
    try:
        one_loan = decide_files(registry, clients)
        several = decide_files(registry, debtors)
    except PolicyEngineError as e:
        print("\n".join(d.render() for d in e.diagnostics), file=sys.stderr)
        return e.exit_code
    print_clients(one_loan)
    print()
    print_debtors(several)
    print()
    done = f"{len(clients)} clients and {len(debtors)} debtors decided"
    try:
        store_path, checked, broken, replays = record_and_replay([*one_loan, *several])
    except PolicyEngineError as e:  # a store that is not ours, or a newer one: say so, as the CLI would
        print(f"{done}; not recorded:", file=sys.stderr)
        print("\n".join(d.render() for d in e.diagnostics), file=sys.stderr)
        return e.exit_code
    print(f"{done} and recorded in {store_path} "
          f"(chain of {checked} record(s): {'intact' if broken is None else 'BROKEN at ' + str(broken.seq)}; "
          f"replayed now: {replays['identical']} identical, {replays['different']} different).")
    print(f"Next:  .venv/bin/policy-engine explain -p {POLICY} -c {example(debtors)} --lang zh")
    print(f"       .venv/bin/policy-engine explain -p {POLICY} -c {clients[1]} --lang zh")
    for command in ("audit list", "audit verify", "audit replay --all"):
        print(f"       .venv/bin/policy-engine {command}")
    return 0 if broken is None and replays["different"] == 0 else 6


if __name__ == "__main__":
    sys.exit(main())
