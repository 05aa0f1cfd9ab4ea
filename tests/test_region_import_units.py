"""``qyx region import-units``: polygons in the systems planning offices use land on the codes."""

from __future__ import annotations

import warnings
import zipfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import pytest
import shapely
from test_region import _tiny_pack

from qyx_geo._errors import CoordinateError, SettingsError
from qyx_geo.cli import main
from qyx_geo.crs import wgs84_to_gcj02
from qyx_geo.packs.units_import import detect_crs, import_units_into_pack
from qyx_geo.region import load_region

# tiny pack units: 东街社区 330282001001, 西街社区 …002, 南村 330282101201, 北村<b> …202


@pytest.fixture
def pack(tmp_path):
    _tiny_pack(tmp_path / "tiny")
    return tmp_path / "tiny"


def _originals(pack):
    return load_region(pack).units.geometry


def _hausdorff_m(a, b) -> float:
    s = gpd.GeoSeries([a, b], crs="EPSG:4326").to_crs("EPSG:4549")
    return float(s.iloc[0].hausdorff_distance(s.iloc[1]))


def test_gpkg_in_gauss_kruger_with_zone_prefix_lands_on_the_codes(pack, tmp_path):
    orig = _originals(pack)
    gk = orig.to_crs("EPSG:4528")  # CGCS2000 3° GK zone 40: eastings 40 5xx xxx m
    assert gk.total_bounds[0] > 40_000_000
    east, west, south, north = (gk.loc[c] for c in orig.index)
    feats = gpd.GeoDataFrame({
        "村名称": ["测试县东街社区居委会", "西街社区", "", "北村村委会", "不存在村", "东街社区"],
        "行政代码": ["", "", "330282101201", "", "", ""]},
        geometry=[east.buffer(-1), west, south.buffer(40.0), north.buffer(-30.0),
                  shapely.box(*east.bounds).buffer(-300), east.buffer(-200)],
        crs=None)  # a file without a CRS: the zone prefix must be read from the numbers
    path = tmp_path / "村界.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "crs was not provided": on purpose
        feats.to_file(path, driver="GPKG", layer="cun")
    result, region, report = import_units_into_pack(path, pack, level="village")
    assert "EPSG:4528" in result.crs and "zone prefix 40" in result.crs
    rep = result.report.set_index("feature")
    rows = rep[rep["kind"] == "feature"]
    assert len(rows) == len(feats)  # every feature accounted for
    assert list(rows["code"]) == ["330282001001", "330282001002", "330282101201",
                                  "330282101202", "", "330282001001"]
    assert list(rows["status"]) == ["renamed", "matched", "matched", "renamed", "unmatched",
                                    "duplicate"]
    ds = load_region(region)
    back = ds.units.geometry
    assert _hausdorff_m(back.loc["330282001002"], orig.loc["330282001002"]) < 0.01
    assert not ds.units["approximate"].any()
    assert (ds.units["geometry_source"] == "user").all()
    overlaps = result.report[result.report["status"] == "overlap"]
    assert {"330282101201|330282101202", "330282001001|330282101201"} <= set(overlaps["code"])
    gaps = result.report[result.report["status"] == "gap"]
    assert len(gaps) >= 1 and gaps["area_m2"].sum() > 10_000  # 北村 shrunk by 30 m
    assert region.files["units"].status == "real"
    assert "村界.gpkg" in region.files["units"].source
    assert report.is_file() and "unmatched" in report.read_text(encoding="utf-8")
    # synthetic residents were redrawn inside the new polygons, still labelled synthetic
    assert set(ds.demand["source"]) == {"synthetic"} and ds.population == 3000


def test_zipped_shapefile_in_gcj02_lands_on_the_codes(pack, tmp_path):
    orig = _originals(pack)

    def to_gcj(xy):
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    shp = gpd.GeoDataFrame({"NAME": ["东街社区", "西街社区", "南村", "北村"]},
                           geometry=[shapely.transform(g, to_gcj) for g in orig], crs="EPSG:4326")
    folder = tmp_path / "shp"
    folder.mkdir()
    shp.to_file(folder / "villages.shp", encoding="utf-8")
    archive = tmp_path / "villages_gcj02.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.iterdir():
            z.write(f, f.name)
    result, region, _ = import_units_into_pack(archive, pack, level="village", crs="gcj02")
    rows = result.report[result.report["kind"] == "feature"]
    assert list(rows["status"]) == ["matched"] * 3 + ["renamed"]  # official name: 北村<b>
    assert list(rows["code"]) == list(orig.index)
    back = load_region(region).units.geometry
    for code in orig.index:  # GCJ-02 → WGS84 inverse: back where they were, to the millimetre
        assert _hausdorff_m(back.loc[code], orig.loc[code]) < 0.01


def test_township_level_and_cli(pack, tmp_path, capsys):
    towns = load_region(pack).townships
    path = tmp_path / "towns.geojson"
    gpd.GeoDataFrame({"乡镇名称": ["一街道", "二镇"]}, geometry=list(towns.geometry),
                     crs="EPSG:4326").to_file(path, driver="GeoJSON")
    assert main(["region", "import-units", str(path), "--level", "township", "--region",
                 str(pack)]) == 0
    out = capsys.readouterr().out
    assert "匹配 matched 2" in out and "未匹配 unmatched 0" in out
    ds = load_region(pack)
    assert not ds.townships["approximate"].any()
    assert ds.region.files["townships"].status == "real"


def test_detect_crs_by_magnitude():
    assert detect_crs((40_510_000, 3_330_000, 40_530_000, 3_350_000), declared=None,
                      region_lon=121.2)[0] == "EPSG:4528"
    assert detect_crs((510_000, 3_330_000, 530_000, 3_350_000), declared=None,
                      region_lon=121.2)[0] == "EPSG:4549"
    assert detect_crs((510_000, 3_330_000, 530_000, 3_350_000), declared=None,
                      region_lon=118.0)[0] == "EPSG:4548"  # CM 117°E
    # a .prj claiming CM 120E over zone-prefixed eastings: the numbers win, and it is said
    system, why = detect_crs((40_510_000, 3_330_000, 40_530_000, 3_350_000),
                             declared="EPSG:4549", region_lon=121.2)
    assert system == "EPSG:4528" and "contradicts" in why
    assert detect_crs((121.1, 30.1, 121.3, 30.3), declared=None, region_lon=121.2)[0] == \
        "EPSG:4326"
    with pytest.raises(CoordinateError, match="gcj02 needs degrees"):
        detect_crs((510_000, 3_330_000, 530_000, 3_350_000), declared=None, region_lon=121.2,
                   given="gcj02")
    with pytest.raises(CoordinateError, match="neither degrees"):
        detect_crs((5_000, 3_000, 9_000, 9_000), declared=None, region_lon=121.2)
    # the EPSG arithmetic agrees with pyproj's own definition of the zones
    def central_meridian(code: str) -> float:
        params = pyproj.CRS(code).coordinate_operation.params
        return next(p.value for p in params if p.name == "Longitude of natural origin")

    assert central_meridian("EPSG:4528") == 120 and central_meridian("EPSG:4548") == 117


def test_wrong_system_and_multi_layer_files_are_refused(pack, tmp_path):
    orig = _originals(pack)
    shifted = gpd.GeoDataFrame({"name": ["东街社区"]},
                               geometry=[shapely.affinity.translate(orig.iloc[0], 1.0, 0.0)],
                               crs="EPSG:4326")
    path = tmp_path / "far.geojson"
    shifted.to_file(path, driver="GeoJSON")
    with pytest.raises(CoordinateError, match="--crs"):
        import_units_into_pack(path, pack)
    gpkg = tmp_path / "two.gpkg"
    shifted.to_file(gpkg, layer="a", driver="GPKG")
    shifted.to_file(gpkg, layer="b", driver="GPKG")
    with pytest.raises(SettingsError, match="--layer-name"):
        import_units_into_pack(gpkg, pack)
    # the failed imports left the pack as it was
    assert load_region(pack).units["approximate"].all()


def test_report_cells_are_neutralised(pack, tmp_path):
    orig = _originals(pack)
    path = tmp_path / "inj.geojson"
    gpd.GeoDataFrame({"name": ["=HYPERLINK(\"x\")", "西街社区"]},
                     geometry=[orig.iloc[0], orig.iloc[1]], crs="EPSG:4326").to_file(
        path, driver="GeoJSON")
    _, _, report = import_units_into_pack(path, pack)
    table = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert "'=HYPERLINK(\"x\")" in set(table["input_name"])


def test_shapefile_in_gbk_without_code_page(pack, tmp_path):
    """Chinese GIS exports often write GBK attributes and no .cpg: names must still match."""
    orig = _originals(pack)
    folder = tmp_path / "gbk"
    folder.mkdir()
    gpd.GeoDataFrame({"NAME": ["东街社区", "西街社区"]}, geometry=list(orig.iloc[:2]),
                     crs="EPSG:4326").to_file(folder / "v.shp", encoding="gbk")
    (folder / "v.cpg").unlink()
    result, _, _ = import_units_into_pack(folder / "v.shp", pack)
    rows = result.report[result.report["kind"] == "feature"]
    assert list(rows["code"]) == list(orig.index[:2])
    assert list(rows["status"]) == ["matched", "matched"]
