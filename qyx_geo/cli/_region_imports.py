"""``qyx region import-units | import-population``: real data into a pack, every row reported."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Any

__all__ = ["register"]

_PACK_HELP = "数据包目录 / pack folder (default: the embedded pack)"


def register(rsub: Any) -> None:
    """Add the import actions to ``qyx region``."""
    u = rsub.add_parser(
        "import-units", help="导入村社区或镇街边界 / import village or township polygons",
        description="导入本地的村(社区)或镇(街道)边界(SHP、zip 压缩的 SHP、GPKG、GeoJSON;"
                    "CGCS2000 高斯-克吕格3度带(带或不带带号)、GCJ-02、WGS84),按代码或名称匹配官方"
                    "单元,逐要素报告。 Imports village/community or township polygons, matches "
                    "them to the official codes by code or name and reports every feature.")
    u.add_argument("file", type=Path, help="SHP / .zip / GPKG / GeoJSON")
    u.add_argument("--level", choices=("village", "township"), default="village",
                   help="村(社区) village 或 镇(街道) township (default village)")
    u.add_argument("--region", type=Path, default=None, metavar="DIR", help=_PACK_HELP)
    u.add_argument("--crs", default=None,
                   help="文件坐标系(缺失或有误时)/ the file's system when missing or wrong: "
                        "wgs84, gcj02, cgcs2000, EPSG:n (default: detected)")
    u.add_argument("--code-column", default=None, help="代码列 / column with the official code")
    u.add_argument("--name-column", default=None, help="名称列 / column with the name")
    u.add_argument("--layer-name", default=None, help="GPKG 图层 / layer of a GeoPackage")
    u.add_argument("--licence", default=None,
                   help="数据许可或使用条件 / licence or terms of the file (recorded)")
    u.set_defaults(func=_import_units)
    if importlib.util.find_spec("qyx_geo.packs.population") is not None:
        from qyx_geo.cli._population_cli import register_population

        register_population(rsub)


def _import_units(args: argparse.Namespace) -> int:
    from qyx_geo.packs.units_import import import_units_into_pack
    from qyx_geo.region import region_dir

    result, region, report = import_units_into_pack(
        args.file, region_dir(args.region), level=args.level, crs=args.crs,
        code_column=args.code_column, name_column=args.name_column,
        layer_name=args.layer_name, licence=args.licence)
    c = result.counts
    features = int((result.report["kind"] == "feature").sum())
    print(f"{region.name_zh} {region.name_en}: 导入 imported {args.file.name} ({args.level}); "
          f"坐标系 CRS {result.crs}")
    print(f"  要素 features {features}: 匹配 matched {c.get('matched', 0)}, 改名匹配 renamed "
          f"{c.get('renamed', 0)}, 重复并入 duplicate {c.get('duplicate', 0)}, 未匹配 unmatched "
          f"{c.get('unmatched', 0)}, 无几何 rejected {c.get('rejected', 0)}")
    print(f"  无面单元 units with no polygon {c.get('no-polygon', 0)} (保留合成面 keep synthetic); "
          f"重叠 overlaps {c.get('overlap', 0)}; 缝隙 gaps {c.get('gap', 0)}")
    print(f"  报告 report: {report}")
    bad = result.report[result.report["status"].isin(["unmatched", "rejected"])]
    for _, row in bad.iterrows():
        print(f"  ✗ #{int(row['feature'])} {row['input_code']} {row['input_name']}: {row['detail']}")
    return 0
