"""``make demo``: decide every shipped sample client and print a readable summary."""

from __future__ import annotations

import sys
import unicodedata
from collections import Counter
from pathlib import Path

from .decide.evaluate import Decider
from .diagnostics import PolicyEngineError
from .policy.loader import parse_json_text
from .policy.registry import Registry
from .record.audit import AuditStore, default_path

SAMPLES = Path("policies/loss-client-management/samples/clients")


def _pad(text: str, width: int) -> str:
    """Pad for a terminal, where a CJK character takes two columns."""
    shown = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - shown)


def main(argv: list[str] | None = None) -> int:
    registry = Registry("policies")
    files = sorted(SAMPLES.glob("*.json"))
    if not files:
        print(f"no sample clients in {SAMPLES}", file=sys.stderr)
        return 2
    deciders: dict[str, Decider] = {}
    grades: Counter[str] = Counter()
    recorded: list[tuple[object, dict, dict]] = []
    print(f"{'client':<8} {'industry':<14} {'policy':<7} {'grade':<21} {'decided by':<36} {'warnings':>8}  actions")
    print("-" * 120)
    for f in files:
        try:
            client = parse_json_text(f.read_bytes())
            policy = registry.select("loss-client-management", as_of=client.get("as_of"))
            decider = deciders.setdefault(policy.key, Decider(policy))
            d = decider.decide(client)
            recorded.append((policy, d, client))
        except PolicyEngineError as e:
            print(f"{f.name}: {e}", file=sys.stderr)
            return e.exit_code
        c = d["classification"]
        grades[c["grade"]] += 1
        actions = ", ".join(a["id"] for a in d["actions"]) or "-"
        print(f"{d['client_id']:<8} {d['segment']:<14} {d['policy']['version']:<7} "
              f"{_pad(c['label']['en'] + ' ' + c['label']['zh'], 21)} {c['decided_by']:<36} "
              f"{len(d['warnings']):>8}  {actions}")
    print("-" * 120)
    print("by grade: " + ", ".join(f"{g}={grades[g]}" for g in
                                   ("pass", "special_mention", "substandard", "doubtful", "loss")))
    store_path = default_path()
    try:
        with AuditStore(store_path) as store:
            for policy, d, client in recorded:
                store.append(policy, [(d, client)])
            checked, broken = store.verify()
            rows = list(store.query())[-len(recorded):]
            replays = Counter(store.replay(r)[0] for r in rows)
    except PolicyEngineError as e:  # a store that is not ours, or a newer one: say so, as the CLI would
        print(f"{len(files)} clients decided; not recorded:", file=sys.stderr)
        print("\n".join(d.render() for d in e.diagnostics), file=sys.stderr)
        return e.exit_code
    print(f"{len(files)} clients decided and recorded in {store_path} "
          f"(chain of {checked} record(s): {'intact' if broken is None else 'BROKEN at ' + str(broken.seq)}; "
          f"replayed now: {replays['identical']} identical, {replays['different']} different).")
    print("Next:  .venv/bin/policy-engine explain -p loss-client-management "
          f"-c {files[1]} --lang zh")
    for command in ("audit list", "audit verify", "audit replay --all"):
        print(f"       .venv/bin/policy-engine {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
