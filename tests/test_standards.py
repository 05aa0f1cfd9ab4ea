"""Standards as data (qyx-standard/1) and the per-tier scoring, hand-computed on the tiny county.

Tiny county (tests/_audit_fixtures.py): 200 m street grid, walking 4 km/h, so 300 m = 4.5 min and
1,000 m = 15 min. Street distances from the one canteen at (400, 400) m to the demand points d0–d7:
800, 200, 1000, 1800, 1000, 1800, 2000, 3200 m; from the nearest of the clinics at (0, 0),
(1000, 1000), (2000, 2000): 0, 1000, 1000, 1000, 1000, 1000, 800, 0 m.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from _audit_fixtures import UNITS, grid_graph, tiny_dataset, use_tiny_dataset

from qyx_geo._errors import DataFileError, SettingsError
from qyx_geo.audit import run_audit
from qyx_geo.cli import main
from qyx_geo.engine import build_arrays
from qyx_geo.services import SERVICES
from qyx_geo.standards import list_standards, load_standard, score_standard

MINI = {
    "format": "qyx-standard/1", "id": "mini", "code": "MINI-1", "title": "测试标准",
    "unit_kinds": ["社区/居委会"],
    "tiers": [
        {"id": "t15", "label_zh": "十五分钟", "label_en": "15 min", "distance_m": 1000,
         "source": "表1", "facilities": [
             {"service": "canteen", "item_zh": "助餐", "source": "表A"},
             {"service": "clinic", "item_zh": "卫生", "source": "表A"}]},
        {"id": "t5", "label_zh": "五分钟", "label_en": "5 min", "distance_m": 300,
         "source": "表1", "facilities": [
             {"service": "canteen", "item_zh": "助餐", "source": "表A"},
             {"service": "clinic", "item_zh": "卫生", "source": "表A"},
             {"service": "kindergarten", "item_zh": "幼儿园", "source": "表A"}]},
        {"id": "town", "label_zh": "镇级", "label_en": "township", "reach": "presence",
         "level": "township", "unit_kinds": ["社区/居委会", "村委会"], "source": "表2",
         "facilities": [{"service": "sports", "item_zh": "体育", "source": "表B"}]},
    ],
}


@pytest.fixture(scope="module")
def result():
    return run_audit(tiny_dataset(), network=build_arrays(grid_graph()),
                     services=["canteen", "clinic", "sports"])


@pytest.fixture
def mini(tmp_path):
    path = tmp_path / "mini.json"
    path.write_text(json.dumps(MINI, ensure_ascii=False), encoding="utf-8")
    return path


def test_tiers_hand_computed(result, mini):
    std = score_standard(result, mini)
    u = std.units
    # t15 (1,000 m, communities only): 东街 canteen 200/200 60+ and clinic 1000/1000 → passes;
    # 西街 canteen 100/200 = 50 % < 80 %, clinic all → 1 of 2
    assert list(u["t15__canteen"].astype(object)) == [True, False, pd.NA, pd.NA]
    assert list(u["t15__clinic"].astype(object)) == [True, True, pd.NA, pd.NA]
    assert list(u["t15__passing"].astype(object)) == [2, 1, pd.NA, pd.NA]
    assert list(u["t15__all"].astype(object)) == [True, False, pd.NA, pd.NA]
    # t5 (300 m = 4.5 min): 东街 canteen only d1 (120 of 200 60+), clinic only d0 (400 of 1,000)
    assert list(u["t5__passing"].astype(object)) == [0, 0, pd.NA, pd.NA]
    assert list(u["t5__required"].astype(object)) == [2, 2, pd.NA, pd.NA]  # kindergarten missing
    assert std.missing == ("kindergarten",)
    # township presence: the one sports ground, at (1200, 0) m, lies in 南村 of 二镇
    assert list(u["town__sports"].astype(object)) == [False, False, True, True]
    assert list(u["tiers_passing"]) == [1, 0, 1, 1]
    assert list(u["tiers_judged"]) == [3, 3, 1, 1]
    c15 = std.tiers["t15"]["county"]
    assert (c15["units_judged"], c15["units_passing"]) == (2, 1)
    assert c15["services"] == {"canteen": 0.5, "clinic": 1.0}
    t15 = std.tiers["t15"]["townships"]
    assert t15.loc["330282001", "share_passing"] == 0.5 and t15.loc["330282001", "rank"] == 1
    assert pd.isna(t15.loc["330282101", "rank"])  # no community in 二镇
    assert std.minutes(load_standard(mini).tiers[1], load_standard(mini).tiers[1].facilities[0]) \
        == pytest.approx(4.5)


def test_unit_kinds_are_configurable(result, mini):
    std = score_standard(result, mini, unit_kinds={"t15": ["村委会"]})
    u = std.units
    # 南村: canteen d4 90/150 = 60 % (fail), clinic all within 1,000 m; 北村: canteen none
    assert list(u["t15__canteen"].astype(object)) == [pd.NA, pd.NA, False, False]
    assert list(u["t15__clinic"].astype(object)) == [pd.NA, pd.NA, True, True]
    with pytest.raises(SettingsError, match="t99"):
        score_standard(result, mini, unit_kinds={"t99": ["村委会"]})


def test_run_audit_scores_standards(mini):
    r = run_audit(tiny_dataset(), network=build_arrays(grid_graph()),
                  services=["canteen", "clinic", "sports"], standards=[mini], plan=None)
    assert list(r.standards) == ["mini"] and r.plan is None
    assert r.standards["mini"].tiers["t15"]["county"]["units_passing"] == 1


@pytest.mark.parametrize(("change", "match"), [
    (lambda s: s.pop("format"), "qyx-standard/1"),
    (lambda s: s["tiers"][0].pop("distance_m"), "exactly one of distance_m or minutes"),
    (lambda s: s["tiers"][2].update(level="street"), "level 'township' or 'unit'"),
    (lambda s: s["tiers"][1].update(id="t15"), "unique"),
    (lambda s: s["tiers"][0]["facilities"][0].pop("service"), "service, item_zh and source"),
])
def test_bad_standard_files(tmp_path, change, match):
    raw = json.loads(json.dumps(MINI))
    change(raw)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataFileError, match=match):
        load_standard(path)


def test_shipped_standards():
    assert list_standards() == ["gb50180-2018", "tdt1062-2021"]
    gb = load_standard("gb50180-2018")
    assert gb.code == "GB 50180-2018" and gb.title == "城市居住区规划设计标准"
    assert [(t.id, t.distance_m, t.unit_kinds) for t in gb.tiers] == [
        ("15min", 1000.0, ("社区/居委会",)), ("10min", 500.0, ("社区/居委会",)),
        ("5min", 300.0, ("社区/居委会",))]
    assert all("表3.0.4" in t.source for t in gb.tiers)
    tier_of = {f.service: t.id for t in gb.tiers for f in t.facilities if f.service != "clinic"}
    assert (tier_of["junior_school"], tier_of["primary_school"], tier_of["kindergarten"]) == (
        "15min", "10min", "5min")
    td = load_standard("tdt1062-2021")
    rural = [t for t in td.tiers if t.reach == "presence"]
    assert [(t.level, t.unit_kinds) for t in rural] == [("township", ("村委会",)),
                                                         ("unit", ("村委会",))]
    for std in (gb, td):
        assert std.verification
        for tier in std.tiers:
            assert tier.verified and tier.source
            for item in tier.facilities:
                assert item.service in SERVICES and item.source


def test_cli_audit_with_a_standard(monkeypatch, tmp_path, mini, capsys):
    use_tiny_dataset(monkeypatch)
    assert main(["audit", "--out", str(tmp_path / "o"), "--no-maps", "--standard", str(mini),
                 "--tier-units", "t15=村委会+社区/居委会"]) == 0
    out = capsys.readouterr().out
    assert "【MINI-1《测试标准》】" in out and "未体检 not audited: kindergarten" in out
    units = pd.read_csv(tmp_path / "o" / "standard_mini_units.csv", dtype={"code": str})
    assert list(units["code"]) == list(UNITS)
    assert units["t15__clinic"].tolist() == [True, True, True, True]
    md = (tmp_path / "o" / "summary.md").read_text(encoding="utf-8")
    assert "## 标准 / Standard: MINI-1《测试标准》" in md and "## 考核依据" in md
    assert main(["audit", "--out", str(tmp_path / "p"), "--no-maps", "--tier-units", "t15"]) == 2
    assert main(["audit", "--out", str(tmp_path / "p"), "--no-maps", "--standard", "nope"]) == 2


def test_tier_maps_and_overview_layer(mini, tmp_path):
    from qyx_geo.maps import overview_map, standard_tier_map, write_audit_maps

    r = run_audit(tiny_dataset(), network=build_arrays(grid_graph()),
                  services=["canteen", "clinic", "sports"], standards=[mini])
    html = standard_tier_map(r, "mini", "t15").get_root().render()
    assert "MINI-1 · 十五分钟" in html and "1/2" in html  # 东街 passes, 西街 does not
    overview = overview_map(r)
    layers = [getattr(c, "layer_name", "") for c in overview._children.values()]
    assert "标准层级达标数 Standard tiers passed per unit" in layers
    # tiers passed/judged per unit: 1/3, 0/3, 1/1, 1/1 — the two villages pass every tier
    assert "tiers passed: 2/4" in overview.get_root().render()
    files = write_audit_maps(r, tmp_path, isochrones=False)
    names = [p.name for p in files]
    assert names[-3:] == ["standard_mini_t15.html", "standard_mini_t5.html",
                          "standard_mini_town.html"]
    with pytest.raises(SettingsError, match="no tier 't99'"):
        standard_tier_map(r, "mini", "t99")
