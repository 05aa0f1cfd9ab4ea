from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from qyx_geo._errors import ColumnError, SettingsError
from qyx_geo.coverage import (
    capacity_by_unit,
    county_summary,
    coverage_gaps,
    shortfall_units,
    township_table,
    unit_coverage,
    weighted_median,
)
from qyx_geo.targets import Target, target_for

T1, T2, T3 = "330282001", "330282002", "330282003"
U = ["330282001001", "330282001002", "330282002001", "330282002002", "330282003001"]


def _units() -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(
        {"name": ["甲社区", "乙村", "丙村", "丁社区", "戊村"],
         "township_code": [T1, T1, T2, T2, T3],
         "township_name": ["一街道", "一街道", "二镇", "二镇", "三镇"],
         "kind": ["社区/居委会", "村委会", "村委会", "社区/居委会", "村委会"]},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(5)],
        index=pd.Index(U, name="code"), crs="EPSG:4326")


def _townships() -> pd.DataFrame:
    return pd.DataFrame({"name": ["一街道", "二镇", "三镇"]}, index=pd.Index([T1, T2, T3]))


def _points() -> gpd.GeoDataFrame:
    # unit: (pop, minutes, facility)
    rows = [
        ("p01", U[0], 100, 5.0, "fA"), ("p02", U[0], 100, 12.0, "fA"),   # 100 % within
        ("p03", U[1], 60, 8.0, "fA"), ("p04", U[1], 40, 25.0, "fB"),     # 60 %
        ("p05", U[2], 90, 14.0, "fB"), ("p06", U[2], 10, np.nan, None),  # 90 %, one off-network
        ("p07", U[3], 50, np.inf, None), ("p08", U[3], 50, 30.0, "fC"),  # 0 %
        ("p09", U[4], 0, 3.0, "fC"),                                     # nobody of the group
    ]
    ids, unit, pop, minutes, fac = zip(*rows, strict=True)
    return gpd.GeoDataFrame({"unit_code": unit, "pop": np.array(pop, float),
                             "minutes": minutes, "facility_id": fac},
                            geometry=[shapely.Point(i, 0.5) for i in range(len(ids))],
                            index=pd.Index(ids, name="id"), crs="EPSG:4326")


def _score(points=None, **kw):
    kw = {"demand_column": "pop", "threshold_minutes": 15.0, "min_share": 0.8} | kw
    return unit_coverage(_points() if points is None else points, _units(), **kw)


def test_unit_coverage_hand_computed():
    r = _score()
    assert list(r.index) == U
    np.testing.assert_allclose(r["share_within"].to_numpy()[:4], [1.0, 0.6, 0.9, 0.0])
    assert math.isnan(r.loc[U[4], "share_within"])
    np.testing.assert_allclose(r["population"], [200, 100, 100, 100, 0])
    np.testing.assert_allclose(r["uncovered"], [0, 40, 10, 100, 0])
    # weighted (lower) median: 甲 5 (100 of 200 reached at 5 min), 乙 8, 丙 14, 丁 30
    np.testing.assert_allclose(r["median_minutes"].to_numpy()[:4], [5.0, 8.0, 14.0, 30.0])
    assert r.loc[U[0], "nearest_facility"] == "fA" and r.loc[U[0], "nearest_minutes"] == 5.0
    assert r.loc[U[3], "nearest_facility"] == "fC" and r.loc[U[3], "nearest_minutes"] == 30.0
    assert list(r["passes"]) == [True, False, True, False, False]
    assert list(r["judged"]) == [True, True, True, True, False]  # 戊村 has no residents
    assert r.crs == _units().crs and r.geometry.equals(_units().geometry)


def test_unit_kinds_restrict_judging():
    r = _score(unit_kinds=("村委会",))
    assert list(r["judged"]) == [False, True, True, False, False]
    assert list(r["passes"]) == [False, False, True, False, False]


def test_min_share_and_threshold():
    assert list(_score(min_share=0.6)["passes"]) == [True, True, True, False, False]
    assert list(_score(threshold_minutes=30.0)["passes"]) == [True, True, True, False, False]
    assert list(_score(threshold_minutes=30.0, min_share=0.5)["passes"]) == [True] * 4 + [False]


def test_inputs_not_mutated():
    pts, units = _points(), _units()
    before_p, before_u = pts.copy(), units.copy()
    unit_coverage(pts, units, demand_column="pop", threshold_minutes=15, min_share=0.8)
    pd.testing.assert_frame_equal(pts, before_p)
    pd.testing.assert_frame_equal(units, before_u)


def test_bad_arguments():
    with pytest.raises(ColumnError, match="minutes"):
        unit_coverage(_points().drop(columns="minutes"), _units(), demand_column="pop",
                      threshold_minutes=15, min_share=0.8)
    with pytest.raises(SettingsError, match="min_share"):
        _score(min_share=1.2)
    with pytest.raises(SettingsError, match="threshold_minutes"):
        _score(threshold_minutes=0)
    # the settings' rule (qyx_geo.settings.check_setting): finite, typed, plausible
    for bad in ({"threshold_minutes": math.inf}, {"threshold_minutes": 1e9},
                {"min_share": True}, {"min_share": math.nan}):
        with pytest.raises(SettingsError, match=next(iter(bad))):
            _score(**bad)
    bad = _points()
    bad.loc["p01", "pop"] = -1
    with pytest.raises(SettingsError, match="p01"):
        _score(points=bad)


def test_township_table_and_ranking():
    units = _score()
    target = target_for("canteen", 2027)  # >= 95 %
    t = township_table(units, _townships(), target=target)
    assert list(t["units_judged"]) == [2, 2, 0]
    assert list(t["units_passing"]) == [1, 1, 0]
    assert list(t["shortfall_units"]) == [1, 1, 0]
    # equal share passing (50 %): 一街道 covers 160/300 residents, 二镇 90/200 -> 一街道 first
    assert list(t["rank"].astype("float").fillna(-1)) == [1, 2, -1]
    assert t["met"].tolist()[:2] == [False, False] and pd.isna(t["met"].iloc[2])
    assert t["residents_within_share"].iloc[0] == pytest.approx(260 / 300)


def test_county_summary_vs_target():
    c = county_summary(_score(), target=target_for("canteen", 2027))
    assert (c["units_judged"], c["units_passing"]) == (4, 2)
    assert c["share_passing"] == 0.5 and c["met"] is False and c["shortfall_units"] == 2
    assert c["residents_within_share"] == pytest.approx(350 / 500)
    none = county_summary(_score(), target=None)
    assert none["met"] is None and none["shortfall_units"] == 0


@pytest.mark.parametrize(("judged", "passing", "value", "expected"), [
    (406, 386, 0.95, 0), (406, 385, 0.95, 1), (20, 19, 0.95, 0), (20, 0, 1.0, 20), (0, 0, 1.0, 0),
])
def test_shortfall_units(judged, passing, value, expected):
    t = Target(key="k", value=value, op=">=", text="", clause="", year=2027)
    assert shortfall_units(judged, passing, t) == expected


def test_gaps():
    units = _score()
    g = coverage_gaps(_points(), units, demand_column="pop", threshold_minutes=15)
    assert list(g.index) == ["p07", "p08", "p04", "p06"]  # residents desc, then id
    assert g.loc["p06", "too_far"] and math.isnan(g.loc["p06", "minutes"])
    assert g.loc["p08", "unit_name"] == "丁社区" and g.loc["p08", "township_name"] == "二镇"
    assert g["residents"].sum() == 150 and g.crs == "EPSG:4326"


def test_capacity_by_unit():
    pts = _points()
    access = pd.Series([6.0, 4.0, 5.0, 5.0, 2.0, np.nan, 0.0, 0.0, 9.0], index=pts.index)
    per_unit, county = capacity_by_unit(access, pts, _units(), capacity_total=3.0,
                                        target=target_for("nursery", 2027, kind="capacity"))
    np.testing.assert_allclose(per_unit["places_per_1000"].to_numpy()[:4], [5.0, 5.0, 1.8, 0.0])
    assert list(per_unit["meets_target"].to_numpy()[:4]) == [False, False, False, False]
    # (600 + 400 + 300 + 200 + 180) / 500 residents
    assert county["places_per_1000"] == pytest.approx(1680 / 500)
    assert county["places_per_1000_total"] == pytest.approx(3.0 / 500 * 1000)
    assert county["met"] is False


def test_weighted_median():
    assert weighted_median(np.array([1.0, 2.0, 3.0]), np.array([1.0, 1.0, 1.0])) == 2.0
    assert weighted_median(np.array([np.nan, 1.0]), np.array([3.0, 1.0])) == math.inf
    assert math.isnan(weighted_median(np.array([1.0]), np.array([0.0])))


# ------------------------------------------------------------------ properties

_point_rows = st.lists(
    st.tuples(st.integers(0, 4), st.floats(0, 500, allow_nan=False),
              st.one_of(st.floats(0, 60, allow_nan=False), st.just(np.inf), st.just(np.nan))),
    min_size=1, max_size=40)


def _random_points(rows) -> gpd.GeoDataFrame:
    unit, pop, minutes = zip(*rows, strict=True)
    return gpd.GeoDataFrame(
        {"unit_code": [U[i] for i in unit], "pop": pop, "minutes": minutes,
         "facility_id": [f"f{i % 3}" for i in range(len(rows))]},
        geometry=[shapely.Point(i, 0) for i in range(len(rows))],
        index=pd.Index([f"p{i:03d}" for i in range(len(rows))], name="id"), crs="EPSG:4326")


@settings(max_examples=60, deadline=None)
@given(_point_rows, st.floats(1, 60), st.floats(0, 1, exclude_min=True),
       st.randoms(use_true_random=False))
def test_property_shares_in_range_and_order_invariant(rows, threshold, min_share, rnd):
    pts = _random_points(rows)
    kw = {"demand_column": "pop", "threshold_minutes": threshold, "min_share": min_share}
    a = unit_coverage(pts, _units(), **kw)
    share = a["share_within"].dropna()
    assert ((share >= 0) & (share <= 1)).all()
    shuffled = pts.iloc[rnd.sample(range(len(pts)), len(pts))]
    units = _units()
    b = unit_coverage(shuffled, units.iloc[::-1], **kw).loc[a.index]
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                  pd.DataFrame(b.drop(columns="geometry")))
    t = township_table(a, _townships())
    assert ((t["share_passing"].dropna() >= 0) & (t["share_passing"].dropna() <= 1)).all()
    tb = township_table(b, _townships().iloc[::-1]).loc[t.index]
    pd.testing.assert_frame_equal(t, tb)
