"""Validation helpers shared by every loader: files, columns, ids, codes and coordinates.

Each helper raises a :mod:`qyx_geo._errors` exception whose message names the file
(``source_name``), the row (``line 5`` of a CSV, ``feature 3`` of a GeoJSON, with its id), the
bad value (``!r``) and the fix. Loaders call them once, at their public entry point; the helpers
never mutate their input.

Rows are described with :class:`RowRef`, which knows how a file numbers its rows: CSV data start
on line 2 (after the header), GeoJSON features and spreadsheet rows on 1 or 2.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from shapely.geometry.base import BaseGeometry

from qyx_geo._errors import (
    ColumnError,
    CoordinateError,
    DataFileError,
    DuplicateIdError,
    OutsideCountyError,
    UnknownCodeError,
)
from qyx_geo.schema import WGS84

__all__ = [
    "COLUMN_ALIASES",
    "MAX_LISTED",
    "RowRef",
    "check_choice",
    "check_code_format",
    "check_known_codes",
    "check_points_in_outline",
    "check_township_matches_unit",
    "check_unique_ids",
    "closest",
    "normalise_codes",
    "plain",
    "read_csv",
    "read_vector",
    "require_columns",
    "township_code",
]

#: At most this many offending rows are spelled out in a message; the rest are counted.
MAX_LISTED = 5

#: Column names people commonly use instead of ours (lower-cased), checked before fuzzy matching.
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "lon": ("lng", "long", "longitude", "x", "经度"),
    "lat": ("latitude", "y", "纬度"),
    "pop": ("population", "people", "residents", "人口", "常住人口"),
    "name": ("名称", "name_zh", "title"),
    "id": ("fid", "uid", "编号", "identifier"),
    "capacity": ("cap", "places", "seats", "beds", "容量", "托位", "座位", "床位"),
    "unit_code": ("village_code", "vcode", "村社区代码", "code12"),
    "township_code": ("town_code", "street_code", "streetcode", "乡镇代码", "code9"),
    "level": ("type", "kind", "类型", "级别"),
    "source": ("src", "origin", "来源"),
}

_T = TypeVar("_T")


@dataclasses.dataclass(frozen=True)
class RowRef:
    """How a file numbers its rows, for messages ("line 7 (id 'NUR-0003')").

    Attributes
    ----------
    word
        ``"line"`` for CSV, ``"feature"`` for GeoJSON, ``"row"`` for spreadsheets/tables.
    first
        The number of the first data row (2 for a CSV with a header line).
    """

    word: str = "row"
    first: int = 1

    def __call__(self, position: int, ident: object | None = None) -> str:
        """Describe the row at 0-based ``position`` with its identifier if known."""
        text = f"{self.word} {position + self.first}"
        if ident is not None and not (isinstance(ident, float) and math.isnan(ident)):
            text += f" (id {ident!r})"
        return text

    @classmethod
    def for_path(cls, path: str | os.PathLike[str]) -> RowRef:
        """Return the numbering used by the file type of ``path``."""
        suffix = Path(path).suffix.lower()
        if suffix in {".csv", ".txt", ".tsv"}:
            return cls("line", 2)
        if suffix in {".geojson", ".json"}:
            return cls("feature", 1)
        if suffix in {".xlsx", ".xls"}:
            return cls("row", 2)
        return cls("row", 1)


def _enumerate_more(items: Sequence[_T], describe: Callable[[_T], str]) -> str:
    shown = "; ".join(describe(item) for item in items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown += f"; and {len(items) - MAX_LISTED} more"
    return shown


def plain(value: object) -> object:
    """Return numpy scalars as Python values so that messages show ``-20.0``, not ``np.float64``."""
    return value.item() if isinstance(value, np.generic) else value


def closest(value: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """Return the candidate closest to ``value``, or ``None``.

    Known synonyms come first in both directions (a table's ``population`` for our ``pop``, or
    our ``lon`` for a user's ``lng``), then a case-insensitive match, then difflib's best match.
    """
    pool = [str(c) for c in candidates]
    low = str(value).strip().lower()
    for cand in pool:
        if cand.strip().lower() in COLUMN_ALIASES.get(low, ()):
            return cand
    for target, aliases in COLUMN_ALIASES.items():
        if low in aliases and target in pool:
            return target
    lowered = {c.lower(): c for c in pool}
    if low in lowered:
        return lowered[low]
    hits = difflib.get_close_matches(low, list(lowered), n=1, cutoff=cutoff)
    return lowered[hits[0]] if hits else None


def _check_file(path: Path) -> None:
    if not path.exists():
        msg = (f"Data file {str(path)!r} does not exist. Check the path, or rebuild the embedded "
               "dataset with `python -m qyx_geo.synth`.")
        raise DataFileError(msg)
    if path.is_dir():
        msg = f"Data file {str(path)!r} is a folder; pass the path of a file inside it."
        raise DataFileError(msg)
    if path.stat().st_size == 0:
        msg = (f"Data file {str(path)!r} is empty (0 bytes). Restore it from git "
               "(`git checkout -- <file>`) or rebuild it with `python -m qyx_geo.synth`.")
        raise DataFileError(msg)


def read_vector(path: str | os.PathLike[str], *, allow_empty: bool = False) -> gpd.GeoDataFrame:
    """Read a GeoJSON/GeoPackage/Shapefile layer, turning every failure into a ``DataFileError``.

    Parameters
    ----------
    path
        The file to read.
    allow_empty
        Accept a file with no features (otherwise an error says the layer is empty).
    """
    p = Path(path)
    _check_file(p)
    try:
        gdf = gpd.read_file(p)
    except Exception as err:  # pyogrio raises several unrelated types for corrupt input
        msg = (f"Cannot read {str(p)!r} as a vector layer ({type(err).__name__}: {err}). "
               "The file is broken or not GeoJSON/GeoPackage; re-export it from your GIS as "
               "GeoJSON (WGS84).")
        raise DataFileError(msg) from err
    if len(gdf) == 0 and not allow_empty:
        msg = (f"{str(p)!r} contains no features. Add at least one feature, or restore the file "
               "(`python -m qyx_geo.synth` rebuilds the embedded data).")
        raise DataFileError(msg)
    if gdf.crs is None:
        gdf = gdf.set_crs(WGS84)
    return gdf


def read_csv(path: str | os.PathLike[str], *, dtype: Mapping[str, Any] | None = None
             ) -> pd.DataFrame:
    """Read a UTF-8 CSV table, turning every failure into a ``DataFileError``."""
    p = Path(path)
    _check_file(p)
    try:
        df = pd.read_csv(p, dtype=dict(dtype) if dtype else None, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as err:
        msg = (f"Cannot read {str(p)!r} as a UTF-8 CSV table ({type(err).__name__}: {err}). "
               "Save it as 'CSV UTF-8 (comma delimited)' with one header line.")
        raise DataFileError(msg) from err
    if len(df) == 0:
        msg = f"{str(p)!r} has a header but no data rows. Add rows or restore the file."
        raise DataFileError(msg)
    return df


def require_columns(columns: Iterable[Hashable], required: Iterable[str], *,
                    source_name: str, hint: str = "") -> None:
    """Raise ``ColumnError`` listing each missing column with the closest present name.

    The one required-columns check of the package: loaders, scoring, maps, charts and plan files
    all call it.

    Parameters
    ----------
    columns
        The columns the table has (e.g. ``frame.columns``).
    required
        The columns it must have.
    source_name
        File name (or label) used in the message.
    hint
        Extra advice appended to the message (where such a table comes from).
    """
    required = list(required)
    present = [str(c) for c in columns]
    missing = [c for c in required if c not in present]
    if not missing:
        return
    spare = [c for c in present if c not in required]
    hints = []
    for col in missing:
        near = closest(col, spare)
        hints.append(f"{col!r} (found {near!r}: rename it to {col!r})" if near else repr(col))
    msg = (f"{source_name}: missing required column(s) {', '.join(hints)}. "
           f"Columns present: {present!r}; required: {list(required)!r}."
           + (f" {hint}" if hint else ""))
    raise ColumnError(msg)


def township_code(townships: pd.DataFrame, township: object) -> str:
    """Return the 9-digit code of a township given by code or by name: the one lookup rule.

    ``townships`` is indexed by code with a ``name`` column. A code is taken as is; a name must
    name exactly one township — a name shared by several is an error listing their codes, so
    that a wrong township is never picked silently (the four earlier copies took the first, the
    last or only a unique match).

    Raises
    ------
    UnknownCodeError
        The code or name is unknown (with the closest names), or the name is ambiguous.
    """
    key = str(township).strip()
    codes = townships.index.astype(str)
    if key in set(codes):
        return key
    names = townships["name"].astype(str).str.strip()
    hits = list(codes[(names == key).to_numpy()])
    if len(hits) == 1:
        return hits[0]
    if hits:
        listed = ", ".join(f"{c} {key}" for c in hits)
        msg = (f"镇(街道)名称 {key!r} 不唯一 / township name {key!r} is ambiguous ({listed}); "
               "give the 9-digit code instead.")
        raise UnknownCodeError(msg)
    near = closest(key, list(dict.fromkeys(names)))
    suggestion = f"did you mean {near!r}? " if near else ""
    known = sorted(set(names))
    shown = ", ".join(known if len(known) <= 12 else [*known[:3], "…"])
    msg = (f"未知的镇(街道) / unknown township {township!r}; {suggestion}give a 9-digit code or "
           f"one of the names ({shown}; see `qyx info`).")
    raise UnknownCodeError(msg)


def normalise_codes(values: pd.Series) -> pd.Series:
    """Return administrative codes as digit strings (``330282002.0`` → ``"330282002"``).

    Spreadsheets and CSV readers often turn codes into numbers; this undoes that without touching
    values that are not numbers. Missing values stay missing.
    """
    def one(v: object) -> object:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return None
        if isinstance(v, (bool, np.bool_)):
            return str(v)
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if isinstance(v, (float, np.floating)) and float(v).is_integer():
            return str(int(v))
        return str(v).strip()

    return pd.Series([one(v) for v in values], index=values.index, dtype=object,
                     name=values.name)


def check_choice(values: pd.Series, allowed: Sequence[str], *, column: str, source_name: str,
                 rows: RowRef = RowRef(), ids: Sequence[object] | None = None) -> None:
    """Raise ``DataFileError`` at the first value not in ``allowed``, listing the allowed ones."""
    bad = [i for i, v in enumerate(values) if v not in allowed]
    if bad:
        i = bad[0]
        msg = (f"{source_name}: column {column!r} at {rows(i, ids[i] if ids else None)} is "
               f"{plain(values.iloc[i])!r}; allowed values are {list(allowed)!r} "
               f"({len(bad)} bad row(s)).")
        raise DataFileError(msg)


def check_code_format(codes: pd.Series, *, digits: int, column: str, source_name: str,
                      rows: RowRef = RowRef(), ids: Sequence[object] | None = None) -> None:
    """Check that every code is a string of exactly ``digits`` digits (no missing values)."""
    bad = [i for i, v in enumerate(codes)
           if not (isinstance(v, str) and len(v) == digits and v.isdigit())]
    if not bad:
        return
    listed = _enumerate_more(
        bad, lambda i: f"{rows(i, ids[i] if ids is not None else None)}: {codes.iloc[i]!r}")
    msg = (f"{source_name}: column {column!r} must hold {digits}-digit official codes as text; "
           f"bad values at {listed}. Write the codes as text (a leading apostrophe in Excel) "
           f"without spaces, e.g. {'330282002002'[:digits]!r}.")
    raise UnknownCodeError(msg)


def check_known_codes(codes: pd.Series, known: Mapping[str, str] | Collection[str], *,
                      column: str, source_name: str, rows: RowRef = RowRef(),
                      ids: Sequence[object] | None = None) -> None:
    """Check that every code is one of ``known`` (code → name mapping or a collection).

    The message names each row, its unknown code and the closest official code (with its name
    when ``known`` is a mapping).
    """
    names = known if isinstance(known, Mapping) else None
    pool = set(known)
    bad = [i for i, v in enumerate(codes) if v not in pool]
    if not bad:
        return
    ordered = sorted(pool)

    def describe(i: int) -> str:
        value = codes.iloc[i]
        text = f"{rows(i, ids[i] if ids is not None else None)}: {value!r}"
        near = difflib.get_close_matches(str(value), ordered, n=1, cutoff=0.75)
        if near:
            label = f" {names[near[0]]}" if names else ""
            text += f" (did you mean {near[0]!r}{label}?)"
        return text

    msg = (f"{source_name}: column {column!r} has code(s) that are not the region's official "
           f"units: {_enumerate_more(bad, describe)}. Use the codes of the region pack's units "
           "file (boundaries/villages.geojson, boundaries/townships.geojson).")
    raise UnknownCodeError(msg)


def check_township_matches_unit(unit_codes: pd.Series, township_codes: pd.Series,
                                unit_townships: pd.Series, *, source_name: str,
                                rows: RowRef = RowRef(), ids: Sequence[object] | None = None,
                                unit_names: Mapping[str, str] | None = None) -> None:
    """Check that each row's township code is the township of its unit code.

    ``unit_townships`` maps unit code → township code (``units["township_code"]``). The message
    names the first disagreeing row, the unit (with its name when ``unit_names`` is given), the
    township it belongs to and how many rows disagree.
    """
    expected = unit_codes.map(unit_townships)
    wrong = np.flatnonzero((expected != township_codes).to_numpy())
    if not len(wrong):
        return
    i = int(wrong[0])
    unit = unit_codes.iloc[i]
    label = f" ({unit_names[unit]})" if unit_names and unit in unit_names else ""
    msg = (f"{source_name}: {rows(i, ids[i] if ids is not None else None)} has township_code "
           f"{township_codes.iloc[i]!r} but unit {unit!r}{label} belongs to "
           f"{expected.iloc[i]!r}. Set township_code to {expected.iloc[i]!r} "
           f"({len(wrong)} row(s) disagree).")
    raise UnknownCodeError(msg)


def check_unique_ids(ids: pd.Series, *, source_name: str, column: str = "id",
                     rows: RowRef = RowRef()) -> None:
    """Raise ``DuplicateIdError`` naming each repeated id and the rows that carry it."""
    missing = [i for i, v in enumerate(ids) if v is None or (isinstance(v, float) and math.isnan(v))
               or str(v).strip() == ""]
    if missing:
        listed = _enumerate_more(missing, lambda i: rows(i))
        msg = f"{source_name}: column {column!r} is empty at {listed}. Give every row a unique id."
        raise DuplicateIdError(msg)
    dup_mask = ids.duplicated(keep=False).to_numpy()
    if not dup_mask.any():
        return
    groups: dict[object, list[int]] = {}
    for i in np.flatnonzero(dup_mask):
        groups.setdefault(ids.iloc[i], []).append(int(i))
    listed = _enumerate_more(
        list(groups.items()),
        lambda kv: f"{kv[0]!r} at {', '.join(rows(i) for i in kv[1])}")
    msg = (f"{source_name}: column {column!r} must be unique but repeats {listed}. "
           "Give each row its own id (e.g. append -2) or remove the duplicate rows.")
    raise DuplicateIdError(msg)


def check_points_in_outline(points: gpd.GeoSeries, outline: BaseGeometry, *, source_name: str,
                            tolerance_m: float = 250.0, rows: RowRef = RowRef(),
                            ids: Sequence[object] | None = None) -> None:
    """Check that every geometry is a non-empty point inside the county outline.

    Parameters
    ----------
    points
        Point geometries (any CRS with a known definition; WGS84 if none).
    outline
        The county outline in WGS84.
    tolerance_m
        Points up to this far outside the outline pass: the outline itself is only accurate to
        about 75 m (median), and shore-side facilities sit on its edge.
    """
    gs = points if points.crs is not None else points.set_crs(WGS84)
    gs = gs.to_crs(WGS84)
    geoms = gs.to_numpy()
    bad_geom = [i for i, g in enumerate(geoms) if g is None or g.is_empty or g.geom_type != "Point"]
    if bad_geom:
        listed = _enumerate_more(
            bad_geom,
            lambda i: f"{rows(i, ids[i] if ids is not None else None)}: "
                      f"{(geoms[i].geom_type if geoms[i] is not None else None)!r}")
        msg = (f"{source_name}: every row needs a point location (lon/lat, WGS84); missing or "
               f"non-point geometry at {listed}. Fill in the coordinates or use the centroid.")
        raise CoordinateError(msg)
    xy = shapely.get_coordinates(geoms)
    if not np.isfinite(xy).all():
        bad = [i for i in range(len(xy)) if not np.isfinite(xy[i]).all()]
        listed = _enumerate_more(bad, lambda i: rows(i, ids[i] if ids is not None else None))
        msg = f"{source_name}: coordinates are not finite numbers at {listed}. Fill them in."
        raise CoordinateError(msg)
    zone = _outline_zone(outline, tolerance_m)
    inside = shapely.contains_xy(zone, xy[:, 0], xy[:, 1])
    if inside.all():
        return
    bad = np.flatnonzero(~inside).tolist()
    swapped_inside = shapely.contains_xy(zone, xy[:, 1], xy[:, 0])

    def describe(i: int) -> str:
        lon, lat = xy[i]
        text = f"{rows(i, ids[i] if ids is not None else None)} at lon={lon:.6f}, lat={lat:.6f}"
        if swapped_inside[i]:
            text += " (lon and lat look swapped: swapping them puts the point inside the county)"
        return text

    minx, miny, maxx, maxy = outline.bounds
    hint = ("Swap the lon/lat columns for those rows." if swapped_inside[bad].any() else
            "Check the coordinates: they must be WGS84 degrees (GCJ-02/BD-09 points from Amap "
            f"or Baidu must be converted first) and lie in the county (lon ≈ {minx:.2f}–"
            f"{maxx:.2f}, lat ≈ {miny:.2f}–{maxy:.2f}).")
    msg = (f"{source_name}: {len(bad)} point(s) lie outside the county outline "
           f"(+{tolerance_m:g} m): {_enumerate_more(bad, describe)}. {hint}")
    raise OutsideCountyError(msg)


_ZONE_CACHE: dict[tuple[bytes, float], BaseGeometry] = {}


def _outline_zone(outline: BaseGeometry, tolerance_m: float) -> BaseGeometry:
    """Return the outline buffered by ``tolerance_m`` (in WGS84), cached per outline."""
    key = (shapely.to_wkb(outline), float(tolerance_m))
    zone = _ZONE_CACHE.get(key)
    if zone is None:
        from qyx_geo.crs import metric_crs_for

        metric = gpd.GeoSeries([outline], crs=WGS84).to_crs(metric_crs_for(outline))
        zone = metric.buffer(tolerance_m).to_crs(WGS84).iloc[0]
        shapely.prepare(zone)
        _ZONE_CACHE.clear()
        _ZONE_CACHE[key] = zone
    return zone
