"""CSV outputs made safe to open in a spreadsheet (``--csv-for-excel``).

A client id or a message quoting one is the caller's text. In a CSV opened in Excel, a cell that starts
with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return before one) is run as a formula:
``=HYPERLINK(...)`` in a client id becomes a link on a risk officer's screen. Such a cell gets a
leading apostrophe, which Excel shows as text. Numbers are left alone (``-0.5`` is a number in Excel
too), and the default stays the data as decided: a program reading the file back would see the
apostrophe, so it is asked for, not imposed.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def formula_cell(cell: str) -> bool:
    """Whether a spreadsheet would read ``cell`` as a formula: it starts like one and is not a number."""
    if not cell.startswith(_FORMULA_STARTS):
        return False
    try:
        float(cell)
    except ValueError:
        return True
    return False


def guard_csv(path: Path) -> int:
    """Rewrite the CSV at ``path`` with every formula cell prefixed by an apostrophe; the number of cells changed.

    Read and written row by row (a decisions table of a million rows is not held), into a file beside it that
    replaces it whole: an interrupted run leaves the file as it was decided.
    """
    changed = 0
    csv.field_size_limit(2**31 - 1)  # a rejects row's problems_json may pass the 128 KB default
    with path.open(newline="", encoding="utf-8") as src, tempfile.NamedTemporaryFile(
            "w", newline="", encoding="utf-8", dir=path.parent, prefix=f".{path.name}.", delete=False) as dst:
        try:
            writer = csv.writer(dst, lineterminator="\n")
            for row in csv.reader(src):
                for i, cell in enumerate(row):
                    if formula_cell(cell):
                        row[i] = "'" + cell
                        changed += 1
                writer.writerow(row)
        except BaseException:
            dst.close()
            os.unlink(dst.name)
            raise
    os.replace(dst.name, path)
    return changed


def guard_outputs(paths: Iterable[Path | None]) -> int:
    """:func:`guard_csv` on each CSV among ``paths`` (a folder: the CSV files in it); cells changed in all."""
    changed = 0
    for path in paths:
        if path is None or not path.exists():
            continue
        files = sorted(path.glob("*.csv")) if path.is_dir() else [path] if path.suffix.lower() == ".csv" else []
        for file in files:
            changed += guard_csv(file)
    return changed
