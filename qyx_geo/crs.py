"""Coordinate systems met in Chinese registers: WGS84, GCJ-02, BD-09, CGCS2000 (EPSG:4490/4549).

GCJ-02 (国测局坐标, used by Gaode/AMap, Tencent and most Chinese web maps) adds a deliberate,
smooth, position-dependent offset of a few hundred metres to WGS84; BD-09 (Baidu) adds a further
polar perturbation on top of GCJ-02. Neither is a datum that pyproj knows, so both are computed
here with vectorised numpy. The forward formulas are the public, widely re-implemented ones; the
inverses are solved by fixed-point iteration (the offset field changes by less than 0.1 % of its
size per degree, so each iteration gains about three decimal digits) to ``tol_deg`` — by default
1e-10 degrees, about 0.01 mm — instead of the common one-step approximation that is off by up to
a metre or two.

CGCS2000 geographic (EPSG:4490) and its 3-degree Gauss-Krüger zone at 120°E (EPSG:4549, the
metric CRS of qyx_geo) go through pyproj. CGCS2000 and WGS84 agree to a few centimetres, so the
geographic conversion is the identity in practice; it is still routed through pyproj so that a
future transformation grid is picked up.

Every function takes longitude/easting first (``x``, then ``y``), accepts scalars or array-likes
that broadcast together, returns ``float`` for scalar input and float64 arrays otherwise, and
passes missing values through as whole pairs: a NaN in either coordinate blanks both. Values that
cannot be coordinates raise :class:`~qyx_geo._errors.CoordinateError` instead of returning
numbers: degrees outside ``|lon| <= 180``, ``|lat| <= 90`` (a latitude of 121 is a swapped
pair, and the message says so), infinities, and EPSG:4549 metres outside the zone's plausible
range (easting 0–1,000 km, northing 0–10,000 km). As in every implementation of GCJ-02, points
outside a rough box around China (lon 72.004–137.8347, lat 0.8293–55.8271) are not offset.

Examples
--------
>>> lon, lat = wgs84_to_gcj02(121.2467, 30.1703)  # Cixi city hall, WGS84 -> Gaode
>>> round(lon, 5), round(lat, 5)
(121.25104, 30.16785)
>>> back = gcj02_to_wgs84(lon, lat)
>>> round(back[0], 7), round(back[1], 7)
(121.2467, 30.1703)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar, get_args, overload

import numpy as np
import numpy.typing as npt
import pyproj
import shapely

from qyx_geo._errors import CoordinateError

__all__ = [
    "CRS_NAMES",
    "CrsName",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "convert",
    "from_wgs84",
    "gcj02_geometries_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "in_china",
    "local_metric_crs",
    "metric_crs_for",
    "metric_crs_of",
    "to_wgs84",
    "transform_geometry",
    "validate_metric_crs",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CrsName = Literal["wgs84", "gcj02", "bd09", "cgcs2000", "epsg4549"]
#: Names accepted by :func:`to_wgs84`, :func:`from_wgs84` and :func:`convert`.
CRS_NAMES: tuple[str, ...] = get_args(CrsName)

#: pyproj CRS of the systems that have one (GCJ-02/BD-09 have none; geometries in them are
#: labelled EPSG:4326 by :func:`transform_geometry`, as web maps expect).
_EPSG: dict[str, str] = {
    "wgs84": "EPSG:4326", "gcj02": "EPSG:4326", "bd09": "EPSG:4326",
    "cgcs2000": "EPSG:4490", "epsg4549": "EPSG:4549",
}

# Krasovsky 1940 ellipsoid, as used by the GCJ-02 formulas.
_GCJ_A = 6378245.0
_GCJ_EE = 0.00669342162296594323
# BD-09's constants: pi * 3000 / 180 and its fixed shift.
_BD_X_PI = np.pi * 3000.0 / 180.0
_BD_DLON = 0.0065
_BD_DLAT = 0.0060
_DEFAULT_TOL_DEG = 1e-10
_DEFAULT_MAX_ITER = 30

FloatArray = npt.NDArray[np.float64]
_T = TypeVar("_T")


#: Largest |x| and |y| of a coordinate pair per kind of system, and the names of x and y.
_LIMITS: dict[str, tuple[float, float, float, float, str, str]] = {
    "degrees": (-180.0, 180.0, -90.0, 90.0, "longitude", "latitude"),
    # EPSG:4549: false easting 500 km, a 3-degree zone spans a few hundred km either side
    "metres": (0.0, 1_000_000.0, 0.0, 10_000_000.0, "easting", "northing"),
}


def _as_arrays(x: Any, y: Any, units: str | None = "degrees",
               ) -> tuple[FloatArray, FloatArray, bool]:
    """Return ``x, y`` as broadcast float64 arrays and whether both were scalars.

    A NaN in one coordinate blanks the pair. With ``units`` (``"degrees"`` or ``"metres"``),
    values outside :data:`_LIMITS` raise :class:`CoordinateError`, naming a swapped pair as such.
    """
    try:
        xa = np.asarray(x, dtype=np.float64)
        ya = np.asarray(y, dtype=np.float64)
        xb, yb = np.broadcast_arrays(xa, ya)
    except (TypeError, ValueError) as err:
        msg = (f"Coordinates must be numbers or arrays of numbers that broadcast together, got "
               f"x={x!r}, y={y!r}. Convert text columns with pandas.to_numeric first.")
        raise CoordinateError(msg) from err
    xo, yo = np.array(xb, dtype=np.float64), np.array(yb, dtype=np.float64)
    missing = np.isnan(xo) | np.isnan(yo)
    xo[missing] = np.nan
    yo[missing] = np.nan
    if units is not None:
        _check_range(xo, yo, units)
    return xo, yo, xa.ndim == ya.ndim == 0


def _check_range(x: FloatArray, y: FloatArray, units: str) -> None:
    xmin, xmax, ymin, ymax, xname, yname = _LIMITS[units]
    with np.errstate(invalid="ignore"):
        bad = ~np.isnan(x) & ~((x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax))
    if not bad.any():
        return
    i = np.unravel_index(int(np.flatnonzero(bad.ravel())[0]), bad.shape) if bad.ndim else ()
    bx, by = float(x[i]), float(y[i])
    swapped = ymin <= bx <= ymax and xmin <= by <= xmax
    hint = (f"the pair looks swapped: give {xname} first, i.e. ({by!r}, {bx!r})" if swapped
            else f"{xname} must be in [{xmin:g}, {xmax:g}] and {yname} in [{ymin:g}, {ymax:g}] "
                 f"{units}; check the values and the coordinate system")
    msg = (f"{int(bad.sum())} coordinate pair(s) out of range, first ({bx!r}, {by!r}) at "
           f"position {tuple(int(k) for k in i)!r}: {hint}. Blank missing values (NaN) instead "
           "of filling them with numbers.")
    raise CoordinateError(msg)


def _out(x: FloatArray, y: FloatArray, scalar: bool) -> Any:
    if scalar:
        return float(x), float(y)
    return x, y


def in_china(lon: npt.ArrayLike, lat: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Return where points lie in the rough box around China inside which GCJ-02 offsets apply."""
    lon_a, lat_a, _ = _as_arrays(lon, lat, units=None)
    return (lon_a >= 72.004) & (lon_a <= 137.8347) & (lat_a >= 0.8293) & (lat_a <= 55.8271)


def _gcj_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return the GCJ-02 offset (dlon, dlat) in degrees at WGS84 points (zero outside China)."""
    x = lon - 105.0
    y = lat - 35.0
    sqrt_abs_x = np.sqrt(np.abs(x))
    common = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = (-100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * sqrt_abs_x + common
            + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
            + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0)
    dlon = (300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * sqrt_abs_x + common
            + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
            + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0)
    rad_lat = np.radians(lat)
    magic = 1.0 - _GCJ_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = dlat * 180.0 / ((_GCJ_A * (1.0 - _GCJ_EE)) / (magic * sqrt_magic) * np.pi)
    dlon = dlon * 180.0 / (_GCJ_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    outside = ~((lon >= 72.004) & (lon <= 137.8347) & (lat >= 0.8293) & (lat <= 55.8271))
    return (np.where(outside, 0.0, dlon).astype(np.float64),
            np.where(outside, 0.0, dlat).astype(np.float64))


def _invert(
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    target_x: FloatArray, target_y: FloatArray, start_x: FloatArray, start_y: FloatArray,
    *, tol_deg: float, max_iter: int, name: str,
) -> tuple[FloatArray, FloatArray]:
    """Solve ``forward(x, y) == target`` by fixed-point iteration from ``start``."""
    shape = np.shape(start_x)
    x, y = np.ravel(start_x).copy(), np.ravel(start_y).copy()
    target_x, target_y = np.ravel(target_x), np.ravel(target_y)
    active = np.isfinite(target_x) & np.isfinite(target_y)
    for _ in range(max_iter):
        if not active.any():
            break
        fx, fy = forward(x[active], y[active])
        dx = fx - target_x[active]
        dy = fy - target_y[active]
        x[active] -= dx
        y[active] -= dy
        still = (np.abs(dx) > tol_deg) | (np.abs(dy) > tol_deg)
        idx = np.flatnonzero(active)
        active[idx[~still]] = False
    if active.any():
        i = int(np.flatnonzero(active)[0])
        msg = (f"{name}: the inverse did not converge to {tol_deg!r} degrees in {max_iter} "
               f"iterations for {int(active.sum())} point(s), first at "
               f"({target_x[i]!r}, {target_y[i]!r}). Check that the coordinates are degrees "
               f"(lon, lat) in the stated system.")
        raise CoordinateError(msg)
    return x.reshape(shape), y.reshape(shape)


def _wgs_to_gcj(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_offset(lon, lat)
    return lon + dlon, lat + dlat


def _gcj_to_bd(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _BD_X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _BD_X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _bd_to_gcj_rough(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _BD_X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _BD_X_PI)
    return z * np.cos(theta), z * np.sin(theta)


@overload
def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_gcj02(lon: Any, lat: Any) -> Any:
    """Convert WGS84 longitude/latitude to GCJ-02 (Gaode/AMap, Tencent)."""
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_wgs_to_gcj(x, y), scalar)


@overload
def gcj02_to_wgs84(lon: float, lat: float, *, tol_deg: float = ...,
                   max_iter: int = ...) -> tuple[float, float]: ...
@overload
def gcj02_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol_deg: float = ...,
                   max_iter: int = ...) -> tuple[FloatArray, FloatArray]: ...
def gcj02_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = _DEFAULT_TOL_DEG,
                   max_iter: int = _DEFAULT_MAX_ITER) -> Any:
    """Convert GCJ-02 longitude/latitude to WGS84 by iterating the forward formula.

    Parameters
    ----------
    lon, lat
        GCJ-02 coordinates in degrees.
    tol_deg
        Stop when the forward image of the estimate is within this many degrees of the input
        (1e-10 deg is about 0.01 mm).
    max_iter
        Iteration limit; :class:`~qyx_geo._errors.CoordinateError` if not reached.
    """
    x, y, scalar = _as_arrays(lon, lat)
    dlon, dlat = _gcj_offset(x, y)
    wx, wy = _invert(_wgs_to_gcj, x, y, x - dlon, y - dlat, tol_deg=tol_deg, max_iter=max_iter,
                     name="gcj02_to_wgs84")
    return _out(wx, wy, scalar)


def gcj02_geometries_to_wgs84(geoms: Any) -> Any:
    """Return shapely geometries (one or an array) with GCJ-02 coordinates converted to WGS84.

    For outlines and polygons published in GCJ-02 (Amap-derived boundaries, Gaode exports):
    every vertex goes through :func:`gcj02_to_wgs84`.
    """
    def shift(xy: FloatArray) -> FloatArray:
        lon, lat = gcj02_to_wgs84(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geoms, shift)


@overload
def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def gcj02_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def gcj02_to_bd09(lon: Any, lat: Any) -> Any:
    """Convert GCJ-02 longitude/latitude to BD-09 (Baidu)."""
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_to_bd(x, y), scalar)


@overload
def bd09_to_gcj02(lon: float, lat: float, *, tol_deg: float = ...,
                  max_iter: int = ...) -> tuple[float, float]: ...
@overload
def bd09_to_gcj02(lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol_deg: float = ...,
                  max_iter: int = ...) -> tuple[FloatArray, FloatArray]: ...
def bd09_to_gcj02(lon: Any, lat: Any, *, tol_deg: float = _DEFAULT_TOL_DEG,
                  max_iter: int = _DEFAULT_MAX_ITER) -> Any:
    """Convert BD-09 longitude/latitude to GCJ-02, refining the closed-form inverse by iteration."""
    x, y, scalar = _as_arrays(lon, lat)
    sx, sy = _bd_to_gcj_rough(x, y)
    gx, gy = _invert(_gcj_to_bd, x, y, sx, sy, tol_deg=tol_deg, max_iter=max_iter,
                     name="bd09_to_gcj02")
    return _out(gx, gy, scalar)


@overload
def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]: ...
@overload
def wgs84_to_bd09(lon: npt.ArrayLike, lat: npt.ArrayLike) -> tuple[FloatArray, FloatArray]: ...
def wgs84_to_bd09(lon: Any, lat: Any) -> Any:
    """Convert WGS84 longitude/latitude to BD-09 (Baidu)."""
    x, y, scalar = _as_arrays(lon, lat)
    return _out(*_gcj_to_bd(*_wgs_to_gcj(x, y)), scalar)


@overload
def bd09_to_wgs84(lon: float, lat: float, *, tol_deg: float = ...,
                  max_iter: int = ...) -> tuple[float, float]: ...
@overload
def bd09_to_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, *, tol_deg: float = ...,
                  max_iter: int = ...) -> tuple[FloatArray, FloatArray]: ...
def bd09_to_wgs84(lon: Any, lat: Any, *, tol_deg: float = _DEFAULT_TOL_DEG,
                  max_iter: int = _DEFAULT_MAX_ITER) -> Any:
    """Convert BD-09 longitude/latitude to WGS84 (BD-09 → GCJ-02 → WGS84, both iterated)."""
    x, y, scalar = _as_arrays(lon, lat)
    gx, gy = bd09_to_gcj02(x, y, tol_deg=tol_deg, max_iter=max_iter)
    wx, wy = gcj02_to_wgs84(gx, gy, tol_deg=tol_deg, max_iter=max_iter)
    return _out(np.asarray(wx), np.asarray(wy), scalar)


@functools.lru_cache(maxsize=8)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _check_crs(crs: object, argument: str) -> str:
    if crs not in CRS_NAMES:
        msg = (f"{argument}={crs!r} is not a supported coordinate system; use one of "
               f"{CRS_NAMES!r} (gcj02: Gaode/AMap/Tencent, bd09: Baidu, cgcs2000: EPSG:4490, "
               f"epsg4549: CGCS2000 / 3-degree Gauss-Kruger CM 120E in metres).")
        raise CoordinateError(msg)
    return str(crs)


def _units(crs: str) -> str:
    return "metres" if crs == "epsg4549" else "degrees"


def _to_wgs84_arrays(x: FloatArray, y: FloatArray, crs: str) -> tuple[FloatArray, FloatArray]:
    if crs == "wgs84":
        return x, y
    if crs == "gcj02":
        return gcj02_to_wgs84(x, y)
    if crs == "bd09":
        return bd09_to_wgs84(x, y)
    lon, lat = _transformer(_EPSG[crs], "EPSG:4326").transform(x, y)
    return np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)


def _from_wgs84_arrays(lon: FloatArray, lat: FloatArray, crs: str) -> tuple[FloatArray, FloatArray]:
    if crs == "wgs84":
        return lon, lat
    if crs == "gcj02":
        return wgs84_to_gcj02(lon, lat)
    if crs == "bd09":
        return wgs84_to_bd09(lon, lat)
    x, y = _transformer("EPSG:4326", _EPSG[crs]).transform(lon, lat)
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)


@overload
def to_wgs84(x: float, y: float, *, crs: CrsName) -> tuple[float, float]: ...
@overload
def to_wgs84(x: npt.ArrayLike, y: npt.ArrayLike, *,
             crs: CrsName) -> tuple[FloatArray, FloatArray]: ...
def to_wgs84(x: Any, y: Any, *, crs: CrsName) -> Any:
    """Convert coordinates in ``crs`` to WGS84 longitude/latitude.

    Parameters
    ----------
    x, y
        Longitude/latitude in degrees, or easting/northing in metres for ``"epsg4549"``.
    crs
        Source system, one of :data:`CRS_NAMES`.

    Returns
    -------
    tuple
        ``(lon, lat)`` in WGS84 degrees: floats for scalar input, float64 arrays otherwise.
    """
    name = _check_crs(crs, "crs")
    xa, ya, scalar = _as_arrays(x, y, _units(name))
    return _out(*_to_wgs84_arrays(xa, ya, name), scalar)


@overload
def from_wgs84(lon: float, lat: float, *, crs: CrsName) -> tuple[float, float]: ...
@overload
def from_wgs84(lon: npt.ArrayLike, lat: npt.ArrayLike, *,
               crs: CrsName) -> tuple[FloatArray, FloatArray]: ...
def from_wgs84(lon: Any, lat: Any, *, crs: CrsName) -> Any:
    """Convert WGS84 longitude/latitude to ``crs`` (the inverse of :func:`to_wgs84`)."""
    name = _check_crs(crs, "crs")
    xa, ya, scalar = _as_arrays(lon, lat)
    return _out(*_from_wgs84_arrays(xa, ya, name), scalar)


@overload
def convert(x: float, y: float, *, src: CrsName, dst: CrsName) -> tuple[float, float]: ...
@overload
def convert(x: npt.ArrayLike, y: npt.ArrayLike, *, src: CrsName,
            dst: CrsName) -> tuple[FloatArray, FloatArray]: ...
def convert(x: Any, y: Any, *, src: CrsName, dst: CrsName) -> Any:
    """Convert coordinates from ``src`` to ``dst`` (through WGS84 unless they are equal)."""
    src_name = _check_crs(src, "src")
    dst_name = _check_crs(dst, "dst")
    xa, ya, scalar = _as_arrays(x, y, _units(src_name))
    if src_name != dst_name:
        xa, ya = _from_wgs84_arrays(*_to_wgs84_arrays(xa, ya, src_name), dst_name)
    return _out(xa, ya, scalar)


def transform_geometry(geometry: _T, *, src: CrsName, dst: CrsName) -> _T:
    """Return a copy of ``geometry`` with every vertex converted from ``src`` to ``dst``.

    Parameters
    ----------
    geometry
        A shapely geometry, an array of them, a GeoSeries or a GeoDataFrame (whose active
        geometry column is converted). The input is not modified.
    src, dst
        Systems of :data:`CRS_NAMES`. GeoSeries/GeoDataFrames are labelled with the matching EPSG
        code; GCJ-02 and BD-09 have none and are labelled EPSG:4326, which is what web maps drawn
        on Gaode/Baidu tiles expect.

    Examples
    --------
    >>> import shapely
    >>> p = transform_geometry(shapely.Point(121.2467, 30.1703), src="wgs84", dst="gcj02")
    >>> round(p.x, 5), round(p.y, 5)
    (121.25104, 30.16785)
    """
    src_name = _check_crs(src, "src")
    dst_name = _check_crs(dst, "dst")

    def _fn(coords: FloatArray) -> FloatArray:
        if src_name == dst_name or len(coords) == 0:
            return coords
        x, y = convert(coords[:, 0], coords[:, 1], src=src, dst=dst)
        return np.column_stack([x, y])

    import geopandas as gpd

    if isinstance(geometry, gpd.GeoDataFrame):
        out = geometry.copy()
        col = out.geometry.name
        out[col] = transform_geometry(out.geometry, src=src, dst=dst)
        return out
    if isinstance(geometry, gpd.GeoSeries):
        values = shapely.transform(np.asarray(geometry.array, dtype=object), _fn)
        return gpd.GeoSeries(values, index=geometry.index, crs=_EPSG[dst_name],
                             name=geometry.name)
    if isinstance(geometry, shapely.Geometry | np.ndarray):
        return shapely.transform(geometry, _fn)
    msg = (f"transform_geometry: geometry must be a shapely geometry, an array of them, a "
           f"GeoSeries or a GeoDataFrame, got {type(geometry).__name__!r}.")
    raise CoordinateError(msg)


# -- local metric CRS --------------------------------------------------------------------------

#: EPSG code of CGCS2000 / 3-degree Gauss-Krüger CM 75°E; the zones up to CM 135°E follow in
#: steps of one code per 3° (EPSG:4534 … EPSG:4554; CM 120°E is EPSG:4549).
_GK3_FIRST_EPSG, _GK3_FIRST_CM, _GK3_LAST_CM = 4534, 75, 135
#: For data without extent (empty frames), where the choice cannot matter.
_FALLBACK_METRIC = "EPSG:4549"


def local_metric_crs(lon: float, lat: float) -> str:
    """Return the local metric CRS for a place given by its WGS84 centre.

    In China (the rough box of :func:`in_china`) this is the CGCS2000 3-degree Gauss-Krüger zone
    whose central meridian is nearest (EPSG:4534–4554, no zone prefix in the easting; Cixi at
    121.3°E gets CM 120°E, EPSG:4549): the system Chinese surveying and planning data use, with
    a scale error below 0.03 % within a zone. Elsewhere it is the WGS 84 UTM zone that contains
    the point, exactly as ``osmnx.project_graph`` picks it (geopandas ``estimate_utm_crs`` of
    the centre), so graphs line up with what osmnx users get.

    Examples
    --------
    >>> local_metric_crs(121.25, 30.17)     # Cixi
    'EPSG:4549'
    >>> local_metric_crs(104.07, 30.66)     # Chengdu
    'EPSG:4544'
    >>> local_metric_crs(24.94, 60.17)      # Helsinki
    'EPSG:32635'
    """
    lon_f, lat_f = float(lon), float(lat)
    if not (-180.0 <= lon_f <= 180.0 and -90.0 <= lat_f <= 90.0):
        msg = (f"({lon!r}, {lat!r}) is not a WGS84 longitude/latitude in degrees; give the "
               "centre as lon, lat")
        raise CoordinateError(msg)
    if bool(in_china(lon_f, lat_f)):
        cm = min(max(round(lon_f / 3.0) * 3, _GK3_FIRST_CM), _GK3_LAST_CM)
        return f"EPSG:{_GK3_FIRST_EPSG + (cm - _GK3_FIRST_CM) // 3}"
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_utm_crs_info

    found = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(
        west_lon_degree=lon_f, south_lat_degree=lat_f, east_lon_degree=lon_f,
        north_lat_degree=lat_f))
    if not found:  # pragma: no cover - every point on Earth lies in a UTM zone
        msg = f"no UTM zone found for ({lon_f}, {lat_f}); pass an explicit crs='EPSG:…'"
        raise CoordinateError(msg)
    return f"{found[0].auth_name}:{found[0].code}"


def metric_crs_for(bounds: tuple[float, float, float, float] | shapely.Geometry) -> str:
    """Return :func:`local_metric_crs` at the centre of WGS84 ``bounds`` or a WGS84 geometry.

    ``bounds`` is ``(west, south, east, north)`` as ``total_bounds`` gives it; the centre of
    the box is used, as osmnx does.
    """
    if isinstance(bounds, shapely.Geometry):
        if bounds.is_empty:
            msg = "cannot choose a metric CRS for an empty geometry; pass the area's outline"
            raise CoordinateError(msg)
        bounds = tuple(bounds.bounds)
    w, s, e, n = (float(v) for v in bounds)
    return local_metric_crs((w + e) / 2.0, (s + n) / 2.0)


def validate_metric_crs(crs: object, *, name: str = "crs") -> str:
    """Return ``crs`` as ``"AUTH:CODE"`` (or WKT) if it is a projected CRS in metres, else raise.

    Accepts what pyproj accepts (``"EPSG:32650"``, ``4549``, ``"epsg:4549"``, WKT, PROJ
    strings). Geographic systems (degrees) and non-metre units are refused: every distance in
    qyx_geo is in metres.
    """
    try:
        parsed = pyproj.CRS.from_user_input(crs)
    except (pyproj.exceptions.CRSError, TypeError, ValueError) as err:
        msg = (f"{name}={crs!r} is not a coordinate reference system pyproj knows; use e.g. "
               "EPSG:4549")
        raise CoordinateError(msg) from err
    units = {ax.unit_name for ax in parsed.axis_info}
    if not parsed.is_projected or not units <= {"metre"}:
        msg = (f"{name}={crs!r} ({parsed.name}) is not a projected CRS in metres; use a local "
               "metric one such as a CGCS2000 3-degree Gauss-Krüger zone (EPSG:4534-4554) or a "
               "UTM zone (EPSG:326xx/327xx)")
        raise CoordinateError(msg)
    auth = parsed.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else parsed.to_wkt()


def metric_crs_of(data: Any) -> str:
    """Return the local metric CRS of a GeoDataFrame/GeoSeries (its own CRS if projected).

    For work that needs metres on data given in degrees — buffers, simplification, labels —
    wherever the data are: Cixi's layers get EPSG:4549, Helsinki's UTM 35N.
    """
    crs = getattr(data, "crs", None)
    if crs is not None and pyproj.CRS.from_user_input(crs).is_projected:
        units = {ax.unit_name for ax in pyproj.CRS.from_user_input(crs).axis_info}
        if units <= {"metre"}:
            return str(crs.to_string() if hasattr(crs, "to_string") else crs)
    wgs = data.to_crs("EPSG:4326") if crs is not None else data
    bounds = tuple(float(v) for v in wgs.total_bounds)
    if not all(np.isfinite(bounds)):  # empty or all-empty geometries: any metric CRS will do
        return _FALLBACK_METRIC
    return metric_crs_for(bounds)
