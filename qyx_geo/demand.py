"""Residents from OSM: spread a population over residential buildings (or streets) of an extract.

:func:`demand_from_buildings` places a known number of residents — one total, or one total per
village/community — onto the residential buildings of an OSM extract in proportion to their
floor area (footprint area × ``building:levels``), the building-level disaggregation GOAT uses
(Pajares et al. 2021, *ISPRS Int. J. Geo-Inf.* 10, 662). Where a unit has no residential
building mapped — common in Chinese villages, where OSM holds roads but few buildings — its
residents are spread evenly along its residential streets (``highway=residential``,
``living_street``, ``unclassified``), one point every ``street_spacing_m``; with neither, they
sit at the unit's representative point. Every unit's method is reported.

The result has the columns of :data:`qyx_geo.schema.DEMAND_COLUMNS` (whole residents per
point, the total kept exactly by largest-remainder rounding; age groups from shares) and is
written by :func:`write_demand` as the same ``demand.csv`` the dataset loads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qyx_geo._errors import DataFileError, SettingsError
from qyx_geo._outputs import output_set
from qyx_geo._tables import write_csv
from qyx_geo.crs import metric_crs_for, validate_metric_crs
from qyx_geo.osm_features import TagRule, scan_features
from qyx_geo.schema import DEMAND_COLUMNS, WGS84

__all__ = [
    "NON_RESIDENTIAL_BUILDINGS",
    "RESIDENTIAL_BUILDINGS",
    "RESIDENTIAL_STREETS",
    "SHARE_0_3_CHINA_2020",
    "SHARE_60P_CHINA_2020",
    "DemandResult",
    "demand_from_buildings",
    "write_demand",
]

logger = logging.getLogger(__name__)

#: ``building=*`` values taken as homes.
RESIDENTIAL_BUILDINGS = ("residential", "apartments", "house", "detached", "semidetached_house",
                         "terrace", "dormitory", "bungalow", "farm", "houseboat", "static_caravan",
                         "cabin", "stilt_house", "hut")
#: ``building=*`` values never taken as homes (``building=yes`` counts only inside
#: ``landuse=residential``).
NON_RESIDENTIAL_BUILDINGS = ("commercial", "retail", "industrial", "warehouse", "office",
                             "school", "kindergarten", "university", "college", "hospital",
                             "church", "chapel", "cathedral", "mosque", "temple", "shrine",
                             "public", "civic", "government", "train_station", "transportation",
                             "garage", "garages", "parking", "shed", "roof", "hangar", "kiosk",
                             "service", "supermarket", "sports_hall", "stadium", "greenhouse",
                             "barn", "cowshed", "stable", "farm_auxiliary", "construction",
                             "ruins", "bunker", "toilets", "hotel", "fire_station")
#: ``highway=*`` values along which residents are spread where no buildings are mapped.
RESIDENTIAL_STREETS = ("residential", "living_street", "unclassified")
#: Share aged 60+ in China's 2020 census (264.02 of 1,411.78 million).
SHARE_60P_CHINA_2020 = 0.187
#: Share aged 0-3 (under three): births 2018-2020 (15.23 + 14.65 + 12.02 million) over the
#: 2020 census population.
SHARE_0_3_CHINA_2020 = 0.030
_LEVEL_M = 3.0  # storey height used when only ``height`` is mapped


@dataclasses.dataclass(frozen=True)
class DemandResult:
    """Residents placed by :func:`demand_from_buildings`.

    Attributes
    ----------
    points
        Demand points (index ``id``, WGS84) with :data:`~qyx_geo.schema.DEMAND_COLUMNS` plus
        ``method`` (``building``/``street``/``centre``), ``osm_id`` and ``floor_area_m2``.
    units
        One row per unit (index code; ``"all"`` without units): ``population``, ``method``,
        ``buildings``, ``floor_area_m2``, ``street_m``, ``points``.
    counts
        Buildings read, taken as homes, excluded (by tag; ``building=yes`` outside residential
        land; broken geometry, e.g. clipped at the extract's edge; outside every unit).
    crs
        Metric CRS used for areas and street lengths.
    source
        The OSM file and its newest object timestamp.
    """

    points: gpd.GeoDataFrame
    units: pd.DataFrame
    counts: Mapping[str, int]
    crs: str
    source: Mapping[str, str]

    def summary(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary."""
        return {"source": dict(self.source), "crs": self.crs, "counts": dict(self.counts),
                "population": int(self.points["pop"].sum()),
                "methods": self.units["method"].value_counts().to_dict(),
                "method": "floor area = footprint x building:levels (GOAT); streets where no "
                          "buildings; unit centre where neither"}


def _levels(tags: Mapping[str, str], default_levels: float) -> float:
    for key, scale in (("building:levels", 1.0), ("height", 1.0 / _LEVEL_M)):
        text = tags.get(key)
        if text:
            m = re.match(r"\s*(\d+(?:\.\d+)?)", str(text).replace(",", "."))
            if m and float(m.group(1)) > 0:
                return max(1.0, float(m.group(1)) * scale)
    return default_levels


def _check(population: object, share_0_3: float, share_60p: float, default_levels: float,
           street_spacing_m: float) -> None:
    for name, value, low, high in (("share_0_3", share_0_3, 0, 1), ("share_60p", share_60p, 0, 1),
                                   ("default_levels", default_levels, 1, 200),
                                   ("street_spacing_m", street_spacing_m, 1, 10_000)):
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not low <= value <= high):
            msg = f"{name} must be a number in [{low}, {high}]; got {value!r}"
            raise SettingsError(msg)
    if share_0_3 + share_60p > 1:
        msg = f"share_0_3 + share_60p = {share_0_3 + share_60p:g} exceeds 1; they are parts of pop"
        raise SettingsError(msg)
    values = population.values() if isinstance(population, Mapping) else [population]
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating) \
                or not np.isfinite(v) or v < 0 or not float(v).is_integer():
            msg = f"population must be whole numbers of residents >= 0; got {v!r}"
            raise SettingsError(msg)


def demand_from_buildings(
    path: str | Path,
    *,
    population: int | Mapping[str, int],
    units: gpd.GeoDataFrame | None = None,
    share_0_3: float = SHARE_0_3_CHINA_2020,
    share_60p: float = SHARE_60P_CHINA_2020,
    default_levels: float = 1.0,
    street_spacing_m: float = 50.0,
    crs: str | None = None,
) -> DemandResult:
    """Spread residents over the residential buildings of an OSM extract.

    Parameters
    ----------
    path
        OSM extract (``.osm``, ``.osm.bz2``, ``.osm.pbf``).
    population
        Residents in total, or per unit code (then ``units`` is required and every code must
        be one of its index values).
    units
        Villages/communities (index = code, column ``township_code``, polygons in any CRS).
        Points get their unit's codes; buildings outside every unit are left out (counted).
    share_0_3, share_60p
        Shares of residents aged 0-3 and 60+ (default: China, 2020 census).
    default_levels
        Storeys of a building that maps neither ``building:levels`` nor ``height``.
    street_spacing_m
        Spacing of the points along residential streets where a unit has no buildings.
    crs
        Metric CRS for areas and lengths; default :func:`qyx_geo.crs.metric_crs_for` the data.

    Returns
    -------
    DemandResult

    Raises
    ------
    DataFileError
        The file is not OSM data, or it holds no residential building nor street to place
        residents on.
    SettingsError
        A bad option, or ``population`` per unit without ``units`` / with unknown codes.
    """
    _check(population, share_0_3, share_60p, default_levels, street_spacing_m)
    file = Path(path)
    per_unit = isinstance(population, Mapping)
    if per_unit and units is None:
        msg = "population per unit code needs units= (the villages/communities with those codes)"
        raise SettingsError(msg)
    units_w = None if units is None else units.to_crs(WGS84)
    if per_unit and units_w is not None:
        unknown = sorted(set(population) - set(units_w.index.astype(str)))  # type: ignore[arg-type]
        if unknown:
            msg = (f"population names unit codes not in units: {unknown[:5]!r}; use the codes of "
                   "the units' index")
            raise SettingsError(msg)
    scan = scan_features(file, [TagRule({"building": ("*",)}),
                                TagRule({"landuse": ("residential",)}),
                                TagRule({"highway": RESIDENTIAL_STREETS})],
                         keys=("building", "landuse", "highway"))
    rows = scan.rows
    metric = validate_metric_crs(crs) if crs else metric_crs_for(_bounds(rows, units_w, file))
    buildings, counts = _homes(rows, metric, default_levels)
    streets = rows[(rows["rule"] == 2) & (rows["shape"] == "line")]
    street_lines = gpd.GeoSeries(list(streets["geometry"]), crs=WGS84).to_crs(metric)
    if units_w is None:
        groups = {"all": (float(population), None)}  # type: ignore[arg-type]
    else:
        pops = population if per_unit else None
        groups = {str(code): (float(pops.get(str(code), 0)) if pops is not None else np.nan,  # type: ignore[union-attr]
                              geom) for code, geom in units_w.to_crs(metric).geometry.items()}
    points, report, outside = _place(groups, buildings, street_lines, metric,
                                     float(population) if not per_unit else None,  # type: ignore[arg-type]
                                     street_spacing_m)
    counts["outside_units"] = outside
    if points.empty and sum(p for p, _ in groups.values() if np.isfinite(p)) > 0:
        msg = (f"{file.name}: no residential building and no residential street "
               f"({', '.join(RESIDENTIAL_STREETS)}) to place residents on; use an extract that "
               "covers the area")
        raise DataFileError(msg)
    points = _finish(points, units_w, share_0_3, share_60p)
    return DemandResult(points=points, units=report, counts=counts, crs=metric,
                        source={"file": str(file), "osm_timestamp": scan.timestamp})


def _bounds(rows: pd.DataFrame, units: gpd.GeoDataFrame | None, file: Path
            ) -> tuple[float, float, float, float]:
    if units is not None and len(units):
        return tuple(units.total_bounds)
    ok = rows.dropna(subset=["lon"])
    if ok.empty:
        msg = f"{file.name}: no building or street with coordinates; use a fuller extract"
        raise DataFileError(msg)
    return (ok["lon"].min(), ok["lat"].min(), ok["lon"].max(), ok["lat"].max())


def _homes(rows: pd.DataFrame, metric: str, default_levels: float
           ) -> tuple[gpd.GeoDataFrame, dict[str, int]]:
    """Return residential buildings (metric polygons, floor area) and the counts of the rest."""
    b = rows[rows["rule"] == 0]
    land = rows[(rows["rule"] == 1) & (rows["shape"] == "polygon")]
    land_union = shapely.union_all(list(land["geometry"])) if len(land) else None
    value = b["tags"].map(lambda t: t.get("building", ""))
    broken = (b["shape"] != "polygon").to_numpy().copy()
    home = value.isin(RESIDENTIAL_BUILDINGS).to_numpy()
    maybe = (value == "yes").to_numpy().copy()
    if land_union is not None and maybe.any():
        inside = shapely.contains_xy(land_union, b["lon"].fillna(0).to_numpy(),
                                     b["lat"].fillna(0).to_numpy())
        maybe &= inside
    else:
        maybe[:] = False
    take = (home | maybe) & ~broken
    counts = {"buildings": len(b), "homes": int(take.sum()),
              "excluded_by_tag": int((~(home | (value == "yes").to_numpy()) & ~broken).sum()),
              "excluded_yes_outside_residential_land": int(((value == "yes").to_numpy() & ~maybe
                                                            & ~broken).sum()),
              "excluded_broken_geometry": int(broken.sum())}
    kept = b[take]
    geoms = gpd.GeoSeries(list(kept["geometry"]), crs=WGS84).to_crs(metric)
    levels = np.array([_levels(t, default_levels) for t in kept["tags"]], dtype=float)
    out = gpd.GeoDataFrame({"osm_id": [f"w{i}" if t == "way" else f"r{i}" for t, i in
                                       zip(kept["osm_type"], kept["osm_id"], strict=True)],
                            "floor_area_m2": geoms.area.to_numpy() * levels},
                           geometry=shapely.point_on_surface(geoms.to_numpy()), crs=metric)
    return out[out["floor_area_m2"] > 0].reset_index(drop=True), counts


def _street_points(lines: gpd.GeoSeries, spacing_m: float) -> list[shapely.Point]:
    pts: list[shapely.Point] = []
    for line in lines:
        n = max(1, int(line.length // spacing_m))
        pts += [line.interpolate((i + 0.5) * line.length / n) for i in range(n)]
    return pts


def _place(groups: Mapping[str, tuple[float, Any]], homes: gpd.GeoDataFrame,
           streets: gpd.GeoSeries, metric: str, total: float | None, spacing_m: float
           ) -> tuple[gpd.GeoDataFrame, pd.DataFrame, int]:
    """Give each group (unit) its points and unspread population; weights sum to 1 per group."""
    frames: list[gpd.GeoDataFrame] = []
    report: list[dict[str, Any]] = []
    taken = np.zeros(len(homes), dtype=bool)
    for code, (pop, area) in groups.items():
        if area is None:
            sel = np.ones(len(homes), dtype=bool)
            lines = streets
        else:
            sel = shapely.contains(area, homes.geometry.to_numpy()) & ~taken
            lines = streets.intersection(area)
            lines = lines[~lines.is_empty].explode(ignore_index=True)
            lines = lines[lines.geom_type == "LineString"]
        taken |= sel
        h = homes[sel]
        if len(h):
            w = h["floor_area_m2"].to_numpy() / h["floor_area_m2"].sum()
            f = gpd.GeoDataFrame({"osm_id": h["osm_id"].to_numpy(), "floor_area_m2":
                                  h["floor_area_m2"].to_numpy(), "method": "building",
                                  "weight": w}, geometry=h.geometry.to_numpy(), crs=metric)
        elif len(lines) and lines.length.sum() > 0:
            pts = _street_points(lines, spacing_m)
            n = len(pts)
            f = gpd.GeoDataFrame({"osm_id": [""] * n, "floor_area_m2": [0.0] * n,
                                  "method": ["street"] * n, "weight": [1.0 / n] * n},
                                 geometry=pts, crs=metric)
        elif area is not None:
            f = gpd.GeoDataFrame({"osm_id": [""], "floor_area_m2": [0.0], "method": ["centre"],
                                  "weight": [1.0]},
                                 geometry=[shapely.point_on_surface(area)], crs=metric)
        else:
            f = gpd.GeoDataFrame({"osm_id": [], "floor_area_m2": [], "method": [], "weight": []},
                                 geometry=[], crs=metric)
        f["unit_code"] = code
        f["group_pop"] = pop
        frames.append(f)
        report.append({"code": code, "population": pop, "method": str(f["method"].iloc[0])
                       if len(f) else "none", "buildings": len(h),
                       "floor_area_m2": float(h["floor_area_m2"].sum()),
                       "street_m": float(lines.length.sum()) if len(lines) else 0.0,
                       "points": len(f)})
    pts = pd.concat(frames, ignore_index=True) if frames else homes.iloc[:0]
    rep = pd.DataFrame(report).set_index("code")
    if total is not None and len(groups) > 1:
        # one total over several units: split it by the units' floor area (street length where
        # a unit has no homes is not comparable; such units get residents only per unit)
        area_by = rep["floor_area_m2"]
        share = (area_by / area_by.sum() if area_by.sum() > 0
                 else rep["points"] / rep["points"].sum())
        rep["population"] = share * total
        pts["group_pop"] = pts["unit_code"].map(rep["population"])
    by_area = any(a is not None for _, a in groups.values())
    outside = int((~taken).sum()) if by_area else 0
    return gpd.GeoDataFrame(pts, geometry="geometry", crs=metric), rep, outside


def _largest_remainder(values: np.ndarray, total: int) -> np.ndarray:
    base = np.floor(values).astype(np.int64)
    short = int(total - base.sum())
    if short > 0:
        order = np.argsort(-(values - base), kind="stable")[:short]
        base[order] += 1
    return base


def _finish(pts: gpd.GeoDataFrame, units: gpd.GeoDataFrame | None, share_0_3: float,
            share_60p: float) -> gpd.GeoDataFrame:
    pop = np.zeros(len(pts), dtype=np.int64)
    for _, idx in pts.groupby("unit_code").indices.items():
        want = pts["group_pop"].to_numpy()[idx] * pts["weight"].to_numpy()[idx]
        pop[idx] = _largest_remainder(want, round(float(want.sum())))
    young = np.floor(pop * share_0_3 + 0.5).astype(np.int64)
    old = np.minimum(np.floor(pop * share_60p + 0.5).astype(np.int64), pop - young)
    township = (pts["unit_code"].map(units["township_code"].astype(str)).fillna("")
                if units is not None and "township_code" in units else "")
    out = gpd.GeoDataFrame({
        "unit_code": pts["unit_code"].where(pts["unit_code"] != "all", ""),
        "township_code": township, "pop": pop, "pop_0_3": young, "pop_60p": old,
        "source": "osm", "method": pts["method"].to_numpy(), "osm_id": pts["osm_id"].to_numpy(),
        "floor_area_m2": pts["floor_area_m2"].round(1).to_numpy()},
        geometry=pts.geometry.to_numpy(), crs=pts.crs).to_crs(WGS84)
    out = out[out["pop"] > 0]
    width = max(3, len(str(len(out))))
    out.index = pd.Index([f"{(c or 'osm')}-{i + 1:0{width}d}" for i, c in
                          enumerate(out["unit_code"])], name="id")
    return out[[*DEMAND_COLUMNS[:-1], "method", "osm_id", "floor_area_m2", "geometry"]]


def write_demand(result: DemandResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``demand.csv``, the per-unit report and a summary into ``out_dir``, as one set.

    ``demand.csv`` has the dataset's columns plus ``method``, ``osm_id``, ``floor_area_m2``;
    ``demand_units.csv`` one row per unit; ``demand_summary.json`` counts and method. The three
    files are staged and committed together (:mod:`qyx_geo._outputs`, set ``demand``): a failed
    write never leaves a new layer beside an old report.
    """
    out = Path(out_dir)
    pts = result.points
    table = pd.DataFrame({"id": pts.index, **{c: pts[c].to_numpy() for c in DEMAND_COLUMNS[:-2]},
                          "lon": pts.geometry.x.round(7).to_numpy(),
                          "lat": pts.geometry.y.round(7).to_numpy(),
                          "source": pts["source"].to_numpy(), "method": pts["method"].to_numpy(),
                          "osm_id": pts["osm_id"].to_numpy(),
                          "floor_area_m2": pts["floor_area_m2"].to_numpy()})
    names = {"demand": "demand.csv", "units": "demand_units.csv",
             "summary": "demand_summary.json"}
    with output_set(out, "demand") as staged:
        table.to_csv(staged.path(names["demand"]), index=False, encoding="utf-8")
        # demand.csv is a data layer the loaders read back (ids, codes, numbers); the per-unit
        # report is for people and spreadsheets: its text cells are guarded against formulas
        write_csv(result.units, staged.path(names["units"]))
        staged.path(names["summary"]).write_text(
            json.dumps(result.summary(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return {key: out / name for key, name in names.items()}
