"""Targets scored on the facilities themselves, not on travel times.

Three kinds of plan target (see :mod:`qyx_geo.plan`) are not "share of units within N minutes":

``presence``
    Share of townships (乡镇/街道) with at least one facility of the service — e.g. 乡镇(街道)老年
    学校覆盖率达100% (二、(二)4), 残疾人之家 coverage (indicator 21). With ``level="unit"`` the same
    is asked of every village/community (used by rural standard tiers).
``attribute_share``
    Share of the service's facilities (optionally of some ``levels``) whose boolean attribute is
    true — e.g. smart terminals in 50 % of village/community home-care stations (二、(五)3).
``per_1000``
    Places (``capacity``) per 1,000 residents counted inside each township and the county.

Each function returns a :class:`CheckResult`: a township table with the figure, the verdict
against the target and the rank (1 = best, 季晾晒 like the coverage tables), and the county figure
with its verdict and shortfall. Pure functions: they read no files and never mutate inputs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from qyx_geo._errors import ColumnError, NoTargetError
from qyx_geo.coverage import rank_shares, shortfall_units
from qyx_geo.plan import FACILITY_KINDS, Plan, Target
from qyx_geo.services import Service

__all__ = ["CheckResult", "attribute_share_check", "facility_checks", "per_1000_check",
           "presence_check"]


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """One facility-based target scored for a service.

    Attributes
    ----------
    key, kind
        The plan target's key and kind.
    service
        Service id.
    target
        The year's :class:`~qyx_geo.plan.Target`, or ``None`` (``note`` says why).
    note
        Why there is no target (``None`` when there is one).
    townships
        Indexed like the townships given: ``name``, ``judged``, kind-specific counts,
        ``value`` (the township's figure), ``met`` (``<NA>`` without a target or not judged),
        ``rank`` (1 = best among judged townships).
    county
        ``value``, ``target``, ``met``, ``shortfall`` and ``shortfall_unit`` (what the shortfall
        counts), plus kind-specific counts.
    units
        Per village/community (``level="unit"`` presence only), else ``None``.
    """

    key: str
    kind: str
    service: str
    target: Target | None
    note: str | None
    townships: pd.DataFrame
    county: dict[str, Any]
    units: pd.DataFrame | None = None


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        msg = f"{what} lacks column(s) {missing!r}; it has {list(frame.columns)!r}."
        raise ColumnError(msg)


def _met(value: float, judged: bool, target: Target | None) -> bool | None:
    if target is None or not judged or (isinstance(value, float) and math.isnan(value)):
        return None
    return bool(target.is_met(value))


def _finish(out: pd.DataFrame, target: Target | None, secondary: pd.Series) -> pd.DataFrame:
    out["met"] = pd.array([_met(v, j, target) for v, j in zip(out["value"], out["judged"],
                                                               strict=True)], dtype="boolean")
    judged = out[out["judged"].to_numpy(bool)]
    ranks = rank_shares(judged["value"], secondary.reindex(judged.index))
    out["rank"] = ranks.reindex(out.index).astype("Int64")
    return out


def presence_check(facilities: pd.DataFrame, townships: pd.DataFrame, *, key: str,
                   service: str, target: Target | None, note: str | None = None,
                   township_kinds: Iterable[str] | None = None,
                   population: pd.Series | None = None) -> CheckResult:
    """Score "every township has at least one facility".

    Parameters
    ----------
    facilities
        The service's facilities with ``township_code``.
    townships
        Townships indexed by 9-digit code with ``name`` (and ``kind`` if ``township_kinds``).
    key, service, target, note
        The plan target's key, the service id, the year's target (or ``None``) and why none.
    township_kinds
        Township kinds judged (e.g. ``("街道", "镇")``); ``None``: all.
    population
        Residents per township code, for the tie-break of the ranking (facilities per 10,000
        residents) and the table.

    Examples
    --------
    >>> towns = pd.DataFrame({"name": ["一镇", "二镇", "三区"], "kind": ["镇", "镇", "开发区"]},
    ...                      index=["330282101", "330282102", "330282401"])
    >>> fac = pd.DataFrame({"township_code": ["330282101", "330282401"]})
    >>> r = presence_check(fac, towns, key="k", service="s", target=None,
    ...                    township_kinds=("镇",))
    >>> r.county["townships_present"], r.county["townships_judged"], r.county["value"]
    (1, 2, 0.5)
    """
    _require(facilities, ("township_code",), "facilities")
    _require(townships, ("name",), "townships")
    counts = facilities["township_code"].astype(str).value_counts()
    out = pd.DataFrame({"name": townships["name"].to_numpy()}, index=townships.index.copy())
    kinds = None if township_kinds is None else set(township_kinds)
    out["judged"] = (np.ones(len(out), bool) if kinds is None
                     else townships["kind"].isin(kinds).to_numpy())
    out["facilities"] = counts.reindex(out.index.astype(str)).fillna(0).astype(int).to_numpy()
    out["present"] = out["facilities"] > 0
    out["value"] = np.where(out["judged"], out["present"].astype(float), np.nan)
    pop = (population.reindex(out.index).fillna(0.0).to_numpy(float) if population is not None
           else np.zeros(len(out)))
    out["residents"] = pop
    with np.errstate(invalid="ignore", divide="ignore"):
        per_10k = np.where(pop > 0, out["facilities"] / np.where(pop > 0, pop, 1) * 1e4, 0.0)
    out = _finish(out, target, pd.Series(per_10k, index=out.index))
    judged = out[out["judged"].to_numpy(bool)]
    n, present = len(judged), int(judged["present"].sum())
    value = present / n if n else math.nan
    county = {"value": value, "townships_judged": n, "townships_present": present,
              "facilities": len(facilities), "target": target,
              "met": _met(value, n > 0, target),
              "shortfall": shortfall_units(n, present, target), "shortfall_unit": "townships",
              "missing": [str(c) for c in judged.index[~judged["present"].to_numpy(bool)]]}
    return CheckResult(key=key, kind="presence", service=service, target=target, note=note,
                       townships=out, county=county)


def attribute_share_check(facilities: pd.DataFrame, townships: pd.DataFrame, *, key: str,
                          service: str, attribute: str, target: Target | None,
                          note: str | None = None,
                          levels: Iterable[str] | None = None) -> CheckResult:
    """Score "a share of the facilities have ``attribute``" (e.g. a smart terminal).

    Only facilities whose ``level`` is in ``levels`` count (``None``: all). A missing attribute
    value counts as ``False`` (the facility is not known to have it) — never dropped.

    Examples
    --------
    >>> towns = pd.DataFrame({"name": ["一镇", "二镇"]}, index=["330282101", "330282102"])
    >>> fac = pd.DataFrame({"township_code": ["330282101"] * 3 + ["330282102"],
    ...                     "level": ["站", "站", "中心", "站"],
    ...                     "smart": [True, False, True, None]})
    >>> r = attribute_share_check(fac, towns, key="k", service="s", attribute="smart",
    ...                           levels=("站",), target=None)
    >>> r.county["with_attribute"], r.county["facilities"], r.county["value"]
    (1, 3, 0.3333333333333333)
    """
    _require(facilities, ("township_code", attribute, *(("level",) if levels else ())),
             "facilities")
    rows = facilities
    if levels is not None:
        rows = facilities[facilities["level"].isin(set(levels)).to_numpy()]
    flag = rows[attribute].map(lambda v: bool(v) if isinstance(v, bool | np.bool_) else
                               str(v).strip().lower() in ("true", "1", "yes", "是"))
    by = pd.DataFrame({"t": rows["township_code"].astype(str).to_numpy(),
                       "f": flag.to_numpy(bool)}).groupby("t")["f"]
    out = pd.DataFrame({"name": townships["name"].to_numpy()}, index=townships.index.copy())
    codes = out.index.astype(str)
    out["facilities"] = by.size().reindex(codes).fillna(0).astype(int).to_numpy()
    out["with_attribute"] = by.sum().reindex(codes).fillna(0).astype(int).to_numpy()
    out["judged"] = out["facilities"] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["value"] = np.where(out["judged"], out["with_attribute"]
                                / np.where(out["judged"], out["facilities"], 1), np.nan)
    out = _finish(out, target, out["with_attribute"].astype(float))
    n, have = int(out["facilities"].sum()), int(out["with_attribute"].sum())
    value = have / n if n else math.nan
    county = {"value": value, "facilities": n, "with_attribute": have, "attribute": attribute,
              "levels": None if levels is None else list(levels), "target": target,
              "met": _met(value, n > 0, target),
              "shortfall": shortfall_units(n, have, target), "shortfall_unit": "facilities"}
    return CheckResult(key=key, kind="attribute_share", service=service, target=target,
                       note=note, townships=out, county=county)


def per_1000_check(facilities: pd.DataFrame, townships: pd.DataFrame, population: pd.Series, *,
                   key: str, service: str, target: Target | None, note: str | None = None,
                   per: float = 1000.0) -> CheckResult:
    """Score "places per ``per`` residents", counted inside each township and the county.

    ``capacity`` that is empty counts as 0 places (and is reported as ``facilities_no_capacity``).

    Examples
    --------
    >>> towns = pd.DataFrame({"name": ["一镇", "二镇"]}, index=["330282101", "330282102"])
    >>> fac = pd.DataFrame({"township_code": ["330282101", "330282101"],
    ...                     "capacity": [30.0, float("nan")]})
    >>> pop = pd.Series([6000.0, 4000.0], index=towns.index)
    >>> r = per_1000_check(fac, towns, pop, key="k", service="s", target=None)
    >>> float(r.townships.loc["330282101", "value"]), r.county["value"]
    (5.0, 3.0)
    """
    _require(facilities, ("township_code", "capacity"), "facilities")
    places = pd.to_numeric(facilities["capacity"], errors="coerce")
    by = pd.DataFrame({"t": facilities["township_code"].astype(str).to_numpy(),
                       "c": places.fillna(0.0).to_numpy(float)}).groupby("t")["c"].sum()
    out = pd.DataFrame({"name": townships["name"].to_numpy()}, index=townships.index.copy())
    codes = out.index.astype(str)
    out["places"] = by.reindex(codes).fillna(0.0).to_numpy()
    out["residents"] = population.reindex(out.index).fillna(0.0).to_numpy(float)
    out["judged"] = out["residents"] > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        out["value"] = np.where(out["judged"], out["places"] / np.where(
            out["judged"], out["residents"], 1) * per, np.nan)
    out = _finish(out, target, out["places"])
    total_places, total_pop = float(out["places"].sum()), float(out["residents"].sum())
    value = total_places / total_pop * per if total_pop > 0 else math.nan
    shortfall = 0
    if target is not None and total_pop > 0 and not target.is_met(value):
        shortfall = max(0, math.ceil(target.value * total_pop / per - total_places - 1e-9))
    county = {"value": value, "places": total_places, "residents": total_pop, "per": per,
              "facilities": len(facilities),
              "facilities_no_capacity": int(places.isna().sum()), "target": target,
              "met": _met(value, total_pop > 0, target), "shortfall": shortfall,
              "shortfall_unit": "places"}
    return CheckResult(key=key, kind="per_1000", service=service, target=target, note=note,
                       townships=out, county=county)


def facility_checks(svc: Service, plan: Plan, year: int, layer: pd.DataFrame,
                     townships: pd.DataFrame, demand: pd.DataFrame) -> dict[str, CheckResult]:
    """Score the plan's presence / attribute-share / per-1,000 targets for ``svc`` in ``year``.

    ``layer`` is the service's facilities, ``townships`` the township table (with ``kind``) and
    ``demand`` the demand points (``township_code`` and the population columns).
    """
    out: dict[str, CheckResult] = {}
    for spec in plan.for_service(svc):
        if spec.kind not in FACILITY_KINDS:
            continue
        try:
            target, note = plan.year_target(spec, year), None
        except NoTargetError as err:
            target, note = None, str(err)
        common: dict[str, Any] = {"key": spec.key, "service": svc.id, "target": target,
                                  "note": note}
        opts = spec.options
        if spec.kind == "presence":
            pop = demand.groupby("township_code")["pop"].sum()
            out[spec.key] = presence_check(layer, townships, township_kinds=opts.get(
                "township_kinds"), population=pop, **common)
        elif spec.kind == "attribute_share":
            out[spec.key] = attribute_share_check(layer, townships, attribute=opts["attribute"],
                                                  levels=opts.get("levels"), **common)
        else:
            column = str(opts.get("population", "pop"))
            if column not in demand.columns:
                msg = (f"Plan target {spec.key!r} counts residents in column {column!r}, which "
                       f"the demand points lack (columns: {list(demand.columns)!r}).")
                raise ColumnError(msg)
            pop = demand.groupby("township_code")[column].sum()
            out[spec.key] = per_1000_check(layer, townships, pop, per=float(opts["per"]),
                                           **common)
    return out
