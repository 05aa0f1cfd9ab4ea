"""Isochrones: the area reachable within 5/10/15 minutes, per service or per facility.

Two methods:

``surface`` (default for a service's dissolved tiers)
    Contours of the service's travel-time surface (:mod:`qyx_geo.surfaces`): every grid cell
    linked to its nearest street point within the snap limit, its time = the street point's
    network time + the off-street walk; the tiers are marching-squares contours of that grid.
    Blocks between reached streets are in (their residents walk out to the street); open land
    further than the snap limit from any street is out. About a second for a county.
``exact`` (per-facility isochrones, and on request)
    The reachable street bands, described below: exact along every street, but only the streets
    (a county's dissolved bands take tens of seconds to unite).

An exact isochrone is the set of street centre-lines reachable within the time, *including the
partial edge* up to the cutoff from either end (and the stretch of a facility's own edge around it),
buffered by half of the street width on each side. No convex hulls: a river or a block without
streets stays outside.

Every edge (u, v) of length L whose end u is reached at ``d_u`` contributes ``[0, c - d_u]``
from u, and likewise ``[L - (c - d_v), L]`` from v; when the two meet the whole edge is in.
The cut is done on all edges at once (vectorised substring on the coordinate arrays).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, get_args

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd
import shapely

from qyx_geo._errors import SettingsError
from qyx_geo.engine import (
    BATCH_MIB,
    Layer,
    NetworkArrays,
    _batched_rows,
    _cutoff_m,
    _multi_source,
    _snapped,
    resolve_speed,
)
from qyx_geo.settings import Mode, Settings

if TYPE_CHECKING:
    from qyx_geo.surfaces import GridLink

__all__ = ["METHODS", "Method", "isochrones"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Side of the square tiles a large dissolved band is united in (metres); see ``_submit_tiles``.
TILE_M = 2000.0
#: Groups of at most this many buffered stretches are united in one piece.
TILE_MIN_POLYGONS = 2000
_POLYGON = 3  # shapely type id

Method = Literal["surface", "exact"]
METHODS: tuple[str, ...] = get_args(Method)


def isochrones(
    net: NetworkArrays,
    facilities: Layer,
    *,
    minutes: Sequence[float] = (5.0, 10.0, 15.0),
    settings: Settings | None = None,
    mode: Mode | None = None,
    speed_m_per_min: float | None = None,
    street_width_m: float | None = None,
    dissolve: bool = True,
    max_snap_m: float | None = None,
    quad_segs: int = 4,
    batch_mib: float = BATCH_MIB,
    tile_m: float = TILE_M,
    workers: int | None = None,
    method: Method | None = None,
    link: GridLink | None = None,
) -> gpd.GeoDataFrame:
    """Area reachable within each time tier, dissolved per tier or per facility.

    Parameters
    ----------
    net
        Network arrays from :func:`qyx_geo.engine.build_arrays`.
    facilities
        Facility points (any CRS, unique ids) or their :func:`~qyx_geo.engine.snap_points` table.
        Facilities too far from the network are left out (and logged).
    minutes
        Time tiers, e.g. ``(5, 10, 15)`` (the registry's ``Service.tiers_minutes``).
    settings, mode, speed_m_per_min
        Travel speed, as in :func:`qyx_geo.engine.nearest_facility`.
    street_width_m
        Width of the band drawn around reachable centre-lines (default
        ``settings.street_width_m``, 30 m: the street and its frontage plots).
    dissolve
        ``True``: one polygon per tier for all facilities together (the service's coverage);
        ``False``: one polygon per facility and tier.
    max_snap_m
        Snap limit in metres (default ``settings.max_snap_m``).
    quad_segs
        Segments per quarter circle of the buffer's round caps and joins (4: the chords stay
        within 0.3 m of the true circle for a 30 m street band).
    batch_mib
        Memory budget of a batch of per-facility distance rows (``dissolve=False``).
    tile_m
        Side of the square tiles a band of many street stretches is united in (metres;
        ``inf``: one union). Tiling changes nothing but the speed: the tiles are cut exactly
        and merged as a coverage.
    workers
        Threads uniting tiles and per-facility bands (GEOS releases the GIL; default: the CPUs
        this process may use).
    method
        ``"surface"`` (contours of the travel-time surface; the default with ``dissolve=True``)
        or ``"exact"`` (street bands; the default, and the only method, with ``dissolve=False``).
        ``street_width_m``, ``quad_segs``, ``tile_m`` and ``workers`` apply to ``exact`` only.
    link
        ``surface`` only: the grid's street links from :func:`qyx_geo.surfaces.link_grid`
        (default: made here with ``settings.surface_cell_m``); pass one to reuse it.

    Returns
    -------
    geopandas.GeoDataFrame
        In ``net.crs``. Columns ``minutes``, ``dist_m`` (the tier's walking distance) and
        ``geometry`` (empty where nothing is reachable), plus ``facility_id`` first when
        ``dissolve=False``. Rows: tiers ascending (per facility in input order). ``attrs``
        record the method and the speed, and the street width (``exact``) or cell size
        (``surface``) used.
    """
    settings = settings or Settings()
    speed = resolve_speed(settings=settings, mode=mode, speed_m_per_min=speed_m_per_min)
    tiers = _tiers(minutes)
    chosen = _method(method, dissolve=dissolve)
    if chosen == "surface":
        from qyx_geo.surfaces import surface_isochrones, travel_time_surface

        surface = travel_time_surface(net, facilities, cutoff_minutes=float(tiers[-1]),
                                      settings=settings, speed_m_per_min=speed,
                                      max_snap_m=max_snap_m, link=link)
        return surface_isochrones(surface, minutes=tiers.tolist())
    cutoffs = np.array([_cutoff_m(t, speed) for t in tiers])
    width = settings.street_width_m if street_width_m is None else street_width_m
    if isinstance(width, bool) or not isinstance(width, int | float) or not 0 < width < np.inf:
        msg = f"street_width_m must be a positive number of metres, got {width!r} (e.g. 30)."
        raise SettingsError(msg)
    if isinstance(tile_m, bool) or not isinstance(tile_m, int | float) or not tile_m > 0:
        msg = f"tile_m must be a positive number of metres (or inf), got {tile_m!r} (e.g. 2000)."
        raise SettingsError(msg)
    n_workers = _cpus() if workers is None else workers
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        msg = f"workers must be a positive integer, got {workers!r} (e.g. 2)."
        raise SettingsError(msg)
    snap_limit = settings.max_snap_m if max_snap_m is None else max_snap_m
    fsnap = _snapped(net, facilities, snap_limit, "facilities")
    fvalid = fsnap[~fsnap["too_far"].to_numpy()]

    edges: list[IntArray] = []
    starts: list[FloatArray] = []
    ends: list[FloatArray] = []
    groups: list[IntArray] = []
    if dissolve:
        node_dist, _ = _multi_source(net, fvalid, float(cutoffs[-1]))
        for t, cutoff in enumerate(cutoffs):
            e, a, b = _intervals(net, node_dist, float(cutoff), fvalid)
            edges.append(e)
            starts.append(a)
            ends.append(b)
            groups.append(np.full(e.size, t, dtype=np.int64))
        n_groups = len(tiers)
    else:
        for first, rows in _batched_rows(net, fvalid, float(cutoffs[-1]), batch_mib):
            for r in range(rows.shape[0]):
                own = fvalid.iloc[first + r: first + r + 1]
                for t, cutoff in enumerate(cutoffs):
                    e, a, b = _intervals(net, rows[r], float(cutoff), own)
                    edges.append(e)
                    starts.append(a)
                    ends.append(b)
                    groups.append(np.full(e.size, (first + r) * len(tiers) + t, dtype=np.int64))
        n_groups = len(fvalid) * len(tiers)

    polygons = _bands(net, edges, starts, ends, groups, n_groups, width / 2.0, quad_segs,
                      float(tile_m), n_workers)
    if dissolve:
        frame = pd.DataFrame({"minutes": tiers, "dist_m": cutoffs})
    else:
        frame = pd.DataFrame({
            "facility_id": np.repeat(np.asarray(fvalid.index, dtype=object), len(tiers)),
            "minutes": np.tile(tiers, len(fvalid)),
            "dist_m": np.tile(cutoffs, len(fvalid)),
        })
    out = gpd.GeoDataFrame(frame, geometry=polygons, crs=net.crs)
    out.attrs.update({"method": "exact", "speed_m_per_min": speed,
                      "street_width_m": float(width)})
    return out


def _method(method: object, *, dissolve: bool) -> str:
    if method is None:
        return "surface" if dissolve else "exact"
    if method not in METHODS:
        msg = f"method must be one of {METHODS!r}, got {method!r}."
        raise SettingsError(msg)
    if method == "surface" and not dissolve:
        msg = ("method='surface' draws a service's dissolved tiers (the surface holds the time "
               "to the nearest facility); per-facility isochrones need method='exact'.")
        raise SettingsError(msg)
    return str(method)


def _cpus() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _tiers(minutes: Sequence[float]) -> FloatArray:
    try:
        values = np.asarray(list(minutes), dtype=np.float64)
    except (TypeError, ValueError) as err:
        msg = f"minutes must be a sequence of numbers, got {minutes!r} (e.g. (5, 10, 15))."
        raise SettingsError(msg) from err
    if values.size == 0 or not (np.isfinite(values) & (values > 0)).all():
        msg = f"minutes must be positive, finite time tiers, got {minutes!r} (e.g. (5, 10, 15))."
        raise SettingsError(msg)
    return np.unique(values)


def _intervals(net: NetworkArrays, node_dist: FloatArray, cutoff_m: float,
               fsnap: pd.DataFrame) -> tuple[IntArray, FloatArray, FloatArray]:
    """Return reachable stretches ``(edge, from_m, to_m)`` measured from each edge's u end."""
    du, dv = node_dist[net.edge_u], node_dist[net.edge_v]
    cand = np.flatnonzero((du < cutoff_m) | (dv < cutoff_m))
    length = net.edge_length_m[cand]
    rem_u, rem_v = cutoff_m - du[cand], cutoff_m - dv[cand]
    full = (rem_u >= length) | (rem_v >= length) | ((rem_u > 0) & (rem_v > 0)
                                                    & (rem_u + rem_v >= length))
    from_u = ~full & (rem_u > 0)
    from_v = ~full & (rem_v > 0)
    # the stretch of each facility's own edge around it (reached without passing a node)
    rem_f = cutoff_m - fsnap["snap_dist_m"].to_numpy(np.float64)
    own = rem_f > 0
    f_edge = fsnap["edge"].to_numpy(np.int64)[own]
    f_off = fsnap["offset_m"].to_numpy(np.float64)[own]
    f_len = net.edge_length_m[f_edge]
    edge = np.concatenate([cand[full], cand[from_u], cand[from_v], f_edge])
    lo = np.concatenate([np.zeros(int(full.sum())), np.zeros(int(from_u.sum())),
                         (length - rem_v)[from_v], np.maximum(f_off - rem_f[own], 0.0)])
    hi = np.concatenate([length[full], rem_u[from_u], length[from_v],
                         np.minimum(f_off + rem_f[own], f_len)])
    return edge, lo, hi


def _bands(net: NetworkArrays, edges: list[IntArray], starts: list[FloatArray],
           ends: list[FloatArray], groups: list[IntArray], n_groups: int, radius_m: float,
           quad_segs: int, tile_m: float, workers: int) -> npt.NDArray[np.object_]:
    """Cut, group and buffer the reachable stretches into one polygon per group."""
    out = np.array([shapely.Polygon() for _ in range(n_groups)], dtype=object)
    if not edges or n_groups == 0:
        return out
    edge = np.concatenate(edges)
    if edge.size == 0:
        return out
    lo, hi, group = np.concatenate(starts), np.concatenate(ends), np.concatenate(groups)
    length = net.edge_length_m[edge]
    whole = (lo <= 0.0) & (hi >= length)
    pieces = net.edge_geometry[edge].copy()
    part = np.flatnonzero(~whole)
    if part.size:
        safe = np.where(length[part] > 0, length[part], 1.0)
        pieces[part] = _substring(net.edge_geometry[edge[part]], lo[part] / safe,
                                  hi[part] / safe)
    # buffering each piece and uniting the buffers (GEOS cascaded union) is ~4x faster than
    # buffering one big MultiLineString per group
    order = np.argsort(group, kind="stable")
    bands = shapely.buffer(pieces[order], radius_m, quad_segs=quad_segs)
    sorted_group = group[order]
    firsts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
    chunks = np.split(bands, firsts[1:])
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # all tiles of all groups are queued first, so the coverage unions in this thread
        # overlap with the pool uniting later tiles
        pending = [_submit_tiles(c, tile_m, pool) for c in chunks]
        for g, tiles in zip(sorted_group[firsts], pending, strict=True):
            out[g] = _merge_tiles([t.result() for t in tiles])
    return out


def _submit_tiles(polygons: npt.NDArray[np.object_], tile_m: float,
                  pool: ThreadPoolExecutor) -> list[Future[Any]]:
    """Queue the union of ``polygons``: whole if few, else one task per square tile.

    One union of ~100k street buffers is far slower than the sum of the unions of its parts
    (the cascaded union merges ever larger polygons: ~80 s against ~10 s for a county-wide
    15-minute band). The polygons are therefore grouped into square tiles of ``tile_m``
    aligned on multiples of it; a polygon spanning several tiles is clipped to each of them
    (so neighbouring tiles share the very same cut points on their common side) and each tile
    is united on its own, in the pool's threads (GEOS releases the GIL).
    """
    if polygons.size <= TILE_MIN_POLYGONS or not np.isfinite(tile_m):
        return [pool.submit(shapely.union_all, polygons)]
    bounds = shapely.bounds(polygons)
    i0 = np.floor(bounds[:, 0] / tile_m).astype(np.int64)
    j0 = np.floor(bounds[:, 1] / tile_m).astype(np.int64)
    i1 = np.floor(bounds[:, 2] / tile_m).astype(np.int64)
    j1 = np.floor(bounds[:, 3] / tile_m).astype(np.int64)
    member, tile_i, tile_j = [np.arange(polygons.size)], [i0], [j0]
    for di in range(int((i1 - i0).max()) + 1):
        for dj in range(int((j1 - j0).max()) + 1):
            k = np.flatnonzero((i1 - i0 >= di) & (j1 - j0 >= dj))
            if di + dj and k.size:
                member.append(k)
                tile_i.append(i0[k] + di)
                tile_j.append(j0[k] + dj)
    k_all, ti, tj = np.concatenate(member), np.concatenate(tile_i), np.concatenate(tile_j)
    order = np.lexsort((tj, ti))
    k_all, ti, tj = k_all[order], ti[order], tj[order]
    firsts = np.flatnonzero(np.r_[True, (ti[1:] != ti[:-1]) | (tj[1:] != tj[:-1])])
    stops = np.r_[firsts[1:], k_all.size]
    spans = (i1 > i0) | (j1 > j0)

    def tile(first: int, stop: int) -> Any:
        k = k_all[first:stop]
        i, j = float(ti[first]), float(tj[first])
        chunk = polygons[k]
        cut = np.flatnonzero(spans[k])
        if cut.size:
            box = shapely.box(i * tile_m, j * tile_m, (i + 1) * tile_m, (j + 1) * tile_m)
            clipped = shapely.get_parts(shapely.intersection(chunk[cut], box))
            polygonal = clipped[shapely.get_type_id(clipped) == _POLYGON]  # no touching lines
            chunk = np.concatenate([np.delete(chunk, cut), polygonal])
        return shapely.union_all(chunk)

    return [pool.submit(tile, f, s) for f, s in zip(firsts.tolist(), stops.tolist(), strict=True)]


def _merge_tiles(tiles: list[Any]) -> Any:
    """Merge tile unions with disjoint interiors (GEOS coverage union: only the shared sides)."""
    if len(tiles) == 1:
        return tiles[0]
    parts = np.array(tiles, dtype=object)
    parts = parts[~shapely.is_empty(parts)]
    if parts.size == 0:
        return shapely.Polygon()
    try:
        return shapely.coverage_union_all(parts)
    except shapely.errors.GEOSException as err:  # pragma: no cover - GEOS robustness fallback
        log.warning("coverage union of %d tiles failed (%s); plain union instead", parts.size, err)
        return shapely.union_all(parts)


def _substring(lines: npt.NDArray[np.object_], t0: FloatArray,
               t1: FloatArray) -> npt.NDArray[np.object_]:
    """Cut each line between fractions ``t0`` and ``t1`` of its length, all lines at once."""
    t0 = np.clip(t0, 0.0, 1.0)
    t1 = np.clip(t1, t0, 1.0)
    coords, idx = shapely.get_coordinates(lines, return_index=True)
    step = np.zeros(idx.size)
    step[1:] = np.hypot(*np.diff(coords, axis=0).T)
    step[1:][idx[1:] != idx[:-1]] = 0.0
    cum = np.cumsum(step)
    first = np.searchsorted(idx, np.arange(lines.size))
    cum -= cum[first][idx]
    total = np.bincount(idx, weights=step, minlength=lines.size)
    frac = np.divide(cum, total[idx], out=np.zeros_like(cum), where=total[idx] > 0)
    inner = np.flatnonzero((frac > t0[idx]) & (frac < t1[idx]))
    head = shapely.get_coordinates(shapely.line_interpolate_point(lines, t0, normalized=True))
    tail = shapely.get_coordinates(shapely.line_interpolate_point(lines, t1, normalized=True))
    k = np.arange(lines.size)
    owner = np.concatenate([k, idx[inner], k])
    rank = np.concatenate([np.full(k.size, -1.0), frac[inner], np.full(k.size, 2.0)])
    xy = np.concatenate([head, coords[inner], tail])
    order = np.lexsort((rank, owner))
    return shapely.linestrings(xy[order], indices=owner[order])
