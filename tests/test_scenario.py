"""What-if scenarios (qyx_geo.scenario) on the tiny 2 km grid county of _audit_fixtures."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from _audit_fixtures import UNITS, grid_graph, tiny_dataset

from qyx_geo._errors import DuplicateIdError, SettingsError, UnknownCodeError
from qyx_geo.audit import run_audit
from qyx_geo.engine import build_arrays
from qyx_geo.scenario import (
    NEW_LEVEL,
    add_facilities,
    close_facilities,
    compare_audits,
    sites_at_gaps,
)
from qyx_geo.schema import FACILITY_COLUMNS


@pytest.fixture(scope="module")
def net():
    return build_arrays(grid_graph())


@pytest.fixture(scope="module")
def ds():
    return tiny_dataset()


@pytest.fixture(scope="module")
def canteen(ds, net):
    # one canteen at (400, 400) m: the two north/east units fail for the over-60s
    return run_audit(ds, year=2027, services=["canteen"], network=net).services["canteen"]


def _points(lonlat, ids, crs="EPSG:4326"):
    return gpd.GeoDataFrame(geometry=[shapely.Point(xy) for xy in lonlat],
                            index=pd.Index(ids, name="id"), crs=crs)


def test_add_facilities_appends_fills_columns_and_keeps_inputs(ds):
    layer = ds.facilities["canteen"]
    before = layer.copy()
    new = _points([(121.26, 30.18)], ["NEW-1"])
    out = add_facilities(layer, new)
    assert list(out.index) == [*layer.index, "NEW-1"]
    row = out.loc["NEW-1"]
    assert row["layer"] == "canteen" and row["level"] == NEW_LEVEL and row["source"] == "user"
    assert row["name"] == f"{NEW_LEVEL}-NEW-1" and np.isnan(row["capacity"])
    assert set(FACILITY_COLUMNS) <= set(out.columns)
    assert out.crs == layer.crs
    pd.testing.assert_frame_equal(layer, before)  # input untouched
    assert "NEW-1" not in new.columns and len(new) == 1


def test_add_facilities_reprojects_and_keeps_given_values(ds):
    layer = ds.facilities["canteen"]
    metric = _points([(121.26, 30.18)], ["N1"]).to_crs("EPSG:4549")
    metric["name"] = ["新点"]
    metric["capacity"] = [30.0]
    metric["level"] = [None]
    out = add_facilities(layer, metric, level="规划")
    assert out.loc["N1", "name"] == "新点" and out.loc["N1", "capacity"] == 30.0
    assert out.loc["N1", "level"] == "规划"
    pt = out.geometry.loc["N1"]
    assert pt.x == pytest.approx(121.26, abs=1e-7) and pt.y == pytest.approx(30.18, abs=1e-7)


def test_add_facilities_refuses_clashing_ids_and_bad_input(ds):
    layer = ds.facilities["canteen"]
    existing = layer.index[0]
    with pytest.raises(DuplicateIdError, match=repr(existing)):
        add_facilities(layer, _points([(121.26, 30.18)], [existing]))
    with pytest.raises(DuplicateIdError, match="'A'"):
        add_facilities(layer, _points([(121.26, 30.18), (121.27, 30.18)], ["A", "A"]))
    with pytest.raises(SettingsError, match="no CRS"):
        add_facilities(layer, _points([(121.26, 30.18)], ["X"], crs=None))
    poly = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], index=["P"], crs="EPSG:4326")
    with pytest.raises(SettingsError, match="one point per facility"):
        add_facilities(layer, poly)
    with pytest.raises(SettingsError, match="GeoDataFrame"):
        add_facilities(layer, pd.DataFrame({"x": [1]}))
    assert add_facilities(layer, _points([], [])).equals(layer)


def test_close_facilities(ds):
    layer = ds.facilities["clinic"]
    out = close_facilities(layer, ["clinic1"])
    assert list(out.index) == ["clinic0", "clinic2"] and len(layer) == 3
    assert list(close_facilities(layer, "clinic0").index) == ["clinic1", "clinic2"]
    with pytest.raises(UnknownCodeError, match="'nope'"):
        close_facilities(layer, ["clinic0", "nope"])


def test_sites_at_gaps_one_per_failing_unit_at_its_largest_gap(canteen):
    failing = canteen.units.index[canteen.units["judged"] & ~canteen.units["passes"]]
    assert len(failing) >= 1
    sites = sites_at_gaps(canteen)
    assert sorted(sites["unit_code"]) == sorted(failing)
    assert list(sites.index) == [f"NEW-canteen-{c}" for c in sites["unit_code"]]
    for code, site in sites.iterrows():
        gaps = canteen.gaps[canteen.gaps["unit_code"] == site["unit_code"]]
        top = gaps.sort_values("residents", ascending=False).iloc[0]
        assert site["residents_left_out"] == top["residents"], code
        assert site.geometry.equals_exact(top.geometry, 1e-9)
    assert (sites["level"] == NEW_LEVEL).all() and (sites["source"] == "user").all()


def test_sites_at_gaps_filters(canteen):
    town = canteen.units.loc[UNITS[2], "township_name"]
    only = sites_at_gaps(canteen, township=town)
    assert set(only["township_code"]) <= {UNITS[2][:9]}
    assert sites_at_gaps(canteen, township=UNITS[2][:9]).index.equals(only.index)
    assert sites_at_gaps(canteen, units=[UNITS[0]]).empty  # passes already
    with pytest.raises(UnknownCodeError, match="'某镇'"):
        sites_at_gaps(canteen, township="某镇")
    with pytest.raises(UnknownCodeError, match="'330282999999'"):
        sites_at_gaps(canteen, units=["330282999999"])


def test_adding_sites_at_gaps_makes_those_units_pass(ds, net, canteen):
    sites = sites_at_gaps(canteen)
    layer = add_facilities(canteen.facilities, sites)
    after = run_audit(ds, year=2027, services=["canteen"], network=net,
                      facilities={"canteen": layer}).services["canteen"]
    table = compare_audits(canteen, after)
    county = table.loc["county"]
    assert county["units_passing_after"] > county["units_passing_before"]
    assert county["change"] == table.drop(index="county")["change"].sum()
    assert (table["change"] >= 0).all()  # adding facilities never makes a unit fail
    assert county["target"] == pytest.approx(canteen.county["target"].value)
    units = compare_audits(canteen, after, by="unit")
    assert set(units.index) >= set(sites["unit_code"][after.units.loc[sites["unit_code"],
                                                                        "passes"].to_numpy()])
    assert (units["share_within_after"] >= units["share_within_before"]).all()


def test_closing_clinics_only_lowers_coverage(ds, net):
    before = run_audit(ds, year=2027, services=["clinic"], network=net).services["clinic"]
    empty = close_facilities(before.facilities, list(before.facilities.index)[:2])
    after = run_audit(ds, year=2027, services=["clinic"], network=net,
                      facilities={"clinic": empty}).services["clinic"]
    table = compare_audits(before, after)
    assert (table["change"] <= 0).all()
    changed = compare_audits(before, after, by="unit")
    assert (changed["share_within_after"] <= changed["share_within_before"]).all()
    assert not changed.empty


def test_compare_audits_refuses_mismatches(ds, net, canteen):
    clinic = run_audit(ds, year=2027, services=["clinic"], network=net).services["clinic"]
    with pytest.raises(SettingsError, match="same service and year"):
        compare_audits(canteen, clinic)
    with pytest.raises(SettingsError, match="'district'"):
        compare_audits(canteen, canteen, by="district")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="ServiceAudit"):
        compare_audits(canteen, object())
    same = compare_audits(canteen, canteen)
    assert (same["change"] == 0).all()
    assert compare_audits(canteen, canteen, by="unit").empty
