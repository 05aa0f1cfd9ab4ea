"""Administrative units of Cixi and the residents who must be reached: loaders with validation.

* :func:`load_outline` — the county outline (WGS84, cnmaps/Amap-derived, GCJ-02 corrected);
* :func:`load_townships` — the 24 township-level units (index: 9-digit code), seats and
  approximate areas;
* :func:`load_units` — the 406 villages/communities (index: 12-digit code), kinds, synthetic
  centres and approximate areas;
* :func:`load_village_centres` / :func:`load_seats` — the same as points;
* :func:`load_demand` — synthetic residential clusters with population by age group.

Codes and names are the official NBS 2023 ones; seats come from GeoNames where it has them; every
polygon, centre and demand point is synthetic and flagged so (``approximate``, ``*_source``,
``source``). All loaders return new GeoDataFrames in WGS84 and validate what they read; errors
name the file, the row and the fix.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from qyx_geo import _paths
from qyx_geo._errors import DataFileError, UnknownCodeError
from qyx_geo._validate import (
    RowRef,
    check_choice,
    check_code_format,
    check_known_codes,
    check_points_in_outline,
    check_township_matches_unit,
    check_unique_ids,
    normalise_codes,
    plain,
    read_csv,
    read_vector,
    require_columns,
)
from qyx_geo.schema import (
    DEMAND_COLUMNS,
    SOURCES,
    TOWNSHIP_COLUMNS,
    UNIT_COLUMNS,
    UNIT_KINDS,
    WGS84,
)

__all__ = [
    "CENSUS_2020_POPULATION",
    "DEMAND_CSV_COLUMNS",
    "TOWNSHIP_KINDS",
    "boundaries_dir",
    "load_demand",
    "load_outline",
    "load_seats",
    "load_townships",
    "load_units",
    "load_village_centres",
]

logger = logging.getLogger(__name__)

#: Cixi's resident population in the 7th national census (2020); the demand points sum to it.
CENSUS_2020_POPULATION = 1_829_488

#: Township kinds: 街道 (sub-district), 镇 (town), 乡 (rural township), 开发区 (development
#: zone/park).
TOWNSHIP_KINDS = ("街道", "镇", "乡", "开发区")

#: Columns of ``data/boundaries/demand.csv`` in file order.
DEMAND_CSV_COLUMNS = ("id", "unit_code", "township_code", "pop", "pop_0_3", "pop_60p", "lon", "lat",
                      "source")

_UNIT_EXTRA = ("centre_lon", "centre_lat", "centre_source", "geometry_source")
_TOWNSHIP_EXTRA = ("seat_geonames_name", "seat_geonameid", "source", "geometry_source")


def boundaries_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the ``boundaries`` folder of ``data_dir`` (default: the embedded dataset)."""
    base = Path(data_dir) if data_dir is not None else _paths.data_dir()
    return base / "boundaries"


def _pick(path: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str] | None,
          name: str) -> Path:
    return Path(path) if path is not None else boundaries_dir(data_dir) / name


def load_outline(*, path: str | os.PathLike[str] | None = None,
                 data_dir: str | os.PathLike[str] | None = None) -> gpd.GeoDataFrame:
    """Return the county outline as a one-row GeoDataFrame (WGS84, columns adcode, name, source).

    Parameters
    ----------
    path
        Read this file instead of ``<data_dir>/boundaries/county_outline.geojson``.
    data_dir
        Dataset folder (default: the embedded ``data/`` or ``QYX_DATA_DIR``).
    """
    p = _pick(path, data_dir, "county_outline.geojson")
    gdf = read_vector(p).to_crs(WGS84)
    geom = shapely.make_valid(shapely.union_all(gdf.geometry.to_numpy()))
    if geom.is_empty or geom.geom_type not in {"Polygon", "MultiPolygon"} or geom.area <= 0:
        msg = (f"{str(p)!r}: the county outline must be a non-empty (Multi)Polygon, got "
               f"{geom.geom_type!r}. Restore the file with `python -m qyx_geo.synth`.")
        raise DataFileError(msg)
    first = gdf.iloc[0]
    return gpd.GeoDataFrame(
        {"adcode": [str(first.get("adcode", ""))], "name": [str(first.get("name", ""))],
         "source": [str(first.get("source", "unknown"))]},
        geometry=[geom], crs=WGS84)


def _outline_or(outline: BaseGeometry | None,
                data_dir: str | os.PathLike[str] | None) -> BaseGeometry:
    """Return ``outline``, or the outline of ``data_dir`` when none is given."""
    if outline is not None:
        return outline
    return load_outline(data_dir=data_dir).geometry.iloc[0]


def _check_flags(df: pd.DataFrame, column: str, *, source_name: str, rows: RowRef,
                 ids: list[object]) -> None:
    bad = [i for i, v in enumerate(df[column]) if not isinstance(v, bool | np.bool_)]
    if bad:
        i = bad[0]
        msg = (f"{source_name}: column {column!r} must be true/false; {rows(i, ids[i])} holds "
               f"{plain(df[column].iloc[i])!r}. Write JSON booleans (true/false).")
        raise DataFileError(msg)


def load_townships(*, path: str | os.PathLike[str] | None = None,
                   data_dir: str | os.PathLike[str] | None = None,
                   outline: BaseGeometry | None = None) -> gpd.GeoDataFrame:
    """Return the 24 township-level units indexed by their 9-digit code (WGS84).

    Columns are :data:`qyx_geo.schema.TOWNSHIP_COLUMNS` plus ``seat_geonames_name``,
    ``seat_geonameid``, ``source`` (``nbs``: code and name) and ``geometry_source``
    (``synthetic``: the polygon is a weighted Voronoi cell, ``approximate=True``).

    Parameters
    ----------
    path
        Read this file instead of ``<data_dir>/boundaries/townships.geojson``.
    data_dir
        Dataset folder (default: the embedded ``data/`` or ``QYX_DATA_DIR``).
    outline
        County outline (WGS84) to check the seats against (default: read from ``data_dir``).
    """
    p = _pick(path, data_dir, "townships.geojson")
    name = str(p)
    gdf = read_vector(p).to_crs(WGS84)
    require_columns(gdf.columns, ("code", *TOWNSHIP_COLUMNS), source_name=name)
    rows = RowRef.for_path(p)
    gdf["code"] = normalise_codes(gdf["code"])
    ids = list(gdf["code"])
    check_unique_ids(gdf["code"], source_name=name, column="code", rows=rows)
    check_code_format(gdf["code"], digits=9, column="code", source_name=name, rows=rows, ids=ids)
    check_choice(gdf["kind"], TOWNSHIP_KINDS, column="kind", source_name=name, rows=rows, ids=ids)
    check_choice(gdf["seat_source"], SOURCES, column="seat_source", source_name=name, rows=rows,
                  ids=ids)
    _check_flags(gdf, "approximate", source_name=name, rows=rows, ids=ids)
    seats = gpd.GeoSeries(gpd.points_from_xy(gdf["seat_lon"], gdf["seat_lat"]), crs=WGS84)
    check_points_in_outline(seats, _outline_or(outline, data_dir), source_name=f"{name} (seats)",
                            rows=rows, ids=ids)
    extra = [c for c in _TOWNSHIP_EXTRA if c in gdf.columns]
    for col in ("seat_geonames_name", "seat_geonameid"):
        if col in gdf.columns:
            gdf[col] = gdf[col].fillna("").astype(str)
    out = gdf[["code", *TOWNSHIP_COLUMNS[:-1], *extra, "geometry"]].set_index("code")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)


def load_units(*, path: str | os.PathLike[str] | None = None,
               data_dir: str | os.PathLike[str] | None = None,
               townships: gpd.GeoDataFrame | None = None,
               outline: BaseGeometry | None = None) -> gpd.GeoDataFrame:
    """Return the 406 villages/communities indexed by their 12-digit code (WGS84).

    Columns are :data:`qyx_geo.schema.UNIT_COLUMNS` plus ``centre_lon``/``centre_lat`` (the
    synthetic village centre), ``centre_source`` and ``geometry_source``. ``kind`` is one of
    :data:`qyx_geo.schema.UNIT_KINDS`. Codes and names are the official NBS 2023 ones (``source``
    ``nbs``); polygons are approximate (Voronoi of the centres within the township).

    Parameters
    ----------
    path
        Read this file instead of ``<data_dir>/boundaries/villages.geojson``.
    data_dir
        Dataset folder; the townships of the same folder are used to check ``township_code``.
    townships, outline
        Already loaded townships and outline to check against (default: read from ``data_dir``).
    """
    p = _pick(path, data_dir, "villages.geojson")
    name = str(p)
    gdf = read_vector(p).to_crs(WGS84)
    require_columns(gdf.columns, ("code", *UNIT_COLUMNS, "centre_lon", "centre_lat"),
                    source_name=name)
    rows = RowRef.for_path(p)
    gdf["code"] = normalise_codes(gdf["code"])
    gdf["township_code"] = normalise_codes(gdf["township_code"])
    ids = list(gdf["code"])
    check_unique_ids(gdf["code"], source_name=name, column="code", rows=rows)
    check_code_format(gdf["code"], digits=12, column="code", source_name=name, rows=rows, ids=ids)
    towns = townships if townships is not None else load_townships(data_dir=data_dir,
                                                                   outline=outline)
    check_known_codes(gdf["township_code"], towns["name"].to_dict(), column="township_code",
                      source_name=name, rows=rows, ids=ids)
    mismatch = [i for i, (c, t) in enumerate(zip(gdf["code"], gdf["township_code"], strict=True))
                if c[:9] != t]
    if mismatch:
        i = mismatch[0]
        msg = (f"{name}: {rows(i, ids[i])} has township_code {gdf['township_code'].iloc[i]!r} but "
               f"its code starts with {ids[i][:9]!r}; a unit's township_code is the first 9 digits "
               "of its code. Fix one of the two.")
        raise UnknownCodeError(msg)
    check_choice(gdf["kind"], UNIT_KINDS, column="kind", source_name=name, rows=rows, ids=ids)
    _check_flags(gdf, "approximate", source_name=name, rows=rows, ids=ids)
    centres = gpd.GeoSeries(gpd.points_from_xy(gdf["centre_lon"], gdf["centre_lat"]), crs=WGS84)
    check_points_in_outline(centres, _outline_or(outline, data_dir),
                            source_name=f"{name} (centres)", rows=rows, ids=ids)
    extra = [c for c in _UNIT_EXTRA if c in gdf.columns]
    out = gdf[["code", *UNIT_COLUMNS[:-1], *extra, "geometry"]].set_index("code")
    return gpd.GeoDataFrame(out, geometry="geometry", crs=WGS84)


def load_village_centres(*, data_dir: str | os.PathLike[str] | None = None) -> gpd.GeoDataFrame:
    """Return the synthetic centre of every village/community as points (index: 12-digit code).

    Columns: ``name``, ``township_code``, ``kind``, ``source`` (``synthetic``), geometry (WGS84
    points). The street-network generator runs a rural lane to each of them.
    """
    units = load_units(data_dir=data_dir)
    pts = gpd.points_from_xy(units["centre_lon"], units["centre_lat"])
    return gpd.GeoDataFrame(
        {"name": units["name"], "township_code": units["township_code"], "kind": units["kind"],
         "source": "synthetic"}, geometry=pts, index=units.index, crs=WGS84)


def load_seats(*, data_dir: str | os.PathLike[str] | None = None) -> gpd.GeoDataFrame:
    """Return the township seats as points (index: 9-digit code).

    Columns: ``name``, ``kind``, ``source`` (``geonames`` or ``synthetic``), geometry (WGS84).
    """
    towns = load_townships(data_dir=data_dir)
    pts = gpd.points_from_xy(towns["seat_lon"], towns["seat_lat"])
    return gpd.GeoDataFrame(
        {"name": towns["name"], "kind": towns["kind"], "source": towns["seat_source"]},
        geometry=pts, index=towns.index, crs=WGS84)


def _check_counts(df: pd.DataFrame, *, source_name: str, rows: RowRef, ids: list[object]) -> None:
    """Check that counts are whole and non-negative, and that the age groups fit in ``pop``."""
    for col in ("pop", "pop_0_3", "pop_60p"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = [i for i, v in enumerate(values)
               if not (np.isfinite(v) and v >= 0 and float(v).is_integer())]
        if bad:
            i = bad[0]
            msg = (f"{source_name}: column {col!r} at {rows(i, ids[i])} is "
                   f"{plain(df[col].iloc[i])!r}; "
                   f"resident counts must be whole numbers >= 0 ({len(bad)} bad row(s)).")
            raise DataFileError(msg)
        df[col] = values.astype(np.int64)
    over = np.flatnonzero((df["pop_0_3"] + df["pop_60p"] > df["pop"]).to_numpy())
    if len(over):
        i = int(over[0])
        msg = (f"{source_name}: at {rows(i, ids[i])} pop_0_3 + pop_60p "
               f"({df['pop_0_3'].iloc[i]} + {df['pop_60p'].iloc[i]}) exceeds pop "
               f"({df['pop'].iloc[i]}); the age groups are parts of pop. Fix the counts.")
        raise DataFileError(msg)


def load_demand(*, path: str | os.PathLike[str] | None = None,
                data_dir: str | os.PathLike[str] | None = None,
                units: gpd.GeoDataFrame | None = None,
                outline: BaseGeometry | None = None) -> gpd.GeoDataFrame:
    """Return the demand points (residential clusters) indexed by ``id`` (WGS84 points).

    Columns are :data:`qyx_geo.schema.DEMAND_COLUMNS`: ``unit_code``, ``township_code``, ``pop``
    (residents), ``pop_0_3`` (aged 0–3), ``pop_60p`` (aged 60+), ``source``. The embedded points are
    synthetic and sum to the 2020 census population (:data:`CENSUS_2020_POPULATION`).

    Parameters
    ----------
    path
        Read this CSV instead of ``<data_dir>/boundaries/demand.csv`` (columns
        :data:`DEMAND_CSV_COLUMNS`).
    data_dir
        Dataset folder; its units and outline are used to check codes and coordinates.
    units, outline
        Already loaded units and outline to check against (default: read from ``data_dir``).
    """
    p = _pick(path, data_dir, "demand.csv")
    name = str(p)
    df = read_csv(p, dtype={"id": str, "unit_code": str, "township_code": str, "source": str})
    require_columns(df.columns, DEMAND_CSV_COLUMNS, source_name=name)
    rows = RowRef.for_path(p)
    check_unique_ids(df["id"], source_name=name, rows=rows)
    ids = list(df["id"])
    df["unit_code"] = normalise_codes(df["unit_code"])
    df["township_code"] = normalise_codes(df["township_code"])
    if units is None:
        units = load_units(data_dir=data_dir, outline=outline)
    check_known_codes(df["unit_code"], units["name"].to_dict(), column="unit_code",
                      source_name=name, rows=rows, ids=ids)
    check_township_matches_unit(df["unit_code"], df["township_code"], units["township_code"],
                                source_name=name, rows=rows, ids=ids)
    check_choice(df["source"], SOURCES, column="source", source_name=name, rows=rows, ids=ids)
    _check_counts(df, source_name=name, rows=rows, ids=ids)
    lon = pd.to_numeric(df["lon"], errors="coerce")
    lat = pd.to_numeric(df["lat"], errors="coerce")
    pts = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=WGS84)
    check_points_in_outline(pts, _outline_or(outline, data_dir), source_name=name, rows=rows,
                            ids=ids)
    out = gpd.GeoDataFrame(df[["id", *DEMAND_COLUMNS[:-1]]], geometry=pts.to_numpy(), crs=WGS84)
    return out.set_index("id")
