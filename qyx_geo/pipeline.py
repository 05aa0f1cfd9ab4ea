"""One audit from a loaded dataset to its written outputs, as `qyx audit` and `qyx batch` run it.

:func:`audit_to_folder` takes a :class:`~qyx_geo.dataset.Dataset`, finds its street network
(engine arrays and main roads cached per network file version), runs
:func:`qyx_geo.audit.run_audit`, draws the maps (optional) and writes every output with
:func:`qyx_geo.report.write_report` as one all-or-nothing set. It prints nothing: progress goes
to an optional ``progress(label)`` callback, so the CLI draws a bar and a batch worker stays quiet.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qyx_geo import _paths
from qyx_geo._errors import SettingsError
from qyx_geo._fork import Background, Gathered, Pending

if TYPE_CHECKING:
    import geopandas as gpd

    from qyx_geo.audit import AuditResult
    from qyx_geo.settings import Settings

__all__ = ["AuditRun", "audit_to_folder", "dataset_network", "grid_link", "network_source"]

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


def dataset_crs(dataset: Any, crs: str | None = None) -> str | None:
    """Return the metric CRS to load the network in.

    ``crs`` if given, else the region pack's, else ``None`` (the local one for the network,
    :func:`qyx_geo.crs.metric_crs_for`; also for the embedded pack, whose CRS is that one).
    """
    if crs:
        return crs
    region = getattr(dataset, "region", None)
    if region is None or getattr(region, "embedded", False):
        # the embedded pack's CRS is its network's local one (EPSG:4549, tested): asking for
        # none shares the caches of every other caller of load_network("default")
        return None
    return getattr(region, "crs", None) or None


def dataset_network(dataset: Any, network: str | os.PathLike[str] | None = None, *,
                    need_roads: bool, crs: str | None = None) -> tuple[Any, Any]:
    """Return (engine arrays or graph, main roads or graph or ``None``) for the audit and maps.

    Engine arrays and main roads are cached per network file content and CRS
    (:mod:`qyx_geo._cache`), so a repeated audit does not rebuild the graph at all. ``crs``
    overrides the region's CRS (:func:`dataset_crs`).
    """
    from qyx_geo.audit import network_arrays, network_cache_key

    crs = dataset_crs(dataset, crs)
    source = network_source(dataset, network)
    if source is None:  # no network file: the dataset loads (and explains) its own
        own = dataset.load_network(**({"crs": crs} if crs else {}))
        return own, own if need_roads else None
    from qyx_geo.network import load_network

    # one load serves the arrays and the roads when neither is cached
    graph = functools.cache(lambda: load_network(source, crs=crs))
    net = network_arrays(source, crs=crs, graph=graph)
    if not need_roads:
        return net, None
    try:
        from qyx_geo.maps import main_roads
    except ImportError:
        return net, None
    from qyx_geo import _cache

    key = _cache.cache_key("roads", {"network": network_cache_key(source, crs=crs)})
    roads = _cache.get_or_build(
        "roads", Path(source).name, key,
        build=lambda: main_roads(graph()),
        encode=_cache.frame_to_arrays, decode=_cache.frame_from_arrays)
    return net, roads


def grid_link(net: Any, source: str | os.PathLike[str] | None, settings: Settings) -> Any:
    """Return the street links of the surface grid, cached per network file content and grid.

    Cached through :mod:`qyx_geo._cache` (``cache_dir()/grid_link``, plain arrays, no pickle;
    keyed by the network's content key, the cell size and the snap limit; a damaged entry is
    rebuilt); a network without a file (``source=None``) is linked afresh.
    """
    import numpy as np

    from qyx_geo import _cache
    from qyx_geo.audit import network_cache_key
    from qyx_geo.surfaces import GridLink, link_grid

    cell, snap = settings.surface_cell_m, settings.max_snap_m
    if source is None:
        return link_grid(net, cell_m=cell, max_snap_m=snap)

    def decode(arrays: dict[str, Any]) -> GridLink:
        link = GridLink.from_arrays(arrays)
        if link.n_edges != net.n_edges:
            msg = f"grid link of {link.n_edges} edges for a network of {net.n_edges}"
            raise ValueError(msg)
        return link

    key = _cache.cache_key("grid_link", {"network": network_cache_key(source, crs=net.crs),
                                         "cell_m": cell,
                                         "max_snap_m": snap})
    return _cache.get_or_build(
        "grid_link", Path(source).name, key,
        build=lambda: link_grid(net, cell_m=cell, max_snap_m=snap),
        encode=lambda link: {k: np.asarray(v) for k, v in link.arrays().items()}, decode=decode)


def _provenance(result: AuditResult, facilities: Any, *, own_network: bool) -> Any:
    """Return ``real``, ``synthetic`` or ``mixed`` for a surface from these facilities."""
    prov = getattr(result.dataset, "provenance", {}) or {}
    network = "real" if own_network else str(prov.get("network", {}).get("status", "real"))
    sources = set() if facilities is None or "source" not in facilities else set(
        facilities["source"].astype(str))
    kinds = {network, *("synthetic" if s == "synthetic" else "real" for s in sources)}
    return kinds.pop() if len(kinds) == 1 else "mixed"


def _maps_writer(result: AuditResult, roads: Any, advance: Callable[[str], None],
                 timings: dict[str, float], *, with_isochrones: bool = True,
                 method: str = "surface", source: str | os.PathLike[str] | None = None,
                 own_network: bool = False,
                 paper: str | None = None, parallel: bool | None = None,
                 ) -> Callable[[Path], Gathered[list[Path]]] | None:
    try:
        from qyx_geo import maps
        from qyx_geo.isochrones import isochrones
        from qyx_geo.surface_io import write_geotiff
        from qyx_geo.surfaces import surface_isochrones, travel_time_surface
    except ImportError as err:  # maps are optional: tables still get written
        logger.warning("maps skipped: %s", err)
        return None

    codes = result.township_codes or ()
    township = codes[0] if len(codes) == 1 else None  # one township audited: maps zoom to it

    def write(folder: Path) -> Gathered[list[Path]]:
        start = time.perf_counter()
        iso = {}
        surfaces = {}
        net = result.net
        link = grid_link(net, source, result.settings) if net is not None else None
        timings["grid_link"] = time.perf_counter() - start
        for sid, audit in result.services.items():
            advance(f"可达面 surface {sid}")
            layer = audit.facilities
            if net is None or link is None or layer is None:
                continue
            tiers = sorted({*(t for t in audit.service.tiers_minutes
                              if t <= audit.threshold_minutes), audit.threshold_minutes})
            mode: Any = audit.mode
            surfaces[sid] = travel_time_surface(net, layer, cutoff_minutes=tiers[-1],
                                                settings=result.settings, mode=mode, link=link,
                                                attrs={"service": sid, "mode": audit.mode})
            if not with_isochrones:
                continue
            if method == "exact":
                iso[sid] = isochrones(net, layer, minutes=tiers, settings=result.settings,
                                      mode=mode, method="exact")
            elif township is not None:  # county maps draw the surface itself
                iso[sid] = surface_isochrones(surfaces[sid], minutes=tiers)
        timings["isochrones"] = time.perf_counter() - start
        advance("地图 maps")
        drawn = surfaces if with_isochrones and method != "exact" else {}

        # --print: the print maps (~2 s each) are split between the maps child and a second one
        sheets = ["overview", *result.services] if paper is not None and net is not None else []
        prints_a, prints_b = sheets[0::2], sheets[1::2]

        def print_maps(parts: list[str]) -> list[Path]:
            from qyx_geo.maps.printing import write_print_maps

            assert net is not None
            return write_print_maps(result, folder / "print", crs=net.crs, surfaces=drawn,
                                    roads=roads if hasattr(roads, "geometry") else None,
                                    paper=paper,  # type: ignore[arg-type]
                                    township=township, parts=parts)

        def draw() -> dict[str, Any]:
            # in a forked child where possible (qyx_geo._fork): files on disk, JSON back
            clock = time.perf_counter()
            spent: dict[str, float] = {}
            html = maps.write_audit_maps(
                result, folder, isochrones=iso if with_isochrones else False, roads=roads,
                township=township, surfaces=drawn)
            spent["maps"] = time.perf_counter() - clock
            prints: list[Path] = []
            if prints_a:
                clock = time.perf_counter()
                prints = print_maps(prints_a)
                spent["print_maps"] = time.perf_counter() - clock
            return {"maps": [str(p) for p in html], "print": [str(p) for p in prints],
                    "timings_s": spent}

        def draw_prints() -> dict[str, Any]:
            clock = time.perf_counter()
            prints = print_maps(prints_b)
            return {"maps": [], "print": [str(p) for p in prints],
                    "timings_s": {"print_maps": time.perf_counter() - clock}}

        jobs: list[Pending[Any]] = [Background(draw, parallel=parallel)]
        tiffs: list[Path] = []
        try:
            if prints_b:
                jobs.append(Background(draw_prints, parallel=parallel))
            # the parent writes the GeoTIFFs (GDAL's deflate) while the children draw
            clock = time.perf_counter()
            for sid, surface in surfaces.items():
                tiffs.append(write_geotiff(
                    surface, folder / "surfaces" / f"{sid}.tif",
                    provenance=_provenance(result, result.services[sid].facilities,
                                           own_network=own_network)))
            timings["geotiff"] = time.perf_counter() - clock
        except BaseException:
            for job in jobs:
                job.close()
            raise
        return Gathered(jobs, finish=lambda values: finish(values, tiffs))

    def finish(values: list[dict[str, Any]], tiffs: list[Path]) -> list[Path]:
        for value in values:  # the children ran side by side: a step takes its longest part
            for step, seconds in value["timings_s"].items():
                timings[step] = max(seconds, timings.get(step, 0.0))
        return [*map(Path, values[0]["maps"]), *tiffs,
                *(Path(p) for value in values for p in value["print"])]

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
    isochrone_method: str = "surface",
    print_paper: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    timings_s: Mapping[str, float] | None = None,
    progress: Callable[[str], None] | None = None,
    plan: Any = "default",
    standards: Iterable[Any] = (),
    standard_unit_kinds: Mapping[str, Iterable[str]] | None = None,
    crs: str | None = None,
    parallel: bool | None = None,
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
        Draw the HTML maps (and write each service's travel-time surface as a GeoTIFF,
        ``maps/surfaces/<service>.tif``); with isochrone layers.
    isochrone_method
        ``"surface"`` (contours of the travel-time surfaces, about a second per service) or
        ``"exact"`` (street bands, tens of seconds per service county-wide).
    print_paper
        ``"A4"`` or ``"A3"``: also write every map as PNG and PDF for print
        (``maps/print/<map>_<paper>.png|pdf``, a few seconds per map); ``None``: none.
    parameters
        Extra run parameters for ``run.json`` (the command line, the batch key, …).
    timings_s
        Timings measured before (e.g. ``load_dataset``), recorded in ``run.json``.
    progress
        Called with a short label before each step.
    plan
        As for :func:`qyx_geo.audit.run_audit`: ``"default"`` (the embedded plan), a plan file,
        a :class:`~qyx_geo.plan.Plan`, or ``None`` (no plan: scored and ranked, no verdicts).
    standards, standard_unit_kinds
        As for :func:`qyx_geo.audit.run_audit`: standards to score every unit against.
    crs
        Projected CRS for all metric work (snapping, surfaces, isochrones); default the region
        pack's, else the local one for the network (:func:`dataset_crs`).
    parallel
        Draw the HTML (and print) maps in a forked child process while this one writes the
        GeoTIFFs and tables (:mod:`qyx_geo._fork`): ``None`` where that is safe (Linux, two or
        more cores, no other Python thread), ``False`` never. The outputs are the same.

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
    net, roads = dataset_network(dataset, network, need_roads=maps, crs=crs)
    timings["load_network"] = time.perf_counter() - t0
    result = run_audit(dataset, year=year, services=services, settings=settings,
                       facilities=facilities, network=net, townships=townships,
                       progress=lambda step, _done, _total: advance(f"体检 {step}"),
                       plan=plan, standards=standards,
                       standard_unit_kinds=standard_unit_kinds)
    if isochrone_method not in ("surface", "exact"):
        msg = f"isochrone_method must be 'surface' or 'exact', got {isochrone_method!r}."
        raise SettingsError(msg)
    writer = _maps_writer(result, roads, advance, timings, with_isochrones=isochrones,
                          method=isochrone_method, source=network_source(dataset, network),
                          own_network=network is not None,
                          paper=print_paper, parallel=parallel) if maps else None
    advance("写出 write")
    t0 = time.perf_counter()
    # the same dict: the maps writer adds its timings before run.json is rendered
    written = write_report(result, out_dir, parameters={**(parameters or {}),
                                                        "maps": writer is not None},
                           timings_s=timings, maps_writer=writer)
    timings["write"] = time.perf_counter() - t0
    return AuditRun(result=result, written=written, timings_s=timings)
