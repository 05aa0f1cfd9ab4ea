"""``qyx network``: load, download and cache street networks (路网加载、下载与缓存)."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from qyx_geo.cli import help_only

__all__ = ["register"]

_TYPES = ("walk", "bike", "drive", "drive_service", "all", "all_public")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``network`` sub-command and its ``load``/``fetch``/``cache`` actions."""
    p = sub.add_parser(
        "network", help="路网：加载文件、在线下载、缓存 / street networks: load, fetch, cache",
        description="路网工具 / street networks. 文件与内置路网经 osmnx 读取、按步行过滤、"
                    "投影到 EPSG:4549 并缓存 / files and the embedded network are read with "
                    "osmnx, walk-filtered, projected to EPSG:4549 and cached.")
    actions = p.add_subparsers(dest="action", metavar="ACTION")

    load = actions.add_parser(
        "load", help="加载路网文件并汇总 / load a network file and summarise it",
        description="加载 .osm / .osm.bz2 / .osm.pbf / .graphml 文件，或 default（内置合成路网）"
                    " / load a file, or 'default' for the embedded synthetic network.")
    load.add_argument("file", metavar="FILE", help="路网文件或 default / network file or 'default'")
    load.add_argument("--clip", nargs="+", metavar="W S E N | FILE",
                      help="只保留此范围内的路网（适合省级 .pbf，流式读取）：经纬度范围 "
                           "西 南 东 北，或多边形文件（GeoJSON/GPKG）/ keep only the network "
                           "inside this WGS84 bbox (west south east north) or polygon file "
                           "(GeoJSON/GPKG); a "
                           "province-size .pbf is streamed")
    from qyx_geo.cli.audit import add_crs_option

    add_crs_option(load)
    _common(load)
    load.set_defaults(func=_load)

    fetch = actions.add_parser(
        "fetch", help="从 OpenStreetMap 在线下载（需联网）/ download from OSM (online)",
        description="用 osmnx 在线下载步行路网；离线时数秒内报错 / download with osmnx; fails "
                    "within seconds when offline.")
    where = fetch.add_mutually_exclusive_group(required=True)
    where.add_argument("place", nargs="?", metavar="PLACE",
                       help="地名，如 “宁波市, 浙江省, 中国” / place name")
    where.add_argument("--bbox", nargs=4, type=float, metavar=("W", "S", "E", "N"),
                       help="经纬度范围 西 南 东 北 / bounding box west south east north (WGS84)")
    fetch.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS",
                       help="联网检测超时（秒，默认 3）/ reachability probe timeout (default 3 s)")
    _common(fetch)
    fetch.set_defaults(func=_fetch)

    cache = actions.add_parser("cache", help="查看或清除路网缓存 / show or clear the cache")
    cache.add_argument("--clear", action="store_true",
                       help="清除缓存（含在线下载缓存）/ delete cached networks and downloads")
    cache.add_argument("--json", action="store_true", help="输出 JSON / print JSON")
    cache.set_defaults(func=_cache)
    p.set_defaults(func=help_only(p))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--type", dest="network_type", default="walk", choices=_TYPES,
                   help="osmnx 路网类型（默认 walk 步行）/ osmnx network type (default walk)")
    p.add_argument("--no-cache", dest="cache", action="store_false",
                   help="不读写缓存 / neither read nor write the cache")
    p.add_argument("--json", action="store_true", help="输出 JSON / print JSON")



def _print_summary(summary: dict[str, Any], seconds: float, *, as_json: bool) -> None:
    if as_json:
        print(json.dumps({**summary, "seconds": round(seconds, 2)}, ensure_ascii=False, indent=1))
        return
    kind = "合成 synthetic" if summary["synthetic"] else "真实 real (OSM/用户)"
    print(f"路网 network: {summary['source']}")
    print(f"  类型 type: {summary['network_type']}   数据 data: {kind}   CRS: {summary['crs']}")
    print(f"  节点 nodes: {summary['nodes']:,}   边 edges: {summary['edges']:,}   "
          f"道路长度 street length: {summary['street_length_km']:,.1f} km")
    if summary.get("ways_cut") or summary.get("ways_dropped"):
        print(f"  裁剪 clipped: {summary['ways_cut']:,} 条道路在缺失节点处截断 ways cut, "
              f"{summary['ways_dropped']:,} 条舍弃 dropped (节点缺失或在范围外 / nodes "
              "missing or outside --clip)")
    if summary.get("osm_timestamp"):
        print(f"  OSM 时间 timestamp: {summary['osm_timestamp']}")
    print(f"  用时 time: {seconds:.1f} s")


def _load(args: argparse.Namespace) -> int:
    from qyx_geo.network import load_network, network_summary

    t0 = time.perf_counter()
    G = load_network(args.file, network_type=args.network_type, cache=args.cache,  # noqa: N806
                     clip=_clip(args.clip), crs=args.crs)
    _print_summary(network_summary(G), time.perf_counter() - t0, as_json=args.json)
    return 0


def _clip(values: list[str] | None) -> Any:
    """Return ``--clip`` as a bbox tuple or the union of a polygon file's shapes (WGS84)."""
    from qyx_geo._errors import SettingsError

    if not values:
        return None
    if len(values) == 4:
        try:
            return tuple(float(v) for v in values)
        except ValueError:
            pass
    if len(values) != 1:
        msg = (f"--clip takes four numbers (west south east north) or one polygon file; got "
               f"{' '.join(values)!r}")
        raise SettingsError(msg)
    import geopandas as gpd
    import pyogrio

    try:
        shapes = gpd.read_file(values[0], engine="pyogrio")
    except (OSError, pyogrio.errors.DataSourceError) as err:
        msg = f"--clip {values[0]!r}: not a readable polygon file ({err}); use GeoJSON or GPKG"
        raise SettingsError(msg) from err
    if shapes.crs is not None:
        shapes = shapes.to_crs("EPSG:4326")
    return shapes.union_all()


def _fetch(args: argparse.Namespace) -> int:
    from qyx_geo.network import fetch_network, network_summary

    query = tuple(args.bbox) if args.bbox else args.place
    t0 = time.perf_counter()
    G = fetch_network(query, network_type=args.network_type, cache=args.cache,  # noqa: N806
                      probe_timeout_s=args.timeout)
    _print_summary(network_summary(G), time.perf_counter() - t0, as_json=args.json)
    return 0


def _cache(args: argparse.Namespace) -> int:
    from qyx_geo._paths import cache_dir
    from qyx_geo.network import cache_entries, clear_cache

    if args.clear:
        n = clear_cache()
        print(json.dumps({"removed_files": n}) if args.json
              else f"已清除 {n} 个缓存文件 / removed {n} cached files from {cache_dir()}")
        return 0
    entries = cache_entries()
    if args.json:
        print(json.dumps([{"path": str(e.path), "size_bytes": e.size_bytes, "source": e.source,
                           "network_type": e.network_type, "nodes": e.nodes, "edges": e.edges,
                           "created": e.created} for e in entries], ensure_ascii=False, indent=1))
        return 0
    print(f"缓存目录 cache folder: {cache_dir()}")
    if not entries:
        print("  （空 / empty）")
    for e in entries:
        print(f"  {e.created}  {e.size_bytes / 1e6:7.1f} MB  {e.network_type:<5} "
              f"{e.nodes:>9,} nodes  {e.source}")
    return 0
