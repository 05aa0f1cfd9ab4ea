"""Deterministic synthetic walking network of a county, written as compressed OSM XML.

No real street network of Cixi is available offline, so the embedded one is generated — and
labelled synthetic everywhere (``<note>``, the ``generator`` attribute and ``source=synthetic``
on every way). It is built to behave like a real extract where an accessibility audit is
sensitive to it:

* dense street grids in the town cores around the township seats (街道 denser and larger than
  镇, coarse private-road grids in the development zones);
* a village cluster of lanes and alleys around every village centre outside the town cores;
* a mesh of rural lanes and field tracks over the rest of the county, stitched to the grids and
  villages, so that every residential cluster is near a street;
* arterials (``X Y公路``) between neighbouring seats, crossing every street they meet;
* barriers — east–west 塘/河 canals, north–south 浦 rivers, two motorways and a fenced trunk
  road (``foot=no``) — that streets cross only at bridges (``bridge=yes``) or underpasses
  (``tunnel=yes``), so network distance exceeds straight-line distance as it does in reality;
* non-walkable ways (motorways and their links, cycle tracks, private factory roads) so that
  walk filtering matters.

All geometry is built in metres (EPSG:4549) with numpy and converted to WGS84 at the end. The
same inputs and seed give a byte-identical file.
"""

from __future__ import annotations

import bz2
import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import Delaunay, cKDTree
from shapely.geometry.base import BaseGeometry

from qyx_geo import __version__
from qyx_geo._errors import DataFileError
from qyx_geo._io import atomic_write_bytes
from qyx_geo._paths import data_dir
from qyx_geo.schema import METRIC_CRS, WGS84
from qyx_geo.synth import DEFAULT_SEED, rng_for
from qyx_geo.synth._network_geom import (
    BRIDGE,
    FOOT_NO,
    HIGHWAY,
    PRIVATE,
    EdgeTable,
    crossings,
    osm_xml,
    split_edges,
)
from qyx_geo.synth._network_layers import (
    lattice_layers,
    place_barriers,
    stitch,
)

__all__ = [
    "CIXI_BARRIERS",
    "DEFAULT_NETWORK_FILE",
    "GENERATOR",
    "Barrier",
    "NetworkBuild",
    "NetworkParams",
    "build_default_network",
    "build_network_xml",
]

logger = logging.getLogger(__name__)

#: File name of the embedded network under ``data/network/``.
DEFAULT_NETWORK_FILE = "cixi_walk_synthetic.osm.bz2"
#: ``generator`` attribute of the ``<osm>`` root; loaders recognise synthetic files by it.
GENERATOR = "qyx_geo.synth.network"

_H = {name: code for code, name in enumerate(HIGHWAY)}
#: Classes a pedestrian may not use (besides ``foot=no`` and ``access=private``).
_NOT_WALKABLE = np.array([_H[h] for h in ("cycleway", "motorway", "motorway_link", "trunk",
                                          "trunk_link")])


@dataclasses.dataclass(frozen=True)
class Barrier:
    """A linear barrier: a canal/river or a fenced road, crossed only at bridges or underpasses.

    ``points`` are fractions of the outline's bounding box (0 = west/south, 1 = east/north), so
    the same layout applies to any outline; the line is clipped to the outline.
    """

    name: str
    kind: Literal["canal", "river", "motorway", "trunk"]
    points: tuple[tuple[float, float], ...]
    ref: str = ""


#: Cixi's main barriers, placed roughly where their real counterparts run. Synthetic.
CIXI_BARRIERS: tuple[Barrier, ...] = (
    Barrier("东横河", "canal", ((0.05, 0.20), (0.35, 0.23), (0.65, 0.21), (0.97, 0.22))),
    Barrier("潮塘江", "canal", ((0.02, 0.37), (0.30, 0.40), (0.60, 0.41), (0.98, 0.38))),
    Barrier("十塘江", "canal", ((0.05, 0.60), (0.40, 0.63), (0.75, 0.60), (0.95, 0.56))),
    Barrier("四灶浦", "river", ((0.31, 0.24), (0.30, 0.55), (0.32, 0.97))),
    Barrier("半掘浦", "river", ((0.50, 0.26), (0.51, 0.55), (0.49, 0.85))),
    Barrier("水云浦", "river", ((0.66, 0.23), (0.67, 0.50), (0.65, 0.75))),
    Barrier("杭州湾环线高速", "motorway", ((0.0, 0.50), (0.45, 0.52), (1.0, 0.47)), "G92"),
    Barrier("沈海高速", "motorway", ((0.22, 1.0), (0.24, 0.55), (0.28, 0.0)), "G15"),
    Barrier("329国道", "trunk", ((0.0, 0.255), (0.50, 0.262), (1.0, 0.24)), "G329"),
)


@dataclasses.dataclass(frozen=True)
class NetworkParams:
    """Sizes of the generated network (metres). Defaults give ~130k intersections for Cixi."""

    urban_radius_m: float = 3500.0
    urban_spacing_m: float = 58.0
    town_radius_m: float = 2000.0
    town_spacing_m: float = 72.0
    zone_radius_m: float = 2000.0
    zone_spacing_m: float = 170.0
    village_radius_m: tuple[float, float] = (250.0, 400.0)
    village_spacing_m: float = 38.0
    rural_spacing_m: float = 190.0
    arterial_max_m: float = 16000.0
    #: Minimum distance between crossings of one barrier by local streets (town, rural).
    canal_crossing_m: tuple[float, float] = (260.0, 750.0)
    road_crossing_m: tuple[float, float] = (500.0, 1500.0)
    bridge_half_m: float = 12.0


@dataclasses.dataclass(frozen=True)
class NetworkBuild:
    """What :func:`build_default_network` wrote."""

    path: Path
    n_nodes: int
    n_ways: int
    n_bridges: int
    size_bytes: int
    sha256: str


def _metric(geom: BaseGeometry) -> BaseGeometry:
    t = pyproj.Transformer.from_crs(WGS84, METRIC_CRS, always_xy=True)
    return shapely.transform(geom, lambda xy: np.column_stack(t.transform(xy[:, 0], xy[:, 1])))


def _outline_geometry(outline: BaseGeometry | gpd.GeoDataFrame | gpd.GeoSeries) -> BaseGeometry:
    if isinstance(outline, gpd.GeoDataFrame | gpd.GeoSeries):
        outline = shapely.union_all(outline.to_crs(WGS84).geometry.to_numpy())
    if not isinstance(outline, BaseGeometry) or outline.is_empty or outline.area <= 0:
        msg = (f"outline must be a non-empty WGS84 polygon or GeoDataFrame, got {outline!r}; "
               "pass qyx_geo.units.load_outline()")
        raise DataFileError(msg)
    return outline


def _points(df: pd.DataFrame, what: str, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
    for lon, lat in pairs:
        if lon in df.columns and lat in df.columns:
            lonlat = df[[lon, lat]].to_numpy(float)
            break
    else:
        msg = (f"{what} needs coordinate columns {' or '.join(f'{a}/{b}' for a, b in pairs)}; "
               f"got {list(df.columns)!r}")
        raise DataFileError(msg)
    if not np.isfinite(lonlat).all():
        bad = df.index[~np.isfinite(lonlat).all(axis=1)].tolist()[:5]
        msg = f"{what}: missing or non-numeric coordinates in rows {bad!r}; fill them in"
        raise DataFileError(msg)
    t = pyproj.Transformer.from_crs(WGS84, METRIC_CRS, always_xy=True)
    return np.column_stack(t.transform(lonlat[:, 0], lonlat[:, 1]))


def _seat_kinds(seats: pd.DataFrame) -> np.ndarray:
    """Return 0 (urban 街道), 1 (town 镇/乡) or 2 (development zone) per seat."""
    kind = seats["kind"].astype(str) if "kind" in seats.columns else seats["name"].astype(str)
    return np.where(kind.str.contains("街道"), 0,
                    np.where(kind.str.contains("镇|乡"), 1, 2)).astype(np.int8)


def _short(name: str) -> str:
    for suffix in ("街道", "镇", "乡", "居委会", "村委会", "社区", "村"):
        if name.endswith(suffix) and len(name) > len(suffix) + 1:
            return name[: -len(suffix)]
    return name


def build_network_xml(
    outline: BaseGeometry | gpd.GeoDataFrame | gpd.GeoSeries,
    seats: pd.DataFrame,
    village_centres: pd.DataFrame,
    *,
    seed: int = DEFAULT_SEED,
    barriers: Sequence[Barrier] = CIXI_BARRIERS,
    params: NetworkParams | None = None,
) -> tuple[str, dict[str, int]]:
    """Generate the network and return it as OSM XML text with a few counts.

    Parameters are those of :func:`build_default_network` (which writes the text compressed).
    """
    p = params or NetworkParams()
    region = _outline_geometry(outline)
    region_m = _metric(region)
    shapely.prepare(region_m)
    if "name" not in seats.columns or "name" not in village_centres.columns:
        msg = "seats and village_centres need a 'name' column (township / village names)"
        raise DataFileError(msg)
    seat_xy = _points(seats, "seats", (("seat_lon", "seat_lat"), ("lon", "lat")))
    vil_xy = _points(village_centres, "village_centres",
                     (("centre_lon", "centre_lat"), ("lon", "lat")))
    seat_kind = _seat_kinds(seats)
    seat_names = [_short(str(n)) for n in seats["name"]]
    vil_names = [_short(str(n)) for n in village_centres["name"]]

    xy, edges, names, groups, radii = lattice_layers(
        region_m, seat_xy, seat_kind, seat_names, vil_xy, vil_names, p, seed)
    edges, n_links = stitch(xy, edges, groups, len(seat_xy), p)
    xy, edges = _add_arterials(xy, edges, names, seat_xy, seat_kind, seat_names, region_m, p,
                               seed)
    town_r = np.array([radii[k] for k in seat_kind])
    xy, edges, other_ways, n_bridges = place_barriers(
        xy, edges, names, barriers, region_m, seat_xy, town_r, p, seed)
    edges = _repair_connectivity(xy, edges)

    t = pyproj.Transformer.from_crs(METRIC_CRS, WGS84, always_xy=True)
    lonlat = np.column_stack(t.transform(xy[:, 0], xy[:, 1]))
    note = ("SYNTHETIC street network of a county generated by qyx_geo "
            f"{__version__} (seed {seed}); not OpenStreetMap data, not a survey. "
            "合成路网（程序生成，非真实道路数据）。")
    text = osm_xml(lonlat, edges, names, other_ways=other_ways,
                   generator=f"{GENERATOR} {__version__}", note=note,
                   extra_way_tags=(("source", "synthetic"),))
    counts = {"nodes": text.count("<node "), "ways": text.count("<way "),
              "bridges": n_bridges, "stitch_links": n_links}
    return text, counts


def build_default_network(
    outline: BaseGeometry | gpd.GeoDataFrame | gpd.GeoSeries,
    seats: pd.DataFrame,
    village_centres: pd.DataFrame,
    *,
    seed: int = DEFAULT_SEED,
    out_path: str | os.PathLike[str] | None = None,
    barriers: Sequence[Barrier] = CIXI_BARRIERS,
    params: NetworkParams | None = None,
) -> NetworkBuild:
    """Generate the synthetic walking network and write it as bz2-compressed OSM XML.

    Parameters
    ----------
    outline
        County outline, WGS84 (a shapely geometry, or the GeoDataFrame of
        :func:`qyx_geo.units.load_outline`).
    seats
        One row per township: ``name``, ``kind`` (街道/镇/开发区) and the seat's
        ``seat_lon``/``seat_lat`` (or ``lon``/``lat``), e.g. :func:`qyx_geo.units.load_townships`.
    village_centres
        One row per village/community: ``name`` and ``centre_lon``/``centre_lat`` (or
        ``lon``/``lat``), e.g. :func:`qyx_geo.units.load_units`.
    seed
        Random seed; same inputs and seed give a byte-identical file.
    out_path
        Where to write; default ``data/network/cixi_walk_synthetic.osm.bz2``.
    barriers
        Canals, rivers and fenced roads (default: Cixi's, :data:`CIXI_BARRIERS`).
    params
        Grid sizes and crossing spacings (default :class:`NetworkParams`).

    Returns
    -------
    NetworkBuild
        Path, node/way/bridge counts, compressed size and SHA-256 of the file written.
    """
    text, counts = build_network_xml(outline, seats, village_centres, seed=seed,
                                     barriers=barriers, params=params)
    data = bz2.compress(text.encode("utf-8"), compresslevel=9)
    path = Path(out_path) if out_path is not None else (
        data_dir() / "network" / DEFAULT_NETWORK_FILE)
    atomic_write_bytes(path, data)
    logger.info("wrote %s: %d nodes, %d ways, %.1f MB", path, counts["nodes"], counts["ways"],
                len(data) / 1e6)
    return NetworkBuild(path=path, n_nodes=counts["nodes"], n_ways=counts["ways"],
                        n_bridges=counts["bridges"], size_bytes=len(data),
                        sha256=hashlib.sha256(data).hexdigest())


def _add_arterials(xy: np.ndarray, edges: EdgeTable, names: list[str], seat_xy: np.ndarray,
                   seat_kind: np.ndarray, seat_names: list[str], region_m: BaseGeometry,
                   p: NetworkParams, seed: int) -> tuple[np.ndarray, EdgeTable]:
    """Add gently curved arterials between neighbouring seats, crossing every street they meet."""
    rng = rng_for(seed, "network", "arterials")
    if len(seat_xy) < 2:
        return xy, edges
    if len(seat_xy) == 2:
        pairs = np.array([[0, 1]])
    else:
        tri = Delaunay(seat_xy)
        s = tri.simplices
        pairs = np.unique(np.sort(np.vstack([s[:, [0, 1]], s[:, [1, 2]], s[:, [0, 2]]]), axis=1),
                          axis=0)
        # Gabriel graph: drop a pair if another seat lies in the circle on it as diameter, so
        # long edges of skinny triangles do not become arterials through a third town
        mid = (seat_xy[pairs[:, 0]] + seat_xy[pairs[:, 1]]) / 2
        rad = np.hypot(*(seat_xy[pairs[:, 0]] - seat_xy[pairs[:, 1]]).T) / 2
        d_mid = np.hypot(*(mid[:, None, :] - seat_xy[None, :, :]).transpose(2, 0, 1))
        d_mid[np.arange(len(pairs)), pairs[:, 0]] = np.inf
        d_mid[np.arange(len(pairs)), pairs[:, 1]] = np.inf
        pairs = pairs[(d_mid >= rad[:, None] * 0.999).all(axis=1)]
    alive = np.zeros(len(xy), bool)
    alive[edges.u] = alive[edges.v] = True
    live = np.flatnonzero(alive)
    tree = cKDTree(xy[live])
    _, near = tree.query(seat_xy)
    seat_node = live[near]
    line0 = int(edges.line.max()) + 1 if len(edges) else 0
    new_xy, tables = [], []
    nxt = len(xy)
    for k, (a, b) in enumerate(pairs.tolist()):
        pa, pb = xy[seat_node[a]], xy[seat_node[b]]
        length = float(np.hypot(*(pb - pa)))
        n_seg = max(2, int(np.ceil(length / 150.0)))
        amp = rng.uniform(-0.04, 0.04) * length
        if length > p.arterial_max_m or length < 1.0:
            continue
        t = np.linspace(0.0, 1.0, n_seg + 1)
        normal = np.array([-(pb - pa)[1], (pb - pa)[0]]) / length
        pts = pa + np.outer(t, pb - pa) + np.outer(amp * np.sin(np.pi * t), normal)
        inside = shapely.contains_xy(region_m, pts[1:-1, 0], pts[1:-1, 1])
        if inside.mean() < 0.97:
            continue
        ids = np.r_[seat_node[a], nxt + np.arange(n_seg - 1), seat_node[b]]
        nxt += n_seg - 1
        new_xy.append(pts[1:-1])
        hw = _H["primary"] if min(seat_kind[a], seat_kind[b]) == 0 else _H["secondary"]
        names.append(f"{seat_names[a][0]}{seat_names[b][0]}公路")
        tables.append(EdgeTable.build(ids[:-1], ids[1:], line0 + k, np.arange(n_seg), hw=hw,
                                      name=len(names) - 1))
    if not tables:
        return xy, edges
    xy = np.vstack([xy, *new_xy])
    art = EdgeTable.empty().concat(*tables)
    # arterials cross streets at grade: split both at every crossing, then arterial × arterial
    ia, ib, ta, tb = crossings(art.segments(xy), edges.segments(xy))
    nodes = len(xy) + np.arange(len(ia))
    xy = np.vstack([xy, xy[art.u[ia]] + ta[:, None] * (xy[art.v[ia]] - xy[art.u[ia]])])
    art = split_edges(art, ia, ta, nodes)
    edges = split_edges(edges, ib, tb, nodes)
    seg = art.segments(xy)
    ia, ib, ta, tb = crossings(seg, seg, same=True)
    keep = art.line[ia] != art.line[ib]
    ia, ib, ta, tb = ia[keep], ib[keep], ta[keep], tb[keep]
    # one crossing per arterial edge pair is enough; drop repeats on one edge to keep splits valid
    _, first = np.unique(ia, return_index=True)
    ia, ib, ta, tb = ia[first], ib[first], ta[first], tb[first]
    _, first = np.unique(ib, return_index=True)
    ia, ib, ta, tb = ia[first], ib[first], ta[first], tb[first]
    nodes = len(xy) + np.arange(len(ia))
    xy = np.vstack([xy, xy[art.u[ia]] + ta[:, None] * (xy[art.v[ia]] - xy[art.u[ia]])])
    art = split_edges(art, np.r_[ia, ib], np.r_[ta, tb], np.r_[nodes, nodes])
    return xy, edges.concat(art)


def walkable_mask(edges: EdgeTable) -> np.ndarray:
    """Return which edges a pedestrian may use (the generator's view of osmnx's walk filter)."""
    return (~np.isin(edges.hw, _NOT_WALKABLE)) & ((edges.flags & (FOOT_NO | PRIVATE)) == 0)


def _walk_components(n: int, edges: EdgeTable) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the walkable-edge mask, each node's component and which nodes walkable edges use."""
    walk = walkable_mask(edges)
    graph = coo_matrix((np.ones(walk.sum()), (edges.u[walk], edges.v[walk])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    used = np.zeros(n, bool)
    used[edges.u[walk]] = used[edges.v[walk]] = True
    return walk, comp, used


def _repair_connectivity(xy: np.ndarray, edges: EdgeTable) -> EdgeTable:
    """Join walkable pieces cut off by barriers or stitching to the main piece, drop tiny ones."""
    for _ in range(30):
        _, comp, used = _walk_components(len(xy), edges)
        sizes = np.bincount(comp[used], minlength=comp.max() + 1)
        main = int(np.argmax(sizes))
        others = np.flatnonzero((sizes > 0) & (np.arange(len(sizes)) != main))
        if len(others) == 0:
            break
        main_nodes = np.flatnonzero(used & (comp == main))
        tree = cKDTree(xy[main_nodes])
        links_u, links_v = [], []
        for c in others.tolist():
            members = np.flatnonzero(used & (comp == c))
            d, j = tree.query(xy[members])
            if d.min() > 800.0 and len(members) < 50:
                continue
            best = int(np.argmin(d))
            links_u.append(members[best])
            links_v.append(main_nodes[j[best]])
        if not links_u:
            break
        u, v = np.array(links_u), np.array(links_v)
        line0 = int(edges.line.max()) + 1
        # a footbridge / footpath: flagged a bridge, since it may cross a canal or road
        edges = edges.concat(EdgeTable.build(u, v, line0 + np.arange(len(u)), 0, hw=_H["path"],
                                             flags=BRIDGE))
    walk, comp, used = _walk_components(len(xy), edges)
    main = int(np.argmax(np.bincount(comp[used])))
    keep = ~walk | ((comp[edges.u] == main) & (comp[edges.v] == main))
    # non-walkable edges stay only where they touch the main piece (e.g. cycle tracks)
    keep &= (comp[edges.u] == main) | (comp[edges.v] == main)
    return edges.take(keep)
