"""A tiny pack outside China: a real OSM extract, hand-made units, residents on its buildings.

The extract is pyrosm's own test file of Kymenlaakso, Finland (tests/fixtures/osm/SOURCE.txt,
ODbL): its streets are the pack's network and its residential buildings carry the residents of a
hand-made population table. The whole chain runs: pack → import-population (buildings) →
``qyx audit --region``; the result is checked against a bound nobody's code computes for us: a
resident whose straight-line distance to every canteen exceeds the 15-minute walk (1,000 m at
4 km/h) cannot be within reach along the streets.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from qyx_geo.cli import main
from qyx_geo.crs import local_metric_crs
from qyx_geo.packs import FileInfo, PackMeta, write_pack
from qyx_geo.region import FILE_KEYS, load_region

OSM = Path(__file__).parent / "fixtures" / "osm" / "kymenlaakso_pyrosm.osm.pbf"
W, S, E, N = 26.93, 60.52, 26.97, 60.54  # the extract's header bbox
MID_X, MID_Y = (W + E) / 2, (S + N) / 2
TOWNS = {"990001001": "西街道", "990001101": "东镇"}
UNITS = {  # code: (name, box)
    "990001001001": ("西北社区", (W, MID_Y, MID_X, N)),
    "990001001002": ("西南社区", (W, S, MID_X, MID_Y)),
    "990001101201": ("东北村", (MID_X, MID_Y, E, N)),
    "990001101202": ("东南村", (MID_X, S, E, MID_Y)),
}


def _facility(layer: str, rows: list[tuple[str, str, float, float, float]]) -> gpd.GeoDataFrame:
    level = {"nursery": "托育点", "canteen": "老年助餐点", "clinic": "村卫生室",
             "sports": "村级健身点"}[layer]
    return gpd.GeoDataFrame(
        {"name": [r[1] for r in rows], "layer": layer, "level": level,
         "capacity": [r[4] for r in rows], "township_code": [r[0][:9] for r in rows],
         "unit_code": [r[0] for r in rows], "source": "user"},
        geometry=gpd.points_from_xy([r[2] for r in rows], [r[3] for r in rows]),
        index=pd.Index([f"{layer[:3].upper()}-{k + 1}" for k in range(len(rows))], name="id"),
        crs="EPSG:4326")


def _pack(out: Path):
    boxes = {c: shapely.box(*b) for c, (_, b) in UNITS.items()}
    units = gpd.GeoDataFrame(
        {"name": [n for n, _ in UNITS.values()], "township_code": [c[:9] for c in UNITS],
         "township_name": [TOWNS[c[:9]] for c in UNITS],
         "kind": ["社区/居委会", "社区/居委会", "村委会", "村委会"],
         "centre_lon": [boxes[c].centroid.x for c in UNITS],
         "centre_lat": [boxes[c].centroid.y for c in UNITS], "centre_source": "user",
         "approximate": False, "source": "user", "geometry_source": "user"},
        geometry=list(boxes.values()), index=pd.Index(list(UNITS), name="code"), crs="EPSG:4326")
    towns = gpd.GeoDataFrame(
        {"name": list(TOWNS.values()), "kind": ["街道", "镇"],
         "seat_lon": [W + 0.01, E - 0.01], "seat_lat": [MID_Y, MID_Y], "seat_source": "user",
         "seat_geonames_name": "", "seat_geonameid": "", "approximate": False, "source": "user",
         "geometry_source": "user"},
        geometry=[shapely.box(W, S, MID_X, N), shapely.box(MID_X, S, E, N)],
        index=pd.Index(list(TOWNS), name="code"), crs="EPSG:4326")
    # one placeholder resident per unit, replaced by the population import below
    demand = pd.DataFrame({"id": [f"{c}-01" for c in UNITS], "unit_code": list(UNITS),
                           "township_code": [c[:9] for c in UNITS], "pop": 1, "pop_0_3": 0,
                           "pop_60p": 0, "lon": units["centre_lon"].to_numpy(),
                           "lat": units["centre_lat"].to_numpy(), "source": "synthetic"})
    facilities = {
        "canteen": _facility("canteen", [("990001001002", "食堂一", 26.945, 60.527, 40.0)]),
        "nursery": _facility("nursery", [("990001101201", "托育一", 26.96, 60.535, 30.0)]),
        "clinic": _facility("clinic", [(c, f"卫生室{k}", boxes[c].centroid.x,
                                        boxes[c].centroid.y, np.nan)
                                       for k, c in enumerate(UNITS)]),
        "sports": _facility("sports", [("990001001001", "健身点", 26.94, 60.535, np.nan)]),
    }
    outline = gpd.GeoDataFrame({"source": ["hand-made"]}, geometry=[shapely.box(W, S, E, N)],
                               crs="EPSG:4326")
    crs = local_metric_crs(MID_X, MID_Y)
    meta = PackMeta(code="990001", name_zh="屈米测试区", name_en="Kymenlaakso test area",
                    crs=crs, population_total=None, population_source="")
    hand = FileInfo("real", "hand-made for the test", "test data")
    prov = {k: hand for k in FILE_KEYS if k not in ("network", "plan")}
    prov["demand"] = FileInfo("synthetic", "placeholder", "synthetic")
    prov["network"] = FileInfo("real", "pyrosm 0.25.0 test extract (OpenStreetMap)",
                               "ODbL 1.0, © OpenStreetMap contributors")
    return write_pack(out, meta, outline=outline, townships=towns, units=units, demand=demand,
                      facilities=facilities, provenance=prov, network=OSM)


@pytest.mark.slow
def test_tiny_pack_outside_china_audits_end_to_end(tmp_path, capsys):
    region = _pack(tmp_path / "kymenlaakso")
    assert region.crs == "EPSG:32635"  # UTM 35N, not a Chinese Gauss-Krüger zone
    table = tmp_path / "population.csv"
    table.write_text("代码,名称,常住人口,60岁以上\n990001001001,西北社区,1200,300\n"
                     "990001001002,西南社区,800,200\n990001101201,东北村,600,150\n"
                     "990001101202,东南村,400,100\n", encoding="utf-8")
    assert main(["region", "import-population", str(table), "--region", str(region.root),
                 "--buildings", str(OSM)]) == 0
    ds = load_region(region.root)
    assert ds.population == 3000 and ds.region.files["demand"].status == "real"
    assert set(ds.demand["source"]) == {"user"}
    assert main(["region", "check", str(region.root)]) == 0
    out = tmp_path / "out"
    assert main(["audit", "--region", str(region.root), "--out", str(out), "--no-maps"]) == 0
    text = capsys.readouterr().out
    assert "屈米测试区“15分钟公共服务圈”体检" in text
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["services"]["canteen"]["units_judged"] == 4
    # independent bound (triangle inequality): walking along the streets, snaps included, is
    # never shorter than the straight line, so nobody beyond 1,000 m of the canteen is within
    from qyx_geo.audit import run_audit

    result = run_audit(ds, services=["canteen"], network=ds.load_network())
    pts = result.services["canteen"].points.to_crs(region.crs)
    canteen = ds.facilities["canteen"].to_crs(region.crs).geometry.iloc[0]
    straight = pts.distance(canteen)
    reached = pts["dist_m"].notna()
    assert reached.sum() > 0.5 * len(pts)  # the extract's streets serve most residents
    assert (pts.loc[reached, "dist_m"] >= straight[reached] - 0.5).all()
    far = straight > 1000.0
    assert far.any() and not pts.loc[far, "within"].any()
    assert result.services["canteen"].county["units_judged"] == 4
