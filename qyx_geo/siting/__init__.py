"""Siting: where to add facilities so that the plan's targets are met.

For one service and year, :func:`propose_sites` answers either "how few new sites make the
share of passing villages/communities reach the plan's target" (set covering, the default) or
"which ``max_sites`` sites — or sites within ``budget`` — make the most units pass" (maximal
covering). Existing facilities are kept. Candidates are network nodes near the uncovered
residents of failing units (:func:`candidate_sites`), or a user list (e.g. village collective
buildings). Candidate × demand reach comes from :func:`qyx_geo.engine.catchment_matrix`; the
model (DESIGN.md, "Siting (MILP)") is solved exactly with HiGHS through
:func:`scipy.optimize.milp`, or with a fast greedy method whose gap to the exact optimum is
reported. The proposal is then *proved*: the audit is re-run with the sites added
(:func:`qyx_geo.audit.run_audit` with a facilities override) and its verdict is recorded.

See ``docs/siting.md`` for the model, the reductions, the candidate rule and the capacity rule.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import geopandas as gpd
import numpy as np
import pandas as pd
import scipy.sparse as sp
from numpy.typing import NDArray

from qyx_geo._errors import NoTargetError, SettingsError, SolverError
from qyx_geo.engine import NetworkArrays, build_arrays, catchment_matrix, snap_points
from qyx_geo.schema import WGS84
from qyx_geo.services import Service, get_service
from qyx_geo.settings import Settings
from qyx_geo.siting._model import (
    CoverageProblem,
    Objective,
    ReducedProblem,
    Solution,
    gain_order,
    reduce_problem,
    solve_greedy,
    solve_milp,
)
from qyx_geo.siting._sites import (
    CANDIDATE_RADIUS_SHARE,
    CANDIDATE_SPACING_M,
    audit_speed,
    candidate_radius,
    candidate_sites,
    facility_rows,
    locate,
    read_candidates,
    sites_layer,
    write_sites,
)

if TYPE_CHECKING:
    from qyx_geo.audit import AuditResult, ServiceAudit
    from qyx_geo.dataset import Dataset

__all__ = [
    "CANDIDATE_RADIUS_SHARE",
    "CANDIDATE_SPACING_M",
    "METHODS",
    "SITE_COLUMNS",
    "Method",
    "SitingResult",
    "candidate_sites",
    "propose_sites",
    "read_candidates",
    "sites_layer",
    "verify_sites",
    "write_sites",
]

logger = logging.getLogger(__name__)

Method = Literal["milp", "greedy"]
METHODS: tuple[str, ...] = get_args(Method)

#: Columns of :attr:`SitingResult.sites` (index ``site_id``: ``S001``, ``S002``, … in build order).
SITE_COLUMNS = ("order", "candidate_id", "lon", "lat", "unit_code", "unit_name",
                "township_code", "township_name", "residents_new", "units_passing_new",
                "population_new", "capacity", "capacity_unit", "cost", "geometry")



@dataclasses.dataclass(frozen=True)
class SitingResult:
    """A siting proposal for one service and year.

    Attributes
    ----------
    service, year, method
        What was solved and how (``"milp"`` or ``"greedy"``).
    objective_kind
        ``"min_sites"`` (fewest sites meeting the target) or ``"max_units"`` (most units passing
        within ``max_sites``/``budget``).
    sites
        Proposed sites, WGS84, index ``site_id``, columns :data:`SITE_COLUMNS`, in build order
        (``order`` 1 = largest marginal gain).
    objective, bound, gap
        The objective (sites, or units newly passing), the solver's proven bound on it and the
        relative gap between them (``None`` for greedy: see ``exact_objective``).
    exact_objective, gap_to_exact
        For greedy: the MILP objective on the same candidates and greedy's relative gap to it
        (``None`` when the comparison was not run or the MILP did not finish).
    greedy_objective
        For MILP: what greedy achieves on the same candidates (``None`` if not run).
    status
        ``"optimal"``, ``"time_limit"`` (best found within the limit), ``"heuristic"`` (greedy)
        or ``"nothing_to_do"`` (the target is met already).
    solve_time_s
        Time spent in the solver (seconds); ``timings_s`` has every stage.
    before, after
        County figures: ``units_judged``, ``units_passing``, ``share_passing``,
        ``required_units``, ``target`` (text), ``met``; ``after`` comes from the audit re-run
        with the sites added (``verified=True``) or from the model (``verified=False``).
    capacity
        Nursery only: ``rate_per_1000`` (the plan's figure for the year), places added, and the
        county's reachable places per 1,000 before and after; ``None`` for other services.
    model
        Sizes of the model before/after reduction, and the candidate rule used.
    settings
        The settings the proposal was made with.
    timings_s
        Seconds per stage (audit, candidates, catchments, reduce, solve, verify, total).
    audit_after
        The audit re-run with the sites added (``None`` unless verified); map it with
        :func:`qyx_geo.maps.service_map` plus :func:`sites_layer`.
    """

    service: Service
    year: int
    method: str
    objective_kind: Objective
    sites: gpd.GeoDataFrame
    objective: float
    bound: float | None
    gap: float | None
    status: str
    solve_time_s: float
    before: dict[str, Any]
    after: dict[str, Any]
    exact_objective: float | None
    gap_to_exact: float | None
    greedy_objective: float | None
    capacity: dict[str, Any] | None
    model: dict[str, Any]
    settings: Settings
    timings_s: dict[str, float]
    audit_after: AuditResult | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def n_sites(self) -> int:
        """Number of proposed sites."""
        return len(self.sites)

    def facilities(self) -> gpd.GeoDataFrame:
        """Return the proposed sites as a facility layer (schema ``FACILITY_COLUMNS``)."""
        return facility_rows(self.sites, self.service)

    def summary(self) -> dict[str, Any]:
        """Return a JSON-serialisable summary (no geometry)."""
        return {
            "service": self.service.id, "year": self.year, "method": self.method,
            "objective_kind": self.objective_kind, "n_sites": self.n_sites,
            "objective": self.objective, "bound": self.bound, "gap": self.gap,
            "status": self.status, "solve_time_s": round(self.solve_time_s, 3),
            "exact_objective": self.exact_objective, "gap_to_exact": self.gap_to_exact,
            "greedy_objective": self.greedy_objective, "before": _plain(self.before),
            "after": _plain(self.after), "capacity": _plain(self.capacity),
            "model": _plain(self.model), "settings": self.settings.to_dict(),
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }


def _plain(value: Any) -> Any:
    """Make numpy scalars and nested dicts JSON-friendly."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def propose_sites(
    dataset_or_audit: Dataset | AuditResult,
    *,
    service: str | Service,
    year: int | None = None,
    method: Method = "milp",
    max_sites: int | None = None,
    budget: float | None = None,
    candidates: gpd.GeoDataFrame | str | Path | None = None,
    time_limit_s: float = 60.0,
    mip_gap: float = 1e-4,
    settings: Settings | None = None,
    network: Any = None,
    compare: bool = True,
    verify: bool = True,
    candidate_radius_m: float | None = None,
    candidate_spacing_m: float = CANDIDATE_SPACING_M,
) -> SitingResult:
    """Propose new sites for ``service`` so that the plan's target for ``year`` is met.

    Without ``max_sites`` and ``budget`` this is *set covering*: the fewest new sites that make
    the share of passing (judged) units reach the target. With either it is *maximal covering*:
    the sites within the limit that make the most units pass (ties: most residents covered).

    Parameters
    ----------
    dataset_or_audit
        A :class:`~qyx_geo.dataset.Dataset`, or an :class:`~qyx_geo.audit.AuditResult` to reuse
        (its year and settings then apply unless given).
    service
        Service id (``nursery``, ``canteen``, ``clinic``, ``sports``) or a Service.
    year
        Plan year whose target applies (2023–2027); required with a Dataset.
    method
        ``"milp"`` (exact, HiGHS) or ``"greedy"`` (largest marginal gain first).
    max_sites, budget
        Limit the number of new sites, or their total ``cost`` (candidates' ``cost`` column,
        1 per site by default).
    candidates
        Candidate sites: a point GeoDataFrame or a file (CSV with ``lon``/``lat`` in WGS84, or
        GeoJSON/GeoPackage), optional columns ``name`` and ``cost``. Default: network nodes near
        the uncovered residents of failing units (:func:`candidate_sites`).
    time_limit_s, mip_gap
        HiGHS time limit in seconds and relative optimality gap at which to stop.
    settings
        Analysis settings (default: the audit's, else ``Settings()``).
    network
        The walking network (an osmnx graph or :class:`~qyx_geo.engine.NetworkArrays`); default
        the dataset's.
    compare
        Also run the other method, to report greedy's gap to the exact optimum.
    verify
        Re-run the audit with the sites added and record its verdict in ``after``.
    candidate_radius_m, candidate_spacing_m
        The default candidate rule (see :func:`candidate_sites`).

    Returns
    -------
    SitingResult

    Raises
    ------
    NoTargetError
        Set covering was asked for a service/year without a target.
    SolverError
        The target cannot be met with the candidates (the message says how many failing units
        no candidate can make pass), or HiGHS found no solution in time.
    """
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    svc = get_service(service)
    _check_options(method, time_limit_s, mip_gap, candidate_spacing_m, candidate_radius_m)
    objective: Objective = "min_sites" if max_sites is None and budget is None else "max_units"
    audit, net = _audit_and_network(dataset_or_audit, service=svc, year=year,
                                    settings=settings, network=network)
    settings = audit.settings
    sa = audit.services[svc.id]
    timings["audit"] = time.perf_counter() - t0

    points, units = sa.points, sa.units
    unit_pos = pd.Index(units.index.astype(str))
    judged = units["judged"].to_numpy(dtype=bool)
    target = sa.county.get("target")
    required = _required_units(target, int(judged.sum()), objective=objective, service=svc,
                               year=audit.year)
    speed = audit_speed(sa, settings)
    cutoff_m = float(sa.threshold_minutes) * speed

    t = time.perf_counter()
    if candidates is None:
        cands = candidate_sites(net, sa, radius_m=candidate_radius_m,
                                spacing_m=candidate_spacing_m, settings=settings)
        radius_m = candidate_radius(candidate_radius_m, cutoff_m)
        rule = {"rule": "network nodes", "radius_m": round(radius_m, 1),
                "spacing_m": candidate_spacing_m}
    else:
        cands = read_candidates(candidates)
        rule = {"rule": "user list"}
    timings["candidates"] = time.perf_counter() - t
    t = time.perf_counter()
    demand_snap = snap_points(net, points, max_snap_m=settings.max_snap_m, what="demand points")
    cover = catchment_matrix(net, cands, demand_snap, cutoff_m=cutoff_m,
                             max_snap_m=settings.max_snap_m)
    timings["catchments"] = time.perf_counter() - t

    pop = points[svc.demand_column].to_numpy(dtype=float)
    unit_idx = unit_pos.get_indexer(points["unit_code"].astype(str))
    too_far = points["too_far"].to_numpy(dtype=bool) if "too_far" in points else np.zeros(
        len(points), dtype=bool)
    covered_now = points["within"].to_numpy(dtype=bool) & ~too_far
    problem = CoverageProblem(
        cover=cover, pop=pop, unit=unit_idx,
        covered_now=covered_now, judged=judged,
        min_share=settings.min_share, required_units=required,
        passes_now=units["passes"].to_numpy(dtype=bool),
        cost=cands["cost"].to_numpy(dtype=float),
    )
    t = time.perf_counter()
    reduced = reduce_problem(problem)
    timings["reduce"] = time.perf_counter() - t
    t = time.perf_counter()
    main, other = _solve(reduced, method=method, objective=objective, max_sites=max_sites,
                         budget=budget, time_limit_s=time_limit_s, mip_gap=mip_gap,
                         compare=compare)
    timings["solve"] = time.perf_counter() - t

    sites = _sites_table(reduced, main, cands, cover, points, units, svc, year=audit.year,
                         covered_now=covered_now)
    before = _county_figures(sa, required)
    after = dict(before, units_passing=before["units_passing"] + main.units_newly_passing)
    after["share_passing"] = _share(after["units_passing"], after["units_judged"])
    after["met"] = None if target is None else bool(target.is_met(after["share_passing"]))
    after["verified"] = False
    capacity = _capacity_summary(svc, audit.year, sites, sa, None)
    result = SitingResult(
        service=svc, year=audit.year, method=main.method, objective_kind=objective, sites=sites,
        objective=main.objective, bound=main.bound, gap=main.gap, status=main.status,
        solve_time_s=main.solve_time_s, before=before, after=after,
        exact_objective=None if other is None or main.method == "milp" else other.objective,
        gap_to_exact=_gap_to_exact(main, other),
        greedy_objective=None if other is None or main.method == "greedy" else other.objective,
        capacity=capacity, model={**reduced.stats, **rule, "cutoff_m": round(cutoff_m, 1),
                                  "speed_m_per_min": round(speed, 3)},
        settings=settings, timings_s=timings,
    )
    if verify:
        t = time.perf_counter()
        rerun = verify_sites(result, audit)
        timings["verify"] = time.perf_counter() - t
        result = _with_verified(result, sa, rerun, required)
    timings["total"] = time.perf_counter() - t0
    logger.info("siting %s %d (%s, %s): %d sites, units passing %d -> %d", svc.id, audit.year,
                main.method, objective, result.n_sites, before["units_passing"],
                result.after["units_passing"])
    return result


# ---------------------------------------------------------------------------------------------
# inputs


def _check_options(method: object, time_limit_s: object, mip_gap: object, spacing_m: object,
                   radius_m: object) -> None:
    if method not in METHODS:
        msg = f"method must be one of {METHODS!r}, got {method!r}."
        raise SettingsError(msg)
    checks: tuple[tuple[str, object, float | None], ...] = (
        ("time_limit_s", time_limit_s, 0.0), ("mip_gap", mip_gap, None),
        ("candidate_spacing_m", spacing_m, 0.0), ("candidate_radius_m", radius_m, 0.0))
    for name, value, low in checks:
        if value is None and name == "candidate_radius_m":
            continue
        ok = False
        if not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value):
            number = float(value)
            ok = number > low if low is not None else 0.0 <= number < 1.0
        if not ok:
            hint = "a share in [0, 1), e.g. 1e-4" if name == "mip_gap" else "a positive number"
            msg = f"{name} must be {hint}, got {value!r}."
            raise SettingsError(msg)


def _is_audit(obj: object) -> bool:
    return hasattr(obj, "services") and hasattr(obj, "dataset") and hasattr(obj, "year")


def _audit_and_network(
    source: Any, *, service: Service, year: int | None, settings: Settings | None, network: Any,
) -> tuple[AuditResult, NetworkArrays]:
    """Return an audit that covers ``service`` and the network arrays it was made on."""
    from qyx_geo.audit import run_audit
    from qyx_geo.targets import PLAN_YEARS

    townships = None
    if _is_audit(source):
        audit = source
        if year is not None and year != audit.year:
            msg = (f"year={year!r} differs from the audit's year {audit.year!r}; pass the audit "
                   f"of {year} or the Dataset.")
            raise SettingsError(msg)
        if settings is not None and settings != audit.settings:
            msg = ("settings differ from the audit's; pass the Dataset to re-run the audit with "
                   "these settings, or leave settings=None.")
            raise SettingsError(msg)
        dataset, year, settings = audit.dataset, audit.year, audit.settings
        townships = getattr(audit, "township_codes", None)
        if network is None:
            network = getattr(audit, "net", None)
    else:
        dataset, audit = source, None
        year = PLAN_YEARS[-1] if year is None else year
        settings = settings or Settings()
    net = _network_arrays(dataset, network)
    if audit is None or service.id not in audit.services:
        audit = run_audit(dataset, year=year, services=[service.id], settings=settings,
                          network=net, townships=townships)
    return audit, net


def _network_arrays(dataset: Any, network: Any) -> NetworkArrays:
    """Return the network arrays: given, built from a given graph, or the dataset's."""
    if network is None:
        network = getattr(dataset, "network", None)
    if network is None and callable(getattr(dataset, "load_network", None)):
        network = dataset.load_network()
    if isinstance(network, NetworkArrays):
        return network
    if network is None:
        msg = ("No street network: pass network=qyx_geo.network.load_network('default') (an "
               "osmnx graph) or the arrays of an audit (audit.net).")
        raise SettingsError(msg)
    return build_arrays(network)


def _required_units(target: Any, n_judged: int, *, objective: Objective, service: Service,
                    year: int) -> int:
    """Fewest passing units for which the plan's target counts as met."""
    if target is None:
        if objective == "min_sites":
            msg = (f"No coverage target for {service.id!r} ({service.label_zh}) in {year}: the "
                   "plan sets none, or the region pack has no plan file; pass max_sites or "
                   "budget (--max-sites/--budget) to site for the most units instead.")
            raise NoTargetError(msg)
        return 0
    for n in range(n_judged + 1):
        if target.is_met(_share(n, n_judged)):
            return n
    msg = (f"The target {target.text!r} for {service.id!r} in {year} is not met even if all "
           f"{n_judged} judged units pass.")
    raise SolverError(msg)


def _share(n: int, total: int) -> float:
    return n / total if total else float("nan")


# ---------------------------------------------------------------------------------------------
# solving and results


def _solve(
    reduced: ReducedProblem, *, method: Method, objective: Objective, max_sites: int | None,
    budget: float | None, time_limit_s: float, mip_gap: float, compare: bool,
) -> tuple[Solution, Solution | None]:
    """Solve with ``method``; with ``compare`` also with the other one (None if it fails)."""
    def exact() -> Solution:
        return solve_milp(reduced, objective=objective, max_sites=max_sites, budget=budget,
                          time_limit_s=time_limit_s, mip_gap=mip_gap)

    def greedy() -> Solution:
        return solve_greedy(reduced, objective=objective, max_sites=max_sites, budget=budget)

    first, second = (exact, greedy) if method == "milp" else (greedy, exact)
    main = first()
    other = None
    if compare:
        try:
            other = second()
        except SolverError as err:  # e.g. the MILP ran out of time: the comparison is optional
            logger.warning("comparison run failed: %s", err)
    return main, other


def _gap_to_exact(main: Solution, other: Solution | None) -> float | None:
    """Greedy's relative gap to the MILP (positive = greedy worse); None unless both ran."""
    if main.method != "greedy" or other is None or other.status not in ("optimal",
                                                                        "nothing_to_do"):
        return None
    diff = main.objective - other.objective if main.objective_kind == "min_sites" \
        else other.objective - main.objective
    return diff / max(abs(other.objective), 1.0)


def _capacity_rate(service: Service, year: int) -> float | None:
    """Return the plan's places per 1,000 residents in ``year`` (None if the service has none)."""
    if service.capacity_target is None:
        return None
    from qyx_geo.targets import target_for

    try:
        return float(target_for(service, year, kind="capacity").value)
    except NoTargetError:
        return None


def _sites_table(
    reduced: ReducedProblem, solution: Solution, cands: gpd.GeoDataFrame, cover: sp.csr_matrix,
    points: gpd.GeoDataFrame, units: gpd.GeoDataFrame, service: Service, *, year: int,
    covered_now: NDArray[np.bool_],
) -> gpd.GeoDataFrame:
    """Return the proposed sites in build order, with what each newly covers and where it lies."""
    order, units_new, _ = gain_order(reduced, solution.chosen)
    reach = sp.csr_matrix(cover)
    demand = points[service.demand_column].to_numpy(dtype=float)
    total = points["pop"].to_numpy(dtype=float) if "pop" in points else demand
    covered = covered_now.copy()
    residents, population = [], []
    for c in order:
        cols = reach.indices[reach.indptr[c]:reach.indptr[c + 1]]
        new = cols[~covered[cols]]
        covered[new] = True
        residents.append(float(demand[new].sum()))
        population.append(float(total[new].sum()))
    chosen = cands.iloc[order]
    wgs = chosen.geometry.to_crs(WGS84)
    ids = pd.Index([f"S{i + 1:03d}" for i in range(len(order))], name="site_id", dtype=object)
    rate = _capacity_rate(service, year)
    capacity = (np.ceil(np.asarray(population) * rate / 1000.0) if rate is not None
                else np.full(len(order), np.nan))
    sites = gpd.GeoDataFrame(
        {"order": np.arange(1, len(order) + 1, dtype=np.int64),
         "candidate_id": chosen.index.astype(str).to_numpy(dtype=object),
         "lon": wgs.x.round(6).to_numpy(), "lat": wgs.y.round(6).to_numpy(),
         "residents_new": np.round(residents, 1), "units_passing_new": units_new,
         "population_new": np.round(population, 1), "capacity": capacity,
         "capacity_unit": service.capacity_unit_zh if rate is not None else None,
         "cost": chosen["cost"].to_numpy(dtype=float)},
        geometry=wgs.to_numpy(), index=ids, crs=WGS84,
    )
    located = locate(sites, units)
    for col in ("unit_code", "unit_name", "township_code", "township_name"):
        sites[col] = located[col].to_numpy(dtype=object)
    return sites[list(SITE_COLUMNS)]


def _county_figures(sa: ServiceAudit, required: int) -> dict[str, Any]:
    county = sa.county
    target = county.get("target")
    return {
        "units_judged": int(county["units_judged"]),
        "units_passing": int(county["units_passing"]),
        "share_passing": float(county["share_passing"]),
        "required_units": int(required),
        "target": None if target is None else str(target.text),
        "target_share": None if target is None else float(target.value),
        "met": None if county.get("met") is None else bool(county["met"]),
    }


def _with_verified(result: SitingResult, sa: ServiceAudit, rerun: AuditResult,
                   required: int) -> SitingResult:
    sa_after = rerun.services[result.service.id]
    after = _county_figures(sa_after, required)
    after["verified"] = True
    capacity = _capacity_summary(result.service, result.year, result.sites, sa, sa_after)
    if result.objective_kind == "min_sites" and after["met"] is False:
        logger.warning("the audit re-run with %d proposed %s sites does not meet the target "
                       "(%d of %d units pass, %d needed)", result.n_sites, result.service.id,
                       after["units_passing"], after["units_judged"], required)
    return dataclasses.replace(result, after=after, capacity=capacity, audit_after=rerun)


def _capacity_summary(service: Service, year: int, sites: gpd.GeoDataFrame, sa: ServiceAudit,
                      sa_after: ServiceAudit | None) -> dict[str, Any] | None:
    """Return the capacity figures of a nursery proposal (None for services without places)."""
    rate = _capacity_rate(service, year)
    if rate is None:
        return None
    return {
        "rate_per_1000": rate,
        "places_added": float(np.nansum(sites["capacity"].to_numpy(dtype=float))),
        "per_1000_before": _county_capacity(sa),
        "per_1000_after": None if sa_after is None else _county_capacity(sa_after),
    }


def _county_capacity(sa: ServiceAudit) -> float | None:
    """Return the county's reachable places per 1,000 (2SFCA) from the audit, if it has it."""
    cap = sa.county.get("capacity")
    if not isinstance(cap, Mapping) or cap.get("places_per_1000") is None:
        return None
    value = float(cap["places_per_1000"])
    return None if math.isnan(value) else round(value, 3)


def verify_sites(result: SitingResult, audit: AuditResult) -> AuditResult:
    """Re-run ``audit`` for ``result``'s service with the proposed sites added to its layer.

    Existing facilities are kept; the sites join the layer the audit used
    (``source="user"``, ``level="拟建"``). Returns the new :class:`~qyx_geo.audit.AuditResult`,
    whose ``services[...].county["met"]`` is the proof that the proposal meets the target.
    """
    from qyx_geo.audit import run_audit

    sa = audit.services[result.service.id]
    layer = sa.facilities
    if layer is None:
        layer = audit.dataset.facilities[result.service.id]
    added = result.facilities()
    if layer.crs is not None:
        added = added.to_crs(layer.crs)
    merged = pd.concat([layer, added[[c for c in layer.columns if c in added.columns]]])
    return run_audit(audit.dataset, year=audit.year, services=[result.service.id],
                     settings=audit.settings, facilities={result.service.id: merged},
                     network=audit.net, townships=getattr(audit, "township_codes", None))
