"""How long ``write_audit_maps`` takes on README command 1's data (the 8 HTML maps), warm.

Runs ``qyx audit --year 2027`` once (embedded Cixi data; the cache should be warm) in this
process (no forked maps step) with ``qyx_geo.maps.write_audit_maps`` intercepted, then calls the
real function ``--repeat`` times on the same inputs (the audit result, roads, surfaces) into
fresh folders, and prints the wall and CPU seconds of each call, the load average and the
pages' total size. ``--profile FILE`` writes a cProfile (CPU clock) of one more call.

Run: ``QYX_CACHE_DIR=... .venv/bin/python benchmarks/bench_audit_maps.py --repeat 3``. To compare
two versions, run it with each on ``PYTHONPATH`` one after the other at the same load.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", type=Path, default=None)
    args = parser.parse_args(argv)

    from qyx_geo import maps
    from qyx_geo.cli import main as cli_main

    real = maps.write_audit_maps
    captured: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def capture(*a: Any, **kw: Any) -> list[Path]:
        captured.append((a, kw))
        return []

    from qyx_geo import _fork

    can_fork = _fork.can_fork
    maps.write_audit_maps = capture
    _fork.can_fork = lambda: False  # the maps step runs here, so its inputs are captured here
    with tempfile.TemporaryDirectory(prefix="bench-maps-") as tmp:
        try:
            code = cli_main(["audit", "--year", "2027", "--out", str(Path(tmp) / "audit")])
        finally:
            maps.write_audit_maps = real
            _fork.can_fork = can_fork
        if code != 0 or not captured:
            print(f"the audit failed (exit {code}) or wrote no maps", file=sys.stderr)
            return 1
        (result, _folder), kw = captured[0][0][:2], captured[0][1]
        print(f"load average {os.getloadavg()[0]:.2f} (1 min) at start")
        for i in range(args.repeat):
            out = Path(tmp) / f"run{i}"
            wall, cpu = time.perf_counter(), time.process_time()
            files = real(result, out, **kw)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            size = sum(f.stat().st_size for f in files) / 1e6
            print(f"run {i + 1}: {len(files)} maps, {size:.2f} MB, wall {wall:.2f} s, "
                  f"CPU {cpu:.2f} s, load {os.getloadavg()[0]:.2f}")
        if args.profile is not None:
            prof = cProfile.Profile(time.process_time)
            prof.runcall(real, result, Path(tmp) / "profiled", **kw)
            prof.dump_stats(args.profile)
            print(f"profile written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
