"""``qyx region import-units``: a planning office's own village or township polygons into a pack.

Reads a Shapefile (also zipped), GeoPackage or GeoJSON in any system a Chinese planning office
uses — CGCS2000 3-degree Gauss-Krüger with the zone prefix in the easting (EPSG:4513–4533) or
without (EPSG:4534–4554, the zone taken from the county), GCJ-02 (``crs="gcj02"``), WGS84 or
CGCS2000 geographic — detecting the system from the coordinates' magnitude when the file
declares none (or declares one its coordinates contradict). Features are matched to the pack's
official codes by a code column, else by name with the facility intake's rules
(:class:`qyx_geo.intake._names.PlaceMatcher`). Every feature ends in the report: ``matched``,
``renamed`` (matched under another spelling), ``unmatched``, ``duplicate`` (a further part of a
unit already matched: merged into it), ``rejected`` (no usable geometry); then every official
unit with ``no-polygon`` (it keeps its synthetic area), every ``overlap`` between imported
polygons and every ``gap`` inside the county that no polygon covers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qyx_geo._errors import CoordinateError, DataFileError, SettingsError
from qyx_geo.crs import gcj02_geometries_to_wgs84
from qyx_geo.intake._names import PlaceMatcher, normalise_text
from qyx_geo.region import Region
from qyx_geo.schema import WGS84

__all__ = ["REPORT_COLUMNS", "UnitsImport", "detect_crs", "import_units", "read_polygons"]

logger = logging.getLogger(__name__)

Level = Literal["village", "township"]
#: Columns of the per-feature report.
REPORT_COLUMNS = ("kind", "feature", "input_code", "input_name", "status", "code",
                  "official_name", "area_m2", "detail")
_CODE_HEADERS = ("code", "代码", "编码", "行政代码", "区划代码", "统计代码", "村代码", "村编码",
                 "cun_code", "xzqdm", "xzqhdm", "行政区划代码", "dm", "bm", "adcode")
_NAME_HEADERS = ("name", "名称", "村名", "村名称", "村社区", "村(社区)", "社区", "村", "行政村",
                 "村庄名称", "村委会", "xzqmc", "mc", "cunmc", "镇街", "乡镇", "镇", "街道",
                 "乡镇名称", "镇街名称", "townname", "town")
_TOWN_HEADERS = ("镇街", "乡镇", "所属镇街", "所属乡镇", "镇", "街道", "township", "town", "xzmc",
                 "乡镇名称", "镇街名称")
#: Overlaps and gaps smaller than this are drawing noise, not findings (m²).
MIN_FINDING_M2 = 100.0


@dataclasses.dataclass(frozen=True)
class UnitsImport:
    """What :func:`import_units` did.

    Attributes
    ----------
    level
        ``village`` or ``township``.
    layer
        The new units (or townships) layer: the official rows, with imported polygons where
        matched (``approximate=False``, ``geometry_source="user"``) and the old ones elsewhere.
    report
        One row per input feature, per official unit without a polygon, per overlap and per gap
        (:data:`REPORT_COLUMNS`).
    crs
        The system the file was read in, and how it was decided.
    counts
        Status → number of rows of the report.
    """

    level: str
    layer: gpd.GeoDataFrame
    report: pd.DataFrame
    crs: str
    counts: Mapping[str, int]


def read_polygons(path: str | os.PathLike[str], *, layer_name: str | None = None
                  ) -> gpd.GeoDataFrame:
    """Read polygons from SHP (also ``.zip``), GPKG or GeoJSON (several layers: ``layer_name``)."""
    import pyogrio

    p = Path(path)
    if not p.is_file():
        msg = f"{str(p)!r} does not exist; give the polygon file (SHP, zipped SHP, GPKG, GeoJSON)."
        raise DataFileError(msg)
    source = f"/vsizip/{p}" if p.suffix.lower() == ".zip" else str(p)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            layers = [str(row[0]) for row in pyogrio.list_layers(source)]
            if not layers:
                msg = f"{p.name}: no layers; export the boundary layer again."
                raise DataFileError(msg)
            if layer_name is None and len(layers) > 1:
                msg = (f"{p.name} has {len(layers)} layers {layers!r}; choose one with "
                       "--layer-name NAME.")
                raise SettingsError(msg)
            if layer_name is not None and layer_name not in layers:
                msg = f"{p.name}: no layer {layer_name!r}; its layers are {layers!r}."
                raise SettingsError(msg)
            gdf = pyogrio.read_dataframe(source, layer=layer_name or layers[0])
    except (DataFileError, SettingsError):
        raise
    except Exception as err:  # GDAL reports broken files through many exception types
        msg = (f"{p.name}: not a readable SHP/GPKG/GeoJSON file ({type(err).__name__}: {err}); "
               "export it again (a zipped Shapefile needs its .shp, .shx and .dbf).")
        raise DataFileError(msg) from err
    if len(gdf) == 0:
        msg = f"{p.name} holds no features; export the boundary layer again."
        raise DataFileError(msg)
    if _looks_mis_decoded(gdf):
        # A Shapefile without a .cpg is read as Latin-1; Chinese GIS exports are usually GBK.
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                again = pyogrio.read_dataframe(source, layer=layer_name or layers[0],
                                               encoding="gbk")
        except Exception:  # not GBK either: keep what was read, the matching will say
            logger.debug("GBK re-read of %s failed", p, exc_info=True)
        else:
            logger.info("%s: attribute text read as GBK (no code page in the file)", p.name)
            return again
    return gdf


def _looks_mis_decoded(gdf: gpd.GeoDataFrame) -> bool:
    """Whether the text columns look like GBK bytes read as Latin-1 (Latin-1 letters, no CJK)."""
    cols = [c for c in gdf.columns if c != "geometry" and gdf[c].dtype.kind in "OU"]
    text = "".join(str(v) for c in cols for v in gdf[c].head(200) if isinstance(v, str))
    latin = sum(1 for ch in text if "\x80" <= ch <= "\xff")
    cjk = sum(1 for ch in text if "\u4e00" <= ch <= "\u9fff")
    return latin > 0 and cjk == 0


def _gk3_epsg(cm_deg: int, *, prefixed: bool) -> int:
    """EPSG code of the CGCS2000 3-degree GK zone with central meridian ``cm_deg``."""
    if prefixed:
        return 4513 + (cm_deg - 75) // 3  # zone 25 (CM 75°E) is EPSG:4513
    return 4534 + (cm_deg - 75) // 3      # CM 75°E is EPSG:4534


def detect_crs(bounds: tuple[float, float, float, float], *, declared: str | None,
               region_lon: float, given: str | None = None) -> tuple[str, str]:
    """Return ``(system, why)``: ``"EPSG:n"`` or ``"gcj02"``, from the coordinates' magnitude.

    Parameters
    ----------
    bounds
        ``minx, miny, maxx, maxy`` of the file's coordinates.
    declared
        The file's own CRS (``None`` when it has none, e.g. a Shapefile without ``.prj``).
    region_lon
        Longitude of the region, for the zone of unprefixed Gauss-Krüger eastings.
    given
        What the user said (``wgs84``, ``gcj02``, ``cgcs2000``, ``EPSG:n``); wins when it fits
        the numbers.
    """
    minx, miny, maxx, maxy = bounds
    geographic = -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
    cm = int(round(region_lon / 3.0) * 3)
    if maxx >= 1e7:  # zone number in front of the easting (e.g. 40 512 345 m)
        zone = int(minx // 1e6)
        if zone != int(maxx // 1e6) or not 25 <= zone <= 45:
            msg = (f"eastings {minx:,.0f}–{maxx:,.0f} look like Gauss-Krüger with a zone prefix, "
                   "but not of one zone 25–45; check the file's coordinates.")
            raise CoordinateError(msg)
        guess, why = f"EPSG:{_gk3_epsg(zone * 3, prefixed=True)}", \
            f"eastings carry the zone prefix {zone} (CGCS2000 3° GK, CM {zone * 3}°E)"
    elif minx >= 1e5 and maxx < 1e6 and miny >= 1e6:
        guess, why = f"EPSG:{_gk3_epsg(cm, prefixed=False)}", \
            f"eastings without zone prefix; zone of the county (CM {cm}°E)"
    elif geographic:
        guess, why = "EPSG:4326", "longitude/latitude in degrees"
    else:
        msg = (f"coordinates {bounds!r} are neither degrees nor CGCS2000 Gauss-Krüger metres; "
               "reproject the file to EPSG:4490/4326 or a CGCS2000 3° zone and try again.")
        raise CoordinateError(msg)
    if given:
        g = given.strip().lower()
        if g == "gcj02":
            if not geographic:
                msg = f"--crs gcj02 needs degrees, but the file holds metres ({bounds!r})."
                raise CoordinateError(msg)
            return "gcj02", "GCJ-02 degrees (as given); converted to WGS84"
        if g in ("wgs84", "cgcs2000", "epsg:4326", "epsg:4490"):
            if not geographic:
                msg = f"--crs {given} needs degrees, but the file holds metres ({bounds!r})."
                raise CoordinateError(msg)
            return "EPSG:4326", f"{given} degrees (as given)"
        return given.upper(), "as given"
    if declared is not None:
        d_crs = gpd.GeoSeries([], crs=declared).crs
        if d_crs is not None and d_crs.is_geographic == geographic:
            epsg = d_crs.to_epsg()
            if geographic or epsg is None or epsg == int(guess.split(":")[1]):
                return declared, "declared by the file"
            # e.g. a .prj saying CM 120E (4549) over zone-prefixed eastings: trust the numbers
            return guess, f"declared {declared} contradicts the coordinates: {why}"
        return guess, f"declared {declared} contradicts the coordinates: {why}"
    return guess, f"no CRS in the file: {why}"


def _to_wgs84(gdf: gpd.GeoDataFrame, system: str) -> gpd.GeoSeries:
    if system == "gcj02":
        geoms = gcj02_geometries_to_wgs84(gdf.geometry.to_numpy())
        return gpd.GeoSeries(geoms, index=gdf.index, crs=WGS84)
    return gpd.GeoSeries(gdf.geometry.to_numpy(), index=gdf.index, crs=system).to_crs(WGS84)


def _find_column(columns: list[str], wanted: tuple[str, ...], given: str | None,
                 what: str) -> str | None:
    if given is not None:
        if given not in columns:
            msg = f"--{what}-column {given!r} is not a column; columns are {columns!r}."
            raise SettingsError(msg)
        return given
    keys = {re.sub(r"\s+", "", normalise_text(c)).lower(): c for c in columns}
    for alias in wanted:
        if alias in keys:
            return keys[alias]
    return None


def _code_column(frame: pd.DataFrame, digits: int, given: str | None) -> str | None:
    cols = [c for c in frame.columns if c != "geometry"]
    found = _find_column(cols, _CODE_HEADERS, given, "code")
    if found is not None:
        return found
    # a column whose values mostly are codes of the right length
    for c in cols:
        text = frame[c].astype(str).str.replace(r"\.0$", "", regex=True).str.strip()
        if (text.str.fullmatch(rf"\d{{{digits}}}").mean()) >= 0.8:
            return c
    return None


def _code_text(value: object, digits: int) -> str:
    text = normalise_text(value)
    text = re.sub(r"\.0$", "", text)
    return text if re.fullmatch(rf"\d{{{digits}}}", text) else ""


def import_units(path: str | os.PathLike[str], region: Region, current: gpd.GeoDataFrame, *,
                 level: Level = "village", crs: str | None = None,
                 code_column: str | None = None, name_column: str | None = None,
                 layer_name: str | None = None, outline: shapely.Geometry | None = None,
                 parents: Mapping[str, str] | None = None) -> UnitsImport:
    """Match a polygon file to the pack's official units and build the new layer and report.

    Parameters
    ----------
    path
        SHP (also ``.zip``), GPKG or GeoJSON.
    region
        The pack (its names are the prefixes dropped from place names; its longitude gives the
        zone of unprefixed Gauss-Krüger eastings).
    current
        The pack's current units (``level="village"``) or townships, indexed by code: the
        official list and the polygons kept where the file has none.
    level
        ``village`` (12-digit codes) or ``township`` (9-digit).
    crs
        The file's system when it declares none or a wrong one: ``wgs84``, ``gcj02``,
        ``cgcs2000`` or ``EPSG:n`` (default: detected).
    code_column, name_column
        Columns with the official code / the name (default: recognised from the headers).
    layer_name
        Layer of a multi-layer GeoPackage.
    outline
        County outline (WGS84) for the gap check (default: union of ``current``).
    parents
        Village code → township code, to break name ties with a township column.
    """
    if level not in ("village", "township"):
        msg = f"--level must be 'village' or 'township', got {level!r}."
        raise SettingsError(msg)
    digits = 12 if level == "village" else 9
    raw = read_polygons(path, layer_name=layer_name)
    declared = raw.crs.to_string() if raw.crs is not None else None
    valid_geom = raw.geometry.notna() & ~raw.geometry.is_empty
    if not valid_geom.any():
        msg = f"{Path(path).name}: no feature has a geometry."
        raise DataFileError(msg)
    lon0 = float(current.to_crs(WGS84).union_all().centroid.x)
    system, why = detect_crs(tuple(raw[valid_geom].total_bounds), declared=declared,
                             region_lon=lon0, given=crs)
    geoms = _to_wgs84(raw, system)
    frame = pd.DataFrame(raw.drop(columns="geometry"))
    cols = list(frame.columns)
    code_col = _code_column(frame, digits, code_column)
    name_col = _find_column(cols, _NAME_HEADERS, name_column, "name")
    town_col = _find_column(cols, _TOWN_HEADERS, None, "township") if level == "village" else None
    if town_col == name_col:
        town_col = None
    if code_col is None and name_col is None:
        msg = (f"{Path(path).name}: found no code or name column among {cols!r}; name them with "
               "--code-column / --name-column.")
        raise SettingsError(msg)
    prefixes = [n for n in (region.province_zh, region.prefecture_zh, region.name_zh) if n]
    official = {str(c): str(n) for c, n in current["name"].items()}
    matcher = PlaceMatcher(official, kind=level, parents=parents, prefixes=prefixes)
    town_matcher = None
    if town_col is not None and parents:
        town_names = {str(c): str(n) for c, n in
                      current.drop_duplicates("township_code")
                      .set_index("township_code")["township_name"].items()} \
            if "township_name" in current.columns else {}
        town_matcher = PlaceMatcher(town_names, kind="township", prefixes=prefixes)

    rows: list[dict[str, Any]] = []
    parts: dict[str, list[shapely.Geometry]] = {}
    metric = geoms.to_crs(region.crs)
    for k, idx in enumerate(raw.index):
        in_code = _code_text(frame.loc[idx, code_col], digits) if code_col else ""
        in_name = str(frame.loc[idx, name_col]) if name_col else ""
        in_name = "" if in_name in ("None", "nan") else in_name
        row = {"kind": "feature", "feature": k + 1, "input_code": in_code, "input_name": in_name,
               "status": "", "code": "", "official_name": "", "area_m2": np.nan, "detail": ""}
        rows.append(row)
        geom = geoms.iloc[k]
        if geom is None or geom.is_empty or geom.geom_type not in ("Polygon", "MultiPolygon"):
            row.update(status="rejected", detail="no polygon geometry / 无面要素")
            continue
        geom = shapely.make_valid(geom)
        row["area_m2"] = round(float(metric.iloc[k].area), 1)
        code, status, detail = "", "unmatched", ""
        if in_code and in_code in official:
            code, status = in_code, "matched"
            if in_name and normalise_text(in_name) != normalise_text(official[code]):
                by_name = matcher.match(in_name)
                if by_name.code != code:
                    detail = (f"名称 {in_name!r} 与代码不符,按代码 / the name differs from the "
                              f"code's official name; matched by code")
        elif in_code:
            what = "村社区" if digits == 12 else "镇街"
            detail = f"代码 {in_code} 不是本区域的{what} / unknown code"
        if not code and in_name:
            within = None
            if town_matcher is not None:
                t = town_matcher.match(frame.loc[idx, town_col])
                within = t.code
            m = matcher.match(in_name, within=within)
            if m.matched:
                code = str(m.code)
                status = "matched" if m.status == "exact" else "renamed"
                detail = (detail + "; " if detail else "") + (
                    f"按名称匹配 / matched by name as {m.name}" if m.status != "exact" else "")
            else:
                detail = (detail + "; " if detail else "") + (
                    f"{m.status}: " + "、".join(m.candidates) if m.candidates else m.status)
        if code and code in parts:
            status = "duplicate"
            detail = (detail + "; " if detail else "") + "同一单元的又一部分,已合并 / a further " \
                     "part of a unit already matched: merged"
        if code:
            parts.setdefault(code, []).append(geom)
            row.update(code=code, official_name=official[code])
        row.update(status=status, detail=detail.strip("; "))

    layer = current.copy()
    imported = {c: shapely.union_all(g) for c, g in parts.items()}
    for code, geom in imported.items():
        layer.loc[code, "geometry"] = geom
    layer["approximate"] = [code not in imported and bool(a)
                            for code, a in zip(layer.index, layer["approximate"], strict=True)]
    old = layer["geometry_source"] if "geometry_source" in layer.columns else "synthetic"
    layer["geometry_source"] = np.where(layer.index.isin(list(imported)), "user", old)
    if level == "village":
        centres = gpd.GeoSeries([imported[c].representative_point() for c in imported],
                                index=list(imported), crs=WGS84)
        for code, pt in centres.items():
            layer.loc[code, ["centre_lon", "centre_lat"]] = [round(pt.x, 6), round(pt.y, 6)]
            layer.loc[code, "centre_source"] = "user"
    for code in current.index:
        if code not in imported:
            rows.append({"kind": "unit", "feature": np.nan, "input_code": "", "input_name": "",
                         "status": "no-polygon", "code": code, "official_name": official[code],
                         "area_m2": np.nan, "detail": "文件中无此单元,保留原(合成)面 / not in the "
                         "file: keeps its previous (synthetic) polygon"})
    county = outline if outline is not None else current.union_all()
    _check_inside(imported, county, region.crs, path=path, why=why)
    rows += _overlaps_and_gaps(imported, layer.geometry.to_numpy(), region.crs, county)
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    counts = {str(k): int(v) for k, v in report["status"].value_counts().items()}
    logger.info("import-units %s: %s (%s)", Path(path).name, counts, why)
    return UnitsImport(level=level, layer=gpd.GeoDataFrame(layer, geometry="geometry", crs=WGS84),
                       report=report, crs=f"{system} — {why}", counts=counts)


def _check_inside(polys: Mapping[str, shapely.Geometry], outline: shapely.Geometry, crs: str,
                  *, path: str | os.PathLike[str], why: str) -> None:
    """Refuse polygons that mostly lie outside the county: a wrong coordinate system."""
    if not polys:
        return
    metric = gpd.GeoSeries(list(polys.values()), crs=WGS84).to_crs(crs)
    county = gpd.GeoSeries([outline], crs=WGS84).to_crs(crs).iloc[0].buffer(1000.0)
    total = float(metric.area.sum())
    inside = float(metric.intersection(county).area.sum())
    if total > 0 and inside / total < 0.5:
        msg = (f"{Path(path).name}: only {inside / total:.0%} of the matched polygons' area lies "
               f"in the county (read as {why}); the coordinate system is probably wrong — pass "
               "--crs (wgs84, gcj02, cgcs2000 or EPSG:n).")
        raise CoordinateError(msg)


def _overlaps_and_gaps(polys: Mapping[str, shapely.Geometry], final: np.ndarray, crs: str,
                       outline: shapely.Geometry) -> list[dict[str, Any]]:
    """Report overlaps between imported polygons and gaps in the county (≥ 100 m²).

    Gaps are parts of the county that no polygon of the new layer covers (imported, or kept
    from before for units the file lacks).
    """
    if not polys:
        return []
    codes = list(polys)
    metric = gpd.GeoSeries([polys[c] for c in codes], crs=WGS84).to_crs(crs).to_numpy()
    tree = shapely.STRtree(metric)
    left, right = tree.query(metric, predicate="intersects")
    out: list[dict[str, Any]] = []
    for i, j in zip(left, right, strict=True):
        if i >= j:
            continue
        area = float(shapely.intersection(metric[i], metric[j]).area)
        if area >= MIN_FINDING_M2:
            out.append({"kind": "overlap", "feature": np.nan, "input_code": "",
                        "input_name": "", "status": "overlap", "code": f"{codes[i]}|{codes[j]}",
                        "official_name": "", "area_m2": round(area, 1),
                        "detail": "两个单元的面相互重叠 / the two units' polygons overlap"})
    county = gpd.GeoSeries([outline], crs=WGS84).to_crs(crs).iloc[0]
    cover = gpd.GeoSeries(final, crs=WGS84).to_crs(crs).to_numpy()
    gaps = shapely.difference(county, shapely.union_all(cover))
    for k, piece in enumerate(getattr(gaps, "geoms", [gaps])):
        if piece.is_empty or piece.area < MIN_FINDING_M2 or piece.geom_type != "Polygon":
            continue
        c = gpd.GeoSeries([piece.representative_point()], crs=crs).to_crs(WGS84).iloc[0]
        out.append({"kind": "gap", "feature": np.nan, "input_code": "", "input_name": "",
                    "status": "gap", "code": "", "official_name": "",
                    "area_m2": round(float(piece.area), 1),
                    "detail": f"县界内无单元覆盖 / inside the county, no unit covers it (near "
                              f"{c.x:.5f}, {c.y:.5f}) [{k + 1}]"})
    return out


def imported_at() -> str:
    """Today's date for the provenance note."""
    return dt.date.today().isoformat()


def import_units_into_pack(path: str | os.PathLike[str], pack: str | os.PathLike[str], *,
                           level: Level = "village", crs: str | None = None,
                           code_column: str | None = None, name_column: str | None = None,
                           layer_name: str | None = None, licence: str | None = None
                           ) -> tuple[UnitsImport, Region, Path]:
    """Import a polygon file into a pack: new layer, report, provenance flipped to real.

    Village polygons replace the synthetic ones of the matched units; synthetic demand points
    are then redrawn inside the new polygons (same total, still labelled synthetic) so that no
    resident sits in a neighbour's village. The report is written to
    ``reports/import-units-<level>.csv`` in the pack. A pack that no longer loads is restored.

    Returns
    -------
    (UnitsImport, Region, Path)
        The import, the updated manifest and the report file.
    """
    from qyx_geo._tables import write_csv
    from qyx_geo.packs import (
        FileInfo,
        demand_text,
        ensure_writable,
        townships_text,
        units_text,
        update_pack,
    )
    from qyx_geo.region import DEFAULT_LAYOUT, load_region, read_region

    region = read_region(pack)
    ensure_writable(region)
    ds = load_region(region)
    current = ds.units if level == "village" else ds.townships
    parents = {str(c): str(t) for c, t in ds.units["township_code"].items()}
    result = import_units(path, region, current, level=level, crs=crs, code_column=code_column,
                          name_column=name_column, layer_name=layer_name,
                          outline=ds.outline.geometry.iloc[0], parents=parents)
    key = "units" if level == "village" else "townships"
    target = region.path(key)
    rel = target.relative_to(region.root).as_posix() if target is not None \
        else DEFAULT_LAYOUT[key]
    texts = {rel: units_text(result.layer) if level == "village" else townships_text(result.layer)}
    prov: dict[str, tuple[str, Any]] = {}
    matched = int(sum(result.counts.get(s, 0) for s in ("matched", "renamed")))
    missing = result.counts.get("no-polygon", 0)
    old = region.files[key]
    prov[key] = (rel, FileInfo(
        "real" if not missing else "mixed",
        f"{old.source}; polygons: {Path(path).name} imported {imported_at()}",
        licence or old.licence or "supplied by the planning office (licence not stated)",
        f"{len(current) - missing} of {len(current)} polygons from the file ({result.crs}); "
        f"{missing} kept synthetic; {matched} features matched"))
    if level == "village" and region.files["demand"].status == "synthetic":
        from qyx_geo.synth import DEFAULT_SEED
        from qyx_geo.synth.demand import build_demand

        demand = build_demand(result.layer, ds.townships, seed=DEFAULT_SEED, total=ds.population)
        drel = region.files["demand"].to_dict(region.root)["path"]
        texts[drel] = demand_text(demand)
        d = region.files["demand"]
        prov["demand"] = (drel, FileInfo(d.status, d.source, d.licence,
                                         (d.note + "; " if d.note else "")
                                         + "redrawn inside the imported village polygons"))
    report_rel = f"reports/import-units-{level}.csv"
    buf = io.StringIO()
    write_csv(result.report, buf, index=False)  # formula-guarded cells, for spreadsheets
    blobs = {report_rel: buf.getvalue().encode("utf-8-sig")}
    backup = {r: (region.root / r).read_bytes() for r in [*texts, *blobs, "region.toml"]
              if (region.root / r).is_file()}
    updated = update_pack(region, texts=texts, blobs=blobs, provenance=prov)
    try:
        load_region(updated)
    except Exception:
        for r, data in backup.items():
            (region.root / r).write_bytes(data)
        raise
    return result, updated, region.root / report_rel
