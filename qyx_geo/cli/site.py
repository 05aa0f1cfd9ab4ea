"""``qyx site``: where to add facilities so that the plan's target is met (MILP or greedy)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from qyx_geo._errors import SettingsError
from qyx_geo.cli.region import add_region_option
from qyx_geo.services import service_ids
from qyx_geo.targets import PLAN_YEARS

if TYPE_CHECKING:
    from qyx_geo.siting import SitingResult

__all__ = ["register"]

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``site`` sub-command."""
    p = sub.add_parser(
        "site",
        help="选址:新增设施使村社达标 / propose new sites so the plan's target is met",
        description="为某项服务选址:在保留现有设施的前提下,求使达标村社比例达到规划目标的最少新增"
                    "站点(集合覆盖),或在给定数量/预算内使达标村社最多的站点(最大覆盖),并以重新"
                    "体检验证。 Proposes new sites for a service: the fewest that make the share "
                    "of passing villages/communities reach the plan's target (set covering), or "
                    "the best within a number/budget (maximal covering); the audit is re-run "
                    "with the sites added as proof.",
    )
    p.add_argument("--service", required=True, choices=service_ids(),
                   help="服务 / service")
    p.add_argument("--year", type=int, default=PLAN_YEARS[-1],
                   help=f"目标年份 / target year {PLAN_YEARS[0]}–{PLAN_YEARS[-1]} "
                        f"(default {PLAN_YEARS[-1]})")
    p.add_argument("--method", choices=("milp", "greedy"), default="milp",
                   help="milp: 精确求解 exact (HiGHS); greedy: 贪心 fast heuristic (default milp)")
    p.add_argument("--max-sites", type=int, default=None, metavar="N",
                   help="最多新增站点数(最大覆盖)/ at most N new sites (maximal covering)")
    p.add_argument("--budget", type=float, default=None,
                   help="预算上限,按候选点 cost 列 / budget over the candidates' cost column")
    p.add_argument("--candidates", type=Path, default=None, metavar="FILE",
                   help="候选点 CSV(lon/lat, WGS84)或 GeoJSON/GPKG,可含 name、cost 列 / candidate "
                        "sites (default: network nodes near uncovered residents)")
    p.add_argument("--time-limit", type=float, default=60.0, metavar="SECONDS",
                   help="求解时限(秒)/ solver time limit (default 60)")
    p.add_argument("--mip-gap", type=float, default=1e-4,
                   help="相对最优间隙 / relative optimality gap (default 1e-4)")
    p.add_argument("--min-share", type=float, default=None,
                   help="村社达标所需覆盖人口比例 / share of residents for a unit to pass "
                        "(default 0.8)")
    add_region_option(p)
    p.add_argument("--network", type=Path, default=None, metavar="FILE",
                   help="路网文件(默认数据目录中的路网)/ street network file")
    p.add_argument("--no-compare", action="store_true",
                   help="不运行另一方法作对比 / skip the other method's comparison run")
    p.add_argument("--map", action="store_true",
                   help="另存离线地图 site_<service>_<year>.html / also write an offline map")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="输出目录 / output folder")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from qyx_geo.dataset import load_dataset
    from qyx_geo.settings import Settings
    from qyx_geo.siting import propose_sites, write_sites

    settings = Settings() if args.min_share is None else Settings(min_share=args.min_share)
    dataset = load_dataset(region=args.region)
    if args.network is not None:
        from qyx_geo.network import load_network

        network = load_network(args.network)
    else:
        network = dataset.load_network()
    result = propose_sites(
        dataset, service=args.service, year=args.year, method=args.method,
        max_sites=args.max_sites, budget=args.budget, candidates=args.candidates,
        time_limit_s=args.time_limit, mip_gap=args.mip_gap, settings=settings, network=network,
        compare=not args.no_compare,
    )
    paths = write_sites(result, args.out)
    if args.map and result.audit_after is not None:
        paths["html"] = _write_map(result, args.out)
    _print(result, paths)
    return 0


def _write_map(result: SitingResult, out: Path) -> Path:
    from qyx_geo.maps import save_map, service_map
    from qyx_geo.siting import sites_layer

    after = result.audit_after
    if after is None:
        msg = "地图需要复核体检结果 / the map needs the re-run audit of the proposal."
        raise SettingsError(msg)
    m = service_map(after.services[result.service.id], after.dataset)
    sites_layer(result).add_to(m)
    return save_map(m, out / f"site_{result.service.id}_{result.year}.html")


def _fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{float(value):.1%}"


def _print(r: SitingResult, paths: dict[str, Path]) -> None:
    b, a = r.before, r.after
    kind = ("最少站点 set covering" if r.objective_kind == "min_sites"
            else "最大覆盖 maximal covering")
    print(f"{r.service.label} · {r.year}年 · {kind} · {r.method}")
    if b["target"] is None:
        print(f"  目标 target: {r.year}年无目标 / no target this year")
    else:
        print(f"  目标 target: {b['target']} → 需达标村社 units needed "
              f"{b['required_units']}/{b['units_judged']}")
    print(f"  现状 before: {b['units_passing']}/{b['units_judged']} 达标 passing "
          f"({_fmt_share(b['share_passing'])}), 达标 met: {b['met']}")
    check = "体检复核 verified by re-run audit" if a.get("verified") else "模型估计 model estimate"
    print(f"  新增 after:  {a['units_passing']}/{a['units_judged']} 达标 passing "
          f"({_fmt_share(a['share_passing'])}), 达标 met: {a['met']} [{check}]")
    print(f"  新增站点 new sites: {r.n_sites}; 新覆盖服务人口 residents newly covered: "
          f"{r.sites['residents_new'].sum():,.0f}")
    if r.bound is not None:
        print(f"  最优界 bound: {r.bound:g}, 间隙 gap: {r.gap:.2%}, 状态 status: {r.status}, "
              f"用时 {r.solve_time_s:.2f} s")
    if r.greedy_objective is not None:
        print(f"  对比 greedy: {r.greedy_objective:g}")
    if r.exact_objective is not None:
        gap = "—" if r.gap_to_exact is None else f"{r.gap_to_exact:.1%}"
        print(f"  对比 exact (MILP): {r.exact_objective:g}, 贪心差距 greedy gap: {gap}")
    if r.capacity is not None:
        c = r.capacity
        print(f"  托位 places: +{c['places_added']:,.0f} (按 {c['rate_per_1000']:g}/千人), "
              f"可达托位/千人 reachable per 1,000: {c['per_1000_before']} → {c['per_1000_after']}")
    for kind_, path in paths.items():
        print(f"  {kind_}: {path}")
