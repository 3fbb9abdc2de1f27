"""Project configuration: the policies folder, the decision store and default formats, set once.

Read from ``policy-engine.toml``, or the ``[tool.policy-engine]`` table of ``pyproject.toml``,
in the working directory or the nearest parent (the search stops at a repository root, a
directory holding ``.git``), or from the file ``--config`` / ``$POLICY_ENGINE_CONFIG`` names::

    policies = "policies"          # relative to the configuration file
    audit-db = "var/audit.db"
    format = "json"                # every command that offers it
    [formats]                      # ([tool.policy-engine.formats] in pyproject.toml)
    diff = "markdown"
    "audit list" = "text"

Precedence, highest first: the command-line option, the environment variable
(``POLICY_ENGINE_POLICIES``, ``POLICY_ENGINE_AUDIT_DB``), the configuration file, the built-in
default (``./policies``, ``./audit.db``; text on a terminal, json otherwise). A misspelt key
or a value of the wrong type is an error naming the file and line, never silently ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FILE_NAME = "policy-engine.toml"
ENV_VAR = "POLICY_ENGINE_CONFIG"
TABLE = "policy-engine"  # [tool.policy-engine] in pyproject.toml
KEYS = ("policies", "audit-db", "format", "formats")


@dataclass(frozen=True)
class Config:
    """The settings a configuration file gives (None: not set there); ``file`` is where they came from."""

    file: Path | None = None
    policies: Path | None = None
    audit_db: Path | None = None
    format: str | None = None
    formats: dict[str, str] = field(default_factory=dict)

    def format_for(self, command: str) -> tuple[str | None, str]:
        """The configured format of ``command`` ('diff', 'audit list') and the key that set it."""
        if command in self.formats:
            return self.formats[command], f"formats.{command}"
        return self.format, "format"


def find(start: Path) -> Path | None:
    """The configuration file that applies in ``start``: the nearest one up to the repository root."""
    here = start.resolve()
    for folder in (here, *here.parents):
        own = folder / FILE_NAME
        if own.is_file():
            return own
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _has_table(pyproject):
            return pyproject
        if (folder / ".git").exists():
            return None
    return None


def _has_table(pyproject: Path) -> bool:
    # A plain text look first: most pyproject.toml files have no such table and need no parsing.
    try:
        text = pyproject.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return re.search(r"^\s*\[\s*tool\s*\.\s*(\"policy-engine\"|policy-engine)\s*[.\]]", text, re.M) is not None


def load(explicit: str | Path | None = None, start: Path | None = None) -> Config:
    """The configuration from ``explicit`` (or ``$POLICY_ENGINE_CONFIG``), else the one found from ``start``."""
    from .diagnostics import Diagnostic, UsageError  # only on this path: start-up stays light

    named = _named(explicit)
    if named is not None:
        path = Path(named)
        if not path.is_file():
            raise UsageError([Diagnostic("config-missing", f"configuration file '{path}' does not exist",
                                         hint=f"pass --config FILE or set {ENV_VAR} to an existing file")])
    else:
        found = find(start or Path.cwd())
        if found is None:
            return Config()
        path = found
    return parse(path)


def asks_json(explicit: str | Path | None = None, start: Path | None = None) -> bool:
    """Whether the configuration file that applies sets ``format = "json"``, read leniently: a problem of the file
    itself (an unknown key, a blank variable) is then said as JSON, as a pipeline that set it parses stderr. A file
    that cannot be found or parsed says no."""
    import tomllib

    named = _named(explicit)
    path = Path(named) if named else find(start or Path.cwd())
    if path is None:
        return False
    try:
        data = _own_table(path, tomllib.loads(path.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data, dict) and data.get("format") == "json"


def _named(explicit: str | Path | None) -> str | Path | None:
    """The configuration file named on the command line, else by ``$POLICY_ENGINE_CONFIG``; None: found by search."""
    return explicit or os.environ.get(ENV_VAR) or None


def _own_table(path: Path, data: Any) -> Any:
    """The settings of a file: all of policy-engine.toml, the [tool.policy-engine] table of a pyproject.toml."""
    return data.get("tool", {}).get(TABLE, {}) if path.name == "pyproject.toml" else data


def parse(path: Path) -> Config:
    """Read and check one configuration file; every problem is reported with its line."""
    import tomllib

    from .diagnostics import Diagnostic, UsageError, did_you_mean

    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError([Diagnostic("config-unreadable", f"cannot read the configuration: {e}",
                                     file=str(path))]) from None
    except tomllib.TOMLDecodeError as e:
        line = re.search(r"line (\d+)", str(e))
        raise UsageError([Diagnostic("config-syntax", f"not valid TOML: {e}", file=str(path),
                                     line=int(line[1]) if line else None)]) from None
    data = _own_table(path, data)
    prefix = f"tool.{TABLE}." if path.name == "pyproject.toml" else ""
    problems: list[Any] = []

    def bad(key: str, message: str, hint: str | None = None) -> None:
        problems.append(Diagnostic("config-invalid", message, file=str(path), line=_line(text, key.split(".")[-1]),
                                   path=prefix + key, hint=hint))

    if not isinstance(data, dict):
        bad("", f"[{prefix.rstrip('.')}] must be a table")
        data = {}
    for key in data:
        if key not in KEYS:
            bad(key, f"unknown key '{key}'", did_you_mean(key, KEYS) or f"keys: {', '.join(KEYS)}")
    base = path.parent

    def folder(key: str) -> Path | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            bad(key, f"'{key}' must be a path (text), found {value!r}")
            return None
        return base / value

    fmt = data.get("format")
    if fmt is not None and not isinstance(fmt, str):
        bad("format", f"'format' must be text such as \"json\", found {fmt!r}")
        fmt = None
    formats = data.get("formats", {})
    if not isinstance(formats, dict) or not all(isinstance(v, str) for v in formats.values()):
        bad("formats", "'formats' must be a table of command = \"format\" (e.g. diff = \"markdown\")")
        formats = {}
    config = Config(path, folder("policies"), folder("audit-db"), fmt, {str(k): v for k, v in formats.items()})
    if problems:
        raise UsageError(problems)
    return config


def _line(text: str, key: str) -> int | None:
    """The line that sets ``key`` (TOML parsers give values, not places)."""
    pattern = re.compile(rf"^\s*(\"{re.escape(key)}\"|{re.escape(key)})\s*=|^\s*\[[^\]]*\b{re.escape(key)}\s*\]")
    for i, line in enumerate(text.splitlines(), 1):
        if pattern.search(line):
            return i
    return None


def check_format(config: Config, command: str, choices: tuple[str, ...]) -> str | None:
    """The configured default format of ``command`` when it offers it.

    A format set for the command by name must be one it has (an error otherwise); the general
    ``format`` applies only to the commands that offer it.
    """
    from .diagnostics import Diagnostic, UsageError

    value, key = config.format_for(command)
    if value is None:
        return None
    if value in choices:
        return value
    if key == "format":
        return None
    raise UsageError([Diagnostic("config-invalid", f"'{command}' has no format '{value}'",
                                 file=str(config.file), line=_line(config.file.read_text(encoding="utf-8"), command)
                                 if config.file else None, path=key,
                                 hint=f"one of {', '.join(choices)}")])


def check_commands(config: Config, commands: list[str], formats: tuple[str, ...] = (),
                   offered: Mapping[str, tuple[str, ...]] | None = None) -> None:
    """A [formats] entry must name a command and a format it offers (``offered``: each command's), and ``format`` be
    one some command offers (``formats``): a misspelt one would set nothing, silently, and a format the command
    lacks failed only when that command ran (``diff = "junit"`` passed validate in CI)."""
    from .diagnostics import Diagnostic, UsageError, did_you_mean

    if config.file is None:
        return
    if formats and config.format is not None and config.format not in formats:
        text = config.file.read_text(encoding="utf-8")
        raise UsageError([Diagnostic("config-invalid", f"no command has the format '{config.format}'",
                                     file=str(config.file), line=_line(text, "format"), path="format",
                                     hint=did_you_mean(config.format, formats) or f"one of {', '.join(formats)}")])
    unknown = [name for name in config.formats if name not in commands]
    if unknown:
        text = config.file.read_text(encoding="utf-8")
        raise UsageError([Diagnostic("config-invalid", f"[formats] names no command '{name}'", file=str(config.file),
                                     line=_line(text, name), path=f"formats.{name}",
                                     hint=did_you_mean(name, commands) or f"commands: {', '.join(commands)}")
                          for name in unknown])
    if offered is None:
        return
    wrong = [name for name, value in config.formats.items() if name in commands and value not in offered.get(name, ())]
    if wrong:
        text = config.file.read_text(encoding="utf-8")
        raise UsageError([_no_such_format(config, text, name, offered) for name in wrong])


def _no_such_format(config: Config, text: str, name: str, offered: Mapping[str, tuple[str, ...]]) -> Any:
    """A [formats] entry its command cannot take: a format it lacks, a command without --format, or a group (which
    sets nothing: 'audit' is not 'audit list')."""
    from .diagnostics import Diagnostic

    value = config.formats[name]
    if name not in offered:
        members = [c for c in offered if c.startswith(f"{name} ")]
        message, hint = (f"[formats] names the group '{name}', which sets nothing",
                         f"name each command: {', '.join(members)}")
    elif not offered[name]:
        message, hint = f"'{name}' has no --format (so no format '{value}')", "remove the entry"
    else:
        message, hint = f"'{name}' has no format '{value}'", f"one of {', '.join(offered[name])}"
    return Diagnostic("config-invalid", message, file=str(config.file), line=_line(text, name),
                      path=f"formats.{name}", hint=hint)
