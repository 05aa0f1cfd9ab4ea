"""Stream an OSM file (XML, .bz2, .gz, PBF) straight into an osmnx-style graph.

One pass of pyosmium (libosmium, C++) over the file; node locations go into libosmium's own
index, so memory grows with the file's nodes at a few bytes each, not with Python objects, and
only ``highway`` ways (every osmnx network filter requires the key) reach Python. The graph is
then built exactly as ``osmnx.graph_from_xml`` builds it — the same node and path dicts
(consecutive duplicate nodes dropped, ``settings.useful_tags_*`` kept), osmnx's one-way and
``reversed`` rules and its ``distance.great_circle`` lengths — so a reference-complete file gives
the same graph as osmnx (tested, node and edge order included).

Unlike ``graph_from_xml``, it accepts clipped extracts: a way whose nodes are not all in the
file (or not inside ``clip``) is cut where they are missing and the pieces with at least two
nodes are kept, the same result as osmnx's online path (complete ways, then
``truncate_graph_polygon``). :class:`ReadStats` says how many ways were cut or dropped.
"""

# ruff: noqa: N806  (G for a graph, as in osmnx and networkx)
from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import groupby, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from qyx_geo._errors import DataFileError, NetworkError

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["ReadStats", "read_osm_graph"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class ReadStats:
    """What :func:`read_osm_graph` met in the file."""

    nodes_read: int = 0
    highway_ways: int = 0
    ways_cut: int = 0
    ways_dropped: int = 0
    ways_filtered: int = 0
    nodes_missing: int = 0
    first_cut_way: int | None = None
    #: File header's replication timestamp, else the newest street object's timestamp.
    timestamp: str = ""
    highways: Counter[str] = dataclasses.field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Return the counts as plain JSON values."""
        return {"highway_ways": self.highway_ways, "ways_cut": self.ways_cut,
                "ways_dropped": self.ways_dropped, "ways_filtered": self.ways_filtered,
                "nodes_missing": self.nodes_missing,
                "osm_timestamp": self.timestamp}


def _pieces(ids: list[int], present: list[bool]) -> list[list[int]]:
    """Split a way's node ids at the missing ones; keep runs of at least two nodes."""
    out: list[list[int]] = []
    run: list[int] = []
    for nid, ok in zip(ids, present, strict=True):
        if ok:
            run.append(nid)
        else:
            if len(run) >= 2:
                out.append(run)
            run = []
    if len(run) >= 2:
        out.append(run)
    return out


def read_osm_graph(path: Path, *, bidirectional: bool, way_tags: list[str],
                   accepts: Callable[[Mapping[str, str]], bool] | None = None,
                   clip: BaseGeometry | None = None) -> tuple[nx.MultiDiGraph, ReadStats]:
    """Return the raw (unsimplified, all components) graph of ``path``'s highways.

    Parameters
    ----------
    path
        ``.osm``, ``.osm.bz2``, ``.osm.gz`` or ``.osm.pbf``.
    bidirectional
        osmnx's ``bidirectional`` (True for walking: one-way tags ignored).
    way_tags
        Way tags kept on the edges (osmnx's ``useful_tags_way`` plus the filter's keys).
    accepts
        Way filter on a way's tags (osmnx's network filter); ways it refuses are counted in
        ``ReadStats.ways_filtered`` and left out. Default: every ``highway`` way.
    clip
        WGS84 (Multi)Polygon: only nodes inside it are kept, ways cut at its edge.

    Raises
    ------
    DataFileError
        The file is not readable OSM data.
    NetworkError
        No node of the file lies inside ``clip``.
    """
    import osmium  # heavy; only needed here
    import osmnx as ox  # likewise: a warm audit never imports it (issue 11)

    stats = ReadStats()
    keep = set(way_tags)
    node_tags = list(ox.settings.useful_tags_node)
    tagged_nodes: dict[int, dict[str, str]] = {}
    coords: dict[int, tuple[float, float]] = {}
    paths: list[dict[str, Any]] = []
    newest: dt.datetime | None = None
    box = clip.bounds if clip is not None else None
    exact = clip is not None and not clip.equals(shapely.box(*clip.bounds))
    if exact:
        shapely.prepare(clip)
    try:
        proc = osmium.FileProcessor(str(path)).with_locations().with_filter(
            osmium.filter.KeyFilter("highway", *node_tags))
        for obj in proc:
            if isinstance(obj, osmium.osm.Changeset):  # edit metadata, no street
                continue
            ts = obj.timestamp
            if ts is not None and ts.year > 1970 and (newest is None or ts > newest):
                newest = ts
            if isinstance(obj, osmium.osm.Node):
                tags = {k: obj.tags[k] for k in node_tags if k in obj.tags}
                if tags:
                    tagged_nodes[obj.id] = tags
                continue
            if not isinstance(obj, osmium.osm.Way) or "highway" not in obj.tags:
                continue
            stats.highway_ways += 1
            stats.highways[obj.tags["highway"]] += 1
            tags = {t.k: t.v for t in obj.tags if t.k in keep}
            if accepts is not None and not accepts(tags):
                stats.ways_filtered += 1
                continue
            ids: list[int] = []
            present: list[bool] = []
            for nd in obj.nodes:
                loc = nd.location
                ok = loc.valid()
                if ok:
                    lon, lat = loc.lon, loc.lat
                    if box is not None:
                        ok = box[0] <= lon <= box[2] and box[1] <= lat <= box[3]
                    if ok:
                        coords[nd.ref] = (lon, lat)
                ids.append(nd.ref)
                present.append(ok)
            if exact and any(present):
                inside = shapely.contains_xy(clip, *np.array(
                    [coords[i] if p else (np.nan, np.nan) for i, p in zip(ids, present,
                                                                          strict=True)]).T)
                present = [bool(v) for v in inside]
            # osmnx drops consecutive duplicate nodes before pairing them into edges
            dedup = [(k, next(g)[1]) for k, g in groupby(zip(ids, present, strict=True),
                                                          key=lambda t: t[0])]
            ids, present = [d[0] for d in dedup], [d[1] for d in dedup]
            if all(present):
                pieces = [ids] if len(ids) >= 2 else []
            else:
                pieces = _pieces(ids, present)
                missing = present.count(False)
                stats.nodes_missing += missing
                if pieces:
                    stats.ways_cut += 1
                    if stats.first_cut_way is None:
                        stats.first_cut_way = int(obj.id)
                else:
                    stats.ways_dropped += 1
            for piece in pieces:
                paths.append({"osmid": int(obj.id), "nodes": piece, **tags})
    except RuntimeError as err:
        kind = "a readable OSM PBF file" if path.name.lower().endswith(".pbf") else "valid OSM XML"
        msg = (f"{str(path)!r} is not {kind} ({err}); check the download (`osmium fileinfo "
               "FILE`) or export it again (e.g. `osmium cat in.osm.pbf -o out.osm.pbf`)")
        raise DataFileError(msg) from err
    stats.timestamp = _header_timestamp(path) or (
        newest.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if newest else "")
    if clip is not None and not coords and stats.highway_ways:
        msg = (f"{str(path)!r}: no node lies inside clip {clip.bounds!r} (west, south, east, "
               "north); check the clip area and that the file covers it")
        raise NetworkError(msg)
    # no usable way at all: an empty graph, which load_network reports with the highways seen
    G = _build(paths, coords, tagged_nodes, bidirectional)
    if stats.ways_cut or stats.ways_dropped:
        logger.info("%s: %d highway ways cut and %d dropped where %d of their nodes are missing "
                    "(clipped extract%s), e.g. way %s", path.name, stats.ways_cut,
                    stats.ways_dropped, stats.nodes_missing,
                    " or outside the clip area" if clip is not None else "",
                    stats.first_cut_way)
    return G, stats


def _header_timestamp(path: Path) -> str:
    """Return the file header's replication timestamp (Geofabrik and planet extracts)."""
    import osmium

    try:
        reader = osmium.io.Reader(str(path), osmium.osm.osm_entity_bits.NOTHING)
        try:
            header = reader.header()
            return str(header.get("osmosis_replication_timestamp", "") or
                       header.get("timestamp", "") or "")
        finally:
            reader.close()
    except RuntimeError:
        return ""


# osmnx 2.1's one-way rules (graph._is_path_one_way / _is_path_reversed, MIT), restated so that
# no private osmnx name is imported; test_real_osm compares the graphs with graph_from_xml's.
_ONEWAY_VALUES = {"yes", "true", "1", "-1", "reverse", "T", "F"}
_REVERSED_VALUES = {"-1", "reverse", "T"}


def _is_one_way(path: Mapping[str, Any], *, bidirectional: bool, all_oneway: bool) -> bool:
    if all_oneway:
        return True
    if bidirectional:  # walking: a one-way street is walked both ways
        return False
    return path.get("oneway") in _ONEWAY_VALUES or path.get("junction") == "roundabout"


def _build(paths: list[dict[str, Any]], coords: Mapping[int, tuple[float, float]],
           tagged_nodes: Mapping[int, dict[str, str]], bidirectional: bool) -> nx.MultiDiGraph:
    """Build the graph as ``osmnx.graph._create_graph`` does, in one bulk insert.

    Same nodes (ascending id: the order of a sorted file, which osmnx keeps), same edges in the
    same order and keys (osmnx ``_add_paths``: forward edges of a path, then its reverse when
    it is not one-way), same ``oneway``/``reversed``/``length`` (osmnx ``great_circle``).
    """
    import networkx as nx
    import osmnx as ox

    all_oneway = bool(ox.settings.all_oneway)
    us: list[int] = []
    vs: list[int] = []
    attrs: list[dict[str, Any]] = []
    for path in paths:
        nodes = path.pop("nodes")
        one_way = _is_one_way(path, bidirectional=bidirectional, all_oneway=all_oneway)
        if one_way and path.get("oneway") in _REVERSED_VALUES:
            nodes.reverse()
        if not all_oneway:
            path["oneway"] = one_way
        pairs = list(pairwise(nodes))
        for u, v in pairs:
            us.append(u)
            vs.append(v)
            attrs.append({**path, "reversed": False})
        if not one_way:
            for u, v in pairs:
                us.append(v)
                vs.append(u)
                attrs.append({**path, "reversed": True})
    xy = np.array([coords[n] for n in us + vs], dtype=float).reshape(-1, 2)
    m = len(us)
    # osmnx's own formula on the same (y, x) pairs
    lengths = ox.distance.great_circle(xy[:m, 1], xy[:m, 0], xy[m:, 1], xy[m:, 0])
    lengths[np.isnan(lengths)] = 0
    for d, length in zip(attrs, lengths.tolist(), strict=True):
        d["length"] = length
    G = nx.MultiDiGraph(created_date=ox.utils.ts(), created_with=f"OSMnx {ox.__version__}",
                        crs=ox.settings.default_crs)
    G.add_nodes_from((n, {"y": coords[n][1], "x": coords[n][0], **tagged_nodes.get(n, {})})
                     for n in sorted(set(us).union(vs)))
    # What MultiDiGraph.add_edges_from does (shared key dict in _succ and _pred, key = next
    # free integer), without its per-edge view lookups: 5x faster at half a million edges.
    # The tests compare the result with osmnx.graph_from_xml, order and keys included.
    succ, pred = G._succ, G._pred
    for u, v, d in zip(us, vs, attrs, strict=True):
        keydict = succ[u].get(v)
        if keydict is None:
            keydict = succ[u][v] = pred[v][u] = G.edge_key_dict_factory()
        key = len(keydict)
        while key in keydict:
            key += 1
        keydict[key] = d
    nx._clear_cache(G)
    return G
