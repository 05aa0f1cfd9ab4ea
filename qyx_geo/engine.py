"""Accessibility engine: network travel times to the nearest facility, catchments and 2SFCA.

The projected osmnx graph is converted once into compact arrays (:func:`build_arrays`); points
are snapped to their nearest *edge* (:func:`snap_points`); every facility becomes a virtual node
joined to both ends of its edge with its start costs (``snap + offset`` and
``snap + length - offset``), so one :func:`scipy.sparse.csgraph.dijkstra` pass with
``min_only=True`` gives every node its nearest facility. Demand points then take the best of
their two edge ends plus their own snap distance, or the direct along-edge distance when a
facility sits on the same edge. Distances are metres; times are minutes at a mode's speed
(:class:`qyx_geo.settings.Settings`).

Examples
--------
>>> import networkx as nx, geopandas as gpd, shapely
>>> G = nx.MultiDiGraph(crs="EPSG:4549")
>>> G.add_node(1, x=0.0, y=0.0); G.add_node(2, x=1000.0, y=0.0)
>>> _ = G.add_edge(1, 2, length=1000.0); _ = G.add_edge(2, 1, length=1000.0)
>>> net = build_arrays(G)
>>> fac = gpd.GeoDataFrame(geometry=[shapely.Point(0, 10)], index=["f1"], crs="EPSG:4549")
>>> homes = gpd.GeoDataFrame(geometry=[shapely.Point(600, -20)], index=["h1"], crs="EPSG:4549")
>>> r = nearest_facility(net, fac, homes)
>>> float(r.loc["h1", "dist_m"]), r.loc["h1", "facility_id"]
(630.0, 'f1')
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TypeAlias, cast

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import dijkstra

from qyx_geo._csr import NetworkArrays, build_arrays
from qyx_geo._errors import ColumnError, DataFileError, SettingsError
from qyx_geo._snap import SNAP_COLUMNS, is_snapped, snap_points
from qyx_geo.settings import Mode, Settings

__all__ = [
    "SNAP_COLUMNS",
    "NetworkArrays",
    "build_arrays",
    "catchment_matrix",
    "nearest_facility",
    "nearest_facility_nodes",
    "resolve_speed",
    "snap_points",
    "two_step_fca",
]

log = logging.getLogger(__name__)

Layer: TypeAlias = gpd.GeoDataFrame | pd.DataFrame
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Default memory budget of one batch of single-source Dijkstra rows (catchments, isochrones).
BATCH_MIB = 256.0


def resolve_speed(
    *, settings: Settings | None = None, mode: Mode | None = None,
    speed_m_per_min: float | None = None,
) -> float:
    """Return the travel speed in metres per minute.

    ``speed_m_per_min`` wins when given; otherwise the speed of ``mode`` (default
    ``settings.mode``) from ``settings`` (default :class:`~qyx_geo.settings.Settings()`:
    walking at 4.0 km/h, i.e. 66.7 m/min, the GB 50180-2018 reading of 1,000 m in 15 minutes).
    """
    if speed_m_per_min is not None:
        if (isinstance(speed_m_per_min, bool) or not isinstance(speed_m_per_min, int | float)
                or not 0 < speed_m_per_min < np.inf):
            msg = (f"speed_m_per_min must be a positive number, got {speed_m_per_min!r} "
                   "(walking at 4 km/h is 66.7 m/min).")
            raise SettingsError(msg)
        return float(speed_m_per_min)
    return (settings or Settings()).speed_m_per_min(mode)


def nearest_facility(
    net: NetworkArrays,
    facilities: Layer,
    points: Layer,
    *,
    settings: Settings | None = None,
    mode: Mode | None = None,
    speed_m_per_min: float | None = None,
    cutoff_minutes: float | None = None,
    max_snap_m: float | None = None,
) -> pd.DataFrame:
    """Travel time from every point to its nearest facility over the walking network.

    One multi-source Dijkstra pass over the whole network, whatever the number of facilities.

    Parameters
    ----------
    net
        Network arrays from :func:`build_arrays`.
    facilities
        Facility points (any CRS, unique ids) or their :func:`snap_points` table.
    points
        Demand points (any CRS, unique ids) or their :func:`snap_points` table; snap them once
        and pass the table to reuse it across services.
    settings, mode, speed_m_per_min
        Travel speed: ``speed_m_per_min`` if given, else the speed of ``mode`` in ``settings``.
    cutoff_minutes
        Stop searching beyond this time (faster); points further away get ``inf``.
    max_snap_m
        Snap limit in metres (default ``settings.max_snap_m``, 300 m).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``points``: ``minutes`` and ``dist_m`` (``inf`` when no facility is
        reachable within the cutoff, ``NaN`` for points too far from the network),
        ``facility_id`` (missing, ``pd.isna``, when none), ``snap_dist_m`` and ``too_far``.
    """
    settings = settings or Settings()
    speed = resolve_speed(settings=settings, mode=mode, speed_m_per_min=speed_m_per_min)
    cutoff_m = _cutoff_m(cutoff_minutes, speed)
    snap_limit = settings.max_snap_m if max_snap_m is None else max_snap_m
    fsnap = _snapped(net, facilities, snap_limit, "facilities")
    psnap = _snapped(net, points, snap_limit, "demand points")
    fvalid = fsnap[~fsnap["too_far"].to_numpy()]
    node_dist, node_src = _multi_source(net, fvalid, cutoff_m)
    dist, src = _points_from_nodes(net, node_dist, node_src, psnap)
    direct_f, direct_p, direct_d = _same_edge_pairs(fvalid, psnap)
    if direct_d.size:
        # keep the best direct pair per point, then compare with the path through the edge ends
        order = np.lexsort((direct_d, direct_p))
        direct_f, direct_p, direct_d = direct_f[order], direct_p[order], direct_d[order]
        first = np.r_[True, direct_p[1:] != direct_p[:-1]]
        direct_f, direct_p, direct_d = direct_f[first], direct_p[first], direct_d[first]
        better = direct_d < dist[direct_p]
        dist[direct_p[better]] = direct_d[better]
        src[direct_p[better]] = direct_f[better]
    beyond = dist > cutoff_m
    dist[beyond] = np.inf
    src[beyond] = -1
    too_far = psnap["too_far"].to_numpy()
    dist[too_far] = np.nan
    src[too_far] = -1
    facility_id = _facility_ids(fvalid.index, src)
    return pd.DataFrame(
        {"minutes": dist / speed, "dist_m": dist, "facility_id": facility_id,
         "snap_dist_m": psnap["snap_dist_m"].to_numpy(), "too_far": too_far},
        index=psnap.index.copy(),
    )


def nearest_facility_nodes(
    net: NetworkArrays,
    facilities: Layer,
    *,
    cutoff_m: float | None = None,
    max_snap_m: float = 300.0,
) -> pd.DataFrame:
    """Network distance from every node to its nearest facility (one multi-source pass).

    Returns
    -------
    pandas.DataFrame
        Indexed by osmnx node id (``net.node_ids``): ``dist_m`` (``inf`` beyond ``cutoff_m``)
        and ``facility_id`` (missing, ``pd.isna``, where unreachable).
    """
    fsnap = _snapped(net, facilities, max_snap_m, "facilities")
    fvalid = fsnap[~fsnap["too_far"].to_numpy()]
    dist, src = _multi_source(net, fvalid, _check_cutoff_m(cutoff_m))
    facility_id = _facility_ids(fvalid.index, src)
    return pd.DataFrame({"dist_m": dist, "facility_id": facility_id},
                        index=pd.Index(net.node_ids, name="node"))


def catchment_matrix(
    net: NetworkArrays,
    sources: Layer,
    targets: Layer,
    *,
    cutoff_m: float,
    max_snap_m: float = 300.0,
    batch_mib: float = BATCH_MIB,
) -> sp.csr_matrix:
    """Network distances from every source to every target within ``cutoff_m``, as a sparse matrix.

    Used for 2SFCA (facilities x demand) and for siting (candidates x demand). The smaller of
    the two layers is searched from (walking distances are symmetric), in batches of
    single-source Dijkstra runs limited to ``cutoff_m`` and sized so a batch of dense rows stays
    within ``batch_mib``; only the entries within the cutoff are kept.

    Parameters
    ----------
    net
        Network arrays from :func:`build_arrays`.
    sources, targets
        Point layers (any CRS, unique ids) or their :func:`snap_points` tables.
    cutoff_m
        Largest distance kept, metres (walking 15 minutes at 4 km/h is 1,000 m).
    max_snap_m
        Snap limit; rows/columns of points beyond it stay empty.
    batch_mib
        Memory budget of one batch of distance rows, MiB.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(len(sources), len(targets))`` in the layers' row order. A *stored* entry means
        "reachable within the cutoff" and holds the distance in metres; a target at the very
        spot of a source is a stored explicit ``0.0`` — test reachability on the sparsity
        structure (``m.indices``/``m.indptr``, ``m.nnz``), not on ``m.toarray() > 0``.
    """
    cutoff = _check_cutoff_m(cutoff_m)
    if not np.isfinite(cutoff):
        msg = f"cutoff_m must be a finite number of metres, got {cutoff_m!r} (e.g. 1000)."
        raise SettingsError(msg)
    ssnap = _snapped(net, sources, max_snap_m, "sources")
    tsnap = _snapped(net, targets, max_snap_m, "targets")
    s_rows = np.flatnonzero(~ssnap["too_far"].to_numpy())
    t_cols = np.flatnonzero(~tsnap["too_far"].to_numpy())
    shape = (len(ssnap), len(tsnap))
    if s_rows.size == 0 or t_cols.size == 0:
        return sp.csr_matrix(shape, dtype=np.float64)
    # walking distances are symmetric: search from the smaller side and transpose
    flip = t_cols.size < s_rows.size
    if flip:
        rows, cols, vals = _catchment_pairs(net, tsnap.iloc[t_cols], ssnap.iloc[s_rows], cutoff,
                                            batch_mib)
        rows, cols = s_rows[cols], t_cols[rows]
    else:
        rows, cols, vals = _catchment_pairs(net, ssnap.iloc[s_rows], tsnap.iloc[t_cols], cutoff,
                                            batch_mib)
        rows, cols = s_rows[rows], t_cols[cols]
    return sp.coo_matrix((vals, (rows, cols)), shape=shape).tocsr()


def _catchment_pairs(net: NetworkArrays, origins: pd.DataFrame, points: pd.DataFrame,
                     cutoff_m: float, batch_mib: float) -> tuple[IntArray, IntArray, FloatArray]:
    """Return ``(origin row, point row, dist_m)`` of every pair within ``cutoff_m``."""
    rows: list[IntArray] = [np.empty(0, dtype=np.int64)]
    cols: list[IntArray] = [np.empty(0, dtype=np.int64)]
    vals: list[FloatArray] = [np.empty(0)]
    pair_o, pair_p, pair_d = _same_edge_pairs(origins, points)
    for start, dist_nodes in _batched_rows(net, origins, cutoff_m, batch_mib):
        best = _points_from_node_rows(net, dist_nodes, points)
        stop = start + best.shape[0]
        sel = (pair_o >= start) & (pair_o < stop)
        np.minimum.at(best, (pair_o[sel] - start, pair_p[sel]), pair_d[sel])
        r, c = np.nonzero(best <= cutoff_m)
        rows.append(start + r)
        cols.append(c)
        vals.append(best[r, c])
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)


def two_step_fca(
    net: NetworkArrays,
    facilities: gpd.GeoDataFrame,
    demand: gpd.GeoDataFrame,
    *,
    capacity_col: str = "capacity",
    demand_col: str,
    cutoff_minutes: float,
    settings: Settings | None = None,
    mode: Mode | None = None,
    speed_m_per_min: float | None = None,
    max_snap_m: float | None = None,
    per: float = 1000.0,
) -> pd.Series:
    """Capacity-aware access: facility places per ``per`` residents within reach (classic 2SFCA).

    The classic two-step floating catchment area method (Luo & Wang 2003), binary catchments
    of ``cutoff_minutes`` of network travel:

    1. each facility j gets the ratio ``R_j = capacity_j / sum(demand_k for k within reach)``;
    2. each demand point i sums ``A_i = per * sum(R_j for j within reach)``.

    Summed over demand, ``sum(A_i * demand_i) / per`` equals the capacity of facilities that
    reach any demand, so the demand-weighted mean of ``A`` is directly comparable with a
    county-wide ratio such as the plan's 5.5 托位 per 1,000 residents. Facilities that reach no
    demand add nothing; no distance decay is applied within the catchment.

    Parameters
    ----------
    facilities
        Facility points with a numeric, non-negative ``capacity_col``.
    demand
        Demand points with a numeric, non-negative ``demand_col`` (e.g. ``pop_0_3``).
    cutoff_minutes
        Catchment size in minutes at the chosen speed.
    per
        Population base of the ratio (1,000 for "places per 1,000 residents").

    Returns
    -------
    pandas.Series
        Indexed like ``demand``, named ``places_per_<per>``; ``NaN`` for demand points too far
        from the network.
    """
    capacity = _numeric_column(facilities, capacity_col, "facilities")
    population = _numeric_column(demand, demand_col, "demand points")
    if isinstance(per, bool) or not isinstance(per, int | float) or per <= 0:
        msg = f"per must be a positive population base, got {per!r} (e.g. 1000)."
        raise SettingsError(msg)
    settings = settings or Settings()
    speed = resolve_speed(settings=settings, mode=mode, speed_m_per_min=speed_m_per_min)
    cutoff_m = _cutoff_m(cutoff_minutes, speed)
    snap_limit = settings.max_snap_m if max_snap_m is None else max_snap_m
    dsnap = snap_points(net, demand, max_snap_m=snap_limit, what="demand points")
    reach = catchment_matrix(net, facilities, dsnap, cutoff_m=cutoff_m, max_snap_m=snap_limit)
    reach = sp.csr_matrix((np.ones_like(reach.data), reach.indices, reach.indptr),
                          shape=reach.shape)
    served = reach @ population
    ratio = np.divide(capacity, served, out=np.zeros_like(capacity), where=served > 0)
    idle = (served == 0) & (capacity > 0)
    if idle.any():
        log.info("%d facilities reach no demand within %g min and add no places (e.g. %s).",
                 int(idle.sum()), cutoff_minutes, list(facilities.index[idle][:3]))
    access = (reach.T @ ratio) * per
    access[dsnap["too_far"].to_numpy()] = np.nan
    return pd.Series(access, index=demand.index.copy(), name=f"places_per_{per:g}")


# --------------------------------------------------------------------------- shared helpers


def _snapped(net: NetworkArrays, layer: Layer, max_snap_m: float, what: str) -> pd.DataFrame:
    if is_snapped(layer):
        table = cast(pd.DataFrame, layer)
        edge = table["edge"].to_numpy()
        if edge.size and (edge.min() < 0 or edge.max() >= net.n_edges):
            msg = (f"The snap table of {what} refers to edges outside this network (0.."
                   f"{net.n_edges - 1}); snap with snap_points() on the same network.")
            raise SettingsError(msg)
        return table
    return snap_points(net, layer, max_snap_m=max_snap_m, what=what)


def _facility_ids(index: pd.Index,
                  src: IntArray) -> npt.NDArray[np.object_] | pd.api.extensions.ExtensionArray:
    """Facility id per row position ``src`` (missing where ``src < 0``).

    The column dtype is the one pandas infers for the ids (with a missing value if any): for
    string ids it is found on the few facilities and the column is then built by ``take``,
    about 4x faster than letting pandas infer it again over every node (~5 ms of a ~25 ms
    county-wide query on pandas 3).
    """
    ids = np.asarray(index, dtype=object)
    hit = src >= 0
    dtype = pd.Series(ids if hit.all() else np.r_[ids, [None]]).dtype
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return pd.array(ids, dtype=dtype).take(np.where(hit, src, -1), allow_fill=True)
    out = np.full(src.shape, None, dtype=object)
    out[hit] = ids[src[hit]]
    return out


def _check_cutoff_m(cutoff_m: float | None) -> float:
    if cutoff_m is None:
        return np.inf
    if isinstance(cutoff_m, bool) or not isinstance(cutoff_m, int | float) or not cutoff_m >= 0:
        msg = f"cutoff_m must be a non-negative number of metres, got {cutoff_m!r}."
        raise SettingsError(msg)
    return float(cutoff_m)


def _cutoff_m(cutoff_minutes: float | None, speed_m_per_min: float) -> float:
    if cutoff_minutes is None:
        return np.inf
    if (isinstance(cutoff_minutes, bool) or not isinstance(cutoff_minutes, int | float)
            or not cutoff_minutes > 0):
        msg = f"cutoff_minutes must be a positive number of minutes, got {cutoff_minutes!r}."
        raise SettingsError(msg)
    return float(cutoff_minutes) * speed_m_per_min


def _numeric_column(layer: pd.DataFrame, column: str, what: str) -> FloatArray:
    if column not in layer.columns:
        msg = (f"{what} have no column {column!r}; columns are {list(layer.columns)!r}. "
               f"Add it or pass the right name.")
        raise ColumnError(msg)
    values = pd.to_numeric(layer[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values < 0)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        msg = (f"{what} column {column!r} must hold non-negative numbers; {int(bad.sum())} row(s) "
               f"do not, e.g. id {layer.index[k]!r} = {layer[column].iloc[k]!r}. Fill or drop "
               "them.")
        raise DataFileError(msg)
    return values


def _augmented(net: NetworkArrays, snapped: pd.DataFrame) -> sp.csr_matrix:
    """Return the adjacency plus one virtual node per snapped point (edges out of it only)."""
    n, k = net.n_nodes, len(snapped)
    u = snapped["u"].to_numpy(np.int64)
    v = snapped["v"].to_numpy(np.int64)
    snap = snapped["snap_dist_m"].to_numpy(np.float64)
    offset = snapped["offset_m"].to_numpy(np.float64)
    length = net.edge_length_m[snapped["edge"].to_numpy(np.int64)]
    to_u, to_v = snap + offset, snap + (length - offset)
    loop = u == v  # a self-loop edge: one way out, the shorter one
    counts = np.where(loop, 1, 2)
    cols = np.column_stack([u, v]).ravel()
    wts = np.column_stack([np.where(loop, np.minimum(to_u, to_v), to_u), to_v]).ravel()
    keep = np.column_stack([np.ones(k, bool), ~loop]).ravel()
    g = net.adjacency
    indptr = np.concatenate([g.indptr, g.indptr[-1] + np.cumsum(counts)]).astype(g.indptr.dtype)
    indices = np.concatenate([g.indices, cols[keep].astype(g.indices.dtype)])
    data = np.concatenate([g.data, wts[keep]])
    return sp.csr_matrix((data, indices, indptr), shape=(n + k, n + k))


def _multi_source(net: NetworkArrays, snapped: pd.DataFrame,
                  cutoff_m: float) -> tuple[FloatArray, IntArray]:
    """Distance of every node to its nearest snapped point, and that point's row position."""
    n, k = net.n_nodes, len(snapped)
    if k == 0:
        return np.full(n, np.inf), np.full(n, -1, dtype=np.int64)
    graph = _augmented(net, snapped)
    dist, _, src = dijkstra(graph, directed=True, indices=np.arange(n, n + k), min_only=True,
                            return_predecessors=True, limit=cutoff_m)
    src = src[:n].astype(np.int64)
    src[src >= 0] -= n
    return dist[:n], src


def _batched_rows(net: NetworkArrays, snapped: pd.DataFrame, cutoff_m: float,
                  batch_mib: float) -> Iterator[tuple[int, FloatArray]]:
    """Yield ``(first row, node distances of a batch of sources)`` within ``batch_mib``."""
    if isinstance(batch_mib, bool) or not isinstance(batch_mib, int | float) or batch_mib <= 0:
        msg = f"batch_mib must be a positive number of MiB, got {batch_mib!r} (e.g. 256)."
        raise SettingsError(msg)
    n, k = net.n_nodes, len(snapped)
    graph = _augmented(net, snapped)
    batch = max(1, int(batch_mib * 2**20 // (8 * (n + k))))
    for start in range(0, k, batch):
        stop = min(k, start + batch)
        dist = dijkstra(graph, directed=True, indices=np.arange(n + start, n + stop),
                        limit=cutoff_m)
        yield start, np.atleast_2d(dist)[:, :n]


def _points_from_nodes(net: NetworkArrays, node_dist: FloatArray, node_src: IntArray,
                       psnap: pd.DataFrame) -> tuple[FloatArray, IntArray]:
    """Best of the two edge ends (plus the point's own walk onto the edge), vectorised."""
    u = psnap["u"].to_numpy(np.int64)
    v = psnap["v"].to_numpy(np.int64)
    snap = psnap["snap_dist_m"].to_numpy(np.float64)
    offset = psnap["offset_m"].to_numpy(np.float64)
    length = net.edge_length_m[psnap["edge"].to_numpy(np.int64)]
    via_u = node_dist[u] + (snap + offset)
    via_v = node_dist[v] + (snap + (length - offset))
    use_v = via_v < via_u
    return np.where(use_v, via_v, via_u), np.where(use_v, node_src[v], node_src[u])


def _points_from_node_rows(net: NetworkArrays, node_rows: FloatArray,
                           psnap: pd.DataFrame) -> FloatArray:
    """Like :func:`_points_from_nodes` for a (sources x nodes) block; returns sources x points."""
    u = psnap["u"].to_numpy(np.int64)
    v = psnap["v"].to_numpy(np.int64)
    snap = psnap["snap_dist_m"].to_numpy(np.float64)
    offset = psnap["offset_m"].to_numpy(np.float64)
    length = net.edge_length_m[psnap["edge"].to_numpy(np.int64)]
    return np.minimum(node_rows[:, u] + (snap + offset), node_rows[:, v] + (snap + length - offset))


def _same_edge_pairs(fsnap: pd.DataFrame,
                     psnap: pd.DataFrame) -> tuple[IntArray, IntArray, FloatArray]:
    """All (facility row, point row, direct along-edge distance) pairs sharing an edge."""
    f_edge = fsnap["edge"].to_numpy(np.int64)
    p_edge = psnap["edge"].to_numpy(np.int64)
    order = np.argsort(f_edge, kind="stable")
    lo = np.searchsorted(f_edge[order], p_edge, side="left")
    hi = np.searchsorted(f_edge[order], p_edge, side="right")
    counts = hi - lo
    total = int(counts.sum())
    p_idx = np.repeat(np.arange(p_edge.size, dtype=np.int64), counts)
    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    f_idx = order[np.repeat(lo, counts) + within].astype(np.int64)
    f_off = fsnap["offset_m"].to_numpy(np.float64)
    p_off = psnap["offset_m"].to_numpy(np.float64)
    direct = (fsnap["snap_dist_m"].to_numpy(np.float64)[f_idx] + np.abs(f_off[f_idx] - p_off[p_idx])
              + psnap["snap_dist_m"].to_numpy(np.float64)[p_idx])
    return f_idx, p_idx, direct
