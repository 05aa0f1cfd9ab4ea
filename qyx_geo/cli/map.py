"""``qyx map``: one offline HTML map of a service (or the overview of all services).

Runs the audit for the chosen service (and township), draws coverage by village/community, the
5/10/15-minute isochrones, facilities and uncovered residents on a vector basemap, and writes one
self-contained HTML file that opens offline.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from qyx_geo.services import service_ids

__all__ = ["register", "run"]

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``map`` sub-command."""
    from qyx_geo.cli.region import add_region_option
    from qyx_geo.maps._offline import TILE_CHOICES
    from qyx_geo.targets import PLAN_YEARS

    p = sub.add_parser(
        "map", help="离线地图 / offline HTML map of one service or the overview",
        description="绘制一项服务（或全部服务总览）的离线 HTML 地图：村社覆盖率、"
                    "5/10/15分钟可达范围、设施、未覆盖居民点；单个文件，无需联网即可打开。"
                    " / Draw an offline HTML map of one service (or the overview of all): "
                    "coverage per village/community, isochrones, facilities and uncovered "
                    "residents, in one self-contained file.")
    p.add_argument("--service", choices=service_ids(), default=None,
                   help="服务 / service (default: overview of all services)")
    p.add_argument("--township", default=None,
                   help="镇街名称或9位代码 / township name or 9-digit code (default: whole county)")
    p.add_argument("--year", type=int, default=PLAN_YEARS[-1],
                   help=f"目标年份 / target year (default {PLAN_YEARS[-1]})")
    p.add_argument("--out", type=Path, default=None,
                   help="输出文件 / output HTML (default outputs/maps/<service>[_<township>].html)")
    p.add_argument("--tiles", choices=TILE_CHOICES, default="none",
                   help="默认底图 / base layer shown first: none = offline vector basemap "
                        "(default); osm, gaode = online tiles (Gaode overlays shifted to GCJ-02)")
    p.add_argument("--no-isochrones", action="store_true",
                   help="不绘制可达范围 / skip the isochrones (faster, smaller file)")
    p.add_argument("--isochrones", choices=("surface", "exact"), default="surface",
                   help="可达范围画法 / isochrone method: surface 可达时间面(默认,县域图为分级图像)"
                        " travel-time surface (default; county maps draw it as a banded image);"
                        " exact 可达街道带 street bands")
    add_region_option(p)
    p.add_argument("--network", default=None,
                   help="路网文件 / street network file (default: the dataset's network)")
    from qyx_geo.cli.audit import add_crs_option

    add_crs_option(p)
    p.set_defaults(func=run)


def _default_out(service: str | None, township: str | None) -> Path:
    stem = service or "overview"
    if township:
        stem += f"_{township}"
    return Path("outputs") / "maps" / f"{stem}.html"


def _near_facilities(facilities: Any, townships: Any, code: str, reach_m: float) -> Any:
    """Return the facilities within ``reach_m`` (straight line) of township ``code``.

    Network distance is never shorter than the straight line, so no other facility can reach
    the township within the largest tier: the isochrones of these are exact there.
    """
    from qyx_geo.crs import metric_crs_of

    town = townships.loc[[code]]
    metric = metric_crs_of(town)
    area = town.to_crs(metric).buffer(reach_m).iloc[0]
    return facilities[facilities.to_crs(metric).intersects(area)]


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """Load the data, run the audit and return ``(folium map, audit result)`` for ``args``."""
    from qyx_geo import maps
    from qyx_geo.audit import run_audit
    from qyx_geo.dataset import load_dataset
    from qyx_geo.isochrones import isochrones
    from qyx_geo.pipeline import dataset_network

    ds = load_dataset(region=args.region)
    # cached arrays and main roads
    net, roads = dataset_network(ds, args.network, need_roads=True, crs=args.crs)
    result = run_audit(ds, year=args.year, services=[args.service] if args.service else None,
                       network=net, townships=[args.township] if args.township else None)
    if args.service is None:
        m = maps.overview_map(result, roads=roads, tiles=args.tiles, township=args.township)
        return m, result
    audit = result.services[args.service]
    iso = surface = None
    facilities = audit.facilities
    if not args.no_isochrones and facilities is not None and result.net is not None:
        tiers = audit.service.tiers_minutes
        if args.township and result.township_codes:
            speed = result.settings.speed_m_per_min(audit.mode)  # type: ignore[arg-type]
            reach_m = max(tiers) * speed
            facilities = _near_facilities(facilities, ds.townships, result.township_codes[0],
                                          reach_m)
        if not facilities.empty and args.isochrones == "surface" and not args.township:
            from qyx_geo.pipeline import grid_link, network_source
            from qyx_geo.surfaces import travel_time_surface

            link = grid_link(result.net, network_source(ds, args.network), result.settings)
            surface = travel_time_surface(result.net, facilities, cutoff_minutes=max(tiers),
                                          settings=result.settings, link=link,
                                          mode=audit.mode)  # type: ignore[arg-type]
        elif not facilities.empty:
            logger.info("isochrones of %d facilities", len(facilities))
            iso = isochrones(result.net, facilities, minutes=tiers, settings=result.settings,
                             mode=audit.mode, method=args.isochrones)  # type: ignore[arg-type]
    m = maps.service_map(audit, ds, isochrones=iso, roads=roads, tiles=args.tiles,
                         township=args.township, surface=surface)
    return m, result


def run(args: argparse.Namespace) -> int:
    """Write the map and print where it went."""
    from qyx_geo.maps import save_map

    start = time.perf_counter()
    m, _ = build(args)
    out = args.out or _default_out(args.service, args.township)
    path = save_map(m, out)
    size_kb = path.stat().st_size / 1024
    print(f"地图已写入 / map written: {path} ({size_kb:,.0f} kB, "
          f"{time.perf_counter() - start:.1f} s)")
    return 0
