from __future__ import annotations

import json

import numpy as np
import openpyxl
import pandas as pd
import pytest
from _audit_fixtures import UNITS, grid_graph, tiny_dataset

from qyx_geo import report
from qyx_geo._outputs import MANIFEST
from qyx_geo.audit import run_audit
from qyx_geo.report import REPORT_FILES, write_report


@pytest.fixture(scope="module")
def result():
    return run_audit(tiny_dataset(), network=grid_graph(), year=2027)


def test_writes_every_file(result, tmp_path):
    written = write_report(result, tmp_path, parameters={"argv": ["audit"]})
    assert sorted(p.name for p in written) == sorted(REPORT_FILES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*REPORT_FILES, MANIFEST])
    assert all(p.stat().st_mode & 0o044 for p in written)  # readable by others (not 0600)


def test_tables_neutralise_formulas(tmp_path):
    """Register text that a spreadsheet would run (=, +, -, @, tab, CR) stays text, numbers stay
    numbers: facility ids (the nearest-facility column), unit and township names."""
    import dataclasses

    from _spreadsheets import EVIL, assert_csv_safe, assert_xlsx_safe

    ds = tiny_dataset()
    clinic = ds.facilities["clinic"].copy()
    clinic.index = pd.Index(list(EVIL[:3]), name="id")
    units = ds.units.copy()
    units.loc[UNITS[0], "name"] = EVIL[3]
    units["township_name"] = units["township_name"].replace("二镇", EVIL[4])
    towns = ds.townships.copy()
    towns.loc["330282101", "name"] = EVIL[5]
    ds = dataclasses.replace(ds, units=units, townships=towns,
                             facilities={**ds.facilities, "clinic": clinic})
    r = run_audit(ds, network=grid_graph(), year=2027)
    assert set(r.services["clinic"].units["nearest_facility"]) == set(EVIL[:3])
    write_report(r, tmp_path)
    used = (EVIL[0], EVIL[2], EVIL[3], EVIL[4])  # nearest ids, a unit and a township name
    assert_csv_safe(tmp_path / "coverage_villages.csv", expect=used)
    cells = assert_xlsx_safe(tmp_path / "coverage_villages.xlsx", expect=used)
    assert {c.data_type for c in cells if isinstance(c.value, float)} == {"n"}
    assert_csv_safe(tmp_path / "townships.csv", expect=(EVIL[5],))
    assert_xlsx_safe(tmp_path / "townships.xlsx", expect=(EVIL[5],))
    v = pd.read_csv(tmp_path / "coverage_villages.csv", encoding="utf-8-sig", dtype={"code": str})
    assert v["canteen_share_within"].dtype == float  # numbers kept numeric


def test_csv_has_bom_and_values(result, tmp_path):
    write_report(result, tmp_path)
    raw = (tmp_path / "coverage_villages.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    v = pd.read_csv(tmp_path / "coverage_villages.csv", encoding="utf-8-sig",
                    dtype={"code": str, "township_code": str}).set_index("code")
    assert list(v.index) == list(UNITS)
    assert v.loc[UNITS[1], "canteen_share_within"] == 0.5
    assert v.loc[UNITS[1], "canteen_median_minutes"] == 15.0
    assert v.loc[UNITS[3], "name"] == "北村<b>"  # text kept as data, never interpreted
    assert list(v["sports_judged"]) == [False, False, True, True]
    t = pd.read_csv(tmp_path / "townships.csv", encoding="utf-8-sig",
                    dtype={"township_code": str}).set_index("township_code")
    assert t.loc["330282001", "canteen_share_passing"] == 0.5
    assert t.loc["330282001", "canteen_rank"] == 1 and t.loc["330282101", "canteen_rank"] == 2
    assert (tmp_path / "townships.csv").read_bytes().startswith(b"\xef\xbb\xbf")


def test_xlsx_has_chinese_headers(result, tmp_path):
    write_report(result, tmp_path)
    wb = openpyxl.load_workbook(tmp_path / "coverage_villages.xlsx")
    assert wb.sheetnames == ["村(社区)覆盖", "字段说明"]
    header = [c.value for c in wb["村(社区)覆盖"][1]]
    assert header[:6] == ["村(社区)代码", "村(社区)名称", "镇(街道)代码", "镇(街道)", "类型",
                          "常住人口"]
    assert "老年助餐·阈值内居民占比" in header and "体育健身·达标" in header
    row = [c.value for c in wb["村(社区)覆盖"][2]]
    assert row[0] == UNITS[0] and row[header.index("体育健身·达标")] == "不考核"
    tw = openpyxl.load_workbook(tmp_path / "townships.xlsx")
    assert tw.sheetnames[0] == "镇(街道)汇总" and "老年助餐排名" in tw.sheetnames
    assert [c.value for c in tw["老年助餐排名"][1]][:2] == ["镇(街道)代码", "镇(街道)"]


def test_summary_json_and_md(result, tmp_path):
    write_report(result, tmp_path)
    s = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    c = s["services"]["canteen"]
    assert (c["units_passing"], c["units_judged"], c["met"], c["shortfall_units"]) == (1, 4,
                                                                                       False, 3)
    assert c["target"]["location"] == "二、(五)3" and c["target"]["text"] == "95%以上"
    assert "95%以上" in c["target"]["clause"]
    assert s["services"]["nursery"]["capacity"]["target"]["value"] == 5.5
    assert s["services"]["clinic"]["met"] is True
    assert "合成数据" in s["synthetic_data_notice"]
    assert [r["name"] for r in c["township_ranking"]] == ["一街道", "二镇"]
    md = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "合成数据提示" in md and "二、(五)3「实施老年助餐服务" in md
    assert "| 老年助餐 Elderly canteen | 15 分钟 | 1/4 | 25.0% | ≥95.0%(95%以上)" in md


def test_summary_without_target(tmp_path):
    r = run_audit(tiny_dataset(), network=grid_graph(), year=2025, services=["canteen"])
    write_report(r, tmp_path)
    s = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert s["services"]["canteen"]["target"] is None and s["services"]["canteen"]["met"] is None
    assert "2025" in s["services"]["canteen"]["target_note"]
    assert "本年度无目标" in (tmp_path / "summary.md").read_text(encoding="utf-8")


def test_run_json(result, tmp_path):
    write_report(result, tmp_path, parameters={"argv": ["audit", "--year", "2027"]},
                 timings_s={"load_dataset": 1.5})
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert run["package"]["name"] == "qyx_geo" and run["settings"]["min_share"] == 0.8
    assert run["parameters"]["argv"][-1] == "2027" and run["parameters"]["year"] == 2027
    assert run["timings_s"]["load_dataset"] == 1.5 and "total" in run["timings_s"]
    assert run["data"]["network"]["nodes"] == 121
    assert run["data"]["facility_layers_used"]["canteen"] == {"rows": 1,
                                                              "by_source": {"synthetic": 1}}
    assert "numpy" in run["versions"]


def test_failure_mid_run_leaves_no_file(result, tmp_path, monkeypatch):
    real = report._write_xlsx
    calls = []

    def flaky(path, sheets):
        calls.append(path)
        if len(calls) == 2:  # the csv files and the first workbook are already rendered
            raise OSError("disk full")
        real(path, sheets)

    monkeypatch.setattr(report, "_write_xlsx", flaky)
    with pytest.raises(OSError, match="disk full"):
        write_report(result, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failure_keeps_previous_outputs(result, tmp_path, monkeypatch):
    write_report(result, tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(report, "summary_markdown", lambda r: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report(result, tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_maps_join_the_set(result, tmp_path):
    def maps(folder):
        (folder / "overview.html").write_text("<html></html>", encoding="utf-8")
        return [folder / "overview.html"]

    written = write_report(result, tmp_path, maps_writer=maps)
    assert (tmp_path / "maps" / "overview.html").read_text(encoding="utf-8") == "<html></html>"
    assert tmp_path / "maps" / "overview.html" in written
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == [MANIFEST]

    def broken(folder):
        raise RuntimeError("map failed")

    fresh = tmp_path / "fresh"
    with pytest.raises(RuntimeError, match="map failed"):
        write_report(result, fresh, maps_writer=broken)
    assert list(fresh.iterdir()) == []


def test_a_later_run_without_maps_leaves_no_stale_maps(result, tmp_path):
    def maps(folder):
        for name in ("overview.html", "canteen.html"):
            (folder / name).write_text(f"<html>{name}</html>", encoding="utf-8")
        return sorted(folder.iterdir())

    write_report(result, tmp_path, maps_writer=maps)
    (tmp_path / "my_notes.md").write_text("not ours", encoding="utf-8")
    written = write_report(result, tmp_path)  # qyx audit --no-maps
    assert not (tmp_path / "maps").exists()  # docs/audit.md: never a mix of two runs
    assert sorted(p.name for p in written) == sorted(REPORT_FILES)
    assert (tmp_path / "my_notes.md").read_text(encoding="utf-8") == "not ours"


def test_notice_follows_the_layers_used():
    ds = tiny_dataset()
    plain = run_audit(ds, network=grid_graph(), services=["canteen"])
    assert "老年助餐设施" in report.synthetic_notice(plain)
    user = ds.facilities["canteen"].assign(source="user")
    r = run_audit(ds, network=grid_graph(), services=["canteen"], facilities={"canteen": user})
    notice = report.synthetic_notice(r)
    assert "老年助餐设施" not in notice and "居民点与人口分布" in notice


def test_xlsx_cells_and_layout(tmp_path):
    """What a planner opens: text stays text (a formula-looking one too), numbers numbers,
    missing values empty cells, shares formatted as %, widths by header, panes frozen at B2."""
    frame = pd.DataFrame({"名称": ["=1+1", "北村", None], "人口": np.array([5, 7, 9]),
                          "阈值内居民占比": [0.5, np.nan, 1.0], "达标": [True, False, True],
                          "时间(分钟)": [1.25, np.inf, np.nan]})
    path = tmp_path / "t.xlsx"
    report._write_xlsx(path, {"表" * 40: frame, "二": frame.iloc[:0]})
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["表" * 31, "二"]
    ws = book["表" * 31]
    assert [[c.value for c in row] for row in ws.iter_rows()] == [
        ["名称", "人口", "阈值内居民占比", "达标", "时间(分钟)"],
        ["'=1+1", 5, 0.5, True, 1.25],
        ["北村", 7, None, False, "inf"],
        [None, 9, 1, True, None]]
    assert {c.data_type for c in ws["A"][1:3]} == {"s"} and ws["B2"].data_type == "n"
    assert [c.number_format for c in ws["C"]] == ["General", "0.0%", "0.0%", "0.0%"]
    assert {c.number_format for c in ws["B"]} == {"General"}
    widths = {k: d.width for k, d in ws.column_dimensions.items()}
    assert widths == {"A": 10, "B": 10, "C": 16, "D": 10, "E": 14}
    assert ws.freeze_panes == "B2" and book["二"].freeze_panes == "B2"
    assert [c.value for c in book["二"][1]] == list(frame.columns) and book["二"].max_row == 1
