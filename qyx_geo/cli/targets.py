"""``qyx targets``: the plan's targets for a year — the 21 indicators and the spatial targets."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from qyx_geo.cli.region import add_region_option
from qyx_geo.plan import YearTargets, load_plan
from qyx_geo.targets import BASELINE_YEAR, PLAN_YEARS

__all__ = ["register"]

_OP_ZH = {">=": "≥", ">": ">", "<=": "≤", "<": "<"}


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``targets`` sub-command."""
    p = sub.add_parser(
        "targets",
        help="规划目标(21项指标与空间目标)/ the plan's targets for a year",
        description="列出区域数据包规划文件(默认内置数据包的《七优享》实施方案)某一年的指标目标"
                    "与空间目标(附条款原文)。 Lists a plan's indicators and its spatial targets "
                    "(with the clauses that set them) for one year: the region pack's plan, or "
                    "a plan file.",
    )
    p.add_argument("--year", type=int, default=None,
                   help=f"年份 / year, {BASELINE_YEAR} (基期 baseline) 或 {PLAN_YEARS[0]}–"
                        f"{PLAN_YEARS[-1]} (default: the plan's last year, {PLAN_YEARS[-1]})")
    p.add_argument("--plan", type=Path, default=None, metavar="FILE",
                   help="规划目标文件(qyx-plan/1 JSON)/ a plan file (default: the region "
                        "pack's plan; docs/targets.md)")
    add_region_option(p)
    p.add_argument("--json", action="store_true", help="以 JSON 输出 / print JSON")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    source = args.plan
    if source is None:
        from qyx_geo.region import plan_source, resolve_region

        region = resolve_region(args.region)
        found = plan_source(region)
        if found is None:
            if args.json:
                print(json.dumps({"plan": None, "region": region.code}, ensure_ascii=False))
            else:
                print(f"{region.name_zh} {region.name_en} ({region.code}): 数据包无规划文件,"
                      "体检只评分排名不判定达标 / the pack has no plan file: audits score and "
                      "rank without target verdicts. Add one under [files.plan] "
                      "(docs/regions.md).")
            return 0
        source = None if found == "default" else found
    plan = load_plan(source)
    yt = plan.for_year(plan.period[-1] if args.year is None else args.year)
    if args.json:
        print(json.dumps({"plan": plan.summary(), **_as_json(yt)}, ensure_ascii=False, indent=2))
        return 0
    print(f"《{plan.title}》{yt.year}年目标 / plan targets for {yt.year}")
    print()
    base = f"{plan.baseline_year}年基期 → " if plan.baseline_year else ""
    print(f"一、指标表({len(yt.indicators)}项指标)/ indicator table ({base}{yt.year}年)")
    domain = None
    for number, row in yt.indicators.iterrows():
        if row["domain"] != domain:
            domain = row["domain"]
            print(f"  【{domain}】")
        print(f"  {number:>2}. {row['label']}: {row['baseline']} → {row['text']}")
    print()
    print("二、空间目标 / spatial targets")
    for key, target in yt.spatial.items():
        st = yt.spatial_targets[key]
        services = ", ".join(st.services)
        if target is None:
            stated = [y for y, t in st.years.items() if t is not None]
            figure = f"本年度无目标 / no target (规划年份 / stated for: {stated})"
        else:
            shown = (f"{target.value:.0%}" if st.unit == "share" else f"{target.value:g}")
            shown += "" if st.kind == "coverage" else f" [{st.kind}]"
            figure = f"{_OP_ZH[target.op]}{shown} ({target.text})"
        print(f"  ● {st.measure_zh} [{key}; {services}]: {figure}")
        print(f"    {st.measure_en}")
        for clause in st.clauses:
            print(f"    {clause.cite()}")
    return 0


def _num(value: float) -> float | None:
    return None if math.isnan(value) else value


def _as_json(yt: YearTargets) -> dict[str, object]:
    indicators = [
        {"number": int(n), "domain": r["domain"], "name": r["name"], "unit": r["unit"],
         "label": r["label"], "direction": r["direction"], "baseline_2022": r["baseline"],
         "text": r["text"], "op": r["op"], "value": _num(float(r["value"]))}
        for n, r in yt.indicators.iterrows()
    ]
    spatial = []
    for key, target in yt.spatial.items():
        st = yt.spatial_targets[key]
        spatial.append({
            "key": key, "kind": st.kind, "services": list(st.services),
            "measure_zh": st.measure_zh, "measure_en": st.measure_en, "unit": st.unit,
            "target": None if target is None else target.to_dict(),
            "clauses": [{"location": c.location, "text": c.text} for c in st.clauses],
            "reading": st.reading,
        })
    return {"year": yt.year, "indicators": indicators, "spatial_targets": spatial}
