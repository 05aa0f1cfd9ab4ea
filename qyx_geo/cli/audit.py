"""``qyx audit``: audit every service for every village/community and write tables, summaries, maps.

Prints, per service, the county's share of passing villages/communities against the plan's
target for the year (met or not, shortfall) and the township ranking (季晾晒); writes the outputs
of :func:`qyx_geo.report.write_report` (and the maps of :mod:`qyx_geo.maps`) into ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qyx_geo._errors import SettingsError
from qyx_geo.cli.facilities import parse_sheet
from qyx_geo.cli.region import add_region_option
from qyx_geo.services import default_service_ids, get_service, service_ids
from qyx_geo.settings import MODES, Settings, check_setting
from qyx_geo.standards import load_standard
from qyx_geo.targets import BASELINE_YEAR, PLAN_YEARS

if TYPE_CHECKING:
    import geopandas as gpd

    from qyx_geo.audit import AuditResult, ServiceAudit
    from qyx_geo.dataset import Dataset

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``audit`` sub-command."""
    p = sub.add_parser(
        "audit",
        help="体检:各村(社区)15分钟服务覆盖与规划目标对照 / audit coverage against the plan",
        description="对每个村(社区)计算托育、老年助餐、医疗卫生、体育健身的步行可达覆盖,按镇(街道)"
                    "与全市对照《七优享》规划目标,输出表格、汇总与离线地图。 Audits every "
                    "village/community for every service against the plan's targets for a year "
                    "and writes tables (CSV/XLSX), summaries (JSON/Markdown), run.json and "
                    "offline HTML maps.",
        epilog="示例 / example: qyx audit --year 2027 --out outputs --services canteen,clinic "
               "--mode elderly_walk --fail-under 0.95",
    )
    add_audit_options(p)
    p.add_argument("--out", type=Path, default=Path("outputs"), metavar="DIR",
                   help="输出目录 / output folder (default: outputs)")
    p.add_argument("--townships", default=None, metavar="LIST",
                   help="只体检这些镇(街道),名称或9位代码,逗号分隔 / only these townships")
    p.add_argument("--facilities", action="append", default=[], metavar="SERVICE=FILE",
                   help="用本地台账替换设施图层(XLSX/CSV/GeoJSON/GPKG),可重复 / replace a "
                        "facility layer with a register; repeatable")
    p.add_argument("--facilities-crs", default="wgs84",
                   choices=("wgs84", "gcj02", "bd09", "cgcs2000", "epsg4549"),
                   help="台账坐标系 / coordinate system of the registers (default wgs84; Gaode = "
                        "gcj02, Baidu = bd09)")
    p.add_argument("--facilities-sheet", default=None, type=parse_sheet, metavar="NAME|INDEX",
                   help="台账 Excel 工作表 / worksheet of the XLSX registers (needed when several "
                        "sheets hold registers)")
    p.add_argument("--facilities-layer-name", default=None, metavar="NAME",
                   help="台账 GeoPackage 图层 / layer of the GPKG registers (needed when a "
                        "file has several layers)")
    p.add_argument("--fail-under", type=float, default=None, metavar="SHARE",
                   help="任一服务全市达标率低于此值时以退出码 1 结束 / exit 1 when a service's "
                        "county share of passing units is below SHARE (0–1)")
    p.add_argument("--no-maps", action="store_true", help="不生成地图 / skip the HTML maps")
    p.add_argument("--no-isochrones", action="store_true",
                   help="地图不绘制等时圈 / maps without isochrone layers")
    p.add_argument("--print", dest="print_paper", choices=("A4", "A3"), default=None,
                   help="另存打印版地图 PNG+PDF / also write print maps (PNG and PDF, landscape "
                        "A4 or A3; a few seconds per map)")
    p.add_argument("--isochrones", choices=("surface", "exact"), default="surface",
                   help="等时圈画法 / isochrone method: surface 由可达时间面等值线生成(快, 默认)"
                        " contours of the travel-time surface (fast, default); exact 可达街道带"
                        " street bands (tens of seconds per service county-wide)")
    plan = p.add_mutually_exclusive_group()
    plan.add_argument("--plan", type=Path, default=None, metavar="FILE",
                      help="规划目标文件(qyx-plan/1 JSON,默认数据包的规划)/ plan file to judge "
                           "against (default: the region pack's plan; docs/targets.md)")
    plan.add_argument("--no-plan", action="store_true",
                      help="不对照规划:只评分与排名,不判定达标 / no plan: score and rank every "
                           "unit, no target verdicts")
    add_region_option(p)
    p.add_argument("--standard", action="append", default=[], metavar="ID|FILE",
                   help="同时按国家标准逐层级评分,可重复 / also score every unit against a "
                        "standard's tiers, repeatable: gb50180-2018, tdt1062-2021 or a "
                        "qyx-standard/1 file (docs/standards.md); its services are added to the "
                        "audit; with --no-plan: instead of the plan")
    p.add_argument("--tier-units", action="append", default=[], metavar="TIER=KINDS",
                   help="某层级考核的村(社区)类型,'+'分隔 / unit kinds a tier judges, e.g. "
                        "5min=社区/居委会+村委会 (default: urban tiers 社区/居委会, rural 村委会)")
    p.add_argument("--network", type=Path, default=None, metavar="FILE",
                   help="路网文件(默认数据目录中的路网)/ street network file (.osm, .osm.pbf, "
                        ".osm.bz2, .graphml)")
    add_crs_option(p)
    p.set_defaults(func=_run)


def metric_crs_arg(text: str) -> str:
    """Argparse type: a projected CRS in metres, as ``AUTH:CODE``."""
    from qyx_geo._errors import QyxGeoError
    from qyx_geo.crs import validate_metric_crs

    try:
        return validate_metric_crs(text, name="--crs")
    except QyxGeoError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_crs_option(p: argparse.ArgumentParser) -> None:
    """Add ``--crs`` (metric CRS for snapping, surfaces, isochrones) to a command."""
    p.add_argument("--crs", type=metric_crs_arg, default=None, metavar="EPSG:XXXX",
                   help="投影坐标系(米),默认:区域包所定,否则路网中心所在的 CGCS2000 3度带(中国)或 "
                        "UTM 带 / metric CRS for all distance work (default: the region pack's, "
                        "else the local CGCS2000 3-degree GK zone in China or UTM elsewhere)")


def _split(text: str | None) -> list[str] | None:
    if text is None:
        return None
    items = [t.strip() for t in text.replace("，", ",").split(",") if t.strip()]
    if not items:
        msg = f"Empty list {text!r}; give comma-separated values."
        raise SettingsError(msg)
    return items


def _share(name: str, value: float | None) -> float | None:
    if value is not None and not 0.0 <= value <= 1.0:
        msg = f"{name} must be a share between 0 and 1, got {value!r} (e.g. 0.95 for 95 %)."
        raise SettingsError(msg)
    return value


def _checked(flag: str, raw: object, name: str, value: object) -> Any:
    """Check one option with the settings' rule book, naming the flag in the message."""
    try:
        return check_setting(name, value)
    except SettingsError as err:
        msg = f"{flag} {raw!r}: {err}"
        raise SettingsError(msg) from None


def _settings(args: argparse.Namespace, services: list[str]) -> Settings:
    changes: dict[str, Any] = {"mode": args.mode}
    if args.speed is not None:
        name = f"{args.mode}_speed_kmh"
        changes[name] = _checked("--speed", args.speed, name, args.speed)
    if args.min_share is not None:
        changes["min_share"] = _checked("--min-share", args.min_share, "min_share",
                                        args.min_share)
    thresholds: dict[str, float] = {}
    for item in args.threshold:
        service, sep, value = str(item).rpartition("=")
        try:
            minutes = float(value)
        except ValueError:
            msg = f"--threshold {item!r}: minutes must be a number, e.g. 15 or canteen=10."
            raise SettingsError(msg) from None
        minutes = _checked("--threshold", item, "threshold_minutes", minutes)
        if sep:
            sid = get_service(service.strip()).id
            if sid not in services:
                # said explicitly on the command line: refuse rather than ignore it
                msg = (f"--threshold {item!r}: service {sid!r} is not audited (--services "
                       f"{','.join(services)}); drop the option or add the service.")
                raise SettingsError(msg)
            targets = [sid]
        else:
            targets = services
        thresholds.update(dict.fromkeys(targets, minutes))
    changes["threshold_minutes"] = thresholds
    return Settings().replace(**changes)


def audit_options(args: argparse.Namespace) -> tuple[list[str] | None, Settings]:
    """Return (service ids, settings) from the audit options shared with ``qyx batch``.

    The service ids are ``None`` when ``--services`` is not given: the registry's default
    services, optional ones only where the dataset has the layer (decided by ``run_audit``).

    Raises
    ------
    SettingsError
        A bad service, threshold, share or speed.
    """
    chosen = _split(args.services)
    services = None if chosen is None else list(dict.fromkeys(get_service(s).id
                                                              for s in chosen))
    return services, _settings(args, services or default_service_ids())


def add_audit_options(p: argparse.ArgumentParser) -> None:
    """Add the options that choose what is audited and how (shared with ``qyx batch``)."""
    p.add_argument("--year", type=int, default=None,
                   help=f"目标年份 / target year {PLAN_YEARS[0]}–{PLAN_YEARS[-1]} "
                        f"({BASELINE_YEAR} = 基期 baseline; default: the plan's last year, "
                        f"{PLAN_YEARS[-1]})")
    p.add_argument("--services", default=None, metavar="LIST",
                   help=f"服务,逗号分隔 / comma-separated services (default: "
                        f"{','.join(default_service_ids())}, the optional ones where the data "
                        f"have the layer; registered: {','.join(service_ids())})")
    p.add_argument("--threshold", action="append", default=[], metavar="[SERVICE=]MIN",
                   help="时间阈值(分钟),可按服务指定,可重复 / threshold minutes for all "
                        "services or one (e.g. canteen=10); repeatable (default 15)")
    p.add_argument("--mode", choices=MODES, default="walk",
                   help="出行方式 / travel mode: walk 步行 4 km/h, elderly_walk 老年步行 3 km/h, "
                        "cycle 骑行/电动车 15 km/h (default walk)")
    p.add_argument("--speed", type=float, default=None, metavar="KMH",
                   help="所选方式的速度(公里/小时)/ speed of the chosen mode in km/h")
    p.add_argument("--min-share", type=float, default=None, metavar="SHARE",
                   help="村(社区)达标所需覆盖居民比例 / share of residents for a unit to pass "
                        "(default 0.8)")


def _registers(args: argparse.Namespace, dataset: Dataset,
               services: list[str]) -> dict[str, gpd.GeoDataFrame]:
    from qyx_geo.intake import import_register

    layers: dict[str, gpd.GeoDataFrame] = {}
    for item in args.facilities:
        service, sep, path = str(item).partition("=")
        if not sep or not path:
            msg = f"--facilities {item!r}: write SERVICE=FILE, e.g. canteen=助餐点台账.xlsx."
            raise SettingsError(msg)
        sid = get_service(service.strip()).id
        if sid not in services:
            msg = f"--facilities {item!r}: service {sid!r} is not audited (--services)."
            raise SettingsError(msg)
        suffix = Path(path).suffix.lower()
        result = import_register(
            Path(path), layer=sid, crs=args.facilities_crs, units=dataset.units,
            townships=dataset.townships, outline=dataset.outline,
            sheet=args.facilities_sheet if suffix in (".xlsx", ".xlsm") else None,
            layer_name=args.facilities_layer_name if suffix == ".gpkg" else None)
        counts = dict(result.counts)
        if result.layer.empty:
            raise SettingsError(_unusable(item, path, sid, result.report, counts))
        print(f"台账 register {path}: {counts.get('input', 0)} 行, 采用 "
              f"{counts.get('accepted', 0) + counts.get('accepted-with-changes', 0)}, 拒绝 "
              f"{counts.get('rejected', 0)} / rows in, accepted, rejected", file=sys.stderr)
        for warning in result.warnings:
            print(f"  ⚠ {warning}", file=sys.stderr)
        layers[sid] = result.layer
    return layers


def _unusable(item: str, path: str, sid: str, report: Any, counts: dict[str, int]) -> str:
    """One line: why a register with no usable row cannot replace a layer (intake summary)."""
    reasons = report["reason"].astype(str).str.split("；").str[0].value_counts().head(2)
    why = "; ".join(f"{n}× {text[:90]}" for text, n in reasons.items() if text)
    return (f"--facilities {item!r}: none of the {counts.get('input', 0)} rows of {path} is usable "
            f"(rejected {counts.get('rejected', 0)}: {why}); the audit would count no {sid} "
            f"facility at all. Fix the register (per-row report: qyx facilities import {path} "
            f"--layer {sid} --out DIR).")


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: object, width: int, *, right: bool = False) -> str:
    s = str(text)
    fill = " " * max(0, width - _width(s))
    return fill + s if right else s + fill


def _pct(value: float) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{100 * value:.1f}%"


def _print_service(audit: ServiceAudit) -> None:
    c = audit.county
    svc = audit.service
    target = c["target"]
    print(f"【{svc.label_zh} {svc.label_en}】{audit.threshold_minutes:g} 分钟 / min, "
          f"{audit.mode}" + (f", 仅 {'、'.join(svc.unit_kinds)}" if svc.unit_kinds else ""))
    line = (f"  全市 county: {c['units_passing']}/{c['units_judged']} 个村(社区)达标 passing = "
            f"{_pct(c['share_passing'])};居民覆盖 residents {_pct(c['residents_within_share'])}")
    print(line)
    if target is None:
        print(f"  规划目标 target: 本年度无目标 / no target — {c['target_note']}")
    else:
        verdict = ("达到 met" if c["met"]
                   else f"未达到 not met,尚缺 shortfall {c['shortfall_units']} 个")
        print(f"  规划目标 target: ≥{_pct(target.value)}({target.text},{target.location})→ "
              f"{verdict}")
    cap = c.get("capacity")
    if cap:
        ct = cap["target"]
        verdict = "达到 met" if cap["met"] else "未达到 not met"
        print(f"  托位 places: {cap['places_per_1000']:.2f} 个/千人可达 within reach (2SFCA)"
              + (f" vs 规划 ≥{ct.text}({ct.location})→ {verdict}" if ct
                 else ";本年度无目标 no target"))
    for key, check in audit.checks.items():
        c, t = check.county, check.target
        shown = (f"{c['value']:.2f}" if check.kind == "per_1000" else _pct(c["value"]))
        verdict = ("本年度无目标 no target" if t is None else "达到 met" if c["met"] else
                   f"未达到 not met,尚缺 shortfall {c['shortfall']} ({c['shortfall_unit']})")
        print(f"  {key} [{check.kind}]: {shown}"
              + (f" vs 规划 {t.text}({t.location})" if t is not None else "") + f" → {verdict}")
    ranked = audit.townships.dropna(subset=["rank"]).sort_values(["rank", "name"])
    if ranked.empty:
        print()
        return
    name_w = max(12, *(_width(str(n)) for n in ranked["name"]))
    print(f"  {_pad('排名', 4)} {_pad('镇(街道) township', name_w)} {_pad('达标', 9, right=True)} "
          f"{_pad('达标率', 7, right=True)}")
    for _code, row in ranked.iterrows():
        print(f"  {_pad(int(row['rank']), 4)} {_pad(row['name'], name_w)} "
              f"{_pad(f'{int(row.units_passing)}/{int(row.units_judged)}', 9, right=True)} "
              f"{_pad(_pct(row['share_passing']), 7, right=True)}")
    print()


def _progress_bar(total: int) -> tuple[Callable[[str], None], Callable[[], None]]:
    from tqdm import tqdm

    class _Bar(tqdm):
        # no monitor thread: the maps are drawn in a forked child, which wants one thread only
        monitor_interval = 0

    bar = _Bar(total=total, desc="体检 audit", unit="步", file=sys.stderr, disable=None,
               leave=False)
    done = {"n": 0}

    def advance(label: str) -> None:
        bar.set_postfix_str(label)
        if done["n"]:
            bar.update(1)
        done["n"] += 1

    def close() -> None:
        bar.update(total - bar.n)
        bar.close()

    return advance, close


def _run(args: argparse.Namespace) -> int:
    """Run the audit; SIGTERM acts as KeyboardInterrupt meanwhile, so staged files are removed."""
    return sigterm_as_interrupt(_audit, args)


def sigterm_as_interrupt(func: Callable[[argparse.Namespace], int],
                         args: argparse.Namespace) -> int:
    """Return ``func(args)`` with SIGTERM raising KeyboardInterrupt meanwhile (exit 130, cleanup).

    The previous SIGTERM handler is restored afterwards; off the main thread nothing changes.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return func(args)

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        return func(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _tier_units(items: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for item in items:
        tier, sep, kinds = str(item).partition("=")
        names = [k.strip() for k in kinds.split("+") if k.strip()]
        if not sep or not tier.strip() or not names:
            msg = f"--tier-units {item!r}: write TIER=KIND[+KIND], e.g. 5min=社区/居委会+村委会."
            raise SettingsError(msg)
        out[tier.strip()] = names
    return out


def _print_standards(result: AuditResult) -> None:
    for std in result.standards.values():
        s = std.standard
        print(f"【{s.code}《{s.title}》】")
        for tier in s.tiers:
            c = std.tiers[tier.id]["county"]
            per = ", ".join(f"{k} {_pct(v)}" for k, v in c["services"].items())
            print(f"  {tier.label_zh} ({'、'.join(tier.unit_kinds)}): {c['units_passing']}/"
                  f"{c['units_judged']} 全部达标 all services {_pct(c['share_passing'])}"
                  + (f" — {per}" if per else ""))
        if std.missing:
            print(f"  未体检 not audited: {', '.join(std.missing)}")
        print()


def _plan(args: argparse.Namespace) -> Any:
    """Return the plan to judge against, or ``None``; the year is checked before slow steps."""
    from qyx_geo.audit import resolve_plan
    from qyx_geo.region import plan_source, resolve_region

    default = plan_source(resolve_region(args.region)) if args.plan is None else args.plan
    plan = None if args.no_plan else resolve_plan(default)
    if args.year is None:
        args.year = plan.period[-1] if plan is not None else PLAN_YEARS[-1]
    if plan is not None:
        try:
            plan.check_year(args.year)
        except SettingsError as err:
            msg = f"--year: {err}"
            raise SettingsError(msg) from None
    return plan


def _audit(args: argparse.Namespace) -> int:
    from qyx_geo.dataset import load_dataset
    from qyx_geo.pipeline import audit_to_folder

    started = time.perf_counter()
    services, settings = audit_options(args)
    townships = _split(args.townships)
    fail_under = _share("--fail-under", args.fail_under)
    plan = _plan(args)
    standards = [load_standard(s) for s in args.standard]
    tier_units = _tier_units(args.tier_units)

    n_listed = len(services or default_service_ids())
    n_steps = 2 + 2 + n_listed + (0 if args.no_maps else n_listed + 1) + 1
    advance, close = _progress_bar(n_steps)
    timings: dict[str, float] = {}
    try:
        advance("数据 dataset")
        t0 = time.perf_counter()
        dataset = load_dataset(region=args.region)
        if services is None:  # the default services; optional ones where the layer exists
            services = [s for s in default_service_ids()
                        if get_service(s).required or s in dataset.facilities]
        for std in standards:  # a standard's services join the audit where the layer exists
            services += [s for s in std.services() if s not in services
                         and s in dataset.facilities]
        overrides = _registers(args, dataset, services) if args.facilities else None
        timings["load_dataset"] = time.perf_counter() - t0
        parameters = {"argv": ["qyx", *sys.argv[1:]] if sys.argv else None,
                      "out": str(args.out), "facilities": list(args.facilities),
                      "fail_under": fail_under}
        run = audit_to_folder(dataset, args.out, year=args.year, services=services,
                              settings=settings, facilities=overrides, townships=townships,
                              network=args.network, maps=not args.no_maps,
                              isochrones=not args.no_isochrones,
                              isochrone_method=args.isochrones,
                              print_paper=args.print_paper, parameters=parameters,
                              timings_s=timings, progress=advance, plan=plan,
                              standards=standards, standard_unit_kinds=tier_units,
                              crs=args.crs)
    finally:
        close()
    result, written, timings = run.result, run.written, run.timings_s

    from qyx_geo.report import region_names

    name_zh, name_en = region_names(dataset)
    print(f"{name_zh}“15分钟公共服务圈”体检 {result.year}年 / {name_en} audit for {result.year} "
          f"(达标条件 a unit passes at ≥{100 * settings.min_share:.0f}% of residents)")
    if result.township_codes:
        print(f"范围 scope: {', '.join(result.township_codes)}")
    for warning in result.warnings:
        print(f"⚠ {warning}", file=sys.stderr)
    if any(str(v.get("status")) != "real" for v in dataset.provenance.values()):
        print("⚠ 含合成数据,结果仅供演示 / synthetic data: figures demonstrate the method only")
    print()
    for audit in result.services.values():
        _print_service(audit)
    _print_standards(result)
    print(f"已写出 wrote {len(written)} 个文件 files → {args.out}  "
          f"(体检 audit {result.timings_s['total']:.1f} s, 路网 network "
          f"{timings['load_network']:.1f} s, 合计 total {time.perf_counter() - started:.1f} s)")
    if fail_under is not None:
        below = [(sid, a.county["share_passing"]) for sid, a in result.services.items()
                 if not a.county["share_passing"] >= fail_under - 1e-12]
        if below:
            listing = ", ".join(f"{sid} {_pct(v)}" for sid, v in below)
            print(f"低于 --fail-under {_pct(fail_under)}: {listing}", file=sys.stderr)
            return 1
    return 0

