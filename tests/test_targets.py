from __future__ import annotations

import json
import math
import re
import shutil

import pytest

from qyx_geo import targets as tg
from qyx_geo._errors import ColumnError, DataFileError, NoTargetError, SettingsError
from qyx_geo._paths import data_dir
from qyx_geo.cli import main
from qyx_geo.services import SERVICES

PLAN = (data_dir() / "targets" / "plan_2023-2027.txt").read_text(encoding="utf-8")
DOMAINS = ("幼有善育", "学有优教", "劳有所得", "病有良医", "老有康养", "住有宜居", "弱有众扶")


def _table_from_plan() -> list[tuple[int, str, str, list[str]]]:
    """Parse the plan's table straight from the text, independently of indicators.csv."""
    start = PLAN.index("2027年\n", PLAN.index("表 慈溪市公共服务")) + len("2027年\n")
    cells = [c.strip() for c in PLAN[start:PLAN.index("二、重点任务")].splitlines() if c.strip()]
    rows, domain, i = [], "", 0
    while i < len(cells):
        if cells[i] in DOMAINS:
            domain, i = cells[i], i + 1
            continue
        number, label, i = int(cells[i]), cells[i + 1], i + 2
        if cells[i].startswith("("):  # label printed over two lines
            label, i = label + cells[i], i + 1
        rows.append((number, domain, label, cells[i:i + 6]))
        i += 6
    return rows


def test_indicator_table_matches_the_plan_exactly():
    ind = tg.load_indicators()
    rows = _table_from_plan()
    assert len(rows) == 21
    assert list(ind.index) == list(range(1, 22))
    for number, domain, label, values in rows:
        row = ind.loc[number]
        assert row["domain"] == domain
        assert row["label"] == label
        assert f"{row['name']}({row['unit']})" == label
        assert [row[str(y)] for y in range(2022, 2028)] == values


@pytest.mark.parametrize(("number", "year", "text", "op", "value"), [
    (1, 2027, "5.5", "=", 5.5), (7, 2023, "<3.5", "<", 3.5), (13, 2024, "≥32", ">=", 32.0),
    (14, 2027, "≥108.1", ">=", 108.1), (16, 2022, "16.30", "=", 16.3), (17, 2027, "5.0", "=", 5.0),
    (20, 2022, "82%", "=", 82.0), (21, 2027, "100%", "=", 100.0),
])
def test_indicator_values_and_parsing(number, year, text, op, value):
    row = tg.load_indicators().loc[number]
    assert (row[str(year)], row[f"op_{year}"], row[f"value_{year}"]) == (text, op, value)


def test_full_coverage_cells():
    row = tg.load_indicators().loc[15]
    assert row["2024"] == "全覆盖" and row["op_2024"] == "full" and math.isnan(row["value_2024"])
    assert tg.parse_value("全覆盖")[0] == "full"


def test_parse_value_rejects_garbage():
    with pytest.raises(DataFileError, match="'about 5'"):
        tg.parse_value("about 5")


def test_nursery_capacity_path_is_indicator_1():
    ind = tg.load_indicators()
    path = [tg.target_for("nursery", y, kind="capacity") for y in tg.PLAN_YEARS]
    assert [t.value for t in path] == [4.0, 4.3, 4.6, 5.0, 5.5]
    assert [t.text for t in path] == [ind.loc[1, str(y)] for y in tg.PLAN_YEARS]
    assert path[-1].location == "二、(一)2" and "5.5个" in path[-1].clause


def test_every_clause_and_text_is_verbatim_in_the_plan():
    spatial = tg.load_spatial_targets()
    assert set(spatial) >= {s.coverage_target for s in SERVICES.values() if s.coverage_target} | {
        s.capacity_target for s in SERVICES.values() if s.capacity_target}
    for st in spatial.values():
        for clause in st.clauses:
            assert clause.text in PLAN, clause
            assert re.match(r"^(一、主要目标|二、\([一二三四五六七]\)\d|表 )", clause.location)
        for target in st.years.values():
            if target is not None:
                assert target.text in PLAN and target.clause in PLAN


@pytest.mark.parametrize(("service", "location", "value", "text"), [
    ("canteen", "二、(五)3", 0.95, "95%以上"),
    ("sports", "二、(四)4", 1.0, "全覆盖"),
    ("nursery", "一、主要目标", 1.0, "全面建成“15分钟公共服务圈”"),
    ("clinic", "一、主要目标", 1.0, "全面建成“15分钟公共服务圈”"),
])
def test_coverage_targets_2027(service, location, value, text):
    t = tg.target_for(service, 2027)
    assert (t.location, t.value, t.op, t.text, t.year) == (location, value, ">=", text, 2027)


def test_nursery_circle_cites_the_three_level_network():
    st = tg.load_spatial_targets()["nursery_circle"]
    assert st.clauses[0].location == "二、(一)2"
    assert "社区(村)建设托育服务站点" in st.clauses[0].text


@pytest.mark.parametrize("year", [2023, 2024, 2025, 2026])
@pytest.mark.parametrize("service", ["canteen", "sports", "clinic", "nursery"])
def test_no_coverage_target_before_2027(service, year):
    with pytest.raises(NoTargetError, match=f"no coverage target for '{service}'.*{year}"):
        tg.target_for(service, year)


def test_no_target_errors_are_clear():
    with pytest.raises(NoTargetError, match="baseline"):
        tg.target_for("canteen", 2022)
    with pytest.raises(NoTargetError, match="2023–2027"):
        tg.target_for("canteen", 2030)
    with pytest.raises(NoTargetError, match="no capacity target"):
        tg.target_for("clinic", 2027, kind="capacity")
    with pytest.raises(LookupError):  # NoTargetError is a LookupError
        tg.target_for("sports", 2025)
    with pytest.raises(SettingsError):
        tg.target_for("canteen", "2027")  # type: ignore[arg-type]
    with pytest.raises(SettingsError):
        tg.target_for("canteen", 2027, kind="places")  # type: ignore[arg-type]


def test_target_is_met():
    t = tg.target_for("canteen", 2027)
    assert t.is_met(0.95) and t.is_met(1.0) and not t.is_met(0.949) and not t.is_met(math.nan)
    assert t.is_met(19 / 20)


def test_targets_for_year():
    yt = tg.targets_for_year(2026)
    assert len(yt.indicators) == 21
    assert yt.indicators.loc[1, "text"] == "5" and yt.indicators.loc[1, "baseline"] == "3.31"
    assert yt.spatial["meal_aid_coverage"] is None
    assert yt.spatial["nursery_places_per_1000"].value == 5.0
    assert tg.targets_for_year(2022).indicators.loc[20, "text"] == "82%"
    with pytest.raises(NoTargetError):
        tg.targets_for_year(2028)


def _copy_targets(tmp_path):
    shutil.copytree(data_dir() / "targets", tmp_path / "targets")
    return tmp_path / "targets"


def test_indicator_file_missing_column(tmp_path):
    folder = _copy_targets(tmp_path)
    path = folder / "indicators.csv"
    text = path.read_text(encoding="utf-8").replace("domain,", "area,", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ColumnError, match="domain"):
        tg.load_indicators(path)


def test_indicator_file_parsed_columns_disagree(tmp_path):
    folder = _copy_targets(tmp_path)
    path = folder / "indicators.csv"
    text = path.read_text(encoding="utf-8").replace(",<,3.5,", ",<=,3.5,", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=r"row 8.*'<3.5'"):
        tg.load_indicators(path)


def test_indicator_file_missing_or_empty(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        tg.load_indicators(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("", encoding="utf-8")
    with pytest.raises(DataFileError, match="not a readable"):
        tg.load_indicators(tmp_path / "empty.csv")


def test_spatial_file_errors(tmp_path):
    folder = _copy_targets(tmp_path)
    path = folder / "plan.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw["targets"][0]["years"]["2030"] = None
    path.write_text(json.dumps(raw, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(DataFileError, match=r"\[2030\] outside the plan period"):
        tg.load_spatial_targets(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFileError, match="not valid UTF-8 JSON"):
        tg.load_spatial_targets(path)


def test_cli_targets_text_and_json(capsys):
    assert main(["targets", "--year", "2027"]) == 0
    out = capsys.readouterr().out
    assert "≥95%" in out and "二、(五)3" in out and "<3.5" in out and "全覆盖" in out
    assert main(["targets", "--year", "2025", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["indicators"]) == 21
    by_key = {s["key"]: s for s in data["spatial_targets"]}
    assert by_key["meal_aid_coverage"]["target"] is None
    assert by_key["nursery_places_per_1000"]["target"]["value"] == 4.6
    assert main(["targets", "--year", "2031"]) == 2
    assert "2031" in capsys.readouterr().err
