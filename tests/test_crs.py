"""Tests of qyx_geo.crs against prcoords, an independent implementation used only here."""

from __future__ import annotations

import doctest
import math
import warnings

import geopandas as gpd
import numpy as np
import prcoords
import pyproj
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from qyx_geo import crs
from qyx_geo._errors import CoordinateError

# Cixi county with a generous margin, and the whole of China's GCJ-02 box for the peer check.
CIXI_LON = st.floats(120.9, 121.6)
CIXI_LAT = st.floats(29.9, 30.5)
CHINA_LON = st.floats(73.0, 135.0)
CHINA_LAT = st.floats(3.0, 53.0)


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Geodesic distance in metres (pyproj, WGS84 ellipsoid)."""
    return float(pyproj.Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)[2])


def _peer(fn, lon: float, lat: float) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prcoords warns outside its China box
        out = fn((lat, lon))
    return out.lon, out.lat


@settings(max_examples=300, deadline=None)
@given(lon=CHINA_LON, lat=CHINA_LAT)
def test_forward_matches_prcoords(lon: float, lat: float) -> None:
    for ours, theirs in ((crs.wgs84_to_gcj02, prcoords.wgs_gcj),
                         (crs.wgs84_to_bd09, prcoords.wgs_bd),
                         (crs.gcj02_to_bd09, prcoords.gcj_bd)):
        got = ours(lon, lat)
        want = _peer(theirs, lon, lat)
        assert _metres(*got, *want) < 1e-3, (ours.__name__, lon, lat)


@settings(max_examples=300, deadline=None)
@given(lon=CHINA_LON, lat=CHINA_LAT)
def test_inverse_matches_prcoords_precise(lon: float, lat: float) -> None:
    for ours, theirs in ((crs.gcj02_to_wgs84, prcoords.gcj_wgs_bored),
                         (crs.bd09_to_wgs84, prcoords.bd_wgs_bored),
                         (crs.bd09_to_gcj02, prcoords.bd_gcj_bored)):
        got = ours(lon, lat)
        want = _peer(theirs, lon, lat)
        # prcoords stops at 1e-5 degree steps; both solve the same equation well below 0.1 m.
        assert _metres(*got, *want) < 0.1, (ours.__name__, lon, lat)


@settings(max_examples=300, deadline=None)
@given(lon=CIXI_LON, lat=CIXI_LAT, system=st.sampled_from(crs.CRS_NAMES))
def test_round_trip_under_a_decimetre(lon: float, lat: float, system: str) -> None:
    x, y = crs.from_wgs84(lon, lat, crs=system)
    back = crs.to_wgs84(x, y, crs=system)
    assert _metres(lon, lat, *back) < 0.1


@settings(max_examples=200, deadline=None)
@given(lon=CIXI_LON, lat=CIXI_LAT)
def test_gcj_inverse_solves_forward_exactly(lon: float, lat: float) -> None:
    wlon, wlat = crs.gcj02_to_wgs84(lon, lat)
    assert _metres(*crs.wgs84_to_gcj02(wlon, wlat), lon, lat) < 1e-4


def test_one_step_inverse_is_worse_than_ours() -> None:
    # The naive inverse is off by a measurable amount; the iterated one is not.
    lon, lat = 121.25, 30.17
    naive = _peer(prcoords.gcj_wgs, lon, lat)
    ours = crs.gcj02_to_wgs84(lon, lat)
    fwd_naive = crs.wgs84_to_gcj02(*naive)
    fwd_ours = crs.wgs84_to_gcj02(*ours)
    assert _metres(*fwd_ours, lon, lat) < 1e-5 < _metres(*fwd_naive, lon, lat)


def test_gcj_offset_in_cixi_is_a_few_hundred_metres() -> None:
    lon, lat = 121.2467, 30.1703
    shift_m = _metres(lon, lat, *crs.wgs84_to_gcj02(lon, lat))
    assert 300 < shift_m < 700
    bd_shift_m = _metres(lon, lat, *crs.wgs84_to_bd09(lon, lat))
    assert bd_shift_m > shift_m + 300


def test_vectorised_shapes_scalars_and_nan() -> None:
    lon = np.full((2, 3), 121.2)
    lat = np.full((2, 3), 30.2)
    out_lon, out_lat = crs.gcj02_to_wgs84(lon, lat)
    assert out_lon.shape == (2, 3) and out_lat.shape == (2, 3)
    scalar = crs.to_wgs84(121.2, 30.2, crs="gcj02")
    assert isinstance(scalar[0], float) and isinstance(scalar[1], float)
    assert scalar == (out_lon[0, 0], out_lat[0, 0])
    with_nan = crs.bd09_to_wgs84([121.2, np.nan], [30.2, 30.2])
    assert np.isnan(with_nan[0][1]) and np.isnan(with_nan[1][1])
    assert np.isfinite(with_nan[0][0])
    # Broadcasting a scalar latitude against an array of longitudes.
    assert crs.wgs84_to_gcj02([121.1, 121.2], 30.2)[0].shape == (2,)


def test_outside_china_is_not_offset() -> None:
    assert crs.wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert crs.gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)
    assert not crs.in_china(2.35, 48.85) and crs.in_china(121.2, 30.2)


def test_projected_cgcs2000_matches_pyproj() -> None:
    lon, lat = 121.2467, 30.1703
    x, y = crs.from_wgs84(lon, lat, crs="epsg4549")
    want = pyproj.Transformer.from_crs(4326, 4549, always_xy=True).transform(lon, lat)
    assert math.isclose(x, want[0], abs_tol=1e-6) and math.isclose(y, want[1], abs_tol=1e-6)
    assert 600_000 < x < 650_000  # 120°E zone, false easting 500 km
    assert _metres(*crs.to_wgs84(121.2, 30.2, crs="cgcs2000"), 121.2, 30.2) < 0.1


def test_convert_between_chinese_systems() -> None:
    bd = crs.convert(121.25, 30.17, src="gcj02", dst="bd09")
    assert _metres(*bd, *crs.gcj02_to_bd09(121.25, 30.17)) < 1e-6
    assert crs.convert(121.25, 30.17, src="bd09", dst="bd09") == (121.25, 30.17)


def test_bad_crs_and_bad_values_raise_qyx_errors() -> None:
    with pytest.raises(CoordinateError, match="'gaode'"):
        crs.to_wgs84(121.2, 30.2, crs="gaode")  # type: ignore[arg-type]
    with pytest.raises(CoordinateError, match="to_numeric"):
        crs.to_wgs84("abc", 30.2, crs="gcj02")
    with pytest.raises(CoordinateError, match="broadcast"):
        crs.wgs84_to_gcj02([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(CoordinateError, match="did not converge"):
        crs.gcj02_to_wgs84(121.2, 30.2, max_iter=1, tol_deg=1e-15)


def test_transform_geometry_all_kinds() -> None:
    line = shapely.LineString([(121.2, 30.2), (121.3, 30.25)])
    moved = crs.transform_geometry(line, src="wgs84", dst="gcj02")
    assert np.allclose(shapely.get_coordinates(moved)[0], crs.wgs84_to_gcj02(121.2, 30.2))
    gdf = gpd.GeoDataFrame({"name": ["a"]}, geometry=[line], crs="EPSG:4326")
    out = crs.transform_geometry(gdf, src="wgs84", dst="epsg4549")
    assert out.crs.to_epsg() == 4549 and gdf.crs.to_epsg() == 4326  # input untouched
    assert shapely.get_coordinates(gdf.geometry.iloc[0])[0][0] == 121.2
    back = crs.transform_geometry(out, src="epsg4549", dst="wgs84")
    assert np.allclose(shapely.get_coordinates(back.geometry.iloc[0]),
                       shapely.get_coordinates(line), atol=1e-9)
    empty = crs.transform_geometry(gpd.GeoSeries([], crs="EPSG:4326"), src="wgs84", dst="bd09")
    assert len(empty) == 0
    with pytest.raises(CoordinateError, match="'list'"):
        crs.transform_geometry([line], src="wgs84", dst="gcj02")


def test_docstring_examples() -> None:
    result = doctest.testmod(crs, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 3 and result.failed == 0


# -- local metric CRS ----------------------------------------------------------------------------

@pytest.mark.parametrize(("lon", "lat", "expected"), [
    (121.25, 30.17, "EPSG:4549"),    # Cixi: CGCS2000 3-degree GK CM 120E, as before
    (104.07, 30.66, "EPSG:4544"),    # Chengdu: CM 105E
    (75.99, 39.47, "EPSG:4534"),     # Kashgar: CM 75E (westernmost zone)
    (134.3, 47.7, "EPSG:4554"),      # Fuyuan (Heilongjiang): CM 135E
    (24.94, 60.17, "EPSG:32635"),    # Helsinki: UTM 35N
    (11.26, 46.46, "EPSG:32632"),    # South Tyrol: UTM 32N
    (-70.65, -33.45, "EPSG:32719"),  # Santiago de Chile: UTM 19S
])
def test_local_metric_crs_zones(lon: float, lat: float, expected: str) -> None:
    import pyproj

    from qyx_geo.crs import local_metric_crs

    got = local_metric_crs(lon, lat)
    assert got == expected
    crs = pyproj.CRS.from_user_input(got)
    # the zone's central meridian is within 1.5 degrees (GK 3-degree) or 3 degrees (UTM)
    cm = next(p.value for p in crs.coordinate_operation.params
              if "longitude of natural origin" in p.name.lower())
    assert abs(cm - lon) <= (1.5 if got.startswith("EPSG:45") else 3.0)


def test_local_metric_crs_matches_osmnx_outside_china() -> None:
    import geopandas as gpd
    import shapely

    from qyx_geo.crs import local_metric_crs

    for lon, lat in [(24.94, 60.17), (-0.12, 51.5), (151.2, -33.9), (-122.27, 37.8)]:
        pts = gpd.GeoSeries([shapely.Point(lon, lat)], crs="EPSG:4326")
        assert local_metric_crs(lon, lat) == pts.estimate_utm_crs().to_string()


def test_metric_crs_for_bounds_and_validation() -> None:
    import shapely

    from qyx_geo._errors import CoordinateError
    from qyx_geo.crs import metric_crs_for, validate_metric_crs

    assert metric_crs_for((121.0, 30.0, 121.5, 30.4)) == "EPSG:4549"
    assert metric_crs_for(shapely.box(24.9, 60.1, 25.0, 60.2)) == "EPSG:32635"
    assert validate_metric_crs("epsg:32650") == "EPSG:32650"
    assert validate_metric_crs(4549) == "EPSG:4549"
    for bad in ("EPSG:4326", "EPSG:2263", "not a crs"):  # degrees, US feet, nonsense
        with pytest.raises(CoordinateError):
            validate_metric_crs(bad)
    with pytest.raises(CoordinateError):
        metric_crs_for(shapely.Polygon())


_PUBLIC_PAIRS = [crs.wgs84_to_gcj02, crs.gcj02_to_wgs84, crs.gcj02_to_bd09, crs.bd09_to_gcj02,
                 crs.wgs84_to_bd09, crs.bd09_to_wgs84,
                 *(lambda x, y, c=c: crs.to_wgs84(x, y, crs=c) for c in
                   ("wgs84", "gcj02", "bd09", "cgcs2000")),
                 *(lambda x, y, c=c: crs.from_wgs84(x, y, crs=c) for c in crs.CRS_NAMES),
                 lambda x, y: crs.convert(x, y, src="gcj02", dst="bd09")]


@pytest.mark.parametrize("fn", _PUBLIC_PAIRS)
def test_nan_in_one_coordinate_blanks_the_pair(fn) -> None:
    lon, lat = fn(np.array([121.2, np.nan, 121.3]), np.array([np.nan, 30.2, 30.1]))
    assert np.isnan(lon[:2]).all() and np.isnan(lat[:2]).all()
    assert np.isfinite(lon[2]) and np.isfinite(lat[2])
    one = fn(121.2, math.nan)
    assert math.isnan(one[0]) and math.isnan(one[1])


@pytest.mark.parametrize("fn", _PUBLIC_PAIRS)
@pytest.mark.parametrize(("x", "y", "match"), [
    (121.2, 95.0, "out of range"),          # latitude beyond the pole
    (30.17, 121.25, "looks swapped"),       # (lat, lon) given as (lon, lat)
    (181.0, 30.0, "out of range"),
    (121.2, math.inf, "out of range"),
])
def test_out_of_range_and_swapped_pairs_raise(fn, x, y, match) -> None:
    with pytest.raises(CoordinateError, match=match):
        fn(x, y)
    with pytest.raises(CoordinateError, match=r"1 coordinate pair.*position \(1,\)"):
        fn([121.2, x], [30.2, y])


def test_projected_pairs_are_range_checked() -> None:
    x, y = crs.from_wgs84(121.2467, 30.1703, crs="epsg4549")
    with pytest.raises(CoordinateError, match="looks swapped"):
        crs.to_wgs84(y, x, crs="epsg4549")
    with pytest.raises(CoordinateError, match="easting"):
        crs.convert(-5.0, y, src="epsg4549", dst="wgs84")
    lon, lat = crs.to_wgs84([x, np.nan], [y, y], crs="epsg4549")
    assert np.isnan([lon[1], lat[1]]).all() and abs(lon[0] - 121.2467) < 1e-9
