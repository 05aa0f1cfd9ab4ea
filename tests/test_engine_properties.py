"""Property tests: the engine's distances equal networkx's on random graphs and points.

The reference is built independently of the engine's virtual-node trick: every snapped point is
inserted *into* its street (the edge is split at the points' offsets) and joined to its own node by
its snap distance, then networkx's Dijkstra runs on that graph.
"""

from __future__ import annotations

import itertools
import math

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qyx_geo.engine import (
    build_arrays,
    catchment_matrix,
    nearest_facility,
    nearest_facility_nodes,
    snap_points,
)
from qyx_geo.isochrones import isochrones

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_350_000.0  # inside EPSG:4549's zone (Cixi is near 121.3E, 30.2N)
TOL_M = 1e-6

coord = st.floats(0.0, 1000.0, allow_nan=False, allow_infinity=False)


@st.composite
def random_graph(draw: st.DrawFn) -> nx.MultiDiGraph:
    n = draw(st.integers(2, 9))
    xy = draw(st.lists(st.tuples(coord, coord), min_size=n, max_size=n))
    G = nx.MultiDiGraph(crs=CRS)
    for i, (x, y) in enumerate(xy):
        G.add_node(7000 + i, x=X0 + x, y=Y0 + y)
    edges = draw(st.lists(
        st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.floats(1.0, 1.6),
                  st.booleans()),
        min_size=1, max_size=3 * n))
    for a, b, factor, both_ways in edges:
        (xa, ya), (xb, yb) = xy[a], xy[b]
        length = max(math.hypot(xb - xa, yb - ya), 1.0) * factor
        G.add_edge(7000 + a, 7000 + b, length=length)
        if both_ways:
            G.add_edge(7000 + b, 7000 + a, length=length)
    return G


def points(draw: st.DrawFn, prefix: str, lo: int, hi: int) -> gpd.GeoDataFrame:
    xy = draw(st.lists(st.tuples(st.floats(-60.0, 1060.0), st.floats(-60.0, 1060.0)),
                       min_size=lo, max_size=hi))
    return gpd.GeoDataFrame(geometry=[shapely.Point(X0 + x, Y0 + y) for x, y in xy],
                            index=[f"{prefix}{i}" for i in range(len(xy))], crs=CRS)


def reference_graph(G, net, snaps: dict[str, object]) -> nx.MultiGraph:  # noqa: N803
    """Undirected copy of G with every snapped point spliced into its edge."""
    H = nx.MultiGraph()
    H.add_nodes_from(G.nodes)
    for a, b, d in G.edges(data=True):
        H.add_edge(a, b, length=d["length"])
    by_edge: dict[int, list[tuple[float, object]]] = {}
    for kind, table in snaps.items():
        for pid, row in table.iterrows():
            node = (kind, pid)
            H.add_edge(("pt", kind, pid), node, length=row["snap_dist_m"])
            by_edge.setdefault(int(row["edge"]), []).append((row["offset_m"], ("pt", kind, pid)))
    for e, on_edge in by_edge.items():
        a, b = net.node_ids[net.edge_u[e]], net.node_ids[net.edge_v[e]]
        length = net.edge_length_m[e]
        key = next(k for k, d in H.get_edge_data(a, b).items()
                   if round(d["length"], 3) == round(length, 3))
        H.remove_edge(a, b, key)
        chain = [(0.0, a), *sorted(on_edge, key=lambda t: t[0]), (length, b)]
        for (o1, n1), (o2, n2) in itertools.pairwise(chain):
            H.add_edge(n1, n2, length=o2 - o1)
    return H


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_nearest_facility_equals_networkx(data: st.DataObject) -> None:
    G = data.draw(random_graph())
    net = build_arrays(G)
    fac = points(data.draw, "f", 1, 4)
    dem = points(data.draw, "d", 1, 8)
    cutoff_min = data.draw(st.one_of(st.none(), st.floats(1.0, 40.0)))
    speed = 66.0
    fsnap = snap_points(net, fac, max_snap_m=1e6)
    dsnap = snap_points(net, dem, max_snap_m=1e6)
    got = nearest_facility(net, fsnap, dsnap, speed_m_per_min=speed, cutoff_minutes=cutoff_min,
                           max_snap_m=1e6)

    H = reference_graph(G, net, {"f": fsnap, "d": dsnap})
    per_fac = {f: nx.single_source_dijkstra_path_length(H, ("f", f), weight="length")
               for f in fac.index}
    cutoff_m = math.inf if cutoff_min is None else cutoff_min * speed
    multi = nx.multi_source_dijkstra_path_length(H, {("f", f) for f in fac.index},
                                                 weight="length")
    for pid in dem.index:
        ref = multi.get(("d", pid), math.inf)
        ref = ref if ref <= cutoff_m else math.inf
        row = got.loc[pid]
        if math.isinf(ref):
            assert math.isinf(row["dist_m"]) and pd.isna(row["facility_id"])
            continue
        assert row["dist_m"] == pytest.approx(ref, abs=TOL_M)
        assert row["minutes"] == pytest.approx(ref / speed, abs=TOL_M)
        # the chosen facility really is at that distance (ties may pick either)
        assert per_fac[row["facility_id"]][("d", pid)] == pytest.approx(ref, abs=TOL_M)

    # every node: one multi-source pass equals networkx's
    nodes = nearest_facility_nodes(net, fsnap, max_snap_m=1e6)
    for node, dist in nodes["dist_m"].items():
        assert dist == pytest.approx(multi.get(node, math.inf), abs=TOL_M)

    # catchments: sparse matrix entries are exactly the pairs within the cutoff
    limit = 400.0
    mat = catchment_matrix(net, fsnap, dsnap, cutoff_m=limit, max_snap_m=1e6).toarray()
    struct = catchment_matrix(net, fsnap, dsnap, cutoff_m=limit, max_snap_m=1e6)
    stored = np.zeros(mat.shape, dtype=bool)
    stored[np.repeat(np.arange(struct.shape[0]), np.diff(struct.indptr)), struct.indices] = True
    for i, f in enumerate(fac.index):
        for j, pid in enumerate(dem.index):
            ref = per_fac[f].get(("d", pid), math.inf)
            if ref <= limit - TOL_M:
                assert stored[i, j]
                assert mat[i, j] == pytest.approx(ref, abs=TOL_M)
            elif ref > limit + TOL_M:
                assert not stored[i, j]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_isochrones_nest_and_are_reachable(data: st.DataObject) -> None:
    G = data.draw(random_graph())
    net = build_arrays(G)
    fac = points(data.draw, "f", 1, 3)
    speed = 50.0
    iso = isochrones(net, fac, minutes=(5.0, 10.0), speed_m_per_min=speed, street_width_m=10.0,
                     max_snap_m=1e6, method="exact")
    small = iso.loc[iso["minutes"] == 5.0].geometry.iloc[0]
    large = iso.loc[iso["minutes"] == 10.0].geometry.iloc[0]
    # buffers approximate round caps with chords: allow the chord gap of a 5 m radius
    tol = 5.0 * (1 - math.cos(math.pi / 16)) + 1e-6  # quad_segs=4
    assert small.is_empty or large.buffer(tol).covers(small)
    # every demand point within 10 minutes lies inside the 10-minute band
    dem = points(data.draw, "d", 1, 6)
    dsnap = snap_points(net, dem, max_snap_m=1e6)
    onto = gpd.GeoSeries(
        shapely.line_interpolate_point(net.edge_geometry[dsnap["edge"].to_numpy()],
                                       dsnap["offset_m"].to_numpy()
                                       / np.maximum(net.edge_length_m[dsnap["edge"].to_numpy()],
                                                    1e-12),
                                       normalized=True), crs=CRS)
    # as a street location: the snap stub counts as walking, so use zero snap distance
    dsnap0 = dsnap.assign(snap_dist_m=0.0)
    t = nearest_facility(net, fac, dsnap0, speed_m_per_min=speed, max_snap_m=1e6)["minutes"]
    inside = onto[(t < 10.0 - 1e-6).to_numpy()]
    assert all(large.buffer(1e-6).covers(p) for p in inside)
    shares = [float(onto.within(poly.buffer(1e-6)).mean()) for poly in (small, large)]
    assert 0.0 <= shares[0] <= shares[1] <= 1.0
