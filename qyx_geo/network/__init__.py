"""Street networks: load (embedded, file or online), walk-filter, project to a local CRS, cache.

One entry point, :func:`load_network`, returns the graph every later stage uses::

    >>> G = load_network("default")          # doctest: +SKIP
    >>> G.graph["crs"]                       # doctest: +SKIP
    'EPSG:4549'

The contract: an ``osmnx``-style :class:`networkx.MultiDiGraph` whose ``graph["crs"]`` is a
projected CRS in metres — by default the local one for the network's centre
(:func:`qyx_geo.crs.local_metric_crs`: the CGCS2000 3-degree Gauss-Krüger zone in China, so
Cixi is EPSG:4549; UTM elsewhere, as ``osmnx.project_graph``), or the caller's ``crs`` — node
attributes ``x``/``y`` in metres, edge attribute ``length`` in metres and, for simplified
edges, a projected ``geometry``. Walking ignores one-way rules, so the walk graph has every edge
in both directions.

OSM files (XML, ``.osm.bz2``, ``.osm.pbf``) are streamed by pyosmium into the graph
``osmnx.graph_from_xml`` would build (``_osm_reader``; same nodes, edges, keys and lengths on a
reference-complete file), keeping only the ways that osmnx's own Overpass filter for the
network type accepts (``network_type="walk"`` drops motorways, cycleways, ``foot=no``, private
roads…). Clipped extracts load: ways are cut where their nodes are missing (pieces of at least
two nodes kept) and the cuts are counted in ``graph["ways_cut"]``. GraphML goes through
``osmnx.load_graphml``. Then the largest connected piece is kept, the topology simplified
(``osmnx.simplify_graph``) and the graph projected. The result is cached in
:func:`qyx_geo._paths.cache_dir` keyed by the file's SHA-256, the options and the package
versions, so a second load takes seconds. :func:`fetch_network` downloads from OpenStreetMap
with osmnx, fails within seconds when offline, and caches what it got.
"""

# ruff: noqa: N803, N806  (G for a graph, as in osmnx and networkx)
from __future__ import annotations

import dataclasses
import gc
import json
import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import numpy as np
import pyproj
from shapely.geometry import box
from shapely.geometry.base import BaseGeometry

from qyx_geo import __version__, _cache
from qyx_geo._errors import DataFileError, NetworkError, OfflineError, QyxGeoError, SettingsError
from qyx_geo._paths import cache_dir, data_dir
from qyx_geo.crs import metric_crs_for, validate_metric_crs
from qyx_geo.network._codec import graph_from_arrays, graph_to_arrays
from qyx_geo.network._graph_ops import clip_graph, keep_largest_component, project_in_place
from qyx_geo.network._osm_files import (
    FORMATS,
    WayFilter,
    detect_format,
    highway_counts,
    osmnx_settings,
    read_graphml,
    xml_generator,
)
from qyx_geo.network._osm_reader import read_osm_graph

if TYPE_CHECKING:  # networkx is imported where a graph is built or read or checked:
    # a warm audit reads cached arrays and never needs it (issue 11)
    import networkx as nx

__all__ = [
    "DEFAULT_NETWORK_PATH",
    "NETWORK_TYPES",
    "SUPPORTED_SUFFIXES",
    "CacheEntry",
    "NetworkType",
    "cache_entries",
    "clear_cache",
    "default_network_path",
    "fetch_network",
    "file_cache_key",
    "load_network",
    "network_summary",
    "validate_network",
]

logger = logging.getLogger(__name__)

NetworkType = Literal["walk", "bike", "drive", "drive_service", "all", "all_public"]
NETWORK_TYPES: tuple[str, ...] = ("walk", "bike", "drive", "drive_service", "all", "all_public")
#: The embedded network, relative to :func:`qyx_geo._paths.data_dir`.
DEFAULT_NETWORK_PATH = Path("network") / "cixi_walk_synthetic.osm.bz2"
#: ``generator`` prefix of files written by :mod:`qyx_geo.synth.network`.
_SYNTH_GENERATOR = "qyx_geo.synth"
_CACHE_SUBDIR = "networks"
#: caches computed from a processed network (audit engine arrays, map roads, surface grid link)
_DERIVED_SUBDIRS = ("engine", "roads", "grid_link")
_HTTP_SUBDIR = "osmnx-http"
# Bump when the processing below changes, so that old cached graphs are not reused.
_PIPELINE = 3


@dataclasses.dataclass(frozen=True)
class CacheEntry:
    """One cached processed network."""

    path: Path
    size_bytes: int
    source: str
    network_type: str
    nodes: int
    edges: int
    created: str


def default_network_path() -> Path:
    """Return the path of the embedded network file (``data/network/…osm.bz2``)."""
    return data_dir() / DEFAULT_NETWORK_PATH


def _check_type(network_type: str) -> str:
    if network_type not in NETWORK_TYPES:
        msg = (f"network_type must be one of {', '.join(NETWORK_TYPES)}; got {network_type!r} "
               "(walking audits use 'walk')")
        raise SettingsError(msg)
    return network_type


def _cache_key(identity: dict[str, Any]) -> str:
    return _cache.cache_key(_CACHE_SUBDIR, identity, version=_PIPELINE)


def _cached(label: str, key: str, build: Callable[[], nx.MultiDiGraph], *,
            use_cache: bool) -> nx.MultiDiGraph:
    """Return the processed graph ``label``/``key`` from the cache, or build and cache it."""
    G = _cache.get_or_build(
        _CACHE_SUBDIR, label, key, build=build, encode=graph_to_arrays,
        decode=_decode, use_cache=use_cache,
        meta=lambda G: {"source": G.graph.get("qyx_source", ""),
                        "network_type": G.graph.get("network_type"),
                        "nodes": len(G), "edges": G.number_of_edges(),
                        "crs": str(G.graph.get("crs"))})
    return G


def _cached_crs(label: str, key: str) -> str | None:
    """Return the CRS recorded in the header of a cached network, if that entry exists."""
    path = _cache.entry_path(_CACHE_SUBDIR, label, key)
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            header = json.loads(_cache.from_text(z["__qyx_cache__"]))
    except Exception:  # a damaged entry: the load rebuilds it
        return None
    crs = (header.get("meta") or {}).get("crs")
    return str(crs) if crs else None


def _decode(arrays: dict[str, Any]) -> nx.MultiDiGraph:
    # with the cyclic GC on, creating half a million attribute dicts is several times slower
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        G = graph_from_arrays(arrays)
    finally:
        if gc_was_enabled:
            gc.enable()
    try:
        validate_metric_crs(G.graph.get("crs"))
    except QyxGeoError as err:
        raise NetworkError(f"cached graph: {err}") from err
    if G.number_of_edges() == 0:
        msg = f"cached graph has {G.number_of_edges()} edges"
        raise NetworkError(msg)
    return G


def load_network(
    source: str | os.PathLike[str] | nx.MultiDiGraph = "default",
    *,
    network_type: NetworkType = "walk",
    cache: bool = True,
    simplify: bool = True,
    retain_all: bool = False,
    clip: BaseGeometry | tuple[float, float, float, float] | None = None,
    crs: str | None = None,
) -> nx.MultiDiGraph:
    """Load a street network, filter it to ``network_type``, project it to a local metric CRS.

    Parameters
    ----------
    source
        ``"default"`` (the embedded synthetic Cixi network), a file path (``.osm``, ``.osm.bz2``,
        ``.osm.gz``, ``.osm.pbf``, ``.graphml``) or an osmnx graph with a ``crs``. For OSM data
        online, use :func:`fetch_network`.
    network_type
        osmnx network type whose way filter is applied (``walk`` for walking audits).
    cache
        Read/write the processed graph from/to the cache (not for in-memory graphs).
    simplify
        Simplify the topology (osmnx ``simplify_graph``) unless the graph already is.
    retain_all
        Keep every connected piece instead of only the largest one.
    clip
        Keep only the network inside this WGS84 polygon or ``(west, south, east, north)``
        bbox, e.g. the county outline when loading a province extract. OSM files are streamed:
        only nodes inside it are kept (ways cut at its edge), so memory follows the area.
    crs
        Projected CRS in metres (``"EPSG:32650"``, ``"EPSG:4549"``…); default: the local one
        for the network's centre (:func:`qyx_geo.crs.metric_crs_for`).

    Returns
    -------
    networkx.MultiDiGraph
        Projected graph; ``graph["crs"]`` its CRS, ``graph["synthetic"]`` whether it is the
        generated network, ``graph["qyx_source"]`` where it came from, and for files
        ``graph["source_sha256"]``, ``graph["osm_timestamp"]`` (newest object),
        ``graph["ways_cut"]``/``graph["ways_dropped"]`` (clipped ways).

    Raises
    ------
    DataFileError
        The file is missing, empty, broken or of an unknown type.
    NetworkError
        The data hold no walkable (``network_type``) edges, or a graph has no CRS.
    """
    import networkx as nx

    _check_type(network_type)
    clip_geom = _clip_geometry(clip)
    try:
        crs = validate_metric_crs(crs) if crs is not None else None
    except QyxGeoError as err:
        raise SettingsError(str(err)) from err
    opts = {"network_type": network_type, "simplify": simplify, "retain_all": retain_all,
            "clip": clip_geom, "crs": crs}
    if isinstance(source, nx.MultiDiGraph):
        return _prepare(source.copy(), label="graph", opts=opts, synthetic=None)
    if isinstance(source, nx.Graph):
        msg = (f"source must be a networkx.MultiDiGraph (osmnx graph); got "
               f"{type(source).__name__}; convert with nx.MultiDiGraph(G) and set G.graph['crs']")
        raise NetworkError(msg)
    path = default_network_path() if str(source) == "default" else Path(source)
    if not path.exists():
        fix = ("the embedded network is missing: rebuild it with `python -m qyx_geo.synth`"
               if str(source) == "default" else "check the path")
        msg = f"network file {str(path)!r} not found; {fix}"
        raise DataFileError(msg)
    if not path.is_file() or path.stat().st_size == 0:
        msg = f"network file {str(path)!r} is empty or not a file; export the network again"
        raise DataFileError(msg)
    fmt = detect_format(path)

    def build() -> nx.MultiDiGraph:
        t0 = time.perf_counter()
        G = _read_file(path, fmt, network_type, clip_geom)
        # OSM files: the reader cut the ways at the clip area already
        G = _prepare(G, label=str(path), opts={**opts, "clip": None} if fmt != "graphml" else opts,
                     synthetic=xml_generator(path).startswith(_SYNTH_GENERATOR) or None)
        logger.info("network %s processed in %.1f s: %d nodes, %d edges", path,
                    time.perf_counter() - t0, len(G), G.number_of_edges())
        return G

    sha256 = _cache.file_sha256(path)
    G = _cached(path.name, file_cache_key(path, network_type=network_type, simplify=simplify,
                                          retain_all=retain_all, clip=clip_geom, crs=crs,
                                          sha256=sha256),
                build, use_cache=cache)
    G.graph["qyx_source"] = str(path)  # the same content may have been cached from elsewhere
    G.graph["source_sha256"] = sha256
    return G


def file_cache_key(path: str | os.PathLike[str], *, network_type: str = "walk",
                   simplify: bool = True, retain_all: bool = False,
                   clip: BaseGeometry | None = None, crs: str | None = None,
                   sha256: str | None = None) -> str:
    """Return the cache key of the processed network of a file with these options.

    The key hashes the file's *content* (SHA-256, or ``sha256`` when already known), the
    options (the requested ``crs`` included: ``None`` means the local one, which follows from
    the content), the processing pipeline's version and the package versions
    (:func:`qyx_geo._cache.cache_key`). Caches derived from a network (engine arrays, main
    roads) build their keys from this one, so one change of the file or of any version
    invalidates them all.
    """
    base = {"sha256": sha256 or _cache.file_sha256(path), "network_type": network_type,
            "simplify": simplify, "retain_all": retain_all,
            "clip": clip.wkt if clip is not None else None}
    local = _cache_key({**base, "crs": None})
    if crs is None or _cached_crs(Path(path).name, local) == crs:
        # asking for the CRS the network gets anyway (a region pack naming its local zone)
        # shares the entry, and everything derived from it, instead of building it twice
        return local
    return _cache_key({**base, "crs": crs})


def _bbox_polygon(bbox: tuple[float, ...] | list[float], *, name: str) -> BaseGeometry:
    """Return the WGS84 box of ``(west, south, east, north)``, validated."""
    if len(bbox) != 4:
        msg = f"{name} must be a polygon or (west, south, east, north) in degrees; got {bbox!r}"
        raise SettingsError(msg)
    try:
        w, s, e, n = (float(c) for c in bbox)
    except (TypeError, ValueError):
        msg = f"{name} (west, south, east, north) must be numbers; got {bbox!r}"
        raise SettingsError(msg) from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        msg = (f"{name} must be (west, south, east, north) in degrees with west < east and "
               f"south < north; got {bbox!r}")
        raise SettingsError(msg)
    return box(w, s, e, n)


def _clip_geometry(clip: BaseGeometry | tuple[float, float, float, float] | None
                   ) -> BaseGeometry | None:
    if clip is None:
        return None
    if isinstance(clip, tuple | list):
        return _bbox_polygon(clip, name="clip")
    if (not isinstance(clip, BaseGeometry) or clip.is_empty
            or clip.geom_type not in ("Polygon", "MultiPolygon")):
        msg = f"clip must be a WGS84 (Multi)Polygon or a bbox tuple; got {clip!r}"
        raise SettingsError(msg)
    return clip


def _read_file(path: Path, fmt: str, network_type: str,
               clip: BaseGeometry | None = None) -> nx.MultiDiGraph:
    """Read a file into a raw WGS84 graph; OSM files arrive filtered and clipped already."""
    if fmt == "graphml":
        return read_graphml(path)
    import osmnx as ox  # imported where used: cached networks never need it (issue 11)

    wf = WayFilter(network_type)
    tags = list(dict.fromkeys([*ox.settings.useful_tags_way, *wf.keys, "source"]))
    G, stats = read_osm_graph(
        path, bidirectional=network_type in ox.settings.bidirectional_network_types,
        way_tags=tags, accepts=wf.accepts, clip=clip)
    G.graph.update({"qyx_prefiltered": True, "osm_timestamp": stats.timestamp,
                    "ways_cut": stats.ways_cut, "ways_dropped": stats.ways_dropped,
                    "nodes_missing": stats.nodes_missing, "ways_filtered": stats.ways_filtered,
                    "qyx_highways": dict(stats.highways)})
    if clip is not None:
        logger.info("%s: %d ways cut and %d left out at the clip area's edge (or at nodes "
                    "missing from the file), e.g. way %s", path.name, stats.ways_cut,
                    stats.ways_dropped, stats.first_cut_way)
    elif stats.ways_cut or stats.ways_dropped:
        logger.warning(
            "%s: %d ways cut and %d dropped at missing nodes (%d node references not in the "
            "file; e.g. way %s) — normal for an extract clipped at a boundary", path.name,
            stats.ways_cut, stats.ways_dropped, stats.nodes_missing, stats.first_cut_way)
    return G


def _prepare(G: nx.MultiDiGraph, *, label: str, opts: dict[str, Any],
             synthetic: bool | None) -> nx.MultiDiGraph:
    """Filter, prune, simplify and project a raw graph; mutates and returns ``G``."""
    import osmnx as ox

    crs = G.graph.get("crs")
    if not crs:
        msg = (f"{label}: the graph has no 'crs' attribute, so its coordinates cannot be "
               "interpreted; set G.graph['crs'] (osmnx graphs use 'epsg:4326') or reload it "
               "with osmnx")
        raise NetworkError(msg)
    try:
        pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as err:
        msg = f"{label}: graph['crs'] = {crs!r} is not a valid CRS; use e.g. 'epsg:4326'"
        raise NetworkError(msg) from err
    network_type = opts["network_type"]
    if opts.get("clip") is not None:
        G = clip_graph(G, opts["clip"], label=label)
    wf = WayFilter(network_type)
    if G.graph.pop("qyx_prefiltered", False):  # OSM reader: filtered per way while reading
        seen, drop = Counter(G.graph.pop("qyx_highways", {})), []
    else:
        seen = highway_counts(G)
        drop = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True) if not wf.accepts(d)]
    marked = {d.get("source") for _, _, d in G.edges(data=True)} if synthetic is None else set()
    G.remove_edges_from(drop)
    G.remove_nodes_from([n for n, deg in G.degree() if deg == 0])
    if G.number_of_edges() == 0:
        shown = ", ".join(f"{k}={n}" for k, n in seen.most_common(8)) or "none"
        msg = (f"{label}: no {network_type} edges after osmnx's {network_type!r} filter "
               f"(highway values found: {shown}); use a file that covers streets, or "
               "network_type='all' to keep every highway")
        raise NetworkError(msg)
    extra = set(wf.keys) | {"source"}
    keep_tags = set(ox.settings.useful_tags_way) | {"osmid", "length", "geometry", "reversed",
                                                     "oneway"}
    for _, _, d in G.edges(data=True):
        for k in extra - keep_tags:
            d.pop(k, None)
    if not opts["retain_all"]:
        keep_largest_component(G)
    if opts["simplify"] and not G.graph.get("simplified", False):
        G = ox.simplify_graph(G)
    project_in_place(G, opts.get("crs") or metric_crs_for(_wgs84_bounds(G)))
    # Plain floats and one shared object per distinct tag value: numpy scalars and repeated
    # strings from the XML parser make the graph (and its cache file) half again as large.
    shared: dict[str, str] = {}
    for _, _, d in G.edges(data=True):
        d["length"] = float(d["length"])
        for k, v in d.items():
            if isinstance(v, str):
                d[k] = shared.setdefault(v, v)
    if synthetic is None:
        synthetic = bool(G.graph.get("synthetic", False)) or "synthetic" in marked
    G.graph.update({"qyx_source": label, "network_type": network_type,
                    "synthetic": bool(synthetic), "qyx_geo_version": __version__,
                    "dropped_edges": len(drop)})
    validate_network(G, name=label)
    return G


def _wgs84_bounds(G: nx.MultiDiGraph) -> tuple[float, float, float, float]:
    """Return the WGS84 (west, south, east, north) of the graph's nodes."""
    xs = [d["x"] for _, d in G.nodes(data=True)]
    ys = [d["y"] for _, d in G.nodes(data=True)]
    src = pyproj.CRS.from_user_input(G.graph["crs"])
    if src.is_geographic:
        return min(xs), min(ys), max(xs), max(ys)
    to_wgs = pyproj.Transformer.from_crs(src, "EPSG:4326", always_xy=True)
    return to_wgs.transform_bounds(min(xs), min(ys), max(xs), max(ys))


def validate_network(G: nx.MultiDiGraph, *, name: str = "network") -> None:
    """Check the contract of a loaded network; raise :class:`NetworkError` if broken.

    The contract: a MultiDiGraph whose ``graph["crs"]`` is a projected CRS in metres, at least
    one edge, numeric node ``x``/``y`` and non-negative edge ``length`` (metres).
    """
    import networkx as nx

    if not isinstance(G, nx.MultiDiGraph):
        msg = f"{name}: expected a networkx.MultiDiGraph, got {type(G).__name__}"
        raise NetworkError(msg)
    try:
        validate_metric_crs(G.graph.get("crs"), name="graph['crs']")
    except QyxGeoError as err:
        msg = (f"{name}: {err}; expected a projected CRS in metres — load it with "
               "qyx_geo.network.load_network, which projects to the local one")
        raise NetworkError(msg) from err
    if G.number_of_edges() == 0:
        msg = f"{name}: the network has no edges; load a network that covers streets"
        raise NetworkError(msg)
    for n, d in G.nodes(data=True):
        if not isinstance(d.get("x"), int | float) or not isinstance(d.get("y"), int | float):
            msg = f"{name}: node {n!r} lacks numeric x/y (got {d.get('x')!r}, {d.get('y')!r})"
            raise NetworkError(msg)
    for u, v, k, length in G.edges(keys=True, data="length"):
        if not isinstance(length, int | float) or length < 0:
            msg = (f"{name}: edge {(u, v, k)!r} has length {length!r}; expected metres >= 0 "
                   "(osmnx.distance.add_edge_lengths adds them)")
            raise NetworkError(msg)


def network_summary(G: nx.MultiDiGraph) -> dict[str, Any]:
    """Return nodes, edges, street length (km, each street once), synthetic flag and CRS.

    ``street_length_km`` counts a two-way street once (the walk graph holds both directions).
    """
    seen: set[tuple[Any, Any, float]] = set()
    total_m = 0.0
    for u, v, length in G.edges(data="length"):
        key = (min(u, v), max(u, v), round(float(length), 1))
        if key not in seen:
            seen.add(key)
            total_m += float(length)
    return {
        "nodes": G.number_of_nodes(), "edges": G.number_of_edges(),
        "street_length_km": round(total_m / 1000.0, 1),
        "synthetic": bool(G.graph.get("synthetic", False)), "crs": G.graph.get("crs"),
        "network_type": G.graph.get("network_type"), "source": G.graph.get("qyx_source"),
        "sha256": G.graph.get("source_sha256"), "osm_timestamp": G.graph.get("osm_timestamp"),
        "ways_cut": G.graph.get("ways_cut", 0), "ways_dropped": G.graph.get("ways_dropped", 0),
    }


# ----------------------------------------------------------------------------- online

def _reachable(host: str, port: int, timeout_s: float) -> bool:
    """Return whether a TCP connection to ``host:port`` opens within ``timeout_s``.

    The attempt runs in a daemon thread so that a hanging DNS lookup (which ignores socket
    timeouts) cannot hold the caller beyond ``timeout_s``.
    """
    outcome: list[bool] = []

    def attempt() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                outcome.append(True)
        except OSError:
            outcome.append(False)

    worker = threading.Thread(target=attempt, name=f"qyx-probe-{host}", daemon=True)
    worker.start()
    worker.join(timeout_s)
    return bool(outcome) and outcome[0]


def _probe_online(urls: Sequence[str], timeout_s: float) -> None:
    """Raise :class:`OfflineError` fast if any of the services at ``urls`` is unreachable."""
    for url in urls:
        parts = urlparse(url)
        host = parts.hostname or url
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not _reachable(host, port, timeout_s):
            msg = (f"无法连接 {host}:{port}（{timeout_s:g} 秒内无响应）/ cannot reach "
                   f"{host}:{port} within {timeout_s:g} s — no internet? Load a file instead: "
                   "load_network('extract.osm.pbf') or `qyx network load FILE` (.osm, "
                   ".osm.bz2, .osm.pbf, .graphml); the embedded network: load_network('default')")
            raise OfflineError(msg)


def fetch_network(
    query: str | BaseGeometry | tuple[float, float, float, float],
    *,
    network_type: NetworkType = "walk",
    cache: bool = True,
    simplify: bool = True,
    retain_all: bool = False,
    crs: str | None = None,
    probe_timeout_s: float = 3.0,
    requests_timeout_s: float = 180.0,
) -> nx.MultiDiGraph:
    """Download a network from OpenStreetMap with osmnx; project it and cache it.

    Parameters
    ----------
    query
        A place name (geocoded by Nominatim, e.g. ``"宁波市, 浙江省, 中国"``), a WGS84 polygon,
        or a bounding box ``(west, south, east, north)`` in degrees.
    network_type, simplify, retain_all
        Passed to osmnx (``graph_from_place`` / ``graph_from_polygon``).
    crs
        Projected CRS in metres; default: the local one (as :func:`load_network`).
    cache
        Reuse a processed graph of the same query; osmnx's HTTP cache is kept under
        :func:`qyx_geo._paths.cache_dir` as well.
    probe_timeout_s
        How long the reachability check may take before :class:`OfflineError` is raised.
    requests_timeout_s
        osmnx's timeout for each HTTP request once online.

    Raises
    ------
    OfflineError
        The OSM services cannot be reached (raised within about ``probe_timeout_s``).
    NetworkError
        OSM holds no ``network_type`` streets in the area.
    """
    _check_type(network_type)
    if isinstance(query, tuple | list):
        query = _bbox_polygon(query, name="bbox")
    if isinstance(query, BaseGeometry):
        if query.geom_type not in ("Polygon", "MultiPolygon") or query.is_empty:
            msg = f"query geometry must be a WGS84 (Multi)Polygon; got {query.geom_type!r}"
            raise SettingsError(msg)
        identity, label = {"polygon": query.wkt}, "polygon"
    elif isinstance(query, str) and query.strip():
        identity, label = {"place": query.strip()}, query.strip()
    else:
        msg = f"query must be a place name, a polygon or a bbox; got {query!r}"
        raise SettingsError(msg)
    try:
        crs = validate_metric_crs(crs) if crs is not None else None
    except QyxGeoError as err:
        raise SettingsError(str(err)) from err
    opts = {"network_type": network_type, "simplify": simplify, "retain_all": retain_all,
            "crs": crs}
    return _cached("online-" + label, _cache_key({**identity, **opts}),
                   lambda: _download(query, label, identity, opts, probe_timeout_s,
                                     requests_timeout_s), use_cache=cache)


def _download(query: str | BaseGeometry, label: str, identity: dict[str, Any],
              opts: dict[str, Any], probe_timeout_s: float,
              requests_timeout_s: float) -> nx.MultiDiGraph:
    import osmnx as ox

    network_type, simplify, retain_all = opts["network_type"], opts["simplify"], opts["retain_all"]
    urls = [ox.settings.overpass_url] + ([ox.settings.nominatim_url] if "place" in identity
                                         else [])
    _probe_online(urls, probe_timeout_s)
    import requests  # osmnx's own HTTP dependency

    http_cache = cache_dir() / _HTTP_SUBDIR
    try:
        with osmnx_settings(use_cache=True, cache_folder=http_cache, overpass_rate_limit=False,
                            requests_timeout=requests_timeout_s, log_console=False):
            if "place" in identity:
                G = ox.graph_from_place(label, network_type=network_type, simplify=simplify,
                                        retain_all=retain_all)
            else:
                G = ox.graph_from_polygon(
                    query, network_type=network_type,
                    simplify=simplify, retain_all=retain_all)
    except requests.exceptions.ConnectionError as err:
        msg = (f"lost the connection while downloading {label!r} ({err}); retry, or load a file "
               "with load_network(PATH)")
        raise OfflineError(msg) from err
    except ox._errors.InsufficientResponseError as err:
        msg = f"OpenStreetMap returned no {network_type} streets for {label!r}; widen the area"
        raise NetworkError(msg) from err
    return _prepare(G, label=f"osm:{label}", opts=opts, synthetic=False)


# ----------------------------------------------------------------------------- cache

def cache_entries() -> list[CacheEntry]:
    """Return the processed networks in the cache, newest first."""
    return [CacheEntry(path=e.path, size_bytes=e.size_bytes,
                       source=str(e.meta.get("source", "?")),
                       network_type=str(e.meta.get("network_type", "?")),
                       nodes=int(e.meta.get("nodes", -1)), edges=int(e.meta.get("edges", -1)),
                       created=e.created)
            for e in _cache.entries(_CACHE_SUBDIR)]


def clear_cache(*, downloads: bool = True) -> int:
    """Delete the cached processed networks (and osmnx's HTTP cache); return files removed.

    Derived caches (engine arrays, main roads) are keyed by the network's content, so they are
    never served for another network; ``qyx network cache --clear`` removes them too.
    """
    kinds = (_CACHE_SUBDIR, *_DERIVED_SUBDIRS, _HTTP_SUBDIR) if downloads else (
        _CACHE_SUBDIR, *_DERIVED_SUBDIRS)
    return sum(_cache.clear(kind) for kind in kinds)


#: Supported file endings, for messages and the CLI.
SUPPORTED_SUFFIXES: tuple[str, ...] = tuple(sorted(FORMATS))
