"""Tests of qyx_geo.intake: one small register per problem, and the mixed-problem register."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import openpyxl
import pandas as pd
import pyproj
import pytest
import shapely

from qyx_geo import crs as qcrs
from qyx_geo import units as qunits
from qyx_geo._errors import (
    ColumnError,
    DataFileError,
    NetworkError,
    QyxGeoError,
    SettingsError,
)
from qyx_geo._outputs import MANIFEST
from qyx_geo.cli import main
from qyx_geo.facilities import validate_facilities
from qyx_geo.intake import REPORT_COLUMNS, IntakeResult, import_register, write_intake
from qyx_geo.intake._names import PlaceMatcher, place_keys, recognise_headers
from qyx_geo.intake._readers import CellError, parse_count, parse_lonlat, parse_number
from qyx_geo.schema import FACILITY_COLUMNS

REG = Path(__file__).parent / "fixtures" / "registers"
MIXED = REG / "canteen_mixed_gbk_gcj02.csv"
GEOD = pyproj.Geod(ellps="WGS84")


@functools.lru_cache(maxsize=1)
def reference() -> dict[str, object]:
    return {"units": qunits.load_units(), "townships": qunits.load_townships(),
            "outline": qunits.load_outline()}


def imp(name: str | Path, **kwargs: object) -> IntakeResult:
    path = name if isinstance(name, Path) else REG / name
    return import_register(path, **{**reference(), **kwargs})  # type: ignore[arg-type]


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    return float(GEOD.inv(lon1, lat1, lon2, lat2)[2])


def row(result: IntakeResult, n: int) -> pd.Series:
    return result.report.set_index("row").loc[n]


def check_accounting(result: IntakeResult) -> None:
    c = result.counts
    assert c["accepted"] + c["accepted-with-changes"] + c["rejected"] == c["input"]
    assert len(result.report) == c["input"]
    assert result.report["row"].is_unique
    assert len(result.layer) == c["accepted"] + c["accepted-with-changes"]
    assert list(result.report.columns) == list(REPORT_COLUMNS)
    rejected = result.report["status"] == "rejected"
    assert (result.report.loc[rejected, "reason"].str.len() > 0).all()
    changed = result.report["status"] == "accepted-with-changes"
    assert (result.report.loc[changed, "changes"].str.len() > 0).all()
    assert set(result.layer["intake_row"]) == set(result.report.loc[~rejected, "row"])


# -- the register with every problem at once --------------------------------------------------

@pytest.fixture(scope="module")
def mixed() -> IntakeResult:
    return imp(MIXED, layer="canteen", crs="gcj02")


def test_mixed_register_accounts_for_every_row(mixed: IntakeResult) -> None:
    check_accounting(mixed)
    assert dict(mixed.counts) == {"input": 12, "accepted": 8, "accepted-with-changes": 2,
                                  "rejected": 2}
    assert mixed.encoding == "gbk"
    assert list(mixed.report["row"]) == list(range(3, 15))  # title on row 1, header on row 2
    assert any("第 2 行" in w for w in mixed.warnings)


def test_mixed_register_positions_match_the_truth(mixed: IntakeResult) -> None:
    truth = json.loads((REG / "canteen_mixed_truth.json").read_text(encoding="utf-8"))
    assert len(mixed.layer) == 10
    for _, fac in mixed.layer.iterrows():
        want = truth[str(fac["intake_row"])]
        assert fac["name"] == want["name"]
        # GCJ-02 written with 6 decimals (about 0.1 m), converted back by iteration
        assert metres(fac.geometry.x, fac.geometry.y, *want["wgs84"]) < 0.2
        assert fac["unit_code"] == want["code"]


def test_mixed_register_each_problem_reported(mixed: IntakeResult) -> None:
    swapped = row(mixed, 5)
    assert swapped["status"] == "accepted-with-changes" and "swapped" in swapped["changes"]
    unknown = row(mixed, 7)
    assert unknown["status"] == "accepted-with-changes"
    assert "振东新村" in unknown["changes"] and "振东村委会 (330282118211)" in unknown["candidates"]
    assert unknown["unit_code"] == "330282118211"
    duplicate = row(mixed, 11)
    assert duplicate["status"] == "rejected" and "row 10" in duplicate["reason"]
    address = row(mixed, 12)
    assert address["status"] == "rejected" and "offline" in address["reason"]
    assert "fallback='village_centre'" in address["reason"]
    variant = row(mixed, 9)  # 卫北社区 → 卫北居委会 in 观海卫镇 (a 卫北 exists elsewhere too)
    assert variant["status"] == "accepted" and variant["unit_code"] == "330282107021"
    assert not any("疑似" in w for w in mixed.warnings)  # declared crs fits


def test_mixed_layer_follows_the_schema(mixed: IntakeResult) -> None:
    layer = mixed.layer
    assert list(layer.columns[: len(FACILITY_COLUMNS) - 1]) == list(FACILITY_COLUMNS[:-1])
    assert layer.index.name == "id" and layer.index.is_unique
    assert layer.crs.to_epsg() == 4326
    assert (layer["source"] == "user").all() and (layer["layer"] == "canteen").all()
    assert layer.loc["user-canteen-r14", "capacity"] == 25.0  # "25个"
    assert layer.loc["user-canteen-r3", "level"] == "助餐点"
    validate_facilities(layer, source_name="mixed", layer="canteen",
                        units=reference()["units"],  # type: ignore[arg-type]
                        outline=reference()["outline"].geometry.iloc[0])  # type: ignore[union-attr]


def test_mixed_register_with_village_centre_fallback() -> None:
    result = imp(MIXED, layer="canteen", crs="gcj02", fallback="village_centre")
    check_accounting(result)
    placed = row(result, 12)
    assert placed["status"] == "accepted-with-changes" and placed["placement"] == "village_centre"
    units = reference()["units"]
    centre = units.loc["330282120205", ["centre_lon", "centre_lat"]]  # type: ignore[union-attr]
    assert metres(placed["lon"], placed["lat"], *centre) < 0.01
    assert result.layer.loc["user-canteen-r12", "placement"] == "village_centre"


def test_declared_wgs84_but_gcj02_is_flagged_by_village_centres() -> None:
    result = imp(MIXED, layer="canteen", crs="wgs84")
    check_accounting(result)
    shift = [w for w in result.warnings if "crs='gcj02'" in w]
    assert len(shift) == 1 and "village centres" in shift[0]


def _grid_around(points: list[tuple[float, float]]) -> gpd.GeoSeries:
    """Short streets through each point (EPSG:4549), like a facility's frontage."""
    lines = []
    for lon, lat in points:
        x, y = qcrs.from_wgs84(lon, lat, crs="epsg4549")
        lines += [shapely.LineString([(x - 200, y + 5), (x + 200, y + 5)]),
                  shapely.LineString([(x - 5, y - 200), (x - 5, y + 200)])]
    return gpd.GeoSeries(lines, crs="EPSG:4549")


def test_shift_check_against_a_network() -> None:
    truth = json.loads((REG / "canteen_mixed_truth.json").read_text(encoding="utf-8"))
    streets = _grid_around([tuple(t["wgs84"]) for t in truth.values()])
    wrong = imp(MIXED, layer="canteen", crs="wgs84", network=streets)
    assert any("crs='gcj02'" in w and "street" in w for w in wrong.warnings)
    right = imp(MIXED, layer="canteen", crs="gcj02", network=streets)
    assert not any("疑似" in w for w in right.warnings)

    class Net:  # anything with an ``edges`` GeoDataFrame
        edges = gpd.GeoDataFrame(geometry=streets)

    assert any("crs='gcj02'" in w for w in
               imp(MIXED, layer="canteen", crs="wgs84", network=Net()).warnings)
    off = imp(MIXED, layer="canteen", crs="wgs84", network=streets, shift_check="off")
    assert not any("疑似" in w for w in off.warnings)


def test_shift_check_against_a_networkx_graph() -> None:
    truth = json.loads((REG / "canteen_mixed_truth.json").read_text(encoding="utf-8"))
    graph = nx.MultiDiGraph(crs="EPSG:4549")
    for i, line in enumerate(_grid_around([tuple(t["wgs84"]) for t in truth.values()])):
        (x0, y0), (x1, y1) = line.coords
        graph.add_node(2 * i, x=x0, y=y0)
        graph.add_node(2 * i + 1, x=x1, y=y1)
        graph.add_edge(2 * i, 2 * i + 1, key=0, length=line.length)
    wrong = imp(MIXED, layer="canteen", crs="wgs84", network=graph)
    assert any("crs='gcj02'" in w and "street" in w for w in wrong.warnings)
    assert not any("疑似" in w for w in
                   imp(MIXED, layer="canteen", crs="gcj02", network=graph).warnings)


def test_shift_check_falls_back_when_the_network_cannot_load(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import qyx_geo.network

    def broken(*args: object, **kwargs: object) -> None:
        raise NetworkError("no network here")

    monkeypatch.setattr(qyx_geo.network, "load_network", broken)
    result = imp(MIXED, layer="canteen", crs="wgs84", shift_check="network")
    assert any("no network here" in w for w in result.warnings)
    assert any("crs='gcj02'" in w and "village centres" in w for w in result.warnings)
    with pytest.raises(SettingsError, match="'int'"):
        imp(MIXED, layer="canteen", network=5)


# -- one register per problem -----------------------------------------------------------------

def test_utf8_bom_english_headers() -> None:
    result = imp("nursery_utf8_bom.csv", layer="nursery")
    check_accounting(result)
    assert result.encoding == "utf-8-sig" and result.counts["accepted"] == 3
    assert list(result.layer.index) == ["N001", "N002", "N003"]
    assert list(result.layer["capacity"]) == [20.0, 40.0, 60.0]
    assert result.columns["lon"] == "lng" and result.columns["capacity"] == "places"


def test_xlsx_with_title_rows_units_in_headers_and_variants() -> None:
    result = imp("clinic_title_rows.xlsx", layer="clinic")
    check_accounting(result)
    assert result.encoding is None and list(result.report["row"]) == [5, 6, 7]
    assert result.columns["capacity"] == "床位数（张）" and result.columns["lon"] == "经度(WGS84)"
    assert row(result, 5)["unit_code"] == "330282002211"  # 周塘西村民委员会
    unnamed = row(result, 6)
    assert unnamed["status"] == "accepted-with-changes" and "name was empty" in unnamed["changes"]
    fullwidth_unknown = row(result, 7)  # ＸＸ → assigned by location
    assert fullwidth_unknown["unit_code"] == "330282118208"
    assert imp("clinic_title_rows.xlsx", layer="clinic", sheet="卫生室").counts == result.counts
    assert imp("clinic_title_rows.xlsx", layer="clinic", sheet=0).counts == result.counts
    with pytest.raises(DataFileError, match="卫生室"):
        imp("clinic_title_rows.xlsx", layer="clinic", sheet="Sheet9")
    with pytest.raises(DataFileError, match="out of range"):
        imp("clinic_title_rows.xlsx", layer="clinic", sheet=5)


def test_xlsx_with_a_two_row_merged_header(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["托育机构名单"])
    sheet.append(["名称", "坐标", None, "托位数"])
    sheet.append([None, "经度", "纬度", None])
    sheet.append(["甲园", 121.2255, 30.1973, 30])
    sheet.append(["经度", "纬度"])  # header words in a data row: still data (rejected, reported)
    for cells in ("A2:A3", "B2:C2", "D2:D3"):
        sheet.merge_cells(cells)
    book.save(tmp_path / "two_rows.xlsx")
    result = imp(tmp_path / "two_rows.xlsx", layer="nursery")
    check_accounting(result)
    assert dict(result.columns) == {"name": "名称", "lon": "经度", "lat": "纬度",
                                    "capacity": "托位数"}
    assert list(result.report["row"]) == [4, 5]
    assert result.layer["name"].iloc[0] == "甲园" and result.layer["capacity"].iloc[0] == 30.0


def test_bd09_register_and_a_wrong_declaration() -> None:
    right = imp("sports_bd09.csv", layer="sports", crs="bd09")
    check_accounting(right)
    assert right.counts["accepted"] == 3 and not any("疑似" in w for w in right.warnings)
    units = reference()["units"]
    for _, fac in right.layer.iterrows():
        centre = units.loc[fac["unit_code"], ["centre_lon", "centre_lat"]]  # type: ignore[union-attr]
        assert metres(fac.geometry.x, fac.geometry.y, *centre) < 200
    wrong = imp("sports_bd09.csv", layer="sports", crs="gcj02")
    assert any("crs='bd09'" in w for w in wrong.warnings)


def test_geojson_with_a_null_geometry() -> None:
    result = imp("canteen_points.geojson", layer="canteen")
    check_accounting(result)
    assert result.counts["rejected"] == 1 and "offline" in row(result, 3)["reason"]
    placed = imp("canteen_points.geojson", layer="canteen", fallback="village_centre")
    assert placed.counts["rejected"] == 0
    assert row(placed, 3)["placement"] == "village_centre"


def test_geopackage_in_epsg4549_is_read_in_its_declared_system() -> None:
    result = imp("nursery_epsg4549.gpkg", layer="nursery")
    check_accounting(result)
    assert result.crs == "epsg4549" and result.counts["accepted"] == 3
    assert any("EPSG:4549" in w for w in result.warnings)
    assert list(result.layer["unit_code"]) == ["330282002211", "330282002212", "330282005201"]
    assert list(result.layer["capacity"]) == [20.0, 30.0, 40.0]


def test_geo_file_in_another_projection_is_converted(tmp_path: Path) -> None:
    layer = gpd.read_file(REG / "nursery_epsg4549.gpkg").to_crs("EPSG:3857")
    layer.to_file(tmp_path / "web_mercator.geojson", driver="GeoJSON")
    result = imp(tmp_path / "web_mercator.geojson", layer="nursery")
    check_accounting(result)
    assert result.counts["accepted"] == 3 and any("EPSG:3857" in w for w in result.warnings)
    reference_layer = imp("nursery_epsg4549.gpkg", layer="nursery").layer
    assert np.allclose(result.layer.geometry.x, reference_layer.geometry.x, atol=1e-7)


def test_points_beside_polygons_are_not_reported_as_changed(tmp_path: Path) -> None:
    # A file mixing points and polygons: only the polygon's row was changed (a point on it).
    layer = gpd.read_file(REG / "nursery_epsg4549.gpkg").to_crs("EPSG:4326")
    geoms = list(layer.geometry)
    geoms[1] = shapely.Point(geoms[1].x, geoms[1].y).buffer(0.0002)
    layer = layer.set_geometry(gpd.GeoSeries(geoms, crs="EPSG:4326"))
    layer.to_file(tmp_path / "mixed_shapes.geojson", driver="GeoJSON")
    result = imp(tmp_path / "mixed_shapes.geojson", layer="nursery")
    check_accounting(result)
    statuses = list(result.report["status"])
    assert statuses[1] == "accepted-with-changes"
    assert "Polygon" in str(result.report["changes"].iloc[1])
    assert statuses[0] == statuses[2] == "accepted"


def test_duplicates_rejected_or_kept_never_merged() -> None:
    result = imp("duplicates.csv", layer="nursery")
    check_accounting(result)
    assert list(result.report["status"]) == ["accepted", "rejected", "rejected", "accepted"]
    assert "same id as row 2" in row(result, 3)["reason"]
    assert "same name as row 2, 30 m apart" in row(result, 4)["reason"]
    assert any("2 duplicate row(s)" in w for w in result.warnings)
    kept = imp("duplicates.csv", layer="nursery", duplicates="keep")
    check_accounting(kept)
    assert kept.counts["rejected"] == 0 and "A1-r3" in kept.layer.index
    assert "likely a duplicate" in row(kept, 4)["notes"]
    far = imp("duplicates.csv", layer="nursery", duplicate_dist_m=5000.0)
    assert row(far, 5)["status"] == "rejected"  # ~960 m away: a duplicate at 5 km


def test_address_only_rows() -> None:
    rejected = imp("address_only.csv", layer="canteen")
    check_accounting(rejected)
    assert rejected.counts["rejected"] == 3
    placed = imp("address_only.csv", layer="canteen", fallback="village_centre")
    check_accounting(placed)
    assert list(placed.report["status"]) == ["accepted-with-changes", "rejected",
                                              "accepted-with-changes"]
    assert "some village" not in row(placed, 3)["reason"]
    assert (placed.layer["placement"] == "village_centre").all()


def test_village_inferred_from_the_address(tmp_path: Path) -> None:
    path = tmp_path / "addresses.csv"
    path.write_text("名称,经度,纬度,地址\n"
                    "甲,,,慈溪市长河镇宁丰村宁丰路88号\n"
                    "乙,,,观海卫镇卫北村东路3号\n"
                    "丙,,,卫北社区东路3号\n"
                    "丁,,,某镇某路1号\n", encoding="utf-8")
    result = imp(path, layer="canteen", fallback="village_centre")
    check_accounting(result)
    assert list(result.report["unit_code"][:3]) == ["330282120205", "330282107205",
                                                    "330282107021"]
    assert "inferred from the address" in row(result, 2)["notes"]
    assert list(result.report["status"]) == ["accepted-with-changes"] * 3 + ["rejected"]
    plain = imp(path, layer="canteen")  # without the fallback, all are reported, none placed
    assert plain.counts["rejected"] == 4
    assert "fallback='village_centre'" in row(plain, 2)["reason"]


def test_points_outside_the_county() -> None:
    result = imp("outside_county.csv", layer="canteen")
    check_accounting(result)
    far = row(result, 2)
    assert far["status"] == "rejected" and "outside the county" in far["reason"]
    near = row(result, 3)  # ~220 m across the border: kept with a note
    assert near["status"] == "accepted" and "outside the county" in near["notes"]
    strict = imp("outside_county.csv", layer="canteen", outside_tolerance_m=100.0)
    assert row(strict, 3)["status"] == "rejected"


def test_swapped_columns_are_fixed_and_flagged() -> None:
    result = imp("swapped.csv", layer="canteen")
    check_accounting(result)
    assert result.counts["accepted-with-changes"] == 3
    assert any("headers are exchanged" in w for w in result.warnings)
    assert result.layer.geometry.x.between(121.0, 121.5).all()


def test_gb18030_only_characters() -> None:
    result = imp("gb18030.csv", layer="canteen")
    assert result.encoding == "gb18030" and result.layer["name"].iloc[0] == "𠀾记食堂"


def test_combined_lonlat_column_and_degree_values() -> None:
    result = imp("lonlat_column.csv", layer="canteen")
    check_accounting(result)
    assert result.columns["lonlat"] == "经纬度"
    assert list(result.report["status"]) == ["accepted", "accepted", "rejected"]
    assert "三十" in row(result, 4)["reason"]


def test_explicit_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "odd.csv"
    path.write_text("站点,E,N,片区\n甲站,121.2255,30.1973,曙光社区\n", encoding="utf-8")
    with pytest.raises(ColumnError, match="no coordinate columns"):
        imp(path, layer="sports")
    result = imp(path, layer="sports", columns={"站点": "name", "E": "lon", "N": "lat",
                                                "片区": "village"})
    assert result.layer["name"].iloc[0] == "甲站"
    assert result.layer["unit_code"].iloc[0] == "330282002002"
    with pytest.raises(ColumnError, match="unknown field 'height'"):
        imp(path, layer="sports", columns={"E": "height"})
    with pytest.raises(ColumnError, match="not in the file"):
        imp(path, layer="sports", columns={"经度": "lon"})


def test_only_one_coordinate_column(tmp_path: Path) -> None:
    path = tmp_path / "half.csv"
    path.write_text("名称,经度\n甲,121.2\n", encoding="utf-8")
    with pytest.raises(ColumnError, match="no lat column"):
        imp(path, layer="sports")


def test_ragged_rows_and_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "ragged.csv"
    path.write_text("名称,经度,纬度\n甲,121.2255,30.1973\n\n乙,121.2214,30.1873,多余\n丙,121.2214\n",
                    encoding="utf-8")
    result = imp(path, layer="canteen")
    check_accounting(result)
    assert result.counts["input"] == 3
    assert "more fields than headers" in row(result, 4)["reason"]
    assert "is empty" in row(result, 5)["reason"]
    assert any("blank" in w for w in result.warnings)


# -- unusable files and options -----------------------------------------------------------------

@pytest.mark.parametrize(("name", "error", "words"), [
    ("no_coordinates.csv", ColumnError, ["no_coordinates.csv", "经度/纬度", "['名称', '地址']"]),
    ("empty.csv", DataFileError, ["empty.csv", "empty"]),
    ("header_only.csv", DataFileError, ["header_only.csv", "row 1", "no data rows"]),
    ("broken.xlsx", DataFileError, ["broken.xlsx", "save it again"]),
])
def test_unusable_files_name_the_file_and_the_fix(name: str, error: type, words: list[str]) -> None:
    with pytest.raises(error) as info:
        imp(name, layer="canteen")
    for word in words:
        assert word in str(info.value)


def test_other_unusable_paths(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        imp(tmp_path / "missing.csv", layer="canteen")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(DataFileError, match=r"save it as \.xlsx"):
        imp(tmp_path / "old.xls", layer="canteen")
    (tmp_path / "a.shp").write_bytes(b"x")
    with pytest.raises(DataFileError, match="unsupported file type"):
        imp(tmp_path / "a.shp", layer="canteen")
    (tmp_path / "bin.csv").write_bytes(b"\x00\x01\x02\xff\xfe\x00")
    with pytest.raises(DataFileError, match="CSV UTF-8"):
        imp(tmp_path / "bin.csv", layer="canteen")
    with pytest.raises(DataFileError, match=r"only applies to \.xlsx"):
        imp("swapped.csv", layer="canteen", sheet=1)


@pytest.mark.parametrize("kwargs", [
    {"layer": "school"}, {"layer": "canteen", "crs": "gaode"},
    {"layer": "canteen", "fallback": "township_centre"},
    {"layer": "canteen", "duplicates": "merge"}, {"layer": "canteen", "shift_check": "always"},
    {"layer": "canteen", "duplicate_dist_m": -1}, {"layer": "canteen", "outside_tolerance_m": "1"},
])
def test_bad_options(kwargs: dict[str, object]) -> None:
    with pytest.raises(SettingsError):
        imp("swapped.csv", **kwargs)


# -- writing, CLI -----------------------------------------------------------------------------

def test_write_intake_files(mixed: IntakeResult, tmp_path: Path) -> None:
    paths = write_intake(mixed, tmp_path / "out")
    assert paths["report_csv"].read_bytes().startswith(b"\xef\xbb\xbf")
    report = pd.read_csv(paths["report_csv"], encoding="utf-8-sig", dtype=str)
    assert len(report) == mixed.counts["input"] and "状态 status" in report.columns
    book = openpyxl.load_workbook(paths["report_xlsx"], read_only=True)
    assert book.sheetnames == ["逐行 rows", "摘要 summary"]
    book.close()
    layer = gpd.read_file(paths["layer"])
    assert len(layer) == len(mixed.layer) and layer.crs.to_epsg() == 4326
    assert sorted(layer["id"]) == sorted(mixed.layer.index)
    assert np.allclose(layer.geometry.x.sort_values().to_numpy(),
                       mixed.layer.geometry.x.sort_values().to_numpy())
    summary = json.loads(paths["summary"].read_text(encoding="utf-8"))
    assert summary["counts"] == dict(mixed.counts) and summary["encoding"] == "gbk"
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic writes left nothing behind


def test_interrupted_intake_keeps_the_previous_four_files(
        mixed: IntakeResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = write_intake(mixed, tmp_path)
    before = {p.name: p.read_bytes() for p in paths.values()}
    other = imp(MIXED, layer="canteen", crs="wgs84")  # other coordinates: another layer

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl-C after the new layer and CSV were rendered

    monkeypatch.setattr(pd, "ExcelWriter", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_intake(other, tmp_path)
    assert {p.name: p.read_bytes() for p in paths.values()} == before  # never new beside old
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*before, MANIFEST])


def test_write_intake_with_every_row_rejected(tmp_path: Path) -> None:
    result = imp("address_only.csv", layer="canteen")
    assert len(result.layer) == 0
    paths = write_intake(result, tmp_path)
    assert len(gpd.read_file(paths["layer"])) == 0


def test_cli_import(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["facilities", "import", str(MIXED), "--layer", "canteen", "--crs", "GCJ-02",
                 "--columns", "所属村社=village", "--out", str(tmp_path)])
    out = capsys.readouterr()
    assert code == 0 and "12 行 rows" in out.out and "gbk" in out.out
    assert (tmp_path / "canteen.geojson").exists()
    assert (tmp_path / "canteen_intake_report.xlsx").exists()
    assert "互换" in out.err
    code = main(["facilities", "import", str(REG / "no_coordinates.csv"), "--layer", "canteen",
                 "--out", str(tmp_path)])
    assert code == 2 and "no_coordinates.csv" in capsys.readouterr().err
    code = main(["facilities", "import", str(REG / "address_only.csv"), "--layer", "canteen",
                 "--fallback", "village-centre", "--out", str(tmp_path / "b")])
    assert code == 0
    with pytest.raises(SystemExit):
        main(["facilities", "import", str(MIXED), "--layer", "canteen", "--crs", "mars",
              "--out", str(tmp_path)])
    with pytest.raises(SystemExit):
        main(["facilities", "import", str(MIXED), "--layer", "canteen", "--columns", "名称",
              "--out", str(tmp_path)])


# -- names and cells --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def villages() -> PlaceMatcher:
    units = reference()["units"]
    return PlaceMatcher(dict(units["name"].items()), kind="village",  # type: ignore[index]
                        parents=dict(units["township_code"].items()))  # type: ignore[index]


@pytest.mark.parametrize(("text", "code", "status"), [
    ("曙光社区", "330282002002", "exact"),
    ("曙 光", "330282002002", "variant"),
    ("曙光社区居委会", "330282002002", "variant"),
    ("马家路社区", "330282002003", "variant"),  # 马家路居委会, not 马家路村委会
    ("马家路村", "330282002202", "variant"),
    ("周塘西村民委员会", "330282002211", "variant"),
    ("慈溪市宁丰村", "330282120205", "variant"),
    ("（330282002004）", None, "unknown"),
    ("330282002004", "330282002004", "exact"),
])
def test_village_variants(villages: PlaceMatcher, text: str, code: str | None,
                          status: str) -> None:
    match = villages.match(text)
    assert (match.code, match.status) == (code, status)


def test_village_ambiguity_and_candidates(villages: PlaceMatcher) -> None:
    match = villages.match("马家路")
    assert match.status == "ambiguous" and len(match.candidates) == 2
    # 卫北居委会 and 卫北村委会 are both in 观海卫镇: only the suffix tells them apart
    assert villages.match("卫北", within="330282107").status == "ambiguous"
    assert villages.match("卫北社区", within="330282107").code == "330282107021"
    assert villages.match("卫北村", within="330282107").code == "330282107205"
    # 东海 exists in two townships: the township breaks the tie
    twins = [c for c, n in villages.names.items() if place_keys(n, kind="village")[-1] == "东海"]
    assert len({villages.parents[c] for c in twins}) == 2
    for code in twins:
        assert villages.match("东海", within=villages.parents[code]).code == code
    unknown = villages.match("振东新村")
    assert unknown.status == "unknown" and "振东村委会 (330282118211)" in unknown.candidates
    assert villages.match("").status == "empty" and villages.match(None).status == "empty"


def test_township_variants() -> None:
    towns = reference()["townships"]
    matcher = PlaceMatcher(dict(towns["name"].items()), kind="township")  # type: ignore[index]
    for text in ("浒山", "浒山街道", "慈溪市浒山街道（办事处）", "浒山街道办事处"):
        assert matcher.match(text).code == "330282004", text
    assert matcher.match("观海卫镇人民政府").code == "330282107"
    assert place_keys("新浦村村委会", kind="village") == ["新浦村村委会", "新浦村", "新浦"]


def test_header_recognition() -> None:
    found = recognise_headers(["序号", "机构名称", "经度(GCJ02)", "纬度", "托位数（个）",
                               "所属镇街", "村（社区）", "详细地址", "级别", "ＬＮＧ"])
    assert found == {"name": "机构名称", "lat": "纬度", "township": "所属镇街",
                     "village": "村（社区）", "address": "详细地址", "level": "级别",
                     "lon": "ＬＮＧ", "capacity": "托位数（个）"}


@pytest.mark.parametrize(("text", "value"), [
    (121.25, 121.25), ("121.25", 121.25), (" 121.25E ", 121.25), ("121°15′30″", 121.2583333),
    ("121度15分30秒", 121.2583333), ("30°10'N", 30.1666667), ("S12.5", -12.5), ("", None),
    ("--", None), (float("nan"), None), ("１２１．２５", 121.25),
])
def test_parse_number(text: object, value: float | None) -> None:
    got = parse_number(text)
    assert got == value if value is None else got == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "1e400", True, "inf", float("inf"), "12..5"])
def test_parse_number_refuses(text: object) -> None:
    with pytest.raises(CellError):
        parse_number(text)


def test_parse_count_and_lonlat() -> None:
    assert parse_count("30个") == 30.0 and parse_count(12) == 12.0 and parse_count("") is None
    for bad in ("约三十", -1, "2e9"):
        with pytest.raises(CellError):
            parse_count(bad)
    assert parse_lonlat("121.2，30.1") == (121.2, 30.1)
    assert parse_lonlat("(121.2 30.1)") == (121.2, 30.1)
    with pytest.raises(CellError):
        parse_lonlat("121.2")


def test_intake_errors_are_qyx_errors() -> None:
    for cls in (ColumnError, DataFileError, SettingsError):
        assert issubclass(cls, QyxGeoError)


def test_write_intake_neutralises_formulas(tmp_path: Path) -> None:
    """Names, ids, addresses and raw coordinates stay text in the CSV and XLSX reports."""
    from _spreadsheets import EVIL, assert_csv_safe, assert_xlsx_safe

    reg = tmp_path / "register.csv"
    reg.write_text("编号,名称,经度,纬度,地址\n"
                   f"{EVIL[2]},\"{EVIL[0].replace(chr(34), chr(34) * 2)}\",+121.226589,30.197289,"
                   f"{EVIL[3]}\n"
                   f"{EVIL[3]},{EVIL[1]},121.238715,30.266882,\n", encoding="utf-8")
    result = imp(reg, layer="canteen")
    check_accounting(result)
    assert set(result.report["name"]) == {EVIL[0], EVIL[1]}  # kept as typed in the data
    paths = write_intake(result, tmp_path / "out")
    assert_csv_safe(paths["report_csv"], expect=(EVIL[0], EVIL[1], EVIL[2], "+121.226589"))
    assert_xlsx_safe(paths["report_xlsx"], expect=(EVIL[0], EVIL[1], EVIL[2]))
    cells = {c.value: c.data_type for c in
             openpyxl.load_workbook(paths["report_xlsx"])["逐行 rows"]["A"][1:]}
    assert cells == {2: "n", 3: "n"}  # row numbers stay numbers
