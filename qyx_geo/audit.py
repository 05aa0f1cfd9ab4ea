"""The audit: every service, every village/community, against the plan's targets for a year.

:func:`run_audit` takes a loaded :class:`qyx_geo.dataset.Dataset` and a street network (an osmnx
graph or prepared :class:`~qyx_geo.engine.NetworkArrays`), converts the network to engine arrays
once, snaps the demand points once, and reuses both for every service: one multi-source shortest
path pass per service, then :mod:`qyx_geo.coverage` scoring. It reads no files; the CLI and
notebooks load the data.

The result (:class:`AuditResult`, one :class:`ServiceAudit` per service) is the contract consumed
by :mod:`qyx_geo.report`, :mod:`qyx_geo.maps`, :mod:`qyx_geo.siting` and the notebooks.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
import shapely

from qyx_geo import _cache
from qyx_geo._errors import (
    ColumnError,
    DataFileError,
    NoTargetError,
    SettingsError,
)
from qyx_geo._served import check_network_serves, with_network_provenance
from qyx_geo._validate import township_code
from qyx_geo.checks import CheckResult, facility_checks
from qyx_geo.coverage import (
    capacity_by_unit,
    county_summary,
    coverage_gaps,
    township_table,
    unit_coverage,
    within_threshold,
)
from qyx_geo.engine import NetworkArrays, build_arrays, nearest_facility, snap_points, two_step_fca
from qyx_geo.plan import Plan, load_plan
from qyx_geo.schema import WGS84
from qyx_geo.services import Service, default_service_ids, get_service, service_ids
from qyx_geo.settings import Settings
from qyx_geo.standards import Standard, StandardAudit, load_standard, score_standard
from qyx_geo.targets import PLAN_YEARS

if TYPE_CHECKING:  # networkx is imported where a graph is built or read (issue 11)
    import networkx as nx

__all__ = [
    "DEFAULT_PLAN",
    "AuditResult",
    "ProgressCallback",
    "ServiceAudit",
    "network_arrays",
    "network_cache_key",
    "resolve_plan",
    "run_audit",
    "threshold_for",
]

log = logging.getLogger(__name__)

#: ``progress(step, done, total)`` is called before each step of :func:`run_audit`.
ProgressCallback = Callable[[str, int, int], None]

class _DatasetLike(Protocol):
    """What :func:`run_audit` needs of a :class:`qyx_geo.dataset.Dataset`."""

    @property
    def units(self) -> gpd.GeoDataFrame: ...
    @property
    def townships(self) -> gpd.GeoDataFrame: ...
    @property
    def demand(self) -> gpd.GeoDataFrame: ...
    @property
    def facilities(self) -> Mapping[str, gpd.GeoDataFrame]: ...


@dataclasses.dataclass(frozen=True)
class ServiceAudit:
    """The audit of one service (see docs/audit.md for every column).

    Attributes
    ----------
    service
        The registry entry (:class:`qyx_geo.services.Service`).
    year
        Year of the targets.
    threshold_minutes
        Travel-time threshold used.
    points
        Demand points (index ``id``, WGS84) with ``minutes``, ``dist_m``, ``facility_id``,
        ``snap_dist_m``, ``too_far`` and ``within``.
    units
        Villages/communities (index: 12-digit code, WGS84 polygons), columns
        :data:`qyx_geo.coverage.UNIT_RESULT_COLUMNS`.
    townships
        Per township (index: 9-digit code): units judged/passing, share passing, target, met,
        shortfall and rank (1 = best).
    county
        ``units_judged``, ``units_passing``, ``share_passing``, ``target`` (Target or None),
        ``met`` (None without a target), ``shortfall_units``, ``residents_within_share``,
        ``population``, ``population_within``, ``target_note`` (why there is no target),
        ``points_too_far`` and, for nurseries, ``capacity``.
    gaps
        Uncovered demand points with unit, residents and minutes to the nearest facility.
    capacity
        Nurseries: 2SFCA places per 1,000 residents per unit (``None`` for other services).
    facilities
        The facility layer the audit used (the dataset's, or an override).
    mode
        Travel mode used (``walk``, ``elderly_walk`` or ``cycle``).
    checks
        The plan's facility-based targets for this service (presence, attribute share, places
        per 1,000; :mod:`qyx_geo.checks`), by target key; empty without a plan.
    min_share
        Share of a unit's residents within the threshold for the unit to pass (the settings'
        ``min_share``; maps draw their pass mark from it).
    """

    service: Service
    year: int
    threshold_minutes: float
    points: gpd.GeoDataFrame
    units: gpd.GeoDataFrame
    townships: pd.DataFrame
    county: dict[str, Any]
    gaps: gpd.GeoDataFrame
    capacity: pd.DataFrame | None = None
    facilities: gpd.GeoDataFrame | None = None
    mode: str = "walk"
    checks: dict[str, CheckResult] = dataclasses.field(default_factory=dict)
    min_share: float = 0.8


@dataclasses.dataclass(frozen=True)
class AuditResult:
    """A whole audit: one :class:`ServiceAudit` per service, with what it ran on.

    Attributes
    ----------
    year
        Year of the targets.
    settings
        Settings used (speeds, mode, snap limit, min share, thresholds).
    services
        Service id -> :class:`ServiceAudit`, in the order audited.
    dataset
        The dataset audited (facility layers replaced by any overrides).
    timings_s
        Seconds per step: ``build_arrays``, ``snap_demand``, one per service (and
        ``<service>.capacity``), ``total``.
    net
        The engine arrays used (reuse them for isochrones, siting, further runs).
    township_codes
        Township filter applied (``None``: the whole county).
    plan
        The plan the units were judged against (``None``: audited without a plan — every unit
        scored and every township ranked, no target verdicts).
    warnings
        Things the caller asked for that the audit did not use, e.g. a per-service threshold
        for a service not audited; written to ``run.json`` and printed by the CLI.
    standards
        Standard id → :class:`~qyx_geo.standards.StandardAudit` (every unit scored against each
        tier of the standards asked for); empty when none.
    """

    year: int
    settings: Settings
    services: dict[str, ServiceAudit]
    dataset: Any
    timings_s: dict[str, float]
    net: NetworkArrays | None = None
    township_codes: tuple[str, ...] | None = None
    plan: Plan | None = None
    warnings: tuple[str, ...] = ()
    standards: dict[str, StandardAudit] = dataclasses.field(default_factory=dict)


#: ``plan=`` value of :func:`run_audit` meaning the embedded Cixi plan.
DEFAULT_PLAN = "default"
#: Why a service has no verdict when the audit runs without a plan.
NO_PLAN_NOTE = ("无规划文件,只评分排名不判定 / audited without a plan: scored and ranked, "
                "no verdicts")


def threshold_for(service: str | Service, settings: Settings | None = None, *,
                  plan: Plan | None = None) -> float:
    """Return the threshold in minutes for ``service``.

    The settings' override wins, then the ``minutes`` of the plan's coverage target for the
    service (if the plan states one), then the registry's default.
    """
    svc = get_service(service)
    settings = settings or Settings()
    if svc.id in settings.threshold_minutes:
        return float(settings.threshold_minutes[svc.id])
    spec = plan.find(svc, "coverage") if plan is not None else None
    if spec is not None and "minutes" in spec.options:
        return float(spec.options["minutes"])
    return float(svc.threshold_minutes)


def resolve_plan(plan: Plan | str | os.PathLike[str] | None) -> Plan | None:
    """Return the plan an audit is judged against.

    ``"default"`` → the embedded Cixi plan, a path → :func:`qyx_geo.plan.load_plan`, a
    :class:`Plan` as is, ``None`` → no plan.
    """
    if plan is None or isinstance(plan, Plan):
        return plan
    if isinstance(plan, str) and plan == DEFAULT_PLAN:
        return load_plan()
    if isinstance(plan, str | os.PathLike):
        return load_plan(Path(plan))
    msg = (f"plan must be a qyx_geo.plan.Plan, a plan file path, {DEFAULT_PLAN!r} or None, "
           f"got {type(plan).__name__!r}.")
    raise SettingsError(msg)


def _check_year(year: object, plan: Plan | None) -> int:
    if plan is not None:
        return plan.check_year(year)
    if isinstance(year, bool) or not isinstance(year, int) or not 1900 <= year <= 2200:
        msg = f"year must be an integer year such as {PLAN_YEARS[-1]}, got {year!r}."
        raise SettingsError(msg)
    return year


def _resolve_services(services: Iterable[str | Service] | None,
                      layers: Mapping[str, Any]) -> list[Service]:
    if services is None:
        # the registry's default services; optional ones only where the dataset has the layer
        chosen = [get_service(s) for s in default_service_ids()]
        skipped = [s.id for s in chosen if not s.required and s.id not in layers]
        if skipped:
            log.info("default services without a facility layer, not audited: %s", skipped)
        return [s for s in chosen if s.required or s.id in layers]
    if isinstance(services, str | Service):
        services = [services]
    out: list[Service] = []
    for s in services:
        svc = get_service(s)
        if svc.id not in {o.id for o in out}:
            out.append(svc)
    if not out:
        msg = f"services is empty; choose from {service_ids()!r}."
        raise SettingsError(msg)
    return out


def _resolve_townships(dataset: _DatasetLike, townships: Iterable[str] | None,
                       ) -> tuple[str, ...] | None:
    if townships is None:
        return None
    if isinstance(townships, str):
        townships = [townships]
    codes = [township_code(dataset.townships, item) for item in townships]
    if not codes:
        msg = "townships is empty; leave it out to audit the whole county."
        raise SettingsError(msg)
    return tuple(dict.fromkeys(codes))


def _resolve_network(dataset: Any, network: nx.MultiDiGraph | NetworkArrays | None,
                     ) -> tuple[NetworkArrays, bool]:
    net = network if network is not None else getattr(dataset, "network", None)
    if isinstance(net, NetworkArrays):
        return net, False
    import networkx as nx  # only for a graph: cached arrays never need it

    if isinstance(net, nx.MultiDiGraph | nx.MultiGraph | nx.DiGraph | nx.Graph):
        return build_arrays(net), True
    msg = ("run_audit needs a street network: pass network=qyx_geo.network.load_network("
           "'default') (an osmnx graph) or prepared qyx_geo.engine.build_arrays(...) arrays; got "
           f"{type(net).__name__!r}.")
    raise SettingsError(msg)


def _facility_layer(dataset: _DatasetLike, service: Service,
                    facilities: Mapping[str, gpd.GeoDataFrame] | None) -> gpd.GeoDataFrame:
    if facilities is not None and service.id in facilities:
        layer = facilities[service.id]
        where = f"facilities[{service.id!r}]"
    else:
        layers = dataset.facilities
        if service.id not in layers:
            msg = (f"The dataset has no facility layer {service.id!r} (layers: "
                   f"{sorted(layers)!r}); pass facilities={{{service.id!r}: layer}}.")
            raise ColumnError(msg)
        layer = layers[service.id]
        where = f"dataset.facilities[{service.id!r}]"
    if not isinstance(layer, gpd.GeoDataFrame):
        msg = f"{where} must be a GeoDataFrame of points, got {type(layer).__name__!r}."
        raise SettingsError(msg)
    return layer


def _target(service: Service, year: int, kind: str, plan: Plan | None,
            ) -> tuple[Any, str | None]:
    if plan is None:
        return None, NO_PLAN_NOTE
    try:
        return plan.target_for(service, year, kind=kind), None  # type: ignore[arg-type]
    except NoTargetError as err:
        return None, str(err)


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = timings.get(key, 0.0) + time.perf_counter() - start


def run_audit(
    dataset: _DatasetLike,
    *,
    year: int = PLAN_YEARS[-1],
    services: Iterable[str | Service] | None = None,
    settings: Settings | None = None,
    facilities: Mapping[str, gpd.GeoDataFrame] | None = None,
    network: nx.MultiDiGraph | NetworkArrays | None = None,
    townships: Iterable[str] | None = None,
    progress: ProgressCallback | None = None,
    plan: Plan | str | os.PathLike[str] | None = DEFAULT_PLAN,
    standards: Iterable[str | os.PathLike[str] | Standard] = (),
    standard_unit_kinds: Mapping[str, Iterable[str]] | None = None,
) -> AuditResult:
    """Audit every service for every village/community against the plan's targets for ``year``.

    Parameters
    ----------
    dataset
        A loaded :class:`qyx_geo.dataset.Dataset` (units, townships, demand, facilities).
    year
        Year of the targets, 2023–2027 (2022: the baseline, no targets).
    services
        Service ids to audit (default: all registered, in registry order).
    settings
        Speeds, mode, snap limit, ``min_share`` and per-service thresholds (default
        :class:`~qyx_geo.settings.Settings()`); the mode applies to every service.
    facilities
        Layers that replace the dataset's, by service id (user registers, what-if scenarios).
    network
        An osmnx graph projected to a metric CRS, or :class:`~qyx_geo.engine.NetworkArrays`
        (pass the arrays of a previous result, ``result.net``, to skip the conversion);
        default ``dataset.network`` if the dataset carries one.
    townships
        Township codes or names to audit (default: the whole county). Facilities in other
        townships still serve their residents, and residents of other townships still compete
        for nursery places (2SFCA), so every selected unit's row equals its row in the full
        audit. Scope figures (``county``) are over the selected units; the plain places ratio
        ``places_per_1000_total`` counts the places of facilities inside the selected townships;
        township ranks are among the selected townships.
    progress
        Called as ``progress(step, done, total)`` before each step (the CLI draws a bar).
    plan
        The plan to judge against: ``"default"`` (the dataset's region pack's plan — the
        embedded Cixi plan for the default pack; none for a pack without a plan file), a plan
        file path or a loaded :class:`~qyx_geo.plan.Plan`; ``None`` audits without a plan (every
        unit scored, every township ranked, no target verdicts).
    standards
        Standards to score every unit against, alongside (or, with ``plan=None``, instead of)
        the plan: shipped ids (``"gb50180-2018"``, ``"tdt1062-2021"``), files or
        :class:`~qyx_geo.standards.Standard` objects. Only audited services are scored; audit
        the services the standard names (``Standard.services()``).
    standard_unit_kinds
        Tier id → unit kinds judged, overriding the standard files (urban tiers judge
        社区/居委会, rural ones 村委会).

    Returns
    -------
    AuditResult

    Raises
    ------
    SettingsError
        Bad year, services, network or layer types.
    UnknownServiceError, UnknownCodeError
        Unknown service id or township.
    """
    total_start = time.perf_counter()
    if isinstance(plan, str) and plan == DEFAULT_PLAN:  # the dataset's region decides
        from qyx_geo.region import plan_source

        plan = plan_source(getattr(dataset, "region", None))
    plan_used = resolve_plan(plan)
    year = _check_year(year, plan_used)
    settings = settings or Settings()
    if not isinstance(settings, Settings):
        msg = f"settings must be a qyx_geo.settings.Settings, got {type(settings).__name__!r}."
        raise SettingsError(msg)
    svcs = _resolve_services(services, dataset.facilities)
    if facilities is not None:
        unknown = [k for k in facilities if k not in {s.id for s in svcs}]
        if unknown:
            msg = (f"facilities has layers for {unknown!r}, which are not audited "
                   f"(services: {[s.id for s in svcs]!r}).")
            raise SettingsError(msg)
    codes = _resolve_townships(dataset, townships)
    warnings = _unused_thresholds(settings, svcs)
    steps = ["network", "snap", *(s.id for s in svcs)]
    timings: dict[str, float] = {}

    def step(name: str) -> None:
        if progress is not None:
            progress(name, steps.index(name), len(steps))

    step("network")
    with _timed(timings, "build_arrays"):
        net, built = _resolve_network(dataset, network)
    if not built:
        timings["build_arrays"] = 0.0

    units = dataset.units
    demand = dataset.demand
    township_table_in = dataset.townships
    if codes is not None:
        units = units[units["township_code"].isin(codes).to_numpy()]
        demand = demand[demand["township_code"].isin(codes).to_numpy()]
        township_table_in = township_table_in.loc[list(codes)]
    if units.crs is not None and units.crs != WGS84:
        units = units.to_crs(WGS84)

    step("snap")
    with _timed(timings, "snap_demand"):
        dsnap = snap_points(net, demand, max_snap_m=settings.max_snap_m, what="demand points")
    too_far = int(dsnap["too_far"].sum())
    check_network_serves(net, demand, dsnap, what="residents", settings=settings)

    results: dict[str, ServiceAudit] = {}
    for svc in svcs:
        step(svc.id)
        with _timed(timings, svc.id):
            results[svc.id] = _audit_service(
                svc, year=year, settings=settings, net=net, demand=demand, dsnap=dsnap,
                units=units, townships=township_table_in,
                layer=_facility_layer(dataset, svc, facilities), timings=timings,
                points_too_far=too_far, plan=plan_used,
                scope=_Scope(codes, dataset.demand, dataset.units))
    timings["total"] = time.perf_counter() - total_start
    log.info("audit of %d services for %d units in %.2f s", len(svcs), len(units),
             timings["total"])
    audited = with_network_provenance(_with_layers(dataset, facilities), net)
    result = AuditResult(year=year, settings=settings, services=results, dataset=audited,
                         timings_s=timings, net=net, township_codes=codes, plan=plan_used,
                         warnings=warnings)
    stds = [s if isinstance(s, Standard) else load_standard(s)
            for s in ([standards] if isinstance(standards, str) else standards)]
    if stds:
        with _timed(timings, "standards"):
            scored = {s.id: score_standard(result, s, unit_kinds={
                k: v for k, v in (standard_unit_kinds or {}).items()
                if k in {t.id for t in s.tiers}}) for s in stds}
        result = dataclasses.replace(result, standards=scored)
    return result


def _unused_thresholds(settings: Settings, services: list[Service]) -> tuple[str, ...]:
    """Return a warning for each per-service threshold of a service not audited."""
    # Settings are shared between runs of different services (siting re-runs one service),
    # so the library warns and records it in run.json; the CLI, told explicitly, refuses it.
    audited = {s.id for s in services}
    out = []
    for sid, minutes in settings.threshold_minutes.items():
        if sid not in audited:
            text = (f"阈值未使用 / threshold not used: threshold_minutes[{sid!r}] = {minutes:g} "
                    f"but {sid!r} is not audited (services: {sorted(audited)!r}).")
            log.warning("%s", text)
            out.append(text)
    return tuple(out)


def _with_layers(dataset: Any, facilities: Mapping[str, gpd.GeoDataFrame] | None) -> Any:
    """Return the dataset with its facility layers replaced by the overrides (when possible)."""
    if not facilities:
        return dataset
    merged = {**dict(dataset.facilities), **dict(facilities)}
    if dataclasses.is_dataclass(dataset) and not isinstance(dataset, type):
        try:
            return dataclasses.replace(dataset, facilities=merged)
        except (TypeError, ValueError) as err:  # e.g. a validating __post_init__
            log.debug("dataset facilities not replaced: %s", err)
    return dataset


@dataclasses.dataclass(frozen=True)
class _Scope:
    """The township filter and the whole county's demand and units it is cut from.

    A partial audit scores only the chosen townships' units, but capacity-aware figures need
    the whole county: 2SFCA shares each facility's places among *all* residents within reach
    (across the border too), so every selected unit gets exactly its full-audit figure.
    """

    codes: tuple[str, ...] | None
    county_demand: gpd.GeoDataFrame
    county_units: gpd.GeoDataFrame

    def capacity_total(self, layer: gpd.GeoDataFrame) -> float:
        """Places of the facilities inside the scope (all of them for the whole county)."""
        places = pd.to_numeric(layer["capacity"], errors="coerce").fillna(0.0)
        if self.codes is None:
            return float(places.sum())
        if "township_code" in layer.columns:
            town = layer["township_code"].astype(object)
        else:  # a bare layer (notebooks, what-if): locate the points
            from qyx_geo.facilities import assign_unit_codes

            town = assign_unit_codes(layer, self.county_units)["township_code"]
        inside = town.astype(str).isin(self.codes).to_numpy()
        return float(places[inside].sum())


def _audit_service(
    svc: Service, *, year: int, settings: Settings, net: NetworkArrays,
    demand: gpd.GeoDataFrame, dsnap: pd.DataFrame, units: gpd.GeoDataFrame,
    townships: pd.DataFrame, layer: gpd.GeoDataFrame, timings: dict[str, float],
    points_too_far: int, plan: Plan | None, scope: _Scope,
) -> ServiceAudit:
    threshold = threshold_for(svc, settings, plan=plan)
    if svc.demand_column not in demand.columns:
        msg = (f"The demand points lack column {svc.demand_column!r} needed by service "
               f"{svc.id!r}; columns are {list(demand.columns)!r}.")
        raise ColumnError(msg)
    # Snap the layer here so facilities beyond the snap limit are reported, not just logged.
    fsnap = snap_points(net, layer, max_snap_m=settings.max_snap_m,
                        what=f"{svc.id} facilities")
    check_network_serves(net, layer, fsnap, what=f"{svc.id} facilities", settings=settings)
    times = nearest_facility(net, fsnap, dsnap, settings=settings)
    keep = [c for c in ("unit_code", "township_code", "pop", "pop_0_3", "pop_60p", "source")
            if c in demand.columns]
    points = gpd.GeoDataFrame(demand[keep].copy(), geometry=demand.geometry.copy(),
                              crs=demand.crs)
    for col in ("minutes", "dist_m", "facility_id", "snap_dist_m", "too_far"):
        points[col] = times[col].to_numpy()
    points["within"] = within_threshold(points["minutes"], threshold)
    scored = unit_coverage(points, units, demand_column=svc.demand_column,
                           threshold_minutes=threshold, min_share=settings.min_share,
                           unit_kinds=_unit_kinds(svc, plan))
    target, note = _target(svc, year, "coverage", plan)
    towns = township_table(scored, townships, target=target)
    county = county_summary(scored, target=target)
    county["target_note"] = note
    county["points_too_far"] = points_too_far
    county["facilities_too_far"] = [str(i) for i in fsnap.index[fsnap["too_far"].to_numpy()]]
    gaps = coverage_gaps(points, scored, demand_column=svc.demand_column,
                         threshold_minutes=threshold)
    capacity = None
    if svc.capacity_target is not None or (plan is not None and plan.find(svc, "capacity")):
        with _timed(timings, f"{svc.id}.capacity"):
            cap_target, cap_note = _target(svc, year, "capacity", plan)
            # competing demand: every resident in reach, inside the scope or not
            access = two_step_fca(net, layer, scope.county_demand, demand_col="pop",
                                  cutoff_minutes=threshold, settings=settings)
            capacity, cap_county = capacity_by_unit(
                access.reindex(demand.index), points, units, population_column="pop",
                capacity_total=scope.capacity_total(layer), target=cap_target)
            cap_county["target_note"] = cap_note
            county["capacity"] = cap_county
    checks = {} if plan is None else facility_checks(svc, plan, year, layer, townships, demand)
    return ServiceAudit(service=svc, year=year, threshold_minutes=threshold, points=points,
                        units=scored, townships=towns, county=county, gaps=gaps,
                        capacity=capacity, facilities=layer, mode=settings.mode, checks=checks,
                        min_share=settings.min_share)


def _unit_kinds(svc: Service, plan: Plan | None) -> tuple[str, ...] | None:
    """Return the unit kinds judged: the plan's coverage target's, else the registry's."""
    spec = plan.find(svc, "coverage") if plan is not None else None
    if spec is not None and spec.unit_kinds is not None:
        return spec.unit_kinds
    return svc.unit_kinds


# --------------------------------------------------------------------- engine-array cache

#: Bump when the cached array layout changes.
_ARRAYS_FORMAT = 3


def _network_file(source: str | os.PathLike[str]) -> Path:
    if str(source) == "default":
        from qyx_geo.network import default_network_path

        return Path(default_network_path())
    return Path(source)


def network_cache_key(source: str | os.PathLike[str] = "default", *,
                      crs: str | None = None) -> str:
    """Return the cache key of a network file's walking graph (its content, options, versions).

    This is :func:`qyx_geo.network.file_cache_key` with the walking defaults: every cache derived
    from the network (engine arrays, main roads) is keyed by it, so a changed file or package
    version invalidates them all at once.

    Raises
    ------
    DataFileError
        If the file does not exist.
    """
    from qyx_geo.network import file_cache_key

    path = _network_file(source)
    try:
        return file_cache_key(path, crs=crs)
    except OSError as err:
        msg = (f"Network file {str(path)!r} not found; generate the embedded one with "
               "`python -m qyx_geo.synth` or give an existing .osm/.osm.pbf/.graphml file.")
        raise DataFileError(msg) from err


def _encode_arrays(net: NetworkArrays) -> dict[str, np.ndarray] | None:
    geoms = net.edge_geometry
    types = shapely.get_type_id(geoms)
    if net.node_ids.dtype == object or not (types == shapely.GeometryType.LINESTRING).all():
        log.info("engine arrays not cached: node ids or edge geometries are not plain")
        return None
    _, coords, (offsets,) = shapely.to_ragged_array(geoms)
    adj = net.adjacency
    return {"crs": _cache.to_text(net.crs), "node_ids": net.node_ids, "x": net.x, "y": net.y,
            "edge_u": net.edge_u, "edge_v": net.edge_v, "edge_length_m": net.edge_length_m,
            "coords": coords, "offsets": offsets, "adj_data": adj.data,
            "adj_indices": adj.indices, "adj_indptr": adj.indptr,
            "adj_shape": np.array(adj.shape),
            "info": _cache.to_text(json.dumps(dict(net.info), ensure_ascii=False))}


def _decode_arrays(a: dict[str, np.ndarray]) -> NetworkArrays:
    geoms = shapely.from_ragged_array(shapely.GeometryType.LINESTRING, a["coords"],
                                      (a["offsets"],))
    adjacency = sp.csr_matrix((a["adj_data"], a["adj_indices"], a["adj_indptr"]),
                              shape=tuple(int(n) for n in a["adj_shape"]))
    return NetworkArrays(crs=_cache.from_text(a["crs"]), node_ids=a["node_ids"], x=a["x"],
                         y=a["y"], edge_u=a["edge_u"], edge_v=a["edge_v"],
                         edge_length_m=a["edge_length_m"], edge_geometry=geoms,
                         adjacency=adjacency,
                         info=json.loads(_cache.from_text(a["info"])) if "info" in a else {})


def network_arrays(source: str | os.PathLike[str] = "default", *,
                   cache: bool = True, crs: str | None = None,
                   graph: Callable[[], nx.MultiDiGraph] | None = None) -> NetworkArrays:
    """Return the engine arrays of a network file, cached so repeated audits skip networkx.

    On the first call the network is loaded with :func:`qyx_geo.network.load_network` (itself
    cached) and converted with :func:`qyx_geo.engine.build_arrays`; the arrays are then stored in
    ``cache_dir()/engine`` through :mod:`qyx_geo._cache` (numpy ``.npz``, no pickle), keyed by
    :func:`network_cache_key`, so a changed file or package version is never served stale and a
    damaged cache file is rebuilt with a warning.

    Parameters
    ----------
    source
        ``"default"`` (the embedded network) or a network file path.
    cache
        Read and write the arrays cache.
    crs
        Projected CRS of the network (default: the local one, see
        :func:`qyx_geo.network.load_network`); part of the cache key.
    graph
        Returns the loaded network of ``source`` with ``crs``, when the caller also needs it
        (e.g. for the main roads): called only if the arrays must be built, so one load serves
        both. Default :func:`qyx_geo.network.load_network`.
    """
    from qyx_geo.network import load_network

    loader = graph or (lambda: load_network(source, crs=crs))
    path = _network_file(source)
    key = _cache.cache_key("engine", {"network": network_cache_key(source, crs=crs)},
                           version=_ARRAYS_FORMAT)
    return _cache.get_or_build(
        "engine", path.name, key, build=lambda: build_arrays(loader()),
        encode=_encode_arrays, decode=_decode_arrays, use_cache=cache,
        meta=lambda net: {"source": str(path), "nodes": net.n_nodes, "edges": net.n_edges})
