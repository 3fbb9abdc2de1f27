"""A folder of long tables recorded as ``decide`` records each debtor.

The tables are decided column-wise; the store keeps what ``decide`` would have been sent and would
have answered. So each decided debtor's nested record is rebuilt from the tables, written as a
line (the lines, hashed in order, are the batch's input: the same tables are the same batch) and
decided by ``decide``'s own decider, whose grade must be the tables' (two paths that disagree are
an engine fault, never a record). Deciding the rebuilt records one by one costs a fraction of
reading them back as a JSON Lines batch: no second check, no second column-wise evaluation.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import pandas as pd

    from ..policy.compiler import CompiledPolicy


def write_lines(policy: CompiledPolicy, folder: Path, decisions: pd.DataFrame, path: Path, encoding: str = "utf-8"
                ) -> None:
    """The nested record of each debtor of ``decisions`` (the tables' decisions), a line each, in their order."""
    from ..safetext import json_line
    from .long_tables import nested_records

    with path.open("wb") as fh:
        for record in nested_records(policy, folder, decisions["client_id"].astype(str).tolist(), encoding):
            fh.write(json_line(orjson.dumps(record)) + b"\n")


def decided_lines(policy: CompiledPolicy, path: Path, decisions: pd.DataFrame, as_of: str | None
                  ) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(full decision, record) of each line of ``path`` (written by :func:`write_lines`), decided as
    ``decide`` decides it; each checked against the tables' decision of the same debtor."""
    from ..decide.evaluate import Decider
    from ..diagnostics import InputError

    decider = Decider(policy)
    ids = decisions["client_id"].astype(str).tolist()
    grades = decisions["grade"].astype(str).tolist()
    with path.open("rb") as fh:
        for line, cid, grade in zip(fh, ids, grades, strict=True):
            record = orjson.loads(line)  # our own bytes: no duplicate keys, nothing hostile
            try:
                decision = decider.decide(record, as_of=as_of)
            except InputError as exc:
                raise AssertionError(f"the record rebuilt from the tables for {cid!r} is refused by decide: "
                                     f"{exc.diagnostics[0].render()}") from None
            if decision["client_id"] != cid or decision["classification"]["grade"] != grade:
                raise AssertionError(f"the record rebuilt from the tables for {cid!r} was not decided as the tables "
                                     f"were ({decision['classification']['grade']} against {grade})")
            yield decision, record


__all__ = ["decided_lines", "write_lines"]
