"""``python -m qyx_geo.synth``: rebuild the embedded dataset's generated files, bit for bit.

Order: boundaries (outline, townships, villages) → demand points → facility layers → street
network (engineer A's :func:`qyx_geo.synth.network.build_default_network`, skipped with
``--no-network``). Each stage reads the previous stage's output through the public loaders, so
everything written is also validated.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from qyx_geo import _paths
from qyx_geo.synth import DEFAULT_SEED

__all__ = ["generate", "main"]

logger = logging.getLogger("qyx_geo.synth")


def generate(out_dir: str | os.PathLike[str] | None = None, *, seed: int = DEFAULT_SEED,
             source_dir: str | os.PathLike[str] | None = None,
             network: bool = True) -> dict[str, Path]:
    """Generate every synthetic file of the dataset into ``out_dir`` and return the paths.

    Parameters
    ----------
    out_dir
        Dataset folder to write (``boundaries/``, ``facilities/``, ``network/`` inside it);
        default: the embedded ``data/``.
    seed
        Seed of the run; the default reproduces the committed files.
    source_dir
        Dataset folder holding the real sources (``boundaries/sources``,
        ``facilities/sources``); default: the embedded ``data/``.
    network
        Also build the synthetic street network (slow: about a minute).
    """
    from qyx_geo import units as u
    from qyx_geo.synth import demand as sd
    from qyx_geo.synth import facilities as sf
    from qyx_geo.synth import more_services as sm
    from qyx_geo.synth import units as su

    out = Path(out_dir) if out_dir is not None else _paths.data_dir()
    src = Path(source_dir) if source_dir is not None else _paths.data_dir()
    written: dict[str, Path] = {}
    t0 = time.perf_counter()
    from qyx_geo.region import read_region

    region = read_region(src)  # the county's code and name come from its pack's manifest
    bounds = su.build_boundaries(su.read_sources(src / "boundaries" / "sources"), seed=seed)
    for path in su.write_boundaries(bounds, out / "boundaries", seed=seed, adcode=region.code,
                                    name=region.name_zh):
        written[path.stem] = path
    units = u.load_units(data_dir=out)
    towns = u.load_townships(data_dir=out)
    demand = sd.build_demand(units, towns, seed=seed)
    written["demand"] = sd.write_demand(demand, out / "boundaries")
    demand = u.load_demand(data_dir=out).reset_index()
    demand["lon"] = demand.geometry.x
    demand["lat"] = demand.geometry.y
    layers = sf.build_facilities(
        units, towns, demand, seed=seed,
        osm_hospitals=src / "facilities" / "sources" / "osm" / "cixi_osm_hospital.geojson")
    for path in sf.write_facilities(layers, out / "facilities", seed=seed):
        written[path.stem] = path
    more, schools = sm.build_more_facilities(
        units, towns, demand, seed=seed,
        osm_schools=src / "facilities" / "sources" / "osm" / "cixi_osm_school.geojson")
    for path in sm.write_more_facilities(more, schools, out / "facilities", seed=seed):
        written[path.stem] = path
    logger.info("boundaries, demand and facilities written in %.1f s", time.perf_counter() - t0)
    if network:
        written.update(_build_network(out, seed=seed))
    return written


def _build_network(out: Path, *, seed: int) -> dict[str, Path]:
    """Call engineer A's network generator if it is installed; return what it wrote."""
    from qyx_geo import units as u

    try:
        net = importlib.import_module("qyx_geo.synth.network")
    except ImportError:
        logger.warning("qyx_geo.synth.network is not available; street network not rebuilt")
        return {}
    build = getattr(net, "build_default_network", None)
    if build is None:
        logger.warning("qyx_geo.synth.network has no build_default_network; network skipped")
        return {}
    file_name = getattr(net, "DEFAULT_NETWORK_FILE", "cixi_walk_synthetic.osm.bz2")
    t0 = time.perf_counter()
    result = build(u.load_outline(data_dir=out), u.load_townships(data_dir=out),
                   u.load_units(data_dir=out), seed=seed, out_path=out / "network" / file_name)
    logger.info("network written in %.1f s: %s", time.perf_counter() - t0, result)
    return {"network": Path(getattr(result, "path", out / "network" / file_name))}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the generator from the command line and return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m qyx_geo.synth",
        description="重建内置数据集中的合成部分 / rebuild the synthetic parts of the embedded "
                    "dataset (village centres and areas, demand points, facilities, street "
                    "network) deterministically.")
    parser.add_argument("--out", type=Path, default=None,
                        help="输出数据目录 / dataset folder to write (default: the embedded data/)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"随机种子 / seed (default {DEFAULT_SEED}, the committed data)")
    parser.add_argument("--no-network", action="store_true",
                        help="不重建路网 / skip the street network (the slow part)")
    parser.add_argument("-q", "--quiet", action="store_true", help="只输出错误 / errors only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    written = generate(args.out, seed=args.seed, network=not args.no_network)
    if not args.quiet:
        for name, path in written.items():
            print(f"{name:16s} {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
