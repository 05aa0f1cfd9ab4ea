"""Facility registers from planners: read, convert, match to official codes, account for every row.

:func:`import_register` reads a department's register (XLSX, CSV in UTF-8/GBK/GB18030, GeoJSON,
GeoPackage), recognises its Chinese or English headers, converts coordinates from the stated
system (WGS84, GCJ-02, BD-09, CGCS2000 geographic or projected) to WGS84, fixes swapped
latitude/longitude, matches villages and townships to their official codes, and returns the
normalised facility layer together with an intake report in which every input row is
``accepted``, ``accepted-with-changes`` (what and why) or ``rejected`` (why). Problems with the
data as a whole — a coordinate system that looks wrong, most rows swapped, points outside the
county — come back as plain-text ``warnings`` (never Python warnings). :func:`write_intake`
writes the layer (GeoJSON, WGS84) and the report (CSV with BOM, XLSX, JSON summary).

Nothing is geocoded from addresses (that needs an online service); address-only rows are
reported, or placed at their village's centre and flagged when ``fallback="village_centre"``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from qyx_geo import crs as _crs
from qyx_geo._errors import ColumnError, DataFileError, QyxGeoError, SettingsError
from qyx_geo._outputs import output_set
from qyx_geo._tables import safe_table, write_csv
from qyx_geo.intake._checks import (
    RowState,
    assign_units,
    check_duplicates,
    check_outside,
    diagnose_shift,
    fix_swaps,
)
from qyx_geo.intake._names import FIELDS, normalise_header, recognise_headers
from qyx_geo.intake._readers import (
    GEOM_NOTE,
    GEOM_X,
    GEOM_Y,
    ROW_NOTE,
    ROW_REJECT,
    CellError,
    RawTable,
    cell_text,
    parse_count,
    parse_lonlat,
    parse_number,
    read_table,
)
from qyx_geo.schema import FACILITY_COLUMNS, WGS84
from qyx_geo.services import service_ids

__all__ = [
    "FALLBACKS",
    "REPORT_COLUMNS",
    "STATUSES",
    "Fallback",
    "IntakeResult",
    "Status",
    "import_register",
    "write_intake",
]

logger = logging.getLogger(__name__)

Status = Literal["accepted", "accepted-with-changes", "rejected"]
STATUSES: tuple[str, ...] = get_args(Status)
STATUS_ZH = {"accepted": "接受", "accepted-with-changes": "修改后接受", "rejected": "拒绝"}
Fallback = Literal["village_centre"]
FALLBACKS: tuple[str, ...] = get_args(Fallback)
ShiftCheck = Literal["auto", "network", "villages", "off"]
Duplicates = Literal["reject", "keep"]

#: Columns of :attr:`IntakeResult.report`, one row per input row.
REPORT_COLUMNS = ("row", "status", "status_zh", "id", "name", "changes", "reason", "notes",
                  "candidates", "source_x", "source_y", "lon", "lat", "township_code",
                  "unit_code", "placement")
#: Bilingual headers used when the report is written for people.
REPORT_HEADERS = {
    "row": "行号 row", "status": "状态 status", "status_zh": "状态(中文)", "id": "编号 id",
    "name": "名称 name", "changes": "修改内容 changes", "reason": "拒绝原因 reason",
    "notes": "备注 notes", "candidates": "候选 candidates", "source_x": "原始X source x",
    "source_y": "原始Y source y", "lon": "经度WGS84 lon", "lat": "纬度WGS84 lat",
    "township_code": "镇街代码 township code", "unit_code": "村社代码 unit code",
    "placement": "定位方式 placement",
}
#: Extra columns of the normalised layer beside :data:`qyx_geo.schema.FACILITY_COLUMNS`.
LAYER_EXTRA_COLUMNS = ("placement", "intake_row")


@dataclasses.dataclass(frozen=True)
class IntakeResult:
    """What :func:`import_register` made of a register.

    Attributes
    ----------
    layer
        Normalised facility layer: index ``id`` (str), columns
        :data:`~qyx_geo.schema.FACILITY_COLUMNS` plus ``placement`` (``"coordinates"`` or
        ``"village_centre"``) and ``intake_row``; WGS84; ``source="user"``.
    report
        One row per input row (columns :data:`REPORT_COLUMNS`), in input order.
    path
        The register that was read.
    layer_name
        Facility layer (service id), e.g. ``"canteen"``.
    crs
        Coordinate system the coordinates were read in.
    encoding
        Text encoding used for CSV input (``"utf-8"``, ``"utf-8-sig"``, ``"utf-16"``, ``"gbk"``,
        ``"gb18030"``), ``None`` for other formats.
    warnings
        File-level findings in Chinese and English (coordinate system suspicions, swapped
        columns, rows outside the county, skipped blank rows, ...).
    counts
        ``input``, ``accepted``, ``accepted-with-changes``, ``rejected``; the last three add up
        to ``input``.
    columns
        Canonical field -> source header that was used for it.
    """

    layer: gpd.GeoDataFrame
    report: pd.DataFrame
    path: Path
    layer_name: str
    crs: str
    encoding: str | None
    warnings: tuple[str, ...]
    counts: Mapping[str, int]
    columns: Mapping[str, str]

    def summary(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (counts, encoding, columns, warnings)."""
        return {"file": str(self.path), "layer": self.layer_name, "crs": self.crs,
                "encoding": self.encoding, "counts": dict(self.counts),
                "columns": dict(self.columns), "warnings": list(self.warnings)}


def _check_options(layer: object, crs: object, fallback: object, shift_check: object,
                   duplicates: object, duplicate_dist_m: object,
                   outside_tolerance_m: object) -> None:
    if layer not in service_ids():  # any layer of the service registry
        msg = f"layer={layer!r} is not a facility layer; use one of {service_ids()!r}."
        raise SettingsError(msg)
    if crs not in _crs.CRS_NAMES:
        msg = (f"crs={crs!r} is not supported; use one of {_crs.CRS_NAMES!r} (gcj02 for Gaode/"
               f"AMap/Tencent pickers, bd09 for Baidu).")
        raise SettingsError(msg)
    if fallback is not None and fallback not in FALLBACKS:
        msg = f"fallback={fallback!r} is not supported; use None or one of {FALLBACKS!r}."
        raise SettingsError(msg)
    if shift_check not in get_args(ShiftCheck):
        msg = f"shift_check={shift_check!r}; use one of {get_args(ShiftCheck)!r}."
        raise SettingsError(msg)
    if duplicates not in get_args(Duplicates):
        msg = f"duplicates={duplicates!r}; use one of {get_args(Duplicates)!r}."
        raise SettingsError(msg)
    for name, value in (("duplicate_dist_m", duplicate_dist_m),
                        ("outside_tolerance_m", outside_tolerance_m)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            msg = f"{name} must be a non-negative number of metres, got {value!r}."
            raise SettingsError(msg)


def _resolve_columns(raw: RawTable, columns: Mapping[str, str] | None,
                     file_name: str) -> dict[str, str]:
    headers = [c for c in raw.frame.columns if not c.startswith("__")]
    found = recognise_headers(headers)
    if columns:
        by_key = {normalise_header(h): h for h in headers}
        for header, field in columns.items():
            if field not in FIELDS:
                msg = (f"{file_name}: columns maps {header!r} to unknown field {field!r}; fields "
                       f"are {FIELDS!r}.")
                raise ColumnError(msg)
            actual = header if header in headers else by_key.get(normalise_header(header))
            if actual is None:
                msg = (f"{file_name}: columns names header {header!r}, which is not in the file; "
                       f"its headers are {headers!r}.")
                raise ColumnError(msg)
            found = {f: h for f, h in found.items() if h != actual and f != field}
            found[field] = actual
    return found


def _layer_label(layer: str) -> str:
    from qyx_geo.services import SERVICES

    service = SERVICES.get(layer)
    return service.label_zh if service else layer


def _parse_rows(raw: RawTable, cols: Mapping[str, str], *, layer: str,
                file_name: str) -> list[RowState]:
    """Turn cells into RowStates: coordinates parsed (source CRS), text fields cleaned."""
    frame = raw.frame
    states: list[RowState] = []
    label = _layer_label(layer)
    for row_no, cells in zip(frame.index, frame.to_dict("records"), strict=True):
        st = RowState(row=int(row_no))
        if not _is_blank_extra(cells.get("__extra__")):
            st.reject(f"字段数多于表头（多出: {cell_text(cells['__extra__'])!r}），可能是未加引号的"
                      f"逗号 / more fields than headers; quote the field or fix the separator")
        st.source_id = cell_text(_cell(cells, cols, "id"))
        st.name = cell_text(_cell(cells, cols, "name"))
        st.address = cell_text(_cell(cells, cols, "address"))
        st.village_text = cell_text(_cell(cells, cols, "village"))
        st.township_text = cell_text(_cell(cells, cols, "township"))
        st.level = cell_text(_cell(cells, cols, "level")) or None
        try:
            st.capacity = parse_count(_cell(cells, cols, "capacity"))
        except CellError as err:
            st.change(f"容量无法识别，置空 / capacity {cols['capacity']!r} unreadable ({err}); "
                      f"set to empty")
        _parse_coords(st, cells, cols)
        if cells.get(ROW_NOTE):
            st.notes.append(str(cells[ROW_NOTE]))
        if cells.get(ROW_REJECT):
            st.reject(str(cells[ROW_REJECT]))
        if not st.name:
            st.name = f"{label}（第{st.row}行）"
            st.change(f"名称为空，暂名'{st.name}' / name was empty; named after the row")
        states.append(st)
    logger.debug("%s: parsed %d rows", file_name, len(states))
    return states


def _cell(cells: Mapping[str, Any], cols: Mapping[str, str], field: str) -> Any:
    """Return the row's cell for ``field`` (``None`` when the register has no such column)."""
    return cells.get(cols[field]) if field in cols else None


def _is_blank_extra(value: object) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value == ""


def _parse_coords(st: RowState, cells: Mapping[str, Any], cols: Mapping[str, str]) -> None:
    try:
        if "lon" in cols and "lat" in cols:
            st.source_x_text = cell_text(cells.get(cols["lon"]))
            st.source_y_text = cell_text(cells.get(cols["lat"]))
            x = parse_number(cells.get(cols["lon"]))
            y = parse_number(cells.get(cols["lat"]))
            if (x is None) != (y is None):
                missing = cols["lat"] if y is None else cols["lon"]
                st.reject(f"坐标不完整：'{missing}' 为空 / coordinate {missing!r} is empty; fill "
                          f"in both 经度 and 纬度")
                return
        elif "lonlat" in cols:
            st.source_x_text = cell_text(cells.get(cols["lonlat"]))
            pair = parse_lonlat(cells.get(cols["lonlat"]))
            x, y = pair if pair is not None else (None, None)
        else:
            x = y = None
    except CellError as err:
        st.reject(f"坐标无法识别 / unreadable coordinate: {err}")
        return
    if x is None and GEOM_X in cells:
        gx, gy = cells.get(GEOM_X), cells.get(GEOM_Y)
        if gx is not None and gy is not None and np.isfinite(gx) and np.isfinite(gy):
            x, y = float(gx), float(gy)
            st.source_x_text, st.source_y_text = repr(x), repr(y)
            note = cells.get(GEOM_NOTE)
            if isinstance(note, str) and note:
                st.change(note)
    if x is not None and y is not None:
        st.x, st.y = x, y


def import_register(
    path: str | Path,
    *,
    layer: str,
    crs: _crs.CrsName = "wgs84",
    columns: Mapping[str, str] | None = None,
    fallback: Fallback | None = None,
    sheet: str | int | None = None,
    layer_name: str | None = None,
    units: gpd.GeoDataFrame | None = None,
    townships: gpd.GeoDataFrame | None = None,
    outline: shapely.Geometry | gpd.GeoDataFrame | None = None,
    network: Any = None,
    shift_check: ShiftCheck = "auto",
    duplicates: Duplicates = "reject",
    duplicate_dist_m: float = 50.0,
    outside_tolerance_m: float = 250.0,
) -> IntakeResult:
    """Read a facility register and normalise it into a facility layer, accounting for every row.

    Parameters
    ----------
    path
        Register file: ``.xlsx``/``.xlsm``, ``.csv``/``.txt``/``.tsv`` (UTF-8, UTF-8 with BOM,
        UTF-16, GBK or GB18030 — detected), ``.geojson``/``.json`` or ``.gpkg``; or an OSM
        extract (``.osm``, ``.osm.bz2``, ``.osm.pbf``), whose objects matching the layer's
        tag table (:data:`qyx_geo.osm_features.LAYER_TAGS`) become the rows (``source="osm"``).
    layer
        Facility layer the rows belong to (``"nursery"``, ``"canteen"``, ``"clinic"``,
        ``"sports"``).
    crs
        System the coordinates are in: ``"wgs84"`` (GPS), ``"gcj02"`` (Gaode/AMap, Tencent),
        ``"bd09"`` (Baidu), ``"cgcs2000"`` (EPSG:4490) or ``"epsg4549"`` (CGCS2000 Gauss-Krüger
        CM 120°E, metres). For GeoJSON/GeoPackage read with the default, a file that declares
        EPSG:4490/4549 is read in that system.
    columns
        Explicit header -> field mapping, e.g. ``{"站点名": "name", "东经": "lon"}``; fields are
        ``id, name, lon, lat, lonlat, address, township, village, capacity, level``. Headers not
        mapped are recognised from common Chinese/English names.
    fallback
        ``"village_centre"``: place rows that have no coordinates but a known village at that
        village's centre (flagged ``placement="village_centre"``). Default: reject them.
    sheet
        Worksheet name or 0-based index for XLSX. Default: the only sheet holding data; a
        workbook with data on several sheets is refused with their names.
    layer_name
        Layer of a GeoPackage. Default: the only layer; a file with several layers is refused
        with their names, geometry types and feature counts.
    units, townships, outline
        Official villages/communities, townships and county outline (default:
        :func:`qyx_geo.units.load_units`, ``load_townships``, ``load_outline``).
    network
        Street network for the shift check: a GeoDataFrame/GeoSeries of edge lines, a networkx
        graph, or an object with an ``edges`` GeoDataFrame. Default: none (village centres).
    shift_check
        ``"auto"`` (network if given, else village centres), ``"network"`` (load the default
        network when none is given), ``"villages"`` or ``"off"``.
    duplicates
        ``"reject"`` later rows that repeat an id, or a name within ``duplicate_dist_m``;
        ``"keep"`` them (ids made unique), flagged either way.
    duplicate_dist_m
        Same-name rows closer than this are duplicates.
    outside_tolerance_m
        Rows further than this outside the county outline are rejected; closer ones are kept
        with a note (the outline is accurate to about 75 m, and shore-side or border facilities
        sit on its edge). The default matches :func:`qyx_geo.facilities.validate_facilities`.

    Returns
    -------
    IntakeResult

    Raises
    ------
    DataFileError
        The file is missing, broken, empty or has no data rows.
    ColumnError
        No coordinate columns (and no village fallback), or a bad ``columns`` mapping.
    SettingsError
        A bad option value.
    """
    _check_options(layer, crs, fallback, shift_check, duplicates, duplicate_dist_m,
                   outside_tolerance_m)
    file = Path(path)
    from qyx_geo.osm_features import is_osm_file

    osm = is_osm_file(file)
    if osm:  # OSM is WGS84 by definition: no coordinate system to guess or shift to check
        from qyx_geo.intake._osm import read_osm_table

        raw, shift_check = read_osm_table(file, layer=layer), "off"
    else:
        raw = read_table(file, sheet=sheet, layer_name=layer_name)
    if raw.frame.empty:
        msg = (f"{file.name}: no data rows below the header (row {raw.header_row}); add one row "
               f"per facility.")
        raise DataFileError(msg)
    cols = _resolve_columns(raw, columns, file.name)
    has_coords = ("lon" in cols and "lat" in cols) or "lonlat" in cols or GEOM_X in raw.frame
    headers = [c for c in raw.frame.columns if not c.startswith("__")]
    if ("lon" in cols) != ("lat" in cols) and "lonlat" not in cols:
        have, lack = ("lon", "lat") if "lon" in cols else ("lat", "lon")
        msg = (f"{file.name}: found a {have} column ({cols[have]!r}) but no {lack} column among "
               f"{headers!r}; name it 经度/纬度 (lng/lat) or pass columns={{'<header>': "
               f"{lack!r}}}.")
        raise ColumnError(msg)
    if not has_coords and not (fallback and "village" in cols):
        msg = (f"{file.name}: no coordinate columns among headers {headers!r} (header on row "
               f"{raw.header_row}); add 经度/纬度 (lng/lat) columns, name them with columns="
               f"{{'东经': 'lon', '北纬': 'lat'}}, or give a 村(社区) column and "
               f"fallback='village_centre'.")
        raise ColumnError(msg)
    source_crs: _crs.CrsName = crs
    file_warnings: list[str] = list(raw.notes)
    if raw.crs and crs == "wgs84":
        declared = raw.crs.upper()
        if declared in {"EPSG:4490", "EPSG:4549"}:
            source_crs = "cgcs2000" if declared == "EPSG:4490" else "epsg4549"
            file_warnings.append(f"文件声明坐标系 {declared}，按其读取 / the file declares "
                                 f"{declared}; read in that system")
    elif raw.crs and crs in {"gcj02", "bd09"} and raw.crs.upper() != "EPSG:4326":
        file_warnings.append(f"文件声明 {raw.crs}，但按用户指定的 {crs} 读取 / the file declares "
                             f"{raw.crs} but was read as {crs}, as requested")

    units_gdf, towns_gdf, outline_geom = _reference(units, townships, outline)
    states = _parse_rows(raw, cols, layer=layer, file_name=file.name)
    if not osm:  # OSM coordinates are never swapped, and are valid anywhere on Earth
        file_warnings += fix_swaps(states, source_crs)
    _convert(states, source_crs)
    file_warnings += check_outside(states, outline_geom, tolerance_m=outside_tolerance_m)
    file_warnings += assign_units(states, units_gdf, towns_gdf, fallback=fallback)
    if shift_check != "off":
        file_warnings += diagnose_shift(states, source_crs, units_gdf,
                                        network=_network(network, shift_check, states,
                                                         file_warnings))
    _assign_ids(states, layer)
    file_warnings += check_duplicates(states, dist_m=duplicate_dist_m, mode=duplicates)
    for st in states:
        if st.alive and st.lon is None:  # every path above places or rejects; stay safe
            st.reject("无坐标 / no coordinates")
    report = _report(states)
    counts = _counts(report, len(raw.frame))
    layer_gdf = _layer(states, layer, source="osm" if osm else "user")
    if len(layer_gdf):
        from qyx_geo.facilities import validate_facilities

        layer_gdf = validate_facilities(layer_gdf, source_name=file.name, layer=layer,
                                        units=units_gdf, outline=outline_geom)
    if counts["accepted"] + counts["accepted-with-changes"] != len(layer_gdf):
        msg = (f"internal error: {len(layer_gdf)} facilities in the layer but "
               f"{counts['accepted'] + counts['accepted-with-changes']} accepted rows")
        raise QyxGeoError(msg)
    logger.info("%s: %s", file.name, counts)
    return IntakeResult(layer=layer_gdf, report=report, path=file, layer_name=layer,
                        crs=source_crs, encoding=raw.encoding, warnings=tuple(file_warnings),
                        counts=types.MappingProxyType(counts), columns=types.MappingProxyType(cols))


def _reference(units: gpd.GeoDataFrame | None, townships: gpd.GeoDataFrame | None,
               outline: Any) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, shapely.Geometry]:
    from qyx_geo import units as _units

    units_gdf = _units.load_units() if units is None else units.to_crs(WGS84)
    towns_gdf = _units.load_townships() if townships is None else townships.to_crs(WGS84)
    if outline is None:
        outline = _units.load_outline()
    if isinstance(outline, gpd.GeoDataFrame | gpd.GeoSeries):
        outline = shapely.union_all(outline.to_crs(WGS84).geometry.to_numpy())
    if not isinstance(outline, shapely.Geometry):
        msg = (f"outline must be a shapely geometry or a GeoDataFrame, got "
               f"{type(outline).__name__!r}.")
        raise SettingsError(msg)
    return units_gdf, towns_gdf, outline


def _network(network: Any, shift_check: str, states: list[RowState],
             warnings_out: list[str]) -> gpd.GeoSeries | None:
    """Return edge lines (any CRS) near the rows, or ``None`` when the check uses villages.

    Only the part of a networkx graph within 2 km of the rows is turned into lines, so the
    check stays cheap on a county network.
    """
    if shift_check == "villages":
        return None
    if network is None and shift_check == "network":
        from qyx_geo.network import load_network

        try:
            network = load_network("default")
        except QyxGeoError as err:
            warnings_out.append(f"路网不可用，改用村社中心检查坐标偏移 / the street network could "
                                f"not be loaded ({err}); the shift check used village centres")
            return None
    if network is None:
        return None
    edges = getattr(network, "edges", network)
    if isinstance(edges, gpd.GeoDataFrame | gpd.GeoSeries):
        return edges.geometry if isinstance(edges, gpd.GeoDataFrame) else edges
    import networkx as nx

    if isinstance(network, nx.Graph):
        import osmnx as ox

        graph_crs = network.graph.get("crs", WGS84)
        lonlat = [(st.lon, st.lat) for st in states if st.alive and st.lon is not None]
        if not lonlat or len(network) == 0:
            return None
        pts = gpd.GeoSeries(gpd.points_from_xy(*zip(*lonlat, strict=True)), crs=WGS84)
        xmin, ymin, xmax, ymax = pts.to_crs(graph_crs).total_bounds
        pad = 2000.0 if pyproj.CRS.from_user_input(graph_crs).is_projected else 0.02
        near = [n for n, d in network.nodes(data=True)
                if xmin - pad <= d.get("x", np.nan) <= xmax + pad
                and ymin - pad <= d.get("y", np.nan) <= ymax + pad]
        sub = network.subgraph(near)
        if sub.number_of_edges() == 0:
            return None
        return ox.graph_to_gdfs(sub, nodes=False).geometry
    msg = (f"network must be edge lines (GeoDataFrame/GeoSeries), a networkx graph or an object "
           f"with an 'edges' GeoDataFrame, got {type(network).__name__!r}.")
    raise SettingsError(msg)


def _convert(states: list[RowState], source_crs: _crs.CrsName) -> None:
    todo = [s for s in states if s.status != "rejected" and s.x is not None]
    if not todo:
        return
    x = np.array([s.x for s in todo], dtype=float)
    y = np.array([s.y for s in todo], dtype=float)
    with np.errstate(all="ignore"):
        try:
            lon, lat = _crs.to_wgs84(x, y, crs=source_crs)
        except QyxGeoError:  # e.g. an iteration that cannot converge on absurd input
            lon = np.full_like(x, np.nan)
            lat = np.full_like(y, np.nan)
            for i, s in enumerate(todo):
                with contextlib.suppress(QyxGeoError):
                    lon[i], lat[i] = _crs.to_wgs84(float(s.x), float(s.y),  # type: ignore[arg-type]
                                                   crs=source_crs)
    for s, lo, la in zip(todo, lon, lat, strict=True):
        if np.isfinite(lo) and np.isfinite(la) and -180 <= lo <= 180 and -90 <= la <= 90:
            s.lon, s.lat = float(lo), float(la)
        else:
            s.reject(f"坐标 ({s.x!r}, {s.y!r}) 无法从 {source_crs} 转换 / coordinates cannot be "
                     f"converted from {source_crs}; check the values and the crs option")


def _assign_ids(states: list[RowState], layer: str) -> None:
    for s in states:
        s.id = s.source_id or f"user-{layer}-r{s.row}"


def _report(states: list[RowState]) -> pd.DataFrame:
    records = [{
        "row": s.row, "status": s.status, "status_zh": STATUS_ZH[s.status], "id": s.id,
        "name": s.name, "changes": "；".join(s.changes), "reason": "；".join(s.reasons),
        "notes": "；".join(s.notes), "candidates": "、".join(s.candidates),
        "source_x": s.source_x_text, "source_y": s.source_y_text,
        "lon": s.lon if s.status != "rejected" else None,
        "lat": s.lat if s.status != "rejected" else None,
        "township_code": s.township_code, "unit_code": s.unit_code, "placement": s.placement,
    } for s in states]
    report = pd.DataFrame.from_records(records, columns=list(REPORT_COLUMNS))
    report["lon"] = pd.to_numeric(report["lon"])
    report["lat"] = pd.to_numeric(report["lat"])
    return report


def _counts(report: pd.DataFrame, n_input: int) -> dict[str, int]:
    counts = {"input": n_input}
    for status in STATUSES:
        counts[status] = int((report["status"] == status).sum())
    if sum(counts[s] for s in STATUSES) != n_input or len(report) != n_input:
        msg = (f"internal error: the intake report accounts for {len(report)} rows "
               f"({counts}) but the register has {n_input}")
        raise QyxGeoError(msg)
    return counts


def _layer(states: list[RowState], layer: str, *, source: str) -> gpd.GeoDataFrame:
    kept = [s for s in states if s.status != "rejected"]
    data = {
        "name": [s.name for s in kept],
        "layer": [layer] * len(kept),
        "level": pd.array([s.level for s in kept], dtype=object),
        "capacity": np.array([np.nan if s.capacity is None else s.capacity for s in kept],
                             dtype=float),
        "township_code": pd.array([s.township_code for s in kept], dtype=object),
        "unit_code": pd.array([s.unit_code for s in kept], dtype=object),
        "source": [source] * len(kept),
        "placement": [s.placement for s in kept],
        "intake_row": np.array([s.row for s in kept], dtype=np.int64),
    }
    geometry = gpd.points_from_xy([s.lon for s in kept], [s.lat for s in kept], crs=WGS84)
    index = pd.Index([str(s.id) for s in kept], name="id", dtype=object)
    gdf = gpd.GeoDataFrame(data, geometry=geometry, index=index, crs=WGS84)
    return gdf[[*FACILITY_COLUMNS[:-1], *LAYER_EXTRA_COLUMNS, "geometry"]]


def write_intake(result: IntakeResult, out_dir: str | Path) -> dict[str, Path]:
    """Write the normalised layer and the intake report into ``out_dir`` as one set.

    The four files are staged and committed together (:mod:`qyx_geo._outputs`): an interrupted
    or failed write leaves the previous four untouched.

    Files: ``<layer>.geojson`` (WGS84, the layer with its ``id``), ``<layer>_intake_report.csv``
    (UTF-8 with BOM, so Excel shows the Chinese), ``<layer>_intake_report.xlsx`` (sheets 逐行
    rows and 摘要 summary) and ``<layer>_intake_summary.json``.

    Returns
    -------
    dict
        ``{"layer": ..., "report_csv": ..., "report_xlsx": ..., "summary": ...}`` paths.
    """
    out = Path(out_dir)
    name = result.layer_name
    files = {"layer": f"{name}.geojson", "report_csv": f"{name}_intake_report.csv",
             "report_xlsx": f"{name}_intake_report.xlsx", "summary": f"{name}_intake_summary.json"}
    layer_out = result.layer.reset_index()
    people = result.report.rename(columns=REPORT_HEADERS)
    summary = result.summary()
    summary_rows = pd.DataFrame(
        [("文件 file", summary["file"]), ("图层 layer", name), ("坐标系 crs", result.crs),
         ("编码 encoding", result.encoding or ""),
         *((f"行数 {k}", str(v)) for k, v in result.counts.items()),
         *((f"列 {k}", v) for k, v in result.columns.items()),
         *(("提示 warning", w) for w in result.warnings)],
        columns=["项目 item", "内容 value"])
    # the four files are one set: staged, then committed together (never a new layer beside an
    # old report)
    with output_set(out, f"intake:{name}") as staged:
        layer_out.to_file(staged.path(files["layer"]), driver="GeoJSON", engine="pyogrio")
        write_csv(people, staged.path(files["report_csv"]), index=False)
        with pd.ExcelWriter(staged.path(files["report_xlsx"]), engine="openpyxl") as writer:
            # register text (names, ids, raw coordinates) must not run as formulas
            safe_table(people).to_excel(writer, sheet_name="逐行 rows", index=False)
            safe_table(summary_rows).to_excel(writer, sheet_name="摘要 summary", index=False)
        staged.path(files["summary"]).write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return {key: out / rel for key, rel in files.items()}
