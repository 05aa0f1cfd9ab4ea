"""Batch audits on dask.distributed: three tiny packs (one broken) on a 2-process LocalCluster.

The cluster is started once for the module (worker start-up dominates); every batch writes into
its own folder. Expectations come from the per-region files and from in-process audits, never
from the merged tables themselves.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from _batch_fixtures import write_tiny_region

from qyx_geo._errors import DataFileError, SettingsError
from qyx_geo.batch import (
    BatchOptions,
    RegionTask,
    audit_region,
    find_regions,
    local_client,
    read_populations,
    region_key,
    run_batch,
)
from qyx_geo.cli import main
from qyx_geo.coverage import rank_shares

pytestmark = pytest.mark.slow


def _add_canteen(pack: Path) -> None:
    """Give a pack a second canteen at the far corner (more units pass canteen)."""
    path = pack / "facilities" / "canteen.geojson"
    data = json.loads(path.read_text(encoding="utf-8"))
    extra = json.loads(json.dumps(data["features"][0]))
    extra["properties"]["id"] = "canteen-extra"
    first = (pack / "network" / "grid.osm").read_text(encoding="utf-8")
    # the last grid node (2 km, 2 km from the origin): lat/lon from the OSM file
    last = next(line for line in first.splitlines() if line.startswith('<node id="121"'))
    lat = float(last.split('lat="')[1].split('"')[0])
    lon = float(last.split('lon="')[1].split('"')[0])
    extra["geometry"]["coordinates"] = [lon - 0.004, lat - 0.004]
    extra["properties"]["unit_code"] = extra["properties"]["unit_code"][:6] + "101202"
    extra["properties"]["township_code"] = extra["properties"]["township_code"][:6] + "101"
    data["features"].append(extra)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _break(pack: Path) -> None:
    """Give a pack a demand row of a village that does not exist (a data error)."""
    path = pack / "boundaries" / "demand.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = lines[1].split(",")
    row[0], row[1] = "bad-row", row[1][:-3] + "999"
    path.write_text("\n".join([*lines, ",".join(row)]) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packs")
    write_tiny_region(root / "a_county", county_code="330281", name="甲县")
    b = write_tiny_region(root / "b_county", county_code="330282", name="乙县", shift_deg=0.03,
                          with_plan=True)
    _add_canteen(b)
    c = write_tiny_region(root / "c_broken", county_code="330283", name="丙县", shift_deg=0.06)
    _break(c)
    return root


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    # worker processes inherit the environment at start: give them the session's test cache
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QYX_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "qyx_cache"))
        with local_client(workers=2, memory_limit="1.5GB") as c:
            yield c


@pytest.fixture(scope="module")
def first_batch(packs: Path, client, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("batch")
    seen = []
    result = run_batch([packs], out, client=client, year=2027, maps=True, isochrones=False,
                       on_done=seen.append)
    return result, out, seen


def test_three_regions_one_broken(first_batch, packs):
    result, out, seen = first_batch
    status = {o.region_id: o.status for o in result.outcomes}
    assert status == {"a_county": "done", "b_county": "done", "c_broken": "failed"}
    assert sorted(o.region_id for o in seen) == sorted(status)  # progress callback per region
    assert not result.ok
    (broken,) = result.failed
    assert "UnknownCodeError" in broken.error and "330283001999" in broken.error
    # the broken region left no files; the others wrote the audit's full set and maps
    assert not (out / "regions" / "c_broken").exists() or not any(
        (out / "regions" / "c_broken").iterdir())
    for rid in ("a_county", "b_county"):
        folder = out / "regions" / rid
        for name in ("coverage_villages.csv", "coverage_villages.xlsx", "townships.csv",
                     "townships.xlsx", "summary.json", "summary.md", "run.json",
                     "maps/overview.html", "maps/canteen.html"):
            assert (folder / name).is_file(), (rid, name)
    for o in result.outcomes:
        if o.status == "done":
            assert o.peak_rss_mb and o.peak_rss_mb > 50
            assert o.cpu_seconds and o.cpu_seconds > 0
            assert o.worker and o.worker.startswith("tcp://")


def test_region_outputs_equal_a_single_audit(first_batch, packs, tmp_path):
    from qyx_geo.dataset import load_dataset
    from qyx_geo.pipeline import audit_to_folder

    _, out, _ = first_batch
    single = tmp_path / "single"
    audit_to_folder(load_dataset(data_dir=packs / "b_county"), single, year=2027, maps=False)
    for name in ("coverage_villages.csv", "townships.csv", "summary.json", "summary.md"):
        assert (out / "regions" / "b_county" / name).read_bytes() == \
            (single / name).read_bytes(), name


def test_merged_tables_and_ranking(first_batch):
    _result, out, _ = first_batch
    units = pd.read_csv(out / "all_units.csv", encoding="utf-8-sig", dtype={"code": str})
    per_region = {rid: pd.read_csv(out / "regions" / rid / "coverage_villages.csv",
                                   encoding="utf-8-sig", dtype={"code": str})
                  for rid in ("a_county", "b_county")}
    assert len(units) == sum(len(t) for t in per_region.values()) == 8
    assert set(units["region_code"].astype(str)) == {"330281", "330282"}
    assert units["code"].str[:6].tolist() == units["region_code"].astype(str).tolist()
    towns = pd.read_csv(out / "all_townships.csv", encoding="utf-8-sig")
    assert len(towns) == 4
    counties = pd.read_csv(out / "counties.csv", encoding="utf-8-sig", index_col="region_id")
    assert list(counties.index) == ["b_county", "a_county"]  # b has the extra canteen
    for rid, table in per_region.items():
        judged = table["canteen_judged"].astype(bool)
        share = table.loc[judged, "canteen_passes"].astype(bool).mean()
        assert counties.loc[rid, "canteen_share_passing"] == pytest.approx(share)
        summary = json.loads((out / "regions" / rid / "summary.json").read_text("utf-8"))
        assert counties.loc[rid, "canteen_units_passing"] == \
            summary["services"]["canteen"]["units_passing"]
        services = summary["services"]
        mean = sum(s["share_passing"] for s in services.values()) / len(services)
        assert counties.loc[rid, "overall_share"] == pytest.approx(mean)
    assert counties.loc["b_county", "canteen_share_passing"] > \
        counties.loc["a_county", "canteen_share_passing"]
    # each county is judged against its own pack's plan: b has one (Cixi's), a has none
    assert counties.loc["b_county", "canteen_target"] == pytest.approx(0.95)
    assert not counties.loc["b_county", "canteen_met"]
    assert pd.isna(counties.loc["a_county", "canteen_target"])
    assert pd.isna(counties.loc["a_county", "canteen_met"])
    assert counties.loc["b_county", "canteen_rank"] == 1
    assert counties.loc["a_county", "canteen_rank"] == 2
    assert list(counties["overall_rank"]) == [1, 2]
    record = json.loads((out / "batch.json").read_text("utf-8"))
    assert record["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    md = (out / "summary.md").read_text("utf-8")
    assert "c_broken" in md and "UnknownCodeError" in md and "合成数据" in md
    page = (out / "overview.html").read_text("utf-8")
    assert "甲县" in page and "乙县" in page and "qyx-synthetic-notice" in page
    from qyx_geo.maps._offline import external_urls

    assert external_urls(page, allow=("https://",)) == []


def test_resume_after_interrupted_batch(packs, client, tmp_path):
    good = tmp_path / "packs"
    shutil.copytree(packs / "a_county", good / "a_county")
    shutil.copytree(packs / "b_county", good / "b_county")
    out = tmp_path / "out"
    finished: list[str] = []

    def interrupt(outcome):
        finished.append(outcome.region_id)
        raise KeyboardInterrupt  # Ctrl-C after the first region

    with pytest.raises(KeyboardInterrupt):
        run_batch([good], out, client=client, year=2027, maps=False, on_done=interrupt)
    assert not (out / "counties.csv").exists()  # merged files only at the end
    deadline = time.monotonic() + 60  # a cancelled task that was running may still finish
    while any(client.processing().values()) and time.monotonic() < deadline:
        time.sleep(0.2)
    done_first = out / "regions" / finished[0] / "coverage_villages.csv"
    stamp = done_first.stat().st_mtime_ns

    again = run_batch([good], out, client=client, year=2027, maps=False)
    status = {o.region_id: o.status for o in again.outcomes}
    assert status[finished[0]] == "skipped"
    assert done_first.stat().st_mtime_ns == stamp
    assert again.ok and len(again.counties) == 2

    # a changed input re-runs that region only; changed settings re-run all
    _add_canteen(good / "a_county")
    third = run_batch([good], out, client=client, year=2027, maps=False)
    assert {o.region_id: o.status for o in third.outcomes} == {"a_county": "done",
                                                               "b_county": "skipped"}
    fourth = run_batch([good], out, client=client, year=2026, maps=False)
    assert {o.status for o in fourth.outcomes} == {"done"}


def test_cli_on_a_running_scheduler(packs, client, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["batch", "--regions", f"{packs / 'a_county'},{packs / 'c_broken'}",
                 "--out", str(out), "--scheduler", client.scheduler.address, "--no-maps",
                 "--services", "canteen,clinic"])
    captured = capsys.readouterr()
    assert code == 3
    assert "c_broken" in captured.err and "UnknownCodeError" in captured.err
    assert "甲县" in captured.out
    counties = pd.read_csv(out / "counties.csv", encoding="utf-8-sig")
    assert set(counties.columns) >= {"canteen_rank", "clinic_rank"}
    assert "sports_rank" not in counties.columns


# ----------------------------------------------------------------- no cluster needed


@pytest.mark.parametrize(("argv", "match"), [
    (["--regions", "/no/such/folder"], "does not exist"),
    (["--regions", "339999"], "qyx region init 339999"),
    (["--regions", "{packs}", "--memory-limit", "lots"], "--memory-limit"),
    (["--regions", "{packs}", "--workers", "0"], "--workers"),
    (["--regions", "{packs}", "--year", "2031"], "--year"),
])
def test_cli_bad_options_exit_2(packs, tmp_path, capsys, argv, match):
    argv = [a.replace("{packs}", str(packs)) for a in argv]
    assert main(["batch", *argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


def test_find_regions(packs, tmp_path):
    assert [p.name for p in find_regions([packs])] == ["a_county", "b_county", "c_broken"]
    assert find_regions([packs / "b_county", str(packs / "b_county")]) == \
        [(packs / "b_county").resolve()]
    from qyx_geo._paths import data_dir

    assert find_regions(["330282"]) == [data_dir().resolve()]
    (tmp_path / "empty").mkdir()
    with pytest.raises(SettingsError, match="not a region pack"):
        find_regions([tmp_path / "empty"])


def test_region_key_follows_content_and_settings(packs, tmp_path):
    opts = BatchOptions(year=2027)
    key = region_key(packs / "a_county", opts)
    moved = shutil.copytree(packs / "a_county", tmp_path / "elsewhere")
    assert region_key(moved, opts) == key  # content, not location
    assert region_key(moved, BatchOptions(year=2026)) != key
    assert region_key(moved, BatchOptions(year=2027, maps=False)) != key
    (moved / "boundaries" / "demand.csv").write_text(
        (moved / "boundaries" / "demand.csv").read_text("utf-8").replace(",400,", ",401,"),
        encoding="utf-8")
    assert region_key(moved, opts) != key


def test_audit_region_never_raises(packs, tmp_path):
    task = RegionTask(region_id="c", pack=str(packs / "c_broken"), out_dir=str(tmp_path / "c"),
                      options=BatchOptions(year=2027, maps=False))
    outcome = audit_region(task)
    assert outcome.status == "failed" and outcome.key is not None
    assert outcome.error.startswith("UnknownCodeError")
    missing = RegionTask(region_id="x", pack=str(tmp_path / "gone"), out_dir=str(tmp_path / "x"),
                         options=BatchOptions(year=2027))
    assert audit_region(missing).status == "failed"


def test_rank_shares_ties():
    share = pd.Series([0.5, 0.9, 0.5, float("nan"), 0.5], index=list("abcde"))
    residents = pd.Series([0.7, 0.1, 0.7, 0.9, 0.8], index=list("abcde"))
    # 0.9 first; among the 0.5s residents break ties (e 0.8 before a = c 0.7)
    assert rank_shares(share, residents).tolist() == [3, 1, 3, pd.NA, 2]


def test_codes_need_a_pack_or_a_population(packs, tmp_path):
    from qyx_geo.batch import resolve_regions

    pops = tmp_path / "pops.csv"
    pops.write_text("code,population,source\n330281,1000,测试\n", encoding="utf-8")
    specs = resolve_regions(["330281"], packs_dir=tmp_path / "packs",
                            populations=read_populations(pops))
    assert specs[0].pack == (tmp_path / "packs" / "330281").resolve()
    assert specs[0].init is not None and specs[0].init.population == 1000
    # a pack already generated there is used as it is
    shutil.copytree(packs / "a_county", tmp_path / "packs" / "330281")
    (again,) = resolve_regions(["330281"], packs_dir=tmp_path / "packs")
    assert again.init is None and again.pack.name == "330281"
    with pytest.raises(SettingsError, match="--populations"):
        resolve_regions(["330283"], packs_dir=tmp_path / "packs")


@pytest.mark.parametrize(("text", "match"), [
    ("code,population\n330281,5\n", "source"),
    ("code,population,source\n33028,5,x\n", "row 2.*6-digit"),
    ("code,population,source\n330281,1.5e6,x\n", "whole number"),
    ("code,population,source\n330281,5,\n", "no source"),
    ("code,population,source\n330281,5,x\n330281,6,y\n", "row 3.*twice"),
])
def test_read_populations_errors(tmp_path, text, match):
    path = tmp_path / "p.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError, match=match):
        read_populations(path)


def test_overall_rank_uses_the_services_every_region_has():
    from qyx_geo._batch_merge import county_ranking, summary_markdown
    from qyx_geo.batch import RegionOutcome

    def outcome(rid, shares):
        services = {s: {"share_passing": v, "residents_within_share": v}
                    for s, v in shares.items()}
        return RegionOutcome(region_id=rid, pack="p", out_dir="o", status="done", code=rid,
                             name=rid, summary={"services": services})

    # b has an extra, badly covered layer: it must not drag b's overall below a's
    outs = [outcome("a", {"canteen": 0.5, "clinic": 0.5}),
            outcome("b", {"canteen": 0.7, "clinic": 0.5, "sports": 0.0})]
    table = county_ranking(outs)
    assert table.loc["b", "overall_share"] == pytest.approx(0.6)
    assert list(table.index) == ["b", "a"]
    assert table.loc["b", "sports_rank"] == 1 and pd.isna(table.loc["a", "sports_rank"])
    md = summary_markdown(outs, table, BatchOptions(year=2027))
    assert "(canteen, clinic)" in md
