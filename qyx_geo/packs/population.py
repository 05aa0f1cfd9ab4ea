"""``qyx region import-population``: a per-unit population table into a pack's demand points.

The table (XLSX or CSV in UTF-8, GBK or GB18030, title rows above the header allowed — read by
the facility intake's reader, :func:`qyx_geo.intake._readers.read_table`) has one row per
village/community: its code or name (matched with the intake's rules), the resident total and,
optionally, the 0–3 and 60+ groups as counts or shares. Every row is accounted for in the
report: ``matched``, ``renamed``, ``unmatched``, ``duplicate``, ``rejected`` (bad number,
groups larger than the total), ``total-row`` (合计/小计 rows, not used); then every unit with
``no-population`` (it keeps its previous, synthetic, residents).

Demand points are then placed inside each unit, by the first method that applies:

* ``buildings`` — spread over residential buildings of an OSM extract, footprint × levels
  (:func:`qyx_geo.demand.demand_from_buildings`);
* ``raster`` — over the cells of a population raster (GeoTIFF such as WorldPop) that fall in
  the unit, in proportion to their values, gathered on a 250 m grid;
* ``uniform`` — evenly over the unit's polygon (a 250 m lattice), the last resort.

The method is recorded per point (``method``), in the report and in the manifest.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
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

from qyx_geo._errors import DataFileError, SettingsError
from qyx_geo.intake._names import PlaceMatcher, normalise_header, normalise_text
from qyx_geo.intake._readers import CellError, parse_count, read_table
from qyx_geo.region import Region
from qyx_geo.schema import WGS84

__all__ = ["METHODS", "PopulationImport", "import_population", "import_population_into_pack",
           "read_population"]

logger = logging.getLogger(__name__)

Method = Literal["buildings", "raster", "uniform"]
METHODS = ("buildings", "raster", "uniform")
#: Header names recognised per field (compared after normalise_header and bracket removal).
HEADERS: dict[str, tuple[str, ...]] = {
    "code": ("代码", "编码", "行政代码", "区划代码", "统计代码", "统计用区划代码", "村代码",
             "村社区代码", "code", "adcode"),
    "name": ("村(社区)", "村社区", "村(居)", "村居", "村名", "村名称", "村(社区)名称", "名称",
             "单位", "单位名称", "行政村", "社区", "村", "name", "village"),
    "township": ("镇街", "镇(街道)", "乡镇", "乡镇(街道)", "所属镇街", "所属乡镇", "镇", "街道",
                 "township", "town"),
    "pop": ("常住人口", "总人口", "人口", "人口数", "人口总数", "常住人口数", "户籍人口",
            "人数", "pop", "population", "total", "residents"),
    "pop_0_3": ("0-3岁", "0~3岁", "0～3岁", "0至3岁", "0-3岁人口", "3岁以下", "婴幼儿",
                "0-3岁婴幼儿", "pop_0_3", "age_0_3"),
    "pop_60p": ("60岁以上", "60岁及以上", "60+", "60岁以上人口", "60岁及以上人口", "老年人口",
                "pop_60p", "age_60p", "age_60_plus"),
}
_SHARE_WORDS = ("占比", "比例", "比重", "share", "%", "％")
_TOTAL_ROW = re.compile(r"^(合计|总计|小计|全市|全县|全区|total|sum)", re.IGNORECASE)
_GRID_M = 250.0
REPORT_COLUMNS = ("kind", "row", "input_code", "input_name", "status", "code", "official_name",
                  "pop", "pop_0_3", "pop_60p", "method", "detail")


@dataclasses.dataclass(frozen=True)
class PopulationImport:
    """What :func:`import_population` did.

    Attributes
    ----------
    per_unit
        Index unit code; ``pop``, ``pop_0_3``, ``pop_60p`` (whole residents) of the units the
        table gives.
    demand
        The new demand points (index ``id``; demand columns, ``method``), units the table lacks
        keep their previous points.
    report
        One row per table row and per unit without a row (:data:`REPORT_COLUMNS`).
    method
        The placing method used (``buildings``, ``raster`` or ``uniform``).
    encoding, header_row
        How the table was read.
    counts
        Status → number of report rows.
    """

    per_unit: pd.DataFrame
    demand: gpd.GeoDataFrame
    report: pd.DataFrame
    method: str
    encoding: str | None
    header_row: int | None
    counts: Mapping[str, int]


def _columns(headers: list[str], given: Mapping[str, str | None]) -> dict[str, tuple[str, bool]]:
    """Field → (header, is_share) for the recognised columns."""
    found: dict[str, tuple[str, bool]] = {}
    for field, header in given.items():
        if header is not None:
            if header not in headers:
                msg = f"--{field.replace('_', '-')}-column {header!r} is not a column: {headers!r}"
                raise SettingsError(msg)
            found[field] = (header, any(w in normalise_header(header) for w in _SHARE_WORDS))
    for header in headers:
        key = normalise_header(header)
        share = any(w in key for w in _SHARE_WORDS)
        bare = re.sub(r"[(（\[]?(人|个|%|％|占比|比例|比重)[)）\]]?$", "", key)
        for w in _SHARE_WORDS:
            bare = bare.replace(w, "")
        for field, words in HEADERS.items():
            if field in found:
                continue
            if key in {normalise_header(w) for w in words} or \
                    bare in {normalise_header(w) for w in words}:
                found[field] = (header, share)
                break
    return found


def _share(value: object) -> float | None:
    text = normalise_text(value).replace("％", "%")
    if not text or text.lower() in ("nan", "none", "-", "—"):
        return None
    pct = text.endswith("%")
    try:
        number = float(text.rstrip("%"))
    except ValueError:
        raise CellError(f"{value!r} is not a share like 0.23 or 23%") from None
    if pct or number > 1.0:
        number /= 100.0
    if not 0.0 <= number <= 1.0:
        raise CellError(f"{value!r} is not a share between 0 and 1 (or 0 and 100%)")
    return number


def read_population(path: str | os.PathLike[str], region: Region, units: gpd.GeoDataFrame, *,
                    sheet: str | int | None = None, code_column: str | None = None,
                    name_column: str | None = None, pop_column: str | None = None,
                    young_column: str | None = None, old_column: str | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Read and match the table; return ``(per_unit, report, raw_table)``."""
    words = [w for ws in HEADERS.values() for w in ws]
    raw = read_table(Path(path), sheet=sheet, header_words=words)
    frame = raw.frame.drop(columns="__extra__", errors="ignore")
    headers = [str(c) for c in frame.columns]
    cols = _columns(headers, {"code": code_column, "name": name_column, "pop": pop_column,
                              "pop_0_3": young_column, "pop_60p": old_column})
    if "pop" not in cols:
        msg = (f"{Path(path).name}: no resident total column among {headers!r} (header on row "
               f"{raw.header_row}); name it with --pop-column.")
        raise SettingsError(msg)
    if "code" not in cols and "name" not in cols:
        msg = (f"{Path(path).name}: no code or name column among {headers!r}; name one with "
               "--code-column / --name-column.")
        raise SettingsError(msg)
    prefixes = [n for n in (region.province_zh, region.prefecture_zh, region.name_zh) if n]
    official = {str(c): str(n) for c, n in units["name"].items()}
    parents = {str(c): str(t) for c, t in units["township_code"].items()}
    matcher = PlaceMatcher(official, kind="village", parents=parents, prefixes=prefixes)
    towns = {str(t): str(n) for t, n in zip(units["township_code"], units["township_name"],
                                            strict=True)} if "township_name" in units else {}
    town_matcher = PlaceMatcher(towns, kind="township", prefixes=prefixes) if towns else None
    town_col = _columns(headers, {}).get("township", (None, False))[0]
    rows: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for row_no, rec in frame.iterrows():
        in_code = normalise_text(rec[cols["code"][0]]) if "code" in cols else ""
        in_code = re.sub(r"\.0$", "", in_code)
        in_name = normalise_text(rec[cols["name"][0]]) if "name" in cols else ""
        out = {"kind": "row", "row": int(row_no), "input_code": in_code, "input_name": in_name,
               "status": "", "code": "", "official_name": "", "pop": np.nan,
               "pop_0_3": np.nan, "pop_60p": np.nan, "method": "", "detail": ""}
        rows.append(out)
        label = in_name or in_code
        if _TOTAL_ROW.match(label) or (not in_code and not in_name
                                        and _TOTAL_ROW.match(normalise_text(rec.iloc[0]))):
            out.update(status="total-row", detail="合计行,不作为单元 / a total row, not a unit")
            continue
        try:
            pop = parse_count(rec[cols["pop"][0]])
            if pop is None:
                raise CellError("the resident total is blank")
            groups = {}
            for field in ("pop_0_3", "pop_60p"):
                if field not in cols:
                    continue
                header, is_share = cols[field]
                value = _share(rec[header]) if is_share else parse_count(rec[header])
                if value is None:
                    continue
                groups[field] = round(value * pop) if is_share else value
            if sum(groups.values()) > pop:
                raise CellError(f"0–3 and 60+ ({sum(groups.values()):,.0f}) exceed the total "
                                f"({pop:,.0f})")
        except CellError as err:
            out.update(status="rejected", detail=f"{err}; fix the cell")
            continue
        code, status, detail = "", "unmatched", ""
        if in_code in official:
            code, status = in_code, "matched"
        else:
            within = None
            if town_col is not None and town_matcher is not None:
                within = town_matcher.match(rec[town_col]).code
            m = matcher.match(in_name or in_code, within=within)
            if m.matched:
                code = str(m.code)
                status = "matched" if m.status == "exact" else "renamed"
                detail = "" if m.status == "exact" else f"按名称匹配 / matched as {m.name}"
            else:
                detail = f"{m.status}" + (f": {'、'.join(m.candidates)}" if m.candidates else "")
        if code and code in seen:
            status, detail = "duplicate", (f"与第 {seen[code]} 行同一单元,未采用 / the same unit "
                                           f"as row {seen[code]}: not used")
        elif code:
            seen[code] = int(row_no)
        out.update(status=status, code=code, official_name=official.get(code, ""), pop=pop,
                   pop_0_3=groups.get("pop_0_3", np.nan), pop_60p=groups.get("pop_60p", np.nan),
                   detail=detail)
    report = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    used = report[report["status"].isin(["matched", "renamed"])].set_index("code")
    per_unit = used[["pop", "pop_0_3", "pop_60p"]].copy()
    for code in units.index:
        if code not in per_unit.index:
            report.loc[len(report)] = {"kind": "unit", "row": np.nan, "input_code": "",
                                       "input_name": "", "status": "no-population", "code": code,
                                       "official_name": official[code], "pop": np.nan,
                                       "pop_0_3": np.nan, "pop_60p": np.nan, "method": "",
                                       "detail": "表中无此单元,保留原(合成)居民点 / not in the "
                                                 "table: keeps its previous (synthetic) points"}
    return per_unit, report, raw


def _lattice(poly_m: shapely.Geometry, spacing_m: float) -> np.ndarray:
    minx, miny, maxx, maxy = poly_m.bounds
    xs = np.arange(minx + spacing_m / 2, maxx, spacing_m)
    ys = np.arange(miny + spacing_m / 2, maxy, spacing_m)
    gx, gy = np.meshgrid(xs, ys)
    xy = np.column_stack([gx.ravel(), gy.ravel()])
    inside = xy[shapely.contains_xy(poly_m, xy[:, 0], xy[:, 1])] if len(xy) else xy
    if len(inside) == 0:
        p = poly_m.representative_point()
        inside = np.array([[p.x, p.y]])
    return inside


def _raster_weights(raster: str | os.PathLike[str], poly: shapely.Geometry,
                    crs_m: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Cell centres (metric) and values of the raster cells inside ``poly`` (WGS84)."""
    import rasterio
    from rasterio.mask import mask

    with rasterio.open(raster) as src, warnings.catch_warnings():
        # rasterio 1.4 multiplies affine transforms with `*`, which affine 3.1 flags as pending
        # deprecation; not ours to fix, and harmless
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        shape_in = gpd.GeoSeries([poly], crs=WGS84).to_crs(src.crs).iloc[0]
        try:
            data, transform = mask(src, [shapely.geometry.mapping(shape_in)], crop=True,
                                   filled=True, nodata=0)
        except ValueError:  # the unit lies outside the raster
            return None
        band = data[0].astype(float)
        band[~np.isfinite(band) | (band < 0)] = 0.0
        if src.nodata is not None:
            band[band == src.nodata] = 0.0
        rows, cols = np.nonzero(band > 0)
        if len(rows) == 0:
            return None
        xs, ys = rasterio.transform.xy(transform, rows, cols)
        pts = gpd.GeoSeries(gpd.points_from_xy(xs, ys), crs=src.crs).to_crs(crs_m)
        return shapely.get_coordinates(pts.to_numpy()), band[rows, cols]


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    from qyx_geo.synth.demand import largest_remainder

    if total == 0:
        return np.zeros(len(weights), dtype=np.int64)
    return largest_remainder(weights, total)


def _place_unit(poly: shapely.Geometry, crs_m: str, *, raster: str | os.PathLike[str] | None
                ) -> tuple[np.ndarray, np.ndarray, str]:
    """Points (metric) and weights for one unit, and the method used."""
    poly_m = gpd.GeoSeries([poly], crs=WGS84).to_crs(crs_m).iloc[0]
    if raster is not None:
        found = _raster_weights(raster, poly, crs_m)
        if found is not None:
            xy, w = found
            # gather cells on a 250 m grid: points of the same size as the other methods'
            key = np.floor(xy / _GRID_M).astype(np.int64)
            frame = pd.DataFrame({"kx": key[:, 0], "ky": key[:, 1], "x": xy[:, 0] * w,
                                  "y": xy[:, 1] * w, "w": w}).groupby(["kx", "ky"]).sum()
            pts = frame[["x", "y"]].to_numpy() / frame[["w"]].to_numpy()
            inside = shapely.contains_xy(poly_m, pts[:, 0], pts[:, 1])
            if inside.any():
                return pts[inside], frame["w"].to_numpy()[inside], "raster"
    pts = _lattice(poly_m, _GRID_M)
    return pts, np.ones(len(pts)), "uniform"


def import_population(path: str | os.PathLike[str], region: Region, units: gpd.GeoDataFrame,
                      previous: gpd.GeoDataFrame, *, osm: str | os.PathLike[str] | None = None,
                      raster: str | os.PathLike[str] | None = None,
                      sheet: str | int | None = None, **columns: str | None
                      ) -> PopulationImport:
    """Read a population table and build the new demand points.

    Parameters
    ----------
    path
        XLSX or CSV table, one row per village/community.
    region
        The pack (names for matching, metric CRS).
    units
        The pack's units (index code, polygons).
    previous
        The pack's current demand points, kept for units the table lacks.
    osm
        An OSM extract to spread residents over residential buildings (``buildings``).
    raster
        A population raster (GeoTIFF) for ``raster``; ignored when ``osm`` is given.
    sheet
        Sheet of an XLSX file.
    **columns
        ``code_column``, ``name_column``, ``pop_column``, ``young_column``, ``old_column``.
    """
    per_unit, report, raw = read_population(path, region, units, sheet=sheet, **columns)
    if per_unit.empty:
        msg = (f"{Path(path).name}: no row matched a unit of {region.name_zh}; see the report "
               "(wrong table, or a code/name column not recognised: --code-column/--name-column)")
        raise DataFileError(msg)
    pops = per_unit["pop"].round().astype(np.int64)
    frames: list[pd.DataFrame] = []
    methods: dict[str, str] = {}
    if osm is not None:
        from qyx_geo.demand import demand_from_buildings

        placed = demand_from_buildings(Path(osm), population={c: int(p) for c, p in pops.items()},
                                       units=units.loc[list(pops.index)], crs=region.crs)
        pts = placed.points
        methods = {str(c): f"buildings ({m})" for c, m in placed.units["method"].items()}
        for code, grp in pts.groupby("unit_code"):
            frames.append(_groups(str(code), grp.geometry.to_crs(region.crs).get_coordinates()
                                  .to_numpy(), grp["pop"].to_numpy(float), per_unit.loc[code],
                                  units, methods.get(str(code), "buildings")))
    else:
        for code in pops.index:
            xy, w, how = _place_unit(units.loc[code, "geometry"], region.crs, raster=raster)
            methods[code] = how
            frames.append(_groups(code, xy, w, per_unit.loc[code], units, how))
    new = pd.concat(frames, ignore_index=True)
    xy = np.vstack(new.pop("xy").to_list())
    new_pts = gpd.GeoDataFrame(new, geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
                               crs=region.crs).to_crs(WGS84)
    new_pts.index = pd.Index([f"{c}-{k + 1:02d}" for c, k in
                              zip(new_pts["unit_code"], new_pts.groupby("unit_code").cumcount(),
                                  strict=True)], name="id")
    keep = previous[~previous["unit_code"].isin(list(pops.index))].copy()
    keep["method"] = "previous"
    demand = gpd.GeoDataFrame(pd.concat([keep, new_pts]), geometry="geometry", crs=WGS84)
    demand.index.name = "id"
    report.loc[report["code"].isin(list(methods)) & (report["kind"] == "row")
               & report["status"].isin(["matched", "renamed"]), "method"] = \
        report["code"].map(methods)
    method = "buildings" if osm is not None else ("raster" if raster is not None
                                                  and "raster" in methods.values() else "uniform")
    counts = {str(k): int(v) for k, v in report["status"].value_counts().items()}
    return PopulationImport(per_unit=per_unit, demand=demand, report=report, method=method,
                            encoding=raw.encoding, header_row=raw.header_row, counts=counts)


def _groups(code: str, xy_m: np.ndarray, weights: np.ndarray, row: pd.Series,
            units: gpd.GeoDataFrame, method: str) -> pd.DataFrame:
    """Demand rows of one unit: total and age groups split over its points by ``weights``."""
    total = round(float(row["pop"]))
    pop = _split(total, weights)
    young_total = row["pop_0_3"]
    old_total = row["pop_60p"]
    young = _split(round(young_total), pop.astype(float)) if not _nan(young_total) and pop.sum() \
        else np.zeros(len(pop), dtype=np.int64)
    old = _split(round(old_total), pop.astype(float)) if not _nan(old_total) and pop.sum() \
        else np.zeros(len(pop), dtype=np.int64)
    old = np.minimum(old, pop - young)
    keep = pop > 0
    if not keep.any():  # a unit of 0 residents: one empty point keeps it in the tables
        keep[0] = True
    return pd.DataFrame({"xy": list(xy_m[keep]), "unit_code": code,
                         "township_code": str(units.loc[code, "township_code"]),
                         "pop": pop[keep], "pop_0_3": young[keep], "pop_60p": old[keep],
                         "source": "user", "method": method})


def _nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def import_population_into_pack(path: str | os.PathLike[str], pack: str | os.PathLike[str], *,
                                osm: str | os.PathLike[str] | None = None,
                                raster: str | os.PathLike[str] | None = None,
                                sheet: str | int | None = None, source: str | None = None,
                                licence: str | None = None, **columns: str | None
                                ) -> tuple[PopulationImport, Region, Path]:
    """Import a population table into a pack: new demand points, report, provenance real."""
    from qyx_geo._tables import write_csv
    from qyx_geo.packs import FileInfo, demand_text, ensure_writable, meta_of, update_pack
    from qyx_geo.region import load_region, read_region

    region = read_region(pack)
    ensure_writable(region)
    ds = load_region(region)
    result = import_population(path, region, ds.units, ds.demand, osm=osm, raster=raster,
                               sheet=sheet, **columns)
    demand = result.demand
    pts_m = demand  # ids: <unit code>-<n>, stable and unique
    rel = region.files["demand"].to_dict(region.root)["path"]
    missing = result.counts.get("no-population", 0)
    name = Path(path).name
    how = {"buildings": f"spread over residential buildings of {Path(osm).name if osm else ''} "
                        "(floor area = footprint × levels)",
           "raster": f"spread over the cells of {Path(raster).name if raster else ''}",
           "uniform": "spread evenly within each unit's polygon (no buildings or raster given)"}
    total = int(demand["pop"].sum())
    meta = dataclasses.replace(meta_of(region), population_total=total,
                               population_source=source or f"{name} (per-unit table)")
    prov = {"demand": (rel, FileInfo(
        "real" if not missing else "mixed",
        f"{name} imported {pd.Timestamp.today().date()} ({result.encoding or 'xlsx'}, header "
        f"row {result.header_row}); {how[result.method]}",
        licence or "supplied by the planning office (licence not stated)",
        f"method: {result.method}; {len(result.per_unit)} units from the table, {missing} kept "
        "their previous points"))}
    report_rel = "reports/import-population.csv"
    buf = io.StringIO()
    write_csv(result.report, buf, index=False)
    backup = {r: (region.root / r).read_bytes() for r in (rel, report_rel, "region.toml")
              if (region.root / r).is_file()}
    updated = update_pack(region, texts={rel: demand_text(_with_lonlat(pts_m))},
                          blobs={report_rel: buf.getvalue().encode("utf-8-sig")},
                          provenance=prov, meta=meta)
    try:
        load_region(updated)
    except Exception:  # the pack must stay loadable: put the old files back
        for r, data in backup.items():
            (region.root / r).write_bytes(data)
        raise
    return result, updated, region.root / report_rel


def _with_lonlat(demand: gpd.GeoDataFrame) -> pd.DataFrame:
    out = demand.reset_index()
    out["lon"] = out.geometry.x.round(6)
    out["lat"] = out.geometry.y.round(6)
    return out
