"""What-if scenarios: add or close facilities, re-run the audit, compare before and after.

A scenario is just another facility layer passed to
:func:`qyx_geo.audit.run_audit` (``facilities={service: layer}``). This module builds such layers
without mutating the dataset's, and tabulates what changed:

- :func:`add_facilities` appends new points to a layer (``source="user"``, ``level="拟建"``);
- :func:`close_facilities` removes facilities by id;
- :func:`sites_at_gaps` proposes one site per failing village/community, at its largest cluster
  of residents left out of the circle (a planner's first guess, not an optimum: see
  :mod:`qyx_geo.siting` for that);
- :func:`compare_audits` puts two audits of one service side by side, per township or per unit.

Examples
--------
>>> from qyx_geo.audit import run_audit                                  # doctest: +SKIP
>>> before = run_audit(ds, year=2027, services=["canteen"], network=net)  # doctest: +SKIP
>>> sa = before.services["canteen"]                                      # doctest: +SKIP
>>> layer = add_facilities(sa.facilities, sites_at_gaps(sa, township="观海卫镇"))  # doctest: +SKIP
>>> after = run_audit(ds, year=2027, services=["canteen"], network=before.net,
...                   facilities={"canteen": layer})                      # doctest: +SKIP
>>> compare_audits(sa, after.services["canteen"])                        # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import pandas as pd

from qyx_geo._errors import ColumnError, DuplicateIdError, SettingsError, UnknownCodeError
from qyx_geo._validate import township_code
from qyx_geo.schema import FACILITY_COLUMNS, WGS84

__all__ = [
    "NEW_LEVEL",
    "add_facilities",
    "close_facilities",
    "compare_audits",
    "sites_at_gaps",
]

logger = logging.getLogger(__name__)

#: ``level`` given to facilities added by a scenario (planned, not yet built).
NEW_LEVEL = "拟建"

_COUNTY_KEY = "county"


def _layer_id(layer: gpd.GeoDataFrame) -> str | None:
    if "layer" in layer.columns and len(layer):
        values = layer["layer"].dropna().astype(str).unique()
        if len(values) == 1:
            return str(values[0])
    return None


def _check_layer(layer: object, name: str) -> gpd.GeoDataFrame:
    if not isinstance(layer, gpd.GeoDataFrame):
        msg = (f"{name} must be a GeoDataFrame of facility points (e.g. "
               f"ServiceAudit.facilities), got {type(layer).__name__!r}.")
        raise SettingsError(msg)
    return layer


def add_facilities(layer: gpd.GeoDataFrame, new: gpd.GeoDataFrame, *,
                   source: str = "user", level: str = NEW_LEVEL) -> gpd.GeoDataFrame:
    """Return ``layer`` with the facilities of ``new`` appended (neither input is changed).

    Parameters
    ----------
    layer
        A facility layer indexed by ``id`` (e.g. ``ServiceAudit.facilities`` or
        ``dataset.facilities["canteen"]``).
    new
        Points to add, indexed by unique ids not already in ``layer``. Columns of
        :data:`qyx_geo.schema.FACILITY_COLUMNS` that ``new`` lacks are filled in: ``layer``
        from ``layer``, ``level`` and ``source`` from the options, ``name`` as
        ``"<level>-<id>"``, ``capacity`` empty. Any CRS (reprojected to the layer's).
    source, level
        Values for rows of ``new`` that have none.

    Returns
    -------
    geopandas.GeoDataFrame
        The layer's rows followed by the new ones, in the layer's CRS.

    Raises
    ------
    DuplicateIdError
        An id of ``new`` is already in ``layer`` or repeated within ``new``.
    SettingsError
        ``new`` is not a GeoDataFrame of points, or has no CRS.
    """
    layer = _check_layer(layer, "layer")
    new = _check_layer(new, "new")
    if len(new) == 0:
        return layer.copy()
    if new.crs is None:
        msg = ("new has no CRS; set it first, e.g. new.set_crs('EPSG:4326') for longitude/"
               "latitude in WGS84.")
        raise SettingsError(msg)
    types = set(new.geom_type.dropna())
    if types - {"Point"} or new.geometry.isna().any():
        msg = (f"new must hold one point per facility; found geometry types {sorted(types)!r} "
               f"or empty geometries. Use the centroid or a representative point of each site.")
        raise SettingsError(msg)
    ids = new.index.astype(str)
    repeated = sorted(set(ids[ids.duplicated()]))
    clash = sorted(set(ids) & set(layer.index.astype(str)))
    if repeated or clash:
        msg = (f"new facility ids must be unique and not in the layer already; repeated: "
               f"{repeated[:5]!r}, already in the layer: {clash[:5]!r}. Rename them "
               f"(e.g. prefix 'NEW-').")
        raise DuplicateIdError(msg)
    crs = layer.crs if layer.crs is not None else WGS84
    geom = layer.geometry.name
    added = new.to_crs(crs)
    defaults: dict[str, Any] = {"layer": _layer_id(layer), "level": level, "source": source}
    columns = [c for c in layer.columns if c != geom]
    columns += [c for c in FACILITY_COLUMNS if c not in columns and c != "geometry"]
    frame = pd.DataFrame(index=pd.Index(ids, name=layer.index.name or "id"))
    for col in columns:
        if col in added.columns:
            values = added[col].to_numpy()
            if col in defaults:
                values = np.where(pd.isna(values), defaults[col], values)
        elif col == "name":
            values = np.array([f"{level}-{i}" for i in ids], dtype=object)
        elif col == "capacity":
            values = np.full(len(added), np.nan)
        else:
            values = np.full(len(added), defaults.get(col), dtype=object)
        frame[col] = values
    extra = gpd.GeoDataFrame(frame, geometry=added.geometry.to_numpy(), crs=crs)
    extra = extra.rename_geometry(geom) if geom != "geometry" else extra
    base = layer if layer.crs is not None else layer.set_crs(crs)
    result = gpd.GeoDataFrame(pd.concat([base, extra]), geometry=geom, crs=crs)
    logger.info("scenario: %d facilities added to %s (%d in all)", len(extra),
                _layer_id(layer) or "layer", len(result))
    return result


def close_facilities(layer: gpd.GeoDataFrame, ids: str | Iterable[str]) -> gpd.GeoDataFrame:
    """Return ``layer`` without the facilities ``ids`` (the input is not changed).

    Raises
    ------
    UnknownCodeError
        An id is not in the layer (the message lists a few that are).
    """
    layer = _check_layer(layer, "layer")
    wanted = [ids] if isinstance(ids, str) else [str(i) for i in ids]
    index = layer.index.astype(str)
    missing = [i for i in wanted if i not in set(index)]
    if missing:
        msg = (f"Cannot close {missing!r}: not in the layer (ids such as "
               f"{list(index[:3])!r}). Check the id column of ServiceAudit.facilities.")
        raise UnknownCodeError(msg)
    out = layer[~index.isin(wanted)].copy()
    logger.info("scenario: %d facilities closed (%d left)", len(layer) - len(out), len(out))
    return out


def _township_code(service_audit: Any, township: str) -> str:
    units = service_audit.units
    table = (units[["township_code", "township_name"]].astype(str)
             .drop_duplicates("township_code").set_index("township_code")
             .rename(columns={"township_name": "name"}))
    return township_code(table, township)


def sites_at_gaps(service_audit: Any, *, township: str | None = None,
                  units: Iterable[str] | None = None) -> gpd.GeoDataFrame:
    """Propose one new facility in each failing village/community, where most are left out.

    For every judged unit that fails the service (optionally only in ``township`` or among
    ``units``), the site is the demand cluster of that unit with the most residents (of the
    service's demand group) beyond the threshold — the simple rule a planner would try first.

    Parameters
    ----------
    service_audit
        A :class:`qyx_geo.audit.ServiceAudit`.
    township
        Township name or 9-digit code to restrict the proposal to.
    units
        12-digit unit codes to restrict the proposal to.

    Returns
    -------
    geopandas.GeoDataFrame
        Indexed by ``id`` (``NEW-<service>-<unit code>``), WGS84, ready for
        :func:`add_facilities`: ``name``, ``layer``, ``level`` (``拟建``), ``capacity`` (empty),
        ``township_code``, ``unit_code``, ``source`` (``user``), ``residents_left_out`` (of
        the cluster) and ``geometry``.
    """
    table = service_audit.units
    gaps = service_audit.gaps
    svc = service_audit.service
    failing = table[table["judged"].astype(bool) & ~table["passes"].astype(bool)]
    if township is not None:
        code = _township_code(service_audit, township)
        failing = failing[failing["township_code"].astype(str) == code]
    if units is not None:
        wanted = [units] if isinstance(units, str) else [str(u) for u in units]
        unknown = sorted(set(wanted) - set(table.index.astype(str)))
        if unknown:
            msg = (f"units {unknown[:5]!r} are not villages/communities of the audit; give "
                   f"12-digit codes from ServiceAudit.units.")
            raise UnknownCodeError(msg)
        failing = failing[failing.index.astype(str).isin(wanted)]
    if "residents" not in gaps.columns or "unit_code" not in gaps.columns:
        msg = f"service_audit.gaps lacks 'residents'/'unit_code'; columns: {list(gaps.columns)!r}."
        raise ColumnError(msg)
    cand = gaps[gaps["unit_code"].astype(str).isin(failing.index.astype(str))]
    cand = cand.sort_values(["residents"], ascending=False, kind="stable")
    best = cand[~cand["unit_code"].astype(str).duplicated()]
    best = best.to_crs(WGS84) if best.crs is not None else best.set_crs(WGS84)
    ids = [f"NEW-{svc.id}-{c}" for c in best["unit_code"].astype(str)]
    names = [f"{n}{svc.label_zh}点（{NEW_LEVEL}）" for n in best["unit_name"].astype(str)]
    out = gpd.GeoDataFrame({
        "name": names, "layer": svc.id, "level": NEW_LEVEL, "capacity": np.nan,
        "township_code": best["township_code"].astype(str).to_numpy(),
        "unit_code": best["unit_code"].astype(str).to_numpy(), "source": "user",
        "residents_left_out": best["residents"].to_numpy(dtype=float),
    }, geometry=best.geometry.to_numpy(), crs=WGS84, index=pd.Index(ids, name="id"))
    logger.info("scenario: %d sites proposed for %s", len(out), svc.id)
    return out


def _side(sa: Any, suffix: str, by: str) -> pd.DataFrame:
    if by == "township":
        t = sa.townships
        cols = {"units_passing": "units_passing", "share_passing": "share_passing",
                "rank": "rank"}
        out = t[list(cols)].rename(columns=lambda c: f"{c}_{suffix}")
        return out
    u = sa.units
    return u[["share_within", "passes"]].rename(columns=lambda c: f"{c}_{suffix}")


def compare_audits(before: Any, after: Any, *,
                   by: Literal["township", "unit"] = "township") -> pd.DataFrame:
    """Put two audits of the same service side by side.

    Parameters
    ----------
    before, after
        :class:`qyx_geo.audit.ServiceAudit` of one service (e.g. the dataset's layer and a
        scenario's), over the same units.
    by
        ``"township"``: one row per township plus a last row ``"county"`` (全市) with
        ``name``, ``units_judged``, ``units_passing_before``/``_after``, ``change``,
        ``share_passing_before``/``_after``, ``rank_before``/``_after`` and ``target``.
        ``"unit"``: the villages/communities whose result changed, with ``name``,
        ``township_name``, ``share_within_before``/``_after``, ``passes_before``/``_after``.

    Raises
    ------
    SettingsError
        The audits are of different services or years, or ``by`` is unknown.
    """
    if by not in ("township", "unit"):
        msg = f"by must be 'township' or 'unit', got {by!r}."
        raise SettingsError(msg)
    for sa, name in ((before, "before"), (after, "after")):
        if not hasattr(sa, "townships") or not hasattr(sa, "units"):
            msg = f"{name} must be a ServiceAudit, got {type(sa).__name__!r}."
            raise SettingsError(msg)
    if before.service.id != after.service.id or before.year != after.year:
        msg = (f"Cannot compare {before.service.id!r} {before.year} with {after.service.id!r} "
               f"{after.year}: audit the same service and year twice.")
        raise SettingsError(msg)
    if by == "unit":
        left = before.units[["name", "township_name"]].join(_side(before, "before", "unit"))
        table = left.join(_side(after, "after", "unit"), how="inner")
        changed = (table["passes_before"] != table["passes_after"]) | ~np.isclose(
            table["share_within_before"].astype(float), table["share_within_after"].astype(float),
            equal_nan=True)
        return table[changed.to_numpy()].sort_values(["township_name", "name"])
    base = before.townships[["name", "units_judged"]]
    table = base.join(_side(before, "before", "township")).join(
        _side(after, "after", "township"), how="inner")
    table["change"] = table["units_passing_after"] - table["units_passing_before"]
    target = before.county.get("target")
    value = getattr(target, "value", np.nan)
    table["target"] = value
    cb, ca = before.county, after.county
    county = pd.DataFrame({
        "name": ["全市 (county)"], "units_judged": [cb["units_judged"]],
        "units_passing_before": [cb["units_passing"]],
        "share_passing_before": [cb["share_passing"]],
        "rank_before": [pd.NA], "units_passing_after": [ca["units_passing"]],
        "share_passing_after": [ca["share_passing"]], "rank_after": [pd.NA],
        "change": [ca["units_passing"] - cb["units_passing"]], "target": [value],
    }, index=pd.Index([_COUNTY_KEY], name=table.index.name))
    order = ["name", "units_judged", "units_passing_before", "units_passing_after", "change",
             "share_passing_before", "share_passing_after", "rank_before", "rank_after", "target"]
    return pd.concat([table[order], county[order]])
