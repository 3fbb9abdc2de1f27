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

POLICY = """\
# yaml-language-server: $schema={schema}
#
# {name}: a new policy. Edit the inputs, metrics, scorecard, floors, warnings and actions;
# `policy-engine validate` checks it, `policy-engine test` runs the cases in tests/.
id: {name}
version: 1.0.0
title: {{zh: {name}, en: {name}}}
status: active
owner: Credit Risk Policy Team
effective_from: {today}
effective_to: null
changelog:
  - version: 1.0.0
    date: {today}
    changes: ["first version, from `policy-engine init`"]
inputs:
  overdue_days: {{from: loan.overdue_days, type: integer, required: true, min: 0, unit: days}}
  revenue: {{from: "financials[*].revenue", type: number}}
  net_income: {{from: "financials[*].net_income", type: number}}
parameters:
  loss_quarters_warning: {{value: 2}}
metrics:
  margin:
    expr: "ratio(last(net_income), last(revenue))"
    format: percent
    label: {{zh: 净利率, en: Net margin}}
  loss_quarters:
    expr: "streak(net_income, '<', 0)"
    format: integer
    label: {{zh: 连续亏损季度数, en: Consecutive loss quarters}}
key_figures: [margin, loss_quarters]  # what an explanation shows under "Key figures"
scorecard:
  factors:
    - id: margin
      metric: margin
      missing_points: -10
      bands:
        - {{max: 0, points: -10}}
        - {{min: 0, points: 10}}
  grades:
    - {{max: 0, grade: special_mention}}
    - {{min: 0, grade: pass}}
classification:
  scale:
    - {{id: pass, zh: 正常, en: Pass}}
    - {{id: special_mention, zh: 关注, en: Special mention}}
    - {{id: substandard, zh: 次级, en: Substandard, nonperforming: true}}
    - {{id: doubtful, zh: 可疑, en: Doubtful, nonperforming: true}}
    - {{id: loss, zh: 损失, en: Loss, nonperforming: true}}
  rules:
    - id: overdue_over_90
      when: overdue_days > 90
      floor: substandard
      source: 《商业银行金融资产风险分类办法》第十条：逾期超过90天
warnings:
  - id: losses
    when: loss_quarters >= loss_quarters_warning
    severity: high
    category: profitability
    message:
      zh: 连续{{loss_quarters}}个季度净亏损
      en: Net loss for {{loss_quarters}} consecutive quarters
actions:
  - id: monthly_review
    action: review_meeting
    when: fired('losses')
    params: {{cadence: monthly}}
    priority: 10
    reason: {{zh: 连续亏损，按月检视, en: Consecutive losses; review monthly}}
"""

TESTS = """\
# yaml-language-server: $schema={schema}
policy: {name}
cases:
  - name: a current, profitable client is pass by the scorecard
    client: ../samples/clients/example.json
    expect: {{grade: pass, decided_by: scorecard, warnings: [], actions: []}}
"""


def _modeline(target: Path, schema: Path) -> str:
    return Path(os.path.relpath(schema, target.parent)).as_posix()


def init(name: str, policies: Path, today: dt.date | None = None) -> list[Path]:
    """Write the new policy, its test and sample client; the files written, in order."""
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
    policy_file.write_text(POLICY.format(name=name, today=day.isoformat(),
                                         schema=_modeline(policy_file, schemas / "policy.schema.json")),
                           encoding="utf-8")
    tests_file.write_text(TESTS.format(name=name, schema=_modeline(tests_file, schemas / "policy-tests.schema.json")),
                          encoding="utf-8")
    periods = quarter_ends(day, 2)
    client = {"client_id": "EXAMPLE-1", "as_of": day.isoformat(), "loan": {"overdue_days": 0},
              "financials": [{"period_end": periods[0], "revenue": 1_000_000, "net_income": 40_000},
                             {"period_end": periods[1], "revenue": 1_050_000, "net_income": 45_000}]}
    client_file.write_text(json.dumps(client, indent=2) + "\n", encoding="utf-8")
    contract_file = folder / "client.schema.json"
    contract_file.write_text(_record_schema(policy_file), encoding="utf-8")
    return [*written, policy_file, tests_file, client_file, contract_file]


def _record_schema(policy_file: Path) -> str:
    """The JSON Schema of the record the new policy reads: it changes as the author edits the inputs,
    so `policy-engine schema client -p NAME` regenerates it."""
    from .decide.contract import dumps, record_schema
    from .policy.registry import load_policy

    return dumps(record_schema(load_policy(policy_file)))
