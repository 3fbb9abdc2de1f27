"""A decision as a readable explanation, in Chinese or English.

Written for the relationship manager and the credit committee: the grade and
what decided it, each warning with its figures, each action with its reason
and regulatory consequence, and what could not be determined.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .catalogue import CATALOGUE
from .compiler import CompiledPolicy
from .safetext import printable

_T = {
    "title": {"zh": "客户 {cid} · 基准日 {as_of} · 政策 {pid} {ver}",
              "en": "Client {cid} · as of {as_of} · policy {pid} {ver}"},
    "grade": {"zh": "风险分类：{label}（{gid}）", "en": "Grade: {label} ({gid})"},
    "by_score": {"zh": "由评分卡决定：得分 {score}，对应 {sgrade}",
                 "en": "Decided by the scorecard: score {score} maps to {sgrade}"},
    "by_floor": {"zh": "由分类底线规则 {rule} 决定（评分卡结果为 {sgrade}，得分 {score}）",
                 "en": "Decided by the floor {rule} (the scorecard alone gave {sgrade}, score {score})"},
    # a policy without a scorecard: the base grade is the best of the scale, and there is no score to quote
    "by_floor_only": {"zh": "由分类底线规则 {rule} 决定", "en": "Decided by the floor {rule}"},
    "by_default": {"zh": "未触发任何分类底线：取基准等级 {sgrade}（等级表中最好的一级）",
                   "en": "No floor fired: the base grade {sgrade} (the best of the scale)"},
    "floors": {"zh": "触发的分类底线：", "en": "Floors that fired:"},
    "floor": {"zh": "  - {rule}：至少{floor}。依据：{source}", "en": "  - {rule}: at least {floor}. Source: {source}"},
    "figures": {"zh": "关键指标：", "en": "Key figures:"},
    "warnings": {"zh": "预警（{n}）：", "en": "Warnings ({n}):"},
    "none": {"zh": "  无", "en": "  none"},
    "actions": {"zh": "建议措施（{n}）：", "en": "Recommended actions ({n}):"},
    "approval": {"zh": "审批：{who}", "en": "approval: {who}"},
    "restructuring": {"zh": "    ⚠ 监管后果：{note}（依据：{source}）",
                      "en": "    ! Regulatory consequence: {note} (source: {source})"},
    "not_restructuring": {"zh": "    本措施对该客户不构成重组（债务人未处于财务困难）",
                          "en": "    For this client the action is not a restructuring "
                                "(debtor not in financial difficulty)"},
    "restructuring_unknown": {"zh": "    ? 是否构成重组无法判断（数据缺失），须人工认定",
                              "en": "    ? Whether this is a restructuring cannot be determined (missing data); "
                                    "decide manually"},
    "suppressed": {"zh": "  （{id} 因与 {by} 冲突未采纳）", "en": "  ({id} not recommended: conflicts with {by})"},
    "undetermined": {"zh": "无法判断的规则（数据缺失，未触发）：",
                     "en": "Undetermined rules (missing data, not fired):"},
    "undetermined_item": {"zh": "  - {kind} {rule}：缺少 {missing}", "en": "  - {kind} {rule}: missing {missing}"},
    "undefined": {"zh": "无法计算的指标：", "en": "Metrics without a value:"},
    "trace": {"zh": "求值轨迹（每条规则、其表达式、读取的数值与结果）：",
              "en": "Trace (every rule evaluated: its expression, the values it read, its result):"},
    # a batch record read back with only the input's hash: its facts, no reasons
    "summary_facts": {"zh": "（批量记录，仅存事实：原因与证据无法重新推导）",
              "en": "(a batch record kept as facts only: reasons and evidence cannot be re-derived)"},
    "summary_floors": {"zh": "触发的分类底线：{ids}", "en": "Floors that fired: {ids}"},
    "summary_warnings": {"zh": "预警：{ids}", "en": "Warnings: {ids}"},
    "summary_actions": {"zh": "建议措施：{ids}", "en": "Recommended actions: {ids}"},
    "summary_undetermined": {"zh": "无法判断的规则：{ids}", "en": "Undetermined rules: {ids}"},
}

_SEVERITY = {"zh": {"low": "低", "medium": "中", "high": "高", "critical": "严重"},
             "en": {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "critical": "CRITICAL"}}
_KIND = {"zh": {"classification": "分类规则", "warning": "预警", "action": "措施", "restructuring": "重组认定"},
         "en": {"classification": "floor", "warning": "warning", "action": "action",
                "restructuring": "restructuring test"}}
_APPROVAL = {"zh": {"relationship_manager": "客户经理", "branch_credit_committee": "分行贷审会",
                    "head_office_credit_committee": "总行贷审会", "board": "董事会"},
             "en": {"relationship_manager": "relationship manager",
                    "branch_credit_committee": "branch credit committee",
                    "head_office_credit_committee": "head-office credit committee", "board": "board"}}


def _value(v: Any, fmt: str | None) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int | float):
        if fmt == "percent":
            return f"{v * 100:.1f}%"
        if fmt in ("integer", "days"):
            return f"{v:.0f}"
        if fmt == "amount":
            return f"{v:,.0f}"
        return f"{v:.2f}"
    return str(v)


# Why a metric has no value, as the record words it (evaluate.Decider._null_reason), in Chinese.
_REASONS_ZH = (
    (re.compile(r"^missing input: (.*)$", re.S), lambda m: f"缺少输入：{m[1]}"),
    (re.compile(r"^depends on (\w+) \((.*)\)$", re.S), lambda m: f"依赖 {m[1]}（{_reason(m[2], 'zh')}）"),
    (re.compile(r"^undefined for the figures read \((.*)\): zero or non-positive base, or too few periods$", re.S),
     lambda m: "按所读数值无法计算（" + _PERIODS.sub(r"[\1期]", m[1]) + "）：分母为零或非正，或期数不足"),
)
_PERIODS = re.compile(r"\[(\d+) periods\]")


def _reason(text: str, lang: str) -> str:
    if lang != "zh":
        return text
    for pattern, words in _REASONS_ZH:
        m = pattern.match(text)
        if m:
            return words(m)
    return text


def _decided_by(t: Mapping[str, str], policy: CompiledPolicy, decided_by: str, sgrade: str, score: str) -> str:
    """What decided the grade; a score is quoted only when the policy has a scorecard."""
    if not policy.score_bands:
        if decided_by == "default":
            return t["by_default"].format(sgrade=sgrade)
        return t["by_floor_only"].format(rule=decided_by)
    if decided_by == "scorecard":
        return t["by_score"].format(score=score, sgrade=sgrade)
    return t["by_floor"].format(rule=decided_by, sgrade=sgrade, score=score)


def explain(record: Mapping[str, Any], policy: CompiledPolicy, lang: str = "en") -> str:
    """Render a decision record made under ``policy`` as text in ``lang`` (zh or en).

    Client values (the id, text quoted in messages and reasons) reach a terminal: every control,
    bidirectional-override and NUL character in the text is shown as an escape (``safetext``).
    """
    t = {k: v[lang] for k, v in _T.items()}
    labels = {g.id: (g.zh if lang == "zh" else g.en) for g in policy.scale}
    cls = record["classification"]
    score = record["score"]
    out = [t["title"].format(cid=record["client_id"], as_of=record["as_of"], pid=record["policy"]["id"],
                             ver=record["policy"]["version"]), ""]
    out.append(t["grade"].format(label=cls["label"][lang], gid=cls["grade"]))
    out.append(_decided_by(t, policy, cls["decided_by"], labels.get(score["grade"], "?"), f"{score['total']:g}"))
    if cls["floors"]:
        out.append(t["floors"])
        for f in cls["floors"]:
            out.append(t["floor"].format(rule=f["id"], floor=labels[f["floor"]], source=f["source"]))
    out.append("")
    metrics = {m.name: m for m in policy.metrics}
    shown = [name for name in policy.key_figures if name in record["metrics"] and name in metrics]
    if shown:  # the policy says which figures matter; a policy that names none gets no block
        out.append(t["figures"])
    for name in shown:
        m = metrics[name]
        label = (m.label or {}).get(lang, name)
        out.append(f"  {label}: {_value(record['metrics'][name], m.format)}")
    if record["undefined_metrics"]:
        out.append(t["undefined"])
        for name, why in record["undefined_metrics"].items():
            label = (metrics[name].label or {}).get(lang) if name in metrics else None
            out.append(f"  - {label + ' ' + name if label else name}: {_reason(why, lang)}")
    out.append("")
    out.append(t["warnings"].format(n=len(record["warnings"])))
    if not record["warnings"]:
        out.append(t["none"])
    for w in record["warnings"]:
        out.append(f"  [{_SEVERITY[lang][w['severity']]}] {w['message'][lang]}")
    out.append("")
    out.append(t["actions"].format(n=len(record["actions"])))
    if not record["actions"]:
        out.append(t["none"])
    for i, a in enumerate(record["actions"], 1):
        params = ", ".join(f"{k}={', '.join(v) if isinstance(v, list) else v}" for k, v in a["params"].items())
        who = _APPROVAL[lang].get(a["approval"] or "", a["approval"] or "")
        kind = CATALOGUE.get(a["action"])
        name = f"{getattr(kind, lang)} [{a['id']}]" if kind is not None else a["id"]
        head = f"  {i}. {name}" + (f" ({params})" if params else "")
        if who:
            head += " — " + t["approval"].format(who=who)
        out.append(head)
        out.append(f"     {a['reason'][lang]}")
        r = a.get("restructuring")
        if r is not None:
            if r["is_restructuring"] is True:
                out.append(t["restructuring"].format(note=r["note"][lang], source=r["source"]))
            elif r["is_restructuring"] is False:
                out.append(t["not_restructuring"])
            else:
                out.append(t["restructuring_unknown"])
    for sup in record.get("suppressed_actions", []):
        out.append(t["suppressed"].format(id=sup["id"], by=sup["excluded_by"]))
    if record["undetermined"]:
        out.append("")
        out.append(t["undetermined"])
        for u in record["undetermined"]:
            # a computed parameter the catalogue refused: its reason says more than its name
            missing = [f"{m}: {u['reasons'][m]}" if m.startswith("params.") and m in u["reasons"] else m
                       for m in u["missing"]]
            out.append(t["undetermined_item"].format(kind=_KIND[lang][u["kind"]], rule=u["rule"],
                                                     missing=", ".join(missing) or "?"))
    if record.get("trace"):  # decide --trace: the text format shows what the JSON carries
        out.append("")
        out.append(t["trace"])
        out.extend(_trace_lines(record["trace"], lang))
    return printable("\n".join(out) + "\n", keep_newlines=True)


_STAGE = {"zh": {"metric": "指标", "factor": "评分因子", "classification": "分类规则", "warning": "预警",
                 "action": "措施"},
          "en": {"metric": "metric", "factor": "factor", "classification": "floor", "warning": "warning",
                 "action": "action"}}


def _trace_value(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, list):
        return "[" + ", ".join(_trace_value(x) for x in v) + "]"
    return str(v)


def _trace_lines(trace: Any, lang: str) -> list[str]:
    """One line per evaluated rule: ``  metric coverage = 0.85 <- ratio(...) [cash_q=[...], ...]``."""
    lines = []
    for step in trace:
        stage = _STAGE[lang].get(step.get("stage"), step.get("stage", "?"))
        reads = ", ".join(f"{k}={_trace_value(v)}" for k, v in (step.get("reads") or {}).items())
        expr = " ".join(str(step.get("expr", "")).split())  # a folded YAML expression on one line
        line = f"  {stage} {step.get('rule')} = {_trace_value(step.get('result'))} <- {expr}"
        lines.append(line + (f"  [{reads}]" if reads else ""))
    return lines


def explain_summary(summary: Mapping[str, Any], policy: CompiledPolicy, lang: str = "en") -> str:
    """A summary record (facts only, see ``evaluate.summarize``) as text: what was decided, without the why."""
    t = {k: v[lang] for k, v in _T.items()}
    labels = {g.id: (g.zh if lang == "zh" else g.en) for g in policy.scale}
    cls = summary["classification"]
    total = f"{summary['score']['total']:g}"
    out = [t["title"].format(cid=summary["client_id"], as_of=summary["as_of"], pid=summary["policy"]["id"],
                             ver=summary["policy"]["version"]), t["summary_facts"], ""]
    out.append(t["grade"].format(label=labels.get(cls["grade"], cls["grade"]), gid=cls["grade"]))
    out.append(_decided_by(t, policy, cls["decided_by"], labels.get(cls["scorecard_grade"], "?"), total))
    none = t["none"].strip()
    out.append(t["summary_floors"].format(ids=", ".join(cls["floors"]) or none))
    out.append(t["summary_warnings"].format(ids=", ".join(summary["warnings"]) or none))
    out.append(t["summary_actions"].format(ids=", ".join(summary["actions"]) or none))
    if summary["undetermined"]:
        out.append(t["summary_undetermined"].format(ids=", ".join(summary["undetermined"])))
    return printable("\n".join(out) + "\n", keep_newlines=True)
