"""``qyx region init | import-units | import-population``: build a pack and bring real data in."""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register"]


def register(rsub: Any) -> None:
    """Add the pack-building actions to ``qyx region``."""
    i = rsub.add_parser(
        "init", help="由官方代码生成数据包 / build a pack for a county-level code",
        description="为浙江省任一县级单位生成区域数据包:官方镇街与村社代码和名称(国家统计局2023)、"
                    "县界(cnmaps)、GeoNames 镇街驻地;其余(面、需求点、设施、路网)为标注的合成数据。"
                    "人口总数须由 --population 给出。 Builds a region pack for any county-level "
                    "unit of Zhejiang: official codes and names, outline, GeoNames seats; the rest "
                    "synthetic and labelled. The population total must be given.",
        epilog="示例 / example: qyx region init 330281 --out regions/yuyao --population 1254000 "
               "--population-source '余姚市第七次全国人口普查公报'")
    i.add_argument("code", help="6位县级代码 / 6-digit county-level code, e.g. 330281")
    i.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="数据包目录(新建)/ pack folder to create")
    i.add_argument("--population", type=int, default=None, metavar="N",
                   help="常住人口总数 / resident total (required; never invented)")
    i.add_argument("--population-source", default=None, metavar="TEXT",
                   help="人口数据来源 / where the total comes from (recorded in the manifest)")
    i.add_argument("--populations", type=Path, default=None, metavar="FILE",
                   help="人口表 CSV(code,population,source),按代码取本县一行 / a cited table of "
                        "county totals (the same file as `qyx batch --populations`)")
    i.add_argument("--seed", type=int, default=None, help="合成部分的随机种子 / seed")
    i.add_argument("--no-network", action="store_true",
                   help="不生成合成路网 / skip the synthetic street network")
    i.add_argument("--force", action="store_true", help="覆盖已有目录 / replace an existing pack")
    i.set_defaults(func=_init)
    for module in ("qyx_geo.cli._region_imports",):
        try:
            importlib.import_module(module).register(rsub)
        except ImportError:
            continue


def _init(args: argparse.Namespace) -> int:
    from qyx_geo.packs.init import init_region
    from qyx_geo.region import check_region
    from qyx_geo.synth import DEFAULT_SEED

    t0 = time.perf_counter()
    population, source = args.population, args.population_source
    if args.populations is not None:
        from qyx_geo._batch_regions import read_populations
        from qyx_geo._errors import SettingsError

        if population is not None:
            msg = "Give --population or --populations FILE, not both."
            raise SettingsError(msg)
        spec = read_populations(args.populations).get(str(args.code).strip())
        if spec is None:
            msg = (f"{args.populations}: no row for {args.code}; add "
                   f"'{args.code},N,SOURCE' or pass --population N.")
            raise SettingsError(msg)
        population, source = spec.population, spec.source
    region = init_region(args.code, args.out, population=population,
                         population_source=source,
                         seed=DEFAULT_SEED if args.seed is None else args.seed,
                         network=not args.no_network, overwrite=args.force)
    check = check_region(region.root)
    for err in check.errors:
        print(f"qyx region init: 错误 / error: {err}", file=sys.stderr)
    c = check.counts
    print(f"已生成 wrote {region.name_zh} {region.name_en} ({region.code}) → {region.root} "
          f"in {time.perf_counter() - t0:.1f} s")
    if c:
        print(f"  镇街 townships {c['townships']}, 村社区 units {c['units']}, 常住人口 residents "
              f"{c['residents']:,}, 需求点 demand points {c['demand_points']:,}")
    print("  ⚠ 面、需求点、设施、路网为合成数据 / areas, demand, facilities and network are "
          "synthetic; import real ones with `qyx region import-units` / `import-population`.")
    print(f"  下一步 next: qyx audit --region {region.root} --out outputs/{region.code}")
    return 2 if check.errors else 0
