"""``qyx batch``: audit many regions at once on dask.distributed and rank the counties.

One task per region on a local cluster of worker processes (default) or on a running dask
scheduler (``--scheduler tcp://host:8786``); see :mod:`qyx_geo.batch`. Exit codes: 0 every region
audited (or unchanged), 3 some regions failed (listed, the others' outputs are written),
2 bad options, 130 interrupted (finished regions are kept; a re-run resumes).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qyx_geo._errors import SettingsError
from qyx_geo.cli.audit import (
    _pct,
    _split,
    add_audit_options,
    audit_options,
    sigterm_as_interrupt,
)
from qyx_geo.targets import BASELINE_YEAR, PLAN_YEARS

if TYPE_CHECKING:
    from qyx_geo.batch import RegionOutcome

__all__ = ["EXIT_SOME_FAILED", "register"]

#: Exit code when at least one region failed (the others are written).
EXIT_SOME_FAILED = 3


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the ``batch`` sub-command."""
    p = sub.add_parser(
        "batch",
        help="批量体检多个县(市、区)并排名 / audit many regions on dask and rank them",
        description="每个地区(区域数据包)一个任务,在本机的 dask 进程集群或已有的 dask 调度器上"
                    "并行体检;各地区输出与 qyx audit 相同,另写合并表、县域排名(季晾晒)、汇总与"
                    "总览地图。输入与设置未变的地区在重跑时跳过。 One dask task per region pack on "
                    "a local cluster of processes or a running scheduler; per-region outputs as "
                    "`qyx audit` writes them plus merged tables, the county ranking, summary.md "
                    "and an overview map. Unchanged regions are skipped on re-runs. Exit 3 when "
                    "some regions failed.",
        epilog="示例 / example: qyx batch --regions regions/ --out outputs/batch --workers 2; "
               "on a cluster: qyx batch --regions /shared/regions --out /shared/out "
               "--scheduler tcp://10.0.0.1:8786",
    )
    p.add_argument("--regions", required=True, metavar="DIR|CODE,...",
                   help="区域数据包目录、含多个数据包的目录或县级代码,逗号分隔 / pack folders, "
                        "a folder of packs, or county codes, comma-separated")
    p.add_argument("--out", type=Path, required=True, metavar="DIR",
                   help="输出目录 / batch output folder")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="已运行的 dask 调度器地址 / address of a running dask scheduler "
                        "(e.g. tcp://10.0.0.1:8786); default: a local cluster")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="本机工作进程数 / local worker processes (default: CPU count, at most "
                        "one per region)")
    p.add_argument("--memory-limit", default="auto", metavar="X",
                   help="每个工作进程的内存上限 / memory limit per local worker, e.g. 4GB "
                        "(default auto = memory / workers; 0 = none)")
    p.add_argument("--populations", type=Path, default=None, metavar="FILE",
                   help="县级代码的常住人口表(code,population,source),无数据包的代码据此生成 / "
                        "resident totals (CSV code,population,source) for codes without a pack: "
                        "their packs are generated into OUT/packs/ (never invented)")
    p.add_argument("--dashboard", action="store_true",
                   help="启动 dask 仪表盘并打印地址(需 bokeh)/ serve the dask dashboard "
                        "(needs bokeh) and print its address")
    p.add_argument("--force", action="store_true",
                   help="重新体检所有地区(不跳过未变的)/ re-audit unchanged regions too")
    add_audit_options(p)
    p.add_argument("--no-maps", action="store_true", help="不生成地区地图 / no per-region maps")
    p.add_argument("--no-isochrones", action="store_true",
                   help="地区地图不绘制等时圈 / per-region maps without isochrone layers")
    p.set_defaults(func=_run)


def _memory_limit(text: str) -> str | None:
    if text.strip() in ("0", "none", "None"):
        return None
    from dask.utils import parse_bytes

    if text.strip() != "auto":
        try:
            parse_bytes(text)
        except (ValueError, TypeError):
            msg = f"--memory-limit {text!r}: give a size such as 4GB or 500MiB, auto, or 0."
            raise SettingsError(msg) from None
    return text.strip()


@contextlib.contextmanager
def _client(args: argparse.Namespace, n_regions: int) -> Iterator[Any]:
    from qyx_geo.batch import local_client

    if args.scheduler:
        from distributed import Client

        try:
            client = Client(args.scheduler, timeout="20s")
        except (OSError, TimeoutError) as err:
            msg = (f"--scheduler {args.scheduler!r}: cannot connect ({err}); start one with "
                   "`dask scheduler` and workers with `dask worker ADDRESS`.")
            raise SettingsError(msg) from None
        with client:
            yield client
        return
    if args.workers is not None and args.workers < 1:
        msg = f"--workers must be at least 1, got {args.workers!r}."
        raise SettingsError(msg)
    workers = min(args.workers or os.cpu_count() or 1, n_regions)
    with local_client(workers=workers, memory_limit=_memory_limit(args.memory_limit),
                      dashboard=args.dashboard) as client:
        yield client


def _print_outcome(outcome: RegionOutcome, bar: Any) -> None:
    write = bar.write
    bar.update(1)
    if outcome.status == "failed":
        write(f"✗ {outcome.region_id}: 失败 failed — {outcome.error}")
    else:
        label = "完成 done" if outcome.status == "done" else "未变跳过 unchanged"
        write(f"✓ {outcome.region_id} {outcome.name or ''}: {label} "
              f"({outcome.seconds:.1f} s, 峰值内存 peak {outcome.peak_rss_mb or 0:.0f} MB)")


def _run(args: argparse.Namespace) -> int:
    """Run the batch; SIGTERM and Ctrl-C cancel pending regions (finished ones are kept)."""
    return sigterm_as_interrupt(_batch, args)


def _batch(args: argparse.Namespace) -> int:
    import logging

    from tqdm import tqdm

    from qyx_geo.batch import read_populations, resolve_regions, run_batch

    services, settings = audit_options(args)
    year = PLAN_YEARS[-1] if args.year is None else args.year
    if not BASELINE_YEAR <= year <= PLAN_YEARS[-1]:
        msg = (f"--year must be {PLAN_YEARS[0]}–{PLAN_YEARS[-1]} (or {BASELINE_YEAR}), "
               f"got {year!r}.")
        raise SettingsError(msg)
    import distributed  # noqa: F401  (its import sets the "distributed" logger to INFO)

    if not args.verbose:  # dask logs every scheduler/worker event at INFO on its own handler
        logging.getLogger("distributed").setLevel(logging.WARNING)
    populations = read_populations(args.populations) if args.populations else None
    specs = resolve_regions(_split(args.regions) or [], packs_dir=Path(args.out) / "packs",
                            populations=populations)
    packs = [s.pack for s in specs]
    generate = sum(s.init is not None for s in specs)
    if not packs:
        msg = "--regions: no regions given."
        raise SettingsError(msg)
    with _client(args, len(packs)) as client:
        n_workers = len(client.scheduler_info().get("workers", {}))
        where = args.scheduler or f"本机 local cluster, {n_workers} 个进程 worker processes"
        print(f"批量体检 batch: {len(packs)} 个地区 regions → {args.out} ({where})"
              + (f";{generate} 个数据包先生成 packs generated first" if generate else ""))
        if args.dashboard and importlib.util.find_spec("bokeh") is None:
            print("仪表盘需要 bokeh / the dashboard needs bokeh: pip install bokeh",
                  file=sys.stderr)
        elif client.dashboard_link and (args.dashboard or args.scheduler):
            print(f"仪表盘 dashboard: {client.dashboard_link}")
        bar = tqdm(total=len(packs), desc="地区 regions", unit="个", file=sys.stderr,
                   disable=None)
        try:
            result = run_batch(_split(args.regions) or [], args.out, client=client, year=year,
                               populations=populations,
                               services=services, settings=settings, maps=not args.no_maps,
                               isochrones=not args.no_isochrones, force=args.force,
                               on_done=lambda o: _print_outcome(o, bar))
        finally:
            bar.close()
    counts = {s: sum(o.status == s for o in result.outcomes) for s in ("done", "skipped",
                                                                           "failed")}
    print(f"完成 done {counts['done']},未变跳过 skipped {counts['skipped']},失败 failed "
          f"{counts['failed']}")
    top = result.counties.head(10)
    if not top.empty:
        print("县域综合排名 overall ranking (mean share of passing units):")
        for rid, row in top.iterrows():
            print(f"  {row['overall_rank']!s:>3} {row['region_name'] or rid} "
                  f"{_pct(row['overall_share'])}")
    print(f"已写出 wrote {len(result.written)} 个合并文件 merged files → {args.out}; "
          f"各地区 per region → {Path(args.out) / 'regions'}")
    if result.failed:
        for o in result.failed:
            print(f"失败 failed {o.region_id}: {o.error}", file=sys.stderr)
        return EXIT_SOME_FAILED
    return 0
