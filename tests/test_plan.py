"""Plan files (qyx-plan/1): any plan loads and validates; audits with and without one."""

from __future__ import annotations

import json
import shutil

import pytest
from _audit_fixtures import UNITS, grid_graph, tiny_dataset

from qyx_geo._errors import DataFileError, NoTargetError, SettingsError
from qyx_geo._paths import data_dir
from qyx_geo.audit import run_audit
from qyx_geo.cli import main
from qyx_geo.engine import build_arrays
from qyx_geo.plan import PLAN_FORMAT, Plan, load_plan

#: A small plan for another county, written by hand: no text file, indicators inline.
MINI = {
    "format": PLAN_FORMAT,
    "title": "某县公共服务行动计划(2024—2026年)",
    "publisher": "某县人民政府", "published": "2024-01-01",
    "region": {"code": "330000", "name_zh": "某县"},
    "period": [2024, 2026], "baseline_year": 2023,
    "indicators": [
        {"number": 1, "domain": "老有康养", "name": "老年助餐覆盖率", "unit": "%",
         "values": {"2023": "60%", "2026": "≥90%"}},
    ],
    "targets": [
        {"key": "meals", "kind": "coverage", "services": ["canteen"], "minutes": 10,
         "measure_zh": "10分钟可达助餐点的村(社区)占比", "measure_en": "share within 10 min",
         "unit": "share", "clauses": [{"location": "二、1", "text": "助餐服务覆盖率达50%"}],
         "years": {"2026": {"op": ">=", "value": 0.5, "text": "50%"}}, "reading": "as written"},
    ],
}


def _write(tmp_path, plan, name="plan.json"):
    path = tmp_path / name
    path.write_text(json.dumps(plan, ensure_ascii=False), encoding="utf-8")
    return path


def test_default_plan_is_the_embedded_file():
    plan = load_plan()
    assert isinstance(plan, Plan) and plan.path == data_dir() / "targets" / "plan.json"
    assert plan.period == (2023, 2024, 2025, 2026, 2027) and plan.baseline_year == 2022
    assert plan.region_code == "330282" and len(plan.indicators) == 21
    assert plan.ranking is not None and plan.ranking.location == "三、(一)"
    assert plan.text is not None and plan.ranking.text in plan.text


def test_lookup_prefers_the_most_specific_target():
    plan = load_plan()
    # service_circle_15min lists all four services; meal_aid_coverage lists only canteen
    assert plan.find("canteen", "coverage").key == "meal_aid_coverage"
    assert plan.find("clinic", "capacity") is None
    t = plan.target_for("canteen", 2027)
    assert [c.location for c in t.all_clauses] == ["二、(五)3"]


def test_mini_plan_loads_from_any_path(tmp_path):
    plan = load_plan(_write(tmp_path, MINI))
    assert plan.period == (2024, 2025, 2026) and plan.years == (2023, 2024, 2025, 2026)
    row = plan.indicators.loc[1]
    assert (row["2023"], row["op_2026"], row["value_2026"], row["2024"]) == (
        "60%", ">=", 90.0, "")
    assert row["label"] == "老年助餐覆盖率(%)" and row["direction"] == "up"
    t = plan.target_for("canteen", 2026)
    assert (t.value, t.location, t.key) == (0.5, "二、1", "meals")
    with pytest.raises(NoTargetError, match=r"states one for \[2026\]"):
        plan.target_for("canteen", 2025)
    with pytest.raises(NoTargetError, match="no coverage target for service 'clinic'"):
        plan.target_for("clinic", 2026)
    yt = plan.for_year(2023)
    assert yt.indicators.loc[1, "baseline"] == "60%" and yt.spatial["meals"] is None


@pytest.mark.parametrize(("change", "match"), [
    (lambda p: p.pop("format"), "format None is not 'qyx-plan/1'"),
    (lambda p: p.update(period=[2026, 2024]), "first <= last"),
    (lambda p: p["targets"][0].update(kind="nearby"), "kind 'nearby' is not one of"),
    (lambda p: p["targets"][0].update(clauses=[]), "quotes no clause"),
    (lambda p: p["targets"][0]["years"].update({"2030": None}), r"\[2030\] outside"),
    (lambda p: p["targets"][0]["years"]["2026"].update(value=95), "share in \\[0, 1\\]"),
    (lambda p: p["targets"][0]["years"]["2026"].update(op="≥"), "op '≥' is not one of"),
    (lambda p: p["targets"].append(dict(p["targets"][0])), "'meals' appears more than once"),
    (lambda p: p["targets"][0].update(kind="attribute_share"), "needs the field 'attribute'"),
    (lambda p: p["indicators"][0]["values"].update({"2026": "about 90"}), "'about 90'"),
    (lambda p: p["indicators"][0]["values"].update({"2031": "1"}), r"\['2031'\] outside"),
])
def test_mini_plan_errors_name_the_field(tmp_path, change, match):
    plan = json.loads(json.dumps(MINI))
    change(plan)
    with pytest.raises(DataFileError, match=match):
        load_plan(_write(tmp_path, plan))


def test_quotes_are_checked_against_the_text_file(tmp_path):
    (tmp_path / "text.txt").write_text("一、目标\n到2026年,助餐服务覆盖率达50%。\n",
                                       encoding="utf-8")
    plan = json.loads(json.dumps(MINI))
    plan["text_file"] = "text.txt"
    assert load_plan(_write(tmp_path, plan)).text is not None
    plan["targets"][0]["clauses"][0]["text"] = "助餐服务覆盖率达60%"
    with pytest.raises(DataFileError, match="not in the plan text verbatim"):
        load_plan(_write(tmp_path, plan, "bad.json"))


def test_missing_and_unreadable_plan_files(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        load_plan(tmp_path / "nope.json")
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    with pytest.raises(DataFileError, match="not valid UTF-8 JSON"):
        load_plan(tmp_path / "broken.json")


def test_copied_embedded_plan_reads_its_neighbours(tmp_path):
    shutil.copytree(data_dir() / "targets", tmp_path / "t")
    plan = load_plan(tmp_path / "t" / "plan.json")
    assert plan.target_for("nursery", 2025, kind="capacity").value == 4.6


@pytest.fixture(scope="module")
def net():
    return build_arrays(grid_graph())


def test_audit_without_a_plan_scores_and_ranks_without_verdicts(net):
    with_plan = run_audit(tiny_dataset(), network=net, services=["canteen", "nursery"])
    bare = run_audit(tiny_dataset(), network=net, services=["canteen", "nursery"], plan=None)
    assert bare.plan is None and with_plan.plan is not None
    for sid in ("canteen", "nursery"):
        a, b = with_plan.services[sid], bare.services[sid]
        assert list(b.units["passes"]) == list(a.units["passes"])
        assert b.county["target"] is None and b.county["met"] is None
        assert b.county["shortfall_units"] == 0 and "without a plan" in b.county["target_note"]
        assert b.townships["met"].isna().all()
        assert list(b.townships["rank"]) == list(a.townships["rank"])
    # nursery places are still measured, only not judged
    cap = bare.services["nursery"].county["capacity"]
    assert cap["target"] is None and cap["places_per_1000"] == pytest.approx(14 / 3)


def test_audit_with_another_plan(tmp_path, net):
    plan = load_plan(_write(tmp_path, MINI))
    r = run_audit(tiny_dataset(), network=net, services=["canteen"], plan=plan, year=2026)
    a = r.services["canteen"]
    assert a.threshold_minutes == 10.0  # the plan's minutes
    # one canteen at (400, 400) m: 10 min = 666.7 m reaches d1 (3 min) only among 60+ points
    assert list(a.units["passes"]) == [False, False, False, False]
    assert a.county["target"].key == "meals" and a.county["met"] is False
    assert a.county["shortfall_units"] == 2  # 50 % of 4 units
    with pytest.raises(SettingsError, match="2024–2026"):
        run_audit(tiny_dataset(), network=net, services=["canteen"], plan=plan, year=2027)
    assert UNITS[0] in a.units.index


def test_cli_targets_with_a_plan_file(tmp_path, capsys):
    path = _write(tmp_path, MINI)
    assert main(["targets", "--plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "某县公共服务行动计划" in out and "2026年" in out and "二、1" in out
    assert main(["targets", "--plan", str(path), "--year", "2023", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plan"]["region_code"] == "330000" and data["year"] == 2023
    assert main(["targets", "--plan", str(tmp_path / "none.json")]) == 2
    assert "not found" in capsys.readouterr().err
