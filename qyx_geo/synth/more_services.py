"""The registry's further layers: real OSM schools, and synthetic rows where no open data exist.

Real rows: the 75 school polygons OpenStreetMap holds for Cixi
(``data/facilities/sources/osm/cixi_osm_school.geojson``, ODbL 1.0, © OpenStreetMap contributors)
are classified **by name** (:func:`classify_school`) and become ``primary_school`` (小学) or
``junior_school`` (初中) rows at the polygon's representative point (a point inside it,
``shapely.point_on_surface``). Schools whose name does not say their level — ``X中学`` (junior,
senior or both), ``X学校``/``X实验学校`` (often nine-year schools), senior and vocational schools —
are not used; every one of the 75 is listed with its class and reason in
``cixi_osm_school_classified.csv`` next to the source.

Synthetic rows (``source="synthetic"``), drawn from their own random streams so the four original
layers stay byte-identical:

* ``kindergarten`` 幼儿园: a central kindergarten near each 街道/镇 seat and one beside the largest
  residential cluster of about half the communities and a third of the villages (OSM has none);
* ``home_care_station`` 居家养老服务中心 (one per 街道/镇) and 居家养老服务站 (most villages and
  communities), each with ``smart_terminal`` (智能服务终端, 二、(五)3): nearly every centre, about
  two in five stations;
* ``disability_home`` 残疾人之家 and ``elder_school`` 老年学校: one per 街道/镇 except the few
  townships in :data:`MISSING` (a scenario for the audit to find, not a statement about Cixi).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from qyx_geo.schema import METRIC_CRS, WGS84
from qyx_geo.synth import rng_for, write_csv, write_geojson
from qyx_geo.synth.facilities import _anchors, _near, _Row, _to_layers, short_unit_name

__all__ = ["LAYERS", "MISSING", "build_more_facilities", "classify_school",
           "write_more_facilities"]

#: Layers generated here, in registry order.
LAYERS = ("kindergarten", "primary_school", "junior_school", "home_care_station",
          "disability_home", "elder_school")
#: Townships without the township-level facility (synthetic scenario): 附海镇, 崇寿镇, 龙山镇 lack
#: a 老年学校; 新浦镇 lacks a 残疾人之家.
MISSING: dict[str, tuple[str, ...]] = {
    "330282108": ("elder_school",),
    "330282116": ("elder_school",),
    "330282123": ("elder_school",),
    "330282112": ("disability_home",),
}
#: Probability of a unit-level row by layer and unit kind.
_P_UNIT = {
    "kindergarten": {"社区/居委会": 0.55, "村委会": 0.33, "虚拟社区": 0.0},
    "home_care_station": {"社区/居委会": 0.90, "村委会": 0.86, "虚拟社区": 0.0},
}
_P_SMART = {"居家养老服务中心": 0.9, "居家养老服务站": 0.42}
#: Name rules for the OSM schools, first match wins: (substring, class, reason).
SCHOOL_RULES: tuple[tuple[str, str, str], ...] = (
    ("职业", "excluded", "vocational school (职业): not a compulsory-education school"),
    ("中等职业", "excluded", "vocational school (中等职业)"),
    ("高级中学", "excluded", "senior high school (高级中学)"),
    ("小学", "primary_school", "name contains 小学"),
    ("初级中学", "junior_school", "name contains 初级中学"),
    ("初中", "junior_school", "name contains 初中"),
    ("中学", "unclassified", "中学 without 初级/高级: junior, senior or both — level not stated"),
    ("学校", "unclassified", "学校 (often a nine-year school): level not stated"),
    ("书院", "unclassified", "书院: level not stated"),
)


def classify_school(name: str) -> tuple[str, str]:
    """Return ``(class, reason)`` for an OSM school name.

    Examples
    --------
    >>> classify_school("XX市耕民初级中学")[0], classify_school("龙山中学")[0]
    ('junior_school', 'unclassified')
    >>> classify_school("XX市实验小学(北校区)")[0], classify_school("XX实验高级中学")[0]
    ('primary_school', 'excluded')
    """
    for needle, cls, reason in SCHOOL_RULES:
        if needle in name:
            return cls, reason
    return "unclassified", "no level word (小学/初级中学/初中) in the name"


def _school_rows(path: Path) -> tuple[list[_Row], pd.DataFrame]:
    features = json.loads(path.read_text(encoding="utf-8"))["features"]
    shapes = [shapely.geometry.shape(f["geometry"]) for f in features]
    points = gpd.GeoSeries(shapely.point_on_surface(shapes), crs=WGS84)
    xy = shapely.get_coordinates(points.to_crs(METRIC_CRS).to_numpy())
    rows, report = [], []
    for k, (feature, (x, y)) in enumerate(zip(features, xy, strict=True)):
        name = str(feature["properties"]["name"])
        cls, reason = classify_school(name)
        used = cls in ("primary_school", "junior_school")
        report.append((k + 1, name, cls, reason, "used" if used else "not used",
                       round(float(points.iloc[k].x), 6), round(float(points.iloc[k].y), 6)))
        if used:
            level = "小学" if cls == "primary_school" else "初中"
            rows.append(_Row(cls, name, level, math.nan, (float(x), float(y)), "osm", 0))
    table = pd.DataFrame(report, columns=["feature", "name", "class", "reason", "status",
                                          "lon", "lat"])
    return rows, table


def build_more_facilities(units: gpd.GeoDataFrame, townships: gpd.GeoDataFrame,
                          demand: pd.DataFrame, *, osm_schools: Path, seed: int,
                          ) -> tuple[dict[str, gpd.GeoDataFrame], pd.DataFrame]:
    """Return the layers of :data:`LAYERS` and the OSM school classification table.

    Parameters
    ----------
    units, townships, demand
        As for :func:`qyx_geo.synth.facilities.build_facilities`.
    osm_schools
        GeoJSON of the OSM school polygons.
    seed
        Seed of the run.
    """
    umetric, tmetric, biggest, seat_xy = _anchors(units, townships, demand)
    unit_pop = demand.groupby("unit_code")["pop"].sum()

    rows, schools = _school_rows(osm_schools)
    for t, (tcode, town) in enumerate(tmetric.iterrows()):
        if town["kind"] == "开发区":
            continue
        tname = str(town["name"])
        rng = rng_for(seed, "facilities-more", "township", tcode)
        cell = town.geometry
        rows.append(_Row("kindergarten", f"{tname}中心幼儿园", "幼儿园",
                         float(30 * rng.integers(6, 13)), _near(seat_xy[t], cell, 300.0, rng),
                         "synthetic", 1))
        smart = bool(rng.random() < _P_SMART["居家养老服务中心"])
        rows.append(_Row("home_care_station", f"{tname}居家养老服务中心", "居家养老服务中心",
                         math.nan, _near(seat_xy[t], cell, 200.0, rng), "synthetic", 1, smart))
        for layer, label, level in (("disability_home", "残疾人之家", "残疾人之家"),
                                    ("elder_school", "老年学校", "老年学校")):
            xy = _near(seat_xy[t], cell, 250.0, rng)  # always drawn: one gap never shifts others
            if layer not in MISSING.get(str(tcode), ()):
                rows.append(_Row(layer, f"{tname}{label}", level, math.nan, xy, "synthetic", 1))

    for code, unit in umetric.iterrows():
        kind = str(unit["kind"])
        rng = rng_for(seed, "facilities-more", "unit", code)
        anchor = biggest.loc[code, ["x", "y"]].to_numpy(dtype=float)
        label = f"{unit['township_name']}{short_unit_name(str(unit['name']))}"
        for layer, suffix, level in (("kindergarten", "幼儿园", "幼儿园"),
                                     ("home_care_station", "居家养老服务站", "居家养老服务站")):
            draw, smart_draw = rng.random(), rng.random()
            if draw >= _P_UNIT[layer][kind]:
                continue
            xy = _near(anchor, unit.geometry, 80.0, rng)
            if layer == "kindergarten":
                places = float(30 * max(3, round(float(unit_pop.get(code, 0)) * 0.03 / 30)))
                rows.append(_Row(layer, f"{label}{suffix}", level, places, xy, "synthetic", 2))
            else:
                rows.append(_Row(layer, f"{label}{suffix}", level, math.nan, xy, "synthetic", 2,
                                 bool(smart_draw < _P_SMART[level])))
    return _to_layers(rows, umetric, layers=LAYERS, seed=seed), schools


def write_more_facilities(layers: dict[str, gpd.GeoDataFrame], schools: pd.DataFrame,
                          out_dir: Path, *, seed: int) -> list[Path]:
    """Write ``<out_dir>/<layer>.geojson`` per layer and the school classification CSV."""
    paths = []
    for layer, gdf in layers.items():
        columns = [c for c in gdf.columns if c != "geometry"]
        records = [{"id": ident, **{c: row[c] for c in columns}}
                   for ident, row in gdf.drop(columns="geometry").iterrows()]
        meta = {"qyx_geo": {"crs": "EPSG:4326", "layer": layer, "seed": seed,
                            "synthetic_rows": int((gdf["source"] == "synthetic").sum()),
                            "osm_rows": int((gdf["source"] == "osm").sum())}}
        paths.append(write_geojson(out_dir / f"{layer}.geojson", records, list(gdf.geometry),
                                   name=layer, meta=meta))
    paths.append(write_csv(out_dir / "sources" / "osm" / "cixi_osm_school_classified.csv",
                           list(schools.columns), schools.itertuples(index=False)))
    return paths
