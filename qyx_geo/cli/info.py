"""``qyx info``: summary of the loaded dataset — units, residents, facilities, network, provenance.

``qyx info --json`` prints the same summary as one JSON object; ``--no-network`` skips loading
the street network (the only slow part).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any

from qyx_geo import dataset as _dataset
from qyx_geo._errors import QyxGeoError
from qyx_geo.cli.region import add_region_option
from qyx_geo.dataset import Dataset
from qyx_geo.schema import FACILITY_LAYERS, UNIT_KINDS
from qyx_geo.services import get_service
from qyx_geo.units import TOWNSHIP_KINDS

__all__ = ["dataset_summary", "network_summary", "register"]

logger = logging.getLogger(__name__)

_STATUS_ZH = {"real": "真实 real", "synthetic": "合成 synthetic", "mixed": "混合 mixed",
              "missing": "缺失 missing"}


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` sub-command."""
    p = sub.add_parser(
        "info", help="数据集概况 / summary of the loaded dataset",
        description="数据集概况：行政单元、常住人口、设施、路网，以及哪些是真实数据、哪些是合成数据。"
                    " / Summary of the dataset: units, residents, facilities, street network, "
                    "and what is real and what is synthetic.")
    p.add_argument("--json", action="store_true", help="输出 JSON / print JSON")
    p.add_argument("--no-network", action="store_true",
                   help="不加载路网（较慢）/ skip loading the street network (the slow part)")
    add_region_option(p)
    p.set_defaults(func=run)


def dataset_summary(ds: Dataset) -> dict[str, Any]:
    """Return the JSON-ready summary of a dataset (without the network)."""
    pop = ds.demand["pop"].sum()
    young = ds.demand["pop_0_3"].sum()
    old = ds.demand["pop_60p"].sum()
    facilities: dict[str, Any] = {}
    for layer in FACILITY_LAYERS:
        gdf = ds.facilities[layer]
        service = get_service(layer)
        cap = gdf["capacity"].dropna()
        facilities[layer] = {
            "label": service.label_zh, "count": len(gdf),
            "by_source": dict(sorted(Counter(gdf["source"].astype(str)).items())),
            "by_level": dict(sorted(Counter(gdf["level"].astype(str)).items())),
            "units_with_facility": int(gdf["unit_code"].nunique()),
            "capacity_total": float(cap.sum()) if len(cap) else None,
            "capacity_unit": service.capacity_unit_zh,
        }
    region = ds.region
    declared = region.population if region is not None else {}
    return {
        "data_dir": str(ds.data_dir),
        "region": {"code": region.code if region else None, "name_zh": ds.name_zh,
                   "name_en": ds.name_en, "crs": region.crs if region else None},
        "townships": {"count": len(ds.townships),
                      "by_kind": {k: int((ds.townships["kind"] == k).sum())
                                  for k in TOWNSHIP_KINDS
                                  if k != "乡" or (ds.townships["kind"] == k).any()}},
        "units": {"count": len(ds.units),
                  "by_kind": {k: int((ds.units["kind"] == k).sum()) for k in UNIT_KINDS}},
        "population": {"total": int(pop), "pop_0_3": int(young), "pop_60p": int(old),
                       "share_0_3": round(float(young / pop), 4) if pop else None,
                       "share_60p": round(float(old / pop), 4) if pop else None,
                       "declared_total": declared.get("total"),
                       "declared_source": declared.get("source") or None,
                       "demand_points": len(ds.demand)},
        "facilities": facilities,
        "provenance": {k: dict(v) for k, v in ds.provenance.items()},
    }


def network_summary(ds: Dataset, *, skip: bool = False) -> dict[str, Any]:
    """Load the dataset's network (unless ``skip``) and return nodes/edges or why it failed."""
    path = str(ds.network_path) if ds.network_path else None
    if skip:
        return {"status": "skipped", "path": path}
    if ds.network_path is None:
        return {"status": "missing", "path": None,
                "error": "no network file; rebuild it with `python -m qyx_geo.synth`"}
    t0 = time.perf_counter()
    try:
        graph = ds.load_network()
    except (QyxGeoError, ImportError, OSError, ValueError) as err:
        logger.debug("network load failed", exc_info=True)
        return {"status": "unavailable", "path": path, "error": f"{type(err).__name__}: {err}"}
    return {"status": "loaded", "path": path, "nodes": int(graph.number_of_nodes()),
            "edges": int(graph.number_of_edges()),
            "crs": str(graph.graph.get("crs")) if hasattr(graph, "graph") else None,
            "load_seconds": round(time.perf_counter() - t0, 2)}


def _text(summary: dict[str, Any]) -> str:
    t, u, p = summary["townships"], summary["units"], summary["population"]
    r = summary["region"]
    lines = [f"{r['name_zh']} 15分钟公共服务圈 数据集 / {r['name_en']} dataset "
             f"({r['code']}, {r['crs']}): {summary['data_dir']}",
             f"镇街 townships: {t['count']} ("
             + ", ".join(f"{k} {v}" for k, v in t["by_kind"].items()) + ")",
             f"村社区 units:   {u['count']} ("
             + ", ".join(f"{k} {v}" for k, v in u["by_kind"].items()) + ")"]
    if p["total"]:
        lines.append(
            f"常住人口 residents: {p['total']:,} ({p['declared_source'] or '—'}; "
            f"0–3岁 {p['pop_0_3']:,} = {p['share_0_3']:.1%}, 60岁+ {p['pop_60p']:,} = "
            f"{p['share_60p']:.1%}; {p['demand_points']:,} 需求点 demand points)")
    lines.append("设施 facilities:")
    for layer, f in summary["facilities"].items():
        src = ", ".join(f"{k} {v}" for k, v in f["by_source"].items())
        cap = (f", {f['capacity_total']:,.0f} {f['capacity_unit']}"
               if f["capacity_total"] and f["capacity_unit"] else "")
        lines.append(f"  {f['label']:6s}{layer:8s} {f['count']:4d} ({src}){cap}; "
                     f"{f['units_with_facility']} 个村社区有设施 units with one")
    n = summary["network"]
    if n["status"] == "loaded":
        lines.append(f"路网 network: {n['nodes']:,} 节点 nodes, {n['edges']:,} 边 edges "
                     f"({Path(n['path']).name}, {n['load_seconds']} s)")
    elif n["status"] == "skipped":
        lines.append(f"路网 network: 未加载 not loaded (--no-network); file {n['path']}")
    else:
        lines.append(f"路网 network: {n['status']} — {n.get('error')}")
    lines.append("数据来源 provenance (真实 real / 合成 synthetic):")
    for part, info in summary["provenance"].items():
        lines.append(f"  {part:20s} {_STATUS_ZH.get(info['status'], info['status']):14s} "
                     f"{info['detail']} [{info['licence']}]")
    lines.append("注意: 合成数据仅用于演示与测试 / synthetic parts are generated, "
                 "not observations.")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Print the dataset summary; return 0."""
    # looked up at call time so the loader can be swapped (tests, notebooks)
    ds = _dataset.load_dataset(region=args.region)
    summary = dataset_summary(ds)
    summary["network"] = network_summary(ds, skip=args.no_network)
    if args.json:
        print(json.dumps(summary, ensure_ascii=False, indent=2))
    else:
        print(_text(summary))
    return 0

