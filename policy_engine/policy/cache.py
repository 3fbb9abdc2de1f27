"""A small on-disk memo of policy and module texts that already passed schema validation.

Schema validation is a pure function of the text and the schema, and importing
and running jsonschema costs more than the rest of a ``decide`` process. A text
seen valid before (same sha256, same schema, same engine version) skips that
stage; every semantic check still runs. A module a policy imports is a text of
its own (checked against the module schema): without it in the memo, every
``decide`` under a policy with imports would import jsonschema again. The cache
is an optimisation only: any failure to read or write it is ignored.
Disable with ``POLICY_ENGINE_CACHE=0``; move it with ``POLICY_ENGINE_CACHE_DIR``.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

from ..version import __version__
from .schemas import schema_path


def _enabled() -> bool:
    return os.environ.get("POLICY_ENGINE_CACHE", "1") not in ("0", "false", "no")


def cache_dir() -> Path:
    explicit = os.environ.get("POLICY_ENGINE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "policy_engine"


@cache
def _schema_digest(schema: str) -> str:
    return hashlib.sha256(schema_path(schema).read_bytes()).hexdigest()[:16]


def _marker(text: str, schema: str) -> Path:
    key = hashlib.sha256(f"{__version__}\0{_schema_digest(schema)}\0{text}".encode()).hexdigest()
    return cache_dir() / "schema-valid" / key


def known_schema_valid(text: str, schema: str = "policy") -> bool:
    """Whether ``text`` passed the check against schema ``schema`` (policy, module) before."""
    if not _enabled():
        return False
    try:
        return _marker(text, schema).is_file()
    except OSError:
        return False


def remember_schema_valid(text: str, schema: str = "policy") -> None:
    if not _enabled():
        return
    try:
        marker = _marker(text, schema)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    except OSError:
        pass
