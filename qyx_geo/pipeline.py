"""One audit from a loaded dataset to its written outputs, as `qyx audit` and `qyx batch` run it.

:func:`audit_to_folder` takes a :class:`~qyx_geo.dataset.Dataset`, finds its street network
(engine arrays and main roads cached per network file version), runs
:func:`qyx_geo.audit.run_audit`, draws the maps (optional) and writes every output with
:func:`qyx_geo.report.write_report` as one all-or-nothing set. It prints nothing: progress goes
to an optional ``progress(label)`` callback, so the CLI draws a bar and a batch worker stays quiet.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qyx_geo import _paths

if TYPE_CHECKING:
    import geopandas as gpd

    from qyx_geo.audit import AuditResult
    from qyx_geo.settings import Settings

__all__ = ["AuditRun", "audit_to_folder", "dataset_network", "network_source"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class AuditRun:
    """What :func:`audit_to_folder` did.

    Attributes
    ----------
    result
        The audit.
    written
        Every file written (tables, summaries, ``run.json``, maps).
    timings_s
        Seconds per stage (``load_network``, ``isochrones``, ``maps``, ``write``, plus the
        ``timings_s`` passed in).
    """

    result: AuditResult
    written: list[Path]
    timings_s: dict[str, float]


def network_source(dataset: Any, network: str | os.PathLike[str] | None = None
                   ) -> str | Path | None:
    """Return the network to audit on: ``network``, else the dataset's (``"default"`` if embedded).

    ``None`` means the dataset has no network file (its ``load_network`` explains why).
    """
    if network is not None:
        return Path(network)
    path = getattr(dataset, "network_path", None)
    if path is None:
        return None
    embedded = Path(dataset.data_dir).resolve() == _paths.data_dir().resolve()
    return "default" if embedded else Path(path)


def dataset_network(dataset: Any, network: str | os.PathLike[str] | None = None, *,
                    need_roads: bool) -> tuple[Any, Any]:
    """Return (engine arrays or graph, main roads or graph or ``None``) for the audit and maps.

    Engine arrays and main roads are cached per network file content (:mod:`qyx_geo._cache`),
    so a repeated audit does not rebuild the graph at all.
    """
    from qyx_geo.audit import network_arrays, network_cache_key

    source = network_source(dataset, network)
    if source is None:  # no network file: the dataset loads (and explains) its own
        graph = dataset.load_network()
        return graph, graph if need_roads else None
    net = network_arrays(source)
    if not need_roads:
        return net, None
    try:
        from qyx_geo.maps import main_roads
    except ImportError:
        return net, None
    from qyx_geo import _cache
    from qyx_geo.network import load_network

    key = _cache.cache_key("roads", {"network": network_cache_key(source)})
    roads = _cache.get_or_build(
        "roads", Path(source).name, key, build=lambda: main_roads(load_network(source)),
        encode=_cache.frame_to_arrays, decode=_cache.frame_from_arrays)
    return net, roads


def _maps_writer(result: AuditResult, roads: Any, advance: Callable[[str], None],
                 timings: dict[str, float], *,
                 with_isochrones: bool = True) -> Callable[[Path], list[Path]] | None:
    try:
        from qyx_geo import maps
        from qyx_geo.isochrones import isochrones
    except ImportError as err:  # maps are optional: tables still get written
        logger.warning("maps skipped: %s", err)
        return None

    def write(folder: Path) -> list[Path]:
        start = time.perf_counter()
        iso = {}
        for sid, audit in result.services.items():
            advance(f"等时圈 isochrones {sid}")
            if not with_isochrones:
                continue
            tiers = [t for t in audit.service.tiers_minutes if t <= audit.threshold_minutes]
            iso[sid] = isochrones(result.net, audit.facilities,  # type: ignore[arg-type]
                                  minutes=sorted({*tiers, audit.threshold_minutes}),
                                  settings=result.settings)
        timings["isochrones"] = time.perf_counter() - start
        advance("地图 maps")
        start = time.perf_counter()
        # one township audited: the maps zoom to it
        codes = result.township_codes or ()
        files = maps.write_audit_maps(result, folder, isochrones=iso if with_isochrones else False,
                                      roads=roads, township=codes[0] if len(codes) == 1 else None)
        timings["maps"] = time.perf_counter() - start
        return list(files)

    return write


def audit_to_folder(
    dataset: Any,
    out_dir: str | os.PathLike[str],
    *,
    year: int,
    services: Iterable[str] | None = None,
    settings: Settings | None = None,
    facilities: Mapping[str, gpd.GeoDataFrame] | None = None,
    townships: Iterable[str] | None = None,
    network: str | os.PathLike[str] | None = None,
    maps: bool = True,
    isochrones: bool = True,
    parameters: Mapping[str, Any] | None = None,
    timings_s: Mapping[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    plan: Any = "default",
) -> AuditRun:
    """Audit ``dataset`` and write every output into ``out_dir`` (as ``qyx audit`` does).

    Parameters
    ----------
    dataset
        A loaded :class:`~qyx_geo.dataset.Dataset`.
    out_dir
        Output folder; the files of :func:`qyx_geo.report.write_report` and ``maps/``.
    year, services, settings, facilities, townships
        As for :func:`qyx_geo.audit.run_audit`.
    network
        A network file to audit on instead of the dataset's own.
    maps, isochrones
        Draw the HTML maps; with isochrone layers (the slowest step county-wide).
    parameters
        Extra run parameters for ``run.json`` (the command line, the batch key, …).
    timings_s
        Timings measured before (e.g. ``load_dataset``), recorded in ``run.json``.
    progress
        Called with a short label before each step.
    plan
        As for :func:`qyx_geo.audit.run_audit`: ``"default"`` (the embedded plan), a plan file,
        a :class:`~qyx_geo.plan.Plan`, or ``None`` (no plan: scored and ranked, no verdicts).

    Returns
    -------
    AuditRun
    """
    from qyx_geo.audit import run_audit
    from qyx_geo.report import write_report

    advance = progress or (lambda _label: None)
    timings: dict[str, float] = dict(timings_s or {})
    advance("路网 network")
    t0 = time.perf_counter()
    net, roads = dataset_network(dataset, network, need_roads=maps)
    timings["load_network"] = time.perf_counter() - t0
    result = run_audit(dataset, year=year, services=services, settings=settings,
                       facilities=facilities, network=net, townships=townships,
                       progress=lambda step, _done, _total: advance(f"体检 {step}"),
                       plan=plan)
    writer = _maps_writer(result, roads, advance, timings,
                          with_isochrones=isochrones) if maps else None
    advance("写出 write")
    t0 = time.perf_counter()
    # the same dict: the maps writer adds its timings before run.json is rendered
    written = write_report(result, out_dir, parameters={**(parameters or {}),
                                                        "maps": writer is not None},
                           timings_s=timings, maps_writer=writer)
    timings["write"] = time.perf_counter() - t0
    return AuditRun(result=result, written=written, timings_s=timings)
