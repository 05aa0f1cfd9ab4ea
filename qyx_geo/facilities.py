"""Facility layers (托育, 老年助餐, 医疗卫生, 体育健身): loading, validation and code assignment.

The embedded layers live in ``data/facilities/<layer>.geojson`` (WGS84 points) with the columns
:data:`qyx_geo.schema.FACILITY_COLUMNS` and an ``id``; real rows say ``source="osm"`` and carry the
OpenStreetMap attribution, generated rows say ``source="synthetic"``. User registers enter through
the intake stage, which reuses :func:`validate_facilities` so that every layer, embedded or not,
passes the same checks: required columns, unique ids, known layer/source/codes, codes that agree
with each other, non-negative capacity and points inside the county.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import overload

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry.base import BaseGeometry

from qyx_geo import _paths
from qyx_geo._errors import DataFileError, UnknownCodeError, UnknownServiceError
from qyx_geo._validate import (
    RowRef,
    check_choice,
    check_known_codes,
    check_points_in_outline,
    check_township_matches_unit,
    check_unique_ids,
    normalise_codes,
    plain,
    read_vector,
    require_columns,
)
from qyx_geo.crs import metric_crs_of
from qyx_geo.schema import FACILITY_COLUMNS, FACILITY_LAYERS, SOURCES, WGS84
from qyx_geo.services import load_registry, service_ids
from qyx_geo.units import load_outline, load_units

__all__ = [
    "FACILITY_LEVELS",
    "assign_unit_codes",
    "facilities_dir",
    "load_facilities",
    "validate_facilities",
]

logger = logging.getLogger(__name__)
#: Levels/types per layer, township level first (from the service registry, read on first use).
FACILITY_LEVELS: dict[str, tuple[str, ...]]



def __getattr__(name: str) -> object:
    # FACILITY_LEVELS comes from the service registry, read on first use (PEP 562).
    if name == "FACILITY_LEVELS":
        return {sid: s.levels for sid, s in load_registry().items()}
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def facilities_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the ``facilities`` folder of ``data_dir`` (default: the embedded dataset)."""
    base = Path(data_dir) if data_dir is not None else _paths.data_dir()
    return base / "facilities"


def assign_unit_codes(points: gpd.GeoDataFrame | gpd.GeoSeries, units: gpd.GeoDataFrame, *,
                      max_dist_m: float = 500.0) -> pd.DataFrame:
    """Return ``unit_code`` and ``township_code`` of the unit each point lies in.

    Points on the county's edge (within ``max_dist_m`` of a unit) take the nearest unit; points
    farther away get missing codes. The result is indexed like ``points``.

    Parameters
    ----------
    points
        Point geometries (any CRS).
    units
        Units as from :func:`qyx_geo.units.load_units` (index: 12-digit code).
    max_dist_m
        Largest distance to the nearest unit for points outside every unit.
    """
    geoms = points.geometry if isinstance(points, gpd.GeoDataFrame) else points
    if geoms.crs is None:
        geoms = geoms.set_crs(WGS84)
    metric = metric_crs_of(units)
    left = gpd.GeoDataFrame({"_pos": np.arange(len(geoms))}, geometry=geoms.to_crs(metric)
                            .to_numpy(), crs=metric)
    right = gpd.GeoDataFrame({"_code": units.index.astype(str),
                              "_town": units["township_code"].astype(str).to_numpy()},
                             geometry=units.to_crs(metric).geometry.to_numpy(), crs=metric)
    hit = gpd.sjoin(left, right, how="left", predicate="within")
    hit = hit.sort_values("_pos", kind="stable").drop_duplicates("_pos")
    code = hit["_code"].to_numpy(dtype=object)
    town = hit["_town"].to_numpy(dtype=object)
    miss = pd.isna(code)
    if miss.any():
        near = gpd.sjoin_nearest(left[miss], right, max_distance=max_dist_m, how="left")
        near = near.sort_values("_pos", kind="stable").drop_duplicates("_pos")
        code[miss] = near["_code"].to_numpy(dtype=object)
        town[miss] = near["_town"].to_numpy(dtype=object)
    return pd.DataFrame({"unit_code": code, "township_code": town}, index=geoms.index)


def validate_facilities(gdf: gpd.GeoDataFrame, *, source_name: str, layer: str | None = None,
                        units: gpd.GeoDataFrame | None = None,
                        outline: BaseGeometry | None = None,
                        data_dir: str | os.PathLike[str] | None = None,
                        rows: RowRef | None = None) -> gpd.GeoDataFrame:
    """Check a facility table and return it indexed by ``id`` with the standard columns first.

    Checks, each with a message naming ``source_name``, the row and the fix: required columns
    (suggesting the closest present name), unique non-empty ids, ``layer`` in
    the service registry (and equal to ``layer`` if given), ``source`` in
    :data:`qyx_geo.schema.SOURCES`, known 12-digit ``unit_code`` and 9-digit ``township_code``
    that agree, ``capacity`` empty or a number >= 0, and points inside the county outline
    (suggesting a lon/lat swap where that would fit).

    Parameters
    ----------
    gdf
        The table as read: ``id`` as a column or as the index; WGS84 points (a missing CRS is
        taken as WGS84; other CRSs are converted).
    source_name
        File name or label used in messages.
    layer
        The layer the table must hold (``None``: any of the four, per row).
    units, outline
        Units and county outline to check against (default: loaded from ``data_dir``).
    data_dir
        Dataset folder for the defaults.
    rows
        How the source numbers its rows (default: ``feature 1`` …).

    Returns
    -------
    geopandas.GeoDataFrame
        A new frame indexed by ``id`` (str), WGS84, columns ``FACILITY_COLUMNS`` then any extra.
    """
    if layer is not None and layer not in service_ids():
        msg = f"layer must be one of {service_ids()!r}, got {layer!r}."
        raise UnknownServiceError(msg)
    rows = rows or RowRef("feature", 1)
    df = gdf.copy()
    if "id" not in df.columns and df.index.name == "id":
        df = df.reset_index()
    if df.crs is None:
        df = df.set_crs(WGS84)
    df = df.to_crs(WGS84)
    require_columns(df.columns, ("id", *FACILITY_COLUMNS), source_name=source_name)
    if len(df) == 0:
        msg = f"{source_name}: the facility table has no rows. Add at least one facility."
        raise DataFileError(msg)
    df["id"] = df["id"].map(lambda v: v if v is None or isinstance(v, float) else str(v).strip())
    check_unique_ids(df["id"], source_name=source_name, rows=rows)
    ids = list(df["id"])
    check_choice(df["layer"], (layer,) if layer else tuple(service_ids()), column="layer",
                 source_name=source_name, rows=rows, ids=ids)
    check_choice(df["source"], SOURCES, column="source", source_name=source_name, rows=rows,
                 ids=ids)
    _check_capacity(df, source_name, rows, ids)
    units = units if units is not None else load_units(data_dir=data_dir)
    df["unit_code"] = normalise_codes(df["unit_code"])
    df["township_code"] = normalise_codes(df["township_code"])
    for column in ("unit_code", "township_code"):
        empty = [i for i, v in enumerate(df[column]) if _is_missing(v)]
        if empty:
            i = empty[0]
            msg = (f"{source_name}: column {column!r} is empty at {rows(i, ids[i])} "
                   f"({len(empty)} row(s)). Fill in the official code, or derive both codes from "
                   "the location with qyx_geo.facilities.assign_unit_codes(points, units).")
            raise UnknownCodeError(msg)
    check_known_codes(df["unit_code"], units["name"].to_dict(), column="unit_code",
                      source_name=source_name, rows=rows, ids=ids)
    towns = dict(zip(units["township_code"], units["township_name"], strict=False))
    check_known_codes(df["township_code"], towns, column="township_code",
                      source_name=source_name, rows=rows, ids=ids)
    check_township_matches_unit(df["unit_code"], df["township_code"], units["township_code"],
                                source_name=source_name, rows=rows, ids=ids,
                                unit_names=units["name"].to_dict())
    if outline is None:
        outline = load_outline(data_dir=data_dir).geometry.iloc[0]
    check_points_in_outline(df.geometry, outline, source_name=source_name, rows=rows, ids=ids)
    extra = [c for c in df.columns if c not in ("id", *FACILITY_COLUMNS)]
    df["capacity"] = pd.to_numeric(df["capacity"]).astype(float)
    out = df[["id", *FACILITY_COLUMNS[:-1], *extra, "geometry"]].set_index("id")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)


def _check_capacity(df: pd.DataFrame, source_name: str, rows: RowRef, ids: list[object]) -> None:
    raw = df["capacity"]
    num = pd.to_numeric(raw, errors="coerce")
    bad = [i for i, (r, v) in enumerate(zip(raw, num, strict=True))
           if (not _is_missing(r) and not np.isfinite(v)) or (np.isfinite(v) and v < 0)]
    if bad:
        i = bad[0]
        msg = (f"{source_name}: column 'capacity' at {rows(i, ids[i])} is {plain(raw.iloc[i])!r}; "
               "capacity (托位/座位/床位) must be a number >= 0, or empty where it does not apply "
               f"({len(bad)} bad row(s)).")
        raise DataFileError(msg)


def _is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str)
                                                                     and v.strip() == "")


@overload
def load_facilities(layer: str, *, path: str | os.PathLike[str] | None = ...,
                    data_dir: str | os.PathLike[str] | None = ...,
                    units: gpd.GeoDataFrame | None = ...,
                    outline: BaseGeometry | None = ...) -> gpd.GeoDataFrame: ...
@overload
def load_facilities(layer: None = ..., *, path: str | os.PathLike[str] | None = ...,
                    data_dir: str | os.PathLike[str] | None = ...,
                    units: gpd.GeoDataFrame | None = ...,
                    outline: BaseGeometry | None = ...) -> dict[str, gpd.GeoDataFrame]: ...


def load_facilities(layer: str | None = None, *, path: str | os.PathLike[str] | None = None,
                    data_dir: str | os.PathLike[str] | None = None,
                    units: gpd.GeoDataFrame | None = None,
                    outline: BaseGeometry | None = None
                    ) -> gpd.GeoDataFrame | dict[str, gpd.GeoDataFrame]:
    """Load and validate one facility layer, or all four as a dict.

    Parameters
    ----------
    layer
        ``"nursery"``, ``"canteen"``, ``"clinic"`` or ``"sports"``; ``None`` loads all four.
    path
        Read this file (GeoJSON/GeoPackage) for ``layer`` instead of the embedded one.
    data_dir
        Dataset folder (default: the embedded ``data/`` or ``QYX_DATA_DIR``); its units and
        outline are used for validation.
    units, outline
        Already loaded units and county outline (WGS84) to validate against (default: read from
        ``data_dir``).

    Returns
    -------
    geopandas.GeoDataFrame or dict of str to geopandas.GeoDataFrame
        Indexed by ``id``; WGS84 points; columns :data:`qyx_geo.schema.FACILITY_COLUMNS` first.
    """
    if layer is None:
        if path is not None:
            msg = "path= needs a layer: load_facilities('nursery', path=...)."
            raise ValueError(msg)
        if outline is None:
            outline = load_outline(data_dir=data_dir).geometry.iloc[0]
        if units is None:
            units = load_units(data_dir=data_dir, outline=outline)
        folder = facilities_dir(data_dir)
        # the core layers must exist; the registry's optional layers are loaded where present
        names = [*FACILITY_LAYERS, *(s for s in service_ids() if s not in FACILITY_LAYERS
                                     and (folder / f"{s}.geojson").exists())]
        return {name: _load_one(name, None, data_dir, units, outline) for name in names}
    if layer not in service_ids():
        msg = f"layer must be one of {service_ids()!r} or None, got {layer!r}."
        raise UnknownServiceError(msg)
    return _load_one(layer, path, data_dir, units, outline)


def _load_one(layer: str, path: str | os.PathLike[str] | None,
              data_dir: str | os.PathLike[str] | None, units: gpd.GeoDataFrame | None,
              outline: BaseGeometry | None) -> gpd.GeoDataFrame:
    p = Path(path) if path is not None else facilities_dir(data_dir) / f"{layer}.geojson"
    gdf = read_vector(p)
    out = validate_facilities(gdf, source_name=str(p), layer=layer, units=units, outline=outline,
                              data_dir=data_dir, rows=RowRef.for_path(p))
    logger.debug("loaded %d %s facilities from %s", len(out), layer, p)
    return out
