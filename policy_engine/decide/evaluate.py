"""Stages 4 and 5, evaluate and decide: one client -> one auditable decision record.

The compiled policy's generated function computes every metric, factor, floor,
warning and action in one call; this module turns those raw results into the
decision record of DESIGN section 5, with the evidence that produced each part.
Null reasons, undetermined rules and the trace are derived from the values
already computed, so asking for them never changes a result.
"""

from __future__ import annotations

import ast
import bisect
import contextvars
import datetime as _dt
import hashlib
import itertools
import os
import string
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import orjson

from ..diagnostics import Diagnostic, InputError
from ..language.expressions import AGGREGATIONS, Table, compile_element_arguments
from ..policy.catalogue import allowed_values, param_problem
from ..policy.compiler import CompiledPolicy, FloorSpec
from ..policy.scopes import ScopedPart
from ..safetext import has_id_problem, id_problem
from ..version import __version__ as ENGINE_VERSION
from .canonical import canonical_json
from .inputs import (
    as_of_bounded,
    build_fast_extractor,
    dates_after_as_of,
    extract_checked,
    parse_date,
    unwritable_integers,
)
from .missing import aggregation_missing, lackable, may_match_none, metric_lacks, missing_inside, names_read
from .record_kind import accepted_of_another_kind, graded_list, refusal
from .rounding import half_up
from .scoped import GRADE_RULE, build_fast_reader, read_scopes

MAX_CLIENT_ID = 100


# A date's ISO text, by date: a decision writes the same few dates many times (an exposure's
# observation dates, its metrics, the evidence), and ``isoformat`` costs some 4k instructions a call.
_ISO: dict[_dt.date, str] = {}
_ISO_MAX = 1 << 14  # dates kept at most (then forgotten at once): a portfolio's dates span a few decades


def _new_iso(d: _dt.date) -> str:
    """A plain date's ISO text, kept for the next time (``_ISO``)."""
    if len(_ISO) >= _ISO_MAX:
        _ISO.clear()
    text = _ISO[d] = d.isoformat()
    return text


_WHOLE_BELOW = 2.0**53  # beyond it a float is not one whole number but a range of them


def _whole(v: Any) -> Any:
    """A value the compiler proved whole (a count, days between dates, an integer input) as JSON writes an integer:
    every number is a float at run time, and a typed reader (Go, a schema with "integer") refuses 3.0 for 3."""
    if type(v) is float and v.is_integer() and -_WHOLE_BELOW < v < _WHOLE_BELOW:
        return int(v)
    return v


def _shown(name: str, v: Any, whole: frozenset[str]) -> Any:
    """A named figure as a record writes it: an integer when its name is proven whole, else :func:`_jsonable`."""
    return _whole(v) if name in whole else _jsonable(v)


def _jsonable(v: Any) -> Any:
    t = type(v)
    if t is float or v is None or t is bool:  # most figures
        return v
    if t is _dt.date:
        text = _ISO.get(v)
        return text if text is not None else _new_iso(v)
    if isinstance(v, _dt.date):  # a datetime
        return v.isoformat()
    if t is list:
        return [x.isoformat() if isinstance(x, _dt.date) else x for x in v]  # series are flat
    return v


# Fixed-point formats, rounded as the explanation rounds its key figures (rounding.half_up): places, scale,
# the format of the rounded decimal, what follows it.
_FIXED = {".0f": (0, 1, ".0f", ""), ".1f": (1, 1, ".1f", ""), ".2f": (2, 1, ".2f", ""),
          ",.0f": (0, 1, ",.0f", ""), ",.2f": (2, 1, ",.2f", ""),
          ".0%": (0, 100, ".0f", "%"), ".1%": (1, 100, ".1f", "%"), ".2%": (2, 100, ".2f", "%")}


# Set by ``audit replay`` to render messages as engines before 2026-12-06 did (the float format's half to even on
# the binary value), so a decision recorded then with a figure exactly at a half still replays identical.
HALF_EVEN_MESSAGES: contextvars.ContextVar[bool] = contextvars.ContextVar("half_even_messages", default=False)


def _fmt(v: Any, spec: str, lang: str) -> str:
    """A figure as people read it; the common case (a float) is tested first."""
    t = type(v)
    if (t is float or t is int) and HALF_EVEN_MESSAGES.get():
        return _fmt_half_even(v, spec)
    if t is float or t is int:
        if spec == "d":
            # Whole numbers only (checked at validate); every number is a float at run time.
            if t is int or (v.is_integer() and abs(v) < 1e300):
                return format(int(v), "d")
            spec = ""
        if spec:
            if spec == "pct":
                return f"{half_up(v, 1, 100):.1f}%"
            fixed = _FIXED.get(spec)
            if fixed is None:
                return format(v, spec)
            places, scale, shape, suffix = fixed
            return format(half_up(v, places, scale), shape) + suffix
        if t is int or (v.is_integer() and abs(v) < 1e15):
            iv = int(v)
            return f"{iv:,}" if abs(iv) >= 10000 else str(iv)
        return f"{half_up(v, 0):,.0f}" if abs(v) >= 1000 else f"{half_up(v, 2):.2f}"
    if v is None:
        return "无数据" if lang == "zh" else "n/a"
    if t is Bilingual:
        return v[lang]  # type: ignore[no-any-return]
    if t is bool:
        return ("是" if v else "否") if lang == "zh" else ("yes" if v else "no")
    if isinstance(v, _dt.date):
        return v.isoformat()
    return str(v)


def _fmt_half_even(v: float, spec: str) -> str:
    """A number as messages wrote it before they rounded half away from zero."""
    if spec == "d" and (type(v) is int or (v.is_integer() and abs(v) < 1e300)):
        return format(int(v), "d")
    if spec and spec != "d":
        return f"{v * 100:.1f}%" if spec == "pct" else format(v, spec)
    if type(v) is int or (v.is_integer() and abs(v) < 1e15):
        iv = int(v)
        return f"{iv:,}" if abs(iv) >= 10000 else str(iv)
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.2f}"


class Bilingual(dict):  # type: ignore[type-arg]
    """Text the engine writes in both languages into a template (an action's ``{triggers}``)."""


Template = tuple[tuple[str, str | None, str], ...]


def parse_template(text: str) -> Template:
    """Split a message template once; placeholders were checked at compile time."""
    return tuple((literal, name, spec or "") for literal, name, spec, _ in string.Formatter().parse(text))


Renderer = Callable[[Callable[[str], Any]], dict[str, str]]


def compile_message(texts: Mapping[str, str]) -> Renderer:
    """A bilingual message template as one generated function: ``render(env.get) -> {lang: text}``.

    Fills ``{name}`` / ``{name:pct}`` placeholders with the client's figures, without walking
    the template's parts for every client. Only the template's literals (as ``repr``),
    placeholder names and format specs (checked at compile time) are written into the code.
    """
    parts = []
    for lang, text in texts.items():
        pieces = []
        for literal, name, spec in parse_template(text):
            if literal:
                pieces.append(repr(literal))
            if name is not None:
                pieces.append(f"fmt(get({name!r}), {spec!r}, {lang!r})")
        parts.append(f"{lang!r}: {' + '.join(pieces) or repr('')}")
    namespace: dict[str, Any] = {"fmt": _fmt}
    exec(compile(f"def render(get):\n    return {{{', '.join(parts)}}}\n", "<message>", "exec"), namespace)
    return namespace["render"]


class _Message:
    """A message template compiled when first rendered: a process that decides one client
    compiles only the messages of the rules that fired."""

    __slots__ = ("_render", "_texts")

    def __init__(self, texts: Mapping[str, str]):
        self._texts = texts
        self._render: Renderer | None = None

    def __call__(self, get: Callable[[str], Any]) -> dict[str, str]:
        if self._render is None:
            self._render = compile_message(self._texts)
        return self._render(get)


class _DecisionIds:
    """UUID-4-shaped ids: a random per-process prefix and a counter.

    Unique like uuid4 but ~10x cheaper, which matters at tens of thousands of
    decisions per second.
    """

    def __init__(self) -> None:
        self._count = itertools.count()
        self._pid = -1
        self._prefix = ""

    def next(self) -> str:
        pid = os.getpid()
        if pid != self._pid:  # a forked worker gets its own prefix
            self._pid = pid
            r = os.urandom(10).hex()
            self._prefix = f"{r[:8]}-{r[8:12]}-4{r[13:16]}-{'89ab'[int(r[16], 16) & 3]}{r[17:20]}-"
            self._count = itertools.count()
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFF:012x}"

    def block(self, n: int) -> tuple[str, int]:
        """(prefix, first counter) of ``n`` consecutive ids, ``prefix + f"{first + i:012x}"`` (a batch segment)."""
        first = self.next()
        start = int(first[-12:], 16)
        if start + n > 0xFFFFFFFFFFFF:  # never in practice: a fresh prefix keeps a block unbroken
            self._pid = -1
            first = self.next()
            start = 0
        self._count = itertools.count(start + max(n, 1))
        return self._prefix, start


_IDS = _DecisionIds()


class _Clock:
    """ISO UTC time stamp to the millisecond: the date and time formatted once per second, the
    milliseconds appended (a decision takes well under a millisecond in process, and strftime cost a
    twentieth of a 1.x decision when it ran for each)."""

    def __init__(self) -> None:
        # (millisecond, its text) and (second, its text up to the '.'): tuples, replaced whole, so a
        # thread never reads one half of an update
        self._last: tuple[int, str] = (-1, "")
        self._second: tuple[int, str] = (-1, "")

    def now(self) -> str:
        ms = time.time_ns() // 1_000_000
        last = self._last
        if last[0] == ms:
            return last[1]
        second, milli = divmod(ms, 1000)
        prefix = self._second
        if prefix[0] != second:
            text = _dt.datetime.fromtimestamp(second, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
            prefix = self._second = (second, text)
        text = f"{prefix[1]}{milli:03d}Z"
        self._last = (ms, text)
        return text


_CLOCK = _Clock()


class Decider:
    """Decides clients under one compiled policy; build once, call many times."""

    def __new__(cls, policy: CompiledPolicy) -> Decider:
        # A policy with scopes (several exposures per debtor) is decided from the whole record.
        if cls is Decider and policy.scoped is not None:
            return super().__new__(ScopedDecider)
        return super().__new__(cls)

    def __init__(self, policy: CompiledPolicy):
        self.policy = policy
        self._extract = build_fast_extractor(policy)
        self._until_as_of = as_of_bounded(policy)
        self._names = ([s.name for s in policy.inputs] + list(policy.param_names)
                       + [m.name for m in policy.metrics])
        self._metric_names = tuple(m.name for m in policy.metrics)
        self._metric_index = {m.name: i for i, m in enumerate(policy.metrics)}
        self._policy_ref = {"id": policy.id, "version": policy.version, "sha256": policy.sha256}
        self._segment_index = next((i for i, s in enumerate(policy.inputs) if s.name == policy.segment_by), None)
        self._grades = policy.scale
        self._labels = [{"zh": g.zh, "en": g.en} for g in policy.scale]
        self._input_kind = {s.name: "input" for s in policy.inputs}
        self._series_source = {s.name: s.source for s in policy.inputs if s.series}
        self._integer_params = _integer_params(policy)
        # Per action id: the rank from which its {triggers} names the grade (the lowest grade its condition
        # names), None when it names none; worked out when first needed (an AST walk).
        self._trigger_rank: dict[str, int | None] = {}
        self._grade_ids = policy.grade_ids  # properties of the policy, computed once, not per decision
        self._base_decider = policy.base_decider
        self._action_order, self._conflicts = _action_order(policy)
        self._order_at = {i: k for k, i in enumerate(self._action_order)}
        self._date_metrics = tuple(m.name for m in policy.metrics if m.expr.type == "date")
        self._whole_metrics = tuple(m.name for m in policy.metrics if m.whole)
        self._whole = _whole_names(policy)
        self._factor_tables = _factor_tables(policy)
        self._messages = [_Message({"zh": w.message["zh"], "en": w.message["en"]}) for w in policy.warnings]
        self._reasons = {a.id: _Message({"zh": a.reason["zh"], "en": a.reason["en"]}) for a in policy.actions}
        self._warning_messages = {w.id: msg for w, msg in zip(policy.warnings, self._messages, strict=True)}
        self._trace_builder: Any = None
        # Cells keyed by the debtor's own names; one keyed by an exposure's input is read once per exposure.
        self._lookups = [(t, rules) for t, rules in _table_readers(policy) if set(t.keys) <= set(self._names)]
        self._evidence = [tuple(dict.fromkeys((*w.expr.refs, *w.evidence))) for w in policy.warnings]
        self._warning_ids = tuple(w.id for w in policy.warnings)
        self._dated = _dated_names(policy)
        self._graded_list = graded_list(policy)  # a record without it may be of another kind (record_kind)

    # ---------------------------------------------------------------- inputs
    def read(self, record: Any, as_of: str | _dt.date | None = None,
             file: str | None = None) -> tuple[str, _dt.date, tuple[Any, ...]]:
        """Client id, as-of date and input values, or :class:`InputError` naming every bad field."""
        problems: list[Diagnostic] = []
        if not isinstance(record, dict):
            raise InputError([Diagnostic("wrong-type", "a client record is a JSON object", file=file,
                                         path="(record)")])
        cid = record.get("client_id")
        if cid is None:
            problems.append(Diagnostic("missing-field", "required field 'client_id' is missing", file=file,
                                       path="client_id"))
        elif type(cid) is not str or not cid or len(cid) > MAX_CLIENT_ID:
            problems.append(Diagnostic("bad-field", f"client_id must be a non-empty string of at most {MAX_CLIENT_ID} "
                                       "characters", file=file, path="client_id"))
        elif has_id_problem(cid):
            problems.append(Diagnostic("bad-field", str(id_problem(cid)),
                                       file=file, path="client_id"))
        day: _dt.date | None
        if as_of is not None:
            day = as_of if isinstance(as_of, _dt.date) else parse_date(as_of)
            if day is None:
                problems.append(Diagnostic("bad-as-of", f"as-of date {as_of!r} is not YYYY-MM-DD", file=file))
        elif record.get("as_of") is not None:
            day = parse_date(record["as_of"])
            if day is None:
                problems.append(Diagnostic("bad-field", f"expected a date YYYY-MM-DD, found {record['as_of']!r}",
                                           file=file, path="as_of"))
        else:
            day = _dt.date.today()
        values = self._extract(record)
        if values is None:
            try:
                values = extract_checked(self.policy, record, file=file, day=day)
            except InputError as e:
                problems.extend(e.diagnostics)
        elif day is not None and self._until_as_of:
            late = dates_after_as_of(self.policy, values, day, self._until_as_of)
            if late:
                problems += [Diagnostic(d.code, d.message, file=file, path=d.path, hint=d.hint) for d in late]
        if problems:
            raise InputError(refusal(self.policy, record, problems, as_of, file))
        assert values is not None and day is not None and isinstance(cid, str)
        return cid, day, values

    # -------------------------------------------------------------- decision
    def decide(self, record: Any, as_of: str | _dt.date | None = None, trace: bool = False,
               file: str | None = None) -> dict[str, Any]:
        """The decision record for one client (DESIGN section 5)."""
        return self.decide_with_input(record, as_of, trace, file)[0]

    def decide_with_input(self, record: Any, as_of: str | _dt.date | None = None, trace: bool = False,
                          file: str | None = None) -> tuple[dict[str, Any], bytes]:
        """The decision record and the canonical JSON its ``input_sha256`` hashes: what a decision store keeps of
        the input, so recording it does not write the record again."""
        cid, day, inputs = self.read(record, as_of, file)
        try:
            raw = canonical_json(record)
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise InputError(unwritable_integers(record, file) or [
                Diagnostic("bad-field", f"the record cannot be written as JSON: {exc}", file=file)]) from None
        return self.decide_values(cid, day, inputs, hashlib.sha256(raw).hexdigest(), trace), raw

    def decide_values(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], input_hash: str,
                      trace: bool = False) -> dict[str, Any]:
        segment = inputs[self._segment_index] if self._segment_index is not None else None
        params = self.policy.params_for(segment)
        results = self.policy.row_function(inputs, params, day)
        return self.build_record(cid, day, inputs, results, input_hash, trace)

    def build_record(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], results: tuple[Any, ...],
                     input_hash: str, trace: bool = False) -> dict[str, Any]:
        """The decision record from rule results, whichever evaluator computed them."""
        p = self.policy
        segment = inputs[self._segment_index] if self._segment_index is not None else None
        params = p.params_for(segment)
        (metrics, factor_bands, factor_values, score, s_rank, floors, g_rank, warnings, actions, action_params,
         restructurings) = results
        env: dict[str, Any] | None = None

        def environment() -> dict[str, Any]:
            nonlocal env
            if env is None:
                env = dict(zip(self._names, (*inputs, *params, *metrics), strict=True))
                env.update(as_of=day, score=score, grade=p.scale[g_rank].id)
            return env

        undetermined: list[dict[str, Any]] = []
        metric_map = dict(zip(self._metric_names, metrics, strict=True))
        undefined: dict[str, str] = {}
        if None in metrics:
            e = environment()
            for name, v in metric_map.items():
                if v is None:
                    undefined[name] = self._null_reason(name, e)
        for name in self._date_metrics:
            v = metric_map[name]
            if v is not None:
                text = _ISO.get(v) if type(v) is _dt.date else None
                metric_map[name] = text if text is not None else _jsonable(v)
        for name in self._whole_metrics:  # _whole inlined
            v = metric_map[name]
            if type(v) is float and v.is_integer() and -_WHOLE_BELOW < v < _WHOLE_BELOW:
                metric_map[name] = int(v)

        factors = [{"id": fid, "value": value, "band": labels[band], "points": points[band], "weight": weight}
                   for (fid, weight, points, labels), band, value
                   in zip(self._factor_tables, factor_bands, factor_values, strict=True)]

        fired_floors = self._floors(floors, environment, undetermined) if True in floors or None in floors else []
        grade = p.scale[g_rank]
        if g_rank == s_rank:
            decided_by = self._base_decider
        else:
            # None only with scopes: an exposure's own floor made the grade (the scoped decider names it).
            decided_by = next((r.id for r, hit in zip(p.floors, floors, strict=True)
                               if hit is True and r.rank == g_rank), self._base_decider)
        warning_out = self._warnings(warnings, environment, undetermined) if True in warnings or None in warnings \
            else []
        action_out, suppressed = self._actions(actions, action_params, restructurings, warnings, environment,
                                               undetermined)
        record: dict[str, Any] = {
            "decision_id": _IDS.next(),
            "client_id": cid,
            "as_of": _jsonable(day),  # ISO text (a date's is kept)
            "evaluated_at": _CLOCK.now(),
            "engine_version": ENGINE_VERSION,
            "policy": dict(self._policy_ref),  # each record owns its objects: a caller may edit one
            "input_sha256": input_hash,
            "segment": segment,
            "metrics": metric_map,
            "undefined_metrics": undefined,
            "score": {"total": score, "grade": p.scale[s_rank].id, "factors": factors},
            "classification": {
                "grade": grade.id, "label": dict(self._labels[g_rank]), "decided_by": decided_by,
                "scorecard_grade": p.scale[s_rank].id, "nonperforming": grade.nonperforming,
                "floors": fired_floors,
            },
            "warnings": warning_out,
            "actions": action_out,
            "suppressed_actions": suppressed,
            "undetermined": undetermined,
        }
        if self._lookups:
            record["lookups"] = self._cells(environment())
        if trace:
            points = [f["points"] for f in factors]
            record["trace"] = self._trace(inputs, params, metrics, day, score, grade.id, points, floors, warnings,
                                          actions)
        return record

    def _floors(self, floors: Sequence[Any], environment: Any, undetermined: list[dict[str, Any]]
                ) -> list[dict[str, Any]]:
        """The floors that fired; an undetermined entry for each whose condition had no value."""
        out = []
        for r, hit in zip(self.policy.floors, floors, strict=True):
            if hit is True:
                out.append({"id": r.id, "floor": r.floor, "source": r.source})
            elif hit is None:
                undetermined.append(self._undetermined("classification", r.id, r.expr.refs, environment()))
        return out

    def _warnings(self, warnings: Sequence[Any], environment: Any, undetermined: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
        """The warnings that fired, with message and evidence; an undetermined entry for each null one.

        A classification rule's warning is undetermined exactly when its floor is, which is listed
        once, as the rule.
        """
        out = []
        for w, hit, msg, names in zip(self.policy.warnings, warnings, self._messages, self._evidence, strict=True):
            if hit is True:
                e = environment()
                item = {
                    "id": w.id, "severity": w.severity, "category": w.category,
                    "message": msg(e.get),
                    "evidence": {n: _shown(n, e.get(n), self._whole) for n in names},
                }
                if w.for_exposures is not None:
                    self._name_exposures(w, item)
                out.append(item)
            elif hit is None and not w.from_rule:
                undetermined.append(self._undetermined("warning", w.id, w.expr.refs, environment()))
        return out

    def _actions(self, fired: Sequence[Any], params: Sequence[tuple[Any, ...]], restructurings: Sequence[Any],
                 warnings: Sequence[Any], environment: Any, undetermined: list[dict[str, Any]]
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The recommended actions (most urgent first) and those an exclusion suppressed."""
        if True not in fired and None not in fired:
            return [], []
        warning_fired = dict(zip(self._warning_ids, warnings, strict=True))
        kept, suppressed = self._kept(fired)
        if None in fired:
            undetermined += self._undetermined_actions(fired, params, environment(), warning_fired, kept)
        if not kept:
            return [], suppressed
        e = environment()
        out = [self._action_item(i, params[i], restructurings[i], warning_fired, e, undetermined) for i in kept]
        return out, suppressed

    def _undetermined_actions(self, fired: Sequence[Any], params: Sequence[tuple[Any, ...]],
                              env: Mapping[str, Any], warning_fired: Mapping[str, Any], kept: Sequence[int]
                              ) -> list[dict[str, Any]]:
        """An entry per action whose condition, or a computed parameter the catalogue refuses, has no value.

        One that an action recommended ahead of it excludes would not be recommended whatever the missing facts
        say: its entry names that action (``excluded_by``), so no reader waits on those facts for it."""
        out = []
        actions = self.policy.actions
        for i, (a, hit, values) in enumerate(zip(actions, fired, params, strict=True)):
            if hit is None:
                entry = self._undetermined("action", a.id, a.expr.refs, env, a.expr.fired_refs, warning_fired)
                if a.param_exprs:  # its condition held, but the catalogue refuses a computed parameter
                    self._refused_params(a, values, entry)
                conflicts = self._conflicts[i]
                if conflicts and "code" not in entry:
                    at = self._order_at[i]
                    by = next((j for j in kept if j in conflicts and self._order_at[j] < at), None)
                    if by is not None:
                        entry["excluded_by"] = actions[by].id
                out.append(entry)
        return out

    def _refused_params(self, a: Any, values: Sequence[Any], entry: dict[str, Any]) -> None:
        """Turn an undetermined action's entry into a refusal naming each parameter the catalogue refuses."""
        kind = self.policy.action_types[a.action]
        for name, v in zip(a.param_exprs, values, strict=True):
            problem = param_problem(kind.params[name], v)
            if problem is not None:
                entry["reasons"].pop("when", None)  # the condition held; a parameter did not
                entry["code"] = "action-param-refused"  # an error on the decision, not a gap
                entry["missing"].append(f"params.{name}")
                entry["reasons"][f"params.{name}"] = f"{problem} ({kind.name} takes " \
                    f"{allowed_values(kind.params[name])})"

    def _kept(self, fired: Sequence[Any]) -> tuple[list[int], list[dict[str, Any]]]:
        """The fired actions kept, most urgent first, and those an action already kept excludes.

        The order is the policy's, sorted once; an action that conflicts with one already kept is
        suppressed.
        """
        actions = self.policy.actions
        kept: list[int] = []
        suppressed = []
        for i in self._action_order:
            if fired[i] is not True:
                continue
            conflicts = self._conflicts[i]
            clash = next((j for j in kept if j in conflicts), None) if conflicts else None
            if clash is not None:
                a = actions[i]
                suppressed.append({"id": a.id, "action": a.action, "excluded_by": actions[clash].id})
            else:
                kept.append(i)
        return kept, suppressed

    def _action_item(self, i: int, params: Sequence[Any], restructuring: Any, warning_fired: Mapping[str, Any],
                     e: Mapping[str, Any], undetermined: list[dict[str, Any]]) -> dict[str, Any]:
        """One recommended action: its parameters, reason, what it rests on and its restructuring consequence."""
        a = self.policy.actions[i]
        values = {k: _owned(v) for k, v in a.params.items()}  # the policy's lists stay the policy's
        integers = self._integer_params[a.id]
        for name, v in zip(a.param_exprs, params, strict=True):
            if type(v) is float and name in integers and v.is_integer():
                v = int(v)  # the catalogue says whole months, instalments, days
            values[name] = _jsonable(v)
        because: dict[str, Any] = {}
        if a.expr.uses_grade:
            because["grade"] = e["grade"]
        if a.expr.fired_refs:
            because["warnings"] = [w for w in a.expr.fired_refs if warning_fired.get(w) is True]
        whole = self._whole
        because["values"] = {n: _shown(n, e.get(n), whole) for n in a.expr.refs if n != "grade"}
        # ``{triggers}`` is worded only for a reason that has it (the AST walk and messages cost every decision
        # else), and once for both languages
        triggers: list[Bilingual] = []

        def get(n: str) -> Any:
            if n == "triggers" and n not in e:
                if not triggers:
                    triggers.append(self._triggers(a, e, warning_fired))
                return triggers[0]
            return e.get(n)

        reason = self._reasons[a.id](get)
        reason["en"] = reason["en"][:1].upper() + reason["en"][1:]  # a reason is a sentence, whatever opens it
        item: dict[str, Any] = {
            "id": a.id, "action": a.action, "params": values, "priority": a.priority,
            "approval": a.approval, "reason": reason, "because": because,
        }
        if a.for_exposures is not None:
            self._name_exposures(a, item)
        if a.restructuring is not None:
            item["restructuring"] = _restructuring_entry(a.restructuring, restructuring)
            if restructuring is None:
                undetermined.append(self._undetermined("restructuring", a.id, a.restructuring.expr.refs, e))
        return item

    def _name_exposures(self, a: Any, item: dict[str, Any]) -> None:
        """A warning or an action with ``for_exposures`` (a policy with scopes only) names its exposures."""

    def _triggers(self, a: Any, e: Mapping[str, Any], warning_fired: Mapping[str, Any]) -> Bilingual:
        """What fired an action, in words (its reason's ``{triggers}``): the grade when it reaches a grade its
        condition names, and each warning it names that fired, with its message (the exposures an action
        concerns are listed beside it, under ``exposures``)."""
        ids = self._grade_ids
        zh: list[str] = []
        en: list[str] = []
        rank = ids.index(e["grade"])
        if a.id not in self._trigger_rank:
            named = _grades_named(a.expr.tree)
            self._trigger_rank[a.id] = min(ids.index(g) for g in named if g in ids) if named else None
        threshold = self._trigger_rank[a.id]
        if threshold is not None and rank >= threshold:
            label = self._labels[rank]
            zh.append(f"分类为{label['zh']}")
            en.append(f"graded {label['en'].lower()}")
        messages = self._warning_messages
        for wid in a.expr.fired_refs:
            if warning_fired.get(wid) is True and wid in messages:
                text = messages[wid](e.get)
                zh.append(text["zh"])
                en.append(text["en"])
        return Bilingual(zh="；".join(zh), en="; ".join(en))

    # ------------------------------------------------------------- evidence
    def _cells(self, env: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Each table cell the decision read: the table, its key values, the cell and the rules that read it.

        A lookup's arguments are the table's declared keys (the checker holds it to that), so the
        cell follows from the inputs and metrics alone, whichever evaluator decided. An
        interpolated cell also names the points it lies between (one point where it is clamped).
        """
        return [_cell(table, rules, env) for table, rules in self._lookups]

    def _null_reason(self, name: str, env: Mapping[str, Any], depth: int = 0) -> str:
        """Why a metric has no value, traced to the missing inputs where there are some."""
        spec = self.policy.metrics[self._metric_index[name]]
        if not spec.expr.refs:  # reads nothing outside aggregations (the scoped decider looks inside them)
            return _NOTHING_READ
        missing = [n for n in spec.expr.refs if env.get(n) is None and n in self._input_kind]
        series_empty = [n for n in spec.expr.refs if env.get(n) == [] and n in self._input_kind]
        null_metrics = [n for n in spec.expr.refs if env.get(n) is None and n in self._metric_index]
        if missing or series_empty:
            return "missing input: " + ", ".join(missing + series_empty)
        if null_metrics and depth < 8:
            first = null_metrics[0]
            return f"depends on {first} ({self._null_reason(first, env, depth + 1)})"
        gaps = [g for n in spec.expr.refs for g in self._gaps(n, env.get(n))]
        if gaps:
            return "no value for period " + ", ".join(gaps)
        read = ", ".join(f"{n}={_short(env.get(n))}" for n in spec.expr.refs)
        return _UNDEFINED.format(read)

    def _undetermined(self, kind: str, rule: str, refs: Sequence[str], env: Mapping[str, Any],
                      fired_refs: Sequence[str] = (), warnings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        missing = []
        reasons = {}
        for w in fired_refs:
            if warnings is not None and warnings.get(w) is None:
                missing.append(f"fired('{w}')")
                reasons[f"fired('{w}')"] = f"warning {w} was undetermined"
        for n in refs:
            v = env.get(n)
            if v is None:
                missing.append(n)
                if n in self._metric_index:
                    reasons[n] = self._null_reason(n, env)
                elif n in self._input_kind:
                    reasons[n] = "missing input"
            elif type(v) is list and not v and n in self._input_kind:
                # A series read directly with no period at all (a debtor's statements left empty): missing, as a
                # metric reading it says, not "too few periods" beside an empty list of what is missing.
                missing.append(n)
                reasons[n] = "missing input"
            elif type(v) is list and None in v:
                # A series read directly (a streak, an average) with a period that has no value.
                missing.append(n)
                reasons[n] = "no value for period " + ", ".join(self._gaps(n, v))
        if not reasons:
            # Every name read has a value: the condition itself is null for these figures
            # (a zero or non-positive base inline, a window longer than the series).
            read = ", ".join(f"{n}={_short(env.get(n))}" for n in refs)
            reasons["when"] = f"the condition has no value for the figures read ({read}): a zero or " \
                "non-positive base, or too few periods"
        return {"kind": kind, "rule": rule, "missing": missing, "reasons": reasons}

    def _gaps(self, name: str, value: Any) -> list[str]:
        """The field paths of a series input's periods that have no value (``financials[2].net_income``)."""
        source = self._series_source.get(name)
        if source is None or type(value) is not list:
            return []
        return [source.replace("[*]", f"[{i}]", 1) for i, v in enumerate(value) if v is None]

    def _trace(self, inputs: Sequence[Any], params: Sequence[Any], metrics: Sequence[Any], day: _dt.date,
               score: Any, grade: str, points: Sequence[Any], floors: Sequence[Any], warnings: Sequence[Any],
               actions: Sequence[Any]) -> list[dict[str, Any]]:
        if self._trace_builder is None:
            self._trace_builder = _build_tracer(self.policy, self._dated, self._whole)
        return self._trace_builder(inputs, params, metrics, day, score, grade, points, floors, warnings, actions,
                                   _jsonable, _whole)


def _table_readers(policy: CompiledPolicy) -> list[tuple[Table, list[str]]]:
    """The tables some rule looks up, in the policy's order, each with the rules (metrics first) that do."""
    readers: dict[str, list[str]] = {}
    part = policy.scoped
    rules = [*((m.name, m.expr) for m in policy.metrics),
             *(((m.name, m.expr) for m in part.metrics) if part is not None else ()),
             *(((f.id, f.expr) for f in part.floors) if part is not None else ()),
             *((f.id, f.expr) for f in policy.factors),
             *((r.id, r.expr) for r in policy.floors), *((w.id, w.expr) for w in policy.warnings),
             *((a.id, e) for a in policy.actions
               for e in (a.expr, *a.param_exprs.values(), *((a.restructuring.expr,) if a.restructuring else ())))]
    for rule, expr in rules:
        for name in expr.tables:
            ids = readers.setdefault(name, [])
            if rule not in ids:
                ids.append(rule)
    return [(t, readers[n]) for n, t in policy.tables.items() if n in readers]


def _exposure_readers(policy: CompiledPolicy, debtor_names: Sequence[str]) -> list[tuple[Table, list[str]]]:
    """The tables keyed by an exposure's own inputs or metrics (a cover ratio by product): read once per exposure."""
    part = policy.scoped
    assert part is not None
    own = {*debtor_names, *(i.name for i in part.inputs.get(part.graded or "", ())), *(m.name for m in part.metrics)}
    return [(t, rules) for t, rules in _table_readers(policy) if not set(t.keys) <= set(debtor_names)
            and set(t.keys) <= own]


def _cell(table: Table, rules: list[str], env: Mapping[str, Any], exposure: str | None = None) -> dict[str, Any]:
    """One table cell a decision read: its table, (the exposure it was read for,) key values, value, the points an
    interpolated one lies between, and the rules that read it."""
    cell: dict[str, Any] = {"table": table.name}
    if exposure is not None:
        cell["exposure"] = exposure
    cell["keys"] = {k: _jsonable(env.get(k)) for k in table.keys}
    cell["value"] = table.cell(*(env.get(k) for k in table.keys))
    if table.interpolate:
        cell["points"] = _points(table, env.get(table.keys[0]))
    cell["read_by"] = rules
    return cell


def _points(table: Table, x: Any) -> list[list[float]]:
    """The points an interpolated cell lies between: two, or the end point it is clamped to (none for null)."""
    if x is None:
        return []
    xs, ys = table.xs, table.ys
    if x <= xs[0]:
        return [[xs[0], ys[0]]]
    if x >= xs[-1]:
        return [[xs[-1], ys[-1]]]
    j = bisect.bisect_right(xs, x) - 1
    return [[xs[j], ys[j]], [xs[j + 1], ys[j + 1]]]


class _Debtor:
    """The debtor being decided: its elements, for the evidence of a rule null because of an aggregation,
    and what was found missing inside them (a memo of :func:`.missing.missing_inside`: the null metrics
    and rules of one decision often read the same names, and one walk answers them all)."""

    __slots__ = ("elements", "found", "inside")

    def __init__(self, elements: dict[str, Any]):
        self.elements = elements
        self.found: dict[tuple[str, ...], dict[str, str]] = {}  # by names read, what the elements lack
        self.inside: dict[Any, dict[str, str]] = {}  # the memo of missing_inside (its nested walks too)


# A context variable: a decider may decide on several threads at once.
_DEBTOR: contextvars.ContextVar[_Debtor | None] = contextvars.ContextVar("debtor", default=None)

_PLAIN = frozenset({float, int, bool, str, type(None)})
_UNDEFINED = "undefined for the figures read ({}): zero or non-positive base, or too few periods"
_NOTHING_READ = _UNDEFINED.format("")
NO_MATCH = "no element met the aggregation's condition, or there is none"
_PLAIN_TYPES = ("number", "bool", "string", "grade")  # expression types whose values are JSON as they are


def _read_with_each(only_inside: Mapping[str, tuple[str, ...]], debtor_names: set[str]) -> dict[str, tuple[str, ...]]:
    """Per debtor metric, the debtor's own names its aggregations read with each element (``sum_where(exposure, x,
    own and debtor_fact)``): when such a name has no value, the elements lack nothing, the debtor does."""
    found = {n: tuple(r for r in refs if r in debtor_names) for n, refs in only_inside.items()}
    return {n: refs for n, refs in found.items() if refs}


def _masked_outer(policy: CompiledPolicy, index: Mapping[str, int], outer: Mapping[str, tuple[str, ...]]
                  ) -> dict[str, tuple[str, ...]]:
    """Per debtor metric, the debtor names its aggregations read with each element inside a coalesce or is_null."""
    found = {n: _masked(policy.metrics[index[n]].expr.tree, refs) for n, refs in outer.items()}
    return {n: masked for n, masked in found.items() if masked}


def _masked(tree: ast.AST, names: Sequence[str]) -> tuple[str, ...]:
    """Those of ``names`` that the condition of an aggregation in ``tree`` (its last argument, ``cond``) reads
    inside a coalesce or is_null: a null there matches no element, where it would make the condition null. A name
    read in the value summed or shown decides no match."""
    conditions = [call.args[-1] for call in ast.walk(tree) if isinstance(call, ast.Call) and call.args
                  and (fn := AGGREGATIONS.get(getattr(call.func, "id", ""))) is not None and "cond)" in fn.signature]
    found = {n.id for cond in conditions for call in ast.walk(cond) if isinstance(call, ast.Call)
             and getattr(call.func, "id", None) in ("coalesce", "is_null")
             for n in ast.walk(call) if isinstance(n, ast.Name)}
    return tuple(n for n in names if n in found)


def _no_value_for(found: Mapping[str, str]) -> str:
    """What the elements lacked, each with where or why (``exposure E2: dpd (missing input at exposures[1].dpd)``,
    an element's metric with what it lacked in turn: ``exposure E2: impaired (missing input
    exposures[1].accounting.stage)``): the input to fill in, not only the name that had no value."""
    return "no value for " + ", ".join(k if v == "no value" else f"{k} ({v.removeprefix('no value: ')})"
                                      for k, v in found.items())


class ScopedDecider(Decider):
    """A :class:`Decider` for a policy with scopes (``Decider(policy)`` builds one for such a policy)."""

    def __init__(self, policy: CompiledPolicy):
        super().__init__(policy)
        part = policy.scoped
        assert part is not None
        grades = policy.grade_ids
        # A fired floor's entry in an exposure's record (copied per record) and the rank it floors at.
        self._exposure_floor_ranks = tuple(f.rank for f in part.floors)
        self._exposure_floor_entries = [({"id": f.id, "floor": f.floor, "source": f.source, "scope": f.scope},
                                         grades.index(f.floor)) for f in part.floors]
        self._debtor_floor_entries, self._naming_floors = _debtor_floor_entries(policy)
        self._exposure_metric_names = tuple(m.name for m in part.metrics)
        self._plan_exposure_reasons(part)
        self._exposure_dated = tuple(m.name for m in part.metrics if m.expr.type not in _PLAIN_TYPES)
        self._exposure_whole = tuple(m.name for m in part.metrics if m.whole)
        # Per final rank: the grade's id, label and whether it is non-performing, as an exposure's entry has them.
        self._rank_entries = [(g.id, label, g.nonperforming)
                              for g, label in zip(policy.scale, self._labels, strict=True)]
        self._fast_elements: Callable[[Any, _dt.date | None], dict[str, Any] | None] | None = None
        # The names each debtor rule and metric reads inside aggregations, by (kind, id).
        self._inner_refs = {("classification", r.id): r.expr.inner_refs for r in policy.floors}
        self._inner_refs.update({("warning", w.id): w.expr.inner_refs for w in policy.warnings})
        self._inner_refs.update({("action", a.id): a.expr.inner_refs for a in policy.actions})
        self._inner_refs.update({("metric", m.name): m.expr.inner_refs for m in policy.metrics})
        # The metrics that read names only inside aggregations: their null reason is the elements' alone.
        self._only_inside = {m.name: m.expr.inner_refs for m in policy.metrics if m.expr.inner_refs and not m.expr.refs}
        # The metrics that read no name at all, only elements (worst_grade(exposure)): null when there are none.
        self._only_elements = {m.name for m in policy.metrics
                               if not m.expr.refs and not m.expr.inner_refs and _aggregates(m.expr.tree)}
        # Per debtor metric that is one aggregation: its elements' arguments (built when it is first null).
        self._arguments: dict[str, Callable[..., list[tuple[Any, ...]]] | None] = {}
        self._shares = {m.name for m in policy.metrics
                        if isinstance(m.expr.tree, ast.Call) and getattr(m.expr.tree.func, "id", "") == "share_where"}
        # Those of them whose elements can lack none of the names read (an event's required kind and date):
        # null only because none matched, known without a walk (most debtors have no crisis event).
        can_lack = lackable(part)
        self._outer_inside = _read_with_each(self._only_inside, {*self._metric_index, *self._input_kind})
        # those a coalesce or is_null reads: their null matches no element, where elsewhere it makes the condition null
        self._outer_masked = _masked_outer(policy, self._metric_index, self._outer_inside)
        self._may_match_none = {m.name for m in policy.metrics if may_match_none(m.expr.tree)}
        self._none_matched = {n for n, refs in self._only_inside.items()
                              if can_lack.isdisjoint(refs) and n not in self._shares}
        # provisional_grades: unknown: the debtor rules and metrics that read an exposure's grade inside an
        # aggregation; one null for a provisional grade says so (no fact it reads is missing).
        self._grade_inside = _reading_grades_inside(policy, grades) if part.provisional_unknown else {}
        self._exposure_lookups = _exposure_readers(policy, self._names)

    def decide(self, record: Any, as_of: str | _dt.date | None = None, trace: bool = False,
               file: str | None = None) -> dict[str, Any]:
        return self.decide_with_input(record, as_of, trace, file)[0]

    def decide_with_input(self, record: Any, as_of: str | _dt.date | None = None, trace: bool = False,
                          file: str | None = None) -> tuple[dict[str, Any], bytes]:
        cid, day, inputs, elements, input_hash, raw = self._read_record(record, as_of, file)
        return self.decide_elements(cid, day, inputs, elements, input_hash, trace), raw

    def read_record(self, record: Any, as_of: str | _dt.date | None = None, file: str | None = None
                    ) -> tuple[str, _dt.date, tuple[Any, ...], dict[str, Any], str]:
        """Client id, day, the debtor's inputs, its elements by scope and the input hash, or
        :class:`InputError` naming every bad field (the batch reads each line through it too)."""
        return self._read_record(record, as_of, file)[:5]  # type: ignore[return-value]

    def _read_record(self, record: Any, as_of: str | _dt.date | None = None, file: str | None = None
                     ) -> tuple[str, _dt.date, tuple[Any, ...], dict[str, Any], str, bytes]:
        """:meth:`read_record`, with the canonical JSON the input hash is of."""
        try:
            cid, day, inputs = self.read(record, as_of, file)
        except InputError as e:
            problems = [*e.diagnostics, *read_scopes(self.policy, record, file)[1]]
            raise InputError(refusal(self.policy, record, problems, as_of, file)) from None
        elements, problems = self.read_elements(record, day, file)
        if problems:
            raise InputError(refusal(self.policy, record, problems, as_of, file))
        other = accepted_of_another_kind(self.policy, record, self._graded_list, as_of, file)
        if other is not None:
            raise InputError([other])
        try:  # an absent list is empty in a debtor record: "events": [] hashes as no events
            raw = canonical_json(record, lists_optional=True)
        except (orjson.JSONEncodeError, TypeError) as exc:
            raise InputError(unwritable_integers(record, file) or [
                Diagnostic("bad-field", f"the record cannot be written as JSON: {exc}", file=file)]) from None
        return cid, day, inputs, elements, hashlib.sha256(raw).hexdigest(), raw

    def read_elements(self, record: Any, day: _dt.date, file: str | None = None
                      ) -> tuple[dict[str, Any], list[Diagnostic]]:
        """Every element of every scope of the record, checked (see :func:`.scoped.read_scopes`).

        The generated reader takes a record it finds nothing wrong with; otherwise the checked path
        reads it again and names every problem.
        """
        fast = self._fast_elements
        if fast is None:  # built on first use: a process that only validates never needs it
            fast = self._fast_elements = build_fast_reader(self.policy)
        elements = fast(record, day)
        if elements is not None:
            return elements, []
        return read_scopes(self.policy, record, file, day)

    def _name_exposures(self, a: Any, item: dict[str, Any]) -> None:
        """``exposures``: those whose ``for_exposures`` condition held, in the record's order; and
        ``exposures_not_known``, those whose condition had no value (it fired for others, and whether it concerns
        these is not known: said, not left out in silence)."""
        debtor = _DEBTOR.get()
        part = self.policy.scoped
        if debtor is None or part is None or part.graded is None:
            return
        named, unknown = [], []
        for e in debtor.elements.get(part.graded, ()):
            held = e.get(a.selector, False)
            if held is True:
                named.append(e["@key"])
            elif held is None:
                unknown.append(e["@key"])
        item["exposures"] = named
        if unknown:
            item["exposures_not_known"] = unknown

    def decide_values(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], input_hash: str,
                      trace: bool = False) -> dict[str, Any]:
        raise TypeError("a policy with scopes is decided from the whole record: ScopedDecider.decide")

    @staticmethod
    def _missing_inside(part: ScopedPart, names: tuple[str, ...]) -> dict[str, str] | None:
        """What the debtor's elements lack of ``names`` (None outside a decision); shared, not to be changed."""
        debtor = _DEBTOR.get()
        if debtor is None:
            return None
        found = debtor.found.get(names)
        if found is None:
            found = debtor.found[names] = missing_inside(part, names, debtor.elements, memo=debtor.inside)
        return found

    def _aggregation_reason(self, name: str, env: Mapping[str, Any], depth: int = 0) -> str | None:
        """A metric that is one aggregation names what the elements that made it null lacked (a
        condition without a value; a value without one where the condition held), not every element
        lacking a name it reads: max_where(exposure, restart_date, restarted) is not null because an
        exposure that never restarted has no restart date. None: not such a metric."""
        debtor, part = _DEBTOR.get(), self.policy.scoped
        if debtor is None or part is None:
            return None
        expr = self.policy.metrics[self._metric_index[name]].expr
        arguments = self._element_arguments(name)
        if arguments is None:
            return None
        rows = arguments(env, debtor.elements)
        found = aggregation_missing(part, expr, rows, debtor.elements, debtor.inside)
        if found:
            return _no_value_for(found)
        # a share of nothing whatever its conditions, or one whose conditions have values: no weight is positive
        if _no_weight(expr, rows) or (found is not None and rows and expr.tree.func.id == "share_where"):
            return _UNDEFINED.format(", ".join(names_read(expr.tree.args[1])))  # type: ignore[attr-defined]
        if found is None:  # null with nothing lacking in the elements: a debtor name read with each, or a zero base
            return self._outer_reason(name, env, depth)
        # none matched; where a debtor name read with each element under a coalesce has no value for a missing fact,
        # maybe for it (coalesce(on == latest_date, False) matches none while latest_date is unknown): the gap to fill
        masked = self._outer_masked.get(name)
        return (self._outer_reason(name, env, depth, masked) if masked else None) or NO_MATCH

    def _element_arguments(self, name: str) -> Callable[..., list[tuple[Any, ...]]] | None:
        """Metric ``name``'s per-element arguments, if it is one aggregation (built when first asked for)."""
        part = self.policy.scoped
        assert part is not None
        if name not in self._arguments:
            expr = self.policy.metrics[self._metric_index[name]].expr
            self._arguments[name] = compile_element_arguments(expr, part.layout, self.policy.grade_ids)
        return self._arguments[name]

    def _null_reason(self, name: str, env: Mapping[str, Any], depth: int = 0) -> str:
        """A debtor metric null because of an aggregation names the elements' values it lacked, or the provisional
        grades it read (provisional_grades: unknown): neither "none matched" nor a zero base then."""
        reason = self._elements_reason(name, env, depth)
        read = self._grade_inside.get(("metric", name))
        if read and (reason in (NO_MATCH, _NOTHING_READ) or reason.startswith("undefined for the figures read")):
            provisional = self._provisional_of(name, env, read)
            if provisional:
                return _provisional_reason(provisional)
        return reason

    def _provisional_of(self, name: str, env: Mapping[str, Any], read: frozenset[int]) -> dict[str, str]:
        """The provisional grades that left metric ``name`` without a value: for one aggregation over the graded
        elements, those whose arguments came out null (none for a share of no weight); else every element whose
        grade_at_least of a grade it reads is unknown."""
        metric = self.policy.metrics[self._metric_index[name]]
        after, tree, part, debtor = metric.after is not None, metric.expr.tree, self.policy.scoped, _DEBTOR.get()
        if not (isinstance(tree, ast.Call) and getattr(tree.func, "id", None) in AGGREGATIONS) or part is None \
                or debtor is None or getattr(tree.args[0], "id", None) != part.graded:
            return self._provisional_grades(after, read)
        arguments = self._element_arguments(name)
        if arguments is None:
            return self._provisional_grades(after, read)
        rows = arguments(env, debtor.elements)
        if _no_weight(metric.expr, rows):
            return {}
        nulls = [i for i, row in enumerate(rows) if any(v is None for v in row)]
        return self._provisional_grades(after, read, nulls) if nulls else {}

    def _provisional_grades(self, final: bool, read: frozenset[int],
                            only: Sequence[int] | None = None) -> dict[str, str]:
        """The graded elements (of ``only``, their positions) whose grade_at_least of a grade in ``read`` (ranks) is
        unknown, each with its undetermined floors and the facts they lack: as the debtor's rules read them before
        the debtor floors apply (``final``: after, as warnings, actions and metrics after classification do)."""
        debtor, part = _DEBTOR.get(), self.policy.scoped
        if debtor is None or part is None or part.graded is None:
            return {}
        graded = debtor.elements.get(part.graded, [])
        found = {}
        rank_key, max_key = ("@rank", "@rank_max") if final else ("@own_rank", "@own_rank_max")
        for i in range(len(graded)) if only is None else only:
            e = graded[i]
            rank, worst = e[rank_key], e.get(max_key, 0)
            if not any(rank < g <= worst for g in read):
                continue
            pending = [f for f, r, hit in zip(part.floors, self._exposure_floor_ranks, e["@floors"], strict=True)
                       if hit is None and r > rank]
            found[f"{part.graded} {e.get('@key') or i + 1}: grade"] = (
                f"provisional, undetermined: {self._pending_words(e, pending, debtor.inside)}" if pending
                else "provisional, an undetermined debtor rule could apply to it")
        return found

    def _pending_words(self, e: Mapping[str, Any], pending: Sequence[FloorSpec],
                       memo: dict[Any, dict[str, str]] | None) -> str:
        """Each undetermined floor of ``e`` and the facts it lacks, with their places (for explain to list)."""
        part = self.policy.scoped
        assert part is not None and part.graded is not None
        sources = {spec.name: spec.source for spec in part.inputs.get(part.graded, ())}
        lacking: dict[str, None] = {}
        for f in pending:
            for n in f.expr.refs:
                if n in sources and e.get(n) is None:
                    lacking[f"missing input {e['@at']}.{sources[n]}"] = None
                elif n in self._exposure_metric_names and e.get(n) is None:
                    lacking[metric_lacks(part, n, e, part.graded, memo).removeprefix("no value: ")] = None
        ids = ", ".join(f.id for f in pending)
        return f"{ids} ({'; '.join(lacking)})" if lacking else ids

    def _elements_reason(self, name: str, env: Mapping[str, Any], depth: int = 0) -> str:
        if name in self._none_matched and (name not in self._outer_inside
                                           or self._outer_reason(name, env, depth) is None):
            return NO_MATCH
        if name in self._only_inside:  # reads nothing outside its aggregations: what they lacked, or none matched
            inside = self._missing_inside(self.policy.scoped, self._only_inside[name])  # type: ignore[arg-type]
            if inside is None:
                return _NOTHING_READ
            # No element lacks a name it reads (the usual case, one walk shared by the metrics reading
            # the same names): none matched. Else only the elements that made it null are its reason.
            if inside or name in self._shares or name in self._outer_inside:
                reason = self._aggregation_reason(name, env, depth)
                if reason is not None:
                    return reason
            if inside:
                return _no_value_for(inside)
            if name in self._may_match_none:
                return NO_MATCH  # null also when none matched: a null debtor name read with each cannot be told apart
            return self._outer_reason(name, env, depth) or NO_MATCH
        if name in self._only_elements:
            return NO_MATCH
        reason = super()._null_reason(name, env, depth)
        names = self._inner_refs.get(("metric", name))
        if names and reason.startswith("undefined for the figures read"):
            inside = self._missing_inside(self.policy.scoped, names)  # type: ignore[arg-type]
            if inside is None:
                return reason
            if inside:
                return _no_value_for(inside)
            if not self.policy.metrics[self._metric_index[name]].expr.refs:
                # Nothing read outside the aggregations and nothing lacking inside: none matched.
                return NO_MATCH
        return reason

    def _outer_reason(self, name: str, env: Mapping[str, Any], depth: int,
                      among: Sequence[str] | None = None) -> str | None:
        """A debtor name without a value for a missing fact that the aggregations of metric ``name`` read with each
        element (None: none; ``among``: of those names only): "no element met the condition" would hide it. A debtor
        metric that has none because none of its elements matched (the date of a modification the debtor never had)
        is an answer, not a gap."""
        for n in self._outer_inside.get(name, ()) if among is None else among:
            if env.get(n) is None:
                if n in self._input_kind:
                    return f"missing input: {n}"
                why = self._null_reason(n, env, depth + 1) if depth < 8 else None
                if why is not None and why != NO_MATCH:
                    return f"depends on {n} ({why})"
        return None

    def _undetermined(self, kind: str, rule: str, refs: Sequence[str], env: Mapping[str, Any],
                      fired_refs: Sequence[str] = (), warnings: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A debtor rule null because of an aggregation lists the elements' values it lacked
        (``exposure E2: dpd``), each with its place in the record."""
        entry = super()._undetermined(kind, rule, refs, env, fired_refs, warnings)
        names = self._inner_refs.get((kind, rule))
        if names:
            inside = self._missing_inside(self.policy.scoped, names)  # type: ignore[arg-type]
            if inside:
                entry["reasons"].pop("when", None)
                entry["missing"] += list(inside)
                entry["reasons"].update(inside)
        read = self._grade_inside.get((kind, rule))
        if read and not entry["missing"]:
            provisional = self._provisional_grades(kind != "classification", read)
            if provisional:  # no fact it reads is missing: the grades it reads are provisional
                entry["reasons"].pop("when", None)
                entry["missing"] += list(provisional)
                entry["reasons"].update(provisional)
        return entry

    @staticmethod
    def _inside_exposure(part: ScopedPart, entry: dict[str, Any], expr: Any, e: Mapping[str, Any]) -> None:
        """An exposure floor null because of its payments (read by an aggregation, or by an exposure metric
        without a value) names them: ``payment 2: paid_date`` with the field's place."""
        debtor = _DEBTOR.get()
        memo = debtor.inside if debtor is not None else None
        graded = part.graded or ""
        found = dict(missing_inside(part, expr.inner_refs, e, graded, memo))
        metrics = {m.name for m in part.metrics}
        sources = {spec.name: spec.source for spec in part.inputs.get(graded, ())}
        for n in entry["missing"]:
            if n in sources and n not in entry["reasons"]:  # the exposure's own fact, not given
                entry["reasons"][n] = f"missing input: {e['@at']}.{sources[n]}"
            if n in metrics and n not in entry["reasons"]:
                entry["reasons"][n] = metric_lacks(part, n, e, graded, memo)
        if found or entry["reasons"].keys() - {"when"}:
            entry["reasons"].pop("when", None)
        entry["missing"] += [k for k in found if k not in entry["missing"]]
        entry["reasons"].update(found)

    def decide_elements(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], elements: dict[str, Any],
                        input_hash: str, trace: bool = False) -> dict[str, Any]:
        token = _DEBTOR.set(_Debtor(elements))
        try:
            return self._decide_elements(cid, day, inputs, elements, input_hash, trace)
        finally:
            _DEBTOR.reset(token)

    def _decide_elements(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], elements: dict[str, Any],
                         input_hash: str, trace: bool = False) -> dict[str, Any]:
        p = self.policy
        segment = inputs[self._segment_index] if self._segment_index is not None else None
        params = p.params_for(segment)
        self.grade_exposures(inputs, params, day, elements)
        results = p.row_function(inputs, params, day, elements)
        return self._assemble(cid, day, inputs, elements, results, input_hash, trace)

    def grade_exposures(self, inputs: tuple[Any, ...], params: tuple[Any, ...], day: _dt.date,
                        elements: dict[str, Any]) -> None:
        """The exposure stage: each element of the graded scope gets its metrics, its floors' results
        (``@floors``) and its own grade (``@own_rank``, ``@rank``, ``@grade``), before the debtor's code."""
        p = self.policy
        part = p.scoped
        assert part is not None
        graded = elements.get(part.graded, []) if part.graded else []
        own = part.own
        assert own is not None
        ranks, grade_ids = self._exposure_floor_ranks, self._grade_ids
        for e in graded:
            hits = own(inputs, params, day, elements, e)
            # most exposures fire no floor of their own: no walk over the floors then
            rank = max([r for r, hit in zip(ranks, hits, strict=True) if hit is True]) if True in hits else 0
            e["@own_rank"], e["@rank"], e["@grade"], e["@floors"] = rank, rank, grade_ids[rank], hits
            if part.provisional_unknown:  # the worst its undetermined floors could make it
                e["@own_rank_max"] = e["@rank_max"] = max(
                    rank, *(r for r, hit in zip(ranks, hits, strict=True) if hit is None)) if None in hits else rank

    def assemble(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], elements: dict[str, Any],
                 results: tuple[Any, ...], input_hash: str, trace: bool = False) -> dict[str, Any]:
        """The record from the debtor's results and its graded elements (``@own_rank``, ``@rank``,
        ``@floors`` and metric values set); the vector evaluator builds its records here too."""
        token = _DEBTOR.set(_Debtor(elements))
        try:
            return self._assemble(cid, day, inputs, elements, results, input_hash, trace)
        finally:
            _DEBTOR.reset(token)

    def _assemble(self, cid: str, day: _dt.date, inputs: tuple[Any, ...], elements: dict[str, Any],
                  results: tuple[Any, ...], input_hash: str, trace: bool = False) -> dict[str, Any]:
        p = self.policy
        part = p.scoped
        assert part is not None
        graded = elements.get(part.graded, []) if part.graded else []
        record = self.build_record(cid, day, inputs, results, input_hash, trace)
        floor_rank = elements.get("@floor_rank", 0)
        debtor_fired = [floor for floor, hit in zip(self._debtor_floor_entries, results[5], strict=True) if hit is True]
        env: dict[str, Any] = {}

        def environment() -> dict[str, Any]:
            """The debtor's names, for an exposure floor without a value (built only then)."""
            if not env:
                params = p.params_for(inputs[self._segment_index] if self._segment_index is not None else None)
                env.update(zip(self._names, (*inputs, *params, *results[0]), strict=True))
            return env

        # the debtor floors naming exposures that fired or have no value: an exposure they may name is undetermined
        pending = [(f, hit) for f, hit in zip(p.floors, results[5], strict=True)
                   if f.for_exposures is not None and hit is not False] if self._naming_floors else []
        untold = _untold(record, debtor_fired, graded) if self._selector_keys else frozenset()
        exposures = [self._exposure(part, e, debtor_fired, environment, record["undetermined"], pending, untold)
                     for e in graded]
        if self._exposure_lookups:
            record.setdefault("lookups", []).extend(self._exposure_cells(graded, environment()))
        if self._naming_floors:
            self._named_exposures(record["classification"]["floors"], graded)
        if trace:
            self._trace_exposures(part, graded, environment, record["trace"])
            self._trace_named(graded, environment, record["trace"])
        cls = record["classification"]
        cls["grade_of"] = GRADE_RULE
        g_rank = results[6]
        if g_rank > floor_rank:  # an exposure's own floor made the debtor's grade
            worst = next(x for x, e in zip(exposures, graded, strict=True) if e["@rank"] == g_rank)
            cls["decided_by"] = worst["decided_by"]
            cls["decided_by_exposure"] = worst["exposure_id"]
        elif part.tie_to_exposure and g_rank and (
                worst := next((x for x, e in zip(exposures, graded, strict=True) if e["@own_rank"] == g_rank), None)):
            cls["decided_by"] = worst["decided_by"]  # its own floor, which a debtor floor only matched
            cls["decided_by_exposure"] = worst["exposure_id"]
        record["exposures"] = exposures
        return record

    def _exposure_cells(self, graded: list[dict[str, Any]], debtor: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The table cells each exposure's rules read, after the debtor's, each naming its exposure."""
        out = []
        for e in graded:
            env = {**debtor, **{k: v for k, v in e.items() if not k.startswith("@")}}
            out += [_cell(table, rules, env, e["@key"]) for table, rules in self._exposure_lookups]
        return out

    def _trace_exposures(self, part: ScopedPart, graded: list[dict[str, Any]],
                         environment: Callable[[], dict[str, Any]], trace: list[dict[str, Any]]) -> None:
        """Each exposure's own metrics and floors, with the facts they read (its days past due, its dates), placed
        before the debtor's rules as they are evaluated: the trace shows what decided an exposure, not only the
        debtor (its metrics, a count of late payments, were missing: a policy author could not audit them)."""
        steps = []
        whole = self._whole
        for e in graded:
            local = {**environment(), **{k: v for k, v in e.items() if not k.startswith("@")}}
            steps += [{"stage": "metric", "rule": m.name, "exposure": e["@key"], "expr": m.expr.source,
                       "reads": {n: _shown(n, local[n], whole) for n in m.expr.refs if n in local and n != m.name},
                       "result": _shown(m.name, local.get(m.name), whole)} for m in part.metrics if m.after is None]
            for f, hit in zip(part.floors, e["@floors"], strict=True):
                steps.append({"stage": "classification", "rule": f.id, "exposure": e["@key"], "expr": f.expr.source,
                              "reads": {n: _shown(n, local[n], whole) for n in f.expr.refs if n in local},
                              "result": hit, "floor": f.floor})
        at = next((i for i, step in enumerate(trace) if step["stage"] == "classification"), len(trace))
        trace[at:at] = steps

    def _trace_named(self, graded: list[dict[str, Any]], environment: Callable[[], dict[str, Any]],
                     trace: list[dict[str, Any]]) -> None:
        """Per debtor floor, warning or action with ``for_exposures``, its condition for each exposure, with the facts
        it read, after the rule's own step: the trace shows why it names E1 and not E2, not only that it fired."""
        p = self.policy
        for kind, specs in (("classification", p.floors), ("warning", p.warnings), ("action", p.actions)):
            for spec in specs:
                if spec.for_exposures is None or getattr(spec, "from_rule", False):  # a rule's warning: its rule's
                    continue
                steps = []
                for e in graded:
                    local = {**environment(), **{k: v for k, v in e.items() if not k.startswith("@")},
                             "grade": self._rank_entries[e["@rank"]][0]}
                    steps.append({"stage": kind, "rule": spec.id, "exposure": e["@key"],
                                  "expr": spec.for_exposures.source,
                                  "reads": {n: _shown(n, local[n], self._whole) for n in spec.for_exposures.refs
                                            if n in local},
                                  "result": e.get(spec.selector)})
                at = next((i + 1 for i, step in enumerate(trace) if step["stage"] == kind and step["rule"] == spec.id
                           and "exposure" not in step), len(trace))
                trace[at:at] = steps

    def _undetermined_own(self, part: ScopedPart, e: dict[str, Any], environment: Callable[[], dict[str, Any]],
                          undetermined: list[dict[str, Any]]) -> None:
        """An entry per floor of the exposure's own without a value, naming the exposure and what it lacked."""
        local = {**environment(), **{k: v for k, v in e.items() if not k.startswith("@")}}
        for f, hit in zip(part.floors, e["@floors"], strict=True):
            if hit is None:
                entry = self._undetermined("classification", f.id, [n for n in f.expr.refs if n in local], local)
                entry["exposure"] = e["@key"]
                self._inside_exposure(part, entry, f.expr, e)
                undetermined.append(entry)

    def _named_exposures(self, fired: list[dict[str, Any]], graded: list[dict[str, Any]]) -> None:
        """A fired debtor floor with ``for_exposures`` lists the exposures it applies to (and, apart, those its
        condition has no value for), as a warning naming exposures does."""
        for entry in fired:
            f = self._naming_floors.get(entry["id"])
            if f is not None:
                entry["exposures"] = [e["@key"] for e in graded if e[f.selector] is True]
                unknown = [e["@key"] for e in graded if e[f.selector] is None]
                if unknown:
                    entry["exposures_not_known"] = unknown

    def _unnamed(self, e: dict[str, Any], pending: Sequence[tuple[FloorSpec, Any]],
                 environment: Callable[[], dict[str, Any]], undetermined: list[dict[str, Any]]) -> None:
        """A debtor floor that may name this exposure without saying whether it applies: it fired and its
        ``for_exposures`` has no value for the exposure, or its own condition has no value and the exposure is not
        ruled out. The exposure's grade is undetermined by it (named, with what was lacking), not left at its own
        in silence."""
        part = self.policy.scoped
        assert part is not None
        local: dict[str, Any] = {}
        for f, hit in pending:
            named = e[f.selector]
            if hit is True and named is None:  # the facts its for_exposures lacked, the exposure's own
                assert f.for_exposures is not None
                local = local or {**environment(), **{k: v for k, v in e.items() if not k.startswith("@")}}
                found = Decider._undetermined(self, "classification", f.id,
                                              [n for n in f.for_exposures.refs if n in local], local)
                self._inside_exposure(part, found, f.for_exposures, e)
            elif hit is None and named is not False:  # what the debtor's condition lacked, as the debtor's entry
                found = self._undetermined("classification", f.id, f.expr.refs, environment())
            else:
                continue
            found["exposure"] = e["@key"]
            undetermined.append(found)

    def _exposure(self, part: ScopedPart, e: dict[str, Any], debtor_fired: list[tuple[dict[str, Any], int, Any]],
                  environment: Callable[[], dict[str, Any]], undetermined: list[dict[str, Any]],
                  pending: Sequence[tuple[FloorSpec, Any]] = (), untold: Collection[str] = frozenset()
                  ) -> dict[str, Any]:
        """One exposure's entry: its final grade, the rule that decided it, its floors and metrics (and, ``untold``:
        the exposures a fired rule naming exposures could not tell about, why its null metrics have no value)."""
        rank = e["@rank"]
        hits = e["@floors"]
        fired = [(dict(entry), r) for (entry, r), hit in zip(self._exposure_floor_entries, hits, strict=True)
                 if hit is True] if True in hits else []
        # the debtor's entries are copied once per exposure: each exposure's record owns its lists
        if debtor_fired:
            fired += _applying(e, debtor_fired)
        if rank == 0 and 0 not in [r for _, r in fired]:
            decided_by = self._base_decider
        else:
            decided_by = next(entry["id"] for entry, r in fired if r == rank)
        if None in hits:
            self._undetermined_own(part, e, environment, undetermined)
        if pending:  # after its own floors, as the debtor's follow them
            self._unnamed(e, pending, environment, undetermined)
        names = self._exposure_metric_names
        try:  # a comprehension: a fifth cheaper than a dict of the names zipped with an itemgetter's tuple
            metrics = {n: e[n] for n in names}
        except KeyError:  # a metric not set (every evaluator sets them all)
            metrics = {n: e.get(n) for n in names}
        # why each metric without a value has none, for an exposure a rule naming exposures could not tell about
        # (its condition has no value there): the explanation says why. Not for every exposure with a null: a debtor
        # never restructured has a dozen null dates per exposure, and telling why cost a 2.0.0 decision 4%.
        undefined = self._exposure_undefined(part, e, metrics, environment) \
            if untold and e["@key"] in untold and None in metrics.values() else None
        for n in self._exposure_dated:
            v = metrics[n]
            if v is not None:
                if type(v) is _dt.date:  # most: their text is known from an exposure before
                    text = _ISO.get(v)
                    metrics[n] = text if text is not None else _new_iso(v)
                else:
                    metrics[n] = _jsonable(v)
        for n in self._exposure_whole:  # _whole inlined: a few per exposure, every decision
            v = metrics[n]
            if type(v) is float and v.is_integer() and -_WHOLE_BELOW < v < _WHOLE_BELOW:
                metrics[n] = int(v)
        grade, label, nonperforming = self._rank_entries[rank]
        entry = {
            "exposure_id": e["@key"], "grade": grade, "label": dict(label), "decided_by": decided_by,
            "own_grade": self._rank_entries[e["@own_rank"]][0], "nonperforming": nonperforming,
            "floors": [entry for entry, _ in fired], "metrics": metrics,
        }
        if undefined:
            entry["undefined_metrics"] = undefined
        return entry

    def _plan_exposure_reasons(self, part: ScopedPart) -> None:
        """What telling why an exposure metric has no value needs, worked out once per policy (the reasons are
        worked out only for a metric without one: see :meth:`_exposure_undefined`)."""
        # each definition; those that are one aggregation (null lacking nothing: none matched), and the exposure's
        # own names they read with each element
        self._exposure_metric_specs = {m.name: m for m in part.metrics}
        # the keys under which each exposure holds whether a rule naming exposures (for_exposures) concerns it
        p = self.policy
        self._selector_keys = tuple(x.selector for x in (*p.warnings, *p.actions, *p.floors)
                                    if x.for_exposures is not None)
        self._exposure_no_match = frozenset(m.name for m in part.metrics if may_match_none(m.expr.tree) or (
            isinstance(m.expr.tree, ast.Call) and getattr(m.expr.tree.func, "id", None) in AGGREGATIONS))
        own_inputs = part.inputs.get(part.graded or "", ())
        own_names = {*self._exposure_metric_specs, *(s.name for s in own_inputs)}
        self._exposure_outer = {m.name: tuple(r for r in m.expr.inner_refs if r in own_names) for m in part.metrics}
        self._exposure_sources = {s.name: s.source for s in own_inputs}
        self._exposure_lists = tuple(sorted("@" + c.name for c in part.children(part.graded))) if part.graded else ()
        self._exposure_reasons: dict[tuple[tuple[str, ...], tuple[bool, ...]], dict[str, str]] = {}  # by pattern
        # an aggregation over the exposure's own elements (its payments): with none, none matched, known without a walk
        children = {c.name for c in part.children(part.graded)} if part.graded else set()
        self._exposure_over = {m.name: "@" + m.expr.tree.args[0].id for m in part.metrics
                               if m.name in self._exposure_no_match and isinstance(m.expr.tree, ast.Call)
                               and m.expr.tree.args and getattr(m.expr.tree.args[0], "id", None) in children}
        # those no fact of whose can be asked after (no element of theirs can lack a name they read, nor the exposure
        # an optional input they read): the metrics they read without a value say why, known without a walk
        optional = {s.name for s in own_inputs if not s.required}
        can_lack = lackable(part) - set(self._exposure_metric_specs)
        self._exposure_lack_nothing = frozenset(
            m.name for m in part.metrics if (may_match_none(m.expr.tree) or can_lack.isdisjoint(m.expr.inner_refs))
            and optional.isdisjoint(m.expr.refs))

    def _exposure_undefined(self, part: ScopedPart, e: Mapping[str, Any], metrics: Mapping[str, Any],
                            environment: Callable[[], dict[str, Any]]) -> dict[str, str]:
        """Why each metric of exposure ``e`` without a value has none, as the debtor's ``undefined_metrics`` says
        it: a null utilisation read "a fact missing" in the explanation when its limit was 0 and nothing was.

        Most exposures without a value have none for the same few reasons (no restructuring: its dates, none
        matched, and the dates that depend on them), told by which metrics are null and which of the exposure's
        element lists are empty alone: those reasons are kept per such pattern, and an exposure of a pattern seen is
        not asked again. A reason that read a fact (a walk of its payments, an input, a figure) is never kept."""
        key = (tuple([n for n, v in metrics.items() if v is None]), tuple([not e.get(k) for k in self._exposure_lists]))
        seen = self._exposure_reasons.get(key)
        if seen is not None:
            return seen.copy()  # each record owns its objects
        debtor = _DEBTOR.get()
        memo = debtor.inside if debtor is not None else None
        local: dict[str, Any] = {}

        def read() -> dict[str, Any]:
            if not local:
                local.update(environment())
                local.update((k, v) for k, v in e.items() if not k.startswith("@"))
            return local

        done: dict[str, str] = {}  # each metric's reason, once: a chain of them (dates of dates) reads the same
        lacks: dict[str, str] = {}  # what metric_lacks found, and "" once a reason read a fact of this exposure
        found = {n: self._exposure_null_reason(part, n, e, read, memo, (done, lacks)) for n in key[0]}
        if not lacks and not local and len(self._exposure_reasons) < 1024:
            self._exposure_reasons[key] = found.copy()
        return found

    def _exposure_null_reason(self, part: ScopedPart, name: str, e: Mapping[str, Any],
                              read: Callable[[], dict[str, Any]], memo: dict[Any, dict[str, str]] | None,
                              known: tuple[dict[str, str], dict[str, str]], depth: int = 0) -> str:
        """One exposure metric's reason: what it lacked (its inputs, its payments, in their places), else the
        metric or debtor name it depends on without a value, else the figures it read (a zero base); one
        aggregation lacking nothing matched none, unless a name of the exposure it reads with each element lacks a
        fact (a date of its restructuring, itself lacking one)."""
        done, lacks = known
        why = done.get(name)
        if why is not None:
            return why
        if name in self._exposure_no_match:
            why = self._exposure_aggregation_reason(part, name, e, read, memo, known, depth)
        else:
            why = "no value" if name in self._exposure_lack_nothing else metric_lacks(
                part, name, e, part.graded or "", memo, lacks)
            if why == "no value":
                why = self._exposure_null_figures(part, name, e, read, memo, known, depth)
        done[name] = why
        return why

    def _exposure_aggregation_reason(self, part: ScopedPart, name: str, e: Mapping[str, Any],
                                     read: Callable[[], dict[str, Any]], memo: dict[Any, dict[str, str]] | None,
                                     known: tuple[dict[str, str], dict[str, str]], depth: int) -> str:
        """An aggregation's: a name of the exposure it reads with each element, without a value, leaves each
        element's condition without one (the payments after a restructuring date the exposure lacks: its reason,
        none matched where that one matched none), not the unpaid instalments a walk would name; else what its
        elements lacked; else none matched (no element, or none met the condition)."""
        for r in self._exposure_outer[name]:
            if r in e and e[r] is None:
                if r not in self._exposure_metric_specs:
                    known[1][""] = ""  # a fact of this exposure read: the reasons are not kept for others
                    return f"no value: missing input {e.get('@at', '?')}.{self._exposure_sources[r]}"
                inner = self._exposure_null_reason(part, r, e, read, memo, known, depth + 1) if depth < 8 \
                    else NO_MATCH
                return NO_MATCH if inner == NO_MATCH else f"depends on {r} ({inner})"
        over = self._exposure_over.get(name)
        if name in self._exposure_lack_nothing or (over is not None and not e.get(over)):
            return NO_MATCH
        why = metric_lacks(part, name, e, part.graded or "", memo, known[1])
        return NO_MATCH if why == "no value" else why

    def _exposure_null_figures(self, part: ScopedPart, name: str, e: Mapping[str, Any],
                               read: Callable[[], dict[str, Any]], memo: dict[Any, dict[str, str]] | None,
                               known: tuple[dict[str, str], dict[str, str]], depth: int) -> str:
        """An exposure metric lacking no fact of its own: the name it reads without a value, else its figures."""
        expr = self._exposure_metric_specs[name].expr
        for r in expr.refs:  # the exposure's own first: no debtor names to gather
            if r in self._exposure_metric_specs and r != name and r in e and e[r] is None and depth < 8:
                return f"depends on {r} ({self._exposure_null_reason(part, r, e, read, memo, known, depth + 1)})"
        names = read()
        for r in expr.refs:
            if names.get(r) is not None or r == name or r in self._exposure_metric_specs:
                continue
            if r in self._metric_index:
                return f"depends on {r} ({self._null_reason(r, names)})"
            if r in self._input_kind:
                return f"missing input: {r}"
        return _UNDEFINED.format(", ".join(f"{r}={_short(names.get(r))}" for r in expr.refs))


def _untold(record: Mapping[str, Any], debtor_fired: list[tuple[dict[str, Any], int, str | None]],
            graded: list[dict[str, Any]]) -> frozenset[str]:
    """The exposures a fired warning, action or debtor floor naming exposures could not tell about (its
    ``for_exposures`` has no value there): those the explanation says why of."""
    ids = {eid for kind in ("warnings", "actions", "suppressed_actions") for item in record.get(kind) or ()
           for eid in item.get("exposures_not_known", ())}
    ids.update(e["@key"] for _, _, named in debtor_fired if named is not None for e in graded if e[named] is None)
    return frozenset(ids)


def _applying(e: Mapping[str, Any], debtor_fired: list[tuple[dict[str, Any], int, str | None]]
              ) -> list[tuple[dict[str, Any], int]]:
    """The fired debtor floors that apply to exposure ``e`` (every one, but one that names others), as copies."""
    return [(dict(entry), r) for entry, r, named in debtor_fired if named is None or e[named] is True]


def _debtor_floor_entries(policy: CompiledPolicy) -> tuple[list[tuple[dict[str, Any], int, str | None]],
                                                           dict[str, FloorSpec]]:
    """A fired debtor floor's entry in an exposure's record (copied per record), the rank it floors at and the key
    its exposures hold whether it names them under (None: it applies to every exposure); the floors naming them."""
    grades = policy.grade_ids
    entries = [({"id": f.id, "floor": f.floor, "source": f.source, "scope": "debtor"}, grades.index(f.floor),
                f.selector if f.for_exposures is not None else None) for f in policy.floors]
    return entries, {f.id: f for f in policy.floors if f.for_exposures is not None}


def _reading_grades_inside(policy: CompiledPolicy, grades: Sequence[str]) -> dict[tuple[str, str], frozenset[int]]:
    """The debtor rules and metrics, by (kind, id), that read an exposure's grade inside an aggregation, each with
    the ranks of the grades it tests (grade_at_least('substandard') reads whether an exposure reaches substandard)."""
    items = (("classification", policy.floors), ("warning", policy.warnings), ("action", policy.actions))
    read = {(kind, x.id): _grades_inside(x.expr.tree, grades) for kind, xs in items for x in xs}
    read.update({("metric", m.name): _grades_inside(m.expr.tree, grades) for m in policy.metrics})
    return {k: v for k, v in read.items() if v}


def _grades_inside(tree: ast.AST, grades: Sequence[str]) -> frozenset[int]:
    """The ranks of the grades an expression tests with grade_at_least inside an aggregation."""
    return frozenset(grades.index(m.args[0].value) for n in ast.walk(tree)
                     if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in AGGREGATIONS
                     for a in n.args[1:] for m in ast.walk(a)
                     if isinstance(m, ast.Call) and isinstance(m.func, ast.Name) and m.func.id == "grade_at_least"
                     and m.args and isinstance(m.args[0], ast.Constant) and m.args[0].value in grades)


def _no_weight(expr: Any, rows: list[tuple[Any, ...]]) -> bool:
    """A share_where whose weights are all known and none positive: it has no value whatever its conditions."""
    return bool(rows) and getattr(expr.tree.func, "id", None) == "share_where" \
        and all(row[0] is not None for row in rows) and sum(row[0] for row in rows) <= 0


def _provisional_reason(provisional: Mapping[str, str]) -> str:
    return "reads a provisional grade: " + "; ".join(f"{k} ({v})" for k, v in provisional.items())


def _aggregates(tree: ast.AST) -> bool:
    """Whether an expression aggregates over a scope somewhere."""
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in AGGREGATIONS
               for n in ast.walk(tree))


def _grades_named(tree: Any) -> list[str]:
    """The grades ``grade_at_least('x')`` names in a debtor condition (not inside an aggregation, where
    the grade is an exposure's)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in AGGREGATIONS:
                return
            if node.func.id == "grade_at_least" and node.args and isinstance(node.args[0], ast.Constant):
                found.append(str(node.args[0].value))
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(tree)
    return found


def _integer_params(policy: CompiledPolicy) -> dict[str, set[str]]:
    """Per action, the parameters the catalogue counts in whole units (months, instalments, days)."""
    return {a.id: {n for n, spec in policy.action_types[a.action].params.items() if spec.type == "integer"}
            for a in policy.actions}


def _action_order(policy: CompiledPolicy) -> tuple[list[int], list[frozenset[int]]]:
    """The actions most urgent first (priority, then id), and per action the ones it conflicts with.

    An exclusion works both ways: ``a excludes b`` keeps whichever of the two comes first.
    """
    actions = policy.actions
    order = sorted(range(len(actions)), key=lambda i: (actions[i].priority, actions[i].id))
    index = {a.id: i for i, a in enumerate(actions)}
    conflicts = [frozenset(index[x] for x in a.excludes) | {j for j, b in enumerate(actions) if a.id in b.excludes}
                 for a in actions]
    return order, conflicts


def _factor_tables(policy: CompiledPolicy) -> list[tuple[str, float, tuple[Any, ...], tuple[str | None, ...]]]:
    """Per factor: id, weight, points by band (missing points last) and band labels (None for missing)."""
    return [(f.id, f.weight, (*(b.value for b in f.bands), f.missing_points), (*(b.label() for b in f.bands), None))
            for f in policy.factors]


def _whole_names(policy: CompiledPolicy) -> frozenset[str]:
    """The names whose values are whole numbers by declaration or proof: integer inputs (of every scope), parameters
    written as integers and the metrics the compiler proves whole."""
    part = policy.scoped
    inputs = [*policy.inputs, *(spec for specs in part.inputs.values() for spec in specs)] if part else policy.inputs
    metrics = [*policy.metrics, *(part.metrics if part else ())]
    params = (n for n, by in policy.parameters.items() if by and all(type(v) is int for v in by.values()))
    return frozenset([*(s.name for s in inputs if s.type == "integer"), *params, *(m.name for m in metrics if m.whole)])


def _dated_names(policy: CompiledPolicy) -> tuple[str, ...]:
    """The names whose values a trace writes as ISO text: dates, and what may hold one."""
    params = tuple(n for i, n in enumerate(policy.param_names)
                   if any(type(t[i]) not in _PLAIN for t in policy.param_tuples.values()))
    return ("as_of", *(s.name for s in policy.inputs if s.type == "date"),
            *(m.name for m in policy.metrics if m.expr.type not in _PLAIN_TYPES), *params)


def _owned(v: Any) -> Any:
    """A copy of a list or dict the compiled policy holds, for a record (a caller may edit the record)."""
    t = type(v)
    if t is list:
        return [_owned(x) for x in v]
    if t is dict:
        return {k: _owned(x) for k, x in v.items()}
    return v


def _restructuring_entry(r: Any, is_restructuring: Any) -> dict[str, Any]:
    """The regulatory consequence of a concession: its floor and observation period, when it is one."""
    return {
        "is_restructuring": is_restructuring,
        "floor": r.floor if is_restructuring else None,
        "observation": ({"starts": "first repayment date after the change",
                         "min_months": r.observation_months, "min_periods": r.observation_periods}
                        if is_restructuring else None),
        "source": r.source,
        "note": _owned(r.note),
    }


def _build_tracer(policy: CompiledPolicy, dated: Sequence[str], whole: frozenset[str]) -> Any:
    """One generated function that writes the trace (one entry per rule, in rule order) as dict literals.

    A trace repeats the policy's text for every client; spelled out as literals it costs a
    third of assembling it rule by rule. The figures a rule read are unpacked once into locals
    (dates, and series of dates, as ISO text; numbers are JSON already), not looked up per
    entry. Only names and sources from the compiled policy are written into the code, each as a
    Python string literal (``repr``); variables are numbered.
    """
    local: dict[str, str] = {}
    lines = ["def trace(inputs, params, metrics, as_of, score, grade, points, floors, warnings, actions, jsonable, "
             "whole):"]
    for prefix, names, source in (("i", [s.name for s in policy.inputs], "inputs"),
                                  ("p", list(policy.param_names), "params"),
                                  ("m", [m.name for m in policy.metrics], "metrics")):
        if names:
            variables = [f"{prefix}{k}" for k in range(len(names))]
            lines.append(f"    ({', '.join(variables)},) = {source}")
            local.update(zip(names, variables, strict=True))  # a later kind wins, as in the environment,
    local.update(as_of="as_of", score="score", grade="grade")  # and these over all
    lines += [f"    {local[n]} = jsonable({local[n]})" for n in dict.fromkeys(dated) if n in local]
    lines += [f"    {local[n]} = whole({local[n]})" for n in sorted(whole) if n in local]
    lines.append("    return [")

    def entry(stage: str, rule: str, source: str, refs: Sequence[str], result: str, extra: str = "") -> None:
        reads = ", ".join(f"{n!r}: {local.get(n, 'None')}" for n in refs)
        lines.append(f"        {{'stage': {stage!r}, 'rule': {rule!r}, 'expr': {source!r}, 'reads': {{{reads}}}, "
                     f"'result': {result}{extra}}},")

    # In evaluation order: metrics after classification follow the floors; a classification rule's
    # warning is its rule's entry, not a second one.
    for i, m in enumerate(policy.metrics):
        if m.after is None:
            entry("metric", m.name, m.expr.source, m.expr.refs, f"m{i}")
    for i, f in enumerate(policy.factors):
        entry("factor", f.id, f.expr.source, f.expr.refs, f"points[{i}]")
    for i, r in enumerate(policy.floors):
        entry("classification", r.id, r.as_written.source, r.expr.refs, f"floors[{i}]",
              f", 'floor': {r.floor!r}{_exposures_named(r)}")
    for i, m in enumerate(policy.metrics):
        if m.after is not None:
            entry("metric", m.name, m.expr.source, m.expr.refs, f"m{i}")
    # A warning's or an action's condition as written, and apart the exposures it concerns (its ``expr`` joins
    # them as 'when and any_of(exposure, for_exposures)', which no author wrote).
    for i, w in enumerate(policy.warnings):
        if not w.from_rule:
            entry("warning", w.id, w.as_written.source, w.expr.refs, f"warnings[{i}]", _exposures_named(w))
    for i, a in enumerate(policy.actions):
        entry("action", a.id, a.as_written.source, a.expr.refs, f"actions[{i}]", _exposures_named(a))
    lines.append("    ]")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<trace {policy.id} {policy.version}>", "exec"), namespace)
    return namespace["trace"]


def _exposures_named(spec: Any) -> str:
    """A trace step's for_exposures entry, for a floor, a warning or an action that names the exposures it concerns."""
    return "" if spec.for_exposures is None else f", 'for_exposures': {spec.for_exposures.source!r}"


SUMMARY = "summary"


def summarize(record: Mapping[str, Any]) -> dict[str, Any]:
    """The facts of a decision, as the store keeps them for a batch (``"record": "summary"``).

    Grade, the rule that decided it, score, fired floors, warnings, actions, suppressed and
    undetermined rules, every metric, and the hashes that pin policy and input. Messages,
    evidence and factor tables are left out: they follow from the stored policy text and
    input, and ``audit show`` re-derives them (checking the facts agree). Batches build the
    same dictionary column-wise (``batch.audit_rows``); tests hold the two equal.
    """
    c = record["classification"]
    return {
        "record": SUMMARY,
        "decision_id": record["decision_id"],
        "client_id": record["client_id"],
        "as_of": record["as_of"],
        "evaluated_at": record["evaluated_at"],
        "engine_version": record["engine_version"],
        "policy": record["policy"],
        "input_sha256": record["input_sha256"],
        "segment": record["segment"],
        "metrics": record["metrics"],
        "score": {"total": record["score"]["total"], "grade": record["score"]["grade"]},
        "classification": {"grade": c["grade"], "decided_by": c["decided_by"], "scorecard_grade": c["scorecard_grade"],
                           "nonperforming": c["nonperforming"], "floors": [f["id"] for f in c["floors"]]},
        "warnings": [w["id"] for w in record["warnings"]],
        "actions": [a["id"] for a in record["actions"]],
        "suppressed_actions": [a["id"] for a in record["suppressed_actions"]],
        "undetermined": [u["rule"] for u in record["undetermined"]],
    }


def _short(v: Any) -> str:
    if isinstance(v, list):
        return f"[{len(v)} periods]"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(_jsonable(v))


def decide(policy: CompiledPolicy, record: Any, as_of: str | _dt.date | None = None,
           trace: bool = False) -> dict[str, Any]:
    """Decide one client; for many clients build one :class:`Decider` and reuse it."""
    decider = policy.runtime.get("decider")
    if decider is None:
        decider = policy.runtime["decider"] = Decider(policy)
    return decider.decide(record, as_of=as_of, trace=trace)


def dumps(record: Mapping[str, Any], pretty: bool = False) -> str:
    opt = orjson.OPT_INDENT_2 if pretty else 0
    return orjson.dumps(record, option=opt).decode("utf-8")
