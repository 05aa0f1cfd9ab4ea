from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from qyx_geo._errors import (
    ColumnError,
    CoordinateError,
    DataFileError,
    DuplicateIdError,
    OutsideCountyError,
    UnknownCodeError,
    UnknownServiceError,
)
from qyx_geo.facilities import (
    FACILITY_LEVELS,
    assign_unit_codes,
    load_facilities,
    validate_facilities,
)
from qyx_geo.schema import FACILITY_COLUMNS, FACILITY_LAYERS, METRIC_CRS, WGS84
from qyx_geo.services import SERVICES
from qyx_geo.synth.facilities import LAGGING, short_unit_name
from qyx_geo.units import load_demand, load_units

INVALID = Path(__file__).parent / "fixtures" / "invalid"


@pytest.fixture(scope="module")
def layers() -> dict[str, gpd.GeoDataFrame]:
    return load_facilities()


@pytest.fixture(scope="module")
def units() -> gpd.GeoDataFrame:
    return load_units()


def test_four_layers_with_standard_columns(layers):
    # the four core layers first, then the registry's optional layers present in data/
    assert list(layers)[:4] == list(FACILITY_LAYERS)
    assert set(layers) == set(SERVICES)
    prefix = {"nursery": "NUR", "canteen": "CAN", "clinic": "CLI", "sports": "SPO"}
    prefix |= {sid: s.id_prefix for sid, s in SERVICES.items() if sid not in prefix}
    for layer, gdf in layers.items():
        n = len(FACILITY_COLUMNS) - 1
        assert list(gdf.columns[:n]) == list(FACILITY_COLUMNS[:-1])
        assert gdf.geometry.name == "geometry"
        assert gdf.index.name == "id" and gdf.index.is_unique
        assert all(re.fullmatch(rf"{prefix[layer]}-\d{{4}}", i) for i in gdf.index)
        assert (gdf["layer"] == layer).all()
        assert set(gdf["level"]) <= set(FACILITY_LEVELS[layer])
        assert gdf.crs.to_epsg() == 4326
        assert (gdf.geometry.geom_type == "Point").all()


def test_single_layer_equals_dict_entry(layers):
    one = load_facilities("canteen")
    pd.testing.assert_frame_equal(pd.DataFrame(one), pd.DataFrame(layers["canteen"]))


def test_real_rows_are_the_11_osm_hospitals(layers):
    clinic = layers["clinic"]
    osm = clinic[clinic["source"] == "osm"]
    assert len(osm) == 11
    assert "慈溪市人民医院" in set(osm["name"])
    assert osm["attribution"].str.contains("OpenStreetMap").all()
    assert osm.index.tolist() == [f"CLI-{k:04d}" for k in range(1, 12)]  # real rows first
    for layer, gdf in layers.items():
        assert set(gdf["source"]) <= {"osm", "synthetic"}
        if layer not in ("clinic", "primary_school", "junior_school"):  # OSM hospitals, schools
            assert (gdf["source"] == "synthetic").all()
    synthetic = pd.concat([g[g["source"] == "synthetic"] for g in layers.values()])
    assert synthetic["attribution"].str.startswith("synthetic").all()
    # no duplicate synthetic 卫生院 where OSM already maps the township's health centre
    assert (clinic["name"] == "匡堰镇卫生院").sum() == 1


def test_codes_match_the_unit_each_point_lies_in(layers, units):
    for gdf in layers.values():
        codes = assign_unit_codes(gdf, units)
        assert (codes["unit_code"] == gdf["unit_code"]).all()
        assert (codes["township_code"] == gdf["township_code"]).all()


def test_capacity_where_meaningful(layers):
    assert (layers["nursery"]["capacity"] > 0).all()
    assert (layers["canteen"]["capacity"] > 0).all()
    assert layers["sports"]["capacity"].isna().all()
    clinic = layers["clinic"]
    assert clinic.loc[clinic["level"].isin(["村卫生室", "社区卫生服务站"]), "capacity"].isna().all()
    assert (clinic.loc[(clinic["level"] == "卫生院") & (clinic["source"] == "synthetic"),
                       "capacity"] > 0).all()


def test_unit_level_names_follow_township_and_village(layers, units):
    pts = layers["nursery"][layers["nursery"]["level"] == "托育点"]
    for ident, row in pts.head(20).iterrows():
        unit = units.loc[row["unit_code"]]
        expected = f"{unit['township_name']}{short_unit_name(unit['name'])}托育点"
        assert row["name"] == expected, ident
    assert short_unit_name("沈五村委会") == "沈五村"
    assert short_unit_name("马家路居委会") == "马家路社区"


def test_nursery_places_per_1000_between_2023_and_2027_targets(layers):
    demand = load_demand()
    per_1000 = layers["nursery"]["capacity"].sum() / demand["pop"].sum() * 1000
    assert 3.5 <= per_1000 <= 4.5  # 2023 target 4.0, 2027 target 5.5


def _share_of_units_with(gdf: gpd.GeoDataFrame, units: gpd.GeoDataFrame,
                         kinds: tuple[str, ...]) -> pd.Series:
    judged = units[units["kind"].isin(kinds)]
    has = judged.index.isin(gdf["unit_code"])
    return pd.Series(has, index=judged.index).groupby(judged["township_code"]).mean()


def test_coverage_deliberately_incomplete_and_uneven(layers, units):
    all_kinds = ("社区/居委会", "村委会", "虚拟社区")
    canteen_units = units.index.isin(layers["canteen"]["unit_code"]).mean()
    assert 0.80 <= canteen_units <= 0.88  # plan wants 95 % by 2027
    sports = _share_of_units_with(layers["sports"], units, ("村委会",))
    villages = units[units["kind"] == "村委会"]
    share = villages.index.isin(layers["sports"]["unit_code"]).mean()
    assert 0.8 <= share < 1.0  # some administrative villages lack a sports ground
    by_town = _share_of_units_with(layers["canteen"], units, all_kinds)
    lagging = [t for t, what in LAGGING.items() if "canteen" in what]
    others = by_town.index.difference(lagging).difference(
        units.loc[units["kind"] == "虚拟社区", "township_code"])
    assert by_town[lagging].mean() < by_town[others].mean() - 0.15
    assert by_town.max() == 1.0 and by_town.min() < 0.75
    assert sports.min() < 0.8


def test_facilities_sit_near_residents(layers, units):
    demand = load_demand().to_crs(METRIC_CRS)
    tree = shapely.STRtree(demand.geometry.to_numpy())
    for layer, gdf in layers.items():
        pts = gdf[gdf["source"] == "synthetic"].to_crs(METRIC_CRS).geometry.to_numpy()
        if len(pts) == 0:  # the school layers are all OSM
            continue
        _, dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
        assert np.quantile(dist, 0.9) < 400, layer
        assert dist.max() < 3000, layer


def test_validate_facilities_accepts_spreadsheet_style_input(units):
    gdf = load_facilities("nursery").head(3).reset_index()
    gdf["unit_code"] = gdf["unit_code"].astype("int64")  # as a spreadsheet reader returns it
    gdf["township_code"] = gdf["township_code"].astype("int64").astype(float)
    out = validate_facilities(gdf, source_name="register.xlsx", layer="nursery", units=units)
    assert out.index.name == "id"
    assert out["unit_code"].str.len().eq(12).all()
    assert gdf["unit_code"].dtype == np.int64  # the caller's frame is not changed


def test_validate_facilities_converts_crs(units):
    gdf = load_facilities("sports").head(2)
    out = validate_facilities(gdf.to_crs(METRIC_CRS), source_name="x", units=units)
    assert out.crs.to_epsg() == 4326
    assert np.allclose(shapely.get_coordinates(out.geometry.to_numpy()),
                       shapely.get_coordinates(gdf.geometry.to_numpy()))


def test_validate_facilities_reports_row_of_missing_point(units):
    gdf = load_facilities("sports").head(3).copy()
    gdf.loc[gdf.index[1], "geometry"] = None
    gdf = gdf.set_crs(WGS84, allow_override=True)
    with pytest.raises(CoordinateError, match="point location") as info:
        validate_facilities(gdf, source_name="sports.csv", units=units)
    assert "feature 2" in str(info.value) and "SPO-0002" in str(info.value)


def test_empty_code_points_to_assign_unit_codes(units):
    gdf = load_facilities("canteen").head(3).copy()
    gdf.loc[gdf.index[2], "unit_code"] = None
    pattern = r"'unit_code' is empty at feature 3.*assign_unit_codes"
    with pytest.raises(UnknownCodeError, match=pattern):
        validate_facilities(gdf, source_name="register.csv", units=units)
    filled = gdf.copy()
    filled[["unit_code", "township_code"]] = assign_unit_codes(gdf, units)
    assert validate_facilities(filled, source_name="register.csv", units=units).index.size == 3


def test_unknown_layer_name():
    with pytest.raises(UnknownServiceError, match="library"):
        load_facilities("library")
    with pytest.raises(ValueError, match="needs a layer"):
        load_facilities(path="x.geojson")


FACILITY_CASES = [
    ("facilities_missing_column.geojson", ColumnError,
     r"'unit_code' \(found 'village_code': rename it to 'unit_code'\)"),
    ("facilities_duplicate_ids.geojson", DuplicateIdError, r"'NUR-0021' at feature 1, feature 3"),
    ("facilities_unknown_code.geojson", UnknownCodeError,
     r"feature 2 \(id 'NUR-0022'\): '330282999201' \(did you mean"),
    ("facilities_township_mismatch.geojson", UnknownCodeError,
     r"feature 1 .*Set township_code to '330282121'"),
    ("facilities_outside_county.geojson", OutsideCountyError,
     r"feature 2 \(id 'NUR-0022'\) at lon=121\.900000, lat=30\.600000"),
    ("facilities_swapped_lonlat.geojson", OutsideCountyError, r"feature 3 .*look swapped"),
    ("facilities_broken.geojson", DataFileError, r"Cannot read .*re-export it"),
    ("facilities_no_features.geojson", DataFileError, r"contains no features"),
    ("facilities_bad_layer.geojson", DataFileError,
     r"'layer' at feature 1 \(id 'NUR-0021'\) is 'library'; allowed values are \['nursery'\]"),
    ("facilities_negative_capacity.geojson", DataFileError,
     r"'capacity' at feature 2 .* is -20\.0; capacity .* must be a number >= 0"),
    ("facilities_bad_source.geojson", DataFileError, r"'source' at feature 2 .*'amap'"),
]


@pytest.mark.parametrize(("name", "error", "pattern"), FACILITY_CASES)
def test_invalid_facility_file(name, error, pattern):
    with pytest.raises(error, match=pattern) as info:
        load_facilities("nursery", path=INVALID / name)
    assert name in str(info.value)


def test_missing_facility_file(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_facilities("nursery", path=tmp_path / "nope.geojson")
