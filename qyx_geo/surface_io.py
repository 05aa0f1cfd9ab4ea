"""Travel-time surfaces as Cloud-Optimized GeoTIFFs (QGIS and GDAL open them directly).

One single-band ``float32`` raster per service: minutes to the nearest facility, ``-9999``
(nodata) outside reach, in the surface's metric CRS, DEFLATE-compressed with internal tiles and
overviews (GDAL's COG driver, via rasterio). DEFLATE at level 1 without a predictor: on these
minutes (rounded to 0.01, long nodata runs) it is smaller and faster than the floating-point
predictor at the default level (Cixi's 7 surfaces: 10.5 MB in 0.7 s against 13.9 MB in 1.15 s,
benchmarks/README.md). The tags say what the values are, how they were
made and whether the inputs were real or synthetic (``QYX_PROVENANCE``).

Examples
--------
>>> import numpy as np
>>> from qyx_geo.surfaces import Surface
>>> s = Surface(minutes=np.array([[1.5, np.nan]], dtype=np.float32), x0=0.0, y0=25.0,
...             cell_m=25.0, crs="EPSG:4549", reach_minutes=15.0, speed_m_per_min=66.7,
...             max_offstreet_m=300.0)
>>> import tempfile, pathlib, rasterio
>>> with tempfile.TemporaryDirectory() as d:
...     path = write_geotiff(s, pathlib.Path(d) / "canteen.tif", provenance="synthetic")
...     with rasterio.open(path) as r:
...         print(r.read(1).tolist(), r.nodata, r.tags()["QYX_PROVENANCE"])
[[1.5, -9999.0]] -9999.0 synthetic
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np

from qyx_geo import __version__
from qyx_geo._errors import SettingsError
from qyx_geo._io import atomic_path
from qyx_geo.surfaces import Surface

__all__ = ["NODATA", "Provenance", "write_geotiff"]

log = logging.getLogger(__name__)

#: Value of the cells outside reach (also declared as the raster's nodata).
NODATA = -9999.0

Provenance = Literal["synthetic", "real", "mixed"]


def write_geotiff(surface: Surface, path: str | os.PathLike[str], *, provenance: Provenance,
                  tags: Mapping[str, Any] | None = None, decimals: int = 2) -> Path:
    """Write ``surface`` as a Cloud-Optimized GeoTIFF, atomically; return the path.

    Parameters
    ----------
    surface
        A :class:`~qyx_geo.surfaces.Surface`; values beyond its reach are written as nodata.
    path
        Output file (``.tif``); its folder is created if needed.
    provenance
        ``"synthetic"``, ``"real"`` or ``"mixed"``: whether the facilities, network and
        residents behind the surface are real data (stored as the tag ``QYX_PROVENANCE``).
    tags
        Further dataset tags (e.g. ``{"QYX_SERVICE": "canteen"}``); keys are upper-cased.
    decimals
        Minutes are rounded to this many decimals (0.01 min = 0.7 m of walking) so that the
        file compresses well; ``None`` keeps float32 precision.
    """
    import rasterio
    from rasterio.transform import Affine

    if provenance not in ("synthetic", "real", "mixed"):
        msg = f"provenance must be 'synthetic', 'real' or 'mixed', got {provenance!r}."
        raise SettingsError(msg)
    values = surface.within_reach()
    if decimals is not None:
        values = np.round(values, decimals)
    data = np.where(np.isnan(values), np.float32(NODATA), values).astype(np.float32)
    rows, cols = surface.shape
    all_tags = {
        "QYX_UNITS": "minutes",
        "QYX_MEANING": "travel time to the nearest facility: network time of the cell's nearest "
                       "street point plus the straight off-street walk; nodata beyond reach",
        "QYX_PROVENANCE": provenance,
        "QYX_REACH_MINUTES": f"{surface.reach_minutes:g}",
        "QYX_SPEED_M_PER_MIN": f"{surface.speed_m_per_min:.4f}",
        "QYX_CELL_M": f"{surface.cell_m:g}",
        "QYX_MAX_OFFSTREET_M": f"{surface.max_offstreet_m:g}",
        "QYX_SOFTWARE": f"qyx_geo {__version__}",
        **{f"QYX_{str(k).upper()}": str(v) for k, v in surface.attrs.items()},
        **{str(k).upper(): str(v) for k, v in (tags or {}).items()},
    }
    profile = {
        "driver": "COG", "width": cols, "height": rows, "count": 1, "dtype": "float32",
        "crs": surface.crs, "transform": Affine(*surface.transform), "nodata": NODATA,
        "compress": "deflate", "level": 1, "blocksize": 256, "overview_resampling": "nearest",
        "BIGTIFF": "IF_SAFER",
    }
    with atomic_path(path) as tmp:
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(data, 1)
            dst.update_tags(**all_tags)
            dst.update_tags(1, UNITS="minutes")
            dst.set_band_description(1, "minutes to the nearest facility")
        log.info("wrote %s (%.0f kB)", path, tmp.stat().st_size / 1024)
    return Path(path)
