"""Travel-time surfaces: cell times against hand computations and the engine; contours."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from _street_grids import CRS, X0, Y0, city_net, fac, net_of

from qyx_geo._errors import SettingsError
from qyx_geo.engine import nearest_facility
from qyx_geo.isochrones import isochrones
from qyx_geo.surfaces import GridLink, link_grid, surface_isochrones, travel_time_surface

SPEED = 60.0  # m/min: minutes x 60 = metres


@pytest.fixture
def street():
    return net_of({1: (0, 0), 2: (1000, 0)}, [(1, 2)])


@pytest.fixture
def city():
    return city_net()


def test_cell_time_is_street_time_plus_offstreet_walk(street):
    s = travel_time_surface(street, fac({"f": (0, 0)}), cutoff_minutes=15,
                            speed_m_per_min=SPEED, cell_m=25, max_snap_m=300)
    xs, ys = s.centres()
    cx, cy = np.meshgrid(xs - X0, ys - Y0)
    # independent: walk along the street to the foot of the perpendicular, then straight off it
    along = np.clip(cx, 0, 1000)
    want = (along + np.hypot(cx - along, cy)) / SPEED
    linked = np.hypot(cx - along, cy) <= 300 - 25  # clear of the snap limit's edge
    reach = want <= 15 - 0.5
    got = s.minutes
    sel = linked & reach
    assert sel.sum() > 500
    # street points every half cell: the linked point is at most a quarter cell off the foot
    # beside the street; past its end the nearest street *cell* may hold a point up to a
    # cell further than the nearest point
    side = sel & (cx >= 0) & (cx <= 1000)
    assert np.nanmax(np.abs(got[side] - want[side])) <= 7.0 / SPEED
    assert np.nanmax(np.abs(got[sel] - want[sel])) <= (7.0 + 25.0) / SPEED
    # beyond the snap limit or the reach: empty
    assert np.isnan(got[np.hypot(cx - along, cy) > 300 + 18]).all()
    assert np.isnan(got[want > 15 + 25 * math.sqrt(2) / SPEED + 0.2]).all()
    assert s.crs == CRS and s.x0 % 25 == 0 and s.y0 % 25 == 0


def test_facility_on_the_street_reaches_its_own_edge_directly(street):
    # a facility 40 m off the street at x = 600: the walk goes to x = 600, then along
    s = travel_time_surface(street, fac({"f": (600, 40)}), cutoff_minutes=10,
                            speed_m_per_min=SPEED, cell_m=25)
    for x in (512.5, 687.5, 887.5):
        want = (40 + abs(x - 600) + 12.5) / SPEED
        assert float(s.sample([X0 + x], [Y0 - 12.5])[0]) == pytest.approx(want, abs=7 / SPEED)


def test_facilities_sharing_an_edge_give_the_nearer_time(street):
    # three facilities on the one street, two of them at the same spot: every cell takes the
    # best of the three, each reaching its own stretch of the edge directly
    spots = {"a": (300, 30), "b": (650, -20), "c": (650, -20)}

    def surface(ids):
        return travel_time_surface(street, fac({i: spots[i] for i in ids}), cutoff_minutes=8,
                                   speed_m_per_min=SPEED, cell_m=25).minutes

    both = surface("abc")
    want = np.fmin(surface("a"), np.fmin(surface("b"), surface("c")))
    assert np.array_equal(both, want, equal_nan=True)
    assert np.array_equal(surface("bc"), surface("b"), equal_nan=True)
    assert np.isfinite(both).sum() > np.isfinite(surface("a")).sum()


def test_surface_agrees_with_the_engine_at_points(city):
    f = fac({"a": (150, 420), "b": (830, 260), "c": (500, 1010)})
    rng = np.random.default_rng(7)
    xy = rng.uniform(-50, 1150, size=(400, 2))
    pts = gpd.GeoDataFrame(geometry=shapely.points(xy + np.array([X0, Y0])),
                           index=pd.Index([f"p{i}" for i in range(len(xy))], name="id"), crs=CRS)
    s = travel_time_surface(city, f, cutoff_minutes=12, speed_m_per_min=SPEED, cell_m=10)
    eng = nearest_facility(city, f, pts, speed_m_per_min=SPEED)["minutes"].to_numpy()
    got = s.sample(xy[:, 0] + X0, xy[:, 1] + Y0)
    both = np.isfinite(got) & (eng <= 11)
    # a cell's centre is <= 7.1 m from the point and its street point <= 2.5 m from the foot,
    # when both link to the same street; mid-block, the centre's nearest street may be another
    # one than the point's (measured: 90 % within 8.2 m, 95 % within 26 m)
    tol = (7.1 * 2 + 2.5 + 0.5) / SPEED
    close = np.abs(got[both] - eng[both]) <= tol
    assert both.sum() > 200 and close.mean() >= 0.85
    assert np.median(np.abs(got[both] - eng[both])) <= 5.0 / SPEED
    assert np.isfinite(got[eng <= 11]).all()  # nothing the engine reaches is left empty


def test_contours_nest_and_separate_cell_centres(city):
    f = fac({"a": (150, 420), "b": (830, 260)})
    s = travel_time_surface(city, f, cutoff_minutes=12, speed_m_per_min=SPEED, cell_m=20)
    iso = surface_isochrones(s, minutes=(4, 8, 12))
    assert list(iso["minutes"]) == [4.0, 8.0, 12.0] and iso.crs == CRS
    assert list(iso["dist_m"]) == [240.0, 480.0, 720.0]
    geoms = iso.geometry.to_numpy()
    assert all(g.is_valid and not g.is_empty for g in geoms)
    assert geoms[1].buffer(1e-6).covers(geoms[0]) and geoms[2].buffer(1e-6).covers(geoms[1])
    xs, ys = s.centres()
    cx, cy = np.meshgrid(xs, ys)
    centres = shapely.points(cx.ravel(), cy.ravel())
    vals = s.minutes.ravel()
    for tier, g in zip((4, 8, 12), geoms, strict=True):
        inside = shapely.covers(g, centres)
        assert inside[vals < tier - 0.05].all()
        assert not inside[(vals > tier + 0.05) | np.isnan(vals)].any()


def test_isochrones_default_to_the_surface_for_a_service(city):
    f = fac({"a": (150, 420)})
    iso = isochrones(city, f, minutes=(5, 10), speed_m_per_min=SPEED,
                     settings=None, link=link_grid(city, cell_m=20))
    assert iso.attrs["method"] == "surface" and iso.attrs["cell_m"] == 20
    per = isochrones(city, f, minutes=(5,), speed_m_per_min=SPEED, dissolve=False)
    assert per.attrs["method"] == "exact"
    with pytest.raises(SettingsError, match="per-facility"):
        isochrones(city, f, dissolve=False, method="surface")
    with pytest.raises(SettingsError, match="method"):
        isochrones(city, f, method="hull")  # type: ignore[arg-type]


def test_order_and_crs_do_not_matter(city):
    f = fac({"a": (0, 10), "b": (790, 420), "c": (400, 820)})
    base = travel_time_surface(city, f, cutoff_minutes=10, speed_m_per_min=SPEED, cell_m=25)
    other = travel_time_surface(city, f.iloc[[2, 0, 1]].to_crs("EPSG:4326"), cutoff_minutes=10,
                                speed_m_per_min=SPEED, cell_m=25)
    np.testing.assert_allclose(base.minutes, other.minutes, atol=1e-4, equal_nan=True)


def test_link_round_trips_as_plain_arrays(city):
    link = link_grid(city, cell_m=25, max_snap_m=200)
    values = link.arrays()
    assert all(isinstance(v, np.ndarray | int | float | str) for v in values.values())
    back = GridLink.from_arrays({k: np.asarray(v) for k, v in values.items()})
    f = fac({"a": (150, 420)})
    a = travel_time_surface(city, f, cutoff_minutes=8, speed_m_per_min=SPEED, link=link)
    b = travel_time_surface(city, f, cutoff_minutes=8, speed_m_per_min=SPEED, link=back)
    np.testing.assert_array_equal(a.minutes, b.minutes)


def test_validation(city, street):
    f = fac({"a": (0, 0)})
    with pytest.raises(SettingsError, match="cell_m"):
        travel_time_surface(city, f, cutoff_minutes=5, cell_m=0)
    with pytest.raises(SettingsError, match="cutoff_minutes"):
        travel_time_surface(city, f, cutoff_minutes=-1)
    with pytest.raises(SettingsError, match="another network"):
        travel_time_surface(city, f, cutoff_minutes=5, link=link_grid(street))
    with pytest.raises(SettingsError, match="extent"):
        link_grid(city, extent=(1, 1, 0, 0))
    s = travel_time_surface(city, f, cutoff_minutes=5, speed_m_per_min=SPEED)
    with pytest.raises(SettingsError, match="beyond the surface's reach"):
        surface_isochrones(s, minutes=(5, 10))


def test_no_facility_gives_an_empty_surface(city):
    empty = fac({"far": (50_000, 50_000)})  # beyond the snap limit
    s = travel_time_surface(city, empty, cutoff_minutes=5, speed_m_per_min=SPEED)
    assert np.isnan(s.minutes).all()
    assert surface_isochrones(s, minutes=(5,)).geometry.iloc[0].is_empty


def test_geotiff_reads_back(city, tmp_path):
    rasterio = pytest.importorskip("rasterio")
    from qyx_geo.surface_io import NODATA, write_geotiff

    f = fac({"a": (150, 420), "b": (830, 260)})
    s = travel_time_surface(city, f, cutoff_minutes=6, speed_m_per_min=SPEED, cell_m=5,
                            attrs={"service": "clinic"})
    path = write_geotiff(s, tmp_path / "out" / "clinic.tif", provenance="synthetic")
    assert sorted(p.name for p in path.parent.iterdir()) == ["clinic.tif"]  # no temporaries
    with rasterio.open(path) as r:
        assert r.crs.to_epsg() == 4549 and r.nodata == NODATA and r.dtypes == ("float32",)
        assert tuple(r.transform)[:6] == pytest.approx(s.transform)
        assert r.tags()["QYX_PROVENANCE"] == "synthetic" and r.tags()["QYX_SERVICE"] == "clinic"
        assert float(r.tags()["QYX_REACH_MINUTES"]) == 6.0
        assert r.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert r.overviews(1)  # 300 x 300 cells: at least one overview level
        values = r.read(1)
    want = s.within_reach()
    assert np.array_equal(values == NODATA, np.isnan(want))
    np.testing.assert_allclose(values[values != NODATA], want[~np.isnan(want)], atol=0.005)
    assert np.nanmax(s.minutes) > 6.0  # the margin beyond the reach is not written
    with pytest.raises(SettingsError, match="provenance"):
        write_geotiff(s, tmp_path / "x.tif", provenance="made up")  # type: ignore[arg-type]


def test_banded_image_lands_on_the_cells(city):
    pytest.importorskip("PIL")
    import io

    import pyproj
    from PIL import Image

    from qyx_geo.maps._surface import band_image, banded

    f = fac({"a": (150, 420)})
    s = travel_time_surface(city, f, cutoff_minutes=10, speed_m_per_min=SPEED, cell_m=10)
    bands = banded(s, (5, 10))
    want = np.where(np.isnan(s.minutes), 255, np.where(s.minutes <= 5, 0, 1))
    want[s.minutes > 10] = 255
    assert np.array_equal(bands, want)
    png, (w, south, e, n) = band_image(s, (5, 10))
    image = Image.open(io.BytesIO(png))
    assert image.mode == "P" and image.info["transparency"][255] == 0
    # the facility's cell is in the first band at its place in Web Mercator
    merc = pyproj.Transformer.from_crs(CRS, "EPSG:3857", always_xy=True)
    wgs = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:3857", always_xy=True)
    (left, right), (bottom, top) = wgs.transform([w, e], [south, n])
    fx, fy = merc.transform(X0 + 150, Y0 + 420)
    px = int((fx - left) / (right - left) * image.width)
    py = int((top - fy) / (top - bottom) * image.height)
    assert np.asarray(image)[py, px] == 0


@pytest.mark.parametrize("tiers", [(5, 10, 15), (15,), (10, 5, 5, 15), ()])
def test_banded_counts_the_tiers_a_cell_exceeds(tiers):
    from types import SimpleNamespace

    from qyx_geo.maps._surface import banded

    rng = np.random.default_rng(7)
    minutes = rng.uniform(0, 20, (40, 30)).astype(np.float32)
    minutes[rng.random(minutes.shape) < 0.3] = np.nan
    minutes.flat[:4] = (0, 5, 10, 15)  # on the tier edges
    edges = np.sort(np.asarray(tiers, dtype=np.float32))
    band = np.searchsorted(edges, minutes, side="left")  # tiers strictly below the value
    want = np.where(np.isnan(minutes) | (band >= edges.size), 255, band).astype(np.uint8)
    got = banded(SimpleNamespace(minutes=minutes), tiers)  # type: ignore[arg-type]
    assert got.dtype == np.uint8 and np.array_equal(got, want)


@pytest.mark.slow
def test_contours_match_exact_street_bands_on_the_embedded_network():
    """Surface contours vs exact street bands, one township of the embedded network.

    The surface also covers the blocks between streets, so the two are compared inside the
    street corridor (every street in the township buffered by half the street width): there,
    intersection over union >= 0.85 at 5 minutes and >= 0.93 at 10 and 15 (measured 0.87,
    0.95, 0.98), and >= 85 % / 93 % of the exact bands lie inside the contours.
    """
    from qyx_geo.audit import network_arrays
    from qyx_geo.dataset import load_dataset
    from qyx_geo.network import default_network_path

    if not default_network_path().exists():
        pytest.skip("embedded network not generated yet")
    net = network_arrays("default")
    ds = load_dataset()
    town = ds.townships.loc[ds.townships["name"] == "观海卫镇"].to_crs(net.crs).geometry.iloc[0]
    layer = ds.facilities["canteen"].to_crs(net.crs)
    layer = layer[layer.within(town.buffer(2000))]
    exact = isochrones(net, layer, minutes=(5, 10, 15), method="exact")
    link = link_grid(net, extent=town.buffer(3000).bounds)
    surf = isochrones(net, layer, minutes=(5, 10, 15), link=link)
    streets = net.edge_geometry[net.edge_tree.query(town, predicate="intersects")]
    corridor = shapely.union_all(shapely.buffer(streets, 15.0, quad_segs=4)).intersection(town)
    for minutes, floor in ((5, 0.85), (10, 0.93), (15, 0.93)):
        e = exact.loc[exact["minutes"] == minutes].geometry.iloc[0].intersection(town)
        s = surf.loc[surf["minutes"] == minutes].geometry.iloc[0].intersection(town)
        sc = s.intersection(corridor)
        assert sc.intersection(e).area / sc.union(e).area >= floor
        assert e.intersection(s).area / e.area >= floor
