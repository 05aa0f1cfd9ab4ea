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
    from qyx_geo._mapparts import TILE_CHOICES
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
    p.add_argument("--data-dir", type=Path, default=None,
                   help="数据目录 / dataset folder (default: the embedded data, or QYX_DATA_DIR)")
    p.add_argument("--network", default=None,
                   help="路网文件 / street network file (default: the dataset's network)")
    p.set_defaults(func=run)


def _default_out(service: str | None, township: str | None) -> Path:
    stem = service or "overview"
    if township:
        stem += f"_{township}"
    return Path("outputs") / "maps" / f"{stem}.html"


def build(args: argparse.Namespace) -> tuple[Any, Any]:
    """Load the data, run the audit and return ``(folium map, audit result)`` for ``args``."""
    from qyx_geo import maps
    from qyx_geo.audit import run_audit
    from qyx_geo.dataset import load_dataset

    ds = load_dataset(data_dir=args.data_dir)
    if args.network:
        from qyx_geo.network import load_network

        graph = load_network(args.network)
    else:
        graph = ds.load_network()
    ds = ds.with_network(graph)
    result = run_audit(ds, year=args.year, services=[args.service] if args.service else None,
                       network=graph, townships=[args.township] if args.township else None)
    if args.service is None:
        m = maps.overview_map(result, roads=graph, tiles=args.tiles, township=args.township)
        return m, result
    audit = result.services[args.service]
    iso = None if args.no_isochrones else maps._service_isochrones(result, audit)
    m = maps.service_map(audit, ds, isochrones=iso, roads=graph, tiles=args.tiles,
                         township=args.township)
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
