"""``policy-engine init NAME``: a new policy that validates and passes its test from the first minute.

Written under the policies folder: ``NAME/policy-1.0.0.yaml`` (with the schema modeline that
gives editors completion and inline errors), ``NAME/tests/basic.yaml`` (one case that passes)
and ``NAME/samples/clients/example.json`` (the client that case reads), with
``NAME/client.schema.json``: the record this policy reads, generated from its inputs (what
``schema client -p NAME`` prints), not the reference policy's record. The modeline needs the
policy schemas next to the project, so they are written to ``schemas/`` beside the policies
folder when that folder does not have them yet. Nothing that exists is overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
from pathlib import Path

from .diagnostics import Diagnostic, UsageError
from .portfolio.quarters import quarter_ends

NAME = re.compile(r"^[a-z][a-z0-9-]{1,62}$")  # the policy schema's id pattern
SCHEMAS = ("policy", "policy-tests")  # the client schema is the new policy's own: see init()


def _template(file: str, **values: str) -> str:
    """A starter file of ``templates/`` (policy text kept as YAML, not inside Python) with its @KEY@ markers set."""
    text = (Path(__file__).parent / "templates" / file).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    return text


def _modeline(target: Path, schema: Path) -> str:
    return Path(os.path.relpath(schema, target.parent)).as_posix()


def init(name: str, policies: Path, today: dt.date | None = None, debtor: bool = False) -> list[Path]:
    """Write the new policy, its test and sample client; the files written, in order. ``debtor``: a policy
    with scopes, deciding a debtor with several exposures and their repayment schedules."""
    if not NAME.match(name):
        raise UsageError([Diagnostic("bad-policy-name", f"'{name}' is not a policy id",
                                     hint="lower-case letters, digits and hyphens, starting with a letter, "
                                          "e.g. sme-working-capital")])
    folder = policies / name
    if folder.exists():
        raise UsageError([Diagnostic("policy-exists", f"{folder} already exists; nothing was written",
                                     hint="choose another name, or edit the policy that is there")])
    from .policy.schemas import schema_path

    day = today or dt.date.today()
    written: list[Path] = []
    schemas = policies.parent / "schemas"
    for s in SCHEMAS:
        target = schemas / f"{s}.schema.json"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(schema_path(s), target)
            written.append(target)
    policy_file = folder / "policy-1.0.0.yaml"
    tests_file = folder / "tests" / "basic.yaml"
    client_file = folder / "samples" / "clients" / "example.json"
    for f in (policy_file, tests_file, client_file):
        f.parent.mkdir(parents=True, exist_ok=True)
    kind = "debtor-" if debtor else ""
    policy_file.write_text(_template(f"{kind}policy.yaml", NAME=name, TODAY=day.isoformat(),
                                     SCHEMA=_modeline(policy_file, schemas / "policy.schema.json")), encoding="utf-8")
    tests_file.write_text(_template(f"{kind}tests.yaml", NAME=name,
                                    SCHEMA=_modeline(tests_file, schemas / "policy-tests.schema.json")),
                          encoding="utf-8")
    client_file.write_text(_example_debtor(day) if debtor else json.dumps(_example_client(day), indent=2) + "\n",
                           encoding="utf-8")
    contract_file = folder / "client.schema.json"
    contract_file.write_text(_record_schema(policy_file), encoding="utf-8")
    return [*written, policy_file, tests_file, client_file, contract_file]


def _example_client(day: dt.date) -> dict[str, object]:
    periods = quarter_ends(day, 2)
    return {"client_id": "EXAMPLE-1", "as_of": day.isoformat(), "loan": {"overdue_days": 0},
            "financials": [{"period_end": periods[0], "revenue": 1_000_000, "net_income": 40_000},
                           {"period_end": periods[1], "revenue": 1_050_000, "net_income": 45_000}]}


def _example_debtor(day: dt.date) -> str:
    """Two current exposures, each with its last three monthly instalments paid on their due dates."""
    first = day.replace(day=1)
    due = {f"DUE_{k}": (_add_months(first, k - 3) - dt.timedelta(days=1)).isoformat() for k in (1, 2, 3)}
    text = _template("debtor-example.json", AS_OF=day.isoformat(), OPENED_E1=_add_months(day, -30).isoformat(),
                     OPENED_E2=_add_months(day, -14).isoformat(), **due)
    return json.dumps(json.loads(text), indent=2) + "\n"  # as the other example is written


def _add_months(d: dt.date, n: int) -> dt.date:
    import calendar

    y, m = divmod(d.month - 1 + n, 12)
    year, month = d.year + y, m + 1
    return d.replace(year=year, month=month, day=min(d.day, calendar.monthrange(year, month)[1]))


def _record_schema(policy_file: Path) -> str:
    """The JSON Schema of the record the new policy reads: it changes as the author edits the inputs,
    so `policy-engine schema client -p NAME` regenerates it."""
    from .decide.contract import dumps, record_schema
    from .policy.registry import load_policy

    return dumps(record_schema(load_policy(policy_file)))
