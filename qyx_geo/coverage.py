"""Coverage scoring: villages/communities, townships and the county against the plan's targets.

Pure functions on (Geo)DataFrames; none reads files or mutates its inputs, and every result is a
new frame indexed by unit code (12 digits) or township code (9 digits).

The scoring chain
-----------------
1. :func:`unit_coverage` — per unit: population-weighted share of residents (of the service's
   demand group) within the threshold, weighted median travel time, nearest facility; a unit
   *passes* when its share reaches ``min_share``; it is *judged* only when the service's target
   applies to its kind (``Service.unit_kinds``: sports targets 行政村 only) and it has residents
   of the demand group.
2. :func:`township_table` — per township: judged and passing units, share passing, the plan's
   target for the year, met or not, shortfall in units, and the rank (季晾晒, 三、(一)).
3. :func:`county_summary` — the same for the county.
4. :func:`coverage_gaps` — uncovered demand points with their unit and time to the nearest
   facility; failing units are the rows of (1) with ``passes == False``.
5. :func:`capacity_by_unit` — nursery places per 1,000 residents within reach (2SFCA values per
   demand point from :func:`qyx_geo.engine.two_step_fca`) per unit and for the county.

Demand points whose ``minutes`` is ``NaN`` (too far from the network to be snapped) count as
residents *not* reached: they are never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import numpy.typing as npt
import pandas as pd

from qyx_geo._errors import SettingsError
from qyx_geo._validate import require_columns
from qyx_geo.settings import check_setting
from qyx_geo.targets import Target

__all__ = [
    "UNIT_RESULT_COLUMNS",
    "capacity_by_unit",
    "county_summary",
    "coverage_gaps",
    "rank_shares",
    "shortfall_units",
    "township_table",
    "unit_coverage",
    "weighted_median",
    "within_threshold",
]

#: Columns of :func:`unit_coverage` (besides the index ``code``).
UNIT_RESULT_COLUMNS = (
    "name", "township_code", "township_name", "kind", "population", "population_within",
    "uncovered", "share_within", "median_minutes", "nearest_facility", "nearest_minutes",
    "passes", "judged", "geometry",
)
_TOL = 1e-9


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    require_columns(frame.columns, columns, source_name=what,
                    hint="Pass the engine output joined with the demand points "
                         "(see docs/audit.md).")


def within_threshold(minutes: npt.ArrayLike, threshold_minutes: float) -> npt.NDArray[np.bool_]:
    """Return whether each travel time counts as within the threshold: the one rule.

    ``minutes <= threshold_minutes`` up to a rounding tolerance of 1e-9 minutes (a resident at
    exactly 15.0 minutes is covered however the sum of edge times rounds); ``NaN`` (not on the
    network) and ``inf`` (unreachable) are never within.

    >>> within_threshold([14.9, 15.0, 15.0 + 1e-12, 15.1, float("nan"), float("inf")], 15)
    array([ True,  True,  True, False, False, False])
    """
    m = pd.to_numeric(pd.Series(np.asarray(minutes).ravel()), errors="coerce").to_numpy(float)
    return np.nan_to_num(m, nan=np.inf) <= float(threshold_minutes) + _TOL


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """Return the lower weighted median of ``values`` (``NaN`` counts as ``inf``).

    The smallest value whose cumulative weight reaches half of the total; ``NaN`` when the
    weights sum to zero.

    Examples
    --------
    >>> weighted_median(np.array([3.0, 1.0, 10.0]), np.array([1.0, 1.0, 5.0]))
    10.0
    """
    vals = np.where(np.isnan(values), np.inf, np.asarray(values, dtype=float))
    w = np.asarray(weights, dtype=float)
    total = w.sum()
    if not total > 0:
        return math.nan
    order = np.argsort(vals, kind="stable")
    cum = np.cumsum(w[order])
    return float(vals[order][np.searchsorted(cum, total / 2.0 - _TOL * total)])


def unit_coverage(
    points: pd.DataFrame,
    units: gpd.GeoDataFrame,
    *,
    demand_column: str,
    threshold_minutes: float,
    min_share: float,
    unit_kinds: Iterable[str] | None = None,
) -> gpd.GeoDataFrame:
    """Score every village/community for one service.

    Parameters
    ----------
    points
        Demand points (index: point id) with ``unit_code``, ``demand_column`` (residents of the
        demand group), ``minutes`` to the nearest facility (``inf`` unreachable, ``NaN`` not
        snapped) and ``facility_id``.
    units
        Villages/communities indexed by 12-digit code with ``name``, ``township_code``,
        ``township_name``, ``kind`` and ``geometry``.
    demand_column
        Population column to weight by (``pop``, ``pop_0_3``, ``pop_60p``).
    threshold_minutes
        A resident is covered when ``minutes <= threshold_minutes``.
    min_share
        A unit passes when its share of residents covered reaches this, in (0, 1].
    unit_kinds
        Unit kinds the service's target applies to (``None``: all).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed like ``units`` (same order), columns :data:`UNIT_RESULT_COLUMNS`. ``judged`` is
        ``False`` for kinds the target does not cover and for units with no residents of the
        demand group (their share is ``NaN``); ``passes`` is ``False`` where not judged.

    Examples
    --------
    >>> import shapely
    >>> units = gpd.GeoDataFrame({"name": ["甲村"], "township_code": ["330282100"],
    ...     "township_name": ["某镇"], "kind": ["村委会"]}, geometry=[shapely.box(0, 0, 1, 1)],
    ...     index=pd.Index(["330282100201"], name="code"))
    >>> pts = pd.DataFrame({"unit_code": ["330282100201"] * 2, "pop": [30.0, 10.0],
    ...     "minutes": [5.0, 20.0], "facility_id": ["f1", "f1"]}, index=["p1", "p2"])
    >>> r = unit_coverage(pts, units, demand_column="pop", threshold_minutes=15, min_share=0.8)
    >>> float(r.loc["330282100201", "share_within"]), bool(r.loc["330282100201", "passes"])
    (0.75, False)
    """
    _require(points, ("unit_code", demand_column, "minutes", "facility_id"), "points")
    _require(units, ("name", "township_code", "township_name", "kind", "geometry"), "units")
    # the settings' rule book: finite, typed, plausibly ranged (qyx_geo.settings.RANGES)
    threshold = check_setting("threshold_minutes", threshold_minutes)
    share_min = check_setting("min_share", min_share)
    kinds = None if unit_kinds is None else set(unit_kinds)

    weight = pd.to_numeric(points[demand_column], errors="coerce").fillna(0.0).to_numpy(float)
    if (weight < 0).any():
        bad = points.index[weight < 0][0]
        msg = (f"points[{demand_column!r}] has negative residents, e.g. {bad!r}: "
               f"{points.loc[bad, demand_column]!r}; population counts must be >= 0.")
        raise SettingsError(msg)
    minutes = pd.to_numeric(points["minutes"], errors="coerce").to_numpy(float)
    sort_minutes = np.where(np.isnan(minutes), np.inf, minutes)
    within = within_threshold(sort_minutes, threshold)
    frame = pd.DataFrame({
        "unit": points["unit_code"].astype(str).to_numpy(), "w": weight, "m": sort_minutes,
        "fid": points["facility_id"].astype(object).to_numpy(),
        "pid": points.index.astype(str).to_numpy(), "win": weight * within,
    })
    # one deterministic order whatever the input row order: unit, minutes, point id
    frame = frame.sort_values(["unit", "m", "pid"], kind="mergesort", ignore_index=True)
    grouped = frame.groupby("unit", sort=True)
    population = grouped["w"].sum()
    population_within = grouped["win"].sum()
    first = grouped.head(1).set_index("unit")
    cum = grouped["w"].cumsum()
    half = frame["unit"].map(population) / 2.0
    at_median = frame[(cum >= half - _TOL * half) & (frame["w"] > 0)]
    median = at_median.groupby("unit", sort=True)["m"].first()

    out = gpd.GeoDataFrame(
        units[["name", "township_code", "township_name", "kind"]].copy(),
        geometry=units.geometry.copy(), crs=units.crs,
    )
    codes = out.index
    out["population"] = population.reindex(codes).fillna(0.0).to_numpy()
    out["population_within"] = population_within.reindex(codes).fillna(0.0).to_numpy()
    out["uncovered"] = out["population"] - out["population_within"]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(out["population"] > 0,
                         out["population_within"] / out["population"].where(
                             out["population"] > 0, 1.0), np.nan)
    out["share_within"] = np.clip(share, 0.0, 1.0)
    out["median_minutes"] = median.reindex(codes).to_numpy(float)
    nearest = first.reindex(codes)
    out["nearest_facility"] = nearest["fid"].where(np.isfinite(nearest["m"]), None).to_numpy()
    out["nearest_minutes"] = nearest["m"].to_numpy(float)
    applies = np.ones(len(out), bool) if kinds is None else out["kind"].isin(kinds).to_numpy()
    out["judged"] = applies & (out["population"].to_numpy() > 0)
    out["passes"] = out["judged"] & (out["share_within"].fillna(0.0) >= share_min - _TOL)
    out["passes"] = out["passes"].astype(bool)
    return out[list(UNIT_RESULT_COLUMNS)]


def shortfall_units(units_judged: int, units_passing: int, target: Target | None) -> int:
    """Units still needed to pass for ``units_passing / units_judged`` to meet ``target``.

    ``0`` when there is no target or it is met. Shares compare with the plan's ``>=`` reading:
    95 % of 406 units needs 386 (385.7 rounded up).

    Examples
    --------
    >>> from qyx_geo.targets import target_for
    >>> shortfall_units(406, 380, target_for("canteen", 2027))
    6
    """
    if target is None or units_judged <= 0:
        return 0
    needed = math.ceil(target.value * units_judged - _TOL)
    if target.op == ">":
        needed = math.floor(target.value * units_judged + _TOL) + 1
    return max(0, min(needed, units_judged) - units_passing)


def _judge(judged: int, passing: int, target: Target | None) -> dict[str, Any]:
    share = passing / judged if judged else math.nan
    met = None if target is None or not judged else bool(target.is_met(share))
    return {"units_judged": int(judged), "units_passing": int(passing), "share_passing": share,
            "target": target, "met": met, "shortfall_units": shortfall_units(judged, passing,
                                                                              target)}


def township_table(
    units: pd.DataFrame,
    townships: pd.DataFrame,
    *,
    target: Target | None = None,
) -> pd.DataFrame:
    """Per township: judged and passing units, share passing vs the target, and the ranking.

    The rank follows the plan's quarterly ranking (季晾晒, 三、(一)): 1 is the best share of
    passing units; ties are broken by the share of residents covered, then share the rank.
    Townships with no judged unit are listed with ``rank`` ``<NA>``.

    Parameters
    ----------
    units
        Output of :func:`unit_coverage`.
    townships
        Townships indexed by 9-digit code with ``name``.
    target
        The plan's target for the year (``None``: no target; ``met`` is then ``<NA>``).

    Returns
    -------
    pandas.DataFrame
        Indexed like ``townships``: ``name``, ``units_total``, ``units_judged``,
        ``units_passing``, ``share_passing``, ``residents_within_share``, ``target``,
        ``met``, ``shortfall_units``, ``rank``.
    """
    _require(units, ("township_code", "judged", "passes", "population", "population_within"),
             "units")
    _require(townships, ("name",), "townships")
    judged = units[units["judged"].to_numpy(bool)]
    by = judged.groupby("township_code")
    counts = pd.DataFrame({
        "units_total": units.groupby("township_code").size(),
        "units_judged": by.size(),
        "units_passing": by["passes"].sum(),
        "pop": by["population"].sum(),
        "pop_within": by["population_within"].sum(),
    }).reindex(townships.index).fillna(0)
    out = pd.DataFrame({"name": townships["name"].to_numpy()}, index=townships.index.copy())
    for col in ("units_total", "units_judged", "units_passing"):
        out[col] = counts[col].astype(int).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_passing"] = np.where(out["units_judged"] > 0, out["units_passing"]
                                        / out["units_judged"].where(out["units_judged"] > 0, 1),
                                        np.nan)
        out["residents_within_share"] = np.where(
            counts["pop"] > 0, counts["pop_within"] / counts["pop"].where(counts["pop"] > 0, 1),
            np.nan)
    out["target"] = math.nan if target is None else target.value
    judged_rows = [_judge(j, p, target) for j, p in zip(out["units_judged"],
                                                         out["units_passing"], strict=True)]
    out["met"] = pd.array([r["met"] for r in judged_rows], dtype="boolean")
    out["shortfall_units"] = [r["shortfall_units"] for r in judged_rows]
    out["rank"] = rank_shares(out["share_passing"], out["residents_within_share"])
    return out


def rank_shares(share_passing: pd.Series, residents_share: pd.Series) -> pd.Series:
    """Rank areas as the plan's 季晾晒 does: 1 = best share of passing units.

    Ties are broken by the share of residents covered; equal pairs share a rank (1, 2, 2, 4).
    Areas without a share (nothing judged) get ``<NA>``. Used for townships within a county
    and for counties within a batch.

    Returns
    -------
    pandas.Series
        ``Int64`` ranks indexed like ``share_passing``.
    """
    key = pd.DataFrame({"a": share_passing, "b": residents_share})
    ranked = key.dropna(subset=["a"]).fillna({"b": 0.0})
    # rank on the pair (share passing, residents share): sort descending, equal pairs share a rank
    order = ranked.sort_values(["a", "b"], ascending=False, kind="mergesort")
    pair = list(zip(order["a"].round(12), order["b"].round(12), strict=True))
    ranks, prev, current = [], None, 0
    for pos, item in enumerate(pair, start=1):
        if item != prev:
            current, prev = pos, item
        ranks.append(current)
    return pd.Series(ranks, index=order.index, dtype="Int64").reindex(share_passing.index)


def county_summary(units: pd.DataFrame, *, target: Target | None = None) -> dict[str, Any]:
    """County figure: units judged/passing, share passing vs ``target``, shortfall.

    Returns
    -------
    dict
        ``units_judged``, ``units_passing``, ``share_passing``, ``target`` (the
        :class:`~qyx_geo.targets.Target` or ``None``), ``met`` (``None`` without a target),
        ``shortfall_units``, ``residents_within_share`` (of judged units' residents),
        ``population``, ``population_within``.
    """
    _require(units, ("judged", "passes", "population", "population_within"), "units")
    judged = units[units["judged"].to_numpy(bool)]
    out = _judge(len(judged), int(judged["passes"].sum()), target)
    pop, within = float(judged["population"].sum()), float(judged["population_within"].sum())
    out["population"] = pop
    out["population_within"] = within
    out["residents_within_share"] = within / pop if pop > 0 else math.nan
    return out


def coverage_gaps(
    points: gpd.GeoDataFrame,
    units: pd.DataFrame,
    *,
    demand_column: str,
    threshold_minutes: float,
) -> gpd.GeoDataFrame:
    """Demand points whose residents are not reached within the threshold.

    Parameters
    ----------
    points
        Demand points with geometry, ``unit_code``, ``demand_column``, ``minutes`` and
        ``facility_id`` (``snap_dist_m``/``too_far`` are kept when present).
    units
        Output of :func:`unit_coverage` (for names and township of each point's unit).

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by point id, sorted by residents (descending) then id: ``unit_code``,
        ``unit_name``, ``township_code``, ``township_name``, ``residents``, ``minutes``
        (to the nearest facility; ``inf`` unreachable, ``NaN`` not on the network),
        ``facility_id``, ``too_far``, ``geometry``. Points with no residents of the demand
        group are left out.
    """
    _require(points, ("unit_code", demand_column, "minutes", "facility_id", "geometry"),
             "points")
    threshold = check_setting("threshold_minutes", threshold_minutes)
    minutes = pd.to_numeric(points["minutes"], errors="coerce")
    residents = pd.to_numeric(points[demand_column], errors="coerce").fillna(0.0)
    keep = ~within_threshold(minutes, threshold) & (residents > 0).to_numpy()
    sel = points[keep]
    codes = sel["unit_code"].astype(str)
    names = units["name"].reindex(codes)
    out = gpd.GeoDataFrame({
        "unit_code": codes.to_numpy(),
        "unit_name": names.to_numpy(),
        "township_code": units["township_code"].reindex(codes).to_numpy(),
        "township_name": units["township_name"].reindex(codes).to_numpy(),
        "residents": residents[keep].to_numpy(),
        "minutes": minutes[keep].to_numpy(),
        "facility_id": sel["facility_id"].to_numpy(),
        "too_far": (sel["too_far"].to_numpy(bool) if "too_far" in sel.columns
                    else np.isnan(minutes[keep].to_numpy())),
    }, geometry=sel.geometry.to_numpy(), crs=points.crs, index=sel.index.copy())
    tiebreak = out.index.astype(str)
    order = np.lexsort((tiebreak, -out["residents"].to_numpy()))
    return out.iloc[order]


def capacity_by_unit(
    access: pd.Series,
    points: pd.DataFrame,
    units: pd.DataFrame,
    *,
    population_column: str = "pop",
    capacity_total: float | None = None,
    target: Target | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Places per 1,000 residents within reach (2SFCA) per unit and for the county.

    Parameters
    ----------
    access
        Per demand point, places per 1,000 residents within reach
        (:func:`qyx_geo.engine.two_step_fca`); ``NaN`` for points off the network.
    points
        Demand points with ``unit_code`` and ``population_column`` (the plan's indicator is per
        1,000 residents of all ages: ``pop``).
    units
        Villages/communities indexed by code with ``name`` and ``township_code``.
    capacity_total
        Total places of the layer, for the plain county ratio (places / residents x 1,000).
    target
        The plan's capacity target for the year (``None``: no target).

    Returns
    -------
    (pandas.DataFrame, dict)
        Per unit (indexed like ``units``): ``name``, ``township_code``, ``population``,
        ``places_per_1000`` (population-weighted mean of the points' access) and ``meets_target``
        (``<NA>`` without a target). County dict: ``places_per_1000`` (accessible),
        ``places_per_1000_total`` (plain ratio, if ``capacity_total`` is given), ``population``,
        ``target``, ``met``.
    """
    _require(points, ("unit_code", population_column), "points")
    pop = pd.to_numeric(points[population_column], errors="coerce").fillna(0.0)
    acc = pd.to_numeric(access.reindex(points.index), errors="coerce")
    # residents off the network reach no places: they count with zero access
    weighted = pd.DataFrame({"unit": points["unit_code"].astype(str).to_numpy(),
                             "pop": pop.to_numpy(), "places": (acc.fillna(0.0) * pop).to_numpy()})
    sums = weighted.groupby("unit").sum().reindex(units.index).fillna(0.0)
    out = pd.DataFrame({"name": units["name"].to_numpy(),
                        "township_code": units["township_code"].to_numpy()},
                       index=units.index.copy())
    out["population"] = sums["pop"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        out["places_per_1000"] = np.where(out["population"] > 0, sums["places"].to_numpy()
                                          / out["population"].where(out["population"] > 0, 1),
                                          np.nan)
    if target is None:
        out["meets_target"] = pd.array([pd.NA] * len(out), dtype="boolean")
    else:
        out["meets_target"] = pd.array(
            [None if math.isnan(v) else target.is_met(v) for v in out["places_per_1000"]],
            dtype="boolean")
    total_pop = float(pop.sum())
    county_value = float(weighted["places"].sum() / total_pop) if total_pop > 0 else math.nan
    county: dict[str, Any] = {
        "places_per_1000": county_value,
        "places_per_1000_total": (capacity_total / total_pop * 1000.0
                                  if capacity_total is not None and total_pop > 0 else None),
        "population": total_pop,
        "target": target,
        "met": None if target is None else bool(target.is_met(county_value)),
    }
    return out, county
