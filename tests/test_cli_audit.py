from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from _audit_fixtures import use_tiny_dataset

from qyx_geo import report
from qyx_geo._outputs import MANIFEST
from qyx_geo._paths import data_dir
from qyx_geo.cli import main
from qyx_geo.report import REPORT_FILES


@pytest.fixture
def tiny(monkeypatch):
    return use_tiny_dataset(monkeypatch)


def test_audit_prints_county_and_ranking(tiny, tmp_path, capsys):
    assert main(["audit", "--out", str(tmp_path), "--no-maps"]) == 0
    out = capsys.readouterr().out
    assert "【老年助餐 Elderly canteen】" in out
    assert "1/4 个村(社区)达标" in out and "25.0%" in out
    assert "≥95.0%(95%以上,二、(五)3)→ 未达到 not met,尚缺 shortfall 3 个" in out
    assert "托位 places: 4.67 个/千人" in out and "含合成数据" in out
    assert "一街道" in out and "二镇" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*REPORT_FILES, MANIFEST])


def test_audit_options(tiny, tmp_path, capsys):
    code = main(["audit", "--year", "2025", "--out", str(tmp_path), "--no-maps",
                 "--services", "canteen,clinic", "--townships", "二镇", "--threshold",
                 "canteen=20", "--mode", "elderly_walk", "--speed", "3.6", "--min-share", "0.5"])
    assert code == 0
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert run["parameters"]["services"] == ["canteen", "clinic"]
    assert run["parameters"]["townships"] == ["330282101"]
    assert run["parameters"]["thresholds_minutes"] == {"canteen": 20.0, "clinic": 15.0}
    assert run["settings"]["mode"] == "elderly_walk"
    assert run["settings"]["elderly_walk_speed_kmh"] == 3.6
    assert run["settings"]["min_share"] == 0.5
    assert {"load_dataset", "load_network", "total"} <= set(run["timings_s"])
    v = pd.read_csv(tmp_path / "coverage_villages.csv", encoding="utf-8-sig", dtype={"code": str})
    assert list(v["code"]) == ["330282101201", "330282101202"]
    assert "本年度无目标" in capsys.readouterr().out


def test_fail_under(tiny, tmp_path, capsys):
    assert main(["audit", "--out", str(tmp_path), "--no-maps", "--services", "clinic",
                 "--fail-under", "0.95"]) == 0
    assert main(["audit", "--out", str(tmp_path), "--no-maps", "--services", "clinic,sports",
                 "--fail-under", "0.95"]) == 1
    assert "sports 0.0%" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "match"), [
    (["--services", "library"], "library"),
    (["--townships", "火星镇"], "火星镇"),
    (["--year", "2031"], "2031"),
    (["--fail-under", "95"], "fail-under"),
    (["--min-share", "1.5"], "min-share"),
    (["--threshold", "canteen=abc"], "threshold"),
    (["--threshold", "library=10"], "library"),
    (["--speed", "-1"], "speed"),
    (["--speed", "inf"], "--speed"),
    (["--speed", "1e308"], "--speed"),
    (["--speed", "1e-300"], "--speed"),
    (["--mode", "cycle", "--speed", "nan"], "--speed"),
    (["--threshold", "canteen=1e9"], "--threshold"),
    (["--threshold", "canteen=inf"], "--threshold"),
    (["--threshold", "0"], "--threshold"),
    (["--min-share", "0"], "--min-share"),
    (["--services", "clinic", "--threshold", "canteen=10"], "not audited"),
    (["--facilities", "canteen"], "SERVICE=FILE"),
])
def test_bad_input_exits_2_with_one_line(tiny, tmp_path, capsys, argv, match):
    assert main(["audit", "--out", str(tmp_path / "o"), "--no-maps", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0] and err[0].startswith("qyx audit:")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_sigterm_handler_restored(tiny, tmp_path):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    main(["audit", "--out", str(tmp_path), "--no-maps", "--services", "clinic"])
    assert signal.getsignal(signal.SIGTERM) is before


def test_audit_with_maps(tiny, tmp_path):
    pytest.importorskip("qyx_geo.maps")
    assert main(["audit", "--out", str(tmp_path), "--services", "canteen"]) == 0
    maps = sorted(p.name for p in (tmp_path / "maps").iterdir())
    assert maps == ["canteen.html", "overview.html", "surfaces"]
    assert "老年助餐" in (tmp_path / "maps" / "canteen.html").read_text(encoding="utf-8")
    rasterio = pytest.importorskip("rasterio")
    with rasterio.open(tmp_path / "maps" / "surfaces" / "canteen.tif") as r:
        assert r.tags()["QYX_SERVICE"] == "canteen" and r.tags()["QYX_UNITS"] == "minutes"
        values = r.read(1)
        reached = values[values != r.nodata]
        assert reached.size and reached.min() >= 0 and reached.max() <= 15
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert "maps" in run["timings_s"] and run["parameters"]["maps"] is True


def test_exact_isochrones_on_request(tiny, tmp_path):
    pytest.importorskip("qyx_geo.maps")
    assert main(["audit", "--out", str(tmp_path), "--services", "canteen",
                 "--isochrones", "exact"]) == 0
    page = (tmp_path / "maps" / "canteen.html").read_text(encoding="utf-8")
    assert "image_overlay_" not in page and "within 15 min" in page  # street-band polygons
    assert (tmp_path / "maps" / "surfaces" / "canteen.tif").exists()
    default = tmp_path / "default"
    assert main(["audit", "--out", str(default), "--services", "canteen"]) == 0
    assert "image_overlay_" in (default / "maps" / "canteen.html").read_text(encoding="utf-8")


def test_print_maps_on_request(tiny, tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["audit", "--out", str(tmp_path), "--services", "canteen", "--print", "A3"]) == 0
    printed = sorted(p.name for p in (tmp_path / "maps" / "print").iterdir())
    assert printed == ["canteen_A3.pdf", "canteen_A3.png", "overview_A3.pdf", "overview_A3.png"]
    run = json.loads((tmp_path / "run.json").read_text(encoding="utf-8"))
    assert "print_maps" in run["timings_s"]


def test_facility_register(tiny, tmp_path):
    reg = tmp_path / "canteens.csv"
    pts = tiny.demand.geometry
    reg.write_text("名称,经度,纬度\n" + "\n".join(
        f"助餐点{k},{pts.loc[i].x:.7f},{pts.loc[i].y:.7f}" for k, i in enumerate(["d1", "d6"])),
        encoding="utf-8")
    out = tmp_path / "o"
    assert main(["audit", "--out", str(out), "--no-maps", "--services", "canteen",
                 "--facilities", f"canteen={reg}"]) == 0
    s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert run["data"]["facility_layers_used"]["canteen"]["by_source"] == {"user": 2}
    assert s["services"]["canteen"]["units_judged"] == 4


def test_xlsx_written_by_cli(tiny, tmp_path):
    main(["audit", "--out", str(tmp_path), "--no-maps", "--services", "sports"])
    wb = openpyxl.load_workbook(tmp_path / "townships.xlsx")
    assert "体育健身排名" in wb.sheetnames


#: The README's headline figures for the embedded Cixi audit of 2027 (the project promises that
#: they do not change): units passing/judged per service, the canteen's share, target and
#: shortfall, and the nursery places per 1,000 residents with their target.
HEADLINE = {"canteen": (316, 406), "clinic": (313, 406), "sports": (213, 294),
            "nursery": (163, 406), "canteen_share_pct": 77.8, "canteen_target_pct": 95,
            "canteen_short": 70, "nursery_places": 3.8, "nursery_places_target": 5.5}


def _readme_headline() -> dict[str, object]:
    """Parse the headline sentence of README.md (whitespace and line breaks folded)."""
    text = " ".join((Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8").split())
    m = re.search(r"canteen (\d+)/(\d+) units pass \(([\d.]+) %, target (\d+) %, (\d+) "
                  r"short\), clinic (\d+)/(\d+), sports (\d+)/(\d+) administrative villages, "
                  r"nursery (\d+)/(\d+) and ([\d.]+) places per 1,000 \(target ([\d.]+)\)",
                  text)
    assert m, "README.md lost its headline sentence (canteen .../406 units pass ...)"
    g = m.groups()
    return {"canteen": (int(g[0]), int(g[1])), "clinic": (int(g[5]), int(g[6])),
            "sports": (int(g[7]), int(g[8])), "nursery": (int(g[9]), int(g[10])),
            "canteen_share_pct": float(g[2]), "canteen_target_pct": int(g[3]),
            "canteen_short": int(g[4]), "nursery_places": float(g[11]),
            "nursery_places_target": float(g[12])}


def test_readme_states_the_pinned_headline():
    assert _readme_headline() == HEADLINE


@pytest.mark.slow
def test_audit_embedded_data(tmp_path, capsys):
    # the embedded network is committed: a missing file is a failure, not a reason to skip
    assert any((data_dir() / "network").glob("*.osm*")), "embedded network file missing"
    assert main(["audit", "--out", str(tmp_path), "--no-isochrones"]) == 0
    out = capsys.readouterr().out
    for label in ("托育", "老年助餐", "医疗卫生", "体育健身"):
        assert f"【{label}" in out
    v = pd.read_csv(tmp_path / "coverage_villages.csv", encoding="utf-8-sig", dtype={"code": str})
    assert len(v) == 406 and v["code"].str.len().eq(12).all()
    t = pd.read_csv(tmp_path / "townships.csv", encoding="utf-8-sig")
    assert len(t) == 24
    assert (tmp_path / "maps" / "overview.html").exists()
    # the README's headline figures, from this real audit
    s = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))["services"]
    got = {sid: (s[sid]["units_passing"], s[sid]["units_judged"])
           for sid in ("canteen", "clinic", "sports", "nursery")}
    canteen, cap = s["canteen"], s["nursery"]["capacity"]
    got.update(canteen_share_pct=round(100 * canteen["share_passing"], 1),
               canteen_target_pct=round(100 * canteen["target"]["value"]),
               canteen_short=canteen["shortfall_units"],
               nursery_places=round(cap["places_per_1000"], 1),
               nursery_places_target=cap["target"]["value"])
    assert got == HEADLINE == _readme_headline()
    # the same figures from the written village table (independent of the summary's counting)
    for sid in ("canteen", "clinic", "sports", "nursery"):
        judged = v[f"{sid}_judged"].astype(bool)
        assert (int((v[f"{sid}_passes"].astype(bool) & judged).sum()), int(judged.sum())) == \
            HEADLINE[sid]


def test_one_township_maps(tiny, tmp_path):
    pytest.importorskip("qyx_geo.maps")
    assert main(["audit", "--out", str(tmp_path), "--services", "clinic", "--townships",
                 "330282101", "--no-isochrones"]) == 0
    html = (tmp_path / "maps" / "clinic.html").read_text(encoding="utf-8")
    assert "二镇" in html


def test_audit_without_a_plan(tiny, tmp_path, capsys):
    assert main(["audit", "--out", str(tmp_path), "--no-maps", "--services", "canteen",
                 "--no-plan"]) == 0
    out = capsys.readouterr().out
    assert "1/4 个村(社区)达标" in out and "without a plan" in out and "未达到" not in out
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    assert summary["plan"] is None
    canteen = summary["services"]["canteen"]
    assert canteen["target"] is None and canteen["met"] is None
    assert [r["rank"] for r in canteen["township_ranking"]] == [1, 2]
    md = (tmp_path / "summary.md").read_text(encoding="utf-8")
    assert "无(只评分与排名" in md
    with pytest.raises(SystemExit):  # argparse: --plan and --no-plan exclude each other
        main(["audit", "--out", str(tmp_path), "--no-maps", "--no-plan", "--plan", "x.json"])
    assert main(["audit", "--out", str(tmp_path / "o"), "--no-maps", "--plan",
                 str(tmp_path / "none.json")]) == 2
    assert "Plan file" in capsys.readouterr().err and not (tmp_path / "o").exists()


# -- operating-system errors: exit 2 with one line (path, reason, fix), never 1 or a traceback --

def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("qyx ") and "Traceback" not in err[0]
    return err[0]


def _audit(out):
    return main(["audit", "--out", str(out), "--no-maps", "--services", "canteen"])


def test_out_is_a_file(tiny, tmp_path, capsys):
    f = tmp_path / "results.xlsx"
    f.write_text("mine", encoding="utf-8")
    assert _audit(f) == 2
    line = _one_line(capsys)
    assert str(f) in line and "--out" in line
    assert f.read_text(encoding="utf-8") == "mine"


def test_out_under_a_file(tiny, tmp_path, capsys):
    f = tmp_path / "results.xlsx"
    f.write_text("mine", encoding="utf-8")
    assert _audit(f / "2027") == 2
    line = _one_line(capsys)
    assert str(f) in line and "--out" in line and "not a folder" in line


def test_read_only_out(tiny, tmp_path, capsys, monkeypatch):
    out = tmp_path / "shared"
    real = Path.mkdir

    def refuse(self, *args, **kwargs):  # as on a read-only share (root ignores chmod)
        if self == out or out in self.parents:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", refuse)
    assert _audit(out) == 2
    line = _one_line(capsys)
    assert str(out) in line and "no permission" in line


def test_disk_full_keeps_the_previous_outputs(tiny, tmp_path, capsys, monkeypatch):
    assert _audit(tmp_path) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    capsys.readouterr()

    def full(path, sheets):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(report, "_write_xlsx", full)
    assert _audit(tmp_path) == 2
    line = _one_line(capsys)
    assert "coverage_villages.xlsx" in line and "disk full" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_file_held_open_during_the_commit(tiny, tmp_path, capsys, monkeypatch):
    assert _audit(tmp_path) == 0
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    capsys.readouterr()
    real = Path.replace

    def locked(self, target):  # Windows refuses to replace a file Excel has open
        if Path(target).name == "townships.xlsx" and ".qyx-staging." in str(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(target))
        return real(self, target)

    monkeypatch.setattr(Path, "replace", locked)
    assert _audit(tmp_path) == 2
    line = _one_line(capsys)
    assert "townships.xlsx" in line and "Excel" in line
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_cache_folder_that_cannot_be_created(tmp_path, capsys, monkeypatch):
    f = tmp_path / "cache"
    f.write_text("a file", encoding="utf-8")
    monkeypatch.setenv("QYX_CACHE_DIR", str(f / "qyx"))
    tiny_osm = Path(__file__).parent / "fixtures" / "network" / "tiny.osm"
    assert main(["network", "load", str(tiny_osm)]) == 2
    line = _one_line(capsys)
    assert "QYX_CACHE_DIR" in line and str(f / "qyx") in line


def test_a_command_registers_only_its_own_parser():
    # issue 11: `qyx audit` used to import every command's module (the dataset stack for
    # `info`, the maps for `map`…) before it parsed its arguments
    import subprocess
    import sys

    code = ("import sys\nfrom qyx_geo.cli import main\n"
            "try:\n    main(['-v', 'audit', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('qyx_geo.cli.'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "--fail-under" in out  # the audit's own help
    assert out.splitlines()[-1].split() == ["qyx_geo.cli.audit", "qyx_geo.cli.facilities",
                                            "qyx_geo.cli.region"]


@pytest.mark.parametrize("argv", [["--help"], ["-vh", "audit"], ["--help", "audit"]])
def test_help_before_a_command_lists_every_command(argv, capsys):
    from qyx_geo.cli import COMMANDS

    with pytest.raises(SystemExit):
        main(argv)
    out = capsys.readouterr().out
    assert all(f"    {name} " in out for name in COMMANDS)


def test_an_unknown_command_lists_the_choices(capsys):
    with pytest.raises(SystemExit):
        main(["-v", "audti"])
    err = capsys.readouterr().err
    assert "invalid choice: 'audti'" in err and "'site'" in err
