"""Benchmark: a city's counties as one batch on dask.distributed, 1 vs N worker processes.

宁波's 10 county-level units (3302xx, NBS 2023 codes: china-division ningbo_areas_2023.csv) as
packs generated with ``qyx_geo.packs.init.init_region`` (real codes, names and outlines;
synthetic areas, demand, facilities and street network). The resident total of each is a
*workload parameter* (``--population``, default 1,000,000), not a census figure: the number of
demand clusters per village does not depend on it, so it does not change the work.

Phases (wall clock):

prepare   one batch with ``--prepare-workers`` workers that generates the packs on the workers
          (``populations=``) and audits them once, so that networks, engine arrays and grid links
          are cached (``QYX_CACHE_DIR``) — a cold first quarter;
runs      for each ``--workers`` value: ``run_batch(packs, force=True)`` on a fresh LocalCluster
          (start-up and library imports on the workers timed separately), the default audit
          of ``qyx batch`` (maps on) — a warm re-run, as every later quarter is.

Reported per run: wall time, cluster start, per-region seconds, peak resident memory per
worker (``ru_maxrss`` of the worker process) and the speed-up over 1 worker. The per-region
times of the 1-worker run then give a makespan estimate for more workers (longest-task-first
list scheduling of the measured durations), and, scaled by area, for Zhejiang's 90 units.

Run: ``.venv/bin/python benchmarks/bench_batch.py --out /tmp/qyx-bench-batch [--workers 1 2]
[--json results.json]``.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

#: 宁波市's county-level units, NBS 2023 (china-division 2.7.0, ningbo_areas_2023.csv).
NINGBO = {"330203": "海曙区", "330205": "江北区", "330206": "北仑区", "330211": "镇海区",
          "330212": "鄞州区", "330213": "奉化区", "330225": "象山县", "330226": "宁海县",
          "330281": "余姚市", "330282": "慈溪市"}


def _load() -> float:
    return os.getloadavg()[0]


def makespan(durations: list[float], workers: int) -> float:
    """Longest-processing-time-first list scheduling: the batch's wall time on ``workers``."""
    finish = [0.0] * workers
    heapq.heapify(finish)
    for d in sorted(durations, reverse=True):
        heapq.heappush(finish, heapq.heappop(finish) + d)
    return max(finish)


def _areas_km2(packs: list[Path]) -> dict[str, float]:
    import geopandas as gpd

    from qyx_geo.region import resolve_region

    out = {}
    for pack in packs:
        region = resolve_region(pack)
        outline = gpd.read_file(region.path("outline")).to_crs(region.crs)
        out[pack.name] = float(outline.area.sum() / 1e6)
    return out


def _nodes(out_dir: Path, rid: str) -> int | None:
    try:
        record = json.loads((out_dir / "regions" / rid / "run.json").read_text("utf-8"))
        return int(record["data"]["network"]["nodes"])
    except (OSError, KeyError, TypeError, ValueError):
        return None


def _warm() -> None:
    import qyx_geo.audit
    import qyx_geo.maps
    import qyx_geo.pipeline  # noqa: F401


def _run(packs: list[Path], out: Path, workers: int, *, year: int) -> dict[str, Any]:
    from qyx_geo.batch import local_client, run_batch

    t0 = time.perf_counter()
    load0 = _load()
    with local_client(workers=workers, memory_limit="auto") as client:
        # the libraries are imported on every worker before the clock starts (cluster start)
        client.run(_warm)
        started = time.perf_counter() - t0
        t1 = time.perf_counter()
        result = run_batch(packs, out, client=client, year=year, force=True)
        wall = time.perf_counter() - t1
    peak: dict[str, float] = {}
    for o in result.outcomes:
        if o.worker and o.peak_rss_mb:
            peak[o.worker] = max(peak.get(o.worker, 0.0), o.peak_rss_mb)
    return {"workers": workers, "wall_s": round(wall, 1), "cluster_start_s": round(started, 1),
            "load_before": round(load0, 2), "load_after": round(_load(), 2),
            "failed": [(o.region_id, o.error) for o in result.failed],
            "cpu_s": round(sum(o.cpu_seconds or 0.0 for o in result.outcomes), 1),
            "regions": {o.region_id: {"status": o.status, "seconds": round(o.seconds, 1),
                                      "cpu_s": round(o.cpu_seconds or 0.0, 1),
                                      "peak_rss_mb": o.peak_rss_mb, "worker": o.worker,
                                      "nodes": _nodes(out, o.region_id)}
                        for o in result.outcomes},
            "peak_rss_mb_per_worker": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--prepare-workers", type=int, default=2)
    parser.add_argument("--population", type=int, default=1_000_000)
    parser.add_argument("--codes", default=",".join(NINGBO))
    parser.add_argument("--year", type=int, default=2027)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from qyx_geo.batch import InitSpec, run_batch

    codes = [c.strip() for c in args.codes.split(",") if c.strip()]
    prep = args.out / "prepare"
    pops = {c: InitSpec(code=c, population=args.population,
                        source="benchmark workload parameter (not a census figure)")
            for c in codes}
    print(f"prepare: {len(codes)} packs, {args.prepare_workers} workers, load {_load():.1f}",
          flush=True)
    t0 = time.perf_counter()
    from qyx_geo.batch import local_client

    with local_client(workers=args.prepare_workers) as client:
        first = run_batch(codes, prep, client=client, year=args.year, populations=pops)
    prepare_s = time.perf_counter() - t0
    packs = [Path(o.pack) for o in first.outcomes if o.status != "failed"]
    print(f"prepare: {prepare_s:.0f} s; failed {[(o.region_id, o.error) for o in first.failed]}",
          flush=True)
    areas = _areas_km2(packs)
    runs = []
    for w in args.workers:
        print(f"run: {w} worker(s), load {_load():.1f}", flush=True)
        runs.append(_run(packs, args.out / f"run-{w}", w, year=args.year))
        print(json.dumps({k: v for k, v in runs[-1].items() if k != "regions"}), flush=True)
    base = runs[0]
    for r in runs:
        r["speedup_vs_first"] = round(base["wall_s"] / r["wall_s"], 2)
    durations = [v["seconds"] for v in base["regions"].values() if v["status"] == "done"]
    total_area = sum(areas.values())
    per_km2 = sum(durations) / total_area if total_area else float("nan")
    zhejiang_km2 = 105_500  # land area of Zhejiang (浙江省情: 10.55万平方公里)
    estimate = {
        f"{w}_workers_lpt_s": round(makespan(durations, w), 1) for w in (1, 2, 4, 8, 16)}
    estimate["zhejiang_90_single_worker_s"] = round(per_km2 * zhejiang_km2, 0)
    for w in (2, 16, 64):
        scaled = [d * zhejiang_km2 / total_area for d in durations]  # 10 → province, by area
        # 90 tasks: the 10 measured durations, each standing for 9 counties of its size
        ninety = [d / 9 for d in scaled for _ in range(9)]
        estimate[f"zhejiang_90_{w}_workers_lpt_s"] = round(makespan(ninety, w), 0)
    report = {"python": platform.python_version(), "cpus": os.cpu_count(),
              "codes": codes, "population_per_county": args.population,
              "prepare_s": round(prepare_s, 1), "area_km2": {k: round(v, 1)
                                                             for k, v in areas.items()},
              "runs": runs, "estimates": estimate}
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
