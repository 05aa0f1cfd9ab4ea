"""``qyx region import-population``: a GBK table with a title row, every row accounted for."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely
from test_region import _tiny_pack

from qyx_geo.cli import main
from qyx_geo.packs.population import import_population_into_pack
from qyx_geo.region import load_region

TABLE = """测试县各村(社区)常住人口统计表(2023年末)
村(社区),代码,常住人口,0-3岁,60岁以上占比
东街社区居委会,,1200,30,18%
西街社区,330282001002,900,25,20%
测试县南村,,400,10,30%
北村村委会,,300,5,0.25
合计,,2800,,
不存在村,,100,,
南村,,50,,
西街社区,,abc,,
东街社区,,100,80,90%
"""
# expected status of each data row (source rows 3–11), written out by hand
EXPECTED = ["renamed", "matched", "renamed", "renamed", "total-row", "unmatched", "duplicate",
            "rejected", "rejected"]


@pytest.fixture
def pack(tmp_path):
    _tiny_pack(tmp_path / "tiny")
    return tmp_path / "tiny"


def test_gbk_table_with_title_row_every_row_accounted_for(pack, tmp_path):
    path = tmp_path / "人口.csv"
    path.write_bytes(TABLE.encode("gbk"))
    result, region, report = import_population_into_pack(path, pack, source="hand-made test")
    assert result.encoding == "gbk" and result.header_row == 2
    rows = result.report[result.report["kind"] == "row"]
    assert list(rows["row"]) == list(range(3, 12))  # every data row, by its source row number
    assert list(rows["status"]) == EXPECTED
    ds = load_region(region)
    # totals: the four matched rows, by hand: 1200 + 900 + 400 + 300
    assert ds.population == 2800 == region.population["total"]
    per_unit = ds.demand.groupby("unit_code")[["pop", "pop_0_3", "pop_60p"]].sum()
    assert per_unit.loc["330282001001"].tolist() == [1200, 30, 216]  # 18 % of 1200
    assert per_unit.loc["330282001002"].tolist() == [900, 25, 180]
    assert per_unit.loc["330282101201"].tolist() == [400, 10, 120]
    assert per_unit.loc["330282101202"].tolist() == [300, 5, 75]   # 0.25 read as a share
    assert set(ds.demand["source"]) == {"user"}
    # uniform placing: every point inside its own unit's polygon
    for code, pt in zip(ds.demand["unit_code"], ds.demand.geometry, strict=True):
        assert ds.units.loc[code, "geometry"].covers(pt)
    assert region.files["demand"].status == "real"
    assert "uniform" in region.files["demand"].note
    assert "hand-made test" in region.population["source"]
    table = pd.read_csv(report, dtype=str, keep_default_na=False)
    assert len(table) == 9  # nine rows; every unit had a row, so no "no-population" line


def test_missing_units_keep_their_points_and_flip_to_mixed(pack, tmp_path, capsys):
    before = load_region(pack).demand
    path = tmp_path / "p.csv"
    path.write_text("名称,常住人口\n西街社区,900\n", encoding="utf-8")
    assert main(["region", "import-population", str(path), "--region", str(pack)]) == 0
    assert "无人口单元 units without a row 3" in capsys.readouterr().out
    ds = load_region(pack)
    kept = ds.demand[ds.demand["unit_code"] != "330282001002"]
    assert kept["pop"].sum() == before[before["unit_code"] != "330282001002"]["pop"].sum()
    assert ds.region.files["demand"].status == "mixed"
    assert ds.population == 900 + int(kept["pop"].sum())


def test_raster_places_residents_where_the_cells_are(pack, tmp_path):
    import rasterio  # a core dependency (surfaces): never skipped
    from affine import Affine

    ds = load_region(pack)
    unit = ds.units.loc["330282001001", "geometry"]
    minx, miny, maxx, maxy = ds.units.total_bounds
    n = 40
    res_x, res_y = (maxx - minx) / n, (maxy - miny) / n
    values = np.zeros((n, n), dtype="float32")
    # people only in the south-west corner cell block of 东街社区
    cx, cy = unit.bounds[0] + 2 * res_x, unit.bounds[1] + 2 * res_y
    col, row = int((cx - minx) / res_x), int((maxy - cy) / res_y)
    values[row - 1:row + 1, col - 1:col + 1] = 50.0
    tif = tmp_path / "pop.tif"
    grid = Affine(res_x, 0.0, minx, 0.0, -res_y, maxy)
    with rasterio.open(tif, "w", driver="GTiff", height=n, width=n, count=1, dtype="float32",
                       crs="EPSG:4326", transform=grid) as dst:
        dst.write(values, 1)
    path = tmp_path / "p.csv"
    path.write_text("代码,常住人口\n330282001001,1000\n330282001002,500\n", encoding="utf-8")
    result, region, _ = import_population_into_pack(path, pack, raster=tif)
    out = load_region(region).demand
    east = out[out["unit_code"] == "330282001001"]
    assert east["pop"].sum() == 1000
    block = shapely.box(cx - 2 * res_x, cy - 2 * res_y, cx + 2 * res_x, cy + 2 * res_y)
    assert all(block.covers(p) for p in east.geometry)  # only where the raster has people
    methods = dict(zip(result.report["code"], result.report["method"], strict=False))
    assert methods["330282001001"] == "raster" and methods["330282001002"] == "uniform"


def test_the_embedded_pack_is_never_imported_into(tmp_path, capsys):
    from qyx_geo._errors import SettingsError
    from qyx_geo._paths import data_dir

    path = tmp_path / "p.csv"
    path.write_text("名称,常住人口\n曙光社区,1\n", encoding="utf-8")
    before = (data_dir() / "region.toml").read_bytes()
    with pytest.raises(SettingsError, match="embedded pack"):
        import_population_into_pack(path, data_dir())
    assert main(["region", "import-population", str(path), "--region", str(data_dir())]) == 2
    assert "copy it" in capsys.readouterr().err
    assert (data_dir() / "region.toml").read_bytes() == before
