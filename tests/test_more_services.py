"""The registry's further layers: real OSM schools classified by name, synthetic layers, audits."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely
from _audit_fixtures import grid_graph, tiny_dataset

from qyx_geo._errors import DataFileError
from qyx_geo._paths import data_dir
from qyx_geo.audit import run_audit
from qyx_geo.dataset import load_dataset
from qyx_geo.engine import build_arrays
from qyx_geo.services import SERVICES, default_service_ids, load_registry
from qyx_geo.synth.more_services import classify_school

SCHOOLS = data_dir() / "facilities" / "sources" / "osm" / "cixi_osm_school.geojson"


def test_registry_is_data_and_keeps_the_four_services():
    four = ["nursery", "canteen", "clinic", "sports"]
    assert list(SERVICES)[:4] == four
    assert [SERVICES[s].demand_column for s in four] == ["pop_0_3", "pop_60p", "pop", "pop"]
    assert SERVICES["sports"].unit_kinds == ("村委会",)
    assert SERVICES["nursery"].capacity_target == "nursery_places_per_1000"
    assert {"kindergarten", "primary_school", "junior_school", "home_care_station",
            "disability_home", "elder_school"} <= set(SERVICES)
    assert SERVICES["home_care_station"].attributes == ("smart_terminal",)
    assert "primary_school" not in default_service_ids()


def test_registry_errors_name_the_entry(tmp_path):
    path = tmp_path / "services.json"
    path.write_text(json.dumps({"format": "qyx-services/1", "services": [
        {"id": "x", "label_zh": "某", "label_en": "X", "domain_zh": "d",
         "demand_column": "pop", "color": "red"}]}), encoding="utf-8")
    with pytest.raises(DataFileError, match=r"unknown field\(s\) \['color'\]"):
        load_registry(path)
    path.write_text(json.dumps({"format": "qyx-services/1", "services": [{"id": "x"}]}),
                    encoding="utf-8")
    with pytest.raises(DataFileError, match="lacks a required field"):
        load_registry(path)


def test_every_osm_school_is_accounted_for():
    features = json.loads(SCHOOLS.read_text(encoding="utf-8"))["features"]
    table = pd.read_csv(SCHOOLS.with_name("cixi_osm_school_classified.csv"))
    assert len(features) == len(table) == 75
    assert list(table["name"]) == [f["properties"]["name"] for f in features]
    # independent reading of the names: 小学 → primary; 初级中学 → junior; the rest unused
    primary = [f for f in features if "小学" in f["properties"]["name"]]
    junior = [f for f in features if "初级中学" in f["properties"]["name"]]
    ds = load_dataset()
    assert len(ds.facilities["primary_school"]) == len(primary) == 29
    assert len(ds.facilities["junior_school"]) == len(junior) == 6
    assert (table["status"] == "used").sum() == 35
    assert set(ds.facilities["primary_school"]["source"]) == {"osm"}
    assert ds.facilities["junior_school"]["attribution"].str.contains("OpenStreetMap").all()
    # each school point lies inside its own polygon
    by_name = {f["properties"]["name"]: shapely.geometry.shape(f["geometry"]) for f in junior}
    for _, row in ds.facilities["junior_school"].iterrows():
        assert by_name[row["name"]].contains(row.geometry)


@pytest.mark.parametrize(("name", "cls"), [
    ("慈溪市周巷职业高级中学", "excluded"), ("慈溪育才高级中学", "excluded"),
    ("慈溪市实验小学(北校区)", "primary_school"), ("三北初级中学", "junior_school"),
    ("周巷中学", "unclassified"), ("慈吉实验学校", "unclassified"), ("明月书院", "unclassified"),
])
def test_classify_school(name, cls):
    assert classify_school(name)[0] == cls


def test_synthetic_layers_are_labelled():
    ds = load_dataset()
    for layer in ("kindergarten", "home_care_station", "disability_home", "elder_school"):
        gdf = ds.facilities[layer]
        assert set(gdf["source"]) == {"synthetic"}
        assert gdf["attribution"].str.startswith("synthetic").all()
        assert ds.provenance[f"facilities.{layer}"]["status"] == "synthetic"
    assert ds.facilities["home_care_station"]["smart_terminal"].dtype == bool


@pytest.fixture(scope="module")
def net():
    return build_arrays(grid_graph())


def test_audit_scores_the_plan_targets_of_a_new_layer(net):
    ds = tiny_dataset()
    one = ds.facilities["canteen"].copy()
    one["layer"], one["level"], one["name"] = "elder_school", "老年学校", "一街道老年学校"
    r = run_audit(ds, network=net, services=["elder_school"], facilities={"elder_school": one})
    check = r.services["elder_school"].checks["elder_school_coverage"]
    # the tiny county: 一街道 has the school, 二镇 has none → 1/2 townships, one short of 100 %
    assert check.county["value"] == 0.5 and check.county["met"] is False
    assert check.county["shortfall"] == 1 and check.county["missing"] == ["330282101"]
    assert r.services["elder_school"].county["target"] is None  # no reach target in the plan
    bare = run_audit(ds, network=net, services=["elder_school"], plan=None,
                     facilities={"elder_school": one})
    assert bare.services["elder_school"].checks == {}


def test_default_audit_skips_optional_layers_the_dataset_lacks(net):
    r = run_audit(tiny_dataset(), network=net)
    assert list(r.services) == ["nursery", "canteen", "clinic", "sports"]
    assert isinstance(r.services["nursery"].facilities, gpd.GeoDataFrame)


def test_a_register_for_a_new_layer_imports(tmp_path):
    from qyx_geo import units as qunits
    from qyx_geo.intake import import_register

    path = tmp_path / "老年学校台账.csv"
    path.write_text("名称,经度,纬度\n周巷镇老年学校,121.1552,30.1830\n", encoding="utf-8")
    result = import_register(path, layer="elder_school", units=qunits.load_units(),
                             townships=qunits.load_townships(), outline=qunits.load_outline())
    assert list(result.layer["layer"]) == ["elder_school"]  # a registry layer, not one of four
    assert result.counts.get("accepted", 0) + result.counts.get("accepted-with-changes", 0) == 1
    assert result.layer["township_code"].iloc[0] in set(qunits.load_townships().index)
