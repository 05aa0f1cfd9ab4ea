"""A tiny county for audit/report/CLI tests: a 2 km street grid, 2 townships, 4 units.

Street grid: 11 x 11 nodes, 200 m apart, in EPSG:4549 near Cixi; units are the four 1 km
quadrants. Walking at 4 km/h (66.7 m/min), 15 minutes reach 1,000 m along the streets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely

CRS = "EPSG:4549"
_TO_M = pyproj.Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
X0, Y0 = _TO_M.transform(121.25, 30.17)
STEP = 200.0
TOWNS = ("330282001", "330282101")
UNITS = ("330282001001", "330282001002", "330282101201", "330282101202")


@dataclasses.dataclass(frozen=True)
class TinyDataset:
    """Duck-typed stand-in for qyx_geo.dataset.Dataset."""

    units: gpd.GeoDataFrame
    townships: gpd.GeoDataFrame
    demand: gpd.GeoDataFrame
    facilities: Mapping[str, gpd.GeoDataFrame]
    outline: gpd.GeoDataFrame | None = None
    provenance: Mapping[str, Mapping[str, object]] = dataclasses.field(default_factory=dict)
    network: object = None

    def load_network(self) -> nx.MultiDiGraph:
        return grid_graph()


def grid_graph() -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs=CRS)
    for i in range(11):
        for j in range(11):
            G.add_node(i * 11 + j, x=X0 + i * STEP, y=Y0 + j * STEP)
    for i in range(11):
        for j in range(11):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < 11 and j + dj < 11:
                    a, b = i * 11 + j, (i + di) * 11 + j + dj
                    G.add_edge(a, b, length=STEP)
                    G.add_edge(b, a, length=STEP)
    return G


def _pts(xy_m, index, crs=CRS) -> gpd.GeoSeries:
    geoms = [shapely.Point(X0 + x, Y0 + y) for x, y in xy_m]
    return gpd.GeoSeries(geoms, index=pd.Index(index, name="id"), crs=crs).to_crs("EPSG:4326")


def tiny_dataset() -> TinyDataset:
    boxes = [(0, 0, 1000, 1000), (0, 1000, 1000, 2000), (1000, 0, 2000, 1000),
             (1000, 1000, 2000, 2000)]
    polys = gpd.GeoSeries([shapely.box(X0 + a, Y0 + b, X0 + c, Y0 + d) for a, b, c, d in boxes],
                          crs=CRS).to_crs("EPSG:4326")
    units = gpd.GeoDataFrame(
        {"name": ["东街社区", "西街社区", "南村", "北村<b>"],
         "township_code": [TOWNS[0], TOWNS[0], TOWNS[1], TOWNS[1]],
         "township_name": ["一街道", "一街道", "二镇", "二镇"],
         "kind": ["社区/居委会", "社区/居委会", "村委会", "村委会"],
         "approximate": True, "source": "synthetic"},
        geometry=polys.to_numpy(), index=pd.Index(UNITS, name="code"), crs="EPSG:4326")
    townships = gpd.GeoDataFrame(
        {"name": ["一街道", "二镇"], "kind": ["街道", "镇"]},
        geometry=[units.iloc[:2].union_all(), units.iloc[2:].union_all()],
        index=pd.Index(TOWNS, name="code"), crs="EPSG:4326")
    # demand points on street nodes: (x, y, unit index, pop, pop_0_3, pop_60p)
    rows = [
        (0, 0, 0, 400, 20, 80), (400, 600, 0, 600, 30, 120),
        (200, 1200, 1, 500, 25, 100), (800, 1800, 1, 500, 25, 100),
        (1200, 200, 2, 300, 10, 90), (1800, 800, 2, 200, 6, 60),
        (1400, 1400, 3, 250, 8, 70), (2000, 2000, 3, 250, 8, 70),
    ]
    ids = [f"d{k}" for k in range(len(rows))]
    demand = gpd.GeoDataFrame(
        {"unit_code": [UNITS[r[2]] for r in rows],
         "township_code": [UNITS[r[2]][:9] for r in rows],
         "pop": [float(r[3]) for r in rows], "pop_0_3": [float(r[4]) for r in rows],
         "pop_60p": [float(r[5]) for r in rows], "source": "synthetic"},
        geometry=_pts([(r[0], r[1]) for r in rows], ids).to_numpy(),
        index=pd.Index(ids, name="id"), crs="EPSG:4326")

    def unit_at(x: float, y: float) -> str:  # the quadrant a point lies in (edges go east/north)
        return UNITS[2 * (x >= 1000) + (y >= 1000)]

    def layer(name: str, xy, capacity) -> gpd.GeoDataFrame:
        fid = [f"{name}{k}" for k in range(len(xy))]
        codes = [unit_at(x, y) for x, y in xy]
        return gpd.GeoDataFrame(
            {"name": [f"{name}点{k}" for k in range(len(xy))], "layer": name, "level": "站点",
             "capacity": np.asarray(capacity, float), "township_code": [c[:9] for c in codes],
             "unit_code": codes, "source": "synthetic"},
            geometry=_pts(xy, fid).to_numpy(), index=pd.Index(fid, name="id"), crs="EPSG:4326")

    facilities = {
        "nursery": layer("nursery", [(0, 0), (1800, 800)], [10, 4]),
        "canteen": layer("canteen", [(400, 400)], [40]),
        "clinic": layer("clinic", [(0, 0), (1000, 1000), (2000, 2000)], [np.nan] * 3),
        "sports": layer("sports", [(1200, 0)], [np.nan]),
    }
    outline = gpd.GeoDataFrame({"name": ["测试县"], "source": "synthetic"},
                               geometry=[units.union_all()], crs="EPSG:4326")
    provenance = {"codes": {"status": "real"}, "demand": {"status": "synthetic"}}
    return TinyDataset(units=units, townships=townships, demand=demand, facilities=facilities,
                       outline=outline, provenance=provenance)


def use_tiny_dataset(monkeypatch: pytest.MonkeyPatch) -> TinyDataset:
    """Make ``qyx_geo.dataset.load_dataset`` (what the CLI calls) return a tiny dataset."""
    import qyx_geo.dataset

    ds = tiny_dataset()
    monkeypatch.setattr(qyx_geo.dataset, "load_dataset", lambda **_: ds)
    return ds
