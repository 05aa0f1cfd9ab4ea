"""Facility-based targets (presence, attribute share, places per 1,000), hand-computed."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from qyx_geo.checks import attribute_share_check, per_1000_check, presence_check
from qyx_geo.plan import Target, load_plan

TOWNS = pd.DataFrame({"name": ["一街道", "二镇", "三镇", "四开发区"],
                      "kind": ["街道", "镇", "镇", "开发区"]},
                     index=pd.Index(["330282001", "330282101", "330282102", "330282401"],
                                    name="code"))


def _target(kind: str, value: float) -> Target:
    return Target(key="k", value=value, op=">=", text=str(value), clause="c", year=2027,
                  location="L", kind=kind)


def test_presence_counts_judged_townships_only():
    # facilities in 一街道 (2), 三镇 (1) and the development zone (1); 二镇 has none
    fac = pd.DataFrame({"township_code": ["330282001", "330282001", "330282102",
                                          "330282401"]})
    pop = pd.Series([20_000.0, 10_000.0, 5_000.0, 1_000.0], index=TOWNS.index)
    r = presence_check(fac, TOWNS, key="k", service="s", target=_target("presence", 1.0),
                       township_kinds=("街道", "镇"), population=pop)
    c = r.county
    # 3 judged (the zone is not a 乡镇/街道), 2 present: 2/3, short of 100 % by one township
    assert (c["townships_judged"], c["townships_present"]) == (3, 2)
    assert c["value"] == pytest.approx(2 / 3) and c["met"] is False and c["shortfall"] == 1
    assert c["missing"] == ["330282101"]
    t = r.townships
    assert list(t["judged"]) == [True, True, True, False]
    assert list(t["met"].astype(object)) == [True, False, True, pd.NA]
    # both present townships score 1; tie broken by facilities per 10,000 residents:
    # 一街道 2/20,000 = 1.0, 三镇 1/5,000 = 2.0 → 三镇 first
    assert t.loc["330282102", "rank"] == 1 and t.loc["330282001", "rank"] == 2
    assert t.loc["330282101", "rank"] == 3 and pd.isna(t.loc["330282401", "rank"])


def test_presence_met_and_without_target():
    fac = pd.DataFrame({"township_code": ["330282001", "330282101", "330282102"]})
    r = presence_check(fac, TOWNS, key="k", service="s", target=_target("presence", 1.0),
                       township_kinds=("街道", "镇"))
    assert r.county["met"] is True and r.county["shortfall"] == 0
    r = presence_check(fac, TOWNS, key="k", service="s", target=None, note="none")
    assert r.county["value"] == pytest.approx(3 / 4) and r.county["met"] is None
    assert r.townships["met"].isna().all() and r.note == "none"


def test_attribute_share_by_level():
    fac = pd.DataFrame({
        "township_code": ["330282001"] * 4 + ["330282101"] * 2 + ["330282102"],
        "level": ["站", "站", "站", "中心", "站", "站", "中心"],
        "smart_terminal": [True, True, False, True, False, None, True]})
    r = attribute_share_check(fac, TOWNS, key="k", service="s", attribute="smart_terminal",
                              levels=("站",), target=_target("attribute_share", 0.5))
    c = r.county
    # stations only: 一街道 2/3, 二镇 0/2 (None counts as no terminal) → 2/5 = 40 % < 50 %;
    # 50 % of 5 stations needs 3 (2.5 rounded up): one more
    assert (c["with_attribute"], c["facilities"]) == (2, 5)
    assert c["value"] == pytest.approx(0.4) and c["met"] is False and c["shortfall"] == 1
    t = r.townships
    assert t.loc["330282001", "value"] == pytest.approx(2 / 3)
    assert t.loc["330282101", "value"] == 0.0
    assert list(t["judged"]) == [True, True, False, False]  # 三镇 has only a 中心
    assert list(t["rank"].astype(object)) == [1, 2, pd.NA, pd.NA]
    assert bool(t.loc["330282001", "met"]) and not bool(t.loc["330282101", "met"])


def test_attribute_text_values_and_missing_column():
    fac = pd.DataFrame({"township_code": ["330282001"] * 3, "smart_terminal": ["是", "否", "1"]})
    r = attribute_share_check(fac, TOWNS, key="k", service="s", attribute="smart_terminal",
                              target=None)
    assert r.county["with_attribute"] == 2
    with pytest.raises(KeyError, match="smart"):
        attribute_share_check(fac.drop(columns="smart_terminal"), TOWNS, key="k", service="s",
                              attribute="smart_terminal", target=None)


def test_per_1000():
    fac = pd.DataFrame({"township_code": ["330282001", "330282001", "330282101"],
                        "capacity": [40.0, 20.0, math.nan]})
    pop = pd.Series([12_000.0, 8_000.0, 0.0, 0.0], index=TOWNS.index)
    r = per_1000_check(fac, TOWNS, pop, key="k", service="s", target=_target("per_1000", 5.5))
    t, c = r.townships, r.county
    # 一街道 60 places / 12,000 = 5.0 per 1,000; 二镇 0 / 8,000 = 0; no residents: not judged
    assert t.loc["330282001", "value"] == pytest.approx(5.0)
    assert t.loc["330282101", "value"] == 0.0 and not t.loc["330282102", "judged"]
    # county 60 / 20,000 × 1,000 = 3.0; 5.5 × 20 = 110 places needed → 50 short
    assert c["value"] == pytest.approx(3.0) and c["met"] is False and c["shortfall"] == 50
    assert c["facilities_no_capacity"] == 1
    assert list(t["rank"].astype(object)) == [1, 2, pd.NA, pd.NA]


def test_embedded_plan_states_the_new_targets():
    plan = load_plan()
    smart = plan.target_for("home_care_station", 2027, kind="attribute_share")
    assert (smart.value, smart.text, smart.location) == (0.5, "50%以上", "二、(五)3")
    assert plan.targets["home_care_smart_terminals"].options["levels"] == ("居家养老服务站",)
    dis = plan.targets["disability_home_coverage"]
    assert all(dis.years[y].value == 1.0 for y in plan.period)
    assert dis.clauses[0].text == "“残疾人之家”覆盖率(%)"
    elder = plan.target_for("elder_school", 2027, kind="presence")
    assert elder.clause == "乡镇(街道)老年学校覆盖率达100%" and elder.location == "二、(二)4"
    assert plan.targets["elder_school_coverage"].years[2026] is None
    total = plan.target_for("nursery", 2025, kind="per_1000")
    assert total.value == 4.6 and total.key == "nursery_places_per_1000_total"


def test_targets_table_keeps_integer_ranks(tmp_path):
    from _audit_fixtures import grid_graph, tiny_dataset

    from qyx_geo._report_checks import checks_table
    from qyx_geo.audit import run_audit

    ds = tiny_dataset()
    one = ds.facilities["canteen"].copy()
    one["layer"], one["level"] = "elder_school", "老年学校"
    r = run_audit(ds, network=grid_graph(), services=["elder_school"],
                  facilities={"elder_school": one})
    table = checks_table(r)
    assert list(table["township_code"]) == ["330282001", "330282101", "county"]
    assert str(table["rank"].dtype) == "Int64" and list(table["rank"][:2]) == [1, 2]
    assert table.loc[2, "shortfall"] == 1 and table.loc[2, "shortfall_unit"] == "townships"
