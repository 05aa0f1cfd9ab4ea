"""Benchmark: README command 1's audit, cold and warm, for several versions in one run.

For each ``--ref`` (a git commit, or ``WORKTREE`` for the files as they are) the repository is
exported to a temporary folder (``git archive``) and ``qyx audit --year 2027 --out DIR`` is run
there with this interpreter (``PYTHONPATH`` pointing at the export, so the same installed
libraries serve every version):

cold   an empty cache folder (``QYX_CACHE_DIR``): the embedded network is parsed, simplified
       and cached, the engine arrays, main roads and grid link built;
warm   the same cache again, ``--warm`` times.

Each run is timed from outside: wall clock, CPU (user + system of the process and the children
it waited for, i.e. the forked maps process too) and peak RSS; the steps come from the run's
own ``run.json`` and the county map sizes from ``maps/*.html``. The load average is printed
before and after: compare versions measured in the same run, on a quiet machine.

Run: ``.venv/bin/python benchmarks/bench_readme_audit.py --ref 33b9e48 --ref WORKTREE``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
_CLI = "import sys; from qyx_geo.cli import main; sys.exit(main())"
_STEPS = ("load_network", "grid_link", "isochrones", "geotiff", "maps", "write")


def export(ref: str, into: Path) -> str:
    """Copy ``ref`` of the repository into ``into``; return its short commit (or WORKTREE)."""
    if ref == "WORKTREE":
        shutil.copytree(REPO, into, ignore=shutil.ignore_patterns(
            ".git", ".venv", "outputs", "__pycache__", "*.egg-info"))
        return "WORKTREE"
    blob = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", ref],
                          capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(into, filter="data")
    return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref],
                          capture_output=True, text=True, check=True).stdout.strip()


def run_audit(src: Path, cache: Path, out: Path) -> dict[str, Any]:
    """Run the audit once in a child process; return its measured figures."""
    env = {**os.environ, "PYTHONPATH": str(src), "QYX_CACHE_DIR": str(cache)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CLI, "audit", "--year", "2027",
                           "--out", str(out)], cwd=src, env=env, capture_output=True,
                          text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"audit failed in {src}:\n{proc.stderr[-2000:]}")
    run = json.loads((out / "run.json").read_text(encoding="utf-8"))
    sizes = [p.stat().st_size / 1e6 for p in (out / "maps").glob("*.html")]
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "peak_rss_mib": after.ru_maxrss / 1024,  # the largest child so far
        "steps_s": {k: v for k, v in run.get("timings_s", {}).items() if k in _STEPS},
        "services": len(run.get("parameters", {}).get("services", [])),
        "maps": len(sizes),
        "map_mb": (min(sizes), max(sizes)) if sizes else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", action="append", default=None,
                        help="git commit to measure, or WORKTREE (repeatable; default WORKTREE)")
    parser.add_argument("--warm", type=int, default=3, help="warm runs per version (default 3)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    refs = args.ref or ["WORKTREE"]
    print(f"load average before: {os.getloadavg()}", flush=True)
    figures: dict[str, Any] = {"load_before": os.getloadavg(), "versions": {}}
    with tempfile.TemporaryDirectory(prefix="qyx-bench-readme-") as tmp:
        for ref in refs:
            src = Path(tmp) / f"src-{len(figures['versions'])}"
            name = export(ref, src)
            cache, out = Path(tmp) / f"cache-{name}", Path(tmp) / f"out-{name}"
            runs = [{"run": "cold", **run_audit(src, cache, out)}]
            runs += [{"run": f"warm {i + 1}", **run_audit(src, cache, out)}
                     for i in range(args.warm)]
            figures["versions"][name] = runs
            for r in runs:
                steps = ", ".join(f"{k} {v:.1f}" for k, v in r["steps_s"].items())
                mb = "–" if r["map_mb"] is None else f"{r['map_mb'][0]:.2f}–{r['map_mb'][1]:.2f}"
                print(f"| {name} | {r['run']} | {r['services']} | {r['wall_s']:.1f} | "
                      f"{r['cpu_s']:.1f} | {steps} | {mb} |", flush=True)
    figures["load_after"] = os.getloadavg()
    print(f"load average after: {figures['load_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
