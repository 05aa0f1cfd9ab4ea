"""Many regions at once on dask.distributed: one task per region, failures isolated, resumable.

:func:`run_batch` audits a list of region packs as independent tasks on a
:class:`dask.distributed.Client` (a :class:`~dask.distributed.LocalCluster` of worker *processes*
by default — the audit is Python/GEOS work that holds the GIL — or any scheduler by address).
Each task (:func:`audit_region`) gets only paths and settings; the worker reads the pack itself,
builds the network, runs the audit and writes the region's outputs exactly as ``qyx audit``
does (:func:`qyx_geo.pipeline.audit_to_folder`) into ``<out>/regions/<id>/``. The task returns
small tables (units, townships, county figures) from which the client writes the merged tables,
the county ranking (季晾晒 across counties), ``summary.md`` and the overview map
(:mod:`qyx_geo._batch_merge`).

* A region whose data are bad or whose audit crashes is reported with its error; the others
  finish (:attr:`BatchResult.failed`).
* Every region's ``run.json`` records a content hash of its inputs (every file of the pack),
  the settings and the package version (:func:`region_key`); a re-run skips a region whose key
  and outputs are unchanged, so an interrupted batch resumes where it stopped.
* Peak memory (``ru_maxrss``) of the worker process is reported per region.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qyx_geo._batch_regions import (
    InitSpec,
    RegionSpec,
    find_regions,
    read_populations,
    region_id,
    region_key,
    resolve_regions,
)
from qyx_geo._errors import QyxGeoError, SettingsError
from qyx_geo.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client

__all__ = [
    "BatchOptions",
    "BatchResult",
    "InitSpec",
    "RegionOutcome",
    "RegionTask",
    "audit_region",
    "find_regions",
    "local_client",
    "read_populations",
    "region_key",
    "resolve_regions",
    "run_batch",
]

logger = logging.getLogger(__name__)

Status = Literal["done", "skipped", "failed"]

#: Files every region folder must hold for its outputs to count as complete (resume check).
_REQUIRED = ("coverage_villages.csv", "townships.csv", "summary.json", "run.json")
#: Sub-folder of the batch output with one folder per region.
REGIONS_DIR = "regions"


@dataclasses.dataclass(frozen=True)
class BatchOptions:
    """The audit settings every region of a batch is run with (small, picklable).

    Attributes
    ----------
    year
        Target year.
    services
        Service ids (``None``: all).
    settings
        Speeds, mode, thresholds, min share.
    maps, isochrones
        Draw the per-region HTML maps; with isochrone layers.
    """

    year: int
    services: tuple[str, ...] | None = None
    settings: Settings = dataclasses.field(default_factory=Settings)
    maps: bool = True
    isochrones: bool = True

    def to_dict(self) -> dict[str, Any]:
        """Return the options as JSON-ready data (what the content hash covers)."""
        return {"year": self.year, "services": list(self.services) if self.services else None,
                "settings": self.settings.to_dict(), "maps": self.maps,
                "isochrones": self.isochrones}


@dataclasses.dataclass(frozen=True)
class RegionTask:
    """One region's task: where its pack is, where its outputs go, how to audit it."""

    region_id: str
    pack: str
    out_dir: str
    options: BatchOptions
    force: bool = False
    init: InitSpec | None = None


@dataclasses.dataclass(frozen=True)
class RegionOutcome:
    """What one region's task did (returned to the client; small).

    Attributes
    ----------
    region_id, pack, out_dir
        The task's region, pack folder and output folder.
    status
        ``"done"``, ``"skipped"`` (inputs and settings unchanged since the last run) or
        ``"failed"``.
    key
        Content hash of the inputs and settings (``None`` if the pack could not be read).
    error
        ``"<ExceptionType>: <message>"`` of a failed region.
    code, name
        The region's official code and name (from its outline), if it loaded.
    seconds
        Wall time of the task on its worker.
    cpu_seconds
        CPU time of the worker process during the task (below ``seconds``: the task waited,
        e.g. for a core other processes held).
    peak_rss_mb
        Peak resident memory of the worker process so far (``ru_maxrss``).
    worker
        Address of the worker that ran it.
    units, townships
        The region's ``coverage_villages.csv`` and ``townships.csv`` as frames.
    summary
        The region's ``summary.json``.
    outline_wkb
        The region's outline (WGS84, simplified to ~50 m), for the overview map.
    """

    region_id: str
    pack: str
    out_dir: str
    status: Status
    key: str | None = None
    error: str | None = None
    code: str | None = None
    name: str | None = None
    seconds: float = 0.0
    cpu_seconds: float | None = None
    peak_rss_mb: float | None = None
    worker: str | None = None
    units: pd.DataFrame | None = None
    townships: pd.DataFrame | None = None
    summary: dict[str, Any] | None = None
    outline_wkb: bytes | None = None


# ---------------------------------------------------------------------------------- regions


def _region_outline(pack: str | os.PathLike[str]) -> tuple[Any, Any]:
    """Return (the pack's :class:`~qyx_geo.region.Region`, its outline) — cheap, no audit data."""
    from qyx_geo.region import resolve_region
    from qyx_geo.units import load_outline

    region = resolve_region(pack)
    return region, load_outline(path=region.path("outline"))


# ------------------------------------------------------------------------------- the task


def _peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows
        return None
    # ru_maxrss is in KiB on Linux
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _worker_address() -> str | None:
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return None


def _complete(out: Path, key: str) -> bool:
    """Return whether ``out`` holds a complete set of outputs made from inputs with ``key``."""
    if not all((out / name).is_file() for name in _REQUIRED):
        return False
    try:
        record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return bool(record.get("parameters", {}).get("batch_key") == key)


def _read_outputs(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    import pandas as pd

    codes = {"code": str, "township_code": str}
    units = pd.read_csv(out / "coverage_villages.csv", encoding="utf-8-sig", dtype=codes,
                        keep_default_na=False, na_values=[""]).set_index("code")
    towns = pd.read_csv(out / "townships.csv", encoding="utf-8-sig", dtype=codes,
                        keep_default_na=False, na_values=[""]).set_index("township_code")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return units, towns, summary


def _outline_wkb(outline: Any) -> bytes | None:
    import shapely

    from qyx_geo.schema import METRIC_CRS, WGS84

    try:
        geom = outline.to_crs(METRIC_CRS).simplify(50.0).to_crs(WGS84).union_all()
    except (ValueError, AttributeError):
        return None
    return bytes(shapely.to_wkb(geom))


def audit_region(task: RegionTask) -> RegionOutcome:
    """Audit one region pack and write its outputs (the task every worker runs).

    Never raises for a region's own problems: bad data, a missing network or a crash in the
    audit become a ``"failed"`` outcome carrying the error, so one region cannot stop a batch.
    """
    start, cpu = time.perf_counter(), time.process_time()
    out = Path(task.out_dir)
    base: dict[str, Any] = {"region_id": task.region_id, "pack": task.pack,
                            "out_dir": task.out_dir}
    key: str | None = None
    try:
        if task.init is not None and not Path(task.pack, "region.toml").is_file():
            _generate(task.init, Path(task.pack))
        key = region_key(task.pack, task.options)
        skipped = not task.force and _complete(out, key)
        region, outline = _region_outline(task.pack)
        if not skipped:
            _audit_pack(task, key)
        units, towns, summary = _read_outputs(out)
        status: Status = "skipped" if skipped else "done"
        logger.info("region %s %s in %.1f s", task.region_id, status,
                    time.perf_counter() - start)
        return RegionOutcome(
            **base, status=status, key=key, code=region.code, name=region.name_zh,
            seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu,
            peak_rss_mb=_peak_rss_mb(), worker=_worker_address(), units=units,
            townships=towns, summary=summary, outline_wkb=_outline_wkb(outline))
    except Exception as err:  # isolation: any failure is this region's result
        detail = "" if isinstance(err, QyxGeoError) else (
            " @ " + " <- ".join(f"{Path(f.filename).name}:{f.lineno}"
                                for f in reversed(traceback.extract_tb(err.__traceback__)[-3:])))
        logger.warning("region %s failed: %s", task.region_id, err)
        return RegionOutcome(**base, status="failed", key=key,
                             error=f"{type(err).__name__}: {err}{detail}",
                             seconds=time.perf_counter() - start,
                             cpu_seconds=time.process_time() - cpu, peak_rss_mb=_peak_rss_mb(),
                             worker=_worker_address())


def _generate(spec: InitSpec, pack: Path) -> None:
    """Generate a missing pack on the worker (``qyx region init``; written atomically)."""
    from qyx_geo.packs.init import init_region

    t0 = time.perf_counter()
    init_region(spec.code, pack, population=spec.population, population_source=spec.source)
    logger.info("generated pack %s in %.1f s", pack, time.perf_counter() - t0)


def _audit_pack(task: RegionTask, key: str) -> None:
    from qyx_geo.dataset import load_dataset
    from qyx_geo.pipeline import audit_to_folder
    from qyx_geo.region import plan_source

    t0 = time.perf_counter()
    dataset = load_dataset(region=task.pack)
    opts = task.options
    # each region is judged against its own pack's plan (none: scored and ranked, no verdicts)
    audit_to_folder(dataset, task.out_dir, year=opts.year, services=opts.services,
                    settings=opts.settings, maps=opts.maps, isochrones=opts.isochrones,
                    plan=plan_source(dataset.region),
                    parameters={"batch_key": key, "region": task.region_id,
                                "pack": task.pack},
                    timings_s={"load_dataset": time.perf_counter() - t0})


# ----------------------------------------------------------------------------- the batch


@dataclasses.dataclass(frozen=True)
class BatchResult:
    """A finished batch.

    Attributes
    ----------
    out_dir
        The batch folder.
    outcomes
        One :class:`RegionOutcome` per region, in the order given.
    counties
        The county ranking (季晾晒 across counties), one row per region that has outputs.
    written
        The merged files written (``all_units.csv``, ``counties.csv``, ``summary.md``, …).
    """

    out_dir: Path
    outcomes: tuple[RegionOutcome, ...]
    counties: pd.DataFrame
    written: tuple[Path, ...]

    @property
    def failed(self) -> list[RegionOutcome]:
        """The regions that failed, with their errors."""
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        """True when no region failed."""
        return not self.failed


@contextlib.contextmanager
def local_client(*, workers: int | None = None, memory_limit: str | float | None = "auto",
                 dashboard: bool = False) -> Iterator[Client]:
    """Start a :class:`~dask.distributed.LocalCluster` of worker processes; yield its client.

    Parameters
    ----------
    workers
        Worker processes, one thread each (default: the CPU count).
    memory_limit
        Per worker (``"4GB"``, bytes, ``"auto"`` = the machine's memory split evenly,
        ``None`` = no limit). A worker over 95 % of it is restarted by its nanny and its region
        reported as failed.
    dashboard
        Serve the dask dashboard on a free port (needs ``bokeh``); ``client.dashboard_link``.
    """
    import dask
    from distributed import Client, LocalCluster

    n = workers if workers is not None else (os.cpu_count() or 1)
    if n < 1:
        msg = f"workers must be at least 1, got {workers!r}."
        raise SettingsError(msg)
    # one task per worker thread: a worker that dies was killed by its own region (memory), which
    # would kill the next worker too, so it is reported at once, not retried on the others
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        # the scheduler's HTTP server (metrics; the dashboard if asked) on a free port, never
        # the fixed 8787 that another cluster on the machine may hold
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               memory_limit=memory_limit,
                               dashboard_address=":0" if dashboard else None,
                               scheduler_kwargs={"dashboard_address": ":0"})
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


def _tasks(regions: Sequence[RegionSpec], out: Path, options: BatchOptions, *,
           force: bool) -> list[RegionTask]:
    seen: dict[str, Path] = {}
    tasks = []
    for spec in regions:
        pack = spec.pack
        rid = region_id(pack)
        if rid in seen:
            msg = (f"Regions {str(seen[rid])!r} and {str(pack)!r} would share the output folder "
                   f"{REGIONS_DIR}/{rid}; rename one of the pack folders.")
            raise SettingsError(msg)
        seen[rid] = pack
        tasks.append(RegionTask(region_id=rid, pack=str(pack),
                                out_dir=str(out / REGIONS_DIR / rid), options=options,
                                force=force, init=spec.init))
    return tasks


def _failed(task: RegionTask, err: BaseException) -> RegionOutcome:
    name = type(err).__name__
    hint = (" (the worker died: over its memory limit, or crashed)"
            if name == "KilledWorker" else "")
    return RegionOutcome(region_id=task.region_id, pack=task.pack, out_dir=task.out_dir,
                         status="failed", error=f"{name}: {err}{hint}")


def run_batch(
    regions: Iterable[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    client: Client | None = None,
    year: int,
    services: Iterable[str] | None = None,
    settings: Settings | None = None,
    maps: bool = True,
    isochrones: bool = True,
    force: bool = False,
    workers: int | None = None,
    memory_limit: str | float | None = "auto",
    populations: Mapping[str, InitSpec] | str | os.PathLike[str] | None = None,
    on_done: Callable[[RegionOutcome], None] | None = None,
) -> BatchResult:
    """Audit many regions as dask tasks and write their outputs and the merged tables.

    Parameters
    ----------
    regions
        Pack folders, folders of packs, or 6-digit county codes: the embedded pack's, one with a
        pack in ``<out_dir>/packs/<code>``, or one in ``populations`` (its pack is generated
        there by the worker, as ``qyx region init`` does).
    out_dir
        Batch folder: ``regions/<id>/`` per region (as ``qyx audit`` writes them), plus
        ``all_units.csv``, ``all_townships.csv``, ``counties.csv``/``.xlsx``,
        ``batch.json``, ``summary.md`` and ``overview.html``.
    client
        A connected :class:`dask.distributed.Client` (e.g. ``Client("tcp://host:8786")``);
        default: a :func:`local_client` with ``workers`` and ``memory_limit``, closed after.
    year, services, settings, maps, isochrones
        The audit of every region (as ``qyx audit``).
    force
        Re-audit regions whose inputs and settings are unchanged (default: skip them).
    workers, memory_limit
        Of the local cluster (ignored with ``client``).
    populations
        Resident totals of the codes to generate: :func:`read_populations` of a
        ``code,population,source`` CSV, or the CSV's path.
    on_done
        Called on the client with each region's outcome as it finishes (progress).

    Returns
    -------
    BatchResult

    Raises
    ------
    SettingsError
        No regions, a region that is not a pack, two packs with the same folder name.
    KeyboardInterrupt
        Pending regions are cancelled; finished ones keep their outputs (a re-run resumes).
    """
    from qyx_geo._batch_merge import write_merged

    out = Path(out_dir)
    if populations is not None and not isinstance(populations, Mapping):
        populations = read_populations(populations)
    specs = resolve_regions(list(regions), packs_dir=out / "packs", populations=populations)
    if not specs:
        msg = "No regions given; pass pack folders, folders of packs or county codes."
        raise SettingsError(msg)
    options = BatchOptions(year=year, services=tuple(services) if services else None,
                           settings=settings or Settings(), maps=maps, isochrones=isochrones)
    out.mkdir(parents=True, exist_ok=True)
    tasks = _tasks(specs, out, options, force=force)
    if client is None:
        with local_client(workers=min(workers or os.cpu_count() or 1, len(tasks)),
                          memory_limit=memory_limit) as local:
            outcomes = _gather(local, tasks, on_done)
    else:
        outcomes = _gather(client, tasks, on_done)
    counties, written = write_merged(outcomes, out, options=options)
    return BatchResult(out_dir=out, outcomes=tuple(outcomes), counties=counties,
                       written=tuple(written))


def _pack_bytes(pack: str) -> int:
    """Return the size of a pack's files (a cheap proxy for its audit's run time)."""
    root = Path(pack)
    if not root.is_dir():
        return 0
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def _gather(client: Client, tasks: list[RegionTask],
            on_done: Callable[[RegionOutcome], None] | None) -> list[RegionOutcome]:
    from distributed import as_completed

    # tasks are paths and settings only: each worker reads its pack itself. Keys are new per
    # run: a key cancelled by an interrupted run may still be known to the scheduler.
    run = uuid.uuid4().hex[:8]
    # largest packs first (longest-processing-time-first): a big county started last would
    # leave the other workers idle at the end
    futures = {client.submit(audit_region, task, key=f"qyx-region-{task.region_id}-{run}",
                             pure=False, retries=0, priority=_pack_bytes(task.pack)): task
               for task in tasks}
    results: dict[str, RegionOutcome] = {}
    try:
        for future in as_completed(futures):
            task = futures[future]
            try:
                outcome = future.result()
            except Exception as err:  # a dead worker fails its region only
                outcome = _failed(task, err)
            results[task.region_id] = outcome
            if on_done is not None:
                on_done(outcome)
    except BaseException:
        client.cancel(list(futures))
        raise
    finally:
        for future in futures:
            future.release()
    return [results[t.region_id] for t in tasks]
