"""``qyx facilities import``: bring a department's facility register into qyx_geo.

Writes the normalised layer (GeoJSON, WGS84) and the intake report (CSV with BOM, XLSX, JSON)
into ``--out``; every input row is accounted for there. The layer can then be audited with
``qyx audit --facilities SERVICE=FILE``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from qyx_geo._errors import SettingsError
from qyx_geo.cli import help_only
from qyx_geo.services import service_ids

__all__ = ["parse_columns", "parse_sheet", "register"]

_CRS_CHOICES = ("wgs84", "gcj02", "bd09", "cgcs2000", "epsg4549")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``facilities`` sub-command and its ``import`` action."""
    p = sub.add_parser(
        "facilities",
        help="设施台账导入 / import facility registers",
        description="设施台账(Excel/CSV/GeoJSON/GPKG)导入与规范化。 Facility registers: import "
                    "and normalise departments' spreadsheets.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="导入台账,输出规范图层与逐行报告 / import a register: normalised layer + report",
        description="读取台账,识别中英文表头,换算坐标(WGS84/GCJ-02/BD-09/CGCS2000)到 WGS84,"
                    "纠正经纬度互换,匹配镇街与村社代码,逐行给出接受/修改后接受/拒绝及原因。 "
                    "Reads a register, recognises Chinese/English headers, converts coordinates to "
                    "WGS84, fixes swapped lat/lon, matches townships and villages to official "
                    "codes, and reports every row as accepted, accepted-with-changes or rejected.",
    )
    imp.add_argument("file", type=Path, metavar="FILE",
                     help="台账文件 / register (.xlsx, .csv, .geojson, .gpkg)")
    imp.add_argument("--layer", required=True, choices=service_ids(),
                     help="设施图层 / facility layer")
    imp.add_argument("--crs", default="wgs84", type=_crs_name, metavar="CRS",
                     help="坐标系 / coordinate system: wgs84 (GPS), gcj02 (高德/腾讯), "
                          "bd09 (百度), cgcs2000 (EPSG:4490), epsg4549 (CGCS2000 3° GK 120°E) "
                          "(default wgs84)")
    imp.add_argument("--columns", type=parse_columns, default=None, metavar="HEADER=FIELD,...",
                     help="指定表头对应字段 / map headers to fields, e.g. "
                          "站点名=name,东经=lon,北纬=lat (fields: id, name, lon, lat, lonlat, "
                          "address, township, village, capacity, level)")
    imp.add_argument("--fallback", choices=("village-centre",), default=None,
                     help="仅有地址的行放在所属村社中心并标记 / place address-only rows at their "
                          "village's centre, flagged (default: reject them)")
    imp.add_argument("--sheet", default=None, type=parse_sheet, metavar="NAME|INDEX",
                     help="Excel 工作表名或从 0 起的序号(多个工作表有数据时必填)/ worksheet name "
                          "or 0-based index (needed when several sheets hold registers)")
    imp.add_argument("--layer-name", default=None, metavar="NAME",
                     help="GeoPackage 图层名(文件有多个图层时必填)/ layer of a GeoPackage "
                          "(needed when the file has several layers)")
    imp.add_argument("--duplicates", choices=("reject", "keep"), default="reject",
                     help="重复行(同编号,或同名且相距 50 m 内)拒绝或保留 / reject or keep "
                          "duplicate rows (default reject; reported either way)")
    imp.add_argument("--check-network", action="store_true",
                     help="用路网检查坐标系偏移(需加载内置路网,较慢)/ check for a coordinate "
                          "shift against the street network (loads the embedded network)")
    imp.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="输出目录 / output folder")
    imp.set_defaults(func=_run_import)
    osm = actions.add_parser(
        "from-osm",
        help="从 OSM 数据提取设施图层,逐对象报告 / facilities from an OSM extract, with a "
             "per-object report",
        description="按图层标签表(见 docs/intake.md)从 OSM 数据(.osm/.osm.bz2/.osm.pbf)提取设施:"
                    "面要素取面上代表点,每个符合的对象均列入报告(接受/修改后接受/拒绝及原因,如被裁剪的"
                    "路径)。 Facilities from an OSM extract through a documented tag table per "
                    "layer; areas become a representative point; every matching object is "
                    "reported, as in `qyx facilities import`.",
    )
    osm.add_argument("file", type=Path, metavar="FILE",
                     help="OSM 数据 / OSM extract (.osm, .osm.bz2, .osm.pbf)")
    from qyx_geo.osm_features import LAYER_TAGS

    osm.add_argument("--layer", required=True, choices=tuple(LAYER_TAGS),
                     help="设施图层(有 OSM 标签表的)/ facility layer (those with an OSM tag table)")
    osm.add_argument("--duplicates", choices=("reject", "keep"), default="reject",
                     help="重复对象(同名且相距 50 m 内)拒绝或保留 / reject or keep duplicates")
    osm.add_argument("--out", type=Path, required=True, metavar="DIR",
                     help="输出目录 / output folder")
    osm.set_defaults(func=_run_from_osm)
    p.set_defaults(func=help_only(p))



def _crs_name(text: str) -> str:
    key = text.strip().lower().replace("-", "").replace("_", "").replace(":", "")
    aliases = {"gps": "wgs84", "epsg4326": "wgs84", "gaode": "gcj02", "amap": "gcj02",
               "baidu": "bd09", "epsg4490": "cgcs2000"}
    key = aliases.get(key, key)
    if key not in _CRS_CHOICES:
        msg = f"unknown coordinate system {text!r}; use one of {', '.join(_CRS_CHOICES)}"
        raise argparse.ArgumentTypeError(msg)
    return key


def parse_sheet(text: str) -> str | int:
    """Parse ``--sheet``: digits are a 0-based index, anything else a sheet name."""
    return int(text) if text.strip().isdigit() else text


def parse_columns(text: str) -> dict[str, str]:
    """Parse ``"站点名=name,东经=lon"`` into ``{"站点名": "name", "东经": "lon"}``."""
    mapping: dict[str, str] = {}
    for part in text.replace("，", ",").split(","):
        if not part.strip():
            continue
        header, sep, field = part.partition("=")
        if not sep or not header.strip() or not field.strip():
            msg = f"--columns entry {part!r} is not HEADER=FIELD, e.g. 站点名=name"
            raise argparse.ArgumentTypeError(msg)
        mapping[header.strip()] = field.strip()
    return mapping


def _run_import(args: argparse.Namespace) -> int:
    from qyx_geo.intake import import_register

    if args.out.exists() and not args.out.is_dir():
        msg = f"--out {str(args.out)!r} is a file; give a folder."
        raise SettingsError(msg)
    result = import_register(
        args.file, layer=args.layer, crs=args.crs, columns=args.columns,
        fallback="village_centre" if args.fallback else None, sheet=args.sheet,
        layer_name=args.layer_name,
        duplicates=args.duplicates, shift_check="network" if args.check_network else "auto")
    return _report(args, result)


def _run_from_osm(args: argparse.Namespace) -> int:
    from qyx_geo.intake import import_register
    from qyx_geo.osm_features import OSM_SUFFIXES, is_osm_file

    if args.out.exists() and not args.out.is_dir():
        msg = f"--out {str(args.out)!r} is a file; give a folder."
        raise SettingsError(msg)
    if not is_osm_file(args.file):
        msg = (f"{args.file.name}: not an OSM extract; use {', '.join(OSM_SUFFIXES)} (registers: "
               "`qyx facilities import`)")
        raise SettingsError(msg)
    return _report(args, import_register(args.file, layer=args.layer,
                                         duplicates=args.duplicates))


def _report(args: argparse.Namespace, result: Any) -> int:
    from qyx_geo.intake import write_intake

    paths = write_intake(result, args.out)
    c = result.counts
    print(f"{args.file.name}: {c['input']} 行 rows — 接受 accepted {c['accepted']}, "
          f"修改后接受 accepted-with-changes {c['accepted-with-changes']}, "
          f"拒绝 rejected {c['rejected']}")
    if result.encoding:
        print(f"编码 encoding: {result.encoding}")
    print(f"坐标系 crs: {result.crs}; 列 columns: "
          + ", ".join(f"{k}←{v}" for k, v in result.columns.items()))
    for warning in result.warnings:
        print(f"提示 warning: {warning}", file=sys.stderr)
    for key, path in paths.items():
        print(f"{key}: {path}")
    return 0
