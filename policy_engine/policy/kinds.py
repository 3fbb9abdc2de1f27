"""What a YAML document is by its modeline or its keys: a policy, a policy test file or a stress scenario.

Read where a policy belongs (``decide -p``, ``diff``, ``impact``): checked as a policy, a test file or a scenario
gives a dozen schema errors about keys a policy needs, none of them the real answer. So would a client record or
a portfolio file (``-p`` and ``-c`` swapped, ``validate portfolio.csv``), and a policy read as a client record is
"invalid JSON at line 1 column 1": each is named as what it is, with the command or option that reads it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from ..diagnostics import Diagnostic, PolicyError, UsageError
from .loader import Document, load_yaml_text

Kind = Literal["policy", "policy-tests", "scenario"]
MODELINE = re.compile(r"\$schema=\S*?([a-z-]+)\.schema\.json")
# The portfolio files `batch` reads (its READ_FORMATS), by extension: named where a policy belongs, one is refused as
# what it is before it is read as YAML (a CSV is then one string, "a policy is a mapping of keys"; Parquet, bytes)
PORTFOLIO_FILES = {".csv": "a portfolio table (CSV)", ".parquet": "a portfolio table (Parquet)",
                   ".pq": "a portfolio table (Parquet)", ".xlsx": "a portfolio spreadsheet (Excel)",
                   ".jsonl": "a portfolio of JSON Lines", ".ndjson": "a portfolio of JSON Lines"}


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


def is_client_record(data: Any) -> bool:
    """A client record (1.x, or a debtor of 2.0): ``client_id`` at its top, where a policy has ``id`` and
    ``version``."""
    return isinstance(data, dict) and "client_id" in data and not {"id", "version"} & data.keys()


def refuse_portfolio_file(ref: str) -> None:
    """Refuse a portfolio file (by its extension) named where a policy belongs, before it is read as YAML."""
    what = PORTFOLIO_FILES.get(Path(ref).suffix.lower())
    if what is not None:
        raise UsageError([Diagnostic("not-a-policy", f"{ref} is {what}, not a policy", file=ref,
                                     hint=f"`policy-engine batch {ref} -p POLICY` decides each of its clients")])


def refuse_other_kind(doc: Document, ref: str) -> None:
    """Refuse a test file, a scenario, a client record or a portfolio file read where a policy belongs
    (``decide -p``, diff, impact, simulate, validate)."""
    refuse_portfolio_file(ref)  # a one-line CSV or JSON Lines file reads as YAML too
    kind = kind_of(doc)
    file = ref if Path(ref).exists() or ":" not in ref else ref.partition(":")[2]  # REV:path: the working file
    if kind == "policy" and is_client_record(doc.data):
        raise UsageError([Diagnostic("not-a-policy", f"{ref} is a client record, not a policy", file=ref,
                                     hint=f"pass it with -c: `-p POLICY -c {file}`")])
    if kind == "policy":
        return
    what, run = (("a policy test file", f"`policy-engine test {file}` runs its cases") if kind == "policy-tests"
                 else ("a stress scenario", f"`policy-engine simulate POLICY --scenario {file} --portfolio FILE` "
                                            "applies it"))
    raise UsageError([Diagnostic("not-a-policy", f"{ref} is {what}, not a policy", file=ref, hint=run)])


def refuse_as_client(text: str, name: str) -> None:
    """Refuse a policy, a module, a test file or a scenario given where a client record belongs (``decide -c``):
    read as JSON it was "invalid JSON at line 1 column 1", which sent the reader looking inside the record. Only
    the refusal path runs this (text that is no JSON); a text that is none of them is left to its JSON error."""
    portfolio = PORTFOLIO_FILES.get(Path(name).suffix.lower())
    if portfolio is not None:  # several records, or a table: one client's record is one JSON object
        raise UsageError([Diagnostic("not-a-client", f"{name} is {portfolio}, not one client record", file=name,
                                     hint=f"`policy-engine batch {name} -p POLICY` decides each of its clients")])
    try:
        doc = load_yaml_text(text, name)
    except PolicyError:
        return
    data = doc.data
    if not isinstance(data, dict):
        return
    kind = kind_of(doc)
    if data.get("kind") == "module":
        what = "a module (modules are imported by policies)"
    elif kind == "policy" and {"id", "version"} <= data.keys():
        what = "a policy"
    elif kind != "policy":
        what = "a policy test file" if kind == "policy-tests" else "a stress scenario"
    else:
        return
    hint = (f"pass it with -p: `-p {name} -c CLIENT.json`" if what == "a policy" and name != "<stdin>" else
            "-c (or stdin) takes one client record (JSON), -p the policy")
    raise UsageError([Diagnostic("not-a-client", f"{name} is {what}, not a client record", file=name, hint=hint)])
