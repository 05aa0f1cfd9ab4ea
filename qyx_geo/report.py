"""Audit outputs: tables (CSV/XLSX), summaries (JSON/Markdown) and the run record.

:func:`write_report` writes, into one folder,

``coverage_villages.csv`` / ``.xlsx``
    One row per village/community: code, name, township, kind, residents and, per service, the
    residents of the demand group, share within the threshold, median and nearest minutes,
    nearest facility, judged and passed. CSV: UTF-8 with BOM (Excel opens it), English column
    names for scripts; XLSX: Chinese headers and a 字段说明 (columns) sheet.
``townships.csv`` / ``.xlsx``
    Per township and service: units judged/passing, share passing, rank (季晾晒), target met,
    shortfall; the XLSX adds one ranking sheet per service.
``summary.json`` / ``summary.md``
    Per service: the county figure, the plan's target for the year with its clause, met or not,
    shortfall; nursery capacity (托位 per 1,000 residents); a visible synthetic-data notice.
``run.json``
    Parameters and settings, data sources with their vintage and real/synthetic status, package
    and library versions, timings.

The files are one output set (:mod:`qyx_geo._outputs`): all are rendered into a staging folder
first and committed together only when every one succeeded — a failed or killed run leaves
neither half-written nor mixed outputs behind (maps included, via ``maps_writer``), and files of
an earlier audit that this run does not write again are removed.
Text cells of every table are guarded against formula injection (:mod:`qyx_geo._tables`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import logging
import math
import os
import platform
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qyx_geo import __version__
from qyx_geo._fork import Pending
from qyx_geo._outputs import output_set
from qyx_geo._report_checks import (
    check_summary,
    checks_markdown,
    checks_table,
    judged_against_markdown,
    standard_tables,
    standards_markdown,
    standards_summary,
)
from qyx_geo._tables import safe_table, write_csv
from qyx_geo.audit import AuditResult, ServiceAudit
from qyx_geo.plan import Plan, Target

__all__ = [
    "REPORT_FILES",
    "coverage_table",
    "run_record",
    "summary_dict",
    "summary_markdown",
    "synthetic_notice",
    "township_summary_table",
    "write_report",
]

log = logging.getLogger(__name__)

#: Files :func:`write_report` writes (besides ``maps/``).
REPORT_FILES = ("coverage_villages.csv", "coverage_villages.xlsx", "townships.csv",
                "townships.xlsx", "targets_townships.csv", "summary.json", "summary.md",
                "run.json")

_BASE_ZH = {"code": "村(社区)代码", "name": "村(社区)名称", "township_code": "镇(街道)代码",
            "township_name": "镇(街道)", "kind": "类型", "population": "常住人口"}
_SERVICE_ZH = {
    "population": "服务人口", "share_within": "阈值内居民占比",
    "median_minutes": "中位出行时间(分钟)",
    "nearest_minutes": "最近设施时间(分钟)", "nearest_facility": "最近设施编号",
    "judged": "纳入考核", "passes": "达标",
    "units_judged": "考核村(社区)数", "units_passing": "达标村(社区)数",
    "share_passing": "达标率", "rank": "排名", "met": "达到规划目标",
    "shortfall_units": "距目标尚缺(个)",
}
_EN_DOC = {
    "population": "residents of the service's demand group", "share_within":
    "population-weighted share of those residents within the threshold (0-1)",
    "median_minutes": "population-weighted median travel time, minutes",
    "nearest_minutes": "minutes from the unit's closest resident cluster to a facility",
    "nearest_facility": "id of that facility", "judged":
    "the service's target applies to this unit (kind; has residents of the group)",
    "passes": "share_within >= min_share", "units_judged": "units judged",
    "units_passing": "units passing", "share_passing": "units passing / units judged",
    "rank": "rank among townships (1 = best; 季晾晒)", "met": "township meets the plan's target",
    "shortfall_units": "more passing units needed to meet the target",
}


def _fmt_pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{100 * value:.1f}%"


def _target_dict(target: Target | None) -> dict[str, Any] | None:
    if target is None:
        return None
    return target.to_dict()


def _plan_dict(plan: Plan | None) -> dict[str, Any] | None:
    return None if plan is None else plan.summary()


def _plan_line(plan: Plan | None) -> str:
    if plan is None:
        return "无(只评分与排名,不判定是否达标)/ none: units scored and ranked, no verdicts"
    return f"{plan.title}(发布 {plan.published})" if plan.published else plan.title


def _bool_zh(passes: bool, judged: bool) -> str:
    return ("达标" if passes else "未达标") if judged else "不考核"


def coverage_table(result: AuditResult) -> pd.DataFrame:
    """One row per village/community with every service's figures (English column names).

    Returns
    -------
    pandas.DataFrame
        Index ``code``; ``name``, ``township_code``, ``township_name``, ``kind``, ``population``
        (all residents), then ``<service>_<field>`` for each field of :data:`_SERVICE_ZH` that
        applies to units.
    """
    audits = list(result.services.values())
    base = audits[0].units
    out = base[["name", "township_code", "township_name", "kind"]].copy()
    pop = audits[0].points.groupby("unit_code")["pop"].sum() if "pop" in audits[0].points \
        else pd.Series(dtype=float)
    out["population"] = pop.reindex(out.index).fillna(0.0).to_numpy()
    for audit in audits:
        units = audit.units.reindex(out.index)
        sid = audit.service.id
        for col in ("population", "share_within", "median_minutes", "nearest_minutes",
                    "nearest_facility", "judged", "passes"):
            out[f"{sid}_{col}"] = units[col].to_numpy()
        # report precision: shares to 0.01 %, minutes to 0.01 min (engine float noise hidden)
        out[f"{sid}_share_within"] = out[f"{sid}_share_within"].astype(float).round(4)
        for col in ("median_minutes", "nearest_minutes"):
            out[f"{sid}_{col}"] = out[f"{sid}_{col}"].astype(float).round(2)
    out.index.name = "code"
    return pd.DataFrame(out)


def township_summary_table(result: AuditResult) -> pd.DataFrame:
    """Per township, per service: units judged/passing, share passing, rank, met, shortfall."""
    audits = list(result.services.values())
    out = audits[0].townships[["name"]].rename(columns={"name": "township_name"})
    out.index.name = "township_code"
    for audit in audits:
        t = audit.townships.reindex(out.index)
        for col in ("units_judged", "units_passing", "share_passing", "rank", "met",
                    "shortfall_units"):
            out[f"{audit.service.id}_{col}"] = t[col].to_numpy()
        out[f"{audit.service.id}_share_passing"] = out[
            f"{audit.service.id}_share_passing"].astype(float).round(4)
    out.index.name = "township_code"
    return out


def _zh_columns(frame: pd.DataFrame, result: AuditResult) -> dict[str, str]:
    names: dict[str, str] = {}
    for col in frame.columns:
        if col in _BASE_ZH:
            names[col] = _BASE_ZH[col]
            continue
        sid, _, field = col.partition("_")
        if sid in result.services:
            names[col] = f"{result.services[sid].service.label_zh}·{_SERVICE_ZH[field]}"
    return names


def _column_sheet(frame: pd.DataFrame, zh: Mapping[str, str]) -> pd.DataFrame:
    rows = []
    for col in [frame.index.name, *frame.columns]:
        field = col.partition("_")[2] if col not in _BASE_ZH else col
        rows.append({"表头": zh.get(col, _BASE_ZH.get(col, col)), "CSV 列名 column": col,
                     "说明 meaning": _EN_DOC.get(field, "")})
    return pd.DataFrame(rows)


def _excel_frame(frame: pd.DataFrame, result: AuditResult) -> pd.DataFrame:
    """Chinese headers; pass/fail as text; shares as fractions (formatted as % in the sheet)."""
    view = frame.copy()
    for sid in result.services:
        if f"{sid}_passes" in view:
            view[f"{sid}_passes"] = [_bool_zh(bool(p), bool(j)) for p, j in
                                     zip(view[f"{sid}_passes"], view[f"{sid}_judged"],
                                         strict=True)]
        if f"{sid}_judged" in view:
            view[f"{sid}_judged"] = np.where(view[f"{sid}_judged"].astype(bool), "是", "否")
        if f"{sid}_met" in view:
            view[f"{sid}_met"] = [("—" if pd.isna(m) else ("是" if m else "否"))
                                  for m in view[f"{sid}_met"]]
    zh = _zh_columns(view, result)
    index_name = str(view.index.name)
    return view.reset_index().rename(columns={**zh, index_name: _BASE_ZH.get(index_name,
                                                                             index_name)})


def _xlsx_value(value: Any) -> Any:
    """Return a cell as ``DataFrame.to_excel`` writes it: missing as ``""``, numpy as Python."""
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return ""
        return float(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    return str(value)


def _write_xlsx(path: Path, sheets: Mapping[str, pd.DataFrame]) -> None:
    """Write each frame as a sheet: header row, widths by header, panes frozen at B2, % columns.

    openpyxl's write-only mode streams the rows instead of building a cell object per value
    and then saving the workbook (``DataFrame.to_excel``): the same cells, ~30 % less CPU.
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    for name, raw in sheets.items():
        frame = safe_table(raw)  # text cells must not run as formulas
        ws = book.create_sheet(name[:31])
        ws.freeze_panes = "B2"
        percent = []
        for i, col in enumerate(frame.columns, start=1):
            ws.column_dimensions[get_column_letter(i)].width = min(40, max(10, 2 * len(str(col))
                                                                           + 2))
            if "占比" in str(col) or "达标率" in str(col):
                percent.append(i - 1)
        ws.append([_xlsx_value(col) for col in frame.columns])
        columns = [frame.iloc[:, i].tolist() for i in range(frame.shape[1])]
        for values in zip(*columns, strict=True):
            row: list[Any] = [_xlsx_value(v) for v in values]
            for i in percent:
                cell = WriteOnlyCell(ws, value=row[i])
                cell.number_format = "0.0%"
                row[i] = cell
            ws.append(row)
    book.save(path)


_PART_ZH = {"seats": "镇(街道)驻地位置", "areas": "镇村范围", "demand": "居民点与人口分布",
            "network": "路网", "outline": "县界", "codes": "区划代码"}


def _part_zh(key: str, result: AuditResult) -> str:
    if key.startswith("facilities."):
        sid = key.partition(".")[2]
        label = result.services[sid].service.label_zh if sid in result.services else sid
        return f"{label}设施"
    return _PART_ZH.get(key, key)


def _network_status(result: AuditResult) -> str | None:
    """``real``/``synthetic`` of the network the audit ran on, ``None`` when it is not known."""
    info = getattr(result.net, "info", None) or {}
    if "synthetic" not in info:
        return None
    return "synthetic" if info["synthetic"] else "real"


def inputs_used(result: AuditResult) -> dict[str, dict[str, Any]]:
    """Return every input the audit actually used, each marked ``real`` or ``synthetic``.

    ``network``: the file the engine arrays came from (path, SHA-256, newest OSM timestamp,
    CRS, ways cut at the extract's edge); ``units``, ``demand`` and one entry per audited
    facility layer (rows by source: a register or ``from-osm`` layer replaces a synthetic one).
    """
    ds = result.dataset
    prov = getattr(ds, "provenance", None) or {}
    info = dict(getattr(result.net, "info", None) or {})
    net = result.net
    out: dict[str, dict[str, Any]] = {}
    if net is not None:
        status = _network_status(result) or str(prov.get("network", {}).get("status", "unknown"))
        out["network"] = {
            "status": status, "path": info.get("qyx_source") or getattr(ds, "network_path", None),
            "sha256": info.get("source_sha256"), "osm_timestamp": info.get("osm_timestamp") or None,
            "crs": net.crs, "nodes": net.n_nodes, "edges": net.n_edges,
            "ways_cut": info.get("ways_cut"), "ways_dropped": info.get("ways_dropped")}
    for key in ("codes", "areas", "outline"):
        if key in prov:
            out["units" if key == "areas" else key] = {
                "status": str(prov[key].get("status")), "detail": prov[key].get("detail")}
    demand = ds.demand
    by_source = (demand["source"].astype(str).value_counts().to_dict()
                 if "source" in demand.columns else {})
    out["demand"] = {"status": _rows_status(by_source, prov.get("demand")), "points": len(demand),
                     "residents": int(demand["pop"].sum()) if "pop" in demand else None,
                     "by_source": by_source}
    for sid, audit in result.services.items():
        layer = audit.facilities
        if layer is None:
            continue
        counts = (layer["source"].astype(str).value_counts().to_dict()
                  if "source" in layer.columns else {})
        out[f"facilities.{sid}"] = {"status": _rows_status(counts, None), "rows": len(layer),
                                    "by_source": counts}
    return out


def _rows_status(by_source: Mapping[str, int], prov: Mapping[str, Any] | None) -> str:
    if not by_source:
        return str((prov or {}).get("status", "unknown"))
    synth = by_source.get("synthetic", 0)
    if synth == 0:
        return "real"
    return "synthetic" if synth == sum(by_source.values()) else "mixed"


def synthetic_notice(result: AuditResult) -> str | None:
    """Chinese-first notice naming the synthetic parts of the data, or ``None`` if all real.

    Facility layers are judged from the layers the audit used (a user register replaces a
    synthetic layer), the network from the file the audit ran on (a real ``--network``
    replaces the embedded synthetic one), the other parts from the dataset's provenance.
    """
    audited = {f"facilities.{sid}" for sid in result.services}
    prov = getattr(result.dataset, "provenance", None) or {}
    network = _network_status(result)
    parts = [key for key, info in prov.items()
             if key not in audited and str(info.get("status")) in ("synthetic", "mixed")
             and not (key == "network" and network is not None)]
    if network == "synthetic":
        parts.append("network")
    for audit in result.services.values():
        layer = audit.facilities
        if layer is not None and "source" in layer.columns \
                and (layer["source"].astype(str) == "synthetic").any():
            parts.append(f"facilities.{audit.service.id}")
    demand = result.dataset.demand
    if "demand" not in prov and "source" in demand.columns \
            and (demand["source"].astype(str) == "synthetic").any():
        parts.append("demand")
    if not parts:
        return None
    name_zh, name_en = region_names(result.dataset)
    return ("⚠ 合成数据提示:本次结果部分基于生成的模拟数据(" + "、".join(
        _part_zh(p, result) for p in parts) + f"),仅用于演示方法与工具,不代表{name_zh}的实际设施"
            "布局或覆盖水平。 / Synthetic data: parts of this audit (" + ", ".join(parts)
            + ") are generated, not observed; the figures demonstrate the method and do not "
            f"describe {name_en}'s actual provision.")


def region_names(dataset: Any) -> tuple[str, str]:
    """Return the county's (Chinese, English) names from the dataset's region pack.

    Falls back to the outline's ``name`` and a neutral English word when the dataset carries no
    pack (a hand-built dataset in a notebook or test).
    """
    region = getattr(dataset, "region", None)
    if region is not None:
        return region.name_zh, region.name_en
    outline = getattr(dataset, "outline", None)
    name = ""
    if isinstance(outline, pd.DataFrame) and "name" in outline.columns and len(outline):
        name = str(outline["name"].iloc[0])
    return name or "本县(市、区)", "the county"


def _clean(value: Any) -> Any:
    """Make numpy/pandas scalars and NaN JSON-safe (NaN/inf -> None)."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Target):
        return _target_dict(value)
    if value is pd.NA or value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _service_summary(audit: ServiceAudit) -> dict[str, Any]:
    c = audit.county
    svc = audit.service
    ranked = audit.townships.dropna(subset=["rank"]).sort_values(["rank", "name"])
    out: dict[str, Any] = {
        "label_zh": svc.label_zh, "label_en": svc.label_en, "domain_zh": svc.domain_zh,
        "demand_column": svc.demand_column, "threshold_minutes": audit.threshold_minutes,
        "mode": audit.mode, "unit_kinds": list(svc.unit_kinds) if svc.unit_kinds else None,
        "units_judged": c["units_judged"], "units_passing": c["units_passing"],
        "share_passing": c["share_passing"], "residents_within_share":
        c.get("residents_within_share"), "population": c.get("population"),
        "target": _target_dict(c.get("target")), "target_note": c.get("target_note"),
        "met": c.get("met"), "shortfall_units": c.get("shortfall_units"),
        "points_too_far": c.get("points_too_far"),
        "facilities_too_far": list(c.get("facilities_too_far") or []),
        "uncovered_residents": float(audit.gaps["residents"].sum()),
        "township_ranking": [
            {"code": str(code), "name": row["name"], "rank": int(row["rank"]),
             "share_passing": row["share_passing"], "units_passing": int(row["units_passing"]),
             "units_judged": int(row["units_judged"])}
            for code, row in ranked.iterrows()],
    }
    if "capacity" in c:
        out["capacity"] = {**c["capacity"], "unit": "托位/千人 places per 1,000 residents",
                           "target": _target_dict(c["capacity"].get("target"))}
    if audit.checks:
        out["checks"] = {k: check_summary(ch) for k, ch in audit.checks.items()}
    return out


def summary_dict(result: AuditResult) -> dict[str, Any]:
    """Return the JSON summary: per service the county figure vs the plan's target and clause."""
    names = region_names(result.dataset)
    return _clean({
        "title": f"{names[0]}“15分钟公共服务圈”体检 {result.year}年 / {names[1]} 15-minute "
                 f"public service circle audit, {result.year}",
        "year": result.year, "plan": _plan_dict(result.plan),
        "synthetic_data_notice": synthetic_notice(result),
        "inputs": inputs_used(result),
        "scope": {"township_codes": list(result.township_codes) if result.township_codes
                  else None, "units": len(next(iter(result.services.values())).units)},
        "min_share": result.settings.min_share,
        "services": {sid: _service_summary(a) for sid, a in result.services.items()},
        "standards": standards_summary(result),
    })


_STATUS_ZH = {"real": "真实 real", "synthetic": "合成 synthetic", "mixed": "部分合成 mixed"}


def _input_line(key: str, info: Mapping[str, Any]) -> str:
    status = _STATUS_ZH.get(str(info.get("status")), str(info.get("status")))
    if key == "network":
        extra = [Path(str(info["path"])).name if info.get("path") else "",
                 f"sha256 {str(info['sha256'])[:12]}…" if info.get("sha256") else "",
                 f"OSM {info['osm_timestamp']}" if info.get("osm_timestamp") else "",
                 str(info.get("crs") or "")]
        return f"路网 network ({status}; {', '.join(e for e in extra if e)})"
    return f"{key} ({status})"


def _met_zh(met: bool | None) -> str:
    if met is None:
        return "—(本年度无目标 no target)"
    return "✅ 达到 met" if met else "❌ 未达到 not met"


def summary_markdown(result: AuditResult, *, top: int = 30) -> str:
    """Markdown summary for meetings (Chinese first), from :func:`summary_dict`."""
    s = summary_dict(result)
    lines = [f"# {s['title']}", ""]
    if s["synthetic_data_notice"]:
        lines += [f"> **{s['synthetic_data_notice']}**", ""]
    lines += ["输入数据 / inputs used: " + "; ".join(
        _input_line(k, v) for k, v in s["inputs"].items()) + "。", ""]
    lines += [f"规划依据 / plan: {_plan_line(result.plan)}。村(社区)达标条件:服务人群中"
              f"阈值时间内可达的比例 ≥ {100 * result.settings.min_share:.0f}% / a unit passes when "
              f"≥ {100 * result.settings.min_share:.0f}% of its residents (of the demand group) "
              "are within the threshold.", "",
              "## 全市汇总 / County", "",
              "| 服务 service | 阈值 | 达标村(社区) passing | 达标率 share | 规划目标 target | "
              "是否达到 met | 尚缺 shortfall |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for sv in s["services"].values():
        t = sv["target"]
        target = f"≥{_fmt_pct(t['value'])}({t['text']})" if t else "本年度无目标"
        lines.append(f"| {sv['label_zh']} {sv['label_en']} | {sv['threshold_minutes']:g} 分钟 | "
                     f"{sv['units_passing']}/{sv['units_judged']} | {_fmt_pct(sv['share_passing'])}"
                     f" | {target} | {_met_zh(sv['met'])} | {sv['shortfall_units']} 个 |")
    lines.append("")
    for sv in s["services"].values():
        lines += [f"## {sv['label_zh']} / {sv['label_en']}", ""]
        t = sv["target"]
        lines.append(f"- 全市 {sv['units_passing']}/{sv['units_judged']} 个村(社区)达标,达标率 "
                     f"{_fmt_pct(sv['share_passing'])};服务人群 {sv['threshold_minutes']:g} 分钟内"
                     f"可达 {_fmt_pct(sv['residents_within_share'])};未覆盖服务人群 "
                     f"{sv['uncovered_residents']:,.0f} 人。")
        if sv["unit_kinds"]:
            lines.append(f"- 仅考核 / judged only: {'、'.join(sv['unit_kinds'])}")
        if t:
            lines.append(f"- 规划目标 / target {s['year']}: ≥{_fmt_pct(t['value'])}({t['text']}),"
                         f"{_met_zh(sv['met'])};尚缺 {sv['shortfall_units']} 个村(社区)。")
            for clause in t["all_clauses"]:
                lines.append(f"  - {clause['location']}「{clause['text']}」")
            lines.append(f"  - 解读 / reading: {t['reading']}")
        else:
            lines.append(f"- 规划目标 / target: 本年度无目标 — {sv['target_note']}")
        if sv["points_too_far"]:
            lines.append(f"- ⚠ {sv['points_too_far']} 个居民点距路网超过吸附上限,按未覆盖计 / "
                         "demand points too far from the network count as uncovered.")
        if sv["facilities_too_far"]:
            ids = "、".join(sv["facilities_too_far"][:20])
            more = " …" if len(sv["facilities_too_far"]) > 20 else ""
            n_far = len(sv["facilities_too_far"])
            lines.append(f"- ⚠ {n_far} 处设施距路网超过吸附上限,未参与计算 / facilities too far "
                         f"from the network were not used: {ids}{more}")
        cap = sv.get("capacity")
        if cap:
            ct = cap["target"]
            figure = f"{cap['places_per_1000']:.2f}" if cap["places_per_1000"] is not None else "—"
            total = cap.get("places_per_1000_total")
            text = (f"- 托位 / places: 可达托位 {figure} 个/千人(2SFCA,"
                    f"{sv['threshold_minutes']:g} 分钟)")
            if total is not None:
                text += f";总量 {total:.2f} 个/千人"
            text += (f";规划 ≥{ct['text']}({ct['location']}),{_met_zh(cap['met'])}" if ct
                     else f";本年度无目标 — {cap.get('target_note')}")
            lines.append(text)
        ranking = sv["township_ranking"]
        if ranking:
            lines += ["", "| 排名 rank | 镇(街道) | 达标 passing | 达标率 share |",
                      "| --- | --- | --- | --- |"]
            for r in ranking[:top]:
                lines.append(f"| {r['rank']} | {r['name']} | {r['units_passing']}/"
                             f"{r['units_judged']} | {_fmt_pct(r['share_passing'])} |")
        lines.append("")
    lines += checks_markdown(result, top=top)
    lines += standards_markdown(result, top=top)
    lines += judged_against_markdown(result)
    lines.append("排名依据规划“季晾晒”机制(三、(一)):按达标村(社区)比例排序,同比例按服务人群"
                 "覆盖率。 / Ranking follows the plan's quarterly ranking (季晾晒).")
    return "\n".join(lines) + "\n"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("numpy", "pandas", "scipy", "shapely", "geopandas", "networkx", "osmnx",
                 "pyproj", "folium", "openpyxl"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out[dist] = importlib.metadata.version(dist)
    return out


def run_record(result: AuditResult, *, parameters: Mapping[str, Any] | None = None,
               timings_s: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Return the run record: parameters, settings, data sources and vintages, versions, timings."""
    ds = result.dataset
    layers = {}
    for sid, audit in result.services.items():
        layer = audit.facilities
        if layer is None:
            continue
        src = layer["source"].astype(str).value_counts().to_dict() if "source" in layer else {}
        layers[sid] = {"rows": len(layer), "by_source": src}
    return _clean({
        "package": {"name": "qyx_geo", "version": __version__},
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "parameters": {"year": result.year, "services": list(result.services),
                       "townships": list(result.township_codes) if result.township_codes
                       else None, "thresholds_minutes": {
                           sid: a.threshold_minutes for sid, a in result.services.items()},
                       **(parameters or {})},
        "settings": result.settings.to_dict(),
        "warnings": list(getattr(result, "warnings", ())),
        "data": {
            "data_dir": getattr(ds, "data_dir", None),
            "provenance": {k: dict(v) for k, v in (getattr(ds, "provenance", None) or {}).items()},
            "facility_layers_used": layers,
            "network": inputs_used(result).get("network"),
            "inputs": inputs_used(result),
            "region": ds.region.to_dict() if getattr(ds, "region", None) is not None else None,
            "targets": _plan_dict(result.plan),
            "synthetic_data_notice": synthetic_notice(result),
        },
        "versions": _versions(),
        "timings_s": {**result.timings_s, **(timings_s or {})},
    })


def write_report(
    result: AuditResult,
    out_dir: str | os.PathLike[str],
    *,
    parameters: Mapping[str, Any] | None = None,
    timings_s: Mapping[str, float] | None = None,
    maps_writer: Callable[[Path], Iterable[Path] | Pending[Any]] | None = None,
) -> list[Path]:
    """Write every audit output into ``out_dir`` as one all-or-nothing set.

    Parameters
    ----------
    result
        The audit (:func:`qyx_geo.audit.run_audit`).
    out_dir
        Output folder (created if needed). The run owns the files it writes there: an earlier
        audit's files are replaced, and those this run does not write again (maps after
        ``--no-maps``, fewer services) are removed; other files are never touched
        (:mod:`qyx_geo._outputs`).
    parameters
        Extra run parameters for ``run.json`` (e.g. the command line).
    timings_s
        Extra timings for ``run.json`` (e.g. data and network loading).
    maps_writer
        Called with a staging folder; writes the HTML maps there (e.g.
        ``lambda d: qyx_geo.maps.write_audit_maps(result, d)``), or returns a
        :class:`qyx_geo._fork.Pending` step that is drawing them in a second process while the
        tables are written (waited for before ``run.json``, so its timings are in it). They are
        moved to ``out_dir/maps`` (sub-folders included, e.g. ``surfaces/``) with the other
        files once everything succeeded.

    Raises
    ------
    OutputError
        The set could not be committed (a file held open, disk full); nothing changed.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    villages = coverage_table(result)
    towns = township_summary_table(result)
    zh_v = _zh_columns(villages, result)
    with output_set(out_dir, "audit") as staged, contextlib.ExitStack() as stack:
        pending = maps_writer(staged.subfolder("maps")) if maps_writer is not None else None
        if isinstance(pending, Pending):
            stack.enter_context(pending)  # a failure below stops the child too
        write_csv(villages, staged.path("coverage_villages.csv"))
        _write_xlsx(staged.path("coverage_villages.xlsx"), {
            "村(社区)覆盖": _excel_frame(villages, result),
            "字段说明": _column_sheet(villages, zh_v)})
        write_csv(towns, staged.path("townships.csv"))
        sheets = {"镇(街道)汇总": _excel_frame(towns, result)}
        for sid, audit in result.services.items():
            ranked = audit.townships.sort_values(["rank", "name"], na_position="last")
            cols = ["name", "units_judged", "units_passing", "share_passing", "rank", "met",
                    "shortfall_units"]
            sheet = ranked[cols].rename(columns={c: f"{sid}_{c}" for c in cols[1:]})
            sheet.index.name = "township_code"
            sheets[f"{audit.service.label_zh}排名"] = _excel_frame(
                sheet.rename(columns={"name": "township_name"}), result)
        _write_xlsx(staged.path("townships.xlsx"), sheets)
        write_csv(checks_table(result), staged.path("targets_townships.csv"), index=False)
        for name, table in standard_tables(result).items():
            write_csv(table, staged.path(name))
        staged.path("summary.json").write_text(
            json.dumps(summary_dict(result), ensure_ascii=False, indent=2), encoding="utf-8")
        staged.path("summary.md").write_text(summary_markdown(result), encoding="utf-8")
        if isinstance(pending, Pending):
            pending.result()  # the maps' timings land in timings_s before run.json
        record = run_record(result, parameters=parameters, timings_s=timings_s)
        staged.path("run.json").write_text(json.dumps(record, ensure_ascii=False, indent=2),
                                           encoding="utf-8")
    written = staged.written
    out = Path(out_dir)
    log.info("wrote %d files to %s", len(written), out)
    return written
