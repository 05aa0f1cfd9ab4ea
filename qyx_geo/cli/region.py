"""``qyx region``: region packs — check a pack (more sub-commands in later modules).

``qyx region check DIR`` reads the manifest (``region.toml``), loads every file and prints what is
real, synthetic or missing; exit 2 with the errors when the pack does not load.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from qyx_geo.cli import help_only

__all__ = ["add_region_option", "register"]

_STATUS_ZH = {"real": "真实 real", "synthetic": "合成 synthetic", "mixed": "混合 mixed",
              "missing": "缺失 missing"}


def add_region_option(p: argparse.ArgumentParser) -> None:
    """Add ``--region DIR`` (and its old alias ``--data-dir``) to a sub-command's parser."""
    p.add_argument("--region", "--data-dir", dest="region", type=Path, default=None,
                   metavar="DIR",
                   help="区域数据包目录(含 region.toml),默认内置数据包 / region pack folder "
                        "(with region.toml); default: the embedded pack (data/)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``region`` sub-command and its own sub-commands."""
    p = sub.add_parser(
        "region", help="区域数据包:检查、生成、导入 / region packs: check, init, import",
        description="区域数据包(一个县级单位的数据文件夹 + region.toml 清单)。 Region packs: a "
                    "county-level unit's data folder with its region.toml manifest.")
    rsub = p.add_subparsers(dest="region_command", metavar="ACTION")
    c = rsub.add_parser(
        "check", help="检查数据包 / validate a pack",
        description="读取清单并加载全部文件,列出真实、合成与缺失的部分;有错误时退出码 2。 Reads "
                    "the manifest, loads every file, lists what is real, synthetic or missing; "
                    "exit 2 on errors.")
    c.add_argument("dir", type=Path, nargs="?", default=None, metavar="DIR",
                   help="数据包目录 / pack folder (default: the embedded pack)")
    c.add_argument("--json", action="store_true", help="输出 JSON / print JSON")
    c.set_defaults(func=_check)
    _register_more(rsub)
    p.set_defaults(func=help_only(p))


def _register_more(rsub: Any) -> None:
    """Register the init/import actions when their module is present."""
    import importlib

    try:
        more = importlib.import_module("qyx_geo.cli._region_build")
    except ImportError:
        return
    more.register(rsub)



def _check(args: argparse.Namespace) -> int:
    from qyx_geo.region import check_region

    result = check_region(args.dir)
    if args.json:
        print(json.dumps({"root": str(result.root), "ok": result.ok,
                          "region": result.region.to_dict() if result.region else None,
                          "files": {k: dict(v) for k, v in result.files.items()},
                          "counts": dict(result.counts), "errors": list(result.errors)},
                         ensure_ascii=False, indent=2, default=str))
        return 0 if result.ok else 2
    reg = result.region
    if reg is not None:
        print(f"区域 region: {reg.name_zh} {reg.name_en} ({reg.code}), {reg.crs}, "
              f"levels {'/'.join(reg.levels)} — {result.root}")
        for key, info in result.files.items():
            status = _STATUS_ZH.get(str(info["status"]), str(info["status"]))
            where = info["path"] or "—"
            print(f"  {key:20s} {status:16s} {where}")
            if info.get("source"):
                print(f"  {'':20s} {'':16s} {info['source']}"
                      + (f" [{info['licence']}]" if info.get("licence") else ""))
    if result.counts:
        c = result.counts
        fac = ", ".join(f"{k} {v}" for k, v in c["facilities"].items())
        print(f"  镇街 townships {c['townships']}, 村社区 units {c['units']}, 常住人口 residents "
              f"{c['residents']:,} ({c['demand_points']:,} 需求点 demand points); 设施 {fac}")
    if result.errors:
        for err in result.errors:
            print(f"qyx region check: 错误 / error: {err}", file=sys.stderr)
        return 2
    print("✓ 数据包有效 / the pack is valid")
    return 0
