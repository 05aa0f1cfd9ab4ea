"""Region packs: manifest reading and validation, loading, checking, a pack without a plan."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import geopandas as gpd
import pytest
from _audit_fixtures import grid_graph, tiny_dataset

from qyx_geo._errors import DataFileError
from qyx_geo._paths import data_dir
from qyx_geo.audit import run_audit
from qyx_geo.cli import main
from qyx_geo.dataset import load_dataset
from qyx_geo.packs import FileInfo, PackMeta, manifest_text, write_pack
from qyx_geo.region import (
    FILE_KEYS,
    check_region,
    load_region,
    plan_source,
    read_region,
)
from qyx_geo.schema import FACILITY_LAYERS
from qyx_geo.services import SERVICES


def test_embedded_manifest_describes_cixi():
    reg = read_region()
    assert (reg.code, reg.name_zh, reg.name_en, reg.crs) == ("330282", "慈溪市", "Cixi",
                                                             "EPSG:4549")
    assert reg.embedded and reg.levels == ("township", "village")
    optional = {f"facilities.{s}" for s in SERVICES if s not in FACILITY_LAYERS}
    assert set(reg.files) == set(FILE_KEYS) | optional  # plus the registry's optional layers
    assert reg.files["outline"].status == "real" and reg.files["demand"].status == "synthetic"
    assert plan_source(reg) == "default"
    raw = tomllib.loads((data_dir() / "region.toml").read_text(encoding="utf-8"))
    assert raw["population"]["total"] == 1_829_488


def test_load_region_is_load_dataset():
    ds = load_region()
    assert ds.region is not None and ds.region.code == "330282"
    assert (len(ds.townships), len(ds.units), ds.population) == (24, 406, 1_829_488)
    assert ds.population == ds.region.population["total"]
    same = load_dataset(region=data_dir())
    assert same.units.index.equals(ds.units.index)
    assert ds.provenance["codes"]["detail"].startswith("24 township and 406 village")


def _tiny_layers():
    ds = tiny_dataset()
    units = ds.units.copy()
    rp = units.geometry.representative_point()
    units["centre_lon"], units["centre_lat"] = rp.x, rp.y
    units["centre_source"], units["geometry_source"] = "synthetic", "synthetic"
    units["source"] = "nbs"
    towns = ds.townships.copy()
    seats = towns.geometry.representative_point()
    towns["seat_lon"], towns["seat_lat"] = seats.x, seats.y
    towns["seat_source"], towns["approximate"], towns["source"] = "synthetic", True, "nbs"
    towns["geometry_source"] = "synthetic"
    demand = ds.demand.copy()
    for col in ("pop", "pop_0_3", "pop_60p"):
        demand[col] = demand[col].astype(int)
    facilities = {k: v.copy() for k, v in ds.facilities.items()}
    outline = gpd.GeoDataFrame({"source": ["synthetic"]}, geometry=[units.union_all()],
                               crs="EPSG:4326")
    return outline, towns, units, demand, facilities


def _tiny_pack(out, *, plan=None):
    outline, towns, units, demand, facilities = _tiny_layers()
    meta = PackMeta(code="330282", name_zh="测试县", name_en="Testshire", crs="EPSG:4549",
                    population_total=int(demand["pop"].sum()), population_source="hand-made")
    keys = [k for k in FILE_KEYS if k not in ("network", "plan")]
    prov = {k: FileInfo("synthetic", "tests/_audit_fixtures.py", "synthetic") for k in keys}
    prov["plan"] = FileInfo("real", "慈溪 plan (a copy)", "public")
    return write_pack(out, meta, outline=outline, townships=towns, units=units, demand=demand,
                      facilities=facilities, provenance=prov, plan=plan)


def test_pack_without_plan_is_scored_and_ranked_without_verdicts(tmp_path):
    reg = _tiny_pack(tmp_path / "tiny")
    assert "plan" not in reg.files and plan_source(reg) is None
    ds = load_region(tmp_path / "tiny")
    assert ds.name_zh == "测试县" and ds.region.population["total"] == 3000
    result = run_audit(ds, network=grid_graph(), year=2027)
    canteen = result.services["canteen"]
    assert canteen.county["target"] is None and canteen.county["met"] is None
    assert "without a plan" in canteen.county["target_note"]
    # the ranking needs no plan: townships are still ordered by their share of passing units
    assert canteen.townships["rank"].notna().all()
    # the same pack with Cixi's plan gets the verdicts (1 of 4 units passes: 95 % not met)
    with_plan = _tiny_pack(tmp_path / "tiny_plan", plan=data_dir() / "targets" / "plan.json")
    assert plan_source(with_plan) == with_plan.root / "plan" / "plan.json"
    judged = run_audit(load_region(with_plan), network=grid_graph(), year=2027)
    assert judged.services["canteen"].county["met"] is False


def test_pack_written_reads_back_and_checks(tmp_path, capsys):
    _tiny_pack(tmp_path / "tiny")
    result = check_region(tmp_path / "tiny")
    assert result.ok, result.errors
    assert result.counts["units"] == 4 and result.files["network"]["status"] == "missing"
    assert main(["region", "check", str(tmp_path / "tiny")]) == 0
    out = capsys.readouterr().out
    assert "测试县 Testshire (330282)" in out and "数据包有效" in out
    assert main(["region", "check", str(tmp_path / "tiny"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["counts"]["residents"] == 3000


def test_existing_pack_is_not_overwritten(tmp_path):
    _tiny_pack(tmp_path / "tiny")
    with pytest.raises(Exception, match="not empty"):
        _tiny_pack(tmp_path / "tiny")


def _copy_manifest_pack(tmp_path):
    dst = tmp_path / "pack"
    _tiny_pack(dst)
    return dst, (dst / "region.toml").read_text(encoding="utf-8")


@pytest.mark.parametrize(("change", "expected"), [
    (lambda t: t.replace('code = "330282"', 'code = "3302"'), "6-digit"),
    (lambda t: t.replace('crs = "EPSG:4549"', 'crs = "gauss"'), "metric EPSG"),
    (lambda t: t.replace("format = 1", "format = 9"), "format must be 1"),
    (lambda t: t.replace('name_en = "Testshire"', 'name_en = "Testshire"\ncolour = "red"'),
     "unknown key"),
    (lambda t: t.replace('path = "boundaries/demand.csv"', 'path = "../../etc/passwd"'),
     "leaves the pack folder"),
    (lambda t: t.replace('path = "boundaries/demand.csv"', 'path = "boundaries/nope.csv"'),
     "do not exist"),
    (lambda t: t.replace('status = "synthetic"', 'status = "guessed"', 1), "status must be"),
    (lambda t: t.replace("[files.demand]", "[files.demandz]"), "unknown file key"),
    (lambda t: t.replace('name_zh = "测试县"', "name_zh = 测试县"), "TOML"),
    (lambda t: t.replace("total = 3000", "total = -5"), "whole number"),
])
def test_bad_manifests_are_clear_errors(tmp_path, capsys, change, expected):
    root, text = _copy_manifest_pack(tmp_path)
    (root / "region.toml").write_text(change(text), encoding="utf-8")
    with pytest.raises(DataFileError, match=expected):
        read_region(root)
    assert main(["region", "check", str(root)]) == 2
    assert expected.split()[0] in capsys.readouterr().err


def test_missing_required_file_entry(tmp_path):
    root, text = _copy_manifest_pack(tmp_path)
    start = text.index("[files.units]")
    end = text.index("[files.demand]")
    (root / "region.toml").write_text(text[:start] + text[end:], encoding="utf-8")
    with pytest.raises(DataFileError, match=r"lists no file for \['units'\]"):
        read_region(root)


def test_population_total_must_match_the_demand(tmp_path):
    root, text = _copy_manifest_pack(tmp_path)
    (root / "region.toml").write_text(text.replace("total = 3000", "total = 3001"),
                                      encoding="utf-8")
    result = check_region(root)
    assert not result.ok and "3,001" in result.errors[0] and "3,000" in result.errors[0]


def test_manifest_text_escapes_and_round_trips():
    meta = PackMeta(code="330281", name_zh='余姚"市\\', name_en="Yuyao", crs="EPSG:4549",
                    population_total=10, population_source="line1\nline2")
    text = manifest_text(meta, {"outline": ("a b/c.geojson", FileInfo("real", 'x "y"'))})
    raw = tomllib.loads(text)
    assert raw["region"]["name_zh"] == '余姚"市\\'
    assert raw["population"]["source"] == "line1\nline2"
    assert raw["files"]["outline"] == {"path": "a b/c.geojson", "status": "real",
                                       "source": 'x "y"'}


def test_cli_region_option_and_data_dir_alias(tmp_path, capsys):
    _tiny_pack(tmp_path / "tiny")
    assert main(["info", "--no-network", "--region", str(tmp_path / "tiny")]) == 0
    out = capsys.readouterr().out
    assert "测试县 15分钟公共服务圈" in out and "3,000" in out
    assert main(["info", "--no-network", "--data-dir", str(tmp_path / "tiny")]) == 0
    assert "测试县" in capsys.readouterr().out


def test_folder_in_default_layout_without_manifest_still_loads(tmp_path):
    for part in ("boundaries", "facilities"):
        shutil.copytree(data_dir() / part, tmp_path / part)
    ds = load_dataset(data_dir=tmp_path)
    assert ds.region is not None and ds.region.code == "330282" and len(ds.units) == 406


def test_no_county_name_in_the_package():
    """The county is data (its pack), not code: no 慈溪 literal anywhere in qyx_geo/."""
    import qyx_geo

    root = Path(qyx_geo.__file__).parent
    hits = [f"{p.relative_to(root)}:{n}"
            for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in {".py", ".toml",
                                                                             ".json", ".txt",
                                                                             ".md", ".csv"}
            for n, line in enumerate(p.read_text(encoding="utf-8", errors="replace")
                                     .splitlines(), 1) if "慈溪" in line]
    assert hits == []


def test_targets_for_a_pack_without_a_plan(tmp_path, capsys):
    _tiny_pack(tmp_path / "tiny")
    assert main(["targets", "--region", str(tmp_path / "tiny")]) == 0
    assert "无规划文件" in capsys.readouterr().out
    with_plan = _tiny_pack(tmp_path / "p", plan=data_dir() / "targets" / "plan.json")
    assert main(["targets", "--region", str(with_plan.root), "--year", "2027"]) == 0
    assert "95%以上" in capsys.readouterr().out
