"""What a YAML document is by its modeline or its keys: a policy, a policy test file or a stress scenario.

Read where a policy belongs (``decide -p``, ``diff``, ``impact``): checked as a policy, a test file or a scenario
gives a dozen schema errors about keys a policy needs, none of them the real answer.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from ..diagnostics import Diagnostic, UsageError
from .loader import Document

Kind = Literal["policy", "policy-tests", "scenario"]
MODELINE = re.compile(r"\$schema=\S*?([a-z-]+)\.schema\.json")


def kind_of(doc: Document) -> Kind:
    """The kind a loaded YAML document declares (modeline) or has the shape of (its keys)."""
    m = MODELINE.search(doc.text.split("\n", 1)[0]) if doc.text.startswith("#") else None
    if m and m[1] in ("policy", "policy-tests", "scenario"):
        return m[1]  # type: ignore[return-value]
    data = doc.data
    if isinstance(data, dict) and "cases" in data and "scenario" not in data:
        return "policy-tests"
    if isinstance(data, dict) and "shocks" in data:
        return "scenario"
    return "policy"


def refuse_other_kind(doc: Document, ref: str) -> None:
    """Refuse a test file or a scenario read where a policy belongs (``decide -p``, diff, impact, simulate)."""
    kind = kind_of(doc)
    if kind == "policy":
        return
    file = ref if Path(ref).exists() or ":" not in ref else ref.partition(":")[2]  # REV:path: the working file
    what, run = (("a policy test file", f"`policy-engine test {file}` runs its cases") if kind == "policy-tests"
                 else ("a stress scenario", f"`policy-engine simulate POLICY --scenario {file} --portfolio FILE` "
                                            "applies it"))
    raise UsageError([Diagnostic("not-a-policy", f"{ref} is {what}, not a policy", file=ref, hint=run)])
