"""Report parts for the plan's facility-based targets and the "judged against" statement.

Used by :mod:`qyx_geo.report`: one long table (``targets_townships.csv``) with a row per target and
township plus a county row, the JSON summary of each check, and the Markdown sections — including
the statement of which service is judged against which clause of which document.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from qyx_geo.audit import AuditResult
    from qyx_geo.checks import CheckResult

__all__ = ["check_summary", "checks_markdown", "checks_table", "judged_against_markdown",
           "standard_tables", "standards_markdown", "standards_summary"]

_KIND_ZH = {"coverage": "15分钟可达覆盖", "capacity": "可达托位(2SFCA)",
            "presence": "镇(街道)设置", "attribute_share": "设施属性占比",
            "per_1000": "每千人设施数(总量)"}
_SHORT_ZH = {"townships": "个镇(街道)", "facilities": "处设施", "places": "个托位/学位"}


def _fmt(value: float | None, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.2f}" if kind == "per_1000" else f"{100 * value:.1f}%"


def _target_text(check: CheckResult) -> str:
    t = check.target
    if t is None:
        return "本年度无目标 / no target"
    op = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}[t.op]
    return f"{op}{_fmt(t.value, check.kind)}({t.text},{t.location})"


def checks_table(result: AuditResult) -> pd.DataFrame:
    """Return one row per facility-based target and township, plus a ``county`` row each."""
    rows: list[dict[str, Any]] = []
    for sid, audit in result.services.items():
        for key, check in audit.checks.items():
            base = {"target_key": key, "kind": check.kind, "service": sid,
                    "target": None if check.target is None else check.target.value}
            towns = check.townships
            for code, row in towns.iterrows():
                rows.append({**base, "township_code": str(code), "township_name": row["name"],
                             "judged": bool(row["judged"]), "value": row["value"],
                             "met": None if pd.isna(row["met"]) else bool(row["met"]),
                             "rank": None if pd.isna(row["rank"]) else int(row["rank"])})
            c = check.county
            rows.append({**base, "township_code": "county", "township_name": "全市 county",
                         "judged": True, "value": c["value"], "met": c["met"], "rank": None,
                         "shortfall": c["shortfall"], "shortfall_unit": c["shortfall_unit"]})
    columns = ["target_key", "kind", "service", "township_code", "township_name", "judged",
               "value", "target", "met", "rank", "shortfall", "shortfall_unit"]
    frame = pd.DataFrame(rows, columns=columns)
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce").round(4)
    for column in ("rank", "shortfall"):  # integers with gaps, not floats
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    return frame


def check_summary(check: CheckResult) -> dict[str, Any]:
    """Return a JSON-ready summary of one check (county figure, verdict, ranking)."""
    towns = check.townships
    ranked = towns.dropna(subset=["rank"]).sort_values(["rank", "name"])
    county = {k: v for k, v in check.county.items() if k != "target"}
    return {"kind": check.kind, "target": None if check.target is None
            else check.target.to_dict(), "target_note": check.note, **county,
            "township_ranking": [{"code": str(code), "name": row["name"],
                                  "rank": int(row["rank"]), "value": row["value"],
                                  "met": None if pd.isna(row["met"]) else bool(row["met"])}
                                 for code, row in ranked.iterrows()]}


def _met_zh(met: bool | None) -> str:
    if met is None:
        return "—"
    return "✅ 达到 met" if met else "❌ 未达到 not met"


def checks_markdown(result: AuditResult, *, top: int = 30) -> list[str]:
    """Markdown section for the facility-based targets (empty when there are none)."""
    checks = [(a.service, c) for a in result.services.values() for c in a.checks.values()]
    if not checks:
        return []
    lines = ["## 其他规划目标 / Other plan targets (设置、属性、总量)", "",
             "| 目标 target | 服务 service | 口径 kind | 全市 county | 规划目标 | 是否达到 met |"
             " 尚缺 shortfall |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for svc, check in checks:
        c = check.county
        lines.append(f"| {check.key} | {svc.label_zh} | {_KIND_ZH[check.kind]} | "
                     f"{_fmt(c['value'], check.kind)} | {_target_text(check)} | "
                     f"{_met_zh(c['met'])} | {c['shortfall']} {_SHORT_ZH[c['shortfall_unit']]} |")
    lines.append("")
    for svc, check in checks:
        lines += [f"### {svc.label_zh}:{check.key}", ""]
        c = check.county
        if check.kind == "presence":
            lines.append(f"- 有设施的镇(街道) {c['townships_present']}/{c['townships_judged']};"
                         f"缺 / missing: {'、'.join(_names(check, c['missing'])) or '无'}")
        elif check.kind == "attribute_share":
            lines.append(f"- {c['with_attribute']}/{c['facilities']} 处设施 {c['attribute']} = 是"
                         + (f"(仅 {'、'.join(c['levels'])})" if c.get("levels") else ""))
        else:
            lines.append(f"- {c['places']:,.0f} 个 / {c['residents']:,.0f} 人 × {c['per']:g};"
                         f"{c['facilities_no_capacity']} 处设施未填容量(按 0 计)")
        if check.target is not None:
            for clause in check.target.all_clauses:
                lines.append(f"  - {clause.location}「{clause.text}」")
            lines.append(f"  - 解读 / reading: {check.target.reading}")
        else:
            lines.append(f"- {check.note}")
        ranked = check.townships.dropna(subset=["rank"]).sort_values(["rank", "name"])
        if not ranked.empty:
            lines += ["", "| 排名 rank | 镇(街道) | 数值 value | 达标 met |",
                      "| --- | --- | --- | --- |"]
            for _code, row in ranked.head(top).iterrows():
                met = None if pd.isna(row["met"]) else bool(row["met"])
                lines.append(f"| {int(row['rank'])} | {row['name']} | "
                             f"{_fmt(row['value'], check.kind)} | {_met_zh(met)} |")
        lines.append("")
    return lines


def _names(check: CheckResult, codes: list[str]) -> list[str]:
    names = check.townships["name"]
    return [str(names.get(c, c)) for c in codes]


def judged_against_markdown(result: AuditResult) -> list[str]:
    """State which service is judged against which clause of which document."""
    plan = result.plan
    lines = ["## 考核依据 / What each service is judged against", ""]
    if plan is None:
        lines += ["无规划文件:各服务只评分与排名,不判定是否达标。 / No plan: services are "
                  "scored and ranked, not judged.", ""]
    else:
        lines += [f"文件 / document: 《{plan.title}》" + (f"({plan.publisher},{plan.published})"
                                                          if plan.publisher else ""), "",
                  "| 服务 service | 目标 target | 口径 kind | 条款 clause |",
                  "| --- | --- | --- | --- |"]
        for sid, audit in result.services.items():
            # the coverage/capacity target the audit used, and every facility-based one
            specs = [s for s in plan.for_service(sid)
                     if s.kind not in ("coverage", "capacity") or plan.find(sid, s.kind) is s]
            if not specs:
                lines.append(f"| {audit.service.label_zh} | — | — | 规划未设目标 / the plan sets "
                             "none |")
            for spec in specs:
                where = ";".join(c.location for c in spec.clauses)
                lines.append(f"| {audit.service.label_zh} | {spec.key} | {_KIND_ZH[spec.kind]} "
                             f"| {where} |")
        lines.append("")
    for std in result.standards.values():
        lines += [f"文件 / document: {std.standard.code}《{std.standard.title}》", "",
                  "| 层级 tier | 适用 applies to | 服务 service | 距离/时间 | 出处 source |",
                  "| --- | --- | --- | --- | --- |"]
        for tier in std.standard.tiers:
            for item in tier.facilities:
                if item.service not in std.services:
                    continue
                reach = (f"{item.distance_m:g} m / {std.minutes(tier, item):.1f} 分钟"
                         if item.distance_m else "本镇(村)内设置 / presence")
                lines.append(f"| {tier.label_zh} | {'、'.join(tier.unit_kinds)} | "
                             f"{item.service} | {reach} | {item.source} |")
        lines.append("")
    return lines


def standard_tables(result: AuditResult) -> dict[str, pd.DataFrame]:
    """File name → table for every standard scored: units (per tier and service) and townships."""
    out: dict[str, pd.DataFrame] = {}
    for sid, std in result.standards.items():
        units = std.units.copy()
        units.index.name = "code"
        out[f"standard_{sid}_units.csv"] = units
        parts = []
        for tier_id, tier in std.tiers.items():
            t = tier["townships"].copy()
            t.insert(0, "tier", tier_id)
            t["share_passing"] = t["share_passing"].astype(float).round(4)
            t["services_met_share"] = t["services_met_share"].astype(float).round(4)
            parts.append(t)
        towns = pd.concat(parts)
        towns.index.name = "township_code"
        out[f"standard_{sid}_townships.csv"] = towns
    return out


def standards_markdown(result: AuditResult, *, top: int = 30) -> list[str]:
    """Markdown section per standard: each tier's county figure, services and ranking."""
    lines: list[str] = []
    for std in result.standards.values():
        s = std.standard
        lines += [f"## 标准 / Standard: {s.code}《{s.title}》", ""]
        lines.append(f"- 核实情况 / verification: {s.verification}")
        if std.missing:
            lines.append(f"- 未体检的服务(未计入)/ services not audited, left out: "
                         f"{'、'.join(std.missing)}")
        lines.append("")
        lines += ["| 层级 tier | 适用 | 全部达标 all services | 各服务达标率 per service |",
                  "| --- | --- | --- | --- |"]
        for tier in s.tiers:
            c = std.tiers[tier.id]["county"]
            per = ";".join(f"{k} {_fmt(v, 'share')}" for k, v in c["services"].items())
            lines.append(f"| {tier.label_zh} | {'、'.join(tier.unit_kinds)} | "
                         f"{c['units_passing']}/{c['units_judged']} "
                         f"({_fmt(c['share_passing'], 'share')}) | {per or '—'} |")
        lines.append("")
        for tier in s.tiers:
            towns = std.tiers[tier.id]["townships"]
            ranked = towns.dropna(subset=["rank"]).sort_values(["rank", "name"]).head(top)
            if ranked.empty:
                continue
            lines += [f"### {tier.label_zh}({tier.source})", "",
                      "| 排名 rank | 镇(街道) | 全部达标 | 达标率 |", "| --- | --- | --- | --- |"]
            for _code, row in ranked.iterrows():
                lines.append(f"| {int(row['rank'])} | {row['name']} | {row['units_passing']}/"
                             f"{row['units_judged']} | {_fmt(row['share_passing'], 'share')} |")
            lines.append("")
    return lines


def standards_summary(result: AuditResult) -> dict[str, Any]:
    """JSON summary per standard: tiers with county figures."""
    return {sid: {"code": std.standard.code, "title": std.standard.title,
                  "verification": std.standard.verification, "missing": list(std.missing),
                  "speed_kmh": std.speed_kmh,
                  "tiers": {tid: {**t["county"]} for tid, t in std.tiers.items()}}
            for sid, std in result.standards.items()}
