"""qyx_geo._cache: data-only files, content keys, damaged files rebuilt, no pickle."""

# ruff: noqa: N803  (G, H for graphs)
from __future__ import annotations

import logging
import os
import pickle
import time
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from shapely.geometry import LineString

from qyx_geo import _cache
from qyx_geo import network as qn
from qyx_geo.network._codec import graph_from_arrays, graph_to_arrays

FIX = Path(__file__).parent / "fixtures" / "network"
TINY = FIX / "tiny.osm"


class _Planted:
    """Unpickling this creates a marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _counting(value):
    calls = []

    def build():
        calls.append(1)
        return value

    return build, calls


def _get(key, build, **kw):
    return _cache.get_or_build("demo", "x", key, build=build,
                               encode=lambda v: {"v": np.asarray(v)},
                               decode=lambda a: a["v"].tolist(), **kw)


def test_store_and_load_round_trip(cache):
    build, calls = _counting([1.5, 2.5, 3.5])
    assert _get("k1", build) == [1.5, 2.5, 3.5]
    assert _get("k1", build) == [1.5, 2.5, 3.5]
    assert len(calls) == 1  # the second call came from the file
    (entry,) = _cache.entries("demo")
    assert entry.path == _cache.entry_path("demo", "x", "k1") and entry.path.suffix == ".npz"


def _damage_cases(data: bytes) -> dict[str, bytes]:
    n = len(data)
    cases = {"empty": b"", "truncated-half": data[: n // 2], "truncated-tail": data[:-7],
             "garbage": b"not a cache file at all"}
    # one flipped bit at many places: zip headers, the header record, the payload, the directory
    for pos in sorted({0, 3, 40, 90, n // 3, n // 2, 2 * n // 3, n - 30, n - 3}):
        flipped = bytearray(data)
        flipped[pos] ^= 0x10
        cases[f"bit-{pos}"] = bytes(flipped)
    return cases


def test_damaged_files_are_rebuilt_with_a_warning(cache, caplog):
    values = list(np.linspace(0, 1, 200))
    build, calls = _counting(values)
    _get("k1", build)
    path = _cache.entry_path("demo", "x", "k1")
    good = path.read_bytes()
    for name, data in _damage_cases(good).items():
        path.write_bytes(data)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="qyx_geo._cache"):
            assert _get("k1", build) == values, name
        assert "unusable" in caplog.text, name
        assert _cache.load(path, "k1")["v"].tolist() == values, name  # stored again
    assert len(calls) == 1 + len(_damage_cases(good))


def test_an_entry_with_another_key_or_format_is_not_served(cache):
    build, calls = _counting([1, 2])
    _get("k1", build)
    path = _cache.entry_path("demo", "x", "k1")
    path.rename(_cache.entry_path("demo", "x", "k2"))  # same content under another key
    assert _get("k2", build) == [1, 2]
    assert len(calls) == 2


def test_a_planted_pickle_is_never_executed(cache, tmp_path):
    marker = tmp_path / "pwned"
    # at the entry's own path, as a bare pickle and inside an npz (object array member)
    build, calls = _counting([7])
    path = _cache.entry_path("demo", "x", "k1")
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps(_Planted(marker)))
    assert _get("k1", build) == [7]
    with path.open("wb") as fh:
        np.savez(fh, __qyx_cache__=_cache.to_text('{"format": 1, "key": "k1"}'),
                 v=np.array([_Planted(marker)], dtype=object))
    assert _get("k1", build) == [7]
    assert not marker.exists()
    assert len(calls) == 2


def test_old_pickle_network_cache_is_never_loaded(cache, tmp_path):
    marker = tmp_path / "pwned"
    folder = cache / "networks"
    folder.mkdir(parents=True)
    # where the pickle-based cache kept processed graphs: <name>-<key>.pickle (+ .json)
    for name in ("tiny.osm-0123456789abcdef01234567.pickle",
                 f"tiny.osm-{qn.file_cache_key(TINY)}.pickle"):
        (folder / name).write_bytes(pickle.dumps(_Planted(marker)))
    G = qn.load_network(TINY)
    again = qn.load_network(TINY)
    assert not marker.exists()
    assert again.number_of_edges() == G.number_of_edges() > 0
    assert [e.path.suffix for e in qn.cache_entries()] == [".npz"]
    assert qn.clear_cache(downloads=False) == 3  # the old files go too
    assert not folder.exists()


def _same_graph_exactly(G, H):
    assert G.graph == H.graph
    assert list(G.nodes(data=True)) == list(H.nodes(data=True))
    ge, he = list(G.edges(keys=True, data=True)), list(H.edges(keys=True, data=True))
    assert [e[:3] for e in ge] == [e[:3] for e in he]
    for (*_, d), (*_, e) in zip(ge, he, strict=True):
        assert d.keys() == e.keys()
        for k, v in d.items():
            if k == "geometry":
                assert v.equals_exact(e[k], 0)
            else:
                assert v == e[k] and type(v) is type(e[k]), k


def test_graph_codec_round_trip_is_exact():
    G = qn.load_network(TINY, cache=False)
    assert any(isinstance(v, list) for *_, v in G.edges(data="osmid"))  # lists survive too
    assert any("geometry" in d for *_, d in G.edges(data=True))
    _same_graph_exactly(graph_from_arrays(graph_to_arrays(G)), G)


def test_graph_codec_hand_made_graph():
    G = nx.MultiDiGraph(crs="EPSG:4549", simplified=True, note="测试")
    G.add_node(5, x=1.0, y=2.0, street_count=3)
    G.add_node(-9, x=0.5, y=-1.0, highway="crossing")
    G.add_edge(5, -9, key=0, length=1.25, oneway=False, name=["甲路", "乙路"], osmid=2**40,
               geometry=LineString([(1, 2), (0.7, 0), (0.5, -1)]))
    G.add_edge(-9, 5, key=3, length=1.25, reversed=True, maxspeed=None)
    H = graph_from_arrays(graph_to_arrays(G))
    _same_graph_exactly(H, G)
    assert H.edges[-9, 5, 3]["maxspeed"] is None and "name" not in H.edges[-9, 5, 3]


@pytest.mark.parametrize("bad", [
    {"id": ("tuple", "node")}, {"attr": {"a": 1}}, {"attr": np.float32(1.5)},
    {"attr": 2**70}, {"graph": object()},
])
def test_graph_codec_refuses_what_it_cannot_store_exactly(bad):
    G = nx.MultiDiGraph(crs="EPSG:4549")
    G.add_edge(1, 2, length=1.0)
    if "id" in bad:
        G.add_edge(bad["id"], 1, length=1.0)
    if "attr" in bad:
        G.edges[1, 2, 0]["odd"] = bad["attr"]
    if "graph" in bad:
        G.graph["odd"] = bad["graph"]
    assert graph_to_arrays(G) is None


def test_frame_codec_round_trip():
    frame = gpd.GeoDataFrame({"highway": ["primary", "道路"], "n": [1, 2]},
                             geometry=[LineString([(121.2, 30.1), (121.3, 30.2)]), None],
                             crs="EPSG:4326")
    back = _cache.frame_from_arrays(_cache.frame_to_arrays(frame))
    assert back["highway"].tolist() == ["primary", "道路"] and back["n"].tolist() == [1, 2]
    assert back.crs == frame.crs
    assert shapely.equals(back.geometry.iloc[0], frame.geometry.iloc[0])
    assert back.geometry.iloc[1] is None
    assert _cache.frame_to_arrays(frame.assign(odd=[[1], [2]])) is None


def test_content_key_ignores_path_and_mtime_but_not_content(tmp_path):
    a, b = tmp_path / "a.osm", tmp_path / "b.osm"
    a.write_bytes(TINY.read_bytes())
    b.write_bytes(TINY.read_bytes())
    os.utime(b, (time.time() - 1e5, time.time() - 1e5))
    assert qn.file_cache_key(a) == qn.file_cache_key(b)
    assert qn.file_cache_key(a, retain_all=True) != qn.file_cache_key(a)
    b.write_bytes(TINY.read_bytes().replace(b"</osm>", b"<!-- x --></osm>"))
    assert qn.file_cache_key(a) != qn.file_cache_key(b)


def test_unwritable_cache_costs_speed_not_the_run(cache, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", refuse)
    build, _ = _counting([1])
    with caplog.at_level(logging.WARNING, logger="qyx_geo._cache"):
        assert _get("k1", build) == [1]
    assert "QYX_CACHE_DIR" in caplog.text
    assert _cache.entries("demo") == []
    assert not list((cache / "demo").iterdir())  # no temporary file left behind


def test_leftover_temporaries_of_killed_runs_are_removed(cache):
    folder = cache / "demo"
    folder.mkdir(parents=True)
    old, fresh = folder / ".x-k1.npz.abc.tmp.npz", folder / ".x-k2.npz.def.tmp.npz"
    old.write_bytes(b"half")
    fresh.write_bytes(b"being written")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    build, _ = _counting([1])
    _get("k1", build)
    assert not old.exists() and fresh.exists()


def test_damaged_grid_link_cache_is_rebuilt(cache, caplog):
    from _audit_fixtures import grid_graph

    from qyx_geo.engine import build_arrays
    from qyx_geo.pipeline import grid_link
    from qyx_geo.settings import Settings

    net = build_arrays(grid_graph())
    first = grid_link(net, TINY, Settings())  # TINY only names the network file for the key
    (entry,) = _cache.entries("grid_link")
    entry.path.write_bytes(entry.path.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="qyx_geo._cache"):
        again = grid_link(net, TINY, Settings())
    assert "unusable" in caplog.text
    for name, value in first.arrays().items():
        np.testing.assert_array_equal(np.asarray(again.arrays()[name]), np.asarray(value))


def test_cold_audit_network_loads_the_graph_once(cache, monkeypatch):
    """Engine arrays and main roads built cold share one load (it was two: build, then decode)."""
    import qyx_geo.network
    from qyx_geo.pipeline import dataset_network

    calls = []
    real = qyx_geo.network.load_network

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(qyx_geo.network, "load_network", counting)
    net, roads = dataset_network(None, FIX / "tiny.osm", need_roads=True, crs="EPSG:4549")
    assert len(calls) == 1
    assert net.n_edges > 0 and roads is not None
    # warm: neither the arrays nor the roads need the graph
    dataset_network(None, FIX / "tiny.osm", need_roads=True, crs="EPSG:4549")
    assert len(calls) == 1
