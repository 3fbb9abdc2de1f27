"""A policy as a caller names it (an id, a file, a compiled policy), resolved per decision day.

Every surface (``decide``, ``batch``, Dask, ``impact``, the Python API) picks the version a client
is decided under through :class:`PolicyRef`: the version in force on the client's day, or none
(``no-version-in-force``), never another one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..diagnostics import Diagnostic, UsageError

if TYPE_CHECKING:
    import datetime

    from ..policy.compiler import CompiledPolicy
    from ..policy.registry import Registry
    from .evaluate import Decider

NO_VERSION = "no-version-in-force"


class PolicyRef:
    """A policy as a caller names it, resolved per decision day.

    ``policy`` is an id (the version in force on each client's day), a policy file path, or a
    compiled policy; ``version`` pins a version of an id. The registry is read when the first
    client needs it, each version is compiled once, and each compiled policy gets one
    :class:`~policy_engine.decide.evaluate.Decider`.
    """

    def __init__(self, policy: str | Path | CompiledPolicy, version: str | None = None,
                 registry: str | Path | Registry | None = None,
                 choose: Callable[[str | None], CompiledPolicy] | None = None):
        from ..policy.compiler import CompiledPolicy

        self.name = policy.id if isinstance(policy, CompiledPolicy) else str(policy)
        self.version = version
        self._registry_arg = registry
        self._registry: Registry | None = None
        self._pinned: CompiledPolicy | None = None
        self._choose = choose
        self._by_day: dict[str | None, CompiledPolicy | UsageError] = {}
        self._deciders: dict[int, Decider] = {}
        if choose is not None:
            return
        if isinstance(policy, CompiledPolicy):
            if version is not None and version != policy.version:
                raise UsageError([Diagnostic("unknown-version", f"the policy given is version {policy.version}, "
                                                                f"not {version}")])
            self._pinned = policy
            return
        path = Path(policy)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if not path.is_file():
                raise UsageError([Diagnostic("file-missing", f"policy file not found: {policy}", file=str(policy))])
            if version is not None:
                raise UsageError([Diagnostic("bad-option", "--policy-version applies to a policy id, not a file")])
            from ..policy.registry import load_policy

            self._pinned = load_policy(path)

    @property
    def pinned(self) -> CompiledPolicy | None:
        """The one policy every client is decided under, when the reference pins one (a file, a compiled
        policy, or an id with a version)."""
        if self._pinned is None and self._choose is None and self.version is not None:
            self._pinned = self.registry().select(self.name, version=self.version)
        return self._pinned

    def registry(self) -> Registry:
        from ..policy.registry import Registry

        if self._registry is None:
            arg = self._registry_arg
            self._registry = arg if isinstance(arg, Registry) else Registry(arg)
        return self._registry

    def check(self) -> None:
        """Raise now what would refuse every client (an unknown id or version, a missing registry): a process
        that decides for a long time (``decide --stream``) says so when it starts, not once per line."""
        if self._choose is not None or self.pinned is not None:
            return
        headers = self.registry().headers()
        if not any(h is not None and h.id == self.name for h in headers):
            try:
                self.registry().select(self.name)  # its error names the id, and the one meant
            except UsageError as e:
                if not all(d.code == NO_VERSION for d in e.diagnostics):
                    raise  # (none in force today: the lines' own days decide, as for_day_or_refusal has it)

    def for_day(self, day: str | None) -> CompiledPolicy:
        """The policy a client decided on ``day`` (None: today) is decided under; raises
        :class:`UsageError` (``no-version-in-force``) when no version is in force that day."""
        pinned = self.pinned
        if pinned is not None:
            return pinned
        chosen = self._by_day.get(day)
        if chosen is None:
            try:
                chosen = self._choose(day) if self._choose is not None else \
                    self.registry().select(self.name, as_of=day)
            except UsageError as e:
                if not any(d.code == NO_VERSION for d in e.diagnostics):
                    raise  # an unknown id or a missing registry concerns every client: the run stops
                chosen = e
            self._by_day[day] = chosen
        if isinstance(chosen, UsageError):
            raise UsageError(list(chosen.diagnostics))
        return chosen

    def for_day_or_refusal(self, day: str | None) -> CompiledPolicy | UsageError:
        """:meth:`for_day` for a run over many clients: a day with no version in force is those clients'
        problem, returned (each is rejected with it, the run goes on); any other error (an unknown id or
        version, a missing registry) concerns every client and is raised: the run stops (exit 2), no row
        is "rejected" for it."""
        try:
            return self.for_day(day)
        except UsageError as e:
            if all(d.code == NO_VERSION for d in e.diagnostics):
                return e
            raise

    def decider(self, policy: CompiledPolicy) -> Decider:
        from .evaluate import Decider

        found = self._deciders.get(id(policy))
        if found is None:
            found = self._deciders[id(policy)] = Decider(policy)
        return found


def as_ref(policy: str | Path | CompiledPolicy | PolicyRef, version: str | None = None,
           registry: str | Path | Registry | None = None) -> PolicyRef:
    return policy if isinstance(policy, PolicyRef) else PolicyRef(policy, version, registry)


def check_day(as_of: str | None, option: str = "--as-of") -> None:
    """A decision date given to a run is a date YYYY-MM-DD (a usage error otherwise)."""
    from .inputs import parse_date

    if as_of is not None and parse_date(as_of) is None:
        raise UsageError([Diagnostic("bad-date", f"{as_of!r} is not a date YYYY-MM-DD", path=option)])


def day_problem(value: Any, file: str | None = None) -> Diagnostic:
    """Why a client's ``as_of`` that is no date is refused before any version reads the client: under a policy
    id the version is chosen by that day, so no version's checks (nor the kind of record it reads) apply."""
    return Diagnostic("bad-field", f"expected a date YYYY-MM-DD, found {value!r}", file=file, path="as_of",
                      hint="the version in force on the client's as_of decides it: correct the date, or give the "
                           "day with --as-of")


def unreadable_day(record: Any, as_of: str | None, file: str | None = None) -> Diagnostic | None:
    """:func:`day_problem` of a record whose own ``as_of`` is given but is no date (no ``as_of`` of the run)."""
    from .inputs import parse_date

    if as_of is None and isinstance(record, dict) and record.get("as_of") is not None \
            and parse_date(record["as_of"]) is None:
        return day_problem(record["as_of"], file)
    return None


def selection_day(record: Any, as_of: str | None) -> str | None:
    """The day a client's version is chosen for: the run's ``as_of``, else the client's valid ``as_of``
    (a bad one is the decision's own problem, reported as such), else None (today)."""
    from .inputs import parse_date

    if as_of is not None:
        return as_of
    if isinstance(record, dict) and parse_date(record.get("as_of")) is not None:
        return str(record["as_of"])
    return None


def _json_kind(value: Any) -> str:
    """A JSON value as its writer knows it (null, 20260930, true, a list), not by its Python type (NoneType)."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, int | float):
        return repr(value)
    return {list: "a list", dict: "an object", str: "a long text"}.get(type(value), "a value")


def dated_before(record: Any, as_of: str | None) -> tuple[str, str] | None:
    """(code, words) of the warning for a record decided as of another day than its own ``as_of``: its facts (days
    past due, balances, the payments made) stood on its date. Later, they are read as if they stood on the decision
    day (an instalment due in between reads as unpaid); earlier, they were not known yet. A record whose own
    ``as_of`` is no date is said too (``--as-of`` decided it without a check of when its facts stood). None when
    the record is decided as of its own date or the run gives none."""
    from .inputs import parse_date

    day = parse_date(as_of)
    if day is None or not isinstance(record, dict):
        return None
    if "as_of" not in record:  # as a null one: decided by today's date, the same record decides otherwise tomorrow
        return ("record-as-of-unread", f"the record has no as_of: it was decided as of {day.isoformat()} with no "
                "check of the day its facts stood on; write its as_of as YYYY-MM-DD")
    given, own = record["as_of"], parse_date(record["as_of"])
    if own is None:
        shown = repr(given) if isinstance(given, str) and len(given) <= 40 else _json_kind(given)
        return ("record-as-of-unread", f"the record's own as_of {shown} is no date YYYY-MM-DD: it was decided as of "
                f"{day.isoformat()} with no check of the day its facts stood on; write its as_of as YYYY-MM-DD")
    if own == day:
        return None
    if own < day:
        return ("as-of-after-record", f"the record is dated {own.isoformat()} and decided as of {day.isoformat()}, "
                f"{_days(day - own)} later: its facts (days past due, balances, the payments made) are read as if "
                f"they stood on {day.isoformat()}, so an instalment due in between reads as unpaid; decide it as of "
                f"its own date, or give its facts as of {day.isoformat()}")
    return ("as-of-before-record", f"the record is dated {own.isoformat()} and decided as of {day.isoformat()}, "
            f"{_days(own - day)} before: its facts (days past due, balances, the payments made) stood on "
            f"{own.isoformat()} and were not known on {day.isoformat()}; decide it as of its own date, or give its "
            f"facts as of {day.isoformat()}")


def _days(span: datetime.timedelta) -> str:
    return f"{span.days} day" if span.days == 1 else f"{span.days} days"
