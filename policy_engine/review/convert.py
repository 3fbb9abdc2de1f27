"""Client record 1.x -> 2.0: one loan and the caller's conclusions, restated as facts where they allow.

A 1.x record carries one loan and conclusions the caller drew (``restructuring.restructured``,
``observation_start``, ``periods_repaid``, the shares at this bank and at all institutions, the
upgrade counts). Record 2.0 carries the facts a policy draws them from: a debtor with exposures,
modification events, a repayment schedule with its payment history, bureau amounts, dated events.

The converter restates what the 1.x record says and never invents a fact silently. Every record
comes with its **notes**, each with a stable ``code``, the 2.0 ``field`` it concerns, the
``value`` put there and the ``reason``, of three kinds:

* ``assumed``: 2.0 needs a value 1.x does not hold and a safe one exists (the facility's currency
  is CNY, as every 1.x amount is; a restructuring's modification took effect the day before its
  first repayment date);
* ``unknown``: 2.0 reads a fact 1.x does not hold and no safe value exists: the field stays empty,
  and the 2.0 decision says what it could not determine (credit-impaired, EBIT, CFADS, ...);
* ``not_carried``: a 1.x fact with no place in 2.0 (the share of non-performing claims at this
  bank is computed by 2.0 from the grades of the exposures the record holds; 1.x held one loan).

A value that is not a 1.x record is refused with every problem and its field path (``problems``),
so a portfolio's every row is converted or rejected with its reason.
"""

from __future__ import annotations

import calendar
import copy
import datetime as dt
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..decide.inputs import MAX_ABS_NUMBER as MAX_NUMBER  # what decide reads of a number: beyond, refused
from ..safetext import id_key, id_problem, repeated_id

FORMATS = ("2.0",)
INDUSTRIES = ("manufacturing", "trade", "technology", "construction", "energy", "other")
GRADES = ("pass", "special_mention", "substandard", "doubtful", "loss")
FREQUENCIES = (1, 2, 3, 6, 12)  # instalment periods, in months, the converter may assume (monthly first)
# 1.x event flags with a 2.0 event kind of the same meaning.
EVENT_KINDS = ("litigation", "key_person_missing", "assets_seized", "major_customer_lost")
# Statement fields of both records (2.0 statements allow the others 1.x has; 2.0.0 ignores them).
STATEMENT_FIELDS = ("period_end", "revenue", "cost_of_sales", "net_income", "operating_cash_flow", "ebitda",
                    "interest_expense", "debt_service", "current_assets", "current_liabilities", "inventory",
                    "receivables", "total_assets", "total_liabilities", "equity")
MAX_DEBT = MAX_NUMBER  # bureau amounts beyond what decide reads of a number would make a record it refuses
# What a record 2.0 holds per exposure (client-2.0.schema.json, from the scopes' max of 2.0.0): decide refuses more.
MAX_SCHEDULE = 240
MAX_MODIFICATIONS = 24
# Statement fields that cannot be negative in either record (a loss, a cash outflow, negative equity can be).
NON_NEGATIVE = {"revenue", "cost_of_sales", "interest_expense", "debt_service", "current_assets",
                "current_liabilities", "inventory", "receivables", "total_assets", "total_liabilities"}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# What a 1.x record holds, field by field: (path, kind, required). Kinds: str, int, num, bool, date,
# grade, industry, object, list. Only these are read; any other field is ignored, as 1.x policies do.
SHAPE: tuple[tuple[str, str, bool], ...] = (
    ("client_id", "id", True), ("as_of", "date", False), ("industry", "industry", True),
    ("internal_rating", "rating", True), ("key_client", "bool", False), ("exporter", "bool", False),
    ("tech_startup", "bool", False), ("financials", "list", False), ("loan", "object", True),
    ("loan.balance", "amount", True), ("loan.days_past_due", "count", True), ("loan.technical_overdue", "bool", False),
    ("loan.rate", "rate", False), ("loan.fair_rate", "rate", False), ("loan.maturity_date", "date", False),
    ("loan.collateral_value", "amount", False), ("loan.collateral_value_at_origination", "amount", False),
    ("loan.refinanced_old_with_new", "bool", False), ("loan.purpose_changed_unapproved", "bool", False),
    ("exposure", "object", False), ("exposure.nonperforming_share_at_bank", "share", False),
    ("exposure.overdue_90_share_all_banks", "share", False), ("exposure.nonperforming_elsewhere", "bool", False),
    ("restructuring", "object", False), ("restructuring.restructured", "bool", False),
    ("restructuring.observation_start", "date", False), ("restructuring.periods_repaid", "count", False),
    ("restructuring.nonperforming_before", "bool", False),
    ("restructuring.restructured_again_after_nonpayment", "bool", False),
    ("history", "object", False), ("history.previous_grade", "grade", False),
    ("history.arrears_repaid", "bool", False), ("history.consecutive_normal_payments", "count", False),
    ("history.months_normal_payment", "count", False), ("events", "object", False),
    *((f"events.{k}", "bool", False) for k in (*EVENT_KINDS, "repayment_willingness_declining",
                                              "government_support_available")),
)


@dataclass(frozen=True)
class Note:
    """One thing a reader of the 2.0 record must know: what was assumed, left empty, or not carried."""

    kind: str  # assumed | unknown | not_carried
    code: str
    field: str
    value: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "code": self.code, "field": self.field, "value": self.value,
                "reason": self.reason}


@dataclass
class Conversion:
    """A converted record and its notes, or (``record`` None) the problems that refused it."""

    record: dict[str, Any] | None
    notes: list[Note] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.record is not None


class _Refused(Exception):
    def __init__(self, problems: list[dict[str, str]]) -> None:
        super().__init__(problems[0]["message"] if problems else "refused")
        self.problems = problems


def convert_record(record: Any, as_of: str | None = None) -> Conversion:
    """A 1.x client record as a 2.0 record with its notes; a value that is not one is refused.

    ``as_of`` is the decision date when the record has none: the dated facts of 2.0 (events, the
    modification, the schedule) are placed relative to it. ``as_of`` in the record wins.
    """
    try:
        return _Converter(record, as_of).run()
    except _Refused as exc:
        return Conversion(None, [], exc.problems)


def check_v1(record: Any) -> list[dict[str, str]]:
    """Every problem that keeps ``record`` from being read as a 1.x record, with its field path."""
    if not isinstance(record, dict):
        return [_problem("(record)", "not-a-record", f"expected a JSON object, found {_kind(record)}")]
    if "exposures" in record or "debtor_id" in record:
        return [_problem("exposures" if "exposures" in record else "debtor_id", "already-v2",
                         "this is a client record 2.0 (a debtor with exposures), not a 1.x record")]
    problems = []
    for path, kind, required in SHAPE:
        parent, _, name = path.rpartition(".")
        holder = _get(record, parent) if parent else record
        if not isinstance(holder, dict):
            continue  # the parent's own problem is reported (or it is absent and optional)
        value = holder.get(name)
        if value is None:
            if required:
                problems.append(_problem(path, "missing-field", "a 1.x record has this field; it is missing"))
            continue
        message = _type_problem(value, kind)
        if message:
            problems.append(_problem(path, "bad-type", message))
    problems.extend(_financials_problems(record.get("financials")))
    return problems


def _financials_problems(periods: Any) -> list[dict[str, str]]:
    """Each period's fields, and their order: oldest first, as 1.x policies read them (newest first is refused
    by decide, so it is by convert, which would date the statements wrongly)."""
    if not isinstance(periods, list):
        return []
    out = []
    before: tuple[int, dt.date] | None = None
    for i, p in enumerate(periods):
        if not isinstance(p, dict):
            out.append(_problem(f"financials[{i}]", "bad-type", f"expected an object, found {_kind(p)}"))
            continue
        end = _date(p.get("period_end"))
        if end is not None and before is not None and end <= before[1]:
            out.append(_problem(f"financials[{i}].period_end", "bad-order",
                                f"{end} is not after financials[{before[0]}].period_end ({before[1]}): periods go "
                                "oldest first, each after the one before"))
        if end is not None:
            before = (i, end)
        for name in STATEMENT_FIELDS:
            v = p.get(name)
            kind = "date" if name == "period_end" else "amount" if name in NON_NEGATIVE else "num"
            message = None if v is None else _type_problem(v, kind)
            if message:
                out.append(_problem(f"financials[{i}].{name}", "bad-type", message))
    return out


def _after_as_of(record: dict[str, Any], as_of: dt.date) -> list[dict[str, str]]:
    """What decide refuses in the 1.x record and in its conversion alike: a statement dated after the as-of day,
    and periods repaid since an observation start that has not come yet (the schedule would be paid in the
    future)."""
    out = []
    for i, period in enumerate(record.get("financials") or []):
        end = _date(period.get("period_end"))
        if end is not None and end > as_of:
            out.append(_problem(f"financials[{i}].period_end", "bad-field",
                                f"{end} is after the as-of date {as_of}: a decision as of that day can only use "
                                "what was known then"))
    restr = record.get("restructuring") or {}
    start, repaid = _date(restr.get("observation_start")), restr.get("periods_repaid")
    if start is not None and start >= as_of and repaid:
        out.append(_problem("restructuring.periods_repaid", "bad-value",
                            f"{repaid} period(s) repaid since the observation start {start}, which is not before the "
                            f"as-of date {as_of}: no period can have been repaid yet"))
    return out


_READ_PATHS = frozenset(path for path, _, _ in SHAPE) | {"name"}
_MAX_UNREAD = 20  # notes of fields not read, per record: a record of hundreds names the first ones and the count


def _unread_fields(record: dict[str, Any]) -> list[tuple[str, Any]]:
    """The fields of a 1.x record that the conversion reads no value of, as dotted paths (a period's field as
    ``financials[2].x``), in the record's order; past ``_MAX_UNREAD`` one entry counts the rest."""
    found: list[tuple[str, Any]] = []

    def walk(obj: dict[str, Any], prefix: str) -> None:
        for key, value in obj.items():
            path = f"{prefix}{key}"
            if path not in _READ_PATHS:
                found.append((path, value))
            elif isinstance(value, dict) and any(p.startswith(path + ".") for p in _READ_PATHS):
                walk(value, path + ".")

    walk(record, "")
    for i, period in enumerate(record.get("financials") or []):
        if isinstance(period, dict):
            found += [(f"financials[{i}].{k}", v) for k, v in period.items() if k not in STATEMENT_FIELDS]
    if len(found) > _MAX_UNREAD:
        found = [*found[:_MAX_UNREAD], (f"({len(found) - _MAX_UNREAD} more)", None)]
    return found


def _short_value(value: Any) -> Any:
    """A value as a note shows it: a scalar as it is, a text cut to 100 characters, an object or list by its kind."""
    if isinstance(value, str):
        return value if len(value) <= 100 else value[:97] + "..."
    if isinstance(value, dict | list):
        return f"({_kind(value)})"
    return value


def _is_int(v: Any) -> bool:
    """A whole number, as decide reads one: 3.0 too (a table column with a gap holds floats)."""
    return type(v) is int or (type(v) is float and v.is_integer())


def _whole_counts(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with each whole-number field written 3.0 as 3 (copied where one is): the conversion counts
    months and periods with them, and the 2.0 record shows them as the 1.x record meant them."""
    out = record
    for path, kind, _ in SHAPE:
        if kind not in ("count", "rating"):
            continue
        parent, _, name = path.rpartition(".")
        holder = _get(out, parent) if parent else out
        if isinstance(holder, dict) and type(v := holder.get(name)) is float:
            if out is record:
                out = copy.deepcopy(record)
                holder = _get(out, parent) if parent else out
            holder[name] = int(v)
    return out


def _is_num(v: Any) -> bool:
    return type(v) is int or (type(v) is float and math.isfinite(v))


# Each kind of 1.x field: the check its value passes, and what the message says was expected.
# A bound is decide's: what converts, decide reads (a balance of 1e308 converted, then refused).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "id": (lambda v: isinstance(v, str) and 0 < len(v) <= 100 and id_problem(v) is None,
           "text of 1 to 100 characters, without control or invisible characters, in Unicode NFC"),
    "count": (lambda v: _is_int(v) and 0 <= v <= MAX_NUMBER, "a whole number from 0 to 1e15"),
    "rating": (lambda v: _is_int(v) and 1 <= v <= 10, "a whole number from 1 to 10"),
    "num": (lambda v: _is_num(v) and abs(v) <= MAX_NUMBER, "a number from -1e15 to 1e15"),
    "amount": (lambda v: _is_num(v) and 0 <= v <= MAX_NUMBER, "a number from 0 to 1e15"),
    "share": (lambda v: _is_num(v) and 0 <= v <= 1, "a number from 0 to 1"),
    "rate": (lambda v: _is_num(v) and 0 <= v <= 1, "a rate as a fraction from 0 to 1 (0.045 = 4.5%)"),
    "bool": (lambda v: isinstance(v, bool), "true or false"),
    "date": (lambda v: _date(v) is not None, "a date YYYY-MM-DD"),
    "grade": (lambda v: v in GRADES, f"one of {', '.join(GRADES)}"),
    "industry": (lambda v: v in INDUSTRIES, f"one of {', '.join(INDUSTRIES)}"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
}


def _type_problem(value: Any, kind: str) -> str | None:
    """What is wrong with ``value`` for a field of ``kind`` (None: nothing)."""
    check, wanted = _CHECKS[kind]
    if check(value):
        return None
    return f"expected {wanted}, found {_kind(value)} {_short(value)}".rstrip()


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "text", list: "a list", dict: "an object"}.get(
        type(v), type(v).__name__)


def _short(v: Any) -> str:
    if isinstance(v, dict | list):
        return ""
    text = repr(v) if isinstance(v, str) else str(v).lower() if isinstance(v, bool) else str(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _problem(path: str, code: str, message: str) -> dict[str, str]:
    return {"field": path, "code": code, "message": message}


# 1.x history counts the upgrade conditions read on a loan not restructured (upgrade_history)
UPGRADE_COUNTS = ("history.consecutive_normal_payments", "history.months_normal_payment")


def _get(record: dict[str, Any], path: str) -> Any:
    cur: Any = record
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def _date(text: Any) -> dt.date | None:
    if not isinstance(text, str) or not _DATE.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` plus calendar months, clamped to the month's end (as the policy language's add_months)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def frequency(anchor: dt.date, count: int, as_of: dt.date) -> int | None:
    """The instalment period (months) under which exactly ``count`` due dates fall after ``anchor`` and
    before ``as_of``; the shortest that fits, None when none does."""
    for f in FREQUENCIES:
        if sum(1 for _ in _due_dates(anchor, f, as_of)) == count:
            return f
    return None


def _due_dates(anchor: dt.date, months: int, before: dt.date) -> Iterable[dt.date]:
    j = 1
    while (d := add_months(anchor, j * months)) < before:
        yield d
        j += 1


class _Converter:
    """One record's conversion; the notes are gathered as each 2.0 field is filled."""

    def __init__(self, record: Any, as_of: str | None) -> None:
        problems = check_v1(record)
        if problems:
            raise _Refused(problems)
        record = _whole_counts(record)
        self.src: dict[str, Any] = record
        self.notes: list[Note] = []
        self.loan: dict[str, Any] = record["loan"]
        self.restr: dict[str, Any] = record.get("restructuring") or {}
        self.hist: dict[str, Any] = record.get("history") or {}
        self.exp: dict[str, Any] = record.get("exposure") or {}
        self.events: dict[str, Any] = record.get("events") or {}
        day = record.get("as_of") or as_of
        if day is not None and _date(day) is None:
            raise _Refused([_problem("as_of", "bad-date", f"{day!r} is not a date YYYY-MM-DD")])
        if day is None:
            raise _Refused([_problem("as_of", "no-as-of", "the record has no as_of: record 2.0 dates every fact "
                                     "(events, modifications, the schedule) relative to it; give --as-of")])
        self.as_of_text: str = day
        self.as_of: dt.date = _date(day)  # type: ignore[assignment]
        self.e = "exposures[0]"
        late = _after_as_of(record, self.as_of)
        if late:
            raise _Refused(late)

    def note(self, kind: str, code: str, path: str, value: Any, reason: str) -> None:
        if CODES.get(code) != kind:  # the vocabulary is a contract: a new code is declared (and documented)
            raise AssertionError(f"note code {code!r} ({kind}) is not declared in CODES")
        self.notes.append(Note(kind, code, path, value, reason))

    def run(self) -> Conversion:
        src = self.src
        out: dict[str, Any] = {"client_id": src["client_id"]}
        if "name" in src:
            out["name"] = src["name"]
        out["as_of"] = self.as_of_text
        if src.get("as_of") is None:
            self.note("assumed", "as-of-given", "as_of", self.as_of_text,
                      "the 1.x record has no as_of: the date given to the converter (--as-of)")
        out["debtor_id"] = src["client_id"]
        self.note("assumed", "debtor-id-is-client-id", "debtor_id", src["client_id"],
                  "a 1.x record is one client: its client_id stands for the debtor's customer number")
        out["industry"] = src["industry"]
        out["size_class"] = "large"
        self.note("assumed", "size-class", "size_class", "large",
                  "no size class in 1.x: assumed large, so the small-enterprise renewal exception of Art. 9(3) "
                  "does not apply (1.x never applied it)")
        out["internal_rating"] = src["internal_rating"]
        self.note("unknown", "rating-undated", "internal_rating_date", None,
                  "1.x gives no date of the internal rating: left empty, so a policy that asks for a current rating "
                  "(2.1.0's internal_rating_stale) warns of every converted record")
        out["external_rating"] = None
        self.note("unknown", "no-external-rating", "external_rating", None,
                  "no external rating in 1.x: the sharp-downgrade rule (Art. 10(3)) cannot fire")
        out["group"] = None
        self.note("unknown", "no-group", "group", None,
                  "no group facts in 1.x: the group contagion warning cannot fire")
        out["difficulty"] = self.difficulty()
        out["bureau"] = self.bureau()
        out["statements"] = self.statements()
        out["events"] = self.dated_events()
        out["exposures"] = [self.exposure()]
        self.not_carried()
        self.not_read()
        return Conversion(out, self.notes)

    # ---- the debtor ----------------------------------------------------------------------------------

    def difficulty(self) -> dict[str, Any]:
        if self.restr.get("restructured"):
            self.note("unknown", "difficulty-resolution-unknown", "difficulty.resolved_date", None,
                      "1.x does not say whether the credit officer found the financial difficulty resolved "
                      "(Art. 20 exit): left empty, so the observation period does not end")
        return {"assessed": None, "resolved_date": None}

    def bureau(self) -> dict[str, Any]:
        """Bureau amounts that give the 1.x share of debt overdue over 90 days at all institutions."""
        share = self.exp.get("overdue_90_share_all_banks")
        out: dict[str, Any] = {"report_date": None, "total_debt": None, "overdue_90_amount": None,
                               "any_nonperforming": self.bureau_nonperforming()}
        self.note("unknown", "bureau-undated", "bureau.report_date", None,
                  "1.x gives no date of the credit bureau report: left empty, so a policy that asks for a current "
                  "report (2.1.0's bureau_report_stale) warns of every converted record")
        if share is None:
            self.note("unknown", "cross-bank-share-unknown", "bureau.overdue_90_amount", None,
                      "1.x gives no share overdue over 90 days at all institutions: the 20% rule reads only "
                      "this bank's exposure")
            return out
        own = float(self.loan["balance"])
        own_90 = own if self.loan["days_past_due"] > 90 else 0.0
        if share == 0 and own_90 == 0:  # nothing overdue over 90 days anywhere: a fact; the debt elsewhere is not
            out["overdue_90_amount"] = 0
            self.note("unknown", "debt-elsewhere-unknown", "bureau.total_debt", None,
                      "1.x gives a share of 0 overdue over 90 days at all institutions: the overdue amount is 0 (a "
                      "fact), the debt at other institutions is not known and is left empty")
            return out
        amounts = bureau_amounts(float(share), own, own_90)
        if amounts is None:
            self.note("unknown", "cross-bank-share-inconsistent", "bureau.overdue_90_amount", None,
                      f"no bureau amounts (up to 1e15, what a record 2.0 holds) give the 1.x share {share} beside "
                      "this loan's own days past due and balance: left empty, the 20% rule reads only this bank's "
                      "exposure")
            return out
        out["total_debt"], out["overdue_90_amount"] = amounts
        self.note("assumed", "bureau-amounts-from-share", "bureau.total_debt", amounts[0],
                  f"1.x gives only the share overdue over 90 days at all institutions ({share}): debt elsewhere "
                  f"{amounts[0]:g} and overdue over 90 days {amounts[1]:g} reproduce that share with this loan; "
                  "the amounts are not facts, the share is")
        return out

    def bureau_nonperforming(self) -> bool | None:
        elsewhere = self.exp.get("nonperforming_elsewhere")
        if elsewhere is None or elsewhere is False:
            return elsewhere
        at_bank = self.exp.get("nonperforming_share_at_bank") or 0
        if at_bank == 0 and self.loan["days_past_due"] <= 90:
            return True  # nothing at this bank is non-performing: the 1.x flag speaks of another institution
        self.note("unknown", "nonperforming-where-unknown", "bureau.any_nonperforming", None,
                  "1.x says debt is non-performing at this bank or at another institution, and this bank holds "
                  "non-performing debt too: whether another institution does is not known")
        return None

    def statements(self) -> list[dict[str, Any]] | None:
        periods = self.src.get("financials")
        if periods is None:
            return None
        out = [{k: p.get(k) for k in STATEMENT_FIELDS if k in p} for p in periods]
        if out:
            for name, code, why in (
                    ("ebit", "no-ebit", "1.x has EBITDA, not EBIT (EBITDA overstates it): interest coverage on "
                                        "EBIT cannot be computed"),
                    ("cfads", "no-cfads", "no cash flow available for debt service in 1.x: the DSCR cannot be "
                                          "computed")):
                for p in out:
                    p[name] = None
                self.note("unknown", code, f"statements[*].{name}", None, why)
        return out

    def dated_events(self) -> list[dict[str, Any]]:
        out = []
        for kind in EVENT_KINDS:
            if self.events.get(kind):
                out.append({"kind": kind, "date": self.as_of_text})
                self.note("assumed", "event-dated-as-of", f"events[{len(out) - 1}].date", self.as_of_text,
                          f"1.x says only that {kind.replace('_', ' ')} is known on the as-of date: dated that day")
        return out

    def not_carried(self) -> None:
        share = self.exp.get("nonperforming_share_at_bank")
        if share:
            self.note("not_carried", "bank-share-not-carried", "exposure.nonperforming_share_at_bank", share,
                      "2.0 computes the share of non-performing claims at this bank from its exposures' own grades; "
                      "the 1.x record holds one loan, so the debtor's other claims at this bank are not known")
        for path in NOT_CARRIED_FLAGS:
            if _get(self.src, path) is True:
                name = path.rpartition(".")[2]
                self.note("not_carried", f"{name.replace('_', '-')}-not-carried", path, True,
                          f"record 2.0 has no place for {name.replace('_', ' ')}: the 2.0 decision does not see it")

    def not_read(self) -> None:
        """A field of the record that no 1.x policy reads (``loan.currency``, ``loan.collateral_type`` from another
        system's export) is not carried either: said, so a reader does not take an assumption beside it (currency
        CNY) for a conversion of it."""
        for path, value in _unread_fields(self.src):
            self.note("not_carried", "field-not-read", path, _short_value(value),
                      "no 1.x policy reads this field, and the converter carries only what 1.x reads: it is not "
                      "in the 2.0 record")

    # ---- the exposure --------------------------------------------------------------------------------

    def exposure(self) -> dict[str, Any]:
        loan, e = self.loan, self.e
        dpd = loan["days_past_due"]
        mods, schedule = self.history()
        out: dict[str, Any] = {"exposure_id": "L1", "product": "working_capital", "currency": "CNY",
                               "balance": loan["balance"], "accrued_interest": None}
        self.note("assumed", "exposure-id", f"{e}.exposure_id", "L1", "1.x has one loan without a contract number")
        self.note("assumed", "product", f"{e}.product", "working_capital",
                  "no product in 1.x: a loan (working capital), not a bond, so Art. 9(3) applies as in 1.x")
        self.note("assumed", "currency", f"{e}.currency", "CNY", "1.x amounts are in CNY")
        self.note("unknown", "no-accrued-interest", f"{e}.accrued_interest", None,
                  "no accrued interest in 1.x: the claim amount is the balance alone")
        earliest = min([self.as_of, *(_date(m["date"]) for m in mods), *(_date(p["due_date"]) for p in schedule)])
        out["origination_date"] = earliest.isoformat()
        self.note("assumed", "origination-date", f"{e}.origination_date", out["origination_date"],
                  "no drawdown date in 1.x: the earliest date the record implies (no rule reads it; 2.1.0 reads it "
                  "as a bound, refusing a payment, maturity or modification before it, which none is)")
        maturity = loan.get("maturity_date")
        if maturity is None:
            last = max([self.as_of, *(_date(p["due_date"]) for p in schedule)])
            maturity = last.isoformat()
            self.note("assumed", "maturity-date", f"{e}.maturity_date", maturity,
                      "no maturity in 1.x: the latest date the record implies (no 2.0.0 rule reads it)")
        out["maturity_date"] = maturity
        out["rate"], out["fair_rate"] = loan.get("rate"), loan.get("fair_rate")
        out["days_past_due"] = dpd
        out["past_due_amount"] = 0 if dpd == 0 else None
        if dpd:
            self.note("unknown", "past-due-amount", f"{e}.past_due_amount", None, "1.x has days past due, no amount")
        technical = loan.get("technical_overdue")
        out["past_due_reason"] = None if dpd == 0 or technical is None else "technical" if technical else "financial"
        out["collateral"] = {"type": None, "value": loan.get("collateral_value"),
                             "value_at_origination": loan.get("collateral_value_at_origination")}
        out["accounting"] = {"credit_impaired": None, "stage": None, "ecl": None}
        self.note("unknown", "no-accounting", f"{e}.accounting.credit_impaired", None,
                  "credit-impaired, stage and ECL are the finance department's facts, not in 1.x: the "
                  "credit-impaired floors (Art. 10(2), 11(3)) are undetermined")
        out["funds_misused"] = loan.get("purpose_changed_unapproved")
        out["repaid_by_new_loan"] = loan.get("refinanced_old_with_new")
        out["qualifying_renewal"] = None
        out["previous_grade"] = self.hist.get("previous_grade")
        if len(schedule) > MAX_SCHEDULE or len(mods) > MAX_MODIFICATIONS:  # decide would refuse the record
            raise _Refused([_problem(f"{e}.schedule" if len(schedule) > MAX_SCHEDULE else f"{e}.modifications",
                                     "too-large", f"the history rebuilt from the 1.x counts holds {len(schedule)} "
                                     f"instalments and {len(mods)} modifications; a record 2.0 holds at most "
                                     f"{MAX_SCHEDULE} and {MAX_MODIFICATIONS} per exposure")])
        out["modifications"] = mods
        out["schedule"] = schedule
        return out

    def history(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Modification events and the schedule with its payments, from the 1.x conclusions."""
        restructured = self.restr.get("restructured")
        if restructured is None and self.restr:
            self.note("unknown", "restructured-unknown", f"{self.e}.modifications", [],
                      "1.x leaves open whether the loan was restructured: no modification is recorded")
        if restructured:
            try:
                found = self.restructuring()
            except (OverflowError, ValueError) as exc:
                raise _off_calendar(exc, "restructuring.observation_start", self.restr.get("observation_start"),
                                    self.as_of) from None
            counts = [p for p in UPGRADE_COUNTS if _get(self.src, p) not in (None, False, 0)]
            if counts:  # the schedule is the observation's: the upgrade counts would contradict it
                self.note("not_carried", "upgrade-counts-not-carried", counts[0], _get(self.src, counts[0]),
                          f"on a restructured loan the schedule is built from the observation ({', '.join(counts)} "
                          "not carried): the 2.0 upgrade conditions (Art. 13) read its payments, not the 1.x counts")
            return found
        try:
            schedule = self.upgrade_history()
        except (OverflowError, ValueError) as exc:
            raise _off_calendar(exc, "history.months_normal_payment", self.hist.get("months_normal_payment"),
                                self.as_of) from None
        if schedule is None:
            self.note("unknown", "no-payment-history", f"{self.e}.schedule", [],
                      "no payment history in 1.x: the upgrade conditions (Art. 13) find no period paid")
            schedule = []
        return [], schedule

    def instalment(self, months: int | None) -> float:
        """The instalment amount assumed: the latest quarter's debt service over the period (0 when 1.x has none)."""
        periods = [p for p in self.src.get("financials") or [] if isinstance(p, dict)]
        service = next((p["debt_service"] for p in reversed(periods) if p.get("debt_service") is not None), None)
        if service is None:
            return 0.0
        return round(float(service) * (months or 3) / 3, 2)

    def restructuring(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        e, restr = self.e, self.restr
        start = _date(restr.get("observation_start"))
        before = self.grade_before()
        mod_date = min(start - dt.timedelta(days=1), self.as_of) if start else self.as_of
        self.note("assumed", "modification-date", f"{e}.modifications[-1].date", mod_date.isoformat(),
                  "1.x gives no observation start: the change is assumed on the as-of date" if not start else
                  "1.x gives the observation start, the first repayment date after the change: the change is "
                  "assumed to take effect the day before it" if mod_date == start - dt.timedelta(days=1) else
                  f"1.x gives an observation start after the as-of date ({start}): the change, known on the "
                  "as-of date, is assumed on it")
        self.note("assumed", "modification-measure", f"{e}.modifications[-1].measure", "other_concession",
                  "1.x says restructured, a concession, not which measure")
        self.note("assumed", "restructured-means-difficulty", f"{e}.modifications[-1].difficulty_assessed", True,
                  "1.x restructured means a concession to a debtor in financial difficulty (Art. 17)")
        if start is None:
            self.note("unknown", "no-payment-history", f"{e}.schedule", [],
                      "no observation start in 1.x: no repayment date, so the observation period cannot end")
            if restr.get("restructured_again_after_nonpayment"):
                self.note("unknown", "restructured-again-undated", f"{e}.modifications", None,
                          "1.x says restructured again after a missed payment but gives no observation start to "
                          "date either restructuring: one restructuring is recorded, the re-restructuring rule "
                          "does not fire")
            return [_modification(mod_date, 0, before)], []
        repaid = restr.get("periods_repaid")
        months = frequency(start, repaid or 0, self.as_of) if start < self.as_of else 3
        amount = self.instalment(months)
        schedule = [_paid(start, amount) if start < self.as_of else _due(start, amount)]
        if start >= self.as_of:  # nothing due yet (periods repaid before it are refused): the first two, unpaid
            schedule.append(_due(add_months(start, months or 3), amount))
            self.note("assumed", "schedule-not-yet-due", f"{e}.schedule", f"every 3 month(s), {amount:g}",
                      f"the observation starts on {start}, not before the as-of date: its first two instalments, "
                      "3 months apart, are recorded due and not yet paid")
        elif months is None:
            self.note("unknown", "schedule-frequency", f"{e}.schedule", None,
                      f"no instalment period (1, 2, 3, 6 or 12 months) puts {repaid} repaid periods between "
                      f"{start} and {self.as_of}: only the first repayment date is recorded")
        else:
            schedule += [_paid(d, amount) for d in _due_dates(start, months, self.as_of)]
            while sum(1 for p in schedule if _date(p["due_date"]) > start) < 2:  # the period's end is known
                schedule.append(_due(add_months(_date(schedule[-1]["due_date"]), months), amount))
            self.note("assumed", "schedule-from-counts", f"{e}.schedule", f"every {months} month(s), {amount:g}",
                      f"1.x gives {repaid or 0} period(s) repaid since {start}: instalments every {months} month(s) "
                      f"from {start}, each paid in full on its due date (the latest quarter's debt service over "
                      "the period)")
        mods = [_modification(mod_date, 0, before)]
        if restr.get("restructured_again_after_nonpayment"):
            mods, schedule = self.again(mods, schedule, months or 3, amount, before)
        if restr.get("nonperforming_before") is None:
            self.note("assumed", "nonperforming-before-unknown", f"{e}.modifications[-1].grade_before", before,
                      "1.x leaves open whether the loan was non-performing before the restructuring: assumed it "
                      "was (the prudent reading; Art. 20 forbids an upgrade in observation)")
        return mods, schedule

    def again(self, mods: list[dict[str, Any]], schedule: list[dict[str, Any]], months: int, amount: float,
              before: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Restructured again after a missed payment: a first restructuring, the missed instalment, the second."""
        second = _date(mods[0]["date"])
        missed_due = add_months(_date(schedule[0]["due_date"]), -months)
        first = missed_due - dt.timedelta(days=1)
        cleared = self.hist.get("arrears_repaid") is True
        missed = {"due_date": missed_due.isoformat(), "due_amount": amount,
                  "paid_date": second.isoformat() if cleared else None, "paid_amount": amount if cleared else 0}
        self.note("assumed", "restructured-again", f"{self.e}.modifications[0]", first.isoformat(),
                  f"1.x says restructured again after a missed payment: a first restructuring on {first}, its "
                  f"instalment due {missed_due} missed" + (f" (paid late on {second})" if cleared else "")
                  + f", and the second on {second}")
        return ([_modification(first, 0, before), _modification(second, max((second - missed_due).days, 0), before)],
                [missed, *schedule])

    def grade_before(self) -> str:
        nonperforming = self.restr.get("nonperforming_before")
        previous = self.hist.get("previous_grade")
        if nonperforming is False:
            return previous if previous in GRADES[:2] else "special_mention"
        return previous if previous in GRADES[2:] else "substandard"

    def upgrade_history(self) -> list[dict[str, Any]] | None:
        """For a loan graded non-performing before: the payments the 1.x upgrade counts stand for."""
        previous = self.hist.get("previous_grade")
        if previous not in GRADES[2:] or self.hist.get("arrears_repaid") is not True:
            return None
        months_normal = self.hist.get("months_normal_payment")
        if months_normal is None:
            return None
        cleared = add_months(self.as_of, -months_normal)
        given = self.hist.get("consecutive_normal_payments") or 0
        count = min(given, MAX_SCHEDULE - 1)  # with the late instalment, a schedule a record 2.0 can hold
        months = frequency(cleared, count, self.as_of)
        amount = self.instalment(months)
        late_due = cleared - dt.timedelta(days=1)
        schedule = [{"due_date": late_due.isoformat(), "due_amount": amount, "paid_date": cleared.isoformat(),
                     "paid_amount": amount}]
        span = (self.as_of - cleared).days
        if months is not None:
            schedule += [_paid(d, amount) for d in _due_dates(cleared, months, self.as_of)]
            value, then = (f"every {months} month(s), {amount:g}",
                           f", then instalments every {months} month(s) each paid in full on its due date")
        elif 0 < count < span:
            # No regular period puts the count in the months (8 periods in 19 months): the periods spread
            # evenly, so that 2.0 counts what 1.x counted (the periods and the months since the arrears).
            schedule += [_paid(cleared + dt.timedelta(days=round(j * span / (count + 1))), amount)
                         for j in range(1, count + 1)]
            value, then = (f"{count} instalment(s) spread evenly, {amount:g}",
                           f"; no regular period (1, 2, 3, 6 or 12 months) fits, so the {count} instalments are "
                           "spread evenly over the months, each paid in full on its due date")
        else:
            value, then = None, "; no instalment period fits the count, so no later period is recorded"
        capped = (f"; the {given} periods are capped at {count}: a record 2.0 holds at most {MAX_SCHEDULE} instalments "
                  "per exposure, and the upgrade conditions (Art. 13) need far fewer") if count < given else ""
        self.note("assumed", "upgrade-history-from-counts", f"{self.e}.schedule", value,
                  f"1.x says the arrears were repaid, then {months_normal} month(s) and {given} period(s) of normal "
                  f"payment: arrears cleared on {cleared}" + then + capped)
        return schedule


def _off_calendar(exc: Exception, field: str, value: Any, as_of: dt.date) -> Exception:
    """The refusal of a record whose facts put a date the conversion derives (a modification, an instalment)
    before year 1 or after 9999: no record 2.0 can hold it. Any other error is a bug, and stays one."""
    if not isinstance(exc, OverflowError) and "out of range" not in str(exc):
        return exc
    return _Refused([_problem(field, "date-out-of-range",
                              f"the dates the conversion derives from {field} ({_short(value) or 'none'}) and the "
                              f"as-of date ({as_of}) fall outside the calendar (years 1 to 9999): a record 2.0 "
                              "cannot hold them")])


def bureau_amounts(share: float, own: float, own_90: float) -> tuple[float, float] | None:
    """Debt at other institutions and its part overdue over 90 days such that, with this loan, the share
    of all debt overdue over 90 days is ``share`` as the policy computes it; None when no amounts can, and
    for a share of 0 (nothing overdue anywhere needs no amount elsewhere; beside an overdue loan none can).

    Debt elsewhere is taken equal to this loan's balance where that fits, else the least that does.
    """
    if not 0 <= share <= 1:
        return None
    if share == 0:
        return None  # this loan is overdue over 90 days: no amounts elsewhere make the share 0
    bounds = [own_90 / share - own]  # the overdue amount elsewhere is not negative ...
    if share < 1:
        bounds.append((share * own - own_90) / (1 - share))  # ... and not more than the debt elsewhere
    elif own_90 != own:
        return None
    bound = max(bounds)
    if bound > MAX_DEBT:
        return None  # only debt beyond what a record holds would dilute this overdue loan to the share
    # Debt elsewhere equal to this loan's balance where that leaves room, else the least whole amount that does.
    total = own if own > bound * (1 + 1e-9) + 1e-9 else math.ceil(max(bound, 0.0) * (1 + 1e-9)) + 1.0
    # Float rounding: the share the policy computes must be the 1.x share, exactly. Near some totals the
    # quotients step over it; a larger total (any is consistent) moves the amounts to denser floats.
    for scale in (1.0, 1.125, 1.25, 1.375, 1.5, 1.625, 1.75, 1.875, 2.0):
        base = total if scale == 1.0 else float(math.ceil(total * scale))
        for step in range(16):
            candidate = base + step  # whole amounts: the next totals up
            overdue = _overdue_for(share, candidate, own, own_90)
            if overdue is not None:
                return (candidate, overdue) if candidate <= MAX_DEBT else None
    return None


def _overdue_for(share: float, total: float, own: float, own_90: float) -> float | None:
    """The amount overdue elsewhere that makes the policy's quotient exactly ``share`` (None: none nearby)."""
    overdue = share * (total + own) - own_90
    for _ in range(16):
        got = (overdue + own_90) / (total + own)
        if got == share and 0 <= overdue <= total:
            return overdue
        overdue = math.nextafter(overdue, math.inf if got < share else -math.inf)
    return None


def _modification(day: dt.date, dpd: int, before: str) -> dict[str, Any]:
    return {"date": day.isoformat(), "measure": "other_concession", "days_past_due": dpd,
            "grade_before": before, "difficulty_assessed": True}


def _paid(day: dt.date, amount: float) -> dict[str, Any]:
    return {"due_date": day.isoformat(), "due_amount": amount, "paid_date": day.isoformat(), "paid_amount": amount}


def _due(day: dt.date, amount: float) -> dict[str, Any]:
    return {"due_date": day.isoformat(), "due_amount": amount, "paid_date": None, "paid_amount": None}


# 1.x flags record 2.0 has no place for: noted as not carried when true.
NOT_CARRIED_FLAGS = ("key_client", "exporter", "tech_startup", "events.repayment_willingness_declining",
                     "events.government_support_available")
# Every note code and its kind: the stable vocabulary of a conversion (docs/convert.md lists each).
CODES: dict[str, str] = {
    **dict.fromkeys(("as-of-given", "debtor-id-is-client-id", "size-class", "bureau-amounts-from-share",
                     "event-dated-as-of", "exposure-id", "product", "currency", "origination-date", "maturity-date",
                     "modification-date", "modification-measure", "restructured-means-difficulty",
                     "schedule-from-counts", "schedule-not-yet-due", "restructured-again",
                     "nonperforming-before-unknown",
                     "upgrade-history-from-counts"), "assumed"),
    **dict.fromkeys(("no-external-rating", "no-group", "difficulty-resolution-unknown", "cross-bank-share-unknown",
                     "cross-bank-share-inconsistent", "nonperforming-where-unknown", "no-ebit", "no-cfads",
                     "no-accrued-interest", "past-due-amount", "no-accounting", "restructured-unknown",
                     "no-payment-history", "schedule-frequency", "restructured-again-undated", "rating-undated",
                     "bureau-undated", "debt-elsewhere-unknown"), "unknown"),
    **dict.fromkeys(("bank-share-not-carried", "field-not-read", "upgrade-counts-not-carried",
                     *(f"{p.rpartition('.')[2].replace('_', '-')}-not-carried" for p in NOT_CARRIED_FLAGS)),
                    "not_carried"),
}

# The reason a report gives for a note's code, over many records (a record's own note names its values).
REASONS = {
    "bureau-amounts-from-share": "1.x gives only the share of debt overdue over 90 days at all institutions: bureau "
                                 "amounts chosen to reproduce that share with the loan; the amounts are not facts",
    "cross-bank-share-inconsistent": "no bureau amounts (up to 1e15, what a record 2.0 holds) give the 1.x share "
                                     "overdue over 90 days at all institutions beside the loan's own days past due "
                                     "and balance: bureau amounts left empty",
    "event-dated-as-of": "1.x says only that the event is known on the as-of date: dated that day",
    "modification-date": "the restructuring's modification assumed the day before the 1.x observation start (its "
                         "first repayment date), or on the as-of date without one (or with one after it)",
    "schedule-from-counts": "instalments rebuilt from the 1.x count of periods repaid since the observation start: "
                            "the shortest period (1, 2, 3, 6, 12 months) that fits, each paid in full on its due date",
    "schedule-frequency": "no instalment period fits the 1.x count of periods repaid: only the first repayment date",
    "schedule-not-yet-due": "the 1.x observation starts on or after the as-of date: its first two instalments, "
                            "3 months apart, recorded due and not yet paid",
    "restructured-again": "1.x restructured again after non-payment: a first restructuring, a missed instalment "
                          "and the second restructuring, dated from the observation start",
    "upgrade-history-from-counts": "the payment history rebuilt from the 1.x upgrade counts: arrears cleared "
                                   "months_normal_payment months ago, then the periods paid on time",
}


# The same reasons in Chinese, one per code (a record's own English note names its values; a committee reading a
# Chinese report reads what each assumption means for the 2.0 decision).
REASONS_ZH = {
    "as-of-given": "1.x 记录没有 as_of：采用转换时给定的日期（--as-of）",
    "debtor-id-is-client-id": "1.x 记录只有一个客户：以其 client_id 作为债务人客户号",
    "size-class": "1.x 没有企业规模：假设为大型企业，因此不适用第九条第三款小微企业续贷例外（1.x 也从未适用）",
    "bureau-amounts-from-share": "1.x 只给出在所有机构逾期90天以上债务的占比：征信金额按该占比与本笔贷款倒推，"
                                 "金额并非事实，占比才是",
    "event-dated-as-of": "1.x 只说明该事件在评估日已知：日期记为评估日",
    "exposure-id": "1.x 只有一笔贷款，没有合同编号",
    "product": "1.x 没有产品类型：按贷款（流动资金贷款）处理，非债券，第九条第三款如 1.x 一样适用",
    "currency": "1.x 金额以人民币计",
    "origination-date": "1.x 没有发放日：取记录所隐含的最早日期（无规则读取；2.1.0 以其为界，"
                        "拒绝早于它的还款、到期或合同调整，转换记录中没有）",
    "maturity-date": "1.x 没有到期日：取记录所隐含的最晚日期（2.0.0 无规则读取）",
    "modification-date": "重组的合同调整日假设为 1.x 观察期起始日（调整后首个还款日）的前一天；"
                         "无起始日或起始日晚于评估日时取评估日",
    "modification-measure": "1.x 只说明已重组（一项让步），未说明具体措施",
    "restructured-means-difficulty": "1.x 的“已重组”即对处于财务困难的债务人作出让步（第十七条）",
    "schedule-from-counts": "按 1.x 观察期以来已还期数重建还款计划：取能容纳这些期数的最短周期（1、2、3、6、"
                            "12个月），每期按时足额归还",
    "restructured-again": "1.x 说明还款违约后再次重组：记录首次重组、一期未还款项与第二次重组，日期自观察期起始日推算",
    "nonperforming-before-unknown": "1.x 未说明重组前是否为不良：按审慎原则假设为不良（第二十条：观察期内不得上调）",
    "upgrade-history-from-counts": "按 1.x 的上调计数重建还款记录：欠款于正常还款月数之前结清，其后各期按时归还",
    "no-external-rating": "1.x 没有外部评级：外部评级大幅下调规则（第十条第三款）无法触发",
    "no-group": "1.x 没有集团信息：集团风险传染预警无法触发",
    "difficulty-resolution-unknown": "1.x 未说明信贷人员是否认定财务困难已解除（第二十条退出）：留空，观察期不结束",
    "cross-bank-share-unknown": "1.x 未给出在所有机构逾期90天以上的占比：20%规则只读取本行债权",
    "cross-bank-share-inconsistent": "按本笔贷款自身的逾期天数与余额，无法得出与 1.x 占比一致的征信金额"
                                     "（不超过2.0记录可容纳的1e15）：留空，"
                                     "20%规则只读取本行债权",
    "nonperforming-where-unknown": "1.x 说明在本行或他行有不良，且本行亦有不良：他行是否有不良无法得知",
    "no-ebit": "1.x 只有 EBITDA 没有 EBIT（EBITDA 会高估）：无法计算基于 EBIT 的利息保障倍数",
    "no-cfads": "1.x 没有可用于偿债的现金流：无法计算偿债覆盖率（DSCR）",
    "no-accrued-interest": "1.x 没有应计利息：债权金额仅为本金余额",
    "past-due-amount": "1.x 只有逾期天数，没有逾期金额",
    "no-accounting": "信用减值、阶段与预期信用损失由财务部门认定，1.x 没有：信用减值相关底线（第十条第二款、"
                     "第十一条第三款）无法判断",
    "restructured-unknown": "1.x 未说明贷款是否重组：不记录合同调整",
    "no-payment-history": "1.x 没有还款记录（或没有观察期起始日）：上调条件（第十三条）找不到已还款期次，"
                          "观察期无法结束",
    "schedule-frequency": "没有任何还款周期（1、2、3、6、12个月）能容纳 1.x 的已还期数：只记录首个还款日",
    "schedule-not-yet-due": "1.x 观察期起始日不早于评估日：记录其首两期还款（相隔3个月），均尚未偿还",
    "restructured-again-undated": "1.x 说明违约后再次重组，但没有观察期起始日可确定任一次重组的日期：只记录一次重组，"
                                  "再次重组规则不触发",
    "bank-share-not-carried": "2.0 根据各债项自身的分类计算本行不良债权占比；1.x 只有一笔贷款，"
                              "债务人在本行的其他债权未知",
    "key-client-not-carried": "2.0 记录中没有“重点客户”标记：2.0 决策看不到它",
    "exporter-not-carried": "2.0 记录中没有“出口企业”标记：2.0 决策看不到它",
    "tech-startup-not-carried": "2.0 记录中没有“科技初创企业”标记：2.0 决策看不到它",
    "repayment-willingness-declining-not-carried": "2.0 记录中没有“还款意愿下降”事件：2.0 决策看不到它",
    "government-support-available-not-carried": "2.0 记录中没有“可获政府支持”事件：2.0 决策看不到它",
    "field-not-read": "1.x 政策不读取该字段，转换只携带 1.x 读取的事实：该字段不在 2.0 记录中",
    "rating-undated": "1.x 没有内部评级日期：留空，要求评级为最新的政策（2.1.0 的 internal_rating_stale）"
                      "对每条转换记录预警",
    "bureau-undated": "1.x 没有征信报告日期：留空，要求征信报告为最新的政策（2.1.0 的 bureau_report_stale）"
                      "对每条转换记录预警",
    "debt-elsewhere-unknown": "1.x 在所有机构逾期90天以上的占比为0：逾期金额为0（事实），他行债务未知，留空",
    "upgrade-counts-not-carried": "已重组贷款的还款计划按观察期重建：1.x 的上调计数（连续正常还款期数、正常还款月数）"
                                  "不予携带，2.0 的上调条件（第十三条）读取还款记录",
}


def tally(conversions: Iterable[Sequence[Note]]) -> dict[str, dict[str, Any]]:
    """Records per note code, with its kind and reason (the first seen): what a comparison rests on."""
    counts: Counter[str] = Counter()
    first: dict[str, Note] = {}
    for notes in conversions:
        for code in dict.fromkeys(n.code for n in notes):
            counts[code] += 1
        for n in notes:
            first.setdefault(n.code, n)
    order = {"assumed": 0, "unknown": 1, "not_carried": 2}
    return {code: {"kind": first[code].kind, "field": first[code].field, "records": counts[code],
                   "reason": REASONS.get(code, first[code].reason), "reason_zh": REASONS_ZH[code]}
            for code in sorted(counts, key=lambda c: (order[first[c].kind], -counts[c], c))}


# ------------------------------------------------------------------ many records


@dataclass
class Converted:
    """Every record of a source: converted (``conversions``) or rejected, each under its 1-based row."""

    rows_read: int
    conversions: list[tuple[int, Conversion]]  # (row, conversion) of the converted records
    rejects: list[dict[str, Any]]

    @property
    def converted(self) -> int:
        return len(self.conversions)

    def assumptions(self) -> dict[str, dict[str, Any]]:
        return tally(c.notes for _, c in self.conversions)

    def summary(self) -> dict[str, Any]:
        return {"rows_read": self.rows_read, "converted": self.converted, "rejected": len(self.rejects),
                "assumptions": self.assumptions()}


def convert_all(items: Iterable[tuple[int, Any, list[dict[str, str]]]], as_of: str | None = None) -> Converted:
    """Convert ``(row, record, read problems)`` items; a row with problems, or not a 1.x record, is a reject."""
    done: list[tuple[int, Conversion]] = []
    rejects: list[dict[str, Any]] = []
    n = 0
    seen: dict[str, tuple[str, int]] = {}  # client id (id_key) -> (id as written, row)
    for row, record, read_problems in items:
        n += 1
        problems = read_problems
        cid = record.get("client_id") if isinstance(record, dict) else None
        cid = cid if isinstance(cid, str) and cid else None
        if not problems:
            conversion = convert_record(record, as_of)
            problems = conversion.problems
        key = id_key(cid) if cid is not None else None
        if not problems and key and key in seen:
            problems = [_problem("client_id", "duplicate-id", repeated_id(str(cid), *seen[key]))]
        if problems:
            rejects.append({"row": row, "client_id": cid, "problems": problems})
            continue
        if key:
            seen[key] = (str(cid), row)
        done.append((row, conversion))
    if len(done) + len(rejects) != n:  # every row is converted or rejected: a contract, not a hope
        raise AssertionError(f"accounting broken: {n} read, {len(done)} converted, {len(rejects)} rejected")
    return Converted(n, done, rejects)


def json_items(data: bytes, lines: bool) -> list[tuple[int, Any, list[dict[str, str]]]]:
    """The records of a JSON document (one record) or of JSON Lines, each with its read problems and line.

    A blank line of JSON Lines (an editor's after the last record, say) is no row, as batch reads it;
    the other rows keep their line numbers."""
    from ..policy.loader import JSONInputError, parse_json_text

    chunks = data.splitlines() if lines else [data]
    out: list[tuple[int, Any, list[dict[str, str]]]] = []
    for row, raw in enumerate(chunks, 1):
        if lines and not raw.strip():
            continue
        try:
            out.append((row, parse_json_text(raw), []))
        except JSONInputError as exc:
            out.append((row, None, [_problem(p or "(line)", code, msg) for code, p, msg in exc.problems]))
    return out


def table_items(table: Any, policy: Any = None) -> list[tuple[int, Any, list[dict[str, str]]]]:
    """The 1.x records of a portfolio table (CSV, Parquet, Excel or JSON Lines), under their input rows;
    rows the table could not read are items with their problems."""
    from ..portfolio.batch import row_records

    frame = table.frame
    rows = (table.positions + 1).tolist() if table.positions is not None else list(range(1, len(frame) + 1))
    if table.offsets is not None and table.source is not None:  # JSON Lines: each record as its line holds it
        data = table.source.read_bytes()
        records = []
        for o in table.offsets.tolist():
            end = data.find(b"\n", int(o))
            records.append(json_items(data[int(o):end if end >= 0 else len(data)], lines=False)[0][1])
    else:
        records = list(row_records(policy, frame, table.text, lists=("financials",)))
    items = [(r, rec, []) for r, rec in zip(rows, records, strict=True)]
    items += [(p.row + 1, None, [_problem(p.path or "(row)", p.code, p.message)]) for p in table.problems]
    return sorted(items, key=lambda i: i[0])
