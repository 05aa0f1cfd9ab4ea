# ruff: noqa: N803  (G, H for graphs, as in osmnx)
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import networkx as nx
import osmnx as ox
import pytest

from qyx_geo import _cache
from qyx_geo import network as qn
from qyx_geo._errors import DataFileError, NetworkError, OfflineError, QyxGeoError, SettingsError
from qyx_geo.cli import main as cli_main
from qyx_geo.network import (
    cache_entries,
    clear_cache,
    fetch_network,
    load_network,
    network_summary,
    validate_network,
)
from qyx_geo.network._graph_ops import project_in_place
from qyx_geo.network._osm_files import WayFilter

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "network"
TINY = FIX / "tiny.osm"


def _highways(G):
    out = set()
    for *_, hw in G.edges(data="highway"):
        out.update(hw if isinstance(hw, list) else [hw])
    return out


def _edge_set(G):
    return {(u, v, k) for u, v, k in G.edges(keys=True)}


def _assert_same_graph(G, H):
    assert set(G.nodes) == set(H.nodes)
    assert _edge_set(G) == _edge_set(H)
    for n in G.nodes:
        assert G.nodes[n]["x"] == pytest.approx(H.nodes[n]["x"], abs=1e-6)
        assert G.nodes[n]["y"] == pytest.approx(H.nodes[n]["y"], abs=1e-6)
    for u, v, k, length in G.edges(keys=True, data="length"):
        assert length == pytest.approx(H.edges[u, v, k]["length"], rel=1e-9)
        assert G.edges[u, v, k].get("highway") == H.edges[u, v, k].get("highway")


@pytest.fixture(scope="module")
def tiny():
    return load_network(TINY, cache=False)


def test_contract(tiny):
    validate_network(tiny)
    assert isinstance(tiny, nx.MultiDiGraph)
    assert tiny.graph["crs"] == "EPSG:4549"
    # EPSG:4549 is CGCS2000 3-degree GK CM 120E (false easting 500 km): Cixi is ~120 km east
    xs = [d["x"] for _, d in tiny.nodes(data=True)]
    ys = [d["y"] for _, d in tiny.nodes(data=True)]
    assert all(600_000 < x < 650_000 for x in xs)
    assert all(3_300_000 < y < 3_400_000 for y in ys)
    # grid spacing 0.001 deg: ~96 m east-west, ~111 m north-south
    # 5 → 19 → 8 with node 19 set 48 m off the straight line: 2 × 73.5 m
    assert tiny.edges[5, 8, 0]["length"] == pytest.approx(147, abs=1)
    assert 1 not in tiny.nodes  # corner node left with two streets: simplified away
    for _, _, length in tiny.edges(data="length"):
        assert length > 0
    # walking ignores one-way rules: every edge has its reverse
    assert all(tiny.has_edge(v, u) for u, v in tiny.edges())
    assert tiny.graph["synthetic"] is False


def test_walk_filter_drops_non_walkable_ways(tiny):
    highways = _highways(tiny)
    assert "motorway" not in highways and "motorway_link" not in highways
    assert "cycleway" not in highways
    # private service road (9-12), foot=no street (7-13), canal (14-15), isolated piece (17-18)
    for node in (10, 11, 12, 13, 14, 15, 17, 18):
        assert node not in tiny.nodes
    assert {"residential", "tertiary", "footway", "living_street"} <= highways
    # the one-way street 8→16 is walkable both ways
    assert tiny.has_edge(8, 16) and tiny.has_edge(16, 8)
    # the interstitial node 19 of the path 5-19-8 is simplified away
    assert 19 not in tiny.nodes and tiny.has_edge(5, 8)
    # the filter's own tags are not left on the edges
    assert all("foot" not in d for *_, d in tiny.edges(data=True))


def test_all_network_type_keeps_motorways():
    G = load_network(TINY, network_type="all", cache=False, retain_all=True)
    highways = _highways(G)
    assert {"motorway", "cycleway"} <= highways
    assert G.graph["network_type"] == "all"


@pytest.mark.parametrize("name", ["tiny.osm.bz2", "tiny.osm.pbf", "tiny_raw.graphml"])
def test_formats_load_to_the_same_graph(tiny, name):
    G = load_network(FIX / name, cache=False)
    _assert_same_graph(G, tiny)
    assert G.graph["crs"] == "EPSG:4549"


def test_saved_projected_graphml_roundtrip(tiny, tmp_path):
    path = tmp_path / "walk.graphml"
    ox.save_graphml(tiny, path)
    G = load_network(path, cache=False)
    _assert_same_graph(G, tiny)


def test_in_memory_graph_is_prepared(tmp_path):
    raw = ox.load_graphml(FIX / "tiny_raw.graphml")
    G = load_network(raw)
    assert G.graph["crs"] == "EPSG:4549"
    assert "motorway" not in _highways(G)
    assert raw.graph["crs"] != "EPSG:4549"  # the caller's graph is not changed


def test_cache_hit_returns_equal_graph(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "net.osm"
    shutil.copy(TINY, path)
    first = load_network(path)
    entries = cache_entries()
    assert len(entries) == 1 and entries[0].nodes == len(first)
    assert entries[0].source == str(path)

    def boom(*args, **kwargs):
        raise AssertionError("the file was read again instead of the cache")

    monkeypatch.setattr(qn, "_read_file", boom)
    second = load_network(path)
    _assert_same_graph(second, first)
    assert second.graph == first.graph
    # other options or a changed file are other cache entries
    with pytest.raises(AssertionError, match="read again"):
        load_network(path, retain_all=True)
    path.write_text(TINY.read_text(encoding="utf-8").replace("测试一路", "测试壹路"),
                    encoding="utf-8")
    with pytest.raises(AssertionError, match="read again"):
        load_network(path)
    assert clear_cache() == 1  # one .npz per entry
    assert cache_entries() == []


def test_corrupt_cache_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path / "cache"))
    first = load_network(TINY)
    entry = cache_entries()[0]
    good = entry.path.read_bytes()
    for damaged in (b"not a cache file", good[: len(good) // 2]):
        entry.path.write_bytes(damaged)
        again = load_network(TINY)
        _assert_same_graph(again, first)
        assert [e.path for e in cache_entries()] == [entry.path]  # rebuilt and cached again


def test_network_summary(tiny):
    s = network_summary(tiny)
    assert s["nodes"] == len(tiny) and s["edges"] == tiny.number_of_edges()
    assert s["crs"] == "EPSG:4549" and s["synthetic"] is False
    directed_km = sum(d for *_, d in tiny.edges(data="length")) / 1000
    assert s["street_length_km"] == pytest.approx(directed_km / 2, abs=0.1)


def test_way_filter_semantics():
    wf = WayFilter("walk")
    assert wf.accepts({"highway": "residential"})
    assert not wf.accepts({"name": "no highway tag"})
    assert not wf.accepts({"highway": "motorway_link"})
    assert not wf.accepts({"highway": "cycleway"})
    assert not wf.accepts({"highway": "residential", "foot": "no"})
    assert not wf.accepts({"highway": "service", "access": "private"})
    assert not wf.accepts({"highway": "primary", "sidewalk": "separate"})
    assert wf.accepts({"highway": ["residential", "footway"]})
    assert not wf.accepts({"highway": ["residential", "motorway"]})
    assert "foot" in wf.keys and "highway" in wf.keys


# ---------------------------------------------------------------------- invalid input

@pytest.mark.parametrize(("name", "error", "pattern"), [
    ("broken.osm", DataFileError, "not valid OSM XML"),
    ("empty.osm", DataFileError, "empty"),
    ("no_walkable.osm", NetworkError, "no walk edges.*motorway"),
    ("nocrs.graphml", NetworkError, "no 'crs'"),
    ("missing.osm", DataFileError, "not found"),
])
def test_invalid_files(name, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        load_network(FIX / name, cache=False)
    assert name in str(info.value)
    assert isinstance(info.value, QyxGeoError)


def test_broken_compressed_file(tmp_path):
    path = tmp_path / "cut.osm.bz2"
    path.write_bytes((FIX / "tiny.osm.bz2").read_bytes()[:200])
    with pytest.raises(DataFileError, match=r"cut\.osm\.bz2"):
        load_network(path, cache=False)


def test_broken_pbf(tmp_path):
    path = tmp_path / "bad.osm.pbf"
    path.write_bytes(b"\x00\x00\x00\x0dnot a pbf file at all")
    with pytest.raises(DataFileError, match=r"bad\.osm\.pbf"):
        load_network(path, cache=False)


def test_unknown_extension(tmp_path):
    path = tmp_path / "streets.shp"
    path.write_bytes(b"x")
    with pytest.raises(DataFileError, match=r"streets\.shp.*\.graphml"):
        load_network(path, cache=False)


def test_bad_options_and_graphs():
    with pytest.raises(SettingsError, match="network_type"):
        load_network(TINY, network_type="car")  # type: ignore[arg-type]
    with pytest.raises(NetworkError, match="MultiDiGraph"):
        load_network(nx.Graph())  # type: ignore[arg-type]
    G = nx.MultiDiGraph()
    G.add_edge(1, 2, highway="residential")
    with pytest.raises(NetworkError, match="no 'crs'"):
        load_network(G)
    with pytest.raises(NetworkError, match=r"not a projected CRS in metres"):
        validate_network(ox.load_graphml(FIX / "tiny_raw.graphml"))


# ---------------------------------------------------------------------- online

def test_offline_fetch_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path))
    probed = []

    def unreachable(host, port, timeout_s):
        probed.append((host, port, timeout_s))
        return False

    monkeypatch.setattr(qn, "_reachable", unreachable)

    def no_download(*args, **kwargs):
        raise AssertionError("osmnx was called although offline")

    monkeypatch.setattr(ox, "graph_from_place", no_download)
    monkeypatch.setattr(ox, "graph_from_polygon", no_download)
    t0 = time.perf_counter()
    with pytest.raises(OfflineError, match=r"load_network\(") as info:
        fetch_network("慈溪市, 浙江省, 中国")
    assert time.perf_counter() - t0 < 2.0
    assert "qyx network load" in str(info.value)
    assert probed and probed[0][2] == 3.0
    with pytest.raises(OfflineError):
        fetch_network((121.24, 30.16, 121.26, 30.18), probe_timeout_s=0.5)
    assert isinstance(info.value, ConnectionError)


def test_reachability_probe_is_quick():
    # a closed local port: refused at once, no internet involved
    t0 = time.perf_counter()
    assert qn._reachable("127.0.0.1", 9, 0.5) is False
    assert time.perf_counter() - t0 < 2.0


def test_reachability_probe_ignores_a_hanging_lookup(monkeypatch):
    import socket

    def hang(*args, **kwargs):
        time.sleep(1.5)
        raise OSError("resolver timed out")

    monkeypatch.setattr(socket, "create_connection", hang)
    t0 = time.perf_counter()
    assert qn._reachable("overpass-api.de", 443, 0.2) is False
    assert time.perf_counter() - t0 < 1.0


def test_fetch_validates_query():
    with pytest.raises(SettingsError, match=r"bbox"):
        fetch_network((121.3, 30.1, 121.2, 30.2))
    with pytest.raises(SettingsError, match="query"):
        fetch_network("")
    with pytest.raises(SettingsError, match="must be numbers"):
        fetch_network(("121.2E", 30.1, 121.3, 30.2))
    with pytest.raises(SettingsError, match=r"\(west, south, east, north\)"):
        fetch_network((121.2, 30.1, 121.3))


def test_fetch_uses_cached_result_offline(monkeypatch, tmp_path, tiny):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path))
    raw = ox.load_graphml(FIX / "tiny_raw.graphml")
    calls = []

    def fake_polygon(polygon, **kwargs):
        calls.append(kwargs)
        return raw.copy()

    monkeypatch.setattr(qn, "_reachable", lambda *a: True)
    monkeypatch.setattr(ox, "graph_from_polygon", fake_polygon)
    bbox = (121.249, 30.169, 121.253, 30.174)
    G = fetch_network(bbox)
    assert calls[0]["network_type"] == "walk"
    assert G.graph["crs"] == "EPSG:4549" and G.graph["qyx_source"] == "osm:polygon"
    monkeypatch.setattr(qn, "_reachable", lambda *a: False)
    again = fetch_network(bbox)  # served from the cache although "offline"
    _assert_same_graph(again, G)
    assert len(calls) == 1


@pytest.mark.network
@pytest.mark.skipif(not os.environ.get("QYX_ONLINE_TESTS"),
                    reason="needs internet; set QYX_ONLINE_TESTS=1 and run with -m network")
def test_fetch_small_area_online():  # pragma: no cover - online only
    G = fetch_network((121.245, 30.165, 121.255, 30.175))
    validate_network(G)


# ---------------------------------------------------------------------- CLI

def test_cli_load_and_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path))
    assert cli_main(["network", "load", str(TINY)]) == 0
    out = capsys.readouterr().out
    assert "节点 nodes" in out and "EPSG:4549" in out
    assert cli_main(["network", "cache"]) == 0
    assert "tiny.osm" in capsys.readouterr().out
    assert cli_main(["network", "cache", "--clear", "--json"]) == 0
    assert '"removed_files": 1' in capsys.readouterr().out  # one .npz per cached network


def test_cli_errors_are_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path))
    assert cli_main(["network", "load", str(FIX / "no_walkable.osm")]) == 2
    assert "no walk edges" in capsys.readouterr().err
    monkeypatch.setattr(qn, "_reachable", lambda *a: False)
    assert cli_main(["network", "fetch", "--bbox", "121.2", "30.1", "121.3", "30.2"]) == 2
    assert "qyx network load" in capsys.readouterr().err


def test_projection_matches_osmnx():
    G = ox.simplify_graph(ox.load_graphml(FIX / "tiny_raw.graphml"))
    ref = ox.project_graph(G, to_crs="EPSG:4549")
    ours = G.copy()
    project_in_place(ours, "EPSG:4549")
    assert ours.graph["crs"] == "EPSG:4549"
    assert set(ours.nodes) == set(ref.nodes) and _edge_set(ours) == _edge_set(ref)
    for n, d in ref.nodes(data=True):
        assert ours.nodes[n]["x"] == pytest.approx(d["x"], abs=1e-6)
        assert ours.nodes[n]["y"] == pytest.approx(d["y"], abs=1e-6)
    n_geom = 0
    for u, v, k, geom in ref.edges(keys=True, data="geometry"):
        if geom is not None:
            n_geom += 1
            assert ours.edges[u, v, k]["geometry"].equals_exact(geom, 1e-6)
    assert n_geom > 0


def test_unwritable_cache_does_not_fail_the_load(tmp_path, monkeypatch):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path))

    def refuse(path):
        raise PermissionError(13, "read-only file system", str(path))

    monkeypatch.setattr(_cache, "atomic_path", refuse)
    G = load_network(TINY)
    assert G.graph["crs"] == "EPSG:4549"
    assert cache_entries() == []


@pytest.mark.parametrize("name", ["tiny.osm", "tiny.osm.pbf", "tiny_raw.graphml"])
def test_clip_keeps_the_area_only(tiny, name):
    # the western two columns of the 3x3 grid (lon 121.250 and 121.251) and nothing east
    clip = (121.2495, 30.1695, 121.2512, 30.1735)
    G = load_network(FIX / name, cache=False, clip=clip)
    assert G.graph["crs"] == "EPSG:4549"
    assert {4, 5, 8}.issubset(G.nodes)  # corners 1, 2, 7 keep two streets: simplified away
    assert not {3, 6, 9}.intersection(G.nodes)
    assert set(G.nodes) < set(tiny.nodes) | {1, 7}


def test_clip_outside_the_file_and_bad_clip():
    with pytest.raises(NetworkError, match="no node lies inside clip"):
        load_network(TINY, cache=False, clip=(100.0, 20.0, 100.1, 20.1))
    with pytest.raises(SettingsError, match="clip"):
        load_network(TINY, cache=False, clip=(121.3, 30.2, 121.2, 30.1))


def test_cli_load_with_clip(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path))
    assert cli_main(["network", "load", str(TINY), "--json", "--clip",
                     "121.2495", "30.1695", "121.2512", "30.1735"]) == 0
    assert '"nodes"' in capsys.readouterr().out


def test_cli_network_without_action_prints_help(capsys):
    assert cli_main(["network"]) == 2
    assert "load" in capsys.readouterr().out


@pytest.mark.parametrize("network_type", qn.NETWORK_TYPES)
def test_vendored_way_filters_match_osmnx_for_every_type(network_type):
    from qyx_geo.network._osm_files import osmnx_way_filter

    ours = osmnx_way_filter(network_type)
    WayFilter(network_type)  # parses
    private = getattr(getattr(ox, "_overpass", None), "_get_network_filter", None)
    if private is None:  # pragma: no cover - osmnx moved it: the vendored table still works
        pytest.skip("this osmnx has no _overpass._get_network_filter to compare with")
    assert ours == private(network_type)  # drift detector: update OSMNX_WAY_FILTERS


@pytest.mark.parametrize(("tags", "accepted_by"), [
    ({"highway": "motorway"}, {"drive", "drive_service", "all", "all_public"}),
    ({"highway": "footway"}, {"walk", "all", "all_public"}),
    ({"highway": "cycleway"}, {"bike", "all", "all_public"}),
    ({"highway": "residential", "access": "private"}, {"all"}),
    ({"highway": "service", "service": "driveway"}, {"walk", "bike", "drive_service", "all",
                                                     "all_public"}),
    ({"highway": "residential", "foot": "no"}, {"bike", "drive", "drive_service", "all",
                                                "all_public"}),
    ({"highway": "construction"}, set()),
])
def test_way_filters_of_every_network_type(tags, accepted_by):
    assert {t for t in qn.NETWORK_TYPES if WayFilter(t).accepts(tags)} == accepted_by


def test_the_package_imports_no_private_osmnx_name():
    import re

    # osmnx defines its exception classes only in osmnx._errors (listed in its documented
    # internals reference): the one allowed exception
    pattern = re.compile(r"\b(?:ox|osmnx)\._(?!errors\b)[a-z]")
    offenders = [f"{p.relative_to(ROOT)}:{n}" for p in (ROOT / "qyx_geo").rglob("*.py")
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line.split("#")[0])]
    assert offenders == []


def test_warm_network_path_never_imports_osmnx(tmp_path):
    # issue 11: with engine arrays, main roads and the grid link cached, an audit only needs
    # the cache keys; importing osmnx (and matplotlib through it) cost half a second per run,
    # networkx another 0.08 s
    import subprocess
    import sys

    code = (
        "import sys, types\n"
        "from qyx_geo.pipeline import dataset_network, grid_link\n"
        "from qyx_geo.settings import Settings\n"
        f"source = {str(TINY)!r}\n"
        "net, roads = dataset_network(types.SimpleNamespace(region=None), source,"
        " need_roads=True)\n"
        "grid_link(net, source, Settings())\n"
        "print(' '.join(m for m in ('osmnx', 'matplotlib', 'networkx') if m in sys.modules)"
        " or '-')\n"
    )
    env = {**os.environ, "QYX_CACHE_DIR": str(tmp_path / "cache")}

    def imported() -> str:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)
        return out.stdout.split("\n")[-2]

    assert "osmnx" in imported()  # cold: the network is read and processed with osmnx
    assert imported() == "-"  # warm: cache hits only
