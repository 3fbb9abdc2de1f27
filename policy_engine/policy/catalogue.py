"""The action catalogue: what a policy may recommend, and with which parameters.

Registries as data: adding an action type to the engine is one entry here (and its name in the
policy schema's list of built-in types); a policy may declare its own types under
``action_types:``, and the catalogue it sees is :func:`policy_catalogue` (the engine's entries
plus its own). ``may_restructure`` marks actions that, granted to
a debtor in financial difficulty, are a restructuring under the 2023 Measures
for the risk classification of financial assets (arts. 17-19): a policy must
then declare the consequence, so the decision never presents them as neutral.

Each parameter carries its words (``shown`` templates and ``labels`` per allowed value, zh and en),
so an explanation reads '下调50个基点' rather than ``rate_change_bp=-50.0``; the decision keeps ids and
numbers. ``conflicts`` name the types no debtor may be recommended beside this one (early repayment
beside a grace period): the compiler turns them into exclusions in a policy with scopes.
"""

from __future__ import annotations

import datetime as _dt
import string
from collections.abc import Callable, Mapping
from typing import Any

from ..frozen import Frozen, field


class Param(Frozen):
    type: str  # integer | number | string | list
    required: bool = False
    enum: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    # How an explanation words the value, per language: a template with {value} (the number, or the
    # labels of the values), {pct} (a fraction as a percentage), {abs} (the size of a number) and
    # {date} (as-of plus that many days). None: the labels alone, or name=value.
    shown: Mapping[str, str] | None = None
    shown_negative: Mapping[str, str] | None = None  # the template for a value below zero (a rate cut)
    labels: Mapping[str, Mapping[str, str]] | None = None  # an allowed value -> its words in zh and en

    def show(self, name: str, value: object, lang: str, as_of: _dt.date | None = None) -> str:
        """The parameter as a banker writes it: '下调50个基点', 'cut the rate by 50 bp', '依法诉讼、资产保全'.

        Data, not code per action type: the template and labels come from the catalogue entry. A
        parameter without either is shown as ``name=value``, as a policy's own type declares it.
        """
        text = self._words(value, lang)
        negative = isinstance(value, int | float) and not isinstance(value, bool) and value < 0
        template = (self.shown_negative if negative and self.shown_negative else self.shown) or {}
        if lang not in template:
            return text if self.labels else f"{name}={text}"
        fields = {"value": text, "pct": "", "abs": "", "date": ""}
        if isinstance(value, int | float) and not isinstance(value, bool):
            fields.update(pct=_number(value * 100) + "%", abs=_number(abs(value)))
            if as_of is not None and self.type == "integer":
                try:
                    fields["date"] = (as_of + _dt.timedelta(days=int(value))).isoformat()
                except OverflowError:  # beyond 9999-12-31 (a day a record may carry): no such date to name
                    fields["date"] = "—"
        return template[lang].format_map(fields)

    def _words(self, value: object, lang: str) -> str:
        """The value itself: a number as written, an allowed value by its label, a list joined."""
        def one(v: object) -> str:
            if self.labels and isinstance(v, str) and v in self.labels:
                return self.labels[v].get(lang, v)
            return _number(v) if isinstance(v, int | float) and not isinstance(v, bool) else str(v)

        if isinstance(value, list):
            return ("、" if lang == "zh" and self.labels else ", ").join(one(v) for v in value)
        return one(value)


def _number(v: float) -> str:
    """50.0 -> '50', 0.125 -> '0.125': a figure in a sentence has no trailing zeros."""
    return f"{v:,.0f}" if float(v).is_integer() and abs(v) >= 10000 else f"{v:g}"


def _zh_en(zh: str, en: str) -> dict[str, str]:
    return {"zh": zh, "en": en}


class Conflict(Frozen):
    """An action type no policy may recommend beside this one for the same debtor.

    ``when_param``: only an action of that type whose parameter is above zero (a restructuring
    with a grace period); None: any action of that type. The compiler adds the exclusion both
    ways to every pair of a policy's actions it concerns, so the more urgent one is kept.
    """

    action: str
    when_param: str | None
    why: Mapping[str, str]


class ActionType(Frozen):
    name: str
    zh: str
    en: str
    params: dict[str, Param] = field(default_factory=dict)
    may_restructure: bool = False
    never_restructure: bool = False
    origin: str = "engine"  # engine | policy (declared under the policy's action_types)
    conflicts: tuple[Conflict, ...] = ()


# The words of each allowed value (an explanation shows labels, never ids). Every enum value has one.
SERVICE_LABELS = {
    "financial_advisory": _zh_en("财务顾问", "financial advisory"),
    "market_analysis": _zh_en("市场分析", "market analysis"),
    "supply_chain_finance": _zh_en("供应链金融", "supply-chain finance"),
    "fx_hedging": _zh_en("汇率避险", "FX hedging"),
    "cross_border_settlement": _zh_en("跨境结算", "cross-border settlement"),
    "investment_loan_linkage": _zh_en("投贷联动", "investment-loan linkage"),
    "government_support_coordination": _zh_en("对接政府纾困支持", "access to government support"),
}
SERVICES = tuple(SERVICE_LABELS)
EMERGENCY_LABELS = {
    "legal_action": _zh_en("依法诉讼", "legal action"),
    "asset_preservation": _zh_en("资产保全", "asset preservation"),
    "government_coordination": _zh_en("协调地方政府", "coordination with the local government"),
    "seek_acquirer": _zh_en("寻找并购方", "finding an acquirer"),
    "creditor_committee": _zh_en("参与债权人委员会", "the creditors' committee"),
}
EMERGENCY_MEASURES = tuple(EMERGENCY_LABELS)
LEGAL_LABELS = {
    "lawsuit": _zh_en("提起诉讼", "a lawsuit"),
    "arbitration": _zh_en("申请仲裁", "arbitration"),
    "asset_preservation": _zh_en("申请财产保全", "a preservation order on assets"),
    "enforcement": _zh_en("申请强制执行", "enforcement of the judgment or notarised deed"),
    "bankruptcy_claim": _zh_en("申报破产债权", "a claim in the bankruptcy"),
}
ENFORCEMENT_LABELS = {
    "auction": _zh_en("司法拍卖", "judicial auction"),
    "negotiated_sale": _zh_en("协议转让", "negotiated sale"),
    "set_off": _zh_en("存单或保证金抵销", "set-off against deposits"),
    "guarantor_claim": _zh_en("向保证人追偿", "a claim on the guarantor"),
}
DISPOSAL_LABELS = {
    "transfer": _zh_en("单户转让给资产管理公司", "transfer to an asset management company"),
    "batch_transfer": _zh_en("批量转让", "batch transfer"),
    "write_off": _zh_en("核销", "write-off"),
}
STATEMENT_LABELS = {
    "annual_audited": _zh_en("经审计的年度财务报表", "audited annual statements"),
    "quarterly": _zh_en("最新季度财务报表", "the latest quarterly statements"),
    "management_accounts": _zh_en("管理报表", "management accounts"),
    "cash_flow_forecast": _zh_en("现金流预测", "a cash-flow forecast"),
}
CADENCE_LABELS = {"monthly": _zh_en("按月", "monthly"), "quarterly": _zh_en("按季", "quarterly"),
                  "semiannual": _zh_en("每半年", "half-yearly")}
OWNER_LABELS = {
    "relationship_manager": _zh_en("客户经理", "relationship manager"),
    "risk_officer": _zh_en("风险经理", "risk officer"),
    "special_assets": _zh_en("资产保全部门", "special assets unit"),
}
FREQUENCY_LABELS = {"weekly": _zh_en("每周", "weekly"), "monthly": _zh_en("每月", "monthly"),
                    "quarterly": _zh_en("每季", "quarterly")}


_NO_EARLY_DEMAND = _zh_en("给予宽限期的同时要求提前还款自相矛盾",
                          "demanding early repayment while granting a grace period contradicts itself")
_NO_EARLY_DEMAND_TERM = _zh_en("展期的同时要求提前还款自相矛盾",
                               "demanding early repayment while extending the term contradicts itself")

CATALOGUE: dict[str, ActionType] = {a.name: a for a in [
    ActionType("extend_term", "展期", "Extend the term",
               {"months": Param("integer", True, min=1, max=120,
                                shown=_zh_en("展期{value}个月", "by {value} months"))},
               may_restructure=True),
    ActionType("reprice", "调整利率", "Reprice",
               {"rate_change_bp": Param("number", True, min=-2000, max=2000,
                                        shown=_zh_en("上调{value}个基点", "raise the rate by {value} bp"),
                                        shown_negative=_zh_en("下调{abs}个基点", "cut the rate by {abs} bp"))},
               may_restructure=True),
    ActionType("add_collateral", "追加担保物", "Add collateral",
               {"target_ltv": Param("number", min=0, max=2,
                                    shown=_zh_en("抵押率降至{pct}以内", "to an LTV of {pct} or less"))},
               never_restructure=True),
    ActionType("replace_guarantor", "更换保证人", "Replace the guarantor", {}),
    ActionType("restructure", "分期重组", "Restructure into instalments",
               {"instalments": Param("integer", True, min=2, max=120,
                                     shown=_zh_en("分{value}期偿还", "in {value} instalments")),
                "grace_months": Param("integer", min=0, max=24,
                                      shown=_zh_en("宽限期{value}个月", "{value} months' grace"))},
               may_restructure=True),
    ActionType("early_repayment", "要求提前还款", "Demand early repayment",
               {"share": Param("number", min=0, max=1, shown=_zh_en("提前偿还{pct}", "repay {pct} early")),
                "deadline_days": Param("integer", min=1, max=365,
                                       shown=_zh_en("{value}天内（{date}前）", "within {value} days (by {date})"))},
               conflicts=(Conflict("restructure", "grace_months", _NO_EARLY_DEMAND),
                          Conflict("extend_term", None, _NO_EARLY_DEMAND_TERM))),
    ActionType("offer_services", "增值服务", "Offer value-added services",
               {"services": Param("list", True, enum=SERVICES, labels=SERVICE_LABELS)}),
    ActionType("review_meeting", "贷后检视会议", "Review meeting",
               {"cadence": Param("string", True, enum=tuple(CADENCE_LABELS), labels=CADENCE_LABELS,
                                 shown=_zh_en("{value}召开", "{value}")),
                "within_days": Param("integer", min=1, max=365,
                                     shown=_zh_en("首次于{date}前召开（{value}天内）",
                                                  "first by {date} (within {value} days)")),
                "owner": Param("string", enum=tuple(OWNER_LABELS), labels=OWNER_LABELS,
                               shown=_zh_en("由{value}牵头", "led by the {value}"))}),
    ActionType("emergency_plan", "启动应急预案", "Start the emergency plan",
               {"measures": Param("list", True, enum=EMERGENCY_MEASURES, labels=EMERGENCY_LABELS)}),
    ActionType("reduce_exposure", "压降敞口", "Reduce exposure",
               {"share": Param("number", True, min=0, max=1, shown=_zh_en("压降{pct}", "by {pct}"))}),
    ActionType("monitor", "加强监控", "Intensify monitoring",
               {"frequency": Param("string", True, enum=tuple(FREQUENCY_LABELS), labels=FREQUENCY_LABELS)}),
    # Recovery of a non-performing exposure (REGULATIONS section 2: doubtful and loss mean a loss is
    # certain or near certain): the bank collects, it does not advise.
    ActionType("enforce_collateral", "处置押品", "Enforce the collateral",
               {"method": Param("string", True, enum=tuple(ENFORCEMENT_LABELS), labels=ENFORCEMENT_LABELS,
                                shown=_zh_en("方式：{value}", "by {value}"))},
               never_restructure=True),
    ActionType("legal_action", "依法清收", "Take legal action",
               {"measures": Param("list", True, enum=tuple(LEGAL_LABELS), labels=LEGAL_LABELS)},
               never_restructure=True),
    ActionType("write_off_or_transfer", "核销或转让方案", "Propose a transfer or write-off",
               {"route": Param("string", True, enum=tuple(DISPOSAL_LABELS), labels=DISPOSAL_LABELS),
                "provision_coverage": Param("number", True, min=0, max=1,
                                            shown=_zh_en("拨备计提至债权的{pct}",
                                                         "with provisions of {pct} of the claim"))},
               never_restructure=True),
    ActionType("request_statements", "索取财务报表", "Request updated statements",
               {"statements": Param("list", True, enum=tuple(STATEMENT_LABELS), labels=STATEMENT_LABELS),
                "within_days": Param("integer", min=1, max=90,
                                     shown=_zh_en("{value}天内提供（{date}前）", "within {value} days (by {date})"))},
               never_restructure=True),
]}


# The fields a parameter's words may use ({value} for every type; the others for numbers).
SHOWN_FIELDS = {"value": "the value, or its label", "pct": "a fraction as a percentage (numbers)",
                "abs": "the size of a number (numbers)", "date": "as-of plus that many days (whole numbers)"}


def words_problem(p: Param) -> str | None:
    """Why a parameter's words cannot be shown (a template field it cannot fill, a label of no value)."""
    for lang, text in (p.shown or {}).items():
        try:
            fields = [f for _, f, _, _ in string.Formatter().parse(text) if f is not None]
        except ValueError as e:
            return f"shown.{lang}: {e} (write {{{{ and }}}} for literal braces)"
        for f in fields:
            numeric = {"value"} | ({"pct", "abs"} if p.type in ("integer", "number") else set()) \
                | ({"date"} if p.type == "integer" else set())
            if f not in numeric:
                allowed = ", ".join("{" + n + "}" for n in SHOWN_FIELDS if n in numeric)
                return f"shown.{lang}: '{{{f}}}' is not a field a {p.type} parameter fills (it takes {allowed})"
    for value in p.labels or {}:
        if not p.enum or value not in p.enum:
            return f"labels: '{value}' is not an allowed value (enum)"
    return None


def param_problem(spec: Param, value: object) -> str | None:
    """Why a computed parameter value cannot be given to the action, or None when it can.

    A policy computes some parameters from the client's figures (``months: {expr: ...}``); the
    value must still be one the catalogue allows, or the action would tell staff something
    impossible ("extend by 9.82 months", "by 981 months"). Such an action is undetermined.
    """
    if value is None:
        return "has no value"
    if spec.type in ("integer", "number"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{value!r} is not a number"
        if spec.type == "integer" and not float(value).is_integer():
            return f"{value:g} is not a whole number"
        if (spec.min is not None and value < spec.min) or (spec.max is not None and value > spec.max):
            return f"{value:g} is outside {_interval(spec)}"
    elif spec.enum and value not in spec.enum:
        return f"{value!r} is not one of {', '.join(spec.enum)}"
    return None


def _interval(spec: Param) -> str:
    return f"[{'' if spec.min is None else f'{spec.min:g}'}, {'' if spec.max is None else f'{spec.max:g}'}]"


def allowed_values(spec: Param) -> str:
    """What a parameter takes, for messages: 'whole numbers in [1, 120]'."""
    if spec.type in ("integer", "number"):
        what = "whole numbers" if spec.type == "integer" else "numbers"
        return f"{what} in {_interval(spec)}" if spec.min is not None or spec.max is not None else what
    if spec.type == "list":  # measures: [lawsuit, enforcement]
        return "a list of " + (", ".join(spec.enum) if spec.enum else "values")
    return "one of " + ", ".join(spec.enum) if spec.enum else spec.type


# The warning categories every policy may use (a warning's ``category``), with their names. A policy
# adds its own under ``warning_categories:`` (a covenant monitor's 'covenant'), as it adds action types.
WARNING_CATEGORIES: dict[str, dict[str, str]] = {
    "profitability": {"zh": "盈利能力", "en": "Profitability"}, "liquidity": {"zh": "流动性", "en": "Liquidity"},
    "solvency": {"zh": "偿债能力", "en": "Solvency"}, "repayment": {"zh": "还款", "en": "Repayment"},
    "collateral": {"zh": "押品", "en": "Collateral"}, "governance": {"zh": "公司治理", "en": "Governance"},
    "legal": {"zh": "法律", "en": "Legal"}, "operations": {"zh": "经营", "en": "Operations"},
    "market": {"zh": "市场", "en": "Market"}, "data": {"zh": "数据", "en": "Data"},
}


def describe(catalogue: Mapping[str, ActionType] | None = None) -> list[dict[str, Any]]:
    """The catalogue as data (``catalogue --format json``): each action type, its parameters and their ranges.

    ``catalogue`` is a policy's (:func:`policy_catalogue`); by default the engine's own.
    """
    return [{"action": a.name, "en": a.en, "zh": a.zh, "origin": a.origin, "may_restructure": a.may_restructure,
             "never_restructure": a.never_restructure,
             "conflicts": [c.action + (f" (with {c.when_param} above zero)" if c.when_param else "")
                           for c in a.conflicts],
             "params": {n: {"type": p.type, "required": p.required, "min": p.min, "max": p.max,
                            "enum": list(p.enum) if p.enum else None, "allowed": allowed_values(p),
                            "shown": dict(p.shown) if p.shown else None,
                            "labels": {k: dict(v) for k, v in p.labels.items()} if p.labels else None}
                        for n, p in a.params.items()}} for a in (catalogue or CATALOGUE).values()]


def declared_type(entry: Mapping[str, Any]) -> ActionType:
    """One entry of a policy's ``action_types:`` (already schema-valid) as a catalogue entry."""
    params = {n: Param(p["type"], bool(p.get("required", False)),
                       tuple(p["enum"]) if p.get("enum") else None,
                       p.get("min"),
                       p.get("max"),
                       p.get("shown"), None, p.get("labels"))
              for n, p in (entry.get("params") or {}).items()}
    return ActionType(entry["id"], entry["zh"], entry["en"], params,
                      may_restructure=bool(entry.get("may_restructure", False)), origin="policy")


def policy_catalogue(declared: list[Mapping[str, Any]] | None) -> dict[str, ActionType]:
    """The catalogue a policy sees: the engine's types, then its own (a clash is reported by the compiler)."""
    out = dict(CATALOGUE)
    for entry in declared or ():
        out.setdefault(entry["id"], declared_type(entry))
    return out


def params_check(kind: ActionType, names: list[str]) -> Callable[[tuple[object, ...]], bool]:
    """``ok(values) -> bool`` for the computed parameters ``names`` of an action type (in that order)."""
    specs = [kind.params[n] for n in names]

    def ok(values: tuple[object, ...]) -> bool:
        return all(param_problem(spec, v) is None for spec, v in zip(specs, values, strict=True))

    return ok


def schema_hints() -> list[dict[str, Any]]:
    """What the policy schema says of each built-in type's parameters (``actions.items.allOf``).

    Descriptions only, no constraints: an editor shows the type, range and allowed values as the
    author types, and the compiler still reports a wrong value with its own located message.
    """
    def text(p: Param) -> str:
        return f"{p.type}, {'required' if p.required else 'optional'}: {allowed_values(p)}"

    return [{"if": {"properties": {"action": {"const": a.name}}, "required": ["action"]},
             "then": {"properties": {"params": {
                 "description": f"{a.en} ({a.zh}): " + ("; ".join(f"{n} ({text(p)})" for n, p in a.params.items())
                                                       or "no parameters"),
                 "properties": {n: {"description": text(p)} for n, p in a.params.items()}}}}}
            for a in CATALOGUE.values()]
