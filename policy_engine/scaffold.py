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

DEBTOR_POLICY = """\
# yaml-language-server: $schema={schema}
#
# {name}: a new policy for debtors with several exposures (client record 2.0 style). Each exposure is
# graded by its own floors; the debtor's floors apply back to every exposure, and the debtor's grade is
# the worst. Edit the scopes, inputs, metrics, floors, warnings and actions; `policy-engine validate`
# checks it, `policy-engine test` runs the cases in tests/.
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
    changes: ["first version, from `policy-engine init --debtor`"]
scopes:
  exposure: {{from: "exposures[*]", key: exposure_id, max: 20}}
  payment: {{from: "exposures[*].schedule[*]", parent: exposure, order_by: due_date, max: 120}}
inputs:
  industry: {{from: industry, type: string, required: true, enum: [manufacturing, trade, other]}}
  exposure_id: {{scope: exposure, from: exposure_id, type: string, required: true}}
  balance: {{scope: exposure, from: balance, type: number, required: true, min: 0, unit: CNY}}
  days_past_due: {{scope: exposure, from: days_past_due, type: integer, required: true, min: 0, unit: days}}
  origination_date: {{scope: exposure, from: origination_date, type: date, required: true, not_after_as_of: true}}
  due_date: {{scope: payment, from: due_date, type: date, required: true}}
  paid_date: {{scope: payment, from: paid_date, type: date, not_after_as_of: true}}
parameters:
  late_payments_warning: {{value: 2}}
  contagion_share: {{value: 0.1, unit: share}}
metrics:
  late_payments:  # one value per exposure, over its payments
    scope: exposure
    expr: "count_where(payment, coalesce(paid_date, as_of) > due_date)"
    format: integer
    label: {{zh: 逾期还款期数, en: Late payments}}
  months_on_book:
    scope: exposure
    expr: "months_between(origination_date, as_of)"
    format: integer
    label: {{zh: 放款月数, en: Months on book}}
    informational: true
  nonperforming_share:  # the debtor's, over its exposures as the exposure floors grade them
    expr: "share_where(exposure, balance, grade_at_least('substandard'))"
    format: percent
    label: {{zh: 不良债项占比, en: Non-performing share}}
key_figures: [nonperforming_share]
classification:
  scale:
    - {{id: pass, zh: 正常, en: Pass}}
    - {{id: special_mention, zh: 关注, en: Special mention}}
    - {{id: substandard, zh: 次级, en: Substandard, nonperforming: true}}
    - {{id: doubtful, zh: 可疑, en: Doubtful, nonperforming: true}}
    - {{id: loss, zh: 损失, en: Loss, nonperforming: true}}
  rules:
    - id: overdue_over_90
      scope: exposure
      when: days_past_due > 90
      floor: substandard
      source: 《商业银行金融资产风险分类办法》第十条：逾期超过90天
    - id: contagion
      when: nonperforming_share >= contagion_share
      floor: substandard
      source: 《商业银行金融资产风险分类办法》第七条：不良债权占比达到10%
warnings:
  - id: late_payments
    when: "any_of(exposure, late_payments >= late_payments_warning)"
    severity: medium
    category: repayment
    message:
      zh: 有债项逾期还款达{{late_payments_warning}}期
      en: An exposure has {{late_payments_warning}} or more late payments
actions:
  - id: monthly_review
    action: review_meeting
    when: fired('late_payments') or grade_at_least('substandard')
    params: {{cadence: monthly}}
    priority: 10
    reason: {{zh: 还款异常，按月检视, en: Repayments in trouble; review monthly}}
"""

DEBTOR_TESTS = """\
# yaml-language-server: $schema={schema}
# Each rule pinned both ways (`policy-engine test --coverage`): a case where it fires, one where it does not.
policy: {name}
cases:
  - name: a debtor with two current exposures is pass
    client: ../samples/clients/example.json
    expect:
      grade: pass
      exposures: {{E1: {{floors: []}}, E2: {{floors: []}}}}
      metrics: {{nonperforming_share: 0.0}}
      warnings: []
      actions: []
  - name: one exposure more than 90 days overdue makes both substandard (the 10% contagion)
    client: ../samples/clients/example.json
    patch: {{"exposures[1].days_past_due": 95}}
    expect:
      grade: substandard
      decided_by: contagion
      exposures: {{E1: {{grade: substandard, decided_by: contagion}}, E2: {{floors_include: [overdue_over_90]}}}}
      actions: [monthly_review]
  - name: two instalments unpaid on an exposure raise the late-payment warning
    client: ../samples/clients/example.json
    patch: {{"exposures[0].schedule[1].paid_date": null, "exposures[0].schedule[2].paid_date": null}}
    expect: {{grade: pass, warnings: [late_payments], actions: [monthly_review]}}
  - name: a debtor whose exposures are repaid has no non-performing share, and the contagion rule cannot say
    client: ../samples/clients/example.json
    patch: {{"exposures[0].balance": 0, "exposures[1].balance": 0}}
    expect: {{grade: pass, metrics: {{nonperforming_share: null}}, undetermined_include: [contagion]}}
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
    policy_file.write_text((DEBTOR_POLICY if debtor else POLICY).format(
        name=name, today=day.isoformat(), schema=_modeline(policy_file, schemas / "policy.schema.json")),
        encoding="utf-8")
    tests_file.write_text((DEBTOR_TESTS if debtor else TESTS).format(
        name=name, schema=_modeline(tests_file, schemas / "policy-tests.schema.json")), encoding="utf-8")
    client = _example_debtor(day) if debtor else _example_client(day)
    client_file.write_text(json.dumps(client, indent=2) + "\n", encoding="utf-8")
    contract_file = folder / "client.schema.json"
    contract_file.write_text(_record_schema(policy_file), encoding="utf-8")
    return [*written, policy_file, tests_file, client_file, contract_file]


def _example_client(day: dt.date) -> dict[str, object]:
    periods = quarter_ends(day, 2)
    return {"client_id": "EXAMPLE-1", "as_of": day.isoformat(), "loan": {"overdue_days": 0},
            "financials": [{"period_end": periods[0], "revenue": 1_000_000, "net_income": 40_000},
                           {"period_end": periods[1], "revenue": 1_050_000, "net_income": 45_000}]}


def _example_debtor(day: dt.date) -> dict[str, object]:
    """Two current exposures, each with its last three monthly instalments paid on their due dates."""
    def month_ends(k: int) -> list[str]:
        first = day.replace(day=1)
        return [(_add_months(first, -j) - dt.timedelta(days=1)).isoformat() for j in range(k, 0, -1)]

    def exposure(eid: str, balance: float, originated: dt.date) -> dict[str, object]:
        return {"exposure_id": eid, "balance": balance, "days_past_due": 0,
                "origination_date": originated.isoformat(),
                "schedule": [{"due_date": d, "paid_date": d} for d in month_ends(3)]}

    return {"client_id": "EXAMPLE-1", "as_of": day.isoformat(), "industry": "manufacturing",
            "exposures": [exposure("E1", 8_000_000.0, _add_months(day, -30)),
                          exposure("E2", 2_000_000.0, _add_months(day, -14))]}


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
