"""The action catalogue: what a policy may recommend, and with which parameters.

Registries as data: adding an action type to the engine is one entry here (and its name in the
policy schema's list of built-in types); a policy may declare its own types under
``action_types:``, and the catalogue it sees is :func:`policy_catalogue` (the engine's entries
plus its own). ``may_restructure`` marks actions that, granted to
a debtor in financial difficulty, are a restructuring under the 2023 Measures
for the risk classification of financial assets (arts. 17-19): a policy must
then declare the consequence, so the decision never presents them as neutral.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..frozen import Frozen, field


class Param(Frozen):
    type: str  # integer | number | string | list
    required: bool = False
    enum: tuple[str, ...] | None = None
    min: float | None = None
    max: float | None = None
    # How an explanation words the value, per language ('{value}' is replaced); None: name=value.
    shown: Mapping[str, str] | None = None

    def show(self, name: str, value: object, lang: str) -> str:
        """The parameter as an explanation prints it: 'within 14 days' rather than 'within_days=14'."""
        text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        return self.shown[lang].replace("{value}", text) if self.shown and lang in self.shown else f"{name}={text}"


class ActionType(Frozen):
    name: str
    zh: str
    en: str
    params: dict[str, Param] = field(default_factory=dict)
    may_restructure: bool = False
    never_restructure: bool = False
    origin: str = "engine"  # engine | policy (declared under the policy's action_types)


SERVICES = ("financial_advisory", "market_analysis", "supply_chain_finance", "fx_hedging",
            "cross_border_settlement", "investment_loan_linkage", "government_support_coordination")
EMERGENCY_MEASURES = ("legal_action", "asset_preservation", "government_coordination", "seek_acquirer",
                      "creditor_committee")

CATALOGUE: dict[str, ActionType] = {a.name: a for a in [
    ActionType("extend_term", "展期", "Extend the term",
               {"months": Param("integer", True, min=1, max=120)}, may_restructure=True),
    ActionType("reprice", "调整利率", "Reprice",
               {"rate_change_bp": Param("number", True, min=-2000, max=2000)}, may_restructure=True),
    ActionType("add_collateral", "追加担保物", "Add collateral",
               {"target_ltv": Param("number", min=0, max=2)}, never_restructure=True),
    ActionType("replace_guarantor", "更换保证人", "Replace the guarantor", {}),
    ActionType("restructure", "分期重组", "Restructure into instalments",
               {"instalments": Param("integer", True, min=2, max=120),
                "grace_months": Param("integer", min=0, max=24)}, may_restructure=True),
    ActionType("early_repayment", "要求提前还款", "Demand early repayment",
               {"share": Param("number", min=0, max=1), "deadline_days": Param("integer", min=1, max=365)}),
    ActionType("offer_services", "增值服务", "Offer value-added services",
               {"services": Param("list", True, enum=SERVICES)}),
    ActionType("review_meeting", "贷后检视会议", "Review meeting",
               {"cadence": Param("string", True, enum=("monthly", "quarterly", "semiannual")),
                "within_days": Param("integer", min=1, max=365,
                                     shown={"zh": "{value}天内召开", "en": "within {value} days"})}),
    ActionType("emergency_plan", "启动应急预案", "Start the emergency plan",
               {"measures": Param("list", True, enum=EMERGENCY_MEASURES)}),
    ActionType("reduce_exposure", "压降敞口", "Reduce exposure",
               {"share": Param("number", True, min=0, max=1)}),
    ActionType("monitor", "加强监控", "Intensify monitoring",
               {"frequency": Param("string", True, enum=("weekly", "monthly", "quarterly"))}),
]}


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
             "params": {n: {"type": p.type, "required": p.required, "min": p.min, "max": p.max,
                            "enum": list(p.enum) if p.enum else None, "allowed": allowed_values(p)}
                        for n, p in a.params.items()}} for a in (catalogue or CATALOGUE).values()]


def declared_type(entry: Mapping[str, Any]) -> ActionType:
    """One entry of a policy's ``action_types:`` (already schema-valid) as a catalogue entry."""
    params = {n: Param(p["type"], bool(p.get("required", False)),
                       tuple(p["enum"]) if p.get("enum") else None,
                       p.get("min"),
                       p.get("max"))
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
