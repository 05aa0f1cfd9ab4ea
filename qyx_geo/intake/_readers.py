"""Readers of facility registers: XLSX, CSV (UTF-8/UTF-16/GBK/GB18030), GeoJSON, GeoPackage.

Private helpers of :mod:`qyx_geo.intake`. Every reader returns a :class:`RawTable`: the cells as
they were (text or numbers, nothing converted yet), one row per data row, indexed by the row
number a person sees in the source (the spreadsheet/line number, or the feature number), so the
intake report can point at it. Anything a reader cannot make sense of becomes a
:class:`~qyx_geo._errors.DataFileError` that names the file, the row where known, and the fix;
no other exception leaves this module.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import logging
import math
import re
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qyx_geo._errors import DataFileError
from qyx_geo.intake._names import count_known_headers, normalise_header

__all__ = ["MAX_COLUMNS", "CellError", "RawTable", "cell_text", "decode_bytes", "parse_count",
           "parse_lonlat", "parse_number", "read_table", "unique_headers"]

logger = logging.getLogger(__name__)

#: How many leading rows are searched for the header row (titles often sit above it).
HEADER_SEARCH_ROWS = 10
#: Most columns a register may fill. Real registers have tens; a row reaching past this is a
#: broken export (or a hostile file) and is refused before any per-column work is done.
MAX_COLUMNS = 1000
#: Columns added by the geo readers: the point of each feature in the file's CRS.
GEOM_X, GEOM_Y, GEOM_NOTE = "__geom_x__", "__geom_y__", "__geom_note__"
#: Reader-made cells: a note for the report, or why the row cannot be used (OSM objects).
ROW_NOTE, ROW_REJECT = "__row_note__", "__row_reject__"
_CSV_SUFFIXES = {".csv", ".txt", ".tsv"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_GEO_SUFFIXES = {".geojson", ".json", ".gpkg"}
#: Systems a geo file may declare that the intake reads as they are (others go to WGS84 first).
_KNOWN_EPSG = {4326, 4490, 4549}


@dataclasses.dataclass(frozen=True)
class RawTable:
    """Cells of a register as read, before any interpretation.

    Attributes
    ----------
    frame
        One column per header (text), one row per data row, index = source row number.
    format
        ``"csv"``, ``"xlsx"``, ``"geojson"`` or ``"gpkg"``.
    encoding
        Text encoding used for CSV (``"utf-8"``, ``"utf-8-sig"``, ``"utf-16"``, ``"gbk"`` or
        ``"gb18030"``); ``None`` for other formats.
    header_row
        Source row number of the header (CSV/XLSX), ``None`` for geo formats.
    crs
        CRS declared by a geo file (e.g. ``"EPSG:4326"``), else ``None``.
    notes
        Things the reader did that the report should mention (blank rows skipped, ...).
    """

    frame: pd.DataFrame
    format: str
    encoding: str | None = None
    header_row: int | None = None
    crs: str | None = None
    notes: tuple[str, ...] = ()


def read_table(path: str | Path, *, sheet: str | int | None = None,
               layer_name: str | None = None, header_words: Iterable[str] = ()) -> RawTable:
    """Read a register file into a :class:`RawTable`, choosing the reader by suffix.

    ``sheet`` picks the worksheet of an XLSX file and ``layer_name`` the layer of a GeoPackage.
    Without them, a workbook with data on several sheets or a GeoPackage with several layers is
    refused with the list to choose from (never a silent first pick). ``header_words`` are
    further header names (compared after :func:`normalise_header`) that mark the header row
    besides the facility fields, for tables of other kinds (e.g. population tables).
    """
    file = Path(path)
    if not file.is_file():
        msg = f"Register file {str(file)!r} does not exist or is not a file; check the path."
        raise DataFileError(msg)
    suffix = file.suffix.lower()
    if suffix == ".xls":
        msg = (f"{file.name}: the old Excel .xls format is not supported; open it in Excel/WPS "
               f"and save it as .xlsx (or as CSV UTF-8).")
        raise DataFileError(msg)
    if sheet is not None and suffix not in _XLSX_SUFFIXES:
        msg = f"{file.name}: sheet={sheet!r} only applies to .xlsx files; drop the sheet option."
        raise DataFileError(msg)
    if layer_name is not None and suffix not in _GEO_SUFFIXES:
        msg = (f"{file.name}: layer_name={layer_name!r} only applies to .gpkg/.geojson files; "
               "drop the layer-name option.")
        raise DataFileError(msg)
    if suffix in _CSV_SUFFIXES:
        return _read_csv(file, header_words)
    if suffix in _XLSX_SUFFIXES:
        return _read_xlsx(file, sheet, header_words)
    if suffix in _GEO_SUFFIXES:
        return _read_geo(file, layer_name)
    msg = (f"{file.name}: unsupported file type {suffix!r}; registers must be .xlsx, .csv, "
           f".geojson or .gpkg.")
    raise DataFileError(msg)


# -- text and tables ---------------------------------------------------------------------------

def decode_bytes(data: bytes, *, file_name: str) -> tuple[str, str]:
    """Decode register bytes, returning ``(text, encoding)``.

    Tries, in order: a UTF-8 or UTF-16 byte-order mark, strict UTF-8, GBK, GB18030 (a superset
    of GBK that also decodes rare characters). Text with NUL bytes is refused as binary.
    """
    if data.startswith(b"\xef\xbb\xbf"):
        candidates = ["utf-8-sig"]
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = ["utf-16"]
    else:
        candidates = ["utf-8", "gbk", "gb18030"]
    for encoding in candidates:
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        if "\x00" in text:
            break
        return text, encoding
    msg = (f"{file_name}: cannot decode the file as UTF-8, UTF-16 or GBK/GB18030 text (or it is a "
           f"binary file with a text suffix). Save it from Excel/WPS as 'CSV UTF-8' and retry.")
    raise DataFileError(msg)


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _header_index(rows: list[list[Any]], header_words: frozenset[str] = frozenset()) -> int:
    """Return the index (in ``rows``) of the header row.

    That is the leading non-blank row naming the most known fields (at least two), else the
    first non-blank row.
    """
    non_blank = [i for i, r in enumerate(rows) if any(not _blank(c) for c in r)]
    if not non_blank:
        return -1
    window = non_blank[:HEADER_SEARCH_ROWS]
    scores = [count_known_headers(rows[i])
              + sum(1 for c in rows[i] if not _blank(c) and normalise_header(c) in header_words)
              for i in window]
    best = max(scores)
    return window[scores.index(best)] if best >= 2 else window[0]


def _second_header_row(upper: list[Any], lower: list[Any]) -> bool:
    """Whether ``lower`` completes ``upper`` as a two-row header (坐标 over 经度 | 纬度).

    Only when every filled cell of ``lower`` is a known header (so no data row is ever taken),
    at least two are, and one sits under a blank (merged) cell of ``upper``.
    """
    filled = [c for c in lower if not _blank(c)]
    if len(filled) < 2 or count_known_headers(filled) != len(filled):
        return False
    return any(not _blank(c) and (i >= len(upper) or _blank(upper[i]))
               for i, c in enumerate(lower))


def _last_filled(row: list[Any]) -> int:
    """Return the index of the last non-blank cell of ``row`` (-1 if blank)."""
    for i in range(len(row) - 1, -1, -1):
        if not _blank(row[i]):
            return i
    return -1


def _trimmed(rows: list[list[Any]], numbers: list[int], *, file_name: str) -> list[list[Any]]:
    """Return the rows without trailing blank cells; refuse one filling > MAX_COLUMNS columns.

    Done first, in one pass over the cells, so no later step works on empty columns.
    """
    out = []
    for row, number in zip(rows, numbers, strict=True):
        last = _last_filled(row)
        if last >= MAX_COLUMNS:
            msg = (f"{file_name}: row {number} fills {last + 1:,} columns; a register may have "
                   f"at most {MAX_COLUMNS:,}. Check the export (a wrong separator or a broken "
                   "file) and keep only the facility columns.")
            raise DataFileError(msg)
        out.append(list(row[:last + 1]))
    return out


def unique_headers(cells: list[Any]) -> list[str]:
    """Return header names for ``cells``: blanks become ``列<n>``, repeats ``name.2``, ``name.3``.

    Linear in the number of cells (each base name remembers its next suffix).

    Examples
    --------
    >>> unique_headers(["名称", None, "名称", "名称.2", "名称"])
    ['名称', '列2', '名称.2', '名称.2.2', '名称.3']
    """
    seen: set[str] = set()
    next_suffix: dict[str, int] = {}
    headers: list[str] = []
    for i, cell in enumerate(cells):
        name = ("" if _blank(cell) else str(cell).strip()) or f"列{i + 1}"
        if name in seen:
            base, k = name, next_suffix.get(name, 2)
            while f"{base}.{k}" in seen:
                k += 1
            name = f"{base}.{k}"
            next_suffix[base] = k + 1
        seen.add(name)
        headers.append(name)
    return headers


def _table_from_rows(rows: list[list[Any]], *, file_name: str, fmt: str,
                     encoding: str | None, numbers: list[int] | None = None,
                     notes: tuple[str, ...] = (), header_words: Iterable[str] = ()) -> RawTable:
    """Build a RawTable from rows of cells.

    ``numbers[i]`` is the source row (line) number of ``rows[i]`` (default ``i + 1``); rows
    left out of a sparse list (XLSX) are blank.
    """
    numbers = list(range(1, len(rows) + 1)) if numbers is None else numbers
    rows = _trimmed(rows, numbers, file_name=file_name)
    h = _header_index(rows, frozenset(normalise_header(w) for w in header_words))
    if h < 0:
        msg = f"{file_name}: the file has no rows; fill in a header row and one row per facility."
        raise DataFileError(msg)
    if h + 1 < len(rows) and _second_header_row(rows[h], rows[h + 1]):
        h += 1
    raw_header = list(rows[h])
    above = list(rows[h - 1]) if h > 0 and numbers[h - 1] == numbers[h] - 1 else []
    if sum(not _blank(c) for c in above) >= 2:
        # Two-row header (e.g. 名称 merged over both rows, 坐标 over 经度/纬度): fill the gaps of
        # the lower row from the upper one.
        raw_header += [None] * (len(above) - len(raw_header))
        raw_header = [a if _blank(c) and i < len(above) and not _blank(a := above[i]) else c
                      for i, c in enumerate(raw_header)]
    width = _last_filled(raw_header) + 1
    headers = unique_headers(raw_header[:width])
    header_row = numbers[h]
    out_notes = list(notes)
    if header_row > 1:
        above_n = header_row - 1
        out_notes.append(f"表头在第 {header_row} 行，其上 {above_n} 行（标题/说明）未作数据 / "
                         f"header found on row {header_row}; the {above_n} row(s) above it "
                         "were treated as a title, not data")
    records: list[list[Any]] = []
    index: list[int] = []
    blank_rows = 0
    previous = header_row
    for i in range(h + 1, len(rows)):
        row = rows[i]
        if all(_blank(c) for c in row):
            continue
        # rows between two filled rows that are blank or missing (sparse XLSX); trailing blank
        # lines after the last filled row are the end of the file, not skipped rows
        blank_rows += numbers[i] - previous - 1
        previous = numbers[i]
        cells = list(row[:width]) + [None] * (width - len(row))
        if any(not _blank(c) for c in row[width:]):
            cells.append("|".join(str(c) for c in row[width:] if not _blank(c)))
        else:
            cells.append(None)
        records.append(cells)
        index.append(numbers[i])
    if blank_rows:
        out_notes.append(f"跳过 {blank_rows} 个空行 / skipped {blank_rows} blank row(s)")
    frame = pd.DataFrame(records, columns=[*headers, "__extra__"],
                         index=pd.Index(index, name="row"), dtype=object)
    return RawTable(frame=frame, format=fmt, encoding=encoding, header_row=header_row,
                    notes=tuple(out_notes))


def _delimiter(text: str, *, default: str) -> str:
    """Choose the field separator that makes the leading lines name the most known headers.

    Registers are recognised by their headers, so this is sturdier than a generic sniffer on
    data whose cells contain commas, semicolons or tabs. Without any known header, fall back
    to :class:`csv.Sniffer`, then to ``default``.
    """
    head = "\n".join(text.splitlines()[: HEADER_SEARCH_ROWS * 2])
    best, best_score = default, 0
    for candidate in (default, *(d for d in ",\t;|" if d != default)):
        with contextlib.suppress(csv.Error):
            rows = list(csv.reader(io.StringIO(head, newline=""), delimiter=candidate))
            score = max((count_known_headers(r[:MAX_COLUMNS]) for r in rows), default=0)
            if score > best_score:
                best, best_score = candidate, score
    if best_score >= 2:
        return best
    with contextlib.suppress(csv.Error):
        return csv.Sniffer().sniff(head[:20000], delimiters=",\t;|").delimiter
    return default


def _read_csv(file: Path, header_words: Iterable[str] = ()) -> RawTable:
    try:
        data = file.read_bytes()
    except OSError as err:
        msg = f"{file.name}: cannot read the file ({err}); check its permissions."
        raise DataFileError(msg) from err
    if not data.strip():
        msg = f"{file.name}: the file is empty; export the register again with a header row."
        raise DataFileError(msg)
    text, encoding = decode_bytes(data, file_name=file.name)
    delimiter = _delimiter(text, default="\t" if file.suffix.lower() == ".tsv" else ",")
    rows, numbers, notes = _csv_records(text, delimiter, file_name=file.name)
    logger.debug("read %s as CSV, encoding %s, delimiter %r", file, encoding, delimiter)
    return _table_from_rows(rows, file_name=file.name, fmt="csv", encoding=encoding,
                            numbers=numbers, notes=notes, header_words=header_words)


def _csv_records(text: str, delimiter: str, *, file_name: str,
                 ) -> tuple[list[list[str]], list[int], tuple[str, ...]]:
    """Parse CSV text into records, their first line numbers, and notes on multi-line cells.

    A quoted cell may hold line breaks (Excel writes addresses so), but a quote that is never
    closed swallows every following line into one cell. Every physical line must stay
    accounted for: a multi-line cell whose continuation lines carry as many separators as a
    row is a run-away quote, and the file is refused naming the line where it opens.
    """
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=False)
    rows: list[list[str]] = []
    numbers: list[int] = []
    spans: list[tuple[int, int]] = []
    first = 1
    try:
        for record in reader:
            rows.append(record)
            numbers.append(first)
            if reader.line_num > first:
                spans.append((len(rows) - 1, reader.line_num))
            first = reader.line_num + 1
    except csv.Error as err:
        msg = (f"{file_name}: malformed CSV near line {reader.line_num} ({err}); check for "
               f"unbalanced quotes and save it again as CSV.")
        raise DataFileError(msg) from err
    single = [len(r) for r in rows if len(r) > 1]
    width = max(set(single), key=single.count) if single else 0
    notes = []
    for pos, last in spans:
        start = numbers[pos]
        swallowed = [(start + k, line) for cell in rows[pos]
                     for k, line in enumerate(cell.splitlines()) if k and width > 1
                     and line.count(delimiter) >= width - 1]
        if swallowed:
            line_no, line = swallowed[0]
            msg = (f"{file_name}: line {start}: a quote (\") opens a cell that is not closed "
                   f"before line {last}, so {last - start} following line(s) that look like rows "
                   f"of their own (e.g. line {line_no}: {line[:60]!r}) would be read as one cell. "
                   "Close the quote or remove it, then import again.")
            raise DataFileError(msg)
        notes.append(f"第 {start} 行的引号单元格含换行，跨第 {start}–{last} 行 / the quoted cell "
                     f"of line {start} holds line breaks and spans lines {start}–{last}")
    return rows, numbers, tuple(notes)


def _sheet_rows(ws: Any, *, file_name: str) -> tuple[list[list[Any]], list[int]]:
    """Return the non-blank rows of a worksheet and their row numbers.

    The work is bounded by the cells the file holds, not by its stated used range: a sheet
    whose dimension says A1:XFD1048576 because of one styled cell far away is read as the
    few rows it has (no padding to 16,384 columns x 1,048,576 rows).
    """
    # the stored <dimension> may claim the whole grid: read rows as they are in the file
    ws.reset_dimensions()
    rows: list[list[Any]] = []
    numbers: list[int] = []
    for number, row in enumerate(ws.iter_rows(values_only=True), start=1):
        last = _last_filled(row) if row else -1
        if last < 0:
            continue
        if last >= MAX_COLUMNS:
            msg = (f"{file_name}: row {number} fills {last + 1:,} columns; a register may have "
                   f"at most {MAX_COLUMNS:,}. Keep only the facility columns and save again.")
            raise DataFileError(msg)
        rows.append(list(row[:last + 1]))
        numbers.append(number)
    return rows, numbers


def _pick_sheet(book: Any, sheet: str | int | None, *, file_name: str,
                ) -> tuple[str, list[list[Any]], list[int], tuple[str, ...]]:
    """Return (sheet name, rows, row numbers, notes) of the sheet to read."""
    names = list(book.sheetnames)
    if sheet is not None:
        if isinstance(sheet, int) and not isinstance(sheet, bool):
            if not 0 <= sheet < len(names):
                msg = (f"{file_name}: sheet index {sheet!r} is out of range; the workbook "
                       f"has sheets {names!r} (0-based index).")
                raise DataFileError(msg)
            name = names[sheet]
        elif str(sheet) in names:
            name = str(sheet)
        else:
            msg = f"{file_name}: no sheet named {sheet!r}; the workbook has {names!r}."
            raise DataFileError(msg)
        return (name, *_sheet_rows(book[name], file_name=file_name), ())
    filled = {}
    for name in names:
        rows, numbers = _sheet_rows(book[name], file_name=file_name)
        if rows:
            filled[name] = (rows, numbers)
    # a register sheet names at least two known fields in its header (说明/notes sheets do not)
    registers = [n for n, (rows, _) in filled.items()
                 if max(count_known_headers(r) for r in rows[:HEADER_SEARCH_ROWS]) >= 2]
    if len(registers) > 1:
        listing = ", ".join(f"{n!r} ({len(filled[n][0])} 行 rows)" for n in registers)
        msg = (f"{file_name}: {len(registers)} sheets look like registers: {listing}; choose "
               f"one with --sheet NAME (Python: sheet=...).")
        raise DataFileError(msg)
    pick = registers[0] if registers else next(iter(filled), names[0])
    rows, numbers = filled.get(pick, ([], []))
    notes: tuple[str, ...] = ()
    others = [n for n in filled if n != pick]
    if pick != names[0] or others:
        notes = (f"数据读自工作表 {pick!r}（另有 {others!r} 非台账或为空）/ data read from sheet "
                 f"{pick!r}; other sheets with content {others!r} do not look like registers",)
    return pick, rows, numbers, notes


def _read_xlsx(file: Path, sheet: str | int | None, header_words: Iterable[str] = ()
               ) -> RawTable:
    import openpyxl

    try:
        with warnings.catch_warnings():
            # openpyxl warns about styles/extensions it ignores; they do not affect cell values.
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(file, read_only=True, data_only=True)
            try:
                _, rows, numbers, notes = _pick_sheet(book, sheet, file_name=file.name)
            finally:
                book.close()
    except DataFileError:
        raise
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, OSError,
            EOFError, AttributeError) as err:
        msg = (f"{file.name}: not a readable .xlsx workbook ({type(err).__name__}: {err}); open it "
               f"in Excel/WPS and save it again as .xlsx.")
        raise DataFileError(msg) from err
    except Exception as err:  # lxml/zip internals raise many kinds of errors on broken files
        msg = (f"{file.name}: not a readable .xlsx workbook ({type(err).__name__}: {err}); open it "
               f"in Excel/WPS and save it again as .xlsx.")
        raise DataFileError(msg) from err
    return _table_from_rows(rows, file_name=file.name, fmt="xlsx", encoding=None,
                            numbers=numbers, notes=notes, header_words=header_words)


# -- geo formats -------------------------------------------------------------------------------

def _pick_layer(file: Path, layers: Any, layer_name: str | None) -> str:
    """Return the layer to read: ``layer_name``, or the only layer; else list them."""
    import pyogrio

    names = [str(row[0]) for row in layers]
    if layer_name is not None:
        if layer_name not in names:
            msg = f"{file.name}: no layer named {layer_name!r}; the file has {names!r}."
            raise DataFileError(msg)
        return layer_name
    if len(names) == 1:
        return names[0]
    listing = []
    for row in layers:
        n = pyogrio.read_info(file, layer=str(row[0])).get("features")
        listing.append(f"{str(row[0])!r} ({row[1] or 'no geometry'}, {n} 要素 features)")
    msg = (f"{file.name}: the file has {len(names)} layers: {', '.join(listing)}; choose the "
           "facilities with --layer-name NAME (Python: layer_name=...).")
    raise DataFileError(msg)


def _read_geo(file: Path, layer_name: str | None = None) -> RawTable:
    import pyogrio
    import shapely

    fmt = "gpkg" if file.suffix.lower() == ".gpkg" else "geojson"
    if file.stat().st_size == 0:
        msg = f"{file.name}: the file is empty; export the layer again."
        raise DataFileError(msg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # GDAL/pyogrio notices about field types
            layers = pyogrio.list_layers(file)
            if len(layers) == 0:
                msg = f"{file.name}: the file has no layers; export the facilities layer again."
                raise DataFileError(msg)
            gdf = pyogrio.read_dataframe(file, layer=_pick_layer(file, layers, layer_name))
    except DataFileError:
        raise
    except Exception as err:  # GDAL reports broken files through many exception types
        msg = (f"{file.name}: not a readable {fmt.upper()} file ({type(err).__name__}: {err}); "
               f"check that it is complete, or export it again from the GIS.")
        raise DataFileError(msg) from err
    crs = gdf.crs.to_string() if getattr(gdf, "crs", None) is not None else None
    notes: list[str] = []
    if crs is not None and gdf.crs.to_epsg() not in _KNOWN_EPSG:
        try:
            gdf = gdf.to_crs("EPSG:4326")
        except Exception as err:  # pyproj raises several kinds on unusable definitions
            msg = (f"{file.name}: its coordinate system {crs!r} cannot be converted to WGS84 "
                   f"({err}); export the layer in EPSG:4326 (WGS84) or EPSG:4549.")
            raise DataFileError(msg) from err
        notes.append(f"文件坐标系 {crs} 已转换为 WGS84 / the file's {crs} was converted to WGS84")
        crs = "EPSG:4326"
    frame = pd.DataFrame(gdf.drop(columns=gdf.geometry.name) if "geometry" in gdf else gdf,
                         dtype=object)
    xs: list[float] = []
    ys: list[float] = []
    geom_notes: list[str | None] = []
    geoms = gdf.geometry if "geometry" in gdf else [None] * len(gdf)
    for geom in geoms:
        note = None
        if geom is None or geom.is_empty:
            x = y = math.nan
        elif geom.geom_type == "Point":
            x, y = geom.x, geom.y
        elif geom.geom_type == "MultiPoint" and len(geom.geoms) == 1:
            x, y = geom.geoms[0].x, geom.geoms[0].y
        else:
            point = shapely.point_on_surface(geom)
            x, y = point.x, point.y
            note = (f"{geom.geom_type} 要素取面上一点 / took a point on the {geom.geom_type} "
                    f"feature")
        xs.append(float(x))
        ys.append(float(y))
        geom_notes.append(note)
    frame[GEOM_X] = np.asarray(xs, dtype=float)
    frame[GEOM_Y] = np.asarray(ys, dtype=float)
    # object dtype: pandas would store the None of a str column as NaN, which is truthy and
    # would mark every point row beside a polygon as changed
    frame[GEOM_NOTE] = np.array(geom_notes, dtype=object)
    frame.index = pd.Index(range(1, len(frame) + 1), name="row")
    frame.columns = [str(c) for c in frame.columns]
    if frame.empty:
        msg = f"{file.name}: the layer has no features; export the facilities layer again."
        raise DataFileError(msg)
    return RawTable(frame=frame, format=fmt, crs=crs, notes=tuple(notes))


# -- cells -------------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$")
_DMS = re.compile(
    r"^(?P<hemi1>[NSEW东西南北])?(?P<deg>\d+(?:\.\d+)?)[°度]"
    r"(?:(?P<min>\d+(?:\.\d+)?)['′分])?(?:(?P<sec>\d+(?:\.\d+)?)(?:″|′′|''|[\"秒])?)?"
    r"(?P<hemi2>[NSEW东西南北])?$")
_DEG_HEMI = re.compile(
    r"^(?P<hemi1>[NSEW东西南北])?(?P<num>\d+(?:\.\d+)?)°?(?P<hemi2>[NSEW东西南北])?$")
_LEADING_COUNT = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<unit>[个张位人床座名套间]*)$")
_LONLAT_SPLIT = re.compile(r"[,;\s/|]+")
_MISSING = {"", "nan", "none", "null", "na", "n/a", "-", "--", "—", "/", "无", "暂无"}


class CellError(ValueError):
    """A cell's text is not what its column needs (caught by the intake, never leaves it)."""


def cell_text(value: object) -> str:
    """Return a cell as stripped, NFKC-folded text ('' for blanks and NaN)."""
    if _blank(value):
        return ""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_number(value: object) -> float | None:
    """Parse a coordinate cell: a number, ``"121.25"``, ``"121.25E"``, ``"121°15′30″"``.

    Returns ``None`` for a blank/missing cell; raises :class:`CellError` for anything else
    that is not a finite number.
    """
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not a number")
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
        if not math.isfinite(number):
            raise CellError(f"{value!r} is not a finite number")
        return number
    text = cell_text(value).replace(" ", "").replace("，", ",")
    if text.lower() in _MISSING:
        return None
    if _NUMBER.match(text):
        number = float(text)
        if not math.isfinite(number):
            raise CellError(f"{value!r} is not a finite number")
        return number
    m = _DEG_HEMI.match(text) or _DMS.match(text)
    if m is None:
        raise CellError(f"{value!r} is not a number or a degree value like 121°15′30″")
    groups = m.groupdict()
    if "num" in groups:
        number = float(groups["num"])
    else:
        number = (float(groups["deg"]) + float(groups.get("min") or 0) / 60.0
                  + float(groups.get("sec") or 0) / 3600.0)
    hemi = groups.get("hemi1") or groups.get("hemi2")
    if hemi in {"S", "W", "南", "西"}:
        number = -number
    return number


def parse_lonlat(value: object) -> tuple[float, float] | None:
    """Parse a combined "经度,纬度" cell (as copied from a map picker) into two numbers."""
    text = cell_text(value).replace("，", ",")
    if text.lower() in _MISSING:
        return None
    parts = [p for p in _LONLAT_SPLIT.split(text.strip("()[]")) if p]
    if len(parts) != 2:
        raise CellError(f"{value!r} is not two numbers 'lon,lat'")
    first, second = parse_number(parts[0]), parse_number(parts[1])
    if first is None or second is None:
        raise CellError(f"{value!r} is not two numbers 'lon,lat'")
    return first, second


def parse_count(value: object) -> float | None:
    """Parse a capacity cell (``30``, ``"30"``, ``"30个"``, ``"30张"``); ``None`` when blank."""
    if isinstance(value, bool):
        raise CellError(f"{value!r} is not a count")
    if isinstance(value, int | float | np.integer | np.floating):
        number = float(value)
        if math.isnan(number):
            return None
    else:
        text = cell_text(value).replace(",", "").replace(" ", "")
        if text.lower() in _MISSING:
            return None
        m = _LEADING_COUNT.match(text)
        if m is None:
            raise CellError(f"{value!r} is not a count like 30 or '30个'")
        number = float(m.group("num"))
    if not math.isfinite(number) or number < 0 or number > 1e6:
        raise CellError(f"{value!r} is not a plausible count (0 to 1,000,000)")
    return number
