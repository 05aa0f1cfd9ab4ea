# ruff: noqa: N803  (G for graphs, as in osmnx)
from __future__ import annotations

import bz2
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from shapely.ops import split

from qyx_geo._errors import DataFileError
from qyx_geo.network import default_network_path, load_network, network_summary
from qyx_geo.synth.network import (
    GENERATOR,
    Barrier,
    NetworkParams,
    build_default_network,
)

OUTLINE = shapely.box(121.20, 30.12, 121.30, 30.20)  # ~9.6 km x 8.9 km
SEATS = pd.DataFrame({"name": ["测试街道", "样板镇"], "kind": ["街道", "镇"],
                      "seat_lon": [121.225, 121.275], "seat_lat": [30.175, 30.135]})
VILLAGES = pd.DataFrame({
    "name": ["东湖村", "西塘村", "南岸村", "北浦村", "中心社区", "新联村"],
    "centre_lon": [121.285, 121.210, 121.250, 121.265, 121.228, 121.290],
    "centre_lat": [30.185, 30.140, 30.130, 30.190, 30.172, 30.160],
})
CANAL = Barrier("测试塘河", "canal", ((0.0, 0.55), (0.5, 0.57), (1.0, 0.53)))
MOTORWAY = Barrier("测试高速", "motorway", ((0.72, 0.0), (0.70, 1.0)), "G99")
TO_METRIC = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:4549", always_xy=True)


def _build(path: Path, seed: int = 7, barriers=(CANAL, MOTORWAY)):
    return build_default_network(OUTLINE, SEATS, VILLAGES, seed=seed, out_path=path,
                                 barriers=barriers)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("synth") / "small.osm.bz2"
    build = _build(path)
    return build, load_network(path, cache=False, retain_all=True)


def _ways(path: Path):
    root = ET.fromstring(bz2.decompress(path.read_bytes()))
    nodes = {n.get("id"): (float(n.get("lon")), float(n.get("lat"))) for n in root.iter("node")}
    for w in root.iter("way"):
        tags = {t.get("k"): t.get("v") for t in w.iter("tag")}
        yield tags, [nodes[nd.get("ref")] for nd in w.iter("nd")]


def _values(value):
    return value if isinstance(value, list) else [value]


def test_deterministic(tmp_path, small):
    build, _ = small
    again = _build(tmp_path / "again.osm.bz2")
    assert again.path.read_bytes() == build.path.read_bytes()
    assert again.sha256 == build.sha256
    other = _build(tmp_path / "other.osm.bz2", seed=8)
    assert other.sha256 != build.sha256


def test_file_is_marked_synthetic_osm_xml(small):
    build, G = small
    assert build.size_bytes == build.path.stat().st_size
    root = ET.fromstring(bz2.decompress(build.path.read_bytes()))
    assert root.tag == "osm" and root.get("generator").startswith(GENERATOR)
    assert "SYNTHETIC" in root.find("note").text and "合成" in root.find("note").text
    ways = list(_ways(build.path))
    highway_ways = [t for t, _ in ways if "highway" in t]
    assert all(t.get("source") == "synthetic" for t in highway_ways)
    kinds = {t["highway"] for t in highway_ways}
    assert {"residential", "tertiary", "footway", "track", "motorway", "motorway_link",
            "primary", "cycleway"} <= kinds
    assert any(t.get("bridge") == "yes" for t in highway_ways)
    assert any(t.get("waterway") == "canal" and t.get("name") == "测试塘河" for t, _ in ways)
    assert any("测试" in t.get("name", "") and t.get("highway") == "residential"
               for t in highway_ways)
    assert G.graph["synthetic"] is True and network_summary(G)["synthetic"] is True


def test_walk_graph_is_connected_and_motorway_free(small):
    _, G = small
    assert nx.number_weakly_connected_components(G) == 1
    highways = {h for *_, hw in G.edges(data="highway") for h in _values(hw)}
    assert not highways & {"motorway", "motorway_link", "cycleway"}
    assert len(G) > 3000


def test_every_village_centre_is_near_the_network(small):
    _, G = small
    xy = np.array([[d["x"], d["y"]] for _, d in G.nodes(data=True)])
    cx, cy = TO_METRIC.transform(VILLAGES["centre_lon"].to_numpy(),
                                 VILLAGES["centre_lat"].to_numpy())
    d = np.hypot(xy[:, 0][None, :] - np.asarray(cx)[:, None],
                 xy[:, 1][None, :] - np.asarray(cy)[:, None]).min(axis=1)
    assert (d < 120).all(), d


def _canal_m(path: Path) -> shapely.LineString:
    for tags, coords in _ways(path):
        if tags.get("waterway") == "canal":
            x, y = TO_METRIC.transform(*np.array(coords).T)
            return shapely.LineString(np.column_stack([x, y]))
    raise AssertionError("no canal in the file")


def _edge_line(G, u, v, d):
    if "geometry" in d:
        return d["geometry"]
    return shapely.LineString([(G.nodes[u]["x"], G.nodes[u]["y"]),
                               (G.nodes[v]["x"], G.nodes[v]["y"])])


def test_canal_is_crossed_only_at_bridges(small):
    build, G = small
    canal = _canal_m(build.path)
    crossing = [(u, v, d) for u, v, d in G.edges(data=True)
                if _edge_line(G, u, v, d).intersects(canal)]
    assert crossing, "no street crosses the canal"
    assert all("yes" in _values(d.get("bridge")) for _, _, d in crossing)
    # a town street grid is crossed at spaced bridges, not at every street
    gates = {(min(u, v), max(u, v)) for u, v, _ in crossing}
    assert 3 <= len(gates) < 40


def test_network_distance_across_canal_goes_via_a_bridge(small):
    build, G = small
    canal = _canal_m(build.path)
    gates = []
    for u, v, d in G.edges(data=True):
        hit = _edge_line(G, u, v, d).intersection(canal)
        if not hit.is_empty:
            gates.extend(np.asarray(p.coords)[0] for p in shapely.get_parts(hit))
    gates = np.array(gates)
    nodes = np.array(list(G.nodes))
    xy = np.array([[G.nodes[n]["x"], G.nodes[n]["y"]] for n in nodes])
    dist = shapely.distance(shapely.points(xy), canal)
    # the canal cuts the county in two: which half is each node in?
    box_m = shapely.transform(OUTLINE, lambda c: np.column_stack(TO_METRIC.transform(*c.T)))
    halves = shapely.get_parts(split(shapely.segmentize(box_m, 50.0), canal))
    assert len(halves) == 2
    side = shapely.contains_xy(halves[0], xy[:, 0], xy[:, 1])
    near = dist < 150
    rng = np.random.default_rng(0)
    south = rng.choice(np.flatnonzero(near & ~side), 15, replace=False)
    north = np.flatnonzero(near & side)
    detours = []
    for a in south.tolist():
        lengths = nx.single_source_dijkstra_path_length(G, nodes[a], weight="length")
        for b in rng.choice(north, 10, replace=False).tolist():
            d_net = lengths[nodes[b]]
            via_gate = (np.hypot(*(gates - xy[a]).T) + np.hypot(*(gates - xy[b]).T)).min()
            straight = float(np.hypot(*(xy[b] - xy[a])))
            assert d_net >= via_gate * 0.995, (a, b, d_net, via_gate)
            detours.append(d_net / straight)
    # the barrier makes network distance differ from straight-line distance
    assert np.median(detours) > 1.15


def test_motorway_is_crossed_only_over_or_under(small):
    build, G = small
    lines = [np.column_stack(TO_METRIC.transform(*np.array(c).T)) for t, c in _ways(build.path)
             if t.get("highway") == "motorway"]
    assert len(lines) == 2  # two carriageways
    road = shapely.LineString(lines[0])
    crossing = [d for u, v, d in G.edges(data=True) if _edge_line(G, u, v, d).intersects(road)]
    assert crossing
    assert all({"yes"} & set(_values(d.get("bridge")) + _values(d.get("tunnel")))
               for d in crossing)


def test_bad_inputs():
    with pytest.raises(DataFileError, match="seat_lon"):
        build_default_network(OUTLINE, SEATS.drop(columns=["seat_lon"]), VILLAGES,
                              out_path="/nonexistent/x.osm.bz2")
    with pytest.raises(DataFileError, match="outline"):
        build_default_network(shapely.Point(121.2, 30.1), SEATS, VILLAGES,
                              out_path="/nonexistent/x.osm.bz2")
    bad = VILLAGES.copy()
    bad.loc[2, "centre_lat"] = np.nan
    with pytest.raises(DataFileError, match=r"rows \[2\]"):
        build_default_network(OUTLINE, SEATS, bad, out_path="/nonexistent/x.osm.bz2")


def test_params_scale_the_network(tmp_path, small):
    build, _ = small
    coarse = build_default_network(OUTLINE, SEATS, VILLAGES, seed=7, barriers=(CANAL,),
                                   out_path=tmp_path / "coarse.osm.bz2",
                                   params=NetworkParams(rural_spacing_m=400.0,
                                                        urban_spacing_m=120.0))
    assert coarse.n_nodes < build.n_nodes


# ---------------------------------------------------------------------- embedded file

def test_embedded_network_file():
    path = default_network_path()
    if not path.exists():
        pytest.skip("embedded network not built yet (python -m qyx_geo.synth)")
    assert path.stat().st_size < 5_000_000
    n_nodes = 0
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        head = fh.read(2000)
        assert f'generator="{GENERATOR}' in head and "SYNTHETIC" in head
        fh.seek(0)
        for line in fh:
            n_nodes += line.startswith("<node ")
    assert 120_000 <= n_nodes <= 250_000


@pytest.mark.slow
def test_embedded_network_loads():
    if not default_network_path().exists():
        pytest.skip("embedded network not built yet (python -m qyx_geo.synth)")
    G = load_network("default")
    s = network_summary(G)
    assert s["nodes"] >= 100_000 and s["synthetic"] and s["crs"] == "EPSG:4549"
    assert nx.number_weakly_connected_components(G) == 1


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_invariants_hold_for_other_seeds(tmp_path, seed):
    params = NetworkParams(urban_spacing_m=110.0, town_spacing_m=120.0, rural_spacing_m=300.0,
                           village_spacing_m=60.0)
    build = build_default_network(OUTLINE, SEATS, VILLAGES, seed=seed, params=params,
                                  barriers=(CANAL, MOTORWAY), out_path=tmp_path / "n.osm.bz2")
    G = load_network(build.path, cache=False, retain_all=True)
    assert nx.number_weakly_connected_components(G) == 1
    canal = _canal_m(build.path)
    crossing = [d for u, v, d in G.edges(data=True) if _edge_line(G, u, v, d).intersects(canal)]
    assert crossing and all("yes" in _values(d.get("bridge")) for d in crossing)
