from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given
from hypothesis import strategies as st

from qyx_geo._errors import (
    ColumnError,
    DataFileError,
    DuplicateIdError,
    OutsideCountyError,
    QyxGeoError,
    UnknownCodeError,
)
from qyx_geo._validate import closest, normalise_codes
from qyx_geo.schema import DEMAND_COLUMNS, METRIC_CRS, TOWNSHIP_COLUMNS, UNIT_COLUMNS, UNIT_KINDS
from qyx_geo.synth.demand import largest_remainder
from qyx_geo.units import (
    CENSUS_2020_POPULATION,
    load_demand,
    load_outline,
    load_seats,
    load_townships,
    load_units,
    load_village_centres,
)

INVALID = Path(__file__).parent / "fixtures" / "invalid"


@pytest.fixture(scope="module")
def townships() -> gpd.GeoDataFrame:
    return load_townships()


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    return load_units()


@pytest.fixture(scope="module")
def demand() -> gpd.GeoDataFrame:
    return load_demand()


def test_townships_are_the_24_official_units(townships):
    assert len(townships) == 24
    assert townships.index.name == "code"
    assert all(re.fullmatch(r"330282\d{3}", c) for c in townships.index)
    assert set(TOWNSHIP_COLUMNS) - {"geometry"} <= set(townships.columns)
    assert townships["kind"].value_counts().to_dict() == {"镇": 14, "街道": 5, "开发区": 5}
    assert townships.loc["330282004", "name"] == "浒山街道"
    assert townships["approximate"].all()
    assert townships.crs.to_epsg() == 4326


def test_seats_real_where_geonames_has_them(townships):
    real = townships[townships["seat_source"] == "geonames"]
    assert len(real) == 15
    assert real.loc["330282121", "seat_geonames_name"] == "Zhouxiang"
    # GeoNames' "Cixi" point is the city centre, i.e. 浒山街道
    assert real.loc["330282004", ["seat_lon", "seat_lat"]].tolist() == [121.2457, 30.1764]
    synthetic = townships[townships["seat_source"] == "synthetic"]
    assert set(synthetic["kind"]) == {"街道", "镇", "开发区"}
    assert (synthetic["seat_geonames_name"] == "").all()


def test_each_seat_lies_in_its_own_township(townships):
    seats = load_seats()
    for code, seat in seats.geometry.items():
        assert townships.loc[code, "geometry"].contains(seat), code
    assert set(seats["source"]) == {"geonames", "synthetic"}


def test_township_areas_tile_the_outline(townships):
    outline = load_outline().to_crs(METRIC_CRS).geometry.iloc[0]
    metric = townships.to_crs(METRIC_CRS)
    union = shapely.union_all(metric.geometry.to_numpy())
    assert union.symmetric_difference(outline).area / outline.area < 1e-4
    assert metric.area.sum() == pytest.approx(outline.area, rel=1e-3)  # no overlaps


def test_units_are_the_406_official_units(units, townships):
    assert len(units) == 406
    assert units.index.is_unique
    assert all(len(c) == 12 and c.isdigit() for c in units.index)
    assert (units.index.str[:9] == units["township_code"]).all()
    assert set(units["township_code"]) == set(townships.index)
    assert (units["township_name"] == units["township_code"].map(townships["name"])).all()
    assert set(UNIT_COLUMNS) - {"geometry"} <= set(units.columns)
    counts = units["kind"].value_counts().to_dict()
    assert counts == {"村委会": 294, "社区/居委会": 106, "虚拟社区": 6}
    assert set(units["kind"]) <= set(UNIT_KINDS)
    dev_zones = townships.index[townships["kind"] == "开发区"]
    assert (units.loc[units["township_code"].isin(dev_zones), "kind"] == "虚拟社区").all()
    assert units.loc["330282002002", "name"] == "曙光社区"


def test_units_flagged_approximate_and_synthetic(units):
    assert units["approximate"].all()
    assert (units["geometry_source"] == "synthetic").all()
    assert (units["centre_source"] == "synthetic").all()
    assert (units["source"] == "nbs").all()


def test_unit_areas_valid_and_inside_their_township(units, townships):
    metric = units.to_crs(METRIC_CRS)
    assert metric.geometry.is_valid.all()
    assert (metric.area > 1e4).all()  # every unit at least 1 ha
    tmetric = townships.to_crs(METRIC_CRS)
    for code, group in metric.groupby("township_code"):
        union = shapely.union_all(group.geometry.to_numpy())
        town = tmetric.loc[code, "geometry"]
        assert union.symmetric_difference(town).area / town.area < 1e-3, code


def test_centres_inside_own_unit_and_urban_ones_packed_near_seat(units, townships):
    centres = load_village_centres()
    assert centres.index.equals(units.index)
    assert (centres["source"] == "synthetic").all()
    inside = [units.loc[c, "geometry"].buffer(1e-6).contains(p) for c, p in
              centres.geometry.items()]
    assert all(inside)
    seats = load_seats().to_crs(METRIC_CRS)
    cm = centres.to_crs(METRIC_CRS)
    dist = cm.distance(seats.geometry.reindex(cm["township_code"]).set_axis(cm.index))
    street_towns = townships.index[townships["kind"] != "开发区"]
    in_towns = cm["township_code"].isin(street_towns)
    urban = dist[(cm["kind"] == "社区/居委会") & in_towns]
    rural = dist[(cm["kind"] == "村委会") & in_towns]
    assert urban.median() < 0.5 * rural.median()


def test_demand_sums_to_census_and_is_whole_people(demand, units):
    assert int(demand["pop"].sum()) == CENSUS_2020_POPULATION
    for col in ("pop", "pop_0_3", "pop_60p"):
        assert demand[col].dtype == np.int64
    assert (demand["pop_0_3"] + demand["pop_60p"] <= demand["pop"]).all()
    assert list(demand.columns) == list(DEMAND_COLUMNS)
    assert (demand["source"] == "synthetic").all()
    assert set(demand["unit_code"]) == set(units.index)  # every unit has residents


def test_demand_age_shares_plausible(demand, units):
    total = demand["pop"].sum()
    assert 0.22 <= demand["pop_60p"].sum() / total <= 0.25
    assert 0.025 <= demand["pop_0_3"].sum() / total <= 0.03
    by_unit = demand.groupby("unit_code")[["pop", "pop_60p"]].sum()
    share60 = by_unit["pop_60p"] / by_unit["pop"]
    kind = units["kind"].reindex(share60.index)
    assert share60[kind == "村委会"].mean() > share60[kind == "社区/居委会"].mean()


def test_urban_communities_denser_than_villages(demand, units):
    area_km2 = units.to_crs(METRIC_CRS).area / 1e6
    density = demand.groupby("unit_code")["pop"].sum() / area_km2
    kind = units["kind"]
    assert density[kind == "社区/居委会"].median() > 3 * density[kind == "村委会"].median()


def test_demand_points_lie_in_their_unit(demand, units):
    polys = units.geometry.reindex(demand["unit_code"]).to_numpy()
    inside = shapely.covers(shapely.buffer(polys, 1e-6), demand.geometry.to_numpy())
    assert inside.all()
    assert (demand["township_code"] == demand["unit_code"].str[:9]).all()


@given(st.lists(st.floats(0.0, 1e6), min_size=1, max_size=40), st.integers(0, 10**7))
def test_largest_remainder_sums_exactly(weights, total):
    w = np.array(weights)
    if w.sum() <= 0:
        with pytest.raises(ValueError, match="positive sum"):
            largest_remainder(w, total)
        return
    parts = largest_remainder(w, total)
    assert parts.sum() == total
    assert (parts >= 0).all()
    assert np.all(np.abs(parts - w / w.sum() * total) < 1.0 + 1e-9)


def test_normalise_codes_undoes_spreadsheet_numbers():
    s = pd.Series([330282002002, 330282002002.0, " 330282002002 ", None])
    assert normalise_codes(s).tolist() == ["330282002002"] * 3 + [None]


def test_closest_knows_synonyms_both_ways():
    assert closest("pop", ["population", "lon"]) == "population"
    assert closest("lng", ["lon", "lat"]) == "lon"
    assert closest("township_code", ["twnship_code", "x"]) == "twnship_code"
    assert closest("capacity", ["name"]) is None


def test_data_dir_override(tmp_path):
    with pytest.raises(DataFileError, match=r"does not exist.*python -m qyx_geo\.synth"):
        load_units(data_dir=tmp_path)


# --- one invalid fixture per failure mode ------------------------------------------------------

DEMAND_CASES = [
    ("demand_missing_column.csv", ColumnError, r"'pop' \(found 'population': rename it to 'pop'\)"),
    ("demand_unknown_code.csv", UnknownCodeError,
     r"line 3 \(id '330282002099-01'\): '330282002099' \(did you mean"),
    ("demand_duplicate_ids.csv", DuplicateIdError, r"repeats '330282002002-01' at line 2, line 4"),
    ("demand_outside_county.csv", OutsideCountyError,
     r"line 4 \(id '330282002002-03'\) at lon=116\.397000, lat=39\.909000.*WGS84"),
    ("demand_swapped_lonlat.csv", OutsideCountyError, r"line 3 .*look swapped.*Swap the lon/lat"),
    ("demand_empty.csv", DataFileError, r"empty \(0 bytes\)"),
    ("demand_header_only.csv", DataFileError, r"no data rows"),
    ("demand_bad_counts.csv", DataFileError, r"line 2 .*exceeds pop \(628\)"),
    ("demand_wrong_township.csv", UnknownCodeError,
     r"line 3 .*township_code '330282003'.*Set township_code to '330282002'"),
]


@pytest.mark.parametrize(("name", "error", "pattern"), DEMAND_CASES)
def test_invalid_demand_file(name, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        load_demand(path=INVALID / name)
    assert name in str(info.value)  # the message names the file
    assert isinstance(info.value, QyxGeoError)


BOUNDARY_CASES = [
    (load_units, "villages_bad_code.geojson", UnknownCodeError,
     r"12-digit.*feature 2.*'33028200200'"),
    (load_units, "villages_bad_kind.geojson", DataFileError, r"'kind' at feature 2.*'村'"),
    (load_townships, "townships_missing_column.geojson", ColumnError,
     r"'seat_lon' \(found 'seat_lng': rename it to 'seat_lon'\)"),
    (load_outline, "outline_not_polygon.geojson", DataFileError, r"\(Multi\)Polygon, got 'Point'"),
]


@pytest.mark.parametrize(("loader", "name", "error", "pattern"), BOUNDARY_CASES)
def test_invalid_boundary_file(loader, name, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        loader(path=INVALID / name)
    assert name in str(info.value)
