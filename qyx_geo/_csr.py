"""Compact arrays of a walking network: CSR adjacency, edge table, node coordinates.

:func:`build_arrays` turns a projected osmnx graph into a :class:`NetworkArrays` once; every
engine function then works on numpy/scipy arrays only. Walking ignores one-way tags, so the
adjacency is symmetric; each physical street segment appears once in the edge table however many
directed copies the graph holds.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyproj
import scipy.sparse as sp
import shapely

from qyx_geo._errors import NetworkError

if TYPE_CHECKING:  # networkx is imported where a graph is built or read (issue 11)
    import networkx as nx

__all__ = ["NetworkArrays", "build_arrays"]

log = logging.getLogger(__name__)

#: Parallel directed copies of one street (u->v and v->u) are recognised by equal length to this
#: many decimals (millimetres): osmnx gives both copies the same length.
_LENGTH_DECIMALS = 3
#: Graph attributes kept in :attr:`NetworkArrays.info` (set by qyx_geo.network.load_network).
_INFO_KEYS = ("qyx_source", "source_sha256", "osm_timestamp", "synthetic", "ways_cut",
              "ways_dropped", "network_type")


@dataclasses.dataclass(frozen=True, eq=False)
class NetworkArrays:
    """A walking network as arrays; built once by :func:`build_arrays`, reusable and picklable.

    Node positions ``0 .. n_nodes-1`` index every node array; edge positions ``0 .. n_edges-1``
    index every edge array.

    Attributes
    ----------
    crs
        The network's projected CRS (metres), as given by ``G.graph["crs"]``.
    node_ids
        osmnx node id of each node position.
    x, y
        Node coordinates in ``crs``.
    edge_u, edge_v
        Node positions of each undirected edge's ends; ``edge_geometry`` runs from u to v.
    edge_length_m
        Edge length in metres (the graph's ``length`` attribute).
    edge_geometry
        Shapely LineStrings, one per edge (a straight segment where the graph has none).
    adjacency
        Symmetric ``n_nodes x n_nodes`` CSR matrix of the shortest edge length between
        adjacent nodes (explicit zeros are zero-length edges, not gaps).
    info
        Where the network came from, for the run record: the graph's ``qyx_source``,
        ``source_sha256``, ``osm_timestamp``, ``synthetic``, ``ways_cut``, ``ways_dropped``
        (whatever the graph carries; empty for hand-built arrays).
    """

    crs: str
    node_ids: npt.NDArray[Any]
    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    edge_u: npt.NDArray[np.int64]
    edge_v: npt.NDArray[np.int64]
    edge_length_m: npt.NDArray[np.float64]
    edge_geometry: npt.NDArray[np.object_]
    adjacency: sp.csr_matrix
    info: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return int(self.x.shape[0])

    @property
    def n_edges(self) -> int:
        """Number of undirected edges in the edge table."""
        return int(self.edge_u.shape[0])

    @functools.cached_property
    def edge_tree(self) -> shapely.STRtree:
        """Spatial index of ``edge_geometry`` (built on first use, not pickled)."""
        return shapely.STRtree(self.edge_geometry)

    def node_positions(self, ids: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Return the node positions of osmnx node ``ids`` (-1 where an id is unknown)."""
        return pd.Index(self.node_ids).get_indexer(np.asarray(ids)).astype(np.int64)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("edge_tree", None)  # cached spatial index: cheap to rebuild
        # one vectorised WKB encoding instead of pickling every geometry object on its own
        state["edge_geometry"] = shapely.to_wkb(self.edge_geometry)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        state["edge_geometry"] = shapely.from_wkb(state["edge_geometry"])
        self.__dict__.update(state)

    @classmethod
    def from_edges(
        cls,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        u: npt.ArrayLike,
        v: npt.ArrayLike,
        length_m: npt.ArrayLike,
        *,
        crs: str,
        node_ids: npt.ArrayLike | None = None,
        geometry: npt.ArrayLike | None = None,
    ) -> NetworkArrays:
        """Build the arrays from plain node and (directed or undirected) edge arrays.

        :func:`build_arrays` uses this after reading the graph; it also lets large synthetic or
        cached networks skip networkx entirely.

        Parameters
        ----------
        x, y
            Node coordinates in ``crs`` (metres).
        u, v
            Node positions of each edge's ends. Reverse copies (v, u) of the same length are
            merged into one edge.
        length_m
            Edge lengths in metres (finite, non-negative).
        crs
            A projected CRS in metres.
        node_ids
            Original ids of the nodes (default: their positions).
        geometry
            LineStrings running from u to v, or ``None`` entries for straight segments.
        """
        x_arr = np.ascontiguousarray(x, dtype=np.float64)
        y_arr = np.ascontiguousarray(y, dtype=np.float64)
        n = x_arr.shape[0]
        if n == 0:
            msg = "The network has no nodes; load a network that covers the study area."
            raise NetworkError(msg)
        ids = np.arange(n) if node_ids is None else np.asarray(node_ids)
        u_arr = np.asarray(u, dtype=np.int64)
        v_arr = np.asarray(v, dtype=np.int64)
        length = np.asarray(length_m, dtype=np.float64)
        _check_edges(ids, u_arr, v_arr, length, n)
        crs_text = _check_crs(crs)

        # one row per undirected street: key (min end, max end, length in mm); two stable
        # integer argsorts (radix) are much faster than a 3-key lexsort at a million edges
        a = np.minimum(u_arr, v_arr)
        b = np.maximum(u_arr, v_arr)
        pair = a * n + b
        len_key = np.round(length * 10**_LENGTH_DECIMALS).astype(np.int64)
        by_len = np.argsort(len_key, kind="stable")
        order = by_len[np.argsort(pair[by_len], kind="stable")]
        pair_sorted, len_sorted = pair[order], len_key[order]
        first = np.ones(order.shape[0], dtype=bool)
        first[1:] = (pair_sorted[1:] != pair_sorted[:-1]) | (len_sorted[1:] != len_sorted[:-1])
        keep = order[first]
        edge_u, edge_v, edge_len = a[keep], b[keep], length[keep]

        geoms = np.full(keep.shape[0], None, dtype=object)
        if geometry is not None:
            given = np.asarray(geometry, dtype=object)[keep]
            has = ~shapely.is_missing(given)
            flip = has & (u_arr[keep] > v_arr[keep])
            given[flip] = shapely.reverse(given[flip])  # orient every geometry from a to b
            geoms[has] = given[has]
        missing = shapely.is_missing(geoms)
        if missing.any():
            mu, mv = edge_u[missing], edge_v[missing]
            coords = np.column_stack([x_arr[mu], y_arr[mu], x_arr[mv], y_arr[mv]]).reshape(-1, 2)
            geoms[missing] = shapely.linestrings(coords, indices=np.repeat(np.arange(mu.size), 2))

        adjacency = _adjacency(edge_u, edge_v, edge_len, n)
        log.debug("network arrays: %d nodes, %d edges (%d directed rows in)", n, edge_u.size,
                  u_arr.size)
        return cls(crs=crs_text, node_ids=ids, x=x_arr, y=y_arr, edge_u=edge_u, edge_v=edge_v,
                   edge_length_m=edge_len, edge_geometry=geoms, adjacency=adjacency)


def build_arrays(
    G: nx.MultiDiGraph,  # noqa: N803 - osmnx's name for a graph
    *,
    weight: str = "length",
) -> NetworkArrays:
    """Convert a projected osmnx graph into :class:`NetworkArrays` (one pass over the graph).

    Parameters
    ----------
    G
        Projected walking graph: ``G.graph["crs"]`` in metres (EPSG:4549 for Cixi), node
        attributes ``x``/``y``, edge attribute ``weight`` in metres, optional ``geometry``.
        One-way tags are ignored (pedestrians walk both ways).
    weight
        Edge attribute holding the length in metres.

    Returns
    -------
    NetworkArrays
        Arrays independent of ``G`` (``G`` is not modified).

    Raises
    ------
    NetworkError
        If the graph has no nodes, no projected CRS, nodes without coordinates or edges without
        a valid length.
    """
    crs = G.graph.get("crs")
    if crs is None:
        msg = ("The graph has no G.graph['crs']; project it first, e.g. "
               "osmnx.project_graph(G, to_crs='EPSG:4549').")
        raise NetworkError(msg)
    n = G.number_of_nodes()
    if n == 0:
        msg = "The graph has no nodes; load a network that covers the study area."
        raise NetworkError(msg)
    nodes = list(G.nodes)
    integer = all(isinstance(i, int | np.integer) and -(2**63) <= i < 2**63 for i in nodes)
    node_ids = np.array(nodes, dtype=np.int64 if integer else object)
    x = np.fromiter((d for _, d in G.nodes(data="x", default=np.nan)), np.float64, n)
    y = np.fromiter((d for _, d in G.nodes(data="y", default=np.nan)), np.float64, n)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    if bad.any():
        msg = (f"{int(bad.sum())} node(s) lack numeric 'x'/'y' attributes, e.g. node "
               f"{node_ids[bad][0]!r}; build the graph with osmnx (which sets them) or add them.")
        raise NetworkError(msg)
    position: dict[Hashable, int] = dict(zip(nodes, range(n), strict=True))
    # one pass over networkx's adjacency dicts (much faster than the G.edges view)
    multi = G.is_multigraph()
    tails: list[int] = []
    heads: list[int] = []
    attrs: list[dict[str, Any]] = []
    for a, nbrs in G.adjacency():
        pa = position[a]
        for b, keyed in nbrs.items():
            datas = keyed.values() if multi else (keyed,)
            pb = position[b]
            for d in datas:
                tails.append(pa)
                heads.append(pb)
                attrs.append(d)
    m = len(attrs)
    u = np.fromiter(tails, np.int64, m)
    v = np.fromiter(heads, np.int64, m)
    length = np.fromiter((d.get(weight, np.nan) for d in attrs), np.float64, m)
    geometry = np.empty(m, dtype=object)
    geometry[:] = [d.get("geometry") for d in attrs]
    net = NetworkArrays.from_edges(x, y, u, v, length, crs=crs, node_ids=node_ids,
                                   geometry=geometry)
    info = {k: G.graph[k] for k in _INFO_KEYS if isinstance(G.graph.get(k), str | int | float)}
    return dataclasses.replace(net, info=info)


def _check_crs(crs: Any) -> str:
    try:
        parsed = pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as err:
        msg = f"The network CRS {crs!r} is not a CRS pyproj understands; use 'EPSG:4549'."
        raise NetworkError(msg) from err
    units = {axis.unit_name for axis in parsed.axis_info}
    if not parsed.is_projected or not units <= {"metre", "meter"}:
        msg = (f"The network CRS {crs!r} is not a projected CRS in metres; project the graph, "
               "e.g. osmnx.project_graph(G, to_crs='EPSG:4549').")
        raise NetworkError(msg)
    return str(crs) if isinstance(crs, str) else parsed.to_string()


def _check_edges(ids: npt.NDArray[Any], u: npt.NDArray[np.int64], v: npt.NDArray[np.int64],
                 length: npt.NDArray[np.float64], n: int) -> None:
    if u.size == 0:
        msg = "The network has no edges; load a network with walkable streets."
        raise NetworkError(msg)
    if not (u.shape == v.shape == length.shape):
        msg = f"u, v and length_m must have equal lengths, got {u.size}, {v.size}, {length.size}."
        raise NetworkError(msg)
    out = (u < 0) | (u >= n) | (v < 0) | (v >= n)
    if out.any():
        k = int(np.flatnonzero(out)[0])
        msg = f"Edge {k} refers to node position {(int(u[k]), int(v[k]))!r} outside 0..{n - 1}."
        raise NetworkError(msg)
    bad = ~np.isfinite(length) | (length < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        msg = (f"{int(bad.sum())} edge(s) lack a finite, non-negative length, e.g. edge "
               f"({ids[u[k]]!r}, {ids[v[k]]!r}) with length {length[k]!r}; add lengths with "
               "osmnx.distance.add_edge_lengths(G).")
        raise NetworkError(msg)


def _adjacency(a: npt.NDArray[np.int64], b: npt.NDArray[np.int64],
               length: npt.NDArray[np.float64], n: int) -> sp.csr_matrix:
    """Symmetric CSR of the shortest parallel edge per node pair; self-loops dropped."""
    keep = a != b
    a, b, length = a[keep], b[keep], length[keep]
    pair = a * n + b
    order = np.argsort(pair, kind="stable")
    starts = np.flatnonzero(np.r_[True, pair[order][1:] != pair[order][:-1]][: pair.size])
    shortest = np.minimum.reduceat(length[order], starts) if starts.size else length[:0]
    a, b = a[order][starts], b[order][starts]
    rows = np.concatenate([a, b])
    cols = np.concatenate([b, a])
    data = np.concatenate([shortest, shortest])
    order = np.argsort(rows * n + cols, kind="stable")
    rows, cols, data = rows[order], cols[order], data[order]
    index_dtype = np.int32 if n < np.iinfo(np.int32).max else np.int64
    indptr = np.zeros(n + 1, dtype=index_dtype)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sp.csr_matrix((data, cols.astype(index_dtype), indptr), shape=(n, n))
