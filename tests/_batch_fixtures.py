"""Tiny region packs on disk for the batch tests: the 2 km grid county of _audit_fixtures.

Each pack is the tiny county moved east by ``shift_deg`` and renumbered to ``county_code``
(so three packs are three distinct counties), written in the dataset folder layout with its
street grid as an OSM XML file and a ``region.toml`` manifest.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyproj
import shapely
from _audit_fixtures import CRS, grid_graph, tiny_dataset

from qyx_geo._paths import data_dir


def _renumber(values, code: str):
    return [str(v).replace("330282", code, 1) for v in values]


def _geojson(path: Path, gdf: gpd.GeoDataFrame, index: str) -> None:
    frame = gdf.reset_index().rename(columns={gdf.index.name or "index": index})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(frame.to_json(drop_id=True, ensure_ascii=False), encoding="utf-8")


def _osm(path: Path, shift_deg: float) -> None:
    G = grid_graph()
    to_ll = pyproj.Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    lines = ["<?xml version='1.0' encoding='UTF-8'?>",
             '<osm version="0.6" generator="qyx_geo batch test fixture">']
    for n, d in G.nodes(data=True):
        lon, lat = to_ll.transform(d["x"], d["y"])
        lines.append(f'<node id="{n + 1}" lat="{lat:.7f}" lon="{lon + shift_deg:.7f}"/>')
    way = 1000
    for u, v in G.edges():
        if u < v:
            way += 1
            lines.append(f'<way id="{way}"><nd ref="{u + 1}"/><nd ref="{v + 1}"/>'
                         '<tag k="highway" v="residential"/></way>')
    lines.append("</osm>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")


def write_tiny_region(folder: Path, *, county_code: str = "330282", name: str = "测试县",
                      shift_deg: float = 0.0, with_plan: bool = False) -> Path:
    """Write the tiny county as a region folder; return the folder."""
    ds = tiny_dataset()

    def moved(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        out = gdf.copy()
        out.geometry = gdf.geometry.translate(xoff=shift_deg)
        return out

    units = moved(ds.units)
    units.index = pd.Index(_renumber(units.index, county_code), name="code")
    units["township_code"] = _renumber(units["township_code"], county_code)
    centres = units.geometry.representative_point()
    units["centre_lon"], units["centre_lat"] = centres.x.round(6), centres.y.round(6)
    units["centre_source"] = "synthetic"
    units["geometry_source"] = "synthetic"
    towns = moved(ds.townships)
    towns.index = pd.Index(_renumber(towns.index, county_code), name="code")
    seats = towns.geometry.representative_point()
    towns["seat_lon"], towns["seat_lat"] = seats.x.round(6), seats.y.round(6)
    towns["seat_source"] = "synthetic"
    towns["approximate"] = True
    towns["source"] = "nbs"
    towns["geometry_source"] = "synthetic"
    outline = gpd.GeoDataFrame({"adcode": [county_code], "name": [name], "source": "synthetic"},
                               geometry=[shapely.union_all(units.geometry.to_numpy())],
                               crs="EPSG:4326")
    b = folder / "boundaries"
    _geojson(b / "county_outline.geojson", outline, "index")
    _geojson(b / "townships.geojson", towns, "code")
    _geojson(b / "villages.geojson", units, "code")
    demand = moved(ds.demand)
    table = pd.DataFrame({"id": demand.index,
                          "unit_code": _renumber(demand["unit_code"], county_code),
                          "township_code": _renumber(demand["township_code"], county_code),
                          "pop": demand["pop"].astype(int),
                          "pop_0_3": demand["pop_0_3"].astype(int),
                          "pop_60p": demand["pop_60p"].astype(int),
                          "lon": demand.geometry.x.round(7), "lat": demand.geometry.y.round(7),
                          "source": "synthetic"})
    table.to_csv(b / "demand.csv", index=False)
    for layer, gdf in ds.facilities.items():
        fac = moved(gdf)
        fac["township_code"] = _renumber(fac["township_code"], county_code)
        fac["unit_code"] = _renumber(fac["unit_code"], county_code)
        _geojson(folder / "facilities" / f"{layer}.geojson", fac, "id")
    _osm(folder / "network" / "grid.osm", shift_deg)
    if with_plan:  # the embedded plan, so verdicts (met, shortfall) appear
        shutil.copytree(data_dir() / "targets", folder / "targets")
    (folder / "region.toml").write_text(_manifest(county_code, name, with_plan=with_plan),
                                        encoding="utf-8")
    return folder


def _manifest(code: str, name: str, *, with_plan: bool) -> str:
    files = {"outline": "boundaries/county_outline.geojson",
             "townships": "boundaries/townships.geojson",
             "units": "boundaries/villages.geojson", "demand": "boundaries/demand.csv",
             **{f"facilities.{layer}": f"facilities/{layer}.geojson"
                for layer in ("nursery", "canteen", "clinic", "sports")},
             "network": "network/grid.osm"}
    if with_plan:
        files["plan"] = "targets/plan.json"
    lines = ["format = 1", "", "[region]", f'code = "{code}"', f'name_zh = "{name}"',
             f'name_en = "Test {code}"', 'crs = "EPSG:4549"', 'levels = ["township", "village"]',
             ""]
    for key, path in files.items():
        lines += [f"[files.{key}]", f'path = "{path}"', 'status = "synthetic"',
                  'source = "tests/_batch_fixtures.py"', 'licence = "synthetic"', ""]
    return "\n".join(lines)
