"""The four facility layers: 11 real OSM hospitals plus synthetic, deliberately incomplete rows.

Real rows: the hospitals/health centres mapped in OpenStreetMap (``data/facilities/sources/osm``,
ODbL 1.0, © OpenStreetMap contributors) become clinic rows with ``source="osm"``.

Synthetic rows (``source="synthetic"``) follow how Cixi organises each service:

* a township-level facility near every 街道/镇 seat (托育服务中心, 老年食堂, 卫生院 or
  社区卫生服务中心, 全民健身中心), none in the development zones;
* village/community points (托育点, 老年助餐点, 村卫生室/社区卫生服务站, 村级/社区健身点) beside the
  unit's largest residential cluster, present with a probability per layer and unit kind.

Coverage is made realistically incomplete: a few townships (:data:`LAGGING`) lag in named
services, and elsewhere some villages are simply left out. This is a test bed for audits, not a
statement about the real townships.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from qyx_geo.facilities import assign_unit_codes
from qyx_geo.schema import FACILITY_COLUMNS, FACILITY_LAYERS, METRIC_CRS, WGS84
from qyx_geo.services import get_service
from qyx_geo.synth import rng_for, write_geojson

__all__ = ["ID_PREFIX", "LAGGING", "build_facilities", "short_unit_name", "write_facilities"]

logger = logging.getLogger(__name__)

#: Id prefix per layer: NUR-0001, CAN-0001, CLI-0001, SPO-0001 (the same as the service
#: registry's ``id_prefix``, which the generator uses).
ID_PREFIX = {"nursery": "NUR", "canteen": "CAN", "clinic": "CLI", "sports": "SPO"}

#: Townships that lag behind in the named layers (synthetic scenario for the audit to find).
LAGGING: dict[str, tuple[str, ...]] = {
    "330282108": ("nursery", "canteen"),   # 附海镇
    "330282116": ("canteen", "sports"),    # 崇寿镇
    "330282112": ("nursery",),             # 新浦镇
    "330282123": ("canteen", "clinic"),    # 龙山镇
    "330282114": ("sports",),              # 横河镇
    "330282003": ("canteen",),             # 坎墩街道
}

#: Probability that a unit has its own point, by layer and unit kind (normal, lagging township).
_P_UNIT: dict[str, dict[str, tuple[float, float]]] = {
    "nursery": {"社区/居委会": (0.60, 0.25), "村委会": (0.27, 0.08), "虚拟社区": (0.0, 0.0)},
    "canteen": {"社区/居委会": (0.93, 0.60), "村委会": (0.94, 0.55), "虚拟社区": (0.0, 0.0)},
    "clinic": {"社区/居委会": (0.75, 0.45), "村委会": (0.90, 0.60), "虚拟社区": (0.35, 0.35)},
    "sports": {"社区/居委会": (0.75, 0.55), "村委会": (0.92, 0.62), "虚拟社区": (0.0, 0.0)},
}
_UNIT_LEVEL = {
    "nursery": ("托育点", "托育点"),
    "canteen": ("老年助餐点", "老年助餐点"),
    "clinic": ("社区卫生服务站", "村卫生室"),
    "sports": ("社区健身点", "村级健身点"),
}
_UNIT_SUFFIX = {"托育点": "托育点", "老年助餐点": "老年助餐点", "社区卫生服务站": "卫生服务站",
                "村卫生室": "卫生室", "社区健身点": "健身点", "村级健身点": "健身点"}
_OFFSET_SD_M = {"unit": 60.0, "township": 150.0}


@dataclasses.dataclass(frozen=True)
class _Row:
    layer: str
    name: str
    level: str
    capacity: float
    xy: tuple[float, float]  # metric
    source: str
    tier: int  # 0 real, 1 township-level, 2 unit-level: orders the ids
    smart_terminal: bool | None = None  # home-care stations only (more_services)


def short_unit_name(name: str) -> str:
    """Return the everyday form of a unit name (沈五村委会 → 沈五村, 马家路居委会 → 马家路社区)."""
    if name.endswith("村委会"):
        return name[:-2]
    if name.endswith("居委会"):
        return name[:-3] + "社区"
    return name


def _near(anchor: np.ndarray, cell: shapely.Geometry, sd_m: float,
          rng: np.random.Generator) -> tuple[float, float]:
    """Return a point a short walk from ``anchor`` inside ``cell`` (else ``anchor`` itself)."""
    for _ in range(50):
        p = anchor + rng.normal(0.0, sd_m, size=2)
        if shapely.contains_xy(cell, p[0], p[1]):
            return float(p[0]), float(p[1])
    return float(anchor[0]), float(anchor[1])


def _round_to(value: float, step: int) -> float:
    return float(step * max(1, round(value / step)))


def _osm_rows(osm_path: Path) -> list[_Row]:
    """Clinic rows from the OSM hospital polygons (their stored centroid as the location)."""
    features = json.loads(osm_path.read_text(encoding="utf-8"))["features"]
    names = [str(f["properties"]["name"]) for f in features]
    lonlat = np.array([f["properties"]["centroid"] for f in features], dtype=float)
    pts = gpd.GeoSeries(gpd.points_from_xy(lonlat[:, 0], lonlat[:, 1]), crs=WGS84)
    xy = shapely.get_coordinates(pts.to_crs(METRIC_CRS).to_numpy())
    return [_Row("clinic", name, "卫生院" if "卫生院" in name else "医院", math.nan,
                 (float(x), float(y)), "osm", 0) for name, (x, y) in zip(names, xy, strict=True)]


def build_facilities(units: gpd.GeoDataFrame, townships: gpd.GeoDataFrame, demand: pd.DataFrame,
                     *, osm_hospitals: Path | None, seed: int,
                     lagging: Mapping[str, tuple[str, ...]] = LAGGING
                     ) -> dict[str, gpd.GeoDataFrame]:
    """Return the four facility layers (index ``id``, columns ``FACILITY_COLUMNS`` + attribution).

    Parameters
    ----------
    units, townships
        As from :func:`qyx_geo.units.load_units` / :func:`~qyx_geo.units.load_townships`.
    demand
        The demand table (columns :data:`qyx_geo.units.DEMAND_CSV_COLUMNS`).
    osm_hospitals
        GeoJSON of the OSM hospital polygons with a ``centroid`` property (``None``: no real
        rows).
    seed
        Seed of the run.
    lagging
        Township code → layers it lags in (default: the embedded county's :data:`LAGGING`).
    """
    umetric, tmetric, biggest, seat_xy = _anchors(units, townships, demand)
    unit_pop = demand.groupby("unit_code")[["pop", "pop_0_3", "pop_60p"]].sum()
    town_pop = demand.groupby("township_code")["pop"].sum()

    rows: list[_Row] = _osm_rows(osm_hospitals) if osm_hospitals is not None else []
    osm_health_centres = [r.name for r in rows if r.level == "卫生院"]
    for t, (tcode, town) in enumerate(tmetric.iterrows()):
        if town["kind"] == "开发区":
            continue
        tname = str(town["name"])
        rng = rng_for(seed, "facilities", "township", tcode)
        cell = town.geometry
        residents = float(town_pop.get(tcode, 0))
        # Township nurseries scale with population (≈1–2 places per 1,000), halved where lagging.
        places = residents / 1000 * rng.uniform(1.0, 2.0)
        places *= 0.5 if "nursery" in lagging.get(tcode, ()) else 1.0
        first_share = 0.6 if residents > 150_000 else 1.0
        rows.append(_Row("nursery", f"{tname}托育服务中心", "托育机构",
                         max(30.0, _round_to(places * first_share, 5)),
                         _near(seat_xy[t], cell, 150.0, rng), "synthetic", 1))
        if first_share < 1.0:
            rows.append(_Row("nursery", f"{tname}第二托育服务中心", "托育机构",
                             max(30.0, _round_to(places * (1 - first_share), 5)),
                             _near(seat_xy[t], cell, 900.0, rng), "synthetic", 1))
        rows.append(_Row("canteen", f"{tname}老年食堂", "老年食堂",
                         _round_to(rng.uniform(80, 160), 10),
                         _near(seat_xy[t], cell, 150.0, rng), "synthetic", 1))
        if town["kind"] in ("镇", "乡"):
            if not any(n.startswith(tname) for n in osm_health_centres):
                rows.append(_Row("clinic", f"{tname}卫生院", "卫生院",
                                 _round_to(rng.uniform(20, 80), 5),
                                 _near(seat_xy[t], cell, 200.0, rng), "synthetic", 1))
        else:
            rows.append(_Row("clinic", f"{tname}社区卫生服务中心", "社区卫生服务中心",
                             _round_to(rng.uniform(10, 40), 5), _near(seat_xy[t], cell, 200.0, rng),
                             "synthetic", 1))
        rows.append(_Row("sports", f"{tname}全民健身中心", "体育场地", math.nan,
                         _near(seat_xy[t], cell, 250.0, rng), "synthetic", 1))

    for code, unit in umetric.iterrows():
        tcode = str(unit["township_code"])
        kind = str(unit["kind"])
        rng = rng_for(seed, "facilities", "unit", code)
        anchor = biggest.loc[code, ["x", "y"]].to_numpy(dtype=float)
        label = f"{unit['township_name']}{short_unit_name(str(unit['name']))}"
        for layer in FACILITY_LAYERS:
            normal, behind = _P_UNIT[layer][kind]
            p = behind if layer in lagging.get(tcode, ()) else normal
            draw = rng.random()  # always drawn, so one layer's odds never shift another's
            if draw >= p:
                continue
            level = _UNIT_LEVEL[layer][0 if kind != "村委会" else 1]
            capacity = math.nan
            if layer == "nursery":
                young = unit_pop.loc[code, "pop_0_3"]
                capacity = _round_to(15 + young * rng.uniform(0.08, 0.16), 5)
            elif layer == "canteen":
                capacity = _round_to(min(80, 20 + unit_pop.loc[code, "pop_60p"] / 40), 5)
            rows.append(_Row(layer, f"{label}{_UNIT_SUFFIX[level]}", level, capacity,
                             _near(anchor, unit.geometry, _OFFSET_SD_M["unit"], rng),
                             "synthetic", 2))
    return _to_layers(rows, umetric, layers=FACILITY_LAYERS, seed=seed)


def _anchors(units: gpd.GeoDataFrame, townships: gpd.GeoDataFrame, demand: pd.DataFrame
             ) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame, np.ndarray]:
    """Return units and townships in metres (by code), each unit's largest cluster, the seats.

    The largest residential cluster of a unit (columns ``x``, ``y`` in metres, by unit code)
    anchors its village/community facilities; the seats (metres, in township-code order)
    anchor the township-level ones. Shared by :mod:`qyx_geo.synth.more_services`.
    """
    umetric = units.sort_index().to_crs(METRIC_CRS)
    tmetric = townships.sort_index().to_crs(METRIC_CRS)
    pts = gpd.GeoSeries(gpd.points_from_xy(demand["lon"], demand["lat"]), crs=WGS84)
    dxy = shapely.get_coordinates(pts.to_crs(METRIC_CRS).to_numpy())
    biggest = (pd.DataFrame({"unit": demand["unit_code"], "pop": demand["pop"],
                             "x": dxy[:, 0], "y": dxy[:, 1]})
               .sort_values(["unit", "pop"], ascending=[True, False], kind="stable")
               .groupby("unit").first())
    seats = gpd.GeoSeries(gpd.points_from_xy(townships.sort_index()["seat_lon"],
                                             townships.sort_index()["seat_lat"]), crs=WGS84)
    seat_xy = shapely.get_coordinates(seats.to_crs(METRIC_CRS).to_numpy())
    return umetric, tmetric, biggest, seat_xy


def _to_layers(rows: Sequence[_Row], umetric: gpd.GeoDataFrame, *, layers: Sequence[str],
               seed: int) -> dict[str, gpd.GeoDataFrame]:
    """Return ``rows`` as one WGS84 frame per layer: unit codes, attribution, ids by tier.

    Shared by :mod:`qyx_geo.synth.more_services`; a layer keeps the registry's attributes
    (``smart_terminal``) and its ids use the registry's prefix.
    """
    geom = gpd.GeoSeries(gpd.points_from_xy([r.xy[0] for r in rows], [r.xy[1] for r in rows]),
                         crs=METRIC_CRS)
    table = gpd.GeoDataFrame({
        "name": [r.name for r in rows], "layer": [r.layer for r in rows],
        "level": [r.level for r in rows], "capacity": [r.capacity for r in rows],
        "source": [r.source for r in rows], "tier": [r.tier for r in rows],
        "smart_terminal": [r.smart_terminal for r in rows]}, geometry=geom)
    codes = assign_unit_codes(table, umetric)
    table["unit_code"] = codes["unit_code"].astype(str)
    table["township_code"] = codes["township_code"].astype(str)
    table["attribution"] = np.where(table["source"] == "osm",
                                    "© OpenStreetMap contributors, ODbL 1.0",
                                    f"synthetic (qyx_geo.synth, seed {seed})")
    table = table.to_crs(WGS84)
    out = {}
    for layer in layers:
        svc = get_service(layer)
        part = table[table["layer"] == layer].sort_values(
            ["tier", "township_code", "unit_code", "name"], kind="stable")
        part.index = pd.Index([f"{svc.id_prefix}-{k:04d}" for k in range(1, len(part) + 1)],
                              name="id")
        extra = [a for a in svc.attributes if a in part.columns]
        out[layer] = part[[*FACILITY_COLUMNS[:-1], *extra, "attribution", "geometry"]]
    return out


def write_facilities(layers: dict[str, gpd.GeoDataFrame], out_dir: Path, *, seed: int
                     ) -> list[Path]:
    """Write ``<out_dir>/<layer>.geojson`` for every layer and return the paths."""
    paths = []
    for layer, gdf in layers.items():
        records = [{"id": ident, **{c: row[c] for c in (*FACILITY_COLUMNS[:-1], "attribution")}}
                   for ident, row in gdf.drop(columns="geometry").iterrows()]
        meta = {"qyx_geo": {"crs": "EPSG:4326", "layer": layer, "seed": seed,
                            "synthetic_rows": int((gdf["source"] == "synthetic").sum()),
                            "osm_rows": int((gdf["source"] == "osm").sum())}}
        paths.append(write_geojson(out_dir / f"{layer}.geojson", records, list(gdf.geometry),
                                   name=layer, meta=meta))
    return paths
