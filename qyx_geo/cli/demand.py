"""``qyx demand from-buildings``: residents spread over the residential buildings of OSM data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from qyx_geo._errors import SettingsError
from qyx_geo.cli import help_only

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``demand`` sub-command and its ``from-buildings`` action."""
    p = sub.add_parser(
        "demand", help="居民点:由 OSM 建筑分摊人口 / residents from OSM buildings",
        description="居民点与人口分布 / demand points (docs/demand.md).")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    fb = actions.add_parser(
        "from-buildings",
        help="按住宅建筑面积(占地×层数)分摊人口 / spread residents by residential floor area",
        description="把人口按住宅建筑面积(占地面积×层数,GOAT 方法)分摊到 OSM 建筑;无建筑处沿生活"
                    "街道均匀分布。 Residents spread over residential buildings by floor area "
                    "(footprint x building:levels, as GOAT does); evenly along residential "
                    "streets where no buildings are mapped. Method and limits: docs/demand.md.")
    fb.add_argument("file", type=Path, metavar="FILE",
                    help="OSM 数据 / OSM extract (.osm, .osm.bz2, .osm.pbf)")
    fb.add_argument("--population", type=int, required=True, metavar="N",
                    help="总人口 / residents in total")
    fb.add_argument("--units", type=Path, default=None, metavar="FILE",
                    help="村(社区)边界(GeoJSON/GPKG,含 code、township_code 列);给出时点位带上"
                         "村社代码、人口按各村住宅面积分摊 / villages/communities (code, "
                         "township_code columns): points get their codes")
    fb.add_argument("--share-0-3", type=float, default=None, metavar="SHARE",
                    help="0-3 岁占比(默认 0.030)/ share aged 0-3 (default 0.030)")
    fb.add_argument("--share-60p", type=float, default=None, metavar="SHARE",
                    help="60 岁及以上占比(默认 0.187)/ share aged 60+ (default 0.187)")
    fb.add_argument("--levels", type=float, default=1.0, metavar="N",
                    help="未标注层数的建筑按几层计(默认 1)/ storeys of unmapped buildings")
    fb.add_argument("--out", type=Path, required=True, metavar="DIR",
                    help="输出目录 / output folder")
    fb.set_defaults(func=_run)
    p.set_defaults(func=help_only(p))



def _read_units(path: Path) -> gpd.GeoDataFrame:
    import geopandas as gpd
    import pyogrio

    try:
        units = gpd.read_file(path, engine="pyogrio")
    except (OSError, pyogrio.errors.DataSourceError) as err:
        msg = f"--units {str(path)!r}: not a readable GeoJSON/GPKG ({err})"
        raise SettingsError(msg) from err
    if "code" not in units.columns:
        msg = (f"--units {str(path)!r} has no 'code' column (columns: {list(units.columns)}); "
               "give each village/community its official code")
        raise SettingsError(msg)
    return units.set_index(units["code"].astype(str))


def _run(args: argparse.Namespace) -> int:
    from qyx_geo import demand

    if args.out.exists() and not args.out.is_dir():
        msg = f"--out {str(args.out)!r} is a file; give a folder."
        raise SettingsError(msg)
    shares = {k: v for k, v in (("share_0_3", args.share_0_3), ("share_60p", args.share_60p))
              if v is not None}
    result = demand.demand_from_buildings(
        args.file, population=args.population,
        units=_read_units(args.units) if args.units else None,
        default_levels=args.levels, **shares)
    paths = demand.write_demand(result, args.out)
    c = result.counts
    methods = result.units["method"].value_counts().to_dict()
    print(f"{args.file.name}: {int(result.points['pop'].sum()):,} 人 residents on "
          f"{len(result.points):,} 点 points ({result.crs}); 建筑 buildings {c['buildings']:,}, "
          f"住宅 homes {c['homes']:,}; 方法 methods {methods}")
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0
