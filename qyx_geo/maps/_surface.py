"""The travel-time surface on a map: one banded image instead of thousands of street polygons.

A county's 5/10/15-minute bands drawn as vector polygons weigh ~1 MB of GeoJSON per service
even simplified; the same bands as a paletted PNG (one pixel per 25 m cell, transparent outside
reach) weigh ~50–150 kB and cost the browser one image. The grid is warped (nearest neighbour)
from the surface's metric CRS to Web Mercator, the projection Leaflet draws in, so cells land
where they belong; the GCJ-02 shift moves the image's corners with the other overlays.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from qyx_geo.maps._offline import escape_text

if TYPE_CHECKING:
    import folium
    import pyproj

    from qyx_geo.surfaces import Surface

__all__ = ["band_image", "banded", "surface_layer", "tier_colours"]

#: Colours of the tiers, nearest first (as the vector isochrones).
_TIER_RGB = ("#08519c", "#3182bd", "#9ecae1", "#c6dbef")
_NO_BAND = 255
_WEB_MERCATOR = "EPSG:3857"


def tier_colours(n: int) -> list[str]:
    """Return the colours of ``n`` tiers, nearest (shortest) first."""
    return [_TIER_RGB[min(i, len(_TIER_RGB) - 1)] for i in range(n)]


def banded(surface: Surface, tiers: Sequence[float]) -> npt.NDArray[np.uint8]:
    """Return the band of each cell: 0 for the first tier, 1 for the next, … 255 beyond all."""
    edges = np.asarray(sorted(tiers), dtype=np.float32)
    values = surface.minutes
    out = np.zeros(values.shape, dtype=np.uint8)
    if edges.size == 0:
        out.fill(_NO_BAND)
        return out
    # a cell's band is the number of tiers it exceeds; one uint8 pass per tier is ~4x
    # cheaper than a binary search per cell (Cixi: 4.6 M cells per service)
    for edge in edges[:-1]:
        out += values > edge
    out[~(values <= edges[-1])] = _NO_BAND  # beyond the last tier, or empty (NaN)
    return out


@functools.lru_cache(maxsize=16)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    """Return a cached transformer: making one costs ~40 ms (PROJ database look-ups).

    pyproj's ``Transformer`` is thread-safe (one PROJ object per thread), so sharing is fine.
    """
    import pyproj

    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def band_image(surface: Surface, tiers: Sequence[float], *, alpha: float = 0.55,
               ) -> tuple[bytes, tuple[float, float, float, float]]:
    """Return a paletted PNG of the bands in Web Mercator and its WGS84 ``(w, s, e, n)`` bounds."""
    from PIL import Image
    from rasterio.transform import Affine
    from rasterio.warp import Resampling, reproject

    bands = banded(surface, tiers)
    rows, cols = bands.shape
    to_merc = _transformer(str(surface.crs), _WEB_MERCATOR)
    left, bottom, right, top = to_merc.transform_bounds(*surface.bounds, densify_pts=21)
    # about one pixel per cell: Mercator metres are 1 / cos(latitude) ground metres
    res = min((right - left) / cols, (top - bottom) / rows)
    width, height = math.ceil((right - left) / res), math.ceil((top - bottom) / res)
    transform = Affine(res, 0.0, left, 0.0, -res, top)
    merc = np.full((height, width), _NO_BAND, dtype=np.uint8)
    reproject(bands, merc, src_transform=Affine(*surface.transform), src_crs=surface.crs,
              dst_transform=transform, dst_crs=_WEB_MERCATOR, src_nodata=_NO_BAND,
              dst_nodata=_NO_BAND, resampling=Resampling.nearest)
    used = np.flatnonzero((merc != _NO_BAND).any(axis=1))
    used_c = np.flatnonzero((merc != _NO_BAND).any(axis=0))
    if used.size == 0:
        merc, r0, c0 = merc[:1, :1], 0, 0
    else:  # crop to the reached cells
        r0, c0 = int(used[0]), int(used_c[0])
        merc = merc[r0:int(used[-1]) + 1, c0:int(used_c[-1]) + 1]
    image = Image.fromarray(merc, mode="P")
    palette = bytearray(256 * 3)
    opacity = bytearray(256)
    for i, colour in enumerate(tier_colours(len(tiers))):
        palette[3 * i:3 * i + 3] = bytes.fromhex(colour[1:])
        opacity[i] = round(255 * alpha)
    image.putpalette(bytes(palette))
    buf = io.BytesIO()
    image.save(buf, format="PNG", transparency=bytes(opacity))
    left, top = left + c0 * res, top - r0 * res
    right, bottom = left + merc.shape[1] * res, top - merc.shape[0] * res
    to_wgs = _transformer(_WEB_MERCATOR, "EPSG:4326")
    (w, e), (s, n) = to_wgs.transform([left, right], [bottom, top])
    return buf.getvalue(), (float(w), float(s), float(e), float(n))


def surface_layer(m: folium.Map, surface: Surface, tiers: Sequence[float], service: Any,
                  ) -> list[float]:
    """Add the banded surface to ``m`` as one image layer; return the tiers drawn."""
    import folium

    tiers = sorted(float(t) for t in tiers)
    png, (w, s, e, n) = band_image(surface, tiers)
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    label = "/".join(f"{t:g}" for t in tiers)
    name = f"{label}分钟可达范围 {service.label_en} within {label} min (可达时间面 surface)"
    group = folium.FeatureGroup(name=escape_text(name), show=True)
    folium.raster_layers.ImageOverlay(url, bounds=[[s, w], [n, e]], interactive=False,
                                      class_name="qyx-surface").add_to(group)
    group.add_to(m)
    return tiers
