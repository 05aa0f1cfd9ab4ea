"""Merged outputs of a batch: all units, all townships, the county ranking, summary and map.

Written by :func:`write_merged` from the small tables each region's task returns, as one
all-or-nothing set in the batch folder:

``all_units.csv`` / ``all_townships.csv``
    Every region's ``coverage_villages.csv`` / ``townships.csv`` with ``region_id``,
    ``region_code`` and ``region_name`` in front.
``counties.csv`` / ``counties.xlsx``
    One row per region: per service the county's units judged/passing, share passing, residents
    share, its own plan target, met, shortfall and the rank among the batch's counties (季晾晒,
    the plan's rule: share passing, ties by residents covered); ``overall_share`` (mean of the
    services' shares) and ``overall_rank``.
``batch.json`` / ``summary.md``
    Every region's status (done, skipped, failed with its error), time, worker and peak memory;
    the ranking tables; a synthetic-data notice when any region used generated data.
``overview.html``
    Offline map of the counties coloured by overall share, with each county's figures.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from qyx_geo import __version__
from qyx_geo._outputs import output_set
from qyx_geo._tables import safe_table, write_csv
from qyx_geo.coverage import rank_shares
from qyx_geo.services import get_service

if TYPE_CHECKING:
    from qyx_geo.batch import BatchOptions, RegionOutcome

__all__ = ["MERGED_FILES", "county_ranking", "merged_table", "write_merged"]

MERGED_FILES = ("all_units.csv", "all_townships.csv", "counties.csv", "counties.xlsx",
                "batch.json", "summary.md", "overview.html")

_STATUS_ZH = {"done": "完成 done", "skipped": "未变跳过 unchanged, skipped",
              "failed": "失败 failed"}


def merged_table(outcomes: Sequence[RegionOutcome], which: str) -> pd.DataFrame:
    """Concatenate the regions' ``units`` or ``townships`` tables with region columns in front."""
    frames = []
    for o in outcomes:
        table = getattr(o, which)
        if table is None:
            continue
        front = pd.DataFrame({"region_id": o.region_id, "region_code": o.code,
                              "region_name": o.name}, index=table.index)
        frames.append(pd.concat([front, table], axis=1))
    if not frames:
        return pd.DataFrame(columns=["region_id", "region_code", "region_name"])
    return pd.concat(frames)


def county_ranking(outcomes: Sequence[RegionOutcome]) -> pd.DataFrame:
    """One row per region with outputs: county figures per service, ranks and overall rank.

    Figures come from each region's ``summary.json`` (its own plan's target and verdict);
    ranks compare the regions of the batch with :func:`qyx_geo.coverage.rank_shares`.
    """
    rows = []
    services: list[str] = []
    for o in outcomes:
        if o.summary is None:
            continue
        row: dict[str, Any] = {"region_id": o.region_id, "region_code": o.code,
                               "region_name": o.name, "status": o.status,
                               "units": len(o.units) if o.units is not None else None}
        for sid, s in o.summary.get("services", {}).items():
            if sid not in services:
                services.append(sid)
            target = s.get("target") or {}
            row.update({f"{sid}_units_judged": s.get("units_judged"),
                        f"{sid}_units_passing": s.get("units_passing"),
                        f"{sid}_share_passing": s.get("share_passing"),
                        f"{sid}_residents_within_share": s.get("residents_within_share"),
                        f"{sid}_target": target.get("value"), f"{sid}_met": s.get("met"),
                        f"{sid}_shortfall_units": s.get("shortfall_units")})
        rows.append(row)
    if not rows:
        return pd.DataFrame(columns=["region_id", "region_code", "region_name",
                                     "overall_share", "overall_rank"]).set_index("region_id")
    table = pd.DataFrame(rows).set_index("region_id")
    shares, residents = [], []
    # overall compares like with like: only the services every region was scored on (a pack
    # with extra layers would otherwise be averaged over more, and other, services)
    common = [s for s in services if table[f"{s}_share_passing"].notna().all()] or services
    table.attrs["overall_services"] = common
    for sid in services:
        share = table[f"{sid}_share_passing"].astype(float)
        res = table[f"{sid}_residents_within_share"].astype(float)
        table[f"{sid}_rank"] = rank_shares(share, res)
        if sid in common:
            shares.append(share)
            residents.append(res)
    with np.errstate(all="ignore"):
        table["overall_share"] = pd.concat(shares, axis=1).mean(axis=1, skipna=True).round(6)
        overall_res = pd.concat(residents, axis=1).mean(axis=1, skipna=True)
    table["overall_rank"] = rank_shares(table["overall_share"], overall_res)
    return table.sort_values(["overall_rank", "region_id"], na_position="last")


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return "—"
    return f"{100 * float(value):.1f}%"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _notices(outcomes: Sequence[RegionOutcome]) -> list[str]:
    return [f"{o.name or o.region_id}" for o in outcomes
            if o.summary and o.summary.get("synthetic_data_notice")]


def _record(outcomes: Sequence[RegionOutcome], options: BatchOptions) -> dict[str, Any]:
    regions = []
    for o in outcomes:
        regions.append({"region_id": o.region_id, "code": o.code, "name": o.name,
                        "pack": o.pack, "out_dir": o.out_dir, "status": o.status,
                        "error": o.error, "key": o.key, "seconds": round(o.seconds, 2),
                        "cpu_seconds": None if o.cpu_seconds is None else round(o.cpu_seconds, 2),
                        "peak_rss_mb": o.peak_rss_mb, "worker": o.worker,
                        "synthetic": bool(o.summary and o.summary.get("synthetic_data_notice"))})
    counts = {s: sum(o.status == s for o in outcomes) for s in ("done", "skipped", "failed")}
    return {"package": {"name": "qyx_geo", "version": __version__},
            "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "options": options.to_dict(), "counts": counts, "regions": regions}


def summary_markdown(outcomes: Sequence[RegionOutcome], counties: pd.DataFrame,
                     options: BatchOptions) -> str:
    """Markdown summary of a batch (Chinese first): status, failures, the county ranking."""
    record = _record(outcomes, options)
    c = record["counts"]
    lines = [f"# 15分钟公共服务圈批量体检 {options.year}年 / Batch audit, {options.year}", "",
             f"地区 regions: {len(outcomes)};完成 done {c['done']},未变跳过 skipped "
             f"{c['skipped']},失败 failed {c['failed']}。", ""]
    synthetic = _notices(outcomes)
    if synthetic:
        lines += [f"> **⚠ 合成数据提示:{'、'.join(synthetic)} 的结果部分基于生成的模拟数据,仅用于"
                  "演示方法,不代表实际水平。 / Synthetic data: these regions' figures are partly "
                  "generated and demonstrate the method only.**", ""]
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines += ["## 失败的地区 / Failed regions", "", "| 地区 region | 错误 error |",
                  "| --- | --- |"]
        lines += [f"| {_cell(o.region_id)} | {_cell(o.error)} |" for o in failed]
        lines.append("")
    services = [col[: -len("_rank")] for col in counties.columns
                if col.endswith("_rank") and col != "overall_rank"]
    if not counties.empty:
        head = " | ".join(f"{get_service(s).label_zh} {s}" for s in services)
        lines += ["## 县域排名(季晾晒)/ County ranking", "",
                  "综合 = 各地区均有的服务的达标率平均 / overall = mean share of passing units "
                  "over the services every region was scored on ("
                  + ", ".join(counties.attrs.get("overall_services", services)) + ");"
                  "每项服务按达标率排名,并列时比较居民覆盖率。", "",
                  f"| 排名 rank | 地区 region | 综合 overall | {head} |",
                  "| --- | --- | --- | " + " | ".join("---" for _ in services) + " |"]
        for rid, row in counties.iterrows():
            cells = []
            for s in services:
                met = row.get(f"{s}_met")
                mark = "" if met is None or pd.isna(met) else (" ✅" if met else " ❌")
                rank = row.get(f"{s}_rank")
                cells.append(f"{_pct(row.get(f'{s}_share_passing'))} (#{rank}){mark}"
                             if not pd.isna(rank) else "—")
            lines.append(f"| {row['overall_rank'] if not pd.isna(row['overall_rank']) else '—'}"
                         f" | {_cell(row['region_name'] or rid)} ({_cell(row['region_code'])}) "
                         f"| {_pct(row['overall_share'])} | " + " | ".join(cells) + " |")
        lines += ["", "✅/❌ = 该县自身规划目标是否达到 / the county's own plan target met or not.",
                  ""]
    lines += ["## 运行 / Runs", "", "| 地区 region | 状态 status | 用时 s | 峰值内存 MB | worker |",
              "| --- | --- | --- | --- | --- |"]
    for r in record["regions"]:
        lines.append(f"| {_cell(r['region_id'])} | {_STATUS_ZH[r['status']]} | "
                     f"{r['seconds']:.1f} | {r['peak_rss_mb'] or '—'} | "
                     f"{_cell(r['worker'] or '—')} |")
    lines += ["", "各地区完整输出见 `regions/<地区>/`(与 `qyx audit` 相同)。 / Per-region outputs "
              "in `regions/<id>/`, exactly as `qyx audit` writes them.", ""]
    return "\n".join(lines)


def overview_map(outcomes: Sequence[RegionOutcome], counties: pd.DataFrame, *,
                 year: int) -> Any:
    """Return an offline folium map of the counties coloured by overall share (or ``None``)."""
    import folium
    import geopandas as gpd
    import shapely

    from qyx_geo.maps._offline import escape_text
    from qyx_geo.maps._parts import (
        NOT_JUDGED_COLOUR,
        SHARE_CLASSES,
        add_basemap,
        add_page_furniture,
        display_frame,
        share_colour,
    )

    drawn = [o for o in outcomes if o.outline_wkb is not None and o.region_id in counties.index]
    if not drawn:
        return None
    rows = counties.loc[[o.region_id for o in drawn]]
    geoms = [shapely.from_wkb(o.outline_wkb) for o in drawn]
    services = [c[: -len("_rank")] for c in counties.columns
                if c.endswith("_rank") and c != "overall_rank"]
    data = {"名称": [escape_text(n) for n in rows["region_name"]],
            "代码": [escape_text(c) for c in rows["region_code"]],
            "综合排名": [str(r) if not pd.isna(r) else "—" for r in rows["overall_rank"]],
            "综合达标率": [_pct(v) for v in rows["overall_share"]]}
    for s in services:
        data[get_service(s).label_zh] = [
            f"{_pct(v)} (#{r})" if not pd.isna(r) else "—"
            for v, r in zip(rows[f"{s}_share_passing"], rows[f"{s}_rank"], strict=True)]
    data["_fill"] = [share_colour(v, True) for v in rows["overall_share"]]
    frame = gpd.GeoDataFrame(data, geometry=geoms, crs="EPSG:4326")
    place = SimpleNamespace(outline=gpd.GeoDataFrame(geometry=[shapely.union_all(geoms)],
                                                     crs="EPSG:4326"),
                            townships=gpd.GeoDataFrame({"name": list(rows["region_name"])},
                                                       geometry=geoms, crs="EPSG:4326"))
    m = folium.Map(tiles=None, control_scale=True, zoom_snap=0.25, zoom_delta=0.5)
    tile_layers = add_basemap(m, place, roads=None, tiles="none", township=None)
    group = folium.FeatureGroup(name="县域综合达标率 Overall share by county", show=True)
    fields = [c for c in data if c != "_fill"]
    folium.GeoJson(display_frame(frame, tolerance_m=50.0), style_function=lambda f: {
        "fillColor": f["properties"]["_fill"], "fillOpacity": 0.7, "color": "#333",
        "weight": 1.0}, highlight_function=lambda f: {"weight": 3, "color": "#000"},
        tooltip=folium.GeoJsonTooltip(fields=fields, sticky=True)).add_to(group)
    group.add_to(m)
    legend: list[tuple[str, str, str]] = [("head", "", "综合达标率 Overall share passing")]
    lower = 0.0
    for upper, colour in SHARE_CLASSES:
        legend.append(("fill", colour, f"{lower:.0%}–{upper:.0%}"))
        lower = upper
    legend.append(("fill", NOT_JUDGED_COLOUR, "无考核 nothing judged"))
    synthetic = _notices(drawn)
    failed = sum(o.status == "failed" for o in outcomes)
    subtitle = escape_text(f"{len(drawn)} 个县(市、区)/ counties" +
                           (f";{failed} 个失败未绘制 failed, not drawn" if failed else ""))
    add_page_furniture(m, title=f"15分钟公共服务圈 县域总览 · {year}年", subtitle=subtitle,
                       tile_layers=tile_layers,
                       synthetic=[f"县域结果 county results: {'、'.join(synthetic)}"]
                       if synthetic else [],
                       legend=legend, bounds=frame.total_bounds, extent=frame.total_bounds)
    return m


def _write_xlsx(path: Path, counties: pd.DataFrame) -> None:
    zh = {"region_id": "地区", "region_code": "代码", "region_name": "名称", "status": "状态",
          "units": "村(社区)数", "overall_share": "综合达标率", "overall_rank": "综合排名"}
    fields = {"units_judged": "考核数", "units_passing": "达标数", "share_passing": "达标率",
              "residents_within_share": "居民覆盖率", "target": "规划目标", "met": "达到目标",
              "shortfall_units": "尚缺", "rank": "排名"}
    names = {}
    for col in counties.reset_index().columns:
        sid, _, field = col.partition("_")
        names[col] = zh.get(col) or (f"{get_service(sid).label_zh}·{fields[field]}"
                                     if field in fields else col)
    view = safe_table(counties.reset_index().rename(columns=names))
    view.to_excel(path, sheet_name="县域排名", index=False, engine="openpyxl")


def write_merged(outcomes: Sequence[RegionOutcome], out: Path, *,
                 options: BatchOptions) -> tuple[pd.DataFrame, list[Path]]:
    """Write the merged files into ``out`` as one output set; return (ranking, files written)."""
    from qyx_geo.maps import save_map

    counties = county_ranking(outcomes)
    units = merged_table(outcomes, "units")
    towns = merged_table(outcomes, "townships")
    # one output set: committed together, and a later run removes its own stale files
    # (overview.html when no county could be drawn) but never the regions' sets or user files
    with output_set(out, "batch") as staged:
        write_csv(units, staged.path("all_units.csv"))  # names: no formulas (_tables)
        write_csv(towns, staged.path("all_townships.csv"))
        write_csv(counties, staged.path("counties.csv"))
        _write_xlsx(staged.path("counties.xlsx"), counties)
        staged.path("batch.json").write_text(json.dumps(_record(outcomes, options),
                                                        ensure_ascii=False, indent=2),
                                             encoding="utf-8")
        staged.path("summary.md").write_text(summary_markdown(outcomes, counties, options),
                                             encoding="utf-8")
        m = overview_map(outcomes, counties, year=options.year)
        if m is not None:
            save_map(m, staged.path("overview.html"))
    return counties, list(staged.written)
