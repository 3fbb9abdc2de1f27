"""One diagnostic type for every problem a user can cause.

Policy authors, CI pipelines and calling systems all see the same record: a
stable ``code`` to assert on, a severity, a message that quotes what was found,
the place (file, line, column, path inside the document, rule id) and a hint.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from .frozen import Frozen, field

Severity = Literal["error", "warning", "info"]

_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate a misspelt name most likely means, if one is close enough."""
    import difflib  # only when something is misspelt: not on every start

    match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """The hint for a misspelt name: the closest candidate, if one is close enough."""
    match = closest(name, candidates)
    return f"did you mean '{match}'?" if match else None


class Diagnostic(Frozen):
    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    path: str | None = None
    rule: str | None = None
    hint: str | None = None
    severity: Severity = "error"

    def render(self) -> str:
        """``file:line:col: code: message (hint)`` -- the form editors and CI parse.

        A problem with no place (an unknown policy id on the command line) starts at its severity: a
        made-up place would send the reader looking for a file that is not there."""
        place = self.file or ("<input>" if self.line is not None else "")
        if self.line is not None:
            place += f":{self.line}"
            if self.column is not None:
                place += f":{self.column}"
        from .safetext import printable  # a line end inside a value quoted by the message is shown, not obeyed

        text = f"{place + ': ' if place else ''}{self.severity}: {self.code}: {printable(self.message)}"
        if self.path:
            text += f" [at {printable(self.path)}]"
        if self.hint:
            text += f"\n    hint: {printable(self.hint)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.as_dict().items() if v is not None}

    def sort_key(self) -> tuple[Any, ...]:
        return (
            self.file or "",
            self.line if self.line is not None else 10**9,
            self.column or 0,
            _SEVERITY_ORDER[self.severity],
            self.code,
            self.message,
        )


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sort by place and drop exact repeats (one root cause is reported once)."""
    seen: set[Diagnostic] = set()
    out = []
    for d in sorted(diags, key=Diagnostic.sort_key):
        if d not in seen:
            seen.add(d)
            out.append(d)
    return out


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diags)


class PolicyEngineError(Exception):
    """Base of every error the engine raises on purpose; carries diagnostics."""

    exit_code = 1

    def __init__(self, diagnostics: Sequence[Diagnostic]):
        self.diagnostics = sort_diagnostics(diagnostics)
        first = self.diagnostics[0].render() if self.diagnostics else "unknown error"
        more = len(self.diagnostics) - 1
        super().__init__(first + (f" (and {more} more)" if more > 0 else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its diagnostics, not from the message: an error a Dask worker raises reaches the
        # client whole (its problems, its class and so its exit code).
        return (type(self), (self.diagnostics,))


class PolicyError(PolicyEngineError):
    """The policy (or a policy test file) is invalid: exit code 4."""

    exit_code = 4


class InputError(PolicyEngineError):
    """The client data is invalid: exit code 3, no decision is produced."""

    exit_code = 3


class UsageError(PolicyEngineError):
    """The request cannot be served as asked (unknown policy id, no version in force): exit 2."""

    exit_code = 2


class DiagnosticSink(Frozen, frozen=False):
    """Collects diagnostics for one file so every problem is reported at once."""

    file: str | None = None
    items: list[Diagnostic] = field(default_factory=list)

    def add(self, code: str, message: str, **kw: Any) -> None:
        kw.setdefault("file", self.file)
        self.items.append(Diagnostic(code=code, message=message, **kw))

    @property
    def ok(self) -> bool:
        return not has_errors(self.items)
