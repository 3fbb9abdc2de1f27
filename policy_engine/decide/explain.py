"""A decision as a readable explanation, in Chinese or English.

Written for the relationship manager and the credit committee: the grade and
what decided it, each warning with its figures, each action with its reason
and regulatory consequence, and what could not be determined.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..policy.catalogue import Param
from ..policy.compiler import CompiledPolicy, MetricSpec, conflicting_actions
from ..safetext import printable
from .ref import dated_before
from .rounding import half_up as _half_up

_T = {
    "title": {"zh": "客户 {cid} · 基准日 {as_of} · 政策 {pid} {ver}",
              "en": "Client {cid} · as of {as_of} · policy {pid} {ver}"},
    "not_in_force": {"zh": "⚠ 政策 {pid} {ver} 在基准日 {as_of} 未生效（生效期：{span}）：本决策按指定的版本作出",
                     "en": "! Policy {pid} {ver} is not in force on {as_of} (in force {span}): "
                           "this decision was made under it as pinned"},
    "segment": {"zh": "{name}：{value}（适用该{name}的参数）",
                "en": "{name}: {value} (the parameters of this {lower} apply)"},
    "segment_name": {"zh": "分组", "en": "Segment"},
    # neutral words: a policy's scale may be a risk classification, a watch level or a covenant status
    "grade": {"zh": "分类：{label}（{gid}）", "en": "Grade: {label} ({gid})"},
    "grade_provisional": {"zh": "（暂定：{n}条因数据缺失无法判断的分类规则可能使分类更差，见下文）",
                          "en": " - provisional: {n} classification rule(s) undetermined for a missing fact could make "
                                "it worse (below)"},
    "by_score": {"zh": "由评分卡决定：得分 {score}，对应 {sgrade}",
                 "en": "Decided by the scorecard: score {score} maps to {sgrade}"},
    "by_floor": {"zh": "由分类底线规则 {rule} 决定（评分卡结果为 {sgrade}，得分 {score}）",
                 "en": "Decided by the floor {rule} (the scorecard alone gave {sgrade}, score {score})"},
    # a policy without a scorecard: the base grade is the best of the scale, and there is no score to quote
    "by_floor_only": {"zh": "由分类底线规则 {rule} 决定", "en": "Decided by the floor {rule}"},
    "by_default": {"zh": "未触发任何分类底线：取基准等级 {sgrade}（等级表中最好的一级）",
                   "en": "No floor fired: the base grade {sgrade} (the best of the scale)"},
    "floors": {"zh": "触发的分类底线：", "en": "Floors that fired:"},
    # a debtor with several exposures (a policy with scopes)
    "worst_of": {"zh": "债务人等级取其各笔债项最终等级中最差者（由债项 {eid} 的规则 {rule} 决定）",
                 "en": "The debtor's grade is the worst of its exposures' final grades (exposure {eid}, rule {rule})"},
    "worst_of_debtor": {"zh": "债务人等级取其各笔债项最终等级中最差者",
                        "en": "The debtor's grade is the worst of its exposures' final grades"},
    "exposures": {"zh": "各笔债项（{n}）：", "en": "Exposures ({n}):"},
    "no_exposures": {"zh": "  ⚠ 记录中没有债项：本分类仅由债务人层面的规则得出，须核实债项数据是否完整",
                     "en": "  ! The record holds no exposure: this grade comes from the debtor's rules alone; "
                           "check that its exposures were not left out"},
    "exposure": {"zh": "  - {eid}：{label}（{gid}），由 {rule} 决定；自身规则给出{own}",
                 "en": "  - {eid}: {label} ({gid}), decided by {rule}; its own floors gave {own}"},
    "exposure_default": {"zh": "  - {eid}：{label}（{gid}），未触发任何分类底线",
                         "en": "  - {eid}: {label} ({gid}), no floor fired"},
    "exposure_floors": {"zh": "      触发：{rules}", "en": "      fired: {rules}"},
    "exposure_undetermined": {"zh": "      无法判断（数据缺失，未触发，等级可能偏乐观）：{rules}",
                              "en": "      undetermined (a fact missing: not fired, so the grade may be too good): "
                                    "{rules}"},
    "exposure_undetermined_moot": {"zh": "      无法判断（数据缺失；其下限不高于现有等级，不影响分类）：{rules}",
                                   "en": "      undetermined (a fact missing; its floor is no worse than the grade, "
                                         "which it cannot change): {rules}"},
    "exposure_figures": {"zh": "      关键事实：{figures}", "en": "      key facts: {figures}"},
    "debtor_floor": {"zh": "{rule}（债务人规则）", "en": "{rule} (debtor rule)"},
    "debtor_floor_for": {"zh": "{rule}（债务人规则，适用于债项 {ids}{unknown}）",
                         "en": "{rule} (debtor rule, for exposure {ids}{unknown})"},
    "debtor_floor_for_many": {"zh": "{rule}（债务人规则，适用于债项 {ids}{unknown}）",
                              "en": "{rule} (debtor rule, for exposures {ids}{unknown})"},
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
    "suppressed_catalogue": {"zh": "  （{id} 因与 {by} 冲突未采纳：{why}）",
                             "en": "  ({id} not recommended beside {by}: {why})"},
    "conflict": {"zh": "  ⚠ {a} 与 {b} 同时建议：{why}，须由审批人择一",
                 "en": "  ! {a} and {b} are both recommended: {why}; the approver must choose one"},
    "concerns": {"zh": "     涉及债项：{ids}", "en": "     Exposures: {ids}"},
    "concerns_not_known": {"zh": "；因数据缺失无法判断是否涉及：{ids}", "en": "; not known (a fact missing): {ids}"},
    # an exposure whose condition read a metric without a value, with the record's reason (a zero limit: no fact
    # is missing)
    "concerns_no_value": {"zh": "；无法判断是否涉及：{ids}", "en": "; not known: {ids}"},
    "undetermined": {"zh": "无法判断的规则（数据缺失，未触发）：",
                     "en": "Undetermined rules (missing data, not fired):"},
    "undetermined_item": {"zh": "  - {kind} {rule}：缺少 {missing}", "en": "  - {kind} {rule}: missing {missing}"},
    "fill_in": {"zh": "（需补充：{places}）", "en": " (to fill in: {places})"},
    "excluded_anyway": {"zh": "（即使条件成立也不会建议：已建议的 {by} 与之互斥）",
                        "en": " (not to be recommended in any case: {by}, recommended, excludes it)"},
    "of_exposure": {"zh": "{rule}（债项 {id}）", "en": "{rule} (exposure {id})"},
    "refused": {"zh": "未建议的措施（计算出的参数不在措施允许的范围内）：",
                "en": "Actions not recommended (a computed parameter the action does not allow):"},
    "refused_item": {"zh": "  - 措施 {rule}：参数 {param} 的值 {problem}",
                     "en": "  - action {rule}: {param} {problem}"},
    "undetermined_warning": {"zh": "无法判断的预警 {id}", "en": "undetermined warning {id}"},
    "undefined": {"zh": "无法计算的指标：", "en": "Metrics without a value:"},
    "none_found": {"zh": "记录中无此类情形（故无值，并非数据缺失）：{names}",
                   "en": "None in the record (so no value; not missing data): {names}"},
    "lookups": {"zh": "查表取值（表、键值、取得的值、使用它的规则）：",
                "en": "Table cells read (table, key values, the value, the rules that read it):"},
    "between": {"zh": "在 {points} 之间插值", "en": "interpolated between {points}"},
    "clamped": {"zh": "超出表的范围，取端点 {points}", "en": "outside the table, its end point {points}"},
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
            return f"{_half_up(v, 1, 100):.1f}%"
        if fmt in ("integer", "days"):
            return f"{_half_up(v, 0):.0f}"
        if fmt == "amount":
            return f"{_half_up(v, 0):,.0f}"
        return f"{_half_up(v, 2):.2f}"
    return str(v)


# Why a metric has no value or a rule is undetermined, as the record words it (evaluate.Decider._null_reason,
# ._undetermined), in Chinese: the record keeps its English text, each reason's form is rendered here.
_REASONS_ZH = (
    (re.compile(r"^missing input$"), lambda m: "缺少输入"),
    (re.compile(r"^missing input: (.*)$", re.S), lambda m: f"缺少输入：{m[1]}"),
    (re.compile(r"^no value for period (.*)$", re.S), lambda m: f"以下期间无数值：{m[1]}"),
    # a policy with scopes: what an aggregation read without a value, per element (decide.scoped)
    (re.compile(r"^no value for (.*)$", re.S),
     lambda m: "以下各项无数值：" + _inner_zh(_ELEMENT_ZH.sub(r"债项 \1：", m[1]))),
    (re.compile(r"^no value$"), lambda m: "无数值"),
    (re.compile(r"^no value: (.*)$", re.S), lambda m: "无数值：" + "；".join(map(_element_reason, _split_top(m[1])))),
    (re.compile(r"^missing input at (.*)$", re.S), lambda m: f"缺少输入（位置 {m[1]}）"),
    (re.compile(r"^missing input (.*)$", re.S), lambda m: f"缺少输入：{m[1]}"),  # an element's inputs, by place
    (re.compile(r"^warning (\w+) was undetermined$"), lambda m: f"预警 {m[1]} 无法判断"),
    (re.compile(r"^depends on (\w+) \((.*)\)$", re.S), lambda m: f"依赖 {m[1]}（{_reason(m[2], 'zh')}）"),
    (re.compile(r"^undefined for the figures read \((.*)\): zero or non-positive base(, or too few periods)?$", re.S),
     lambda m: "按所读数值无法计算（" + _PERIODS.sub(r"[\1期]", m[1]) + "）：分母为零或非正"
     + ("，或期数不足" if m[2] else "")),
    # provisional_grades: unknown: a debtor rule or metric that read a grade an undetermined floor could worsen
    (re.compile(r"^reads a provisional grade: (.*)$", re.S),
     lambda m: "读取了暂定的分类：" + "；".join(map(_provisional_zh, _split_top(m[1])))),
    (re.compile(r"^provisional, undetermined: (.*)$", re.S),
     lambda m: "分类暂定，以下规则无法判断：" + _inner_zh(m[1])),
    (re.compile(r"^provisional, an undetermined debtor rule could apply to it$"),
     lambda m: "分类暂定：一条无法判断的债务人规则可能适用于它"),
    (re.compile(r"^no element met the aggregation's condition, or there is none$"),
     lambda m: "没有满足聚合条件的元素（或没有元素）"),
    (re.compile(r"^the condition has no value for the figures read \((.*)\): a zero or non-positive base"
                r"(, or too few periods)?$", re.S),
     lambda m: "按所读数值条件无法判断（" + _PERIODS.sub(r"[\1期]", m[1]) + "）：分母为零或非正"
     + ("，或期数不足" if m[2] else "")),
)
_PERIODS = re.compile(r"\[(\d+) periods\]")
_ELEMENT_ZH = re.compile(r"\bexposure (\S+): ")  # 'exposure GT-1: ecl', as of_exposure words an exposure in Chinese


def _provisional_zh(part: str) -> str:
    """``exposure E1: grade (provisional, undetermined: <floor ids>)`` in Chinese."""
    m = re.match(r"^(?:exposure )?(.*?): grade \((.*)\)$", part, re.S)
    if m is None:
        return part
    who = f"债项 {m[1]}" if part.startswith("exposure ") else m[1]
    return f"{who} 的分类（{_reason(m[2], 'zh')}）"


def _element_reason(part: str) -> str:
    """``exposure E2: dpd (missing input at ...)``: the element's name kept, its reason in Chinese; a reason of
    its own (``missing input exposures[1].stage``, ``depends on x (...)``) in Chinese as a whole."""
    whole = _reason(part, "zh")
    if whole != part:
        return whole
    m = re.match(r"^(.*?) \((.*)\)$", part, re.S)
    return f"{m[1]}（{_reason(m[2], 'zh')}）" if m else part


# What an element lacked, inside a list of elements without a value (evaluate._no_value_for): each bracket the
# record opens after a space, with its words; a bracket inside an id (E2(续贷)) is the id's and stays.
_INNER_ZH = (("missing input at ", "缺少输入，位置 "), ("missing input ", "缺少输入："), ("depends on ", "依赖 "),
             ("no value: ", "无数值："))
_BRACKETS = re.compile(r" \(|\(|\)|; |；")  # and the separators of reasons joined: each is worded in turn


def _split_top(text: str) -> list[str]:
    """``text`` split at each '; ' outside brackets: a reason's own parts, not those of a reason nested in one (a
    split inside left 'depends on later_restructurings (no value: ...)' in English)."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if not depth and text.startswith("; ", i):
            parts.append(text[start:i])
            start = i + 2
    return [*parts, text[start:]]


def _inner_zh(text: str) -> str:
    out, opened, done = [], [], 0
    for m in _BRACKETS.finditer(text):
        out.append(text[done:m.start()])
        done = m.end()
        if m[0] in (" (", "; ", "；"):
            if m[0] == " (":
                opened.append(True)
            out.append("（" if m[0] == " (" else "；")
            while (found := next(((en, zh) for en, zh in _INNER_ZH if text.startswith(en, done)), None)):
                out.append(found[1])  # 'no value: missing input ...': each of the record's words in turn
                done += len(found[0])
        elif m[0] == "(":
            opened.append(False)
            out.append("(")
        else:
            out.append("）" if opened and opened.pop() else ")")
    out.append(text[done:])
    return "".join(out)


_PATH_LIST = re.compile(r"[\w.]+\[\d+\][\w.]*(?:, [\w.]+\[\d+\][\w.]*)+")
_INDEXED = re.compile(r"^(.*)\[(\d+)\]([^\[]*)$")  # the last index: exposures[0].schedule[12].paid_date


def _runs(paths: str) -> str:
    """``statements[0].x, statements[1].x, statements[2].x`` as ``statements[0–2].x``: a record lacking a field
    in every period reads as one item, not fifteen."""
    groups: dict[tuple[str, str], list[int]] = {}
    for path in paths.split(", "):
        m = _INDEXED.match(path)
        assert m is not None  # the pattern matched every item
        groups.setdefault((m[1], m[3]), []).append(int(m[2]))
    out = []
    for (head, tail), found in groups.items():
        spans: list[list[int]] = []
        for i in sorted(set(found)):
            if spans and i == spans[-1][1] + 1:
                spans[-1][1] = i
            else:
                spans.append([i, i])
        out += [f"{head}[{a}]{tail}" if a == b else f"{head}[{a}–{b}]{tail}" for a, b in spans]
    return ", ".join(out)


# The record says "or too few periods" of any figure without a value; where none of the figures read is a series of
# periods, the explanation leaves it out (a debtor whose balances are all zero has no periods to lack).
_PERIODS_TAIL = re.compile(r"(zero or non-positive base), or too few periods$")


def _reason(text: str, lang: str) -> str:
    text = _PATH_LIST.sub(lambda m: _runs(m[0]), text)
    if " periods]" not in text:
        text = _PERIODS_TAIL.sub(r"\1", text)
    if lang != "zh":
        return text
    for pattern, words in _REASONS_ZH:
        m = pattern.match(text)
        if m:
            return words(m)
    return text


def _decided_by(t: Mapping[str, str], policy: CompiledPolicy, decided_by: str, sgrade: str, score: str,
                lang: str) -> str:
    """What decided the grade; a score is quoted only when the policy has a scorecard. A floor is named by
    its id, and on the next line by its description where the policy gives one (a reader who does not know
    the ids reads what the rule says)."""
    if not policy.score_bands:
        if decided_by == "default":
            return t["by_default"].format(sgrade=sgrade)
        line = t["by_floor_only"].format(rule=decided_by)
    elif decided_by == "scorecard":
        return t["by_score"].format(score=score, sgrade=sgrade)
    else:
        line = t["by_floor"].format(rule=decided_by, sgrade=sgrade, score=score)
    described = _rule_description(policy, decided_by, lang)
    return line if described is None else f"{line}\n  {described}"


def _rule_description(policy: CompiledPolicy, rule: str, lang: str) -> str | None:
    """A classification rule's description in ``lang`` (the debtor's rules or an exposure's), None without one."""
    scoped = policy.scoped.floors if policy.scoped is not None else ()
    spec = next((r for r in (*policy.floors, *scoped) if r.id == rule), None)
    description = spec.description if spec is not None else None
    return description.get(lang) if description else None


@dataclass(frozen=True)
class _Page:
    """What every section of one explanation reads: the record, its policy, and their words in one language."""

    record: Mapping[str, Any]
    policy: CompiledPolicy
    lang: str
    words: Mapping[str, str]  # _T in ``lang``
    grade_labels: Mapping[str, str]  # grade id -> its label in ``lang``
    metrics: Mapping[str, Any]  # metric name -> its compiled definition (label, format)
    inputs: Mapping[str, Any]  # input name (of every scope) -> its spec (label)
    floors: Mapping[str, Any]  # classification rule id (debtor and exposure) -> its spec (description)

    @classmethod
    def of(cls, record: Mapping[str, Any], policy: CompiledPolicy, lang: str) -> _Page:
        part = policy.scoped
        scoped = part.metrics if part is not None else ()
        inputs = [*policy.inputs, *(s for specs in part.inputs.values() for s in specs)] if part else policy.inputs
        floors = [*policy.floors, *(part.floors if part is not None else ())]
        return cls(record, policy, lang, _words(lang), _grade_labels(policy, lang),
                   {m.name: m for m in (*policy.metrics, *scoped)}, {s.name: s for s in inputs},
                   {f.id: f for f in floors})


def _words(lang: str) -> dict[str, str]:
    return {k: v[lang] for k, v in _T.items()}


def _grade_labels(policy: CompiledPolicy, lang: str) -> dict[str, str]:
    return {g.id: (g.zh if lang == "zh" else g.en) for g in policy.scale}


def _title(page: _Page) -> list[str]:
    record = page.record
    return [page.words["title"].format(cid=record["client_id"], as_of=record["as_of"], pid=record["policy"]["id"],
                                       ver=record["policy"]["version"]),
            *not_in_force(record, page.policy, page.lang)]


def _segment(page: _Page) -> list[str]:
    """The segment whose parameters applied (its own thresholds): a reader checks a floor against the right ones."""
    value = page.record.get("segment")
    policy = page.policy
    if value is None or not policy.segment_by:
        return []
    name = (policy.segment_label or {}).get(page.lang) or page.words["segment_name"]
    shown = (policy.segment_value_labels.get(str(value)) or {}).get(page.lang) or str(value)
    return [page.words["segment"].format(name=name, value=shown, lower=name.lower())]


def not_in_force(record: Mapping[str, Any], policy: CompiledPolicy, lang: str) -> list[str]:
    """A line when the decision's version was not in force on its day (pinned to preview a version, or to
    decide under one that has ended): a printout must not pass for a decision under the policy then in force."""
    day = record.get("as_of")
    ref = record.get("policy") or {}
    if not isinstance(day, str) or ref.get("version") != policy.version or policy.applies_on(day):
        return []
    if policy.effective_to is None:
        span = f"自 {policy.effective_from} 起" if lang == "zh" else f"from {policy.effective_from}"
    else:
        span = f"{policy.effective_from} 至 {policy.effective_to}" if lang == "zh" else \
            f"from {policy.effective_from} to {policy.effective_to}"
    return [_T["not_in_force"][lang].format(pid=policy.id, ver=policy.version, as_of=day, span=span)]


NO_EXPOSURE_WARNING = ("the record holds no exposure: its grade comes from the debtor's rules alone; check that its "
                       "exposures were not left out")


def decision_warnings(record: Mapping[str, Any], policy: CompiledPolicy, client: Any = None) -> list[str]:
    """What a caller reading only the JSON should be told on stderr: the version was not in force on the
    decision's day, or a debtor was graded "worst of none" (its exposures maybe left out upstream); with the
    ``client`` record decided, also that it was decided as of another day than its own ``as_of``."""
    return [message for _, message in decision_notes(record, policy, client)]


def decision_notes(record: Mapping[str, Any], policy: CompiledPolicy, client: Any = None) -> list[tuple[str, str]]:
    """:func:`decision_warnings` each with its code (``as-of-after-record``, ``as-of-before-record``,
    ``record-as-of-unread``, ``not-in-force``, ``no-exposures``), for JSON on stderr."""
    notes = []
    if client is not None:  # the decision keeps its day, not the record's: only the record tells them apart
        other_day = dated_before(client, record.get("as_of"))
        if other_day is not None:
            notes.append(other_day)
    notes += [("not-in-force", line.removeprefix("! ")) for line in not_in_force(record, policy, "en")]
    if record.get("exposures") == []:
        notes.append(("no-exposures", NO_EXPOSURE_WARNING))
    return notes


def _blank(page: _Page) -> list[str]:
    return [""]


def _grade(page: _Page) -> list[str]:
    """The grade and what decided it: the scorecard, a floor, or the best of the scale."""
    classification, score = page.record["classification"], page.record["score"]
    grade = page.words["grade"].format(label=classification["label"][page.lang], gid=classification["grade"])
    # a floor a missing fact left undetermined did not fire: the grade may be too good, which the headline says
    # (not for a floor no worse than the grade: firing, it would change nothing)
    unsure = sum(1 for u in page.record.get("undetermined") or ()
                 if u.get("kind") == "classification" and _could_worsen(page, u["rule"], classification["grade"]))
    if unsure:
        grade += page.words["grade_provisional"].format(n=unsure)
    return [grade,
            _decided_by(page.words, page.policy, classification["decided_by"],
                        page.grade_labels.get(score["grade"], "?"), f"{score['total']:g}", page.lang)]


def _could_worsen(page: _Page, rule: str, grade: str) -> bool:
    """Whether floor ``rule``, had it fired, would make ``grade`` worse (a rule the page does not know: assume so)."""
    floor = page.floors.get(rule)
    return floor is None or grade not in page.policy.grade_ids or floor.rank > page.policy.grade_ids.index(grade)


def _floors(page: _Page) -> list[str]:
    """The floors that fired, each with its source. A debtor's list holds its exposures' own floors too (which
    usually decide its grade), each naming the exposures it fired on, then its debtor rules; the most severe
    first."""
    words = page.words
    floors = page.record["classification"]["floors"]
    exposures = page.record.get("exposures")
    if exposures is None:
        entries = [(f, f["id"]) for f in floors]
    else:
        fired_on: dict[str, tuple[Mapping[str, Any], list[str]]] = {}
        for x in exposures:
            for f in x["floors"]:
                if f.get("scope") == "exposure":
                    fired_on.setdefault(f["id"], (f, []))[1].append(str(x["exposure_id"]))
        sep = "、" if page.lang == "zh" else ", "
        entries = [(f, words["of_exposure"].format(rule=rule, id=sep.join(ids))) for rule, (f, ids) in fired_on.items()]
        entries += [(f, _debtor_floor_words(f, words, sep, _not_known(page, f, page.floors.get(f["id"]))))
                    for f in floors]
        rank = {g.id: k for k, g in enumerate(page.policy.scale)}
        entries.sort(key=lambda e: -rank.get(e[0]["floor"], 0))
    if not entries:
        return []
    return [words["floors"], *(words["floor"].format(rule=rule, floor=page.grade_labels[f["floor"]],
                                                     source=f["source"]) for f, rule in entries)]



def _debtor_floor_words(f: Mapping[str, Any], words: Mapping[str, str], sep: str, unknown: str = "") -> str:
    """A fired debtor floor as the floor list names it; one naming its exposures says which (and, ``unknown``,
    which not known: see :func:`_not_known`)."""
    named = [str(x) for x in f.get("exposures") or ()]
    if not named:
        return words["debtor_floor"].format(rule=f["id"])
    key = "debtor_floor_for_many" if len(named) > 1 else "debtor_floor_for"
    return words[key].format(rule=f["id"], ids=sep.join(named), unknown=unknown)


def _not_known(page: _Page, item: Mapping[str, Any], spec: Any) -> str:
    """The exposures a rule's ``for_exposures`` could not tell about. One whose condition read a metric of the
    exposure without a value is named with that metric and the record's reason (a limit of 0: 'zero or non-positive
    base', no fact missing); the others as 'a fact missing' (an input of the exposure not given)."""
    unknown = [str(x) for x in item.get("exposures_not_known") or ()]
    if not unknown:
        return ""
    sep = _LIST_SEP[page.lang]
    refs = spec.for_exposures.refs if getattr(spec, "for_exposures", None) is not None else ()
    undefined = {str(x["exposure_id"]): x.get("undefined_metrics") or {} for x in page.record.get("exposures") or ()}
    told, plain = [], []
    for eid in unknown:
        whys = [f"{_metric_label(page, n)}{'：' if page.lang == 'zh' else ': '}{_why(page, n, undefined[eid][n])}"
                for n in refs if n in undefined.get(eid, {})]
        if whys:
            told.append(_bracketed(eid, ("；" if page.lang == "zh" else "; ").join(whys), page.lang))
        else:
            plain.append(eid)
    out = page.words["concerns_not_known"].format(ids=sep.join(plain)) if plain else ""
    return out + (page.words["concerns_no_value"].format(ids=sep.join(told)) if told else "")

def _exposures(page: _Page) -> list[str]:
    """A debtor with several exposures: how its grade follows from them, then each exposure's grade and rule."""
    exposures = page.record.get("exposures")
    if exposures is None:
        return []
    words, cls = page.words, page.record["classification"]
    head = words["worst_of"].format(eid=cls["decided_by_exposure"], rule=cls["decided_by"]) \
        if "decided_by_exposure" in cls else words["worst_of_debtor"]
    out = [head, words["exposures"].format(n=len(exposures))]
    if not exposures:  # "worst of none": a made-up pass unless someone checks the data
        out.append(words["no_exposures"])
    # a debtor floor applying back to every exposure, undetermined: beside 'no floor fired' an exposure read as settled
    # (one naming its exposures has an entry per exposure it may name, listed with the exposure's own)
    pending = [u["rule"] for u in page.record.get("undetermined") or ()
               if u.get("kind") == "classification" and "exposure" not in u
               and getattr(page.floors.get(u["rule"]), "for_exposures", None) is None]
    for x in exposures:
        label = x["label"][page.lang]
        if x["decided_by"] == "default":
            out.append(words["exposure_default"].format(eid=x["exposure_id"], label=label, gid=x["grade"]))
        else:
            described = _rule_description(page.policy, x["decided_by"], page.lang)
            rule = _bracketed(x["decided_by"], described, page.lang) if described else x["decided_by"]
            line = words["exposure"].format(eid=x["exposure_id"], label=label, gid=x["grade"], rule=rule,
                                            own=page.grade_labels[x["own_grade"]])
            out.append(line.replace("） 决定", "）决定"))  # no space after a full-width bracket
        if x["floors"]:
            rules = [words["debtor_floor"].format(rule=f["id"]) if f.get("scope") == "debtor" else f["id"]
                     for f in x["floors"]]
            out.append(words["exposure_floors"].format(rules=_LIST_SEP[page.lang].join(rules)))
        # a floor of this exposure a missing fact left undetermined: beside 'no floor fired' it read as settled
        unsure = [u["rule"] for u in page.record.get("undetermined") or ()
                  if u.get("exposure") == x["exposure_id"] and u.get("kind") == "classification"] + pending
        for key, worse in (("exposure_undetermined", True), ("exposure_undetermined_moot", False)):
            rules = [words["debtor_floor"].format(rule=_rule_name(page, r))
                     if getattr(page.floors.get(r), "scope", None) == "debtor" else _rule_name(page, r)
                     for r in unsure if _could_worsen(page, r, x["grade"]) is worse]
            if rules:
                out.append(words[key].format(rules=_LIST_SEP[page.lang].join(rules)))
        figures = _exposure_figures(page, x.get("metrics") or {})
        if figures:
            out.append(words["exposure_figures"].format(figures=figures))
    return out


def _exposure_figures(page: _Page, values: Mapping[str, Any]) -> str:
    """The exposure's key figures that have a value: the derived states (a restructuring's date and measure,
    the observation clock from when to when) a reviewer checks the grade against. A null or false says only that
    the state does not apply, so it is left out rather than printed for every exposure."""
    shown = []
    for name in page.policy.key_figures:
        if values.get(name) is None or values[name] is False or name not in page.metrics:
            continue
        metric, v = page.metrics[name], values[name]
        label = _label(metric, name, page.lang)
        text = (("是" if v else "否") if page.lang == "zh" else ("yes" if v else "no")) if isinstance(v, bool) \
            else _metric_value(metric, v, page.lang)
        shown.append(f"{label}：{text}" if page.lang == "zh" else f"{label}: {text}")
    return ("；" if page.lang == "zh" else "; ").join(shown)


def _key_figures(page: _Page) -> list[str]:
    """The figures the policy declares as key, in its order; a policy that names none gets no block."""
    values = page.record["metrics"]
    shown = [name for name in page.policy.key_figures if name in values and name in page.metrics]
    if not shown:
        return []
    lines = [page.words["figures"]]
    for name in shown:
        metric = page.metrics[name]
        label = _label(metric, name, page.lang)
        origin = page.policy.imported.get(name)  # an imported metric names the module that defines it
        lines.append(f"  {label}{'：' if page.lang == 'zh' else ': '}{_metric_value(metric, values[name], page.lang)}"
                     + (f"  [{origin}]" if origin else ""))
    return lines


def _label(metric: MetricSpec, name: str, lang: str) -> str:
    """A metric's label in ``lang``, its name when the policy gives none."""
    return (metric.label or {}).get(lang, name)


def _metric_value(metric: MetricSpec, v: Any, lang: str) -> str:
    """A metric's value as the explanation prints it: a text value by its label when the policy gives one
    (a measure reads 展期, not extension), a number by its format."""
    if metric.labels and isinstance(v, str) and v in metric.labels:
        return metric.labels[v].get(lang, v)
    text = _value(v, metric.format)
    if metric.unit and metric.format == "amount" and type(v) in (int, float):
        return _with_money_unit(text, metric.unit, lang)
    return text


def _with_money_unit(amount: str, unit: str, lang: str) -> str:
    """An amount with its unit of money as a credit file writes it: 100,400,000元, CNY 100,400,000."""
    if lang == "zh":
        return f"{amount}元" if unit == "CNY" else f"{amount} {unit}"
    return f"{unit} {amount}"


_FIGURE_READ = re.compile(r"(?<=[(, ])(\w+)=([^,)\[]+)(?=[,)])")


def _figures_shown(page: _Page, why: str) -> str:
    """The figures a metric without a value read (``income=-1.6e+07``, six digits in the record's words) as the
    key figures show them (-16,000,000), for each that is a metric of the record."""
    metrics = page.record.get("metrics") or {}

    def shown(m: re.Match[str]) -> str:
        name = m[1]
        if name not in page.metrics or metrics.get(name) is None:
            return m[0]
        return f"{name}={_value(metrics[name], page.metrics[name].format)}"

    return _FIGURE_READ.sub(shown, why) if "for the figures read (" in why else why  # nested in 'depends on' too


def _undefined_metrics(page: _Page) -> list[str]:
    """The metrics without a value and why; those of an aggregation no element met (the date of the first
    event of a kind the debtor never had) are not a gap in the data but an answer: one line of their own."""
    from .evaluate import NO_MATCH

    undefined = page.record["undefined_metrics"]
    gaps = {name: why for name, why in undefined.items() if why != NO_MATCH}
    lines = [page.words["undefined"]] if gaps else []
    for name, why in gaps.items():
        lines.append(f"  - {_metric_label(page, name)}{'：' if page.lang == 'zh' else ': '}" + _why(page, name, why))
    none = [_metric_label(page, name) for name, why in undefined.items()
            if why == NO_MATCH and not _idle_evidence(page, name)]
    if none:
        lines.append(page.words["none_found"].format(names=("、" if page.lang == "zh" else "; ").join(none)))
    return lines


def _idle_evidence(page: _Page, name: str) -> bool:
    """A metric that is the evidence of warnings none of which fired, and no key figure: that it has no value says
    nothing a reader needs (a line of 'none in the record' grew with every warning's evidence)."""
    naming = [w.id for w in page.policy.warnings if name in w.evidence]
    if not naming or name in page.policy.key_figures:
        return False
    fired = {w["id"] for w in page.record.get("warnings") or ()}
    return not fired.intersection(naming)


_DEPENDS_ON = re.compile(r"^depends on (\w+) \((.*)\)$", re.S)


def _why(page: _Page, name: str, why: str) -> str:
    """Why metric ``name`` has no value, in the reader's words; along a chain of metrics (a return that depends on a
    sum over four quarters, which lacks one), the too-few-periods reason of the one at its end, as that one's own
    line words it, not the record's "zero or non-positive base, or too few periods"."""
    short = _too_few_periods(page, name, why)
    if short is not None:
        return short
    m = _DEPENDS_ON.match(why)
    if m is not None and m[1] in page.metrics:
        inner = _why(page, m[1], m[2])
        named = _metric_label(page, m[1])
        return f"依赖 {named}（{inner}）" if page.lang == "zh" else f"depends on {named} ({inner})"
    return _MISSING_NAMES.sub(lambda x: x[1] + _LIST_SEP[page.lang].join(
        _metric_label(page, n) for n in re.split(r", |、", x[2])), _reason(_figures_shown(page, why), page.lang))


# the inputs a reason names missing, by their labels (缺少输入：征信：逾期90天以上债务（bureau_overdue_90_amount）)
_MISSING_NAMES = re.compile(r"(缺少输入：|missing input: )([a-z_][a-z0-9_]*(?:(?:, |、)[a-z_][a-z0-9_]*)*)$")


_SERIES_READ = re.compile(r"(\w+)=\[(\d+) periods\]")
_TOO_FEW = {"zh": "期数不足：{items}", "en": "too few periods: {items}"}
_TOO_FEW_ITEM = {"zh": "{series}仅有{have}期，需要{need}期（{fn}）", "en": "{series} has {have}, {fn} needs {need}"}


def _too_few_periods(page: _Page, name: str, why: str) -> str | None:
    """A metric without a value because a window is longer than its series (``sum_last(x, 4)`` over 3
    quarters) said so, where the record's reason gives only "zero or non-positive base, or too few periods";
    None when no window of the metric is longer than the series it reads."""
    import ast

    from ..language.functions import FUNCTIONS

    if not why.startswith("undefined for the figures read") or name not in page.metrics:
        return None
    have = {m[1]: int(m[2]) for m in _SERIES_READ.finditer(why)}
    items = []
    for node in ast.walk(page.metrics[name].expr.tree):
        fn = FUNCTIONS.get(node.func.id) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
        if fn is None or fn.window_arg is None or len(node.args) <= fn.window_arg:
            continue
        series = node.args[0].id if isinstance(node.args[0], ast.Name) else None
        need = _periods_needed(fn, node) if series in have else None
        if series is not None and need is not None and have[series] < need:
            items.append(_TOO_FEW_ITEM[page.lang].format(series=_metric_label(page, series), have=have[series],
                                                         fn=fn.name, need=need))
    return _TOO_FEW[page.lang].format(items=_LIST_SEP[page.lang].join(items)) if items else None


def _periods_needed(fn: Any, node: Any) -> int | None:
    """The fewest periods a windowed call has a value for (sum_last(x, 4): 4; lag(x, 4): 5), found by calling the
    function on series of 1.0 of growing length: its own rule, not a copy of it. None: an argument not literal."""
    import ast

    rest = node.args[1:]
    if not all(isinstance(a, ast.Constant) for a in rest) or fn.row is None:
        return None
    args = [a.value for a in rest]
    for k in range(1, 402):
        try:
            if fn.row([1.0] * k, *args) is not None:
                return k
        except (TypeError, ValueError, ArithmeticError):
            return None
    return None


def _metric_label(page: _Page, name: str) -> str:
    """A metric's (or an input's) label with its id in brackets (the id finds it in the JSON record); the id alone
    without a label.

    Label and id run together read as one phrase (a label "Restructured on" before the id "restructured_on")."""
    spec = page.metrics.get(name) or page.inputs.get(name)
    label = (spec.label or {}).get(page.lang) if spec is not None else None
    if not label:
        return name
    return _bracketed(label, name, page.lang)


def _rule_name(page: _Page, rule_id: str) -> str:
    """A classification rule by its description with its id after it (本行或他行债务出现不良，全部至少关注类
    （nonperforming_any_bank）); the id alone without one."""
    spec = page.floors.get(rule_id)
    words = (spec.description or {}).get(page.lang) if spec is not None else None
    return _bracketed(words, rule_id, page.lang) if words else rule_id


def _bracketed(text: str, inside: str, lang: str) -> str:
    """``text（inside）`` in Chinese, ``text (inside)`` in English: a label with its id, an id with its words."""
    return f"{text}（{inside}）" if lang == "zh" else f"{text} ({inside})"


def _lookups(page: _Page) -> list[str]:
    """Where a threshold came from: each table cell the decision read (a policy with tables only)."""
    cells = page.record.get("lookups")
    if not cells:
        return []
    lines = [page.words["lookups"]]
    for c in cells:
        keys = ", ".join(f"{k}={_trace_value(v)}" for k, v in c["keys"].items())
        line = f"  {c['table']}[{keys}] = {_trace_value(c['value'])}"
        if "exposure" in c:  # a cell keyed by an exposure's own facts: read once per exposure
            line = f"  {printable(str(c['exposure']))}: {line.lstrip()}"
        points = c.get("points")
        if points:
            shown = " / ".join(f"({_trace_value(x)}: {_trace_value(y)})" for x, y in points)
            line += " (" + page.words["between" if len(points) == 2 else "clamped"].format(points=shown) + ")"
        lines.append(f"{line} <- {', '.join(c['read_by'])}")
    return lines


def _warnings(page: _Page) -> list[str]:
    warnings = page.record["warnings"]
    severity = _SEVERITY[page.lang]
    lines = [page.words["warnings"].format(n=len(warnings))]
    if not warnings:
        lines.append(page.words["none"])
    from .evaluate import parse_template

    # the evidence a warning declares, less what its message already quotes
    declared = {w.id: [n for n in w.evidence if n not in {name for _, name, _ in parse_template(w.message[page.lang])}]
                for w in page.policy.warnings}
    # the most severe first (the record keeps the policy's order): a reader stops at the first lines
    for w in sorted(warnings, key=lambda w: -_SEVERITY_RANK.get(w["severity"], 0)):
        message = w["message"][page.lang]
        beside = _beside(page, declared.get(w["id"], ()), w.get("evidence") or {})
        lines.append(f"  [{severity[w['severity']]}] {_with_figures(message, beside, page.lang)}")
        if "exposures" in w:
            lines.append(_concerns(page, w))
    return lines


def _concerns(page: _Page, item: Mapping[str, Any]) -> str:
    """The exposures a warning or an action concerns, each with its grade, and those its condition could not
    tell about (a fact missing)."""
    grades = {x["exposure_id"]: x["label"][page.lang] for x in page.record.get("exposures") or ()}
    sep = "、" if page.lang == "zh" else ", "
    line = page.words["concerns"].format(ids=sep.join(_bracketed(eid, grades[eid], page.lang)
                                                      for eid in item["exposures"] if eid in grades))
    if item.get("exposures_not_known"):
        specs = page.policy.actions if "action" in item else page.policy.warnings
        line += _not_known(page, item, next((x for x in specs if x.id == item["id"]), None))
    return line


_SEVERITY_RANK = {"low": 1, "medium": 2, "high": 3, "critical": 4}


def _with_figures(message: str, beside: str, lang: str) -> str:
    """A warning's message with its evidence figures in brackets; a message that ends in a bracket of its
    own takes them inside it (…（下限1.15；流动比率：0.84）, not …（下限1.15）（流动比率：0.84）)."""
    if not beside:
        return message
    sep, close = ("；", "）") if lang == "zh" else ("; ", ")")
    if message.endswith(close):
        return f"{message[:-1]}{sep}{beside}{close}"
    return _bracketed(message, beside, lang)


def _beside(page: _Page, names: Sequence[str], evidence: Mapping[str, Any]) -> str:
    """The figures a warning declares as evidence, beside its message: the policy names there what may have no
    value when the warning fires (a date another exposure's clock leaves unknown, a group not recorded),
    so it is shown with the message, by its label, '—' when it has none."""
    shown = []
    for name in names:
        if name not in evidence:
            continue
        metric = page.metrics.get(name)
        value = _metric_value(metric, evidence[name], page.lang) if metric is not None \
            else _value(evidence[name], None)
        if metric is not None:
            label = _label(metric, name, page.lang)
        else:  # an input quoted as it is: its own label, if the policy gives one
            spec = next((i for i in page.policy.inputs if i.name == name), None)
            label = spec.label[page.lang] if spec is not None and spec.label else name
        shown.append(f"{label}：{value}" if page.lang == "zh" else f"{label}: {value}")
    return ("；" if page.lang == "zh" else "; ").join(shown)


def _actions(page: _Page) -> list[str]:
    actions = page.record["actions"]
    lines = [page.words["actions"].format(n=len(actions))]
    if not actions:
        lines.append(page.words["none"])
    for number, action in enumerate(actions, 1):
        lines += _action(page, number, action)
    return lines


def _action(page: _Page, number: int, action: Mapping[str, Any]) -> list[str]:
    """One recommended action: its type, parameters and approver, the exposures it concerns, its reason,
    its regulatory consequence."""
    lines = [_action_head(page, number, action)]
    if "exposures" in action:
        lines.append(_concerns(page, action))
    lines.append(f"     {action['reason'][page.lang]}")
    restructuring = action.get("restructuring")
    if restructuring is not None:
        lines.append(_restructuring(page, restructuring))
    return lines


_PLAIN = Param("string")  # a parameter shown as name=value


def _action_head(page: _Page, number: int, action: Mapping[str, Any]) -> str:
    """``  2. Reprice [rate_relief]: cut the rate by 50 bp — approval: branch credit committee``.

    Each parameter as the catalogue words it for its type (labels, percentages, the date a number of days
    ends on); a parameter of a policy's own type without words is ``name=value``."""
    action_type = page.policy.action_types.get(action["action"])  # the engine's types and the policy's own
    specs = action_type.params if action_type is not None else {}
    as_of = _dt.date.fromisoformat(page.record["as_of"])
    params = ("，" if page.lang == "zh" else ", ").join(
        specs.get(k, _PLAIN).show(k, v, page.lang, as_of) for k, v in action["params"].items())
    approver = _APPROVAL[page.lang].get(action["approval"] or "", action["approval"] or "")
    words = _action_words(page, action["id"])
    name = f"{words} [{action['id']}]" if words else action["id"]
    head = f"  {number}. {name}" + ((f"：{params}" if page.lang == "zh" else f": {params}") if params else "")
    if approver:
        head += " — " + page.words["approval"].format(who=approver)
    return head


def _restructuring(page: _Page, restructuring: Mapping[str, Any]) -> str:
    """Whether the action is a restructuring for this client: yes (with its consequence), no, or undetermined."""
    if restructuring["is_restructuring"] is True:
        return page.words["restructuring"].format(note=restructuring["note"][page.lang],
                                                  source=restructuring["source"])
    if restructuring["is_restructuring"] is False:
        return page.words["not_restructuring"]
    return page.words["restructuring_unknown"]


def _conflicts(page: _Page) -> list[str]:
    """Two recommended actions the catalogue says conflict (a 1.x policy, where the engine does not exclude
    them, so its published decisions stay as they were): the reader is told, with why."""
    if page.policy.scoped is not None:
        return []
    recommended = {a["id"] for a in page.record["actions"]}
    return [page.words["conflict"].format(a=a.id, b=b.id, why=why[page.lang])
            for a, b, why in conflicting_actions(page.policy.actions)
            if a.id in recommended and b.id in recommended]


def _suppressed_actions(page: _Page) -> list[str]:
    """Each action an exclusion kept out; one the catalogue excludes says why (early repayment beside grace)."""
    specs = {a.id: a for a in page.policy.actions}
    lines = []
    for s in page.record.get("suppressed_actions", []):
        why = specs[s["id"]].implied.get(s["excluded_by"]) if s["id"] in specs else None
        key = "suppressed_catalogue" if why else "suppressed"
        lines.append(page.words[key].format(id=_action_name(page, s["id"]), by=_action_name(page, s["excluded_by"]),
                                            why=why[page.lang] if why else ""))
    return lines


def _action_words(page: _Page, action_id: str) -> str | None:
    """An action's words: its label (存款抵销), else its type's name (处置押品); None for one the policy lacks."""
    spec = next((a for a in page.policy.actions if a.id == action_id), None)
    if spec is None:
        return None
    kind = page.policy.action_types.get(spec.action)
    return (spec.label or {}).get(page.lang) or (getattr(kind, page.lang) if kind is not None else None)


def _action_name(page: _Page, action_id: str) -> str:
    """An action by its words with its id after them (下调利率（rate_relief）); the id alone without words."""
    words = _action_words(page, action_id)
    return _bracketed(words, action_id, page.lang) if words else action_id


def _warning_name(page: _Page, warning_id: str) -> str:
    """A warning by its label with its id after it; the id alone without a label."""
    spec = next((w for w in page.policy.warnings if w.id == warning_id), None)
    words = (spec.label or {}).get(page.lang) if spec is not None else None
    if not words:
        return warning_id
    return _bracketed(words, warning_id, page.lang)


_FIRED = re.compile(r"^fired\('(\w+)'\)$")
_ELEMENT_NAME = re.compile(r"^(\w+) (.+): (\w+)$")  # 'exposure GT-1: collateral_change', from an aggregation


_PLACE = re.compile(r"\b[A-Za-z_][\w.]*\[\d+\](?:\.\w+|\[\d+\])+")  # exposures[1].accounting.stage
_MAX_PLACES = 8


_MISSING_INPUTS = re.compile(r"missing input: (\w+(?:, \w+)*)")  # a debtor's inputs, by name


def _places(page: _Page, reasons: Mapping[str, str]) -> str:
    """The record's fields an undetermined rule's reasons name (``exposures[0].modifications[0].new_rate``), each
    once, runs of periods as one, then the debtor's fields behind the inputs they name (at most eight, then how
    many more); empty when they name none."""
    indexed = list(dict.fromkeys(m[0] for why in reasons.values() for m in _PLACE.finditer(why)))
    runs = _runs(", ".join(indexed)).split(", ") if indexed else []  # a run of periods is one item
    runs = list(dict.fromkeys([*runs, *_input_places(page, reasons)]))
    if not runs:
        return ""
    return ", ".join(runs[:_MAX_PLACES]) + (f", +{len(runs) - _MAX_PLACES}" if len(runs) > _MAX_PLACES else "")


def _input_places(page: _Page, reasons: Mapping[str, str]) -> Iterator[str]:
    """The field each debtor input a reason names missing reads (``external_rating.previous_notch``; a series, its
    list): an element's reasons name their places, the debtor's name its inputs, whose fields the policy knows."""
    debtor_inputs = {s.name: s for s in page.policy.inputs}
    for name, why in reasons.items():
        names = [name] if why == "missing input" else \
            [n for m in _MISSING_INPUTS.finditer(why) for n in m[1].split(", ")]
        for n in names:
            if (spec := debtor_inputs.get(n)) is not None:
                yield spec.source.split("[*]", 1)[0]


def _lacking(page: _Page, name: str) -> str:
    """A name an undetermined rule lacked, in the reader's words: a warning as a warning, a metric by its label
    (the id after it), an element's value with the element (债项 GT-1 的 ... in Chinese)."""
    if m := _FIRED.match(name):
        return page.words["undetermined_warning"].format(id=_warning_name(page, m[1]))
    if (m := _ELEMENT_NAME.match(name)) is not None:
        scope, key, inner = m.groups()
        if page.lang == "zh":
            graded = page.policy.scoped.graded if page.policy.scoped is not None else None
            return f"{'债项' if scope == graded else scope} {key} 的 {_metric_label(page, inner)}"
        return f"{scope} {key}: {_metric_label(page, inner)}"
    return _metric_label(page, name)


_LIST_SEP = {"zh": "、", "en": ", "}


def _undetermined(page: _Page) -> list[str]:
    """Rules that could not fire for missing data, each with what it lacked, and apart from them the actions whose
    computed parameter the catalogue refused (no fact is missing there: the figure is one the action cannot take);
    a block only when there are some."""
    gaps = [u for u in page.record["undetermined"] if u.get("code") != "action-param-refused"]
    refused = [u for u in page.record["undetermined"] if u.get("code") == "action-param-refused"]
    lines = []
    if gaps:
        lines += ["", page.words["undetermined"]]
        for u in gaps:
            missing = [_lacking(page, name) for name in u["missing"]]
            name = _action_name(page, u["rule"]) if u["kind"] == "action" else \
                _warning_name(page, u["rule"]) if u["kind"] == "warning" else \
                _rule_name(page, u["rule"]) if u["kind"] == "classification" else u["rule"]
            rule = name if u.get("exposure") is None else \
                page.words["of_exposure"].format(rule=name, id=u["exposure"])  # which of the debtor's
            line = page.words["undetermined_item"].format(kind=_KIND[page.lang][u["kind"]], rule=rule,
                                                          missing=_LIST_SEP[page.lang].join(missing) or "?")
            places = _places(page, u.get("reasons") or {})
            if places:  # the record's fields behind a derived figure: what the reader can fill in
                line += page.words["fill_in"].format(places=places)
            if u.get("excluded_by"):
                line += page.words["excluded_anyway"].format(by=_action_name(page, u["excluded_by"]))
            lines.append(line)
    if refused:
        lines += ["", page.words["refused"]]
        for u in refused:
            action = _action_name(page, u["rule"])
            lines += [page.words["refused_item"].format(rule=action, param=name.removeprefix("params."),
                                                        problem=_param_problem(u["reasons"].get(name, "?"), page.lang))
                      for name in u["missing"] if name.startswith("params.")]
    return lines


# How the catalogue words a refused parameter (catalogue.param_problem, allowed_values), in Chinese.
_PARAM_PROBLEM_ZH = (
    (re.compile(r"^has no value"), lambda m: "无数值"),
    (re.compile(r"^(\S+) is not a whole number"), lambda m: f"{m[1]} 不是整数"),
    (re.compile(r"^(\S+) is outside (\[.*?\])"), lambda m: f"{m[1]} 超出 {m[2]}"),
    (re.compile(r"^(.+?) is not a number"), lambda m: f"{m[1]} 不是数值"),
    (re.compile(r"^(.+?) is not one of ([^(]*)"), lambda m: f"{m[1]} 不在 {m[2].strip()} 之中"),
)
_TAKES_ZH = re.compile(r"\((\w+) takes (whole numbers|numbers)(?: in (\[.*?\]))?\)$")


def _param_problem(text: str, lang: str) -> str:
    """A refused parameter's reason (``10.3 is not a whole number (extend_term takes whole numbers in [1, 120])``)
    in the reader's language; a form not known here is shown as the record words it."""
    if lang != "zh":
        return text
    head = next((words(m) for pattern, words in _PARAM_PROBLEM_ZH if (m := pattern.match(text))), None)
    takes = _TAKES_ZH.search(text)
    if head is None:
        return text
    if takes is None:
        return head
    what = "整数" if takes[2] == "whole numbers" else "数值"
    return f"{head}（该措施取{' ' + takes[3] + ' 内的' if takes[3] else ''}{what}）"


def _trace(page: _Page) -> list[str]:
    """decide --trace: the text format shows what the JSON carries."""
    if not page.record.get("trace"):
        return []
    return ["", page.words["trace"], *_trace_lines(page.record["trace"], page.lang, page.policy.imported)]


# The explanation, section by section in reading order; each renderer returns its lines (none when it has nothing
# to say). The blank lines are sections of their own: the grade, figures, warnings and actions blocks are always
# separated, the undetermined and trace blocks bring their own blank line only when they are shown.
def _figures(page: _Page) -> list[str]:
    """Key figures, metrics without a value and the table cells read, as one block: a policy with
    none of them gets no block (not an empty line between the grade and the warnings)."""
    lines = _key_figures(page) + _undefined_metrics(page) + _lookups(page)
    return [*lines, ""] if lines else []


_SECTIONS: tuple[Callable[[_Page], list[str]], ...] = (
    _title, _segment, _blank,
    _grade, _floors, _exposures, _blank,
    _figures,
    _warnings, _blank,
    _actions, _conflicts, _suppressed_actions,
    _undetermined,
    _trace,
)


def explain(record: Mapping[str, Any], policy: CompiledPolicy, lang: str = "en") -> str:
    """Render a decision record made under ``policy`` as text in ``lang`` (zh or en).

    Client values (the id, text quoted in messages and reasons) reach a terminal: every control,
    bidirectional-override and NUL character in the text is shown as an escape (``safetext``).
    """
    page = _Page.of(record, policy, lang)
    lines = [line for section in _SECTIONS for line in section(page)]
    return printable("\n".join(lines) + "\n", keep_newlines=True)


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


def _trace_lines(trace: Any, lang: str, imported: Mapping[str, str] | None = None) -> list[str]:
    """One line per evaluated rule: ``  metric coverage = 0.85 <- ratio(...) [cash_q=[...], ...]``.

    A metric imported from a module ends with ``  (from ratio-library 1.0.0)``.
    """
    lines = []
    for step in trace:
        stage = _STAGE[lang].get(step.get("stage"), step.get("stage", "?"))
        reads = ", ".join(f"{k}={_trace_value(v)}" for k, v in (step.get("reads") or {}).items())
        expr = " ".join(str(step.get("expr", "")).split())  # a folded YAML expression on one line
        where = f" @{step['exposure']}" if "exposure" in step else ""  # an exposure's own floor
        line = f"  {stage} {step.get('rule')}{where} = {_trace_value(step.get('result'))} <- {expr}"
        if "for_exposures" in step:  # a warning's or an action's: it holds when it concerns an exposure too
            line += f"  for_exposures: {' '.join(str(step['for_exposures']).split())}"
        origin = (imported or {}).get(step.get("rule")) if step.get("stage") == "metric" else None
        lines.append(line + (f"  [{reads}]" if reads else "") + (f"  (from {origin})" if origin else ""))
    return lines


def explain_summary(summary: Mapping[str, Any], policy: CompiledPolicy, lang: str = "en") -> str:
    """A summary record (facts only, see ``evaluate.summarize``) as text: what was decided, without the why."""
    t = _words(lang)
    labels = _grade_labels(policy, lang)
    cls = summary["classification"]
    total = f"{summary['score']['total']:g}"
    out = [t["title"].format(cid=summary["client_id"], as_of=summary["as_of"], pid=summary["policy"]["id"],
                             ver=summary["policy"]["version"]), *not_in_force(summary, policy, lang),
           t["summary_facts"], ""]
    out.append(t["grade"].format(label=labels.get(cls["grade"], cls["grade"]), gid=cls["grade"]))
    out.append(_decided_by(t, policy, cls["decided_by"], labels.get(cls["scorecard_grade"], "?"), total, lang))
    none = t["none"].strip()
    out.append(t["summary_floors"].format(ids=", ".join(cls["floors"]) or none))
    out.append(t["summary_warnings"].format(ids=", ".join(summary["warnings"]) or none))
    out.append(t["summary_actions"].format(ids=", ".join(summary["actions"]) or none))
    if summary["undetermined"]:
        out.append(t["summary_undetermined"].format(ids=", ".join(summary["undetermined"])))
    return printable("\n".join(out) + "\n", keep_newlines=True)
