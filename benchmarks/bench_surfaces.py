"""Travel-time surfaces and contour isochrones at region scale: time and peak memory.

A synthetic jittered street grid of ``--side``² nodes (2,237² ≈ 5,000,000 by default, 80 m blocks,
as ``bench_engine.py``'s 1M grid), four services with different facility counts, 25 m cells:

1. ``link_grid`` once (every cell's nearest street point);
2. per service: ``travel_time_surface`` (one multi-source pass + array gathers) and the
   5/10/15-minute contours (``surface_isochrones``), and optionally the GeoTIFF.

Peak memory is the process's resident high-water mark (``VmHWM``), everything included.
Run: ``.venv/bin/python benchmarks/bench_surfaces.py [--side N] [--cell-m M] [--geotiff DIR]``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_engine import _peak_mib, as_points, facility_nodes, synthetic_grid

from qyx_geo.engine import NetworkArrays
from qyx_geo.schema import METRIC_CRS
from qyx_geo.surfaces import link_grid, surface_isochrones, travel_time_surface

#: Facilities per service per 1,000,000 nodes (Cixi: ~150-370 for 133k nodes).
SERVICES = {"nursery": 1000, "canteen": 2400, "clinic": 2400, "sports": 2400}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--side", type=int, default=2237)
    p.add_argument("--cell-m", type=float, default=25.0)
    p.add_argument("--geotiff", type=Path, default=None, help="also write the GeoTIFFs here")
    args = p.parse_args(argv)
    print(f"python {platform.python_version()}, {platform.machine()}; grid {args.side}² nodes, "
          f"{args.cell_m:g} m cells", flush=True)
    t0 = time.perf_counter()
    g = synthetic_grid(args.side)
    net = NetworkArrays.from_edges(g["x"], g["y"], g["u"], g["v"], g["length"], crs=METRIC_CRS)
    del g
    print(f"network: {net.n_nodes:,} nodes, {net.n_edges:,} edges in "
          f"{time.perf_counter() - t0:.1f} s; peak {_peak_mib():,.0f} MiB", flush=True)
    t0 = time.perf_counter()
    link = link_grid(net, cell_m=args.cell_m)
    print(f"link_grid: {link.rows:,} x {link.cols:,} cells, {link.cell.size:,} linked, "
          f"{time.perf_counter() - t0:.1f} s; peak {_peak_mib():,.0f} MiB", flush=True)
    total = time.perf_counter()
    scale = net.n_nodes / 1e6
    for k, (sid, per_million) in enumerate(SERVICES.items()):
        fac = as_points(net, facility_nodes(net, int(per_million * scale), seed=11 + k), "f")
        t0 = time.perf_counter()
        s = travel_time_surface(net, fac, cutoff_minutes=15, link=link, attrs={"service": sid})
        t1 = time.perf_counter()
        iso = surface_isochrones(s, minutes=(5, 10, 15))
        t2 = time.perf_counter()
        extra = ""
        if args.geotiff is not None:
            from qyx_geo.surface_io import write_geotiff

            path = write_geotiff(s, args.geotiff / f"{sid}.tif", provenance="synthetic")
            mib = path.stat().st_size / 2**20
            extra = f", GeoTIFF {time.perf_counter() - t2:.1f} s ({mib:.0f} MiB)"
        reached = int(np.isfinite(s.minutes).sum())
        print(f"{sid}: {len(fac):,} facilities, surface {t1 - t0:.1f} s ({reached:,} cells "
              f"reached), contours {t2 - t1:.1f} s ({iso.area.iloc[-1] / 1e6:,.0f} km² in 15 min)"
              f"{extra}; peak {_peak_mib():,.0f} MiB", flush=True)
        del s, iso
    print(f"four services: {time.perf_counter() - total:.1f} s after the link; "
          f"peak resident memory {_peak_mib():,.0f} MiB ({_peak_mib() / 1024:.1f} GiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
