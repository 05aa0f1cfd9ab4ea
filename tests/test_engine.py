"""Unit tests of the accessibility engine on tiny graphs built in the test itself."""

from __future__ import annotations

import logging
import math
import pickle

import geopandas as gpd
import networkx as nx
import numpy as np
import osmnx as ox
import pandas as pd
import pytest
import shapely

from qyx_geo._errors import (
    ColumnError,
    CoordinateError,
    DataFileError,
    DuplicateIdError,
    NetworkError,
    SettingsError,
)
from qyx_geo.engine import (
    NetworkArrays,
    build_arrays,
    catchment_matrix,
    nearest_facility,
    nearest_facility_nodes,
    resolve_speed,
    snap_points,
    two_step_fca,
)
from qyx_geo.settings import Settings

CRS = "EPSG:4549"
X0, Y0 = 500_000.0, 3_350_000.0


def graph(nodes: dict[int, tuple[float, float]], edges: list[tuple[int, int, float]],
          *, both_ways: bool = True) -> nx.MultiDiGraph:
    G = nx.MultiDiGraph(crs=CRS)
    for n, (x, y) in nodes.items():
        G.add_node(n, x=X0 + x, y=Y0 + y)
    for a, b, length in edges:
        G.add_edge(a, b, length=length)
        if both_ways:
            G.add_edge(b, a, length=length)
    return G


def pts(xy: dict[str, tuple[float, float]], crs: str = CRS, **cols: list) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols or None, geometry=[shapely.Point(X0 + x, Y0 + y)
                                                    for x, y in xy.values()],
                            index=pd.Index(list(xy), name="id"), crs=crs)


@pytest.fixture
def street() -> NetworkArrays:
    """A 1 km street 1-2 with a 500 m side street 2-3."""
    return build_arrays(graph({1: (0, 0), 2: (1000, 0), 3: (1000, 500)},
                              [(1, 2, 1000.0), (2, 3, 500.0)]))


# ------------------------------------------------------------------------------ build_arrays


def test_build_arrays_from_osmnx_projected_graph():
    G = nx.MultiDiGraph(crs="EPSG:4326")
    G.add_node(11, x=121.24, y=30.17)
    G.add_node(12, x=121.25, y=30.17)
    G.add_node(13, x=121.25, y=30.18)
    G.add_edge(11, 12)
    G.add_edge(12, 11)
    G.add_edge(12, 13, oneway=True)  # one-way: still walkable both ways
    G.add_edge(13, 11, geometry=shapely.LineString([(121.25, 30.18), (121.24, 30.18),
                                                    (121.24, 30.17)]))
    G = ox.distance.add_edge_lengths(G)
    P = ox.project_graph(G, to_crs=CRS)
    net = build_arrays(P)

    assert net.crs == CRS and net.n_nodes == 3 and net.n_edges == 3  # 11-12 merged
    assert list(net.node_ids) == [11, 12, 13] and net.node_ids.dtype == np.int64
    adj = net.adjacency.toarray()
    np.testing.assert_array_equal(adj, adj.T)
    i13, i12 = net.node_positions([13, 12])
    assert adj[i12, i13] == pytest.approx(P.edges[12, 13, 0]["length"])
    # the bent 13-11 street keeps its geometry, oriented from its u to its v end
    k = int(np.flatnonzero(net.edge_length_m == P.edges[13, 11, 0]["length"])[0])
    geom = net.edge_geometry[k]
    assert len(geom.coords) == 3
    start = shapely.Point(net.x[net.edge_u[k]], net.y[net.edge_u[k]])
    assert shapely.Point(geom.coords[0]).distance(start) < 1e-6
    assert net.node_positions([999])[0] == -1


def test_parallel_streets_keep_both_and_adjacency_takes_shorter():
    net = build_arrays(graph({1: (0, 0), 2: (100, 0)}, [(1, 2, 100.0), (1, 2, 180.0)]))
    assert sorted(net.edge_length_m) == [100.0, 180.0]
    assert net.adjacency[0, 1] == 100.0 and net.adjacency.nnz == 2


def test_zero_length_edge_is_an_edge_not_a_gap():
    net = build_arrays(graph({1: (0, 0), 2: (0, 0), 3: (100, 0)}, [(1, 2, 0.0), (2, 3, 100.0)]))
    fac = pts({"f": (0, 0)})
    out = nearest_facility_nodes(net, fac)
    assert out.loc[3, "dist_m"] == pytest.approx(100.0)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda g: g.graph.pop("crs"), "project it first"),
        (lambda g: g.graph.update(crs="EPSG:4326"), "not a projected CRS in metres"),
        (lambda g: g.edges[1, 2, 0].pop("length"), "length"),
        (lambda g: g.nodes[1].pop("x"), "'x'/'y'"),
    ],
)
def test_build_arrays_rejects_unusable_graphs(mutate, match):
    G = graph({1: (0, 0), 2: (100, 0)}, [(1, 2, 100.0)])
    mutate(G)
    with pytest.raises(NetworkError, match=match):
        build_arrays(G)


def test_build_arrays_rejects_empty_graph():
    with pytest.raises(NetworkError, match="no nodes"):
        build_arrays(nx.MultiDiGraph(crs=CRS))


def test_arrays_pickle_round_trip(street):
    street.edge_tree  # noqa: B018 - build the cached index before pickling
    back = pickle.loads(pickle.dumps(street))
    assert "edge_tree" not in back.__dict__
    np.testing.assert_array_equal(back.adjacency.toarray(), street.adjacency.toarray())
    home = pts({"h": (400, 30)})
    pd.testing.assert_frame_equal(snap_points(back, home, max_snap_m=300),
                                  snap_points(street, home, max_snap_m=300))


# ------------------------------------------------------------------------------ snapping


def test_snaps_to_nearest_edge_not_node(street):
    out = snap_points(street, pts({"mid": (500, 40), "side": (1020, 250)}), max_snap_m=300)
    assert list(out.columns) == ["edge", "u", "v", "offset_m", "snap_dist_m", "too_far"]
    mid, side = out.loc["mid"], out.loc["side"]
    assert mid["snap_dist_m"] == pytest.approx(40.0) and mid["offset_m"] == pytest.approx(500.0)
    assert side["snap_dist_m"] == pytest.approx(20.0) and side["offset_m"] == pytest.approx(250.0)
    assert street.edge_length_m[side["edge"]] == 500.0
    assert not out["too_far"].any()


def test_offset_follows_the_length_attribute_not_the_drawn_length():
    # a street drawn 100 m long but walked as 150 m (e.g. a footbridge ramp)
    net = build_arrays(graph({1: (0, 0), 2: (100, 0)}, [(1, 2, 150.0)]))
    out = snap_points(net, pts({"p": (40, 5)}), max_snap_m=300)
    assert out.loc["p", "offset_m"] == pytest.approx(60.0)


def test_points_too_far_are_flagged_logged_and_not_used(street, caplog):
    homes = pts({"near": (300, 10), "far": (300, 400)})
    with caplog.at_level(logging.WARNING, logger="qyx_geo._snap"):
        out = nearest_facility(street, pts({"f": (0, 0)}), homes, max_snap_m=300)
    assert "'far'" in caplog.text and "max_snap_m" in caplog.text
    assert out.loc["far", "too_far"] and math.isnan(out.loc["far", "minutes"])
    assert pd.isna(out.loc["far", "facility_id"])
    assert out.loc["far", "snap_dist_m"] == pytest.approx(400.0)
    assert out.loc["near", "dist_m"] == pytest.approx(310.0)


def test_snapping_reprojects_points(street):
    lonlat = pts({"p": (500, 40)}).to_crs("EPSG:4326")
    out = snap_points(street, lonlat, max_snap_m=300)
    assert out.loc["p", "offset_m"] == pytest.approx(500.0, abs=1e-4)
    assert out.index.equals(lonlat.index)


def test_snapping_validates_points(street):
    good = pts({"a": (0, 0)})
    with pytest.raises(CoordinateError, match="no CRS"):
        snap_points(street, good.set_crs(None, allow_override=True), max_snap_m=300)
    with pytest.raises(DuplicateIdError, match="'a'"):
        snap_points(street, pd.concat([good, good]), max_snap_m=300)
    poly = good.set_geometry([shapely.box(X0, Y0, X0 + 1, Y0 + 1)], crs=CRS)
    with pytest.raises(CoordinateError, match="representative_point"):
        snap_points(street, poly, max_snap_m=300)
    with pytest.raises(SettingsError, match="max_snap_m"):
        snap_points(street, good, max_snap_m=0)
    with pytest.raises(TypeError, match="GeoDataFrame"):
        snap_points(street, pd.DataFrame({"x": [1]}), max_snap_m=300)


# ------------------------------------------------------------------------------ nearest facility


def test_point_on_the_facility_edge_takes_the_direct_way():
    # a long street with a loop behind node 2: via the ends would be far longer
    net = build_arrays(graph({1: (0, 0), 2: (2000, 0)}, [(1, 2, 2000.0)]))
    fac = pts({"f": (900, 10)})
    homes = pts({"h": (1100, -20), "g": (0, 0)})
    out = nearest_facility(net, fac, homes)
    assert out.loc["h", "dist_m"] == pytest.approx(10 + 200 + 20)
    assert out.loc["g", "dist_m"] == pytest.approx(10 + 900)
    assert out.loc["h", "facility_id"] == "f"


def test_two_facilities_nearest_and_minutes_by_mode(street):
    fac = pts({"west": (0, 0), "north": (1000, 500)})
    homes = pts({"a": (200, 0), "b": (1000, 350)})
    walk = nearest_facility(street, fac, homes)
    assert list(walk["facility_id"]) == ["west", "north"]
    assert walk.loc["a", "minutes"] == pytest.approx(200 / (4000 / 60))
    elderly = nearest_facility(street, fac, homes, settings=Settings(mode="elderly_walk"))
    assert elderly.loc["b", "minutes"] == pytest.approx(150 / 50)
    cycle = nearest_facility(street, fac, homes, mode="cycle")
    assert cycle.loc["b", "minutes"] == pytest.approx(150 / 250)
    fixed = nearest_facility(street, fac, homes, speed_m_per_min=100.0)
    assert fixed.loc["a", "minutes"] == pytest.approx(2.0)


def test_cutoff_gives_inf_and_no_facility(street):
    fac = pts({"f": (0, 0)})
    homes = pts({"close": (600, 0), "far": (1000, 400)})
    out = nearest_facility(street, fac, homes, cutoff_minutes=15)  # 1,000 m on foot
    assert out.loc["close", "dist_m"] == pytest.approx(600.0)
    assert math.isinf(out.loc["far", "minutes"]) and pd.isna(out.loc["far", "facility_id"])


def test_no_usable_facility_leaves_everyone_unreached(street):
    out = nearest_facility(street, pts({"f": (0, 5000)}), pts({"h": (10, 0)}))
    assert math.isinf(out.loc["h", "dist_m"])
    empty = pts({}).iloc[:0]
    assert nearest_facility(street, empty, pts({"h": (10, 0)}))["dist_m"].map(math.isinf).all()


def test_inputs_not_mutated_and_index_kept(street):
    fac = pts({"f": (0, 0)}, name=["x"])
    homes = pts({"b": (10, 0), "a": (20, 0)}, pop=[1, 2])
    before = (fac.copy(), homes.copy())
    out = nearest_facility(street, fac, homes)
    pd.testing.assert_frame_equal(fac, before[0])
    pd.testing.assert_frame_equal(homes, before[1])
    assert list(out.index) == ["b", "a"] and out.index.name == "id"


def test_reusing_a_snap_table_gives_the_same_answer(street):
    fac = pts({"f": (0, 0), "g": (1000, 500)})
    homes = pts({"a": (10, 30), "b": (990, 20)})
    table = snap_points(street, homes, max_snap_m=300)
    pd.testing.assert_frame_equal(nearest_facility(street, fac, homes),
                                  nearest_facility(street, fac, table))


def test_bad_speed_and_cutoff(street):
    fac, homes = pts({"f": (0, 0)}), pts({"h": (5, 0)})
    with pytest.raises(SettingsError, match="speed_m_per_min"):
        nearest_facility(street, fac, homes, speed_m_per_min=-1)
    with pytest.raises(SettingsError, match="cutoff_minutes"):
        nearest_facility(street, fac, homes, cutoff_minutes=0)
    with pytest.raises(SettingsError, match="mode"):
        resolve_speed(mode="car")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ catchments


def test_catchment_matrix_sparse_with_explicit_zero(street):
    src = pts({"s1": (0, 0), "s2": (1000, 500)})
    tgt = pts({"t1": (0, 0), "t2": (700, 0), "t3": (1000, 100)})
    m = catchment_matrix(street, src, tgt, cutoff_m=800.0)
    assert m.shape == (2, 3)
    row0 = dict(zip(m[0].indices, m[0].data, strict=True))
    assert row0 == {0: 0.0, 1: pytest.approx(700.0)}  # t1 at the source itself: stored 0 m
    row1 = dict(zip(m[1].indices, m[1].data, strict=True))
    assert row1 == {1: pytest.approx(800.0), 2: pytest.approx(400.0)}
    tiny = catchment_matrix(street, src, tgt, cutoff_m=800.0, batch_mib=1e-9)  # one row a batch
    np.testing.assert_allclose(tiny.toarray(), m.toarray())
    with pytest.raises(SettingsError, match="finite"):
        catchment_matrix(street, src, tgt, cutoff_m=math.inf)


# ------------------------------------------------------------------------------ 2SFCA


def test_two_step_fca_by_hand(street):
    fac = pts({"A": (0, 0), "B": (1000, 500)}, capacity=[10.0, 30.0])
    dem = pts({"p": (100, 0), "q": (1000, 0), "r": (1000, 400), "off": (0, 900)},
              pop_0_3=[100.0, 200.0, 100.0, 50.0])
    got = two_step_fca(street, fac, dem, demand_col="pop_0_3", cutoff_minutes=9,
                       speed_m_per_min=100.0)  # 900 m catchments
    # A reaches p (100 m) only -> 10/100; B reaches q (500 m) and r (100 m) -> 30/300
    assert got.name == "places_per_1000"
    assert got.loc["p"] == pytest.approx(1000 * 10 / 100)
    assert got.loc["q"] == pytest.approx(1000 * 30 / 300)
    assert got.loc["r"] == pytest.approx(1000 * 30 / 300)
    assert math.isnan(got.loc["off"])  # 900 m from any street: not assessed
    # places are conserved: the demand-weighted sum gives back every reaching facility's capacity
    valid = got.notna()
    assert (got[valid] * dem.loc[valid, "pop_0_3"]).sum() / 1000 == pytest.approx(40.0)


def test_two_step_fca_validates_columns(street):
    fac = pts({"A": (0, 0)}, capacity=[5.0])
    dem = pts({"p": (100, 0)}, pop=[1.0])
    with pytest.raises(ColumnError, match="pop_0_3"):
        two_step_fca(street, fac, dem, demand_col="pop_0_3", cutoff_minutes=15)
    with pytest.raises(DataFileError, match="'A'"):
        two_step_fca(street, fac.assign(capacity=[-1.0]), dem, demand_col="pop",
                     cutoff_minutes=15)


def test_catchment_matrix_is_symmetric_whichever_side_is_searched(street):
    few = pts({"s1": (0, 10), "s2": (1000, 480)})
    many = pts({f"t{k}": (100.0 * k, 20.0 * (k % 3)) for k in range(11)})
    forward = catchment_matrix(street, few, many, cutoff_m=700.0)  # searched from `few`
    backward = catchment_matrix(street, many, few, cutoff_m=700.0)  # also from `few`, flipped
    np.testing.assert_allclose(forward.toarray(), backward.T.toarray())
    np.testing.assert_array_equal(forward.indptr, backward.T.tocsr().indptr)
    assert forward.shape == (2, 11) and forward.nnz > 0


def test_module_docstring_example_runs():
    import doctest

    import qyx_geo.engine

    result = doctest.testmod(qyx_geo.engine)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("ids", [["f0", "f1", "f2"], [10, 11, 12], ["f0", 11, 12.5]])
@pytest.mark.parametrize("misses", [True, False])
def test_facility_ids_column_as_pandas_would_infer_it(ids, misses):
    from qyx_geo.engine import _facility_ids

    src = np.array([2, -9999, 0, -1, 1, 2]) if misses else np.array([2, 0, 1, 1])
    # what the engine used to build: an object array, left to pandas to infer (str for strings)
    want = pd.Series(np.array([ids[k] if k >= 0 else None for k in src], dtype=object),
                     name="facility_id")
    got = pd.Series(_facility_ids(pd.Index(ids), src), name="facility_id")
    pd.testing.assert_series_equal(got, want)
    assert got.isna().tolist() == (src < 0).tolist()
