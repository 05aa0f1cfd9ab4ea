"""``qyx region import-units | import-population``: real data into a pack, every row reported."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register"]

_PACK_HELP = ("数据包目录(必填;内置数据包不可改,请先复制)/ the pack folder to import into "
              "(required; the embedded pack is read-only: copy it first)")


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
    u.add_argument("--region", type=Path, required=True, metavar="DIR", help=_PACK_HELP)
    u.add_argument("--crs", default=None,
                   help="文件坐标系(缺失或有误时)/ the file's system when missing or wrong: "
                        "wgs84, gcj02, cgcs2000, EPSG:n (default: detected)")
    u.add_argument("--code-column", default=None, help="代码列 / column with the official code")
    u.add_argument("--name-column", default=None, help="名称列 / column with the name")
    u.add_argument("--layer-name", default=None, help="GPKG 图层 / layer of a GeoPackage")
    u.add_argument("--licence", default=None,
                   help="数据许可或使用条件 / licence or terms of the file (recorded)")
    u.set_defaults(func=_import_units)
    p = rsub.add_parser(
        "import-population", help="导入分村人口表 / import a per-unit population table",
        description="导入分村(社区)人口表(XLSX/CSV,支持 GBK 与表头上方的标题行),含常住人口及"
                    " 0-3 岁、60 岁以上人数或占比;按代码或名称匹配,逐行报告;居民点按住宅建筑"
                    "(OSM)、人口栅格(GeoTIFF)或单元内均匀分布生成。 Imports a per-unit "
                    "population table, reports every row, and places demand points over "
                    "residential buildings, a population raster, or evenly within each unit "
                    "(the method is recorded).")
    p.add_argument("file", type=Path, help="XLSX / CSV")
    p.add_argument("--region", type=Path, required=True, metavar="DIR", help=_PACK_HELP)
    p.add_argument("--buildings", type=Path, default=None, metavar="OSM",
                   help="按住宅建筑分布(OSM 文件)/ spread over residential buildings of an OSM "
                        "extract (.osm, .osm.bz2, .osm.pbf)")
    p.add_argument("--raster", type=Path, default=None, metavar="TIF",
                   help="按人口栅格分布 / spread over a population raster (GeoTIFF, e.g. WorldPop)")
    p.add_argument("--sheet", default=None, help="XLSX 工作表 / sheet name")
    p.add_argument("--code-column", default=None, help="代码列 / code column")
    p.add_argument("--name-column", default=None, help="名称列 / name column")
    p.add_argument("--pop-column", default=None, help="常住人口列 / resident total column")
    p.add_argument("--young-column", default=None, help="0-3岁列(人数或占比)/ 0–3 column")
    p.add_argument("--old-column", default=None, help="60岁以上列(人数或占比)/ 60+ column")
    p.add_argument("--source", default=None,
                   help="数据来源 / where the table comes from (recorded in the manifest)")
    p.add_argument("--licence", default=None, help="许可或使用条件 / licence or terms")
    p.set_defaults(func=_import_population)


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
        print(f"  ✗ #{int(row['feature'])} {row['input_code']} {row['input_name']}: "
              f"{row['detail']}")
    return 0


def _import_population(args: argparse.Namespace) -> int:
    from qyx_geo.packs.population import import_population_into_pack
    from qyx_geo.region import region_dir

    result, region, report = import_population_into_pack(
        args.file, region_dir(args.region), osm=args.buildings, raster=args.raster,
        sheet=args.sheet, source=args.source, licence=args.licence,
        code_column=args.code_column, name_column=args.name_column,
        pop_column=args.pop_column, young_column=args.young_column,
        old_column=args.old_column)
    c = result.counts
    rows = int((result.report["kind"] == "row").sum())
    print(f"{region.name_zh} {region.name_en}: 导入 imported {args.file.name} "
          f"(编码 encoding {result.encoding or 'xlsx'}, 表头 header row {result.header_row})")
    print(f"  行 rows {rows}: 匹配 matched {c.get('matched', 0)}, 改名匹配 renamed "
          f"{c.get('renamed', 0)}, 重复 duplicate {c.get('duplicate', 0)}, 未匹配 unmatched "
          f"{c.get('unmatched', 0)}, 拒绝 rejected {c.get('rejected', 0)}, 合计行 total rows "
          f"{c.get('total-row', 0)}")
    print(f"  无人口单元 units without a row {c.get('no-population', 0)} (保留原居民点 keep "
          f"their previous points); 常住人口 residents {int(result.demand['pop'].sum()):,}; "
          f"居民点方法 method {result.method}")
    print(f"  报告 report: {report}")
    bad = result.report[result.report["status"].isin(["unmatched", "rejected"])]
    for _, row in bad.iterrows():
        print(f"  ✗ 第 {int(row['row'])} 行 row: {row['input_code']} {row['input_name']}: "
              f"{row['detail']}")
    return 0
