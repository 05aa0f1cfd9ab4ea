from __future__ import annotations

import dataclasses

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from _audit_fixtures import UNITS, grid_graph, tiny_dataset

from qyx_geo._errors import SettingsError, UnknownCodeError, UnknownServiceError
from qyx_geo.audit import AuditResult, ServiceAudit, run_audit, threshold_for
from qyx_geo.engine import build_arrays
from qyx_geo.settings import Settings


@pytest.fixture(scope="module")
def net():
    return build_arrays(grid_graph())


@pytest.fixture(scope="module")
def result(net):
    return run_audit(tiny_dataset(), network=grid_graph(), year=2027)


def test_contract_shape(result):
    assert isinstance(result, AuditResult) and result.year == 2027
    assert list(result.services) == ["nursery", "canteen", "clinic", "sports"]
    for sid, a in result.services.items():
        assert isinstance(a, ServiceAudit) and a.service.id == sid
        assert list(a.units.index) == list(UNITS) and a.units.crs == "EPSG:4326"
        assert {"share_within", "median_minutes", "nearest_facility", "nearest_minutes", "passes",
                "judged", "population", "kind", "township_name"} <= set(a.units.columns)
        assert {"minutes", "dist_m", "facility_id", "snap_dist_m", "too_far", "within"} <= set(
            a.points.columns)
        assert {"units_judged", "units_passing", "share_passing", "rank"} <= set(
            a.townships.columns)
        assert {"units_judged", "units_passing", "share_passing", "target", "met",
                "shortfall_units", "residents_within_share"} <= set(a.county)
    assert result.services["nursery"].capacity is not None
    assert result.services["canteen"].capacity is None
    assert {"build_arrays", "snap_demand", "nursery", "total"} <= set(result.timings_s)


def test_canteen_hand_computed(result):
    a = result.services["canteen"]  # one canteen at (400, 400) m; 4 km/h = 200 m per 3 min
    np.testing.assert_allclose(a.points["minutes"], [12, 3, 15, 27, 15, 27, 30, 48], atol=1e-9)
    # 60+ residents: 东街 200/200, 西街 100/200, 南村 90/150, 北村 0/140
    np.testing.assert_allclose(a.units["share_within"], [1.0, 0.5, 0.6, 0.0])
    assert list(a.units["passes"]) == [True, False, False, False]
    assert a.county["units_passing"] == 1 and a.county["shortfall_units"] == 3
    assert a.county["target"].value == 0.95 and a.county["met"] is False
    assert list(a.gaps.index) == ["d3", "d6", "d7", "d5"]  # by residents 60+, then id


def test_sports_judges_villages_only(result):
    a = result.services["sports"]
    assert list(a.units["judged"]) == [False, False, True, True]
    assert a.county["units_judged"] == 2
    assert pd.isna(a.townships.loc["330282001", "rank"])


def test_nursery_capacity(result):
    cap = result.services["nursery"].capacity
    # nursery0 (10 places) reaches d0, d1 (1,000 residents); nursery1 (4) reaches d4? no: d5, d6
    np.testing.assert_allclose(cap["places_per_1000"], [10.0, 0.0, 8.0, 0.0])
    county = result.services["nursery"].county["capacity"]
    assert county["places_per_1000"] == pytest.approx(14 / 3)
    assert county["target"].value == 5.5 and county["met"] is False


def test_reuse_arrays_gives_same_result(result, net):
    again = run_audit(tiny_dataset(), network=net, year=2027)
    assert again.timings_s["build_arrays"] == 0.0
    for sid in result.services:
        pd.testing.assert_frame_equal(pd.DataFrame(result.services[sid].units.drop(
            columns="geometry")), pd.DataFrame(again.services[sid].units.drop(columns="geometry")))


def test_dataset_not_mutated(net):
    ds = tiny_dataset()
    before = {k: v.copy() for k, v in ds.facilities.items()}, ds.demand.copy(), ds.units.copy()
    run_audit(ds, network=net, services=["canteen"])
    pd.testing.assert_frame_equal(ds.demand, before[1])
    pd.testing.assert_frame_equal(ds.units, before[2])
    for k, v in ds.facilities.items():
        pd.testing.assert_frame_equal(v, before[0][k])


def test_facility_override(net):
    ds = tiny_dataset()
    extra = ds.facilities["canteen"].copy()
    extra.index = pd.Index(["c_user"], name="id")
    extra = extra.set_geometry(gpd.GeoSeries(ds.demand.geometry.loc[["d6"]].to_numpy(),
                                             index=extra.index, crs="EPSG:4326"))
    r = run_audit(ds, network=net, services=["canteen"],
                  facilities={"canteen": pd.concat([ds.facilities["canteen"], extra])})
    # the new canteen sits on d6; d7 is 1,200 m away (18 min)
    assert r.services["canteen"].units.loc[UNITS[3], "share_within"] == pytest.approx(0.5)
    assert r.services["canteen"].points.loc["d6", "facility_id"] == "c_user"
    assert "c_user" in r.dataset.facilities["canteen"].index
    assert "c_user" in r.services["canteen"].facilities.index


def test_year_without_target(net):
    r = run_audit(tiny_dataset(), network=net, year=2025, services=["canteen", "nursery"])
    c = r.services["canteen"].county
    assert c["target"] is None and c["met"] is None and c["shortfall_units"] == 0
    assert "2025" in c["target_note"]
    assert r.services["nursery"].county["capacity"]["target"].value == 4.6
    assert r.services["canteen"].townships["met"].isna().all()


def test_settings_threshold_and_mode(net):
    s = Settings(threshold_minutes={"canteen": 10.0})
    r = run_audit(tiny_dataset(), network=net, services=["canteen"], settings=s)
    assert r.services["canteen"].threshold_minutes == 10.0 == threshold_for("canteen", s)
    assert r.services["canteen"].units.loc[UNITS[0], "share_within"] == pytest.approx(120 / 200)
    slow = run_audit(tiny_dataset(), network=net, services=["canteen"],
                     settings=Settings(mode="elderly_walk"))
    np.testing.assert_allclose(slow.services["canteen"].points["minutes"].iloc[:3], [16, 4, 20])
    assert slow.services["canteen"].mode == "elderly_walk"


def test_service_audit_carries_min_share(net):
    r = run_audit(tiny_dataset(), network=net, services=["clinic"],
                  settings=Settings(min_share=0.9))
    assert r.services["clinic"].min_share == 0.9


def test_threshold_for_a_service_not_audited_is_reported(net, caplog):
    from qyx_geo.report import run_record

    s = Settings(threshold_minutes={"canteen": 10.0, "clinic": 20.0})
    r = run_audit(tiny_dataset(), network=net, services=["clinic"], settings=s)
    assert r.services["clinic"].threshold_minutes == 20.0
    assert len(r.warnings) == 1 and "'canteen'" in r.warnings[0] and "not audited" in r.warnings[0]
    assert run_record(r)["warnings"] == list(r.warnings)
    assert "canteen" in caplog.text
    assert run_audit(tiny_dataset(), network=net, services=["clinic", "canteen"],
                     settings=s).warnings == ()


def test_township_filter(net):
    r = run_audit(tiny_dataset(), network=net, services=["clinic"], townships=["二镇"])
    a = r.services["clinic"]
    assert list(a.units.index) == list(UNITS[2:]) and list(a.townships.index) == ["330282101"]
    assert r.township_codes == ("330282101",)
    assert set(a.points["unit_code"]) == set(UNITS[2:])


def _nurseries_across_border() -> gpd.GeoDataFrame:
    """Three nurseries whose catchments (15 min = 1,000 m) cross the township border.

    On the grid the street distance is the Manhattan distance, and no resident sits at exactly
    1,000 m from any of them (no float ties at the cutoff):
    a (10 places, 一街道) at (400, 200) reaches d0 (400 residents), d1 (600) and d4 (300, 二镇);
    b (6 places, 二镇) at (1000, 400) reaches d1 (一街道) and d4;
    c (4 places, 二镇) at (1600, 1800) reaches d3 (500, 一街道), d6 (250) and d7 (250).
    """
    from _audit_fixtures import _pts

    rows = [("a", (400, 200), 10.0, UNITS[0]), ("b", (1000, 400), 6.0, UNITS[2]),
            ("c", (1600, 1800), 4.0, UNITS[3])]
    ids = [f"nursery_{r[0]}" for r in rows]
    return gpd.GeoDataFrame(
        {"name": [f"托育点{r[0]}" for r in rows], "layer": "nursery", "level": "站点",
         "capacity": [r[2] for r in rows], "township_code": [r[3][:9] for r in rows],
         "unit_code": [r[3] for r in rows], "source": "synthetic"},
        geometry=_pts([r[1] for r in rows], ids).to_numpy(),
        index=pd.Index(ids, name="id"), crs="EPSG:4326")


@pytest.mark.parametrize("towns", [["一街道"], ["二镇"], ["二镇", "一街道"]])
def test_township_filter_gives_each_unit_its_full_audit_row(net, towns):
    layers = {"nursery": _nurseries_across_border()}
    full = run_audit(tiny_dataset(), network=net, facilities=layers)
    part = run_audit(tiny_dataset(), network=net, facilities=layers, townships=towns)
    for sid, a in part.services.items():
        f = full.services[sid]
        pd.testing.assert_frame_equal(pd.DataFrame(a.units),
                                      pd.DataFrame(f.units.loc[a.units.index]))
        pd.testing.assert_frame_equal(pd.DataFrame(a.points),
                                      pd.DataFrame(f.points.loc[a.points.index]))
        shared = ["name", "units_total", "units_judged", "units_passing", "share_passing",
                  "residents_within_share", "target", "met", "shortfall_units"]
        pd.testing.assert_frame_equal(a.townships[shared],
                                      f.townships.loc[a.townships.index, shared])
    cap, full_cap = part.services["nursery"].capacity, full.services["nursery"].capacity
    pd.testing.assert_frame_equal(cap, full_cap.loc[cap.index])


def test_township_filter_capacity_figures_by_hand(net):
    """2SFCA with the competing demand across the border, computed by hand (see the layer)."""
    r_a, r_b, r_c = 10 / 1300, 6 / 900, 4 / 1000  # places per resident in each catchment
    for towns in (None, ["二镇"]):
        r = run_audit(tiny_dataset(), network=net, services=["nursery"], townships=towns,
                      facilities={"nursery": _nurseries_across_border()})
        cap = r.services["nursery"].capacity["places_per_1000"]
        # 南村: d4 (300) reaches a and b, d5 (200) nothing; 北村: d6, d7 reach c
        assert cap[UNITS[2]] == pytest.approx(1000 * 300 * (r_a + r_b) / 500)
        assert cap[UNITS[3]] == pytest.approx(1000 * r_c)
    county = r.services["nursery"].county["capacity"]
    # places of the facilities inside 二镇 (b and c) per 1,000 of its 1,000 residents
    assert county["places_per_1000_total"] == pytest.approx(6 + 4)
    assert county["population"] == 1000
    whole = run_audit(tiny_dataset(), network=net, services=["nursery"],
                      facilities={"nursery": _nurseries_across_border()})
    assert whole.services["nursery"].county["capacity"]["places_per_1000_total"] == \
        pytest.approx(20 / 3000 * 1000)


def test_point_off_network_counts_as_uncovered(net):
    ds = tiny_dataset()
    far = ds.demand.iloc[[0]].copy()
    far.index = pd.Index(["far"], name="id")
    far = far.set_geometry(gpd.GeoSeries([shapely.Point(121.30, 30.17)], index=far.index,
                                         crs="EPSG:4326"))
    ds = dataclasses.replace(ds, demand=pd.concat([ds.demand, far]))
    r = run_audit(ds, network=net, services=["clinic"])
    a = r.services["clinic"]
    assert bool(a.points.loc["far", "too_far"]) and np.isnan(a.points.loc["far", "minutes"])
    assert a.units.loc[UNITS[0], "share_within"] == pytest.approx(1000 / 1400)
    assert "far" in a.gaps.index and a.county["points_too_far"] == 1


def test_progress_callback(net):
    calls = []
    run_audit(tiny_dataset(), network=net, services=["clinic", "sports"],
              progress=lambda step, done, total: calls.append((step, done, total)))
    assert calls == [("network", 0, 4), ("snap", 1, 4), ("clinic", 2, 4), ("sports", 3, 4)]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"year": 2030}, SettingsError, "2030"),
    ({"year": "2027"}, SettingsError, "'2027'"),
    ({"services": ["library"]}, UnknownServiceError, "library"),
    ({"services": []}, SettingsError, "empty"),
    ({"townships": ["火星镇"]}, UnknownCodeError, "火星镇"),
    ({"services": ["clinic"], "facilities": {"canteen": None}}, SettingsError, "canteen"),
    ({"settings": {"min_share": 0.5}}, SettingsError, "Settings"),
])
def test_bad_arguments(net, kwargs, error, match):
    with pytest.raises(error, match=match):
        run_audit(tiny_dataset(), network=net, **kwargs)


def test_missing_network():
    with pytest.raises(SettingsError, match="load_network"):
        run_audit(tiny_dataset())


def _counted_network_source(tmp_path, monkeypatch):
    """A network file in a cache folder of its own, loaded as the grid graph; loads counted."""
    import qyx_geo.network

    # A cache of its own: the key hashes the file's content, so a shared cache folder that an
    # earlier run filled would already hold this entry and the first call would not load.
    monkeypatch.setenv("QYX_CACHE_DIR", str(tmp_path / "cache"))
    source = tmp_path / "tiny.osm"
    source.write_text("<osm/>", encoding="utf-8")
    calls = []
    monkeypatch.setattr(qyx_geo.network, "load_network",
                        lambda src, **kw: calls.append(src) or grid_graph())
    return source, calls


def test_network_arrays_cache_round_trip(tmp_path, monkeypatch):
    from qyx_geo.audit import network_arrays, network_cache_key

    source, calls = _counted_network_source(tmp_path, monkeypatch)
    first = network_arrays(source)
    second = network_arrays(source)
    assert calls == [source]  # the second call came from the cache
    for field in ("node_ids", "x", "y", "edge_u", "edge_v", "edge_length_m"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert (first.adjacency != second.adjacency).nnz == 0 and second.crs == first.crs
    assert shapely.equals(first.edge_geometry, second.edge_geometry).all()
    a = run_audit(tiny_dataset(), network=first, services=["canteen"])
    b = run_audit(tiny_dataset(), network=second, services=["canteen"])
    pd.testing.assert_frame_equal(pd.DataFrame(a.services["canteen"].points),
                                  pd.DataFrame(b.services["canteen"].points))
    key = network_cache_key(source)
    source.write_text("<osm></osm>", encoding="utf-8")  # a changed file is a new key
    assert network_cache_key(source) != key
    network_arrays(source)
    assert len(calls) == 2


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_damaged_engine_cache_is_rebuilt_not_fatal(tmp_path, monkeypatch, caplog, damage):
    from qyx_geo import _cache
    from qyx_geo.audit import network_arrays

    source, calls = _counted_network_source(tmp_path, monkeypatch)
    first = network_arrays(source)
    (entry,) = _cache.entries("engine")
    data = bytearray(entry.path.read_bytes())
    if damage == "truncate":  # a run killed while copying, a full disk: zipfile.BadZipFile
        del data[len(data) // 2:]
    else:  # one bit flipped in the payload: a CRC or digest mismatch
        data[len(data) // 2] ^= 0x01
    entry.path.write_bytes(bytes(data))
    with caplog.at_level("WARNING"):
        again = network_arrays(source)
    assert "unusable" in caplog.text and len(calls) == 2
    np.testing.assert_array_equal(again.edge_length_m, first.edge_length_m)
    assert network_arrays(source).n_edges == first.n_edges and len(calls) == 2


def test_facility_beyond_snap_limit_is_reported_not_used(caplog):
    from _audit_fixtures import _pts

    from qyx_geo.report import summary_dict, summary_markdown

    ds = tiny_dataset()
    far = ds.facilities["canteen"].copy()
    far.loc["canteen-far", :] = far.iloc[0]
    # 5 km east of the grid: far beyond the 300 m snap limit
    far.loc[["canteen-far"], "geometry"] = _pts([(7000, 400)], ["canteen-far"]).to_numpy()
    far = gpd.GeoDataFrame(far, geometry="geometry", crs="EPSG:4326")
    res = run_audit(ds, network=grid_graph(), year=2027, services=["canteen"],
                    facilities={"canteen": far})
    a = res.services["canteen"]
    assert a.county["facilities_too_far"] == ["canteen-far"]
    assert "canteen-far" not in set(a.points["facility_id"].dropna())
    assert summary_dict(res)["services"]["canteen"]["facilities_too_far"] == ["canteen-far"]
    assert "canteen-far" in summary_markdown(res)


def test_an_ambiguous_township_name_is_an_error_everywhere():
    """One lookup rule: a name two townships share never picks one of them silently."""
    from _audit_fixtures import TOWNS

    from qyx_geo import charts, maps, scenario

    ds = tiny_dataset()
    twin = dataclasses.replace(ds, townships=ds.townships.assign(name="一街道"),
                               units=ds.units.assign(township_name="一街道"))
    with pytest.raises(UnknownCodeError, match=f"ambiguous.*{TOWNS[0]}.*{TOWNS[1]}"):
        run_audit(twin, network=grid_graph(), townships=["一街道"])
    sa = run_audit(twin, network=grid_graph(), services=["canteen"]).services["canteen"]
    for call in (lambda: maps.service_map(sa, twin, township="一街道"),
                 lambda: charts.ranking_chart(sa, township="一街道"),
                 lambda: scenario.sites_at_gaps(sa, township="一街道")):
        with pytest.raises(UnknownCodeError, match="ambiguous"):
            call()
    by_code = run_audit(twin, network=grid_graph(), services=["canteen"], townships=[TOWNS[1]])
    assert by_code.township_codes == (TOWNS[1],)
    with pytest.raises(UnknownCodeError, match="did you mean '一街道'"):
        run_audit(ds, network=grid_graph(), townships=["一街"])
