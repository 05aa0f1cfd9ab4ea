"""Planar edge-table helpers and the OSM XML writer behind :mod:`qyx_geo.synth.network`.

The generator keeps the street network as plain numpy arrays (an :class:`EdgeTable` plus an
``(n, 2)`` array of node coordinates in metres) so that every step — carving, stitching,
inserting arterials, cutting at barriers — is vectorised. Edges remember the *line* they come
from (a grid row, an arterial, a village lane) and their order along it, so that consecutive
edges of one line with the same tags become one OSM way, as in a real extract.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from xml.sax.saxutils import quoteattr

import numpy as np
import shapely

__all__ = [
    "BRIDGE",
    "FOOT_NO",
    "HIGHWAY",
    "ONEWAY",
    "PRIVATE",
    "TUNNEL",
    "EdgeTable",
    "crossings",
    "osm_xml",
    "split_edges",
]

#: Highway classes by code; the codes index this tuple.
HIGHWAY = ("residential", "tertiary", "secondary", "primary", "unclassified", "track", "path",
           "footway", "service", "living_street", "pedestrian", "cycleway", "motorway",
           "motorway_link", "trunk", "trunk_link")

# Edge flag bits.
BRIDGE, TUNNEL, FOOT_NO, ONEWAY, PRIVATE = 1, 2, 4, 8, 16


@dataclasses.dataclass
class EdgeTable:
    """Directed edges ``u → v`` with the line they belong to and their tags (one row per edge).

    ``line`` identifies the source polyline, ``seq`` orders edges along it (strictly increasing
    in the direction ``u → v``), ``hw`` indexes :data:`HIGHWAY`, ``flags`` holds the bit flags
    above and ``name`` indexes the generator's name list (-1: no name).
    """

    u: np.ndarray
    v: np.ndarray
    line: np.ndarray
    seq: np.ndarray
    hw: np.ndarray
    flags: np.ndarray
    name: np.ndarray

    @classmethod
    def empty(cls) -> EdgeTable:
        """Return a table without edges."""
        i = np.zeros(0, dtype=np.int64)
        return cls(i, i.copy(), i.copy(), np.zeros(0), np.zeros(0, np.int8),
                   np.zeros(0, np.int16), np.zeros(0, np.int32))

    @classmethod
    def build(cls, u: np.ndarray, v: np.ndarray, line: int | np.ndarray,
              seq: int | float | np.ndarray, *,
              hw: int | np.ndarray, flags: int | np.ndarray = 0,
              name: int | np.ndarray = -1) -> EdgeTable:
        """Return a table from endpoint arrays, broadcasting scalar tags."""
        n = len(u)
        return cls(np.asarray(u, np.int64), np.asarray(v, np.int64),
                   np.broadcast_to(np.asarray(line, np.int64), (n,)).copy(),
                   np.broadcast_to(np.asarray(seq, float), (n,)).copy(),
                   np.broadcast_to(np.asarray(hw, np.int8), (n,)).copy(),
                   np.broadcast_to(np.asarray(flags, np.int16), (n,)).copy(),
                   np.broadcast_to(np.asarray(name, np.int32), (n,)).copy())

    def __len__(self) -> int:
        return len(self.u)

    def take(self, idx: np.ndarray) -> EdgeTable:
        """Return the rows ``idx`` (an index or boolean mask) as a new table."""
        return EdgeTable(*(getattr(self, f.name)[idx] for f in dataclasses.fields(self)))

    def concat(self, *others: EdgeTable) -> EdgeTable:
        """Return this table followed by ``others``."""
        tables = (self, *others)
        return EdgeTable(*(np.concatenate([getattr(t, f.name) for t in tables])
                           for f in dataclasses.fields(self)))

    def segments(self, xy: np.ndarray) -> np.ndarray:
        """Return the ``(n, 2, 2)`` array of edge end coordinates."""
        return np.stack([xy[self.u], xy[self.v]], axis=1)


def crossings(seg_a: np.ndarray, seg_b: np.ndarray, *, same: bool = False,
              eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the proper crossings between two sets of straight segments.

    Parameters
    ----------
    seg_a, seg_b
        ``(n, 2, 2)`` and ``(m, 2, 2)`` segment arrays (metres).
    same
        ``seg_b`` is ``seg_a``: report each unordered pair once.
    eps
        Crossings within this fraction of a segment's ends are ignored (shared or touching ends).

    Returns
    -------
    ia, ib, ta, tb
        Index into ``seg_a`` and ``seg_b`` of each crossing and its position as a fraction of
        each segment's length.
    """
    if len(seg_a) == 0 or len(seg_b) == 0:
        e = np.zeros(0, np.int64)
        return e, e.copy(), np.zeros(0), np.zeros(0)
    tree = shapely.STRtree(shapely.linestrings(seg_b))
    ia, ib = tree.query(shapely.linestrings(seg_a), predicate="intersects")
    if same:
        keep = ia < ib
        ia, ib = ia[keep], ib[keep]
    p, r = seg_a[ia, 0], seg_a[ia, 1] - seg_a[ia, 0]
    q, s = seg_b[ib, 0], seg_b[ib, 1] - seg_b[ib, 0]
    denom = r[:, 0] * s[:, 1] - r[:, 1] * s[:, 0]
    ok = np.abs(denom) > 1e-12
    qp = q - p
    with np.errstate(divide="ignore", invalid="ignore"):
        ta = np.where(ok, (qp[:, 0] * s[:, 1] - qp[:, 1] * s[:, 0]) / denom, -1.0)
        tb = np.where(ok, (qp[:, 0] * r[:, 1] - qp[:, 1] * r[:, 0]) / denom, -1.0)
    keep = ok & (ta > eps) & (ta < 1 - eps) & (tb > eps) & (tb < 1 - eps)
    return ia[keep], ib[keep], ta[keep], tb[keep]


def split_edges(edges: EdgeTable, idx: np.ndarray, frac: np.ndarray, node: np.ndarray, *,
                flags_after: np.ndarray | None = None) -> EdgeTable:
    """Split edges at interior points and return the new table (other edges unchanged).

    Parameters
    ----------
    edges
        The table.
    idx, frac, node
        For each split point: the edge it lies on, its position along the edge (0..1, exclusive)
        and the id of the node placed there.
    flags_after
        Flag bits to add to the piece that *starts* at each split point (e.g. ``BRIDGE`` on the
        piece between the two ends of a bridge).
    """
    if len(idx) == 0:
        return edges
    extra = np.zeros(len(idx), np.int16) if flags_after is None else flags_after.astype(np.int16)
    touched = np.unique(idx)
    n_t = len(touched)
    e = np.concatenate([touched, idx, touched])
    p = np.concatenate([np.zeros(n_t), frac, np.ones(n_t)])
    nd = np.concatenate([edges.u[touched], node, edges.v[touched]])
    fl = np.concatenate([np.zeros(n_t, np.int16), extra, np.zeros(n_t, np.int16)])
    order = np.lexsort((p, e))
    e, p, nd, fl = e[order], p[order], nd[order], fl[order]
    cont = e[1:] == e[:-1]
    parent = e[:-1][cont]
    pieces = EdgeTable(
        u=nd[:-1][cont], v=nd[1:][cont], line=edges.line[parent],
        # keep the order along the line: original seq plus the piece's start (< 1 apart)
        seq=edges.seq[parent] + 0.999 * p[:-1][cont], hw=edges.hw[parent],
        flags=(edges.flags[parent] | fl[:-1][cont]).astype(np.int16), name=edges.name[parent],
    )
    keep = np.ones(len(edges), bool)
    keep[touched] = False
    return edges.take(keep).concat(pieces)


def _ways(edges: EdgeTable) -> tuple[np.ndarray, np.ndarray]:
    """Group edges into ways: consecutive edges of one line, contiguous and with equal tags.

    Returns the edge order and, per ordered edge, its way number.
    """
    order = np.lexsort((edges.seq, edges.line))
    e = edges.take(order)
    brk = np.ones(len(e), bool)
    brk[1:] = ((e.line[1:] != e.line[:-1]) | (e.u[1:] != e.v[:-1]) | (e.hw[1:] != e.hw[:-1])
               | (e.flags[1:] != e.flags[:-1]) | (e.name[1:] != e.name[:-1]))
    return order, np.cumsum(brk) - 1


def _way_tags(hw: int, flags: int, name: str | None, extra: Sequence[tuple[str, str]]) -> str:
    tags = [("highway", HIGHWAY[hw])]
    if name:
        tags.append(("name", name))
    if flags & BRIDGE:
        tags += [("bridge", "yes"), ("layer", "1")]
    if flags & TUNNEL:
        tags += [("tunnel", "yes"), ("layer", "-1")]
    if flags & FOOT_NO:
        tags.append(("foot", "no"))
    if flags & ONEWAY:
        tags.append(("oneway", "yes"))
    if flags & PRIVATE:
        tags.append(("access", "private"))
    tags += extra
    return "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags)


def osm_xml(lonlat: np.ndarray, edges: EdgeTable, names: Sequence[str], *,
            other_ways: Sequence[tuple[np.ndarray, Sequence[tuple[str, str]]]],
            generator: str, note: str, extra_way_tags: Sequence[tuple[str, str]]) -> str:
    """Return the network as OSM XML text (deterministic).

    Parameters
    ----------
    lonlat
        ``(n, 2)`` WGS84 coordinates of every node; node ``i`` gets OSM id ``i + 1``.
    edges
        The street edges; grouped into ways by :func:`_ways`.
    names
        Street names indexed by ``edges.name``.
    other_ways
        Further ways as (node indices, tags), e.g. canals.
    generator, note
        The ``generator`` attribute of ``<osm>`` and the text of its ``<note>``.
    extra_way_tags
        Tags added to every street way (e.g. ``source=synthetic``).
    """
    used = np.zeros(len(lonlat), bool)
    used[edges.u] = used[edges.v] = True
    for refs, _ in other_ways:
        used[refs] = True
    ids = np.flatnonzero(used)
    lo = lonlat[ids]
    (w, s), (e, n) = lo.min(axis=0), lo.max(axis=0)
    out = [
        "<?xml version='1.0' encoding='UTF-8'?>",
        f'<osm version="0.6" generator={quoteattr(generator)} upload="false">',
        f"<note>{note}</note>",
        f'<bounds minlat="{s:.7f}" minlon="{w:.7f}" maxlat="{n:.7f}" maxlon="{e:.7f}"/>',
    ]
    out += [f'<node id="{i + 1}" lat="{la:.7f}" lon="{ln:.7f}"/>'
            for i, ln, la in zip(ids.tolist(), lo[:, 0].tolist(), lo[:, 1].tolist(), strict=True)]
    order, way_no = _ways(edges)
    u, v = edges.u[order] + 1, edges.v[order] + 1
    starts = np.flatnonzero(np.r_[True, way_no[1:] != way_no[:-1]])
    ends = np.r_[starts[1:], len(order)]
    hw, fl, nm = edges.hw[order], edges.flags[order], edges.name[order]
    way_id = 0
    u_l, v_l = u.tolist(), v.tolist()
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        way_id += 1
        way_refs = [u_l[a], *v_l[a:b]]
        name = names[nm[a]] if nm[a] >= 0 else None
        out.append(f'<way id="{way_id}">' + "".join(f'<nd ref="{r}"/>' for r in way_refs)
                   + _way_tags(int(hw[a]), int(fl[a]), name, extra_way_tags) + "</way>")
    for refs_arr, tags in other_ways:
        way_id += 1
        out.append(f'<way id="{way_id}">'
                   + "".join(f'<nd ref="{r + 1}"/>' for r in refs_arr.tolist())
                   + "".join(f"<tag k={quoteattr(k)} v={quoteattr(v)}/>" for k, v in tags)
                   + "</way>")
    out.append("</osm>\n")
    return "\n".join(out)
