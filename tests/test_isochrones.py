"""Isochrones: partial edges, nesting, per-facility vs dissolved, invariance."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from _street_grids import CRS, X0, Y0, city_net, fac, net_of

from qyx_geo._errors import SettingsError
from qyx_geo.isochrones import _substring, isochrones


def band_area(length_m: float, radius_m: float, quad_segs: int = 4) -> float:
    """Area of a straight band with round caps as GEOS draws it (inscribed polygon caps)."""
    n = 4 * quad_segs
    return 2 * radius_m * length_m + 0.5 * n * radius_m**2 * math.sin(2 * math.pi / n)


@pytest.fixture
def grid():
    # a 3 x 3 grid of 400 m blocks
    nodes = {(i, j): (400.0 * i, 400.0 * j) for i in range(3) for j in range(3)}
    edges = [((i, j), (i + 1, j)) for i in range(2) for j in range(3)]
    edges += [((i, j), (i, j + 1)) for i in range(3) for j in range(2)]
    return net_of(nodes, edges)


def test_partial_edge_from_a_facility_mid_street():
    net = net_of({1: (0, 0), 2: (1000, 0)}, [(1, 2)])
    iso = isochrones(net, fac({"f": (200, 0)}), minutes=(5,), speed_m_per_min=60,
                     street_width_m=20, method="exact")
    # 300 m each way from offset 200: the stretch [0, 500] of the street
    poly = iso.geometry.iloc[0]
    assert poly.area == pytest.approx(band_area(500.0, 10.0), rel=1e-9)
    assert poly.bounds[0] == pytest.approx(X0 - 10) and poly.bounds[2] == pytest.approx(X0 + 510)


def test_partial_edges_from_both_ends_and_whole_edges(grid):
    # facility at the centre node: 10 min at 60 m/min = 600 m -> 4 whole spokes + 200 m beyond
    iso = isochrones(grid, fac({"f": (400, 400)}), minutes=(10,), speed_m_per_min=60,
                     street_width_m=2, method="exact")
    poly = iso.geometry.iloc[0]
    reach = shapely.MultiLineString(
        [[(400, 400), (0, 400)], [(400, 400), (800, 400)], [(400, 400), (400, 0)],
         [(400, 400), (400, 800)], [(0, 400), (0, 200)], [(0, 400), (0, 600)],
         [(800, 400), (800, 200)], [(800, 400), (800, 600)], [(400, 0), (200, 0)],
         [(400, 0), (600, 0)], [(400, 800), (200, 800)], [(400, 800), (600, 800)]])
    expected = shapely.affinity.translate(reach, X0, Y0).buffer(1.0)
    # round caps are drawn as chords starting at different angles: allow a sliver of that size
    assert poly.symmetric_difference(expected).area < 1e-4 * expected.area
    # the corners (diagonal, 800 m away over the network) are outside: not a convex hull
    assert not poly.contains(shapely.Point(X0, Y0))
    assert not poly.contains(shapely.Point(X0 + 200, Y0 + 200))


def test_per_facility_rows_and_dissolved_union(grid):
    f = fac({"a": (0, 0), "b": (800, 800), "lost": (5000, 5000)})
    per = isochrones(grid, f, minutes=(5, 10), speed_m_per_min=60, dissolve=False,
                     max_snap_m=300)
    assert list(per.columns) == ["facility_id", "minutes", "dist_m", "geometry"]
    assert list(per["facility_id"]) == ["a", "a", "b", "b"]  # 'lost' is off the network
    assert list(per["dist_m"]) == [300.0, 600.0, 300.0, 600.0]
    dis = isochrones(grid, f, minutes=(5, 10), speed_m_per_min=60, max_snap_m=300,
                     method="exact")
    for minutes in (5, 10):
        union = shapely.union_all(per.loc[per["minutes"] == minutes].geometry.to_numpy())
        got = dis.loc[dis["minutes"] == minutes].geometry.iloc[0]
        assert got.symmetric_difference(union).area < 1e-6 * got.area
    assert per.crs == CRS and dis.attrs["street_width_m"] == 30.0


def test_facility_beyond_reach_gives_empty_polygon(grid):
    f = fac({"near": (0, 0), "offset": (200, 150)})  # 150 m from the street, 2 min = 120 m
    per = isochrones(grid, f, minutes=(2,), speed_m_per_min=60, dissolve=False)
    assert per.geometry.iloc[1].is_empty and not per.geometry.iloc[0].is_empty


def test_invariant_to_order_and_crs(grid):
    f = fac({"a": (0, 10), "b": (790, 420), "c": (400, 820)})
    base = isochrones(grid, f, minutes=(5, 15), speed_m_per_min=40, method="exact")
    shuffled = isochrones(grid, f.iloc[[2, 0, 1]], minutes=(15, 5), speed_m_per_min=40,
                          method="exact")
    lonlat = isochrones(grid, f.to_crs("EPSG:4326"), minutes=(5, 15), speed_m_per_min=40,
                        method="exact")
    for other in (shuffled, lonlat):
        for a, b in zip(base.geometry, other.geometry, strict=True):
            assert a.symmetric_difference(b).area < 1e-6 * a.area
    assert list(shuffled["minutes"]) == [5.0, 15.0]


def test_substring_vectorised_matches_shapely_ops():
    from shapely.ops import substring

    lines = np.array([shapely.LineString([(0, 0), (3, 0), (3, 4)]),
                      shapely.LineString([(0, 0), (10, 0)]),
                      shapely.LineString([(1, 1), (1, 1)])], dtype=object)
    t0, t1 = np.array([0.2, 0.0, 0.0]), np.array([0.9, 0.35, 1.0])
    got = _substring(lines, t0, t1)
    for g, line, a, b in zip(got, lines, t0, t1, strict=True):
        want = substring(line, a, b, normalized=True)
        assert g.hausdorff_distance(want) < 1e-9
        assert g.length == pytest.approx(want.length)


def test_validation(grid):
    f = fac({"a": (0, 0)})
    with pytest.raises(SettingsError, match="minutes"):
        isochrones(grid, f, minutes=())
    with pytest.raises(SettingsError, match="minutes"):
        isochrones(grid, f, minutes=(5, -1))
    with pytest.raises(SettingsError, match="street_width_m"):
        isochrones(grid, f, street_width_m=0, method="exact")


@pytest.fixture
def city():
    return city_net()


@pytest.mark.parametrize("tile_m", [130.0, 250.0, 333.3])
def test_tiled_union_equals_one_union(city, tile_m, monkeypatch):
    import qyx_geo.isochrones as iso_module

    f = fac({"a": (150, 420), "b": (830, 260), "c": (500, 1010)})
    whole = isochrones(city, f, minutes=(4, 8, 12), speed_m_per_min=60, tile_m=math.inf,
                       workers=1, method="exact")
    monkeypatch.setattr(iso_module, "TILE_MIN_POLYGONS", 0)
    for workers in (1, 2):
        tiled = isochrones(city, f, minutes=(4, 8, 12), speed_m_per_min=60, tile_m=tile_m,
                           workers=workers, method="exact")
        for a, b in zip(whole.geometry, tiled.geometry, strict=True):
            assert b.is_valid and not b.is_empty
            assert a.symmetric_difference(b).area < 1e-6 * a.area
            # merged across the tile sides: no more pieces than the one-piece union
            assert shapely.get_num_geometries(b) == shapely.get_num_geometries(a)
    per = isochrones(city, f, minutes=(4, 12), speed_m_per_min=60, dissolve=False,
                     tile_m=tile_m)
    ref = isochrones(city, f, minutes=(4, 12), speed_m_per_min=60, dissolve=False,
                     tile_m=math.inf)
    for a, b in zip(ref.geometry, per.geometry, strict=True):
        assert a.symmetric_difference(b).area < 1e-6 * a.area


def test_tiling_validation(grid):
    f = fac({"a": (0, 0)})
    with pytest.raises(SettingsError, match="tile_m"):
        isochrones(grid, f, tile_m=0, method="exact")
    with pytest.raises(SettingsError, match="workers"):
        isochrones(grid, f, workers=0, method="exact")
