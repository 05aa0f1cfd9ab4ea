"""Layers of the synthetic network: town grids, village clusters, rural mesh, barriers.

Private to :mod:`qyx_geo.synth.network`; all coordinates in metres (EPSG:4549).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import shapely
from scipy.spatial import cKDTree
from shapely.geometry.base import BaseGeometry

from qyx_geo.synth import rng_for
from qyx_geo.synth._network_geom import (
    BRIDGE,
    HIGHWAY,
    PRIVATE,
    TUNNEL,
    EdgeTable,
    crossings,
    split_edges,
)

if TYPE_CHECKING:
    from qyx_geo.synth.network import Barrier, NetworkParams

__all__ = ["cn_number", "lattice_layers", "place_barriers", "stitch"]

_H = {name: code for code, name in enumerate(HIGHWAY)}
_DIGITS = "零一二三四五六七八九"
#: Half the distance between a motorway's two carriageways, and the node-free corridor (m).
_CARRIAGEWAY_M = 15.0
_CORRIDOR_M = 25.0


def cn_number(n: int) -> str:
    """Return ``n`` (1..999) in Chinese numerals: 3 → 三, 12 → 十二, 105 → 一百零五."""
    if n < 10:
        return _DIGITS[n]
    if n < 20:
        return "十" + (_DIGITS[n % 10] if n % 10 else "")
    if n < 100:
        return _DIGITS[n // 10] + "十" + (_DIGITS[n % 10] if n % 10 else "")
    rest = n % 100
    tail = "" if rest == 0 else ("零" + _DIGITS[rest] if rest < 10 else
                                 (_DIGITS[1] if rest < 20 else "") + cn_number(rest))
    return _DIGITS[n // 100] + "百" + tail


class _Names:
    """Interned street names (index into a list)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self._ids = {n: i for i, n in enumerate(names)}

    def __call__(self, name: str) -> int:
        if name not in self._ids:
            self._ids[name] = len(self.names)
            self.names.append(name)
        return self._ids[name]


def _lattice(centre: np.ndarray, radius: float, spacing: float, angle: float, jitter: float,
             rng: np.random.Generator,
             keep_fn: object = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Return a jittered, rotated square lattice clipped by ``keep_fn(points) -> mask``.

    Returns the kept points, a ``(2k+1, 2k+1)`` grid of local node numbers (-1: dropped), the
    row/column offsets ``-k..k`` and ``k``.
    """
    k = int(np.ceil(radius / spacing))
    off = np.arange(-k, k + 1)
    ii, jj = np.meshgrid(off, off, indexing="ij")
    local = np.column_stack([jj.ravel() * spacing, ii.ravel() * spacing])
    c, s = np.cos(angle), np.sin(angle)
    pts = centre + local @ np.array([[c, s], [-s, c]])
    pts = pts + rng.normal(0.0, jitter * spacing, pts.shape)
    mask = np.hypot(local[:, 0], local[:, 1]) <= radius
    if keep_fn is not None:
        mask[mask] = keep_fn(pts[mask])  # type: ignore[operator]
    grid = np.full(mask.shape, -1, np.int64)
    grid[mask] = np.arange(mask.sum())
    return pts[mask], grid.reshape(ii.shape), off, k


def _lattice_edges(grid: np.ndarray, base: int, line0: int) -> tuple[EdgeTable, np.ndarray,
                                                                         np.ndarray]:
    """Return row and column edges of a lattice grid, plus each edge's row/col offset and axis."""
    k = (grid.shape[0] - 1) // 2
    a, b = grid[:, :-1], grid[:, 1:]
    ok = (a >= 0) & (b >= 0)
    r_i, r_j = np.nonzero(ok)
    a2, b2 = grid[:-1, :], grid[1:, :]
    ok2 = (a2 >= 0) & (b2 >= 0)
    c_i, c_j = np.nonzero(ok2)
    n_side = grid.shape[0]
    table = EdgeTable.build(
        np.r_[a[ok], a2[ok2]] + base, np.r_[b[ok], b2[ok2]] + base,
        np.r_[line0 + r_i, line0 + n_side + c_j], np.r_[r_j, c_i].astype(float), hw=0)
    offset = np.r_[r_i - k, c_j - k]
    axis = np.r_[np.zeros(len(r_i), np.int8), np.ones(len(c_j), np.int8)]
    return table, offset, axis


def lattice_layers(
    region_m: BaseGeometry, seat_xy: np.ndarray, seat_kind: np.ndarray, seat_names: list[str],
    vil_xy: np.ndarray, vil_names: list[str], p: NetworkParams, seed: int,
) -> tuple[np.ndarray, EdgeTable, list[str], np.ndarray, tuple[float, float, float]]:
    """Build the town grids, village clusters and rural mesh, carved so they do not overlap.

    Returns node coordinates, edges, the name list, each node's group (seat index, ``n_seats +
    village index``, or -1 for the mesh) and the town radii by seat kind.
    """
    names: list[str] = []
    intern = _Names(names)
    radii = (p.urban_radius_m, p.town_radius_m, p.zone_radius_m)
    spacing = (p.urban_spacing_m, p.town_spacing_m, p.zone_spacing_m)
    seat_r = np.array([radii[k] for k in seat_kind])
    n_seats = len(seat_xy)
    xs: list[np.ndarray] = []
    tables: list[EdgeTable] = []
    groups: list[np.ndarray] = []
    base = line0 = 0

    def add(pts: np.ndarray, grid: np.ndarray, group: int) -> tuple[EdgeTable, np.ndarray,
                                                                    np.ndarray]:
        nonlocal base, line0
        table, offset, axis = _lattice_edges(grid, base, line0)
        xs.append(pts)
        groups.append(np.full(len(pts), group, np.int64))
        base += len(pts)
        line0 += 2 * grid.shape[0]
        return table, offset, axis

    def inside(pts: np.ndarray) -> np.ndarray:
        return shapely.contains_xy(region_m, pts[:, 0], pts[:, 1])

    # --- town grids: each seat owns the points nearest to it relative to its radius
    for i in range(n_seats):
        rng = rng_for(seed, "network", "town", i)
        kind = int(seat_kind[i])

        def own(pts: np.ndarray, i: int = i) -> np.ndarray:
            rel = np.hypot(*(pts[:, None, :] - seat_xy[None, :, :]).transpose(2, 0, 1)) / seat_r
            return inside(pts) & (np.argmin(rel, axis=1) == i)

        pts, grid, _, _ = _lattice(seat_xy[i], radii[kind], spacing[kind],
                                   rng.uniform(-0.3, 0.3), 0.06, rng, keep_fn=own)
        table, offset, axis = add(pts, grid, i)
        main = (offset % 5) == 0
        hw = np.where(main, _H["tertiary"], _H["residential"])
        r = rng.random(len(table))
        if kind == 2:  # development zone: factory roads, a quarter of them private
            hw = np.where(main, _H["tertiary"], _H["service"])
            private = np.isin(table.line % 4, [1]) & ~main
            table.flags[:] = np.where(private, PRIVATE, 0)
        else:
            hw = np.where(~main & (r < 0.06), _H["footway"], hw)
            hw = np.where(~main & (r >= 0.06) & (r < 0.09), _H["living_street"], hw)
        table.hw[:] = hw
        short = seat_names[i]
        side = np.where(axis == 0, np.where(offset > 0, "北", "南"),
                        np.where(offset > 0, "东", "西"))
        kind_s = np.where(axis == 0, "路", "街")
        table.name[:] = [intern(f"{short}{'中' if o == 0 else s + cn_number(abs(o))}{ks}")
                         for o, s, ks in zip(offset.tolist(), side.tolist(), kind_s.tolist(),
                                             strict=True)]
        tables.append(table)

    # --- village clusters, outside the town grids
    v_rng = rng_for(seed, "network", "village-sizes")
    vil_r = v_rng.uniform(*p.village_radius_m, size=len(vil_xy))
    d_seat = np.hypot(*(vil_xy[:, None, :] - seat_xy[None, :, :]).transpose(2, 0, 1))
    built = (d_seat >= seat_r + 0.5 * vil_r[:, None]).all(axis=1)
    built_idx = np.flatnonzero(built)
    vtree = cKDTree(vil_xy[built_idx]) if len(built_idx) else None
    for v in built_idx.tolist():
        rng = rng_for(seed, "network", "village", v)

        def own_v(pts: np.ndarray, v: int = v) -> np.ndarray:
            ok = inside(pts)
            ds = np.hypot(*(pts[:, None, :] - seat_xy[None, :, :]).transpose(2, 0, 1))
            ok &= (ds >= seat_r + 0.5 * p.village_spacing_m).all(axis=1)
            kq = min(6, len(built_idx))
            dv, jv = vtree.query(pts, k=kq)  # type: ignore[union-attr]
            dv, jv = dv.reshape(len(pts), kq), jv.reshape(len(pts), kq)
            cand = built_idx[jv]
            owner = cand[np.arange(len(pts)), np.argmin(dv / vil_r[cand], axis=1)]
            return ok & (owner == v)

        pts, grid, _, _ = _lattice(vil_xy[v], vil_r[v], p.village_spacing_m,
                                   rng.uniform(-0.35, 0.35), 0.12, rng, keep_fn=own_v)
        if len(pts) == 0:
            continue
        table, offset, axis = add(pts, grid, n_seats + v)
        r = rng.random(len(table))
        row_hw = np.where(offset == 0, _H["residential"], _H["service"])
        col_hw = np.where(r < 0.6, _H["footway"], _H["path"])
        table.hw[:] = np.where(axis == 0, row_hw, col_hw)
        vs = vil_names[v]
        table.name[:] = [
            intern(f"{vs}路" if o == 0 else f"{vs}{'北' if o > 0 else '南'}{cn_number(abs(o))}弄")
            if a == 0 else -1
            for o, a in zip(offset.tolist(), axis.tolist(), strict=True)]
        tables.append(table)

    # --- rural mesh over the rest of the county
    rng = rng_for(seed, "network", "mesh")
    minx, miny, maxx, maxy = region_m.bounds
    centre = np.array([(minx + maxx) / 2, (miny + maxy) / 2])
    half = float(np.hypot(maxx - minx, maxy - miny)) / 2
    clear_v = vil_r[built_idx] + 0.5 * p.rural_spacing_m

    def free(pts: np.ndarray) -> np.ndarray:
        ok = inside(pts)
        ds = np.hypot(*(pts[:, None, :] - seat_xy[None, :, :]).transpose(2, 0, 1))
        ok &= (ds >= seat_r + 0.5 * p.rural_spacing_m).all(axis=1)
        if vtree is not None:
            kq = min(4, len(built_idx))
            dv, jv = vtree.query(pts, k=kq)
            dv, jv = dv.reshape(len(pts), kq), jv.reshape(len(pts), kq)
            ok &= (dv >= clear_v[jv]).all(axis=1)
        return ok

    pts, grid, _, _ = _lattice(centre, half, p.rural_spacing_m, 0.0, 0.15, rng, keep_fn=free)
    table, offset, axis = add(pts, grid, -1)
    line_r = rng_for(seed, "network", "mesh-lines").random(int(table.line.max()) + 1)
    r = rng.random(len(table))
    main = (offset % 6) == 0
    hw = np.where(main, _H["unclassified"],
                  np.where(line_r[table.line] < 0.65, _H["track"], _H["path"]))
    table.hw[:] = np.where(~main & (r < 0.015), _H["cycleway"], hw)
    num = offset // 6 + (grid.shape[0] // 12) + 1
    table.name[:] = [intern(f"{cn_number(int(n))}号{'横' if a == 0 else '纵'}路") if m else -1
                     for n, a, m in zip(num.tolist(), axis.tolist(), main.tolist(),
                                        strict=True)]
    tables.append(table)
    xy = np.vstack(xs)
    return xy, EdgeTable.empty().concat(*tables), names, np.concatenate(groups), radii


def stitch(xy: np.ndarray, edges: EdgeTable, groups: np.ndarray, n_seats: int,
           p: NetworkParams) -> tuple[EdgeTable, int]:
    """Join the loose ends of each grid/cluster/mesh to the nearest node of another one."""
    n = len(xy)
    deg = np.bincount(edges.u, minlength=n) + np.bincount(edges.v, minlength=n)
    alive = deg > 0
    live = np.flatnonzero(alive)
    loose = np.flatnonzero(alive & (deg < 4))
    tree = cKDTree(xy[live])
    kq = 12
    d, j = tree.query(xy[loose], k=kq, distance_upper_bound=1.6 * p.rural_spacing_m)
    valid = np.isfinite(d)
    tgt = np.where(valid, live[np.minimum(j, len(live) - 1)], -1)
    foreign = valid & (groups[np.maximum(tgt, 0)] != groups[loose][:, None])
    has = foreign.any(axis=1)
    first = np.argmax(foreign, axis=1)
    src = loose[has]
    dst = tgt[has, first[has]]
    dist = d[has, first[has]]
    df = pd.DataFrame({"src": src, "dst": dst, "d": dist, "gs": groups[src], "gd": groups[dst]})
    df = df.sort_values(["d", "src", "dst"], kind="stable")
    # each node takes one link, and accepts at most one link from any other group
    df = df.drop_duplicates("src").drop_duplicates(["dst", "gs"])
    a, b = np.minimum(df["src"], df["dst"]), np.maximum(df["src"], df["dst"])
    df = df.assign(a=a, b=b).drop_duplicates(["a", "b"]).sort_values(["a", "b"])
    town = (df["gs"].to_numpy() >= 0) & (df["gs"].to_numpy() < n_seats)
    town &= (df["gd"].to_numpy() >= 0) & (df["gd"].to_numpy() < n_seats)
    line0 = int(edges.line.max()) + 1
    links = EdgeTable.build(df["a"].to_numpy(), df["b"].to_numpy(), line0 + np.arange(len(df)),
                            0, hw=np.where(town, _H["residential"], _H["unclassified"]))
    return edges.concat(links), len(df)


def _normals(coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distance along a polyline and its unit normals at each vertex."""
    seg = np.diff(coords, axis=0)
    along = np.r_[0.0, np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))]
    tangent = np.gradient(coords, along, axis=0)
    normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
    return along, normal / np.hypot(normal[:, 0], normal[:, 1])[:, None]


def _offset(line: shapely.LineString, dist_m: float) -> np.ndarray:
    """Return the vertices of ``line`` shifted sideways by ``dist_m`` (left positive)."""
    coords = np.asarray(line.coords)
    return coords + _normals(coords)[1] * dist_m


def _barrier_line(b: Barrier, region_m: BaseGeometry, rng: np.random.Generator) -> list[
        np.ndarray]:
    """Return the barrier's polyline parts (metres), meandering for waterways, in the region."""
    minx, miny, maxx, maxy = region_m.bounds
    frac = np.array(b.points, float)
    pts = np.column_stack([minx + frac[:, 0] * (maxx - minx), miny + frac[:, 1] * (maxy - miny)])
    line = shapely.segmentize(shapely.LineString(pts), 100.0)
    coords = np.asarray(line.coords)
    if b.kind in ("canal", "river"):
        along, normal = _normals(coords)
        phase = rng.uniform(0, 2 * np.pi, 2)
        wiggle = 140 * np.sin(along / 2600 + phase[0]) + 60 * np.sin(along / 700 + phase[1])
        coords = coords + normal * wiggle[:, None]
    clipped = shapely.intersection(shapely.LineString(coords), region_m)
    parts = [np.asarray(g.coords) for g in shapely.get_parts(clipped)
             if g.geom_type == "LineString" and g.length > 300.0]
    return parts


def _clear_corridors(xy: np.ndarray, edges: EdgeTable, lines: list[np.ndarray]) -> np.ndarray:
    """Push street nodes out of the motorway corridors (both carriageways plus a margin).

    With no node inside a corridor, a street meets a carriageway only where it crosses the
    centre line, so a crossing there can be bridged over the full corridor width.
    """
    if not lines:
        return xy
    xy = xy.copy()
    nodes = np.unique(np.r_[edges.u, edges.v])
    for part in lines:
        line = shapely.LineString(part)
        pts = shapely.points(xy[nodes])
        near = shapely.distance(pts, line) < _CORRIDOR_M
        if not near.any():
            continue
        foot = shapely.line_interpolate_point(line, shapely.line_locate_point(line, pts[near]))
        base = shapely.get_coordinates(foot)
        off = xy[nodes[near]] - base
        norm = np.hypot(off[:, 0], off[:, 1])
        direction = off / np.where(norm > 1e-6, norm, 1.0)[:, None]
        direction[norm <= 1e-6] = (0.0, 1.0)
        xy[nodes[near]] = base + direction * (_CORRIDOR_M + 1.0)
    return xy


def place_barriers(
    xy: np.ndarray, edges: EdgeTable, names: list[str], barriers: Sequence[Barrier],
    region_m: BaseGeometry, seat_xy: np.ndarray, town_r: np.ndarray, p: NetworkParams, seed: int,
) -> tuple[np.ndarray, EdgeTable, list[tuple[np.ndarray, list[tuple[str, str]]]], int]:
    """Cut every street that crosses a barrier, except at spaced bridges and underpasses.

    Arterials always cross (on a bridge/flyover); local streets cross at most every
    ``canal_crossing_m``/``road_crossing_m`` (town, rural) along the barrier. Returns the new
    coordinates and edges, the barrier ways themselves (canals, motorways, links) and the number
    of crossings kept.
    """
    rng = rng_for(seed, "network", "barriers")
    other: list[tuple[np.ndarray, list[tuple[str, str]]]] = []
    seg_list, seg_bar, seg_pos = [], [], []
    lines: list[tuple[Barrier, np.ndarray]] = []
    for b in barriers:
        for part in _barrier_line(b, region_m, rng):
            k = len(lines)
            lines.append((b, part))
            d = np.hypot(*np.diff(part, axis=0).T)
            seg_list.append(np.stack([part[:-1], part[1:]], axis=1))
            seg_bar.append(np.full(len(d), k))
            seg_pos.append(np.r_[0.0, np.cumsum(d)[:-1]])
    if not lines:
        return xy, edges, other, 0
    segs, bar, pos0 = np.vstack(seg_list), np.concatenate(seg_bar), np.concatenate(seg_pos)
    xy = _clear_corridors(xy, edges, [part for b, part in lines if b.kind == "motorway"])
    ie, ib, te, tb = crossings(edges.segments(xy), segs)
    at = xy[edges.u[ie]] + te[:, None] * (xy[edges.v[ie]] - xy[edges.u[ie]])
    pos = pos0[ib] + tb * np.hypot(*(segs[ib, 1] - segs[ib, 0]).T)
    town = (np.hypot(*(at[:, None, :] - seat_xy[None, :, :]).transpose(2, 0, 1))
            < town_r).any(axis=1)
    arterial = np.isin(edges.hw[ie], [_H["primary"], _H["secondary"]])
    rank = np.select([arterial, np.isin(edges.hw[ie], [_H["tertiary"], _H["unclassified"]])],
                     [0, 1], 2)
    accepted = np.zeros(len(ie), bool)
    for k, (b, _) in enumerate(lines):
        sel = np.flatnonzero(bar[ib] == k)
        gap = p.canal_crossing_m if b.kind in ("canal", "river") else p.road_crossing_m
        taken: list[float] = []
        for c in sel[np.lexsort((pos[sel], rank[sel]))].tolist():
            need = 0.0 if rank[c] == 0 else gap[0 if town[c] else 1]
            at_i = bisect.bisect_left(taken, pos[c])
            near = [abs(taken[m] - pos[c]) for m in (at_i - 1, at_i) if 0 <= m < len(taken)]
            if not near or min(near) >= need:
                bisect.insort(taken, float(pos[c]))
                accepted[c] = True
    # an edge survives only if every one of its crossings is a bridge / underpass
    bad = np.unique(ie[~accepted])
    ok = accepted & ~np.isin(ie, bad)
    length = np.hypot(*(xy[edges.v[ie]] - xy[edges.u[ie]]).T)
    kind = np.array([lines[k][0].kind for k in bar[ib]])
    # the bridge / underpass spans the barrier's width measured along the (oblique) street
    r = xy[edges.v[ie]] - xy[edges.u[ie]]
    sb = segs[ib, 1] - segs[ib, 0]
    sin = np.abs(r[:, 0] * sb[:, 1] - r[:, 1] * sb[:, 0]) / (
        length * np.hypot(sb[:, 0], sb[:, 1]))
    width = np.select([kind == "motorway", kind == "trunk"],
                      [_CARRIAGEWAY_M + 3.0, 2 * p.bridge_half_m], p.bridge_half_m)
    half = width / np.maximum(sin, 0.2)
    lo = np.maximum(te - half / length, 0.05 * te)
    hi = np.minimum(te + half / length, te + 0.95 * (1 - te))
    waterway = np.isin(kind, ["canal", "river"])
    flag = np.where(waterway | arterial, BRIDGE, TUNNEL)
    e_ok, lo, hi, flag = ie[ok], lo[ok], hi[ok], flag[ok]
    new_nodes = len(xy) + np.arange(2 * len(e_ok))
    pa, pb = xy[edges.u[e_ok]], xy[edges.v[e_ok]]
    xy = np.vstack([xy, pa + lo[:, None] * (pb - pa), pa + hi[:, None] * (pb - pa)])
    cut = EdgeTable.take(edges, ~np.isin(np.arange(len(edges)), bad))
    # indices shift after dropping the bad edges
    remap = np.cumsum(~np.isin(np.arange(len(edges)), bad)) - 1
    cut = split_edges(cut, np.r_[remap[e_ok], remap[e_ok]], np.r_[lo, hi], new_nodes,
                      flags_after=np.r_[flag, np.zeros(len(flag), np.int16)])
    n_bridges = int(ok.sum())
    # the barrier ways themselves: waterways, carriageways and a few interchange links
    for k, (b, part) in enumerate(lines):
        tags = [("name", b.name), ("source", "synthetic")] + ([("ref", b.ref)] if b.ref else [])
        if b.kind in ("canal", "river"):
            ids = len(xy) + np.arange(len(part))
            xy = np.vstack([xy, part])
            other.append((ids, [("waterway", b.kind), *tags]))
            continue
        line = shapely.segmentize(shapely.LineString(part), 250.0)
        carriageways = ([_offset(line, _CARRIAGEWAY_M), _offset(line, -_CARRIAGEWAY_M)[::-1]]
                        if b.kind == "motorway" else [np.asarray(line.coords)])
        hw = "motorway" if b.kind == "motorway" else "trunk"
        extra = [("oneway", "yes")] if b.kind == "motorway" else [("foot", "no")]
        link_extra = [] if b.kind == "motorway" else [("foot", "no")]
        first_ids = None
        for cw in carriageways:
            cw_xy = cw
            ids = len(xy) + np.arange(len(cw_xy))
            xy = np.vstack([xy, cw_xy])
            other.append((ids, [("highway", hw), *extra, *tags]))
            first_ids = ids if first_ids is None else first_ids
        # interchanges where an arterial crosses: a link from the carriageway to the arterial
        sel = np.flatnonzero(ok & (bar[ib] == k) & arterial)
        if first_ids is None or len(sel) == 0:
            continue
        cw_tree = cKDTree(xy[first_ids])
        link = "motorway_link" if b.kind == "motorway" else "trunk_link"
        for c in sel.tolist():
            _, j = cw_tree.query(at[c])
            other.append((np.array([first_ids[j], edges.u[ie[c]]]),
                          [("highway", link), ("oneway", "yes"), *link_extra,
                           ("source", "synthetic")]))
    return xy, cut, other, n_bridges
